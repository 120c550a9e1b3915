package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/message"
)

// RetryAfterSeconds is the Retry-After sent with 503 answers to overload.
const RetryAfterSeconds = 1

// statusOf maps each bus error kind to its HTTP status: the one place where domain
// errors become status codes.
var statusOf = map[message.ErrorKind]int{
	message.Invalid:         http.StatusUnprocessableEntity,
	message.NotFound:        http.StatusNotFound,
	message.Conflict:        http.StatusConflict,
	message.Precondition:    http.StatusPreconditionFailed,
	message.Unauthenticated: http.StatusUnauthorized,
	message.Forbidden:       http.StatusForbidden,
	message.Unavailable:     http.StatusServiceUnavailable,
	message.Overloaded:      http.StatusServiceUnavailable,
	message.Timeout:         http.StatusGatewayTimeout,
	message.Internal:        http.StatusInternalServerError,
}

// ProblemTypePrefix starts the "type" of every problem that comes from a *message.Error;
// the rest is the error's stable code, so clients can switch on type.
const ProblemTypePrefix = "urn:agora:problem:"

// Problem turns an error from the bus or a module into the huma error the client
// sees: a *message.Error becomes problem+json with its kind's status, type
// ProblemTypePrefix+code, its message as detail, and the field it names (if any) in
// the errors list; overload and unavailability add Retry-After.
// Anything else is a 500 that says nothing internal; huma's error hook logs it.
func Problem(err error) error {
	var se huma.StatusError
	if errors.As(err, &se) {
		return err // already an HTTP error
	}
	be := message.AsError(err)
	status := statusOf[be.Kind]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status == http.StatusInternalServerError && be == message.ErrInternal {
		return err // left to the 5xx hook, which logs the cause
	}
	out := &huma.ErrorModel{Type: ProblemTypePrefix + be.Code, Title: http.StatusText(status), Status: status, Detail: be.Message}
	if be.Field != "" {
		out.Errors = []*huma.ErrorDetail{{Message: be.Message, Location: be.Field}}
	}
	if be.Kind == message.Unauthenticated {
		// RFC 9110, section 15.5.2: every 401 names the scheme to authenticate with.
		return huma.ErrorWithHeaders(out, http.Header{"WWW-Authenticate": {`Bearer realm="agora"`}})
	}
	if be.Kind == message.Overloaded || be.Kind == message.Unavailable {
		return huma.ErrorWithHeaders(out, http.Header{"Retry-After": {strconv.Itoa(RetryAfterSeconds)}})
	}
	return out
}

// InstallErrorHook makes every 5xx that huma writes say nothing internal and log
// its cause, and turns a body that failed the edge's text check while huma read it
// (a *BadTextError, see checkedBody) into the 400 the edge answers for bad text
// anywhere else. Call it once at start; huma's error constructor is package-global.
// What problems may echo is bounded for every route by the API's transformer
// (boundProblems), not here: errors built without this constructor pass there too.
func InstallErrorHook(log *slog.Logger) {
	huma.NewErrorWithContext = func(ctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		if status < 500 {
			return huma.NewError(status, msg, errs...)
		}
		if bt, ok := asBadText(errs); ok {
			return badTextProblem(bt)
		}
		if status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout {
			var c context.Context = context.Background()
			if ctx != nil {
				c = ctx.Context()
			}
			// The errors are the handler's or the store's, never the request's body
			// or headers, which may carry secrets.
			log.ErrorContext(c, "request failed", "status", status, "msg", msg, "err", errors.Join(errs...))
			return huma.NewError(status, http.StatusText(status))
		}
		return huma.NewError(status, msg, errs...)
	}
}

// WriteProblem writes a problem+json answer outside huma (middleware, catch-alls).
func WriteProblem(w http.ResponseWriter, status int, detail string) {
	writeProblemBody(w, status, detail)
}

// writeProblemBody writes a problem+json answer with errs as its details and
// returns the number of body bytes written. It is never cached: a problem may be
// about one caller's request.
func writeProblemBody(w http.ResponseWriter, status int, detail string, errs ...*huma.ErrorDetail) int {
	body, _ := json.Marshal(huma.ErrorModel{Type: EdgeProblemType(status), Title: http.StatusText(status), Status: status,
		Detail: detail, Errors: errs})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	n, _ := w.Write(append(body, '\n'))
	return n
}

// badTextProblem is the 400 for text that is not valid UTF-8 or holds NUL.
func badTextProblem(bt *BadTextError) *huma.ErrorModel {
	return &huma.ErrorModel{Title: http.StatusText(http.StatusBadRequest), Status: http.StatusBadRequest, Detail: bt.Error(),
		Errors: []*huma.ErrorDetail{{Location: bt.Where, Message: "expected valid UTF-8 without NUL"}}}
}

// writeBadText answers a request whose text the edge refused.
func writeBadText(w http.ResponseWriter, bt *BadTextError) {
	p := badTextProblem(bt)
	writeProblemBody(w, p.Status, p.Detail, p.Errors...)
}
