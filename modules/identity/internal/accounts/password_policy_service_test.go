package accounts_test

import (
	"context"
	"strings"
	"testing"

	"github.com/agora-commerce/agora/modules/identity"
)

// weakPasswords breaks one rule of the password policy each (the rules
// themselves are tested in password_policy_test.go).
var weakPasswords = []struct{ name, password string }{
	{"on the blocklist", "QwertyUiop"},
	{"with a NUL", "long enough\x00password"},
	{"one character repeated", "zzzzzzzzzzzz"},
	{"consecutive characters", "0123456789"},
	{"the service's name", "Agora-2024!"},
}

// Every path that sets a password applies the policy, names its own field, never
// repeats the password, and stores nothing.
func TestPasswordPolicyOnEveryPath(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		u := f.register(t, "owner@example.com", pw)
		before := f.hash(t, u.ID)
		paths := []struct {
			name, field string
			set         func(ctx context.Context, password string) error
		}{
			{"Register", "password", func(ctx context.Context, p string) error {
				_, err := f.s.Register(ctx, identity.Register{Email: "new@example.com", Password: p})
				return err
			}},
			{"CreateUser", "password", func(ctx context.Context, p string) error {
				_, err := f.s.CreateUser(ctx, identity.CreateUser{Email: "new@example.com", Password: p, Role: identity.RoleAdmin})
				return err
			}},
			{"ChangePassword", "new_password", func(ctx context.Context, p string) error {
				_, err := f.s.ChangePassword(ctx, identity.ChangePassword{UserID: u.ID, CurrentPassword: pw, NewPassword: p})
				return err
			}},
		}
		for _, path := range paths {
			for _, w := range weakPasswords {
				t.Run(path.name+"/"+w.name, func(t *testing.T) {
					err := path.set(ctx, w.password)
					wantInvalid(t, err, path.field)
					if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w.password)) {
						t.Errorf("the error %q repeats the password", err)
					}
					if n := f.count(t); n != 1 {
						t.Errorf("%d accounts, want the one there was", n)
					}
					if f.hash(t, u.ID) != before {
						t.Error("the password was changed")
					}
				})
			}
		}
	})
}
