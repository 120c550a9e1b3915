package notices

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/payments"
)

// The kinds of notification, as stored and as the contract's Kind enumerates them.
const (
	KindOrderConfirmed = "order_confirmed"
	KindOrderRejected  = "order_rejected"
	KindOrderCancelled = "order_cancelled"
	KindRefundIssued   = "refund_issued"
	KindDriverAssigned = "driver_assigned"
	KindDriverArriving = "driver_arriving"
	KindRideCompleted  = "ride_completed"
	KindRideCancelled  = "ride_cancelled"
)

// maxReasonLen bounds the reasons other modules send, as quoted in a notification.
const maxReasonLen = 300

// draft is a notification before it is stored: what an event says, in words.
type draft struct {
	CustomerID string
	Kind       string
	OrderID    string // the order it is about, or ""
	RideID     string // the ride it is about, or ""
	Ref        string // tells apart notifications of one kind for one order or ride (a refund's id)
	Title      string
	Body       string
}

func confirmed(e orders.OrderConfirmed) draft {
	o := e.Order
	ref := ShortID(o.ID)
	var units int64
	for _, l := range o.Lines {
		units += l.Quantity
	}
	items := "items"
	if units == 1 {
		items = "item"
	}
	return draft{CustomerID: o.CustomerID, Kind: KindOrderConfirmed, OrderID: o.ID,
		Title: "Order " + ref + " is confirmed",
		Body: "Thank you for your order " + ref + ". It is confirmed: " + strconv.FormatInt(units, 10) + " " + items +
			", total " + o.Total.String() + ". We will let you know if anything changes."}
}

func rejected(e orders.OrderRejected) draft {
	o := e.Order
	ref := ShortID(o.ID)
	return draft{CustomerID: o.CustomerID, Kind: KindOrderRejected, OrderID: o.ID,
		Title: "Order " + ref + " could not be completed",
		Body: "We could not complete your order " + ref + " (total " + o.Total.String() + ")" +
			because(o.Reason) + " No payment has been taken."}
}

func cancelled(e orders.OrderCancelled) draft {
	o := e.Order
	ref := ShortID(o.ID)
	after := " No payment has been taken."
	if e.Refunded {
		after = " Your payment is being refunded; we will tell you when the refund is issued."
	}
	return draft{CustomerID: o.CustomerID, Kind: KindOrderCancelled, OrderID: o.ID,
		Title: "Order " + ref + " is cancelled",
		Body: "Your order " + ref + " (total " + o.Total.String() + ") has been cancelled" +
			because(o.Reason) + after}
}

// refunded tells of a refund of an order or of a ride (a payable of another kind
// being an order's, as before rides existed).
func refunded(e payments.RefundIssued) draft {
	ref := ShortID(e.PayableID)
	what := "order"
	d := draft{CustomerID: e.CustomerID, Kind: KindRefundIssued, OrderID: e.PayableID, Ref: e.RefundID}
	if e.Payable == payments.PayableRide {
		what, d.OrderID, d.RideID = "ride", "", e.PayableID
	}
	amount := e.Amount.String()
	body := "We have refunded " + amount + " for your " + what + " " + ref + because(e.Reason)
	if e.TotalRefunded > e.Amount.Amount {
		body += " In all, " + payments.Money{Amount: e.TotalRefunded, Currency: e.Amount.Currency}.String() + " has been refunded for this " + what + "."
	}
	d.Title = "Refund of " + amount + " for " + what + " " + ref
	d.Body = body + " It may take a few days to show on your statement."
	return d
}

// because ends a sentence with ": <reason>." or just ".".
func because(reason string) string {
	reason = cleanReason(reason)
	if reason == "" {
		return "."
	}
	return ": " + strings.TrimRight(reason, ".") + "."
}

// cleanReason makes a reason from another module fit for a customer's eyes: valid
// UTF-8 on one line, without control characters, at most maxReasonLen characters.
func cleanReason(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if utf8.RuneCountInString(s) > maxReasonLen {
		s = string([]rune(s)[:maxReasonLen-1]) + "…"
	}
	return s
}

// ShortID is how a customer sees an order's id: "#" and its last eight hex digits,
// upper-case. The last ones, because a UUIDv7 begins with its timestamp, so orders
// placed within a minute would share their first eight.
func ShortID(id string) string {
	hex := strings.ReplaceAll(id, "-", "")
	if len(hex) > 8 {
		hex = hex[len(hex)-8:]
	}
	return "#" + strings.ToUpper(hex)
}
