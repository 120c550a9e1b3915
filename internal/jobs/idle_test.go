package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
)

// TestAnIdleWorkerCommitsNothing: a worker that looks for work and finds none —
// the table empty, then holding only a job due later and one another worker
// holds — commits nothing, however often it looks (issue 17: an idle process
// should not commit). Its looks are counted through Upkeep, which runs after each,
// and its commits through the store's own counter, so the test is about what it
// does, not how fast.
func TestAnIdleWorkerCommitsNothing(t *testing.T) {
	each(t, nil, func(t *testing.T, db *store.DB) {
		passes := make(chan struct{})
		w := jobs.NewWorker(jobs.New(db, tasks, jobs.Policy{}), jobs.Config{PollInterval: time.Hour,
			Upkeep: func(context.Context) { passes <- struct{}{} }}, testdb.Logger(),
			func(context.Context, *jobs.Queue, []task) error {
				t.Error("the handler ran, with nothing due")
				return nil
			})
		look := func(n int) {
			for range n {
				w.Notify()
				<-passes
			}
		}
		w.Start()
		t.Cleanup(func() {
			go func() {
				for range passes {
				}
			}()
			_ = w.Stop(context.Background())
			close(passes)
		})
		<-passes // the first look, at Start
		before := db.Commits()
		look(20)
		later := time.Now().Add(time.Hour).UnixMilli()
		if _, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO tasks (id, payload, next_attempt_at, lease_owner, lease_until)
			VALUES ('later', '', ?, '', 0), ('held', '', 0, 'another worker', ?)`), later, later); err != nil {
			t.Fatal(err)
		}
		look(20)
		if got := db.Commits(); got != before {
			t.Errorf("40 looks that found nothing to do committed %+v; want none (before: %+v)", got, before)
		}
	})
}

// TestWorkerWakesWhenTheNextJobBecomesClaimable: a worker whose safety poll is an
// hour still takes a job when it becomes due and one when another worker's lease on
// it runs out, without being notified: it knows their times from its last look.
func TestWorkerWakesWhenTheNextJobBecomesClaimable(t *testing.T) {
	each(t, nil, func(t *testing.T, db *store.DB) {
		soon := time.Now().Add(300 * time.Millisecond).UnixMilli()
		if _, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO tasks (id, payload, next_attempt_at, lease_owner, lease_until)
			VALUES ('due', '', ?, '', 0), ('leased', '', 0, 'a dead worker', ?)`), soon, soon+300); err != nil {
			t.Fatal(err)
		}
		w := jobs.NewWorker(jobs.New(db, tasks, jobs.Policy{}), jobs.Config{PollInterval: time.Hour}, testdb.Logger(),
			func(ctx context.Context, q *jobs.Queue, batch []task) error {
				return q.Complete(ctx, q.DB(), batch[0].ID)
			})
		w.Start()
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
		testlog.Eventually(t, "the job due later to be done", func() bool { return row(t, db, "due").Done == 1 })
		testlog.Eventually(t, "the job whose lease ran out to be done", func() bool { return row(t, db, "leased").Done == 1 })
	})
}

// TestAClaimThatTakesNothingCommitsNothing: Claim commits only when it takes a job.
func TestAClaimThatTakesNothingCommitsNothing(t *testing.T) {
	each(t, []string{"a"}, func(t *testing.T, db *store.DB) {
		q := jobs.New(db, tasks, jobs.Policy{})
		before := db.Commits()
		if got := claim(t, q, 1); len(got) != 1 {
			t.Fatalf("claimed %v, want a", got)
		}
		if got := db.Commits().Commits - before.Commits; got != 1 {
			t.Errorf("a claim that took a job committed %d times; want 1", got)
		}
		before = db.Commits()
		for range 5 {
			if got := claim(t, q, 1); len(got) != 0 {
				t.Fatalf("claimed %v, want nothing", got)
			}
		}
		if got := db.Commits(); got != before {
			t.Errorf("claims that took nothing committed: %+v, before %+v", got, before)
		}
	})
}

// TestNotifyAtWakesTheWorkerWhenTheJobIsDue: a job written due later after the
// worker last looked is taken at its time when the writer says so (NotifyAt),
// not at the next safety poll (an hour here).
func TestNotifyAtWakesTheWorkerWhenTheJobIsDue(t *testing.T) {
	each(t, nil, func(t *testing.T, db *store.DB) {
		passes := make(chan struct{}, 10)
		w := jobs.NewWorker(jobs.New(db, tasks, jobs.Policy{}), jobs.Config{PollInterval: time.Hour,
			Upkeep: func(context.Context) { passes <- struct{}{} }}, testdb.Logger(),
			func(ctx context.Context, q *jobs.Queue, batch []task) error {
				return q.Complete(ctx, q.DB(), batch[0].ID)
			})
		w.Start()
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
		<-passes // it has looked, found nothing, and sleeps for an hour
		due := time.Now().Add(300 * time.Millisecond)
		if _, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO tasks (id, payload, next_attempt_at) VALUES ('later', '', ?)`),
			due.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		w.NotifyAt(due)
		testlog.Eventually(t, "the job to be done at its time", func() bool { return row(t, db, "later").Done == 1 })
	})
}
