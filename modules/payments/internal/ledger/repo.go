package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/payments"
)

// errInvariant is a movement the ledger refuses: it would capture without an
// authorization, capture twice, or refund more than was captured. The database's
// CHECK constraints refuse the same; the code refuses first, with a clearer error.
var errInvariant = errors.New("payments ledger: invariant violated")

// payment is a row of payments.
type payment struct {
	PayableID      string `db:"payable_id"`
	Payable        string `db:"payable"` // payments.PayableOrder or PayableRide
	CustomerID     string `db:"customer_id"`
	Status         string `db:"status"`
	Amount         int64  `db:"amount"`
	Currency       string `db:"currency"`
	Token          string `db:"payment_token"`
	Authorized     int64  `db:"authorized"`
	Captured       int64  `db:"captured"`
	Refunded       int64  `db:"refunded"`
	ProviderAuthID string `db:"provider_auth_id"`
	Reason         string `db:"reason"`
	CreatedAt      int64  `db:"created_at"`
	UpdatedAt      int64  `db:"updated_at"`
}

// entry is a row of payment_entries.
type entry struct {
	ID          string `db:"id"`
	PayableID   string `db:"payable_id"`
	Kind        string `db:"kind"`
	Amount      int64  `db:"amount"`
	Currency    string `db:"currency"`
	ProviderRef string `db:"provider_ref"`
	Reason      string `db:"reason"`
	CreatedAt   int64  `db:"created_at"`
}

// Ledger entry kinds.
const (
	kindAuthorized = "authorized"
	kindCaptured   = "captured"
	kindVoided     = "voided"
	kindRefunded   = "refunded"
)

// kind returns the payable the payment is for, as events carry it.
func (p *payment) kind() payments.Payable { return payments.Payable(p.Payable) }

// blindVoid reports whether p is a void recorded before any authorization named
// its amount.
func (p *payment) blindVoid() bool { return p.Currency == "" }

func (p *payment) money(amount int64) payments.Money {
	return payments.Money{Amount: amount, Currency: p.Currency}
}

func (p *payment) entry(kind string, amount int64, ref, reason string, now time.Time) entry {
	return entry{ID: bus.NewID(), PayableID: p.PayableID, Kind: kind, Amount: amount, Currency: p.Currency,
		ProviderRef: ref, Reason: reason, CreatedAt: now.UnixMilli()}
}

// authorize records that the provider holds the payment's amount under authID.
func (p *payment) authorize(authID string, now time.Time) (entry, error) {
	if p.Status != string(payments.StatusAuthorizing) {
		return entry{}, fmt.Errorf("%w: authorize a payment that is %s", errInvariant, p.Status)
	}
	p.Status, p.Authorized, p.ProviderAuthID, p.Token = string(payments.StatusAuthorized), p.Amount, authID, ""
	return p.entry(kindAuthorized, p.Amount, authID, "", now), nil
}

// capture records that amount (0: the whole authorization) was taken, and — when
// it is less than the authorization — that the rest was released, as a voided
// entry: what the payment holds (Authorized) is then what it took. It refuses a
// payment that is not authorized (so also a second capture) and more than is
// authorized. It returns the ledger entries to add.
func (p *payment) capture(amount int64, now time.Time) ([]entry, error) {
	if amount == 0 {
		amount = p.Authorized
	}
	if p.Status != string(payments.StatusAuthorized) || p.Captured != 0 || p.Authorized <= 0 || amount < 0 || amount > p.Authorized {
		return nil, fmt.Errorf("%w: capture %d of a payment that is %s (captured %d of %d)", errInvariant, amount, p.Status, p.Captured, p.Authorized)
	}
	es := []entry{p.entry(kindCaptured, amount, p.ProviderAuthID, "", now)}
	if rest := p.Authorized - amount; rest > 0 {
		es = append(es, p.entry(kindVoided, rest, p.ProviderAuthID, ReasonPartialCapture, now))
	}
	p.Status, p.Captured, p.Authorized = string(payments.StatusCaptured), amount, amount
	return es, nil
}

// ReasonPartialCapture is the reason of the voided entry that releases what a
// partial capture left of an authorization.
const ReasonPartialCapture = "released: partial capture"

