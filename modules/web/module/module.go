// Package module runs the web module in a process (Module) and serves its pages
// (Routes). The registry (package modules) lists it.
package module

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/faults"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/telemetry"
	"github.com/agora-commerce/agora/modules/web"
	"github.com/agora-commerce/agora/modules/web/internal/site"
)

// New returns the web module as the registry lists it. It owns no data
// (Stateless): running it only makes the topology name the process that serves it.
func New() modhost.Module {
	return modhost.Module{
		Name:      web.Name,
		Stateless: true,
		// One process answers for the web module; its pages are served by every
		// process anyway (each serves every module's routes).
		Replicas: 1,
		Run:      Module,
		Routes:   func() any { return Routes },
	}
}

// Module runs the web module in this process: it answers which process runs it,
// for the topology view. Its pages are its routes, served wherever the process
// serves the web module's HTTP (see Routes).
func Module() fx.Option {
	return fx.Module(web.Name, modhost.ProvideProcess(web.Name))
}

// Routes returns the web module's pages: the storefront, the console and their
// assets, which speak to the other modules over b. Every process that serves the
// web module's HTTP provides it. The console's faults page changes this process's
// fault injector, inj, which internal/app provides (nil where faults are not
// allowed); proc is this process.
func Routes(b *bus.Bus, keys *auth.Keys, tel *telemetry.Telemetry, roster modhost.Roster, proc *modhost.Process,
	inj *faults.Injector, log *slog.Logger) httpapi.Routes {
	return site.New(site.Deps{Bus: b, Keys: keys, Metrics: tel.Registry, Roster: roster, Process: *proc, Faults: inj, Log: log}).Routes
}
