package live

import (
	"context"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
)

// Why an engagement failed (fleet.DriverEngagementFailed.Reason).
const (
	reasonOffline = "offline"
	reasonBusy    = "busy"
)

func checkCommand(driverID, rideID string) error {
	switch {
	case driverID == "" || len(driverID) > maxID:
		return message.ErrInvalidMessage.Withf("driver_id must be 1 to %d characters", maxID).OnField("driver_id")
	case rideID == "" || len(rideID) > maxID:
		return message.ErrInvalidMessage.Withf("ride_id must be 1 to %d characters", maxID).OnField("ride_id")
	}
	return nil
}

// onEngage makes an available, fresh driver busy with the ride. The same ride
// again changes nothing (the inbox already drops a redelivered command; this
// makes a second command for the same ride harmless too). A driver offline, not
// heard from within the stale bound, or busy with another ride is not engaged,
// and DriverEngagementFailed says why.
func (s *Service) onEngage(ctx context.Context, tx *store.Tx, m message.Message[fleet.EngageDriver]) error {
	c := m.Body
	if err := checkCommand(c.DriverID, c.RideID); err != nil {
		return err
	}
	now := s.opts.Now()
	_, err := s.change(ctx, tx, c.DriverID, func(d geoindex.Driver, _ bool) (geoindex.Driver, []message.Outgoing, error) {
		failed := func(reason string) []message.Outgoing {
			return []message.Outgoing{fleet.DriverEngagementFailedEvent.With(fleet.DriverEngagementFailed{
				DriverID: c.DriverID, RideID: c.RideID, Reason: reason})}
		}
		switch {
		case d.Status == fleet.StatusBusy && d.RideID == c.RideID:
			return d, nil, nil
		case d.Status == fleet.StatusBusy:
			return d, failed(reasonBusy), nil
		case d.Status != fleet.StatusAvailable || now.Sub(d.SeenAt) > s.opts.StaleAfter:
			return d, failed(reasonOffline), nil
		}
		d.Status, d.RideID = fleet.StatusBusy, c.RideID
		return d, nil, nil
	})
	return err
}

// onRelease makes a driver busy with the ride available again; anything else
// (another ride, already released, offline) changes nothing.
func (s *Service) onRelease(ctx context.Context, tx *store.Tx, m message.Message[fleet.ReleaseDriver]) error {
	c := m.Body
	if err := checkCommand(c.DriverID, c.RideID); err != nil {
		return err
	}
	_, err := s.change(ctx, tx, c.DriverID, func(d geoindex.Driver, _ bool) (geoindex.Driver, []message.Outgoing, error) {
		if d.Status != fleet.StatusBusy || d.RideID != c.RideID {
			return d, nil, nil
		}
		d.Status, d.RideID = fleet.StatusAvailable, ""
		return d, nil, nil
	})
	return err
}
