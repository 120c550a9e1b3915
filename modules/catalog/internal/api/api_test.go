package api_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/catalog/internal/api"
	"github.com/agora-commerce/agora/modules/catalog/internal/products"
)

const (
	maxBodyBytes = 1 << 20
	problemJSON  = "application/problem+json"
)

// keys sign the tests' access tokens; the API verifies with them.
var keys = auth.NewKeys(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))

// Access tokens for an admin and a customer, valid for the whole run, and an
// admin token that has expired.
var (
	adminToken    = issue("0190a8b2-0000-7000-8000-00000000ad01", "admin", time.Now(), time.Hour)
	customerToken = issue("0190a8b2-0000-7000-8000-00000000c001", "customer", time.Now(), time.Hour)
	expiredToken  = issue("0190a8b2-0000-7000-8000-00000000ad01", "admin", time.Now().Add(-time.Hour), 15*time.Minute)
)

func issue(userID, role string, now time.Time, ttl time.Duration) string {
	tok, err := keys.Issue(auth.Principal{UserID: userID, Role: role}, now, ttl)
	if err != nil {
		panic(err)
	}
	return tok
}

// bearer is an Authorization header with tok.
func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// plus returns h with the Authorization header of tok added.
func plus(h map[string]string, tok string) map[string]string {
	out := map[string]string{"Authorization": "Bearer " + tok}
	for k, v := range h {
		out[k] = v
	}
	return out
}

// errs collects every log record at error level, from the edge, the bus and huma's
// 5xx hook: a request that logs an error failed inside, whatever it answered.
var errs = testlog.New(slog.LevelError)

func TestMain(m *testing.M) {
	// huma's error constructor is package-global: install the hook once, before any
	// test builds an API.
	httpapi.InstallErrorHook(errs.Logger())
	os.Exit(m.Run())
}

// server is the catalog behind the real HTTP edge, on its own database.
type server struct {
	t       *testing.T
	host    *modhost.Host
	svc     *products.Service
	handler http.Handler
}

func newServer(t *testing.T) *server {
	t.Helper()
	log := errs.Logger()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	h, err := modhost.Open(t.Context(), cfg, "catalog", log)
	if err != nil {
		t.Fatalf("modhost.Open: %v", err)
	}
	t.Cleanup(func() { _ = h.DB.Close() })
	svc := products.NewService(h.DB, h.Outbox)
	b, err := bus.New(log, bus.Limits{}, nil, svc.Handlers(), nil)
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	a := httpapi.NewAPI(httpapi.Config{Verifier: keys, MaxBodyBytes: maxBodyBytes, MaxInFlight: 64, RequestTimeout: 5 * time.Second}, log)
	api.Routes(b)(a)
	errs.Take()
	t.Cleanup(func() {
		for _, r := range errs.Take() {
			t.Errorf("error logged: %s", r)
		}
	})
	return &server{t: t, host: h, svc: svc, handler: a.Handler()}
}

// in returns s for use by the (sub)test t.
func (s *server) in(t *testing.T) *server {
	c := *s
	c.t = t
	return &c
}

// req describes one HTTP request. body is sent as is when it is a string, else as
// JSON. admin and customer send that user's access token; header may set another.
type req struct {
	method, path string
	body         any
	admin        bool
	customer     bool
	header       map[string]string
}

func (s *server) do(r req) *httptest.ResponseRecorder {
	s.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("encode body: %v", err)
		}
		body = strings.NewReader(string(raw))
	}
	hr := httptest.NewRequestWithContext(s.t.Context(), r.method, r.path, body)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	switch {
	case r.admin:
		hr.Header.Set("Authorization", "Bearer "+adminToken)
	case r.customer:
		hr.Header.Set("Authorization", "Bearer "+customerToken)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, hr)
	return w
}

func decodeJSON[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, w.Body.String(), err)
	}
	return v
}

// create stores a product through the service; status archived archives it after.
func (s *server) create(i int, status catalog.Status) catalog.Product {
	s.t.Helper()
	c := productInput(i)
	if status != catalog.StatusArchived {
		c.Status = status
	}
	p, err := s.svc.Create(s.t.Context(), catalog.CreateProduct{SKU: c.SKU, Name: c.Name, Description: c.Description,
		Category: c.Category, Price: c.Price, Attributes: c.Attributes, ImageURL: c.ImageURL, Status: c.Status})
	if err != nil {
		s.t.Fatalf("Create: %v", err)
	}
	if status == catalog.StatusArchived {
		if p, err = s.svc.Archive(s.t.Context(), catalog.ArchiveProduct{ID: p.ID}); err != nil {
			s.t.Fatalf("Archive: %v", err)
		}
	}
	return p
}

