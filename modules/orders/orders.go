// Package orders is the contract of the orders module: a customer's cart, checkout
// and the order saga that drives a checkout through inventory and payments. Other
// modules use this package — its messages, replies, events and errors — and nothing
// else of orders.
//
// Checkout (PlaceOrder) prices the cart through catalog, stores the order as
// pending together with its saga and the saga's first command, and returns. The
// saga then runs on messages:
//
//	reserve stock (inventory.ReserveStock)
//	  → authorize payment (payments.AuthorizePayment)
//	  → confirm the order, commit the reservation, capture the payment.
//
// A rejected reservation, a declined or failed payment, a cancellation or a step
// that does not answer before its deadline compensates: the reservation is
// released, the authorization voided, and the order rejected (or cancelled) with a
// reason a customer can read. Saga state is durable and every step is idempotent, so
// a process killed at any point resumes on restart and every saga ends terminal.
package orders

import (
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// Money is an amount in a currency's minor units and its ISO 4217 code; every
// module shares the one type.
type Money = message.Money

// Limits on carts and orders.
const (
	MaxCartLines         = 50
	MaxQuantity          = 100 // units of one product in a cart
	MaxPaymentTokenLen   = 100
	MaxIdempotencyKeyLen = 200
	MaxPageSize          = 100
)

// CartLine is a product in a cart, at its current price.
type CartLine struct {
	ProductID string `json:"product_id" format:"uuid"`
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	UnitPrice Money  `json:"unit_price" doc:"the current price"`
	Quantity  int64  `json:"quantity" minimum:"1"`
	LineTotal Money  `json:"line_total"`
	// PreviousPrice is the price the customer last saw, when it has changed since.
	PreviousPrice *Money `json:"previous_price,omitempty"`
	// Unavailable says the product can no longer be bought (archived or gone); it
	// must be removed before checkout.
	Unavailable bool `json:"unavailable,omitempty"`
}

// Cart is a customer's cart, priced now.
type Cart struct {
	CustomerID string     `json:"customer_id" format:"uuid"`
	Lines      []CartLine `json:"lines"`
	// Total is nil while the cart is empty: a cart takes the currency of its
	// first product, so an empty one has none.
	Total *Money `json:"total,omitempty" doc:"the sum of the available lines; absent while the cart is empty"`
	// Notices tell the customer what changed since they last looked (new prices,
	// products no longer sold).
	Notices   []string  `json:"notices,omitempty"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at,omitzero" doc:"when the cart last changed; absent for a cart never filled"`
}

// Status is where an order stands.
type Status string

// Order statuses. Pending is the only non-terminal one in checkout; a confirmed
// order may still be cancelled (refunded and restocked).
const (
	StatusPending   Status = "pending"
	StatusConfirmed Status = "confirmed"
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
)

// OrderLine is a product bought, at the price it was bought for.
type OrderLine struct {
	ProductID string `json:"product_id" format:"uuid"`
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	UnitPrice Money  `json:"unit_price"`
	Quantity  int64  `json:"quantity"`
	LineTotal Money  `json:"line_total"`
}

// Order is a checkout and its outcome.
type Order struct {
	ID         string      `json:"id" format:"uuid"`
	CustomerID string      `json:"customer_id" format:"uuid"`
	Status     Status      `json:"status" enum:"pending,confirmed,rejected,cancelled"`
	Reason     string      `json:"reason,omitempty" doc:"why it was rejected or cancelled, for the customer"`
	Lines      []OrderLine `json:"lines"`
	Total      Money       `json:"total"`
	Refunded   int64       `json:"refunded" doc:"minor units refunded so far"`
	Version    int64       `json:"version" doc:"increases by one on every change"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
}

// Terminal reports whether the order's checkout has ended (it may still be
// cancelled after confirmation).
func (o Order) Terminal() bool { return o.Status != StatusPending }

// GetCart asks for a customer's cart, priced now.
type GetCart struct {
	CustomerID string `json:"customer_id"`
}

// SetCartItem sets the quantity of a product in a customer's cart (adding it).
type SetCartItem struct {
	CustomerID string `json:"customer_id"`
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
}

// RemoveCartItem removes a product from a customer's cart; removing a product
// that is not there is not an error.
type RemoveCartItem struct {
	CustomerID string `json:"customer_id"`
	ProductID  string `json:"product_id"`
}

// PlaceOrder checks out a customer's cart. The same IdempotencyKey with the same
// RequestHash answers the first outcome again (Replayed); with another RequestHash
// it fails with ErrIdempotencyKeyReused.
type PlaceOrder struct {
	CustomerID     string `json:"customer_id"`
	PaymentToken   string `json:"payment_token"`
	IdempotencyKey string `json:"idempotency_key"`
	RequestHash    string `json:"request_hash"`
}

// PlacedOrder is the reply to PlaceOrder.
type PlacedOrder struct {
	Order    Order `json:"order"`
	Replayed bool  `json:"replayed"`
}

// GetOrder asks for an order by id.
type GetOrder struct {
	ID string `json:"id"`
}

// WaitOrder asks for an order once its Version is above AfterVersion, or as it is
// when Wait has passed (a long poll: the server-sent event stream is made of them,
// so it works whichever process runs orders).
type WaitOrder struct {
	ID           string        `json:"id"`
	AfterVersion int64         `json:"after_version"`
	Wait         time.Duration `json:"wait"`
}

// ListOrders asks for a page of orders, newest first: one customer's, or everyone's
// when CustomerID is empty (admins).
type ListOrders struct {
	CustomerID string `json:"customer_id"`
	Status     Status `json:"status"`
	Before     string `json:"before"` // the last id of the previous page
	Limit      int    `json:"limit"`
}

// OrderPage is the reply to ListOrders. NextBefore is empty on the last page.
type OrderPage struct {
	Items      []Order `json:"items"`
	NextBefore string  `json:"next_before"`
}

// CancelOrder cancels an order: a pending one is compensated (reservation released,
// authorization voided); a confirmed one is refunded and restocked. Actor is who
// asks (a user id); cancelling a rejected or cancelled order fails with
// ErrNotCancellable.
type CancelOrder struct {
	ID     string `json:"id"`
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

// RefundOrder refunds Amount (0: all that is left) of a confirmed order, without
// restocking (an admin's goodwill refund). RefundID makes it idempotent.
type RefundOrder struct {
	ID       string `json:"id"`
	RefundID string `json:"refund_id"`
	Amount   int64  `json:"amount"`
	Reason   string `json:"reason"`
	Actor    string `json:"actor"`
}

// SagaState is where a checkout saga stands.
type SagaState string

// Saga states; the last three are terminal.
const (
	SagaReserving    SagaState = "reserving"    // waiting for inventory
	SagaAuthorizing  SagaState = "authorizing"  // waiting for payments
	SagaCompleting   SagaState = "completing"   // order confirmed; waiting for commit and capture
	SagaCompensating SagaState = "compensating" // undoing: waiting for release and void
	SagaCompleted    SagaState = "completed"
	SagaRejected     SagaState = "rejected"
	SagaCancelled    SagaState = "cancelled"
)

// SagaStep is one thing that happened to a saga.
type SagaStep struct {
	At      time.Time `json:"at"`
	State   SagaState `json:"state" doc:"the state after this step"`
	Message string    `json:"message" doc:"the message received or sent, e.g. inventory.StockReserved"`
	Note    string    `json:"note,omitempty"`
}

// Saga is a checkout saga and its history.
type Saga struct {
	OrderID   string     `json:"order_id" format:"uuid"`
	State     SagaState  `json:"state"`
	Attempts  int        `json:"attempts" doc:"times the current step's command was sent"`
	Deadline  time.Time  `json:"deadline" doc:"when the current step is retried or given up"`
	History   []SagaStep `json:"history"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// ListSagas asks for a page of sagas in a state (all when empty), oldest first.
type ListSagas struct {
	State SagaState `json:"state"`
	After string    `json:"after"`
	Limit int       `json:"limit"`
}

// SagaPage is the reply to ListSagas.
type SagaPage struct {
	Items     []Saga `json:"items"`
	NextAfter string `json:"next_after"`
}

// GetSaga asks for an order's saga with its history.
type GetSaga struct {
	OrderID string `json:"order_id"`
}

// The orders module's requests.
var (
	// Handled by checkout.(*Service).GetCart.
	GetCartRequest = message.NewRequest[GetCart, Cart]("orders.GetCart").AtVersion(2)
	// Handled by checkout.(*Service).SetCartItem.
	SetCartItemRequest = message.NewRequest[SetCartItem, Cart]("orders.SetCartItem").AtVersion(2)
	// Handled by checkout.(*Service).RemoveCartItem.
	RemoveCartItemRequest = message.NewRequest[RemoveCartItem, Cart]("orders.RemoveCartItem").AtVersion(2)
	// Handled by checkout.(*Service).PlaceOrder.
	PlaceOrderRequest = message.NewRequest[PlaceOrder, PlacedOrder]("orders.PlaceOrder")
	// Handled by checkout.(*Service).GetOrder.
	GetOrderRequest = message.NewRequest[GetOrder, Order]("orders.GetOrder")
	// Handled by checkout.(*Service).WaitOrder.
	WaitOrderRequest = message.NewRequest[WaitOrder, Order]("orders.WaitOrder").Parked()
	// Handled by checkout.(*Service).ListOrders.
	ListOrdersRequest = message.NewRequest[ListOrders, OrderPage]("orders.ListOrders")
	// Handled by checkout.(*Service).CancelOrder.
	CancelOrderRequest = message.NewRequest[CancelOrder, Order]("orders.CancelOrder")
	// Handled by checkout.(*Service).RefundOrder.
	RefundOrderRequest = message.NewRequest[RefundOrder, Order]("orders.RefundOrder")
	// Handled by checkout.(*Service).ListSagas.
	ListSagasRequest = message.NewRequest[ListSagas, SagaPage]("orders.ListSagas")
	// Handled by checkout.(*Service).GetSaga.
	GetSagaRequest = message.NewRequest[GetSaga, Saga]("orders.GetSaga")
)

// OrderPlaced is published when an order is stored as pending.
type OrderPlaced struct {
	Order Order `json:"order"`
}

// OrderConfirmed is published when stock is reserved and payment authorized.
type OrderConfirmed struct {
	Order Order `json:"order"`
}

// OrderRejected is published when a checkout fails; Order.Reason says why.
type OrderRejected struct {
	Order Order `json:"order"`
}

// OrderCancelled is published when an order is cancelled; Refunded says whether
// money is being given back (it was confirmed).
type OrderCancelled struct {
	Order    Order `json:"order"`
	Refunded bool  `json:"refunded"`
}

// The orders module's events.
var (
	// Handled by no module.
	OrderPlacedEvent = message.NewEvent[OrderPlaced]("orders.OrderPlaced")
	// Handled by notifications: notices.(*Service).onConfirmed.
	OrderConfirmedEvent = message.NewEvent[OrderConfirmed]("orders.OrderConfirmed")
	// Handled by notifications: notices.(*Service).onRejected.
	OrderRejectedEvent = message.NewEvent[OrderRejected]("orders.OrderRejected")
	// Handled by notifications: notices.(*Service).onCancelled.
	OrderCancelledEvent = message.NewEvent[OrderCancelled]("orders.OrderCancelled")
)

// Errors the orders module returns; errors.Is matches them on either side of the bus.
var (
	ErrInvalidInput         = message.NewError(message.Invalid, "orders.invalid_input", "the request is not valid")
	ErrCartEmpty            = message.NewError(message.Invalid, "orders.cart_empty", "the cart is empty")
	ErrCartFull             = message.NewError(message.Invalid, "orders.cart_full", "the cart cannot hold more products")
	ErrProductUnavailable   = message.NewError(message.Invalid, "orders.product_unavailable", "the product is not for sale")
	ErrCurrencyMismatch     = message.NewError(message.Invalid, "orders.currency_mismatch", "the product is priced in another currency than the cart")
	ErrPriceChanged         = message.NewError(message.Conflict, "orders.price_changed", "prices changed since the cart was last viewed; review the cart and check out again")
	ErrIdempotencyKeyReused = message.NewError(message.Invalid, "orders.idempotency_key_reused", "this Idempotency-Key was used with a different request")
	ErrOrderNotFound        = message.NewError(message.NotFound, "orders.order_not_found", "order not found")
	ErrSagaNotFound         = message.NewError(message.NotFound, "orders.saga_not_found", "saga not found")
	ErrNotCancellable       = message.NewError(message.Conflict, "orders.not_cancellable", "the order can no longer be cancelled")
	ErrNotRefundable        = message.NewError(message.Conflict, "orders.not_refundable", "the order cannot be refunded")
)
