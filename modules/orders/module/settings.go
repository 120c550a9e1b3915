package module

import (
	"time"

	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
)

// Settings are the orders module's own settings: the checkout saga's timing.
type Settings struct {
	// StepTimeout is how long the checkout saga waits for an answer before it sends
	// its command again; after MaxAttempts it compensates.
	StepTimeout time.Duration
	MaxAttempts int
	// ReservationTTL is how long inventory holds stock for an order whose saga does
	// not come back; inventory's sweeper releases it afterwards.
	ReservationTTL time.Duration
}

// DefaultSettings returns the orders module's zero-configuration settings.
func DefaultSettings() Settings {
	return Settings{StepTimeout: 30 * time.Second, MaxAttempts: 3, ReservationTTL: 15 * time.Minute}
}

func (s Settings) timing() saga.Timing {
	return saga.Timing{StepTimeout: s.StepTimeout, MaxAttempts: s.MaxAttempts, ReservationTTL: s.ReservationTTL}
}

// New returns the orders module as the registry lists it, with its default settings.
func New() modhost.Module {
	s := DefaultSettings()
	return modhost.Module{
		Name: "orders",
		// The saga's state is in the database and its long polls re-read it, so
		// replicas see each other's changes.
		Replicas: 2,
		Flags: []ucli.Flag{
			modhost.Setting(&s.ReservationTTL, "reservation-ttl", "how long inventory holds stock for a checkout that does not finish"),
			modhost.Setting(&s.StepTimeout, "saga-step-timeout", "how long the checkout saga waits for a step before sending its command again"),
			modhost.Setting(&s.MaxAttempts, "saga-max-attempts", "times a saga step is sent before the checkout is compensated"),
		},
		Run:    func() fx.Option { return Module(s) },
		Routes: func() any { return Routes },
	}
}
