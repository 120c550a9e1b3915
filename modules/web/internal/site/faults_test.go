package site

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/faults"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/payments"
)

// withFaults gives the site a fault injector and names its process.
func withFaults(inj *faults.Injector) func(*Deps) {
	return func(d *Deps) {
		d.Faults = inj
		d.Process = modhost.Process{ID: "demo-host:4242", Transport: "in-process", Modules: []string{"orders", "web"}}
	}
}

// TestFaultsAccess checks that the faults page and its forms are the
// console's: anonymous visitors sign in, customers get the 403 page and change
// nothing.
func TestFaultsAccess(t *testing.T) {
	inj := faults.NewInjector()
	f := newFixture(t, withFaults(inj))
	customer := f.token(alice, identity.RoleCustomer, time.Hour) + "|r"
	f.checkAccess(t, []accessCase{
		{"anonymous", "/console/faults", "", 303, "/signin?next=" + url.QueryEscape("/console/faults"), ""},
		{"customer", "/console/faults", customer, 403, "", "administrators"},
		{"customer's stream", "/console/faults/live", customer, 403, "", "administrators"},
	})
	f.setProvider(payments.ProviderState{Provider: "simulated", Breaker: "closed", OutageSwitchable: true})
	for _, path := range []string{"/console/faults", "/console/faults/clear", "/console/faults/provider-outage"} {
		if res := f.post(path, customer, url.Values{"preset": {"duplicate-half"}, "outage": {"start"}}); res.StatusCode != http.StatusForbidden {
			t.Errorf("a customer's POST %s: %d, want 403", path, res.StatusCode)
		}
	}
	if rules := inj.Schedule().Rules; len(rules) != 0 {
		t.Errorf("a customer changed the schedule: %+v", rules)
	}
	if f.outage() {
		t.Error("a customer started a provider outage")
	}
}

// TestFaultsPage checks what the page shows with fault injection allowed (the
// process it changes, the schedule, the counters by kind, the controls) and
// without (why not and how to start with it, no controls).
func TestFaultsPage(t *testing.T) {
	admin := func(f *fixture) string { return f.token(root, identity.RoleAdmin, time.Hour) + "|r" }
	t.Run("allowed", func(t *testing.T) {
		inj := faults.NewInjector()
		if err := inj.Set(faults.Schedule{Seed: 7, Rules: []faults.Rule{{Kind: bus.FaultDuplicate, Probability: 1}}}); err != nil {
			t.Fatal(err)
		}
		inj.Delivery("notifications.orders", message.Envelope{ID: "m1", Type: "orders.OrderPlaced"}) // one duplicate counted
		f := newFixture(t, withFaults(inj))
		res := f.send("GET", "/console/faults", admin(f))
		b := body(t, res)
		for _, want := range []string{"demo-host:4242", `<th scope="row">duplicate</th>`, "100 %", `<td data-kind="duplicate">1</td>`,
			`name="preset" value="payments-slow"`, `<textarea id="spec"`, "seed=7; duplicate", `action="/console/faults/clear"`,
			`href="/console/dead-letters/orders"`, `href="/console/sagas"`} {
			if !strings.Contains(b, want) {
				t.Errorf("the page lacks %q", want)
			}
		}
		if res.StatusCode != http.StatusOK {
			t.Errorf("status %d", res.StatusCode)
		}
	})
	t.Run("not allowed", func(t *testing.T) {
		f := newFixture(t)
		b := body(t, f.send("GET", "/console/faults", admin(f)))
		if !strings.Contains(b, "Fault injection is off") || !strings.Contains(b, "--demo") {
			t.Errorf("the page does not say faults are off and how to start with them:\n%s", b)
		}
		if strings.Contains(b, "<form method=\"post\" action=\"/console/faults") || strings.Contains(b, "<textarea") {
			t.Error("the page shows controls in a process that may not inject faults")
		}
		if res := f.post("/console/faults", admin(f), url.Values{"preset": {"payments-slow"}}); res.StatusCode != http.StatusConflict {
			t.Errorf("a preset posted anyway: %d, want 409", res.StatusCode)
		}
	})
}

