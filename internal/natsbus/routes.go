package natsbus

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/httpapi"
)

// BrokerDeadLetterPage is a page of the broker's dead letters.
type BrokerDeadLetterPage struct {
	Items []BrokerDeadLetter `json:"items"`
}

// Routes registers the admin operations on the broker's dead letters (the
// AGORA_DEAD stream), the bus's counterpart of each module's outbox dead letters
// (/v1/ops/modules/{module}/dead-letters). Any process of a split deployment
// answers them from the broker. t is nil in a process with the in-process bus:
// there is no broker, the list is empty and a redrive finds nothing.
func Routes(t *Transport) httpapi.Routes {
	return func(api huma.API) {
		type listIn struct {
			After uint64 `query:"after" doc:"list dead letters after this sequence"`
			Limit int    `query:"limit" minimum:"1" maximum:"500" default:"100"`
		}
		type listOut struct{ Body BrokerDeadLetterPage }
		huma.Register(api, huma.Operation{
			OperationID: "list-bus-dead-letters", Method: http.MethodGet, Path: "/v1/ops/bus/dead-letters",
			Summary: "List the broker's dead letters", Tags: []string{"Operations"}, Security: httpapi.AdminOnly,
			Description: "Commands and events a consumer gave up on after its redeliveries over NATS, oldest first, " +
				"with the consumer and its last error. Empty when the deployment has no broker (one process).",
		}, func(ctx context.Context, in *listIn) (*listOut, error) {
			page := BrokerDeadLetterPage{Items: []BrokerDeadLetter{}}
			if t == nil {
				return &listOut{Body: page}, nil
			}
			items, err := t.DeadLetters(ctx, in.After, in.Limit)
			if err != nil {
				return nil, httpapi.Problem(err)
			}
			page.Items = append(page.Items, items...)
			return &listOut{Body: page}, nil
		})

		type redriveIn struct {
			Seq uint64 `path:"seq" minimum:"1" doc:"the dead letter's sequence"`
		}
		huma.Register(api, huma.Operation{
			OperationID: "redrive-bus-dead-letter", Method: http.MethodPost, Path: "/v1/ops/bus/dead-letters/{seq}/redrive",
			Summary: "Redrive a broker dead letter", Tags: []string{"Operations"}, Security: httpapi.AdminOnly,
			DefaultStatus: http.StatusAccepted, Metadata: httpapi.Problems(ErrDeadLetterNotFound),
			Description: "Sends the message again to the consumer that gave up on it, with a fresh delivery count, and " +
				"removes it from the dead letters. The consumer's inbox drops it if it took it meanwhile.",
		}, func(ctx context.Context, in *redriveIn) (*struct{}, error) {
			if t == nil {
				return nil, httpapi.Problem(ErrDeadLetterNotFound.Withf("this deployment has no broker"))
			}
			if err := t.RedriveDeadLetter(ctx, in.Seq); err != nil {
				return nil, httpapi.Problem(err)
			}
			return nil, nil
		})
	}
}
