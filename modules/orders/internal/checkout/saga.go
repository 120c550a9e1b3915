package checkout

import (
	"context"
	"errors"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
	"github.com/agora-commerce/agora/modules/payments"
)

// Consumer is the name under which the orders module receives events.
const Consumer = "orders"

// Subscriptions returns the saga's subscriptions to inventory's and payments'
// events. Each runs in one transaction with its inbox record, so a redelivered
// event has no second effect.
func (s *Service) Subscriptions() []bus.Subscription {
	return []bus.Subscription{
		on(s, inventory.StockReservedEvent, func(m inventory.StockReserved) string { return m.OrderID }),
		on(s, inventory.StockReservationRejectedEvent, func(m inventory.StockReservationRejected) string { return m.OrderID }),
		on(s, inventory.ReservationCommittedEvent, func(m inventory.ReservationCommitted) string { return m.OrderID }),
		on(s, inventory.ReservationCommitFailedEvent, func(m inventory.ReservationCommitFailed) string { return m.OrderID }),
		on(s, inventory.ReservationReleasedEvent, func(m inventory.ReservationReleased) string { return m.OrderID }),
		on(s, inventory.OrderRestockedEvent, func(m inventory.OrderRestocked) string { return m.OrderID }),
		on(s, payments.PaymentAuthorizedEvent, func(m payments.PaymentAuthorized) string { return m.OrderID }),
		on(s, payments.PaymentDeclinedEvent, func(m payments.PaymentDeclined) string { return m.OrderID }),
		on(s, payments.PaymentCapturedEvent, func(m payments.PaymentCaptured) string { return m.OrderID }),
		on(s, payments.PaymentVoidedEvent, func(m payments.PaymentVoided) string { return m.OrderID }),
		on(s, payments.RefundIssuedEvent, func(m payments.RefundIssued) string { return m.OrderID }),
		on(s, payments.RefundFailedEvent, func(m payments.RefundFailed) string { return m.OrderID }),
	}
}

func on[T any](s *Service, e message.Event[T], orderOf func(T) string) bus.Subscription {
	return outbox.SubscribeEvent(s.db, e, Consumer, func(ctx context.Context, tx *store.Tx, m message.Message[T]) error {
		id := orderOf(m.Body)
		_, err := s.apply(ctx, tx, id, m.Body)
		if errors.Is(err, orders.ErrOrderNotFound) {
			// Not an order of ours: nothing to do, and retrying would not change that.
			s.log.WarnContext(ctx, "event for an unknown order", "type", e.Name(), "order_id", id, "message_id", m.ID)
			return nil
		}
		return err
	})
}

// Sweep gives every unfinished saga past its deadline its timeout, one saga per
// transaction, and returns how many it handled. A saga whose timeout fails is put
// off by a step timeout so it does not hold up the others.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	const batch = 100
	n := 0
	for n < batch && ctx.Err() == nil {
		var id string
		err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
			var err error
			if id, err = s.repo.ClaimDue(ctx, tx, s.now()); err != nil || id == "" {
				return err
			}
			_, err = s.apply(ctx, tx, id, saga.Timeout{})
			return err
		})
		if id == "" {
			return n, err
		}
		n++
		if err != nil {
			s.log.ErrorContext(ctx, "saga timeout failed; put off", "order_id", id, "err", err)
			if _, perr := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE sagas SET deadline = ? WHERE order_id = ?`),
				micros(s.now().Add(s.opts.Timing.StepTimeout)), id); perr != nil {
				return n, errors.Join(err, perr)
			}
		}
	}
	return n, nil
}

// Start runs the timeout sweep (every SweepEvery) and the purge of old checkout
// keys (hourly) in a goroutine, until Stop.
func (s *Service) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.run(ctx)
	return nil
}

func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	ctx = store.WithPriority(ctx) // sagas in flight go before new checkouts
	t := time.NewTicker(s.opts.SweepEvery)
	defer t.Stop()
	var lastPurge time.Time
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("saga timeout sweep failed", "err", err)
		}
		if time.Since(lastPurge) > time.Hour {
			lastPurge = time.Now()
			if n, err := s.repo.PurgeCheckoutKeys(ctx, s.db, s.now().Add(-s.opts.KeyRetention)); err != nil && ctx.Err() == nil {
				s.log.Warn("purging checkout keys failed", "err", err)
			} else if n > 0 {
				s.log.Info("purged checkout keys", "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop stops the sweep, waiting (up to ctx's end) for the pass in progress.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
