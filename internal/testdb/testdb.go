// Package testdb gives tests a clean, migrated database of every kind Agora runs on:
// a fresh SQLite file, or a fresh schema in a PostgreSQL server that testcontainers
// starts once per test package. Use Each to run one set of tests on both back ends.
//
// Without a Docker engine the PostgreSQL cases skip, saying why; with
// AGORA_TEST_REQUIRE_DOCKER=1 (as CI sets) they fail instead. The image comes from
// AGORA_TEST_POSTGRES_IMAGE (default postgres:16-alpine); on a machine without a
// registry, `eval "$(bash tests/images/build.sh)"` builds a local one and sets it.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/agora-commerce/agora/internal/store"
)

// Environment variables that steer the integration tests.
const (
	RequireDockerEnv = "AGORA_TEST_REQUIRE_DOCKER"
	PostgresImageEnv = "AGORA_TEST_POSTGRES_IMAGE"
)

// Backend names a kind of database.
type Backend string

// The back ends every store test runs on.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Backends lists every back end, SQLite first.
var Backends = []Backend{SQLite, Postgres}

// Each runs fn once per back end, as subtests named after it, each with a fresh
// database for module with migrate applied (nil: none).
func Each(t *testing.T, module string, migrate func(context.Context, *store.DB) error, fn func(t *testing.T, db *store.DB)) {
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) {
			fn(t, Open(t, b, module, migrate))
		})
	}
}

// Open returns a fresh database for module on backend, with migrate applied (nil:
// none), closed when the test ends: a new SQLite file, or a new schema in the
// package's PostgreSQL server.
func Open(t testing.TB, backend Backend, module string, migrate func(context.Context, *store.DB) error) *store.DB {
	t.Helper()
	ctx := context.Background()
	var db *store.DB
	var err error
	switch backend {
	case SQLite:
		db, err = store.OpenSQLite(ctx, module, filepath.Join(t.TempDir(), module+".db"), store.Options{})
	case Postgres:
		db, err = store.OpenPostgres(ctx, module, PostgresURL(t), FreshSchema(), store.Options{MaxOpenConns: 8})
	default:
		t.Fatalf("testdb: unknown back end %q", backend)
	}
	if err != nil {
		t.Fatalf("testdb: open %s on %s: %v", module, backend, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if migrate != nil {
		if err := migrate(ctx, db); err != nil {
			t.Fatalf("testdb: migrate %s on %s: %v", module, backend, err)
		}
	}
	return db
}

// FreshSchema returns a new, unique schema name.
func FreshSchema() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

// Logger returns a logger that discards everything (tests assert on behaviour).
func Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

var pg struct {
	once sync.Once
	url  string
	err  error
	ctr  testcontainers.Container
}

// PostgresURL returns the superuser URL of the package's PostgreSQL server,
// starting it on first use. Without Docker it skips the test (or fails it when
// AGORA_TEST_REQUIRE_DOCKER=1).
func PostgresURL(t testing.TB) string {
	t.Helper()
	pg.once.Do(func() { pg.url, pg.err = startPostgres() })
	if pg.err != nil {
		if !errors.Is(pg.err, errNoDocker) {
			t.Fatalf("testdb: %v", pg.err) // Docker is there: this is a real failure
		}
		if os.Getenv(RequireDockerEnv) == "1" {
			t.Fatalf("testdb: PostgreSQL is required (%s=1) but unavailable: %v", RequireDockerEnv, pg.err)
		}
		t.Skipf("testdb: skipping PostgreSQL tests: %v. Start a Docker engine (on a machine without a registry: "+
			`eval "$(bash tests/images/build.sh)"`+") to run them; set %s=1 to make this a failure.", pg.err, RequireDockerEnv)
	}
	return pg.url
}

// Main runs a package's tests and then stops the PostgreSQL server if it started.
// Call it from TestMain: func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if pg.ctr != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := testcontainers.TerminateContainer(pg.ctr, testcontainers.StopContext(ctx)); err != nil {
			fmt.Fprintln(os.Stderr, "testdb: stop PostgreSQL:", err)
		}
	}
	return code
}

