package products

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/paging"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
)

// Service handles the catalog's requests. Every change is written together with the
// events it publishes, in one transaction. Every product it answers with carries
// its availability from the read model (see Subscriptions); events do not.
type Service struct {
	db     *store.DB
	outbox *outbox.Outbox
	repo   Repo
	now    func() time.Time
	cache  *readCache // nil: every read reaches the database
	get    PreparedGet
	// inventory answers RebuildAvailability's questions; nil: it cannot rebuild.
	inventory ItemLister
}

// ItemLister reads the inventory's items a page at a time (BusInventory, over the bus).
type ItemLister interface {
	ListItems(ctx context.Context, q inventory.ListItems) (inventory.ItemPage, error)
}

// Options tunes the service. Zero values take the defaults.
type Options struct {
	// CacheTTL bounds how stale GetProduct may be when another process writes the
	// same catalog database; this service's own writes are never served stale.
	// Negative disables the cache. Default 1s.
	CacheTTL time.Duration
	// CacheSize is how many products the cache holds (default 10000).
	CacheSize int
	// Inventory is where RebuildAvailability reads the current stock; nil: nowhere.
	Inventory ItemLister
}

// NewService returns the catalog service on db, publishing through ob.
func NewService(db *store.DB, ob *outbox.Outbox, opts ...Options) *Service {
	o := Options{CacheTTL: time.Second, CacheSize: 10_000}
	if len(opts) > 0 {
		o.Inventory = opts[0].Inventory
		if opts[0].CacheTTL != 0 {
			o.CacheTTL = opts[0].CacheTTL
		}
		if opts[0].CacheSize > 0 {
			o.CacheSize = opts[0].CacheSize
		}
	}
	// Microseconds: what every back end stores, so a reply equals a later read.
	return &Service{db: db, outbox: ob, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		cache: newReadCache(o.CacheTTL, o.CacheSize), inventory: o.Inventory}
}

// write runs fn in a transaction that changes product id, keeping the read cache
// exact: the product is invalidated before the write starts and after it commits.
func (s *Service) write(ctx context.Context, id string, fn func(tx *store.Tx) error) error {
	s.cache.invalidate(id)
	defer s.cache.invalidate(id)
	return store.InTx(ctx, s.db, fn)
}

// Handlers returns the service's request handlers, for the bus.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(catalog.GetProductRequest, s.Get),
		bus.Handle(catalog.GetProductsRequest, s.GetMany),
		bus.Handle(catalog.ListProductsRequest, s.List),
		bus.Handle(catalog.CreateProductRequest, s.Create),
		bus.Handle(catalog.UpdateProductRequest, s.Update),
		bus.Handle(catalog.ArchiveProductRequest, s.Archive),
		bus.Handle(catalog.RebuildAvailabilityRequest, s.RebuildAvailability),
	}
}

// Get answers catalog.GetProduct.
func (s *Service) Get(ctx context.Context, q catalog.GetProduct) (catalog.Product, error) {
	now := time.Now()
	p, ok := s.cache.get(q.ID, now)
	if !ok {
		gen := s.cache.generation()
		var err error
		if p, err = s.get.Get(ctx, s.db.DB, q.ID); err != nil {
			return p, err
		}
		if err := s.attach(ctx, s.db, &p); err != nil {
			return catalog.Product{}, err
		}
		s.cache.put(p, gen, now)
	}
	if p.Status == catalog.StatusDraft && !q.IncludeDrafts {
		return catalog.Product{}, catalog.ErrProductNotFound.Withf("no product with id %s", q.ID)
	}
	return p, nil
}

