package service

import (
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/identity/internal/api"
)

// Routes returns identity's HTTP routes; every process serves them.
func Routes(b *bus.Bus, cfg config.Config) httpapi.Routes {
	return api.Routes(b, api.Limits{PerIPPerMinute: cfg.AuthPerIPPerMinute})
}
