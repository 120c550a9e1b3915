package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agora-commerce/agora/internal/message"
)

// hRedriveTo names the one consumer a redriven dead letter is for: every other
// consumer of its type acknowledges it without handling it (they had it already).
const hRedriveTo = "Agora-Redrive-To"

// BrokerDeadLetter is a durable message a consumer gave up on after Config.MaxDeliver
// deliveries, kept in the dead-letter stream until it is redriven.
type BrokerDeadLetter struct {
	Seq           uint64    `json:"seq" doc:"its sequence in the dead-letter stream, which redrive takes"`
	ID            string    `json:"id" doc:"the message id"`
	Type          string    `json:"type"`
	Kind          string    `json:"kind"`
	Consumer      string    `json:"consumer" doc:"the consumer that gave up on it"`
	CorrelationID string    `json:"correlation_id"`
	Error         string    `json:"error" doc:"the consumer's last error"`
	DeadAt        time.Time `json:"dead_at"`
}

// ErrDeadLetterNotFound: the dead-letter stream holds no message at that
// sequence (never, or redriven already), or this deployment has no broker.
var ErrDeadLetterNotFound = message.NewError(message.NotFound, "bus.dead_letter_not_found", "no dead letter at that sequence")

// deadStream is the dead-letter stream's name.
func (t *Transport) deadStream() string { return t.cfg.Stream + "_DEAD" }

// streamsUnreachable wraps a failure to reach the broker's streams as the 503 it is.
func streamsUnreachable(err error) error {
	return message.ErrUnreachable.Withf("the broker's dead letters: %v", err)
}

// DeadLetters returns up to limit dead letters with sequences above after, oldest
// first. With no dead-letter stream (nothing ever died) it returns none.
func (t *Transport) DeadLetters(ctx context.Context, after uint64, limit int) ([]BrokerDeadLetter, error) {
	s, err := t.js.Stream(ctx, t.deadStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, streamsUnreachable(err)
	}
	var out []BrokerDeadLetter
	for seq := after + 1; len(out) < limit; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(deadPrefix+">")) // the next one at or after seq
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, streamsUnreachable(err)
		}
		out = append(out, deadLetterOf(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

func deadLetterOf(m *jetstream.RawStreamMsg) BrokerDeadLetter {
	return BrokerDeadLetter{Seq: m.Sequence, ID: m.Header.Get(hID), Type: m.Header.Get(hType), Kind: m.Header.Get(hKind),
		Consumer: m.Header.Get("Agora-Consumer"), CorrelationID: m.Header.Get(hCorrelation), Error: m.Header.Get(hError),
		DeadAt: m.Time.UTC()}
}

// RedriveDeadLetter sends the dead letter at seq again to the consumer that gave
// up on it — published anew on its type's subject, marked for that consumer only —
// with a fresh delivery count, and removes it from the dead-letter stream. The
// consumer's inbox drops it if it took it in the meantime. Redriving one sequence
// twice within the broker's duplicate window publishes it once.
func (t *Transport) RedriveDeadLetter(ctx context.Context, seq uint64) error {
	s, err := t.js.Stream(ctx, t.deadStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return ErrDeadLetterNotFound
	}
	if err != nil {
		return streamsUnreachable(err)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return ErrDeadLetterNotFound
	}
	if err != nil {
		return streamsUnreachable(err)
	}
	d := deadLetterOf(m)
	if d.Type == "" || d.Consumer == "" {
		return message.ErrInvalidMessage.Withf("dead letter %d names no type or consumer", seq)
	}
	out := nats.NewMsg(messagePrefix + d.Type)
	for k, v := range m.Header {
		switch {
		case strings.HasPrefix(k, "Nats-"), k == hError, k == hLocal, k == "Agora-Consumer":
		default:
			out.Header[k] = v
		}
	}
	out.Header.Set(hRedriveTo, d.Consumer)
	out.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s/redrive/%d", d.ID, seq))
	out.Data = m.Data
	if _, err := t.js.PublishMsg(ctx, out); err != nil {
		return streamsUnreachable(err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		// Published but still listed: a second redrive publishes nothing new
		// within the duplicate window, and the inbox drops it after.
		return streamsUnreachable(err)
	}
	t.log.Info("bus dead letter redriven", "seq", seq, "id", d.ID, "type", d.Type, "consumer", d.Consumer)
	return nil
}
