package modhost_test

import (
	"context"
	"github.com/agora-commerce/agora/internal/modhost"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/agora-commerce/agora/internal/config"
)

// TestSQLitePathIsEscaped: a data dir with URI metacharacters must hold the module's
// database under its real name, with every connection setting applied.
func TestSQLitePathIsEscaped(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "we?ird#dir%20x")
	h, err := modhost.Open(context.Background(), cfg, "catalog", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer h.DB.Close()
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "catalog.db")); err != nil {
		t.Fatalf("database not at its path: %v", err)
	}
	var mode string
	if err := h.DB.Get(&mode, `PRAGMA journal_mode`); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal: the DSN's settings were lost", mode, err)
	}
	var fk int
	if err := h.DB.Get(&fk, `PRAGMA foreign_keys`); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d (%v), want 1", fk, err)
	}
}

func TestOpenDBRejectsUnknownURLs(t *testing.T) {
	cfg := config.Default()
	cfg.DatabaseURL = "mysql://root@localhost/agora"
	if _, err := modhost.OpenDB(context.Background(), cfg, "catalog"); err == nil {
		t.Fatal("a mysql:// URL must be refused")
	}
}
