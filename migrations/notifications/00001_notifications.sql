-- Portable SQL: times are TIMESTAMPTZ, declared TIMESTAMP on SQLite (see
-- migrations.go), as the databases created before this file was shared have them.

-- +goose Up
CREATE TABLE notifications (
    id             TEXT      NOT NULL PRIMARY KEY, -- UUIDv7: id order is creation order
    customer_id    TEXT      NOT NULL,
    kind           TEXT      NOT NULL CHECK (kind IN ('order_confirmed', 'order_rejected', 'order_cancelled', 'refund_issued')),
    order_id       TEXT      NOT NULL,
    -- What tells apart two notifications of one kind for one order: the refund id of
    -- refund_issued, '' for the others (an order is confirmed, rejected or cancelled
    -- once). With kind and order_id it makes a re-published event a no-op.
    ref            TEXT      NOT NULL DEFAULT '',
    title          TEXT      NOT NULL,
    body           TEXT      NOT NULL,
    email_status   TEXT      NOT NULL CHECK (email_status IN ('none', 'pending', 'sent', 'failed')),
    email_attempts INTEGER   NOT NULL DEFAULT 0,
    -- Unix milliseconds: when a pending email is next due; a sender's claim moves it
    -- past the send's lease, so a crashed sender's email becomes due again.
    email_next_at  BIGINT    NOT NULL DEFAULT 0,
    email_error    TEXT      NOT NULL DEFAULT '', -- the last failure, for operators
    created_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, order_id, ref)
);
CREATE INDEX notifications_customer_id ON notifications (customer_id, id);
CREATE INDEX notifications_email_due ON notifications (email_next_at) WHERE email_status = 'pending';

-- +goose Down
DROP TABLE notifications;
