-- The email of a notification is a job of the platform's queue (internal/jobs):
-- a sender claims it under a lease and renews it while it sends, instead of
-- pushing email_next_at past the send.

-- +goose Up
ALTER TABLE notifications ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0; -- Unix milliseconds

-- +goose Down
ALTER TABLE notifications DROP COLUMN lease_until;
ALTER TABLE notifications DROP COLUMN lease_owner;
