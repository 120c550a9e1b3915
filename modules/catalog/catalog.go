// Package catalog is the contract of the catalog module: the products a shop sells,
// their prices and their publication status. Other modules use this package — its
// messages, replies, events and errors — and nothing else of the catalog.
//
// Requests (request–reply; served by the process that runs catalog):
//   - GetProduct, GetProducts (batch, for pricing), ListProducts: reads, safe to retry.
//   - CreateProduct, UpdateProduct, ArchiveProduct: writes. UpdateProduct and
//     ArchiveProduct carry the version they expect, so a retry after a lost reply
//     fails with ErrVersionMismatch instead of applying twice; CreateProduct is
//     protected by the unique SKU (a retry fails with ErrSKUTaken).
//
// Events (published through catalog's outbox, at least once, in commit order per product):
// ProductCreated, ProductUpdated, PriceChanged, ProductArchived.
//
// Availability: every product the catalog answers with (reads and the replies to
// writes) carries its Availability, a read model the catalog builds from the
// inventory's StockChanged events. It is eventually consistent: it lags the
// inventory by the inventory outbox relay's delay — normally milliseconds, at most
// until the relay's retry succeeds when delivery fails, plus the broker's delivery
// in a split deployment. It tells a shopper what to expect; only the inventory's
// reservation decides whether an order gets the stock. Events carry no
// availability: it is not the catalog's own data.
package catalog

import (
	"maps"
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// Money is an amount in a currency's minor units and its ISO 4217 code; every
// module shares the one type.
type Money = message.Money

// Status is a product's publication state. Only active products are sold and shown
// to the public; archived ones stay readable by id for order history.
type Status string

// Product statuses.
const (
	StatusDraft    Status = "draft"
	StatusActive   Status = "active"
	StatusArchived Status = "archived"
)

// Product is a thing the shop sells.
type Product struct {
	ID          string            `json:"id" format:"uuid"`
	SKU         string            `json:"sku" example:"TEE-CLASSIC-M"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Category    string            `json:"category" example:"apparel"`
	Price       Money             `json:"price"`
	Attributes  map[string]string `json:"attributes"`
	ImageURL    string            `json:"image_url"`
	Status      Status            `json:"status" enum:"draft,active,archived"`
	Version     int64             `json:"version" doc:"increases by one on every change; the ETag"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	// Availability is the product's stock as last heard from the inventory; nil
	// only in events, which carry the catalog's own data alone.
	Availability *Availability `json:"availability,omitempty" doc:"stock as last heard from the inventory (eventually consistent)"`
}

// Clone returns a copy of p that shares no memory with it (the bus uses it to keep
// sender and receiver apart in one process).
func (p Product) Clone() Product {
	p.Attributes = maps.Clone(p.Attributes)
	if p.Availability != nil {
		a := *p.Availability
		p.Availability = &a
	}
	return p
}

// Availability statuses.
const (
	AvailabilityInStock    = "in_stock"
	AvailabilityOutOfStock = "out_of_stock"
	AvailabilityUnknown    = "unknown" // the inventory has said nothing about the product yet
)

// Availability is a product's stock as the catalog last heard it from the
// inventory (see the package comment: it may lag behind).
type Availability struct {
	Status    string    `json:"status" enum:"in_stock,out_of_stock,unknown"`
	Available int64     `json:"available" minimum:"0" doc:"units that could be ordered, as of as_of"`
	AsOf      time.Time `json:"as_of,omitzero" doc:"when the inventory's numbers were these; absent when unknown"`
}

// Limits on product fields, enforced by the catalog whoever sends the request.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 5000
	MaxAttributes     = 50
	MaxAttrKeyLen     = 64
	MaxAttrValueLen   = 500
	MaxBatch          = 100 // ids per GetProducts
	MaxPageSize       = 100
	MaxQueryLen       = 100
)

// GetProduct asks for one product. Drafts are found only with IncludeDrafts.
type GetProduct struct {
	ID            string `json:"id"`
	IncludeDrafts bool   `json:"include_drafts"`
}

// GetProducts asks for up to MaxBatch products by id, whatever their status (callers
// that sell check Status). Unknown ids are left out of the reply.
type GetProducts struct {
	IDs []string `json:"ids"`
}

// Products is the reply to GetProducts.
type Products struct {
	Products []Product `json:"products"`
}

// ListProducts asks for a page of products in id (creation) order. Without
// IncludeUnpublished only active products are listed.
type ListProducts struct {
	Category           string `json:"category"`
	Query              string `json:"query"` // matched case-insensitively against name and description
	Status             Status `json:"status"`
	IncludeUnpublished bool   `json:"include_unpublished"`
	After              string `json:"after"` // the last id of the previous page
	Limit              int    `json:"limit"`
}

// ProductPage is the reply to ListProducts. NextAfter is empty on the last page.
type ProductPage struct {
	Items     []Product `json:"items"`
	NextAfter string    `json:"next_after"`
}

