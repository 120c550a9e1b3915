package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/logging"
	"github.com/agora-commerce/agora/internal/message"
)

// TestContextFields: a line logged inside a handler carries its trace, its
// correlation and its module; a logger that names its module keeps its own.
func TestContextFields(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	ctx = message.WithCause(ctx, message.Cause{ID: "msg-1", CorrelationID: "req-1"})
	ctx = bus.WithModule(ctx, "orders")

	log.InfoContext(ctx, "inside")
	log.With("module", "payments").InfoContext(ctx, "named")
	log.Info("outside")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines = %q", lines)
	}
	var in, named, out map[string]any
	for i, v := range []*map[string]any{&in, &named, &out} {
		if err := json.Unmarshal([]byte(lines[i]), v); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]any{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String(),
		"correlation_id": "req-1", "cause_id": "msg-1", "module": "orders"}
	for k, v := range want {
		if in[k] != v {
			t.Errorf("inside: %s = %v, want %v", k, in[k], v)
		}
	}
	if named["module"] != "payments" || strings.Count(lines[1], `"module"`) != 1 {
		t.Errorf("a logger with its own module: %s", lines[1])
	}
	for _, k := range []string{"trace_id", "correlation_id", "module"} {
		if _, ok := out[k]; ok {
			t.Errorf("outside any work: %s present: %s", k, lines[2])
		}
	}
}
