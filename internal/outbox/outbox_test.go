package outbox_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/agora-commerce/agora/internal/testdb"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testlog"
)

var discard = slog.New(slog.DiscardHandler)

type stockReserved struct {
	OrderID string
	Qty     int
}

var reserved = message.NewEvent[stockReserved]("inventory.StockReserved")

// testCtx bounds each test, so that a stuck lock or a missing wake-up fails instead of hanging.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// eachBackend runs fn once per back end (SQLite, PostgreSQL), as subtests.
func eachBackend(t *testing.T, fn func(t *testing.T, be testdb.Backend)) {
	for _, be := range testdb.Backends {
		t.Run(string(be), func(t *testing.T) { fn(t, be) })
	}
}

// schemaFor names the PostgreSQL schema that stands for a test's database path.
func schemaFor(path string) string {
	sum := sha256.Sum256([]byte(path))
	return "t_" + hex.EncodeToString(sum[:8])
}

// effectSeq orders the effects rows in the order they were applied, on any back end.
var effectSeq atomic.Int64

// openDB opens (or reopens) a module database the way the application does: the
// outbox migrations, then the module's own (here a table of applied effects, with no
// unique key, so a second effect of one message shows up as a second row).
//
// On PostgreSQL, path names a schema instead of a file (the same path, the same
// schema), so reopening reaches the same database as on SQLite.
func openDB(t *testing.T, be testdb.Backend, module, path string) *store.DB {
	t.Helper()
	ctx := testCtx(t)
	var db *store.DB
	var err error
	if be == testdb.Postgres {
		db, err = store.OpenPostgres(ctx, module, testdb.PostgresURL(t), schemaFor(path), store.Options{})
	} else {
		db, err = store.OpenSQLite(ctx, module, path, store.Options{})
	}
	if err != nil {
		t.Fatalf("open %s: %v", module, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := outbox.Migrate(ctx, db, discard); err != nil {
		t.Fatalf("migrate outbox: %v", err)
	}
	own := fstest.MapFS{"00001_effects.sql": {Data: []byte(`-- +goose Up
CREATE TABLE effects (seq BIGINT NOT NULL, consumer TEXT NOT NULL, message_id TEXT NOT NULL, order_id TEXT NOT NULL, qty INTEGER NOT NULL);
CREATE TABLE orders (id TEXT PRIMARY KEY);
`)}}
	if err := store.Migrate(ctx, db, own, "goose_db_version", discard); err != nil {
		t.Fatalf("migrate %s: %v", module, err)
	}
	return db
}

// world is a sending module (with an outbox) and a receiving module (with an inbox
// and the effects its handler applies), each in its own database.
type world struct {
	backend    testdb.Backend
	senderPath string
	sender     *store.DB
	receiver   *store.DB
	bus        *bus.Bus
	seen       *seenMessages
}

type seenMessages struct {
	mu   sync.Mutex
	msgs []message.Message[stockReserved]
}

func (s *seenMessages) all() []message.Message[stockReserved] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]message.Message[stockReserved](nil), s.msgs...)
}

func newWorld(t *testing.T, be testdb.Backend, consumers ...string) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{backend: be, senderPath: filepath.Join(dir, "inventory.db"), seen: &seenMessages{}}
	w.sender = openDB(t, be, "inventory", w.senderPath)
	w.receiver = openDB(t, be, "orders", filepath.Join(dir, "orders.db"))
	if len(consumers) == 0 {
		consumers = []string{"orders.reservations"}
	}
	var subs []bus.Subscription
	for _, c := range consumers {
		subs = append(subs, w.subscription(c, nil))
	}
	b, err := bus.New(discard, bus.Limits{}, nil, nil, subs)
	if err != nil {
		t.Fatal(err)
	}
	w.bus = b
	return w
}

