package migrations_test

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/migrations"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// Every folder is one portable set, served to both dialects; on SQLite with the
// time columns declared TIMESTAMP.
func TestForServesOnePortableSet(t *testing.T) {
	for _, name := range []string{"catalog", "identity", "inventory", "notifications", "orders", "payments"} {
		for _, dialect := range []string{string(store.SQLite), string(store.Postgres)} {
			fsys, err := migrations.For(name, dialect)
			if err != nil {
				t.Fatalf("For(%q, %q): %v", name, dialect, err)
			}
			files, _ := fs.Glob(fsys, "*.sql")
			if len(files) == 0 {
				t.Errorf("For(%q, %q) has no migrations", name, dialect)
			}
			for _, f := range files {
				b, err := fs.ReadFile(fsys, f)
				if err != nil {
					t.Fatal(err)
				}
				if dialect == "sqlite" && strings.Contains(string(b), "TIMESTAMPTZ") {
					t.Errorf("For(%q, sqlite): %s declares TIMESTAMPTZ, which the driver reads as text", name, f)
				}
			}
		}
	}
	lite, _ := migrations.For("catalog", "sqlite")
	if b, _ := fs.ReadFile(lite, "00001_products.sql"); !strings.Contains(string(b), "created_at  TIMESTAMP NOT NULL") {
		t.Errorf("catalog's products on SQLite do not declare created_at TIMESTAMP:\n%s", b)
	}
	if _, err := migrations.For("nope", "sqlite"); err == nil {
		t.Error("For of an unknown module must fail")
	}
}

// A database that applied the per-dialect migrations these files replaced
// (testdata/legacy, as they were) is up to date for the portable set, and has the
// schema a new database gets from it, on every back end.
func TestExistingDatabasesNeedNoMigration(t *testing.T) {
	for _, module := range []string{"catalog", "identity", "inventory", "notifications"} {
		for _, backend := range testdb.Backends {
			t.Run(module+"/"+string(backend), func(t *testing.T) {
				ctx := t.Context()
				current, err := migrations.For(module, string(backend))
				if err != nil {
					t.Fatal(err)
				}
				legacy, err := fs.Sub(os.DirFS("testdata/legacy"), module+"/"+string(backend))
				if err != nil {
					t.Fatal(err)
				}
				old := testdb.Open(t, backend, module, nil)
				migrate(t, old, legacy)
				applied := versions(t, old)
				migrate(t, old, current)
				if got := versions(t, old); !cmp.Equal(applied, got) {
					t.Errorf("the portable set applied more to an existing database: versions %v, then %v", applied, got)
				}
				fresh := testdb.Open(t, backend, module, nil)
				migrate(t, fresh, current)
				if diff := cmp.Diff(schema(ctx, t, old), schema(ctx, t, fresh)); diff != "" {
					t.Errorf("an existing database's schema and a new one's differ (-existing +new):\n%s", diff)
				}
			})
		}
	}
}

func migrate(t *testing.T, db *store.DB, fsys fs.FS) {
	t.Helper()
	if err := store.Migrate(t.Context(), db, fsys, "goose_db_version", testdb.Logger()); err != nil {
		t.Fatal(err)
	}
}

func versions(t *testing.T, db *store.DB) []int64 {
	t.Helper()
	var v []int64
	if err := db.SelectContext(t.Context(), &v, `SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	return v
}

// schema describes db's tables, columns, indexes and constraints, in a form that
// compares two databases (whitespace, comments and schema names aside).
func schema(ctx context.Context, t *testing.T, db *store.DB) []string {
	t.Helper()
	var rows []string
	var err error
	if db.Dialect == store.SQLite {
		// SQLite keeps each table's and index's CREATE statement, declared types included.
		var stmts []string
		err = db.SelectContext(ctx, &stmts, `SELECT sql FROM sqlite_master
			WHERE sql IS NOT NULL AND name <> 'goose_db_version' ORDER BY type, name`)
		for _, s := range stmts {
			rows = append(rows, normalize(s))
		}
	} else {
		err = db.SelectContext(ctx, &rows, `
			SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || COALESCE(column_default, '')
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'goose_db_version'
			UNION ALL
			SELECT replace(indexdef, current_schema() || '.', '') FROM pg_indexes WHERE schemaname = current_schema()
			UNION ALL
			SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
			WHERE connamespace = current_schema()::regnamespace
			ORDER BY 1`)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// normalize drops a statement's comments and runs of white space.
func normalize(stmt string) string {
	var lines []string
	for l := range strings.Lines(stmt) {
		if i := strings.Index(l, "--"); i >= 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	return strings.Join(strings.Fields(strings.Join(lines, " ")), " ")
}
