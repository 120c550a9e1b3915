package modhost

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
)

// The operations every hosted module answers on the bus, so an operator can reach
// any module's outbox from any process.
type (
	// ListDeadLetters asks for a page of a module's dead letters.
	ListDeadLetters struct {
		After string `json:"after"`
		Limit int    `json:"limit"`
	}
	// DeadLetterPage is the reply to ListDeadLetters.
	DeadLetterPage struct {
		Items []outbox.DeadLetter `json:"items"`
	}
	// RedriveDeadLetter puts one dead letter back in line for delivery.
	RedriveDeadLetter struct {
		ID string `json:"id"`
	}
	// OutboxStatus is a module's outbox backlog.
	OutboxStatus struct {
		Module           string  `json:"module"`
		Pending          int     `json:"pending" doc:"messages waiting for delivery"`
		OldestAgeSeconds float64 `json:"oldest_age_seconds" doc:"age of the oldest waiting message"`
		DeadLetters      int     `json:"dead_letters"`
	}
)

// ListDeadLettersRequest asks module for a page of its dead letters.
func ListDeadLettersRequest(module string) message.Request[ListDeadLetters, DeadLetterPage] {
	return message.NewRequest[ListDeadLetters, DeadLetterPage](module + ".ops.ListDeadLetters")
}

// RedriveDeadLetterRequest asks module to put one of its dead letters back in line.
func RedriveDeadLetterRequest(module string) message.Request[RedriveDeadLetter, struct{}] {
	return message.NewRequest[RedriveDeadLetter, struct{}](module + ".ops.RedriveDeadLetter")
}

// OutboxStatusRequest asks module for its outbox backlog.
func OutboxStatusRequest(module string) message.Request[struct{}, OutboxStatus] {
	return message.NewRequest[struct{}, OutboxStatus](module + ".ops.OutboxStatus")
}

// OpsDeclarations describes the requests a hosted module answers besides its
// contract's, named for module: ProcessRequest, which every module answers, and
// the three on its outbox, which a module with a database answers.
// tools/asyncapigen documents them; a test keeps the list equal to what is handled.
func OpsDeclarations(module string) []message.Declaration {
	return []message.Declaration{
		ProcessRequest(module).Declaration(),
		ListDeadLettersRequest(module).Declaration(),
		RedriveDeadLetterRequest(module).Declaration(),
		OutboxStatusRequest(module).Declaration(),
	}
}

func opsHandlers(module string, d *outbox.DeadLetters) []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(ListDeadLettersRequest(module), func(ctx context.Context, q ListDeadLetters) (DeadLetterPage, error) {
			items, err := d.List(ctx, q.After, q.Limit)
			return DeadLetterPage{Items: items}, err
		}),

		bus.Handle(RedriveDeadLetterRequest(module), func(ctx context.Context, q RedriveDeadLetter) (struct{}, error) {
			return struct{}{}, d.Redrive(ctx, q.ID)
		}),

		bus.Handle(OutboxStatusRequest(module), func(ctx context.Context, _ struct{}) (OutboxStatus, error) {
			pending, oldest, dead, err := d.Backlog(ctx)
			return OutboxStatus{Module: module, Pending: pending, OldestAgeSeconds: oldest.Seconds(), DeadLetters: dead}, err
		}),
	}
}

var errUnknownModule = message.NewError(message.NotFound, "ops.unknown_module", "no such module")

// OpsRoutes registers the admin operations on every module's outbox. They work in
// every process: each asks the module over the bus.
func OpsRoutes(b *bus.Bus, modules []string) httpapi.Routes {
	known := func(m string) error {
		if slices.Contains(modules, m) {
			return nil
		}
		return errUnknownModule.Withf("no module %q (known: %s)", m, strings.Join(modules, ", ")).OnField("path.module")
	}
	return func(api huma.API) {
		type statusOut struct{ Body OutboxStatus }
		huma.Register(api, huma.Operation{
			OperationID: "get-outbox-status", Method: http.MethodGet, Path: "/v1/ops/modules/{module}/outbox",
			Summary: "A module's outbox backlog", Tags: []string{"Operations"}, Security: httpapi.AdminOnly,
			Description: "How many messages wait in the module's outbox, the oldest one's age, and how many are dead letters.",
			Metadata:    httpapi.Problems(errUnknownModule),
		}, func(ctx context.Context, in *struct {
			Module string `path:"module" maxLength:"32" doc:"the module whose outbox to inspect"`
		}) (*statusOut, error) {
			if err := known(in.Module); err != nil {
				return nil, httpapi.Problem(err)
			}
			s, err := bus.Call(ctx, b, OutboxStatusRequest(in.Module), struct{}{})
			if err != nil {
				return nil, httpapi.Problem(err)
			}
			return &statusOut{Body: s}, nil
		})

		type listIn struct {
			Module string `path:"module" maxLength:"32" doc:"the module whose outbox to inspect"`
			After  string `query:"after" maxLength:"64" doc:"list dead letters after this message id"`
			Limit  int    `query:"limit" minimum:"1" maximum:"500" default:"100" doc:"how many dead letters a page holds at most"`
		}
		type listOut struct{ Body DeadLetterPage }
		huma.Register(api, huma.Operation{
			OperationID: "list-dead-letters", Method: http.MethodGet, Path: "/v1/ops/modules/{module}/dead-letters",
			Summary: "List a module's dead letters", Tags: []string{"Operations"}, Security: httpapi.AdminOnly,
			Description: "Messages the module's outbox relay gave up on after its retries, oldest first, with the last error.",
			Metadata:    httpapi.Problems(errUnknownModule),
		}, func(ctx context.Context, in *listIn) (*listOut, error) {
			if err := known(in.Module); err != nil {
				return nil, httpapi.Problem(err)
			}
			page, err := bus.Call(ctx, b, ListDeadLettersRequest(in.Module), ListDeadLetters{After: in.After, Limit: in.Limit})
			if err != nil {
				return nil, httpapi.Problem(err)
			}
			if page.Items == nil {
				page.Items = []outbox.DeadLetter{}
			}
			return &listOut{Body: page}, nil
		})

		type redriveIn struct {
			Module string `path:"module" maxLength:"32" doc:"the module whose outbox to inspect"`
			ID     string `path:"id" format:"uuid" doc:"the dead letter's message id"`
		}
		huma.Register(api, huma.Operation{
			OperationID: "redrive-dead-letter", Method: http.MethodPost, Path: "/v1/ops/modules/{module}/dead-letters/{id}/redrive",
			Summary: "Redrive a dead letter", Tags: []string{"Operations"}, Security: httpapi.AdminOnly, DefaultStatus: http.StatusAccepted,
			Description: "Puts the message back in line for delivery with a fresh attempt count. Receivers drop it if they already took it.",
			Metadata:    httpapi.Problems(errUnknownModule, outbox.ErrDeadLetterNotFound),
		}, func(ctx context.Context, in *redriveIn) (*struct{}, error) {
			if err := known(in.Module); err != nil {
				return nil, httpapi.Problem(err)
			}
			if _, err := bus.Call(ctx, b, RedriveDeadLetterRequest(in.Module), RedriveDeadLetter{ID: in.ID}); err != nil {
				return nil, httpapi.Problem(err)
			}
			return nil, nil
		})
	}
}
