-- The transactional outbox and inbox that every module's database carries.
-- Times are Unix milliseconds (UTC), which compare and index the same way in every dialect.

-- +goose Up
CREATE TABLE outbox (
    id              TEXT    NOT NULL PRIMARY KEY, -- message id, UUIDv7: sorts by creation
    kind            TEXT    NOT NULL,             -- 'command' or 'event'
    type            TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL DEFAULT '',
    causation_id    TEXT    NOT NULL DEFAULT '',
    headers         TEXT    NOT NULL DEFAULT '{}',
    payload         TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    dead_at         BIGINT                         -- set when parked as a dead letter
);
-- The relay's claim query: due, live messages in id order.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE dead_at IS NULL;
CREATE INDEX outbox_dead ON outbox (dead_at, id) WHERE dead_at IS NOT NULL;

CREATE TABLE inbox (
    message_id  TEXT   NOT NULL,
    consumer    TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, consumer)
);
CREATE INDEX inbox_received_at ON inbox (received_at);

-- +goose Down
DROP TABLE inbox;
DROP TABLE outbox;
