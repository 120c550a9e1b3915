package main

import (
	"encoding/json"
	"path"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// schemaPrefix is where the document keeps its named schemas.
const schemaPrefix = "#/components/schemas/"

// schemas describes Go types as JSON Schema with huma's registry, as the HTTP API's
// document does, naming each named type after its package ("inventory.Line"), so
// that two contracts' types of the same name stay apart.
type schemas struct {
	reg huma.Registry
	of  map[string]msgSchemas // by message name: its payload's and reply's schema
}

// msgSchemas is a message's payload schema and, for a request, its reply's (nil otherwise).
type msgSchemas struct{ payload, reply *huma.Schema }

func newSchemas() *schemas {
	// A message's nil slice travels as null (encoding/json), unlike the HTTP API's
	// lists, which always answer [] (package httpapi turns huma's default off for
	// its document, process-wide: turn it back on for messages).
	huma.DefaultArrayNullable = true
	return &schemas{reg: huma.NewMapRegistry(schemaPrefix, schemaName), of: map[string]msgSchemas{}}
}

// schemaName names t as its package's name and huma's default name for it
// ("payments.PaymentDeclined", "message.Money"); a type without a name (struct{})
// takes the hint.
func schemaName(t reflect.Type, hint string) string {
	name := huma.DefaultSchemaNamer(t, hint)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() == "" || t.PkgPath() == "" {
		return name
	}
	return path.Base(t.PkgPath()) + "." + name
}

// describe registers m's payload and reply types.
func (s *schemas) describe(m msg) {
	r := msgSchemas{payload: s.reg.Schema(m.Payload, true, m.Short()+"Payload")}
	if m.Reply != nil {
		r.reply = s.reg.Schema(m.Reply, true, m.Short()+"Reply")
	}
	s.of[m.Name()] = r
}

// resolve follows a reference to the schema it names.
func (s *schemas) resolve(sc *huma.Schema) *huma.Schema {
	for sc != nil && sc.Ref != "" {
		sc = s.reg.SchemaFromRef(sc.Ref)
	}
	return sc
}

// plain returns a schema as the document writes it: huma's own JSON rendering
// (nullable types as ["t", "null"], as in the OpenAPI document), decoded to plain
// values so that the YAML encoder sorts its keys.
func plain(sc *huma.Schema) (any, error) {
	b, err := json.Marshal(sc)
	if err != nil {
		return nil, err
	}
	var v any
	err = json.Unmarshal(b, &v)
	return v, err
}

// componentName returns the name a $ref points to.
func componentName(sc *huma.Schema) string { return strings.TrimPrefix(sc.Ref, schemaPrefix) }
