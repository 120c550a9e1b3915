package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
)

// DeadLetter is a message the relay gave up on after MaxAttempts deliveries.
type DeadLetter struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	Kind          string    `json:"kind"`
	CorrelationID string    `json:"correlation_id"`
	Attempts      int       `json:"attempts"`
	LastError     string    `json:"last_error"`
	CreatedAt     time.Time `json:"created_at"`
	DeadAt        time.Time `json:"dead_at"`
}

// ErrDeadLetterNotFound: no dead letter has that id in this module's outbox.
var ErrDeadLetterNotFound = message.NewError(message.NotFound, "outbox.dead_letter_not_found", "no dead letter with that id")

// DeadLetters lists and redrives the dead letters of one module's outbox.
type DeadLetters struct {
	db    *store.DB
	relay *Relay
}

// NewDeadLetters returns the dead-letter view of db's outbox; relay (may be nil) is
// woken after a redrive.
func NewDeadLetters(db *store.DB, relay *Relay) *DeadLetters {
	return &DeadLetters{db: db, relay: relay}
}

// List returns up to limit dead letters with ids greater than after, oldest first.
func (d *DeadLetters) List(ctx context.Context, after string, limit int) ([]DeadLetter, error) {
	var rows []struct {
		ID            string `db:"id"`
		Type          string `db:"type"`
		Kind          string `db:"kind"`
		CorrelationID string `db:"correlation_id"`
		Attempts      int    `db:"attempts"`
		LastError     string `db:"last_error"`
		CreatedAt     int64  `db:"created_at"`
		DeadAt        int64  `db:"dead_at"`
	}
	err := d.db.SelectContext(ctx, &rows, d.db.Rebind(`SELECT id, type, kind, correlation_id, attempts, last_error, created_at, dead_at
		FROM outbox WHERE dead_at IS NOT NULL AND id > ? ORDER BY id LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: list dead letters: %w", err)
	}
	out := make([]DeadLetter, len(rows))
	for i, r := range rows {
		out[i] = DeadLetter{ID: r.ID, Type: r.Type, Kind: r.Kind, CorrelationID: r.CorrelationID, Attempts: r.Attempts,
			LastError: r.LastError, CreatedAt: time.UnixMilli(r.CreatedAt).UTC(), DeadAt: time.UnixMilli(r.DeadAt).UTC()}
	}
	return out, nil
}

// Redrive puts the dead letter id back in line for delivery with a fresh attempt count.
func (d *DeadLetters) Redrive(ctx context.Context, id string) error {
	res, err := d.db.ExecContext(ctx, d.db.Rebind(`UPDATE outbox
		SET dead_at = NULL, attempts = 0, next_attempt_at = ?, lease_owner = '', lease_until = 0
		WHERE id = ? AND dead_at IS NOT NULL`), time.Now().UTC().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("outbox: redrive %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrDeadLetterNotFound
	}
	if d.relay != nil {
		d.relay.Notify()
	}
	return nil
}

// Backlog reports how many messages wait for delivery and the age of the oldest.
func (d *DeadLetters) Backlog(ctx context.Context) (pending int, oldest time.Duration, dead int, err error) {
	var s struct {
		Pending int           `db:"pending"`
		Oldest  sql.NullInt64 `db:"oldest"`
		Dead    int           `db:"dead"`
	}
	err = d.db.GetContext(ctx, &s, `SELECT
		COALESCE(SUM(CASE WHEN dead_at IS NULL THEN 1 ELSE 0 END), 0) AS pending,
		MIN(CASE WHEN dead_at IS NULL THEN created_at END) AS oldest,
		COALESCE(SUM(CASE WHEN dead_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS dead
		FROM outbox`)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, 0, nil
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("outbox: backlog: %w", err)
	}
	if s.Oldest.Valid {
		oldest = time.Since(time.UnixMilli(s.Oldest.Int64))
	}
	return s.Pending, oldest, s.Dead, nil
}
