package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
)

// product is what the generator needs of a catalog product.
type product struct {
	ID       string `json:"id"`
	SKU      string `json:"sku"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// order is what the generator needs of an order.
type order struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Version int64  `json:"version"`
}

// terminal reports whether the checkout has ended: every status but pending is
// an end (the orders contract's Order.Terminal).
func (o order) terminal() bool { return o.Status != "" && o.Status != "pending" }

// maxProducts bounds the catalog the generator reads in its warm-up.
const maxProducts = 2000

// gen is one run.
type gen struct {
	cfg        Config
	c          *client
	rec        *recorder
	free       chan *account // customers not running a checkout
	admin      *account      // nil: no restocking
	products   []product
	words      []string // search terms, from product names
	categories []string
}

// Run warms up (signs in the customers and the admin, reads the catalog, stocks
// the products), then drives load for cfg.Duration and returns what it measured.
// Progress goes to progress once a second. When ctx ends during the timed
// window, Run stops at once and still returns the report (Interrupted set); when
// it ends during the warm-up, Run returns ctx's error.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	progress = &lockedWriter{w: progress} // written from several goroutines
	if cfg.Scenario == ScenarioRides {
		return runRides(ctx, cfg, progress)
	}
	g := &gen{cfg: cfg, rec: newRecorder()}
	g.c = newClient(cfg, newRecorder()) // the warm-up's numbers are not the run's
	if err := g.warmUp(ctx, progress); err != nil {
		return Report{}, fmt.Errorf("warm-up: %w", err)
	}
	g.c.rec = g.rec
	before, err := g.c.readServer(ctx, cfg.Rides.MetricsToken, cfg.DatabaseURL)
	start := time.Now()
	rep := g.drive(ctx, realClock{}, progress)
	if err != nil {
		fmt.Fprintf(progress, "no server figures: %v\n", err)
		return rep, nil
	}
	rep.Server = g.serverFigures(ctx, before, start, rep.Checkouts.Completed, progress)
	return rep, nil
}

// serverFigures reads the servers' counters again, settle after the drain, and
// returns what they did since before, per completed checkout (nil when they
// could not be read, or the run was interrupted).
func (g *gen) serverFigures(ctx context.Context, before serverCounters, start time.Time, completed int64, w io.Writer) *ServerReport {
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(settle):
	}
	after, err := g.c.readServer(ctx, g.cfg.Rides.MetricsToken, g.cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintf(w, "no server figures: %v\n", err)
		return nil
	}
	processes := len(slices.Compact(slices.Sorted(slices.Values(g.c.urls))))
	return serverReport(before, after, processes, time.Since(start), completed, g.cfg.DatabaseURL != "")
}

func (g *gen) warmUp(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "warm-up: signing in %d customers (sign-in is rate-limited per address: this may take a minute)\n", g.cfg.Customers)
	customers, err := g.c.signInCustomers(ctx, g.cfg.Customers, w)
	if err != nil {
		return err
	}
	g.free = make(chan *account, len(customers))
	for _, a := range customers {
		g.free <- a
	}
	if err := g.readCatalog(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "warm-up: %d products, %d categories\n", len(g.products), len(g.categories))
	if g.cfg.Restock.Enabled() {
		admin := &account{email: g.cfg.AdminEmail, password: g.cfg.AdminPassword}
		if err := g.c.signIn(ctx, admin); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(w, "warm-up: no restocking: the admin could not sign in: %v\n", err)
		} else {
			g.admin = admin
			n := g.restockPass(ctx)
			fmt.Fprintf(w, "warm-up: restocked %d products\n", n)
		}
	}
	return ctx.Err()
}

// readCatalog reads the active products, page by page.
func (g *gen) readCatalog(ctx context.Context) error {
	cursor := ""
	cats := map[string]bool{}
	words := map[string]bool{}
	for len(g.products) < maxProducts {
		var page struct {
			Items      []product `json:"items"`
			NextCursor string    `json:"next_cursor"`
		}
		q := url.Values{"limit": {"100"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := g.c.do(ctx, call{op: "list_products", method: http.MethodGet, path: "/v1/products?" + q.Encode()}, &page); err != nil {
			return fmt.Errorf("list the products: %w", err)
		}
		for _, p := range page.Items {
			g.products = append(g.products, p)
			if p.Category != "" {
				cats[p.Category] = true
			}
			for _, word := range strings.FieldsFunc(strings.ToLower(p.Name), func(r rune) bool { return !unicode.IsLetter(r) }) {
				if len(word) >= 4 {
					words[word] = true
				}
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(g.products) == 0 {
		return errors.New("the catalog has no active product to buy (run the server with --demo, or create some)")
	}
	g.categories = sortedKeys(cats)
	g.words = sortedKeys(words)
	if len(g.words) == 0 {
		g.words = []string{"a"}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// drive runs the timed window, then lets the checkouts in flight finish (up to
// cfg.Drain), and reports.
func (g *gen) drive(ctx context.Context, clk clock, w io.Writer) Report {
	flowCtx, cancelFlows := context.WithCancel(ctx)
	defer cancelFlows()
	l := newLauncher(g, flowCtx)

	start := clk.Now()
	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	if g.admin != nil {
		bg.Go(func() { g.restockLoop(bgCtx) })
	}
	bg.Go(func() { g.progressLoop(bgCtx, w, start) })

	var sched sync.WaitGroup
	if g.cfg.BrowseRate > 0 {
		sched.Go(func() { schedule(ctx, clk, g.cfg.BrowseRate, g.cfg.Duration, l.browse) })
	}
	schedule(ctx, clk, g.cfg.Rate, g.cfg.Duration, l.checkout)
	sched.Wait()
	_ = clk.SleepUntil(ctx, start.Add(g.cfg.Duration)) // the window is whole, though its last slot came earlier
	window := clk.Now().Sub(start)

	g.drain(ctx, &l.flows, w)
	cancelFlows()
	l.flows.Wait()
	stopBG()
	bg.Wait()
	return g.rec.report(g.cfg, window, clk.Now().Sub(start), ctx.Err() != nil)
}

// drain waits, up to cfg.Drain or ctx's end, for the flows launched in the window.
func (g *gen) drain(ctx context.Context, flows *sync.WaitGroup, w io.Writer) {
	if ctx.Err() == nil && g.rec.snapshotInFlight() > 0 {
		fmt.Fprintf(w, "window over: waiting up to %s for %d checkouts in flight\n", g.cfg.Drain, g.rec.snapshotInFlight())
	}
	waitUpTo(ctx, flows, g.cfg.Drain)
}

// waitUpTo waits for flows to end, for d at most, or until ctx ends.
func waitUpTo(ctx context.Context, flows *sync.WaitGroup, d time.Duration) {
	drained := make(chan struct{})
	go func() { flows.Wait(); close(drained) }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-drained:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// launcher starts the flows of the window — checkouts and catalog browsing — each
// within its bound of flows in flight, each with a random source of its own seeded
// from the run's seed, so that a run can be repeated.
type launcher struct {
	g                  *gen
	ctx                context.Context
	flows              sync.WaitGroup
	flights, browsing  slots
	master, browseSeed *rand.Rand
}

func newLauncher(g *gen, ctx context.Context) *launcher {
	master := rand.New(rand.NewPCG(g.cfg.Seed, 0x10ad))
	// The browse schedule runs on its own goroutine: its own source of seeds.
	browseSeed := rand.New(rand.NewPCG(master.Uint64(), master.Uint64()))
	return &launcher{g: g, ctx: ctx, flights: newSlots(g.cfg.MaxInFlight), browsing: newSlots(g.cfg.MaxInFlight),
		master: master, browseSeed: browseSeed}
}

// checkout launches one checkout by a free customer; without room or a free
// customer the launch is dropped (and counted).
func (l *launcher) checkout() bool {
	rec := l.g.rec
	if !l.flights.tryAcquire() {
		rec.add(&rec.dropped, 1)
		return false
	}
	var cust *account
	select {
	case cust = <-l.g.free:
	default:
		l.flights.release()
		rec.mu.Lock()
		rec.dropped++
		rec.noCustomer++
		rec.mu.Unlock()
		return false
	}
	r := rand.New(rand.NewPCG(l.master.Uint64(), l.master.Uint64()))
	rec.mu.Lock()
	rec.launched++
	rec.inFlight++
	rec.mu.Unlock()
	l.flows.Go(func() {
		defer l.flights.release()
		defer rec.add(&rec.inFlight, -1)
		l.g.checkout(l.ctx, cust, r)
	})
	return true
}

// browse launches one catalog visit, or drops it (and counts it) without room.
func (l *launcher) browse() bool {
	rec := l.g.rec
	if !l.browsing.tryAcquire() {
		rec.add(&rec.browseDropped, 1)
		return false
	}
	rec.add(&rec.browseLaunched, 1)
	r := rand.New(rand.NewPCG(l.browseSeed.Uint64(), l.browseSeed.Uint64()))
	l.flows.Go(func() {
		defer l.browsing.release()
		l.g.browse(l.ctx, r)
	})
	return true
}

func (r *recorder) snapshotInFlight() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

// progressLoop writes a progress line every second until ctx ends.
func (g *gen) progressLoop(ctx context.Context, w io.Writer, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	prev := g.rec.snapshot()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p := g.rec.snapshot()
			fmt.Fprintf(w, "%5.0fs  launched %4d/s  completed %4d/s  confirmed %7d  errors %5d  in flight %4d  POST→confirmed p50 %s p99 %s\n",
				now.Sub(start).Seconds(), p.launched-prev.launched, p.completed-prev.completed, p.confirmed, p.errors, p.inFlight,
				fmtMS(p.confirmedP50), fmtMS(p.confirmedP99))
			prev = p
		}
	}
}

func fmtMS(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}

// browse sends one anonymous catalog request: a page of a category, a search or
// a product.
func (g *gen) browse(ctx context.Context, r *rand.Rand) {
	var req call
	switch n := r.IntN(10); {
	case n < 3:
		q := url.Values{"limit": {"20"}}
		if len(g.categories) > 0 && r.IntN(2) == 0 {
			q.Set("category", g.categories[r.IntN(len(g.categories))])
		}
		req = call{op: "list_products", method: http.MethodGet, path: "/v1/products?" + q.Encode()}
	case n < 6:
		q := url.Values{"limit": {"20"}, "q": {g.words[r.IntN(len(g.words))]}}
		req = call{op: "search_products", method: http.MethodGet, path: "/v1/products?" + q.Encode()}
	default:
		req = call{op: "get_product", method: http.MethodGet, path: "/v1/products/" + g.products[r.IntN(len(g.products))].ID}
	}
	_ = g.c.do(ctx, req, nil) // recorded by do
}

// checkout runs one checkout as cust: fill the cart, place the order, await its
// terminal status. cust goes back to the pool once the order is placed.
func (g *gen) checkout(ctx context.Context, cust *account, r *rand.Rand) {
	token := g.cfg.Tokens.Pick(r)
	released := false
	release := func() {
		if !released {
			released = true
			g.free <- cust
		}
	}
	defer release()
	outcome := func(err error) string { return outcomeOf(ctx, err) }

	if err := g.fillCart(ctx, cust, g.pick(r)); err != nil {
		g.rec.outcome(outcome(err), token, "", 0)
		return
	}
	placed, postedAt, err := g.placeOrder(ctx, cust, token)
	release() // the cart is spent (or left to the next checkout to set right)
	if err != nil {
		g.rec.outcome(outcome(err), token, "", 0)
		return
	}
	waitCtx, cancel := context.WithDeadline(ctx, postedAt.Add(g.cfg.OrderTimeout))
	defer cancel()
	final := placed
	if !placed.terminal() {
		if g.cfg.Await == AwaitPoll {
			final, err = g.awaitPoll(waitCtx, cust, placed.ID)
		} else {
			final, err = g.awaitSSE(waitCtx, cust, placed.ID)
		}
	}
	if err != nil {
		g.rec.outcome(outcome(err), token, "", 0)
		return
	}
	g.rec.outcome(final.Status, token, final.Reason, time.Since(postedAt))
}

// outcomeOf is how a flow that failed with err ended: interrupted when ctx (the
// flow's) ended, timed out when err is a deadline, failed otherwise.
func outcomeOf(ctx context.Context, err error) string {
	switch {
	case ctx.Err() != nil:
		return OutcomeInterrupted
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimedOut
	default:
		return OutcomeFailed
	}
}

// pick chooses 1 to MaxItems distinct products.
func (g *gen) pick(r *rand.Rand) []string {
	n := 1 + r.IntN(min(g.cfg.MaxItems, len(g.products)))
	ids := make([]string, 0, n)
	for _, i := range r.Perm(len(g.products))[:n] {
		ids = append(ids, g.products[i].ID)
	}
	return ids
}

type cartLine struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
}

type cart struct {
	Lines []cartLine `json:"lines"`
}

// fillCart makes cust's cart hold one unit of each of ids and nothing else.
func (g *gen) fillCart(ctx context.Context, cust *account, ids []string) (err error) {
	defer func() {
		if err != nil {
			cust.cartKnown = false // a request failed half-way: ask next time
		}
	}()
	if !cust.cartKnown {
		var c cart
		if err := g.c.authed(ctx, cust, call{op: "get_cart", method: http.MethodGet, path: "/v1/cart", resend: true}, &c); err != nil {
			return err
		}
		cust.cart = map[string]int64{}
		for _, l := range c.Lines {
			cust.cart[l.ProductID] = l.Quantity
		}
		cust.cartKnown = true
	}
	for id := range cust.cart {
		if !slices.Contains(ids, id) {
			if err := g.c.authed(ctx, cust, call{op: "delete_cart_item", method: http.MethodDelete, path: "/v1/cart/items/" + id, resend: true}, nil); err != nil {
				return err
			}
			delete(cust.cart, id)
		}
	}
	for _, id := range ids {
		if cust.cart[id] == 1 {
			continue
		}
		if err := g.c.authed(ctx, cust, call{op: "put_cart_item", method: http.MethodPut, path: "/v1/cart/items/" + id,
			body: map[string]int64{"quantity": 1}, resend: true}, nil); err != nil {
			return err
		}
		cust.cart[id] = 1
	}
	return nil
}

// maxPriceChanges bounds one checkout's 409 orders.price_changed answers: each
// time it looks at the cart and checks out again.
const maxPriceChanges = 3

// placeOrder posts the checkout. It returns the order and when the POST that
// created it was first sent. A POST that gets no answer or a 502/503/504 is sent
// again with the same Idempotency-Key (the order may or may not exist: the key
// makes the resend safe), through a restart, for up to Config.RetryFor.
func (g *gen) placeOrder(ctx context.Context, cust *account, token string) (order, time.Time, error) {
	for changes := 0; ; changes++ {
		key := uuid.NewString()
		postedAt := time.Now()
		var o order
		err := g.c.authed(ctx, cust, call{op: "place_order", method: http.MethodPost, path: "/v1/orders",
			header: http.Header{"Idempotency-Key": {key}}, resend: true,
			body: map[string]string{"payment_token": token}, expect: []int{http.StatusConflict}}, &o)
		switch {
		case err == nil:
			cust.cart, cust.cartKnown = map[string]int64{}, true // checkout empties the cart
			if o.ID == "" {
				g.rec.fail("place_order", "bad_response", "the answer has no order id")
				return order{}, postedAt, errors.New("place_order: the answer has no order id")
			}
			return o, postedAt, nil
		case problemIs(err, "orders.price_changed") && changes < maxPriceChanges:
			g.rec.add(&g.rec.priceChanged, 1)
			// Viewing the cart acknowledges the new prices.
			if err := g.c.authed(ctx, cust, call{op: "get_cart", method: http.MethodGet, path: "/v1/cart", resend: true}, nil); err != nil {
				return order{}, postedAt, err
			}
			continue
		case statusOf(err) == http.StatusConflict:
			var ae *apiError
			errors.As(err, &ae)
			g.rec.fail("place_order", "409", ae.Error())
		}
		cust.cartKnown = false
		return order{}, postedAt, err
	}
}

// awaitPoll reads the order until it is terminal.
func (g *gen) awaitPoll(ctx context.Context, cust *account, id string) (order, error) {
	for {
		var o order
		err := g.c.authed(ctx, cust, call{op: "get_order", method: http.MethodGet, path: "/v1/orders/" + id}, &o)
		if err == nil && o.terminal() {
			return o, nil
		}
		if st := statusOf(err); st >= 400 && st < 500 && st != http.StatusTooManyRequests {
			return order{}, err // asking again will not help
		}
		if err := sleep(ctx, g.cfg.PollInterval); err != nil {
			return order{}, err
		}
	}
}

// awaitSSE follows the order's event stream until an event shows it terminal,
// connecting again (after a short backoff) when the stream ends before that.
func (g *gen) awaitSSE(ctx context.Context, cust *account, id string) (order, error) {
	lastID := ""
	backoff := 50 * time.Millisecond
	for {
		o, err := g.streamOnce(ctx, cust, id, &lastID)
		if err == nil && o.terminal() {
			return o, nil
		}
		if ctx.Err() != nil {
			return order{}, ctx.Err()
		}
		if st := statusOf(err); st >= 400 && st < 500 && st != http.StatusTooManyRequests && st != http.StatusUnauthorized {
			return order{}, err
		}
		if err == nil {
			backoff = 50 * time.Millisecond // the server closed a healthy stream
		}
		if err := sleep(ctx, backoff); err != nil {
			return order{}, err
		}
		if err != nil {
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// streamOnce reads one connection of the order's event stream. It returns the
// first terminal order it sees, or the last order when the stream ends.
func (g *gen) streamOnce(ctx context.Context, cust *account, id string, lastID *string) (order, error) {
	var header http.Header
	if *lastID != "" {
		header = http.Header{"Last-Event-ID": {*lastID}}
	}
	body, err := g.c.openEvents(ctx, cust, "order_events", "/v1/orders/"+id+"/events", header)
	if err != nil {
		return order{}, err
	}
	defer body.Close()
	sr := newSSEReader(body)
	var last order
	for {
		ev, err := sr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return last, nil
			}
			return last, g.c.failed(ctx, ctx, "order_events", err)
		}
		*lastID = ev.ID
		var o order
		if json.Unmarshal([]byte(ev.Data), &o) != nil || o.Status == "" {
			continue // not an order: a keep-alive or an event this generator does not know
		}
		last = o
		if o.terminal() {
			return o, nil
		}
	}
}

// restockLoop keeps the products in stock until ctx ends.
func (g *gen) restockLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.Restock.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.restockPass(ctx)
		}
	}
}

// restockPass reads every product's stock and restocks those below the
// threshold. It returns how many it restocked.
func (g *gen) restockPass(ctx context.Context) int {
	n := 0
	for _, p := range g.products {
		if ctx.Err() != nil {
			return n
		}
		var item struct {
			Available int64 `json:"available"`
		}
		sku := url.PathEscape(p.SKU)
		// 404: inventory does not know the product (yet); nothing to restock.
		err := g.c.authed(ctx, g.admin, call{op: "get_inventory", method: http.MethodGet, path: "/v1/inventory/" + sku,
			expect: []int{http.StatusNotFound}}, &item)
		if err != nil || item.Available >= g.cfg.Restock.Below {
			continue
		}
		err = g.c.authed(ctx, g.admin, call{op: "restock", method: http.MethodPost, path: "/v1/inventory/" + sku + "/adjustments",
			body: map[string]any{"delta": g.cfg.Restock.Amount, "reason": "loadgen restock"}}, nil)
		if err == nil {
			n++
			g.c.rec.add(&g.c.rec.restocks, 1)
		}
	}
	return n
}

// lockedWriter serialises writes, so progress lines do not interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
