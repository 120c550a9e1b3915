-- +goose Up
-- The catalog's read model of the inventory's stock, built from StockChanged
-- events. stock_version is the inventory item's version: an event older than the
-- row (redelivered, or overtaken by a later one) is not applied. No foreign key:
-- the read model takes the inventory's events in whatever order they come.
CREATE TABLE product_availability (
    product_id    TEXT    NOT NULL PRIMARY KEY,
    available     BIGINT  NOT NULL CHECK (available >= 0),
    in_stock      BOOLEAN NOT NULL,
    stock_version BIGINT  NOT NULL,
    as_of         TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE product_availability;
