package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// t0 is the fake clock's start; tests pass times explicitly.
var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// allowN takes n events for key at now and returns how many were allowed.
func allowN(l *KeyedLimiter, key string, now time.Time, n int) int {
	ok := 0
	for range n {
		if allowed, _ := l.Allow(key, now); allowed {
			ok++
		}
	}
	return ok
}

func TestKeyedLimiterBurst(t *testing.T) {
	l := NewKeyedLimiter(6, 3) // one event every 10s, bursts of 3
	for i := range 3 {
		if ok, wait := l.Allow("a", t0); !ok || wait != 0 {
			t.Fatalf("event %d of the burst: allowed %v, wait %v; want allowed, 0", i+1, ok, wait)
		}
	}
	ok, wait := l.Allow("a", t0)
	if ok {
		t.Fatal("the event after the burst was allowed")
	}
	if wait <= 0 || wait > 10*time.Second {
		t.Errorf("wait = %v, want in (0, 10s]", wait)
	}
	// A refused event takes nothing: asking again at once gives the same wait, not
	// a longer one.
	for range 5 {
		if ok, again := l.Allow("a", t0); ok || again != wait {
			t.Fatalf("refused again: allowed %v, wait %v; want refused, %v", ok, again, wait)
		}
	}
	// Later in the same interval the wait shrinks.
	if ok, later := l.Allow("a", t0.Add(4*time.Second)); ok || (later-(wait-4*time.Second)).Abs() > time.Millisecond {
		t.Errorf("4s later: allowed %v, wait %v; want refused, about %v", ok, later, wait-4*time.Second)
	}
}

func TestKeyedLimiterKeysAreIndependent(t *testing.T) {
	l := NewKeyedLimiter(60, 2)
	if n := allowN(l, "203.0.113.1", t0, 5); n != 2 {
		t.Fatalf("first key: %d of 5 allowed, want 2", n)
	}
	if n := allowN(l, "203.0.113.2", t0, 5); n != 2 {
		t.Errorf("second key after the first was exhausted: %d of 5 allowed, want its own 2", n)
	}
	if n := allowN(l, "user:alice@example.com", t0, 1); n != 1 {
		t.Errorf("third key: %d of 1 allowed", n)
	}
	if ok, _ := l.Allow("203.0.113.1", t0); ok {
		t.Error("the first key was refilled by the others")
	}
}

func TestKeyedLimiterRefills(t *testing.T) {
	l := NewKeyedLimiter(6, 3) // one event every 10s
	if n := allowN(l, "a", t0, 3); n != 3 {
		t.Fatalf("burst: %d allowed, want 3", n)
	}
	_, wait := l.Allow("a", t0)

	if ok, _ := l.Allow("a", t0.Add(wait-time.Millisecond)); ok {
		t.Error("allowed before the wait it announced was over")
	}
	if ok, w := l.Allow("a", t0.Add(wait)); !ok {
		t.Errorf("refused once the announced wait was over (wait again %v)", w)
	}
	// One token came back, and it was just taken.
	if ok, _ := l.Allow("a", t0.Add(wait)); ok {
		t.Error("a second event allowed after one interval")
	}
	// After a long quiet the bucket is full again, and no fuller than the burst.
	later := t0.Add(time.Hour)
	if n := allowN(l, "a", later, 10); n != 3 {
		t.Errorf("after an hour: %d of 10 allowed, want the burst of 3", n)
	}
	// A steady client at the allowed rate is never refused.
	l = NewKeyedLimiter(60, 1)
	for i := range 100 {
		if ok, wait := l.Allow("steady", t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("event %d at one a second, the allowed rate: refused, wait %v", i, wait)
		}
	}
}

