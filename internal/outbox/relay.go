package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
)

// RelayConfig tunes a relay. Zero values take the defaults.
type RelayConfig struct {
	BatchSize int // messages claimed at once (default 500)
	// PollInterval is the safety poll (default 5s): a relay is woken by the commits
	// that add messages in its own process (Outbox.Add) and by the retry it has
	// scheduled soonest, so the poll only bounds how long a message waits that
	// another process wrote — a replica of the module that died before its own
	// relay claimed it. A poll that finds nothing commits nothing.
	PollInterval time.Duration
	Lease        time.Duration // how long a claim holds unrenewed before another relay may take it (default 10s; renewed every third while delivering)
	MaxAttempts  int           // failed deliveries before a message is parked as dead (default 10)
	BaseBackoff  time.Duration // first retry delay, doubled per attempt with jitter (default 200ms)
	MaxBackoff   time.Duration // cap on the retry delay (default 1m)
	InboxKeep    time.Duration // how long inbox records are kept for de-duplication (default 7 days)
}

func (c RelayConfig) withDefaults() RelayConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 10 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = 200 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Minute
	}
	if c.InboxKeep <= 0 {
		c.InboxKeep = 7 * 24 * time.Hour
	}
	return c
}

// Deliverer takes a durable envelope onward; *bus.Bus is one.
type Deliverer interface {
	Deliver(ctx context.Context, env message.Envelope) error
}

// BatchDeliverer is a Deliverer that takes a whole batch at once, returning one
// error per envelope (*bus.Bus is one): the relay then costs each receiver one
// transaction per batch rather than one per message.
type BatchDeliverer interface {
	Deliverer
	DeliverBatch(ctx context.Context, envs []message.Envelope) []error
}

// Relay drains one module's outbox into a Deliverer: a jobs.Worker over the outbox
// table. Several relays (replicas) may drain one outbox: each claims a batch with
// a lease, so a message is delivered by one relay at a time, and a crashed relay's
// claims expire and are taken over.
type Relay struct {
	db     *store.DB
	cfg    RelayConfig
	log    *slog.Logger
	worker *jobs.Worker[row]
	to     atomic.Pointer[Deliverer] // set by Start
	done   delivered                 // delivered messages not yet deleted
}

// table is the outbox as a job queue: a message is a job, delivered in id
// (creation) order, deleted once delivered, parked with dead_at after MaxAttempts
// failures. An attempt counts when it fails, so a claim cut short costs none.
var table = jobs.Table{
	Name:       "outbox",
	Key:        "id",
	Columns:    "id, kind, type, correlation_id, causation_id, headers, payload, created_at, attempts",
	Live:       "dead_at IS NULL",
	Order:      "id",
	DeleteDone: true,
	DeadAt:     "dead_at",
}

// NewRelay returns a relay for db's outbox. Start it with Start or drive it with Drain.
// It takes its Deliverer only when it runs, so that the outbox (which needs the relay
// to wake it) can exist before the bus (which needs the module's handlers) does.
func NewRelay(db *store.DB, cfg RelayConfig, log *slog.Logger) *Relay {
	cfg = cfg.withDefaults()
	r := &Relay{db: db, cfg: cfg, log: log.With("module", db.Module, "component", "relay")}
	q := jobs.New(db, table, jobs.Policy{Lease: cfg.Lease, MaxAttempts: cfg.MaxAttempts,
		BaseBackoff: cfg.BaseBackoff, MaxBackoff: cfg.MaxBackoff})
	// Delivering accepted work goes before accepting new work, on every database
	// the delivery writes to (Priority).
	r.worker = jobs.NewWorker(q, jobs.Config{Name: "outbox relay", Batch: cfg.BatchSize, PollInterval: cfg.PollInterval,
		Priority: true, Upkeep: jobs.Every(time.Hour, r.sweepInbox)}, r.log,
		func(ctx context.Context, _ *jobs.Queue, batch []row) error {
			return r.deliver(ctx, batch, *r.to.Load())
		})
	r.done = delivered{relay: r}
	return r
}

