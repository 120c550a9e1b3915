package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/tests/internal/procs"
	"github.com/agora-commerce/agora/tools/loadgen"
)

func TestMain(m *testing.M) {
	code := testdb.Main(m)
	procs.Cleanup()
	os.Exit(code)
}

// config is a run's parameters, from the environment (see the package documentation).
type config struct {
	checkouts     int
	rate          float64
	kills         int
	outage        time.Duration
	stores        []string
	seed          uint64
	recoveryBound time.Duration
	customers     int
	reportFile    string
}

func configFromEnv(t *testing.T) config {
	c := config{checkouts: 500, rate: 12, kills: 5, outage: 3 * time.Second, stores: []string{"sqlite", "postgres"},
		seed: 1, recoveryBound: 3 * time.Second, customers: 60, reportFile: os.Getenv("AGORA_CHAOS_REPORT")}
	num := func(name string, dst any) {
		v := os.Getenv(name)
		if v == "" {
			return
		}
		var err error
		switch d := dst.(type) {
		case *int:
			*d, err = strconv.Atoi(v)
		case *uint64:
			*d, err = strconv.ParseUint(v, 10, 64)
		case *float64:
			*d, err = strconv.ParseFloat(v, 64)
		case *time.Duration:
			*d, err = time.ParseDuration(v)
		}
		if err != nil {
			t.Fatalf("%s=%q: %v", name, v, err)
		}
	}
	num("AGORA_CHAOS_CHECKOUTS", &c.checkouts)
	num("AGORA_CHAOS_RATE", &c.rate)
	num("AGORA_CHAOS_KILLS", &c.kills)
	num("AGORA_CHAOS_OUTAGE", &c.outage)
	num("AGORA_CHAOS_SEED", &c.seed)
	num("AGORA_CHAOS_RECOVERY_BOUND", &c.recoveryBound)
	num("AGORA_CHAOS_CUSTOMERS", &c.customers)
	if v := os.Getenv("AGORA_CHAOS_STORES"); v != "" {
		c.stores = strings.Split(v, ",")
	}
	if c.checkouts < 1 || c.rate <= 0 || c.kills < 0 || c.customers < 1 {
		t.Fatalf("chaos parameters %+v: checkouts, rate and customers must be positive, kills not negative", c)
	}
	return c
}

// modules are the processes of the split topology, one module each; every one of
// them may be killed.
var modules = []string{"identity", "catalog", "inventory", "payments", "orders", "notifications"}

// TestChaos runs the harness on each store (see the package documentation).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: runs the split topology under load for minutes")
	}
	cfg := configFromEnv(t)
	for _, store := range cfg.stores {
		t.Run(store, func(t *testing.T) { runChaos(t, cfg, store) })
	}
}

func runChaos(t *testing.T, cfg config, store string) {
	dbURL := ""
	switch store {
	case "postgres":
		dbURL = freshDatabase(t)
	case "sqlite":
	default:
		t.Fatalf("store %q: want sqlite or postgres", store)
	}
	begun := time.Now()
	d := startDeployment(t, dbURL)
	st, err := OpenStores(d.dir, dbURL, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, events := d.underChaos(t, cfg, st, store == "postgres")
	res := settle(t, d, st, 3*time.Minute)
	sum := summarize(cfg, store, rep, events, res, time.Since(begun))
	t.Log("\n" + sum.text())
	if cfg.reportFile != "" {
		writeReport(t, cfg.reportFile, store, sum)
	}
	if res.Total() != 0 {
		t.Errorf("the stores break invariants:\n%s", res)
	}
	c := rep.Checkouts
	if c.Failed != 0 || c.TimedOut != 0 || c.Interrupted != 0 {
		t.Errorf("checkouts %+v: none may fail, time out or be left (the load generator resends through restarts); errors %v", c, rep.Errors)
	}
	if c.Completed < int64(cfg.checkouts)/2 {
		t.Errorf("only %d checkouts completed of %d asked: the harness did not load the shop", c.Completed, cfg.checkouts)
	}
	checkRecovery(t, events, cfg.recoveryBound)
}

// checkRecovery bounds, for every kill, the wait from ready until every checkout
// pending then was final: those in flight at the kill and those placed while the
// process was down, waiting on it. It fails too when the kills caught no
// checkout at all, so that the bound cannot pass untested.
func checkRecovery(t *testing.T, events []event, bound time.Duration) {
	caught := 0
	for _, e := range events {
		if !e.kill {
			continue
		}
		caught += e.atReady
		if len(e.stillPending) > 0 || e.settled > bound {
			t.Errorf("%s: %d checkouts pending at ready (%d in flight at the kill), all final %v after ready (bound %v); still pending: %v",
				e.what, e.atReady, e.atFault, e.settled.Round(time.Millisecond), bound, e.stillPending)
		}
	}
	if caught == 0 && len(events) > 0 {
		t.Errorf("no checkout was pending when a killed process was ready again: the recovery bound was not tested")
	}
}

// freshDatabase creates a database in the package's PostgreSQL server and returns
// its superuser URL: each module makes its own schema in it.
func freshDatabase(t *testing.T) string {
	return testdb.FreshDatabase(t, testdb.PostgresURL(t), "chaos_")
}

// deployment is the split topology: a broker, the payment provider, one process per module.
type deployment struct {
	dir    string
	broker *procs.Broker
	mu     sync.Mutex
	procs  map[string]*procs.Agora
}

func startDeployment(t *testing.T, dbURL string) *deployment {
	d := &deployment{dir: t.TempDir(), procs: map[string]*procs.Agora{}}
	d.broker = procs.StartBroker(t, d.dir, "")
	psp := procs.StartPSP(t)
	for _, m := range modules {
		env := []string{"AGORA_BUS_URL=" + d.broker.URL(), "AGORA_MODULES=" + m, "AGORA_AUTH_PER_IP_PER_MINUTE=100000",
			"AGORA_PAYMENT_PROVIDER_URL=" + psp.URL, "AGORA_SAGA_STEP_TIMEOUT=5s"}
		if dbURL != "" {
			env = append(env, "AGORA_DATABASE_URL="+dbURL)
		}
		d.procs[m] = procs.StartAgora(t, d.dir, "", env...)
	}
	return d
}

// urls are every process's base URL: the load goes to them in turn, as behind a
// balancer, so a killed process's share is resent to the next one.
func (d *deployment) urls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, m := range modules {
		out = append(out, d.procs[m].Base)
	}
	return out
}

