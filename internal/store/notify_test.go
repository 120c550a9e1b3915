package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
)

// TestNotifyWakesListenersInOtherProcesses: on PostgreSQL a transaction's Notify
// wakes Listen on another connection pool of the same schema (another process)
// when it commits, and not when it rolls back; Listen wakes once as soon as it
// listens, since it cannot know what it missed before.
func TestNotifyWakesListenersInOtherProcesses(t *testing.T) {
	url := testdb.PostgresURL(t)
	schema := testdb.FreshSchema()
	ctx := t.Context()
	open := func() *store.DB {
		db, err := store.OpenPostgres(ctx, "notifytest", url, schema, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	listener, writer := open(), open()
	var wakes atomic.Int32
	woke := make(chan struct{}, 10)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		listener.Listen(lctx, "things", func() { wakes.Add(1); woke <- struct{}{} }, testdb.Logger())
	}()
	t.Cleanup(func() { stop(); <-done })
	await := func(what string) {
		t.Helper()
		select {
		case <-woke:
		case <-time.After(10 * time.Second): // a liveness bound, not a speed figure
			t.Fatalf("no wake for %s", what)
		}
	}
	await("listening")
	errBoom := errors.New("boom")
	if err := store.InTx(ctx, writer, func(tx *store.Tx) error {
		if err := tx.Notify(ctx, "things"); err != nil {
			return err
		}
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if err := store.InTx(ctx, writer, func(tx *store.Tx) error { return tx.Notify(ctx, "things") }); err != nil {
		t.Fatal(err)
	}
	await("a committed notify")
	time.Sleep(200 * time.Millisecond) // room for a wrong extra wake to arrive
	if n := wakes.Load(); n != 2 {
		t.Errorf("%d wakes; want 2 (listening, the committed notify — not the rolled-back one)", n)
	}
}
