package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/message"
)

// syncBuffer is a bytes.Buffer that the server's goroutines and the test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hookLog receives what the 5xx error hook logs. The hook is package-global in huma,
// so it is installed once, before any test runs.
var hookLog = &syncBuffer{}

func TestMain(m *testing.M) {
	InstallErrorHook(slog.New(slog.NewJSONHandler(hookLog, nil)))
	os.Exit(m.Run())
}

// problemBody is the RFC 9457 body the API sends.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location"`
	} `json:"errors"`
}

// newServer serves an API built by NewAPI with cfg, after register has added the
// test's operations. It returns the server and what the API logged.
func newServer(t *testing.T, cfg Config, register func(api huma.API)) (*httptest.Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	api := NewAPI(cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	register(api)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv, logs
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, srv *httptest.Server, method, path string, header http.Header, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// problem asserts that r is a problem+json answer with status and returns its body.
func (r response) problem(t *testing.T, status int) problemBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	if p.Status != status {
		t.Errorf("problem status = %d, want %d", p.Status, status)
	}
	return p
}

// whoOut is what the test operations answer: who the access rules let through.
type whoOut struct {
	Body struct {
		SignedIn   bool   `json:"signed_in"`
		UserID     string `json:"user_id"`
		Role       string `json:"role"`
		Admin      bool   `json:"admin"`
		RemoteAddr string `json:"remote_addr"`
	}
}

func whoami(ctx context.Context, _ *struct{}) (*whoOut, error) {
	out := &whoOut{}
	p, ok := PrincipalFrom(ctx)
	out.Body.SignedIn, out.Body.UserID, out.Body.Role = ok, p.UserID, p.Role
	out.Body.Admin = IsAdmin(ctx)
	out.Body.RemoteAddr, _ = RemoteAddrFrom(ctx)
	return out, nil
}

const (
	adminID    = "0190a8b2-0000-7000-8000-00000000ad01"
	customerID = "0190a8b2-0000-7000-8000-00000000c001"
)

// testKeys returns signing keys for the tests and a function that issues a token.
func testKeys(t *testing.T) (*auth.Keys, func(keys *auth.Keys, userID, role string, issuedAt time.Time) string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewKeys(priv), func(keys *auth.Keys, userID, role string, issuedAt time.Time) string {
		t.Helper()
		tok, err := keys.Issue(auth.Principal{UserID: userID, Role: role}, issuedAt, 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// publicKey returns the raw Ed25519 public key of keys.
func publicKey(t *testing.T, keys *auth.Keys) ed25519.PublicKey {
	t.Helper()
	b, err := keys.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PublicKey)
}

// algNone crafts, by hand, an unsigned token that claims the admin role.
func algNone() string {
	enc := base64.RawURLEncoding
	now := time.Now().Unix()
	claims := fmt.Sprintf(`{"iss":%q,"aud":[%q],"sub":%q,"role":"admin","iat":%d,"nbf":%d,"exp":%d}`,
		auth.Issuer, auth.Audience, adminID, now, now, now+900)
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims)) + "."
}

// registerRules registers one operation for each access rule, and one that
// declares none.
func registerRules(api huma.API) {
	for _, op := range []struct {
		path     string
		security []map[string][]string
	}{
		{"/public", Public},
		{"/signed-in", SignedIn},
		{"/admin", AdminOnly},
		{"/mixed", PublicOrAdmin},
		{"/undeclared", nil},
	} {
		huma.Register(api, huma.Operation{OperationID: strings.TrimPrefix(op.path, "/"), Method: http.MethodGet, Path: op.path,
			Security: op.security}, whoami)
	}
}

func TestAccessRules(t *testing.T) {
	keys, issue := testKeys(t)
	other, _ := testKeys(t)
	now := time.Now()
	admin := issue(keys, adminID, "admin", now)
	customer := issue(keys, customerID, "customer", now)
	expired := issue(keys, adminID, "admin", now.Add(-time.Hour))
	forged := issue(other, adminID, "admin", now)
	hs256, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": auth.Issuer, "aud": auth.Audience, "sub": adminID, "role": "admin", "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString([]byte(publicKey(t, keys)))
	if err != nil {
		t.Fatal(err)
	}

	srv, _ := newServer(t, Config{Verifier: keys}, registerRules)

	// Who a request with each credential is on the operations that use bearer
	// tokens; the public operation ignores credentials, so nobody is signed in there.
	type who int
	const (
		nobody who = iota
		asAdmin
		asCustomer
	)
	const ok, unauth, forbidden = http.StatusOK, http.StatusUnauthorized, http.StatusForbidden
	// The status on /public, /signed-in, /admin, /mixed and /undeclared, in order.
	type statuses [5]int
	invalid := statuses{ok, unauth, unauth, unauth, forbidden} // a credential sent must be valid
	tests := []struct {
		name   string
		auth   string // the Authorization header; empty: none
		want   statuses
		who    who
		reason bool // the 401 challenge names error="invalid_token"
	}{
		{name: "no token", want: statuses{ok, unauth, unauth, ok, forbidden}},
		{name: "admin", auth: "Bearer " + admin, want: statuses{ok, ok, ok, ok, forbidden}, who: asAdmin},
		{name: "customer", auth: "Bearer " + customer, want: statuses{ok, ok, forbidden, ok, forbidden}, who: asCustomer},
		{name: "lower-case bearer scheme", auth: "bearer " + admin, want: statuses{ok, ok, ok, ok, forbidden}, who: asAdmin},
		{name: "upper-case bearer scheme", auth: "BEARER " + customer, want: statuses{ok, ok, forbidden, ok, forbidden}, who: asCustomer},
		{name: "expired admin token", auth: "Bearer " + expired, want: invalid, reason: true},
		{name: "admin token forged with another key", auth: "Bearer " + forged, want: invalid, reason: true},
		{name: "alg none admin token", auth: "Bearer " + algNone(), want: invalid, reason: true},
		{name: "HS256 token keyed with the public key", auth: "Bearer " + hs256, want: invalid, reason: true},
		{name: "admin token with a Basic scheme", auth: "Basic " + admin, want: invalid, reason: true},
		{name: "Basic credentials", auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:secret")), want: invalid, reason: true},
		{name: "admin token without a scheme", auth: admin, want: invalid, reason: true},
		{name: "empty bearer token", auth: "Bearer ", want: invalid, reason: true},
		{name: "garbage token", auth: "Bearer garbage", want: invalid, reason: true},
		{name: "truncated admin token", auth: "Bearer " + admin[:len(admin)-5], want: invalid, reason: true},
		{name: "two tokens", auth: "Bearer " + customer + " " + admin, want: invalid, reason: true},
	}
	paths := []string{"/public", "/signed-in", "/admin", "/mixed", "/undeclared"}
	for _, tt := range tests {
		for i, path := range paths {
			t.Run(tt.name+" on "+path, func(t *testing.T) {
				h := http.Header{}
				if tt.auth != "" {
					h.Set("Authorization", tt.auth)
				}
				r := do(t, srv, http.MethodGet, path, h, nil)
				want := tt.want[i]
				challenge := r.header.Get("WWW-Authenticate")
				if want != ok {
					r.problem(t, want)
					switch {
					case want != unauth && challenge != "":
						t.Errorf("%d with WWW-Authenticate %q", want, challenge)
					case want == unauth && !strings.HasPrefix(challenge, "Bearer "):
						t.Errorf("401 with WWW-Authenticate %q, want a Bearer challenge", challenge)
					case want == unauth && strings.Contains(challenge, `error="invalid_token"`) != tt.reason:
						t.Errorf("WWW-Authenticate = %q; names invalid_token: %v, want %v", challenge, !tt.reason, tt.reason)
					}
					return
				}
				if r.status != ok {
					t.Fatalf("status = %d, want 200; body: %s", r.status, r.body)
				}
				var got whoOut
				if err := json.Unmarshal(r.body, &got.Body); err != nil {
					t.Fatal(err)
				}
				var seen whoOut
				if path != "/public" {
					switch tt.who {
					case asAdmin:
						seen.Body.SignedIn, seen.Body.UserID, seen.Body.Role, seen.Body.Admin = true, adminID, "admin", true
					case asCustomer:
						seen.Body.SignedIn, seen.Body.UserID, seen.Body.Role = true, customerID, "customer"
					}
				}
				seen.Body.RemoteAddr = got.Body.RemoteAddr // checked in TestRemoteAddr
				if diff := cmp.Diff(seen.Body, got.Body); diff != "" {
					t.Errorf("what the handler saw (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestAccessRulesWithoutVerifier checks that an API configured without a verifier
// admits nobody to operations that need a token, even with a well-formed one.
func TestAccessRulesWithoutVerifier(t *testing.T) {
	keys, issue := testKeys(t)
	admin := issue(keys, adminID, "admin", time.Now())
	srv, _ := newServer(t, Config{}, registerRules)
	for _, path := range []string{"/signed-in", "/admin", "/mixed"} {
		for _, authz := range []string{"", "Bearer ", "Bearer x", "Bearer " + admin} {
			h := http.Header{}
			if authz != "" {
				h.Set("Authorization", authz)
			}
			if path == "/mixed" && authz == "" {
				if r := do(t, srv, http.MethodGet, path, h, nil); r.status != http.StatusOK {
					t.Errorf("GET %s without a token: status %d, want 200", path, r.status)
				}
				continue
			}
			do(t, srv, http.MethodGet, path, h, nil).problem(t, http.StatusUnauthorized)
		}
	}
}

// fakeVerifier knows a fixed set of tokens.
type fakeVerifier map[string]auth.Principal

func (f fakeVerifier) Verify(token string) (auth.Principal, error) {
	if p, ok := f[token]; ok {
		return p, nil
	}
	return auth.Principal{}, auth.ErrInvalid
}

// TestAccessRulesRoles checks that a bearer requirement admits exactly the roles in
// its scopes, whatever the Verifier.
func TestAccessRulesRoles(t *testing.T) {
	v := fakeVerifier{
		"a": {UserID: "1", Role: "admin"}, "s": {UserID: "2", Role: "staff"}, "c": {UserID: "3", Role: "customer"},
		"Admin": {UserID: "4", Role: "Admin"}, "d": {UserID: "5", Role: "driver"},
	}
	srv, _ := newServer(t, Config{Verifier: v}, func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "admin", Method: http.MethodGet, Path: "/admin", Security: AdminOnly}, whoami)
		huma.Register(api, huma.Operation{OperationID: "driver", Method: http.MethodGet, Path: "/driver", Security: DriverOnly}, whoami)
		huma.Register(api, huma.Operation{OperationID: "fleet", Method: http.MethodGet, Path: "/fleet", Security: DriverOrAdmin}, whoami)
	})
	tests := []struct {
		path, token string
		status      int
	}{
		{"/admin", "a", http.StatusOK},
		{"/admin", "s", http.StatusForbidden},
		{"/admin", "Admin", http.StatusForbidden}, // roles compare exactly
		{"/admin", "x", http.StatusUnauthorized},
		{"/admin", "d", http.StatusForbidden},
		{"/driver", "d", http.StatusOK},
		{"/driver", "a", http.StatusForbidden}, // a driver's own app: not even admins
		{"/driver", "c", http.StatusForbidden},
		{"/driver", "x", http.StatusUnauthorized},
		{"/fleet", "d", http.StatusOK},
		{"/fleet", "a", http.StatusOK},
		{"/fleet", "c", http.StatusForbidden},
		{"/fleet", "s", http.StatusForbidden},
		{"/fleet", "x", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		r := do(t, srv, http.MethodGet, tt.path, http.Header{"Authorization": {"Bearer " + tt.token}}, nil)
		if r.status != tt.status {
			t.Errorf("GET %s with the %q token: status %d, want %d; body %s", tt.path, tt.token, r.status, tt.status, r.body)
		}
	}
}

func TestRequireOwner(t *testing.T) {
	with := func(p auth.Principal) context.Context { return context.WithValue(t.Context(), principalKey{}, p) }
	tests := []struct {
		name  string
		ctx   context.Context
		owner string
		ok    bool
	}{
		{"owner", with(auth.Principal{UserID: customerID, Role: "customer"}), customerID, true},
		{"admin", with(auth.Principal{UserID: adminID, Role: "admin"}), customerID, true},
		{"admin on a resource without owner", with(auth.Principal{UserID: adminID, Role: "admin"}), "", true},
		{"another customer", with(auth.Principal{UserID: "someone-else", Role: "customer"}), customerID, false},
		{"customer on a resource without owner", with(auth.Principal{UserID: customerID, Role: "customer"}), "", false},
		{"principal without user id on a resource without owner", with(auth.Principal{Role: "customer"}), "", false},
		{"no principal", t.Context(), customerID, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RequireOwner(tt.ctx, tt.owner, errThingNotFound)
			if tt.ok {
				if err != nil {
					t.Errorf("RequireOwner = %v, want nil", err)
				}
				return
			}
			var se huma.StatusError
			if !errors.As(err, &se) || se.GetStatus() != http.StatusNotFound {
				t.Errorf("RequireOwner = %v, want a 404", err)
			}
		})
	}

	// Through the API: another customer's resource is the very answer of one that
	// does not exist, byte for byte (headers aside: the request id differs).
	keys, issue := testKeys(t)
	now := time.Now()
	srv, _ := newServer(t, Config{Verifier: keys}, func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "owned", Method: http.MethodGet, Path: "/owned/{owner}", Security: SignedIn},
			func(ctx context.Context, in *struct {
				Owner string `path:"owner"`
			}) (*struct{}, error) {
				return nil, RequireOwner(ctx, in.Owner, errThingNotFound)
			})
		huma.Register(api, huma.Operation{OperationID: "missing", Method: http.MethodGet, Path: "/missing", Security: SignedIn},
			func(ctx context.Context, _ *struct{}) (*struct{}, error) { return nil, Problem(errThingNotFound) })
	})
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	customer := bearer(issue(keys, customerID, "customer", now))
	if r := do(t, srv, http.MethodGet, "/owned/"+customerID, customer, nil); r.status != http.StatusNoContent {
		t.Errorf("owner: status %d, want 204; body %s", r.status, r.body)
	}
	if r := do(t, srv, http.MethodGet, "/owned/"+customerID, bearer(issue(keys, adminID, "admin", now)), nil); r.status != http.StatusNoContent {
		t.Errorf("admin: status %d, want 204; body %s", r.status, r.body)
	}
	other := do(t, srv, http.MethodGet, "/owned/someone-else", customer, nil)
	other.problem(t, http.StatusNotFound)
	missing := do(t, srv, http.MethodGet, "/missing", customer, nil)
	if diff := cmp.Diff(string(missing.body), string(other.body)); diff != "" {
		t.Errorf("another customer's resource and a missing one answer differently (-missing +other):\n%s", diff)
	}
	if ct := other.header.Get("Content-Type"); ct != missing.header.Get("Content-Type") {
		t.Errorf("Content-Type %q, want %q as for a missing resource", ct, missing.header.Get("Content-Type"))
	}
}

// errThingNotFound is a module's not-found error, as RequireOwner is given it.
var errThingNotFound = message.NewError(message.NotFound, "things.thing_not_found", "no thing with id 42")

func TestRemoteAddr(t *testing.T) {
	if a, ok := RemoteAddrFrom(t.Context()); ok || a != "" {
		t.Errorf("RemoteAddrFrom outside a request = %q, %v", a, ok)
	}
	srv, _ := newServer(t, Config{}, registerRules)
	r := do(t, srv, http.MethodGet, "/public", nil, nil)
	var got whoOut
	if err := json.Unmarshal(r.body, &got.Body); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	host, port, err := net.SplitHostPort(got.Body.RemoteAddr)
	if err != nil || host != "127.0.0.1" || port == "" || port == "0" {
		t.Errorf("RemoteAddrFrom in a handler = %q, want 127.0.0.1:<port>", got.Body.RemoteAddr)
	}

	// The address is the peer's: proxy headers are not trusted.
	api := NewAPI(Config{}, slog.New(slog.DiscardHandler))
	registerRules(api)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/public", nil)
	req.RemoteAddr = "192.0.2.7:4711"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Real-IP", "203.0.113.9")
	w := httptest.NewRecorder()
	api.Handler().ServeHTTP(w, req)
	if err := json.Unmarshal(w.Body.Bytes(), &got.Body); err != nil {
		t.Fatalf("%v: %s", err, w.Body.String())
	}
	if got.Body.RemoteAddr != "192.0.2.7:4711" {
		t.Errorf("RemoteAddrFrom = %q, want the peer 192.0.2.7:4711", got.Body.RemoteAddr)
	}
}

func TestProblem(t *testing.T) {
	errs := map[string]error{}
	tests := []struct {
		name       string
		err        error
		status     int
		typ        string // "" for a 500 that must say nothing
		location   string
		retryAfter bool
	}{
		{name: "invalid", err: message.NewError(message.Invalid, "test.invalid", "name is too long").OnField("body.name"),
			status: http.StatusUnprocessableEntity, typ: "urn:agora:problem:test.invalid", location: "body.name"},
		{name: "not_found", err: message.NewError(message.NotFound, "test.not_found", "no such thing"),
			status: http.StatusNotFound, typ: "urn:agora:problem:test.not_found"},
		{name: "conflict", err: message.NewError(message.Conflict, "test.conflict", "taken"),
			status: http.StatusConflict, typ: "urn:agora:problem:test.conflict"},
		{name: "precondition", err: message.NewError(message.Precondition, "test.precondition", "changed"),
			status: http.StatusPreconditionFailed, typ: "urn:agora:problem:test.precondition"},
		{name: "unauthenticated", err: message.NewError(message.Unauthenticated, "test.unauthenticated", "wrong password"),
			status: http.StatusUnauthorized, typ: "urn:agora:problem:test.unauthenticated"},
		{name: "forbidden", err: message.NewError(message.Forbidden, "test.forbidden", "not yours"),
			status: http.StatusForbidden, typ: "urn:agora:problem:test.forbidden"},
		{name: "unavailable", err: message.NewError(message.Unavailable, "test.unavailable", "nobody home"),
			status: http.StatusServiceUnavailable, typ: "urn:agora:problem:test.unavailable", retryAfter: true},
		{name: "overloaded", err: message.NewError(message.Overloaded, "test.overloaded", "busy"),
			status: http.StatusServiceUnavailable, typ: "urn:agora:problem:test.overloaded", retryAfter: true},
		{name: "timeout", err: message.NewError(message.Timeout, "test.timeout", "too slow"),
			status: http.StatusGatewayTimeout, typ: "urn:agora:problem:test.timeout"},
		{name: "internal with code", err: message.NewError(message.Internal, "test.internal", "broke"),
			status: http.StatusInternalServerError, typ: "urn:agora:problem:test.internal"},
		{name: "wrapped", err: fmt.Errorf("calling catalog: %w", message.NewError(message.NotFound, "test.wrapped", "gone").OnField("path.id")),
			status: http.StatusNotFound, typ: "urn:agora:problem:test.wrapped", location: "path.id"},
		{name: "bus no handler", err: message.ErrNoHandler,
			status: http.StatusServiceUnavailable, typ: "urn:agora:problem:bus.no_handler", retryAfter: true},
		{name: "context deadline", err: fmt.Errorf("query: %w", context.DeadlineExceeded),
			status: http.StatusGatewayTimeout, typ: "urn:agora:problem:bus.timeout"},
		{name: "unknown kind", err: message.NewError(message.ErrorKind("strange"), "test.strange", "odd"),
			status: http.StatusInternalServerError, typ: "urn:agora:problem:test.strange"},
		{name: "huma error passes through", err: huma.Error409Conflict("already there"),
			status: http.StatusConflict},
		{name: "plain error", err: fmt.Errorf("secret db path /x"), status: http.StatusInternalServerError},
		{name: "bus internal", err: fmt.Errorf("secret wrapped: %w", message.ErrInternal), status: http.StatusInternalServerError},
	}
	for _, tt := range tests {
		errs[tt.name] = tt.err
	}
	srv, _ := newServer(t, Config{}, func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "fail", Method: http.MethodGet, Path: "/fail/{case}", Security: Public},
			func(ctx context.Context, in *struct {
				Case string `path:"case"`
			}) (*struct{}, error) {
				return nil, Problem(errs[in.Case])
			})
	})

	covered := map[message.ErrorKind]bool{}
	for _, tt := range tests {
		var be *message.Error
		if errors.As(tt.err, &be) {
			covered[be.Kind] = true
		}
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, http.MethodGet, "/fail/"+strings.ReplaceAll(tt.name, " ", "%20"), nil, nil)
			p := r.problem(t, tt.status)
			if got := r.header.Get("Retry-After") != ""; got != tt.retryAfter {
				t.Errorf("Retry-After sent: %v, want %v (header %q)", got, tt.retryAfter, r.header.Get("Retry-After"))
			}
			if tt.retryAfter && r.header.Get("Retry-After") != fmt.Sprint(RetryAfterSeconds) {
				t.Errorf("Retry-After = %q, want %d", r.header.Get("Retry-After"), RetryAfterSeconds)
			}
			if tt.typ != "" && p.Type != tt.typ {
				t.Errorf("type = %q, want %q", p.Type, tt.typ)
			}
			var locations []string
			for _, e := range p.Errors {
				locations = append(locations, e.Location)
			}
			var want []string
			if tt.location != "" {
				want = []string{tt.location}
			}
			if diff := cmp.Diff(want, locations); diff != "" {
				t.Errorf("errors[].location (-want +got):\n%s", diff)
			}
			if tt.status == http.StatusInternalServerError && tt.typ == "" {
				if strings.Contains(string(r.body), "secret") {
					t.Errorf("500 body leaks the cause: %s", r.body)
				}
				if want := EdgeProblemType(http.StatusInternalServerError); p.Type != want {
					t.Errorf("type = %q, want the edge's %q, not the error's own", p.Type, want)
				}
			}
		})
	}
	for kind, status := range statusOf {
		if !covered[kind] {
			t.Errorf("kind %q (status %d) has no case in this test", kind, status)
		}
	}
	// The cause of a hidden 500 goes to the log instead.
	if !strings.Contains(hookLog.String(), "secret db path /x") {
		t.Errorf("the error hook did not log the cause of the 500; log:\n%s", hookLog.String())
	}
}

