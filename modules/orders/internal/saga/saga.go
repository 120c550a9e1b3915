// Package saga is the checkout saga as a pure state machine: Apply takes a saga,
// its order and one incoming message (an inventory or payments event, a customer's
// cancellation, an admin's refund, or the step's deadline passing) and returns the
// new saga, the changed order and the messages to send. It does no I/O, so every
// (state, message) pair is tested directly; the checkout package stores what it
// returns, in one transaction with the message's inbox record.
//
// The states and what moves them:
//
//	reserving    + StockReserved            → authorizing (AuthorizePayment)
//	reserving    + StockReservationRejected → rejected
//	authorizing  + PaymentAuthorized        → completing (order confirmed; CommitReservation, CapturePayment)
//	authorizing  + PaymentDeclined          → compensating → rejected (ReleaseReservation)
//	completing   + ReservationCommitted and PaymentCaptured → completed
//	completing   + ReservationCommitFailed  → compensating → cancelled (RefundPayment)
//	compensating + every awaited acknowledgement → its target (rejected or cancelled)
//	pending      + Cancel                   → compensating → cancelled (release, void)
//	completed    + Cancel                   → compensating → cancelled (refund, restock)
//	pending      + Timeout, attempts left   → same state, command sent again
//	pending      + Timeout, none left       → compensating → rejected (release, void)
//
// A confirmed order is never compensated by a timeout: completing and compensating
// resend their commands, with capped backoff, until they are acknowledged.
// Messages that arrive late or twice change nothing, except that stock reserved or
// a payment authorized for an order that is no longer going ahead is given back.
package saga

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agora-commerce/agora/internal/backoff"
	"github.com/agora-commerce/agora/internal/history"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/payments"
)

// Ack is an acknowledgement the saga waits for: the name of the event that
// acknowledges a command it sent.
type Ack string

// The acknowledgements a saga may wait for.
var (
	AckCommitted = Ack(inventory.ReservationCommittedEvent.Name())
	AckCaptured  = Ack(payments.PaymentCapturedEvent.Name())
	AckReleased  = Ack(inventory.ReservationReleasedEvent.Name())
	AckVoided    = Ack(payments.PaymentVoidedEvent.Name())
	AckRefunded  = Ack(payments.RefundIssuedEvent.Name())
	AckRestocked = Ack(inventory.OrderRestockedEvent.Name())
)

// MaxHistory bounds the steps a saga keeps: the first (the placement) and the most
// recent ones. Only a saga flooded with stray messages comes near it.
const MaxHistory = 200

// Refund is a refund an admin asked for.
type Refund struct {
	ID     string `json:"id"`
	Amount int64  `json:"amount"` // 0: all that was left
}

