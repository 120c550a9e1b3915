package site

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/payments"
)

const (
	alice = "0190a8b2-0000-7000-8000-0000000a11ce"
	bob   = "0190a8b2-0000-7000-8000-000000000b0b"
	root  = "0190a8b2-0000-7000-8000-00000000r007"
	order = "0190a8b2-0000-7000-8000-0000000000d1"
)

// fixture is a site on a bus whose other modules are hand-written fakes.
type fixture struct {
	t         *testing.T
	keys      *auth.Keys
	srv       *httptest.Server
	refresh   atomic.Int64 // identity.Refresh calls
	loggedOut atomic.Value // the refresh token identity.Logout got
	redriven  atomic.Value // the dead letter orders was asked to redrive
	site      *Site
	rides     *fakeRides // fleet and rides
	provider  fakeProvider
}

// fakeProvider is payments' provider state, and whether its outage may be switched.
type fakeProvider struct {
	mu    sync.Mutex
	state payments.ProviderState
}

func (p *fakeProvider) handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(payments.ProviderStatusRequest, func(context.Context, payments.ProviderStatus) (payments.ProviderState, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.state, nil
		}),
		bus.Handle(payments.SetProviderOutageRequest, func(_ context.Context, q payments.SetProviderOutage) (payments.ProviderState, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if !p.state.OutageSwitchable {
				return payments.ProviderState{}, payments.ErrOutageNotAllowed
			}
			p.state.Outage = q.Down
			return p.state, nil
		}),
	}
}

// setProvider sets what payments answers of its provider.
func (f *fixture) setProvider(st payments.ProviderState) {
	f.provider.mu.Lock()
	defer f.provider.mu.Unlock()
	f.provider.state = st
}

func (f *fixture) outage() bool {
	f.provider.mu.Lock()
	defer f.provider.mu.Unlock()
	return f.provider.state.Outage
}

// newFixture starts the site; each option changes its Deps first.
func newFixture(t *testing.T, options ...func(*Deps)) *fixture {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	f := &fixture{t: t, keys: auth.NewKeys(priv), rides: newFakeRides()}
	f.provider.state = payments.ProviderState{Provider: "simulated", Breaker: "closed"}
	log := slog.New(slog.DiscardHandler)
	b, err := bus.New(log, bus.Limits{}, nil, f.handlers(), nil)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.NewAPI(httpapi.Config{RequestTimeout: 5 * time.Second, MaxInFlight: 64}, log)
	d := Deps{Bus: b, Keys: f.keys, Log: log, Roster: modhost.Roster{
		Modules:  []string{"identity", "catalog", "inventory", "payments", "orders", "notifications", "web"},
		WithData: []string{"identity", "catalog", "inventory", "payments", "orders", "notifications"}}}
	for _, o := range options {
		o(&d)
	}
	f.site = New(d)
	f.site.Routes(api)
	f.srv = httptest.NewServer(api.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) handlers() []bus.RequestHandler {
	return append(append(f.rides.handlers(), f.provider.handlers()...), []bus.RequestHandler{
		bus.Handle(identity.RefreshRequest, func(_ context.Context, q identity.Refresh) (identity.Tokens, error) {
			f.refresh.Add(1)
			if q.RefreshToken != "good-refresh" {
				return identity.Tokens{}, identity.ErrInvalidToken
			}
			time.Sleep(10 * time.Millisecond) // long enough for concurrent callers to queue behind it
			return identity.Tokens{AccessToken: f.token(alice, identity.RoleCustomer, time.Hour), RefreshToken: "next-refresh"}, nil
		}),
		bus.Handle(identity.LogoutRequest, func(_ context.Context, q identity.Logout) (identity.Done, error) {
			f.loggedOut.Store(q.RefreshToken)
			return identity.Done{}, nil
		}),
		bus.Handle(orders.GetOrderRequest, func(_ context.Context, q orders.GetOrder) (orders.Order, error) {
			if q.ID != order {
				return orders.Order{}, orders.ErrOrderNotFound
			}
			return orders.Order{ID: order, CustomerID: alice, Status: orders.StatusConfirmed, Version: 2,
				Total: orders.Money{Amount: 1990, Currency: "EUR"}}, nil
		}),
		bus.Handle(modhost.ListDeadLettersRequest("orders"), func(context.Context, modhost.ListDeadLetters) (modhost.DeadLetterPage, error) {
			return modhost.DeadLetterPage{Items: []outbox.DeadLetter{{ID: "dl-1", Type: "inventory.ReserveStock", Attempts: 10, LastError: "no receiver"}}}, nil
		}),
		bus.Handle(modhost.RedriveDeadLetterRequest("orders"), func(_ context.Context, q modhost.RedriveDeadLetter) (struct{}, error) {
			f.redriven.Store(q.ID)
			return struct{}{}, nil
		}),
		bus.Handle(orders.GetCartRequest, func(context.Context, orders.GetCart) (orders.Cart, error) {
			return orders.Cart{}, errSecret
		}),
	}...)
}

// errSecret is an internal failure whose text must never reach a page.
var errSecret = io.ErrUnexpectedEOF

// token is an access token for user with role, expiring in ttl (negative: expired).
func (f *fixture) token(user, role string, ttl time.Duration) string {
	now := time.Now()
	if ttl < 0 {
		now = now.Add(2*ttl - auth.Leeway)
		ttl = -ttl
	}
	tok, err := f.keys.Issue(auth.Principal{UserID: user, Role: role}, now, ttl)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// get requests path with the session "access|refresh" (none when empty),
// following no redirect.
func (f *fixture) send(method, path, session string, headers ...string) *http.Response {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, nil)
	if session != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: session})
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { res.Body.Close() })
	return res
}

