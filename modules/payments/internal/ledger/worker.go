package ledger

import (
	"context"
	"errors"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/provider"
)

// Notify wakes the worker pool; it never blocks.
func (s *Service) Notify() { s.worker.Notify() }

// Start runs the worker pool until Stop: it claims due operations (at once on a
// Notify, else every PollInterval) and makes up to Workers provider calls at once,
// renewing their leases while they run. Operations left pending by a previous
// run — a crash included — are among the due ones as soon as their lease ends.
func (s *Service) Start() { s.worker.Start() }

// Stop stops claiming, lets the calls in flight finish (until ctx ends, when they
// are cancelled and their operations stay pending), and releases this pool's
// leases so that the next start resumes those operations at once.
func (s *Service) Stop(ctx context.Context) error { return s.worker.Stop(ctx) }

// perform makes o's provider call and records its outcome, in the trace of the
// work that scheduled o. A call cut short by Stop leaves o pending, to be resumed
// with the same key.
func (s *Service) perform(ctx context.Context, _ *jobs.Queue, o operation) {
	ctx = bus.WithModule(message.WithCause(ctx, message.Cause{ID: o.CauseID, CorrelationID: o.CorrelationID}), "payments")
	ctx, end := s.traceOperation(ctx, o)
	var err error
	defer func() { end(err) }()
	p, err := s.repo.payment(ctx, s.db, o.PayableID, false)
	if err == nil {
		switch o.Op {
		case opAuthorize:
			err = s.authorize(ctx, o, p)
		case opCapture:
			err = s.capture(ctx, o, p)
		case opVoid:
			err = s.void(ctx, o, p)
		case opRefund:
			err = s.refund(ctx, o, p)
		}
	}
	if err == nil || ctx.Err() != nil {
		return
	}
	// The outcome could not be recorded: try again later, with the same key.
	s.log.ErrorContext(ctx, "payment operation failed; will retry", "op", o.String(), "err", err)
	if rerr := s.retryLater(ctx, o, err); rerr != nil {
		s.log.ErrorContext(ctx, "rescheduling payment operation failed", "op", o.String(), "err", rerr)
	}
}

// record runs fn in a transaction on the payment of o, locked, and finishes o in
// the same transaction. It runs even while the pool stops: the provider has
// answered, and the answer should not be thrown away.
func (s *Service) record(ctx context.Context, o operation, fn func(tx *store.Tx, p *payment, now time.Time) (state, outcome string, err error)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return store.InTx(ctx, s.db, func(tx *store.Tx) error {
		p, err := s.repo.payment(ctx, tx, o.PayableID, true)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		state, outcome, err := fn(tx, &p, now)
		if err != nil {
			return err
		}
		if err := s.repo.finish(ctx, tx, o, state, outcome, now); err != nil {
			return err
		}
		// Another worker holds o now (this one's lease ran out): its call, made
		// with the same key, records the same answer.
		return s.worker.Queue().Complete(ctx, tx, o.Key)
	})
}

// retryLater puts o back in line after a backoff that grows with its attempts.
func (s *Service) retryLater(ctx context.Context, o operation, cause error) error {
	_, err := s.worker.Queue().Fail(context.WithoutCancel(ctx), s.db, o.Key, o.Attempts, cause)
	return err
}

// errWaitingForAuthorization is why a capture is put off: its authorization has
// not answered yet.
var errWaitingForAuthorization = errors.New("waiting for the authorization")

// declineReason returns why an authorization that got no answer is declined.
func declineReason(err error) string {
	var pe *provider.Error
	if errors.As(err, &pe) {
		switch {
		case pe.Class == provider.ClassDeclined:
			return pe.Reason
		case pe.Class == provider.ClassUnavailable:
			return payments.DeclineProviderUnavailable
		case pe.Timeout:
			return payments.DeclineProviderTimeout
		}
	}
	return payments.DeclineProviderError
}

