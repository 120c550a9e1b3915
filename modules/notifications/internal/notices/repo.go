package notices

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/modules/notifications"
)

// Email statuses, as stored and as the contract's Email field enumerates them.
const (
	EmailNone    = "none"
	EmailPending = "pending"
	EmailSent    = "sent"
	EmailFailed  = "failed"
)

// maxErrorLen bounds the last email failure kept with a notification.
const maxErrorLen = 500

// Repo stores notifications. Its methods take an sqlx.ExtContext so they run the
// same inside a transaction or on the pool.
type Repo struct{}

func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

const columns = `id, customer_id, kind, order_id, ride_id, title, body, email_status, created_at`

type row struct {
	ID          string    `db:"id"`
	CustomerID  string    `db:"customer_id"`
	Kind        string    `db:"kind"`
	OrderID     string    `db:"order_id"`
	RideID      string    `db:"ride_id"`
	Title       string    `db:"title"`
	Body        string    `db:"body"`
	EmailStatus string    `db:"email_status"`
	CreatedAt   time.Time `db:"created_at"`
}

func (r row) notification() notifications.Notification {
	return notifications.Notification{ID: r.ID, CustomerID: r.CustomerID, Kind: r.Kind, OrderID: r.OrderID, RideID: r.RideID,
		Title: r.Title, Body: r.Body, Email: r.EmailStatus, CreatedAt: r.CreatedAt.UTC()}
}

// Insert stores n with its ref unless a notification of its kind for its order (or
// ride) with that ref exists; it reports whether it stored it. A pending email is due at once.
func (Repo) Insert(ctx context.Context, q sqlx.ExtContext, n notifications.Notification, ref string) (bool, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO notifications
		(id, customer_id, kind, order_id, ride_id, ref, title, body, email_status, email_next_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, order_id, ride_id, ref) DO NOTHING`),
		n.ID, n.CustomerID, n.Kind, n.OrderID, n.RideID, ref, n.Title, n.Body, n.Email, n.CreatedAt.UnixMilli(), storedTime(n.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("notifications: insert %s for order %q ride %q: %w", n.Kind, n.OrderID, n.RideID, err)
	}
	added, err := res.RowsAffected()
	return added == 1, err
}

// List returns up to limit of customerID's notifications with ids below before
// (all when empty), newest first.
func (Repo) List(ctx context.Context, q sqlx.ExtContext, customerID, before string, limit int) ([]notifications.Notification, error) {
	query := `SELECT ` + columns + ` FROM notifications WHERE customer_id = ?`
	args := []any{customerID}
	if before != "" {
		query += ` AND id < ?`
		args = append(args, before)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	var rows []row
	if err := sqlx.SelectContext(ctx, q, &rows, q.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("notifications: list for %s: %w", customerID, err)
	}
	out := make([]notifications.Notification, len(rows))
	for i, r := range rows {
		out[i] = r.notification()
	}
	return out, nil
}

// EmailState is what tests and operators see of a notification's email.
type EmailState struct {
	Status   string `db:"email_status"`
	Attempts int    `db:"email_attempts"`
	Error    string `db:"email_error"`
}

// Email returns the state of notification id's email.
func (Repo) Email(ctx context.Context, q sqlx.ExtContext, id string) (EmailState, error) {
	var s EmailState
	err := sqlx.GetContext(ctx, q, &s, q.Rebind(`SELECT email_status, email_attempts, email_error FROM notifications WHERE id = ?`), id)
	if err != nil {
		return s, fmt.Errorf("notifications: email state of %s: %w", id, err)
	}
	return s, nil
}
