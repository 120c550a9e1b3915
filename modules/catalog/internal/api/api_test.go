package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
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
	"github.com/agora-commerce/agora/modules/catalog/internal/api"
	"github.com/agora-commerce/agora/modules/catalog/internal/products"
	"github.com/agora-commerce/agora/modules/inventory"
)

// Access tokens for an admin and a customer, valid for the whole run, and an
// admin token that has expired.
var (
	adminToken    = apitest.Token("0190a8b2-0000-7000-8000-00000000ad01", "admin")
	customerToken = apitest.Token("0190a8b2-0000-7000-8000-00000000c001", "customer")
	expiredToken  = apitest.ExpiredToken("0190a8b2-0000-7000-8000-00000000ad01", "admin")
)

// req is one request to the server.
type req = apitest.Request

// server is the catalog behind the real HTTP edge, on its own database.
type server struct {
	*apitest.Server
	host *modhost.Host
	svc  *products.Service
	// stockVersion is the inventory version of the last stockChanged.
	stockVersion int64
}

func newServer(t *testing.T) *server {
	t.Helper()
	log := apitest.Logger()
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
	return &server{Server: apitest.New(t, api.Routes(b)), host: h, svc: svc}
}

// stockChanged delivers inventory's StockChanged for p to the catalog, as the bus
// would: available units, at a newer stock version each time.
func (s *server) stockChanged(t *testing.T, p catalog.Product, available int64) {
	t.Helper()
	s.stockVersion++
	payload, err := json.Marshal(inventory.StockChanged{Item: inventory.Item{SKU: p.SKU, ProductID: p.ID,
		OnHand: available, Available: available, Version: s.stockVersion, UpdatedAt: time.Now().UTC()}})
	if err != nil {
		t.Fatal(err)
	}
	env := message.Envelope{ID: bus.NewID(), Type: inventory.StockChangedEvent.Name(), Kind: message.KindEvent,
		Time: time.Now().UTC(), Payload: payload}
	if err := s.svc.Subscriptions()[0].Handle(t.Context(), env); err != nil {
		t.Fatalf("StockChanged: %v", err)
	}
}

// create stores a product through the service; status archived archives it after.
func (s *server) create(t *testing.T, i int, status catalog.Status) catalog.Product {
	t.Helper()
	c := productInput(i)
	if status != catalog.StatusArchived {
		c.Status = status
	}
	p, err := s.svc.Create(t.Context(), catalog.CreateProduct{SKU: c.SKU, Name: c.Name, Description: c.Description,
		Category: c.Category, Price: c.Price, Attributes: c.Attributes, ImageURL: c.ImageURL, Status: c.Status})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if status == catalog.StatusArchived {
		if p, err = s.svc.Archive(t.Context(), catalog.ArchiveProduct{ID: p.ID}); err != nil {
			t.Fatalf("Archive: %v", err)
		}
	}
	return p
}

// state is everything a failed write must leave as it was.
type state struct {
	Products []catalog.Product
	Outbox   int
}

