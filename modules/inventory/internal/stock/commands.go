package stock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
)

// Consumer is the inventory's consumer name for the durable messages it receives.
const Consumer = "inventory"

// Subscriptions returns the inventory's durable handlers, for the bus: its
// commands, and catalog.ProductCreated (every product gets an item). Each runs in
// one transaction with its inbox record, so a redelivery has no second effect.
func (s *Service) Subscriptions() []bus.Subscription {
	return []bus.Subscription{
		outbox.SubscribeCommand(s.db, inventory.ReserveStockCommand, Consumer, s.handleReserve),
		outbox.SubscribeCommand(s.db, inventory.CommitReservationCommand, Consumer, s.handleCommit),
		outbox.SubscribeCommand(s.db, inventory.ReleaseReservationCommand, Consumer, s.handleRelease),
		outbox.SubscribeCommand(s.db, inventory.RestockOrderCommand, Consumer, s.handleRestock),
		outbox.SubscribeEvent(s.db, catalog.ProductCreatedEvent, Consumer, s.handleProductCreated),
	}
}

func (s *Service) handleProductCreated(ctx context.Context, tx *store.Tx, m message.Message[catalog.ProductCreated]) error {
	p := m.Body.Product
	_, err := s.EnsureItem(ctx, tx, p.ID, p.SKU)
	if errors.Is(err, inventory.ErrInvalidInput) {
		// Catalog SKUs are unique, so this is an item left from a product that no
		// longer exists; retrying cannot help, and the product stays without stock.
		s.log.WarnContext(ctx, "inventory: product not stocked", "product_id", p.ID, "sku", p.SKU, "err", err)
		return nil
	}
	return err
}

func reserved(c inventory.ReserveStock, lines []inventory.Line) message.Outgoing {
	return inventory.StockReservedEvent.With(inventory.StockReserved{OrderID: c.OrderID, Lines: lines, ExpiresAt: c.ExpiresAt})
}

// outcome is the event that answers a ReserveStock for an order that already has
// a reservation: the answer the first one got.
func (r reservation) outcome() message.Outgoing {
	if r.Status == statusRejected {
		return inventory.StockReservationRejectedEvent.With(inventory.StockReservationRejected{OrderID: r.OrderID, Lines: r.Rejected})
	}
	return inventory.StockReservedEvent.With(inventory.StockReserved{OrderID: r.OrderID, Lines: r.Lines, ExpiresAt: r.ExpiresAt})
}

// handleReserve holds every line of an order, or none. The first ReserveStock of
// an order decides; any later one (a saga retry) gets the same answer again.
func (s *Service) handleReserve(ctx context.Context, tx *store.Tx, m message.Message[inventory.ReserveStock]) error {
	c := m.Body
	if c.OrderID == "" || len(c.OrderID) > 100 {
		// Nothing to answer to: the message is poison, and the relay parks it.
		return message.ErrInvalidMessage.Withf("ReserveStock needs an order id of at most 100 bytes")
	}
	if prev, ok, err := s.repo.Reservation(ctx, tx, c.OrderID, true); err != nil || ok {
		if err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, prev.outcome())
	}
	now := s.now()
	c.ExpiresAt = storedTime(c.ExpiresAt)
	lines, items, rejected, err := s.check(ctx, tx, c, now)
	if err != nil {
		return err
	}
	if len(rejected) > 0 {
		res := reservation{OrderID: c.OrderID, Status: statusRejected, ExpiresAt: now, Rejected: rejected}
		if err := s.repo.InsertReservation(ctx, tx, res, now); err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, res.outcome())
	}
	if err := s.repo.InsertReservation(ctx, tx, reservation{OrderID: c.OrderID, Status: statusHeld, ExpiresAt: c.ExpiresAt, Lines: lines}, now); err != nil {
		return err
	}
	msgs := []message.Outgoing{reserved(c, lines)}
	for i, l := range lines {
		next := items[i]
		next.Reserved += l.Quantity
		_, changed, err := s.save(ctx, tx, items[i], next, now)
		if err != nil {
			return err
		}
		msgs = append(msgs, changed...)
	}
	return s.outbox.Add(ctx, tx, msgs...)
}

