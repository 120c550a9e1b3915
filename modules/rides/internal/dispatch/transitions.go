package dispatch

import (
	"slices"
	"strings"
	"time"

	"github.com/agora-commerce/agora/internal/backoff"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/rides"
)

func (x *step) void(reason string) message.Outgoing {
	return payments.VoidPaymentCommand.With(payments.VoidPayment{PayableID: x.s.RideID, Payable: payments.PayableRide, Reason: reason})
}

func (x *step) capture(amount int64) message.Outgoing {
	return payments.CapturePaymentCommand.With(payments.CapturePayment{PayableID: x.s.RideID, Amount: amount})
}

func (x *step) engage() message.Outgoing {
	return fleet.EngageDriverCommand.With(fleet.EngageDriver{DriverID: x.s.DriverID, RideID: x.s.RideID})
}

func (x *step) release(driverID string) message.Outgoing {
	return fleet.ReleaseDriverCommand.With(fleet.ReleaseDriver{DriverID: driverID, RideID: x.s.RideID})
}

func cancelled(fee *rides.Money) func(rides.Ride) message.Outgoing {
	return func(r rides.Ride) message.Outgoing {
		return rides.RideCancelledEvent.With(rides.RideCancelled{RideID: r.ID, RiderID: r.RiderID, DriverID: r.DriverID,
			Reason: r.Reason, Fee: fee})
	}
}

func (x *step) paymentAuthorized() {
	switch {
	case x.s.State == rides.DispatchAuthorizing:
		x.s.Authorized = true
		x.s.PaymentToken = ""
		x.s.State = rides.DispatchOffering
		x.s.Attempts = 0
		x.s.GiveUpAt = x.now.Add(x.t.DispatchTimeout)
		x.s.Deadline = x.now // search at once
		x.note("fare authorized; searching for a driver")
	case x.s.Authorized:
		x.ignore("the fare was already authorized")
	default:
		// The ride is no longer going ahead (cancelled while authorizing): release
		// the hold. Nothing waits for this void; it is payments' to carry through.
		x.s.Authorized = true
		x.note("fare authorized for a ride that is not going ahead")
		x.command(x.void("late authorization for a ride that ended"))
	}
}

func (x *step) paymentDeclined(m payments.PaymentDeclined) {
	if x.s.State != rides.DispatchAuthorizing {
		x.ignore("not waiting for a payment")
		return
	}
	if m.Message != "" {
		x.note("declined: %s", m.Message)
	}
	x.finish(rides.DispatchFailed)
	x.setRide(rides.StatusCancelled, rides.ReasonPaymentDeclined)
	x.events = append(x.events, cancelled(nil))
}

// settle moves the saga to settling towards target, waiting for ack of out.
func (x *step) settle(target rides.DispatchState, ack Ack, out message.Outgoing) {
	x.enter(rides.DispatchSettling)
	x.s.Target = target
	x.s.Offer = nil
	x.s.PaymentToken = ""
	x.s.Awaiting = []Ack{ack}
	x.command(out)
}

// fail ends a ride the system could not serve: cancelled with reason, the
// authorization voided.
func (x *step) fail(reason string) {
	x.settle(rides.DispatchFailed, AckVoided, x.void(reason))
	x.setRide(rides.StatusCancelled, reason)
	x.events = append(x.events, cancelled(nil))
}

// acknowledged takes an acknowledgement: when it is awaited, settling ends.
func (x *step) acknowledged(ack Ack) {
	i := slices.Index(x.s.Awaiting, ack)
	if i < 0 {
		x.ignore("not waiting for it")
		return
	}
	x.s.Awaiting = slices.Delete(slices.Clone(x.s.Awaiting), i, i+1)
	if len(x.s.Awaiting) == 0 && x.s.State == rides.DispatchSettling {
		x.finish(x.s.Target)
	}
}

// exhausted reports whether the search for a driver must end.
func (x *step) exhausted() bool {
	return x.s.Offers >= x.t.MaxOffers || !x.now.Before(x.s.GiveUpAt)
}

// searchAgain closes the open offer (or engagement) and searches again at once —
// or gives up with no_driver when the bounds are reached.
func (x *step) searchAgain() {
	x.s.Offer = nil
	if x.exhausted() {
		x.note("no driver after %d offers", x.s.Offers)
		x.fail(rides.ReasonNoDriver)
		return
	}
	x.s.State = rides.DispatchOffering
	x.s.Attempts = 0
	x.s.Deadline = x.now
}

func (x *step) exclude(driverID string) {
	if !slices.Contains(x.s.Declined, driverID) {
		x.s.Declined = append(x.s.Declined, driverID)
	}
}

