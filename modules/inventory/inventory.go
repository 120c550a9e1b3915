// Package inventory is the contract of the inventory module: stock per SKU and the
// reservations that hold it for orders. Other modules use this package — its
// messages, replies, events and errors — and nothing else of the inventory.
//
// Stock of an item: OnHand units are in the warehouse; Reserved of them are held
// for orders not yet confirmed; Available = OnHand - Reserved is what can still be
// sold. None of the three is ever negative, and the last unit goes to exactly one
// of two concurrent reservations.
//
// Inventory learns the products that exist from catalog.ProductCreated (an item
// with no stock) and is stocked by admin adjustments (with a reason, audited).
//
// Commands (durable; each idempotent per OrderID, so a redelivery or a saga retry
// has no second effect):
//   - ReserveStock → StockReserved or StockReservationRejected.
//   - CommitReservation → ReservationCommitted (the units leave OnHand), or
//     ReservationCommitFailed when the reservation had expired and the stock is gone.
//   - ReleaseReservation → ReservationReleased (the units are available again).
//   - RestockOrder → OrderRestocked (a committed order's units come back, e.g. after a
//     cancellation with refund).
//
// Reservations not committed or released by their ExpiresAt are released by a
// sweeper (ReservationReleased with Reason "expired").
//
// Events: the replies above, StockChanged on every change of an item's numbers (the
// catalog's availability read model is built from it), and StockLow when Available
// falls to or below an item's low-stock threshold.
package inventory

