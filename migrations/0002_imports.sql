-- Immutable pack versions, identified by the hash of their canonical form.
CREATE TABLE pack_versions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    pack_id       TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    hash          TEXT    NOT NULL,
    format        TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    pack_json     TEXT    NOT NULL,
    builtin       INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    created_by    TEXT    NOT NULL,
    UNIQUE (pack_id, hash)
);

-- Import batches: N keys of one provider onto one host, in one access mode.
CREATE TABLE batches (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    uid             TEXT    NOT NULL UNIQUE,
    host_id         INTEGER NOT NULL REFERENCES hosts (id),
    pack_version_id INTEGER NOT NULL REFERENCES pack_versions (id),
    provider_key    TEXT    NOT NULL,
    access_mode     TEXT    NOT NULL CHECK (access_mode IN ('self_service', 'subscription')),
    status          TEXT    NOT NULL,
    access_status   TEXT    NOT NULL DEFAULT 'none',
    host_version    TEXT,
    product_version TEXT    NOT NULL,
    plan_json       TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

-- The batch's upstream keys: sealed, fingerprinted, masked.
CREATE TABLE batch_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id    INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,
    sealed      TEXT    NOT NULL,
    masked      TEXT    NOT NULL,
    UNIQUE (batch_id, fingerprint)
);

-- The journal: every remote write is intent (pending) -> sent -> result.
CREATE TABLE steps (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id        INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    fingerprint     TEXT,
    idempotency_key TEXT    NOT NULL,
    marker          TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'done', 'failed', 'unknown', 'skipped')),
    request_json    TEXT    NOT NULL DEFAULT '',
    response_json   TEXT    NOT NULL DEFAULT '',
    remote_id       TEXT,
    error           TEXT    NOT NULL DEFAULT '',
    started_at_ms   INTEGER,
    finished_at_ms  INTEGER,
    UNIQUE (batch_id, seq)
);

-- Every host object the product created or adopted: only these are ever
-- changed or deleted.
CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id       INTEGER NOT NULL REFERENCES hosts (id),
    kind          TEXT    NOT NULL,
    remote_id     TEXT    NOT NULL,
    batch_id      INTEGER REFERENCES batches (id),
    pack_id       TEXT    NOT NULL,
    provider_key  TEXT    NOT NULL,
    fingerprint   TEXT,
    marker        TEXT    NOT NULL,
    spec_json     TEXT    NOT NULL DEFAULT '{}',
    created_at_ms INTEGER NOT NULL,
    UNIQUE (host_id, kind, remote_id)
);
CREATE INDEX ledger_fingerprint ON ledger (host_id, provider_key, fingerprint);

-- The probe user's gateway key per (host, group), sealed; used by readiness.
CREATE TABLE access_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id    INTEGER NOT NULL REFERENCES hosts (id),
    group_name TEXT    NOT NULL,
    remote_id  TEXT    NOT NULL,
    sealed     TEXT    NOT NULL,
    masked     TEXT    NOT NULL,
    UNIQUE (host_id, group_name)
);
