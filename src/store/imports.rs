//! Pack versions, batches, their keys, the step journal, the ledger and the
//! probe user's access keys.

use super::{audit_in, now_ms, Store, StoreError};
use crate::model::{Action, StepKind, StepState};

/// A stored pack version.
#[derive(Debug, Clone)]
pub struct PackVersionRow {
    pub id: i64,
    pub pack_id: String,
    pub name: String,
    pub hash: String,
    pub format: String,
    pub source: String,
    pub pack_json: String,
    pub builtin: bool,
    pub created_at_ms: i64,
    pub created_by: String,
}

type PackRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    i64,
    String,
);

fn pack_row(r: PackRow) -> PackVersionRow {
    PackVersionRow {
        id: r.0,
        pack_id: r.1,
        name: r.2,
        hash: r.3,
        format: r.4,
        source: r.5,
        pack_json: r.6,
        builtin: r.7,
        created_at_ms: r.8,
        created_by: r.9,
    }
}

const PACK_COLS: &str =
    "id, pack_id, name, hash, format, source, pack_json, builtin, created_at_ms, created_by";

/// A batch row.
#[derive(Debug, Clone)]
pub struct BatchRow {
    pub id: i64,
    pub uid: String,
    pub host_id: i64,
    pub pack_version_id: i64,
    pub provider_key: String,
    pub access_mode: String,
    pub status: String,
    pub access_status: String,
    pub host_version: Option<String>,
    pub product_version: String,
    pub plan_json: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub key_count: i64,
    /// See [`SUMMARY_SET`]: what became of the batch's own keys.
    pub key_outcomes: String,
}

type BRow = (
    i64,
    String,
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
);

fn batch_row(r: BRow) -> BatchRow {
    BatchRow {
        id: r.0,
        uid: r.1,
        host_id: r.2,
        pack_version_id: r.3,
        provider_key: r.4,
        access_mode: r.5,
        status: r.6,
        access_status: r.7,
        host_version: r.8,
        product_version: r.9,
        plan_json: r.10,
        created_by: r.11,
        created_at_ms: r.12,
        updated_at_ms: r.13,
        key_count: r.14,
        key_outcomes: r.15,
    }
}

/// The stored plan lives in `batch_plans` (its own table, so reading a
/// batch's other columns never walks its pages); `plan_json` here stands
/// for it in a batch's columns.
const BATCH_COLS: &str =
    "id, uid, host_id, pack_version_id, provider_key, access_mode, status, access_status,
    host_version, product_version, plan_json, created_by, created_at_ms, updated_at_ms, key_count, key_outcomes";
const PLAN_OF_BATCH: &str =
    "(SELECT plan_json FROM batch_plans WHERE batch_id = batches.id) AS plan_json";

