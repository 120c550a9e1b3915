package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agora-commerce/agora/internal/broker"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testlog"
)

// The messages of a toy module, "echo".
type upper struct {
	Text string `json:"text"`
}
type upperReply struct {
	Text          string `json:"text"`
	CorrelationID string `json:"correlation_id"`
	Served        string `json:"served"` // which replica answered
}

var (
	upperRequest = message.NewRequest[upper, upperReply]("echo.Upper")
	slowRequest  = message.NewRequest[upper, upperReply]("echo.Slow")
	ghostRequest = message.NewRequest[upper, upperReply]("ghost.Boo")
	echoed       = message.NewEvent[upper]("echo.Echoed")

	errShouting = message.NewError(message.Invalid, "echo.shouting", "no shouting")
)

var discard = slog.New(slog.DiscardHandler)

// startBroker starts an embedded broker on a free 127.0.0.1 port, stopped when the
// test ends.
func startBroker(t *testing.T, dir string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", StoreDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	return b
}

// node is one process: a bus with a NATS transport, serving what it registers.
type node struct {
	t  *Transport
	b  *bus.Bus
	lg *testlog.Recorder
}

func startNode(t *testing.T, url string, cfg Config, handlers []bus.RequestHandler, subs []bus.Subscription) *node {
	t.Helper()
	return startNodeWith(t, url, cfg, handlers, subs, nil)
}

// startNodeWith is startNode with setup run on the bus before it serves.
func startNodeWith(t *testing.T, url string, cfg Config, handlers []bus.RequestHandler, subs []bus.Subscription, setup func(*bus.Bus)) *node {
	t.Helper()
	cfg.URL = url
	lg := testlog.New(slog.LevelWarn)
	tr, err := Connect(cfg, lg.Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := bus.New(discard, bus.Limits{}, tr, handlers, subs)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(b)
	}
	if err := tr.Serve(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		_ = tr.Close()
	})
	return &node{t: tr, b: b, lg: lg}
}

func upperHandler(replica string) bus.RequestHandler {
	return bus.Handle(upperRequest, func(ctx context.Context, r upper) (upperReply, error) {
		switch r.Text {
		case "SHOUT":
			return upperReply{}, errShouting.OnField("body.text")
		case "crash":
			return upperReply{}, errors.New("disk on fire at /var/lib/secret")
		}
		c, _ := message.CauseFrom(ctx)
		return upperReply{Text: strings.ToUpper(r.Text), CorrelationID: c.CorrelationID, Served: replica}, nil
	})

}

