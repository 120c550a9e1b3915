package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/paging"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/identity"
)

// Lifetimes of the tokens a login or refresh issues.
const (
	// AccessTTL is short because it bounds what a process must remember of
	// revocations (and what a token is worth to a thief while it lasts).
	AccessTTL = 15 * time.Minute
	// RefreshTTL bounds each refresh token; every refresh issues a new one.
	RefreshTTL = 30 * 24 * time.Hour
)

// refreshTokenBytes is the entropy of a refresh token.
const refreshTokenBytes = 32

// Service handles identity's requests. Every change is written together with the
// events it publishes, in one transaction; password hashing, which takes tens of
// milliseconds, runs outside transactions so it never holds a database lock.
type Service struct {
	db     *store.DB
	outbox *outbox.Outbox
	keys   *auth.Keys
	repo   Repo
	now    func() time.Time

	revoked signal // notified when a revocation commits, for WatchRevocations
}

// NewService returns the identity service on db, publishing through ob and signing
// access tokens with keys (which must hold the private key). now is the clock; nil
// means the wall clock. Its times are taken in UTC to the microsecond, what every
// back end stores, so a reply equals a later read.
func NewService(db *store.DB, ob *outbox.Outbox, keys *auth.Keys, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, outbox: ob, keys: keys, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }}
}

// Handlers returns the service's request handlers, for the bus.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(identity.RegisterRequest, s.Register),
		bus.Handle(identity.LoginRequest, s.Login),
		bus.Handle(identity.RefreshRequest, s.Refresh),
		bus.Handle(identity.LogoutRequest, s.Logout),
		bus.Handle(identity.ChangePasswordRequest, s.ChangePassword),
		bus.Handle(identity.CreateUserRequest, s.CreateUser),
		bus.Handle(identity.GetUserRequest, s.GetUser),
		bus.Handle(identity.ListUsersRequest, s.ListUsers),
		bus.Handle(identity.SetRoleRequest, s.SetRole),
		bus.Handle(identity.WatchRevocationsRequest, s.WatchRevocations),
	}
}

// Register answers identity.Register: a new customer account.
func (s *Service) Register(ctx context.Context, r identity.Register) (identity.User, error) {
	return s.create(ctx, r.Email, r.Password, identity.RoleCustomer)
}

// CreateUser answers identity.CreateUser: a new account with the given role.
func (s *Service) CreateUser(ctx context.Context, c identity.CreateUser) (identity.User, error) {
	return s.create(ctx, c.Email, c.Password, c.Role)
}

func (s *Service) create(ctx context.Context, email, password, role string) (identity.User, error) {
	email, err := newEmail(email)
	if err != nil {
		return identity.User{}, err
	}
	if err := validatePassword("password", password, email); err != nil {
		return identity.User{}, err
	}
	if err := validateRole(role); err != nil {
		return identity.User{}, err
	}
	hash, err := hashPassword(ctx, password)
	if err != nil {
		return identity.User{}, err
	}
	now := s.now()
	u := identity.User{ID: bus.NewID(), Email: email, Role: role, Version: 1, CreatedAt: now, UpdatedAt: now}
	err = store.InTx(ctx, s.db, func(tx *store.Tx) error {
		if err := s.repo.Insert(ctx, tx, u, hash); err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, identity.UserRegisteredEvent.With(identity.UserRegistered{UserID: u.ID, Email: u.Email, Role: u.Role}))
	})
	if err != nil {
		return identity.User{}, err
	}
	return u, nil
}

// Login answers identity.Login. Every failure is ErrInvalidCredentials and costs
// one password hash, whether or not the email has an account, so neither the
// answer nor its timing tells which.
func (s *Service) Login(ctx context.Context, l identity.Login) (identity.Tokens, error) {
	c, err := s.repo.CredentialsByEmail(ctx, s.db, normalizeEmail(l.Email))
	if errors.Is(err, identity.ErrUserNotFound) {
		if _, err := verifyPassword(ctx, dummyHash, l.Password); err != nil {
			return identity.Tokens{}, err
		}
		return identity.Tokens{}, identity.ErrInvalidCredentials
	}
	if err != nil {
		return identity.Tokens{}, err
	}
	ok, err := verifyPassword(ctx, c.PasswordHash, l.Password)
	if err != nil {
		return identity.Tokens{}, err
	}
	if !ok {
		return identity.Tokens{}, identity.ErrInvalidCredentials
	}
	var rehash string
	if needsRehash(c.PasswordHash) {
		if rehash, err = hashPassword(ctx, l.Password); err != nil {
			return identity.Tokens{}, err
		}
	}
	var out identity.Tokens
	err = store.InTx(ctx, s.db, func(tx *store.Tx) error {
		if rehash != "" {
			// A password changed since we read the hash stays changed: this login
			// still succeeds (the password was right when it began), its rehash is
			// dropped.
			if _, err := s.repo.ReplacePasswordHash(ctx, tx, c.User.ID, c.PasswordHash, rehash); err != nil {
				return err
			}
		}
		out, err = s.issue(ctx, tx, c.User, bus.NewID())
		return err
	})
	if err != nil {
		return identity.Tokens{}, err
	}
	return out, nil
}

