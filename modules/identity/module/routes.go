package module

import (
	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/identity/internal/api"
)

// Routes returns identity's HTTP routes; every process serves them.
func Routes(b *bus.Bus, cfg config.Config) httpapi.Routes {
	accounts := api.Routes(b, api.Limits{PerIPPerMinute: cfg.AuthPerIPPerMinute})
	keys := api.KeyRoutes(b)
	return func(a huma.API) {
		accounts(a)
		keys(a)
	}
}
