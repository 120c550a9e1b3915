package apifuzz

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// testDoc is a small API in the shape the fuzzer reads: a collection with a
// create (body with a $ref, pattern, enum, bounds, format and nested object), a
// read by id with an If-None-Match header, a list with a limit and a cursor, and
// a public health check.
const testDoc = `{
  "openapi": "3.1.0",
  "security": [{"bearerAuth": []}],
  "paths": {
    "/health": {"get": {"operationId": "health", "security": []}},
    "/v1/things": {
      "get": {"operationId": "list-things", "security": [{}, {"bearerAuth": []}], "parameters": [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
        {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 200}}]},
      "post": {"operationId": "create-thing", "security": [{"bearerAuth": ["admin"]}],
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ThingInput"}}}}}
    },
    "/v1/things/{id}": {
      "parameters": [{"name": "id", "in": "path", "schema": {"type": "string", "format": "uuid"}}],
      "get": {"operationId": "get-thing", "parameters": [{"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}]}
    }
  },
  "components": {"schemas": {
    "ThingInput": {"type": "object", "additionalProperties": false, "required": ["sku", "name", "price"], "properties": {
      "sku": {"type": "string", "pattern": "^[A-Z0-9][A-Z0-9_-]{0,63}$"},
      "name": {"type": "string", "minLength": 1, "maxLength": 20},
      "kind": {"type": "string", "enum": ["a", "b"]},
      "owner": {"type": "string", "format": "email", "maxLength": 254},
      "tags": {"type": ["array", "null"], "items": {"type": "string", "maxLength": 5}, "maxItems": 3},
      "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
      "price": {"$ref": "#/components/schemas/Money"}}},
    "Money": {"type": "object", "additionalProperties": false, "required": ["amount", "currency"], "properties": {
      "amount": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 100000000000},
      "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}}
  }}
}`

