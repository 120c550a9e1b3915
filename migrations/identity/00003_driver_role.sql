-- The driver role. A CHECK constraint cannot be changed in place on SQLite, so
-- users is rebuilt, and refresh_tokens with it (its foreign key names users): the
-- rows are kept aside, both tables dropped and created again as they were, with
-- 'driver' allowed, and the rows put back. Portable SQL: times are TIMESTAMPTZ,
-- declared TIMESTAMP on SQLite (see migrations.go).

-- +goose Up
CREATE TABLE users_kept AS SELECT id, email, password_hash, role, version, created_at, updated_at, token_version FROM users;
CREATE TABLE refresh_tokens_kept AS
    SELECT id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at FROM refresh_tokens;
DROP TABLE refresh_tokens;
DROP TABLE users;
CREATE TABLE users (
    id            TEXT        NOT NULL PRIMARY KEY, -- UUIDv7: id order is creation order
    -- Trimmed and lower-cased by the application before every write and lookup, so
    -- the unique index makes emails unique case-insensitively.
    email         TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,             -- argon2id, PHC string format
    role          TEXT        NOT NULL CHECK (role IN ('customer', 'admin', 'driver')),
    version       BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    token_version BIGINT      NOT NULL DEFAULT 0    -- see 00002
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE TABLE refresh_tokens (
    id         TEXT        NOT NULL PRIMARY KEY,
    user_id    TEXT        NOT NULL REFERENCES users (id),
    family_id  TEXT        NOT NULL,
    token_hash TEXT        NOT NULL UNIQUE,         -- hex SHA-256 of the token
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,                         -- set when rotated by a refresh
    revoked_at TIMESTAMPTZ                          -- set on logout, reuse or password change
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
INSERT INTO users (id, email, password_hash, role, version, created_at, updated_at, token_version)
    SELECT id, email, password_hash, role, version, created_at, updated_at, token_version FROM users_kept;
INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at)
    SELECT id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at FROM refresh_tokens_kept;
DROP TABLE refresh_tokens_kept;
DROP TABLE users_kept;

-- +goose Down
-- Drivers become customers: the old constraint knows no drivers.
CREATE TABLE users_kept AS SELECT id, email, password_hash, role, version, created_at, updated_at, token_version FROM users;
CREATE TABLE refresh_tokens_kept AS
    SELECT id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at FROM refresh_tokens;
DROP TABLE refresh_tokens;
DROP TABLE users;
CREATE TABLE users (
    id            TEXT        NOT NULL PRIMARY KEY,
    email         TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    role          TEXT        NOT NULL CHECK (role IN ('customer', 'admin')),
    version       BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    token_version BIGINT      NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE TABLE refresh_tokens (
    id         TEXT        NOT NULL PRIMARY KEY,
    user_id    TEXT        NOT NULL REFERENCES users (id),
    family_id  TEXT        NOT NULL,
    token_hash TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
INSERT INTO users (id, email, password_hash, role, version, created_at, updated_at, token_version)
    SELECT id, email, password_hash, CASE WHEN role = 'driver' THEN 'customer' ELSE role END, version, created_at, updated_at, token_version
    FROM users_kept;
INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at)
    SELECT id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at FROM refresh_tokens_kept;
DROP TABLE refresh_tokens_kept;
DROP TABLE users_kept;
