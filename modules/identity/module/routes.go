package module

import (
	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/identity/internal/api"
)

// routes returns the fx constructor of identity's HTTP routes; every process serves them.
func routes(s Settings) func(b *bus.Bus) httpapi.Routes {
	return func(b *bus.Bus) httpapi.Routes {
		accounts := api.Routes(b, api.Limits{PerIPPerMinute: s.AuthPerIPPerMinute})
		keys := api.KeyRoutes(b)
		return func(a huma.API) {
			accounts(a)
			keys(a)
		}
	}
}
