package faults_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/faults"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testlog"
)

var discard = slog.New(slog.DiscardHandler)

type ping struct{ N int }

var (
	pingRequest = message.NewRequest[ping, ping]("shop.Ping")
	thingMade   = message.NewEvent[ping]("shop.ThingMade")
)

// recorder is a subscription without an inbox: it records every envelope it is
// handed, so that the tests see exactly what the bus delivered.
type recorder struct {
	mu  sync.Mutex
	got []string // envelope ids, in the order handled
}

func (r *recorder) sub(consumer string) bus.Subscription {
	return bus.Subscription{Type: thingMade.Name(), Consumer: consumer, Handle: func(_ context.Context, env message.Envelope) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, env.ID)
		return nil
	}}
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// faulty returns a bus with a Ping handler (counting its calls) and rec's
// subscription "stock.watcher", injecting the faults of schedule spec.
func faulty(t *testing.T, spec string, rec *recorder, calls *int) (*bus.Bus, *faults.Injector) {
	t.Helper()
	var mu sync.Mutex
	h := bus.Handle(pingRequest, func(_ context.Context, p ping) (ping, error) {
		mu.Lock()
		defer mu.Unlock()
		*calls++
		return ping{N: p.N + 1}, nil
	})
	b, err := bus.New(discard, bus.Limits{}, nil, []bus.RequestHandler{h}, []bus.Subscription{rec.sub("stock.watcher")})
	if err != nil {
		t.Fatal(err)
	}
	inj := faults.NewInjector()
	s, err := faults.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := inj.Set(s); err != nil {
		t.Fatal(err)
	}
	b.InjectFaults(inj)
	return b, inj
}

func envs(n int) []message.Envelope {
	out := make([]message.Envelope, n)
	for i := range out {
		out[i] = message.Envelope{ID: bus.NewID(), Type: thingMade.Name(), Kind: message.KindEvent, Payload: []byte(`{"N":1}`)}
	}
	return out
}

func items(b *bus.Bus, es []message.Envelope) []bus.BatchItem {
	var out []bus.BatchItem
	for _, e := range es {
		for _, s := range b.Subscriptions(e.Type) {
			out = append(out, bus.BatchItem{Sub: s, Env: e})
		}
	}
	return out
}

func TestRequestFaults(t *testing.T) {
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	for _, tc := range []struct {
		name      string
		spec      string
		ctx       func() context.Context
		wantErr   error
		wantCalls int
	}{
		{"no rule", "", t.Context, nil, 1},
		{"a lost request never reaches its handler", "drop type=shop.", short, message.ErrTimeout, 0},
		{"a lost request waits the rule's delay, not its deadline", "drop delay=1ms", t.Context, message.ErrTimeout, 0},
		{"a crash runs the handler and loses the reply", "crash module=shop delay=1ms", t.Context, message.ErrTimeout, 1},
		{"a delay past the deadline is a timeout", "delay delay=10s", short, message.ErrTimeout, 0},
		{"a delay within the deadline goes through", "delay delay=1ms", t.Context, nil, 1},
		{"requests are never duplicated", "duplicate", t.Context, nil, 1},
		{"requests are never reordered", "reorder", t.Context, nil, 1},
		{"another type is untouched", "drop type=catalog.", t.Context, nil, 1},
		{"another module is untouched", "drop module=catalog", t.Context, nil, 1},
		{"probability 0 never hits", "drop p=0", t.Context, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			b, inj := faulty(t, tc.spec, &recorder{}, &calls)
			got, err := bus.Call(tc.ctx(), b, pingRequest, ping{N: 1})
			if !errors.Is(err, tc.wantErr) || calls != tc.wantCalls {
				t.Fatalf("err %v, %d handler calls; want %v, %d", err, calls, tc.wantErr, tc.wantCalls)
			}
			if err == nil && got.N != 2 {
				t.Errorf("reply %+v", got)
			}
			injected := 0
			for _, n := range inj.Injected() {
				injected += n
			}
			if want := map[bool]int{true: 1, false: 0}[tc.wantErr != nil || strings.HasPrefix(tc.spec, "delay")]; injected != want {
				t.Errorf("%d faults counted, want %d", injected, want)
			}
		})
	}
}

// script is a bus.Faults that gives the first envelope of a batch the fault it
// names and lets the others through.
type script struct {
	first string
	kind  bus.FaultKind
}

