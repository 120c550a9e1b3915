package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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

// ETagWith returns the strong ETag of a representation that shows, besides the
// resource at version, state that changes without a new version (a product's live
// availability): "3.9f2c41d07a5e3b18", the version and a hash of state's JSON. Any
// change of what the body shows changes the ETag, so a cache never keeps a stale
// body; writes still compare the version alone (IfMatchVersion), since that state
// is not what they change.
func ETagWith(version int64, state any) string {
	h := fnv.New64a()
	_ = json.NewEncoder(h).Encode(state)
	return fmt.Sprintf(`"%d.%016x"`, version, h.Sum64())
}

// ETagMatches reports whether an If-None-Match header holds etag, or *. Weak ETags
// match too: If-None-Match compares weakly (RFC 9110, section 13.1.2).
func ETagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// NotModified is the 304 answer for a representation whose ETag the caller holds;
// it repeats the ETag (RFC 9110, section 15.4.5).
func NotModified(etag string) error {
	return huma.ErrorWithHeaders(huma.Status304NotModified(), http.Header{"ETag": {etag}})
}

// NotModifiedResponse declares the 304 that NotModified answers.
func NotModifiedResponse() *huma.Response {
	return &huma.Response{Description: "Not Modified: your copy is current",
		Headers: map[string]*huma.Param{"ETag": {Description: "the current ETag, the one you sent",
			Schema: &huma.Schema{Type: "string"}, Required: true}}}
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
		version, _, _ := strings.Cut(uq, ".") // an ETagWith ETag: its version part
		if v, err := strconv.ParseInt(version, 10, 64); err == nil && v > 0 {
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
