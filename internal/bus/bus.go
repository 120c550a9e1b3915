// Package bus is the only way Agora's modules talk to each other.
//
// A module's contract declares its messages as typed values — Request (request–reply),
// Command (durable, one receiver) and Event (durable, every subscriber) — and other
// modules use those declarations, never the module's code. The Bus routes a request
// to a handler in this process when there is one (a direct call, no encoding) and
// otherwise to its Transport, which carries Envelopes to other processes. Durable
// messages never go straight onto the bus: they are written to the sender's outbox
// in the same transaction as the state change, and the outbox relay hands them to
// Bus.Deliver (see package outbox).
//
// Rules every message obeys, so that a module can move to another process unchanged:
//   - Messages are plain values that round-trip through JSON. In one process the bus
//     deep-copies values that hold references (slices, maps, pointers) on the way in
//     and on the way out, so a receiver can never mutate a sender's memory.
//   - Errors that cross the bus are *message.Error values with a stable Code.
//   - Deadlines come from the context; a full receiver answers message.ErrOverloaded rather
//     than queueing without limit.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	clone "github.com/huandu/go-clone"

	"github.com/agora-commerce/agora/internal/message"
)

// Call sends req, declared by r, and waits for the reply or ctx's end. It returns
// the handler's *message.Error unchanged, message.ErrNoHandler when no process serves the
// request, message.ErrOverloaded when the receiver stays full until the deadline, and
// message.ErrTimeout when the deadline passes. Whether a request is safe to retry is stated
// where it is declared.
func Call[Req, Resp any](ctx context.Context, b *Bus, r message.Request[Req, Resp], req Req) (Resp, error) {
	if b.faults != nil {
		return callFaulty(ctx, b, r, req)
	}
	return call(ctx, b, r, req)
}

// call is Call without injected faults.
func call[Req, Resp any](ctx context.Context, b *Bus, r message.Request[Req, Resp], req Req) (Resp, error) {
	var zero Resp
	if b.obs != nil {
		return callObserved(ctx, b, r, req)
	}
	h, ok := b.requests[r.Name()]
	if !ok {
		return callRemote(ctx, b, r, req)
	}
	typed, ok := h.impl.(*requestHandler[Req, Resp])
	if !ok {
		return zero, fmt.Errorf("bus: request %q registered with other types", r.Name())
	}
	if err := h.limit.acquire(ctx); err != nil {
		return zero, err
	}
	defer h.limit.release()
	// As reply does; written out here so that the cheapest path is one frame.
	resp, err := typed.fn(ctx, typed.copyIn(req))
	if err != nil {
		return zero, b.handlerError(ctx, r.Name(), err)
	}
	if ctx.Err() != nil {
		return zero, message.ErrTimeout
	}
	return typed.copyOut(resp), nil
}

// callObserved is Call on an instrumented bus: the observer sees the call and,
// when the handler runs here, its handling (kept apart so that a bus without an
// observer pays nothing for it).
func callObserved[Req, Resp any](ctx context.Context, b *Bus, r message.Request[Req, Resp], req Req) (_ Resp, err error) {
	h, local := b.requests[r.Name()]
	ctx, end := b.obs.Observe(ctx, Op{Role: Sending, Kind: message.KindRequest, Type: r.Name(), Remote: !local})
	defer func() { end(err) }()
	if !local {
		return callRemote(ctx, b, r, req)
	}
	typed, ok := h.impl.(*requestHandler[Req, Resp])
	if !ok {
		return *new(Resp), fmt.Errorf("bus: request %q registered with other types", r.Name())
	}
	if err := h.limit.acquire(ctx); err != nil {
		return *new(Resp), err
	}
	defer h.limit.release()
	hctx, done := b.handling(ctx, Op{Role: Handling, Kind: message.KindRequest, Type: r.Name()})
	resp, err := typed.fn(hctx, typed.copyIn(req))
	done(err)
	if err != nil {
		return *new(Resp), b.handlerError(ctx, r.Name(), err)
	}
	if ctx.Err() != nil {
		// Over a wire a reply after the deadline is dropped; in one process too,
		// so that callers see the same outcome wherever the handler runs.
		return *new(Resp), message.ErrTimeout
	}
	return typed.copyOut(resp), nil
}

