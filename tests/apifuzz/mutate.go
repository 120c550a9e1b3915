package apifuzz

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
)

// A mutation makes a valid request invalid in one way. It reports false when it
// does not apply to the request (e.g. a body mutation on a request without body).
type mutation struct {
	name  string
	apply func(g *gen, req *request) bool
	// on, if set, says which operations the mutation is for; otherwise those it
	// applied to in a trial run (which cannot tell for one that needs harvested
	// values).
	on func(op *Operation) bool
}

// mutations is every way the fuzzer breaks a request. Names say where (body,
// path, query, header, auth) and what; Config.Skip leaves some out by substring.
var mutations = []mutation{
	{"body-wrong-type", bodyMutation(wrongType), nil},
	{"body-missing-required", (*gen).missingRequired, nil},
	{"body-extra-prop", bodyMutation(func(g *gen, m map[string]any, _ string, _ Schema) { m[g.word(1, 16)] = g.word(1, 8) }), nil},
	{"body-many-extra-props", manyExtraProps, nil},
	{"body-huge-string", bodyMutation(hugeString), nil},
	{"body-nul", bodyMutation(func(g *gen, m map[string]any, k string, _ Schema) { m[k] = g.infix(anyString(m[k]), "\x00") }), nil},
	{"body-bad-utf8", bodyMutation(func(g *gen, m map[string]any, k string, _ Schema) { m[k] = g.infix(anyString(m[k]), badUTF8) }), nil},
	{"body-nul-key", bodyMutation(func(g *gen, m map[string]any, k string, _ Schema) { m[k+"\x00"] = m[k]; delete(m, k) }), nil},
	{"body-bad-number", bodyMutation(badNumber), nil},
	{"body-deep-nesting", bodyMutation(deepNesting), nil},
	{"body-empty", rawBody(func(*gen) string { return "" }), nil},
	{"body-not-json", rawBody(func(g *gen) string {
		return pick(g.r, "hello", "{", "}", `{"a":`, "<xml/>", "a=1&b=2", "\x00\x01\x02", "\xff\xfe\xfd", "{'single':'quotes'}", "[1,2,", "NaN")
	}), nil},
	{"body-wrong-json", rawBody(func(g *gen) string { return pick(g.r, "null", "[]", "[{}]", "0", `"text"`, "true", "{}", "1e999") }), nil},
	{"body-duplicate-key", duplicateKey, nil},
	{"body-content-type", contentType, nil},
	{"body-unexpected", unexpectedBody, nil},
	{"path-other-id", pathParam(func(g *gen, p Param, _ string) string { return g.otherID(p) }), nil},
	{"path-nul", pathParam(func(g *gen, _ Param, v string) string { return g.infix(v, "\x00") }), nil},
	{"path-bad-utf8", pathParam(func(g *gen, _ Param, v string) string { return g.infix(v, "\xff\xfe") }), nil},
	{"path-long", pathParam(func(g *gen, _ Param, v string) string { return v + strings.Repeat("a", 256+g.r.IntN(6000)) }), nil},
	{"path-odd", pathParam(func(g *gen, _ Param, v string) string {
		return pick(g.r, " ", "%", "..", "a/b", "-1", "0", "1e9", "99999999999999999999", "null", "' OR '1'='1", "{id}", "é", strings.ToUpper(v), "{"+v+"}", v+" ")
	}), nil},
	{"query-wrong", queryParam(badQueryValue), nil},
	{"query-nul", queryParam(func(g *gen, _ Param, v string) string { return g.infix(v, "\x00") }), nil},
	{"query-bad-utf8", queryParam(func(g *gen, _ Param, v string) string { return g.infix(v, "\xff\xfe") }), nil},
	{"query-long", queryParam(func(g *gen, p Param, v string) string { return v + g.text(longerThan(p.Schema)) }), nil},
	{"query-unknown", func(g *gen, req *request) bool {
		req.query = append(req.query, [2]string{g.word(1, 10), g.word(0, 10)})
		return true
	}, nil},
	{"query-forged", queryForged, func(op *Operation) bool {
		return slices.ContainsFunc(op.Params, func(p Param) bool { return p.In == "query" })
	}},
	{"query-repeat", queryParam(func(g *gen, p Param, v string) string { return v }), nil},
	{"header-bad", headerParam(badHeaderValue), nil},
	{"header-bad-utf8", headerParam(func(g *gen, v string) string { return g.infix(v, "\xff\xfe") }), nil},
	{"header-missing", func(g *gen, req *request) bool {
		for _, p := range req.op.Params {
			if p.In == "header" && req.header.Get(p.Name) != "" {
				req.header.Del(p.Name)
				return true
			}
		}
		return false
	}, nil},
	{"auth-bad", badAuth, nil},
	{"method-other", otherMethod, nil},
	{"path-suffix", func(g *gen, req *request) bool {
		req.suffix = pick(g.r, "/", "/x", "//", "/..", "/%2e%2e", "/"+g.uuid(), ".json")
		return true
	}, nil},
}

