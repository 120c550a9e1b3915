package stock_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
)

func TestProductCreatedMakesAnItemOnce(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		p := catalog.Product{ID: bus.NewID(), SKU: "TEE-M"}
		send(e, catalog.ProductCreatedEvent.Name(), message.KindEvent, catalog.ProductCreated{Product: p})

		want := inventory.Item{SKU: "TEE-M", ProductID: p.ID, LowMark: inventory.DefaultLowMark, Version: 1, UpdatedAt: e.clock.now()}
		if diff := cmp.Diff(want, e.item("TEE-M")); diff != "" {
			t.Errorf("new item (-want +got):\n%s", diff)
		}
		rows := e.news()
		if diff := cmp.Diff(inventory.StockChanged{Item: want}, only[inventory.StockChanged](t, rows, "inventory.StockChanged")); diff != "" {
			t.Errorf("StockChanged (-want +got):\n%s", diff)
		}

		// The same product again (another message: a catalog replay) changes nothing.
		send(e, catalog.ProductCreatedEvent.Name(), message.KindEvent, catalog.ProductCreated{Product: p})
		if diff := cmp.Diff(want, e.item("TEE-M")); diff != "" {
			t.Errorf("item after a second ProductCreated (-want +got):\n%s", diff)
		}
		if rows := e.news(); len(rows) != 0 {
			t.Errorf("a second ProductCreated published %v", testdb.OutboxTypes(rows))
		}
	})
}

func TestAdjust(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		ctx := t.Context()
		it := e.product("MUG", 0)
		e.news()

		got, err := e.s.Adjust(ctx, inventory.Adjust{SKU: "MUG", Delta: 10, Reason: "  received  ", Actor: "admin-1", ExpectedVersion: it.Version})
		if err != nil {
			t.Fatalf("Adjust: %v", err)
		}
		want := it
		want.OnHand, want.Available, want.Version = 10, 10, it.Version+1
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Adjust returned (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(got, e.item("MUG")); diff != "" {
			t.Errorf("stored item (-returned +stored):\n%s", diff)
		}
		rows := e.news()
		if diff := cmp.Diff([]string{"StockChanged"}, types(rows)); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}

		// Down to the threshold: StockLow, once.
		e.clock.advance(time.Second)
		got, err = e.s.Adjust(ctx, inventory.Adjust{SKU: "MUG", Delta: -5, Reason: "broken", Actor: "admin-2"})
		if err != nil {
			t.Fatalf("Adjust: %v", err)
		}
		rows = e.news()
		if diff := cmp.Diff([]string{"StockChanged", "StockLow"}, types(rows)); diff != "" {
			t.Errorf("outbox after falling to the threshold (-want +got):\n%s", diff)
		}
		if low := only[inventory.StockLow](t, rows, "inventory.StockLow"); low.Item != got {
			t.Errorf("StockLow item %+v, want %+v", low.Item, got)
		}
		if _, err := e.s.Adjust(ctx, inventory.Adjust{SKU: "MUG", Delta: -1, Reason: "broken", Actor: "admin-2"}); err != nil {
			t.Fatalf("Adjust: %v", err)
		}
		if diff := cmp.Diff([]string{"StockChanged"}, types(e.news())); diff != "" {
			t.Errorf("outbox below the threshold already (-want +got):\n%s", diff)
		}

		// Only the threshold: delta 0 is allowed, and a raised threshold is a crossing.
		mark := int64(20)
		got, err = e.s.Adjust(ctx, inventory.Adjust{SKU: "MUG", SetLowMark: &mark, Reason: "busy season", Actor: "admin-1"})
		if err != nil {
			t.Fatalf("Adjust threshold: %v", err)
		}
		if got.LowMark != 20 || got.OnHand != 4 {
			t.Errorf("after setting the threshold: %+v", got)
		}
		e.news()

		// The audit trail, newest first.
		page, err := e.s.ListAdjustments(ctx, inventory.ListAdjustments{SKU: "MUG"})
		if err != nil {
			t.Fatalf("ListAdjustments: %v", err)
		}
		type adj struct {
			Delta, OnHand int64
			Reason, Actor string
		}
		var trail []adj
		for _, a := range page.Items {
			if a.SKU != "MUG" || a.ID == "" || a.CreatedAt.IsZero() {
				t.Errorf("adjustment %+v lacks its identity", a)
			}
			trail = append(trail, adj{a.Delta, a.OnHand, a.Reason, a.Actor})
		}
		wantTrail := []adj{{0, 4, "busy season", "admin-1"}, {-1, 4, "broken", "admin-2"}, {-5, 5, "broken", "admin-2"}, {10, 10, "received", "admin-1"}}
		if diff := cmp.Diff(wantTrail, trail); diff != "" {
			t.Errorf("adjustments (-want +got):\n%s", diff)
		}
		if page.NextBefore != "" {
			t.Errorf("NextBefore = %q on the only page", page.NextBefore)
		}
	})
}

