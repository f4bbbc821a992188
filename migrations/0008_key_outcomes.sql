-- What became of each batch's own keys, as JSON:
-- {"passed": 18, "failed": 2, "skipped": 0, "untested": 0}. A batch's
-- status and the batch list come from these, not from the group's
-- readiness, which another batch's accounts may have proven. Rewritten
-- with the step counts (see SUMMARY_SET in src/store/imports.rs).
ALTER TABLE batches ADD COLUMN key_outcomes TEXT NOT NULL DEFAULT '{}';
UPDATE batches SET key_outcomes = (
    SELECT json_object('passed', COALESCE(SUM(o = 'passed'), 0), 'failed', COALESCE(SUM(o = 'failed'), 0),
            'skipped', COALESCE(SUM(o = 'skipped'), 0), 'untested', COALESCE(SUM(o = 'untested'), 0))
    FROM (SELECT CASE
                WHEN a.state = 'skipped' AND a.action <> 'reuse' THEN 'skipped'
                WHEN t.state = 'done' THEN 'passed'
                WHEN a.state IN ('failed', 'unknown') OR t.state IN ('failed', 'unknown') THEN 'failed'
                ELSE 'untested' END AS o
            FROM steps a LEFT JOIN steps t
              ON t.batch_id = a.batch_id AND t.kind = 'account_test' AND t.fingerprint = a.fingerprint
            WHERE a.batch_id = batches.id AND a.kind = 'account'));
