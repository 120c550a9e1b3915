package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/auth"
)

// The security schemes of the OpenAPI document. All three are the same credential
// — an access token from POST /v1/auth/login (or /v1/auth/refresh), sent as
// "Authorization: Bearer <token>" — and differ in the role the token must carry, so
// an admin-only operation is told apart in the document itself.
const (
	// BearerAuth admits any signed-in caller.
	BearerAuth = "bearerAuth"
	// AdminAuth admits a token with the admin role.
	AdminAuth = "adminAuth"
	// DriverAuth admits a token with the driver role.
	DriverAuth = "driverAuth"
)

// schemeRoles is the role each security scheme admits; "" is any signed-in caller.
var schemeRoles = map[string]string{BearerAuth: "", AdminAuth: "admin", DriverAuth: "driver"}

// Access rules an operation declares in its Security field. The middleware enforces
// exactly what the OpenAPI document says, so the two cannot drift apart.
var (
	// Public operations need no credential.
	Public = []map[string][]string{}
	// SignedIn operations need a valid access token: 401 without one.
	SignedIn = []map[string][]string{{BearerAuth: {}}}
	// AdminOnly operations need an access token with the admin role: 401 without a
	// valid token, 403 with another role.
	AdminOnly = []map[string][]string{{AdminAuth: {}}}
	// DriverOnly operations need an access token with the driver role (a driver's
	// own app): 401 without a valid token, 403 with another role.
	DriverOnly = []map[string][]string{{DriverAuth: {}}}
	// DriverOrAdmin operations admit drivers (for themselves) and admins (for any
	// driver: a fleet operator's batch); 403 for other roles.
	DriverOrAdmin = []map[string][]string{{DriverAuth: {}}, {AdminAuth: {}}}
	// PublicOrAdmin operations are public and show admins more (drafts, say). A
	// token that is sent must be valid.
	PublicOrAdmin = []map[string][]string{{}, {BearerAuth: {}}}
)

// Rule is what an operation's Security admits: the reading of the document that
// the access middleware enforces, and that tests and the document's error
// declarations use too.
type Rule struct {
	Public bool     // no credential is needed (an empty requirement among alternatives)
	Bearer bool     // an access token is used when sent
	Roles  []string // the roles a token must carry; nil: any signed-in caller
}

// RuleOf reads security, an operation's Security, as a Rule.
func RuleOf(security []map[string][]string) Rule {
	r := Rule{Public: len(security) == 0}
	anyRole := false
	for _, req := range security {
		r.Public = r.Public || len(req) == 0
		for scheme := range req {
			role, ok := schemeRoles[scheme]
			r.Bearer = r.Bearer || ok
			anyRole = anyRole || (ok && role == "")
			if role != "" {
				r.Roles = append(r.Roles, role)
			}
		}
	}
	if anyRole {
		r.Roles = nil
	}
	return r
}

// Verifier checks access tokens; *auth.Keys is one.
type Verifier interface {
	Verify(token string) (auth.Principal, error)
}

type principalKey struct{}

// PrincipalFrom returns who made the request, if a valid token came with it.
func PrincipalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

// CallerID returns the signed-in caller's user id, or the 401 an operation answers
// when there is none. Operations declared SignedIn (or stricter) always have one:
// the access rules refuse the request before; this is for the handler's own use.
func CallerID(ctx context.Context) (string, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.UserID == "" {
		return "", huma.Error401Unauthorized("sign in first")
	}
	return p.UserID, nil
}

// IsAdmin reports whether the request was made by an admin.
func IsAdmin(ctx context.Context) bool {
	p, ok := PrincipalFrom(ctx)
	return ok && p.Role == "admin"
}

// RequireOwner is the one owner check every module uses for resources that belong
// to a user (orders, their event streams): it returns nil when the caller owns the
// resource or is an admin, and otherwise Problem(notFound), where notFound is the
// very error the module answers for a resource that does not exist. The two answers
// are then the same bytes, so another customer's data is neither shown nor
// confirmed to exist.
func RequireOwner(ctx context.Context, ownerID string, notFound error) error {
	p, ok := PrincipalFrom(ctx)
	if ok && (p.Role == "admin" || (ownerID != "" && p.UserID == ownerID)) {
		return nil
	}
	return Problem(notFound)
}

func accessRules(api huma.API, v Verifier) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		if op == nil || op.Security == nil {
			// Every operation must declare its rule; one that does not is refused
			// rather than left open by accident.
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, "this operation declares no access rule")
			return
		}
		rule := RuleOf(op.Security)
		public, usesBearer, roles := rule.Public, rule.Bearer, rule.Roles
		authz := ctx.Header("Authorization")
		if !public || (usesBearer && authz != "") {
			// A personal or admin answer (or a refusal of one): no cache keeps it.
			ctx.SetHeader("Cache-Control", "no-store")
		}
		if authz == "" || !usesBearer {
			if !public {
				ctx.SetHeader("WWW-Authenticate", `Bearer realm="agora"`)
				_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "sign in first: send Authorization: Bearer <access token>")
				return
			}
			next(ctx) // a credential the operation does not use is ignored
			return
		}
		// The scheme name is case-insensitive (RFC 9110, section 11.1).
		scheme, token, ok := strings.Cut(authz, " ")
		var p auth.Principal
		var err error = auth.ErrInvalid
		if ok && strings.EqualFold(scheme, "Bearer") && v != nil {
			p, err = v.Verify(strings.TrimSpace(token))
		}
		if errors.Is(err, auth.ErrUnavailable) {
			// Identity's keys or revocations have not reached this process yet:
			// the token may be good, so this is no verdict on it.
			ctx.SetHeader("Retry-After", strconv.Itoa(RetryAfterSeconds))
			_ = huma.WriteErr(api, ctx, http.StatusServiceUnavailable, "access tokens cannot be verified yet; retry later")
			return
		}
		if err != nil {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="agora", error="invalid_token"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "the access token is not valid or has expired")
			return
		}
		if len(roles) > 0 && !slices.Contains(roles, p.Role) {
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, "this operation needs one of the roles: "+strings.Join(roles, ", "))
			return
		}
		next(huma.WithValue(ctx, principalKey{}, p))
	}
}
