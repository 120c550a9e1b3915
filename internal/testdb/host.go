package testdb

import (
	"context"
	"testing"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
)

// EachHost runs fn once per back end with a fresh, migrated database of module (its
// outbox and its own tables), hosted as the application hosts it.
func EachHost(t *testing.T, module string, fn func(t *testing.T, h *modhost.Host)) {
	Each(t, module, func(ctx context.Context, db *store.DB) error {
		return modhost.MigrateDB(ctx, db, Logger())
	}, func(t *testing.T, db *store.DB) {
		fn(t, modhost.NewHost(db, Logger()))
	})
}

// CollectPages walks a keyset-paginated list to its end with the given page size and
// returns every id in the order the pages gave them, failing the test when a page
// is over size or the walk does not end within maxPages.
func CollectPages(t testing.TB, limit, maxPages int, page func(after string, limit int) ([]string, error)) []string {
	t.Helper()
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > maxPages {
			t.Fatalf("pagination does not end; so far %d ids", len(got))
		}
		ids, err := page(after, limit)
		if err != nil {
			t.Fatalf("list page after %q: %v", after, err)
		}
		if len(ids) > limit {
			t.Fatalf("page of %d, limit %d", len(ids), limit)
		}
		got = append(got, ids...)
		if len(ids) < limit {
			return got
		}
		after = ids[len(ids)-1]
	}
}
