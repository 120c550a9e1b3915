package jobs

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-commerce/agora/internal/store"
)

// Config tunes a Worker. Zero values take the defaults.
type Config struct {
	Name        string // what its log lines call it (default: the table's name)
	Batch       int    // jobs handed to one handler call (default 1)
	Concurrency int    // handler calls at once (default 1)
	// PollInterval is the safety poll (default 1s): the longest the worker goes
	// without looking for claimable jobs when nothing wakes it. Work it is told of
	// (Notify) and work it knows the time of (a retry's backoff, another worker's
	// lease, a job written due later) wake it on their own; the poll bounds how long
	// work written without a Notify — by another process sharing the table — waits.
	// A look that finds nothing commits nothing.
	PollInterval time.Duration
	// Heartbeat is how often the leases of running work are renewed (default: a
	// third of the lease, so that two renewals can fail before a lease runs out).
	Heartbeat time.Duration
	// Priority marks the worker's database work as work in progress, which the
	// store lets go before new work (store.WithPriority).
	Priority bool
	// Upkeep, if set, runs after every pass of the loop (its own clock decides
	// whether there is anything to do; Every gives it one): a module's housekeeping on
	// the same loop.
	Upkeep func(ctx context.Context)
}

// Handler does the work of a batch of claimed jobs (T is a row of the table's
// Columns) and records each outcome through the Queue (Complete, Fail, RetryAt,
// Bury) — in the transaction of its effects where it has one. A job it leaves
// unrecorded stays held until Stop releases it or its lease runs out. ctx is
// cancelled only when a Stop gives up waiting: the handler should then return
// promptly. Its error is logged; it changes nothing else.
type Handler[T any] func(ctx context.Context, q *Queue, batch []T) error

// Worker runs a Queue: from Start to Stop it claims due jobs — at once on Notify,
// when the next job it knows of becomes claimable, and at least every
// PollInterval — and hands them to its Handler, Batch at a time and Concurrency
// batches at once, renewing their leases while they run. An idle worker commits
// nothing: a claim that finds no job is rolled back, and it reads the time of the
// next job in the same transaction, so it sleeps until then (or PollInterval).
type Worker[T any] struct {
	q      *Queue
	cfg    Config
	handle Handler[T]
	log    *slog.Logger
	wake   chan struct{}

	// hinted carries NotifyAt's hints to the sleeping loop: the earliest is in
	// hint, which the loop takes and resets.
	hinted chan struct{}
	hintMu sync.Mutex
	hint   time.Time

	// handed holds jobs written already held by this worker (Hold) and given to it
	// on commit (Handoff), which the loop runs without claiming them; handedC wakes
	// it for them. running is whether Hold may hold jobs for it.
	handedMu sync.Mutex
	handed   []T
	handedC  chan struct{}
	running  atomic.Bool
	// saturated is whether the last turn filled every slot, or found none free
	// when it was to look: a slot that frees up then calls for another look.
	saturated atomic.Bool

	mu    sync.Mutex
	stop  context.CancelFunc // ends the loop: no new claims
	abort context.CancelFunc // cancels the work in progress
	done  chan struct{}
	calls sync.WaitGroup
}

// NewWorker returns a worker of q that hands claimed jobs to handle.
func NewWorker[T any](q *Queue, cfg Config, log *slog.Logger, handle Handler[T]) *Worker[T] {
	if cfg.Name == "" {
		cfg.Name = q.t.Name
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = q.policy.Lease / 3
	}
	return &Worker[T]{q: q, cfg: cfg, handle: handle, log: log, wake: make(chan struct{}, 1), hinted: make(chan struct{}, 1),
		handedC: make(chan struct{}, 1)}
}

// Queue returns the queue the worker runs.
func (w *Worker[T]) Queue() *Queue { return w.q }

