package notices

import (
	"fmt"

	"github.com/agora-commerce/agora/modules/rides"
)

// What a rider is told of their rides, one notification per event.

func driverAssigned(e rides.DriverAssigned) draft {
	ref := ShortID(e.RideID)
	return draft{CustomerID: e.RiderID, Kind: KindDriverAssigned, RideID: e.RideID,
		Title: "Your driver is on the way",
		Body:  "A driver accepted your ride " + ref + " and is on the way to the pickup."}
}

func driverArriving(e rides.DriverArriving) draft {
	ref := ShortID(e.RideID)
	return draft{CustomerID: e.RiderID, Kind: KindDriverArriving, RideID: e.RideID,
		Title: "Your driver is at the pickup",
		Body:  "Your driver for ride " + ref + " is waiting for you at the pickup."}
}

// rideCompleted is the ride's receipt.
func rideCompleted(e rides.RideCompleted) draft {
	ref := ShortID(e.RideID)
	return draft{CustomerID: e.RiderID, Kind: KindRideCompleted, RideID: e.RideID,
		Title: "Receipt for your ride " + ref,
		Body: "Thank you for riding with us. Your ride " + ref + ": " + Distance(e.DistanceMeters) + " in " +
			Duration(e.DurationSeconds) + ". Fare charged: " + e.Fare.String() + "."}
}

func rideCancelled(e rides.RideCancelled) draft {
	ref := ShortID(e.RideID)
	reason, ok := cancelReasons[e.Reason]
	if !ok {
		reason = e.Reason // a reason this version does not know: as rides said it
	}
	charge := " Nothing has been charged."
	if e.Fee != nil && e.Fee.Amount > 0 {
		charge = " A cancellation fee of " + e.Fee.String() + " has been charged."
	}
	return draft{CustomerID: e.RiderID, Kind: KindRideCancelled, RideID: e.RideID,
		Title: "Ride " + ref + " is cancelled",
		Body:  "Your ride " + ref + " has been cancelled" + because(reason) + charge}
}

// cancelReasons says the rides contract's cancellation reasons in a rider's words.
var cancelReasons = map[string]string{
	rides.ReasonNoDriver:        "no driver was available",
	rides.ReasonPaymentDeclined: "the payment was declined",
	rides.ReasonRiderCancelled:  "you cancelled it",
	rides.ReasonDriverCancelled: "the driver cancelled it",
}

// Distance says a distance in meters as a rider reads it: "850 m", "12.4 km".
func Distance(meters int64) string {
	if meters < 1000 {
		return fmt.Sprintf("%d m", max(meters, 0))
	}
	tenths := (meters + 50) / 100
	return fmt.Sprintf("%d.%d km", tenths/10, tenths%10)
}

// Duration says a duration in seconds as a rider reads it, to the minute (at least
// one): "1 min", "14 min", "1 h 05 min".
func Duration(seconds int64) string {
	minutes := max((seconds+30)/60, 1)
	if minutes < 60 {
		return fmt.Sprintf("%d min", minutes)
	}
	return fmt.Sprintf("%d h %02d min", minutes/60, minutes%60)
}
