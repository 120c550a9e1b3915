package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/identity"
)

// Repo stores accounts and refresh tokens. Its methods take an sqlx.ExtContext so
// they run the same inside a transaction or on the pool. Times are stored in UTC
// to the microsecond, the precision every back end keeps.
type Repo struct{}

func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Credentials is an account with its password hash: what a login or a password
// change checks. It never leaves the package's handlers; replies carry only User.
type Credentials struct {
	User         identity.User
	PasswordHash string
}

const userColumns = `id, email, role, version, created_at, updated_at`

type userRow struct {
	ID           string    `db:"id"`
	Email        string    `db:"email"`
	Role         string    `db:"role"`
	Version      int64     `db:"version"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`
	PasswordHash string    `db:"password_hash"`
}

func (r userRow) user() identity.User {
	return identity.User{ID: r.ID, Email: r.Email, Role: r.Role, Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// Insert adds the account u with its password hash; an email that has an account
// is ErrEmailUnavailable.
func (Repo) Insert(ctx context.Context, q sqlx.ExtContext, u identity.User, passwordHash string) error {
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO users (`+userColumns+`, password_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?)`),
		u.ID, u.Email, u.Role, u.Version, storedTime(u.CreatedAt), storedTime(u.UpdatedAt), passwordHash)
	if store.IsUniqueViolation(err) {
		return identity.ErrEmailUnavailable.OnField("email")
	}
	if err != nil {
		return fmt.Errorf("identity: insert user %s: %w", u.ID, err)
	}
	return nil
}

// Get returns the account id, or ErrUserNotFound.
func (Repo) Get(ctx context.Context, q sqlx.ExtContext, id string) (identity.User, error) {
	var row userRow
	err := sqlx.GetContext(ctx, q, &row, q.Rebind(`SELECT `+userColumns+` FROM users WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.User{}, identity.ErrUserNotFound.Withf("no user with id %s", id)
	}
	if err != nil {
		return identity.User{}, fmt.Errorf("identity: get user %s: %w", id, err)
	}
	return row.user(), nil
}

// CredentialsByEmail returns the account with the normalized email and its hash,
// or ErrUserNotFound.
func (Repo) CredentialsByEmail(ctx context.Context, q sqlx.ExtContext, email string) (Credentials, error) {
	return getCredentials(ctx, q, "email", email)
}

// CredentialsByID returns the account id and its hash, or ErrUserNotFound.
func (Repo) CredentialsByID(ctx context.Context, q sqlx.ExtContext, id string) (Credentials, error) {
	return getCredentials(ctx, q, "id", id)
}

func getCredentials(ctx context.Context, q sqlx.ExtContext, column, value string) (Credentials, error) {
	var row userRow
	err := sqlx.GetContext(ctx, q, &row,
		q.Rebind(`SELECT `+userColumns+`, password_hash FROM users WHERE `+column+` = ?`), value)
	if errors.Is(err, sql.ErrNoRows) {
		return Credentials{}, identity.ErrUserNotFound // says nothing of value: it may be an email
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("identity: get user credentials: %w", err)
	}
	return Credentials{User: row.user(), PasswordHash: row.PasswordHash}, nil
}

// List returns up to limit accounts with ids after after, in id (creation) order.
func (Repo) List(ctx context.Context, q sqlx.ExtContext, after string, limit int) ([]identity.User, error) {
	var rows []userRow
	err := sqlx.SelectContext(ctx, q, &rows,
		q.Rebind(`SELECT `+userColumns+` FROM users WHERE id > ? ORDER BY id LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("identity: list users: %w", err)
	}
	out := make([]identity.User, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.user())
	}
	return out, nil
}

// Count returns how many accounts exist.
func (Repo) Count(ctx context.Context, q sqlx.ExtContext) (int, error) {
	var n int
	if err := sqlx.GetContext(ctx, q, &n, `SELECT COUNT(*) FROM users`); err != nil {
		return 0, fmt.Errorf("identity: count users: %w", err)
	}
	return n, nil
}

// Update writes u's role over the stored row if that row is still at version
// u.Version-1; otherwise it is ErrVersionMismatch.
func (Repo) Update(ctx context.Context, q sqlx.ExtContext, u identity.User) error {
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE users SET role = ?, version = ?, updated_at = ?
		WHERE id = ? AND version = ?`),
		u.Role, u.Version, storedTime(u.UpdatedAt), u.ID, u.Version-1)
	if err != nil {
		return fmt.Errorf("identity: update user %s: %w", u.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return identity.ErrVersionMismatch
	}
	return nil
}

// ReplacePasswordHash stores newHash for the account id if its hash is still
// oldHash, and reports whether it was. The condition keeps a rehash on login from
// undoing a password change that committed in between.
//
// The account's Version and UpdatedAt stay: they describe the User, which carries
// no credentials.
func (Repo) ReplacePasswordHash(ctx context.Context, q sqlx.ExtContext, id, oldHash, newHash string) (bool, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`),
		newHash, id, oldHash)
	if err != nil {
		return false, fmt.Errorf("identity: set password of %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RefreshToken is the stored record of a refresh token. The token itself is never
// stored, only TokenHash (hex SHA-256).
type RefreshToken struct {
	ID        string       `db:"id"`
	UserID    string       `db:"user_id"`
	FamilyID  string       `db:"family_id"`
	TokenHash string       `db:"token_hash"`
	CreatedAt time.Time    `db:"created_at"`
	ExpiresAt time.Time    `db:"expires_at"`
	UsedAt    sql.NullTime `db:"used_at"`
	RevokedAt sql.NullTime `db:"revoked_at"`
}

const refreshColumns = `id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at`

var errNoToken = errors.New("identity: no such refresh token")

// InsertRefreshToken stores t.
func (Repo) InsertRefreshToken(ctx context.Context, q sqlx.ExtContext, t RefreshToken) error {
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`),
		t.ID, t.UserID, t.FamilyID, t.TokenHash, storedTime(t.CreatedAt), storedTime(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("identity: insert refresh token of %s: %w", t.UserID, err)
	}
	return nil
}

// RefreshTokenByHash returns the token whose hash is tokenHash, or errNoToken.
func (Repo) RefreshTokenByHash(ctx context.Context, q sqlx.ExtContext, tokenHash string) (RefreshToken, error) {
	var t RefreshToken
	err := sqlx.GetContext(ctx, q, &t, q.Rebind(`SELECT `+refreshColumns+` FROM refresh_tokens WHERE token_hash = ?`), tokenHash)
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshToken{}, errNoToken
	}
	if err != nil {
		return RefreshToken{}, fmt.Errorf("identity: get refresh token: %w", err)
	}
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	t.UsedAt.Time, t.RevokedAt.Time = t.UsedAt.Time.UTC(), t.RevokedAt.Time.UTC()
	return t, nil
}