// void records that the authorization was released: nothing is held any more.
// A captured payment cannot be voided.
func (p *payment) void(ref, reason string, now time.Time) (entry, error) {
	if p.Captured != 0 {
		return entry{}, fmt.Errorf("%w: void a captured payment", errInvariant)
	}
	released := p.Authorized
	p.Status, p.Authorized, p.Token = string(payments.StatusVoided), 0, ""
	return p.entry(kindVoided, released, ref, reason, now), nil
}

// refund records that amount was given back; it refuses more than what is
// captured and not yet refunded.
func (p *payment) refund(amount int64, ref, reason string, now time.Time) (entry, error) {
	if amount <= 0 || p.Refunded+amount > p.Captured {
		return entry{}, fmt.Errorf("%w: refund %d of a payment with %d captured, %d refunded", errInvariant, amount, p.Captured, p.Refunded)
	}
	p.Refunded += amount
	if p.Refunded == p.Captured {
		p.Status = string(payments.StatusRefunded)
	}
	return p.entry(kindRefunded, amount, ref, reason, now), nil
}

// contract returns the payment as the contract shows it.
func (p *payment) contract(entries []entry) payments.Payment {
	out := payments.Payment{PayableID: p.PayableID, Payable: payments.Payable(p.Payable), CustomerID: p.CustomerID, Status: payments.Status(p.Status),
		Amount: p.money(p.Amount), Authorized: p.Authorized, Captured: p.Captured, Refunded: p.Refunded, Reason: p.Reason,
		Entries: make([]payments.Entry, 0, len(entries)), CreatedAt: time.UnixMilli(p.CreatedAt).UTC(), UpdatedAt: time.UnixMilli(p.UpdatedAt).UTC()}
	for _, e := range entries {
		out.Entries = append(out.Entries, payments.Entry{Kind: e.Kind, Amount: payments.Money{Amount: e.Amount, Currency: e.Currency},
			ProviderRef: e.ProviderRef, Reason: e.Reason, CreatedAt: time.UnixMilli(e.CreatedAt).UTC()})
	}
	return out
}

// repo holds the module's SQL. Its methods take sqlx.ExtContext so that they run
// inside or outside a transaction.
type repo struct{ dialect store.Dialect }

const paymentColumns = `payable_id, payable, customer_id, status, amount, currency, payment_token, authorized, captured, refunded,
	provider_auth_id, reason, created_at, updated_at`

// payment returns the payment of payableID, locked until the end of the transaction
// on PostgreSQL when lock is set (SQLite transactions already hold the write lock).
// It returns payments.ErrPaymentNotFound when there is none.
func (r repo) payment(ctx context.Context, q sqlx.ExtContext, payableID string, lock bool) (payment, error) {
	query := `SELECT ` + paymentColumns + ` FROM payments WHERE payable_id = ?`
	if lock && r.dialect == store.Postgres {
		query += " FOR UPDATE"
	}
	var p payment
	err := sqlx.GetContext(ctx, q, &p, q.Rebind(query), payableID)
	if errors.Is(err, sql.ErrNoRows) {
		return p, payments.ErrPaymentNotFound
	}
	if err != nil {
		return p, fmt.Errorf("payments: read payment %s: %w", payableID, err)
	}
	return p, nil
}

func (r repo) insertPayment(ctx context.Context, q sqlx.ExtContext, p payment) error {
	_, err := sqlx.NamedExecContext(ctx, q, `INSERT INTO payments (`+paymentColumns+`) VALUES (:payable_id, :payable, :customer_id, :status,
		:amount, :currency, :payment_token, :authorized, :captured, :refunded, :provider_auth_id, :reason, :created_at, :updated_at)`, p)
	if err != nil {
		return fmt.Errorf("payments: insert payment %s: %w", p.PayableID, err)
	}
	return nil
}

