-- Portable SQL: times are TIMESTAMPTZ, declared TIMESTAMP on SQLite (see
-- migrations.go), as the databases created before this file was shared have them.

-- +goose Up
CREATE TABLE products (
    id          TEXT      NOT NULL PRIMARY KEY,  -- UUIDv7: id order is creation order
    sku         TEXT      NOT NULL UNIQUE,
    name        TEXT      NOT NULL,
    description TEXT      NOT NULL DEFAULT '',
    category    TEXT      NOT NULL DEFAULT '',
    price_amount   BIGINT NOT NULL CHECK (price_amount >= 0),
    price_currency TEXT   NOT NULL,
    attributes  TEXT      NOT NULL DEFAULT '{}', -- JSON object of string to string
    image_url   TEXT      NOT NULL DEFAULT '',
    status      TEXT      NOT NULL CHECK (status IN ('draft', 'active', 'archived')),
    version     BIGINT    NOT NULL,
    -- Lower-cased name and description, kept by the application, for case-insensitive search.
    search_text TEXT      NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX products_status_id ON products (status, id);
CREATE INDEX products_category_status_id ON products (category, status, id);

-- +goose Down
DROP TABLE products;
