// Package api is the catalog's HTTP adapter. It depends only on the catalog's
// contract and the bus, so every process serves these routes — asking the process
// that runs the catalog when it is not this one.
package api

import (
	"context"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/catalog"
)

// ProductInput is the body of a product creation.
type ProductInput struct {
	SKU         string            `json:"sku" pattern:"^[A-Z0-9][A-Z0-9_-]{0,63}$" example:"TEE-CLASSIC-M" doc:"unique stock-keeping unit: upper-case letters, digits, '-', '_'"`
	Name        string            `json:"name" minLength:"1" maxLength:"200"`
	Description string            `json:"description,omitempty" maxLength:"5000"`
	Category    string            `json:"category,omitempty" pattern:"^[a-z0-9][a-z0-9-]{0,63}$" example:"apparel"`
	Price       catalog.Money     `json:"price"`
	Attributes  map[string]string `json:"attributes,omitempty" doc:"up to 50 name/value pairs"`
	ImageURL    string            `json:"image_url,omitempty" format:"uri" maxLength:"2048"`
	Status      catalog.Status    `json:"status,omitempty" enum:"draft,active" default:"draft"`
}

// ProductPatch is the body of a product update: only the fields sent change.
type ProductPatch struct {
	Name        *string            `json:"name,omitempty" minLength:"1" maxLength:"200"`
	Description *string            `json:"description,omitempty" maxLength:"5000"`
	Category    *string            `json:"category,omitempty" pattern:"^[a-z0-9][a-z0-9-]{0,63}$"`
	Price       *catalog.Money     `json:"price,omitempty"`
	Attributes  *map[string]string `json:"attributes,omitempty" doc:"replaces all attributes"`
	ImageURL    *string            `json:"image_url,omitempty" format:"uri" maxLength:"2048"`
	Status      *catalog.Status    `json:"status,omitempty" enum:"draft,active"`
}

// Product is a product as the API answers it: catalog.Product, whose availability
// every answer carries (the catalog's events carry none, so it is optional there).
type Product catalog.Product

// TransformSchema declares availability required: the API always sends it.
func (Product) TransformSchema(_ huma.Registry, s *huma.Schema) *huma.Schema {
	if !slices.Contains(s.Required, "availability") {
		s.Required = append(s.Required, "availability")
	}
	return s
}

