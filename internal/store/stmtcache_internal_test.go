package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/agora-commerce/agora/internal/testlog"
)

// Statements run on SQLite are prepared once (in the background) and then served
// from the cache, in and out of transactions, with the same results as unprepared.
func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	db, err := OpenSQLite(ctx, "m", filepath.Join(t.TempDir(), "m.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const insert = `INSERT INTO kv (k, v) VALUES (?, ?)`
	const read = `SELECT v FROM kv WHERE k = ?`
	cached := func(q string) bool {
		db.stmts.mu.Lock()
		defer db.stmts.mu.Unlock()
		_, ok := db.stmts.m[q]
		return ok
	}
	for i, k := range []string{"a", "b", "c"} {
		if err := InTx(ctx, db, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, insert, k, i)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	testlog.Eventually(t, "the insert to be prepared", func() bool { return cached(insert) })
	if err := InTx(ctx, db, func(tx *Tx) error { // now through the cached statement
		_, err := tx.ExecContext(ctx, insert, "d", 3)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var v int
	for range 2 {
		if err := db.GetContext(ctx, &v, read, "d"); err != nil || v != 3 {
			t.Fatalf("read d = %d, %v", v, err)
		}
	}
	testlog.Eventually(t, "the read to be prepared", func() bool { return cached(read) })
	if err := db.GetContext(ctx, &v, read, "b"); err != nil || v != 1 {
		t.Fatalf("cached read b = %d, %v", v, err)
	}
	// A statement that cannot be prepared still reports its error to the caller.
	if _, err := db.ExecContext(ctx, `INSERT INTO nowhere VALUES (1)`); err == nil {
		t.Error("insert into a missing table succeeded")
	}
	// A failed insert in a transaction rolls back with it, cached or not.
	if err := InTx(ctx, db, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, insert, "e", 4); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insert, "a", 5) // duplicate key
		return err
	}); err == nil {
		t.Fatal("duplicate insert succeeded")
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM kv`); err != nil || n != 4 {
		t.Errorf("rows = %d, %v; want 4", n, err)
	}
}

// Close waits for the statements being prepared in the background: none of them
// opens a connection — on SQLite, the database's files — after Close returns, so
// the database's directory can be removed at once.
func TestCloseOutlivesNoPrepare(t *testing.T) {
	ctx := context.Background()
	for round := range 20 {
		dir := filepath.Join(t.TempDir(), "data")
		db, err := OpenSQLite(ctx, "m", filepath.Join(dir, "m.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 30 { // each a new text, each a background prepare
			if _, err := db.ExecContext(ctx, fmt.Sprintf("SELECT %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatalf("round %d: remove the data directory after Close: %v", round, err)
		}
	}
}
