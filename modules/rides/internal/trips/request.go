package trips

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/validate"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
	"github.com/agora-commerce/agora/modules/rides/internal/pricing"
)

// Quotes and ride requests.

// minTripMeters is the shortest trip: closer points are the same place.
const minTripMeters = 50

// servedArea returns the area served: the configured one, or the fleet's city,
// asked once and kept.
func (s *Service) servedArea(ctx context.Context) (Area, error) {
	s.areaMu.Lock()
	defer s.areaMu.Unlock()
	if s.area != nil {
		return *s.area, nil
	}
	city, err := s.fleet.City(ctx)
	if err != nil {
		return Area{}, fmt.Errorf("rides: the area served is not known yet: %w", err)
	}
	s.area = &Area{SouthWest: city.SouthWest, NorthEast: city.NorthEast}
	return *s.area, nil
}

func (s *Service) checkPoints(ctx context.Context, pickup, dropoff rides.Point) error {
	area, err := s.servedArea(ctx)
	if err != nil {
		return err
	}
	for _, p := range []struct {
		field string
		at    rides.Point
	}{{"body.pickup", pickup}, {"body.dropoff", dropoff}} {
		if !p.at.Valid() || !area.Contains(p.at) {
			return rides.ErrOutOfArea.Withf("%.5f, %.5f is outside the area served", p.at.Lat, p.at.Lng).OnField(p.field)
		}
	}
	if pricing.Distance(pickup, dropoff) < minTripMeters {
		return rides.ErrSamePlace.OnField("body.dropoff")
	}
	return nil
}

// QuoteRide answers rides.QuoteRide: distance, duration, the surge of the pickup's
// cell, the fare and the nearest available driver's ETA (-1 when none is near, or
// fleet cannot say).
func (s *Service) QuoteRide(ctx context.Context, q rides.QuoteRide) (rides.Quote, error) {
	if err := s.checkPoints(ctx, q.Pickup, q.Dropoff); err != nil {
		return rides.Quote{}, err
	}
	qt := s.price(q.Pickup, q.Dropoff)
	qt.PickupETA = s.eta(ctx, q.Pickup)
	return qt, nil
}

// price returns the quote of a trip now, without an ETA.
func (s *Service) price(pickup, dropoff rides.Point) rides.Quote {
	now := s.now()
	meters, secs := s.opts.Tariff.Trip(pickup, dropoff)
	_, _, surge := s.surge.At(pickup, now)
	return rides.Quote{Pickup: pickup, Dropoff: dropoff, DistanceMeters: meters, DurationSeconds: secs, PickupETA: -1,
		Surge: surge, Fare: s.opts.Tariff.Fare(meters, secs, surge), ExpiresAt: now.Add(s.opts.QuoteTTL)}
}

// eta returns the seconds the nearest available driver needs to reach p, at the
// average city speed over the detoured distance; -1 when none is near.
func (s *Service) eta(ctx context.Context, p rides.Point) int64 {
	near, err := s.fleet.FindNearest(ctx, fleet.FindNearest{Point: p, RadiusMeters: s.opts.SearchRadius, Limit: 1})
	if err != nil {
		s.log.WarnContext(ctx, "no ETA: fleet did not answer", "err", err)
		return -1
	}
	if len(near.Drivers) == 0 {
		return -1
	}
	return s.opts.Tariff.Seconds(near.Drivers[0].DistanceMeters * s.opts.Tariff.Detour)
}

func checkRequest(r rides.RequestRide) error {
	switch {
	case r.RiderID == "" || len(r.RiderID) > maxIDLen:
		return rides.ErrInvalidInput.Withf("a rider id is required")
	case r.PaymentToken == "" || len(r.PaymentToken) > rides.MaxPaymentTokenLen || !validate.Printable(r.PaymentToken):
		return invalid("body.payment_token", "the payment token is 1 to %d printable characters", rides.MaxPaymentTokenLen)
	case r.IdempotencyKey == "" || len(r.IdempotencyKey) > rides.MaxIdempotencyKeyLen || !validate.Printable(r.IdempotencyKey):
		return invalid("header.Idempotency-Key", "the Idempotency-Key is 1 to %d printable characters", rides.MaxIdempotencyKeyLen)
	case r.RequestHash == "" || len(r.RequestHash) > maxHashLen:
		return rides.ErrInvalidInput.Withf("a request hash of at most %d characters is required", maxHashLen)
	}
	return nil
}

