package bus_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
)

// Pointer-free messages: the bus passes them by value, no copy needed.
type priceQuery struct {
	SKU      [16]byte
	Quantity int
	Currency [3]byte
}

type priceReply struct {
	Unit  int64
	Total int64
	Found bool
}

var getPrice = message.NewRequest[priceQuery, priceReply]("pricing.GetPrice")

func priceHandler(_ context.Context, q priceQuery) (priceReply, error) {
	return priceReply{Unit: 250, Total: 250 * int64(q.Quantity), Found: true}, nil
}

// Messages with references: the bus deep-copies the request on the way in and the
// reply on the way out.
type productsQuery struct{ IDs []string }

type productLine struct {
	ID    string
	Price int64
	Stock int
}

type productsReply struct{ Products []productLine }

var getProducts = message.NewRequest[productsQuery, productsReply]("catalog.GetProducts")

func benchBus(b *testing.B, handlers ...bus.RequestHandler) *bus.Bus {
	b.Helper()
	bb, err := bus.New(slog.New(slog.DiscardHandler), bus.Limits{}, nil, handlers, nil)
	if err != nil {
		b.Fatal(err)
	}
	return bb
}

func BenchmarkRequestInProcess(b *testing.B) {
	bb := benchBus(b, bus.Handle(getPrice, priceHandler))
	ctx := context.Background()
	q := priceQuery{Quantity: 3}
	copy(q.SKU[:], "SKU-0000000001")
	copy(q.Currency[:], "EUR")
	b.ReportAllocs()
	for b.Loop() {
		r, err := bus.Call(ctx, bb, getPrice, q)
		if err != nil || r.Total != 750 {
			b.Fatalf("Call = %+v, %v", r, err)
		}
	}
}

func BenchmarkRequestInProcessWithCopy(b *testing.B) {
	// The handler keeps its reply (as a cache would); the bus must copy it out.
	reply := productsReply{Products: make([]productLine, 10)}
	for i := range reply.Products {
		reply.Products[i] = productLine{ID: "p" + strconv.Itoa(i), Price: int64(100 * i), Stock: i}
	}
	bb := benchBus(b, bus.Handle(getProducts, func(_ context.Context, q productsQuery) (productsReply, error) {
		return reply, nil
	}))
	ctx := context.Background()
	q := productsQuery{IDs: make([]string, 10)}
	for i := range q.IDs {
		q.IDs[i] = "p" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := bus.Call(ctx, bb, getProducts, q)
		if err != nil || len(r.Products) != 10 {
			b.Fatalf("Call = %+v, %v", r, err)
		}
	}
}

func BenchmarkRequestParallel(b *testing.B) {
	bb := benchBus(b, bus.Handle(getPrice, priceHandler))
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		q := priceQuery{Quantity: 2}
		for pb.Next() {
			r, err := bus.Call(ctx, bb, getPrice, q)
			if err != nil || r.Total != 500 {
				b.Errorf("Call = %+v, %v", r, err)
				return
			}
		}
	})
}
