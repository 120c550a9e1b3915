// Package notices is the notifications module's domain: the notification each
// order, refund or ride event becomes (in words a customer reads), its storage, the
// request that lists a customer's notifications, and the Emailer that sends them as
// email.
package notices

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/paging"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/notifications"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/rides"
)

// Consumer is the name under which the module subscribes to events (and records
// them in its inbox).
const Consumer = "notifications"

// DefaultPageSize is the page size of ListNotifications when the request names none.
const DefaultPageSize = 20

// Service turns events into notifications and answers the module's requests.
type Service struct {
	db   *store.DB
	repo Repo
	now  func() time.Time
	// emailer, when set, sends an email for every new notification: it is stored
	// as pending and the emailer is woken when it commits.
	emailer *Emailer
}

// NewService returns the service on db. With a non-nil emailer every new
// notification is also to be emailed.
func NewService(db *store.DB, emailer *Emailer) *Service {
	return &Service{db: db, emailer: emailer, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
}

// Handlers returns the service's request handlers, for the bus.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{bus.Handle(notifications.ListNotificationsRequest, s.List)}
}

// Subscriptions returns the service's event subscriptions, for the bus. Each runs
// in a transaction with the inbox record of its event, so a redelivered event has no
// second effect; an event re-published under a new id finds its notification
// already stored and adds none.
func (s *Service) Subscriptions() []bus.Subscription {
	return []bus.Subscription{
		outbox.SubscribeEvent(s.db, orders.OrderConfirmedEvent, Consumer, s.onConfirmed),
		outbox.SubscribeEvent(s.db, orders.OrderRejectedEvent, Consumer, s.onRejected),
		outbox.SubscribeEvent(s.db, orders.OrderCancelledEvent, Consumer, s.onCancelled),
		outbox.SubscribeEvent(s.db, payments.RefundIssuedEvent, Consumer, s.onRefunded),
		outbox.SubscribeEvent(s.db, rides.DriverAssignedEvent, Consumer, s.onDriverAssigned),
		outbox.SubscribeEvent(s.db, rides.DriverArrivingEvent, Consumer, s.onDriverArriving),
		outbox.SubscribeEvent(s.db, rides.RideCompletedEvent, Consumer, s.onRideCompleted),
		outbox.SubscribeEvent(s.db, rides.RideCancelledEvent, Consumer, s.onRideCancelled),
	}
}

// onConfirmed tells the customer their order is confirmed.
func (s *Service) onConfirmed(ctx context.Context, tx *store.Tx, m message.Message[orders.OrderConfirmed]) error {
	return s.add(ctx, tx, confirmed(m.Body))
}

// onRejected tells the customer why their order was rejected.
func (s *Service) onRejected(ctx context.Context, tx *store.Tx, m message.Message[orders.OrderRejected]) error {
	return s.add(ctx, tx, rejected(m.Body))
}

// onCancelled tells the customer their order was cancelled (and refunded, if it was paid).
func (s *Service) onCancelled(ctx context.Context, tx *store.Tx, m message.Message[orders.OrderCancelled]) error {
	return s.add(ctx, tx, cancelled(m.Body))
}

// onRefunded tells the customer money was given back.
func (s *Service) onRefunded(ctx context.Context, tx *store.Tx, m message.Message[payments.RefundIssued]) error {
	return s.add(ctx, tx, refunded(m.Body))
}

// onDriverAssigned tells the rider a driver is on the way.
func (s *Service) onDriverAssigned(ctx context.Context, tx *store.Tx, m message.Message[rides.DriverAssigned]) error {
	return s.add(ctx, tx, driverAssigned(m.Body))
}

// onDriverArriving tells the rider the driver is at the pickup.
func (s *Service) onDriverArriving(ctx context.Context, tx *store.Tx, m message.Message[rides.DriverArriving]) error {
	return s.add(ctx, tx, driverArriving(m.Body))
}

// onRideCompleted sends the rider the ride's receipt.
func (s *Service) onRideCompleted(ctx context.Context, tx *store.Tx, m message.Message[rides.RideCompleted]) error {
	return s.add(ctx, tx, rideCompleted(m.Body))
}

// onRideCancelled tells the rider the ride was cancelled, and the fee if one was charged.
func (s *Service) onRideCancelled(ctx context.Context, tx *store.Tx, m message.Message[rides.RideCancelled]) error {
	return s.add(ctx, tx, rideCancelled(m.Body))
}

// add stores d as a new notification in tx, unless it is stored already. An event
// without a customer, or about neither an order nor a ride, cannot be shown to
// anyone: it fails, so the relay retries it and then parks it where an operator
// sees it.
func (s *Service) add(ctx context.Context, tx *store.Tx, d draft) error {
	if d.CustomerID == "" || (d.OrderID == "") == (d.RideID == "") {
		return message.ErrInvalidMessage.Withf("a %s event needs a customer and an order or a ride (got customer %q, order %q, ride %q)",
			d.Kind, d.CustomerID, d.OrderID, d.RideID)
	}
	n := notifications.Notification{ID: bus.NewID(), CustomerID: d.CustomerID, Kind: d.Kind, OrderID: d.OrderID, RideID: d.RideID,
		Title: d.Title, Body: d.Body, Email: EmailNone, CreatedAt: s.now()}
	if s.emailer != nil {
		n.Email = EmailPending
	}
	added, err := s.repo.Insert(ctx, tx, n, d.Ref)
	if err != nil {
		return err
	}
	if added && s.emailer != nil {
		tx.OnCommit(s.emailer.Notify)
	}
	return nil
}

// List answers notifications.ListNotifications: a page of one customer's
// notifications, newest first. A limit outside 1..MaxPageSize is taken as
// DefaultPageSize (none given) or MaxPageSize (too many).
func (s *Service) List(ctx context.Context, q notifications.ListNotifications) (notifications.NotificationPage, error) {
	if q.CustomerID == "" {
		return notifications.NotificationPage{}, notifications.ErrInvalidInput.Withf("customer_id is required").OnField("customer_id")
	}
	if len(q.CustomerID) > 64 {
		return notifications.NotificationPage{}, notifications.ErrInvalidInput.Withf("customer_id is too long").OnField("customer_id")
	}
	if q.Before != "" {
		if _, err := uuid.Parse(q.Before); err != nil {
			return notifications.NotificationPage{}, notifications.ErrInvalidInput.Withf("before must be a notification id").OnField("before")
		}
	}
	limit := paging.Limit(q.Limit, DefaultPageSize, notifications.MaxPageSize)
	items, next, err := paging.Read(limit, func(n int) ([]notifications.Notification, error) {
		return s.repo.List(ctx, s.db, q.CustomerID, q.Before, n)
	}, func(n notifications.Notification) string { return n.ID })
	if err != nil {
		return notifications.NotificationPage{}, err
	}
	return notifications.NotificationPage{Items: items, NextBefore: next}, nil
}
