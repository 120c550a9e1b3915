package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/testdb"
)

// The HTTP edge end to end, against the real binary: what no request may do to the
// server, whichever route it picks (docs/security.md maps these to the OWASP API
// Security Top 10).

// raw sends a request exactly as given: target unescaped by the client, body as
// bytes, headers as key, value pairs.
func (a *agora) raw(method, target string, body []byte, headers ...string) reply {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.base+target, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: b}
}

// TestE2EValidationIsBounded sends the public sign-in routes a body with 80,000
// unknown properties, inside the 1 MiB limit. Each used to be answered with one error
// per property, each holding the whole body: 47 KB got 156 MB back. The answer is
// now a small 422. Secrets are never in an answer nor in the log, and a flood of bad
// bodies from one address is refused (429) before the server validates them.
func TestE2EValidationIsBounded(t *testing.T) {
	a := startAgora(t, t.TempDir())
	var body bytes.Buffer
	body.WriteString(`{"refresh_token":"x"`)
	for i := range 80_000 {
		fmt.Fprintf(&body, `,"k%d":0`, i)
	}
	body.WriteString("}")
	if body.Len() > 1<<20 {
		t.Fatalf("the body is %d bytes, over the default 1 MiB limit", body.Len())
	}
	for _, path := range []string{"/v1/auth/logout", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/register"} {
		start := time.Now()
		r := a.raw(http.MethodPost, path, body.Bytes())
		took := time.Since(start)
		r.wantProblem(t, http.StatusUnprocessableEntity)
		t.Logf("POST %s with 80,000 unknown properties (%d bytes): %d, %d-byte answer in %v", path, body.Len(), r.status, len(r.body), took)
		if len(r.body) > 8<<10 {
			t.Errorf("POST %s: the answer is %d bytes, want under 8 KiB", path, len(r.body))
		}
	}

	const password = "S3cret-and-Much-Too-Long-For-Anyone"
	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"password too long", "/v1/auth/login", `{"email":"a@example.com","password":"` + strings.Repeat(password, 5) + `"}`, 422},
		{"password too long, signing up", "/v1/auth/register", `{"email":"a@example.com","password":"` + strings.Repeat(password, 5) + `"}`, 422},
		{"a body that does not parse", "/v1/auth/login", `{"password":"` + password + `","email":`, 400},
		{"a password next to an unknown property", "/v1/auth/login", `{"email":"a@example.com","password":"` + password + `","x":1}`, 422},
	} {
		r := a.raw(http.MethodPost, tc.path, []byte(tc.body))
		r.wantProblem(t, tc.status)
		if bytes.Contains(r.body, []byte(password[:12])) {
			t.Errorf("%s: the answer shows the password: %s", tc.name, r.body)
		}
	}

	// The edge limit: 100 at once from one address, then 429 before any body work.
	var limited reply
	for i := 0; i < 200 && limited.status != http.StatusTooManyRequests; i++ {
		limited = a.raw(http.MethodPost, "/v1/auth/logout", []byte(`{"unknown":1}`))
	}
	limited.wantProblem(t, http.StatusTooManyRequests)
	if s, err := strconv.Atoi(limited.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("429 with Retry-After %q", limited.header.Get("Retry-After"))
	}

	a.stop()
	if out := a.stderr.String() + a.stdout.String(); strings.Contains(out, password[:12]) {
		t.Error("the log shows the password")
	}
}

// TestE2EBadTextOnEveryStore sends NUL and invalid UTF-8 in paths, queries, headers
// and bodies to routes that reach the store, on SQLite and on PostgreSQL. Each is a
// 400 problem from the edge: PostgreSQL used to answer 500 (it refuses NUL in text)
// and SQLite cut a search at the NUL, so "q=%00no-such-word" matched every product.
func TestE2EBadTextOnEveryStore(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(string(backend), func(t *testing.T) {
			var env []string
			if backend == testdb.Postgres {
				env = append(env, "AGORA_DATABASE_URL="+freshDatabase(t, testdb.PostgresURL(t)))
			}
			a := startAgora(t, t.TempDir(), env...)
			customer := signUpMany(t, newShop(t, func() string { return a.base }), 1)[0]
			asCustomer := []string{"Authorization", "Bearer " + customer}
			for _, tc := range []struct {
				name, method, target string
				body                 string
				headers              []string
				status               int
			}{
				{"NUL in a search", "GET", "/v1/products?q=%00", "", nil, 400},
				{"NUL before a search word", "GET", "/v1/products?q=%00no-such-word", "", nil, 400},
				{"invalid UTF-8 in a search", "GET", "/v1/products?q=caf%E9", "", nil, 400},
				{"NUL in a category", "GET", "/v1/products?category=books%00", "", nil, 400},
				{"NUL in an order id", "GET", "/v1/orders/%00", "", asCustomer, 400},
				{"NUL in an order stream id", "GET", "/v1/orders/%00/events", "", asCustomer, 400},
				{"invalid UTF-8 in an order stream id", "GET", "/v1/orders/%ff%fe/events", "", asCustomer, 400},
				{"an order stream id that is no UUID", "GET", "/v1/orders/not-a-uuid/events", "", asCustomer, 422},
				{"NUL in a product id", "GET", "/v1/products/%00", "", nil, 400},
				{"an escaped NUL in an email", "POST", "/v1/auth/login", `{"email":"a\u0000@example.com","password":"whatever-it-is"}`, nil, 400},
				{"invalid UTF-8 in a password", "POST", "/v1/auth/register", "{\"email\":\"b@example.com\",\"password\":\"caf\xe9-caf\xe9-caf\xe9\"}", nil, 400},
				{"an escaped NUL in a new product", "POST", "/v1/products", `{"sku":"NUL-1","name":"a\u0000b","price":{"amount":100,"currency":"EUR"}}`, a.admin(), 400},
				{"invalid UTF-8 in an Idempotency-Key", "POST", "/v1/orders", `{"payment_token":"tok_visa"}`, append([]string{"Idempotency-Key", "k\xff"}, asCustomer...), 400},
			} {
				var body []byte
				if tc.body != "" {
					body = []byte(tc.body)
				}
				r := a.raw(tc.method, tc.target, body, tc.headers...)
				if r.status != tc.status {
					t.Errorf("%s: %s %s = %d, want %d: %s", tc.name, tc.method, tc.target, r.status, tc.status, r.body)
					continue
				}
				r.wantProblem(t, tc.status)
			}
			// Searching still works, and finds nothing for a word no product has.
			var page productList
			a.raw("GET", "/v1/products?q=no-such-word", nil).want(t, http.StatusOK, &page)
			if len(page.Items) != 0 {
				t.Errorf("a search for no-such-word found %d products", len(page.Items))
			}
			if n := a.logged("request failed"); n != 0 {
				t.Errorf("%d requests failed with a 5xx", n)
			}
		})
	}
}

