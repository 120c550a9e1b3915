package outbox_test

import (
	"testing"

	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/testdb"
)

// TestAnIdleRelayCommitsNothing: once its outbox is drained, a relay's looks for
// more commit nothing, on the sender's database or the receiver's, however many
// (issue 17: an idle process should not commit; each commit is a WAL flush on
// PostgreSQL). Commits are counted by the store, so the test does not depend on time.
func TestAnIdleRelayCommitsNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, be testdb.Backend) {
		w := newWorld(t, be)
		relay := outbox.NewRelay(w.sender, outbox.RelayConfig{}, discard)
		ob := outbox.New(w.sender, relay)
		ctx := testCtx(t)
		add(t, ctx, w.sender, ob, stockReserved{"o1", 1})
		if n, err := relay.Drain(ctx, w.bus); err != nil || n != 1 {
			t.Fatalf("Drain = %d, %v; want 1, nil", n, err)
		}
		sender, receiver := w.sender.Commits(), w.receiver.Commits()
		for range 50 {
			if n, err := relay.Drain(ctx, w.bus); err != nil || n != 0 {
				t.Fatalf("idle Drain = %d, %v; want 0, nil", n, err)
			}
		}
		if got := w.sender.Commits(); got != sender {
			t.Errorf("50 idle looks committed on the sender: %+v, before %+v", got, sender)
		}
		if got := w.receiver.Commits(); got != receiver {
			t.Errorf("50 idle looks committed on the receiver: %+v, before %+v", got, receiver)
		}
	})
}
