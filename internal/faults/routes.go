package faults

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/message"
)

// State is what the admin routes show of a process's fault injection.
type State struct {
	Enabled  bool           `json:"enabled" doc:"whether this process may inject faults (--demo or --allow-faults)"`
	Schedule Schedule       `json:"schedule"`
	Injected map[string]int `json:"injected" doc:"faults injected so far in this process, by kind"`
}

// Errors of the admin routes.
var (
	ErrDisabled = message.NewError(message.Conflict, "faults.disabled",
		"fault injection is off in this process: start it with --demo or --allow-faults")
	ErrInvalidSchedule = message.NewError(message.Invalid, "faults.invalid_schedule", "invalid fault schedule")
)

// Routes registers the admin routes of fault injection on inj: GET, PUT and
// DELETE /v1/ops/faults. They act on the process that answers (in a split
// deployment, each process has its own schedule). inj is nil where faults are not
// allowed: GET then shows them off, PUT answers ErrDisabled (409), DELETE is a no-op.
func Routes(inj *Injector) httpapi.Routes {
	return func(api huma.API) {
		type stateOut struct{ Body State }
		huma.Register(api, huma.Operation{
			OperationID: "get-faults", Method: http.MethodGet, Path: "/v1/ops/faults",
			Summary: "The bus's fault schedule", Tags: []string{"Operations"}, Security: httpapi.AdminOnly,
			Description: "The faults this process injects into its bus (a test and demo setting) and how many it injected.",
		}, func(context.Context, *struct{}) (*stateOut, error) {
			return &stateOut{Body: state(inj)}, nil
		})

		huma.Register(api, huma.Operation{
			OperationID: "put-faults", Method: http.MethodPut, Path: "/v1/ops/faults",
			Summary: "Replace the bus's fault schedule", Tags: []string{"Operations"}, Security: httpapi.AdminOnly,
			Description: "Replaces this process's fault schedule and restarts its random draws from the seed. " +
				"Only in a process started with --demo or --allow-faults (409 otherwise).",
			Metadata: httpapi.Problems(ErrDisabled, ErrInvalidSchedule),
		}, func(_ context.Context, in *struct{ Body Schedule }) (*stateOut, error) {
			if inj == nil {
				return nil, httpapi.Problem(ErrDisabled)
			}
			if err := inj.Set(in.Body); err != nil {
				return nil, httpapi.Problem(ErrInvalidSchedule.Withf("%v", err).OnField("body"))
			}
			return &stateOut{Body: state(inj)}, nil
		})

		huma.Register(api, huma.Operation{
			OperationID: "delete-faults", Method: http.MethodDelete, Path: "/v1/ops/faults",
			Summary: "Stop injecting faults", Tags: []string{"Operations"}, Security: httpapi.AdminOnly,
			DefaultStatus: http.StatusNoContent,
			Description:   "Empties this process's fault schedule. In a process where faults are not allowed there are none, and this does nothing.",
		}, func(context.Context, *struct{}) (*struct{}, error) {
			if inj != nil {
				_ = inj.Set(Schedule{}) // the empty schedule is valid
			}
			return nil, nil
		})
	}
}

func state(inj *Injector) State {
	s := State{Schedule: Schedule{Rules: []Rule{}}, Injected: map[string]int{}}
	if inj == nil {
		return s
	}
	s.Enabled, s.Schedule = true, inj.Schedule()
	for _, k := range bus.FaultKinds {
		s.Injected[string(k)] = inj.Injected()[k]
	}
	return s
}
