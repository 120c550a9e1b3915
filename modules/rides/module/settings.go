package module

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
	"github.com/agora-commerce/agora/modules/rides/internal/pricing"
	"github.com/agora-commerce/agora/modules/rides/internal/trips"
)

// Settings are the rides module's own settings: the tariff, the surge rule, the
// area served and the dispatch saga's timing. Fares are in EUR minor units.
type Settings struct {
	BaseFare, PerKm, PerMinute, MinimumFare int64
	Detour                                  float64 // road distance / great-circle distance
	SpeedKmh                                float64 // average city speed
	SurgeCap, SurgeK, SurgeThreshold        float64
	SurgeLevel                              int           // S2 cell level of surge pricing
	SurgeWindow                             time.Duration // how far back demand counts
	// Area is "south,west,north,east" in degrees; empty: the fleet's city.
	Area            string
	StepTimeout     time.Duration
	OfferTimeout    time.Duration
	MaxOffers       int
	DispatchTimeout time.Duration
	CancelGrace     time.Duration
	CancelFee       int64
}

// DefaultSettings returns the rides module's zero-configuration settings.
func DefaultSettings() Settings {
	t, r := pricing.DefaultTariff(), pricing.DefaultSurgeRule()
	return Settings{BaseFare: t.Base, PerKm: t.PerKm, PerMinute: t.PerMinute, MinimumFare: t.Minimum, Detour: t.Detour,
		SpeedKmh: t.SpeedKmh, SurgeCap: r.Cap, SurgeK: r.K, SurgeThreshold: r.Threshold, SurgeLevel: r.Level,
		SurgeWindow: r.Window, StepTimeout: 30 * time.Second, OfferTimeout: 15 * time.Second, MaxOffers: 10,
		DispatchTimeout: 3 * time.Minute, CancelGrace: 2 * time.Minute, CancelFee: 500}
}

// options returns the service's options for s.
func (s Settings) options() (trips.Options, error) {
	rule := pricing.DefaultSurgeRule()
	rule.Cap, rule.K, rule.Threshold, rule.Level, rule.Window = s.SurgeCap, s.SurgeK, s.SurgeThreshold, s.SurgeLevel, s.SurgeWindow
	o := trips.Options{
		Tariff: pricing.Tariff{Currency: "EUR", Base: s.BaseFare, PerKm: s.PerKm, PerMinute: s.PerMinute, Minimum: s.MinimumFare,
			Detour: s.Detour, SpeedKmh: s.SpeedKmh},
		Surge: rule,
		Timing: dispatch.Timing{StepTimeout: s.StepTimeout, OfferTimeout: s.OfferTimeout, MaxOffers: s.MaxOffers,
			DispatchTimeout: s.DispatchTimeout, CancelGrace: s.CancelGrace, CancelFee: s.CancelFee},
	}
	if s.Area != "" {
		a, err := ParseArea(s.Area)
		if err != nil {
			return o, err
		}
		o.Area = &a
	}
	return o, nil
}

// ParseArea parses "south,west,north,east" (degrees).
func ParseArea(v string) (trips.Area, error) {
	parts := strings.Split(v, ",")
	var f [4]float64
	if len(parts) != 4 {
		return trips.Area{}, fmt.Errorf("rides: area %q: want south,west,north,east", v)
	}
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return trips.Area{}, fmt.Errorf("rides: area %q: %w", v, err)
		}
		f[i] = x
	}
	a := trips.Area{SouthWest: rides.Point{Lat: f[0], Lng: f[1]}, NorthEast: rides.Point{Lat: f[2], Lng: f[3]}}
	if !a.SouthWest.Valid() || !a.NorthEast.Valid() || f[0] >= f[2] || f[1] >= f[3] {
		return trips.Area{}, fmt.Errorf("rides: area %q is not a rectangle south-west to north-east", v)
	}
	return a, nil
}

// New returns the rides module as the registry lists it, with its default settings.
func New() modhost.Module {
	s := DefaultSettings()
	return modhost.Module{
		Name: "rides",
		// Its long polls re-read the database, so replicas see each other's changes.
		Replicas: 2,
		Flags: []ucli.Flag{
			modhost.Setting(&s.BaseFare, "ride-base-fare", "a ride's base fare, in euro cents"),
			modhost.Setting(&s.PerKm, "ride-per-km", "a ride's fare per kilometre, in euro cents"),
			modhost.Setting(&s.PerMinute, "ride-per-minute", "a ride's fare per minute, in euro cents"),
			modhost.Setting(&s.MinimumFare, "ride-minimum-fare", "the least a ride costs, in euro cents"),
			modhost.Setting(&s.Detour, "ride-detour", "road distance over great-circle distance"),
			modhost.Setting(&s.SpeedKmh, "ride-speed-kmh", "average city speed, for durations and pickup ETAs"),
			modhost.Setting(&s.SurgeCap, "surge-cap", "the highest surge multiplier"),
			modhost.Setting(&s.SurgeK, "surge-k", "surge per unit of demand/supply above the threshold"),
			modhost.Setting(&s.SurgeThreshold, "surge-threshold", "demand/supply at which surge starts"),
			modhost.Setting(&s.SurgeLevel, "surge-cell-level", "S2 cell level surge is priced by (13: about 1 km²)"),
			modhost.Setting(&s.SurgeWindow, "surge-window", "how far back ride requests count as demand"),
			modhost.Setting(&s.Area, "ride-area", "the area served, as south,west,north,east degrees; empty: the fleet's city"),
			modhost.Setting(&s.StepTimeout, "dispatch-step-timeout", "how long dispatch waits for payments or fleet before sending again"),
			modhost.Setting(&s.OfferTimeout, "offer-timeout", "how long a driver has to answer a ride offer"),
			modhost.Setting(&s.MaxOffers, "max-offers", "offers made for a ride before it is cancelled with no_driver"),
			modhost.Setting(&s.DispatchTimeout, "dispatch-timeout", "the longest search for a driver"),
			modhost.Setting(&s.CancelGrace, "cancel-grace", "how long after assignment a rider cancels for free"),
			modhost.Setting(&s.CancelFee, "cancel-fee", "the fee of a later cancellation, in euro cents"),
		},
		Run:    func() fx.Option { return Module(s) },
		Routes: func() any { return Routes },
	}
}
