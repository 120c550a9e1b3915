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
	"log/slog"
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

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

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

func TestLoadGeneratesDevKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	var logs bytes.Buffer
	first, err := auth.Load(dir, "", "", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("first Load: %v", err)
	}
	if !first.CanSign() {
		t.Error("the generated key cannot sign")
	}
	path := filepath.Join(dir, "jwt-signing.pem")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Load did not write %s: %v", path, err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, mode)
	}
	if !strings.Contains(logs.String(), "AGORA_JWT_PRIVATE_KEY_FILE") {
		t.Errorf("generating a key was not logged with the way to set one; log: %s", logs.String())
	}
	written, _ := os.ReadFile(path)

	logs.Reset()
	second, err := auth.Load(dir, "", "", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("second Load: %v", err)
	}
	if !bytes.Equal(publicPEM(t, first), publicPEM(t, second)) {
		t.Error("the second Load has another key: the generated one was not reused")
	}
	if logs.Len() != 0 {
		t.Errorf("reusing the key logged: %s", logs.String())
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(written, again) {
		t.Error("the second Load rewrote the key file")
	}
	// Tokens outlive a restart.
	tok, err := first.Issue(auth.Principal{UserID: "u", Role: "admin"}, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Verify(tok); err != nil {
		t.Errorf("a token from before the restart does not verify: %v", err)
	}
}

// TestLoadKeepsACorruptKeyFile checks that a key file that cannot be read is an
// error, not a reason to generate (and overwrite with) a new key.
func TestLoadKeepsACorruptKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwt-signing.pem")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Load(dir, "", "", discard()); err == nil {
		t.Error("Load accepted a corrupt key file")
	}
	if b, _ := os.ReadFile(path); string(b) != "not a key" {
		t.Errorf("Load overwrote the corrupt key file: %q", b)
	}
}

func TestLoadEphemeral(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // anything written relative to the working directory lands here
	a, err := auth.Load("", "", "", discard())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	b, err := auth.Load("", "", "", discard())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !a.CanSign() {
		t.Error("the ephemeral key cannot sign")
	}
	if bytes.Equal(publicPEM(t, a), publicPEM(t, b)) {
		t.Error("two ephemeral keys are the same")
	}
	tok, err := a.Issue(auth.Principal{UserID: "u", Role: "customer"}, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok); err != nil {
		t.Errorf("the ephemeral key does not verify its own token: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("an ephemeral key wrote files: %v", entries)
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
		dataDir := t.TempDir()
		k, err := auth.Load(dataDir, "", pubFile, discard())
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
		if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
			t.Errorf("a verify-only Load wrote into the data dir: %v", entries)
		}
	})

	t.Run("private key file signs", func(t *testing.T) {
		dataDir := t.TempDir()
		k, err := auth.Load(dataDir, privFile, "", discard())
		if err != nil {
			t.Fatalf("Load(private): %v", err)
		}
		if !k.CanSign() || !bytes.Equal(publicPEM(t, k), publicPEM(t, signer)) {
			t.Error("Load(private) did not load the key in the file")
		}
		if _, err := k.Verify(tok); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
			t.Errorf("Load with a key file wrote into the data dir: %v", entries)
		}
	})

	t.Run("private key file wins over the public one", func(t *testing.T) {
		k, err := auth.Load("", privFile, pubFile, discard())
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
			if k, err := auth.Load("", path, "", discard()); err == nil {
				t.Errorf("%s: Load(private) = %v, want an error", name, k)
			}
		}
		if name != "public key as private" {
			if k, err := auth.Load("", "", path, discard()); err == nil {
				t.Errorf("%s: Load(public) = %v, want an error", name, k)
			}
		}
	}
	for _, args := range [][2]string{{filepath.Join(dir, "missing.pem"), ""}, {"", filepath.Join(dir, "missing.pem")}} {
		if _, err := auth.Load(t.TempDir(), args[0], args[1], discard()); err == nil {
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
