// These tests are in package bus (not bus_test) for one reason: the backpressure test
// must know when a caller has started waiting for a slot, which only the limiter can
// tell. Everything else goes through the exported API.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/testlog"
)

var discard = slog.New(slog.DiscardHandler)

func newBus(t *testing.T, limits Limits, tr Transport, handlers []RequestHandler, subs []Subscription) *Bus {
	t.Helper()
	b, err := New(discard, limits, tr, handlers, subs)
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	return b
}

// loopback is a Transport that carries requests to another bus the way a network
// transport would: the envelope and the reply or error are encoded as JSON on the way.
type loopback struct {
	server    *Bus
	mu        sync.Mutex
	published []message.Envelope
	pubErr    error
}

func (l *loopback) Request(ctx context.Context, env message.Envelope) ([]byte, error) {
	wire, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	var in message.Envelope
	if err := json.Unmarshal(wire, &in); err != nil {
		return nil, err
	}
	reply, err := l.server.ServeEncoded(ctx, in)
	if err != nil {
		be := message.AsError(err)
		wireErr, merr := json.Marshal(be)
		if merr != nil {
			return nil, merr
		}
		var out *message.Error
		if err := json.Unmarshal(wireErr, &out); err != nil {
			return nil, err
		}
		return nil, out
	}
	return reply, nil
}

func (l *loopback) Publish(ctx context.Context, env message.Envelope) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pubErr != nil {
		return l.pubErr
	}
	l.published = append(l.published, env)
	return nil
}

func (l *loopback) Ping(context.Context) error { return nil }

type sumReq struct {
	A, B int
	Note string
}
type sumResp struct {
	Sum  int
	Note string
}

var (
	sumRequest       = message.NewRequest[sumReq, sumResp]("calc.Sum")
	errNegative      = message.NewError(message.Invalid, "calc.negative", "operands must not be negative")
	errOtherSentinel = message.NewError(message.Invalid, "calc.other", "operands must not be negative") // same text, other code
)

// sumHandler answers sums and turns special inputs into the errors the tests need.
func sumHandler(ctx context.Context, r sumReq) (sumResp, error) {
	switch {
	case r.A < 0 || r.B < 0:
		return sumResp{}, errNegative.OnField("body.a")
	case r.Note == "plain":
		return sumResp{}, errors.New("database password is hunter2")
	case r.Note == "wrapped":
		return sumResp{}, fmt.Errorf("pricing: %w", errNegative.Withf("a is %d", r.A))
	case r.Note == "deadline":
		<-ctx.Done()
		return sumResp{}, ctx.Err()
	}
	return sumResp{Sum: r.A + r.B, Note: r.Note}, nil
}

// topologies runs the same request against a handler in this process and against one
// reached through a transport that encodes everything as JSON.
func topologies(t *testing.T, handlers ...RequestHandler) map[string]*Bus {
	t.Helper()
	server := newBus(t, Limits{}, nil, handlers, nil)
	return map[string]*Bus{
		"in-process": server,
		"transport":  newBus(t, Limits{}, &loopback{server: server}, nil, nil),
	}
}

