package sagafaults_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"pgregory.net/rapid"

	"github.com/agora-commerce/agora/internal/app"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/faults"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/notifications"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/payments"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// databaseURL returns the database URL of a shop on be: none for SQLite files, a
// fresh PostgreSQL database (each module makes its own schema in it).
func databaseURL(t *testing.T, be testdb.Backend) string {
	if be == testdb.SQLite {
		return ""
	}
	return testdb.FreshDatabase(t, testdb.PostgresURL(t), "sagafaults_")
}

// shop is every module of the registry in one process on SQLite or PostgreSQL — the real
// orders, inventory (its reservations), payments (the simulated provider) and
// notifications — with fault injection allowed.
type shop struct {
	b   *bus.Bus
	inj *faults.Injector
}

func newShop(t *testing.T, databaseURL string, settings map[string]string, extra ...fx.Option) *shop {
	mods := configured(t, settings)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = databaseURL
	cfg.Modules = modhost.Names(app.Modules())
	cfg.HTTPModules = cfg.Modules
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.AllowFaults = true
	s := &shop{}
	opts := append([]fx.Option{app.Options(cfg, mods, slog.New(slog.DiscardHandler)), fx.Populate(&s.b, &s.inj)}, extra...)
	a := fxtest.New(t, opts...)
	a.RequireStart()
	t.Cleanup(a.RequireStop)
	return s
}

