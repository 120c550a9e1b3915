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
