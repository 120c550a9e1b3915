// Package apicheck checks HTTP answers against Agora's OpenAPI document, so the
// end-to-end suites fail when the server does something the document does not
// say — an undeclared status, a body or header that breaks its schema, a header
// the document never mentions. The checking itself is pb33f/libopenapi-validator
// (OpenAPI 3.1); this package decides what is checked and reports it readably.
//
// What is checked, per answer:
//   - a request whose method and path are an operation of the document: the
//     status must be declared (or covered by 4XX/default), the Content-Type must
//     be one the response declares, the body must match its schema (formats such
//     as uuid and date-time asserted), declared headers must match their schemas
//     and required ones must be present, and no header may be sent that the
//     response does not declare, except the transport and edge-wide headers in
//     IgnoredHeaders; a response declared without content must have no body.
//   - server-sent event streams (text/event-stream): status and headers when
//     the answer arrives, then each event as the caller reads it, against the
//     declared event schemas (event name, data, id).
//   - a request under /v1/ that is no operation of the document: any answer but
//     404 or 405 is a mismatch (an operation the document does not list).
//
// What is not checked, and why: everything else the server answers — the
// document's own files (/openapi.json, /openapi.yaml), the docs page, /metrics
// (Prometheus text, described by its own format) and the HTML web face, none of
// which the document describes; and of a 101 Switching Protocols answer, only
// the status is checked: its headers are the WebSocket handshake's (RFC 6455)
// and its frames are no HTTP answers. Requests are not checked: the
// suites send malformed requests on purpose to see them refused.
package apicheck

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/paths"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// IgnoredHeaders are the response headers an answer may carry without the
// document declaring them: HTTP's own framing and metadata (the content map
// already describes Content-Type), content negotiation, and the caching and
// browser-hardening directives the edge sets on every answer alike, which say
// nothing about the operation. Every other header — ETag, Location,
// Retry-After, WWW-Authenticate, X-Request-ID, Idempotent-Replayed, … — carries
// meaning a client relies on, so the response that sends it must declare it.
var IgnoredHeaders = []string{
	"Content-Type", "Content-Length", "Date", "Connection", "Keep-Alive", "Transfer-Encoding",
	"Vary", "Cache-Control", "X-Content-Type-Options", "Referrer-Policy",
}

// Checker checks answers against one OpenAPI document. It is safe for
// concurrent use.
type Checker struct {
	mu    sync.Mutex // the validator's caches are not documented as safe for concurrent use
	v     validator.Validator
	model *v3.Document
	opts  *config.ValidationOptions
}

// New parses doc (an OpenAPI 3.1 document, JSON or YAML) and returns a Checker
// for it.
func New(doc []byte) (*Checker, error) {
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("apicheck: parse the document: %w", err)
	}
	m, err := d.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("apicheck: build the document's model: %w", err)
	}
	opts := []config.Option{
		config.WithFormatAssertions(),
		config.WithBodyDecoder("text/event-stream", sseDecoder{}),
	}
	return &Checker{
		v:     validator.NewValidatorFromV3Model(&m.Model, opts...),
		model: &m.Model,
		opts:  config.NewValidationOptions(opts...),
	}, nil
}

// Kind says how an answer was treated.
type Kind int

const (
	// Skipped: the document does not describe this request (see the package comment).
	Skipped Kind = iota
	// Checked: the answer was checked against the operation.
	Checked
	// Stream: the status and headers were checked; the events are checked as read.
	Stream
)

// Result is the outcome of checking one answer.
type Result struct {
	Kind      Kind
	Operation string   // "GET /v1/products/{id}" (the document's path template), or the request's path
	Problems  []string // empty when the answer is what the document says
}