func TestRequestRoundTrip(t *testing.T) {
	for topo, b := range topologies(t, Handle(sumRequest, sumHandler)) {
		t.Run(topo, func(t *testing.T) {
			for _, tc := range []struct {
				req  sumReq
				want sumResp
			}{
				{sumReq{A: 1, B: 2}, sumResp{Sum: 3}},
				{sumReq{A: 0, B: 0, Note: "zero"}, sumResp{Sum: 0, Note: "zero"}},
				{sumReq{A: 40, B: 2, Note: "ünïcode"}, sumResp{Sum: 42, Note: "ünïcode"}},
			} {
				got, err := Call(t.Context(), b, sumRequest, tc.req)
				if err != nil {
					t.Fatalf("Call(%+v): %v", tc.req, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("Call(%+v) (-want +got):\n%s", tc.req, diff)
				}
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name    string
		req     sumReq
		ctx     func(t *testing.T) context.Context
		want    *message.Error // exactly what the caller receives
		is      error          // the sentinel errors.Is must match
		isNot   error          // a sentinel it must not match
		logsErr bool           // the handler's own error is logged where it happened
	}{
		{
			name:  "handler *message.Error is returned unchanged",
			req:   sumReq{A: -1},
			want:  &message.Error{Kind: message.Invalid, Code: "calc.negative", Message: "operands must not be negative", Field: "body.a"},
			is:    errNegative,
			isNot: errOtherSentinel,
		},
		{
			name:  "wrapped *message.Error is unwrapped",
			req:   sumReq{A: 7, Note: "wrapped"},
			want:  &message.Error{Kind: message.Invalid, Code: "calc.negative", Message: "a is 7"},
			is:    errNegative,
			isNot: message.ErrInternal,
		},
		{
			name:    "plain error becomes message.ErrInternal and its text stays here",
			req:     sumReq{Note: "plain"},
			want:    message.ErrInternal,
			is:      message.ErrInternal,
			isNot:   errNegative,
			logsErr: true,
		},
		{
			name: "deadline becomes message.ErrTimeout",
			req:  sumReq{Note: "deadline"},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want:  message.ErrTimeout,
			is:    message.ErrTimeout,
			isNot: message.ErrInternal,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := testlog.New(slog.LevelDebug)
			server, err := New(rec.Logger(), Limits{}, nil, []RequestHandler{Handle(sumRequest, sumHandler)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for topo, b := range map[string]*Bus{
				"in-process": server,
				"transport":  newBus(t, Limits{}, &loopback{server: server}, nil, nil),
			} {
				t.Run(topo, func(t *testing.T) {
					ctx := t.Context()
					if tc.ctx != nil {
						ctx = tc.ctx(t)
					}
					_, err := Call(ctx, b, sumRequest, tc.req)
					checkBusError(t, err, tc.want, tc.is, tc.isNot)

					// The error survives the wire: marshal and unmarshal it, and the
					// decoded copy still matches the sentinel.
					wire, merr := json.Marshal(err)
					if merr != nil {
						t.Fatalf("marshal %v: %v", err, merr)
					}
					var decoded *message.Error
					if uerr := json.Unmarshal(wire, &decoded); uerr != nil {
						t.Fatalf("unmarshal %s: %v", wire, uerr)
					}
					checkBusError(t, decoded, tc.want, tc.is, tc.isNot)
					if strings.Contains(string(wire), "hunter2") {
						t.Errorf("the handler's internal error text crossed the bus: %s", wire)
					}
				})
			}
			logged := rec.Lines()
			if got := slices.ContainsFunc(logged, func(l string) bool { return strings.Contains(l, "hunter2") }); got != tc.logsErr {
				t.Errorf("handler's cause logged = %v; want %v (log: %v)", got, tc.logsErr, logged)
			}
		})
	}
}

func checkBusError(t *testing.T, err error, want *message.Error, is, isNot error) {
	t.Helper()
	var got *message.Error
	if !errors.As(err, &got) {
		t.Fatalf("error %v (%T) is not a *bus.Error", err, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if !errors.Is(err, is) {
		t.Errorf("errors.Is(%v, %v) = false; want true", err, is)
	}
	if errors.Is(err, isNot) {
		t.Errorf("errors.Is(%v, %v) = true; want false", err, isNot)
	}
}

func TestErrorIs(t *testing.T) {
	sentinel := message.NewError(message.NotFound, "m.thing_not_found", "thing not found")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"the sentinel itself", sentinel, true},
		{"Withf copy", sentinel.Withf("thing %d not found", 7), true},
		{"OnField copy", sentinel.OnField("body.id"), true},
		{"wrapped", fmt.Errorf("ctx: %w", sentinel), true},
		{"decoded copy", &message.Error{Code: "m.thing_not_found"}, true},
		{"same kind and text, other code", message.NewError(message.NotFound, "m.other", "thing not found"), false},
		{"plain error with the same text", errors.New(sentinel.Error()), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, sentinel); got != tc.want {
				t.Errorf("errors.Is(%v, sentinel) = %v; want %v", tc.err, got, tc.want)
			}
		})
	}
	// Withf and OnField copy; they must not change the shared sentinel.
	_ = sentinel.Withf("changed").OnField("x")
	if diff := cmp.Diff(&message.Error{Kind: message.NotFound, Code: "m.thing_not_found", Message: "thing not found"}, sentinel); diff != "" {
		t.Errorf("sentinel changed by Withf/OnField (-want +got):\n%s", diff)
	}
}

func TestAsError(t *testing.T) {
	sentinel := message.NewError(message.Conflict, "m.conflict", "conflict")
	tests := []struct {
		name string
		in   error
		want *message.Error
	}{
		{"nil", nil, nil},
		{"*message.Error", sentinel, sentinel},
		{"wrapped *message.Error", fmt.Errorf("a: %w", fmt.Errorf("b: %w", sentinel)), sentinel},
		{"joined *message.Error", errors.Join(errors.New("x"), sentinel), sentinel},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), message.ErrTimeout},
		{"cancel", context.Canceled, message.ErrTimeout},
		{"plain", errors.New("boom"), message.ErrInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, message.AsError(tc.in)); diff != "" {
				t.Errorf("message.AsError(%v) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestRequestNoHandler(t *testing.T) {
	other := message.NewRequest[sumReq, sumResp]("calc.Other")
	b := newBus(t, Limits{}, nil, []RequestHandler{Handle(sumRequest, sumHandler)}, nil)

	_, err := Call(t.Context(), b, other, sumReq{})
	if !errors.Is(err, message.ErrNoHandler) {
		t.Errorf("Call without handler = %v; want message.ErrNoHandler", err)
	}
	env, err := NewEnvelope(t.Context(), message.KindRequest, other.Name(), sumReq{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ServeEncoded(t.Context(), env); !errors.Is(err, message.ErrNoHandler) {
		t.Errorf("ServeEncoded without handler = %v; want message.ErrNoHandler", err)
	}
	if b.Serves(other.Name()) || !b.Serves(sumRequest.Name()) {
		t.Errorf("Serves(%q), Serves(%q) = %v, %v; want false, true",
			other.Name(), sumRequest.Name(), b.Serves(other.Name()), b.Serves(sumRequest.Name()))
	}
}

func TestRequestDeclaredWithOtherTypes(t *testing.T) {
	// Two declarations of one name with different types: a wiring mistake that must
	// be reported, not a panic.
	wrong := message.NewRequest[string, int](sumRequest.Name())
	b := newBus(t, Limits{}, nil, []RequestHandler{Handle(sumRequest, sumHandler)}, nil)
	if _, err := Call(t.Context(), b, wrong, "x"); err == nil {
		t.Error("Call with mismatched types returned nil error")
	}
}

func TestServeEncoded(t *testing.T) {
	var gotCause message.Cause
	h := Handle(sumRequest, func(ctx context.Context, r sumReq) (sumResp, error) {
		gotCause, _ = message.CauseFrom(ctx)
		return sumHandler(ctx, r)
	})

	b := newBus(t, Limits{}, nil, []RequestHandler{h}, nil)
	ctx := message.WithCause(t.Context(), message.Cause{ID: "http-req-1", CorrelationID: "corr-1"})

	t.Run("reply", func(t *testing.T) {
		env, err := NewEnvelope(ctx, message.KindRequest, sumRequest.Name(), sumReq{A: 2, B: 3, Note: "n"})
		if err != nil {
			t.Fatal(err)
		}
		out, err := b.ServeEncoded(t.Context(), env)
		if err != nil {
			t.Fatalf("ServeEncoded: %v", err)
		}
		var got sumResp
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("decode reply %s: %v", out, err)
		}
		if diff := cmp.Diff(sumResp{Sum: 5, Note: "n"}, got); diff != "" {
			t.Errorf("reply (-want +got):\n%s", diff)
		}
		// The handler works under the request's cause, so the messages it sends
		// are caused by it and keep its correlation.
		if diff := cmp.Diff(message.Cause{ID: env.ID, CorrelationID: "corr-1"}, gotCause); diff != "" {
			t.Errorf("handler's cause (-want +got):\n%s", diff)
		}
	})
	t.Run("error", func(t *testing.T) {
		env, _ := NewEnvelope(ctx, message.KindRequest, sumRequest.Name(), sumReq{A: -1})
		_, err := b.ServeEncoded(t.Context(), env)
		checkBusError(t, err, errNegative.OnField("body.a"), errNegative, message.ErrInternal)
	})
	t.Run("plain error", func(t *testing.T) {
		env, _ := NewEnvelope(ctx, message.KindRequest, sumRequest.Name(), sumReq{Note: "plain"})
		_, err := b.ServeEncoded(t.Context(), env)
		checkBusError(t, err, message.ErrInternal, message.ErrInternal, errNegative)
	})
	t.Run("undecodable payload", func(t *testing.T) {
		env, _ := NewEnvelope(ctx, message.KindRequest, sumRequest.Name(), "not an object")
		_, err := b.ServeEncoded(t.Context(), env)
		if !errors.Is(err, message.ErrInvalidMessage) {
			t.Errorf("ServeEncoded(bad payload) = %v; want message.ErrInvalidMessage", err)
		}
	})
}

func TestNewRejectsDuplicates(t *testing.T) {
	noop := func(context.Context, message.Envelope) error { return nil }
	tests := []struct {
		name     string
		handlers []RequestHandler
		subs     []Subscription
		wantErr  bool
	}{
		{
			name:     "two handlers for one request",
			handlers: []RequestHandler{Handle(sumRequest, sumHandler), Handle(sumRequest, sumHandler)},
			wantErr:  true,
		},
		{
			name:     "handlers for different requests",
			handlers: []RequestHandler{Handle(sumRequest, sumHandler), Handle(message.NewRequest[sumReq, sumResp]("calc.Other"), sumHandler)},
		},
		{
			name:    "one consumer subscribed twice to one type",
			subs:    []Subscription{{Type: "m.E", Consumer: "x.c", Handle: noop}, {Type: "m.E", Consumer: "x.c", Handle: noop}},
			wantErr: true,
		},
		{
			name: "two consumers of one type",
			subs: []Subscription{{Type: "m.E", Consumer: "x.c", Handle: noop}, {Type: "m.E", Consumer: "y.c", Handle: noop}},
		},
		{
			name: "one consumer of two types",
			subs: []Subscription{{Type: "m.E", Consumer: "x.c", Handle: noop}, {Type: "m.F", Consumer: "x.c", Handle: noop}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(discard, Limits{}, nil, tc.handlers, tc.subs)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New error = %v; want error %v", err, tc.wantErr)
			}
			if err != nil && b != nil {
				t.Error("New returned a bus along with its error")
			}
		})
	}
}

func TestLocalRequestTypes(t *testing.T) {
	mk := func(name string) RequestHandler { return Handle(message.NewRequest[sumReq, sumResp](name), sumHandler) }
	b := newBus(t, Limits{}, nil, []RequestHandler{mk("b.Z"), mk("a.Y"), mk("b.A")}, nil)
	if diff := cmp.Diff([]string{"a.Y", "b.A", "b.Z"}, b.LocalRequestTypes()); diff != "" {
		t.Errorf("LocalRequestTypes (-want +got):\n%s", diff)
	}
	if got := ModuleOf("catalog.GetProducts"); got != "catalog" {
		t.Errorf("ModuleOf = %q; want catalog", got)
	}
}

// --- deep copies -------------------------------------------------------------

type item struct {
	SKU string
	Qty int
}

type sliceMsg struct{ IDs []string }
type mapMsg struct{ Tags map[string]string }
type pointerMsg struct{ Limit *int }
type nestedMsg struct {
	Items []item
	Inner struct{ Counts map[string][]int }
}
type arrayMsg struct{ Pairs [2][]string }

// assertRequestCopied sends mk() to a handler that mutates it and checks that the
// caller's value is unchanged.
func assertRequestCopied[T any](t *testing.T, mk func() T, mutate func(T)) {
	t.Helper()
	req := message.NewRequest[T, struct{}]("copy.Req")
	handlerRan := false
	b := newBus(t, Limits{}, nil, []RequestHandler{Handle(req, func(_ context.Context, v T) (struct{}, error) {
		handlerRan = true
		mutate(v)
		return struct{}{}, nil
	})}, nil)
	callers := mk()
	if _, err := Call(t.Context(), b, req, callers); err != nil {
		t.Fatalf("Call: %v", err)
	}
	if !handlerRan {
		t.Fatal("handler did not run")
	}
	if diff := cmp.Diff(mk(), callers); diff != "" {
		t.Errorf("handler's mutation reached the caller's request (-want +got):\n%s", diff)
	}
}

// assertReplyCopied has a handler return a value it keeps, lets the caller mutate
// the reply, and checks that the handler's value is unchanged.
func assertReplyCopied[T any](t *testing.T, mk func() T, mutate func(T)) {
	t.Helper()
	req := message.NewRequest[struct{}, T]("copy.Resp")
	kept := mk()
	b := newBus(t, Limits{}, nil, []RequestHandler{Handle(req, func(context.Context, struct{}) (T, error) {
		return kept, nil
	})}, nil)
	reply, err := Call(t.Context(), b, req, struct{}{})
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if diff := cmp.Diff(mk(), reply); diff != "" {
		t.Fatalf("reply (-want +got):\n%s", diff)
	}
	mutate(reply)
	if diff := cmp.Diff(mk(), kept); diff != "" {
		t.Errorf("caller's mutation reached the handler's data (-want +got):\n%s", diff)
	}
	again, err := Call(t.Context(), b, req, struct{}{})
	if err != nil {
		t.Fatalf("second Call: %v", err)
	}
	if diff := cmp.Diff(mk(), again); diff != "" {
		t.Errorf("second reply (-want +got):\n%s", diff)
	}
}

func TestDeepCopy(t *testing.T) {
	cases := map[string]func(t *testing.T){
		"slice": func(t *testing.T) {
			mk := func() sliceMsg { return sliceMsg{IDs: []string{"a", "b"}} }
			mut := func(m sliceMsg) { m.IDs[0] = "mutated" }
			assertRequestCopied(t, mk, mut)
			assertReplyCopied(t, mk, mut)
		},
		"map": func(t *testing.T) {
			mk := func() mapMsg { return mapMsg{Tags: map[string]string{"k": "v"}} }
			mut := func(m mapMsg) { m.Tags["k"] = "mutated"; m.Tags["new"] = "x" }
			assertRequestCopied(t, mk, mut)
			assertReplyCopied(t, mk, mut)
		},
		"pointer": func(t *testing.T) {
			mk := func() pointerMsg { n := 7; return pointerMsg{Limit: &n} }
			mut := func(m pointerMsg) { *m.Limit = 99 }
			assertRequestCopied(t, mk, mut)
			assertReplyCopied(t, mk, mut)
		},
		"nested struct": func(t *testing.T) {
			mk := func() nestedMsg {
				var m nestedMsg
				m.Items = []item{{SKU: "s1", Qty: 1}}
				m.Inner.Counts = map[string][]int{"x": {1, 2}}
				return m
			}
			mut := func(m nestedMsg) { m.Items[0].Qty = 100; m.Inner.Counts["x"][1] = 100 }
			assertRequestCopied(t, mk, mut)
			assertReplyCopied(t, mk, mut)
		},
		"array of slices": func(t *testing.T) {
			mk := func() arrayMsg { return arrayMsg{Pairs: [2][]string{{"a"}, {"b"}}} }
			mut := func(m arrayMsg) { m.Pairs[1][0] = "mutated" }
			assertRequestCopied(t, mk, mut)
			assertReplyCopied(t, mk, mut)
		},
		"bare slice": func(t *testing.T) {
			mk := func() []item { return []item{{SKU: "a", Qty: 1}} }
			mut := func(m []item) { m[0].SKU = "mutated" }
			assertRequestCopied(t, mk, mut)
			assertReplyCopied(t, mk, mut)
		},
	}
	for name, run := range cases {
		t.Run(name, run)
	}
}

func TestHasReferences(t *testing.T) {
	tests := []struct {
		name string
		typ  func() bool
		want bool
	}{
		{"int", func() bool { return copier[int]() != nil }, false},
		{"string", func() bool { return copier[string]() != nil }, false},
		{"flat struct", func() bool { return copier[sumReq]() != nil }, false},
		{"array of ints", func() bool { return copier[[4]int]() != nil }, false},
		{"slice", func() bool { return copier[sliceMsg]() != nil }, true},
		{"map", func() bool { return copier[mapMsg]() != nil }, true},
		{"pointer", func() bool { return copier[pointerMsg]() != nil }, true},
		{"array of slices", func() bool { return copier[arrayMsg]() != nil }, true},
		{"nested", func() bool { return copier[nestedMsg]() != nil }, true},
		{"any", func() bool { return copier[any]() != nil }, true},
		{"reply", func() bool {
			return Handle(message.NewRequest[int, sliceMsg]("x.X"), nil).impl.(*requestHandler[int, sliceMsg]).copyResp != nil
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.typ(); got != tc.want {
				t.Errorf("needs copy = %v; want %v", got, tc.want)
			}
		})
	}
}

type selfCopying struct{ Items []int }

var selfCopies int

func (m selfCopying) Clone() selfCopying {
	selfCopies++
	return selfCopying{Items: append([]int(nil), m.Items...)}
}

// A message type with its own Clone is copied with it, and still isolated.
func TestClonerIsUsed(t *testing.T) {
	req := message.NewRequest[selfCopying, selfCopying]("clone.Echo")
	b, err := New(slog.New(slog.DiscardHandler), Limits{}, nil, []RequestHandler{
		Handle(req, func(_ context.Context, m selfCopying) (selfCopying, error) {
			m.Items[0] = 99
			return m, nil
		}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	selfCopies = 0
	in := selfCopying{Items: []int{1, 2}}
	out, err := Call(context.Background(), b, req, in)
	if err != nil {
		t.Fatal(err)
	}
	if selfCopies != 2 {
		t.Errorf("Clone ran %d times, want 2 (request and reply)", selfCopies)
	}
	if in.Items[0] != 1 || out.Items[0] != 99 {
		t.Errorf("in = %v, out = %v: sender and receiver shared memory", in.Items, out.Items)
	}
}

// --- backpressure ------------------------------------------------------------

type blocker struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *blocker) handle(ctx context.Context, r sumReq) (sumResp, error) {
	b.entered <- struct{}{}
	<-b.release
	return sumResp{Sum: r.A + r.B}, nil
}

type result struct {
	resp sumResp
	err  error
}

func callAsync(ctx context.Context, b *Bus, req sumReq) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := Call(ctx, b, sumRequest, req)
		ch <- result{resp, err}
	}()
	return ch
}

// await returns the call's result, failing the test if it does not come within a
// generous deadline (a caller that should be answered at once but blocks instead).
func await(t *testing.T, what string, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
		return result{}
	}
}

// waitEntered waits for the blocked handler to start, failing after a generous deadline.
func (b *blocker) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-b.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never started")
	}
}

func waiting(b *Bus, name string) int64 { return b.requests[name].limit.waiting.Load() }

func TestBackpressure(t *testing.T) {
	// MaxWait is long so that only the behaviour under test can end a wait.
	limits := Limits{MaxInFlight: 1, MaxWaiting: 1, MaxWait: time.Hour}
	blk := newBlocker()
	peer := message.NewRequest[sumReq, sumResp]("other.Sum")
	b := newBus(t, limits, nil, []RequestHandler{
		Handle(sumRequest, blk.handle),
		Handle(message.NewRequest[sumReq, sumResp]("calc.Fast"), sumHandler),
		Handle(peer, sumHandler),
	}, nil)
	fast := message.NewRequest[sumReq, sumResp]("calc.Fast")
	ctx := t.Context()

	first := callAsync(ctx, b, sumReq{A: 1})
	blk.waitEntered(t) // the only slot is taken
	second := callAsync(ctx, b, sumReq{A: 2})
	testlog.Eventually(t, "the second caller to wait for a slot", func() bool { return waiting(b, sumRequest.Name()) == 1 })

	// The queue is full: a third caller is refused at once, although MaxWait and its
	// context would let it wait.
	third := await(t, "third caller", callAsync(ctx, b, sumReq{A: 3}))
	if !errors.Is(third.err, message.ErrOverloaded) {
		t.Errorf("third caller: %v; want message.ErrOverloaded", third.err)
	}
	// The limit is per module: calc.Fast shares calc's limiter, other.Sum does not.
	if r := await(t, "other module", callAsyncTo(ctx, b, peer, sumReq{A: 1, B: 1})); r.err != nil || r.resp.Sum != 2 {
		t.Errorf("other module's request = %+v; want Sum 2 and no error", r)
	}
	if r := await(t, "same module", callAsyncTo(ctx, b, fast, sumReq{})); !errors.Is(r.err, message.ErrOverloaded) {
		t.Errorf("same module's other request = %v; want message.ErrOverloaded", r.err)
	}

	select {
	case r := <-second:
		t.Fatalf("second caller returned while the slot was taken: %+v", r)
	default:
	}
	if n := waiting(b, sumRequest.Name()); n != 1 {
		t.Errorf("waiting = %d after refusals; want 1 (refused callers must not count)", n)
	}

	close(blk.release) // the first finishes; the waiter gets the slot
	for i, ch := range []<-chan result{first, second} {
		r := await(t, "queued caller", ch)
		if r.err != nil || r.resp.Sum != i+1 {
			t.Errorf("caller %d = %+v; want Sum %d and no error", i+1, r, i+1)
		}
	}
	// Every slot was given back: a new call goes through.
	if r := await(t, "call after the rush", callAsync(ctx, b, sumReq{A: 4})); r.err != nil {
		t.Errorf("call after the rush: %v", r.err)
	}
	if n := waiting(b, sumRequest.Name()); n != 0 {
		t.Errorf("waiting = %d at rest; want 0", n)
	}
}

func callAsyncTo(ctx context.Context, b *Bus, r message.Request[sumReq, sumResp], req sumReq) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := Call(ctx, b, r, req)
		ch <- result{resp, err}
	}()
	return ch
}

