package checkout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
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
		on(s, payments.PaymentAuthorizedEvent, func(m payments.PaymentAuthorized) string { return ordersOnly(m.Payable, m.PayableID) }),
		on(s, payments.PaymentDeclinedEvent, func(m payments.PaymentDeclined) string { return ordersOnly(m.Payable, m.PayableID) }),
		on(s, payments.PaymentCapturedEvent, func(m payments.PaymentCaptured) string { return ordersOnly(m.Payable, m.PayableID) }),
		on(s, payments.PaymentVoidedEvent, func(m payments.PaymentVoided) string { return ordersOnly(m.Payable, m.PayableID) }),
		on(s, payments.RefundIssuedEvent, func(m payments.RefundIssued) string { return ordersOnly(m.Payable, m.PayableID) }),
		on(s, payments.RefundFailedEvent, func(m payments.RefundFailed) string { return ordersOnly(m.Payable, m.PayableID) }),
	}
}

// ordersOnly returns the order a payments event is about: its payable's id when
// the payable is an order (an empty kind is one: payments said nothing else before
// rides existed), and "" for any other payable's — a ride's events are none of the
// orders saga's business, whatever their id.
func ordersOnly(kind payments.Payable, id string) string {
	if kind != "" && kind != payments.PayableOrder {
		return ""
	}
	return id
}

// on subscribes the saga to e; orderOf returns the order an event is about, or ""
// for an event that is not about an order (acknowledged without a transaction).
// A saga step locks only its order's rows: the subscription is keyed by order.
func on[T any](s *Service, e message.Event[T], orderOf func(T) string) bus.Subscription {
	return outbox.SubscribeEventFor(s.db, e, Consumer, orderOf, func(ctx context.Context, tx *store.Tx, m message.Message[T], id string) error {
		_, err := s.apply(ctx, tx, id, m.Body)
		if errors.Is(err, orders.ErrOrderNotFound) {
			// Not an order of ours: nothing to do, and retrying would not change that.
			s.log.WarnContext(ctx, "event for an unknown order", "type", e.Name(), "order_id", id, "message_id", m.ID)
			return nil
		}
		return err
	})
}

// sagaTimeouts is the sagas table as a job queue: an unfinished saga is a job, due
// at its deadline (which every step of the saga moves). A timeout that fails is
// retried with backoff (an attempt counts when it fails), and is never given up:
// the saga's own attempts decide when it compensates.
var sagaTimeouts = jobs.Table{
	Name:    "sagas",
	Key:     "order_id",
	Columns: "order_id, sweep_attempts",
	Live: fmt.Sprintf("state IN ('%s', '%s', '%s', '%s')", orders.SagaReserving, orders.SagaAuthorizing,
		orders.SagaCompleting, orders.SagaCompensating),
	Order:    "deadline",
	Due:      "deadline",
	Attempts: "sweep_attempts",
	Unit:     time.Microsecond,
	Done:     "sweep_attempts = 0",
}

// dueSaga is a saga the sweep claimed.
type dueSaga struct {
	OrderID  string `db:"order_id"`
	Failures int    `db:"sweep_attempts"`
}

// newSweep returns the timeout sweep: a jobs.Worker over the sagas that also
// purges old checkout keys (hourly). Sagas in flight go before new checkouts
// (Priority).
func (s *Service) newSweep() *jobs.Worker[dueSaga] {
	q := jobs.New(s.db, sagaTimeouts, jobs.Policy{BaseBackoff: s.opts.Timing.StepTimeout, MaxBackoff: 10 * time.Minute})
	purge := jobs.Every(time.Hour, func(ctx context.Context) {
		if n, err := s.repo.PurgeCheckoutKeys(ctx, s.db, s.now().Add(-s.opts.KeyRetention)); err != nil && ctx.Err() == nil {
			s.log.Warn("purging checkout keys failed", "err", err)
		} else if n > 0 {
			s.log.Info("purged checkout keys", "count", n)
		}
	})
	return jobs.NewWorker(q, jobs.Config{Name: "saga timeout sweep", PollInterval: s.opts.SweepEvery, Priority: true, Upkeep: purge},
		s.log, func(ctx context.Context, q *jobs.Queue, batch []dueSaga) error { return s.timeout(ctx, q, batch[0]) })
}

// sweepAt has the sweep wake at sg's deadline, once tx commits, if sg is still
// running: the sweep learns of deadlines set in this process from here, and of
// those set by another replica at its next poll (SweepEvery).
func (s *Service) sweepAt(tx *store.Tx, sg saga.Saga) {
	if !saga.Terminal(sg.State) {
		deadline := sg.Deadline
		tx.OnCommit(func() { s.sweep.NotifyAt(deadline) })
	}
}

// timeout gives saga d its timeout in one transaction, if it is still due (an
// answer may have moved it since it was claimed). A timeout that fails is put off
// by a backoff, so it does not hold up the others.
func (s *Service) timeout(ctx context.Context, q *jobs.Queue, d dueSaga) error {
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		sg, err := s.repo.GetSaga(ctx, tx, d.OrderID, true)
		if err != nil {
			return err
		}
		if !sg.Terminal() && !sg.Deadline.After(s.now()) {
			if _, err := s.apply(ctx, tx, d.OrderID, saga.Timeout{}); err != nil {
				return err
			}
		}
		return q.Complete(ctx, tx, d.OrderID)
	})
	if err == nil || errors.Is(err, jobs.ErrLeaseLost) {
		return nil
	}
	s.log.ErrorContext(ctx, "saga timeout failed; put off", "order_id", d.OrderID, "err", err)
	if _, ferr := q.Fail(context.WithoutCancel(ctx), s.db, d.OrderID, d.Failures+1, err); ferr != nil {
		return errors.Join(err, ferr)
	}
	return nil
}

// Sweep gives every unfinished saga past its deadline its timeout, one saga per
// transaction, and returns how many it handled (at most 100): what the started
// sweep does on a loop.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	const batch = 100
	n := 0
	for n < batch && ctx.Err() == nil {
		got, err := s.sweep.Pass(ctx, nil)
		n += got
		if got == 0 || err != nil {
			return n, err
		}
	}
	return n, nil
}

// Start runs the timeout sweep (every SweepEvery) and the purge of old checkout
// keys (hourly) in a goroutine, until Stop.
func (s *Service) Start(context.Context) error {
	s.sweep.Start()
	return nil
}

// Stop stops the sweep, waiting (up to ctx's end) for the saga in progress, and
// releases the sagas it holds.
func (s *Service) Stop(ctx context.Context) error { return s.sweep.Stop(ctx) }
