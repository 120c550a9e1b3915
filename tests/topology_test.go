package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"
)

// The topology matrix: one shop tour over HTTP, run against every layout the
// configuration allows — the single binary with the in-process bus, every module in
// its own process with NATS (`agora broker`) between them, a mixed layout with two
// replicas of orders and of inventory behind one address, and the project's own
// container image running the broker and three services. The tour's requests go
// to a process that runs none of the modules they need (or, behind the balancer, to
// any process), so every module is asked over the bus.

// brokerProc is a running `agora broker`.
type brokerProc struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
	out  *procs.Buffer
	done chan struct{}
}

// startBrokerProc runs `agora broker` on addr (a free port when empty), storing under
// dataDir, until the test ends.
func startBrokerProc(t *testing.T, dataDir, addr string) *brokerProc {
	t.Helper()
	if addr == "" {
		addr = procs.FreeAddr(t)
	}
	b := &brokerProc{t: t, addr: addr, out: &procs.Buffer{}, done: make(chan struct{})}
	b.cmd = exec.Command(agoraBinary(t), "broker", "--broker-addr", addr, "--data-dir", dataDir, "--log-format", "json")
	b.cmd.Env = procs.CleanEnv()
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(b.stop)
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return b
		}
		select {
		case <-b.done:
			t.Fatalf("broker exited:\n%s", b.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not listening on %s:\n%s", addr, b.out.String())
		}
	}
}

func (b *brokerProc) url() string { return "nats://" + b.addr }

func (b *brokerProc) signal(sig syscall.Signal) {
	if err := b.cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("broker: %v: %v", sig, err)
	}
}

func (b *brokerProc) stop() {
	_ = b.cmd.Process.Signal(syscall.SIGCONT) // a paused broker cannot stop
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// A layout starts a deployment for a test and registers its teardown with
// t.Cleanup. The tour needs only the deployment's entry; the rest is for tests that
// stop and restart processes.
type layout func(t *testing.T) *deployment

// deployment is a running layout, seen from outside.
type deployment struct {
	entry  *agora              // where the tour sends its requests (base and admin token)
	procs  map[string][]*agora // the local processes, by the AGORA_MODULES they run
	env    map[*agora][]string // each process's environment, to restart it
	dir    string
	broker *brokerProc
}

var commonEnv = []string{"AGORA_AUTH_PER_IP_PER_MINUTE=100000", "AGORA_SAGA_STEP_TIMEOUT=5s"}

func startSingle(t *testing.T) *deployment {
	a := startAgora(t, t.TempDir(), commonEnv...)
	return &deployment{entry: a, procs: map[string][]*agora{"all": {a}}}
}

// startSplit starts a broker and one process per entry of layout (its AGORA_MODULES),
// in order, on one data directory (SQLite files are per module; the development
// signing key is shared). The entry is the last process, unless balance puts a
// round-robin proxy over all of them in front.
func startSplit(t *testing.T, layout []string, balance bool) *deployment {
	t.Helper()
	return startSplitWith(t, layout, balance, nil)
}

// startSplitWith is startSplit with some processes run from another build: bins
// maps an entry of layout to the agora binary that runs it (this tree's when absent).
func startSplitWith(t *testing.T, layout []string, balance bool, bins map[string]string) *deployment {
	t.Helper()
	d := &deployment{dir: t.TempDir(), procs: map[string][]*agora{}, env: map[*agora][]string{}}
	d.broker = startBrokerProc(t, d.dir, "")
	var last *agora
	for _, modules := range layout {
		env := append([]string{"AGORA_BUS_URL=" + d.broker.url(), "AGORA_MODULES=" + modules}, commonEnv...)
		a := startAgoraWith(t, startOptions{noLogin: !strings.Contains(modules, "identity") && last == nil, bin: bins[modules]}, d.dir, env...)
		if a.token == "" && last != nil {
			a.token = last.token
		}
		d.procs[modules] = append(d.procs[modules], a)
		d.env[a] = env
		last = a
	}
	d.entry = last
	if balance {
		d.entry = d.balancer(t)
	}
	return d
}

// balancer puts a round-robin reverse proxy over every process: "behind one
// address", as a load balancer would.
func (d *deployment) balancer(t *testing.T) *agora {
	var backends []*url.URL
	for _, ps := range d.procs {
		for _, p := range ps {
			u, _ := url.Parse(p.base)
			backends = append(backends, u)
		}
	}
	var n atomic.Uint64
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(backends[n.Add(1)%uint64(len(backends))])
		},
		FlushInterval: -1, // server-sent events pass at once
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return &agora{t: t, base: srv.URL, token: d.procs[firstKey(d.procs)][0].token, client: checkedClient(t, 15*time.Second)}
}

func firstKey(m map[string][]*agora) string {
	for k, ps := range m {
		if ps[0].token != "" {
			return k
		}
	}
	return ""
}

