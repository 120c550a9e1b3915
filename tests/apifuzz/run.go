package apifuzz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The roles requests are sent as.
const (
	Anonymous = "anonymous"
	Customer  = "customer"
	Admin     = "admin" // holds the scopes that Scoped operations name
)

// keptAnswer is how much of an answer is kept for checks; the rest is counted.
// A longer answer is a failure: no request of a fuzzer's should get one.
const keptAnswer = 1 << 20

// Config says what to fuzz, as whom, and how much.
type Config struct {
	Base      string // the server, e.g. http://127.0.0.1:8080
	Spec      *Spec
	Requests  int                // how many requests in all
	Workers   int                // how many at once; 0 means 8
	Seed      uint64             // worker i draws from a generator seeded with Seed and i
	Customers []string           // bearer tokens of customers
	Admins    []string           // bearer tokens of admins; a role without tokens is not used
	Pools     *Pools             // real values to start from, filled as answers come; nil: empty
	Fixtures  map[string]Fixture // valid values of component schemas, by name, used for half of them
	Protected []string           // values never put in the path of an unsafe method (the callers' own ids)
	Skip      []string           // leave out mutations whose name contains one of these
	Ops       []string           // fuzz only these operations (by id); empty: every one
	NoHarvest []string           // kinds of values never harvested from answers (e.g. refresh_token)
	Valid     float64            // the share of requests sent unmutated; 0 means 0.35
	Timeout   time.Duration      // of each request; 0 means 20 s
	StreamFor time.Duration      // how long an event stream is read before hanging up; 0 means 300 ms
}

// Mutations lists the names of every mutation the fuzzer knows.
func Mutations() []string {
	out := make([]string, len(mutations))
	for i, m := range mutations {
		out[i] = m.name
	}
	return out
}