func TestBackpressureWaitEnds(t *testing.T) {
	tests := []struct {
		name    string
		maxWait time.Duration
		ctx     func(t *testing.T) context.Context
	}{
		{
			name:    "caller's deadline passes",
			maxWait: time.Hour,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
		},
		{
			name:    "caller cancels",
			maxWait: time.Hour,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(20*time.Millisecond, cancel)
				t.Cleanup(cancel)
				return ctx
			},
		},
		{
			name:    "MaxWait passes",
			maxWait: 20 * time.Millisecond,
			ctx:     func(t *testing.T) context.Context { return t.Context() },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blk := newBlocker()
			b := newBus(t, Limits{MaxInFlight: 1, MaxWaiting: 1, MaxWait: tc.maxWait}, nil,
				[]RequestHandler{Handle(sumRequest, blk.handle)}, nil)
			first := callAsync(t.Context(), b, sumReq{A: 1})
			blk.waitEntered(t)

			r := await(t, "waiting caller", callAsync(tc.ctx(t), b, sumReq{A: 2}))
			if !errors.Is(r.err, message.ErrOverloaded) {
				t.Errorf("waiting caller = %v; want message.ErrOverloaded", r.err)
			}
			if n := waiting(b, sumRequest.Name()); n != 0 {
				t.Errorf("waiting = %d after the waiter gave up; want 0", n)
			}
			close(blk.release)
			if r := await(t, "first caller", first); r.err != nil {
				t.Errorf("first caller: %v", r.err)
			}
			// The caller that gave up never took the slot, so it is free now.
			if r := await(t, "next caller", callAsync(t.Context(), b, sumReq{A: 3})); r.err != nil || r.resp.Sum != 3 {
				t.Errorf("next caller = %+v; want Sum 3", r)
			}
			select {
			case <-blk.entered: // the next caller's entry
			default:
				t.Error("next caller's handler did not run")
			}
			select {
			case <-blk.entered:
				t.Error("the caller that gave up ran the handler anyway")
			default:
			}
		})
	}
}

