package modhost_test

import (
	"context"
	"github.com/agora-commerce/agora/internal/modhost"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// TestPostgresModuleIsolation sets up roles as docs/postgres.md tells an operator
// to, then runs the catalog as its own role: it migrates and works in its schema,
// and cannot read (or even see into) another module's schema.
func TestPostgresModuleIsolation(t *testing.T) {
	ctx := context.Background()
	admin := testdb.PostgresURL(t)
	su, err := store.OpenPostgres(ctx, "admin", admin, "public", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close()

	// The operator's SQL, per module: a login role that owns its schema, nothing more.
	for _, stmt := range []string{
		`CREATE ROLE agora_catalog LOGIN PASSWORD 'catalog-secret'`,
		`CREATE SCHEMA catalog AUTHORIZATION agora_catalog`,
		`CREATE ROLE agora_identity LOGIN PASSWORD 'identity-secret'`,
		`CREATE SCHEMA identity AUTHORIZATION agora_identity`,
		`CREATE TABLE identity.users (id TEXT PRIMARY KEY, email TEXT NOT NULL)`,
		`ALTER TABLE identity.users OWNER TO agora_identity`,
		`INSERT INTO identity.users VALUES ('u1', 'someone@example.com')`,
	} {
		if _, err := su.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	u, _ := url.Parse(admin)
	u.User = url.UserPassword("agora_catalog", "catalog-secret")
	cfg := config.Default()
	cfg.ModuleDatabaseURLs = map[string]string{"catalog": u.String()}
	h, err := modhost.Open(ctx, cfg, "catalog", testdb.Logger())
	if err != nil {
		t.Fatalf("catalog cannot open and migrate its own schema as its own role: %v", err)
	}
	defer h.DB.Close()

	var owner string
	if err := h.DB.GetContext(ctx, &owner, `SELECT tableowner FROM pg_tables WHERE schemaname = 'catalog' AND tablename = 'products'`); err != nil || owner != "agora_catalog" {
		t.Fatalf("catalog.products owner = %q (%v), want agora_catalog", owner, err)
	}
	for _, q := range []string{
		`SELECT count(*) FROM identity.users`,
		`SELECT count(*) FROM identity.users WHERE email LIKE '%'`,
	} {
		var n int
		err := h.DB.GetContext(ctx, &n, q)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as agora_catalog: err = %v, want permission denied", q, err)
		}
	}
	_, err = h.DB.ExecContext(ctx, `CREATE TABLE identity.sneaky (x int)`)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("creating a table in another module's schema: err = %v, want permission denied", err)
	}
	// Its own unqualified names resolve to its own schema only.
	var path string
	if err := h.DB.GetContext(ctx, &path, `SHOW search_path`); err != nil || path != "catalog" {
		t.Errorf("search_path = %q (%v), want catalog", path, err)
	}
}
