// Package natsbus is the bus's network transport over NATS: what lets a module run
// in its own process, chosen by configuration (AGORA_BUS_URL=nats://…).
//
// Requests travel as NATS request–reply on one subject per request type,
// "agora.req.<type>" (e.g. agora.req.catalog.GetProducts). A process subscribes only
// to the types it serves, in the queue group "agora.<module>", so replicas of a
// module share the load. A request that no process serves fails at once with
// message.ErrNoHandler (NATS answers "no responders"), not at its deadline. The
// caller's remaining deadline travels with the request; a reply carries either the
// handler's payload or its *message.Error (kind, code, message, field), so errors.Is
// matches the contract's sentinels on the caller's side.
//
// Commands and events travel through JetStream: one stream ("AGORA", subjects
// "agora.msg.<type>", kept for Config.MaxAge) holds every durable message; Publish
// returns only once the broker has stored it, with the envelope id as Nats-Msg-Id so
// that the broker drops a republished copy within the duplicate window. Every local
// subscription consumer ("<module>.<handler>") has a durable pull consumer of the
// same name, filtered to the types it subscribes to; replicas bind to the same
// consumer and share its messages. A batch of messages is handed to the
// subscriptions' bus.BatchGroup (one receiver transaction for the batch) and each
// message is acknowledged only after its effect committed. A failed message is
// redelivered with backoff up to Config.MaxDeliver times; then it is copied to the
// dead-letter stream ("AGORA_DEAD", subject "agora.dead.<consumer>.<type>", with the
// last error in the Agora-Error header), logged, and terminated.
//
// Local short-circuit: the outbox relay hands a durable message to the subscribers
// in its own process directly (bus.Deliver) and to Publish. Publish names those
// subscribers in the Agora-Local header, and their JetStream consumers (here or in a
// replica) acknowledge such a copy without handling it: the relay keeps retrying
// until every local subscriber has it. A process with other local subscribers
// publishes a differently named copy (the Nats-Msg-Id includes them), so that a
// message is never skipped by a consumer that did not get it.
//
// Envelope metadata travels in NATS headers (Agora-Id, Agora-Type, Agora-Kind,
// Agora-Correlation-Id, Agora-Causation-Id, Agora-Time) and the envelope's own
// headers (trace context) as headers of the same name; the body is the payload.
//
// The connection reconnects forever and buffers while it is down. A Publish that
// the broker does not acknowledge returns an error, so the outbox keeps the message
// and its relay retries: a broker outage delays messages, and loses none.
package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
)

// Config configures a Transport. Zero values take the defaults.
type Config struct {
	URL  string // nats://host:port (several, comma-separated, for a cluster)
	Name string // the connection's name, shown by the broker's monitoring

	Stream     string        // the durable-message stream (default "AGORA")
	Replicas   int           // the streams' replicas in a NATS cluster (default 1)
	MaxAge     time.Duration // how long the stream keeps a message (default 7 days, as long as an inbox remembers it)
	Duplicates time.Duration // the broker's de-duplication window (default 10 minutes, beyond the relay's longest backoff)
	MaxDeliver int           // deliveries of a failing message before it is dead-lettered (default 10)
	// AckWait is how long the broker waits for a delivery's answer before it
	// redelivers it (default 3s): how soon the messages a crashed process had taken
	// go to another process or its restart. Messages being handled are kept alive
	// with in-progress heartbeats every third of it, however long they take.
	AckWait time.Duration
	// HandleTimeout bounds the handling of one batch (default 30s).
	HandleTimeout time.Duration
	BatchSize     int // messages handed to one receiver transaction (default 100)

	// RequestTimeout is the deadline of a request whose context has none (default 30s).
	RequestTimeout time.Duration
	// OutageWait is how long a request made while the broker is unreachable waits
	// for the connection to come back before it fails as unavailable (default 2s).
	OutageWait time.Duration
	// PingInterval is how often the connection checks that the broker answers; two
	// unanswered pings mark it lost, so a silent broker (paused, partitioned) is
	// noticed within about three intervals (default 1s).
	PingInterval time.Duration
	// ReconnectBuffer is how many bytes are buffered while disconnected (default 8 MiB).
	ReconnectBuffer int
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = "AGORA"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 10 * time.Minute
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.AckWait <= 0 {
		c.AckWait = 3 * time.Second
	}
	if c.HandleTimeout <= 0 {
		c.HandleTimeout = 30 * time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.OutageWait <= 0 {
		c.OutageWait = 2 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = time.Second
	}
	if c.ReconnectBuffer <= 0 {
		c.ReconnectBuffer = 8 << 20
	}
	return c
}

// Subjects and headers on the wire.
const (
	requestPrefix = "agora.req."
	messagePrefix = "agora.msg."
	deadPrefix    = "agora.dead."

	hID          = "Agora-Id"
	hType        = "Agora-Type"
	hKind        = "Agora-Kind"
	hCorrelation = "Agora-Correlation-Id"
	hCausation   = "Agora-Causation-Id"
	hTime        = "Agora-Time"
	hTimeout     = "Agora-Timeout-Ms" // the caller's remaining deadline
	hError       = "Agora-Error"      // on a reply: the body is a *message.Error
	hLocal       = "Agora-Local"      // consumers the publisher delivered to itself
)

// Transport is the NATS transport; it implements bus.Transport. Build it with
// Connect, create its streams with Setup, and start serving with Serve once the bus
// exists.
type Transport struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream
	up  *link

	mu        sync.Mutex
	b         *bus.Bus
	subs      []*nats.Subscription
	consumers []*consumer
	inflight  sync.WaitGroup // requests being served
}