func TestBackpressureServeEncoded(t *testing.T) {
	// Requests from other processes take the same slots as local ones.
	blk := newBlocker()
	b := newBus(t, Limits{MaxInFlight: 1, MaxWaiting: 1, MaxWait: time.Hour}, nil,
		[]RequestHandler{Handle(sumRequest, blk.handle)}, nil)
	first := callAsync(t.Context(), b, sumReq{A: 1})
	blk.waitEntered(t)
	second := callAsync(t.Context(), b, sumReq{A: 2})
	testlog.Eventually(t, "the second caller to wait", func() bool { return waiting(b, sumRequest.Name()) == 1 })

	env, _ := NewEnvelope(t.Context(), message.KindRequest, sumRequest.Name(), sumReq{A: 3})
	served := make(chan result, 1)
	go func() {
		_, err := b.ServeEncoded(t.Context(), env)
		served <- result{err: err}
	}()
	if r := await(t, "ServeEncoded with the queue full", served); !errors.Is(r.err, message.ErrOverloaded) {
		t.Errorf("ServeEncoded with the queue full = %v; want message.ErrOverloaded", r.err)
	}
	close(blk.release)
	await(t, "first", first)
	await(t, "second", second)

	// A request served for another process gives its slot back: the next local
	// call gets it (it would otherwise wait for MaxWait, an hour).
	served = make(chan result, 1)
	go func() {
		_, err := b.ServeEncoded(t.Context(), env)
		served <- result{err: err}
	}()
	if r := await(t, "ServeEncoded", served); r.err != nil {
		t.Errorf("ServeEncoded = %v", r.err)
	}
	if r := await(t, "call after ServeEncoded", callAsync(t.Context(), b, sumReq{A: 5})); r.err != nil {
		t.Errorf("call after ServeEncoded: %v", r.err)
	}
}

