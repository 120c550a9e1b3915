package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi/apitest"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/inventory/internal/api"
	"github.com/agora-commerce/agora/modules/inventory/internal/stock"
)

const adminID = "0190a8b2-0000-7000-8000-00000000ad01"

var (
	adminToken    = apitest.Token(adminID, "admin")
	customerToken = apitest.Token("0190a8b2-0000-7000-8000-00000000c001", "customer")
	expiredToken  = apitest.ExpiredToken(adminID, "admin")
)

// req is one request to the server.
type req = apitest.Request

// server is the inventory behind the real HTTP edge and bus, on its own database.
type server struct {
	*apitest.Server
	host *modhost.Host
	svc  *stock.Service
	bus  *bus.Bus
}

func newServer(t *testing.T) *server {
	t.Helper()
	log := apitest.Logger()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	h, err := modhost.Open(t.Context(), cfg, "inventory", log)
	if err != nil {
		t.Fatalf("modhost.Open: %v", err)
	}
	t.Cleanup(func() { _ = h.DB.Close() })
	svc := stock.NewService(h.DB, h.Outbox, log)
	b, err := bus.New(log, bus.Limits{}, nil, svc.Handlers(), svc.Subscriptions())
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	return &server{Server: apitest.New(t, api.Routes(b)), host: h, svc: svc, bus: b}
}

