package notices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/notifications/internal/mailer"
)

// Mailer sends one email; *mailer.Mailer is one. An error for which
// mailer.IsPermanent is true is not retried.
type Mailer interface {
	Send(ctx context.Context, m mailer.Message) error
}

// EmailConfig tunes an Emailer. Zero values take the defaults.
type EmailConfig struct {
	Concurrency   int           // emails sent at once (default 4)
	MaxAttempts   int           // attempts before an email is marked failed (default 8)
	BaseBackoff   time.Duration // delay before the first retry, doubled per attempt with jitter (default 30s)
	MaxBackoff    time.Duration // cap on the retry delay (default 1h)
	PollInterval  time.Duration // how often to look for due emails without a wake-up (default 10s)
	LookupTimeout time.Duration // bound on asking identity for the address (default 5s)
	SendTimeout   time.Duration // bound on one SMTP exchange (default 30s)
	// Lease is how long a claimed email is left to its sender before another may
	// take it (default: LookupTimeout + SendTimeout + 30s); a live sender renews it.
	Lease time.Duration
}

func (c EmailConfig) withDefaults() EmailConfig {
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = 30 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Hour
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 10 * time.Second
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = 5 * time.Second
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 30 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = c.LookupTimeout + c.SendTimeout + 30*time.Second
	}
	return c
}

// EmailJobs is the notifications table as a job queue: a notification whose
// email is pending is a job, due at email_next_at, oldest first. An attempt counts
// when it is claimed (a sender that dies has used one); a sent email is 'sent', one
// given up on 'failed', and the notification itself is never touched.
var EmailJobs = jobs.Table{
	Name:        "notifications",
	Key:         "id",
	Columns:     "id, customer_id, title, body, email_attempts",
	Live:        "email_status = 'pending'",
	Order:       "email_next_at, id",
	Due:         "email_next_at",
	Attempts:    "email_attempts",
	LastError:   "email_error",
	CountClaims: true,
	Done:        "email_status = 'sent', email_error = ''",
	Dead:        "email_status = 'failed'",
	ErrorLen:    maxErrorLen,
}

// Emailer sends the pending emails of a notifications database: a jobs.Worker,
// woken when a notification commits (Notify) and on a timer, claims each due
// email, asks identity for the customer's address over the bus, sends it, and
// records the outcome — never inside a transaction, at most Concurrency at once.
// A failed attempt is retried with backoff; after MaxAttempts, or at once when the
// failure is permanent (the server refused the recipient for good, the customer
// does not exist), the email is marked failed.
//
// Several Emailers (replicas) may share a database: each email is claimed under a
// lease, so each attempt is made by one of them.
type Emailer struct {
	mailer Mailer
	cfg    EmailConfig
	log    *slog.Logger
	worker *jobs.Worker[EmailClaim]
	bus    atomic.Pointer[bus.Bus] // set by Start
}

// EmailClaim is a pending email one sender has taken.
type EmailClaim struct {
	ID         string `db:"id"`
	CustomerID string `db:"customer_id"`
	Title      string `db:"title"`
	Body       string `db:"body"`
	Attempts   int    `db:"email_attempts"` // this attempt included
}

// NewEmailer returns an Emailer of db's notifications, sending through m. Start it
// with Start or drive it with SendDue.
func NewEmailer(db *store.DB, m Mailer, cfg EmailConfig, log *slog.Logger) *Emailer {
	cfg = cfg.withDefaults()
	e := &Emailer{mailer: m, cfg: cfg, log: log.With("module", db.Module, "component", "emailer")}
	q := jobs.New(db, EmailJobs, jobs.Policy{Lease: cfg.Lease, MaxAttempts: cfg.MaxAttempts,
		BaseBackoff: cfg.BaseBackoff, MaxBackoff: cfg.MaxBackoff})
	e.worker = jobs.NewWorker(q, jobs.Config{Name: "emailer", Concurrency: cfg.Concurrency, PollInterval: cfg.PollInterval},
		e.log, func(ctx context.Context, q *jobs.Queue, batch []EmailClaim) error {
			e.send(ctx, q, e.bus.Load(), batch[0])
			return nil
		})
	return e
}

// Notify wakes the emailer; it never blocks.
func (e *Emailer) Notify() { e.worker.Notify() }

// Start runs the emailer in a goroutine, looking addresses up through b, until Stop.
func (e *Emailer) Start(b *bus.Bus) {
	e.bus.Store(b)
	e.worker.Start()
}

// Stop stops the emailer, letting the sends in progress finish (bounded by ctx,
// then cancelled), and releases the emails it holds: an email whose send was cut
// short is sent again by the next sender to look.
func (e *Emailer) Stop(ctx context.Context) error { return e.worker.Stop(ctx) }

// SendDue sends every email due now, at most Concurrency at once, looking
// addresses up through b, and returns when they are all sent or rescheduled: what
// Start does on a loop.
func (e *Emailer) SendDue(ctx context.Context, b *bus.Bus) error {
	for {
		n, err := e.worker.Pass(ctx, func(ctx context.Context, q *jobs.Queue, batch []EmailClaim) error {
			e.send(ctx, q, b, batch[0])
			return nil
		})
		if err != nil || n < e.cfg.Concurrency {
			return err
		}
	}
}

// send makes one attempt at a claimed email and records its outcome.
func (e *Emailer) send(ctx context.Context, q *jobs.Queue, b *bus.Bus, c EmailClaim) {
	err := e.attempt(ctx, b, c)
	// The outcome is recorded even when ctx ended meanwhile: the attempt was made.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	db := q.DB()
	if err == nil {
		if err := q.Complete(rctx, db, c.ID); err != nil {
			e.log.Error("email sent but not recorded; it will be sent again", "notification", c.ID, "err", err)
		}
		return
	}
	var rerr error
	if mailer.IsPermanent(err) {
		e.log.Warn("email failed for good", "notification", c.ID, "attempts", c.Attempts, "err", err)
		rerr = q.Bury(rctx, db, c.ID, c.Attempts, err)
	} else {
		var out jobs.Outcome
		out, rerr = q.Fail(rctx, db, c.ID, c.Attempts, err)
		if out.Dead {
			e.log.Warn("email failed for good", "notification", c.ID, "attempts", c.Attempts, "err", err)
		} else {
			e.log.Info("email failed; will retry", "notification", c.ID, "attempts", c.Attempts, "retry_in", out.RetryIn, "err", err)
		}
	}
	if rerr != nil {
		e.log.Error("email failure not recorded; it will be retried when its claim ends", "notification", c.ID, "err", rerr)
	}
}

// attempt looks the customer's address up and sends the email. Errors that no
// retry can fix satisfy mailer.IsPermanent.
func (e *Emailer) attempt(ctx context.Context, b *bus.Bus, c EmailClaim) error {
	lctx, cancel := context.WithTimeout(ctx, e.cfg.LookupTimeout)
	u, err := bus.Call(lctx, b, identity.GetUserRequest, identity.GetUser{ID: c.CustomerID})
	cancel()
	if errors.Is(err, identity.ErrUserNotFound) {
		return mailer.Permanent(fmt.Errorf("customer %s has no account: %w", c.CustomerID, err))
	}
	if err != nil {
		return fmt.Errorf("look up the address of customer %s: %w", c.CustomerID, err)
	}
	sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
	defer cancel()
	return e.mailer.Send(sctx, mailer.Message{To: u.Email, Subject: c.Title, Body: c.Body + signature,
		MessageID: c.ID + "@agora.notifications"})
}

// signature ends every email.
const signature = "\n\n-- \nAgora. You receive this email because you placed an order or took a ride with us.\n"
