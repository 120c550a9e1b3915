// Package service runs the orders module in a process (Module) and serves its HTTP
// routes (Routes). Only internal/app imports it.
package service

import (
	"github.com/danielgtaylor/huma/v2"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
)

// Module runs the orders module in this process. (Placeholder: being built.)
func Module() fx.Option { return fx.Options() }

// Routes returns the orders module's HTTP routes; every process serves them.
func Routes(b *bus.Bus) httpapi.Routes { return func(huma.API) {} }