// restart kills p (SIGKILL, as in a crash) and starts it again with the same
// configuration, returning the new process.
func (d *deployment) restart(t *testing.T, p *agora, down time.Duration) *agora {
	t.Helper()
	p.kill()
	time.Sleep(down) // the module is away: its messages wait in the broker
	env := d.env[p]
	n := startAgoraWith(t, startOptions{noLogin: true, addr: strings.TrimPrefix(p.base, "http://")}, d.dir, env...)
	n.token = p.token
	d.env[n] = env
	return n
}

var splitLayout = []string{"identity", "catalog", "inventory", "payments", "fleet", "orders", "rides", "notifications"}

func TestTopologyMatrix(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start layout
	}{
		{"single-binary", startSingle},
		{"split", func(t *testing.T) *deployment { return startSplit(t, splitLayout, false) }},
		{"replicas", func(t *testing.T) *deployment {
			// Fleet keeps its drivers' positions in memory: one process runs it.
			return startSplit(t, []string{"identity,catalog,payments,notifications,fleet", "orders", "orders", "inventory", "inventory", "rides", "rides"}, true)
		}},
		{"containers", startContainers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := tc.start(t)
			shopTour(t, d)
			rideTour(t, d)
		})
	}
}

// shopTour browses, signs in, fills carts and checks out (success, decline, cancel
// with refund, following one order on its event stream), then runs concurrent
// checkouts and checks every invariant.
func shopTour(t *testing.T, d *deployment) {
	a := d.entry
	s := newShop(t, func() string { return a.base })
	ctx := t.Context()

	// Browse.
	products, initial := stockUp(t, a, s, 6, 40)
	var one product
	if _, err := s.call(ctx, http.MethodGet, "/v1/products/"+products[0].ID, "", nil, &one, []int{http.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if one.SKU != products[0].SKU {
		t.Errorf("product %s: got SKU %q, want %q", products[0].ID, one.SKU, products[0].SKU)
	}
	a.do(http.MethodGet, "/v1/products/0190a000-0000-7000-8000-000000000000", nil).wantProblem(t, http.StatusNotFound)

	// Sign in.
	customers := signUpMany(t, s, 8)
	if _, err := s.signIn(ctx, "customer@example.com", "wrong-password"); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("sign-in with a wrong password: %v, want 401", err)
	}
	me := customers[0]

	// Cart.
	if err := s.setCart(ctx, me, products[0].ID, 2); err != nil {
		t.Fatal(err)
	}
	var cart struct {
		Lines []orderLine `json:"lines"`
	}
	if _, err := s.call(ctx, http.MethodGet, "/v1/cart", me, nil, &cart, []int{http.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if len(cart.Lines) != 1 || cart.Lines[0].Quantity != 2 {
		t.Fatalf("cart %+v: want 2 × %s", cart, products[0].SKU)
	}

	book := &ledgerBook{}
	var keys seq

	// Checkout, followed on the order's event stream until it is confirmed.
	o, err := s.checkout(ctx, me, keys.next("tour-"), "tok_visa")
	if err != nil {
		t.Fatal(err)
	}
	book.add(o.ID, me)
	if events, last := followOrder(t, a.base, me, o.ID); last.Status != "confirmed" || events < 1 {
		t.Fatalf("order stream ended with %+v after %d events: want confirmed", last, events)
	}

	// A declined card.
	if err := s.setCart(ctx, me, products[1].ID, 1); err != nil {
		t.Fatal(err)
	}
	declined, err := s.checkout(ctx, me, keys.next("tour-"), "tok_decline")
	if err != nil {
		t.Fatal(err)
	}
	book.add(declined.ID, me)
	if _, last := followOrder(t, a.base, me, declined.ID); last.Status != "rejected" {
		t.Errorf("declined checkout ended %q, want rejected", last.Status)
	}

	// Cancel after confirmation: refunded and restocked.
	if err := s.setCart(ctx, me, products[2].ID, 3); err != nil {
		t.Fatal(err)
	}
	regret, err := s.checkout(ctx, me, keys.next("tour-"), "tok_visa")
	if err != nil {
		t.Fatal(err)
	}
	book.add(regret.ID, me)
	if _, last := followOrder(t, a.base, me, regret.ID); last.Status != "confirmed" {
		t.Fatalf("checkout ended %q, want confirmed", last.Status)
	}
	if _, err := s.call(ctx, http.MethodPost, "/v1/orders/"+regret.ID+"/cancel", me, map[string]string{"reason": "changed my mind"},
		nil, []int{http.StatusAccepted, http.StatusOK}); err != nil {
		t.Fatal(err)
	}

	// Concurrent checkouts, some declined, some cancelled.
	concurrentCheckouts(t, s, customers, products, book, &keys, 5, nil)

	final := awaitTerminal(t, s, a.token, book, 90*time.Second)
	if final[regret.ID].Status != "cancelled" {
		t.Errorf("cancelled order is %q", final[regret.ID].Status)
	}
	outcomes := checkInvariants(t, s, a.token, final, initial)
	t.Logf("%d orders: %v", len(final), outcomes)
	if outcomes["confirmed"] == 0 || outcomes["rejected"] == 0 {
		t.Errorf("want confirmed and rejected orders, got %v", outcomes)
	}
}

// concurrentCheckouts has every customer check out rounds times at once, with a
// mix of cards and some cancellations. A request that fails in transit (a process
// or the broker away) is retried with the same Idempotency-Key. during, when not
// nil, runs once the first round has been placed.
func concurrentCheckouts(t *testing.T, s *shop, customers []string, products []product, book *ledgerBook, keys *seq, rounds int, during func()) {
	t.Helper()
	cards := []string{"tok_visa", "tok_visa", "tok_visa", "tok_decline", "tok_insufficient_funds"}
	var wg sync.WaitGroup
	var placed atomic.Int64
	errs := make(chan error, len(customers))
	for i, tok := range customers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			ctx := t.Context()
			for range rounds {
				o, err := retrying(ctx, func() (order, error) {
					if err := fillCart(ctx, s, tok, products, rng); err != nil {
						return order{}, err
					}
					return order{}, nil
				})
				if err == nil {
					key, card := keys.next("co-"), cards[rng.IntN(len(cards))]
					o, err = retrying(ctx, func() (order, error) { return s.checkout(ctx, tok, key, card) })
				}
				if err != nil {
					errs <- err
					return
				}
				book.add(o.ID, tok)
				placed.Add(1)
				if rng.IntN(8) == 0 {
					_, err := retrying(ctx, func() (order, error) {
						_, err := s.call(ctx, http.MethodPost, "/v1/orders/"+o.ID+"/cancel", tok, map[string]string{"reason": "changed my mind"},
							nil, []int{http.StatusAccepted, http.StatusOK, http.StatusConflict})
						return order{}, err
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	if during != nil {
		for placed.Load() < int64(len(customers)) {
			time.Sleep(10 * time.Millisecond)
		}
		during()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// retrying calls fn until it answers, retrying failures in transit and 503/504
// (a module or the broker briefly away) for up to a minute.
func retrying[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		v, err := fn()
		st := statusOf(err)
		if err == nil || time.Now().After(deadline) || !(isTransient(err) || st == http.StatusServiceUnavailable || st == http.StatusGatewayTimeout) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// followOrder reads the order's server-sent event stream to its end and returns how
// many events carried the order and the last state they showed.
func followOrder(t *testing.T, base, token, id string) (int, order) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var last order
	events := 0
	client := checkedClient(t, 0) // no timeout: the stream lasts as long as the ride or order
	for last.Status == "" || last.Status == "pending" {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/orders/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "text/event-stream")
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("order stream: %v", err)
		}
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			_ = res.Body.Close()
			t.Fatalf("order stream: status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var o order
			if err := json.Unmarshal([]byte(data), &o); err != nil {
				t.Fatalf("order stream event %q: %v", data, err)
			}
			events++
			last.Status, last.Version = o.Status, o.Version
		}
		_ = res.Body.Close()
		if ctx.Err() != nil {
			t.Fatalf("order %s still %q after a minute of streaming", id, last.Status)
		}
	}
	return events, last
}

// TestTopologyModuleRestart kills inventory's and payments' processes in the middle
// of concurrent checkouts and starts them again, and pauses the broker for several
// seconds: afterwards every order is terminal and the checkout invariants hold.
func TestTopologyModuleRestart(t *testing.T) {
	t.Parallel()
	d := startSplit(t, splitLayout, false)
	a := d.entry
	s := newShop(t, func() string { return a.base })
	products, initial := stockUp(t, a, s, 6, 40)
	customers := signUpMany(t, s, 10)
	book := &ledgerBook{}
	var keys seq
	concurrentCheckouts(t, s, customers, products, book, &keys, 6, func() {
		d.restart(t, d.procs["inventory"][0], time.Second)
		d.restart(t, d.procs["payments"][0], time.Second)
		d.broker.signal(syscall.SIGSTOP)
		time.Sleep(4 * time.Second)
		d.broker.signal(syscall.SIGCONT)
	})
	final := awaitTerminal(t, s, a.token, book, 3*time.Minute)
	outcomes := checkInvariants(t, s, a.token, final, initial)
	t.Logf("%d orders: %v", len(final), outcomes)
	if outcomes["confirmed"] == 0 {
		t.Errorf("no order confirmed: %v", outcomes)
	}
}

// TestTopologyNobodyServes asks for a module that runs in no process: the answer is
// a prompt 503 problem naming the module, not a hang.
func TestTopologyNobodyServes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	br := startBrokerProc(t, dir, "")
	a := startAgoraWith(t, startOptions{noLogin: true}, dir, "AGORA_BUS_URL="+br.url(), "AGORA_MODULES=catalog", "AGORA_HTTP_REQUEST_TIMEOUT=10m")
	r := a.do(http.MethodPost, "/v1/auth/login", map[string]string{"email": "admin@example.com", "password": "demo-admin-password"})
	r.wantProblem(t, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "identity") {
		t.Errorf("problem %s does not name the identity module", r.body)
	}
	// The module that does run here answers.
	a.do(http.MethodGet, "/v1/products?limit=1", nil).want(t, http.StatusOK, nil)
}