// item makes inventory learn a product, as catalog.ProductCreated does, and
// stocks it with onHand units.
func (s *server) item(t *testing.T, sku string, onHand int64) inventory.Item {
	t.Helper()
	ctx := context.Background()
	env, err := bus.NewEnvelope(ctx, message.KindEvent, catalog.ProductCreatedEvent.Name(),
		catalog.ProductCreated{Product: catalog.Product{ID: bus.NewID(), SKU: sku}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.bus.Deliver(ctx, env); err != nil {
		t.Fatalf("deliver ProductCreated: %v", err)
	}
	if onHand == 0 {
		it, err := s.svc.GetItem(ctx, inventory.GetItem{SKU: sku})
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	it, err := s.svc.Adjust(ctx, inventory.Adjust{SKU: sku, Delta: onHand, Reason: "received", Actor: "test"})
	if err != nil {
		t.Fatalf("Adjust: %v", err)
	}
	return it
}

// state is everything a failed request must leave as it was.
type state struct {
	Items  []inventory.Item
	Outbox int
}

func (s *server) state(t *testing.T) state {
	t.Helper()
	page, err := s.svc.ListItems(t.Context(), inventory.ListItems{})
	if err != nil {
		t.Fatalf("ListItems: %v", err)
	}
	var n int
	if err := s.host.DB.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM outbox`); err != nil {
		t.Fatalf("count outbox: %v", err)
	}
	return state{Items: page.Items, Outbox: n}
}

func cursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestErrors(t *testing.T) {
	s := newServer(t)
	mug := s.item(t, "MUG", 10)
	// Hold 4 of the 10 for an order.
	env, _ := bus.NewEnvelope(t.Context(), message.KindCommand, inventory.ReserveStockCommand.Name(), inventory.ReserveStock{
		OrderID: bus.NewID(), Lines: []inventory.Line{{ProductID: mug.ProductID, Quantity: 4}}, ExpiresAt: time.Now().Add(time.Hour)})
	if err := s.bus.Deliver(t.Context(), env); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	mug, _ = s.svc.GetItem(t.Context(), inventory.GetItem{SKU: "MUG"})
	current := fmt.Sprintf(`"%d"`, mug.Version)
	adj := "/v1/inventory/MUG/adjustments"
	ok := map[string]any{"delta": 1, "reason": "received"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{"delta": 1, "reason": "received"}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}

	tests := []struct {
		name     string
		r        req
		status   int
		typ      string
		location string
	}{
		// Admins only, every route.
		{"list without token", req{Method: "GET", Path: "/v1/inventory"}, 401, "", ""},
		{"list as customer", req{Method: "GET", Path: "/v1/inventory", Token: customerToken}, 403, "", ""},
		{"list with expired token", req{Method: "GET", Path: "/v1/inventory", Token: expiredToken}, 401, "", ""},
		{"get without token", req{Method: "GET", Path: "/v1/inventory/MUG"}, 401, "", ""},
		{"get as customer", req{Method: "GET", Path: "/v1/inventory/MUG", Token: customerToken}, 403, "", ""},
		{"get with wrong token", req{Method: "GET", Path: "/v1/inventory/MUG", Header: map[string]string{"Authorization": "Bearer nope"}}, 401, "", ""},
		{"adjust without token", req{Method: "POST", Path: adj, Body: ok}, 401, "", ""},
		{"adjust as customer", req{Method: "POST", Path: adj, Body: ok, Token: customerToken}, 403, "", ""},
		{"adjustments without token", req{Method: "GET", Path: adj}, 401, "", ""},
		{"adjustments as customer", req{Method: "GET", Path: adj, Token: customerToken}, 403, "", ""},

		// Reads.
		{"get unknown SKU", req{Method: "GET", Path: "/v1/inventory/NOPE", Token: adminToken}, 404, "urn:agora:problem:inventory.item_not_found", ""},
		{"get bad SKU", req{Method: "GET", Path: "/v1/inventory/mug", Token: adminToken}, 422, "", "path.sku"},
		{"get SKU too long", req{Method: "GET", Path: "/v1/inventory/" + strings.Repeat("A", 65), Token: adminToken}, 422, "", "path.sku"},
		{"list limit 0", req{Method: "GET", Path: "/v1/inventory?limit=0", Token: adminToken}, 422, "", "query.limit"},
		{"list limit 101", req{Method: "GET", Path: "/v1/inventory?limit=101", Token: adminToken}, 422, "", "query.limit"},
		{"list cursor not base64", req{Method: "GET", Path: "/v1/inventory?cursor=!!!", Token: adminToken}, 422, "", "query.cursor"},
		{"list cursor without prefix", req{Method: "GET", Path: "/v1/inventory?cursor=" + cursor("MUG"), Token: adminToken}, 422, "", "query.cursor"},
		{"list cursor of adjustments", req{Method: "GET", Path: "/v1/inventory?cursor=" + cursor("a1."+bus.NewID()), Token: adminToken}, 422, "", "query.cursor"},
		{"list cursor with an injection", req{Method: "GET", Path: "/v1/inventory?cursor=" + cursor("i1.' OR 1=1 --"), Token: adminToken}, 422, "", "query.cursor"},
		{"adjustments of unknown SKU", req{Method: "GET", Path: "/v1/inventory/NOPE/adjustments", Token: adminToken}, 404, "urn:agora:problem:inventory.item_not_found", ""},
		{"adjustments cursor not an id", req{Method: "GET", Path: adj + "?cursor=" + cursor("a1.MUG"), Token: adminToken}, 422, "", "query.cursor"},
		{"adjustments limit 101", req{Method: "GET", Path: adj + "?limit=101", Token: adminToken}, 422, "", "query.limit"},

		// Adjust.
		{"adjust unknown SKU", req{Method: "POST", Path: "/v1/inventory/NOPE/adjustments", Body: ok, Token: adminToken}, 404, "urn:agora:problem:inventory.item_not_found", ""},
		{"adjust bad SKU", req{Method: "POST", Path: "/v1/inventory/x%20y/adjustments", Body: ok, Token: adminToken}, 422, "", "path.sku"},
		{"adjust zero", req{Method: "POST", Path: adj, Body: with("delta", 0), Token: adminToken}, 422, "urn:agora:problem:inventory.invalid_input", "body.delta"},
		{"adjust without delta", req{Method: "POST", Path: adj, Body: with("delta", nil), Token: adminToken}, 422, "", "body"},
		{"adjust over the maximum", req{Method: "POST", Path: adj, Body: with("delta", inventory.MaxAdjustment+1), Token: adminToken}, 422, "", "body.delta"},
		{"adjust under the minimum", req{Method: "POST", Path: adj, Body: with("delta", -inventory.MaxAdjustment-1), Token: adminToken}, 422, "", "body.delta"},
		{"adjust fractional", req{Method: "POST", Path: adj, Body: with("delta", 1.5), Token: adminToken}, 422, "", "body.delta"},
		{"adjust without reason", req{Method: "POST", Path: adj, Body: with("reason", nil), Token: adminToken}, 422, "", "body"},
		{"adjust empty reason", req{Method: "POST", Path: adj, Body: with("reason", ""), Token: adminToken}, 422, "", "body.reason"},
		{"adjust blank reason", req{Method: "POST", Path: adj, Body: with("reason", "   "), Token: adminToken}, 422, "urn:agora:problem:inventory.invalid_input", "body.reason"},
		{"adjust reason too long", req{Method: "POST", Path: adj, Body: with("reason", strings.Repeat("x", inventory.MaxReasonLen+1)), Token: adminToken}, 422, "", "body.reason"},
		{"adjust negative threshold", req{Method: "POST", Path: adj, Body: with("low_stock_threshold", -1), Token: adminToken}, 422, "", "body.low_stock_threshold"},
		{"adjust unknown field", req{Method: "POST", Path: adj, Body: with("actor", "someone else"), Token: adminToken}, 422, "", "body.actor"},
		{"adjust malformed JSON", req{Method: "POST", Path: adj, Body: `{"delta":`, Token: adminToken}, 400, "", ""},
		{"adjust below reserved", req{Method: "POST", Path: adj, Body: with("delta", -7), Token: adminToken}, 409, "urn:agora:problem:inventory.below_reserved", ""},
		{"adjust stale If-Match", req{Method: "POST", Path: adj, Body: ok, Token: adminToken, Header: map[string]string{"If-Match": `"1"`}}, 412, "urn:agora:problem:inventory.version_mismatch", ""},
		{"adjust garbage If-Match", req{Method: "POST", Path: adj, Body: ok, Token: adminToken, Header: map[string]string{"If-Match": "v3"}}, 412, "", "header.If-Match"},
		{"adjust weak If-Match", req{Method: "POST", Path: adj, Body: ok, Token: adminToken, Header: map[string]string{"If-Match": "W/" + current}}, 412, "", "header.If-Match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.state(t)
			w := s.Do(t, tt.r)
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d; body %s", w.Code, tt.status, w.Body.String())
			}
			if w.Code >= 500 {
				t.Fatalf("a client error answered %d", w.Code)
			}
			prob := apitest.Problem(t, w)
			if tt.typ != "" && prob.Type != tt.typ {
				t.Errorf("problem type = %q, want %q", prob.Type, tt.typ)
			}
			if tt.location != "" && !slices.ContainsFunc(prob.Errors, func(d *huma.ErrorDetail) bool { return d.Location == tt.location }) {
				t.Errorf("problem errors do not name %s: %s", tt.location, w.Body.String())
			}
			if diff := cmp.Diff(before, s.state(t)); diff != "" {
				t.Errorf("the failed request changed state (-before +after):\n%s", diff)
			}
		})
	}
}

func TestGetAndAdjust(t *testing.T) {
	s := newServer(t)
	mug := s.item(t, "MUG", 0)
	path := "/v1/inventory/MUG"

	w := s.Do(t, req{Method: "GET", Path: path, Token: adminToken})
	if w.Code != http.StatusOK {
		t.Fatalf("get: status %d, body %s", w.Code, w.Body.String())
	}
	if diff := cmp.Diff(mug, apitest.Decode[inventory.Item](t, w)); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}
	if got := w.Header().Get("ETag"); got != `"1"` {
		t.Errorf("ETag = %q, want \"1\"", got)
	}
	if w = s.Do(t, req{Method: "GET", Path: path, Token: adminToken, Header: map[string]string{"If-None-Match": `"1"`}}); w.Code != http.StatusNotModified {
		t.Errorf("get with the current ETag: status %d, want 304", w.Code)
	}

	// Adjust at the current version, and set the threshold.
	w = s.Do(t, req{Method: "POST", Path: path + "/adjustments", Token: adminToken, Header: map[string]string{"If-Match": `"1"`},
		Body: `{"delta": 25, "reason": "received from supplier", "low_stock_threshold": 3}`})
	if w.Code != http.StatusOK {
		t.Fatalf("adjust: status %d, body %s", w.Code, w.Body.String())
	}
	got := apitest.Decode[inventory.Item](t, w)
	want := mug
	want.OnHand, want.Available, want.LowMark, want.Version, want.UpdatedAt = 25, 25, 3, 2, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("adjusted item (-want +got):\n%s", diff)
	}
	if got := w.Header().Get("ETag"); got != `"2"` {
		t.Errorf("ETag = %q, want \"2\"", got)
	}
	// Without If-Match: no version check.
	if w = s.Do(t, req{Method: "POST", Path: path + "/adjustments", Token: adminToken, Body: `{"delta": -5, "reason": "damaged"}`}); w.Code != http.StatusOK {
		t.Fatalf("adjust without If-Match: status %d, body %s", w.Code, w.Body.String())
	}
	// The old ETag is stale now.
	if w = s.Do(t, req{Method: "POST", Path: path + "/adjustments", Token: adminToken, Header: map[string]string{"If-Match": `"2"`},
		Body: `{"delta": 1, "reason": "found one"}`}); w.Code != http.StatusPreconditionFailed {
		t.Errorf("adjust with a stale ETag: status %d, want 412", w.Code)
	}

	// The audit trail names the admin who adjusted.
	w = s.Do(t, req{Method: "GET", Path: path + "/adjustments", Token: adminToken})
	if w.Code != http.StatusOK {
		t.Fatalf("adjustments: status %d, body %s", w.Code, w.Body.String())
	}
	list := apitest.Decode[api.AdjustmentList](t, w)
	type adj struct {
		Delta, OnHand int64
		Reason, Actor string
	}
	var trail []adj
	for _, a := range list.Items {
		trail = append(trail, adj{a.Delta, a.OnHand, a.Reason, a.Actor})
	}
	if diff := cmp.Diff([]adj{{-5, 20, "damaged", adminID}, {25, 25, "received from supplier", adminID}}, trail); diff != "" {
		t.Errorf("adjustments (-want +got):\n%s", diff)
	}
}

func TestListPagination(t *testing.T) {
	s := newServer(t)
	var skus []string
	for i := range 7 {
		skus = append(skus, s.item(t, fmt.Sprintf("SKU-%d", i), int64(i)).SKU)
	}
	for i := range 5 {
		if _, err := s.svc.Adjust(t.Context(), inventory.Adjust{SKU: "SKU-0", Delta: int64(i + 1), Reason: "r", Actor: "a"}); err != nil {
			t.Fatalf("Adjust: %v", err)
		}
	}
	all, err := s.svc.ListAdjustments(t.Context(), inventory.ListAdjustments{SKU: "SKU-0"})
	if err != nil {
		t.Fatal(err)
	}
	var adjIDs []string
	for _, a := range all.Items {
		adjIDs = append(adjIDs, a.ID)
	}

	// walk follows next_cursor through a list, checking the Link header on the way.
	walk := func(t *testing.T, base string, limit int, ids func(*httptest.ResponseRecorder) ([]string, string)) []string {
		var got []string
		path := fmt.Sprintf("%s?limit=%d", base, limit)
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("pagination does not end; visited %d", len(got))
			}
			w := s.Do(t, req{Method: "GET", Path: path, Token: adminToken})
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, body %s", path, w.Code, w.Body.String())
			}
			if !strings.Contains(w.Body.String(), `"items":[`) {
				t.Errorf("items is not an array: %s", w.Body.String())
			}
			page, next := ids(w)
			if len(page) > limit {
				t.Fatalf("page of %d, limit %d", len(page), limit)
			}
			got = append(got, page...)
			link := w.Header().Get("Link")
			if next == "" {
				if link != "" {
					t.Errorf("last page has Link %q", link)
				}
				return got
			}
			path = fmt.Sprintf("%s?%s", base, url.Values{"cursor": {next}, "limit": {fmt.Sprint(limit)}}.Encode())
			if want := fmt.Sprintf(`<%s>; rel="next"`, path); link != want {
				t.Errorf("Link = %q, want %q", link, want)
			}
		}
	}
	for _, limit := range []int{1, 2, 7, 20} {
		t.Run(fmt.Sprint("items by ", limit), func(t *testing.T) {
			got := walk(t, "/v1/inventory", limit, func(w *httptest.ResponseRecorder) ([]string, string) {
				page := apitest.Decode[api.ItemList](t, w)
				var out []string
				for _, it := range page.Items {
					out = append(out, it.SKU)
				}
				return out, page.NextCursor
			})
			if diff := cmp.Diff(skus, got); diff != "" {
				t.Errorf("SKUs over all pages (-want +got):\n%s", diff)
			}
		})
		t.Run(fmt.Sprint("adjustments by ", limit), func(t *testing.T) {
			got := walk(t, "/v1/inventory/SKU-0/adjustments", limit, func(w *httptest.ResponseRecorder) ([]string, string) {
				page := apitest.Decode[api.AdjustmentList](t, w)
				var out []string
				for _, a := range page.Items {
					out = append(out, a.ID)
				}
				return out, page.NextCursor
			})
			if diff := cmp.Diff(adjIDs, got); diff != "" {
				t.Errorf("adjustment ids over all pages (-want +got):\n%s", diff)
			}
		})
	}
}
