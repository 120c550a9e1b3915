package app_test

import (
	"log/slog"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/app"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
)

// TestPublicBodiesAreRateLimited checks, over the whole API, that every operation
// anyone may call with a body declares an edge rate limit (httpapi.RateLimited), so
// that no one can keep the server parsing and validating bodies for free. A public
// body route added later without one fails here.
func TestPublicBodiesAreRateLimited(t *testing.T) {
	var api *httpapi.API
	a := fxtest.New(t, app.Options(testConfig(t, modhost.Names(app.Modules())), app.Modules(), slog.New(slog.DiscardHandler)), fx.Populate(&api))
	a.RequireStart()
	defer a.RequireStop()
	checked := 0
	for path, item := range api.OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{"POST": item.Post, "PUT": item.Put, "PATCH": item.Patch, "DELETE": item.Delete} {
			if op == nil || op.RequestBody == nil || !public(op.Security) {
				continue
			}
			checked++
			if !httpapi.IsRateLimited(op) {
				t.Errorf("%s %s is public and takes a body, but declares no edge rate limit (httpapi.RateLimited)", method, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no public operation with a body; the test checks nothing")
	}
}

// public reports whether an operation's security admits anonymous callers.
func public(security []map[string][]string) bool {
	return len(security) == 0 || containsEmpty(security)
}
