package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// driverPassword is every load-generator driver's password (the accounts are
// reused from run to run).
const driverPassword = "loadgen-driver-password"

func driverEmail(i int) string { return fmt.Sprintf("loadgen-driver-%04d@example.com", i) }

// promoteToDriver makes a's account a driver, as the admin, unless it is one, and
// then signs a in again (a token carries the role it was issued with). It sets
// a.id.
func (c *client) promoteToDriver(ctx context.Context, a, admin *account) error {
	var me struct {
		ID   string `json:"id"`
		Role string `json:"role"`
	}
	if err := c.authed(ctx, a, call{op: "get_me", method: http.MethodGet, path: "/v1/me"}, &me); err != nil {
		return err
	}
	a.id = me.ID
	if me.Role == "driver" {
		return nil
	}
	var u struct {
		Version int64 `json:"version"`
	}
	if err := c.authed(ctx, admin, call{op: "get_user", method: http.MethodGet, path: "/v1/users/" + me.ID}, &u); err != nil {
		return err
	}
	err := c.authed(ctx, admin, call{op: "set_user_role", method: http.MethodPut, path: "/v1/users/" + me.ID + "/role",
		header: http.Header{"If-Match": {fmt.Sprintf("%q", fmt.Sprint(u.Version))}}, body: map[string]string{"role": "driver"}}, nil)
	if err != nil {
		return err
	}
	return c.signIn(ctx, a)
}

// streamMsg is a message of the driver stream (see modules/fleet/internal/api).
type streamMsg struct {
	Type   string          `json:"type"`
	Lat    float64         `json:"lat,omitempty"`
	Lng    float64         `json:"lng,omitempty"`
	RideID string          `json:"ride_id,omitempty"`
	Action string          `json:"action,omitempty"`
	Of     string          `json:"of,omitempty"`
	Code   string          `json:"code,omitempty"`
	Detail string          `json:"detail,omitempty"`
	Offer  *offerMsg       `json:"offer,omitempty"`
	Ride   json.RawMessage `json:"ride,omitempty"`
}

type offerMsg struct {
	RideID  string `json:"ride_id"`
	Pickup  point  `json:"pickup"`
	Dropoff point  `json:"dropoff"`
}

// driverApp is one simulated driver app: online, a position a second over its
// stream, every offer accepted, each trip driven to its end at TripSpeed.
type driverApp struct {
	g    *ridesGen
	a    *account
	conn *websocket.Conn

	mu       sync.Mutex
	pos      point  // where it is when not on a trip
	trip     *route // the trip's way: to the pickup, then to the drop-off
	tripFrom time.Time
	tripAcks chan streamMsg // answers to trip actions
}

// position is where the driver is now.
func (d *driverApp) position() point {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.trip == nil {
		return d.pos
	}
	return d.trip.along(time.Since(d.tripFrom).Seconds() * d.g.cfg.Rides.TripSpeed)
}

// connect brings the driver online at its position and opens its stream.
func (d *driverApp) connect(ctx context.Context) error {
	err := d.g.c.authed(ctx, d.a, call{op: "driver_online", method: http.MethodPost, path: "/v1/drivers/me/online",
		body: map[string]point{"position": d.position()}}, nil)
	if err != nil {
		return err
	}
	tok, err := d.g.c.token(ctx, d.a)
	if err != nil {
		return err
	}
	u := "ws" + strings.TrimPrefix(d.g.c.base(), "http") + "/v1/drivers/me/stream"
	start := time.Now()
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: d.g.c.hc,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}, "User-Agent": {"agora-loadgen"}}})
	if err != nil {
		return d.g.c.failed(ctx, ctx, "driver_stream", err)
	}
	d.g.c.rec.op("driver_stream", time.Since(start))
	d.conn = conn
	return nil
}