// check decides a ReserveStock: either every line with its item (locked, in the
// lines' order, SKU and product id filled in from the item), or the rejected
// lines, every one of them, with why.
func (s *Service) check(ctx context.Context, tx *store.Tx, c inventory.ReserveStock, now time.Time) ([]inventory.Line, []inventory.Item, []inventory.RejectedLine, error) {
	if len(c.Lines) == 0 || len(c.Lines) > inventory.MaxLines {
		// Malformed as a whole: one rejected line that names no product says so.
		return nil, nil, []inventory.RejectedLine{{Reason: inventory.RejectInvalid}}, nil
	}
	reject := func(l inventory.Line, available int64, reason string) inventory.RejectedLine {
		return inventory.RejectedLine{ProductID: l.ProductID, SKU: l.SKU, Requested: l.Quantity, Available: available, Reason: reason}
	}
	var rejected []inventory.RejectedLine
	if c.ExpiresAt.IsZero() || !c.ExpiresAt.After(now) {
		reason := inventory.RejectExpired
		if c.ExpiresAt.IsZero() {
			reason = inventory.RejectInvalid
		}
		for _, l := range c.Lines {
			rejected = append(rejected, reject(l, 0, reason))
		}
		return nil, nil, rejected, nil
	}

	var productIDs, skus []string
	for _, l := range c.Lines {
		if l.ProductID != "" {
			productIDs = append(productIDs, l.ProductID)
		} else if l.SKU != "" {
			skus = append(skus, l.SKU)
		}
	}
	found, err := s.repo.ItemsFor(ctx, tx, productIDs, skus, true)
	if err != nil {
		return nil, nil, nil, err
	}
	byProduct, bySKU := map[string]inventory.Item{}, map[string]inventory.Item{}
	for _, it := range found {
		byProduct[it.ProductID], bySKU[it.SKU] = it, it
	}
	lines := make([]inventory.Line, 0, len(c.Lines))
	items := make([]inventory.Item, 0, len(c.Lines))
	seen := map[string]bool{}
	for _, l := range c.Lines {
		it, ok := byProduct[l.ProductID]
		if l.ProductID == "" {
			it, ok = bySKU[l.SKU]
		}
		switch {
		case l.Quantity <= 0 || l.Quantity > inventory.MaxQuantity || (l.ProductID == "" && l.SKU == ""):
			rejected = append(rejected, reject(l, 0, inventory.RejectInvalid))
		case !ok:
			rejected = append(rejected, reject(l, 0, inventory.RejectUnknownProduct))
		case seen[it.SKU]:
			// One line per product: a cart merges them, and two lines could not
			// say which of them to reject.
			rejected = append(rejected, reject(l, it.Available, inventory.RejectInvalid))
		case it.Available < l.Quantity:
			seen[it.SKU] = true
			rejected = append(rejected, reject(l, it.Available, inventory.RejectOutOfStock))
		default:
			seen[it.SKU] = true
			lines = append(lines, inventory.Line{ProductID: it.ProductID, SKU: it.SKU, Quantity: l.Quantity})
			items = append(items, it)
		}
	}
	if len(rejected) > 0 {
		return nil, nil, rejected, nil
	}
	return lines, items, nil, nil
}

// lockLines returns the items of res's lines, locked, in the lines' order.
func (s *Service) lockLines(ctx context.Context, tx *store.Tx, res reservation) ([]inventory.Item, error) {
	skus := make([]string, len(res.Lines))
	for i, l := range res.Lines {
		skus[i] = l.SKU
	}
	found, err := s.repo.ItemsFor(ctx, tx, nil, skus, true)
	if err != nil {
		return nil, err
	}
	bySKU := map[string]inventory.Item{}
	for _, it := range found {
		bySKU[it.SKU] = it
	}
	items := make([]inventory.Item, len(res.Lines))
	for i, l := range res.Lines {
		it, ok := bySKU[l.SKU]
		if !ok { // the lines reference items: only a broken database gets here
			return nil, fmt.Errorf("inventory: reservation %s holds unknown item %s", res.OrderID, l.SKU)
		}
		items[i] = it
	}
	return items, nil
}

// move changes the numbers of res's items by onHand and reserved units per unit
// of each line, and moves res from its status to to; it returns the events.
func (s *Service) move(ctx context.Context, tx *store.Tx, res reservation, to string, onHand, reserved int64, now time.Time) ([]message.Outgoing, error) {
	items, err := s.lockLines(ctx, tx, res)
	if err != nil {
		return nil, err
	}
	if err := s.repo.SetReservationStatus(ctx, tx, res.OrderID, res.Status, to, now); err != nil {
		return nil, err
	}
	var msgs []message.Outgoing
	for i, l := range res.Lines {
		next := items[i]
		next.OnHand += onHand * l.Quantity
		next.Reserved += reserved * l.Quantity
		_, changed, err := s.save(ctx, tx, items[i], next, now)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, changed...)
	}
	return msgs, nil
}

