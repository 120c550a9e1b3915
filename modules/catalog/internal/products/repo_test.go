package products_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/testdb"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/catalog/internal/products"
)

var discard = slog.New(slog.DiscardHandler)

// openHost opens a fresh, migrated catalog database (with its outbox) in a temporary
// directory, closed when the test ends.
func openHost(t *testing.T) *modhost.Host {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	h, err := modhost.Open(t.Context(), cfg, "catalog", discard)
	if err != nil {
		t.Fatalf("modhost.Open: %v", err)
	}
	t.Cleanup(func() { _ = h.DB.Close() })
	return h
}

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// at is a fixed instant in a non-UTC zone, with nanoseconds, so a round trip that
// loses precision or the UTC normalisation shows.
var at = time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600))

// newProduct returns a valid product with a fresh id; i makes its SKU and name unique.
func newProduct(i int, status catalog.Status) catalog.Product {
	return catalog.Product{
		ID:          bus.NewID(),
		SKU:         fmt.Sprintf("SKU-%03d", i),
		Name:        fmt.Sprintf("Product %d", i),
		Description: "a product",
		Category:    "misc",
		Price:       catalog.Money{Amount: int64(100 + i), Currency: "EUR"},
		Attributes:  map[string]string{},
		Status:      status,
		Version:     1,
		CreatedAt:   at,
		UpdatedAt:   at,
	}
}

func insert(t *testing.T, h *modhost.Host, ps ...catalog.Product) {
	t.Helper()
	for _, p := range ps {
		if err := (products.Repo{}).Insert(t.Context(), h.DB, p); err != nil {
			t.Fatalf("Insert %s: %v", p.SKU, err)
		}
	}
}

func ids(ps []catalog.Product) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func TestRepoInsertGetRoundTrip(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		repo := products.Repo{}

		tests := []struct {
			name string
			p    catalog.Product
			want catalog.Product // zero: same as p, with times in UTC
		}{
			{
				name: "every field set",
				p: catalog.Product{
					ID: bus.NewID(), SKU: "TEE-CLASSIC-M", Name: "Classic Tée", Description: "Soft cotton.\nTwo lines.",
					Category: "apparel", Price: catalog.Money{Amount: 1999, Currency: "EUR"},
					Attributes: map[string]string{"size": "M", "colour": "blåu", "empty": ""},
					ImageURL:   "https://img.example.com/tee.png", Status: catalog.StatusActive, Version: 7,
					CreatedAt: at, UpdatedAt: at.Add(90 * time.Minute),
				},
			},
			{
				name: "nil attributes come back as an empty map",
				p: catalog.Product{
					ID: bus.NewID(), SKU: "MUG", Name: "Mug", Price: catalog.Money{Amount: 0, Currency: "USD"},
					Status: catalog.StatusDraft, Version: 1, CreatedAt: at, UpdatedAt: at,
				},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := repo.Insert(ctx, h.DB, tt.p); err != nil {
					t.Fatalf("Insert: %v", err)
				}
				got, err := repo.Get(ctx, h.DB, tt.p.ID)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				want := tt.p
				if want.Attributes == nil {
					want.Attributes = map[string]string{}
				}
				// Times are kept to the microsecond on every back end (PostgreSQL's precision).
				want.CreatedAt, want.UpdatedAt = want.CreatedAt.UTC().Truncate(time.Microsecond), want.UpdatedAt.UTC().Truncate(time.Microsecond)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Get after Insert (-want +got):\n%s", diff)
				}
				// cmp compares times with Equal; the contract is UTC, so check the zone too.
				if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
					t.Errorf("times not in UTC: created %v, updated %v", got.CreatedAt.Location(), got.UpdatedAt.Location())
				}
				if got.Attributes == nil {
					t.Errorf("Attributes is nil, want an empty map")
				}
			})
		}
	})
}

func TestRepoGetUnknown(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		insert(t, h, newProduct(1, catalog.StatusActive))
		_, err := (products.Repo{}).Get(t.Context(), h.DB, bus.NewID())
		if !errors.Is(err, catalog.ErrProductNotFound) {
			t.Fatalf("Get unknown id: err = %v, want ErrProductNotFound", err)
		}
	})
}

func TestRepoInsertDuplicateSKU(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		repo := products.Repo{}
		first := newProduct(1, catalog.StatusActive)
		insert(t, h, first)

		dup := newProduct(2, catalog.StatusDraft)
		dup.SKU = first.SKU
		err := repo.Insert(ctx, h.DB, dup)
		if !errors.Is(err, catalog.ErrSKUTaken) {
			t.Fatalf("Insert with a taken SKU: err = %v, want ErrSKUTaken", err)
		}
		var be *message.Error
		if !errors.As(err, &be) || be.Field != "sku" {
			t.Errorf("error field = %+v, want sku", be)
		}
		if _, err := repo.Get(ctx, h.DB, dup.ID); !errors.Is(err, catalog.ErrProductNotFound) {
			t.Errorf("the duplicate was stored: Get err = %v", err)
		}
		got, err := repo.Get(ctx, h.DB, first.ID)
		if err != nil || got.Name != first.Name {
			t.Errorf("the first product changed: %+v, %v", got, err)
		}
	})
}

