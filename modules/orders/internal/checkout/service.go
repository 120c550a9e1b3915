// Package checkout is the orders module's domain: carts priced through the catalog,
// checkout with idempotency keys, and the driver of the checkout saga — the message
// handlers and the timeout sweep that feed the saga state machine (package saga) and
// store what it decides together with the messages it sends, in one transaction.
package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
)

// Catalog prices products: it answers catalog.GetProducts.
type Catalog interface {
	GetProducts(ctx context.Context, ids []string) ([]catalog.Product, error)
}

// BusCatalog asks the catalog over a bus bound after construction: the bus is built
// from this module's handlers, so it cannot exist before them.
type BusCatalog struct{ b atomic.Pointer[bus.Bus] }

// Bind sets the bus to ask.
func (c *BusCatalog) Bind(b *bus.Bus) { c.b.Store(b) }

// GetProducts asks catalog.GetProducts.
func (c *BusCatalog) GetProducts(ctx context.Context, ids []string) ([]catalog.Product, error) {
	b := c.b.Load()
	if b == nil {
		return nil, message.ErrNoHandler.Withf("the orders module is not started")
	}
	ps, err := bus.Call(ctx, b, catalog.GetProductsRequest, catalog.GetProducts{IDs: ids})
	return ps.Products, err
}

// Options tunes the service. Zero values take the defaults.
type Options struct {
	Timing       saga.Timing   // default: 30s steps, 3 attempts, 15m reservations
	SweepEvery   time.Duration // how often the timeout sweep looks for sagas past their deadline (default 500ms)
	PollInterval time.Duration // how often WaitOrder re-reads the order, for changes made by other replicas (default 2s)
	MaxWait      time.Duration // the longest WaitOrder waits (default 25s)
	KeyRetention time.Duration // how long checkout idempotency keys are kept (default 7 days)
	// SagaEnded, if set, is called once a saga's move to a terminal state has
	// committed, with that state and the saga's age (for metrics).
	SagaEnded func(state orders.SagaState, took time.Duration)
}

func (o Options) withDefaults() Options {
	if o.Timing.StepTimeout <= 0 {
		o.Timing.StepTimeout = 30 * time.Second
	}
	if o.Timing.MaxAttempts <= 0 {
		o.Timing.MaxAttempts = 3
	}
	if o.Timing.ReservationTTL <= 0 {
		o.Timing.ReservationTTL = 15 * time.Minute
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 500 * time.Millisecond
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 25 * time.Second
	}
	if o.KeyRetention <= 0 {
		o.KeyRetention = 7 * 24 * time.Hour
	}
	return o
}

// Service handles the orders module's requests and the saga's messages.
type Service struct {
	db      *store.DB
	outbox  *outbox.Outbox
	catalog Catalog
	repo    Repo
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	changes notifier
	sweep   *jobs.Worker[dueSaga]
}

// NewService returns the orders service on db, sending through ob and pricing with cat.
func NewService(db *store.DB, ob *outbox.Outbox, cat Catalog, opts Options, log *slog.Logger) *Service {
	s := &Service{db: db, outbox: ob, catalog: cat, repo: Repo{dialect: db.Dialect}, opts: opts.withDefaults(), log: log,
		now:     func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		changes: notifier{waiters: map[string]*waiter{}}}
	s.sweep = s.newSweep()
	return s
}

// Handlers returns the service's request handlers, for the bus.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(orders.GetCartRequest, s.GetCart),
		bus.Handle(orders.SetCartItemRequest, s.SetCartItem),
		bus.Handle(orders.RemoveCartItemRequest, s.RemoveCartItem),
		bus.Handle(orders.PlaceOrderRequest, s.PlaceOrder),
		bus.Handle(orders.GetOrderRequest, s.GetOrder),
		bus.Handle(orders.WaitOrderRequest, s.WaitOrder),
		bus.Handle(orders.ListOrdersRequest, s.ListOrders),
		bus.Handle(orders.CancelOrderRequest, s.CancelOrder),
		bus.Handle(orders.RefundOrderRequest, s.RefundOrder),
		bus.Handle(orders.ListSagasRequest, s.ListSagas),
		bus.Handle(orders.GetSagaRequest, s.GetSaga),
	}
}

// Limits on free text.
const (
	maxIDLen     = 64
	maxReasonLen = 500
	maxHashLen   = 128
)

