package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// PublicKey is one key tokens may be signed with, under its key id ("kid").
type PublicKey struct {
	ID  string
	Key ed25519.PublicKey
}

// KeyID returns the key id of an Ed25519 public key: its JWK thumbprint (RFC 7638
// over the members crv, kty and x of RFC 8037), base64url without padding. Every
// process computes the same id for the same key.
func KeyID(pub ed25519.PublicKey) string {
	x := base64.RawURLEncoding.EncodeToString(pub)
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// PublicKeyOf returns the public half of private, with its key id.
func PublicKeyOf(private ed25519.PrivateKey) PublicKey {
	pub := private.Public().(ed25519.PublicKey)
	return PublicKey{ID: KeyID(pub), Key: pub}
}

type keySet struct {
	byID map[string]ed25519.PublicKey
	list []PublicKey // in the order published
}

// minRefresh is how often at most an unknown key id makes Verify fetch the key
// set again, so that tokens with made-up key ids cannot flood identity.
const minRefresh = time.Second

// minStaleRefresh is the shorter interval for tokens younger than the set.
const minStaleRefresh = 100 * time.Millisecond

// fetchTimeout bounds a fetch that Verify waits for.
const fetchTimeout = 2 * time.Second

// SetSigning makes private the key new tokens are signed with. Publish its public
// key too (SetPublished), or nobody verifies what it signs.
func (k *Keys) SetSigning(private ed25519.PrivateKey) {
	k.signer.Store(&signingKey{id: PublicKeyOf(private).ID, key: private})
}

// SetPublished replaces the keys tokens are verified with. Keys with an empty id
// or a key of the wrong size are left out.
func (k *Keys) SetPublished(keys []PublicKey) {
	s := &keySet{byID: make(map[string]ed25519.PublicKey, len(keys))}
	for _, pk := range keys {
		if pk.ID == "" || len(pk.Key) != ed25519.PublicKeySize {
			continue
		}
		if _, dup := s.byID[pk.ID]; !dup {
			s.byID[pk.ID] = slices.Clone(pk.Key)
			s.list = append(s.list, PublicKey{ID: pk.ID, Key: s.byID[pk.ID]})
		}
	}
	k.set.Store(s)
}

// PublicKeys returns the keys k verifies with, in the order they were published.
func (k *Keys) PublicKeys() []PublicKey {
	s := k.set.Load()
	if s == nil {
		return nil
	}
	return slices.Clone(s.list)
}

// SetSource makes fetch where k gets its key set again: on Refresh, and when a
// token names a key id k does not know (a rotation), at most once a second.
func (k *Keys) SetSource(fetch Source) { k.source.Store(&fetch) }

// Refresh fetches the key set from k's source and publishes it; without a source
// it does nothing. A fetch that fails or returns no key leaves the set as it was.
func (k *Keys) Refresh(ctx context.Context) error {
	src := k.source.Load()
	if src == nil {
		return nil
	}
	k.refreshMu.Lock()
	defer k.refreshMu.Unlock()
	return k.fetch(ctx, *src)
}

// fetch runs under refreshMu.
func (k *Keys) fetch(ctx context.Context, src Source) error {
	k.refreshedAt = time.Now()
	keys, err := src(ctx)
	if err != nil {
		return fmt.Errorf("auth: fetch verification keys: %w", err)
	}
	if len(keys) == 0 {
		return errors.New("auth: the verification key set is empty")
	}
	k.SetPublished(keys)
	return nil
}

// keyFor is the jwt key function: the public key the token's header names. A
// token without a key id is accepted only while the set holds a single key.
func (k *Keys) keyFor(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if pub, ok := k.lookup(kid); ok {
		return pub, nil
	}
	if kid == "" || len(kid) > 128 || strings.ContainsAny(kid, " \x00") {
		return nil, ErrInvalid
	}
	// Unknown: perhaps identity rotated its key since the set was fetched.
	src := k.source.Load()
	if src == nil {
		return nil, ErrInvalid
	}
	k.refreshMu.Lock()
	if k.mayFetch(t, time.Now()) {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		_ = k.fetch(ctx, *src) // a failed fetch refuses this token; the next may fetch again
		cancel()
	}
	k.refreshMu.Unlock()
	if pub, ok := k.lookup(kid); ok {
		return pub, nil
	}
	return nil, ErrInvalid
}

// mayFetch reports whether a token with an unknown key id may make k fetch the
// set again: once a second at most, or every 100 ms while the set is older than
// the token (a token of a key rotated in just now must not wait for the second).
// Runs under refreshMu.
func (k *Keys) mayFetch(t *jwt.Token, now time.Time) bool {
	since := now.Sub(k.refreshedAt)
	if since >= minRefresh {
		return true
	}
	var issued time.Time
	if c, ok := t.Claims.(*claims); ok && c.IssuedAt != nil {
		issued = c.IssuedAt.Time
	}
	// Token times are whole seconds: the token may be up to a second younger.
	return since >= minStaleRefresh && k.refreshedAt.Before(issued.Add(time.Second))
}

func (k *Keys) lookup(kid string) (ed25519.PublicKey, bool) {
	s := k.set.Load()
	if s == nil {
		return nil, false
	}
	if kid == "" {
		if len(s.list) == 1 {
			return s.list[0].Key, true
		}
		return nil, false
	}
	pub, ok := s.byID[kid]
	return pub, ok
}

// published reports whether a token with key id kid (maybe empty) still has its key.
func (k *Keys) published(kid string) bool {
	_, ok := k.lookup(kid)
	return ok
}
