package stock

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/inventory"
)

// Repo stores items, adjustments and reservations. Its methods take an
// sqlx.ExtContext so they run the same inside a transaction or on the pool. Times
// are stored in UTC to the microsecond, the precision every back end keeps.
//
// Methods that read in order to write ("lock") take the rows' write locks on
// PostgreSQL (SELECT … FOR UPDATE), so that concurrent writers of one item queue
// instead of deciding on the same numbers. SQLite needs no row locks: every write
// transaction takes the database's write lock at BEGIN.
type Repo struct {
	forUpdate string
}

// NewRepo returns the repository for a database of dialect d.
func NewRepo(d store.Dialect) Repo {
	if d == store.Postgres {
		return Repo{forUpdate: " FOR UPDATE"}
	}
	return Repo{}
}

func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

const itemColumns = `sku, product_id, on_hand, reserved, low_mark, version, updated_at`

type itemRow struct {
	SKU       string    `db:"sku"`
	ProductID string    `db:"product_id"`
	OnHand    int64     `db:"on_hand"`
	Reserved  int64     `db:"reserved"`
	LowMark   int64     `db:"low_mark"`
	Version   int64     `db:"version"`
	UpdatedAt time.Time `db:"updated_at"`
}

func (r itemRow) item() inventory.Item {
	return inventory.Item{SKU: r.SKU, ProductID: r.ProductID, OnHand: r.OnHand, Reserved: r.Reserved,
		Available: r.OnHand - r.Reserved, LowMark: r.LowMark, Version: r.Version, UpdatedAt: r.UpdatedAt.UTC()}
}

func selectItems(ctx context.Context, q sqlx.ExtContext, query string, args ...any) ([]inventory.Item, error) {
	var rows []itemRow
	if err := sqlx.SelectContext(ctx, q, &rows, q.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("inventory: select items: %w", err)
	}
	out := make([]inventory.Item, len(rows))
	for i, r := range rows {
		out[i] = r.item()
	}
	return out, nil
}

// Item returns the item sku, or ErrItemNotFound; lock takes its write lock.
func (r Repo) Item(ctx context.Context, q sqlx.ExtContext, sku string, lock bool) (inventory.Item, error) {
	query := `SELECT ` + itemColumns + ` FROM items WHERE sku = ?`
	if lock {
		query += r.forUpdate
	}
	var row itemRow
	err := sqlx.GetContext(ctx, q, &row, q.Rebind(query), sku)
	if errors.Is(err, sql.ErrNoRows) {
		return inventory.Item{}, inventory.ErrItemNotFound.Withf("no stock item with SKU %s", sku)
	}
	if err != nil {
		return inventory.Item{}, fmt.Errorf("inventory: get item %s: %w", sku, err)
	}
	return row.item(), nil
}

// ItemsFor returns the items of the given products and SKUs that exist, in SKU
// order (the order in which lock takes their write locks, so that two writers of
// the same items cannot deadlock).
func (r Repo) ItemsFor(ctx context.Context, q sqlx.ExtContext, productIDs, skus []string, lock bool) ([]inventory.Item, error) {
	if len(productIDs) == 0 && len(skus) == 0 {
		return nil, nil
	}
	// sqlx.In refuses empty lists; "" is neither a product id nor a SKU.
	if len(productIDs) == 0 {
		productIDs = []string{""}
	}
	if len(skus) == 0 {
		skus = []string{""}
	}
	query := `SELECT ` + itemColumns + ` FROM items WHERE product_id IN (?) OR sku IN (?) ORDER BY sku`
	if lock {
		query += r.forUpdate
	}
	query, args, err := sqlx.In(query, productIDs, skus)
	if err != nil {
		return nil, err
	}
	return selectItems(ctx, q, query, args...)
}

// ListItems returns up to limit items with SKUs after after, in SKU order.
func (Repo) ListItems(ctx context.Context, q sqlx.ExtContext, after string, limit int) ([]inventory.Item, error) {
	return selectItems(ctx, q, `SELECT `+itemColumns+` FROM items WHERE sku > ? ORDER BY sku LIMIT ?`, after, limit)
}