// state is everything a failed write must leave as it was.
type state struct {
	Products []catalog.Product
	Outbox   int
}

func (s *server) state() state {
	s.t.Helper()
	page, err := s.svc.List(s.t.Context(), catalog.ListProducts{IncludeUnpublished: true})
	if err != nil {
		s.t.Fatalf("List: %v", err)
	}
	var n int
	if err := s.host.DB.GetContext(s.t.Context(), &n, `SELECT COUNT(*) FROM outbox`); err != nil {
		s.t.Fatalf("count outbox: %v", err)
	}
	return state{Products: page.Items, Outbox: n}
}

func productInput(i int) api.ProductInput {
	return api.ProductInput{
		SKU: fmt.Sprintf("TEE-%d", i), Name: fmt.Sprintf("Tee %d", i), Description: "cotton", Category: "apparel",
		Price:      catalog.Money{Amount: 1999, Currency: "EUR"},
		Attributes: map[string]string{"size": "M"}, ImageURL: "https://img.example.com/tee.png",
	}
}

func cursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestErrors(t *testing.T) {
	s := newServer(t)
	draft := s.create(1, catalog.StatusDraft)
	archived := s.create(2, catalog.StatusArchived)
	p := s.create(3, catalog.StatusActive)
	two := "Tee 3, second version"
	if _, err := s.svc.Update(t.Context(), catalog.UpdateProduct{ID: p.ID, ExpectedVersion: 1, Name: &two}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	// p is now at version 2: ETag "2".
	unknown := bus.NewID()
	pPath, archivePath := "/v1/products/"+p.ID, "/v1/products/"+p.ID+"/archive"
	current := map[string]string{"If-Match": `"2"`}

	withField := func(field string, v any) map[string]any {
		raw, _ := json.Marshal(productInput(99))
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		if v == nil {
			delete(m, field)
		} else {
			m[field] = v
		}
		return m
	}
	tooManyAttrs := map[string]string{}
	for i := range catalog.MaxAttributes + 1 {
		tooManyAttrs[fmt.Sprint("k", i)] = "v"
	}
	huge := withField("description", strings.Repeat("x", maxBodyBytes))
	dup := productInput(3) // p's SKU

	tests := []struct {
		name     string
		r        req
		status   int
		typ      string // the problem type, when it matters
		location string // a location the problem's errors must name
	}{
		// Reads.
		{"get unknown id", req{method: "GET", path: "/v1/products/" + unknown}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"get unknown id as admin", req{method: "GET", path: "/v1/products/" + unknown, admin: true}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"get draft without token", req{method: "GET", path: "/v1/products/" + draft.ID}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"get bad uuid", req{method: "GET", path: "/v1/products/not-a-uuid"}, 422, "", "path.id"},
		{"get with wrong token", req{method: "GET", path: pPath, header: map[string]string{"Authorization": "Bearer nope"}}, 401, "", ""},
		{"list with wrong token", req{method: "GET", path: "/v1/products", header: map[string]string{"Authorization": "Bearer nope"}}, 401, "", ""},
		{"get with expired admin token", req{method: "GET", path: pPath, header: bearer(expiredToken)}, 401, "", ""},
		{"list with expired admin token", req{method: "GET", path: "/v1/products", header: bearer(expiredToken)}, 401, "", ""},
		{"get draft as customer", req{method: "GET", path: "/v1/products/" + draft.ID, customer: true}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"list drafts as customer", req{method: "GET", path: "/v1/products?status=draft", customer: true}, 403, "", ""},
		{"list archived as customer", req{method: "GET", path: "/v1/products?status=archived", customer: true}, 403, "", ""},
		{"list cursor not base64", req{method: "GET", path: "/v1/products?cursor=!!!"}, 422, "", "query.cursor"},
		{"list cursor without prefix", req{method: "GET", path: "/v1/products?cursor=" + cursor(p.ID)}, 422, "", "query.cursor"},
		{"list cursor not a uuid", req{method: "GET", path: "/v1/products?cursor=" + cursor("p1.not-a-uuid")}, 422, "", "query.cursor"},
		{"list cursor with an injection", req{method: "GET", path: "/v1/products?cursor=" + cursor("p1.' OR 1=1 --")}, 422, "", "query.cursor"},
		{"list cursor too long", req{method: "GET", path: "/v1/products?cursor=" + strings.Repeat("A", 201)}, 422, "", "query.cursor"},
		{"list limit 0", req{method: "GET", path: "/v1/products?limit=0"}, 422, "", "query.limit"},
		{"list limit 101", req{method: "GET", path: "/v1/products?limit=101"}, 422, "", "query.limit"},
		{"list limit -1", req{method: "GET", path: "/v1/products?limit=-1"}, 422, "", "query.limit"},
		{"list limit not a number", req{method: "GET", path: "/v1/products?limit=ten"}, 422, "", "query.limit"},
		{"list drafts without token", req{method: "GET", path: "/v1/products?status=draft"}, 403, "", ""},
		{"list archived without token", req{method: "GET", path: "/v1/products?status=archived"}, 403, "", ""},
		{"list unknown status", req{method: "GET", path: "/v1/products?status=gone", admin: true}, 422, "", "query.status"},
		{"list bad category", req{method: "GET", path: "/v1/products?category=Apparel"}, 422, "", "query.category"},
		{"list query too long", req{method: "GET", path: "/v1/products?q=" + strings.Repeat("a", catalog.MaxQueryLen+1)}, 422, "", "query.q"},

		// Create.
		{"create without token", req{method: "POST", path: "/v1/products", body: productInput(99)}, 401, "", ""},
		{"create with wrong token", req{method: "POST", path: "/v1/products", body: productInput(99), header: map[string]string{"Authorization": "Bearer wrong"}}, 401, "", ""},
		{"create with token prefix of the right one", req{method: "POST", path: "/v1/products", body: productInput(99), header: map[string]string{"Authorization": "Bearer " + adminToken[:len(adminToken)-5]}}, 401, "", ""},
		{"create with basic auth", req{method: "POST", path: "/v1/products", body: productInput(99), header: map[string]string{"Authorization": "Basic " + adminToken}}, 401, "", ""},
		{"create with empty bearer", req{method: "POST", path: "/v1/products", body: productInput(99), header: map[string]string{"Authorization": "Bearer "}}, 401, "", ""},
		{"create as customer", req{method: "POST", path: "/v1/products", body: productInput(99), customer: true}, 403, "", ""},
		{"create with expired admin token", req{method: "POST", path: "/v1/products", body: productInput(99), header: bearer(expiredToken)}, 401, "", ""},
		{"create malformed JSON", req{method: "POST", path: "/v1/products", body: `{"sku": "X",`, admin: true}, 400, "", ""},
		{"create JSON array", req{method: "POST", path: "/v1/products", body: `[]`, admin: true}, 422, "", "body"},
		{"create without body", req{method: "POST", path: "/v1/products", admin: true}, 400, "", ""},
		{"create unknown field", req{method: "POST", path: "/v1/products", body: withField("colour", "red"), admin: true}, 422, "", "body.colour"},
		{"create without sku", req{method: "POST", path: "/v1/products", body: withField("sku", nil), admin: true}, 422, "", ""},
		{"create name of wrong type", req{method: "POST", path: "/v1/products", body: withField("name", 5), admin: true}, 422, "", "body.name"},
		{"create amount of wrong type", req{method: "POST", path: "/v1/products", body: withField("price", map[string]any{"amount": "ten", "currency": "EUR"}), admin: true}, 422, "", "body.price.amount"},
		{"create fractional amount", req{method: "POST", path: "/v1/products", body: withField("price", map[string]any{"amount": 1.5, "currency": "EUR"}), admin: true}, 422, "", "body.price.amount"},
		{"create negative amount", req{method: "POST", path: "/v1/products", body: withField("price", catalog.Money{Amount: -1, Currency: "EUR"}), admin: true}, 422, "", "body.price.amount"},
		{"create amount over the maximum", req{method: "POST", path: "/v1/products", body: withField("price", catalog.Money{Amount: 100_000_000_001, Currency: "EUR"}), admin: true}, 422, "", "body.price.amount"},
		{"create amount over int64", req{method: "POST", path: "/v1/products", body: withField("price", json.RawMessage(`{"amount": 99999999999999999999, "currency": "EUR"}`)), admin: true}, 422, "", "body.price.amount"},
		{"create bad currency", req{method: "POST", path: "/v1/products", body: withField("price", catalog.Money{Amount: 1, Currency: "eur"}), admin: true}, 422, "", "body.price.currency"},
		{"create bad sku", req{method: "POST", path: "/v1/products", body: withField("sku", "lower"), admin: true}, 422, "", "body.sku"},
		{"create empty name", req{method: "POST", path: "/v1/products", body: withField("name", ""), admin: true}, 422, "", "body.name"},
		{"create blank name", req{method: "POST", path: "/v1/products", body: withField("name", "   "), admin: true}, 422, "urn:agora:problem:catalog.invalid_product", "body.name"},
		{"create name with a control character", req{method: "POST", path: "/v1/products", body: withField("name", "Tee\u0007"), admin: true}, 422, "urn:agora:problem:catalog.invalid_product", "body.name"},
		{"create bad category", req{method: "POST", path: "/v1/products", body: withField("category", "Tops"), admin: true}, 422, "", "body.category"},
		{"create too many attributes", req{method: "POST", path: "/v1/products", body: withField("attributes", tooManyAttrs), admin: true}, 422, "urn:agora:problem:catalog.invalid_product", "body.attributes"},
		{"create attribute of wrong type", req{method: "POST", path: "/v1/products", body: withField("attributes", map[string]any{"size": 3}), admin: true}, 422, "", "body.attributes.size"},
		{"create ftp image", req{method: "POST", path: "/v1/products", body: withField("image_url", "ftp://img.example.com/a.png"), admin: true}, 422, "", "body.image_url"},
		{"create image that is no URL", req{method: "POST", path: "/v1/products", body: withField("image_url", "not a url"), admin: true}, 422, "", "body.image_url"},
		{"create archived", req{method: "POST", path: "/v1/products", body: withField("status", "archived"), admin: true}, 422, "", "body.status"},
		{"create unknown status", req{method: "POST", path: "/v1/products", body: withField("status", "live"), admin: true}, 422, "", "body.status"},
		{"create oversized body", req{method: "POST", path: "/v1/products", body: huge, admin: true}, 413, "", ""},
		{"create duplicate sku", req{method: "POST", path: "/v1/products", body: dup, admin: true}, 409, "urn:agora:problem:catalog.sku_taken", "body.sku"},

		// Update.
		{"patch without token", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, header: current}, 401, "", ""},
		{"patch with wrong token", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, header: map[string]string{"If-Match": `"2"`, "Authorization": "Bearer wrong"}}, 401, "", ""},
		{"patch as customer", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, customer: true, header: current}, 403, "", ""},
		{"patch with expired admin token", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, header: plus(current, expiredToken)}, 401, "", ""},
		{"patch without If-Match", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, admin: true}, 428, "", "header.If-Match"},
		{"patch with stale If-Match", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, admin: true, header: map[string]string{"If-Match": `"1"`}}, 412, "urn:agora:problem:catalog.version_mismatch", ""},
		{"patch with future If-Match", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, admin: true, header: map[string]string{"If-Match": `"3"`}}, 412, "urn:agora:problem:catalog.version_mismatch", ""},
		{"patch with garbage If-Match", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, admin: true, header: map[string]string{"If-Match": "garbage"}}, 412, "", "header.If-Match"},
		{"patch with unquoted If-Match", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, admin: true, header: map[string]string{"If-Match": "2"}}, 412, "", "header.If-Match"},
		{"patch with If-Match zero", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, admin: true, header: map[string]string{"If-Match": `"0"`}}, 412, "", "header.If-Match"},
		{"patch with negative If-Match", req{method: "PATCH", path: pPath, body: `{"name":"x"}`, admin: true, header: map[string]string{"If-Match": `"-2"`}}, 412, "", "header.If-Match"},
		{"patch unknown id", req{method: "PATCH", path: "/v1/products/" + unknown, body: `{"name":"x"}`, admin: true, header: current}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"patch bad uuid", req{method: "PATCH", path: "/v1/products/nope", body: `{"name":"x"}`, admin: true, header: current}, 422, "", "path.id"},
		{"patch archived", req{method: "PATCH", path: "/v1/products/" + archived.ID, body: `{"name":"x"}`, admin: true, header: map[string]string{"If-Match": fmt.Sprintf(`"%d"`, archived.Version)}}, 409, "urn:agora:problem:catalog.archived", ""},
		{"patch to archived", req{method: "PATCH", path: pPath, body: `{"status":"archived"}`, admin: true, header: current}, 422, "", "body.status"},
		{"patch malformed JSON", req{method: "PATCH", path: pPath, body: `{"name":`, admin: true, header: current}, 400, "", ""},
		{"patch unknown field", req{method: "PATCH", path: pPath, body: `{"nmae":"x"}`, admin: true, header: current}, 422, "", "body.nmae"},
		{"patch name of wrong type", req{method: "PATCH", path: pPath, body: `{"name":["x"]}`, admin: true, header: current}, 422, "", "body.name"},
		{"patch empty name", req{method: "PATCH", path: pPath, body: `{"name":""}`, admin: true, header: current}, 422, "", "body.name"},
		{"patch blank name", req{method: "PATCH", path: pPath, body: `{"name":" "}`, admin: true, header: current}, 422, "urn:agora:problem:catalog.invalid_product", "body.name"},
		{"patch bad currency", req{method: "PATCH", path: pPath, body: `{"price":{"amount":1,"currency":"E"}}`, admin: true, header: current}, 422, "", "body.price.currency"},
		{"patch negative amount", req{method: "PATCH", path: pPath, body: `{"price":{"amount":-1,"currency":"EUR"}}`, admin: true, header: current}, 422, "", "body.price.amount"},
		{"patch oversized body", req{method: "PATCH", path: pPath, body: huge, admin: true, header: current}, 413, "", ""},

		// Archive.
		{"archive without token", req{method: "POST", path: archivePath}, 401, "", ""},
		{"archive with wrong token", req{method: "POST", path: archivePath, header: map[string]string{"Authorization": "Bearer wrong"}}, 401, "", ""},
		{"archive as customer", req{method: "POST", path: archivePath, customer: true, header: current}, 403, "", ""},
		{"archive with expired admin token", req{method: "POST", path: archivePath, header: plus(current, expiredToken)}, 401, "", ""},
		{"archive with stale If-Match", req{method: "POST", path: archivePath, admin: true, header: map[string]string{"If-Match": `"1"`}}, 412, "urn:agora:problem:catalog.version_mismatch", ""},
		{"archive with garbage If-Match", req{method: "POST", path: archivePath, admin: true, header: map[string]string{"If-Match": "v2"}}, 412, "", "header.If-Match"},
		{"archive unknown id", req{method: "POST", path: "/v1/products/" + unknown + "/archive", admin: true}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"archive bad uuid", req{method: "POST", path: "/v1/products/x/archive", admin: true}, 422, "", "path.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s.in(t)
			before := s.state()
			w := s.do(tt.r)

			if w.Code != tt.status {
				t.Errorf("status = %d, want %d; body %s", w.Code, tt.status, w.Body.String())
			}
			if w.Code >= 500 {
				t.Fatalf("a client error answered %d", w.Code)
			}
			if ct := w.Header().Get("Content-Type"); ct != problemJSON {
				t.Errorf("Content-Type = %q, want %s", ct, problemJSON)
			}
			prob := decodeJSON[huma.ErrorModel](t, w)
			if prob.Status != w.Code {
				t.Errorf("problem status %d, response status %d", prob.Status, w.Code)
			}
			if tt.typ != "" && prob.Type != tt.typ {
				t.Errorf("problem type = %q, want %q", prob.Type, tt.typ)
			}
			if tt.location != "" && !slices.ContainsFunc(prob.Errors, func(d *huma.ErrorDetail) bool { return d.Location == tt.location }) {
				t.Errorf("problem errors do not name %s: %s", tt.location, w.Body.String())
			}
			if w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
			if diff := cmp.Diff(before, s.state()); diff != "" {
				t.Errorf("the failed request changed state (-before +after):\n%s", diff)
			}
		})
	}
}

