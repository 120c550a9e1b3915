package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/message"
)

// Resources that carry a version (products, accounts) use it as their ETag, and
// writes name the version they expect in If-Match: one convention, in one place.

// ETag returns the strong ETag of a resource version: "3".
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ETagMatches reports whether an If-None-Match header holds version's ETag, or *.
// Weak ETags match too: If-None-Match compares weakly (RFC 9110, section 13.1.2).
func ETagMatches(header string, version int64) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == ETag(version) {
			return true
		}
	}
	return false
}

// IfMatchVersion returns the version an If-Match header names. A missing header is
// 428 when required and version 0 (no check) when not; a header that names no
// version — a weak ETag included, since If-Match compares strongly — is 412.
func IfMatchVersion(header string, required bool) (int64, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		if required {
			return 0, huma.NewError(http.StatusPreconditionRequired,
				"send If-Match with the current ETag, so you cannot overwrite a change you have not seen",
				&huma.ErrorDetail{Location: "header.If-Match", Message: "required"})
		}
		return 0, nil
	}
	if uq, err := strconv.Unquote(header); err == nil {
		if v, err := strconv.ParseInt(uq, 10, 64); err == nil && v > 0 {
			return v, nil
		}
	}
	return 0, huma.Error412PreconditionFailed("If-Match does not hold an ETag this resource ever had", &huma.ErrorDetail{
		Location: "header.If-Match", Value: header, Message: `expected an ETag such as "3", as sent in the ETag header`})
}

// BodyProblem is Problem for the answer to a request with a body: a field the module
// names ("sku") is reported where huma reports fields, in the body ("body.sku").
func BodyProblem(err error) error {
	var be *message.Error
	if errors.As(err, &be) && be.Field != "" && !strings.HasPrefix(be.Field, "body.") {
		err = be.OnField("body." + be.Field)
	}
	return Problem(err)
}
