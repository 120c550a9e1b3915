// Package outbox makes a module's messages as durable as its state: a module writes
// commands and events into the outbox table of its own database in the same
// transaction as the state change (Outbox.Add), a Relay delivers them to the bus
// afterwards (at least once, with backoff, parking poison messages as dead letters
// an operator can redrive), and receivers record each message id in their inbox in
// the same transaction as its effect (Subscribe), so a redelivered message has no
// second effect.
package outbox

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
)

// Outbox writes one module's outgoing durable messages.
type Outbox struct {
	db    *store.DB
	relay *Relay
}

// New returns the outbox of db; relay (may be nil) is woken after each commit that
// adds messages.
func New(db *store.DB, relay *Relay) *Outbox { return &Outbox{db: db, relay: relay} }

// Add writes msgs to the outbox inside tx. They become visible to the relay only if
// tx commits. While the relay runs they are written held by it and handed to it
// on commit, so that it delivers them at once without claiming them (a commit
// saved per batch); otherwise it is woken to claim them.
func (o *Outbox) Add(ctx context.Context, tx *store.Tx, msgs ...message.Outgoing) error {
	if len(msgs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	var owner string
	var until int64
	held := false
	if o.relay != nil {
		owner, until, held = o.relay.worker.Hold(now)
	}
	rows := make([]row, 0, len(msgs))
	for _, m := range msgs {
		w, err := newRow(ctx, m, now)
		if err != nil {
			return err
		}
		rows = append(rows, w)
	}
	for chunk := range slices.Chunk(rows, maxInsertRows) {
		if err := insertRows(ctx, tx, chunk, owner, until); err != nil {
			return err
		}
	}
	switch {
	case held:
		tx.OnCommit(func() { o.relay.worker.Handoff(rows...) })
	case o.relay != nil:
		tx.OnCommit(o.relay.Notify)
	}
	return nil
}

// maxInsertRows bounds the rows of one INSERT (11 parameters each: within both
// SQLite's and PostgreSQL's limits).
const maxInsertRows = 500

// insertRows writes rows in one statement — one round trip for all the messages
// of a change — held by owner until until (none: "" and 0).
func insertRows(ctx context.Context, tx *store.Tx, rows []row, owner string, until int64) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO outbox
		(id, kind, type, correlation_id, causation_id, headers, payload, created_at, next_attempt_at, lease_owner, lease_until) VALUES `)
	args := make([]any, 0, 11*len(rows))
	for i, w := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, w.ID, w.Kind, w.Type, w.CorrelationID, w.CausationID, w.Headers, w.Payload, w.CreatedAt, w.CreatedAt, owner, until)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(q.String()), args...); err != nil {
		return fmt.Errorf("outbox: add %s: %w", rows[0].Type, err)
	}
	return nil
}

// newRow seals m as the outbox row written at now.
func newRow(ctx context.Context, m message.Outgoing, now time.Time) (row, error) {
	env, err := bus.Seal(ctx, m)
	if err != nil {
		return row{}, fmt.Errorf("outbox: encode %s: %w", m.Type, err)
	}
	headers, err := json.Marshal(env.Headers)
	if err != nil {
		return row{}, fmt.Errorf("outbox: encode headers: %w", err)
	}
	return row{ID: env.ID, Kind: string(env.Kind), Type: env.Type, CorrelationID: env.CorrelationID, CausationID: env.CausationID,
		Headers: string(headers), Payload: string(env.Payload), CreatedAt: now.UnixMilli()}, nil
}

// Subscribe returns a subscription of consumer to msgType whose handler runs in a
// transaction on db together with the inbox record of the message: a message already
// recorded for this consumer is acknowledged without running handle again.
// Whatever handle writes with tx (its state, new outbox messages) commits atomically
// with that record.
//
// A relay that delivers a batch hands every message of the batch for db's
// subscriptions to one transaction, each message under its own savepoint: one
// commit for the batch, and a failing message undoes only its own effect.
func Subscribe(db *store.DB, msgType, consumer string, handle func(ctx context.Context, tx *store.Tx, env message.Envelope) error) bus.Subscription {
	return subscribe(db, msgType, consumer, txHandler{run: handle})
}

func subscribe(db *store.DB, msgType, consumer string, h txHandler) bus.Subscription {
	return bus.Subscription{
		Type:     msgType,
		Consumer: consumer,
		Handle: func(ctx context.Context, env message.Envelope) error {
			if h.skips(env) {
				return nil
			}
			return store.InTx(ctx, db, func(tx *store.Tx) error { return h.once(ctx, tx, consumer, env) })
		},
		Group: dbGroup{db},
		Unit:  h,
	}
}

// txHandler is a subscription's effect, run inside the receiver's transaction,
// and, for a keyed subscription (SubscribeEventFor), the entity each message is
// about.
type txHandler struct {
	run func(ctx context.Context, tx *store.Tx, env message.Envelope) error
	key func(env message.Envelope) string // nil: not keyed
}

// keyOf returns the entity env is about, and whether the handler is keyed.
func (h txHandler) keyOf(env message.Envelope) (string, bool) {
	if h.key == nil {
		return "", false
	}
	return h.key(env), true
}

// skips reports whether env is one the handler has no effect for (a keyed
// handler's message about no entity): it is acknowledged without a transaction
// or an inbox record, as a redelivery of it is.
func (h txHandler) skips(env message.Envelope) bool {
	k, keyed := h.keyOf(env)
	return keyed && k == ""
}

// once runs h for env unless consumer's inbox already has it, recording it in tx.
func (h txHandler) once(ctx context.Context, tx *store.Tx, consumer string, env message.Envelope) error {
	res, err := tx.ExecContext(ctx, tx.Rebind(
		`INSERT INTO inbox (message_id, consumer, received_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`),
		env.ID, consumer, time.Now().UTC().UnixMilli())
	if err != nil {
		return fmt.Errorf("inbox: record %s: %w", env.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		bus.MarkDuplicate(ctx)
		return nil // seen before: its effect is already committed
	}
	return h.run(ctx, tx, env)
}

// dbGroup batches the subscriptions whose effects live in one database.
type dbGroup struct{ db *store.DB }

// HandleBatch implements bus.BatchGroup: every item in one transaction, so that a
// batch costs one commit, and a failing item rolls back its own effect and nothing
// else. Items rarely fail, and a savepoint costs two more round trips per item on
// PostgreSQL, so the batch runs first without savepoints; only when an item fails
// is it run again, each item under a savepoint. When the transaction itself fails,
// every item fails with it (and is redelivered).
func (g dbGroup) HandleBatch(ctx context.Context, items []bus.BatchItem) []error {
	errs := make([]error, len(items))
	run := make([]int, 0, len(items))
	keys := make([]string, len(items))
	keyed := true // every item that runs
	for i, it := range items {
		k, ok := it.Sub.Unit.(txHandler).keyOf(it.Env)
		switch {
		case ok && k == "":
			continue // not the consumer's: acknowledged at no cost
		case !ok:
			keyed = false
		}
		keys[i] = k
		run = append(run, i)
	}
	if len(run) == 0 {
		return errs
	}
	unlock := g.lockOrder(run, keys, keyed)
	defer unlock()
	err := g.pass(ctx, items, run, errs, false)
	if errors.Is(err, errItemFailed) && len(run) > 1 {
		clear(errs)
		err = g.pass(ctx, items, run, errs, true)
	}
	if err != nil && !errors.Is(err, errItemFailed) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return errs
}

// deliveryLocks holds a mutex per PostgreSQL database that batches are delivered
// into (*store.DB → *sync.Mutex).
var deliveryLocks sync.Map

// lockOrder keeps two batches delivered at once into g's database (from two
// relays) from deadlocking — each locking the rows of entities A then B, the
// other B then A, a deadlock PostgreSQL only breaks after its deadlock_timeout
// (1 s), stalling both relays. When every item of the batch is keyed
// (SubscribeEventFor: a keyed handler locks only its entity's rows), it sorts run
// by keys (indexed like the batch), stably — an entity's messages keep their order — so that every batch
// locks in the same order; otherwise the batch waits for its turn among this
// process's deliveries into the database, and the returned func ends it. SQLite
// has one writer: its deliveries take turns already.
func (g dbGroup) lockOrder(run []int, keys []string, keyed bool) func() {
	switch {
	case g.db.Dialect != store.Postgres:
		return func() {}
	case keyed:
		sort.SliceStable(run, func(a, b int) bool { return keys[run[a]] < keys[run[b]] })
		return func() {}
	}
	mu, _ := deliveryLocks.LoadOrStore(g.db, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// errItemFailed ends a pass without savepoints whose item failed: the whole
// transaction rolls back.
var errItemFailed = errors.New("outbox: an item of the batch failed")

// pass runs the items of run in one transaction, recording each one's error in
// errs: under a savepoint each when savepoints is set, otherwise stopping (and
// rolling back) at the first that fails, with errItemFailed.
func (g dbGroup) pass(ctx context.Context, items []bus.BatchItem, run []int, errs []error, savepoints bool) error {
	exec := func(tx *store.Tx, stmt string) error {
		_, err := tx.ExecContext(ctx, stmt)
		return err
	}
	return store.InTx(ctx, g.db, func(tx *store.Tx) error {
		for _, i := range run {
			it := items[i]
			if savepoints {
				if err := exec(tx, "SAVEPOINT delivery"); err != nil {
					return err
				}
			}
			ictx, end := it.Begin(ctx)
			err := it.Sub.Unit.(txHandler).once(ictx, tx, it.Sub.Consumer, it.Env)
			end(err)
			if err != nil {
				errs[i] = err
				if !savepoints {
					return errItemFailed
				}
				if err := exec(tx, "ROLLBACK TO SAVEPOINT delivery"); err != nil {
					return err
				}
			}
			if savepoints {
				if err := exec(tx, "RELEASE SAVEPOINT delivery"); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// SubscribeEvent is Subscribe for a typed event.
func SubscribeEvent[T any](db *store.DB, e message.Event[T], consumer string, handle func(ctx context.Context, tx *store.Tx, m message.Message[T]) error) bus.Subscription {
	return Subscribe(db, e.Name(), consumer, func(ctx context.Context, tx *store.Tx, env message.Envelope) error {
		m, err := e.Decode(env)
		if err != nil {
			return err
		}
		return handle(ctx, tx, m)
	})
}

// SubscribeEventFor is SubscribeEvent for events each about one entity of the
// consumer's (an order's saga, a ride): keyOf returns it, or "" for an event that
// does not concern the consumer (another payable's payment, say), which is
// acknowledged at no cost — no transaction, no inbox record. handle gets the key.
// Its contract: it locks no rows but its entity's (and new ones it writes), so
// that a batch's deliveries can be put in key order, which keeps batches
// delivered at once from deadlocking on PostgreSQL.
func SubscribeEventFor[T any](db *store.DB, e message.Event[T], consumer string, keyOf func(T) string,
	handle func(ctx context.Context, tx *store.Tx, m message.Message[T], key string) error) bus.Subscription {
	h := txHandler{run: func(ctx context.Context, tx *store.Tx, env message.Envelope) error {
		m, err := e.Decode(env)
		if err != nil {
			return err
		}
		return handle(ctx, tx, m, keyOf(m.Body))
	}}
	h.key = func(env message.Envelope) string {
		m, err := e.Decode(env)
		if err != nil {
			return "?" // not skipped: the handler fails on it, as always
		}
		return keyOf(m.Body)
	}
	return subscribe(db, e.Name(), consumer, h)
}

// SubscribeCommand is Subscribe for a typed command.
func SubscribeCommand[T any](db *store.DB, c message.Command[T], consumer string, handle func(ctx context.Context, tx *store.Tx, m message.Message[T]) error) bus.Subscription {
	return Subscribe(db, c.Name(), consumer, func(ctx context.Context, tx *store.Tx, env message.Envelope) error {
		m, err := c.Decode(env)
		if err != nil {
			return err
		}
		return handle(ctx, tx, m)
	})
}