// ProductList is a page of products.
type ProductList struct {
	Items      []Product `json:"items"`
	NextCursor string    `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

// productOut answers one product. Its ETag covers what the body shows, the live
// availability included (productETag).
type productOut struct {
	ETag string `header:"ETag" required:"true" doc:"the representation's strong ETag: send it as If-None-Match to revalidate, as If-Match to write"`
	Body Product
}

// createdProductOut answers a created product, with where it lives.
type createdProductOut struct {
	ETag     string `header:"ETag" required:"true" doc:"the representation's strong ETag: send it as If-Match to write"`
	Location string `header:"Location" required:"true" doc:"where the created product is"`
	Body     Product
}

// productETag is the ETag of p's representation: its version and availability, so a
// change of stock changes it too (a cache must not keep a stale "in stock").
func productETag(p catalog.Product) string { return httpapi.ETagWith(p.Version, p.Availability) }

func productAnswer(p catalog.Product) *productOut {
	return &productOut{ETag: productETag(p), Body: Product(p)}
}

// Routes returns the catalog's HTTP routes, answered through b.
func Routes(b *bus.Bus) httpapi.Routes {
	h := handlers{b: b}
	return func(api huma.API) {
		tags := []string{"Catalog"}
		huma.Register(api, huma.Operation{
			OperationID: "list-products", Method: http.MethodGet, Path: "/v1/products", Tags: tags,
			Summary:     "List products",
			Description: "Active products in creation order, by pages. Admins may list drafts and archived products with status.",
			Security:    httpapi.PublicOrAdmin,
			Errors:      []int{http.StatusForbidden},
		}, h.listProducts)
		huma.Register(api, huma.Operation{
			OperationID: "get-product", Method: http.MethodGet, Path: "/v1/products/{id}", Tags: tags,
			Summary:     "Get a product",
			Description: "Active and archived products are public; drafts are visible to admins only. Sends an ETag; If-None-Match gives 304.",
			Security:    httpapi.PublicOrAdmin,
			Responses:   map[string]*huma.Response{"304": httpapi.NotModifiedResponse()},
			Metadata:    httpapi.Problems(catalog.ErrProductNotFound),
		}, h.getProduct)
		huma.Register(api, huma.Operation{
			OperationID: "create-product", Method: http.MethodPost, Path: "/v1/products", Tags: tags,
			Summary: "Create a product", DefaultStatus: http.StatusCreated, Security: httpapi.AdminOnly,
			Description: "Publishes ProductCreated. A second product with the same SKU is a 409.",
			Metadata:    httpapi.Problems(catalog.ErrInvalidProduct, catalog.ErrSKUTaken),
		}, h.createProduct)
		huma.Register(api, huma.Operation{
			OperationID: "update-product", Method: http.MethodPatch, Path: "/v1/products/{id}", Tags: tags,
			Summary:     "Update a product",
			Description: "Changes the fields sent, if If-Match holds the product's current ETag (412 otherwise). Publishes ProductUpdated, and PriceChanged when the price changes.",
			Security:    httpapi.AdminOnly,
			Errors:      []int{http.StatusPreconditionFailed, http.StatusPreconditionRequired},
			Metadata: httpapi.Problems(catalog.ErrProductNotFound, catalog.ErrVersionMismatch, catalog.ErrArchived,
				catalog.ErrInvalidProduct),
		}, h.updateProduct)
		huma.Register(api, huma.Operation{
			OperationID: "archive-product", Method: http.MethodPost, Path: "/v1/products/{id}/archive", Tags: tags,
			Summary:     "Archive a product",
			Description: "Takes the product off sale; it stays readable by id for order history. Publishes ProductArchived. Archiving twice is not an error.",
			Security:    httpapi.AdminOnly,
			Errors:      []int{http.StatusPreconditionFailed},
			Metadata:    httpapi.Problems(catalog.ErrProductNotFound, catalog.ErrVersionMismatch),
		}, h.archiveProduct)
	}
}

// handlers answers the catalog's operations by asking the catalog through the bus.
type handlers struct{ b *bus.Bus }

type listIn struct {
	Category string         `query:"category" pattern:"^[a-z0-9][a-z0-9-]{0,63}$" doc:"only products in this category"`
	Q        string         `query:"q" maxLength:"100" doc:"case-insensitive text to find in name or description"`
	Status   catalog.Status `query:"status" enum:"draft,active,archived" doc:"admins only: list products in this status"`
	httpapi.Paging
}

// listProducts answers a page of active products; admins may ask for any status
// and see unpublished products.
func (h handlers) listProducts(ctx context.Context, in *listIn) (*httpapi.PageOut[ProductList], error) {
	admin := httpapi.IsAdmin(ctx)
	if in.Status != "" && in.Status != catalog.StatusActive && !admin {
		return nil, huma.Error403Forbidden("only admins can list draft or archived products")
	}
	after, err := productCursor.Decode(in.Cursor)
	if err != nil {
		return nil, err
	}
	page, err := bus.Call(ctx, h.b, catalog.ListProductsRequest, catalog.ListProducts{
		Category: in.Category, Query: in.Q, Status: in.Status, IncludeUnpublished: admin, After: after, Limit: in.Limit})

	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	items := make([]Product, len(page.Items))
	for i, p := range page.Items {
		items[i] = Product(p)
	}
	out := &httpapi.PageOut[ProductList]{Body: ProductList{Items: items}}
	out.Body.NextCursor, out.Link = productCursor.Next(page.NextAfter, "/v1/products", in.Limit,
		map[string]string{"category": in.Category, "q": in.Q, "status": string(in.Status)})
	return out, nil
}

type getIn struct {
	ID          string `path:"id" format:"uuid" doc:"the product's id"`
	IfNoneMatch string `header:"If-None-Match" doc:"the ETag you hold; 304 if it is current"`
}

// getProduct answers a product, or 304 when the caller's ETag is current. Drafts
// are found for admins only.
func (h handlers) getProduct(ctx context.Context, in *getIn) (*productOut, error) {
	p, err := bus.Call(ctx, h.b, catalog.GetProductRequest, catalog.GetProduct{ID: in.ID, IncludeDrafts: httpapi.IsAdmin(ctx)})
	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	if etag := productETag(p); httpapi.ETagMatches(in.IfNoneMatch, etag) {
		return nil, httpapi.NotModified(etag)
	}
	return productAnswer(p), nil
}

type createIn struct {
	Body ProductInput
}

// createProduct creates a product and answers it with its Location.
func (h handlers) createProduct(ctx context.Context, in *createIn) (*createdProductOut, error) {
	p, err := bus.Call(ctx, h.b, catalog.CreateProductRequest, catalog.CreateProduct{
		SKU: in.Body.SKU, Name: in.Body.Name, Description: in.Body.Description, Category: in.Body.Category,
		Price: in.Body.Price, Attributes: in.Body.Attributes, ImageURL: in.Body.ImageURL, Status: in.Body.Status})

	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return &createdProductOut{ETag: productETag(p), Location: "/v1/products/" + p.ID, Body: Product(p)}, nil
}

type patchIn struct {
	ID      string `path:"id" format:"uuid" doc:"the product's id"`
	IfMatch string `header:"If-Match" doc:"the product's current ETag (428 without it); its version part is compared, since availability is not what you change"`
	Body    ProductPatch
}

// updateProduct changes the fields sent, at the version If-Match names (required).
func (h handlers) updateProduct(ctx context.Context, in *patchIn) (*productOut, error) {
	version, err := httpapi.IfMatchVersion(in.IfMatch, true)
	if err != nil {
		return nil, err
	}
	p, err := bus.Call(ctx, h.b, catalog.UpdateProductRequest, catalog.UpdateProduct{ID: in.ID, ExpectedVersion: version,
		Name: in.Body.Name, Description: in.Body.Description, Category: in.Body.Category, Price: in.Body.Price,
		Attributes: in.Body.Attributes, ImageURL: in.Body.ImageURL, Status: in.Body.Status})

	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return productAnswer(p), nil
}

type archiveIn struct {
	ID      string `path:"id" format:"uuid" doc:"the product's id"`
	IfMatch string `header:"If-Match" doc:"archive only if the product is at this ETag's version"`
}

// archiveProduct takes a product off sale, at the version If-Match names if any.
func (h handlers) archiveProduct(ctx context.Context, in *archiveIn) (*productOut, error) {
	version, err := httpapi.IfMatchVersion(in.IfMatch, false)
	if err != nil {
		return nil, err
	}
	p, err := bus.Call(ctx, h.b, catalog.ArchiveProductRequest, catalog.ArchiveProduct{ID: in.ID, ExpectedVersion: version})
	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return productAnswer(p), nil
}

var productCursor = httpapi.Cursor{Prefix: "p1."}