func invalid(field, format string, args ...any) error {
	return orders.ErrInvalidInput.Withf(format, args...).OnField(field)
}

func checkCustomer(id string) error {
	if id == "" || len(id) > maxIDLen {
		return orders.ErrInvalidInput.Withf("a customer id is required")
	}
	return nil
}

func checkProductID(id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return invalid("path.product_id", "product ids are UUIDs")
	}
	return nil
}

// printable reports whether s is valid UTF-8 made of printable characters only.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func checkText(field, s string, max int) error {
	if utf8.RuneCountInString(s) > max || !printable(s) {
		return invalid(field, "at most %d printable characters", max)
	}
	return nil
}

// ---- carts ----

// pricedLine is a cart line and what the catalog says of it now.
type pricedLine struct {
	cartLine
	current     orders.Money // the price now (the seen one when unavailable)
	name        string
	unavailable string // why it cannot be bought; empty when it can
	changed     bool   // the price differs from the one the customer saw
}

// price asks the catalog, in one request, for every product of lines.
func (s *Service) price(ctx context.Context, lines []cartLine) ([]pricedLine, error) {
	out := make([]pricedLine, len(lines))
	if len(lines) == 0 {
		return out, nil
	}
	ids := make([]string, len(lines))
	for i, l := range lines {
		ids[i] = l.ProductID
	}
	ps, err := s.catalog.GetProducts(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]catalog.Product, len(ps))
	for _, p := range ps {
		byID[p.ID] = p
	}
	for i, l := range lines {
		pl := pricedLine{cartLine: l, current: l.seen(), name: l.Name}
		p, ok := byID[l.ProductID]
		switch {
		case !ok || p.Status != catalog.StatusActive:
			pl.unavailable = fmt.Sprintf("%s is no longer for sale; remove it from your cart.", l.Name)
		case p.Price.Currency != l.SeenCurrency:
			pl.name = p.Name
			pl.unavailable = fmt.Sprintf("%s is now sold in %s only, not in the cart's currency; remove it from your cart.", p.Name, p.Price.Currency)
		default:
			pl.name = p.Name
			pl.current = orders.Money(p.Price)
			pl.changed = p.Price.Amount != l.SeenAmount
		}
		out[i] = pl
	}
	return out, nil
}

// view builds the cart a customer sees from its priced lines.
func view(c cart, lines []pricedLine) orders.Cart {
	out := orders.Cart{CustomerID: c.CustomerID, Lines: make([]orders.CartLine, 0, len(lines)), Version: c.Version, UpdatedAt: c.UpdatedAt}
	for _, l := range lines {
		line := orders.CartLine{ProductID: l.ProductID, SKU: l.SKU, Name: l.name, UnitPrice: l.current, Quantity: l.Quantity,
			LineTotal: orders.Money{Amount: l.current.Amount * l.Quantity, Currency: l.current.Currency}}
		out.Total.Currency = l.SeenCurrency
		switch {
		case l.unavailable != "":
			line.Unavailable = true
			out.Notices = append(out.Notices, l.unavailable)
		case l.changed:
			prev := l.seen()
			line.PreviousPrice = &prev
			out.Notices = append(out.Notices, fmt.Sprintf("The price of %s changed from %s to %s.", l.name, formatMoney(prev), formatMoney(l.current)))
		}
		if !line.Unavailable {
			out.Total.Amount += line.LineTotal.Amount
		}
		out.Lines = append(out.Lines, line)
	}
	return out
}

// zeroDecimal lists the ISO 4217 currencies that have no minor unit.
var zeroDecimal = map[string]bool{"BIF": true, "CLP": true, "DJF": true, "GNF": true, "ISK": true, "JPY": true,
	"KMF": true, "KRW": true, "PYG": true, "RWF": true, "UGX": true, "UYI": true, "VND": true, "VUV": true,
	"XAF": true, "XOF": true, "XPF": true}

// formatMoney writes m for people: "19.99 EUR".
func formatMoney(m orders.Money) string {
	if zeroDecimal[m.Currency] {
		return fmt.Sprintf("%d %s", m.Amount, m.Currency)
	}
	return fmt.Sprintf("%d.%02d %s", m.Amount/100, m.Amount%100, m.Currency)
}

