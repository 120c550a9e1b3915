package checkout

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
)

// Repo stores carts, orders, checkout keys and sagas. Its methods take an
// sqlx.ExtContext so they run the same inside a transaction or on the pool. Times
// are stored as Unix microseconds (UTC).
type Repo struct {
	dialect store.Dialect
}

func micros(t time.Time) int64      { return t.UTC().UnixMicro() }
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// forUpdate locks the rows a SELECT reads until the transaction ends, on
// PostgreSQL; SQLite's write transactions already hold the database's one write lock.
func (r Repo) forUpdate() string {
	if r.dialect == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// cartLine is a stored cart line.
type cartLine struct {
	ProductID    string `db:"product_id"`
	SKU          string `db:"sku"`
	Name         string `db:"name"`
	Quantity     int64  `db:"quantity"`
	SeenAmount   int64  `db:"seen_amount"`
	SeenCurrency string `db:"seen_currency"`
	AddedAt      int64  `db:"added_at"`
}

func (l cartLine) seen() orders.Money {
	return orders.Money{Amount: l.SeenAmount, Currency: l.SeenCurrency}
}

// cart is a stored cart: its header (zero for a customer who never had one) and lines.
type cart struct {
	CustomerID string
	Version    int64
	UpdatedAt  time.Time
	Lines      []cartLine // in the order they were added
}

// GetCart returns customer's cart; a customer without one has an empty cart at version 0.
// With lock, the cart row is created when missing and locked until the transaction ends.
func (r Repo) GetCart(ctx context.Context, q sqlx.ExtContext, customerID string, lock bool) (cart, error) {
	c := cart{CustomerID: customerID}
	if lock {
		if _, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO carts (customer_id, version, updated_at) VALUES (?, 0, ?)
			ON CONFLICT (customer_id) DO NOTHING`), customerID, micros(time.Now())); err != nil {
			return c, fmt.Errorf("orders: create cart: %w", err)
		}
	}
	var head struct {
		Version   int64 `db:"version"`
		UpdatedAt int64 `db:"updated_at"`
	}
	lockClause := ""
	if lock {
		lockClause = r.forUpdate()
	}
	err := sqlx.GetContext(ctx, q, &head, q.Rebind(`SELECT version, updated_at FROM carts WHERE customer_id = ?`+lockClause), customerID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		c.Lines = []cartLine{}
		return c, nil
	case err != nil:
		return c, fmt.Errorf("orders: get cart: %w", err)
	}
	c.Version, c.UpdatedAt = head.Version, fromMicros(head.UpdatedAt)
	if head.Version == 0 {
		c.UpdatedAt = time.Time{}
	}
	c.Lines = []cartLine{}
	err = sqlx.SelectContext(ctx, q, &c.Lines, q.Rebind(`SELECT product_id, sku, name, quantity, seen_amount, seen_currency, added_at
		FROM cart_lines WHERE customer_id = ? ORDER BY added_at, product_id`), customerID)
	if err != nil {
		return c, fmt.Errorf("orders: get cart lines: %w", err)
	}
	return c, nil
}

// PutLine inserts or replaces a line of customer's cart.
func (Repo) PutLine(ctx context.Context, q sqlx.ExtContext, customerID string, l cartLine) error {
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO cart_lines
		(customer_id, product_id, sku, name, quantity, seen_amount, seen_currency, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (customer_id, product_id) DO UPDATE SET sku = excluded.sku, name = excluded.name,
			quantity = excluded.quantity, seen_amount = excluded.seen_amount, seen_currency = excluded.seen_currency`),
		customerID, l.ProductID, l.SKU, l.Name, l.Quantity, l.SeenAmount, l.SeenCurrency, l.AddedAt)
	if err != nil {
		return fmt.Errorf("orders: put cart line: %w", err)
	}
	return nil
}

// SetSeen records the price (and name) the customer has now seen for a line.
func (Repo) SetSeen(ctx context.Context, q sqlx.ExtContext, customerID, productID, name string, price orders.Money) error {
	_, err := q.ExecContext(ctx, q.Rebind(`UPDATE cart_lines SET seen_amount = ?, seen_currency = ?, name = ?
		WHERE customer_id = ? AND product_id = ?`), price.Amount, price.Currency, name, customerID, productID)
	if err != nil {
		return fmt.Errorf("orders: update seen price: %w", err)
	}
	return nil
}

// DeleteLine removes a line and reports whether there was one.
func (Repo) DeleteLine(ctx context.Context, q sqlx.ExtContext, customerID, productID string) (bool, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM cart_lines WHERE customer_id = ? AND product_id = ?`), customerID, productID)
	if err != nil {
		return false, fmt.Errorf("orders: delete cart line: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ClearCart removes every line of customer's cart.
func (Repo) ClearCart(ctx context.Context, q sqlx.ExtContext, customerID string) error {
	if _, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM cart_lines WHERE customer_id = ?`), customerID); err != nil {
		return fmt.Errorf("orders: clear cart: %w", err)
	}
	return nil
}

