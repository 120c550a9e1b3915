package module_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
	"github.com/agora-commerce/agora/modules/payments/module"
)

var discard = slog.New(slog.DiscardHandler)

// start runs the module as a process runs it, with cfg, and returns its bus.
func start(t *testing.T, cfg config.Config, s module.Settings) *bus.Bus {
	t.Helper()
	var b *bus.Bus
	app := fxtest.New(t,
		fx.Supply(cfg, discard),
		module.Module(s),
		fx.Provide(fx.Annotate(
			func(log *slog.Logger, hs []bus.RequestHandler, subs []bus.Subscription) (*bus.Bus, error) {
				return bus.New(log, bus.Limits{}, nil, hs, subs)
			},
			fx.ParamTags(``, `group:"bus.requests"`, `group:"bus.subscriptions"`))),
		fx.Populate(&b),
	)
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	return b
}

// authorizeAndWait authorizes a payment for a new payable of kind (empty: an order).
func authorizeAndWait(t *testing.T, b *bus.Bus, kind payments.Payable) payments.Payment {
	t.Helper()
	order := bus.NewID()
	env, err := bus.NewEnvelope(t.Context(), message.KindCommand, payments.AuthorizePaymentCommand.Name(), payments.AuthorizePayment{
		PayableID: order, Payable: kind, CustomerID: bus.NewID(), Amount: payments.Money{Amount: 1999, Currency: "EUR"}, PaymentToken: psp.TokenVisa})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Deliver(t.Context(), env); err != nil {
		t.Fatalf("deliver AuthorizePayment: %v", err)
	}
	var p payments.Payment
	testlog.Eventually(t, "the payment to be authorized", func() bool {
		p, err = bus.Call(t.Context(), b, payments.GetPaymentRequest, payments.GetPayment{PayableID: order})
		return err == nil && p.Status == payments.StatusAuthorized
	})
	return p
}

// TestModuleChoosesTheProvider: without a provider URL the module authorizes with
// the in-process simulator; with one, over HTTP with the API key.
func TestModuleChoosesTheProvider(t *testing.T) {
	t.Run("simulated", func(t *testing.T) {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		b := start(t, cfg, module.DefaultSettings())
		authorizeAndWait(t, b, "")
		st, err := bus.Call(t.Context(), b, payments.ProviderStatusRequest, payments.ProviderStatus{})
		if err != nil || st != (payments.ProviderState{Provider: "simulated", Breaker: "closed"}) {
			t.Errorf("ProviderStatus = %+v, %v", st, err)
		}
	})
	t.Run("http", func(t *testing.T) {
		sim := psp.NewSimulator(psp.Config{})
		srv := httptest.NewServer(psp.Handler(sim, "sk_test"))
		defer srv.Close()
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		s := module.DefaultSettings()
		s.ProviderURL, s.ProviderKey = srv.URL, "sk_test"
		b := start(t, cfg, s)
		p := authorizeAndWait(t, b, "")
		auths := sim.Authorizations()
		if len(auths) != 1 || auths[0].ID != p.Entries[0].ProviderRef {
			t.Errorf("the provider holds %+v; the ledger says %+v", auths, p.Entries)
		}
		st, err := bus.Call(t.Context(), b, payments.ProviderStatusRequest, payments.ProviderStatus{})
		if err != nil || st != (payments.ProviderState{Provider: "http", Breaker: "closed"}) {
			t.Errorf("ProviderStatus = %+v, %v", st, err)
		}
	})
}

