// Package api is the catalog's HTTP adapter. It depends only on the catalog's
// contract and the bus, so every process serves these routes — asking the process
// that runs the catalog when it is not this one.
package api

import (
	"context"
	"net/http"

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

// ProductList is a page of products.
type ProductList struct {
	Items      []catalog.Product `json:"items"`
	NextCursor string            `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

type productOut struct {
	ETag     string `header:"ETag"`
	Location string `header:"Location"`
	Body     catalog.Product
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
		}, h.listProducts)
		huma.Register(api, huma.Operation{
			OperationID: "get-product", Method: http.MethodGet, Path: "/v1/products/{id}", Tags: tags,
			Summary:     "Get a product",
			Description: "Active and archived products are public; drafts are visible to admins only. Sends an ETag; If-None-Match gives 304.",
			Security:    httpapi.PublicOrAdmin,
			Responses:   map[string]*huma.Response{"304": {Description: "Not Modified: your copy is current"}},
		}, h.getProduct)
		huma.Register(api, huma.Operation{
			OperationID: "create-product", Method: http.MethodPost, Path: "/v1/products", Tags: tags,
			Summary: "Create a product", DefaultStatus: http.StatusCreated, Security: httpapi.AdminOnly,
			Description: "Publishes ProductCreated. A second product with the same SKU is a 409.",
		}, h.createProduct)
		huma.Register(api, huma.Operation{
			OperationID: "update-product", Method: http.MethodPatch, Path: "/v1/products/{id}", Tags: tags,
			Summary:     "Update a product",
			Description: "Changes the fields sent, if If-Match holds the product's current ETag (412 otherwise). Publishes ProductUpdated, and PriceChanged when the price changes.",
			Security:    httpapi.AdminOnly,
			Errors:      []int{http.StatusPreconditionFailed, http.StatusPreconditionRequired},
		}, h.updateProduct)
		huma.Register(api, huma.Operation{
			OperationID: "archive-product", Method: http.MethodPost, Path: "/v1/products/{id}/archive", Tags: tags,
			Summary:     "Archive a product",
			Description: "Takes the product off sale; it stays readable by id for order history. Publishes ProductArchived. Archiving twice is not an error.",
			Security:    httpapi.AdminOnly,
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
	out := &httpapi.PageOut[ProductList]{Body: ProductList{Items: httpapi.NotNull(page.Items)}}
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
	if httpapi.ETagMatches(in.IfNoneMatch, p.Version) {
		return nil, huma.Status304NotModified()
	}
	return &productOut{ETag: httpapi.ETag(p.Version), Body: p}, nil
}

type createIn struct {
	Body ProductInput
}

// createProduct creates a product and answers it with its Location.
func (h handlers) createProduct(ctx context.Context, in *createIn) (*productOut, error) {
	p, err := bus.Call(ctx, h.b, catalog.CreateProductRequest, catalog.CreateProduct{
		SKU: in.Body.SKU, Name: in.Body.Name, Description: in.Body.Description, Category: in.Body.Category,
		Price: in.Body.Price, Attributes: in.Body.Attributes, ImageURL: in.Body.ImageURL, Status: in.Body.Status})

	if err != nil {
		return nil, httpapi.BodyProblem(err)
	}
	return &productOut{ETag: httpapi.ETag(p.Version), Location: "/v1/products/" + p.ID, Body: p}, nil
}

type patchIn struct {
	ID      string `path:"id" format:"uuid" doc:"the product's id"`
	IfMatch string `header:"If-Match" doc:"required: the product's current ETag (428 without it)"`
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
	return &productOut{ETag: httpapi.ETag(p.Version), Body: p}, nil
}

type archiveIn struct {
	ID      string `path:"id" format:"uuid" doc:"the product's id"`
	IfMatch string `header:"If-Match" doc:"optional: archive only if the product is at this ETag"`
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
	return &productOut{ETag: httpapi.ETag(p.Version), Body: p}, nil
}

var productCursor = httpapi.Cursor{Prefix: "p1."}