// GetMany answers catalog.GetProducts.
func (s *Service) GetMany(ctx context.Context, q catalog.GetProducts) (catalog.Products, error) {
	if len(q.IDs) > catalog.MaxBatch {
		return catalog.Products{}, catalog.ErrInvalidProduct.Withf("at most %d ids per request", catalog.MaxBatch).OnField("ids")
	}
	// Served from the read cache where it can (checkout prices every cart through
	// here); the rest in one query.
	now := time.Now()
	found := make(map[string]catalog.Product, len(q.IDs))
	var missing []string
	for _, id := range q.IDs {
		if p, ok := s.cache.get(id, now); ok {
			found[id] = p
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		gen := s.cache.generation()
		ps, err := s.repo.GetMany(ctx, s.db, missing)
		if err != nil {
			return catalog.Products{}, err
		}
		if err := s.withAvailability(ctx, s.db, ps); err != nil {
			return catalog.Products{}, err
		}
		for _, p := range ps {
			s.cache.put(p, gen, now)
			found[p.ID] = p
		}
	}
	out := slices.SortedFunc(maps.Values(found), func(a, b catalog.Product) int { return strings.Compare(a.ID, b.ID) })
	return catalog.Products{Products: out}, nil // in id order, each product once
}

// List answers catalog.ListProducts.
func (s *Service) List(ctx context.Context, q catalog.ListProducts) (catalog.ProductPage, error) {
	f := ListFilter{Category: q.Category, Query: q.Query, After: q.After}
	switch {
	case q.Status != "" && (q.IncludeUnpublished || q.Status == catalog.StatusActive):
		f.Statuses = []catalog.Status{q.Status}
	case q.IncludeUnpublished:
	default:
		f.Statuses = []catalog.Status{catalog.StatusActive}
	}
	limit := paging.Limit(q.Limit, catalog.MaxPageSize, catalog.MaxPageSize)
	items, next, err := paging.Read(limit, func(n int) ([]catalog.Product, error) {
		f.Limit = n
		return s.repo.List(ctx, s.db, f)
	}, func(p catalog.Product) string { return p.ID })
	if err == nil {
		err = s.withAvailability(ctx, s.db, items)
	}
	if err != nil {
		return catalog.ProductPage{}, err
	}
	return catalog.ProductPage{Items: items, NextAfter: next}, nil
}

// Create answers catalog.CreateProduct.
func (s *Service) Create(ctx context.Context, c catalog.CreateProduct) (catalog.Product, error) {
	now := s.now()
	p := catalog.Product{ID: bus.NewID(), SKU: c.SKU, Name: c.Name, Description: c.Description, Category: c.Category,
		Price: c.Price, Attributes: c.Attributes, ImageURL: c.ImageURL, Status: c.Status, Version: 1, CreatedAt: now, UpdatedAt: now}
	if p.Status == "" {
		p.Status = catalog.StatusDraft
	}
	if p.Attributes == nil {
		p.Attributes = map[string]string{}
	}
	if p.Status == catalog.StatusArchived {
		return catalog.Product{}, invalid("status", "a new product is draft or active")
	}
	if err := validate(&p); err != nil {
		return catalog.Product{}, err
	}
	out := p
	err := s.write(ctx, p.ID, func(tx *store.Tx) error {
		if err := s.repo.Insert(ctx, tx, p); err != nil {
			return err
		}
		if err := s.outbox.Add(ctx, tx, catalog.ProductCreatedEvent.With(catalog.ProductCreated{Product: p})); err != nil {
			return err
		}
		return s.attach(ctx, tx, &out)
	})
	if err != nil {
		return catalog.Product{}, err
	}
	return out, nil
}

// Update answers catalog.UpdateProduct.
func (s *Service) Update(ctx context.Context, u catalog.UpdateProduct) (catalog.Product, error) {
	var out catalog.Product
	err := s.write(ctx, u.ID, func(tx *store.Tx) error {
		old, err := s.repo.Get(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if old.Version != u.ExpectedVersion {
			return catalog.ErrVersionMismatch.Withf("product %s is at version %d, not %d", u.ID, old.Version, u.ExpectedVersion)
		}
		if old.Status == catalog.StatusArchived {
			return catalog.ErrArchived
		}
		p := old
		p.Attributes = maps.Clone(old.Attributes)
		if u.Name != nil {
			p.Name = *u.Name
		}
		if u.Description != nil {
			p.Description = *u.Description
		}
		if u.Category != nil {
			p.Category = *u.Category
		}
		if u.Price != nil {
			p.Price = *u.Price
		}
		if u.Attributes != nil {
			p.Attributes = *u.Attributes
			if p.Attributes == nil {
				p.Attributes = map[string]string{}
			}
		}
		if u.ImageURL != nil {
			p.ImageURL = *u.ImageURL
		}
		if u.Status != nil {
			if *u.Status == catalog.StatusArchived {
				return invalid("status", "archive a product with the archive operation")
			}
			p.Status = *u.Status
		}
		if err := validate(&p); err != nil {
			return err
		}
		p.Version++
		p.UpdatedAt = s.now()
		if err := s.repo.Update(ctx, tx, p); err != nil {
			return err
		}
		msgs := []message.Outgoing{catalog.ProductUpdatedEvent.With(catalog.ProductUpdated{Product: p})}
		if p.Price != old.Price {
			msgs = append(msgs, catalog.PriceChangedEvent.With(catalog.PriceChanged{
				ProductID: p.ID, SKU: p.SKU, Old: old.Price, New: p.Price, Version: p.Version}))
		}
		out = p
		if err := s.outbox.Add(ctx, tx, msgs...); err != nil {
			return err
		}
		return s.attach(ctx, tx, &out)
	})
	return out, err
}

// attach sets p's availability, reading it in q.
func (s *Service) attach(ctx context.Context, q sqlx.ExtContext, p *catalog.Product) error {
	one := []catalog.Product{*p}
	if err := s.withAvailability(ctx, q, one); err != nil {
		return err
	}
	*p = one[0]
	return nil
}

// Archive answers catalog.ArchiveProduct.
func (s *Service) Archive(ctx context.Context, a catalog.ArchiveProduct) (catalog.Product, error) {
	var out catalog.Product
	err := s.write(ctx, a.ID, func(tx *store.Tx) error {
		p, err := s.repo.Get(ctx, tx, a.ID)
		if err != nil {
			return err
		}
		if a.ExpectedVersion != 0 && p.Version != a.ExpectedVersion {
			return catalog.ErrVersionMismatch.Withf("product %s is at version %d, not %d", a.ID, p.Version, a.ExpectedVersion)
		}
		if p.Status == catalog.StatusArchived {
			out = p
			return s.attach(ctx, tx, &out)
		}
		p.Status = catalog.StatusArchived
		p.Version++
		p.UpdatedAt = s.now()
		if err := s.repo.Update(ctx, tx, p); err != nil {
			return err
		}
		out = p
		if err := s.outbox.Add(ctx, tx,
			catalog.ProductArchivedEvent.With(catalog.ProductArchived{ProductID: p.ID, SKU: p.SKU, Version: p.Version}),
			catalog.ProductUpdatedEvent.With(catalog.ProductUpdated{Product: p})); err != nil {
			return err
		}
		return s.attach(ctx, tx, &out)
	})
	return out, err
}

// Count returns how many products exist (the demo seeder fills only an empty catalog).
func (s *Service) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM products`)
	return n, err
}
