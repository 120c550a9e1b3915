-- Notifications of rides: four new kinds, and ride_id (the ride a notification is
-- about, where order_id is an order's; a refund is either). A CHECK constraint
-- cannot be changed in place on SQLite, so the table is rebuilt: the rows are kept
-- aside, the table dropped and created again, and the rows put back. Portable SQL:
-- times are TIMESTAMPTZ, declared TIMESTAMP on SQLite (see migrations.go).

-- +goose Up
CREATE TABLE notifications_kept AS SELECT id, customer_id, kind, order_id, ref, title, body, email_status, email_attempts,
    email_next_at, email_error, created_at, lease_owner, lease_until FROM notifications;
DROP TABLE notifications;
CREATE TABLE notifications (
    id             TEXT      NOT NULL PRIMARY KEY, -- UUIDv7: id order is creation order
    customer_id    TEXT      NOT NULL,
    kind           TEXT      NOT NULL CHECK (kind IN ('order_confirmed', 'order_rejected', 'order_cancelled', 'refund_issued',
                                                      'driver_assigned', 'driver_arriving', 'ride_completed', 'ride_cancelled')),
    order_id       TEXT      NOT NULL DEFAULT '', -- the order it is about, or ''
    ride_id        TEXT      NOT NULL DEFAULT '', -- the ride it is about, or ''
    -- What tells apart two notifications of one kind for one order or ride: the
    -- refund id of refund_issued, '' for the others (each happens once). With kind,
    -- order_id and ride_id it makes a re-published event a no-op.
    ref            TEXT      NOT NULL DEFAULT '',
    title          TEXT      NOT NULL,
    body           TEXT      NOT NULL,
    email_status   TEXT      NOT NULL CHECK (email_status IN ('none', 'pending', 'sent', 'failed')),
    email_attempts INTEGER   NOT NULL DEFAULT 0,
    email_next_at  BIGINT    NOT NULL DEFAULT 0, -- Unix milliseconds: when a pending email is next due
    email_error    TEXT      NOT NULL DEFAULT '', -- the last failure, for operators
    created_at     TIMESTAMPTZ NOT NULL,
    lease_owner    TEXT      NOT NULL DEFAULT '',
    lease_until    BIGINT    NOT NULL DEFAULT 0, -- Unix milliseconds
    CHECK ((order_id = '') <> (ride_id = '')), -- about an order or a ride, never both or neither
    UNIQUE (kind, order_id, ride_id, ref)
);
CREATE INDEX notifications_customer_id ON notifications (customer_id, id);
CREATE INDEX notifications_email_due ON notifications (email_next_at) WHERE email_status = 'pending';
INSERT INTO notifications (id, customer_id, kind, order_id, ref, title, body, email_status, email_attempts, email_next_at,
    email_error, created_at, lease_owner, lease_until)
    SELECT id, customer_id, kind, order_id, ref, title, body, email_status, email_attempts, email_next_at,
    email_error, created_at, lease_owner, lease_until FROM notifications_kept;
DROP TABLE notifications_kept;

-- +goose Down
-- Notifications of rides go: the old table has no place for them.
CREATE TABLE notifications_kept AS SELECT id, customer_id, kind, order_id, ref, title, body, email_status, email_attempts,
    email_next_at, email_error, created_at, lease_owner, lease_until FROM notifications WHERE order_id <> '';
DROP TABLE notifications;
CREATE TABLE notifications (
    id             TEXT      NOT NULL PRIMARY KEY,
    customer_id    TEXT      NOT NULL,
    kind           TEXT      NOT NULL CHECK (kind IN ('order_confirmed', 'order_rejected', 'order_cancelled', 'refund_issued')),
    order_id       TEXT      NOT NULL,
    ref            TEXT      NOT NULL DEFAULT '',
    title          TEXT      NOT NULL,
    body           TEXT      NOT NULL,
    email_status   TEXT      NOT NULL CHECK (email_status IN ('none', 'pending', 'sent', 'failed')),
    email_attempts INTEGER   NOT NULL DEFAULT 0,
    email_next_at  BIGINT    NOT NULL DEFAULT 0,
    email_error    TEXT      NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL,
    lease_owner    TEXT      NOT NULL DEFAULT '',
    lease_until    BIGINT    NOT NULL DEFAULT 0,
    UNIQUE (kind, order_id, ref)
);
CREATE INDEX notifications_customer_id ON notifications (customer_id, id);
CREATE INDEX notifications_email_due ON notifications (email_next_at) WHERE email_status = 'pending';
INSERT INTO notifications (id, customer_id, kind, order_id, ref, title, body, email_status, email_attempts, email_next_at,
    email_error, created_at, lease_owner, lease_until)
    SELECT id, customer_id, kind, order_id, ref, title, body, email_status, email_attempts, email_next_at,
    email_error, created_at, lease_owner, lease_until FROM notifications_kept;
DROP TABLE notifications_kept;
