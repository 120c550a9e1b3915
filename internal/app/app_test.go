package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/app"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
)

func testConfig(t *testing.T, names []string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Modules = names
	cfg.HTTPModules = modhost.Names(app.Modules())
	cfg.HTTPAddr = "127.0.0.1:0"
	return cfg
}

// TestWiringEveryTopology checks that the fx graph is complete for every set of
// modules a process may run: all of them, none (an HTTP-only process), and each alone.
func TestWiringEveryTopology(t *testing.T) {
	topologies := map[string][]string{"all": modhost.Names(app.Modules()), "none": nil}
	for _, m := range modhost.Names(app.Modules()) {
		topologies[m] = []string{m}
	}
	log := slog.New(slog.DiscardHandler)
	for name, mods := range topologies {
		t.Run(name, func(t *testing.T) {
			if err := fx.ValidateApp(app.Serve(testConfig(t, mods), app.Modules(), log)); err != nil {
				t.Fatalf("wiring of %v: %v", mods, err)
			}
		})
	}
}

// TestStartAndStop runs the whole process graph: it starts, creates each module's
// database, serves /readyz over real HTTP, and stops cleanly.
func TestStartAndStop(t *testing.T) {
	cfg := testConfig(t, modhost.Names(app.Modules()))
	cfg.Demo = true
	var srv *httpapi.Server
	a := fxtest.New(t, app.Serve(cfg, app.Modules(), slog.New(slog.NewTextHandler(io.Discard, nil))), fx.Populate(&srv))
	a.RequireStart()
	for _, m := range modhost.WithData(app.Modules()) {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, m+".db")); err != nil {
			t.Errorf("module %s has no database: %v", m, err)
		}
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+srv.Addr()+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d, want 200", resp.StatusCode)
	}
	a.RequireStop()
}

// TestHTTPModulesNarrowsRoutes checks AGORA_HTTP_MODULES: a process serves the routes
// of the modules it names and no others (404), whatever modules run in it.
func TestHTTPModulesNarrowsRoutes(t *testing.T) {
	cfg := testConfig(t, []string{"catalog"})
	cfg.HTTPModules = []string{"catalog"}
	var api *httpapi.API
	a := fxtest.New(t, app.Options(cfg, app.Modules(), slog.New(slog.DiscardHandler)), fx.Populate(&api))
	a.RequireStart()
	defer a.RequireStop()
	for path, want := range map[string]int{
		"/v1/products": http.StatusOK,       // catalog: served here
		"/v1/cart":     http.StatusNotFound, // orders: not this process's routes
		"/v1/me":       http.StatusNotFound, // identity
		"/healthz":     http.StatusOK,       // the platform's own routes stay
	} {
		rec := httptest.NewRecorder()
		api.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}