func TestCreateAndGet(t *testing.T) {
	s := newServer(t)
	in := productInput(1)
	w := s.do(req{method: "POST", path: "/v1/products", body: in, admin: true})
	if w.Code != http.StatusCreated {
		t.Fatalf("create: status %d, body %s", w.Code, w.Body.String())
	}
	p := decodeJSON[catalog.Product](t, w)
	want := catalog.Product{ID: p.ID, SKU: in.SKU, Name: in.Name, Description: in.Description, Category: in.Category,
		Price: in.Price, Attributes: in.Attributes, ImageURL: in.ImageURL, Status: catalog.StatusDraft, Version: 1,
		CreatedAt: p.CreatedAt, UpdatedAt: p.CreatedAt, Availability: &catalog.Availability{Status: catalog.AvailabilityUnknown}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("created product (-want +got):\n%s", diff)
	}
	if got, want := w.Header().Get("Location"), "/v1/products/"+p.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if got := w.Header().Get("ETag"); got != `"1"` {
		t.Errorf("ETag = %q, want \"1\"", got)
	}
	if got := s.state(); got.Outbox != 1 || len(got.Products) != 1 {
		t.Errorf("after create: %d products, %d outbox rows; want 1 and 1", len(got.Products), got.Outbox)
	}

	// The draft: admins see it, the public does not.
	w = s.do(req{method: "GET", path: "/v1/products/" + p.ID, admin: true})
	if w.Code != http.StatusOK {
		t.Fatalf("admin get draft: status %d, body %s", w.Code, w.Body.String())
	}
	if diff := cmp.Diff(p, decodeJSON[catalog.Product](t, w)); diff != "" {
		t.Errorf("admin get (-created +got):\n%s", diff)
	}
	if got := w.Header().Get("ETag"); got != `"1"` {
		t.Errorf("get ETag = %q, want \"1\"", got)
	}
	if w = s.do(req{method: "GET", path: "/v1/products/" + p.ID}); w.Code != http.StatusNotFound {
		t.Errorf("public get draft: status %d, want 404", w.Code)
	}
	if w = s.do(req{method: "GET", path: "/v1/products/" + p.ID, customer: true}); w.Code != http.StatusNotFound {
		t.Errorf("customer get draft: status %d, want 404", w.Code)
	}

	// Created active, and without optional fields.
	w = s.do(req{method: "POST", path: "/v1/products", admin: true,
		body: `{"sku":"MUG","name":"Mug","price":{"amount":0,"currency":"USD"},"status":"active"}`})
	if w.Code != http.StatusCreated {
		t.Fatalf("create minimal: status %d, body %s", w.Code, w.Body.String())
	}
	mug := decodeJSON[catalog.Product](t, w)
	if mug.Status != catalog.StatusActive || mug.Attributes == nil || len(mug.Attributes) != 0 || mug.Category != "" {
		t.Errorf("minimal product = %+v", mug)
	}
	if w = s.do(req{method: "GET", path: "/v1/products/" + mug.ID}); w.Code != http.StatusOK {
		t.Errorf("public get active: status %d, want 200", w.Code)
	}
}

