// Package payments is the contract of the payments module: a ledger per payable — an
// order or a ride, named by its id (PayableID) and its kind (Payable) — of money
// authorized, captured, voided and refunded through a payment provider.
// Other modules use this package — its messages, replies, events and errors — and
// nothing else of payments.
//
// The ledger never captures without an authorization, never captures twice and
// never refunds more than was captured. Every call to the provider carries an
// idempotency key derived from the payable and the operation, so a retry after a lost
// answer (a provider that timed out after charging) has no second effect.
//
// Provider calls never run inside a database transaction: a command is recorded
// first, the provider is called afterwards (with timeouts, retries with backoff on
// retryable errors only, and a circuit breaker), and the outcome is recorded with
// its event. Calls interrupted by a crash are resumed at start.
//
// Every event carries the payable's kind, so a module that subscribes takes the
// events of its own payables only (orders: Payable "order" or empty, as sent before
// rides existed; rides: "ride").
//
// Commands and events written before payables existed carry "order_id" where they
// now carry "payable_id"; their declarations say so (Renamed), so such messages —
// still in an outbox at the upgrade — decode as orders' messages.
//
// Commands (durable; idempotent per PayableID and operation):
//   - AuthorizePayment → PaymentAuthorized or PaymentDeclined.
//   - CapturePayment → PaymentCaptured (retried until the provider takes it); a
//     partial capture (a ride's cancellation fee) releases the rest.
//   - VoidPayment → PaymentVoided (also when nothing was authorized: the saga may
//     void blindly while compensating).
//   - RefundPayment → RefundIssued or RefundFailed.
package payments

