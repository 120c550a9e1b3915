// Package auth issues and verifies Agora's access tokens: short-lived JWTs signed
// with Ed25519 (EdDSA). Any process verifies them locally — no call to the identity
// module per request — so authentication keeps working when identity runs in
// another process. Only the process that runs identity holds a private key; every
// other process holds the published public keys (a JWKS-shaped set, by key id),
// which identity serves over the bus, and follows their rotation.
//
// Revocation: every token carries its subject's token version ("ver"). When
// identity revokes a subject's tokens (logout, password change, role change, a
// stolen refresh token) it raises that version, and every verifying process is told
// (Keys.Revoke) and from then on refuses the subject's tokens of a lower version.
package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"sync/atomic"
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
// expired, revoked, signed with another key or algorithm. Callers answer 401 and
// say no more.
var ErrInvalid = errors.New("auth: invalid access token")

// ErrUnavailable is returned while a process cannot tell whether a token is valid:
// it has no key yet, or has not yet learned the revocations (identity is out of
// reach since it started). Callers answer 503 with Retry-After, not 401: the
// token may well be good.
var ErrUnavailable = errors.New("auth: access tokens cannot be verified yet")

// Keys signs (when it holds a private key) and verifies access tokens. It is safe
// for concurrent use; its keys can change while it is used (rotation).
type Keys struct {
	signer atomic.Pointer[signingKey] // nil in verify-only processes
	set    atomic.Pointer[keySet]     // the keys tokens may be signed with, by id
	source atomic.Pointer[Source]     // where the set is fetched again; nil: static

	refreshMu   sync.Mutex // one fetch at a time
	refreshedAt time.Time  // of the last fetch, under refreshMu

	revoked  revocations
	awaiting atomic.Bool // revocations are expected and have not arrived yet

	// verified remembers tokens that passed the signature and claim checks, until
	// they expire: a token cannot change, and checking an Ed25519 signature costs
	// more than the rest of a small request. Bounded; emptied when full. The
	// revocation check runs on every Verify, cached or not.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

// Source fetches the current set of public keys (identity's GetKeys over the bus).
type Source func(ctx context.Context) ([]PublicKey, error)

type signingKey struct {
	id  string
	key ed25519.PrivateKey
}

type verifiedToken struct {
	p        Principal
	keyID    string // of the key that signed it: a cached token is refused once its key is unpublished
	version  int64
	issuedAt time.Time
	expires  time.Time
}

// Leeway is the clock skew Verify tolerates on a token's times: how long after its
// expiry a token is still accepted.
const Leeway = 5 * time.Second

// maxVerified bounds the cache of verified tokens (about 3 MB at its fullest).
const maxVerified = 10000

// NewKeys returns keys that sign with private and verify with its public key.
func NewKeys(private ed25519.PrivateKey) *Keys {
	k := &Keys{}
	k.SetSigning(private)
	k.SetPublished([]PublicKey{PublicKeyOf(private)})
	return k
}

// VerifyOnly returns keys that verify with public and cannot sign.
func VerifyOnly(public ed25519.PublicKey) *Keys {
	k := &Keys{}
	k.SetPublished([]PublicKey{{ID: KeyID(public), Key: public}})
	return k
}

// NewVerifier returns keys that hold no key yet: they verify once a set is
// published to them (SetPublished) or fetched from their source (SetSource,
// Refresh). They never make a key of their own.
func NewVerifier() *Keys { return &Keys{} }

// CanSign reports whether k holds a private key.
func (k *Keys) CanSign() bool { return k.signer.Load() != nil }

// HasKeys reports whether k holds at least one key to verify with.
func (k *Keys) HasKeys() bool {
	s := k.set.Load()
	return s != nil && len(s.byID) > 0
}

type claims struct {
	Role    string `json:"role"`
	Version int64  `json:"ver"`
	jwt.RegisteredClaims
}

// Issue signs an access token for p at token version 0, valid from now for ttl.
func (k *Keys) Issue(p Principal, now time.Time, ttl time.Duration) (string, error) {
	return k.IssueVersion(p, 0, now, ttl)
}

// IssueVersion signs an access token for p at the subject's token version, valid
// from now for ttl, with the current signing key's id in its header.
func (k *Keys) IssueVersion(p Principal, version int64, now time.Time, ttl time.Duration) (string, error) {
	s := k.signer.Load()
	if s == nil {
		return "", errors.New("auth: this process has no signing key")
	}
	c := claims{Role: p.Role, Version: version, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: p.UserID, Audience: jwt.ClaimStrings{Audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = s.id
	return t.SignedString(s.key)
}

// Verify checks a token's signature (EdDSA with one of k's keys only: no "none",
// no HMAC with a public key as secret), issuer, audience, expiry and revocation,
// and returns whom it speaks for. Every failure is ErrInvalid.
func (k *Keys) Verify(token string) (Principal, error) {
	if k.awaiting.Load() {
		return Principal{}, ErrUnavailable
	}
	now := time.Now()
	k.mu.Lock()
	v, ok := k.verified[token]
	k.mu.Unlock()
	if !ok || !now.Before(v.expires) || !k.published(v.keyID) {
		var err error
		if v, err = k.verify(token); err != nil {
			if !k.HasKeys() && k.source.Load() != nil {
				return Principal{}, ErrUnavailable
			}
			return Principal{}, err
		}
		k.mu.Lock()
		if k.verified == nil || len(k.verified) >= maxVerified {
			k.verified = make(map[string]verifiedToken)
		}
		k.verified[token] = v
		k.mu.Unlock()
	}
	if k.revoked.refuses(v.p.UserID, v.version, v.issuedAt, now) {
		return Principal{}, ErrInvalid
	}
	return v.p, nil
}

// verify checks token fully and returns what Verify remembers of it.
func (k *Keys) verify(token string) (verifiedToken, error) {
	var c claims
	t, err := jwt.ParseWithClaims(token, &c, k.keyFor,
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(Issuer), jwt.WithAudience(Audience), jwt.WithExpirationRequired(), jwt.WithLeeway(Leeway))
	if err != nil || c.Subject == "" || c.Role == "" || c.ExpiresAt == nil {
		return verifiedToken{}, ErrInvalid
	}
	var issued time.Time
	if c.IssuedAt != nil {
		issued = c.IssuedAt.Time
	}
	kid, _ := t.Header["kid"].(string)
	return verifiedToken{p: Principal{UserID: c.Subject, Role: c.Role}, keyID: kid, version: c.Version, issuedAt: issued,
		expires: c.ExpiresAt.Add(Leeway)}, nil
}
