package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock jumps to the time a schedule sleeps until.
type fakeClock struct {
	now time.Time
	// cancelAt, when set, cancels the run at that time.
	cancelAt time.Time
	cancel   context.CancelFunc
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if !c.cancelAt.IsZero() && !t.Before(c.cancelAt) {
		c.now = c.cancelAt
		c.cancel()
		return ctx.Err()
	}
	if t.After(c.now) {
		c.now = t
	}
	return ctx.Err()
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestScheduleLaunchesAtTheRate(t *testing.T) {
	clk := &fakeClock{now: epoch}
	var at []time.Duration
	launched, dropped := schedule(context.Background(), clk, 4, 1500*time.Millisecond, func() bool {
		at = append(at, clk.Now().Sub(epoch))
		return true
	})
	// Slots at k/4 s before 1.5 s: 0, 250, 500, 750, 1000 and 1250 ms.
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond, time.Second, 1250 * time.Millisecond}
	if diff := cmp.Diff(want, at); diff != "" {
		t.Errorf("launch times (-want +got):\n%s", diff)
	}
	if launched != 6 || dropped != 0 {
		t.Errorf("launched %d, dropped %d; want 6, 0", launched, dropped)
	}
}

// An open model: a launch that takes longer than the interval does not lower the
// rate — the slots that fell due meanwhile are launched at once.
func TestScheduleCatchesUpAfterASlowLaunch(t *testing.T) {
	clk := &fakeClock{now: epoch}
	n := 0
	launched, _ := schedule(context.Background(), clk, 10, time.Second, func() bool {
		n++
		if n == 1 {
			clk.now = clk.now.Add(450 * time.Millisecond) // a stall
		}
		return true
	})
	if launched != 10 {
		t.Errorf("launched %d in a 1 s window at 10/s, want 10", launched)
	}
}

// Launches that find no free slot are dropped, not queued; a slot freed makes
// room for the next one.
func TestScheduleCountsDroppedLaunches(t *testing.T) {
	clk := &fakeClock{now: epoch}
	s := newSlots(3)
	var outcomes []bool
	launched, dropped := schedule(context.Background(), clk, 10, time.Second, func() bool {
		if clk.Now().Sub(epoch) == 600*time.Millisecond {
			s.release() // one flow finished
		}
		ok := s.tryAcquire()
		outcomes = append(outcomes, ok)
		return ok
	})
	want := []bool{true, true, true, false, false, false, true, false, false, false}
	if diff := cmp.Diff(want, outcomes); diff != "" {
		t.Errorf("launch outcomes (-want +got):\n%s", diff)
	}
	if launched != 4 || dropped != 6 || s.inUse() != 3 {
		t.Errorf("launched %d, dropped %d, in use %d; want 4, 6, 3", launched, dropped, s.inUse())
	}
}

func TestScheduleStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &fakeClock{now: epoch, cancelAt: epoch.Add(350 * time.Millisecond), cancel: cancel}
	launched, dropped := schedule(ctx, clk, 10, time.Minute, func() bool { return true })
	// Slots at 0, 100, 200, 300 ms; the one at 400 ms falls after the cancel.
	if launched != 4 || dropped != 0 {
		t.Errorf("launched %d, dropped %d; want 4, 0", launched, dropped)
	}
}