// markSeen records in one transaction that the customer has now seen the current
// price of every changed line, and returns the cart's new version.
func (s *Service) markSeen(ctx context.Context, customerID string, lines []pricedLine) (int64, time.Time, error) {
	var version int64
	var at time.Time
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		if _, err := s.repo.GetCart(ctx, tx, customerID, true); err != nil {
			return err
		}
		for _, l := range lines {
			if l.changed || (l.unavailable == "" && l.name != l.Name) {
				if err := s.repo.SetSeen(ctx, tx, customerID, l.ProductID, l.name, l.current); err != nil {
					return err
				}
			}
		}
		at = s.now()
		if err := s.repo.BumpCart(ctx, tx, customerID, at); err != nil {
			return err
		}
		c, err := s.repo.GetCart(ctx, tx, customerID, false)
		version = c.Version
		return err
	})
	return version, at, err
}

// GetCart answers orders.GetCart: the cart priced now. Prices that changed since the
// customer last looked come with their previous price and a notice, and are
// recorded as seen.
func (s *Service) GetCart(ctx context.Context, q orders.GetCart) (orders.Cart, error) {
	if err := checkCustomer(q.CustomerID); err != nil {
		return orders.Cart{}, err
	}
	c, err := s.repo.GetCart(ctx, s.db, q.CustomerID, false)
	if err != nil {
		return orders.Cart{}, err
	}
	lines, err := s.price(ctx, c.Lines)
	if err != nil {
		return orders.Cart{}, err
	}
	out := view(c, lines)
	for _, l := range lines {
		if l.changed || (l.unavailable == "" && l.name != l.Name) {
			out.Version, out.UpdatedAt, err = s.markSeen(ctx, q.CustomerID, lines)
			if err != nil {
				return orders.Cart{}, err
			}
			break
		}
	}
	return out, nil
}

// SetCartItem answers orders.SetCartItem.
func (s *Service) SetCartItem(ctx context.Context, c orders.SetCartItem) (orders.Cart, error) {
	if err := checkCustomer(c.CustomerID); err != nil {
		return orders.Cart{}, err
	}
	if err := checkProductID(c.ProductID); err != nil {
		return orders.Cart{}, err
	}
	if c.Quantity < 1 || c.Quantity > orders.MaxQuantity {
		return orders.Cart{}, invalid("body.quantity", "the quantity is between 1 and %d", orders.MaxQuantity)
	}
	ps, err := s.catalog.GetProducts(ctx, []string{c.ProductID})
	if err != nil {
		return orders.Cart{}, err
	}
	if len(ps) != 1 || ps[0].ID != c.ProductID || ps[0].Status != catalog.StatusActive {
		return orders.Cart{}, orders.ErrProductUnavailable.Withf("product %s is not for sale", c.ProductID).OnField("path.product_id")
	}
	p := ps[0]
	err = store.InTx(ctx, s.db, func(tx *store.Tx) error {
		cur, err := s.repo.GetCart(ctx, tx, c.CustomerID, true)
		if err != nil {
			return err
		}
		line := cartLine{ProductID: p.ID, SKU: p.SKU, Name: p.Name, Quantity: c.Quantity,
			SeenAmount: p.Price.Amount, SeenCurrency: p.Price.Currency, AddedAt: micros(s.now())}
		present := false
		for _, l := range cur.Lines {
			if l.ProductID == p.ID {
				present, line.AddedAt = true, l.AddedAt
			} else if l.SeenCurrency != p.Price.Currency {
				return orders.ErrCurrencyMismatch.Withf("%s is priced in %s; the cart holds products priced in %s",
					p.Name, p.Price.Currency, l.SeenCurrency).OnField("path.product_id")
			}
		}
		if !present && len(cur.Lines) >= orders.MaxCartLines {
			return orders.ErrCartFull.Withf("a cart holds at most %d products", orders.MaxCartLines)
		}
		if err := s.repo.PutLine(ctx, tx, c.CustomerID, line); err != nil {
			return err
		}
		return s.repo.BumpCart(ctx, tx, c.CustomerID, s.now())
	})
	if err != nil {
		return orders.Cart{}, err
	}
	return s.GetCart(ctx, orders.GetCart{CustomerID: c.CustomerID})
}