import (
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// Money is an amount in a currency's minor units and its ISO 4217 code; every
// module shares the one type.
type Money = message.Money

// Payable is the kind of thing a payment pays for.
type Payable string

// The payables.
const (
	PayableOrder Payable = "order"
	PayableRide  Payable = "ride"
)

// Status is where a payable's payment stands.
type Status string

// Payment statuses.
const (
	StatusAuthorizing Status = "authorizing" // asked the provider; no answer recorded yet
	StatusAuthorized  Status = "authorized"
	StatusDeclined    Status = "declined" // the provider (or the breaker) said no: nothing is held
	StatusCaptured    Status = "captured"
	StatusVoided      Status = "voided"
	StatusRefunded    Status = "refunded" // fully refunded; partial refunds leave it captured
)

// Entry is one movement in a payable's ledger. What a partial capture leaves of an
// authorization is released: a voided entry whose Reason says so.
type Entry struct {
	Kind        string    `json:"kind" enum:"authorized,captured,voided,refunded"`
	Amount      Money     `json:"amount"`
	ProviderRef string    `json:"provider_ref"`
	Reason      string    `json:"reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Payment is a payable's payment and its ledger.
type Payment struct {
	PayableID  string    `json:"payable_id" format:"uuid" doc:"the order's or the ride's id"`
	Payable    Payable   `json:"payable" enum:"order,ride"`
	CustomerID string    `json:"customer_id" format:"uuid"`
	Status     Status    `json:"status"`
	Amount     Money     `json:"amount" doc:"the amount to authorize"`
	Authorized int64     `json:"authorized" doc:"minor units held (after a partial capture: what it took)"`
	Captured   int64     `json:"captured" doc:"minor units taken"`
	Refunded   int64     `json:"refunded" doc:"minor units given back"`
	Reason     string    `json:"reason,omitempty" doc:"why it was declined, when it was"`
	Entries    []Entry   `json:"entries"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// GetPayment asks for a payable's payment.
type GetPayment struct {
	PayableID string `json:"payable_id"`
}

// ProviderStatus asks for the state of the payment provider's circuit breaker.
type ProviderStatus struct{}

// ProviderState is the reply to ProviderStatus and to SetProviderOutage.
type ProviderState struct {
	Provider string `json:"provider" doc:"simulated or http"`
	Breaker  string `json:"breaker" enum:"closed,half-open,open"`
	// Outage is whether the simulated provider plays an outage (SetProviderOutage).
	Outage bool `json:"outage" doc:"whether the simulated provider plays an outage: it answers every call with a 503"`
	// OutageSwitchable is whether SetProviderOutage may switch it here: the
	// provider is the in-process simulator and the payments process allows faults.
	OutageSwitchable bool `json:"outage_switchable" doc:"whether the outage can be switched: the simulated provider, in a process started with --demo or --allow-faults"`
}

// SetProviderOutage starts (Down) or ends an outage of the simulated payment
// provider, for demos and tests: while it lasts, the simulator answers every call
// as a provider that is down does — 503 Service Unavailable, which the ledger
// retries and its circuit breaker counts as a failure — so the breaker opens after
// its threshold of failed calls and authorizations are then declined with
// DeclineProviderUnavailable without a call; when it ends, the breaker lets a call
// through after its open period and closes. It answers the provider's new state,
// ErrOutageNotSimulated when the provider is not the in-process simulator, and
// ErrOutageNotAllowed when the payments process was started without --demo or
// --allow-faults. Setting the state it already has is a no-op.
type SetProviderOutage struct {
	Down bool `json:"down" doc:"true starts the outage, false ends it"`
}

// The payments module's requests.
var (
	// Handled by ledger.(*Service).Get.
	GetPaymentRequest = message.NewRequest[GetPayment, Payment]("payments.GetPayment")
	// Handled by ledger.(*Service).providerStatus.
	ProviderStatusRequest = message.NewRequest[ProviderStatus, ProviderState]("payments.ProviderStatus")
	// Handled by ledger.(*Service).SetProviderOutage.
	SetProviderOutageRequest = message.NewRequest[SetProviderOutage, ProviderState]("payments.SetProviderOutage")
)

// AuthorizePayment asks to hold Amount on the card behind PaymentToken for the
// payable; an empty Payable is an order.
type AuthorizePayment struct {
	PayableID    string  `json:"payable_id"`
	Payable      Payable `json:"payable,omitempty"`
	CustomerID   string  `json:"customer_id"`
	Amount       Money   `json:"amount"`
	PaymentToken string  `json:"payment_token"`
}

// CapturePayment takes Amount (0: all that is authorized) of the payable's
// authorization and releases the rest.
type CapturePayment struct {
	PayableID string `json:"payable_id"`
	Amount    int64  `json:"amount,omitempty"`
}

// VoidPayment releases the payable's authorization, if there is one. Payable
// (empty: an order) matters only for a void that comes before the authorization:
// it says whose the voided payment is.
type VoidPayment struct {
	PayableID string  `json:"payable_id"`
	Payable   Payable `json:"payable,omitempty"`
	Reason    string  `json:"reason"`
}

// RefundPayment gives back Amount (0: all that is captured and not yet refunded).
// RefundID makes the refund idempotent: the same id refunds once.
type RefundPayment struct {
	PayableID string `json:"payable_id"`
	RefundID  string `json:"refund_id"`
	Amount    int64  `json:"amount"`
	Reason    string `json:"reason"`
}

// The payments module's commands.
var (
	// Handled by ledger.(*Service).onAuthorize.
	AuthorizePaymentCommand = message.NewCommand[AuthorizePayment]("payments.AuthorizePayment").Renamed("order_id", "payable_id")
	// Handled by ledger.(*Service).onCapture.
	CapturePaymentCommand = message.NewCommand[CapturePayment]("payments.CapturePayment").Renamed("order_id", "payable_id")
	// Handled by ledger.(*Service).onVoid.
	VoidPaymentCommand = message.NewCommand[VoidPayment]("payments.VoidPayment").Renamed("order_id", "payable_id")
	// Handled by ledger.(*Service).onRefund.
	RefundPaymentCommand = message.NewCommand[RefundPayment]("payments.RefundPayment").Renamed("order_id", "payable_id")
)

// Why a payment was declined. Reasons are codes; Message says it for a customer.
const (
	DeclineCardDeclined        = "card_declined"
	DeclineInsufficientFunds   = "insufficient_funds"
	DeclineInvalidToken        = "invalid_payment_token"
	DeclineProviderTimeout     = "provider_timeout"     // no answer within the retries
	DeclineProviderError       = "provider_error"       // the provider kept failing
	DeclineProviderUnavailable = "provider_unavailable" // the circuit breaker is open: not tried
)

// PaymentAuthorized says Amount is held for the payable.
type PaymentAuthorized struct {
	PayableID   string  `json:"payable_id"`
	Payable     Payable `json:"payable,omitempty"`
	CustomerID  string  `json:"customer_id"`
	Amount      Money   `json:"amount"`
	ProviderRef string  `json:"provider_ref"`
}

// PaymentDeclined says nothing is held for the payable, and why.
//
// Version 2 added Retryable, so that receivers need not know which Decline* codes
// are the provider's trouble rather than the card's. A version 1 payload (from a
// payments process of an earlier build, or an outbox or stream it wrote) has no
// retryable field: false, "not known to be retryable", which is what version 1
// implied.
type PaymentDeclined struct {
	PayableID  string  `json:"payable_id"`
	Payable    Payable `json:"payable,omitempty"`
	CustomerID string  `json:"customer_id"`
	Reason     string  `json:"reason"`  // one of the Decline* codes
	Message    string  `json:"message"` // for the customer
	// Retryable says the same payment may go through if tried again later: the
	// provider did not answer, failed or was unavailable (the card was not refused).
	Retryable bool `json:"retryable"`
}

// PaymentCaptured says Amount was taken for the payable.
type PaymentCaptured struct {
	PayableID  string  `json:"payable_id"`
	Payable    Payable `json:"payable,omitempty"`
	CustomerID string  `json:"customer_id"`
	Amount     Money   `json:"amount"`
}

// PaymentVoided says the payable's authorization is released (or there was none).
type PaymentVoided struct {
	PayableID  string  `json:"payable_id"`
	Payable    Payable `json:"payable,omitempty"`
	CustomerID string  `json:"customer_id"`
}

// RefundIssued says Amount was given back for the payable.
type RefundIssued struct {
	PayableID     string  `json:"payable_id"`
	Payable       Payable `json:"payable,omitempty"`
	CustomerID    string  `json:"customer_id"`
	RefundID      string  `json:"refund_id"`
	Amount        Money   `json:"amount"`
	TotalRefunded int64   `json:"total_refunded"`
	Reason        string  `json:"reason"`
}

// RefundFailed says a refund could not be made (nothing captured, or more than
// what is left), and why.
type RefundFailed struct {
	PayableID  string  `json:"payable_id"`
	Payable    Payable `json:"payable,omitempty"`
	CustomerID string  `json:"customer_id"`
	RefundID   string  `json:"refund_id"`
	Reason     string  `json:"reason"`
}

// The payments module's events.
var (
	// Handled by orders: checkout.on (func literal).
	// Handled by rides: trips.on (func literal).
	PaymentAuthorizedEvent = message.NewEvent[PaymentAuthorized]("payments.PaymentAuthorized").Renamed("order_id", "payable_id")
	// Handled by orders: checkout.on (func literal).
	// Handled by rides: trips.on (func literal).
	PaymentDeclinedEvent = message.NewEvent[PaymentDeclined]("payments.PaymentDeclined").Renamed("order_id", "payable_id").AtVersion(2)
	// Handled by orders: checkout.on (func literal).
	// Handled by rides: trips.on (func literal).
	PaymentCapturedEvent = message.NewEvent[PaymentCaptured]("payments.PaymentCaptured").Renamed("order_id", "payable_id")
	// Handled by orders: checkout.on (func literal).
	// Handled by rides: trips.on (func literal).
	PaymentVoidedEvent = message.NewEvent[PaymentVoided]("payments.PaymentVoided").Renamed("order_id", "payable_id")
	// Handled by orders: checkout.on (func literal).
	// Handled by notifications: notices.(*Service).onRefunded.
	RefundIssuedEvent = message.NewEvent[RefundIssued]("payments.RefundIssued").Renamed("order_id", "payable_id")
	// Handled by orders: checkout.on (func literal).
	RefundFailedEvent = message.NewEvent[RefundFailed]("payments.RefundFailed").Renamed("order_id", "payable_id")
)

// Errors the payments module returns; errors.Is matches them on either side of the bus.
var (
	ErrPaymentNotFound = message.NewError(message.NotFound, "payments.payment_not_found", "no payment for this order or ride")
	// ErrOutageNotSimulated: SetProviderOutage, but the provider is a real one
	// (--payment-provider-url), which this process cannot take down (409).
	ErrOutageNotSimulated = message.NewError(message.Conflict, "payments.outage_not_simulated",
		"the payment provider is not the in-process simulator: its outage cannot be switched here")
	// ErrOutageNotAllowed: SetProviderOutage in a payments process started without
	// --demo or --allow-faults, so that production cannot be broken by accident (409).
	ErrOutageNotAllowed = message.NewError(message.Conflict, "payments.outage_not_allowed",
		"a provider outage is refused in this process: start it with --demo or --allow-faults")
)
