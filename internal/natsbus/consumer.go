package natsbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agora-commerce/agora/internal/backoff"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
)

// consumer feeds one subscription consumer ("<module>.<handler>") from its durable
// JetStream consumer, in batches.
type consumer struct {
	t    *Transport
	name string
	subs map[string]bus.Subscription // by message type
	cc   jetstream.ConsumeContext
	ch   chan jetstream.Msg
	quit chan struct{}
	done chan struct{}

	// held are the messages taken from the broker and not yet acknowledged: the
	// heartbeat tells the broker they are in progress, so that AckWait can be short
	// (a crashed process's messages come back within it) while a backlog or a slow
	// batch takes as long as it takes.
	mu   sync.Mutex
	held map[jetstream.Msg]struct{}
}

// hold records m as taken; release forgets messages that were answered.
func (c *consumer) hold(m jetstream.Msg) {
	c.mu.Lock()
	c.held[m] = struct{}{}
	c.mu.Unlock()
}

func (c *consumer) release(ms ...jetstream.Msg) {
	c.mu.Lock()
	for _, m := range ms {
		delete(c.held, m)
	}
	c.mu.Unlock()
}

// heartbeat marks the held messages in progress every third of AckWait until quit.
func (c *consumer) heartbeat() {
	tick := time.NewTicker(c.t.cfg.AckWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		held := make([]jetstream.Msg, 0, len(c.held))
		for m := range c.held {
			held = append(held, m)
		}
		c.mu.Unlock()
		for _, m := range held {
			_ = m.InProgress() // lost: the message comes back after AckWait, and the inbox drops the copy
		}
	}
}

// durableName turns a subscription consumer name into a JetStream consumer name
// (which may not contain dots, wildcards, spaces or path separators).
func durableName(consumer string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '/', '\\':
			return '_'
		}
		return r
	}, consumer)
}

// startConsumer creates or updates the durable consumer of name, filtered to the
// types of subs, and starts feeding it.
func (t *Transport) startConsumer(ctx context.Context, name string, subs []bus.Subscription) (*consumer, error) {
	c := &consumer{t: t, name: name, subs: map[string]bus.Subscription{}, held: map[jetstream.Msg]struct{}{},
		ch: make(chan jetstream.Msg, maxAckPending(t.cfg)), quit: make(chan struct{}), done: make(chan struct{})}
	var filters []string
	for _, s := range subs {
		c.subs[s.Type] = s
		filters = append(filters, messagePrefix+s.Type)
	}
	slices.Sort(filters)
	cfg := jetstream.ConsumerConfig{
		Durable:        durableName(name),
		Description:    "Agora subscription consumer " + name,
		FilterSubjects: filters,
		// A consumer created after messages were published (a module started for the
		// first time) still gets every message the stream keeps.
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.cfg.AckWait,
		MaxDeliver:    t.cfg.MaxDeliver,
		MaxAckPending: maxAckPending(t.cfg),
	}
	var cons jetstream.Consumer
	if err := retry(ctx, func(ctx context.Context) error {
		var err error
		cons, err = t.js.CreateOrUpdateConsumer(ctx, t.cfg.Stream, cfg)
		return err
	}); err != nil {
		return nil, fmt.Errorf("natsbus: create consumer %s: %w", name, err)
	}
	cc, err := cons.Consume(c.receive,
		jetstream.PullMaxMessages(2*t.cfg.BatchSize),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) && !errors.Is(err, nats.ErrConnectionClosed) {
				t.log.Debug("bus consumer", "consumer", name, "err", err)
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("natsbus: consume %s: %w", name, err)
	}
	c.cc = cc
	go c.run()
	go c.heartbeat()
	return c, nil
}

// maxAckPending bounds the messages the broker hands this process's consumer without
// an answer. The consumer's queue holds that many, so that receiving never blocks
// and every message taken is held — heartbeated — from the moment it arrives.
func maxAckPending(cfg Config) int { return 4 * cfg.BatchSize }

// receive takes a message from the NATS client into the batching loop.
func (c *consumer) receive(m jetstream.Msg) {
	c.hold(m)
	select {
	case c.ch <- m:
	case <-c.quit:
		_ = m.Nak() // another replica, or the next start, takes it at once
		c.release(m)
	}
}

// stop stops taking messages; the batch in progress finishes (done closes then).
// Messages already pulled but not handled are handed back.
func (c *consumer) stop() {
	c.cc.Stop()
	close(c.quit)
}