/// A journal step.
#[derive(Debug, Clone)]
pub struct StepRow {
    pub seq: i64,
    /// The run the step belongs to (0 before it is stored).
    pub run_id: i64,
    pub kind: StepKind,
    pub action: Action,
    pub target: String,
    pub fingerprint: Option<String>,
    pub idempotency_key: String,
    pub marker: String,
    pub state: StepState,
    pub request_json: String,
    pub response_json: String,
    pub remote_id: Option<String>,
    pub error: String,
    /// Why it failed, typed: see [`crate::model::StepErrorKind`].
    pub error_kind: String,
    /// The `Idempotency-Key` of the batch create it was sent in.
    pub chunk_key: Option<String>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

impl StepRow {
    /// A `pending` step of a run to be added with [`Store::insert_run`]
    /// (it numbers the step), acting on `remote_id` and recorded by `marker`.
    pub fn pending(
        kind: StepKind,
        action: Action,
        target: String,
        marker: String,
        remote_id: Option<String>,
    ) -> StepRow {
        StepRow {
            seq: 0,
            run_id: 0,
            kind,
            action,
            target,
            fingerprint: None,
            idempotency_key: String::new(),
            marker,
            state: StepState::Pending,
            request_json: String::new(),
            response_json: String::new(),
            remote_id,
            error: String::new(),
            error_kind: String::new(),
            chunk_key: None,
            started_at_ms: None,
            finished_at_ms: None,
        }
    }
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(super) struct StepRecord {
    seq: i64,
    run_id: Option<i64>,
    kind: String,
    action: String,
    target: String,
    fingerprint: Option<String>,
    idempotency_key: String,
    marker: String,
    state: String,
    request_json: String,
    response_json: String,
    remote_id: Option<String>,
    error: String,
    error_kind: String,
    chunk_key: Option<String>,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
}

/// Steps read as one JSON array of arrays built by SQLite, each step's
/// `STEP_COLS` (the fields of [`StepRecord`], in order), then parsed: a
/// thousand steps in about a third of the time of a row each.
pub(super) fn steps_from_json(json: Option<String>) -> Result<Vec<StepRow>, StoreError> {
    let records: Vec<StepRecord> = match json {
        Some(j) => serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        None => Vec::new(),
    };
    records.into_iter().map(step_row).collect()
}

pub(super) fn step_row(r: StepRecord) -> Result<StepRow, StoreError> {
    Ok(StepRow {
        seq: r.seq,
        run_id: r.run_id.unwrap_or(0),
        kind: StepKind::parse(&r.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("step kind {}", r.kind)))?,
        action: serde_json::from_value(serde_json::Value::String(r.action.clone()))
            .map_err(|_| StoreError::Corrupt(format!("step action {}", r.action)))?,
        target: r.target,
        fingerprint: r.fingerprint,
        idempotency_key: r.idempotency_key,
        marker: r.marker,
        state: StepState::parse(&r.state),
        request_json: r.request_json,
        response_json: r.response_json,
        remote_id: r.remote_id,
        error: r.error,
        error_kind: r.error_kind,
        chunk_key: r.chunk_key,
        started_at_ms: r.started_at_ms,
        finished_at_ms: r.finished_at_ms,
    })
}

/// A batch's journal counted by kind and state, as JSON
/// (`{"account": {"done": 3, "failed": 1}}`), correlated on `batches.id`.
macro_rules! step_counts_sql {
    () => {
        "COALESCE((SELECT json_group_object(kind, json(c)) FROM (
    SELECT kind, json_group_object(state, n) AS c FROM (
        SELECT kind, state, COUNT(*) AS n FROM steps s WHERE s.batch_id = batches.id GROUP BY kind, state
    ) GROUP BY kind)), '{}')"
    };
}

/// A batch's steps counted by kind and state, as JSON (kind → state → n),
/// for `UPDATE batches` (correlated on `batches.id`).
pub(super) const STEP_COUNTS_SQL: &str = step_counts_sql!();

/// What became of each of a batch's own keys, as JSON
/// ([`crate::model::KeyOutcomes`]): a key is `replaced` when its account
/// was removed by a run that brought another key in (a key replacement),
/// `skipped` when its account step was (another batch holds it), `passed`
/// when its account test passed, `failed` when its account or its test
/// failed, else `untested`. A reused account counts by its test.
macro_rules! key_outcomes_sql {
    () => {
        "(SELECT json_object('passed', COALESCE(SUM(o = 'passed'), 0), 'failed', COALESCE(SUM(o = 'failed'), 0),
                'skipped', COALESCE(SUM(o = 'skipped'), 0), 'untested', COALESCE(SUM(o = 'untested'), 0),
                'replaced', COALESCE(SUM(o = 'replaced'), 0))
          FROM (SELECT CASE
                    WHEN EXISTS (SELECT 1 FROM steps r WHERE r.fingerprint = a.fingerprint AND r.batch_id = a.batch_id
                                   AND r.kind = 'remove' AND r.state = 'done'
                                   AND EXISTS (SELECT 1 FROM steps n WHERE n.run_id = r.run_id AND n.kind = 'account')) THEN 'replaced'
                    WHEN a.state = 'skipped' AND a.action <> 'reuse' THEN 'skipped'
                    WHEN t.state = 'done' THEN 'passed'
                    WHEN a.state IN ('failed', 'unknown') OR t.state IN ('failed', 'unknown') THEN 'failed'
                    ELSE 'untested' END AS o
                FROM steps a LEFT JOIN steps t
                  ON t.batch_id = a.batch_id AND t.kind = 'account_test' AND t.fingerprint = a.fingerprint
                WHERE a.batch_id = batches.id AND a.kind = 'account'))"
    };
}