// BumpCart increases the cart's version (the cart row must exist: GetCart with lock).
func (Repo) BumpCart(ctx context.Context, q sqlx.ExtContext, customerID string, now time.Time) error {
	_, err := q.ExecContext(ctx, q.Rebind(`UPDATE carts SET version = version + 1, updated_at = ? WHERE customer_id = ?`),
		micros(now), customerID)
	if err != nil {
		return fmt.Errorf("orders: bump cart: %w", err)
	}
	return nil
}

const orderColumns = `id, customer_id, status, reason, lines, total_amount, total_currency, refunded, version, created_at, updated_at`

type orderRow struct {
	ID            string `db:"id"`
	CustomerID    string `db:"customer_id"`
	Status        string `db:"status"`
	Reason        string `db:"reason"`
	Lines         string `db:"lines"`
	TotalAmount   int64  `db:"total_amount"`
	TotalCurrency string `db:"total_currency"`
	Refunded      int64  `db:"refunded"`
	Version       int64  `db:"version"`
	CreatedAt     int64  `db:"created_at"`
	UpdatedAt     int64  `db:"updated_at"`
}

func (r orderRow) order() (orders.Order, error) {
	o := orders.Order{ID: r.ID, CustomerID: r.CustomerID, Status: orders.Status(r.Status), Reason: r.Reason,
		Total: orders.Money{Amount: r.TotalAmount, Currency: r.TotalCurrency}, Refunded: r.Refunded, Version: r.Version,
		CreatedAt: fromMicros(r.CreatedAt), UpdatedAt: fromMicros(r.UpdatedAt)}
	if err := json.Unmarshal([]byte(r.Lines), &o.Lines); err != nil {
		return o, fmt.Errorf("orders: order %s has corrupt lines: %w", r.ID, err)
	}
	return o, nil
}

// InsertOrder adds o.
func (Repo) InsertOrder(ctx context.Context, q sqlx.ExtContext, o orders.Order) error {
	lines, err := json.Marshal(o.Lines)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, q.Rebind(`INSERT INTO orders (`+orderColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		o.ID, o.CustomerID, string(o.Status), o.Reason, string(lines), o.Total.Amount, o.Total.Currency, o.Refunded,
		o.Version, micros(o.CreatedAt), micros(o.UpdatedAt))
	if err != nil {
		return fmt.Errorf("orders: insert order: %w", err)
	}
	return nil
}

// GetOrder returns order id, or ErrOrderNotFound; with lock it stays locked until
// the transaction ends.
func (r Repo) GetOrder(ctx context.Context, q sqlx.ExtContext, id string, lock bool) (orders.Order, error) {
	var row orderRow
	query := `SELECT ` + orderColumns + ` FROM orders WHERE id = ?`
	if lock {
		query += r.forUpdate()
	}
	err := sqlx.GetContext(ctx, q, &row, q.Rebind(query), id)
	if errors.Is(err, sql.ErrNoRows) {
		return orders.Order{}, orders.ErrOrderNotFound.Withf("no order with id %s", id)
	}
	if err != nil {
		return orders.Order{}, fmt.Errorf("orders: get order %s: %w", id, err)
	}
	return row.order()
}

// UpdateOrder writes o's changing fields over the stored order if that is still at
// version o.Version-1.
func (Repo) UpdateOrder(ctx context.Context, q sqlx.ExtContext, o orders.Order) error {
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE orders SET status = ?, reason = ?, refunded = ?, version = ?, updated_at = ?
		WHERE id = ? AND version = ?`), string(o.Status), o.Reason, o.Refunded, o.Version, micros(o.UpdatedAt), o.ID, o.Version-1)
	if err != nil {
		return fmt.Errorf("orders: update order %s: %w", o.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("orders: order %s changed concurrently (expected version %d)", o.ID, o.Version-1)
	}
	return nil
}

// ListOrders returns up to limit orders, newest first, with ids before before
// (all when empty), of one customer (all when empty) in one status (all when empty).
func (Repo) ListOrders(ctx context.Context, q sqlx.ExtContext, customerID string, status orders.Status, before string, limit int) ([]orders.Order, error) {
	var where []string
	var args []any
	if customerID != "" {
		where, args = append(where, "customer_id = ?"), append(args, customerID)
	}
	if status != "" {
		where, args = append(where, "status = ?"), append(args, string(status))
	}
	if before != "" {
		where, args = append(where, "id < ?"), append(args, before)
	}
	query := `SELECT ` + orderColumns + ` FROM orders`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	var rows []orderRow
	if err := sqlx.SelectContext(ctx, q, &rows, q.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("orders: list orders: %w", err)
	}
	out := make([]orders.Order, 0, len(rows))
	for _, r := range rows {
		o, err := r.order()
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// checkoutKey is a stored checkout idempotency record.
type checkoutKey struct {
	RequestHash string `db:"request_hash"`
	OrderID     string `db:"order_id"`
}

// GetCheckoutKey returns the record of customer's key, if there is one.
func (Repo) GetCheckoutKey(ctx context.Context, q sqlx.ExtContext, customerID, key string) (checkoutKey, bool, error) {
	var k checkoutKey
	err := sqlx.GetContext(ctx, q, &k, q.Rebind(`SELECT request_hash, order_id FROM checkout_keys
		WHERE customer_id = ? AND idempotency_key = ?`), customerID, key)
	if errors.Is(err, sql.ErrNoRows) {
		return k, false, nil
	}
	if err != nil {
		return k, false, fmt.Errorf("orders: get checkout key: %w", err)
	}
	return k, true, nil
}

// errKeyTaken: another checkout stored the same key first.
var errKeyTaken = errors.New("orders: idempotency key taken concurrently")

// InsertCheckoutKey records a successful checkout's key; a key stored meanwhile by
// another checkout is errKeyTaken.
func (Repo) InsertCheckoutKey(ctx context.Context, q sqlx.ExtContext, customerID, key, hash, orderID string, now time.Time) error {
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO checkout_keys (customer_id, idempotency_key, request_hash, order_id, created_at)
		VALUES (?, ?, ?, ?, ?)`), customerID, key, hash, orderID, micros(now))
	if store.IsUniqueViolation(err) {
		return errKeyTaken
	}
	if err != nil {
		return fmt.Errorf("orders: insert checkout key: %w", err)
	}
	return nil
}

