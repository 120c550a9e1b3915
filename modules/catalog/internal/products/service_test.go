package products_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/testdb"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/catalog/internal/products"
)

func newService(t *testing.T) (*products.Service, *modhost.Host) {
	t.Helper()
	h := openHost(t)
	return products.NewService(h.DB, h.Outbox), h
}

// validCreate returns a valid creation request; i makes its SKU unique.
func validCreate(i int) catalog.CreateProduct {
	return catalog.CreateProduct{
		SKU: fmt.Sprintf("TEE-%d", i), Name: fmt.Sprintf("Tee %d", i), Description: "cotton", Category: "apparel",
		Price:      catalog.Money{Amount: 1999, Currency: "EUR"},
		Attributes: map[string]string{"size": "M"}, ImageURL: "https://img.example.com/tee.png",
	}
}

// asInEvent is p as the catalog's events carry it: without the availability read
// model, which is not the catalog's own data.
func asInEvent(p catalog.Product) catalog.Product {
	p.Availability = nil
	return p
}

func create(t *testing.T, s *products.Service, c catalog.CreateProduct) catalog.Product {
	t.Helper()
	p, err := s.Create(t.Context(), c)
	if err != nil {
		t.Fatalf("Create %s: %v", c.SKU, err)
	}
	return p
}

func count(t *testing.T, s *products.Service) int {
	t.Helper()
	n, err := s.Count(t.Context())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}

// wantInvalid checks that err is ErrInvalidProduct naming field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if !errors.Is(err, catalog.ErrInvalidProduct) {
		t.Fatalf("err = %v, want ErrInvalidProduct", err)
	}
	var be *message.Error
	if !errors.As(err, &be) {
		t.Fatalf("err %v is not a *message.Error", err)
	}
	if be.Field != field {
		t.Errorf("field = %q, want %q (%v)", be.Field, field, err)
	}
}

func TestCreate(t *testing.T) {
	s, _ := newService(t)
	before := time.Now().UTC()

	tests := []struct {
		name   string
		status catalog.Status
		want   catalog.Status
	}{
		{"status defaults to draft", "", catalog.StatusDraft},
		{"draft", catalog.StatusDraft, catalog.StatusDraft},
		{"active", catalog.StatusActive, catalog.StatusActive},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCreate(i)
			c.Status = tt.status
			p := create(t, s, c)

			want := catalog.Product{ID: p.ID, SKU: c.SKU, Name: c.Name, Description: c.Description, Category: c.Category,
				Price: c.Price, Attributes: c.Attributes, ImageURL: c.ImageURL, Status: tt.want, Version: 1,
				CreatedAt: p.CreatedAt, UpdatedAt: p.CreatedAt, Availability: &catalog.Availability{Status: catalog.AvailabilityUnknown}}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("Create returned (-want +got):\n%s", diff)
			}
			if p.CreatedAt.Before(before) || p.CreatedAt.After(time.Now()) || p.CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt = %v, want now in UTC", p.CreatedAt)
			}
			got, err := s.Get(t.Context(), catalog.GetProduct{ID: p.ID, IncludeDrafts: true})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if diff := cmp.Diff(p, got); diff != "" {
				t.Errorf("stored product differs from the one returned (-returned +stored):\n%s", diff)
			}
		})
	}

	t.Run("nil attributes become an empty map", func(t *testing.T) {
		c := validCreate(100)
		c.Attributes = nil
		p := create(t, s, c)
		if p.Attributes == nil || len(p.Attributes) != 0 {
			t.Errorf("Attributes = %#v, want empty map", p.Attributes)
		}
	})

}

