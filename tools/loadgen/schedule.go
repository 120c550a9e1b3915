package loadgen

import (
	"context"
	"time"
)

// clock is the time a schedule runs on; tests use a fake one.
type clock interface {
	Now() time.Time
	// SleepUntil returns at t, or with ctx's error when ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// schedule is an open-model arrival process: launch slot k falls due at k/rate
// seconds after the start, for every slot before window ends. Each due slot calls
// launch exactly once — at once when the schedule has fallen behind, so a slow
// launch does not lower the rate — and launch reports whether it started work
// (false: no room, counted as dropped). schedule never waits for work to finish.
// It returns when the window is over or ctx ends, with the counts.
func schedule(ctx context.Context, clk clock, rate float64, window time.Duration, launch func() bool) (launched, dropped int64) {
	if rate <= 0 {
		return 0, 0
	}
	start := clk.Now()
	end := start.Add(window)
	for k := int64(0); ; k++ {
		due := start.Add(time.Duration(float64(k) * float64(time.Second) / rate))
		if !due.Before(end) {
			return launched, dropped
		}
		if clk.Now().Before(due) {
			if clk.SleepUntil(ctx, due) != nil {
				return launched, dropped
			}
		}
		if ctx.Err() != nil {
			return launched, dropped
		}
		if launch() {
			launched++
		} else {
			dropped++
		}
	}
}

// slots is a counting semaphore that never blocks: it bounds work in flight.
type slots chan struct{}

func newSlots(n int) slots { return make(slots, n) }

// tryAcquire takes a slot if one is free.
func (s slots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) release() { <-s }

// inUse is the number of slots taken.
func (s slots) inUse() int { return len(s) }
