package notices_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/notifications"
	"github.com/agora-commerce/agora/modules/notifications/internal/mailer"
	"github.com/agora-commerce/agora/modules/notifications/internal/notices"
	"github.com/agora-commerce/agora/modules/notifications/internal/smtptest"
	"github.com/agora-commerce/agora/modules/orders"
)

const password = "mail-p4ss-w0rd"

// identityStub answers identity.GetUser at the bus boundary, as the identity module
// would: the accounts it knows, ErrUserNotFound for others.
func identityStub(emails map[string]string) bus.RequestHandler {
	return bus.Handle(identity.GetUserRequest, func(_ context.Context, q identity.GetUser) (identity.User, error) {
		email, ok := emails[q.ID]
		if !ok {
			return identity.User{}, identity.ErrUserNotFound
		}
		return identity.User{ID: q.ID, Email: email, Role: identity.RoleCustomer}, nil
	})

}

// emailRig is a notifications database whose emailer sends to a real SMTP server.
type emailRig struct {
	h       *modhost.Host
	srv     *smtptest.Server
	emailer *notices.Emailer
	bus     *bus.Bus
	log     *testlog.Recorder
}

func newEmailRig(t *testing.T, h *modhost.Host, opts smtptest.Options, cfg notices.EmailConfig) *emailRig {
	t.Helper()
	opts.User, opts.Password = "agora", password
	srv := smtptest.Start(t, opts)
	m, err := mailer.New(mailer.Config{URL: srv.URL(), From: "Agora <shop@example.com>", Timeout: 5 * time.Second, TLSConfig: srv.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	rec := testlog.New(slog.LevelDebug)
	e := notices.NewEmailer(h.DB, m, cfg, rec.Logger())
	svc := notices.NewService(h.DB, e)
	b := newBus(t, svc, identityStub(map[string]string{ada: "ada@example.com"}))
	return &emailRig{h: h, srv: srv, emailer: e, bus: b, log: rec}
}

func (r *emailRig) start(t *testing.T) {
	r.emailer.Start(r.bus)
	t.Cleanup(func() {
		if err := r.emailer.Stop(context.Background()); err != nil {
			t.Errorf("stop emailer: %v", err)
		}
	})
}

func (r *emailRig) emailState(t *testing.T, id string) notices.EmailState {
	t.Helper()
	s, err := notices.Repo{}.Email(t.Context(), r.h.DB, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// confirm publishes an OrderConfirmed of customer and returns its notification.
func (r *emailRig) confirm(t *testing.T, customer string) (orders.Order, notifications.Notification) {
	t.Helper()
	o := order(bus.NewID(), customer, orders.StatusConfirmed, "")
	publish(t, r.bus, orders.OrderConfirmedEvent.With(orders.OrderConfirmed{Order: o}), bus.NewID())
	for _, n := range list(t, r.bus, customer) {
		if n.OrderID == o.ID {
			return o, n
		}
	}
	t.Fatalf("no notification for order %s", o.ID)
	return o, notifications.Notification{}
}

// TestEmailIsSentOnCommit: a notification stored with email pending wakes the
// running emailer, which sends it over STARTTLS with authentication to the
// customer's address (from identity) and marks it sent.
func TestEmailIsSentOnCommit(t *testing.T) {
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		// A poll interval longer than the test: only the commit's wake-up can send it.
		r := newEmailRig(t, h, smtptest.Options{Security: smtptest.StartTLS}, notices.EmailConfig{PollInterval: time.Hour})
		r.start(t)
		// Once a first email is sent, the emailer's start-up pass is over: what
		// follows is sent only if the commit wakes it.
		_, first := r.confirm(t, grace)
		testlog.Eventually(t, "a first email to be done", func() bool { return r.emailState(t, first.ID).Status != notices.EmailPending })
		o, n := r.confirm(t, ada)
		if n.Email != notices.EmailPending && n.Email != notices.EmailSent { // it may be sent already
			t.Errorf("stored with email %q, want pending", n.Email)
		}
		testlog.Eventually(t, "the email to be recorded as sent", func() bool { return r.emailState(t, n.ID).Status == notices.EmailSent })
		mails := r.srv.Mails()
		if len(mails) != 1 {
			t.Fatalf("server received %d mails, want 1", len(mails))
		}
		m := mails[0]
		if len(m.To) != 1 || m.To[0] != "ada@example.com" {
			t.Errorf("sent to %q, want ada@example.com", m.To)
		}
		short := notices.ShortID(o.ID)
		hdr := m.Header()
		for k, want := range map[string]string{"Subject": "Order " + short + " is confirmed", "To": "<ada@example.com>",
			"From": `"Agora" <shop@example.com>`, "Message-Id": "<" + n.ID + "@agora.notifications>"} {
			if got := hdr.Get(k); got != want {
				t.Errorf("%s: %q, want %q", k, got, want)
			}
		}
		text, err := m.Text()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(text, n.Body) || !strings.Contains(text, "EUR 1,264.50") || !strings.Contains(text, "Thank you for your order "+short) {
			t.Errorf("mail text %q does not carry the notification's body %q", text, n.Body)
		}
		if got := list(t, r.bus, ada)[0].Email; got != notices.EmailSent {
			t.Errorf("listed with email %q, want sent", got)
		}
		for _, line := range r.log.Lines() {
			if strings.Contains(line, password) {
				t.Errorf("logged the SMTP password: %s", line)
			}
		}
	})
}

// TestEmailRetriesThenFails: a server that keeps refusing the recipient for now
// (451) gets MaxAttempts tries, with backoff, and the email is then failed — while
// the in-app notification stays as it was.
func TestEmailRetriesThenFails(t *testing.T) {
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		r := newEmailRig(t, h, smtptest.Options{Security: smtptest.StartTLS, Rcpt: func(string) error {
			return smtptest.Reject(451, "mailbox busy, try again later")
		}}, notices.EmailConfig{MaxAttempts: 3, BaseBackoff: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond})
		r.start(t)
		_, n := r.confirm(t, ada)
		testlog.Eventually(t, "the email to fail", func() bool { return r.emailState(t, n.ID).Status == notices.EmailFailed })
		s := r.emailState(t, n.ID)
		if s.Attempts != 3 || r.srv.Rcpts() != 3 {
			t.Errorf("attempts = %d, RCPTs seen = %d; want 3 and 3", s.Attempts, r.srv.Rcpts())
		}
		if !strings.Contains(s.Error, "451") {
			t.Errorf("last error %q does not say what the server answered", s.Error)
		}
		if len(r.srv.Mails()) != 0 {
			t.Errorf("the server accepted %d mails", len(r.srv.Mails()))
		}
		got := list(t, r.bus, ada)
		if len(got) != 1 || got[0].ID != n.ID || got[0].Title != n.Title || got[0].Email != notices.EmailFailed {
			t.Errorf("notifications after the failure: %+v", got)
		}
	})
}

