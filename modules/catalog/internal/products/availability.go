package products

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
)

// Consumer is the catalog's consumer name for the events it receives.
const Consumer = "catalog"

type availabilityRow struct {
	ProductID string    `db:"product_id"`
	Available int64     `db:"available"`
	InStock   bool      `db:"in_stock"`
	AsOf      time.Time `db:"as_of"`
}

// Availability returns the stored availability of the products ids that have one.
func (Repo) Availability(ctx context.Context, q sqlx.ExtContext, ids []string) (map[string]catalog.Availability, error) {
	out := make(map[string]catalog.Availability, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	query, args, err := sqlx.In(`SELECT product_id, available, in_stock, as_of FROM product_availability WHERE product_id IN (?)`, ids)
	if err != nil {
		return nil, err
	}
	var rows []availabilityRow
	if err := sqlx.SelectContext(ctx, q, &rows, q.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("catalog: read availability: %w", err)
	}
	for _, r := range rows {
		out[r.ProductID] = availabilityOf(r.Available, r.AsOf)
	}
	return out, nil
}

// availabilityOf is the availability stored as available units as of asOf.
func availabilityOf(available int64, asOf time.Time) catalog.Availability {
	a := catalog.Availability{Status: catalog.AvailabilityOutOfStock, Available: max(available, 0), AsOf: storedTime(asOf)}
	if a.Available > 0 {
		a.Status = catalog.AvailabilityInStock
	}
	return a
}

// PutAvailability stores a product's available units at the inventory's item
// version, unless a newer (or the same) version is stored already; it reports
// whether it did.
func (Repo) PutAvailability(ctx context.Context, q sqlx.ExtContext, productID string, available, version int64, asOf time.Time) (bool, error) {
	available = max(available, 0)
	res, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO product_availability (product_id, available, in_stock, stock_version, as_of)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (product_id) DO UPDATE SET available = excluded.available, in_stock = excluded.in_stock,
			stock_version = excluded.stock_version, as_of = excluded.as_of
		WHERE product_availability.stock_version < excluded.stock_version`),
		productID, available, available > 0, version, storedTime(asOf))
	if err != nil {
		return false, fmt.Errorf("catalog: store availability of %s: %w", productID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ResetAvailability is PutAvailability that also rewrites the same version (a
// rebuild: what is stored may have drifted from what that version said); it
// leaves a newer version alone.
func (Repo) ResetAvailability(ctx context.Context, q sqlx.ExtContext, productID string, available, version int64, asOf time.Time) (bool, error) {
	available = max(available, 0)
	res, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO product_availability (product_id, available, in_stock, stock_version, as_of)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (product_id) DO UPDATE SET available = excluded.available, in_stock = excluded.in_stock,
			stock_version = excluded.stock_version, as_of = excluded.as_of
		WHERE product_availability.stock_version <= excluded.stock_version`),
		productID, available, available > 0, version, storedTime(asOf))
	if err != nil {
		return false, fmt.Errorf("catalog: rewrite availability of %s: %w", productID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// withAvailability sets the Availability of every product in ps (unknown for
// those the inventory has said nothing about).
func (s *Service) withAvailability(ctx context.Context, q sqlx.ExtContext, ps []catalog.Product) error {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	known, err := s.repo.Availability(ctx, q, ids)
	if err != nil {
		return err
	}
	for i := range ps {
		a, ok := known[ps[i].ID]
		if !ok {
			a = catalog.Availability{Status: catalog.AvailabilityUnknown}
		}
		ps[i].Availability = &a
	}
	return nil
}

// Subscriptions returns the catalog's durable handlers, for the bus: the
// availability read model, fed by inventory.StockChanged.
func (s *Service) Subscriptions() []bus.Subscription {
	return []bus.Subscription{
		outbox.SubscribeEvent(s.db, inventory.StockChangedEvent, Consumer, s.applyStockChanged),
	}
}

// applyStockChanged records an item's availability if the event is newer than
// what is stored: events may come twice or out of order. Once the change commits,
// the read cache lays it over the cached product (written through, not
// invalidated: availability changes with every order, the product rarely).
func (s *Service) applyStockChanged(ctx context.Context, tx *store.Tx, m message.Message[inventory.StockChanged]) error {
	it := m.Body.Item
	if it.ProductID == "" {
		return nil // nothing to attach it to
	}
	applied, err := s.repo.PutAvailability(ctx, tx, it.ProductID, it.Available, it.Version, it.UpdatedAt)
	if applied {
		a := availabilityOf(it.Available, it.UpdatedAt)
		tx.OnCommit(func() { s.cache.setAvailability(it.ProductID, a, it.Version, time.Now()) })
	}
	return err
}
