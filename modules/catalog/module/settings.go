package module

import (
	"time"

	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/modhost"
)

// Settings are the catalog's own settings.
type Settings struct {
	// CacheTTL bounds how stale a product read may be when other processes write
	// the same catalog database; negative disables the catalog's read cache.
	CacheTTL time.Duration
}

// DefaultSettings returns the catalog's zero-configuration settings.
func DefaultSettings() Settings { return Settings{CacheTTL: time.Second} }

// New returns the catalog as the registry lists it, with its default settings.
func New() modhost.Module {
	s := DefaultSettings()
	return modhost.Module{
		Name: "catalog",
		// The busiest reads. Replicas share the database and see each other's
		// writes within --catalog-cache-ttl.
		Replicas: 2,
		Flags: []ucli.Flag{
			modhost.Setting(&s.CacheTTL, "catalog-cache-ttl", "how stale a product read may be when other processes write the same catalog database (this process's own writes are never served stale); negative disables the cache"),
		},
		Run:    func() fx.Option { return Module(s) },
		Routes: func() any { return Routes },
	}
}
