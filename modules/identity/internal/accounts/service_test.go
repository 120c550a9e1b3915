package accounts_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/testdb"

	"github.com/google/go-cmp/cmp"
	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/identity/internal/accounts"
)

// clock is a settable clock. It starts at the wall clock's now, because access
// tokens are verified against the wall clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	s     *accounts.Service
	h     *modhost.Host
	keys  *auth.Keys
	clock *clock
}

func newKeys(t *testing.T) *auth.Keys {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewKeys(priv)
}

func newFixture(t *testing.T, h *modhost.Host) fixture {
	t.Helper()
	c := &clock{now: time.Now()}
	keys := newKeys(t)
	return fixture{s: accounts.NewService(h.DB, h.Outbox, keys, c.Now), h: h, keys: keys, clock: c}
}

// eachService runs fn with a fresh service on every back end.
func eachService(t *testing.T, fn func(t *testing.T, f fixture)) {
	testdb.EachHost(t, "identity", func(t *testing.T, h *modhost.Host) { fn(t, newFixture(t, h)) })
}

func (f fixture) register(t *testing.T, email, password string) identity.User {
	t.Helper()
	u, err := f.s.Register(t.Context(), identity.Register{Email: email, Password: password})
	if err != nil {
		t.Fatalf("Register %s: %v", email, err)
	}
	return u
}

func (f fixture) login(t *testing.T, email, password string) identity.Tokens {
	t.Helper()
	tok, err := f.s.Login(t.Context(), identity.Login{Email: email, Password: password})
	if err != nil {
		t.Fatalf("Login %s: %v", email, err)
	}
	return tok
}

func (f fixture) refresh(t *testing.T, token string) identity.Tokens {
	t.Helper()
	tok, err := f.s.Refresh(t.Context(), identity.Refresh{RefreshToken: token})
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return tok
}

// wantRefreshFails checks that token no longer refreshes.
func (f fixture) wantRefreshFails(t *testing.T, what, token string) {
	t.Helper()
	if _, err := f.s.Refresh(t.Context(), identity.Refresh{RefreshToken: token}); !errors.Is(err, identity.ErrInvalidToken) {
		t.Errorf("Refresh with %s: err = %v, want ErrInvalidToken", what, err)
	}
}

func (f fixture) hash(t *testing.T, userID string) string {
	t.Helper()
	c, err := (accounts.Repo{}).CredentialsByID(t.Context(), f.h.DB, userID)
	if err != nil {
		t.Fatalf("CredentialsByID: %v", err)
	}
	return c.PasswordHash
}

func (f fixture) count(t *testing.T) int {
	t.Helper()
	n, err := f.s.Count(t.Context())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}

// wantInvalid checks that err is ErrInvalidInput naming field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if !errors.Is(err, identity.ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
	var be *message.Error
	if !errors.As(err, &be) {
		t.Fatalf("err %v is not a *message.Error", err)
	}
	if be.Field != field {
		t.Errorf("field = %q, want %q (%v)", be.Field, field, err)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

const pw = "a long enough password"

func TestRegister(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		tests := []struct {
			name, email, want string
		}{
			{"plain", "alice@example.com", "alice@example.com"},
			{"upper case is lowered", "Bob.Smith@Example.COM", "bob.smith@example.com"},
			{"surrounding space is trimmed", " \t carol@example.com \n", "carol@example.com"},
			{"plus addressing and subdomains", "Dave+Shop@Mail.Example.ORG", "dave+shop@mail.example.org"},
			{"non-ASCII is lowered too", "ÉMILE@Example.com", "émile@example.com"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := f.clock.Now()
				u := f.register(t, tt.email, pw)
				want := identity.User{ID: u.ID, Email: tt.want, Role: identity.RoleCustomer, Version: 1,
					CreatedAt: stored(before), UpdatedAt: stored(before)}
				if diff := cmp.Diff(want, u); diff != "" {
					t.Errorf("Register returned (-want +got):\n%s", diff)
				}
				if u.CreatedAt.Location() != time.UTC || u.CreatedAt.Nanosecond()%1000 != 0 {
					t.Errorf("CreatedAt %v is not UTC to the microsecond", u.CreatedAt)
				}
				got, err := f.s.GetUser(t.Context(), identity.GetUser{ID: u.ID})
				if err != nil {
					t.Fatalf("GetUser: %v", err)
				}
				if diff := cmp.Diff(u, got); diff != "" {
					t.Errorf("stored user differs from the one returned (-returned +stored):\n%s", diff)
				}
				// The account logs in with the email as typed, in any case.
				f.login(t, strings.ToUpper(tt.email), pw)
			})
		}
	})
}

func TestRegisterWritesUserRegistered(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		u := f.register(t, "Alice@Example.com", pw)
		rows := testdb.OutboxRows(t, f.h.DB)
		if diff := cmp.Diff([]string{"identity.UserRegistered"}, testdb.OutboxTypes(rows)); diff != "" {
			t.Fatalf("outbox types (-want +got):\n%s", diff)
		}
		if rows[0].Kind != string(message.KindEvent) {
			t.Errorf("kind = %q, want event", rows[0].Kind)
		}
		want := identity.UserRegistered{UserID: u.ID, Email: "alice@example.com", Role: identity.RoleCustomer}
		if diff := cmp.Diff(want, testdb.Decode[identity.UserRegistered](t, rows[0].Payload)); diff != "" {
			t.Errorf("UserRegistered payload (-want +got):\n%s", diff)
		}
		if strings.Contains(rows[0].Payload, pw) || strings.Contains(rows[0].Payload, "argon2") {
			t.Errorf("the event carries a secret: %s", rows[0].Payload)
		}
	})
}

