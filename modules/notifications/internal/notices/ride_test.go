package notices_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/notifications"
	"github.com/agora-commerce/agora/modules/notifications/internal/notices"
	"github.com/agora-commerce/agora/modules/notifications/internal/smtptest"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/rides"
)

const (
	rideID = "0190a8b2-0000-7000-8000-0000fade0042"
	driver = "0190a8b2-0000-7000-8000-0000000d1e00"
)

// rideEvents are the ride events a rider hears of, each with the notification it
// makes (kind, title, what its body says).
var rideEvents = []struct {
	name      string
	event     message.Outgoing
	kind      string
	title     string
	bodyParts []string
}{
	{"assigned", rides.DriverAssignedEvent.With(rides.DriverAssigned{RideID: rideID, RiderID: ada, DriverID: driver}),
		notices.KindDriverAssigned, "Your driver is on the way", []string{"#FADE0042", "on the way"}},
	{"arriving", rides.DriverArrivingEvent.With(rides.DriverArriving{RideID: rideID, RiderID: ada, DriverID: driver}),
		notices.KindDriverArriving, "Your driver is at the pickup", []string{"#FADE0042", "at the pickup"}},
	{"completed", rides.RideCompletedEvent.With(rides.RideCompleted{RideID: rideID, RiderID: ada, DriverID: driver,
		Fare: rides.Money{Amount: 1240, Currency: "EUR"}, DistanceMeters: 5234, DurationSeconds: 14*60 + 10}),
		notices.KindRideCompleted, "Receipt for your ride #FADE0042", []string{"Fare charged: EUR 12.40.", "5.2 km in 14 min"}},
	{"cancelled with a fee", rides.RideCancelledEvent.With(rides.RideCancelled{RideID: rideID, RiderID: ada, DriverID: driver,
		Reason: rides.ReasonRiderCancelled, Fee: &rides.Money{Amount: 500, Currency: "EUR"}}),
		notices.KindRideCancelled, "Ride #FADE0042 is cancelled", []string{": you cancelled it.", "A cancellation fee of EUR 5.00 has been charged."}},
}

// TestEachRideEventMakesOneNotification: every ride event a rider hears of,
// delivered twice under one id and once re-published, is one notification about the
// ride, in words.
func TestEachRideEventMakesOneNotification(t *testing.T) {
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		b := newBus(t, notices.NewService(h.DB, nil))
		for _, ev := range rideEvents {
			id := bus.NewID()
			publish(t, b, ev.event, id)
			publish(t, b, ev.event, id)          // redelivered
			publish(t, b, ev.event, bus.NewID()) // re-published
			var got []notifications.Notification
			for _, n := range list(t, b, ada) {
				if n.Kind == ev.kind {
					got = append(got, n)
				}
			}
			if len(got) != 1 {
				t.Fatalf("%s: %d %s notifications, want 1: %+v", ev.name, len(got), ev.kind, got)
			}
			n := got[0]
			if n.CustomerID != ada || n.RideID != rideID || n.OrderID != "" || n.Title != ev.title {
				t.Errorf("%s: notification = %+v", ev.name, n)
			}
			for _, part := range ev.bodyParts {
				if !strings.Contains(n.Body, part) {
					t.Errorf("%s: body %q lacks %q", ev.name, n.Body, part)
				}
			}
		}
		if n := len(list(t, b, ada)); n != len(rideEvents) {
			t.Errorf("%d notifications, want %d", n, len(rideEvents))
		}
	})
}