// TestE2EHeaders checks the headers of the answers a browser or a cache sees: no
// sniffing and no Referer everywhere, no-store on every personal or admin answer,
// the docs page's own policy, and problem+json for errors outside the API.
func TestE2EHeaders(t *testing.T) {
	a := startAgora(t, t.TempDir())
	customer := []string{"Authorization", "Bearer " + signUpMany(t, newShop(t, func() string { return a.base }), 1)[0]}
	var page productList
	a.do("GET", "/v1/products?limit=1", nil).want(t, http.StatusOK, &page)
	const someOrder = "0190a8b2-0000-7000-8000-000000000999"
	for _, tc := range []struct {
		method, path string
		headers      []string
		status       int
		noStore      bool
	}{
		{"GET", "/v1/products", nil, 200, false},
		{"GET", "/v1/products/" + page.Items[0].ID, nil, 200, false},
		{"GET", "/openapi.json", nil, 200, false},
		{"GET", "/healthz", nil, 200, false},
		{"GET", "/v1/me", customer, 200, true},
		{"GET", "/v1/me", nil, 401, true},
		{"GET", "/v1/cart", customer, 200, true},
		{"GET", "/v1/orders", customer, 200, true},
		{"GET", "/v1/orders/" + someOrder, customer, 404, true},
		{"GET", "/v1/notifications", customer, 200, true},
		{"GET", "/v1/payments/" + someOrder, a.admin(), 404, true},
		{"GET", "/v1/ops/orders", a.admin(), 200, true},
		{"GET", "/v1/ops/sagas", a.admin(), 200, true},
		{"GET", "/v1/ops/payment-provider", a.admin(), 200, true},
		{"GET", "/v1/users", a.admin(), 200, true},
		{"GET", "/v1/users", customer, 403, true},
		{"GET", "/v1/products", a.admin(), 200, true}, // an admin sees drafts: personal
		{"GET", "/docs/nope", nil, 404, false},
		{"POST", "/openapi.json", nil, 405, false},
		{"POST", "/docs", nil, 405, false},
		{"GET", "/nowhere", nil, 404, false},
	} {
		r := a.do(tc.method, tc.path, nil, tc.headers...)
		name := tc.method + " " + tc.path
		if r.status != tc.status {
			t.Errorf("%s: %d, want %d: %s", name, r.status, tc.status, r.body)
			continue
		}
		if tc.status >= 400 {
			r.wantProblem(t, tc.status)
		}
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", name, got)
		}
		if got := r.header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q, want no-referrer", name, got)
		}
		if tc.noStore && r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, r.header.Get("Cache-Control"))
		}
	}
	// The docs page keeps its own policies: a strict CSP, and same-origin so that
	// "Try it out" requests carry an Origin the API can check.
	r := a.do("GET", "/docs", nil)
	if r.status != 200 || !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") ||
		r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Referrer-Policy") != "same-origin" {
		t.Errorf("GET /docs: %d, CSP %q, Referrer-Policy %q", r.status, r.header.Get("Content-Security-Policy"), r.header.Get("Referrer-Policy"))
	}
}

// TestE2EAnotherCustomersOrder checks that another customer's order and an order
// that does not exist get the same answer, byte for byte once the ids are swapped,
// on every route that takes an order id.
func TestE2EAnotherCustomersOrder(t *testing.T) {
	a := startAgora(t, t.TempDir())
	s := newShop(t, func() string { return a.base })
	o := checkoutOnce(t, a, s, "oracle")
	other := []string{"Authorization", "Bearer " + signUpMany(t, s, 1)[0]}
	const unknown = "0190a8b2-0000-7000-8000-000000000999"
	for _, route := range []struct{ method, path string }{
		{"GET", "/v1/orders/{id}"},
		{"GET", "/v1/orders/{id}/events"},
		{"POST", "/v1/orders/{id}/cancel"},
	} {
		theirs := a.do(route.method, strings.Replace(route.path, "{id}", o.ID, 1), nil, other...)
		missing := a.do(route.method, strings.Replace(route.path, "{id}", unknown, 1), nil, other...)
		theirs.wantProblem(t, http.StatusNotFound)
		missing.wantProblem(t, http.StatusNotFound)
		if got := strings.ReplaceAll(string(theirs.body), o.ID, unknown); got != string(missing.body) {
			t.Errorf("%s %s: another customer's order answers %s; an unknown one %s", route.method, route.path, got, missing.body)
		}
	}
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(a.do("GET", "/v1/orders/"+o.ID, nil, other...).body, &p)
	if p.Type != "urn:agora:problem:orders.order_not_found" {
		t.Errorf("another customer's order: type %q", p.Type)
	}
}