// InsertItem adds it unless an item with its SKU or product exists; it reports
// whether it did.
func (Repo) InsertItem(ctx context.Context, q sqlx.ExtContext, it inventory.Item) (bool, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO items (`+itemColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`),
		it.SKU, it.ProductID, it.OnHand, it.Reserved, it.LowMark, it.Version, storedTime(it.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("inventory: insert item %s: %w", it.SKU, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// errLostUpdate says a row changed between its read and its write: the
// transaction is rolled back and the caller (a redelivered message, a retried
// request) tries again on fresh numbers. Row locks make it unreachable in
// practice; the version check makes it impossible to write over a change.
var errLostUpdate = errors.New("inventory: the item changed under the transaction")

// UpdateItem writes it's numbers over the stored item if that is still at
// version it.Version-1.
func (Repo) UpdateItem(ctx context.Context, q sqlx.ExtContext, it inventory.Item) error {
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE items SET on_hand = ?, reserved = ?, low_mark = ?, version = ?,
		updated_at = ? WHERE sku = ? AND version = ?`),
		it.OnHand, it.Reserved, it.LowMark, it.Version, storedTime(it.UpdatedAt), it.SKU, it.Version-1)
	if err != nil {
		return fmt.Errorf("inventory: update item %s: %w", it.SKU, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("%w: %s", errLostUpdate, it.SKU)
	}
	return nil
}

const adjustmentColumns = `id, sku, delta, on_hand, reason, actor, created_at`

type adjustmentRow struct {
	ID        string    `db:"id"`
	SKU       string    `db:"sku"`
	Delta     int64     `db:"delta"`
	OnHand    int64     `db:"on_hand"`
	Reason    string    `db:"reason"`
	Actor     string    `db:"actor"`
	CreatedAt time.Time `db:"created_at"`
}

// InsertAdjustment records a.
func (Repo) InsertAdjustment(ctx context.Context, q sqlx.ExtContext, a inventory.Adjustment) error {
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO adjustments (`+adjustmentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		a.ID, a.SKU, a.Delta, a.OnHand, a.Reason, a.Actor, storedTime(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("inventory: insert adjustment of %s: %w", a.SKU, err)
	}
	return nil
}

// Adjustments returns up to limit adjustments of sku, newest first, older than
// the adjustment before ("" starts at the newest).
func (Repo) Adjustments(ctx context.Context, q sqlx.ExtContext, sku, before string, limit int) ([]inventory.Adjustment, error) {
	query := `SELECT ` + adjustmentColumns + ` FROM adjustments WHERE sku = ?`
	args := []any{sku}
	if before != "" {
		query += ` AND id < ?`
		args = append(args, before)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	var rows []adjustmentRow
	if err := sqlx.SelectContext(ctx, q, &rows, q.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("inventory: list adjustments of %s: %w", sku, err)
	}
	out := make([]inventory.Adjustment, len(rows))
	for i, r := range rows {
		out[i] = inventory.Adjustment{ID: r.ID, SKU: r.SKU, Delta: r.Delta, OnHand: r.OnHand, Reason: r.Reason,
			Actor: r.Actor, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}

// HasAdjustment reports whether sku was ever adjusted.
func (Repo) HasAdjustment(ctx context.Context, q sqlx.ExtContext, sku string) (bool, error) {
	var n int
	err := sqlx.GetContext(ctx, q, &n, q.Rebind(`SELECT COUNT(*) FROM (SELECT 1 FROM adjustments WHERE sku = ? LIMIT 1) a`), sku)
	if err != nil {
		return false, fmt.Errorf("inventory: adjustments of %s: %w", sku, err)
	}
	return n > 0, nil
}

// Reservation statuses. held → committed → restocked; held → released; and a
// rejected reservation records that nothing was held, so the order's outcome is
// answered the same way every time.
const (
	statusHeld      = "held"
	statusCommitted = "committed"
	statusReleased  = "released"
	statusRestocked = "restocked"
	statusRejected  = "rejected"
)

// reservation is an order's claim on stock.
type reservation struct {
	OrderID   string
	Status    string
	ExpiresAt time.Time
	Lines     []inventory.Line         // what is (or was) held; none when rejected
	Rejected  []inventory.RejectedLine // why not, when rejected
}

type reservationRow struct {
	OrderID   string    `db:"order_id"`
	Status    string    `db:"status"`
	ExpiresAt time.Time `db:"expires_at"`
	Rejection string    `db:"rejection"`
}

type lineRow struct {
	SKU       string `db:"sku"`
	ProductID string `db:"product_id"`
	Quantity  int64  `db:"quantity"`
}

// Reservation returns the reservation of orderID with its lines, and whether it
// exists; lock takes its write lock.
func (r Repo) Reservation(ctx context.Context, q sqlx.ExtContext, orderID string, lock bool) (reservation, bool, error) {
	query := `SELECT order_id, status, expires_at, rejection FROM reservations WHERE order_id = ?`
	if lock {
		query += r.forUpdate
	}
	var row reservationRow
	err := sqlx.GetContext(ctx, q, &row, q.Rebind(query), orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return reservation{}, false, nil
	}
	if err != nil {
		return reservation{}, false, fmt.Errorf("inventory: get reservation %s: %w", orderID, err)
	}
	res := reservation{OrderID: row.OrderID, Status: row.Status, ExpiresAt: row.ExpiresAt.UTC()}
	if err := json.Unmarshal([]byte(row.Rejection), &res.Rejected); err != nil {
		return reservation{}, false, fmt.Errorf("inventory: reservation %s has a corrupt rejection: %w", orderID, err)
	}
	var lines []lineRow
	if err := sqlx.SelectContext(ctx, q, &lines, q.Rebind(
		`SELECT sku, product_id, quantity FROM reservation_lines WHERE order_id = ? ORDER BY line_no`), orderID); err != nil {
		return reservation{}, false, fmt.Errorf("inventory: get reservation lines %s: %w", orderID, err)
	}
	for _, l := range lines {
		res.Lines = append(res.Lines, inventory.Line{ProductID: l.ProductID, SKU: l.SKU, Quantity: l.Quantity})
	}
	return res, true, nil
}

// InsertReservation records res; a second reservation of one order fails (the
// primary key), so a racing duplicate command rolls back and is retried.
func (Repo) InsertReservation(ctx context.Context, q sqlx.ExtContext, res reservation, now time.Time) error {
	rejection, err := json.Marshal(res.Rejected)
	if err != nil {
		return err
	}
	if res.Rejected == nil {
		rejection = []byte("[]")
	}
	if _, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO reservations
		(order_id, status, expires_at, rejection, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`),
		res.OrderID, res.Status, storedTime(res.ExpiresAt), string(rejection), storedTime(now), storedTime(now)); err != nil {
		return fmt.Errorf("inventory: insert reservation %s: %w", res.OrderID, err)
	}
	for i, l := range res.Lines {
		if _, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO reservation_lines (order_id, line_no, sku, product_id, quantity)
			VALUES (?, ?, ?, ?, ?)`), res.OrderID, i, l.SKU, l.ProductID, l.Quantity); err != nil {
			return fmt.Errorf("inventory: insert reservation line %s/%d: %w", res.OrderID, i, err)
		}
	}
	return nil
}

// SetReservationStatus moves orderID's reservation from status from to to; it
// fails with errLostUpdate when the reservation is no longer in from.
func (Repo) SetReservationStatus(ctx context.Context, q sqlx.ExtContext, orderID, from, to string, now time.Time) error {
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE reservations SET status = ?, updated_at = ? WHERE order_id = ? AND status = ?`),
		to, storedTime(now), orderID, from)
	if err != nil {
		return fmt.Errorf("inventory: set reservation %s %s: %w", orderID, to, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("%w: reservation %s is no longer %s", errLostUpdate, orderID, from)
	}
	return nil
}

// ExpiredHeld returns up to limit orders whose reservations are held past now,
// soonest expired first.
func (Repo) ExpiredHeld(ctx context.Context, q sqlx.ExtContext, now time.Time, limit int) ([]string, error) {
	var ids []string
	err := sqlx.SelectContext(ctx, q, &ids, q.Rebind(`SELECT order_id FROM reservations
		WHERE status = ? AND expires_at <= ? ORDER BY expires_at LIMIT ?`), statusHeld, storedTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("inventory: expired reservations: %w", err)
	}
	return ids, nil
}
