package migrations_test

import (
	"context"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

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
// (testdata/legacy, as they were) is up to date for the portable files of the
// same versions — the portable set applies to it only what is newer — and has the
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
				fresh := testdb.Open(t, backend, module, nil)
				migrate(t, fresh, current)
				got, want := versions(t, old), versions(t, fresh)
				// got equal to want (ascending, as a new database applies them) and applied
				// a prefix of it: nothing applied twice, nothing older slipped in.
				if !cmp.Equal(want, got) || !slices.Equal(applied, got[:min(len(applied), len(got))]) {
					t.Errorf("the portable set applied to an existing database what it had: versions %v, then %v; a new one has %v",
						applied, got, want)
				}
				if diff := cmp.Diff(schema(ctx, t, old), schema(ctx, t, fresh)); diff != "" {
					t.Errorf("an existing database's schema and a new one's differ (-existing +new):\n%s", diff)
				}
			})
		}
	}
}

// An identity database of the previous version keeps its accounts and refresh
// tokens through the driver role's migration (which rebuilds both tables), and
// then takes drivers, which it refused before.
func TestDriverRoleKeepsAccounts(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(string(backend), func(t *testing.T) {
			ctx := t.Context()
			current, err := migrations.For("identity", string(backend))
			if err != nil {
				t.Fatal(err)
			}
			db := legacyDB(t, backend, "identity")
			now := time.Now().UTC().Truncate(time.Second)
			insertUser := db.Rebind(`INSERT INTO users (id, email, password_hash, role, version, created_at, updated_at, token_version)
				VALUES (?, ?, 'hash', ?, 1, ?, ?, 3)`)
			if _, err := db.ExecContext(ctx, insertUser, "u1", "alice@example.com", "customer", now, now); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, insertUser, "u2", "driver@example.com", "driver", now, now); err == nil {
				t.Fatal("the previous schema took a driver")
			}
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)
				VALUES ('t1', 'u1', 'f1', 'h1', ?, ?)`), now, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			migrate(t, db, current)
			var got struct {
				Email        string    `db:"email"`
				TokenVersion int64     `db:"token_version"`
				CreatedAt    time.Time `db:"created_at"`
				Family       string    `db:"family_id"`
			}
			if err := db.GetContext(ctx, &got, `SELECT u.email, u.token_version, u.created_at, r.family_id
				FROM users u JOIN refresh_tokens r ON r.user_id = u.id`); err != nil {
				t.Fatal(err)
			}
			if got.Email != "alice@example.com" || got.TokenVersion != 3 || !got.CreatedAt.Equal(now) || got.Family != "f1" {
				t.Errorf("after the migration: %+v", got)
			}
			if _, err := db.ExecContext(ctx, insertUser, "u2", "driver@example.com", "driver", now, now); err != nil {
				t.Errorf("a driver after the migration: %v", err)
			}
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)
				VALUES ('t2', 'nobody', 'f2', 'h2', ?, ?)`), now, now); err == nil {
				t.Error("the rebuilt refresh_tokens took a token of no user")
			}
		})
	}
}

// A notifications database of the previous version keeps its notifications through
// the migration that makes room for rides (which rebuilds the table), and then takes
// a ride's notification — about an order or a ride, never neither.
func TestRideNoticesKeepNotifications(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(string(backend), func(t *testing.T) {
			ctx := t.Context()
			db := legacyDB(t, backend, "notifications")
			now := time.Now().UTC().Truncate(time.Second)
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO notifications (id, customer_id, kind, order_id, ref, title, body,
				email_status, email_attempts, email_next_at, email_error, created_at, lease_owner, lease_until)
				VALUES ('n1', 'c1', 'refund_issued', 'o1', 'r1', 'Refund', 'We have refunded', 'failed', 3, 7, 'boom', ?, 'me', 9)`),
				now); err != nil {
				t.Fatal(err)
			}
			current, err := migrations.For("notifications", string(backend))
			if err != nil {
				t.Fatal(err)
			}
			migrate(t, db, current)
			type row struct {
				Kind      string    `db:"kind"`
				OrderID   string    `db:"order_id"`
				RideID    string    `db:"ride_id"`
				Ref       string    `db:"ref"`
				Status    string    `db:"email_status"`
				Attempts  int       `db:"email_attempts"`
				NextAt    int64     `db:"email_next_at"`
				Error     string    `db:"email_error"`
				CreatedAt time.Time `db:"created_at"`
				Owner     string    `db:"lease_owner"`
				Until     int64     `db:"lease_until"`
			}
			var got row
			if err := db.GetContext(ctx, &got, `SELECT kind, order_id, ride_id, ref, email_status, email_attempts, email_next_at,
				email_error, created_at, lease_owner, lease_until FROM notifications WHERE id = 'n1'`); err != nil {
				t.Fatal(err)
			}
			want := row{"refund_issued", "o1", "", "r1", "failed", 3, 7, "boom", now, "me", 9}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the notification after the migration (-want +got):\n%s", diff)
			}
			insert := db.Rebind(`INSERT INTO notifications (id, customer_id, kind, order_id, ride_id, title, body, email_status, created_at)
				VALUES (?, 'c1', 'ride_completed', ?, ?, 'Receipt', 'Thank you', 'none', ?)`)
			if _, err := db.ExecContext(ctx, insert, "n2", "", "ride1", now); err != nil {
				t.Errorf("a ride's notification: %v", err)
			}
			if _, err := db.ExecContext(ctx, insert, "n3", "", "", now); err == nil {
				t.Error("a notification about neither an order nor a ride was taken")
			}
			if _, err := db.ExecContext(ctx, insert, "n4", "o2", "ride2", now); err == nil {
				t.Error("a notification about both an order and a ride was taken")
			}
		})
	}
}

// legacyDB returns a database of module migrated by its legacy set (testdata/legacy):
// one of the previous version.
func legacyDB(t *testing.T, backend testdb.Backend, module string) *store.DB {
	t.Helper()
	legacy, err := fs.Sub(os.DirFS("testdata/legacy"), module+"/"+string(backend))
	if err != nil {
		t.Fatal(err)
	}
	db := testdb.Open(t, backend, module, nil)
	migrate(t, db, legacy)
	return db
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
