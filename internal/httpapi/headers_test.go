package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// TestSecurityHeaders checks the headers every answer carries — no sniffing, no
// Referer — and that answers for a signed-in caller or an admin are never stored
// by a cache, while public ones may be.
func TestSecurityHeaders(t *testing.T) {
	keys, issue := testKeys(t)
	now := time.Now()
	srv, _ := newServer(t, Config{Verifier: keys, MaxBodyBytes: 16}, func(api huma.API) {
		registerRules(api)
		api.(*API).Mux().HandleFunc("/plain/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	})
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	customer := bearer(issue(keys, customerID, "customer", now))
	admin := bearer(issue(keys, adminID, "admin", now))
	tests := []struct {
		name, method, path string
		header             http.Header
		status             int
		noStore            bool
	}{
		{"public", "GET", "/public", nil, 200, false},
		{"public, with a token it ignores", "GET", "/public", customer, 200, false},
		{"public or admin, anonymous", "GET", "/mixed", nil, 200, false},
		{"public or admin, signed in", "GET", "/mixed", customer, 200, true},
		{"public or admin, a bad token", "GET", "/mixed", bearer("nope"), 401, true},
		{"signed in", "GET", "/signed-in", customer, 200, true},
		{"signed in, without a token", "GET", "/signed-in", nil, 401, true},
		{"admin", "GET", "/admin", admin, 200, true},
		{"admin, as a customer", "GET", "/admin", customer, 403, true},
		{"no route", "GET", "/nowhere", nil, 404, true},
		{"a handler's plain 404", "GET", "/plain/x", nil, 404, true},
		{"body too large", "POST", "/public", nil, 413, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r response
			if tt.method == "POST" {
				r = do(t, srv, tt.method, tt.path, nil, strings.NewReader(strings.Repeat("x", 100)))
			} else {
				r = do(t, srv, tt.method, tt.path, tt.header, nil)
			}
			if r.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tt.status, r.body)
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if got := r.header.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy %q, want no-referrer", got)
			}
			if got := r.header.Get("Cache-Control"); (got == "no-store") != tt.noStore {
				t.Errorf("Cache-Control %q; want no-store: %v", got, tt.noStore)
			}
		})
	}
}

// TestPlainErrorsBecomeProblems checks that an error a handler outside huma writes
// as plain text (http.NotFound, http.Error) reaches the client as problem+json,
// with its status and headers, and that other answers are left alone.
func TestPlainErrorsBecomeProblems(t *testing.T) {
	srv, _ := newServer(t, Config{}, func(api huma.API) {
		mux := api.(*API).Mux()
		mux.HandleFunc("/docs/", func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/docs/page":
				if r.Method != http.MethodGet {
					w.Header().Set("Allow", "GET, HEAD")
					http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
					return
				}
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = w.Write([]byte("<p>docs</p>"))
			case "/docs/broken":
				http.Error(w, "something internal", http.StatusInternalServerError)
			case "/docs/forbidden":
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte("<p>admins only</p>"))
			default:
				http.NotFound(w, r)
			}
		})
	})
	p := do(t, srv, "GET", "/docs/nope", nil, nil).problem(t, http.StatusNotFound)
	if p.Detail != "no route for GET /docs/nope" {
		t.Errorf("detail %q", p.Detail)
	}
	r := do(t, srv, "POST", "/docs/page", nil, nil)
	r.problem(t, http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow %q, want the handler's", r.header.Get("Allow"))
	}
	if p := do(t, srv, "GET", "/docs/broken", nil, nil).problem(t, http.StatusInternalServerError); p.Detail != "Internal Server Error" {
		t.Errorf("a plain 500 shows %q, want nothing internal", p.Detail)
	}
	if r := do(t, srv, "GET", "/docs/page", nil, nil); r.status != 200 || string(r.body) != "<p>docs</p>" {
		t.Errorf("a page: %d %s", r.status, r.body)
	}
	// An HTML error page is written for people, on purpose: it stays.
	if r := do(t, srv, "GET", "/docs/forbidden", nil, nil); r.status != 403 || string(r.body) != "<p>admins only</p>" {
		t.Errorf("an HTML error page: %d %s", r.status, r.body)
	}
	// The API's own problems are untouched.
	do(t, srv, "DELETE", "/openapi.json", nil, nil).problem(t, http.StatusMethodNotAllowed)
}
