// Package modules is the registry: every domain module this binary can run, in
// start order, one line each. A module is its folder — modules/<name>/ (its
// contract, its settings and wiring in module/, its internals) and
// migrations/<name>/ — plus its line here; nothing else in the tree names it.
package modules

import (
	"github.com/agora-commerce/agora/internal/modhost"
	catalog "github.com/agora-commerce/agora/modules/catalog/module"
	fleet "github.com/agora-commerce/agora/modules/fleet/module"
	identity "github.com/agora-commerce/agora/modules/identity/module"
	inventory "github.com/agora-commerce/agora/modules/inventory/module"
	notifications "github.com/agora-commerce/agora/modules/notifications/module"
	orders "github.com/agora-commerce/agora/modules/orders/module"
	payments "github.com/agora-commerce/agora/modules/payments/module"
	rides "github.com/agora-commerce/agora/modules/rides/module"
	web "github.com/agora-commerce/agora/modules/web/module"
)

// All returns every module with its default settings, fresh for one command line:
// its flags write the settings of these values only.
func All() []modhost.Module {
	return []modhost.Module{
		identity.New(),
		catalog.New(),
		inventory.New(),
		payments.New(),
		fleet.New(),
		orders.New(),
		rides.New(),
		notifications.New(),
		web.New(),
	}
}

// Names returns the modules' names, in start order.
func Names() []string { return modhost.Names(All()) }
