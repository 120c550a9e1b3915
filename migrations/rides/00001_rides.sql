-- The rides module: rides, ride-request idempotency and dispatch sagas.
-- Portable SQL: times are Unix microseconds (UTC) in BIGINT.

-- +goose Up
-- A ride. data holds the ride as the contract shows it (JSON); rider, driver and
-- status are columns too, for lists and for the rules below.
CREATE TABLE rides (
    id         TEXT   NOT NULL PRIMARY KEY, -- UUIDv7: id order is creation order
    rider_id   TEXT   NOT NULL,
    driver_id  TEXT,                        -- NULL until a driver accepts
    status     TEXT   NOT NULL CHECK (status IN ('requested', 'driver_assigned', 'arriving', 'in_trip', 'completed', 'cancelled')),
    version    BIGINT NOT NULL,
    data       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX rides_rider_id ON rides (rider_id, id);
CREATE INDEX rides_driver_id ON rides (driver_id, id);
-- At most one active ride per driver and per rider, whatever runs concurrently:
-- an assignment or a request that would break it fails on these indexes.
CREATE UNIQUE INDEX rides_one_active_per_driver ON rides (driver_id)
    WHERE status IN ('driver_assigned', 'arriving', 'in_trip');
CREATE UNIQUE INDEX rides_one_active_per_rider ON rides (rider_id)
    WHERE status IN ('requested', 'driver_assigned', 'arriving', 'in_trip');

-- Successful ride requests by Idempotency-Key, so a retried request answers the same ride.
CREATE TABLE ride_keys (
    rider_id        TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    request_hash    TEXT   NOT NULL,
    ride_id         TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (rider_id, idempotency_key)
);
CREATE INDEX ride_keys_created_at ON ride_keys (created_at);

-- One dispatch saga per ride. data holds its full state (JSON); state, deadline
-- and the driver an offer is open to are columns too. A saga past its deadline is
-- a job of the platform's queue (internal/jobs): the sweep claims it under a lease.
CREATE TABLE dispatches (
    ride_id         TEXT    NOT NULL PRIMARY KEY,
    state           TEXT    NOT NULL,
    deadline        BIGINT  NOT NULL,
    offer_driver_id TEXT,             -- NULL unless an offer is open
    data            TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    sweep_attempts  INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX dispatches_state_deadline ON dispatches (state, deadline);
CREATE INDEX dispatches_state_ride_id ON dispatches (state, ride_id);
-- A driver has at most one open offer at a time.
CREATE UNIQUE INDEX dispatches_one_offer_per_driver ON dispatches (offer_driver_id)
    WHERE offer_driver_id IS NOT NULL;

-- +goose Down
DROP TABLE dispatches;
DROP TABLE ride_keys;
DROP TABLE rides;