// --- durable delivery --------------------------------------------------------

type sub struct {
	mu     sync.Mutex
	got    []message.Envelope
	causes []message.Cause
	err    error
}

func (s *sub) subscription(typ, consumer string) Subscription {
	return Subscription{Type: typ, Consumer: consumer, Handle: func(ctx context.Context, env message.Envelope) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.got = append(s.got, env)
		c, _ := message.CauseFrom(ctx)
		s.causes = append(s.causes, c)
		return s.err
	}}
}

func TestDeliver(t *testing.T) {
	errSub := errors.New("subscriber down")
	errPub := errors.New("broker down")
	tests := []struct {
		name      string
		kind      message.Kind
		subs      int   // subscribers of the message's type
		failing   int   // how many of them fail (the first ones)
		transport bool  // a transport is configured
		pubErr    error // its Publish fails with this
		wantIs    []error
		wantErr   bool
		wantPub   bool
	}{
		{name: "event to every subscriber", kind: message.KindEvent, subs: 3},
		{name: "event without subscribers is done", kind: message.KindEvent},
		{name: "command to its receiver", kind: message.KindCommand, subs: 1},
		{name: "command without receiver or transport", kind: message.KindCommand, wantErr: true, wantIs: []error{message.ErrNoHandler}},
		{name: "one subscriber fails, the others still get it", kind: message.KindEvent, subs: 3, failing: 1, wantErr: true, wantIs: []error{errSub}},
		{name: "event is also published", kind: message.KindEvent, subs: 2, transport: true, wantPub: true},
		{name: "command without local receiver goes to the broker", kind: message.KindCommand, transport: true, wantPub: true},
		{name: "broker failure is an error", kind: message.KindEvent, subs: 1, transport: true, pubErr: errPub, wantErr: true, wantIs: []error{errPub}},
		{name: "subscriber and broker failures both reported", kind: message.KindEvent, subs: 2, failing: 1, transport: true, pubErr: errPub, wantErr: true, wantIs: []error{errSub, errPub}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const typ = "orders.Thing"
			var subs []*sub
			var regs []Subscription
			for i := range tc.subs {
				s := &sub{}
				if i < tc.failing {
					s.err = errSub
				}
				subs = append(subs, s)
				regs = append(regs, s.subscription(typ, fmt.Sprintf("m%d.h", i)))
			}
			// A subscriber of another type must not be called.
			bystander := &sub{}
			regs = append(regs, bystander.subscription("orders.Other", "m0.h"))
			var tr Transport
			lb := &loopback{pubErr: tc.pubErr}
			if tc.transport {
				tr = lb
			}
			b := newBus(t, Limits{}, tr, nil, regs)

			env, err := NewEnvelope(message.WithCause(t.Context(), message.Cause{ID: "cause", CorrelationID: "corr"}), tc.kind, typ, map[string]int{"n": 1})
			if err != nil {
				t.Fatal(err)
			}
			err = b.Deliver(t.Context(), env)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Deliver = %v; want error %v", err, tc.wantErr)
			}
			for _, want := range tc.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("Deliver = %v; want it to match %v", err, want)
				}
			}
			if tc.failing > 0 && !strings.Contains(err.Error(), "m0.h") {
				t.Errorf("Deliver = %q; want it to name the failing consumer m0.h", err)
			}
			for i, s := range subs {
				if diff := cmp.Diff([]message.Envelope{env}, s.got); diff != "" {
					t.Errorf("subscriber %d received (-want +got):\n%s", i, diff)
				}
				// Handlers work under the message as their cause.
				if diff := cmp.Diff([]message.Cause{{ID: env.ID, CorrelationID: "corr"}}, s.causes); diff != "" {
					t.Errorf("subscriber %d cause (-want +got):\n%s", i, diff)
				}
			}
			if len(bystander.got) != 0 {
				t.Errorf("subscriber of another type received %d messages", len(bystander.got))
			}
			var wantPub []message.Envelope
			if tc.wantPub {
				wantPub = []message.Envelope{env}
			}
			if diff := cmp.Diff(wantPub, lb.published); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
		})
	}
}

