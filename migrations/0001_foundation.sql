-- Operators of the dashboard (not host users).
CREATE TABLE operators (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at_ms   INTEGER NOT NULL,
    last_sign_in_ms INTEGER
);

-- One-time tokens that let the first admin be created from the browser.
-- Only the SHA-256 of the token is stored.
CREATE TABLE setup_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER
);

-- Failed sign-ins, for throttling per account and per address.
CREATE TABLE sign_in_failures (
    scope TEXT    NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_scope_at ON sign_in_failures (scope, at_ms);

-- Every operator action: who, what, when, target, outcome.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    outcome TEXT    NOT NULL,
    detail  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at_ms);

-- Sub2API hosts. Secrets are sealed (AES-256-GCM) with `uid` in the
-- associated data, so a sealed value copied to another row does not open.
CREATE TABLE hosts (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    uid                   TEXT    NOT NULL UNIQUE,
    name                  TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    base_url              TEXT    NOT NULL,
    auth_kind             TEXT    NOT NULL CHECK (auth_kind IN ('api_key', 'password')),
    admin_email           TEXT,
    admin_secret_sealed   TEXT    NOT NULL,
    admin_secret_mask     TEXT    NOT NULL,
    probe_email           TEXT,
    probe_password_sealed TEXT,
    created_at_ms         INTEGER NOT NULL,
    updated_at_ms         INTEGER NOT NULL
);

-- Probe history per host.
CREATE TABLE host_probes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id     INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    at_ms       INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('ok', 'warning', 'failing')),
    version     TEXT,
    latency_ms  INTEGER,
    headline    TEXT    NOT NULL,
    report_json TEXT    NOT NULL
);
CREATE INDEX host_probes_host_at ON host_probes (host_id, at_ms);