func TestCreateValidation(t *testing.T) {
	tooMany := map[string]string{}
	for i := range catalog.MaxAttributes + 1 {
		tooMany[fmt.Sprint("k", i)] = "v"
	}
	tests := []struct {
		name  string
		edit  func(c *catalog.CreateProduct)
		field string
	}{
		{"empty SKU", func(c *catalog.CreateProduct) { c.SKU = "" }, "sku"},
		{"lower-case SKU", func(c *catalog.CreateProduct) { c.SKU = "tee-m" }, "sku"},
		{"SKU starting with a dash", func(c *catalog.CreateProduct) { c.SKU = "-TEE" }, "sku"},
		{"SKU with a space", func(c *catalog.CreateProduct) { c.SKU = "TEE M" }, "sku"},
		{"SKU of 65 characters", func(c *catalog.CreateProduct) { c.SKU = strings.Repeat("A", 65) }, "sku"},
		{"SKU with a trailing newline", func(c *catalog.CreateProduct) { c.SKU = "TEE\n" }, "sku"},
		{"empty name", func(c *catalog.CreateProduct) { c.Name = "" }, "name"},
		{"blank name", func(c *catalog.CreateProduct) { c.Name = " \t\n " }, "name"},
		{"name of 201 characters", func(c *catalog.CreateProduct) { c.Name = strings.Repeat("é", catalog.MaxNameLen+1) }, "name"},
		{"name with a control character", func(c *catalog.CreateProduct) { c.Name = "Tee\x00" }, "name"},
		{"name not UTF-8", func(c *catalog.CreateProduct) { c.Name = "Tee \xff" }, "name"},
		{"description too long", func(c *catalog.CreateProduct) { c.Description = strings.Repeat("x", catalog.MaxDescriptionLen+1) }, "description"},
		{"upper-case category", func(c *catalog.CreateProduct) { c.Category = "Apparel" }, "category"},
		{"lower-case currency", func(c *catalog.CreateProduct) { c.Price.Currency = "eur" }, "price.currency"},
		{"empty currency", func(c *catalog.CreateProduct) { c.Price.Currency = "" }, "price.currency"},
		{"four-letter currency", func(c *catalog.CreateProduct) { c.Price.Currency = "EURO" }, "price.currency"},
		{"negative amount", func(c *catalog.CreateProduct) { c.Price.Amount = -1 }, "price.amount"},
		{"amount over the maximum", func(c *catalog.CreateProduct) { c.Price.Amount = 100_000_000_001 }, "price.amount"},
		{"too many attributes", func(c *catalog.CreateProduct) { c.Attributes = tooMany }, "attributes"},
		{"empty attribute name", func(c *catalog.CreateProduct) { c.Attributes = map[string]string{"": "v"} }, "attributes"},
		{"attribute name too long", func(c *catalog.CreateProduct) {
			c.Attributes = map[string]string{strings.Repeat("k", catalog.MaxAttrKeyLen+1): "v"}
		}, "attributes"},
		{"attribute value too long", func(c *catalog.CreateProduct) {
			c.Attributes = map[string]string{"size": strings.Repeat("v", catalog.MaxAttrValueLen+1)}
		}, "attributes.size"},
		{"image URL without a scheme", func(c *catalog.CreateProduct) { c.ImageURL = "img.example.com/tee.png" }, "image_url"},
		{"image URL with an ftp scheme", func(c *catalog.CreateProduct) { c.ImageURL = "ftp://img.example.com/tee.png" }, "image_url"},
		{"image URL without a host", func(c *catalog.CreateProduct) { c.ImageURL = "https://" }, "image_url"},
		{"javascript image URL", func(c *catalog.CreateProduct) { c.ImageURL = "javascript:alert(1)" }, "image_url"},
		{"image URL too long", func(c *catalog.CreateProduct) {
			c.ImageURL = "https://img.example.com/" + strings.Repeat("a", 2048)
		}, "image_url"},
		{"archived status", func(c *catalog.CreateProduct) { c.Status = catalog.StatusArchived }, "status"},
		{"unknown status", func(c *catalog.CreateProduct) { c.Status = "published" }, "status"},
	}
	s, h := newService(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCreate(i)
			tt.edit(&c)
			_, err := s.Create(t.Context(), c)
			wantInvalid(t, err, tt.field)
			if n := count(t, s); n != 0 {
				t.Errorf("%d products stored after a rejected create", n)
			}
			if rows := testdb.OutboxRows(t, h.DB); len(rows) != 0 {
				t.Errorf("outbox has %v after a rejected create", testdb.OutboxTypes(rows))
			}
		})
	}
}

// The limits are inclusive: a product exactly at each of them is valid.
func TestCreateAtLimits(t *testing.T) {
	atMax := map[string]string{}
	for i := range catalog.MaxAttributes {
		atMax[fmt.Sprint("k", i)] = "v"
	}
	tests := []struct {
		name string
		edit func(c *catalog.CreateProduct)
	}{
		{"SKU of 64 characters", func(c *catalog.CreateProduct) { c.SKU = strings.Repeat("B", 64) }},
		{"SKU of one character", func(c *catalog.CreateProduct) { c.SKU = "Z" }},
		{"name of 200 multi-byte characters", func(c *catalog.CreateProduct) { c.Name = strings.Repeat("é", catalog.MaxNameLen) }},
		{"description at the maximum, with newlines and tabs", func(c *catalog.CreateProduct) {
			c.Description = strings.Repeat("a\n\t", catalog.MaxDescriptionLen/3)
		}},
		{"no category", func(c *catalog.CreateProduct) { c.Category = "" }},
		{"amount zero", func(c *catalog.CreateProduct) { c.Price.Amount = 0 }},
		{"amount at the maximum", func(c *catalog.CreateProduct) { c.Price.Amount = 100_000_000_000 }},
		{"attributes at the maximum", func(c *catalog.CreateProduct) { c.Attributes = atMax }},
		{"empty attribute value", func(c *catalog.CreateProduct) { c.Attributes = map[string]string{"note": ""} }},
		{"no image", func(c *catalog.CreateProduct) { c.ImageURL = "" }},
		{"http image", func(c *catalog.CreateProduct) { c.ImageURL = "http://img.example.com/a.png" }},
	}
	s, _ := newService(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCreate(i)
			tt.edit(&c)
			if _, err := s.Create(t.Context(), c); err != nil {
				t.Errorf("Create: %v", err)
			}
		})
	}
}