func TestKeyedLimiterSweepsIdleKeys(t *testing.T) {
	// With no refill a bucket stays empty until it is dropped, so a key that is
	// allowed again was swept.
	l := NewKeyedLimiter(0, 2)
	if n := allowN(l, "idle", t0, 3); n != 2 {
		t.Fatalf("burst: %d allowed, want 2", n)
	}
	if n := allowN(l, "busy", t0, 3); n != 2 {
		t.Fatalf("burst: %d allowed, want 2", n)
	}
	if ok, wait := l.Allow("idle", t0.Add(9*time.Minute)); ok || wait <= 0 {
		t.Fatalf("an empty bucket 9 minutes on: allowed %v, wait %v; want refused with a wait", ok, wait)
	}
	l.Allow("busy", t0.Add(9*time.Minute))
	// "idle" was last seen at 9 minutes (the refused event counts); "busy" too.
	// Another key's event, ten minutes and more after that, sweeps both.
	l.Allow("other", t0.Add(19*time.Minute+time.Second))
	if got := bucketCount(l); got != 1 {
		t.Errorf("%d buckets after the sweep, want 1 (only the key just seen)", got)
	}
	if n := allowN(l, "idle", t0.Add(19*time.Minute+2*time.Second), 3); n != 2 {
		t.Errorf("a swept key: %d of 3 allowed, want a fresh burst of 2", n)
	}

	// A key seen within ten minutes is kept, and stays empty.
	l = NewKeyedLimiter(0, 1)
	l.Allow("k", t0)
	l.Allow("x", t0.Add(9*time.Minute))
	if ok, _ := l.Allow("k", t0.Add(9*time.Minute+59*time.Second)); ok {
		t.Error("a key seen 10 minutes ago at most was swept")
	}

	// Memory is bounded by the keys active in the window.
	l = NewKeyedLimiter(60, 5)
	for i := range 1000 {
		l.Allow(strconv.Itoa(i), t0)
	}
	l.Allow("late", t0.Add(11*time.Minute))
	if got := bucketCount(l); got != 1 {
		t.Errorf("%d buckets after 1000 keys went idle, want 1", got)
	}
}

func bucketCount(l *KeyedLimiter) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// TestKeyedLimiterConcurrent lets the race detector watch concurrent use, and
// checks that no more than the burst gets through when many ask at once.
func TestKeyedLimiterConcurrent(t *testing.T) {
	l := NewKeyedLimiter(1, 10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 50 {
		wg.Go(func() {
			if ok, _ := l.Allow("shared", t0); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 10 {
		t.Errorf("%d of 50 concurrent events allowed, want the burst of 10", allowed)
	}
}

func TestTooManyRequests(t *testing.T) {
	tests := []struct {
		wait time.Duration
		min  int // Retry-After at least
		max  int // and at most
	}{
		{0, 1, 1},
		{time.Millisecond, 1, 1},
		{400 * time.Millisecond, 1, 1},
		{time.Second, 1, 1},
		{2500 * time.Millisecond, 2, 3},
		{10 * time.Second, 10, 10},
		{time.Minute, 60, 60},
	}
	srv, _ := newServer(t, Config{}, func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "limited", Method: http.MethodGet, Path: "/limited", Security: Public},
			func(ctx context.Context, in *struct {
				Wait time.Duration `query:"wait"`
			}) (*struct{}, error) {
				return nil, TooManyRequests(in.Wait, "too many sign-in attempts; wait a moment")
			})
	})
	for _, tt := range tests {
		t.Run(tt.wait.String(), func(t *testing.T) {
			err := TooManyRequests(tt.wait, "slow down")
			var se huma.StatusError
			if !errors.As(err, &se) || se.GetStatus() != http.StatusTooManyRequests {
				t.Fatalf("TooManyRequests(%v) = %v, want a 429 status error", tt.wait, err)
			}

			r := do(t, srv, http.MethodGet, "/limited?wait="+strconv.FormatInt(int64(tt.wait), 10), nil, nil)
			p := r.problem(t, http.StatusTooManyRequests)
			if p.Detail != "too many sign-in attempts; wait a moment" {
				t.Errorf("detail = %q", p.Detail)
			}
			ra := r.header.Get("Retry-After")
			secs, err := strconv.Atoi(ra)
			if err != nil || secs < tt.min || secs > tt.max {
				t.Errorf("Retry-After = %q for a wait of %v, want whole seconds in [%d, %d]", ra, tt.wait, tt.min, tt.max)
			}
		})
	}
}

// TestLimiterToProblem is the way the two are used together: a limited key gets
// a 429 whose Retry-After is a wait after which it is allowed again — never one
// that sends an obedient client straight into another 429.
func TestLimiterToProblem(t *testing.T) {
	tests := []struct {
		name      string
		perMinute int
		retryAt   time.Duration // when the refused event comes, after the burst
	}{
		{"whole seconds", 6, 0},                              // wait 10s
		{"fraction over a half", 7, 0},                       // wait 8.57s
		{"fraction under a half", 7, 300 * time.Millisecond}, // wait 8.27s
		{"under a second", 60, 900 * time.Millisecond},       // wait 0.1s
		{"just over a second", 50, 0},                        // wait 1.2s
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewKeyedLimiter(tt.perMinute, 1)
			l.Allow("k", t0)
			at := t0.Add(tt.retryAt)
			ok, wait := l.Allow("k", at)
			if ok {
				t.Fatal("allowed past the burst")
			}
			var he huma.HeadersError
			if !errors.As(TooManyRequests(wait, "x"), &he) {
				t.Fatal("TooManyRequests carries no headers")
			}
			secs, err := strconv.Atoi(he.GetHeaders().Get("Retry-After"))
			if err != nil || secs < 1 {
				t.Fatalf("Retry-After = %q", he.GetHeaders().Get("Retry-After"))
			}
			if ok, again := l.Allow("k", at.Add(time.Duration(secs)*time.Second)); !ok {
				t.Errorf("wait %v gave Retry-After %d; a client that waited that long was refused again (wait %v more)", wait, secs, again)
			}
		})
	}
}

