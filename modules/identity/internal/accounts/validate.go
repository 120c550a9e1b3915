// Package accounts is the identity module's domain: accounts and their rules, the
// storage of accounts and refresh tokens, password hashing, and the request
// handlers that register, log in, rotate tokens and manage roles.
//
// Secrets never leave this package except as the client must receive them: a
// password is only hashed, a refresh token is stored only as its SHA-256, and
// nothing here logs either or a hash.
package accounts

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/agora-commerce/agora/modules/identity"
)

func invalid(field, format string, args ...any) error {
	return identity.ErrInvalidInput.Withf(format, args...).OnField(field)
}

// normalizeEmail trims and lower-cases an email: the form stored, looked up and
// made unique.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// newEmail returns the normalized form of the email of a new account, checking
// that it is a bare address (no display name, no comment) of at most MaxEmailLen
// characters.
func newEmail(raw string) (string, error) {
	// Checked before lower-casing, which would turn invalid bytes into U+FFFD.
	if !utf8.ValidString(raw) {
		return "", invalid("email", "email must be valid UTF-8")
	}
	email := normalizeEmail(raw)
	if utf8.RuneCountInString(email) > identity.MaxEmailLen {
		return "", invalid("email", "email must be at most %d characters", identity.MaxEmailLen)
	}
	a, err := mail.ParseAddress(email)
	// ParseAddress also takes "Name <a@b>" and "a@b (comment)"; only the bare
	// address is an email here.
	if err != nil || a.Name != "" || a.Address != email {
		return "", invalid("email", "email must be an address such as name@example.com")
	}
	return email, nil
}

func validateRole(role string) error {
	switch role {
	case identity.RoleCustomer, identity.RoleAdmin, identity.RoleDriver:
		return nil
	}
	return invalid("role", "role must be %s, %s or %s", identity.RoleCustomer, identity.RoleAdmin, identity.RoleDriver)
}
