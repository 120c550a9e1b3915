package store

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
)

// Postgres is the production dialect.
const Postgres Dialect = "postgres"

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// OpenPostgres opens module's schema in the PostgreSQL database at url (a
// postgres:// URL or key=value string). Every connection's search_path is the schema
// alone, so the module's unqualified names — its tables, its outbox, its migration
// versions — resolve there and nowhere else. The schema is created when it is
// missing (which needs the CREATE right on the database; an operator may instead
// create it and grant the module's role rights on it alone, see docs/postgres.md).
func OpenPostgres(ctx context.Context, module, url, schema string, o Options) (*DB, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("store: %q is not a valid schema name", schema)
	}
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: %s database URL: %w", module, redact(err))
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["search_path"] = schema
	cc.RuntimeParams["application_name"] = "agora-" + module
	if o.StatementTimeout > 0 {
		cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	db := sqlx.NewDb(stdlib.OpenDB(*cc), "pgx")
	o = o.withDefaults()
	if o.ConnMaxLifetime <= 0 {
		o.ConnMaxLifetime = 30 * time.Minute
	}
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxIdleConns)
	db.SetConnMaxLifetime(o.ConnMaxLifetime)
	db.SetConnMaxIdleTime(o.ConnMaxIdleTime)
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: connect %s to PostgreSQL: %w", module, err)
	}
	if !exists {
		// The name was validated above; identifiers cannot be bound as parameters.
		if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("store: create schema %s for %s: %w", schema, module, err)
		}
	}
	return &DB{DB: db, Module: module, Dialect: Postgres, counts: &commitCounts{}, pig: &piggyback{}}, nil
}

// redact keeps a URL parse error from echoing a password.
func redact(err error) error {
	return fmt.Errorf("cannot parse it (check the scheme, host, port and escaping): %T", err)
}
