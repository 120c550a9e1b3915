package httpapi_test

import (
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