func (s *Service) authorize(ctx context.Context, o operation, p payment) error {
	if p.Status != string(payments.StatusAuthorizing) {
		// Voided before the call was made. An earlier attempt (before a crash) may
		// have reached the provider: make sure nothing is held.
		return s.record(ctx, o, func(tx *store.Tx, p *payment, now time.Time) (string, string, error) {
			if o.Attempts > 1 {
				return stateDone, "", s.scheduleVoid(ctx, tx, p, now)
			}
			return stateDone, "", nil
		})
	}
	a, err := s.prov.Authorize(ctx, p.money(p.Amount), p.Token, o.Key)
	if err != nil && ctx.Err() != nil {
		return nil // stopping: resumed with the same key at the next start
	}
	if err != nil && provider.ClassOf(err) != provider.ClassDeclined {
		s.log.WarnContext(ctx, "payment authorization got no answer", "payable_id", o.PayableID, "err", err)
	}
	return s.record(ctx, o, func(tx *store.Tx, p *payment, now time.Time) (string, string, error) {
		voided := p.Status == string(payments.StatusVoided)
		switch class := provider.ClassOf(err); {
		case err == nil && voided:
			// The payable was voided while the call was out: release what it held.
			p.Authorized, p.ProviderAuthID, p.Token = p.Amount, a.ID, ""
			if err := s.repo.updatePayment(ctx, tx, p, now); err != nil {
				return "", "", err
			}
			if err := s.repo.addEntry(ctx, tx, p.entry(kindAuthorized, p.Amount, a.ID, "", now)); err != nil {
				return "", "", err
			}
			return stateDone, "", s.scheduleVoid(ctx, tx, p, now)
		case err == nil:
			e, err := p.authorize(a.ID, now)
			if err != nil {
				return "", "", err
			}
			if err := s.repo.updatePayment(ctx, tx, p, now); err != nil {
				return "", "", err
			}
			if err := s.repo.addEntry(ctx, tx, e); err != nil {
				return "", "", err
			}
			// A capture that waits for this authorization may go now.
			if err := s.repo.wakePending(ctx, tx, p.PayableID, now); err != nil {
				return "", "", err
			}
			tx.OnCommit(s.Notify)
			return stateDone, "", s.ob.Add(ctx, tx, authorizedEvent(*p))
		default:
			reason := declineReason(err)
			if !voided {
				p.Status, p.Reason, p.Token = string(payments.StatusDeclined), reason, ""
				if err := s.repo.updatePayment(ctx, tx, p, now); err != nil {
					return "", "", err
				}
				if err := s.ob.Add(ctx, tx, declinedEvent(*p)); err != nil {
					return "", "", err
				}
			}
			if class == provider.ClassRetryable || class == provider.ClassUnavailable {
				// No answer is not a no: the provider may hold the amount. Void by key.
				return stateDone, reason, s.scheduleVoid(ctx, tx, p, now)
			}
			return stateDone, reason, nil
		}
	})
}

// scheduleVoid makes sure the provider releases whatever it holds for p: the void
// operation (re-armed if it ran before) voids p's authorization, or looks it up by
// the authorize call's key.
func (s *Service) scheduleVoid(ctx context.Context, tx *store.Tx, p *payment, now time.Time) error {
	return s.schedule(ctx, tx, operation{Key: opKey(p.PayableID, opVoid, ""), PayableID: p.PayableID, Op: opVoid}, now)
}

func (s *Service) capture(ctx context.Context, o operation, p payment) error {
	switch payments.Status(p.Status) {
	case payments.StatusAuthorizing:
		// Wait for the authorization; its outcome wakes this operation.
		return s.worker.Queue().RetryAt(context.WithoutCancel(ctx), s.db, o.Key, o.Attempts, time.Now().Add(s.opts.PollInterval),
			errWaitingForAuthorization)
	case payments.StatusAuthorized:
	case payments.StatusCaptured, payments.StatusRefunded:
		return s.record(ctx, o, func(*store.Tx, *payment, time.Time) (string, string, error) { return stateDone, "", nil })
	default:
		s.log.WarnContext(ctx, "capture dropped: nothing is authorized", "payable_id", o.PayableID, "status", p.Status)
		return s.record(ctx, o, func(*store.Tx, *payment, time.Time) (string, string, error) {
			return stateFailed, "not_authorized", nil
		})
	}
	_, err := s.prov.Capture(ctx, p.ProviderAuthID, o.Amount, o.Key)
	if err != nil {
		return s.callFailed(ctx, o, err, nil)
	}
	return s.record(ctx, o, func(tx *store.Tx, p *payment, now time.Time) (string, string, error) {
		es, err := p.capture(o.Amount, now)
		if err != nil {
			return "", "", err
		}
		if err := s.repo.updatePayment(ctx, tx, p, now); err != nil {
			return "", "", err
		}
		for _, e := range es {
			if err := s.repo.addEntry(ctx, tx, e); err != nil {
				return "", "", err
			}
		}
		return stateDone, "", s.ob.Add(ctx, tx, capturedEvent(*p))
	})
}

