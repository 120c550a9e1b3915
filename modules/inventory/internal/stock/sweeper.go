package stock

import (
	"context"
	"sync"
	"time"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/inventory"
)

// ReasonExpired is the Reason of a ReservationReleased sent by the sweeper.
const ReasonExpired = "expired"

// sweepBatch bounds the reservations one sweep releases; the next sweep goes on.
const sweepBatch = 100

// SweepExpired releases held reservations whose ExpiresAt has passed, each in its
// own transaction, publishing ReservationReleased (Reason "expired") and the
// items' StockChanged. It returns how many it released. Several sweepers (one per
// replica) may run: a reservation is released by whichever locks it first.
func (s *Service) SweepExpired(ctx context.Context) (int, error) {
	ids, err := s.repo.ExpiredHeld(ctx, s.db, s.now(), sweepBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		var released bool
		err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
			res, ok, err := s.repo.Reservation(ctx, tx, id, true)
			now := s.now()
			// Committed or released since it was listed: nothing to do.
			if err != nil || !ok || res.Status != statusHeld || res.ExpiresAt.After(now) {
				return err
			}
			msgs, err := s.move(ctx, tx, res, statusReleased, 0, -1, now)
			if err != nil {
				return err
			}
			released = true
			return s.outbox.Add(ctx, tx, append([]message.Outgoing{inventory.ReservationReleasedEvent.With(
				inventory.ReservationReleased{OrderID: id, Reason: ReasonExpired})}, msgs...)...)
		})
		if err != nil {
			return n, err
		}
		if released {
			n++
		}
	}
	return n, nil
}

// Background is work the service does in a goroutine until it is stopped.
type Background struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// background runs fn in a goroutine under a context that Stop cancels.
func background(fn func(ctx context.Context)) *Background {
	ctx, cancel := context.WithCancel(context.Background())
	bg := &Background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(bg.done)
		fn(ctx)
	}()
	return bg
}

// Stop cancels the work and waits for it to end (it ends promptly: its context is
// cancelled) or for ctx.
func (bg *Background) Stop(ctx context.Context) error {
	bg.once.Do(bg.cancel)
	select {
	case <-bg.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartSweeper runs SweepExpired every SweepInterval until stopped.
func (s *Service) StartSweeper() *Background {
	return background(func(ctx context.Context) {
		t := time.NewTicker(s.sweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// A failed sweep is logged and tried again at the next tick; its
			// transactions rolled back, so nothing is half done.
			if n, err := s.SweepExpired(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "inventory: sweeping expired reservations failed", "err", err, "released", n)
			} else if n > 0 {
				s.log.InfoContext(ctx, "inventory: expired reservations released", "count", n)
			}
		}
	})
}