func (x *step) candidates(m Candidates) {
	if !x.s.Searching() {
		x.ignore("not searching")
		return
	}
	if x.exhausted() {
		x.note("no driver after %d offers", x.s.Offers)
		x.fail(rides.ReasonNoDriver)
		return
	}
	for _, c := range m.Drivers {
		if slices.Contains(x.s.Declined, c.DriverID) {
			continue
		}
		x.s.Offers++
		x.s.Offer = &rides.Offer{RideID: x.s.RideID, DriverID: c.DriverID, Pickup: x.r.Pickup, Dropoff: x.r.Dropoff,
			Fare: x.s.Fare, PickupDistanceMeters: int64(c.DistanceMeters), ExpiresAt: x.now.Add(x.t.OfferTimeout)}
		x.s.Deadline = x.s.Offer.ExpiresAt
		x.note("offered to %s (%d m away), offer %d", c.DriverID, int64(c.DistanceMeters), x.s.Offers)
		return
	}
	x.s.Deadline = x.now.Add(x.t.SearchRetry)
	if x.s.GiveUpAt.Before(x.s.Deadline) {
		x.s.Deadline = x.s.GiveUpAt // give up on time
	}
	x.note("no available driver near; searching again")
}

func (x *step) answer(a Answer) error {
	if x.s.State != rides.DispatchOffering || x.s.Offer == nil || x.s.Offer.DriverID != a.DriverID {
		return rides.ErrNoOffer
	}
	if !x.now.Before(x.s.Offer.ExpiresAt) {
		// The sweep has not closed it yet, but the driver's time is up.
		return rides.ErrNoOffer.Withf("the offer expired")
	}
	if !a.Accept {
		x.note("%s declined", a.DriverID)
		x.exclude(a.DriverID)
		x.searchAgain()
		return nil
	}
	x.s.Offer = nil
	x.s.DriverID = a.DriverID
	x.enter(rides.DispatchEngaging)
	x.r.DriverID = a.DriverID
	x.r.AssignedAt = x.now
	x.setRide(rides.StatusDriverAssigned, "")
	x.note("%s accepted", a.DriverID)
	x.command(x.engage())
	return nil
}

func (x *step) busy(b Busy) {
	if x.s.State != rides.DispatchOffering || x.s.Offer == nil || x.s.Offer.DriverID != b.DriverID {
		x.ignore("no open offer to " + b.DriverID)
		return
	}
	x.note("%s is on another ride", b.DriverID)
	x.exclude(b.DriverID)
	x.searchAgain()
}

func (x *step) availabilityChanged(m fleet.DriverAvailabilityChanged) {
	if m.Status == fleet.StatusBusy && m.RideID == x.s.RideID && m.DriverID != "" && m.DriverID == x.s.DriverID &&
		x.r.Status == rides.StatusCancelled {
		// Engaged after the ride was cancelled (the release overtook the
		// engagement): release the driver again, so nobody stays busy for nothing.
		x.note("driver engaged for a cancelled ride")
		x.command(x.release(m.DriverID))
		return
	}
	if x.s.State != rides.DispatchEngaging || m.DriverID != x.s.DriverID || m.Status != fleet.StatusBusy || m.RideID != x.s.RideID {
		x.ignore("not an engagement awaited")
		return
	}
	x.s.State = rides.DispatchTrip
	x.s.Attempts = 0
	x.s.Deadline = x.now
	x.note("driver engaged")
	x.touchRide()
	x.events = append(x.events, func(r rides.Ride) message.Outgoing {
		return rides.DriverAssignedEvent.With(rides.DriverAssigned{RideID: r.ID, RiderID: r.RiderID, DriverID: r.DriverID})
	})
}

func (x *step) engagementFailed(m fleet.DriverEngagementFailed) {
	if x.s.State != rides.DispatchEngaging || m.DriverID != x.s.DriverID || m.RideID != x.s.RideID {
		x.ignore("not an engagement awaited")
		return
	}
	x.note("engagement failed: %s", m.Reason)
	x.unassign()
}

// unassign takes the ride from a driver who could not be engaged and searches again.
func (x *step) unassign() {
	x.command(x.release(x.s.DriverID))
	x.exclude(x.s.DriverID)
	x.s.DriverID = ""
	x.r.DriverID = ""
	x.r.AssignedAt = time.Time{}
	x.setRide(rides.StatusRequested, "")
	x.searchAgain()
}

