// Package jobs is Agora's durable job queue: work recorded as rows of a module's
// own table, taken by workers under a lease, and finished exactly as its owner
// says — completed, retried later with backoff, or parked as dead after a bound.
//
// A job is a row. Its table belongs to the module that owns the work (the outbox's
// messages, payments' provider operations, notifications' emails, orders' sagas)
// and carries the queue's columns beside its own: when it is next due, who holds
// it and until when, how many attempts it has had and the last error. Table names
// them. A Queue claims due rows for one owner (FOR UPDATE SKIP LOCKED on
// PostgreSQL, so concurrent workers skip each other's rows; SQLite has one writer,
// and the claim is one UPDATE in a write transaction), renews the leases it holds
// while their work runs (so leases can be short and a dead worker's work comes back
// soon), and records each outcome only while it still holds the job's lease. A
// Worker runs a Queue: it wakes when new work commits (Notify) and when the next
// job it knows of becomes due, otherwise polls slowly (a poll that finds nothing
// commits nothing), runs the handler with bounded concurrency, heartbeats, and on
// Stop lets the work in progress finish, then releases what it still holds.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/backoff"
	"github.com/agora-commerce/agora/internal/store"
)

// Table describes where a queue's jobs live. Name, Key, Columns, Live and Order
// are required; the column names default to the ones shown. Every time column
// holds Unix time in Unit.
type Table struct {
	Name    string // the table
	Key     string // its primary key column (a string)
	Columns string // the columns a claim returns, for the handler
	Live    string // SQL condition true of a job that still wants work, e.g. "dead_at IS NULL"
	Order   string // the order in which due jobs are claimed, e.g. "id"

	Due        string        // when the job is next due (default next_attempt_at)
	Attempts   string        // attempts made (default attempts)
	LastError  string        // the last failure (default last_error)
	LeaseOwner string        // who holds the job, '' when nobody (default lease_owner)
	LeaseUntil string        // until when; 0 when nobody holds it (default lease_until)
	Unit       time.Duration // the unit of the time columns (default time.Millisecond)

	// CountClaims counts an attempt when a job is claimed, so that a worker that
	// dies while holding it has used one; otherwise an attempt counts when it fails.
	CountClaims bool
	// Done is the assignments that record a job completed (e.g. "status = 'sent'");
	// empty, completing only releases the job (its owner records the rest in the
	// same transaction). DeleteDone deletes a completed job instead.
	Done       string
	DeleteDone bool
	// DeadAt is a column set to the time a job is parked as dead, and Dead further
	// assignments that do it (e.g. "status = 'failed'"); together they must make
	// Live false. With neither, Policy.MaxAttempts must be 0.
	DeadAt string
	Dead   string
	// ErrorLen bounds the stored last error, in bytes (default 2000).
	ErrorLen int
}

func (t Table) withDefaults() Table {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&t.Due, "next_attempt_at")
	def(&t.Attempts, "attempts")
	def(&t.LastError, "last_error")
	def(&t.LeaseOwner, "lease_owner")
	def(&t.LeaseUntil, "lease_until")
	if t.Unit <= 0 {
		t.Unit = time.Millisecond
	}
	if t.ErrorLen <= 0 {
		t.ErrorLen = 2000
	}
	return t
}

// Policy says how long a claim holds and how failures are retried. Zero values
// take the defaults.
type Policy struct {
	Lease       time.Duration // how long a claim holds without renewal (default 10s; a Worker renews every third)
	MaxAttempts int           // attempts after which a failed job is parked as dead; 0 retries forever
	BaseBackoff time.Duration // delay before the first retry, doubled per attempt with jitter (default 200ms)
	MaxBackoff  time.Duration // cap on the retry delay (default 1m)
}

func (p Policy) withDefaults() Policy {
	if p.Lease <= 0 {
		p.Lease = 10 * time.Second
	}
	if p.BaseBackoff <= 0 {
		p.BaseBackoff = 200 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = time.Minute
	}
	return p
}

