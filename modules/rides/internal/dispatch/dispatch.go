// Package dispatch is a ride's dispatch saga as a pure state machine: Apply takes a
// saga, its ride and one incoming message (a payments or fleet event, the drivers
// found near the pickup, a driver's answer or trip action, a cancellation, or the
// step's deadline passing) and returns the new saga, the changed ride and the
// messages to send. It does no I/O, so every (state, message) pair is tested
// directly; the trips package stores what it returns, in one transaction with the
// message's inbox record.
//
// The states and what moves them:
//
//	authorizing + PaymentAuthorized       → offering, searching (the deadline is now: search at once)
//	authorizing + PaymentDeclined         → failed (payment_declined; nothing is held)
//	authorizing + Timeout, attempts left  → authorizing, AuthorizePayment sent again
//	authorizing + Timeout, none left      → settling → failed (VoidPayment)
//	offering    + Candidates (searching)  → offering, the ride offered to the nearest driver not yet asked
//	offering    + Candidates, none        → offering, searching again after SearchRetry
//	offering    + Answer accept           → engaging (driver assigned; EngageDriver);
//	              an answer by another driver, or after the offer expired, is ErrNoOffer
//	offering    + Answer decline, Busy, Timeout (offer open) → offering, searching (driver excluded)
//	offering    + past MaxOffers or GiveUpAt → settling → failed (no_driver; VoidPayment)
//	engaging    + DriverAvailabilityChanged busy with this ride → trip (DriverAssigned)
//	engaging    + DriverEngagementFailed, or Timeout with no attempts left → offering, searching
//	              (driver unassigned and excluded; ReleaseDriver)
//	trip        + Advance arrive/start     → trip (ride arriving, in_trip)
//	trip        + Advance complete         → settling → completed (CapturePayment, ReleaseDriver)
//	authorizing, offering, engaging, trip (before in_trip) + Cancel → settling → cancelled
//	              (VoidPayment, or CapturePayment of the fee after the grace period; ReleaseDriver)
//	settling    + the awaited PaymentVoided or PaymentCaptured → its target
//	settling    + Timeout                  → settling, the awaited commands sent again (capped backoff)
//
// On every path that ends without a trip the authorization is voided (or was never
// made). Messages that arrive late or twice change nothing, except that a payment
// authorized for a ride no longer going ahead is voided, and a driver engaged for a
// cancelled ride is released again.
package dispatch

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agora-commerce/agora/internal/history"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/rides"
)

// Ack is an acknowledgement the settling saga waits for: the name of the event that
// acknowledges a command it sent.
type Ack string

// The acknowledgements a saga may wait for.
var (
	AckCaptured = Ack(payments.PaymentCapturedEvent.Name())
	AckVoided   = Ack(payments.PaymentVoidedEvent.Name())
)

// MaxHistory bounds the steps a saga keeps: the first and the most recent ones.
const MaxHistory = 200

// Saga is a dispatch saga's durable state.
type Saga struct {
	RideID  string              `json:"ride_id"`
	RiderID string              `json:"rider_id"`
	State   rides.DispatchState `json:"state"`
	// Target is the terminal state settling ends in.
	Target   rides.DispatchState `json:"target,omitempty"`
	Attempts int                 `json:"attempts"`
	// Deadline is when the current step times out; while searching, when the next
	// search is due.
	Deadline time.Time `json:"deadline"`
	// GiveUpAt bounds the search for a driver: set when the fare is authorized.
	GiveUpAt time.Time `json:"give_up_at,omitzero"`
	// PaymentToken is kept until the fare is authorized or the ride ends; never logged.
	PaymentToken string               `json:"payment_token,omitempty"`
	Fare         rides.Money          `json:"fare"`
	Authorized   bool                 `json:"authorized"` // PaymentAuthorized was taken into the flow
	Offer        *rides.Offer         `json:"offer,omitempty"`
	Offers       int                  `json:"offers"`
	Declined     []string             `json:"declined,omitempty"` // drivers asked who did not take the ride
	DriverID     string               `json:"driver_id,omitempty"`
	Awaiting     []Ack                `json:"awaiting,omitempty"`
	FeeCharged   int64                `json:"fee_charged,omitempty"`
	History      []rides.DispatchStep `json:"history"`
	CreatedAt    time.Time            `json:"created_at"`
	UpdatedAt    time.Time            `json:"updated_at"`
}

