// Package store opens each module's own database and runs its transactions and
// migrations. A module owns its data: by default it gets its own SQLite file under the
// data directory, so no query of one module can reach another module's tables.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

func init() {
	// sqlx does not know modernc's driver name; it takes '?' placeholders.
	sqlx.BindDriver("sqlite", sqlx.QUESTION)
}

// Dialect names the SQL dialect of a DB.
type Dialect string

// Supported dialects.
const (
	SQLite Dialect = "sqlite"
)

// DB is one module's database handle.
type DB struct {
	*sqlx.DB
	Module  string
	Dialect Dialect

	// writer runs InTx's write transactions on SQLite, which allows one writer at a
	// time, committing those that queue up together (see committer). Nil on
	// PostgreSQL, where transactions run concurrently.
	writer *committer
	stmts  *stmtCache // nil on PostgreSQL
	counts *commitCounts
	pig    *piggyback
}

// Commits is what a DB has committed through InTx since it was opened.
type Commits struct {
	// Commits is the database commits: on SQLite a group of transactions
	// committed together (see committer) counts once.
	Commits int64
	// Transactions is InTx's transactions that committed: on SQLite several of
	// them can share one commit; on PostgreSQL it equals Commits.
	Transactions int64
}

type commitCounts struct{ commits, transactions atomic.Int64 }

func (c *commitCounts) add(transactions int) {
	c.commits.Add(1)
	c.transactions.Add(int64(transactions))
}

// Commits returns what db has committed through InTx so far (for metrics: what
// a unit of work costs in commits). Statements run outside InTx — reads, and
// the few writes that run on their own — are not counted.
func (db *DB) Commits() Commits {
	return Commits{Commits: db.counts.commits.Load(), Transactions: db.counts.transactions.Load()}
}

// Options tunes a DB's connection pool. Zero values take the defaults.
type Options struct {
	MaxOpenConns     int           // default 8
	MaxIdleConns     int           // default MaxOpenConns
	ConnMaxLifetime  time.Duration // default 30m on PostgreSQL (so pools follow failovers), none on SQLite
	ConnMaxIdleTime  time.Duration // default 5m
	BusyTimeout      time.Duration // SQLite: how long a writer waits for the lock (default 10s)
	StatementTimeout time.Duration // PostgreSQL: statement_timeout of every connection (default 0: none)
}

func (o Options) withDefaults() Options {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 8
	}
	if o.MaxIdleConns <= 0 || o.MaxIdleConns > o.MaxOpenConns {
		o.MaxIdleConns = o.MaxOpenConns
	}
	if o.ConnMaxIdleTime <= 0 {
		o.ConnMaxIdleTime = 5 * time.Minute
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	return o
}

// OpenSQLite opens (creating if needed) the SQLite database at path for module, in
// WAL mode with foreign keys on and write transactions that take the write lock at
// BEGIN (so two writers queue on busy_timeout instead of failing to upgrade a lock).
func OpenSQLite(ctx context.Context, module, path string, o Options) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	o = o.withDefaults()
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// Reads through a memory map and a 32 MB page cache per connection: fewer
	// read system calls, which dominate a small transaction's cost otherwise.
	q.Add("_pragma", "mmap_size(268435456)")
	q.Add("_pragma", "cache_size(-32000)")
	q.Add("_txlock", "immediate")
	q.Add("_time_format", "sqlite")
	// The path is part of a URI: escape what would end it or change its meaning.
	escaped := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	dsn := "file:" + escaped + "?" + q.Encode()
	db, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", module, err)
	}
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxIdleConns)
	db.SetConnMaxLifetime(o.ConnMaxLifetime)
	db.SetConnMaxIdleTime(o.ConnMaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s at %s: %w", module, path, err)
	}
	return &DB{DB: db, Module: module, Dialect: SQLite, writer: &committer{}, counts: &commitCounts{}, pig: &piggyback{},
		stmts: &stmtCache{m: map[string]*sqlx.Stmt{}, preparing: map[string]bool{}}}, nil
}

