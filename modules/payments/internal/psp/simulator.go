// Package psp is a small payment-service provider for development and tests: a
// Simulator that holds card authorizations, captures, voids and refunds in memory,
// and an HTTP JSON API in front of it (Handler) that `agora psp` serves. It stands
// in for an external provider such as Stripe, so it behaves like one: every
// operation honours an idempotency key, test tokens produce each kind of outcome,
// and failures and latency can be injected.
//
// Test tokens (any other token is refused with CodeInvalidToken):
//
//	tok_visa                 succeeds
//	tok_decline              declined: CodeCardDeclined
//	tok_insufficient_funds   declined: CodeInsufficientFunds
//	tok_timeout              authorizes, then never answers: blocks until the caller gives up
//	tok_error                fails with a 500 (CodeProcessingError); nothing is held
//	tok_slow                 succeeds after Config.SlowLatency
package psp

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Test tokens.
const (
	TokenVisa              = "tok_visa"
	TokenDecline           = "tok_decline"
	TokenInsufficientFunds = "tok_insufficient_funds"
	TokenTimeout           = "tok_timeout"
	TokenError             = "tok_error"
	TokenSlow              = "tok_slow"
)

// Error codes, as the HTTP API sends them in {"error": {"code": …}}.
const (
	CodeCardDeclined        = "card_declined"            // 402
	CodeInsufficientFunds   = "insufficient_funds"       // 402
	CodeInvalidToken        = "invalid_token"            // 400
	CodeInvalidRequest      = "invalid_request"          // 400: a malformed or out-of-range parameter
	CodeIdempotencyRequired = "idempotency_key_required" // 400
	CodeIdempotencyMismatch = "idempotency_key_reused"   // 422: same key, other operation or parameters
	CodeAmountTooLarge      = "amount_too_large"         // 422: capture beyond authorized, refund beyond captured
	CodeInvalidState        = "invalid_state"            // 409: e.g. capture twice, capture a voided authorization
	CodeNotFound            = "not_found"                // 404
	CodeUnauthorized        = "unauthorized"             // 401
	CodeProcessingError     = "processing_error"         // 500
	CodeUnavailable         = "service_unavailable"      // 503: an injected failure
)

// Error is a refusal or failure of the provider. Status is the HTTP status the API
// answers with; Code is stable and machine-readable.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("psp: %s (%d): %s", e.Code, e.Status, e.Message) }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Authorization states.
const (
	StateAuthorized = "authorized"
	StateCaptured   = "captured"
	StateVoided     = "voided"
)

// Authorization is money held on a card, and what became of it.
type Authorization struct {
	ID        string    `json:"id"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	State     string    `json:"state"`
	Captured  int64     `json:"captured"`
	Refunded  int64     `json:"refunded"`
	CreatedAt time.Time `json:"created_at"`

	restored bool // re-created from its id by a simulator that had not made it
}

// Refund is money given back from a captured authorization.
type Refund struct {
	ID              string `json:"id"`
	AuthorizationID string `json:"authorization_id"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
}

// Config tunes a Simulator. Zero values take the defaults.
type Config struct {
	// FailureRate is the chance (0 to 1) that any call fails with a 503 before it
	// does anything; the caller may retry it with the same key.
	FailureRate float64
	// Latency is added to every call.
	Latency time.Duration
	// SlowLatency is how long tok_slow takes to answer (default 1s).
	SlowLatency time.Duration
}

// MaxAmount is the largest amount, in minor units, the provider accepts.
const MaxAmount int64 = 1_000_000_000_000

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// Simulator is an in-memory payment provider; it is safe for concurrent use.
type Simulator struct {
	cfg    Config
	outage atomic.Bool // SetOutage: every call fails with a 503

	mu    sync.Mutex
	auths map[string]*Authorization
	keys  map[string]*keyed // idempotency key → the call that first used it
	calls int
}

