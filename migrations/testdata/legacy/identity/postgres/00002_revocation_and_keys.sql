-- Revocation of access tokens and the keys that sign them. Portable SQL: the same
-- file in both dialect folders; times are integer microseconds since the epoch.

-- +goose Up
-- Access tokens carry the version their subject had when they were issued; a
-- revocation raises it, and tokens of a lower version are refused everywhere.
ALTER TABLE users ADD COLUMN token_version BIGINT NOT NULL DEFAULT 0;

-- The revocation feed that every process verifying tokens follows. seq comes from
-- revocation_seq, whose row each revoking transaction locks until it commits, so
-- seq order is commit order and a reader after seq N misses nothing.
CREATE TABLE token_revocations (
    seq         BIGINT NOT NULL PRIMARY KEY,
    user_id     TEXT   NOT NULL,
    min_version BIGINT NOT NULL,
    until_us    BIGINT NOT NULL  -- when the last token it refuses has expired
);
CREATE INDEX token_revocations_until ON token_revocations (until_us);
CREATE TABLE revocation_seq (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    last BIGINT  NOT NULL
);
INSERT INTO revocation_seq (id, last) VALUES (1, 0);

-- Keys that sign access tokens, when they are not given as a file. The newest key
-- that is not retired signs; retired keys stay published until retired_us plus an
-- access token's lifetime, then are deleted. The table holds private keys: only
-- identity's own database role may read it.
CREATE TABLE signing_keys (
    kid         TEXT   NOT NULL PRIMARY KEY,  -- RFC 7638 thumbprint of the public key
    private_pem TEXT   NOT NULL,              -- PKCS#8 PEM
    created_us  BIGINT NOT NULL,
    retired_us  BIGINT                        -- NULL while it signs
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE revocation_seq;
DROP TABLE token_revocations;
ALTER TABLE users DROP COLUMN token_version;
