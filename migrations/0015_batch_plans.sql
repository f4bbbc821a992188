-- A batch's stored plan moves to a table of its own. SQLite keeps a row's
-- columns in order and a long value spills into a chain of overflow pages:
-- every column after `plan_json` (the counts, the plan's head, the key
-- outcomes, the evidence revision, added later) was read by walking that
-- chain, about 470 pages for a plan of 5,000 keys, on every page view.
CREATE TABLE batch_plans (
    batch_id INTEGER PRIMARY KEY REFERENCES batches (id) ON DELETE CASCADE,
    plan_json TEXT NOT NULL
);
INSERT INTO batch_plans (batch_id, plan_json) SELECT id, plan_json FROM batches;
ALTER TABLE batches DROP COLUMN plan_json;