func TestRepoGetMany(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		var ps []catalog.Product
		for i := range 4 {
			ps = append(ps, newProduct(i, []catalog.Status{catalog.StatusDraft, catalog.StatusActive, catalog.StatusArchived, catalog.StatusActive}[i]))
		}
		insert(t, h, ps...)
		unknown := bus.NewID()

		tests := []struct {
			name string
			ask  []string
			want []string
		}{
			{"none", nil, []string{}},
			{"all, any status", []string{ps[3].ID, ps[0].ID, ps[2].ID, ps[1].ID}, ids(ps)},
			{"unknown ids are left out, the rest in id order", []string{ps[3].ID, unknown, ps[1].ID}, []string{ps[1].ID, ps[3].ID}},
			{"only unknown", []string{unknown}, []string{}},
			{"repeated id once", []string{ps[2].ID, ps[2].ID}, []string{ps[2].ID}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := (products.Repo{}).GetMany(t.Context(), h.DB, tt.ask)
				if err != nil {
					t.Fatalf("GetMany: %v", err)
				}
				if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
					t.Errorf("GetMany ids (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestRepoList(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		mk := func(i int, status catalog.Status, category, name, desc string) catalog.Product {
			p := newProduct(i, status)
			p.Category, p.Name, p.Description = category, name, desc
			return p
		}
		var (
			tee      = mk(0, catalog.StatusActive, "apparel", "Blue Tee", "soft COTTON shirt")
			hoodie   = mk(1, catalog.StatusDraft, "apparel", "Grey Hoodie", "warm")
			mug      = mk(2, catalog.StatusActive, "kitchen", "Mug", "holds 100% of your coffee")
			snake    = mk(3, catalog.StatusArchived, "kitchen", "snake_case spoon", "")
			sleeve   = mk(4, catalog.StatusActive, "apparel", "Ärmel", "a sleeve")
			slash    = mk(5, catalog.StatusActive, "misc", `back\slash`, "")
			plain    = mk(6, catalog.StatusActive, "misc", "Plain thing", "nothing special: 100 percent boring, snake case")
			everyone = []catalog.Product{tee, hoodie, mug, snake, sleeve, slash, plain}
		)
		insert(t, h, everyone...)

		all := []catalog.Status(nil)
		tests := []struct {
			name string
			f    products.ListFilter
			want []catalog.Product
		}{
			{"no filter", products.ListFilter{Limit: 100}, everyone},
			{"active", products.ListFilter{Statuses: []catalog.Status{catalog.StatusActive}, Limit: 100}, []catalog.Product{tee, mug, sleeve, slash, plain}},
			{"draft", products.ListFilter{Statuses: []catalog.Status{catalog.StatusDraft}, Limit: 100}, []catalog.Product{hoodie}},
			{"draft or archived", products.ListFilter{Statuses: []catalog.Status{catalog.StatusDraft, catalog.StatusArchived}, Limit: 100}, []catalog.Product{hoodie, snake}},
			{"category", products.ListFilter{Category: "apparel", Statuses: all, Limit: 100}, []catalog.Product{tee, hoodie, sleeve}},
			{"category and status", products.ListFilter{Category: "kitchen", Statuses: []catalog.Status{catalog.StatusActive}, Limit: 100}, []catalog.Product{mug}},
			{"unknown category", products.ListFilter{Category: "garden", Limit: 100}, nil},
			{"query in name, other case", products.ListFilter{Query: "BLUE", Limit: 100}, []catalog.Product{tee}},
			{"query in description, other case", products.ListFilter{Query: "cotton", Limit: 100}, []catalog.Product{tee}},
			{"query with non-ASCII case folding", products.ListFilter{Query: "ÄRMEL", Limit: 100}, []catalog.Product{sleeve}},
			{"query and category", products.ListFilter{Query: "e", Category: "kitchen", Limit: 100}, []catalog.Product{mug, snake}},
			{"percent is literal", products.ListFilter{Query: "%", Limit: 100}, []catalog.Product{mug}},
			{"percent inside a query is literal", products.ListFilter{Query: "100%", Limit: 100}, []catalog.Product{mug}},
			{"underscore is literal", products.ListFilter{Query: "_", Limit: 100}, []catalog.Product{snake}},
			{"underscore does not match a space", products.ListFilter{Query: "snake_case", Limit: 100}, []catalog.Product{snake}},
			{"backslash is literal", products.ListFilter{Query: `\`, Limit: 100}, []catalog.Product{slash}},
			{"no match", products.ListFilter{Query: "zebra", Limit: 100}, nil},
			{"limit", products.ListFilter{Limit: 2}, []catalog.Product{tee, hoodie}},
			{"after", products.ListFilter{After: sleeve.ID, Limit: 100}, []catalog.Product{slash, plain}},
			{"after the last", products.ListFilter{After: plain.ID, Limit: 100}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := (products.Repo{}).List(t.Context(), h.DB, tt.f)
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				if diff := cmp.Diff(ids(tt.want), ids(got)); diff != "" {
					t.Errorf("List(%+v) ids (-want +got):\n%s", tt.f, diff)
				}
			})
		}
	})
}

func TestRepoListKeysetPagination(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		var want []string
		for i := range 23 {
			status := catalog.StatusActive
			if i%4 == 0 {
				status = catalog.StatusDraft
			}
			p := newProduct(i, status)
			insert(t, h, p)
			if status == catalog.StatusActive {
				want = append(want, p.ID)
			}
		}
		for _, limit := range []int{1, 3, 5, len(want), len(want) + 1} {
			t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
				got := testdb.CollectPages(t, limit, len(want)+1, func(after string, limit int) ([]string, error) {
					page, err := (products.Repo{}).List(t.Context(), h.DB, products.ListFilter{
						Statuses: []catalog.Status{catalog.StatusActive}, After: after, Limit: limit})
					return ids(page), err
				})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ids over all pages (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestRepoUpdate(t *testing.T) {
	ctx := t.Context()
	repo := products.Repo{}

	t.Run("current version", func(t *testing.T) {
		testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
			p := newProduct(1, catalog.StatusDraft)
			insert(t, h, p)
			next := p
			next.Name, next.Description, next.Category = "Renamed", "NEW words", "other"
			next.Price = catalog.Money{Amount: 5, Currency: "USD"}
			next.Attributes = map[string]string{"k": "v"}
			next.ImageURL, next.Status = "http://example.com/x.jpg", catalog.StatusActive
			next.Version, next.UpdatedAt = 2, at.Add(time.Hour)
			if err := repo.Update(ctx, h.DB, next); err != nil {
				t.Fatalf("Update: %v", err)
			}
			got, err := repo.Get(ctx, h.DB, p.ID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			next.CreatedAt, next.UpdatedAt = next.CreatedAt.UTC().Truncate(time.Microsecond), next.UpdatedAt.UTC().Truncate(time.Microsecond)
			if diff := cmp.Diff(next, got); diff != "" {
				t.Errorf("after Update (-want +got):\n%s", diff)
			}
			// The search text follows the update.
			found, err := repo.List(ctx, h.DB, products.ListFilter{Query: "new words", Limit: 10})
			if err != nil || len(found) != 1 {
				t.Errorf("search for the new description: %v, %v", ids(found), err)
			}
			if found, _ := repo.List(ctx, h.DB, products.ListFilter{Query: "product 1", Limit: 10}); len(found) != 0 {
				t.Errorf("search still finds the old name: %v", ids(found))
			}
		})
	})

	for _, version := range []int64{1, 3, 10} { // the row is at 1: only 2 is next
		t.Run(fmt.Sprint("stale version ", version), func(t *testing.T) {
			testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
				p := newProduct(1, catalog.StatusDraft)
				insert(t, h, p)
				stale := p
				stale.Name, stale.Version = "Lost update", version
				err := repo.Update(ctx, h.DB, stale)
				if !errors.Is(err, catalog.ErrVersionMismatch) {
					t.Fatalf("Update: err = %v, want ErrVersionMismatch", err)
				}
				got, err := repo.Get(ctx, h.DB, p.ID)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				want := p
				want.CreatedAt, want.UpdatedAt = at.UTC().Truncate(time.Microsecond), at.UTC().Truncate(time.Microsecond)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("the stale update changed the row (-want +got):\n%s", diff)
				}
			})
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
			p := newProduct(1, catalog.StatusDraft)
			p.Version = 2
			if err := repo.Update(ctx, h.DB, p); !errors.Is(err, catalog.ErrVersionMismatch) {
				t.Fatalf("Update of a missing row: err = %v, want ErrVersionMismatch", err)
			}
		})
	})
}

// A repo call under a cancelled context fails with the context's error, not as a
// missing product.
func TestRepoHonoursContext(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := (products.Repo{}).Get(ctx, h.DB, bus.NewID()); err == nil || errors.Is(err, catalog.ErrProductNotFound) {
			t.Errorf("Get under a cancelled context: err = %v, want a context error", err)
		}
	})
}
