package provider

import (
	"context"
	"errors"

	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

// Simulated is the in-process provider: a psp.Simulator called directly. It
// behaves as the HTTP provider in front of the same simulator does, without the
// network.
type Simulated struct{ sim *psp.Simulator }

// NewSimulated returns the provider that sim plays.
func NewSimulated(sim *psp.Simulator) *Simulated { return &Simulated{sim: sim} }

// SetOutage starts (down) or ends the simulator's outage (psp.Simulator.SetOutage):
// while it lasts every call fails with a 503, a ClassRetryable error.
func (s *Simulated) SetOutage(down bool) { s.sim.SetOutage(down) }

// Outage reports whether the simulator's outage is on.
func (s *Simulated) Outage() bool { return s.sim.Outage() }

// Authorize implements Provider.
func (s *Simulated) Authorize(ctx context.Context, amount payments.Money, token, key string) (Authorization, error) {
	a, err := s.sim.Authorize(ctx, amount.Amount, amount.Currency, token, key)
	return fromPSPAuth(a), simError(err)
}

// Capture implements Provider.
func (s *Simulated) Capture(ctx context.Context, authID string, amount int64, key string) (Authorization, error) {
	a, err := s.sim.Capture(ctx, authID, amount, key)
	return fromPSPAuth(a), simError(err)
}

// Void implements Provider.
func (s *Simulated) Void(ctx context.Context, authID, key string) (Authorization, error) {
	a, err := s.sim.Void(ctx, authID, key)
	return fromPSPAuth(a), simError(err)
}

// Refund implements Provider.
func (s *Simulated) Refund(ctx context.Context, authID string, amount int64, key string) (Refund, error) {
	r, err := s.sim.Refund(ctx, authID, amount, key)
	return Refund{ID: r.ID, Amount: r.Amount}, simError(err)
}

// AuthorizationByKey implements Provider.
func (s *Simulated) AuthorizationByKey(ctx context.Context, key string) (Authorization, error) {
	a, err := s.sim.AuthorizationByKey(ctx, key)
	return fromPSPAuth(a), simError(err)
}

func fromPSPAuth(a psp.Authorization) Authorization {
	return Authorization{ID: a.ID, Amount: a.Amount, Currency: a.Currency, State: a.State, Captured: a.Captured}
}

// simError classifies the simulator's errors as the HTTP adapter classifies the
// same errors coming over the wire.
func simError(err error) error {
	if err == nil {
		return nil
	}
	var pe *psp.Error
	if errors.As(err, &pe) {
		return fromProvider(pe.Status, pe.Code, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fromContext(err)
	}
	return &Error{Class: ClassRetryable, Err: err}
}
