package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/backoff"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
)

// RelayConfig tunes a relay. Zero values take the defaults.
type RelayConfig struct {
	BatchSize    int           // messages claimed at once (default 500)
	PollInterval time.Duration // how often to look without a wake-up (default 1s)
	Lease        time.Duration // how long a claim holds before another relay may take it (default 30s)
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
		c.PollInterval = time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
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

// Relay drains one module's outbox into a Deliverer. Several relays (replicas) may
// drain one outbox: each claims a batch with a lease, so a message is delivered by
// one relay at a time, and a crashed relay's claims expire and are taken over.
type Relay struct {
	db    *store.DB
	cfg   RelayConfig
	log   *slog.Logger
	owner string
	wake  chan struct{}

	stop  context.CancelFunc // ends the loop: no new claims, no further deliveries
	abort context.CancelFunc // cancels the delivery in progress
	done  chan struct{}
	mu    sync.Mutex
}

// NewRelay returns a relay for db's outbox. Start it with Start or drive it with Drain.
// It takes its Deliverer only when it runs, so that the outbox (which needs the relay
// to wake it) can exist before the bus (which needs the module's handlers) does.
func NewRelay(db *store.DB, cfg RelayConfig, log *slog.Logger) *Relay {
	return &Relay{db: db, cfg: cfg.withDefaults(), log: log.With("module", db.Module, "component", "relay"),
		owner: bus.NewID(), wake: make(chan struct{}, 1)}
}

// Notify wakes the relay; it never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Start runs the relay in a goroutine, delivering to to, until Stop.
func (r *Relay) Start(to Deliverer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		return
	}
	// The delivery in progress runs under deliverCtx, which Stop cancels only when its
	// own context ends, so that stopping lets it finish.
	deliverCtx, abort := context.WithCancel(context.Background())
	ctx, cancel := context.WithCancel(deliverCtx)
	r.stop, r.abort, r.done = cancel, abort, make(chan struct{})
	go r.run(ctx, deliverCtx, to)
}

// Stop stops the relay, letting the delivery in progress finish (bounded by ctx),
// and releases its unfinished claims so another relay or the next start takes them
// at once.
func (r *Relay) Stop(ctx context.Context) error {
	r.mu.Lock()
	stop, abort, done := r.stop, r.abort, r.done
	r.stop = nil
	r.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		abort()
	case <-ctx.Done():
		abort()
		return ctx.Err()
	}
	_, err := r.db.ExecContext(ctx, r.db.Rebind(`UPDATE outbox SET lease_owner = '', lease_until = 0 WHERE lease_owner = ?`), r.owner)
	return err
}

func (r *Relay) run(ctx, deliverCtx context.Context, to Deliverer) {
	defer close(r.done)
	ticker := time.NewTicker(r.cfg.PollInterval)
	defer ticker.Stop()
	lastSweep := time.Time{}
	for {
		n, err := r.drain(ctx, deliverCtx, to)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("outbox relay pass failed", "err", err)
		}
		if time.Since(lastSweep) > time.Hour {
			lastSweep = time.Now()
			r.sweepInbox(ctx)
		}
		if n >= r.cfg.BatchSize {
			continue // more may be waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-ticker.C:
		}
	}
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
	return r.drain(ctx, ctx, to)
}

