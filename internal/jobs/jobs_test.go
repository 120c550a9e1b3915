package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// tasks is a job table as a module would declare one: its own columns (payload,
// done) beside the queue's.
var tasks = jobs.Table{
	Name:    "tasks",
	Key:     "id",
	Columns: "id, payload, attempts",
	Live:    "dead_at IS NULL AND done = 0",
	Order:   "id",
	Done:    "done = 1",
	DeadAt:  "dead_at",
}

type task struct {
	ID       string `db:"id"`
	Payload  string `db:"payload"`
	Attempts int    `db:"attempts"`
}

// state is a task's row as the tests inspect it.
type state struct {
	ID            string `db:"id"`
	Attempts      int    `db:"attempts"`
	NextAttemptAt int64  `db:"next_attempt_at"`
	LeaseOwner    string `db:"lease_owner"`
	LastError     string `db:"last_error"`
	Dead          bool   `db:"dead"`
	Done          int    `db:"done"`
}

func migrate(ctx context.Context, db *store.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE tasks (
		id TEXT NOT NULL PRIMARY KEY, payload TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0,
		attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL DEFAULT 0,
		lease_owner TEXT NOT NULL DEFAULT '', lease_until BIGINT NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '', dead_at BIGINT)`)
	return err
}

// each runs fn on a fresh tasks table holding ids, on SQLite and PostgreSQL.
func each(t *testing.T, ids []string, fn func(t *testing.T, db *store.DB)) {
	testdb.Each(t, "jobs", migrate, func(t *testing.T, db *store.DB) {
		for _, id := range ids {
			if _, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO tasks (id, payload) VALUES (?, ?)`), id, "p-"+id); err != nil {
				t.Fatal(err)
			}
		}
		fn(t, db)
	})
}

func claim(t *testing.T, q *jobs.Queue, limit int) []string {
	t.Helper()
	var got []task
	if err := q.Claim(t.Context(), &got, limit); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	ids := make([]string, len(got))
	for i, g := range got {
		ids[i] = g.ID
	}
	return ids
}

