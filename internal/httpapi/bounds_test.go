package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/go-cmp/cmp"
)

// secret is a password no answer may show, nor any part of it.
const secret = "hunter2-Correct-Horse-Battery-Staple"

// credentials is a sign-in body, with the validation the real one has.
type credentials struct {
	Email    string `json:"email" format:"email" maxLength:"254"`
	Password string `json:"password" minLength:"1" maxLength:"128"`
}

// registerSignIn registers a public sign-in-like operation, and one that changes a
// password, whose bodies are validated and never used.
func registerSignIn(api huma.API) {
	huma.Register(api, huma.Operation{OperationID: "sign-in", Method: http.MethodPost, Path: "/sign-in", Security: Public},
		func(context.Context, *struct{ Body credentials }) (*struct{}, error) { return nil, nil })
	huma.Register(api, huma.Operation{OperationID: "change-password", Method: http.MethodPost, Path: "/password", Security: Public},
		func(context.Context, *struct {
			Body struct {
				CurrentPassword string `json:"current_password" minLength:"1" maxLength:"128"`
				NewPassword     string `json:"new_password" minLength:"10" maxLength:"128"`
			}
		}) (*struct{}, error) {
			return nil, nil
		})
}

// unknownKeys returns a sign-in body with n unknown properties after the real ones.
func unknownKeys(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"email":"someone@example.com","password":%q`, secret)
	for i := range n {
		fmt.Fprintf(&b, `,"k%d":0`, i)
	}
	b.WriteString("}")
	return b.Bytes()
}

// TestValidationAnswersAreBounded sends bodies with many unknown properties, up to
// 80,000 in the 1 MiB limit. huma reports each with the whole body as its value, so
// the answer used to grow with the square of the body (a 47 KB request got 156 MB).
// Now the answer lists MaxProblemErrors details, then one that counts the rest,
// echoes no object, and stays small.
func TestValidationAnswersAreBounded(t *testing.T) {
	srv, _ := newServer(t, Config{MaxBodyBytes: 1 << 20}, registerSignIn)
	for _, n := range []int{21, 1000, 80_000} {
		t.Run(fmt.Sprintf("%d unknown properties", n), func(t *testing.T) {
			body := unknownKeys(n)
			if len(body) > 1<<20 {
				t.Fatalf("the body is %d bytes, over the 1 MiB limit", len(body))
			}
			start := time.Now()
			r := do(t, srv, http.MethodPost, "/sign-in", http.Header{"Content-Type": {"application/json"}}, bytes.NewReader(body))
			took := time.Since(start)
			p := r.problem(t, http.StatusUnprocessableEntity)
			t.Logf("%d unknown properties in a %d-byte body: a %d-byte answer in %v", n, len(body), len(r.body), took)
			if len(r.body) > 8<<10 {
				t.Errorf("the answer is %d bytes; want under 8 KiB", len(r.body))
			}
			if len(p.Errors) != MaxProblemErrors+1 {
				t.Fatalf("%d error details, want %d and one that counts the rest", len(p.Errors), MaxProblemErrors+1)
			}
			if last := p.Errors[MaxProblemErrors].Message; !strings.HasPrefix(last, fmt.Sprintf("%d more errors", n-MaxProblemErrors)) {
				t.Errorf("last detail %q, want it to count the %d left out", last, n-MaxProblemErrors)
			}
			if strings.Contains(string(r.body), secret[:8]) || strings.Contains(string(r.body), `"value":{`) {
				t.Errorf("the answer echoes the body: %s", r.body)
			}
		})
	}
}

// TestProblemsNeverEchoSecrets checks, for each way a request can fail validation
// with a secret in it, that the answer shows no part of the secret.
func TestProblemsNeverEchoSecrets(t *testing.T) {
	srv, _ := newServer(t, Config{MaxBodyBytes: 1 << 20}, registerSignIn)
	long := secret + strings.Repeat("x", 128)
	tests := []struct {
		name, path, body string
		status           int
		location         string
	}{
		{"password too long", "/sign-in", `{"email":"a@example.com","password":"` + long + `"}`, 422, "body.password"},
		{"password of the wrong type", "/sign-in", `{"email":"a@example.com","password":["` + secret + `"]}`, 422, "body.password"},
		{"body that does not parse", "/sign-in", `{"password":"` + secret + `", "email":`, 400, "body"},
		{"secret in an unknown property", "/sign-in", `{"email":"a@example.com","password":"x","passwd":"` + secret + `"}`, 422, "body.passwd"},
		{"new password too short, current one too long", "/password", `{"current_password":"` + long + `","new_password":"` + secret[:9] + `"}`, 422, "body.current_password"},
		{"email invalid, next to a password", "/sign-in", `{"email":"not an email","password":"` + secret + `"}`, 422, "body.email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, http.MethodPost, tt.path, http.Header{"Content-Type": {"application/json"}}, strings.NewReader(tt.body))
			p := r.problem(t, tt.status)
			for _, part := range []string{secret[:9], secret[9:18], secret[18:]} {
				if strings.Contains(string(r.body), part) {
					t.Errorf("the answer shows %q of the secret: %s", part, r.body)
				}
			}
			var locations []string
			for _, d := range p.Errors {
				locations = append(locations, d.Location)
			}
			if !strings.Contains(strings.Join(locations, " "), tt.location) {
				t.Errorf("details at %v, want one at %s: %s", locations, tt.location, r.body)
			}
		})
	}
}

func TestEchoValue(t *testing.T) {
	long := strings.Repeat("é", 100) // two bytes each: the cut must not split one
	tests := []struct {
		location string
		value    any
		want     any
	}{
		{"body.name", "short", "short"},
		{"body.name", long, strings.Repeat("é", (MaxEchoBytes-len("…"))/2) + "…"},
		{"query.limit", 1000, 1000},
		{"body.amount", -1.5, -1.5},
		{"body.flag", true, true},
		{"body", `{"password":"x"}`, nil}, // a body that did not parse: never echoed
		{"body.items", []any{1, 2}, nil},
		{"body.price", map[string]any{"amount": 1}, nil},
		{"body.password", "x", nil},
		{"body.new_password", "x", nil},
		{"body.current_password", "x", nil},
		{"body.refresh_token", "x", nil},
		{"body.payment_token", "tok_visa", nil},
		{"body.items[3].card_number", "4242", nil},
		{"header.Authorization", "Bearer x", nil},
		{"body.apiKey", "x", nil},
		{"body.client_secret", "x", nil},
		{"path.id", nil, nil},
	}
	for _, tt := range tests {
		if got := echoValue(tt.location, tt.value); !cmp.Equal(got, tt.want) {
			t.Errorf("echoValue(%q, %v) = %v, want %v", tt.location, tt.value, got, tt.want)
		}
	}
}

// TestBoundProblemKeepsTheOriginal checks that bounding a problem copies it: a
// module may return the same *huma.ErrorModel to every caller.
func TestBoundProblemKeepsTheOriginal(t *testing.T) {
	shared := &huma.ErrorModel{Status: 422, Detail: strings.Repeat("d", 2000),
		Errors: []*huma.ErrorDetail{{Location: "body.password", Value: "x"}}}
	before, _ := json.Marshal(shared)
	got := boundProblem(shared)
	after, _ := json.Marshal(shared)
	if !bytes.Equal(before, after) {
		t.Errorf("boundProblem changed its argument")
	}
	if got.Errors[0].Value != nil || len(got.Detail) > maxDetailBytes {
		t.Errorf("boundProblem = %+v, want no value and a short detail", got)
	}
}
