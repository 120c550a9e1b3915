package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
)

// notes is a store.Piggyback that inserts its waiting notes into the notes table.
type notes struct {
	mu      sync.Mutex
	waiting []string
	fail    bool // its statement fails
	done    []bool
}

func (n *notes) Take() (func(ctx context.Context, tx *store.Tx) error, func(bool)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.waiting) == 0 {
		return nil, nil
	}
	taken := n.waiting
	n.waiting = nil
	run := func(ctx context.Context, tx *store.Tx) error {
		table := "notes"
		if n.fail {
			table = "no_such_table"
		}
		for _, s := range taken {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO `+table+` (s) VALUES (?)`), s); err != nil {
				return err
			}
		}
		return nil
	}
	return run, func(committed bool) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.done = append(n.done, committed)
		if !committed {
			n.waiting = append(n.waiting, taken...)
		}
	}
}

// TestPiggybackRidesTheNextCommit: work set as a database's piggyback commits in
// the next transaction that commits there, at no commit of its own; a transaction
// that rolls back carries nothing; and a piggyback that fails leaves the carrying
// transaction's own work committed and is handed back, to ride again.
func TestPiggybackRidesTheNextCommit(t *testing.T) {
	migrate := func(ctx context.Context, db *store.DB) error {
		return store.Migrate(ctx, db, fstest.MapFS{"00001_t.sql": {Data: []byte(`-- +goose Up
CREATE TABLE notes (s TEXT PRIMARY KEY);
CREATE TABLE work (s TEXT PRIMARY KEY);
`)}}, "goose_db_version", testdb.Logger())
	}
	testdb.Each(t, "piggyback", migrate, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		count := func(table string) int {
			var n int
			if err := db.GetContext(ctx, &n, `SELECT count(*) FROM `+table); err != nil {
				t.Fatal(err)
			}
			return n
		}
		work := func(s string, err error) error {
			return store.InTx(ctx, db, func(tx *store.Tx) error {
				if _, e := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO work (s) VALUES (?)`), s); e != nil {
					return e
				}
				return err
			})
		}
		p := &notes{waiting: []string{"n1", "n2"}}
		db.SetPiggyback(p)
		t.Cleanup(func() { db.SetPiggyback(nil) })

		errBoom := errors.New("boom")
		if err := work("w0", errBoom); !errors.Is(err, errBoom) {
			t.Fatalf("a failing transaction: %v", err)
		}
		if count("notes") != 0 || len(p.done) != 0 {
			t.Fatalf("a rolled-back transaction carried the piggyback: %d notes, done %v", count("notes"), p.done)
		}
		before := db.Commits()
		if err := work("w1", nil); err != nil {
			t.Fatal(err)
		}
		if got := db.Commits().Commits - before.Commits; got != 1 || count("notes") != 2 || count("work") != 1 {
			t.Errorf("after one transaction: %d commits, %d notes, %d work; want 1, 2, 1", got, count("notes"), count("work"))
		}

		p.mu.Lock()
		p.waiting, p.fail = []string{"n3"}, true
		p.mu.Unlock()
		if err := work("w2", nil); err != nil {
			t.Fatalf("a transaction whose piggyback failed: %v", err)
		}
		if count("work") != 2 || len(p.waiting) != 1 || p.done[len(p.done)-1] {
			t.Errorf("a failing piggyback: %d work (want 2), waiting %v (want [n3]), done %v", count("work"), p.waiting, p.done)
		}
	})
}
