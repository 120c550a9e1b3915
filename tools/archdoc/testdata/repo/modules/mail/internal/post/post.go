package post

import (
	"context"

	"example.com/fixture/internal/bus"
	"example.com/fixture/internal/outbox"
	"example.com/fixture/modules/mail"
	"example.com/fixture/modules/shop"
)

type Office struct{}

func (o *Office) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{bus.Handle(mail.SendRequest, o.Send)}
}

func (o *Office) Subscriptions() []bus.Subscription {
	return []bus.Subscription{
		outbox.SubscribeEvent(nil, shop.SoldEvent, "mail", func(ctx context.Context) error { return nil }),
	}
}

func (o *Office) Send() {}

func (o *Office) ask(ctx context.Context, b *bus.Bus) { bus.Call(ctx, b, shop.BuyRequest, shop.Buy{}) }