func body(t *testing.T, res *http.Response) string {
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAccessRules checks who gets what: anonymous visitors are sent to sign in
// (and back), customers get a 403 page on the console, another customer's order
// is answered exactly like a missing one, and admins see any order.
func TestAccessRules(t *testing.T) {
	f := newFixture(t)
	customer := f.token(alice, identity.RoleCustomer, time.Hour) + "|r"
	stranger := f.token(bob, identity.RoleCustomer, time.Hour) + "|r"
	admin := f.token(root, identity.RoleAdmin, time.Hour) + "|r"
	tests := []accessCase{
		{"anonymous console", "/console/sagas", "", 303, "/signin?next=" + url.QueryEscape("/console/sagas"), ""},
		{"anonymous order", "/orders/" + order, "", 303, "/signin?next=" + url.QueryEscape("/orders/"+order), ""},
		{"customer console", "/console/sagas", customer, 403, "", "administrators"},
		{"own order", "/orders/" + order, customer, 200, "", "EUR 19.90"},
		{"another's order", "/orders/" + order, stranger, 404, "", "order not found"},
		{"missing order", "/orders/0190a8b2-0000-7000-8000-0000000000d2", customer, 404, "", "order not found"},
		{"admin, any order", "/orders/" + order, admin, 200, "", "EUR 19.90"},
	}
	f.checkAccess(t, tests)
}

// accessCase is what a GET of path with session answers: its status, where it
// redirects, and text the page contains.
type accessCase struct {
	name, path, session string
	status              int
	location, contains  string
}

// checkAccess runs access cases.
func (f *fixture) checkAccess(t *testing.T, tests []accessCase) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.send("GET", tt.path, tt.session)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if got := res.Header.Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
			if b := body(t, res); !strings.Contains(b, tt.contains) {
				t.Errorf("page lacks %q:\n%s", tt.contains, b)
			}
			if ct := res.Header.Get("Content-Type"); tt.status != 303 && !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML page", ct)
			}
		})
	}
}

