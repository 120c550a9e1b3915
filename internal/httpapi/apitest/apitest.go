// Package apitest is the harness for tests of the modules' HTTP adapters: a
// module's routes behind the real HTTP edge (httpapi.NewAPI, with its limits,
// access rules and problem answers), access tokens for any user and role, requests
// and their answers, and a check that nothing was logged at error level while a
// test ran — a request that logs an error failed inside, whatever it answered.
//
// It is meant for _test.go files only.
package apitest

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/testlog"
)

// MaxBodyBytes is the body limit of the APIs New builds: a body of this size is
// read, a larger one is refused with 413.
const MaxBodyBytes = 1 << 20

// ProblemJSON is the media type of every error answer.
const ProblemJSON = "application/problem+json"

// keys sign the tokens Token issues; the APIs New builds verify with them. The
// seed is fixed, so a run's tokens are reproducible.
var keys = auth.NewKeys(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))

// Token returns an access token for userID with role, valid for an hour from now.
// It panics if the token cannot be signed, so it can set package variables.
func Token(userID, role string) string {
	return issue(userID, role, time.Now(), time.Hour)
}

// ExpiredToken returns an access token for userID with role, signed by the right
// key, that expired an hour ago.
func ExpiredToken(userID, role string) string {
	return issue(userID, role, time.Now().Add(-2*time.Hour), time.Hour)
}

func issue(userID, role string, issuedAt time.Time, ttl time.Duration) string {
	tok, err := keys.Issue(auth.Principal{UserID: userID, Role: role}, issuedAt, ttl)
	if err != nil {
		panic(err)
	}
	return tok
}

// errs collects every record logged at error level through Logger, by the edge,
// the bus and huma's 5xx hook alike.
var (
	errs        = testlog.New(slog.LevelError)
	installHook sync.Once
)

// Logger returns the logger to give what a test builds behind the API (its
// database, bus and services), so that what they log at error level fails the
// test as well.
func Logger() *slog.Logger { return errs.Logger() }

// Server is a module's routes behind the real HTTP edge.
type Server struct {
	handler http.Handler
}

// New returns a Server for routes, with the edge configured as in production but
// for small limits: MaxBodyBytes, 64 requests in flight, a ten-second deadline.
// Tokens from Token verify. What was logged at error level before New is
// forgotten; anything logged after it fails t when t ends. Tests that use New must
// not run in parallel within a package: the log is shared.
func New(t testing.TB, routes ...httpapi.Routes) *Server {
	t.Helper()
	// huma's error constructor is package-global: install the hook once, before
	// the first API is built.
	installHook.Do(func() { httpapi.InstallErrorHook(errs.Logger()) })
	a := httpapi.NewAPI(httpapi.Config{Verifier: keys, MaxBodyBytes: MaxBodyBytes, MaxInFlight: 64,
		RequestTimeout: 10 * time.Second}, errs.Logger())
	for _, r := range routes {
		r(a)
	}
	errs.Take()
	t.Cleanup(func() {
		for _, r := range errs.Take() {
			t.Errorf("error logged: %s", r)
		}
	})
	return &Server{handler: a.Handler()}
}

// Handler returns the API with its middleware, to serve over a real connection
// (httptest.NewServer) where a test reads a stream while it is being written.
func (s *Server) Handler() http.Handler { return s.handler }

// Request is one HTTP request to a Server.
type Request struct {
	Method, Path string
	// Body is sent as is when it is a string, as JSON otherwise; nil sends none.
	// A body comes with Content-Type: application/json.
	Body any
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Header is set last, so it may replace Authorization too.
	Header map[string]string
}

// Do sends r, in t's context, and returns the whole answer.
func (s *Server) Do(t testing.TB, r Request) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	switch b := r.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		body = strings.NewReader(string(raw))
	}
	hr := httptest.NewRequestWithContext(t.Context(), r.Method, r.Path, body)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, hr)
	return w
}

// Decode returns w's body decoded as JSON into a T; t fails at once if it is not one.
func Decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, w.Body.String(), err)
	}
	return v
}

// Problem returns w's body as a problem (RFC 9457). t fails if w is not
// problem+json or its problem states another status than w's.
func Problem(t testing.TB, w *httptest.ResponseRecorder) huma.ErrorModel {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != ProblemJSON {
		t.Errorf("Content-Type = %q, want %s; body %s", ct, ProblemJSON, w.Body.String())
	}
	p := Decode[huma.ErrorModel](t, w)
	if p.Status != w.Code {
		t.Errorf("problem status %d, response status %d", p.Status, w.Code)
	}
	return p
}
