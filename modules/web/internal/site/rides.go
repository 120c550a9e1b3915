package site

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/rides"
)

// recentRides is how many of a rider's rides /rides lists per page.
const recentRides = 10

// ridesPage is /rides: the city with its drivers, the ride form (pickup and
// drop-off, then the quote and the request), and the rider's recent rides.
type ridesPage struct {
	City            *cityMap
	Drivers         []dot
	DriversProblem  string // why the drivers are not shown
	Pickup, Dropoff string // the form's values ("lat,lng")
	PickupMark      *mark
	DropoffMark     *mark
	Quote           *rides.Quote
	Cards           []testCard
	IdempotencyKey  string
	Error           string
	Rides           []rides.Ride
	Next            string // the cursor of the next page of rides
}

func (ridesPage) PageTitle() string { return "Rides" }

// Active is the rider's ride under way, if the recent rides show one (a rider
// has at most one).
func (p ridesPage) Active() *rides.Ride {
	for i := range p.Rides {
		if !p.Rides[i].Final() {
			return &p.Rides[i]
		}
	}
	return nil
}

// Named reports whether value is one of the named places (else the form shows
// it as a point chosen on the map).
func (p ridesPage) Named(value string) bool {
	for _, pl := range p.City.Places {
		if pl.Value == value {
			return true
		}
	}
	return false
}

// ridesHome shows /rides. With ?pickup= (and ?dropoff=) it marks them on the map
// and, with both, quotes the ride; a place rides refuses (outside the area, the
// same place twice) shows on the form, not as an error page.
func (s *Site) ridesHome(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := r.URL.Query()
	p, err := s.ridesPage(r.Context(), v, bounded(q.Get("pickup"), 64), bounded(q.Get("dropoff"), 64), bounded(q.Get("before"), 64))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if p.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	s.render(w, r, v, status, "rides", p)
	return nil
}

// ridesPage assembles /rides for the places given (either may be empty).
func (s *Site) ridesPage(ctx context.Context, v *visit, pickup, dropoff, before string) (ridesPage, error) {
	city, err := s.city(ctx)
	if err != nil {
		return ridesPage{}, err
	}
	p := ridesPage{City: city, Pickup: pickup, Dropoff: dropoff, Cards: testCards, IdempotencyKey: bus.NewID()}
	if snap, err := s.fleetFeed.latest(ctx); err != nil {
		p.DriversProblem = "The drivers' positions cannot be shown at the moment."
	} else {
		p.Drivers = city.dots(snap.Drivers)
	}
	from, okFrom := parsePoint(pickup)
	to, okTo := parsePoint(dropoff)
	switch {
	case (pickup != "" && !okFrom) || (dropoff != "" && !okTo):
		p.Error = "Choose the places on the map or from the lists."
	case okFrom && okTo:
		p.PickupMark, p.DropoffMark = city.mark(from, "A"), city.mark(to, "B")
		quote, err := bus.Call(ctx, s.bus, rides.QuoteRideRequest, rides.QuoteRide{Pickup: from, Dropoff: to})
		switch {
		case err == nil:
			p.Quote = &quote
		case message.AsError(err).Kind == message.Invalid:
			p.Error = message.AsError(err).Message
		default:
			return ridesPage{}, err
		}
	case okFrom:
		p.PickupMark = city.mark(from, "A")
	}
	page, err := bus.Call(ctx, s.bus, rides.ListRidesRequest, rides.ListRides{RiderID: v.who.UserID, Before: before, Limit: recentRides})
	if err != nil {
		return ridesPage{}, err
	}
	p.Rides, p.Next = page.Items, page.NextBefore
	return p, nil
}

// requestRide requests the ride the quote showed and goes to its page, where it
// is followed live. The form's idempotency key makes a double submit one ride.
func (s *Site) requestRide(w http.ResponseWriter, r *http.Request, v *visit) error {
	pickup, dropoff := r.PostFormValue("pickup"), r.PostFormValue("dropoff")
	token, key := r.PostFormValue("payment_token"), r.PostFormValue("idempotency_key")
	from, okFrom := parsePoint(pickup)
	to, okTo := parsePoint(dropoff)
	if !okFrom || !okTo || token == "" || len(token) > rides.MaxPaymentTokenLen || key == "" || len(key) > 64 {
		return errInvalidForm
	}
	sum := sha256.Sum256([]byte("web-ride\x00" + token + "\x00" + pointValue(from) + "\x00" + pointValue(to)))
	placed, err := bus.Call(r.Context(), s.bus, rides.RequestRideRequest, rides.RequestRide{
		RiderID: v.who.UserID, Pickup: from, Dropoff: to, PaymentToken: token,
		IdempotencyKey: "web:" + key, RequestHash: hex.EncodeToString(sum[:])})
	if err != nil {
		return s.refusedRide(w, r, v, from, to, err)
	}
	http.Redirect(w, r, "/rides/"+placed.Ride.ID, http.StatusSeeOther)
	return nil
}