// keyed is the recorded outcome of the call that first used an idempotency key.
type keyed struct {
	fingerprint string
	done        chan struct{} // closed once result and err are set
	result      any
	err         error
	authID      string // the authorization the call created or acted on
}

// NewSimulator returns an empty simulator.
func NewSimulator(cfg Config) *Simulator {
	if cfg.SlowLatency <= 0 {
		cfg.SlowLatency = time.Second
	}
	return &Simulator{cfg: cfg, auths: map[string]*Authorization{}, keys: map[string]*keyed{}}
}

// Calls returns how many calls the simulator has received.
func (s *Simulator) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// SetOutage starts (down) or ends an outage: while it lasts, every call fails
// with a 503 (CodeUnavailable) before it does anything, as the calls to a provider
// that is down do; a caller may retry them with the same key once it ends.
func (s *Simulator) SetOutage(down bool) { s.outage.Store(down) }

// Outage reports whether an outage is on (SetOutage).
func (s *Simulator) Outage() bool { return s.outage.Load() }

// Authorizations returns a copy of every authorization the simulator holds.
func (s *Simulator) Authorizations() []Authorization {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Authorization, 0, len(s.auths))
	for _, a := range s.auths {
		out = append(out, *a)
	}
	return out
}

// Authorize holds amount of currency on the card behind token. The same key with
// the same parameters returns the same authorization (or the same decline) without
// a second hold; the same key with other parameters fails with
// CodeIdempotencyMismatch.
func (s *Simulator) Authorize(ctx context.Context, amount int64, currency, token, key string) (Authorization, error) {
	if err := s.begin(ctx, key); err != nil {
		return Authorization{}, err
	}
	if amount <= 0 || amount > MaxAmount {
		return Authorization{}, errorf(http.StatusBadRequest, CodeInvalidRequest, "amount must be between 1 and %d", MaxAmount)
	}
	if !currencyRE.MatchString(currency) {
		return Authorization{}, errorf(http.StatusBadRequest, CodeInvalidRequest, "currency must be an ISO 4217 code")
	}
	fp := fmt.Sprintf("authorize|%d|%s|%s", amount, currency, token)
	if token == TokenTimeout {
		// The card network takes the hold but its answer never comes back: the
		// caller must give up, and void by key in case the hold was taken.
		if _, err := s.once(ctx, key, fp, func() (any, string, error) {
			a := s.newAuth(amount, currency)
			return *a, a.ID, nil
		}); err != nil {
			return Authorization{}, err
		}
		<-ctx.Done()
		return Authorization{}, ctx.Err()
	}
	v, err := s.once(ctx, key, fp, func() (any, string, error) {
		switch token {
		case TokenVisa:
		case TokenSlow:
			if err := sleep(ctx, s.cfg.SlowLatency); err != nil {
				return nil, "", err
			}
		case TokenDecline:
			return nil, "", errorf(http.StatusPaymentRequired, CodeCardDeclined, "the card was declined")
		case TokenInsufficientFunds:
			return nil, "", errorf(http.StatusPaymentRequired, CodeInsufficientFunds, "the card has insufficient funds")
		case TokenError:
			return nil, "", errorf(http.StatusInternalServerError, CodeProcessingError, "the card network failed")
		default:
			return nil, "", errorf(http.StatusBadRequest, CodeInvalidToken, "unknown payment token")
		}
		a := s.newAuth(amount, currency)
		return *a, a.ID, nil
	})
	if err != nil {
		return Authorization{}, err
	}
	return v.(Authorization), nil
}