func TestCreateWritesProductCreatedInTheSameTransaction(t *testing.T) {
	s, h := newService(t)
	p := create(t, s, validCreate(1))

	rows := testdb.OutboxRows(t, h.DB)
	if diff := cmp.Diff([]string{"catalog.ProductCreated"}, testdb.OutboxTypes(rows)); diff != "" {
		t.Fatalf("outbox types (-want +got):\n%s", diff)
	}
	if rows[0].Kind != string(message.KindEvent) {
		t.Errorf("kind = %q, want event", rows[0].Kind)
	}
	got := testdb.Decode[catalog.ProductCreated](t, rows[0].Payload)
	if diff := cmp.Diff(catalog.ProductCreated{Product: asInEvent(p)}, got); diff != "" {
		t.Errorf("ProductCreated payload (-want +got):\n%s", diff)
	}
}

func TestCreateDuplicateSKUWritesNothing(t *testing.T) {
	s, h := newService(t)
	first := create(t, s, validCreate(1))
	rowsBefore := testdb.OutboxRows(t, h.DB)

	dup := validCreate(2)
	dup.SKU = first.SKU
	_, err := s.Create(t.Context(), dup)
	if !errors.Is(err, catalog.ErrSKUTaken) {
		t.Fatalf("Create with a taken SKU: err = %v, want ErrSKUTaken", err)
	}
	if n := count(t, s); n != 1 {
		t.Errorf("%d products after the failed create, want 1", n)
	}
	if diff := cmp.Diff(rowsBefore, testdb.OutboxRows(t, h.DB)); diff != "" {
		t.Errorf("the failed create wrote to the outbox (-before +after):\n%s", diff)
	}
}