// RestartPostgres restarts the package's PostgreSQL server cleanly, as an
// operator would: a fast shutdown (SIGINT: every session is cut, the server
// checkpoints and exits) and a start on the same port with the same data; it
// returns once the server accepts connections again. A crash (SIGKILL) is not
// what it does: the test server runs with synchronous_commit and fsync off, so a
// crash may lose transactions it acknowledged, which no real server is set up to
// do. It is for tests of what survives a database restart; PostgresURL must have
// started the server.
func RestartPostgres(ctx context.Context) error {
	if pg.ctr == nil {
		return errors.New("testdb: PostgreSQL is not running")
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("testdb: restart PostgreSQL: %w", err)
	}
	defer cli.Close()
	if _, err := cli.ContainerKill(ctx, pg.ctr.GetContainerID(), client.ContainerKillOptions{Signal: "SIGINT"}); err != nil {
		return fmt.Errorf("testdb: stop PostgreSQL: %w", err)
	}
	for {
		st, err := pg.ctr.State(ctx)
		if err != nil {
			return fmt.Errorf("testdb: stop PostgreSQL: %w", err)
		}
		if !st.Running {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testdb: PostgreSQL did not stop: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := pg.ctr.Start(ctx); err != nil {
		return fmt.Errorf("testdb: start PostgreSQL again: %w", err)
	}
	return awaitPostgres(ctx, pg.url)
}

// awaitPostgres waits until the server at url accepts a connection.
func awaitPostgres(ctx context.Context, url string) error {
	for {
		db, err := store.OpenPostgres(ctx, "probe", url, "public", store.Options{MaxOpenConns: 1})
		if err == nil {
			return db.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testdb: PostgreSQL did not come back: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var errNoDocker = errors.New("no Docker engine answers")

// DockerAvailable reports whether a Docker engine answers; its error says why not
// and matches errors.Is(err, errNoDocker).
func DockerAvailable(ctx context.Context) error {
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("%w: %v", errNoDocker, err)
	}
	defer p.Close()
	if err := p.Health(ctx); err != nil {
		return fmt.Errorf("%w: %v", errNoDocker, err)
	}
	return nil
}

// RequireDocker skips the test when no Docker engine answers (fails it when
// AGORA_TEST_REQUIRE_DOCKER=1), with one line saying how to run it.
func RequireDocker(t testing.TB) {
	t.Helper()
	err := DockerAvailable(context.Background())
	if err == nil {
		return
	}
	if os.Getenv(RequireDockerEnv) == "1" {
		t.Fatalf("testdb: Docker is required (%s=1): %v", RequireDockerEnv, err)
	}
	t.Skipf("testdb: skipping: %v. Start a Docker engine (on a machine without a registry: "+
		`eval "$(bash tests/images/build.sh)"`+") to run it; set %s=1 to make this a failure.", err, RequireDockerEnv)
}

func startPostgres() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := DockerAvailable(ctx); err != nil {
		return "", err
	}
	image := os.Getenv(PostgresImageEnv)
	if image == "" {
		image = "postgres:16-alpine"
	}
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	// Host networking on a port of our choosing, bound to loopback only: no traffic
	// leaves 127.0.0.1, and no port mapping is needed where the engine cannot NAT.
	ctr, err := postgres.Run(ctx, image,
		postgres.WithDatabase("agora"), postgres.WithUsername("agora"), postgres.WithPassword("agora"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
		testcontainers.WithCmd("postgres", "-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300"),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute,
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2)),
	)
	if ctr != nil {
		pg.ctr = ctr
	}
	if err != nil {
		return "", fmt.Errorf("start PostgreSQL (%s): %w", image, err)
	}
	url := fmt.Sprintf("postgres://agora:agora@127.0.0.1:%d/agora?sslmode=disable", port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		db, err := store.OpenPostgres(ctx, "probe", url, "public", store.Options{MaxOpenConns: 1})
		if err == nil {
			_ = db.Close()
			return url, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("PostgreSQL at 127.0.0.1:%d never answered: %w", port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreshDatabase creates a new database, named prefix + a FreshSchema name, in the
// PostgreSQL server at superURL and returns its URL: a deployment's modules create
// their schemas in it, apart from every other test's.
func FreshDatabase(t testing.TB, superURL, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, superURL)
	if err != nil {
		t.Fatalf("testdb: connect to PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	name := prefix + FreshSchema()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	u, err := url.Parse(superURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
