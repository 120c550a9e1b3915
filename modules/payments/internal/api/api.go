// Package api is the payments module's HTTP adapter: admin reads of an order's
// payment ledger and of the payment provider's circuit breaker. It depends only on
// the payments contract and the bus, so every process serves these routes.
package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/payments"
)

// Routes returns the payments routes, answered through b.
func Routes(b *bus.Bus) httpapi.Routes {
	return func(api huma.API) {
		type getIn struct {
			OrderID string `path:"order_id" format:"uuid" doc:"the order whose payment to show"`
		}
		type getOut struct{ Body payments.Payment }
		huma.Register(api, huma.Operation{
			OperationID: "get-payment", Method: http.MethodGet, Path: "/v1/payments/{order_id}", Tags: []string{"Payments"},
			Summary:     "Get an order's payment",
			Description: "The payment of an order and its ledger: every amount authorized, captured, voided and refunded. Admins only.",
			Security:    httpapi.AdminOnly,
		}, func(ctx context.Context, in *getIn) (*getOut, error) {
			p, err := bus.Call(ctx, b, payments.GetPaymentRequest, payments.GetPayment{OrderID: in.OrderID})
			if err != nil {
				return nil, httpapi.Problem(err)
			}
			if p.Entries == nil {
				p.Entries = []payments.Entry{}
			}
			return &getOut{Body: p}, nil
		})

		type stateOut struct{ Body payments.ProviderState }
		huma.Register(api, huma.Operation{
			OperationID: "get-payment-provider-status", Method: http.MethodGet, Path: "/v1/ops/payment-provider", Tags: []string{"Operations"},
			Summary:     "The payment provider's circuit breaker",
			Description: "Which payment provider the payments module calls, and whether its circuit breaker lets calls through (closed), tries one (half-open) or fails them at once (open).",
			Security:    httpapi.AdminOnly,
		}, func(ctx context.Context, _ *struct{}) (*stateOut, error) {
			s, err := bus.Call(ctx, b, payments.ProviderStatusRequest, payments.ProviderStatus{})
			if err != nil {
				return nil, httpapi.Problem(err)
			}
			return &stateOut{Body: s}, nil
		})
	}
}
