package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi/apitest"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/notifications/internal/api"
	"github.com/agora-commerce/agora/modules/notifications/internal/notices"
	"github.com/agora-commerce/agora/modules/orders"
)

const (
	ada   = "0190a8b2-0000-7000-8000-00000000ada1"
	grace = "0190a8b2-0000-7000-8000-00000000a2ce"
	admin = "0190a8b2-0000-7000-8000-00000000ad01"
)

type server struct {
	*apitest.Server
	bus *bus.Bus
}

func newServer(t *testing.T) *server {
	t.Helper()
	db := testdb.Open(t, testdb.SQLite, "notifications", func(ctx context.Context, db *store.DB) error {
		return modhost.MigrateDB(ctx, db, testdb.Logger())
	})
	svc := notices.NewService(db, nil)
	b, err := bus.New(apitest.Logger(), bus.Limits{}, nil, svc.Handlers(), svc.Subscriptions())
	if err != nil {
		t.Fatal(err)
	}
	return &server{Server: apitest.New(t, api.Routes(b)), bus: b}
}

// confirm makes a notification for customer by delivering an OrderConfirmed.
func (s *server) confirm(t *testing.T, customer string) string {
	t.Helper()
	o := orders.Order{ID: bus.NewID(), CustomerID: customer, Status: orders.StatusConfirmed, Total: orders.Money{Amount: 100, Currency: "EUR"}}
	env, err := bus.Seal(t.Context(), orders.OrderConfirmedEvent.With(orders.OrderConfirmed{Order: o}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.bus.Deliver(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	return o.ID
}

// get lists path as the holder of tok.
func (s *server) get(t *testing.T, path, tok string) *httptest.ResponseRecorder {
	t.Helper()
	return s.Do(t, apitest.Request{Method: http.MethodGet, Path: path, Token: tok})
}

func TestListNeedsAValidToken(t *testing.T) {
	s := newServer(t)
	s.confirm(t, ada)
	for name, tok := range map[string]string{
		"none":    "",
		"wrong":   "nope",
		"expired": apitest.ExpiredToken(ada, "customer"),
	} {
		w := s.get(t, "/v1/notifications", tok)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s token: status %d, want 401", name, w.Code)
		}
		if strings.Contains(w.Body.String(), "confirmed") {
			t.Errorf("%s token: the answer shows a notification: %s", name, w.Body.String())
		}
	}
}

// TestListShowsOnlyTheCallersOwn: each customer — and an admin too — sees only the
// notifications addressed to them.
func TestListShowsOnlyTheCallersOwn(t *testing.T) {
	s := newServer(t)
	adaOrder := s.confirm(t, ada)
	graceOrder := s.confirm(t, grace)
	for _, tt := range []struct {
		who, role string
		want      []string
	}{
		{ada, "customer", []string{adaOrder}},
		{grace, "customer", []string{graceOrder}},
		{admin, "admin", nil},
	} {
		w := s.get(t, "/v1/notifications", apitest.Token(tt.who, tt.role))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		body := apitest.Decode[api.NotificationList](t, w)
		var got []string
		for _, n := range body.Items {
			got = append(got, n.OrderID)
			if n.CustomerID != tt.who {
				t.Errorf("%s sees a notification of %s", tt.who, n.CustomerID)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s's notifications (-want +got):\n%s", tt.who, diff)
		}
		if body.Items == nil {
			t.Errorf("%s: items is null, want a list", tt.who)
		}
	}
}

// TestListPages follows next_cursor and the Link header from page to page.
func TestListPages(t *testing.T) {
	s := newServer(t)
	var want []string
	for range 5 {
		want = append([]string{s.confirm(t, ada)}, want...)
	}
	s.confirm(t, grace)
	tok := apitest.Token(ada, "customer")
	var got []string
	path := "/v1/notifications?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		w := s.get(t, path, tok)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", path, w.Code, w.Body.String())
		}
		body := apitest.Decode[api.NotificationList](t, w)
		for _, n := range body.Items {
			got = append(got, n.OrderID)
		}
		link := w.Header().Get("Link")
		if (link == "") != (body.NextCursor == "") {
			t.Fatalf("Link %q with next_cursor %q", link, body.NextCursor)
		}
		path = ""
		if link != "" {
			target, ok := strings.CutSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			u, err := url.Parse(target)
			if !ok || err != nil || u.Path != "/v1/notifications" || u.Query().Get("cursor") != body.NextCursor || u.Query().Get("limit") != "2" {
				t.Fatalf("Link = %q", link)
			}
			path = target
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order ids across pages (-want +got):\n%s", diff)
	}
}

func TestListRejectsBadQueries(t *testing.T) {
	s := newServer(t)
	tok := apitest.Token(ada, "customer")
	for _, path := range []string{
		"/v1/notifications?limit=0",
		"/v1/notifications?limit=101",
		"/v1/notifications?cursor=not-a-cursor",
		"/v1/notifications?cursor=" + strings.Repeat("A", 201),
	} {
		if w := s.get(t, path, tok); w.Code != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422: %s", path, w.Code, w.Body.String())
		}
	}
}
