package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"golang.org/x/time/rate"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/rides"
)

// The driver stream's protocol: one JSON object per WebSocket text message, its
// kind in "type".
//
// Client to server:
//
//	{"type":"position","lat":52.52,"lng":13.40,"at":"2026-12-03T15:00:00Z"}  at: optional, default now
//	{"type":"accept","ride_id":"…"}        accept the offer of a ride
//	{"type":"decline","ride_id":"…"}       decline it
//	{"type":"trip","ride_id":"…","action":"arrive|start|complete"}
//
// Server to client:
//
//	{"type":"offer","offer":{…rides.Offer}}                       a ride offered to you, open until offer.expires_at
//	{"type":"ack","of":"position","ingested":{…fleet.Ingested}}   positions forwarded (only the newest of those sent meanwhile)
//	{"type":"ack","of":"accept|decline|trip","ride":{…rides.Ride}}
//	{"type":"error","of":"…","code":"…","detail":"…","retry_after":1}
//
// Positions are conflated per connection: while one batch is on its way to fleet,
// newer positions replace older ones, and only the newest is sent next, so a
// driver sending faster than fleet answers never builds a queue. A message larger
// than MaxStreamMessage bytes closes the stream (1009); more than StreamRate
// messages a second (bursts of StreamBurst) are answered with an error
// "rate_limited" and dropped.
type (
	// StreamIn is a message from the driver.
	StreamIn struct {
		Type   string    `json:"type"`
		Lat    float64   `json:"lat,omitempty"`
		Lng    float64   `json:"lng,omitempty"`
		At     time.Time `json:"at,omitzero"`
		RideID string    `json:"ride_id,omitempty"`
		Action string    `json:"action,omitempty"`
	}
	// StreamOut is a message to the driver.
	StreamOut struct {
		Type       string          `json:"type"`
		Of         string          `json:"of,omitempty"`
		Offer      *rides.Offer    `json:"offer,omitempty"`
		Ride       *rides.Ride     `json:"ride,omitempty"`
		Ingested   *fleet.Ingested `json:"ingested,omitempty"`
		Code       string          `json:"code,omitempty"`
		Detail     string          `json:"detail,omitempty"`
		RetryAfter int             `json:"retry_after,omitempty"`
	}
)

// Bounds of one driver stream.
const (
	MaxStreamMessage = 1024 // bytes in one message from the driver
	StreamRate       = 10   // messages a second from the driver, sustained
	StreamBurst      = 20
	offerWait        = 20 * time.Second // each long poll for an offer
	writeTimeout     = 10 * time.Second
	pingEvery        = 30 * time.Second
)

const streamDescription = "A WebSocket (GET with `Upgrade: websocket` and `Authorization: Bearer <access token>`) that " +
	"carries your positions in and ride offers out, one JSON object per message, its kind in `type`.\n\n" +
	"You send: `{\"type\":\"position\",\"lat\":…,\"lng\":…,\"at\":\"<RFC 3339>\"}` (at optional), " +
	"`{\"type\":\"accept\"|\"decline\",\"ride_id\":…}`, `{\"type\":\"trip\",\"ride_id\":…,\"action\":\"arrive|start|complete\"}`.\n\n" +
	"You get: `{\"type\":\"offer\",\"offer\":{…}}`, `{\"type\":\"ack\",\"of\":\"position\",\"ingested\":{…}}`, " +
	"`{\"type\":\"ack\",\"of\":\"accept|decline|trip\",\"ride\":{…}}`, `{\"type\":\"error\",\"of\":…,\"code\":…,\"detail\":…,\"retry_after\":…}`.\n\n" +
	"Only your newest position counts: while one is on its way, newer ones replace it. Messages are at most 1024 bytes " +
	"(larger closes the stream with 1009); more than 10 a second (bursts of 20) are answered `rate_limited` and dropped. " +
	"Browsers cannot set the Authorization header on a WebSocket: use a driver app, or a server-side proxy that adds it. " +
	"A plain GET without the upgrade is answered 426."

