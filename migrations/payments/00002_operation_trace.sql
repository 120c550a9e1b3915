-- The trace an operation belongs to, so that the worker's provider call and the
-- events it leads to stay in the trace of the command that asked for it.

-- +goose Up
-- The W3C traceparent of the work that scheduled the operation; '' when it was
-- not traced.
ALTER TABLE payment_operations ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE payment_operations DROP COLUMN traceparent;