// subscription applies the effect of each message in the receiver's database; fail,
// if set, runs after the effect is written and before the transaction commits.
func (w *world) subscription(consumer string, fail func() error) bus.Subscription {
	return outbox.SubscribeEvent(w.receiver, reserved, consumer,
		func(ctx context.Context, tx *store.Tx, m message.Message[stockReserved]) error {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO effects (seq, consumer, message_id, order_id, qty) VALUES (?, ?, ?, ?, ?)`), effectSeq.Add(1),
				consumer, m.ID, m.Body.OrderID, m.Body.Qty); err != nil {
				return err
			}
			if fail != nil {
				if err := fail(); err != nil {
					return err
				}
			}
			w.seen.mu.Lock()
			w.seen.msgs = append(w.seen.msgs, m)
			w.seen.mu.Unlock()
			return nil
		})
}

type effect struct {
	Consumer  string `db:"consumer"`
	MessageID string `db:"message_id"`
	OrderID   string `db:"order_id"`
	Qty       int    `db:"qty"`
}

func (w *world) effects(t *testing.T) []effect {
	t.Helper()
	var out []effect
	if err := w.receiver.SelectContext(testCtx(t), &out,
		`SELECT consumer, message_id, order_id, qty FROM effects ORDER BY seq`); err != nil {
		t.Fatalf("read effects: %v", err)
	}
	return out
}

// add writes msgs into the sender's outbox in one transaction, with an order row as
// the state change they belong to, and returns the new messages' ids. It reads them
// inside the transaction: once it commits, a running relay may deliver and delete
// them at any moment.
func add(t *testing.T, ctx context.Context, db *store.DB, ob *outbox.Outbox, orders ...stockReserved) []string {
	t.Helper()
	var msgs []message.Outgoing
	for _, o := range orders {
		msgs = append(msgs, reserved.With(o))
	}
	var ids []string
	err := store.InTx(ctx, db, func(tx *store.Tx) error {
		var before, after []string
		if err := tx.SelectContext(ctx, &before, `SELECT id FROM outbox ORDER BY id`); err != nil {
			return err
		}
		for _, o := range orders {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO orders (id) VALUES (?)`), o.OrderID); err != nil {
				return err
			}
		}
		if err := ob.Add(ctx, tx, msgs...); err != nil {
			return err
		}
		if err := tx.SelectContext(ctx, &after, `SELECT id FROM outbox ORDER BY id`); err != nil {
			return err
		}
		ids = nil
		for _, id := range after {
			if !contains(before, id) {
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if len(ids) != len(orders) {
		t.Fatalf("add wrote %d messages; want %d", len(ids), len(orders))
	}
	return ids
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func outboxIDs(t *testing.T, db *store.DB) []string {
	t.Helper()
	var ids []string
	if err := db.SelectContext(testCtx(t), &ids, `SELECT id FROM outbox ORDER BY id`); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return ids
}

type outboxRow struct {
	ID            string        `db:"id"`
	Attempts      int           `db:"attempts"`
	LastError     string        `db:"last_error"`
	NextAttemptAt int64         `db:"next_attempt_at"`
	LeaseOwner    string        `db:"lease_owner"`
	LeaseUntil    int64         `db:"lease_until"`
	DeadAt        sql.NullInt64 `db:"dead_at"`
}

func rows(t *testing.T, db *store.DB) []outboxRow {
	t.Helper()
	var out []outboxRow
	if err := db.SelectContext(testCtx(t), &out, `SELECT id, attempts, last_error, next_attempt_at,
		lease_owner, lease_until, dead_at FROM outbox ORDER BY id`); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return out
}

func rowByID(t *testing.T, db *store.DB, id string) outboxRow {
	t.Helper()
	for _, r := range rows(t, db) {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("outbox row %s not found", id)
	return outboxRow{}
}

type backlog struct {
	Pending int
	Dead    int
}

func pending(t *testing.T, db *store.DB) backlog {
	t.Helper()
	p, _, d, err := outbox.NewDeadLetters(db, nil).Backlog(testCtx(t))
	if err != nil {
		t.Fatalf("Backlog: %v", err)
	}
	return backlog{p, d}
}

// counter is a Deliverer that counts deliveries per message id and hands them on.
// before may fail a delivery before it reaches next (the receiver is unreachable);
// after may fail it once next took it (the acknowledgement is lost).
type counter struct {
	next   outbox.Deliverer
	before func(env message.Envelope, n int) error
	after  func(env message.Envelope, n int) error

	mu    sync.Mutex
	calls map[string]int
	order []string
}

func (c *counter) Deliver(ctx context.Context, env message.Envelope) error {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[env.ID]++
	n := c.calls[env.ID]
	c.order = append(c.order, env.ID)
	c.mu.Unlock()
	if c.before != nil {
		if err := c.before(env, n); err != nil {
			return err
		}
	}
	if err := c.next.Deliver(ctx, env); err != nil {
		return err
	}
	if c.after != nil {
		return c.after(env, n)
	}
	return nil
}

func (c *counter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.order)
}

// deliverFunc adapts a function to outbox.Deliverer.
type deliverFunc func(ctx context.Context, env message.Envelope) error

func (f deliverFunc) Deliver(ctx context.Context, env message.Envelope) error { return f(ctx, env) }

func once(ids ...string) map[string]int {
	out := map[string]int{}
	for _, id := range ids {
		out[id] = 1
	}
	return out
}

func TestAddThenDrainDeliversOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{}, discard)
		ob := outbox.New(w.sender, relay)
		ctx := message.WithCause(testCtx(t), message.Cause{ID: "http-req-1", CorrelationID: "corr-1"})

		orders := []stockReserved{{"o1", 2}, {"o2", 5}, {"o3", 1}}
		ids := add(t, ctx, w.sender, ob, orders...)
		if len(ids) != 3 {
			t.Fatalf("outbox holds %d new messages; want 3", len(ids))
		}
		if got := w.effects(t); len(got) != 0 {
			t.Fatalf("effects before the relay ran: %v", got)
		}
		if diff := cmp.Diff(backlog{Pending: 3}, pending(t, w.sender)); diff != "" {
			t.Errorf("backlog before Drain (-want +got):\n%s", diff)
		}

		d := &counter{next: w.bus}
		n, err := relay.Drain(ctx, d)
		if err != nil || n != 3 {
			t.Fatalf("Drain = %d, %v; want 3, nil", n, err)
		}
		want := []effect{
			{"orders.reservations", ids[0], "o1", 2},
			{"orders.reservations", ids[1], "o2", 5},
			{"orders.reservations", ids[2], "o3", 1},
		}
		if diff := cmp.Diff(want, w.effects(t)); diff != "" {
			t.Errorf("effects (-want +got):\n%s", diff)
		}
		// Delivered in the order they were written, each once.
		if diff := cmp.Diff(ids, d.order); diff != "" {
			t.Errorf("delivery order (-want +got):\n%s", diff)
		}
		// The handler saw the message as it was sent: its id, type, causation and
		// correlation (from the context of the transaction that wrote it).
		for i, m := range w.seen.all() {
			got := []string{m.ID, m.Type, m.CausationID, m.CorrelationID}
			if diff := cmp.Diff([]string{ids[i], reserved.Name(), "http-req-1", "corr-1"}, got); diff != "" {
				t.Errorf("message %d meta (-want +got):\n%s", i, diff)
			}
			if m.Time.IsZero() || m.Time.Location() != time.UTC {
				t.Errorf("message %d time = %v; want a UTC time", i, m.Time)
			}
		}
		if diff := cmp.Diff(backlog{}, pending(t, w.sender)); diff != "" {
			t.Errorf("backlog after Drain (-want +got):\n%s", diff)
		}

		// Nothing is left to deliver.
		if n, err := relay.Drain(ctx, d); err != nil || n != 0 {
			t.Errorf("second Drain = %d, %v; want 0, nil", n, err)
		}
		if diff := cmp.Diff(once(ids...), d.counts()); diff != "" {
			t.Errorf("deliveries per message (-want +got):\n%s", diff)
		}
		if got := len(w.effects(t)); got != 3 {
			t.Errorf("effects after second Drain = %d; want 3", got)
		}
	})
}

func TestAddInRolledBackTxDeliversNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{}, discard)
		ob := outbox.New(w.sender, relay)
		ctx := testCtx(t)
		errAbort := errors.New("abort")

		tests := []struct {
			name    string
			fn      func(tx *store.Tx) error
			wantErr error
		}{
			{"fn fails after Add", func(tx *store.Tx) error {
				if err := ob.Add(ctx, tx, reserved.With(stockReserved{"o1", 1})); err != nil {
					return err
				}
				return errAbort
			}, errAbort},
			{"payload cannot be encoded", func(tx *store.Tx) error {
				return ob.Add(ctx, tx, reserved.With(stockReserved{"o2", 1}), message.Outgoing{Kind: message.KindEvent, Type: "x.Y", Payload: func() {}})
			}, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := store.InTx(ctx, w.sender, tc.fn)
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("InTx = %v; want an error (%v)", err, tc.wantErr)
				}
			})
		}
		if ids := outboxIDs(t, w.sender); len(ids) != 0 {
			t.Errorf("outbox after rollbacks holds %v; want nothing", ids)
		}
		d := &counter{next: w.bus}
		if n, err := relay.Drain(ctx, d); n != 0 || err != nil {
			t.Errorf("Drain = %d, %v; want 0, nil", n, err)
		}
		if d.total() != 0 || len(w.effects(t)) != 0 {
			t.Errorf("deliveries, effects = %d, %v; want none", d.total(), w.effects(t))
		}
	})
}