// A change and its events commit together: when the outbox cannot take the event,
// the change is rolled back too.
func TestWritesAreAtomicWithTheirEvents(t *testing.T) {
	ptr := func(s string) *string { return &s }
	tests := []struct {
		name string
		op   func(s *products.Service, p catalog.Product) error
	}{
		{"create", func(s *products.Service, _ catalog.Product) error {
			_, err := s.Create(t.Context(), validCreate(2))
			return err
		}},
		{"update", func(s *products.Service, p catalog.Product) error {
			_, err := s.Update(t.Context(), catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Name: ptr("new"),
				Price: &catalog.Money{Amount: 1, Currency: "EUR"}})
			return err
		}},
		{"archive", func(s *products.Service, p catalog.Product) error {
			_, err := s.Archive(t.Context(), catalog.ArchiveProduct{ID: p.ID})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, h := newService(t)
			p := create(t, s, validCreate(1))
			if _, err := h.DB.ExecContext(t.Context(), `CREATE TRIGGER outbox_down BEFORE INSERT ON outbox
				BEGIN SELECT RAISE(ABORT, 'outbox unavailable'); END`); err != nil {
				t.Fatalf("create trigger: %v", err)
			}
			if err := tt.op(s, p); err == nil {
				t.Fatal("the write succeeded although its event could not be stored")
			}
			page, err := s.List(t.Context(), catalog.ListProducts{IncludeUnpublished: true})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if diff := cmp.Diff([]catalog.Product{p}, page.Items); diff != "" {
				t.Errorf("products after the failed write (-want +got):\n%s", diff)
			}
			if types := testdb.OutboxTypes(testdb.OutboxRows(t, h.DB)); len(types) != 1 {
				t.Errorf("outbox = %v, want only the first ProductCreated", types)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	ptr := func(s string) *string { return &s }
	eur := func(a int64) *catalog.Money { return &catalog.Money{Amount: a, Currency: "EUR"} }
	active := catalog.StatusActive

	tests := []struct {
		name      string
		u         catalog.UpdateProduct
		edit      func(p *catalog.Product) // the expected change
		wantPrice *catalog.PriceChanged    // nil: no PriceChanged
	}{
		{"nothing sent still bumps the version", catalog.UpdateProduct{}, func(*catalog.Product) {}, nil},
		{"name", catalog.UpdateProduct{Name: ptr("New name")}, func(p *catalog.Product) { p.Name = "New name" }, nil},
		{"description and category", catalog.UpdateProduct{Description: ptr(""), Category: ptr("tops")},
			func(p *catalog.Product) { p.Description, p.Category = "", "tops" }, nil},
		{"attributes are replaced", catalog.UpdateProduct{Attributes: &map[string]string{"colour": "red"}},
			func(p *catalog.Product) { p.Attributes = map[string]string{"colour": "red"} }, nil},
		{"nil attributes clear them", catalog.UpdateProduct{Attributes: new(map[string]string)},
			func(p *catalog.Product) { p.Attributes = map[string]string{} }, nil},
		{"image and status", catalog.UpdateProduct{ImageURL: ptr(""), Status: &active},
			func(p *catalog.Product) { p.ImageURL, p.Status = "", catalog.StatusActive }, nil},
		{"same price is no price change", catalog.UpdateProduct{Price: eur(1999)}, func(*catalog.Product) {}, nil},
		{"new amount", catalog.UpdateProduct{Price: eur(2499)}, func(p *catalog.Product) { p.Price.Amount = 2499 },
			&catalog.PriceChanged{Old: catalog.Money{Amount: 1999, Currency: "EUR"}, New: catalog.Money{Amount: 2499, Currency: "EUR"}}},
		{"new currency", catalog.UpdateProduct{Price: &catalog.Money{Amount: 1999, Currency: "USD"}},
			func(p *catalog.Product) { p.Price.Currency = "USD" },
			&catalog.PriceChanged{Old: catalog.Money{Amount: 1999, Currency: "EUR"}, New: catalog.Money{Amount: 1999, Currency: "USD"}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, h := newService(t)
			old := create(t, s, validCreate(i))
			u := tt.u
			u.ID, u.ExpectedVersion = old.ID, old.Version
			got, err := s.Update(t.Context(), u)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}

			want := old
			want.Attributes = map[string]string{}
			for k, v := range old.Attributes {
				want.Attributes[k] = v
			}
			tt.edit(&want)
			want.Version = old.Version + 1
			want.UpdatedAt = got.UpdatedAt
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Update returned (-want +got):\n%s", diff)
			}
			if got.UpdatedAt.Before(old.UpdatedAt) {
				t.Errorf("UpdatedAt went back: %v before %v", got.UpdatedAt, old.UpdatedAt)
			}
			stored, err := s.Get(t.Context(), catalog.GetProduct{ID: old.ID, IncludeDrafts: true})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if diff := cmp.Diff(got, stored); diff != "" {
				t.Errorf("stored product differs from the one returned (-returned +stored):\n%s", diff)
			}

			rows := testdb.OutboxRows(t, h.DB)[1:] // after ProductCreated
			wantTypes := []string{"catalog.ProductUpdated"}
			if tt.wantPrice != nil {
				wantTypes = append(wantTypes, "catalog.PriceChanged")
			}
			if diff := cmp.Diff(wantTypes, testdb.OutboxTypes(rows)); diff != "" {
				t.Fatalf("outbox types after the update (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(catalog.ProductUpdated{Product: asInEvent(got)}, testdb.Decode[catalog.ProductUpdated](t, rows[0].Payload)); diff != "" {
				t.Errorf("ProductUpdated payload (-want +got):\n%s", diff)
			}
			if tt.wantPrice != nil {
				wantPC := *tt.wantPrice
				wantPC.ProductID, wantPC.SKU, wantPC.Version = old.ID, old.SKU, got.Version
				if diff := cmp.Diff(wantPC, testdb.Decode[catalog.PriceChanged](t, rows[1].Payload)); diff != "" {
					t.Errorf("PriceChanged payload (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestUpdateFailures(t *testing.T) {
	ptr := func(s string) *string { return &s }
	archived := catalog.StatusArchived

	tests := []struct {
		name    string
		archive bool // archive the product first
		u       func(p catalog.Product) catalog.UpdateProduct
		want    error
		field   string
	}{
		{"unknown id", false, func(p catalog.Product) catalog.UpdateProduct {
			return catalog.UpdateProduct{ID: bus.NewID(), ExpectedVersion: 1, Name: ptr("x")}
		}, catalog.ErrProductNotFound, ""},
		{"stale version", false, func(p catalog.Product) catalog.UpdateProduct {
			return catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version - 1, Name: ptr("x")}
		}, catalog.ErrVersionMismatch, ""},
		{"future version", false, func(p catalog.Product) catalog.UpdateProduct {
			return catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version + 1, Name: ptr("x")}
		}, catalog.ErrVersionMismatch, ""},
		{"no version", false, func(p catalog.Product) catalog.UpdateProduct {
			return catalog.UpdateProduct{ID: p.ID, Name: ptr("x")}
		}, catalog.ErrVersionMismatch, ""},
		{"archived product", true, func(p catalog.Product) catalog.UpdateProduct {
			return catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Name: ptr("x")}
		}, catalog.ErrArchived, ""},
		{"archive through update", false, func(p catalog.Product) catalog.UpdateProduct {
			return catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Status: &archived}
		}, catalog.ErrInvalidProduct, "status"},
		{"invalid name", false, func(p catalog.Product) catalog.UpdateProduct {
			return catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Name: ptr(" ")}
		}, catalog.ErrInvalidProduct, "name"},
		{"invalid price", false, func(p catalog.Product) catalog.UpdateProduct {
			return catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Price: &catalog.Money{Amount: -5, Currency: "EUR"}}
		}, catalog.ErrInvalidProduct, "price.amount"},
		{"invalid image URL", false, func(p catalog.Product) catalog.UpdateProduct {
			return catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, ImageURL: ptr("file:///etc/passwd")}
		}, catalog.ErrInvalidProduct, "image_url"},
		{"unknown status", false, func(p catalog.Product) catalog.UpdateProduct {
			st := catalog.Status("gone")
			return catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Status: &st}
		}, catalog.ErrInvalidProduct, "status"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, h := newService(t)
			p := create(t, s, validCreate(i))
			if tt.archive {
				var err error
				if p, err = s.Archive(t.Context(), catalog.ArchiveProduct{ID: p.ID}); err != nil {
					t.Fatalf("Archive: %v", err)
				}
			}
			rowsBefore := testdb.OutboxRows(t, h.DB)

			_, err := s.Update(t.Context(), tt.u(p))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Update: err = %v, want %v", err, tt.want)
			}
			if tt.field != "" {
				wantInvalid(t, err, tt.field)
			}
			got, err := s.Get(t.Context(), catalog.GetProduct{ID: p.ID, IncludeDrafts: true})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if diff := cmp.Diff(p, got); diff != "" {
				t.Errorf("the failed update changed the product (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(rowsBefore, testdb.OutboxRows(t, h.DB)); diff != "" {
				t.Errorf("the failed update wrote to the outbox (-before +after):\n%s", diff)
			}
		})
	}
}

