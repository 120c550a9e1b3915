package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
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

// Paging is the query of a list that pages with a Cursor: embed it in the
// operation's input, after the list's filters.
type Paging struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"how many items a page holds at most"`
	Cursor string `query:"cursor" maxLength:"200" doc:"next_cursor of the previous page (opaque); absent for the first page"`
}

// PageOut is the answer of a list that pages: the page (a struct of items and
// next_cursor) as its body, and the Link header to the next page.
type PageOut[T any] struct {
	Link string `header:"Link" doc:"rel=next link to the next page"`
	Body T
}

// Next returns what a list answers about the page after one whose last key is key:
// the cursor to pass for it and the Link header that leads there — path with that
// cursor, limit and the list's filters, those that are empty left out. Both are ""
// when key is "": that page was the last.
func (c Cursor) Next(key, path string, limit int, filters map[string]string) (cursor, link string) {
	if key == "" {
		return "", ""
	}
	cursor = c.Encode(key)
	q := url.Values{"cursor": {cursor}, "limit": {strconv.Itoa(limit)}}
	for k, v := range filters {
		if v != "" {
			q.Set(k, v)
		}
	}
	return cursor, NextLink(path, q)
}

// NotNull returns items, or an empty slice when items is nil: a list answers [],
// never null, when it has nothing to show.
func NotNull[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}
