package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// account is a signed-in user: a customer of the pool or the admin that restocks.
type account struct {
	email, password string
	id              string // the user id, when the generator needed it

	mu      sync.Mutex // guards the tokens: a released customer's checkout may still await its order
	access  string
	refresh string
	renewAt time.Time

	// The cart as this generator left it; only the checkout holding the customer
	// touches it. cartKnown false means "ask the server first".
	cart      map[string]int64
	cartKnown bool
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

func (a *account) setTokens(t tokens) {
	life := time.Duration(t.ExpiresIn) * time.Second
	a.access, a.refresh = t.AccessToken, t.RefreshToken
	// Renew before expiry, so a request in flight does not meet a 401.
	a.renewAt = time.Now().Add(life - min(time.Minute, life/5))
}

// customerPassword is every load-generator customer's password: the accounts are
// reused from run to run, so they must sign in again with what they signed up.
const customerPassword = "loadgen-customer-password"

func customerEmail(i int) string { return fmt.Sprintf("loadgen-%04d@example.com", i) }

// rateLimited runs fn until it is not answered 429, waiting what Retry-After asks
// (sign-in and sign-up are limited per address). It gives up when ctx ends.
func rateLimited(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests {
			return err
		}
		if err := sleep(ctx, min(max(ae.RetryAfter, time.Second), time.Minute)); err != nil {
			return err
		}
	}
}

// signIn signs a in with its password.
func (c *client) signIn(ctx context.Context, a *account) error {
	var t tokens
	err := rateLimited(ctx, func() error {
		return c.do(ctx, call{op: "login", method: http.MethodPost, path: "/v1/auth/login",
			body: map[string]string{"email": a.email, "password": a.password}, expect: []int{401, 429}}, &t)
	})
	if err != nil {
		return fmt.Errorf("sign in %s: %w", a.email, err)
	}
	a.setTokens(t)
	return nil
}

// register signs a up; an account that already exists is fine.
func (c *client) register(ctx context.Context, a *account) error {
	err := rateLimited(ctx, func() error {
		return c.do(ctx, call{op: "register", method: http.MethodPost, path: "/v1/auth/register",
			body: map[string]string{"email": a.email, "password": a.password}, expect: []int{409, 429}}, nil)
	})
	if statusOf(err) == http.StatusConflict {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sign up %s: %w", a.email, err)
	}
	return nil
}

// token returns a's access token, renewed first when it is about to expire (with
// the refresh token, or by signing in again when that is refused).
func (c *client) token(ctx context.Context, a *account) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.access != "" && time.Now().Before(a.renewAt) {
		return a.access, nil
	}
	if a.refresh != "" {
		var t tokens
		err := rateLimited(ctx, func() error {
			return c.do(ctx, call{op: "refresh", method: http.MethodPost, path: "/v1/auth/refresh",
				body: map[string]string{"refresh_token": a.refresh}, expect: []int{401, 429}}, &t)
		})
		if err == nil {
			a.setTokens(t)
			return a.access, nil
		}
		if statusOf(err) != http.StatusUnauthorized {
			return "", err
		}
	}
	if err := c.signIn(ctx, a); err != nil {
		return "", err
	}
	return a.access, nil
}

// expire makes the next token call renew a's token, if tok is still the current
// one (another checkout may have renewed it already).
func (a *account) expire(tok string) {
	a.mu.Lock()
	if a.access == tok {
		a.access = ""
	}
	a.mu.Unlock()
}

// authed sends req as a, renewing the token and trying once more on a 401 (a token
// that expired or was revoked). A request marked resend is sent again while it
// gets no answer or a 502/503/504, for up to Config.RetryFor (client.retrying):
// through a process's restart, not counted as a failed flow.
func (c *client) authed(ctx context.Context, a *account, req call, out any) error {
	if req.resend {
		return c.retrying(ctx, func() error { return c.authedOnce(ctx, a, req, out) })
	}
	return c.authedOnce(ctx, a, req, out)
}

// authedOnce is authed without resends.
func (c *client) authedOnce(ctx context.Context, a *account, req call, out any) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx, a)
		if err != nil {
			return err
		}
		req.token = tok
		first := req
		if attempt == 0 {
			first.expect = append(first.expect[:len(first.expect):len(first.expect)], http.StatusUnauthorized)
		}
		err = c.do(ctx, first, out)
		if attempt == 0 && statusOf(err) == http.StatusUnauthorized {
			a.expire(tok)
			continue
		}
		return err
	}
}

// signInCustomers signs in n customers (signing them up first if they do not
// exist yet), a few at a time. It reports progress to w and returns the ones that
// signed in; it fails only when none did.
func (c *client) signInCustomers(ctx context.Context, n int, w io.Writer) ([]*account, error) {
	all := make([]*account, n)
	for i := range all {
		all[i] = &account{email: customerEmail(i), password: customerPassword}
	}
	return c.signInPool(ctx, all, "customers", w)
}

// signInPool signs in the accounts all (signing them up first if they do not exist
// yet), a few at a time; what names them in the progress written to w. It returns
// the ones that signed in; it fails only when none did.
func (c *client) signInPool(ctx context.Context, all []*account, what string, w io.Writer) ([]*account, error) {
	n := len(all)
	// One probe tells a fresh server (sign everyone up first: one request less per
	// customer under the sign-in rate limit) from a pool left by an earlier run.
	probeErr := c.signIn(ctx, all[0])
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	fresh := statusOf(probeErr) == http.StatusUnauthorized
	if fresh {
		if err := c.register(ctx, all[0]); err != nil {
			return nil, err
		}
		if err := c.signIn(ctx, all[0]); err != nil {
			return nil, err
		}
	} else if probeErr != nil {
		return nil, probeErr
	}

	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		done     atomic.Int64
		mu       sync.Mutex
		firstErr error
	)
	next.Store(1)
	done.Store(1)
	one := func(a *account) error {
		if fresh {
			if err := c.register(ctx, a); err != nil {
				return err
			}
			return c.signIn(ctx, a)
		}
		err := c.signIn(ctx, a)
		if statusOf(err) == http.StatusUnauthorized {
			if err := c.register(ctx, a); err != nil {
				return err
			}
			err = c.signIn(ctx, a)
		}
		return err
	}
	for range min(4, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := one(all[i]); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					all[i] = nil
					continue
				}
				fmt.Fprintf(w, "warm-up: %d of %d %s signed in\n", done.Add(1), n, what)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ok []*account
	for _, a := range all {
		if a != nil {
			ok = append(ok, a)
		}
	}
	if firstErr != nil {
		fmt.Fprintf(w, "warm-up: %d %s could not sign in; going on with %d (first error: %v)\n", n-len(ok), what, len(ok), firstErr)
	}
	return ok, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
