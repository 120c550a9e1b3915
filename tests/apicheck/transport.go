package apicheck

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Transport is an http.RoundTripper that checks every answer it carries with
// its Checker and records what does not match the document. The caller gets the
// answer unchanged (its body read into memory and handed back, except a
// stream's, whose events are checked as they are read). A test fails on
// Mismatches when it ends; see Report.
type Transport struct {
	Base    http.RoundTripper // nil: http.DefaultTransport
	Checker *Checker

	mu         sync.Mutex
	mismatches map[string]*Mismatch // by operation, status and problem
	order      []string
	checked    int
	skipped    map[string]int // requests the document does not describe, by path
}

// Mismatch is one thing the server did that the document does not say, with how
// often it was seen and one request that showed it.
type Mismatch struct {
	Operation string // "GET /v1/products/{id}"
	Status    int
	Problem   string
	Example   string // "GET /v1/products/0190…" — the first request that showed it
	Count     int
}

// RoundTrip sends req with Base and checks the answer.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	res, err := base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	if isStream(res) {
		r := t.Checker.Check(req, res, nil)
		t.record(req, res.StatusCode, r)
		if r.Kind == Stream {
			_, template, _ := strings.Cut(r.Operation, " ")
			res.Body = &eventChecker{body: res.Body, c: t.Checker, req: req, res: res, template: template,
				report: func(p []string) { t.add(req, res.StatusCode, r.Operation, p) }}
		}
		return res, nil
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		t.record(req, res.StatusCode, t.Checker.Check(req, res, nil))
		return res, nil
	}
	body, readErr := io.ReadAll(res.Body)
	_ = res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	if readErr != nil {
		// The caller sees the same error when it reads; a torn answer is no mismatch.
		res.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{readErr}))
		return res, nil
	}
	t.record(req, res.StatusCode, t.Checker.Check(req, res, body))
	return res, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func (t *Transport) record(req *http.Request, status int, r Result) {
	t.mu.Lock()
	if r.Kind == Skipped {
		if t.skipped == nil {
			t.skipped = map[string]int{}
		}
		t.skipped[req.URL.Path]++
	} else {
		t.checked++
	}
	t.mu.Unlock()
	t.add(req, status, r.Operation, r.Problems)
}

func (t *Transport) add(req *http.Request, status int, op string, problems []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mismatches == nil {
		t.mismatches = map[string]*Mismatch{}
	}
	for _, p := range problems {
		key := fmt.Sprintf("%s %d %s", op, status, p)
		m := t.mismatches[key]
		if m == nil {
			m = &Mismatch{Operation: op, Status: status, Problem: p, Example: req.Method + " " + req.URL.RequestURI()}
			t.mismatches[key] = m
			t.order = append(t.order, key)
		}
		m.Count++
	}
}

// Mismatches returns what the transport has seen so far, in the order first seen.
func (t *Transport) Mismatches() []Mismatch {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Mismatch, 0, len(t.order))
	for _, k := range t.order {
		out = append(out, *t.mismatches[k])
	}
	return out
}

// Counts returns how many answers were checked, and how many were not because
// the document does not describe them, by path.
func (t *Transport) Counts() (checked int, skipped map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	skipped = make(map[string]int, len(t.skipped))
	for k, v := range t.skipped {
		skipped[k] = v
	}
	return t.checked, skipped
}

// Report formats mismatches for a test failure: one line per operation, status
// and problem, sorted, with a count and an example request.
func Report(ms []Mismatch) string {
	lines := make([]string, 0, len(ms))
	for _, m := range ms {
		lines = append(lines, fmt.Sprintf("  %s → %d: %s  (×%d, e.g. %s)", m.Operation, m.Status, m.Problem, m.Count, m.Example))
	}
	slices.Sort(lines)
	return fmt.Sprintf("%d answers differ from the OpenAPI document:\n%s", len(ms), strings.Join(lines, "\n"))
}