// The process dies after the transaction committed and before the relay delivered:
// the message is in the database, and the next process delivers it.
func TestCrashBetweenCommitAndDelivery(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		type crash struct {
			name string
			// before the crash, the first process's relay (lease as given) may have
			// claimed the message and died while delivering it
			claimed bool
			lease   time.Duration
			// the next process's relay takes it over at once, or once the lease expired
			wantAtOnce bool
		}
		for _, tc := range []crash{
			{name: "relay never ran", wantAtOnce: true},
			{name: "relay died holding a short lease", claimed: true, lease: 50 * time.Millisecond},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := newWorld(t, be)
				ctx := testCtx(t)
				relay1 := outbox.NewRelay(w.sender, outbox.RelayConfig{Lease: tc.lease}, discard)
				ids := add(t, ctx, w.sender, outbox.New(w.sender, relay1), stockReserved{"o1", 3})
				if tc.claimed {
					dying := &counter{next: w.bus, before: func(message.Envelope, int) error { panic("process killed") }}
					func() {
						defer func() { _ = recover() }()
						_, _ = relay1.Drain(ctx, dying)
						t.Fatal("Drain returned; the deliverer should have panicked")
					}()
					if r := rowByID(t, w.sender, ids[0]); r.LeaseOwner == "" {
						t.Fatalf("row after the crash = %+v; want it claimed", r)
					}
				}
				// Restart: a new handle on the same file, a new relay.
				if err := w.sender.Close(); err != nil {
					t.Fatal(err)
				}
				sender := openDB(t, w.backend, "inventory", w.senderPath)
				relay2 := outbox.NewRelay(sender, outbox.RelayConfig{}, discard)
				d := &counter{next: w.bus}

				if tc.wantAtOnce {
					if n, err := relay2.Drain(ctx, d); n != 1 || err != nil {
						t.Fatalf("Drain after restart = %d, %v; want 1, nil", n, err)
					}
				} else {
					testlog.Eventually(t, "the dead relay's lease to expire and the message to be delivered", func() bool {
						n, err := relay2.Drain(ctx, d)
						if err != nil {
							t.Fatalf("Drain: %v", err)
						}
						return n > 0
					})
				}
				if diff := cmp.Diff([]effect{{"orders.reservations", ids[0], "o1", 3}}, w.effects(t)); diff != "" {
					t.Errorf("effects (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(once(ids...), d.counts()); diff != "" {
					t.Errorf("deliveries (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(backlog{}, pending(t, sender)); diff != "" {
					t.Errorf("backlog (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// A claim that has not expired belongs to its relay: no other relay delivers the
// message meanwhile.
func TestLiveClaimIsRespected(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		ctx := testCtx(t)
		relay1 := outbox.NewRelay(w.sender, outbox.RelayConfig{Lease: time.Hour}, discard)
		ids := add(t, ctx, w.sender, outbox.New(w.sender, relay1), stockReserved{"o1", 3})
		func() {
			defer func() { _ = recover() }()
			_, _ = relay1.Drain(ctx, &counter{next: w.bus, before: func(message.Envelope, int) error { panic("process killed") }})
		}()
		relay2 := outbox.NewRelay(w.sender, outbox.RelayConfig{}, discard)
		d := &counter{next: w.bus}
		if n, err := relay2.Drain(ctx, d); n != 0 || err != nil {
			t.Errorf("Drain of a message claimed by another relay = %d, %v; want 0, nil", n, err)
		}
		if d.total() != 0 {
			t.Errorf("deliveries = %v; want none", d.counts())
		}
		if r := rowByID(t, w.sender, ids[0]); r.LeaseOwner == "" || r.Attempts != 0 {
			t.Errorf("row = %+v; want it still claimed, with no attempt counted", r)
		}
	})
}

// The message reached the receiver but the relay did not learn it (the process died
// before deleting the row, or the acknowledgement was lost): it is delivered again,
// and the receiver's inbox drops the duplicate.
func TestRedeliveryHasNoSecondEffect(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		t.Run("same envelope handled twice", func(t *testing.T) {
			w := newWorld(t, be)
			ctx := testCtx(t)
			relay := outbox.NewRelay(w.sender, outbox.RelayConfig{}, discard)
			ids := add(t, ctx, w.sender, outbox.New(w.sender, relay), stockReserved{"o1", 4})

			var delivered []message.Envelope
			d := &counter{next: w.bus, after: func(env message.Envelope, _ int) error {
				delivered = append(delivered, env)
				return nil
			}}
			if n, err := relay.Drain(ctx, d); n != 1 || err != nil {
				t.Fatalf("Drain = %d, %v", n, err)
			}
			// Redelivery through the subscription itself and through the whole bus.
			sub := w.bus.Subscriptions(reserved.Name())[0]
			if err := sub.Handle(ctx, delivered[0]); err != nil {
				t.Errorf("second Handle: %v", err)
			}
			if err := w.bus.Deliver(ctx, delivered[0]); err != nil {
				t.Errorf("second Deliver: %v", err)
			}
			if diff := cmp.Diff([]effect{{"orders.reservations", ids[0], "o1", 4}}, w.effects(t)); diff != "" {
				t.Errorf("effects (-want +got):\n%s", diff)
			}
		})

		t.Run("acknowledgement lost, relay retries", func(t *testing.T) {
			w := newWorld(t, be)
			ctx := testCtx(t)
			relay := outbox.NewRelay(w.sender, outbox.RelayConfig{BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, discard)
			ids := add(t, ctx, w.sender, outbox.New(w.sender, relay), stockReserved{"o1", 4})
			d := &counter{next: w.bus, after: func(_ message.Envelope, n int) error {
				if n == 1 {
					return errors.New("acknowledgement lost")
				}
				return nil
			}}
			testlog.Eventually(t, "the outbox to empty", func() bool {
				if _, err := relay.Drain(ctx, d); err != nil {
					t.Fatalf("Drain: %v", err)
				}
				return len(outboxIDs(t, w.sender)) == 0
			})
			if diff := cmp.Diff(map[string]int{ids[0]: 2}, d.counts()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]effect{{"orders.reservations", ids[0], "o1", 4}}, w.effects(t)); diff != "" {
				t.Errorf("effects (-want +got):\n%s", diff)
			}
		})

		t.Run("each consumer applies it once", func(t *testing.T) {
			w := newWorld(t, be, "orders.reservations", "orders.audit")
			ctx := testCtx(t)
			env, err := bus.Seal(ctx, reserved.With(stockReserved{"o1", 4}))
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if err := w.bus.Deliver(ctx, env); err != nil {
					t.Fatalf("Deliver: %v", err)
				}
			}
			want := []effect{{"orders.reservations", env.ID, "o1", 4}, {"orders.audit", env.ID, "o1", 4}}
			if diff := cmp.Diff(want, w.effects(t)); diff != "" {
				t.Errorf("effects (-want +got):\n%s", diff)
			}
		})

		t.Run("failed handler leaves no inbox record", func(t *testing.T) {
			// The inbox record commits with the effect: when the handler fails, both roll
			// back, so the retry applies the effect instead of dropping it as a duplicate.
			w := newWorld(t, be)
			ctx := testCtx(t)
			var calls atomic.Int32
			sub := w.subscription("orders.flaky", func() error {
				if calls.Add(1) == 1 {
					return errors.New("deadlock, try again")
				}
				return nil
			})
			env, err := bus.Seal(ctx, reserved.With(stockReserved{"o1", 4}))
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.Handle(ctx, env); err == nil {
				t.Fatal("first Handle returned nil; want the handler's error")
			}
			if got := w.effects(t); len(got) != 0 {
				t.Fatalf("effects after a failed handler: %v; want none", got)
			}
			if err := sub.Handle(ctx, env); err != nil {
				t.Fatalf("second Handle: %v", err)
			}
			if err := sub.Handle(ctx, env); err != nil {
				t.Fatalf("third Handle: %v", err)
			}
			if diff := cmp.Diff([]effect{{"orders.flaky", env.ID, "o1", 4}}, w.effects(t)); diff != "" {
				t.Errorf("effects (-want +got):\n%s", diff)
			}
		})

		t.Run("undecodable payload is an error, not a silent ack", func(t *testing.T) {
			w := newWorld(t, be)
			ctx := testCtx(t)
			env, err := bus.NewEnvelope(ctx, message.KindEvent, reserved.Name(), map[string]string{"Qty": "many"})
			if err != nil {
				t.Fatal(err)
			}
			sub := w.bus.Subscriptions(reserved.Name())[0]
			if err := sub.Handle(ctx, env); !errors.Is(err, message.ErrInvalidMessage) {
				t.Errorf("Handle(bad payload) = %v; want ErrInvalidMessage", err)
			}
			// Not recorded in the inbox: once the sender is fixed, a retry is not dropped.
			var n int
			if err := w.receiver.GetContext(ctx, &n, `SELECT count(*) FROM inbox`); err != nil || n != 0 {
				t.Errorf("inbox records = %d, %v; want 0", n, err)
			}
		})
	})
}

// faults fails the delivery of messages whose order id is in its set (check is a
// counter.before hook); set(id, nil) clears the fault.
type faults struct {
	mu  sync.Mutex
	ids map[string]error
}

func (f *faults) set(orderID string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ids == nil {
		f.ids = map[string]error{}
	}
	if err == nil {
		delete(f.ids, orderID)
	} else {
		f.ids[orderID] = err
	}
}

func (f *faults) check(env message.Envelope, _ int) error {
	m, err := reserved.Decode(env)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ids[m.Body.OrderID]
}

func TestFailedDeliveryIsRetriedThenParked(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		const base = 40 * time.Millisecond
		w := newWorld(t, be)
		ctx := testCtx(t)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{BaseBackoff: base, MaxBackoff: time.Hour, MaxAttempts: 3}, discard)
		dl := outbox.NewDeadLetters(w.sender, relay)
		var f faults
		f.set("poison", errors.New("receiver down"))
		d := &counter{next: w.bus, before: f.check}

		ids := add(t, ctx, w.sender, outbox.New(w.sender, relay), stockReserved{"poison", 1}, stockReserved{"fine", 2})
		poison := ids[0]

		// drain runs Drain until cond holds and returns the time window of the pass that
		// made it hold.
		drain := func(what string, cond func() bool) (before, after int64) {
			t.Helper()
			testlog.Eventually(t, what, func() bool {
				before = time.Now().UnixMilli()
				if _, err := relay.Drain(ctx, d); err != nil {
					t.Fatalf("Drain: %v", err)
				}
				after = time.Now().UnixMilli()
				return cond()
			})
			return before, after
		}

		// Attempt 1: the poison message fails, the healthy one behind it is delivered.
		before, after := drain("the first attempt", func() bool { return d.total() >= 2 })
		if diff := cmp.Diff([]effect{{"orders.reservations", ids[1], "fine", 2}}, w.effects(t)); diff != "" {
			t.Errorf("effects (-want +got):\n%s", diff)
		}
		r := rowByID(t, w.sender, poison)
		if r.Attempts != 1 || !strings.Contains(r.LastError, "receiver down") || r.DeadAt.Valid || r.LeaseOwner != "" {
			t.Errorf("after attempt 1: %+v; want 1 attempt, last_error 'receiver down', not dead, not leased", r)
		}
		// Retry delay for attempt 1: base with equal jitter, in [base/2, base].
		if lo, hi := before+base.Milliseconds()/2, after+base.Milliseconds(); r.NextAttemptAt < lo || r.NextAttemptAt > hi {
			t.Errorf("after attempt 1: next_attempt_at = %d; want in [%d, %d]", r.NextAttemptAt, lo, hi)
		}

		// Attempt 2, once due: the delay doubles, in [base, 2·base].
		before, after = drain("the second attempt", func() bool { return rowByID(t, w.sender, poison).Attempts == 2 })
		r = rowByID(t, w.sender, poison)
		if lo, hi := before+base.Milliseconds(), after+2*base.Milliseconds(); r.NextAttemptAt < lo || r.NextAttemptAt > hi {
			t.Errorf("after attempt 2: next_attempt_at = %d; want in [%d, %d]", r.NextAttemptAt, lo, hi)
		}
		if r.DeadAt.Valid {
			t.Errorf("parked after 2 of 3 attempts: %+v", r)
		}

		// Attempt 3 is the last: the message is parked.
		drain("the message to be parked", func() bool { return rowByID(t, w.sender, poison).DeadAt.Valid })
		r = rowByID(t, w.sender, poison)
		if r.Attempts != 3 {
			t.Errorf("parked with %d attempts; want 3", r.Attempts)
		}
		if got := d.counts()[poison]; got != 3 {
			t.Errorf("delivery attempts of the poison message = %d; want 3 (MaxAttempts)", got)
		}

		list, err := dl.List(ctx, "", 10)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		want := []outbox.DeadLetter{{ID: poison, Type: reserved.Name(), Kind: "event", CorrelationID: poison, Attempts: 3, LastError: "receiver down"}}
		if diff := cmp.Diff(want, list, cmpopts.IgnoreFields(outbox.DeadLetter{}, "CreatedAt", "DeadAt")); diff != "" {
			t.Errorf("dead letters (-want +got):\n%s", diff)
		}
		if len(list) == 1 && (list[0].CreatedAt.IsZero() || list[0].DeadAt.Before(list[0].CreatedAt)) {
			t.Errorf("dead letter times: created %v, dead %v", list[0].CreatedAt, list[0].DeadAt)
		}
		if diff := cmp.Diff(backlog{Dead: 1}, pending(t, w.sender)); diff != "" {
			t.Errorf("backlog with a dead letter (-want +got):\n%s", diff)
		}

		// A dead letter is not delivered again by itself.
		if n, err := relay.Drain(ctx, d); n != 0 || err != nil {
			t.Errorf("Drain with only a dead letter = %d, %v; want 0, nil", n, err)
		}
		if got := d.counts()[poison]; got != 3 {
			t.Errorf("dead letter delivered again: %d attempts", got)
		}

		// Redrive while the fault persists: a fresh attempt count, so one failure does
		// not park it again.
		if err := dl.Redrive(ctx, poison); err != nil {
			t.Fatalf("Redrive: %v", err)
		}
		if diff := cmp.Diff(backlog{Pending: 1}, pending(t, w.sender)); diff != "" {
			t.Errorf("backlog after Redrive (-want +got):\n%s", diff)
		}
		if list, err := dl.List(ctx, "", 10); err != nil || len(list) != 0 {
			t.Errorf("List after Redrive = %v, %v; want none", list, err)
		}
		drain("the redriven message's attempt", func() bool { return d.counts()[poison] == 4 })
		if r := rowByID(t, w.sender, poison); r.Attempts != 1 || r.DeadAt.Valid {
			t.Errorf("after a failed attempt following Redrive: %+v; want 1 attempt, not dead", r)
		}

		// The fault clears: the retry goes through, once.
		f.set("poison", nil)
		drain("the redriven message to be delivered", func() bool { return len(outboxIDs(t, w.sender)) == 0 })
		want2 := []effect{{"orders.reservations", ids[1], "fine", 2}, {"orders.reservations", poison, "poison", 1}}
		if diff := cmp.Diff(want2, w.effects(t)); diff != "" {
			t.Errorf("effects after redrive (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(backlog{}, pending(t, w.sender)); diff != "" {
			t.Errorf("final backlog (-want +got):\n%s", diff)
		}
	})
}

func TestRedriveNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		ctx := testCtx(t)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{MaxAttempts: 1}, discard)
		dl := outbox.NewDeadLetters(w.sender, relay)
		ids := add(t, ctx, w.sender, outbox.New(w.sender, relay), stockReserved{"live", 1})

		for _, tc := range []struct{ name, id string }{
			{"unknown id", bus.NewID()},
			{"empty id", ""},
			{"message that is not dead", ids[0]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := dl.Redrive(ctx, tc.id)
				if !errors.Is(err, outbox.ErrDeadLetterNotFound) {
					t.Errorf("Redrive(%q) = %v; want ErrDeadLetterNotFound", tc.id, err)
				}
			})
		}
		if r := rowByID(t, w.sender, ids[0]); r.DeadAt.Valid || r.Attempts != 0 {
			t.Errorf("live message changed by a refused Redrive: %+v", r)
		}
	})
}

func TestDeadLettersListPages(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		ctx := testCtx(t)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{MaxAttempts: 1}, discard)
		dl := outbox.NewDeadLetters(w.sender, relay)
		var f faults
		for _, o := range []string{"d1", "d2", "d3", "d4", "d5"} {
			f.set(o, errors.New("poison "+o))
		}
		ids := add(t, ctx, w.sender, outbox.New(w.sender, relay),
			stockReserved{"d1", 1}, stockReserved{"d2", 1}, stockReserved{"ok", 1}, stockReserved{"d3", 1}, stockReserved{"d4", 1}, stockReserved{"d5", 1})
		if _, err := relay.Drain(ctx, &counter{next: w.bus, before: f.check}); err != nil {
			t.Fatal(err)
		}
		dead := []string{ids[0], ids[1], ids[3], ids[4], ids[5]}

		var got [][]string
		after := ""
		for {
			page, err := dl.List(ctx, after, 2)
			if err != nil {
				t.Fatalf("List(%q): %v", after, err)
			}
			if len(page) == 0 {
				break
			}
			var pageIDs []string
			for _, d := range page {
				pageIDs = append(pageIDs, d.ID)
			}
			got = append(got, pageIDs)
			after = page[len(page)-1].ID
			if len(got) > 10 {
				t.Fatal("List does not advance")
			}
		}
		want := [][]string{{dead[0], dead[1]}, {dead[2], dead[3]}, {dead[4]}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pages (-want +got):\n%s", diff)
		}
		page, err := dl.List(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		var errs []string
		for _, d := range page {
			errs = append(errs, d.LastError)
		}
		if diff := cmp.Diff([]string{"poison d1", "poison d2", "poison d3", "poison d4", "poison d5"}, errs); diff != "" {
			t.Errorf("last errors (-want +got):\n%s", diff)
		}
	})
}

