// Package fleet is the contract of the fleet module: live driver availability.
// Other modules use this package — its messages, replies, events and errors — and
// nothing else of fleet.
//
// A driver is an identity account with the role "driver"; its user id is its
// driver id. A driver goes online (available), reports positions while online, is
// engaged by a ride (busy) and released after it, and goes offline.
//
// Positions are a stream, not records: fleet keeps the newest position of every
// online driver in an in-memory geo index and never writes a position per update.
// Between a driver's reports only the newest counts (latest-value conflation); a
// report older than the one the index holds is ignored. What must survive a
// restart — who is online or busy, and each driver's last known position — is
// checkpointed to fleet's database every few seconds and on stop; a driver whose
// last report is older than the stale bound is treated as offline.
//
// Requests (answered from memory; ReportPositions may answer ErrSaturated, a
// message.Overloaded error, when the ingestion buffer is full):
//   - GoOnline, GoOffline, GetDriver: one driver.
//   - ReportPositions: a batch of positions (a driver app's stream, a fleet's batch).
//   - FindNearest: the nearest available drivers to a point within a radius.
//   - Supply: available drivers per S2 cell, for surge pricing.
//   - Snapshot: every online driver's position, for maps.
//   - City: the simulated city's streets, which the demo fleet drives and maps draw.
//
// Commands (durable, from rides): EngageDriver makes an available driver busy with a
// ride; ReleaseDriver makes it available again. Both are idempotent per ride.
//
// Events (through fleet's outbox): DriverAvailabilityChanged, whenever a driver's
// status changes (not per position).
package fleet

import (
	"time"

	"github.com/agora-commerce/agora/internal/message"
)

// Point is a place in WGS 84 degrees; every module shares the one type.
type Point = message.Point

// Limits on what fleet accepts.
const (
	MaxBatch        = 1000            // positions in one ReportPositions
	MaxNearest      = 50              // drivers in one FindNearest answer
	MaxRadiusMeters = 50_000          // FindNearest's largest radius
	MaxSnapshot     = 20_000          // drivers in one Snapshot answer
	StaleAfter      = 2 * time.Minute // a driver silent this long is not available
)

// Status is where a driver stands.
type Status string

// Driver statuses.
const (
	StatusOffline   Status = "offline"
	StatusAvailable Status = "available" // online, free: FindNearest returns it
	StatusBusy      Status = "busy"      // online, engaged by a ride
)

// Driver is a driver's live state.
type Driver struct {
	ID       string `json:"id" format:"uuid" doc:"the driver's user id"`
	Status   Status `json:"status" enum:"offline,available,busy"`
	Position *Point `json:"position,omitempty" doc:"the newest position known; absent before the first report"`
	RideID   string `json:"ride_id,omitempty" doc:"the ride the driver is engaged by, while busy"`
	// PositionAt is when the driver's app took Position.
	PositionAt time.Time `json:"position_at"`
	UpdatedAt  time.Time `json:"updated_at" doc:"when the status last changed"`
}

// GoOnline makes a driver available, at Position when given.
type GoOnline struct {
	DriverID string `json:"driver_id"`
	Position *Point `json:"position,omitempty"`
}

// GoOffline takes a driver off the road; a busy driver cannot go offline
// (ErrBusy) until its ride releases it.
type GoOffline struct {
	DriverID string `json:"driver_id"`
}

// GetDriver asks for a driver's live state.
type GetDriver struct {
	DriverID string `json:"driver_id"`
}

// Position is one position report of a driver.
type Position struct {
	DriverID string    `json:"driver_id" format:"uuid"`
	Point    Point     `json:"point"`
	At       time.Time `json:"at" doc:"when the driver's app took the position; an older report than the newest known is ignored"`
}

// ReportPositions hands fleet a batch of positions (at most MaxBatch). Reports of
// drivers who are offline or unknown are counted as Ignored, not errors: a stream
// must not fail because one driver went offline meanwhile.
type ReportPositions struct {
	Positions []Position `json:"positions"`
}

// Ingested is the reply to ReportPositions: what became of each report.
type Ingested struct {
	Accepted  int `json:"accepted" doc:"reports queued for the index"`
	Conflated int `json:"conflated" doc:"reports replaced by a newer one of the same driver before the index took them"`
	Stale     int `json:"stale" doc:"reports older than the newest known of their driver"`
	Ignored   int `json:"ignored" doc:"reports of drivers who are not online"`
}

// FindNearest asks for up to Limit available drivers nearest to Point within
// RadiusMeters, nearest first, skipping the drivers in Exclude (those who already
// declined).
type FindNearest struct {
	Point        Point    `json:"point"`
	RadiusMeters float64  `json:"radius_meters"`
	Limit        int      `json:"limit"`
	Exclude      []string `json:"exclude,omitempty"`
}

// Candidate is an available driver near a point.
type Candidate struct {
	DriverID       string  `json:"driver_id" format:"uuid"`
	Position       Point   `json:"position"`
	DistanceMeters float64 `json:"distance_meters" doc:"great-circle distance to the point"`
}

// Nearest is the reply to FindNearest.
type Nearest struct {
	Drivers []Candidate `json:"drivers"`
}

// Supply asks how many drivers are available in each S2 cell of Level (the cells
// rides prices surge by).
type Supply struct {
	Level int `json:"level"`
}

