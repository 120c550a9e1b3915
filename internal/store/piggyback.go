package store

import (
	"context"
	"fmt"
	"sync/atomic"
)

// A Piggyback is bookkeeping that must become durable soon, but not at once: it
// rides in the next transaction that commits on its database — whatever work that
// transaction does — instead of paying a commit of its own. The outbox relay's
// record that messages were delivered is one: until it commits, a crash only
// means they are delivered again, which receivers' inboxes make harmless.
type Piggyback interface {
	// Take hands over the work waiting, or nil when there is none: run runs it
	// in the carrying transaction; done reports whether that transaction
	// committed it (false: the work is the piggyback's again).
	Take() (run func(ctx context.Context, tx *Tx) error, done func(committed bool))
}

type piggyback struct{ p atomic.Pointer[Piggyback] }

// SetPiggyback makes p ride in db's transactions from now on (one per database;
// nil removes it). A transaction carries it under a savepoint of its own, so that
// its failure never fails the transaction's own work.
func (db *DB) SetPiggyback(p Piggyback) {
	if p == nil {
		db.pig.p.Store(nil)
		return
	}
	db.pig.p.Store(&p)
}

// carry runs the waiting piggyback work, if any, in sqltx before its commit. The
// returned func must be called with the commit's outcome.
func (db *DB) carry(ctx context.Context, tx *Tx) func(committed bool) {
	pp := db.pig.p.Load()
	if pp == nil {
		return func(bool) {}
	}
	run, done := (*pp).Take()
	if run == nil {
		return func(bool) {}
	}
	if err := db.underSavepoint(ctx, tx, run); err != nil {
		done(false)
		return func(bool) {}
	}
	return done
}

// underSavepoint runs run in tx under a savepoint, rolling back to it when run
// fails.
func (db *DB) underSavepoint(ctx context.Context, tx *Tx, run func(ctx context.Context, tx *Tx) error) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT piggyback"); err != nil {
		return fmt.Errorf("store: %s savepoint: %w", db.Module, err)
	}
	if err := run(ctx, tx); err != nil {
		_, _ = tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT piggyback")
		return err
	}
	_, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT piggyback")
	return err
}
