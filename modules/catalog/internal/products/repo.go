package products

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/catalog"
)

// Repo stores products. Its methods take an sqlx.ExtContext so they run the same
// inside a transaction or on the pool. Times are stored in UTC to the microsecond,
// the precision every back end keeps.
type Repo struct{}

func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

const productColumns = `id, sku, name, description, category, price_amount, price_currency,
	attributes, image_url, status, version, created_at, updated_at`

type productRow struct {
	ID            string    `db:"id"`
	SKU           string    `db:"sku"`
	Name          string    `db:"name"`
	Description   string    `db:"description"`
	Category      string    `db:"category"`
	PriceAmount   int64     `db:"price_amount"`
	PriceCurrency string    `db:"price_currency"`
	Attributes    string    `db:"attributes"`
	ImageURL      string    `db:"image_url"`
	Status        string    `db:"status"`
	Version       int64     `db:"version"`
	CreatedAt     time.Time `db:"created_at"`
	UpdatedAt     time.Time `db:"updated_at"`
}

func (r productRow) product() (catalog.Product, error) {
	p := catalog.Product{ID: r.ID, SKU: r.SKU, Name: r.Name, Description: r.Description, Category: r.Category,
		Price: catalog.Money{Amount: r.PriceAmount, Currency: r.PriceCurrency}, ImageURL: r.ImageURL,
		Status: catalog.Status(r.Status), Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Attributes), &p.Attributes); err != nil {
		return p, fmt.Errorf("catalog: product %s has corrupt attributes: %w", r.ID, err)
	}
	if p.Attributes == nil {
		p.Attributes = map[string]string{}
	}
	return p, nil
}

// Get returns the product id, or ErrProductNotFound.
func (Repo) Get(ctx context.Context, q sqlx.ExtContext, id string) (catalog.Product, error) {
	var row productRow
	err := sqlx.GetContext(ctx, q, &row, q.Rebind(getByIDQuery), id)
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Product{}, catalog.ErrProductNotFound.Withf("no product with id %s", id)
	}
	if err != nil {
		return catalog.Product{}, fmt.Errorf("catalog: get %s: %w", id, err)
	}
	return row.product()
}

// getByIDQuery is Get's query, which PreparedGet prepares once.
const getByIDQuery = `SELECT ` + productColumns + ` FROM products WHERE id = ?`

// PreparedGet is Get as a statement prepared once on a pool: the hot read skips
// SQL parsing, which is most of a point query's cost on SQLite.
type PreparedGet struct {
	once sync.Once
	stmt *sqlx.Stmt
	err  error
}

// Get is Repo.Get on db through the prepared statement (prepared on first use; if
// that fails, the plain query).
func (g *PreparedGet) Get(ctx context.Context, db *sqlx.DB, id string) (catalog.Product, error) {
	g.once.Do(func() { g.stmt, g.err = db.PreparexContext(context.WithoutCancel(ctx), db.Rebind(getByIDQuery)) })
	if g.err != nil {
		return Repo{}.Get(ctx, db, id)
	}
	var row productRow
	err := g.stmt.GetContext(ctx, &row, id)
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Product{}, catalog.ErrProductNotFound.Withf("no product with id %s", id)
	}
	if err != nil {
		return catalog.Product{}, fmt.Errorf("catalog: get %s: %w", id, err)
	}
	return row.product()
}

// GetMany returns the products with the given ids that exist, in id order.
func (Repo) GetMany(ctx context.Context, q sqlx.ExtContext, ids []string) ([]catalog.Product, error) {
	if len(ids) == 0 {
		return []catalog.Product{}, nil
	}
	query, args, err := sqlx.In(`SELECT `+productColumns+` FROM products WHERE id IN (?) ORDER BY id`, ids)
	if err != nil {
		return nil, err
	}
	return selectProducts(ctx, q, q.Rebind(query), args...)
}

// ListFilter selects products for List.
type ListFilter struct {
	Category string
	Query    string
	Statuses []catalog.Status
	After    string
	Limit    int
}

// List returns up to f.Limit products matching f with ids after f.After, in id order.
func (Repo) List(ctx context.Context, q sqlx.ExtContext, f ListFilter) ([]catalog.Product, error) {
	var where []string
	var args []any
	if len(f.Statuses) > 0 {
		where = append(where, "status IN (?)")
		args = append(args, f.Statuses)
	}
	if f.Category != "" {
		where = append(where, "category = ?")
		args = append(args, f.Category)
	}
	if f.Query != "" {
		where = append(where, `search_text LIKE ? ESCAPE '\'`)
		args = append(args, "%"+escapeLike(strings.ToLower(f.Query))+"%")
	}
	if f.After != "" {
		where = append(where, "id > ?")
		args = append(args, f.After)
	}
	query := `SELECT ` + productColumns + ` FROM products`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id LIMIT ?"
	args = append(args, f.Limit)
	query, args, err := sqlx.In(query, args...)
	if err != nil {
		return nil, err
	}
	return selectProducts(ctx, q, q.Rebind(query), args...)
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func selectProducts(ctx context.Context, q sqlx.ExtContext, query string, args ...any) ([]catalog.Product, error) {
	var rows []productRow
	if err := sqlx.SelectContext(ctx, q, &rows, query, args...); err != nil {
		return nil, fmt.Errorf("catalog: list products: %w", err)
	}
	out := make([]catalog.Product, 0, len(rows))
	for _, r := range rows {
		p, err := r.product()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Insert adds p; a taken SKU is ErrSKUTaken.
func (Repo) Insert(ctx context.Context, q sqlx.ExtContext, p catalog.Product) error {
	attrs, err := json.Marshal(p.Attributes)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, q.Rebind(`INSERT INTO products (`+productColumns+`, search_text)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		p.ID, p.SKU, p.Name, p.Description, p.Category, p.Price.Amount, p.Price.Currency, string(attrs), p.ImageURL,
		string(p.Status), p.Version, storedTime(p.CreatedAt), storedTime(p.UpdatedAt), searchText(&p))
	if store.IsUniqueViolation(err) {
		return catalog.ErrSKUTaken.Withf("a product with SKU %s exists", p.SKU).OnField("sku")
	}
	if err != nil {
		return fmt.Errorf("catalog: insert %s: %w", describe(&p), err)
	}
	return nil
}

// Update writes p over the stored row if that row is still at version p.Version-1.
func (Repo) Update(ctx context.Context, q sqlx.ExtContext, p catalog.Product) error {
	attrs, err := json.Marshal(p.Attributes)
	if err != nil {
		return err
	}
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE products SET name = ?, description = ?, category = ?,
		price_amount = ?, price_currency = ?, attributes = ?, image_url = ?, status = ?, version = ?,
		updated_at = ?, search_text = ? WHERE id = ? AND version = ?`),
		p.Name, p.Description, p.Category, p.Price.Amount, p.Price.Currency, string(attrs), p.ImageURL,
		string(p.Status), p.Version, storedTime(p.UpdatedAt), searchText(&p), p.ID, p.Version-1)
	if err != nil {
		return fmt.Errorf("catalog: update %s: %w", describe(&p), err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return catalog.ErrVersionMismatch
	}
	return nil
}