// refusedRide answers a ride request rides refused: what the rider can act on
// (a ride already active, a place outside the area) brings the form back with
// why; anything else is an error page.
func (s *Site) refusedRide(w http.ResponseWriter, r *http.Request, v *visit, from, to message.Point, err error) error {
	be := message.AsError(err)
	if be.Kind != message.Invalid && be.Kind != message.Conflict {
		return err
	}
	p, perr := s.ridesPage(r.Context(), v, pointValue(from), pointValue(to), "")
	if perr != nil {
		return perr
	}
	p.Error = be.Message
	status, _ := errorStatus(be.Kind)
	s.render(w, r, v, status, "rides", p)
	return nil
}

// rideView is a ride as its page shows it: on the city's map with its pickup,
// drop-off and, while it comes and drives, its driver.
type rideView struct {
	Ride            rides.Ride
	City            *cityMap
	Pickup, Dropoff *mark
	Driver          []dot // the assigned driver, while tracked and its position known
}

func (rv rideView) PageTitle() string { return "Ride " + rv.Ride.ID[:min(len(rv.Ride.ID), 8)] }

// Cancellable reports whether the page offers to cancel the ride: until its
// trip starts.
func (rv rideView) Cancellable() bool {
	switch rv.Ride.Status {
	case rides.StatusRequested, rides.StatusDriverAssigned, rides.StatusArriving:
		return true
	}
	return false
}

// Tracking reports whether the ride's driver is followed on the map: from its
// assignment to the end of the trip.
func (rv rideView) Tracking() bool { return tracking(rv.Ride) }

func tracking(r rides.Ride) bool {
	if r.DriverID == "" {
		return false
	}
	switch r.Status {
	case rides.StatusDriverAssigned, rides.StatusArriving, rides.StatusInTrip:
		return true
	}
	return false
}

// Charged is what the rider paid: the amount captured, or (before the capture
// is reported) the fare of a completed ride.
func (rv rideView) Charged() message.Money {
	if rv.Ride.Charged != nil {
		return *rv.Ride.Charged
	}
	return rv.Ride.Fare
}

// rideStatusWords are rides' statuses as the rider reads them (badges).
var rideStatusWords = map[rides.Status]string{
	rides.StatusRequested:      "finding a driver",
	rides.StatusDriverAssigned: "driver on the way",
	rides.StatusArriving:       "driver at the pickup",
	rides.StatusInTrip:         "on the trip",
	rides.StatusCompleted:      "completed",
	rides.StatusCancelled:      "cancelled",
}

// cancelReasons are rides' reasons as the rider reads them.
var cancelReasons = map[string]string{
	rides.ReasonNoDriver:        "No driver could take the ride.",
	rides.ReasonPaymentDeclined: "The payment was declined.",
	rides.ReasonRiderCancelled:  "You cancelled the ride.",
	rides.ReasonDriverCancelled: "The driver cancelled the ride.",
}

// Reason is why the ride was cancelled, in words.
func (rv rideView) Reason() string {
	if s, ok := cancelReasons[rv.Ride.Reason]; ok {
		return s
	}
	return rv.Ride.Reason
}

// ownRide returns the ride id names if v may see it: its rider or an admin.
// Anyone else gets exactly the answer for a ride that does not exist.
func (s *Site) ownRide(ctx context.Context, v *visit, id string) (rides.Ride, error) {
	if id == "" || len(id) > 64 {
		return rides.Ride{}, rides.ErrRideNotFound
	}
	ride, err := bus.Call(ctx, s.bus, rides.GetRideRequest, rides.GetRide{ID: id})
	if err != nil {
		return rides.Ride{}, err
	}
	if ride.RiderID != v.who.UserID && v.who.Role != identity.RoleAdmin {
		return rides.Ride{}, rides.ErrRideNotFound
	}
	return ride, nil
}

// rideOnMap returns the ride id names, if v may see it, and the city it is in.
func (s *Site) rideOnMap(ctx context.Context, v *visit, id string) (rides.Ride, *cityMap, error) {
	ride, err := s.ownRide(ctx, v, id)
	if err != nil {
		return rides.Ride{}, nil, err
	}
	city, err := s.city(ctx)
	return ride, city, err
}