// Notify wakes the relay; it never blocks.
func (r *Relay) Notify() { r.worker.Notify() }

// Start runs the relay in a goroutine, delivering to to, until Stop. While it
// runs, the deletion of the messages it delivered rides in the next transaction
// its module commits (store.Piggyback), or in one of its own within
// CompleteWithin when none comes.
func (r *Relay) Start(to Deliverer) {
	r.to.Store(&to)
	r.db.SetPiggyback(&r.done)
	r.worker.Start()
}

// Stop stops the relay, letting the delivery in progress finish (bounded by ctx),
// records what it delivered, and releases its unfinished claims so another relay
// or the next start takes them at once.
func (r *Relay) Stop(ctx context.Context) error {
	err := r.worker.Stop(ctx)
	r.db.SetPiggyback(nil)
	return errors.Join(err, r.done.flush(context.WithoutCancel(ctx)))
}

type row struct {
	ID            string `db:"id"`
	Kind          string `db:"kind"`
	Type          string `db:"type"`
	CorrelationID string `db:"correlation_id"`
	CausationID   string `db:"causation_id"`
	Headers       string `db:"headers"`
	Payload       string `db:"payload"`
	CreatedAt     int64  `db:"created_at"`
	Attempts      int    `db:"attempts"`
}

func (w row) envelope() message.Envelope {
	env := message.Envelope{ID: w.ID, Type: w.Type, Kind: message.Kind(w.Kind), CorrelationID: w.CorrelationID,
		CausationID: w.CausationID, Time: time.UnixMilli(w.CreatedAt).UTC(), Payload: json.RawMessage(w.Payload)}
	_ = json.Unmarshal([]byte(w.Headers), &env.Headers) // written by Add from a map; cannot be malformed
	return env
}

// Drain claims one batch of due messages, delivers them to to in id order and records the
// outcome of each: delivered ones are deleted, failed ones are rescheduled with
// backoff or, after MaxAttempts, parked as dead letters. It returns how many it claimed.
func (r *Relay) Drain(ctx context.Context, to Deliverer) (int, error) {
	return r.worker.Pass(ctx, func(ctx context.Context, _ *jobs.Queue, batch []row) error {
		return r.deliver(ctx, batch, to)
	})
}

// deliver hands a claimed batch to to, in id order, and records each outcome: the
// delivered ones deleted in one statement, each failure rescheduled or parked.
func (r *Relay) deliver(ctx context.Context, rows []row, to Deliverer) error {
	if len(rows) == 0 {
		return nil
	}
	q := r.worker.Queue()
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	var delivered []string
	var errs []error
	outcome := func(w row, err error) {
		if err != nil {
			errs = append(errs, r.failed(ctx, q, w, err))
			return
		}
		delivered = append(delivered, w.ID)
	}
	if bd, ok := to.(BatchDeliverer); ok {
		envs := make([]message.Envelope, len(rows))
		for i, w := range rows {
			envs[i] = w.envelope()
		}
		for i, err := range bd.DeliverBatch(ctx, envs) {
			outcome(rows[i], err)
		}
	} else {
		for _, w := range rows {
			if jobs.Stopping(ctx) {
				break // unfinished claims are released by Stop
			}
			outcome(w, to.Deliver(ctx, w.envelope()))
		}
	}
	if len(delivered) > 0 {
		if r.worker.Running() {
			r.done.add(delivered) // deleted by the next commit on r.db, or a flush
		} else if err := r.done.delete(context.WithoutCancel(ctx), r.db, delivered); err != nil {
			// The messages were delivered; their lease will expire and they will be
			// delivered again, which receivers' inboxes make harmless.
			errs = append(errs, fmt.Errorf("outbox: mark delivered: %w", err))
		}
	}
	return errors.Join(errs...)
}