// --- messages ----------------------------------------------------------------

type priceChanged struct {
	SKU   string
	Price int64
	Tags  []string
}

func TestNewEnvelopeCausation(t *testing.T) {
	first, err := NewEnvelope(t.Context(), message.KindEvent, "m.A", 1)
	if err != nil {
		t.Fatal(err)
	}
	if first.CorrelationID != first.ID || first.CausationID != "" {
		t.Errorf("first message: correlation %q, causation %q; want its own id %q and none", first.CorrelationID, first.CausationID, first.ID)
	}
	ctx := message.WithCause(t.Context(), message.Cause{ID: first.ID, CorrelationID: first.CorrelationID})
	second, err := NewEnvelope(ctx, message.KindCommand, "m.B", 2)
	if err != nil {
		t.Fatal(err)
	}
	if second.CausationID != first.ID || second.CorrelationID != first.ID || second.ID == first.ID {
		t.Errorf("caused message = %+v; want causation and correlation %q and a new id", second, first.ID)
	}
	if second.ID <= first.ID {
		t.Errorf("ids %q then %q do not sort by creation", first.ID, second.ID)
	}
	if _, err := NewEnvelope(t.Context(), message.KindEvent, "m.C", func() {}); err == nil {
		t.Error("NewEnvelope with an unencodable payload returned nil error")
	}
}

