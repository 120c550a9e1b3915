// Package config holds the settings of an Agora process. Every setting is both a
// command-line flag and an AGORA_* environment variable (see internal/cli), and
// the zero-configuration defaults run the whole shop on SQLite under ./data.
package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// AllModules lists every domain module, in start order.
var AllModules = []string{"identity", "catalog", "inventory", "payments", "orders", "notifications"}

// Config is the configuration of one Agora process.
type Config struct {
	DataDir   string   // where SQLite files and generated keys live
	Modules   []string // modules that run in this process
	LogLevel  string
	LogFormat string

	HTTPAddr        string
	RequestTimeout  time.Duration // deadline of each HTTP request, and so of the bus calls it makes
	MaxBodyBytes    int64
	MaxInFlight     int // HTTP requests handled at once before 503
	ShutdownTimeout time.Duration

	// MetricsToken, when set, is the bearer token /metrics requires; when empty,
	// /metrics answers only requests from the loopback address.
	MetricsToken string

	BusMaxInFlight int // requests one module handles at once before callers wait

	// BusURL selects the network transport: nats://host:port (comma-separate the
	// servers of a cluster) connects this process's bus to the other processes
	// through NATS; empty keeps every message in this process.
	BusURL string
	// HTTPModules narrows which modules' HTTP routes this process serves (default:
	// all of them, asking modules that run elsewhere over the bus).
	HTTPModules []string

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

	// CatalogCacheTTL bounds how stale a product read may be when other processes
	// write the same catalog database; negative disables the catalog's read cache.
	CatalogCacheTTL time.Duration

	// JWTPrivateKeyFile is an Ed25519 key (PKCS#8 PEM) that signs access tokens,
	// for the process that runs identity; without it identity keeps its keys in its
	// database. JWTPublicKeyFile (PKIX PEM) fixes the key of a process that only
	// verifies; without it the process fetches identity's key set over the bus.
	JWTPrivateKeyFile string
	JWTPublicKeyFile  string

	// AuthPerIPPerMinute bounds sign-in and sign-up attempts per client address.
	AuthPerIPPerMinute int

	// ReservationTTL is how long inventory holds stock for an order whose saga does
	// not come back; the sweeper releases it afterwards.
	ReservationTTL time.Duration
	// SagaStepTimeout is how long the checkout saga waits for an answer before it
	// sends its command again; after SagaMaxAttempts it compensates.
	SagaStepTimeout time.Duration
	SagaMaxAttempts int

	// PaymentProviderURL selects the HTTP payment provider (e.g. `agora psp`'s
	// address); empty uses the in-process simulated provider.
	PaymentProviderURL string
	PaymentProviderKey string        // the provider's API key (sent as a bearer token)
	PaymentTimeout     time.Duration // deadline of one provider call
	PaymentRetries     int           // retries of a retryable provider failure

	// SMTPURL (smtp://user:pass@host:port, or smtps://…) makes notifications send
	// emails too; empty sends none. SMTPFrom is their sender.
	SMTPURL  string
	SMTPFrom string
}

// Default returns the zero-configuration settings.
func Default() Config {
	return Config{
		DataDir:            "./data",
		Modules:            slices.Clone(AllModules),
		LogLevel:           "info",
		LogFormat:          "auto",
		HTTPAddr:           "127.0.0.1:8080",
		RequestTimeout:     30 * time.Second,
		MaxBodyBytes:       1 << 20,
		MaxInFlight:        1024,
		ShutdownTimeout:    15 * time.Second,
		BusMaxInFlight:     256,
		HTTPModules:        slices.Clone(AllModules),
		DBMaxOpenConns:     8,
		DBMaxIdleConns:     8,
		DBConnMaxLifetime:  30 * time.Minute,
		DBStatementTimeout: 30 * time.Second,
		MigrateOnStart:     true,
		CatalogCacheTTL:    time.Second,
		ModuleDatabaseURLs: map[string]string{},
		AuthPerIPPerMinute: 20,
		ReservationTTL:     15 * time.Minute,
		SagaStepTimeout:    30 * time.Second,
		SagaMaxAttempts:    3,
		PaymentTimeout:     2 * time.Second,
		PaymentRetries:     2,
		SMTPFrom:           "Agora <shop@localhost>",
	}
}

// ParseModules turns "all" or a comma-separated list into module names, rejecting
// unknown ones.
func ParseModules(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return slices.Clone(AllModules), nil
	}
	if s == "none" {
		return nil, nil
	}
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(AllModules, m) {
			return nil, fmt.Errorf("unknown module %q (known: %s, or all/none)", m, strings.Join(AllModules, ", "))
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