// ErrLeaseLost is returned by Complete when the job is no longer held by this
// queue's owner: its lease ran out and another worker took it (or Stop released it).
// The other worker's outcome is the one that stands.
var ErrLeaseLost = errors.New("jobs: lease lost")

// Queue is one owner's view of a Table in a database: what it claims is held under
// its owner id until completed, failed, released or the lease runs out.
type Queue struct {
	db     *store.DB
	t      Table
	policy Policy
	owner  string
	sql    statements

	// mine and run are the owner prefixes of this instance and of this run of it
	// (see SetInstance); taken says the first claim took back a previous run's jobs.
	mine, run string
	taken     atomic.Bool
}

// statements are the queue's SQL, built once so that each text is prepared once.
type statements struct {
	claim, next, renew, release, complete, retry, fail, bury, takeBack string
}

// New returns a queue of t's jobs in db under a fresh owner id.
func New(db *store.DB, t Table, p Policy) *Queue {
	t, p = t.withDefaults(), p.withDefaults()
	if p.MaxAttempts > 0 && t.DeadAt == "" && t.Dead == "" {
		panic(fmt.Sprintf("jobs: table %s has no way to park a dead job, but MaxAttempts is %d", t.Name, p.MaxAttempts))
	}
	q := &Queue{db: db, t: t, policy: p}
	q.owner, q.mine, q.run = newOwner()
	q.sql = q.statements()
	return q
}

func (q *Queue) statements() statements {
	t := q.t
	// A job can be claimed once it is due and nobody's lease on it is current:
	// the later of the two times (SQLite's two-argument MAX is PostgreSQL's GREATEST).
	claimable := fmt.Sprintf("MAX(%s, %s + 1)", t.Due, t.LeaseUntil)
	// On PostgreSQL, concurrent claimers skip each other's locked rows instead of
	// queueing behind them; SQLite has a single writer and needs no such clause.
	lock := ""
	if q.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
		claimable = fmt.Sprintf("GREATEST(%s, %s + 1)", t.Due, t.LeaseUntil)
	}
	count := ""
	if t.CountClaims {
		count = fmt.Sprintf(", %[1]s = %[1]s + 1", t.Attempts)
	}
	free := fmt.Sprintf("%s = '', %s = 0", t.LeaseOwner, t.LeaseUntil)
	held := fmt.Sprintf("%s = ? AND %s = ?", t.Key, t.LeaseOwner)
	done := free
	if t.Done != "" {
		done = t.Done + ", " + free
	}
	dead := t.Dead
	if t.DeadAt != "" {
		dead = strings.TrimPrefix(t.Dead+", "+t.DeadAt+" = ?", ", ")
	}
	s := statements{
		// The lease conditions are repeated outside the sub-select so that a claimer
		// re-checks them on the row itself, whatever the sub-select saw.
		claim: fmt.Sprintf(`UPDATE %[1]s SET %[2]s = ?, %[3]s = ?%[4]s
			WHERE %[5]s IN (SELECT %[5]s FROM %[1]s WHERE %[6]s AND %[7]s <= ? AND %[3]s < ? ORDER BY %[8]s LIMIT ?%[9]s)
			  AND %[6]s AND %[3]s < ?
			RETURNING %[10]s`, t.Name, t.LeaseOwner, t.LeaseUntil, count, t.Key, t.Live, t.Due, t.Order, lock, t.Columns),
		next:    fmt.Sprintf(`SELECT MIN(%s) FROM %s WHERE %s`, claimable, t.Name, t.Live),
		renew:   fmt.Sprintf(`UPDATE %s SET %s = ? WHERE %s = ?`, t.Name, t.LeaseUntil, t.LeaseOwner),
		release: fmt.Sprintf(`UPDATE %s SET %s WHERE %s = ?`, t.Name, free, t.LeaseOwner),
		takeBack: fmt.Sprintf(`UPDATE %[1]s SET %[2]s WHERE substr(%[3]s, 1, ?) = ? AND substr(%[3]s, 1, ?) <> ?`,
			t.Name, free, t.LeaseOwner),
		complete: fmt.Sprintf(`UPDATE %s SET %s WHERE %s = ? AND %s IN (?)`, t.Name, done, t.LeaseOwner, t.Key),
		retry:    fmt.Sprintf(`UPDATE %s SET %s = ?, %s = ?, %s = ?, %s WHERE %s`, t.Name, t.Attempts, t.LastError, t.Due, free, held),
		bury:     fmt.Sprintf(`UPDATE %s SET %s = ?, %s = ?, %s, %s WHERE %s`, t.Name, t.Attempts, t.LastError, dead, free, held),
	}
	if t.DeleteDone {
		s.complete = fmt.Sprintf(`DELETE FROM %s WHERE %s = ? AND %s IN (?)`, t.Name, t.LeaseOwner, t.Key)
	}
	return s
}

