package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/agora-commerce/agora/internal/backoff"
)

// Notify wakes, once tx commits, the listeners of topic on this database in every
// process (Listen): on PostgreSQL through NOTIFY, which the server delivers on
// commit and drops on rollback. On SQLite it does nothing: no other process writes
// a module's SQLite file, and waiters in this one are woken by OnCommit.
func (t *Tx) Notify(ctx context.Context, topic string) error {
	if t.db.Dialect != Postgres {
		return nil
	}
	if _, err := t.ExecContext(ctx, `SELECT pg_notify(current_schema() || '.' || $1, '')`, topic); err != nil {
		return fmt.Errorf("store: notify %s: %w", topic, err)
	}
	return nil
}

// Listen calls wake whenever a transaction on db notifies topic (Tx.Notify),
// until ctx ends; it returns then. On PostgreSQL it holds one connection of the
// pool, LISTENing; when that connection is lost it reconnects with backoff and
// calls wake once it listens again (a notification sent meanwhile is lost, so the
// caller looks for itself). On SQLite it waits for ctx and returns: see Notify.
func (db *DB) Listen(ctx context.Context, topic string, wake func(), log *slog.Logger) {
	if db.Dialect != Postgres {
		<-ctx.Done()
		return
	}
	for attempt := 1; ctx.Err() == nil; attempt++ {
		listening := false
		err := db.listenOnce(ctx, topic, func() {
			listening, attempt = true, 0
			wake()
		}, wake)
		if ctx.Err() != nil {
			return
		}
		if listening || attempt == 1 {
			log.Warn("store: listening for notifications failed; retrying", "module", db.Module, "topic", topic, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff.Delay(100*time.Millisecond, 5*time.Second, max(attempt, 1))):
		}
	}
}

// listenOnce takes a connection, LISTENs on it, calls ready, then calls wake for
// each notification until the connection fails or ctx ends.
func (db *DB) listenOnce(ctx context.Context, topic string, ready, wake func()) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		var schema string
		if err := pc.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return err
		}
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{schema + "." + topic}.Sanitize()); err != nil {
			return err
		}
		ready()
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				// Never back to the pool: it listens, and a cut-short wait leaves
				// it mid-protocol.
				return fmt.Errorf("%w: %w", driver.ErrBadConn, err)
			}
			wake()
		}
	})
}