func (s script) Request(string) bus.Fault { return bus.Fault{} }
func (s script) Delivery(_ string, env message.Envelope) bus.Fault {
	if env.ID == s.first {
		return bus.Fault{Kind: s.kind, Delay: time.Millisecond}
	}
	return bus.Fault{}
}

// What each fault does to a durable delivery, on a batch whose first message gets it.
func TestDeliveryFaults(t *testing.T) {
	es := envs(3)
	ids := []string{es[0].ID, es[1].ID, es[2].ID}
	for _, tc := range []struct {
		name     string
		kind     bus.FaultKind
		batch    []message.Envelope
		handled  []string // by the subscription, in order
		failures []error  // per envelope
	}{
		{"no fault", bus.FaultNone, es, ids, []error{nil, nil, nil}},
		{"lost before the receiver took it", bus.FaultDrop, es, ids[1:], []error{bus.ErrFaultLost, nil, nil}},
		{"a crash commits, then loses the ack", bus.FaultCrash, es, ids, []error{bus.ErrFaultCrashed, nil, nil}},
		{"a duplicate is handed over twice", bus.FaultDuplicate, es, append(slices.Clone(ids), ids[0]), []error{nil, nil, nil}},
		{"a delay hands it over", bus.FaultDelay, es, ids, []error{nil, nil, nil}},
		{"reordered behind the rest of its batch", bus.FaultReorder, es, []string{ids[1], ids[2], ids[0]}, []error{nil, nil, nil}},
		{"reordered alone: put back", bus.FaultReorder, es[:1], nil, []error{bus.ErrFaultLost}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, calls := &recorder{}, 0
			b, _ := faulty(t, "", rec, &calls)
			b.InjectFaults(script{first: es[0].ID, kind: tc.kind})
			got := b.HandleItems(t.Context(), items(b, tc.batch))
			if diff := cmp.Diff(tc.failures, got, cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) })); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.handled, rec.ids()); diff != "" {
				t.Errorf("handled (-want +got):\n%s", diff)
			}
		})
	}
}

// A durable message is held back at most MaxPerMessage times, then let through,
// so that a fault schedule never makes a dead letter.
// Rules select durable messages by type and by receiving module.
func TestDeliveryRulesSelect(t *testing.T) {
	for spec, hit := range map[string]bool{"drop type=shop.Thing": true, "drop module=stock": true, "drop type=shop.Other": false,
		"drop module=orders": false, "drop module=shop": false, "drop p=0": false} {
		rec, calls := &recorder{}, 0
		b, _ := faulty(t, spec, rec, &calls)
		if got := b.HandleItems(t.Context(), items(b, envs(1)))[0] != nil; got != hit {
			t.Errorf("%q: hit %v, want %v", spec, got, hit)
		}
	}
}

func TestHeldBackAtMostMaxPerMessage(t *testing.T) {
	rec, calls := &recorder{}, 0
	b, inj := faulty(t, "max=2; drop; crash", rec, &calls)
	env := envs(1)
	var outcomes []error
	for range 5 {
		outcomes = append(outcomes, b.HandleItems(t.Context(), items(b, env))[0])
	}
	want := []error{bus.ErrFaultLost, bus.ErrFaultLost, nil, nil, nil}
	if diff := cmp.Diff(want, outcomes, cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) })); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if got := inj.Injected(); got[bus.FaultDrop] != 2 || got[bus.FaultCrash] != 0 {
		t.Errorf("injected %v", got)
	}
}

// The same seed and the same messages give the same faults; another seed others.
func TestSeedMakesTheScheduleDeterministic(t *testing.T) {
	es := envs(200)
	run := func(seed string) []int {
		rec, calls := &recorder{}, 0
		b, _ := faulty(t, "seed="+seed+"; drop p=0.3; crash p=0.3", rec, &calls)
		var lost []int
		for i, e := range es {
			if err := b.HandleItems(t.Context(), items(b, []message.Envelope{e}))[0]; err != nil {
				lost = append(lost, i)
			}
		}
		return lost
	}
	first, again, other := run("7"), run("7"), run("8")
	if !slices.Equal(first, again) {
		t.Errorf("seed 7 twice: %v, then %v", first, again)
	}
	if slices.Equal(first, other) {
		t.Errorf("seeds 7 and 8 gave the same schedule %v", first)
	}
	if len(first) < 60 || len(first) > 180 {
		t.Errorf("%d of 200 held back with p≈0.51", len(first))
	}
}

