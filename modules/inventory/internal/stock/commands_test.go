package stock_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/inventory/internal/stock"
)

func TestReserve(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		mug, tee := e.product("MUG", 10), e.product("TEE", 3)
		e.news()

		c := e.order(line(mug, 4), inventory.Line{SKU: "TEE", Quantity: 3}) // by product, and by SKU alone
		e.reserve(c)
		if got := e.numbers("MUG"); got != (numbers{10, 4}) {
			t.Errorf("MUG = %+v, want 10 on hand, 4 reserved", got)
		}
		if got := e.numbers("TEE"); got != (numbers{3, 3}) {
			t.Errorf("TEE = %+v, want 3 on hand, 3 reserved", got)
		}
		rows := e.news()
		// TEE falls from 3 available to 0, below its threshold of 5 — but it was
		// not above it before, so no StockLow; MUG falls from 10 to 6: above.
		if diff := cmp.Diff([]string{"StockReserved", "StockChanged", "StockChanged"}, types(rows)); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}
		wantReserved := inventory.StockReserved{OrderID: c.OrderID, ExpiresAt: c.ExpiresAt, Lines: []inventory.Line{
			{ProductID: mug.ProductID, SKU: "MUG", Quantity: 4}, {ProductID: tee.ProductID, SKU: "TEE", Quantity: 3}}}
		if diff := cmp.Diff(wantReserved, only[inventory.StockReserved](t, rows, "inventory.StockReserved")); diff != "" {
			t.Errorf("StockReserved (-want +got):\n%s", diff)
		}

		// The same order again (a saga retry: another message id) holds nothing
		// more and answers the same.
		e.reserve(c)
		if got := e.numbers("MUG"); got != (numbers{10, 4}) {
			t.Errorf("MUG after a repeated ReserveStock = %+v, want 10 on hand, 4 reserved", got)
		}
		rows = e.news()
		if diff := cmp.Diff([]string{"StockReserved"}, types(rows)); diff != "" {
			t.Errorf("outbox after a repeat (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantReserved, only[inventory.StockReserved](t, rows, "inventory.StockReserved")); diff != "" {
			t.Errorf("repeated StockReserved (-want +got):\n%s", diff)
		}

		// A redelivery of one message is dropped by the inbox: no answer at all.
		m, err := bus.NewEnvelope(t.Context(), message.KindCommand, inventory.ReserveStockCommand.Name(), e.order(line(mug, 1)))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := e.b.Deliver(t.Context(), m); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
		}
		if got := e.numbers("MUG"); got != (numbers{10, 5}) {
			t.Errorf("MUG after a redelivered ReserveStock = %+v, want 10 on hand, 5 reserved", got)
		}
		if diff := cmp.Diff([]string{"StockReserved", "StockChanged", "StockLow"}, types(e.news())); diff != "" {
			t.Errorf("outbox after a redelivery (-want +got):\n%s", diff)
		}
	})
}