// Notify wakes the worker: new work may be due. It never blocks.
func (w *Worker[T]) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// NotifyAt tells the worker that a job becomes claimable at at (one written, or
// moved, in this process, e.g. a saga's new deadline): a sleeping worker then
// looks at at, if that is sooner than it would have, instead of waiting for its
// safety poll. It costs no database work and never blocks.
func (w *Worker[T]) NotifyAt(at time.Time) {
	w.hintMu.Lock()
	if w.hint.IsZero() || at.Before(w.hint) {
		w.hint = at
	}
	w.hintMu.Unlock()
	select {
	case w.hinted <- struct{}{}:
	default:
	}
}

// Hold returns what a job written now must carry in its lease columns to be
// given to this worker when its transaction commits (Handoff) instead of being
// claimed: this queue's owner, and a lease from now in the table's unit. That
// saves the claim's commit: the job's first attempt costs only its outcome's.
// ok is false while the worker is not running; the job is then written free, to
// be claimed as usual. A job held for a worker that stops before its Handoff
// stays held until its lease runs out, or the next run of this instance takes it
// back (Queue.SetInstance).
func (w *Worker[T]) Hold(now time.Time) (owner string, until int64, ok bool) {
	if !w.running.Load() {
		return "", 0, false
	}
	return w.q.owner, w.q.stamp(now.Add(w.q.policy.Lease)), true
}

// Running reports whether the worker is between Start and Stop.
func (w *Worker[T]) Running() bool { return w.running.Load() }

// Handoff gives the worker jobs written held by it (Hold), once they are
// committed; the loop runs them at its next turn, before it claims anything.
// It never blocks.
func (w *Worker[T]) Handoff(jobs ...T) {
	if len(jobs) == 0 {
		return
	}
	w.handedMu.Lock()
	w.handed = append(w.handed, jobs...)
	w.handedMu.Unlock()
	select {
	case w.handedC <- struct{}{}:
	default:
	}
}

// takeHanded takes up to limit handed jobs, oldest first.
func (w *Worker[T]) takeHanded(limit int) []T {
	w.handedMu.Lock()
	defer w.handedMu.Unlock()
	n := min(limit, len(w.handed))
	if n == 0 {
		return nil
	}
	jobs := w.handed[:n:n]
	w.handed = w.handed[n:]
	if len(w.handed) == 0 {
		w.handed = nil // let the backing array go
	}
	return jobs
}

func (w *Worker[T]) takeHint() time.Time {
	w.hintMu.Lock()
	defer w.hintMu.Unlock()
	at := w.hint
	w.hint = time.Time{}
	return at
}

// Start runs the worker in its own goroutines until Stop; it returns at once.
// Jobs left held by a previous run — a crash included — are claimed again as soon
// as their lease runs out.
func (w *Worker[T]) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		return
	}
	// Work runs under workCtx, which Stop cancels only when its own context ends,
	// so that stopping lets the work in progress finish.
	workCtx, abort := context.WithCancel(context.Background())
	ctx, stop := context.WithCancel(workCtx)
	w.stop, w.abort, w.done = stop, abort, make(chan struct{})
	w.running.Store(true)
	workCtx = context.WithValue(workCtx, stoppingKey{}, ctx)
	go w.run(w.prioritized(ctx), w.prioritized(workCtx))
}

type stoppingKey struct{}

// Stopping reports whether the worker running the handler under ctx has been told
// to stop. A handler that works through a batch one job at a time checks it
// between jobs and leaves the rest, which Stop releases.
func Stopping(ctx context.Context) bool {
	if loop, ok := ctx.Value(stoppingKey{}).(context.Context); ok {
		return loop.Err() != nil
	}
	return ctx.Err() != nil
}

