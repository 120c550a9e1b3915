package notices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agora-commerce/agora/internal/backoff"
	"github.com/agora-commerce/agora/internal/bus"
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
	BatchSize     int           // due emails looked up at once (default 100)
	LookupTimeout time.Duration // bound on asking identity for the address (default 5s)
	SendTimeout   time.Duration // bound on one SMTP exchange (default 30s)
	// Lease is how long a claimed email is left to its sender before another may
	// take it (default: LookupTimeout + SendTimeout + 30s, so a live sender keeps it).
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
	if c.BatchSize <= 0 {
		c.BatchSize = 100
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

// Emailer sends the pending emails of a notifications database: woken when a
// notification commits (Notify) and on a timer, it claims each due email, asks
// identity for the customer's address over the bus, sends it, and records the
// outcome — never inside a transaction, at most Concurrency at once. A failed
// attempt is retried with backoff; after MaxAttempts, or at once when the failure
// is permanent (the server refused the recipient for good, the customer does not
// exist), the email is marked failed. The notification itself is never touched.
//
// Several Emailers (replicas) may share a database: a claim is a conditional
// update, so each attempt is made by one of them.
type Emailer struct {
	db     *store.DB
	repo   Repo
	mailer Mailer
	cfg    EmailConfig
	log    *slog.Logger
	wake   chan struct{}

	mu    sync.Mutex
	stop  context.CancelFunc // ends the loop: no new claims
	abort context.CancelFunc // cancels the sends in progress
	done  chan struct{}
}

// NewEmailer returns an Emailer of db's notifications, sending through m. Start it
// with Start or drive it with SendDue.
func NewEmailer(db *store.DB, m Mailer, cfg EmailConfig, log *slog.Logger) *Emailer {
	return &Emailer{db: db, mailer: m, cfg: cfg.withDefaults(), log: log.With("module", db.Module, "component", "emailer"),
		wake: make(chan struct{}, 1)}
}

// Notify wakes the emailer; it never blocks.
func (e *Emailer) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Start runs the emailer in a goroutine, looking addresses up through b, until Stop.
func (e *Emailer) Start(b *bus.Bus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stop != nil {
		return
	}
	// Sends run under sendCtx, which Stop cancels only when its own context ends,
	// so that stopping lets the sends in progress finish.
	sendCtx, abort := context.WithCancel(context.Background())
	ctx, cancel := context.WithCancel(sendCtx)
	e.stop, e.abort, e.done = cancel, abort, make(chan struct{})
	go e.run(ctx, sendCtx, b)
}

// Stop stops the emailer, letting the sends in progress finish (bounded by ctx).
// An email whose send is cut short stays claimed until its lease ends, and is then
// sent again (by this process after a restart, or by another).
func (e *Emailer) Stop(ctx context.Context) error {
	e.mu.Lock()
	stop, abort, done := e.stop, e.abort, e.done
	e.stop = nil
	e.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	defer abort()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Emailer) run(ctx, sendCtx context.Context, b *bus.Bus) {
	defer close(e.done)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	slots := make(chan struct{}, e.cfg.Concurrency)
	ticker := time.NewTicker(e.cfg.PollInterval)
	defer ticker.Stop()
	for {
		n, err := e.pass(ctx, sendCtx, b, slots, &inflight)
		if err != nil && ctx.Err() == nil {
			e.log.Warn("email pass failed", "err", err)
		}
		if n >= e.cfg.BatchSize {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-ticker.C:
		}
	}
}

// SendDue sends every email due now, at most Concurrency at once, and returns when
// they are all sent or rescheduled: one pass of what Start does on a loop.
func (e *Emailer) SendDue(ctx context.Context, b *bus.Bus) error {
	var inflight sync.WaitGroup
	_, err := e.pass(ctx, ctx, b, make(chan struct{}, e.cfg.Concurrency), &inflight)
	inflight.Wait()
	return err
}

// pass claims up to BatchSize due emails and starts a send for each, waiting for a
// free slot before each claim (so that nothing is claimed that is not being sent).
// It returns how many were due.
func (e *Emailer) pass(ctx, sendCtx context.Context, b *bus.Bus, slots chan struct{}, inflight *sync.WaitGroup) (int, error) {
	ids, err := e.repo.DueEmails(ctx, e.db, time.Now(), e.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return len(ids), nil
		}
		now := time.Now()
		c, ok, err := e.repo.ClaimEmail(ctx, e.db, id, now, now.Add(e.cfg.Lease))
		if err != nil || !ok {
			<-slots
			if err != nil {
				return len(ids), err
			}
			continue // another sender has it, or it is no longer pending
		}
		inflight.Add(1)
		go func() {
			defer func() { <-slots; inflight.Done() }()
			e.send(sendCtx, b, c)
		}()
	}
	return len(ids), nil
}

// send makes one attempt at a claimed email and records its outcome.
func (e *Emailer) send(ctx context.Context, b *bus.Bus, c EmailClaim) {
	err := e.attempt(ctx, b, c)
	// The outcome is recorded even when ctx ended meanwhile: the attempt was made.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil {
		if err := e.repo.EmailSent(rctx, e.db, c.ID); err != nil {
			e.log.Error("email sent but not recorded; it will be sent again", "notification", c.ID, "err", err)
		}
		return
	}
	var retryAt time.Time
	if !mailer.IsPermanent(err) && c.Attempts < e.cfg.MaxAttempts {
		retryAt = time.Now().Add(backoff.Delay(e.cfg.BaseBackoff, e.cfg.MaxBackoff, c.Attempts))
	}
	if retryAt.IsZero() {
		e.log.Warn("email failed for good", "notification", c.ID, "attempts", c.Attempts, "err", err)
	} else {
		e.log.Info("email failed; will retry", "notification", c.ID, "attempts", c.Attempts, "retry_at", retryAt, "err", err)
	}
	if rerr := e.repo.EmailFailed(rctx, e.db, c.ID, err, retryAt); rerr != nil {
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
const signature = "\n\n-- \nAgora. You receive this email because you placed an order with us.\n"
