package module_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/notifications"
	"github.com/agora-commerce/agora/modules/notifications/internal/smtptest"
	"github.com/agora-commerce/agora/modules/notifications/module"
	"github.com/agora-commerce/agora/modules/orders"
)

const (
	customer = "0190a8b2-0000-7000-8000-00000000ada1"
	password = "wiring-p4ss"
)

// newBus builds the process's bus from every registered handler and subscription,
// as internal/app does.
var newBus = fx.Annotate(func(log *slog.Logger, handlers []bus.RequestHandler, subs []bus.Subscription) (*bus.Bus, error) {
	return bus.New(log, bus.Limits{}, nil, handlers, subs)
}, fx.ParamTags(``, `group:"bus.requests"`, `group:"bus.subscriptions"`))

// app returns the notifications module as a process runs it, on a bus where
// identity's GetUser is answered at the bus boundary, as identity would.
func app(t *testing.T, cfg config.Config, s module.Settings, log *slog.Logger, b **bus.Bus) *fxtest.App {
	return fxtest.New(t,
		fx.NopLogger,
		fx.Supply(cfg, log),
		fx.Provide(newBus),
		fx.Provide(
			fx.Annotate(func() bus.RequestHandler {
				return bus.Handle(identity.GetUserRequest, func(_ context.Context, q identity.GetUser) (identity.User, error) {
					if q.ID != customer {
						return identity.User{}, identity.ErrUserNotFound
					}
					return identity.User{ID: q.ID, Email: "ada@example.com", Role: identity.RoleCustomer}, nil
				})

			}, fx.ResultTags(`group:"bus.requests"`)),
		),
		module.Module(s),
		fx.Populate(b),
	)
}

func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Modules = []string{"notifications"}
	return cfg
}

// confirm publishes an OrderConfirmed as the orders module's relay would.
func confirm(t *testing.T, b *bus.Bus) orders.Order {
	t.Helper()
	o := orders.Order{ID: bus.NewID(), CustomerID: customer, Status: orders.StatusConfirmed,
		Lines: []orders.OrderLine{{ProductID: bus.NewID(), SKU: "TEE", Name: "Tee", Quantity: 1,
			UnitPrice: orders.Money{Amount: 2500, Currency: "EUR"}, LineTotal: orders.Money{Amount: 2500, Currency: "EUR"}}},
		Total: orders.Money{Amount: 2500, Currency: "EUR"}}
	env, err := bus.Seal(t.Context(), orders.OrderConfirmedEvent.With(orders.OrderConfirmed{Order: o}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Deliver(t.Context(), env); err != nil {
		t.Fatalf("deliver OrderConfirmed: %v", err)
	}
	return o
}

func list(t *testing.T, b *bus.Bus) []notifications.Notification {
	t.Helper()
	page, err := bus.Call(t.Context(), b, notifications.ListNotificationsRequest, notifications.ListNotifications{CustomerID: customer})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// TestOrderConfirmedIsEmailed runs the module with AGORA_SMTP_URL pointing at a real
// SMTP server and checks that an OrderConfirmed becomes an in-app notification and
// a mail to the customer's address, recorded as sent — without the SMTP password
// in any log line.
func TestOrderConfirmedIsEmailed(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{User: "agora", Password: password})
	cfg := testConfig(t)
	s := module.Settings{SMTPURL: srv.URL(), SMTPFrom: "Agora Shop <shop@example.com>"}
	rec := testlog.New(slog.LevelDebug)
	var b *bus.Bus
	a := app(t, cfg, s, rec.Logger(), &b)
	a.RequireStart()
	defer a.RequireStop()

	o := confirm(t, b)
	testlog.Eventually(t, "the confirmation email", func() bool { return len(srv.Mails()) > 0 })
	testlog.Eventually(t, "the email to be recorded as sent", func() bool {
		items := list(t, b)
		return len(items) == 1 && items[0].Email == "sent"
	})
	n := list(t, b)[0]
	if n.OrderID != o.ID || n.Kind != "order_confirmed" {
		t.Errorf("notification = %+v", n)
	}
	mails := srv.Mails()
	if len(mails) != 1 || len(mails[0].To) != 1 || mails[0].To[0] != "ada@example.com" {
		t.Fatalf("mails = %+v, want one to ada@example.com", mails)
	}
	hdr := mails[0].Header()
	short := "#" + strings.ToUpper(strings.ReplaceAll(o.ID, "-", "")[24:])
	if got, want := hdr.Get("Subject"), "Order "+short+" is confirmed"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	if got := hdr.Get("From"); got != `"Agora Shop" <shop@example.com>` {
		t.Errorf("From = %q", got)
	}
	text, err := mails[0].Text()
	if err != nil || !strings.Contains(text, "Thank you for your order "+short) || !strings.Contains(text, "total EUR 25.00") {
		t.Errorf("mail text = %q (%v)", text, err)
	}
	var announced bool
	for _, line := range rec.Lines() {
		if strings.Contains(line, password) {
			t.Errorf("logged the SMTP password: %s", line)
		}
		if strings.Contains(line, "notifications will be emailed") && strings.Contains(line, srv.Addr()) {
			announced = true
		}
	}
	if !announced {
		t.Errorf("the start did not log where email goes; log:\n%s", strings.Join(rec.Lines(), "\n"))
	}
}

// TestWithoutSMTPNoEmailIsPending: without an SMTP URL the module stores in-app
// notifications only.
func TestWithoutSMTPNoEmailIsPending(t *testing.T) {
	var b *bus.Bus
	a := app(t, testConfig(t), module.DefaultSettings(), slog.New(slog.DiscardHandler), &b)
	a.RequireStart()
	defer a.RequireStop()
	confirm(t, b)
	if items := list(t, b); len(items) != 1 || items[0].Email != "none" {
		t.Errorf("notifications = %+v, want one with email none", items)
	}
}

// TestBadSMTPURLFailsTheStart without showing the password.
func TestBadSMTPURLFailsTheStart(t *testing.T) {
	cfg := testConfig(t)
	s := module.DefaultSettings()
	s.SMTPURL = "smtp://agora:" + password + "@mail.example.com:notaport"
	var b *bus.Bus
	err := fx.New(fx.NopLogger, fx.Supply(cfg, slog.New(slog.DiscardHandler)),
		fx.Provide(newBus), module.Module(s), fx.Populate(&b)).Err()
	if err == nil {
		t.Fatal("the module started with an SMTP URL that cannot work")
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("the error shows the password: %v", err)
	}
}
