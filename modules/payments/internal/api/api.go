// Package api is the payments module's HTTP adapter: admin reads of a payable's
// (an order's or a ride's) payment ledger and of the payment provider's circuit breaker,
// and the switch of the simulated provider's outage. It depends only on
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
	h := handlers{b: b}
	return func(api huma.API) {
		huma.Register(api, huma.Operation{
			OperationID: "get-payment", Method: http.MethodGet, Path: "/v1/payments/{id}", Tags: []string{"Payments"},
			Summary:     "Get an order's or a ride's payment",
			Description: "The payment of an order or a ride (payable says which) and its ledger: every amount authorized, captured, voided (or released by a partial capture) and refunded. Admins only.",
			Security:    httpapi.AdminOnly,
			Metadata:    httpapi.Problems(payments.ErrPaymentNotFound),
		}, h.getPayment)
		huma.Register(api, huma.Operation{
			OperationID: "get-payment-provider-status", Method: http.MethodGet, Path: "/v1/ops/payment-provider", Tags: []string{"Operations"},
			Summary:     "The payment provider's circuit breaker",
			Description: "Which payment provider the payments module calls, and whether its circuit breaker lets calls through (closed), tries one (half-open) or fails them at once (open).",
			Security:    httpapi.AdminOnly,
		}, h.providerStatus)
		huma.Register(api, huma.Operation{
			OperationID: "put-payment-provider-outage", Method: http.MethodPut, Path: "/v1/ops/payment-provider/outage", Tags: []string{"Operations"},
			Summary: "Start or end the simulated payment provider's outage",
			Description: "For demos and tests: while the outage lasts, the simulated provider answers every call with a 503, so the circuit breaker opens " +
				"after its threshold of failed calls and checkouts are declined as provider_unavailable; after it ends, the breaker closes again. " +
				"Answers the provider's state; 409 when the provider is not the in-process simulator or payments runs without --demo or --allow-faults.",
			Security: httpapi.AdminOnly,
			Metadata: httpapi.Problems(payments.ErrOutageNotSimulated, payments.ErrOutageNotAllowed),
		}, h.setOutage)
	}
}

// handlers answers the payments operations by asking payments through the bus.
type handlers struct{ b *bus.Bus }

type getIn struct {
	ID string `path:"id" format:"uuid" doc:"the order or ride whose payment to show"`
}

type getOut struct{ Body payments.Payment }

// getPayment answers a payable's payment with its ledger (an empty one, never null).
func (h handlers) getPayment(ctx context.Context, in *getIn) (*getOut, error) {
	p, err := bus.Call(ctx, h.b, payments.GetPaymentRequest, payments.GetPayment{PayableID: in.ID})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	p.Entries = httpapi.NotNull(p.Entries)
	return &getOut{Body: p}, nil
}

type stateOut struct{ Body payments.ProviderState }

type outageIn struct{ Body payments.SetProviderOutage }

// setOutage starts or ends the simulated provider's outage.
func (h handlers) setOutage(ctx context.Context, in *outageIn) (*stateOut, error) {
	s, err := bus.Call(ctx, h.b, payments.SetProviderOutageRequest, in.Body)
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return &stateOut{Body: s}, nil
}

// providerStatus answers the payment provider's circuit breaker state.
func (h handlers) providerStatus(ctx context.Context, _ *struct{}) (*stateOut, error) {
	s, err := bus.Call(ctx, h.b, payments.ProviderStatusRequest, payments.ProviderStatus{})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return &stateOut{Body: s}, nil
}
