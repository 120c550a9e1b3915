// Package notifications is the contract of the notifications module: it tells
// customers what happened to their orders and rides — an in-app notification for
// every OrderConfirmed, OrderRejected, OrderCancelled and RefundIssued, and for a
// rider's DriverAssigned, DriverArriving, RideCompleted (the receipt) and
// RideCancelled — and an email through SMTP when one is configured. Other modules use this package and nothing
// else of notifications; they never call it: it only listens.
//
// Emails are sent after the notification is stored (never inside a transaction),
// retried with backoff, and at most once per notification as far as SMTP allows
// (a crash between the server's acceptance and the record of it sends it again).
package notifications

import (
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// Limits on notification queries.
const MaxPageSize = 100

// Notification is one message to a customer.
type Notification struct {
	ID         string    `json:"id" format:"uuid"`
	CustomerID string    `json:"customer_id" format:"uuid"`
	Kind       string    `json:"kind" enum:"order_confirmed,order_rejected,order_cancelled,refund_issued,driver_assigned,driver_arriving,ride_completed,ride_cancelled"`
	OrderID    string    `json:"order_id,omitempty" format:"uuid" doc:"the order it is about; absent when it is about a ride"`
	RideID     string    `json:"ride_id,omitempty" format:"uuid" doc:"the ride it is about; absent when it is about an order"`
	Title      string    `json:"title"`
	Body       string    `json:"body"`
	Email      string    `json:"email_status" enum:"none,pending,sent,failed" doc:"whether an email was sent for it"`
	CreatedAt  time.Time `json:"created_at"`
}

// ListNotifications asks for a page of a customer's notifications, newest first.
type ListNotifications struct {
	CustomerID string `json:"customer_id"`
	Before     string `json:"before"` // the last id of the previous page
	Limit      int    `json:"limit"`
}

// NotificationPage is the reply to ListNotifications.
type NotificationPage struct {
	Items      []Notification `json:"items"`
	NextBefore string         `json:"next_before"`
}

// The notifications module's requests.
var (
	// Handled by notices.(*Service).List.
	ListNotificationsRequest = message.NewRequest[ListNotifications, NotificationPage]("notifications.ListNotifications")
)

// Errors the notifications module returns.
var (
	ErrInvalidInput = message.NewError(message.Invalid, "notifications.invalid_input", "the request is not valid")
)
