package service

import (
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/identity/internal/api"
)

// Routes returns identity's HTTP routes; every process serves them.
func Routes(b *bus.Bus) httpapi.Routes { return api.Routes(b, api.Limits{}) }
