-- Diagnoses of failed checks (kept so reading a batch never spends upstream
-- calls again; re-diagnosing adds a row).
CREATE TABLE diagnoses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id    INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    at_ms       INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    report_json TEXT    NOT NULL
);
CREATE INDEX diagnoses_batch ON diagnoses (batch_id, id);
