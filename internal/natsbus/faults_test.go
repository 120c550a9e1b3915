package natsbus

import (
	"context"
	"errors"
	"testing"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/faults"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/testlog"
)

// injecting returns a setup for startNodeWith that injects the faults of spec.
func injecting(t *testing.T, spec string) (func(*bus.Bus), *faults.Injector) {
	t.Helper()
	s, err := faults.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	inj := faults.NewInjector()
	if err := inj.Set(s); err != nil {
		t.Fatal(err)
	}
	return func(b *bus.Bus) { b.InjectFaults(inj) }, inj
}

// Over NATS, a durable message that a fault loses before the receiver took it, or
// whose acknowledgement a crash loses, is redelivered by the broker.
func TestInjectedFaultsAreRedeliveredByTheBroker(t *testing.T) {
	for _, tc := range []struct {
		spec            string
		tries, injected int
		kind            bus.FaultKind
	}{
		{"max=2; drop", 1, 2, bus.FaultDrop},   // lost twice before the handler saw it
		{"max=1; crash", 2, 1, bus.FaultCrash}, // handled, crashed before the ack, handled again
	} {
		t.Run(tc.spec, func(t *testing.T) {
			br := startBroker(t, t.TempDir())
			rec := newRecorder()
			setup, inj := injecting(t, tc.spec)
			receiver := startNodeWith(t, br.URL(), Config{}, nil, []bus.Subscription{rec.sub("other.listener")}, setup)
			sender := startNode(t, br.URL(), Config{}, nil, nil)
			env := envelope(t, "hello")
			if err := sender.b.Deliver(context.Background(), env); err != nil {
				t.Fatal(err)
			}
			testlog.Eventually(t, "the message to be acknowledged", func() bool {
				return rec.count(rec.tries, env.ID) > 0 && settled(t, receiver, "other.listener")
			})
			if n := rec.count(rec.tries, env.ID); n != tc.tries {
				t.Errorf("handled %d times, want %d", n, tc.tries)
			}
			if n := inj.Injected()[tc.kind]; n != tc.injected {
				t.Errorf("%d faults injected, want %d", n, tc.injected)
			}
		})
	}
}

// A request lost across processes fails as a lost request does: at the caller's
// wait, with message.ErrTimeout, and the serving process never sees it.
func TestInjectedRequestLossAcrossProcesses(t *testing.T) {
	br := startBroker(t, t.TempDir())
	var served int
	h := bus.Handle(upperRequest, func(_ context.Context, r upper) (upperReply, error) {
		served++
		return upperReply{Text: r.Text}, nil
	})
	startNode(t, br.URL(), Config{}, []bus.RequestHandler{h}, nil)
	setup, _ := injecting(t, "drop type=echo. delay=1ms")
	caller := startNodeWith(t, br.URL(), Config{}, nil, nil, setup)
	if _, err := bus.Call(context.Background(), caller.b, upperRequest, upper{Text: "hi"}); !errors.Is(err, message.ErrTimeout) {
		t.Errorf("err %v, want ErrTimeout", err)
	}
	if served != 0 {
		t.Errorf("the lost request was served %d times", served)
	}
}
