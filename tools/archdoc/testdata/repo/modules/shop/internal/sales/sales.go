// Package sales handles the shop's messages.
package sales

import (
	"example.com/fixture/internal/bus"
	"example.com/fixture/internal/outbox"
	"example.com/fixture/modules/shop"
)

// Service sells.
type Service struct{}

// Handlers registers a method value and a function.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(shop.BuyRequest, s.Buy),
		bus.Handle(shop.WaitRequest, wait),
	}
}

// Subscriptions goes through a generic wrapper that takes the handler.
func (s *Service) Subscriptions() []bus.Subscription {
	return []bus.Subscription{command(s, shop.ShipCommand, s.ship)}
}

func command[T any](s *Service, c message.Command[T], fn func()) bus.Subscription {
	return outbox.SubscribeCommand(nil, c, "shop", fn)
}

func (s *Service) Buy() {}

func (s Service) ship() {}

func wait() {}