// Check checks res, the answer to req, whose body has been read into body
// (res.Body is not read). For an event stream, pass a nil body: only the status
// and headers are checked, and Events checks the events.
func (c *Checker) Check(req *http.Request, res *http.Response, body []byte) Result {
	item, template, ok := c.find(req)
	r := Result{Kind: Checked, Operation: req.Method + " " + template}
	if !ok {
		return c.unknown(req, res)
	}
	if isStream(res) {
		r.Kind = Stream
		body = nil
	}
	copyRes := *res
	copyRes.Body = http.NoBody
	if len(body) > 0 || r.Kind == Stream {
		copyRes.Body = bodyReader(body)
	}
	c.mu.Lock()
	valid, errs := c.v.ValidateHttpResponse(req, &copyRes)
	c.mu.Unlock()
	if !valid {
		r.Problems = describe(errs, req.URL.Path, template)
	}
	resp := responseFor(helpers.ExtractOperation(req, item), res.StatusCode)
	r.Problems = append(r.Problems, undeclaredHeaders(resp, res)...)
	if p := undeclaredBody(resp, res.StatusCode, body); p != "" {
		r.Problems = append(r.Problems, p)
	}
	return r
}

// find returns the document's path item and template for req, when its method
// is an operation there.
func (c *Checker) find(req *http.Request) (*v3.PathItem, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	item, errs, template := paths.FindPath(req, c.model, c.opts)
	if item == nil || len(errs) > 0 || helpers.ExtractOperation(req, item) == nil {
		return nil, "", false
	}
	return item, template, true
}

// unknown treats a request that is no operation of the document.
func (c *Checker) unknown(req *http.Request, res *http.Response) Result {
	r := Result{Kind: Skipped, Operation: req.Method + " " + req.URL.Path}
	if !strings.HasPrefix(req.URL.Path, "/v1/") {
		return r
	}
	r.Kind = Checked
	if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
		r.Problems = []string{fmt.Sprintf("status %d for an operation the document does not list (want 404 or 405)", res.StatusCode)}
	}
	return r
}

// responseFor returns the response op declares for status: the status itself,
// its class (4XX) or default; nil when there is none (the validator reports that).
func responseFor(op *v3.Operation, status int) *v3.Response {
	if op == nil || op.Responses == nil {
		return nil
	}
	if r := op.Responses.Codes.GetOrZero(strconv.Itoa(status)); r != nil {
		return r
	}
	if r := op.Responses.Codes.GetOrZero(fmt.Sprintf("%dXX", status/100)); r != nil {
		return r
	}
	return op.Responses.Default
}

// undeclaredHeaders reports each header res carries that resp does not declare,
// apart from IgnoredHeaders. (The validator's strict mode would do this only for
// responses that declare some header, and its body walk, v0.16.3, misreads
// $refs and maps; bodies are left to their schemas, which huma closes with
// additionalProperties: false.)
func undeclaredHeaders(resp *v3.Response, res *http.Response) []string {
	if resp == nil || res.StatusCode == http.StatusSwitchingProtocols {
		return nil // a 101's headers are the WebSocket handshake's (RFC 6455), not the API's
	}
	var declared []string
	if resp.Headers != nil {
		for name := range resp.Headers.KeysFromOldest() {
			declared = append(declared, name)
		}
	}
	slices.Sort(declared)
	var out []string
	for name := range res.Header {
		if slices.ContainsFunc(IgnoredHeaders, func(h string) bool { return strings.EqualFold(h, name) }) ||
			slices.ContainsFunc(declared, func(h string) bool { return strings.EqualFold(h, name) }) {
			continue
		}
		out = append(out, fmt.Sprintf("header %s is sent but not declared (declared: %s)", name, strings.Join(declared, ", ")))
	}
	return out
}

// undeclaredBody reports a body the response declares no content for.
func undeclaredBody(resp *v3.Response, status int, body []byte) string {
	if resp == nil || len(bytes.TrimSpace(body)) == 0 || resp.Content != nil && resp.Content.Len() > 0 {
		return ""
	}
	return fmt.Sprintf("a %d-byte body, but response %d declares no content", len(body), status)
}

func isStream(res *http.Response) bool {
	return strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream")
}

// describe turns the validator's errors into one line each: what is wrong, why,
// and where in the body or header. The request's path is written as the
// operation's template, so one defect seen on many ids is one line.
func describe(errs []*liberrors.ValidationError, path, template string) []string {
	var out []string
	for _, e := range errs {
		line := e.Message
		if e.Reason != "" && e.Reason != e.Message {
			line += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			where := f.FieldPath
			if where == "" {
				where = "/" + strings.Join(f.InstancePath, "/")
			}
			line += fmt.Sprintf("; at %s: %s", where, f.Reason)
		}
		out = append(out, strings.ReplaceAll(line, "'"+path+"'", "'"+template+"'"))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
