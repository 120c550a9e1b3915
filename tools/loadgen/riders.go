package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// rideView is what the generator needs of a ride.
type rideView struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	DriverID   string    `json:"driver_id"`
	Reason     string    `json:"reason"`
	Version    int64     `json:"version"`
	CreatedAt  time.Time `json:"created_at"`
	AssignedAt time.Time `json:"assigned_at"`
}

func (r rideView) final() bool { return r.Status == RideCompleted || r.Status == RideCancelled }

// tripEnds picks a ride: a pickup somewhere on a street, a drop-off 500 m to 3 km
// along it, either way with equal chance (the other way when the street ends
// first). Trips that went one way more often than the other would move the
// drivers, who stay where they dropped off, to one end of the city.
func tripEnds(routes []route, r *rand.Rand) (pickup, dropoff point) {
	rt := routes[r.IntN(len(routes))]
	at := r.Float64() * rt.length()
	d := 500 + 2500*r.Float64()
	if r.IntN(2) == 0 {
		d = -d
	}
	if to := at + d; to < 0 || to > rt.length() {
		d = -d
	}
	return rt.along(at), rt.along(at + d)
}

// ride runs one ride as rider: a quote, the request, then the ride followed on its
// event stream to its final status. The rider goes back to the pool at the end.
func (g *ridesGen) ride(ctx context.Context, rider *account, r *rand.Rand) {
	t := &g.rides
	retire := false
	defer func() {
		if !retire {
			g.riders <- rider
		}
	}()
	outcome := func(err error) string { return outcomeOf(ctx, err) }
	pickup, dropoff := tripEnds(g.routes, r)
	body := map[string]any{"pickup": pickup, "dropoff": dropoff}
	if err := g.c.authed(ctx, rider, call{op: "quote_ride", method: http.MethodPost, path: "/v1/rides/quotes", body: body}, nil); err != nil {
		t.end(outcome(err), rideView{}, time.Time{})
		return
	}
	body["payment_token"] = "tok_visa"
	requested, sentAt, err := g.requestRide(ctx, rider, body)
	if err != nil {
		// A ride of an earlier run that has not ended yet: this rider sits the run out.
		retire = problemIs(err, "rides.rider_busy")
		t.end(outcome(err), rideView{}, time.Time{})
		return
	}
	waitCtx, cancel := context.WithDeadline(ctx, sentAt.Add(g.cfg.Rides.RideTimeout))
	defer cancel()
	final, err := g.followRide(waitCtx, rider, requested, sentAt)
	if err != nil {
		t.end(outcome(err), rideView{}, time.Time{})
		return
	}
	t.end(final.Status, final, sentAt)
}

// requestRide posts the ride with a fresh Idempotency-Key, sending the same key
// again on no answer or a 502/503/504 for up to Config.RetryFor. It returns the
// ride and when its POST was first sent.
func (g *ridesGen) requestRide(ctx context.Context, rider *account, body map[string]any) (rideView, time.Time, error) {
	key := uuid.NewString()
	sentAt := time.Now()
	var rv rideView
	err := g.c.authed(ctx, rider, call{op: "request_ride", method: http.MethodPost, path: "/v1/rides",
		header: http.Header{"Idempotency-Key": {key}}, body: body, resend: true}, &rv)
	if err == nil && rv.ID == "" {
		g.c.rec.fail("request_ride", "bad_response", "the answer has no ride id")
		return rv, sentAt, errors.New("request_ride: the answer has no ride id")
	}
	return rv, sentAt, err
}

// followRide reads the ride's event stream (reconnecting when it ends early) until
// the ride is final, noting when a driver is first seen assigned.
func (g *ridesGen) followRide(ctx context.Context, rider *account, rv rideView, sentAt time.Time) (rideView, error) {
	seen := false
	note := func(v rideView) {
		if !seen && v.DriverID != "" {
			seen = true
			g.rides.assigned(time.Since(sentAt), v)
		}
	}
	note(rv)
	backoff := 50 * time.Millisecond
	for !rv.final() {
		next, err := g.rideStreamOnce(ctx, rider, rv.ID, note)
		if next.Version > rv.Version {
			rv = next
		}
		if rv.final() {
			break
		}
		if ctx.Err() != nil {
			return rv, ctx.Err()
		}
		if st := statusOf(err); st >= 400 && st < 500 && st != http.StatusTooManyRequests && st != http.StatusUnauthorized {
			return rv, err
		}
		if sleep(ctx, backoff) != nil {
			return rv, ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return rv, nil
}

// rideStreamOnce reads one connection of GET /v1/rides/{id}/events, calling note
// with every state of the ride it carries; it returns the newest.
func (g *ridesGen) rideStreamOnce(ctx context.Context, rider *account, id string, note func(rideView)) (rideView, error) {
	body, err := g.c.openEvents(ctx, rider, "ride_events", "/v1/rides/"+id+"/events", nil)
	if err != nil {
		return rideView{}, err
	}
	defer body.Close()
	sr := newSSEReader(body)
	var last rideView
	for !last.final() {
		ev, err := sr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return last, nil
			}
			return last, g.c.failed(ctx, ctx, "ride_events", err)
		}
		var v rideView
		if ev.Type == "position" || json.Unmarshal([]byte(ev.Data), &v) != nil || v.Status == "" {
			continue // the driver's position, or an event this generator does not know
		}
		note(v)
		last = v
	}
	return last, nil
}
