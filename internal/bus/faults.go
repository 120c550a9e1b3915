package bus

import (
	"context"
	"errors"
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// FaultKind names a fault the bus can inject into the traffic it carries.
type FaultKind string

// The faults the bus injects (see Faults).
const (
	// FaultNone: the message goes through untouched.
	FaultNone FaultKind = ""
	// FaultDelay holds a message back for Fault.Delay before it goes on.
	FaultDelay FaultKind = "delay"
	// FaultDrop loses a message. A request never reaches its handler and the caller
	// sees what a lost request looks like: message.ErrTimeout at its deadline. A
	// durable message is lost before its receiver took it: the delivery fails with
	// ErrFaultLost, and the sender delivers it again (at least once, by contract).
	FaultDrop FaultKind = "drop"
	// FaultDuplicate hands a durable message to its receiver twice; the receiver's
	// inbox must drop the second copy. Requests are never duplicated (at most once).
	FaultDuplicate FaultKind = "duplicate"
	// FaultReorder hands a durable message to its receiver after the ones behind it
	// in the same batch; alone in its batch it is put back (ErrFaultLost) and comes
	// again after what follows it. Requests are not reordered.
	FaultReorder FaultKind = "reorder"
	// FaultCrash runs the handler — its effects commit — and then loses the answer,
	// as a process that dies before acknowledging: a durable message fails with
	// ErrFaultCrashed and is delivered again (the inbox makes that harmless); a
	// request's reply is lost and the caller sees message.ErrTimeout.
	FaultCrash FaultKind = "crash"
)

// FaultKinds lists every fault kind, in a stable order.
var FaultKinds = []FaultKind{FaultDelay, FaultDrop, FaultDuplicate, FaultReorder, FaultCrash}

// ForRequests reports whether k applies to requests (delay, drop and crash do;
// requests are at most once, so they are never duplicated or reordered).
func (k FaultKind) ForRequests() bool {
	return k == FaultDelay || k == FaultDrop || k == FaultCrash
}

// HoldsBack reports whether k makes a durable delivery fail, so that the message
// is delivered again.
func (k FaultKind) HoldsBack() bool {
	return k == FaultDrop || k == FaultReorder || k == FaultCrash
}

// Fault is what the bus does to one message.
type Fault struct {
	Kind FaultKind
	// Delay: how long FaultDelay holds the message; for a dropped or crashed
	// request, how long the caller waits for the reply that never comes (0: until
	// its deadline).
	Delay time.Duration
}

// Faults chooses the faults the bus injects (package faults implements it from
// rules). Implementations must be safe for concurrent use and cheap.
type Faults interface {
	// Request returns the fault for one call of a request of type typ.
	Request(typ string) Fault
	// Delivery returns the fault for one delivery of env to the subscription consumer.
	Delivery(consumer string, env message.Envelope) Fault
}

// Errors of durable deliveries that an injected fault failed. The sender
// delivers the message again, as after any failed delivery.
var (
	ErrFaultLost    = errors.New("bus: delivery lost by an injected fault")
	ErrFaultCrashed = errors.New("bus: handler crashed by an injected fault before its acknowledgement")
)

// InjectFaults makes the bus inject the faults f chooses into every request it
// sends and every durable message it hands to a subscription in this process
// (from the outbox relay or from the network transport). Call it once, before the
// bus carries any message, as Instrument; a bus without faults pays nothing.
func (b *Bus) InjectFaults(f Faults) { b.faults = f }

// lostRequest is what the caller of a lost request sees: message.ErrTimeout, at
// its deadline or after wait when that comes first (a request without a deadline
// waits as long as a network transport's default, 30s).
func lostRequest(ctx context.Context, wait time.Duration) error {
	if wait <= 0 {
		wait = 30 * time.Second
		if d, ok := ctx.Deadline(); ok {
			wait = time.Until(d)
		}
	}
	pause(ctx, wait)
	return message.ErrTimeout
}

// pause waits d or until ctx ends, and reports whether the whole wait passed.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// callFaulty is Call on a bus that injects faults: the request's fault applied
// around the undisturbed call.
func callFaulty[Req, Resp any](ctx context.Context, b *Bus, r message.Request[Req, Resp], req Req) (Resp, error) {
	var zero Resp
	f := b.faults.Request(r.Name())
	switch f.Kind {
	case FaultDelay:
		if !pause(ctx, f.Delay) {
			return zero, message.ErrTimeout
		}
	case FaultDrop:
		return zero, lostRequest(ctx, f.Delay)
	}
	resp, err := call(ctx, b, r, req)
	if f.Kind == FaultCrash {
		return zero, lostRequest(ctx, f.Delay)
	}
	return resp, err
}

// handleFaulty is HandleItems on a bus that injects faults: each item's fault is
// chosen, the items that go through are handed on (reordered ones last, duplicated
// ones a second time), and the outcomes of lost and crashed ones replaced.
func (b *Bus) handleFaulty(ctx context.Context, items []BatchItem) []error {
	faults := make([]Fault, len(items))
	none := true
	for i, it := range items {
		faults[i] = b.faults.Delivery(it.Sub.Consumer, it.Env)
		none = none && faults[i].Kind == FaultNone
	}
	if none {
		return b.handleItems(ctx, items)
	}
	errs := make([]error, len(items))
	var run, last []int // the items handed on, in order; the reordered ones go last
	for i, f := range faults {
		switch {
		case f.Kind == FaultDrop:
			errs[i] = ErrFaultLost
		case f.Kind == FaultReorder && !laterFor(items, i):
			errs[i] = ErrFaultLost // put back: it comes again after what follows it
		case f.Kind == FaultReorder:
			last = append(last, i)
		default:
			if f.Kind == FaultDelay && !pause(ctx, f.Delay) {
				errs[i] = ctx.Err()
				continue
			}
			run = append(run, i)
		}
	}
	order := append(run, last...)
	b.handleSome(ctx, items, order, errs)
	var again []int
	for _, i := range order {
		if faults[i].Kind == FaultDuplicate && errs[i] == nil {
			again = append(again, i)
		}
	}
	b.handleSome(ctx, items, again, errs) // a failed second copy fails the message: it comes again
	for i, f := range faults {
		if f.Kind == FaultCrash && errs[i] == nil {
			errs[i] = ErrFaultCrashed
		}
	}
	return errs
}

// handleSome hands items[idx] on, in that order, and records their outcomes in errs.
func (b *Bus) handleSome(ctx context.Context, items []BatchItem, idx []int, errs []error) {
	if len(idx) == 0 {
		return
	}
	part := make([]BatchItem, len(idx))
	for k, i := range idx {
		part[k] = items[i]
	}
	for k, err := range b.handleItems(ctx, part) {
		errs[idx[k]] = err
	}
}

// laterFor reports whether an item after items[i] goes to the same subscription.
func laterFor(items []BatchItem, i int) bool {
	for _, it := range items[i+1:] {
		if it.Sub.Consumer == items[i].Sub.Consumer {
			return true
		}
	}
	return false
}
