package app_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/app"
	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/faults"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
)

// Fault injection is refused without --demo or --allow-faults, and a schedule
// given with either is in force from the start.
func TestFaultsSetting(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfg := testConfig(t, modhost.Names(app.Modules()))
	cfg.Faults = "seed=3; drop type=payments. p=0.5"
	if err := fx.New(app.Options(cfg, app.Modules(), log), fx.NopLogger).Err(); err == nil || !strings.Contains(err.Error(), "--allow-faults") {
		t.Errorf("--faults without --demo or --allow-faults: %v, want refused", err)
	}
	cfg.AllowFaults = true
	var inj *faults.Injector
	if err := fx.New(app.Options(cfg, app.Modules(), log), fx.NopLogger, fx.Populate(&inj)).Err(); err != nil {
		t.Fatal(err)
	}
	if s := inj.Schedule(); s.Seed != 3 || len(s.Rules) != 1 || s.Rules[0].Type != "payments." {
		t.Errorf("schedule %+v", s)
	}
	cfg.Faults = "explode"
	if err := fx.New(app.Options(cfg, app.Modules(), log), fx.NopLogger).Err(); err == nil {
		t.Error("an invalid schedule was accepted")
	}
}

// The admin routes: who may use them, and what they do where faults are allowed
// and where they are not.
func TestFaultRoutes(t *testing.T) {
	for _, allowed := range []bool{true, false} {
		cfg := testConfig(t, modhost.Names(app.Modules()))
		cfg.AllowFaults = allowed
		var srv *httpapi.Server
		var keys *auth.Keys
		a := fxtest.New(t, app.Serve(cfg, app.Modules(), slog.New(slog.DiscardHandler)), fx.Populate(&srv, &keys))
		a.RequireStart()
		token := func(role string) string {
			tok, err := keys.Issue(auth.Principal{UserID: bus.NewID(), Role: role}, time.Now(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return "Bearer " + tok
		}
		admin := token("admin")
		send := func(method, authz, body string) (int, faults.State) {
			t.Helper()
			req, _ := http.NewRequest(method, "http://"+srv.Addr()+"/v1/ops/faults", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var st faults.State
			data, _ := io.ReadAll(res.Body)
			if res.StatusCode == http.StatusOK {
				if err := json.Unmarshal(data, &st); err != nil {
					t.Fatalf("%s: %v in %s", method, err, data)
				}
			} else if res.StatusCode >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %d: %s, want problem+json", method, res.StatusCode, res.Header.Get("Content-Type"))
			}
			return res.StatusCode, st
		}
		schedule := `{"seed":9,"rules":[{"kind":"crash","module":"payments","probability":0.3}]}`
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			if code, _ := send(m, "", schedule); code != http.StatusUnauthorized {
				t.Errorf("%s anonymous: %d, want 401", m, code)
			}
			if code, _ := send(m, token("customer"), schedule); code != http.StatusForbidden {
				t.Errorf("%s as a customer: %d, want 403", m, code)
			}
		}
		if allowed {
			checkAllowed(t, send, admin, schedule)
			checkCounted(t, "http://"+srv.Addr(), send, admin)
		} else {
			checkRefused(t, send, admin, schedule)
		}
		a.RequireStop()
	}
}

type sender func(method, authz, body string) (int, faults.State)

func checkAllowed(t *testing.T, send sender, admin, schedule string) {
	if code, st := send(http.MethodPut, admin, schedule); code != http.StatusOK || !st.Enabled || st.Schedule.Seed != 9 || len(st.Schedule.Rules) != 1 {
		t.Errorf("PUT: %d %+v", code, st)
	}
	if code, st := send(http.MethodGet, admin, ""); code != http.StatusOK || st.Schedule.Rules[0].Module != "payments" || len(st.Injected) != len(bus.FaultKinds) {
		t.Errorf("GET after PUT: %d %+v", code, st)
	}
	for _, bad := range []string{`{"rules":[{"kind":"explode","probability":1}]}`, `{"rules":[{"kind":"drop","probability":2}]}`,
		`{"rules":[{"kind":"delay","probability":1,"delay_ms":3600000}]}`, `{"rules":[{"kind":"drop","probability":1,"type":"` + strings.Repeat("x", 101) + `"}]}`,
		`{"rules":[` + strings.Repeat(`{"kind":"drop","probability":1},`, faults.MaxRules) + `{"kind":"drop","probability":1}]}`} {
		if code, _ := send(http.MethodPut, admin, bad); code != http.StatusUnprocessableEntity {
			t.Errorf("PUT %.60s…: %d, want 422", bad, code)
		}
	}
	if code, _ := send(http.MethodDelete, admin, ""); code != http.StatusNoContent {
		t.Errorf("DELETE: %d", code)
	}
	if _, st := send(http.MethodGet, admin, ""); len(st.Schedule.Rules) != 0 {
		t.Errorf("rules after DELETE: %+v", st.Schedule.Rules)
	}
}

func checkRefused(t *testing.T, send sender, admin, schedule string) {
	if code, st := send(http.MethodGet, admin, ""); code != http.StatusOK || st.Enabled {
		t.Errorf("GET where faults are off: %d %+v", code, st)
	}
	if code, _ := send(http.MethodPut, admin, schedule); code != http.StatusConflict {
		t.Errorf("PUT where faults are off: %d, want 409", code)
	}
	if code, _ := send(http.MethodDelete, admin, ""); code != http.StatusNoContent {
		t.Errorf("DELETE where faults are off: %d, want 204", code)
	}
}

// checkCounted injects a delay into catalog's requests, lists products, and finds
// the fault counted in /metrics.
func checkCounted(t *testing.T, base string, send sender, admin string) {
	if code, _ := send(http.MethodPut, admin, `{"rules":[{"kind":"delay","type":"catalog.","probability":1,"delay_ms":1}]}`); code != http.StatusOK {
		t.Fatalf("PUT: %d", code)
	}
	get := func(path string) string {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
		}
		return string(body)
	}
	get("/v1/products")
	metrics := get("/metrics")
	for _, want := range []string{`agora_bus_faults_injected_total{kind="delay"} 1`, `agora_bus_faults_injected_total{kind="drop"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	if _, st := send(http.MethodGet, admin, ""); st.Injected["delay"] != 1 {
		t.Errorf("GET counts %v, want one delay", st.Injected)
	}
}
