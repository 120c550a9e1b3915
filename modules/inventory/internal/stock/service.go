// Package stock is the inventory's domain: items and their numbers, the audited
// adjustments made to them, and the reservations that hold stock for orders. The
// Service answers the inventory's requests, handles its commands and the catalog
// events it learns products from, and sweeps expired reservations.
package stock

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/paging"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/inventory"
)

// MaxActorLen bounds Adjust.Actor.
const MaxActorLen = 200

// Service handles the inventory's requests and commands. Every change of an item
// is written together with the events it publishes, in one transaction.
type Service struct {
	db     *store.DB
	outbox *outbox.Outbox
	repo   Repo
	log    *slog.Logger
	now    func() time.Time
	sweep  time.Duration
}

// Options tunes the service. Zero values take the defaults.
type Options struct {
	// SweepInterval is how often the sweeper looks for expired reservations
	// (default 5s): how late, at most, a reservation is released after it expires —
	// small beside a reservation's life (minutes), and few reads for an idle server.
	SweepInterval time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// NewService returns the inventory service on db, publishing through ob.
func NewService(db *store.DB, ob *outbox.Outbox, log *slog.Logger, opts ...Options) *Service {
	o := Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = 5 * time.Second
	}
	clock := o.Now
	if clock == nil {
		clock = time.Now
	}
	// Microseconds: what every back end stores, so a reply equals a later read.
	now := func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	return &Service{db: db, outbox: ob, repo: NewRepo(db.Dialect), log: log, now: now, sweep: o.SweepInterval}
}

// Handlers returns the service's request handlers, for the bus.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(inventory.GetItemRequest, s.GetItem),
		bus.Handle(inventory.GetAvailabilityRequest, s.GetAvailability),
		bus.Handle(inventory.ListItemsRequest, s.ListItems),
		bus.Handle(inventory.AdjustRequest, s.Adjust),
		bus.Handle(inventory.ListAdjustmentsRequest, s.ListAdjustments),
	}
}

func invalid(field, format string, args ...any) error {
	return inventory.ErrInvalidInput.Withf(format, args...).OnField(field)
}

