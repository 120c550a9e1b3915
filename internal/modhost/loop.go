package modhost

import (
	"context"
	"log/slog"
	"time"
)

// Loop runs a job at start and then every interval, in its own goroutine, from
// Start to Stop: a module's periodic upkeep (purges, reloads). A failed run is
// logged and tried again at the next tick.
type Loop struct {
	name     string
	interval time.Duration
	log      *slog.Logger
	job      func(context.Context) error
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewLoop returns a loop that runs job every interval; name is what its log lines say.
func NewLoop(name string, interval time.Duration, log *slog.Logger, job func(context.Context) error) *Loop {
	return &Loop{name: name, interval: interval, log: log, job: job}
}

// Start starts the loop and returns; its context is the loop's own, not Start's.
func (l *Loop) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.interval)
		defer t.Stop()
		for {
			if err := l.job(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn(l.name+" failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop stops the loop and waits, up to ctx's end, for a run in progress.
func (l *Loop) Stop(ctx context.Context) error {
	if l.cancel == nil {
		return nil
	}
	l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
