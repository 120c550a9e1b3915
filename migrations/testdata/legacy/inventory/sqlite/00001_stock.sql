-- +goose Up
-- Stock per SKU. None of the numbers is ever negative and reserved never exceeds
-- on hand: the application keeps that, and these checks make sure of it.
CREATE TABLE items (
    sku        TEXT   NOT NULL PRIMARY KEY,
    product_id TEXT   NOT NULL UNIQUE,
    on_hand    BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved   BIGINT NOT NULL CHECK (reserved >= 0),
    low_mark   BIGINT NOT NULL CHECK (low_mark >= 0),
    version    BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (reserved <= on_hand)
);

-- The audit trail of on-hand changes made by people (and the demo seeder).
CREATE TABLE adjustments (
    id         TEXT   NOT NULL PRIMARY KEY, -- UUIDv7: id order is creation order
    sku        TEXT   NOT NULL REFERENCES items (sku),
    delta      BIGINT NOT NULL,
    on_hand    BIGINT NOT NULL CHECK (on_hand >= 0),
    reason     TEXT   NOT NULL,
    actor      TEXT   NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX adjustments_sku_id ON adjustments (sku, id);

-- One reservation per order, whatever its outcome: it makes every command about
-- the order idempotent. A rejected one keeps its rejected lines (JSON) so that a
-- repeated ReserveStock answers the same.
CREATE TABLE reservations (
    order_id   TEXT NOT NULL PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('held', 'committed', 'released', 'restocked', 'rejected')),
    expires_at TIMESTAMP NOT NULL,
    rejection  TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- The sweeper looks for held reservations past their expiry.
CREATE INDEX reservations_status_expires ON reservations (status, expires_at);

CREATE TABLE reservation_lines (
    order_id   TEXT    NOT NULL REFERENCES reservations (order_id),
    line_no    INTEGER NOT NULL,
    sku        TEXT    NOT NULL REFERENCES items (sku),
    product_id TEXT    NOT NULL,
    quantity   BIGINT  NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, line_no)
);

-- +goose Down
DROP TABLE reservation_lines;
DROP TABLE reservations;
DROP TABLE adjustments;
DROP TABLE items;