// configured returns the registry's modules with their settings changed as the
// command line would change them (by flag name).
func configured(t *testing.T, settings map[string]string) []modhost.Module {
	mods := app.Modules()
	for name, value := range settings {
		found := false
		for _, m := range mods {
			for _, f := range m.Flags {
				if s, ok := f.(interface{ Set(string, string) error }); ok && slices.Contains(f.Names(), name) {
					if err := s.Set(name, value); err != nil {
						t.Fatalf("--%s=%s: %v", name, value, err)
					}
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("no module has the setting --%s", name)
		}
	}
	return mods
}

// again calls r until an answer that is not a lost request (a fault may lose it),
// or ctx ends.
func again[Req, Resp any](ctx context.Context, b *bus.Bus, r message.Request[Req, Resp], req Req) (Resp, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := bus.Call(cctx, b, r, req)
		cancel()
		lost := errors.Is(err, message.ErrTimeout) || errors.Is(err, message.ErrOverloaded)
		if !lost || ctx.Err() != nil {
			return resp, err
		}
	}
}

// product creates a product with stock units on hand.
func (s *shop) product(ctx context.Context, sku string, price, stock int64) (catalog.Product, error) {
	p, err := again(ctx, s.b, catalog.CreateProductRequest, catalog.CreateProduct{SKU: sku, Name: "Thing " + sku,
		Price: catalog.Money{Amount: price, Currency: "EUR"}, Status: catalog.StatusActive})
	if err != nil {
		return p, fmt.Errorf("create %s: %w", sku, err)
	}
	for { // inventory learns the product from catalog.ProductCreated
		_, err = again(ctx, s.b, inventory.AdjustRequest, inventory.Adjust{SKU: sku, Delta: stock, Reason: "received", Actor: "test"})
		if !errors.Is(err, inventory.ErrItemNotFound) {
			return p, err
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// checkout is one customer's order: quantities per product, a card.
type checkout struct {
	customer string
	qty      []int64 // per product; 0: not in the cart
	token    string
	cancel   bool // the customer cancels the order (pending or confirmed)
}

// place fills the customer's cart and checks it out with one idempotency key,
// asking again (as a client would) while the requests are lost.
func (s *shop) place(ctx context.Context, c checkout, products []catalog.Product) (orders.Order, error) {
	for i, q := range c.qty {
		if q == 0 {
			continue
		}
		if _, err := again(ctx, s.b, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: c.customer, ProductID: products[i].ID, Quantity: q}); err != nil {
			return orders.Order{}, fmt.Errorf("cart: %w", err)
		}
	}
	key := bus.NewID()
	placed, err := again(ctx, s.b, orders.PlaceOrderRequest, orders.PlaceOrder{CustomerID: c.customer, PaymentToken: c.token,
		IdempotencyKey: key, RequestHash: "h-" + key})
	if err != nil {
		return orders.Order{}, fmt.Errorf("place: %w", err)
	}
	if !c.cancel {
		return placed.Order, nil
	}
	for {
		o, err := again(ctx, s.b, orders.GetOrderRequest, orders.GetOrder{ID: placed.Order.ID})
		if err != nil || o.Status == orders.StatusCancelled {
			return o, err
		}
		if o.Status == orders.StatusConfirmed || o.Status == orders.StatusPending {
			_, err = again(ctx, s.b, orders.CancelOrderRequest, orders.CancelOrder{ID: o.ID, Actor: c.customer})
			if err == nil || !errors.Is(err, orders.ErrNotCancellable) {
				return o, err
			}
		} else {
			return o, nil // rejected: nothing to cancel
		}
	}
}

// drawSchedule draws a fault schedule: a seed and one to four rules, each on
// one module's messages or everyone's, hitting at most half of them (at 80% loss
// of every request — and of the requests a handler makes — a customer asking
// again did not get one item into a cart within 90s).
func drawSchedule(t *rapid.T) faults.Schedule {
	targets := []faults.Rule{{}, {Type: "inventory."}, {Type: "payments."}, {Type: "orders."}, {Type: "catalog."},
		{Module: "orders"}, {Module: "inventory"}, {Module: "payments"}, {Module: "notifications"}}
	s := faults.Schedule{Seed: rapid.Uint64().Draw(t, "seed")}
	for i := range rapid.IntRange(1, 4).Draw(t, "rules") {
		r := rapid.SampledFrom(targets).Draw(t, fmt.Sprintf("rule %d selects", i))
		r.Kind = rapid.SampledFrom(bus.FaultKinds).Draw(t, fmt.Sprintf("rule %d kind", i))
		r.Probability = float64(rapid.IntRange(5, 50).Draw(t, fmt.Sprintf("rule %d percent", i))) / 100
		r.DelayMS = rapid.Int64Range(1, 600).Draw(t, fmt.Sprintf("rule %d delay", i))
		s.Rules = append(s.Rules, r)
	}
	return s
}

func drawCheckouts(t *rapid.T, products int) []checkout {
	var out []checkout
	for i := range rapid.IntRange(1, 6).Draw(t, "checkouts") {
		c := checkout{customer: bus.NewID(), qty: make([]int64, products),
			token:  rapid.SampledFrom([]string{"tok_visa", "tok_visa", "tok_decline", "tok_insufficient_funds"}).Draw(t, fmt.Sprintf("checkout %d card", i)),
			cancel: rapid.IntRange(0, 4).Draw(t, fmt.Sprintf("checkout %d cancel", i)) == 4}
		first := rapid.IntRange(0, products-1).Draw(t, fmt.Sprintf("checkout %d product", i))
		c.qty[first] = rapid.Int64Range(1, 2).Draw(t, fmt.Sprintf("checkout %d quantity", i))
		if other := rapid.IntRange(-1, products-1).Draw(t, fmt.Sprintf("checkout %d other product", i)); other >= 0 && other != first {
			c.qty[other] = 1
		}
		out = append(out, c)
	}
	return out
}

// checksOnCommandLine reports whether -rapid.checks was given (asked before
// setChecks sets it, which flag.Visit could not tell apart).
var checksOnCommandLine = sync.OnceValue(func() bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	return set
})

// setChecks makes rapid run n checks unless -rapid.checks says otherwise.
func setChecks(t *testing.T, n int) {
	if !checksOnCommandLine() {
		prev := flag.Lookup("rapid.checks").Value.String()
		_ = flag.Set("rapid.checks", fmt.Sprint(n))
		t.Cleanup(func() { _ = flag.Set("rapid.checks", prev) })
	}
}

// TestCheckoutSagaUnderRandomFaults drives the real checkout saga through random
// fault schedules — delays, lost requests and deliveries, duplicates, reorders and
// crashes after the effect — and checks, once everything settled, that every order
// is final, confirmed ones were captured once and their stock committed, nothing
// is held or charged for the others, stock is conserved and every final order has
// one notification.
func TestCheckoutSagaUnderRandomFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("property test: runs the whole shop many times")
	}
	checks := map[testdb.Backend]int{testdb.SQLite: 20, testdb.Postgres: 10}
	for _, be := range testdb.Backends {
		t.Run(string(be), func(t *testing.T) {
			// A short step timeout, so that faults that hold messages back make steps
			// time out, be sent again and be compensated while late answers arrive.
			s := newShop(t, databaseURL(t, be), map[string]string{"saga-step-timeout": "400ms"})
			setChecks(t, checks[be])
			run := 0
			rapid.Check(t, func(rt *rapid.T) {
				run++
				s.checkOnce(rt, run)
			})
			t.Logf("%d checks; faults injected %v", run, s.inj.Injected())
		})
	}
}

