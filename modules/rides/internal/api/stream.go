package api

import (
	"context"
	"errors"
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
// position is conflated to at most one event per interval.
const (
	streamWait    = 25 * time.Second
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
		Security:    httpapi.SignedIn,
		Middlewares: huma.Middlewares{h.streamAccess(api)},
	}, map[string]any{"ride": rides.Ride{}, "status": RideStatus{}, "position": DriverPosition{}}, h.stream)
}

type streamRideKey struct{}

// streamAccess is the stream's access check, as middleware: it runs before the
// stream starts, so that another rider's ride is a plain 404 rather than an empty
// stream, and it hands the ride it found to stream. An id that is not a UUID is
// passed on unchecked: huma then refuses it (422) as on every other route.
func (h handlers) streamAccess(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		id := ctx.Param("id")
		if !isUUID(id) {
			next(ctx)
			return
		}
		r, err := h.visibleRide(ctx.Context(), id)
		if err != nil {
			writeErr(api, ctx, err)
			return
		}
		next(huma.WithValue(ctx, streamRideKey{}, r))
	}
}

// stream sends the ride streamAccess found, then the ride after each change and the
// driver's position while one is assigned, until the ride ends, the client goes or
// the rides module cannot be reached.
func (h handlers) stream(ctx context.Context, _ *rideIn, send sse.Sender) {
	r, ok := ctx.Value(streamRideKey{}).(rides.Ride)
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

// uuidSchema is the schema of ride ids in paths (format:"uuid").
var uuidSchema = &huma.Schema{Type: huma.TypeString, Format: "uuid"}

// isUUID reports whether id is a UUID, by huma's own check of format:"uuid".
func isUUID(id string) bool {
	var res huma.ValidateResult
	huma.Validate(nil, uuidSchema, huma.NewPathBuffer(nil, 0), huma.ModeWriteToServer, id, &res)
	return len(res.Errors) == 0
}

// writeErr writes err as the problem an operation would answer.
func writeErr(api huma.API, ctx huma.Context, err error) {
	var se huma.StatusError
	if errors.As(httpapi.Problem(err), &se) {
		ctx.SetHeader("Content-Type", "application/problem+json")
		ctx.SetStatus(se.GetStatus())
		_ = api.Marshal(ctx.BodyWriter(), "application/problem+json", se)
		return
	}
	_ = huma.WriteErr(api, ctx, http.StatusInternalServerError, "internal error", err)
}
