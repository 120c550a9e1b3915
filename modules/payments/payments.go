// Package payments is the contract of the payments module: a ledger per order of
// money authorized, captured, voided and refunded through a payment provider.
// Other modules use this package — its messages, replies, events and errors — and
// nothing else of payments.
//
// The ledger never captures without an authorization, never captures twice and
// never refunds more than was captured. Every call to the provider carries an
// idempotency key derived from the order and the operation, so a retry after a lost
// answer (a provider that timed out after charging) has no second effect.
//
// Provider calls never run inside a database transaction: a command is recorded
// first, the provider is called afterwards (with timeouts, retries with backoff on
// retryable errors only, and a circuit breaker), and the outcome is recorded with
// its event. Calls interrupted by a crash are resumed at start.
//
// Commands (durable; idempotent per OrderID and operation):
//   - AuthorizePayment → PaymentAuthorized or PaymentDeclined.
//   - CapturePayment → PaymentCaptured (retried until the provider takes it).
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

// Status is where an order's payment stands.
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

// Entry is one movement in an order's ledger.
type Entry struct {
	Kind        string    `json:"kind" enum:"authorized,captured,voided,refunded"`
	Amount      Money     `json:"amount"`
	ProviderRef string    `json:"provider_ref"`
	Reason      string    `json:"reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Payment is an order's payment and its ledger.
type Payment struct {
	OrderID    string    `json:"order_id" format:"uuid"`
	CustomerID string    `json:"customer_id" format:"uuid"`
	Status     Status    `json:"status"`
	Amount     Money     `json:"amount" doc:"the amount to authorize"`
	Authorized int64     `json:"authorized" doc:"minor units held"`
	Captured   int64     `json:"captured" doc:"minor units taken"`
	Refunded   int64     `json:"refunded" doc:"minor units given back"`
	Reason     string    `json:"reason,omitempty" doc:"why it was declined, when it was"`
	Entries    []Entry   `json:"entries"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// GetPayment asks for an order's payment.
type GetPayment struct {
	OrderID string `json:"order_id"`
}

// ProviderStatus asks for the state of the payment provider's circuit breaker.
type ProviderStatus struct{}

// ProviderState is the reply to ProviderStatus.
type ProviderState struct {
	Provider string `json:"provider" doc:"simulated or http"`
	Breaker  string `json:"breaker" enum:"closed,half-open,open"`
}

// The payments module's requests.
var (
	// Handled by ledger.(*Service).Get.
	GetPaymentRequest = message.NewRequest[GetPayment, Payment]("payments.GetPayment")
	// Handled by ledger.(*Service).providerStatus.
	ProviderStatusRequest = message.NewRequest[ProviderStatus, ProviderState]("payments.ProviderStatus")
)

// AuthorizePayment asks to hold Amount on the card behind PaymentToken for OrderID.
type AuthorizePayment struct {
	OrderID      string `json:"order_id"`
	CustomerID   string `json:"customer_id"`
	Amount       Money  `json:"amount"`
	PaymentToken string `json:"payment_token"`
}

// CapturePayment takes the authorized amount of OrderID.
type CapturePayment struct {
	OrderID string `json:"order_id"`
}

// VoidPayment releases OrderID's authorization, if there is one.
type VoidPayment struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// RefundPayment gives back Amount (0: all that is captured and not yet refunded).
// RefundID makes the refund idempotent: the same id refunds once.
type RefundPayment struct {
	OrderID  string `json:"order_id"`
	RefundID string `json:"refund_id"`
	Amount   int64  `json:"amount"`
	Reason   string `json:"reason"`
}

// The payments module's commands.
var (
	// Handled by ledger.(*Service).onAuthorize.
	AuthorizePaymentCommand = message.NewCommand[AuthorizePayment]("payments.AuthorizePayment")
	// Handled by ledger.(*Service).onCapture.
	CapturePaymentCommand = message.NewCommand[CapturePayment]("payments.CapturePayment")
	// Handled by ledger.(*Service).onVoid.
	VoidPaymentCommand = message.NewCommand[VoidPayment]("payments.VoidPayment")
	// Handled by ledger.(*Service).onRefund.
	RefundPaymentCommand = message.NewCommand[RefundPayment]("payments.RefundPayment")
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

// PaymentAuthorized says Amount is held for OrderID.
type PaymentAuthorized struct {
	OrderID     string `json:"order_id"`
	CustomerID  string `json:"customer_id"`
	Amount      Money  `json:"amount"`
	ProviderRef string `json:"provider_ref"`
}

// PaymentDeclined says nothing is held for OrderID, and why.
type PaymentDeclined struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason"`  // one of the Decline* codes
	Message    string `json:"message"` // for the customer
}

// PaymentCaptured says Amount was taken for OrderID.
type PaymentCaptured struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Amount     Money  `json:"amount"`
}

// PaymentVoided says OrderID's authorization is released (or there was none).
type PaymentVoided struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
}

// RefundIssued says Amount was given back for OrderID.
type RefundIssued struct {
	OrderID       string `json:"order_id"`
	CustomerID    string `json:"customer_id"`
	RefundID      string `json:"refund_id"`
	Amount        Money  `json:"amount"`
	TotalRefunded int64  `json:"total_refunded"`
	Reason        string `json:"reason"`
}

// RefundFailed says a refund could not be made (nothing captured, or more than
// what is left), and why.
type RefundFailed struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	RefundID   string `json:"refund_id"`
	Reason     string `json:"reason"`
}

// The payments module's events.
var (
	// Handled by orders: checkout.on (func literal).
	PaymentAuthorizedEvent = message.NewEvent[PaymentAuthorized]("payments.PaymentAuthorized")
	// Handled by orders: checkout.on (func literal).
	PaymentDeclinedEvent = message.NewEvent[PaymentDeclined]("payments.PaymentDeclined")
	// Handled by orders: checkout.on (func literal).
	PaymentCapturedEvent = message.NewEvent[PaymentCaptured]("payments.PaymentCaptured")
	// Handled by orders: checkout.on (func literal).
	PaymentVoidedEvent = message.NewEvent[PaymentVoided]("payments.PaymentVoided")
	// Handled by orders: checkout.on (func literal).
	// Handled by notifications: notices.(*Service).onRefunded.
	RefundIssuedEvent = message.NewEvent[RefundIssued]("payments.RefundIssued")
	// Handled by orders: checkout.on (func literal).
	RefundFailedEvent = message.NewEvent[RefundFailed]("payments.RefundFailed")
)

// Errors the payments module returns; errors.Is matches them on either side of the bus.
var (
	ErrPaymentNotFound = message.NewError(message.NotFound, "payments.payment_not_found", "no payment for this order")
)
