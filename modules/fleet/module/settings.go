package module

import (
	"time"

	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/modhost"
)

// Settings are the fleet module's own settings.
type Settings struct {
	// Buffer is how many drivers may have a position waiting for the geo index
	// before position reports are refused (429 / fleet.ErrSaturated).
	Buffer int
	// CheckpointEvery is how often the positions of drivers who moved are saved.
	CheckpointEvery time.Duration
	DemoDrivers     int     // drivers in the --demo fleet; 0: no demo fleet
	DemoSpeed       float64 // the --demo fleet's simulated speed, in meters per second
}

// DefaultSettings returns the fleet module's zero-configuration settings.
func DefaultSettings() Settings {
	return Settings{Buffer: 50_000, CheckpointEvery: 5 * time.Second, DemoDrivers: 60, DemoSpeed: 300}
}

// New returns the fleet module as the registry lists it, with its default settings.
func New() modhost.Module {
	s := DefaultSettings()
	return modhost.Module{
		Name: "fleet",
		// Exactly one: drivers' live positions and their geo index live in one
		// process's memory (see internal/live); a second replica would hold only
		// the positions reported to it, and dispatch would miss the others.
		Replicas: 1,
		Flags: []ucli.Flag{
			modhost.Setting(&s.Buffer, "fleet-buffer", "drivers whose position may wait for the geo index before reports are refused (429)"),
			modhost.Setting(&s.CheckpointEvery, "fleet-checkpoint-every", "how often drivers' last positions are saved"),
			modhost.Setting(&s.DemoDrivers, "fleet-demo-drivers", "drivers in the --demo fleet (0: none)"),
			modhost.Setting(&s.DemoSpeed, "fleet-demo-speed", "the --demo fleet's simulated speed in meters per second"),
		},
		Run:    func() fx.Option { return Module(s) },
		Routes: func() any { return Routes },
	}
}
