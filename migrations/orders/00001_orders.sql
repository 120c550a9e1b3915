-- The orders module: carts, orders, checkout idempotency and checkout sagas.
-- Portable SQL: times are Unix microseconds (UTC) in BIGINT, which compare and index
-- the same way in every dialect.

-- +goose Up
CREATE TABLE carts (
    customer_id TEXT   NOT NULL PRIMARY KEY,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- A product in a cart, with the price the customer last saw for it.
CREATE TABLE cart_lines (
    customer_id   TEXT   NOT NULL,
    product_id    TEXT   NOT NULL,
    sku           TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    quantity      BIGINT NOT NULL CHECK (quantity > 0),
    seen_amount   BIGINT NOT NULL CHECK (seen_amount >= 0),
    seen_currency TEXT   NOT NULL,
    added_at      BIGINT NOT NULL,
    PRIMARY KEY (customer_id, product_id)
);

CREATE TABLE orders (
    id             TEXT   NOT NULL PRIMARY KEY, -- UUIDv7: id order is creation order
    customer_id    TEXT   NOT NULL,
    status         TEXT   NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
    reason         TEXT   NOT NULL DEFAULT '',
    lines          TEXT   NOT NULL,             -- JSON array of order lines; they never change
    total_amount   BIGINT NOT NULL CHECK (total_amount >= 0),
    total_currency TEXT   NOT NULL,
    refunded       BIGINT NOT NULL DEFAULT 0,
    version        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX orders_customer_id ON orders (customer_id, id);
CREATE INDEX orders_customer_status_id ON orders (customer_id, status, id);
CREATE INDEX orders_status_id ON orders (status, id);

-- Successful checkouts by Idempotency-Key, so a retried request answers the same order.
CREATE TABLE checkout_keys (
    customer_id     TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    request_hash    TEXT   NOT NULL,
    order_id        TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (customer_id, idempotency_key)
);
CREATE INDEX checkout_keys_created_at ON checkout_keys (created_at);

-- One checkout saga per order. data holds the saga's full state (JSON); state,
-- deadline and attempts are columns too, for the timeout sweep and the admin views.
CREATE TABLE sagas (
    order_id   TEXT    NOT NULL PRIMARY KEY,
    state      TEXT    NOT NULL,
    deadline   BIGINT  NOT NULL,
    attempts   INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX sagas_state_deadline ON sagas (state, deadline);
CREATE INDEX sagas_state_order_id ON sagas (state, order_id);

-- +goose Down
DROP TABLE sagas;
DROP TABLE checkout_keys;
DROP TABLE orders;
DROP TABLE cart_lines;
DROP TABLE carts;