// handleCommit takes a held reservation's units out of stock. A reservation that
// was released (it expired) takes its units from what is available, if they still
// are; otherwise, as for an order without a reservation, ReservationCommitFailed.
func (s *Service) handleCommit(ctx context.Context, tx *store.Tx, m message.Message[inventory.CommitReservation]) error {
	orderID := m.Body.OrderID
	committed := inventory.ReservationCommittedEvent.With(inventory.ReservationCommitted{OrderID: orderID})
	failed := func(reason string) error {
		return s.outbox.Add(ctx, tx, inventory.ReservationCommitFailedEvent.With(inventory.ReservationCommitFailed{OrderID: orderID, Reason: reason}))
	}
	res, ok, err := s.repo.Reservation(ctx, tx, orderID, true)
	if err != nil {
		return err
	}
	now := s.now()
	switch {
	case !ok:
		return failed("no stock was reserved for this order")
	case res.Status == statusCommitted || res.Status == statusRestocked:
		return s.outbox.Add(ctx, tx, committed)
	case res.Status == statusRejected:
		return failed("the stock reservation for this order was rejected")
	case res.Status == statusHeld:
		msgs, err := s.move(ctx, tx, res, statusCommitted, -1, -1, now)
		if err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, append([]message.Outgoing{committed}, msgs...)...)
	default: // released: take the units again if they are still there
		items, err := s.lockLines(ctx, tx, res)
		if err != nil {
			return err
		}
		for i, l := range res.Lines {
			if items[i].Available < l.Quantity {
				return failed(fmt.Sprintf("the reservation had been released, and %s has %d available, not %d",
					l.SKU, items[i].Available, l.Quantity))
			}
		}
		msgs, err := s.move(ctx, tx, res, statusCommitted, -1, 0, now)
		if err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, append([]message.Outgoing{committed}, msgs...)...)
	}
}

// handleRelease makes a held reservation's units available again. It answers
// ReservationReleased also when nothing is held for the order (never reserved,
// rejected, released already), so the saga that compensates can always finish.
//
// A committed (or restocked) order is left alone and gets no answer: its units
// have shipped, and the saga never releases after committing — putting a
// cancelled order's units back is RestockOrder.
func (s *Service) handleRelease(ctx context.Context, tx *store.Tx, m message.Message[inventory.ReleaseReservation]) error {
	c := m.Body
	released := inventory.ReservationReleasedEvent.With(inventory.ReservationReleased{OrderID: c.OrderID, Reason: c.Reason})
	res, ok, err := s.repo.Reservation(ctx, tx, c.OrderID, true)
	if err != nil {
		return err
	}
	switch {
	case ok && res.Status == statusHeld:
		msgs, err := s.move(ctx, tx, res, statusReleased, 0, -1, s.now())
		if err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, append([]message.Outgoing{released}, msgs...)...)
	case ok && (res.Status == statusCommitted || res.Status == statusRestocked):
		s.log.WarnContext(ctx, "inventory: release of a committed order ignored", "order_id", c.OrderID, "status", res.Status)
		return nil
	default:
		return s.outbox.Add(ctx, tx, released)
	}
}

// handleRestock puts a committed order's units back on hand. Afterwards the
// order holds no stock whatever its reservation was: a held one is released, and
// an order with nothing held is answered OrderRestocked too, so the caller can
// finish.
func (s *Service) handleRestock(ctx context.Context, tx *store.Tx, m message.Message[inventory.RestockOrder]) error {
	orderID := m.Body.OrderID
	restocked := inventory.OrderRestockedEvent.With(inventory.OrderRestocked{OrderID: orderID})
	res, ok, err := s.repo.Reservation(ctx, tx, orderID, true)
	if err != nil {
		return err
	}
	var msgs []message.Outgoing
	switch {
	case ok && res.Status == statusCommitted:
		msgs, err = s.move(ctx, tx, res, statusRestocked, +1, 0, s.now())
	case ok && res.Status == statusHeld:
		msgs, err = s.move(ctx, tx, res, statusReleased, 0, -1, s.now())
	}
	if err != nil {
		return err
	}
	return s.outbox.Add(ctx, tx, append([]message.Outgoing{restocked}, msgs...)...)
}
