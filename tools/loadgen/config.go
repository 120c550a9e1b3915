package loadgen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Ways to await an order's terminal status.
const (
	AwaitSSE  = "sse"  // GET /v1/orders/{id}/events until a terminal event
	AwaitPoll = "poll" // GET /v1/orders/{id} every PollInterval
)

// DefaultTokens is the default payment-token mix: mostly approvals, with every
// failure the simulated provider knows.
const DefaultTokens = "tok_visa=90,tok_decline=5,tok_insufficient_funds=3,tok_timeout=1,tok_error=1"

// Scenarios: what load a run drives.
const (
	ScenarioShop  = "shop"  // checkouts and catalog browsing
	ScenarioRides = "rides" // driver positions, then ride requests dispatched to drivers
)

// Config says what load to drive and against what.
type Config struct {
	// Scenario is ScenarioShop or ScenarioRides.
	Scenario string
	// URLs are the base URLs of the API (scheme://host:port); requests go to them
	// in turn, so several processes behind different addresses share the load.
	URLs []string
	// Duration is the timed window in which checkouts are launched.
	Duration time.Duration
	// Rate is checkouts launched per second (an open model: launches do not wait
	// for earlier checkouts to finish).
	Rate float64
	// BrowseRate is anonymous catalog requests (list, search, product view)
	// launched per second alongside; 0 sends none.
	BrowseRate float64
	// Customers is how many accounts place orders. A customer runs one checkout at
	// a time (its cart is one), so it also bounds checkouts filling carts at once.
	Customers int
	// Tokens picks each checkout's payment token.
	Tokens TokenMix
	// MaxItems is the most distinct products put in one cart (at least 1).
	MaxItems int
	// MaxInFlight bounds checkouts in flight (and, separately, browse requests);
	// a launch that finds no room is counted as dropped.
	MaxInFlight int
	// Await is AwaitSSE or AwaitPoll.
	Await string
	// PollInterval is the wait between polls with AwaitPoll.
	PollInterval time.Duration
	// OrderTimeout bounds the wait from the order's POST to its terminal status.
	OrderTimeout time.Duration
	// RequestTimeout bounds each HTTP request (not an event stream).
	RequestTimeout time.Duration
	// RetryFor is how long a request that is safe to repeat (a read, a cart
	// change, the checkout's POST with its Idempotency-Key) is sent again while it
	// gets no answer or a 502/503/504 — a process restarting, the broker away —
	// before its flow counts as failed. 0 sends each request once.
	RetryFor time.Duration
	// Drain is how long checkouts still in flight at the end of the window may
	// take to finish before they are abandoned (counted as interrupted).
	Drain time.Duration
	// AdminEmail and AdminPassword sign in the admin that restocks.
	AdminEmail, AdminPassword string
	// Restock keeps products in stock; its zero value restocks nothing.
	Restock Restock
	// Seed seeds the random choices (products, tokens, browse mix).
	Seed uint64
	// DatabaseURL, when set, is the PostgreSQL database (postgres://…) whose
	// commits the shop scenario reads at the edges of the window (see ServerReport).
	DatabaseURL string
	// Rides configures ScenarioRides.
	Rides RidesConfig
}

// RidesConfig is the rides scenario's load: an ingest phase of fleet-operated
// drivers' positions, then a dispatch phase of riders and driver apps.
type RidesConfig struct {
	// Drivers are the fleet-operated drivers of the ingest phase (no accounts).
	Drivers int
	// PositionRate is position updates a second sent in the ingest phase.
	PositionRate float64
	// Ingest is how long the ingest phase sends positions.
	Ingest time.Duration
	// Batch is positions in one POST /v1/fleet/positions (at most 1000).
	Batch int
	// Concurrency bounds batches in flight; a batch that finds none free is dropped.
	Concurrency int
	// RideDrivers are the driver accounts of the dispatch phase, each with a stream.
	RideDrivers int
	// Riders are the customer accounts requesting rides (one ride at a time each).
	Riders int
	// RideRate is ride requests launched a second in the dispatch phase.
	RideRate float64
	// Dispatch is how long the dispatch phase launches rides.
	Dispatch time.Duration
	// TripSpeed is the simulated speed, in m/s, at which drivers reach the pickup and
	// drive the trip: fast, so that RideDrivers can serve RideRate.
	TripSpeed float64
	// RideTimeout bounds the wait from a ride's request to its final status.
	RideTimeout time.Duration
	// MetricsToken is the bearer token of /metrics, when the server wants one.
	MetricsToken string
}

