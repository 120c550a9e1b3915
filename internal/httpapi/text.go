package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Every text a request carries must be valid UTF-8 without NUL. PostgreSQL refuses
// both in text (a 500, once it reaches a query) and SQLite cuts strings at NUL (a
// search for "\x00anything" matched every product), so rather than every module and
// store guarding against them, the edge refuses such requests once, for every route.

// BadTextError is the 400 the edge answers for a request with NUL or invalid UTF-8
// in its path, a query parameter, a header value or its body. Where names the part
// ("path", "query.q", "header.If-Match", "body"); the value itself is never echoed.
type BadTextError struct {
	Where string
}

func (e *BadTextError) Error() string {
	return fmt.Sprintf("%s holds a NUL character or invalid UTF-8; text must be valid UTF-8 without NUL", e.Where)
}

// checkRequestText returns a *BadTextError for the first part of r, body aside,
// that is not valid text, or nil. Query strings are checked as they decode: that is
// what handlers see. A query that does not decode at all is left to them.
func checkRequestText(r *http.Request) *BadTextError {
	if !validText(r.URL.Path) {
		return &BadTextError{Where: "path"}
	}
	q, _ := url.ParseQuery(r.URL.RawQuery)
	for k, vs := range q {
		if !validText(k) {
			return &BadTextError{Where: "query"}
		}
		for _, v := range vs {
			if !validText(v) {
				return &BadTextError{Where: "query." + truncateText(k, MaxEchoBytes)}
			}
		}
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if !validText(v) {
				return &BadTextError{Where: "header." + k}
			}
		}
	}
	return nil
}

func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// validJSONText reports whether a body is valid UTF-8 with no NUL, neither as a byte
// nor as the JSON escape \u0000. An escaped backslash is skipped as a whole, so
// "\\u0000" (a backslash, then the letters u0000) is fine.
func validJSONText(b []byte) bool {
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	for i := bytes.IndexByte(b, '\\'); i >= 0 && i+1 < len(b); {
		if b[i+1] == 'u' && bytes.HasPrefix(b[i+2:], []byte("0000")) {
			return false
		}
		next := bytes.IndexByte(b[i+2:], '\\') // past the escaped character
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return true
}

// checkedBody checks a request body the first time it is read — by huma, after the
// operation's middleware (rate limits, access rules) has let the request through, so
// a refused request costs no body work. It reads up to limit+1 bytes (the caller's
// own limit then refuses a body that is too large, unchecked) and checks them with
// validJSONText; a body that fails makes Read return a *BadTextError, which the
// error hook (InstallErrorHook) answers as a 400.
type checkedBody struct {
	body  io.ReadCloser
	limit int64 // 0: no limit
	rest  *bytes.Reader
	err   error
}

func (c *checkedBody) Read(p []byte) (int, error) {
	if c.rest == nil && c.err == nil {
		c.load()
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.rest.Read(p)
}

func (c *checkedBody) load() {
	r := io.Reader(c.body)
	if c.limit > 0 {
		r = io.LimitReader(c.body, c.limit+1)
	}
	b, err := io.ReadAll(r)
	switch {
	case err != nil:
		c.err = err // a timeout stays a timeout
	case (c.limit <= 0 || int64(len(b)) <= c.limit) && !validJSONText(b):
		c.err = &BadTextError{Where: "body"}
	default:
		c.rest = bytes.NewReader(b)
	}
}

func (c *checkedBody) Close() error { return c.body.Close() }

// asBadText returns the *BadTextError among errs, if any.
func asBadText(errs []error) (*BadTextError, bool) {
	var bt *BadTextError
	ok := errors.As(errors.Join(errs...), &bt)
	return bt, ok
}