func TestLastErrorIsTruncated(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		ctx := testCtx(t)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{MaxAttempts: 1}, discard)
		ids := add(t, ctx, w.sender, outbox.New(w.sender, relay), stockReserved{"o1", 1})
		long := strings.Repeat("x", 5000)
		if _, err := relay.Drain(ctx, &counter{next: w.bus, before: func(message.Envelope, int) error { return errors.New(long) }}); err != nil {
			t.Fatal(err)
		}
		if r := rowByID(t, w.sender, ids[0]); len(r.LastError) != 2000 || !r.DeadAt.Valid {
			t.Errorf("last_error length %d, dead %v; want 2000, true", len(r.LastError), r.DeadAt.Valid)
		}
	})
}

func TestBacklog(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		ctx := testCtx(t)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{MaxAttempts: 1}, discard)
		dl := outbox.NewDeadLetters(w.sender, relay)
		ob := outbox.New(w.sender, relay)

		check := func(step string, wantPending, wantDead int, oldestAtLeast, oldestBelow time.Duration) {
			t.Helper()
			p, oldest, dead, err := dl.Backlog(ctx)
			if err != nil {
				t.Fatalf("%s: Backlog: %v", step, err)
			}
			if p != wantPending || dead != wantDead {
				t.Errorf("%s: pending, dead = %d, %d; want %d, %d", step, p, dead, wantPending, wantDead)
			}
			if oldest < oldestAtLeast || oldest >= oldestBelow {
				t.Errorf("%s: oldest = %v; want in [%v, %v)", step, oldest, oldestAtLeast, oldestBelow)
			}
		}
		check("empty", 0, 0, 0, 1)

		ids := add(t, ctx, w.sender, ob, stockReserved{"a", 1}, stockReserved{"b", 1}, stockReserved{"c", 1})
		// Age the second message by two hours: the oldest pending one decides the age.
		if _, err := w.sender.ExecContext(ctx, w.sender.Rebind(`UPDATE outbox SET created_at = created_at - ? WHERE id = ?`),
			(2 * time.Hour).Milliseconds(), ids[1]); err != nil {
			t.Fatal(err)
		}
		check("three pending", 3, 0, 2*time.Hour, 3*time.Hour)

		var f faults
		f.set("b", errors.New("poison"))
		if _, err := relay.Drain(ctx, &counter{next: w.bus, before: f.check}); err != nil {
			t.Fatal(err)
		}
		// The dead letter is old but no longer pending, so it does not count for the age.
		check("one dead", 0, 1, 0, 1)

		add(t, ctx, w.sender, ob, stockReserved{"d", 1})
		check("one dead, one pending", 1, 1, 0, time.Hour)
	})
}

// A relay started with a poll interval of an hour still delivers at once, because
// the commit that adds a message wakes it.
func TestNotifyWakesStartedRelay(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		ctx := testCtx(t)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{PollInterval: time.Hour, MaxAttempts: 1}, discard)
		var f faults
		d := &counter{next: w.bus, before: f.check}
		relay.Start(d)
		t.Cleanup(func() { _ = relay.Stop(context.Background()) })
		ob := outbox.New(w.sender, relay)
		dl := outbox.NewDeadLetters(w.sender, relay)

		// The first message may be found by the relay's first pass at start.
		first := add(t, ctx, w.sender, ob, stockReserved{"o1", 1})
		testlog.Eventually(t, "the first message", func() bool { return d.counts()[first[0]] == 1 })

		// The relay has claimed and delivered the first message, so it claimed before the
		// second was committed: only the wake-up on commit can get the second delivered.
		second := add(t, ctx, w.sender, ob, stockReserved{"o2", 1})
		testlog.Eventually(t, "the second message (woken by the commit)", func() bool { return d.counts()[second[0]] == 1 })

		// A redrive wakes it too.
		f.set("poison", errors.New("down"))
		third := add(t, ctx, w.sender, ob, stockReserved{"poison", 1})
		testlog.Eventually(t, "the third message to be parked", func() bool { return rowByID(t, w.sender, third[0]).DeadAt.Valid })
		f.set("poison", nil)
		if err := dl.Redrive(ctx, third[0]); err != nil {
			t.Fatal(err)
		}
		testlog.Eventually(t, "the redriven message (woken by Redrive)", func() bool { return len(outboxIDs(t, w.sender)) == 0 })

		if diff := cmp.Diff(map[string]int{first[0]: 1, second[0]: 1, third[0]: 2}, d.counts()); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		if got := len(w.effects(t)); got != 3 {
			t.Errorf("effects = %d; want 3", got)
		}
	})
}