func TestGetConditional(t *testing.T) {
	s := newServer(t)
	p := s.create(1, catalog.StatusActive)
	path := "/v1/products/" + p.ID

	tests := []struct {
		ifNoneMatch string
		status      int
	}{
		{"", 200},
		{`"1"`, 304},
		{`W/"1"`, 304},
		{`"0", "1"`, 304},
		{`*`, 304},
		{`"2"`, 200},
		{`1`, 200},
		{`"10"`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.ifNoneMatch, func(t *testing.T) {
			w := s.do(req{method: "GET", path: path, header: map[string]string{"If-None-Match": tt.ifNoneMatch}})
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.status, w.Body.String())
			}
			if tt.status == http.StatusNotModified && w.Body.Len() != 0 {
				t.Errorf("304 with a body: %q", w.Body.String())
			}
			if tt.status == http.StatusOK {
				if got := w.Header().Get("ETag"); got != `"1"` {
					t.Errorf("ETag = %q, want \"1\"", got)
				}
				if got := decodeJSON[catalog.Product](t, w); got.ID != p.ID {
					t.Errorf("got product %s, want %s", got.ID, p.ID)
				}
			}
		})
	}

	// After a change the old ETag no longer matches.
	name := "changed"
	if _, err := s.svc.Update(t.Context(), catalog.UpdateProduct{ID: p.ID, ExpectedVersion: 1, Name: &name}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	w := s.do(req{method: "GET", path: path, header: map[string]string{"If-None-Match": `"1"`}})
	if w.Code != http.StatusOK || w.Header().Get("ETag") != `"2"` {
		t.Errorf("after a change: status %d, ETag %q; want 200 and \"2\"", w.Code, w.Header().Get("ETag"))
	}
}

