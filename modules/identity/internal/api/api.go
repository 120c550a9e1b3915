// Package api is the identity module's HTTP adapter: sign-up, sign-in, tokens, the
// caller's own account, and account administration. It depends only on identity's
// contract and the bus, so every process serves these routes.
package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/identity"
)

// Limits on sign-in and sign-up, per client IP and per account.
type Limits struct {
	PerIPPerMinute      int // default 20
	PerAccountPerMinute int // default 5
}

// Credentials is the body of sign-up and sign-in.
type Credentials struct {
	Email    string `json:"email" format:"email" maxLength:"254" example:"customer@example.com"`
	Password string `json:"password" minLength:"1" maxLength:"128" example:"demo-customer-password"`
}

type tokensOut struct {
	CacheControl string `header:"Cache-Control"`
	Pragma       string `header:"Pragma"`
	Body         identity.Tokens
}

func tokens(t identity.Tokens) *tokensOut {
	// RFC 6749, section 5.1: token responses must not be cached.
	return &tokensOut{CacheControl: "no-store", Pragma: "no-cache", Body: t}
}

type userOut struct {
	ETag string `header:"ETag" required:"true" doc:"the representation's strong ETag: send it as If-Match to change the account"`
	Body identity.User
}

// Routes returns identity's HTTP routes, answered through b.
func Routes(b *bus.Bus, limits Limits) httpapi.Routes {
	if limits.PerIPPerMinute <= 0 {
		limits.PerIPPerMinute = 20
	}
	if limits.PerAccountPerMinute <= 0 {
		limits.PerAccountPerMinute = 5
	}
	h := handlers{b: b, attempts: attempts{
		perIP:      httpapi.NewKeyedLimiter(limits.PerIPPerMinute, limits.PerIPPerMinute),
		perAccount: httpapi.NewKeyedLimiter(limits.PerAccountPerMinute, limits.PerAccountPerMinute),
	}}
	// Public routes with a body are also limited at the edge, before their body is
	// read: never below the configured sign-in limit, so raising that raises this.
	edgePerMinute, edgeBurst := max(httpapi.EdgePerIPPerMinute, limits.PerIPPerMinute), max(httpapi.EdgeBurst, limits.PerIPPerMinute)
	return func(api huma.API) {
		authRoutes(api, h, edgePerMinute, edgeBurst)
		accountRoutes(api, h)
	}
}

// authRoutes registers the public operations that sign up, sign in and out, and
// refresh tokens; each is rate-limited at the edge as well as per account.
func authRoutes(api huma.API, h handlers, edgePerMinute, edgeBurst int) {
	tags := []string{"Identity"}
	huma.Register(api, httpapi.RateLimited(huma.Operation{
		OperationID: "register", Method: http.MethodPost, Path: "/v1/auth/register", Tags: tags,
		Summary: "Create a customer account", DefaultStatus: http.StatusCreated, Security: httpapi.Public,
		Description: "Passwords are 10 to 128 characters. Rate-limited per address and per account (429 with Retry-After).",
		Errors:      []int{http.StatusTooManyRequests},
		Metadata:    httpapi.Problems(identity.ErrEmailUnavailable, identity.ErrInvalidInput),
	}, edgePerMinute, edgeBurst), h.register)
	huma.Register(api, httpapi.RateLimited(huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/v1/auth/login", Tags: tags,
		Summary: "Sign in", Security: httpapi.Public,
		Description: "Answers in the OAuth 2 token-response shape. A wrong email and a wrong password get the same answer. " +
			"Rate-limited per address and per account (429 with Retry-After).",
		Errors:   []int{http.StatusTooManyRequests},
		Metadata: httpapi.Problems(identity.ErrInvalidCredentials, identity.ErrInvalidInput),
	}, edgePerMinute, edgeBurst), h.login)
	huma.Register(api, httpapi.RateLimited(huma.Operation{
		OperationID: "refresh", Method: http.MethodPost, Path: "/v1/auth/refresh", Tags: tags,
		Summary: "Exchange a refresh token for new tokens", Security: httpapi.Public,
		Description: "The refresh token is rotated: the one sent is spent. Sending a spent one again revokes every token of its family.",
		Errors:      []int{http.StatusTooManyRequests},
		Metadata:    httpapi.Problems(identity.ErrInvalidToken, identity.ErrInvalidInput),
	}, edgePerMinute, edgeBurst), h.refresh)
	huma.Register(api, httpapi.RateLimited(huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/v1/auth/logout", Tags: tags,
		Summary: "Sign out: revoke a refresh token and its family", Security: httpapi.Public, DefaultStatus: http.StatusNoContent,
		Description: "Revokes the refresh token sent and every token rotated from it. Signing out with a token that is " +
			"already spent or unknown is not an error. Access tokens already issued stay valid until they expire.",
		Metadata: httpapi.Problems(identity.ErrInvalidInput),
	}, edgePerMinute, edgeBurst), h.logout)
}