// DefaultRidesConfig returns the defaults of `agora loadgen --scenario rides`.
func DefaultRidesConfig() RidesConfig {
	return RidesConfig{
		Drivers: 10_000, PositionRate: 50_000, Ingest: 20 * time.Second, Batch: 500, Concurrency: 16,
		RideDrivers: 100, Riders: 200, RideRate: 50, Dispatch: 30 * time.Second, TripSpeed: 5000, RideTimeout: 60 * time.Second,
	}
}

// validate reports the first rides setting that cannot work.
func (c RidesConfig) validate() error {
	switch {
	case c.Drivers < 1 || c.Drivers > 1_000_000:
		return errors.New("drivers must be 1 to 1000000")
	case c.PositionRate <= 0 || c.Ingest <= 0:
		return errors.New("the position rate and the ingest phase must be positive")
	case c.Batch < 1 || c.Batch > 1000:
		return errors.New("a batch holds 1 to 1000 positions")
	case c.Concurrency < 1:
		return errors.New("the ingest concurrency must be at least 1")
	case c.RideDrivers < 1 || c.Riders < 1:
		return errors.New("at least one ride driver and one rider are needed")
	case c.RideRate <= 0 || c.Dispatch <= 0:
		return errors.New("the ride rate and the dispatch phase must be positive")
	case c.TripSpeed <= 0 || c.RideTimeout <= 0:
		return errors.New("the trip speed and the ride timeout must be positive")
	}
	return nil
}

// Restock says when and by how much the load generator restocks a product.
type Restock struct {
	Below  int64         // restock a SKU whose available stock is below this
	Amount int64         // units added per restock; 0 turns restocking off
	Every  time.Duration // how often every SKU's stock is checked
}

// Enabled reports whether restocking is on.
func (r Restock) Enabled() bool { return r.Amount > 0 }

// DefaultConfig returns the defaults of `agora loadgen`.
func DefaultConfig() Config {
	tokens, _ := ParseTokenMix(DefaultTokens)
	return Config{
		Scenario:       ScenarioShop,
		Rides:          DefaultRidesConfig(),
		URLs:           []string{"http://127.0.0.1:8080"},
		Duration:       30 * time.Second,
		Rate:           50,
		BrowseRate:     100,
		Customers:      20,
		Tokens:         tokens,
		MaxItems:       3,
		MaxInFlight:    1000,
		Await:          AwaitSSE,
		PollInterval:   100 * time.Millisecond,
		OrderTimeout:   60 * time.Second,
		RequestTimeout: 10 * time.Second,
		RetryFor:       30 * time.Second,
		Drain:          30 * time.Second,
		AdminEmail:     "admin@example.com",
		AdminPassword:  "demo-admin-password",
		Restock:        Restock{Below: 100, Amount: 1000, Every: time.Second},
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if len(c.URLs) == 0 {
		return errors.New("give at least one base URL")
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("base URL %q: want http(s)://host:port", u)
		}
	}
	switch {
	case c.Duration <= 0:
		return errors.New("the duration must be positive")
	case c.Rate <= 0:
		return errors.New("the checkout rate must be positive")
	case c.BrowseRate < 0:
		return errors.New("the browse rate cannot be negative")
	case c.Customers < 1:
		return errors.New("at least one customer is needed")
	case c.Tokens.total == 0:
		return errors.New("the payment-token mix is empty")
	case c.MaxItems < 1:
		return errors.New("items per cart must be at least 1")
	case c.MaxInFlight < 1:
		return errors.New("max in flight must be at least 1")
	case c.Await != AwaitSSE && c.Await != AwaitPoll:
		return fmt.Errorf("await must be %q or %q", AwaitSSE, AwaitPoll)
	case c.Await == AwaitPoll && c.PollInterval <= 0:
		return errors.New("the poll interval must be positive")
	case c.OrderTimeout <= 0 || c.RequestTimeout <= 0:
		return errors.New("timeouts must be positive")
	case c.RetryFor < 0:
		return errors.New("the retry time cannot be negative")
	case c.Drain < 0:
		return errors.New("the drain time cannot be negative")
	case c.Restock.Enabled() && (c.Restock.Below < 0 || c.Restock.Every <= 0):
		return errors.New("restock needs a threshold of 0 or more and a positive interval")
	case c.Scenario == ScenarioRides:
		return c.Rides.validate()
	case c.Scenario != ScenarioShop:
		return fmt.Errorf("scenario must be %q or %q", ScenarioShop, ScenarioRides)
	}
	return nil
}

