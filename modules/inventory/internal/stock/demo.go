package stock

import (
	"context"
	"errors"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
)

// The demo seeder's adjustment of every product it stocks.
const (
	DemoStock  = 100
	DemoReason = "demo stock"
	DemoActor  = "system:demo"
)

// SeedDemo gives every catalog product that was never adjusted DemoStock units on
// hand (creating its item first if inventory has not learnt of it yet), asking
// catalog for the products over b. Products already adjusted — by an admin, or by
// an earlier run — are left alone, so running it again changes nothing.
func (s *Service) SeedDemo(ctx context.Context, b *bus.Bus) (stocked int, err error) {
	after := ""
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		page, err := bus.Call(cctx, b, catalog.ListProductsRequest, catalog.ListProducts{
			IncludeUnpublished: true, After: after, Limit: catalog.MaxPageSize})

		cancel()
		if err != nil {
			return stocked, err
		}
		for _, p := range page.Items {
			ok, err := s.seedProduct(ctx, p)
			if err != nil {
				return stocked, err
			}
			if ok {
				stocked++
			}
		}
		if page.NextAfter == "" {
			return stocked, nil
		}
		after = page.NextAfter
	}
}

func (s *Service) seedProduct(ctx context.Context, p catalog.Product) (stocked bool, err error) {
	err = store.InTx(ctx, s.db, func(tx *store.Tx) error {
		// EnsureItem leaves the item locked, so two seeders (replicas) cannot both
		// find it unadjusted.
		it, err := s.EnsureItem(ctx, tx, p.ID, p.SKU)
		if errors.Is(err, inventory.ErrInvalidInput) {
			s.log.WarnContext(ctx, "inventory: demo product not stocked", "product_id", p.ID, "sku", p.SKU, "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		if done, err := s.repo.HasAdjustment(ctx, tx, it.SKU); err != nil || done {
			return err
		}
		if _, err := s.adjust(ctx, tx, inventory.Adjust{SKU: it.SKU, Delta: DemoStock, Reason: DemoReason, Actor: DemoActor}); err != nil {
			return err
		}
		stocked = true
		return nil
	})
	return stocked, err
}

// StartDemoSeeder runs SeedDemo in the background, again with backoff (from
// retry, doubling up to 30 times that) until it succeeds or is stopped: in a split
// deployment catalog may start after inventory.
func (s *Service) StartDemoSeeder(b *bus.Bus, retry time.Duration) *Background {
	return background(func(ctx context.Context) {
		wait := retry
		for {
			n, err := s.SeedDemo(ctx, b)
			if err == nil {
				s.log.InfoContext(ctx, "demo stock added", "products", n)
				return
			}
			if ctx.Err() != nil {
				return
			}
			s.log.WarnContext(ctx, "inventory: demo stock not added yet; retrying", "err", err, "retry_in", wait.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 30*retry)
		}
	})
}