// An account and its UserRegistered commit together: when the outbox cannot take
// the event, there is no account either.
func TestRegisterIsAtomicWithItsEvent(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		if _, err := f.h.DB.ExecContext(t.Context(), `DROP TABLE outbox`); err != nil {
			t.Fatalf("drop outbox: %v", err)
		}
		if _, err := f.s.Register(t.Context(), identity.Register{Email: "alice@example.com", Password: pw}); err == nil {
			t.Fatal("Register succeeded although its event could not be stored")
		}
		if n := f.count(t); n != 0 {
			t.Errorf("%d accounts after the failed register, want 0", n)
		}
	})
}

func TestRegisterDuplicateEmail(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		first := f.register(t, "alice@example.com", pw)
		tests := []struct{ name, email string }{
			{"same", "alice@example.com"},
			{"other case", "ALICE@Example.Com"},
			{"surrounding space", "  alice@example.com "},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.s.Register(t.Context(), identity.Register{Email: tt.email, Password: "another password"})
				if !errors.Is(err, identity.ErrEmailUnavailable) {
					t.Fatalf("Register(%q): err = %v, want ErrEmailUnavailable", tt.email, err)
				}
				if _, err := f.s.CreateUser(t.Context(), identity.CreateUser{Email: tt.email, Password: "another password",
					Role: identity.RoleAdmin}); !errors.Is(err, identity.ErrEmailUnavailable) {
					t.Fatalf("CreateUser(%q): err = %v, want ErrEmailUnavailable", tt.email, err)
				}
			})
		}
		if n := f.count(t); n != 1 {
			t.Errorf("%d accounts, want 1", n)
		}
		if types := testdb.OutboxTypes(testdb.OutboxRows(t, f.h.DB)); len(types) != 1 {
			t.Errorf("outbox = %v, want one UserRegistered", types)
		}
		// The first account keeps its password.
		if tok := f.login(t, "alice@example.com", pw); tok.AccessToken == "" {
			t.Error("no access token")
		}
		if got, _ := f.s.GetUser(t.Context(), identity.GetUser{ID: first.ID}); got.Role != identity.RoleCustomer {
			t.Errorf("the first account's role is %q now", got.Role)
		}
	})
}

func TestRegisterValidation(t *testing.T) {
	local := strings.Repeat("a", identity.MaxEmailLen-len("@example.com"))
	tests := []struct {
		name, email, password, field string
	}{
		{"empty email", "", pw, "email"},
		{"blank email", "   ", pw, "email"},
		{"no at sign", "alice.example.com", pw, "email"},
		{"no domain", "alice@", pw, "email"},
		{"no local part", "@example.com", pw, "email"},
		{"two at signs", "alice@bob@example.com", pw, "email"},
		{"display name", "Alice <alice@example.com>", pw, "email"},
		{"comment", "alice@example.com (Alice)", pw, "email"},
		{"space inside", "ali ce@example.com", pw, "email"},
		{"newline inside", "alice@exa\nmple.com", pw, "email"},
		{"two addresses", "alice@example.com, bob@example.com", pw, "email"},
		{"email of 255 characters", local + "a@example.com", pw, "email"},
		{"email not UTF-8", "ali\xffce@example.com", pw, "email"},
		{"empty password", "alice@example.com", "", "password"},
		{"password of 9 characters", "alice@example.com", "123456789", "password"},
		{"password of 9 multi-byte characters in 18 bytes", "alice@example.com", strings.Repeat("é", 9), "password"},
		{"password of 129 characters", "alice@example.com", strings.Repeat("p", identity.MaxPasswordLen+1), "password"},
		{"password not UTF-8", "alice@example.com", "0123456789\xff", "password"},
	}
	eachService(t, func(t *testing.T, f fixture) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.s.Register(t.Context(), identity.Register{Email: tt.email, Password: tt.password})
				wantInvalid(t, err, tt.field)
				if strings.Contains(err.Error(), tt.password) && tt.password != "" {
					t.Errorf("the error %q repeats the password", err)
				}
				if n := f.count(t); n != 0 {
					t.Errorf("%d accounts after a rejected register", n)
				}
				if rows := testdb.OutboxRows(t, f.h.DB); len(rows) != 0 {
					t.Errorf("outbox has %v after a rejected register", testdb.OutboxTypes(rows))
				}
			})
		}
	})
}

// The limits are inclusive.
func TestRegisterAtLimits(t *testing.T) {
	local := strings.Repeat("a", identity.MaxEmailLen-len("@example.com"))
	tests := []struct{ name, email, password string }{
		{"email of 254 characters", local + "@example.com", pw},
		{"password of 10 multi-byte characters", "b@example.com", strings.Repeat("ü", identity.MinPasswordLen-1) + "é"},
		{"password of 128 characters", "c@example.com", strings.Repeat("p", identity.MaxPasswordLen-1) + "q"},
		{"password of spaces and symbols", "d@example.com", "  ¡!  \u00a0  ☃  "},
	}
	eachService(t, func(t *testing.T, f fixture) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f.register(t, tt.email, tt.password)
				f.login(t, tt.email, tt.password) // stored as given: not trimmed, not normalized
			})
		}
	})
}