func TestReserveRejections(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		mug, tee := e.product("MUG", 10), e.product("TEE", 3)
		unknown := bus.NewID()

		rejectedLine := func(it inventory.Item, q, available int64, reason string) inventory.RejectedLine {
			return inventory.RejectedLine{ProductID: it.ProductID, Requested: q, Available: available, Reason: reason}
		}
		tooMany := make([]inventory.Line, inventory.MaxLines+1)
		for i := range tooMany {
			tooMany[i] = line(mug, 1)
		}
		tests := []struct {
			name    string
			c       inventory.ReserveStock
			want    []inventory.RejectedLine
			expires time.Duration // 0: 15 minutes
		}{
			{"every failing line, with why", e.order(line(mug, 2), line(tee, 4), inventory.Line{ProductID: unknown, Quantity: 1}, line(mug, 0)),
				[]inventory.RejectedLine{
					rejectedLine(tee, 4, 3, inventory.RejectOutOfStock),
					{ProductID: unknown, Requested: 1, Reason: inventory.RejectUnknownProduct},
					rejectedLine(mug, 0, 0, inventory.RejectInvalid),
				}, 0},
			{"out of stock by one", e.order(line(tee, 4)), []inventory.RejectedLine{rejectedLine(tee, 4, 3, inventory.RejectOutOfStock)}, 0},
			{"unknown SKU", e.order(inventory.Line{SKU: "NOPE", Quantity: 1}),
				[]inventory.RejectedLine{{SKU: "NOPE", Requested: 1, Reason: inventory.RejectUnknownProduct}}, 0},
			{"negative quantity", e.order(line(mug, -1)), []inventory.RejectedLine{rejectedLine(mug, -1, 0, inventory.RejectInvalid)}, 0},
			{"quantity over the maximum", e.order(line(mug, inventory.MaxQuantity+1)),
				[]inventory.RejectedLine{rejectedLine(mug, inventory.MaxQuantity+1, 0, inventory.RejectInvalid)}, 0},
			{"line naming nothing", e.order(inventory.Line{Quantity: 1}), []inventory.RejectedLine{{Requested: 1, Reason: inventory.RejectInvalid}}, 0},
			{"one product twice", e.order(line(mug, 1), line(mug, 1)), []inventory.RejectedLine{rejectedLine(mug, 1, 10, inventory.RejectInvalid)}, 0},
			{"no lines", e.order(), []inventory.RejectedLine{{Reason: inventory.RejectInvalid}}, 0},
			{"too many lines", e.order(tooMany...), []inventory.RejectedLine{{Reason: inventory.RejectInvalid}}, 0},
			{"already expired", e.order(line(mug, 1), line(tee, 1)), []inventory.RejectedLine{
				rejectedLine(mug, 1, 0, inventory.RejectExpired), rejectedLine(tee, 1, 0, inventory.RejectExpired)}, -time.Second},
		}
		e.news()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := tt.c
				if tt.expires != 0 {
					c.ExpiresAt = e.clock.now().Add(tt.expires)
				}
				want := inventory.StockReservationRejected{OrderID: c.OrderID, Lines: tt.want}
				for range 2 { // a second ReserveStock gets the same answer
					e.reserve(c)
					rows := e.news()
					if diff := cmp.Diff([]string{"StockReservationRejected"}, types(rows)); diff != "" {
						t.Fatalf("outbox (-want +got):\n%s", diff)
					}
					got := only[inventory.StockReservationRejected](t, rows, "inventory.StockReservationRejected")
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("rejection (-want +got):\n%s", diff)
					}
				}
				if got := e.numbers("MUG"); got != (numbers{10, 0}) {
					t.Errorf("MUG = %+v after a rejection, want nothing reserved", got)
				}
				if got := e.numbers("TEE"); got != (numbers{3, 0}) {
					t.Errorf("TEE = %+v after a rejection, want nothing reserved", got)
				}
			})
		}

		// An order without an id cannot be answered: it fails, for the relay to park.
		err := sendErr(e, inventory.ReserveStockCommand.Name(), message.KindCommand, inventory.ReserveStock{Lines: []inventory.Line{line(mug, 1)}})
		if !errors.Is(err, message.ErrInvalidMessage) {
			t.Errorf("ReserveStock without an order id: err = %v, want ErrInvalidMessage", err)
		}
	})
}

