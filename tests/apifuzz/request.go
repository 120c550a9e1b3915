package apifuzz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// badUTF8 stands in a JSON value for bytes that are not UTF-8: encoding/json
// would replace them, so the encoded body gets them by substitution.
const badUTF8 = "~~bad-utf8~~"

// request is one request before it is encoded.
type request struct {
	op       *Operation
	role     string
	token    string // bearer token; "" sends no Authorization header
	auth     string // a whole Authorization header, when a mutation set one
	path     map[string]string
	query    [][2]string // in order; a name may repeat
	header   http.Header
	body     any  // the JSON body, when hasBody
	hasBody  bool // send body (JSON-encoded) or raw
	raw      []byte
	ctype    string // Content-Type; "" means application/json when there is a body
	mutation string // "valid", or the name of the mutation applied
	method   string // when set, sent instead of the operation's
	suffix   string // appended to the path
}

// verb is the method req is sent with.
func (req *request) verb() string {
	if req.method != "" {
		return req.method
	}
	return req.op.Method
}

// build makes a valid request for op as role (token: its bearer token), leaving
// out optional parameters now and then. Protected values are never put in the
// path of an unsafe method.
func (g *gen) build(op *Operation, role, token string, protected map[string]bool) *request {
	req := &request{op: op, role: role, token: token, path: map[string]string{}, header: http.Header{}, mutation: "valid"}
	for _, p := range op.Params {
		if !p.Required && g.r.IntN(3) == 0 {
			continue
		}
		v := g.paramValue(op, p)
		if p.In == "path" && op.Method != http.MethodGet {
			for i := 0; protected[v] && i < 8; i++ {
				v = fmt.Sprint(g.value(p.Schema, "", 0))
			}
		}
		switch p.In {
		case "path":
			req.path[p.Name] = v
		case "query":
			req.query = append(req.query, [2]string{p.Name, v})
		case "header":
			req.header.Set(p.Name, v)
		}
	}
	g.currentETags(req)
	if op.Body != nil {
		req.body, req.hasBody = g.value(op.Body, "", 0), true
	}
	return req
}

// currentETags puts, most of the time, the current ETag of the resource the
// request's path names in its If-Match or If-None-Match header, when one was seen.
func (g *gen) currentETags(req *request) {
	for _, name := range []string{"If-Match", "If-None-Match"} {
		if req.header.Get(name) == "" || g.r.IntN(5) == 0 {
			continue
		}
		for _, id := range req.path {
			if et, ok := g.pools.Pick(g.r, etagKind(id)); ok {
				req.header.Set(name, et)
			}
		}
	}
}

// paramValue is a valid value of p, as text; ASCII for headers.
func (g *gen) paramValue(op *Operation, p Param) string {
	kind := paramKind(op.Path, p)
	if p.In == "header" {
		kind = strings.ToLower(p.Name)
	}
	v := fmt.Sprint(g.value(p.Schema, kind, 0))
	if p.In == "header" && strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		v = g.word(1, 30)
	}
	return v
}

// target is the URL path and query of req, escaped.
func (req *request) target() string {
	path := req.op.Path
	for name, v := range req.path {
		path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(v))
	}
	path += req.suffix
	if len(req.query) == 0 {
		return path
	}
	parts := make([]string, len(req.query))
	for i, kv := range req.query {
		parts[i] = url.QueryEscape(kv[0]) + "=" + url.QueryEscape(kv[1])
	}
	return path + "?" + strings.Join(parts, "&")
}

// encode returns req's body bytes and whether a body is sent.
func (req *request) encode() ([]byte, bool) {
	if req.raw != nil {
		return req.raw, true
	}
	if !req.hasBody {
		return nil, false
	}
	b, err := json.Marshal(req.body)
	if err != nil {
		return []byte(fmt.Sprintf("%v", req.body)), true // a mutation made it unencodable: send text
	}
	return bytes.ReplaceAll(b, []byte(badUTF8), []byte("\xff\xfe")), true
}

// httpRequest turns req into an *http.Request against base.
func (req *request) httpRequest(base string) (*http.Request, error) {
	var body io.Reader
	b, has := req.encode()
	if has {
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequest(req.verb(), base+req.target(), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range req.header {
		hr.Header[k] = slices.Clone(vs)
	}
	switch {
	case req.auth != "":
		hr.Header.Set("Authorization", req.auth)
	case req.token != "":
		hr.Header.Set("Authorization", "Bearer "+req.token)
	}
	if has {
		ct := req.ctype
		if ct == "" {
			ct = "application/json"
		}
		if ct != "-" {
			hr.Header.Set("Content-Type", ct)
		}
	}
	return hr, nil
}

// String describes req for a failure report: role, mutation, method, target,
// headers the fuzzer set, and the start of the body.
func (req *request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s, %s] %s %s", req.role, req.mutation, req.verb(), req.target())
	for _, k := range sortedKeys(req.header) {
		fmt.Fprintf(&b, " %s: %q", k, clip(req.header.Get(k), 80))
	}
	if req.auth != "" {
		fmt.Fprintf(&b, " Authorization: %q", clip(req.auth, 60))
	}
	if body, ok := req.encode(); ok {
		text := clip(string(body), 240)
		if utf8.ValidString(text) && !strings.ContainsFunc(text, unicode.IsControl) {
			fmt.Fprintf(&b, " body(%d bytes)=%s", len(body), text) // as sent: JSON's own escapes show
		} else {
			fmt.Fprintf(&b, " body(%d bytes, Go-quoted)=%q", len(body), text)
		}
	}
	return b.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
