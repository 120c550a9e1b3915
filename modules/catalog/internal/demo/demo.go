// Package demo holds the catalog's demo data: a few dozen believable products that
// `agora serve --demo` puts in an empty catalog so a newcomer sees a shop at once.
package demo

import (
	_ "embed"
	"encoding/json"

	"github.com/agora-commerce/agora/modules/catalog"
)

//go:embed products.json
var productsJSON []byte

// Products returns the demo products.
func Products() ([]catalog.CreateProduct, error) {
	var ps []catalog.CreateProduct
	err := json.Unmarshal(productsJSON, &ps)
	return ps, err
}