// Terminal reports whether state is one a saga ends in.
func Terminal(state rides.DispatchState) bool {
	return state == rides.DispatchCompleted || state == rides.DispatchCancelled || state == rides.DispatchFailed
}

// Terminal reports whether the saga has ended.
func (s Saga) Terminal() bool { return Terminal(s.State) }

// Searching reports whether the saga looks for a driver to offer the ride to.
func (s Saga) Searching() bool { return s.State == rides.DispatchOffering && s.Offer == nil }

// View returns the saga as the contract shows it (no token, no internals).
func (s Saga) View() rides.Dispatch {
	h := slices.Clone(s.History)
	if h == nil {
		h = []rides.DispatchStep{}
	}
	return rides.Dispatch{RideID: s.RideID, State: s.State, Offers: s.Offers, Deadline: s.Deadline, History: h,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// Timing is how long the saga waits, how often it tries and what a late
// cancellation costs.
type Timing struct {
	StepTimeout     time.Duration // wait for payments or fleet before sending again
	MaxAttempts     int           // sends of a command before giving up on it
	OfferTimeout    time.Duration // how long a driver has to answer an offer
	MaxOffers       int           // offers made before giving up with no_driver
	DispatchTimeout time.Duration // the longest search for a driver, from the authorization
	SearchRetry     time.Duration // wait before searching again when nobody is near
	CancelGrace     time.Duration // a rider cancels for free this long after assignment
	CancelFee       int64         // minor units charged for a later cancellation (at most the fare)
}

// Candidates are the available drivers found near the pickup, nearest first.
type Candidates struct{ Drivers []fleet.Candidate }

// Answer is a driver's answer to an offer.
type Answer struct {
	DriverID string
	Accept   bool
}

// Busy says the driver who accepted is assigned to another active ride: the
// database refused the assignment, so the answer counts as a decline.
type Busy struct{ DriverID string }

// Advance is the assigned driver's trip action (rides.ActionArrive, …).
type Advance struct {
	DriverID string
	Action   string
}

// Cancel is a request to cancel the ride. ByDriver: the assigned driver asks;
// ByAdmin: an operator does (never charged).
type Cancel struct {
	Actor    string
	Reason   string
	ByDriver bool
	ByAdmin  bool
}

// Timeout says the current step's deadline has passed.
type Timeout struct{}

// Result is what Apply decided.
type Result struct {
	Saga        Saga
	Ride        rides.Ride
	RideChanged bool               // Ride differs from the one given (its Version is one higher)
	Send        []message.Outgoing // commands and events to write to the outbox
}

// Start returns the saga of a newly requested ride (authorizing) and the messages
// that start it: AuthorizePayment and RideRequested.
func Start(r rides.Ride, token string, now time.Time, t Timing) (Saga, []message.Outgoing) {
	s := Saga{RideID: r.ID, RiderID: r.RiderID, State: rides.DispatchAuthorizing, Attempts: 1,
		Deadline: now.Add(t.StepTimeout), PaymentToken: token, Fare: r.Fare, CreatedAt: now, UpdatedAt: now}
	auth := s.authorize()
	s.History = []rides.DispatchStep{{At: now, State: s.State, Message: rides.RequestRideRequest.Name(),
		Note: "ride requested; sent " + auth.Type}}
	return s, []message.Outgoing{auth, rides.RideRequestedEvent.With(rides.RideRequested{RideID: r.ID,
		RiderID: r.RiderID, Pickup: r.Pickup, Fare: r.Fare})}
}

func (s Saga) authorize() message.Outgoing {
	return payments.AuthorizePaymentCommand.With(payments.AuthorizePayment{PayableID: s.RideID, Payable: payments.PayableRide,
		CustomerID: s.RiderID, Amount: s.Fare, PaymentToken: s.PaymentToken})
}

// step is one Apply in progress.
type step struct {
	s       Saga
	r       rides.Ride
	changed bool
	send    []message.Outgoing
	events  []func(rides.Ride) message.Outgoing // built at the end, from the final ride
	notes   []string
	now     time.Time
	t       Timing
}

func (x *step) note(format string, args ...any) {
	x.notes = append(x.notes, fmt.Sprintf(format, args...))
}

func (x *step) command(out message.Outgoing) {
	x.send = append(x.send, out)
	x.note("sent %s", out.Type)
}

func (x *step) ignore(why string) { x.note("ignored: %s", why) }

// enter moves the saga to state, waiting StepTimeout for the first send's answer.
func (x *step) enter(state rides.DispatchState) {
	x.s.State = state
	x.s.Attempts = 1
	x.s.Deadline = x.now.Add(x.t.StepTimeout)
}

// finish moves the saga to a terminal state.
func (x *step) finish(state rides.DispatchState) {
	x.s.State = state
	x.s.Awaiting = nil
	x.s.Offer = nil
	x.s.PaymentToken = ""
	x.s.Deadline = x.now
}

func (x *step) touchRide() {
	if !x.changed {
		x.r.Version++
		x.changed = true
	}
	x.r.UpdatedAt = x.now
}

func (x *step) setRide(status rides.Status, reason string) {
	x.r.Status = status
	x.r.Reason = reason
	x.touchRide()
}

// Apply applies msg to saga s of ride r at now. msg is one of the payments and
// fleet events the saga subscribes to, Candidates, Answer, Busy, Advance, Cancel or
// Timeout. It fails only for Answer (ErrNoOffer), Advance (ErrRideNotFound,
// ErrWrongStatus, ErrInvalidInput) and Cancel (ErrNotCancellable); an unexpected
// message is recorded in the history and ignored.
func Apply(s Saga, r rides.Ride, msg any, now time.Time, t Timing) (Result, error) {
	x := &step{s: s, r: r, now: now, t: t}
	x.s.Declined = slices.Clone(s.Declined)
	name, err := x.apply(msg)
	if err != nil {
		return Result{}, err
	}
	if x.changed {
		for _, ev := range x.events {
			x.send = append(x.send, ev(x.r))
		}
	}
	x.s.UpdatedAt = now
	x.s.History = history.Append(x.s.History, rides.DispatchStep{At: now, State: x.s.State, Message: name,
		Note: strings.Join(x.notes, "; ")}, MaxHistory)
	return Result{Saga: x.s, Ride: x.r, RideChanged: x.changed, Send: x.send}, nil
}

func (x *step) apply(msg any) (string, error) {
	switch m := msg.(type) {
	case payments.PaymentAuthorized:
		x.paymentAuthorized()
		return payments.PaymentAuthorizedEvent.Name(), nil
	case payments.PaymentDeclined:
		x.paymentDeclined(m)
		return payments.PaymentDeclinedEvent.Name(), nil
	case payments.PaymentCaptured:
		x.acknowledged(AckCaptured)
		return payments.PaymentCapturedEvent.Name(), nil
	case payments.PaymentVoided:
		x.acknowledged(AckVoided)
		return payments.PaymentVoidedEvent.Name(), nil
	case fleet.DriverAvailabilityChanged:
		x.availabilityChanged(m)
		return fleet.DriverAvailabilityChangedEvent.Name(), nil
	case fleet.DriverEngagementFailed:
		x.engagementFailed(m)
		return fleet.DriverEngagementFailedEvent.Name(), nil
	case Candidates:
		x.candidates(m)
		return "search", nil
	case Answer:
		return rides.AnswerOfferRequest.Name(), x.answer(m)
	case Busy:
		x.busy(m)
		return "assignment refused", nil
	case Advance:
		return rides.AdvanceTripRequest.Name(), x.advance(m)
	case Cancel:
		return rides.CancelRideRequest.Name(), x.cancel(m)
	case Timeout:
		x.timeout()
		return "timeout", nil
	default:
		x.ignore(fmt.Sprintf("unknown message %T", msg))
		return fmt.Sprintf("%T", msg), nil
	}
}
