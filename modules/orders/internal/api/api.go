// Package api is the orders module's HTTP adapter: the cart, checkout, orders, the
// order status stream and the admin views of checkout sagas. It depends only on the
// orders contract and the bus, so every process serves these routes — asking the
// process that runs orders when it is not this one. Who the customer is always comes
// from the access token, never from a body.
package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/sse"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/orders"
)

// CartItemInput is the body of a cart item change.
type CartItemInput struct {
	Quantity int64 `json:"quantity" minimum:"1" maximum:"100" doc:"units of the product in the cart"`
}

// PlaceOrderInput is the body of a checkout.
type PlaceOrderInput struct {
	PaymentToken string `json:"payment_token" minLength:"1" maxLength:"100" example:"tok_visa" doc:"the payment provider's token for the customer's card"`
}

// RefundInput is the body of an admin's refund.
type RefundInput struct {
	Amount int64  `json:"amount,omitempty" minimum:"0" doc:"minor units to refund; 0 or absent: all that is left"`
	Reason string `json:"reason" minLength:"1" maxLength:"500"`
}

// OrderList is a page of orders, newest first.
type OrderList struct {
	Items      []orders.Order `json:"items"`
	NextCursor string         `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

// SagaList is a page of checkout sagas, oldest first.
type SagaList struct {
	Items      []orders.Saga `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

// OrderStatus is an order after a change, as the status event of the order stream
// carries it.
type OrderStatus orders.Order

// streamWait is how long each long poll of the order stream waits for a change. It
// also bounds how long a stream stalls when the process answering the poll dies
// during it (no answer comes over the bus; the chaos harness saw ~25 s stalls):
// a few seconds, at the price of one idle poll per open stream every streamWait.
const streamWait = 5 * time.Second

type orderOut struct {
	Body orders.Order
}

type cartOut struct {
	Body orders.Cart
}

// cartAnswer answers c. A version-1 reply (from an orders process of the previous
// release, while both run) gave an empty cart a total without a currency; version 2
// sends none, and so does the API either way.
func cartAnswer(c orders.Cart) *cartOut {
	if c.Total != nil && c.Total.Currency == "" {
		c.Total = nil
	}
	return &cartOut{Body: c}
}

// Routes returns the orders module's HTTP routes, answered through b.
func Routes(b *bus.Bus) httpapi.Routes {
	h := handlers{b: b}
	return func(api huma.API) {
		cartRoutes(api, h)
		orderRoutes(api, h)
		streamRoute(api, h)
		sagaRoutes(api, h)
	}
}

// cartRoutes registers the signed-in caller's cart.
func cartRoutes(api huma.API, h handlers) {
	tags := []string{"Cart"}
	huma.Register(api, huma.Operation{
		OperationID: "get-cart", Method: http.MethodGet, Path: "/v1/cart", Tags: tags,
		Summary:     "Get your cart",
		Description: "Your cart priced now. Lines whose price changed since you last looked carry previous_price, products no longer sold are unavailable, and notices say so; what you see here counts as seen.",
		Security:    httpapi.SignedIn,
	}, h.getCart)
	huma.Register(api, huma.Operation{
		OperationID: "set-cart-item", Method: http.MethodPut, Path: "/v1/cart/items/{product_id}", Tags: tags,
		Summary:     "Put a product in your cart",
		Description: "Sets the quantity of a product in your cart, adding it at its current price. A cart holds up to 50 products, all in one currency.",
		Security:    httpapi.SignedIn,
		Metadata: httpapi.Problems(orders.ErrInvalidInput, orders.ErrCartFull, orders.ErrProductUnavailable,
			orders.ErrCurrencyMismatch),
	}, h.setCartItem)
	huma.Register(api, huma.Operation{
		OperationID: "remove-cart-item", Method: http.MethodDelete, Path: "/v1/cart/items/{product_id}", Tags: tags,
		Summary:     "Remove a product from your cart",
		Description: "Removing a product that is not in the cart is not an error. Answers the cart.",
		Security:    httpapi.SignedIn,
		Metadata:    httpapi.Problems(orders.ErrInvalidInput),
	}, h.removeCartItem)
}

// orderRoutes registers checkout, the caller's orders, and the admin views and
// refunds of everyone's.
func orderRoutes(api huma.API, h handlers) {
	tags := []string{"Orders"}
	huma.Register(api, huma.Operation{
		OperationID: "place-order", Method: http.MethodPost, Path: "/v1/orders", Tags: tags,
		Summary: "Check out your cart",
		Description: "Prices the cart and stores it as a pending order, then reserves stock and authorizes the payment " +
			"asynchronously: follow the order at Location or its event stream. 409 when prices changed since you last " +
			"viewed the cart (the cart is re-priced: review it and check out again). The same Idempotency-Key with the " +
			"same body answers the same order (Idempotent-Replayed: true); with another body, 422.",
		Security: httpapi.SignedIn, DefaultStatus: http.StatusAccepted,
		Metadata: httpapi.Problems(orders.ErrInvalidInput, orders.ErrCartEmpty, orders.ErrProductUnavailable,
			orders.ErrCurrencyMismatch, orders.ErrPriceChanged, orders.ErrIdempotencyKeyReused),
	}, h.placeOrder)
	huma.Register(api, huma.Operation{
		OperationID: "list-orders", Method: http.MethodGet, Path: "/v1/orders", Tags: tags,
		Summary: "List your orders", Description: "Your orders, newest first, by pages.",
		Security: httpapi.SignedIn, Metadata: httpapi.Problems(orders.ErrInvalidInput),
	}, h.listOwnOrders)
	huma.Register(api, huma.Operation{
		OperationID: "list-all-orders", Method: http.MethodGet, Path: "/v1/ops/orders", Tags: []string{"Operations"},
		Summary: "List every customer's orders", Description: "All orders (or one customer's), newest first, by pages. Admins only.",
		Security: httpapi.AdminOnly, Metadata: httpapi.Problems(orders.ErrInvalidInput),
	}, h.listAllOrders)
	huma.Register(api, huma.Operation{
		OperationID: "get-order", Method: http.MethodGet, Path: "/v1/orders/{id}", Tags: tags,
		Summary: "Get an order", Description: "Your order (admins: any order). Another customer's order is a 404.",
		Security: httpapi.SignedIn, Metadata: httpapi.Problems(orders.ErrOrderNotFound),
	}, h.getOrder)
	huma.Register(api, huma.Operation{
		OperationID: "cancel-order", Method: http.MethodPost, Path: "/v1/orders/{id}/cancel", Tags: tags,
		Summary: "Cancel an order",
		Description: "A pending order is cancelled at once (the reservation released, the authorization voided). A " +
			"confirmed order is cancelled, refunded in full and restocked — once its payment is captured, if it is " +
			"still being completed. A rejected or cancelled order cannot be cancelled (409).",
		Security: httpapi.SignedIn, DefaultStatus: http.StatusAccepted,
		Metadata: httpapi.Problems(orders.ErrOrderNotFound, orders.ErrNotCancellable, orders.ErrInvalidInput),
	}, h.cancelOrder)
	huma.Register(api, huma.Operation{
		OperationID: "refund-order", Method: http.MethodPost, Path: "/v1/orders/{id}/refunds", Tags: tags,
		Summary: "Refund an order",
		Description: "Refunds some or all of a confirmed, captured order without restocking it (a goodwill refund). " +
			"The refund is made asynchronously; the order's refunded amount grows when it is. 409 for orders that " +
			"cannot be refunded.",
		Security: httpapi.AdminOnly, DefaultStatus: http.StatusAccepted,
		Metadata: httpapi.Problems(orders.ErrOrderNotFound, orders.ErrNotRefundable, orders.ErrInvalidInput),
	}, h.refundOrder)
}

// streamRoute registers an order's event stream, for its owner and admins.
func streamRoute(api huma.API, h handlers) {
	sse.Register(api, huma.Operation{
		OperationID: "stream-order", Method: http.MethodGet, Path: "/v1/orders/{id}/events", Tags: []string{"Orders"},
		Summary: "Follow an order",
		Description: "Server-sent events: first an `order` event with the order as it is, then a `status` event with the " +
			"order after each change; the stream ends once the order is no longer pending. Each event's id is the " +
			"order's version. Reconnect to resume (the first event brings you up to date).",
		Security: httpapi.SignedIn, Metadata: httpapi.Problems(orders.ErrOrderNotFound),
		// The owner check runs before the stream starts: another customer's order is a
		// plain 404 rather than an empty stream.
		Middlewares: huma.Middlewares{httpapi.Preload(api, "id", h.ownedOrder)},
	}, map[string]any{"order": orders.Order{}, "status": OrderStatus{}}, h.streamOrder)
}

// sagaRoutes registers the admin views of checkout sagas.
func sagaRoutes(api huma.API, h handlers) {
	tags := []string{"Operations"}
	huma.Register(api, huma.Operation{
		OperationID: "list-sagas", Method: http.MethodGet, Path: "/v1/ops/sagas", Tags: tags,
		Summary: "List checkout sagas", Description: "Checkout sagas, oldest first, optionally in one state (say, the ones still compensating).",
		Security: httpapi.AdminOnly, Metadata: httpapi.Problems(orders.ErrInvalidInput),
	}, h.listSagas)
	huma.Register(api, huma.Operation{
		OperationID: "get-saga", Method: http.MethodGet, Path: "/v1/ops/sagas/{order_id}", Tags: tags,
		Summary: "Get an order's checkout saga", Description: "The saga's state, deadline, attempts and full history.",
		Security: httpapi.AdminOnly, Metadata: httpapi.Problems(orders.ErrSagaNotFound),
	}, h.getSaga)
}

// handlers answers the orders operations by asking the orders module through the
// bus. Who the customer is comes from the access token (customer), never a body.
type handlers struct{ b *bus.Bus }

// ownedOrder returns order id if the caller owns it or is an admin. Anyone else gets
// exactly the answer for an order that does not exist: both are built here from the
// same error, so they cannot drift apart and tell one from the other.
func (h handlers) ownedOrder(ctx context.Context, id string) (orders.Order, error) {
	notFound := orders.ErrOrderNotFound.Withf("no order with id %s", id)
	o, err := bus.Call(ctx, h.b, orders.GetOrderRequest, orders.GetOrder{ID: id})
	if errors.Is(err, orders.ErrOrderNotFound) {
		err = notFound
	}
	if err != nil {
		return o, httpapi.Problem(err)
	}
	if err := httpapi.RequireOwner(ctx, o.CustomerID, notFound); err != nil {
		return orders.Order{}, err
	}
	return o, nil
}

// getCart answers the caller's cart, priced now.
func (h handlers) getCart(ctx context.Context, _ *struct{}) (*cartOut, error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := bus.Call(ctx, h.b, orders.GetCartRequest, orders.GetCart{CustomerID: id})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return cartAnswer(c), nil
}

type setCartItemIn struct {
	ProductID string `path:"product_id" format:"uuid" doc:"the product's id"`
	Body      CartItemInput
}

// setCartItem sets a product's quantity in the caller's cart and answers the cart.
func (h handlers) setCartItem(ctx context.Context, in *setCartItemIn) (*cartOut, error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := bus.Call(ctx, h.b, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: id, ProductID: in.ProductID, Quantity: in.Body.Quantity})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return cartAnswer(c), nil
}