// RemoveCartItem answers orders.RemoveCartItem; removing a product that is not in
// the cart changes nothing.
func (s *Service) RemoveCartItem(ctx context.Context, c orders.RemoveCartItem) (orders.Cart, error) {
	if err := checkCustomer(c.CustomerID); err != nil {
		return orders.Cart{}, err
	}
	if err := checkProductID(c.ProductID); err != nil {
		return orders.Cart{}, err
	}
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		if _, err := s.repo.GetCart(ctx, tx, c.CustomerID, true); err != nil {
			return err
		}
		removed, err := s.repo.DeleteLine(ctx, tx, c.CustomerID, c.ProductID)
		if err != nil || !removed {
			return err
		}
		return s.repo.BumpCart(ctx, tx, c.CustomerID, s.now())
	})
	if err != nil {
		return orders.Cart{}, err
	}
	return s.GetCart(ctx, orders.GetCart{CustomerID: c.CustomerID})
}

// ---- checkout ----

// errCartChanged: the cart changed between pricing and storing the order.
var errCartChanged = errors.New("orders: cart changed during checkout")

// PlaceOrder answers orders.PlaceOrder: the cart, priced now, becomes a pending
// order whose saga starts at once. Only a successful checkout is remembered under
// its idempotency key.
func (s *Service) PlaceOrder(ctx context.Context, p orders.PlaceOrder) (orders.PlacedOrder, error) {
	if err := checkCustomer(p.CustomerID); err != nil {
		return orders.PlacedOrder{}, err
	}
	if p.PaymentToken == "" || len(p.PaymentToken) > orders.MaxPaymentTokenLen || !printable(p.PaymentToken) {
		return orders.PlacedOrder{}, invalid("body.payment_token", "the payment token is 1 to %d printable characters", orders.MaxPaymentTokenLen)
	}
	if p.IdempotencyKey == "" || len(p.IdempotencyKey) > orders.MaxIdempotencyKeyLen || !printable(p.IdempotencyKey) {
		return orders.PlacedOrder{}, invalid("header.Idempotency-Key", "the Idempotency-Key is 1 to %d printable characters", orders.MaxIdempotencyKeyLen)
	}
	if p.RequestHash == "" || len(p.RequestHash) > maxHashLen {
		return orders.PlacedOrder{}, orders.ErrInvalidInput.Withf("a request hash of at most %d characters is required", maxHashLen)
	}
	for attempt := 0; ; attempt++ {
		placed, err := s.placeOnce(ctx, p)
		switch {
		case errors.Is(err, errKeyTaken):
			return s.replay(ctx, p)
		case errors.Is(err, orders.ErrCartEmpty):
			// A concurrent checkout with this key may have emptied the cart after the
			// key was looked up: then this request is its replay.
			if _, ok, kerr := s.repo.GetCheckoutKey(ctx, s.db, p.CustomerID, p.IdempotencyKey); kerr == nil && ok {
				return s.replay(ctx, p)
			}
		case errors.Is(err, errCartChanged) && attempt < 2:
			continue // priced a cart that changed meanwhile: price it again
		case errors.Is(err, errCartChanged):
			return orders.PlacedOrder{}, orders.ErrPriceChanged.Withf("the cart changed during checkout; review it and check out again")
		}
		return placed, err
	}
}

// replay answers a checkout whose key is stored: the same order for the same
// request, an error for another.
func (s *Service) replay(ctx context.Context, p orders.PlaceOrder) (orders.PlacedOrder, error) {
	k, ok, err := s.repo.GetCheckoutKey(ctx, s.db, p.CustomerID, p.IdempotencyKey)
	if err != nil {
		return orders.PlacedOrder{}, err
	}
	if !ok {
		return orders.PlacedOrder{}, fmt.Errorf("orders: checkout key %q vanished", p.IdempotencyKey)
	}
	if k.RequestHash != p.RequestHash {
		return orders.PlacedOrder{}, orders.ErrIdempotencyKeyReused.OnField("header.Idempotency-Key")
	}
	o, err := s.repo.GetOrder(ctx, s.db, k.OrderID, false)
	if err != nil {
		return orders.PlacedOrder{}, err
	}
	return orders.PlacedOrder{Order: o, Replayed: true}, nil
}