func TestEventAndCommandRoundTrip(t *testing.T) {
	ev := message.NewEvent[priceChanged]("catalog.PriceChanged")
	cmd := message.NewCommand[priceChanged]("pricing.Reprice")
	body := priceChanged{SKU: "s1", Price: 1299, Tags: []string{"sale"}}
	ctx := message.WithCause(t.Context(), message.Cause{ID: "req-1", CorrelationID: "corr-1"})

	for _, tc := range []struct {
		out    message.Outgoing
		kind   message.Kind
		decode func(message.Envelope) (message.Message[priceChanged], error)
	}{
		{ev.With(body), message.KindEvent, ev.Decode},
		{cmd.With(body), message.KindCommand, cmd.Decode},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			env, err := Seal(ctx, tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if env.Kind != tc.kind || env.Type != tc.out.Type {
				t.Errorf("envelope kind, type = %q, %q; want %q, %q", env.Kind, env.Type, tc.kind, tc.out.Type)
			}
			// Through the wire and back.
			wire, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			var got message.Envelope
			if err := json.Unmarshal(wire, &got); err != nil {
				t.Fatal(err)
			}
			m, err := tc.decode(got)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := message.Message[priceChanged]{Meta: env.Meta(), Body: body}
			want.CausationID, want.CorrelationID = "req-1", "corr-1"
			if diff := cmp.Diff(want, m); diff != "" {
				t.Errorf("decoded message (-want +got):\n%s", diff)
			}
			got.Payload = json.RawMessage(`{"Price":"not a number"}`)
			if _, err := tc.decode(got); !errors.Is(err, message.ErrInvalidMessage) {
				t.Errorf("Decode(bad payload) = %v; want message.ErrInvalidMessage", err)
			}
		})
	}
}

