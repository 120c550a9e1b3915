// Package api is the inventory's HTTP adapter, for admins. It depends only on the
// inventory's contract and the bus, so every process serves these routes — asking
// the process that runs the inventory when it is not this one.
package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/inventory"
)

// AdjustmentInput is the body of a stock adjustment.
type AdjustmentInput struct {
	Delta     int64  `json:"delta" minimum:"-1000000" maximum:"1000000" doc:"units received (positive) or written off (negative); 0 only to set low_stock_threshold"`
	Reason    string `json:"reason" minLength:"1" maxLength:"500" example:"received from supplier" doc:"why: kept in the audit trail"`
	Threshold *int64 `json:"low_stock_threshold,omitempty" minimum:"0" maximum:"1000000000" doc:"a new low-stock threshold"`
}

// ItemList is a page of items.
type ItemList struct {
	Items      []inventory.Item `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

// AdjustmentList is a page of an item's adjustments, newest first.
type AdjustmentList struct {
	Items      []inventory.Adjustment `json:"items"`
	NextCursor string                 `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

type itemOut struct {
	ETag string `header:"ETag" required:"true" doc:"the representation's strong ETag: send it as If-None-Match to revalidate, as If-Match to write"`
	Body inventory.Item
}

// Routes returns the inventory's HTTP routes, answered through b.
func Routes(b *bus.Bus) httpapi.Routes {
	h := handlers{b: b}
	return func(api huma.API) {
		tags := []string{"Inventory"}
		huma.Register(api, huma.Operation{
			OperationID: "list-inventory", Method: http.MethodGet, Path: "/v1/inventory", Tags: tags,
			Summary: "List stock", Description: "Every item's stock, in SKU order, by pages.",
			Security: httpapi.AdminOnly, Metadata: httpapi.Problems(inventory.ErrInvalidInput),
		}, h.listItems)
		huma.Register(api, huma.Operation{
			OperationID: "get-inventory-item", Method: http.MethodGet, Path: "/v1/inventory/{sku}", Tags: tags,
			Summary: "Get an item's stock", Description: "Sends an ETag (the item's version); If-None-Match gives 304.",
			Security:  httpapi.AdminOnly,
			Responses: map[string]*huma.Response{"304": httpapi.NotModifiedResponse()},
			Metadata:  httpapi.Problems(inventory.ErrItemNotFound),
		}, h.getItem)
		huma.Register(api, huma.Operation{
			OperationID: "adjust-inventory", Method: http.MethodPost, Path: "/v1/inventory/{sku}/adjustments", Tags: tags,
			Summary: "Adjust an item's stock",
			Description: "Changes the units on hand by delta, with a reason kept in the audit trail. On hand may not " +
				"fall below what is reserved for orders (409). With If-Match, only if the item is at that ETag (412). " +
				"Publishes StockChanged, and StockLow when available stock falls to the threshold.",
			Security: httpapi.AdminOnly,
			Errors:   []int{http.StatusPreconditionFailed},
			Metadata: httpapi.Problems(inventory.ErrItemNotFound, inventory.ErrInvalidInput, inventory.ErrBelowReserved,
				inventory.ErrVersionMismatch),
		}, h.adjust)
		huma.Register(api, huma.Operation{
			OperationID: "list-inventory-adjustments", Method: http.MethodGet, Path: "/v1/inventory/{sku}/adjustments", Tags: tags,
			Summary: "List an item's adjustments", Description: "The audit trail of an item's stock, newest first, by pages.",
			Security: httpapi.AdminOnly, Metadata: httpapi.Problems(inventory.ErrItemNotFound, inventory.ErrInvalidInput),
		}, h.listAdjustments)
	}
}

// handlers answers the inventory's operations by asking the inventory through the bus.
type handlers struct{ b *bus.Bus }

type listIn struct {
	httpapi.Paging
}

// listItems answers a page of items, in SKU order.
func (h handlers) listItems(ctx context.Context, in *listIn) (*httpapi.PageOut[ItemList], error) {
	after, err := itemCursor.Decode(in.Cursor)
	if err != nil {
		return nil, err
	}
	page, err := bus.Call(ctx, h.b, inventory.ListItemsRequest, inventory.ListItems{After: after, Limit: in.Limit})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	out := &httpapi.PageOut[ItemList]{Body: ItemList{Items: httpapi.NotNull(page.Items)}}
	out.Body.NextCursor, out.Link = itemCursor.Next(page.NextAfter, "/v1/inventory", in.Limit, nil)
	return out, nil
}

type getIn struct {
	SKU         string `path:"sku" pattern:"^[A-Z0-9][A-Z0-9_-]{0,63}$" doc:"the item's SKU"`
	IfNoneMatch string `header:"If-None-Match" doc:"the ETag you hold; 304 if it is current"`
}

// getItem answers an item's stock, or 304 when the caller's ETag is current.
func (h handlers) getItem(ctx context.Context, in *getIn) (*itemOut, error) {
	it, err := bus.Call(ctx, h.b, inventory.GetItemRequest, inventory.GetItem{SKU: in.SKU})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	if etag := httpapi.ETag(it.Version); httpapi.ETagMatches(in.IfNoneMatch, etag) {
		return nil, httpapi.NotModified(etag)
	}
	return &itemOut{ETag: httpapi.ETag(it.Version), Body: it}, nil
}

type adjustIn struct {
	SKU     string `path:"sku" pattern:"^[A-Z0-9][A-Z0-9_-]{0,63}$" doc:"the item's SKU"`
	IfMatch string `header:"If-Match" doc:"optional: adjust only if the item is at this ETag"`
	Body    AdjustmentInput
}

// adjust changes an item's stock in the signed-in admin's name, at the version
// If-Match names if any.
func (h handlers) adjust(ctx context.Context, in *adjustIn) (*itemOut, error) {
	version, err := httpapi.IfMatchVersion(in.IfMatch, false)
	if err != nil {
		return nil, err
	}
	p, _ := httpapi.PrincipalFrom(ctx) // AdminOnly: there is one
	it, err := bus.Call(ctx, h.b, inventory.AdjustRequest, inventory.Adjust{SKU: in.SKU, Delta: in.Body.Delta,
		Reason: in.Body.Reason, Actor: p.UserID, ExpectedVersion: version, SetLowMark: in.Body.Threshold})

	if err != nil {
		return nil, httpapi.BodyProblem(renameField(err))
	}
	return &itemOut{ETag: httpapi.ETag(it.Version), Body: it}, nil
}

type adjustmentsIn struct {
	SKU string `path:"sku" pattern:"^[A-Z0-9][A-Z0-9_-]{0,63}$" doc:"the item's SKU"`
	httpapi.Paging
}

// listAdjustments answers a page of an item's audit trail, newest first.
func (h handlers) listAdjustments(ctx context.Context, in *adjustmentsIn) (*httpapi.PageOut[AdjustmentList], error) {
	before, err := adjustmentCursor.Decode(in.Cursor)
	if err != nil {
		return nil, err
	}
	page, err := bus.Call(ctx, h.b, inventory.ListAdjustmentsRequest, inventory.ListAdjustments{SKU: in.SKU, Before: before, Limit: in.Limit})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	out := &httpapi.PageOut[AdjustmentList]{Body: AdjustmentList{Items: httpapi.NotNull(page.Items)}}
	out.Body.NextCursor, out.Link = adjustmentCursor.Next(page.NextBefore, "/v1/inventory/"+in.SKU+"/adjustments", in.Limit, nil)
	return out, nil
}

// renameField names the contract's set_low_mark as the body names it.
func renameField(err error) error {
	var be *message.Error
	if errors.As(err, &be) && be.Field == "set_low_mark" {
		return be.OnField("low_stock_threshold")
	}
	return err
}

// Cursors are opaque to clients: a prefix that says what they page over, and the
// last key of the previous page.
var (
	itemCursor       = httpapi.Cursor{Prefix: "i1.", Valid: validCursorSKU}
	adjustmentCursor = httpapi.Cursor{Prefix: "a1."}
)

func validCursorSKU(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
}
