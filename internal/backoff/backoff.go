// Package backoff computes how long to wait before trying again: exponentially
// longer, capped, and jittered so that many retries spread out instead of
// arriving together. Every retry loop in Agora (outbox relay, broker consumers,
// payment-provider calls, payment operations, emails) takes its delays from here;
// the sagas (checkout, dispatch) take their step deadlines from Step.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry number n (counting from 1): base doubled for
// each retry before it, capped at max, with "equal jitter" — a random point in the
// upper half of that — so the wait is at least half the nominal one.
func Delay(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + rand.N(half+1)
}

// Step returns how long a saga waits for an answer after the attempts-th send of
// a step's command (counting from 1), before sending it again: timeout doubled for
// each send before it (at most five times, 32 timeouts), capped at ten minutes but
// never below timeout. It has no jitter: it sets a deadline the saga stores and
// shows, the same for every run of the same steps.
func Step(timeout time.Duration, attempts int) time.Duration {
	d := timeout << min(max(attempts-1, 0), 5)
	return max(min(d, 10*time.Minute), timeout)
}
