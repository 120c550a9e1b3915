package module_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/identity/internal/accounts"
	"github.com/agora-commerce/agora/modules/identity/internal/signing"
	"github.com/agora-commerce/agora/modules/identity/module"
)

var discard = slog.New(slog.DiscardHandler)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func newKeys(t *testing.T) *auth.Keys {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewKeys(priv)
}

var demoAccounts = []struct{ email, password, role string }{
	{"admin@example.com", "demo-admin-password", identity.RoleAdmin},
	{"customer@example.com", "demo-customer-password", identity.RoleCustomer},
	{"driver@example.com", "demo-driver-password", identity.RoleDriver},
}

// eachService runs fn with an identity service on a fresh database of every back end.
func eachService(t *testing.T, fn func(t *testing.T, s *accounts.Service, keys *auth.Keys)) {
	testdb.Each(t, "identity", func(ctx context.Context, db *store.DB) error {
		return modhost.MigrateDB(ctx, db, discard)
	}, func(t *testing.T, db *store.DB) {
		h := modhost.NewHost(db, discard)
		keys := newKeys(t)
		fn(t, accounts.NewService(h.DB, h.Outbox, keys, nil), keys)
	})
}

func TestSeedDemo(t *testing.T) {
	eachService(t, func(t *testing.T, s *accounts.Service, keys *auth.Keys) {
		ctx := t.Context()
		for range 2 { // the second run finds accounts and does nothing
			if err := module.SeedDemo(ctx, s, discard); err != nil {
				t.Fatalf("SeedDemo: %v", err)
			}
			if n, err := s.Count(ctx); err != nil || n != len(demoAccounts) {
				t.Fatalf("%d accounts after SeedDemo (%v), want %d", n, err, len(demoAccounts))
			}
		}
		for _, d := range demoAccounts {
			tok, err := s.Login(ctx, identity.Login{Email: d.email, Password: d.password})
			if err != nil {
				t.Fatalf("Login %s: %v", d.email, err)
			}
			if p, err := keys.Verify(tok.AccessToken); err != nil || p.Role != d.role {
				t.Errorf("demo %s: principal %+v, %v; want role %s", d.email, p, err, d.role)
			}
		}
	})
	t.Run("a store with an account is left alone", func(t *testing.T) {
		eachService(t, func(t *testing.T, s *accounts.Service, _ *auth.Keys) {
			ctx := t.Context()
			if _, err := s.Register(ctx, identity.Register{Email: "someone@example.com", Password: "a long enough password"}); err != nil {
				t.Fatal(err)
			}
			if err := module.SeedDemo(ctx, s, discard); err != nil {
				t.Fatalf("SeedDemo: %v", err)
			}
			if n, err := s.Count(ctx); err != nil || n != 1 {
				t.Errorf("%d accounts (%v), want the one there was", n, err)
			}
		})
	})
}

// moduleApp is a process that runs identity alone, with a bus in front of it.
func moduleApp(cfg config.Config, s module.Settings, keys *auth.Keys, populate ...any) fx.Option {
	return fx.Options(
		fx.Supply(cfg, discard, keys),
		module.Module(s),
		fx.Provide(fx.Annotate(
			func(log *slog.Logger, hs []bus.RequestHandler, subs []bus.Subscription) (*bus.Bus, error) {
				return bus.New(log, bus.Limits{}, nil, hs, subs)
			},
			fx.ParamTags(``, `group:"bus.requests"`, `group:"bus.subscriptions"`))),
		fx.Populate(populate...),
	)
}

