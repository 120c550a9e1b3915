package httpapi

import (
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/message"
)

// The OpenAPI document is the behaviour: every status an operation can answer is
// declared on it, from one source each —
//   - the edge: what the middleware and huma answer for any request of the
//     operation's shape (edgeStatuses: a body means 413, a declared access rule
//     means 401/403, every operation can be overloaded, and so on);
//   - the module: the contract errors the handler can return, which the operation
//     names with Problems — their kinds give the statuses and their codes the
//     problem types listed under each status;
//   - the operation's own Errors, for statuses its handler makes itself (412 and
//     428 from IfMatchVersion, 304).
// The e2e suites validate every real answer against the result, so a status that
// one of these forgets fails a test rather than surprising a client.

func init() {
	// Lists are never null in the API: handlers answer [] for an empty one
	// (NotNull), and a client may not send null for one either. huma's default
	// types every slice as array|null.
	huma.DefaultArrayNullable = false
}

// APIVersion is the version of the HTTP API's contract, the document's
// info.version: it changes when the API does (api/CHANGELOG.md), not with every
// build, so every build of one API serves the same document.
const APIVersion = "1.0.0"

// problemsKey is where Problems leaves an operation's module errors in its Metadata.
const problemsKey = "agora.problems"

// Problems returns operation Metadata naming the module errors an operation's
// handler can answer (the contract's sentinels, e.g. catalog.ErrProductNotFound):
// set it as huma.Operation.Metadata. The document then declares each error's
// status, with its problem type listed under it.
func Problems(errs ...*message.Error) map[string]any {
	return map[string]any{problemsKey: errs}
}

// EdgeProblemType is the problem type of an answer the HTTP edge makes itself
// rather than a module (a failed validation, a refused token, an unknown path):
// ProblemTypePrefix + "http." + the status's reason phrase in snake case, such as
// urn:agora:problem:http.unprocessable_entity.
func EdgeProblemType(status int) string {
	text := strings.ToLower(http.StatusText(status))
	if text == "" {
		text = strconv.Itoa(status)
	}
	return ProblemTypePrefix + "http." + strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(text)
}

// edgeStatuses returns the statuses the edge itself may answer for op, each with
// why: its body, its parameters, its access rule, its rate limit, and what any
// operation may meet (overload, a deadline, a fault).
func edgeStatuses(op *huma.Operation) map[int]string {
	out := map[int]string{
		http.StatusBadRequest: "a parameter or header is not valid UTF-8 or holds NUL",
		// The edge refuses a declared body over the limit whatever the operation.
		http.StatusRequestEntityTooLarge: "the request declares a body larger than the configured limit",
		http.StatusInternalServerError:   "the server failed; the cause is logged, not sent",
		http.StatusServiceUnavailable:    "the server or a module it needs is overloaded or unreachable; retry after Retry-After",
		http.StatusGatewayTimeout:        "a module did not answer in time; the request may or may not have taken effect",
	}
	if op.RequestBody != nil {
		out[http.StatusBadRequest] = "the body is missing, is not valid UTF-8 or holds NUL"
		out[http.StatusRequestEntityTooLarge] = "the body is larger than the configured limit"
		out[http.StatusUnprocessableEntity] = "the body or a parameter failed validation; errors lists each field"
	} else if len(op.Parameters) > 0 {
		out[http.StatusUnprocessableEntity] = "a parameter failed validation; errors lists each one"
	}
	rule := RuleOf(op.Security)
	if rule.Bearer {
		out[http.StatusUnauthorized] = "the access token is missing, not valid or expired"
		if rule.Public {
			out[http.StatusUnauthorized] = "an access token was sent and is not valid or expired (send none to be served as the public)"
		}
	}
	if len(rule.Roles) > 0 {
		out[http.StatusForbidden] = "the access token's role may not use this operation"
	}
	if IsRateLimited(op) {
		out[http.StatusTooManyRequests] = "too many requests from this address; retry after Retry-After"
	}
	return out
}

