-- Handover review and four eyes.
--
-- `batches.evidence_rev` counts the changes to a batch's evidence after
-- its plan: a status or access change (every apply, re-run, rollback or
-- readiness check moves one), a new run (a pause, a repair, a key
-- replacement) and a diagnosis. Triggers keep it, so no code path that
-- changes a batch can forget to.
ALTER TABLE batches ADD COLUMN evidence_rev INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER batches_evidence_rev AFTER UPDATE OF status, access_status ON batches
WHEN NEW.status IS NOT OLD.status OR NEW.access_status IS NOT OLD.access_status
BEGIN
    UPDATE batches SET evidence_rev = evidence_rev + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER runs_evidence_rev AFTER INSERT ON runs
BEGIN
    UPDATE batches SET evidence_rev = evidence_rev + 1 WHERE id = NEW.batch_id;
END;

CREATE TRIGGER diagnoses_evidence_rev AFTER INSERT ON diagnoses
BEGIN
    UPDATE batches SET evidence_rev = evidence_rev + 1 WHERE id = NEW.batch_id;
END;

-- A review is a reviewer's decision on a finished batch, against the
-- evidence digest they saw; it is never changed (a newer one supersedes
-- it). It records the batch's `evidence_rev` at the time: any later change
-- makes it stale. `signature` is Ed25519 by the installation's key over
-- the decision's canonical JSON (see `ops::review`).
CREATE TABLE batch_reviews (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id          INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    decision          TEXT    NOT NULL CHECK (decision IN ('accepted', 'rejected', 'needs_changes')),
    comment           TEXT    NOT NULL,
    digest            TEXT    NOT NULL,
    evidence_rev      INTEGER NOT NULL,
    reviewer_id       INTEGER NOT NULL REFERENCES operators (id),
    reviewer          TEXT    NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    signature         TEXT    NOT NULL
);
CREATE INDEX batch_reviews_batch ON batch_reviews (batch_id, id);

-- A protected host's batches need a second person's approval before an
-- apply (of the plan with this digest) or a rollback (of the batch as it
-- was at `evidence_rev`).
ALTER TABLE hosts ADD COLUMN protected INTEGER NOT NULL DEFAULT 0;

CREATE TABLE approvals (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id      INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    purpose       TEXT    NOT NULL CHECK (purpose IN ('apply', 'rollback')),
    digest        TEXT    NOT NULL,
    evidence_rev  INTEGER NOT NULL,
    approver_id   INTEGER NOT NULL REFERENCES operators (id),
    approver      TEXT    NOT NULL,
    comment       TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX approvals_batch ON approvals (batch_id, purpose, id);
