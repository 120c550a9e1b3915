package tests

import (
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"
)

// TestE2ERevocation checks, on the single binary and on the split layout (identity
// in a process of its own, every other module in others, no key file anywhere),
// that every way of revoking access tokens takes effect at every process: logout,
// demotion from admin, password change. It also rotates the signing key: tokens
// of the new key verify everywhere at once, and those of the old key still do.
// The time from the revoking request's answer to the last process refusing the
// token is logged (docs/security.md reports it); it is not asserted.
func TestE2ERevocation(t *testing.T) {
	t.Parallel()
	layouts := map[string]func(t *testing.T) *deployment{
		"single": startSingle,
		"split":  func(t *testing.T) *deployment { return startSplit(t, splitLayout, false) },
	}
	for name, start := range layouts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			revocationTour(t, start(t))
		})
	}
}

func revocationTour(t *testing.T, d *deployment) {
	a := d.entry
	procs := d.all()
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	const email, password = "revoke.me@example.com", "a long passphrase for revocation"
	var u struct {
		ID string `json:"id"`
	}
	a.do(http.MethodPost, "/v1/auth/register", map[string]string{"email": email, "password": password}).want(t, http.StatusCreated, &u)
	type tokens struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	login := func() tokens {
		var tok tokens
		a.do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": password}).want(t, http.StatusOK, &tok)
		for _, p := range procs { // every process verifies it
			p.do(http.MethodGet, "/v1/me", nil, bearer(tok.AccessToken)...).want(t, http.StatusOK, nil)
		}
		return tok
	}

	tok := login()
	a.do(http.MethodPost, "/v1/auth/logout", map[string]string{"refresh_token": tok.RefreshToken}).want(t, http.StatusNoContent, nil)
	logRevoked(t, "logout", refusedEverywhere(t, procs, "/v1/me", tok.AccessToken))

	// Promote, sign in as admin, demote: the admin token stops reading admin data.
	setRole := func(role string) {
		r := a.do(http.MethodGet, "/v1/users/"+u.ID, nil, a.admin()...)
		r.want(t, http.StatusOK, nil)
		a.do(http.MethodPut, "/v1/users/"+u.ID+"/role", map[string]string{"role": role},
			a.admin("If-Match", r.header.Get("ETag"))...).want(t, http.StatusOK, nil)
	}
	setRole("admin")
	adminTok := login()
	for _, p := range procs {
		p.do(http.MethodGet, "/v1/ops/orders", nil, bearer(adminTok.AccessToken)...).want(t, http.StatusOK, nil)
	}
	setRole("customer")
	logRevoked(t, "demotion", refusedEverywhere(t, procs, "/v1/ops/orders", adminTok.AccessToken))

	tok = login()
	a.do(http.MethodPost, "/v1/me/password", map[string]string{"current_password": password, "new_password": password + " v2"},
		bearer(tok.AccessToken)...).want(t, http.StatusNoContent, nil)
	logRevoked(t, "password change", refusedEverywhere(t, procs, "/v1/me", tok.AccessToken))

	// Rotation: the admin's token of the old key keeps working everywhere, and a
	// token of the new key works everywhere at once.
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	a.do(http.MethodPost, "/v1/ops/keys/rotate", nil, a.admin()...).want(t, http.StatusOK, &set)
	if len(set.Keys) != 2 {
		t.Fatalf("after a rotation the key set has %d keys, want 2 (new and old)", len(set.Keys))
	}
	fresh, err := a.login("customer@example.com", "demo-customer-password")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		p.do(http.MethodGet, "/.well-known/jwks.json", nil).want(t, http.StatusOK, nil)
		p.do(http.MethodGet, "/v1/me", nil, bearer(fresh)...).want(t, http.StatusOK, nil)
		p.do(http.MethodGet, "/v1/ops/orders", nil, a.admin()...).want(t, http.StatusOK, nil)
	}
}

// refusedEverywhere waits until every process answers 401 to token on path and
// returns how long each took after the call (bounded by 10 s, then fails).
func refusedEverywhere(t *testing.T, procs []*agora, path, token string) []time.Duration {
	t.Helper()
	start := time.Now()
	var took []time.Duration
	for _, p := range procs {
		for {
			r := p.do(http.MethodGet, path, nil, "Authorization", "Bearer "+token)
			if r.status == http.StatusUnauthorized {
				took = append(took, time.Since(start))
				break
			}
			if r.status != http.StatusOK || time.Since(start) > 10*time.Second {
				t.Fatalf("%s with a revoked token at %s: %d after %v, want 401", path, p.base, r.status, time.Since(start))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return took
}

func logRevoked(t *testing.T, what string, took []time.Duration) {
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("%s: refused at %d processes within %v (slowest), %v (fastest)", what, len(took),
		took[len(took)-1].Round(time.Millisecond), took[0].Round(time.Millisecond))
}

// all returns every process of the deployment.
func (d *deployment) all() []*agora {
	var out []*agora
	for _, ps := range d.procs {
		out = append(out, ps...)
	}
	if len(out) == 0 {
		panic(fmt.Sprintf("deployment without processes: %+v", d))
	}
	return out
}
