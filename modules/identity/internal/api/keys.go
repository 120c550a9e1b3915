package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/identity/internal/signing"
)

type keySetOut struct {
	CacheControl string `header:"Cache-Control"`
	Body         identity.KeySet
}

// KeyRoutes returns the routes of identity's verification keys: the public JWKS,
// and their rotation for admins. Answered through b, like every identity route.
func KeyRoutes(b *bus.Bus) httpapi.Routes {
	h := handlers{b: b}
	return func(api huma.API) {
		huma.Register(api, huma.Operation{
			OperationID: "get-jwks", Method: http.MethodGet, Path: "/.well-known/jwks.json", Tags: []string{"Identity"},
			Summary: "The keys that verify access tokens",
			Description: "A JSON Web Key Set (RFC 7517) of the Ed25519 keys access tokens are signed with, the current signing key first. " +
				"Keys retired by a rotation stay in the set until every token they signed has expired. Tokens name their key in the kid header.",
			Security: httpapi.Public,
		}, h.getKeys)
		huma.Register(api, huma.Operation{
			OperationID: "rotate-keys", Method: http.MethodPost, Path: "/v1/ops/keys/rotate", Tags: []string{"Operations"},
			Summary: "Rotate the key that signs access tokens",
			Description: "A new key signs every token from now on. The previous keys stay published until the tokens they signed have " +
				"expired (one access-token lifetime), so no signed-in user notices. Every process fetches the new key the first time a token names it. " +
				"409 when the signing key is given as a file (AGORA_JWT_PRIVATE_KEY_FILE): replace the file instead; " +
				"409 too while four keys are published (rotate again once the oldest retired key has expired).",
			Security: httpapi.AdminOnly, Metadata: httpapi.Problems(signing.ErrKeysFromFile, signing.ErrTooManyKeys),
		}, h.rotateKeys)
	}
}

// getKeys answers the published key set, which caches may keep briefly.
func (h handlers) getKeys(ctx context.Context, _ *struct{}) (*keySetOut, error) {
	set, err := bus.Call(ctx, h.b, identity.GetKeysRequest, identity.GetKeys{})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	// Short: a rotation reaches caches within a minute.
	return &keySetOut{CacheControl: "public, max-age=60", Body: set}, nil
}

// rotateKeys makes a new signing key and answers the key set that results.
func (h handlers) rotateKeys(ctx context.Context, _ *struct{}) (*keySetOut, error) {
	set, err := bus.Call(ctx, h.b, identity.RotateKeysRequest, identity.RotateKeys{})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return &keySetOut{CacheControl: "no-store", Body: set}, nil
}
