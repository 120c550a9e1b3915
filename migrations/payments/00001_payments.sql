-- The payments module's ledger. Portable SQL; times are Unix milliseconds (UTC).

-- +goose Up
-- One payment per order. The CHECK constraints are the ledger's invariants; the
-- code keeps them too, so a violation here is a bug, never a normal outcome.
CREATE TABLE payments (
    order_id         TEXT   NOT NULL PRIMARY KEY,
    customer_id      TEXT   NOT NULL DEFAULT '',
    status           TEXT   NOT NULL CHECK (status IN ('authorizing', 'authorized', 'declined', 'captured', 'voided', 'refunded')),
    amount           BIGINT NOT NULL CHECK (amount >= 0),
    currency         TEXT   NOT NULL,
    -- The card token, kept only while the authorization is pending (to resume it after a crash).
    payment_token    TEXT   NOT NULL DEFAULT '',
    authorized       BIGINT NOT NULL DEFAULT 0 CHECK (authorized >= 0),
    captured         BIGINT NOT NULL DEFAULT 0 CHECK (captured >= 0),
    refunded         BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    provider_auth_id TEXT   NOT NULL DEFAULT '',
    reason           TEXT   NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CONSTRAINT payments_captured_within_authorized CHECK (captured <= authorized),
    CONSTRAINT payments_refunded_within_captured CHECK (refunded <= captured)
);

-- Every movement of money, in order (ids are UUIDv7).
CREATE TABLE payment_entries (
    id           TEXT   NOT NULL PRIMARY KEY,
    order_id     TEXT   NOT NULL REFERENCES payments (order_id),
    kind         TEXT   NOT NULL CHECK (kind IN ('authorized', 'captured', 'voided', 'refunded')),
    amount       BIGINT NOT NULL CHECK (amount >= 0),
    currency     TEXT   NOT NULL,
    provider_ref TEXT   NOT NULL DEFAULT '',
    reason       TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL
);
CREATE INDEX payment_entries_order ON payment_entries (order_id, id);
-- An order is authorized at most once, captured at most once and voided at most once.
CREATE UNIQUE INDEX payment_entries_one_authorization ON payment_entries (order_id) WHERE kind = 'authorized';
CREATE UNIQUE INDEX payment_entries_one_capture ON payment_entries (order_id) WHERE kind = 'captured';
CREATE UNIQUE INDEX payment_entries_one_void ON payment_entries (order_id) WHERE kind = 'voided';

-- Provider calls to make: recorded with the command that asks for them, made by the
-- worker pool outside any transaction, finished with the outcome's event. op_key is
-- also the provider's idempotency key, so a call resumed after a crash is harmless.
CREATE TABLE payment_operations (
    op_key          TEXT    NOT NULL PRIMARY KEY, -- <order_id>:<op>[:<refund_id>]
    order_id        TEXT    NOT NULL REFERENCES payments (order_id),
    op              TEXT    NOT NULL CHECK (op IN ('authorize', 'capture', 'void', 'refund')),
    refund_id       TEXT    NOT NULL DEFAULT '',
    amount          BIGINT  NOT NULL DEFAULT 0 CHECK (amount >= 0),
    reason          TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    outcome         TEXT    NOT NULL DEFAULT '', -- why it failed, for failed operations
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    cause_id        TEXT    NOT NULL DEFAULT '', -- the command that asked for it, for the events' causation
    correlation_id  TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX payment_operations_due ON payment_operations (next_attempt_at) WHERE state = 'pending';
CREATE INDEX payment_operations_order ON payment_operations (order_id);

-- +goose Down
DROP TABLE payment_operations;
DROP TABLE payment_entries;
DROP TABLE payments;