// Capture takes amount (0: all of it) of an authorization, once: a second capture
// under another key fails with CodeInvalidState, more than authorized with
// CodeAmountTooLarge.
func (s *Simulator) Capture(ctx context.Context, authID string, amount int64, key string) (Authorization, error) {
	return call(ctx, s, key, fmt.Sprintf("capture|%s|%d", authID, amount), func() (Authorization, string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a, ok := s.lookup(authID)
		switch {
		case !ok:
			return Authorization{}, "", errorf(http.StatusNotFound, CodeNotFound, "no authorization %q", authID)
		case a.State != StateAuthorized:
			return Authorization{}, "", errorf(http.StatusConflict, CodeInvalidState, "the authorization is %s", a.State)
		case amount < 0 || amount > a.Amount:
			return Authorization{}, "", errorf(http.StatusUnprocessableEntity, CodeAmountTooLarge, "cannot capture %d of %d authorized", amount, a.Amount)
		}
		if amount == 0 {
			amount = a.Amount
		}
		a.State, a.Captured = StateCaptured, amount
		return *a, a.ID, nil
	})
}

// Void releases an authorization. Voiding a voided authorization succeeds; voiding
// a captured one fails with CodeInvalidState.
func (s *Simulator) Void(ctx context.Context, authID, key string) (Authorization, error) {
	return call(ctx, s, key, "void|"+authID, func() (Authorization, string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a, ok := s.lookup(authID)
		switch {
		case !ok:
			return Authorization{}, "", errorf(http.StatusNotFound, CodeNotFound, "no authorization %q", authID)
		case a.State == StateCaptured:
			return Authorization{}, "", errorf(http.StatusConflict, CodeInvalidState, "the authorization is captured; refund it instead")
		}
		a.State = StateVoided
		return *a, a.ID, nil
	})
}

// Refund gives back amount of a captured authorization; the refunds of one
// authorization never add up to more than was captured (CodeAmountTooLarge).
func (s *Simulator) Refund(ctx context.Context, authID string, amount int64, key string) (Refund, error) {
	return call(ctx, s, key, fmt.Sprintf("refund|%s|%d", authID, amount), func() (Refund, string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a, ok := s.lookup(authID)
		if ok && a.restored && a.State == StateAuthorized {
			// Restored after a restart, its capture forgotten: the caller's ledger
			// knows it was captured; the amount bounds the refund.
			a.State, a.Captured = StateCaptured, a.Amount
		}
		switch {
		case !ok:
			return Refund{}, "", errorf(http.StatusNotFound, CodeNotFound, "no authorization %q", authID)
		case a.State != StateCaptured:
			return Refund{}, "", errorf(http.StatusConflict, CodeInvalidState, "the authorization is %s, not captured", a.State)
		case amount <= 0 || amount > a.Captured-a.Refunded:
			return Refund{}, "", errorf(http.StatusUnprocessableEntity, CodeAmountTooLarge, "cannot refund %d: %d captured, %d refunded", amount, a.Captured, a.Refunded)
		}
		a.Refunded += amount
		return Refund{ID: newID("re"), AuthorizationID: a.ID, Amount: amount, Currency: a.Currency}, a.ID, nil
	})
}

