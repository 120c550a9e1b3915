package natsbus

import (
	"context"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/testlog"
)

// slowRecorder is a recorder whose batches take a while, as a slow database would.
type slowRecorder struct {
	*recorder
	delay time.Duration
}

func (r slowRecorder) HandleBatch(ctx context.Context, items []bus.BatchItem) []error {
	time.Sleep(r.delay)
	return r.recorder.HandleBatch(ctx, items)
}

// Batches that take several AckWaits are not redelivered meanwhile: the messages
// they hold, and those queued behind them, are kept alive by in-progress heartbeats.
// The consumer's delivery count says so: one delivery per message.
func TestSlowBatchesAreNotRedelivered(t *testing.T) {
	br := startBroker(t, t.TempDir())
	rec := slowRecorder{newRecorder(), time.Second}
	const consumer = "slow.listener"
	receiver := startNode(t, br.URL(), Config{AckWait: 300 * time.Millisecond, BatchSize: 2}, nil,
		[]bus.Subscription{{Type: echoed.Name(), Consumer: consumer, Handle: rec.handle, Group: rec}})
	sender := startNode(t, br.URL(), Config{}, nil, nil)
	const n = 6
	for range n {
		if err := sender.b.Deliver(t.Context(), envelope(t, "slow")); err != nil {
			t.Fatal(err)
		}
	}
	testlog.Eventually(t, "every message handled and acknowledged", func() bool { return settled(t, receiver, consumer) })
	c, err := receiver.t.js.Consumer(t.Context(), receiver.t.cfg.Stream, durableName(consumer))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer != n {
		t.Errorf("%d deliveries of %d messages: slow batches were redelivered", info.Delivered.Consumer, n)
	}
}
