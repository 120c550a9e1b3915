// Package ledger is the payments module's domain: a ledger per payable (an order
// or a ride) of money authorized, captured (all of it, or part: the rest is
// released), voided and refunded, the command handlers that record what is asked
// of it, and the worker pool that makes the provider calls.
//
// A command never calls the provider inside its transaction: its handler records
// the intent (the payment, and a pending operation keyed by the provider's
// idempotency key "<payable_id>:<op>[:<refund_id>]") and commits; a worker then
// claims the operation, calls the provider, and records the outcome together with
// its event in one transaction. Operations a crash interrupted are still pending
// and are claimed again when their lease ends, with the same key: the provider
// answers the resumed call as it answered (or would have answered) the first one.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/provider"
)

// Consumer is the inbox consumer name of the module's command handlers.
const Consumer = "payments"

// Why a refund failed (RefundFailed.Reason).
const (
	RefundNotCaptured     = "not_captured"     // nothing was captured for the payable
	RefundExceedsCaptured = "exceeds_captured" // more than what is captured and not yet refunded
	RefundRefused         = "provider_refused" // the provider refused it
)

// Messages tells a customer why a payment was declined, by reason.
var Messages = map[string]string{
	payments.DeclineCardDeclined:        "your card was declined; please use another card",
	payments.DeclineInsufficientFunds:   "your card has insufficient funds; please use another card",
	payments.DeclineInvalidToken:        "the payment details are not valid; please enter them again",
	payments.DeclineProviderTimeout:     "the payment provider did not answer in time; nothing was charged; please try again",
	payments.DeclineProviderError:       "the payment could not be processed; please try again later",
	payments.DeclineProviderUnavailable: "the payment provider is unavailable; please try again later",
}

// retryable are the decline reasons that are the provider's trouble, not the
// card's: the same payment may go through later (PaymentDeclined.Retryable).
var retryable = map[string]bool{
	payments.DeclineProviderTimeout:     true,
	payments.DeclineProviderError:       true,
	payments.DeclineProviderUnavailable: true,
}

// Options tune a Service. Zero values take the defaults.
type Options struct {
	Workers int // provider calls made at once (default 64)
	// PollInterval is the worker's safety poll (default 5s), and how long a capture
	// waiting on its authorization waits before it looks again if no outcome wakes
	// it: operations written in this process wake the worker (Notify), retries wake
	// it at their time, and the poll bounds how long an operation another process
	// wrote without the wake-up waits.
	PollInterval time.Duration
	// Lease is how long a claimed operation is a worker's before another may take it
	// (default 30s). It should outlast a call with its retries; if it does not, a
	// second call is made with the same key, which costs a call and nothing else.
	Lease time.Duration
	// Heartbeat is how often the leases of the calls in flight are renewed
	// (default: a third of Lease).
	Heartbeat    time.Duration
	RetryBase    time.Duration // first delay before a capture, void or refund is tried again (default 200ms)
	RetryMax     time.Duration // cap on that delay (default 1m)
	ProviderName string        // "simulated" or "http", for ProviderStatus
	// Outage switches the simulated provider's outage (SetProviderOutage); nil
	// when the provider is not the in-process simulator.
	Outage OutageSwitch
	// FaultsAllowed is whether this process may break things on purpose (--demo or
	// --allow-faults): without it SetProviderOutage is refused.
	FaultsAllowed bool
	// Tracer makes the spans of the worker's operations (default: the global
	// OpenTelemetry provider, which is a no-op unless tracing is on).
	Tracer trace.TracerProvider
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 200 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Minute
	}
	if o.ProviderName == "" {
		o.ProviderName = "simulated"
	}
	return o
}

// OutageSwitch is the simulated provider's outage (provider.Simulated).
type OutageSwitch interface {
	SetOutage(down bool)
	Outage() bool
}

// Service is the payments ledger: its command subscriptions, its request handlers
// and its worker pool.
type Service struct {
	db     *store.DB
	ob     *outbox.Outbox
	prov   provider.Provider
	opts   Options
	log    *slog.Logger
	repo   repo
	worker *jobs.Worker[operation]
}