// describeErrors is the OnAddOperation hook that declares every status op can
// answer (see the top of this file), each with the problem types it may carry and
// the headers that come with it.
func describeErrors(_ *huma.OpenAPI, op *huma.Operation) {
	why := edgeStatuses(op)
	types := map[int][]string{}
	for status := range why {
		types[status] = []string{EdgeProblemType(status)}
	}
	// Every operation asks a module through the bus, which may answer these (and a
	// module whose database or provider is down answers ErrDependencyDown).
	for _, e := range []*message.Error{message.ErrNoHandler, message.ErrUnreachable, message.ErrOverloaded, message.ErrDependencyDown, message.ErrTimeout} {
		types[statusOf[e.Kind]] = append(types[statusOf[e.Kind]], ProblemTypePrefix+e.Code)
	}
	for _, status := range op.Errors {
		if _, ok := why[status]; !ok {
			why[status] = http.StatusText(status)
		}
		types[status] = appendOnce(types[status], EdgeProblemType(status))
	}
	errs, _ := op.Metadata[problemsKey].([]*message.Error)
	for _, e := range errs {
		status := statusOf[e.Kind]
		if _, ok := why[status]; !ok {
			why[status] = e.Message
		}
		types[status] = appendOnce(types[status], ProblemTypePrefix+e.Code)
	}
	if _, ok := why[http.StatusPreconditionRequired]; ok {
		requireIfMatch(op)
	}
	delete(op.Responses, "default")
	for _, status := range slices.Sorted(maps.Keys(why)) {
		op.Responses[strconv.Itoa(status)] = problemResponse(status, why[status], types[status])
	}
}

// requireIfMatch declares If-Match required on an operation that answers 428
// without it. The handler enforces it (IfMatchVersion), not huma's validation, so
// the answer is 428 (RFC 6585) rather than a 422.
func requireIfMatch(op *huma.Operation) {
	for _, p := range op.Parameters {
		if p.In == "header" && p.Name == "If-Match" {
			p.Required = true
		}
	}
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// problemResponse is the declared answer for one error status: problem+json, its
// problem types listed in the description, and Retry-After or WWW-Authenticate
// where the status comes with them.
func problemResponse(status int, why string, types []string) *huma.Response {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s. Problem types (see docs/problems.md):", http.StatusText(status), why)
	for _, t := range types {
		fmt.Fprintf(&b, "\n- `%s`", t)
	}
	r := &huma.Response{
		Description: b.String(),
		Headers:     map[string]*huma.Param{},
		Content: map[string]*huma.MediaType{
			"application/problem+json": {Schema: &huma.Schema{Ref: "#/components/schemas/Problem"}},
		},
	}
	switch status {
	case http.StatusUnauthorized:
		r.Headers["WWW-Authenticate"] = headerRef("WWW-Authenticate")
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		r.Headers["Retry-After"] = headerRef("Retry-After")
	}
	return r
}

// headers are the response headers many operations send, declared once under
// components and referred to (headerRef).
var headers = map[string]*huma.Header{
	RequestIDHeader: {Description: "the request's id, as in the server's logs and traces: the caller's own X-Request-ID " +
		"if it sent a valid one", Schema: &huma.Schema{Type: "string", Pattern: validRequestID.String()}, Required: true},
	"Retry-After": {Description: "seconds to wait before retrying (sent with 429, and with 503 when a retry is expected to succeed)",
		Schema: &huma.Schema{Type: "integer", Minimum: ptr(1.0)}},
	"WWW-Authenticate": {Description: `the scheme to authenticate with: Bearer realm="agora", with error="invalid_token" ` +
		"when a token was sent and refused", Schema: &huma.Schema{Type: "string"}, Required: true},
}

// headerRef refers to one of headers.
func headerRef(name string) *huma.Param { return &huma.Param{Ref: "#/components/headers/" + name} }

func ptr[T any](v T) *T { return &v }

// tags are the document's top-level tags, in the order a reader meets the API: the
// shop a customer walks through, then rides, then the operator's tools.
var tags = []*huma.Tag{
	{Name: "Catalog", Description: "Products for sale: public reads, admin writes."},
	{Name: "Cart", Description: "The signed-in customer's cart."},
	{Name: "Orders", Description: "Checkout and the customer's orders: placing, following, cancelling."},
	{Name: "Payments", Description: "Payments as the provider recorded them."},
	{Name: "Inventory", Description: "Stock per SKU and its audit trail."},
	{Name: "Identity", Description: "Accounts, sign-in, tokens and the keys that verify them."},
	{Name: "Notifications", Description: "What the shop told the customer."},
	{Name: "Rides", Description: "Quotes, ride requests and trips, for riders."},
	{Name: "Drivers", Description: "A driver's own app: availability, offers, position stream."},
	{Name: "Fleet", Description: "Driver positions and the city they drive in."},
	{Name: "Operations", Description: "Admin tools: sagas, dispatches, outboxes, dead letters, faults, keys."},
	{Name: "Health", Description: "Liveness and readiness probes."},
}

// schemaNames renames the schemas whose Go names say too little outside their
// package (inventory.Item is a fine name in Go and a vague one in a client): the
// one place where Go type names become document names.
var schemaNames = map[string]string{
	"ErrorModel":  "Problem",
	"ErrorDetail": "ProblemField",
	"Item":        "InventoryItem",
	"ItemList":    "InventoryItemList",
	"Entry":       "PaymentEntry",
	"Process":     "TopologyProcess",
	"Placement":   "ModulePlacement",
	"Rule":        "FaultRule",
	"State":       "FaultState",
	"Schedule":    "FaultSchedule",
	"Street":      "CityStreet",
	"HealthBody":  "Health",
	// Request bodies and answers whose names need their module to be understood.
	"RequestInput":      "RideRequestInput",
	"OnlineInput":       "GoOnlineInput",
	"Ingested":          "PositionsIngested",
	"MapDot":            "FleetMapDot",
	"SetProviderOutage": "ProviderOutageInput",
}

// schemaNamer is huma's default namer with schemaNames applied.
func schemaNamer(t reflect.Type, hint string) string {
	name := huma.DefaultSchemaNamer(t, hint)
	if renamed, ok := schemaNames[name]; ok {
		return renamed
	}
	return name
}

// configureDocument sets what the document says about the API as a whole — info,
// servers, tags, security schemes, schema names — and the hook that declares every
// operation's errors.
func configureDocument(hc *huma.Config) {
	hc.Info.Description = "Agora is a commerce and ride-sharing backend: catalog, inventory, cart, checkout, payments, " +
		"notifications, rides and fleet, built as a modular monolith whose modules talk only through messages. " +
		"Every error is RFC 9457 problem+json; its type is listed under each response and explained in docs/problems.md."
	hc.Info.License = &huma.License{Name: "Apache-2.0", Identifier: "Apache-2.0"}
	hc.Info.Contact = &huma.Contact{Name: "Agora maintainers", URL: "https://github.com/agora-commerce/agora"}
	hc.Servers = []*huma.Server{{URL: "http://127.0.0.1:8080", Description: "`agora serve` on its default address"}}
	hc.Tags = tags
	hc.Components.Schemas = huma.NewMapRegistry("#/components/schemas/", schemaNamer)
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		BearerAuth: bearerScheme("any signed-in user"),
		AdminAuth:  bearerScheme("a user with the admin role; any other role gets 403"),
		DriverAuth: bearerScheme("a user with the driver role (a driver's own app); any other role gets 403"),
	}
	hc.Components.Headers = headers
	hc.OnAddOperation = append(hc.OnAddOperation, describeErrors, declareRequestID)
}

