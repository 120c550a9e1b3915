package live

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
)

// row is a row of fleet_drivers.
type row struct {
	DriverID    string  `db:"driver_id"`
	Status      string  `db:"status"`
	RideID      string  `db:"ride_id"`
	HasPosition int     `db:"has_position"`
	Lat         float64 `db:"lat"`
	Lng         float64 `db:"lng"`
	PositionAt  int64   `db:"position_at"`
	SeenAt      int64   `db:"seen_at"`
	UpdatedAt   int64   `db:"updated_at"`
	Version     int64   `db:"version"`
}

const rowColumns = `driver_id, status, ride_id, has_position, lat, lng, position_at, seen_at, updated_at, version`

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// driver returns r as the index holds it.
func (r row) driver() geoindex.Driver {
	d := geoindex.Driver{ID: r.DriverID, Status: fleet.Status(r.Status), RideID: r.RideID,
		PositionAt: fromMicros(r.PositionAt), SeenAt: fromMicros(r.SeenAt), UpdatedAt: fromMicros(r.UpdatedAt), Version: r.Version}
	if r.HasPosition != 0 {
		d.Point = &fleet.Point{Lat: r.Lat, Lng: r.Lng}
	}
	return d
}

// rowOf returns d as a row.
func rowOf(d geoindex.Driver) row {
	r := row{DriverID: d.ID, Status: string(d.Status), RideID: d.RideID, PositionAt: micros(d.PositionAt),
		SeenAt: micros(d.SeenAt), UpdatedAt: micros(d.UpdatedAt), Version: d.Version}
	if d.Point != nil {
		r.HasPosition, r.Lat, r.Lng = 1, d.Point.Lat, d.Point.Lng
	}
	return r
}

// repo is fleet's SQL.
type repo struct{ dialect store.Dialect }

// get returns a driver's row (locked for the transaction on PostgreSQL; SQLite
// has one writer at a time), or fleet.ErrDriverNotFound.
func (r repo) get(ctx context.Context, q sqlx.ExtContext, id string, lock bool) (row, error) {
	query := `SELECT ` + rowColumns + ` FROM fleet_drivers WHERE driver_id = ?`
	if lock && r.dialect == store.Postgres {
		query += " FOR UPDATE"
	}
	var out row
	err := sqlx.GetContext(ctx, q, &out, q.Rebind(query), id)
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, fleet.ErrDriverNotFound
	}
	if err != nil {
		return row{}, fmt.Errorf("fleet: read driver: %w", err)
	}
	return out, nil
}

// put writes a driver's row (a status change), inserting it if new.
func (r repo) put(ctx context.Context, tx *store.Tx, d row) error {
	_, err := tx.NamedExecContext(ctx, `INSERT INTO fleet_drivers (`+rowColumns+`)
		VALUES (:driver_id, :status, :ride_id, :has_position, :lat, :lng, :position_at, :seen_at, :updated_at, :version)
		ON CONFLICT (driver_id) DO UPDATE SET status = excluded.status, ride_id = excluded.ride_id,
			has_position = excluded.has_position, lat = excluded.lat, lng = excluded.lng,
			position_at = excluded.position_at, seen_at = excluded.seen_at,
			updated_at = excluded.updated_at, version = excluded.version`, d)
	if err != nil {
		return fmt.Errorf("fleet: write driver: %w", err)
	}
	return nil
}

// savePositions writes the positions of ds (a checkpoint), leaving their statuses
// alone; a position older than the one stored is not written.
func (r repo) savePositions(ctx context.Context, tx *store.Tx, ds []geoindex.Driver) error {
	q := tx.Rebind(`UPDATE fleet_drivers SET has_position = 1, lat = ?, lng = ?, position_at = ?, seen_at = ?
		WHERE driver_id = ? AND position_at <= ?`)
	for _, d := range ds {
		if d.Point == nil {
			continue
		}
		at := micros(d.PositionAt)
		if _, err := tx.ExecContext(ctx, q, d.Point.Lat, d.Point.Lng, at, micros(d.SeenAt), d.ID, at); err != nil {
			return fmt.Errorf("fleet: checkpoint positions: %w", err)
		}
	}
	return nil
}

// online returns every driver who is not offline: what a restart restores.
func (r repo) online(ctx context.Context, q sqlx.QueryerContext) ([]row, error) {
	var out []row
	if err := sqlx.SelectContext(ctx, q, &out, `SELECT `+rowColumns+` FROM fleet_drivers WHERE status <> 'offline'`); err != nil {
		return nil, fmt.Errorf("fleet: load online drivers: %w", err)
	}
	return out, nil
}
