// Package rides is the contract of the rides module: quotes, ride requests, the
// dispatch saga that finds a driver, and the trip. Other modules use this package —
// its messages, replies, events and errors — and nothing else of rides.
//
// A rider asks for a Quote (distance, duration, fare with the surge of the pickup's
// cell) and requests a ride (RequestRide, idempotent per rider and key). The ride is
// stored as requested together with its dispatch saga and the saga's first command,
// and the saga runs on messages:
//
//	authorize the fare (payments.AuthorizePayment)
//	  → find the nearest available drivers (fleet.FindNearest)
//	  → offer the ride to one driver at a time, each offer with a timeout
//	  → the first to accept is engaged (fleet.EngageDriver): driver_assigned.
//
// A decline or an offer timing out moves to the next driver; after a bound on offers
// or on time the ride is cancelled with reason no_driver and the authorization is
// voided — on every failure path the authorization is released. The trip then
// moves on the driver's actions (AdvanceTrip):
//
//	driver_assigned → arriving (at the pickup) → in_trip → completed (fare captured)
//
// A rider may cancel before the trip starts: free within the grace period after
// assignment (authorization voided), for the cancellation fee afterwards (the fee is
// captured). Exactly one driver per ride and at most one active ride per driver and
// per rider hold under concurrency and restarts.
package rides

