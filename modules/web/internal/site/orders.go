package site

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/notifications"
	"github.com/agora-commerce/agora/modules/orders"
)

// listPage is a page of a customer's orders or notifications.
type listPage[T any] struct {
	Title string
	Items []T
	Next  string // the cursor of the next page; empty on the last
}

func (p listPage[T]) PageTitle() string { return p.Title }

func (s *Site) orders(w http.ResponseWriter, r *http.Request, v *visit) error {
	page, err := bus.Call(r.Context(), s.bus, orders.ListOrdersRequest, orders.ListOrders{
		CustomerID: v.who.UserID, Before: bounded(r.URL.Query().Get("before"), 64), Limit: 20})
	if err != nil {
		return err
	}
	s.render(w, r, v, http.StatusOK, "orders", listPage[orders.Order]{Title: "Your orders", Items: page.Items, Next: page.NextBefore})
	return nil
}

func (s *Site) notifications(w http.ResponseWriter, r *http.Request, v *visit) error {
	page, err := bus.Call(r.Context(), s.bus, notifications.ListNotificationsRequest, notifications.ListNotifications{
		CustomerID: v.who.UserID, Before: bounded(r.URL.Query().Get("before"), 64), Limit: 20})
	if err != nil {
		return err
	}
	s.render(w, r, v, http.StatusOK, "notifications", listPage[notifications.Notification]{
		Title: "Notifications", Items: page.Items, Next: page.NextBefore})
	return nil
}

// orderView is an order as its page shows it.
type orderView struct {
	Order orders.Order
}

func (o orderView) PageTitle() string { return "Order " + o.Order.ID[:8] }

// Settled reports whether the order will not change any more in a way its
// customer waits for: rejected, or cancelled and refunded in full. A cancelled
// order whose payment was never taken is followed a while longer (see orderLive).
func (o orderView) Settled() bool {
	switch o.Order.Status {
	case orders.StatusRejected:
		return true
	case orders.StatusCancelled:
		return o.Order.Refunded >= o.Order.Total.Amount
	}
	return false
}

// Cancellable reports whether the page offers to cancel the order.
func (o orderView) Cancellable() bool {
	return o.Order.Status == orders.StatusPending || o.Order.Status == orders.StatusConfirmed
}

// ownOrder returns the order id names if v may see it: its customer or an
// admin. Anyone else gets exactly the answer for an order that does not exist.
func (s *Site) ownOrder(ctx context.Context, v *visit, id string) (orders.Order, error) {
	o, err := bus.Call(ctx, s.bus, orders.GetOrderRequest, orders.GetOrder{ID: id})
	if err != nil {
		return orders.Order{}, err
	}
	if o.CustomerID != v.who.UserID && v.who.Role != identity.RoleAdmin {
		return orders.Order{}, orders.ErrOrderNotFound
	}
	return o, nil
}

func (s *Site) order(w http.ResponseWriter, r *http.Request, v *visit) error {
	o, err := s.ownOrder(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.render(w, r, v, http.StatusOK, "order", orderView{Order: o})
	return nil
}

// cancelOrder cancels the order: a pending one is compensated, a confirmed one
// refunded in full and restocked (the order page follows the refund live).
func (s *Site) cancelOrder(w http.ResponseWriter, r *http.Request, v *visit) error {
	o, err := s.ownOrder(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	reason := ""
	if v.who.Role == identity.RoleAdmin && o.CustomerID != v.who.UserID {
		reason = "cancelled by the shop"
	}
	if _, err := bus.Call(r.Context(), s.bus, orders.CancelOrderRequest,
		orders.CancelOrder{ID: o.ID, Actor: v.who.UserID, Reason: reason}); err != nil {
		return err
	}
	http.Redirect(w, r, "/orders/"+o.ID, http.StatusSeeOther)
	return nil
}

// orderLive streams the order's status panel as server-sent events: an event
// "status" whose data is the panel's HTML, first as the order is (unless the
// browser already shows that version, see renderedVersion), then after each change,
// waiting through orders' WaitOrder long poll. It ends when the order is settled,
// at the request's deadline or after streamFor; the browser reconnects.
func (s *Site) orderLive(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	o, err := s.ownOrder(ctx, v, r.PathValue("id"))
	if err != nil {
		return err
	}
	ev := startEvents(w)
	seen := renderedVersion(r)
	until := time.Now().Add(s.streamFor)
	for {
		if o.Version > seen {
			if err := ev.send("status", strconv.FormatInt(o.Version, 10), s.fragment("order", "status", orderView{Order: o})); err != nil {
				return nil
			}
			seen = o.Version
		}
		if (orderView{Order: o}).Settled() || time.Now().After(until) {
			_ = ev.send("end", "", "")
			return nil
		}
		next, err := bus.Call(ctx, s.bus, orders.WaitOrderRequest, orders.WaitOrder{ID: o.ID, AfterVersion: o.Version, Wait: waitFor(ctx)})
		if err != nil || ctx.Err() != nil {
			return nil // the deadline, or orders is out of reach: the browser reconnects
		}
		if next.Version <= o.Version {
			if ev.comment() != nil {
				return nil
			}
			continue
		}
		o = next
	}
}

// renderedVersion is the version of the order the browser already shows: the
// page's (?after=, from the page that opened the stream) or, when the stream
// reconnects, the last event's (Last-Event-ID), whichever is newer.
func renderedVersion(r *http.Request) int64 {
	page, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	return max(page, last, 0)
}

// waitFor is how long one long poll may wait: up to 20 s, and ending a second
// before the request's deadline so the stream closes cleanly.
func waitFor(ctx context.Context) time.Duration {
	wait := 20 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d)-time.Second)
	}
	return max(wait, 0)
}

// fragment renders one named template of a page on its own (an SSE update).
func (s *Site) fragment(page, name string, data any) string {
	var buf bytes.Buffer
	if err := s.pages.byName[page].ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("web: rendering a fragment", "page", page, "fragment", name, "err", err)
		return ""
	}
	return buf.String()
}

// events writes server-sent events.
type events struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startEvents answers with an event stream (never cached; the browser retries
// one second after it ends).
func startEvents(w http.ResponseWriter) *events {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 1000\n\n")
	e := &events{w: w, rc: http.NewResponseController(w)}
	_ = e.rc.Flush()
	return e
}

// send writes one event; data may span lines.
func (e *events) send(name, id, data string) error {
	var b strings.Builder
	b.WriteString("event: " + name + "\n")
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	for line := range strings.SplitSeq(data, "\n") {
		b.WriteString("data: " + strings.TrimRight(line, "\r") + "\n")
	}
	b.WriteString("\n")
	if _, err := e.w.Write([]byte(b.String())); err != nil {
		return err
	}
	return e.rc.Flush()
}

// comment keeps an idle stream open through proxies.
func (e *events) comment() error {
	if _, err := fmt.Fprint(e.w, ": waiting\n\n"); err != nil {
		return err
	}
	return e.rc.Flush()
}

// poll streams the event name: the HTML render returns, looked at every period
// and sent when it changed (a comment otherwise keeps the stream open), until
// the request ends or after streamFor; the browser reconnects. A render that
// fails (ok false) sends nothing that time.
func (s *Site) poll(ctx context.Context, ev *events, every time.Duration, name string, render func() (html string, ok bool)) {
	until := time.Now().Add(s.streamFor)
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := ""
	for {
		if html, ok := render(); ok && html != last {
			if ev.send(name, "", html) != nil {
				return
			}
			last = html
		} else if ev.comment() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Now().After(until) {
			return
		}
	}
}