func (c *consumer) run() {
	defer close(c.done)
	for {
		var first jetstream.Msg
		select {
		case <-c.quit:
			for {
				select {
				case m := <-c.ch:
					_ = m.Nak()
					c.release(m)
				default:
					return
				}
			}
		case first = <-c.ch:
		}
		batch := []jetstream.Msg{first}
	fill:
		for len(batch) < c.t.cfg.BatchSize {
			select {
			case m := <-c.ch:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		c.handle(batch)
		c.release(batch...)
	}
}

// handle delivers a batch to the local subscriptions, then acknowledges each
// message whose effect committed and schedules the others for redelivery (or dead
// letters them, on their last delivery).
func (c *consumer) handle(batch []jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), c.t.cfg.HandleTimeout)
	defer cancel()
	type pending struct {
		msg jetstream.Msg
		env message.Envelope
	}
	var items []bus.BatchItem
	var work []pending
	for _, m := range batch {
		env, err := msgEnvelope(m.Subject(), m.Headers(), m.Data())
		if err != nil {
			c.deadLetter(ctx, m, env, err)
			continue
		}
		if slices.Contains(strings.Split(m.Headers().Get(hLocal), ","), c.name) {
			_ = m.Ack() // the publisher's relay delivered it to this consumer directly
			continue
		}
		if to := m.Headers().Get(hRedriveTo); to != "" && to != c.name {
			_ = m.Ack() // a dead letter redriven to another consumer; this one had it
			continue
		}
		sub, ok := c.subs[env.Type]
		if !ok {
			// The durable consumer's filter was widened by a newer replica; leave the
			// message to a process that subscribes to it.
			_ = m.NakWithDelay(time.Second)
			continue
		}
		work = append(work, pending{m, env})
		items = append(items, bus.BatchItem{Sub: sub, Env: env})
	}
	errs := c.t.b.HandleItems(ctx, items)
	for i, w := range work {
		if errs[i] == nil {
			if err := w.msg.Ack(); err != nil {
				// Redelivered later; the receiver's inbox drops the duplicate.
				c.t.log.Debug("bus ack not sent", "consumer", c.name, "id", w.env.ID, "err", err)
			}
			continue
		}
		c.failed(ctx, w.msg, w.env, errs[i])
	}
}

// failed schedules a redelivery of m with backoff, or dead-letters it after its
// last allowed delivery.
func (c *consumer) failed(ctx context.Context, m jetstream.Msg, env message.Envelope, cause error) {
	delivered := uint64(1)
	if meta, err := m.Metadata(); err == nil {
		delivered = meta.NumDelivered
	}
	if delivered >= uint64(c.t.cfg.MaxDeliver) {
		c.deadLetter(ctx, m, env, cause)
		return
	}
	delay := backoff.Delay(200*time.Millisecond, 30*time.Second, int(delivered))
	c.t.log.Warn("bus message failed; will redeliver", "consumer", c.name, "id", env.ID, "type", env.Type,
		"delivery", delivered, "retry_in", delay, "err", cause)
	_ = m.NakWithDelay(delay)
}

// deadLetter copies m to the dead-letter stream with the error and terminates it,
// so that it is never delivered to this consumer again. If the copy cannot be
// stored the message is handed back instead, to be tried again.
func (c *consumer) deadLetter(ctx context.Context, m jetstream.Msg, env message.Envelope, cause error) {
	dead := nats.NewMsg(deadPrefix + durableName(c.name) + "." + strings.TrimPrefix(m.Subject(), messagePrefix))
	for k, v := range m.Headers() {
		if !strings.HasPrefix(k, "Nats-") {
			dead.Header[k] = v
		}
	}
	msg := cause.Error()
	if len(msg) > 1000 {
		msg = strings.ToValidUTF8(msg[:1000], "")
	}
	dead.Header.Set(hError, msg)
	dead.Header.Set("Agora-Consumer", c.name)
	dead.Data = m.Data()
	if _, err := c.t.js.PublishMsg(ctx, dead); err != nil {
		c.t.log.Error("bus dead letter not stored; redelivering", "consumer", c.name, "id", env.ID, "err", err)
		_ = m.NakWithDelay(time.Minute)
		return
	}
	c.t.log.Error("bus message dead-lettered", "consumer", c.name, "id", env.ID, "type", env.Type,
		"stream", c.t.cfg.Stream+"_DEAD", "err", cause)
	_ = m.TermWithReason("dead-lettered by agora")
}
