// Package trips is the rides module's domain: quotes priced with live surge, ride
// requests with idempotency keys, and the driver of the dispatch saga — the
// message handlers, the drivers' offers and trip actions, and the sweep that times
// out saga steps and searches for drivers — which feeds the saga state machine
// (package dispatch) and stores what it decides together with the messages it
// sends, in one transaction.
package trips

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/longpoll"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
	"github.com/agora-commerce/agora/modules/rides/internal/pricing"
)

// Fleet is what rides asks the fleet module: it answers fleet's requests.
type Fleet interface {
	FindNearest(ctx context.Context, q fleet.FindNearest) (fleet.Nearest, error)
	Supply(ctx context.Context, level int) (fleet.SupplyCells, error)
	City(ctx context.Context) (fleet.CityMap, error)
}

// BusFleet asks fleet over a bus bound after construction: the bus is built from
// this module's handlers, so it cannot exist before them.
type BusFleet struct{ b atomic.Pointer[bus.Bus] }

// Bind sets the bus to ask.
func (f *BusFleet) Bind(b *bus.Bus) { f.b.Store(b) }

func (f *BusFleet) bus() (*bus.Bus, error) {
	b := f.b.Load()
	if b == nil {
		return nil, message.ErrNoHandler.Withf("the rides module is not started")
	}
	return b, nil
}

// FindNearest asks fleet.FindNearest.
func (f *BusFleet) FindNearest(ctx context.Context, q fleet.FindNearest) (fleet.Nearest, error) {
	b, err := f.bus()
	if err != nil {
		return fleet.Nearest{}, err
	}
	return bus.Call(ctx, b, fleet.FindNearestRequest, q)
}

// Supply asks fleet.Supply.
func (f *BusFleet) Supply(ctx context.Context, level int) (fleet.SupplyCells, error) {
	b, err := f.bus()
	if err != nil {
		return fleet.SupplyCells{}, err
	}
	return bus.Call(ctx, b, fleet.SupplyRequest, fleet.Supply{Level: level})
}

// City asks fleet.City.
func (f *BusFleet) City(ctx context.Context) (fleet.CityMap, error) {
	b, err := f.bus()
	if err != nil {
		return fleet.CityMap{}, err
	}
	return bus.Call(ctx, b, fleet.CityRequest, fleet.City{})
}

// Area is a rectangle of latitudes and longitudes: the area rides serves.
type Area struct {
	SouthWest rides.Point
	NorthEast rides.Point
}

// Contains reports whether p lies in the area.
func (a Area) Contains(p rides.Point) bool {
	return p.Lat >= a.SouthWest.Lat && p.Lat <= a.NorthEast.Lat && p.Lng >= a.SouthWest.Lng && p.Lng <= a.NorthEast.Lng
}

// Options tunes the service. Zero values take the defaults.
type Options struct {
	Timing dispatch.Timing   // default: see withDefaults
	Tariff pricing.Tariff    // default: pricing.DefaultTariff
	Surge  pricing.SurgeRule // default: pricing.DefaultSurgeRule
	// Area is the area served; nil: the fleet's city (fleet.City, asked once).
	Area         *Area
	QuoteTTL     time.Duration // how long a quote's fare holds (default 2m)
	SearchRadius float64       // meters around the pickup searched for drivers (default 5 km)
	Candidates   int           // drivers asked of fleet per search (default 5)
	SupplyEvery  time.Duration // how often the supply per cell is refreshed from fleet (default 5s)
	// SweepEvery is the sweep's safety poll (default 5s): it wakes at the deadlines
	// this process sets, so the poll bounds only how late a deadline set by another
	// replica (one that then died) is seen.
	SweepEvery   time.Duration
	PollInterval time.Duration // how often long polls re-read, for changes made by other replicas (default 2s)
	MaxWait      time.Duration // the longest WaitRide and WaitOffer wait (default 25s)
	KeyRetention time.Duration // how long ride-request keys are kept (default 7 days)
	// Assigned, if set, is called once a driver's engagement has committed, with the
	// time from the request.
	Assigned func(took time.Duration)
	// Ended, if set, is called once a saga's move to a terminal state has committed.
	Ended func(state rides.DispatchState, took time.Duration)
}