func testSpec(t *testing.T) *Spec {
	t.Helper()
	spec, err := Parse([]byte(testDoc))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestParse(t *testing.T) {
	spec := testSpec(t)
	var got []string
	for _, op := range spec.Operations {
		got = append(got, fmt.Sprintf("%s %s %s access=%d params=%d body=%v", op.ID, op.Method, op.Path, op.Access, len(op.Params), op.Body != nil))
	}
	want := []string{
		"health GET /health access=0 params=0 body=false",
		"list-things GET /v1/things access=1 params=2 body=false",
		"create-thing POST /v1/things access=3 params=0 body=true",
		"get-thing GET /v1/things/{id} access=2 params=2 body=false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("operations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := Parse([]byte(strings.Replace(testDoc, "#/components/schemas/Money", "#/components/schemas/Nope", 1))); err == nil {
		t.Error("a $ref to a missing schema parsed")
	}
}

// conforms checks v against the parts of JSON Schema the generator promises to
// respect.
func conforms(spec *Spec, sch Schema, v any) error {
	sch, _ = spec.Resolve(sch)
	if enum, ok := sch["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%v not in %v", v, enum)
	}
	switch typeOf(sch) {
	case "string":
		return conformsString(sch, v)
	case "integer":
		n, ok := v.(int64)
		lo, hasLo := num(sch, "minimum")
		hi, hasHi := num(sch, "maximum")
		if !ok || hasLo && float64(n) < lo || hasHi && float64(n) > hi {
			return fmt.Errorf("integer %v (%T) outside [%v, %v]", v, v, lo, hi)
		}
	case "array":
		if v == nil {
			return nil // the schema allows null
		}
		for _, x := range v.([]any) {
			if err := conforms(spec, sch["items"].(map[string]any), x); err != nil {
				return err
			}
		}
	case "object":
		return conformsObject(spec, sch, v)
	}
	return nil
}

func conformsString(sch Schema, v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%v (%T) is not a string", v, v)
	}
	n := float64(utf8.RuneCountInString(s))
	if lo, ok := num(sch, "minLength"); ok && n < lo {
		return fmt.Errorf("%q shorter than %v", s, lo)
	}
	if hi, ok := num(sch, "maxLength"); ok && n > hi {
		return fmt.Errorf("%q longer than %v", s, hi)
	}
	if p, ok := sch["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(s) {
		return fmt.Errorf("%q does not match %s", s, p)
	}
	if sch["format"] == "email" && !regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[a-z]+$`).MatchString(s) {
		return fmt.Errorf("%q is not an email", s)
	}
	return nil
}

func conformsObject(spec *Spec, sch Schema, v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%v (%T) is not an object", v, v)
	}
	for _, r := range stringsOf(sch["required"]) {
		if _, ok := m[r]; !ok {
			return fmt.Errorf("required %q missing from %v", r, m)
		}
	}
	props, _ := sch["properties"].(map[string]any)
	for k, x := range m {
		sub, ok := props[k].(map[string]any)
		if !ok {
			sub, ok = sch["additionalProperties"].(map[string]any)
		}
		if !ok {
			return fmt.Errorf("property %q is not allowed", k)
		}
		if err := conforms(spec, sub, x); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func TestValidValuesConform(t *testing.T) {
	spec := testSpec(t)
	g := &gen{r: rand.New(rand.NewPCG(1, 2)), spec: spec, pools: NewPools(nil)}
	g.pools.Add(g.r, "sku", "lower-case-is-not-a-sku") // a harvested value that does not fit is not used
	body := spec.Operations[2].Body
	seenMax := false
	for range 2000 {
		v := g.value(body, "", 0)
		if err := conforms(spec, body, v); err != nil {
			t.Fatalf("generated %v: %v", v, err)
		}
		seenMax = seenMax || v.(map[string]any)["price"].(map[string]any)["amount"] == int64(1e11)
	}
	if !seenMax {
		t.Error("never generated the schema's maximum")
	}
	if n := g.integer(Schema{"minimum": 0.0, "format": "int64"}); n < 0 {
		t.Errorf("integer below minimum: %d", n)
	}
	for range 100 {
		if n := g.integer(Schema{"minimum": 0.0}); n == math.MaxInt64 {
			return
		}
	}
	t.Error("an integer without maximum is never the largest int64")
}

// testServer is an implementation of testDoc whose faults the tests choose.
type testServer struct {
	mu       sync.Mutex
	things   map[string]bool
	knownHit int // reads of an id it handed out
	// faults
	nulIs500      bool // a NUL in a created thing's name answers 500
	notFoundPlain bool // an unknown id answers a text/plain 404
}

func (s *testServer) problem(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"title":%q,"status":%d}`, http.StatusText(status), status)
}

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.URL.Path == "/health" || r.URL.Path == "/v1/things" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"items":[],"next_cursor":"cDEuYWJj"}`)
	case r.URL.Path == "/v1/things" && r.Method == http.MethodPost:
		var in struct{ Name string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Name == "" {
			s.problem(w, http.StatusUnprocessableEntity)
			return
		}
		if s.nulIs500 && strings.Contains(in.Name, "\x00") {
			s.problem(w, http.StatusInternalServerError)
			return
		}
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(s.things))
		s.things[id] = true
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q}`, id)
	case strings.HasPrefix(r.URL.Path, "/v1/things/") && r.Method == http.MethodGet:
		if s.things[strings.TrimPrefix(r.URL.Path, "/v1/things/")] {
			s.knownHit++
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{}`)
		} else if s.notFoundPlain {
			http.NotFound(w, r)
		} else {
			s.problem(w, http.StatusNotFound)
		}
	default:
		s.problem(w, http.StatusMethodNotAllowed)
	}
}

func fuzzTestServer(t *testing.T, s *testServer, requests int) *Report {
	t.Helper()
	s.things = map[string]bool{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	return Run(t.Context(), Config{Base: srv.URL, Spec: testSpec(t), Requests: requests, Seed: 7, Workers: 4,
		Customers: []string{"c"}, Admins: []string{"a"}})
}

func TestRunPassesAHealthyServer(t *testing.T) {
	s := &testServer{}
	rep := fuzzTestServer(t, s, 2000)
	if len(rep.Failures) > 0 || rep.Requests != 2000 {
		t.Errorf("a healthy server: %d requests, failures %v\n%s", rep.Requests, rep.Failures, rep)
	}
	if s.knownHit == 0 {
		t.Error("no request named an id that an answer gave")
	}
	for _, m := range Mutations() {
		if _, ok := rep.ByMutation[m]; !ok {
			t.Errorf("mutation %s never applied", m)
		}
	}
}

func TestRunCatchesA500AndAnErrorThatIsNotAProblem(t *testing.T) {
	rep := fuzzTestServer(t, &testServer{nulIs500: true, notFoundPlain: true}, 2000)
	if rep.Failures["5xx"] == 0 || rep.Failures["not-problem"] == 0 {
		t.Fatalf("failures %v, want 5xx and not-problem\n%s", rep.Failures, rep)
	}
	var saw500 bool
	for _, f := range rep.Examples {
		saw500 = saw500 || f.Kind == "5xx" && strings.Contains(f.Request, "POST /v1/things") && strings.Contains(f.Request, `\u0000`)
	}
	if !saw500 {
		t.Errorf("no 5xx example names the request that caused it:\n%s", rep)
	}
}
