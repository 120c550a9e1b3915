// Package api is the fleet module's HTTP adapter: a driver's own state (online,
// offline, me), its stream (a WebSocket carrying positions in and offers out, see
// stream.go), fleets' batched positions and their drivers' online state, the city's streets and the map of online
// drivers. It depends only on the fleet and rides contracts and the bus, so every
// process serves these routes, asking the process that runs fleet (and rides)
// over the bus. Who the driver is always comes from the access token.
package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/fleet"
)

// OnlineInput is the body of going online.
type OnlineInput struct {
	Position *fleet.Point `json:"position,omitempty" doc:"where the driver is; it must lie in the city (see GET /v1/fleet/city)"`
}

// PositionInput is one position in a batch.
type PositionInput struct {
	DriverID string      `json:"driver_id,omitempty" format:"uuid" doc:"the driver; absent means the caller (drivers may post only their own)"`
	Point    fleet.Point `json:"point"`
	At       time.Time   `json:"at" doc:"when the position was taken; a report older than the newest known is counted stale"`
}

// PositionsInput is a batch of positions.
type PositionsInput struct {
	Positions []PositionInput `json:"positions" minItems:"1" maxItems:"1000"`
}

// MapDot is a driver on the map: where and whether free, nothing personal.
type MapDot struct {
	Status fleet.Status `json:"status" enum:"available,busy"`
	Point  fleet.Point  `json:"point"`
}

// FleetMap is the map of online drivers.
type FleetMap struct {
	Drivers []MapDot  `json:"drivers"`
	At      time.Time `json:"at"`
}

// Routes returns the fleet module's HTTP routes, answered through b.
func Routes(b *bus.Bus) httpapi.Routes {
	h := handlers{b: b}
	return func(api huma.API) {
		driverRoutes(api, h)
		fleetRoutes(api, h)
		operatorRoutes(api, h)
		streamRoute(api, h)
	}
}

// driverRoutes registers a driver's own state.
func driverRoutes(api huma.API, h handlers) {
	tags := []string{"Drivers"}
	huma.Register(api, huma.Operation{
		OperationID: "driver-go-online", Method: http.MethodPost, Path: "/v1/drivers/me/online", Tags: tags,
		Summary:     "Go online",
		Description: "Makes you available for rides, at position when given. Going online while online changes nothing but the position; a busy driver stays busy.",
		Security:    httpapi.DriverOnly,
		Metadata:    httpapi.Problems(fleet.ErrInvalidPoint, fleet.ErrOutOfArea),
	}, h.goOnline)
	huma.Register(api, huma.Operation{
		OperationID: "driver-go-offline", Method: http.MethodPost, Path: "/v1/drivers/me/offline", Tags: tags,
		Summary:     "Go offline",
		Description: "Takes you off the road. 409 while you are on a ride; 404 if you were never online.",
		Security:    httpapi.DriverOnly,
		Metadata:    httpapi.Problems(fleet.ErrDriverNotFound, fleet.ErrBusy),
	}, h.goOffline)
	huma.Register(api, huma.Operation{
		OperationID: "driver-get-me", Method: http.MethodGet, Path: "/v1/drivers/me", Tags: tags,
		Summary:     "Get your driver state",
		Description: "Your status, ride and newest known position. 404 if you were never online.",
		Security:    httpapi.DriverOnly,
		Metadata:    httpapi.Problems(fleet.ErrDriverNotFound),
	}, h.getMe)
}

// fleetRoutes registers fleets' position batches, the city and the map.
func fleetRoutes(api huma.API, h handlers) {
	tags := []string{"Fleet"}
	huma.Register(api, huma.Operation{
		OperationID: "fleet-report-positions", Method: http.MethodPost, Path: "/v1/fleet/positions", Tags: tags,
		Summary: "Report positions",
		Description: "A batch of up to 1000 positions. Drivers report their own; admins (a fleet operator) anyone's. " +
			"Only each driver's newest position counts; reports of drivers who are offline are counted ignored, not refused. " +
			"429 with Retry-After when ingestion is saturated: nothing of the batch was taken; send it again later.",
		Security: httpapi.DriverOrAdmin,
		Errors:   []int{http.StatusTooManyRequests},
		Metadata: httpapi.Problems(fleet.ErrInvalidPoint, fleet.ErrOutOfArea, fleet.ErrBatchTooLarge),
	}, h.reportPositions)
	huma.Register(api, huma.Operation{
		OperationID: "fleet-city", Method: http.MethodGet, Path: "/v1/fleet/city", Tags: tags,
		Summary:     "Get the city's streets",
		Description: "The simulated city: its bounds and streets as polylines, the streets the demo fleet drives along.",
		Security:    httpapi.Public,
	}, h.city)
	huma.Register(api, huma.Operation{
		OperationID: "fleet-map", Method: http.MethodGet, Path: "/v1/fleet/map", Tags: tags,
		Summary:     "Get the map of online drivers",
		Description: "Where the online drivers are and whether they are free: dots and status, nothing that identifies a driver.",
		Security:    httpapi.SignedIn,
	}, h.fleetMap)
}