func TestCommitReleaseRestock(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		mug := e.product("MUG", 10)
		e.news()
		check := func(what string, want numbers, wantTypes ...string) []testdb.OutboxRow {
			t.Helper()
			if got := e.numbers("MUG"); got != want {
				t.Errorf("%s: MUG = %+v, want %+v", what, got, want)
			}
			rows := e.news()
			if diff := cmp.Diff(wantTypes, types(rows), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: outbox (-want +got):\n%s", what, diff)
			}
			return rows
		}

		// held → committed → restocked, each repeat answered the same.
		a := e.order(line(mug, 3))
		e.reserve(a)
		check("reserve", numbers{10, 3}, "StockReserved", "StockChanged")
		e.commit(a.OrderID)
		rows := check("commit", numbers{7, 0}, "ReservationCommitted", "StockChanged")
		if got := only[inventory.ReservationCommitted](t, rows, "inventory.ReservationCommitted"); got.OrderID != a.OrderID {
			t.Errorf("ReservationCommitted for %s, want %s", got.OrderID, a.OrderID)
		}
		e.commit(a.OrderID)
		check("commit again", numbers{7, 0}, "ReservationCommitted")
		e.release(a.OrderID, "payment failed")
		check("release after commit", numbers{7, 0}) // the saga never does this: no effect, no answer
		e.restock(a.OrderID)
		rows = check("restock", numbers{10, 0}, "OrderRestocked", "StockChanged")
		if got := only[inventory.OrderRestocked](t, rows, "inventory.OrderRestocked"); got.OrderID != a.OrderID {
			t.Errorf("OrderRestocked for %s, want %s", got.OrderID, a.OrderID)
		}
		e.restock(a.OrderID)
		check("restock again", numbers{10, 0}, "OrderRestocked")
		e.commit(a.OrderID)
		check("commit after restock", numbers{10, 0}, "ReservationCommitted")

		// held → released, repeats answered the same; then a commit takes the
		// units from what is available, since they still are.
		b := e.order(line(mug, 4))
		e.reserve(b)
		check("reserve b", numbers{10, 4}, "StockReserved", "StockChanged")
		e.release(b.OrderID, "payment declined")
		rows = check("release b", numbers{10, 0}, "ReservationReleased", "StockChanged")
		if diff := cmp.Diff(inventory.ReservationReleased{OrderID: b.OrderID, Reason: "payment declined"},
			only[inventory.ReservationReleased](t, rows, "inventory.ReservationReleased")); diff != "" {
			t.Errorf("ReservationReleased (-want +got):\n%s", diff)
		}
		e.release(b.OrderID, "payment declined")
		check("release b again", numbers{10, 0}, "ReservationReleased")
		e.commit(b.OrderID)
		check("commit released b", numbers{6, 0}, "ReservationCommitted", "StockChanged")

		// Released, and the stock sold meanwhile: the commit fails and takes nothing.
		c := e.order(line(mug, 5))
		e.reserve(c)
		e.release(c.OrderID, "timeout")
		d := e.order(line(mug, 5))
		e.reserve(d)
		check("reserve c, release c, reserve d", numbers{6, 5}, "StockReserved", "StockChanged", "StockLow",
			"ReservationReleased", "StockChanged", "StockReserved", "StockChanged", "StockLow")
		e.commit(c.OrderID)
		rows = check("commit c", numbers{6, 5}, "ReservationCommitFailed")
		if got := only[inventory.ReservationCommitFailed](t, rows, "inventory.ReservationCommitFailed"); got.OrderID != c.OrderID || got.Reason == "" {
			t.Errorf("ReservationCommitFailed = %+v, want order %s with a reason", got, c.OrderID)
		}

		// Orders inventory never saw.
		unknown := bus.NewID()
		e.commit(unknown)
		check("commit unknown", numbers{6, 5}, "ReservationCommitFailed")
		e.release(unknown, "timeout")
		rows = check("release unknown", numbers{6, 5}, "ReservationReleased")
		if got := only[inventory.ReservationReleased](t, rows, "inventory.ReservationReleased"); got.OrderID != unknown {
			t.Errorf("ReservationReleased for %s, want %s", got.OrderID, unknown)
		}
		e.restock(unknown)
		check("restock unknown", numbers{6, 5}, "OrderRestocked")

		// A rejected order: nothing to commit, release or restock.
		r := e.order(line(mug, 2))
		e.reserve(r)
		check("reserve r", numbers{6, 5}, "StockReservationRejected")
		e.commit(r.OrderID)
		check("commit rejected", numbers{6, 5}, "ReservationCommitFailed")
		e.release(r.OrderID, "rejected")
		check("release rejected", numbers{6, 5}, "ReservationReleased")

		// Restocking a held order releases it.
		e.restock(d.OrderID)
		check("restock held d", numbers{6, 0}, "OrderRestocked", "StockChanged")
		e.commit(d.OrderID)
		check("commit d after its release", numbers{1, 0}, "ReservationCommitted", "StockChanged", "StockLow")
	})
}

