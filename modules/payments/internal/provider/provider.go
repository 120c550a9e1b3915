// Package provider is the payments module's port to a payment-service provider:
// the Provider interface, its two adapters (Simulated, in process, and HTTP, for
// the psp API that `agora psp` serves) and Resilient, the timeouts, retries and
// circuit breaker that wrap either one.
//
// Every method takes an idempotency key: a provider that sees a key again answers
// as it did the first time, without a second effect. Callers derive keys from the
// payable and the operation, so a retry after a lost answer is harmless.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

// Provider is a payment-service provider. Its errors are *Error values that say
// what the caller may do about them (see Class).
type Provider interface {
	// Authorize holds amount on the card behind token.
	Authorize(ctx context.Context, amount payments.Money, token, key string) (Authorization, error)
	// Capture takes amount (0: the whole) of an authorization and releases the rest.
	Capture(ctx context.Context, authID string, amount int64, key string) (Authorization, error)
	// Void releases an authorization; voiding a voided one succeeds.
	Void(ctx context.Context, authID, key string) (Authorization, error)
	// Refund gives back amount of a captured authorization.
	Refund(ctx context.Context, authID string, amount int64, key string) (Refund, error)
	// AuthorizationByKey returns the authorization that the Authorize call with
	// idempotency key made, even if its answer never arrived; an error of
	// ClassNotFound when that call held nothing.
	AuthorizationByKey(ctx context.Context, key string) (Authorization, error)
}

// Authorization is the provider's view of an authorization.
type Authorization struct {
	ID       string
	Amount   int64
	Currency string
	State    string // psp.StateAuthorized, StateCaptured or StateVoided
	Captured int64
}

// Refund is the provider's record of a refund.
type Refund struct {
	ID     string
	Amount int64
}

// Class says what a caller may do about a provider error.
type Class int

// The classes of provider error.
const (
	// ClassDeclined: the provider answered no (Error.Reason says why); nothing is held.
	ClassDeclined Class = iota + 1
	// ClassRetryable: no usable answer (a timeout, a 5xx, a broken connection); the
	// call may or may not have taken effect, and may be retried with the same key.
	ClassRetryable
	// ClassPermanent: the provider refused the call itself (a 4xx other than a
	// decline); retrying it cannot help.
	ClassPermanent
	// ClassNotFound: the provider has no such thing.
	ClassNotFound
	// ClassUnavailable: the circuit breaker is open; the call was not made.
	ClassUnavailable
)

// Error is a classified provider error.
type Error struct {
	Class   Class
	Reason  string // for ClassDeclined: one of the payments.Decline* codes
	Code    string // the provider's error code, when it answered
	Timeout bool   // for ClassRetryable: no answer came in time
	Err     error  // the cause
}

func (e *Error) Error() string {
	switch e.Class {
	case ClassDeclined:
		return "provider: declined: " + e.Reason
	case ClassUnavailable:
		return "provider: unavailable (circuit breaker open)"
	}
	return fmt.Sprintf("provider: %v", e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err: 0 for nil, the class of an *Error in its
// chain, and ClassRetryable for anything else (a transport failure says nothing
// about whether the call took effect).
func ClassOf(err error) Class {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassRetryable
}

// declineReasons maps the provider's decline codes to the payments contract's.
var declineReasons = map[string]string{
	psp.CodeCardDeclined:      payments.DeclineCardDeclined,
	psp.CodeInsufficientFunds: payments.DeclineInsufficientFunds,
	psp.CodeInvalidToken:      payments.DeclineInvalidToken,
}

// fromProvider classifies an error answer of the provider by its HTTP status and code.
func fromProvider(status int, code string, cause error) *Error {
	if reason, ok := declineReasons[code]; ok {
		return &Error{Class: ClassDeclined, Reason: reason, Code: code, Err: cause}
	}
	switch {
	case status == http.StatusNotFound:
		return &Error{Class: ClassNotFound, Code: code, Err: cause}
	case status >= 500, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return &Error{Class: ClassRetryable, Code: code, Err: cause}
	default:
		return &Error{Class: ClassPermanent, Code: code, Err: cause}
	}
}

// fromContext classifies the error of a call its context ended.
func fromContext(err error) *Error {
	return &Error{Class: ClassRetryable, Timeout: true, Err: err}
}
