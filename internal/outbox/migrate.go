package outbox

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"

	"github.com/agora-commerce/agora/internal/store"
)

// The outbox's and inbox's tables, in portable SQL: every module's database
// carries them, and this package is the only one that reads or writes them.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies the outbox's migrations to db, recording them in their own
// goose version table (goose_outbox_version), apart from the module's own.
func Migrate(ctx context.Context, db *store.DB, log *slog.Logger) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	return store.Migrate(ctx, db, sub, "goose_outbox_version", log)
}