/// The summary columns of `batches`, recounted from the journal: for the
/// `SET` of an `UPDATE batches` whenever its steps or status change.
pub(super) const SUMMARY_SET: &str = concat!(
    "step_counts = ",
    step_counts_sql!(),
    ", key_outcomes = ",
    key_outcomes_sql!()
);

/// `('account', …)`: the kinds of [`StepKind::PER_KEY`], whose evidence is
/// read one step at a time, never with a page of the timeline.
fn per_key_kinds() -> String {
    let kinds: Vec<String> = StepKind::PER_KEY
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    format!("({})", kinds.join(", "))
}

/// A batch as a list shows it: its summary columns, never its plan, keys
/// or journal.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BatchSummaryRow {
    pub id: i64,
    pub uid: String,
    pub host_id: i64,
    pub host_name: String,
    pub pack_id: String,
    pub provider_key: String,
    pub access_mode: String,
    pub status: String,
    pub access_status: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub key_count: i64,
    /// See [`STEP_COUNTS_SQL`]; read live while the batch runs.
    pub step_counts: String,
    /// See [`SUMMARY_SET`].
    pub key_outcomes: String,
    /// See [`super::REVIEW_STATE_SQL`] (NULL: never reviewed).
    pub review_state: Option<String>,
    /// A finished batch, one a reviewer decides on.
    pub reviewable: bool,
}

pub(super) const STEP_COLS: &str =
    "seq, run_id, kind, action, target, fingerprint, idempotency_key, marker, state, request_json,
    response_json, remote_id, error, error_kind, chunk_key, started_at_ms, finished_at_ms";

/// A new batch with its keys and planned steps.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub uid: String,
    pub host_id: i64,
    pub pack_version_id: i64,
    pub provider_key: String,
    pub access_mode: String,
    pub host_version: Option<String>,
    pub plan_json: String,
    /// (position, fingerprint, sealed, masked)
    pub keys: Vec<(i64, String, String, String)>,
    pub steps: Vec<StepRow>,
}

/// What a step update writes (fields left `None` are kept).
#[derive(Debug, Default, Clone)]
pub struct StepUpdate {
    pub state: Option<StepState>,
    /// Typed failure kind (`''` clears it).
    pub error_kind: Option<String>,
    pub request_json: Option<String>,
    pub response_json: Option<String>,
    pub remote_id: Option<String>,
    pub error: Option<String>,
}

/// A ledger entry to record.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub host_id: i64,
    pub kind: String,
    pub remote_id: String,
    pub batch_id: i64,
    pub pack_id: String,
    pub provider_key: String,
    pub fingerprint: Option<String>,
    pub marker: String,
    /// The redacted request that made it (empty when adopted).
    pub spec_json: String,
    /// The normalized fields we want it to have.
    pub desired_json: String,
    /// Digest of the normalized fields the host showed at apply time.
    pub observed_digest: String,
    /// How this batch came to use it: `created`, `adopted` or `reused`.
    pub role: String,
}