// TestFaultsForms checks the forms: a preset and the text box set this
// process's schedule, text that does not parse (or is too long, or empty) is
// shown again with why and changes nothing, an unknown preset is refused, and
// clearing empties the schedule.
func TestFaultsForms(t *testing.T) {
	inj := faults.NewInjector()
	f := newFixture(t, withFaults(inj))
	admin := f.token(root, identity.RoleAdmin, time.Hour) + "|r"
	rulesAfter := func(form url.Values, status int) []faults.Rule {
		t.Helper()
		res := f.post("/console/faults", admin, form)
		if res.StatusCode != status {
			t.Fatalf("%v: %d, want %d\n%s", form, res.StatusCode, status, body(t, res))
		}
		if status == http.StatusSeeOther && res.Header.Get("Location") != "/console/faults?done=set" {
			t.Errorf("%v: to %s, want back to the page", form, res.Header.Get("Location"))
		}
		return inj.Schedule().Rules
	}
	slow := []faults.Rule{{Kind: bus.FaultDelay, Module: "payments", Probability: 1, DelayMS: 2000}}
	if diff := cmp.Diff(slow, rulesAfter(url.Values{"preset": {"payments-slow"}}, http.StatusSeeOther)); diff != "" {
		t.Errorf("the preset (-want +got):\n%s", diff)
	}
	own := []faults.Rule{{Kind: bus.FaultDrop, Type: "inventory.", Probability: 0.3}}
	if diff := cmp.Diff(own, rulesAfter(url.Values{"spec": {"seed=3; drop type=inventory. p=0.3"}}, http.StatusSeeOther)); diff != "" {
		t.Errorf("own rules (-want +got):\n%s", diff)
	}
	for _, bad := range []struct{ spec, says string }{
		{"explode module=payments", "unknown fault"},
		{"drop p=2", "probability"},
		{"   ", "at least one rule"},
		{strings.Repeat("drop;", 500), "at most 2000 characters"},          // over the text box's bound
		{strings.Repeat("drop;", maxFaultSpec), "at most 2000 characters"}, // over the form's: not read
	} {
		res := f.post("/console/faults", admin, url.Values{"spec": {bad.spec}})
		b := body(t, res)
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(b, bad.says) || !strings.Contains(b, `role="alert"`) {
			t.Errorf("%.20q: %d, want 422 saying %q", bad.spec, res.StatusCode, bad.says)
		}
		if diff := cmp.Diff(own, inj.Schedule().Rules); diff != "" {
			t.Errorf("%.20q changed the schedule (-want +got):\n%s", bad.spec, diff)
		}
	}
	if res := f.post("/console/faults", admin, url.Values{"preset": {"nope"}}); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("an unknown preset: %d, want 422", res.StatusCode)
	}
	res := f.post("/console/faults/clear", admin, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/faults?done=cleared" {
		t.Errorf("clear: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	if rules := inj.Schedule().Rules; len(rules) != 0 {
		t.Errorf("after clearing, the schedule has %+v", rules)
	}
}

// TestFaultsPresetsParse checks that every preset is a valid schedule.
func TestFaultsPresetsParse(t *testing.T) {
	for _, p := range faultPresets {
		if _, err := faults.Parse(p.Spec); err != nil {
			t.Errorf("preset %s: %v", p.Name, err)
		}
	}
}

// TestFaultsFormFromAnotherSite checks that the faults forms posted from another
// origin are refused before they act.
func TestFaultsFormFromAnotherSite(t *testing.T) {
	inj := faults.NewInjector()
	f := newFixture(t, withFaults(inj))
	want := faults.Schedule{Rules: []faults.Rule{{Kind: bus.FaultDuplicate, Probability: 1}}}
	if err := inj.Set(want); err != nil {
		t.Fatal(err)
	}
	f.setProvider(payments.ProviderState{Provider: "simulated", Breaker: "closed", OutageSwitchable: true})
	admin := f.token(root, identity.RoleAdmin, time.Hour) + "|r"
	for _, path := range []string{"/console/faults", "/console/faults/clear", "/console/faults/provider-outage"} {
		res := f.send("POST", path, admin, "Sec-Fetch-Site", "cross-site")
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body(t, res), "another site") {
			t.Errorf("cross-site POST %s: %d, want the 403 page", path, res.StatusCode)
		}
	}
	if diff := cmp.Diff(want, inj.Schedule()); diff != "" {
		t.Errorf("a cross-site form changed the schedule (-want +got):\n%s", diff)
	}
	if f.outage() {
		t.Error("a cross-site form started a provider outage")
	}
}