// Two updates that both expect the same version: exactly one wins.
func TestUpdateConcurrentSameVersion(t *testing.T) {
	s, h := newService(t)
	p := create(t, s, validCreate(1))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprint("writer ", i)
			_, errs[i] = s.Update(context.Background(), catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Name: &name})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, catalog.ErrVersionMismatch):
		default:
			t.Errorf("Update: unexpected error %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d concurrent updates at one version succeeded, want 1", won)
	}
	got, err := s.Get(t.Context(), catalog.GetProduct{ID: p.ID, IncludeDrafts: true})
	if err != nil || got.Version != 2 {
		t.Errorf("version after the race = %d (%v), want 2", got.Version, err)
	}
	if types := testdb.OutboxTypes(testdb.OutboxRows(t, h.DB)); len(types) != 2 {
		t.Errorf("outbox = %v, want ProductCreated and one ProductUpdated", types)
	}
}

func TestArchive(t *testing.T) {
	s, h := newService(t)
	p := create(t, s, validCreate(1))

	first, err := s.Archive(t.Context(), catalog.ArchiveProduct{ID: p.ID, ExpectedVersion: p.Version})
	if err != nil {
		t.Fatalf("Archive: %v", err)
	}
	if first.Status != catalog.StatusArchived || first.Version != p.Version+1 {
		t.Errorf("after Archive: status %s version %d, want archived %d", first.Status, first.Version, p.Version+1)
	}
	// Again, with and without the version it now has: no error, no change, no event.
	for _, v := range []int64{0, first.Version} {
		again, err := s.Archive(t.Context(), catalog.ArchiveProduct{ID: p.ID, ExpectedVersion: v})
		if err != nil {
			t.Fatalf("Archive again (version %d): %v", v, err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("Archive again (version %d) changed the product (-first +again):\n%s", v, diff)
		}
	}

	rows := testdb.OutboxRows(t, h.DB)
	if diff := cmp.Diff([]string{"catalog.ProductCreated", "catalog.ProductArchived", "catalog.ProductUpdated"}, testdb.OutboxTypes(rows)); diff != "" {
		t.Fatalf("outbox types (-want +got):\n%s", diff)
	}
	wantArchived := catalog.ProductArchived{ProductID: p.ID, SKU: p.SKU, Version: first.Version}
	if diff := cmp.Diff(wantArchived, testdb.Decode[catalog.ProductArchived](t, rows[1].Payload)); diff != "" {
		t.Errorf("ProductArchived payload (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(catalog.ProductUpdated{Product: asInEvent(first)}, testdb.Decode[catalog.ProductUpdated](t, rows[2].Payload)); diff != "" {
		t.Errorf("ProductUpdated payload (-want +got):\n%s", diff)
	}
	// Archived products stay readable by id without IncludeDrafts.
	if got, err := s.Get(t.Context(), catalog.GetProduct{ID: p.ID}); err != nil || got.Status != catalog.StatusArchived {
		t.Errorf("Get archived: %+v, %v", got, err)
	}
}

func TestArchiveFailures(t *testing.T) {
	s, h := newService(t)
	p := create(t, s, validCreate(1))
	tests := []struct {
		name string
		a    catalog.ArchiveProduct
		want error
	}{
		{"unknown id", catalog.ArchiveProduct{ID: bus.NewID()}, catalog.ErrProductNotFound},
		{"stale version", catalog.ArchiveProduct{ID: p.ID, ExpectedVersion: p.Version + 1}, catalog.ErrVersionMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rowsBefore := testdb.OutboxRows(t, h.DB)
			if _, err := s.Archive(t.Context(), tt.a); !errors.Is(err, tt.want) {
				t.Fatalf("Archive: err = %v, want %v", err, tt.want)
			}
			got, err := s.Get(t.Context(), catalog.GetProduct{ID: p.ID, IncludeDrafts: true})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if diff := cmp.Diff(p, got); diff != "" {
				t.Errorf("the failed archive changed the product (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(rowsBefore, testdb.OutboxRows(t, h.DB)); diff != "" {
				t.Errorf("the failed archive wrote to the outbox (-before +after):\n%s", diff)
			}
		})
	}
}

func TestGet(t *testing.T) {
	s, _ := newService(t)
	draft := create(t, s, validCreate(1))
	c := validCreate(2)
	c.Status = catalog.StatusActive
	active := create(t, s, c)
	archived, err := s.Archive(t.Context(), catalog.ArchiveProduct{ID: create(t, s, validCreate(3)).ID})
	if err != nil {
		t.Fatalf("Archive: %v", err)
	}

	tests := []struct {
		name string
		q    catalog.GetProduct
		want catalog.Product
		err  error
	}{
		{"draft hidden", catalog.GetProduct{ID: draft.ID}, catalog.Product{}, catalog.ErrProductNotFound},
		{"draft with IncludeDrafts", catalog.GetProduct{ID: draft.ID, IncludeDrafts: true}, draft, nil},
		{"active", catalog.GetProduct{ID: active.ID}, active, nil},
		{"archived", catalog.GetProduct{ID: archived.ID}, archived, nil},
		{"unknown", catalog.GetProduct{ID: bus.NewID(), IncludeDrafts: true}, catalog.Product{}, catalog.ErrProductNotFound},
		{"not an id", catalog.GetProduct{ID: "'; DROP TABLE products; --"}, catalog.Product{}, catalog.ErrProductNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Get(t.Context(), tt.q)
			if !errors.Is(err, tt.err) || (err != nil) != (tt.err != nil) {
				t.Fatalf("Get: err = %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGetMany(t *testing.T) {
	s, _ := newService(t)
	draft := create(t, s, validCreate(1))
	c := validCreate(2)
	c.Status = catalog.StatusActive
	active := create(t, s, c)

	got, err := s.GetMany(t.Context(), catalog.GetProducts{IDs: []string{active.ID, bus.NewID(), draft.ID}})
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if diff := cmp.Diff([]catalog.Product{draft, active}, got.Products); diff != "" {
		t.Errorf("GetMany: drafts included, unknown left out, in id order (-want +got):\n%s", diff)
	}

	atMax := make([]string, catalog.MaxBatch)
	for i := range atMax {
		atMax[i] = bus.NewID()
	}
	atMax[0] = active.ID
	got, err = s.GetMany(t.Context(), catalog.GetProducts{IDs: atMax})
	if err != nil || len(got.Products) != 1 {
		t.Errorf("GetMany of MaxBatch ids: %d products, %v; want 1, nil", len(got.Products), err)
	}

	_, err = s.GetMany(t.Context(), catalog.GetProducts{IDs: append(atMax, bus.NewID())})
	wantInvalid(t, err, "ids")
}

func TestList(t *testing.T) {
	s, _ := newService(t)
	mk := func(i int, status catalog.Status, category string) catalog.Product {
		c := validCreate(i)
		c.Category = category
		if status != catalog.StatusArchived {
			c.Status = status
		}
		p := create(t, s, c)
		if status == catalog.StatusArchived {
			var err error
			if p, err = s.Archive(t.Context(), catalog.ArchiveProduct{ID: p.ID}); err != nil {
				t.Fatalf("Archive: %v", err)
			}
		}
		return p
	}
	a1 := mk(1, catalog.StatusActive, "apparel")
	d1 := mk(2, catalog.StatusDraft, "apparel")
	x1 := mk(3, catalog.StatusArchived, "apparel")
	a2 := mk(4, catalog.StatusActive, "kitchen")
	d2 := mk(5, catalog.StatusDraft, "kitchen")
	a3 := mk(6, catalog.StatusActive, "kitchen")

	tests := []struct {
		name     string
		q        catalog.ListProducts
		want     []catalog.Product
		wantNext string
	}{
		{"public sees only active", catalog.ListProducts{}, []catalog.Product{a1, a2, a3}, ""},
		{"public asking for drafts still sees only active", catalog.ListProducts{Status: catalog.StatusDraft}, []catalog.Product{a1, a2, a3}, ""},
		{"public asking for archived still sees only active", catalog.ListProducts{Status: catalog.StatusArchived}, []catalog.Product{a1, a2, a3}, ""},
		{"public asking for active", catalog.ListProducts{Status: catalog.StatusActive}, []catalog.Product{a1, a2, a3}, ""},
		{"unpublished included", catalog.ListProducts{IncludeUnpublished: true}, []catalog.Product{a1, d1, x1, a2, d2, a3}, ""},
		{"admin drafts", catalog.ListProducts{IncludeUnpublished: true, Status: catalog.StatusDraft}, []catalog.Product{d1, d2}, ""},
		{"admin archived", catalog.ListProducts{IncludeUnpublished: true, Status: catalog.StatusArchived}, []catalog.Product{x1}, ""},
		{"category", catalog.ListProducts{Category: "kitchen"}, []catalog.Product{a2, a3}, ""},
		{"query", catalog.ListProducts{Query: "TEE 4"}, []catalog.Product{a2}, ""},
		{"first page", catalog.ListProducts{Limit: 2}, []catalog.Product{a1, a2}, a2.ID},
		{"last page", catalog.ListProducts{Limit: 2, After: a2.ID}, []catalog.Product{a3}, ""},
		{"page exactly full is the last", catalog.ListProducts{Limit: 3}, []catalog.Product{a1, a2, a3}, ""},
		{"page exactly full after a cursor", catalog.ListProducts{Limit: 2, After: a1.ID}, []catalog.Product{a2, a3}, ""},
		{"empty page", catalog.ListProducts{After: a3.ID}, nil, ""},
		{"limit zero is the maximum", catalog.ListProducts{Limit: 0, IncludeUnpublished: true}, []catalog.Product{a1, d1, x1, a2, d2, a3}, ""},
		{"negative limit is the maximum", catalog.ListProducts{Limit: -3}, []catalog.Product{a1, a2, a3}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(t.Context(), tt.q)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if diff := cmp.Diff(ids(tt.want), ids(got.Items)); diff != "" {
				t.Errorf("List(%+v) ids (-want +got):\n%s", tt.q, diff)
			}
			if got.NextAfter != tt.wantNext {
				t.Errorf("NextAfter = %q, want %q", got.NextAfter, tt.wantNext)
			}
		})
	}
}

func TestListPagesOverMaxPageSize(t *testing.T) {
	s, _ := newService(t)
	var want []string
	for i := range catalog.MaxPageSize + 5 {
		c := validCreate(i)
		c.Status = catalog.StatusActive
		want = append(want, create(t, s, c).ID)
	}
	var got []string
	q := catalog.ListProducts{Limit: catalog.MaxPageSize + 50} // capped at MaxPageSize
	for pages := 1; ; pages++ {
		page, err := s.List(t.Context(), q)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(page.Items) > catalog.MaxPageSize {
			t.Fatalf("page of %d items, more than MaxPageSize", len(page.Items))
		}
		got = append(got, ids(page.Items)...)
		if page.NextAfter == "" {
			break
		}
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		q.After = page.NextAfter
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids over all pages (-want +got):\n%s", diff)
	}
}

// recorder is a Deliverer that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	envs []message.Envelope
}

func (r *recorder) Deliver(_ context.Context, env message.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.envs = append(r.envs, env)
	return nil
}

// drain runs the relay until it finds nothing to deliver.
func drain(t *testing.T, relay *outbox.Relay, to outbox.Deliverer) {
	t.Helper()
	for range 10 {
		n, err := relay.Drain(t.Context(), to)
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("the outbox does not empty")
}

func TestEventsDeliveredOnceInOrder(t *testing.T) {
	s, h := newService(t)
	relay := outbox.NewRelay(h.DB, outbox.RelayConfig{}, discard)
	rec := &recorder{}

	p := create(t, s, validCreate(1))
	p2, err := s.Update(t.Context(), catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Price: &catalog.Money{Amount: 2500, Currency: "EUR"}})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	p3, err := s.Archive(t.Context(), catalog.ArchiveProduct{ID: p.ID, ExpectedVersion: p2.Version})
	if err != nil {
		t.Fatalf("Archive: %v", err)
	}
	drain(t, relay, rec)
	drain(t, relay, rec) // nothing more: each message is delivered once

	type event struct {
		Type    string
		Version int64
	}
	var got []event
	seen := map[string]bool{}
	for _, env := range rec.envs {
		if seen[env.ID] {
			t.Errorf("envelope %s delivered twice", env.ID)
		}
		seen[env.ID] = true
		if env.Kind != message.KindEvent {
			t.Errorf("%s has kind %s, want event", env.Type, env.Kind)
		}
		e := event{Type: env.Type}
		switch env.Type {
		case catalog.ProductCreatedEvent.Name():
			m, err := catalog.ProductCreatedEvent.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			e.Version = m.Body.Product.Version
		case catalog.ProductUpdatedEvent.Name():
			m, err := catalog.ProductUpdatedEvent.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			e.Version = m.Body.Product.Version
		case catalog.PriceChangedEvent.Name():
			m, err := catalog.PriceChangedEvent.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			e.Version = m.Body.Version
			if m.Body.Old.Amount != 1999 || m.Body.New.Amount != 2500 {
				t.Errorf("PriceChanged %+v, want 1999 → 2500", m.Body)
			}
		case catalog.ProductArchivedEvent.Name():
			m, err := catalog.ProductArchivedEvent.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			e.Version = m.Body.Version
		}
		got = append(got, e)
	}
	want := []event{
		{"catalog.ProductCreated", 1},
		{"catalog.ProductUpdated", 2},
		{"catalog.PriceChanged", 2},
		{"catalog.ProductArchived", 3},
		{"catalog.ProductUpdated", 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivered events (-want +got):\n%s", diff)
	}
	if p3.Version != 3 {
		t.Errorf("archived version = %d, want 3", p3.Version)
	}
	if rows := testdb.OutboxRows(t, h.DB); len(rows) != 0 {
		t.Errorf("outbox still holds %v after delivery", testdb.OutboxTypes(rows))
	}
}

// Requests through the bus reach the same handlers and keep their errors.
func TestHandlersThroughBus(t *testing.T) {
	s, _ := newService(t)
	b, err := bus.New(discard, bus.Limits{}, nil, s.Handlers(), nil)
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	ctx := t.Context()
	p, err := bus.Call(ctx, b, catalog.CreateProductRequest, validCreate(1))
	if err != nil {
		t.Fatalf("CreateProduct: %v", err)
	}
	if _, err := bus.Call(ctx, b, catalog.CreateProductRequest, validCreate(1)); !errors.Is(err, catalog.ErrSKUTaken) {
		t.Errorf("CreateProduct twice: err = %v, want ErrSKUTaken", err)
	}
	if _, err := bus.Call(ctx, b, catalog.GetProductRequest, catalog.GetProduct{ID: p.ID}); !errors.Is(err, catalog.ErrProductNotFound) {
		t.Errorf("GetProduct of a draft: err = %v, want ErrProductNotFound", err)
	}
	active := catalog.StatusActive
	p, err = bus.Call(ctx, b, catalog.UpdateProductRequest, catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Status: &active})
	if err != nil {
		t.Fatalf("UpdateProduct: %v", err)
	}
	page, err := bus.Call(ctx, b, catalog.ListProductsRequest, catalog.ListProducts{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != p.ID {
		t.Errorf("ListProducts: %+v, %v", page, err)
	}
	many, err := bus.Call(ctx, b, catalog.GetProductsRequest, catalog.GetProducts{IDs: []string{p.ID}})
	if err != nil || len(many.Products) != 1 {
		t.Errorf("GetProducts: %+v, %v", many, err)
	}
	if _, err := bus.Call(ctx, b, catalog.ArchiveProductRequest, catalog.ArchiveProduct{ID: p.ID, ExpectedVersion: 1}); !errors.Is(err, catalog.ErrVersionMismatch) {
		t.Errorf("ArchiveProduct at a stale version: err = %v, want ErrVersionMismatch", err)
	}
}
