package accounts

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/testlog"
)

// The memory release runs once after a burst of triggers, not once per trigger.
func TestDebounceRunsOnceAfterABurst(t *testing.T) {
	var runs atomic.Int32
	d := debounce{wait: 50 * time.Millisecond, fn: func() { runs.Add(1) }}
	for range 10 {
		d.trigger()
	}
	testlog.Eventually(t, "the debounced call", func() bool { return runs.Load() >= 1 })
	time.Sleep(150 * time.Millisecond) // a second run would have happened by now
	if n := runs.Load(); n != 1 {
		t.Errorf("ran %d times after one burst, want 1", n)
	}
	d.trigger()
	testlog.Eventually(t, "the call after a second burst", func() bool { return runs.Load() == 2 })
}