// TestPagesHeaders checks every page's policy: a strict CSP with no inline
// script, no caching of personal pages, no framing.
func TestPagesHeaders(t *testing.T) {
	f := newFixture(t)
	res := f.send("GET", "/signin", "")
	for k, want := range map[string]string{
		"Content-Security-Policy": pagePolicy, "Cache-Control": "no-store", "X-Frame-Options": "DENY",
		"Referrer-Policy": "same-origin",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if strings.Contains(pagePolicy, "unsafe-inline") || !strings.Contains(pagePolicy, "script-src 'self'") {
		t.Errorf("the policy allows more than the site's own scripts: %s", pagePolicy)
	}
}

// TestCrossOriginFormsRefused checks that a form posted from another site is
// refused with a page, before it acts: the order is not cancelled.
func TestCrossOriginFormsRefused(t *testing.T) {
	f := newFixture(t)
	session := f.token(alice, identity.RoleCustomer, time.Hour) + "|good-refresh"
	res := f.send("POST", "/signout", session, "Sec-Fetch-Site", "cross-site")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body(t, res), "another site") {
		t.Fatalf("cross-site sign-out: %d, want the 403 page", res.StatusCode)
	}
	if f.loggedOut.Load() != nil {
		t.Error("a cross-site form signed the user out")
	}
	res = f.send("POST", "/signout", session, "Origin", "https://evil.example", "Sec-Fetch-Site", "")
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("a form from another origin (Origin header): %d, want 403", res.StatusCode)
	}
}

// TestSignOutRevokes checks that signing out revokes the session's refresh
// token at identity and clears the cookie.
func TestSignOutRevokes(t *testing.T) {
	f := newFixture(t)
	res := f.send("POST", "/signout", f.token(alice, identity.RoleCustomer, time.Hour)+"|good-refresh", "Sec-Fetch-Site", "same-origin")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", res.StatusCode)
	}
	if got := f.loggedOut.Load(); got != "good-refresh" {
		t.Errorf("identity was asked to revoke %v, want the session's refresh token", got)
	}
	if c := cookieOf(res); c == nil || c.MaxAge >= 0 {
		t.Errorf("the cookie is not cleared: %+v", c)
	}
}

func cookieOf(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	return nil
}

// TestExpiredSessionIsRefreshed checks that an expired access token is
// exchanged with the refresh token, the new tokens stored (HttpOnly,
// SameSite=Strict), and that a refresh token identity refuses ends the session.
func TestExpiredSessionIsRefreshed(t *testing.T) {
	f := newFixture(t)
	expired := f.token(alice, identity.RoleCustomer, -time.Minute)
	res := f.send("GET", "/orders/"+order, expired+"|good-refresh")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("with an expired access token: %d, want the page after a refresh", res.StatusCode)
	}
	c := cookieOf(res)
	if c == nil || !strings.HasSuffix(c.Value, "|next-refresh") || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("refreshed cookie %+v, want the new tokens, HttpOnly, SameSite=Strict", c)
	}
	res = f.send("GET", "/orders/"+order, expired+"|spent-refresh")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/signin") {
		t.Errorf("with a refused refresh token: %d %s, want to sign in again", res.StatusCode, res.Header.Get("Location"))
	}
	if c := cookieOf(res); c == nil || c.MaxAge >= 0 {
		t.Errorf("a dead session's cookie is kept: %+v", c)
	}
}

// TestRefreshOncePerToken checks that concurrent requests presenting the same
// refresh token (a page and its event stream) exchange it once: identity would
// take a second use for theft and revoke the family.
func TestRefreshOncePerToken(t *testing.T) {
	f := newFixture(t)
	expired := f.token(alice, identity.RoleCustomer, -time.Minute) + "|good-refresh"
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if res := f.send("GET", "/orders/"+order, expired); res.StatusCode != http.StatusOK {
				t.Errorf("status %d: %s", res.StatusCode, body(t, res))
			}
		})
	}
	wg.Wait()
	if n := f.refresh.Load(); n != 1 {
		t.Errorf("the refresh token was exchanged %d times, want once", n)
	}
}