func TestNotifyNeverBlocks(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{}, discard)
		done := make(chan struct{})
		go func() {
			for range 100 {
				relay.Notify() // nobody is listening
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Notify blocked on a relay that is not running")
		}
	})
}

// Several replicas drain one outbox: every message is delivered exactly once.
func TestConcurrentRelaysDeliverEachMessageOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		const writers, perWriter = 4, 30
		w := newWorld(t, be)
		ctx := testCtx(t)
		// Two processes: two handles on one database file, one relay each.
		other := openDB(t, w.backend, "inventory", w.senderPath)
		cfg := outbox.RelayConfig{BatchSize: 5, PollInterval: 5 * time.Millisecond}
		relays := []*outbox.Relay{outbox.NewRelay(w.sender, cfg, discard), outbox.NewRelay(other, cfg, discard)}
		outboxes := []*outbox.Outbox{outbox.New(w.sender, relays[0]), outbox.New(other, relays[1])}
		d := &counter{next: w.bus}

		t.Run("started relays while writers add", func(t *testing.T) {
			for _, r := range relays {
				r.Start(d)
			}
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					for j := range perWriter {
						ob := outboxes[(i+j)%2]
						err := store.InTx(ctx, w.sender, func(tx *store.Tx) error {
							return ob.Add(ctx, tx, reserved.With(stockReserved{fmt.Sprintf("w%d-%d", i, j), j}))
						})
						if err != nil {
							t.Errorf("add: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			testlog.Eventually(t, "every message to be delivered", func() bool {
				return len(d.counts()) == writers*perWriter && len(outboxIDs(t, w.sender)) == 0
			})
			for _, r := range relays {
				if err := r.Stop(ctx); err != nil {
					t.Errorf("Stop: %v", err)
				}
			}
		})

		t.Run("concurrent Drain calls", func(t *testing.T) {
			var orders []stockReserved
			for i := range writers * perWriter {
				orders = append(orders, stockReserved{fmt.Sprintf("x%d", i), i})
			}
			add(t, ctx, w.sender, outboxes[0], orders...)
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					r := relays[i%2]
					for {
						var left int
						if err := w.sender.GetContext(ctx, &left, `SELECT count(*) FROM outbox`); err != nil {
							t.Errorf("count outbox: %v", err)
							return
						}
						if left == 0 {
							return
						}
						if _, err := r.Drain(ctx, d); err != nil {
							t.Errorf("Drain: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
		})

		counts := d.counts()
		var twice []string
		for id, n := range counts {
			if n != 1 {
				twice = append(twice, fmt.Sprintf("%s×%d", id, n))
			}
		}
		if len(counts) != 2*writers*perWriter || len(twice) > 0 {
			t.Errorf("%d messages delivered, want %d; delivered more than once: %v", len(counts), 2*writers*perWriter, twice)
		}
		if got := len(w.effects(t)); got != 2*writers*perWriter {
			t.Errorf("effects = %d; want %d", got, 2*writers*perWriter)
		}
	})
}

// probeCtx reports when Stop starts waiting on it, which Stop does only after it has
// told the relay to stop.
type probeCtx struct {
	context.Context
	once   sync.Once
	called chan struct{}
}

func (p *probeCtx) Done() <-chan struct{} {
	p.once.Do(func() { close(p.called) })
	return p.Context.Done()
}

func TestStop(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		ctx := testCtx(t)
		// A lease of an hour: only Stop's release can let another relay take the claims soon.
		cfg := outbox.RelayConfig{Lease: time.Hour, PollInterval: time.Hour}
		relay := outbox.NewRelay(w.sender, cfg, discard)
		ids := add(t, ctx, w.sender, outbox.New(w.sender, relay), stockReserved{"o1", 1}, stockReserved{"o2", 1}, stockReserved{"o3", 1})

		entered, release := make(chan struct{}), make(chan struct{})
		var cancelled atomic.Bool
		d := &counter{next: w.bus, before: func(env message.Envelope, _ int) error {
			if env.ID != ids[0] {
				return nil
			}
			close(entered)
			<-release
			return nil
		}}
		// Record whether the delivery in progress saw its context cancelled by Stop.
		relay.Start(deliverFunc(func(ctx context.Context, env message.Envelope) error {
			err := d.Deliver(ctx, env)
			if env.ID == ids[0] && ctx.Err() != nil {
				cancelled.Store(true)
				return ctx.Err()
			}
			return err
		}))
		<-entered
		for _, r := range rows(t, w.sender) {
			if r.LeaseOwner == "" {
				t.Fatalf("row %s not claimed while the relay delivers its batch", r.ID)
			}
		}

		probe := &probeCtx{Context: ctx, called: make(chan struct{})}
		stopped := make(chan error, 1)
		go func() { stopped <- relay.Stop(probe) }()
		<-probe.called // the relay has been told to stop
		close(release) // the delivery in progress now finishes
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("Stop: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Stop did not return")
		}

		if cancelled.Load() {
			t.Error("Stop cancelled the delivery in progress instead of letting it finish")
		}
		// The delivery in progress finished and was recorded; the rest of the batch was
		// not delivered, and its claims are released without counting an attempt.
		if diff := cmp.Diff(once(ids[0]), d.counts()); diff != "" {
			t.Errorf("deliveries before Stop (-want +got):\n%s", diff)
		}
		want := []outboxRow{{ID: ids[1]}, {ID: ids[2]}}
		if diff := cmp.Diff(want, rows(t, w.sender), cmpopts.IgnoreFields(outboxRow{}, "NextAttemptAt")); diff != "" {
			t.Errorf("outbox after Stop (-want +got):\n%s", diff)
		}

		// Another relay takes the released messages at once.
		relay2 := outbox.NewRelay(w.sender, cfg, discard)
		if n, err := relay2.Drain(ctx, d); n != 2 || err != nil {
			t.Errorf("Drain after Stop = %d, %v; want 2, nil", n, err)
		}
		if diff := cmp.Diff(once(ids...), d.counts()); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		if got := len(w.effects(t)); got != 3 {
			t.Errorf("effects = %d; want 3", got)
		}
		if err := relay.Stop(ctx); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

func TestStopBoundedByContext(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		ctx := testCtx(t)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{PollInterval: time.Hour}, discard)
		ids := add(t, ctx, w.sender, outbox.New(w.sender, relay), stockReserved{"o1", 1})

		entered := make(chan struct{})
		returned := make(chan struct{})
		relay.Start(deliverFunc(func(ctx context.Context, env message.Envelope) error {
			defer close(returned)
			close(entered)
			<-ctx.Done() // a delivery that only ends when it is cancelled
			return ctx.Err()
		}))
		<-entered
		stopCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if err := relay.Stop(stopCtx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Stop = %v; want context.DeadlineExceeded", err)
		}
		select {
		case <-returned: // the stuck delivery was cancelled once Stop gave up waiting
		case <-time.After(10 * time.Second):
			t.Fatal("the delivery in progress was never cancelled")
		}
		// It counts as a failed attempt and is retried later.
		testlog.Eventually(t, "the failure to be recorded", func() bool { return rowByID(t, w.sender, ids[0]).Attempts == 1 })
	})
}

