package loadgen

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// client sends the API's requests, each to the next base URL in turn, and records
// each one's latency and failure.
type client struct {
	hc      *http.Client
	urls    []string
	next    atomic.Uint64
	rec     *recorder
	timeout time.Duration
	// retryFor is how long a resendable request is sent again (see resendable).
	retryFor time.Duration
}

func newClient(cfg Config, rec *recorder) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = cfg.MaxInFlight + 64 // every flow may hold a connection
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		urls[i] = strings.TrimRight(u, "/")
	}
	return &client{hc: &http.Client{Transport: tr}, urls: urls, rec: rec, timeout: cfg.RequestTimeout, retryFor: cfg.RetryFor}
}

func (c *client) base() string {
	return c.urls[(c.next.Add(1)-1)%uint64(len(c.urls))]
}

// apiError is an answer with a status the caller did not want.
type apiError struct {
	Status     int
	Type       string // the problem's type
	Detail     string
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
	}
	return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
}

// statusOf is err's HTTP status, or 0 when it is not an answer.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// problemIs reports whether err is a problem whose type ends with code (e.g.
// "orders.price_changed"), whatever prefix the server puts before it.
func problemIs(err error, code string) bool {
	var ae *apiError
	return errors.As(err, &ae) && strings.HasSuffix(ae.Type, code)
}

// call is one request.
type call struct {
	op     string // the operation name it is recorded under
	method string
	path   string
	token  string
	body   any
	header http.Header
	// resend marks a request that is safe to send again — a read, a PUT or DELETE,
	// a POST with an Idempotency-Key — and so is sent again, for up to
	// Config.RetryFor, while it is resendable.
	resend bool
	// expect are the non-2xx statuses that are answers, not failures: they come
	// back as *apiError but are not recorded as errors.
	expect []int
}

// do sends req and decodes a 2xx JSON answer into out (when out is not nil). It
// records the latency of every answered request under req.op, and records as an
// error every failure except an expected status and the run's own cancellation.
func (c *client) do(ctx context.Context, req call, out any) error {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, start, err := c.send(rctx, req, "application/json")
	if err != nil {
		return c.failed(ctx, rctx, req.op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return c.failed(ctx, rctx, req.op, err)
	}
	c.rec.op(req.op, time.Since(start))
	if resp.StatusCode/100 != 2 {
		ae := problemOf(resp, body)
		if !slices.Contains(req.expect, resp.StatusCode) {
			c.rec.fail(req.op, strconv.Itoa(resp.StatusCode), ae.Error())
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			c.rec.fail(req.op, "bad_response", err.Error())
			return fmt.Errorf("%s: decode the answer: %w: %w", req.op, errBadResponse, err)
		}
	}
	return nil
}

// send sends req and returns the response once its headers are in, and when the
// request started.
func (c *client) send(ctx context.Context, req call, accept string) (*http.Response, time.Time, error) {
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, time.Time{}, err
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.base()+req.path, body)
	if err != nil {
		return nil, time.Time{}, err
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	hr.Header.Set("Accept", accept)
	hr.Header.Set("User-Agent", "agora-loadgen")
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.token)
	}
	start := time.Now()
	resp, err := c.hc.Do(hr)
	return resp, start, err
}

// openEvents opens the event stream at path as a, and returns its body once the
// server answered 200. The stream's latency, recorded under op, is the time to its
// headers (the rest is the saga's). A 401 makes a's next token a new one and is not
// recorded as an error: the caller connects again.
func (c *client) openEvents(ctx context.Context, a *account, op, path string, header http.Header) (io.ReadCloser, error) {
	tok, err := c.token(ctx, a)
	if err != nil {
		return nil, err
	}
	resp, start, err := c.send(ctx, call{op: op, method: http.MethodGet, path: path, token: tok, header: header}, "text/event-stream")
	if err != nil {
		return nil, c.failed(ctx, ctx, op, err)
	}
	c.rec.op(op, time.Since(start))
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ae := problemOf(resp, body)
		if resp.StatusCode == http.StatusUnauthorized {
			a.expire(tok)
		} else {
			c.rec.fail(op, strconv.Itoa(resp.StatusCode), ae.Error())
		}
		return nil, ae
	}
	return resp.Body, nil
}

// failed records a request that got no answer and returns err — unless ctx (the
// caller's) ended: the run stopping or a checkout's own deadline is not the
// request's failure. rctx is the request's context, with its timeout.
func (c *client) failed(ctx, rctx context.Context, op string, err error) error {
	switch {
	case ctx.Err() != nil:
		return err
	case rctx.Err() != nil:
		c.rec.fail(op, "timeout", err.Error())
	default:
		c.rec.fail(op, "transport", err.Error())
	}
	return err
}

// problemOf reads an RFC 9457 problem (or whatever the body is) into an apiError.
func problemOf(resp *http.Response, body []byte) *apiError {
	ae := &apiError{Status: resp.StatusCode}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil {
		ae.Type, ae.Detail = p.Type, cmp.Or(p.Detail, p.Title)
	} else {
		ae.Detail = truncate(strings.TrimSpace(string(body)), 200)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		ae.RetryAfter = time.Duration(s) * time.Second
	}
	return ae
}

// resendable reports whether a request that failed with err may succeed if sent
// again unchanged: it got no answer (refused, reset or timed out — a process
// restarting, or its address away) or a 502, 503 or 504 (a module, or the broker
// between them, briefly away).
func resendable(err error) bool {
	switch statusOf(err) {
	case 0:
		var ae *apiError
		return err != nil && !errors.As(err, &ae) && !errors.Is(err, errBadResponse)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// errBadResponse marks an answer that could not be read as what it should be: a
// server bug, not a transient failure, so never resent.
var errBadResponse = errors.New("bad response")

// retrying calls send until it succeeds, fails with an error that is not
// resendable, ctx ends, or c.retryFor has passed since the first call. Between
// calls it waits what a Retry-After asked (at most 5 s), else 100 ms doubling to
// 1 s. Every resend is counted in the report (resends); each failure it hides was
// recorded by send as usual, so the errors still say what happened.
func (c *client) retrying(ctx context.Context, send func() error) error {
	deadline := time.Now().Add(c.retryFor)
	wait := 100 * time.Millisecond
	for {
		err := send()
		if err == nil || !resendable(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		pause := wait
		var ae *apiError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			pause = min(ae.RetryAfter, 5*time.Second)
		}
		if sleep(ctx, pause) != nil {
			return err
		}
		wait = min(2*wait, time.Second)
		c.rec.add(&c.rec.resends, 1)
	}
}

// sleep waits d, or less when ctx ends first (then it returns ctx's error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