// streamRoute registers the driver's stream. The operation's handler answers a
// request that is not a WebSocket upgrade (426); the upgrade itself happens in the
// operation's middleware, which runs after the access rule (so the caller is a
// driver) and takes over the connection.
func streamRoute(api huma.API, h handlers) {
	huma.Register(api, huma.Operation{
		OperationID: "driver-stream", Method: http.MethodGet, Path: "/v1/drivers/me/stream", Tags: []string{"Drivers"},
		Summary:     "Your stream: positions in, offers out (WebSocket)",
		Description: streamDescription,
		Security:    httpapi.DriverOnly, DefaultStatus: http.StatusSwitchingProtocols,
		Errors:      []int{http.StatusUpgradeRequired},
		Middlewares: huma.Middlewares{h.upgrade},
	}, func(context.Context, *struct{}) (*struct{}, error) {
		return nil, huma.NewError(http.StatusUpgradeRequired, "this is a WebSocket: send Upgrade: websocket")
	})
}

// upgrade takes over a WebSocket request and serves the driver's stream on it.
func (h handlers) upgrade(ctx huma.Context, next func(huma.Context)) {
	r, w := humago.Unwrap(ctx)
	id, err := httpapi.CallerID(ctx.Context())
	if err != nil || !isUpgrade(r) {
		next(ctx)
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	conn.SetReadLimit(MaxStreamMessage)
	// The stream outlives the request's deadline; it ends when the connection does.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx.Context()))
	defer cancel()
	s := &session{b: h.b, conn: conn, driver: id, cancel: cancel, wake: make(chan struct{}, 1), answered: make(chan struct{}, 1)}
	s.serve(sctx)
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && r.Header.Get("Sec-WebSocket-Key") != ""
}

// session is one driver's stream.
type session struct {
	b      *bus.Bus
	conn   *websocket.Conn
	driver string
	cancel context.CancelFunc

	mu       sync.Mutex
	latest   *fleet.Position // the newest position not yet forwarded
	wake     chan struct{}   // a position is waiting
	answered chan struct{}   // the driver answered an offer
}

// serve runs the stream until the driver or the server ends it.
func (s *session) serve(ctx context.Context) {
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){s.forward, s.offers, s.keepAlive} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	err := s.read(ctx)
	s.cancel()
	wg.Wait()
	if websocket.CloseStatus(err) == -1 {
		_ = s.conn.Close(websocket.StatusInternalError, "stream ended")
	}
}

// read handles the driver's messages until the connection ends (or a message
// is too large: the library closes the connection with 1009).
func (s *session) read(ctx context.Context) error {
	lim := rate.NewLimiter(StreamRate, StreamBurst)
	for {
		_, data, err := s.conn.Read(ctx)
		if err != nil {
			return err
		}
		if !lim.Allow() {
			s.send(ctx, StreamOut{Type: "error", Code: "rate_limited", Detail: "too many messages; this one was dropped", RetryAfter: 1})
			continue
		}
		var in StreamIn
		if err := json.Unmarshal(data, &in); err != nil {
			s.send(ctx, StreamOut{Type: "error", Code: "invalid_message", Detail: "not a JSON object of the stream's protocol"})
			continue
		}
		s.handle(ctx, in)
	}
}

// handle carries out one message from the driver.
func (s *session) handle(ctx context.Context, in StreamIn) {
	switch in.Type {
	case "position":
		at := in.At
		if at.IsZero() {
			at = time.Now().UTC()
		}
		s.put(fleet.Position{DriverID: s.driver, Point: fleet.Point{Lat: in.Lat, Lng: in.Lng}, At: at})
	case "accept", "decline":
		ride, err := bus.Call(ctx, s.b, rides.AnswerOfferRequest, rides.AnswerOffer{RideID: in.RideID, DriverID: s.driver, Accept: in.Type == "accept"})
		// Only now: the offers loop asks for the next offer at once, and must not find
		// this one still open (it would then wait a second before asking again).
		s.signalAnswered()
		s.reply(ctx, in.Type, ride, err)
	case "trip":
		ride, err := bus.Call(ctx, s.b, rides.AdvanceTripRequest, rides.AdvanceTrip{RideID: in.RideID, DriverID: s.driver, Action: in.Action})
		s.reply(ctx, in.Type, ride, err)
	default:
		s.send(ctx, StreamOut{Type: "error", Of: in.Type, Code: "unknown_type", Detail: "type must be position, accept, decline or trip"})
	}
}