// awaitReady waits until every process answers /readyz with 200 (after the broker
// or the database came back) and returns when that was.
func (d *deployment) awaitReady(ctx context.Context) (time.Time, error) {
	hc := &http.Client{Timeout: time.Second}
	for _, base := range d.urls() {
		for {
			res, err := hc.Get(base + "/readyz")
			if err == nil {
				_ = res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return time.Time{}, fmt.Errorf("%s not ready: %w", base, ctx.Err())
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
	return time.Now(), nil
}

// progressWatch is the load generator's progress: kept for the log, and the
// signal that its timed window began (the warm-up's last line).
type progressWatch struct {
	mu      sync.Mutex
	lines   strings.Builder
	started chan struct{}
	once    sync.Once
}

func (w *progressWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(string(p), "warm-up: restocked") {
		w.once.Do(func() { close(w.started) })
	}
	return w.lines.Write(p)
}

func (w *progressWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lines.String()
}

// underChaos drives the load generator and, during its window, the chaos
// schedule and an admin cancelling orders. It returns the generator's report and
// what each event did.
func (d *deployment) underChaos(t *testing.T, cfg config, st *Stores, pg bool) (loadgen.Report, []event) {
	lc := loadgen.DefaultConfig()
	lc.URLs = d.urls()
	lc.Rate = cfg.rate
	lc.Duration = time.Duration(float64(cfg.checkouts) / cfg.rate * float64(time.Second))
	lc.BrowseRate = cfg.rate / 2
	lc.Customers = cfg.customers
	lc.Seed = cfg.seed
	lc.RetryFor, lc.OrderTimeout, lc.Drain = 90*time.Second, 150*time.Second, 150*time.Second
	lc.Restock = loadgen.Restock{Below: 50, Amount: 500, Every: time.Second}
	progress := &progressWatch{started: make(chan struct{})}
	var rep loadgen.Report
	var err error
	done := make(chan struct{})
	go func() { defer close(done); rep, err = loadgen.Run(t.Context(), lc, progress) }()
	select {
	case <-progress.started:
	case <-done:
		t.Fatalf("the load generator ended in its warm-up: %v\n%s", err, progress)
	}
	start := time.Now()
	stopCancels := d.cancelSome(t, st, cfg.seed)
	events := d.schedule(t, cfg, st, pg, start, lc.Duration)
	stopCancels()
	<-done
	if err != nil {
		t.Fatalf("load generator: %v\n%s", err, progress)
	}
	t.Logf("load generator:\n%s", progress)
	return rep, events
}

// event is one chaos event and what followed it.
type event struct {
	what      string
	kill      bool          // processes were killed (bounded recovery)
	processes int           // processes killed
	at        time.Duration // from the window's start
	down      time.Duration // from the fault to every process ready again
	inFlight
}

// schedule spreads the events over the window: the kill plan, the broker's
// outage in the middle and, on PostgreSQL, its restart at three quarters. Each
// event waits for its slot and for the one before to end.
func (d *deployment) schedule(t *testing.T, cfg config, st *Stores, pg bool, start time.Time, window time.Duration) []event {
	rng := rand.New(rand.NewPCG(cfg.seed, 0xc4a05))
	var plan []func() event
	for _, mods := range killPlan(rng, cfg.kills) {
		plan = append(plan, func() event { return d.killRestart(t, st, rng, mods) })
	}
	plan = slices.Insert(plan, len(plan)/2, func() event { return d.brokerOutage(t, st, cfg.outage) })
	if pg {
		plan = slices.Insert(plan, len(plan)*3/4, func() event { return d.postgresRestart(t, st) })
	}
	gap := window * 85 / 100 / time.Duration(len(plan))
	var out []event
	for i, run := range plan {
		if wait := time.Until(start.Add(gap * time.Duration(i))); wait > 0 {
			time.Sleep(wait)
		}
		at := time.Since(start)
		e := run()
		e.at = at
		t.Logf("%6.1fs %-34s down %6v; in flight at the fault %3d, final %v after ready; all %3d pending at ready, %v",
			at.Seconds(), e.what, e.down.Round(time.Millisecond), e.atFault, e.recovery.Round(time.Millisecond), e.atReady,
			e.settled.Round(time.Millisecond))
		out = append(out, e)
	}
	return out
}

// killPlan draws n kill events: one process at a time, taking the modules in
// turn — orders first, then those whose death leaves checkouts waiting (inventory,
// payments), then the rest — with two processes at once every fifth event from
// the second on; shuffled.
func killPlan(rng *rand.Rand, n int) [][]string {
	turn := []string{"orders", "inventory", "payments", "catalog", "identity", "notifications"}
	var plan [][]string
	next := 0
	for i := range n {
		if i%5 == 1 {
			p := rng.Perm(len(modules))
			plan = append(plan, []string{modules[p[0]], modules[p[1]]})
			continue
		}
		plan = append(plan, []string{turn[next%len(turn)]})
		next++
	}
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	return plan
}

// killRestart SIGKILLs the processes of mods at once, leaves them down a moment,
// starts them again on their ports and data, and measures the checkouts in flight.
func (d *deployment) killRestart(t *testing.T, st *Stores, rng *rand.Rand, mods []string) event {
	e := event{what: "SIGKILL " + strings.Join(mods, "+"), kill: true, processes: len(mods)}
	killed := time.Now()
	d.mu.Lock()
	old := make([]*procs.Agora, len(mods))
	for i, m := range mods {
		old[i] = d.procs[m]
	}
	d.mu.Unlock()
	for _, p := range old {
		p.Kill()
	}
	time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
	var ready time.Time
	for i, m := range mods {
		n := old[i].Restart(t)
		d.mu.Lock()
		d.procs[m] = n
		d.mu.Unlock()
		ready = n.Ready
	}
	e.down = ready.Sub(killed)
	e.inFlight = awaitInFlight(t, st, killed, ready)
	return e
}

// brokerOutage stops the broker for outage and starts it again on its address
// and store.
func (d *deployment) brokerOutage(t *testing.T, st *Stores, outage time.Duration) event {
	e := event{what: fmt.Sprintf("broker stopped %v", outage)}
	stopped := time.Now()
	d.broker.Stop()
	time.Sleep(outage)
	d.broker = d.broker.Restart(t)
	ready, err := d.awaitReady(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e.down = ready.Sub(stopped)
	e.inFlight = awaitInFlight(t, st, stopped, ready)
	return e
}

// postgresRestart restarts the PostgreSQL server under the running processes.
func (d *deployment) postgresRestart(t *testing.T, st *Stores) event {
	e := event{what: "PostgreSQL restarted"}
	began := time.Now()
	if err := testdb.RestartPostgres(t.Context()); err != nil {
		t.Fatal(err)
	}
	ready, err := d.awaitReady(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e.down = ready.Sub(began)
	e.inFlight = awaitInFlight(t, st, began, ready)
	return e
}

// inFlight is what became of the checkouts in flight across a fault.
type inFlight struct {
	atFault, atReady  int           // pending at ready: created before the fault / before ready
	recovery, settled time.Duration // from ready until those of atFault / of atReady were all final
	stillPending      []string      // pending when the wait gave up
}

// awaitInFlight takes the checkouts pending at ready and waits, up to 30 s, until
// every one is final. It tells apart those created before the fault — in flight
// when it struck: what recovery is about — from those created while the fault
// lasted, whose wait after ready also holds the burst of checkouts the load
// generator resends then, which on a loaded machine is latency, not recovery. A
// checkout paid with tok_timeout is left out: the simulated provider holds that
// card's calls until the payment's deadline, on purpose, so it is slow with or
// without a crash (its invariants are checked all the same).
func awaitInFlight(t *testing.T, st *Stores, fault, ready time.Time) inFlight {
	ctx := t.Context()
	var rows []struct {
		ID      string `db:"id"`
		Data    string `db:"data"`
		Created int64  `db:"created_at"`
	}
	for {
		rows = nil
		err := st.selectRows(ctx, "orders", &rows, `SELECT o.id, s.data, o.created_at FROM {orders} o JOIN {sagas} s ON s.order_id = o.id
			WHERE o.status = 'pending' AND o.created_at <= ?`, ready.UnixMicro())
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the database restarting
	}
	var ids, early []string
	for _, r := range rows {
		if !strings.Contains(r.Data, `"tok_timeout"`) {
			ids = append(ids, r.ID)
			if r.Created <= fault.UnixMicro() {
				early = append(early, r.ID)
			}
		}
	}
	f := inFlight{atFault: len(early), atReady: len(ids)}
	for {
		var pending []string
		err := st.selectRows(ctx, "orders", &pending, `SELECT id FROM {orders} WHERE status = 'pending'`)
		gone := func(id string) bool { return err == nil && !slices.Contains(pending, id) }
		since := time.Since(ready)
		if early = slices.DeleteFunc(early, gone); len(early) == 0 && f.recovery == 0 {
			f.recovery = since
		}
		if ids = slices.DeleteFunc(ids, gone); len(ids) == 0 {
			f.settled = since
			return f
		}
		if since > 30*time.Second || ctx.Err() != nil {
			f.stillPending = ids
			if len(early) > 0 {
				f.recovery = since
			}
			return f
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cancelSome has the admin cancel, every half second, one of the latest orders
// that is not rejected — pending ones (the saga compensates) and confirmed ones
// (refunded and restocked) — until the returned stop is called.
func (d *deployment) cancelSome(t *testing.T, st *Stores, seed uint64) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(seed, 0xca9ce1))
		token := ""
		for procs.Sleep(ctx, 500*time.Millisecond) {
			if token == "" {
				token = d.adminToken(ctx)
				continue
			}
			var ids []string
			if st.selectRows(ctx, "orders", &ids, `SELECT id FROM {orders} WHERE status <> 'rejected' ORDER BY id DESC LIMIT 10`) != nil || len(ids) == 0 {
				continue
			}
			urls := d.urls()
			d.cancel(ctx, urls[rng.IntN(len(urls))], token, ids[rng.IntN(len(ids))])
		}
	}()
	return func() { cancel(); <-done }
}

// adminToken signs in as the demo admin through any process ("" when it cannot now).
func (d *deployment) adminToken(ctx context.Context) string {
	body := strings.NewReader(`{"email":"admin@example.com","password":"demo-admin-password"}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.urls()[0]+"/v1/auth/login", body)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if json.NewDecoder(res.Body).Decode(&tok) != nil {
		return ""
	}
	return tok.AccessToken
}

// cancel asks for one order's cancellation; whatever the answer (an order already
// final is a 409; a process away, no answer), the checker judges the outcome.
func (d *deployment) cancel(ctx context.Context, base, token, id string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/orders/"+id+"/cancel", strings.NewReader(`{"reason":"chaos"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req); err == nil {
		_ = res.Body.Close()
	}
}

// settle waits until the checker finds nothing wrong — everything drained — or
// within gives up, and returns the last check.
func settle(t *testing.T, d *deployment, st *Stores, within time.Duration) *Result {
	deadline := time.Now().Add(within)
	for {
		res, err := Check(t.Context(), st, jetStreamDead(t, d.broker.URL()))
		if err != nil {
			t.Fatal(err)
		}
		if res.Total() == 0 || time.Now().After(deadline) {
			return res
		}
		time.Sleep(time.Second)
	}
}

// jetStreamDead lists the messages in the broker's dead-letter stream (AGORA_DEAD):
// the subject names the consumer and the message type.
func jetStreamDead(t *testing.T, brokerURL string) []string {
	nc, err := nats.Connect(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "AGORA_DEAD")
	if err != nil {
		return nil // no dead letter was ever parked
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0 && len(out) < 50; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil {
			out = append(out, fmt.Sprintf("AGORA_DEAD: %s: %s", m.Subject, m.Header.Get("Agora-Error")))
		}
	}
	return out
}