// PurgeCheckoutKeys deletes checkout keys stored before cutoff.
func (Repo) PurgeCheckoutKeys(ctx context.Context, q sqlx.ExtContext, cutoff time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM checkout_keys WHERE created_at < ?`), micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("orders: purge checkout keys: %w", err)
	}
	return res.RowsAffected()
}

type sagaRow struct {
	OrderID string `db:"order_id"`
	Data    string `db:"data"`
}

func (r sagaRow) saga() (saga.Saga, error) {
	var s saga.Saga
	if err := json.Unmarshal([]byte(r.Data), &s); err != nil {
		return s, fmt.Errorf("orders: saga %s is corrupt: %w", r.OrderID, err)
	}
	return s, nil
}

// InsertSaga adds s.
func (Repo) InsertSaga(ctx context.Context, q sqlx.ExtContext, s saga.Saga) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, q.Rebind(`INSERT INTO sagas (order_id, state, deadline, attempts, data, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), s.OrderID, string(s.State), micros(s.Deadline), s.Attempts, string(data),
		micros(s.CreatedAt), micros(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("orders: insert saga: %w", err)
	}
	return nil
}

// UpdateSaga writes s over its stored row.
func (Repo) UpdateSaga(ctx context.Context, q sqlx.ExtContext, s saga.Saga) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, q.Rebind(`UPDATE sagas SET state = ?, deadline = ?, attempts = ?, data = ?, updated_at = ?
		WHERE order_id = ?`), string(s.State), micros(s.Deadline), s.Attempts, string(data), micros(s.UpdatedAt), s.OrderID)
	if err != nil {
		return fmt.Errorf("orders: update saga %s: %w", s.OrderID, err)
	}
	return nil
}

// GetSaga returns the saga of order id, or ErrSagaNotFound; with lock it stays
// locked until the transaction ends.
func (r Repo) GetSaga(ctx context.Context, q sqlx.ExtContext, orderID string, lock bool) (saga.Saga, error) {
	var row sagaRow
	query := `SELECT order_id, data FROM sagas WHERE order_id = ?`
	if lock {
		query += r.forUpdate()
	}
	err := sqlx.GetContext(ctx, q, &row, q.Rebind(query), orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return saga.Saga{}, orders.ErrSagaNotFound.Withf("no saga for order %s", orderID)
	}
	if err != nil {
		return saga.Saga{}, fmt.Errorf("orders: get saga %s: %w", orderID, err)
	}
	return row.saga()
}

// ListSagas returns up to limit sagas in state (all when empty) with order ids after
// after, oldest first.
func (Repo) ListSagas(ctx context.Context, q sqlx.ExtContext, state orders.SagaState, after string, limit int) ([]saga.Saga, error) {
	var where []string
	var args []any
	if state != "" {
		where, args = append(where, "state = ?"), append(args, string(state))
	}
	if after != "" {
		where, args = append(where, "order_id > ?"), append(args, after)
	}
	query := `SELECT order_id, data FROM sagas`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY order_id LIMIT ?"
	args = append(args, limit)
	var rows []sagaRow
	if err := sqlx.SelectContext(ctx, q, &rows, q.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("orders: list sagas: %w", err)
	}
	out := make([]saga.Saga, 0, len(rows))
	for _, r := range rows {
		s, err := r.saga()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