// checkOnce is one check of the property: fresh products, checkouts and a fault
// schedule drawn, the checkouts run, the world settled and its invariants checked.
func (s *shop) checkOnce(rt *rapid.T, run int) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := s.inj.Set(faults.Schedule{}); err != nil {
		rt.Fatal(err)
	}
	stock := rapid.SliceOfN(rapid.Int64Range(1, 4), 1, 3).Draw(rt, "stock")
	products := make([]catalog.Product, len(stock))
	for i, n := range stock {
		p, err := s.product(ctx, fmt.Sprintf("FLT-%d-%d-%d", time.Now().UnixNano()%1e6, run, i), 500+int64(i)*100, n)
		if err != nil {
			rt.Fatal(err)
		}
		products[i] = p
	}
	plan := drawCheckouts(rt, len(products))
	if err := s.inj.Set(drawSchedule(rt)); err != nil {
		rt.Fatal(err)
	}
	placed := s.placeAll(ctx, rt, plan, products)
	w := s.settle(ctx, rt, placed, products)
	for _, v := range w.violations(plan, stock) {
		rt.Error(v)
	}
	rt.Logf("check %d: orders %v", run, statuses(w.orders))
}

// placeAll runs the checkouts concurrently and returns their orders.
func (s *shop) placeAll(ctx context.Context, rt *rapid.T, plan []checkout, products []catalog.Product) []orders.Order {
	out := make([]orders.Order, len(plan))
	errs := make([]error, len(plan))
	var wg sync.WaitGroup
	for i, c := range plan {
		wg.Go(func() { out[i], errs[i] = s.place(ctx, c, products) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		rt.Fatalf("checkout: %v", err)
	}
	return out
}

// world is what the modules say about one check's orders and products once they settled.
type world struct {
	orders   []orders.Order
	sagas    []orders.Saga
	payments []payments.Payment // zero when there is none (nothing was authorized)
	notes    [][]notifications.Notification
	items    []inventory.Item
}

// settled reports what still moves: a saga not ended, stock still reserved, a
// payment still held or being asked, a final order without its notification.
func (w *world) settled() string {
	for i, s := range w.sagas {
		switch {
		case !slices.Contains([]orders.SagaState{orders.SagaCompleted, orders.SagaRejected, orders.SagaCancelled}, s.State):
			return fmt.Sprintf("order %s: saga %s", w.orders[i].ID, s.State)
		case w.payments[i].Status == payments.StatusAuthorizing || w.payments[i].Status == payments.StatusAuthorized:
			return fmt.Sprintf("order %s (%s): payment %s", w.orders[i].ID, w.orders[i].Status, w.payments[i].Status)
		case noteCount(w.notes[i], w.orders[i].ID)["order_"+string(w.orders[i].Status)] == 0:
			return fmt.Sprintf("order %s (%s): no notification", w.orders[i].ID, w.orders[i].Status)
		case w.orders[i].Status == orders.StatusCancelled && w.payments[i].Status == payments.StatusCaptured:
			return fmt.Sprintf("order %s cancelled: payment captured, not refunded", w.orders[i].ID)
		}
	}
	for _, it := range w.items {
		if it.Reserved != 0 {
			return fmt.Sprintf("item %s: %d reserved", it.SKU, it.Reserved)
		}
	}
	return ""
}

// noteCount counts order's notifications by kind.
func noteCount(notes []notifications.Notification, order string) map[string]int {
	out := map[string]int{}
	for _, n := range notes {
		if n.OrderID == order {
			out[n.Kind]++
		}
	}
	return out
}

// settle waits until nothing moves any more (faults still on: they hold each
// message back a few times at most) and returns the world then.
func (s *shop) settle(ctx context.Context, rt *rapid.T, placed []orders.Order, products []catalog.Product) *world {
	w, err := s.settleWithin(ctx, placed, products)
	if err != nil {
		rt.Fatal(err)
	}
	return w
}

// settleWithin is settle, with an error for what still moved when ctx ended.
func (s *shop) settleWithin(ctx context.Context, placed []orders.Order, products []catalog.Product) (*world, error) {
	for {
		w, err := s.look(ctx, placed, products)
		if err == nil && w.settled() == "" {
			return w, nil
		}
		if ctx.Err() != nil {
			what := "?"
			if w != nil {
				what = w.settled()
			}
			return nil, fmt.Errorf("not settled: %s (last error %v; injected %v)", what, err, s.inj.Injected())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// look asks every module about the orders and products.
func (s *shop) look(ctx context.Context, placed []orders.Order, products []catalog.Product) (*world, error) {
	w := &world{}
	for _, o := range placed {
		got, err := again(ctx, s.b, orders.GetOrderRequest, orders.GetOrder{ID: o.ID})
		if err != nil {
			return nil, err
		}
		saga, err := again(ctx, s.b, orders.GetSagaRequest, orders.GetSaga{OrderID: o.ID})
		if err != nil {
			return nil, err
		}
		pay, err := again(ctx, s.b, payments.GetPaymentRequest, payments.GetPayment{PayableID: o.ID})
		if err != nil && !errors.Is(err, payments.ErrPaymentNotFound) {
			return nil, err
		}
		notes, err := again(ctx, s.b, notifications.ListNotificationsRequest, notifications.ListNotifications{CustomerID: o.CustomerID, Limit: 20})
		if err != nil {
			return nil, err
		}
		w.orders, w.sagas, w.payments = append(w.orders, got), append(w.sagas, saga), append(w.payments, pay)
		w.notes = append(w.notes, notes.Items)
	}
	for _, p := range products {
		it, err := again(ctx, s.b, inventory.GetItemRequest, inventory.GetItem{SKU: p.SKU})
		if err != nil {
			return nil, err
		}
		w.items = append(w.items, it)
	}
	return w, nil
}

// violations returns every invariant a settled world breaks.
func (w *world) violations(plan []checkout, stock []int64) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	sold := make([]int64, len(stock))
	for i, o := range w.orders {
		pay := w.payments[i]
		switch o.Status {
		case orders.StatusConfirmed:
			if pay.Captured != o.Total.Amount || pay.Refunded != 0 {
				bad("order %s confirmed for %d: captured %d, refunded %d", o.ID, o.Total.Amount, pay.Captured, pay.Refunded)
			}
			if plan[i].token != "tok_visa" {
				bad("order %s confirmed with the card %s", o.ID, plan[i].token)
			}
			for k, q := range plan[i].qty {
				sold[k] += q
			}
		case orders.StatusRejected, orders.StatusCancelled:
			if pay.Captured-pay.Refunded != 0 || pay.Status == payments.StatusAuthorized {
				bad("order %s %s: payment %s, captured %d, refunded %d", o.ID, o.Status, pay.Status, pay.Captured, pay.Refunded)
			}
		default:
			bad("order %s is %s", o.ID, o.Status)
		}
		if pay.Captured > o.Total.Amount {
			bad("order %s charged %d for a total of %d", o.ID, pay.Captured, o.Total.Amount)
		}
		// The ledger: each step of a payment once (one authorization, one capture,
		// one void, one refund — the cancellation's), and its totals its entries'.
		entries, sums := map[string]int{}, map[string]int64{}
		for _, e := range pay.Entries {
			entries[e.Kind]++
			sums[e.Kind] += e.Amount.Amount
		}
		for kind, n := range entries {
			if n > 1 {
				bad("order %s %s: %d %s entries in the payment's ledger", o.ID, o.Status, n, kind)
			}
		}
		if sums["captured"] != pay.Captured || sums["refunded"] != pay.Refunded {
			bad("order %s: captured %d and refunded %d, but the ledger says %v", o.ID, pay.Captured, pay.Refunded, sums)
		}
		// One per status the order reached: confirmed (then perhaps cancelled), or
		// rejected, or cancelled; and one per refund.
		for kind, n := range noteCount(w.notes[i], o.ID) {
			if n != 1 {
				bad("order %s %s: %d notifications %s", o.ID, o.Status, n, kind)
			}
		}
	}
	for k, it := range w.items {
		if it.Reserved != 0 || it.OnHand+sold[k] != stock[k] || it.Available != it.OnHand {
			bad("item %s: %d on hand, %d reserved, %d available; %d sold of %d", it.SKU, it.OnHand, it.Reserved, it.Available, sold[k], stock[k])
		}
	}
	return out
}

func statuses(os []orders.Order) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = string(o.Status)
		if o.Reason != "" {
			out[i] += " (" + o.Reason + ")"
		}
	}
	return out
}

// naiveNotifier tells customers of confirmed orders without an inbox: a handler
// that is not idempotent, as the checker must notice.
type naiveNotifier struct {
	mu    sync.Mutex
	notes []notifications.Notification
}

func (n *naiveNotifier) subscription() bus.Subscription {
	return bus.Subscription{Type: orders.OrderConfirmedEvent.Name(), Consumer: "audit.naive", Handle: func(_ context.Context, env message.Envelope) error {
		var m orders.OrderConfirmed
		if err := json.Unmarshal(env.Payload, &m); err != nil {
			return err
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		n.notes = append(n.notes, notifications.Notification{OrderID: m.Order.ID, Kind: "order_confirmed"})
		return nil
	}}
}

// The checker catches a handler that is not idempotent: under duplicated
// deliveries the naive notifier tells a customer twice, while the notifications
// module's inbox drops the copy.
func TestTheCheckerCatchesANonIdempotentHandler(t *testing.T) {
	naive := &naiveNotifier{}
	s := newShop(t, "", nil, fx.Provide(fx.Annotate(naive.subscription, fx.ResultTags(`group:"bus.subscriptions"`))))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := s.product(ctx, "NAIVE-1", 700, 3)
	if err != nil {
		t.Fatal(err)
	}
	sched, _ := faults.Parse("duplicate type=orders.OrderConfirmed")
	if err := s.inj.Set(sched); err != nil {
		t.Fatal(err)
	}
	plan := []checkout{{customer: bus.NewID(), qty: []int64{1}, token: "tok_visa"}}
	o, err := s.place(ctx, plan[0], []catalog.Product{p})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.settleWithin(ctx, []orders.Order{o}, []catalog.Product{p})
	if err != nil {
		t.Fatal(err)
	}
	if v := w.violations(plan, []int64{3}); len(v) != 0 {
		t.Fatalf("the real modules broke invariants: %v", v)
	}
	naive.mu.Lock()
	w.notes[0] = slices.Clone(naive.notes)
	naive.mu.Unlock()
	v := w.violations(plan, []int64{3})
	if len(v) != 1 || !strings.Contains(v[0], "2 notifications order_confirmed") {
		t.Errorf("violations with the naive notifier: %q, want its second notification", v)
	}
}
