package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-ID"

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// chain wraps h with the edge middleware, outermost first: security headers,
// recover, request id and access log, concurrency limit, deadline, declared body
// size, and text that is not UTF-8 or holds NUL (see checkRequestText and
// checkedBody).
func chain(h http.Handler, log *slog.Logger, cfg Config) http.Handler {
	sem := make(chan struct{}, max(cfg.MaxInFlight, 1))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		setSecurityHeaders(w.Header())
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = bus.NewID()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := message.WithCause(r.Context(), message.Cause{ID: id, CorrelationID: id})
		ctx = context.WithValue(ctx, remoteAddrKey{}, r.RemoteAddr)
		var observed func(route string, status int, took time.Duration)
		if cfg.Observer != nil {
			ctx, observed = cfg.Observer.Begin(ctx, r)
		}
		if cfg.RequestTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, cfg.RequestTimeout)
			defer cancel()
		}
		rec := &recorder{ResponseWriter: w, method: r.Method, path: r.URL.Path}
		r = r.WithContext(ctx) // one copy of the request, with everything above
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					WriteProblem(rec, http.StatusInternalServerError, "internal error")
				}
			}
			// Never the URL, a header or the body: they may carry secrets.
			log.LogAttrs(ctx, slog.LevelInfo, "http request",
				slog.String("method", r.Method), slog.String("route", r.Pattern), slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes), slog.Float64("took_ms", float64(time.Since(start).Microseconds())/1000))
			if observed != nil {
				status := rec.status
				if status == 0 {
					status = http.StatusOK // a handler that wrote nothing answered 200
				}
				observed(r.Pattern, status, time.Since(start))
			}
		}()

		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		default:
			rec.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
			WriteProblem(rec, http.StatusServiceUnavailable, "the server is handling as many requests as it can; retry later")
			return
		}
		if admit(rec, r, cfg) {
			h.ServeHTTP(rec, r)
		}
	})
}

// admit answers a request the edge refuses and reports whether to serve it. A body
// declared too large is refused before it is read; one that turns out too large
// while read is refused by huma, with the same limit (see NewAPI). The body is
// checked for text as huma reads it, after the operation's own middleware.
func admit(w http.ResponseWriter, r *http.Request, cfg Config) bool {
	if cfg.MaxBodyBytes > 0 && r.ContentLength > cfg.MaxBodyBytes {
		WriteProblem(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the request body is %d bytes; the limit is %d", r.ContentLength, cfg.MaxBodyBytes))
		return false
	}
	if bt := checkRequestText(r); bt != nil {
		writeBadText(w, bt)
		return false
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &checkedBody{body: r.Body, limit: cfg.MaxBodyBytes}
	}
	return true
}

// setSecurityHeaders sets what every answer carries: no content sniffing (a JSON
// error must never be run as a script or page) and no Referer to other sites.
// Handlers may narrow or relax them (the docs page sends its own policies).
func setSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

type remoteAddrKey struct{}

// RemoteAddrFrom returns the peer address of the request being served ("ip:port").
// Proxy headers are not trusted: behind a proxy this is the proxy's address.
func RemoteAddrFrom(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(remoteAddrKey{}).(string)
	return a, ok
}

// recorder notes the status and size of a response for the access log. It also
// keeps every error problem+json: an error answer written as plain text
// (http.NotFound, http.Error, the mux's own 405, a handler mounted on the mux) is
// replaced by a problem with the same status and headers; an HTML error page is a
// deliberate answer and stays.
type recorder struct {
	http.ResponseWriter
	method, path string
	status       int
	bytes        int64
	wrote        bool
	replaced     bool // the handler's own body is dropped: a problem was sent instead
}

func (r *recorder) WriteHeader(code int) {
	if r.wrote {
		r.ResponseWriter.WriteHeader(code)
		return
	}
	r.status, r.wrote = code, true
	if code >= 400 && !structured(r.Header().Get("Content-Type")) {
		r.replaced = true
		r.Header().Del("Content-Length")
		n := writeProblemBody(r.ResponseWriter, code, missDetail(r.method, r.path, code))
		r.bytes += int64(n)
		return
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	if r.replaced {
		return len(b), nil
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// missDetail is the detail of a problem for a request no route answers: 404 (no
// route for the path), 405 (not this method), or any other status by its text.
func missDetail(method, path string, code int) string {
	path = truncateText(path, maxMessageBytes)
	switch code {
	case http.StatusNotFound:
		return fmt.Sprintf("no route for %s %s", method, path)
	case http.StatusMethodNotAllowed:
		return fmt.Sprintf("method %s is not allowed on %s", method, path)
	}
	return http.StatusText(code)
}

// structured reports whether a Content-Type is one an error is deliberately
// answered in: JSON or CBOR (problem or not), the API's formats, or an HTML page
// (the web face's error pages, written for people). Only plain text — the
// standard library's http.Error and http.NotFound — is replaced by a problem.
func structured(contentType string) bool {
	return strings.Contains(contentType, "json") || strings.Contains(contentType, "cbor") ||
		strings.HasPrefix(contentType, "text/html")
}

// Flush lets streamed responses (server-sent events) through.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
