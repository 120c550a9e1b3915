package module

import (
	"github.com/agora-commerce/agora/internal/modhost"
)

// New returns the inventory as the registry lists it. It has no settings of its
// own: how long stock is held for a checkout is the orders module's to say.
func New() modhost.Module {
	return modhost.Module{
		Name: "inventory",
		// Reservations lock their rows in the database, so replicas cannot sell
		// the same unit twice; the sweeper runs in each.
		Replicas: 2,
		Run:      Module,
		Routes:   func() any { return Routes },
	}
}