func TestSweepExpired(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		mug := e.product("MUG", 10)
		soon, later := e.order(line(mug, 2)), e.order(line(mug, 3))
		soon.ExpiresAt = e.clock.now().Add(time.Minute)
		later.ExpiresAt = e.clock.now().Add(time.Hour)
		committed := e.order(line(mug, 1))
		committed.ExpiresAt = soon.ExpiresAt
		e.reserve(soon)
		e.reserve(later)
		e.reserve(committed)
		e.commit(committed.OrderID)
		e.news()

		if n, err := e.s.SweepExpired(t.Context()); err != nil || n != 0 {
			t.Fatalf("SweepExpired before any expiry: %d, %v; want 0", n, err)
		}
		e.clock.advance(time.Minute) // exactly at soon's expiry
		if n, err := e.s.SweepExpired(t.Context()); err != nil || n != 1 {
			t.Fatalf("SweepExpired: %d, %v; want 1", n, err)
		}
		if got := e.numbers("MUG"); got != (numbers{9, 3}) {
			t.Errorf("MUG = %+v, want 9 on hand and later's 3 reserved", got)
		}
		rows := e.news()
		if diff := cmp.Diff([]string{"ReservationReleased", "StockChanged"}, types(rows)); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(inventory.ReservationReleased{OrderID: soon.OrderID, Reason: stock.ReasonExpired},
			only[inventory.ReservationReleased](t, rows, "inventory.ReservationReleased")); diff != "" {
			t.Errorf("ReservationReleased (-want +got):\n%s", diff)
		}
		if n, err := e.s.SweepExpired(t.Context()); err != nil || n != 0 {
			t.Errorf("SweepExpired again: %d, %v; want 0", n, err)
		}

		// The background sweeper releases later once its time comes.
		sw := e.s.StartSweeper()
		t.Cleanup(func() { _ = sw.Stop(context.Background()) })
		e.clock.advance(time.Hour)
		testlog.Eventually(t, "the sweeper releases the expired reservation", func() bool { return e.numbers("MUG") == numbers{9, 0} })
		if err := sw.Stop(t.Context()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

// The last units go to exactly as many concurrent reservations as they cover, on
// every back end, and the numbers stay consistent.
func TestConcurrentReservationsOfTheLastUnits(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		const units, buyers = 5, 24
		mug, tee := e.product("MUG", units), e.product("TEE", 1000)
		var wg sync.WaitGroup
		errs := make([]error, buyers)
		orders := make([]inventory.ReserveStock, buyers)
		for i := range buyers {
			// Some orders lock TEE and MUG, some only MUG: lock order matters.
			orders[i] = e.order(line(mug, 1))
			if i%2 == 0 {
				orders[i] = e.order(line(tee, 1), line(mug, 1))
			}
			wg.Go(func() {
				// A transaction that loses a race is retried, as the relay would.
				for range 20 {
					if errs[i] = sendErr(e, inventory.ReserveStockCommand.Name(), message.KindCommand, orders[i]); errs[i] == nil {
						return
					}
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("order %d: %v", i, err)
			}
		}
		rows := e.news()
		won := map[string]bool{}
		for _, r := range rows {
			if r.Type == inventory.StockReservedEvent.Name() {
				won[testdb.Decode[inventory.StockReserved](t, r.Payload).OrderID] = true
			}
		}
		lost := 0
		for _, r := range rows {
			if r.Type == inventory.StockReservationRejectedEvent.Name() {
				rej := testdb.Decode[inventory.StockReservationRejected](t, r.Payload)
				if won[rej.OrderID] {
					t.Errorf("order %s both reserved and rejected", rej.OrderID)
				}
				if len(rej.Lines) != 1 || rej.Lines[0].Reason != inventory.RejectOutOfStock || rej.Lines[0].ProductID != mug.ProductID {
					t.Errorf("rejection %+v, want MUG out of stock", rej.Lines)
				}
				lost++
			}
		}
		if len(won) != units || lost != buyers-units {
			t.Errorf("%d orders reserved and %d rejected, want %d and %d", len(won), lost, units, buyers-units)
		}
		if got := e.numbers("MUG"); got != (numbers{units, units}) {
			t.Errorf("MUG = %+v, want all %d units reserved", got, units)
		}
		teeWon := 0
		for i, o := range orders {
			if i%2 == 0 && won[o.OrderID] {
				teeWon++
			}
		}
		if got := e.numbers("TEE"); got != (numbers{1000, int64(teeWon)}) {
			t.Errorf("TEE = %+v, want %d reserved (the winning orders that had it)", got, teeWon)
		}
	})
}
