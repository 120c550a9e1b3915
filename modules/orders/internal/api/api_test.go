package api_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/httpapi/apitest"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/api"
	"github.com/agora-commerce/agora/modules/orders/internal/checkout"
	"github.com/agora-commerce/agora/modules/orders/internal/ordertest"
	"github.com/agora-commerce/agora/modules/payments"
)

const (
	aliceID = "0190a8b2-0000-7000-8000-00000000a11c"
	bobID   = "0190a8b2-0000-7000-8000-000000000b0b"
	adminID = "0190a8b2-0000-7000-8000-00000000ad01"
)

var (
	aliceToken = apitest.Token(aliceID, "customer")
	bobToken   = apitest.Token(bobID, "customer")
	adminToken = apitest.Token(adminID, "admin")
)

// req is one request to the server.
type req = apitest.Request

// server is the orders module, with fakes of the modules it talks to, behind the
// real HTTP edge.
type server struct {
	*apitest.Server
	world *ordertest.World
}

func newServer(t *testing.T) *server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	h, err := modhost.Open(t.Context(), cfg, "orders", apitest.Logger())
	if err != nil {
		t.Fatalf("modhost.Open: %v", err)
	}
	t.Cleanup(func() { _ = h.DB.Close() })
	w := ordertest.NewWorld(t, h, checkout.Options{})
	return &server{Server: apitest.New(t, api.Routes(w.Bus)), world: w}
}

// place checks out the cart of tok's holder with an idempotency key.
func (s *server) place(t *testing.T, tok, key, paymentToken string) *httptest.ResponseRecorder {
	t.Helper()
	return s.Do(t, req{Method: http.MethodPost, Path: "/v1/orders", Token: tok,
		Body: map[string]string{"payment_token": paymentToken}, Header: map[string]string{"Idempotency-Key": key}})
}

func TestCartRoutes(t *testing.T) {
	s := newServer(t)
	tee := s.world.Catalog.Add("TEE-M", "Classic Tee", 1500)

	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/cart"}); r.Code != http.StatusUnauthorized {
		t.Errorf("cart without a token: %d", r.Code)
	}
	r := s.Do(t, req{Method: http.MethodPut, Path: "/v1/cart/items/" + tee.ID, Token: aliceToken, Body: map[string]int{"quantity": 2}})
	c := apitest.Decode[orders.Cart](t, r)
	if r.Code != http.StatusOK || c.CustomerID != aliceID || len(c.Lines) != 1 || c.Total.Amount != 3000 {
		t.Fatalf("put item: %d %s", r.Code, r.Body)
	}
	// The cart is the caller's: bob's is empty.
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/cart", Token: bobToken})
	c = apitest.Decode[orders.Cart](t, r)
	if r.Code != http.StatusOK || len(c.Lines) != 0 {
		t.Errorf("bob's cart: %d %s", r.Code, r.Body)
	}
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		location   string
	}{
		{"quantity 0", "/v1/cart/items/" + tee.ID, map[string]int{"quantity": 0}, http.StatusUnprocessableEntity, "body.quantity"},
		{"not a uuid", "/v1/cart/items/nope", map[string]int{"quantity": 1}, http.StatusUnprocessableEntity, "path.product_id"},
		{"unknown product", "/v1/cart/items/0190a8b2-0000-7000-8000-000000000999", map[string]int{"quantity": 1}, http.StatusUnprocessableEntity, "path.product_id"},
	} {
		r := s.Do(t, req{Method: http.MethodPut, Path: tc.path, Token: aliceToken, Body: tc.body})
		p := apitest.Problem(t, r)
		if r.Code != tc.status || len(p.Errors) == 0 || p.Errors[0].Location != tc.location {
			t.Errorf("%s: %d %s, want %d on %s", tc.name, r.Code, r.Body, tc.status, tc.location)
		}
	}
	for range 2 {
		r = s.Do(t, req{Method: http.MethodDelete, Path: "/v1/cart/items/" + tee.ID, Token: aliceToken})
		c = apitest.Decode[orders.Cart](t, r)
		if r.Code != http.StatusOK || len(c.Lines) != 0 {
			t.Errorf("delete: %d %s", r.Code, r.Body)
		}
	}
}