// mutate applies one of ms (those that apply to req's operation) to req; it
// leaves req valid when none applies to this request in a few tries.
func (g *gen) mutate(req *request, ms []mutation) {
	for range 6 {
		m := ms[g.r.IntN(len(ms))]
		if m.apply(g, req) {
			req.mutation = m.name
			return
		}
	}
}

func pick(r *rand.Rand, options ...string) string { return options[r.IntN(len(options))] }

// infix puts bad somewhere in s.
func (g *gen) infix(s, bad string) string {
	i := g.r.IntN(len(s) + 1)
	return s[:i] + bad + s[i:]
}

func anyString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// slot finds a property to mutate in req's body: a random object in it (the body
// itself or one nested in it) and one of its keys, with the property's schema.
// It reports false when the body is not an object or has no properties.
func (g *gen) slot(req *request) (map[string]any, string, Schema, bool) {
	m, ok := req.body.(map[string]any)
	if !ok || !req.hasBody || req.raw != nil {
		return nil, "", nil, false
	}
	sch, _ := g.spec.Resolve(req.op.Body)
	for depth := 0; len(m) > 0; depth++ {
		keys := sortedKeys(m)
		k := keys[g.r.IntN(len(keys))]
		props, _ := sch["properties"].(map[string]any)
		sub, _ := props[k].(map[string]any)
		sub, _ = g.spec.Resolve(sub)
		if child, ok := m[k].(map[string]any); ok && len(child) > 0 && depth < 4 && g.r.IntN(2) == 0 {
			m, sch = child, sub
			continue
		}
		return m, k, sub, true
	}
	return nil, "", nil, false
}

// bodyMutation applies fn to a property slot of the body.
func bodyMutation(fn func(g *gen, m map[string]any, key string, sch Schema)) func(*gen, *request) bool {
	return func(g *gen, req *request) bool {
		m, k, sch, ok := g.slot(req)
		if ok {
			fn(g, m, k, sch)
		}
		return ok
	}
}

func wrongType(g *gen, m map[string]any, k string, _ Schema) {
	options := []any{"text", 42, -7.5, true, nil, []any{1, "a"}, map[string]any{"x": 1}, "", json.Number("1e400")}
	for {
		v := options[g.r.IntN(len(options))]
		if fmt.Sprintf("%T", v) != fmt.Sprintf("%T", m[k]) {
			m[k] = v
			return
		}
	}
}

// missingRequired deletes a required property of the body or of an object in it.
func (g *gen) missingRequired(req *request) bool {
	m, ok := req.body.(map[string]any)
	if !ok || !req.hasBody {
		return false
	}
	sch, _ := g.spec.Resolve(req.op.Body)
	for range 4 {
		if req := stringsOf(sch["required"]); len(req) > 0 && g.r.IntN(2) == 0 {
			delete(m, req[g.r.IntN(len(req))])
			return true
		}
		props, _ := sch["properties"].(map[string]any)
		keys := sortedKeys(m)
		if len(keys) == 0 {
			break
		}
		k := keys[g.r.IntN(len(keys))]
		child, ok := m[k].(map[string]any)
		if !ok {
			continue
		}
		sub, _ := props[k].(map[string]any)
		m, sch = child, sub
		sch, _ = g.spec.Resolve(sch)
	}
	if req := stringsOf(sch["required"]); len(req) > 0 {
		delete(m, req[g.r.IntN(len(req))])
		return true
	}
	return false
}