// Stop stops claiming, lets the work in progress finish (until ctx ends, when it
// is cancelled and Stop returns ctx's error once it has returned), and releases
// the jobs still held, so that the next worker takes them at once.
func (w *Worker[T]) Stop(ctx context.Context) error {
	w.mu.Lock()
	stop, abort, done := w.stop, w.abort, w.done
	w.stop = nil
	w.mu.Unlock()
	if stop == nil {
		return nil
	}
	w.running.Store(false)
	stop()
	<-done // the loop only waits on the database, which ends with ctx of its calls
	finished := make(chan struct{})
	go func() { w.calls.Wait(); close(finished) }()
	var err error
	select {
	case <-finished:
	case <-ctx.Done():
		err = ctx.Err()
	}
	abort()
	<-finished                // cancelled work returns at once, recorded or left held
	w.takeHanded(math.MaxInt) // not run: Release frees them in the table
	return errors.Join(err, w.q.Release(context.WithoutCancel(ctx)))
}

func (w *Worker[T]) prioritized(ctx context.Context) context.Context {
	if w.cfg.Priority {
		return store.WithPriority(ctx)
	}
	return ctx
}

func (w *Worker[T]) run(ctx, workCtx context.Context) {
	defer close(w.done)
	slots := make(chan struct{}, w.cfg.Concurrency)
	go w.heartbeat(ctx, slots)
	timer := time.NewTimer(w.cfg.PollInterval)
	defer timer.Stop()
	var next time.Time // when the next job the table holds becomes claimable, as last read
	look := true       // whether this turn looks in the table, or only runs handed jobs
	for {
		claimed, limit, looked, nx, err := w.dispatch(ctx, workCtx, slots, look)
		if err != nil && ctx.Err() == nil {
			w.log.Warn(w.cfg.Name+": claiming jobs failed", "err", err)
		}
		if looked {
			next = nx
		}
		if w.cfg.Upkeep != nil {
			w.cfg.Upkeep(ctx)
		}
		if limit > 0 && claimed == limit {
			look = looked // more may be due: look again where it took them from
			continue
		}
		var ok bool
		if look, ok = w.wait(ctx, timer, time.Now().Add(w.sleep(next))); !ok {
			return
		}
	}
}

// wait sleeps until due, a Notify, a Handoff, or a NotifyAt hint's time if that is
// sooner. It reports whether the next turn is to look in the table (false: only
// handed jobs woke it, before anything there is due), and false when ctx ends.
func (w *Worker[T]) wait(ctx context.Context, timer *time.Timer, due time.Time) (look, ok bool) {
	for {
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return false, false
		case <-w.wake:
			return true, true
		case <-timer.C:
			return true, true
		case <-w.handedC:
			return !time.Now().Before(due), true
		case <-w.hinted:
			if at := w.takeHint(); !at.IsZero() && at.Before(due) {
				due = at
			}
		}
	}
}

// minSleep bounds how soon the loop looks again for a job that seemed claimable
// but was not taken: another worker's claim of it had not committed yet.
const minSleep = 20 * time.Millisecond

// sleep is how long the loop waits for a wake-up before it looks again: until
// next, when the next job it knows of becomes claimable (its due time, the end of
// another worker's lease), and never longer than PollInterval, the safety poll for
// work it could not know of (written without a Notify, by another process).
func (w *Worker[T]) sleep(next time.Time) time.Duration {
	if next.IsZero() {
		return w.cfg.PollInterval
	}
	return min(w.cfg.PollInterval, max(time.Until(next), minSleep))
}

// dispatch runs handed jobs and, when look is set and slots are left, claims as
// many as there are free slots for, starting a handler call per batch. It returns
// how many it took of how many it could, whether it looked in the table and, if
// it did and took fewer than it asked for, when the next job there becomes
// claimable (zero if none is known).
func (w *Worker[T]) dispatch(ctx, workCtx context.Context, slots chan struct{}, look bool) (int, int, bool, time.Time, error) {
	limit := (cap(slots) - len(slots)) * w.cfg.Batch
	if limit == 0 {
		if look {
			w.saturated.Store(true) // a look is owed: the slot that frees up takes it
		}
		return 0, 0, false, time.Time{}, nil
	}
	jobs := w.takeHanded(limit)
	var next time.Time
	var err error
	looked := look && len(jobs) < limit
	if looked {
		var claimed []T
		next, err = w.q.claim(ctx, &claimed, limit-len(jobs), true)
		jobs = append(jobs, claimed...)
	}
	w.saturated.Store(len(jobs) == limit)
	w.start(workCtx, slots, jobs)
	return len(jobs), limit, looked, next, err
}