func TestRequestID(t *testing.T) {
	srv, _ := newServer(t, Config{}, func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "public", Method: http.MethodGet, Path: "/public", Security: Public}, whoami)
	})
	tests := []struct {
		name string
		sent string
		echo bool
	}{
		{name: "valid id is echoed", sent: "req-42.A_b", echo: true},
		{name: "64 characters are echoed", sent: strings.Repeat("a", 64), echo: true},
		{name: "absent id is generated", sent: ""},
		{name: "too long id is replaced", sent: strings.Repeat("a", 200)},
		{name: "id with spaces is replaced", sent: "has spaces in it"},
		{name: "id with header injection is replaced", sent: "abc;rm -rf"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.sent != "" {
				h.Set(RequestIDHeader, tt.sent)
			}
			r := do(t, srv, http.MethodGet, "/public", h, nil)
			got := r.header.Get(RequestIDHeader)
			if tt.echo {
				if got != tt.sent {
					t.Errorf("%s = %q, want %q echoed", RequestIDHeader, got, tt.sent)
				}
				return
			}
			if got == "" || got == tt.sent || !validRequestID.MatchString(got) {
				t.Errorf("%s = %q, want a fresh valid id", RequestIDHeader, got)
			}
			if seen[got] {
				t.Errorf("generated id %q was generated before", got)
			}
			seen[got] = true
		})
	}
}

func TestMaxInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv, _ := newServer(t, Config{MaxInFlight: 1}, func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "slow", Method: http.MethodGet, Path: "/slow", Security: Public},
			func(ctx context.Context, _ *struct{}) (*struct{}, error) {
				entered <- struct{}{}
				<-release
				return nil, nil
			})
		huma.Register(api, huma.Operation{OperationID: "public", Method: http.MethodGet, Path: "/public", Security: Public}, whoami)
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the server closes, even when the test fails early

	first := make(chan int, 1)
	go func() {
		res, err := srv.Client().Get(srv.URL + "/slow") // not do: no t.Fatal off the test goroutine
		if err != nil {
			first <- 0
			return
		}
		_ = res.Body.Close()
		first <- res.StatusCode
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached its handler")
	}

	r := do(t, srv, http.MethodGet, "/public", nil, nil)
	r.problem(t, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 for overload has no Retry-After")
	}

	unblock()
	if status := <-first; status != http.StatusNoContent {
		t.Errorf("first request: status = %d, want 204", status)
	}
	// The slot is free again.
	if r := do(t, srv, http.MethodGet, "/public", nil, nil); r.status != http.StatusOK {
		t.Errorf("after the first request finished: status = %d, want 200", r.status)
	}
}

func TestBodyLimit(t *testing.T) {
	type in struct {
		Body struct {
			Name string `json:"name"`
		}
	}
	register := func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "echo", Method: http.MethodPost, Path: "/echo", Security: Public},
			func(ctx context.Context, in *in) (*struct{}, error) { return nil, nil })
	}
	tests := []struct {
		name     string
		maxBytes int64
		size     int  // bytes in the name
		chunked  bool // send without Content-Length, so only the read can find the size
		status   int
	}{
		{name: "small body under a small limit", maxBytes: 256, size: 10, status: http.StatusNoContent},
		{name: "body exactly at the limit", maxBytes: 256, size: 256 - len(`{"name":""}`), status: http.StatusNoContent},
		{name: "one byte over the limit", maxBytes: 256, size: 257 - len(`{"name":""}`), status: http.StatusRequestEntityTooLarge},
		{name: "oversized body under a small limit", maxBytes: 256, size: 1000, status: http.StatusRequestEntityTooLarge},
		{name: "oversized chunked body under a small limit", maxBytes: 256, size: 1000, chunked: true, status: http.StatusRequestEntityTooLarge},
		{name: "oversized body under the default limit", maxBytes: 1 << 20, size: 2 << 20, status: http.StatusRequestEntityTooLarge},
		{name: "large body under a raised limit", maxBytes: 4 << 20, size: 2 << 20, status: http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, Config{MaxBodyBytes: tt.maxBytes}, register)
			body := `{"name":"` + strings.Repeat("x", tt.size) + `"}`
			var reader io.Reader = strings.NewReader(body)
			if tt.chunked {
				reader = io.MultiReader(reader) // hides the length from net/http
			}
			r := do(t, srv, http.MethodPost, "/echo", http.Header{"Content-Type": {"application/json"}}, reader)
			if tt.status == http.StatusNoContent {
				if r.status != tt.status {
					t.Fatalf("status = %d, want %d; body: %s", r.status, tt.status, r.body)
				}
				return
			}
			r.problem(t, tt.status)
		})
	}
}