// updatePayment writes p's state, stamping its update time.
func (r repo) updatePayment(ctx context.Context, q sqlx.ExtContext, p *payment, now time.Time) error {
	p.UpdatedAt = now.UnixMilli()
	_, err := sqlx.NamedExecContext(ctx, q, `UPDATE payments SET status = :status, payable = :payable, customer_id = :customer_id,
		amount = :amount, currency = :currency, payment_token = :payment_token, authorized = :authorized, captured = :captured, refunded = :refunded,
		provider_auth_id = :provider_auth_id, reason = :reason, updated_at = :updated_at WHERE payable_id = :payable_id`, p)
	if err != nil {
		return fmt.Errorf("payments: update payment %s: %w", p.PayableID, err)
	}
	return nil
}

func (r repo) addEntry(ctx context.Context, q sqlx.ExtContext, e entry) error {
	_, err := sqlx.NamedExecContext(ctx, q, `INSERT INTO payment_entries (id, payable_id, kind, amount, currency, provider_ref, reason, created_at)
		VALUES (:id, :payable_id, :kind, :amount, :currency, :provider_ref, :reason, :created_at)`, e)
	if err != nil {
		return fmt.Errorf("payments: add %s entry to %s: %w", e.Kind, e.PayableID, err)
	}
	return nil
}

// hasEntry reports whether payableID's ledger has an entry of kind.
func (r repo) hasEntry(ctx context.Context, q sqlx.ExtContext, payableID, kind string) (bool, error) {
	var n int
	err := sqlx.GetContext(ctx, q, &n, q.Rebind(`SELECT COUNT(*) FROM payment_entries WHERE payable_id = ? AND kind = ?`), payableID, kind)
	return n > 0, err
}

func (r repo) entries(ctx context.Context, q sqlx.ExtContext, payableID string) ([]entry, error) {
	var es []entry
	err := sqlx.SelectContext(ctx, q, &es, q.Rebind(`SELECT id, payable_id, kind, amount, currency, provider_ref, reason, created_at
		FROM payment_entries WHERE payable_id = ? ORDER BY id`), payableID)
	if err != nil {
		return nil, fmt.Errorf("payments: read entries of %s: %w", payableID, err)
	}
	return es, nil
}

// Operation kinds and states.
const (
	opAuthorize = "authorize"
	opCapture   = "capture"
	opVoid      = "void"
	opRefund    = "refund"

	statePending = "pending"
	stateDone    = "done"
	stateFailed  = "failed"
)

// operation is a row of payment_operations: a provider call to make.
type operation struct {
	Key           string `db:"op_key"`
	PayableID     string `db:"payable_id"`
	Op            string `db:"op"`
	RefundID      string `db:"refund_id"`
	Amount        int64  `db:"amount"`
	Reason        string `db:"reason"`
	State         string `db:"state"`
	Outcome       string `db:"outcome"`
	Attempts      int    `db:"attempts"`
	CauseID       string `db:"cause_id"`
	CorrelationID string `db:"correlation_id"`
	TraceParent   string `db:"traceparent"` // the scheduling work's trace context; "" when untraced
}

// opKey returns the operation's key, which is also its provider idempotency key.
func opKey(payableID, op, refundID string) string {
	if refundID != "" {
		return payableID + ":" + op + ":" + refundID
	}
	return payableID + ":" + op
}

const operationColumns = `op_key, payable_id, op, refund_id, amount, reason, state, outcome, attempts, cause_id, correlation_id, traceparent`

// operation returns the operation with key, and whether there is one.
func (r repo) operation(ctx context.Context, q sqlx.ExtContext, key string) (operation, bool, error) {
	var o operation
	err := sqlx.GetContext(ctx, q, &o, q.Rebind(`SELECT `+operationColumns+` FROM payment_operations WHERE op_key = ?`), key)
	if errors.Is(err, sql.ErrNoRows) {
		return o, false, nil
	}
	if err != nil {
		return o, false, fmt.Errorf("payments: read operation %s: %w", key, err)
	}
	return o, true, nil
}