// NewService returns the ledger in db, emitting through ob and calling prov. Start
// its worker pool with Start.
func NewService(db *store.DB, ob *outbox.Outbox, prov provider.Provider, opts Options, log *slog.Logger) *Service {
	s := &Service{db: db, ob: ob, prov: prov, opts: opts.withDefaults(), log: log.With("module", "payments"),
		repo: repo{dialect: db.Dialect}}
	q := jobs.New(db, operations, jobs.Policy{Lease: s.opts.Lease, BaseBackoff: s.opts.RetryBase, MaxBackoff: s.opts.RetryMax})
	// Recording a provider's answer is work in progress: it goes before new work.
	s.worker = jobs.NewWorker(q, jobs.Config{Name: "payment worker", Concurrency: s.opts.Workers,
		PollInterval: s.opts.PollInterval, Heartbeat: s.opts.Heartbeat, Priority: true}, s.log,
		func(ctx context.Context, q *jobs.Queue, batch []operation) error {
			s.perform(ctx, q, batch[0])
			return nil
		})
	return s
}

// Subscriptions returns the module's command handlers.
func (s *Service) Subscriptions() []bus.Subscription {
	return []bus.Subscription{
		outbox.SubscribeCommand(s.db, payments.AuthorizePaymentCommand, Consumer, s.onAuthorize),
		outbox.SubscribeCommand(s.db, payments.CapturePaymentCommand, Consumer, s.onCapture),
		outbox.SubscribeCommand(s.db, payments.VoidPaymentCommand, Consumer, s.onVoid),
		outbox.SubscribeCommand(s.db, payments.RefundPaymentCommand, Consumer, s.onRefund),
	}
}

// Handlers returns the module's request handlers.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(payments.GetPaymentRequest, s.Get),
		bus.Handle(payments.ProviderStatusRequest, s.providerStatus),
		bus.Handle(payments.SetProviderOutageRequest, s.SetProviderOutage),
	}
}

// SetProviderOutage starts or ends the simulated provider's outage and answers
// the provider's state; payments.ErrOutageNotSimulated when the provider is not
// the simulator, payments.ErrOutageNotAllowed when this process does not allow
// faults.
func (s *Service) SetProviderOutage(_ context.Context, q payments.SetProviderOutage) (payments.ProviderState, error) {
	switch {
	case s.opts.Outage == nil:
		return payments.ProviderState{}, payments.ErrOutageNotSimulated
	case !s.opts.FaultsAllowed:
		return payments.ProviderState{}, payments.ErrOutageNotAllowed
	}
	if s.opts.Outage.Outage() != q.Down {
		s.opts.Outage.SetOutage(q.Down)
		s.log.Warn("simulated payment provider outage switched", "down", q.Down)
	}
	return s.ProviderState(), nil
}

// providerStatus answers ProviderStatus with ProviderState: it cannot fail.
func (s *Service) providerStatus(context.Context, payments.ProviderStatus) (payments.ProviderState, error) {
	return s.ProviderState(), nil
}

// Get returns a payable's payment and its ledger, or payments.ErrPaymentNotFound.
// A void that came before its authorization is not a payment yet (nothing names
// its amount): it is not found until the authorization comes and records it.
func (s *Service) Get(ctx context.Context, q payments.GetPayment) (payments.Payment, error) {
	if q.PayableID == "" || len(q.PayableID) > maxID {
		return payments.Payment{}, payments.ErrPaymentNotFound // nothing is ever stored under such an id
	}
	p, err := s.repo.payment(ctx, s.db, q.PayableID, false)
	if err != nil {
		return payments.Payment{}, err
	}
	if p.blindVoid() {
		return payments.Payment{}, payments.ErrPaymentNotFound
	}
	es, err := s.repo.entries(ctx, s.db, q.PayableID)
	if err != nil {
		return payments.Payment{}, err
	}
	return p.contract(es), nil
}

// ProviderState returns which provider the ledger calls and its breaker's state.
func (s *Service) ProviderState() payments.ProviderState {
	state := "closed"
	if b, ok := s.prov.(interface{ BreakerState() string }); ok {
		state = b.BreakerState()
	}
	ps := payments.ProviderState{Provider: s.opts.ProviderName, Breaker: state,
		OutageSwitchable: s.opts.Outage != nil && s.opts.FaultsAllowed}
	if s.opts.Outage != nil {
		ps.Outage = s.opts.Outage.Outage()
	}
	return ps
}

