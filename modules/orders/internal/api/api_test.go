package api_test

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/api"
	"github.com/agora-commerce/agora/modules/orders/internal/checkout"
	"github.com/agora-commerce/agora/modules/orders/internal/ordertest"
	"github.com/agora-commerce/agora/modules/payments"
)

var keys = auth.NewKeys(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))

const (
	aliceID = "0190a8b2-0000-7000-8000-00000000a11c"
	bobID   = "0190a8b2-0000-7000-8000-000000000b0b"
	adminID = "0190a8b2-0000-7000-8000-00000000ad01"
)

var (
	aliceToken = issue(aliceID, "customer")
	bobToken   = issue(bobID, "customer")
	adminToken = issue(adminID, "admin")
)

func issue(userID, role string) string {
	tok, err := keys.Issue(auth.Principal{UserID: userID, Role: role}, time.Now(), time.Hour)
	if err != nil {
		panic(err)
	}
	return tok
}

var errs = testlog.New(slog.LevelError)

func TestMain(m *testing.M) {
	httpapi.InstallErrorHook(errs.Logger())
	os.Exit(m.Run())
}

type server struct {
	t     *testing.T
	world *ordertest.World
	srv   *httptest.Server
}

func newServer(t *testing.T) *server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	h, err := modhost.Open(t.Context(), cfg, "orders", errs.Logger())
	if err != nil {
		t.Fatalf("modhost.Open: %v", err)
	}
	t.Cleanup(func() { _ = h.DB.Close() })
	w := ordertest.NewWorld(t, h, checkout.Options{})
	a := httpapi.NewAPI(httpapi.Config{Verifier: keys, MaxBodyBytes: 1 << 20, MaxInFlight: 64, RequestTimeout: 10 * time.Second}, errs.Logger())
	api.Routes(w.Bus)(a)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	errs.Take()
	t.Cleanup(func() {
		for _, r := range errs.Take() {
			t.Errorf("error logged: %s", r)
		}
	})
	return &server{t: t, world: w, srv: srv}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) problem(t *testing.T) huma.ErrorModel {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want problem+json; body %s", ct, r.body)
	}
	var p huma.ErrorModel
	r.decode(t, &p)
	return p
}

func (s *server) do(method, path, token string, body any, header ...string) response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.srv.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (s *server) place(token, key, paymentToken string) response {
	return s.do(http.MethodPost, "/v1/orders", token, map[string]string{"payment_token": paymentToken}, "Idempotency-Key", key)
}

func TestCartRoutes(t *testing.T) {
	s := newServer(t)
	tee := s.world.Catalog.Add("TEE-M", "Classic Tee", 1500)

	if r := s.do(http.MethodGet, "/v1/cart", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("cart without a token: %d", r.status)
	}
	r := s.do(http.MethodPut, "/v1/cart/items/"+tee.ID, aliceToken, map[string]int{"quantity": 2})
	var c orders.Cart
	r.decode(t, &c)
	if r.status != http.StatusOK || c.CustomerID != aliceID || len(c.Lines) != 1 || c.Total.Amount != 3000 {
		t.Fatalf("put item: %d %s", r.status, r.body)
	}
	// The cart is the caller's: bob's is empty.
	r = s.do(http.MethodGet, "/v1/cart", bobToken, nil)
	r.decode(t, &c)
	if r.status != http.StatusOK || len(c.Lines) != 0 {
		t.Errorf("bob's cart: %d %s", r.status, r.body)
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
		r := s.do(http.MethodPut, tc.path, aliceToken, tc.body)
		p := r.problem(t)
		if r.status != tc.status || len(p.Errors) == 0 || p.Errors[0].Location != tc.location {
			t.Errorf("%s: %d %s, want %d on %s", tc.name, r.status, r.body, tc.status, tc.location)
		}
	}
	for range 2 {
		r = s.do(http.MethodDelete, "/v1/cart/items/"+tee.ID, aliceToken, nil)
		r.decode(t, &c)
		if r.status != http.StatusOK || len(c.Lines) != 0 {
			t.Errorf("delete: %d %s", r.status, r.body)
		}
	}
}