var _ bus.Transport = (*Transport)(nil)

// Connect connects to the broker at cfg.URL. It does not wait for the broker: the
// connection is retried in the background, forever, as after any disconnection.
func Connect(cfg Config, log *slog.Logger) (*Transport, error) {
	cfg = cfg.withDefaults()
	t := &Transport{cfg: cfg, log: log.With("component", "natsbus"), up: newLink()}
	nc, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		nats.PingInterval(cfg.PingInterval),
		nats.MaxPingsOutstanding(2),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(cfg.ReconnectBuffer),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close at shutdown, not a lost broker
			}
			t.up.down()
			t.log.Warn("bus disconnected from the broker; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			t.up.restored()
			t.log.Info("bus reconnected to the broker", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			t.log.Warn("bus connection error", "subject", subj, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect %s: %w", cfg.URL, err)
	}
	if !nc.IsConnected() {
		t.up.down() // not there yet: RetryOnFailedConnect keeps trying
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	t.nc, t.js = nc, js
	return t, nil
}

// Setup creates or updates the streams (idempotent), retrying until ctx ends while
// the broker cannot be reached.
func (t *Transport) Setup(ctx context.Context) error {
	streams := []jetstream.StreamConfig{{
		Name:        t.cfg.Stream,
		Description: "Agora's commands and events",
		Subjects:    []string{messagePrefix + ">"},
		Retention:   jetstream.LimitsPolicy, // kept for MaxAge, so a consumer created later still gets them
		MaxAge:      t.cfg.MaxAge,
		Duplicates:  t.cfg.Duplicates,
		Storage:     jetstream.FileStorage,
		Replicas:    t.cfg.Replicas,
	}, {
		Name:        t.cfg.Stream + "_DEAD",
		Description: "Agora's dead letters: messages a consumer failed to handle MaxDeliver times",
		Subjects:    []string{deadPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      4 * t.cfg.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    t.cfg.Replicas,
	}}
	for _, sc := range streams {
		if err := retry(ctx, func(ctx context.Context) error {
			_, err := t.js.CreateOrUpdateStream(ctx, sc)
			return err
		}); err != nil {
			return fmt.Errorf("natsbus: create stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// retry runs fn until it succeeds or ctx ends, each attempt bounded by a few seconds.
func retry(ctx context.Context, fn func(ctx context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// Serve starts serving b's local request handlers and subscriptions: a queue
// subscription per request type b serves and a durable consumer per local
// subscription consumer. Call it once, after Setup.
func (t *Transport) Serve(ctx context.Context, b *bus.Bus) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = b
	for _, typ := range b.LocalRequestTypes() {
		sub, err := t.nc.QueueSubscribe(requestPrefix+typ, "agora."+bus.ModuleOf(typ), t.serveRequest)
		if err != nil {
			return fmt.Errorf("natsbus: subscribe %s: %w", typ, err)
		}
		// Requests are served concurrently (serveRequest hands each to a goroutine,
		// bounded by the bus's limiter), so the subscription's own queue stays short.
		t.subs = append(t.subs, sub)
	}
	byConsumer := map[string][]bus.Subscription{}
	var names []string
	for _, s := range localSubscriptions(b) {
		if _, ok := byConsumer[s.Consumer]; !ok {
			names = append(names, s.Consumer)
		}
		byConsumer[s.Consumer] = append(byConsumer[s.Consumer], s)
	}
	for _, name := range names {
		c, err := t.startConsumer(ctx, name, byConsumer[name])
		if err != nil {
			return err
		}
		t.consumers = append(t.consumers, c)
	}
	// Make sure the broker has the subscriptions before this process reports ready.
	fctx, cancel := withDefaultDeadline(ctx, 5*time.Second)
	defer cancel()
	if err := t.nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("natsbus: flush subscriptions: %w", err)
	}
	return nil
}

// localSubscriptions lists b's subscriptions, by type.
func localSubscriptions(b *bus.Bus) []bus.Subscription {
	var out []bus.Subscription
	for _, typ := range b.SubscribedTypes() {
		out = append(out, b.Subscriptions(typ)...)
	}
	return out
}

// Stop stops serving: no new requests or messages are taken, requests in flight are
// answered and batches in flight are acknowledged (bounded by ctx). Call it before
// the receivers' databases close; Close afterwards.
func (t *Transport) Stop(ctx context.Context) error {
	t.mu.Lock()
	subs, consumers := t.subs, t.consumers
	t.subs, t.consumers = nil, nil
	t.mu.Unlock()
	var errs []error
	for _, s := range subs {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, err)
		}
	}
	for _, c := range consumers {
		c.stop()
	}
	done := make(chan struct{})
	go func() {
		t.inflight.Wait()
		for _, c := range consumers {
			<-c.done
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("natsbus: stop: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// Close flushes what is buffered and closes the connection.
func (t *Transport) Close() error {
	if err := t.nc.FlushTimeout(2 * time.Second); err != nil && t.nc.IsConnected() {
		t.log.Warn("bus flush on close failed", "err", err)
	}
	t.nc.Close()
	return nil
}

// Ping reports whether the broker answers: a round trip on the connection.
func (t *Transport) Ping(ctx context.Context) error {
	if !t.nc.IsConnected() {
		return fmt.Errorf("natsbus: not connected to the broker (%s)", t.nc.Status())
	}
	ctx, cancel := withDefaultDeadline(ctx, 2*time.Second)
	defer cancel()
	return t.nc.FlushWithContext(ctx)
}

// withDefaultDeadline returns ctx, or ctx bounded by d when it has no deadline (NATS
// calls that wait require one).
func withDefaultDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// Request implements bus.Transport. Just after the broker connection came back,
// a request nobody answers is asked again for up to OutageWait: the process that
// serves it may still be subscribing again after the same outage.
func (t *Transport) Request(ctx context.Context, env message.Envelope) ([]byte, error) {
	for {
		reply, err := t.request(ctx, env)
		if !errors.Is(err, message.ErrNoHandler) || !t.up.settling(t.cfg.OutageWait) {
			return reply, err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, message.ErrTimeout
		}
	}
}

func (t *Transport) request(ctx context.Context, env message.Envelope) ([]byte, error) {
	ctx, cancel := withDefaultDeadline(ctx, t.cfg.RequestTimeout)
	defer cancel()
	ctx, release, err := t.up.await(ctx, t.cfg.OutageWait, env.Type)
	if err != nil {
		return nil, err
	}
	defer release(nil)
	deadline, _ := ctx.Deadline()
	msg := envelopeMsg(requestPrefix+env.Type, env)
	msg.Header.Set(hTimeout, strconv.FormatInt(time.Until(deadline).Milliseconds(), 10))
	reply, err := t.nc.RequestMsgWithContext(ctx, msg)
	switch {
	case err == nil:
	case errors.Is(context.Cause(ctx), errLinkLost):
		return nil, unreachable(env.Type)
	case errors.Is(err, nats.ErrNoResponders):
		return nil, message.ErrNoHandler.Withf("no process serves %s (module %q is not running)", env.Type, bus.ModuleOf(env.Type))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, nats.ErrTimeout):
		return nil, message.ErrTimeout
	default:
		t.log.WarnContext(ctx, "bus request failed", "type", env.Type, "err", err)
		return nil, unreachable(env.Type)
	}
	if reply.Header.Get(hError) != "" {
		be := &message.Error{}
		if err := json.Unmarshal(reply.Data, be); err != nil || be.Code == "" {
			return nil, message.ErrInvalidMessage.Withf("undecodable error reply to %s", env.Type)
		}
		return nil, be
	}
	return reply.Data, nil
}

// serveRequest answers one request from another process with the local handler.
func (t *Transport) serveRequest(msg *nats.Msg) {
	t.inflight.Add(1)
	go func() {
		defer t.inflight.Done()
		env, err := msgEnvelope(msg.Subject, msg.Header, msg.Data)
		var out []byte
		if err == nil {
			timeout := t.cfg.RequestTimeout
			if ms, perr := strconv.ParseInt(msg.Header.Get(hTimeout), 10, 64); perr == nil && ms > 0 {
				timeout = time.Duration(ms) * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			out, err = t.b.ServeEncoded(ctx, env)
			cancel()
		}
		reply := &nats.Msg{Header: nats.Header{}, Data: out}
		if err != nil {
			reply.Header.Set(hError, "1")
			reply.Data, _ = json.Marshal(message.AsError(err)) // a *message.Error always encodes
		}
		if err := msg.RespondMsg(reply); err != nil {
			t.log.Warn("bus reply not sent", "type", msg.Subject, "err", err)
		}
	}()
}

// Publish implements bus.Transport: it returns nil only once the broker has
// stored env (or already had it, within the duplicate window).
func (t *Transport) Publish(ctx context.Context, env message.Envelope) error {
	msg, msgID := t.durableMsg(env)
	ctx, cancel := withDefaultDeadline(ctx, 5*time.Second)
	defer cancel()
	if _, err := t.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(t.cfg.Stream)); err != nil {
		return fmt.Errorf("natsbus: publish %s %s: %w", env.Type, env.ID, err)
	}
	return nil
}

// PublishBatch implements bus.BatchPublisher: every envelope is sent at once and
// the broker's acknowledgements are awaited together, so a relay's batch costs one
// round trip rather than one per message. Each error is that envelope's, as Publish
// would have returned it.
func (t *Transport) PublishBatch(ctx context.Context, envs []message.Envelope) []error {
	ctx, cancel := withDefaultDeadline(ctx, 5*time.Second)
	defer cancel()
	errs := make([]error, len(envs))
	futures := make([]jetstream.PubAckFuture, len(envs))
	for i, env := range envs {
		msg, msgID := t.durableMsg(env)
		f, err := t.js.PublishMsgAsync(msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(t.cfg.Stream))
		if err != nil {
			errs[i] = fmt.Errorf("natsbus: publish %s %s: %w", env.Type, env.ID, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = fmt.Errorf("natsbus: publish %s %s: %w", envs[i].Type, envs[i].ID, err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("natsbus: publish %s %s: %w", envs[i].Type, envs[i].ID, context.Cause(ctx))
		}
	}
	return errs
}

// durableMsg encodes env for the stream, with the message id the broker
// de-duplicates on.
func (t *Transport) durableMsg(env message.Envelope) (*nats.Msg, string) {
	msg := envelopeMsg(messagePrefix+env.Type, env)
	msgID := env.ID
	if local := t.localConsumers(env.Type); len(local) > 0 {
		joined := strings.Join(local, ",")
		msg.Header.Set(hLocal, joined)
		sum := sha256.Sum256([]byte(joined))
		msgID += "~" + hex.EncodeToString(sum[:6])
	}
	return msg, msgID
}

// localConsumers returns the consumers of typ in this process (which bus.Deliver
// serves directly), sorted.
func (t *Transport) localConsumers(typ string) []string {
	t.mu.Lock()
	b := t.b
	t.mu.Unlock()
	if b == nil {
		return nil
	}
	var out []string
	for _, s := range b.Subscriptions(typ) {
		out = append(out, s.Consumer)
	}
	slices.Sort(out)
	return out
}

// envelopeMsg encodes env as a NATS message on subject: metadata in headers, the
// payload as the body.
func envelopeMsg(subject string, env message.Envelope) *nats.Msg {
	msg := nats.NewMsg(subject)
	for k, v := range env.Headers {
		if !reserved(k) {
			msg.Header.Set(k, v)
		}
	}
	msg.Header.Set(hID, env.ID)
	msg.Header.Set(hType, env.Type)
	msg.Header.Set(hKind, string(env.Kind))
	if env.CorrelationID != "" {
		msg.Header.Set(hCorrelation, env.CorrelationID)
	}
	if env.CausationID != "" {
		msg.Header.Set(hCausation, env.CausationID)
	}
	msg.Header.Set(hTime, env.Time.UTC().Format(time.RFC3339Nano))
	msg.Data = env.Payload
	return msg
}

// reserved reports whether a header name belongs to the transport or to NATS.
func reserved(k string) bool {
	return strings.HasPrefix(k, "Agora-") || strings.HasPrefix(k, "Nats-")
}

// msgEnvelope decodes what envelopeMsg encoded.
func msgEnvelope(subject string, h nats.Header, data []byte) (message.Envelope, error) {
	env := message.Envelope{
		ID: h.Get(hID), Type: h.Get(hType), Kind: message.Kind(h.Get(hKind)),
		CorrelationID: h.Get(hCorrelation), CausationID: h.Get(hCausation),
		Payload: json.RawMessage(data),
	}
	if env.ID == "" || env.Type == "" {
		return env, message.ErrInvalidMessage.Withf("message on %s without Agora-Id or Agora-Type", subject)
	}
	if ts := h.Get(hTime); ts != "" {
		if tm, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			env.Time = tm.UTC()
		}
	}
	for k, v := range h {
		if !reserved(k) && len(v) > 0 {
			if env.Headers == nil {
				env.Headers = map[string]string{}
			}
			env.Headers[k] = v[0]
		}
	}
	return env, nil
}
