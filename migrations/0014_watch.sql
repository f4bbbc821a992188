-- Keep watching: scheduled jobs with leases, readiness re-checks, upstream
-- balances, alerts through an outbox, and history with retention.

-- The last ready status a batch earned. A readiness re-check that fails
-- moves `access_status` to `degraded` or `broken`; one that passes again
-- moves it back to this. A trigger keeps it, so every path that proves a
-- batch ready (apply, re-run, repair) sets it.
ALTER TABLE batches ADD COLUMN ready_access TEXT;
UPDATE batches SET ready_access = access_status
WHERE access_status IN ('self_service_ready', 'subscription_ready', 'fully_ready');

CREATE TRIGGER batches_ready_access AFTER UPDATE OF access_status ON batches
WHEN NEW.access_status IN ('self_service_ready', 'subscription_ready', 'fully_ready')
 AND NEW.ready_access IS NOT NEW.access_status
BEGIN
    UPDATE batches SET ready_access = NEW.access_status WHERE id = NEW.id;
END;

-- One row per scheduled job: `host:ID:probe|readiness|drift|balance`, or a
-- product-wide `retention`. A process claims a due job by setting the lease
-- in one UPDATE whose WHERE says "due and not held by a live lease", so on
-- one database each run happens once, whichever process ticks first.
CREATE TABLE schedules (
    job_key        TEXT    PRIMARY KEY,
    host_id        INTEGER REFERENCES hosts (id) ON DELETE CASCADE,
    job            TEXT    NOT NULL CHECK (job IN ('probe', 'readiness', 'drift', 'balance', 'retention')),
    interval_s     INTEGER NOT NULL CHECK (interval_s >= 1),
    enabled        INTEGER NOT NULL DEFAULT 1,
    next_due_ms    INTEGER NOT NULL,
    lease_owner    TEXT,
    lease_until_ms INTEGER,
    last_started_ms  INTEGER,
    last_finished_ms INTEGER,
    last_outcome   TEXT,
    last_detail    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX schedules_due ON schedules (enabled, next_due_ms);

-- Every run of a scheduled job: who ran it, when, what came of it.
CREATE TABLE job_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key      TEXT    NOT NULL,
    host_id      INTEGER REFERENCES hosts (id) ON DELETE CASCADE,
    job          TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    due_ms       INTEGER NOT NULL,
    started_ms   INTEGER NOT NULL,
    finished_ms  INTEGER,
    outcome      TEXT,
    detail       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX job_runs_key ON job_runs (job_key, id);
CREATE INDEX job_runs_started ON job_runs (started_ms);

-- Readiness re-checks of a batch: what was sent and seen (redacted), and
-- the access status before and after.
CREATE TABLE readiness_checks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id      INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    host_id       INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    at_ms         INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('ready', 'degraded', 'broken')),
    access_before TEXT    NOT NULL,
    access_after  TEXT    NOT NULL,
    detail        TEXT    NOT NULL,
    duration_ms   INTEGER NOT NULL,
    evidence_json TEXT    NOT NULL
);
CREATE INDEX readiness_checks_batch ON readiness_checks (batch_id, id);
CREATE INDEX readiness_checks_at ON readiness_checks (at_ms);

-- The latest balance reading of each key of a batch: `known` (an amount
-- the provider stated), `unknown` (the endpoint errored or said nothing
-- readable) or `unsupported` (the provider has no balance endpoint).
CREATE TABLE key_balances (
    batch_id    INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    fingerprint TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('known', 'unknown', 'unsupported')),
    amount      REAL,
    currency    TEXT,
    detail      TEXT    NOT NULL,
    at_ms       INTEGER NOT NULL,
    PRIMARY KEY (batch_id, fingerprint)
);

-- Where alerts go. The URL is sealed (a bot's URL carries its token) and
-- shown masked; `secret_sealed` signs every delivery (HMAC-SHA256 of the
-- body); `kinds` is the comma-separated rules the webhook receives.
CREATE TABLE webhooks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    url_sealed    TEXT    NOT NULL,
    url_masked    TEXT    NOT NULL,
    format        TEXT    NOT NULL CHECK (format IN ('generic', 'wecom', 'dingtalk', 'feishu')),
    kinds         TEXT    NOT NULL,
    secret_sealed TEXT    NOT NULL,
    -- The operator gave the bot's own signing secret (DingTalk, Feishu):
    -- deliveries also carry the bot's native signature.
    secret_given  INTEGER NOT NULL DEFAULT 0,
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at_ms INTEGER NOT NULL,
    actor         TEXT    NOT NULL
);

-- One incident per condition while it lasts: opened once (one alert),
-- resolved once (one resolved message).
CREATE TABLE incidents (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    host_id        INTEGER REFERENCES hosts (id) ON DELETE CASCADE,
    batch_id       INTEGER REFERENCES batches (id) ON DELETE CASCADE,
    title          TEXT    NOT NULL,
    detail         TEXT    NOT NULL,
    opened_at_ms   INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    resolved_at_ms INTEGER
);
CREATE UNIQUE INDEX incidents_open ON incidents (kind, subject) WHERE resolved_at_ms IS NULL;
CREATE INDEX incidents_recent ON incidents (id);

-- The outbox: one row per (event, webhook), written in the same
-- transaction as the incident change, delivered with retries and backoff.
CREATE TABLE deliveries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id     INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    incident_id    INTEGER REFERENCES incidents (id) ON DELETE CASCADE,
    event          TEXT    NOT NULL CHECK (event IN ('firing', 'resolved', 'notice', 'test')),
    payload_json   TEXT    NOT NULL,
    state          TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_at_ms     INTEGER NOT NULL,
    lease_owner    TEXT,
    lease_until_ms INTEGER,
    last_status    INTEGER,
    last_error     TEXT    NOT NULL DEFAULT '',
    created_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER
);
CREATE INDEX deliveries_due ON deliveries (state, next_at_ms);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);

-- What retention leaves of old history: counts per host, kind and day.
CREATE TABLE history_counts (
    host_id INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    day     INTEGER NOT NULL,
    ok      INTEGER NOT NULL DEFAULT 0,
    failed  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (host_id, kind, day)
);
