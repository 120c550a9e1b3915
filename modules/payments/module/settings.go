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
		// One, so that one circuit breaker (held in the process's memory) counts every
		// failure of the provider. More are safe: the ledger lives in the database.
		Replicas: 1,
		Flags: []ucli.Flag{
			modhost.Setting(&s.ProviderURL, "payment-provider-url", "the HTTP payment provider (e.g. `agora psp`); empty uses the in-process simulated provider"),
			modhost.Setting(&s.ProviderKey, "payment-provider-key", "the payment provider's API key"),
			modhost.Setting(&s.Timeout, "payment-timeout", "deadline of one payment-provider call"),
			modhost.Setting(&s.Retries, "payment-retries", "retries of a retryable payment-provider failure"),
		},
		Run:    func() fx.Option { return Module(s) },
		Routes: func() any { return Routes },
		Commands: func(_ modhost.Starter, stdio modhost.Stdio) []*ucli.Command {
			return []*ucli.Command{PSPCommand(stdio.Out, stdio.Err)}
		},
	}
}