// countingBody notes whether anything read it.
type countingBody struct {
	io.Reader
	read bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.read = true
	return b.Reader.Read(p)
}

// TestRateLimitedOperation checks the edge limit an operation declares with
// RateLimited: per client address, refused with a 429 problem and Retry-After, and
// before the body is read; operations that declare none are not limited, and the
// limit is documented.
func TestRateLimitedOperation(t *testing.T) {
	api := NewAPI(Config{MaxBodyBytes: 1 << 20}, slog.New(slog.DiscardHandler))
	type in struct {
		Body struct {
			Name string `json:"name"`
		}
	}
	ok := func(context.Context, *in) (*struct{}, error) { return nil, nil }
	huma.Register(api, RateLimited(huma.Operation{OperationID: "limited", Method: http.MethodPost, Path: "/limited", Security: Public}, 60, 2), ok)
	huma.Register(api, huma.Operation{OperationID: "free", Method: http.MethodPost, Path: "/free", Security: Public}, ok)

	send := func(path, addr string) (*httptest.ResponseRecorder, *countingBody) {
		body := &countingBody{Reader: strings.NewReader(`{"name":"x"}`)}
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, body)
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = addr
		w := httptest.NewRecorder()
		api.Handler().ServeHTTP(w, req)
		return w, body
	}
	for i := range 2 {
		if w, _ := send("/limited", "192.0.2.1:1000"); w.Code != http.StatusNoContent {
			t.Fatalf("request %d within the burst: %d %s", i+1, w.Code, w.Body)
		}
	}
	w, body := send("/limited", "192.0.2.1:2000") // another port: the same client
	r := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	r.problem(t, http.StatusTooManyRequests)
	if secs, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("Retry-After %q, want whole seconds", w.Header().Get("Retry-After"))
	}
	if body.read {
		t.Error("the refused request's body was read")
	}
	if w, _ := send("/limited", "192.0.2.2:1000"); w.Code != http.StatusNoContent {
		t.Errorf("another address: %d, want 204", w.Code)
	}
	for range 5 {
		if w, _ := send("/free", "192.0.2.1:1000"); w.Code != http.StatusNoContent {
			t.Fatalf("an operation without a limit: %d", w.Code)
		}
	}
	if _, ok := api.OpenAPI().Paths["/limited"].Post.Responses["429"]; !ok {
		t.Error("the limited operation does not document its 429")
	}
	if !IsRateLimited(api.OpenAPI().Paths["/limited"].Post) || IsRateLimited(api.OpenAPI().Paths["/free"].Post) {
		t.Error("IsRateLimited does not tell the two operations apart")
	}
}