// A relay delivering to the bus hands a whole batch to each receiving database in
// one transaction; a message whose handler fails undoes only its own effect (its
// savepoint) and is retried, while the others of the batch commit once.
func TestBatchDeliveryIsolatesFailures(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		var failing atomic.Bool
		failing.Store(true)
		var current string
		// The handler writes its effect, then fails for the order "bad".
		wrapped := outbox.SubscribeEvent(w.receiver, reserved, "orders.reservations",
			func(ctx context.Context, tx *store.Tx, m message.Message[stockReserved]) error {
				current = m.Body.OrderID
				if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO effects (seq, consumer, message_id, order_id, qty) VALUES (?, ?, ?, ?, ?)`),
					effectSeq.Add(1), "orders.reservations", m.ID, m.Body.OrderID, m.Body.Qty); err != nil {
					return err
				}
				if failing.Load() && current == "bad" {
					return errors.New("handler failed")
				}
				return nil
			})
		b, err := bus.New(discard, bus.Limits{}, nil, nil, []bus.Subscription{wrapped})
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, discard)
		ids := add(t, ctx, w.sender, outbox.New(w.sender, relay), stockReserved{"o1", 1}, stockReserved{"bad", 2}, stockReserved{"o2", 3})

		if n, err := relay.Drain(ctx, b); n != 3 || err != nil { // the failure is rescheduled, not an error of Drain
			t.Fatalf("first Drain = %d, %v; want 3 claimed", n, err)
		}
		want := []effect{{"orders.reservations", ids[0], "o1", 1}, {"orders.reservations", ids[2], "o2", 3}}
		if diff := cmp.Diff(want, w.effects(t)); diff != "" {
			t.Errorf("effects after a batch with one failure (-want +got):\n%s", diff)
		}
		if got := outboxIDs(t, w.sender); !slices.Equal(got, []string{ids[1]}) {
			t.Errorf("outbox after the batch = %v; want only the failed %s", got, ids[1])
		}

		failing.Store(false)
		testlog.Eventually(t, "the failed message to be retried", func() bool {
			_, _ = relay.Drain(ctx, b)
			return len(outboxIDs(t, w.sender)) == 0
		})
		want = append(want, effect{"orders.reservations", ids[1], "bad", 2})
		if diff := cmp.Diff(want, w.effects(t)); diff != "" {
			t.Errorf("effects after the retry (-want +got):\n%s", diff)
		}
	})
}

// TestKeyedSubscriptions: a keyed subscription (SubscribeEventFor) acknowledges an
// event about none of its entities with no transaction and no inbox record, and
// on PostgreSQL delivers a batch in key order — an entity's events in their own
// order — so that two batches delivered at once lock rows in the same order.
func TestKeyedSubscriptions(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		keyOf := func(m stockReserved) string {
			if m.OrderID == "not-ours" {
				return ""
			}
			return m.OrderID[:1] // the entity: "b1" and "b2" are both about b
		}
		sub := outbox.SubscribeEventFor(w.receiver, reserved, "orders.keyed", keyOf,
			func(ctx context.Context, tx *store.Tx, m message.Message[stockReserved], key string) error {
				_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO effects (seq, consumer, message_id, order_id, qty) VALUES (?, ?, ?, ?, ?)`),
					effectSeq.Add(1), "orders.keyed", m.ID, m.Body.OrderID, m.Body.Qty)
				return err
			})
		b, err := bus.New(discard, bus.Limits{}, nil, nil, []bus.Subscription{sub})
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{}, discard)
		ids := add(t, ctx, w.sender, outbox.New(w.sender, relay),
			stockReserved{"b1", 1}, stockReserved{"not-ours", 2}, stockReserved{"a1", 3}, stockReserved{"b2", 4})
		before := w.receiver.Commits()
		if n, err := relay.Drain(ctx, b); n != 4 || err != nil {
			t.Fatalf("Drain = %d, %v; want 4 claimed", n, err)
		}
		want := []effect{{"orders.keyed", ids[0], "b1", 1}, {"orders.keyed", ids[2], "a1", 3}, {"orders.keyed", ids[3], "b2", 4}}
		if be == testdb.Postgres {
			want = []effect{want[1], want[0], want[2]} // a before b; b1 before b2
		}
		if diff := cmp.Diff(want, w.effects(t)); diff != "" {
			t.Errorf("effects (-want +got):\n%s", diff)
		}
		if got := w.receiver.Commits().Commits - before.Commits; got != 1 {
			t.Errorf("the batch cost the receiver %d commits; want 1", got)
		}
		var inbox int
		if err := w.receiver.GetContext(ctx, &inbox, w.receiver.Rebind(`SELECT count(*) FROM inbox WHERE message_id = ?`), ids[1]); err != nil || inbox != 0 {
			t.Errorf("the event about none of the consumer's entities has %d inbox records (%v); want none", inbox, err)
		}
		if got := outboxIDs(t, w.sender); len(got) != 0 {
			t.Errorf("outbox after the batch = %v; want every message delivered, the skipped one too", got)
		}
	})
}
