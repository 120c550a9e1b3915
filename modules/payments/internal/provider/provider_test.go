package provider_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/provider"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

var eur = func(n int64) payments.Money { return payments.Money{Amount: n, Currency: "EUR"} }

// server is a real psp API on 127.0.0.1 that counts the calls it receives.
type server struct {
	sim   *psp.Simulator
	srv   *httptest.Server
	calls atomic.Int64
}

func newServer(t *testing.T, cfg psp.Config, apiKey string, wrap func(http.Handler) http.Handler) *server {
	t.Helper()
	s := &server{sim: psp.NewSimulator(cfg)}
	h := psp.Handler(s.sim, apiKey)
	if wrap != nil {
		h = wrap(h)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// fast returns options for tests: short deadlines and backoffs.
func fast(retries int) provider.Options {
	return provider.Options{Timeout: 100 * time.Millisecond, Retries: retries, BaseBackoff: time.Millisecond,
		MaxBackoff: 5 * time.Millisecond, BreakerFailures: 100, BreakerOpenFor: time.Hour}
}

func wantClass(t *testing.T, err error, class provider.Class) *provider.Error {
	t.Helper()
	if got := provider.ClassOf(err); got != class {
		t.Fatalf("err = %v: class %d, want %d", err, got, class)
	}
	var pe *provider.Error
	errors.As(err, &pe)
	return pe
}

// TestOutcomes runs each test token through both adapters, which must classify
// them alike, and counts the provider calls: only retryable failures are retried.
func TestOutcomes(t *testing.T) {
	const retries = 2
	tests := []struct {
		token      string
		wantClass  provider.Class
		wantReason string
		wantCalls  int64
	}{
		{psp.TokenVisa, 0, "", 1},
		{psp.TokenSlow, 0, "", 1},
		{psp.TokenDecline, provider.ClassDeclined, payments.DeclineCardDeclined, 1},
		{psp.TokenInsufficientFunds, provider.ClassDeclined, payments.DeclineInsufficientFunds, 1},
		{"tok_unknown", provider.ClassDeclined, payments.DeclineInvalidToken, 1},
		{psp.TokenError, provider.ClassRetryable, "", retries + 1},
		{psp.TokenTimeout, provider.ClassRetryable, "", retries + 1},
	}
	adapters := map[string]func(t *testing.T) (provider.Provider, func() int64){
		"http": func(t *testing.T) (provider.Provider, func() int64) {
			s := newServer(t, psp.Config{SlowLatency: 10 * time.Millisecond}, "sk", nil)
			return provider.NewHTTP(s.srv.URL, "sk", nil), func() int64 { return s.calls.Load() }
		},
		"simulated": func(t *testing.T) (provider.Provider, func() int64) {
			sim := psp.NewSimulator(psp.Config{SlowLatency: 10 * time.Millisecond})
			return provider.NewSimulated(sim), func() int64 { return int64(sim.Calls()) }
		},
	}
	for name, adapter := range adapters {
		t.Run(name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.token, func(t *testing.T) {
					raw, calls := adapter(t)
					p := provider.NewResilient(raw, fast(retries))
					a, err := p.Authorize(t.Context(), eur(1250), tc.token, "order:authorize")
					if tc.wantClass == 0 {
						if err != nil || a.ID == "" || a.Amount != 1250 {
							t.Fatalf("Authorize = %+v, %v", a, err)
						}
					} else {
						pe := wantClass(t, err, tc.wantClass)
						if pe.Reason != tc.wantReason {
							t.Errorf("reason %q, want %q", pe.Reason, tc.wantReason)
						}
						if tc.token == psp.TokenTimeout && !pe.Timeout {
							t.Errorf("tok_timeout: %v is not a timeout", err)
						}
					}
					if got := calls(); got != tc.wantCalls {
						t.Errorf("%d provider calls, want %d", got, tc.wantCalls)
					}
				})
			}
		})
	}
}

