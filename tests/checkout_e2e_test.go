package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"
)

// The checkout end to end: the real binary, the real modules, the saga across
// them, checked by the invariants a shop must keep under concurrency and faults.

// stockUp gives n active demo products onHand units each and returns them with
// their on-hand stock.
func stockUp(t *testing.T, a *agora, s *shop, n int, onHand int64) ([]product, map[string]int64) {
	t.Helper()
	var picked []product
	initial := map[string]int64{}
	for _, p := range a.listAll(t, nil) {
		if len(picked) == n {
			break
		}
		// Stock arrives from catalog events; wait for each item to exist.
		var it stockItem
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if it, err = s.setStock(t.Context(), a.token, p.SKU, onHand); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("stock %s: %v", p.SKU, err)
		}
		picked = append(picked, p)
		initial[p.SKU] = it.OnHand
	}
	return picked, initial
}

// signUpMany registers n customers at once and returns their tokens.
func signUpMany(t *testing.T, s *shop, n int) []string {
	t.Helper()
	tokens := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	run := rand.Uint32()
	for i := range tokens {
		wg.Go(func() {
			tok, err := s.signUp(t.Context(), fmt.Sprintf("buyer-%d-%d@example.com", run, i), "a-long-enough-password")
			tokens[i] = tok
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return tokens
}

// fillCart puts 1–3 random products, 1–3 units each, in the cart.
func fillCart(ctx context.Context, s *shop, token string, products []product, rng *rand.Rand) error {
	for _, i := range rng.Perm(len(products))[:1+rng.IntN(3)] {
		if err := s.setCart(ctx, token, products[i].ID, 1+rng.Int64N(3)); err != nil {
			return err
		}
	}
	return nil
}

// psp is a running `agora psp`, the payment-provider simulator.
type psp struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startPSP runs `agora psp` on addr (a free 127.0.0.1 port when empty) until the
// test ends or stop is called.
func startPSP(t *testing.T, addr string, args ...string) *psp {
	t.Helper()
	if addr == "" {
		addr = procs.FreeAddr(t)
	}
	p := &psp{url: "http://" + addr, done: make(chan struct{})}
	p.cmd = exec.Command(agoraBinary(t), append([]string{"psp", "--addr", addr}, args...)...)
	p.cmd.Env = procs.CleanEnv()
	out := &procs.Buffer{}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, err := http.Get(p.url + "/v1/authorizations/none") // any answer means it listens
		if err == nil {
			_ = res.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("psp not up: %v\n%s", err, out.String())
		}
	}
}

// stop kills the simulator: to its clients, the provider is down.
func (p *psp) stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// TestCheckoutInvariantsUnderFaults runs hundreds of concurrent checkouts — with
// declines, insufficient funds, unknown cards, a provider that times out or fails,
// and cancellations along the way — through the HTTP payment provider; then the
// provider goes down until the circuit breaker opens. Afterwards every invariant
// holds.
func TestCheckoutInvariantsUnderFaults(t *testing.T) {
	t.Parallel()
	provider := startPSP(t, "", "--failure-rate", "0.03")
	a := startAgora(t, t.TempDir(), "AGORA_PAYMENT_PROVIDER_URL="+provider.url, "AGORA_PAYMENT_TIMEOUT=300ms",
		"AGORA_PAYMENT_RETRIES=1", "AGORA_AUTH_PER_IP_PER_MINUTE=100000", "AGORA_SAGA_STEP_TIMEOUT=5s")
	s := newShop(t, func() string { return a.base })
	products, initial := stockUp(t, a, s, 9, 25) // few units: some checkouts must find them gone
	probe := products[8:]                        // kept for the checkouts made while the breaker is open
	products = products[:8]
	customers := signUpMany(t, s, 24)

	tokens := []struct {
		token  string
		weight int
	}{{"tok_visa", 60}, {"tok_decline", 10}, {"tok_insufficient_funds", 5}, {"tok_timeout", 5}, {"tok_error", 12}, {"tok_unknown", 8}}
	pick := func(rng *rand.Rand) string {
		n := rng.IntN(100)
		for _, tk := range tokens {
			if n < tk.weight {
				return tk.token
			}
			n -= tk.weight
		}
		return "tok_visa"
	}

	book := &ledgerBook{}
	var keys seq
	var cancels atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(customers))
	for i, tok := range customers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			ctx := t.Context()
			for range 12 {
				if err := fillCart(ctx, s, tok, products, rng); err != nil {
					errs <- err
					return
				}
				o, err := s.checkout(ctx, tok, keys.next("key-"), pick(rng))
				if err != nil {
					errs <- err
					return
				}
				book.add(o.ID, tok)
				if rng.IntN(10) == 0 { // some customers change their mind, at any point
					time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
					_, err := s.call(ctx, http.MethodPost, "/v1/orders/"+o.ID+"/cancel", tok, map[string]string{"reason": "changed my mind"},
						nil, []int{http.StatusAccepted, http.StatusOK, http.StatusConflict})
					if err != nil {
						errs <- err
						return
					}
					cancels.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The provider goes down. Checkouts fail after their retries until the breaker
	// opens; then they are refused at once, without a call, for as long as it is open.
	awaitTerminal(t, s, a.token, book, 90*time.Second)
	provider.stop()
	var probes []string
	for i := range 20 {
		tok := customers[i]
		if err := s.setCart(t.Context(), tok, probe[0].ID, 1); err != nil {
			t.Fatal(err)
		}
		o, err := s.checkout(t.Context(), tok, keys.next("outage-"), "tok_visa")
		if err != nil {
			t.Fatal(err)
		}
		book.add(o.ID, tok)
		probes = append(probes, o.ID)
		for !terminal(o.Status) { // one at a time, so the breaker sees them in order
			time.Sleep(20 * time.Millisecond)
			if o, err = s.order(t.Context(), tok, o.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	startPSP(t, strings.TrimPrefix(provider.url, "http://")) // back, for the voids payments still owes

	final := awaitTerminal(t, s, a.token, book, 90*time.Second)
	outcomes := checkInvariants(t, s, a.token, final, initial)
	t.Logf("%d orders: %v; %d cancel requests", len(final), outcomes, cancels.Load())
	if outcomes["confirmed"] == 0 || outcomes["rejected"] == 0 {
		t.Errorf("want both confirmed and rejected orders, got %v", outcomes)
	}
	reasons := map[string]int{}
	for id := range final {
		p, err := s.payment(t.Context(), a.token, id)
		if err != nil {
			t.Fatal(err)
		}
		reasons[p.Reason]++
	}
	t.Logf("payment decline reasons: %v", reasons)
	if o := final[probes[len(probes)-1]]; o.Status != "rejected" || !strings.Contains(o.Reason, "unavailable") {
		t.Errorf("checkout while the breaker is open: %s %q, want rejected as unavailable", o.Status, o.Reason)
	}
	for _, r := range []string{"card_declined", "insufficient_funds", "invalid_payment_token", "provider_timeout", "provider_error", "provider_unavailable"} {
		if reasons[r] == 0 {
			t.Errorf("no payment declined with %q: the test did not exercise it (%v)", r, reasons)
		}
	}
}

// recoveryBound is how soon after a killed process is restarted and ready every
// checkout it had in flight must be final.
const recoveryBound = 3 * time.Second

// TestCheckoutSurvivesKills kills the process (SIGKILL: no shutdown) several times
// while customers check out, restarting it on the same data each time. Customers
// retry a checkout whose answer was lost with the same Idempotency-Key. Afterwards
// every saga has ended and every invariant holds.
func TestCheckoutSurvivesKills(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"AGORA_AUTH_PER_IP_PER_MINUTE=100000", "AGORA_SAGA_STEP_TIMEOUT=2s"}
	var current atomic.Pointer[agora]
	current.Store(startAgora(t, dir, env...))
	a := current.Load()
	admin := a.token
	s := newShop(t, func() string { return current.Load().base })
	products, initial := stockUp(t, a, s, 6, 40)
	customers := signUpMany(t, s, 16)

	book := &ledgerBook{}
	var keys seq
	stop := make(chan struct{})
	var placed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(customers))
	for i, tok := range customers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			ctx := t.Context()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Every step is retried while the process is down.
				retry := func(f func() error) error {
					for {
						err := f()
						if !isTransient(err) {
							return err
						}
						select {
						case <-stop:
							return nil
						case <-time.After(50 * time.Millisecond):
						}
					}
				}
				if err := retry(func() error { return fillCart(ctx, s, tok, products, rng) }); err != nil {
					errs <- err
					return
				}
				key, card := keys.next("kill-"), "tok_visa"
				if rng.IntN(5) == 0 {
					card = "tok_decline"
				}
				var o order
				err := retry(func() error {
					var err error
					o, err = s.checkout(ctx, tok, key, card)
					return err
				})
				if statusOf(err) == http.StatusUnprocessableEntity && o.ID == "" {
					continue // the cart was emptied by a checkout whose answer was lost; fill it again
				}
				if err != nil {
					errs <- err
					return
				}
				if o.ID != "" {
					book.add(o.ID, tok)
					placed.Add(1)
				}
			}
		})
	}
	var ready time.Time
	for range 3 {
		time.Sleep(time.Duration(300+rand.IntN(600)) * time.Millisecond)
		killed := current.Load()
		killed.kill()
		t.Logf("killed after %d orders placed", placed.Load())
		current.Store(restartAgora(t, killed, env...))
		ready = time.Now()
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if placed.Load() < 50 {
		t.Fatalf("only %d orders placed: the test did not load the saga", placed.Load())
	}
	final := awaitTerminal(t, s, admin, book, 60*time.Second)
	// Recovery in seconds (issue 13): the restarted instance takes back the killed
	// one's claims at once, so what was in flight is final within the bound of its
	// being ready, not after leases expire (docs/performance.md reports the figure).
	// A correctness bound, as in tests/chaos: measured from ready, generous of noise.
	took := time.Since(ready)
	t.Logf("every order final %.1f s after the last restart was ready", took.Seconds())
	if took > recoveryBound {
		t.Errorf("orders final %.1f s after the restarted process was ready; want within %s", took.Seconds(), recoveryBound)
	}
	outcomes := checkInvariants(t, s, admin, final, initial)
	t.Logf("%d orders across 3 kills: %v", len(final), outcomes)
}