func (x *step) advance(a Advance) error {
	if a.DriverID == "" || a.DriverID != x.r.DriverID {
		return rides.ErrRideNotFound
	}
	next := map[string][2]rides.Status{
		rides.ActionArrive:   {rides.StatusDriverAssigned, rides.StatusArriving},
		rides.ActionStart:    {rides.StatusArriving, rides.StatusInTrip},
		rides.ActionComplete: {rides.StatusInTrip, rides.StatusCompleted},
	}
	move, ok := next[a.Action]
	if !ok {
		return rides.ErrInvalidInput.Withf("unknown trip action %q", a.Action)
	}
	if x.s.State != rides.DispatchTrip || x.r.Status != move[0] {
		if x.s.State == rides.DispatchEngaging {
			return rides.ErrWrongStatus.Withf("the ride's engagement is being confirmed; try again in a moment")
		}
		return rides.ErrWrongStatus.Withf("cannot %s a ride that is %s", a.Action, x.r.Status)
	}
	x.setRide(move[1], "")
	switch a.Action {
	case rides.ActionArrive:
		x.events = append(x.events, func(r rides.Ride) message.Outgoing {
			return rides.DriverArrivingEvent.With(rides.DriverArriving{RideID: r.ID, RiderID: r.RiderID, DriverID: r.DriverID})
		})
	case rides.ActionStart:
		x.events = append(x.events, func(r rides.Ride) message.Outgoing {
			return rides.TripStartedEvent.With(rides.TripStarted{RideID: r.ID, RiderID: r.RiderID, DriverID: r.DriverID})
		})
	case rides.ActionComplete:
		x.complete()
	}
	return nil
}

// complete ends the trip: the fare captured, the driver released.
func (x *step) complete() {
	fare := x.s.Fare
	x.r.Charged = &fare
	x.r.CompletedAt = x.now
	x.settle(rides.DispatchCompleted, AckCaptured, x.capture(0))
	x.command(x.release(x.s.DriverID))
	x.events = append(x.events, func(r rides.Ride) message.Outgoing {
		return rides.RideCompletedEvent.With(rides.RideCompleted{RideID: r.ID, RiderID: r.RiderID, DriverID: r.DriverID,
			Fare: r.Fare, DistanceMeters: r.DistanceMeters, DurationSeconds: r.DurationSeconds})
	})
}

func (x *step) cancel(c Cancel) error {
	if x.r.Final() || x.r.Status == rides.StatusInTrip || x.s.State == rides.DispatchSettling || x.s.Terminal() {
		return rides.ErrNotCancellable.Withf("the ride is %s and can no longer be cancelled", x.r.Status)
	}
	reason := rides.ReasonRiderCancelled
	if c.ByDriver {
		reason = rides.ReasonDriverCancelled
	}
	if c.Actor != "" {
		x.note("asked by %s", c.Actor)
	}
	if r := strings.TrimSpace(c.Reason); r != "" {
		x.note("%s", r)
	}
	driver := x.s.DriverID
	late := driver != "" && !c.ByDriver && !c.ByAdmin && x.now.Sub(x.r.AssignedAt) > x.t.CancelGrace
	var fee *rides.Money
	if late && x.t.CancelFee > 0 {
		fee = &rides.Money{Amount: min(x.t.CancelFee, x.s.Fare.Amount), Currency: x.s.Fare.Currency}
		x.s.FeeCharged = fee.Amount
		x.r.Charged = fee
		x.settle(rides.DispatchCancelled, AckCaptured, x.capture(fee.Amount))
	} else {
		x.settle(rides.DispatchCancelled, AckVoided, x.void(reason))
	}
	if driver != "" {
		x.command(x.release(driver))
	}
	x.setRide(rides.StatusCancelled, reason)
	x.events = append(x.events, cancelled(fee))
	return nil
}

func (x *step) timeout() {
	if x.s.Terminal() || x.s.State == rides.DispatchTrip {
		x.ignore("no step is waiting")
		return
	}
	switch {
	case x.s.Searching():
		x.candidates(Candidates{}) // the search found nobody
	case x.s.State == rides.DispatchOffering:
		x.note("offer to %s timed out", x.s.Offer.DriverID)
		x.exclude(x.s.Offer.DriverID)
		x.searchAgain()
	case x.s.Attempts >= x.t.MaxAttempts && x.s.State == rides.DispatchAuthorizing:
		x.note("payments did not answer after %d attempts", x.s.Attempts)
		x.fail(rides.ReasonPaymentDeclined)
	case x.s.Attempts >= x.t.MaxAttempts && x.s.State == rides.DispatchEngaging:
		x.note("fleet did not engage the driver after %d attempts", x.s.Attempts)
		x.unassign()
	default:
		x.resend()
	}
}

// resend sends the current step's unanswered commands again; receivers are
// idempotent per ride, so this has no second effect.
func (x *step) resend() {
	switch x.s.State {
	case rides.DispatchAuthorizing:
		x.command(x.s.authorize())
	case rides.DispatchEngaging:
		x.command(x.engage())
	case rides.DispatchSettling:
		for _, a := range x.s.Awaiting {
			switch a {
			case AckVoided:
				x.command(x.void(x.r.Reason))
			case AckCaptured:
				x.command(x.capture(x.s.FeeCharged))
			}
		}
	}
	x.s.Attempts++
	if x.s.State == rides.DispatchSettling {
		x.s.Deadline = x.now.Add(backoff.Step(x.t.StepTimeout, x.s.Attempts))
	} else {
		x.s.Deadline = x.now.Add(x.t.StepTimeout)
	}
	x.note("attempt %d", x.s.Attempts)
}
