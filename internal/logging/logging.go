// Package logging builds Agora's structured logger: JSON when stderr is not a
// terminal, text when it is, and every record made with a context carries the
// request and correlation ids of the work that context belongs to.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
)

// New returns a logger writing to w at level ("debug", "info", "warn", "error") in
// format ("json", "text", or "auto": text on a terminal, JSON otherwise).
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "auto", "":
		if isTerminal(w) {
			h = slog.NewTextHandler(w, opts)
		} else {
			h = slog.NewJSONHandler(w, opts)
		}
	default:
		return nil, fmt.Errorf("log format %q: want auto, json or text", format)
	}
	return slog.New(contextHandler{Handler: h}), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// contextHandler adds what a context says about the work it belongs to: the
// request or message that caused it (cause_id, correlation_id), its trace
// (trace_id, span_id, when the work is traced) and the module whose handler runs
// it (module, unless the logger already names one).
type contextHandler struct {
	slog.Handler
	hasModule bool // a "module" attribute was added with WithAttrs
}

// Wrap returns h adding those attributes; New's loggers have it already.
func Wrap(h slog.Handler) slog.Handler { return contextHandler{Handler: h} }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.Handler.Handle(ctx, r)
	}
	if c, ok := message.CauseFrom(ctx); ok {
		r.AddAttrs(slog.String("cause_id", c.ID), slog.String("correlation_id", c.CorrelationID))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if !h.hasModule {
		if m, ok := bus.ModuleFrom(ctx); ok {
			r.AddAttrs(slog.String("module", m))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	has := h.hasModule
	for _, a := range as {
		has = has || a.Key == "module"
	}
	return contextHandler{Handler: h.Handler.WithAttrs(as), hasModule: has}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{Handler: h.Handler.WithGroup(name), hasModule: h.hasModule}
}
