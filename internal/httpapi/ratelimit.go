package httpapi

import (
	"context"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
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
	return huma.ErrorWithHeaders(huma.NewError(http.StatusTooManyRequests, detail),
		http.Header{"Retry-After": {strconv.Itoa(retryAfterSeconds(wait))}})
}

// retryAfterSeconds is the Retry-After for a wait: whole seconds, at least one.
func retryAfterSeconds(wait time.Duration) int {
	// Round up: a client that waits exactly Retry-After must find room again.
	// (Float seconds, so an unbounded wait cannot overflow.)
	return max(int(min(math.Ceil(wait.Seconds()), 24*3600)), 1)
}

// Edge limits for public operations that take a body (sign-in, sign-up): generous
// enough for a household or an office behind one address, low enough that one
// address cannot keep the server busy parsing and validating bodies. Modules with
// a configured limit of their own use whichever is higher, so raising theirs (for a
// load test from one address) raises this too.
const (
	EdgePerIPPerMinute = 600
	EdgeBurst          = 100
)

// edgeLimitKey is where RateLimited leaves its limiter in an operation's Metadata.
const edgeLimitKey = "agora.edgeRateLimit"

// RateLimited returns op with an edge rate limit: at most perMinute requests per
// minute from each client address, in bursts of up to burst, for this operation.
// The limit is applied by the API's middleware before the request body is read or
// validated, so a flood of requests with large or invalid bodies is refused for the
// price of a map lookup: 429 problem+json with Retry-After. 429 is added to the
// operation's documented errors.
func RateLimited(op huma.Operation, perMinute, burst int) huma.Operation {
	op.Metadata = maps.Clone(op.Metadata)
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[edgeLimitKey] = NewKeyedLimiter(perMinute, burst)
	if !slices.Contains(op.Errors, http.StatusTooManyRequests) {
		op.Errors = append(slices.Clone(op.Errors), http.StatusTooManyRequests)
	}
	return op
}

// IsRateLimited reports whether op declares an edge rate limit (see RateLimited).
func IsRateLimited(op *huma.Operation) bool {
	_, ok := op.Metadata[edgeLimitKey].(*KeyedLimiter)
	return ok
}

// edgeLimits is the huma middleware that enforces RateLimited's limits. huma runs
// middleware before it reads and validates the body.
func edgeLimits(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if op := ctx.Operation(); op != nil {
			if l, ok := op.Metadata[edgeLimitKey].(*KeyedLimiter); ok {
				if allowed, wait := l.Allow(ClientIP(ctx.Context()), time.Now()); !allowed {
					ctx.SetHeader("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
					_ = huma.WriteErr(api, ctx, http.StatusTooManyRequests, "too many requests from this address; retry later")
					return
				}
			}
		}
		next(ctx)
	}
}

// ClientIP is the peer address of the request being served, without its port
// ("unknown" outside a request): the key of per-address limits. Proxy headers are
// not trusted (see RemoteAddrFrom).
func ClientIP(ctx context.Context) string {
	addr, ok := RemoteAddrFrom(ctx)
	if !ok {
		return "unknown"
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