type removeCartItemIn struct {
	ProductID string `path:"product_id" format:"uuid" doc:"the product's id"`
}

// removeCartItem takes a product out of the caller's cart and answers the cart.
func (h handlers) removeCartItem(ctx context.Context, in *removeCartItemIn) (*cartOut, error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := bus.Call(ctx, h.b, orders.RemoveCartItemRequest, orders.RemoveCartItem{CustomerID: id, ProductID: in.ProductID})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return cartAnswer(c), nil
}

type placeIn struct {
	IdempotencyKey string `header:"Idempotency-Key" required:"true" minLength:"1" maxLength:"200" doc:"required: a key unique to this checkout; retrying with the same key and body answers the same order"`
	Body           PlaceOrderInput
}

// placeOrder checks out the caller's cart, once per idempotency key and body.
func (h handlers) placeOrder(ctx context.Context, in *placeIn) (*httpapi.Created[orders.Order], error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	placed, err := bus.Call(ctx, h.b, orders.PlaceOrderRequest, orders.PlaceOrder{CustomerID: id, PaymentToken: in.Body.PaymentToken,
		IdempotencyKey: in.IdempotencyKey, RequestHash: httpapi.BodyHash(in.Body)})

	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return httpapi.NewCreated("/v1/orders/"+placed.Order.ID, placed.Order, placed.Replayed), nil
}