// callRemote sends req through the transport.
func callRemote[Req, Resp any](ctx context.Context, b *Bus, r message.Request[Req, Resp], req Req) (Resp, error) {
	var zero Resp
	if b.transport == nil {
		return zero, message.ErrNoHandler.Withf("no process serves %s (module %q is not running here)", r.Name(), ModuleOf(r.Name()))
	}
	env, err := NewEnvelope(ctx, message.KindRequest, r.Name(), req)
	if err != nil {
		return zero, fmt.Errorf("bus: encode %s: %w", r.Name(), err)
	}
	reply, err := b.transport.Request(ctx, env)
	if err != nil {
		return zero, err
	}
	var resp Resp
	if err := json.Unmarshal(reply, &resp); err != nil {
		return zero, message.ErrInvalidMessage.Withf("decode reply to %s: %v", r.Name(), err)
	}
	return resp, nil
}

// Handle returns the registration of fn as the handler of r. Provide it to the fx
// group "bus.requests"; a request has one handler per process.
func Handle[Req, Resp any](r message.Request[Req, Resp], fn func(context.Context, Req) (Resp, error)) RequestHandler {
	h := &requestHandler[Req, Resp]{name: r.Name(), fn: fn, copyReq: copier[Req](), copyResp: copier[Resp]()}
	return RequestHandler{Name: r.Name(), impl: h, serve: h.serveEncoded, parks: r.Parks()}
}

type requestHandler[Req, Resp any] struct {
	name     string
	fn       func(context.Context, Req) (Resp, error)
	copyReq  func(Req) Req   // nil: values of Req share no memory
	copyResp func(Resp) Resp // nil: values of Resp share no memory
}

// copyIn is what the handler receives of the caller's req: a copy when they could
// otherwise share memory, so that a receiver never mutates a sender's values.
func (h *requestHandler[Req, Resp]) copyIn(req Req) Req {
	if h.copyReq == nil {
		return req
	}
	return h.copyReq(req)
}

// copyOut is copyIn for the reply.
func (h *requestHandler[Req, Resp]) copyOut(resp Resp) Resp {
	if h.copyResp == nil {
		return resp
	}
	return h.copyResp(resp)
}

// copier returns how the bus copies values of T in one process: not at all when
// they cannot share memory, with their own Clone method when they have one, else
// by reflection.
func copier[T any]() func(T) T {
	if !hasReferences(reflect.TypeFor[T]()) {
		return nil
	}
	var zero T
	if _, ok := any(zero).(message.Cloner[T]); ok {
		return func(v T) T { return any(v).(message.Cloner[T]).Clone() }
	}
	return deepCopy[T]
}

func (h *requestHandler[Req, Resp]) serveEncoded(ctx context.Context, payload []byte) ([]byte, error) {
	var req Req
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, message.ErrInvalidMessage.Withf("decode %s: %v", h.name, err)
	}
	resp, err := h.fn(ctx, req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// RequestHandler is a registered request handler; build it with Handle.
type RequestHandler struct {
	Name  string
	impl  any
	serve func(ctx context.Context, payload []byte) ([]byte, error)
	parks bool
}

// Seal encodes an outgoing durable message as an envelope, taking causation and
// correlation from ctx.
func Seal(ctx context.Context, o message.Outgoing) (message.Envelope, error) {
	return NewEnvelope(ctx, o.Kind, o.Type, o.Payload)
}

// Subscription receives durable messages of one type. Handle must be idempotent by
// envelope ID (package outbox builds subscriptions that are, through an inbox) and
// return nil only once the message's effect is committed.
type Subscription struct {
	Type     string // the message type, e.g. "catalog.ProductCreated"
	Consumer string // unique per handler: "<module>.<handler>", e.g. "orders.price-cache"
	Handle   func(ctx context.Context, env message.Envelope) error

	// Group, when set, can handle envelopes of all the subscriptions that share it
	// together (package outbox groups one consumer's subscriptions on one database,
	// so a batch costs one transaction instead of one per message). Group values
	// must be comparable. Unit is what the group needs of this subscription.
	Group BatchGroup
	Unit  any

	obs Observer // set by Bus.Instrument
}

// BatchGroup handles a batch of envelopes for the subscriptions that share it, in
// order, and returns one error (nil: its effect is committed) per item.
type BatchGroup interface {
	HandleBatch(ctx context.Context, items []BatchItem) []error
}

// BatchItem is one envelope for one subscription in a batch.
type BatchItem struct {
	Sub Subscription
	Env message.Envelope
}

// Context returns ctx with the item's envelope as the cause of the work done under it,
// as DeliverTo does for a single delivery.
func (i BatchItem) Context(ctx context.Context) context.Context {
	return message.WithCause(ctx, message.Cause{ID: i.Env.ID, CorrelationID: i.Env.CorrelationID})
}

// BatchPublisher is a Transport that hands many durable envelopes to the broker at
// once, returning one error per envelope (nil: the broker stored it).
// DeliverBatch uses it when the transport has it.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, envs []message.Envelope) []error
}