func (s *server) state(t *testing.T) state {
	t.Helper()
	page, err := s.svc.List(t.Context(), catalog.ListProducts{IncludeUnpublished: true})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var n int
	if err := s.host.DB.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM outbox`); err != nil {
		t.Fatalf("count outbox: %v", err)
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
	draft := s.create(t, 1, catalog.StatusDraft)
	archived := s.create(t, 2, catalog.StatusArchived)
	p := s.create(t, 3, catalog.StatusActive)
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
	huge := withField("description", strings.Repeat("x", apitest.MaxBodyBytes))
	dup := productInput(3) // p's SKU

	tests := []struct {
		name     string
		r        req
		status   int
		typ      string // the problem type, when it matters
		location string // a location the problem's errors must name
	}{
		// Reads.
		{"get unknown id", req{Method: "GET", Path: "/v1/products/" + unknown}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"get unknown id as admin", req{Method: "GET", Path: "/v1/products/" + unknown, Token: adminToken}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"get draft without token", req{Method: "GET", Path: "/v1/products/" + draft.ID}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"get bad uuid", req{Method: "GET", Path: "/v1/products/not-a-uuid"}, 422, "", "path.id"},
		{"get with wrong token", req{Method: "GET", Path: pPath, Header: map[string]string{"Authorization": "Bearer nope"}}, 401, "", ""},
		{"list with wrong token", req{Method: "GET", Path: "/v1/products", Header: map[string]string{"Authorization": "Bearer nope"}}, 401, "", ""},
		{"get with expired admin token", req{Method: "GET", Path: pPath, Token: expiredToken}, 401, "", ""},
		{"list with expired admin token", req{Method: "GET", Path: "/v1/products", Token: expiredToken}, 401, "", ""},
		{"get draft as customer", req{Method: "GET", Path: "/v1/products/" + draft.ID, Token: customerToken}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"list drafts as customer", req{Method: "GET", Path: "/v1/products?status=draft", Token: customerToken}, 403, "", ""},
		{"list archived as customer", req{Method: "GET", Path: "/v1/products?status=archived", Token: customerToken}, 403, "", ""},
		{"list cursor not base64", req{Method: "GET", Path: "/v1/products?cursor=!!!"}, 422, "", "query.cursor"},
		{"list cursor without prefix", req{Method: "GET", Path: "/v1/products?cursor=" + cursor(p.ID)}, 422, "", "query.cursor"},
		{"list cursor not a uuid", req{Method: "GET", Path: "/v1/products?cursor=" + cursor("p1.not-a-uuid")}, 422, "", "query.cursor"},
		{"list cursor with an injection", req{Method: "GET", Path: "/v1/products?cursor=" + cursor("p1.' OR 1=1 --")}, 422, "", "query.cursor"},
		{"list cursor too long", req{Method: "GET", Path: "/v1/products?cursor=" + strings.Repeat("A", 201)}, 422, "", "query.cursor"},
		{"list limit 0", req{Method: "GET", Path: "/v1/products?limit=0"}, 422, "", "query.limit"},
		{"list limit 101", req{Method: "GET", Path: "/v1/products?limit=101"}, 422, "", "query.limit"},
		{"list limit -1", req{Method: "GET", Path: "/v1/products?limit=-1"}, 422, "", "query.limit"},
		{"list limit not a number", req{Method: "GET", Path: "/v1/products?limit=ten"}, 422, "", "query.limit"},
		{"list drafts without token", req{Method: "GET", Path: "/v1/products?status=draft"}, 403, "", ""},
		{"list archived without token", req{Method: "GET", Path: "/v1/products?status=archived"}, 403, "", ""},
		{"list unknown status", req{Method: "GET", Path: "/v1/products?status=gone", Token: adminToken}, 422, "", "query.status"},
		{"list bad category", req{Method: "GET", Path: "/v1/products?category=Apparel"}, 422, "", "query.category"},
		{"list query too long", req{Method: "GET", Path: "/v1/products?q=" + strings.Repeat("a", catalog.MaxQueryLen+1)}, 422, "", "query.q"},

		// Create.
		{"create without token", req{Method: "POST", Path: "/v1/products", Body: productInput(99)}, 401, "", ""},
		{"create with wrong token", req{Method: "POST", Path: "/v1/products", Body: productInput(99), Header: map[string]string{"Authorization": "Bearer wrong"}}, 401, "", ""},
		{"create with token prefix of the right one", req{Method: "POST", Path: "/v1/products", Body: productInput(99), Header: map[string]string{"Authorization": "Bearer " + adminToken[:len(adminToken)-5]}}, 401, "", ""},
		{"create with basic auth", req{Method: "POST", Path: "/v1/products", Body: productInput(99), Header: map[string]string{"Authorization": "Basic " + adminToken}}, 401, "", ""},
		{"create with empty bearer", req{Method: "POST", Path: "/v1/products", Body: productInput(99), Header: map[string]string{"Authorization": "Bearer "}}, 401, "", ""},
		{"create as customer", req{Method: "POST", Path: "/v1/products", Body: productInput(99), Token: customerToken}, 403, "", ""},
		{"create with expired admin token", req{Method: "POST", Path: "/v1/products", Body: productInput(99), Token: expiredToken}, 401, "", ""},
		{"create malformed JSON", req{Method: "POST", Path: "/v1/products", Body: `{"sku": "X",`, Token: adminToken}, 400, "", ""},
		{"create JSON array", req{Method: "POST", Path: "/v1/products", Body: `[]`, Token: adminToken}, 422, "", "body"},
		{"create without body", req{Method: "POST", Path: "/v1/products", Token: adminToken}, 400, "", ""},
		{"create unknown field", req{Method: "POST", Path: "/v1/products", Body: withField("colour", "red"), Token: adminToken}, 422, "", "body.colour"},
		{"create without sku", req{Method: "POST", Path: "/v1/products", Body: withField("sku", nil), Token: adminToken}, 422, "", ""},
		{"create name of wrong type", req{Method: "POST", Path: "/v1/products", Body: withField("name", 5), Token: adminToken}, 422, "", "body.name"},
		{"create amount of wrong type", req{Method: "POST", Path: "/v1/products", Body: withField("price", map[string]any{"amount": "ten", "currency": "EUR"}), Token: adminToken}, 422, "", "body.price.amount"},
		{"create fractional amount", req{Method: "POST", Path: "/v1/products", Body: withField("price", map[string]any{"amount": 1.5, "currency": "EUR"}), Token: adminToken}, 422, "", "body.price.amount"},
		{"create negative amount", req{Method: "POST", Path: "/v1/products", Body: withField("price", catalog.Money{Amount: -1, Currency: "EUR"}), Token: adminToken}, 422, "", "body.price.amount"},
		{"create amount over the maximum", req{Method: "POST", Path: "/v1/products", Body: withField("price", catalog.Money{Amount: 100_000_000_001, Currency: "EUR"}), Token: adminToken}, 422, "", "body.price.amount"},
		{"create amount over int64", req{Method: "POST", Path: "/v1/products", Body: withField("price", json.RawMessage(`{"amount": 99999999999999999999, "currency": "EUR"}`)), Token: adminToken}, 422, "", "body.price.amount"},
		{"create bad currency", req{Method: "POST", Path: "/v1/products", Body: withField("price", catalog.Money{Amount: 1, Currency: "eur"}), Token: adminToken}, 422, "", "body.price.currency"},
		{"create bad sku", req{Method: "POST", Path: "/v1/products", Body: withField("sku", "lower"), Token: adminToken}, 422, "", "body.sku"},
		{"create empty name", req{Method: "POST", Path: "/v1/products", Body: withField("name", ""), Token: adminToken}, 422, "", "body.name"},
		{"create blank name", req{Method: "POST", Path: "/v1/products", Body: withField("name", "   "), Token: adminToken}, 422, "urn:agora:problem:catalog.invalid_product", "body.name"},
		{"create name with a control character", req{Method: "POST", Path: "/v1/products", Body: withField("name", "Tee\u0007"), Token: adminToken}, 422, "urn:agora:problem:catalog.invalid_product", "body.name"},
		{"create bad category", req{Method: "POST", Path: "/v1/products", Body: withField("category", "Tops"), Token: adminToken}, 422, "", "body.category"},
		{"create too many attributes", req{Method: "POST", Path: "/v1/products", Body: withField("attributes", tooManyAttrs), Token: adminToken}, 422, "urn:agora:problem:catalog.invalid_product", "body.attributes"},
		{"create attribute of wrong type", req{Method: "POST", Path: "/v1/products", Body: withField("attributes", map[string]any{"size": 3}), Token: adminToken}, 422, "", "body.attributes.size"},
		{"create ftp image", req{Method: "POST", Path: "/v1/products", Body: withField("image_url", "ftp://img.example.com/a.png"), Token: adminToken}, 422, "", "body.image_url"},
		{"create image that is no URL", req{Method: "POST", Path: "/v1/products", Body: withField("image_url", "not a url"), Token: adminToken}, 422, "", "body.image_url"},
		{"create archived", req{Method: "POST", Path: "/v1/products", Body: withField("status", "archived"), Token: adminToken}, 422, "", "body.status"},
		{"create unknown status", req{Method: "POST", Path: "/v1/products", Body: withField("status", "live"), Token: adminToken}, 422, "", "body.status"},
		{"create oversized body", req{Method: "POST", Path: "/v1/products", Body: huge, Token: adminToken}, 413, "", ""},
		{"create duplicate sku", req{Method: "POST", Path: "/v1/products", Body: dup, Token: adminToken}, 409, "urn:agora:problem:catalog.sku_taken", "body.sku"},

		// Update.
		{"patch without token", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Header: current}, 401, "", ""},
		{"patch with wrong token", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Header: map[string]string{"If-Match": `"2"`, "Authorization": "Bearer wrong"}}, 401, "", ""},
		{"patch as customer", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Token: customerToken, Header: current}, 403, "", ""},
		{"patch with expired admin token", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Token: expiredToken, Header: current}, 401, "", ""},
		{"patch without If-Match", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Token: adminToken}, 428, "", "header.If-Match"},
		{"patch with stale If-Match", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Token: adminToken, Header: map[string]string{"If-Match": `"1"`}}, 412, "urn:agora:problem:catalog.version_mismatch", ""},
		{"patch with future If-Match", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Token: adminToken, Header: map[string]string{"If-Match": `"3"`}}, 412, "urn:agora:problem:catalog.version_mismatch", ""},
		{"patch with garbage If-Match", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Token: adminToken, Header: map[string]string{"If-Match": "garbage"}}, 412, "", "header.If-Match"},
		{"patch with unquoted If-Match", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Token: adminToken, Header: map[string]string{"If-Match": "2"}}, 412, "", "header.If-Match"},
		{"patch with If-Match zero", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Token: adminToken, Header: map[string]string{"If-Match": `"0"`}}, 412, "", "header.If-Match"},
		{"patch with negative If-Match", req{Method: "PATCH", Path: pPath, Body: `{"name":"x"}`, Token: adminToken, Header: map[string]string{"If-Match": `"-2"`}}, 412, "", "header.If-Match"},
		{"patch unknown id", req{Method: "PATCH", Path: "/v1/products/" + unknown, Body: `{"name":"x"}`, Token: adminToken, Header: current}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"patch bad uuid", req{Method: "PATCH", Path: "/v1/products/nope", Body: `{"name":"x"}`, Token: adminToken, Header: current}, 422, "", "path.id"},
		{"patch archived", req{Method: "PATCH", Path: "/v1/products/" + archived.ID, Body: `{"name":"x"}`, Token: adminToken, Header: map[string]string{"If-Match": fmt.Sprintf(`"%d"`, archived.Version)}}, 409, "urn:agora:problem:catalog.archived", ""},
		{"patch to archived", req{Method: "PATCH", Path: pPath, Body: `{"status":"archived"}`, Token: adminToken, Header: current}, 422, "", "body.status"},
		{"patch malformed JSON", req{Method: "PATCH", Path: pPath, Body: `{"name":`, Token: adminToken, Header: current}, 400, "", ""},
		{"patch unknown field", req{Method: "PATCH", Path: pPath, Body: `{"nmae":"x"}`, Token: adminToken, Header: current}, 422, "", "body.nmae"},
		{"patch name of wrong type", req{Method: "PATCH", Path: pPath, Body: `{"name":["x"]}`, Token: adminToken, Header: current}, 422, "", "body.name"},
		{"patch empty name", req{Method: "PATCH", Path: pPath, Body: `{"name":""}`, Token: adminToken, Header: current}, 422, "", "body.name"},
		{"patch blank name", req{Method: "PATCH", Path: pPath, Body: `{"name":" "}`, Token: adminToken, Header: current}, 422, "urn:agora:problem:catalog.invalid_product", "body.name"},
		{"patch bad currency", req{Method: "PATCH", Path: pPath, Body: `{"price":{"amount":1,"currency":"E"}}`, Token: adminToken, Header: current}, 422, "", "body.price.currency"},
		{"patch negative amount", req{Method: "PATCH", Path: pPath, Body: `{"price":{"amount":-1,"currency":"EUR"}}`, Token: adminToken, Header: current}, 422, "", "body.price.amount"},
		{"patch oversized body", req{Method: "PATCH", Path: pPath, Body: huge, Token: adminToken, Header: current}, 413, "", ""},

		// Archive.
		{"archive without token", req{Method: "POST", Path: archivePath}, 401, "", ""},
		{"archive with wrong token", req{Method: "POST", Path: archivePath, Header: map[string]string{"Authorization": "Bearer wrong"}}, 401, "", ""},
		{"archive as customer", req{Method: "POST", Path: archivePath, Token: customerToken, Header: current}, 403, "", ""},
		{"archive with expired admin token", req{Method: "POST", Path: archivePath, Token: expiredToken, Header: current}, 401, "", ""},
		{"archive with stale If-Match", req{Method: "POST", Path: archivePath, Token: adminToken, Header: map[string]string{"If-Match": `"1"`}}, 412, "urn:agora:problem:catalog.version_mismatch", ""},
		{"archive with garbage If-Match", req{Method: "POST", Path: archivePath, Token: adminToken, Header: map[string]string{"If-Match": "v2"}}, 412, "", "header.If-Match"},
		{"archive unknown id", req{Method: "POST", Path: "/v1/products/" + unknown + "/archive", Token: adminToken}, 404, "urn:agora:problem:catalog.product_not_found", ""},
		{"archive bad uuid", req{Method: "POST", Path: "/v1/products/x/archive", Token: adminToken}, 422, "", "path.id"},
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
			if w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
			if diff := cmp.Diff(before, s.state(t)); diff != "" {
				t.Errorf("the failed request changed state (-before +after):\n%s", diff)
			}
		})
	}
}

func TestCreateAndGet(t *testing.T) {
	s := newServer(t)
	in := productInput(1)
	w := s.Do(t, req{Method: "POST", Path: "/v1/products", Body: in, Token: adminToken})
	if w.Code != http.StatusCreated {
		t.Fatalf("create: status %d, body %s", w.Code, w.Body.String())
	}
	p := apitest.Decode[catalog.Product](t, w)
	want := catalog.Product{ID: p.ID, SKU: in.SKU, Name: in.Name, Description: in.Description, Category: in.Category,
		Price: in.Price, Attributes: in.Attributes, ImageURL: in.ImageURL, Status: catalog.StatusDraft, Version: 1,
		CreatedAt: p.CreatedAt, UpdatedAt: p.CreatedAt, Availability: &catalog.Availability{Status: catalog.AvailabilityUnknown}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("created product (-want +got):\n%s", diff)
	}
	if got, want := w.Header().Get("Location"), "/v1/products/"+p.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if got := etagVersion(w.Header().Get("ETag")); got != "1" {
		t.Errorf("ETag = %q, want version 1", w.Header().Get("ETag"))
	}
	if got := s.state(t); got.Outbox != 1 || len(got.Products) != 1 {
		t.Errorf("after create: %d products, %d outbox rows; want 1 and 1", len(got.Products), got.Outbox)
	}

	// The draft: admins see it, the public does not.
	w = s.Do(t, req{Method: "GET", Path: "/v1/products/" + p.ID, Token: adminToken})
	if w.Code != http.StatusOK {
		t.Fatalf("admin get draft: status %d, body %s", w.Code, w.Body.String())
	}
	if diff := cmp.Diff(p, apitest.Decode[catalog.Product](t, w)); diff != "" {
		t.Errorf("admin get (-created +got):\n%s", diff)
	}
	if got := etagVersion(w.Header().Get("ETag")); got != "1" {
		t.Errorf("get ETag = %q, want version 1", w.Header().Get("ETag"))
	}
	if w = s.Do(t, req{Method: "GET", Path: "/v1/products/" + p.ID}); w.Code != http.StatusNotFound {
		t.Errorf("public get draft: status %d, want 404", w.Code)
	}
	if w = s.Do(t, req{Method: "GET", Path: "/v1/products/" + p.ID, Token: customerToken}); w.Code != http.StatusNotFound {
		t.Errorf("customer get draft: status %d, want 404", w.Code)
	}

	// Created active, and without optional fields.
	w = s.Do(t, req{Method: "POST", Path: "/v1/products", Token: adminToken,
		Body: `{"sku":"MUG","name":"Mug","price":{"amount":0,"currency":"USD"},"status":"active"}`})
	if w.Code != http.StatusCreated {
		t.Fatalf("create minimal: status %d, body %s", w.Code, w.Body.String())
	}
	mug := apitest.Decode[catalog.Product](t, w)
	if mug.Status != catalog.StatusActive || mug.Attributes == nil || len(mug.Attributes) != 0 || mug.Category != "" {
		t.Errorf("minimal product = %+v", mug)
	}
	if w = s.Do(t, req{Method: "GET", Path: "/v1/products/" + mug.ID}); w.Code != http.StatusOK {
		t.Errorf("public get active: status %d, want 200", w.Code)
	}
}

// etagVersion is the version part of a product's ETag ("3" of "3.9f2c41d0…"):
// what writes compare. The rest covers the live availability (TestETagCoversAvailability).
func etagVersion(etag string) string {
	v, _, _ := strings.Cut(strings.Trim(etag, `"`), ".")
	return v
}

func TestGetConditional(t *testing.T) {
	s := newServer(t)
	p := s.create(t, 1, catalog.StatusActive)
	path := "/v1/products/" + p.ID
	etag := s.Do(t, req{Method: "GET", Path: path}).Header().Get("ETag")

	tests := []struct {
		ifNoneMatch string
		status      int
	}{
		{"", 200},
		{etag, 304},
		{"W/" + etag, 304},
		{`"0", ` + etag, 304},
		{`*`, 304},
		{`"1"`, 200}, // the version alone does not cover the availability shown
		{`"2"`, 200},
		{strings.Trim(etag, `"`), 200},
	}
	for _, tt := range tests {
		t.Run(tt.ifNoneMatch, func(t *testing.T) {
			w := s.Do(t, req{Method: "GET", Path: path, Header: map[string]string{"If-None-Match": tt.ifNoneMatch}})
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.status, w.Body.String())
			}
			if tt.status == http.StatusNotModified && w.Body.Len() != 0 {
				t.Errorf("304 with a body: %q", w.Body.String())
			}
			// RFC 9110, section 15.4.5: a 304 repeats the ETag a 200 would send.
			if got := w.Header().Get("ETag"); got != etag {
				t.Errorf("ETag = %q, want %q", got, etag)
			}
			if tt.status == http.StatusOK {
				if got := apitest.Decode[catalog.Product](t, w); got.ID != p.ID {
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
	w := s.Do(t, req{Method: "GET", Path: path, Header: map[string]string{"If-None-Match": etag}})
	if w.Code != http.StatusOK || etagVersion(w.Header().Get("ETag")) != "2" {
		t.Errorf("after a change: status %d, ETag %q; want 200 and version 2", w.Code, w.Header().Get("ETag"))
	}
}

// TestETagCoversAvailability: the body shows live availability, so the ETag
// changes when stock does although the product's version does not — a cache that
// revalidates gets the new stock, not a 304 with the old.
func TestETagCoversAvailability(t *testing.T) {
	s := newServer(t)
	p := s.create(t, 1, catalog.StatusActive)
	path := "/v1/products/" + p.ID
	before := s.Do(t, req{Method: "GET", Path: path}).Header().Get("ETag")
	s.stockChanged(t, p, 150)
	w := s.Do(t, req{Method: "GET", Path: path, Header: map[string]string{"If-None-Match": before}})
	if w.Code != http.StatusOK {
		t.Fatalf("after stock changed: status %d, want 200 with the new stock", w.Code)
	}
	if got := apitest.Decode[catalog.Product](t, w); got.Availability == nil || got.Availability.Available != 150 {
		t.Errorf("availability = %+v, want 150 available", got.Availability)
	}
	after := w.Header().Get("ETag")
	if after == before || etagVersion(after) != etagVersion(before) {
		t.Errorf("ETag %s -> %s: want a new ETag at the same version", before, after)
	}
	// Writes compare the version only: the admin did not change the stock.
	w = s.Do(t, req{Method: "PATCH", Path: path, Body: `{"name":"renamed"}`, Token: adminToken,
		Header: map[string]string{"If-Match": before}})
	if w.Code != http.StatusOK {
		t.Errorf("PATCH with the ETag from before the stock change: status %d, want 200; body %s", w.Code, w.Body.String())
	}
}

func TestPatch(t *testing.T) {
	s := newServer(t)
	p := s.create(t, 1, catalog.StatusDraft)
	path := "/v1/products/" + p.ID

	w := s.Do(t, req{Method: "PATCH", Path: path, Token: adminToken, Header: map[string]string{"If-Match": `"1"`},
		Body: `{"name":"Renamed","price":{"amount":2500,"currency":"EUR"},"status":"active","attributes":{"colour":"red"}}`})
	if w.Code != http.StatusOK {
		t.Fatalf("patch: status %d, body %s", w.Code, w.Body.String())
	}
	if got := w.Header().Get("ETag"); etagVersion(got) != "2" {
		t.Errorf("ETag = %q, want version 2", got)
	}
	got := apitest.Decode[catalog.Product](t, w)
	want := p
	want.Name, want.Price, want.Status, want.Attributes = "Renamed", catalog.Money{Amount: 2500, Currency: "EUR"}, catalog.StatusActive, map[string]string{"colour": "red"}
	want.Version, want.UpdatedAt = 2, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patched product (-want +got):\n%s", diff)
	}
	// Fields not sent are kept; the public now sees it.
	w = s.Do(t, req{Method: "GET", Path: path})
	if w.Code != http.StatusOK {
		t.Fatalf("get: status %d", w.Code)
	}
	if diff := cmp.Diff(got, apitest.Decode[catalog.Product](t, w)); diff != "" {
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
	w = s.Do(t, req{Method: "PATCH", Path: path, Token: adminToken, Header: map[string]string{"If-Match": `"1"`}, Body: `{"name":"Lost"}`})
	if w.Code != http.StatusPreconditionFailed {
		t.Errorf("patch with the old ETag: status %d, want 412", w.Code)
	}
	w = s.Do(t, req{Method: "PATCH", Path: path, Token: adminToken, Header: map[string]string{"If-Match": `W/"2"`}, Body: `{}`})
	if w.Code != http.StatusPreconditionFailed {
		t.Errorf("patch with a weak ETag: status %d, want 412 (If-Match compares strongly)", w.Code)
	}
	w = s.Do(t, req{Method: "PATCH", Path: path, Token: adminToken, Header: map[string]string{"If-Match": ` "2" `}, Body: `{"description":""}`})
	if w.Code != http.StatusOK || etagVersion(w.Header().Get("ETag")) != "3" {
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
		p := s.create(t, i, status)
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
		token string
		want  []string
	}{
		{"public, one by one", "limit=1", "", active},
		{"public, by three", "limit=3", "", active},
		{"public, exactly one page", "limit=7", "", active},
		{"public, default limit", "", "", active},
		{"public, in a category", "category=apparel&limit=2", "", active},
		{"public, asking for active", "status=active&limit=4", "", active},
		{"public, with a search matching all", "q=TEE&limit=2", "", active},
		{"public, with a search matching none", "q=zebra&limit=2", "", nil},
		{"admin sees every status", "limit=4", adminToken, all},
		{"admin, drafts", "status=draft&limit=1", adminToken, drafts},
	}
	// A signed-in customer sees what the public sees.
	w := s.Do(t, req{Method: "GET", Path: "/v1/products?limit=100", Token: customerToken})
	if w.Code != http.StatusOK {
		t.Fatalf("customer list: status %d, body %s", w.Code, w.Body.String())
	}
	var customerSees []string
	for _, p := range apitest.Decode[api.ProductList](t, w).Items {
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
				w := s.Do(t, req{Method: "GET", Path: path, Token: tt.token})
				if w.Code != http.StatusOK {
					t.Fatalf("GET %s: status %d, body %s", path, w.Code, w.Body.String())
				}
				if !strings.Contains(w.Body.String(), `"items":[`) {
					t.Errorf("items is not an array: %s", w.Body.String())
				}
				page := apitest.Decode[api.ProductList](t, w)
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
	p := s.create(t, 1, catalog.StatusActive)
	path := "/v1/products/" + p.ID

	w := s.Do(t, req{Method: "POST", Path: path + "/archive", Token: adminToken, Header: map[string]string{"If-Match": `"1"`}})
	if w.Code != http.StatusOK {
		t.Fatalf("archive: status %d, body %s", w.Code, w.Body.String())
	}
	got := apitest.Decode[catalog.Product](t, w)
	if got.Status != catalog.StatusArchived || got.Version != 2 || etagVersion(w.Header().Get("ETag")) != "2" {
		t.Errorf("archived: status %s, version %d, ETag %q", got.Status, got.Version, w.Header().Get("ETag"))
	}

	// Still readable by id, by anyone.
	w = s.Do(t, req{Method: "GET", Path: path})
	if w.Code != http.StatusOK {
		t.Fatalf("get archived: status %d, body %s", w.Code, w.Body.String())
	}
	if diff := cmp.Diff(got, apitest.Decode[catalog.Product](t, w)); diff != "" {
		t.Errorf("get archived (-archived +got):\n%s", diff)
	}
	// No longer listed publicly; listed for admins asking for archived.
	if page := apitest.Decode[api.ProductList](t, s.Do(t, req{Method: "GET", Path: "/v1/products"})); len(page.Items) != 0 {
		t.Errorf("public list shows %d products, want 0", len(page.Items))
	}
	if page := apitest.Decode[api.ProductList](t, s.Do(t, req{Method: "GET", Path: "/v1/products?status=archived", Token: adminToken})); len(page.Items) != 1 {
		t.Errorf("admin list of archived shows %d products, want 1", len(page.Items))
	}

	// Archiving again is not an error and changes nothing.
	before := s.state(t)
	for _, h := range []map[string]string{nil, {"If-Match": `"2"`}} {
		w = s.Do(t, req{Method: "POST", Path: path + "/archive", Token: adminToken, Header: h})
		if w.Code != http.StatusOK {
			t.Fatalf("archive again (%v): status %d, body %s", h, w.Code, w.Body.String())
		}
		if diff := cmp.Diff(got, apitest.Decode[catalog.Product](t, w)); diff != "" {
			t.Errorf("archive again (-first +again):\n%s", diff)
		}
	}
	if diff := cmp.Diff(before, s.state(t)); diff != "" {
		t.Errorf("archiving again changed state (-before +after):\n%s", diff)
	}
}