// DB returns the database the queue's table is in.
func (q *Queue) DB() *store.DB { return q.db }

// Owner returns the id under which the queue holds what it claims.
func (q *Queue) Owner() string { return q.owner }

// Policy returns the queue's policy, defaults applied.
func (q *Queue) Policy() Policy { return q.policy }

func (q *Queue) stamp(t time.Time) int64 { return t.UnixNano() / int64(q.t.Unit) }

// Claim takes up to limit due, live jobs that nobody holds, in Table.Order, under
// this queue's owner until now + Lease (counting an attempt on each when
// Table.CountClaims), and scans their Table.Columns into dest, a pointer to an
// empty slice. Rows come back in no particular order. A claim that takes nothing
// commits nothing: its transaction is rolled back, so that an idle poll costs the
// database no commit (and no WAL flush).
func (q *Queue) Claim(ctx context.Context, dest any, limit int) error {
	_, err := q.claim(ctx, dest, limit, false)
	return err
}

// claim is Claim; with next, when it takes fewer than limit jobs, it also returns
// when the first live job it did not take becomes claimable — when it falls due, or
// when the lease on it (another worker's, or this queue's own, which a running
// job's heartbeat keeps moving) runs out — read in the same transaction; zero when
// no live job is left.
func (q *Queue) claim(ctx context.Context, dest any, limit int, next bool) (time.Time, error) {
	now := time.Now()
	var at sql.NullInt64
	err := store.InTx(ctx, q.db, func(tx *store.Tx) error {
		tookBack, err := q.takeBack(ctx, tx)
		if err != nil {
			return err
		}
		if err := tx.SelectContext(ctx, dest, tx.Rebind(q.sql.claim),
			q.owner, q.stamp(now.Add(q.policy.Lease)), q.stamp(now), q.stamp(now), limit, q.stamp(now)); err != nil {
			return err
		}
		n := reflect.ValueOf(dest).Elem().Len()
		if next && n < limit {
			if err := tx.GetContext(ctx, &at, q.sql.next); err != nil {
				return err
			}
		}
		if n == 0 && !tookBack {
			return errNothing
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNothing) {
		return time.Time{}, fmt.Errorf("jobs: claim from %s: %w", q.t.Name, err)
	}
	q.taken.Store(true)
	if !at.Valid {
		return time.Time{}, nil
	}
	return time.Unix(0, at.Int64*int64(q.t.Unit)), nil
}

// errNothing rolls back a claim that changed nothing.
var errNothing = errors.New("jobs: nothing claimed")

// takeBack frees, once per queue, the jobs a previous run of this instance still
// holds (it crashed, or its stop was cut short), so that the claim that follows
// takes them at once. It reports whether it freed any.
func (q *Queue) takeBack(ctx context.Context, tx *store.Tx) (bool, error) {
	if q.mine == "" || q.taken.Load() {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(q.sql.takeBack), len(q.mine), q.mine, len(q.run), q.run)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Renew extends every lease this queue holds to now + Lease: the heartbeat of work
// that is still running.
func (q *Queue) Renew(ctx context.Context) error {
	_, err := q.db.ExecContext(ctx, q.db.Rebind(q.sql.renew), q.stamp(time.Now().Add(q.policy.Lease)), q.owner)
	if err != nil {
		return fmt.Errorf("jobs: renew leases on %s: %w", q.t.Name, err)
	}
	return nil
}

// Release gives up every job this queue holds, unfinished, so that the next claim
// (this worker's after a restart, or another's) takes them at once.
func (q *Queue) Release(ctx context.Context) error {
	if _, err := q.db.ExecContext(ctx, q.db.Rebind(q.sql.release), q.owner); err != nil {
		return fmt.Errorf("jobs: release leases on %s: %w", q.t.Name, err)
	}
	return nil
}

// Complete records the jobs named by keys as done, through ex (a transaction, so that it
// commits with the work's effects, or the database): Table.Done, or their
// deletion. Jobs this queue no longer holds are left alone; when that leaves out
// all of keys, Complete returns ErrLeaseLost.
func (q *Queue) Complete(ctx context.Context, ex sqlx.ExtContext, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	query, args, err := sqlx.In(q.sql.complete, q.owner, keys)
	if err != nil {
		return err
	}
	res, err := ex.ExecContext(ctx, ex.Rebind(query), args...)
	if err != nil {
		return fmt.Errorf("jobs: complete on %s: %w", q.t.Name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrLeaseLost
	}
	return err
}

// Outcome is what Fail did with a job.
type Outcome struct {
	Dead    bool          // parked as dead: it will not be tried again
	RetryIn time.Duration // otherwise, the delay before it is due again
}

// Fail records that attempt (counting from 1) at job key failed with cause: the
// job is due again after a backoff that grows with attempt, or, once attempt
// reaches Policy.MaxAttempts, parked as dead. It does nothing to a job this queue
// no longer holds.
func (q *Queue) Fail(ctx context.Context, ex sqlx.ExtContext, key string, attempt int, cause error) (Outcome, error) {
	if q.policy.MaxAttempts > 0 && attempt >= q.policy.MaxAttempts {
		return Outcome{Dead: true}, q.Bury(ctx, ex, key, attempt, cause)
	}
	delay := backoff.Delay(q.policy.BaseBackoff, q.policy.MaxBackoff, attempt)
	return Outcome{RetryIn: delay}, q.RetryAt(ctx, ex, key, attempt, time.Now().Add(delay), cause)
}

// RetryAt releases job key to be due again at at, recording attempt and cause,
// if this queue still holds it: a retry whose delay the caller chose.
func (q *Queue) RetryAt(ctx context.Context, ex sqlx.ExtContext, key string, attempt int, at time.Time, cause error) error {
	_, err := ex.ExecContext(ctx, ex.Rebind(q.sql.retry), attempt, q.errorText(cause), q.stamp(at), key, q.owner)
	if err != nil {
		return fmt.Errorf("jobs: reschedule %s in %s: %w", key, q.t.Name, err)
	}
	return nil
}

// Bury parks job key as dead at once, with attempt and cause, if this queue still
// holds it: a failure no retry can mend.
func (q *Queue) Bury(ctx context.Context, ex sqlx.ExtContext, key string, attempt int, cause error) error {
	if q.t.DeadAt == "" && q.t.Dead == "" {
		return fmt.Errorf("jobs: table %s cannot park dead jobs", q.t.Name)
	}
	args := []any{attempt, q.errorText(cause)}
	if q.t.DeadAt != "" {
		args = append(args, q.stamp(time.Now()))
	}
	if _, err := ex.ExecContext(ctx, ex.Rebind(q.sql.bury), append(args, key, q.owner)...); err != nil {
		return fmt.Errorf("jobs: park %s in %s as dead: %w", key, q.t.Name, err)
	}
	return nil
}

// errorText is cause as stored: at most ErrorLen bytes, never half a character.
func (q *Queue) errorText(cause error) string {
	if cause == nil {
		return ""
	}
	msg := cause.Error()
	if len(msg) > q.t.ErrorLen {
		msg = msg[:q.t.ErrorLen]
	}
	return strings.ToValidUTF8(msg, "")
}
