package notices

import (
	"context"
	"fmt"
	"strings"
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

const columns = `id, customer_id, kind, order_id, title, body, email_status, created_at`

type row struct {
	ID          string    `db:"id"`
	CustomerID  string    `db:"customer_id"`
	Kind        string    `db:"kind"`
	OrderID     string    `db:"order_id"`
	Title       string    `db:"title"`
	Body        string    `db:"body"`
	EmailStatus string    `db:"email_status"`
	CreatedAt   time.Time `db:"created_at"`
}

func (r row) notification() notifications.Notification {
	return notifications.Notification{ID: r.ID, CustomerID: r.CustomerID, Kind: r.Kind, OrderID: r.OrderID,
		Title: r.Title, Body: r.Body, Email: r.EmailStatus, CreatedAt: r.CreatedAt.UTC()}
}

// Insert stores n with its ref unless a notification of its kind for its order with
// that ref exists; it reports whether it stored it. A pending email is due at once.
func (Repo) Insert(ctx context.Context, q sqlx.ExtContext, n notifications.Notification, ref string) (bool, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO notifications
		(id, customer_id, kind, order_id, ref, title, body, email_status, email_next_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, order_id, ref) DO NOTHING`),
		n.ID, n.CustomerID, n.Kind, n.OrderID, ref, n.Title, n.Body, n.Email, n.CreatedAt.UnixMilli(), storedTime(n.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("notifications: insert %s for order %s: %w", n.Kind, n.OrderID, err)
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

// DueEmails returns the ids of up to limit notifications whose email is pending and
// due at now, the longest waiting first.
func (Repo) DueEmails(ctx context.Context, q sqlx.ExtContext, now time.Time, limit int) ([]string, error) {
	var ids []string
	err := sqlx.SelectContext(ctx, q, &ids, q.Rebind(`SELECT id FROM notifications
		WHERE email_status = 'pending' AND email_next_at <= ? ORDER BY email_next_at, id LIMIT ?`), now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("notifications: due emails: %w", err)
	}
	return ids, nil
}

// EmailClaim is a pending email one sender has taken.
type EmailClaim struct {
	ID         string `db:"id"`
	CustomerID string `db:"customer_id"`
	Title      string `db:"title"`
	Body       string `db:"body"`
	Attempts   int    `db:"email_attempts"` // this attempt included
}

// ClaimEmail takes notification id's email for one attempt if it is still pending
// and due at now: it counts the attempt and makes the email due again only at
// leaseUntil, so that no other sender takes it meanwhile and a sender that dies
// leaves it to be taken again then. It reports false when another sender took it
// first or it is no longer pending.
func (Repo) ClaimEmail(ctx context.Context, q sqlx.ExtContext, id string, now, leaseUntil time.Time) (EmailClaim, bool, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE notifications
		SET email_attempts = email_attempts + 1, email_next_at = ?
		WHERE id = ? AND email_status = 'pending' AND email_next_at <= ?`), leaseUntil.UnixMilli(), id, now.UnixMilli())
	if err != nil {
		return EmailClaim{}, false, fmt.Errorf("notifications: claim email %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return EmailClaim{}, false, err
	}
	var c EmailClaim
	err = sqlx.GetContext(ctx, q, &c, q.Rebind(`SELECT id, customer_id, title, body, email_attempts
		FROM notifications WHERE id = ?`), id)
	if err != nil {
		return EmailClaim{}, false, fmt.Errorf("notifications: read claimed email %s: %w", id, err)
	}
	return c, true, nil
}

// EmailSent records that id's email was accepted by the mail server.
func (Repo) EmailSent(ctx context.Context, q sqlx.ExtContext, id string) error {
	_, err := q.ExecContext(ctx, q.Rebind(`UPDATE notifications SET email_status = 'sent', email_error = ''
		WHERE id = ? AND email_status = 'pending'`), id)
	if err != nil {
		return fmt.Errorf("notifications: record email %s sent: %w", id, err)
	}
	return nil
}

// EmailFailed records a failed attempt at id's email: it is due again at retryAt,
// or, when retryAt is zero, failed for good.
func (Repo) EmailFailed(ctx context.Context, q sqlx.ExtContext, id string, cause error, retryAt time.Time) error {
	msg := cause.Error()
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen]
	}
	msg = strings.ToValidUTF8(msg, "")
	var err error
	if retryAt.IsZero() {
		_, err = q.ExecContext(ctx, q.Rebind(`UPDATE notifications SET email_status = 'failed', email_error = ?
			WHERE id = ? AND email_status = 'pending'`), msg, id)
	} else {
		_, err = q.ExecContext(ctx, q.Rebind(`UPDATE notifications SET email_next_at = ?, email_error = ?
			WHERE id = ? AND email_status = 'pending'`), retryAt.UnixMilli(), msg, id)
	}
	if err != nil {
		return fmt.Errorf("notifications: record email %s failure: %w", id, err)
	}
	return nil
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
