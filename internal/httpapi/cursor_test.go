package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/httpapi"
)

func TestCursor(t *testing.T) {
	products := httpapi.Cursor{Prefix: "p1."}
	orders := httpapi.Cursor{Prefix: "o1."}
	skus := httpapi.Cursor{Prefix: "i1.", Valid: func(k string) bool { return k != "" && len(k) <= 8 }}
	id := "01a22fb8-156b-7a56-a7f5-daf21b937862"

	if got, err := products.Decode(products.Encode(id)); err != nil || got != id {
		t.Errorf("round trip = %q, %v", got, err)
	}
	if got, err := products.Decode(""); err != nil || got != "" {
		t.Errorf("no cursor = %q, %v", got, err)
	}
	if got, err := skus.Decode(skus.Encode("TEE-M")); err != nil || got != "TEE-M" {
		t.Errorf("custom key round trip = %q, %v", got, err)
	}
	for name, c := range map[string]string{
		"another list's cursor": orders.Encode(id),
		"not base64":            "%%%",
		"not a UUID":            products.Encode("x"),
		"no prefix":             "MDFhMjJmYjgtMTU2Yi03YTU2LWE3ZjUtZGFmMjFiOTM3ODYy",
		"custom key invalid":    skus.Encode("TOO-LONG-SKU"),
	} {
		dec := products
		if name == "custom key invalid" {
			dec = skus
		}
		_, err := dec.Decode(c)
		var se huma.StatusError
		if !errors.As(err, &se) || se.GetStatus() != 422 {
			t.Errorf("%s: err = %v, want a 422 problem", name, err)
		}
	}
	if got, want := httpapi.NextLink("/v1/products", url.Values{"cursor": {"abc"}, "limit": {"5"}}), `</v1/products?cursor=abc&limit=5>; rel="next"`; got != want {
		t.Errorf("NextLink = %s, want %s", got, want)
	}
}

// TestCursorNext checks the cursor and Link of a next page: the link carries the
// cursor, the limit and the filters that are set, and the last page has neither.
func TestCursorNext(t *testing.T) {
	products := httpapi.Cursor{Prefix: "p1."}
	id := "01a22fb8-156b-7a56-a7f5-daf21b937862"
	next := products.Encode(id)
	for _, tt := range []struct {
		name, key    string
		filters      map[string]string
		cursor, link string
	}{
		{"no filters", id, nil, next, `</v1/products?cursor=` + next + `&limit=5>; rel="next"`},
		{"filters set", id, map[string]string{"status": "draft", "category": "mugs"}, next,
			`</v1/products?category=mugs&cursor=` + next + `&limit=5&status=draft>; rel="next"`},
		{"empty filters left out", id, map[string]string{"status": "", "q": "a b"}, next,
			`</v1/products?cursor=` + next + `&limit=5&q=a+b>; rel="next"`},
		{"last page", "", map[string]string{"status": "draft"}, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cursor, link := products.Next(tt.key, "/v1/products", 5, tt.filters)
			if cursor != tt.cursor || link != tt.link {
				t.Errorf("Next = %q, %q; want %q, %q", cursor, link, tt.cursor, tt.link)
			}
		})
	}
}

func TestNotNull(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{nil, "[]"},
		{[]string{}, "[]"},
		{[]string{"a"}, `["a"]`},
	} {
		raw, err := json.Marshal(httpapi.NotNull(tt.in))
		if err != nil || string(raw) != tt.want {
			t.Errorf("NotNull(%#v) encodes as %s, %v; want %s", tt.in, raw, err, tt.want)
		}
	}
}