// Refresh answers identity.Refresh: it spends the refresh token and issues new
// tokens in its family, with the account's current role. A token that was spent
// already is a sign of theft (the thief or the client holds a copy), so its whole
// family is revoked: neither copy, nor any token refreshed from it, works again.
func (s *Service) Refresh(ctx context.Context, r identity.Refresh) (identity.Tokens, error) {
	var out identity.Tokens
	reused := false
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		now := s.now()
		t, err := s.lockedRefreshToken(ctx, tx, r.RefreshToken)
		if errors.Is(err, errNoToken) {
			return identity.ErrInvalidToken
		}
		if err != nil {
			return err
		}
		if t.RevokedAt.Valid || !now.Before(t.ExpiresAt) {
			return identity.ErrInvalidToken
		}
		spent := false
		if !t.UsedAt.Valid {
			// The condition is checked again on the row: of two refreshes of one
			// token that both read it unspent, only one spends it.
			if spent, err = s.repo.MarkRefreshTokenUsed(ctx, tx, t.ID, now); err != nil {
				return err
			}
		}
		if !spent {
			// Reuse. Commit the revocation, and answer ErrInvalidToken after.
			reused = true
			if err := s.repo.RevokeFamily(ctx, tx, t.FamilyID, now); err != nil {
				return err
			}
			return s.revokeAccess(ctx, tx, t.UserID, ReasonRefreshReused)
		}
		u, err := s.repo.Get(ctx, tx, t.UserID)
		if err != nil {
			return err
		}
		out, err = s.issue(ctx, tx, u, t.FamilyID)
		return err
	})
	if err != nil {
		return identity.Tokens{}, err
	}
	if reused {
		return identity.Tokens{}, identity.ErrInvalidToken
	}
	return out, nil
}

// issue stores a new refresh token for u in family and returns it with a new
// access token.
func (s *Service) issue(ctx context.Context, tx *store.Tx, u identity.User, family string) (identity.Tokens, error) {
	now := s.now()
	version, err := s.repo.tokenVersion(ctx, tx, u.ID)
	if err != nil {
		return identity.Tokens{}, err
	}
	access, err := s.keys.IssueVersion(auth.Principal{UserID: u.ID, Role: u.Role}, version, now, AccessTTL)
	if err != nil {
		return identity.Tokens{}, err
	}
	raw := make([]byte, refreshTokenBytes)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails (it crashes the program instead)
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	err = s.repo.InsertRefreshToken(ctx, tx, RefreshToken{ID: bus.NewID(), UserID: u.ID, FamilyID: family,
		TokenHash: hashRefreshToken(refresh), CreatedAt: now, ExpiresAt: now.Add(RefreshTTL)})
	if err != nil {
		return identity.Tokens{}, err
	}
	return identity.Tokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(AccessTTL / time.Second),
		RefreshToken: refresh}, nil
}

// lockedRefreshToken returns the stored refresh token, read again after its
// account's row is locked for tx. Every transaction that changes an account's
// tokens locks the account first (a refresh, a logout, a password or role change),
// so two of them on one family wait for each other instead of locking its rows in
// opposite orders (a deadlock on PostgreSQL), and each sees the other's outcome.
func (s *Service) lockedRefreshToken(ctx context.Context, tx *store.Tx, token string) (RefreshToken, error) {
	hash := hashRefreshToken(token)
	t, err := s.repo.RefreshTokenByHash(ctx, tx, hash)
	if err != nil {
		return RefreshToken{}, err
	}
	if err := s.repo.lockUser(ctx, tx, t.UserID); err != nil {
		return RefreshToken{}, err
	}
	return s.repo.RefreshTokenByHash(ctx, tx, hash)
}

// hashRefreshToken is what is stored of a refresh token: its SHA-256, in hex. The
// token has 256 random bits, so an unsalted fast hash is enough to make a leaked
// table useless.
func hashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Logout answers identity.Logout: it revokes the family of the refresh token and
// the user's access tokens (those of the user's other sessions too: their clients
// refresh). An unknown or revoked token is not an error (the client is logged out
// either way).
func (s *Service) Logout(ctx context.Context, l identity.Logout) (identity.Done, error) {
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		t, err := s.lockedRefreshToken(ctx, tx, l.RefreshToken)
		if errors.Is(err, errNoToken) {
			return nil
		}
		if err != nil || t.RevokedAt.Valid {
			return err
		}
		if err := s.repo.RevokeFamily(ctx, tx, t.FamilyID, s.now()); err != nil {
			return err
		}
		return s.revokeAccess(ctx, tx, t.UserID, ReasonLogout)
	})
	return identity.Done{}, err
}

