// Package api holds the project's generated API documents, embedded so the
// binary serves exactly what is checked in: asyncapi.yaml is drawn from the
// modules' contracts by tools/asyncapigen (the OpenAPI document is built by huma
// at run time from the routes themselves, and openapi.yaml is its snapshot).
package api

import _ "embed"

// AsyncAPI is api/asyncapi.yaml: every message on the bus, as AsyncAPI 3.0.
//
//go:embed asyncapi.yaml
var AsyncAPI []byte
