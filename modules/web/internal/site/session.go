package site

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/identity"
)

// cookieName is the session cookie. Its value is "<access token>|<refresh token>":
// both are URL-safe (a JWT and base64url), so "|" never occurs in either.
const cookieName = "agora_session"

// sessionMaxAge is how long the browser keeps the cookie. The tokens inside
// decide what it is worth: the access token is refreshed when it expires, and a
// refresh token identity no longer honours ends the session.
const sessionMaxAge = 30 * 24 * time.Hour

// maxCookieLen bounds what is read from the cookie before anything parses it.
const maxCookieLen = 4096

// access says who may use a route.
type access int

const (
	public   access = iota // anyone; a session is used when there is one
	customer               // any signed-in account; anonymous visitors are sent to sign in
	admin                  // admins; other accounts get a 403 page
)

// visit is who is asking, as the session cookie says.
type visit struct {
	who      auth.Principal
	signedIn bool
}

// Admin reports whether the visitor is a signed-in admin (templates use it).
func (v *visit) Admin() bool { return v.signedIn && v.who.Role == identity.RoleAdmin }

// SignedIn reports whether the visitor is signed in (templates use it).
func (v *visit) SignedIn() bool { return v.signedIn }

// handler serves one page or action; an error it returns is rendered as an
// error page (see fail).
type handler func(w http.ResponseWriter, r *http.Request, v *visit) error

// errForbidden answers a customer on an admin page.
var errForbidden = message.NewError(message.Forbidden, "web.forbidden", "this page is for the shop's administrators")

// page wraps h with what every page does: its headers, the session (refreshed
// when its access token has expired) and the route's access rule.
func (s *Site) page(rule access, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w.Header())
		v, err := s.identify(w, r)
		if rule != public {
			switch {
			case err != nil:
				s.fail(w, r, &v, err)
				return
			case !v.signedIn:
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(signInReturn(r)), http.StatusSeeOther)
				return
			case rule == admin && v.who.Role != identity.RoleAdmin:
				s.fail(w, r, &v, errForbidden)
				return
			}
		}
		if err := h(w, r, &v); err != nil {
			s.fail(w, r, &v, err)
		}
	})
}

// signInReturn is where to come back after signing in: the page asked for, or
// for a form posted without a session ("Add to cart" signed out), the page of
// this site it was posted from.
func signInReturn(r *http.Request) string {
	if r.Method == http.MethodGet {
		return r.URL.RequestURI()
	}
	if u, err := url.Parse(r.Referer()); err == nil && u.Host == r.Host {
		return localPath(u.RequestURI())
	}
	return "/"
}

// localPath returns next if it is a path on this site, else "/": a sign-in link
// must never send the visitor to another site.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") || len(next) > 512 {
		return "/"
	}
	return next
}

// identify reads the session cookie. An expired access token is refreshed (and
// the cookie rewritten); a session identity no longer honours is cleared and the
// visitor is anonymous. An error means identity could not be asked: the visitor
// is anonymous for this request, and the cookie is kept.
func (s *Site) identify(w http.ResponseWriter, r *http.Request) (visit, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) > maxCookieLen {
		return visit{}, nil
	}
	access, refresh, ok := strings.Cut(c.Value, "|")
	if !ok || access == "" || refresh == "" {
		clearSession(w, r)
		return visit{}, nil
	}
	p, err := s.keys.Verify(access)
	if err == nil {
		return visit{who: p, signedIn: true}, nil
	}
	if errors.Is(err, auth.ErrUnavailable) {
		return visit{}, errSignInUnavailable
	}
	t, err := s.refresher.refresh(r.Context(), refresh)
	if err != nil {
		if message.AsError(err).Kind == message.Unauthenticated {
			clearSession(w, r)
			return visit{}, nil
		}
		return visit{}, err
	}
	if p, err = s.keys.Verify(t.AccessToken); err != nil {
		clearSession(w, r)
		return visit{}, nil
	}
	writeSession(w, r, t)
	return visit{who: p, signedIn: true}, nil
}

