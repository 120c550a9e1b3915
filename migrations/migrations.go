// Package migrations embeds every module's SQL migrations into the binary. Each
// module has its own folder, applied by goose to that module's own database. The
// tables every module's database carries for the transactional outbox and inbox
// are the outbox package's own (outbox.Migrate).
//
// A folder's .sql files are portable SQL for every dialect. Where the dialects
// differ, the folder has instead one subfolder per dialect ("sqlite", "postgres")
// holding the same migrations written for each, side by side.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed */*.sql */*/*.sql
var files embed.FS

// For returns the migrations of one module for dialect, rooted at
// their folder.
func For(name, dialect string) (fs.FS, error) {
	for _, dir := range []string{name + "/" + dialect, name} {
		sub, err := fs.Sub(files, dir)
		if err != nil {
			return nil, err
		}
		if matches, _ := fs.Glob(sub, "*.sql"); len(matches) > 0 {
			return sub, nil
		}
	}
	return nil, fmt.Errorf("migrations: none for %q in dialect %q", name, dialect)
}