func (s *Service) placeOnce(ctx context.Context, p orders.PlaceOrder) (orders.PlacedOrder, error) {
	if _, ok, err := s.repo.GetCheckoutKey(ctx, s.db, p.CustomerID, p.IdempotencyKey); err != nil {
		return orders.PlacedOrder{}, err
	} else if ok {
		return orders.PlacedOrder{}, errKeyTaken
	}
	c, err := s.repo.GetCart(ctx, s.db, p.CustomerID, false)
	if err != nil {
		return orders.PlacedOrder{}, err
	}
	if len(c.Lines) == 0 {
		return orders.PlacedOrder{}, orders.ErrCartEmpty
	}
	// The catalog is asked outside any transaction: no lock waits on another module.
	lines, err := s.price(ctx, c.Lines)
	if err != nil {
		return orders.PlacedOrder{}, err
	}
	var gone, changed []string
	for _, l := range lines {
		switch {
		case l.unavailable != "":
			gone = append(gone, l.unavailable)
		case l.changed:
			changed = append(changed, fmt.Sprintf("%s is now %s (was %s)", l.name, formatMoney(l.current), formatMoney(l.seen())))
		}
	}
	if len(gone) > 0 {
		return orders.PlacedOrder{}, orders.ErrProductUnavailable.Withf("%s", strings.Join(gone, " "))
	}
	if len(changed) > 0 {
		if _, _, err := s.markSeen(ctx, p.CustomerID, lines); err != nil {
			return orders.PlacedOrder{}, err
		}
		return orders.PlacedOrder{}, orders.ErrPriceChanged.Withf("prices changed since you last viewed your cart: %s. The cart was re-priced; review it and check out again.",
			strings.Join(changed, "; "))
	}

	now := s.now()
	o := orders.Order{ID: bus.NewID(), CustomerID: p.CustomerID, Status: orders.StatusPending,
		Lines: make([]orders.OrderLine, len(lines)), Version: 1, CreatedAt: now, UpdatedAt: now}
	o.Total.Currency = lines[0].SeenCurrency
	for i, l := range lines {
		total := l.current.Amount * l.Quantity
		o.Lines[i] = orders.OrderLine{ProductID: l.ProductID, SKU: l.SKU, Name: l.name, UnitPrice: l.current,
			Quantity: l.Quantity, LineTotal: orders.Money{Amount: total, Currency: l.current.Currency}}
		o.Total.Amount += total
	}
	sg, msgs := saga.Start(o, p.PaymentToken, now, s.opts.Timing)
	err = store.InTx(ctx, s.db, func(tx *store.Tx) error {
		// The cart's lock serializes a customer's checkouts; once it is held, a
		// concurrent checkout with the same key has committed (or never will), so
		// the key is checked again after it. The key's primary key backs this up.
		cur, err := s.repo.GetCart(ctx, tx, p.CustomerID, true)
		if err != nil {
			return err
		}
		if _, ok, err := s.repo.GetCheckoutKey(ctx, tx, p.CustomerID, p.IdempotencyKey); err != nil {
			return err
		} else if ok {
			return errKeyTaken
		}
		if !sameLines(cur.Lines, c.Lines) {
			if len(cur.Lines) == 0 {
				return orders.ErrCartEmpty
			}
			return errCartChanged
		}
		if err := s.repo.InsertOrder(ctx, tx, o); err != nil {
			return err
		}
		if err := s.repo.InsertSaga(ctx, tx, sg); err != nil {
			return err
		}
		if err := s.repo.InsertCheckoutKey(ctx, tx, p.CustomerID, p.IdempotencyKey, p.RequestHash, o.ID, now); err != nil {
			return err
		}
		if err := s.repo.ClearCart(ctx, tx, p.CustomerID); err != nil {
			return err
		}
		if err := s.repo.BumpCart(ctx, tx, p.CustomerID, now); err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, msgs...)
	})
	if err != nil {
		return orders.PlacedOrder{}, err
	}
	s.log.InfoContext(ctx, "order placed", "order_id", o.ID, "customer_id", o.CustomerID, "total", o.Total.Amount, "currency", o.Total.Currency)
	return orders.PlacedOrder{Order: o}, nil
}

func sameLines(a, b []cartLine) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ProductID != b[i].ProductID || a[i].Quantity != b[i].Quantity || a[i].seen() != b[i].seen() {
			return false
		}
	}
	return true
}

// ---- orders ----

func checkOrderID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return orders.ErrOrderNotFound.Withf("no order with id %q", id)
	}
	return nil
}

// GetOrder answers orders.GetOrder.
func (s *Service) GetOrder(ctx context.Context, q orders.GetOrder) (orders.Order, error) {
	if err := checkOrderID(q.ID); err != nil {
		return orders.Order{}, err
	}
	return s.repo.GetOrder(ctx, s.db, q.ID, false)
}