// operatorRoutes registers a fleet operator's (an admin's) control of its
// vehicles: bringing a driver online or offline by id, as the driver would itself.
// A fleet operator's vehicles need no identity account: fleet knows drivers by id.
func operatorRoutes(api huma.API, h handlers) {
	tags := []string{"Fleet"}
	huma.Register(api, huma.Operation{
		OperationID: "fleet-driver-online", Method: http.MethodPost, Path: "/v1/fleet/drivers/{id}/online", Tags: tags,
		Summary: "Bring a driver online",
		Description: "As POST /v1/drivers/me/online, for the driver id (a fleet operator's vehicle): makes it available " +
			"for rides, at position when given. Online already changes nothing but the position; a busy driver stays busy.",
		Security: httpapi.AdminOnly,
		Metadata: httpapi.Problems(fleet.ErrInvalidPoint, fleet.ErrOutOfArea),
	}, h.bringOnline)
	huma.Register(api, huma.Operation{
		OperationID: "fleet-driver-offline", Method: http.MethodPost, Path: "/v1/fleet/drivers/{id}/offline", Tags: tags,
		Summary:     "Take a driver offline",
		Description: "As POST /v1/drivers/me/offline, for the driver id. 409 while it is on a ride; 404 if it was never online.",
		Security:    httpapi.AdminOnly,
		Metadata:    httpapi.Problems(fleet.ErrDriverNotFound, fleet.ErrBusy),
	}, h.takeOffline)
}

// handlers answers the fleet operations through the bus.
type handlers struct{ b *bus.Bus }

// retryAfter is how long a client waits after fleet.ErrSaturated.
const retryAfter = time.Second

// problem is httpapi.Problem, with saturated ingestion a 429 (a limit the client
// hit, with Retry-After) rather than the 503 of an overloaded server.
func problem(err error) error {
	if errors.Is(err, fleet.ErrSaturated) {
		return httpapi.TooManyRequests(retryAfter, fleet.ErrSaturated.Message)
	}
	return httpapi.Problem(err)
}

type driverOut struct {
	Body fleet.Driver
}

type onlineIn struct {
	Body *OnlineInput `required:"false"`
}

func (h handlers) goOnline(ctx context.Context, in *onlineIn) (*driverOut, error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	return h.online(ctx, id, in.Body)
}

// online brings driver id online, at body's position when there is one.
func (h handlers) online(ctx context.Context, id string, body *OnlineInput) (*driverOut, error) {
	q := fleet.GoOnline{DriverID: id}
	if body != nil {
		q.Position = body.Position
	}
	d, err := bus.Call(ctx, h.b, fleet.GoOnlineRequest, q)
	if err != nil {
		return nil, problem(err)
	}
	return &driverOut{Body: d}, nil
}

type driverIn struct {
	ID string `path:"id" format:"uuid" doc:"the driver's id"`
}

type operatorOnlineIn struct {
	ID   string       `path:"id" format:"uuid" doc:"the driver's id"`
	Body *OnlineInput `required:"false"`
}

func (h handlers) bringOnline(ctx context.Context, in *operatorOnlineIn) (*driverOut, error) {
	return h.online(ctx, in.ID, in.Body)
}

func (h handlers) takeOffline(ctx context.Context, in *driverIn) (*driverOut, error) {
	return h.offline(ctx, in.ID)
}

func (h handlers) goOffline(ctx context.Context, _ *struct{}) (*driverOut, error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	return h.offline(ctx, id)
}

// offline takes driver id offline.
func (h handlers) offline(ctx context.Context, id string) (*driverOut, error) {
	d, err := bus.Call(ctx, h.b, fleet.GoOfflineRequest, fleet.GoOffline{DriverID: id})
	if err != nil {
		return nil, problem(err)
	}
	return &driverOut{Body: d}, nil
}

func (h handlers) getMe(ctx context.Context, _ *struct{}) (*driverOut, error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	d, err := bus.Call(ctx, h.b, fleet.GetDriverRequest, fleet.GetDriver{DriverID: id})
	if err != nil {
		return nil, problem(err)
	}
	return &driverOut{Body: d}, nil
}

type positionsIn struct {
	Body PositionsInput
}

type ingestedOut struct {
	Body fleet.Ingested
}

// reportPositions forwards a batch; a driver's batch may hold only its own positions.
func (h handlers) reportPositions(ctx context.Context, in *positionsIn) (*ingestedOut, error) {
	id, err := httpapi.CallerID(ctx)
	if err != nil {
		return nil, err
	}
	admin := httpapi.IsAdmin(ctx)
	q := fleet.ReportPositions{Positions: make([]fleet.Position, len(in.Body.Positions))}
	for i, p := range in.Body.Positions {
		switch {
		case p.DriverID == "" && admin:
			return nil, huma.Error422UnprocessableEntity("driver_id is required in an admin's batch")
		case p.DriverID == "":
			p.DriverID = id
		case p.DriverID != id && !admin:
			return nil, huma.Error403Forbidden("a driver may report only its own positions")
		}
		q.Positions[i] = fleet.Position{DriverID: p.DriverID, Point: p.Point, At: p.At}
	}
	n, err := bus.Call(ctx, h.b, fleet.ReportPositionsRequest, q)
	if err != nil {
		return nil, problem(err)
	}
	return &ingestedOut{Body: n}, nil
}

type cityOut struct {
	CacheControl string `header:"Cache-Control"`
	Body         fleet.CityMap
}

func (h handlers) city(ctx context.Context, _ *struct{}) (*cityOut, error) {
	m, err := bus.Call(ctx, h.b, fleet.CityRequest, fleet.City{})
	if err != nil {
		return nil, problem(err)
	}
	return &cityOut{CacheControl: "public, max-age=3600", Body: m}, nil
}

type mapOut struct {
	Body FleetMap
}

func (h handlers) fleetMap(ctx context.Context, _ *struct{}) (*mapOut, error) {
	s, err := bus.Call(ctx, h.b, fleet.SnapshotRequest, fleet.Snapshot{})
	if err != nil {
		return nil, problem(err)
	}
	out := FleetMap{Drivers: make([]MapDot, len(s.Drivers)), At: s.At}
	for i, d := range s.Drivers {
		out.Drivers[i] = MapDot{Status: d.Status, Point: d.Point}
	}
	return &mapOut{Body: out}, nil
}
