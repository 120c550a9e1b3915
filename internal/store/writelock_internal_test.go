package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/testlog"
)

// The write lock serves work in progress (WithPriority) before new work, hands one
// turn in fairShare+1 to new work so it never starves, and lets a waiter whose
// context ends leave the queue without losing or leaking the lock.
func TestWriteLockOrder(t *testing.T) {
	var l writeLock
	bg := context.Background()
	if err := l.lock(bg); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	queued := func(n int) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.high)+len(l.low) == n
	}
	wait := func(name string, ctx context.Context, n int) {
		wg.Go(func() {
			if err := l.lock(ctx); err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			l.unlock()
		})
		testlog.Eventually(t, name+" to queue", func() bool { return queued(n) })
	}
	wait("new-1", bg, 1)
	wait("new-2", bg, 2)
	for i := range fairShare + 2 {
		wait("old-"+string(rune('a'+i)), WithPriority(bg), 3+i)
	}
	gone, cancel := context.WithCancel(bg)
	wg.Go(func() {
		if err := l.lock(gone); err == nil {
			t.Error("a cancelled waiter got the lock")
		}
	})
	testlog.Eventually(t, "the cancelled waiter to queue", func() bool { return queued(fairShare + 5) })
	cancel()
	testlog.Eventually(t, "the cancelled waiter to leave", func() bool { return queued(fairShare + 4) })

	l.unlock()
	wg.Wait()
	want := []string{"old-a", "old-b", "old-c", "old-d", "old-e", "old-f", "old-g", "old-h", "new-1", "old-i", "old-j", "new-2"}
	if len(order) != len(want) {
		t.Fatalf("order = %v; want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order = %v; want %v", order, want)
		}
	}
	// Free again: the next lock is immediate.
	ctx, stop := context.WithTimeout(bg, time.Second)
	defer stop()
	if err := l.lock(ctx); err != nil {
		t.Fatalf("lock after the queue drained: %v", err)
	}
	l.unlock()
}