// errSignInUnavailable: this process cannot verify sessions yet (it has not
// reached identity since it started).
var errSignInUnavailable = message.NewError(message.Unavailable, "web.sign_in_unavailable",
	"signing in is not available at the moment; please try again in a few seconds")

// writeSession stores tokens in the session cookie: HttpOnly (no script reads
// it), SameSite=Strict (no other site's page sends it), Secure over TLS.
func writeSession(w http.ResponseWriter, r *http.Request, t identity.Tokens) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: t.AccessToken + "|" + t.RefreshToken, Path: "/",
		MaxAge: int(sessionMaxAge.Seconds()), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// clearSession tells the browser to forget the session cookie.
func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// refresher exchanges refresh tokens, once per token. A page and the event
// stream it opens may both find the access token expired and present the same
// refresh token; identity treats a second use as theft and revokes the whole
// family, so concurrent and recent (one minute) uses of one token in this process
// share one exchange and its answer.
type refresher struct {
	bus *bus.Bus
	mu  sync.Mutex
	// calls holds the exchanges of the last minute, by the refresh token spent.
	calls map[string]*refreshCall
}

type refreshCall struct {
	done   chan struct{}
	at     time.Time
	tokens identity.Tokens
	err    error
}

// refreshMemory is how long an exchange's answer is given to later uses of the
// same refresh token; maxRefreshCalls bounds the memory it takes.
const (
	refreshMemory   = time.Minute
	maxRefreshCalls = 10_000
)

func newRefresher(b *bus.Bus) *refresher {
	return &refresher{bus: b, calls: map[string]*refreshCall{}}
}

// refresh returns new tokens for the refresh token rt, exchanging it at most once.
func (f *refresher) refresh(ctx context.Context, rt string) (identity.Tokens, error) {
	now := time.Now()
	f.mu.Lock()
	for k, c := range f.calls {
		if now.Sub(c.at) > refreshMemory {
			delete(f.calls, k)
		}
	}
	c, ok := f.calls[rt]
	if !ok && len(f.calls) < maxRefreshCalls {
		c = &refreshCall{done: make(chan struct{}), at: now}
		f.calls[rt] = c
	}
	f.mu.Unlock()
	if c == nil { // full: exchange without remembering
		return bus.Call(ctx, f.bus, identity.RefreshRequest, identity.Refresh{RefreshToken: rt})
	}
	if !ok {
		// Not the first caller's context: a caller that goes away must not
		// fail the others waiting on the same exchange.
		call, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		c.tokens, c.err = bus.Call(call, f.bus, identity.RefreshRequest, identity.Refresh{RefreshToken: rt})
		cancel()
		close(c.done)
	}
	select {
	case <-c.done:
		return c.tokens, c.err
	case <-ctx.Done():
		return identity.Tokens{}, ctx.Err()
	}
}

// signInLimits bound sign-in and sign-up attempts per client address and per
// account, as identity's own HTTP routes do: the site calls identity over the bus,
// behind those routes' limits, so it keeps its own.
type signInLimits struct {
	perIP, perAccount *httpapi.KeyedLimiter
}

func newSignInLimits() *signInLimits {
	return &signInLimits{perIP: httpapi.NewKeyedLimiter(20, 20), perAccount: httpapi.NewKeyedLimiter(5, 5)}
}

// errTooManyAttempts refuses a sign-in over the limits.
var errTooManyAttempts = message.NewError(message.Overloaded, "web.too_many_attempts",
	"too many attempts to sign in; please wait a minute and try again")

// allow reports whether one more attempt from ctx's client on account may go ahead.
func (l *signInLimits) allow(ctx context.Context, account string) error {
	now := time.Now()
	if ok, _ := l.perIP.Allow(httpapi.ClientIP(ctx), now); !ok {
		return errTooManyAttempts
	}
	if account != "" {
		if ok, _ := l.perAccount.Allow(strings.ToLower(strings.TrimSpace(account)), now); !ok {
			return errTooManyAttempts
		}
	}
	return nil
}
