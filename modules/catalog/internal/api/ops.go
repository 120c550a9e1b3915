package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/catalog"
)

// OpsRoutes returns the catalog's operations routes, answered through b.
func OpsRoutes(b *bus.Bus) httpapi.Routes {
	return func(api huma.API) {
		huma.Register(api, huma.Operation{
			OperationID: "rebuild-availability", Method: http.MethodPost, Path: "/v1/ops/catalog/availability/rebuild",
			Summary: "Rebuild the catalog's availability from current stock", Tags: []string{"Operations"},
			Security: httpapi.AdminOnly,
			Description: "Rewrites the availability that products carry from the inventory's current stock, read item by " +
				"item, instead of from the stock changes the catalog heard of: for a read model that missed events. " +
				"A product whose availability is newer than the stock read is left as it is.",
		}, func(ctx context.Context, _ *struct{}) (*rebuildOut, error) {
			r, err := bus.Call(ctx, b, catalog.RebuildAvailabilityRequest, catalog.RebuildAvailability{})
			if err != nil {
				return nil, httpapi.Problem(err)
			}
			return &rebuildOut{Body: r}, nil
		})
	}
}

type rebuildOut struct{ Body catalog.AvailabilityRebuilt }