// ChangePassword answers identity.ChangePassword. A wrong current password is
// ErrInvalidCredentials; on success every refresh token and access token of the
// account is revoked: every session ends, the caller's too.
func (s *Service) ChangePassword(ctx context.Context, c identity.ChangePassword) (identity.Done, error) {
	cred, err := s.repo.CredentialsByID(ctx, s.db, c.UserID)
	if err != nil {
		if errors.Is(err, identity.ErrUserNotFound) {
			return identity.Done{}, identity.ErrUserNotFound.Withf("no user with id %s", c.UserID)
		}
		return identity.Done{}, err
	}
	ok, err := verifyPassword(ctx, cred.PasswordHash, c.CurrentPassword)
	if err != nil {
		return identity.Done{}, err
	}
	if !ok {
		return identity.Done{}, identity.ErrInvalidCredentials
	}
	if err := validatePassword("new_password", c.NewPassword, cred.User.Email); err != nil {
		return identity.Done{}, err
	}
	hash, err := hashPassword(ctx, c.NewPassword)
	if err != nil {
		return identity.Done{}, err
	}
	err = store.InTx(ctx, s.db, func(tx *store.Tx) error {
		replaced, err := s.repo.ReplacePasswordHash(ctx, tx, cred.User.ID, cred.PasswordHash, hash)
		if err != nil {
			return err
		}
		if !replaced {
			// The password changed since we checked it: the one given is no longer current.
			return identity.ErrInvalidCredentials
		}
		if err := s.repo.RevokeUser(ctx, tx, cred.User.ID, s.now()); err != nil {
			return err
		}
		return s.revokeAccess(ctx, tx, cred.User.ID, ReasonPasswordChanged)
	})
	return identity.Done{}, err
}

// GetUser answers identity.GetUser.
func (s *Service) GetUser(ctx context.Context, g identity.GetUser) (identity.User, error) {
	return s.repo.Get(ctx, s.db, g.ID)
}

// ListUsers answers identity.ListUsers.
func (s *Service) ListUsers(ctx context.Context, l identity.ListUsers) (identity.UserPage, error) {
	limit := paging.Limit(l.Limit, identity.MaxPageSize, identity.MaxPageSize)
	items, next, err := paging.Read(limit, func(n int) ([]identity.User, error) {
		return s.repo.List(ctx, s.db, l.After, n)
	}, func(u identity.User) string { return u.ID })
	if err != nil {
		return identity.UserPage{}, err
	}
	return identity.UserPage{Items: items, NextAfter: next}, nil
}

// SetRole answers identity.SetRole. Setting the role an account has is no change:
// the account is returned as it is, with no new version and no event. A change
// revokes the account's access tokens, so the old role is not used again; its
// refresh tokens stay valid and bring tokens with the new role.
func (s *Service) SetRole(ctx context.Context, r identity.SetRole) (identity.User, error) {
	if err := validateRole(r.Role); err != nil {
		return identity.User{}, err
	}
	var out identity.User
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error {
		u, err := s.repo.Get(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if u.Version != r.ExpectedVersion {
			return identity.ErrVersionMismatch.Withf("user %s is at version %d, not %d", u.ID, u.Version, r.ExpectedVersion)
		}
		if u.Role == r.Role {
			out = u
			return nil
		}
		old := u.Role
		u.Role, u.Version, u.UpdatedAt = r.Role, u.Version+1, s.now()
		if err := s.repo.Update(ctx, tx, u); err != nil {
			return err
		}
		out = u
		err = s.outbox.Add(ctx, tx, identity.RoleChangedEvent.With(identity.RoleChanged{
			UserID: u.ID, OldRole: old, NewRole: u.Role, Version: u.Version}))
		if err != nil {
			return err
		}
		return s.revokeAccess(ctx, tx, u.ID, ReasonRoleChanged)
	})
	return out, err
}

// Count returns how many accounts exist (the demo seeder fills only an empty store).
func (s *Service) Count(ctx context.Context) (int, error) { return s.repo.Count(ctx, s.db) }

// PurgeRefreshTokens deletes the refresh tokens that can never be accepted again:
// expired ones and revoked ones. Used but unexpired tokens stay, because presenting
// one again is how reuse is detected. It returns how many it deleted.
func (s *Service) PurgeRefreshTokens(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(
		`DELETE FROM refresh_tokens WHERE expires_at < ? OR revoked_at IS NOT NULL`), s.now())
	if err != nil {
		return 0, fmt.Errorf("identity: purge refresh tokens: %w", err)
	}
	return res.RowsAffected()
}