func TestAdjustFailures(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		ctx := t.Context()
		it := e.product("MUG", 10)
		e.reserve(e.order(line(it, 4))) // 10 on hand, 4 reserved
		it = e.item("MUG")
		e.news()
		neg := int64(-1)
		tooHigh := int64(inventory.MaxOnHand + 1)

		tests := []struct {
			name  string
			a     inventory.Adjust
			want  error
			field string
		}{
			{"zero delta", inventory.Adjust{SKU: "MUG", Reason: "r", Actor: "a"}, inventory.ErrInvalidInput, "delta"},
			{"delta over the maximum", inventory.Adjust{SKU: "MUG", Delta: inventory.MaxAdjustment + 1, Reason: "r", Actor: "a"}, inventory.ErrInvalidInput, "delta"},
			{"delta under the minimum", inventory.Adjust{SKU: "MUG", Delta: -inventory.MaxAdjustment - 1, Reason: "r", Actor: "a"}, inventory.ErrInvalidInput, "delta"},
			{"no reason", inventory.Adjust{SKU: "MUG", Delta: 1, Actor: "a"}, inventory.ErrInvalidInput, "reason"},
			{"blank reason", inventory.Adjust{SKU: "MUG", Delta: 1, Reason: " \n ", Actor: "a"}, inventory.ErrInvalidInput, "reason"},
			{"reason too long", inventory.Adjust{SKU: "MUG", Delta: 1, Reason: strings.Repeat("é", inventory.MaxReasonLen+1), Actor: "a"}, inventory.ErrInvalidInput, "reason"},
			{"reason with a control character", inventory.Adjust{SKU: "MUG", Delta: 1, Reason: "a\x00b", Actor: "a"}, inventory.ErrInvalidInput, "reason"},
			{"no actor", inventory.Adjust{SKU: "MUG", Delta: 1, Reason: "r"}, inventory.ErrInvalidInput, "actor"},
			{"negative threshold", inventory.Adjust{SKU: "MUG", SetLowMark: &neg, Reason: "r", Actor: "a"}, inventory.ErrInvalidInput, "set_low_mark"},
			{"threshold too high", inventory.Adjust{SKU: "MUG", SetLowMark: &tooHigh, Reason: "r", Actor: "a"}, inventory.ErrInvalidInput, "set_low_mark"},
			{"unknown SKU", inventory.Adjust{SKU: "NOPE", Delta: 1, Reason: "r", Actor: "a"}, inventory.ErrItemNotFound, ""},
			{"malformed SKU", inventory.Adjust{SKU: "'; DROP TABLE items; --", Delta: 1, Reason: "r", Actor: "a"}, inventory.ErrItemNotFound, ""},
			{"below what is reserved", inventory.Adjust{SKU: "MUG", Delta: -7, Reason: "r", Actor: "a"}, inventory.ErrBelowReserved, ""},
			{"below zero", inventory.Adjust{SKU: "MUG", Delta: -11, Reason: "r", Actor: "a"}, inventory.ErrBelowReserved, ""},
			{"stale version", inventory.Adjust{SKU: "MUG", Delta: 1, Reason: "r", Actor: "a", ExpectedVersion: it.Version - 1}, inventory.ErrVersionMismatch, ""},
			{"future version", inventory.Adjust{SKU: "MUG", Delta: 1, Reason: "r", Actor: "a", ExpectedVersion: it.Version + 1}, inventory.ErrVersionMismatch, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := e.item("MUG")
				_, err := e.s.Adjust(ctx, tt.a)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Adjust: err = %v, want %v", err, tt.want)
				}
				var be *message.Error
				if !errors.As(err, &be) || be.Field != tt.field {
					t.Errorf("err %v: field %q, want %q", err, be.Field, tt.field)
				}
				if diff := cmp.Diff(before, e.item("MUG")); diff != "" {
					t.Errorf("the failed adjustment changed the item (-before +after):\n%s", diff)
				}
				if rows := e.news(); len(rows) != 0 {
					t.Errorf("the failed adjustment published %v", testdb.OutboxTypes(rows))
				}
			})
		}
		// Exactly at the ceiling is fine, one more is not.
		if _, err := h.DB.ExecContext(ctx, h.DB.Rebind(`UPDATE items SET on_hand = ? WHERE sku = 'MUG'`), inventory.MaxOnHand-5); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Adjust(ctx, inventory.Adjust{SKU: "MUG", Delta: 5, Reason: "r", Actor: "a"}); err != nil {
			t.Fatalf("Adjust to MaxOnHand: %v", err)
		}
		if _, err := e.s.Adjust(ctx, inventory.Adjust{SKU: "MUG", Delta: 1, Reason: "r", Actor: "a"}); !errors.Is(err, inventory.ErrInvalidInput) {
			t.Errorf("Adjust over MaxOnHand: err = %v, want ErrInvalidInput", err)
		}
	})
}

