// Package modules is the fixture's registry.
package modules

import (
	"example.com/fixture/internal/modhost"
	mail "example.com/fixture/modules/mail/module"
	shop "example.com/fixture/modules/shop/module"
)

// All lists the modules: shop first, though mail sorts before it.
func All() []modhost.Module {
	return []modhost.Module{shop.New(), mail.New()}
}
