package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"golang.org/x/time/rate"
)

// KeyedLimiter allows a number of events per minute for each key (a client IP, an
// account), with a token bucket per key. Buckets idle for ten minutes are dropped,
// so memory stays bounded by the keys active in that window. Limits are per
// process: behind a load balancer, each replica counts for itself.
type KeyedLimiter struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewKeyedLimiter allows perMinute events per key and minute, in bursts of up to burst.
func NewKeyedLimiter(perMinute, burst int) *KeyedLimiter {
	return &KeyedLimiter{every: rate.Limit(float64(perMinute) / 60), burst: burst, buckets: map[string]*bucket{}}
}

// Allow takes one event for key. When the key is over its limit it returns false
// and how long until the next event would be allowed.
func (l *KeyedLimiter) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// TooManyRequests is the 429 problem for a limit that was hit, with Retry-After.
func TooManyRequests(wait time.Duration, detail string) error {
	// Round up: a client that waits exactly Retry-After must find room again.
	// (Float seconds, so an unbounded wait cannot overflow.)
	secs := int(min(math.Ceil(wait.Seconds()), 24*3600))
	if secs < 1 {
		secs = 1
	}
	return huma.ErrorWithHeaders(huma.NewError(http.StatusTooManyRequests, detail),
		http.Header{"Retry-After": {strconv.Itoa(secs)}})
}
