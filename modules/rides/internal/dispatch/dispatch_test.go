package dispatch_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
)

var (
	t0     = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	timing = dispatch.Timing{StepTimeout: 10 * time.Second, MaxAttempts: 3, OfferTimeout: 15 * time.Second, MaxOffers: 2,
		DispatchTimeout: 10 * time.Minute, SearchRetry: 3 * time.Second, CancelGrace: 2 * time.Minute, CancelFee: 500}
)

const (
	rideID  = "0190a8b2-0000-7000-8000-0000000000a1"
	riderID = "0190a8b2-0000-7000-8000-00000000c001"
	d1      = "0190a8b2-0000-7000-8000-0000000000d1"
	d2      = "0190a8b2-0000-7000-8000-0000000000d2"
)

func newRide() rides.Ride {
	return rides.Ride{ID: rideID, RiderID: riderID, Status: rides.StatusRequested, Pickup: rides.Point{Lat: 52.5, Lng: 13.4},
		Dropoff: rides.Point{Lat: 52.52, Lng: 13.41}, Fare: rides.Money{Amount: 1500, Currency: "EUR"}, Surge: 1, Version: 1,
		CreatedAt: t0, UpdatedAt: t0}
}

// The messages the saga takes, by a short name.
var (
	authorized   = payments.PaymentAuthorized{PayableID: rideID, Payable: payments.PayableRide}
	declined     = payments.PaymentDeclined{PayableID: rideID, Payable: payments.PayableRide, Message: "Your card was declined."}
	captured     = payments.PaymentCaptured{PayableID: rideID, Payable: payments.PayableRide}
	voided       = payments.PaymentVoided{PayableID: rideID, Payable: payments.PayableRide}
	engaged      = fleet.DriverAvailabilityChanged{DriverID: d1, Status: fleet.StatusBusy, Previous: fleet.StatusAvailable, RideID: rideID}
	engageFailed = fleet.DriverEngagementFailed{DriverID: d1, RideID: rideID, Reason: "offline"}
	found        = dispatch.Candidates{Drivers: []fleet.Candidate{{DriverID: d1, DistanceMeters: 300}, {DriverID: d2, DistanceMeters: 900}}}
	foundNone    = dispatch.Candidates{}
	accept       = dispatch.Answer{DriverID: d1, Accept: true}
	decline      = dispatch.Answer{DriverID: d1}
	acceptD2     = dispatch.Answer{DriverID: d2, Accept: true}
	declineD2    = dispatch.Answer{DriverID: d2}
	busy         = dispatch.Busy{DriverID: d1}
	arrive       = dispatch.Advance{DriverID: d1, Action: rides.ActionArrive}
	start        = dispatch.Advance{DriverID: d1, Action: rides.ActionStart}
	complete     = dispatch.Advance{DriverID: d1, Action: rides.ActionComplete}
	cancel       = dispatch.Cancel{Actor: riderID, Reason: "changed my mind"}
	cancelDriver = dispatch.Cancel{Actor: d1, ByDriver: true}
	timeout      = dispatch.Timeout{}
)

// messages lists every message, by name, in the order the table shows them.
var messages = []struct {
	name string
	msg  any
}{
	{"Authorized", authorized}, {"Declined", declined}, {"Captured", captured}, {"Voided", voided},
	{"Engaged", engaged}, {"EngageFailed", engageFailed}, {"Found", found}, {"FoundNone", foundNone},
	{"Accept", accept}, {"Decline", decline}, {"AcceptD2", acceptD2}, {"DeclineD2", declineD2}, {"Busy", busy},
	{"Arrive", arrive}, {"Start", start}, {"Complete", complete},
	{"Cancel", cancel}, {"CancelDriver", cancelDriver}, {"Timeout", timeout},
}

type situation struct {
	s   dispatch.Saga
	r   rides.Ride
	now time.Time
}

// reach starts a saga and applies msgs to it a second apart — a Timeout at its
// deadline — failing on any error.
func reach(t *testing.T, msgs ...any) situation {
	t.Helper()
	r := newRide()
	s, _ := dispatch.Start(r, "tok_visa", t0, timing)
	now := t0
	for _, m := range msgs {
		now = now.Add(time.Second)
		if _, ok := m.(dispatch.Timeout); ok && s.Deadline.After(now) {
			now = s.Deadline
		}
		res, err := dispatch.Apply(s, r, m, now, timing)
		if err != nil {
			t.Fatalf("reaching the situation: %T: %v", m, err)
		}
		s, r = res.Saga, res.Ride
	}
	return situation{s, r, now}
}

