package backoff_test

import (
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/backoff"
)

func TestDelay(t *testing.T) {
	const base, max = 100 * time.Millisecond, time.Second
	for _, c := range []struct {
		n       int
		nominal time.Duration
	}{{0, base}, {1, base}, {2, 2 * base}, {3, 4 * base}, {4, 8 * base}, {5, max}, {50, max}} {
		for range 200 {
			if d := backoff.Delay(base, max, c.n); d < c.nominal/2 || d > c.nominal {
				t.Fatalf("Delay(retry %d) = %v; want within [%v, %v]", c.n, d, c.nominal/2, c.nominal)
			}
		}
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		timeout  time.Duration
		attempts int
		want     time.Duration
	}{
		{time.Second, 0, time.Second},
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 4, 8 * time.Second},
		{time.Second, 6, 32 * time.Second},
		{time.Second, 60, 32 * time.Second}, // at most five doublings
		{30 * time.Second, 6, 10 * time.Minute},
		{time.Hour, 3, time.Hour}, // never below the timeout
	}
	for _, tt := range tests {
		if got := backoff.Step(tt.timeout, tt.attempts); got != tt.want {
			t.Errorf("Step(%v, %d) = %v, want %v", tt.timeout, tt.attempts, got, tt.want)
		}
	}
}