// drain is Drain with deliveries made under deliverCtx: it stops claiming and
// starting deliveries when ctx ends, but a delivery already started ends only with
// deliverCtx.
func (r *Relay) drain(ctx, deliverCtx context.Context, to Deliverer) (int, error) {
	// Delivering accepted work goes before accepting new work, on every database
	// the delivery writes to.
	ctx, deliverCtx = store.WithPriority(ctx), store.WithPriority(deliverCtx)
	now := time.Now().UTC()
	var rows []row
	// On PostgreSQL, concurrent relays skip each other's locked rows instead of
	// queueing behind them; SQLite has a single writer and needs no such clause.
	lock := ""
	if r.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	err := store.InTx(ctx, r.db, func(tx *store.Tx) error {
		// The lease conditions are repeated outside the sub-select so that a claimer
		// re-checks them on the row itself, whatever the sub-select saw.
		return tx.SelectContext(ctx, &rows, tx.Rebind(`UPDATE outbox SET lease_owner = ?, lease_until = ?
			WHERE id IN (SELECT id FROM outbox WHERE dead_at IS NULL AND next_attempt_at <= ? AND lease_until < ?
			             ORDER BY id LIMIT ?`+lock+`)
			  AND dead_at IS NULL AND lease_until < ?
			RETURNING id, kind, type, correlation_id, causation_id, headers, payload, created_at, attempts`),
			r.owner, now.Add(r.cfg.Lease).UnixMilli(), now.UnixMilli(), now.UnixMilli(), r.cfg.BatchSize, now.UnixMilli())
	})
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	var delivered []string
	var errs []error
	outcome := func(w row, err error) {
		if err != nil {
			errs = append(errs, r.failed(deliverCtx, w, err))
			return
		}
		delivered = append(delivered, w.ID)
	}
	if bd, ok := to.(BatchDeliverer); ok {
		envs := make([]message.Envelope, len(rows))
		for i, w := range rows {
			envs[i] = w.envelope()
		}
		for i, err := range bd.DeliverBatch(deliverCtx, envs) {
			outcome(rows[i], err)
		}
	} else {
		for _, w := range rows {
			if ctx.Err() != nil {
				break // unfinished claims are released by Stop
			}
			outcome(w, to.Deliver(deliverCtx, w.envelope()))
		}
	}
	if len(delivered) > 0 {
		q, args, err := sqlx.In(`DELETE FROM outbox WHERE lease_owner = ? AND id IN (?)`, r.owner, delivered)
		if err == nil {
			err = store.InTx(context.WithoutCancel(ctx), r.db, func(tx *store.Tx) error {
				_, err := tx.ExecContext(context.WithoutCancel(ctx), tx.Rebind(q), args...)
				return err
			})
		}
		if err != nil {
			// The messages were delivered; their lease will expire and they will be
			// delivered again, which receivers' inboxes make harmless.
			errs = append(errs, fmt.Errorf("outbox: mark delivered: %w", err))
		}
	}
	return len(rows), errors.Join(errs...)
}

func (r *Relay) failed(ctx context.Context, w row, cause error) error {
	attempts := w.Attempts + 1
	now := time.Now().UTC()
	msg := cause.Error()
	if len(msg) > 2000 {
		msg = strings.ToValidUTF8(msg[:2000], "") // do not keep half a character
	}
	var err error
	if attempts >= r.cfg.MaxAttempts {
		r.log.Error("outbox message parked as dead letter", "id", w.ID, "type", w.Type, "attempts", attempts, "err", cause)
		_, err = r.db.ExecContext(context.WithoutCancel(ctx), r.db.Rebind(`UPDATE outbox
			SET attempts = ?, last_error = ?, dead_at = ?, lease_owner = '', lease_until = 0
			WHERE id = ? AND lease_owner = ?`), attempts, msg, now.UnixMilli(), w.ID, r.owner)
	} else {
		delay := backoff.Delay(r.cfg.BaseBackoff, r.cfg.MaxBackoff, attempts)
		r.log.Warn("outbox delivery failed; will retry", "id", w.ID, "type", w.Type, "attempt", attempts, "retry_in", delay, "err", cause)
		_, err = r.db.ExecContext(context.WithoutCancel(ctx), r.db.Rebind(`UPDATE outbox
			SET attempts = ?, last_error = ?, next_attempt_at = ?, lease_owner = '', lease_until = 0
			WHERE id = ? AND lease_owner = ?`), attempts, msg, now.Add(delay).UnixMilli(), w.ID, r.owner)
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
