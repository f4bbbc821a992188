-- Read paths sized by what a page shows: lists read these summaries, never
-- a batch's plan, keys or journal.

-- Journal steps of a batch counted by kind and state, as JSON:
-- {"account": {"done": 4998, "failed": 2}, ...}. Rewritten whenever the
-- batch's status is; a running batch's counts are read live.
ALTER TABLE batches ADD COLUMN key_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN step_counts TEXT NOT NULL DEFAULT '{}';
UPDATE batches SET key_count = (SELECT COUNT(*) FROM batch_keys k WHERE k.batch_id = batches.id);
UPDATE batches SET step_counts = COALESCE((
    SELECT json_group_object(kind, json(c)) FROM (
        SELECT kind, json_group_object(state, n) AS c FROM (
            SELECT kind, state, COUNT(*) AS n FROM steps s WHERE s.batch_id = batches.id GROUP BY kind, state
        ) GROUP BY kind
    )), '{}');

-- The plan without its per-key steps (what a batch page shows): parsing a
-- 5,000-key plan on every page view cost more than the rest of the page.
ALTER TABLE batches ADD COLUMN plan_head TEXT NOT NULL DEFAULT '{}';
UPDATE batches SET plan_head = json_remove(plan_json, '$.steps');

-- Open findings per batch in a drift check ({"12": 3, ...}), so the batch
-- list never parses a report.
ALTER TABLE drift_reports ADD COLUMN batch_open TEXT NOT NULL DEFAULT '{}';
UPDATE drift_reports SET batch_open = COALESCE((
    SELECT json_group_object(b, n) FROM (
        SELECT json_extract(f.value, '$.batch_id') AS b, COUNT(*) AS n
        FROM json_each(drift_reports.report_json, '$.findings') f
        WHERE json_extract(f.value, '$.ignored') IS NULL
          AND json_extract(f.value, '$.batch_id') IS NOT NULL
        GROUP BY b
    )), '{}');

-- Counts per run and kind from the index alone; a page of one state's steps.
CREATE INDEX steps_counts ON steps (batch_id, run_id, kind, state, seq);
CREATE INDEX steps_state ON steps (batch_id, state, seq);
CREATE INDEX batches_host ON batches (host_id, id);
-- An account test finds its account's step by key, and marking a step sent
-- looks for the same key in other batches: both by fingerprint, not a scan
-- of the batch's journal per step.
CREATE INDEX steps_fingerprint ON steps (fingerprint, batch_id) WHERE fingerprint IS NOT NULL;
CREATE INDEX host_probes_host_id ON host_probes (host_id, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