// TestFaultsLive checks that the page's event stream carries the schedule and
// the counters as they are now.
func TestFaultsLive(t *testing.T) {
	inj := faults.NewInjector()
	f := newFixture(t, withFaults(inj))
	f.site.streamFor = 0 // one event, then the stream ends
	if err := inj.Set(faults.Schedule{Rules: []faults.Rule{{Kind: bus.FaultCrash, Module: "notifications", Probability: 1}}}); err != nil {
		t.Fatal(err)
	}
	inj.Delivery("notifications.orders", message.Envelope{ID: "m1", Type: "orders.OrderPlaced"})
	f.setProvider(payments.ProviderState{Provider: "simulated", Breaker: "open", Outage: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/console/faults/live", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: f.token(root, identity.RoleAdmin, time.Hour) + "|r"})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b := body(t, res)
	if !strings.Contains(b, `id="provider-breaker">open<`) || !strings.Contains(b, "outage on") {
		t.Errorf("the stream does not carry the provider's breaker and outage:\n%s", b)
	}
	if !strings.Contains(b, "event: state") || !strings.Contains(b, `<td data-kind="crash">1</td>`) || !strings.Contains(b, "notifications") {
		t.Errorf("the stream does not carry the schedule and counters:\n%s", b)
	}
}

// TestFaultsProviderPanel checks the payment provider's panel: its breaker and
// outage, the outage's buttons only where payments may switch it, and why not
// elsewhere — also on a page whose own process may not inject faults.
func TestFaultsProviderPanel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		faults  bool
		state   payments.ProviderState
		want    []string
		buttons bool
	}{
		{"switchable, outage on", true, payments.ProviderState{Provider: "simulated", Breaker: "open", Outage: true, OutageSwitchable: true},
			[]string{`breaker-open" id="provider-breaker">open<`, "<strong>outage on</strong>"}, true},
		{"switchable, this process without faults", false, payments.ProviderState{Provider: "simulated", Breaker: "closed", OutageSwitchable: true},
			[]string{`id="provider-breaker">closed<`, "no outage", "Fault injection is off"}, true},
		{"payments without faults", true, payments.ProviderState{Provider: "simulated", Breaker: "closed"},
			[]string{`id="outage-off"`, "started without <code>--demo</code>"}, false},
		{"a real provider", false, payments.ProviderState{Provider: "http", Breaker: "half-open"},
			[]string{`id="provider-breaker">half-open<`, "a real one, not the simulator"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var options []func(*Deps)
			if tc.faults {
				options = append(options, withFaults(faults.NewInjector()))
			}
			f := newFixture(t, options...)
			f.setProvider(tc.state)
			b := body(t, f.send("GET", "/console/faults", f.token(root, identity.RoleAdmin, time.Hour)+"|r"))
			for _, want := range tc.want {
				if !strings.Contains(b, want) {
					t.Errorf("the page lacks %q", want)
				}
			}
			for _, button := range []string{`id="start-outage"`, `id="end-outage"`} {
				if got := strings.Contains(b, button); got != tc.buttons {
					t.Errorf("button %s shown: %v, want %v", button, got, tc.buttons)
				}
			}
		})
	}
}

// TestFaultsProviderOutageForm checks the outage's buttons: they start and end
// the outage through payments and say so; anything else is refused, and payments'
// refusal is shown as a 409 that changes nothing.
func TestFaultsProviderOutageForm(t *testing.T) {
	f := newFixture(t, withFaults(faults.NewInjector()))
	admin := f.token(root, identity.RoleAdmin, time.Hour) + "|r"
	f.setProvider(payments.ProviderState{Provider: "simulated", Breaker: "closed", OutageSwitchable: true})
	for _, step := range []struct {
		outage string
		down   bool
		says   string
	}{
		{"start", true, "The payment provider is down"},
		{"end", false, "The payment provider is back"},
	} {
		res := f.post("/console/faults/provider-outage", admin, url.Values{"outage": {step.outage}})
		to := res.Header.Get("Location")
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(to, "/console/faults?done=outage-") {
			t.Fatalf("%s: %d to %q", step.outage, res.StatusCode, to)
		}
		if f.outage() != step.down {
			t.Errorf("%s: outage %v, want %v", step.outage, f.outage(), step.down)
		}
		if b := body(t, f.send("GET", to, admin)); !strings.Contains(b, step.says) {
			t.Errorf("%s: the page does not say %q", step.outage, step.says)
		}
	}
	if res := f.post("/console/faults/provider-outage", admin, url.Values{"outage": {"maybe"}}); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("outage=maybe: %d, want 422", res.StatusCode)
	}
	f.setProvider(payments.ProviderState{Provider: "simulated", Breaker: "closed"})
	res := f.post("/console/faults/provider-outage", admin, url.Values{"outage": {"start"}})
	if b := body(t, res); res.StatusCode != http.StatusConflict || !strings.Contains(b, "--demo or --allow-faults") {
		t.Errorf("refused by payments: %d, want 409 saying why", res.StatusCode)
	}
	if f.outage() {
		t.Error("a refused outage started")
	}
}
