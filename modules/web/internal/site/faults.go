package site

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/faults"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/payments"
)

// faultPreset is a fault schedule a presenter applies with one button.
type faultPreset struct {
	Name  string // the form's value
	Title string
	Says  string // what the audience will see, and what recovers it
	Spec  string // the schedule, in the compact syntax of faults.Parse
}

// faultPresets are the schedules a demo breaks the shop with. A preset drops or
// crashes requests with a 1 s wait, so that a page asking the module fails in a
// second instead of at its deadline.
var faultPresets = []faultPreset{
	{Name: "payments-slow", Title: "Payments slow",
		Says: "Every message payments receives waits 2 s: checkouts and rides take longer to authorize and capture, and nothing is lost.",
		Spec: "delay module=payments delay=2s"},
	{Name: "inventory-lossy", Title: "Lose 30 % of inventory's messages",
		Says: "Inventory's commands and events are lost before it takes them and delivered again by the sender's outbox (each at most 3 times); its requests time out after 1 s.",
		Spec: "drop module=inventory p=0.3 delay=1s"},
	{Name: "notifications-crash", Title: "Crash notifications' handler after its effect, 20 %",
		Says: "Notifications handles the message, then dies before acknowledging it: the message comes again and its inbox drops the copy — still one notification each.",
		Spec: "crash module=notifications p=0.2 delay=1s"},
	{Name: "duplicate-half", Title: "Duplicate half of every command and event",
		Says: "Every durable message is handed over twice half of the time; each module's inbox drops the second copy (requests are never duplicated).",
		Spec: "duplicate p=0.5"},
	{Name: "payments-unreachable", Title: "Payments unreachable",
		Says: "Everything sent to payments is lost: its requests time out after 1 s (the console's breaker row too); its commands come again, " +
			"each held back at most 3 times, then let through, so checkouts wait a few seconds and go through. " +
			"The provider's circuit breaker stays closed: it watches the provider, which these messages never reach " +
			"(the payment provider's outage, below, opens it).",
		Spec: "drop module=payments delay=1s"},
}

// presetNamed returns the preset called name.
func presetNamed(name string) (faultPreset, bool) {
	for _, p := range faultPresets {
		if p.Name == name {
			return p, true
		}
	}
	return faultPreset{}, false
}

// Bounds of the faults form: the text box, and the whole form read.
const (
	maxFaultSpec  = 2000
	maxFaultsForm = 8 << 10
)

// faultsPage is the console's fault injection in this process.
type faultsPage struct {
	Allowed     bool
	Process     modhost.Process // the process whose schedule the page shows and changes
	Live        faultsLive
	Presets     []faultPreset
	Spec        string // the text box: what was sent, or the current schedule
	Error       string
	Done        string // "set", "cleared", "outage-started" or "outage-ended", after a form
	DeadLetters []string
}

func (faultsPage) PageTitle() string { return "Faults" }

// Split reports whether other processes share the shop's bus (and keep their
// own schedules).
func (p faultsPage) Split() bool { return p.Process.Transport == "nats" }

// faultsLive is the live part of the page: the schedule, the counters and the
// payment provider's breaker and outage.
type faultsLive struct {
	Schedule faults.Schedule
	Injected []injectedCount
	Total    int
	Provider providerRow
}

// injectedCount is how many faults of one kind this process injected.
type injectedCount struct {
	Kind bus.FaultKind
	N    int
}

// faultsLiveState reads the payment provider's state (from payments, wherever it
// runs) and the injector's schedule and counters (nil: none).
func (s *Site) faultsLiveState(ctx context.Context) faultsLive {
	var l faultsLive
	p, err := bus.Call(ctx, s.bus, payments.ProviderStatusRequest, payments.ProviderStatus{})
	l.Provider = providerRow{ProviderState: p, Problem: problem(err)}
	if s.faults == nil {
		return l
	}
	l.Schedule = s.faults.Schedule()
	injected := s.faults.Injected()
	for _, k := range bus.FaultKinds {
		l.Injected = append(l.Injected, injectedCount{Kind: k, N: injected[k]})
		l.Total += injected[k]
	}
	return l
}

func (s *Site) faultsPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	done := r.URL.Query().Get("done")
	switch done {
	case "set", "cleared", "outage-started", "outage-ended":
	default:
		done = ""
	}
	s.showFaults(w, r, v, http.StatusOK, nil, "", done)
	return nil
}