// TestErrorPagesShowNothingInternal checks that an unexpected failure is a
// bounded apology page, never the cause.
func TestErrorPagesShowNothingInternal(t *testing.T) {
	f := newFixture(t)
	res := f.send("GET", "/cart", f.token(alice, identity.RoleCustomer, time.Hour)+"|r")
	b := body(t, res)
	if res.StatusCode != http.StatusInternalServerError || !strings.Contains(b, "Something went wrong") {
		t.Fatalf("%d:\n%s", res.StatusCode, b)
	}
	if strings.Contains(b, errSecret.Error()) || strings.Contains(b, message.ErrInternal.Code) {
		t.Errorf("the page shows the cause:\n%s", b)
	}
}

// TestLocalPath checks that a sign-in's "next" never leads off the site.
func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/orders/1": "/orders/1", "/?q=tee": "/?q=tee", "": "/", "https://evil.example/": "/",
		"//evil.example/": "/", "/\\evil.example": "/", "javascript:alert(1)": "/", "/x\r\nSet-Cookie: a": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAssetsCacheValidators checks that assets carry ETag and Last-Modified and
// answer 304 to either validator; unknown names are 404.
func TestAssetsCacheValidators(t *testing.T) {
	f := newFixture(t)
	path := loadAssets().urls["site.css"]
	res := f.send("GET", path, "")
	etag, modified := res.Header.Get("ETag"), res.Header.Get("Last-Modified")
	if res.StatusCode != 200 || etag == "" || modified == "" || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("%d ETag %q Last-Modified %q Cache-Control %q", res.StatusCode, etag, modified, res.Header.Get("Cache-Control"))
	}
	if r := f.send("GET", path, "", "If-None-Match", etag); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", r.StatusCode)
	}
	if r := f.send("GET", path, "", "If-Modified-Since", modified); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-Modified-Since: %d, want 304", r.StatusCode)
	}
	if r := f.send("GET", "/assets/site.0000000000000000.css", ""); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown asset: %d, want 404", r.StatusCode)
	}
}

// TestSignInReturnsToTheForm checks that a form posted signed out ("Add to
// cart") leads to sign in and back to the page it was posted from, never to
// another site's.
func TestSignInReturnsToTheForm(t *testing.T) {
	f := newFixture(t)
	for referer, want := range map[string]string{
		f.srv.URL + "/products/1?x=y":     "/signin?next=" + url.QueryEscape("/products/1?x=y"),
		"https://evil.example/products/1": "/signin?next=" + url.QueryEscape("/"),
	} {
		res := f.send("POST", "/cart", "", "Referer", referer, "Sec-Fetch-Site", "same-origin")
		if got := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("from %s: %d %s, want 303 %s", referer, res.StatusCode, got, want)
		}
	}
}

// TestDeadLetterRedrive checks the console's dead letters: listed for an admin
// with their last error, redriven by the module that holds them, and a module
// the console does not know is a 404.
func TestDeadLetterRedrive(t *testing.T) {
	f := newFixture(t)
	admin := f.token(root, identity.RoleAdmin, time.Hour) + "|r"
	if b := body(t, f.send("GET", "/console/dead-letters/orders", admin)); !strings.Contains(b, "no receiver") ||
		!strings.Contains(b, `action="/console/dead-letters/orders/dl-1/redrive"`) {
		t.Fatalf("the dead letter is not listed with its redrive form:\n%s", b)
	}
	res := f.send("POST", "/console/dead-letters/orders/dl-1/redrive", admin, "Sec-Fetch-Site", "same-origin")
	if res.StatusCode != http.StatusSeeOther || f.redriven.Load() != "dl-1" {
		t.Errorf("redrive: %d, orders asked to redrive %v; want 303 and dl-1", res.StatusCode, f.redriven.Load())
	}
	if res := f.send("GET", "/console/dead-letters/nope", admin); res.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown module: %d, want 404", res.StatusCode)
	}
}
