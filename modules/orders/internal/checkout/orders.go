package checkout

import (
	"context"
	"errors"

	"github.com/agora-commerce/agora/internal/longpoll"
	"github.com/agora-commerce/agora/internal/paging"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/validate"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
)

// Orders and sagas: reads, long polls, cancellations and refunds, and apply, the
// one way anything changes a saga.

func checkOrderID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return orders.ErrOrderNotFound.Withf("no order with id %q", id)
	}
	return nil
}

// GetOrder answers orders.GetOrder.
func (s *Service) GetOrder(ctx context.Context, q orders.GetOrder) (orders.Order, error) {
	if err := checkOrderID(q.ID); err != nil {
		return orders.Order{}, err
	}
	return s.repo.GetOrder(ctx, s.db, q.ID, false)
}

// WaitOrder answers orders.WaitOrder: the order as soon as its version is above
// AfterVersion, or as it is once Wait (capped at MaxWait, and ending a little
// before the caller's deadline) has passed. A change committed in this process wakes
// it at once; one committed by another replica is seen within PollInterval.
func (s *Service) WaitOrder(ctx context.Context, q orders.WaitOrder) (orders.Order, error) {
	if err := checkOrderID(q.ID); err != nil {
		return orders.Order{}, err
	}
	bounds := longpoll.Bounds{MaxWait: s.opts.MaxWait, PollInterval: s.opts.PollInterval}
	return longpoll.Wait(ctx, &s.changes, q.ID, q.Wait, bounds, func() (orders.Order, bool, error) {
		o, err := s.repo.GetOrder(ctx, s.db, q.ID, false)
		return o, o.Version > q.AfterVersion, err
	})
}

// ListOrders answers orders.ListOrders.
func (s *Service) ListOrders(ctx context.Context, q orders.ListOrders) (orders.OrderPage, error) {
	switch q.Status {
	case "", orders.StatusPending, orders.StatusConfirmed, orders.StatusRejected, orders.StatusCancelled:
	default:
		return orders.OrderPage{}, invalid("query.status", "unknown order status %q", q.Status)
	}
	if len(q.Before) > maxIDLen || len(q.CustomerID) > maxIDLen {
		return orders.OrderPage{}, orders.ErrInvalidInput.Withf("ids are at most %d characters", maxIDLen)
	}
	limit := paging.Limit(q.Limit, orders.MaxPageSize, orders.MaxPageSize)
	items, next, err := paging.Read(limit, func(n int) ([]orders.Order, error) {
		return s.repo.ListOrders(ctx, s.db, q.CustomerID, q.Status, q.Before, n)
	}, func(o orders.Order) string { return o.ID })
	if err != nil {
		return orders.OrderPage{}, err
	}
	return orders.OrderPage{Items: items, NextBefore: next}, nil
}

// CancelOrder answers orders.CancelOrder: it returns the order as the cancellation
// leaves it (a confirmed order still completing stays confirmed until it is
// completed, then is cancelled).
func (s *Service) CancelOrder(ctx context.Context, c orders.CancelOrder) (orders.Order, error) {
	if err := checkOrderID(c.ID); err != nil {
		return orders.Order{}, err
	}
	if err := validate.Text(orders.ErrInvalidInput, "body.reason", c.Reason, maxReasonLen); err != nil {
		return orders.Order{}, err
	}
	var o orders.Order
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		var err error
		o, err = s.apply(ctx, tx, c.ID, saga.Cancel{Reason: c.Reason, Actor: c.Actor})
		return err
	})
	if err == nil {
		s.log.InfoContext(ctx, "order cancellation asked", "order_id", c.ID, "actor", c.Actor)
	}
	return o, err
}

// RefundOrder answers orders.RefundOrder.
func (s *Service) RefundOrder(ctx context.Context, r orders.RefundOrder) (orders.Order, error) {
	if err := checkOrderID(r.ID); err != nil {
		return orders.Order{}, err
	}
	if r.RefundID == "" || len(r.RefundID) > orders.MaxIdempotencyKeyLen || !validate.Printable(r.RefundID) {
		return orders.Order{}, invalid("header.Idempotency-Key", "a refund id of 1 to %d printable characters is required", orders.MaxIdempotencyKeyLen)
	}
	if err := validate.Text(orders.ErrInvalidInput, "body.reason", r.Reason, maxReasonLen); err != nil {
		return orders.Order{}, err
	}
	var o orders.Order
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		var err error
		o, err = s.apply(ctx, tx, r.ID, saga.RefundRequest{RefundID: r.RefundID, Amount: r.Amount, Reason: r.Reason, Actor: r.Actor})
		return err
	})
	return o, err
}

