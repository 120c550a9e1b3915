package provider

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/agora-commerce/agora/internal/backoff"
	"github.com/agora-commerce/agora/modules/payments"
)

// Options tune Resilient. Zero values take the defaults.
type Options struct {
	Timeout         time.Duration // deadline of one attempt (default 2s)
	Retries         int           // attempts after the first, on retryable errors only (default 0; negative: 0)
	BaseBackoff     time.Duration // delay before the first retry, doubled each time, with jitter (default 100ms)
	MaxBackoff      time.Duration // cap on the delay (default 2s)
	BreakerFailures uint32        // consecutive failed attempts that open the breaker (default 20)
	BreakerOpenFor  time.Duration // how long it stays open before trying again (default 10s)
	Log             *slog.Logger  // nil: discard
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	o.Retries = max(o.Retries, 0)
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.BreakerFailures == 0 {
		// One card that makes the provider fail (three failed attempts with the
		// default retries) must not shut every customer out; an outage fails every
		// attempt and gets there within a second of traffic.
		o.BreakerFailures = 20
	}
	if o.BreakerOpenFor <= 0 {
		o.BreakerOpenFor = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Resilient wraps a Provider with what a remote dependency needs: a deadline on
// every attempt, retries with exponential backoff and jitter on retryable errors
// only (never on a decline or another refusal), and a circuit breaker that, after
// BreakerFailures failed attempts in a row (or half the attempts of a busy window),
// fails calls at once with ClassUnavailable for BreakerOpenFor, then lets one call
// through to see whether the provider is back.
//
// A retried call carries the same idempotency key, so it has no second effect.
type Resilient struct {
	p  Provider
	o  Options
	cb *gobreaker.CircuitBreaker[any]
}

// NewResilient wraps p.
func NewResilient(p Provider, o Options) *Resilient {
	o = o.withDefaults()
	r := &Resilient{p: p, o: o}
	r.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:    "payment-provider",
		Timeout: o.BreakerOpenFor,
		// Counts start again every breakerWindow while closed, so the failure
		// ratio is of recent attempts.
		Interval: breakerWindow,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= o.BreakerFailures ||
				c.Requests >= breakerMinRequests && c.TotalFailures*2 >= c.Requests
		},
		// The provider is healthy when it answers, even when the answer is no.
		IsSuccessful: func(err error) bool {
			c := ClassOf(err)
			return c == 0 || c == ClassDeclined || c == ClassPermanent || c == ClassNotFound
		},
		// A caller that gave up (shutting down) says nothing about the provider.
		IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			o.Log.Warn("payment provider circuit breaker changed state", "from", from.String(), "to", to.String())
		},
	})
	return r
}

// The breaker also opens when at least half of the attempts in a window fail, once
// the window has breakerMinRequests: a provider failing every other call is down
// for the customers too.
const (
	breakerWindow      = 30 * time.Second
	breakerMinRequests = 50
)

var errCallerGone = errors.New("provider: the caller gave up")

// BreakerState returns the circuit breaker's state: closed, half-open or open.
func (r *Resilient) BreakerState() string { return r.cb.State().String() }

// Authorize implements Provider.
func (r *Resilient) Authorize(ctx context.Context, amount payments.Money, token, key string) (Authorization, error) {
	return call(ctx, r, func(ctx context.Context) (Authorization, error) { return r.p.Authorize(ctx, amount, token, key) })
}

// Capture implements Provider.
func (r *Resilient) Capture(ctx context.Context, authID string, amount int64, key string) (Authorization, error) {
	return call(ctx, r, func(ctx context.Context) (Authorization, error) { return r.p.Capture(ctx, authID, amount, key) })
}

// Void implements Provider.
func (r *Resilient) Void(ctx context.Context, authID, key string) (Authorization, error) {
	return call(ctx, r, func(ctx context.Context) (Authorization, error) { return r.p.Void(ctx, authID, key) })
}

// Refund implements Provider.
func (r *Resilient) Refund(ctx context.Context, authID string, amount int64, key string) (Refund, error) {
	return call(ctx, r, func(ctx context.Context) (Refund, error) { return r.p.Refund(ctx, authID, amount, key) })
}

// AuthorizationByKey implements Provider.
func (r *Resilient) AuthorizationByKey(ctx context.Context, key string) (Authorization, error) {
	return call(ctx, r, func(ctx context.Context) (Authorization, error) { return r.p.AuthorizationByKey(ctx, key) })
}

// call runs fn through the breaker, each attempt under its own deadline, retrying
// retryable failures. When ctx ends it returns ctx's error, unclassified.
func call[T any](ctx context.Context, r *Resilient, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		v, err := r.cb.Execute(func() (any, error) {
			actx, cancel := context.WithTimeout(ctx, r.o.Timeout)
			defer cancel()
			v, err := fn(actx)
			if err != nil && ctx.Err() != nil {
				return nil, errors.Join(errCallerGone, ctx.Err())
			}
			if err != nil && actx.Err() != nil {
				err = fromContext(err) // however the adapter said it, the attempt ran out of time
			}
			return v, err
		})
		switch {
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			return zero, &Error{Class: ClassUnavailable, Err: err}
		case err == nil:
			return v.(T), nil
		case ctx.Err() != nil:
			return zero, ctx.Err()
		case ClassOf(err) != ClassRetryable || attempt >= r.o.Retries:
			return zero, err
		}
		delay := backoff.Delay(r.o.BaseBackoff, r.o.MaxBackoff, attempt+1)
		r.o.Log.Debug("payment provider call failed; retrying", "attempt", attempt+1, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, ctx.Err()
		}
	}
}