func TestHTTPRefusalsAreNotRetried(t *testing.T) {
	s := newServer(t, psp.Config{}, "sk", nil)
	p := provider.NewResilient(provider.NewHTTP(s.srv.URL, "sk", nil), fast(3))
	ctx := t.Context()
	a, err := p.Authorize(ctx, eur(100), psp.TokenVisa, "o1:authorize")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Capture(ctx, a.ID, 0, "o1:capture"); err != nil {
		t.Fatal(err)
	}
	before := s.calls.Load()
	// A second capture under another key, a refund beyond what is captured, a key
	// reused with other parameters, an unknown authorization: the provider refused
	// each, and asking again cannot help.
	_, err = p.Capture(ctx, a.ID, 0, "o1:capture-again")
	wantClass(t, err, provider.ClassPermanent)
	_, err = p.Refund(ctx, a.ID, 101, "o1:refund:r1")
	wantClass(t, err, provider.ClassPermanent)
	_, err = p.Authorize(ctx, eur(999), psp.TokenVisa, "o1:authorize")
	wantClass(t, err, provider.ClassPermanent)
	_, err = p.Void(ctx, "auth_missing", "o2:void")
	wantClass(t, err, provider.ClassNotFound)
	if got := s.calls.Load() - before; got != 4 {
		t.Errorf("%d calls for 4 refusals, want 4 (no retries)", got)
	}

	wrongKey := provider.NewResilient(provider.NewHTTP(s.srv.URL, "other", nil), fast(3))
	_, err = wrongKey.Authorize(ctx, eur(100), psp.TokenVisa, "o3:authorize")
	wantClass(t, err, provider.ClassPermanent)
}

func TestHTTPRetriesInjectedFailures(t *testing.T) {
	// Every call fails with a 503 until the fourth: three retries get through.
	var n atomic.Int64
	s := newServer(t, psp.Config{}, "", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) <= 3 {
				http.Error(w, `{"error":{"code":"service_unavailable","message":"down"}}`, http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	a, err := provider.NewResilient(provider.NewHTTP(s.srv.URL, "", nil), fast(3)).Authorize(t.Context(), eur(100), psp.TokenVisa, "o:authorize")
	if err != nil || a.ID == "" {
		t.Fatalf("Authorize = %+v, %v", a, err)
	}
	if got := s.calls.Load(); got != 4 {
		t.Errorf("%d calls, want 4", got)
	}
}

// TestLostAnswerChargesOnce: the provider authorizes, but its answer is lost (the
// connection drops). The retry carries the same idempotency key, so the provider
// answers with the same authorization instead of holding the amount twice.
func TestLostAnswerChargesOnce(t *testing.T) {
	var once sync.Once
	s := newServer(t, psp.Config{}, "", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			lost := false
			once.Do(func() { lost = true })
			if !lost {
				h.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(httptest.NewRecorder(), r) // the provider does the work…
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_ = conn.Close() // …and the answer never arrives
		})
	})
	a, err := provider.NewResilient(provider.NewHTTP(s.srv.URL, "", nil), fast(2)).Authorize(t.Context(), eur(4200), psp.TokenVisa, "o:authorize")
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	if got := s.calls.Load(); got != 2 {
		t.Errorf("%d calls, want 2 (one lost, one retried)", got)
	}
	auths := s.sim.Authorizations()
	if len(auths) != 1 || auths[0].ID != a.ID || auths[0].Amount != 4200 {
		t.Errorf("provider holds %+v; want one authorization %s of 4200", auths, a.ID)
	}
}

func TestBreakerOpensAndFailsFast(t *testing.T) {
	s := newServer(t, psp.Config{}, "", nil)
	o := fast(0)
	o.BreakerFailures = 3
	p := provider.NewResilient(provider.NewHTTP(s.srv.URL, "", nil), o)
	ctx := t.Context()

	// Declines are answers: they never open the breaker.
	for i := range 5 {
		_, err := p.Authorize(ctx, eur(100), psp.TokenDecline, "d"+string(rune('a'+i)))
		wantClass(t, err, provider.ClassDeclined)
	}
	if got := p.BreakerState(); got != "closed" {
		t.Fatalf("after declines: breaker %s", got)
	}
	for i := range 3 {
		_, err := p.Authorize(ctx, eur(100), psp.TokenError, "e"+string(rune('a'+i)))
		wantClass(t, err, provider.ClassRetryable)
	}
	if got := p.BreakerState(); got != "open" {
		t.Fatalf("after 3 failures: breaker %s, want open", got)
	}
	before := s.calls.Load()
	_, err := p.Authorize(ctx, eur(100), psp.TokenVisa, "v")
	wantClass(t, err, provider.ClassUnavailable)
	if got := s.calls.Load(); got != before {
		t.Errorf("an open breaker let %d calls through", got-before)
	}
}

