package trips

import (
	"context"
	"errors"

	"github.com/agora-commerce/agora/internal/longpoll"
	"github.com/agora-commerce/agora/internal/paging"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/validate"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
)

// Rides, offers and dispatches: reads, long polls, the drivers' answers and trip
// actions, cancellations, and apply, the one way anything changes a saga.

// GetRide answers rides.GetRide.
func (s *Service) GetRide(ctx context.Context, q rides.GetRide) (rides.Ride, error) {
	if err := checkID(q.ID); err != nil {
		return rides.Ride{}, err
	}
	return s.repo.GetRide(ctx, s.db, q.ID, false)
}

// WaitRide answers rides.WaitRide: the ride as soon as its version is above
// AfterVersion, or as it is once Wait has passed.
func (s *Service) WaitRide(ctx context.Context, q rides.WaitRide) (rides.Ride, error) {
	if err := checkID(q.ID); err != nil {
		return rides.Ride{}, err
	}
	return longpoll.Wait(ctx, &s.changes, q.ID, q.Wait, s.opts.longPoll(), func() (rides.Ride, bool, error) {
		r, err := s.repo.GetRide(ctx, s.db, q.ID, false)
		return r, r.Version > q.AfterVersion, err
	})
}

// driverKey is the key of a driver's offers among the long polls' keys (ride ids).
func driverKey(id string) string { return "driver:" + id }

// WaitOffer answers rides.WaitOffer: the offer open to the driver, as soon as there
// is one, or none once Wait has passed.
func (s *Service) WaitOffer(ctx context.Context, q rides.WaitOffer) (rides.OpenOffer, error) {
	if q.DriverID == "" || len(q.DriverID) > maxIDLen {
		return rides.OpenOffer{}, rides.ErrInvalidInput.Withf("a driver id is required")
	}
	return longpoll.Wait(ctx, &s.changes, driverKey(q.DriverID), q.Wait, s.opts.longPoll(), func() (rides.OpenOffer, bool, error) {
		sg, ok, err := s.repo.OfferTo(ctx, s.db, q.DriverID)
		if err != nil || !ok || sg.Offer == nil || !sg.Offer.ExpiresAt.After(s.now()) {
			return rides.OpenOffer{}, false, err
		}
		return rides.OpenOffer{Offer: sg.Offer}, true, nil
	})
}

// ListRides answers rides.ListRides.
func (s *Service) ListRides(ctx context.Context, q rides.ListRides) (rides.RidePage, error) {
	if len(q.Before) > maxIDLen || len(q.RiderID) > maxIDLen || len(q.DriverID) > maxIDLen {
		return rides.RidePage{}, rides.ErrInvalidInput.Withf("ids are at most %d characters", maxIDLen)
	}
	limit := paging.Limit(q.Limit, rides.MaxPageSize, rides.MaxPageSize)
	items, next, err := paging.Read(limit, func(n int) ([]rides.Ride, error) {
		return s.repo.ListRides(ctx, s.db, q.RiderID, q.DriverID, q.Before, n)
	}, func(r rides.Ride) string { return r.ID })
	if err != nil {
		return rides.RidePage{}, err
	}
	return rides.RidePage{Items: items, NextBefore: next}, nil
}

// change runs apply of msg to ride id in a transaction of its own.
func (s *Service) change(ctx context.Context, id string, msg any) (rides.Ride, error) {
	var r rides.Ride
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		var err error
		r, err = s.apply(ctx, tx, id, msg)
		return err
	})
	return r, err
}

// CancelRide answers rides.CancelRide. The actor is the rider, the assigned driver
// (reason driver_cancelled), or else taken for an operator (never charged): the
// HTTP routes let only those three through.
func (s *Service) CancelRide(ctx context.Context, c rides.CancelRide) (rides.Ride, error) {
	if err := checkID(c.ID); err != nil {
		return rides.Ride{}, err
	}
	if err := validate.Text(rides.ErrInvalidInput, "body.reason", c.Reason, rides.MaxReasonLen); err != nil {
		return rides.Ride{}, err
	}
	r, err := s.change(ctx, c.ID, func(r rides.Ride) any {
		return dispatch.Cancel{Actor: c.Actor, Reason: c.Reason, ByDriver: c.Actor != "" && c.Actor == r.DriverID,
			ByAdmin: c.Actor != r.RiderID && c.Actor != r.DriverID}
	})
	if err == nil {
		s.log.InfoContext(ctx, "ride cancelled", "ride_id", c.ID, "actor", c.Actor)
	}
	return r, err
}

// AnswerOffer answers rides.AnswerOffer. Accepting assigns the driver to the ride;
// a driver the database finds on another active ride cannot be assigned
// (ErrNoOffer), and the offer counts as declined.
func (s *Service) AnswerOffer(ctx context.Context, a rides.AnswerOffer) (rides.Ride, error) {
	if a.DriverID == "" || len(a.DriverID) > maxIDLen || checkID(a.RideID) != nil {
		return rides.Ride{}, rides.ErrNoOffer
	}
	r, err := s.change(ctx, a.RideID, dispatch.Answer{DriverID: a.DriverID, Accept: a.Accept})
	switch {
	case errors.Is(err, errDriverBusy):
		if _, berr := s.change(ctx, a.RideID, dispatch.Busy{DriverID: a.DriverID}); berr != nil {
			s.log.WarnContext(ctx, "could not move on from a busy driver", "ride_id", a.RideID, "err", berr)
		}
		return rides.Ride{}, rides.ErrNoOffer.Withf("you are on another ride")
	case errors.Is(err, rides.ErrRideNotFound):
		return rides.Ride{}, rides.ErrNoOffer
	}
	return r, err
}

