package notices_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/notifications"
	"github.com/agora-commerce/agora/modules/notifications/internal/notices"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/payments"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

const (
	ada   = "0190a8b2-0000-7000-8000-00000000ada1"
	grace = "0190a8b2-0000-7000-8000-00000000a2ce"
)

// sqliteDB returns a fresh, migrated notifications database on SQLite, for tests
// of what does not depend on the back end.
func sqliteDB(t *testing.T) *store.DB {
	return testdb.Open(t, testdb.SQLite, "notifications", func(ctx context.Context, db *store.DB) error {
		return modhost.MigrateDB(ctx, db, testdb.Logger())
	})
}

// newBus returns a bus that delivers to svc's subscriptions and serves its
// requests, plus extra handlers (a stand-in for identity, say).
func newBus(t *testing.T, svc *notices.Service, extra ...bus.RequestHandler) *bus.Bus {
	t.Helper()
	b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, append(svc.Handlers(), extra...), svc.Subscriptions())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish delivers an event the way the relay does, under a given message id.
func publish(t *testing.T, b *bus.Bus, out message.Outgoing, id string) {
	t.Helper()
	env, err := bus.Seal(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	env.ID = id
	if err := b.Deliver(t.Context(), env); err != nil {
		t.Fatalf("deliver %s: %v", out.Type, err)
	}
}

func order(id, customer string, status orders.Status, reason string) orders.Order {
	return orders.Order{ID: id, CustomerID: customer, Status: status, Reason: reason,
		Lines: []orders.OrderLine{
			{ProductID: bus.NewID(), SKU: "TEE-M", Name: "Tee", UnitPrice: orders.Money{Amount: 1500, Currency: "EUR"}, Quantity: 2,
				LineTotal: orders.Money{Amount: 3000, Currency: "EUR"}},
			{ProductID: bus.NewID(), SKU: "MUG", Name: "Mug", UnitPrice: orders.Money{Amount: 123450, Currency: "EUR"}, Quantity: 1,
				LineTotal: orders.Money{Amount: 123450, Currency: "EUR"}},
		},
		Total: orders.Money{Amount: 126450, Currency: "EUR"}}
}

func list(t *testing.T, b *bus.Bus, customer string) []notifications.Notification {
	t.Helper()
	page, err := bus.Call(t.Context(), b, notifications.ListNotificationsRequest, notifications.ListNotifications{CustomerID: customer, Limit: notifications.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// TestEachEventMakesOneNotification delivers every event the module listens to
// three times — twice under one message id (a redelivery) and once under a new one
// (a re-publication) — and expects exactly one notification for each, saying what
// happened in words.
func TestEachEventMakesOneNotification(t *testing.T) {
	orderID := "0190a8b2-0000-7000-8000-0000abcd1234"
	events := []struct {
		name      string
		event     func() message.Outgoing
		kind      string
		title     string
		bodyParts []string
	}{
		{"confirmed", func() message.Outgoing {
			return orders.OrderConfirmedEvent.With(orders.OrderConfirmed{Order: order(orderID, ada, orders.StatusConfirmed, "")})
		}, notices.KindOrderConfirmed, "Order #ABCD1234 is confirmed",
			[]string{"#ABCD1234", "3 items", "EUR 1,264.50"}},
		{"rejected", func() message.Outgoing {
			return orders.OrderRejectedEvent.With(orders.OrderRejected{Order: order(orderID, ada, orders.StatusRejected, "the card was declined")})
		}, notices.KindOrderRejected, "Order #ABCD1234 could not be completed",
			[]string{"#ABCD1234", "EUR 1,264.50", ": the card was declined.", "No payment has been taken."}},
		{"cancelled", func() message.Outgoing {
			return orders.OrderCancelledEvent.With(orders.OrderCancelled{Order: order(orderID, ada, orders.StatusCancelled, "changed my mind"), Refunded: true})
		}, notices.KindOrderCancelled, "Order #ABCD1234 is cancelled",
			[]string{"#ABCD1234", "EUR 1,264.50", ": changed my mind.", "being refunded"}},
		{"refund", func() message.Outgoing {
			return payments.RefundIssuedEvent.With(payments.RefundIssued{PayableID: orderID, CustomerID: ada, RefundID: "r-1",
				Amount: payments.Money{Amount: 500, Currency: "EUR"}, TotalRefunded: 1500, Reason: "a goodwill gesture"})
		}, notices.KindRefundIssued, "Refund of EUR 5.00 for order #ABCD1234",
			[]string{"refunded EUR 5.00", "#ABCD1234", ": a goodwill gesture.", "In all, EUR 15.00 has been refunded"}},
	}
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		for _, ev := range events {
			t.Run(ev.name, func(t *testing.T) {
				svc := notices.NewService(h.DB, nil)
				b := newBus(t, svc)
				id := bus.NewID()
				publish(t, b, ev.event(), id)
				publish(t, b, ev.event(), id)          // redelivered
				publish(t, b, ev.event(), bus.NewID()) // re-published
				var got []notifications.Notification
				for _, n := range list(t, b, ada) {
					if n.Kind == ev.kind {
						got = append(got, n)
					}
				}
				if len(got) != 1 {
					t.Fatalf("%d %s notifications, want 1: %+v", len(got), ev.kind, got)
				}
				n := got[0]
				if n.CustomerID != ada || n.OrderID != orderID || n.Title != ev.title || n.Email != notices.EmailNone {
					t.Errorf("notification = %+v", n)
				}
				for _, part := range ev.bodyParts {
					if !strings.Contains(n.Body, part) {
						t.Errorf("body %q lacks %q", n.Body, part)
					}
				}
				if time.Since(n.CreatedAt) > time.Minute || n.CreatedAt.Location() != time.UTC {
					t.Errorf("created_at = %v", n.CreatedAt)
				}
			})
		}
	})
}

// TestRefundsAreNotifiedOncePerRefund: two refunds of one order are two
// notifications; a refund re-published is not a third.
func TestRefundsAreNotifiedOncePerRefund(t *testing.T) {
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		b := newBus(t, notices.NewService(h.DB, nil))
		orderID := bus.NewID()
		refund := func(refundID string) message.Outgoing {
			return payments.RefundIssuedEvent.With(payments.RefundIssued{PayableID: orderID, CustomerID: ada, RefundID: refundID,
				Amount: payments.Money{Amount: 100, Currency: "EUR"}})
		}
		publish(t, b, refund("r-1"), bus.NewID())
		publish(t, b, refund("r-2"), bus.NewID())
		publish(t, b, refund("r-1"), bus.NewID())
		if got := list(t, b, ada); len(got) != 2 {
			t.Fatalf("%d notifications, want 2", len(got))
		}
	})
}