func TestOrderRoutes(t *testing.T) {
	s := newServer(t)
	w := s.world
	tee := w.Catalog.Add("TEE-M", "Classic Tee", 1500)
	w.Fill(t, aliceID, []catalog.Product{tee}, 2)

	r := s.do(http.MethodPost, "/v1/orders", aliceToken, map[string]string{"payment_token": "tok_visa"})
	p := r.problem(t)
	if r.status != http.StatusUnprocessableEntity || len(p.Errors) == 0 || p.Errors[0].Location != "header.Idempotency-Key" {
		t.Errorf("checkout without Idempotency-Key: %d %s", r.status, r.body)
	}
	if r := s.place("", "k-1", "tok_visa"); r.status != http.StatusUnauthorized {
		t.Errorf("checkout signed out: %d", r.status)
	}

	r = s.place(aliceToken, "k-1", "tok_visa")
	var o orders.Order
	r.decode(t, &o)
	if r.status != http.StatusAccepted || r.header.Get("Location") != "/v1/orders/"+o.ID || o.Status != orders.StatusPending ||
		o.CustomerID != aliceID || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("checkout: %d %v %s", r.status, r.header, r.body)
	}
	r = s.place(aliceToken, "k-1", "tok_visa")
	var again orders.Order
	r.decode(t, &again)
	if r.status != http.StatusAccepted || again.ID != o.ID || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %v %s", r.status, r.header, r.body)
	}
	r = s.place(aliceToken, "k-1", "tok_other")
	if p := r.problem(t); r.status != http.StatusUnprocessableEntity || p.Type != httpapi.ProblemTypePrefix+"orders.idempotency_key_reused" {
		t.Errorf("key reused with another body: %d %s", r.status, r.body)
	}
	w.WaitSaga(t, o.ID, orders.SagaCompleted)

	// The owner and admins see the order; another customer gets a 404, as for an
	// order that does not exist.
	for _, tc := range []struct {
		who    string
		token  string
		status int
	}{{"owner", aliceToken, 200}, {"admin", adminToken, 200}, {"other", bobToken, 404}, {"nobody", "", 401}} {
		if r := s.do(http.MethodGet, "/v1/orders/"+o.ID, tc.token, nil); r.status != tc.status {
			t.Errorf("get as %s: %d, want %d", tc.who, r.status, tc.status)
		}
	}
	if r := s.do(http.MethodGet, "/v1/orders/0190a8b2-0000-7000-8000-000000000999", aliceToken, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown order: %d", r.status)
	}
	if r := s.do(http.MethodPost, "/v1/orders/"+o.ID+"/cancel", bobToken, nil); r.status != http.StatusNotFound {
		t.Errorf("cancel as another customer: %d", r.status)
	}
	if r := s.do(http.MethodPost, "/v1/orders/"+o.ID+"/refunds", aliceToken, map[string]any{"reason": "x"}); r.status != http.StatusForbidden {
		t.Errorf("refund as a customer: %d", r.status)
	}
	r = s.do(http.MethodPost, "/v1/orders/"+o.ID+"/refunds", adminToken, map[string]any{"amount": 500, "reason": "goodwill"}, "Idempotency-Key", "r-1")
	if r.status != http.StatusAccepted {
		t.Errorf("refund as admin: %d %s", r.status, r.body)
	}
	testlog.Eventually(t, "the refund", func() bool { return w.Order(t, o.ID).Refunded == 500 })

	r = s.do(http.MethodPost, "/v1/orders/"+o.ID+"/cancel", aliceToken, nil)
	r.decode(t, &o)
	if r.status != http.StatusAccepted || o.Status != orders.StatusCancelled {
		t.Errorf("cancel as owner: %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/orders/"+o.ID+"/cancel", aliceToken, nil); r.status != http.StatusConflict {
		t.Errorf("cancel twice: %d %s", r.status, r.body)
	}

	// Lists: own orders, newest first, with a Link to the next page.
	for i := range 2 {
		w.Fill(t, aliceID, []catalog.Product{tee})
		s.place(aliceToken, "k-list-"+string(rune('a'+i)), "tok_visa")
	}
	r = s.do(http.MethodGet, "/v1/orders?limit=2", aliceToken, nil)
	var list api.OrderList
	r.decode(t, &list)
	if r.status != 200 || len(list.Items) != 2 || list.NextCursor == "" || !strings.Contains(r.header.Get("Link"), `rel="next"`) {
		t.Fatalf("first page: %d %v %s", r.status, r.header, r.body)
	}
	r = s.do(http.MethodGet, "/v1/orders?limit=2&cursor="+list.NextCursor, aliceToken, nil)
	var next api.OrderList
	r.decode(t, &next)
	if r.status != 200 || len(next.Items) != 1 || next.Items[0].ID != o.ID || next.NextCursor != "" {
		t.Errorf("second page: %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/orders?cursor=garbage", aliceToken, nil); r.status != http.StatusUnprocessableEntity {
		t.Errorf("bad cursor: %d", r.status)
	}
	r = s.do(http.MethodGet, "/v1/orders", bobToken, nil)
	r.decode(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("bob lists %d orders", len(list.Items))
	}

	// Admins list everyone's orders, or one customer's, under /v1/ops/orders.
	if r := s.do(http.MethodGet, "/v1/ops/orders", aliceToken, nil); r.status != http.StatusForbidden {
		t.Errorf("all orders as a customer: %d", r.status)
	}
	r = s.do(http.MethodGet, "/v1/ops/orders?limit=2&customer_id="+aliceID, adminToken, nil)
	var all api.OrderList
	r.decode(t, &all)
	link := r.header.Get("Link")
	if r.status != 200 || len(all.Items) != 2 || all.NextCursor == "" ||
		!strings.Contains(link, "/v1/ops/orders?") || !strings.Contains(link, "customer_id="+aliceID) {
		t.Fatalf("admin's first page of alice's orders: %d %s %s", r.status, link, r.body)
	}
	r = s.do(http.MethodGet, "/v1/ops/orders?customer_id="+bobID, adminToken, nil)
	r.decode(t, &all)
	if r.status != 200 || len(all.Items) != 0 {
		t.Errorf("admin's list of bob's orders: %d %s", r.status, r.body)
	}
	r = s.do(http.MethodGet, "/v1/ops/orders?limit=100", adminToken, nil)
	r.decode(t, &all)
	if r.status != 200 || len(all.Items) < 3 {
		t.Errorf("admin's list of every order: %d, %d orders", r.status, len(all.Items))
	}

	// Admin saga views.
	w.WaitSaga(t, o.ID, orders.SagaCancelled)
	if r := s.do(http.MethodGet, "/v1/ops/sagas", aliceToken, nil); r.status != http.StatusForbidden {
		t.Errorf("sagas as a customer: %d", r.status)
	}
	r = s.do(http.MethodGet, "/v1/ops/sagas?state=cancelled", adminToken, nil)
	var sagas api.SagaList
	r.decode(t, &sagas)
	if r.status != 200 || len(sagas.Items) != 1 || sagas.Items[0].OrderID != o.ID {
		t.Errorf("cancelled sagas: %d %s", r.status, r.body)
	}
	r = s.do(http.MethodGet, "/v1/ops/sagas/"+o.ID, adminToken, nil)
	var sg orders.Saga
	r.decode(t, &sg)
	if r.status != 200 || sg.State != orders.SagaCancelled || len(sg.History) < 5 || strings.Contains(string(r.body), "tok_visa") {
		t.Errorf("saga: %d %s", r.status, r.body)
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

	if r := s.do(http.MethodGet, "/v1/orders/"+o.ID+"/events", bobToken, nil); r.status != http.StatusNotFound {
		t.Errorf("another customer's stream: %d %s", r.status, r.body)
	}

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.srv.URL+"/v1/orders/"+o.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(req)
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
	w.Publish(t, payments.PaymentAuthorizedEvent.With(payments.PaymentAuthorized{OrderID: o.ID, CustomerID: aliceID,
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
		other := s.do(route.method, path(o.ID), bobToken, body)
		missing := s.do(route.method, path(unknown), bobToken, body)
		if other.status != http.StatusNotFound || missing.status != http.StatusNotFound {
			t.Errorf("%s %s: another customer's order %d, an unknown one %d; want 404 for both", route.method, route.path, other.status, missing.status)
		}
		// The answer for alice's order, with its id replaced by the unknown one.
		got := strings.ReplaceAll(string(other.body), o.ID, unknown)
		if got != string(missing.body) {
			t.Errorf("%s %s: another customer's order answers\n  %s\nan unknown order answers\n  %s", route.method, route.path, got, missing.body)
		}
		for _, h := range []string{"Content-Type", "Cache-Control"} {
			if other.header.Get(h) != missing.header.Get(h) {
				t.Errorf("%s %s: %s %q for another customer's order, %q for an unknown one", route.method, route.path, h, other.header.Get(h), missing.header.Get(h))
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
			stream := s.do(http.MethodGet, "/v1/orders/"+tc.id+"/events", aliceToken, nil)
			stream.problem(t)
			if stream.status != tc.status {
				t.Fatalf("stream: %d %s, want %d", stream.status, stream.body, tc.status)
			}
			// The same answer as the order itself.
			get := s.do(http.MethodGet, "/v1/orders/"+tc.id, aliceToken, nil)
			if get.status != stream.status || string(get.body) != string(stream.body) {
				t.Errorf("stream answers %d %s; the order route %d %s", stream.status, stream.body, get.status, get.body)
			}
		})
	}
}
