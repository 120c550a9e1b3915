package message

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrorKind classifies an Error so that every transport and the HTTP edge treat it alike:
// the HTTP edge maps each kind to one status code, and a kind survives the wire.
type ErrorKind string

// The kinds of error a message handler may return.
const (
	Invalid         ErrorKind = "invalid"             // the message itself is wrong (HTTP 422)
	NotFound        ErrorKind = "not_found"           // the thing it names does not exist (404)
	Conflict        ErrorKind = "conflict"            // it clashes with current state (409)
	Precondition    ErrorKind = "precondition_failed" // an optimistic-concurrency check failed (412)
	Unauthenticated ErrorKind = "unauthenticated"     // the caller's credentials are missing or wrong (401)
	Forbidden       ErrorKind = "forbidden"           // the caller may not do this (403)
	Unavailable     ErrorKind = "unavailable"         // no process serves the receiver right now (503)
	Overloaded      ErrorKind = "overloaded"          // the receiver is at capacity; retry later (503)
	Timeout         ErrorKind = "timeout"             // the deadline passed before an answer (504)
	Internal        ErrorKind = "internal"            // a fault inside the receiver (500)
)

// Error is an error that crosses the bus unchanged: it has a stable Code that
// errors.Is compares on, so a sentinel declared in a module's contract matches the
// error a caller receives whether the handler ran in this process or in another.
//
// Message is shown to API clients; never put internal details (SQL, paths) in it.
type Error struct {
	Kind    ErrorKind `json:"kind"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
	// Field names the offending input field (for Invalid), as a JSON path such
	// as "body.price.currency"; empty when the error is not about one field.
	Field string `json:"field,omitempty"`
}

// NewError declares an error. Declare sentinels once, in a module's contract:
//
//	var ErrProductNotFound = message.NewError(message.NotFound, "catalog.product_not_found", "product not found")
//
// Every declared error is listed by DeclaredErrors, so the problem types a client can
// meet are documented from the declarations themselves (docs/problems.md).
func NewError(kind ErrorKind, code, message string) *Error {
	e := &Error{Kind: kind, Code: code, Message: message}
	declaredErrors.Lock()
	defer declaredErrors.Unlock()
	declaredErrors.errs = append(declaredErrors.errs, e)
	return e
}

// declaredErrors holds every error NewError made: package-level sentinels, declared as
// the program starts.
var declaredErrors struct {
	sync.Mutex
	errs []*Error
}

// DeclaredErrors returns every error declared so far, one per code (the first declared),
// sorted by code.
func DeclaredErrors() []*Error {
	declaredErrors.Lock()
	defer declaredErrors.Unlock()
	seen := map[string]bool{}
	var out []*Error
	for _, e := range declaredErrors.errs {
		if !seen[e.Code] {
			seen[e.Code] = true
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *Error) int { return strings.Compare(a.Code, b.Code) })
	return out
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code, so errors.Is matches a
// decoded copy against the sentinel it came from.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Withf returns a copy of e, same Kind and Code, with a more specific message.
func (e *Error) Withf(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// OnField returns a copy of e that names the offending input field.
func (e *Error) OnField(field string) *Error {
	c := *e
	c.Field = field
	return &c
}

// Errors the bus itself returns.
var (
	// ErrNoHandler: no process serves the message's receiver (the module is not
	// running here and no remote transport reaches it).
	ErrNoHandler = NewError(Unavailable, "bus.no_handler", "no process serves this request")
	// ErrUnreachable: the broker that carries requests to other processes cannot be
	// reached (or the connection dropped while waiting for the answer). The request
	// may or may not have been handled; retry it shortly.
	ErrUnreachable = NewError(Unavailable, "bus.unreachable", "the message bus is unreachable; retry shortly")
	// ErrOverloaded: the receiver had no free capacity before the caller's
	// deadline or its queue was full. Callers should retry later with backoff.
	ErrOverloaded = NewError(Overloaded, "bus.overloaded", "the service is overloaded; retry later")
	// ErrTimeout: the caller's deadline passed before the receiver answered.
	ErrTimeout = NewError(Timeout, "bus.timeout", "the request timed out")
	// ErrInternal: the receiver failed for a reason the caller cannot act on. The
	// cause is logged where it happened and never sent to the caller.
	ErrInternal = NewError(Internal, "bus.internal", "internal error")
	// ErrInvalidMessage: a message could not be decoded into its declared type.
	ErrInvalidMessage = NewError(Invalid, "bus.invalid_message", "the message could not be decoded")
)

// AsError converts any error into the *Error a caller on the other side of the bus
// would see: an *Error anywhere in the chain is returned as is; a context deadline
// or cancellation becomes ErrTimeout; a dependency that cannot be reached (see
// ErrDependencyDown) becomes ErrDependencyDown; anything else becomes ErrInternal, so
// handlers cannot leak internal details by accident. It returns nil for nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var be *Error
	if errors.As(err, &be) {
		return be
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ErrTimeout
	}
	if dependencyDown(err) {
		return ErrDependencyDown
	}
	return ErrInternal
}
