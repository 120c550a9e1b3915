package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/auth"
)

// A verifier follows a rotation: a token signed with a key it has not seen makes
// it fetch the set again (at most once a second), and tokens of the old key keep
// verifying while the old key stays published (the overlap).
func TestVerifierFollowsRotation(t *testing.T) {
	identity := auth.NewKeys(newKey(t))
	var fetches atomic.Int32
	verifier := auth.NewVerifier()
	verifier.SetSource(func(context.Context) ([]auth.PublicKey, error) {
		fetches.Add(1)
		return identity.PublicKeys(), nil
	})
	if err := verifier.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := auth.Principal{UserID: "u", Role: "customer"}
	old, _ := identity.Issue(p, time.Now(), time.Minute)
	if _, err := verifier.Verify(old); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}

	// Rotate: a new key signs, the old one stays published.
	next := newKey(t)
	identity.SetSigning(next)
	identity.SetPublished(append([]auth.PublicKey{auth.PublicKeyOf(next)}, identity.PublicKeys()...))
	time.Sleep(time.Second) // the minimum interval between fetches
	fresh, _ := identity.Issue(p, time.Now(), time.Minute)
	before := fetches.Load()
	if _, err := verifier.Verify(fresh); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	if fetches.Load() != before+1 {
		t.Errorf("fetches = %d, want one more than %d", fetches.Load(), before)
	}
	if _, err := verifier.Verify(old); err != nil {
		t.Errorf("a token of the old key during the overlap: %v", err)
	}

	// Made-up key ids cannot make it fetch more than once a second.
	stranger := auth.NewKeys(newKey(t))
	for range 20 {
		tok, _ := stranger.Issue(p, time.Now(), time.Minute)
		if _, err := verifier.Verify(tok); !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("a token of an unknown key verified: %v", err)
		}
	}
	if n := fetches.Load(); n > before+2 {
		t.Errorf("20 tokens of unknown keys made %d fetches, want at most 1", n-before-1)
	}

	// Once the old key is no longer published, its tokens are refused.
	identity.SetPublished([]auth.PublicKey{auth.PublicKeyOf(next)})
	verifier.SetPublished(identity.PublicKeys())
	if _, err := verifier.Verify(old); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("a token of a retired key verified: %v", err)
	}
}

func TestKeyIDIsTheJWKThumbprint(t *testing.T) {
	// RFC 8037, appendix A.3: the thumbprint of its example key.
	pub := auth.VerifyOnly(decodeX(t, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")).PublicKeys()[0]
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; pub.ID != want {
		t.Errorf("KeyID = %s, want %s", pub.ID, want)
	}
}

func TestRevoke(t *testing.T) {
	keys := auth.NewKeys(newKey(t))
	p := auth.Principal{UserID: "u", Role: "customer"}
	now := time.Now()
	v0, _ := keys.IssueVersion(p, 0, now, time.Minute)
	v1, _ := keys.IssueVersion(p, 1, now, time.Minute)
	other, _ := keys.IssueVersion(auth.Principal{UserID: "w", Role: "customer"}, 0, now, time.Minute)
	for _, tok := range []string{v0, v1, other} {
		if _, err := keys.Verify(tok); err != nil { // and cached
			t.Fatal(err)
		}
	}
	keys.Revoke("u", 1, now.Add(time.Minute))
	if _, err := keys.Verify(v0); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("a revoked (cached) token verified: %v", err)
	}
	for name, tok := range map[string]string{"the new version": v1, "another subject": other} {
		if _, err := keys.Verify(tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	keys.Revoke("u", 0, now.Add(time.Hour)) // an older revocation arriving late
	if _, err := keys.Verify(v0); !errors.Is(err, auth.ErrInvalid) {
		t.Error("a lower version undid a revocation")
	}
	keys.Revoke("x", 5, now.Add(-time.Second)) // over already: nothing to remember
	if n := keys.Revocations(); n != 1 {
		t.Errorf("Revocations = %d, want 1", n)
	}
}

// With more revocations than it may hold, a process refuses every token issued
// before the overflow rather than forgetting one.
func TestRevokeOverflowRefusesOlderTokens(t *testing.T) {
	keys := auth.NewKeys(newKey(t))
	now := time.Now()
	old, _ := keys.IssueVersion(auth.Principal{UserID: "bystander", Role: "customer"}, 0, now.Add(-2*time.Second), time.Minute)
	for i := range auth.MaxRevocations + 1 {
		keys.Revoke(strconv.Itoa(i), 1, now.Add(time.Minute))
	}
	if n := keys.Revocations(); n > auth.MaxRevocations {
		t.Errorf("Revocations = %d, above the bound %d", n, auth.MaxRevocations)
	}
	if _, err := keys.Verify(old); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("a token issued before the overflow verified: %v", err)
	}
	fresh, _ := keys.IssueVersion(auth.Principal{UserID: "bystander", Role: "customer"}, 0, now.Add(2*time.Second), time.Minute)
	if _, err := keys.Verify(fresh); err != nil {
		t.Errorf("a token issued after the overflow: %v", err)
	}
}

func decodeX(t *testing.T, x string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(x)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
