-- Local accounts of the operators' console and their login sessions.

-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'releaser', 'incident', 'admin')),
    -- argon2id in the PHC string format; never the password.
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    created_by    TEXT NOT NULL
);

-- A console login: by a user or with an API token (exactly one of the two).
-- Only the SHA-256 of the session secret (the cookie) is stored.
CREATE TABLE sessions (
    hash       BLOB PRIMARY KEY,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    token_id   TEXT REFERENCES tokens (id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    CHECK ((user_id IS NULL) <> (token_id IS NULL))
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
DROP TABLE users;
