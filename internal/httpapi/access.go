package httpapi

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// AdminSecurity names the security scheme of admin operations. Until the identity
// module lands it is a placeholder: one shared bearer token from configuration.
const AdminSecurity = "adminToken"

// Access rules an operation declares in its Security field. The middleware enforces
// exactly what the OpenAPI document says, so the two cannot drift apart.
var (
	// Public operations need no credential.
	Public = []map[string][]string{}
	// AdminOnly operations need the admin credential: 401 without it.
	AdminOnly = []map[string][]string{{AdminSecurity: {}}}
	// PublicOrAdmin operations are public, and show admins more (drafts, say). A
	// credential that is sent must be valid.
	PublicOrAdmin = []map[string][]string{{}, {AdminSecurity: {}}}
)

type adminKey struct{}

// IsAdmin reports whether the request was made with the admin credential.
func IsAdmin(ctx context.Context) bool {
	v, _ := ctx.Value(adminKey{}).(bool)
	return v
}

func accessRules(api huma.API, adminToken string) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		if op == nil || op.Security == nil {
			// Every operation must declare its rule; one that does not is refused
			// rather than left open by accident.
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, "this operation declares no access rule")
			return
		}
		needsAdmin, allowsAdmin, public := false, false, false
		for _, req := range op.Security {
			if len(req) == 0 {
				public = true
			}
			if _, ok := req[AdminSecurity]; ok {
				allowsAdmin = true
			}
		}
		needsAdmin = allowsAdmin && !public
		auth := ctx.Header("Authorization")
		if auth == "" {
			if needsAdmin {
				ctx.SetHeader("WWW-Authenticate", `Bearer realm="agora"`)
				_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "this operation needs the admin credential (Authorization: Bearer …)")
				return
			}
			next(ctx)
			return
		}
		if !allowsAdmin {
			next(ctx) // a credential the operation does not use is ignored
			return
		}
		// The scheme name is case-insensitive (RFC 9110, section 11.1).
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || adminToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(adminToken)) != 1 {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="agora", error="invalid_token"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "the credential is not valid")
			return
		}
		next(huma.WithValue(ctx, adminKey{}, true))
	}
}
