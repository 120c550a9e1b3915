package store

import (
	"context"
	"database/sql"
	"sync"

	"github.com/jmoiron/sqlx"
)

// maxCachedStatements bounds the statement cache: queries built with a varying
// number of placeholders (IN lists) are distinct texts, and past the bound new
// texts simply run unprepared.
const maxCachedStatements = 1000

// stmtCache keeps SQLite statements prepared. The pure-Go SQLite driver compiles a
// statement's text on every unprepared call, which costs more than running a
// small statement; database/sql keeps a prepared statement per connection and
// re-binds it to transactions on that connection. (PostgreSQL's driver caches
// statements itself, so PostgreSQL databases have no stmtCache.)
type stmtCache struct {
	mu        sync.Mutex
	m         map[string]*sqlx.Stmt // nil once closed
	preparing map[string]bool
	// inflight counts background prepares: close waits for them, because a prepare
	// may be opening a connection — on SQLite, the database's files — and none may
	// outlive the database.
	inflight sync.WaitGroup
}

// get returns the prepared statement for query, or nil when it is not prepared
// (yet): the caller then runs the query unprepared, which reports any error the
// usual way. A query seen for the first time is prepared in the background: never
// while the caller holds a connection (a transaction), which could otherwise wait
// for a second connection that every other transaction holds too.
func (c *stmtCache) get(db *sqlx.DB, query string) *sqlx.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok {
		return s
	}
	if c.m != nil && len(c.m)+len(c.preparing) < maxCachedStatements && !c.preparing[query] {
		c.preparing[query] = true
		c.inflight.Add(1)
		go c.prepare(db, query)
	}
	return nil
}

func (c *stmtCache) prepare(db *sqlx.DB, query string) {
	defer c.inflight.Done()
	s, err := db.Preparex(query)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.preparing, query)
	if err != nil {
		return // it fails unprepared too, where the error reaches its caller
	}
	if c.m == nil { // closed meanwhile
		_ = s.Close()
		return
	}
	c.m[query] = s
}

// close closes every cached statement once the prepares under way have ended; a
// prepare that ends after close began closes its own statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	m := c.m
	c.m = nil
	c.mu.Unlock()
	c.inflight.Wait()
	for _, s := range m {
		_ = s.Close()
	}
}

// ExecContext runs query with a cached prepared statement where it can.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := db.prepared(query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return db.DB.ExecContext(ctx, query, args...)
}

// QueryContext runs query with a cached prepared statement where it can.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := db.prepared(query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return db.DB.QueryContext(ctx, query, args...)
}

// QueryxContext runs query with a cached prepared statement where it can.
func (db *DB) QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error) {
	if s := db.prepared(query); s != nil {
		return s.QueryxContext(ctx, args...)
	}
	return db.DB.QueryxContext(ctx, query, args...)
}

// QueryRowxContext runs query with a cached prepared statement where it can.
func (db *DB) QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row {
	if s := db.prepared(query); s != nil {
		return s.QueryRowxContext(ctx, args...)
	}
	return db.DB.QueryRowxContext(ctx, query, args...)
}

// GetContext is sqlx's GetContext through the statement cache.
func (db *DB) GetContext(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.GetContext(ctx, db, dest, query, args...)
}

// SelectContext is sqlx's SelectContext through the statement cache.
func (db *DB) SelectContext(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, db, dest, query, args...)
}

func (db *DB) prepared(query string) *sqlx.Stmt {
	if db.stmts == nil {
		return nil
	}
	return db.stmts.get(db.DB, query)
}

// Close closes the cached statements and the database.
func (db *DB) Close() error {
	if db.stmts != nil {
		db.stmts.close()
	}
	return db.DB.Close()
}

// ExecContext runs query in the transaction with the database's cached prepared
// statement where it can.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.db.prepared(query); s != nil {
		return t.StmtxContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

// QueryContext runs query in the transaction through the statement cache.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.db.prepared(query); s != nil {
		return t.StmtxContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

// QueryxContext runs query in the transaction through the statement cache.
func (t *Tx) QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error) {
	if s := t.db.prepared(query); s != nil {
		return t.StmtxContext(ctx, s).QueryxContext(ctx, args...)
	}
	return t.Tx.QueryxContext(ctx, query, args...)
}

// QueryRowxContext runs query in the transaction through the statement cache.
func (t *Tx) QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row {
	if s := t.db.prepared(query); s != nil {
		return t.StmtxContext(ctx, s).QueryRowxContext(ctx, args...)
	}
	return t.Tx.QueryRowxContext(ctx, query, args...)
}

// GetContext is sqlx's GetContext in the transaction, through the statement cache.
func (t *Tx) GetContext(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.GetContext(ctx, t, dest, query, args...)
}

// SelectContext is sqlx's SelectContext in the transaction, through the statement cache.
func (t *Tx) SelectContext(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, t, dest, query, args...)
}
