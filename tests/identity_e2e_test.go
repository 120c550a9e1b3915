package tests

import (
	"net/http"
	"testing"
)

// TestE2EIdentity walks a customer through the identity API of the real binary:
// sign up, sign in, refresh rotation and reuse detection, sign out, what a customer
// may not do, and the sign-in rate limit.
func TestE2EIdentity(t *testing.T) {
	t.Parallel()
	a := startAgora(t, t.TempDir())
	type tokens struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
	}
	type user struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	var u user
	a.do(http.MethodPost, "/v1/auth/register", map[string]string{"email": "  New.Person@Example.com ", "password": "a long passphrase"}).
		want(t, http.StatusCreated, &u)
	if u.Email != "new.person@example.com" || u.Role != "customer" {
		t.Fatalf("registered %+v, want a customer with the normalized email", u)
	}
	a.do(http.MethodPost, "/v1/auth/register", map[string]string{"email": "NEW.PERSON@example.com", "password": "another passphrase"}).
		wantProblem(t, http.StatusConflict)
	a.do(http.MethodPost, "/v1/auth/register", map[string]string{"email": "short@example.com", "password": "short"}).
		wantProblem(t, http.StatusUnprocessableEntity)

	var tok tokens
	r := a.do(http.MethodPost, "/v1/auth/login", map[string]string{"email": "new.person@example.com", "password": "a long passphrase"})
	r.want(t, http.StatusOK, &tok)
	if tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token response %+v is not in the OAuth 2 shape", tok)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("token response Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
	}
	var me user
	a.do(http.MethodGet, "/v1/me", nil, bearer(tok.AccessToken)...).want(t, http.StatusOK, &me)
	if me.ID != u.ID {
		t.Errorf("/v1/me = %+v, want %+v", me, u)
	}

	// Wrong password and unknown email: the same answer.
	wrong := a.do(http.MethodPost, "/v1/auth/login", map[string]string{"email": "new.person@example.com", "password": "not the passphrase"})
	unknown := a.do(http.MethodPost, "/v1/auth/login", map[string]string{"email": "nobody@example.com", "password": "not the passphrase"})
	wrong.wantProblem(t, http.StatusUnauthorized)
	unknown.wantProblem(t, http.StatusUnauthorized)
	if string(wrong.body) != string(unknown.body) {
		t.Errorf("login failures differ, revealing whether the email exists:\n%s\n%s", wrong.body, unknown.body)
	}

	// A customer may not do admin things.
	a.do(http.MethodGet, "/v1/users", nil, bearer(tok.AccessToken)...).wantProblem(t, http.StatusForbidden)
	a.do(http.MethodPost, "/v1/products", map[string]any{"sku": "NOPE", "name": "n", "price": map[string]any{"amount": 1, "currency": "EUR"}},
		bearer(tok.AccessToken)...).wantProblem(t, http.StatusForbidden)
	a.do(http.MethodGet, "/v1/users", nil, a.admin()...).want(t, http.StatusOK, nil)

	// Refresh rotates; presenting the spent token again revokes the family.
	var next tokens
	a.do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": tok.RefreshToken}).want(t, http.StatusOK, &next)
	if next.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not rotate the refresh token")
	}
	a.do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": tok.RefreshToken}).wantProblem(t, http.StatusUnauthorized)
	a.do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": next.RefreshToken}).wantProblem(t, http.StatusUnauthorized)

	// Sign out revokes the family of a fresh sign-in.
	var again tokens
	a.do(http.MethodPost, "/v1/auth/login", map[string]string{"email": "new.person@example.com", "password": "a long passphrase"}).want(t, http.StatusOK, &again)
	a.do(http.MethodPost, "/v1/auth/logout", map[string]string{"refresh_token": again.RefreshToken}).want(t, http.StatusNoContent, nil)
	a.do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": again.RefreshToken}).wantProblem(t, http.StatusUnauthorized)

	// The sign-in limit: five attempts a minute per account, then 429 with Retry-After.
	var limited reply
	for range 10 {
		limited = a.do(http.MethodPost, "/v1/auth/login", map[string]string{"email": "customer@example.com", "password": "guess guess guess"})
		if limited.status == http.StatusTooManyRequests {
			break
		}
	}
	limited.wantProblem(t, http.StatusTooManyRequests)
	if limited.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