func TestPatch(t *testing.T) {
	s := newServer(t)
	p := s.create(1, catalog.StatusDraft)
	path := "/v1/products/" + p.ID

	w := s.do(req{method: "PATCH", path: path, admin: true, header: map[string]string{"If-Match": `"1"`},
		body: `{"name":"Renamed","price":{"amount":2500,"currency":"EUR"},"status":"active","attributes":{"colour":"red"}}`})
	if w.Code != http.StatusOK {
		t.Fatalf("patch: status %d, body %s", w.Code, w.Body.String())
	}
	if got := w.Header().Get("ETag"); got != `"2"` {
		t.Errorf("ETag = %q, want \"2\"", got)
	}
	got := decodeJSON[catalog.Product](t, w)
	want := p
	want.Name, want.Price, want.Status, want.Attributes = "Renamed", catalog.Money{Amount: 2500, Currency: "EUR"}, catalog.StatusActive, map[string]string{"colour": "red"}
	want.Version, want.UpdatedAt = 2, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patched product (-want +got):\n%s", diff)
	}
	// Fields not sent are kept; the public now sees it.
	w = s.do(req{method: "GET", path: path})
	if w.Code != http.StatusOK {
		t.Fatalf("get: status %d", w.Code)
	}
	if diff := cmp.Diff(got, decodeJSON[catalog.Product](t, w)); diff != "" {
		t.Errorf("stored product (-patched +stored):\n%s", diff)
	}

	var types []string
	if err := s.host.DB.SelectContext(t.Context(), &types, `SELECT type FROM outbox ORDER BY rowid`); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"catalog.ProductCreated", "catalog.ProductUpdated", "catalog.PriceChanged"}, types); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}

	// The ETag from the answer is the one to send next; the old one is now stale.
	w = s.do(req{method: "PATCH", path: path, admin: true, header: map[string]string{"If-Match": `"1"`}, body: `{"name":"Lost"}`})
	if w.Code != http.StatusPreconditionFailed {
		t.Errorf("patch with the old ETag: status %d, want 412", w.Code)
	}
	w = s.do(req{method: "PATCH", path: path, admin: true, header: map[string]string{"If-Match": `W/"2"`}, body: `{}`})
	if w.Code != http.StatusPreconditionFailed {
		t.Errorf("patch with a weak ETag: status %d, want 412 (If-Match compares strongly)", w.Code)
	}
	w = s.do(req{method: "PATCH", path: path, admin: true, header: map[string]string{"If-Match": ` "2" `}, body: `{"description":""}`})
	if w.Code != http.StatusOK || w.Header().Get("ETag") != `"3"` {
		t.Errorf("patch with the current ETag: status %d, ETag %q; want 200 and \"3\"", w.Code, w.Header().Get("ETag"))
	}
}

