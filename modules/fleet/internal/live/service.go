// Package live is the fleet module's domain: drivers' statuses (durable, changed
// in fleet's database with their event in the outbox, in one transaction) and
// their positions (in memory: an ingestion buffer that conflates each driver's
// reports to the newest, and the geo index it feeds), with the request and command
// handlers fleet answers on the bus.
//
// What survives a restart: every driver's status and ride (written with each
// change), and each driver's last known position as of the last checkpoint —
// positions are checkpointed every CheckpointEvery (only the drivers that moved,
// in one transaction) and once more on stop, never per report. Start rebuilds the
// index from the database. Positions received after the last checkpoint of a
// process that crashed are lost; the driver's next report replaces them. Reports
// still in the ingestion buffer at stop are applied before the final checkpoint.
// A driver not heard from within StaleAfter stays online in the database but is
// not available: FindNearest and Supply skip it until it reports again.
//
// fleet keeps its positions in one process's memory: run one replica of it.
package live

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/city"
	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
)

// Consumer is the inbox consumer name of fleet's command handlers.
const Consumer = "fleet"

// Options tune a Service. Zero values take the defaults.
type Options struct {
	// Buffer is how many drivers may have a position waiting for the index before
	// ReportPositions answers ErrSaturated (default 50,000).
	Buffer int
	// CheckpointEvery is how often moved drivers' positions are saved (default 5s).
	CheckpointEvery time.Duration
	// StaleAfter is how long a driver may stay silent and still be available
	// (default fleet.StaleAfter).
	StaleAfter time.Duration
	// Now tells the time (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Buffer <= 0 {
		o.Buffer = 50_000
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 5 * time.Second
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = fleet.StaleAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Service is the fleet module's domain service. Start it to restore the index and
// run its loops; Stop saves the last positions.
type Service struct {
	db      *store.DB
	ob      *outbox.Outbox
	opts    Options
	log     *slog.Logger
	repo    repo
	idx     *geoindex.Index
	in      *Conflator
	city    *city.City
	metrics *Metrics

	stop chan struct{}
	done chan struct{}
}

// NewService returns the service over db, emitting through ob.
func NewService(db *store.DB, ob *outbox.Outbox, opts Options, log *slog.Logger) *Service {
	opts = opts.withDefaults()
	s := &Service{db: db, ob: ob, opts: opts, log: log.With("module", "fleet"), repo: repo{dialect: db.Dialect},
		idx: geoindex.New(opts.StaleAfter, opts.Now), in: NewConflator(opts.Buffer), city: city.Berlin()}
	s.metrics = newMetrics(s.idx, s.in)
	return s
}

// Handlers returns fleet's request handlers.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(fleet.GoOnlineRequest, s.GoOnline),
		bus.Handle(fleet.GoOfflineRequest, s.GoOffline),
		bus.Handle(fleet.GetDriverRequest, s.GetDriver),
		bus.Handle(fleet.ReportPositionsRequest, s.ReportPositions),
		bus.Handle(fleet.FindNearestRequest, s.FindNearest),
		bus.Handle(fleet.SupplyRequest, s.Supply),
		bus.Handle(fleet.SnapshotRequest, s.Snapshot),
		bus.Handle(fleet.CityRequest, s.City),
	}
}

// Subscriptions returns fleet's command handlers.
func (s *Service) Subscriptions() []bus.Subscription {
	return []bus.Subscription{
		outbox.SubscribeCommand(s.db, fleet.EngageDriverCommand, Consumer, s.onEngage),
		outbox.SubscribeCommand(s.db, fleet.ReleaseDriverCommand, Consumer, s.onRelease),
	}
}

// Metrics returns the service's Prometheus collectors.
func (s *Service) Metrics() *Metrics { return s.metrics }

// maxID bounds ids fleet accepts.
const maxID = 64

func checkDriverID(id string) error {
	if id == "" || len(id) > maxID {
		return fleet.ErrDriverNotFound.Withf("driver_id must be 1 to %d characters", maxID).OnField("driver_id")
	}
	return nil
}

func checkPoint(p fleet.Point, field string) error {
	if !p.Valid() {
		return fleet.ErrInvalidPoint.OnField(field)
	}
	return nil
}

