// Package signing keeps the keys identity signs access tokens with: in identity's
// database (so every identity replica signs with the same keys), made on first
// start, rotated on an operator's request, and published as a JWKS that every
// process verifies with. Keys given as a file (AGORA_JWT_PRIVATE_KEY_FILE) take
// the database's place and rotate only with the file.
package signing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/identity"
)

// ErrKeysFromFile is RotateKeys' answer when the signing key is a file.
var ErrKeysFromFile = message.NewError(message.Conflict, "identity.keys_from_file",
	"the signing key is given as a file (AGORA_JWT_PRIVATE_KEY_FILE): rotate it by replacing the file")

// MaxPublished bounds the keys published at once: a rotation while as many are
// published (their tokens may still be in use) is refused, so the key set — and
// every answer that carries it — stays small however often someone rotates.
const MaxPublished = 4

// ErrTooManyKeys is RotateKeys' answer while MaxPublished keys are published.
var ErrTooManyKeys = message.NewError(message.Conflict, "identity.too_many_keys",
	"as many keys as may be published are in use; rotate again once the oldest retired key has expired (one access-token lifetime after its retirement)")

// Keyring loads, makes and rotates the signing keys, and keeps keys (the
// process's *auth.Keys) signing with the newest and verifying with every key still
// published.
type Keyring struct {
	db       *store.DB // nil: the key is a file, fixed
	keys     *auth.Keys
	lifetime time.Duration // how long a retired key stays published: a token's lifetime
	now      func() time.Time
}

// New returns the keyring of keys on db, whose retired keys stay published for
// lifetime (the longest an access token lives, with leeway). With db nil the keys
// came from a file and never change.
func New(db *store.DB, keys *auth.Keys, lifetime time.Duration) *Keyring {
	return &Keyring{db: db, keys: keys, lifetime: lifetime, now: time.Now}
}

type keyRow struct {
	Kid        string        `db:"kid"`
	PrivatePEM string        `db:"private_pem"`
	CreatedUS  int64         `db:"created_us"`
	RetiredUS  sql.NullInt64 `db:"retired_us"`
}

// Load makes the stored keys the process's: the newest unretired key signs, every
// published key verifies. With no key stored it makes the first one. Identity's
// replicas call it periodically, to follow a rotation made by another.
func (r *Keyring) Load(ctx context.Context) error {
	if r.db == nil {
		return nil
	}
	rows, err := r.published(ctx)
	if err != nil {
		return err
	}
	if len(rows) == 0 || rows[0].RetiredUS.Valid {
		if err := r.add(ctx, false); err != nil {
			return err
		}
		if rows, err = r.published(ctx); err != nil {
			return err
		}
	}
	pub := make([]auth.PublicKey, 0, len(rows))
	var signer ed25519.PrivateKey
	for _, row := range rows {
		priv, err := auth.ParsePrivateKey([]byte(row.PrivatePEM))
		if err != nil {
			return fmt.Errorf("identity: signing key %s: %w", row.Kid, err)
		}
		if signer == nil && !row.RetiredUS.Valid {
			signer = priv
		}
		pub = append(pub, auth.PublicKeyOf(priv))
	}
	r.keys.SetPublished(pub)
	r.keys.SetSigning(signer)
	return nil
}

// published returns the keys still published, unretired and newest first.
func (r *Keyring) published(ctx context.Context) ([]keyRow, error) {
	var rows []keyRow
	err := sqlx.SelectContext(ctx, r.db, &rows, r.db.Rebind(`SELECT kid, private_pem, created_us, retired_us
		FROM signing_keys WHERE retired_us IS NULL OR retired_us > ?
		ORDER BY CASE WHEN retired_us IS NULL THEN 0 ELSE 1 END, created_us DESC, kid`),
		r.now().Add(-r.lifetime).UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("identity: read signing keys: %w", err)
	}
	return rows, nil
}

// add stores a new signing key; with retire, the keys that signed until now retire.
func (r *Keyring) add(ctx context.Context, retire bool) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	pemBytes, err := auth.MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	now := r.now().UnixMicro()
	return store.InTx(ctx, r.db, func(tx *store.Tx) error {
		if retire {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE signing_keys SET retired_us = ? WHERE retired_us IS NULL`), now); err != nil {
				return fmt.Errorf("identity: retire signing keys: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO signing_keys (kid, private_pem, created_us) VALUES (?, ?, ?)`),
			auth.PublicKeyOf(priv).ID, string(pemBytes), now)
		if err != nil {
			return fmt.Errorf("identity: store a signing key: %w", err)
		}
		return nil
	})
}

// Rotate answers identity.RotateKeys: a new key signs from now on; the previous
// ones stay published until the tokens they signed have expired.
func (r *Keyring) Rotate(ctx context.Context, _ identity.RotateKeys) (identity.KeySet, error) {
	if r.db == nil {
		return identity.KeySet{}, ErrKeysFromFile
	}
	rows, err := r.published(ctx)
	if err != nil {
		return identity.KeySet{}, err
	}
	if len(rows) >= MaxPublished {
		return identity.KeySet{}, ErrTooManyKeys
	}
	if err := r.add(ctx, true); err != nil {
		return identity.KeySet{}, err
	}
	if err := r.Load(ctx); err != nil {
		return identity.KeySet{}, err
	}
	return r.KeySet(ctx, identity.GetKeys{})
}

// KeySet answers identity.GetKeys: the published keys as a JWKS, signing key first.
func (r *Keyring) KeySet(context.Context, identity.GetKeys) (identity.KeySet, error) {
	return ToJWKS(r.keys.PublicKeys()), nil
}

// Purge deletes the keys that are no longer published.
func (r *Keyring) Purge(ctx context.Context) (int64, error) {
	if r.db == nil {
		return 0, nil
	}
	res, err := r.db.ExecContext(ctx, r.db.Rebind(`DELETE FROM signing_keys WHERE retired_us < ?`),
		r.now().Add(-r.lifetime).UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("identity: purge signing keys: %w", err)
	}
	return res.RowsAffected()
}

// Handlers returns the keyring's request handlers, for the bus.
func (r *Keyring) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(identity.GetKeysRequest, r.KeySet),
		bus.Handle(identity.RotateKeysRequest, r.Rotate),
	}
}

// ToJWKS returns keys as a JSON Web Key Set.
func ToJWKS(keys []auth.PublicKey) identity.KeySet {
	set := identity.KeySet{Keys: make([]identity.JWK, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, identity.JWK{Kty: "OKP", Crv: "Ed25519", Use: "sig", Alg: "EdDSA",
			Kid: k.ID, X: base64.RawURLEncoding.EncodeToString(k.Key)})
	}
	return set
}

// FromJWKS returns the Ed25519 signing keys of set; it refuses a set with a key
// whose id is not its thumbprint, or with no usable key.
func FromJWKS(set identity.KeySet) ([]auth.PublicKey, error) {
	var out []auth.PublicKey
	for _, j := range set.Keys {
		if j.Kty != "OKP" || j.Crv != "Ed25519" || (j.Use != "" && j.Use != "sig") {
			continue // not a key for us
		}
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize || auth.KeyID(x) != j.Kid {
			return nil, fmt.Errorf("identity: key %q in the key set is malformed", j.Kid)
		}
		out = append(out, auth.PublicKey{ID: j.Kid, Key: x})
	}
	if len(out) == 0 {
		return nil, errors.New("identity: the key set holds no Ed25519 signing key")
	}
	return out, nil
}
