// Package migrations embeds every module's SQL migrations into the binary. Each
// module has its own folder (applied by goose to that module's own database), and
// the outbox folder holds the tables every module's database carries for the
// transactional outbox and inbox.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed */*.sql
var files embed.FS

// For returns the migrations of one module (or "outbox"), rooted at its folder.
func For(name string) (fs.FS, error) {
	sub, err := fs.Sub(files, name)
	if err != nil {
		return nil, err
	}
	if entries, err := fs.ReadDir(sub, "."); err != nil || len(entries) == 0 {
		return nil, fmt.Errorf("migrations: none for %q", name)
	}
	return sub, nil
}
