-- +goose Up
CREATE TABLE users (
    id            TEXT        NOT NULL PRIMARY KEY, -- UUIDv7: id order is creation order
    -- Trimmed and lower-cased by the application before every write and lookup, so
    -- the unique index makes emails unique case-insensitively.
    email         TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,             -- argon2id, PHC string format
    role          TEXT        NOT NULL CHECK (role IN ('customer', 'admin')),
    version       BIGINT      NOT NULL,
    created_at    TIMESTAMP   NOT NULL,
    updated_at    TIMESTAMP   NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (email);

-- Refresh tokens are stored only as the SHA-256 of the token. Each login starts a
-- family; each refresh spends one token (used_at) and adds the next to its family.
CREATE TABLE refresh_tokens (
    id         TEXT        NOT NULL PRIMARY KEY,
    user_id    TEXT        NOT NULL REFERENCES users (id),
    family_id  TEXT        NOT NULL,
    token_hash TEXT        NOT NULL UNIQUE,         -- hex SHA-256 of the token
    created_at TIMESTAMP   NOT NULL,
    expires_at TIMESTAMP   NOT NULL,
    used_at    TIMESTAMP,                           -- set when rotated by a refresh
    revoked_at TIMESTAMP                            -- set on logout, reuse or password change
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- +goose Down
DROP TABLE refresh_tokens;
DROP TABLE users;