// want is what one message does to one situation. The zero want is "ignored": no
// change but a history step, nothing sent.
type want struct {
	state    rides.DispatchState
	status   rides.Status
	reason   string
	driver   string
	offer    string // the driver the open offer is to
	charged  int64
	send     []string
	awaiting []dispatch.Ack
	err      error
}

func types(out []message.Outgoing) []string {
	var ts []string
	for _, o := range out {
		ts = append(ts, o.Type)
	}
	return ts
}

// Short names of the messages the saga sends.
var (
	cAuthorize = payments.AuthorizePaymentCommand.Name()
	cCapture   = payments.CapturePaymentCommand.Name()
	cVoid      = payments.VoidPaymentCommand.Name()
	cEngage    = fleet.EngageDriverCommand.Name()
	cRelease   = fleet.ReleaseDriverCommand.Name()
	eAssigned  = rides.DriverAssignedEvent.Name()
	eArriving  = rides.DriverArrivingEvent.Name()
	eStarted   = rides.TripStartedEvent.Name()
	eCompleted = rides.RideCompletedEvent.Name()
	eCancelled = rides.RideCancelledEvent.Name()
)

// Outcomes shared by several situations.
var (
	searching       = want{state: rides.DispatchOffering, status: rides.StatusRequested}
	cancelledFree   = want{state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled, send: []string{cVoid, eCancelled}, awaiting: []dispatch.Ack{dispatch.AckVoided}}
	noDriver        = want{state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonNoDriver, send: []string{cVoid, eCancelled}, awaiting: []dispatch.Ack{dispatch.AckVoided}}
	cancelledAssign = want{state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled, driver: d1, send: []string{cVoid, cRelease, eCancelled}, awaiting: []dispatch.Ack{dispatch.AckVoided}}
	driverCancelled = want{state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonDriverCancelled, driver: d1, send: []string{cVoid, cRelease, eCancelled}, awaiting: []dispatch.Ack{dispatch.AckVoided}}
	offeredD1       = want{state: rides.DispatchOffering, status: rides.StatusRequested, offer: d1}
	assigned        = want{state: rides.DispatchEngaging, status: rides.StatusDriverAssigned, driver: d1, send: []string{cEngage}}
	unassigned      = want{state: rides.DispatchOffering, status: rides.StatusRequested, send: []string{cRelease}}
	inTrip          = []any{authorized, found, accept, engaged}
)

