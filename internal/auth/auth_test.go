package auth_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/testlog"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// claims returns valid claims for a token issued now, for tests to spoil.
func claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": auth.Issuer, "aud": []string{auth.Audience}, "sub": "user-1", "role": "customer",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func without(c jwt.MapClaims, key string) jwt.MapClaims {
	delete(c, key)
	return c
}

func with(c jwt.MapClaims, key string, v any) jwt.MapClaims {
	c[key] = v
	return c
}

// signed signs c with EdDSA and priv.
func signed(t *testing.T, priv ed25519.PrivateKey, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned crafts a token with header {"alg":"none","typ":"JWT"} and an empty
// signature by hand, as an attacker would.
func unsigned(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	enc := base64.RawURLEncoding
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(body) + "."
}

func TestIssueVerify(t *testing.T) {
	keys := auth.NewKeys(newKey(t))
	if !keys.CanSign() {
		t.Fatal("keys from a private key cannot sign")
	}
	for _, p := range []auth.Principal{
		{UserID: "0190a8b2-7c3e-7a1b-9f00-000000000001", Role: "customer"},
		{UserID: "admin-7", Role: "admin"},
	} {
		tok, err := keys.Issue(p, time.Now(), 15*time.Minute)
		if err != nil {
			t.Fatalf("Issue(%+v): %v", p, err)
		}
		if strings.Count(tok, ".") != 2 {
			t.Errorf("token %q is not a compact JWS", tok)
		}
		got, err := keys.Verify(tok)
		if err != nil {
			t.Fatalf("Verify a fresh token for %+v: %v", p, err)
		}
		if got != p {
			t.Errorf("Verify = %+v, want %+v", got, p)
		}
	}
}

func TestIssuedClaims(t *testing.T) {
	keys := auth.NewKeys(newKey(t))
	now := time.Unix(1_700_000_000, 0)
	tok, err := keys.Issue(auth.Principal{UserID: "u1", Role: "admin"}, now, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	var header map[string]any
	var c map[string]any
	for i, v := range []any{&header, &c} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatal(err)
		}
	}
	if header["alg"] != "EdDSA" {
		t.Errorf("alg = %v, want EdDSA", header["alg"])
	}
	want := map[string]any{"iss": auth.Issuer, "sub": "u1", "role": "admin",
		"iat": float64(now.Unix()), "nbf": float64(now.Unix()), "exp": float64(now.Add(15 * time.Minute).Unix())}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if aud, _ := json.Marshal(c["aud"]); string(aud) != `["agora-api"]` && string(aud) != `"agora-api"` {
		t.Errorf("aud = %s, want agora-api", aud)
	}
}

func TestVerifyRejects(t *testing.T) {
	priv := newKey(t)
	keys := auth.NewKeys(priv)
	other := auth.NewKeys(newKey(t))
	now := time.Now()
	p := auth.Principal{UserID: "user-1", Role: "admin"}
	issue := func(k *auth.Keys, at time.Time, ttl time.Duration) string {
		tok, err := k.Issue(p, at, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The classic algorithm confusion: HS256 with the public key as the HMAC secret.
	hs256, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(now)).SignedString([]byte(priv.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	// The same with the PEM of the public key, which is what a verifier reading a
	// key file might be tricked into using.
	pubPEM, err := keys.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	hs256PEM, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(now)).SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	good := signed(t, priv, claims(now))
	parts := strings.Split(good, ".")

	tests := []struct {
		name  string
		token string
	}{
		{"expired", issue(keys, now.Add(-2*time.Hour), time.Hour)},
		{"expired a minute ago", issue(keys, now.Add(-16*time.Minute), 15*time.Minute)},
		{"not yet valid", issue(keys, now.Add(time.Hour), time.Hour)},
		{"signed by another key", issue(other, now, time.Hour)},
		{"alg none", unsigned(t, claims(now))},
		{"alg none with the admin role", unsigned(t, with(claims(now), "role", "admin"))},
		{"HS256 with the public key as secret", hs256},
		{"HS256 with the public key PEM as secret", hs256PEM},
		{"wrong issuer", signed(t, priv, with(claims(now), "iss", "evil"))},
		{"no issuer", signed(t, priv, without(claims(now), "iss"))},
		{"wrong audience", signed(t, priv, with(claims(now), "aud", []string{"other-api"}))},
		{"no audience", signed(t, priv, without(claims(now), "aud"))},
		{"no expiry", signed(t, priv, without(claims(now), "exp"))},
		{"missing subject", signed(t, priv, without(claims(now), "sub"))},
		{"empty subject", signed(t, priv, with(claims(now), "sub", ""))},
		{"missing role", signed(t, priv, without(claims(now), "role"))},
		{"empty role", signed(t, priv, with(claims(now), "role", ""))},
		{"claims swapped under a valid signature", parts[0] + "." + strings.Split(signed(t, priv, with(claims(now), "role", "admin")), ".")[1] + "." + parts[2]},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"signature truncated", good[:len(good)-4]},
		{"garbage", "not-a-jwt"},
		{"three garbage parts", "a.b.c"},
		{"empty string", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keys.Verify(tt.token)
			if !errors.Is(err, auth.ErrInvalid) {
				t.Fatalf("Verify err = %v, want ErrInvalid", err)
			}
			if got != (auth.Principal{}) {
				t.Errorf("Verify returned %+v with its error, want the zero Principal", got)
			}
		})
	}
	// The control: the valid claims themselves verify, so each row fails for its
	// own reason.
	if _, err := keys.Verify(good); err != nil {
		t.Errorf("the unspoilt token does not verify: %v", err)
	}
}