// TestPermanentFailuresAreNotRetried: a 550 to the recipient, or a customer identity
// does not know, fails the email at the first attempt.
func TestPermanentFailuresAreNotRetried(t *testing.T) {
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		r := newEmailRig(t, h, smtptest.Options{Rcpt: func(to string) error {
			if to == "ada@example.com" {
				return smtptest.Reject(550, "no such mailbox")
			}
			return nil
		}}, notices.EmailConfig{MaxAttempts: 5, BaseBackoff: time.Millisecond})
		_, rejected := r.confirm(t, ada)
		_, unknown := r.confirm(t, grace) // identity does not know grace
		if err := r.emailer.SendDue(t.Context(), r.bus); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{rejected.ID, unknown.ID} {
			if s := r.emailState(t, id); s.Status != notices.EmailFailed || s.Attempts != 1 {
				t.Errorf("email %s: %+v, want failed after 1 attempt", id, s)
			}
		}
		if r.srv.Rcpts() != 1 {
			t.Errorf("RCPTs = %d, want 1 (none for the unknown customer)", r.srv.Rcpts())
		}
	})
}

// TestUnreachableIdentityIsRetried: when no process answers GetUser, the email
// waits for a later attempt instead of failing.
func TestUnreachableIdentityIsRetried(t *testing.T) {
	h := modhost.NewHost(sqliteDB(t), testdb.Logger())
	r := newEmailRig(t, h, smtptest.Options{}, notices.EmailConfig{MaxAttempts: 3, BaseBackoff: time.Hour})
	noIdentity := newBus(t, notices.NewService(h.DB, r.emailer))
	_, n := r.confirm(t, ada)
	if err := r.emailer.SendDue(t.Context(), noIdentity); err != nil {
		t.Fatal(err)
	}
	if s := r.emailState(t, n.ID); s.Status != notices.EmailPending || s.Attempts != 1 || !strings.Contains(s.Error, "no process serves") {
		t.Errorf("email after an attempt without identity: %+v, want pending after 1 attempt", s)
	}
	// Not due again before its backoff.
	if err := r.emailer.SendDue(t.Context(), r.bus); err != nil {
		t.Fatal(err)
	}
	if s := r.emailState(t, n.ID); s.Attempts != 1 || len(r.srv.Mails()) != 0 {
		t.Errorf("retried before its backoff: %+v", s)
	}
}