// AdvanceTrip answers rides.AdvanceTrip.
func (s *Service) AdvanceTrip(ctx context.Context, a rides.AdvanceTrip) (rides.Ride, error) {
	if err := checkID(a.RideID); err != nil {
		return rides.Ride{}, err
	}
	return s.change(ctx, a.RideID, dispatch.Advance{DriverID: a.DriverID, Action: a.Action})
}

// ListDispatches answers rides.ListDispatches.
func (s *Service) ListDispatches(ctx context.Context, q rides.ListDispatches) (rides.DispatchPage, error) {
	switch q.State {
	case "", rides.DispatchAuthorizing, rides.DispatchOffering, rides.DispatchEngaging, rides.DispatchTrip,
		rides.DispatchSettling, rides.DispatchCompleted, rides.DispatchCancelled, rides.DispatchFailed:
	default:
		return rides.DispatchPage{}, invalid("query.state", "unknown dispatch state %q", q.State)
	}
	if len(q.After) > maxIDLen {
		return rides.DispatchPage{}, rides.ErrInvalidInput.Withf("ids are at most %d characters", maxIDLen)
	}
	limit := paging.Limit(q.Limit, rides.MaxPageSize, rides.MaxPageSize)
	items, next, err := paging.Read(limit, func(n int) ([]dispatch.Saga, error) {
		return s.repo.ListSagas(ctx, s.db, q.State, q.After, n)
	}, func(sg dispatch.Saga) string { return sg.RideID })
	if err != nil {
		return rides.DispatchPage{}, err
	}
	page := rides.DispatchPage{Items: make([]rides.Dispatch, 0, len(items)), NextAfter: next}
	for _, sg := range items {
		page.Items = append(page.Items, sg.View())
	}
	return page, nil
}

// GetDispatch answers rides.GetDispatch.
func (s *Service) GetDispatch(ctx context.Context, q rides.GetDispatch) (rides.Dispatch, error) {
	if q.RideID == "" || len(q.RideID) > maxIDLen {
		return rides.Dispatch{}, rides.ErrDispatchNotFound.Withf("no dispatch for ride %q", q.RideID)
	}
	sg, err := s.repo.GetSaga(ctx, s.db, q.RideID, false)
	return sg.View(), err
}

// apply feeds msg to the saga of ride id inside tx and stores what it decides: the
// saga, the ride when it changed (waking its waiters once tx commits) and the
// messages to send. msg may be a func(rides.Ride) any, called with the locked ride
// to make the message. It returns the ride after the change.
func (s *Service) apply(ctx context.Context, tx *store.Tx, id string, msg any) (rides.Ride, error) {
	sg, err := s.repo.GetSaga(ctx, tx, id, true)
	if errors.Is(err, rides.ErrDispatchNotFound) {
		return rides.Ride{}, rides.ErrRideNotFound.Withf("no ride with id %s", id)
	}
	if err != nil {
		return rides.Ride{}, err
	}
	r, err := s.repo.GetRide(ctx, tx, id, true)
	if err != nil {
		return rides.Ride{}, err
	}
	if f, ok := msg.(func(rides.Ride) any); ok {
		msg = f(r)
	}
	res, err := dispatch.Apply(sg, r, msg, s.now(), s.opts.Timing)
	if err != nil {
		return rides.Ride{}, err
	}
	if err := s.repo.UpdateSaga(ctx, tx, res.Saga); err != nil {
		return rides.Ride{}, err
	}
	if res.RideChanged {
		if err := s.repo.UpdateRide(ctx, tx, res.Ride); err != nil {
			return rides.Ride{}, err
		}
	}
	if err := s.outbox.Add(ctx, tx, res.Send...); err != nil {
		return rides.Ride{}, err
	}
	s.afterCommit(tx, sg, res)
	if res.Saga.State != sg.State {
		s.log.InfoContext(ctx, "dispatch saga moved", "ride_id", id, "from", sg.State, "to", res.Saga.State,
			"ride_status", res.Ride.Status)
	}
	return res.Ride, nil
}

// afterCommit wakes, once tx commits, what waits on the change from before to
// res: the ride's waiters, the drivers whose offer opened or closed, the sweep at
// the saga's deadline (at once when its step is due now), and the metrics.
func (s *Service) afterCommit(tx *store.Tx, before dispatch.Saga, res dispatch.Result) {
	after := res.Saga
	id := after.RideID
	tx.OnCommit(func() {
		if res.RideChanged {
			s.changes.Notify(id)
		}
		for _, o := range []*rides.Offer{before.Offer, after.Offer} {
			if o != nil {
				s.changes.Notify(driverKey(o.DriverID))
			}
		}
		if !after.Terminal() && after.State != rides.DispatchTrip {
			s.sweep.NotifyAt(after.Deadline)
		}
		if f := s.opts.Assigned; f != nil && after.State == rides.DispatchTrip && before.State == rides.DispatchEngaging {
			f(after.UpdatedAt.Sub(after.CreatedAt))
		}
		if f := s.opts.Ended; f != nil && after.Terminal() && !before.Terminal() {
			f(after.State, after.UpdatedAt.Sub(after.CreatedAt))
		}
	})
}