func (s *Service) void(ctx context.Context, o operation, p payment) error {
	if p.Captured > 0 {
		s.log.ErrorContext(ctx, "void dropped: the payment is captured", "payable_id", o.PayableID)
		return s.record(ctx, o, func(*store.Tx, *payment, time.Time) (string, string, error) { return stateFailed, "captured", nil })
	}
	authID := p.ProviderAuthID
	if authID == "" {
		a, err := s.prov.AuthorizationByKey(ctx, opKey(o.PayableID, opAuthorize, ""))
		if provider.ClassOf(err) == provider.ClassNotFound {
			// The provider holds nothing for the payable.
			return s.record(ctx, o, func(*store.Tx, *payment, time.Time) (string, string, error) { return stateDone, "", nil })
		}
		if err != nil {
			return s.callFailed(ctx, o, err, nil)
		}
		authID = a.ID
	}
	a, err := s.prov.Void(ctx, authID, o.Key)
	if err != nil {
		return s.callFailed(ctx, o, err, nil)
	}
	return s.record(ctx, o, func(tx *store.Tx, p *payment, now time.Time) (string, string, error) {
		announce := p.Status == string(payments.StatusAuthorized)
		if ok, err := s.repo.hasEntry(ctx, tx, p.PayableID, kindVoided); err != nil || ok {
			return stateDone, "", err // voided before (a re-armed void found the same authorization)
		}
		status := p.Status
		e, err := p.void(authID, o.Reason, now)
		if err != nil {
			return "", "", err
		}
		e.Amount = a.Amount // what the provider released, also when the ledger never saw it held
		if !announce {
			p.Status = status // a safety void: the payment stays declined or voided as it was
		}
		if err := s.repo.updatePayment(ctx, tx, p, now); err != nil {
			return "", "", err
		}
		if err := s.repo.addEntry(ctx, tx, e); err != nil {
			return "", "", err
		}
		if announce {
			return stateDone, "", s.ob.Add(ctx, tx, voidedEvent(*p))
		}
		return stateDone, "", nil
	})
}

func (s *Service) refund(ctx context.Context, o operation, p payment) error {
	failed := func(tx *store.Tx, p *payment, reason string) (string, string, error) {
		return stateFailed, reason, s.ob.Add(ctx, tx, payments.RefundFailedEvent.With(payments.RefundFailed{
			PayableID: p.PayableID, Payable: p.kind(), CustomerID: p.CustomerID, RefundID: o.RefundID, Reason: reason}))
	}
	if p.Captured-p.Refunded < o.Amount {
		return s.record(ctx, o, func(tx *store.Tx, p *payment, _ time.Time) (string, string, error) {
			return failed(tx, p, RefundExceedsCaptured)
		})
	}
	r, err := s.prov.Refund(ctx, p.ProviderAuthID, o.Amount, o.Key)
	if err != nil {
		return s.callFailed(ctx, o, err, func(tx *store.Tx, p *payment, _ time.Time) (string, string, error) {
			return failed(tx, p, RefundRefused)
		})
	}
	return s.record(ctx, o, func(tx *store.Tx, p *payment, now time.Time) (string, string, error) {
		e, err := p.refund(o.Amount, r.ID, o.Reason, now)
		if err != nil {
			return "", "", err
		}
		if err := s.repo.updatePayment(ctx, tx, p, now); err != nil {
			return "", "", err
		}
		if err := s.repo.addEntry(ctx, tx, e); err != nil {
			return "", "", err
		}
		return stateDone, "", s.ob.Add(ctx, tx, refundIssuedEvent(*p, o))
	})
}

// callFailed handles a failed capture, void or refund call: one that may succeed
// later (no answer, the breaker open) is tried again after a backoff — such an
// operation is never given up; one the provider refused is finished as failed,
// with refused's effect when it is not nil.
func (s *Service) callFailed(ctx context.Context, o operation, err error, refused func(*store.Tx, *payment, time.Time) (string, string, error)) error {
	if ctx.Err() != nil {
		return nil // stopping: resumed at the next start
	}
	switch provider.ClassOf(err) {
	case provider.ClassRetryable, provider.ClassUnavailable:
		s.log.WarnContext(ctx, "payment provider call failed; will retry", "op", o.String(), "err", err)
		return s.retryLater(ctx, o, err)
	}
	s.log.ErrorContext(ctx, "payment provider refused the call", "op", o.String(), "err", err)
	if refused == nil {
		refused = func(*store.Tx, *payment, time.Time) (string, string, error) { return stateFailed, err.Error(), nil }
	}
	return s.record(ctx, o, refused)
}