func TestBreakerClosesWhenProviderRecovers(t *testing.T) {
	s := newServer(t, psp.Config{}, "", nil)
	o := fast(0)
	o.BreakerFailures, o.BreakerOpenFor = 1, 20*time.Millisecond
	p := provider.NewResilient(provider.NewHTTP(s.srv.URL, "", nil), o)
	_, err := p.Authorize(t.Context(), eur(100), psp.TokenError, "e")
	wantClass(t, err, provider.ClassRetryable)
	if got := p.BreakerState(); got != "open" {
		t.Fatalf("breaker %s, want open", got)
	}
	var a provider.Authorization
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err = p.Authorize(t.Context(), eur(100), psp.TokenVisa, "v")
		if provider.ClassOf(err) != provider.ClassUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil || a.ID == "" {
		t.Fatalf("after the open period: %+v, %v", a, err)
	}
	if got := p.BreakerState(); got != "closed" {
		t.Errorf("breaker %s after a success, want closed", got)
	}
}

// A provider that fails every other call never fails many times in a row, yet it
// is down for half the customers: the failure ratio of a busy window opens the
// breaker — and a few failures among many successes do not.
func TestBreakerOpensOnFailureRatio(t *testing.T) {
	s := newServer(t, psp.Config{}, "", nil)
	p := provider.NewResilient(provider.NewHTTP(s.srv.URL, "", nil), fast(0)) // 100 in a row needed
	ctx := t.Context()
	for i := range 60 { // one failure in ten: stays closed
		tok := psp.TokenVisa
		if i%10 == 0 {
			tok = psp.TokenError
		}
		_, _ = p.Authorize(ctx, eur(100), tok, fmt.Sprintf("few-%d", i))
	}
	if got := p.BreakerState(); got != "closed" {
		t.Fatalf("after 6 failures in 60: breaker %s, want closed", got)
	}
	p = provider.NewResilient(provider.NewHTTP(s.srv.URL, "", nil), fast(0)) // a fresh window
	for i := 0; p.BreakerState() == "closed"; i++ {
		if i == 200 {
			t.Fatal("half the calls failing for 200 calls did not open the breaker")
		}
		tok := psp.TokenVisa
		if i%2 == 0 {
			tok = psp.TokenError
		}
		_, _ = p.Authorize(ctx, eur(100), tok, fmt.Sprintf("half-%d", i))
	}
}

// TestPartialCapture: both adapters take the amount asked of an authorization and
// no more, and refuse to take more than it holds.
func TestPartialCapture(t *testing.T) {
	sim := psp.NewSimulator(psp.Config{})
	s := newServer(t, psp.Config{}, "sk", nil)
	adapters := map[string]struct {
		p   provider.Provider
		sim *psp.Simulator
	}{
		"simulated": {provider.NewSimulated(sim), sim},
		"http":      {provider.NewHTTP(s.srv.URL, "sk", nil), s.sim},
	}
	for name, ad := range adapters {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			p := provider.NewResilient(ad.p, fast(0))
			a, err := p.Authorize(ctx, eur(2500), psp.TokenVisa, "r1:authorize")
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Capture(ctx, a.ID, 2501, "r1:capture-too-much")
			wantClass(t, err, provider.ClassPermanent)
			if _, err := p.Capture(ctx, a.ID, 500, "r1:capture"); err != nil {
				t.Fatal(err)
			}
			got, err := ad.sim.Get(ctx, a.ID)
			if err != nil || got.State != psp.StateCaptured || got.Captured != 500 {
				t.Errorf("authorization after capturing 500 of 2500: %+v, %v", got, err)
			}
		})
	}
}