// TestRideNoticeWords: a cancellation without a fee says nothing was charged, a
// reason rides may add later is quoted as it is, and a ride's refund speaks of the
// ride.
func TestRideNoticeWords(t *testing.T) {
	b := newBus(t, notices.NewService(sqliteDB(t), nil))
	publish(t, b, rides.RideCancelledEvent.With(rides.RideCancelled{RideID: bus.NewID(), RiderID: ada, Reason: rides.ReasonNoDriver}), bus.NewID())
	publish(t, b, rides.RideCancelledEvent.With(rides.RideCancelled{RideID: bus.NewID(), RiderID: grace, Reason: "flooded streets"}), bus.NewID())
	ride := bus.NewID()
	publish(t, b, payments.RefundIssuedEvent.With(payments.RefundIssued{PayableID: ride, Payable: payments.PayableRide, CustomerID: ada,
		RefundID: "r-1", Amount: payments.Money{Amount: 500, Currency: "EUR"}}), bus.NewID())
	got := list(t, b, ada)
	if len(got) != 2 {
		t.Fatalf("%d notifications, want 2", len(got))
	}
	refund, cancelled := got[0], got[1]
	if !strings.Contains(cancelled.Body, ": no driver was available.") || !strings.Contains(cancelled.Body, "Nothing has been charged.") {
		t.Errorf("cancelled without a fee: %q", cancelled.Body)
	}
	if refund.RideID != ride || refund.OrderID != "" || refund.Title != "Refund of EUR 5.00 for ride "+notices.ShortID(ride) {
		t.Errorf("a ride's refund: %+v", refund)
	}
	if body := list(t, b, grace)[0].Body; !strings.Contains(body, ": flooded streets.") {
		t.Errorf("an unknown reason: %q", body)
	}
}

func TestDistanceAndDuration(t *testing.T) {
	for meters, want := range map[int64]string{0: "0 m", 850: "850 m", 999: "999 m", 1000: "1.0 km", 5234: "5.2 km", 12449: "12.4 km", 12950: "13.0 km"} {
		if got := notices.Distance(meters); got != want {
			t.Errorf("Distance(%d) = %q, want %q", meters, got, want)
		}
	}
	for seconds, want := range map[int64]string{0: "1 min", 29: "1 min", 90: "2 min", 14*60 + 10: "14 min", 3900: "1 h 05 min"} {
		if got := notices.Duration(seconds); got != want {
			t.Errorf("Duration(%d) = %q, want %q", seconds, got, want)
		}
	}
}

// TestMalformedRideEventIsRefused: a ride event that names no rider or no ride is
// refused, and stores nothing.
func TestMalformedRideEventIsRefused(t *testing.T) {
	h := sqliteDB(t)
	b := newBus(t, notices.NewService(h, nil))
	for _, out := range []message.Outgoing{
		rides.DriverAssignedEvent.With(rides.DriverAssigned{RideID: rideID}),
		rides.RideCompletedEvent.With(rides.RideCompleted{RiderID: ada}),
	} {
		env, err := bus.Seal(t.Context(), out)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Deliver(t.Context(), env); !errors.Is(err, message.ErrInvalidMessage) {
			t.Errorf("Deliver %s = %v, want ErrInvalidMessage", out.Type, err)
		}
	}
	if n := len(list(t, b, ada)); n != 0 {
		t.Errorf("%d notifications stored", n)
	}
}

// TestRideReceiptIsEmailed: the receipt goes by email to the rider's address, which
// identity gives over the bus, through a real SMTP server — one email.
func TestRideReceiptIsEmailed(t *testing.T) {
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		r := newEmailRig(t, h, smtptest.Options{Security: smtptest.StartTLS}, notices.EmailConfig{PollInterval: time.Hour})
		r.start(t)
		completed := rideEvents[2]
		publish(t, r.bus, completed.event, bus.NewID())
		n := list(t, r.bus, ada)[0]
		testlog.Eventually(t, "the receipt to be recorded as sent", func() bool { return r.emailState(t, n.ID).Status == notices.EmailSent })
		mails := r.srv.Mails()
		if len(mails) != 1 {
			t.Fatalf("server received %d mails, want 1", len(mails))
		}
		m := mails[0]
		if len(m.To) != 1 || m.To[0] != "ada@example.com" || m.Header().Get("Subject") != completed.title {
			t.Errorf("sent to %q with subject %q", m.To, m.Header().Get("Subject"))
		}
		text, err := m.Text()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(text, n.Body) || !strings.Contains(text, "EUR 12.40") {
			t.Errorf("mail text %q does not carry the receipt %q", text, n.Body)
		}
	})
}