func TestListPagination(t *testing.T) {
	s := newServer(t)
	var active, all, drafts []string
	for i := range 10 {
		status := catalog.StatusActive
		switch i {
		case 2, 6:
			status = catalog.StatusDraft
		case 4:
			status = catalog.StatusArchived
		}
		p := s.create(i, status)
		all = append(all, p.ID)
		switch status {
		case catalog.StatusActive:
			active = append(active, p.ID)
		case catalog.StatusDraft:
			drafts = append(drafts, p.ID)
		}
	}

	tests := []struct {
		name  string
		query string
		admin bool
		want  []string
	}{
		{"public, one by one", "limit=1", false, active},
		{"public, by three", "limit=3", false, active},
		{"public, exactly one page", "limit=7", false, active},
		{"public, default limit", "", false, active},
		{"public, in a category", "category=apparel&limit=2", false, active},
		{"public, asking for active", "status=active&limit=4", false, active},
		{"public, with a search matching all", "q=TEE&limit=2", false, active},
		{"public, with a search matching none", "q=zebra&limit=2", false, nil},
		{"admin sees every status", "limit=4", true, all},
		{"admin, drafts", "status=draft&limit=1", true, drafts},
	}
	// A signed-in customer sees what the public sees.
	w := s.do(req{method: "GET", path: "/v1/products?limit=100", customer: true})
	if w.Code != http.StatusOK {
		t.Fatalf("customer list: status %d, body %s", w.Code, w.Body.String())
	}
	var customerSees []string
	for _, p := range decodeJSON[api.ProductList](t, w).Items {
		customerSees = append(customerSees, p.ID)
	}
	if diff := cmp.Diff(active, customerSees); diff != "" {
		t.Errorf("customer list (-active +got):\n%s", diff)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			path := "/v1/products?" + tt.query
			for pages := 0; ; pages++ {
				if pages > len(all)+1 {
					t.Fatalf("pagination does not end; visited %d", len(got))
				}
				w := s.do(req{method: "GET", path: path, admin: tt.admin})
				if w.Code != http.StatusOK {
					t.Fatalf("GET %s: status %d, body %s", path, w.Code, w.Body.String())
				}
				if !strings.Contains(w.Body.String(), `"items":[`) {
					t.Errorf("items is not an array: %s", w.Body.String())
				}
				page := decodeJSON[api.ProductList](t, w)
				for _, p := range page.Items {
					got = append(got, p.ID)
				}
				link := w.Header().Get("Link")
				if page.NextCursor == "" {
					if link != "" {
						t.Errorf("last page has Link %q", link)
					}
					break
				}
				// The Link header leads to the same next page, keeping the filters.
				q := url.Values{}
				if tt.query != "" {
					q, _ = url.ParseQuery(tt.query)
				}
				q.Set("cursor", page.NextCursor)
				if q.Get("limit") == "" {
					q.Set("limit", "20")
				}
				if wantLink := fmt.Sprintf(`</v1/products?%s>; rel="next"`, q.Encode()); link != wantLink {
					t.Errorf("Link = %q, want %q", link, wantLink)
				}
				path = "/v1/products?" + q.Encode()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ids over all pages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestArchive(t *testing.T) {
	s := newServer(t)
	p := s.create(1, catalog.StatusActive)
	path := "/v1/products/" + p.ID

	w := s.do(req{method: "POST", path: path + "/archive", admin: true, header: map[string]string{"If-Match": `"1"`}})
	if w.Code != http.StatusOK {
		t.Fatalf("archive: status %d, body %s", w.Code, w.Body.String())
	}
	got := decodeJSON[catalog.Product](t, w)
	if got.Status != catalog.StatusArchived || got.Version != 2 || w.Header().Get("ETag") != `"2"` {
		t.Errorf("archived: status %s, version %d, ETag %q", got.Status, got.Version, w.Header().Get("ETag"))
	}

	// Still readable by id, by anyone.
	w = s.do(req{method: "GET", path: path})
	if w.Code != http.StatusOK {
		t.Fatalf("get archived: status %d, body %s", w.Code, w.Body.String())
	}
	if diff := cmp.Diff(got, decodeJSON[catalog.Product](t, w)); diff != "" {
		t.Errorf("get archived (-archived +got):\n%s", diff)
	}
	// No longer listed publicly; listed for admins asking for archived.
	if page := decodeJSON[api.ProductList](t, s.do(req{method: "GET", path: "/v1/products"})); len(page.Items) != 0 {
		t.Errorf("public list shows %d products, want 0", len(page.Items))
	}
	if page := decodeJSON[api.ProductList](t, s.do(req{method: "GET", path: "/v1/products?status=archived", admin: true})); len(page.Items) != 1 {
		t.Errorf("admin list of archived shows %d products, want 1", len(page.Items))
	}

	// Archiving again is not an error and changes nothing.
	before := s.state()
	for _, h := range []map[string]string{nil, {"If-Match": `"2"`}} {
		w = s.do(req{method: "POST", path: path + "/archive", admin: true, header: h})
		if w.Code != http.StatusOK {
			t.Fatalf("archive again (%v): status %d, body %s", h, w.Code, w.Body.String())
		}
		if diff := cmp.Diff(got, decodeJSON[catalog.Product](t, w)); diff != "" {
			t.Errorf("archive again (-first +again):\n%s", diff)
		}
	}
	if diff := cmp.Diff(before, s.state()); diff != "" {
		t.Errorf("archiving again changed state (-before +after):\n%s", diff)
	}
}
