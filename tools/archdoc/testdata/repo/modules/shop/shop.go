// Package shop is the contract of the shop module: orders, and the messages
// about them.
package shop

import "example.com/fixture/internal/message"

// Buy asks to buy something.
type Buy struct{}

// Bought is the reply to Buy.
type Bought struct{}

// Wait waits for an order to change.
type Wait struct{}

// Sold says an order was sold. It is the fixture's event.
type Sold struct{}

// Ship asks to ship an order.
type Ship struct{}

// The shop's requests.
var (
	BuyRequest = message.NewRequest[Buy, Bought]("shop.Buy")
	// WaitRequest is a long poll.
	// Handled by a stale line the tool replaces.
	WaitRequest = message.NewRequest[Wait, Bought]("shop.Wait").Parked()
)

// ShipCommand is sent to ship.
var ShipCommand = message.NewCommand[Ship]("shop.Ship").Renamed("order_id", "sale_id").AtVersion(2)

// The shop's events.
var (
	SoldEvent    = message.NewEvent[Sold]("shop.Sold")
	IgnoredEvent = message.NewEvent[Sold]("shop.Ignored")
)

// ErrGone is not a message.
var ErrGone = message.NewError(message.NotFound, "shop.gone", "gone")