// schedule records o as pending and due now: a new operation, or one done before
// that must run again (a void re-armed by a late authorization). The cause of the
// work under ctx becomes the cause of the operation's events, and its span the
// parent of the operation's (see traceParent). A new operation is written held by
// holder when holder is not "" (jobs.Worker.Hold), and schedule then returns it
// as a claim would, with true; one re-armed keeps whatever holds it.
func (r repo) schedule(ctx context.Context, q sqlx.ExtContext, o operation, now time.Time, holder string, until int64) (operation, bool, error) {
	cause, _ := message.CauseFrom(ctx)
	ms := now.UnixMilli()
	o.State, o.Outcome, o.Attempts, o.CauseID, o.CorrelationID, o.TraceParent = statePending, "", 0, cause.ID, cause.CorrelationID, traceParent(ctx)
	var got struct {
		Owner   string `db:"lease_owner"`
		Created int64  `db:"created_at"`
	}
	err := sqlx.GetContext(ctx, q, &got, q.Rebind(`INSERT INTO payment_operations
		(op_key, payable_id, op, refund_id, amount, reason, state, next_attempt_at, cause_id, correlation_id, traceparent, created_at, updated_at,
		 lease_owner, lease_until)
		VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (op_key) DO UPDATE SET state = 'pending', outcome = '', next_attempt_at = excluded.next_attempt_at,
			updated_at = excluded.updated_at
		RETURNING lease_owner, created_at`),
		o.Key, o.PayableID, o.Op, o.RefundID, o.Amount, o.Reason, ms, o.CauseID, o.CorrelationID, o.TraceParent, ms, ms, holder, until)
	if err != nil {
		return o, false, fmt.Errorf("payments: schedule %s: %w", o.Key, err)
	}
	// Held only if inserted now: a re-armed operation this worker holds may be
	// running, and must not be handed over a second time.
	return o, holder != "" && got.Owner == holder && got.Created == ms, nil
}

// pendingRefunds returns the sum of payableID's refunds not yet made.
func (r repo) pendingRefunds(ctx context.Context, q sqlx.ExtContext, payableID string) (int64, error) {
	var n sql.NullInt64
	err := sqlx.GetContext(ctx, q, &n, q.Rebind(`SELECT SUM(amount) FROM payment_operations
		WHERE payable_id = ? AND op = 'refund' AND state = 'pending'`), payableID)
	return n.Int64, err
}

// hasPending reports whether payableID has a pending operation of kind op.
func (r repo) hasPending(ctx context.Context, q sqlx.ExtContext, payableID, op string) (bool, error) {
	var n int
	err := sqlx.GetContext(ctx, q, &n, q.Rebind(`SELECT COUNT(*) FROM payment_operations
		WHERE payable_id = ? AND op = ? AND state = 'pending'`), payableID, op)
	return n > 0, err
}

// wakePending makes payableID's pending operations due now (an operation waiting for
// the authorization's outcome need not wait for its next scan).
func (r repo) wakePending(ctx context.Context, q sqlx.ExtContext, payableID string, now time.Time) error {
	_, err := q.ExecContext(ctx, q.Rebind(`UPDATE payment_operations SET next_attempt_at = ?
		WHERE payable_id = ? AND state = 'pending' AND next_attempt_at > ?`), now.UnixMilli(), payableID, now.UnixMilli())
	return err
}

// operations is payment_operations as a job queue: a pending operation is a job,
// due at next_attempt_at. An attempt counts when it is claimed, so an operation
// resumed after a crash knows an earlier call may have reached the provider.
// Operations are never parked as dead: a capture, void or refund that may succeed
// later is tried until it does, and an answer the provider gives finishes it.
var operations = jobs.Table{
	Name:        "payment_operations",
	Key:         "op_key",
	Columns:     operationColumns,
	Live:        "state = 'pending'",
	Order:       "next_attempt_at",
	CountClaims: true,
	ErrorLen:    1000,
}

// finish ends o (done or failed, with why); the queue's Complete, in the same
// transaction, gives up its lease.
func (r repo) finish(ctx context.Context, q sqlx.ExtContext, o operation, state, outcome string, now time.Time) error {
	_, err := q.ExecContext(ctx, q.Rebind(`UPDATE payment_operations
		SET state = ?, outcome = ?, updated_at = ? WHERE op_key = ?`),
		state, outcome, now.UnixMilli(), o.Key)
	if err != nil {
		return fmt.Errorf("payments: finish %s: %w", o.Key, err)
	}
	return nil
}
