-- API tokens: each acts for one operator, within a scope (read < write <
-- admin) and never above the operator's role. Only the SHA-256 of the
-- token is stored; its first characters (`rmt_…`) name it in lists.
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id   INTEGER NOT NULL REFERENCES operators(id),
    name          TEXT    NOT NULL,
    prefix        TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    scope         TEXT    NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_by    TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    last_used_ms  INTEGER,
    revoked_at_ms INTEGER
);
CREATE INDEX api_tokens_operator ON api_tokens (operator_id);

-- A POST to the API with an Idempotency-Key: the first answer, replayed to
-- a retry with the same body; a different body under the key is refused.
CREATE TABLE api_idempotency (
    token_id      INTEGER NOT NULL REFERENCES api_tokens(id),
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    -- 0 while the first request is still being answered.
    status        INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (token_id, key)
);
