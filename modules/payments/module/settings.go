package module

import (
	"time"

	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/modhost"
)

// Settings are the payments module's own settings: its payment provider.
type Settings struct {
	// ProviderURL selects the HTTP payment provider (e.g. `agora psp`'s address);
	// empty uses the in-process simulated provider.
	ProviderURL string
	ProviderKey string        // the provider's API key (sent as a bearer token)
	Timeout     time.Duration // deadline of one provider call
	Retries     int           // retries of a retryable provider failure
}

// DefaultSettings returns the payments module's zero-configuration settings: the
// in-process simulated provider.
func DefaultSettings() Settings { return Settings{Timeout: 2 * time.Second, Retries: 2} }

// New returns the payments module as the registry lists it, with its default
// settings, and its command `agora psp`.
func New() modhost.Module {
	s := DefaultSettings()
	return modhost.Module{
		Name: "payments",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "payment-provider-url", Destination: &s.ProviderURL, Sources: ucli.EnvVars("AGORA_PAYMENT_PROVIDER_URL"),
				Usage: "the HTTP payment provider (e.g. `agora psp`); empty uses the in-process simulated provider"},
			&ucli.StringFlag{Name: "payment-provider-key", Destination: &s.ProviderKey, Sources: ucli.EnvVars("AGORA_PAYMENT_PROVIDER_KEY"),
				Usage: "the payment provider's API key"},
			&ucli.DurationFlag{Name: "payment-timeout", Value: s.Timeout, Destination: &s.Timeout, Sources: ucli.EnvVars("AGORA_PAYMENT_TIMEOUT"),
				Usage: "deadline of one payment-provider call"},
			&ucli.IntFlag{Name: "payment-retries", Value: s.Retries, Destination: &s.Retries, Sources: ucli.EnvVars("AGORA_PAYMENT_RETRIES"),
				Usage: "retries of a retryable payment-provider failure"},
		},
		Run:    func() fx.Option { return Module(s) },
		Routes: func() any { return Routes },
		Commands: func(_ modhost.Starter, stdio modhost.Stdio) []*ucli.Command {
			return []*ucli.Command{PSPCommand(stdio.Out, stdio.Err)}
		},
	}
}