// accountRoutes registers the signed-in caller's own account and, for admins,
// everyone's.
func accountRoutes(api huma.API, h handlers) {
	tags := []string{"Identity"}
	huma.Register(api, huma.Operation{
		OperationID: "get-me", Method: http.MethodGet, Path: "/v1/me", Tags: tags,
		Summary: "The signed-in user's account", Security: httpapi.SignedIn,
		Description: "The account the access token was issued to, with its ETag.",
		Metadata:    httpapi.Problems(identity.ErrUserNotFound),
	}, h.getMe)
	huma.Register(api, huma.Operation{
		OperationID: "change-password", Method: http.MethodPost, Path: "/v1/me/password", Tags: tags,
		Summary: "Change the signed-in user's password", Security: httpapi.SignedIn, DefaultStatus: http.StatusNoContent,
		Description: "Signs out every session: all refresh tokens of the account are revoked.",
		Errors:      []int{http.StatusTooManyRequests},
		Metadata:    httpapi.Problems(identity.ErrInvalidInput),
	}, h.changePassword)
	huma.Register(api, huma.Operation{
		OperationID: "list-users", Method: http.MethodGet, Path: "/v1/users", Tags: tags,
		Summary: "List accounts", Security: httpapi.AdminOnly,
		Description: "Every account in creation order, by pages.",
		Metadata:    httpapi.Problems(identity.ErrInvalidInput),
	}, h.listUsers)
	huma.Register(api, huma.Operation{
		OperationID: "get-user", Method: http.MethodGet, Path: "/v1/users/{id}", Tags: tags,
		Summary: "Get an account", Security: httpapi.AdminOnly,
		Description: "One account, with its ETag (for changing its role).",
		Metadata:    httpapi.Problems(identity.ErrUserNotFound),
	}, h.getUser)
	huma.Register(api, huma.Operation{
		OperationID: "set-user-role", Method: http.MethodPut, Path: "/v1/users/{id}/role", Tags: tags,
		Summary: "Change an account's role", Security: httpapi.AdminOnly,
		Description: "Roles: customer (shops and rides), admin (everything), driver (drives for the ride-sharing service: the driver routes). Publishes RoleChanged. Tokens already issued keep their role until they expire (15 minutes).",
		Errors:      []int{http.StatusPreconditionFailed, http.StatusPreconditionRequired},
		Metadata:    httpapi.Problems(identity.ErrUserNotFound, identity.ErrVersionMismatch, identity.ErrInvalidInput),
	}, h.setRole)
}

// handlers answers identity's operations by asking identity through the bus.
type handlers struct {
	b        *bus.Bus
	attempts attempts
}

// attempts limits sign-in and sign-up attempts per client address and per account.
type attempts struct {
	perIP, perAccount *httpapi.KeyedLimiter
}

// allow takes one attempt from ip and, unless account is empty, from account (an
// email, compared case-insensitively). Over either limit it returns the 429 to
// answer.
func (a attempts) allow(ip, account string) error {
	now := time.Now()
	if ok, wait := a.perIP.Allow("ip:"+ip, now); !ok {
		return httpapi.TooManyRequests(wait, "too many attempts from this address; retry later")
	}
	if account != "" {
		if ok, wait := a.perAccount.Allow("account:"+strings.ToLower(strings.TrimSpace(account)), now); !ok {
			return httpapi.TooManyRequests(wait, "too many attempts for this account; retry later")
		}
	}
	return nil
}

// register creates a customer account.
func (h handlers) register(ctx context.Context, in *struct{ Body Credentials }) (*userOut, error) {
	if err := h.attempts.allow(httpapi.ClientIP(ctx), in.Body.Email); err != nil {
		return nil, err
	}
	u, err := bus.Call(ctx, h.b, identity.RegisterRequest, identity.Register{Email: in.Body.Email, Password: in.Body.Password})
	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return &userOut{ETag: httpapi.ETag(u.Version), Body: u}, nil
}

// login answers fresh tokens for an email and password.
func (h handlers) login(ctx context.Context, in *struct{ Body Credentials }) (*tokensOut, error) {
	if err := h.attempts.allow(httpapi.ClientIP(ctx), in.Body.Email); err != nil {
		return nil, err
	}
	t, err := bus.Call(ctx, h.b, identity.LoginRequest, identity.Login{Email: in.Body.Email, Password: in.Body.Password})
	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return tokens(t), nil
}