// TestMalformedEventIsRefused: an event that names no customer fails (so the relay
// retries it and parks it as a dead letter) and stores nothing.
func TestMalformedEventIsRefused(t *testing.T) {
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		b := newBus(t, notices.NewService(h.DB, nil))
		env, err := bus.Seal(t.Context(), orders.OrderConfirmedEvent.With(orders.OrderConfirmed{Order: order(bus.NewID(), "", orders.StatusConfirmed, "")}))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Deliver(t.Context(), env); !errors.Is(err, message.ErrInvalidMessage) {
			t.Fatalf("Deliver = %v, want ErrInvalidMessage", err)
		}
		var n int
		if err := h.DB.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM notifications`); err != nil || n != 0 {
			t.Fatalf("%d notifications stored (%v)", n, err)
		}
	})
}

// TestListPagesNewestFirst walks a customer's notifications by pages and checks
// they come newest first, all of them, and none of another customer's.
func TestListPagesNewestFirst(t *testing.T) {
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		b := newBus(t, notices.NewService(h.DB, nil))
		var want []string
		for i := range 7 {
			o := order(bus.NewID(), ada, orders.StatusConfirmed, "")
			publish(t, b, orders.OrderConfirmedEvent.With(orders.OrderConfirmed{Order: o}), bus.NewID())
			if i%3 == 0 {
				other := order(bus.NewID(), grace, orders.StatusConfirmed, "")
				publish(t, b, orders.OrderConfirmedEvent.With(orders.OrderConfirmed{Order: other}), bus.NewID())
			}
			want = append([]string{o.ID}, want...)
		}
		byOrder := func(limit int) []string {
			ids := testdb.CollectPages(t, limit, 20, func(before string, limit int) ([]string, error) {
				page, err := bus.Call(t.Context(), b, notifications.ListNotificationsRequest,
					notifications.ListNotifications{CustomerID: ada, Before: before, Limit: limit})

				var out []string
				for _, n := range page.Items {
					out = append(out, n.ID)
				}
				switch {
				case len(page.Items) < limit && page.NextBefore != "":
					t.Errorf("the last page has next_before %q", page.NextBefore)
				case page.NextBefore != "" && page.NextBefore != page.Items[len(page.Items)-1].ID:
					t.Errorf("next_before = %q, want the page's last id", page.NextBefore)
				}
				return out, err
			})
			orders := make([]string, len(ids))
			for i, id := range ids {
				for _, n := range list(t, b, ada) {
					if n.ID == id {
						orders[i] = n.OrderID
					}
				}
			}
			return orders
		}
		for _, limit := range []int{1, 3, 7, 100} {
			if diff := cmp.Diff(want, byOrder(limit)); diff != "" {
				t.Errorf("limit %d: order ids (-want +got):\n%s", limit, diff)
			}
		}
		if got := list(t, b, grace); len(got) != 3 {
			t.Errorf("grace has %d notifications, want 3", len(got))
		}
	})
}

func TestListRejectsBadInput(t *testing.T) {
	b := newBus(t, notices.NewService(sqliteDB(t), nil))
	for _, q := range []notifications.ListNotifications{
		{},
		{CustomerID: strings.Repeat("x", 65)},
		{CustomerID: ada, Before: "not-an-id"},
	} {
		if _, err := bus.Call(t.Context(), b, notifications.ListNotificationsRequest, q); !errors.Is(err, notifications.ErrInvalidInput) {
			t.Errorf("List(%+v) = %v, want ErrInvalidInput", q, err)
		}
	}
}

func TestShortID(t *testing.T) {
	// Two UUIDv7 made in one millisecond share their head, never (in practice) their tail.
	a, b := bus.NewID(), bus.NewID()
	if notices.ShortID(a) == notices.ShortID(b) {
		t.Errorf("ShortID(%s) = ShortID(%s) = %s", a, b, notices.ShortID(a))
	}
	if got := notices.ShortID("0190a8b2-0000-7000-8000-0000abcd1234"); got != "#ABCD1234" {
		t.Errorf("ShortID = %q", got)
	}
}

// TestReasonsAreCleaned: a reason from another module reaches the customer on one
// line, without control characters, and bounded.
func TestReasonsAreCleaned(t *testing.T) {
	b := newBus(t, notices.NewService(sqliteDB(t), nil))
	reason := "out of\r\nstock\x00\x07 " + strings.Repeat("é", 1000)
	publish(t, b, orders.OrderRejectedEvent.With(orders.OrderRejected{Order: order(bus.NewID(), ada, orders.StatusRejected, reason)}), bus.NewID())
	body := list(t, b, ada)[0].Body
	if strings.ContainsAny(body, "\r\n\x00\x07") || !strings.Contains(body, ": out of stock é") || len([]rune(body)) > 450 {
		t.Errorf("body = %q", body)
	}
}