// Tx is a transaction with hooks that run after a successful commit.
type Tx struct {
	*sqlx.Tx
	db       *DB
	onCommit []func()
}

// OnCommit registers f to run after the transaction commits (never if it rolls back).
// The outbox uses it to wake its relay the moment new messages are durable.
func (t *Tx) OnCommit(f func()) { t.onCommit = append(t.onCommit, f) }

// InTx runs fn in a transaction. It commits when fn returns nil and returns the
// commit's error (wrapped) if the commit fails; it rolls back when fn returns an
// error or panics (re-panicking after the rollback). On SQLite, transactions that
// wait for the writer are committed together, fn's effects under a savepoint of
// their own (see committer); to fn that is the same.
func InTx(ctx context.Context, db *DB, fn func(tx *Tx) error) (err error) {
	ctx, end := traceTx(ctx, db)
	defer end(&err)
	if db.writer != nil {
		return db.writer.run(ctx, db, fn)
	}
	sqltx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin %s tx: %w", db.Module, err)
	}
	tx := &Tx{Tx: sqltx, db: db}
	committed := false
	defer func() {
		if !committed {
			_ = sqltx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	carried := db.carry(ctx, tx)
	if err := sqltx.Commit(); err != nil {
		committed = true // a failed Commit has ended the tx; Rollback would only say so
		carried(false)
		return fmt.Errorf("store: commit %s tx: %w", db.Module, err)
	}
	committed = true
	carried(true)
	db.counts.add(1)
	for _, f := range tx.onCommit {
		f()
	}
	return nil
}

// Migrate applies every pending migration in fsys (the .sql files at its root) to
// db, recording versions in table. Each migration runs in its own transaction, so a
// failing one leaves the schema as the previous one left it; the error names the file.
func Migrate(ctx context.Context, db *DB, fsys fs.FS, table string, log *slog.Logger) error {
	d := database.DialectSQLite3
	if db.Dialect == Postgres {
		d = database.DialectPostgres
	}
	store, err := database.NewStore(d, table)
	if err != nil {
		return err
	}
	// goose reports a failing statement only in its verbose log; keep the last one
	// it announced so the error can name it.
	var last lastStatement
	p, err := goose.NewProvider("", db.DB.DB, fsys, goose.WithStore(store), goose.WithDisableGlobalRegistry(true),
		goose.WithVerbose(true), goose.WithSlog(slog.New(&last)))
	if err != nil {
		return fmt.Errorf("store: migrations for %s: %w", db.Module, err)
	}
	results, err := p.Up(ctx)
	for _, r := range results {
		if r.Error == nil && !r.Empty {
			log.Info("migration applied", "module", db.Module, "file", r.Source.Path, "took", r.Duration.Round(time.Microsecond).String())
		}
	}
	if err != nil {
		var perr *goose.PartialError
		if errors.As(err, &perr) && perr.Failed != nil {
			return fmt.Errorf("store: migrate %s: %s failed at statement %q: %w",
				db.Module, perr.Failed.Source.Path, last.get(), perr.Err)
		}
		return fmt.Errorf("store: migrate %s: %w", db.Module, err)
	}
	return nil
}

// lastStatement is a slog.Handler that keeps the last SQL statement goose logged
// before executing it.
type lastStatement struct {
	mu   sync.Mutex
	stmt string
}

func (h *lastStatement) Enabled(context.Context, slog.Level) bool { return true }

func (h *lastStatement) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "statement" {
			h.mu.Lock()
			h.stmt = a.Value.String()
			h.mu.Unlock()
			return false
		}
		return true
	})
	return nil
}

func (h *lastStatement) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *lastStatement) WithGroup(string) slog.Handler      { return h }

// get returns the statement on one line, shortened to what an error should carry.
func (h *lastStatement) get() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := strings.Join(strings.Fields(h.stmt), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
