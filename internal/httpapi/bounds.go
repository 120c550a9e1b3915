package httpapi

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// Bounds on what a problem answer carries. huma reports one error detail per
// violation, each echoing the offending value: a body with N unknown properties
// gave N details that each held the whole body, an answer that grows with N². These
// bounds make every problem small whatever the request, and never a mirror of it.
const (
	// MaxProblemErrors is how many error details a problem lists; one more detail
	// then says how many were left out.
	MaxProblemErrors = 20
	// MaxEchoBytes is how much of a string value a detail echoes; longer values are
	// cut (at a character boundary) and end in "…".
	MaxEchoBytes = 64
	// maxLocationBytes bounds a detail's location (an unknown property's name is
	// part of it), maxMessageBytes its message and maxDetailBytes the problem's
	// detail: all may carry text the client chose.
	maxLocationBytes = 128
	maxMessageBytes  = 256
	maxDetailBytes   = 1024
)

// SecretFields are the words that mark a field as secret: a detail whose location
// ends in a field whose name contains one of them ("password", "new_password",
// "refresh_token", "payment_token", "header.Authorization", "api_key") never echoes
// its value. Matching is by substring, case-insensitive, on the last segment of the
// location, so a new secret field needs no entry as long as its name says what it is.
var SecretFields = []string{"password", "passwd", "secret", "token", "key", "authorization", "cookie", "card", "cvc", "cvv"}

// boundProblems is the transformer that applies the bounds above to every problem
// huma writes — validation failures, handler errors and errors from the edge alike —
// so no route can forget them.
func boundProblems(_ huma.Context, _ string, v any) (any, error) {
	if em, ok := v.(*huma.ErrorModel); ok && em != nil {
		return boundProblem(em), nil
	}
	return v, nil
}

// boundProblem returns a copy of em within the bounds: at most MaxProblemErrors
// details (plus one that counts the rest), no object or array values, no secret
// values, and long text cut. em itself is not changed: it may be shared.
func boundProblem(em *huma.ErrorModel) *huma.ErrorModel {
	out := *em
	if out.Type == "" {
		out.Type = EdgeProblemType(em.Status) // every problem names its documented type
	}
	out.Detail = truncateText(em.Detail, maxDetailBytes)
	out.Errors = nil
	omitted := 0
	for _, d := range em.Errors {
		if d == nil {
			continue
		}
		if len(out.Errors) == MaxProblemErrors {
			omitted++
			continue
		}
		out.Errors = append(out.Errors, &huma.ErrorDetail{
			Message:  truncateText(d.Message, maxMessageBytes),
			Location: truncateText(d.Location, maxLocationBytes),
			Value:    echoValue(d.Location, d.Value),
		})
	}
	if omitted > 0 {
		out.Errors = append(out.Errors, &huma.ErrorDetail{
			Message: fmt.Sprintf("%d more errors left out; fix the ones above and retry", omitted)})
	}
	return &out
}

// echoValue is what a detail at location may show of the value v it reports:
// booleans and numbers as they are, strings cut to MaxEchoBytes, and nothing for
// secrets, objects, arrays or anything else. Nor anything at a location that names
// no field: huma reports a body it cannot parse at "body" with the whole raw body
// as a string, and its first bytes may well be a password.
func echoValue(location string, v any) any {
	if v == nil || !strings.Contains(location, ".") || IsSecretField(location) {
		return nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return v
	case reflect.String:
		return truncateText(rv.String(), MaxEchoBytes)
	default:
		return nil
	}
}

// IsSecretField reports whether the field a location ends in ("body.new_password",
// "body.items[2].card_number", "header.Authorization") is secret by SecretFields.
func IsSecretField(location string) bool {
	last := location[strings.LastIndexByte(location, '.')+1:]
	if i := strings.IndexByte(last, '['); i >= 0 {
		last = last[:i]
	}
	last = strings.ToLower(last)
	for _, w := range SecretFields {
		if strings.Contains(last, w) {
			return true
		}
	}
	return false
}

// truncateText returns s if it fits in max bytes, else its longest prefix of whole
// characters that fits with "…" after it.
func truncateText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