func seq(parts ...any) []any {
	var out []any
	for _, p := range parts {
		if ps, ok := p.([]any); ok {
			out = append(out, ps...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// situations are every situation a saga can be in, and what each message does
// there. A message not listed is ignored — but for the defaults of defaultWant.
var situations = []struct {
	name  string
	reach []any
	after time.Duration // time between reaching the situation and the message (default 1s)
	do    map[string]want
}{
	{name: "authorizing", do: map[string]want{
		"Authorized": searching,
		"Declined":   {state: rides.DispatchFailed, status: rides.StatusCancelled, reason: rides.ReasonPaymentDeclined, send: []string{eCancelled}},
		"Cancel":     cancelledFree,
		"Timeout":    {state: rides.DispatchAuthorizing, status: rides.StatusRequested, send: []string{cAuthorize}},
	}},
	{name: "authorizing, attempts used up", reach: seq(timeout, timeout), do: map[string]want{
		"Authorized": searching,
		"Declined":   {state: rides.DispatchFailed, status: rides.StatusCancelled, reason: rides.ReasonPaymentDeclined, send: []string{eCancelled}},
		"Cancel":     cancelledFree,
		"Timeout":    {state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonPaymentDeclined, send: []string{cVoid, eCancelled}, awaiting: []dispatch.Ack{dispatch.AckVoided}},
	}},
	{name: "searching", reach: seq(authorized), do: map[string]want{
		"Found": offeredD1, "FoundNone": searching, "Timeout": searching, "Cancel": cancelledFree,
	}},
	{name: "searching, past the bound", reach: seq(authorized), after: timing.DispatchTimeout, do: map[string]want{
		"Found": noDriver, "FoundNone": noDriver, "Timeout": noDriver, "Cancel": cancelledFree,
	}},
	{name: "offered", reach: seq(authorized, found), do: map[string]want{
		"Accept": assigned, "Decline": searching, "Busy": searching, "Cancel": cancelledFree,
		"Timeout": searching, // at the offer's expiry
	}},
	{name: "offered, expired", reach: seq(authorized, found), after: timing.OfferTimeout, do: map[string]want{
		// Too late to accept or decline; the timeout moves on.
		"Timeout": searching, "Busy": searching, "Cancel": cancelledFree,
	}},
	{name: "offered, the last offer", reach: seq(authorized, found, decline, found), do: map[string]want{
		"AcceptD2":  {state: rides.DispatchEngaging, status: rides.StatusDriverAssigned, driver: d2, send: []string{cEngage}},
		"DeclineD2": noDriver, "Timeout": noDriver, "Cancel": cancelledFree,
	}},
	{name: "engaging", reach: seq(authorized, found, accept), do: map[string]want{
		"Engaged":      {state: rides.DispatchTrip, status: rides.StatusDriverAssigned, driver: d1, send: []string{eAssigned}},
		"EngageFailed": unassigned,
		"Timeout":      {state: rides.DispatchEngaging, status: rides.StatusDriverAssigned, driver: d1, send: []string{cEngage}},
		"Cancel":       cancelledAssign, "CancelDriver": driverCancelled,
		"Arrive": {err: rides.ErrWrongStatus},
	}},
	{name: "engaging, attempts used up", reach: seq(authorized, found, accept, timeout, timeout), do: map[string]want{
		"Engaged":      {state: rides.DispatchTrip, status: rides.StatusDriverAssigned, driver: d1, send: []string{eAssigned}},
		"EngageFailed": unassigned, "Timeout": unassigned,
		"Cancel": cancelledAssign, "CancelDriver": driverCancelled,
	}},
	{name: "assigned", reach: inTrip, do: map[string]want{
		"Arrive": {state: rides.DispatchTrip, status: rides.StatusArriving, driver: d1, send: []string{eArriving}},
		"Cancel": cancelledAssign, "CancelDriver": driverCancelled,
	}},
	{name: "assigned, past the grace period", reach: inTrip, after: timing.CancelGrace + time.Second, do: map[string]want{
		"Arrive":       {state: rides.DispatchTrip, status: rides.StatusArriving, driver: d1, send: []string{eArriving}},
		"Cancel":       {state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled, driver: d1, charged: 500, send: []string{cCapture, cRelease, eCancelled}, awaiting: []dispatch.Ack{dispatch.AckCaptured}},
		"CancelDriver": driverCancelled,
	}},
	{name: "arriving", reach: seq(inTrip, arrive), do: map[string]want{
		"Start":  {state: rides.DispatchTrip, status: rides.StatusInTrip, driver: d1, send: []string{eStarted}},
		"Cancel": cancelledAssign, "CancelDriver": driverCancelled,
	}},
	{name: "in trip", reach: seq(inTrip, arrive, start), do: map[string]want{
		"Complete": {state: rides.DispatchSettling, status: rides.StatusCompleted, driver: d1, charged: 1500, send: []string{cCapture, cRelease, eCompleted}, awaiting: []dispatch.Ack{dispatch.AckCaptured}},
	}},
	{name: "settling a completion", reach: seq(inTrip, arrive, start, complete), do: map[string]want{
		"Captured": {state: rides.DispatchCompleted, status: rides.StatusCompleted, driver: d1, charged: 1500},
		"Timeout":  {state: rides.DispatchSettling, status: rides.StatusCompleted, driver: d1, charged: 1500, send: []string{cCapture}, awaiting: []dispatch.Ack{dispatch.AckCaptured}},
	}},
	{name: "settling a cancellation", reach: seq(authorized, cancel), do: map[string]want{
		"Voided":  {state: rides.DispatchCancelled, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled},
		"Timeout": {state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled, send: []string{cVoid}, awaiting: []dispatch.Ack{dispatch.AckVoided}},
	}},
	{name: "cancelled while authorizing", reach: seq(cancel), do: map[string]want{
		// A late authorization is voided again: nothing stays held.
		"Authorized": {state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled, send: []string{cVoid}, awaiting: []dispatch.Ack{dispatch.AckVoided}},
		"Voided":     {state: rides.DispatchCancelled, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled},
		"Timeout":    {state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled, send: []string{cVoid}, awaiting: []dispatch.Ack{dispatch.AckVoided}},
	}},
	{name: "cancelled while engaging", reach: seq(authorized, found, accept, cancel), do: map[string]want{
		// The engagement lands after the cancellation: the driver is released again.
		"Engaged": {state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled, driver: d1, send: []string{cRelease}, awaiting: []dispatch.Ack{dispatch.AckVoided}},
		"Voided":  {state: rides.DispatchCancelled, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled, driver: d1},
		"Timeout": {state: rides.DispatchSettling, status: rides.StatusCancelled, reason: rides.ReasonRiderCancelled, driver: d1, send: []string{cVoid}, awaiting: []dispatch.Ack{dispatch.AckVoided}},
	}},
	{name: "failed after a decline", reach: seq(declined), do: map[string]want{
		"Authorized": {state: rides.DispatchFailed, status: rides.StatusCancelled, reason: rides.ReasonPaymentDeclined, send: []string{cVoid}},
	}},
	{name: "completed", reach: seq(inTrip, arrive, start, complete, captured)},
	{name: "cancelled", reach: seq(authorized, cancel, voided)},
}

// defaultWant is what a message not listed does: a driver's answer with no offer
// open to it is ErrNoOffer, a trip action by a driver not assigned ErrRideNotFound
// and out of order ErrWrongStatus, a cancellation not listed ErrNotCancellable;
// anything else is ignored.
func defaultWant(before situation, name string) want {
	switch name {
	case "Accept", "Decline", "AcceptD2", "DeclineD2":
		return want{err: rides.ErrNoOffer}
	case "Arrive", "Start", "Complete":
		if before.r.DriverID != d1 {
			return want{err: rides.ErrRideNotFound}
		}
		return want{err: rides.ErrWrongStatus}
	case "Cancel", "CancelDriver":
		return want{err: rides.ErrNotCancellable}
	}
	var charged int64
	if before.r.Charged != nil {
		charged = before.r.Charged.Amount
	}
	return want{state: before.s.State, status: before.r.Status, reason: before.r.Reason, driver: before.r.DriverID,
		awaiting: before.s.Awaiting, charged: charged, offer: offerTo(before.s)}
}

func offerTo(s dispatch.Saga) string {
	if s.Offer == nil {
		return ""
	}
	return s.Offer.DriverID
}

// TestTransitions applies every message to every situation a saga can be in.
func TestTransitions(t *testing.T) {
	for _, sit := range situations {
		for _, m := range messages {
			t.Run(sit.name+"/"+m.name, func(t *testing.T) {
				before := reach(t, sit.reach...)
				if m.name == "CancelDriver" && before.r.DriverID == "" {
					return // only an assigned driver cancels as the driver
				}
				w, listed := sit.do[m.name]
				if !listed {
					w = defaultWant(before, m.name)
				}
				now := before.now.Add(max(sit.after, time.Second))
				if _, ok := m.msg.(dispatch.Timeout); ok && before.s.Deadline.After(now) {
					now = before.s.Deadline
				}
				snapshot := reach(t, sit.reach...)
				res, err := dispatch.Apply(before.s, before.r, m.msg, now, timing)
				if diff := cmp.Diff(snapshot, before, cmp.AllowUnexported(situation{})); diff != "" {
					t.Fatalf("Apply changed its input (-before +after):\n%s", diff)
				}
				if w.err != nil || err != nil {
					if !errors.Is(err, w.err) {
						t.Fatalf("err = %v, want %v", err, w.err)
					}
					return
				}
				checkResult(t, before, res, w, now)
				if !listed && !strings.Contains(res.Saga.History[len(res.Saga.History)-1].Note, "ignored") {
					t.Errorf("history note %q, want it to say the message was ignored", res.Saga.History[len(res.Saga.History)-1].Note)
				}
			})
		}
	}
}

func checkResult(t *testing.T, before situation, res dispatch.Result, w want, now time.Time) {
	t.Helper()
	if res.Saga.State != w.state {
		t.Errorf("state %s, want %s", res.Saga.State, w.state)
	}
	r := res.Ride
	if r.Status != w.status || r.Reason != w.reason || r.DriverID != w.driver {
		t.Errorf("ride %s/%q/driver %q, want %s/%q/driver %q", r.Status, r.Reason, r.DriverID, w.status, w.reason, w.driver)
	}
	var charged int64
	if r.Charged != nil {
		charged = r.Charged.Amount
	}
	if charged != w.charged {
		t.Errorf("charged %d, want %d", charged, w.charged)
	}
	if got := offerTo(res.Saga); got != w.offer {
		t.Errorf("offer open to %q, want %q", got, w.offer)
	}
	if diff := cmp.Diff(w.send, types(res.Send)); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
	if len(w.awaiting) > 0 || len(res.Saga.Awaiting) > 0 {
		if diff := cmp.Diff(w.awaiting, res.Saga.Awaiting); diff != "" {
			t.Errorf("awaiting (-want +got):\n%s", diff)
		}
	}
	if res.RideChanged != (r.Version == before.r.Version+1) || (!res.RideChanged && r.Version != before.r.Version) {
		t.Errorf("RideChanged = %v, version %d → %d", res.RideChanged, before.r.Version, r.Version)
	}
	rideMoved := r.Status != before.r.Status || r.DriverID != before.r.DriverID || r.Reason != before.r.Reason
	if rideMoved && !res.RideChanged {
		t.Errorf("the ride changed but RideChanged is false")
	}
	if len(res.Saga.History) != min(len(before.s.History)+1, dispatch.MaxHistory) || !res.Saga.UpdatedAt.Equal(now) {
		t.Errorf("history %d steps after %d, updated %v", len(res.Saga.History), len(before.s.History), res.Saga.UpdatedAt)
	}
	if dispatch.Terminal(res.Saga.State) && (res.Saga.Offer != nil || res.Saga.PaymentToken != "") {
		t.Errorf("a terminal saga keeps an offer or a token")
	}
}

// checkPayable fails the test when a payments command does not name the ride as
// its payable: payments would file it as an order's, and its answer — an order's
// event — would never reach the saga.
func checkPayable(t *testing.T, sent []message.Outgoing) {
	t.Helper()
	for _, o := range sent {
		var got payments.Payable
		switch p := o.Payload.(type) {
		case payments.AuthorizePayment:
			got = p.Payable
		case payments.VoidPayment:
			got = p.Payable
		default:
			continue
		}
		if got != payments.PayableRide {
			t.Errorf("%s names payable %q, want %q", o.Type, got, payments.PayableRide)
		}
	}
}

// Every path that ends a ride without a trip releases the authorization: the saga
// either never had one (declined) or sends VoidPayment — or captures only the fee.
func TestEveryFailurePathReleasesTheAuthorization(t *testing.T) {
	for _, path := range []struct {
		name string
		msgs []any
	}{
		{"declined", seq(declined)},
		{"payments silent", seq(timeout, timeout, timeout)},
		{"no driver: declines", seq(authorized, found, decline, found, declineD2)},
		{"no driver: offers time out", seq(authorized, found, timeout, found, timeout)},
		{"rider cancels while searching", seq(authorized, cancel)},
		{"rider cancels once assigned", seq(inTrip, cancel)},
		{"driver cancels", seq(inTrip, arrive, cancelDriver)},
	} {
		t.Run(path.name, func(t *testing.T) {
			r := newRide()
			s, _ := dispatch.Start(r, "tok_visa", t0, timing)
			now := t0
			var sent []string
			for _, m := range path.msgs {
				now = now.Add(time.Second)
				if _, ok := m.(dispatch.Timeout); ok && s.Deadline.After(now) {
					now = s.Deadline
				}
				res, err := dispatch.Apply(s, r, m, now, timing)
				if err != nil {
					t.Fatalf("%T: %v", m, err)
				}
				s, r, sent = res.Saga, res.Ride, append(sent, types(res.Send)...)
				checkPayable(t, res.Send)
			}
			if r.Status != rides.StatusCancelled {
				t.Fatalf("ride %s, want cancelled", r.Status)
			}
			if s.Authorized && !slices.Contains(sent, cVoid) {
				t.Errorf("authorized, but no VoidPayment sent: %v", sent)
			}
			if slices.Contains(sent, cCapture) {
				t.Errorf("captured on a free failure path: %v", sent)
			}
			if r.DriverID != "" && !slices.Contains(sent, cRelease) {
				t.Errorf("the driver is not released: %v", sent)
			}
		})
	}
}

// BenchmarkApply measures one step of the state machine: an offer accepted.
func BenchmarkApply(b *testing.B) {
	r := newRide()
	s, _ := dispatch.Start(r, "tok_visa", t0, timing)
	for _, m := range seq(authorized, found) {
		res, _ := dispatch.Apply(s, r, m, t0.Add(time.Second), timing)
		s, r = res.Saga, res.Ride
	}
	for b.Loop() {
		if _, err := dispatch.Apply(s, r, accept, t0.Add(2*time.Second), timing); err != nil {
			b.Fatal(err)
		}
	}
}
