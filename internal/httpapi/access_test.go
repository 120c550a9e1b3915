package httpapi

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/auth"
)

func TestCallerID(t *testing.T) {
	with := func(p auth.Principal) context.Context { return context.WithValue(t.Context(), principalKey{}, p) }
	tests := []struct {
		name string
		ctx  context.Context
		want string // "" for a 401
	}{
		{"signed in", with(auth.Principal{UserID: customerID, Role: "customer"}), customerID},
		{"admin", with(auth.Principal{UserID: adminID, Role: "admin"}), adminID},
		{"principal without user id", with(auth.Principal{Role: "customer"}), ""},
		{"no principal", t.Context(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CallerID(tt.ctx)
			if tt.want != "" {
				if got != tt.want || err != nil {
					t.Fatalf("CallerID = %q, %v; want %q, nil", got, err, tt.want)
				}
				return
			}
			var se huma.StatusError
			if got != "" || !errors.As(err, &se) || se.GetStatus() != http.StatusUnauthorized {
				t.Fatalf("CallerID = %q, %v; want a 401", got, err)
			}
		})
	}
}
