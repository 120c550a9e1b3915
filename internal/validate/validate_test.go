package validate_test

import (
	"errors"
	"testing"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/validate"
)

func TestPrintable(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", true},
		{"a key-1_2.3 ~!", true},
		{"crème brûlée 🚕", true},
		{"tab\there", false},
		{"new\nline", false},
		{"nul\x00", false},
		{"bad \xff utf-8", false},
		{"no-break\u00a0space", false},
		{"zero\u200bwidth", false},
	}
	for _, tt := range tests {
		if got := validate.Printable(tt.s); got != tt.want {
			t.Errorf("Printable(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

var errInvalid = message.NewError(message.Invalid, "test.invalid_input", "the input is invalid")

func TestText(t *testing.T) {
	tests := []struct {
		name string
		s    string
		ok   bool
	}{
		{"empty", "", true},
		{"at the bound, counted in characters", "ééééé", true},
		{"over the bound", "abcdef", false},
		{"not printable", "a\nb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate.Text(errInvalid, "body.reason", tt.s, 5)
			if tt.ok {
				if err != nil {
					t.Fatalf("Text = %v, want nil", err)
				}
				return
			}
			be := message.AsError(err)
			if !errors.Is(err, errInvalid) || be.Field != "body.reason" || be.Message != "at most 5 printable characters" {
				t.Fatalf("Text = %+v; want errInvalid on body.reason saying at most 5 printable characters", be)
			}
		})
	}
}