// CreateProduct adds a product. Status defaults to draft.
type CreateProduct struct {
	SKU         string            `json:"sku"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Category    string            `json:"category"`
	Price       Money             `json:"price"`
	Attributes  map[string]string `json:"attributes"`
	ImageURL    string            `json:"image_url"`
	Status      Status            `json:"status"`
}

// UpdateProduct changes the fields that are set, if the product is still at
// ExpectedVersion. Archived products cannot be updated.
type UpdateProduct struct {
	ID              string             `json:"id"`
	ExpectedVersion int64              `json:"expected_version"`
	Name            *string            `json:"name,omitempty"`
	Description     *string            `json:"description,omitempty"`
	Category        *string            `json:"category,omitempty"`
	Price           *Money             `json:"price,omitempty"`
	Attributes      *map[string]string `json:"attributes,omitempty"`
	ImageURL        *string            `json:"image_url,omitempty"`
	Status          *Status            `json:"status,omitempty" doc:"draft or active; archive with ArchiveProduct"`
}

// ArchiveProduct archives a product; ExpectedVersion 0 skips the version check.
// Archiving an archived product is not an error.
type ArchiveProduct struct {
	ID              string `json:"id"`
	ExpectedVersion int64  `json:"expected_version"`
}

// RebuildAvailability asks the catalog to rewrite its availability read model
// from the inventory's current stock — every item, asked page by page with
// inventory.ListItems — rather than from the changes it heard of: for a model
// that missed events (dead letters, a catalog started after the stock was made)
// or drifted. A product's availability is rewritten unless the model holds a
// newer version of its item than the inventory answered (a change that arrived
// while the rebuild ran).
type RebuildAvailability struct{}

// AvailabilityRebuilt is the reply to RebuildAvailability.
type AvailabilityRebuilt struct {
	Items   int `json:"items" doc:"inventory items read"`
	Updated int `json:"updated" doc:"products whose availability was written"`
}

// The catalog's requests.
var (
	// Handled by products.(*Service).Get.
	GetProductRequest = message.NewRequest[GetProduct, Product]("catalog.GetProduct")
	// Handled by products.(*Service).GetMany.
	GetProductsRequest = message.NewRequest[GetProducts, Products]("catalog.GetProducts")
	// Handled by products.(*Service).List.
	ListProductsRequest = message.NewRequest[ListProducts, ProductPage]("catalog.ListProducts")
	// Handled by products.(*Service).Create.
	CreateProductRequest = message.NewRequest[CreateProduct, Product]("catalog.CreateProduct")
	// Handled by products.(*Service).Update.
	UpdateProductRequest = message.NewRequest[UpdateProduct, Product]("catalog.UpdateProduct")
	// Handled by products.(*Service).Archive.
	ArchiveProductRequest = message.NewRequest[ArchiveProduct, Product]("catalog.ArchiveProduct")
	// Handled by products.(*Service).RebuildAvailability.
	RebuildAvailabilityRequest = message.NewRequest[RebuildAvailability, AvailabilityRebuilt]("catalog.RebuildAvailability")
)

// ProductCreated is published when a product is created.
type ProductCreated struct {
	Product Product `json:"product"`
}

// ProductUpdated is published on every change of a product, with its new state.
type ProductUpdated struct {
	Product Product `json:"product"`
}

// PriceChanged is published, besides ProductUpdated, when a price changes.
type PriceChanged struct {
	ProductID string `json:"product_id"`
	SKU       string `json:"sku"`
	Old       Money  `json:"old"`
	New       Money  `json:"new"`
	Version   int64  `json:"version"`
}

// ProductArchived is published when a product is archived.
type ProductArchived struct {
	ProductID string `json:"product_id"`
	SKU       string `json:"sku"`
	Version   int64  `json:"version"`
}

// The catalog's events.
var (
	// Handled by inventory: stock.(*Service).handleProductCreated.
	ProductCreatedEvent = message.NewEvent[ProductCreated]("catalog.ProductCreated")
	// Handled by no module.
	ProductUpdatedEvent = message.NewEvent[ProductUpdated]("catalog.ProductUpdated")
	// Handled by no module.
	PriceChangedEvent = message.NewEvent[PriceChanged]("catalog.PriceChanged")
	// Handled by no module.
	ProductArchivedEvent = message.NewEvent[ProductArchived]("catalog.ProductArchived")
)

// Errors the catalog returns; errors.Is matches them on either side of the bus.
var (
	ErrProductNotFound = message.NewError(message.NotFound, "catalog.product_not_found", "product not found")
	ErrSKUTaken        = message.NewError(message.Conflict, "catalog.sku_taken", "a product with this SKU exists")
	ErrVersionMismatch = message.NewError(message.Precondition, "catalog.version_mismatch", "the product has changed since you read it")
	ErrArchived        = message.NewError(message.Conflict, "catalog.archived", "the product is archived and cannot change")
	ErrInvalidProduct  = message.NewError(message.Invalid, "catalog.invalid_product", "the product is not valid")
)
