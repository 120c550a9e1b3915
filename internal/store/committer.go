package store

import (
	"context"
	"fmt"
	"sync"
)

// committer runs a SQLite database's write transactions. SQLite has one writer, so
// they run one at a time — but the transactions that queue up while one runs are
// run together, as one transaction with a savepoint each, and committed once
// (group commit): under load a commit's cost (the WAL write, the lock hand-over)
// is shared by many. Each function still sees the effects of those before it, as
// if they had run one after the other, and a function that fails rolls back only
// its own savepoint.
//
// Waiting is a queue in Go (SQLite's busy handler is a sleep-and-retry loop) with
// two classes: work in progress (see WithPriority) goes first, and new work fills
// the rest of each group, with at least a quarter of a full group kept for it, so
// it never starves.
type committer struct {
	mu        sync.Mutex
	busy      bool
	high, low []*txReq
}

// maxGroup bounds how many transactions commit together.
const maxGroup = 64

type txReq struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan txResult // the outcome, sent once
	lead chan struct{} // closed when this request is to run the next group
}

type txResult struct {
	err      error
	panicked any      // what fn panicked with, re-panicked in its own goroutine
	hooks    []func() // fn's OnCommit hooks, when it committed
}

type priorityKey struct{}

// WithPriority marks the write transactions run under ctx as work in progress
// (delivering or recording the outcome of accepted work), which SQLite's single
// writer serves before new work.
func WithPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

// run runs fn in a write transaction on db, alone or in a group, and returns its
// outcome once the group has committed.
func (c *committer) run(ctx context.Context, db *DB, fn func(*Tx) error) error {
	r := &txReq{ctx: ctx, fn: fn, done: make(chan txResult, 1), lead: make(chan struct{})}
	c.mu.Lock()
	if !c.busy {
		c.busy = true
		c.mu.Unlock()
		c.runGroup(db, r)
		return (<-r.done).finish()
	}
	if ctx.Value(priorityKey{}) != nil {
		c.high = append(c.high, r)
	} else {
		c.low = append(c.low, r)
	}
	c.mu.Unlock()
	select {
	case <-r.lead:
		c.runGroup(db, r)
	case res := <-r.done:
		return res.finish()
	case <-ctx.Done():
		c.mu.Lock()
		left := removeReq(&c.high, r) || removeReq(&c.low, r)
		c.mu.Unlock()
		if left {
			return fmt.Errorf("store: begin %s tx: %w", db.Module, context.Cause(ctx))
		}
		// Already taken into a group, or chosen to lead one: see it through.
		select {
		case <-r.lead:
			c.runGroup(db, r)
		case res := <-r.done:
			return res.finish()
		}
	}
	return (<-r.done).finish()
}

// finish returns a request's outcome in its own goroutine: its commit hooks run,
// its panic resumes.
func (res txResult) finish() error {
	if res.panicked != nil {
		panic(res.panicked)
	}
	for _, f := range res.hooks {
		f()
	}
	return res.err
}

// runGroup runs first and as many waiting requests as fit in one transaction, sends
// each its outcome, and hands the writer to the next waiter.
func (c *committer) runGroup(db *DB, first *txReq) {
	c.mu.Lock()
	group := []*txReq{first}
	room := maxGroup - 1
	reserve := min(len(c.low), maxGroup/4)
	for len(c.high) > 0 && room > reserve {
		group, c.high, room = append(group, c.high[0]), c.high[1:], room-1
	}
	for len(c.low) > 0 && room > 0 {
		group, c.low, room = append(group, c.low[0]), c.low[1:], room-1
	}
	c.mu.Unlock()

	results := execGroup(db, group)
	for i, r := range group {
		r.done <- results[i]
	}

	c.mu.Lock()
	var next *txReq
	switch {
	case len(c.high) > 0:
		next, c.high = c.high[0], c.high[1:]
	case len(c.low) > 0:
		next, c.low = c.low[0], c.low[1:]
	default:
		c.busy = false
	}
	c.mu.Unlock()
	if next != nil {
		close(next.lead)
	}
}

// execGroup runs the group's functions in one transaction — each under a savepoint
// when there are several — and commits it.
func execGroup(db *DB, group []*txReq) []txResult {
	results := make([]txResult, len(group))
	failAll := func(err error) []txResult {
		for i := range results {
			if results[i].err == nil && results[i].panicked == nil {
				results[i] = txResult{err: err}
			}
		}
		return results
	}
	// The transaction outlives any one caller's cancellation; each function's own
	// statements still run under its own context.
	ctx := context.WithoutCancel(group[0].ctx)
	sqltx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return failAll(fmt.Errorf("store: begin %s tx: %w", db.Module, err))
	}
	single := len(group) == 1
	for i, r := range group {
		if r.ctx.Err() != nil { // its caller gave up before it could begin: it does not run
			results[i] = txResult{err: fmt.Errorf("store: begin %s tx: %w", db.Module, context.Cause(r.ctx))}
			if single {
				_ = sqltx.Rollback()
				return results
			}
			continue
		}
		if !single {
			if _, err := sqltx.ExecContext(ctx, "SAVEPOINT grouped"); err != nil {
				_ = sqltx.Rollback()
				return failAll(fmt.Errorf("store: %s savepoint: %w", db.Module, err))
			}
		}
		tx := &Tx{Tx: sqltx, db: db}
		res := call(r.fn, tx)
		if res.err != nil || res.panicked != nil {
			results[i] = res
			if single {
				_ = sqltx.Rollback()
				return results
			}
			if _, err := sqltx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT grouped"); err != nil {
				_ = sqltx.Rollback()
				return failAll(fmt.Errorf("store: %s rollback to savepoint: %w", db.Module, err))
			}
		} else {
			results[i].hooks = tx.onCommit
		}
		if !single {
			if _, err := sqltx.ExecContext(ctx, "RELEASE SAVEPOINT grouped"); err != nil {
				_ = sqltx.Rollback()
				return failAll(fmt.Errorf("store: %s release savepoint: %w", db.Module, err))
			}
		}
	}
	carried := func(bool) {}
	if anyCommits(results) {
		carried = db.carry(ctx, &Tx{Tx: sqltx, db: db})
	}
	if err := sqltx.Commit(); err != nil {
		carried(false)
		for i := range results {
			results[i].hooks = nil
		}
		return failAll(fmt.Errorf("store: commit %s tx: %w", db.Module, err))
	}
	carried(true)
	committed := 0
	for _, r := range results {
		if r.err == nil && r.panicked == nil {
			committed++
		}
	}
	db.counts.add(committed)
	return results
}

// anyCommits reports whether some function of a group succeeded: only then does
// the group's transaction carry a piggyback (see Piggyback).
func anyCommits(results []txResult) bool {
	for _, r := range results {
		if r.err == nil && r.panicked == nil {
			return true
		}
	}
	return false
}

// call runs fn, turning a panic into a result.
func call(fn func(*Tx) error, tx *Tx) (res txResult) {
	defer func() {
		if p := recover(); p != nil {
			res = txResult{panicked: p}
		}
	}()
	return txResult{err: fn(tx)}
}

func removeReq(q *[]*txReq, r *txReq) bool {
	for i, x := range *q {
		if x == r {
			*q = append((*q)[:i], (*q)[i+1:]...)
			return true
		}
	}
	return false
}