func TestOrderRoutes(t *testing.T) {
	s := newServer(t)
	w := s.world
	tee := w.Catalog.Add("TEE-M", "Classic Tee", 1500)
	w.Fill(t, aliceID, []catalog.Product{tee}, 2)

	r := s.Do(t, req{Method: http.MethodPost, Path: "/v1/orders", Token: aliceToken, Body: map[string]string{"payment_token": "tok_visa"}})
	p := apitest.Problem(t, r)
	if r.Code != http.StatusUnprocessableEntity || len(p.Errors) == 0 || p.Errors[0].Location != "header.Idempotency-Key" {
		t.Errorf("checkout without Idempotency-Key: %d %s", r.Code, r.Body)
	}
	if r := s.place(t, "", "k-1", "tok_visa"); r.Code != http.StatusUnauthorized {
		t.Errorf("checkout signed out: %d", r.Code)
	}

	r = s.place(t, aliceToken, "k-1", "tok_visa")
	o := apitest.Decode[orders.Order](t, r)
	if r.Code != http.StatusAccepted || r.Header().Get("Location") != "/v1/orders/"+o.ID || o.Status != orders.StatusPending ||
		o.CustomerID != aliceID || r.Header().Get("Idempotent-Replayed") != "false" {
		t.Fatalf("checkout: %d %v %s", r.Code, r.Header(), r.Body)
	}
	r = s.place(t, aliceToken, "k-1", "tok_visa")
	again := apitest.Decode[orders.Order](t, r)
	if r.Code != http.StatusAccepted || again.ID != o.ID || r.Header().Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %v %s", r.Code, r.Header(), r.Body)
	}
	r = s.place(t, aliceToken, "k-1", "tok_other")
	if p := apitest.Problem(t, r); r.Code != http.StatusUnprocessableEntity || p.Type != httpapi.ProblemTypePrefix+"orders.idempotency_key_reused" {
		t.Errorf("key reused with another body: %d %s", r.Code, r.Body)
	}
	w.WaitSaga(t, o.ID, orders.SagaCompleted)

	// The owner and admins see the order; another customer gets a 404, as for an
	// order that does not exist.
	for _, tc := range []struct {
		who    string
		token  string
		status int
	}{{"owner", aliceToken, 200}, {"admin", adminToken, 200}, {"other", bobToken, 404}, {"nobody", "", 401}} {
		if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/orders/" + o.ID, Token: tc.token}); r.Code != tc.status {
			t.Errorf("get as %s: %d, want %d", tc.who, r.Code, tc.status)
		}
	}
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/orders/0190a8b2-0000-7000-8000-000000000999", Token: aliceToken}); r.Code != http.StatusNotFound {
		t.Errorf("unknown order: %d", r.Code)
	}
	if r := s.Do(t, req{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/cancel", Token: bobToken}); r.Code != http.StatusNotFound {
		t.Errorf("cancel as another customer: %d", r.Code)
	}
	if r := s.Do(t, req{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: aliceToken, Body: map[string]any{"reason": "x"}}); r.Code != http.StatusForbidden {
		t.Errorf("refund as a customer: %d", r.Code)
	}
	r = s.Do(t, req{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/refunds", Token: adminToken, Body: map[string]any{"amount": 500, "reason": "goodwill"}, Header: map[string]string{"Idempotency-Key": "r-1"}})
	if r.Code != http.StatusAccepted {
		t.Errorf("refund as admin: %d %s", r.Code, r.Body)
	}
	testlog.Eventually(t, "the refund", func() bool { return w.Order(t, o.ID).Refunded == 500 })

	r = s.Do(t, req{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/cancel", Token: aliceToken})
	o = apitest.Decode[orders.Order](t, r)
	if r.Code != http.StatusAccepted || o.Status != orders.StatusCancelled {
		t.Errorf("cancel as owner: %d %s", r.Code, r.Body)
	}
	if r := s.Do(t, req{Method: http.MethodPost, Path: "/v1/orders/" + o.ID + "/cancel", Token: aliceToken}); r.Code != http.StatusConflict {
		t.Errorf("cancel twice: %d %s", r.Code, r.Body)
	}

	// Lists: own orders, newest first, with a Link to the next page.
	for i := range 2 {
		w.Fill(t, aliceID, []catalog.Product{tee})
		s.place(t, aliceToken, "k-list-"+string(rune('a'+i)), "tok_visa")
	}
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/orders?limit=2", Token: aliceToken})
	list := apitest.Decode[api.OrderList](t, r)
	if r.Code != 200 || len(list.Items) != 2 || list.NextCursor == "" || !strings.Contains(r.Header().Get("Link"), `rel="next"`) {
		t.Fatalf("first page: %d %v %s", r.Code, r.Header(), r.Body)
	}
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/orders?limit=2&cursor=" + list.NextCursor, Token: aliceToken})
	next := apitest.Decode[api.OrderList](t, r)
	if r.Code != 200 || len(next.Items) != 1 || next.Items[0].ID != o.ID || next.NextCursor != "" {
		t.Errorf("second page: %d %s", r.Code, r.Body)
	}
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/orders?cursor=garbage", Token: aliceToken}); r.Code != http.StatusUnprocessableEntity {
		t.Errorf("bad cursor: %d", r.Code)
	}
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/orders", Token: bobToken})
	list = apitest.Decode[api.OrderList](t, r)
	if len(list.Items) != 0 {
		t.Errorf("bob lists %d orders", len(list.Items))
	}

	// Admins list everyone's orders, or one customer's, under /v1/ops/orders.
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/orders", Token: aliceToken}); r.Code != http.StatusForbidden {
		t.Errorf("all orders as a customer: %d", r.Code)
	}
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/orders?limit=2&customer_id=" + aliceID, Token: adminToken})
	all := apitest.Decode[api.OrderList](t, r)
	link := r.Header().Get("Link")
	if r.Code != 200 || len(all.Items) != 2 || all.NextCursor == "" ||
		!strings.Contains(link, "/v1/ops/orders?") || !strings.Contains(link, "customer_id="+aliceID) {
		t.Fatalf("admin's first page of alice's orders: %d %s %s", r.Code, link, r.Body)
	}
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/orders?customer_id=" + bobID, Token: adminToken})
	all = apitest.Decode[api.OrderList](t, r)
	if r.Code != 200 || len(all.Items) != 0 {
		t.Errorf("admin's list of bob's orders: %d %s", r.Code, r.Body)
	}
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/orders?limit=100", Token: adminToken})
	all = apitest.Decode[api.OrderList](t, r)
	if r.Code != 200 || len(all.Items) < 3 {
		t.Errorf("admin's list of every order: %d, %d orders", r.Code, len(all.Items))
	}

	// Admin saga views.
	w.WaitSaga(t, o.ID, orders.SagaCancelled)
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/sagas", Token: aliceToken}); r.Code != http.StatusForbidden {
		t.Errorf("sagas as a customer: %d", r.Code)
	}
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/sagas?state=cancelled", Token: adminToken})
	sagas := apitest.Decode[api.SagaList](t, r)
	if r.Code != 200 || len(sagas.Items) != 1 || sagas.Items[0].OrderID != o.ID {
		t.Errorf("cancelled sagas: %d %s", r.Code, r.Body)
	}
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/sagas/" + o.ID, Token: adminToken})
	sg := apitest.Decode[orders.Saga](t, r)
	if r.Code != 200 || sg.State != orders.SagaCancelled || len(sg.History) < 5 || strings.Contains(r.Body.String(), "tok_visa") {
		t.Errorf("saga: %d %s", r.Code, r.Body)
	}
}

// The event stream sends the order, then each change, and ends once the order is
// no longer pending.
func TestOrderStream(t *testing.T) {
	s := newServer(t)
	w := s.world
	tee := w.Catalog.Add("TEE-M", "Classic Tee", 1500)
	w.Peer.Lock(func(p *ordertest.Peer) { p.Silent[payments.AuthorizePaymentCommand.Name()] = true })
	w.Fill(t, aliceID, []catalog.Product{tee})
	o := w.Place(t, aliceID, "tok_visa")
	testlog.Eventually(t, "authorization to be asked", func() bool { return w.Peer.Has(o.ID, payments.AuthorizePaymentCommand.Name()) })

	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/orders/" + o.ID + "/events", Token: bobToken}); r.Code != http.StatusNotFound {
		t.Errorf("another customer's stream: %d %s", r.Code, r.Body)
	}

	// Read the stream as it is written: over a real connection.
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	hr, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/orders/"+o.ID+"/events", nil)
	hr.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	events := readEvents(resp.Body)
	first := <-events
	if first.name != "order" || first.order.Status != orders.StatusPending || first.id != "1" {
		t.Fatalf("first event %+v", first)
	}
	w.Publish(t, payments.PaymentAuthorizedEvent.With(payments.PaymentAuthorized{PayableID: o.ID, CustomerID: aliceID,
		Amount: payments.Money(o.Total)}))
	second, ok := <-events
	if !ok || second.name != "status" || second.order.Status != orders.StatusConfirmed || second.order.Version != 2 || second.id != "2" {
		t.Fatalf("second event %+v", second)
	}
	if extra, ok := <-events; ok {
		t.Errorf("the stream goes on after a terminal status: %+v", extra)
	}
}