import (
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// Limits on inventory input.
const (
	MaxLines       = 100           // lines per reservation
	MaxQuantity    = 1000          // units per line
	MaxAdjustment  = 1_000_000     // |delta| per adjustment
	MaxOnHand      = 1_000_000_000 // units of one item
	MaxReasonLen   = 500
	MaxPageSize    = 100
	DefaultLowMark = 5 // the low-stock threshold of a new item
)

// Item is the stock of one SKU.
type Item struct {
	SKU       string    `json:"sku" example:"TEE-CLASSIC-M"`
	ProductID string    `json:"product_id" format:"uuid"`
	OnHand    int64     `json:"on_hand" minimum:"0"`
	Reserved  int64     `json:"reserved" minimum:"0"`
	Available int64     `json:"available" minimum:"0" doc:"on_hand - reserved: what can still be sold"`
	LowMark   int64     `json:"low_stock_threshold" minimum:"0"`
	Version   int64     `json:"version" doc:"increases by one on every change; the ETag"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Adjustment is one audited change of an item's on-hand stock.
type Adjustment struct {
	ID        string    `json:"id" format:"uuid"`
	SKU       string    `json:"sku"`
	Delta     int64     `json:"delta"`
	OnHand    int64     `json:"on_hand" doc:"on hand after the adjustment"`
	Reason    string    `json:"reason"`
	Actor     string    `json:"actor" doc:"who made it: a user id, or system:<what>"`
	CreatedAt time.Time `json:"created_at"`
}

// Line is a quantity of one product in a reservation.
type Line struct {
	ProductID string `json:"product_id"`
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
}

// GetItem asks for one item's stock by SKU.
type GetItem struct {
	SKU string `json:"sku"`
}

// GetAvailability asks for the stock of up to MaxLines products by product id;
// unknown products are left out of the reply.
type GetAvailability struct {
	ProductIDs []string `json:"product_ids"`
}

// Items is the reply to GetAvailability.
type Items struct {
	Items []Item `json:"items"`
}

// ListItems asks for a page of items in SKU order.
type ListItems struct {
	After string `json:"after"` // the last SKU of the previous page
	Limit int    `json:"limit"`
}

// ItemPage is the reply to ListItems. NextAfter is empty on the last page.
type ItemPage struct {
	Items     []Item `json:"items"`
	NextAfter string `json:"next_after"`
}

// Adjust changes an item's on-hand stock by Delta (positive: received; negative:
// written off) if the item is at ExpectedVersion (0 skips the check). On-hand may
// not fall below what is reserved. SetLowMark, when set, changes the threshold.
type Adjust struct {
	SKU             string `json:"sku"`
	Delta           int64  `json:"delta"`
	Reason          string `json:"reason"`
	Actor           string `json:"actor"`
	ExpectedVersion int64  `json:"expected_version"`
	SetLowMark      *int64 `json:"set_low_mark,omitempty"`
}

// ListAdjustments asks for an item's adjustments, newest first.
type ListAdjustments struct {
	SKU    string `json:"sku"`
	Before string `json:"before"` // the last id of the previous page
	Limit  int    `json:"limit"`
}

// AdjustmentPage is the reply to ListAdjustments.
type AdjustmentPage struct {
	Items      []Adjustment `json:"items"`
	NextBefore string       `json:"next_before"`
}

// The inventory's requests.
var (
	// Handled by stock.(*Service).GetItem.
	GetItemRequest = message.NewRequest[GetItem, Item]("inventory.GetItem")
	// Handled by stock.(*Service).GetAvailability.
	GetAvailabilityRequest = message.NewRequest[GetAvailability, Items]("inventory.GetAvailability")
	// Handled by stock.(*Service).ListItems.
	ListItemsRequest = message.NewRequest[ListItems, ItemPage]("inventory.ListItems")
	// Handled by stock.(*Service).Adjust.
	AdjustRequest = message.NewRequest[Adjust, Item]("inventory.Adjust")
	// Handled by stock.(*Service).ListAdjustments.
	ListAdjustmentsRequest = message.NewRequest[ListAdjustments, AdjustmentPage]("inventory.ListAdjustments")
)

// ReserveStock asks to hold Lines for OrderID until ExpiresAt: all lines or none.
type ReserveStock struct {
	OrderID   string    `json:"order_id"`
	Lines     []Line    `json:"lines"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CommitReservation takes an order's reserved units out of on-hand stock (they ship).
type CommitReservation struct {
	OrderID string `json:"order_id"`
}

// ReleaseReservation makes an order's reserved units available again.
type ReleaseReservation struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// RestockOrder puts a committed order's units back on hand (a cancelled order).
type RestockOrder struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// The inventory's commands.
var (
	// Handled by stock.(*Service).handleReserve.
	ReserveStockCommand = message.NewCommand[ReserveStock]("inventory.ReserveStock")
	// Handled by stock.(*Service).handleCommit.
	CommitReservationCommand = message.NewCommand[CommitReservation]("inventory.CommitReservation")
	// Handled by stock.(*Service).handleRelease.
	ReleaseReservationCommand = message.NewCommand[ReleaseReservation]("inventory.ReleaseReservation")
	// Handled by stock.(*Service).handleRestock.
	RestockOrderCommand = message.NewCommand[RestockOrder]("inventory.RestockOrder")
)

// StockReserved says every line of an order is held until ExpiresAt.
type StockReserved struct {
	OrderID   string    `json:"order_id"`
	Lines     []Line    `json:"lines"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Why a line could not be reserved.
const (
	RejectOutOfStock     = "out_of_stock"    // fewer units available than asked
	RejectUnknownProduct = "unknown_product" // inventory has no item for the product
	RejectInvalid        = "invalid_request" // the command itself is malformed (no lines, bad quantity)
	RejectExpired        = "already_expired" // ExpiresAt had passed when the command arrived
)

// RejectedLine is a line that could not be reserved, and why.
type RejectedLine struct {
	ProductID string `json:"product_id"`
	SKU       string `json:"sku"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
	Reason    string `json:"reason"`
}

// StockReservationRejected says nothing was reserved for an order, and which lines
// could not be.
type StockReservationRejected struct {
	OrderID string         `json:"order_id"`
	Lines   []RejectedLine `json:"lines"`
}

// ReservationCommitted says an order's units left on-hand stock.
type ReservationCommitted struct {
	OrderID string `json:"order_id"`
}

// ReservationCommitFailed says an order's reservation had expired and its units
// were sold to others before the commit arrived: nothing was taken.
type ReservationCommitFailed struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// ReservationReleased says an order's reserved units are available again; Reason is
// the command's, or "expired" when the sweeper released it.
type ReservationReleased struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// OrderRestocked says a committed order's units are back on hand.
type OrderRestocked struct {
	OrderID string `json:"order_id"`
}

// StockChanged carries an item's numbers after any change.
type StockChanged struct {
	Item Item `json:"item"`
}

// StockLow says an item's available stock fell to or below its threshold.
type StockLow struct {
	Item Item `json:"item"`
}

// The inventory's events.
var (
	// Handled by orders: checkout.on (func literal).
	StockReservedEvent = message.NewEvent[StockReserved]("inventory.StockReserved")
	// Handled by orders: checkout.on (func literal).
	StockReservationRejectedEvent = message.NewEvent[StockReservationRejected]("inventory.StockReservationRejected")
	// Handled by orders: checkout.on (func literal).
	ReservationCommittedEvent = message.NewEvent[ReservationCommitted]("inventory.ReservationCommitted")
	// Handled by orders: checkout.on (func literal).
	ReservationCommitFailedEvent = message.NewEvent[ReservationCommitFailed]("inventory.ReservationCommitFailed")
	// Handled by orders: checkout.on (func literal).
	ReservationReleasedEvent = message.NewEvent[ReservationReleased]("inventory.ReservationReleased")
	// Handled by orders: checkout.on (func literal).
	OrderRestockedEvent = message.NewEvent[OrderRestocked]("inventory.OrderRestocked")
	// Handled by catalog: products.(*Service).applyStockChanged.
	StockChangedEvent = message.NewEvent[StockChanged]("inventory.StockChanged")
	// Handled by no module.
	StockLowEvent = message.NewEvent[StockLow]("inventory.StockLow")
)

// Errors the inventory returns; errors.Is matches them on either side of the bus.
var (
	ErrItemNotFound    = message.NewError(message.NotFound, "inventory.item_not_found", "no stock item with this SKU")
	ErrInvalidInput    = message.NewError(message.Invalid, "inventory.invalid_input", "the request is not valid")
	ErrBelowReserved   = message.NewError(message.Conflict, "inventory.below_reserved", "on-hand stock cannot fall below what is reserved for orders")
	ErrVersionMismatch = message.NewError(message.Precondition, "inventory.version_mismatch", "the stock item has changed since you read it")
)