func manyExtraProps(g *gen, req *request) bool {
	m, ok := req.body.(map[string]any)
	if !ok || !req.hasBody {
		return false
	}
	for i := range 50 + g.r.IntN(500) {
		m[fmt.Sprintf("extra%d", i)] = g.word(0, 20)
	}
	return true
}

// longerThan is a length beyond the schema's maxLength (or a long one).
func longerThan(sch Schema) int {
	if n, ok := num(sch, "maxLength"); ok {
		return int(n) + 1
	}
	return 4096
}

func hugeString(g *gen, m map[string]any, k string, sch Schema) {
	n := longerThan(sch)
	switch g.r.IntN(4) {
	case 0:
		n-- // exactly at the limit
	case 1:
		n = 64 << 10
	case 2:
		n = 900 << 10 // just under a 1 MiB body limit
	}
	unit := pick(g.r, "a", "é", "日", " ")
	if n > 64<<10 {
		unit = "a"
	}
	m[k] = strings.Repeat(unit, n)
}

func badNumber(g *gen, m map[string]any, k string, sch Schema) {
	lo, hasLo := num(sch, "minimum")
	hi, hasHi := num(sch, "maximum")
	options := []any{-1, 0, 1.5, json.Number("-0"), json.Number("9223372036854775808"), json.Number("-9223372036854775809"),
		json.Number("1e308"), json.Number("-1e308"), json.Number("1e-400"), json.Number("123456789012345678901234567890")}
	if hasLo {
		options = append(options, lo-1)
	}
	if hasHi {
		options = append(options, hi+1)
	}
	m[k] = options[g.r.IntN(len(options))]
}

func deepNesting(g *gen, m map[string]any, k string, _ Schema) {
	var v any = g.word(1, 5)
	for range 10 + g.r.IntN(490) {
		if g.r.IntN(2) == 0 {
			v = []any{v}
		} else {
			v = map[string]any{"a": v}
		}
	}
	m[k] = v
}

func rawBody(fn func(g *gen) string) func(*gen, *request) bool {
	return func(g *gen, req *request) bool {
		if req.op.Body == nil {
			return false
		}
		req.raw = []byte(fn(g))
		return true
	}
}

func duplicateKey(g *gen, req *request) bool {
	b, ok := req.encode()
	if !ok || req.raw != nil || len(b) < 2 || b[0] != '{' {
		return false
	}
	m, _ := req.body.(map[string]any)
	keys := sortedKeys(m)
	if len(keys) == 0 {
		return false
	}
	k, _ := json.Marshal(keys[g.r.IntN(len(keys))])
	req.raw = append([]byte(fmt.Sprintf(`{%s:%q,`, k, g.word(0, 8))), b[1:]...)
	return true
}

func contentType(g *gen, req *request) bool {
	if !req.hasBody {
		return false
	}
	req.ctype = pick(g.r, "-", "text/plain", "application/x-www-form-urlencoded", "application/xml",
		"multipart/form-data; boundary=x", "application/json; charset=latin1", "application/merge-patch+json", "application/problem+json")
	return true
}

func unexpectedBody(g *gen, req *request) bool {
	if req.op.Body != nil {
		return false
	}
	req.hasBody, req.body = true, map[string]any{g.word(1, 8): g.word(0, 8)}
	return true
}

// otherID is another kind's id, a random one, or a malformed one.
func (g *gen) otherID(p Param) string {
	kinds := []string{"product", "order", "user", "sku", "dead-letter", "notification"}
	if v, ok := g.pools.Pick(g.r, kinds[g.r.IntN(len(kinds))]); ok && g.r.IntN(2) == 0 {
		return v
	}
	u := g.uuid()
	return pick(g.r, u, strings.ToUpper(u), strings.ReplaceAll(u, "-", ""), u[:35], u+"0",
		"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", g.word(1, 40))
}

// pathParam changes one path parameter's value.
func pathParam(fn func(g *gen, p Param, v string) string) func(*gen, *request) bool {
	return func(g *gen, req *request) bool {
		for _, p := range shuffled(g.r, req.op.Params) {
			if p.In == "path" {
				req.path[p.Name] = fn(g, p, req.path[p.Name])
				return true
			}
		}
		return false
	}
}

