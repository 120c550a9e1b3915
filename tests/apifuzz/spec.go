// Package apifuzz drives an HTTP API from its OpenAPI 3.1 document: for every
// operation it generates valid requests from the schemas and invalid ones by
// mutating them (wrong types, missing and extra properties, huge and malformed
// strings, NUL and invalid UTF-8, out-of-range numbers, bad ids, headers and
// bodies), sends them as several callers at once, harvests ids from the answers
// to use in later requests, and checks every answer against rules that hold
// whatever the input: no 5xx, no transport error, every error an RFC 9457
// problem. It reads the document generically (encoding/json into maps), so it
// follows the API as it changes.
package apifuzz

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Schema is a JSON Schema object as decoded from the document.
type Schema = map[string]any

// Param is one parameter of an operation.
type Param struct {
	Name     string
	In       string // path, query or header
	Required bool
	Schema   Schema
}

// Access is who an operation admits, from its security requirements.
type Access int

// The kinds of access an operation declares.
const (
	Public   Access = iota // no security requirement
	Optional               // anonymous or signed in ({} among the requirements)
	SignedIn               // a bearer token without scopes
	Scoped                 // a bearer token with a scope (a role, e.g. admin)
)

// Operation is one method on one path.
type Operation struct {
	ID     string
	Method string // upper case
	Path   string // the template, e.g. /v1/products/{id}
	Params []Param
	Body   Schema // the application/json request body's schema; nil when none
	Access Access
}

// Spec is the part of an OpenAPI document the fuzzer uses.
type Spec struct {
	Operations []Operation // sorted by path, then method
	schemas    map[string]Schema
}

var methods = []string{"get", "put", "post", "delete", "patch"}

// Parse reads an OpenAPI 3.x document in JSON. It fails on a document without
// paths or with a $ref it cannot resolve.
func Parse(doc []byte) (*Spec, error) {
	var d struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Security   []map[string][]string                 `json:"security"`
		Components struct {
			Schemas map[string]Schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("apifuzz: decode the document: %w", err)
	}
	if len(d.Paths) == 0 {
		return nil, fmt.Errorf("apifuzz: the document has no paths")
	}
	s := &Spec{schemas: d.Components.Schemas}
	for name, sch := range s.schemas {
		if err := s.checkRefs(sch, 0); err != nil {
			return nil, fmt.Errorf("apifuzz: schema %s: %w", name, err)
		}
	}
	for path, item := range d.Paths {
		var shared []Param
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("apifuzz: %s parameters: %w", path, err)
			}
		}
		for _, m := range methods {
			raw, ok := item[m]
			if !ok {
				continue
			}
			op, err := s.operation(strings.ToUpper(m), path, raw, shared, d.Security)
			if err != nil {
				return nil, err
			}
			s.Operations = append(s.Operations, op)
		}
	}
	slices.SortFunc(s.Operations, func(a, b Operation) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return s, nil
}

func (s *Spec) operation(method, path string, raw json.RawMessage, shared []Param, security []map[string][]string) (Operation, error) {
	var o struct {
		ID          string                 `json:"operationId"`
		Parameters  []Param                `json:"parameters"`
		Security    *[]map[string][]string `json:"security"`
		RequestBody struct {
			Content map[string]struct {
				Schema Schema `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return Operation{}, fmt.Errorf("apifuzz: %s %s: %w", method, path, err)
	}
	if o.Security != nil {
		security = *o.Security
	}
	op := Operation{ID: o.ID, Method: method, Path: path, Params: append(slices.Clone(shared), o.Parameters...),
		Access: accessOf(security)}
	if op.ID == "" {
		op.ID = method + " " + path
	}
	if c, ok := o.RequestBody.Content["application/json"]; ok && c.Schema != nil {
		op.Body = c.Schema
	}
	for _, sch := range append([]Schema{op.Body}, paramSchemas(op.Params)...) {
		if err := s.checkRefs(sch, 0); err != nil {
			return Operation{}, fmt.Errorf("apifuzz: %s: %w", op.ID, err)
		}
	}
	return op, nil
}

func paramSchemas(ps []Param) []Schema {
	out := make([]Schema, len(ps))
	for i, p := range ps {
		out[i] = p.Schema
	}
	return out
}

func accessOf(security []map[string][]string) Access {
	if len(security) == 0 {
		return Public
	}
	access := SignedIn
	for _, req := range security {
		if len(req) == 0 {
			return Optional
		}
		for _, scopes := range req {
			if len(scopes) > 0 {
				access = Scoped
			}
		}
	}
	return access
}

// UnmarshalJSON reads a parameter object.
func (p *Param) UnmarshalJSON(b []byte) error {
	var v struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
		Schema   Schema `json:"schema"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Param{Name: v.Name, In: v.In, Required: v.Required || v.In == "path", Schema: v.Schema}
	return nil
}

// checkRefs fails when sch, or a schema inside it, has a $ref that Resolve cannot
// follow.
func (s *Spec) checkRefs(sch Schema, depth int) error {
	if sch == nil || depth > 32 {
		return nil
	}
	if ref, ok := sch["$ref"].(string); ok {
		if _, name := s.Resolve(sch); name == "" {
			return fmt.Errorf("unresolvable $ref %q", ref)
		}
		return nil // Parse checks every component
	}
	for _, sub := range subschemas(sch) {
		if err := s.checkRefs(sub, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// Resolve follows $ref (to #/components/schemas/…) until it reaches a schema
// without one, and returns it with the name of the last component followed ("" if
// none, or if a $ref cannot be followed: then the schema is empty).
func (s *Spec) Resolve(sch Schema) (Schema, string) {
	name := ""
	for range 16 {
		ref, ok := sch["$ref"].(string)
		if !ok {
			return sch, name
		}
		name, ok = strings.CutPrefix(ref, "#/components/schemas/")
		if !ok || s.schemas[name] == nil {
			return Schema{}, ""
		}
		sch = s.schemas[name]
	}
	return Schema{}, ""
}

// subschemas lists the schemas directly inside sch.
func subschemas(sch Schema) []Schema {
	var out []Schema
	add := func(v any) {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	if props, ok := sch["properties"].(map[string]any); ok {
		for _, p := range props {
			add(p)
		}
	}
	add(sch["items"])
	add(sch["additionalProperties"])
	for _, k := range []string{"oneOf", "anyOf", "allOf"} {
		if list, ok := sch[k].([]any); ok {
			for _, v := range list {
				add(v)
			}
		}
	}
	return out
}

// propertyNames calls fn with the name of every property in sch, following $refs.
func (s *Spec) propertyNames(sch Schema, depth int, fn func(string)) {
	if sch == nil || depth > 8 {
		return
	}
	sch, _ = s.Resolve(sch)
	if props, ok := sch["properties"].(map[string]any); ok {
		for name := range props {
			fn(name)
		}
	}
	for _, sub := range subschemas(sch) {
		s.propertyNames(sub, depth+1, fn)
	}
}