type orderListIn struct {
	Status orders.Status `query:"status" enum:"pending,confirmed,rejected,cancelled" doc:"only orders in this status"`
	httpapi.Paging
}

type allOrdersIn struct {
	CustomerID string        `query:"customer_id" format:"uuid" doc:"only this customer's orders"`
	Status     orders.Status `query:"status" enum:"pending,confirmed,rejected,cancelled" doc:"only orders in this status"`
	httpapi.Paging
}

// listOwnOrders answers a page of the caller's orders.
func (h handlers) listOwnOrders(ctx context.Context, in *orderListIn) (*httpapi.PageOut[OrderList], error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	return h.listOrders(ctx, "/v1/orders", id, *in)
}

// listAllOrders answers a page of every customer's orders, or one customer's.
func (h handlers) listAllOrders(ctx context.Context, in *allOrdersIn) (*httpapi.PageOut[OrderList], error) {
	return h.listOrders(ctx, "/v1/ops/orders", in.CustomerID, orderListIn{Status: in.Status, Paging: in.Paging})
}

// listOrders answers a page of orders at path: customerID's, or everyone's when it
// is empty.
func (h handlers) listOrders(ctx context.Context, path, customerID string, in orderListIn) (*httpapi.PageOut[OrderList], error) {
	before, err := orderCursor.Decode(in.Cursor)
	if err != nil {
		return nil, err
	}
	page, err := bus.Call(ctx, h.b, orders.ListOrdersRequest, orders.ListOrders{CustomerID: customerID, Status: in.Status, Before: before, Limit: in.Limit})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	filters := map[string]string{"status": string(in.Status)}
	if path != "/v1/orders" {
		filters["customer_id"] = customerID // on the caller's own list it is implied
	}
	out := &httpapi.PageOut[OrderList]{Body: OrderList{Items: httpapi.NotNull(page.Items)}}
	out.Body.NextCursor, out.Link = orderCursor.Next(page.NextBefore, path, in.Limit, filters)
	return out, nil
}

