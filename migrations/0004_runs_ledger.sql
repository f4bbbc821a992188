-- Runs: a batch keeps every apply, rollback, pause and repair it went
-- through, each with its own ordered steps. A run is claimed through its lease, so only
-- one process drives it at a time and a dead holder's run can be taken over.
CREATE TABLE runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id       INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('apply', 'rollback', 'pause', 'repair')),
    status         TEXT    NOT NULL CHECK (status IN ('planned', 'running', 'done', 'failed')),
    actor          TEXT    NOT NULL,
    options_json   TEXT    NOT NULL DEFAULT '{}',
    lease_owner    TEXT,
    lease_until_ms INTEGER,
    created_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER
);
CREATE INDEX runs_batch ON runs (batch_id, id);

INSERT INTO runs (batch_id, kind, status, actor, created_at_ms, finished_at_ms)
SELECT id, 'apply', CASE status WHEN 'planned' THEN 'planned' ELSE 'done' END,
       created_by, created_at_ms, CASE status WHEN 'planned' THEN NULL ELSE updated_at_ms END
FROM batches;

-- Steps belong to a run; seq stays unique per batch across runs.
-- error_kind: '' | rejected | maybe_sent | read_back | local | check.
-- chunk_key: the Idempotency-Key of the batch create the step was sent in.
ALTER TABLE steps ADD COLUMN run_id INTEGER REFERENCES runs (id) ON DELETE CASCADE;
ALTER TABLE steps ADD COLUMN error_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE steps ADD COLUMN chunk_key TEXT;
UPDATE steps SET run_id = (SELECT r.id FROM runs r WHERE r.batch_id = steps.batch_id);
CREATE INDEX steps_run ON steps (run_id, seq);
CREATE INDEX steps_chunk ON steps (batch_id, chunk_key) WHERE chunk_key IS NOT NULL;

-- The ledger keeps, per host object: its status, the normalized spec we
-- wanted and the digest of what the host showed when we applied it.
ALTER TABLE ledger ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'rolled_back', 'gone'));
ALTER TABLE ledger ADD COLUMN desired_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE ledger ADD COLUMN observed_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN updated_at_ms INTEGER;

-- Which batches use a ledger object: a group or channel reused by a later
-- batch is shared, and a rollback keeps it while another live batch uses it.
CREATE TABLE ledger_refs (
    ledger_id INTEGER NOT NULL REFERENCES ledger (id) ON DELETE CASCADE,
    batch_id  INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    role      TEXT    NOT NULL CHECK (role IN ('created', 'adopted', 'reused')),
    PRIMARY KEY (ledger_id, batch_id)
);
CREATE INDEX ledger_refs_batch ON ledger_refs (batch_id);
INSERT INTO ledger_refs (ledger_id, batch_id, role)
SELECT id, batch_id, 'created' FROM ledger WHERE batch_id IS NOT NULL;

-- One live account per key on a host: two plans cannot both create it.
CREATE UNIQUE INDEX ledger_live_account ON ledger (host_id, provider_key, fingerprint)
    WHERE kind = 'account' AND status = 'active';
