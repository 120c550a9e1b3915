// Package config holds the platform's settings of an Agora process: where data
// lives, which modules run and serve HTTP here, the HTTP edge, the databases and
// the bus. Every setting is both a command-line flag and an AGORA_* environment
// variable (see internal/cli); each module's own settings live in its folder
// (modules/<name>/module). The zero-configuration defaults run every module on
// SQLite under ./data.
package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is the configuration of one Agora process.
type Config struct {
	DataDir string // where SQLite files and generated keys live
	// Modules run in this process; HTTPModules narrows whose HTTP routes it serves
	// (asking modules that run elsewhere over the bus). Default: every module.
	Modules     []string
	HTTPModules []string
	LogLevel    string
	LogFormat   string

	HTTPAddr        string
	RequestTimeout  time.Duration // deadline of each HTTP request, and so of the bus calls it makes
	MaxBodyBytes    int64
	MaxInFlight     int // HTTP requests handled at once before 503
	ShutdownTimeout time.Duration

	// DebugAddr, when set, is a loopback address where the process serves Go's
	// profiles (net/http/pprof), apart from the API; empty serves none.
	DebugAddr string

	// MetricsToken, when set, is the bearer token /metrics requires; when empty,
	// /metrics answers only requests from the loopback address.
	MetricsToken string

	BusMaxInFlight int // requests one module handles at once before callers wait

	// BusURL selects the network transport: nats://host:port (comma-separate the
	// servers of a cluster) connects this process's bus to the other processes
	// through NATS; empty keeps every message in this process.
	BusURL string
	// BusOutageWait is how long a request to another process waits for a lost broker
	// connection to come back before it fails with 503 and Retry-After.
	BusOutageWait time.Duration

	// DatabaseURL selects PostgreSQL for every module (postgres://…); empty means
	// one SQLite file per module under DataDir. ModuleDatabaseURLs overrides it per
	// module, so a module split into its own service can have its own database.
	DatabaseURL        string
	ModuleDatabaseURLs map[string]string

	DBMaxOpenConns     int
	DBMaxIdleConns     int
	DBConnMaxLifetime  time.Duration
	DBStatementTimeout time.Duration
	MigrateOnStart     bool
	Demo               bool // fill an empty store with demo data

	// Faults is a fault schedule for the bus (see package faults: the compact
	// syntax, inline JSON or a JSON file's path); empty injects none. It, and the
	// admin routes that change the schedule, are refused unless Demo or
	// AllowFaults is set, so that a production process cannot be broken by accident.
	Faults      string
	AllowFaults bool
}

// FaultsAllowed reports whether this process may inject faults into its bus.
func (c Config) FaultsAllowed() bool { return c.Demo || c.AllowFaults }

// Default returns the zero-configuration settings, but for Modules and
// HTTPModules, which are empty: the command line makes them every module of the
// registry.
func Default() Config {
	return Config{
		DataDir:            "./data",
		LogLevel:           "info",
		LogFormat:          "auto",
		HTTPAddr:           "127.0.0.1:8080",
		RequestTimeout:     30 * time.Second,
		MaxBodyBytes:       1 << 20,
		MaxInFlight:        1024,
		ShutdownTimeout:    15 * time.Second,
		BusMaxInFlight:     256,
		BusOutageWait:      2 * time.Second,
		DBMaxOpenConns:     8,
		DBMaxIdleConns:     8,
		DBConnMaxLifetime:  30 * time.Minute,
		DBStatementTimeout: 30 * time.Second,
		MigrateOnStart:     true,
		ModuleDatabaseURLs: map[string]string{},
	}
}

// ParseModules turns "all", "none" or a comma-separated list into names of known
// modules, rejecting unknown ones.
func ParseModules(s string, known []string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return slices.Clone(known), nil
	}
	if s == "none" {
		return nil, nil
	}
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(known, m) {
			return nil, fmt.Errorf("unknown module %q (known: %s, or all/none)", m, strings.Join(known, ", "))
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// DatabaseURLFor returns the database URL of module: its own override, else
// DatabaseURL; empty means SQLite under DataDir.
func (c Config) DatabaseURLFor(module string) string {
	if u := c.ModuleDatabaseURLs[module]; u != "" {
		return u
	}
	return c.DatabaseURL
}

// ServesHTTP reports whether this process serves module's HTTP routes.
func (c Config) ServesHTTP(module string) bool { return slices.Contains(c.HTTPModules, module) }

// Runs reports whether module runs in this process.
func (c Config) Runs(module string) bool { return slices.Contains(c.Modules, module) }
