package tests

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agora-commerce/agora/internal/testlog"
)

// Observability end to end: the real binary, one checkout, and what an operator
// sees of it in /metrics and in the traces it exports.

// checkoutOnce places one order for a new customer and waits for its checkout to
// end; it returns the order.
func checkoutOnce(t *testing.T, a *agora, s *shop, tag string) order {
	t.Helper()
	products, _ := stockUp(t, a, s, 1, 50)
	tok := signUpMany(t, s, 1)[0]
	if err := s.setCart(t.Context(), tok, products[0].ID, 2); err != nil {
		t.Fatal(err)
	}
	o, err := s.checkout(t.Context(), tok, "obs-"+tag, "tok_visa")
	if err != nil {
		t.Fatal(err)
	}
	testlog.Eventually(t, "the checkout to end", func() bool {
		o, err = s.order(t.Context(), tok, o.ID)
		return err == nil && terminal(o.Status)
	})
	if o.Status != "confirmed" && o.Status != "completed" && o.Status != "paid" {
		t.Logf("order ended %q (%s)", o.Status, o.Reason)
	}
	return o
}

// metrics is one scrape, parsed by the Prometheus text parser.
type metrics map[string]*dto.MetricFamily

func scrape(t *testing.T, a *agora, token string) metrics {
	t.Helper()
	var headers []string
	if token != "" {
		headers = []string{"Authorization", "Bearer " + token}
	}
	r := a.do(http.MethodGet, "/metrics", nil, headers...)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sum adds the values of name's series whose labels include want (counters,
// gauges, untyped; histograms: their sample count).
func (m metrics) sum(name string, want map[string]string) (float64, bool) {
	f, ok := m[name]
	if !ok {
		return 0, false
	}
	total, found := 0.0, false
	for _, s := range f.GetMetric() {
		match := true
		for k, v := range want {
			got := ""
			for _, l := range s.GetLabel() {
				if l.GetName() == k {
					got = l.GetValue()
				}
			}
			match = match && got == v
		}
		if !match {
			continue
		}
		found = true
		switch {
		case s.Counter != nil:
			total += s.GetCounter().GetValue()
		case s.Gauge != nil:
			total += s.GetGauge().GetValue()
		case s.Histogram != nil:
			total += float64(s.GetHistogram().GetSampleCount())
		case s.Untyped != nil:
			total += s.GetUntyped().GetValue()
		}
	}
	return total, found
}

func (m metrics) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := m.sum(name, labels)
	if !ok {
		t.Fatalf("no series %s%v in /metrics", name, labels)
	}
	return v
}