func TestRequestReplyAcrossProcesses(t *testing.T) {
	br := startBroker(t, t.TempDir())
	startNode(t, br.URL(), Config{}, []bus.RequestHandler{upperHandler("a")}, nil)
	caller := startNode(t, br.URL(), Config{}, nil, nil)

	ctx := message.WithCause(context.Background(), message.Cause{ID: "req-1", CorrelationID: "corr-42"})
	got, err := bus.Call(ctx, caller.b, upperRequest, upper{Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != "HELLO" || got.CorrelationID != "corr-42" {
		t.Errorf("reply %+v: want HELLO with the caller's correlation id corr-42", got)
	}
}

func TestErrorsKeepTheirCodesAcrossTheWire(t *testing.T) {
	br := startBroker(t, t.TempDir())
	startNode(t, br.URL(), Config{}, []bus.RequestHandler{upperHandler("a")}, nil)
	caller := startNode(t, br.URL(), Config{}, nil, nil)
	ctx := context.Background()

	_, err := bus.Call(ctx, caller.b, upperRequest, upper{Text: "SHOUT"})
	if !errors.Is(err, errShouting) {
		t.Fatalf("err %v: want errors.Is errShouting", err)
	}
	var be *message.Error
	if !errors.As(err, &be) || be.Kind != message.Invalid || be.Field != "body.text" {
		t.Errorf("err %#v: want kind invalid on field body.text", be)
	}

	_, err = bus.Call(ctx, caller.b, upperRequest, upper{Text: "crash"})
	if !errors.Is(err, message.ErrInternal) {
		t.Fatalf("err %v: want message.ErrInternal", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("err %q leaks the handler's internal error", err)
	}
}

func TestRequestToAModuleNobodyRunsFailsFast(t *testing.T) {
	br := startBroker(t, t.TempDir())
	caller := startNode(t, br.URL(), Config{}, nil, nil)
	// A deadline far beyond the test's patience: a hang would end in ErrTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, err := bus.Call(ctx, caller.b, ghostRequest, upper{Text: "x"})
	if !errors.Is(err, message.ErrNoHandler) {
		t.Fatalf("err %v: want message.ErrNoHandler", err)
	}
	if !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("err %q does not name the module", err)
	}
}

func TestRequestDeadlineTravels(t *testing.T) {
	br := startBroker(t, t.TempDir())
	sawDeadline := make(chan time.Duration, 1)
	startNode(t, br.URL(), Config{}, []bus.RequestHandler{bus.Handle(slowRequest, func(ctx context.Context, _ upper) (upperReply, error) {
		d, ok := ctx.Deadline()
		if !ok {
			sawDeadline <- -1
		} else {
			sawDeadline <- time.Until(d)
		}
		<-ctx.Done()
		return upperReply{}, ctx.Err()
	})}, nil)
	caller := startNode(t, br.URL(), Config{}, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := bus.Call(ctx, caller.b, slowRequest, upper{})
	if !errors.Is(err, message.ErrTimeout) {
		t.Fatalf("err %v: want message.ErrTimeout", err)
	}
	if d := <-sawDeadline; d < 0 || d > 300*time.Millisecond {
		t.Errorf("handler's remaining deadline %v: want the caller's (at most 300ms)", d)
	}
}

func TestReplicasShareRequests(t *testing.T) {
	br := startBroker(t, t.TempDir())
	startNode(t, br.URL(), Config{}, []bus.RequestHandler{upperHandler("a")}, nil)
	startNode(t, br.URL(), Config{}, []bus.RequestHandler{upperHandler("b")}, nil)
	caller := startNode(t, br.URL(), Config{}, nil, nil)
	served := map[string]int{}
	for i := range 200 {
		got, err := bus.Call(context.Background(), caller.b, upperRequest, upper{Text: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		served[got.Served]++
	}
	if served["a"] == 0 || served["b"] == 0 {
		t.Errorf("served %v: want both replicas to take requests", served)
	}
}

// recorder is a subscription whose effects are counted per message id; fail says
// how many times a message fails before it succeeds.
type recorder struct {
	mu      sync.Mutex
	handled map[string]int // successful deliveries
	tries   map[string]int
	fail    map[string]int
	headers map[string]map[string]string
	batches []int
}

func newRecorder() *recorder {
	return &recorder{handled: map[string]int{}, tries: map[string]int{}, fail: map[string]int{}, headers: map[string]map[string]string{}}
}

func (r *recorder) handle(_ context.Context, env message.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries[env.ID]++
	if r.tries[env.ID] <= r.fail[env.ID] {
		return fmt.Errorf("failure %d of %s", r.tries[env.ID], env.ID)
	}
	r.handled[env.ID]++
	r.headers[env.ID] = env.Headers
	return nil
}

// HandleBatch implements bus.BatchGroup.
func (r *recorder) HandleBatch(ctx context.Context, items []bus.BatchItem) []error {
	r.mu.Lock()
	r.batches = append(r.batches, len(items))
	r.mu.Unlock()
	errs := make([]error, len(items))
	for i, it := range items {
		errs[i] = r.handle(it.Context(ctx), it.Env)
	}
	return errs
}

func (r *recorder) count(m map[string]int, id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return m[id]
}

func (r *recorder) sub(consumer string) bus.Subscription {
	return bus.Subscription{Type: echoed.Name(), Consumer: consumer, Handle: r.handle, Group: r}
}

// settled reports whether the broker has nothing left to deliver to consumer.
func settled(t *testing.T, n *node, consumer string) bool {
	t.Helper()
	c, err := n.t.js.Consumer(context.Background(), n.t.cfg.Stream, durableName(consumer))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

func envelope(t *testing.T, text string) message.Envelope {
	t.Helper()
	env, err := bus.Seal(context.Background(), echoed.With(upper{Text: text}))
	if err != nil {
		t.Fatal(err)
	}
	env.Headers = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	return env
}

func TestDurableMessagesAreAckedOnlyAfterTheirEffect(t *testing.T) {
	br := startBroker(t, t.TempDir())
	rec := newRecorder()
	receiver := startNode(t, br.URL(), Config{}, nil, []bus.Subscription{rec.sub("other.listener")})
	sender := startNode(t, br.URL(), Config{}, nil, nil)

	ok, flaky := envelope(t, "ok"), envelope(t, "flaky")
	rec.fail[flaky.ID] = 2
	for _, env := range []message.Envelope{ok, flaky} {
		if err := sender.b.Deliver(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}
	testlog.Eventually(t, "both messages handled", func() bool {
		return rec.count(rec.handled, ok.ID) == 1 && rec.count(rec.handled, flaky.ID) == 1
	})
	testlog.Eventually(t, "nothing left to deliver", func() bool { return settled(t, receiver, "other.listener") })
	if n := rec.count(rec.tries, ok.ID); n != 1 {
		t.Errorf("a handled message was delivered %d times: want 1 (acked after its effect)", n)
	}
	if n := rec.count(rec.tries, flaky.ID); n != 3 {
		t.Errorf("a message that failed twice was delivered %d times: want 3 (redelivered until it succeeds)", n)
	}
	rec.mu.Lock()
	tp := rec.headers[ok.ID]["traceparent"]
	rec.mu.Unlock()
	if tp != ok.Headers["traceparent"] {
		t.Errorf("traceparent %q arrived as %q", ok.Headers["traceparent"], tp)
	}
}

func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	br := startBroker(t, t.TempDir())
	rec := newRecorder()
	receiver := startNode(t, br.URL(), Config{MaxDeliver: 3}, nil, []bus.Subscription{rec.sub("other.listener")})
	sender := startNode(t, br.URL(), Config{}, nil, nil)
	poison := envelope(t, "poison")
	rec.fail[poison.ID] = 1000
	if err := sender.b.Deliver(context.Background(), poison); err != nil {
		t.Fatal(err)
	}
	dead, err := receiver.t.js.Stream(context.Background(), "AGORA_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	testlog.Eventually(t, "the dead letter", func() bool {
		info, err := dead.Info(context.Background())
		return err == nil && info.State.Msgs == 1
	})
	testlog.Eventually(t, "nothing left to deliver", func() bool { return settled(t, receiver, "other.listener") })
	if n := rec.count(rec.tries, poison.ID); n != 3 {
		t.Errorf("poison delivered %d times: want MaxDeliver = 3", n)
	}
	m, err := dead.GetLastMsgForSubject(context.Background(), "agora.dead.other_listener.echo.Echoed")
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(hID) != poison.ID || !strings.Contains(m.Header.Get(hError), "failure 3") {
		t.Errorf("dead letter headers %v: want the message id and its last error", m.Header)
	}
	if !strings.Contains(strings.Join(receiver.lg.Lines(), "\n"), "dead-lettered") {
		t.Errorf("the dead letter was not logged")
	}
}

func TestRepublishedMessagesAreStoredOnce(t *testing.T) {
	br := startBroker(t, t.TempDir())
	sender := startNode(t, br.URL(), Config{}, nil, nil)
	env := envelope(t, "once")
	for range 3 {
		if err := sender.t.Publish(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sender.t.js.Stream(context.Background(), "AGORA")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d copies: want 1 (Nats-Msg-Id de-duplication)", info.State.Msgs)
	}
}

func TestLocalSubscribersAreNotServedTwice(t *testing.T) {
	br := startBroker(t, t.TempDir())
	local, remote := newRecorder(), newRecorder()
	// Two replicas of one module run the local consumer; another module's consumer
	// runs elsewhere.
	a := startNode(t, br.URL(), Config{}, nil, []bus.Subscription{local.sub("echo.self")})
	b := startNode(t, br.URL(), Config{}, nil, []bus.Subscription{local.sub("echo.self")})
	startNode(t, br.URL(), Config{}, nil, []bus.Subscription{remote.sub("other.listener")})
	env := envelope(t, "short-circuit")
	if err := a.b.Deliver(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	testlog.Eventually(t, "the remote consumer gets it", func() bool { return remote.count(remote.handled, env.ID) == 1 })
	testlog.Eventually(t, "nothing left for the local consumer", func() bool { return settled(t, b, "echo.self") })
	if n := local.count(local.tries, env.ID); n != 1 {
		t.Errorf("the local consumer handled it %d times: want 1 (directly, the broker's copy skipped)", n)
	}
}

// TestBrokerOutageLosesNothing runs a real outbox relay through a broker that stops
// and starts again: publishing fails while it is down, the outbox keeps the
// messages, and after the restart everything arrives.
func TestBrokerOutageLosesNothing(t *testing.T) {
	storeDir := t.TempDir()
	br, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", StoreDir: storeDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := br.Addr()
	defer func() { br.Shutdown() }()

	rec := newRecorder()
	receiver := startNode(t, br.URL(), Config{}, nil, []bus.Subscription{rec.sub("other.listener")})
	sender := startNode(t, br.URL(), Config{}, nil, nil)
	db := outboxDB(t)
	ob := outbox.New(db, nil)
	relay := outbox.NewRelay(db, outbox.RelayConfig{BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxAttempts: 1000}, discard)

	add := func(n int, prefix string) {
		t.Helper()
		err := store.InTx(context.Background(), db, func(tx *store.Tx) error {
			for i := range n {
				if err := ob.Add(context.Background(), tx, echoed.With(upper{Text: fmt.Sprintf("%s-%d", prefix, i)})); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pending := func() int {
		var n int
		if err := db.GetContext(context.Background(), &n, `SELECT COUNT(*) FROM outbox`); err != nil {
			t.Fatal(err)
		}
		return n
	}

	add(5, "before")
	if _, err := relay.Drain(context.Background(), sender.b); err != nil {
		t.Fatal(err)
	}
	testlog.Eventually(t, "the first messages", func() bool { return handledCount(rec) == 5 })

	br.Shutdown()
	add(20, "during")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if _, err := relay.Drain(ctx, sender.b); err != nil {
		t.Fatal(err)
	}
	cancel()
	var failed int
	if err := db.GetContext(context.Background(), &failed, `SELECT COUNT(*) FROM outbox WHERE attempts > 0`); err != nil {
		t.Fatal(err)
	}
	if n := pending(); n != 20 || failed != 20 {
		t.Fatalf("outbox holds %d messages (%d with a failed attempt) during the outage: want all 20, failed", n, failed)
	}

	br, err = broker.Start(broker.Config{Addr: addr, StoreDir: storeDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testlog.Eventually(t, "the outbox drained after the restart", func() bool {
		_, _ = relay.Drain(context.Background(), sender.b)
		return pending() == 0
	})
	testlog.Eventually(t, "every message handled", func() bool { return handledCount(rec) == 25 })
	testlog.Eventually(t, "nothing left to deliver", func() bool { return settled(t, receiver, "other.listener") })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, n := range rec.handled {
		if n != 1 {
			t.Errorf("message %s handled %d times", id, n)
		}
	}
}

func handledCount(r *recorder) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.handled)
}

func outboxDB(t *testing.T) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, "echo", filepath.Join(t.TempDir(), "echo.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := outbox.Migrate(ctx, db, discard); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestStreamSetupIsIdempotent(t *testing.T) {
	br := startBroker(t, t.TempDir())
	n := startNode(t, br.URL(), Config{}, nil, []bus.Subscription{newRecorder().sub("other.listener")})
	// A second process with the same configuration, and a restart, change nothing.
	startNode(t, br.URL(), Config{}, nil, []bus.Subscription{newRecorder().sub("other.listener")})
	if err := n.t.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	names := n.t.js.StreamNames(context.Background())
	var got []string
	for s := range names.Name() {
		got = append(got, s)
	}
	if len(got) != 2 {
		t.Errorf("streams %v: want AGORA and AGORA_DEAD", got)
	}
	var _ jetstream.JetStream = n.t.js
}

// BenchmarkRequestRoundTrip compares a request served in this process with one
// served by another process over NATS (here: another connection to an embedded
// broker on loopback).
func BenchmarkRequestRoundTrip(b *testing.B) {
	br, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", StoreDir: b.TempDir()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Shutdown()
	inproc, err := bus.New(discard, bus.Limits{}, nil, []bus.RequestHandler{upperHandler("a")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	server, err := Connect(Config{URL: br.URL()}, discard)
	if err != nil {
		b.Fatal(err)
	}
	defer server.Close()
	if err := server.Serve(context.Background(), inproc); err != nil {
		b.Fatal(err)
	}
	client, err := Connect(Config{URL: br.URL()}, discard)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	remote, err := bus.New(discard, bus.Limits{}, client, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		b    *bus.Bus
	}{{"in-process", inproc}, {"nats", remote}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if _, err := bus.Call(ctx, bc.b, upperRequest, upper{Text: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			var failed atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := bus.Call(ctx, bc.b, upperRequest, upper{Text: "bench"}); err != nil {
						failed.Add(1)
					}
				}
			})
			if failed.Load() > 0 {
				b.Fatalf("%d calls failed", failed.Load())
			}
		})
	}
}
