package outbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
)

// benchDB opens a SQLite module database with the outbox's tables and an effects
// table, as the application opens one.
func benchDB(b *testing.B, module string) *store.DB {
	b.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, module, filepath.Join(b.TempDir(), module+".db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if err := outbox.Migrate(ctx, db, discard); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE effects (message_id TEXT NOT NULL, qty INTEGER NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	return db
}

// benchWorld is a sender's outbox and a receiver that writes one effect row per
// message in its own database, on SQLite (the default store).
func benchWorld(b *testing.B) (sender *store.DB, bb *bus.Bus) {
	b.Helper()
	sender, receiver := benchDB(b, "inventory"), benchDB(b, "orders")
	sub := outbox.SubscribeEvent(receiver, reserved, "orders.reservations",
		func(ctx context.Context, tx *store.Tx, m message.Message[stockReserved]) error {
			_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO effects (message_id, qty) VALUES (?, ?)`), m.ID, m.Body.Qty)
			return err
		})
	bb, err := bus.New(discard, bus.Limits{}, nil, nil, []bus.Subscription{sub})
	if err != nil {
		b.Fatal(err)
	}
	return sender, bb
}

func addN(b *testing.B, ctx context.Context, db *store.DB, ob *outbox.Outbox, n int) {
	b.Helper()
	msgs := make([]message.Outgoing, n)
	for i := range msgs {
		msgs[i] = reserved.With(stockReserved{OrderID: fmt.Sprint(i), Qty: 1})
	}
	if err := store.InTx(ctx, db, func(tx *store.Tx) error { return ob.Add(ctx, tx, msgs...) }); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRelayDrain measures the relay's pass over a full outbox: claim a batch
// of 500, deliver it into the receiver (one transaction, a savepoint per message),
// delete it. ns/op is per message.
func BenchmarkRelayDrain(b *testing.B) {
	const batch = 500
	ctx := context.Background()
	sender, bb := benchWorld(b)
	relay := outbox.NewRelay(sender, outbox.RelayConfig{BatchSize: batch}, discard)
	ob := outbox.New(sender, nil)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n == 0 {
			b.StopTimer()
			addN(b, ctx, sender, ob, batch)
			b.StartTimer()
			if got, err := relay.Drain(ctx, bb); err != nil || got != batch {
				b.Fatalf("Drain = %d, %v; want %d", got, err, batch)
			}
		}
		n = (n + 1) % batch
	}
}

// BenchmarkRelayStarted measures a started relay end to end: writers commit one
// message per transaction, the relay wakes on each commit and delivers; the clock
// stops when the receiver has applied them all. ns/op is per message.
func BenchmarkRelayStarted(b *testing.B) {
	ctx := context.Background()
	sender, bb := benchWorld(b)
	relay := outbox.NewRelay(sender, outbox.RelayConfig{}, discard)
	ob := outbox.New(sender, relay)
	relay.Start(bb)
	b.Cleanup(func() { _ = relay.Stop(context.Background()) })
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := store.InTx(ctx, sender, func(tx *store.Tx) error {
				return ob.Add(ctx, tx, reserved.With(stockReserved{OrderID: "o", Qty: 1}))
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	for {
		var left int
		if err := sender.GetContext(ctx, &left, `SELECT COUNT(*) FROM outbox`); err != nil {
			b.Fatal(err)
		}
		if left == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
}
