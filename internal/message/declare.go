package message

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// Request declares a request–reply exchange: its name (the routing key, "<module>.<Name>")
// and its request and reply types. Declare it once in the receiving module's
// contract; bus.Call sends it and bus.Handle registers its handler.
type Request[Req, Resp any] struct {
	name    string
	parks   bool // see Parked
	version int  // see AtVersion; 0 is 1
}

// NewRequest declares a request type. The name's first dot-separated part is the
// module that serves it.
func NewRequest[Req, Resp any](name string) Request[Req, Resp] {
	r := Request[Req, Resp]{name: name}
	declare(r.Declaration())
	return r
}

// Name returns the request's routing name.
func (r Request[Req, Resp]) Name() string { return r.name }

// AtVersion returns r declared at version v (see Event.AtVersion).
func (r Request[Req, Resp]) AtVersion(v int) Request[Req, Resp] {
	r.version = v
	declare(r.Declaration())
	return r
}

// Version returns the version r was declared at: 1 unless AtVersion says otherwise.
func (r Request[Req, Resp]) Version() int { return max(r.version, 1) }

// Declaration describes r.
func (r Request[Req, Resp]) Declaration() Declaration {
	return Declaration{Name: r.name, Kind: KindRequest, Version: r.Version(), Parked: r.parks,
		Payload: reflect.TypeFor[Req](), Reply: reflect.TypeFor[Resp]()}
}

// Parked returns r declared as a long poll: its handler mostly waits (for a change,
// up to a deadline) rather than works. Parked requests do not take the module's
// work slots — a thousand waiting streams must not starve the module's real work —
// but have their own, larger bound (see bus.Limits).
func (r Request[Req, Resp]) Parked() Request[Req, Resp] {
	r.parks = true
	declare(r.Declaration())
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
	version int       // see AtVersion; 0 is 1
}

// NewEvent declares an event type, named "<module>.<EventName>".
func NewEvent[T any](name string) Event[T] {
	e := Event[T]{name: name}
	declare(e.Declaration())
	return e
}

// Name returns the event's type name.
func (e Event[T]) Name() string { return e.name }

// AtVersion returns e declared at version v. A message starts at version 1; a
// change to its payload that a receiver of the previous version would misread — a
// field removed, renamed or retyped, or a new field that is always sent — needs the
// next version, and receivers that handle both while both are on the wire (see
// docs/adr/0013-message-versions.md). tools/asyncapigen -check enforces it.
func (e Event[T]) AtVersion(v int) Event[T] {
	e.version = v
	declare(e.Declaration())
	return e
}

// Version returns the version e was declared at: 1 unless AtVersion says otherwise.
func (e Event[T]) Version() int { return max(e.version, 1) }

// Declaration describes e.
func (e Event[T]) Declaration() Declaration {
	return e.renamed.describe(Declaration{Name: e.name, Kind: KindEvent, Version: e.Version(), Payload: reflect.TypeFor[T]()})
}

// With returns payload as an outgoing event, ready for the outbox.
func (e Event[T]) With(payload T) Outgoing {
	return Outgoing{Kind: KindEvent, Type: e.name, Payload: payload}
}

// Renamed returns e declared with a payload field renamed from one JSON name to
// another: a payload written under from (by a previous version, still in an outbox
// or a stream) decodes as if it carried to; one with both keeps to.
func (e Event[T]) Renamed(from, to string) Event[T] {
	e.renamed = &renaming{Old: from, New: to}
	declare(e.Declaration())
	return e
}

// Decode decodes an envelope's payload as this event.
func (e Event[T]) Decode(env Envelope) (Message[T], error) { return decode[T](env, e.renamed) }

// Command declares a durable message to exactly one receiving module.
type Command[T any] struct {
	name    string
	renamed *renaming // see Renamed
	version int       // see AtVersion; 0 is 1
}

// NewCommand declares a command type, named "<receiving module>.<CommandName>".
func NewCommand[T any](name string) Command[T] {
	c := Command[T]{name: name}
	declare(c.Declaration())
	return c
}

// Name returns the command's type name.
func (c Command[T]) Name() string { return c.name }

// AtVersion returns c declared at version v (see Event.AtVersion).
func (c Command[T]) AtVersion(v int) Command[T] {
	c.version = v
	declare(c.Declaration())
	return c
}

// Version returns the version c was declared at: 1 unless AtVersion says otherwise.
func (c Command[T]) Version() int { return max(c.version, 1) }

// Declaration describes c.
func (c Command[T]) Declaration() Declaration {
	return c.renamed.describe(Declaration{Name: c.name, Kind: KindCommand, Version: c.Version(), Payload: reflect.TypeFor[T]()})
}

// With returns payload as an outgoing command, ready for the outbox.
func (c Command[T]) With(payload T) Outgoing {
	return Outgoing{Kind: KindCommand, Type: c.name, Payload: payload}
}

// Renamed returns c declared with a payload field renamed, like Event.Renamed.
func (c Command[T]) Renamed(from, to string) Command[T] {
	c.renamed = &renaming{Old: from, New: to}
	declare(c.Declaration())
	return c
}

// Decode decodes an envelope's payload as this command.
func (c Command[T]) Decode(env Envelope) (Message[T], error) { return decode[T](env, c.renamed) }

// renaming is a payload field that a message's declaration renamed: payloads
// written before carry Old where the current ones carry New.
type renaming struct{ Old, New string }

// describe returns d with the renaming r, if any.
func (r *renaming) describe(d Declaration) Declaration {
	if r != nil {
		d.RenamedFrom, d.RenamedTo = r.Old, r.New
	}
	return d
}

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
