-- Drift checks: the findings of each check (never whole host listings).
CREATE TABLE drift_reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id     INTEGER NOT NULL REFERENCES hosts (id),
    at_ms       INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    open_count  INTEGER NOT NULL,
    report_json TEXT    NOT NULL
);
CREATE INDEX drift_reports_host ON drift_reports (host_id, id);

-- Findings an operator chose to ignore, with why and until when.
CREATE TABLE drift_ignores (
    host_id     INTEGER NOT NULL REFERENCES hosts (id),
    finding_key TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    until_ms    INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    at_ms       INTEGER NOT NULL,
    PRIMARY KEY (host_id, finding_key)
);