// TokenMix is a weighted choice of payment tokens.
type TokenMix struct {
	tokens  []string
	weights []int // cumulative
	total   int
}

// ParseTokenMix parses "token=weight,token=weight,…" (weights are positive
// integers; a token named alone weighs 1). Tokens must be distinct.
func ParseTokenMix(s string) (TokenMix, error) {
	var m TokenMix
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, hasWeight := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		weight := 1
		if hasWeight {
			n, err := strconv.Atoi(strings.TrimSpace(w))
			if err != nil || n <= 0 {
				return TokenMix{}, fmt.Errorf("token mix: %q: the weight must be a positive integer", part)
			}
			weight = n
		}
		if name == "" {
			return TokenMix{}, fmt.Errorf("token mix: %q: no token", part)
		}
		if seen[name] {
			return TokenMix{}, fmt.Errorf("token mix: %q appears twice", name)
		}
		seen[name] = true
		if m.total > 1<<30 {
			return TokenMix{}, errors.New("token mix: weights too large")
		}
		m.total += weight
		m.tokens = append(m.tokens, name)
		m.weights = append(m.weights, m.total)
	}
	if m.total == 0 {
		return TokenMix{}, errors.New("token mix: no token")
	}
	return m, nil
}

// Pick chooses a token with probability weight/total.
func (m TokenMix) Pick(r *rand.Rand) string {
	return m.pickAt(r.IntN(m.total))
}

// pickAt returns the token whose cumulative-weight interval holds n (0 ≤ n < total).
func (m TokenMix) pickAt(n int) string {
	for i, w := range m.weights {
		if n < w {
			return m.tokens[i]
		}
	}
	return m.tokens[len(m.tokens)-1]
}

// String gives the mix back in the form ParseTokenMix reads.
func (m TokenMix) String() string {
	parts := make([]string, len(m.tokens))
	prev := 0
	for i, t := range m.tokens {
		parts[i] = fmt.Sprintf("%s=%d", t, m.weights[i]-prev)
		prev = m.weights[i]
	}
	return strings.Join(parts, ",")
}

// ParseBrowseRate reads a browse rate: "N" requests per second, or "Nx" that many
// times the checkout rate. "0" turns browsing off.
func ParseBrowseRate(s string, checkoutRate float64) (float64, error) {
	s = strings.TrimSpace(s)
	ratio, isRatio := strings.CutSuffix(s, "x")
	v, err := strconv.ParseFloat(ratio, 64)
	if err != nil || v < 0 || v != v || v > 1e6 {
		return 0, fmt.Errorf("browse rate %q: want requests per second (e.g. 100) or a multiple of the checkout rate (e.g. 2x)", s)
	}
	if isRatio {
		return v * checkoutRate, nil
	}
	return v, nil
}

// ParseRestock reads "BELOW:AMOUNT" (restock a SKU whose available stock is under
// BELOW by AMOUNT units) or "off".
func ParseRestock(s string) (Restock, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" || s == "" {
		return Restock{}, nil
	}
	b, a, ok := strings.Cut(s, ":")
	below, err1 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	amount, err2 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	if !ok || err1 != nil || err2 != nil || below < 0 || amount <= 0 || amount > 1_000_000 {
		return Restock{}, fmt.Errorf("restock %q: want BELOW:AMOUNT (e.g. 100:1000, amount at most 1000000) or off", s)
	}
	return Restock{Below: below, Amount: amount, Every: time.Second}, nil
}