// reply answers a rides request's outcome.
func (s *session) reply(ctx context.Context, of string, ride rides.Ride, err error) {
	if err != nil {
		s.send(ctx, errorOut(of, err))
		return
	}
	s.send(ctx, StreamOut{Type: "ack", Of: of, Ride: &ride})
}

// errorOut is the stream's error message for a bus error.
func errorOut(of string, err error) StreamOut {
	be := message.AsError(err)
	out := StreamOut{Type: "error", Of: of, Code: be.Code, Detail: be.Message}
	if be.Kind == message.Overloaded || be.Kind == message.Unavailable {
		out.RetryAfter = int(retryAfter / time.Second)
	}
	return out
}

// send writes one message to the driver; a write that fails ends the stream.
func (s *session) send(ctx context.Context, out StreamOut) {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := wsjson.Write(wctx, s.conn, out); err != nil {
		s.cancel()
	}
}

func (s *session) signalAnswered() {
	select {
	case s.answered <- struct{}{}:
	default:
	}
}

// put makes p the position to forward next, replacing one still waiting.
func (s *session) put(p fleet.Position) {
	s.mu.Lock()
	if s.latest == nil || !p.At.Before(s.latest.At) {
		s.latest = &p
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns the waiting position, if any, and clears it.
func (s *session) take() *fleet.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.latest
	s.latest = nil
	return p
}

// forward sends the newest waiting position to fleet, one call at a time: what
// arrives during a call waits for the next, conflated to the newest.
func (s *session) forward(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		p := s.take()
		if p == nil {
			continue
		}
		n, err := bus.Call(ctx, s.b, fleet.ReportPositionsRequest, fleet.ReportPositions{Positions: []fleet.Position{*p}})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.send(ctx, errorOut("position", err))
			if errors.Is(err, fleet.ErrSaturated) {
				s.put(*p) // kept unless a newer one came meanwhile
				pause(ctx, retryAfter)
			}
			continue
		}
		s.send(ctx, StreamOut{Type: "ack", Of: "position", Ingested: &n})
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// offers long-polls rides for offers to the driver and pushes each new one. An
// offer already pushed is not pushed again: after pushing, it waits for the
// driver's answer or the offer's expiry before asking again. When rides cannot be
// reached it backs off, doubling up to 30s.
func (s *session) offers(ctx context.Context) {
	var pushed string // ride id of the last offer pushed
	failures := 0
	for ctx.Err() == nil {
		o, err := bus.Call(ctx, s.b, rides.WaitOfferRequest, rides.WaitOffer{DriverID: s.driver, Wait: offerWait})
		if err != nil {
			failures++
			pause(ctx, min(time.Second<<min(failures, 5), 30*time.Second))
			continue
		}
		failures = 0
		if o.Offer == nil {
			continue
		}
		if o.Offer.RideID == pushed {
			pause(ctx, time.Second) // still open, not answered: ask again shortly
			continue
		}
		pushed = o.Offer.RideID
		s.send(ctx, StreamOut{Type: "offer", Offer: o.Offer})
		wait := time.Until(o.Offer.ExpiresAt)
		select {
		case <-ctx.Done():
		case <-s.answered:
		case <-time.After(max(wait, 0)):
		}
	}
}

// keepAlive pings the driver, so a connection that died silently is noticed.
func (s *session) keepAlive(ctx context.Context) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, writeTimeout)
		err := s.conn.Ping(pctx)
		cancel()
		if err != nil {
			s.cancel()
			return
		}
	}
}
