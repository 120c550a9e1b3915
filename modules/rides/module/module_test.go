package module_test

import (
	"context"
	"log/slog"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/module"
)

// The module serves the contract on the bus, asks fleet over it, and subscribes to
// payments' and fleet's events.
func TestModule(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	city := fleet.CityMap{SouthWest: rides.Point{Lat: 52.4, Lng: 13.2}, NorthEast: rides.Point{Lat: 52.6, Lng: 13.6}}
	var b *bus.Bus
	app := fxtest.New(t,
		fx.Supply(cfg, slog.New(slog.DiscardHandler)),
		module.Module(module.DefaultSettings()),
		fx.Provide(fx.Annotate(func() []bus.RequestHandler {
			return []bus.RequestHandler{
				bus.Handle(fleet.CityRequest, func(context.Context, fleet.City) (fleet.CityMap, error) { return city, nil }),
				bus.Handle(fleet.FindNearestRequest, func(context.Context, fleet.FindNearest) (fleet.Nearest, error) { return fleet.Nearest{}, nil }),
				bus.Handle(fleet.SupplyRequest, func(context.Context, fleet.Supply) (fleet.SupplyCells, error) { return fleet.SupplyCells{}, nil }),
			}
		}, fx.ResultTags(`group:"bus.requests,flatten"`))),
		fx.Provide(fx.Annotate(
			func(log *slog.Logger, hs []bus.RequestHandler, subs []bus.Subscription) (*bus.Bus, error) {
				return bus.New(log, bus.Limits{}, nil, hs, subs)
			},
			fx.ParamTags(``, `group:"bus.requests"`, `group:"bus.subscriptions"`))),
		fx.Populate(&b),
	)
	app.RequireStart()
	defer app.RequireStop()

	q, err := bus.Call(t.Context(), b, rides.QuoteRideRequest, rides.QuoteRide{Pickup: rides.Point{Lat: 52.5163, Lng: 13.3777},
		Dropoff: rides.Point{Lat: 52.5219, Lng: 13.4132}})
	if err != nil || q.Fare.Amount <= 0 || q.Fare.Currency != "EUR" {
		t.Fatalf("QuoteRide over the bus: %+v, %v", q, err)
	}
	for _, typ := range []string{payments.PaymentAuthorizedEvent.Name(), payments.PaymentDeclinedEvent.Name(),
		payments.PaymentCapturedEvent.Name(), payments.PaymentVoidedEvent.Name(),
		fleet.DriverAvailabilityChangedEvent.Name(), fleet.DriverEngagementFailedEvent.Name()} {
		if len(b.Subscriptions(typ)) != 1 {
			t.Errorf("%d subscriptions to %s, want 1", len(b.Subscriptions(typ)), typ)
		}
	}
}

func TestParseArea(t *testing.T) {
	a, err := module.ParseArea("52.4, 13.2, 52.6, 13.6")
	if err != nil || !a.Contains(rides.Point{Lat: 52.5, Lng: 13.4}) || a.Contains(rides.Point{Lat: 52.7, Lng: 13.4}) {
		t.Errorf("ParseArea: %+v, %v", a, err)
	}
	for _, bad := range []string{"", "1,2,3", "52.6,13.2,52.4,13.6", "a,b,c,d", "91,0,92,1"} {
		if _, err := module.ParseArea(bad); err == nil {
			t.Errorf("ParseArea(%q) succeeded", bad)
		}
	}
}