// TestEmailersShareTheWork: two emailers (replicas) on one database, sending many
// emails at once, send each exactly once.
func TestEmailersShareTheWork(t *testing.T) {
	testdb.EachHost(t, "notifications", func(t *testing.T, h *modhost.Host) {
		const count = 30
		var sends atomic.Int32
		r := newEmailRig(t, h, smtptest.Options{Rcpt: func(string) error { sends.Add(1); return nil }},
			notices.EmailConfig{Concurrency: 3, PollInterval: time.Hour})
		for range count {
			r.confirm(t, ada)
		}
		m, err := mailer.New(mailer.Config{URL: r.srv.URL(), From: "shop@example.com", Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		other := notices.NewEmailer(h.DB, m, notices.EmailConfig{Concurrency: 3, PollInterval: time.Hour}, testdb.Logger())
		r.start(t)
		other.Start(r.bus)
		t.Cleanup(func() { _ = other.Stop(context.Background()) })
		r.emailer.Notify()
		other.Notify()
		testlog.Eventually(t, "every email to be sent", func() bool {
			var pending int
			_ = h.DB.GetContext(t.Context(), &pending, `SELECT COUNT(*) FROM notifications WHERE email_status <> 'sent'`)
			return pending == 0
		})
		if n := sends.Load(); n != count {
			t.Errorf("%d emails sent for %d notifications", n, count)
		}
		ids := map[string]bool{}
		for _, m := range r.srv.Mails() {
			id := m.Header().Get("Message-Id")
			if ids[id] {
				t.Errorf("message %s sent twice", id)
			}
			ids[id] = true
		}
		if len(ids) != count {
			t.Errorf("%d distinct messages, want %d", len(ids), count)
		}
	})
}

// TestExpiredClaimIsTakenAgain: an email claimed by a sender that died is sent
// once its lease ends.
func TestExpiredClaimIsTakenAgain(t *testing.T) {
	h := modhost.NewHost(sqliteDB(t), testdb.Logger())
	r := newEmailRig(t, h, smtptest.Options{}, notices.EmailConfig{})
	_, n := r.confirm(t, ada)
	// A sender that claims the email and dies.
	var claimed []notices.EmailClaim
	if err := jobs.New(h.DB, notices.EmailJobs, jobs.Policy{Lease: time.Hour}).Claim(t.Context(), &claimed, 10); err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	if err := r.emailer.SendDue(t.Context(), r.bus); err != nil {
		t.Fatal(err)
	}
	if len(r.srv.Mails()) != 0 {
		t.Fatal("an email claimed by another sender was sent")
	}
	// The claim's lease ends.
	if _, err := h.DB.ExecContext(t.Context(), `UPDATE notifications SET lease_until = ? WHERE id = ?`,
		time.Now().Add(-time.Second).UnixMilli(), n.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.emailer.SendDue(t.Context(), r.bus); err != nil {
		t.Fatal(err)
	}
	if s := r.emailState(t, n.ID); s.Status != notices.EmailSent || s.Attempts != 2 || len(r.srv.Mails()) != 1 {
		t.Errorf("after the lease: %+v, %d mails", s, len(r.srv.Mails()))
	}
}

// TestWithoutEmailerNothingIsPending: with no SMTP configured, notifications are
// stored with email none and nothing waits to be sent.
func TestWithoutEmailerNothingIsPending(t *testing.T) {
	b := newBus(t, notices.NewService(sqliteDB(t), nil))
	publish(t, b, orders.OrderConfirmedEvent.With(orders.OrderConfirmed{Order: order(bus.NewID(), ada, orders.StatusConfirmed, "")}), bus.NewID())
	if got := list(t, b, ada); len(got) != 1 || got[0].Email != notices.EmailNone {
		t.Errorf("notifications = %s", fmt.Sprint(got))
	}
}