// RefreshTokenInput carries a refresh token to spend or revoke.
type RefreshTokenInput struct {
	RefreshToken string `json:"refresh_token" minLength:"1" maxLength:"200"`
}

// refresh spends a refresh token for new tokens.
func (h handlers) refresh(ctx context.Context, in *struct{ Body RefreshTokenInput }) (*tokensOut, error) {
	if err := h.attempts.allow(httpapi.ClientIP(ctx), ""); err != nil {
		return nil, err
	}
	t, err := bus.Call(ctx, h.b, identity.RefreshRequest, identity.Refresh{RefreshToken: in.Body.RefreshToken})
	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return tokens(t), nil
}

// logout revokes a refresh token and its family.
func (h handlers) logout(ctx context.Context, in *struct{ Body RefreshTokenInput }) (*struct{}, error) {
	if _, err := bus.Call(ctx, h.b, identity.LogoutRequest, identity.Logout{RefreshToken: in.Body.RefreshToken}); err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return nil, nil
}

// getMe answers the signed-in caller's account.
func (h handlers) getMe(ctx context.Context, _ *struct{}) (*userOut, error) {
	p, _ := httpapi.PrincipalFrom(ctx)
	return h.getUser(ctx, &idIn{ID: p.UserID})
}

// PasswordChange is the body of a password change.
type PasswordChange struct {
	CurrentPassword string `json:"current_password" minLength:"1" maxLength:"128"`
	NewPassword     string `json:"new_password" minLength:"10" maxLength:"128"`
}

// changePassword changes the signed-in caller's password, limited like sign-in
// attempts since it checks the current password.
func (h handlers) changePassword(ctx context.Context, in *struct{ Body PasswordChange }) (*struct{}, error) {
	p, _ := httpapi.PrincipalFrom(ctx)
	if err := h.attempts.allow(httpapi.ClientIP(ctx), "user:"+p.UserID); err != nil {
		return nil, err
	}
	_, err := bus.Call(ctx, h.b, identity.ChangePasswordRequest, identity.ChangePassword{
		UserID: p.UserID, CurrentPassword: in.Body.CurrentPassword, NewPassword: in.Body.NewPassword})

	if errors.Is(err, identity.ErrInvalidCredentials) {
		// The caller is signed in; a 401 here would read as an expired session.
		err = identity.ErrInvalidInput.Withf("the current password is not right").OnField("current_password")
	}
	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return nil, nil
}

// UserList is a page of accounts.
type UserList struct {
	Items      []identity.User `json:"items"`
	NextCursor string          `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

var userCursor = httpapi.Cursor{Prefix: "u1."}

// listUsers answers a page of accounts.
func (h handlers) listUsers(ctx context.Context, in *httpapi.Paging) (*httpapi.PageOut[UserList], error) {
	after, err := userCursor.Decode(in.Cursor)
	if err != nil {
		return nil, err
	}
	page, err := bus.Call(ctx, h.b, identity.ListUsersRequest, identity.ListUsers{After: after, Limit: in.Limit})
	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	out := &httpapi.PageOut[UserList]{Body: UserList{Items: httpapi.NotNull(page.Items)}}
	out.Body.NextCursor, out.Link = userCursor.Next(page.NextAfter, "/v1/users", in.Limit, nil)
	return out, nil
}

type idIn struct {
	ID string `path:"id" format:"uuid"`
}

// getUser answers an account.
func (h handlers) getUser(ctx context.Context, in *idIn) (*userOut, error) {
	u, err := bus.Call(ctx, h.b, identity.GetUserRequest, identity.GetUser{ID: in.ID})
	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return &userOut{ETag: httpapi.ETag(u.Version), Body: u}, nil
}

type roleIn struct {
	ID      string `path:"id" format:"uuid"`
	IfMatch string `header:"If-Match" doc:"the account's current ETag (428 without it)"`
	Body    RoleChange
}

// RoleChange is the body of a role change.
type RoleChange struct {
	Role string `json:"role" enum:"customer,admin,driver" example:"driver"`
}

// setRole changes an account's role, at the version If-Match names (required).
func (h handlers) setRole(ctx context.Context, in *roleIn) (*userOut, error) {
	v, err := httpapi.IfMatchVersion(in.IfMatch, true)
	if err != nil {
		return nil, err
	}
	u, err := bus.Call(ctx, h.b, identity.SetRoleRequest, identity.SetRole{ID: in.ID, Role: in.Body.Role, ExpectedVersion: v})
	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return &userOut{ETag: httpapi.ETag(u.Version), Body: u}, nil
}