// Limits on what a command may carry.
const (
	maxID    = 64
	maxToken = 256
	maxText  = 500
)

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// errInvalidCommand is a command that can never be carried out. The handler
// returns it, so the relay parks the message as a dead letter for an operator:
// the sender has a bug, and answering with an event would hide it.
var errInvalidCommand = message.ErrInvalidMessage

// payableOf returns the kind a command names, an empty one being an order (as
// every sender wrote before rides existed).
func payableOf(field string, k payments.Payable) (string, error) {
	switch k {
	case "":
		return string(payments.PayableOrder), nil
	case payments.PayableOrder, payments.PayableRide:
		return string(k), nil
	}
	return "", errInvalidCommand.Withf("%s must be order or ride", field).OnField(field)
}

func checkID(field, v string) error {
	if v == "" || len(v) > maxID {
		return errInvalidCommand.Withf("%s must be 1 to %d characters", field, maxID).OnField(field)
	}
	return nil
}

func (s *Service) onAuthorize(ctx context.Context, tx *store.Tx, m message.Message[payments.AuthorizePayment]) error {
	c := m.Body
	if err := checkID("payable_id", c.PayableID); err != nil {
		return err
	}
	payable, err := payableOf("payable", c.Payable)
	if err != nil {
		return err
	}
	switch {
	case len(c.CustomerID) > maxID:
		return errInvalidCommand.Withf("customer_id is longer than %d characters", maxID).OnField("customer_id")
	case c.Amount.Amount <= 0:
		return errInvalidCommand.Withf("amount must be positive").OnField("amount.amount")
	case !currencyRE.MatchString(c.Amount.Currency):
		return errInvalidCommand.Withf("currency must be an ISO 4217 code").OnField("amount.currency")
	case len(c.PaymentToken) > maxToken:
		return errInvalidCommand.Withf("payment_token is longer than %d characters", maxToken).OnField("payment_token")
	}
	now := time.Now().UTC()
	p, err := s.repo.payment(ctx, tx, c.PayableID, true)
	if errors.Is(err, payments.ErrPaymentNotFound) {
		p = payment{PayableID: c.PayableID, Payable: payable, CustomerID: c.CustomerID, Status: string(payments.StatusAuthorizing),
			Amount: c.Amount.Amount, Currency: c.Amount.Currency, Token: c.PaymentToken, CreatedAt: now.UnixMilli(), UpdatedAt: now.UnixMilli()}
		if err := s.repo.insertPayment(ctx, tx, p); err != nil {
			return err
		}
		return s.schedule(ctx, tx, operation{Key: opKey(c.PayableID, opAuthorize, ""), PayableID: c.PayableID, Op: opAuthorize}, now)
	}
	if err != nil {
		return err
	}
	// Asked again: answer with the outcome already known (the pending call will
	// answer if there is none yet).
	if !p.blindVoid() && (p.Amount != c.Amount.Amount || p.Currency != c.Amount.Currency) {
		s.log.WarnContext(ctx, "authorize for a payable already paid with another amount: the first amount stands",
			"payable_id", c.PayableID, "first", p.Amount, "asked", c.Amount.Amount)
	}
	switch payments.Status(p.Status) {
	case payments.StatusAuthorized, payments.StatusCaptured, payments.StatusRefunded:
		return s.ob.Add(ctx, tx, authorizedEvent(p))
	case payments.StatusDeclined:
		return s.ob.Add(ctx, tx, declinedEvent(p))
	case payments.StatusVoided:
		if err := s.claimBlindVoid(ctx, tx, &p, payable, c); err != nil {
			return err
		}
		return s.ob.Add(ctx, tx, voidedEvent(p))
	}
	return nil
}

// claimBlindVoid gives a payment that a void recorded before its authorization
// came (it has no amount: nothing was ever asked of it) the payable, customer and
// amount the authorization names — a void sent without a payable could only take
// it for an order's — so the answer reaches the payable's own module and the
// payment reads as what was asked and voided. Nothing is held: authorized stays 0.
func (s *Service) claimBlindVoid(ctx context.Context, tx *store.Tx, p *payment, payable string, c payments.AuthorizePayment) error {
	if !p.blindVoid() {
		return nil
	}
	p.Payable, p.CustomerID = payable, c.CustomerID
	p.Amount, p.Currency = c.Amount.Amount, c.Amount.Currency
	return s.repo.updatePayment(ctx, tx, p, time.Now().UTC())
}