func TestRoutes(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	b := start(t, cfg, module.DefaultSettings())
	p := authorizeAndWait(t, b, "")
	ride := authorizeAndWait(t, b, payments.PayableRide)

	keys := auth.NewKeys(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	token := func(role string) string {
		tok, err := keys.Issue(auth.Principal{UserID: bus.NewID(), Role: role}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	api := httpapi.NewAPI(httpapi.Config{Verifier: keys, MaxBodyBytes: 1 << 20, MaxInFlight: 8, RequestTimeout: 5 * time.Second}, discard)
	module.Routes(b)(api)
	h := api.Handler()

	tests := []struct {
		name, path, token string
		want              int
	}{
		{"payment", "/v1/payments/" + p.PayableID, token("admin"), http.StatusOK},
		{"payment as customer", "/v1/payments/" + p.PayableID, token("customer"), http.StatusForbidden},
		{"payment signed out", "/v1/payments/" + p.PayableID, "", http.StatusUnauthorized},
		{"unknown payment", "/v1/payments/" + bus.NewID(), token("admin"), http.StatusNotFound},
		{"ride's payment", "/v1/payments/" + ride.PayableID, token("admin"), http.StatusOK},
		{"not an id", "/v1/payments/nope", token("admin"), http.StatusUnprocessableEntity},
		{"provider", "/v1/ops/payment-provider", token("admin"), http.StatusOK},
		{"provider as customer", "/v1/ops/payment-provider", token("customer"), http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, tc.path, nil)
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.want)
			}
			if want, ok := map[string]payments.Payment{"payment": p, "ride's payment": ride}[tc.name]; ok {
				var got payments.Payment
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if got.PayableID != want.PayableID || got.Payable != want.Payable || got.Status != payments.StatusAuthorized || got.Authorized != 1999 || len(got.Entries) != 1 {
					t.Errorf("payment %+v", got)
				}
			}
			if tc.name == "provider" {
				var got payments.ProviderState
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Breaker != "closed" {
					t.Errorf("provider state %s (%v)", w.Body, err)
				}
			}
		})
	}
}

// TestProviderOutage: the module lets SetProviderOutage switch the in-process
// simulator in a process that allows faults, and only there; PUT
// /v1/ops/payment-provider/outage is the admins' way to it.
func TestProviderOutage(t *testing.T) {
	httpSettings := func(t *testing.T) module.Settings {
		srv := httptest.NewServer(psp.Handler(psp.NewSimulator(psp.Config{}), ""))
		t.Cleanup(srv.Close)
		s := module.DefaultSettings()
		s.ProviderURL = srv.URL
		return s
	}
	for _, tc := range []struct {
		name     string
		allow    bool
		settings func(*testing.T) module.Settings
		want     error
		status   int
	}{
		{"allowed", true, func(*testing.T) module.Settings { return module.DefaultSettings() }, nil, http.StatusOK},
		{"not allowed", false, func(*testing.T) module.Settings { return module.DefaultSettings() }, payments.ErrOutageNotAllowed, http.StatusConflict},
		{"a real provider", true, httpSettings, payments.ErrOutageNotSimulated, http.StatusConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir, cfg.AllowFaults = t.TempDir(), tc.allow
			b := start(t, cfg, tc.settings(t))
			st, err := bus.Call(t.Context(), b, payments.SetProviderOutageRequest, payments.SetProviderOutage{Down: true})
			if !errors.Is(err, tc.want) || (err == nil && (!st.Outage || !st.OutageSwitchable)) {
				t.Fatalf("SetProviderOutage = %+v, %v; want %v", st, err, tc.want)
			}
			for _, c := range []struct {
				role string
				want int
			}{{"customer", http.StatusForbidden}, {"admin", tc.status}} {
				w := putOutage(t, b, c.role, `{"down": false}`)
				if w.Code != c.want {
					t.Errorf("PUT as %s: %d %s, want %d", c.role, w.Code, w.Body, c.want)
				}
			}
			if st, err := bus.Call(t.Context(), b, payments.ProviderStatusRequest, payments.ProviderStatus{}); err != nil || st.Outage {
				t.Errorf("after PUT {down: false}: %+v, %v", st, err)
			}
		})
	}
}

// putOutage sends PUT /v1/ops/payment-provider/outage with body as a user of role.
func putOutage(t *testing.T, b *bus.Bus, role, body string) *httptest.ResponseRecorder {
	t.Helper()
	keys := auth.NewKeys(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	tok, err := keys.Issue(auth.Principal{UserID: bus.NewID(), Role: role}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.NewAPI(httpapi.Config{Verifier: keys, MaxBodyBytes: 1 << 20, MaxInFlight: 8, RequestTimeout: 5 * time.Second}, discard)
	module.Routes(b)(api)
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPut, "/v1/ops/payment-provider/outage", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	api.Handler().ServeHTTP(w, r)
	return w
}
