package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
)

// Cursor is the one kind of list cursor the API hands out: opaque to clients, it is
// the last key of the previous page behind a prefix naming the list it pages over
// (so a cursor of one list is refused by another), base64url-encoded.
type Cursor struct {
	Prefix string                // e.g. "p1." for products; the digit versions the format
	Valid  func(key string) bool // nil: the key must be a UUID
}

// Encode returns the cursor of the page after key.
func (c Cursor) Encode(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.Prefix + key))
}

// Decode returns the key in s ("" for no cursor), or a 422 problem naming
// query.cursor when s is not a cursor of this list.
func (c Cursor) Decode(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	key, ok := strings.CutPrefix(string(raw), c.Prefix)
	if err == nil && ok && c.valid(key) {
		return key, nil
	}
	return "", huma.Error422UnprocessableEntity("the cursor is not valid", &huma.ErrorDetail{
		Location: "query.cursor", Value: s, Message: "use the next_cursor of a previous page, unchanged"})
}

func (c Cursor) valid(key string) bool {
	if c.Valid != nil {
		return c.Valid(key)
	}
	_, err := uuid.Parse(key)
	return err == nil
}

// NextLink returns the RFC 8288 Link header value of a list's next page: path with
// query (which carries the next cursor and the list's other parameters).
func NextLink(path string, query url.Values) string {
	return fmt.Sprintf(`<%s?%s>; rel="next"`, path, query.Encode())
}