type event struct {
	name, id string
	order    orders.Order
}

// readEvents parses a server-sent event stream until it ends.
func readEvents(r io.Reader) <-chan event {
	out := make(chan event, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(r)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					out <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.order)
			}
		}
	}()
	return out
}

// TestAnotherCustomersOrderIsNotFound checks that no owner-scoped order route tells
// another customer's order from one that does not exist: both answers are the same
// bytes once the ids are the same, on every route that takes an order id.
func TestAnotherCustomersOrderIsNotFound(t *testing.T) {
	s := newServer(t)
	w := s.world
	tee := w.Catalog.Add("TEE-M", "Classic Tee", 1500)
	w.Fill(t, aliceID, []catalog.Product{tee})
	o := w.Place(t, aliceID, "tok_visa")
	w.WaitSaga(t, o.ID, orders.SagaCompleted)
	const unknown = "0190a8b2-0000-7000-8000-000000000999"

	for _, route := range []struct{ method, path string }{
		{http.MethodGet, "/v1/orders/%s"},
		{http.MethodPost, "/v1/orders/%s/cancel"},
		{http.MethodGet, "/v1/orders/%s/events"},
	} {
		path := func(id string) string { return strings.Replace(route.path, "%s", id, 1) }
		var body any
		if route.method == http.MethodPost {
			body = map[string]any{}
		}
		other := s.Do(t, req{Method: route.method, Path: path(o.ID), Token: bobToken, Body: body})
		missing := s.Do(t, req{Method: route.method, Path: path(unknown), Token: bobToken, Body: body})
		if other.Code != http.StatusNotFound || missing.Code != http.StatusNotFound {
			t.Errorf("%s %s: another customer's order %d, an unknown one %d; want 404 for both", route.method, route.path, other.Code, missing.Code)
		}
		// The answer for alice's order, with its id replaced by the unknown one.
		got := strings.ReplaceAll(other.Body.String(), o.ID, unknown)
		if got != missing.Body.String() {
			t.Errorf("%s %s: another customer's order answers\n  %s\nan unknown order answers\n  %s", route.method, route.path, got, missing.Body)
		}
		for _, h := range []string{"Content-Type", "Cache-Control"} {
			if other.Header().Get(h) != missing.Header().Get(h) {
				t.Errorf("%s %s: %s %q for another customer's order, %q for an unknown one", route.method, route.path, h, other.Header().Get(h), missing.Header().Get(h))
			}
		}
	}
}