// run serves the stream until ctx ends, then goes offline.
func (d *driverApp) run(ctx context.Context) {
	defer func() {
		_ = d.conn.Close(websocket.StatusNormalClosure, "done")
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		// 409 while a trip is unfinished: the ride timed out or the run was stopped.
		_ = d.g.c.authed(octx, d.a, call{op: "driver_offline", method: http.MethodPost, path: "/v1/drivers/me/offline",
			expect: []int{http.StatusConflict}}, nil)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { d.report(ctx) })
	for {
		var m streamMsg
		if err := wsjson.Read(ctx, d.conn, &m); err != nil {
			if ctx.Err() == nil {
				d.g.c.failed(ctx, ctx, "driver_stream", err)
			}
			return
		}
		d.handle(ctx, m, &wg)
	}
}

// handle answers one message from the server.
func (d *driverApp) handle(ctx context.Context, m streamMsg, wg *sync.WaitGroup) {
	t := &d.g.rides
	switch {
	case m.Type == "offer" && m.Offer != nil:
		t.add(&t.offersReceived, 1)
		d.send(ctx, streamMsg{Type: "accept", RideID: m.Offer.RideID})
	case m.Type == "ack" && m.Of == "accept":
		t.add(&t.offersAccepted, 1)
		var ride struct {
			ID              string `json:"id"`
			Pickup, Dropoff point
		}
		if json.Unmarshal(m.Ride, &ride) == nil {
			wg.Go(func() { d.drive(ctx, offerMsg{RideID: ride.ID, Pickup: ride.Pickup, Dropoff: ride.Dropoff}) })
		}
	case m.Of == "trip":
		select {
		case d.tripAcks <- m:
		default:
		}
	case m.Type == "error":
		d.g.c.rec.fail("driver_"+m.Of, m.Code, m.Detail)
	}
}

// send writes one message to the stream.
func (d *driverApp) send(ctx context.Context, m streamMsg) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := wsjson.Write(wctx, d.conn, m); err != nil && ctx.Err() == nil {
		d.g.c.rec.fail("driver_"+m.Type, "transport", err.Error())
	}
}

// report sends the driver's position every second.
func (d *driverApp) report(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p := d.position()
			d.send(ctx, streamMsg{Type: "position", Lat: p.Lat, Lng: p.Lng})
		}
	}
}

// drive takes the ride: to the pickup (arrive), then the trip (start, complete),
// each leg at TripSpeed. A trip action refused ends the trip where it is.
func (d *driverApp) drive(ctx context.Context, ride offerMsg) {
	from := d.position()
	rt := newRoute([]point{from, ride.Pickup, ride.Dropoff})
	d.mu.Lock()
	d.trip, d.tripFrom = &rt, time.Now()
	d.mu.Unlock()
	defer func() {
		p := d.position()
		d.mu.Lock()
		d.pos, d.trip = p, nil
		d.mu.Unlock()
	}()
	speed := d.g.cfg.Rides.TripSpeed
	legs := []struct {
		action string
		at     float64 // meters along the way
	}{{"arrive", rt.cum[1]}, {"start", rt.cum[1]}, {"complete", rt.length()}}
	for _, leg := range legs {
		if sleep(ctx, time.Until(d.tripFrom.Add(time.Duration(leg.at/speed*float64(time.Second))))) != nil {
			return
		}
		if !d.advance(ctx, ride.RideID, leg.action) {
			return
		}
	}
}

// Trip actions refused are sent again: an arrival right after the accept can come
// before rides has the driver's engagement from fleet (the trip has not begun).
const (
	tripAttempts = 20
	tripRetry    = 50 * time.Millisecond
)

// advance sends a trip action until it is acknowledged (true) or refused
// tripAttempts times; each refusal is recorded as an error.
func (d *driverApp) advance(ctx context.Context, rideID, action string) bool {
	for range tripAttempts {
		d.send(ctx, streamMsg{Type: "trip", RideID: rideID, Action: action})
		var ack streamMsg
		select {
		case <-ctx.Done():
			return false
		case ack = <-d.tripAcks:
		}
		if ack.Type == "ack" {
			return true
		}
		d.g.c.rec.fail("driver_trip_"+action, ack.Code, ack.Detail)
		if sleep(ctx, tripRetry) != nil {
			return false
		}
	}
	return false
}