func (s *Service) onCapture(ctx context.Context, tx *store.Tx, m message.Message[payments.CapturePayment]) error {
	c := m.Body
	if err := checkID("payable_id", c.PayableID); err != nil {
		return err
	}
	if c.Amount < 0 {
		return errInvalidCommand.Withf("amount must not be negative").OnField("amount")
	}
	p, err := s.repo.payment(ctx, tx, c.PayableID, true)
	if errors.Is(err, payments.ErrPaymentNotFound) {
		s.log.WarnContext(ctx, "capture of a payable with no payment: nothing to capture", "payable_id", c.PayableID)
		return nil
	}
	if err != nil {
		return err
	}
	switch payments.Status(p.Status) {
	case payments.StatusAuthorizing, payments.StatusAuthorized:
		// While the authorization is pending, the capture waits for it.
		if voiding, err := s.repo.hasPending(ctx, tx, c.PayableID, opVoid); err != nil || voiding {
			if voiding {
				s.log.WarnContext(ctx, "capture of a payment being voided: not captured", "payable_id", c.PayableID)
			}
			return err
		}
		if c.Amount > p.Amount {
			// The sender asks for more than it had authorized: a bug to park, not to charge.
			return errInvalidCommand.Withf("amount %d is more than the %d authorized", c.Amount, p.Amount).OnField("amount")
		}
		return s.schedule(ctx, tx, operation{Key: opKey(c.PayableID, opCapture, ""), PayableID: c.PayableID, Op: opCapture,
			Amount: c.Amount}, time.Now().UTC())
	case payments.StatusCaptured, payments.StatusRefunded:
		return s.ob.Add(ctx, tx, capturedEvent(p))
	default:
		s.log.WarnContext(ctx, "capture of a payment with nothing authorized: not captured", "payable_id", c.PayableID, "status", p.Status)
		return nil
	}
}

func (s *Service) onVoid(ctx context.Context, tx *store.Tx, m message.Message[payments.VoidPayment]) error {
	c := m.Body
	if err := checkID("payable_id", c.PayableID); err != nil {
		return err
	}
	payable, err := payableOf("payable", c.Payable)
	if err != nil {
		return err
	}
	c.Reason = truncate(c.Reason, maxText)
	now := time.Now().UTC()
	p, err := s.repo.payment(ctx, tx, c.PayableID, true)
	if errors.Is(err, payments.ErrPaymentNotFound) {
		// Voided before it was ever authorized: record it, so that an authorize
		// arriving late is answered with the void rather than a charge.
		p = payment{PayableID: c.PayableID, Payable: payable, Status: string(payments.StatusVoided), Reason: c.Reason,
			CreatedAt: now.UnixMilli(), UpdatedAt: now.UnixMilli()}
		if err := s.repo.insertPayment(ctx, tx, p); err != nil {
			return err
		}
		return s.ob.Add(ctx, tx, voidedEvent(p))
	}
	if err != nil {
		return err
	}
	switch payments.Status(p.Status) {
	case payments.StatusAuthorizing, payments.StatusDeclined:
		// Nothing is held (yet). If the pending authorization succeeds after all,
		// its worker sees the void and releases it at the provider.
		p.Status = string(payments.StatusVoided)
		if err := s.repo.updatePayment(ctx, tx, &p, now); err != nil {
			return err
		}
		return s.ob.Add(ctx, tx, voidedEvent(p))
	case payments.StatusVoided:
		return s.ob.Add(ctx, tx, voidedEvent(p))
	case payments.StatusAuthorized:
		if capturing, err := s.repo.hasPending(ctx, tx, c.PayableID, opCapture); err != nil || capturing {
			if capturing {
				s.log.WarnContext(ctx, "void of a payment being captured: not voided", "payable_id", c.PayableID)
			}
			return err
		}
		return s.schedule(ctx, tx, operation{Key: opKey(c.PayableID, opVoid, ""), PayableID: c.PayableID, Op: opVoid, Reason: c.Reason}, now)
	default:
		s.log.WarnContext(ctx, "void of a captured payment: not voided (refund it instead)", "payable_id", c.PayableID)
		return nil
	}
}