// TestOrderStreamRefusesMalformedIDs checks that the event stream validates its id
// before it looks the order up, as GET /v1/orders/{id} does: a 4xx problem, never a
// store error (on PostgreSQL such ids were 500s).
func TestOrderStreamRefusesMalformedIDs(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		name, id string
		status   int
	}{
		{"not a uuid", "not-a-uuid", http.StatusUnprocessableEntity},
		{"NUL", "%00", http.StatusBadRequest},
		{"invalid UTF-8", "%ff%fe", http.StatusBadRequest},
		{"too long", strings.Repeat("a", 300), http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := s.Do(t, req{Method: http.MethodGet, Path: "/v1/orders/" + tc.id + "/events", Token: aliceToken})
			apitest.Problem(t, stream)
			if stream.Code != tc.status {
				t.Fatalf("stream: %d %s, want %d", stream.Code, stream.Body, tc.status)
			}
			// The same answer as the order itself.
			get := s.Do(t, req{Method: http.MethodGet, Path: "/v1/orders/" + tc.id, Token: aliceToken})
			if get.Code != stream.Code || get.Body.String() != stream.Body.String() {
				t.Errorf("stream answers %d %s; the order route %d %s", stream.Code, stream.Body, get.Code, get.Body)
			}
		})
	}
}
