package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testlog"
)

var discard = slog.New(slog.DiscardHandler)

// testCtx bounds every test so that a leaked connection or a stuck lock turns into a
// failure rather than a hung test binary.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openDB(t *testing.T, o store.Options) *store.DB {
	t.Helper()
	db, err := store.OpenSQLite(testCtx(t), "test", filepath.Join(t.TempDir(), "test.db"), o)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustExec(t *testing.T, db *store.DB, query string) {
	t.Helper()
	if _, err := db.ExecContext(testCtx(t), query); err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
}

func names(t *testing.T, db *store.DB) []string {
	t.Helper()
	var out []string
	if err := db.SelectContext(testCtx(t), &out, `SELECT name FROM items ORDER BY name`); err != nil {
		t.Fatalf("select items: %v", err)
	}
	return out
}

func TestOpenSQLiteSettings(t *testing.T) {
	ctx := testCtx(t)
	// A data directory that does not exist yet is created.
	path := filepath.Join(t.TempDir(), "nested", "dir", "catalog.db")
	db, err := store.OpenSQLite(ctx, "catalog", path, store.Options{BusyTimeout: 1234 * time.Millisecond, MaxOpenConns: 2})
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	defer db.Close()
	if db.Module != "catalog" || db.Dialect != store.SQLite {
		t.Errorf("Module, Dialect = %q, %q; want catalog, sqlite", db.Module, db.Dialect)
	}

	// The pragmas are per connection: check every connection of the pool, not only one.
	for i := range 2 {
		c, err := db.Connx(ctx)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		defer c.Close()
		var got struct {
			Journal string
			FK      int
			Busy    int
			Sync    int
		}
		for _, q := range []struct {
			pragma string
			dst    any
		}{
			{"journal_mode", &got.Journal},
			{"foreign_keys", &got.FK},
			{"busy_timeout", &got.Busy},
			{"synchronous", &got.Sync},
		} {
			if err := c.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.dst); err != nil {
				t.Fatalf("conn %d: PRAGMA %s: %v", i, q.pragma, err)
			}
		}
		want := struct {
			Journal string
			FK      int
			Busy    int
			Sync    int
		}{Journal: "wal", FK: 1, Busy: 1234, Sync: 1 /* NORMAL */}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("conn %d pragmas (-want +got):\n%s", i, diff)
		}
	}
}

