package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/identity/internal/accounts"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// at is a fixed instant in a non-UTC zone, with nanoseconds, so a round trip that
// loses precision or the UTC normalisation shows.
var at = time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600))

func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// newUser returns an account with a fresh id; i makes its email unique.
func newUser(i int, role string) identity.User {
	return identity.User{ID: bus.NewID(), Email: fmt.Sprintf("user%d@example.com", i), Role: role, Version: 1,
		CreatedAt: at, UpdatedAt: at}
}

// insertUsers stores users with a placeholder hash (these tests never log in).
func insertUsers(t *testing.T, h *modhost.Host, us ...identity.User) {
	t.Helper()
	for _, u := range us {
		if err := (accounts.Repo{}).Insert(t.Context(), h.DB, u, "hash-of-"+u.Email); err != nil {
			t.Fatalf("Insert %s: %v", u.Email, err)
		}
	}
}

func userIDs(us []identity.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func TestRepoInsertGetRoundTrip(t *testing.T) {
	testdb.EachHost(t, "identity", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		repo := accounts.Repo{}
		u := identity.User{ID: bus.NewID(), Email: "zoë@example.com", Role: identity.RoleAdmin, Version: 7,
			CreatedAt: at, UpdatedAt: at.Add(90 * time.Minute)}
		if err := repo.Insert(ctx, h.DB, u, "the-hash"); err != nil {
			t.Fatalf("Insert: %v", err)
		}
		want := u
		want.CreatedAt, want.UpdatedAt = stored(u.CreatedAt), stored(u.UpdatedAt)

		got, err := repo.Get(ctx, h.DB, u.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Get after Insert (-want +got):\n%s", diff)
		}
		if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
			t.Errorf("times not in UTC: created %v, updated %v", got.CreatedAt.Location(), got.UpdatedAt.Location())
		}
		for name, get := range map[string]func() (accounts.Credentials, error){
			"CredentialsByID":    func() (accounts.Credentials, error) { return repo.CredentialsByID(ctx, h.DB, u.ID) },
			"CredentialsByEmail": func() (accounts.Credentials, error) { return repo.CredentialsByEmail(ctx, h.DB, u.Email) },
		} {
			c, err := get()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if diff := cmp.Diff(accounts.Credentials{User: want, PasswordHash: "the-hash"}, c); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
	})
}

func TestRepoUnknownUser(t *testing.T) {
	testdb.EachHost(t, "identity", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		repo := accounts.Repo{}
		insertUsers(t, h, newUser(1, identity.RoleCustomer))
		if _, err := repo.Get(ctx, h.DB, bus.NewID()); !errors.Is(err, identity.ErrUserNotFound) {
			t.Errorf("Get unknown id: err = %v, want ErrUserNotFound", err)
		}
		if _, err := repo.CredentialsByID(ctx, h.DB, bus.NewID()); !errors.Is(err, identity.ErrUserNotFound) {
			t.Errorf("CredentialsByID unknown id: err = %v, want ErrUserNotFound", err)
		}
		// The repository looks up the normalized form it is given; normalizing is the service's job.
		for _, email := range []string{"nobody@example.com", "USER1@example.com"} {
			if _, err := repo.CredentialsByEmail(ctx, h.DB, email); !errors.Is(err, identity.ErrUserNotFound) {
				t.Errorf("CredentialsByEmail(%q): err = %v, want ErrUserNotFound", email, err)
			}
		}
	})
}

func TestRepoInsertDuplicateEmail(t *testing.T) {
	testdb.EachHost(t, "identity", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		repo := accounts.Repo{}
		first := newUser(1, identity.RoleCustomer)
		insertUsers(t, h, first)
		dup := newUser(2, identity.RoleAdmin)
		dup.Email = first.Email
		err := repo.Insert(ctx, h.DB, dup, "other")
		if !errors.Is(err, identity.ErrEmailUnavailable) {
			t.Fatalf("Insert with a taken email: err = %v, want ErrEmailUnavailable", err)
		}
		if _, err := repo.Get(ctx, h.DB, dup.ID); !errors.Is(err, identity.ErrUserNotFound) {
			t.Errorf("the duplicate was stored: Get err = %v", err)
		}
		if n, err := repo.Count(ctx, h.DB); err != nil || n != 1 {
			t.Errorf("Count = %d, %v; want 1", n, err)
		}
	})
}