// MarkRefreshTokenUsed spends the token id at at, if it is neither spent nor
// revoked, and reports whether it did. Of two transactions spending one token,
// exactly one sees true: the condition is checked again on the locked row.
func (Repo) MarkRefreshTokenUsed(ctx context.Context, q sqlx.ExtContext, id string, at time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE refresh_tokens SET used_at = ?
		WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL`), storedTime(at), id)
	if err != nil {
		return false, fmt.Errorf("identity: spend refresh token: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RevokeFamily revokes, at at, every token of the family that is not revoked yet.
func (Repo) RevokeFamily(ctx context.Context, q sqlx.ExtContext, familyID string, at time.Time) error {
	_, err := q.ExecContext(ctx, q.Rebind(`UPDATE refresh_tokens SET revoked_at = ?
		WHERE family_id = ? AND revoked_at IS NULL`), storedTime(at), familyID)
	if err != nil {
		return fmt.Errorf("identity: revoke refresh token family: %w", err)
	}
	return nil
}

// RevokeUser revokes, at at, every refresh token of the account userID that is not
// revoked yet.
func (Repo) RevokeUser(ctx context.Context, q sqlx.ExtContext, userID string, at time.Time) error {
	_, err := q.ExecContext(ctx, q.Rebind(`UPDATE refresh_tokens SET revoked_at = ?
		WHERE user_id = ? AND revoked_at IS NULL`), storedTime(at), userID)
	if err != nil {
		return fmt.Errorf("identity: revoke refresh tokens of %s: %w", userID, err)
	}
	return nil
}
