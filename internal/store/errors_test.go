package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
)

// IsUniqueViolation on every back end: real duplicates of a primary key, a UNIQUE
// column and a unique index count; the other constraint failures do not.
func TestIsUniqueViolation(t *testing.T) {
	migrate := func(ctx context.Context, db *store.DB) error {
		return store.Migrate(ctx, db, fstest.MapFS{"00001_t.sql": {Data: []byte(`-- +goose Up
CREATE TABLE parent (id TEXT PRIMARY KEY);
CREATE TABLE t (
    id        TEXT   NOT NULL PRIMARY KEY,
    code      TEXT   NOT NULL UNIQUE,
    email     TEXT   NOT NULL,
    qty       BIGINT NOT NULL CHECK (qty >= 0),
    parent_id TEXT   REFERENCES parent (id)
);
CREATE UNIQUE INDEX t_email ON t (email);
INSERT INTO t (id, code, email, qty) VALUES ('1', 'a', 'a@x', 1);
`)}}, "goose_db_version", testdb.Logger())
	}
	testdb.Each(t, "uniquetest", migrate, func(t *testing.T, db *store.DB) {
		tests := []struct {
			name       string
			id, code   string
			email      any
			qty        int
			parent     any
			wantUnique bool
		}{
			{name: "primary key", id: "1", code: "b", email: "b@x", qty: 1, wantUnique: true},
			{name: "unique column", id: "2", code: "a", email: "b@x", qty: 1, wantUnique: true},
			{name: "unique index", id: "2", code: "b", email: "a@x", qty: 1, wantUnique: true},
			{name: "not null", id: "2", code: "b", email: nil, qty: 1},
			{name: "check", id: "2", code: "b", email: "b@x", qty: -1},
			{name: "foreign key", id: "2", code: "b", email: "b@x", qty: 1, parent: "nope"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO t (id, code, email, qty, parent_id) VALUES (?, ?, ?, ?, ?)`),
					tt.id, tt.code, tt.email, tt.qty, tt.parent)
				if err == nil {
					t.Fatal("the insert succeeded; the case must violate a constraint")
				}
				if got := store.IsUniqueViolation(err); got != tt.wantUnique {
					t.Errorf("IsUniqueViolation(%v) = %v, want %v", err, got, tt.wantUnique)
				}
				if got := store.IsUniqueViolation(fmt.Errorf("wrapped: %w", err)); got != tt.wantUnique {
					t.Errorf("IsUniqueViolation of the wrapped error = %v, want %v", got, tt.wantUnique)
				}
			})
		}
	})
	for _, err := range []error{nil, errors.New(`UNIQUE constraint failed: t.code (SQLSTATE 23505)`)} {
		if store.IsUniqueViolation(err) {
			t.Errorf("IsUniqueViolation(%v) = true; only a driver's error code counts", err)
		}
	}
}
