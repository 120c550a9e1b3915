package products

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
)

// BusInventory reads the inventory's items over the bus, once Bind gave it the
// bus (which is built from the service's handlers, so it comes after them).
type BusInventory struct{ b atomic.Pointer[bus.Bus] }

// Bind sets the bus to ask.
func (i *BusInventory) Bind(b *bus.Bus) { i.b.Store(b) }

// ListItems asks inventory.ListItems for a page of items.
func (i *BusInventory) ListItems(ctx context.Context, q inventory.ListItems) (inventory.ItemPage, error) {
	b := i.b.Load()
	if b == nil {
		return inventory.ItemPage{}, message.ErrNoHandler.Withf("the catalog module is not started")
	}
	return bus.Call(ctx, b, inventory.ListItemsRequest, q)
}

// rebuildPage is how many items one ListItems asks for while rebuilding.
const rebuildPage = 200

// RebuildAvailability rewrites the availability read model from the inventory's
// current stock (see catalog.RebuildAvailability): each page of items in one
// transaction, each product's cached read invalidated. It needs the inventory
// (Options.Inventory); without it, it fails with message.ErrNoHandler.
func (s *Service) RebuildAvailability(ctx context.Context, _ catalog.RebuildAvailability) (catalog.AvailabilityRebuilt, error) {
	var out catalog.AvailabilityRebuilt
	if s.inventory == nil {
		return out, message.ErrNoHandler.Withf("this catalog cannot reach the inventory")
	}
	for after := ""; ; {
		page, err := s.inventory.ListItems(ctx, inventory.ListItems{After: after, Limit: rebuildPage})
		if err != nil {
			return out, fmt.Errorf("catalog: rebuild availability: ask the inventory: %w", err)
		}
		out.Items += len(page.Items)
		n, err := s.rewrite(ctx, page.Items)
		if err != nil {
			return out, err
		}
		out.Updated += n
		if page.NextAfter == "" || len(page.Items) == 0 {
			return out, nil
		}
		after = page.NextAfter
	}
}

// rewrite stores the availability of items in one transaction, unless the model
// holds a newer version of an item; it returns how many it wrote.
func (s *Service) rewrite(ctx context.Context, items []inventory.Item) (int, error) {
	n := 0
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		n = 0
		for _, it := range items {
			if it.ProductID == "" {
				continue
			}
			s.cache.invalidate(it.ProductID)
			tx.OnCommit(func() { s.cache.invalidate(it.ProductID) })
			ok, err := s.repo.ResetAvailability(ctx, tx, it.ProductID, it.Available, it.Version, it.UpdatedAt)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		return nil
	})
	return n, err
}
