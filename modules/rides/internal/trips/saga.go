package trips

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
)

// Consumer is the name under which the rides module receives events.
const Consumer = "rides"

// Subscriptions returns the saga's subscriptions to payments' and fleet's events.
// Each runs in one transaction with its inbox record, so a redelivered event has no
// second effect. Payments' events of other payables (orders) are skipped before
// any transaction.
func (s *Service) Subscriptions() []bus.Subscription {
	ride := func(id string, p payments.Payable) string {
		if p != payments.PayableRide {
			return ""
		}
		return id
	}
	return []bus.Subscription{
		on(s, payments.PaymentAuthorizedEvent, func(m payments.PaymentAuthorized) string { return ride(m.PayableID, m.Payable) }),
		on(s, payments.PaymentDeclinedEvent, func(m payments.PaymentDeclined) string { return ride(m.PayableID, m.Payable) }),
		on(s, payments.PaymentCapturedEvent, func(m payments.PaymentCaptured) string { return ride(m.PayableID, m.Payable) }),
		on(s, payments.PaymentVoidedEvent, func(m payments.PaymentVoided) string { return ride(m.PayableID, m.Payable) }),
		on(s, fleet.DriverAvailabilityChangedEvent, func(m fleet.DriverAvailabilityChanged) string {
			if m.Status != fleet.StatusBusy {
				return "" // only an engagement concerns a ride's saga
			}
			return m.RideID
		}),
		on(s, fleet.DriverEngagementFailedEvent, func(m fleet.DriverEngagementFailed) string { return m.RideID }),
	}
}

// on subscribes to e: an event rideOf maps to a ride goes to its saga; one it maps
// to "" is not the rides module's and is acknowledged without a transaction.
func on[T any](s *Service, e message.Event[T], rideOf func(T) string) bus.Subscription {
	return outbox.SubscribeEventFor(s.db, e, Consumer, rideOf, func(ctx context.Context, tx *store.Tx, m message.Message[T], id string) error {
		_, err := s.apply(ctx, tx, id, m.Body)
		if errors.Is(err, rides.ErrRideNotFound) {
			// Not a ride of ours: nothing to do, and retrying would not change that.
			s.log.WarnContext(ctx, "event for an unknown ride", "type", e.Name(), "ride_id", id, "message_id", m.ID)
			return nil
		}
		return err
	})
}

// sagaTimeouts is the dispatches table as a job queue: a saga waiting on a step is
// a job, due at its deadline (which every step moves). A saga in its trip waits on
// its driver, not on time, and is not a job. A failed timeout is retried with
// backoff and never given up: the saga's own bounds decide when it gives up.
var sagaTimeouts = jobs.Table{
	Name:    "dispatches",
	Key:     "ride_id",
	Columns: "ride_id, sweep_attempts",
	Live: fmt.Sprintf("state IN ('%s', '%s', '%s', '%s')", rides.DispatchAuthorizing, rides.DispatchOffering,
		rides.DispatchEngaging, rides.DispatchSettling),
	Order:    "deadline",
	Due:      "deadline",
	Attempts: "sweep_attempts",
	Unit:     time.Microsecond,
	Done:     "sweep_attempts = 0",
}

// dueSaga is a saga the sweep claimed.
type dueSaga struct {
	RideID   string `db:"ride_id"`
	Failures int    `db:"sweep_attempts"`
}

// newSweep returns the sweep: a jobs.Worker over the due sagas — a search for
// drivers, an offer expiring, a step timing out — that also purges old ride keys
// (hourly).
func (s *Service) newSweep() *jobs.Worker[dueSaga] {
	q := jobs.New(s.db, sagaTimeouts, jobs.Policy{BaseBackoff: time.Second, MaxBackoff: time.Minute})
	purge := jobs.Every(time.Hour, func(ctx context.Context) {
		if n, err := s.repo.PurgeKeys(ctx, s.db, s.now().Add(-s.opts.KeyRetention)); err != nil && ctx.Err() == nil {
			s.log.Warn("purging ride keys failed", "err", err)
		} else if n > 0 {
			s.log.Info("purged ride keys", "count", n)
		}
	})
	return jobs.NewWorker(q, jobs.Config{Name: "dispatch sweep", PollInterval: s.opts.SweepEvery, Priority: true, Upkeep: purge},
		s.log, func(ctx context.Context, q *jobs.Queue, batch []dueSaga) error { return s.due(ctx, q, batch[0]) })
}