// Transport carries envelopes between processes. The in-process configuration
// has none: every request is served locally or fails with message.ErrNoHandler.
type Transport interface {
	// Request sends a request envelope to the process that serves its type and
	// returns the reply payload, or the *message.Error the handler returned.
	Request(ctx context.Context, env message.Envelope) ([]byte, error)
	// Publish hands a durable envelope to the broker; it returns nil only once the
	// broker has stored it.
	Publish(ctx context.Context, env message.Envelope) error
	// Ping reports whether the transport can reach its broker.
	Ping(ctx context.Context) error
}

// Limits bound the work a module accepts at once. Zero values take the defaults.
type Limits struct {
	// MaxInFlight is how many requests one module handles at once (default 256).
	MaxInFlight int
	// MaxWaiting is how many callers may wait for a slot (default 4×MaxInFlight);
	// callers beyond it get message.ErrOverloaded at once.
	MaxWaiting int
	// MaxWait caps how long a caller waits for a slot when its context has a later
	// deadline or none (default 2s).
	MaxWait time.Duration
	// MaxParked is how many parked requests (long polls, see Request.Parked) one
	// module holds at once (default 10000).
	MaxParked int
}

func (l Limits) withDefaults() Limits {
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = 256
	}
	if l.MaxWaiting <= 0 {
		l.MaxWaiting = 4 * l.MaxInFlight
	}
	if l.MaxWait <= 0 {
		l.MaxWait = 2 * time.Second
	}
	if l.MaxParked <= 0 {
		l.MaxParked = 10000
	}
	return l
}

// Bus routes messages to local handlers or to the transport. Build it with New; it
// is safe for concurrent use and its routing tables never change after New.
type Bus struct {
	requests  map[string]localRequest
	subs      map[string][]Subscription
	transport Transport
	log       *slog.Logger
	obs       Observer // nil: not instrumented (see Instrument)
	faults    Faults   // nil: no faults injected (see InjectFaults)
}

type localRequest struct {
	impl  any
	serve func(ctx context.Context, payload []byte) ([]byte, error)
	limit *limiter
}

// New builds a bus from the handlers and subscriptions registered in this process.
// transport may be nil (in-process only). Two handlers for one request type, or two
// subscriptions with one consumer name for one type, are a wiring error.
func New(log *slog.Logger, limits Limits, transport Transport, handlers []RequestHandler, subs []Subscription) (*Bus, error) {
	limits = limits.withDefaults()
	b := &Bus{requests: map[string]localRequest{}, subs: map[string][]Subscription{}, transport: transport, log: log}
	perModule := map[string]*limiter{}
	for _, h := range handlers {
		if _, dup := b.requests[h.Name]; dup {
			return nil, fmt.Errorf("bus: two handlers for request %q", h.Name)
		}
		mod, lim := ModuleOf(h.Name), limits
		if h.parks {
			mod, lim = mod+" (parked)", Limits{MaxInFlight: limits.MaxParked, MaxWaiting: 1, MaxWait: limits.MaxWait}
		}
		l, ok := perModule[mod]
		if !ok {
			l = newLimiter(lim)
			perModule[mod] = l
		}
		b.requests[h.Name] = localRequest{impl: h.impl, serve: h.serve, limit: l}
	}
	seen := map[string]bool{}
	for _, s := range subs {
		key := s.Type + "|" + s.Consumer
		if seen[key] {
			return nil, fmt.Errorf("bus: consumer %q subscribes to %q twice", s.Consumer, s.Type)
		}
		seen[key] = true
		b.subs[s.Type] = append(b.subs[s.Type], s)
	}
	return b, nil
}

