package message

import (
	"bytes"
	"encoding/json"
)

// Request declares a request–reply exchange: its name (the routing key, "<module>.<Name>")
// and its request and reply types. Declare it once in the receiving module's
// contract; bus.Call sends it and bus.Handle registers its handler.
type Request[Req, Resp any] struct {
	name  string
	parks bool // see Parked
}

// NewRequest declares a request type. The name's first dot-separated part is the
// module that serves it.
func NewRequest[Req, Resp any](name string) Request[Req, Resp] {
	return Request[Req, Resp]{name: name}
}

// Name returns the request's routing name.
func (r Request[Req, Resp]) Name() string { return r.name }

// Parked returns r declared as a long poll: its handler mostly waits (for a change,
// up to a deadline) rather than works. Parked requests do not take the module's
// work slots — a thousand waiting streams must not starve the module's real work —
// but have their own, larger bound (see bus.Limits).
func (r Request[Req, Resp]) Parked() Request[Req, Resp] {
	r.parks = true
	return r
}

// Parks reports whether r was declared Parked.
func (r Request[Req, Resp]) Parks() bool { return r.parks }

// Cloner is implemented by message types that copy themselves (deeply: sharing no
// memory with the original) faster than the bus's reflective copy.
type Cloner[T any] interface {
	Clone() T
}

// Event declares a durable publish–subscribe message and its payload type.
type Event[T any] struct {
	name    string
	renamed *renaming // see Renamed
}

// NewEvent declares an event type, named "<module>.<EventName>".
func NewEvent[T any](name string) Event[T] { return Event[T]{name: name} }

// Name returns the event's type name.
func (e Event[T]) Name() string { return e.name }

// With returns payload as an outgoing event, ready for the outbox.
func (e Event[T]) With(payload T) Outgoing {
	return Outgoing{Kind: KindEvent, Type: e.name, Payload: payload}
}

// Renamed returns e declared with a payload field renamed from one JSON name to
// another: a payload written under from (by a previous version, still in an outbox
// or a stream) decodes as if it carried to; one with both keeps to.
func (e Event[T]) Renamed(from, to string) Event[T] {
	e.renamed = &renaming{Old: from, New: to}
	return e
}

// Decode decodes an envelope's payload as this event.
func (e Event[T]) Decode(env Envelope) (Message[T], error) { return decode[T](env, e.renamed) }

// Command declares a durable message to exactly one receiving module.
type Command[T any] struct {
	name    string
	renamed *renaming // see Renamed
}

// NewCommand declares a command type, named "<receiving module>.<CommandName>".
func NewCommand[T any](name string) Command[T] { return Command[T]{name: name} }

// Name returns the command's type name.
func (c Command[T]) Name() string { return c.name }

// With returns payload as an outgoing command, ready for the outbox.
func (c Command[T]) With(payload T) Outgoing {
	return Outgoing{Kind: KindCommand, Type: c.name, Payload: payload}
}

// Renamed returns c declared with a payload field renamed, like Event.Renamed.
func (c Command[T]) Renamed(from, to string) Command[T] {
	c.renamed = &renaming{Old: from, New: to}
	return c
}

// Decode decodes an envelope's payload as this command.
func (c Command[T]) Decode(env Envelope) (Message[T], error) { return decode[T](env, c.renamed) }

// renaming is a payload field that a message's declaration renamed: payloads
// written before carry Old where the current ones carry New.
type renaming struct{ Old, New string }

// apply returns payload with r.Old read as r.New. A payload without r.Old is
// returned as it is (the common case costs one scan); one with both keeps New.
func (r *renaming) apply(payload []byte) ([]byte, error) {
	if r == nil || !bytes.Contains(payload, []byte(`"`+r.Old+`"`)) {
		return payload, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, err
	}
	old, ok := fields[r.Old]
	if !ok {
		return payload, nil // the name appeared in a value, not as a key
	}
	if _, ok := fields[r.New]; !ok {
		fields[r.New] = old
	}
	delete(fields, r.Old)
	return json.Marshal(fields)
}

func decode[T any](env Envelope, r *renaming) (Message[T], error) {
	var m Message[T]
	payload, err := r.apply(env.Payload)
	if err == nil {
		err = json.Unmarshal(payload, &m.Body)
	}
	if err != nil {
		return m, ErrInvalidMessage.Withf("decode %s: %v", env.Type, err)
	}
	m.Meta = env.Meta()
	return m, nil
}

// Outgoing is a durable message on its way into an outbox (bus.Seal makes it an
// Envelope).
type Outgoing struct {
	Kind    Kind
	Type    string
	Payload any
}
