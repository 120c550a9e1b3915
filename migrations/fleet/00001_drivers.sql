-- The fleet module's durable state. Portable SQL; times are Unix microseconds (UTC).
-- Positions are checkpointed, not written per report: what a restart restores is
-- every driver's status and its position as of the last checkpoint.

-- +goose Up
CREATE TABLE fleet_drivers (
    driver_id   TEXT             NOT NULL PRIMARY KEY,
    status      TEXT             NOT NULL CHECK (status IN ('offline', 'available', 'busy')),
    ride_id     TEXT             NOT NULL DEFAULT '',
    -- The last known position (as of the last checkpoint); has_position is 0 before the first.
    has_position SMALLINT        NOT NULL DEFAULT 0,
    lat         DOUBLE PRECISION NOT NULL DEFAULT 0,
    lng         DOUBLE PRECISION NOT NULL DEFAULT 0,
    position_at BIGINT           NOT NULL DEFAULT 0,
    seen_at     BIGINT           NOT NULL DEFAULT 0,
    updated_at  BIGINT           NOT NULL,
    -- Increases with every status change: memory applies changes in this order.
    version     BIGINT           NOT NULL DEFAULT 0
);
-- A restart loads the drivers who are online.
CREATE INDEX fleet_drivers_online ON fleet_drivers (status) WHERE status <> 'offline';

-- +goose Down
DROP TABLE fleet_drivers;