var uuidish = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-`)

// TestMetricsShowTheCheckout scrapes /metrics before and after one checkout and
// checks that the series an operator watches exist and moved the way the traffic
// implies; and that /metrics asks for its token when one is configured.
func TestMetricsShowTheCheckout(t *testing.T) {
	const token = "scrape-secret"
	a := startAgora(t, t.TempDir(), "AGORA_METRICS_TOKEN="+token)
	s := newShop(t, func() string { return a.base })

	if r := a.do(http.MethodGet, "/metrics", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without the token = %d, want 401", r.status)
	}
	if r := a.do(http.MethodGet, "/metrics", nil, "Authorization", "Bearer wrong"); r.status != http.StatusUnauthorized {
		t.Fatalf("GET /metrics with a wrong token = %d, want 401", r.status)
	}

	before := scrape(t, a, token)
	checkoutOnce(t, a, s, "metrics")
	var after metrics
	// The saga completes, and the outbox backlog drains, after the order is
	// confirmed (the capture and the last events are asynchronous): wait for the
	// completed saga and for every module's backlog to be back at zero.
	completedBefore, _ := before.sum("agora_orders_sagas", map[string]string{"state": "completed"})
	testlog.Eventually(t, "the saga to complete and every outbox to drain", func() bool {
		after = scrape(t, a, token)
		pending, ok := after.sum("agora_outbox_pending_messages", nil)
		completed, _ := after.sum("agora_orders_sagas", map[string]string{"state": "completed"})
		return ok && pending == 0 && completed > completedBefore
	})

	post := map[string]string{"route": "/v1/orders", "method": "POST", "code": "202"}
	grew := func(name string, labels map[string]string) {
		t.Helper()
		b, _ := before.sum(name, labels)
		if got := after.value(t, name, labels); got <= b {
			t.Errorf("%s%v = %v after the checkout, %v before: want more", name, labels, got, b)
		}
	}
	grew("agora_http_requests_total", post)
	grew("agora_http_request_duration_seconds", map[string]string{"route": "/v1/orders", "method": "POST"})
	grew("agora_bus_messages_sent_total", map[string]string{"kind": "request", "type": "orders.PlaceOrder"})
	grew("agora_bus_messages_handled_total", map[string]string{"kind": "request", "type": "orders.PlaceOrder"})
	grew("agora_bus_messages_sent_total", map[string]string{"kind": "command", "type": "inventory.ReserveStock"})
	grew("agora_bus_messages_handled_total", map[string]string{"kind": "command", "type": "inventory.ReserveStock"})
	grew("agora_bus_messages_handled_total", map[string]string{"kind": "command", "type": "payments.AuthorizePayment"})
	grew("agora_bus_handling_duration_seconds", map[string]string{"kind": "event", "type": "inventory.StockReserved"})
	grew("agora_orders_sagas", map[string]string{"state": "completed"})
	grew("agora_orders_saga_duration_seconds", map[string]string{"state": "completed"})

	for _, module := range []string{"identity", "catalog", "inventory", "payments", "orders", "notifications"} {
		m := map[string]string{"module": module}
		if v := after.value(t, "agora_outbox_pending_messages", m); v != 0 {
			t.Errorf("outbox of %s holds %v messages after the checkout", module, v)
		}
		if v := after.value(t, "agora_outbox_dead_letters", m); v != 0 {
			t.Errorf("outbox of %s has %v dead letters", module, v)
		}
		after.value(t, "agora_outbox_oldest_pending_age_seconds", m)
		after.value(t, "go_sql_open_connections", map[string]string{"db_name": module})
	}
	if v := after.value(t, "agora_payments_breaker_state", nil); v != 0 {
		t.Errorf("agora_payments_breaker_state = %v, want 0 (closed)", v)
	}
	if v, _ := after.sum("agora_orders_sagas", map[string]string{"state": "reserving"}); v != 0 {
		t.Errorf("%v sagas still reserving", v)
	}
	after.value(t, "agora_inbox_duplicates_dropped_total", nil) // exists once messages were handled
	after.value(t, "go_goroutines", nil)
	after.value(t, "process_resident_memory_bytes", nil)
	after.value(t, "agora_build_info", map[string]string{"transport": "in-process"})

	// Bounded cardinality: routes are templates, never paths with ids in them.
	for _, name := range []string{"agora_http_requests_total", "agora_http_request_duration_seconds"} {
		for _, s := range after[name].GetMetric() {
			for _, l := range s.GetLabel() {
				if uuidish.MatchString(l.GetValue()) {
					t.Errorf("%s has a label with an id in it: %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// otlpReceiver is an OTLP/HTTP trace receiver: it keeps every span it is sent.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []span
}

// span is a received span with the resource (process) that sent it.
type span struct {
	TraceID, SpanID, ParentID string
	Name                      string
	Kind                      tracepb.Span_SpanKind
	Start                     time.Time
	Attrs                     map[string]string
	Modules                   string // the resource's agora.modules: which process sent it
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
			http.NotFound(w, req)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var msg coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&msg)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func attrString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, attrString(e))
		}
		return strings.Join(parts, ",")
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	}
	return ""
}

func (r *otlpReceiver) add(msg *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range msg.GetResourceSpans() {
		modules := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "agora.modules" {
				modules = attrString(a.GetValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := span{TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(), Kind: s.GetKind(),
					Start: time.Unix(0, int64(s.GetStartTimeUnixNano())), Attrs: map[string]string{}, Modules: modules}
				for _, a := range s.GetAttributes() {
					sp.Attrs[a.GetKey()] = attrString(a.GetValue())
				}
				r.spans = append(r.spans, sp)
			}
		}
	}
}

func (r *otlpReceiver) all() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
}

// traceTopology is one way to run Agora for the tracing test: it starts the
// processes with env added (the OTLP endpoint) and returns the one that serves
// HTTP. processes is how many distinct processes the checkout's trace must span.
type traceTopology struct {
	name      string
	start     func(t *testing.T, env ...string) *agora
	processes int
}

// TestOneTracePerCheckout runs one checkout with tracing exported to a receiver
// the test runs, and finds one trace that holds the HTTP request and the work of
// orders, inventory and payments, each span after (and under) what caused it —
// through the payments worker's provider calls, in one process and across many.
func TestOneTracePerCheckout(t *testing.T) {
	topologies := []traceTopology{
		{name: "single", processes: 1, start: func(t *testing.T, env ...string) *agora { return startAgora(t, t.TempDir(), env...) }},
		// Every module in its own process with NATS between them; the checkout
		// enters at the last (notifications), which runs none of the modules it
		// needs. Every process inherits the OTLP settings (cleanEnv keeps OTEL_*),
		// so each exports its own spans: the entry's HTTP span, orders, inventory
		// and payments make four processes at least.
		{name: "split", processes: 4, start: func(t *testing.T, env ...string) *agora {
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			return startSplit(t, splitLayout, false).entry
		}},
	}
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			rcv := newOTLPReceiver(t)
			a := top.start(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.srv.URL, "OTEL_BSP_SCHEDULE_DELAY=50")
			s := newShop(t, func() string { return a.base })
			o := checkoutOnce(t, a, s, "trace-"+top.name)
			checkTrace(t, rcv, o.ID, top.processes)
		})
	}
}

// checkTrace finds the trace of the checkout of orderID in what rcv received and
// checks that it is one trace, complete and in causal order, spanning at least
// processes processes.
func checkTrace(t *testing.T, rcv *otlpReceiver, orderID string, processes int) {
	t.Helper()
	// The checkout's HTTP span: POST /v1/orders, and the trace it roots.
	var root span
	var trace []span
	var byID map[string]span
	has := func(pred func(span) bool) (span, bool) {
		for _, s := range trace {
			if pred(s) {
				return s, true
			}
		}
		return span{}, false
	}
	consumer := func(module, typ string) func(span) bool {
		return func(s span) bool {
			return s.Kind == tracepb.Span_SPAN_KIND_CONSUMER && s.Attrs["agora.module"] == module &&
				s.Attrs["messaging.destination.name"] == typ
		}
	}
	// The work the checkout leads to, up to the capture of its payment: each
	// message handled, wherever it runs, in whichever trace it landed.
	steps := []struct{ module, typ string }{
		{"inventory", "inventory.ReserveStock"},
		{"orders", "inventory.StockReserved"},
		{"payments", "payments.AuthorizePayment"},
		{"orders", "payments.PaymentAuthorized"}, // after the payments worker's provider call
		{"inventory", "inventory.CommitReservation"},
		{"payments", "payments.CapturePayment"},
		{"orders", "payments.PaymentCaptured"}, // after the worker's second call
	}
	// correlated are the spans of the checkout's correlation id, in any trace.
	var correlated []span
	testlog.Eventually(t, "the checkout's spans to arrive", func() bool {
		all := rcv.all()
		for _, s := range all {
			if s.Name == "POST /v1/orders" && s.Kind == tracepb.Span_SPAN_KIND_SERVER {
				root = s
			}
		}
		if root.TraceID == "" {
			return false
		}
		trace, byID = nil, map[string]span{}
		for _, s := range all {
			if s.TraceID == root.TraceID {
				trace = append(trace, s)
				byID[s.SpanID] = s
			}
		}
		place, ok := has(func(s span) bool { return s.Name == "handle orders.PlaceOrder" })
		if !ok || place.Attrs["agora.correlation_id"] == "" {
			return false
		}
		correlated = nil
		for _, s := range all {
			if s.Attrs["agora.correlation_id"] == place.Attrs["agora.correlation_id"] {
				correlated = append(correlated, s)
			}
		}
		for _, step := range steps {
			found := false
			for _, s := range correlated {
				found = found || consumer(step.module, step.typ)(s)
			}
			if !found {
				return false
			}
		}
		return true
	})
	// Processes export on their own schedules: give the last parents a moment to
	// arrive before judging the trace's shape (the checks below say what is missing).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		complete := true
		for _, s := range trace {
			_, ok := byID[s.ParentID]
			complete = complete && (ok || s.SpanID == root.SpanID)
		}
		if complete {
			break
		}
		all := rcv.all()
		trace, byID = nil, map[string]span{}
		for _, s := range all {
			if s.TraceID == root.TraceID {
				trace = append(trace, s)
				byID[s.SpanID] = s
			}
		}
	}

	// One trace: everything the checkout's correlation id marks is in the HTTP
	// request's trace — none of it (the worker's calls and what follows them
	// included) started a trace of its own.
	for _, s := range correlated {
		if s.TraceID != root.TraceID {
			t.Errorf("span %q (module %s, process %q) is in trace %s, not the checkout's %s",
				s.Name, s.Attrs["agora.module"], s.Modules, s.TraceID, root.TraceID)
		}
	}

	// Every span but the root hangs from a span of the same trace, and starts no
	// earlier than its parent: the causal order.
	for _, s := range trace {
		if s.SpanID == root.SpanID {
			if s.ParentID != "" {
				t.Errorf("the HTTP span has a parent %s", s.ParentID)
			}
			continue
		}
		p, ok := byID[s.ParentID]
		if !ok {
			t.Errorf("span %q (%s) has parent %s, not in the trace", s.Name, s.SpanID, s.ParentID)
			continue
		}
		if s.Start.Before(p.Start) {
			t.Errorf("span %q starts before its parent %q", s.Name, p.Name)
		}
	}
	// ancestors returns the names of s's ancestors, nearest first.
	ancestors := func(s span) []string {
		var names []string
		for p, ok := byID[s.ParentID]; ok; p, ok = byID[p.ParentID] {
			names = append(names, p.Name)
		}
		return names
	}
	place, ok := has(func(s span) bool {
		return s.Name == "handle orders.PlaceOrder" && s.Kind == tracepb.Span_SPAN_KIND_SERVER
	})
	if !ok || place.Attrs["agora.module"] != "orders" {
		t.Fatalf("no orders.PlaceOrder server span of module orders in the trace: %v", names(trace))
	}
	reserve, _ := has(consumer("inventory", "inventory.ReserveStock"))
	authorize, _ := has(consumer("payments", "payments.AuthorizePayment"))
	// HTTP → PlaceOrder (orders) → ReserveStock (inventory) → StockReserved (orders'
	// saga) → AuthorizePayment (payments).
	if got := ancestors(reserve); !containsInOrder(got, "handle orders.PlaceOrder", "POST /v1/orders") {
		t.Errorf("inventory's ReserveStock span descends from %v; want PlaceOrder under POST /v1/orders", got)
	}
	if got := ancestors(authorize); !containsInOrder(got, "process inventory.StockReserved", "process inventory.ReserveStock", "POST /v1/orders") {
		t.Errorf("payments' AuthorizePayment span descends from %v; want the saga's StockReserved under ReserveStock under the HTTP request", got)
	}
	// Through the payments worker: its provider call hangs from the command that
	// asked for it, and the event its outcome publishes from the call.
	authorized, _ := has(consumer("orders", "payments.PaymentAuthorized"))
	if got := ancestors(authorized); !containsInOrder(got, "payment authorize", "process payments.AuthorizePayment", "process inventory.StockReserved", "POST /v1/orders") {
		t.Errorf("orders' PaymentAuthorized span descends from %v; want the worker's authorize call under the AuthorizePayment command under the HTTP request", got)
	}
	captured, _ := has(consumer("orders", "payments.PaymentCaptured"))
	if got := ancestors(captured); !containsInOrder(got, "payment capture", "process payments.CapturePayment", "process payments.PaymentAuthorized", "POST /v1/orders") {
		t.Errorf("orders' PaymentCaptured span descends from %v; want the worker's capture call under CapturePayment under the saga's PaymentAuthorized", got)
	}
	commit, _ := has(consumer("inventory", "inventory.CommitReservation"))
	if got := ancestors(commit); !containsInOrder(got, "process payments.PaymentAuthorized", "payment authorize", "POST /v1/orders") {
		t.Errorf("inventory's CommitReservation span descends from %v; want the saga's PaymentAuthorized under the worker's call", got)
	}
	if _, ok := has(func(s span) bool { return strings.HasPrefix(s.Name, "db.tx ") }); !ok {
		t.Errorf("no database transaction span in the trace: %v", names(trace))
	}

	// Each module's work is done by a process that runs it, and the trace spans
	// as many processes as the topology has for the checkout.
	procs := map[string]bool{}
	for _, s := range trace {
		if s.Modules == "" {
			t.Errorf("span %q comes from a resource without agora.modules", s.Name)
			continue
		}
		procs[s.Modules] = true
	}
	for _, w := range []struct {
		s      span
		module string
	}{{place, "orders"}, {reserve, "inventory"}, {authorize, "payments"}, {authorized, "orders"}, {captured, "orders"}} {
		if w.s.SpanID != "" && !slices.Contains(strings.Split(w.s.Modules, ","), w.module) {
			t.Errorf("span %q was sent by a process running %q, not %s", w.s.Name, w.s.Modules, w.module)
		}
	}
	if len(procs) < processes {
		t.Errorf("the trace spans %d processes %v; want at least %d", len(procs), procs, processes)
	}
	t.Logf("order %s: trace %s has %d spans from %d processes", orderID, root.TraceID, len(trace), len(procs))
}

func names(spans []span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

// containsInOrder reports whether want appears in got as a subsequence.
func containsInOrder(got []string, want ...string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
