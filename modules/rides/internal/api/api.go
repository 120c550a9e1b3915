// Package api is the rides module's HTTP adapter: quotes, ride requests, the
// rider's rides and their event stream, cancellations, the driver's offers and trip
// actions, and the admin views of dispatch sagas. It depends only on the rides and
// fleet contracts and the bus, so every process serves these routes — asking the
// process that runs rides when it is not this one. Who the rider or driver is
// always comes from the access token, never from a body.
package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/rides"
)

// QuoteInput is the body of a quote.
type QuoteInput struct {
	Pickup  rides.Point `json:"pickup"`
	Dropoff rides.Point `json:"dropoff"`
}

// RequestInput is the body of a ride request.
type RequestInput struct {
	Pickup       rides.Point `json:"pickup"`
	Dropoff      rides.Point `json:"dropoff"`
	PaymentToken string      `json:"payment_token" minLength:"1" maxLength:"100" example:"tok_visa" doc:"the payment provider's token for the rider's card"`
}

// CancelInput is the body of a cancellation.
type CancelInput struct {
	Reason string `json:"reason,omitempty" maxLength:"500" doc:"why, in a few words"`
}

// RideList is a page of rides, newest first.
type RideList struct {
	Items      []rides.Ride `json:"items"`
	NextCursor string       `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

// DispatchList is a page of dispatch sagas, oldest first.
type DispatchList struct {
	Items      []rides.Dispatch `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

type rideOut struct {
	Body rides.Ride
}

type rideIn struct {
	ID string `path:"id" format:"uuid" doc:"the ride's id"`
}

// Routes returns the rides module's HTTP routes, answered through b.
func Routes(b *bus.Bus) httpapi.Routes {
	h := handlers{b: b}
	return func(api huma.API) {
		riderRoutes(api, h)
		streamRoute(api, h)
		driverRoutes(api, h)
		offerRoute(api, h)
		dispatchRoutes(api, h)
	}
}

// riderRoutes registers quotes, requests, the caller's rides and cancellation.
func riderRoutes(api huma.API, h handlers) {
	tags := []string{"Rides"}
	huma.Register(api, huma.Operation{
		OperationID: "quote-ride", Method: http.MethodPost, Path: "/v1/rides/quotes", Tags: tags,
		Summary: "Quote a ride",
		Description: "The distance and duration of a trip from pickup to drop-off, the surge of the pickup's area, the " +
			"fare now and the nearest driver's ETA. 422 for points outside the area served or the same place twice.",
		Security: httpapi.SignedIn,
		Metadata: httpapi.Problems(rides.ErrInvalidInput, rides.ErrOutOfArea, rides.ErrSamePlace),
	}, h.quote)
	huma.Register(api, huma.Operation{
		OperationID: "request-ride", Method: http.MethodPost, Path: "/v1/rides", Tags: tags,
		Summary: "Request a ride",
		Description: "Prices the trip now and requests it: the fare is authorized and drivers are asked one at a time, " +
			"asynchronously — follow the ride at Location or its event stream. 409 when you already have an active " +
			"ride. The same Idempotency-Key with the same body answers the same ride (Idempotent-Replayed: true); " +
			"with another body, 422 (as for orders).",
		Security: httpapi.SignedIn, DefaultStatus: http.StatusAccepted,
		Metadata: httpapi.Problems(rides.ErrInvalidInput, rides.ErrOutOfArea, rides.ErrSamePlace, rides.ErrRiderBusy,
			rides.ErrIdempotencyKeyReused),
	}, h.request)
	huma.Register(api, huma.Operation{
		OperationID: "list-rides", Method: http.MethodGet, Path: "/v1/rides", Tags: tags,
		Summary: "List your rides", Description: "Your rides (a driver's: the rides you drove), newest first, by pages.",
		Security: httpapi.SignedIn, Metadata: httpapi.Problems(rides.ErrInvalidInput),
	}, h.list)
	huma.Register(api, huma.Operation{
		OperationID: "get-ride", Method: http.MethodGet, Path: "/v1/rides/{id}", Tags: tags,
		Summary:     "Get a ride",
		Description: "A ride, to its rider, its assigned driver or an admin. Anyone else's ride is a 404.",
		Security:    httpapi.SignedIn,
		Metadata:    httpapi.Problems(rides.ErrRideNotFound),
	}, h.get)
	huma.Register(api, huma.Operation{
		OperationID: "cancel-ride", Method: http.MethodPost, Path: "/v1/rides/{id}/cancel", Tags: tags,
		Summary: "Cancel a ride",
		Description: "Cancels a ride before its trip starts. The rider cancels for free while a driver is sought and " +
			"within the grace period after one is assigned; later, the cancellation fee is charged (the ride's " +
			"charged). The assigned driver and admins cancel for free. 409 once the trip started or the ride ended.",
		Security: httpapi.SignedIn, Metadata: httpapi.Problems(rides.ErrRideNotFound, rides.ErrNotCancellable),
	}, h.cancel)
}

// handlers answers the rides operations by asking the rides module through the
// bus.
type handlers struct{ b *bus.Bus }

// visibleRide returns ride id if the caller is its rider, its assigned driver or
// an admin. Anyone else gets exactly the answer for a ride that does not exist.
func (h handlers) visibleRide(ctx context.Context, id string) (rides.Ride, error) {
	notFound := rides.ErrRideNotFound.Withf("no ride with id %s", id)
	r, err := bus.Call(ctx, h.b, rides.GetRideRequest, rides.GetRide{ID: id})
	if errors.Is(err, rides.ErrRideNotFound) {
		err = notFound
	}
	if err != nil {
		return r, httpapi.Problem(err)
	}
	if p, ok := httpapi.PrincipalFrom(ctx); ok && r.DriverID != "" && p.UserID == r.DriverID {
		return r, nil
	}
	if err := httpapi.RequireOwner(ctx, r.RiderID, notFound); err != nil {
		return rides.Ride{}, err
	}
	return r, nil
}

type quoteIn struct {
	Body QuoteInput
}

type quoteOut struct {
	Body rides.Quote
}

// quote prices a trip now.
func (h handlers) quote(ctx context.Context, in *quoteIn) (*quoteOut, error) {
	q, err := bus.Call(ctx, h.b, rides.QuoteRideRequest, rides.QuoteRide(in.Body))
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return &quoteOut{Body: q}, nil
}

type requestIn struct {
	IdempotencyKey string `header:"Idempotency-Key" required:"true" minLength:"1" maxLength:"200" doc:"required: a key unique to this request; retrying with the same key and body answers the same ride"`
	Body           RequestInput
}

// request requests a ride for the caller, once per idempotency key and body.
func (h handlers) request(ctx context.Context, in *requestIn) (*httpapi.Created[rides.Ride], error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	got, err := bus.Call(ctx, h.b, rides.RequestRideRequest, rides.RequestRide{RiderID: id, Pickup: in.Body.Pickup,
		Dropoff: in.Body.Dropoff, PaymentToken: in.Body.PaymentToken, IdempotencyKey: in.IdempotencyKey,
		RequestHash: httpapi.BodyHash(in.Body)})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return httpapi.NewCreated("/v1/rides/"+got.Ride.ID, got.Ride, got.Replayed), nil
}

type listIn struct {
	httpapi.Paging
}

// list answers a page of the caller's rides: as rider, or as driver for drivers.
func (h handlers) list(ctx context.Context, in *listIn) (*httpapi.PageOut[RideList], error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	before, err := rideCursor.Decode(in.Cursor)
	if err != nil {
		return nil, err
	}
	q := rides.ListRides{RiderID: id, Before: before, Limit: in.Limit}
	if p, _ := httpapi.PrincipalFrom(ctx); p.Role == "driver" {
		q.RiderID, q.DriverID = "", id
	}
	page, err := bus.Call(ctx, h.b, rides.ListRidesRequest, q)
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	out := &httpapi.PageOut[RideList]{Body: RideList{Items: httpapi.NotNull(page.Items)}}
	out.Body.NextCursor, out.Link = rideCursor.Next(page.NextBefore, "/v1/rides", in.Limit, nil)
	return out, nil
}

// get answers a ride to its rider, its driver or an admin (see visibleRide).
func (h handlers) get(ctx context.Context, in *rideIn) (*rideOut, error) {
	r, err := h.visibleRide(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &rideOut{Body: r}, nil
}

type cancelIn struct {
	ID   string `path:"id" format:"uuid" doc:"the ride's id"`
	Body *CancelInput
}

// cancel cancels a ride for its rider, its driver or an admin.
func (h handlers) cancel(ctx context.Context, in *cancelIn) (*rideOut, error) {
	if _, err := h.visibleRide(ctx, in.ID); err != nil {
		return nil, err
	}
	p, _ := httpapi.PrincipalFrom(ctx)
	reason := ""
	if in.Body != nil {
		reason = in.Body.Reason
	}
	r, err := bus.Call(ctx, h.b, rides.CancelRideRequest, rides.CancelRide{ID: in.ID, Actor: p.UserID, Reason: reason})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return &rideOut{Body: r}, nil
}

// rideCursor pages over rides and dispatches alike: both are keyed by the ride id.
var rideCursor = httpapi.Cursor{Prefix: "r1."}
