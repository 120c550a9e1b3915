package trips

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
)

// Repo stores rides, ride-request keys and dispatch sagas. Its methods take an
// sqlx.ExtContext so they run the same inside a transaction or on the pool. Times
// are stored as Unix microseconds (UTC); a ride and a saga are stored whole as JSON,
// with the columns their queries and constraints need beside.
type Repo struct {
	dialect store.Dialect
}

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

// forUpdate locks the rows a SELECT reads until the transaction ends, on
// PostgreSQL; SQLite's write transactions already hold the database's one write lock.
func (r Repo) forUpdate(lock bool) string {
	if lock && r.dialect == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Errors of the constraints that keep assignments single.
var (
	// errRiderBusy: the rider has another active ride (rides_one_active_per_rider).
	errRiderBusy = errors.New("rides: the rider has an active ride")
	// errDriverBusy: the driver has another active ride (rides_one_active_per_driver).
	errDriverBusy = errors.New("rides: the driver has an active ride")
	// errKeyTaken: another request stored the same idempotency key first.
	errKeyTaken = errors.New("rides: idempotency key taken concurrently")
	// errOfferTaken: the driver has an open offer of another ride.
	errOfferTaken = errors.New("rides: the driver has an open offer")
)

// activeStatuses are the statuses of a ride that holds its driver.
const activeStatuses = `('driver_assigned', 'arriving', 'in_trip')`

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// InsertRide adds r; a rider with an active ride is errRiderBusy.
func (Repo) InsertRide(ctx context.Context, q sqlx.ExtContext, r rides.Ride) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, q.Rebind(`INSERT INTO rides (id, rider_id, driver_id, status, version, data, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), r.ID, r.RiderID, nullable(r.DriverID), string(r.Status), r.Version, string(data),
		micros(r.CreatedAt), micros(r.UpdatedAt))
	if store.IsUniqueViolation(err) {
		return errRiderBusy
	}
	if err != nil {
		return fmt.Errorf("rides: insert ride: %w", err)
	}
	return nil
}

// UpdateRide writes r over the stored ride if that is still at version
// r.Version-1; assigning a driver who has another active ride is errDriverBusy.
func (Repo) UpdateRide(ctx context.Context, q sqlx.ExtContext, r rides.Ride) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE rides SET driver_id = ?, status = ?, version = ?, data = ?, updated_at = ?
		WHERE id = ? AND version = ?`), nullable(r.DriverID), string(r.Status), r.Version, string(data), micros(r.UpdatedAt),
		r.ID, r.Version-1)
	if store.IsUniqueViolation(err) {
		return errDriverBusy
	}
	if err != nil {
		return fmt.Errorf("rides: update ride %s: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("rides: ride %s changed concurrently (expected version %d)", r.ID, r.Version-1)
	}
	return nil
}

// GetRide returns ride id, or ErrRideNotFound; with lock it stays locked until the
// transaction ends.
func (r Repo) GetRide(ctx context.Context, q sqlx.ExtContext, id string, lock bool) (rides.Ride, error) {
	var data string
	err := sqlx.GetContext(ctx, q, &data, q.Rebind(`SELECT data FROM rides WHERE id = ?`+r.forUpdate(lock)), id)
	if errors.Is(err, sql.ErrNoRows) {
		return rides.Ride{}, rides.ErrRideNotFound.Withf("no ride with id %s", id)
	}
	if err != nil {
		return rides.Ride{}, fmt.Errorf("rides: get ride %s: %w", id, err)
	}
	var ride rides.Ride
	if err := json.Unmarshal([]byte(data), &ride); err != nil {
		return ride, fmt.Errorf("rides: ride %s is corrupt: %w", id, err)
	}
	return ride, nil
}

// ListRides returns up to limit rides, newest first, with ids before before (all
// when empty), of one rider and/or one driver (all when empty).
func (Repo) ListRides(ctx context.Context, q sqlx.ExtContext, riderID, driverID, before string, limit int) ([]rides.Ride, error) {
	var where []string
	var args []any
	for _, f := range []struct{ cond, v string }{{"rider_id = ?", riderID}, {"driver_id = ?", driverID}, {"id < ?", before}} {
		if f.v != "" {
			where, args = append(where, f.cond), append(args, f.v)
		}
	}
	query := `SELECT data FROM rides`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	var rows []string
	if err := sqlx.SelectContext(ctx, q, &rows, q.Rebind(query+" ORDER BY id DESC LIMIT ?"), append(args, limit)...); err != nil {
		return nil, fmt.Errorf("rides: list rides: %w", err)
	}
	out := make([]rides.Ride, len(rows))
	for i, data := range rows {
		if err := json.Unmarshal([]byte(data), &out[i]); err != nil {
			return nil, fmt.Errorf("rides: a ride is corrupt: %w", err)
		}
	}
	return out, nil
}

