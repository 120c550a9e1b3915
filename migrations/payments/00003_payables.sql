-- Payables: a payment pays for an order or a ride. The id column is the payable's
-- id (an order's until rides existed, so every existing row is an order's), and
-- payable says which kind it is.

-- +goose Up
ALTER TABLE payments RENAME COLUMN order_id TO payable_id;
ALTER TABLE payments ADD COLUMN payable TEXT NOT NULL DEFAULT 'order' CHECK (payable IN ('order', 'ride'));
ALTER TABLE payment_entries RENAME COLUMN order_id TO payable_id;
ALTER TABLE payment_operations RENAME COLUMN order_id TO payable_id;

-- +goose Down
ALTER TABLE payment_operations RENAME COLUMN payable_id TO order_id;
ALTER TABLE payment_entries RENAME COLUMN payable_id TO order_id;
ALTER TABLE payments DROP COLUMN payable;
ALTER TABLE payments RENAME COLUMN payable_id TO order_id;
