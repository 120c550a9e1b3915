package chaos

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"
	"github.com/agora-commerce/agora/tools/loadgen"
)

// The checker catches what broken handlers leave in the stores. A shop (one
// process, every module, SQLite) takes a few dozen checkouts and is checked
// clean; then, with the process stopped, its stores are changed the way five bugs
// would change them, each on its own order or SKU — a capture taken twice, a
// unit of stock lost without an adjustment, a notification never written, a saga
// that never finished its order, a message parked as a dead letter — and the
// checker must report each of them, once, under its own invariant, and nothing
// else.
func TestCheckerCatchesBrokenStores(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shop")
	}
	dir := t.TempDir()
	a := procs.StartAgora(t, dir, "", "AGORA_AUTH_PER_IP_PER_MINUTE=100000")
	lc := loadgen.DefaultConfig()
	lc.URLs, lc.Rate, lc.Duration, lc.BrowseRate, lc.Customers, lc.Seed = []string{a.Base}, 10, 3*time.Second, 0, 5, 1
	lc.Tokens, _ = loadgen.ParseTokenMix("tok_visa=4,tok_decline=1")
	rep, err := loadgen.Run(t.Context(), lc, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStores(dir, "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res := settleStores(t, st)
	if res.Total() != 0 || rep.Checkouts.Confirmed < 3 {
		t.Fatalf("the shop is not clean before the corruptions (%d confirmed):\n%s", rep.Checkouts.Confirmed, res)
	}
	a.Stop()

	ctx := t.Context()
	var confirmed, skus []string
	must(t, st.selectRows(ctx, "orders", &confirmed, `SELECT id FROM {orders} WHERE status = 'confirmed' ORDER BY id LIMIT 3`))
	must(t, st.selectRows(ctx, "inventory", &skus, `SELECT sku FROM {items} WHERE on_hand > 0 ORDER BY sku LIMIT 1`))
	now := time.Now().UnixMilli()
	for _, c := range []struct{ module, query string }{
		// payments captures the order's authorization twice over
		{"payments", fmt.Sprintf(`UPDATE {payments} SET authorized = 2 * authorized, captured = 2 * captured WHERE payable_id = '%s'`, confirmed[0])},
		// inventory loses a unit without an adjustment in the audit trail
		{"inventory", fmt.Sprintf(`UPDATE {items} SET on_hand = on_hand - 1 WHERE sku = '%s'`, skus[0])},
		// notifications drops a confirmation
		{"notifications", fmt.Sprintf(`DELETE FROM {notifications} WHERE order_id = '%s'`, confirmed[1])},
		// the saga confirms the payment and the stock but never the order
		{"orders", fmt.Sprintf(`UPDATE {orders} SET status = 'pending' WHERE id = '%s'`, confirmed[2])},
		// a message the relay could not deliver
		{"orders", fmt.Sprintf(`INSERT INTO {outbox} (id, kind, type, payload, created_at, next_attempt_at, last_error, dead_at)
			VALUES ('dead-1', 'event', 'orders.OrderConfirmed', '{}', %d, %d, 'poison', %d)`, now, now, now)},
	} {
		if err := st.Exec(ctx, c.module, c.query); err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
	}
	res, err = Check(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"confirmed_not_captured": 1, "stock_not_conserved": 1, "notification_mismatch": 1, "order_not_final": 1, "dead_letter": 1}
	for _, inv := range Invariants {
		if res.Count(inv) != want[inv] {
			t.Errorf("%s: %d violations, want %d", inv, res.Count(inv), want[inv])
		}
	}
	if t.Failed() {
		t.Logf("the checker said:\n%s", res)
	}
}

// settleStores waits, up to a minute, until the checker finds the stores clean,
// and returns the last check.
func settleStores(t *testing.T, st *Stores) *Result {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		res, err := Check(ctx, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Total() == 0 || !procs.Sleep(ctx, 200*time.Millisecond) {
			return res
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