// WaitOrder answers orders.WaitOrder: the order as soon as its version is above
// AfterVersion, or as it is once Wait (capped at MaxWait, and ending a little
// before the caller's deadline) has passed. A change committed in this process wakes
// it at once; one committed by another replica is seen within PollInterval.
func (s *Service) WaitOrder(ctx context.Context, q orders.WaitOrder) (orders.Order, error) {
	if err := checkOrderID(q.ID); err != nil {
		return orders.Order{}, err
	}
	deadline := time.Now().Add(min(max(q.Wait, 0), s.opts.MaxWait))
	if d, ok := ctx.Deadline(); ok {
		// Answer before the caller gives up, so a long poll ends with the order.
		if early := d.Add(-min(time.Until(d)/10, time.Second)); early.Before(deadline) {
			deadline = early
		}
	}
	for {
		changed, done := s.changes.wait(q.ID) // before the read: no change slips between
		o, err := s.repo.GetOrder(ctx, s.db, q.ID, false)
		left := time.Until(deadline)
		if err != nil || o.Version > q.AfterVersion || left <= 0 {
			done()
			return o, err
		}
		t := time.NewTimer(min(left, s.opts.PollInterval))
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		done()
		if ctx.Err() != nil {
			return orders.Order{}, ctx.Err()
		}
	}
}

// ListOrders answers orders.ListOrders.
func (s *Service) ListOrders(ctx context.Context, q orders.ListOrders) (orders.OrderPage, error) {
	switch q.Status {
	case "", orders.StatusPending, orders.StatusConfirmed, orders.StatusRejected, orders.StatusCancelled:
	default:
		return orders.OrderPage{}, invalid("query.status", "unknown order status %q", q.Status)
	}
	if len(q.Before) > maxIDLen || len(q.CustomerID) > maxIDLen {
		return orders.OrderPage{}, orders.ErrInvalidInput.Withf("ids are at most %d characters", maxIDLen)
	}
	limit := q.Limit
	if limit <= 0 || limit > orders.MaxPageSize {
		limit = orders.MaxPageSize
	}
	items, err := s.repo.ListOrders(ctx, s.db, q.CustomerID, q.Status, q.Before, limit+1)
	if err != nil {
		return orders.OrderPage{}, err
	}
	page := orders.OrderPage{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.NextBefore = page.Items[limit-1].ID
	}
	return page, nil
}

// CancelOrder answers orders.CancelOrder: it returns the order as the cancellation
// leaves it (a confirmed order still completing stays confirmed until it is
// completed, then is cancelled).
func (s *Service) CancelOrder(ctx context.Context, c orders.CancelOrder) (orders.Order, error) {
	if err := checkOrderID(c.ID); err != nil {
		return orders.Order{}, err
	}
	if err := checkText("body.reason", c.Reason, maxReasonLen); err != nil {
		return orders.Order{}, err
	}
	var o orders.Order
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		var err error
		o, err = s.apply(ctx, tx, c.ID, saga.Cancel{Reason: c.Reason, Actor: c.Actor})
		return err
	})
	if err == nil {
		s.log.InfoContext(ctx, "order cancellation asked", "order_id", c.ID, "actor", c.Actor)
	}
	return o, err
}

// RefundOrder answers orders.RefundOrder.
func (s *Service) RefundOrder(ctx context.Context, r orders.RefundOrder) (orders.Order, error) {
	if err := checkOrderID(r.ID); err != nil {
		return orders.Order{}, err
	}
	if r.RefundID == "" || len(r.RefundID) > orders.MaxIdempotencyKeyLen || !printable(r.RefundID) {
		return orders.Order{}, invalid("header.Idempotency-Key", "a refund id of 1 to %d printable characters is required", orders.MaxIdempotencyKeyLen)
	}
	if err := checkText("body.reason", r.Reason, maxReasonLen); err != nil {
		return orders.Order{}, err
	}
	var o orders.Order
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		var err error
		o, err = s.apply(ctx, tx, r.ID, saga.RefundRequest{RefundID: r.RefundID, Amount: r.Amount, Reason: r.Reason, Actor: r.Actor})
		return err
	})
	return o, err
}

