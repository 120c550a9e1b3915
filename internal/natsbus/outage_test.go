package natsbus

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/broker"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/testlog"
)

// A request made while the broker is down fails as unavailable after OutageWait —
// not at its deadline, ten minutes away — and requests work again once the broker
// is back.
func TestRequestsFailFastWhileTheBrokerIsDown(t *testing.T) {
	dir := t.TempDir()
	br, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", StoreDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := br.Addr()
	startNode(t, br.URL(), Config{}, []bus.RequestHandler{upperHandler("a")}, nil)
	caller := startNode(t, br.URL(), Config{OutageWait: 100 * time.Millisecond}, nil, nil)

	br.Shutdown()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	testlog.Eventually(t, "the caller noticing the outage", func() bool { return !caller.t.nc.IsConnected() })
	if _, err := bus.Call(ctx, caller.b, upperRequest, upper{Text: "x"}); !errors.Is(err, message.ErrUnreachable) {
		t.Fatalf("call while the broker is down: %v; want message.ErrUnreachable", err)
	}

	br, err = broker.Start(broker.Config{Addr: addr, StoreDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Shutdown)
	testlog.Eventually(t, "requests after the broker is back", func() bool {
		got, err := bus.Call(ctx, caller.b, upperRequest, upper{Text: "back"})
		return err == nil && got.Text == "BACK"
	})
}

// A broker that goes silent (paused, partitioned: the connection stays open but
// nothing comes back) is noticed by pings, and a request waiting for its reply is
// released as unavailable instead of waiting out its deadline.
func TestARequestWaitingOnASilentBrokerIsReleased(t *testing.T) {
	br := startBroker(t, t.TempDir())
	release := make(chan struct{})
	slow := bus.Handle(upperRequest, func(ctx context.Context, r upper) (upperReply, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return upperReply{Text: r.Text}, nil
	})
	defer close(release)
	startNode(t, br.URL(), Config{}, []bus.RequestHandler{slow}, nil)
	p := startGate(t, br.Addr())
	caller := startNode(t, "nats://"+p.addr(), Config{PingInterval: 100 * time.Millisecond}, nil, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := bus.Call(ctx, caller.b, upperRequest, upper{Text: "x"})
		done <- err
	}()
	p.freeze()
	if err := <-done; !errors.Is(err, message.ErrUnreachable) {
		t.Fatalf("call through a silent broker: %v; want message.ErrUnreachable", err)
	}
}

// gate is a TCP proxy to the broker that can go silent: frozen, it keeps every
// connection open and forwards nothing.
type gate struct {
	ln     net.Listener
	frozen chan struct{} // closed when frozen
}

func startGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, frozen: make(chan struct{})}
	var conns sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			conns.Add(2)
			go func() { defer conns.Done(); g.pipe(up, c) }()
			go func() { defer conns.Done(); g.pipe(c, up) }()
		}
	}()
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }

func (g *gate) freeze() { close(g.frozen) }

// pipe copies src to dst until either closes, or until the gate freezes; frozen, it
// holds both open without a byte more, until the listener closes at cleanup.
func (g *gate) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-g.frozen:
			_, _ = io.Copy(io.Discard, src) // swallow until closed
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
