// Package module runs the notifications module in a process (Module) and serves its HTTP
// routes (Routes). The registry (package modules) lists it.
package module

import (
	"context"
	"log/slog"

	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/notifications/internal/api"
	"github.com/agora-commerce/agora/modules/notifications/internal/mailer"
	"github.com/agora-commerce/agora/modules/notifications/internal/notices"
)

// Module runs the notifications module in this process: its own database, its
// subscriptions to order and refund events, its request handlers and, when
// AGORA_SMTP_URL is set, the emailer that sends each notification as email.
func Module(s Settings) fx.Option {
	return fx.Module("notifications",
		modhost.Provide("notifications"),
		fx.Provide(
			fx.Private,
			func(h *modhost.Host, log *slog.Logger) (*notices.Emailer, error) { return newEmailer(h, s, log) },
			func(h *modhost.Host, e *notices.Emailer) *notices.Service { return notices.NewService(h.DB, e) },
		),
		modhost.OnBus[*notices.Service](),
		fx.Invoke(func(lc fx.Lifecycle, e *notices.Emailer, b *bus.Bus) {
			if e == nil {
				return
			}
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error { e.Start(b); return nil },
				OnStop:  e.Stop,
			})
		}),
	)
}

// newEmailer returns the emailer s asks for: nil (no email) without an SMTP URL,
// else one sending through that server. A URL or sender that cannot work fails the
// start, saying why without showing the password.
func newEmailer(h *modhost.Host, s Settings, log *slog.Logger) (*notices.Emailer, error) {
	if s.SMTPURL == "" {
		return nil, nil
	}
	m, err := mailer.New(mailer.Config{URL: s.SMTPURL, From: s.SMTPFrom})
	if err != nil {
		return nil, err
	}
	log.Info("notifications will be emailed", "smtp", m.Redacted(), "from", s.SMTPFrom)
	return notices.NewEmailer(h.DB, m, notices.EmailConfig{}, log), nil
}

// Routes returns the notifications module's HTTP routes; every process serves them.
func Routes(b *bus.Bus) httpapi.Routes { return api.Routes(b) }