func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (o Options) withDefaults() Options {
	t := &o.Timing
	orDefault(&t.StepTimeout, 30*time.Second)
	orDefault(&t.MaxAttempts, 3)
	orDefault(&t.OfferTimeout, 15*time.Second)
	orDefault(&t.MaxOffers, 10)
	orDefault(&t.DispatchTimeout, 3*time.Minute)
	orDefault(&t.SearchRetry, 3*time.Second)
	orDefault(&t.CancelGrace, 2*time.Minute)
	orDefault(&o.Tariff, pricing.DefaultTariff())
	orDefault(&o.Surge, pricing.DefaultSurgeRule())
	orDefault(&o.QuoteTTL, 2*time.Minute)
	orDefault(&o.SearchRadius, 5000)
	orDefault(&o.Candidates, 5)
	orDefault(&o.SupplyEvery, 5*time.Second)
	orDefault(&o.SweepEvery, 5*time.Second)
	orDefault(&o.PollInterval, 2*time.Second)
	orDefault(&o.MaxWait, 25*time.Second)
	orDefault(&o.KeyRetention, 7*24*time.Hour)
	return o
}

// longPoll returns the bounds of the service's long polls.
func (o Options) longPoll() longpoll.Bounds {
	return longpoll.Bounds{MaxWait: o.MaxWait, PollInterval: o.PollInterval}
}

// Service handles the rides module's requests and the saga's messages.
type Service struct {
	db      *store.DB
	outbox  *outbox.Outbox
	fleet   Fleet
	repo    Repo
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	changes longpoll.Notifier // wakes long polls when what they wait on commits
	surge   *pricing.Surge
	sweep   *jobs.Worker[dueSaga]
	supply  *modhost.Loop

	areaMu sync.Mutex
	area   *Area // the served area, once known
}

// NewService returns the rides service on db, sending through ob and asking fl.
func NewService(db *store.DB, ob *outbox.Outbox, fl Fleet, opts Options, log *slog.Logger) *Service {
	opts = opts.withDefaults()
	s := &Service{db: db, outbox: ob, fleet: fl, repo: Repo{dialect: db.Dialect}, opts: opts, log: log,
		now:   func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		surge: pricing.NewSurge(opts.Surge), area: opts.Area}
	s.sweep = s.newSweep()
	s.supply = modhost.NewLoop("supply refresh", opts.SupplyEvery, log, s.refreshSupply)
	return s
}

// Handlers returns the service's request handlers, for the bus.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(rides.QuoteRideRequest, s.QuoteRide),
		bus.Handle(rides.RequestRideRequest, s.RequestRide),
		bus.Handle(rides.GetRideRequest, s.GetRide),
		bus.Handle(rides.WaitRideRequest, s.WaitRide),
		bus.Handle(rides.ListRidesRequest, s.ListRides),
		bus.Handle(rides.CancelRideRequest, s.CancelRide),
		bus.Handle(rides.WaitOfferRequest, s.WaitOffer),
		bus.Handle(rides.AnswerOfferRequest, s.AnswerOffer),
		bus.Handle(rides.AdvanceTripRequest, s.AdvanceTrip),
		bus.Handle(rides.GetDispatchRequest, s.GetDispatch),
		bus.Handle(rides.ListDispatchesRequest, s.ListDispatches),
	}
}

// Start runs the timeout sweep and the supply refresh in goroutines, until Stop.
func (s *Service) Start(ctx context.Context) error {
	s.sweep.Start()
	return s.supply.Start(ctx)
}

// Stop stops the sweep and the supply refresh, waiting (up to ctx's end) for the
// work in progress.
func (s *Service) Stop(ctx context.Context) error {
	err := s.supply.Stop(ctx)
	if serr := s.sweep.Stop(ctx); serr != nil {
		return serr
	}
	return err
}

// refreshSupply replaces the surge's supply with fleet's available drivers per cell.
func (s *Service) refreshSupply(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.SupplyEvery)
	defer cancel()
	cells, err := s.fleet.Supply(ctx, s.opts.Surge.Level)
	if errors.Is(err, message.ErrNoHandler) {
		// No fleet deployed (yet): no supply is known, and saying so every few
		// seconds would only bury the logs.
		return nil
	}
	if err != nil {
		return err
	}
	s.surge.SetSupply(cells.Cells)
	return nil
}

// Limits on ids and free text.
const (
	maxIDLen   = 64
	maxHashLen = 128
)

func invalid(field, format string, args ...any) error {
	return rides.ErrInvalidInput.Withf(format, args...).OnField(field)
}

func checkID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return rides.ErrRideNotFound.Withf("no ride with id %q", id)
	}
	return nil
}