// GoOnline makes a driver available (at Position, when given, which must lie in
// the city). A driver already online stays as it is, busy or not, apart from the
// position.
func (s *Service) GoOnline(ctx context.Context, q fleet.GoOnline) (fleet.Driver, error) {
	if err := checkDriverID(q.DriverID); err != nil {
		return fleet.Driver{}, err
	}
	if q.Position != nil {
		if err := checkPoint(*q.Position, "position"); err != nil {
			return fleet.Driver{}, err
		}
		if !s.city.Contains(*q.Position) {
			return fleet.Driver{}, fleet.ErrOutOfArea.OnField("position")
		}
	}
	now := s.opts.Now().UTC()
	return s.changeInTx(ctx, q.DriverID, func(d geoindex.Driver, _ bool) (geoindex.Driver, []message.Outgoing, error) {
		if q.Position != nil {
			p := *q.Position
			d.Point, d.PositionAt = &p, now
		}
		d.SeenAt = now
		if d.Status == fleet.StatusOffline || d.Status == "" {
			d.Status = fleet.StatusAvailable
		}
		return d, nil, nil
	})
}

// GoOffline takes an available driver off the road; a busy one gets ErrBusy, an
// offline one is answered as it is.
func (s *Service) GoOffline(ctx context.Context, q fleet.GoOffline) (fleet.Driver, error) {
	if err := checkDriverID(q.DriverID); err != nil {
		return fleet.Driver{}, err
	}
	return s.changeInTx(ctx, q.DriverID, func(d geoindex.Driver, exists bool) (geoindex.Driver, []message.Outgoing, error) {
		switch {
		case !exists:
			return d, nil, fleet.ErrDriverNotFound
		case d.Status == fleet.StatusBusy:
			return d, nil, fleet.ErrBusy
		}
		d.Status = fleet.StatusOffline
		return d, nil, nil
	})
}

// GetDriver returns a driver's live state, or ErrDriverNotFound for one that was
// never online.
func (s *Service) GetDriver(ctx context.Context, q fleet.GetDriver) (fleet.Driver, error) {
	if err := checkDriverID(q.DriverID); err != nil {
		return fleet.Driver{}, err
	}
	if d, ok := s.idx.Get(q.DriverID); ok {
		return d.Contract(), nil
	}
	r, err := s.repo.get(ctx, s.db, q.DriverID, false)
	if err != nil {
		return fleet.Driver{}, err
	}
	return r.driver().Contract(), nil
}

// changeInTx runs change in a transaction of its own.
func (s *Service) changeInTx(ctx context.Context, id string, change changeFunc) (fleet.Driver, error) {
	var out geoindex.Driver
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		var err error
		out, err = s.change(ctx, tx, id, change)
		return err
	})
	if err != nil {
		return fleet.Driver{}, err
	}
	return out.Contract(), nil
}

// changeFunc decides a driver's next state from its current one (exists is false
// for a driver fleet never saw), and the messages to send with the change beyond
// DriverAvailabilityChanged, which change adds itself when the status changes.
type changeFunc func(d geoindex.Driver, exists bool) (geoindex.Driver, []message.Outgoing, error)

// change reads a driver's row in tx (locked), with its newest position from
// memory, applies fn, and writes the result with its events; the index takes the
// new state once tx commits. Versions order the changes the index applies.
func (s *Service) change(ctx context.Context, tx *store.Tx, id string, fn changeFunc) (geoindex.Driver, error) {
	r, err := s.repo.get(ctx, tx, id, true)
	exists := err == nil
	if err != nil && !errors.Is(err, fleet.ErrDriverNotFound) {
		return geoindex.Driver{}, err
	}
	cur := r.driver()
	if !exists {
		cur = geoindex.Driver{ID: id, Status: fleet.StatusOffline}
	}
	if live, ok := s.idx.Get(id); ok && live.Point != nil && (cur.Point == nil || live.PositionAt.After(cur.PositionAt)) {
		cur.Point, cur.PositionAt = live.Point, live.PositionAt
	}
	if live, ok := s.idx.Get(id); ok && live.SeenAt.After(cur.SeenAt) {
		cur.SeenAt = live.SeenAt
	}
	next, msgs, err := fn(cur, exists)
	if err != nil {
		return cur, err
	}
	if next.Status == cur.Status && next.RideID == cur.RideID && samePlace(next, cur) && next.SeenAt.Equal(cur.SeenAt) {
		return cur, s.ob.Add(ctx, tx, msgs...) // nothing changed
	}
	now := s.opts.Now().UTC()
	next.Version = cur.Version + 1
	if next.Status != cur.Status {
		next.UpdatedAt = now
		msgs = append(msgs, fleet.DriverAvailabilityChangedEvent.With(fleet.DriverAvailabilityChanged{
			DriverID: id, Status: next.Status, Previous: cur.Status, RideID: rideOf(next, cur), Position: next.Point, At: now}))
	}
	if err := s.repo.put(ctx, tx, rowOf(next)); err != nil {
		return cur, err
	}
	if err := s.ob.Add(ctx, tx, msgs...); err != nil {
		return cur, err
	}
	tx.OnCommit(func() { s.idx.Put(next) })
	return next, nil
}

