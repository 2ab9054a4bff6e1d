-- The same tables as migrations/sqlite/20261224000001_users.sql.
-- People who use the dashboard and the API (src/auth): a role and what it
-- is scoped to, an argon2id password hash (PHC string), browser sessions
-- and API tokens. Only SHA-256 hashes of session and API tokens are kept:
-- a copy of the database lets no one in.
-- `role`: admin, fire_rescue (scope: a region, "梁平区" or "梁平区/梁山街道"),
-- contractor (scope: its name as the registry gives it), installer (scope:
-- a region, or none for all).
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    scope         TEXT,
    created_ms    BIGINT  NOT NULL,
    disabled_ms   BIGINT
);

CREATE TABLE sessions (
    token_hash   TEXT    PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users (id),
    csrf         TEXT    NOT NULL,
    created_ms   BIGINT  NOT NULL,
    expires_ms   BIGINT  NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_ms);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    token_hash   TEXT    NOT NULL UNIQUE,
    user_id      BIGINT  NOT NULL REFERENCES users (id),
    name         TEXT    NOT NULL,
    created_ms   BIGINT  NOT NULL,
    expires_ms   BIGINT,
    revoked_ms   BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
