package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
)

// registerText registers operations that take text in every place a request can
// carry it, and answer 204 when it reached them.
func registerText(api huma.API) {
	huma.Register(api, huma.Operation{OperationID: "get-item", Method: http.MethodGet, Path: "/items/{id}", Security: Public},
		func(context.Context, *struct {
			ID    string `path:"id"`
			Q     string `query:"q"`
			Thing string `header:"X-Thing"`
		}) (*struct{}, error) {
			return nil, nil
		})
	huma.Register(api, huma.Operation{OperationID: "put-item", Method: http.MethodPut, Path: "/items", Security: Public},
		func(context.Context, *struct {
			Body struct {
				Name string `json:"name"`
			}
		}) (*struct{}, error) {
			return nil, nil
		})
}

// TestBadTextIsRefusedAtTheEdge sends NUL and invalid UTF-8 in each part of a
// request: every one is a 400 problem naming the part, before any handler (and so
// any store) sees it. Text that only looks like it (an escaped backslash before
// "u0000") passes.
func TestBadTextIsRefusedAtTheEdge(t *testing.T) {
	api := NewAPI(Config{MaxBodyBytes: 1 << 20}, slog.New(slog.DiscardHandler))
	registerText(api)
	tests := []struct {
		name, method, target string
		header               http.Header
		body                 string
		where                string // "" for a request that must pass (204)
	}{
		{"NUL in the path", "GET", "/items/%00", nil, "", "path"},
		{"invalid UTF-8 in the path", "GET", "/items/%ff%fe", nil, "", "path"},
		{"NUL in a query value", "GET", "/items/1?q=%00no-such-word", nil, "", "query.q"},
		{"invalid UTF-8 in a query value", "GET", "/items/1?q=caf%E9", nil, "", "query.q"},
		{"NUL in a query name", "GET", "/items/1?%00=1", nil, "", "query"},
		{"NUL in a header", "GET", "/items/1", http.Header{"X-Thing": {"a\x00b"}}, "", "header.X-Thing"},
		{"invalid UTF-8 in a header", "GET", "/items/1", http.Header{"Idempotency-Key": {"\xff\xfe"}}, "", "header.Idempotency-Key"},
		{"invalid UTF-8 in the body", "PUT", "/items", nil, "{\"name\":\"\xff\"}", "body"},
		{"a NUL byte in the body", "PUT", "/items", nil, "{\"name\":\"a\x00\"}", "body"},
		{"an escaped NUL in the body", "PUT", "/items", nil, `{"name":"a\u0000b"}`, "body"},
		{"an escaped NUL after an escaped backslash", "PUT", "/items", nil, `{"name":"\\\u0000"}`, "body"},
		{"good text everywhere", "GET", "/items/caf%C3%A9?q=%E2%82%AC", http.Header{"X-Thing": {"ok"}}, "", ""},
		{"an escaped backslash before u0000", "PUT", "/items", nil, `{"name":"a\\u0000b"}`, ""},
		{"other escapes", "PUT", "/items", nil, `{"name":"tab\there \u00e9 \ud83d\ude00"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Straight to the handler: a client would refuse to send some of these.
			req := httptest.NewRequestWithContext(t.Context(), tt.method, tt.target, strings.NewReader(tt.body))
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			w := httptest.NewRecorder()
			api.Handler().ServeHTTP(w, req)
			r := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
			if tt.where == "" {
				if r.status != http.StatusNoContent {
					t.Fatalf("status %d, want 204; body %s", r.status, r.body)
				}
				return
			}
			p := r.problem(t, http.StatusBadRequest)
			if len(p.Errors) != 1 || p.Errors[0].Location != tt.where {
				t.Errorf("details %+v, want one at %s", p.Errors, tt.where)
			}
		})
	}
}

// TestBodyTextIsCheckedAfterTheRateLimit checks that the body check costs a refused
// request nothing: an operation's rate limit answers 429 before the body is read.
func TestBodyTextIsCheckedAfterTheRateLimit(t *testing.T) {
	srv, _ := newServer(t, Config{MaxBodyBytes: 1 << 20}, func(api huma.API) {
		huma.Register(api, RateLimited(huma.Operation{OperationID: "put-item", Method: http.MethodPut, Path: "/items", Security: Public}, 1, 1),
			func(context.Context, *struct{ Body struct{ Name string } }) (*struct{}, error) { return nil, nil })
	})
	bad := func() io.Reader { return strings.NewReader("{\"name\":\"\xff\"}") }
	do(t, srv, http.MethodPut, "/items", http.Header{"Content-Type": {"application/json"}}, bad()).problem(t, http.StatusBadRequest)
	do(t, srv, http.MethodPut, "/items", http.Header{"Content-Type": {"application/json"}}, bad()).problem(t, http.StatusTooManyRequests)
}

func TestValidJSONText(t *testing.T) {
	for body, want := range map[string]bool{
		``:                         true,
		`{"a":"b"}`:                true,
		`{"a":"\\"}`:               true,
		`{"a":"\\\\u0000"}`:        true,
		`{"a":"\u0001"}`:           true,
		`{"a":"\u0000"}`:           false,
		`{"a":"\\\u0000"}`:         false,
		`{"a":"x\"\u0000"}`:        false,
		`{"\u0000":1}`:             false,
		"{\"a\":\"\x00\"}":         false,
		"{\"a\":\"\xc3\"}":         false, // a cut two-byte character
		"{\"a\":\"\xed\xa0\x80\"}": false, // a UTF-16 surrogate, not UTF-8
		`\`:                        true,  // not JSON, but no NUL: the parser's to refuse
		`\u000`:                    true,
	} {
		if got := validJSONText([]byte(body)); got != want {
			t.Errorf("validJSONText(%q) = %v, want %v", body, got, want)
		}
	}
}