// Engaged returns those of drivers that hold an open offer or an active ride.
func (Repo) Engaged(ctx context.Context, q sqlx.ExtContext, drivers []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(drivers) == 0 {
		return out, nil
	}
	query, args, err := sqlx.In(`SELECT offer_driver_id FROM dispatches WHERE offer_driver_id IN (?)
		UNION SELECT driver_id FROM rides WHERE driver_id IN (?) AND status IN `+activeStatuses, drivers, drivers)
	if err != nil {
		return nil, err
	}
	var ids []string
	if err := sqlx.SelectContext(ctx, q, &ids, q.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("rides: engaged drivers: %w", err)
	}
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// rideKey is a stored ride-request idempotency record.
type rideKey struct {
	RequestHash string `db:"request_hash"`
	RideID      string `db:"ride_id"`
}

// GetKey returns the record of rider's key, if there is one.
func (Repo) GetKey(ctx context.Context, q sqlx.ExtContext, riderID, key string) (rideKey, bool, error) {
	var k rideKey
	err := sqlx.GetContext(ctx, q, &k, q.Rebind(`SELECT request_hash, ride_id FROM ride_keys
		WHERE rider_id = ? AND idempotency_key = ?`), riderID, key)
	if errors.Is(err, sql.ErrNoRows) {
		return k, false, nil
	}
	if err != nil {
		return k, false, fmt.Errorf("rides: get ride key: %w", err)
	}
	return k, true, nil
}

// InsertKey records a successful request's key; a key stored meanwhile is errKeyTaken.
func (Repo) InsertKey(ctx context.Context, q sqlx.ExtContext, riderID, key, hash, rideID string, now time.Time) error {
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO ride_keys (rider_id, idempotency_key, request_hash, ride_id, created_at)
		VALUES (?, ?, ?, ?, ?)`), riderID, key, hash, rideID, micros(now))
	if store.IsUniqueViolation(err) {
		return errKeyTaken
	}
	if err != nil {
		return fmt.Errorf("rides: insert ride key: %w", err)
	}
	return nil
}

// PurgeKeys deletes ride keys stored before cutoff.
func (Repo) PurgeKeys(ctx context.Context, q sqlx.ExtContext, cutoff time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM ride_keys WHERE created_at < ?`), micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("rides: purge ride keys: %w", err)
	}
	return res.RowsAffected()
}

func offerDriver(s dispatch.Saga) any {
	if s.Offer == nil {
		return nil
	}
	return s.Offer.DriverID
}

// InsertSaga adds s.
func (Repo) InsertSaga(ctx context.Context, q sqlx.ExtContext, s dispatch.Saga) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, q.Rebind(`INSERT INTO dispatches (ride_id, state, deadline, offer_driver_id, data, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), s.RideID, string(s.State), micros(s.Deadline), offerDriver(s), string(data),
		micros(s.CreatedAt), micros(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("rides: insert dispatch: %w", err)
	}
	return nil
}

// UpdateSaga writes s over its stored row; an offer to a driver who holds another
// is errOfferTaken.
func (Repo) UpdateSaga(ctx context.Context, q sqlx.ExtContext, s dispatch.Saga) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, q.Rebind(`UPDATE dispatches SET state = ?, deadline = ?, offer_driver_id = ?, data = ?, updated_at = ?
		WHERE ride_id = ?`), string(s.State), micros(s.Deadline), offerDriver(s), string(data), micros(s.UpdatedAt), s.RideID)
	if store.IsUniqueViolation(err) {
		return errOfferTaken
	}
	if err != nil {
		return fmt.Errorf("rides: update dispatch %s: %w", s.RideID, err)
	}
	return nil
}

// GetSaga returns the dispatch saga of ride id, or ErrDispatchNotFound; with lock
// it stays locked until the transaction ends.
func (r Repo) GetSaga(ctx context.Context, q sqlx.ExtContext, rideID string, lock bool) (dispatch.Saga, error) {
	var data string
	err := sqlx.GetContext(ctx, q, &data, q.Rebind(`SELECT data FROM dispatches WHERE ride_id = ?`+r.forUpdate(lock)), rideID)
	if errors.Is(err, sql.ErrNoRows) {
		return dispatch.Saga{}, rides.ErrDispatchNotFound.Withf("no dispatch for ride %s", rideID)
	}
	if err != nil {
		return dispatch.Saga{}, fmt.Errorf("rides: get dispatch %s: %w", rideID, err)
	}
	return decodeSaga(data)
}

func decodeSaga(data string) (dispatch.Saga, error) {
	var s dispatch.Saga
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		return s, fmt.Errorf("rides: a dispatch is corrupt: %w", err)
	}
	return s, nil
}

// OfferTo returns the saga whose offer is open to driverID, if there is one.
func (Repo) OfferTo(ctx context.Context, q sqlx.ExtContext, driverID string) (dispatch.Saga, bool, error) {
	var data string
	err := sqlx.GetContext(ctx, q, &data, q.Rebind(`SELECT data FROM dispatches WHERE offer_driver_id = ?`), driverID)
	if errors.Is(err, sql.ErrNoRows) {
		return dispatch.Saga{}, false, nil
	}
	if err != nil {
		return dispatch.Saga{}, false, fmt.Errorf("rides: offer to %s: %w", driverID, err)
	}
	s, err := decodeSaga(data)
	return s, err == nil, err
}

// ListSagas returns up to limit sagas in state (all when empty) with ride ids after
// after, oldest first.
func (Repo) ListSagas(ctx context.Context, q sqlx.ExtContext, state rides.DispatchState, after string, limit int) ([]dispatch.Saga, error) {
	var where []string
	var args []any
	if state != "" {
		where, args = append(where, "state = ?"), append(args, string(state))
	}
	if after != "" {
		where, args = append(where, "ride_id > ?"), append(args, after)
	}
	query := `SELECT data FROM dispatches`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	var rows []string
	if err := sqlx.SelectContext(ctx, q, &rows, q.Rebind(query+" ORDER BY ride_id LIMIT ?"), append(args, limit)...); err != nil {
		return nil, fmt.Errorf("rides: list dispatches: %w", err)
	}
	out := make([]dispatch.Saga, 0, len(rows))
	for _, data := range rows {
		s, err := decodeSaga(data)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