// Through a real outbox relay: dropped, crashed and duplicated deliveries of a
// durable message end with exactly one effect, because the relay delivers again
// and the receiver's inbox drops the copies.
func TestDurableFaultsAreRedeliveredOnce(t *testing.T) {
	for _, spec := range []string{"drop", "crash", "duplicate", "max=1; reorder", "drop p=0.5; duplicate p=0.5; crash p=0.5"} {
		t.Run(spec, func(t *testing.T) {
			ctx := t.Context()
			db, err := store.OpenSQLite(ctx, "stock", filepath.Join(t.TempDir(), "stock.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			if err := outbox.Migrate(ctx, db, discard); err != nil {
				t.Fatal(err)
			}
			relay := outbox.NewRelay(db, outbox.RelayConfig{BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, discard)
			ob := outbox.New(db, relay)
			var mu sync.Mutex
			effects := map[int]int{}
			sub := outbox.SubscribeEvent(db, thingMade, "stock.watcher", func(_ context.Context, _ *store.Tx, m message.Message[ping]) error {
				mu.Lock()
				defer mu.Unlock()
				effects[m.Body.N]++
				return nil
			})
			b, err := bus.New(discard, bus.Limits{}, nil, nil, []bus.Subscription{sub})
			if err != nil {
				t.Fatal(err)
			}
			inj := faults.NewInjector()
			s, _ := faults.Parse("seed=3; " + spec)
			if err := inj.Set(s); err != nil {
				t.Fatal(err)
			}
			b.InjectFaults(inj)
			const n = 20
			for i := range n {
				if err := store.InTx(ctx, db, func(tx *store.Tx) error { return ob.Add(ctx, tx, thingMade.With(ping{N: i})) }); err != nil {
					t.Fatal(err)
				}
			}
			testlog.Eventually(t, "every message to be handled", func() bool {
				if _, err := relay.Drain(ctx, b); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				return len(effects) == n
			})
			for i := range n {
				if effects[i] != 1 {
					t.Errorf("message %d had %d effects, want 1", i, effects[i])
				}
			}
			total := 0
			for _, c := range inj.Injected() {
				total += c
			}
			if total == 0 {
				t.Error("no fault was injected")
			}
		})
	}
}

func TestParse(t *testing.T) {
	got, err := faults.Parse(" seed=42; drop type=payments. p=0.2 ; delay module=inventory p=0.5 delay=200ms;crash;max=2")
	if err != nil {
		t.Fatal(err)
	}
	want := faults.Schedule{Seed: 42, MaxPerMessage: 2, Rules: []faults.Rule{
		{Kind: bus.FaultDrop, Type: "payments.", Probability: 0.2},
		{Kind: bus.FaultDelay, Module: "inventory", Probability: 0.5, DelayMS: 200},
		{Kind: bus.FaultCrash, Probability: 1},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	fromJSON, err := faults.Load(`{"seed":42,"max_per_message":2,"rules":[{"kind":"drop","type":"payments.","probability":0.2},
		{"kind":"delay","module":"inventory","probability":0.5,"delay_ms":200},{"kind":"crash","probability":1}]}`)
	if err != nil || !cmp.Equal(want, fromJSON) {
		t.Errorf("the same schedule in JSON: %+v, %v", fromJSON, err)
	}
	for _, bad := range []string{"explode", "drop p=2", "drop p=x", "drop p=NaN", "delay delay=-1s", "drop when=now", "delay delay=1h", "seed=x",
		"max=9", "drop type", "seed=1 drop", `{"rules":[{"kind":"drop"}],"extra":1}`, "missing.json",
		strings.Repeat("drop;", faults.MaxRules+1)} {
		if _, err := faults.Load(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// TestStringParsesBack checks that a schedule written in the compact syntax
// reads back to itself, defaults left out.
func TestStringParsesBack(t *testing.T) {
	for _, spec := range []string{
		"",
		"duplicate p=0.5",
		"seed=42; max=5; drop type=payments. p=0.2; delay module=inventory p=0.5 delay=1.5s; crash p=0.1 delay=200ms",
	} {
		s, err := faults.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.String(); got != spec {
			t.Errorf("String() = %q, want %q", got, spec)
		}
		back, err := faults.Parse(s.String())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s, back); diff != "" {
			t.Errorf("%q read back (-want +got):\n%s", spec, diff)
		}
	}
}
