package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agora-commerce/agora/internal/testlog"
)

func openTestSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := OpenSQLite(context.Background(), "m", filepath.Join(t.TempDir(), "m.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.ExecContext(context.Background(), `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func queued(c *committer) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.high) + len(c.low)
}

// Transactions that queue behind a running one commit together, each under its own
// savepoint: a failing one rolls back only its own writes and gets its own error,
// a panicking one panics in its own goroutine, the others commit and run their
// commit hooks — and only they; the group counts as one commit.
func TestGroupCommit(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	release := make(chan struct{})
	entered := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // holds the writer while the others queue
		if err := InTx(ctx, db, func(tx *Tx) error {
			close(entered)
			<-release
			_, err := tx.ExecContext(ctx, `INSERT INTO kv VALUES ('first', 0)`)
			return err
		}); err != nil {
			t.Errorf("first: %v", err)
		}
	})
	<-entered
	var hooks atomic.Int32
	errBad := errors.New("bad")
	outcomes := make([]error, 4)
	panicked := make(chan any, 1)
	for i := range 4 {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					panicked <- p
				}
			}()
			outcomes[i] = InTx(ctx, db, func(tx *Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO kv VALUES (?, ?)`, "k"+string(rune('0'+i)), i); err != nil {
					return err
				}
				tx.OnCommit(func() { hooks.Add(1) })
				switch i {
				case 1:
					return errBad // its insert must not survive
				case 2:
					panic("boom") // nor this one's
				}
				return nil
			})
		})
		testlog.Eventually(t, "the transaction to queue", func() bool { return queued(db.writer) == i+1 })
	}
	close(release)
	wg.Wait()

	if outcomes[0] != nil || outcomes[3] != nil || !errors.Is(outcomes[1], errBad) {
		t.Errorf("outcomes = %v; want nil, bad, (panic), nil", outcomes)
	}
	select {
	case p := <-panicked:
		if p != "boom" {
			t.Errorf("panic = %v", p)
		}
	default:
		t.Error("the panicking transaction's caller did not panic")
	}
	if n := hooks.Load(); n != 2 {
		t.Errorf("%d commit hooks ran; want 2 (the two that committed)", n)
	}
	var keys []string
	if err := db.SelectContext(ctx, &keys, `SELECT k FROM kv ORDER BY k`); err != nil {
		t.Fatal(err)
	}
	// Two commits: the first alone, then the four queued behind it as one group,
	// in which two transactions committed.
	if got, want := db.Commits(), (Commits{Commits: 2, Transactions: 3}); got != want {
		t.Errorf("Commits() = %+v; want %+v", got, want)
	}
	if want := []string{"first", "k0", "k3"}; len(keys) != 3 || keys[0] != want[0] || keys[1] != want[1] || keys[2] != want[2] {
		t.Errorf("rows = %v; want %v", keys, want)
	}
}

// A group takes work in progress (WithPriority) first, keeps a quarter of a full
// group for new work, and a waiter whose context ends leaves the queue.
func TestGroupOrder(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	release := make(chan struct{})
	entered := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = InTx(ctx, db, func(*Tx) error { close(entered); <-release; return nil })
	})
	<-entered
	var mu sync.Mutex
	var order []string
	add := func(name string, ctx context.Context, n int) {
		wg.Go(func() {
			err := InTx(ctx, db, func(*Tx) error {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
		testlog.Eventually(t, name+" to queue", func() bool { return queued(db.writer) == n })
	}
	add("new-1", ctx, 1)
	add("old-1", WithPriority(ctx), 2)
	add("old-2", WithPriority(ctx), 3)
	gone, cancel := context.WithCancel(ctx)
	wg.Go(func() {
		if err := InTx(gone, db, func(*Tx) error { t.Error("a cancelled waiter ran"); return nil }); err == nil {
			t.Error("a cancelled waiter succeeded")
		}
	})
	testlog.Eventually(t, "the cancelled waiter to queue", func() bool { return queued(db.writer) == 4 })
	cancel()
	testlog.Eventually(t, "the cancelled waiter to leave", func() bool { return queued(db.writer) == 3 })
	close(release)
	wg.Wait()
	// The next group is led by the first work in progress, then the rest of it,
	// then new work.
	if want := []string{"old-1", "old-2", "new-1"}; len(order) != 3 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Errorf("order = %v; want %v", order, want)
	}
}