import (
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// Money is an amount in minor units and its currency; every module shares the one type.
type Money = message.Money

// Point is a place in WGS 84 degrees; every module shares the one type.
type Point = message.Point

// Limits on what rides accepts.
const (
	MaxPaymentTokenLen   = 100
	MaxIdempotencyKeyLen = 200
	MaxPageSize          = 100
	MaxReasonLen         = 500
)

// Status is where a ride stands, as its rider sees it.
type Status string

// Ride statuses; the last two are final.
const (
	StatusRequested      Status = "requested"       // finding a driver
	StatusDriverAssigned Status = "driver_assigned" // a driver accepted and is on the way
	StatusArriving       Status = "arriving"        // the driver is at the pickup
	StatusInTrip         Status = "in_trip"
	StatusCompleted      Status = "completed"
	StatusCancelled      Status = "cancelled"
)

// Why a ride was cancelled.
const (
	ReasonNoDriver        = "no_driver"        // no driver accepted within the bounds
	ReasonPaymentDeclined = "payment_declined" // the fare could not be authorized
	ReasonRiderCancelled  = "rider_cancelled"
	ReasonDriverCancelled = "driver_cancelled"
)

// Quote is what a ride from Pickup to Dropoff costs now.
type Quote struct {
	Pickup          Point   `json:"pickup"`
	Dropoff         Point   `json:"dropoff"`
	DistanceMeters  int64   `json:"distance_meters"`
	DurationSeconds int64   `json:"duration_seconds" doc:"the trip's estimated duration"`
	PickupETA       int64   `json:"pickup_eta_seconds" doc:"estimated seconds until the nearest available driver reaches the pickup; -1 when none is near"`
	Surge           float64 `json:"surge" minimum:"1" doc:"the multiplier of the pickup's cell, from demand vs supply"`
	Fare            Money   `json:"fare"`
	// ExpiresAt bounds how long the fare holds: a ride requested later is priced again.
	ExpiresAt time.Time `json:"expires_at"`
}

// Ride is a ride as its rider (and its driver) see it.
type Ride struct {
	ID              string    `json:"id" format:"uuid"`
	RiderID         string    `json:"rider_id" format:"uuid"`
	DriverID        string    `json:"driver_id,omitempty" format:"uuid" doc:"present once a driver accepted"`
	Status          Status    `json:"status" enum:"requested,driver_assigned,arriving,in_trip,completed,cancelled"`
	Pickup          Point     `json:"pickup"`
	Dropoff         Point     `json:"dropoff"`
	DistanceMeters  int64     `json:"distance_meters"`
	DurationSeconds int64     `json:"duration_seconds"`
	Surge           float64   `json:"surge"`
	Fare            Money     `json:"fare" doc:"the fare quoted and authorized; captured on completion"`
	Charged         *Money    `json:"charged,omitempty" doc:"what was captured: the fare, or the cancellation fee"`
	Reason          string    `json:"reason,omitempty" doc:"why the ride was cancelled"`
	Version         int64     `json:"version" doc:"increases with every change"`
	CreatedAt       time.Time `json:"created_at"`
	AssignedAt      time.Time `json:"assigned_at,omitzero"`
	CompletedAt     time.Time `json:"completed_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// Final reports whether the ride has ended.
func (r Ride) Final() bool { return r.Status == StatusCompleted || r.Status == StatusCancelled }

// QuoteRide asks what a ride costs now.
type QuoteRide struct {
	Pickup  Point `json:"pickup"`
	Dropoff Point `json:"dropoff"`
}

// RequestRide asks for a ride. The same RiderID and IdempotencyKey return the ride
// the first request made (Replayed), or ErrIdempotencyKeyReused when RequestHash
// differs. A rider with an active ride gets ErrRiderBusy.
type RequestRide struct {
	RiderID        string `json:"rider_id"`
	Pickup         Point  `json:"pickup"`
	Dropoff        Point  `json:"dropoff"`
	PaymentToken   string `json:"payment_token"`
	IdempotencyKey string `json:"idempotency_key"`
	RequestHash    string `json:"request_hash"`
}

// Requested is the reply to RequestRide.
type Requested struct {
	Ride     Ride `json:"ride"`
	Replayed bool `json:"replayed"`
}

// GetRide asks for a ride by id.
type GetRide struct {
	ID string `json:"id"`
}

// WaitRide asks for a ride once its Version is above AfterVersion, or as it is when
// Wait has passed (a long poll: the rider's event stream is made of them).
type WaitRide struct {
	ID           string        `json:"id"`
	AfterVersion int64         `json:"after_version"`
	Wait         time.Duration `json:"wait"`
}

// ListRides asks for a page of rides, newest first: a rider's, a driver's, or
// everyone's when both are empty (admins).
type ListRides struct {
	RiderID  string `json:"rider_id"`
	DriverID string `json:"driver_id"`
	Before   string `json:"before"` // the last id of the previous page
	Limit    int    `json:"limit"`
}

// RidePage is the reply to ListRides. NextBefore is empty on the last page.
type RidePage struct {
	Items      []Ride `json:"items"`
	NextBefore string `json:"next_before"`
}

// CancelRide cancels a ride before its trip starts. Actor is who asks (the rider,
// the assigned driver, or an admin).
type CancelRide struct {
	ID     string `json:"id"`
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

// Offer is a ride offered to a driver, open until ExpiresAt.
type Offer struct {
	RideID               string    `json:"ride_id" format:"uuid"`
	DriverID             string    `json:"driver_id" format:"uuid"`
	Pickup               Point     `json:"pickup"`
	Dropoff              Point     `json:"dropoff"`
	Fare                 Money     `json:"fare"`
	PickupDistanceMeters int64     `json:"pickup_distance_meters"`
	ExpiresAt            time.Time `json:"expires_at"`
}

// WaitOffer asks for the offer open to DriverID, waiting up to Wait for one (a long
// poll: the driver's stream is made of them). The reply's Offer is nil when none
// came in time.
type WaitOffer struct {
	DriverID string        `json:"driver_id"`
	Wait     time.Duration `json:"wait"`
}

// OpenOffer is the reply to WaitOffer.
type OpenOffer struct {
	Offer *Offer `json:"offer,omitempty"`
}

// AnswerOffer is a driver's answer to the offer of RideID: ErrNoOffer when it is not
// open to DriverID (expired, answered, or never made).
type AnswerOffer struct {
	RideID   string `json:"ride_id"`
	DriverID string `json:"driver_id"`
	Accept   bool   `json:"accept"`
}

// Trip actions a ride's driver takes.
const (
	ActionArrive   = "arrive"   // at the pickup: driver_assigned → arriving
	ActionStart    = "start"    // rider aboard: arriving → in_trip
	ActionComplete = "complete" // at the drop-off: in_trip → completed
)

// AdvanceTrip is the assigned driver moving the trip on; an action that does not
// follow the ride's status fails with ErrWrongStatus.
type AdvanceTrip struct {
	RideID   string `json:"ride_id"`
	DriverID string `json:"driver_id"`
	Action   string `json:"action"`
}

// DispatchState is where a ride's dispatch saga stands.
type DispatchState string

// Dispatch saga states; the last three are terminal.
const (
	DispatchAuthorizing DispatchState = "authorizing" // waiting for payments
	DispatchOffering    DispatchState = "offering"    // an offer is open to a driver
	DispatchEngaging    DispatchState = "engaging"    // a driver accepted; waiting for fleet
	DispatchTrip        DispatchState = "trip"        // driver engaged; the trip runs
	DispatchSettling    DispatchState = "settling"    // capturing or voiding, releasing the driver
	DispatchCompleted   DispatchState = "completed"
	DispatchCancelled   DispatchState = "cancelled"
	DispatchFailed      DispatchState = "failed" // cancelled by the system (no driver, payment declined)
)

// DispatchStep is one thing that happened to a dispatch saga.
type DispatchStep struct {
	At      time.Time     `json:"at"`
	State   DispatchState `json:"state" doc:"the state after this step"`
	Message string        `json:"message" doc:"what moved it: a message type, timeout, or an action"`
	Note    string        `json:"note,omitempty"`
}

// Dispatch is a ride's dispatch saga and its history.
type Dispatch struct {
	RideID    string         `json:"ride_id" format:"uuid"`
	State     DispatchState  `json:"state"`
	Offers    int            `json:"offers" doc:"offers made so far"`
	Deadline  time.Time      `json:"deadline"`
	History   []DispatchStep `json:"history"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// GetDispatch asks for a ride's dispatch saga with its history.
type GetDispatch struct {
	RideID string `json:"ride_id"`
}

// ListDispatches asks for a page of dispatch sagas in a state (all when empty),
// oldest first.
type ListDispatches struct {
	State DispatchState `json:"state"`
	After string        `json:"after"`
	Limit int           `json:"limit"`
}

// DispatchPage is the reply to ListDispatches.
type DispatchPage struct {
	Items     []Dispatch `json:"items"`
	NextAfter string     `json:"next_after"`
}

// The rides module's requests.
var (
	// Handled by trips.(*Service).QuoteRide.
	QuoteRideRequest = message.NewRequest[QuoteRide, Quote]("rides.QuoteRide")
	// Handled by trips.(*Service).RequestRide.
	RequestRideRequest = message.NewRequest[RequestRide, Requested]("rides.RequestRide")
	// Handled by trips.(*Service).GetRide.
	GetRideRequest = message.NewRequest[GetRide, Ride]("rides.GetRide")
	// Handled by trips.(*Service).WaitRide.
	WaitRideRequest = message.NewRequest[WaitRide, Ride]("rides.WaitRide").Parked()
	// Handled by trips.(*Service).ListRides.
	ListRidesRequest = message.NewRequest[ListRides, RidePage]("rides.ListRides")
	// Handled by trips.(*Service).CancelRide.
	CancelRideRequest = message.NewRequest[CancelRide, Ride]("rides.CancelRide")
	// Handled by trips.(*Service).WaitOffer.
	WaitOfferRequest = message.NewRequest[WaitOffer, OpenOffer]("rides.WaitOffer").Parked()
	// Handled by trips.(*Service).AnswerOffer.
	AnswerOfferRequest = message.NewRequest[AnswerOffer, Ride]("rides.AnswerOffer")
	// Handled by trips.(*Service).AdvanceTrip.
	AdvanceTripRequest = message.NewRequest[AdvanceTrip, Ride]("rides.AdvanceTrip")
	// Handled by trips.(*Service).GetDispatch.
	GetDispatchRequest = message.NewRequest[GetDispatch, Dispatch]("rides.GetDispatch")
	// Handled by trips.(*Service).ListDispatches.
	ListDispatchesRequest = message.NewRequest[ListDispatches, DispatchPage]("rides.ListDispatches")
)

// RideRequested says a rider requested a ride.
type RideRequested struct {
	RideID  string `json:"ride_id"`
	RiderID string `json:"rider_id"`
	Pickup  Point  `json:"pickup"`
	Fare    Money  `json:"fare"`
}

// DriverAssigned says a driver accepted the ride and is engaged by it.
type DriverAssigned struct {
	RideID   string `json:"ride_id"`
	RiderID  string `json:"rider_id"`
	DriverID string `json:"driver_id"`
}

// DriverArriving says the driver is at the pickup.
type DriverArriving struct {
	RideID   string `json:"ride_id"`
	RiderID  string `json:"rider_id"`
	DriverID string `json:"driver_id"`
}

// TripStarted says the rider is aboard.
type TripStarted struct {
	RideID   string `json:"ride_id"`
	RiderID  string `json:"rider_id"`
	DriverID string `json:"driver_id"`
}

// RideCompleted says the trip ended at the drop-off and Fare was charged: the receipt.
type RideCompleted struct {
	RideID          string `json:"ride_id"`
	RiderID         string `json:"rider_id"`
	DriverID        string `json:"driver_id"`
	Fare            Money  `json:"fare"`
	DistanceMeters  int64  `json:"distance_meters"`
	DurationSeconds int64  `json:"duration_seconds"`
}

// RideCancelled says the ride ended without a trip, why, and the fee charged (nil:
// nothing was charged and the authorization is released).
type RideCancelled struct {
	RideID   string `json:"ride_id"`
	RiderID  string `json:"rider_id"`
	DriverID string `json:"driver_id,omitempty"`
	Reason   string `json:"reason"`
	Fee      *Money `json:"fee,omitempty"`
}

// The rides module's events.
var (
	// Handled by no module.
	RideRequestedEvent = message.NewEvent[RideRequested]("rides.RideRequested")
	// Handled by notifications: notices.(*Service).onDriverAssigned.
	DriverAssignedEvent = message.NewEvent[DriverAssigned]("rides.DriverAssigned")
	// Handled by notifications: notices.(*Service).onDriverArriving.
	DriverArrivingEvent = message.NewEvent[DriverArriving]("rides.DriverArriving")
	// Handled by no module.
	TripStartedEvent = message.NewEvent[TripStarted]("rides.TripStarted")
	// Handled by notifications: notices.(*Service).onRideCompleted.
	RideCompletedEvent = message.NewEvent[RideCompleted]("rides.RideCompleted")
	// Handled by notifications: notices.(*Service).onRideCancelled.
	RideCancelledEvent = message.NewEvent[RideCancelled]("rides.RideCancelled")
)

// Errors the rides module returns; errors.Is matches them on either side of the bus.
var (
	ErrRideNotFound         = message.NewError(message.NotFound, "rides.ride_not_found", "ride not found")
	ErrDispatchNotFound     = message.NewError(message.NotFound, "rides.dispatch_not_found", "no dispatch for this ride")
	ErrNoOffer              = message.NewError(message.Conflict, "rides.no_offer", "this ride is not offered to you (expired or answered)")
	ErrWrongStatus          = message.NewError(message.Conflict, "rides.wrong_status", "the ride's status does not allow this")
	ErrNotCancellable       = message.NewError(message.Conflict, "rides.not_cancellable", "the trip started or the ride ended; it cannot be cancelled")
	ErrRiderBusy            = message.NewError(message.Conflict, "rides.rider_busy", "you already have an active ride")
	ErrIdempotencyKeyReused = message.NewError(message.Invalid, "rides.idempotency_key_reused", "this Idempotency-Key was used with a different request")
	ErrOutOfArea            = message.NewError(message.Invalid, "rides.out_of_area", "outside the area served")
	ErrSamePlace            = message.NewError(message.Invalid, "rides.same_place", "pickup and drop-off are the same place")
	ErrInvalidInput         = message.NewError(message.Invalid, "rides.invalid_input", "invalid input")
)
