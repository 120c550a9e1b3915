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
//
// Events (through identity's outbox): UserRegistered, RoleChanged.
package identity

import (
	"time"

	"github.com/agora-commerce/agora/internal/bus"
)

// Roles. Every account has exactly one.
const (
	RoleCustomer = "customer"
	RoleAdmin    = "admin"
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
	Role      string    `json:"role" enum:"customer,admin"`
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

// The identity module's requests.
var (
	RegisterRequest       = bus.NewRequest[Register, User]("identity.Register")
	LoginRequest          = bus.NewRequest[Login, Tokens]("identity.Login")
	RefreshRequest        = bus.NewRequest[Refresh, Tokens]("identity.Refresh")
	LogoutRequest         = bus.NewRequest[Logout, Done]("identity.Logout")
	ChangePasswordRequest = bus.NewRequest[ChangePassword, Done]("identity.ChangePassword")
	CreateUserRequest     = bus.NewRequest[CreateUser, User]("identity.CreateUser")
	GetUserRequest        = bus.NewRequest[GetUser, User]("identity.GetUser")
	ListUsersRequest      = bus.NewRequest[ListUsers, UserPage]("identity.ListUsers")
	SetRoleRequest        = bus.NewRequest[SetRole, User]("identity.SetRole")
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

// The identity module's events.
var (
	UserRegisteredEvent = bus.NewEvent[UserRegistered]("identity.UserRegistered")
	RoleChangedEvent    = bus.NewEvent[RoleChanged]("identity.RoleChanged")
)

// Errors identity returns. Credential errors are deliberately generic: they never
// say whether an email has an account.
var (
	ErrInvalidCredentials = bus.NewError(bus.KindUnauthenticated, "identity.invalid_credentials", "the email or password is not right")
	ErrInvalidToken       = bus.NewError(bus.KindUnauthenticated, "identity.invalid_token", "the refresh token is not valid")
	ErrEmailUnavailable   = bus.NewError(bus.KindConflict, "identity.email_unavailable", "an account cannot be created with this email")
	ErrUserNotFound       = bus.NewError(bus.KindNotFound, "identity.user_not_found", "user not found")
	ErrVersionMismatch    = bus.NewError(bus.KindPrecondition, "identity.version_mismatch", "the user has changed since you read it")
	ErrInvalidInput       = bus.NewError(bus.KindInvalid, "identity.invalid_input", "the request is not valid")
)
