// Package message is the vocabulary modules speak: how a message is declared
// (Request, Command, Event), what travels (Envelope), and the errors that cross
// between modules (Error). A module's contract imports this package and nothing
// else of the project, and this package imports only the standard library, so a
// contract stays a description — the runtime that carries messages is package bus.
package message

import (
	"context"
	"encoding/json"
	"time"
)

// Kind says how a message travels.
type Kind string

// The three kinds of traffic between modules.
const (
	// KindRequest is request–reply: synchronous, one handler, answered within the
	// caller's deadline. Used for queries and for writes whose caller needs the answer.
	KindRequest Kind = "request"
	// KindCommand is durable and asynchronous, to exactly one receiving module.
	KindCommand Kind = "command"
	// KindEvent is durable publish–subscribe: every subscribing module gets it.
	KindEvent Kind = "event"
)

// Envelope is a message as it is stored and sent: metadata plus a JSON payload.
// Envelopes are what the outbox stores and what network transports carry; in one
// process, requests skip the encoding and travel as typed values.
type Envelope struct {
	ID   string `json:"id"`   // UUIDv7; the de-duplication key on every hop
	Type string `json:"type"` // e.g. "catalog.ProductCreated"
	Kind Kind   `json:"kind"`
	// CorrelationID ties together every message caused by one outside action
	// (an HTTP request): the first message's ID or the request id.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the ID of the message (or request) that caused this one.
	CausationID string            `json:"causation_id,omitempty"`
	Time        time.Time         `json:"time"`
	Headers     map[string]string `json:"headers,omitempty"` // trace context and the like
	Payload     json.RawMessage   `json:"payload"`
}

// Meta is the part of an envelope that handlers see and that new messages inherit.
type Meta struct {
	ID            string
	Type          string
	CorrelationID string
	CausationID   string
	Time          time.Time
	Headers       map[string]string
}

// Meta returns the envelope's metadata.
func (e Envelope) Meta() Meta {
	return Meta{ID: e.ID, Type: e.Type, CorrelationID: e.CorrelationID, CausationID: e.CausationID, Time: e.Time, Headers: e.Headers}
}

// Message is a decoded durable message handed to a command or event handler.
type Message[T any] struct {
	Meta
	Body T
}

type causeKey struct{}

// Cause is what the context says caused the current work: an HTTP request or a message.
type Cause struct {
	ID            string // the request id or message id
	CorrelationID string
}

// WithCause returns a context carrying the cause of the work done under it. Messages
// created under that context take it as their causation and correlation.
func WithCause(ctx context.Context, c Cause) context.Context {
	return context.WithValue(ctx, causeKey{}, c)
}

// CauseFrom returns the cause stored by WithCause, if any.
func CauseFrom(ctx context.Context) (Cause, bool) {
	c, ok := ctx.Value(causeKey{}).(Cause)
	return c, ok
}