// failed records a failed delivery of w: retried after a backoff, or parked as a
// dead letter after MaxAttempts.
func (r *Relay) failed(ctx context.Context, q *jobs.Queue, w row, cause error) error {
	out, err := q.Fail(context.WithoutCancel(ctx), r.db, w.ID, w.Attempts+1, cause)
	if out.Dead {
		r.log.Error("outbox message parked as dead letter", "id", w.ID, "type", w.Type, "attempts", w.Attempts+1, "err", cause)
	} else {
		r.log.Warn("outbox delivery failed; will retry", "id", w.ID, "type", w.Type, "attempt", w.Attempts+1, "retry_in", out.RetryIn, "err", cause)
	}
	if err != nil {
		return fmt.Errorf("outbox: record failure of %s: %w", w.ID, err)
	}
	return nil
}

func (r *Relay) sweepInbox(ctx context.Context) {
	cutoff := time.Now().Add(-r.cfg.InboxKeep).UnixMilli()
	if _, err := r.db.ExecContext(ctx, r.db.Rebind(`DELETE FROM inbox WHERE received_at < ?`), cutoff); err != nil && ctx.Err() == nil {
		r.log.Warn("inbox sweep failed", "err", err)
	}
}

// CompleteWithin bounds how long delivered messages wait for a transaction of
// their module to carry their deletion before the relay commits it on its own: well
// inside the lease, so that no other relay takes them meanwhile.
const CompleteWithin = 200 * time.Millisecond

// delivered holds the ids of messages delivered but not yet deleted from the
// outbox. It is the relay's store.Piggyback: the deletion rides in the next commit
// on the relay's database; a timer commits it after CompleteWithin when no
// transaction came. Until then a crash only means the messages are delivered
// again, which receivers' inboxes make harmless.
type delivered struct {
	relay *Relay
	mu    sync.Mutex
	ids     []string
	armed   bool // a flush is scheduled
	failing bool // the last flush failed (logged once per streak)
}

func (d *delivered) add(ids []string) {
	d.mu.Lock()
	d.ids = append(d.ids, ids...)
	arm := !d.armed
	d.armed = true
	d.mu.Unlock()
	if arm {
		time.AfterFunc(CompleteWithin, func() {
			d.mu.Lock()
			d.armed = false
			d.mu.Unlock()
			err := d.flush(context.Background())
			d.mu.Lock()
			first := err != nil && !d.failing
			d.failing = err != nil
			d.mu.Unlock()
			if first {
				d.relay.log.Warn("outbox: recording deliveries failed; retrying (a crash now delivers them again, harmlessly)", "err", err)
			}
		})
	}
}

// Take implements store.Piggyback.
func (d *delivered) Take() (func(ctx context.Context, tx *store.Tx) error, func(bool)) {
	d.mu.Lock()
	ids := d.ids
	d.ids = nil
	d.mu.Unlock()
	if len(ids) == 0 {
		return nil, nil
	}
	run := func(ctx context.Context, tx *store.Tx) error { return d.delete(ctx, tx, ids) }
	return run, func(committed bool) {
		if !committed {
			d.add(ids)
		}
	}
}

// flush commits the waiting deletions, if any, in a transaction of their own.
func (d *delivered) flush(ctx context.Context) error {
	run, done := d.Take()
	if run == nil {
		return nil
	}
	err := store.InTx(ctx, d.relay.db, func(tx *store.Tx) error { return run(ctx, tx) })
	done(err == nil)
	return err
}

// delete deletes the delivered messages ids, whoever holds them now: they were
// delivered, and a relay that took one over after its lease ran out finds it gone.
func (d *delivered) delete(ctx context.Context, ex sqlx.ExtContext, ids []string) error {
	query, args, err := sqlx.In(`DELETE FROM outbox WHERE id IN (?)`, ids)
	if err != nil {
		return err
	}
	_, err = ex.ExecContext(ctx, ex.Rebind(query), args...)
	return err
}
