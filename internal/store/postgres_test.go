package store_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// The transaction helper's contract on every back end: commit on nil, roll back on
// error, and a failure at COMMIT returned rather than lost; only commits are counted.
func TestInTxOnEveryBackend(t *testing.T) {
	migrate := func(ctx context.Context, db *store.DB) error {
		return store.Migrate(ctx, db, fstest.MapFS{"00001_t.sql": {Data: []byte(`-- +goose Up
CREATE TABLE parent (id TEXT PRIMARY KEY);
CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
`)}}, "goose_db_version", testdb.Logger())
	}
	testdb.Each(t, "txtest", migrate, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		count := func(table string) int {
			var n int
			if err := db.GetContext(ctx, &n, `SELECT count(*) FROM `+table); err != nil {
				t.Fatal(err)
			}
			return n
		}
		committed := false
		err := store.InTx(ctx, db, func(tx *store.Tx) error {
			tx.OnCommit(func() { committed = true })
			_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO parent (id) VALUES (?)`), "p1")
			return err
		})
		if err != nil || !committed || count("parent") != 1 {
			t.Fatalf("commit: err=%v hook=%v rows=%d", err, committed, count("parent"))
		}
		boom := errors.New("boom")
		err = store.InTx(ctx, db, func(tx *store.Tx) error {
			tx.OnCommit(func() { t.Error("OnCommit ran for a rolled-back tx") })
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO parent (id) VALUES (?)`), "p2"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) || count("parent") != 1 {
			t.Fatalf("rollback: err=%v rows=%d", err, count("parent"))
		}
		// A deferred foreign key fails only at COMMIT: the error must come back.
		err = store.InTx(ctx, db, func(tx *store.Tx) error {
			tx.OnCommit(func() { t.Error("OnCommit ran although COMMIT failed") })
			_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO child (id, parent_id) VALUES (?, ?)`), "c1", "missing")
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "commit") || count("child") != 0 {
			t.Fatalf("commit error: err=%v rows=%d, want a wrapped commit error and no row", err, count("child"))
		}
		// Only the first committed: a rollback and a failed COMMIT are not commits.
		if got, want := db.Commits(), (store.Commits{Commits: 1, Transactions: 1}); got != want {
			t.Errorf("Commits() = %+v; want %+v", got, want)
		}
	})
}

// A failing migration names its file and statement, and leaves the schema as the one before left it.
func TestMigrateOnEveryBackend(t *testing.T) {
	testdb.Each(t, "migtest", nil, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		good := fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (id TEXT PRIMARY KEY);\n")}}
		for range 2 { // idempotent
			if err := store.Migrate(ctx, db, good, "goose_db_version", testdb.Logger()); err != nil {
				t.Fatal(err)
			}
		}
		bad := fstest.MapFS{
			"00001_a.sql": good["00001_a.sql"],
			"00002_b.sql": {Data: []byte("-- +goose Up\nCREATE TABLE b (id TEXT PRIMARY KEY);\nCREATE TABLE broken (;\n")},
		}
		err := store.Migrate(ctx, db, bad, "goose_db_version", testdb.Logger())
		if err == nil || !strings.Contains(err.Error(), "00002_b.sql") || !strings.Contains(err.Error(), "CREATE TABLE broken (;") {
			t.Fatalf("err = %v, want one naming 00002_b.sql and its failing statement", err)
		}
		var n int
		if err := db.GetContext(ctx, &n, `SELECT count(*) FROM a`); err != nil {
			t.Errorf("table a from the good migration is gone: %v", err)
		}
		if _, err := db.ExecContext(ctx, `SELECT count(*) FROM b`); err == nil {
			t.Error("table b of the failed migration exists: the failure was not rolled back")
		}
	})
}
