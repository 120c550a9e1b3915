package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeShop is just enough of Agora's HTTP API, in memory, to run the generator
// against: accounts with a sign-in rate limit, a paged catalog, carts, orders that
// confirm or reject by payment token, an order event stream and stock.
type fakeShop struct {
	mu        sync.Mutex
	accounts  map[string]string // email → password
	tokens    map[string]string // access token → email
	refreshes map[string]string // refresh token → email
	n         int
	logins    int
	carts     map[string]map[string]int64 // email → product → quantity
	orders    map[string]*fakeOrder
	keys      map[string]string // Idempotency-Key → the order it placed
	replays   int               // POSTs answered with the order of their key
	stock     map[string]int64
	adjusted  int
	placed    int
	revoked   bool     // all access tokens were revoked once
	problems  []string // what the generator did wrong
}

type fakeOrder struct {
	id, owner, token string
	created          time.Time
}

var fakeProducts = []product{
	{ID: "p-1", SKU: "SKU-1", Name: "Classic Tee", Category: "apparel"},
	{ID: "p-2", SKU: "SKU-2", Name: "Coffee Mug", Category: "kitchen"},
	{ID: "p-3", SKU: "SKU-3", Name: "Linen Apron", Category: "kitchen"},
}

func newFakeShop() *fakeShop {
	return &fakeShop{accounts: map[string]string{}, tokens: map[string]string{}, refreshes: map[string]string{},
		carts: map[string]map[string]int64{}, orders: map[string]*fakeOrder{}, keys: map[string]string{},
		stock: map[string]int64{"SKU-1": 0, "SKU-2": 0, "SKU-3": 0}}
}

func (s *fakeShop) problem(format string, args ...any) {
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, typ string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": typ, "status": status, "detail": typ})
}

func (s *fakeShop) issue(email string) tokens {
	s.n++
	t := tokens{AccessToken: fmt.Sprintf("acc-%d", s.n), RefreshToken: fmt.Sprintf("ref-%d", s.n), ExpiresIn: 900}
	s.tokens[t.AccessToken], s.refreshes[t.RefreshToken] = email, email
	return t
}

// user is the signed-in email, or "" after a 401 was written.
func (s *fakeShop) user(w http.ResponseWriter, r *http.Request) string {
	email := s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if email == "" {
		writeProblem(w, http.StatusUnauthorized, "urn:agora:problem:identity.unauthenticated")
	}
	return email
}

func (s *fakeShop) status(o *fakeOrder) (string, string) {
	if time.Since(o.created) < 20*time.Millisecond {
		return "pending", ""
	}
	if o.token == "tok_decline" {
		return "rejected", "payment declined"
	}
	return "confirmed", ""
}

func (s *fakeShop) orderJSON(o *fakeOrder) map[string]any {
	st, reason := s.status(o)
	return map[string]any{"id": o.id, "status": st, "reason": reason, "version": 1}
}

