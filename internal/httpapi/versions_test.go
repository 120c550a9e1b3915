package httpapi

import (
	"errors"
	"net/http"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/message"
)

func TestIfMatchVersion(t *testing.T) {
	tests := []struct {
		header   string
		required bool
		want     int64
		status   int // 0: no error
	}{
		{`"3"`, true, 3, 0},
		{` "12" `, true, 12, 0},
		{"", false, 0, 0},
		{"", true, 0, http.StatusPreconditionRequired},
		{`W/"3"`, true, 0, http.StatusPreconditionFailed}, // If-Match compares strongly
		{`"0"`, true, 0, http.StatusPreconditionFailed},
		{`3`, true, 0, http.StatusPreconditionFailed},
		{`"x"`, false, 0, http.StatusPreconditionFailed},
		{`*`, true, 0, http.StatusPreconditionFailed},
		{ETagWith(4, "in stock"), true, 4, 0}, // writes compare the version part
		{`".5"`, true, 0, http.StatusPreconditionFailed},
	}
	for _, tt := range tests {
		got, err := IfMatchVersion(tt.header, tt.required)
		var se huma.StatusError
		status := 0
		if errors.As(err, &se) {
			status = se.GetStatus()
		}
		if got != tt.want || status != tt.status {
			t.Errorf("IfMatchVersion(%q, %v) = %d, status %d; want %d, status %d", tt.header, tt.required, got, status, tt.want, tt.status)
		}
	}
}

func TestETagMatches(t *testing.T) {
	for header, want := range map[string]bool{`"2"`: true, `W/"2"`: true, `"1", "2"`: true, `*`: true, `"1"`: false, ``: false} {
		if got := ETagMatches(header, ETag(2)); got != want {
			t.Errorf("ETagMatches(%q, 2) = %v, want %v", header, got, want)
		}
	}
}

// An ETagWith ETag changes with what the body shows besides the version, so a
// cache cannot keep a stale body; it is stable for the same state.
func TestETagWith(t *testing.T) {
	a, b := ETagWith(3, map[string]int{"available": 100}), ETagWith(3, map[string]int{"available": 150})
	if a == b {
		t.Errorf("ETagWith ignored the state: %s for both", a)
	}
	if a != ETagWith(3, map[string]int{"available": 100}) || a == ETagWith(4, map[string]int{"available": 100}) {
		t.Errorf("ETagWith is not a function of version and state: %s", a)
	}
	if !ETagMatches(a, a) || ETagMatches(a, b) {
		t.Errorf("If-None-Match %s must match itself and not %s", a, b)
	}
}

func TestBodyProblemNamesBodyFields(t *testing.T) {
	err := BodyProblem(message.NewError(message.Conflict, "x.taken", "taken").OnField("sku"))
	var em *huma.ErrorModel
	if !errors.As(err, &em) || len(em.Errors) != 1 || em.Errors[0].Location != "body.sku" {
		t.Fatalf("BodyProblem = %#v, want the field at body.sku", err)
	}
	err = BodyProblem(message.NewError(message.Invalid, "x.bad", "bad").OnField("body.price"))
	if !errors.As(err, &em) || em.Errors[0].Location != "body.price" {
		t.Errorf("a field already in the body was renamed: %#v", err)
	}
}