func (s *Site) ride(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	ride, city, err := s.rideOnMap(ctx, v, r.PathValue("id"))
	if err != nil {
		return err
	}
	rv := rideView{Ride: ride, City: city, Pickup: city.mark(ride.Pickup, "A"), Dropoff: city.mark(ride.Dropoff, "B")}
	if tracking(ride) {
		rv.Driver, _ = s.driverDot(ctx, city, ride.DriverID)
	}
	s.render(w, r, v, http.StatusOK, "ride", rv)
	return nil
}

// driverDot is the ride's driver on the map; none before its first position.
func (s *Site) driverDot(ctx context.Context, city *cityMap, driverID string) ([]dot, error) {
	d, err := bus.Call(ctx, s.bus, fleet.GetDriverRequest, fleet.GetDriver{DriverID: driverID})
	if err != nil || d.Position == nil {
		return nil, err
	}
	return city.dots([]fleet.DriverDot{{DriverID: d.ID, Status: fleet.StatusBusy, Point: *d.Position}}), nil
}

// cancelRide cancels the ride (rides decides whether it is free or costs the
// cancellation fee, and records the reason) and shows it again.
func (s *Site) cancelRide(w http.ResponseWriter, r *http.Request, v *visit) error {
	ride, err := s.ownRide(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	reason := "" // rides records why: the rider cancelled
	if ride.RiderID != v.who.UserID {
		reason = "cancelled by an administrator"
	}
	if _, err := bus.Call(r.Context(), s.bus, rides.CancelRideRequest,
		rides.CancelRide{ID: ride.ID, Actor: v.who.UserID, Reason: reason}); err != nil {
		return err
	}
	http.Redirect(w, r, "/rides/"+ride.ID, http.StatusSeeOther)
	return nil
}

// rideLive streams the ride page's live parts as server-sent events: "status",
// the status panel's HTML, first as the ride is (unless the browser shows that
// version already, see renderedVersion) and after each change, waiting through
// rides' WaitRide long polls; and while the driver is tracked, "driver", its dot
// on the map, looked up about once a second (each wait is then a second at
// most) and sent when it moved. It ends when the ride is final, at the request's
// deadline or after streamFor; the browser reconnects.
func (s *Site) rideLive(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	ride, city, err := s.rideOnMap(ctx, v, r.PathValue("id"))
	if err != nil {
		return err
	}
	ev := startEvents(w)
	seen, lastDot := renderedVersion(r), ""
	until := time.Now().Add(s.streamFor)
	for {
		if ride.Version > seen {
			if ev.send("status", strconv.FormatInt(ride.Version, 10), s.fragment("ride", "status", rideView{Ride: ride})) != nil {
				return nil
			}
			seen = ride.Version
		}
		if tracking(ride) {
			if dots, err := s.driverDot(ctx, city, ride.DriverID); err == nil {
				if html := s.fragment("ride", "dots", dots); html != lastDot {
					if ev.send("driver", "", html) != nil {
						return nil
					}
					lastDot = html
				}
			}
		}
		if ride.Final() || time.Now().After(until) {
			_ = ev.send("end", "", "")
			return nil
		}
		if ride, err = s.nextRide(ctx, ride); err != nil {
			return nil // the deadline, or rides is out of reach: the browser reconnects
		}
	}
}

// nextRide waits for the ride to change: up to a long poll's wait, or a second
// while its driver is tracked (the stream then looks up the driver again). It
// returns the ride as it is when nothing changed.
func (s *Site) nextRide(ctx context.Context, ride rides.Ride) (rides.Ride, error) {
	wait := waitFor(ctx)
	if tracking(ride) {
		wait = min(wait, s.driverEvery)
	}
	next, err := bus.Call(ctx, s.bus, rides.WaitRideRequest, rides.WaitRide{ID: ride.ID, AfterVersion: ride.Version, Wait: wait})
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return ride, err
	}
	if next.Version <= ride.Version {
		return ride, nil
	}
	return next, nil
}

// fleetLive streams the drivers on /rides' map as server-sent events: "drivers",
// the dots' SVG, about once a second (from the process's shared snapshot, see
// fleetFeed) when they moved, until the request's deadline or streamFor.
func (s *Site) fleetLive(w http.ResponseWriter, r *http.Request, _ *visit) error {
	ctx := r.Context()
	city, err := s.city(ctx)
	if err != nil {
		return err
	}
	s.poll(ctx, startEvents(w), s.driverEvery, "drivers", func() (string, bool) {
		snap, err := s.fleetFeed.latest(ctx)
		return s.fragment("rides", "dots", city.dots(snap.Drivers)), err == nil
	})
	return nil
}
