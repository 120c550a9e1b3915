package store_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
)

func TestCountByOnEveryBackend(t *testing.T) {
	migrate := func(ctx context.Context, db *store.DB) error {
		return store.Migrate(ctx, db, fstest.MapFS{"00001_t.sql": {Data: []byte(`-- +goose Up
CREATE TABLE things (id TEXT PRIMARY KEY, state TEXT NOT NULL);
`)}}, "goose_db_version", testdb.Logger())
	}
	testdb.Each(t, "counttest", migrate, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		got, err := store.CountBy(ctx, db, "things", "state")
		if err != nil || len(got) != 0 {
			t.Fatalf("CountBy on no rows = %v, %v; want an empty map", got, err)
		}
		for id, state := range map[string]string{"a": "open", "b": "closed", "c": "open"} {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO things (id, state) VALUES (?, ?)`), id, state); err != nil {
				t.Fatal(err)
			}
		}
		got, err = store.CountBy(ctx, db, "things", "state")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int64{"open": 2, "closed": 1}, got); diff != "" {
			t.Fatalf("CountBy (-want +got):\n%s", diff)
		}
		if _, err := store.CountBy(ctx, db, "nothing_here", "state"); err == nil {
			t.Fatal("CountBy of a missing table succeeded")
		}
	})
}