// The database refuses negative numbers and over-reservation even if the code
// did not.
func TestCheckConstraints(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		e.product("MUG", 3)
		for _, stmt := range []string{
			`UPDATE items SET on_hand = -1, reserved = 0 WHERE sku = 'MUG'`,
			`UPDATE items SET reserved = -1 WHERE sku = 'MUG'`,
			`UPDATE items SET reserved = 4 WHERE sku = 'MUG'`,
			`UPDATE items SET low_mark = -1 WHERE sku = 'MUG'`,
		} {
			if _, err := h.DB.ExecContext(t.Context(), stmt); err == nil {
				t.Errorf("%s: accepted", stmt)
			}
		}
		if got := e.numbers("MUG"); got != (numbers{3, 0}) {
			t.Errorf("numbers = %+v, want 3 on hand", got)
		}
	})
}

func TestReads(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		ctx := t.Context()
		var skus []string
		var items []inventory.Item
		for _, i := range []int{5, 1, 4, 2, 3, 7, 6} { // created out of SKU order
			items = append(items, e.product(sku(i), int64(i)))
		}
		for i := 1; i <= 7; i++ {
			skus = append(skus, sku(i))
		}
		for _, limit := range []int{1, 2, 3, 7, 100} {
			got := testdb.CollectPages(t, limit, 10, func(after string, limit int) ([]string, error) {
				page, err := e.s.ListItems(ctx, inventory.ListItems{After: after, Limit: limit})
				var out []string
				for _, it := range page.Items {
					out = append(out, it.SKU)
				}
				if wantNext := len(out) > 0 && out[len(out)-1] != sku(7); (page.NextAfter != "") != wantNext {
					t.Errorf("limit %d after %q: NextAfter %q with %d items", limit, after, page.NextAfter, len(out))
				}
				return out, err
			})
			if diff := cmp.Diff(skus, got); diff != "" {
				t.Errorf("limit %d: skus over all pages (-want +got):\n%s", limit, diff)
			}
		}

		// Availability by product: unknown products left out, SKU order.
		got, err := e.s.GetAvailability(ctx, inventory.GetAvailability{ProductIDs: []string{items[0].ProductID, bus.NewID(), items[1].ProductID}})
		if err != nil {
			t.Fatalf("GetAvailability: %v", err)
		}
		if diff := cmp.Diff([]inventory.Item{items[1], items[0]}, got.Items); diff != "" {
			t.Errorf("GetAvailability (-want +got):\n%s", diff)
		}
		tooMany := make([]string, inventory.MaxLines+1)
		if _, err := e.s.GetAvailability(ctx, inventory.GetAvailability{ProductIDs: tooMany}); !errors.Is(err, inventory.ErrInvalidInput) {
			t.Errorf("GetAvailability of too many: err = %v, want ErrInvalidInput", err)
		}
		if got, err := e.s.GetAvailability(ctx, inventory.GetAvailability{}); err != nil || got.Items == nil || len(got.Items) != 0 {
			t.Errorf("GetAvailability of none: %+v, %v; want an empty list", got, err)
		}

		// Adjustments page, newest first.
		for i := range 4 {
			if _, err := e.s.Adjust(ctx, inventory.Adjust{SKU: sku(1), Delta: int64(i + 1), Reason: "r", Actor: "a"}); err != nil {
				t.Fatalf("Adjust: %v", err)
			}
		}
		all, err := e.s.ListAdjustments(ctx, inventory.ListAdjustments{SKU: sku(1)})
		if err != nil || len(all.Items) != 5 {
			t.Fatalf("ListAdjustments: %d items, %v; want 5", len(all.Items), err)
		}
		var want []string
		for _, a := range all.Items {
			want = append(want, a.ID)
		}
		paged := testdb.CollectPages(t, 2, 10, func(before string, limit int) ([]string, error) {
			page, err := e.s.ListAdjustments(ctx, inventory.ListAdjustments{SKU: sku(1), Before: before, Limit: limit})
			var out []string
			for _, a := range page.Items {
				out = append(out, a.ID)
			}
			return out, err
		})
		if diff := cmp.Diff(want, paged); diff != "" {
			t.Errorf("adjustments by pages (-want +got):\n%s", diff)
		}
		for i := 1; i < len(all.Items); i++ {
			if all.Items[i].ID >= all.Items[i-1].ID {
				t.Errorf("adjustments not newest first: %s after %s", all.Items[i].ID, all.Items[i-1].ID)
			}
		}
		if _, err := e.s.ListAdjustments(ctx, inventory.ListAdjustments{SKU: "NOPE"}); !errors.Is(err, inventory.ErrItemNotFound) {
			t.Errorf("ListAdjustments of an unknown SKU: err = %v, want ErrItemNotFound", err)
		}
		if _, err := e.s.GetItem(ctx, inventory.GetItem{SKU: "NOPE"}); !errors.Is(err, inventory.ErrItemNotFound) {
			t.Errorf("GetItem of an unknown SKU: err = %v, want ErrItemNotFound", err)
		}
	})
}