// ListSagas answers orders.ListSagas.
func (s *Service) ListSagas(ctx context.Context, q orders.ListSagas) (orders.SagaPage, error) {
	switch q.State {
	case "", orders.SagaReserving, orders.SagaAuthorizing, orders.SagaCompleting, orders.SagaCompensating,
		orders.SagaCompleted, orders.SagaRejected, orders.SagaCancelled:
	default:
		return orders.SagaPage{}, invalid("query.state", "unknown saga state %q", q.State)
	}
	if len(q.After) > maxIDLen {
		return orders.SagaPage{}, orders.ErrInvalidInput.Withf("ids are at most %d characters", maxIDLen)
	}
	limit := q.Limit
	if limit <= 0 || limit > orders.MaxPageSize {
		limit = orders.MaxPageSize
	}
	items, err := s.repo.ListSagas(ctx, s.db, q.State, q.After, limit+1)
	if err != nil {
		return orders.SagaPage{}, err
	}
	page := orders.SagaPage{Items: make([]orders.Saga, 0, len(items))}
	for _, sg := range items[:min(len(items), limit)] {
		page.Items = append(page.Items, sg.View())
	}
	if len(items) > limit {
		page.NextAfter = items[limit-1].OrderID
	}
	return page, nil
}

// GetSaga answers orders.GetSaga.
func (s *Service) GetSaga(ctx context.Context, q orders.GetSaga) (orders.Saga, error) {
	if q.OrderID == "" || len(q.OrderID) > maxIDLen {
		return orders.Saga{}, orders.ErrSagaNotFound.Withf("no saga for order %q", q.OrderID)
	}
	sg, err := s.repo.GetSaga(ctx, s.db, q.OrderID, false)
	return sg.View(), err
}

// apply feeds msg to the saga of order id inside tx and stores what it decides: the
// saga, the order when it changed (waking its waiters once tx commits) and the
// messages to send. It returns the order after the change.
func (s *Service) apply(ctx context.Context, tx *store.Tx, id string, msg any) (orders.Order, error) {
	sg, err := s.repo.GetSaga(ctx, tx, id, true)
	if errors.Is(err, orders.ErrSagaNotFound) {
		return orders.Order{}, orders.ErrOrderNotFound.Withf("no order with id %s", id)
	}
	if err != nil {
		return orders.Order{}, err
	}
	o, err := s.repo.GetOrder(ctx, tx, id, true)
	if err != nil {
		return orders.Order{}, err
	}
	r, err := saga.Apply(sg, o, msg, s.now(), s.opts.Timing)
	if err != nil {
		return orders.Order{}, err
	}
	if err := s.repo.UpdateSaga(ctx, tx, r.Saga); err != nil {
		return orders.Order{}, err
	}
	if ended := s.opts.SagaEnded; ended != nil && saga.Terminal(r.Saga.State) && !saga.Terminal(sg.State) {
		state, took := r.Saga.State, r.Saga.UpdatedAt.Sub(r.Saga.CreatedAt)
		tx.OnCommit(func() { ended(state, took) })
	}
	if r.OrderChanged {
		if err := s.repo.UpdateOrder(ctx, tx, r.Order); err != nil {
			return orders.Order{}, err
		}
		tx.OnCommit(func() { s.changes.notify(id) })
	}
	if err := s.outbox.Add(ctx, tx, r.Send...); err != nil {
		return orders.Order{}, err
	}
	if r.Saga.State != sg.State {
		s.log.InfoContext(ctx, "checkout saga moved", "order_id", id, "from", sg.State, "to", r.Saga.State,
			"order_status", r.Order.Status)
	}
	return r.Order, nil
}

// ---- change notification ----

// notifier wakes WaitOrder calls in this process when their order changes.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]*waiter
}

type waiter struct {
	ch   chan struct{} // closed on the next change
	refs int
}

// wait returns a channel closed at the next change of order id, and a func to call
// when no longer waiting.
func (n *notifier) wait(id string) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.waiters[id]
	if w == nil {
		w = &waiter{ch: make(chan struct{})}
		n.waiters[id] = w
	}
	w.refs++
	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			w.refs--
			if w.refs == 0 && n.waiters[id] == w {
				delete(n.waiters, id)
			}
		})
	}
}

// notify wakes the waiters of order id.
func (n *notifier) notify(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w := n.waiters[id]; w != nil {
		close(w.ch)
		delete(n.waiters, id)
	}
}