// ModuleOf returns the module that owns a message type: the part before the first dot.
func ModuleOf(typ string) string {
	if i := strings.IndexByte(typ, '.'); i > 0 {
		return typ[:i]
	}
	return typ
}

// Serves reports whether a handler for the request type runs in this process.
func (b *Bus) Serves(requestType string) bool {
	_, ok := b.requests[requestType]
	return ok
}

// LocalRequestTypes lists the request types served in this process, sorted.
func (b *Bus) LocalRequestTypes() []string {
	out := make([]string, 0, len(b.requests))
	for name := range b.requests {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// SubscribedTypes lists the message types this process subscribes to, sorted.
// Network transports use it to consume those types from the broker.
func (b *Bus) SubscribedTypes() []string {
	out := make([]string, 0, len(b.subs))
	for typ := range b.subs {
		out = append(out, typ)
	}
	sort.Strings(out)
	return out
}

// ServeEncoded answers an encoded request with a local handler. Network transports
// call it for requests that arrive from other processes.
func (b *Bus) ServeEncoded(ctx context.Context, env message.Envelope) ([]byte, error) {
	h, ok := b.requests[env.Type]
	if !ok {
		return nil, message.ErrNoHandler.Withf("no handler for %s in this process", env.Type)
	}
	if err := h.limit.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.limit.release()
	ctx = message.WithCause(ctx, message.Cause{ID: env.ID, CorrelationID: env.CorrelationID})
	ctx, end := b.handling(ctx, Op{Role: Handling, Kind: message.KindRequest, Type: env.Type, Headers: env.Headers, Remote: true})
	out, err := h.serve(ctx, env.Payload)
	end(err)
	if err != nil {
		return nil, b.handlerError(ctx, env.Type, err)
	}
	return out, nil
}

// Deliver hands a durable envelope on: to every local subscriber of its type and,
// when there is a transport, to the broker for other processes. It returns nil only
// when every local subscriber and the broker have taken it; a failed delivery is
// retried by the caller (the outbox relay), and subscribers that already took it
// drop the duplicate.
func (b *Bus) Deliver(ctx context.Context, env message.Envelope) error {
	var errs []error
	for i, err := range b.deliverLocal(ctx, env) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.subs[env.Type][i].Consumer, err))
		}
	}
	if b.transport != nil {
		if err := b.transport.Publish(ctx, env); err != nil {
			errs = append(errs, fmt.Errorf("publish: %w", err))
		}
	} else if env.Kind == message.KindCommand && len(b.subs[env.Type]) == 0 {
		// A command must reach its receiver; an event nobody here listens to is done.
		errs = append(errs, message.ErrNoHandler.Withf("no process handles command %s", env.Type))
	}
	err := errors.Join(errs...)
	b.sent(ctx, env, err)
	return err
}

// deliverLocal hands env to each subscriber of its type in this process, one
// after the other, and returns their outcomes in the order of b.subs.
func (b *Bus) deliverLocal(ctx context.Context, env message.Envelope) []error {
	subs := b.subs[env.Type]
	if b.faults != nil && len(subs) > 0 {
		items := make([]BatchItem, len(subs))
		for i, s := range subs {
			items[i] = BatchItem{Sub: s, Env: env}
		}
		return b.HandleItems(ctx, items)
	}
	errs := make([]error, len(subs))
	for i, s := range subs {
		errs[i] = b.DeliverTo(ctx, s, env)
	}
	return errs
}