func TestCreateUser(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		tests := []struct {
			name, role string
			wantField  string // empty: created
		}{
			{"admin", identity.RoleAdmin, ""},
			{"customer", identity.RoleCustomer, ""},
			{"driver", identity.RoleDriver, ""},
			{"no role", "", "role"},
			{"unknown role", "root", "role"},
			{"role in other case", "Admin", "role"},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				email := fmt.Sprintf("User%d@Example.com", i)
				u, err := f.s.CreateUser(t.Context(), identity.CreateUser{Email: email, Password: pw, Role: tt.role})
				if tt.wantField != "" {
					wantInvalid(t, err, tt.wantField)
					return
				}
				if err != nil {
					t.Fatalf("CreateUser: %v", err)
				}
				if u.Role != tt.role || u.Email != strings.ToLower(email) || u.Version != 1 {
					t.Errorf("CreateUser returned %+v", u)
				}
				rows := testdb.OutboxRows(t, f.h.DB)
				want := identity.UserRegistered{UserID: u.ID, Email: u.Email, Role: tt.role}
				if diff := cmp.Diff(want, testdb.Decode[identity.UserRegistered](t, rows[len(rows)-1].Payload)); diff != "" {
					t.Errorf("UserRegistered payload (-want +got):\n%s", diff)
				}
				p, err := f.keys.Verify(f.login(t, email, pw).AccessToken)
				if err != nil || p.Role != tt.role {
					t.Errorf("access token principal %+v, %v; want role %s", p, err, tt.role)
				}
			})
		}
		if n := f.count(t); n != 3 {
			t.Errorf("%d accounts, want 3", n)
		}
	})
}

// jwtClaims decodes a JWT's claims without checking it (Verify does that).
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("access token claims: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("access token claims: %v", err)
	}
	return c
}

func TestLogin(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		u := f.register(t, "alice@example.com", pw)
		tok := f.login(t, "  ALICE@example.com ", pw)

		if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 {
			t.Errorf("token type %q, expires in %d; want Bearer, 900", tok.TokenType, tok.ExpiresIn)
		}
		p, err := f.keys.Verify(tok.AccessToken)
		if err != nil {
			t.Fatalf("Verify access token: %v", err)
		}
		if diff := cmp.Diff(auth.Principal{UserID: u.ID, Role: identity.RoleCustomer}, p); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
		if _, err := newKeys(t).Verify(tok.AccessToken); err == nil {
			t.Error("the access token verifies with another key")
		}
		c := jwtClaims(t, tok.AccessToken)
		if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != accounts.AccessTTL.Seconds() {
			t.Errorf("access token lives %v s, want %v", exp-iat, accounts.AccessTTL.Seconds())
		}

		// The refresh token: 32 random bytes, base64url without padding, stored only as its SHA-256.
		raw, err := base64.RawURLEncoding.DecodeString(tok.RefreshToken)
		if err != nil || len(raw) != 32 {
			t.Errorf("refresh token %q: %d bytes, %v; want 32 bytes of unpadded base64url", tok.RefreshToken, len(raw), err)
		}
		rt, err := (accounts.Repo{}).RefreshTokenByHash(t.Context(), f.h.DB, sha256Hex(tok.RefreshToken))
		if err != nil {
			t.Fatalf("the refresh token's hash is not stored: %v", err)
		}
		now := stored(f.clock.Now())
		want := accounts.RefreshToken{ID: rt.ID, UserID: u.ID, FamilyID: rt.FamilyID, TokenHash: sha256Hex(tok.RefreshToken),
			CreatedAt: now, ExpiresAt: now.Add(accounts.RefreshTTL)}
		if diff := cmp.Diff(want, rt); diff != "" {
			t.Errorf("stored refresh token (-want +got):\n%s", diff)
		}
		var leaked int
		if err := f.h.DB.GetContext(t.Context(), &leaked, f.h.DB.Rebind(`SELECT COUNT(*) FROM refresh_tokens
			WHERE token_hash = ? OR id = ? OR family_id = ?`), tok.RefreshToken, tok.RefreshToken, tok.RefreshToken); err != nil || leaked != 0 {
			t.Errorf("the refresh token itself is stored (%d rows, %v)", leaked, err)
		}

		// Each login is a new session: new tokens, a new family.
		again := f.login(t, "alice@example.com", pw)
		if again.RefreshToken == tok.RefreshToken {
			t.Error("two logins got the same refresh token")
		}
		rt2, err := (accounts.Repo{}).RefreshTokenByHash(t.Context(), f.h.DB, sha256Hex(again.RefreshToken))
		if err != nil || rt2.FamilyID == rt.FamilyID {
			t.Errorf("second login's family %q (%v), first's %q: want a new family", rt2.FamilyID, err, rt.FamilyID)
		}
	})
}