// ListSagas answers orders.ListSagas.
func (s *Service) ListSagas(ctx context.Context, q orders.ListSagas) (orders.SagaPage, error) {
	switch q.State {
	case "", orders.SagaReserving, orders.SagaAuthorizing, orders.SagaCompleting, orders.SagaCompensating,
		orders.SagaCompleted, orders.SagaRejected, orders.SagaCancelled:
	default:
		return orders.SagaPage{}, invalid("query.state", "unknown saga state %q", q.State)
	}
	if len(q.After) > maxIDLen {
		return orders.SagaPage{}, orders.ErrInvalidInput.Withf("ids are at most %d characters", maxIDLen)
	}
	limit := paging.Limit(q.Limit, orders.MaxPageSize, orders.MaxPageSize)
	items, next, err := paging.Read(limit, func(n int) ([]saga.Saga, error) {
		return s.repo.ListSagas(ctx, s.db, q.State, q.After, n)
	}, func(sg saga.Saga) string { return sg.OrderID })
	if err != nil {
		return orders.SagaPage{}, err
	}
	page := orders.SagaPage{Items: make([]orders.Saga, 0, len(items)), NextAfter: next}
	for _, sg := range items {
		page.Items = append(page.Items, sg.View())
	}
	return page, nil
}

// GetSaga answers orders.GetSaga.
func (s *Service) GetSaga(ctx context.Context, q orders.GetSaga) (orders.Saga, error) {
	if q.OrderID == "" || len(q.OrderID) > maxIDLen {
		return orders.Saga{}, orders.ErrSagaNotFound.Withf("no saga for order %q", q.OrderID)
	}
	sg, err := s.repo.GetSaga(ctx, s.db, q.OrderID, false)
	return sg.View(), err
}

// apply feeds msg to the saga of order id inside tx and stores what it decides: the
// saga, the order when it changed (waking its waiters once tx commits) and the
// messages to send. It returns the order after the change.
func (s *Service) apply(ctx context.Context, tx *store.Tx, id string, msg any) (orders.Order, error) {
	sg, err := s.repo.GetSaga(ctx, tx, id, true)
	if errors.Is(err, orders.ErrSagaNotFound) {
		return orders.Order{}, orders.ErrOrderNotFound.Withf("no order with id %s", id)
	}
	if err != nil {
		return orders.Order{}, err
	}
	o, err := s.repo.GetOrder(ctx, tx, id, true)
	if err != nil {
		return orders.Order{}, err
	}
	r, err := saga.Apply(sg, o, msg, s.now(), s.opts.Timing)
	if err != nil {
		return orders.Order{}, err
	}
	if err := s.repo.UpdateSaga(ctx, tx, r.Saga); err != nil {
		return orders.Order{}, err
	}
	s.sweepAt(tx, r.Saga)
	if ended := s.opts.SagaEnded; ended != nil && saga.Terminal(r.Saga.State) && !saga.Terminal(sg.State) {
		state, took := r.Saga.State, r.Saga.UpdatedAt.Sub(r.Saga.CreatedAt)
		tx.OnCommit(func() { ended(state, took) })
	}
	if r.OrderChanged {
		if err := s.repo.UpdateOrder(ctx, tx, r.Order); err != nil {
			return orders.Order{}, err
		}
		tx.OnCommit(func() { s.changes.Notify(id) })
	}
	if err := s.outbox.Add(ctx, tx, r.Send...); err != nil {
		return orders.Order{}, err
	}
	if r.Saga.State != sg.State {
		s.log.InfoContext(ctx, "checkout saga moved", "order_id", id, "from", sg.State, "to", r.Saga.State,
			"order_status", r.Order.Status)
	}
	return r.Order, nil
}
