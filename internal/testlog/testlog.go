// Package testlog records log output for tests' assertions: a Recorder is a
// slog.Handler that keeps what it is given, so a test can check what the code under
// test logged (or that it logged nothing). It also holds Eventually, the polling wait
// those tests share.
//
// It is meant for _test.go files only.
package testlog

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Recorder is a slog.Handler that keeps a clone of every record at or above its
// minimum level. It is safe for concurrent use, and so are the handlers derived from
// it by WithAttrs and WithGroup (as through Logger().With): they record into the same
// Recorder, with their attributes and groups applied to each record.
type Recorder struct {
	min     slog.Level
	mu      sync.Mutex
	records []slog.Record
}

// New returns a Recorder that keeps records at level min or above.
func New(min slog.Level) *Recorder { return &Recorder{min: min} }

// Logger returns a logger that writes to r.
func (r *Recorder) Logger() *slog.Logger { return slog.New(r) }

// Records returns copies of the records kept so far, oldest first. Attributes added
// through WithAttrs come before the record's own; those under a WithGroup are nested
// in a group attribute of that name.
func (r *Recorder) Records() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]slog.Record, len(r.records))
	for i, rec := range r.records {
		out[i] = rec.Clone()
	}
	return out
}

// Lines returns the records kept so far, oldest first, one string each: the message,
// then " key=value" for each attribute in order (a group's members as
// "group.key=value").
func (r *Recorder) Lines() []string {
	return lines(r.Records())
}

// Take returns Lines and forgets the records, so that the next call sees only what
// is logged after this one.
func (r *Recorder) Take() []string {
	r.mu.Lock()
	recs := r.records
	r.records = nil
	r.mu.Unlock()
	return lines(recs)
}

// Enabled reports whether level is at or above r's minimum.
func (r *Recorder) Enabled(_ context.Context, level slog.Level) bool { return level >= r.min }

// Handle keeps a clone of rec if its level is at or above r's minimum.
func (r *Recorder) Handle(ctx context.Context, rec slog.Record) error {
	return handler{r: r}.Handle(ctx, rec)
}

// WithAttrs returns a handler that records into r with attrs added to each record.
func (r *Recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return handler{r: r}.WithAttrs(attrs)
}

// WithGroup returns a handler that records into r with each record's attributes
// nested in a group called name.
func (r *Recorder) WithGroup(name string) slog.Handler {
	return handler{r: r}.WithGroup(name)
}

// handler is a Recorder seen through WithAttrs and WithGroup: it keeps, in order, the
// attributes and group names they added.
type handler struct {
	r    *Recorder
	with []groupOrAttrs
}

// groupOrAttrs is one WithGroup (group set) or one WithAttrs (attrs set).
type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

func (h handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.r.Enabled(ctx, level)
}

func (h handler) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level < h.r.min {
		return nil
	}
	var attrs []slog.Attr
	rec.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	// Apply the WithGroup and WithAttrs calls from the innermost out: a group takes in
	// everything after it, attributes go before what came after them.
	for _, w := range slices.Backward(h.with) {
		if w.group != "" {
			if len(attrs) == 0 {
				continue // a group with no attributes is left out, as slog's handlers do
			}
			attrs = []slog.Attr{{Key: w.group, Value: slog.GroupValue(attrs...)}}
			continue
		}
		attrs = append(slices.Clip(w.attrs), attrs...)
	}
	kept := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	kept.AddAttrs(attrs...)
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.r.records = append(h.r.records, kept)
	return nil
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with1(groupOrAttrs{attrs: slices.Clone(attrs)})
}

func (h handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with1(groupOrAttrs{group: name})
}

func (h handler) with1(w groupOrAttrs) handler {
	return handler{r: h.r, with: append(slices.Clip(h.with), w)}
}

// lines formats records as Lines describes.
func lines(recs []slog.Record) []string {
	out := make([]string, 0, len(recs))
	for _, rec := range recs {
		var sb strings.Builder
		sb.WriteString(rec.Message)
		rec.Attrs(func(a slog.Attr) bool {
			writeAttr(&sb, "", a)
			return true
		})
		out = append(out, sb.String())
	}
	return out
}

// writeAttr writes " key=value" for a, its key qualified by prefix; a group's members
// are written one by one, under the group's name.
func writeAttr(sb *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return // an empty attribute is left out, as slog's handlers do
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, m := range a.Value.Group() {
			writeAttr(sb, prefix, m)
		}
		return
	}
	sb.WriteString(" ")
	sb.WriteString(prefix)
	sb.WriteString(a.Key)
	sb.WriteString("=")
	sb.WriteString(a.Value.String())
}

// Eventually polls cond every few milliseconds until it returns true, and fails the
// test with "timed out waiting for <what>" if it has not after 20 seconds. It is for
// waiting on something another goroutine does, with a deadline generous enough that
// only a real hang trips it.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
