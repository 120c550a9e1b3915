package bus

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// limiter bounds how many requests a module handles at once and how many callers
// may wait for a slot. It is the in-process form of backpressure: past its bounds a
// caller gets message.ErrOverloaded instead of an ever-growing queue.
type limiter struct {
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	maxWait    time.Duration
}

func newLimiter(l Limits) *limiter {
	return &limiter{slots: make(chan struct{}, l.MaxInFlight), maxWaiting: int64(l.MaxWaiting), maxWait: l.MaxWait}
}

func (l *limiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if l.waiting.Add(1) > l.maxWaiting {
		l.waiting.Add(-1)
		return message.ErrOverloaded
	}
	defer l.waiting.Add(-1)
	timer := time.NewTimer(l.maxWait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return message.ErrOverloaded
	case <-timer.C:
		return message.ErrOverloaded
	}
}

func (l *limiter) release() { <-l.slots }