// Every failed login gives the same error, whether or not the email has an account,
// costs exactly one password hash, and stores no token.
func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		f.register(t, "alice@example.com", pw)
		tests := []struct{ name, email, password string }{
			{"unknown email", "nobody@example.com", pw},
			{"wrong password", "alice@example.com", "a wrong password!"},
			{"password in other case", "alice@example.com", strings.ToUpper(pw)},
			{"password with a trailing space", "alice@example.com", pw + " "},
			{"empty password", "alice@example.com", ""},
			{"unknown email, empty password", "nobody@example.com", ""},
			{"not an email", "not an email", pw},
			{"empty email", "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				hashes := accounts.HashCount()
				_, err := f.s.Login(t.Context(), identity.Login{Email: tt.email, Password: tt.password})
				var be *message.Error
				if !errors.As(err, &be) {
					t.Fatalf("Login: err = %v, want a *message.Error", err)
				}
				if diff := cmp.Diff(*identity.ErrInvalidCredentials, *be); diff != "" {
					t.Errorf("Login error differs from ErrInvalidCredentials (-want +got):\n%s", diff)
				}
				if n := accounts.HashCount() - hashes; n != 1 {
					t.Errorf("the failed login computed %d password hashes, want 1", n)
				}
			})
		}
		var n int
		if err := f.h.DB.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM refresh_tokens`); err != nil || n != 0 {
			t.Errorf("%d refresh tokens stored after failed logins (%v)", n, err)
		}
	})
}

// A login that proves the password stores a new hash when the stored one was made
// with other parameters; a failed login or a current hash leaves it.
func TestLoginRehashesOldParameters(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		u := f.register(t, "alice@example.com", pw)
		current := f.hash(t, u.ID)
		old := accounts.OtherHash(pw, 19456, 2, 1, 16, 32) // OWASP's minimum: not ours
		if ok, err := (accounts.Repo{}).ReplacePasswordHash(ctx, f.h.DB, u.ID, current, old); err != nil || !ok {
			t.Fatalf("plant old hash: %v, %v", ok, err)
		}

		if _, err := f.s.Login(ctx, identity.Login{Email: u.Email, Password: "not the password"}); !errors.Is(err, identity.ErrInvalidCredentials) {
			t.Fatalf("Login with a wrong password: %v", err)
		}
		if got := f.hash(t, u.ID); got != old {
			t.Errorf("a failed login changed the stored hash to %q", got)
		}

		hashes := accounts.HashCount()
		tok := f.login(t, u.Email, pw)
		if n := accounts.HashCount() - hashes; n != 2 {
			t.Errorf("login with an old hash computed %d hashes, want 2 (verify, rehash)", n)
		}
		rehashed := f.hash(t, u.ID)
		if rehashed == old || accounts.NeedsRehash(rehashed) {
			t.Fatalf("after login the stored hash is %q, want one with the current parameters", rehashed)
		}
		if p, err := f.keys.Verify(tok.AccessToken); err != nil || p.UserID != u.ID {
			t.Errorf("access token after a rehash: %+v, %v", p, err)
		}

		// The new hash is of the same password, and is not redone.
		hashes = accounts.HashCount()
		f.login(t, u.Email, pw)
		if n := accounts.HashCount() - hashes; n != 1 {
			t.Errorf("login with a current hash computed %d hashes, want 1", n)
		}
		if got := f.hash(t, u.ID); got != rehashed {
			t.Error("a login rehashed a current hash")
		}
		if got, _ := f.s.GetUser(ctx, identity.GetUser{ID: u.ID}); got.Version != u.Version || !got.UpdatedAt.Equal(u.UpdatedAt) {
			t.Errorf("a rehash changed the user: %+v, was %+v", got, u)
		}
	})
}

func TestRefreshRotates(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		u := f.register(t, "alice@example.com", pw)
		t0 := f.login(t, u.Email, pw)
		t1 := f.refresh(t, t0.RefreshToken)

		if t1.RefreshToken == t0.RefreshToken {
			t.Fatal("refresh returned the same refresh token")
		}
		if t1.TokenType != "Bearer" || t1.ExpiresIn != 900 {
			t.Errorf("token type %q, expires in %d", t1.TokenType, t1.ExpiresIn)
		}
		if p, err := f.keys.Verify(t1.AccessToken); err != nil || p != (auth.Principal{UserID: u.ID, Role: identity.RoleCustomer}) {
			t.Errorf("refreshed access token: %+v, %v", p, err)
		}

		// The role is read at each refresh.
		admin, err := f.s.SetRole(ctx, identity.SetRole{ID: u.ID, Role: identity.RoleAdmin, ExpectedVersion: u.Version})
		if err != nil {
			t.Fatalf("SetRole: %v", err)
		}
		t2 := f.refresh(t, t1.RefreshToken)
		if p, err := f.keys.Verify(t2.AccessToken); err != nil || p.Role != admin.Role {
			t.Errorf("access token after the role change: %+v, %v; want role admin", p, err)
		}

		// One family; every token but the newest is spent.
		repo := accounts.Repo{}
		var family string
		for i, tok := range []identity.Tokens{t0, t1, t2} {
			rt, err := repo.RefreshTokenByHash(ctx, f.h.DB, sha256Hex(tok.RefreshToken))
			if err != nil {
				t.Fatalf("token %d: %v", i, err)
			}
			if i == 0 {
				family = rt.FamilyID
			}
			if rt.FamilyID != family || rt.UserID != u.ID {
				t.Errorf("token %d: family %s user %s, want %s %s", i, rt.FamilyID, rt.UserID, family, u.ID)
			}
			if spent := i < 2; rt.UsedAt.Valid != spent || rt.RevokedAt.Valid {
				t.Errorf("token %d: used %v revoked %v; want used %v, not revoked", i, rt.UsedAt.Valid, rt.RevokedAt.Valid, spent)
			}
		}
		rt1, _ := repo.RefreshTokenByHash(ctx, f.h.DB, sha256Hex(t1.RefreshToken))
		if want := stored(f.clock.Now()); !rt1.CreatedAt.Equal(want) ||
			!rt1.ExpiresAt.Equal(want.Add(accounts.RefreshTTL)) {
			t.Errorf("rotated token created %v expires %v; want %v and 30 days later", rt1.CreatedAt, rt1.ExpiresAt, want)
		}
		f.refresh(t, t2.RefreshToken)
	})
}

// Presenting a spent refresh token revokes its whole family: the reused token, and
// every token refreshed from it, including the newest.
func TestRefreshReuseRevokesTheFamily(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		u := f.register(t, "alice@example.com", pw)
		t0 := f.login(t, u.Email, pw)
		t1 := f.refresh(t, t0.RefreshToken)
		t2 := f.refresh(t, t1.RefreshToken)
		other := f.login(t, u.Email, pw) // another session: another family

		f.wantRefreshFails(t, "a spent token", t0.RefreshToken)
		f.wantRefreshFails(t, "the newest token of the family after reuse", t2.RefreshToken)
		f.wantRefreshFails(t, "the other spent token", t1.RefreshToken)
		f.wantRefreshFails(t, "the reused token again", t0.RefreshToken)

		var revoked int
		if err := f.h.DB.GetContext(t.Context(), &revoked, `SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL`); err != nil || revoked != 3 {
			t.Errorf("%d tokens revoked (%v), want the family's 3", revoked, err)
		}
		if tok := f.refresh(t, other.RefreshToken); tok.AccessToken == "" {
			t.Error("the other session got no access token")
		}
	})
}

func TestRefreshInvalid(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		u := f.register(t, "alice@example.com", pw)
		tests := []struct {
			name  string
			token func(t *testing.T) string
			ok    bool
		}{
			{"empty", func(*testing.T) string { return "" }, false},
			{"unknown", func(*testing.T) string { return base64.RawURLEncoding.EncodeToString(make([]byte, 32)) }, false},
			{"its hash instead of it", func(t *testing.T) string { return sha256Hex(f.login(t, u.Email, pw).RefreshToken) }, false},
			{"an access token", func(t *testing.T) string { return f.login(t, u.Email, pw).AccessToken }, false},
			{"logged out", func(t *testing.T) string {
				tok := f.login(t, u.Email, pw).RefreshToken
				if _, err := f.s.Logout(t.Context(), identity.Logout{RefreshToken: tok}); err != nil {
					t.Fatalf("Logout: %v", err)
				}
				return tok
			}, false},
			{"a second before it expires", func(t *testing.T) string {
				tok := f.login(t, u.Email, pw).RefreshToken
				f.clock.Advance(accounts.RefreshTTL - time.Second)
				return tok
			}, true},
			{"when it expires", func(t *testing.T) string {
				tok := f.login(t, u.Email, pw).RefreshToken
				f.clock.Advance(accounts.RefreshTTL)
				return tok
			}, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.s.Refresh(t.Context(), identity.Refresh{RefreshToken: tt.token(t)})
				if tt.ok && err != nil {
					t.Errorf("Refresh: %v", err)
				}
				if !tt.ok && !errors.Is(err, identity.ErrInvalidToken) {
					t.Errorf("Refresh: err = %v, want ErrInvalidToken", err)
				}
			})
		}
	})
}

// race runs fn(0) … fn(n-1) at once, each a request that reads the row of table
// whose column is value and then writes it. On PostgreSQL it makes them collide:
// a transaction holds the row locked until all n wait for it, so every one has
// read the row before any writes it. (SQLite runs one writing transaction at a
// time, so there they simply queue.) n must leave a pool connection for the lock.
func race(t *testing.T, h *modhost.Host, table, column, value string, n int, fn func(i int)) {
	t.Helper()
	var hold *sqlx.Tx
	if h.DB.Dialect == store.Postgres {
		var err error
		if hold, err = h.DB.BeginTxx(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		defer hold.Rollback()
		if _, err := hold.ExecContext(t.Context(), `SELECT 1 FROM `+table+` WHERE `+column+` = $1 FOR UPDATE`, value); err != nil {
			t.Fatalf("lock the row: %v", err)
		}
	}
	var wg sync.WaitGroup
	var done atomic.Int64 // a request that ends without waiting stops the wait for it
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			defer done.Add(1)
			<-start
			fn(i)
		})
	}
	close(start)
	if hold != nil {
		for waiting := 0; waiting+int(done.Load()) < n; {
			if err := h.DB.GetContext(t.Context(), &waiting, `SELECT COUNT(*) FROM pg_stat_activity
				WHERE wait_event_type = 'Lock' AND application_name = 'agora-identity'`); err != nil {
				t.Fatalf("count waiting sessions: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := hold.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// Two refreshes of one token at once: exactly one gets new tokens. The other is a
// reuse of a spent token, so the family ends, as it would had they come one after
// the other.
func TestRefreshConcurrentOneWins(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		u := f.register(t, "alice@example.com", pw)
		tok := f.login(t, u.Email, pw)
		const n = 6
		results := make([]identity.Tokens, n)
		errs := make([]error, n)
		race(t, f.h, "refresh_tokens", "token_hash", sha256Hex(tok.RefreshToken), n, func(i int) {
			results[i], errs[i] = f.s.Refresh(t.Context(), identity.Refresh{RefreshToken: tok.RefreshToken})
		})
		var winners []identity.Tokens
		for i, err := range errs {
			switch {
			case err == nil:
				winners = append(winners, results[i])
			case errors.Is(err, identity.ErrInvalidToken):
			default:
				t.Errorf("Refresh: unexpected error %v", err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("%d concurrent refreshes of one token succeeded, want 1", len(winners))
		}
		if _, err := f.keys.Verify(winners[0].AccessToken); err != nil {
			t.Errorf("the winner's access token: %v", err)
		}
		var issued int
		if err := f.h.DB.GetContext(t.Context(), &issued, `SELECT COUNT(*) FROM refresh_tokens`); err != nil || issued != 2 {
			t.Errorf("%d refresh tokens stored (%v), want the login's and the winner's", issued, err)
		}
		f.wantRefreshFails(t, "the winner's token after the losers' reuse", winners[0].RefreshToken)
	})
}

func TestLogout(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		u := f.register(t, "alice@example.com", pw)
		a0 := f.login(t, u.Email, pw)
		a1 := f.refresh(t, a0.RefreshToken)
		b := f.login(t, u.Email, pw)

		tests := []struct{ name, token string }{
			{"the current token of a family", a1.RefreshToken},
			{"the same token again", a1.RefreshToken},
			{"a spent token of the logged out family", a0.RefreshToken},
			{"unknown", "no-such-token"},
			{"empty", ""},
		}
		for _, tt := range tests {
			if _, err := f.s.Logout(ctx, identity.Logout{RefreshToken: tt.token}); err != nil {
				t.Errorf("Logout with %s: %v", tt.name, err)
			}
		}
		f.wantRefreshFails(t, "a logged out token", a1.RefreshToken)
		f.refresh(t, b.RefreshToken) // the other session stays
	})
}

func TestChangePassword(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		const newPW = "a brand new password"
		u := f.register(t, "alice@example.com", pw)
		other := f.register(t, "bob@example.com", pw)
		s1 := f.login(t, u.Email, pw)
		s2 := f.refresh(t, f.login(t, u.Email, pw).RefreshToken)
		bob := f.login(t, other.Email, pw)

		failures := []struct {
			name string
			c    identity.ChangePassword
			want error
		}{
			{"wrong current password", identity.ChangePassword{UserID: u.ID, CurrentPassword: "not the password", NewPassword: newPW}, identity.ErrInvalidCredentials},
			{"empty current password", identity.ChangePassword{UserID: u.ID, CurrentPassword: "", NewPassword: newPW}, identity.ErrInvalidCredentials},
			{"new password too short", identity.ChangePassword{UserID: u.ID, CurrentPassword: pw, NewPassword: "short"}, identity.ErrInvalidInput},
			{"new password too long", identity.ChangePassword{UserID: u.ID, CurrentPassword: pw, NewPassword: strings.Repeat("x", identity.MaxPasswordLen+1)}, identity.ErrInvalidInput},
			{"unknown user", identity.ChangePassword{UserID: bus.NewID(), CurrentPassword: pw, NewPassword: newPW}, identity.ErrUserNotFound},
		}
		before := f.hash(t, u.ID)
		for _, tt := range failures {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.s.ChangePassword(ctx, tt.c)
				if !errors.Is(err, tt.want) {
					t.Fatalf("ChangePassword: err = %v, want %v", err, tt.want)
				}
				if errors.Is(err, identity.ErrInvalidInput) {
					wantInvalid(t, err, "new_password")
				}
				if f.hash(t, u.ID) != before {
					t.Error("a failed change stored a new hash")
				}
			})
		}
		// Nothing was revoked by the failures: s1 still refreshes.
		s1 = f.refresh(t, s1.RefreshToken)

		if _, err := f.s.ChangePassword(ctx, identity.ChangePassword{UserID: u.ID, CurrentPassword: pw, NewPassword: newPW}); err != nil {
			t.Fatalf("ChangePassword: %v", err)
		}
		if _, err := f.s.Login(ctx, identity.Login{Email: u.Email, Password: pw}); !errors.Is(err, identity.ErrInvalidCredentials) {
			t.Errorf("Login with the old password: err = %v, want ErrInvalidCredentials", err)
		}
		f.wantRefreshFails(t, "a session from before the change", s1.RefreshToken)
		f.wantRefreshFails(t, "another session from before the change", s2.RefreshToken)
		f.refresh(t, f.login(t, u.Email, newPW).RefreshToken) // new sessions work
		f.refresh(t, bob.RefreshToken)                        // other users keep theirs
		f.login(t, other.Email, pw)
		if _, err := f.s.ChangePassword(ctx, identity.ChangePassword{UserID: u.ID, CurrentPassword: pw, NewPassword: pw}); !errors.Is(err, identity.ErrInvalidCredentials) {
			t.Errorf("ChangePassword with the old password as current: err = %v, want ErrInvalidCredentials", err)
		}
		if got, _ := f.s.GetUser(ctx, identity.GetUser{ID: u.ID}); got.Version != u.Version {
			t.Errorf("version %d after a password change, want %d: the User did not change", got.Version, u.Version)
		}
	})
}

func TestGetUserUnknown(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		f.register(t, "alice@example.com", pw)
		for _, id := range []string{bus.NewID(), "", "not-an-id"} {
			if _, err := f.s.GetUser(t.Context(), identity.GetUser{ID: id}); !errors.Is(err, identity.ErrUserNotFound) {
				t.Errorf("GetUser(%q): err = %v, want ErrUserNotFound", id, err)
			}
		}
	})
}

func TestListUsers(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		var all []identity.User
		for i := range identity.MaxPageSize + 1 {
			u := newUser(i, identity.RoleCustomer)
			insertUsers(t, f.h, u)
			u.CreatedAt, u.UpdatedAt = stored(u.CreatedAt), stored(u.UpdatedAt)
			all = append(all, u)
		}
		ids := userIDs(all)
		tests := []struct {
			name      string
			q         identity.ListUsers
			want      []string
			wantAfter string
		}{
			{"first page", identity.ListUsers{Limit: 3}, ids[:3], ids[2]},
			{"next page", identity.ListUsers{After: ids[2], Limit: 3}, ids[3:6], ids[5]},
			{"last page, exactly full", identity.ListUsers{After: ids[len(ids)-4], Limit: 3}, ids[len(ids)-3:], ""},
			{"last page, short", identity.ListUsers{After: ids[len(ids)-3], Limit: 3}, ids[len(ids)-2:], ""},
			{"after the last", identity.ListUsers{After: ids[len(ids)-1], Limit: 3}, []string{}, ""},
			{"no limit: the maximum", identity.ListUsers{}, ids[:identity.MaxPageSize], ids[identity.MaxPageSize-1]},
			{"limit over the maximum", identity.ListUsers{Limit: 1000}, ids[:identity.MaxPageSize], ids[identity.MaxPageSize-1]},
			{"negative limit", identity.ListUsers{Limit: -1}, ids[:identity.MaxPageSize], ids[identity.MaxPageSize-1]},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				page, err := f.s.ListUsers(t.Context(), tt.q)
				if err != nil {
					t.Fatalf("ListUsers: %v", err)
				}
				if diff := cmp.Diff(tt.want, userIDs(page.Items)); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
				if page.NextAfter != tt.wantAfter {
					t.Errorf("NextAfter = %q, want %q", page.NextAfter, tt.wantAfter)
				}
			})
		}
		page, _ := f.s.ListUsers(t.Context(), identity.ListUsers{Limit: 1})
		if diff := cmp.Diff(all[:1], page.Items); diff != "" {
			t.Errorf("listed user (-want +got):\n%s", diff)
		}
	})
}

func TestSetRole(t *testing.T) {
	tests := []struct {
		name     string
		set      func(u identity.User) identity.SetRole
		want     error  // nil: succeeds
		wantRole string // after
		changed  bool   // new version and a RoleChanged
		field    string
	}{
		{"promote", func(u identity.User) identity.SetRole {
			return identity.SetRole{ID: u.ID, Role: identity.RoleAdmin, ExpectedVersion: u.Version}
		}, nil, identity.RoleAdmin, true, ""},
		{"make a driver", func(u identity.User) identity.SetRole {
			return identity.SetRole{ID: u.ID, Role: identity.RoleDriver, ExpectedVersion: u.Version}
		}, nil, identity.RoleDriver, true, ""},
		{"the role it has", func(u identity.User) identity.SetRole {
			return identity.SetRole{ID: u.ID, Role: identity.RoleCustomer, ExpectedVersion: u.Version}
		}, nil, identity.RoleCustomer, false, ""},
		{"stale version", func(u identity.User) identity.SetRole {
			return identity.SetRole{ID: u.ID, Role: identity.RoleAdmin, ExpectedVersion: u.Version - 1}
		}, identity.ErrVersionMismatch, identity.RoleCustomer, false, ""},
		{"future version", func(u identity.User) identity.SetRole {
			return identity.SetRole{ID: u.ID, Role: identity.RoleAdmin, ExpectedVersion: u.Version + 1}
		}, identity.ErrVersionMismatch, identity.RoleCustomer, false, ""},
		{"no version", func(u identity.User) identity.SetRole {
			return identity.SetRole{ID: u.ID, Role: identity.RoleAdmin}
		}, identity.ErrVersionMismatch, identity.RoleCustomer, false, ""},
		{"unknown user", func(u identity.User) identity.SetRole {
			return identity.SetRole{ID: bus.NewID(), Role: identity.RoleAdmin, ExpectedVersion: u.Version}
		}, identity.ErrUserNotFound, identity.RoleCustomer, false, ""},
		{"unknown role", func(u identity.User) identity.SetRole {
			return identity.SetRole{ID: u.ID, Role: "superuser", ExpectedVersion: u.Version}
		}, identity.ErrInvalidInput, identity.RoleCustomer, false, "role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachService(t, func(t *testing.T, f fixture) {
				ctx := t.Context()
				// At version 2, so that "stale" is a real earlier version.
				u := f.register(t, "alice@example.com", pw)
				u, err := f.s.SetRole(ctx, identity.SetRole{ID: u.ID, Role: identity.RoleAdmin, ExpectedVersion: 1})
				if err != nil {
					t.Fatalf("SetRole: %v", err)
				}
				u, err = f.s.SetRole(ctx, identity.SetRole{ID: u.ID, Role: identity.RoleCustomer, ExpectedVersion: 2})
				if err != nil || u.Version != 3 {
					t.Fatalf("SetRole: %+v, %v", u, err)
				}
				rowsBefore := testdb.OutboxRows(t, f.h.DB)
				f.clock.Advance(time.Hour)

				got, err := f.s.SetRole(ctx, tt.set(u))
				if !errors.Is(err, tt.want) {
					t.Fatalf("SetRole: err = %v, want %v", err, tt.want)
				}
				if tt.field != "" {
					wantInvalid(t, err, tt.field)
				}
				want := u
				if tt.changed {
					want.Role, want.Version, want.UpdatedAt = tt.wantRole, u.Version+1, stored(f.clock.Now())
				}
				if tt.want == nil {
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("SetRole returned (-want +got):\n%s", diff)
					}
				}
				after, err := f.s.GetUser(ctx, identity.GetUser{ID: u.ID})
				if err != nil {
					t.Fatalf("GetUser: %v", err)
				}
				if diff := cmp.Diff(want, after); diff != "" {
					t.Errorf("stored user (-want +got):\n%s", diff)
				}

				rows := testdb.OutboxRows(t, f.h.DB)[len(rowsBefore):]
				if !tt.changed {
					if len(rows) != 0 {
						t.Errorf("outbox got %v, want nothing", testdb.OutboxTypes(rows))
					}
					return
				}
				// A role change also revokes the account's access tokens (the old role).
				if diff := cmp.Diff([]string{"identity.RoleChanged", "identity.TokensRevoked"}, testdb.OutboxTypes(rows)); diff != "" {
					t.Fatalf("outbox types (-want +got):\n%s", diff)
				}
				wantEvent := identity.RoleChanged{UserID: u.ID, OldRole: u.Role, NewRole: tt.wantRole, Version: want.Version}
				if diff := cmp.Diff(wantEvent, testdb.Decode[identity.RoleChanged](t, rows[0].Payload)); diff != "" {
					t.Errorf("RoleChanged payload (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// Two role changes that both expect the same version: exactly one wins.
func TestSetRoleConcurrentSameVersion(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		u := f.register(t, "alice@example.com", pw)
		const n = 6
		errs := make([]error, n)
		race(t, f.h, "users", "id", u.ID, n, func(i int) {
			_, errs[i] = f.s.SetRole(t.Context(), identity.SetRole{ID: u.ID, Role: identity.RoleAdmin, ExpectedVersion: u.Version})
		})
		got, err := f.s.GetUser(t.Context(), identity.GetUser{ID: u.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 || got.Role != identity.RoleAdmin {
			t.Errorf("after the race: version %d role %s, want 2 admin", got.Version, got.Role)
		}
		changed := testdb.OutboxTypes(testdb.OutboxRows(t, f.h.DB))
		if diff := cmp.Diff([]string{"identity.UserRegistered", "identity.RoleChanged", "identity.TokensRevoked"}, changed); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, identity.ErrVersionMismatch):
				t.Errorf("SetRole: unexpected error %v", err)
			}
		}
		if won != 1 {
			t.Errorf("%d concurrent role changes at one version succeeded, want 1", won)
		}
	})
}

// No reply carries a password or its hash: User has only its public fields, and
// what every request that returns users returns has neither.
func TestUsersCarryNoSecrets(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		const secret = "my very secret password"
		reg := f.register(t, "alice@example.com", secret)
		created, err := f.s.CreateUser(ctx, identity.CreateUser{Email: "root@example.com", Password: secret, Role: identity.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := f.s.GetUser(ctx, identity.GetUser{ID: reg.ID})
		page, _ := f.s.ListUsers(ctx, identity.ListUsers{})
		set, _ := f.s.SetRole(ctx, identity.SetRole{ID: reg.ID, Role: identity.RoleAdmin, ExpectedVersion: 1})
		replies := map[string]any{"Register": reg, "CreateUser": created, "GetUser": got, "ListUsers": page, "SetRole": set}

		hashes := []string{f.hash(t, reg.ID), f.hash(t, created.ID)}
		for name, r := range replies {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range append([]string{secret, "argon2", "password", "hash"}, hashes...) {
				if strings.Contains(strings.ToLower(string(b)), strings.ToLower(s)) {
					t.Errorf("%s reply %s contains %q", name, b, s)
				}
			}
		}
		b, _ := json.Marshal(reg)
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if diff := cmp.Diff([]string{"created_at", "email", "id", "role", "updated_at", "version"}, keys); diff != "" {
			t.Errorf("User's JSON fields (-want +got):\n%s", diff)
		}
		for i := range reflect.TypeFor[identity.User]().NumField() {
			name := strings.ToLower(reflect.TypeFor[identity.User]().Field(i).Name)
			if strings.Contains(name, "pass") || strings.Contains(name, "hash") || strings.Contains(name, "secret") {
				t.Errorf("identity.User has a field %s", name)
			}
		}
	})
}

// The bus handlers cover every request of the contract.
func TestHandlers(t *testing.T) {
	var got []string
	for _, h := range accounts.NewService(nil, nil, nil, nil).Handlers() {
		got = append(got, h.Name)
	}
	want := []string{
		identity.RegisterRequest.Name(), identity.LoginRequest.Name(), identity.RefreshRequest.Name(),
		identity.LogoutRequest.Name(), identity.ChangePasswordRequest.Name(), identity.CreateUserRequest.Name(),
		identity.GetUserRequest.Name(), identity.ListUsersRequest.Name(), identity.SetRoleRequest.Name(),
		identity.WatchRevocationsRequest.Name(),
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("handled requests (-want +got):\n%s", diff)
	}
}

// Purging keeps every refresh token that could still be accepted or that reuse
// detection needs, and deletes the revoked and the expired.
func TestPurgeRefreshTokens(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		f.register(t, "purge@example.com", "a long passphrase")
		login := func() identity.Tokens {
			tok, err := f.s.Login(ctx, identity.Login{Email: "purge@example.com", Password: "a long passphrase"})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		count := func() int {
			var n int
			if err := f.h.DB.GetContext(ctx, &n, `SELECT count(*) FROM refresh_tokens`); err != nil {
				t.Fatal(err)
			}
			return n
		}
		kept := login()  // active: must survive
		spent := login() // used once: must survive (reuse detection)
		if _, err := f.s.Refresh(ctx, identity.Refresh{RefreshToken: spent.RefreshToken}); err != nil {
			t.Fatal(err)
		}
		gone := login() // revoked by logout: must go
		if _, err := f.s.Logout(ctx, identity.Logout{RefreshToken: gone.RefreshToken}); err != nil {
			t.Fatal(err)
		}
		before := count()
		n, err := f.s.PurgeRefreshTokens(ctx)
		if err != nil || n != 1 || count() != before-1 {
			t.Fatalf("purge deleted %d (%v); rows %d -> %d, want exactly the revoked one", n, err, before, count())
		}
		if _, err := f.s.Refresh(ctx, identity.Refresh{RefreshToken: spent.RefreshToken}); !errors.Is(err, identity.ErrInvalidToken) {
			t.Errorf("reuse of a spent token after a purge: %v, want ErrInvalidToken", err)
		}
		f.clock.Advance(31 * 24 * time.Hour) // past every expiry
		if _, err := f.s.PurgeRefreshTokens(ctx); err != nil || count() != 0 {
			t.Errorf("after expiry %d rows remain (%v), want none", count(), err)
		}
		_ = kept
	})
}