// RequestRide answers rides.RequestRide: the trip priced now becomes a requested
// ride whose dispatch saga starts at once. Only a successful request is remembered
// under its idempotency key.
func (s *Service) RequestRide(ctx context.Context, r rides.RequestRide) (rides.Requested, error) {
	if err := checkRequest(r); err != nil {
		return rides.Requested{}, err
	}
	if _, ok, err := s.repo.GetKey(ctx, s.db, r.RiderID, r.IdempotencyKey); err != nil {
		return rides.Requested{}, err
	} else if ok {
		return s.replay(ctx, r)
	}
	if err := s.checkPoints(ctx, r.Pickup, r.Dropoff); err != nil {
		return rides.Requested{}, err
	}
	ride := s.newRide(r)
	sg, msgs := dispatch.Start(ride, r.PaymentToken, ride.CreatedAt, s.opts.Timing)
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		if err := s.repo.InsertRide(ctx, tx, ride); err != nil {
			return err
		}
		if err := s.repo.InsertSaga(ctx, tx, sg); err != nil {
			return err
		}
		if err := s.repo.InsertKey(ctx, tx, r.RiderID, r.IdempotencyKey, r.RequestHash, ride.ID, ride.CreatedAt); err != nil {
			return err
		}
		tx.OnCommit(func() {
			s.surge.Record(ride.Pickup, ride.CreatedAt)
			s.sweep.NotifyAt(sg.Deadline) // its first step's timeout
		})
		return s.outbox.Add(ctx, tx, msgs...)
	})
	switch {
	case errors.Is(err, errKeyTaken):
		return s.replay(ctx, r)
	case errors.Is(err, errRiderBusy):
		// A concurrent request with this key may hold the active ride: then this is its replay.
		if _, ok, kerr := s.repo.GetKey(ctx, s.db, r.RiderID, r.IdempotencyKey); kerr == nil && ok {
			return s.replay(ctx, r)
		}
		return rides.Requested{}, rides.ErrRiderBusy
	case err != nil:
		return rides.Requested{}, err
	}
	s.log.InfoContext(ctx, "ride requested", "ride_id", ride.ID, "rider_id", ride.RiderID, "fare", ride.Fare.Amount,
		"surge", ride.Surge)
	return rides.Requested{Ride: ride}, nil
}

// newRide returns the requested ride of r, priced now.
func (s *Service) newRide(r rides.RequestRide) rides.Ride {
	q := s.price(r.Pickup, r.Dropoff)
	now := s.now()
	return rides.Ride{ID: bus.NewID(), RiderID: r.RiderID, Status: rides.StatusRequested, Pickup: r.Pickup, Dropoff: r.Dropoff,
		DistanceMeters: q.DistanceMeters, DurationSeconds: q.DurationSeconds, Surge: roundTenth(q.Surge), Fare: q.Fare,
		Version: 1, CreatedAt: now, UpdatedAt: now}
}

func roundTenth(f float64) float64 { return math.Round(f*10) / 10 }

// replay answers a request whose key is stored: the same ride for the same
// request, an error for another.
func (s *Service) replay(ctx context.Context, r rides.RequestRide) (rides.Requested, error) {
	k, ok, err := s.repo.GetKey(ctx, s.db, r.RiderID, r.IdempotencyKey)
	if err != nil {
		return rides.Requested{}, err
	}
	if !ok {
		return rides.Requested{}, fmt.Errorf("rides: ride key %q vanished", r.IdempotencyKey)
	}
	if k.RequestHash != r.RequestHash {
		return rides.Requested{}, rides.ErrIdempotencyKeyReused.OnField("header.Idempotency-Key")
	}
	ride, err := s.repo.GetRide(ctx, s.db, k.RideID, false)
	if err != nil {
		return rides.Requested{}, err
	}
	return rides.Requested{Ride: ride, Replayed: true}, nil
}