// AuthorizationByKey returns the authorization that the Authorize call with
// idempotency key created, as it stands now — also when that call never answered
// (tok_timeout). It fails with CodeNotFound when that call held nothing.
func (s *Simulator) AuthorizationByKey(ctx context.Context, key string) (Authorization, error) {
	if err := s.begin(ctx, key); err != nil {
		return Authorization{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[key]; ok && k.authID != "" {
		if a, ok := s.auths[k.authID]; ok {
			return *a, nil
		}
	}
	return Authorization{}, errorf(http.StatusNotFound, CodeNotFound, "no authorization made with this idempotency key")
}

// Get returns an authorization.
func (s *Simulator) Get(ctx context.Context, authID string) (Authorization, error) {
	if err := s.begin(ctx, "-"); err != nil {
		return Authorization{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.auths[authID]; ok {
		return *a, nil
	}
	return Authorization{}, errorf(http.StatusNotFound, CodeNotFound, "no authorization %q", authID)
}

// call is what every operation with an idempotency key does: begin, then once,
// with the operation's result typed.
func call[T any](ctx context.Context, s *Simulator, key, fingerprint string, fn func() (T, string, error)) (T, error) {
	var zero T
	if err := s.begin(ctx, key); err != nil {
		return zero, err
	}
	v, err := s.once(ctx, key, fingerprint, func() (any, string, error) { return fn() })
	if err != nil {
		return zero, err
	}
	return v.(T), nil
}

// begin counts the call and applies what every call goes through: the outage, the
// key check, the added latency and the injected failures.
func (s *Simulator) begin(ctx context.Context, key string) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if s.outage.Load() {
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "the provider is down (a simulated outage)")
	}
	if key == "" {
		return errorf(http.StatusBadRequest, CodeIdempotencyRequired, "an idempotency key is required")
	}
	if len(key) > 255 {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "the idempotency key is longer than 255 characters")
	}
	if err := sleep(ctx, s.cfg.Latency); err != nil {
		return err
	}
	if s.cfg.FailureRate > 0 && rand.Float64() < s.cfg.FailureRate {
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "the provider is temporarily unavailable")
	}
	return nil
}

// once runs fn for the first call with key and records its outcome; later calls
// with the key get that outcome (waiting for it if the first call is still
// running), or CodeIdempotencyMismatch if their fingerprint differs. Failures that
// the caller should retry (5xx, an abandoned call) are not recorded, so a retry
// with the same key runs fn again.
func (s *Simulator) once(ctx context.Context, key, fingerprint string, fn func() (any, string, error)) (any, error) {
	for {
		s.mu.Lock()
		k, seen := s.keys[key]
		if !seen {
			k = &keyed{fingerprint: fingerprint, done: make(chan struct{})}
			s.keys[key] = k
		}
		s.mu.Unlock()
		if seen {
			if k.fingerprint != fingerprint {
				return nil, errorf(http.StatusUnprocessableEntity, CodeIdempotencyMismatch,
					"this idempotency key was used for another operation or other parameters")
			}
			select {
			case <-k.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if k.result == nil && k.err == nil {
				continue // the first call failed in a retryable way and gave the key up
			}
			return k.result, k.err
		}
		result, authID, err := fn()
		s.mu.Lock()
		if retryable(err) {
			delete(s.keys, key)
		} else {
			k.result, k.err, k.authID = result, err, authID
		}
		s.mu.Unlock()
		close(k.done)
		return result, err
	}
}

func retryable(err error) bool {
	if err == nil {
		return false
	}
	e, ok := err.(*Error)
	return !ok || e.Status >= 500
}

// newAuth records a new authorization.
func (s *Simulator) newAuth(amount int64, currency string) *Authorization {
	a := &Authorization{ID: newID("auth") + "_" + strconv.FormatInt(amount, 10) + "_" + currency, Amount: amount, Currency: currency, State: StateAuthorized, CreatedAt: time.Now().UTC()}
	s.mu.Lock()
	s.auths[a.ID] = a
	s.mu.Unlock()
	return a
}

// lookup returns the authorization authID, under s.mu. The simulator keeps its
// state in memory only; so that a process restarted with the in-process simulator
// can still capture, void and refund what an earlier run authorized, an
// authorization's id carries its amount and currency, and an id this simulator did
// not make is restored from them (as authorized). A real provider keeps its state.
func (s *Simulator) lookup(authID string) (*Authorization, bool) {
	if a, ok := s.auths[authID]; ok {
		return a, true
	}
	parts := strings.Split(authID, "_")
	if len(parts) != 4 || parts[0] != "auth" || len(parts[3]) != 3 {
		return nil, false
	}
	amount, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || amount <= 0 {
		return nil, false
	}
	a := &Authorization{ID: authID, Amount: amount, Currency: parts[3], State: StateAuthorized, CreatedAt: time.Now().UTC(), restored: true}
	s.auths[authID] = a
	return a, true
}

func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = crand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
