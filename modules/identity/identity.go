// Package identity is the contract of the identity module: accounts, credentials,
// tokens and roles. Other modules and every process's HTTP edge use this package —
// and verify access tokens locally with the public key (package auth) — never the
// module's code.
//
// Requests (served by the process that runs identity):
//   - Register, Login, Refresh, Logout, ChangePassword: credentials. Login and Refresh
//     are not idempotent (each issues new tokens); Refresh rotates the refresh token,
//     and presenting a used one revokes its whole family (reuse detection).
//   - GetUser, ListUsers, SetRole: accounts (SetRole carries the version it expects).
//   - GetKeys, RotateKeys: the public keys access tokens are verified with (a JWKS),
//     which every process fetches instead of being given a key file.
//   - WatchRevocations: the feed of revoked tokens, a long poll every process follows.
//
// Access tokens carry their subject's token version. Logout, a password change, a
// role change and a reused refresh token raise it, and every process that verifies
// tokens refuses older versions from then on (see docs/adr/0012).
//
// Events (through identity's outbox): UserRegistered, RoleChanged, TokensRevoked.
package identity

import (
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// Roles. Every account has exactly one.
const (
	RoleCustomer = "customer"
	RoleAdmin    = "admin"
	RoleDriver   = "driver" // drives for the ride-sharing service: its own app's routes (httpapi.DriverOnly)
)

// Limits on credentials.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 128
	MaxEmailLen    = 254
	MaxPageSize    = 100
)

// User is an account. It never carries a password or hash.
type User struct {
	ID        string    `json:"id" format:"uuid"`
	Email     string    `json:"email" format:"email"`
	Role      string    `json:"role" enum:"customer,admin,driver"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Tokens is the OAuth 2 token response (RFC 6749, section 5.1).
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type" enum:"Bearer"`
	ExpiresIn    int64  `json:"expires_in" doc:"seconds until the access token expires"`
	RefreshToken string `json:"refresh_token"`
}

// Register creates a customer account. Email is normalized (trimmed, lower-cased).
type Register struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Login exchanges credentials for tokens.
type Login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Refresh exchanges a refresh token for new tokens; the old refresh token is spent.
type Refresh struct {
	RefreshToken string `json:"refresh_token"`
}

// Logout revokes a refresh token's whole family. Unknown tokens are not an error.
type Logout struct {
	RefreshToken string `json:"refresh_token"`
}