func TestRepoListKeysetPagination(t *testing.T) {
	testdb.EachHost(t, "identity", func(t *testing.T, h *modhost.Host) {
		var want []string
		for i := range 7 {
			u := newUser(i, identity.RoleCustomer)
			insertUsers(t, h, u)
			want = append(want, u.ID)
		}
		for _, limit := range []int{1, 2, 3, 7, 8} {
			t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
				got := testdb.CollectPages(t, limit, len(want)+1, func(after string, limit int) ([]string, error) {
					page, err := (accounts.Repo{}).List(t.Context(), h.DB, after, limit)
					return userIDs(page), err
				})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ids over all pages (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestRepoUpdateVersionCheck(t *testing.T) {
	tests := []struct {
		name    string
		version int64 // the row is at 1
		want    error
	}{
		{"next version", 2, nil},
		{"same version", 1, identity.ErrVersionMismatch},
		{"skipping a version", 3, identity.ErrVersionMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testdb.EachHost(t, "identity", func(t *testing.T, h *modhost.Host) {
				ctx := t.Context()
				repo := accounts.Repo{}
				u := newUser(1, identity.RoleCustomer)
				insertUsers(t, h, u)
				next := u
				next.Role, next.Version, next.UpdatedAt = identity.RoleAdmin, tt.version, at.Add(time.Hour)
				if err := repo.Update(ctx, h.DB, next); !errors.Is(err, tt.want) {
					t.Fatalf("Update: err = %v, want %v", err, tt.want)
				}
				want := u
				if tt.want == nil {
					want = next
				}
				want.CreatedAt, want.UpdatedAt = stored(want.CreatedAt), stored(want.UpdatedAt)
				got, err := repo.Get(ctx, h.DB, u.ID)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("after Update (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestRepoReplacePasswordHash(t *testing.T) {
	testdb.EachHost(t, "identity", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		repo := accounts.Repo{}
		u := newUser(1, identity.RoleCustomer)
		insertUsers(t, h, u) // hash "hash-of-user1@example.com"
		old := "hash-of-" + u.Email

		tests := []struct {
			name          string
			oldHash, hash string
			want          bool
			wantStored    string
		}{
			{"stale old hash leaves the row", "not-the-hash", "h2", false, old},
			{"current old hash replaces it", old, "h2", true, "h2"},
			{"the replaced hash is stale now", old, "h3", false, "h2"},
		}
		for _, tt := range tests {
			got, err := repo.ReplacePasswordHash(ctx, h.DB, u.ID, tt.oldHash, tt.hash)
			if err != nil || got != tt.want {
				t.Errorf("%s: ReplacePasswordHash = %v, %v; want %v", tt.name, got, err, tt.want)
			}
			c, err := repo.CredentialsByID(ctx, h.DB, u.ID)
			if err != nil || c.PasswordHash != tt.wantStored {
				t.Errorf("%s: stored hash %q (%v), want %q", tt.name, c.PasswordHash, err, tt.wantStored)
			}
			// The User is not changed by its credentials.
			if c.User.Version != 1 || !c.User.UpdatedAt.Equal(stored(at)) {
				t.Errorf("%s: version %d, updated %v; want them unchanged", tt.name, c.User.Version, c.User.UpdatedAt)
			}
		}
	})
}

func TestRepoRefreshTokens(t *testing.T) {
	testdb.EachHost(t, "identity", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		repo := accounts.Repo{}
		alice, bob := newUser(1, identity.RoleCustomer), newUser(2, identity.RoleCustomer)
		insertUsers(t, h, alice, bob)

		famA, famB, famC := bus.NewID(), bus.NewID(), bus.NewID()
		tok := func(user, family, hash string) accounts.RefreshToken {
			return accounts.RefreshToken{ID: bus.NewID(), UserID: user, FamilyID: family, TokenHash: hash,
				CreatedAt: at, ExpiresAt: at.Add(accounts.RefreshTTL)}
		}
		a1, a2, b1, c1 := tok(alice.ID, famA, "a1"), tok(alice.ID, famA, "a2"), tok(alice.ID, famB, "b1"), tok(bob.ID, famC, "c1")
		for _, rt := range []accounts.RefreshToken{a1, a2, b1, c1} {
			if err := repo.InsertRefreshToken(ctx, h.DB, rt); err != nil {
				t.Fatalf("InsertRefreshToken: %v", err)
			}
		}
		if err := repo.InsertRefreshToken(ctx, h.DB, tok(alice.ID, famA, "a1")); err == nil {
			t.Error("a second token with the same hash was stored")
		}
		get := func(hash string) accounts.RefreshToken {
			t.Helper()
			rt, err := repo.RefreshTokenByHash(ctx, h.DB, hash)
			if err != nil {
				t.Fatalf("RefreshTokenByHash(%s): %v", hash, err)
			}
			return rt
		}
		want := a1
		want.CreatedAt, want.ExpiresAt = stored(a1.CreatedAt), stored(a1.ExpiresAt)
		if diff := cmp.Diff(want, get("a1")); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		if _, err := repo.RefreshTokenByHash(ctx, h.DB, "unknown"); err == nil {
			t.Error("RefreshTokenByHash of an unknown hash: no error")
		}

		// Spending works once.
		for i, want := range []bool{true, false} {
			ok, err := repo.MarkRefreshTokenUsed(ctx, h.DB, a1.ID, at.Add(time.Minute))
			if err != nil || ok != want {
				t.Errorf("MarkRefreshTokenUsed #%d = %v, %v; want %v", i+1, ok, err, want)
			}
		}
		if got := get("a1").UsedAt; !got.Valid || !got.Time.Equal(stored(at.Add(time.Minute))) || got.Time.Location() != time.UTC {
			t.Errorf("used_at = %+v, want %v in UTC", got, stored(at.Add(time.Minute)))
		}

		// Revoking a family touches only that family, and a revoked token cannot be spent.
		if err := repo.RevokeFamily(ctx, h.DB, famA, at.Add(2*time.Minute)); err != nil {
			t.Fatalf("RevokeFamily: %v", err)
		}
		for hash, revoked := range map[string]bool{"a1": true, "a2": true, "b1": false, "c1": false} {
			if got := get(hash).RevokedAt; got.Valid != revoked || (revoked && !got.Time.Equal(stored(at.Add(2*time.Minute)))) {
				t.Errorf("after RevokeFamily: %s revoked_at = %+v, want revoked %v", hash, got, revoked)
			}
		}
		if ok, err := repo.MarkRefreshTokenUsed(ctx, h.DB, a2.ID, at); err != nil || ok {
			t.Errorf("MarkRefreshTokenUsed of a revoked token = %v, %v; want false", ok, err)
		}
		// Revoking again keeps the first revocation time.
		if err := repo.RevokeFamily(ctx, h.DB, famA, at.Add(time.Hour)); err != nil {
			t.Fatalf("RevokeFamily: %v", err)
		}
		if got := get("a2").RevokedAt; !got.Time.Equal(stored(at.Add(2 * time.Minute))) {
			t.Errorf("a second revocation moved revoked_at to %v", got.Time)
		}

		// Revoking a user touches only that user's tokens.
		if err := repo.RevokeUser(ctx, h.DB, alice.ID, at.Add(3*time.Minute)); err != nil {
			t.Fatalf("RevokeUser: %v", err)
		}
		if !get("b1").RevokedAt.Valid {
			t.Error("RevokeUser left a token of the user")
		}
		if get("c1").RevokedAt.Valid {
			t.Error("RevokeUser revoked another user's token")
		}
	})
}

// A repo call under a cancelled context fails with the context's error, not as a
// missing user.
func TestRepoHonoursContext(t *testing.T) {
	testdb.EachHost(t, "identity", func(t *testing.T, h *modhost.Host) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := (accounts.Repo{}).Get(ctx, h.DB, bus.NewID()); err == nil || errors.Is(err, identity.ErrUserNotFound) {
			t.Errorf("Get under a cancelled context: err = %v, want a context error", err)
		}
	})
}
