package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/sse"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/rides"
)

// RideStatus is a ride after a change, as the status event of the ride stream
// carries it.
type RideStatus rides.Ride

// DriverPosition is the assigned driver's newest position, as the position event of
// the ride stream carries it.
type DriverPosition struct {
	DriverID string      `json:"driver_id" format:"uuid"`
	Point    rides.Point `json:"point"`
	At       time.Time   `json:"at" doc:"when the driver's app took the position"`
}

// Stream timing: how long each long poll waits for a change of the ride, and, while
// a driver is assigned, how often the driver's position is looked up — the
// position is conflated to at most one event per interval. A short wait also bounds
// how long a stream stalls when the process answering a poll dies during it.
const (
	streamWait    = 5 * time.Second
	positionEvery = time.Second
)

// streamRoute registers a ride's event stream, for its rider, its driver and admins.
func streamRoute(api huma.API, h handlers) {
	sse.Register(api, huma.Operation{
		OperationID: "stream-ride", Method: http.MethodGet, Path: "/v1/rides/{id}/events", Tags: []string{"Rides"},
		Summary: "Follow a ride",
		Description: "Server-sent events: first a `ride` event with the ride as it is, then a `status` event with the " +
			"ride after each change and, while a driver is assigned, `position` events with the driver's newest " +
			"position (at most about one a second). The stream ends once the ride is completed or cancelled. " +
			"Reconnect to resume (the first event brings you up to date).",
		Security: httpapi.SignedIn, Metadata: httpapi.Problems(rides.ErrRideNotFound),
		// The access check runs before the stream starts: another rider's ride is a
		// plain 404 rather than an empty stream.
		Middlewares: huma.Middlewares{httpapi.Preload(api, "id", h.visibleRide)},
	}, map[string]any{"ride": rides.Ride{}, "status": RideStatus{}, "position": DriverPosition{}}, h.stream)
}

// stream sends the ride the route's Preload found, then the ride after each change and the
// driver's position while one is assigned, until the ride ends, the client goes or
// the rides module cannot be reached.
func (h handlers) stream(ctx context.Context, _ *rideIn, send sse.Sender) {
	r, ok := httpapi.Preloaded[rides.Ride](ctx)
	if !ok || send.Data(r) != nil {
		return
	}
	var lastFix time.Time
	for !r.Final() && ctx.Err() == nil {
		tracking := r.DriverID != ""
		wait := streamWait
		if tracking {
			wait = positionEvery
		}
		next, err := bus.Call(ctx, h.b, rides.WaitRideRequest, rides.WaitRide{ID: r.ID, AfterVersion: r.Version, Wait: wait})
		if err != nil {
			return // the request's deadline, or rides is unreachable: the client reconnects
		}
		if next.Version > r.Version {
			r = next
			if send(sse.Message{ID: int(r.Version), Data: RideStatus(r)}) != nil {
				return
			}
		} else if !tracking && send.Comment("waiting") != nil {
			return // a comment keeps proxies from closing the idle stream
		}
		if tracking && !r.Final() {
			if lastFix, err = h.sendPosition(ctx, send, r.DriverID, lastFix); err != nil {
				return
			}
		}
	}
}

// sendPosition sends the driver's position when it is newer than lastFix, and
// returns the newest fix sent. A driver fleet cannot tell about is skipped.
func (h handlers) sendPosition(ctx context.Context, send sse.Sender, driverID string, lastFix time.Time) (time.Time, error) {
	d, err := bus.Call(ctx, h.b, fleet.GetDriverRequest, fleet.GetDriver{DriverID: driverID})
	if err != nil || d.Position == nil || !d.PositionAt.After(lastFix) {
		return lastFix, nil
	}
	return d.PositionAt, send(sse.Message{Data: DriverPosition{DriverID: d.ID, Point: *d.Position, At: d.PositionAt}})
}