// Saga is a checkout saga's durable state.
type Saga struct {
	OrderID    string           `json:"order_id"`
	CustomerID string           `json:"customer_id"`
	State      orders.SagaState `json:"state"`
	// Target is the terminal state compensation ends in (rejected or cancelled).
	Target   orders.SagaState `json:"target,omitempty"`
	Attempts int              `json:"attempts"`
	Deadline time.Time        `json:"deadline"`
	// PaymentToken is kept only while it may be needed (until the payment is
	// authorized or the checkout ends); it is never logged.
	PaymentToken string           `json:"payment_token,omitempty"`
	Lines        []inventory.Line `json:"lines"`
	Total        orders.Money     `json:"total"`

	Reserved      bool `json:"reserved"`       // StockReserved was taken into the flow
	AuthorizeSent bool `json:"authorize_sent"` // AuthorizePayment was sent
	Confirmed     bool `json:"confirmed"`      // the order was confirmed

	// Awaiting lists the acknowledgements the current state still waits for.
	Awaiting []Ack `json:"awaiting,omitempty"`
	// CancelRequested remembers a cancellation that arrived while completing; it
	// is carried out once the order is completed.
	CancelRequested bool   `json:"cancel_requested,omitempty"`
	CancelReason    string `json:"cancel_reason,omitempty"`
	// RefundAfterCapture: the order was cancelled before its payment was captured;
	// the refund is sent once the capture is acknowledged.
	RefundAfterCapture bool     `json:"refund_after_capture,omitempty"`
	CancelRefundID     string   `json:"cancel_refund_id,omitempty"`
	Refunds            []Refund `json:"refunds,omitempty"`

	History   []orders.SagaStep `json:"history"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// Terminal reports whether the saga has ended.
func (s Saga) Terminal() bool { return Terminal(s.State) }

// Terminal reports whether state is one a saga ends in.
func Terminal(state orders.SagaState) bool {
	return state == orders.SagaCompleted || state == orders.SagaRejected || state == orders.SagaCancelled
}

// View returns the saga as the contract shows it (no token, no internals).
func (s Saga) View() orders.Saga {
	h := slices.Clone(s.History)
	if h == nil {
		h = []orders.SagaStep{}
	}
	return orders.Saga{OrderID: s.OrderID, State: s.State, Attempts: s.Attempts, Deadline: s.Deadline,
		History: h, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// Timing is how long the saga waits and how often it tries.
type Timing struct {
	StepTimeout    time.Duration // wait for an answer before sending again
	MaxAttempts    int           // sends of a pending step's command before compensating
	ReservationTTL time.Duration // how long inventory holds stock for the order
}

// Cancel is a request to cancel the order.
type Cancel struct {
	Reason string
	Actor  string
}

// RefundRequest is an admin's request to refund a confirmed order.
type RefundRequest struct {
	RefundID string
	Amount   int64
	Reason   string
	Actor    string
}

// Timeout says the current step's deadline has passed.
type Timeout struct{}

// Result is what Apply decided.
type Result struct {
	Saga         Saga
	Order        orders.Order
	OrderChanged bool               // Order differs from the one given (its Version is one higher)
	Send         []message.Outgoing // commands and events to write to the outbox
}

// Start returns the saga of a newly placed order (pending, version 1) and the
// messages that start it: ReserveStock and OrderPlaced.
func Start(o orders.Order, token string, now time.Time, t Timing) (Saga, []message.Outgoing) {
	lines := make([]inventory.Line, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = inventory.Line{ProductID: l.ProductID, SKU: l.SKU, Quantity: l.Quantity}
	}
	s := Saga{OrderID: o.ID, CustomerID: o.CustomerID, State: orders.SagaReserving, Attempts: 1,
		Deadline: now.Add(t.StepTimeout), PaymentToken: token, Lines: lines, Total: o.Total,
		CreatedAt: now, UpdatedAt: now}
	reserve := reserveStock(s, now, t)
	s.History = []orders.SagaStep{{At: now, State: s.State, Message: orders.PlaceOrderRequest.Name(),
		Note: "order placed; sent " + reserve.Type}}
	return s, []message.Outgoing{reserve, orders.OrderPlacedEvent.With(orders.OrderPlaced{Order: o})}
}

func reserveStock(s Saga, now time.Time, t Timing) message.Outgoing {
	return inventory.ReserveStockCommand.With(inventory.ReserveStock{OrderID: s.OrderID,
		Lines: slices.Clone(s.Lines), ExpiresAt: now.Add(t.ReservationTTL)})
}

// Reasons shown to customers.
const (
	ReasonTimedOut         = "the checkout could not be completed in time; you have not been charged"
	ReasonSoldOut          = "an item sold out before your order could be completed; your payment is refunded"
	ReasonDeclined         = "the payment was declined"
	ReasonCancelled        = "cancelled at your request"
	reasonStockUnavailable = "the items could not be reserved"
)

// step is one Apply in progress.
type step struct {
	s       Saga
	o       orders.Order
	changed bool
	send    []message.Outgoing
	events  []func(orders.Order) message.Outgoing // built at the end, from the final order
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

// enter moves the saga to state, waiting for the first send's answer.
func (x *step) enter(state orders.SagaState) {
	x.s.State = state
	x.s.Attempts = 1
	x.s.Deadline = x.now.Add(x.t.StepTimeout)
}

// finish moves the saga to a terminal state.
func (x *step) finish(state orders.SagaState) {
	x.s.State = state
	x.s.Awaiting = nil
	x.s.PaymentToken = ""
}

func (x *step) setOrder(status orders.Status, reason string) {
	x.o.Status = status
	x.o.Reason = reason
	x.touchOrder()
}

func (x *step) touchOrder() {
	if !x.changed {
		x.o.Version++
		x.changed = true
	}
	x.o.UpdatedAt = x.now
}

func (x *step) await(acks ...Ack) { x.s.Awaiting = append(slices.Clone(x.s.Awaiting), acks...) }

// acknowledge removes ack from the awaited ones and reports whether it was awaited.
func (x *step) acknowledge(ack Ack) bool {
	i := slices.Index(x.s.Awaiting, ack)
	if i < 0 {
		return false
	}
	x.s.Awaiting = slices.Delete(slices.Clone(x.s.Awaiting), i, i+1)
	return true
}

func (x *step) ignore(why string) { x.note("ignored: %s", why) }

// Apply applies msg to saga s of order o at now. msg is one of the inventory and
// payments events the saga subscribes to, Cancel, RefundRequest or Timeout. It
// fails only for Cancel (ErrNotCancellable) and RefundRequest (ErrNotRefundable,
// ErrInvalidInput); an unexpected message is recorded in the history and ignored.
func Apply(s Saga, o orders.Order, msg any, now time.Time, t Timing) (Result, error) {
	x := &step{s: s, o: o, now: now, t: t}
	x.o.Lines = slices.Clone(o.Lines)
	name, err := x.apply(msg)
	if err != nil {
		return Result{}, err
	}
	if x.changed {
		for _, ev := range x.events {
			x.send = append(x.send, ev(x.o))
		}
	}
	x.s.UpdatedAt = now
	x.s.History = history.Append(x.s.History, orders.SagaStep{At: now, State: x.s.State, Message: name,
		Note: strings.Join(x.notes, "; ")}, MaxHistory)
	return Result{Saga: x.s, Order: x.o, OrderChanged: x.changed, Send: x.send}, nil
}

func (x *step) apply(msg any) (string, error) {
	switch m := msg.(type) {
	case inventory.StockReserved:
		x.stockReserved()
		return inventory.StockReservedEvent.Name(), nil
	case inventory.StockReservationRejected:
		x.stockRejected(m)
		return inventory.StockReservationRejectedEvent.Name(), nil
	case payments.PaymentAuthorized:
		x.paymentAuthorized()
		return payments.PaymentAuthorizedEvent.Name(), nil
	case payments.PaymentDeclined:
		x.paymentDeclined(m)
		return payments.PaymentDeclinedEvent.Name(), nil
	case inventory.ReservationCommitted:
		x.acknowledged(AckCommitted)
		return inventory.ReservationCommittedEvent.Name(), nil
	case payments.PaymentCaptured:
		x.paymentCaptured()
		return payments.PaymentCapturedEvent.Name(), nil
	case inventory.ReservationCommitFailed:
		x.commitFailed(m)
		return inventory.ReservationCommitFailedEvent.Name(), nil
	case inventory.ReservationReleased:
		x.acknowledged(AckReleased)
		return inventory.ReservationReleasedEvent.Name(), nil
	case payments.PaymentVoided:
		x.acknowledged(AckVoided)
		return payments.PaymentVoidedEvent.Name(), nil
	case inventory.OrderRestocked:
		x.acknowledged(AckRestocked)
		return inventory.OrderRestockedEvent.Name(), nil
	case payments.RefundIssued:
		x.refundIssued(m)
		return payments.RefundIssuedEvent.Name(), nil
	case payments.RefundFailed:
		x.refundFailed(m)
		return payments.RefundFailedEvent.Name(), nil
	case Cancel:
		return orders.CancelOrderRequest.Name(), x.cancel(m)
	case RefundRequest:
		return orders.RefundOrderRequest.Name(), x.refund(m)
	case Timeout:
		x.timeout()
		return "timeout", nil
	default:
		x.ignore(fmt.Sprintf("unknown message %T", msg))
		return fmt.Sprintf("%T", msg), nil
	}
}

func (x *step) stockReserved() {
	switch {
	case x.s.State == orders.SagaReserving:
		x.s.Reserved = true
		x.enter(orders.SagaAuthorizing)
		x.s.AuthorizeSent = true
		x.command(x.authorize())
	case !x.s.Confirmed && (x.s.State == orders.SagaCompensating || x.s.State == orders.SagaRejected || x.s.State == orders.SagaCancelled):
		// The order is not going ahead: give the stock back. Nothing waits for this
		// release; inventory's own expiry is the backstop.
		x.s.Reserved = true
		x.note("stock reserved for an order that is not going ahead")
		x.command(inventory.ReleaseReservationCommand.With(inventory.ReleaseReservation{OrderID: x.s.OrderID,
			Reason: "late reservation for an order that is no longer pending"}))
	default:
		x.ignore("stock was already reserved")
	}
}

func (x *step) authorize() message.Outgoing {
	return payments.AuthorizePaymentCommand.With(payments.AuthorizePayment{PayableID: x.s.OrderID, Payable: payments.PayableOrder, CustomerID: x.s.CustomerID,
		Amount: payments.Money(x.s.Total), PaymentToken: x.s.PaymentToken})
}

func (x *step) stockRejected(m inventory.StockReservationRejected) {
	if x.s.State != orders.SagaReserving {
		x.ignore("not waiting for a reservation")
		return
	}
	x.finish(orders.SagaRejected)
	x.setOrder(orders.StatusRejected, x.rejectionReason(m.Lines))
	x.events = append(x.events, rejected)
}

func rejected(o orders.Order) message.Outgoing {
	return orders.OrderRejectedEvent.With(orders.OrderRejected{Order: o})
}

func cancelled(refunded bool) func(orders.Order) message.Outgoing {
	return func(o orders.Order) message.Outgoing {
		return orders.OrderCancelledEvent.With(orders.OrderCancelled{Order: o, Refunded: refunded})
	}
}

// rejectionReason says, for the customer, why the stock could not be reserved,
// naming products as the order does.
func (x *step) rejectionReason(lines []inventory.RejectedLine) string {
	var out, other []string
	for _, l := range lines {
		name := x.productName(l.ProductID, l.SKU)
		switch l.Reason {
		case inventory.RejectOutOfStock:
			out = append(out, fmt.Sprintf("%s (asked %d, %d left)", name, l.Requested, l.Available))
		case inventory.RejectUnknownProduct:
			other = append(other, name+" is not stocked")
		}
	}
	var parts []string
	if len(out) > 0 {
		parts = append(parts, "Out of stock: "+strings.Join(out, ", "))
	}
	parts = append(parts, other...)
	if len(parts) == 0 {
		return reasonStockUnavailable
	}
	return strings.Join(parts, "; ")
}

func (x *step) productName(productID, sku string) string {
	for _, l := range x.o.Lines {
		if (productID != "" && l.ProductID == productID) || (productID == "" && sku != "" && l.SKU == sku) {
			return l.Name
		}
	}
	if sku != "" {
		return sku
	}
	return "an item"
}

func (x *step) paymentAuthorized() {
	switch {
	case x.s.State == orders.SagaAuthorizing:
		x.s.Confirmed = true
		x.s.PaymentToken = ""
		x.enter(orders.SagaCompleting)
		x.setOrder(orders.StatusConfirmed, "")
		x.events = append(x.events, func(o orders.Order) message.Outgoing {
			return orders.OrderConfirmedEvent.With(orders.OrderConfirmed{Order: o})
		})
		x.s.Awaiting = nil
		x.await(AckCommitted, AckCaptured)
		x.command(inventory.CommitReservationCommand.With(inventory.CommitReservation{OrderID: x.s.OrderID}))
		x.command(payments.CapturePaymentCommand.With(payments.CapturePayment{PayableID: x.s.OrderID}))
	case x.s.AuthorizeSent && !x.s.Confirmed && (x.s.State == orders.SagaCompensating || x.s.State == orders.SagaRejected || x.s.State == orders.SagaCancelled):
		// The order is not going ahead: release the hold on the card. Nothing waits
		// for this void; it is payments' to carry through.
		x.note("payment authorized for an order that is not going ahead")
		x.command(payments.VoidPaymentCommand.With(payments.VoidPayment{PayableID: x.s.OrderID, Payable: payments.PayableOrder,
			Reason: "late authorization for an order that is no longer pending"}))
	case x.s.Confirmed:
		x.ignore("the payment was already authorized")
	default:
		x.ignore("no authorization was asked for")
	}
}

func (x *step) paymentDeclined(m payments.PaymentDeclined) {
	if x.s.State != orders.SagaAuthorizing {
		x.ignore("not waiting for a payment")
		return
	}
	reason := strings.TrimSpace(m.Message)
	if reason == "" {
		reason = ReasonDeclined
	}
	if m.Retryable { // false in a version 1 decline: not known to be retryable
		x.note("declined (%s), but the provider may take the payment if it is tried again", m.Reason)
	} else {
		x.note("declined (%s)", m.Reason)
	}
	x.s.PaymentToken = ""
	x.compensate(orders.SagaRejected, false)
	x.setOrder(orders.StatusRejected, reason)
	x.events = append(x.events, rejected)
}

// compensate moves a pending saga to compensating towards target: the reservation
// is released and, when an authorization was asked for and void is set, voided.
func (x *step) compensate(target orders.SagaState, void bool) {
	x.enter(orders.SagaCompensating)
	x.s.Target = target
	x.s.PaymentToken = ""
	x.s.Awaiting = nil
	x.await(AckReleased)
	x.command(x.release())
	if void && x.s.AuthorizeSent {
		x.await(AckVoided)
		x.command(x.void())
	}
}

func (x *step) release() message.Outgoing {
	reason := "order " + string(x.s.Target)
	return inventory.ReleaseReservationCommand.With(inventory.ReleaseReservation{OrderID: x.s.OrderID, Reason: reason})
}

func (x *step) void() message.Outgoing {
	return payments.VoidPaymentCommand.With(payments.VoidPayment{PayableID: x.s.OrderID, Payable: payments.PayableOrder, Reason: "order " + string(x.s.Target)})
}

func (x *step) paymentCaptured() {
	if x.s.State == orders.SagaCompensating && x.s.RefundAfterCapture {
		x.acknowledge(AckCaptured)
		x.s.RefundAfterCapture = false
		x.await(AckRefunded)
		x.command(x.cancelRefund(ReasonSoldOut))
		return
	}
	x.acknowledged(AckCaptured)
}

// acknowledged takes an acknowledgement: when it is awaited, the saga moves on
// once nothing else is awaited.
func (x *step) acknowledged(ack Ack) {
	if !x.acknowledge(ack) {
		x.ignore("not waiting for it")
		return
	}
	if len(x.s.Awaiting) > 0 {
		return
	}
	switch x.s.State {
	case orders.SagaCompleting:
		x.finish(orders.SagaCompleted)
		if x.s.CancelRequested {
			x.note("carrying out the cancellation asked for while completing")
			x.cancelConfirmed(x.s.CancelReason)
		}
	case orders.SagaCompensating:
		x.finish(x.s.Target)
	}
}

func (x *step) commitFailed(m inventory.ReservationCommitFailed) {
	if x.s.State != orders.SagaCompleting || !x.acknowledge(AckCommitted) {
		x.ignore("not waiting for a commit")
		return
	}
	if m.Reason != "" {
		x.note("commit failed: %s", m.Reason)
	}
	captureAwaited := slices.Contains(x.s.Awaiting, AckCaptured)
	x.enter(orders.SagaCompensating)
	x.s.Target = orders.SagaCancelled
	x.s.CancelRequested = false
	x.setOrder(orders.StatusCancelled, ReasonSoldOut)
	x.events = append(x.events, cancelled(true))
	x.s.Awaiting = nil
	if captureAwaited {
		// Nothing is captured yet, so nothing can be refunded yet: refund once it is.
		x.s.RefundAfterCapture = true
		x.await(AckCaptured)
		x.note("refund waits for the capture")
		return
	}
	x.await(AckRefunded)
	x.command(x.cancelRefund(ReasonSoldOut))
}

// cancelRefund is the full refund of a cancellation; its id derives from the order,
// so sending it again refunds once.
func (x *step) cancelRefund(reason string) message.Outgoing {
	x.s.CancelRefundID = x.s.OrderID + "-cancel"
	return payments.RefundPaymentCommand.With(payments.RefundPayment{PayableID: x.s.OrderID,
		RefundID: x.s.CancelRefundID, Reason: reason})
}

func (x *step) restock(reason string) message.Outgoing {
	return inventory.RestockOrderCommand.With(inventory.RestockOrder{OrderID: x.s.OrderID, Reason: reason})
}

// cancelConfirmed cancels a completed order: refunded in full and restocked.
func (x *step) cancelConfirmed(reason string) {
	x.s.CancelRequested = false
	x.enter(orders.SagaCompensating)
	x.s.Target = orders.SagaCancelled
	x.setOrder(orders.StatusCancelled, reason)
	x.events = append(x.events, cancelled(true))
	x.s.Awaiting = nil
	x.await(AckRefunded, AckRestocked)
	x.command(x.cancelRefund(reason))
	x.command(x.restock(reason))
}

// refundIssued mirrors payments' ledger in the order, whatever the saga's state:
// money given back is given back.
func (x *step) refundIssued(m payments.RefundIssued) {
	mirrored := false
	if m.TotalRefunded > x.o.Refunded {
		x.o.Refunded = m.TotalRefunded
		x.touchOrder()
		x.note("refunded %d so far", m.TotalRefunded)
		mirrored = true
	}
	if x.s.CancelRefundID != "" && m.RefundID == x.s.CancelRefundID && slices.Contains(x.s.Awaiting, AckRefunded) {
		x.acknowledged(AckRefunded)
	} else if !mirrored {
		x.ignore("refund " + m.RefundID + " is already counted")
	}
}

func (x *step) refundFailed(m payments.RefundFailed) {
	if x.s.CancelRefundID != "" && m.RefundID == x.s.CancelRefundID && slices.Contains(x.s.Awaiting, AckRefunded) {
		// Nothing more can come of it (nothing left to refund, or nothing captured);
		// an operator sees it in the history.
		x.note("refund %s failed: %s", m.RefundID, m.Reason)
		x.acknowledged(AckRefunded)
		return
	}
	x.ignore(fmt.Sprintf("refund %s failed: %s", m.RefundID, m.Reason))
}

func (x *step) cancel(c Cancel) error {
	if x.o.Status == orders.StatusRejected || x.o.Status == orders.StatusCancelled {
		return orders.ErrNotCancellable.Withf("the order is %s and can no longer be cancelled", x.o.Status)
	}
	reason := strings.TrimSpace(c.Reason)
	if reason == "" {
		reason = ReasonCancelled
	}
	if c.Actor != "" {
		x.note("asked by %s", c.Actor)
	}
	switch x.s.State {
	case orders.SagaReserving, orders.SagaAuthorizing:
		x.compensate(orders.SagaCancelled, true)
		x.setOrder(orders.StatusCancelled, reason)
		x.events = append(x.events, cancelled(false))
	case orders.SagaCompleting:
		if x.s.CancelRequested {
			x.ignore("cancellation already asked for")
			return nil
		}
		x.s.CancelRequested = true
		x.s.CancelReason = reason
		x.note("cancellation remembered until the order is completed")
	case orders.SagaCompleted:
		x.cancelConfirmed(reason)
	default:
		return orders.ErrNotCancellable.Withf("the order can no longer be cancelled")
	}
	return nil
}

func (x *step) refund(r RefundRequest) error {
	if x.o.Status != orders.StatusConfirmed {
		return orders.ErrNotRefundable.Withf("only confirmed orders can be refunded; this one is %s", x.o.Status)
	}
	if slices.ContainsFunc(x.s.Refunds, func(f Refund) bool { return f.ID == r.RefundID }) {
		x.ignore("refund " + r.RefundID + " was already asked for")
		return nil
	}
	if x.s.State != orders.SagaCompleted {
		return orders.ErrNotRefundable.Withf("the payment is still being captured; try again in a moment")
	}
	left := x.o.Total.Amount - x.o.Refunded
	switch {
	case r.Amount < 0:
		return orders.ErrInvalidInput.Withf("the refund amount cannot be negative").OnField("body.amount")
	case left <= 0:
		return orders.ErrNotRefundable.Withf("the order is already refunded in full")
	case r.Amount > left:
		return orders.ErrNotRefundable.Withf("at most %d can still be refunded", left)
	}
	if r.Actor != "" {
		x.note("asked by %s", r.Actor)
	}
	x.s.Refunds = append(slices.Clone(x.s.Refunds), Refund{ID: r.RefundID, Amount: r.Amount})
	x.command(payments.RefundPaymentCommand.With(payments.RefundPayment{PayableID: x.s.OrderID, RefundID: r.RefundID,
		Amount: r.Amount, Reason: r.Reason}))
	return nil
}

func (x *step) timeout() {
	if x.s.Terminal() {
		x.ignore("the saga has ended")
		return
	}
	pending := x.s.State == orders.SagaReserving || x.s.State == orders.SagaAuthorizing
	if pending && x.s.Attempts >= x.t.MaxAttempts {
		x.note("no answer after %d attempts", x.s.Attempts)
		x.compensate(orders.SagaRejected, true)
		x.setOrder(orders.StatusRejected, ReasonTimedOut)
		x.events = append(x.events, rejected)
		return
	}
	// Receivers are idempotent per order: sending again has no second effect.
	for _, out := range x.resend() {
		x.command(out)
	}
	x.s.Attempts++
	x.s.Deadline = x.now.Add(backoff.Step(x.t.StepTimeout, x.s.Attempts))
	x.note("attempt %d", x.s.Attempts)
}

// resend returns the commands of the current step that are still unanswered.
func (x *step) resend() []message.Outgoing {
	switch x.s.State {
	case orders.SagaReserving:
		return []message.Outgoing{reserveStock(x.s, x.now, x.t)}
	case orders.SagaAuthorizing:
		return []message.Outgoing{x.authorize()}
	}
	var out []message.Outgoing
	for _, a := range x.s.Awaiting {
		switch a {
		case AckCommitted:
			out = append(out, inventory.CommitReservationCommand.With(inventory.CommitReservation{OrderID: x.s.OrderID}))
		case AckCaptured:
			out = append(out, payments.CapturePaymentCommand.With(payments.CapturePayment{PayableID: x.s.OrderID}))
		case AckReleased:
			out = append(out, x.release())
		case AckVoided:
			out = append(out, x.void())
		case AckRefunded:
			out = append(out, payments.RefundPaymentCommand.With(payments.RefundPayment{PayableID: x.s.OrderID,
				RefundID: x.s.CancelRefundID, Reason: x.o.Reason}))
		case AckRestocked:
			out = append(out, x.restock(x.o.Reason))
		}
	}
	return out
}
