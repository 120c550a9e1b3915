// Package migrations embeds every module's SQL migrations into the binary. Each
// module has its own folder, applied by goose to that module's own database. The
// tables every module's database carries for the transactional outbox and inbox
// are the outbox package's own (outbox.Migrate).
//
// A folder's .sql files are portable SQL, one file per version for every dialect.
// New tables keep times as integer Unix microseconds (BIGINT), which compare and
// index the same way everywhere. Tables created before that declare their times
// TIMESTAMPTZ, and keep doing so, since databases in use have those columns; For
// declares them TIMESTAMP on SQLite (see sqliteTimes).
package migrations

import (
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
)

//go:embed */*.sql
var files embed.FS

// For returns the migrations of one module for dialect ("sqlite" or "postgres"),
// rooted at its folder. Versions and file names never change once
// released: goose records the versions a database has applied and skips them.
func For(name, dialect string) (fs.FS, error) {
	sub, err := fs.Sub(files, name)
	if err != nil {
		return nil, err
	}
	if matches, _ := fs.Glob(sub, "*.sql"); len(matches) == 0 {
		return nil, fmt.Errorf("migrations: none for %q", name)
	}
	if dialect == "sqlite" {
		return sqliteTimes{sub}, nil
	}
	return sub, nil
}

// timestamptz matches the type name TIMESTAMPTZ as a word, in any case.
var timestamptz = regexp.MustCompile(`(?i)\bTIMESTAMPTZ\b`)

// sqliteTimes serves .sql files with the type TIMESTAMPTZ declared TIMESTAMP.
// SQLite stores both alike (either name gives a column NUMERIC affinity, and a
// time is written as text), but the driver (modernc.org/sqlite) hands a column's
// text back as a time.Time only when the column is declared DATE, DATETIME or
// TIMESTAMP: a TIMESTAMPTZ column would read as a string. TIMESTAMP is also what
// SQLite databases created before the migrations were portable declare.
type sqliteTimes struct{ fsys fs.FS }

func (s sqliteTimes) Open(name string) (fs.File, error) {
	f, err := s.fsys.Open(name)
	if err != nil || !strings.HasSuffix(name, ".sql") {
		return f, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	b = timestamptz.ReplaceAll(b, []byte("TIMESTAMP"))
	return &memFile{Reader: bytes.NewReader(b), info: sizedInfo{FileInfo: info, size: int64(len(b))}}, nil
}

// memFile is a file read from memory.
type memFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

// sizedInfo is a file's information with the size of its rewritten contents.
type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }
