package module

import (
	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/modhost"
)

// Settings are the notifications module's own settings: where emails go.
type Settings struct {
	// SMTPURL (smtp://user:pass@host:port, or smtps://…) makes notifications send
	// emails too; empty sends none. SMTPFrom is their sender.
	SMTPURL  string
	SMTPFrom string
}

// DefaultSettings returns the notifications module's zero-configuration settings:
// no email.
func DefaultSettings() Settings { return Settings{SMTPFrom: "Agora <shop@localhost>"} }

// New returns the notifications module as the registry lists it, with its default
// settings.
func New() modhost.Module {
	s := DefaultSettings()
	return modhost.Module{
		Name: "notifications",
		// One follows the events at the pace of orders and rides; more are safe
		// (each email is claimed in the database).
		Replicas: 1,
		Flags: []ucli.Flag{
			modhost.Setting(&s.SMTPURL, "smtp-url", "send notification emails through this server (smtp://user:pass@host:port); empty sends none"),
			modhost.Setting(&s.SMTPFrom, "smtp-from", "the sender of notification emails"),
		},
		Run:    func() fx.Option { return Module(s) },
		Routes: func() any { return Routes },
	}
}