// start hands jobs to the handler, Batch at a time, each call in a slot.
func (w *Worker[T]) start(workCtx context.Context, slots chan struct{}, jobs []T) {
	for len(jobs) > 0 {
		batch := jobs[:min(w.cfg.Batch, len(jobs))]
		jobs = jobs[len(batch):]
		slots <- struct{}{}
		w.calls.Add(1)
		go func() {
			defer func() {
				<-slots
				w.calls.Done()
				w.slotFreed()
			}()
			if err := w.handle(workCtx, w.q, batch); err != nil && workCtx.Err() == nil {
				w.log.Warn(w.cfg.Name+": job failed", "err", err)
			}
		}()
	}
}

// slotFreed wakes the loop for the slot a handler call just left, if there is work
// it may take: the table, when the last turn filled every slot (there may be more
// due), or jobs handed over while the slots were full. Otherwise the loop sleeps
// on: a look now would find nothing that a Notify or Handoff would not announce.
func (w *Worker[T]) slotFreed() {
	if w.saturated.Load() {
		w.Notify()
		return
	}
	w.handedMu.Lock()
	pending := len(w.handed) > 0
	w.handedMu.Unlock()
	if pending {
		select {
		case w.handedC <- struct{}{}:
		default:
		}
	}
}

// heartbeat renews the queue's leases every Heartbeat while work runs, until ctx
// ends (Stop then waits for the work and releases it).
func (w *Worker[T]) heartbeat(ctx context.Context, slots chan struct{}) {
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(slots) == 0 {
			continue // nothing held
		}
		if err := w.q.Renew(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn(w.cfg.Name+": renewing leases failed", "err", err)
		}
	}
}

// Pass claims up to Batch × Concurrency due jobs, hands them to handle (the
// worker's own Handler when nil), Concurrency batches at once, and returns when
// they are handled: one turn of what Start does on a loop, for tools, tests and
// callers that bring their own handler. It returns how many it claimed and the
// handlers' errors.
func (w *Worker[T]) Pass(ctx context.Context, handle Handler[T]) (int, error) {
	if handle == nil {
		handle = w.handle
	}
	ctx = w.prioritized(ctx)
	var jobs []T
	if err := w.q.Claim(ctx, &jobs, w.cfg.Batch*w.cfg.Concurrency); err != nil {
		return 0, err
	}
	n := len(jobs)
	errs := make([]error, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	run := func(batch []T) {
		if err := handle(ctx, w.q, batch); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	for len(jobs) > w.cfg.Batch {
		batch := jobs[:w.cfg.Batch]
		jobs = jobs[len(batch):]
		wg.Go(func() { run(batch) })
	}
	if len(jobs) > 0 {
		// The last batch runs in the caller's goroutine: a pass of one batch (the
		// relay's Drain) is a plain call, whose panics reach its caller.
		run(jobs)
	}
	wg.Wait()
	return n, errors.Join(errs...)
}

// Every returns an Upkeep that runs f at most once per period: on its first call,
// then on the first call once period has passed since f last ran (an hourly purge
// on a loop that passes every second). The worker's loop is its only caller, so it
// keeps its clock without locking; it is not for concurrent use.
func Every(period time.Duration, f func(ctx context.Context)) func(ctx context.Context) {
	return every(period, time.Now, f)
}

func every(period time.Duration, now func() time.Time, f func(ctx context.Context)) func(ctx context.Context) {
	var last time.Time
	return func(ctx context.Context) {
		if t := now(); last.IsZero() || t.Sub(last) >= period {
			last = t
			f(ctx)
		}
	}
}