func TestRouting(t *testing.T) {
	srv, _ := newServer(t, Config{}, func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "public", Method: http.MethodGet, Path: "/public", Security: Public}, whoami)
		huma.Register(api, huma.Operation{OperationID: "things", Method: http.MethodPost, Path: "/things/{id}", Security: Public},
			func(ctx context.Context, _ *struct {
				ID string `path:"id"`
			}) (*struct{}, error) {
				return nil, nil
			})
	})
	tests := []struct {
		name   string
		method string
		path   string
		status int
		allow  []string
	}{
		{name: "unknown path", method: http.MethodGet, path: "/nowhere", status: http.StatusNotFound},
		{name: "unknown nested path", method: http.MethodPost, path: "/public/x/y", status: http.StatusNotFound},
		{name: "wrong method", method: http.MethodDelete, path: "/public", status: http.StatusMethodNotAllowed, allow: []string{"GET", "HEAD"}},
		{name: "wrong method on a path with a parameter", method: http.MethodGet, path: "/things/7", status: http.StatusMethodNotAllowed, allow: []string{"POST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, tt.method, tt.path, nil, nil)
			r.problem(t, tt.status)
			var allow []string
			for _, v := range r.header.Values("Allow") {
				for m := range strings.SplitSeq(v, ",") {
					allow = append(allow, strings.TrimSpace(m))
				}
			}
			slices.Sort(allow)
			if diff := cmp.Diff(tt.allow, allow); diff != "" {
				t.Errorf("Allow (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPanicRecovery(t *testing.T) {
	srv, logs := newServer(t, Config{}, func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "panic", Method: http.MethodGet, Path: "/panic", Security: Public},
			func(ctx context.Context, _ *struct{}) (*struct{}, error) { panic("secret panic value") })
		huma.Register(api, huma.Operation{OperationID: "public", Method: http.MethodGet, Path: "/public", Security: Public}, whoami)
	})
	for range 3 {
		r := do(t, srv, http.MethodGet, "/panic", nil, nil)
		r.problem(t, http.StatusInternalServerError)
		if strings.Contains(string(r.body), "secret") {
			t.Errorf("500 body leaks the panic: %s", r.body)
		}
		if r := do(t, srv, http.MethodGet, "/public", nil, nil); r.status != http.StatusOK {
			t.Fatalf("after a panic: status = %d, want 200", r.status)
		}
	}
	if !strings.Contains(logs.String(), "secret panic value") {
		t.Errorf("the panic was not logged; log:\n%s", logs.String())
	}
}

func TestRequestTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	type out struct {
		Body struct {
			HasDeadline bool          `json:"has_deadline"`
			Remaining   time.Duration `json:"remaining"`
		}
	}
	register := func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "deadline", Method: http.MethodGet, Path: "/deadline", Security: Public},
			func(ctx context.Context, _ *struct{}) (*out, error) {
				o := &out{}
				d, ok := ctx.Deadline()
				o.Body.HasDeadline, o.Body.Remaining = ok, time.Until(d)
				return o, nil
			})
	}
	tests := []struct {
		name    string
		timeout time.Duration
	}{
		{name: "with a request timeout", timeout: timeout},
		{name: "without a request timeout", timeout: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, Config{RequestTimeout: tt.timeout}, register)
			r := do(t, srv, http.MethodGet, "/deadline", nil, nil)
			var got out
			if err := json.Unmarshal(r.body, &got.Body); err != nil {
				t.Fatalf("%v: %s", err, r.body)
			}
			if got.Body.HasDeadline != (tt.timeout > 0) {
				t.Fatalf("handler saw a deadline: %v, want %v", got.Body.HasDeadline, tt.timeout > 0)
			}
			if tt.timeout > 0 && (got.Body.Remaining <= 0 || got.Body.Remaining > tt.timeout) {
				t.Errorf("time left = %v, want in (0, %v]", got.Body.Remaining, tt.timeout)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	ok := Check{Name: "db:ok", Check: func(context.Context) error { return nil }}
	failing := Check{Name: "db:broken", Check: func(context.Context) error { return errors.New("secret dsn postgres://u:p@h") }}
	tests := []struct {
		name   string
		checks []Check
		status int
		want   map[string]string // on 200: the checks in the body
	}{
		{name: "no checks", status: http.StatusOK},
		{name: "all checks pass", checks: []Check{ok, {Name: "bus", Check: ok.Check}}, status: http.StatusOK,
			want: map[string]string{"db:ok": "ok", "bus": "ok"}},
		{name: "one check fails", checks: []Check{ok, failing}, status: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, Config{}, func(api huma.API) {
				RegisterHealth(api, tt.checks, slog.New(slog.DiscardHandler))
			})
			if r := do(t, srv, http.MethodGet, "/healthz", nil, nil); r.status != http.StatusOK {
				t.Errorf("/healthz: status = %d, want 200", r.status)
			}
			r := do(t, srv, http.MethodGet, "/readyz", nil, nil)
			if tt.status != http.StatusOK {
				p := r.problem(t, tt.status)
				if strings.Contains(string(r.body), "secret") {
					t.Errorf("/readyz leaks the check's error: %s", r.body)
				}
				var failed []string
				for _, e := range p.Errors {
					failed = append(failed, e.Location)
				}
				if diff := cmp.Diff([]string{"db:broken"}, failed); diff != "" {
					t.Errorf("failed checks (-want +got):\n%s", diff)
				}
				return
			}
			if r.status != http.StatusOK {
				t.Fatalf("/readyz: status = %d, want 200; body: %s", r.status, r.body)
			}
			var got HealthBody
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(HealthBody{Status: "ok", Checks: tt.want}, got); diff != "" {
				t.Errorf("/readyz body (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHealthLogsFailure checks that a failing readiness check's cause, hidden from
// the client, reaches the log.
func TestHealthLogsFailure(t *testing.T) {
	logs := &syncBuffer{}
	srv, _ := newServer(t, Config{}, func(api huma.API) {
		RegisterHealth(api, []Check{{Name: "db:broken", Check: func(context.Context) error { return errors.New("disk on fire") }}},
			slog.New(slog.NewJSONHandler(logs, nil)))
	})
	do(t, srv, http.MethodGet, "/readyz", nil, nil).problem(t, http.StatusServiceUnavailable)
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("the failing check's cause was not logged; log:\n%s", logs.String())
	}
}
