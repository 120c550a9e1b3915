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
		if got := ETagMatches(header, 2); got != want {
			t.Errorf("ETagMatches(%q, 2) = %v, want %v", header, got, want)
		}
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
