package checkout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/validate"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
)

// Checkout: a priced cart becomes a pending order and its saga, once per
// idempotency key.

// errCartChanged: the cart changed between pricing and storing the order.
var errCartChanged = errors.New("orders: cart changed during checkout")

// PlaceOrder answers orders.PlaceOrder: the cart, priced now, becomes a pending
// order whose saga starts at once. Only a successful checkout is remembered under
// its idempotency key.
func (s *Service) PlaceOrder(ctx context.Context, p orders.PlaceOrder) (orders.PlacedOrder, error) {
	if err := checkCustomer(p.CustomerID); err != nil {
		return orders.PlacedOrder{}, err
	}
	if p.PaymentToken == "" || len(p.PaymentToken) > orders.MaxPaymentTokenLen || !validate.Printable(p.PaymentToken) {
		return orders.PlacedOrder{}, invalid("body.payment_token", "the payment token is 1 to %d printable characters", orders.MaxPaymentTokenLen)
	}
	if p.IdempotencyKey == "" || len(p.IdempotencyKey) > orders.MaxIdempotencyKeyLen || !validate.Printable(p.IdempotencyKey) {
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
			// key was looked up: then this request is its replay. A lookup that fails
			// answers its own error: "the cart is empty" would tell a client that
			// resends after a crash that its order is gone.
			_, ok, kerr := s.repo.GetCheckoutKey(ctx, s.db, p.CustomerID, p.IdempotencyKey)
			if kerr != nil {
				return orders.PlacedOrder{}, kerr
			}
			if ok {
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
	if err := s.pricesAsSeen(ctx, p.CustomerID, lines); err != nil {
		return orders.PlacedOrder{}, err
	}

	now := s.now()
	o := newOrder(p.CustomerID, lines, now)
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
		s.sweepAt(tx, sg)
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

// pricesAsSeen refuses a checkout whose lines are not all for sale at the price
// the customer saw: ErrProductUnavailable, or ErrPriceChanged once the new prices
// are recorded as seen.
func (s *Service) pricesAsSeen(ctx context.Context, customerID string, lines []pricedLine) error {
	var gone, changed []string
	for _, l := range lines {
		switch {
		case l.unavailable != "":
			gone = append(gone, l.unavailable)
		case l.changed:
			changed = append(changed, fmt.Sprintf("%s is now %s (was %s)", l.name, l.current, l.seen()))
		}
	}
	if len(gone) > 0 {
		return orders.ErrProductUnavailable.Withf("%s", strings.Join(gone, " "))
	}
	if len(changed) > 0 {
		if _, _, err := s.markSeen(ctx, customerID, lines); err != nil {
			return err
		}
		return orders.ErrPriceChanged.Withf("prices changed since you last viewed your cart: %s. The cart was re-priced; review it and check out again.",
			strings.Join(changed, "; "))
	}
	return nil
}

// newOrder returns the pending order of customerID for its priced cart lines.
func newOrder(customerID string, lines []pricedLine, now time.Time) orders.Order {
	o := orders.Order{ID: bus.NewID(), CustomerID: customerID, Status: orders.StatusPending,
		Lines: make([]orders.OrderLine, len(lines)), Version: 1, CreatedAt: now, UpdatedAt: now}
	o.Total.Currency = lines[0].SeenCurrency
	for i, l := range lines {
		total := l.current.Amount * l.Quantity
		o.Lines[i] = orders.OrderLine{ProductID: l.ProductID, SKU: l.SKU, Name: l.name, UnitPrice: l.current,
			Quantity: l.Quantity, LineTotal: orders.Money{Amount: total, Currency: l.current.Currency}}
		o.Total.Amount += total
	}
	return o
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