// TestVerifyLeeway checks the small clock skew Verify allows, and no more.
func TestVerifyLeeway(t *testing.T) {
	keys := auth.NewKeys(newKey(t))
	p := auth.Principal{UserID: "u", Role: "customer"}
	now := time.Now()
	justExpired, _ := keys.Issue(p, now.Add(-time.Hour-2*time.Second), time.Hour)
	if _, err := keys.Verify(justExpired); err != nil {
		t.Errorf("a token expired 2s ago is refused (want a few seconds of leeway): %v", err)
	}
	longExpired, _ := keys.Issue(p, now.Add(-time.Hour-30*time.Second), time.Hour)
	if _, err := keys.Verify(longExpired); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("a token expired 30s ago: err = %v, want ErrInvalid", err)
	}
}

func TestVerifyOnly(t *testing.T) {
	priv := newKey(t)
	signer := auth.NewKeys(priv)
	p := auth.Principal{UserID: "u1", Role: "customer"}
	tok, err := signer.Issue(p, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	verifier := auth.VerifyOnly(priv.Public().(ed25519.PublicKey))
	if verifier.CanSign() {
		t.Error("VerifyOnly keys say they can sign")
	}
	if got, err := verifier.Verify(tok); err != nil || got != p {
		t.Errorf("VerifyOnly.Verify = %+v, %v; want %+v", got, err, p)
	}
	if s, err := verifier.Issue(p, time.Now(), time.Minute); err == nil || s != "" {
		t.Errorf("VerifyOnly.Issue = %q, %v; want an error", s, err)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func publicPEM(t *testing.T, k *auth.Keys) []byte {
	t.Helper()
	b, err := k.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoadWithoutFilesMakesNoKey checks that a process given no key file never
// makes a signing key of its own (which would make it refuse every token identity
// signs): it holds no key until identity's set is published to it.
func TestLoadWithoutFilesMakesNoKey(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // anything written relative to the working directory lands here
	k, err := auth.Load("", "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if k.CanSign() || k.HasKeys() {
		t.Errorf("Load without files: CanSign %v, HasKeys %v; want neither", k.CanSign(), k.HasKeys())
	}
	if _, err := k.Issue(auth.Principal{UserID: "u", Role: "customer"}, time.Now(), time.Minute); err == nil {
		t.Error("keys without files issued a token")
	}
	other := auth.NewKeys(newKey(t))
	tok, _ := other.Issue(auth.Principal{UserID: "u", Role: "customer"}, time.Now(), time.Minute)
	if _, err := k.Verify(tok); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("keys without any key verified a token: %v", err)
	}
	k.SetPublished(other.PublicKeys())
	if _, err := k.Verify(tok); err != nil {
		t.Errorf("after the set was published: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Load without files wrote files: %v", entries)
	}
}

func TestLoadFiles(t *testing.T) {
	priv := newKey(t)
	signer := auth.NewKeys(priv)
	dir := t.TempDir()

	pubFile := filepath.Join(dir, "jwt.pub.pem")
	if err := os.WriteFile(pubFile, publicPEM(t, signer), 0o644); err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	privFile := filepath.Join(dir, "jwt.pem")
	writePEM(t, privFile, "PRIVATE KEY", privDER)

	tok, err := signer.Issue(auth.Principal{UserID: "u1", Role: "admin"}, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("public key file verifies only", func(t *testing.T) {
		k, err := auth.Load("", pubFile)
		if err != nil {
			t.Fatalf("Load(public): %v", err)
		}
		if k.CanSign() {
			t.Error("keys from a public key file can sign")
		}
		if got, err := k.Verify(tok); err != nil || got.UserID != "u1" || got.Role != "admin" {
			t.Errorf("Verify = %+v, %v", got, err)
		}
		if _, err := k.Issue(auth.Principal{UserID: "u", Role: "admin"}, time.Now(), time.Minute); err == nil {
			t.Error("keys from a public key file issued a token")
		}
		if !bytes.Equal(publicPEM(t, k), publicPEM(t, signer)) {
			t.Error("PublicPEM does not round trip through Load")
		}
	})

	t.Run("private key file signs", func(t *testing.T) {
		k, err := auth.Load(privFile, "")
		if err != nil {
			t.Fatalf("Load(private): %v", err)
		}
		if !k.CanSign() || !bytes.Equal(publicPEM(t, k), publicPEM(t, signer)) {
			t.Error("Load(private) did not load the key in the file")
		}
		if _, err := k.Verify(tok); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})

	t.Run("private key file wins over the public one", func(t *testing.T) {
		k, err := auth.Load(privFile, pubFile)
		if err != nil || !k.CanSign() {
			t.Errorf("Load(private, public): CanSign %v, err %v", k != nil && k.CanSign(), err)
		}
	})

	// Files that are not what they claim are refused, never silently replaced by a
	// generated key.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	otherDER, _ := x509.MarshalPKCS8PrivateKey(otherPriv)
	bad := map[string][]byte{
		"garbage":               []byte("hello"),
		"empty":                 nil,
		"public key as private": publicPEM(t, signer),
		"private key as public": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherDER}),
		"pem with junk inside":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}),
	}
	for name, content := range bad {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if name != "private key as public" {
			if k, err := auth.Load(path, ""); err == nil {
				t.Errorf("%s: Load(private) = %v, want an error", name, k)
			}
		}
		if name != "public key as private" {
			if k, err := auth.Load("", path); err == nil {
				t.Errorf("%s: Load(public) = %v, want an error", name, k)
			}
		}
	}
	for _, args := range [][2]string{{filepath.Join(dir, "missing.pem"), ""}, {"", filepath.Join(dir, "missing.pem")}} {
		if _, err := auth.Load(args[0], args[1]); err == nil {
			t.Errorf("Load(%q, %q) of a missing file succeeded", args[0], args[1])
		}
	}
}

