package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// Preload returns middleware that finds what an operation is about before its
// handler runs, by the UUID in path parameter param, and hands it to the handler
// (read it with Preloaded). When find fails, the client gets the problem Problem
// makes of its error and the handler never runs. It suits a stream (SSE), which
// has already answered 200 once its handler runs: another customer's order is then
// a plain 404 rather than an empty stream.
//
// Middleware runs before huma validates the path, so an id that is not a UUID is
// passed on unchecked: huma then refuses it (422) as on every other route, and
// find never sees it. An operation preloads one value of each type T.
func Preload[T any](api huma.API, param string, find func(ctx context.Context, id string) (T, error)) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		id := ctx.Param(param)
		if !isUUID(id) {
			next(ctx)
			return
		}
		v, err := find(ctx.Context(), id)
		if err != nil {
			writeErr(api, ctx, err)
			return
		}
		next(huma.WithValue(ctx, preloadKey[T]{}, v))
	}
}

// Preloaded returns the value Preload found for the operation, and whether there
// is one: there is none when the path's id was not a UUID (huma then answers 422
// before the handler runs) or the operation has no Preload of type T.
func Preloaded[T any](ctx context.Context) (T, bool) {
	v, ok := ctx.Value(preloadKey[T]{}).(T)
	return v, ok
}

type preloadKey[T any] struct{}

// uuidSchema is the schema of ids in paths (format:"uuid").
var uuidSchema = &huma.Schema{Type: huma.TypeString, Format: "uuid"}

// isUUID reports whether id is a UUID, by huma's own check of format:"uuid".
func isUUID(id string) bool {
	var res huma.ValidateResult
	huma.Validate(nil, uuidSchema, huma.NewPathBuffer(nil, 0), huma.ModeWriteToServer, id, &res)
	return len(res.Errors) == 0
}

// writeErr writes err as the problem an operation would answer.
func writeErr(api huma.API, ctx huma.Context, err error) {
	var se huma.StatusError
	if errors.As(Problem(err), &se) {
		ctx.SetHeader("Content-Type", "application/problem+json")
		ctx.SetStatus(se.GetStatus())
		_ = api.Marshal(ctx.BodyWriter(), "application/problem+json", se)
		return
	}
	_ = huma.WriteErr(api, ctx, http.StatusInternalServerError, "internal error", err)
}
