package apitest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/httpapi/apitest"
)

const userID = "0190a8b2-0000-7000-8000-00000000c001"

type echoIn struct {
	Body struct {
		Name string `json:"name"`
	}
}

type echoBody struct {
	Name   string `json:"name"`
	UserID string `json:"user_id"`
}

type echoOut struct{ Body echoBody }

// routes are a signed-in echo and a route that fails inside (an unmapped error:
// a 500 that logs its cause).
func routes(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "echo", Method: http.MethodPost, Path: "/echo", Security: httpapi.SignedIn,
	}, func(ctx context.Context, in *echoIn) (*echoOut, error) {
		p, _ := httpapi.PrincipalFrom(ctx)
		return &echoOut{Body: echoBody{Name: in.Body.Name, UserID: p.UserID}}, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "fail", Method: http.MethodGet, Path: "/fail", Security: httpapi.Public,
	}, func(context.Context, *struct{}) (*struct{}, error) {
		return nil, errors.New("the store is on fire")
	})
}

// TestDo checks that a request carries its token, headers and body as described,
// and that the edge verifies tokens with the harness's keys.
func TestDo(t *testing.T) {
	s := apitest.New(t, routes)
	tok := apitest.Token(userID, "customer")
	for _, tt := range []struct {
		name   string
		r      apitest.Request
		status int
	}{
		{"JSON body", apitest.Request{Body: map[string]string{"name": "ada"}, Token: tok}, 200},
		{"string body", apitest.Request{Body: `{"name":"ada"}`, Token: tok}, 200},
		{"no token", apitest.Request{Body: `{"name":"ada"}`}, 401},
		{"expired token", apitest.Request{Body: `{"name":"ada"}`, Token: apitest.ExpiredToken(userID, "customer")}, 401},
		{"header replaces the token", apitest.Request{Body: `{"name":"ada"}`, Token: tok,
			Header: map[string]string{"Authorization": "Bearer nope"}}, 401},
		{"token in a header", apitest.Request{Body: `{"name":"ada"}`,
			Header: map[string]string{"Authorization": "Bearer " + tok}}, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.Method, tt.r.Path = http.MethodPost, "/echo"
			w := s.Do(t, tt.r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body.String())
			}
			if w.Code != http.StatusOK {
				apitest.Problem(t, w)
				return
			}
			if diff := cmp.Diff(echoBody{Name: "ada", UserID: userID}, apitest.Decode[echoBody](t, w)); diff != "" {
				t.Errorf("echo (-want +got):\n%s", diff)
			}
		})
	}
}

// tb is a testing.TB whose failures and cleanups are kept to look at.
type tb struct {
	testing.TB
	errors   []string
	cleanups []func()
}

func (f *tb) Helper()           {}
func (f *tb) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *tb) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

// end runs f's cleanups as the testing package does, last first.
func (f *tb) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// TestErrorLogged checks that a request that logs an error fails the test that
// made it, even though it answered, and that one that logs nothing does not.
func TestErrorLogged(t *testing.T) {
	for _, tt := range []struct {
		path   string
		status int
		fails  bool
	}{
		{"/fail", 500, true},
		{"/nowhere", 404, false},
	} {
		f := &tb{TB: t}
		s := apitest.New(f, routes)
		if w := s.Do(t, apitest.Request{Method: http.MethodGet, Path: tt.path}); w.Code != tt.status {
			t.Fatalf("GET %s: status %d, want %d", tt.path, w.Code, tt.status)
		}
		f.end()
		if got := len(f.errors) > 0 && strings.Contains(strings.Join(f.errors, "\n"), "the store is on fire"); got != tt.fails {
			t.Errorf("GET %s: the test failed: %v, want %v (failures %q)", tt.path, got, tt.fails, f.errors)
		}
	}
}

// TestProblem checks that Problem fails a test for an answer that is not a
// problem, or whose problem states another status.
func TestProblem(t *testing.T) {
	for _, tt := range []struct {
		name, contentType, body string
		fails                   bool
	}{
		{"problem", apitest.ProblemJSON, `{"status":404,"title":"Not Found"}`, false},
		{"plain JSON", "application/json", `{"status":404,"title":"Not Found"}`, true},
		{"another status", apitest.ProblemJSON, `{"status":400,"title":"Bad Request"}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("Content-Type", tt.contentType)
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.WriteString(tt.body)
			f := &tb{TB: t}
			p := apitest.Problem(f, w)
			if failed := len(f.errors) > 0; failed != tt.fails {
				t.Errorf("failed %v, want %v: %q", failed, tt.fails, f.errors)
			}
			if p.Title == "" {
				t.Errorf("problem not decoded: %+v", p)
			}
		})
	}
}
