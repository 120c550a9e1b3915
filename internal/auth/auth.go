// Package auth issues and verifies Agora's access tokens: short-lived JWTs signed
// with Ed25519 (EdDSA). Any process verifies them locally with the public key — no
// call to the identity module per request — so authentication keeps working when
// identity runs in another process. Only the process that runs identity needs the
// private key.
package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token claims' fixed values.
const (
	Issuer   = "agora"
	Audience = "agora-api"
)

// Principal is who a verified token speaks for.
type Principal struct {
	UserID string
	Role   string
}

// ErrInvalid is returned for every token that does not verify: malformed, forged,
// expired, signed with another key or algorithm. Callers answer 401 and say no more.
var ErrInvalid = errors.New("auth: invalid access token")

// Keys signs (when it holds the private key) and verifies access tokens.
type Keys struct {
	private ed25519.PrivateKey // nil in verify-only processes
	public  ed25519.PublicKey

	// verified remembers tokens that passed Verify, until they expire: a token
	// cannot change, and checking an Ed25519 signature costs more than the rest of
	// a small request. Bounded; emptied when full.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	p       Principal
	expires time.Time
}

// verifyLeeway is the clock skew Verify tolerates on a token's times.
const verifyLeeway = 5 * time.Second

// maxVerified bounds the cache of verified tokens (about 3 MB at its fullest).
const maxVerified = 10000

// NewKeys returns keys from an Ed25519 private key.
func NewKeys(private ed25519.PrivateKey) *Keys {
	return &Keys{private: private, public: private.Public().(ed25519.PublicKey)}
}

// VerifyOnly returns keys that verify with public and cannot sign.
func VerifyOnly(public ed25519.PublicKey) *Keys { return &Keys{public: public} }

// Load reads the signing key from privateFile (PKCS#8 PEM) or, when that is empty,
// only the public key from publicFile (PKIX PEM). With both empty it uses
// <dataDir>/jwt-signing.pem, generating it (mode 0600) on first start and saying so;
// with dataDir empty too, an ephemeral key that is never written (for commands that
// serve no requests, such as printing the OpenAPI document).
func Load(dataDir, privateFile, publicFile string, log *slog.Logger) (*Keys, error) {
	switch {
	case privateFile == "" && publicFile == "" && dataDir == "":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return NewKeys(priv), nil
	case privateFile != "":
		return readPrivate(privateFile)
	case publicFile != "":
		b, err := os.ReadFile(publicFile)
		if err != nil {
			return nil, fmt.Errorf("auth: read public key: %w", err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("auth: %s holds no PEM block", publicFile)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		pub, ok := k.(ed25519.PublicKey)
		if err != nil || !ok {
			return nil, fmt.Errorf("auth: %s is not an Ed25519 public key", publicFile)
		}
		return VerifyOnly(pub), nil
	}
	path := filepath.Join(dataDir, "jwt-signing.pem")
	k, err := readPrivate(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("auth: write signing key: %w", err)
	}
	log.Warn("generated a development key for signing access tokens; set AGORA_JWT_PRIVATE_KEY_FILE in production", "file", path)
	return NewKeys(priv), nil
}

func readPrivate(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read signing key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("auth: %s holds no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	priv, ok := k.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("auth: %s is not an Ed25519 private key in PKCS#8", path)
	}
	return NewKeys(priv), nil
}

// PublicPEM returns the public key in PKIX PEM, for processes that only verify.
func (k *Keys) PublicPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.public)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// CanSign reports whether k holds the private key.
func (k *Keys) CanSign() bool { return k.private != nil }

type claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Issue signs an access token for p, valid from now for ttl.
func (k *Keys) Issue(p Principal, now time.Time, ttl time.Duration) (string, error) {
	if k.private == nil {
		return "", errors.New("auth: this process has no signing key")
	}
	c := claims{Role: p.Role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: p.UserID, Audience: jwt.ClaimStrings{Audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(k.private)
}

// Verify checks a token's signature (EdDSA with this key only: no "none", no HMAC
// with the public key as secret), issuer, audience and expiry, and returns whom it
// speaks for. Every failure is ErrInvalid.
func (k *Keys) Verify(token string) (Principal, error) {
	now := time.Now()
	k.mu.Lock()
	v, ok := k.verified[token]
	k.mu.Unlock()
	if ok && now.Before(v.expires) {
		return v.p, nil
	}
	p, expires, err := k.verify(token)
	if err != nil {
		return Principal{}, err
	}
	k.mu.Lock()
	if k.verified == nil || len(k.verified) >= maxVerified {
		k.verified = make(map[string]verifiedToken)
	}
	k.verified[token] = verifiedToken{p: p, expires: expires}
	k.mu.Unlock()
	return p, nil
}

// verify checks token fully and returns its principal and when it stops being accepted.
func (k *Keys) verify(token string) (Principal, time.Time, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return k.public, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(Issuer), jwt.WithAudience(Audience), jwt.WithExpirationRequired(), jwt.WithLeeway(verifyLeeway))
	if err != nil || c.Subject == "" || c.Role == "" || c.ExpiresAt == nil {
		return Principal{}, time.Time{}, ErrInvalid
	}
	return Principal{UserID: c.Subject, Role: c.Role}, c.ExpiresAt.Add(verifyLeeway), nil
}
