package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
)

// TestAHandedJobCostsNoClaim: jobs written held by a running worker (Hold) and
// handed to it on commit (Handoff) are run without a claim: each costs its own
// insert's commit and its outcome's, nothing more (issue 17: commits per unit of
// work). A worker that is not running holds nothing: Hold says so, and the job is
// written free, for a claim.
func TestAHandedJobCostsNoClaim(t *testing.T) {
	each(t, nil, func(t *testing.T, db *store.DB) {
		ran := make(chan string, 10)
		w := jobs.NewWorker(jobs.New(db, tasks, jobs.Policy{}), jobs.Config{PollInterval: time.Hour}, testdb.Logger(),
			func(ctx context.Context, q *jobs.Queue, batch []task) error {
				err := store.InTx(ctx, q.DB(), func(tx *store.Tx) error { return q.Complete(ctx, tx, batch[0].ID) })
				ran <- batch[0].ID
				return err
			})
		if _, _, ok := w.Hold(time.Now()); ok {
			t.Fatal("a worker that has not started holds jobs")
		}
		w.Start()
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
		time.Sleep(50 * time.Millisecond) // its first look, at Start, finds nothing and commits nothing
		before := db.Commits()
		const n = 5
		for i := range n {
			id := fmt.Sprintf("h%d", i)
			owner, until, ok := w.Hold(time.Now())
			if !ok {
				t.Fatal("a running worker holds nothing")
			}
			err := store.InTx(t.Context(), db, func(tx *store.Tx) error {
				_, err := tx.ExecContext(t.Context(), tx.Rebind(`INSERT INTO tasks (id, payload, lease_owner, lease_until) VALUES (?, '', ?, ?)`),
					id, owner, until)
				tx.OnCommit(func() { w.Handoff(task{ID: id}) })
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-ran:
				if got != id {
					t.Fatalf("ran %s, want %s", got, id)
				}
			case <-time.After(10 * time.Second): // a liveness bound, not a speed figure: its poll is an hour
				t.Fatalf("handed job %s did not run", id)
			}
		}
		if got := db.Commits().Commits - before.Commits; got != 2*n {
			t.Errorf("%d handed jobs cost %d commits; want %d (an insert and a completion each, no claim)", n, got, 2*n)
		}
		for i := range n {
			if r := row(t, db, fmt.Sprintf("h%d", i)); r.Done != 1 || r.LeaseOwner != "" {
				t.Errorf("handed job %d: %+v", i, r)
			}
		}
		if err := w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := w.Hold(time.Now()); ok {
			t.Error("a stopped worker still holds jobs")
		}
	})
}
