// Package mailer sends plain-text email through the SMTP server named by a URL:
// smtp://user:pass@host:port (STARTTLS whenever the server offers it) or
// smtps://user:pass@host:port (TLS from the first byte). It knows nothing of
// notifications; it is the module's adapter to SMTP, built on go-mail.
package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Default ports when the URL names none: submission for smtp://, implicit TLS for smtps://.
const (
	DefaultPort    = 587
	DefaultTLSPort = 465
)

// Config says where and how to send.
type Config struct {
	// URL is smtp://[user[:pass]@]host[:port] or smtps://…; user and password are
	// URL-encoded. With a user, the client authenticates (SCRAM, PLAIN or LOGIN, as
	// the server offers), and never sends a password in clear text except to a
	// server on the loopback address.
	URL string
	// From is the sender, an RFC 5322 address ("Agora <shop@example.com>").
	From string
	// Timeout bounds connecting and each SMTP command (default 30s).
	Timeout time.Duration
	// TLSConfig replaces the default TLS settings (the system's roots, verifying the
	// URL's host). It is for tests, which trust their own server's certificate
	// through RootCAs; a missing ServerName is set to the URL's host.
	TLSConfig *tls.Config
}

// Message is one email.
type Message struct {
	To        string
	Subject   string
	Body      string // plain text
	MessageID string // without angle brackets; the same for every attempt, so receivers can drop a resend
}

// Mailer sends messages. It is safe for concurrent use: each Send has its own
// connection.
type Mailer struct {
	host      string
	port      int
	implicit  bool // smtps://
	user      string
	pass      string
	from      string
	timeout   time.Duration
	tlsConfig *tls.Config
	redacted  string
}

// New checks cfg and returns its Mailer. Its errors never contain the password.
func New(cfg Config) (*Mailer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the whole URL in its error: say what is wrong without it.
		return nil, errors.New("mailer: the SMTP URL is not a valid URL (want smtp://user:pass@host:port or smtps://…)")
	}
	m := &Mailer{host: u.Hostname(), timeout: cfg.Timeout, redacted: u.Redacted()}
	switch u.Scheme {
	case "smtp":
		m.port = DefaultPort
	case "smtps":
		m.port, m.implicit = DefaultTLSPort, true
	default:
		return nil, fmt.Errorf("mailer: SMTP URL %s: the scheme must be smtp or smtps", m.redacted)
	}
	if m.host == "" {
		return nil, fmt.Errorf("mailer: SMTP URL %s names no host", m.redacted)
	}
	if p := u.Port(); p != "" {
		if m.port, err = strconv.Atoi(p); err != nil || m.port < 1 || m.port > 65535 {
			return nil, fmt.Errorf("mailer: SMTP URL %s: the port must be 1-65535", m.redacted)
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("mailer: SMTP URL %s: only user, password, host and port are understood", m.redacted)
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mailer: the sender %q is not an email address: %w", cfg.From, err)
	}
	m.from = from.String()
	if m.timeout <= 0 {
		m.timeout = 30 * time.Second
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = m.host
	}
	m.tlsConfig = tc
	return m, nil
}

// Redacted returns the server's URL with the password replaced by "xxxxx": what may
// be logged.
func (m *Mailer) Redacted() string { return m.redacted }

// Redact returns rawURL with its password replaced by "xxxxx", or a placeholder when
// it cannot be parsed (so that nothing of it reaches a log).
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(invalid SMTP URL)"
	}
	return u.Redacted()
}

// Send delivers msg to the server: connect, TLS, authenticate, MAIL, RCPT, DATA.
// ctx bounds the whole exchange. An error for which IsPermanent is true will fail
// the same way again (the server refused the recipient or the message for good);
// any other may succeed on a later try.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	gm := gomail.NewMsg()
	if err := gm.From(m.from); err != nil {
		return Permanent(fmt.Errorf("mailer: sender: %w", err))
	}
	if err := gm.To(msg.To); err != nil {
		return Permanent(fmt.Errorf("mailer: recipient %q: %w", msg.To, err))
	}
	gm.Subject(msg.Subject)
	gm.SetDate()
	if msg.MessageID != "" {
		gm.SetMessageIDWithValue(msg.MessageID)
	} else {
		gm.SetMessageID()
	}
	gm.SetBodyString(gomail.TypeTextPlain, msg.Body)

	opts := []gomail.Option{
		gomail.WithPort(m.port),
		gomail.WithTimeout(m.timeout),
		gomail.WithTLSConfig(m.tlsConfig),
	}
	if m.implicit {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if m.user != "" {
		// PLAIN and LOGIN refuse to send the password over an unencrypted
		// connection to anything but loopback; the SCRAM mechanisms never send it.
		opts = append(opts, gomail.WithUsername(m.user), gomail.WithPassword(m.pass),
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
	}
	c, err := gomail.NewClient(m.host, opts...)
	if err != nil {
		return fmt.Errorf("mailer: client for %s: %w", m.redacted, err)
	}
	if err := c.DialAndSendWithContext(ctx, gm); err != nil {
		err = fmt.Errorf("mailer: send to %s through %s: %w", msg.To, net.JoinHostPort(m.host, strconv.Itoa(m.port)), err)
		var se *gomail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode()/100 == 5 {
			return Permanent(err)
		}
		return err
	}
	return nil
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// Permanent marks err as a failure that retrying cannot fix: IsPermanent reports
// true for it and for any error that wraps it.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err says the message can never be delivered as it is:
// a 5xx reply to the recipient or the message, or an address that does not parse.
func IsPermanent(err error) bool {
	var pe permanentError
	return errors.As(err, &pe)
}