// SupplyCells is the reply to Supply: available drivers per S2 cell token; cells
// with none are absent.
type SupplyCells struct {
	Cells map[string]int `json:"cells"`
	At    time.Time      `json:"at"`
}

// Snapshot asks for the positions of every online driver (at most MaxSnapshot).
type Snapshot struct{}

// DriverDot is a driver on a map.
type DriverDot struct {
	DriverID string `json:"driver_id" format:"uuid"`
	Status   Status `json:"status" enum:"available,busy"`
	Point    Point  `json:"point"`
}

// FleetSnapshot is the reply to Snapshot.
type FleetSnapshot struct {
	Drivers []DriverDot `json:"drivers"`
	At      time.Time   `json:"at"`
}

// City asks for the simulated city's geometry.
type City struct{}

// Street is a polyline of the simulated city: the demo fleet drives along streets.
type Street struct {
	Name   string  `json:"name"`
	Points []Point `json:"points"`
}

// CityMap is the reply to City: the area the simulation covers and its streets.
type CityMap struct {
	Name      string   `json:"name"`
	SouthWest Point    `json:"south_west"`
	NorthEast Point    `json:"north_east"`
	Streets   []Street `json:"streets"`
}

// The fleet module's requests.
var (
	// Handled by live.(*Service).GoOnline.
	GoOnlineRequest = message.NewRequest[GoOnline, Driver]("fleet.GoOnline")
	// Handled by live.(*Service).GoOffline.
	GoOfflineRequest = message.NewRequest[GoOffline, Driver]("fleet.GoOffline")
	// Handled by live.(*Service).GetDriver.
	GetDriverRequest = message.NewRequest[GetDriver, Driver]("fleet.GetDriver")
	// Handled by live.(*Service).ReportPositions.
	ReportPositionsRequest = message.NewRequest[ReportPositions, Ingested]("fleet.ReportPositions")
	// Handled by live.(*Service).FindNearest.
	FindNearestRequest = message.NewRequest[FindNearest, Nearest]("fleet.FindNearest")
	// Handled by live.(*Service).Supply.
	SupplyRequest = message.NewRequest[Supply, SupplyCells]("fleet.Supply")
	// Handled by live.(*Service).Snapshot.
	SnapshotRequest = message.NewRequest[Snapshot, FleetSnapshot]("fleet.Snapshot")
	// Handled by live.(*Service).City.
	CityRequest = message.NewRequest[City, CityMap]("fleet.City")
)

// EngageDriver makes DriverID busy with RideID. Engaging a driver already busy with
// the same ride changes nothing; one busy with another ride, or offline, is not
// engaged and DriverEngagementFailed says so.
type EngageDriver struct {
	DriverID string `json:"driver_id"`
	RideID   string `json:"ride_id"`
}

// ReleaseDriver makes DriverID available again if it is busy with RideID (and
// online); otherwise it changes nothing.
type ReleaseDriver struct {
	DriverID string `json:"driver_id"`
	RideID   string `json:"ride_id"`
}

// The fleet module's commands.
var (
	// Handled by live.(*Service).onEngage.
	EngageDriverCommand = message.NewCommand[EngageDriver]("fleet.EngageDriver")
	// Handled by live.(*Service).onRelease.
	ReleaseDriverCommand = message.NewCommand[ReleaseDriver]("fleet.ReleaseDriver")
)

// DriverAvailabilityChanged says a driver's status changed.
type DriverAvailabilityChanged struct {
	DriverID string    `json:"driver_id"`
	Status   Status    `json:"status"`
	Previous Status    `json:"previous"`
	RideID   string    `json:"ride_id,omitempty"`
	Position *Point    `json:"position,omitempty"`
	At       time.Time `json:"at"`
}

// DriverEngagementFailed says EngageDriver could not engage the driver (offline, or
// busy with another ride).
type DriverEngagementFailed struct {
	DriverID string `json:"driver_id"`
	RideID   string `json:"ride_id"`
	Reason   string `json:"reason" enum:"offline,busy"`
}

// The fleet module's events.
var (
	// Handled by rides: trips.on (func literal).
	DriverAvailabilityChangedEvent = message.NewEvent[DriverAvailabilityChanged]("fleet.DriverAvailabilityChanged")
	// Handled by rides: trips.on (func literal).
	DriverEngagementFailedEvent = message.NewEvent[DriverEngagementFailed]("fleet.DriverEngagementFailed")
)

// Errors the fleet module returns; errors.Is matches them on either side of the bus.
var (
	ErrDriverNotFound = message.NewError(message.NotFound, "fleet.driver_not_found", "no such driver")
	ErrBusy           = message.NewError(message.Conflict, "fleet.driver_busy", "the driver is on a ride")
	ErrOffline        = message.NewError(message.Conflict, "fleet.driver_offline", "the driver is offline")
	ErrInvalidPoint   = message.NewError(message.Invalid, "fleet.invalid_point", "not a place on Earth")
	ErrOutOfArea      = message.NewError(message.Invalid, "fleet.out_of_area", "outside the area served")
	ErrBatchTooLarge  = message.NewError(message.Invalid, "fleet.batch_too_large", "too many positions in one batch")
	ErrSaturated      = message.NewError(message.Overloaded, "fleet.saturated", "position ingestion is saturated; retry shortly")
)
