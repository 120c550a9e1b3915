-- A saga whose step is past its deadline is a job of the platform's queue
-- (internal/jobs): the timeout sweep claims it under a lease, gives it its
-- timeout, and retries with backoff a timeout that failed. The deadline is the
-- job's due time (Unix microseconds, like every time of this module).

-- +goose Up
ALTER TABLE sagas ADD COLUMN sweep_attempts INTEGER NOT NULL DEFAULT 0; -- failed timeouts in a row
ALTER TABLE sagas ADD COLUMN last_error     TEXT    NOT NULL DEFAULT '';
ALTER TABLE sagas ADD COLUMN lease_owner    TEXT    NOT NULL DEFAULT '';
ALTER TABLE sagas ADD COLUMN lease_until    BIGINT  NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE sagas DROP COLUMN lease_until;
ALTER TABLE sagas DROP COLUMN lease_owner;
ALTER TABLE sagas DROP COLUMN last_error;
ALTER TABLE sagas DROP COLUMN sweep_attempts;
