package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// Check is one readiness check: a module's database, the bus. Modules provide them
// to the fx value group "health.checks".
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// HealthBody is the body of /healthz and /readyz.
type HealthBody struct {
	Status string            `json:"status" enum:"ok,unavailable" doc:"ok when every check passed"`
	Checks map[string]string `json:"checks,omitempty" doc:"each check's outcome: ok, or what failed"`
}

type healthOutput struct {
	Body HealthBody
}

// RegisterHealth adds /healthz (the process is alive) and /readyz (every check
// passes; 503 otherwise). Both sit outside /v1 and are public.
func RegisterHealth(api huma.API, checks []Check, log *slog.Logger) {
	huma.Register(api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"Health"},
		Summary: "Liveness: the process is up", Security: Public,
		Description: "Always 200 while the process serves HTTP; it checks nothing else (see /readyz for that).",
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		return &healthOutput{Body: HealthBody{Status: "ok"}}, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"Health"},
		Summary:     "Readiness: every local module's database and the bus are reachable",
		Description: "Answers 503 with the failing checks when any check fails.",
		Security:    Public,
		Errors:      []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		body := HealthBody{Status: "ok", Checks: map[string]string{}}
		var failed []error
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				// The cause goes to the log, not to an unauthenticated caller.
				log.WarnContext(ctx, "readiness check failed", "check", c.Name, "err", err)
				body.Checks[c.Name] = "unavailable"
				failed = append(failed, &huma.ErrorDetail{Location: c.Name, Message: "unavailable"})
				continue
			}
			body.Checks[c.Name] = "ok"
		}
		if len(failed) > 0 {
			return nil, huma.NewError(http.StatusServiceUnavailable, "not ready", failed...)
		}
		return &healthOutput{Body: body}, nil
	})
}