impl Store {
    /// Stores a pack version; the same content again returns the existing id.
    pub async fn insert_pack_version(
        &self,
        actor: &str,
        pack_id: &str,
        name: &str,
        hash: &str,
        format: &str,
        source: &str,
        pack_json: &str,
        builtin: bool,
    ) -> Result<(i64, bool), StoreError> {
        let mut tx = self.begin_write().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM pack_versions WHERE pack_id = ? AND hash = ?")
                .bind(pack_id)
                .bind(hash)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = existing {
            return Ok((id, false));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pack_versions (pack_id, name, hash, format, source, pack_json, builtin, created_at_ms, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(pack_id)
        .bind(name)
        .bind(hash)
        .bind(format)
        .bind(source)
        .bind(pack_json)
        .bind(builtin)
        .bind(now_ms())
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        if !builtin {
            audit_in(
                &mut tx,
                actor,
                "pack.upload",
                &format!("pack:{pack_id}"),
                "ok",
                &format!("hash={}", &hash[..12]),
            )
            .await?;
        }
        tx.commit().await?;
        Ok((id, true))
    }

    pub async fn pack_versions(&self) -> Result<Vec<PackVersionRow>, StoreError> {
        let rows: Vec<PackRow> = sqlx::query_as(&format!(
            "SELECT {PACK_COLS} FROM pack_versions ORDER BY pack_id, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(pack_row).collect())
    }

    pub async fn pack_version(&self, id: i64) -> Result<Option<PackVersionRow>, StoreError> {
        let r: Option<PackRow> = sqlx::query_as(&format!(
            "SELECT {PACK_COLS} FROM pack_versions WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(pack_row))
    }

    /// Creates a batch, its keys and its journal (all `pending`) at once.
    pub async fn insert_batch(&self, actor: &str, b: &NewBatch) -> Result<i64, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO batches (uid, host_id, pack_version_id, provider_key, access_mode, status, access_status,
                host_version, product_version, created_by, created_at_ms, updated_at_ms)
             VALUES (?, ?, ?, ?, ?, 'planned', 'none', ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&b.uid)
        .bind(b.host_id)
        .bind(b.pack_version_id)
        .bind(&b.provider_key)
        .bind(&b.access_mode)
        .bind(&b.host_version)
        .bind(crate::PRODUCT_VERSION)
        .bind(actor)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO batch_plans (batch_id, plan_json) VALUES (?, ?)")
            .bind(id)
            .bind(&b.plan_json)
            .execute(&mut *tx)
            .await?;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (batch_id, kind, status, actor, created_at_ms) VALUES (?, 'apply', 'planned', ?, ?) RETURNING id",
        )
        .bind(id)
        .bind(actor)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        for chunk in b.keys.chunks(INSERT_ROWS) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO batch_keys (batch_id, position, fingerprint, sealed, masked) ",
            );
            q.push_values(chunk, |mut r, (pos, fp, sealed, masked)| {
                r.push_bind(id)
                    .push_bind(*pos)
                    .push_bind(fp.clone())
                    .push_bind(sealed.clone())
                    .push_bind(masked.clone());
            });
            q.build().execute(&mut *tx).await?;
        }
        insert_steps_in(&mut tx, id, run_id, None, &b.steps).await?;
        sqlx::query(&format!(
            "UPDATE batches SET key_count = ?, plan_head = json_remove(?, '$.steps'),
                {SUMMARY_SET} WHERE id = ?"
        ))
        .bind(b.keys.len() as i64)
        .bind(&b.plan_json)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            actor,
            "batch.plan",
            &crate::model::batch_target(id),
            "ok",
            &format!(
                "provider={} mode={} keys={}",
                b.provider_key,
                b.access_mode,
                b.keys.len()
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn batch(&self, id: i64) -> Result<Option<BatchRow>, StoreError> {
        let cols = BATCH_COLS.replace("plan_json", PLAN_OF_BATCH);
        let r: Option<BRow> = sqlx::query_as(&format!("SELECT {cols} FROM batches WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(batch_row))
    }

    /// A batch whose `plan_json` is the plan without its per-key steps
    /// (pages; the steps are in the journal).
    pub async fn batch_head(&self, id: i64) -> Result<Option<BatchRow>, StoreError> {
        let cols = BATCH_COLS.replace("plan_json", "plan_head AS plan_json");
        let r: Option<BRow> = sqlx::query_as(&format!("SELECT {cols} FROM batches WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(batch_row))
    }

    /// The newest batches older than `before` (all when `None`), as
    /// summaries: one indexed read, whatever the size of the batches.
    pub async fn batch_summaries(
        &self,
        f: &crate::model::BatchFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<BatchSummaryRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT batches.id, batches.uid, batches.host_id, h.name AS host_name, p.pack_id,
                    batches.provider_key, batches.access_mode, batches.status, batches.access_status,
                    batches.created_by, batches.created_at_ms, batches.updated_at_ms, batches.key_count,
                    CASE WHEN batches.status IN ('running', 'rolling_back') THEN {STEP_COUNTS_SQL}
                         ELSE batches.step_counts END AS step_counts,
                    batches.key_outcomes, {review} AS review_state, {reviewable} AS reviewable
             FROM batches JOIN hosts h ON h.id = batches.host_id
                          JOIN pack_versions p ON p.id = batches.pack_version_id
             WHERE batches.id < ?1 AND (?3 IS NULL OR batches.host_id = ?3)
               AND (?7 = '' OR (?7 = 'not_reviewed' AND review_state IS NULL AND reviewable)
                    OR review_state = ?7)
               AND (?4 = '' OR batches.provider_key = ?4) AND (?5 = '' OR batches.status = ?5)
               AND (?6 = 0 OR batches.status IN ('running', 'rolling_back', 'failed', 'partially_succeeded', 'rollback_failed')
                    OR (batches.status = 'succeeded'
                        AND batches.access_status NOT IN ('self_service_ready', 'subscription_ready', 'fully_ready')))
             ORDER BY batches.id DESC LIMIT ?2",
            review = super::REVIEW_STATE_SQL,
            reviewable = super::REVIEWABLE_SQL,
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .bind(f.host_id)
        .bind(&f.provider)
        .bind(&f.status)
        .bind(f.attention)
        .bind(&f.review)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every provider key some batch was planned for.
    pub async fn batch_providers(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT provider_key FROM batches ORDER BY provider_key")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Recounts a batch's journal into its summary (keys are counted at
    /// plan time, steps whenever its status is written); for tools that
    /// write steps directly, such as benchmarks seeding a database.
    pub async fn refresh_batch_summary(&self, batch_id: i64) -> Result<(), StoreError> {
        sqlx::query(&format!("UPDATE batches SET {SUMMARY_SET} WHERE id = ?"))
            .bind(batch_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A batch's steps counted per run, kind and state (from an index).
    pub async fn step_counts(
        &self,
        batch_id: i64,
    ) -> Result<Vec<(i64, String, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT COALESCE(run_id, 0), kind, state, COUNT(*) FROM steps WHERE batch_id = ?
             GROUP BY run_id, kind, state ORDER BY run_id, MIN(seq)",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A page of a batch's journal: up to `limit` steps after `after` (by
    /// seq), of one state when given. Per-key steps come without their
    /// request and response (see [`Store::step`]); the page's size does not
    /// grow with the batch.
    pub async fn step_window(
        &self,
        batch_id: i64,
        after: i64,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StepRow>, StoreError> {
        let kinds = per_key_kinds();
        let cols = STEP_COLS
            .replace(
                "request_json,",
                &format!(
                    "CASE WHEN kind IN {kinds} THEN '' ELSE request_json END AS request_json,"
                ),
            )
            .replace(
                "response_json,",
                &format!(
                    "CASE WHEN kind IN {kinds} THEN '' ELSE response_json END AS response_json,"
                ),
            );
        let rows: Vec<StepRecord> = sqlx::query_as(&format!(
            "SELECT {cols} FROM steps WHERE batch_id = ? AND seq > ? AND (? IS NULL OR state = ?)
             ORDER BY seq LIMIT ?"
        ))
        .bind(batch_id)
        .bind(after)
        .bind(state)
        .bind(state)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(step_row).collect()
    }

    /// The note of a readiness check that is still waiting (sent, not
    /// settled), if one is.
    pub async fn waiting_note(&self, batch_id: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT response_json FROM steps WHERE batch_id = ? AND state = 'sent' AND kind = 'readiness'
             AND response_json <> '' ORDER BY seq DESC LIMIT 1",
        )
        .bind(batch_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Steps of a batch whose state changed after `since_ms` (a running
    /// batch's refresh), newest first, at most `limit`.
    pub async fn steps_changed(
        &self,
        batch_id: i64,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<StepRow>, StoreError> {
        let cols = STEP_COLS
            .replace("request_json,", "'' AS request_json,")
            .replace("response_json,", "'' AS response_json,");
        let rows: Vec<StepRecord> = sqlx::query_as(&format!(
            "SELECT {cols} FROM steps WHERE batch_id = ? AND COALESCE(finished_at_ms, started_at_ms, 0) > ?
             ORDER BY COALESCE(finished_at_ms, started_at_ms) DESC, seq DESC LIMIT ?"
        ))
        .bind(batch_id)
        .bind(since_ms)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(step_row).collect()
    }

    /// The batch's keys: (fingerprint, sealed, masked), in upload order.
    pub async fn batch_keys(
        &self,
        batch_id: i64,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT fingerprint, sealed, masked FROM batch_keys WHERE batch_id = ? ORDER BY position")
            .bind(batch_id)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn steps(&self, batch_id: i64) -> Result<Vec<StepRow>, StoreError> {
        let rows: Vec<StepRecord> = sqlx::query_as(&format!(
            "SELECT {STEP_COLS} FROM steps WHERE batch_id = ? ORDER BY seq"
        ))
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(step_row).collect()
    }

    /// Writes one journal transition and commits it before returning.
    pub async fn update_step(
        &self,
        batch_id: i64,
        seq: i64,
        u: StepUpdate,
    ) -> Result<(), StoreError> {
        self.group
            .write(move |tx| Box::pin(async move { update_step_in(tx, batch_id, seq, &u).await }))
            .await
    }

    pub async fn set_batch_status(
        &self,
        batch_id: i64,
        status: &str,
        access_status: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!("UPDATE batches SET status = ?, access_status = COALESCE(?, access_status), updated_at_ms = ?,
                {SUMMARY_SET} WHERE id = ?"))
            .bind(status)
            .bind(access_status)
            .bind(now_ms())
            .bind(batch_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The batch and remote id of an account already imported for this key.
    pub async fn ledger_account(
        &self,
        host_id: i64,
        provider_key: &str,
        fingerprint: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        Ok(self
            .ledger_accounts(host_id, provider_key, &[fingerprint.to_string()])
            .await?
            .remove(fingerprint))
    }

    /// The live accounts the ledger holds for these key fingerprints, by
    /// fingerprint: (batch, remote id). One query per 500 keys.
    pub async fn ledger_accounts(
        &self,
        host_id: i64,
        provider_key: &str,
        fingerprints: &[String],
    ) -> Result<std::collections::HashMap<String, (i64, String)>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for part in fingerprints.chunks(500) {
            let sql = format!(
                "SELECT fingerprint, batch_id, remote_id FROM ledger WHERE host_id = ? AND provider_key = ? AND kind = 'account' AND status = 'active' AND fingerprint IN ({})",
                vec!["?"; part.len()].join(",")
            );
            let mut q = sqlx::query_as::<_, (String, i64, String)>(&sql)
                .bind(host_id)
                .bind(provider_key);
            for fp in part {
                q = q.bind(fp);
            }
            for (fp, batch, remote) in q.fetch_all(&self.pool).await? {
                out.entry(fp).or_insert((batch, remote));
            }
        }
        Ok(out)
    }

    pub async fn batch_count_for_host(&self, host_id: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM batches WHERE host_id = ?")
                .bind(host_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn put_access_key(
        &self,
        host_id: i64,
        group: &str,
        remote_id: &str,
        sealed: &str,
        masked: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO access_keys (host_id, group_name, remote_id, sealed, masked) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (host_id, group_name) DO UPDATE SET remote_id = excluded.remote_id, sealed = excluded.sealed, masked = excluded.masked",
        )
        .bind(host_id)
        .bind(group)
        .bind(remote_id)
        .bind(sealed)
        .bind(masked)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// (remote id, sealed, masked) of the probe user's key for a group.
    pub async fn access_key(
        &self,
        host_id: i64,
        group: &str,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT remote_id, sealed, masked FROM access_keys WHERE host_id = ? AND group_name = ?")
            .bind(host_id)
            .bind(group)
            .fetch_optional(&self.pool)
            .await?)
    }
}

impl Store {
    pub async fn insert_diagnosis(
        &self,
        batch_id: i64,
        actor: &str,
        report_json: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO diagnoses (batch_id, at_ms, actor, report_json) VALUES (?, ?, ?, ?)",
        )
        .bind(batch_id)
        .bind(now_ms())
        .bind(actor)
        .bind(report_json)
        .execute(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            actor,
            "batch.diagnose",
            &crate::model::batch_target(batch_id),
            "ok",
            "",
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn latest_diagnosis(&self, batch_id: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT report_json FROM diagnoses WHERE batch_id = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(batch_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Audit entries about one batch, oldest first (for evidence bundles).
    pub async fn audit_for_batch(
        &self,
        id: i64,
        uid: &str,
    ) -> Result<Vec<crate::model::AuditEntry>, StoreError> {
        // Entries written before batches had one name carry the uid form.
        let rows: Vec<super::AuditRow> = sqlx::query_as(
            "SELECT id, at_ms, actor, action, target, outcome, detail FROM audit_log WHERE target IN (?, ?, ?) ORDER BY id",
        )
        .bind(crate::model::batch_target(id))
        .bind(format!("batch:{uid}"))
        .bind(format!("batch-id:{id}"))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(super::audit_entry).collect())
    }
}

impl Store {
    /// One journal step.
    pub async fn step(&self, batch_id: i64, seq: i64) -> Result<Option<StepRow>, StoreError> {
        let r: Option<StepRecord> = sqlx::query_as(&format!(
            "SELECT {STEP_COLS} FROM steps WHERE batch_id = ? AND seq = ?"
        ))
        .bind(batch_id)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        r.map(step_row).transpose()
    }

    /// What became of a batch's keys, counted from its journal now.
    pub async fn key_outcomes(&self, batch_id: i64) -> Result<String, StoreError> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT ",
            key_outcomes_sql!(),
            " FROM batches WHERE id = ?"
        ))
        .bind(batch_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The keys of a batch that were replaced by another (see
    /// [`SUMMARY_SET`]: their account was removed by a run that created one).
    pub async fn replaced_fingerprints(
        &self,
        batch_id: i64,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT r.fingerprint FROM steps r
             WHERE r.batch_id = ? AND r.kind = 'remove' AND r.state = 'done' AND r.fingerprint IS NOT NULL
               AND EXISTS (SELECT 1 FROM steps n WHERE n.run_id = r.run_id AND n.kind = 'account')",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// The remote ids of a batch's account steps, by key fingerprint.
    pub async fn account_remote_ids(
        &self,
        batch_id: i64,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT fingerprint, remote_id FROM steps
             WHERE batch_id = ? AND kind = 'account' AND fingerprint IS NOT NULL AND remote_id IS NOT NULL",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// The remote id of the account step for a key fingerprint.
    pub async fn account_remote_id(
        &self,
        batch_id: i64,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT remote_id FROM steps WHERE batch_id = ? AND kind = 'account' AND fingerprint = ? AND remote_id IS NOT NULL",
        )
        .bind(batch_id)
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// One journal transition inside a caller's transaction.
pub(super) async fn update_step_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    batch_id: i64,
    seq: i64,
    u: &StepUpdate,
) -> Result<(), StoreError> {
    let now = now_ms();
    let state = u.state.map(|s| s.as_str());
    let finished = matches!(
        u.state,
        Some(StepState::Done | StepState::Failed | StepState::Unknown | StepState::Skipped)
    );
    sqlx::query(
        "UPDATE steps SET
            state = COALESCE(?, state),
            request_json = COALESCE(?, request_json),
            response_json = COALESCE(?, response_json),
            remote_id = COALESCE(?, remote_id),
            error = COALESCE(?, error),
            error_kind = COALESCE(?, error_kind),
            started_at_ms = COALESCE(started_at_ms, ?),
            finished_at_ms = CASE WHEN ? THEN ? ELSE finished_at_ms END
         WHERE batch_id = ? AND seq = ?",
    )
    .bind(state)
    .bind(&u.request_json)
    .bind(&u.response_json)
    .bind(&u.remote_id)
    .bind(&u.error)
    .bind(&u.error_kind)
    .bind(now)
    .bind(finished)
    .bind(now)
    .bind(batch_id)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rows per multi-row `INSERT` (12 columns each, well inside SQLite's
/// limit on bound parameters).
const INSERT_ROWS: usize = 200;

/// Journal steps inside a caller's transaction, numbered from `first_seq`
/// (or by their own `seq` when `None`), a few hundred rows per statement.
pub(super) async fn insert_steps_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    batch_id: i64,
    run_id: i64,
    first_seq: Option<i64>,
    steps: &[StepRow],
) -> Result<(), StoreError> {
    for (c, chunk) in steps.chunks(INSERT_ROWS).enumerate() {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO steps (batch_id, run_id, seq, kind, action, target, fingerprint, idempotency_key, marker, state, remote_id, error) ",
        );
        q.push_values(chunk.iter().enumerate(), |mut b, (i, s)| {
            let action = serde_json::to_value(s.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let seq = first_seq.map_or(s.seq, |f| f + (c * INSERT_ROWS + i) as i64);
            b.push_bind(batch_id)
                .push_bind(run_id)
                .push_bind(seq)
                .push_bind(s.kind.as_str())
                .push_bind(action)
                .push_bind(s.target.clone())
                .push_bind(s.fingerprint.clone())
                .push_bind(s.idempotency_key.clone())
                .push_bind(s.marker.clone())
                .push_bind(s.state.as_str())
                .push_bind(s.remote_id.clone())
                .push_bind(s.error.clone());
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