// The module serves the contract on the bus and, with Demo, seeds the demo
// accounts at start.
func TestModule(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Demo = true
	keys := newKeys(t)
	var b *bus.Bus
	app := fxtest.New(t, moduleApp(cfg, module.DefaultSettings(), keys, &b))
	app.RequireStart()
	defer app.RequireStop()

	ctx := context.Background()
	tok, err := bus.Call(ctx, b, identity.LoginRequest, identity.Login{Email: "admin@example.com", Password: "demo-admin-password"})
	if err != nil {
		t.Fatalf("Login over the bus: %v", err)
	}
	p, err := keys.Verify(tok.AccessToken)
	if err != nil || p.Role != identity.RoleAdmin {
		t.Fatalf("demo admin's token: %+v, %v", p, err)
	}
	u, err := bus.Call(ctx, b, identity.GetUserRequest, identity.GetUser{ID: p.UserID})
	if err != nil || u.Email != "admin@example.com" {
		t.Errorf("GetUser over the bus: %+v, %v", u, err)
	}
	_, err = bus.Call(ctx, b, identity.LoginRequest, identity.Login{Email: "customer@example.com", Password: "wrong password"})
	if !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Errorf("Login with a wrong password over the bus: err = %v, want ErrInvalidCredentials", err)
	}
}

// A process given only the public key cannot sign access tokens, so it must not
// run identity; it fails before it opens the database.
func TestModuleNeedsTheSigningKey(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	s := module.DefaultSettings()
	s.JWTPublicKeyFile = filepath.Join(cfg.DataDir, "jwt-public.pem")
	var b *bus.Bus
	if err := fx.New(moduleApp(cfg, s, auth.NewVerifier(), &b), fx.NopLogger).Err(); err == nil {
		t.Fatal("identity started with only a public key")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "identity.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("identity opened its database before failing: %v", err)
	}
}

// Identity keeps its signing keys in its database: it makes the first at its first
// start, signs with the same key after a restart, and after a rotation signs with
// a new key while the old one stays published, so tokens of both verify.
func TestModuleKeys(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Demo = true
	start := func() (*auth.Keys, *bus.Bus, func()) {
		keys := auth.NewVerifier()
		var b *bus.Bus
		app := fxtest.New(t, moduleApp(cfg, module.DefaultSettings(), keys, &b))
		app.RequireStart()
		return keys, b, app.RequireStop
	}
	login := func(b *bus.Bus) string {
		tok, err := bus.Call(t.Context(), b, identity.LoginRequest, identity.Login{Email: "admin@example.com", Password: "demo-admin-password"})
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	keys, b, stop := start()
	first := login(b)
	set, err := bus.Call(t.Context(), b, identity.GetKeysRequest, identity.GetKeys{})
	if err != nil || len(set.Keys) != 1 || set.Keys[0].Kid != keys.PublicKeys()[0].ID {
		t.Fatalf("GetKeys after the first start = %+v, %v", set, err)
	}
	stop()

	keys, b, stop = start() // a restart on the same database
	defer stop()
	if _, err := keys.Verify(first); err != nil {
		t.Fatalf("a token from before the restart: %v", err)
	}
	rotated, err := bus.Call(t.Context(), b, identity.RotateKeysRequest, identity.RotateKeys{})
	if err != nil || len(rotated.Keys) != 2 || rotated.Keys[1].Kid != set.Keys[0].Kid {
		t.Fatalf("RotateKeys = %+v, %v; want a new key first and the old one after", rotated, err)
	}
	second := login(b)
	if kidOf(t, second) != rotated.Keys[0].Kid {
		t.Errorf("after the rotation tokens are signed with %s, want %s", kidOf(t, second), rotated.Keys[0].Kid)
	}
	for name, tok := range map[string]string{"old key": first, "new key": second} {
		if _, err := keys.Verify(tok); err != nil {
			t.Errorf("a token of the %s: %v", name, err)
		}
	}
	// Rotating again and again keeps the set bounded: the rotation is refused.
	for range 2 {
		if _, err := bus.Call(t.Context(), b, identity.RotateKeysRequest, identity.RotateKeys{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bus.Call(t.Context(), b, identity.RotateKeysRequest, identity.RotateKeys{}); !errors.Is(err, signing.ErrTooManyKeys) {
		t.Errorf("a fifth published key: err = %v, want ErrTooManyKeys", err)
	}
	if n := len(keys.PublicKeys()); n != signing.MaxPublished {
		t.Errorf("%d keys published, want %d", n, signing.MaxPublished)
	}
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