func (s *Service) onRefund(ctx context.Context, tx *store.Tx, m message.Message[payments.RefundPayment]) error {
	c := m.Body
	if err := checkID("payable_id", c.PayableID); err != nil {
		return err
	}
	if err := checkID("refund_id", c.RefundID); err != nil {
		return err
	}
	if c.Amount < 0 {
		return errInvalidCommand.Withf("amount must not be negative").OnField("amount")
	}
	c.Reason = truncate(c.Reason, maxText)
	failed := func(p payment, reason string) error {
		return s.ob.Add(ctx, tx, payments.RefundFailedEvent.With(payments.RefundFailed{
			PayableID: c.PayableID, Payable: p.kind(), CustomerID: p.CustomerID, RefundID: c.RefundID, Reason: reason}))
	}
	p, err := s.repo.payment(ctx, tx, c.PayableID, true)
	if errors.Is(err, payments.ErrPaymentNotFound) {
		// No payment, so no kind to tell: the event's Payable is empty, an order's.
		return failed(payment{}, RefundNotCaptured)
	}
	if err != nil {
		return err
	}
	key := opKey(c.PayableID, opRefund, c.RefundID)
	if o, ok, err := s.repo.operation(ctx, tx, key); err != nil {
		return err
	} else if ok {
		// This refund id was asked for before: answer as then.
		switch o.State {
		case stateDone:
			return s.ob.Add(ctx, tx, refundIssuedEvent(p, o))
		case stateFailed:
			return failed(p, o.Outcome)
		}
		return nil // still pending: its worker will answer
	}
	if p.Captured == 0 {
		return failed(p, RefundNotCaptured)
	}
	pending, err := s.repo.pendingRefunds(ctx, tx, c.PayableID)
	if err != nil {
		return err
	}
	left := p.Captured - p.Refunded - pending
	amount := c.Amount
	if amount == 0 {
		amount = left
	}
	if amount <= 0 || amount > left {
		return failed(p, RefundExceedsCaptured)
	}
	return s.schedule(ctx, tx, operation{Key: key, PayableID: c.PayableID, Op: opRefund, RefundID: c.RefundID, Amount: amount, Reason: c.Reason},
		time.Now().UTC())
}

// schedule records o as due now and, once tx commits, hands it to the worker pool
// (or wakes the pool to claim it, when it was re-armed or the pool is not running).
func (s *Service) schedule(ctx context.Context, tx *store.Tx, o operation, now time.Time) error {
	holder, until, _ := s.worker.Hold(now)
	o, held, err := s.repo.schedule(ctx, tx, o, now, holder, until)
	if err != nil {
		return err
	}
	if held { // the worker runs it on commit, without claiming it
		tx.OnCommit(func() { s.worker.Handoff(o) })
		return nil
	}
	tx.OnCommit(s.Notify)
	return nil
}

func authorizedEvent(p payment) message.Outgoing {
	return payments.PaymentAuthorizedEvent.With(payments.PaymentAuthorized{PayableID: p.PayableID, Payable: p.kind(), CustomerID: p.CustomerID,
		Amount: p.money(p.Amount), ProviderRef: p.ProviderAuthID})
}

func declinedEvent(p payment) message.Outgoing {
	return payments.PaymentDeclinedEvent.With(payments.PaymentDeclined{PayableID: p.PayableID, Payable: p.kind(), CustomerID: p.CustomerID,
		Reason: p.Reason, Message: Messages[p.Reason], Retryable: retryable[p.Reason]})
}

func capturedEvent(p payment) message.Outgoing {
	return payments.PaymentCapturedEvent.With(payments.PaymentCaptured{PayableID: p.PayableID, Payable: p.kind(), CustomerID: p.CustomerID,
		Amount: p.money(p.Captured)})
}

func voidedEvent(p payment) message.Outgoing {
	return payments.PaymentVoidedEvent.With(payments.PaymentVoided{PayableID: p.PayableID, Payable: p.kind(), CustomerID: p.CustomerID})
}

func refundIssuedEvent(p payment, o operation) message.Outgoing {
	return payments.RefundIssuedEvent.With(payments.RefundIssued{PayableID: p.PayableID, Payable: p.kind(), CustomerID: p.CustomerID,
		RefundID: o.RefundID, Amount: p.money(o.Amount), TotalRefunded: p.Refunded, Reason: o.Reason})
}

// truncate shortens s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// String names an operation in logs.
func (o operation) String() string { return fmt.Sprintf("%s (attempt %d)", o.Key, o.Attempts) }
