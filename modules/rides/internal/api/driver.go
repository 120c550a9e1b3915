package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/rides"
)

// driverRoutes registers a driver's answers to offers and trip actions.
func driverRoutes(api huma.API, h handlers) {
	tags := []string{"Rides"}
	for _, op := range []struct {
		id, path, summary, desc string
		handler                 func(context.Context, *rideIn) (*rideOut, error)
	}{
		{"accept-offer", "/v1/rides/{id}/offer/accept", "Accept a ride offered to you",
			"Assigns you to the ride. 409 when the offer is not open to you (expired, answered, never made) or you are on another ride.",
			h.answer(true)},
		{"decline-offer", "/v1/rides/{id}/offer/decline", "Decline a ride offered to you",
			"The ride is offered to the next driver. 409 when the offer is not open to you.", h.answer(false)},
		{"arrive-at-pickup", "/v1/rides/{id}/arrive", "Say you are at the pickup",
			"driver_assigned → arriving. Only the ride's driver; 409 from another status.", h.advance(rides.ActionArrive)},
		{"start-trip", "/v1/rides/{id}/start", "Start the trip",
			"arriving → in_trip: the rider is aboard. Only the ride's driver; 409 from another status.", h.advance(rides.ActionStart)},
		{"complete-trip", "/v1/rides/{id}/complete", "Complete the trip",
			"in_trip → completed at the drop-off: the fare is charged. Only the ride's driver; 409 from another status.",
			h.advance(rides.ActionComplete)},
	} {
		huma.Register(api, huma.Operation{
			OperationID: op.id, Method: http.MethodPost, Path: op.path, Tags: tags, Summary: op.summary,
			Description: op.desc, Security: httpapi.DriverOnly,
			Metadata: httpapi.Problems(rides.ErrRideNotFound, rides.ErrNoOffer, rides.ErrWrongStatus),
		}, op.handler)
	}
}

// offerRoute registers the long poll an HTTP driver client (or curl) sees its offers
// on; a driver app has them pushed on its stream (GET /v1/drivers/me/stream).
func offerRoute(api huma.API, h handlers) {
	huma.Register(api, huma.Operation{
		OperationID: "get-my-offer", Method: http.MethodGet, Path: "/v1/drivers/me/offer", Tags: []string{"Drivers"},
		Summary: "Wait for a ride offered to you",
		Description: "Answers the ride offered to you as soon as there is one (or at once when one is open), or " +
			"204 when none came within `wait`. Accept or decline it at /v1/rides/{id}/offer/accept|decline before its expires_at.",
		Security: httpapi.DriverOnly, Metadata: httpapi.Problems(rides.ErrInvalidInput),
	}, h.waitOffer)
}

type offerIn struct {
	Wait int `query:"wait" minimum:"0" maximum:"25" default:"20" doc:"seconds to wait for an offer"`
}

type offerOut struct {
	Status int
	Body   *rides.Offer
}

// waitOffer answers the caller's open offer, waiting up to in.Wait seconds for one.
func (h handlers) waitOffer(ctx context.Context, in *offerIn) (*offerOut, error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	o, err := bus.Call(ctx, h.b, rides.WaitOfferRequest, rides.WaitOffer{DriverID: id, Wait: time.Duration(in.Wait) * time.Second})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	if o.Offer == nil {
		return &offerOut{Status: http.StatusNoContent}, nil
	}
	return &offerOut{Status: http.StatusOK, Body: o.Offer}, nil
}

// answer returns the handler of a driver's answer to an offer.
func (h handlers) answer(accept bool) func(context.Context, *rideIn) (*rideOut, error) {
	return func(ctx context.Context, in *rideIn) (*rideOut, error) {
		id, err := httpapi.CallerID(ctx)
		if err != nil {
			return nil, err
		}
		r, err := bus.Call(ctx, h.b, rides.AnswerOfferRequest, rides.AnswerOffer{RideID: in.ID, DriverID: id, Accept: accept})
		if err != nil {
			return nil, httpapi.Problem(err)
		}
		return &rideOut{Body: r}, nil
	}
}

// advance returns the handler of a trip action: the ride of another driver is a 404.
func (h handlers) advance(action string) func(context.Context, *rideIn) (*rideOut, error) {
	return func(ctx context.Context, in *rideIn) (*rideOut, error) {
		id, err := httpapi.CallerID(ctx)
		if err != nil {
			return nil, err
		}
		r, err := bus.Call(ctx, h.b, rides.AdvanceTripRequest, rides.AdvanceTrip{RideID: in.ID, DriverID: id, Action: action})
		if err != nil {
			return nil, httpapi.Problem(err)
		}
		return &rideOut{Body: r}, nil
	}
}

// dispatchRoutes registers the admin views of dispatch sagas.
func dispatchRoutes(api huma.API, h handlers) {
	tags := []string{"Operations"}
	huma.Register(api, huma.Operation{
		OperationID: "list-dispatches", Method: http.MethodGet, Path: "/v1/ops/dispatches", Tags: tags,
		Summary:     "List dispatch sagas",
		Description: "Rides' dispatch sagas, oldest first, optionally in one state (say, the ones still offering).",
		Security:    httpapi.AdminOnly,
		Metadata:    httpapi.Problems(rides.ErrInvalidInput),
	}, h.listDispatches)
	huma.Register(api, huma.Operation{
		OperationID: "get-dispatch", Method: http.MethodGet, Path: "/v1/ops/dispatches/{ride_id}", Tags: tags,
		Summary: "Get a ride's dispatch saga", Description: "The saga's state, offers, deadline and full history.",
		Security: httpapi.AdminOnly, Metadata: httpapi.Problems(rides.ErrDispatchNotFound),
	}, h.getDispatch)
}

type dispatchListIn struct {
	State rides.DispatchState `query:"state" enum:"authorizing,offering,engaging,trip,settling,completed,cancelled,failed" doc:"only sagas in this state"`
	httpapi.Paging
}

// listDispatches answers a page of dispatch sagas, oldest first.
func (h handlers) listDispatches(ctx context.Context, in *dispatchListIn) (*httpapi.PageOut[DispatchList], error) {
	after, err := rideCursor.Decode(in.Cursor)
	if err != nil {
		return nil, err
	}
	page, err := bus.Call(ctx, h.b, rides.ListDispatchesRequest, rides.ListDispatches{State: in.State, After: after, Limit: in.Limit})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	out := &httpapi.PageOut[DispatchList]{Body: DispatchList{Items: httpapi.NotNull(page.Items)}}
	out.Body.NextCursor, out.Link = rideCursor.Next(page.NextAfter, "/v1/ops/dispatches", in.Limit,
		map[string]string{"state": string(in.State)})
	return out, nil
}

type dispatchIn struct {
	RideID string `path:"ride_id" format:"uuid" doc:"the ride's id"`
}

type dispatchOut struct {
	Body rides.Dispatch
}

// getDispatch answers a ride's dispatch saga with its history.
func (h handlers) getDispatch(ctx context.Context, in *dispatchIn) (*dispatchOut, error) {
	d, err := bus.Call(ctx, h.b, rides.GetDispatchRequest, rides.GetDispatch{RideID: in.RideID})
	if err != nil {
		return nil, httpapi.Problem(err)
	}
	return &dispatchOut{Body: d}, nil
}
