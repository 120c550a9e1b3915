package mailer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/modules/notifications/internal/mailer"
	"github.com/agora-commerce/agora/modules/notifications/internal/smtptest"
)

const secret = "s3cr3t-p@ss"

// TestSendThroughEverySecurity sends one message through a real SMTP server in each
// mode the URL can ask for, authenticating with the URL's credentials, and checks
// what the server received.
func TestSendThroughEverySecurity(t *testing.T) {
	tests := []struct {
		name     string
		security smtptest.Security
		trust    bool // give the client the server's certificate
	}{
		{"plain auth over loopback", smtptest.Plain, false},
		{"starttls", smtptest.StartTLS, true},
		{"implicit tls", smtptest.Implicit, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{Security: tt.security, User: "agora", Password: secret})
			cfg := mailer.Config{URL: srv.URL(), From: "Agora Shop <shop@example.com>", Timeout: 5 * time.Second}
			if tt.trust {
				cfg.TLSConfig = srv.ClientTLS()
			}
			m, err := mailer.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Send(t.Context(), mailer.Message{To: "ada@example.com", Subject: "Order #ABCD1234 is confirmed",
				Body: "Thank you for your order.", MessageID: "0190a8b2-0000-7000-8000-000000000001@agora"})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			mails := srv.Mails()
			if len(mails) != 1 {
				t.Fatalf("server received %d mails, want 1", len(mails))
			}
			got := mails[0]
			if got.From != "shop@example.com" || len(got.To) != 1 || got.To[0] != "ada@example.com" {
				t.Errorf("envelope from %q to %q", got.From, got.To)
			}
			hdr := got.Header()
			for k, want := range map[string]string{"Subject": "Order #ABCD1234 is confirmed", "To": "<ada@example.com>",
				"Message-Id": "<0190a8b2-0000-7000-8000-000000000001@agora>", "From": `"Agora Shop" <shop@example.com>`} {
				if v := hdr.Get(k); v != want {
					t.Errorf("%s: %q, want %q", k, v, want)
				}
			}
			if text, err := got.Text(); err != nil || strings.TrimSpace(text) != "Thank you for your order." {
				t.Errorf("text = %q (%v)", text, err)
			}
			if srv.Logins() != 1 {
				t.Errorf("logins = %d, want 1: the client did not authenticate", srv.Logins())
			}
		})
	}
}

// TestUntrustedCertificateIsRefused: STARTTLS to a server whose certificate the
// client does not trust must fail, not fall back to clear text.
func TestUntrustedCertificateIsRefused(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Security: smtptest.StartTLS, User: "agora", Password: secret})
	m, err := mailer.New(mailer.Config{URL: srv.URL(), From: "shop@example.com", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(t.Context(), mailer.Message{To: "ada@example.com", Subject: "s", Body: "b"})
	if err == nil {
		t.Fatal("Send succeeded through an untrusted certificate")
	}
	if len(srv.Mails()) != 0 || srv.Logins() != 0 {
		t.Errorf("the server got %d mails and %d logins", len(srv.Mails()), srv.Logins())
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestRejectedRecipient: a 5xx to RCPT is permanent, a 4xx is not.
func TestRejectedRecipient(t *testing.T) {
	for _, tt := range []struct {
		code      int
		permanent bool
	}{{550, true}, {451, false}} {
		srv := smtptest.Start(t, smtptest.Options{Rcpt: func(string) error { return smtptest.Reject(tt.code, "no") }})
		m, err := mailer.New(mailer.Config{URL: srv.URL(), From: "shop@example.com", Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Send(t.Context(), mailer.Message{To: "ada@example.com", Subject: "s", Body: "b"})
		if err == nil {
			t.Fatalf("%d: Send succeeded", tt.code)
		}
		if got := mailer.IsPermanent(err); got != tt.permanent {
			t.Errorf("%d: IsPermanent = %v, want %v (%v)", tt.code, got, tt.permanent, err)
		}
	}
}

// TestNewRejectsBadConfigWithoutShowingThePassword checks the URL's rules, and that
// no error repeats the password, whatever is wrong.
func TestNewRejectsBadConfigWithoutShowingThePassword(t *testing.T) {
	for _, tt := range []struct{ url, from string }{
		{"http://u:" + secret + "@mail.example.com", "shop@example.com"},
		{"smtp://u:" + secret + "@", "shop@example.com"},
		{"smtp://u:" + secret + "@mail.example.com:99999", "shop@example.com"},
		{"smtp://u:" + secret + "@mail.example.com:port", "shop@example.com"},
		{"smtp://u:" + secret + "@mail.example.com/path?x=1", "shop@example.com"},
		{"smtp://u:" + secret + "@mail example.com", "shop@example.com"},
		{"smtp://u:" + secret + "@mail.example.com", "not an address"},
	} {
		_, err := mailer.New(mailer.Config{URL: tt.url, From: tt.from})
		if err == nil {
			t.Errorf("New(%q, %q) accepted", mailer.Redact(tt.url), tt.from)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	m, err := mailer.New(mailer.Config{URL: "smtps://u:" + secret + "@mail.example.com", From: "shop@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Redacted(); strings.Contains(r, secret) || !strings.Contains(r, "mail.example.com") {
		t.Errorf("Redacted() = %q", r)
	}
	if r := mailer.Redact("smtp://u:" + secret + "@h:25"); strings.Contains(r, secret) {
		t.Errorf("Redact = %q", r)
	}
}