// validSKU reports whether sku could name an item: what catalog accepts, bounded.
func validSKU(sku string) bool {
	if sku == "" || len(sku) > 64 {
		return false
	}
	for _, r := range sku {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// GetItem answers inventory.GetItem.
func (s *Service) GetItem(ctx context.Context, q inventory.GetItem) (inventory.Item, error) {
	if !validSKU(q.SKU) {
		return inventory.Item{}, inventory.ErrItemNotFound.Withf("no stock item with this SKU")
	}
	return s.repo.Item(ctx, s.db, q.SKU, false)
}

// GetAvailability answers inventory.GetAvailability.
func (s *Service) GetAvailability(ctx context.Context, q inventory.GetAvailability) (inventory.Items, error) {
	if len(q.ProductIDs) > inventory.MaxLines {
		return inventory.Items{}, invalid("product_ids", "at most %d products per request", inventory.MaxLines)
	}
	items, err := s.repo.ItemsFor(ctx, s.db, q.ProductIDs, nil, false)
	if items == nil {
		items = []inventory.Item{}
	}
	return inventory.Items{Items: items}, err
}

// ListItems answers inventory.ListItems.
func (s *Service) ListItems(ctx context.Context, q inventory.ListItems) (inventory.ItemPage, error) {
	limit := paging.Limit(q.Limit, inventory.MaxPageSize, inventory.MaxPageSize)
	items, next, err := paging.Read(limit, func(n int) ([]inventory.Item, error) {
		return s.repo.ListItems(ctx, s.db, q.After, n)
	}, func(it inventory.Item) string { return it.SKU })
	if err != nil {
		return inventory.ItemPage{}, err
	}
	return inventory.ItemPage{Items: items, NextAfter: next}, nil
}

// ListAdjustments answers inventory.ListAdjustments. An unknown SKU is
// ErrItemNotFound, so an empty page means an item that was never adjusted.
func (s *Service) ListAdjustments(ctx context.Context, q inventory.ListAdjustments) (inventory.AdjustmentPage, error) {
	if _, err := s.GetItem(ctx, inventory.GetItem{SKU: q.SKU}); err != nil {
		return inventory.AdjustmentPage{}, err
	}
	limit := paging.Limit(q.Limit, inventory.MaxPageSize, inventory.MaxPageSize)
	adjs, next, err := paging.Read(limit, func(n int) ([]inventory.Adjustment, error) {
		return s.repo.Adjustments(ctx, s.db, q.SKU, q.Before, n)
	}, func(a inventory.Adjustment) string { return a.ID })
	if err != nil {
		return inventory.AdjustmentPage{}, err
	}
	return inventory.AdjustmentPage{Items: adjs, NextBefore: next}, nil
}

// validateAdjust checks what an Adjust says on its own, before any item is read.
func validateAdjust(a *inventory.Adjust) error {
	a.Reason = strings.TrimSpace(a.Reason)
	a.Actor = strings.TrimSpace(a.Actor)
	switch {
	case a.Delta == 0 && a.SetLowMark == nil:
		return invalid("delta", "delta must not be 0 (unless the low-stock threshold is set)")
	case a.Delta > inventory.MaxAdjustment || a.Delta < -inventory.MaxAdjustment:
		return invalid("delta", "delta must be between -%d and %d", inventory.MaxAdjustment, inventory.MaxAdjustment)
	case a.Reason == "":
		return invalid("reason", "a reason is required")
	case utf8.RuneCountInString(a.Reason) > inventory.MaxReasonLen || !utf8.ValidString(a.Reason):
		return invalid("reason", "the reason must be valid text of at most %d characters", inventory.MaxReasonLen)
	case strings.ContainsFunc(a.Reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		return invalid("reason", "the reason must not contain control characters")
	case a.Actor == "" || len(a.Actor) > MaxActorLen:
		return invalid("actor", "an actor of at most %d bytes is required", MaxActorLen)
	case a.SetLowMark != nil && (*a.SetLowMark < 0 || *a.SetLowMark > inventory.MaxOnHand):
		return invalid("set_low_mark", "the low-stock threshold must be between 0 and %d", inventory.MaxOnHand)
	case a.ExpectedVersion < 0:
		return invalid("expected_version", "the expected version must not be negative")
	}
	return nil
}

// Adjust answers inventory.Adjust.
func (s *Service) Adjust(ctx context.Context, a inventory.Adjust) (inventory.Item, error) {
	if !validSKU(a.SKU) {
		return inventory.Item{}, inventory.ErrItemNotFound.Withf("no stock item with this SKU")
	}
	if err := validateAdjust(&a); err != nil {
		return inventory.Item{}, err
	}
	var out inventory.Item
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		var err error
		out, err = s.adjust(ctx, tx, a)
		return err
	})
	return out, err
}

// adjust applies a validated adjustment inside tx.
func (s *Service) adjust(ctx context.Context, tx *store.Tx, a inventory.Adjust) (inventory.Item, error) {
	it, err := s.repo.Item(ctx, tx, a.SKU, true)
	if err != nil {
		return inventory.Item{}, err
	}
	if a.ExpectedVersion != 0 && it.Version != a.ExpectedVersion {
		return inventory.Item{}, inventory.ErrVersionMismatch.Withf("item %s is at version %d, not %d", it.SKU, it.Version, a.ExpectedVersion)
	}
	next := it
	next.OnHand += a.Delta
	switch {
	case next.OnHand < it.Reserved:
		return inventory.Item{}, inventory.ErrBelowReserved.Withf(
			"item %s has %d on hand, %d of them reserved: it can lose at most %d", it.SKU, it.OnHand, it.Reserved, it.Available)
	case next.OnHand > inventory.MaxOnHand:
		return inventory.Item{}, invalid("delta", "an item holds at most %d units on hand", inventory.MaxOnHand)
	}
	if a.SetLowMark != nil {
		next.LowMark = *a.SetLowMark
	}
	now := s.now()
	next, msgs, err := s.save(ctx, tx, it, next, now)
	if err != nil {
		return inventory.Item{}, err
	}
	if err := s.repo.InsertAdjustment(ctx, tx, inventory.Adjustment{ID: bus.NewID(), SKU: it.SKU, Delta: a.Delta,
		OnHand: next.OnHand, Reason: a.Reason, Actor: a.Actor, CreatedAt: now}); err != nil {
		return inventory.Item{}, err
	}
	return next, s.outbox.Add(ctx, tx, msgs...)
}

// save writes next (old's numbers after a change) as old's next version and
// returns it with the events that announce it: StockChanged, and StockLow when
// the change takes available stock from above the threshold to at or below it.
func (s *Service) save(ctx context.Context, tx *store.Tx, old, next inventory.Item, now time.Time) (inventory.Item, []message.Outgoing, error) {
	next.Available = next.OnHand - next.Reserved
	next.Version = old.Version + 1
	next.UpdatedAt = now
	if err := s.repo.UpdateItem(ctx, tx, next); err != nil {
		return inventory.Item{}, nil, err
	}
	msgs := []message.Outgoing{inventory.StockChangedEvent.With(inventory.StockChanged{Item: next})}
	if old.Available > old.LowMark && next.Available <= next.LowMark {
		msgs = append(msgs, inventory.StockLowEvent.With(inventory.StockLow{Item: next}))
	}
	return next, msgs, nil
}

// EnsureItem creates the item of a product (no stock, the default threshold)
// unless inventory has one for the product or the SKU, inside tx, and returns
// the product's item. It publishes StockChanged for a new item, so read models
// learn that it is out of stock. A SKU taken by another product is
// ErrInvalidInput.
func (s *Service) EnsureItem(ctx context.Context, tx *store.Tx, productID, sku string) (inventory.Item, error) {
	it := inventory.Item{SKU: sku, ProductID: productID, LowMark: inventory.DefaultLowMark, Version: 1, UpdatedAt: s.now()}
	created, err := s.repo.InsertItem(ctx, tx, it)
	if err != nil {
		return inventory.Item{}, err
	}
	if created {
		return it, s.outbox.Add(ctx, tx, inventory.StockChangedEvent.With(inventory.StockChanged{Item: it}))
	}
	items, err := s.repo.ItemsFor(ctx, tx, []string{productID}, nil, true)
	if err != nil {
		return inventory.Item{}, err
	}
	if len(items) == 0 {
		return inventory.Item{}, inventory.ErrInvalidInput.Withf("SKU %s belongs to another product's item", sku)
	}
	return items[0], nil
}
