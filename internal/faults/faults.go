// Package faults injects faults into the bus for tests and demos: rules that
// delay, drop, duplicate, reorder or crash the messages of some types or modules,
// drawn from a seeded random source. An Injector is the bus.Faults of a process;
// its Schedule (seed and rules) is plain data, read from the --faults setting
// (Parse), changed through the admin routes (Routes), or set by a test.
//
// The bus decides what each fault means at its seam (see bus.FaultKind): requests
// are delayed, lost or lose their reply; durable messages are delayed, lost before
// their receiver took them, handed over twice, handed over out of order, or
// handled with their acknowledgement lost — and delivered again, at least once, by
// the sender's outbox relay or by the broker. An injector never holds one durable
// message back more than MaxPerMessage times, so that a schedule delays messages
// but never makes one a dead letter.
package faults

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
)

// Limits of a schedule, so that one read from a request stays small.
const (
	MaxRules    = 32
	MaxMatchLen = 100
	MaxDelay    = 30 * time.Second
	// DefaultMaxPerMessage is how many times a durable message is held back (lost,
	// put back or crashed) at most, when the schedule does not say: the relay and
	// the broker dead-letter a message after 10 failed deliveries.
	DefaultMaxPerMessage = 3
)

// Rule is one fault and the messages it hits.
type Rule struct {
	Kind bus.FaultKind `json:"kind" enum:"delay,drop,duplicate,reorder,crash" doc:"the fault (see the architecture document)"`
	// Type and Module select the messages; empty selects all.
	Type   string `json:"type,omitempty" maxLength:"100" doc:"message types that start with this, e.g. payments. or inventory.ReserveStock; empty: every type"`
	Module string `json:"module,omitempty" maxLength:"32" doc:"the receiving module: the one serving a request, or the one subscribing to a command or event; empty: every module"`
	// Probability is the chance that the rule hits a message it selects.
	Probability float64 `json:"probability" minimum:"0" maximum:"1" doc:"chance that a selected message gets the fault"`
	// DelayMS is a delay's length; for a dropped or crashed request, how long its
	// caller waits for the lost reply (0: until the caller's deadline).
	DelayMS int64 `json:"delay_ms,omitempty" minimum:"0" maximum:"30000" doc:"delay: how long; drop or crash of a request: how long the caller waits for the lost reply (0: its deadline)"`
}

// Schedule is a seed and the rules drawn with it.
type Schedule struct {
	Seed uint64 `json:"seed,omitempty" doc:"seed of the random draws: the same seed and the same messages in the same order get the same faults"`
	// MaxPerMessage caps how often one durable message is held back (0: 3).
	MaxPerMessage int    `json:"max_per_message,omitempty" minimum:"0" maximum:"8" doc:"most times one durable message is lost, put back or crashed (0: 3); it is then let through"`
	Rules         []Rule `json:"rules" maxItems:"32" doc:"the first rule that selects a message and hits decides its fault"`
}

// Validate reports the first thing wrong with s, naming its field.
func (s Schedule) Validate() error {
	if len(s.Rules) > MaxRules {
		return fmt.Errorf("rules: %d, at most %d", len(s.Rules), MaxRules)
	}
	if s.MaxPerMessage < 0 || s.MaxPerMessage > 8 {
		return fmt.Errorf("max_per_message: %d, want 0..8", s.MaxPerMessage)
	}
	for i, r := range s.Rules {
		switch {
		case !knownKind(r.Kind):
			return fmt.Errorf("rules[%d].kind: %q, want one of %s", i, r.Kind, kindList())
		case len(r.Type) > MaxMatchLen || len(r.Module) > MaxMatchLen:
			return fmt.Errorf("rules[%d]: type and module are at most %d characters", i, MaxMatchLen)
		case r.Probability < 0 || r.Probability > 1 || r.Probability != r.Probability:
			return fmt.Errorf("rules[%d].probability: %v, want 0..1", i, r.Probability)
		case r.DelayMS < 0 || time.Duration(r.DelayMS)*time.Millisecond > MaxDelay:
			return fmt.Errorf("rules[%d].delay_ms: %d, want 0..%d", i, r.DelayMS, MaxDelay.Milliseconds())
		}
	}
	return nil
}

func knownKind(k bus.FaultKind) bool {
	for _, known := range bus.FaultKinds {
		if k == known {
			return true
		}
	}
	return false
}