func TestInTx(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		fn        func(tx *store.Tx) error // inserts "a" and then ends as the case says
		wantErr   error
		wantPanic any
		wantRows  []string
		wantHooks []string
	}{
		{
			name:      "nil commits and runs hooks in order",
			fn:        func(tx *store.Tx) error { return nil },
			wantRows:  []string{"a"},
			wantHooks: []string{"first", "second"},
		},
		{
			name:    "error rolls back, returns the error and runs no hook",
			fn:      func(tx *store.Tx) error { return fmt.Errorf("wrapped: %w", errBoom) },
			wantErr: errBoom,
		},
		{
			name:      "panic rolls back, re-panics and runs no hook",
			fn:        func(tx *store.Tx) error { panic("kaboom") },
			wantPanic: "kaboom",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One connection: if InTx leaked the connection or left it inside a
			// transaction, the checks below would block (and hit the deadline) or fail.
			db := openDB(t, store.Options{MaxOpenConns: 1})
			mustExec(t, db, `CREATE TABLE items (name TEXT PRIMARY KEY)`)
			ctx := testCtx(t)

			var hooks []string
			var gotPanic any
			var err error
			func() {
				defer func() { gotPanic = recover() }()
				err = store.InTx(ctx, db, func(tx *store.Tx) error {
					if _, err := tx.ExecContext(ctx, `INSERT INTO items (name) VALUES ('a')`); err != nil {
						t.Fatalf("insert: %v", err)
					}
					tx.OnCommit(func() { hooks = append(hooks, "first") })
					tx.OnCommit(func() { hooks = append(hooks, "second") })
					return tc.fn(tx)
				})
			}()
			if !cmp.Equal(tc.wantPanic, gotPanic) {
				t.Errorf("panic = %v; want %v", gotPanic, tc.wantPanic)
			}
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Errorf("InTx error = %v; want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantHooks, hooks); diff != "" {
				t.Errorf("hooks run (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRows, names(t, db)); diff != "" {
				t.Errorf("rows after InTx (-want +got):\n%s", diff)
			}
			// The connection went back to the pool clean: a new transaction works.
			if err := store.InTx(ctx, db, func(tx *store.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO items (name) VALUES ('z')`)
				return err
			}); err != nil {
				t.Errorf("next InTx: %v", err)
			}
		})
	}
}

// An OnCommit hook must see the transaction's writes as durable, committed data: a
// different connection can read them from inside the hook.
func TestInTxOnCommitRunsAfterCommit(t *testing.T) {
	db := openDB(t, store.Options{MaxOpenConns: 2})
	mustExec(t, db, `CREATE TABLE items (name TEXT PRIMARY KEY)`)
	ctx := testCtx(t)

	var seenInHook [][]string // what the hook saw, each time it ran
	hookRan := false
	err := store.InTx(ctx, db, func(tx *store.Tx) error {
		tx.OnCommit(func() {
			hookRan = true
			seenInHook = append(seenInHook, names(t, db))
		})
		_, err := tx.ExecContext(ctx, `INSERT INTO items (name) VALUES ('a')`)
		if hookRan {
			t.Error("OnCommit hook ran before fn returned")
		}
		return err
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	if !hookRan {
		t.Fatal("OnCommit hook did not run")
	}
	if diff := cmp.Diff([][]string{{"a"}}, seenInHook); diff != "" {
		t.Errorf("rows visible to another connection inside the hook, per run (-want +got):\n%s", diff)
	}
}

// A commit that fails must be reported, not lost. SQLite checks deferred foreign keys
// at COMMIT, so this transaction's statements all succeed and only COMMIT fails.
func TestInTxReturnsCommitError(t *testing.T) {
	db := openDB(t, store.Options{MaxOpenConns: 1})
	mustExec(t, db, `CREATE TABLE parents (id INTEGER PRIMARY KEY)`)
	mustExec(t, db, `CREATE TABLE children (
		id INTEGER PRIMARY KEY,
		parent_id INTEGER NOT NULL REFERENCES parents(id) DEFERRABLE INITIALLY DEFERRED)`)
	ctx := testCtx(t)

	hookRan := false
	err := store.InTx(ctx, db, func(tx *store.Tx) error {
		tx.OnCommit(func() { hookRan = true })
		_, err := tx.ExecContext(ctx, `INSERT INTO children (id, parent_id) VALUES (1, 42)`)
		if err != nil {
			t.Fatalf("insert child: %v (the constraint must only be checked at COMMIT)", err)
		}
		return nil
	})
	if err == nil {
		t.Fatal("InTx returned nil; want the commit's foreign key error")
	}
	var serr *sqlite.Error
	if !errors.As(err, &serr) || serr.Code() != sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		t.Errorf("InTx error = %v; want it to wrap the driver's SQLITE_CONSTRAINT_FOREIGNKEY error", err)
	}
	if !strings.Contains(err.Error(), "commit") {
		t.Errorf("InTx error = %q; want it to say the commit failed", err)
	}
	if hookRan {
		t.Error("OnCommit hook ran although the commit failed")
	}

	// Nothing was committed, and the only connection is usable again (not stuck
	// inside the failed transaction).
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM children`); err != nil {
		t.Fatalf("count children: %v", err)
	}
	if n != 0 {
		t.Errorf("children after failed commit = %d; want 0", n)
	}
	if err := store.InTx(ctx, db, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO parents (id) VALUES (42)`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO children (id, parent_id) VALUES (1, 42)`)
		return err
	}); err != nil {
		t.Errorf("InTx after failed commit: %v", err)
	}
}

func TestInTxBeginError(t *testing.T) {
	db := openDB(t, store.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := store.InTx(ctx, db, func(tx *store.Tx) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("InTx with a cancelled context = %v; want context.Canceled", err)
	}
	if called {
		t.Error("fn ran although the transaction could not begin")
	}
}

// Write transactions take the write lock at BEGIN, so writers that read before they
// write queue on busy_timeout instead of failing to upgrade a read lock (SQLITE_BUSY).
func TestInTxConcurrentReadThenWrite(t *testing.T) {
	db := openDB(t, store.Options{MaxOpenConns: 8})
	mustExec(t, db, `CREATE TABLE counter (n INTEGER NOT NULL)`)
	mustExec(t, db, `INSERT INTO counter (n) VALUES (0)`)
	ctx := testCtx(t)

	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			errs <- store.InTx(ctx, db, func(tx *store.Tx) error {
				var n int
				if err := tx.GetContext(ctx, &n, `SELECT n FROM counter`); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `UPDATE counter SET n = ?`, n+1)
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent InTx: %v", err)
		}
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT n FROM counter`); err != nil {
		t.Fatal(err)
	}
	if n != writers {
		t.Errorf("counter = %d; want %d (lost updates)", n, writers)
	}
}

func tables(t *testing.T, db *store.DB) []string {
	t.Helper()
	var out []string
	if err := db.SelectContext(testCtx(t), &out,
		`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	return out
}

func appliedVersions(t *testing.T, db *store.DB, table string) []int64 {
	t.Helper()
	var out []int64
	if err := db.SelectContext(testCtx(t), &out,
		`SELECT version_id FROM `+table+` WHERE version_id > 0 AND is_applied ORDER BY version_id`); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out
}

func migration(up string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("-- +goose Up\n" + up + "\n")}
}

func TestMigrate(t *testing.T) {
	const versions = "test_migrations"
	db := openDB(t, store.Options{})
	ctx := testCtx(t)

	fsys := fstest.MapFS{
		"00001_products.sql": migration(`CREATE TABLE products (id TEXT PRIMARY KEY, name TEXT NOT NULL);`),
		"00002_prices.sql":   migration(`CREATE TABLE prices (product_id TEXT NOT NULL REFERENCES products(id), amount INTEGER NOT NULL);`),
	}
	if err := store.Migrate(ctx, db, fsys, versions, discard); err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	if diff := cmp.Diff([]string{"prices", "products", versions}, tables(t, db)); diff != "" {
		t.Errorf("tables after first Migrate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1, 2}, appliedVersions(t, db, versions)); diff != "" {
		t.Errorf("versions after first Migrate (-want +got):\n%s", diff)
	}
	mustExec(t, db, `INSERT INTO products (id, name) VALUES ('p1', 'Tea')`)

	// A second run changes nothing: no migration re-runs (re-running 00001 would fail
	// on the existing table), and data survives.
	if err := store.Migrate(ctx, db, fsys, versions, discard); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if diff := cmp.Diff([]int64{1, 2}, appliedVersions(t, db, versions)); diff != "" {
		t.Errorf("versions after second Migrate (-want +got):\n%s", diff)
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM products`); err != nil || n != 1 {
		t.Errorf("products after second Migrate = %d, %v; want 1, nil", n, err)
	}

	// A new file is applied on its own.
	fsys["00003_stock.sql"] = migration(`CREATE TABLE stock (product_id TEXT NOT NULL, qty INTEGER NOT NULL);`)
	if err := store.Migrate(ctx, db, fsys, versions, discard); err != nil {
		t.Fatalf("third Migrate: %v", err)
	}
	if diff := cmp.Diff([]int64{1, 2, 3}, appliedVersions(t, db, versions)); diff != "" {
		t.Errorf("versions after third Migrate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"prices", "products", "stock", versions}, tables(t, db)); diff != "" {
		t.Errorf("tables after third Migrate (-want +got):\n%s", diff)
	}
}

func TestMigrateFailure(t *testing.T) {
	const versions = "test_migrations"
	db := openDB(t, store.Options{})
	ctx := testCtx(t)

	fsys := fstest.MapFS{
		"00001_products.sql": migration(`CREATE TABLE products (id TEXT PRIMARY KEY);`),
		// The first statement succeeds; the second fails, so the whole migration must
		// roll back, taking "orders" with it.
		"00002_broken.sql": migration(`CREATE TABLE orders (id TEXT PRIMARY KEY);
INSERT INTO no_such_table (id) VALUES ('x');`),
		"00003_later.sql": migration(`CREATE TABLE later (id TEXT PRIMARY KEY);`),
	}
	err := store.Migrate(ctx, db, fsys, versions, discard)
	if err == nil {
		t.Fatal("Migrate with a broken migration returned nil")
	}
	if !strings.Contains(err.Error(), "00002_broken.sql") {
		t.Errorf("Migrate error = %q; want it to name 00002_broken.sql", err)
	}
	if !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("Migrate error = %q; want it to carry the database's reason", err)
	}
	if diff := cmp.Diff([]string{"products", versions}, tables(t, db)); diff != "" {
		t.Errorf("tables after failed Migrate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1}, appliedVersions(t, db, versions)); diff != "" {
		t.Errorf("versions after failed Migrate (-want +got):\n%s", diff)
	}

	// Once the file is fixed, the next run picks up where the failed one stopped.
	fsys["00002_broken.sql"] = migration(`CREATE TABLE orders (id TEXT PRIMARY KEY);`)
	if err := store.Migrate(ctx, db, fsys, versions, discard); err != nil {
		t.Fatalf("Migrate after fix: %v", err)
	}
	if diff := cmp.Diff([]string{"later", "orders", "products", versions}, tables(t, db)); diff != "" {
		t.Errorf("tables after fixed Migrate (-want +got):\n%s", diff)
	}
}

// Migrate logs each migration it applies, by file; not empty ones, and nothing on a
// second run.
func TestMigrateLogsAppliedFiles(t *testing.T) {
	db := openDB(t, store.Options{})
	ctx := testCtx(t)
	var fsys fs.FS = fstest.MapFS{
		"00001_a.sql":    migration(`CREATE TABLE a (id TEXT);`),
		"00002_b.sql":    migration(`CREATE TABLE b (id TEXT);`),
		"00003_noop.sql": migration(``), // no statements: nothing is applied, nothing logged
	}
	rec := testlog.New(slog.LevelDebug)
	log := rec.Logger()
	if err := store.Migrate(ctx, db, fsys, "v", log); err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, db, fsys, "v", log); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"00001_a.sql", "00002_b.sql"}, appliedFiles(rec.Records())); diff != "" {
		t.Errorf("files logged as applied (-want +got):\n%s", diff)
	}
}

// appliedFiles lists the "file" attribute of each record, by base name.
func appliedFiles(recs []slog.Record) []string {
	var out []string
	for _, rec := range recs {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "file" {
				out = append(out, filepath.Base(a.Value.String()))
			}
			return true
		})
	}
	return out
}