func (s *fakeShop) handler() http.Handler {
	mux := http.NewServeMux()
	creds := func(r *http.Request) (string, string) {
		var c struct{ Email, Password string }
		json.NewDecoder(r.Body).Decode(&c)
		return c.Email, c.Password
	}
	mux.HandleFunc("POST /v1/auth/register", func(w http.ResponseWriter, r *http.Request) {
		email, pw := creds(r)
		if _, ok := s.accounts[email]; ok {
			writeProblem(w, http.StatusConflict, "urn:agora:problem:identity.email_taken")
			return
		}
		s.accounts[email] = pw
		writeJSON(w, http.StatusCreated, map[string]string{"email": email})
	})
	mux.HandleFunc("POST /v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		email, pw := creds(r)
		if s.logins++; s.logins == 2 { // the rate limit bites once
			w.Header().Set("Retry-After", "1")
			writeProblem(w, http.StatusTooManyRequests, "")
			return
		}
		if p, ok := s.accounts[email]; !ok || p != pw {
			writeProblem(w, http.StatusUnauthorized, "urn:agora:problem:identity.invalid_credentials")
			return
		}
		writeJSON(w, http.StatusOK, s.issue(email))
	})
	mux.HandleFunc("POST /v1/auth/refresh", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			RefreshToken string `json:"refresh_token"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		email := s.refreshes[b.RefreshToken]
		if email == "" {
			writeProblem(w, http.StatusUnauthorized, "")
			return
		}
		delete(s.refreshes, b.RefreshToken)
		writeJSON(w, http.StatusOK, s.issue(email))
	})
	mux.HandleFunc("GET /v1/products", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("cursor") {
		case "":
			writeJSON(w, http.StatusOK, map[string]any{"items": fakeProducts[:2], "next_cursor": "page2"})
		case "page2":
			writeJSON(w, http.StatusOK, map[string]any{"items": fakeProducts[2:]})
		default:
			writeProblem(w, http.StatusUnprocessableEntity, "")
		}
	})
	mux.HandleFunc("GET /v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range fakeProducts {
			if p.ID == r.PathValue("id") {
				writeJSON(w, http.StatusOK, p)
				return
			}
		}
		s.problem("GET of unknown product %s", r.PathValue("id"))
		writeProblem(w, http.StatusNotFound, "")
	})
	mux.HandleFunc("GET /v1/cart", func(w http.ResponseWriter, r *http.Request) {
		if email := s.user(w, r); email != "" {
			lines := []cartLine{}
			for id, q := range s.carts[email] {
				lines = append(lines, cartLine{ProductID: id, Quantity: q})
			}
			writeJSON(w, http.StatusOK, map[string]any{"lines": lines})
		}
	})
	mux.HandleFunc("PUT /v1/cart/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		if email := s.user(w, r); email != "" {
			var b struct{ Quantity int64 }
			json.NewDecoder(r.Body).Decode(&b)
			if s.carts[email] == nil {
				s.carts[email] = map[string]int64{}
			}
			s.carts[email][r.PathValue("id")] = b.Quantity
			writeJSON(w, http.StatusOK, map[string]any{})
		}
	})
	mux.HandleFunc("DELETE /v1/cart/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		if email := s.user(w, r); email != "" {
			delete(s.carts[email], r.PathValue("id"))
			writeJSON(w, http.StatusOK, map[string]any{})
		}
	})
	mux.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		email := s.user(w, r)
		if email == "" {
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			s.problem("order posted without an Idempotency-Key")
		}
		if id, ok := s.keys[key]; ok { // a resend: the same order, as Agora answers
			if s.orders[id] == nil || s.orders[id].owner != email {
				s.problem("Idempotency-Key %q used for another checkout", key)
			} else {
				s.replays++
				writeJSON(w, http.StatusAccepted, s.orderJSON(s.orders[id]))
				return
			}
		}
		var b struct {
			PaymentToken string `json:"payment_token"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		cart := s.carts[email]
		if len(cart) < 1 || len(cart) > 3 {
			s.problem("checkout of a cart with %d lines", len(cart))
		}
		if s.placed++; s.placed == 1 {
			writeProblem(w, http.StatusConflict, "urn:agora:problem:orders.price_changed")
			return
		}
		if s.placed == 5 && !s.revoked { // every access token is revoked once
			s.revoked = true
			clear(s.tokens)
		}
		for id := range cart {
			sku := "SKU-" + strings.TrimPrefix(id, "p-")
			s.stock[sku]--
			if s.stock[sku] < 0 {
				s.problem("%s sold out: the generator did not restock", sku)
			}
		}
		o := &fakeOrder{id: fmt.Sprintf("o-%d", s.placed), owner: email, token: b.PaymentToken, created: time.Now()}
		s.orders[o.id] = o
		s.keys[key] = o.id
		delete(s.carts, email)
		writeJSON(w, http.StatusAccepted, s.orderJSON(o))
	})
	mux.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		if email := s.user(w, r); email != "" {
			if o := s.orders[r.PathValue("id")]; o != nil && o.owner == email {
				writeJSON(w, http.StatusOK, s.orderJSON(o))
				return
			}
			writeProblem(w, http.StatusNotFound, "")
		}
	})
	mux.HandleFunc("GET /v1/orders/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		email := s.user(w, r)
		if email == "" {
			return
		}
		o := s.orders[r.PathValue("id")]
		if o == nil || o.owner != email {
			writeProblem(w, http.StatusNotFound, "")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			// One reading of the status decides both what is sent and whether the
			// stream goes on: read twice, the order could turn final in between,
			// and the stream would hold on without ever sending the final status.
			view := s.orderJSON(o)
			b, _ := json.Marshal(view)
			fmt.Fprintf(w, "event: order\ndata: %s\n\n", b)
			w.(http.Flusher).Flush()
			if view["status"] != "pending" {
				s.mu.Unlock() // hold the stream open without the lock
				<-r.Context().Done()
				s.mu.Lock()
				return
			}
			s.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			s.mu.Lock()
		}
	})
	mux.HandleFunc("GET /v1/inventory/{sku}", func(w http.ResponseWriter, r *http.Request) {
		if s.user(w, r) != "" {
			writeJSON(w, http.StatusOK, map[string]int64{"available": s.stock[r.PathValue("sku")]})
		}
	})
	mux.HandleFunc("POST /v1/inventory/{sku}/adjustments", func(w http.ResponseWriter, r *http.Request) {
		if s.user(w, r) != "" {
			var b struct {
				Delta  int64
				Reason string
			}
			json.NewDecoder(r.Body).Decode(&b)
			s.stock[r.PathValue("sku")] += b.Delta
			s.adjusted++
			writeJSON(w, http.StatusCreated, map[string]any{})
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
}

// A whole run against a fake shop: every checkout ends as its payment token says,
// the price-change retry, the rate-limited sign-in and a revoked token are dealt
// with, the products stay stocked, and nothing is counted as an error.
func TestRunAgainstAFakeShop(t *testing.T) {
	for _, await := range []string{AwaitSSE, AwaitPoll} {
		t.Run(await, func(t *testing.T) {
			shop := newFakeShop()
			shop.accounts["admin@example.com"] = "demo-admin-password"
			ts := httptest.NewServer(shop.handler())
			defer ts.Close()

			cfg := DefaultConfig()
			cfg.URLs = []string{ts.URL, ts.URL + "/"} // two base URLs, in turn
			cfg.Duration = 500 * time.Millisecond
			cfg.Rate = 40
			cfg.BrowseRate = 40
			cfg.Customers = 3
			cfg.Await = await
			cfg.PollInterval = 5 * time.Millisecond
			cfg.Tokens, _ = ParseTokenMix("tok_visa=3,tok_decline=1")
			cfg.Restock = Restock{Below: 10, Amount: 10, Every: 20 * time.Millisecond}
			cfg.Seed = 7

			var progress strings.Builder
			rep, err := Run(context.Background(), cfg, &progress)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, progress.String())
			}
			shop.mu.Lock()
			defer shop.mu.Unlock()
			for _, p := range shop.problems {
				t.Error("the shop saw:", p)
			}
			c := rep.Checkouts
			if rep.ErrorsTotal != 0 || c.Failed != 0 || c.TimedOut != 0 || c.Interrupted != 0 {
				t.Errorf("errors %v, checkouts %+v", rep.Errors, c)
			}
			if c.Launched == 0 || c.Launched != c.Completed || c.Completed != c.Confirmed+c.Rejected {
				t.Errorf("checkouts %+v: every launched one must complete", c)
			}
			if c.Launched+c.Dropped != 20 {
				t.Errorf("launched %d + dropped %d: want the 20 slots of 0.5 s at 40/s", c.Launched, c.Dropped)
			}
			for token, outcomes := range rep.ByToken {
				for outcome := range outcomes {
					if want := map[string]string{"tok_visa": OutcomeConfirmed, "tok_decline": OutcomeRejected}[token]; outcome != want {
						t.Errorf("a %s checkout ended %s", token, outcome)
					}
				}
			}
			if rep.PriceChangedRetries != 1 {
				t.Errorf("price-changed retries = %d, want 1", rep.PriceChangedRetries)
			}
			if !shop.revoked || rep.Operations["refresh"].Requests == 0 {
				t.Errorf("revoked %v, refreshes %d: a revoked token must be renewed", shop.revoked, rep.Operations["refresh"].Requests)
			}
			if shop.adjusted == 0 || shop.logins < 5 {
				t.Errorf("%d adjustments and %d sign-ins", shop.adjusted, shop.logins)
			}
			if c.Confirmed > 0 && rep.CheckoutLatency[OutcomeConfirmed].Count != c.Confirmed {
				t.Errorf("%d confirmed but %d latencies", c.Confirmed, rep.CheckoutLatency[OutcomeConfirmed].Count)
			}
			if rep.Browse.Launched == 0 {
				t.Error("no browsing")
			}
			if err := rep.WriteText(tWriter{t}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Ctrl-C in the timed window stops the run and still gives a report.
func TestRunInterrupted(t *testing.T) {
	shop := newFakeShop()
	ts := httptest.NewServer(shop.handler())
	defer ts.Close()
	cfg := DefaultConfig()
	cfg.URLs = []string{ts.URL}
	cfg.Duration = time.Hour
	cfg.Customers = 1
	cfg.Restock = Restock{}
	shop.logins = 2 // no rate limit here

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "launched") { // the first progress line: the window is running
				cancel()
			}
		}
	}()
	rep, err := Run(ctx, cfg, pw)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.WindowSeconds >= time.Hour.Seconds() {
		t.Errorf("interrupted %v after %.1f s", rep.Interrupted, rep.WindowSeconds)
	}
}

// A checkout whose POST gets no answer — the connection dropped after the order
// was stored, as when a process is killed — or a 503 is sent again with the same
// Idempotency-Key, and ends as its order does: not a failed checkout, and not a
// second order.
func TestCheckoutResentThroughARestart(t *testing.T) {
	shop := newFakeShop()
	shop.logins = 2 // no rate limit here
	var mu sync.Mutex
	posts := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/orders" {
			shop.handler().ServeHTTP(w, r)
			return
		}
		mu.Lock()
		posts++
		n := posts
		mu.Unlock()
		switch n % 3 {
		case 1: // stored, then the process dies before it answers
			shop.handler().ServeHTTP(httptest.NewRecorder(), r)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_ = conn.Close()
		case 2: // the module behind the process is away
			w.Header().Set("Retry-After", "0")
			writeProblem(w, http.StatusServiceUnavailable, "urn:agora:problem:bus.unavailable")
		default:
			shop.handler().ServeHTTP(w, r)
		}
	}))
	defer ts.Close()
	cfg := DefaultConfig()
	cfg.URLs = []string{ts.URL}
	cfg.Duration = 300 * time.Millisecond
	cfg.Rate = 20
	cfg.BrowseRate = 0
	cfg.Customers = 2
	cfg.Restock = Restock{}
	cfg.Tokens, _ = ParseTokenMix("tok_visa")
	cfg.Seed = 3
	shop.stock = map[string]int64{"SKU-1": 1000, "SKU-2": 1000, "SKU-3": 1000}
	rep, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	shop.mu.Lock()
	defer shop.mu.Unlock()
	for _, p := range shop.problems {
		t.Error("the shop saw:", p)
	}
	c := rep.Checkouts
	if c.Launched == 0 || c.Failed != 0 || c.Confirmed != c.Launched {
		t.Errorf("checkouts %+v: every one must be confirmed, none failed", c)
	}
	if int64(len(shop.orders)) != c.Confirmed || shop.replays == 0 || rep.Resends == 0 {
		t.Errorf("%d orders for %d confirmed checkouts, %d replays, %d resends: want one order each, found again by its key",
			len(shop.orders), c.Confirmed, shop.replays, rep.Resends)
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log("\n" + string(b)); return len(b), nil }
