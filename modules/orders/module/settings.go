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
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "reservation-ttl", Value: s.ReservationTTL, Destination: &s.ReservationTTL, Sources: ucli.EnvVars("AGORA_RESERVATION_TTL"),
				Usage: "how long inventory holds stock for a checkout that does not finish"},
			&ucli.DurationFlag{Name: "saga-step-timeout", Value: s.StepTimeout, Destination: &s.StepTimeout, Sources: ucli.EnvVars("AGORA_SAGA_STEP_TIMEOUT"),
				Usage: "how long the checkout saga waits for a step before sending its command again"},
			&ucli.IntFlag{Name: "saga-max-attempts", Value: s.MaxAttempts, Destination: &s.MaxAttempts, Sources: ucli.EnvVars("AGORA_SAGA_MAX_ATTEMPTS"),
				Usage: "times a saga step is sent before the checkout is compensated"},
		},
		Run:    func() fx.Option { return Module(s) },
		Routes: func() any { return Routes },
	}
}