func kindList() string {
	names := make([]string, len(bus.FaultKinds))
	for i, k := range bus.FaultKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// selects reports whether r applies to a message of typ received by module.
func (r Rule) selects(typ, module string, request bool) bool {
	if request && !r.Kind.ForRequests() {
		return false
	}
	return strings.HasPrefix(typ, r.Type) && (r.Module == "" || r.Module == module)
}

func (r Rule) fault() bus.Fault {
	return bus.Fault{Kind: r.Kind, Delay: time.Duration(r.DelayMS) * time.Millisecond}
}

// Injector is a process's bus.Faults: it draws each message's fault from its
// current schedule. The zero schedule injects nothing. It is safe for concurrent
// use; its schedule can change while the bus carries traffic.
type Injector struct {
	active atomic.Bool // the schedule has rules: without, no message takes the lock
	mu     sync.Mutex
	sched  Schedule
	rng    *rand.Rand
	held   map[string]int // consumer|message id → times held back
	count  *prometheus.CounterVec
	// injected counts what count does, for the admin routes.
	injected map[bus.FaultKind]int
}

var _ bus.Faults = (*Injector)(nil)

// maxHeld bounds the held-back counts kept: past it they are forgotten (a message
// may then be held back a few times more).
const maxHeld = 100_000

// NewInjector returns an injector with no rules.
func NewInjector() *Injector {
	i := &Injector{rng: rand.New(rand.NewPCG(0, 0)), held: map[string]int{}, injected: map[bus.FaultKind]int{},
		count: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "agora", Subsystem: "bus", Name: "faults_injected_total",
			Help: "Faults injected into the bus's traffic (a test or demo setting), by kind."}, []string{"kind"})}
	for _, k := range bus.FaultKinds {
		i.count.WithLabelValues(string(k)) // every kind shows, at 0 until injected
	}
	return i
}

// Set replaces the schedule (after Validate) and restarts its random draws from
// its seed.
func (i *Injector) Set(s Schedule) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.Rules == nil {
		s.Rules = []Rule{}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.sched = s
	i.rng = rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	i.held = map[string]int{}
	i.active.Store(len(s.Rules) > 0)
	return nil
}

// Schedule returns the current schedule.
func (i *Injector) Schedule() Schedule {
	i.mu.Lock()
	defer i.mu.Unlock()
	s := i.sched
	s.Rules = append([]Rule{}, s.Rules...)
	return s
}

// Collector returns the injector's metric, agora_bus_faults_injected_total{kind}.
func (i *Injector) Collector() prometheus.Collector { return i.count }

// Injected returns how many faults of each kind this injector injected.
func (i *Injector) Injected() map[bus.FaultKind]int {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make(map[bus.FaultKind]int, len(i.injected))
	for k, n := range i.injected {
		out[k] = n
	}
	return out
}

// hit counts a fault of r's kind and returns it; called with mu held.
func (i *Injector) hit(r Rule) bus.Fault {
	i.injected[r.Kind]++
	i.count.WithLabelValues(string(r.Kind)).Inc()
	return r.fault()
}

// Request implements bus.Faults.
func (i *Injector) Request(typ string) bus.Fault {
	if !i.active.Load() {
		return bus.Fault{}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, r := range i.sched.Rules {
		if r.selects(typ, bus.ModuleOf(typ), true) && i.rng.Float64() < r.Probability {
			return i.hit(r)
		}
	}
	return bus.Fault{}
}

// Delivery implements bus.Faults.
func (i *Injector) Delivery(consumer string, env message.Envelope) bus.Fault {
	if !i.active.Load() {
		return bus.Fault{}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	key := consumer + "|" + env.ID
	limit := i.sched.MaxPerMessage
	if limit == 0 {
		limit = DefaultMaxPerMessage
	}
	for _, r := range i.sched.Rules {
		if !r.selects(env.Type, bus.ModuleOf(consumer), false) || i.rng.Float64() >= r.Probability {
			continue
		}
		if r.Kind.HoldsBack() {
			if i.held[key] >= limit {
				continue // held back enough: let it through
			}
			if len(i.held) >= maxHeld {
				i.held = map[string]int{}
			}
			i.held[key]++
		}
		return i.hit(r)
	}
	return bus.Fault{}
}
