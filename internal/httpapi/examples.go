package httpapi

import (
	"maps"
	"slices"

	"github.com/danielgtaylor/huma/v2"
)

// Complete finishes the document once every route is registered: each component
// schema without an example gets one, built from its fields' own examples, enums,
// defaults and formats (exampleOf), so a reader and a mock server see a plausible
// value of every body. The lint gates validate each example against its schema.
func (a *API) Complete() {
	reg := a.OpenAPI().Components.Schemas
	for _, name := range slices.Sorted(maps.Keys(reg.Map())) {
		s := reg.Map()[name]
		if len(s.Examples) == 0 && s.Type == "object" {
			s.Examples = []any{exampleOf(reg, s, 0)}
		}
	}
}

// Values for strings of a format, where a field gives no example of its own.
var formatExamples = map[string]any{
	"uuid":          "0190f5d2-7d2c-7b61-9c1e-3f1f0c8a2b4d",
	"date-time":     "2026-12-03T15:04:05Z",
	"date":          "2026-12-03",
	"email":         "customer@example.com",
	"uri":           "https://shop.example.com/images/tee.png",
	"uri-reference": "/v1/products/0190f5d2-7d2c-7b61-9c1e-3f1f0c8a2b4d",
}

// Values for string fields by name, where a field gives no example of its own:
// what the demo data holds, so examples read like real answers.
var fieldExamples = map[string]string{
	"name": "Classic tee", "sku": "TEE-CLASSIC-M", "description": "A heavyweight cotton tee.",
	"reason": "counted after delivery", "actor": "admin@example.com", "note": "offered to a driver 400 m away",
	"message": "orders.OrderPlaced", "state": "awaiting_payment", "module": "orders", "type": "orders.PlaceOrder",
	"kind": "event", "last_error": "no process serves this request", "correlation_id": "0190f5d2-7d2c-7b61-9c1e-3f1f0c8a2b4d",
	"id": "0190f5d2-7d2c-7b61-9c1e-3f1f0c8a2b4d", "ride_id": "0190f5d2-7d2c-7b61-9c1e-3f1f0c8a2b4d",
	"provider": "simulated", "provider_ref": "psp_3f1f0c8a", "version": "v1.4.0", "problem": "",
	"access_token":  "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
	"refresh_token": "rt_9c1e3f1f0c8a2b4d7d2c7b61", "current_password": "correct horse battery",
	"new_password": "staple battery horse correct", "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
	"location": "body.name", "body": "Your order #0190f5d2 is confirmed.", "next_cursor": "p1.MDE5MGY1ZDI",
	"detail": "product not found", "title": "Not Found",
}

// exampleOf returns an example value of s: its own example, else its default, its
// first enum value, or one built from its type, properties and items. depth bounds
// recursive types.
func exampleOf(reg huma.Registry, s *huma.Schema, depth int) any {
	if s.Ref != "" {
		s = reg.SchemaFromRef(s.Ref)
	}
	switch {
	case s == nil || depth > 8:
		return nil
	case len(s.Examples) > 0:
		return s.Examples[0]
	case s.Default != nil:
		return s.Default
	case len(s.Enum) > 0:
		return s.Enum[0]
	}
	switch s.Type {
	case "object":
		return objectExample(reg, s, depth)
	case "array":
		if s.Items == nil {
			return []any{}
		}
		return []any{exampleOf(reg, s.Items, depth+1)}
	case "string":
		if v, ok := formatExamples[s.Format]; ok {
			return v
		}
		return "text"
	case "integer":
		if s.Minimum != nil {
			return int64(*s.Minimum)
		}
		return 1
	case "number":
		if s.Minimum != nil {
			return *s.Minimum
		}
		return 1.5
	case "boolean":
		return true
	}
	return nil
}

// objectExample builds an example object of s: every property, or one entry of a
// map (a schema with additionalProperties only).
func objectExample(reg huma.Registry, s *huma.Schema, depth int) any {
	out := map[string]any{}
	for name, p := range s.Properties {
		if ex, ok := fieldExamples[name]; ok && p.Type == "string" && len(p.Examples) == 0 && len(p.Enum) == 0 && p.Format == "" {
			if ex != "" {
				out[name] = ex
			}
			continue
		}
		if v := exampleOf(reg, p, depth+1); v != nil {
			out[name] = v
		}
	}
	if ap, ok := s.AdditionalProperties.(*huma.Schema); ok && len(s.Properties) == 0 {
		out["name"] = exampleOf(reg, ap, depth+1)
	}
	return out
}