// A verified token is remembered only until it expires: a cached token that has
// expired since is refused like any other, and one with a bad signature never
// becomes valid by resembling a cached one.
func TestVerifyCacheHonoursExpiry(t *testing.T) {
	keys := auth.NewKeys(newKey(t))
	p := auth.Principal{UserID: "u", Role: "customer"}
	// Expired 3–4 s ago (a token's times are whole seconds): inside the 5 s leeway
	// for one or two seconds more.
	tok, _ := keys.Issue(p, time.Now().Add(-time.Hour-3*time.Second), time.Hour)
	if got, err := keys.Verify(tok); err != nil || got != p {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	if got, err := keys.Verify(tok); err != nil || got != p { // from the cache
		t.Fatalf("second Verify = %+v, %v", got, err)
	}
	// A cache that ignored expiry would accept it for ever.
	testlog.Eventually(t, "the cached token to be refused once past its expiry", func() bool {
		_, err := keys.Verify(tok)
		return errors.Is(err, auth.ErrInvalid)
	})
	fresh, _ := keys.Issue(p, time.Now(), time.Hour)
	if _, err := keys.Verify(fresh); err != nil {
		t.Fatal(err)
	}
	tampered := fresh[:len(fresh)-2] + "AA"
	if tampered == fresh {
		tampered = fresh[:len(fresh)-2] + "BB"
	}
	if _, err := keys.Verify(tampered); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("a tampered copy of a cached token: err = %v, want ErrInvalid", err)
	}
}
