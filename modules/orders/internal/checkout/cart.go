package checkout

import (
	"context"
	"fmt"
	"time"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/orders"
)

// Carts: priced through the catalog on every read, with the price each customer
// last saw kept per line.

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
		if out.Total == nil {
			out.Total = &orders.Money{Currency: l.SeenCurrency}
		}
		switch {
		case l.unavailable != "":
			line.Unavailable = true
			out.Notices = append(out.Notices, l.unavailable)
		case l.changed:
			prev := l.seen()
			line.PreviousPrice = &prev
			out.Notices = append(out.Notices, fmt.Sprintf("The price of %s changed from %s to %s.", l.name, prev, l.current))
		}
		if !line.Unavailable {
			out.Total.Amount += line.LineTotal.Amount
		}
		out.Lines = append(out.Lines, line)
	}
	return out
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
	return s.present(ctx, c)
}

// present returns the stored cart c priced now, recording as seen the prices and
// names that changed since the customer last looked.
func (s *Service) present(ctx context.Context, c cart) (orders.Cart, error) {
	lines, err := s.price(ctx, c.Lines)
	if err != nil {
		return orders.Cart{}, err
	}
	out := view(c, lines)
	for _, l := range lines {
		if l.changed || (l.unavailable == "" && l.name != l.Name) {
			out.Version, out.UpdatedAt, err = s.markSeen(ctx, c.CustomerID, lines)
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
	var after cart
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
		if err := s.repo.BumpCart(ctx, tx, c.CustomerID, s.now()); err != nil {
			return err
		}
		after, err = s.repo.GetCart(ctx, tx, c.CustomerID, false) // the answer, read in the change's own transaction
		return err
	})
	if err != nil {
		return orders.Cart{}, err
	}
	return s.present(ctx, after)
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
	var after cart
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		cur, err := s.repo.GetCart(ctx, tx, c.CustomerID, true)
		if err != nil {
			return err
		}
		removed, err := s.repo.DeleteLine(ctx, tx, c.CustomerID, c.ProductID)
		if err != nil || !removed {
			after = cur
			return err
		}
		if err := s.repo.BumpCart(ctx, tx, c.CustomerID, s.now()); err != nil {
			return err
		}
		after, err = s.repo.GetCart(ctx, tx, c.CustomerID, false) // the answer, read in the change's own transaction
		return err
	})
	if err != nil {
		return orders.Cart{}, err
	}
	return s.present(ctx, after)
}