type orderIn struct {
	ID string `path:"id" format:"uuid" doc:"the order's id"`
}

// getOrder answers an order to its owner or an admin (see ownedOrder).
func (h handlers) getOrder(ctx context.Context, in *orderIn) (*orderOut, error) {
	o, err := h.ownedOrder(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &orderOut{Body: o}, nil
}

// cancelOrder cancels an order for its owner, or for an admin in the shop's name.
func (h handlers) cancelOrder(ctx context.Context, in *orderIn) (*orderOut, error) {
	if _, err := h.ownedOrder(ctx, in.ID); err != nil {
		return nil, err
	}
	p, _ := httpapi.PrincipalFrom(ctx)
	reason := ""
	if p.Role == "admin" {
		reason = "cancelled by the shop"
	}
	o, err := bus.Call(ctx, h.b, orders.CancelOrderRequest, orders.CancelOrder{ID: in.ID, Actor: p.UserID, Reason: reason})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return &orderOut{Body: o}, nil
}

type refundIn struct {
	ID             string `path:"id" format:"uuid" doc:"the order's id"`
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"200" doc:"optional: the refund's id; the same key refunds once"`
	Body           RefundInput
}

// refundOrder asks for a goodwill refund in the admin's name; the idempotency
// key, when sent, is the refund's id, so a retry refunds once.
func (h handlers) refundOrder(ctx context.Context, in *refundIn) (*orderOut, error) {
	p, _ := httpapi.PrincipalFrom(ctx)
	refundID := in.IdempotencyKey
	if refundID == "" {
		refundID = bus.NewID()
	}
	o, err := bus.Call(ctx, h.b, orders.RefundOrderRequest, orders.RefundOrder{ID: in.ID, RefundID: refundID,
		Amount: in.Body.Amount, Reason: in.Body.Reason, Actor: p.UserID})

	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return &orderOut{Body: o}, nil
}

// streamOrder sends the order the route's Preload found, then the order after each change,
// until it is terminal, the client goes or the orders module cannot be reached.
func (h handlers) streamOrder(ctx context.Context, _ *orderIn, send sse.Sender) {
	o, ok := httpapi.Preloaded[orders.Order](ctx)
	if !ok {
		return
	}
	if send(sse.Message{ID: int(o.Version), Data: o}) != nil {
		return
	}
	for !o.Terminal() && ctx.Err() == nil {
		next, err := bus.Call(ctx, h.b, orders.WaitOrderRequest, orders.WaitOrder{ID: o.ID, AfterVersion: o.Version, Wait: streamWait})
		if err != nil {
			return // the request's deadline, or the orders module is unreachable: the client reconnects
		}
		if next.Version <= o.Version {
			// Nothing changed: a comment keeps proxies from closing the idle stream.
			if send.Comment("waiting") != nil {
				return
			}
			continue
		}
		o = next
		if send(sse.Message{ID: int(o.Version), Data: OrderStatus(o)}) != nil {
			return
		}
	}
}

type sagaListIn struct {
	State orders.SagaState `query:"state" enum:"reserving,authorizing,completing,compensating,completed,rejected,cancelled" doc:"only sagas in this state"`
	httpapi.Paging
}

// listSagas answers a page of checkout sagas, oldest first.
func (h handlers) listSagas(ctx context.Context, in *sagaListIn) (*httpapi.PageOut[SagaList], error) {
	after, err := orderCursor.Decode(in.Cursor)
	if err != nil {
		return nil, err
	}
	page, err := bus.Call(ctx, h.b, orders.ListSagasRequest, orders.ListSagas{State: in.State, After: after, Limit: in.Limit})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	out := &httpapi.PageOut[SagaList]{Body: SagaList{Items: httpapi.NotNull(page.Items)}}
	out.Body.NextCursor, out.Link = orderCursor.Next(page.NextAfter, "/v1/ops/sagas", in.Limit, map[string]string{"state": string(in.State)})
	return out, nil
}

type sagaIn struct {
	OrderID string `path:"order_id" format:"uuid" doc:"the order's id"`
}

type sagaOut struct {
	Body orders.Saga
}

// getSaga answers an order's checkout saga with its history.
func (h handlers) getSaga(ctx context.Context, in *sagaIn) (*sagaOut, error) {
	s, err := bus.Call(ctx, h.b, orders.GetSagaRequest, orders.GetSaga{OrderID: in.OrderID})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return &sagaOut{Body: s}, nil
}

// orderCursor pages over orders and sagas alike: both are keyed by the order id.
var orderCursor = httpapi.Cursor{Prefix: "o1."}