// due gives saga d what its deadline calls for, in one transaction, if it is still
// due (an answer may have moved it since it was claimed): a searching saga the
// drivers found near the pickup (asked outside the transaction), any other its
// Timeout. A failure is put off by a backoff, so it does not hold up the others.
func (s *Service) due(ctx context.Context, q *jobs.Queue, d dueSaga) error {
	var found *dispatch.Candidates
	if sg, err := s.repo.GetSaga(ctx, s.db, d.RideID, false); err == nil && sg.Searching() {
		c := s.search(ctx, sg)
		found = &c
	}
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		sg, err := s.repo.GetSaga(ctx, tx, d.RideID, true)
		if err != nil {
			return err
		}
		if !sg.Terminal() && !sg.Deadline.After(s.now()) {
			var msg any = dispatch.Timeout{}
			if sg.Searching() && found != nil {
				msg = *found
			}
			if _, err := s.apply(ctx, tx, d.RideID, msg); err != nil {
				return err
			}
		}
		return q.Complete(ctx, tx, d.RideID)
	})
	if err == nil || errors.Is(err, jobs.ErrLeaseLost) {
		return nil
	}
	if !errors.Is(err, errOfferTaken) {
		s.log.ErrorContext(ctx, "dispatch step failed; put off", "ride_id", d.RideID, "err", err)
	}
	// errOfferTaken: a driver found was offered another ride meanwhile; the next
	// search, a moment later, sees that offer and skips the driver.
	if _, ferr := q.Fail(context.WithoutCancel(ctx), s.db, d.RideID, d.Failures+1, err); ferr != nil {
		return errors.Join(err, ferr)
	}
	return nil
}

// search asks fleet for the available drivers nearest the pickup, not among those
// who declined, and leaves out those with an open offer or an active ride here.
// A fleet that does not answer finds nobody (the saga searches again later).
func (s *Service) search(ctx context.Context, sg dispatch.Saga) dispatch.Candidates {
	r, err := s.repo.GetRide(ctx, s.db, sg.RideID, false)
	if err != nil {
		return dispatch.Candidates{}
	}
	exclude := sg.Declined
	if len(exclude) > fleet.MaxNearest*4 {
		exclude = exclude[len(exclude)-fleet.MaxNearest*4:]
	}
	near, err := s.fleet.FindNearest(ctx, fleet.FindNearest{Point: r.Pickup, RadiusMeters: s.opts.SearchRadius,
		Limit: min(s.opts.Candidates, fleet.MaxNearest), Exclude: exclude})
	if err != nil {
		s.log.WarnContext(ctx, "fleet did not answer a search", "ride_id", sg.RideID, "err", err)
		return dispatch.Candidates{}
	}
	ids := make([]string, len(near.Drivers))
	for i, c := range near.Drivers {
		ids[i] = c.DriverID
	}
	engaged, err := s.repo.Engaged(ctx, s.db, ids)
	if err != nil {
		return dispatch.Candidates{}
	}
	var out dispatch.Candidates
	for _, c := range near.Drivers {
		if !engaged[c.DriverID] {
			out.Drivers = append(out.Drivers, c)
		}
	}
	return out
}

// Sweep gives every saga past its deadline its due step, one saga per transaction,
// and returns how many it handled (at most 100): what the started sweep does on a
// loop.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	const batch = 100
	n := 0
	for n < batch && ctx.Err() == nil {
		got, err := s.sweep.Pass(ctx, nil)
		n += got
		if got == 0 || err != nil {
			return n, err
		}
	}
	return n, nil
}