// rideOf is the ride a status change is about: the new one when engaged, the one
// left when released.
func rideOf(next, cur geoindex.Driver) string {
	if next.RideID != "" {
		return next.RideID
	}
	return cur.RideID
}

func samePlace(a, b geoindex.Driver) bool {
	if a.Point == nil || b.Point == nil {
		return a.Point == b.Point
	}
	return *a.Point == *b.Point && a.PositionAt.Equal(b.PositionAt)
}

// ReportPositions buffers a batch of positions for the index: see fleet.Ingested.
// A batch that does not fit the ingestion buffer is refused whole, ErrSaturated.
func (s *Service) ReportPositions(_ context.Context, q fleet.ReportPositions) (fleet.Ingested, error) {
	if len(q.Positions) > fleet.MaxBatch {
		return fleet.Ingested{}, fleet.ErrBatchTooLarge.Withf("%d positions; at most %d in one batch", len(q.Positions), fleet.MaxBatch)
	}
	for i, p := range q.Positions {
		if !p.Point.Valid() || p.At.IsZero() {
			return fleet.Ingested{}, fleet.ErrInvalidPoint.Withf("position %d: not a place on Earth, or no time", i).OnField("positions")
		}
	}
	now := s.opts.Now()
	s.metrics.received.Add(float64(len(q.Positions)))
	var out fleet.Ingested
	moves := make([]Pending, 0, len(q.Positions))
	for _, p := range q.Positions {
		m := geoindex.Move{DriverID: p.DriverID, Point: p.Point, At: p.At, SeenAt: now}
		switch {
		case !s.city.Contains(p.Point):
			out.Ignored++
		default:
			switch s.idx.Check(m) {
			case geoindex.Ignored:
				out.Ignored++
			case geoindex.Stale:
				out.Stale++
			default:
				moves = append(moves, Pending{Move: m, Received: now})
			}
		}
	}
	n, saturated := s.in.Offer(moves)
	if saturated {
		s.metrics.dropped.Add(float64(len(moves)))
		return fleet.Ingested{}, fleet.ErrSaturated
	}
	out.Accepted, out.Conflated, out.Stale = n.Accepted, n.Conflated, out.Stale+n.Stale
	s.metrics.count(out)
	return out, nil
}

// FindNearest answers the nearest available drivers: see fleet.FindNearest.
func (s *Service) FindNearest(_ context.Context, q fleet.FindNearest) (fleet.Nearest, error) {
	if err := checkPoint(q.Point, "point"); err != nil {
		return fleet.Nearest{}, err
	}
	switch {
	case q.RadiusMeters <= 0 || q.RadiusMeters > fleet.MaxRadiusMeters:
		return fleet.Nearest{}, message.ErrInvalidMessage.Withf("radius_meters must be above 0 and at most %d", fleet.MaxRadiusMeters).OnField("radius_meters")
	case q.Limit <= 0 || q.Limit > fleet.MaxNearest:
		return fleet.Nearest{}, message.ErrInvalidMessage.Withf("limit must be 1 to %d", fleet.MaxNearest).OnField("limit")
	case len(q.Exclude) > maxExclude:
		return fleet.Nearest{}, message.ErrInvalidMessage.Withf("at most %d drivers to exclude", maxExclude).OnField("exclude")
	}
	return fleet.Nearest{Drivers: s.idx.Nearest(q.Point, q.RadiusMeters, q.Limit, q.Exclude)}, nil
}

// maxExclude bounds FindNearest's Exclude.
const maxExclude = 200

// Supply answers the available drivers per S2 cell of a level.
func (s *Service) Supply(_ context.Context, q fleet.Supply) (fleet.SupplyCells, error) {
	if q.Level < 0 || q.Level > 30 {
		return fleet.SupplyCells{}, message.ErrInvalidMessage.Withf("level must be 0 to 30").OnField("level")
	}
	return fleet.SupplyCells{Cells: s.idx.Supply(q.Level), At: s.opts.Now().UTC()}, nil
}

// Snapshot answers every online driver's position (at most fleet.MaxSnapshot).
func (s *Service) Snapshot(context.Context, fleet.Snapshot) (fleet.FleetSnapshot, error) {
	return fleet.FleetSnapshot{Drivers: s.idx.Snapshot(fleet.MaxSnapshot), At: s.opts.Now().UTC()}, nil
}

// City answers the simulated city's map.
func (s *Service) City(context.Context, fleet.City) (fleet.CityMap, error) { return s.city.Map, nil }
