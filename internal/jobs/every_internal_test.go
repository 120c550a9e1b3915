package jobs

import (
	"context"
	"testing"
	"time"
)

func TestEvery(t *testing.T) {
	clock := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ran := 0
	upkeep := every(time.Hour, func() time.Time { return clock }, func(context.Context) { ran++ })
	steps := []struct {
		advance time.Duration
		want    int // runs so far
	}{
		{0, 1},                // the first call runs
		{time.Second, 1},      // within the hour
		{59 * time.Minute, 1}, // 59m01s since
		{time.Minute, 2},      // an hour and a second since
		{30 * time.Minute, 2},
		{30 * time.Minute, 3}, // exactly an hour since the last run
	}
	for i, st := range steps {
		clock = clock.Add(st.advance)
		upkeep(t.Context())
		if ran != st.want {
			t.Fatalf("call %d (+%v): f ran %d times, want %d", i+1, st.advance, ran, st.want)
		}
	}
}
