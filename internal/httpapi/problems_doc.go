package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/agora-commerce/agora/internal/message"
)

// edgeProblems are the statuses the HTTP edge answers itself, with what each means;
// their problem types are EdgeProblemType(status).
var edgeProblems = []struct {
	status int
	means  string
}{
	{http.StatusBadRequest, "The body is missing, or text in the request is not valid UTF-8 or holds NUL. Fix the request."},
	{http.StatusUnauthorized, "No access token, or one that is not valid or has expired. Sign in (POST /v1/auth/login) or refresh, then retry; WWW-Authenticate says how."},
	{http.StatusForbidden, "The access token's role may not use this operation (or this filter of it)."},
	{http.StatusNotFound, "No operation at this path."},
	{http.StatusMethodNotAllowed, "The path exists for other methods; Allow lists them."},
	{http.StatusPreconditionFailed, "If-Match names no ETag the resource ever had (a module answers its own type when the ETag is stale)."},
	{http.StatusRequestEntityTooLarge, "The body is larger than the configured limit."},
	{http.StatusUnprocessableEntity, "The body or a parameter failed validation; errors lists each field with its location."},
	{http.StatusUpgradeRequired, "A WebSocket endpoint was called without the upgrade."},
	{http.StatusPreconditionRequired, "The write needs If-Match with the resource's current ETag, so it cannot overwrite a change you have not seen."},
	{http.StatusTooManyRequests, "Too many requests from this address or for this account; wait Retry-After seconds."},
	{http.StatusInternalServerError, "The server failed. The cause is in its log under the answer's X-Request-ID, never in the answer."},
	{http.StatusServiceUnavailable, "The server is at capacity, or cannot verify tokens yet; retry after Retry-After."},
	{http.StatusGatewayTimeout, "A module did not answer in time. The request may or may not have taken effect: retry with the same Idempotency-Key where the operation takes one."},
}

// ProblemCatalog renders docs/problems.md: every problem type a client can meet —
// the edge's and every declared module error (errs, from message.DeclaredErrors) — with
// its status and meaning. The document's responses list the types they may carry;
// this page explains them.
func ProblemCatalog(errs []*message.Error) string {
	var b strings.Builder
	b.WriteString("# Problem types\n\n<!-- Generated from the code by internal/app's TestProblemsDoc; do not edit. " +
		"Regenerate with: AGORA_UPDATE_DOCS=1 go test ./internal/app -run TestProblemsDoc -->\n\n" +
		"Every error answer is RFC 9457 `application/problem+json`: `type` (below), `title` (the status's reason), " +
		"`status`, `detail` (what went wrong this time, for people) and, for invalid input, `errors` (each field's " +
		"`location`, `message` and, unless secret, a short echo of its `value`). Switch on `type`, not on `detail`. " +
		"Each operation in the OpenAPI document lists, under each error status, the types it may answer.\n\n" +
		"## Answers of the HTTP edge\n\n| type | status | meaning |\n|---|---|---|\n")
	for _, e := range edgeProblems {
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", EdgeProblemType(e.status), e.status, e.means)
	}
	b.WriteString("\n## Answers of the modules\n\nA module's errors are declared in its contract " +
		"(`modules/<module>/<module>.go`); `bus.*` are the bus's own, met by any operation that asks another module.\n\n" +
		"| type | status | meaning |\n|---|---|---|\n")
	for _, e := range errs {
		status := statusOf[e.Kind]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		fmt.Fprintf(&b, "| `%s%s` | %d | %s |\n", ProblemTypePrefix, e.Code, status, strings.ReplaceAll(e.Message, "|", "\\|"))
	}
	return b.String()
}
