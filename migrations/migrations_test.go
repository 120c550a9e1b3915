package migrations

import (
	"io/fs"
	"testing"
)

func TestForPicksTheDialectFolder(t *testing.T) {
	tests := []struct{ name, dialect, wantFile string }{
		{"orders", "sqlite", "00001_orders.sql"},
		{"orders", "postgres", "00001_orders.sql"},
		{"catalog", "sqlite", "00001_products.sql"},
		{"catalog", "postgres", "00001_products.sql"},
	}
	for _, tt := range tests {
		fsys, err := For(tt.name, tt.dialect)
		if err != nil {
			t.Fatalf("For(%q, %q): %v", tt.name, tt.dialect, err)
		}
		if _, err := fs.Stat(fsys, tt.wantFile); err != nil {
			t.Errorf("For(%q, %q) has no %s: %v", tt.name, tt.dialect, tt.wantFile, err)
		}
	}
	// The two catalog folders must differ exactly where the dialects do.
	pg, _ := For("catalog", "postgres")
	lite, _ := For("catalog", "sqlite")
	a, _ := fs.ReadFile(pg, "00001_products.sql")
	b, _ := fs.ReadFile(lite, "00001_products.sql")
	if string(a) == string(b) {
		t.Error("catalog's postgres and sqlite migrations are identical; one folder would do")
	}
	if _, err := For("nope", "sqlite"); err == nil {
		t.Error("For of an unknown module must fail")
	}
}
