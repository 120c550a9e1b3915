package app_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/app"
	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
)

// TestEveryProtectedRoute reads the running API's own OpenAPI document and attacks
// every operation that declares a bearer requirement: without a token, and with an
// expired, a forged (another key), an alg:none and a tampered token it must answer
// 401; an operation for admins must answer a customer 403 and let an admin through.
// A route added later is covered without touching this test.
func TestEveryProtectedRoute(t *testing.T) {
	cfg := testConfig(t, modhost.Names(app.Modules()))
	var srv *httpapi.Server
	var keys *auth.Keys
	a := fxtest.New(t, app.Serve(cfg, app.Modules(), slog.New(slog.DiscardHandler)), fx.Populate(&srv, &keys))
	a.RequireStart()
	defer a.RequireStop()
	base := "http://" + srv.Addr()

	now := time.Now()
	issue := func(k *auth.Keys, role string, at time.Time) string {
		tok, err := k.Issue(auth.Principal{UserID: bus.NewID(), Role: role}, at, 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	customer := issue(keys, "customer", now)
	tokens := map[string]string{"customer": customer, "admin": issue(keys, "admin", now), "driver": issue(keys, "driver", now)}
	// The customer's token with its role claim rewritten to admin, signature kept.
	parts := strings.Split(customer, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), `"customer"`, `"admin"`, 1))) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), `"customer"`, `"admin"`, 1))) + "."
	bad := map[string]string{
		"no token":        "",
		"expired":         "Bearer " + issue(keys, "admin", now.Add(-time.Hour)),
		"another key":     "Bearer " + issue(auth.NewKeys(otherKey), "admin", now),
		"alg none":        "Bearer " + none,
		"tampered claims": "Bearer " + tampered,
	}

	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                `json:"operationId"`
			Security    []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	res, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	param := regexp.MustCompile(`\{[^}]+\}`)
	send := func(method, path, authz string) int {
		t.Helper()
		url := base + param.ReplaceAllStringFunc(path, func(p string) string {
			if p == "{module}" {
				return "catalog"
			}
			return bus.NewID()
		})
		var body io.Reader
		if method != http.MethodGet && method != http.MethodDelete {
			body = strings.NewReader(`{}`)
		}
		req, _ := http.NewRequest(method, url, body)
		req.Header.Set("Content-Type", "application/json")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	protected, adminOnly := 0, 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			method = strings.ToUpper(method)
			rule := httpapi.RuleOf(op.Security)
			roles, usesBearer := rule.Roles, rule.Bearer
			if !usesBearer {
				continue
			}
			protected++
			required := !containsEmpty(op.Security)
			for name, authz := range bad {
				if authz == "" && !required {
					continue // optional sign-in: no token is allowed
				}
				if got := send(method, path, authz); got != http.StatusUnauthorized {
					t.Errorf("%s %s (%s) with %s: %d, want 401", method, path, op.OperationID, name, got)
				}
			}
			if len(roles) > 0 { // only the roles named: every other role is refused
				adminOnly++
				for role, tok := range tokens {
					got := send(method, path, "Bearer "+tok)
					switch admitted := slices.Contains(roles, role); {
					case !admitted && got != http.StatusForbidden:
						t.Errorf("%s %s (%s) as a %s: %d, want 403", method, path, op.OperationID, role, got)
					case admitted && (got == http.StatusUnauthorized || got == http.StatusForbidden):
						t.Errorf("%s %s (%s) as a %s: %d, want past the access check", method, path, op.OperationID, role, got)
					}
				}
			}
		}
	}
	if protected < 10 || adminOnly < 8 {
		t.Fatalf("only %d protected and %d admin-only operations found; the document was not read right", protected, adminOnly)
	}
}

func containsEmpty(security []map[string][]string) bool {
	for _, req := range security {
		if len(req) == 0 {
			return true
		}
	}
	return false
}