func row(t *testing.T, db *store.DB, id string) state {
	t.Helper()
	var s state
	err := db.GetContext(t.Context(), &s, db.Rebind(`SELECT id, attempts, next_attempt_at, lease_owner, last_error,
		dead_at IS NOT NULL AS dead, done FROM tasks WHERE id = ?`), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestClaimTakesDueJobsInOrderOnce: a claim takes due, live jobs nobody holds, in
// the table's order and up to its limit; a second claimer gets only the rest.
func TestClaimTakesDueJobsInOrderOnce(t *testing.T) {
	each(t, []string{"a", "b", "c", "d"}, func(t *testing.T, db *store.DB) {
		if _, err := db.ExecContext(t.Context(), `UPDATE tasks SET next_attempt_at = 9000000000000 WHERE id = 'd'`); err != nil {
			t.Fatal(err)
		}
		q1, q2 := jobs.New(db, tasks, jobs.Policy{}), jobs.New(db, tasks, jobs.Policy{})
		if got := claim(t, q1, 2); len(got) != 2 || !contains(got, "a") || !contains(got, "b") {
			t.Errorf("first claim = %v; want a and b", got)
		}
		if diff := cmp.Diff([]string{"c"}, claim(t, q2, 10)); diff != "" {
			t.Errorf("second claim (-want +got):\n%s", diff)
		}
		if got := claim(t, q2, 10); len(got) != 0 {
			t.Errorf("third claim = %v; want nothing (held, or not due)", got)
		}
	})
}

// TestLeaseExpiryTakesWorkBack: a job whose holder stops renewing is claimed by
// another worker once its lease ends, and the first holder can no longer complete it.
func TestLeaseExpiryTakesWorkBack(t *testing.T) {
	each(t, []string{"a"}, func(t *testing.T, db *store.DB) {
		dead := jobs.New(db, tasks, jobs.Policy{Lease: 100 * time.Millisecond})
		other := jobs.New(db, tasks, jobs.Policy{})
		if got := claim(t, dead, 1); len(got) != 1 {
			t.Fatalf("claim = %v", got)
		}
		if got := claim(t, other, 1); len(got) != 0 {
			t.Fatalf("a live lease was taken: %v", got)
		}
		testlog.Eventually(t, "the lease to end and the job to be taken", func() bool { return len(claim(t, other, 1)) == 1 })
		if err := dead.Complete(t.Context(), db, "a"); !errors.Is(err, jobs.ErrLeaseLost) {
			t.Errorf("Complete by the old holder = %v; want ErrLeaseLost", err)
		}
		if err := other.Complete(t.Context(), db, "a"); err != nil {
			t.Errorf("Complete by the new holder: %v", err)
		}
		if s := row(t, db, "a"); s.Done != 1 || s.LeaseOwner != "" {
			t.Errorf("after Complete: %+v; want done, not held", s)
		}
	})
}

// TestCompleteCommitsWithItsTransaction: Complete inside a transaction that rolls
// back leaves the job held; inside one that commits, done and never claimed again.
func TestCompleteCommitsWithItsTransaction(t *testing.T) {
	each(t, []string{"a"}, func(t *testing.T, db *store.DB) {
		q := jobs.New(db, tasks, jobs.Policy{})
		claim(t, q, 1)
		boom := errors.New("boom")
		err := store.InTx(t.Context(), db, func(tx *store.Tx) error {
			if err := q.Complete(t.Context(), tx, "a"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if s := row(t, db, "a"); s.Done != 0 || s.LeaseOwner != q.Owner() {
			t.Fatalf("after a rolled-back Complete: %+v; want held, not done", s)
		}
		if err := store.InTx(t.Context(), db, func(tx *store.Tx) error { return q.Complete(t.Context(), tx, "a") }); err != nil {
			t.Fatal(err)
		}
		if s := row(t, db, "a"); s.Done != 1 || s.LeaseOwner != "" {
			t.Errorf("after Complete: %+v", s)
		}
		if _, err := db.ExecContext(t.Context(), `UPDATE tasks SET lease_until = 0`); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, q, 1); len(got) != 0 {
			t.Errorf("a done job was claimed again: %v", got)
		}
	})
}

// TestFailRetriesWithBackoffThenParksDead: each failure makes the job due again
// after the backoff of its attempt (base doubled, with equal jitter), keeps the
// error, and releases it; the failure at MaxAttempts parks it as dead.
func TestFailRetriesWithBackoffThenParksDead(t *testing.T) {
	each(t, []string{"a"}, func(t *testing.T, db *store.DB) {
		const base = time.Hour
		q := jobs.New(db, tasks, jobs.Policy{BaseBackoff: base, MaxBackoff: 10 * base, MaxAttempts: 3})
		for attempt := 1; attempt <= 2; attempt++ {
			if got := claim(t, q, 1); len(got) != 1 {
				t.Fatalf("attempt %d: claim = %v", attempt, got)
			}
			before := time.Now().UnixMilli()
			out, err := q.Fail(t.Context(), db, "a", attempt, fmt.Errorf("failure %d", attempt))
			after := time.Now().UnixMilli()
			if err != nil || out.Dead {
				t.Fatalf("Fail(attempt %d) = %+v, %v; want a retry", attempt, out, err)
			}
			nominal := (base << (attempt - 1)).Milliseconds()
			s := row(t, db, "a")
			if s.NextAttemptAt < before+nominal/2 || s.NextAttemptAt > after+nominal {
				t.Errorf("attempt %d: due at +%d ms; want within [%d, %d]", attempt, s.NextAttemptAt-before, nominal/2, nominal)
			}
			if s.Attempts != attempt || s.LastError != fmt.Sprintf("failure %d", attempt) || s.LeaseOwner != "" || s.Dead {
				t.Errorf("attempt %d: %+v", attempt, s)
			}
			if got := claim(t, q, 1); len(got) != 0 {
				t.Errorf("attempt %d: claimed again before its backoff: %v", attempt, got)
			}
			if _, err := db.ExecContext(t.Context(), `UPDATE tasks SET next_attempt_at = 0`); err != nil { // its backoff passes
				t.Fatal(err)
			}
		}
		claim(t, q, 1)
		out, err := q.Fail(t.Context(), db, "a", 3, errors.New("failure 3"))
		if err != nil || !out.Dead {
			t.Fatalf("Fail(attempt 3 of 3) = %+v, %v; want dead", out, err)
		}
		if s := row(t, db, "a"); !s.Dead || s.Attempts != 3 || s.LastError != "failure 3" || s.LeaseOwner != "" {
			t.Errorf("dead job: %+v", s)
		}
		if got := claim(t, q, 1); len(got) != 0 {
			t.Errorf("a dead job was claimed: %v", got)
		}
	})
}

// TestCountClaims: a queue that counts claims charges an attempt to every claim,
// so a job whose worker dies has used one.
func TestCountClaims(t *testing.T) {
	each(t, []string{"a"}, func(t *testing.T, db *store.DB) {
		counted := tasks
		counted.CountClaims = true
		q := jobs.New(db, counted, jobs.Policy{})
		var got []task
		if err := q.Claim(t.Context(), &got, 1); err != nil || len(got) != 1 || got[0].Attempts != 1 {
			t.Fatalf("Claim = %+v, %v; want one task at attempt 1", got, err)
		}
		if err := q.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := q.Claim(t.Context(), &got, 1); err != nil || len(got) != 1 || got[0].Attempts != 2 {
			t.Fatalf("Claim after a release = %+v, %v; want attempt 2", got, err)
		}
	})
}

// TestHeartbeatKeepsTheLease: while its handler runs, a worker renews the lease,
// so a lease much shorter than the work does not let another worker take it.
func TestHeartbeatKeepsTheLease(t *testing.T) {
	each(t, []string{"a"}, func(t *testing.T, db *store.DB) {
		// Ten renewals per lease: a loaded machine may stall the heartbeat for most
		// of a lease without the lease running out.
		const lease = time.Second
		q := jobs.New(db, tasks, jobs.Policy{Lease: lease})
		started, finish := make(chan struct{}), make(chan struct{})
		w := jobs.NewWorker(q, jobs.Config{PollInterval: time.Hour, Heartbeat: lease / 10}, testdb.Logger(),
			func(ctx context.Context, q *jobs.Queue, batch []task) error {
				close(started)
				<-finish
				return q.Complete(ctx, q.DB(), batch[0].ID)
			})
		w.Start()
		var once sync.Once
		done := func() { once.Do(func() { close(finish) }) }
		t.Cleanup(func() { done(); _ = w.Stop(context.Background()) })
		<-started
		other := jobs.New(db, tasks, jobs.Policy{})
		// Three leases' worth of attempts to take it, half a lease apart.
		for range 6 {
			if got := claim(t, other, 1); len(got) != 0 {
				t.Fatalf("another worker took a job whose holder is alive: %v", got)
			}
			time.Sleep(lease / 2)
		}
		done()
		testlog.Eventually(t, "the job to be done", func() bool { return row(t, db, "a").Done == 1 })
	})
}

// TestWorkerWakesOnNotifyAndStopReleases: a started worker with a slow poll takes
// new work at once when notified; Stop lets the work in progress run until its
// context ends, then cancels it and releases what the worker still holds, so that
// another worker takes it at once despite a long lease.
func TestWorkerWakesOnNotifyAndStopReleases(t *testing.T) {
	each(t, nil, func(t *testing.T, db *store.DB) {
		q := jobs.New(db, tasks, jobs.Policy{Lease: time.Hour})
		var mu sync.Mutex
		var handled []string
		entered := make(chan struct{}, 1)
		w := jobs.NewWorker(q, jobs.Config{PollInterval: time.Hour}, testdb.Logger(),
			func(ctx context.Context, q *jobs.Queue, batch []task) error {
				mu.Lock()
				handled = append(handled, batch[0].ID)
				mu.Unlock()
				if batch[0].ID == "stuck" {
					entered <- struct{}{}
					<-ctx.Done() // work that only ends when cancelled
					return ctx.Err()
				}
				return q.Complete(ctx, q.DB(), batch[0].ID)
			})
		w.Start()
		add := func(id string) {
			if _, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO tasks (id, payload) VALUES (?, '')`), id); err != nil {
				t.Fatal(err)
			}
			w.Notify()
		}
		add("a")
		testlog.Eventually(t, "the notified job to be done", func() bool { return row(t, db, "a").Done == 1 })
		add("stuck")
		<-entered
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := w.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Stop = %v; want context.DeadlineExceeded", err)
		}
		if s := row(t, db, "stuck"); s.LeaseOwner != "" || s.Done != 0 {
			t.Errorf("after Stop: %+v; want released, not done", s)
		}
		if got := claim(t, jobs.New(db, tasks, jobs.Policy{}), 1); len(got) != 1 {
			t.Errorf("another worker could not take the released job: %v", got)
		}
	})
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