// DeliverBatch is Deliver for many envelopes at once, in order, returning one error
// per envelope. Envelopes for subscriptions that share a BatchGroup are handed to it
// together (one transaction for the batch); the groups, which are different
// receivers, run concurrently. Each subscription still sees its envelopes in order.
func (b *Bus) DeliverBatch(ctx context.Context, envs []message.Envelope) []error {
	var items []BatchItem
	var owner []int // the envelope of each item
	for i, env := range envs {
		for _, s := range b.subs[env.Type] {
			items = append(items, BatchItem{Sub: s, Env: env})
			owner = append(owner, i)
		}
	}
	var handled, published []error // published: the broker's answers, when the transport takes batches
	var wg sync.WaitGroup
	wg.Go(func() { handled = b.HandleItems(ctx, items) })
	if bp, ok := b.transport.(BatchPublisher); ok {
		wg.Go(func() { published = bp.PublishBatch(ctx, envs) })
	}
	wg.Wait()
	errs := make([][]error, len(envs))
	for k, err := range handled {
		if err != nil {
			errs[owner[k]] = append(errs[owner[k]], fmt.Errorf("%s: %w", items[k].Sub.Consumer, err))
		}
	}
	out := make([]error, len(envs))
	for i, env := range envs {
		if b.transport != nil {
			err := error(nil)
			if published != nil {
				err = published[i]
			} else {
				err = b.transport.Publish(ctx, env)
			}
			if err != nil {
				errs[i] = append(errs[i], fmt.Errorf("publish: %w", err))
			}
		} else if env.Kind == message.KindCommand && len(b.subs[env.Type]) == 0 {
			errs[i] = append(errs[i], message.ErrNoHandler.Withf("no process handles command %s", env.Type))
		}
		out[i] = errors.Join(errs[i]...)
		b.sent(ctx, env, out[i])
	}
	return out
}

// HandleItems hands each item's envelope to its subscription and returns one error
// per item (nil: its effect is committed). Items of subscriptions that share a
// BatchGroup go to it together, in order (one transaction); the groups, which are
// different receivers, run concurrently; items without a group are delivered one by
// one. DeliverBatch uses it for this process's subscribers, and network transports
// for what they receive. On a bus that injects faults (InjectFaults), this is
// where durable messages meet them.
func (b *Bus) HandleItems(ctx context.Context, items []BatchItem) []error {
	if b.faults != nil {
		return b.handleFaulty(ctx, items)
	}
	return b.handleItems(ctx, items)
}

// handleItems is HandleItems without injected faults.
func (b *Bus) handleItems(ctx context.Context, items []BatchItem) []error {
	errs := make([]error, len(items))
	groups := map[BatchGroup][]int{}
	var order []BatchGroup
	for i, it := range items {
		if it.Sub.Group == nil {
			errs[i] = b.DeliverTo(ctx, it.Sub, it.Env)
			continue
		}
		if _, seen := groups[it.Sub.Group]; !seen {
			order = append(order, it.Sub.Group)
		}
		groups[it.Sub.Group] = append(groups[it.Sub.Group], i)
	}
	var wg sync.WaitGroup
	for _, g := range order {
		wg.Go(func() {
			idx := groups[g]
			part := make([]BatchItem, len(idx))
			for k, i := range idx {
				part[k] = items[i]
			}
			for k, err := range g.HandleBatch(ctx, part) {
				errs[idx[k]] = err
			}
		})
	}
	wg.Wait()
	return errs
}

// DeliverTo hands a durable envelope to one subscription, under a context whose
// cause is that envelope.
func (b *Bus) DeliverTo(ctx context.Context, s Subscription, env message.Envelope) error {
	ctx, end := s.begin(message.WithCause(ctx, message.Cause{ID: env.ID, CorrelationID: env.CorrelationID}), env)
	err := s.Handle(ctx, env)
	end(err)
	return err
}

// Subscriptions returns this process's subscriptions to a message type.
func (b *Bus) Subscriptions(typ string) []Subscription { return b.subs[typ] }

// Ping reports whether the bus can reach the other processes it depends on.
func (b *Bus) Ping(ctx context.Context) error {
	if b.transport == nil {
		return nil
	}
	return b.transport.Ping(ctx)
}

// handlerError turns a handler's error into what the caller receives (see message.AsError),
// logging causes the caller will not see.
func (b *Bus) handlerError(ctx context.Context, typ string, err error) error {
	be := message.AsError(err)
	switch be {
	case message.ErrInternal:
		b.log.ErrorContext(ctx, "request handler failed", "type", typ, "err", err)
	case message.ErrDependencyDown:
		b.log.WarnContext(ctx, "request handler could not reach a dependency", "type", typ, "err", err)
	}
	return be
}

// deepCopy returns a copy of v that shares no memory with it.
func deepCopy[T any](v T) T {
	c, ok := clone.Clone(v).(T)
	if !ok {
		return v // a nil interface value: nothing to share
	}
	return c
}

// hasReferences reports whether values of t can share memory when copied by
// assignment: pointers, slices, maps, channels, funcs and interfaces can; strings
// cannot (they are immutable).
func hasReferences(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return hasReferences(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasReferences(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}
