package natsbus

import (
	"context"
	"sync"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
)

// link follows the broker connection's state so that requests fail fast while the
// broker is unreachable instead of waiting for their deadline: a request made while
// disconnected waits at most Config.OutageWait for the connection to come back, and
// a request waiting for its reply is abandoned when the connection drops (the reply
// would be lost with it). Either way the caller gets a message.Unavailable error —
// 503 with Retry-After at the HTTP edge — and retries; durable messages do not go
// through here: they stay in the outbox and drain after the outage.
type link struct {
	mu       sync.Mutex
	up       bool
	conn     context.Context // ends when the current connection drops
	dropConn context.CancelFunc
	back     chan struct{} // closed when a lost connection is re-established
	since    time.Time     // when the connection was last re-established
}

func newLink() *link {
	back := make(chan struct{})
	close(back)
	conn, drop := context.WithCancel(context.Background())
	return &link{up: true, conn: conn, dropConn: drop, back: back}
}

// down records a lost connection: requests waiting for replies are released.
func (l *link) down() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.up {
		return
	}
	l.up = false
	l.dropConn()
	l.back = make(chan struct{})
}

// restored records a re-established connection: waiting requests go ahead.
func (l *link) restored() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up {
		return
	}
	l.up = true
	l.since = time.Now()
	close(l.back)
	l.conn, l.dropConn = context.WithCancel(context.Background())
}

// await returns a context for one request that ends when the connection drops,
// after waiting up to wait for a lost connection to come back. It fails with
// message.ErrNoHandler (kind Unavailable) when the connection is not back in time.
func (l *link) await(ctx context.Context, wait time.Duration, typ string) (context.Context, context.CancelCauseFunc, error) {
	l.mu.Lock()
	back := l.back
	l.mu.Unlock()
	select {
	case <-back:
	default:
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-back:
		case <-t.C:
			return nil, nil, unreachable(typ)
		case <-ctx.Done():
			return nil, nil, message.ErrTimeout
		}
	}
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	rctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(conn, func() { cancel(errLinkLost) })
	return rctx, func(cause error) { stop(); cancel(cause) }, nil
}

// settling reports whether the connection came back less than window ago: the
// other processes may not have subscribed again yet, so "no responders" then means
// "not yet", not "nobody runs the module".
func (l *link) settling(window time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up && !l.since.IsZero() && time.Since(l.since) < window
}

// errLinkLost is the cause of a request context ended by a lost connection.
var errLinkLost = message.ErrUnreachable

// unreachable is the error of a request that could not be sent or answered because
// the broker is unreachable.
func unreachable(typ string) error {
	return message.ErrUnreachable.Withf("the message bus is unreachable; %s could not be asked, retry shortly", bus.ModuleOf(typ))
}
