package testlog_test

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/testlog"
)

// Only records at or above the minimum level are kept, and Enabled says so up front.
func TestRecorderKeepsRecordsAtOrAboveLevel(t *testing.T) {
	rec := testlog.New(slog.LevelWarn)
	log := rec.Logger()
	log.Debug("debug")
	log.Info("info")
	log.Warn("warn")
	log.Error("error")
	if diff := cmp.Diff([]string{"warn", "error"}, rec.Lines()); diff != "" {
		t.Errorf("Lines (-want +got):\n%s", diff)
	}
	var levels []slog.Level
	for _, r := range rec.Records() {
		levels = append(levels, r.Level)
	}
	if diff := cmp.Diff([]slog.Level{slog.LevelWarn, slog.LevelError}, levels); diff != "" {
		t.Errorf("levels of Records (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		level slog.Level
		want  bool
	}{{slog.LevelInfo, false}, {slog.LevelWarn, true}, {slog.LevelError, true}} {
		if got := log.Enabled(t.Context(), tc.level); got != tc.want {
			t.Errorf("Enabled(%v) = %v; want %v", tc.level, got, tc.want)
		}
	}
	// Even a record handed straight to Handle is held to the level.
	if err := rec.Handle(t.Context(), slog.NewRecord(rec.Records()[0].Time, slog.LevelInfo, "direct", 0)); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.Lines()); got != 2 {
		t.Errorf("after Handle of an info record, %d lines; want 2", got)
	}
}

// Lines formats each record as its message and its attributes in order, those added
// by With (before the record's own) and under groups (dotted) included.
func TestLinesFormat(t *testing.T) {
	rec := testlog.New(slog.LevelDebug)
	log := rec.Logger()
	log.Info("plain")
	log.Info("attrs", "n", 3, "err", errors.New("boom"), "s", "a b")
	relay := log.With("module", "catalog", "component", "relay")
	relay.Warn("with", "attempt", 2)
	relay.With("id", "m1").Error("nested with")
	log.WithGroup("req").With("method", "GET").Info("grouped", "status", 200)
	log.WithGroup("empty").Info("empty group")
	log.Info("inline group", slog.Group("g", "a", 1), slog.Attr{})
	log.Info("valuer", "v", valuer{})

	want := []string{
		"plain",
		"attrs n=3 err=boom s=a b",
		"with module=catalog component=relay attempt=2",
		"nested with module=catalog component=relay id=m1",
		"grouped req.method=GET req.status=200",
		"empty group",
		"inline group g.a=1",
		"valuer v=resolved",
	}
	if diff := cmp.Diff(want, rec.Lines()); diff != "" {
		t.Errorf("Lines (-want +got):\n%s", diff)
	}

	// The records carry the With attributes too.
	var keys []string
	rec.Records()[3].Attrs(func(a slog.Attr) bool {
		keys = append(keys, a.Key)
		return true
	})
	if diff := cmp.Diff([]string{"module", "component", "id"}, keys); diff != "" {
		t.Errorf("attribute keys of the nested With record (-want +got):\n%s", diff)
	}
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("resolved") }

// Records returns copies: what a caller does to them does not reach the recorder.
func TestRecordsAreCopies(t *testing.T) {
	rec := testlog.New(slog.LevelInfo)
	rec.Logger().Info("m", "k", "v")
	got := rec.Records()
	got[0].AddAttrs(slog.String("added", "x"))
	got[0].Message = "changed"
	if diff := cmp.Diff([]string{"m k=v"}, rec.Lines()); diff != "" {
		t.Errorf("Lines after changing a returned record (-want +got):\n%s", diff)
	}
}

// Take returns what was logged since the last Take, and forgets it.
func TestTakeClears(t *testing.T) {
	rec := testlog.New(slog.LevelInfo)
	log := rec.Logger()
	if got := rec.Take(); len(got) != 0 {
		t.Errorf("Take on a new recorder = %q; want nothing", got)
	}
	log.Info("one")
	log.Info("two", "k", 1)
	if diff := cmp.Diff([]string{"one", "two k=1"}, rec.Take()); diff != "" {
		t.Errorf("first Take (-want +got):\n%s", diff)
	}
	if got := rec.Lines(); len(got) != 0 {
		t.Errorf("Lines after Take = %q; want nothing", got)
	}
	log.With("w", true).Info("three")
	if diff := cmp.Diff([]string{"three w=true"}, rec.Take()); diff != "" {
		t.Errorf("second Take (-want +got):\n%s", diff)
	}
}

// Loggers derived from one recorder may log, and the recorder be read and drained,
// from many goroutines at once (run with -race); no record is lost or doubled.
func TestRecorderConcurrent(t *testing.T) {
	rec := testlog.New(slog.LevelInfo)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	var taken atomic.Int64
	for w := range writers {
		log := rec.Logger().With("writer", w)
		wg.Go(func() {
			for i := range each {
				log.Info("msg", "i", i)
				if i%50 == 0 {
					_ = rec.Lines()
					_ = rec.Records()
				}
			}
		})
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			taken.Add(int64(len(rec.Take())))
			select {
			case <-done:
				return
			default:
			}
		}
	})
	wg.Wait()
	close(done)
	readers.Wait()
	taken.Add(int64(len(rec.Take())))
	if got, want := taken.Load(), int64(writers*each); got != want {
		t.Errorf("records taken = %d; want %d", got, want)
	}
}

// Eventually returns once cond holds, having polled it until then.
func TestEventually(t *testing.T) {
	var calls atomic.Int64
	testlog.Eventually(t, "the third call", func() bool { return calls.Add(1) >= 3 })
	if got := calls.Load(); got != 3 {
		t.Errorf("cond called %d times; want 3", got)
	}

	var n atomic.Int64
	go func() {
		for range 5 {
			n.Add(1)
		}
	}()
	testlog.Eventually(t, fmt.Sprintf("n to reach %d", 5), func() bool { return n.Load() == 5 })
}