// ChangePassword sets a new password after checking the current one; it revokes
// every refresh token of the user.
type ChangePassword struct {
	UserID          string `json:"user_id"`
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// CreateUser creates an account with a role: the operator's path (agora admin
// create, the demo), never exposed to the public.
type CreateUser struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

// GetUser asks for one account.
type GetUser struct {
	ID string `json:"id"`
}

// ListUsers asks for a page of accounts in creation order.
type ListUsers struct {
	After string `json:"after"`
	Limit int    `json:"limit"`
}

// UserPage is a page of accounts; NextAfter is empty on the last page.
type UserPage struct {
	Items     []User `json:"items"`
	NextAfter string `json:"next_after"`
}

// SetRole changes an account's role if it is still at ExpectedVersion.
type SetRole struct {
	ID              string `json:"id"`
	Role            string `json:"role"`
	ExpectedVersion int64  `json:"expected_version"`
}

// Done is the empty reply.
type Done struct{}

// GetKeys asks for the public keys that verify access tokens.
type GetKeys struct{}

// RotateKeys makes identity sign with a new key from now on. The previous keys stay
// published until every token they signed has expired, so no token is refused by
// the rotation.
type RotateKeys struct{}

// JWK is one public key in the JSON Web Key format (RFC 7517; Ed25519 keys as in
// RFC 8037). Kid is the key's RFC 7638 thumbprint.
type JWK struct {
	Kty string `json:"kty" enum:"OKP"`
	Crv string `json:"crv" enum:"Ed25519"`
	X   string `json:"x" doc:"the public key, base64url without padding"`
	Kid string `json:"kid" doc:"the key id that access tokens name in their header"`
	Use string `json:"use" enum:"sig"`
	Alg string `json:"alg" enum:"EdDSA"`
}

// KeySet is a JSON Web Key Set: the keys access tokens may be signed with, the
// current signing key first.
type KeySet struct {
	Keys []JWK `json:"keys"`
}

// WatchRevocations asks for the revocations after the cursor After (0: every
// revocation still in effect), waiting up to Wait (at most 25 s; 0: answer at
// once) for one to happen.
type WatchRevocations struct {
	After int64         `json:"after"`
	Wait  time.Duration `json:"wait"`
}

// Revocation says: refuse the access tokens of UserID with a token version below
// MinVersion, until Until (when the last of them has expired).
type Revocation struct {
	UserID     string    `json:"user_id"`
	MinVersion int64     `json:"min_version"`
	Until      time.Time `json:"until"`
}

// RevocationFeed is a page of the revocation feed; ask again with After = Cursor.
type RevocationFeed struct {
	Items  []Revocation `json:"items"`
	Cursor int64        `json:"cursor"`
}

// The identity module's requests.
var (
	// Handled by accounts.(*Service).Register.
	RegisterRequest = message.NewRequest[Register, User]("identity.Register")
	// Handled by accounts.(*Service).Login.
	LoginRequest = message.NewRequest[Login, Tokens]("identity.Login")
	// Handled by accounts.(*Service).Refresh.
	RefreshRequest = message.NewRequest[Refresh, Tokens]("identity.Refresh")
	// Handled by accounts.(*Service).Logout.
	LogoutRequest = message.NewRequest[Logout, Done]("identity.Logout")
	// Handled by accounts.(*Service).ChangePassword.
	ChangePasswordRequest = message.NewRequest[ChangePassword, Done]("identity.ChangePassword")
	// Handled by accounts.(*Service).CreateUser.
	CreateUserRequest = message.NewRequest[CreateUser, User]("identity.CreateUser")
	// Handled by accounts.(*Service).GetUser.
	GetUserRequest = message.NewRequest[GetUser, User]("identity.GetUser")
	// Handled by accounts.(*Service).ListUsers.
	ListUsersRequest = message.NewRequest[ListUsers, UserPage]("identity.ListUsers")
	// Handled by accounts.(*Service).SetRole.
	SetRoleRequest = message.NewRequest[SetRole, User]("identity.SetRole")
	// Handled by signing.(*Keyring).KeySet.
	GetKeysRequest = message.NewRequest[GetKeys, KeySet]("identity.GetKeys")
	// Handled by signing.(*Keyring).Rotate.
	RotateKeysRequest = message.NewRequest[RotateKeys, KeySet]("identity.RotateKeys")
	// WatchRevocationsRequest is a long poll: it waits for a revocation.
	// Handled by accounts.(*Service).WatchRevocations.
	WatchRevocationsRequest = message.NewRequest[WatchRevocations, RevocationFeed]("identity.WatchRevocations").Parked()
)

// UserRegistered is published when an account is created.
type UserRegistered struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

// RoleChanged is published when an account's role changes.
type RoleChanged struct {
	UserID  string `json:"user_id"`
	OldRole string `json:"old_role"`
	NewRole string `json:"new_role"`
	Version int64  `json:"version"`
}

// TokensRevoked is published when a user's access tokens are revoked: tokens with
// a version below MinVersion are refused from then on. Reason is one of logout,
// password_changed, role_changed, refresh_token_reused.
type TokensRevoked struct {
	UserID     string `json:"user_id"`
	MinVersion int64  `json:"min_version"`
	Reason     string `json:"reason"`
}

// The identity module's events.
var (
	// Handled by no module.
	UserRegisteredEvent = message.NewEvent[UserRegistered]("identity.UserRegistered")
	// Handled by no module.
	RoleChangedEvent = message.NewEvent[RoleChanged]("identity.RoleChanged")
	// Handled by no module.
	TokensRevokedEvent = message.NewEvent[TokensRevoked]("identity.TokensRevoked")
)

// Errors identity returns. Credential errors are deliberately generic: they never
// say whether an email has an account.
var (
	ErrInvalidCredentials = message.NewError(message.Unauthenticated, "identity.invalid_credentials", "the email or password is not right")
	ErrInvalidToken       = message.NewError(message.Unauthenticated, "identity.invalid_token", "the refresh token is not valid")
	ErrEmailUnavailable   = message.NewError(message.Conflict, "identity.email_unavailable", "an account cannot be created with this email")
	ErrUserNotFound       = message.NewError(message.NotFound, "identity.user_not_found", "user not found")
	ErrVersionMismatch    = message.NewError(message.Precondition, "identity.version_mismatch", "the user has changed since you read it")
	ErrInvalidInput       = message.NewError(message.Invalid, "identity.invalid_input", "the request is not valid")
)