// queryParam changes (or adds, or repeats) one query parameter.
func queryParam(fn func(g *gen, p Param, v string) string) func(*gen, *request) bool {
	return func(g *gen, req *request) bool {
		for _, p := range shuffled(g.r, req.op.Params) {
			if p.In != "query" {
				continue
			}
			v := fmt.Sprint(g.value(p.Schema, "", 0))
			req.query = append(req.query, [2]string{p.Name, fn(g, p, v)})
			return true
		}
		return false
	}
}

// queryForged sends a harvested value of a query parameter (a cursor, say) whose
// base64 content is altered and encoded again as it was: a cursor that names
// something else, or nothing the server could have made.
func queryForged(g *gen, req *request) bool {
	encodings := []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding}
	for _, p := range shuffled(g.r, req.op.Params) {
		v, ok := g.pools.Pick(g.r, paramKind(req.op.Path, p))
		if p.In != "query" || !ok {
			continue
		}
		for _, enc := range encodings {
			if raw, err := enc.DecodeString(v); err == nil && len(raw) > 0 {
				req.query = append(req.query, [2]string{p.Name, enc.EncodeToString([]byte(g.forge(string(raw))))})
				return true
			}
		}
	}
	return false
}

// forge alters s: one of its fields replaced with something odd, or s cut,
// extended, or with something odd inside.
func (g *gen) forge(s string) string {
	odd := pick(g.r, "", "\x00", "\xff", "-1", "0", "99999999999999999999", "' OR '1'='1", "%", g.uuid(),
		strings.Repeat("9", 300), ".", "..", "NaN", "1e309", "null", "p1", "p2")
	switch g.r.IntN(4) {
	case 0:
		for _, sep := range []string{".", ":", "|", ",", "_", " "} {
			if strings.Contains(s, sep) {
				parts := strings.Split(s, sep)
				parts[g.r.IntN(len(parts))] = odd
				return strings.Join(parts, sep)
			}
		}
		return odd
	case 1:
		return s[:g.r.IntN(len(s)+1)]
	case 2:
		return s + odd
	}
	return g.infix(s, odd)
}

func badQueryValue(g *gen, p Param, v string) string {
	return pick(g.r, "", "-1", "0", "1.5", "abc", "99999999999999999999", "1e3", "true", "null", "[]", "%", "'",
		strings.Repeat("9", 400), v+"x", strings.ToUpper(v), " "+v)
}

// headerParam changes one header parameter (adding it when the request left it out).
func headerParam(fn func(g *gen, v string) string) func(*gen, *request) bool {
	return func(g *gen, req *request) bool {
		for _, p := range shuffled(g.r, req.op.Params) {
			if p.In == "header" {
				req.header.Set(p.Name, fn(g, req.header.Get(p.Name)))
				return true
			}
		}
		return false
	}
}

func badHeaderValue(g *gen, v string) string {
	return pick(g.r, "", " ", "*", `W/"1"`, `"-1"`, `"0"`, `"99999999999999999999"`, `"abc"`, "1", `""`, `"1", "2"`,
		v+v, strings.Repeat("k", 201), strings.Repeat("x", 4000), "é", "\t", `"`+g.uuid()+`"`)
}

func badAuth(g *gen, req *request) bool {
	tok := req.token
	if tok == "" {
		tok = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"
	}
	parts := strings.Split(tok, ".")
	forged := tok
	if len(parts) == 3 {
		forged = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
	}
	flipped := []byte(tok)
	flipped[g.r.IntN(len(flipped))] ^= 1
	req.auth = pick(g.r, "Bearer", "Bearer ", "Bearer x", "Basic YTpi", "bearer "+tok, "Bearer "+tok+" extra",
		"Bearer "+forged, "Bearer "+string(flipped), "Bearer "+tok[:len(tok)/2], "Bearer "+strings.Repeat("a", 9000),
		"Bearer é"+tok)
	req.role += "+bad-token"
	return true
}

// otherMethod sends the request with a method its path does not declare.
func otherMethod(g *gen, req *request) bool {
	var others []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch} {
		if !slices.ContainsFunc(g.spec.Operations, func(op Operation) bool { return op.Path == req.op.Path && op.Method == m }) {
			others = append(others, m)
		}
	}
	if len(others) == 0 {
		return false
	}
	req.method = others[g.r.IntN(len(others))]
	return true
}

func shuffled(r *rand.Rand, ps []Param) []Param {
	out := append([]Param(nil), ps...)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