// showFaults renders the page; spec is the text box's content (nil: the current
// schedule's), problem why the form was refused.
func (s *Site) showFaults(w http.ResponseWriter, r *http.Request, v *visit, status int, spec *string, problem, done string) {
	p := faultsPage{Allowed: s.faults != nil, Process: s.process, Live: s.faultsLiveState(r.Context()), Presets: faultPresets,
		Error: problem, Done: done, DeadLetters: s.roster.WithData}
	p.Spec = p.Live.Schedule.String()
	if spec != nil {
		p.Spec = *spec
	}
	s.render(w, r, v, status, "faults", p)
}

// faultsLiveStream streams the page's live part as server-sent events "state",
// like the console's panel, so that the counters move while the presenter talks.
func (s *Site) faultsLiveStream(w http.ResponseWriter, r *http.Request, _ *visit) error {
	if s.faults == nil {
		return faults.ErrDisabled
	}
	s.poll(r.Context(), startEvents(w), 2*time.Second, "state", func() (string, bool) {
		return s.fragment("faults", "live", s.faultsLiveState(r.Context())), true
	})
	return nil
}

// setFaults replaces this process's schedule with a preset's or the text box's;
// text that does not parse is shown again with why.
func (s *Site) setFaults(w http.ResponseWriter, r *http.Request, v *visit) error {
	if s.faults == nil {
		return faults.ErrDisabled
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFaultsForm)
	if err := r.ParseForm(); err != nil {
		s.showFaults(w, r, v, http.StatusUnprocessableEntity, new(""), fmt.Sprintf("Write at most %d characters of rules.", maxFaultSpec), "")
		return nil
	}
	spec := r.PostFormValue("spec")
	if name := r.PostFormValue("preset"); name != "" {
		p, ok := presetNamed(name)
		if !ok {
			return errInvalidForm
		}
		spec = p.Spec
	}
	if problem := s.applyFaults(spec); problem != "" {
		spec = bounded(spec, maxFaultSpec)
		s.showFaults(w, r, v, http.StatusUnprocessableEntity, &spec, problem, "")
		return nil
	}
	http.Redirect(w, r, "/console/faults?done=set", http.StatusSeeOther)
	return nil
}

// applyFaults sets the schedule spec writes, or says why it cannot.
func (s *Site) applyFaults(spec string) string {
	switch {
	case len(spec) > maxFaultSpec:
		return fmt.Sprintf("Write at most %d characters of rules.", maxFaultSpec)
	case strings.TrimSpace(spec) == "":
		return "Write at least one rule, or stop injecting faults with “Stop injecting faults”."
	}
	sched, err := faults.Parse(spec)
	if err == nil {
		err = s.faults.Set(sched)
	}
	if err != nil {
		return bounded(strings.TrimPrefix(err.Error(), "faults: "), maxShownMessage)
	}
	return ""
}

// clearFaults stops injecting faults in this process.
func (s *Site) clearFaults(w http.ResponseWriter, r *http.Request, _ *visit) error {
	if s.faults == nil {
		return faults.ErrDisabled
	}
	if err := s.faults.Set(faults.Schedule{}); err != nil {
		return err // the empty schedule is valid: never
	}
	http.Redirect(w, r, "/console/faults?done=cleared", http.StatusSeeOther)
	return nil
}

// maxOutageForm bounds the provider outage form: one short field.
const maxOutageForm = 1 << 10

// setProviderOutage starts (outage=start) or ends (outage=end) the simulated
// payment provider's outage, through payments wherever it runs; payments refuses
// it (409) when its provider is not the simulator or its process does not allow
// faults — which its process decides, not this one.
func (s *Site) setProviderOutage(w http.ResponseWriter, r *http.Request, _ *visit) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxOutageForm)
	if err := r.ParseForm(); err != nil {
		return errInvalidForm
	}
	var down bool
	switch r.PostFormValue("outage") {
	case "start":
		down = true
	case "end":
	default:
		return errInvalidForm
	}
	if _, err := bus.Call(r.Context(), s.bus, payments.SetProviderOutageRequest, payments.SetProviderOutage{Down: down}); err != nil {
		return err
	}
	done := "outage-ended"
	if down {
		done = "outage-started"
	}
	http.Redirect(w, r, "/console/faults?done="+done, http.StatusSeeOther)
	return nil
}