func bearerScheme(who string) *huma.SecurityScheme {
	return &huma.SecurityScheme{Type: "http", Scheme: "bearer", BearerFormat: "JWT",
		Description: "An access token from POST /v1/auth/login (or /v1/auth/refresh) of " + who + "."}
}

// declareRequestID declares X-Request-ID on every answer of op: the edge sends one
// on each, the caller's own if it sent a valid one (see chain).
func declareRequestID(_ *huma.OpenAPI, op *huma.Operation) {
	for _, r := range op.Responses {
		if r.Headers == nil {
			r.Headers = map[string]*huma.Param{}
		}
		r.Headers[RequestIDHeader] = headerRef(RequestIDHeader)
	}
}

// describeProblem rewrites the Problem schema (huma's ErrorModel) for this API:
// every problem here carries type, title and status, and its examples are Agora's,
// not huma's placeholders.
func describeProblem(oapi *huma.OpenAPI) {
	s := oapi.Components.Schemas.Schema(reflect.TypeFor[huma.ErrorModel](), false, "")
	s.Description = "An RFC 9457 problem. Switch on type; docs/problems.md lists every type."
	s.Required = []string{"type", "title", "status"}
	props := s.Properties
	props["type"].Description = "the problem's type: urn:agora:problem:<module>.<code>, listed in docs/problems.md"
	props["type"].Default = nil
	props["type"].Examples = []any{ProblemTypePrefix + "catalog.product_not_found"}
	props["title"].Examples = []any{"Not Found"}
	props["status"].Examples = []any{404}
	props["detail"].Examples = []any{"product not found"}
	props["instance"].Examples = []any{"/v1/products/0190f5d2-7d2c-7b61-9c1e-3f1f0c8a2b4d"}
	props["instance"].Format = "uri-reference"
	s.Examples = []any{map[string]any{"type": ProblemTypePrefix + "catalog.product_not_found", "title": "Not Found",
		"status": 404, "detail": "product not found"}}
}
