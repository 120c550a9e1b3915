package longpoll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestNotifyWakesTheWaitersOfItsKeyOnly(t *testing.T) {
	var n Notifier
	a1, doneA1 := n.Wait("a")
	a2, doneA2 := n.Wait("a")
	b, doneB := n.Wait("b")
	defer doneA1()
	defer doneA2()
	defer doneB()
	n.Notify("a")
	if !closed(a1) || !closed(a2) {
		t.Fatal("Notify(a) did not wake both waiters of a")
	}
	if closed(b) {
		t.Fatal("Notify(a) woke a waiter of b")
	}
	again, doneAgain := n.Wait("a")
	defer doneAgain()
	if closed(again) {
		t.Fatal("a Wait after Notify got a channel already closed")
	}
	n.Notify("nobody") // no waiters: nothing to do
}

func TestDoneForgetsTheKeyOnceNoOneWaits(t *testing.T) {
	var n Notifier
	_, done1 := n.Wait("k")
	ch2, done2 := n.Wait("k")
	done1()
	done1() // a second call must not count as the other waiter leaving
	if got := n.waiting(); got != 1 {
		t.Fatalf("waiting keys = %d with one waiter left, want 1", got)
	}
	n.Notify("k")
	if !closed(ch2) {
		t.Fatal("the remaining waiter was not woken")
	}
	done2()
	_, done3 := n.Wait("k")
	done3()
	if got := n.waiting(); got != 0 {
		t.Fatalf("waiting keys = %d after every waiter is done, want 0", got)
	}
}

// poll is a read that answers ok from its okAt-th call on, counting calls.
type poll struct {
	calls, okAt int
	during      func(call int) // run inside a read, after Wait registered
}

func (p *poll) read() (int, bool, error) {
	p.calls++
	if p.during != nil {
		p.during(p.calls)
	}
	return p.calls, p.okAt > 0 && p.calls >= p.okAt, nil
}

var slow = Bounds{MaxWait: time.Hour, PollInterval: time.Hour}

func TestWaitAnswersAtOnceWhenTheFirstReadIsWorthIt(t *testing.T) {
	var n Notifier
	p := &poll{okAt: 1}
	got, err := Wait(context.Background(), &n, "k", time.Hour, slow, p.read)
	if err != nil || got != 1 || p.calls != 1 {
		t.Fatalf("Wait = %d, %v after %d reads; want 1, nil after 1", got, err, p.calls)
	}
	if n.waiting() != 0 {
		t.Fatal("Wait left its waiter registered")
	}
}

func TestWaitWakesOnANotifyDuringTheRead(t *testing.T) {
	// The change commits between Wait's registration and its read's result: the
	// poll must not sleep through it (the poll interval here is an hour).
	var n Notifier
	p := &poll{okAt: 2}
	p.during = func(call int) {
		if call == 1 {
			n.Notify("k")
		}
	}
	got, err := Wait(context.Background(), &n, "k", time.Minute, slow, p.read)
	if err != nil || got != 2 {
		t.Fatalf("Wait = %d, %v; want 2, nil (woken by the notify)", got, err)
	}
	if n.waiting() != 0 {
		t.Fatal("Wait left its waiter registered")
	}
}

func TestWaitReadsAgainEveryPollInterval(t *testing.T) {
	// Another replica's change is never notified here: only polling sees it.
	var n Notifier
	p := &poll{okAt: 3}
	got, err := Wait(context.Background(), &n, "k", time.Minute, Bounds{MaxWait: time.Hour, PollInterval: time.Millisecond}, p.read)
	if err != nil || got != 3 {
		t.Fatalf("Wait = %d, %v; want 3, nil", got, err)
	}
}

func TestWaitAnswersTheLastReadOnceTheWaitIsOver(t *testing.T) {
	tests := []struct {
		name string
		wait time.Duration
		b    Bounds
	}{
		{"no wait", 0, slow},
		{"negative wait", -time.Second, slow},
		{"wait capped by MaxWait", time.Hour, Bounds{MaxWait: 0, PollInterval: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n Notifier
			p := &poll{}
			got, err := Wait(context.Background(), &n, "k", tt.wait, tt.b, p.read)
			if err != nil || got != 1 {
				t.Fatalf("Wait = %d, %v; want the one read's 1, nil", got, err)
			}
		})
	}
}

func TestWaitAnswersBeforeTheCallersDeadline(t *testing.T) {
	var n Notifier
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p := &poll{}
	got, err := Wait(ctx, &n, "k", time.Hour, slow, p.read)
	if err != nil || got < 1 {
		t.Fatalf("Wait = %d, %v; want the last read and no error before the deadline", got, err)
	}
}

func TestWaitStopsWhenTheCallerGivesUp(t *testing.T) {
	var n Notifier
	ctx, cancel := context.WithCancel(context.Background())
	p := &poll{during: func(int) { cancel() }}
	got, err := Wait(ctx, &n, "k", time.Hour, slow, p.read)
	if !errors.Is(err, context.Canceled) || got != 0 {
		t.Fatalf("Wait = %d, %v; want 0, context.Canceled", got, err)
	}
	if n.waiting() != 0 {
		t.Fatal("Wait left its waiter registered")
	}
}

func TestWaitReturnsAReadError(t *testing.T) {
	var n Notifier
	boom := errors.New("boom")
	calls := 0
	_, err := Wait(context.Background(), &n, "k", time.Hour, slow, func() (int, bool, error) {
		calls++
		return 0, false, boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Wait = %v after %d reads; want boom after 1", err, calls)
	}
}