// Run sends cfg.Requests requests to cfg.Base and returns what came back. It stops
// early, with what it has, when ctx ends.
func Run(ctx context.Context, cfg Config) *Report {
	cfg = withDefaults(cfg)
	cfg.Pools.want(cfg.Spec)
	for _, k := range cfg.NoHarvest {
		delete(cfg.Pools.wanted, cfg.Pools.kind(k))
	}
	var enabled []mutation
	for _, m := range mutations {
		if !containsAny(m.name, cfg.Skip) {
			enabled = append(enabled, m)
		}
	}
	applicable := applicableMutations(&cfg, enabled)
	protected := map[string]bool{}
	for _, v := range cfg.Protected {
		protected[v] = true
	}
	client := &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: cfg.Workers * 2, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	rep := newReport()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range cfg.Workers {
		w := &worker{cfg: &cfg, client: client, rep: rep, applicable: applicable, protected: protected,
			g: &gen{r: rand.New(rand.NewPCG(cfg.Seed, uint64(i))), spec: cfg.Spec, pools: cfg.Pools, fixtures: cfg.Fixtures}}
		wg.Go(func() { w.run(ctx, &next) })
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	return rep
}

// applicableMutations lists, for each operation, the mutations that apply to its
// requests (to some of them: a mutation of an optional header applies when the
// request has it), so that each is drawn as often as every other.
func applicableMutations(cfg *Config, enabled []mutation) map[string][]mutation {
	g := &gen{r: rand.New(rand.NewPCG(cfg.Seed, math.MaxUint64)), spec: cfg.Spec, pools: NewPools(nil), fixtures: cfg.Fixtures}
	out := map[string][]mutation{}
	for i := range cfg.Spec.Operations {
		op := &cfg.Spec.Operations[i]
		for _, m := range enabled {
			if m.on != nil {
				if m.on(op) {
					out[op.ID] = append(out[op.ID], m)
				}
				continue
			}
			for range 8 {
				if m.apply(g, g.build(op, Anonymous, "", nil)) {
					out[op.ID] = append(out[op.ID], m)
					break
				}
			}
		}
	}
	return out
}

func withDefaults(cfg Config) Config {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Pools == nil {
		cfg.Pools = NewPools(nil)
	}
	if cfg.Valid == 0 {
		cfg.Valid = 0.35
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.StreamFor == 0 {
		cfg.StreamFor = 300 * time.Millisecond
	}
	return cfg
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// worker sends requests one at a time.
type worker struct {
	cfg        *Config
	client     *http.Client
	rep        *Report
	g          *gen
	applicable map[string][]mutation // by operation id
	protected  map[string]bool
}

func (w *worker) run(ctx context.Context, next *atomic.Int64) {
	ops := w.cfg.Spec.Operations
	if len(w.cfg.Ops) > 0 {
		ops = slices.DeleteFunc(slices.Clone(ops), func(op Operation) bool { return !slices.Contains(w.cfg.Ops, op.ID) })
		if len(ops) == 0 {
			w.rep.fail(&request{op: &Operation{ID: "none"}, mutation: "none"}, Failure{Kind: "unsendable", Detail: fmt.Sprintf("no operation is one of %v", w.cfg.Ops)})
			return
		}
	}
	for ctx.Err() == nil && next.Add(1) <= int64(w.cfg.Requests) {
		op := &ops[w.g.r.IntN(len(ops))]
		role, token := w.role(op)
		req := w.g.build(op, role, token, w.protected)
		if ms := w.applicable[op.ID]; w.g.r.Float64() >= w.cfg.Valid && len(ms) > 0 {
			w.g.mutate(req, ms)
			if w.touchesProtected(req) { // a mutation put in another id: one of the callers' own
				req = w.g.build(op, role, token, w.protected)
			}
		}
		if w.g.r.IntN(20) == 0 && next.Add(1) <= int64(w.cfg.Requests) {
			// The same request twice at once, as a double click or a retry
			// sends it: races of check-then-write meet here.
			req.mutation += "+twin"
			twin := *req
			var wg sync.WaitGroup
			wg.Go(func() { w.send(ctx, &twin, nil) })
			w.send(ctx, req, w.g.r)
			wg.Wait()
			continue
		}
		w.send(ctx, req, w.g.r)
	}
}

// touchesProtected reports whether req writes (by its method) to a path that
// names a protected value.
func (w *worker) touchesProtected(req *request) bool {
	if req.verb() == http.MethodGet {
		return false
	}
	for _, v := range req.path {
		if w.protected[v] {
			return true
		}
	}
	return false
}

// role picks who sends a request to op: mostly someone the operation admits,
// now and then someone it does not.
func (w *worker) role(op *Operation) (string, string) {
	weights := map[Access][3]int{ // anonymous, customer, admin
		Public: {70, 15, 15}, Optional: {40, 30, 30}, SignedIn: {15, 55, 30}, Scoped: {15, 20, 65},
	}[op.Access]
	tokens := [3][]string{nil, w.cfg.Customers, w.cfg.Admins}
	names := [3]string{Anonymous, Customer, Admin}
	for {
		n := w.g.r.IntN(100)
		i := 0
		for ; n >= weights[i]; i++ {
			n -= weights[i]
		}
		if i == 0 {
			return Anonymous, ""
		}
		if len(tokens[i]) > 0 {
			return names[i], tokens[i][w.g.r.IntN(len(tokens[i]))]
		}
	}
}

// send sends req, reads the answer (an event stream for StreamFor only), checks
// it, and, given a generator (nil: don't), harvests it when it succeeded.
func (w *worker) send(parent context.Context, req *request, r *rand.Rand) {
	hr, err := req.httpRequest(w.cfg.Base)
	if err != nil {
		w.rep.fail(req, Failure{Kind: "unsendable", Detail: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(parent, w.cfg.Timeout)
	defer cancel()
	res, err := w.client.Do(hr.WithContext(ctx))
	if err != nil {
		if parent.Err() == nil {
			w.rep.fail(req, Failure{Kind: "transport", Detail: err.Error()})
		}
		return
	}
	defer res.Body.Close()
	var body io.Reader = res.Body
	stream := strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream")
	if stream {
		t := time.AfterFunc(w.cfg.StreamFor, cancel)
		defer t.Stop()
	}
	kept, err := io.ReadAll(io.LimitReader(body, keptAnswer))
	n, err2 := io.Copy(io.Discard, body)
	if err = errors.Join(err, err2); err != nil && !(stream && ctx.Err() != nil) {
		if parent.Err() == nil {
			w.rep.fail(req, Failure{Kind: "transport", Status: res.StatusCode, Detail: "reading the answer: " + err.Error()})
		}
		return
	}
	size := int64(len(kept)) + n
	w.rep.record(req, res.StatusCode, size)
	if size > keptAnswer {
		w.rep.fail(req, Failure{Kind: "huge-answer", Status: res.StatusCode, Detail: fmt.Sprintf("%d bytes: %s", size, clip(string(kept), 200))})
	} else if f, ok := check(res, kept); !ok {
		w.rep.fail(req, f)
	}
	if res.StatusCode < 300 && !stream && r != nil {
		w.g.pools.harvest(r, req, res.Header, kept)
	}
}

// check applies the rules every answer keeps: below 500, and every error an RFC
// 9457 problem (application/problem+json, with its status and a title).
func check(res *http.Response, body []byte) (Failure, bool) {
	status := res.StatusCode
	if status >= 500 {
		return Failure{Kind: "5xx", Status: status, Detail: clip(string(body), 300)}, false
	}
	if status < 400 {
		return Failure{}, true
	}
	mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || mt != "application/problem+json" {
		return Failure{Kind: "not-problem", Status: status,
			Detail: "Content-Type " + res.Header.Get("Content-Type") + ": " + clip(string(body), 200)}, false
	}
	var p struct {
		Status *int   `json:"status"`
		Title  string `json:"title"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status == nil || *p.Status != status || p.Title == "" {
		return Failure{Kind: "not-problem", Status: status, Detail: "body: " + clip(string(body), 200)}, false
	}
	return Failure{}, true
}