// A handler that ignores its context and answers after the caller's deadline: the
// caller gets message.ErrTimeout, as it would over a wire, not a late success.
func TestCallAfterDeadlineIsTimeout(t *testing.T) {
	slow := message.NewRequest[int, int]("slow.Echo")
	b, err := New(slog.New(slog.DiscardHandler), Limits{}, nil, []RequestHandler{
		Handle(slow, func(ctx context.Context, n int) (int, error) {
			<-ctx.Done()
			return n, nil
		}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := Call(ctx, b, slow, 7); !errors.Is(err, message.ErrTimeout) {
		t.Fatalf("err = %v, want message.ErrTimeout", err)
	}
}

// A request type that is an interface may carry a nil value without panicking.
func TestCallWithNilInterfaceRequest(t *testing.T) {
	anyReq := message.NewRequest[any, string]("anything.Describe")
	b, err := New(slog.New(slog.DiscardHandler), Limits{}, nil, []RequestHandler{
		Handle(anyReq, func(ctx context.Context, v any) (string, error) { return fmt.Sprint(v), nil }),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Call(context.Background(), b, anyReq, nil)
	if err != nil || got != "<nil>" {
		t.Fatalf("Call(nil) = %q, %v", got, err)
	}
}

// Parked requests (long polls) have their own bound: while they wait they take none
// of the module's work slots, and past MaxParked they are refused.
func TestParkedRequestsDoNotTakeWorkSlots(t *testing.T) {
	limits := Limits{MaxInFlight: 1, MaxWaiting: 1, MaxWait: time.Hour, MaxParked: 2}
	blk := newBlocker()
	parked := message.NewRequest[sumReq, sumResp]("calc.Wait").Parked()
	b := newBus(t, limits, nil, []RequestHandler{
		Handle(parked, blk.handle),
		Handle(sumRequest, sumHandler),
	}, nil)
	ctx := t.Context()

	first := callAsyncTo(ctx, b, parked, sumReq{A: 1})
	second := callAsyncTo(ctx, b, parked, sumReq{A: 2})
	blk.waitEntered(t)
	blk.waitEntered(t) // both parked handlers hold their slots
	// The module's one work slot is free: its other requests go through at once.
	for i := range 3 {
		if r := await(t, "work request", callAsync(ctx, b, sumReq{A: i, B: 1})); r.err != nil || r.resp.Sum != i+1 {
			t.Errorf("work request while two are parked = %+v; want Sum %d", r, i+1)
		}
	}
	// MaxParked is full: the next parked request waits (MaxWaiting 1), then a
	// fourth is refused.
	third := callAsyncTo(ctx, b, parked, sumReq{A: 3})
	testlog.Eventually(t, "the third parked caller to wait", func() bool { return waiting(b, parked.Name()) == 1 })
	if r := await(t, "fourth parked", callAsyncTo(ctx, b, parked, sumReq{A: 4})); !errors.Is(r.err, message.ErrOverloaded) {
		t.Errorf("fourth parked request: %v; want message.ErrOverloaded", r.err)
	}
	close(blk.release)
	for _, ch := range []<-chan result{first, second, third} {
		if r := await(t, "parked caller", ch); r.err != nil {
			t.Errorf("parked caller: %v", r.err)
		}
	}
}
