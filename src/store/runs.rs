//! Runs (apply, rollback, pause) with their leases, the one-transaction
//! step result, and the ledger of host objects with the batches using them.

use super::imports::{insert_steps_in, update_step_in, StepRecord, STEP_COLS};
use super::{audit_in, now_ms, Store, StoreError};
use crate::store::{LedgerEntry, StepRow, StepUpdate};
use std::collections::{HashMap, HashSet};

/// Ledger rows per multi-row `INSERT` (14 columns each, inside SQLite's
/// limit on bound parameters).
const LEDGER_ROWS: usize = 200;

/// A run of a batch.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub batch_id: i64,
    /// `apply`, `rollback` or `pause`.
    pub kind: String,
    /// `planned`, `running`, `done` or `failed`.
    pub status: String,
    pub actor: String,
    pub options_json: String,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

/// The batch that holds the key of account step `s` elsewhere on its
/// host and provider: a live ledger account, or an account step in
/// flight (`sent`) in another batch. `NULL` when none does.
const TAKEN_BY: &str = "COALESCE(
    (SELECT l.batch_id FROM ledger l, batches b
      WHERE b.id = s.batch_id AND l.host_id = b.host_id AND l.kind = 'account'
        AND l.provider_key = b.provider_key AND l.fingerprint = s.fingerprint
        AND l.status = 'active' AND l.batch_id <> s.batch_id LIMIT 1),
    (SELECT o.batch_id FROM steps o, batches ob, batches b
      WHERE b.id = s.batch_id AND o.batch_id = ob.id AND ob.host_id = b.host_id
        AND ob.provider_key = b.provider_key AND o.kind = 'account'
        AND o.fingerprint = s.fingerprint AND o.batch_id <> s.batch_id
        AND o.state = 'sent' LIMIT 1))";

const RUN_COLS: &str = "id, batch_id, kind, status, actor, options_json, lease_owner, lease_until_ms, created_at_ms, finished_at_ms";

/// A ledger account with its key mask, newest test and last pause/resume.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HostAccountRow {
    pub id: i64,
    pub remote_id: String,
    pub batch_id: Option<i64>,
    pub provider_key: String,
    pub fingerprint: Option<String>,
    pub masked: Option<String>,
    pub platform: Option<String>,
    pub status: String,
    pub created_at_ms: i64,
    pub test_state: Option<String>,
    pub test_at_ms: Option<i64>,
    pub test_error: Option<String>,
    pub schedulable: Option<bool>,
    pub schedulable_at_ms: Option<i64>,
}

/// What claiming a run's lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the lease now.
    Held,
    /// Another live process holds it until the given time.
    Busy { owner: String, until_ms: i64 },
    /// Its batch was discarded: the run never starts.
    Discarded,
}

/// A ledger object with the batches that use it.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub id: i64,
    pub host_id: i64,
    pub kind: String,
    pub remote_id: String,
    pub batch_id: Option<i64>,
    pub provider_key: String,
    pub fingerprint: Option<String>,
    pub marker: String,
    pub status: String,
    pub desired_json: String,
    pub observed_digest: String,
    /// This batch's role with the object.
    pub role: String,
    /// Other batches that use it and are not rolled back: (id, status).
    pub other_live_batches: Vec<(i64, String)>,
}

#[derive(sqlx::FromRow)]
struct LedgerRecord {
    id: i64,
    host_id: i64,
    kind: String,
    remote_id: String,
    batch_id: Option<i64>,
    provider_key: String,
    fingerprint: Option<String>,
    marker: String,
    status: String,
    desired_json: String,
    observed_digest: String,
    role: String,
}

impl LedgerRecord {
    fn into_row(self, other_live_batches: Vec<(i64, String)>) -> LedgerRow {
        LedgerRow {
            id: self.id,
            host_id: self.host_id,
            kind: self.kind,
            remote_id: self.remote_id,
            batch_id: self.batch_id,
            provider_key: self.provider_key,
            fingerprint: self.fingerprint,
            marker: self.marker,
            status: self.status,
            desired_json: self.desired_json,
            observed_digest: self.observed_digest,
            role: self.role,
            other_live_batches,
        }
    }
}

/// A change to the ledger committed with a step's result.
#[derive(Debug, Clone)]
pub enum LedgerWrite {
    /// Record (or re-activate) an object and this batch's use of it.
    Record(Box<LedgerEntry>),
    /// Set an object's status (a rollback removed it, or it is gone).
    Status { ledger_id: i64, status: String },
}

/// A change to the probe user's stored gateway key, committed with a step.
#[derive(Debug, Clone)]
pub enum AccessWrite {
    Put {
        host_id: i64,
        group: String,
        remote_id: String,
        sealed: String,
        masked: String,
    },
    Delete {
        host_id: i64,
        group: String,
    },
}

impl Store {
    /// Every run of a batch, oldest first.
    pub async fn runs(&self, batch_id: i64) -> Result<Vec<RunRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {RUN_COLS} FROM runs WHERE batch_id = ? ORDER BY id"
        ))
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn run(&self, run_id: i64) -> Result<Option<RunRow>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {RUN_COLS} FROM runs WHERE id = ?"))
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The steps of one run, in order.
    pub async fn run_steps(&self, run_id: i64) -> Result<Vec<StepRow>, StoreError> {
        let json: Option<String> = sqlx::query_scalar(&format!(
            "SELECT json_group_array(json_array({STEP_COLS}) ORDER BY seq) FROM steps WHERE run_id = ?"
        ))
        .bind(run_id)
        .fetch_one(&self.pool)
        .await?;
        super::imports::steps_from_json(json)
    }

    /// The steps of one kind in a run, in order, as the journal holds them.
    pub async fn run_steps_of(
        &self,
        run_id: i64,
        kind: crate::model::StepKind,
    ) -> Result<Vec<StepRow>, StoreError> {
        let rows: Vec<StepRecord> = sqlx::query_as(&format!(
            "SELECT {STEP_COLS} FROM steps WHERE run_id = ? AND kind = ? ORDER BY seq"
        ))
        .bind(run_id)
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(super::imports::step_row).collect()
    }

    /// Adds a run with its steps (numbered after the batch's last step),
    /// all `pending`, and audits it. Returns the run id.
    pub async fn insert_run(
        &self,
        batch_id: i64,
        kind: &str,
        actor: &str,
        options_json: &str,
        steps: &[StepRow],
    ) -> Result<i64, StoreError> {
        self.insert_run_with_keys(batch_id, kind, actor, options_json, steps, &[])
            .await
    }

    /// [`Store::insert_run`] that also brings new keys into the batch
    /// (`(fingerprint, sealed, masked)`, after its last key), in the same
    /// transaction: a run never exists without the keys its steps need.
    pub async fn insert_run_with_keys(
        &self,
        batch_id: i64,
        kind: &str,
        actor: &str,
        options_json: &str,
        steps: &[StepRow],
        keys: &[(String, String, String)],
    ) -> Result<i64, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (batch_id, kind, status, actor, options_json, created_at_ms) VALUES (?, ?, 'planned', ?, ?, ?) RETURNING id",
        )
        .bind(batch_id)
        .bind(kind)
        .bind(actor)
        .bind(options_json)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let last: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM steps WHERE batch_id = ?")
                .bind(batch_id)
                .fetch_one(&mut *tx)
                .await?;
        insert_steps_in(&mut tx, batch_id, run_id, Some(last + 1), steps).await?;
        for (fp, sealed, masked) in keys {
            sqlx::query(
                "INSERT INTO batch_keys (batch_id, position, fingerprint, sealed, masked)
                 VALUES (?1, (SELECT COALESCE(MAX(position), 0) + 1 FROM batch_keys WHERE batch_id = ?1), ?2, ?3, ?4)",
            )
            .bind(batch_id)
            .bind(fp)
            .bind(sealed)
            .bind(masked)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(&format!(
            "UPDATE batches SET {} WHERE id = ?",
            super::imports::SUMMARY_SET
        ))
        .bind(batch_id)
        .execute(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            actor,
            &format!("batch.{kind}"),
            &crate::model::batch_target(batch_id),
            "planned",
            &format!("run {run_id}, {} steps", steps.len()),
        )
        .await?;
        tx.commit().await?;
        Ok(run_id)
    }

    /// Claims a run's lease for `owner` for `ttl_ms`. Free, expired, ours,
    /// or held by an owner `is_dead` says is gone: taken. Else busy.
    pub async fn claim_run(
        &self,
        run_id: i64,
        owner: &str,
        ttl_ms: i64,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<Claim, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let cur: Option<(Option<String>, Option<i64>, String)> = sqlx::query_as(
            "SELECT r.lease_owner, r.lease_until_ms, b.status FROM runs r JOIN batches b ON b.id = r.batch_id WHERE r.id = ?",
        )
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((holder, until, batch_status)) = cur else {
            return Err(StoreError::Corrupt(format!("run {run_id} does not exist")));
        };
        // Checked in the claim's own transaction: a discard and a claim
        // cannot both win.
        if batch_status == "discarded" {
            return Ok(Claim::Discarded);
        }
        if let (Some(h), Some(u)) = (&holder, until) {
            if h != owner && u > now && !is_dead(h) {
                return Ok(Claim::Busy {
                    owner: h.clone(),
                    until_ms: u,
                });
            }
        }
        sqlx::query(
            "UPDATE runs SET status = 'running', lease_owner = ?, lease_until_ms = ?, finished_at_ms = NULL WHERE id = ?",
        )
        .bind(owner)
        .bind(now + ttl_ms)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Claim::Held)
    }

    /// Discards a planned batch in one transaction: only while no run of it
    /// has started or is held, its pending steps become `skipped`, its apply
    /// run ends, its sealed keys are deleted, and the audit entry is written
    /// with it. `false`: the batch was not (or no longer) discardable.
    pub async fn discard_batch(
        &self,
        batch_id: i64,
        actor: &str,
        target: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE batches SET status = 'discarded', updated_at_ms = ? WHERE id = ? AND status = 'planned'
             AND NOT EXISTS (SELECT 1 FROM runs WHERE batch_id = ? AND (status <> 'planned' OR lease_owner IS NOT NULL))",
        )
        .bind(now)
        .bind(batch_id)
        .bind(batch_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE steps SET state = 'skipped', response_json = ?, finished_at_ms = ? WHERE batch_id = ? AND state = 'pending'",
        )
        .bind(format!("discarded before apply: {reason}"))
        .bind(now)
        .bind(batch_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE runs SET status = 'done', finished_at_ms = ? WHERE batch_id = ? AND status = 'planned'")
            .bind(now)
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM batch_keys WHERE batch_id = ?")
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "UPDATE batches SET {} WHERE id = ?",
            super::imports::SUMMARY_SET
        ))
        .bind(batch_id)
        .execute(&mut *tx)
        .await?;
        audit_in(&mut tx, actor, "batch.discard", target, "ok", reason).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Extends a held lease; `false` when another owner took it.
    pub async fn renew_lease(
        &self,
        run_id: i64,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE runs SET lease_until_ms = ? WHERE id = ? AND lease_owner = ?")
            .bind(now_ms() + ttl_ms)
            .bind(run_id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ends a run and releases its lease.
    pub async fn finish_run(
        &self,
        run_id: i64,
        owner: &str,
        status: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET status = ?, lease_owner = NULL, lease_until_ms = NULL, finished_at_ms = ? WHERE id = ? AND (lease_owner = ? OR lease_owner IS NULL)",
        )
        .bind(status)
        .bind(now_ms())
        .bind(run_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs left `running` by a process that is gone (lease expired, or its
    /// owner `is_dead`) end `failed`, and so does their batch; other
    /// processes' live runs are left alone. Returns how many.
    pub async fn mark_interrupted_runs(
        &self,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        type Running = (i64, i64, String, Option<String>, Option<i64>);
        let rows: Vec<Running> = sqlx::query_as(
            "SELECT r.id, r.batch_id, r.kind, r.lease_owner, r.lease_until_ms FROM runs r WHERE r.status = 'running'",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut n = 0;
        for (run_id, batch_id, kind, owner, until) in rows {
            let gone = until.is_none_or(|u| u <= now) || owner.as_deref().is_none_or(&is_dead);
            if !gone {
                continue;
            }
            n += 1;
            sqlx::query("UPDATE runs SET status = 'failed', lease_owner = NULL, lease_until_ms = NULL, finished_at_ms = ? WHERE id = ?")
                .bind(now)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            let status = if kind == "rollback" {
                "rollback_failed"
            } else {
                "failed"
            };
            sqlx::query(&format!("UPDATE batches SET status = ?, updated_at_ms = ?, {} WHERE id = ? AND status IN ('running', 'rolling_back')", super::imports::SUMMARY_SET))
                .bind(status)
                .bind(now)
                .bind(batch_id)
                .execute(&mut *tx)
                .await?;
            audit_in(
                &mut tx,
                "system",
                &format!("batch.{kind}"),
                &crate::model::batch_target(batch_id),
                "interrupted",
                "the process running it stopped; run it again to resume from the journal",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// A step's result, its ledger change and its access-key change in one
    /// transaction: a crash leaves all of them or none.
    pub async fn finish_step(
        &self,
        batch_id: i64,
        seq: i64,
        u: StepUpdate,
        ledger: Option<LedgerWrite>,
        access: Option<AccessWrite>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.group.write(move |tx| Box::pin(async move {
        update_step_in(tx, batch_id, seq, &u).await?;
        match ledger {
            Some(LedgerWrite::Record(e)) => {
                record_ledger_in(tx, std::slice::from_ref(&*e), now).await?;
            }
            Some(LedgerWrite::Status { ledger_id, status }) => {
                sqlx::query("UPDATE ledger SET status = ?, updated_at_ms = ? WHERE id = ?")
                    .bind(status)
                    .bind(now)
                    .bind(ledger_id)
                    .execute(&mut **tx)
                    .await?;
            }
            None => {}
        }
        match access {
            Some(AccessWrite::Put {
                host_id,
                group,
                remote_id,
                sealed,
                masked,
            }) => {
                sqlx::query(
                    "INSERT INTO access_keys (host_id, group_name, remote_id, sealed, masked) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT (host_id, group_name) DO UPDATE SET remote_id = excluded.remote_id, sealed = excluded.sealed, masked = excluded.masked",
                )
                .bind(host_id)
                .bind(group)
                .bind(remote_id)
                .bind(sealed)
                .bind(masked)
                .execute(&mut **tx)
                .await?;
            }
            Some(AccessWrite::Delete { host_id, group }) => {
                sqlx::query("DELETE FROM access_keys WHERE host_id = ? AND group_name = ?")
                    .bind(host_id)
                    .bind(group)
                    .execute(&mut **tx)
                    .await?;
            }
            None => {}
        }
            Ok(())
        }))
        .await
    }

    /// Records several steps' successes in one write (a batch create's
    /// accounts): each step as `finish_step` would, their ledger records in
    /// one statement. All or none: when one fails (a key that went live
    /// elsewhere meanwhile), nothing is written and the error is returned,
    /// for the caller to record them one by one (each then with its own
    /// outcome).
    pub async fn finish_steps(
        &self,
        batch_id: i64,
        done: Vec<(i64, StepUpdate, Option<LedgerEntry>)>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.group
            .write(move |tx| {
                Box::pin(async move {
                    let mut ledger = Vec::with_capacity(done.len());
                    for (seq, u, l) in done {
                        update_step_in(tx, batch_id, seq, &u).await?;
                        ledger.extend(l);
                    }
                    record_ledger_in(tx, &ledger, now).await
                })
            })
            .await
    }

    /// Marks a check step `sent` without waiting for the commit: a check
    /// writes nothing on the host, so a mark lost in a crash costs nothing
    /// (the check runs again), and the step's outcome, written after it,
    /// commits after it (the queue keeps order).
    pub fn mark_check_sent(&self, batch_id: i64, seq: i64) {
        let u = StepUpdate {
            state: Some(crate::model::StepState::Sent),
            error: Some(String::new()),
            error_kind: Some(String::new()),
            ..Default::default()
        };
        self.group.enqueue(move |tx| {
            Box::pin(async move { update_step_in(tx, batch_id, seq, &u).await })
        });
    }

    /// Marks steps `sent` in one transaction (one statement for them all),
    /// stamping the batch create's key on them. Account steps whose key
    /// another batch on the same host already imported (live ledger row) or
    /// is sending right now are not marked: they are returned, in the order
    /// given, with the batch that has them, for the caller to skip. (The
    /// write lock makes this check-and-mark atomic across processes.)
    pub async fn mark_sent(
        &self,
        batch_id: i64,
        seqs: &[i64],
        chunk_key: Option<&str>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let now = now_ms();
        let seqs = seqs.to_vec();
        let chunk_key = chunk_key.map(str::to_string);
        self.group
            .write(move |tx| {
                Box::pin(async move {
                    let list = serde_json::to_string(&seqs).expect("numbers serialise");
                    let marked: Vec<i64> = sqlx::query_scalar(&format!(
                        "UPDATE steps AS s SET state = 'sent', error = '', error_kind = '',
                            chunk_key = COALESCE(?, chunk_key), started_at_ms = COALESCE(started_at_ms, ?)
                         WHERE s.batch_id = ? AND s.seq IN (SELECT value FROM json_each(?))
                           AND (s.kind <> 'account' OR ({TAKEN_BY}) IS NULL)
                         RETURNING seq"
                    ))
                    .bind(chunk_key.as_deref())
                    .bind(now)
                    .bind(batch_id)
                    .bind(&list)
                    .fetch_all(&mut **tx)
                    .await?;
                    if marked.len() == seqs.len() {
                        return Ok(Vec::new());
                    }
                    // Some were not marked: which batch has their key.
                    let others: HashMap<i64, Option<i64>> = sqlx::query_as(&format!(
                        "SELECT s.seq, ({TAKEN_BY}) FROM steps s
                          WHERE s.batch_id = ? AND s.seq IN (SELECT value FROM json_each(?))
                            AND s.kind = 'account'"
                    ))
                    .bind(batch_id)
                    .bind(&list)
                    .fetch_all(&mut **tx)
                    .await?
                    .into_iter()
                    .collect();
                    let marked: HashSet<i64> = marked.into_iter().collect();
                    Ok(seqs
                        .iter()
                        .filter(|seq| !marked.contains(seq))
                        .filter_map(|seq| Some((*seq, (*others.get(seq)?)?)))
                        .collect())
                })
            })
            .await
    }

    /// The steps of a batch that were sent in one batch create.
    pub async fn chunk_steps(
        &self,
        batch_id: i64,
        chunk_key: &str,
    ) -> Result<Vec<StepRow>, StoreError> {
        let rows: Vec<StepRecord> = sqlx::query_as(&format!(
            "SELECT {STEP_COLS} FROM steps WHERE batch_id = ? AND chunk_key = ? ORDER BY seq"
        ))
        .bind(batch_id)
        .bind(chunk_key)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(super::imports::step_row).collect()
    }

    /// The ledger objects a batch uses (any status), with the other live
    /// batches that use them too.
    pub async fn ledger_for_batch(&self, batch_id: i64) -> Result<Vec<LedgerRow>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            l: LedgerRecord,
            /// `id:status,id:status` of the other live batches using it.
            others: Option<String>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT l.id, l.host_id, l.kind, l.remote_id, l.batch_id, l.provider_key, l.fingerprint, l.marker,
                    l.status, l.desired_json, l.observed_digest, r.role,
                    (SELECT GROUP_CONCAT(b.id || ':' || b.status) FROM ledger_refs x JOIN batches b ON b.id = x.batch_id
                      WHERE x.ledger_id = l.id AND x.batch_id <> r.batch_id
                        AND b.status NOT IN ('rolled_back', 'planned')) AS others
             FROM ledger l JOIN ledger_refs r ON r.ledger_id = l.id
             WHERE r.batch_id = ? ORDER BY l.id",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut others: Vec<(i64, String)> = r
                    .others
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|p| {
                        let (id, st) = p.split_once(':')?;
                        Some((id.parse().ok()?, st.to_string()))
                    })
                    .collect();
                others.sort();
                r.l.into_row(others)
            })
            .collect())
    }

    /// How many of the batch's accounts whose test failed are still live,
    /// and how many of those its newest pause run left unschedulable. Read
    /// from the failed tests through the live-account index (from the
    /// batch's ledger refs it read every account's ledger row: 3.8 ms for a
    /// batch of 5,000 keys on every batch page view).
    pub async fn failed_live_accounts(&self, batch_id: i64) -> Result<(i64, i64), StoreError> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(
                 (SELECT json_extract(pr.options_json, '$.schedulable')
                  FROM steps s INDEXED BY steps_fingerprint JOIN runs pr ON pr.id = s.run_id
                  WHERE s.fingerprint = l.fingerprint AND s.batch_id = ?1
                    AND s.kind = 'pause' AND s.state = 'done'
                  ORDER BY s.seq DESC LIMIT 1) = 0), 0)
             FROM batches b
             JOIN ledger l ON l.host_id = b.host_id AND l.provider_key = b.provider_key
             JOIN ledger_refs r ON r.ledger_id = l.id AND r.batch_id = b.id
             WHERE b.id = ?1 AND l.kind = 'account' AND l.status = 'active'
               AND l.fingerprint IN (SELECT fingerprint FROM steps
                                     WHERE batch_id = ?1 AND kind = 'account_test' AND state = 'failed')",
        )
        .bind(batch_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Every live ledger object on a host (tests and drift).
    pub async fn live_ledger(&self, host_id: i64) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kind, remote_id FROM ledger WHERE host_id = ? AND status = 'active' ORDER BY id",
        )
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A page of a host's ledger accounts, newest first (`before`: a ledger
    /// id cursor), those whose key mask contains `q` or whose fingerprint
    /// starts with it; with how many match and how many there are. The
    /// per-account look-ups go through `steps_fingerprint`: left to itself
    /// the planner walks the batch's whole journal per account (10 s at
    /// 3,000 keys, 30 ms with the index).
    pub async fn host_accounts(
        &self,
        host_id: i64,
        q: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<HostAccountRow>, i64, i64), StoreError> {
        const MATCH: &str = "(?2 = '' OR instr(lower(COALESCE(k.masked, '')), lower(?2)) > 0 OR l.fingerprint LIKE ?2 || '%')";
        let rows: Vec<HostAccountRow> = sqlx::query_as(&format!(
            "SELECT l.id, l.remote_id, l.batch_id, l.provider_key, l.fingerprint, k.masked,
                    COALESCE(json_extract(l.desired_json, '$.platform'), json_extract(b.plan_head, '$.platform')) AS platform,
                    l.status, l.created_at_ms,
                    t.state AS test_state, t.finished_at_ms AS test_at_ms, t.error AS test_error,
                    json_extract(pr.options_json, '$.schedulable') AS schedulable, p.finished_at_ms AS schedulable_at_ms
             FROM ledger l
             LEFT JOIN batches b ON b.id = l.batch_id
             LEFT JOIN batch_keys k ON k.batch_id = l.batch_id AND k.fingerprint = l.fingerprint
             LEFT JOIN steps t ON t.id = (SELECT s.id FROM steps s INDEXED BY steps_fingerprint WHERE s.fingerprint = l.fingerprint AND s.batch_id = l.batch_id
                                           AND s.kind = 'account_test' ORDER BY s.seq DESC LIMIT 1)
             LEFT JOIN steps p ON p.id = (SELECT s.id FROM steps s INDEXED BY steps_fingerprint WHERE s.fingerprint = l.fingerprint AND s.batch_id = l.batch_id
                                           AND s.kind = 'pause' AND s.state = 'done' ORDER BY s.seq DESC LIMIT 1)
             LEFT JOIN runs pr ON pr.id = p.run_id
             WHERE l.host_id = ?1 AND l.kind = 'account' AND (?3 IS NULL OR l.id < ?3) AND {MATCH}
             ORDER BY l.id DESC LIMIT ?4"
        ))
        .bind(host_id)
        .bind(q)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let (matched, total): (i64, i64) = sqlx::query_as(&format!(
            "SELECT COALESCE(SUM({MATCH}), 0), COUNT(*) FROM ledger l
             LEFT JOIN batch_keys k ON k.batch_id = l.batch_id AND k.fingerprint = l.fingerprint
             WHERE l.host_id = ?1 AND l.kind = 'account'"
        ))
        .bind(host_id)
        .bind(q)
        .fetch_one(&self.pool)
        .await?;
        Ok((rows, matched, total))
    }

    /// Records that a batch uses an existing ledger object (a reused group).
    pub async fn ledger_add_ref(
        &self,
        host_id: i64,
        kind: &str,
        remote_id: &str,
        batch_id: i64,
        role: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO ledger_refs (ledger_id, batch_id, role)
             SELECT id, ?, ? FROM ledger WHERE host_id = ? AND kind = ? AND remote_id = ?
             ON CONFLICT DO NOTHING",
        )
        .bind(batch_id)
        .bind(role)
        .bind(host_id)
        .bind(kind)
        .bind(remote_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

impl Store {
    /// A sealed keyring entry.
    pub async fn keyring(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT sealed FROM keyring WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores a keyring entry; `only_if_absent` keeps an existing one (two
    /// processes starting at once agree on the first one stored).
    pub async fn put_keyring(
        &self,
        name: &str,
        sealed: &str,
        only_if_absent: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let sql = if only_if_absent {
            "INSERT INTO keyring (name, sealed, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING"
        } else {
            "INSERT INTO keyring (name, sealed, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at_ms = excluded.updated_at_ms"
        };
        sqlx::query(sql)
            .bind(name)
            .bind(sealed)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Every live ledger object on a host, with what we applied.
    pub async fn live_ledger_rows(&self, host_id: i64) -> Result<Vec<LedgerRow>, StoreError> {
        let rows: Vec<LedgerRecord> = sqlx::query_as(
            "SELECT id, host_id, kind, remote_id, batch_id, provider_key, fingerprint, marker,
                    status, desired_json, observed_digest, 'created' AS role
             FROM ledger WHERE host_id = ? AND status = 'active' ORDER BY id",
        )
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.into_row(Vec::new())).collect())
    }

    /// Sets a ledger object's status (`gone`: forgotten after drift).
    pub async fn ledger_set_status(&self, ledger_id: i64, status: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE ledger SET status = ?, updated_at_ms = ? WHERE id = ?")
            .bind(status)
            .bind(now_ms())
            .bind(ledger_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces what we want of a ledger object (a drift finding adopted).
    pub async fn ledger_set_desired(
        &self,
        ledger_id: i64,
        desired_json: &str,
        observed_digest: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE ledger SET desired_json = ?, observed_digest = ?, updated_at_ms = ? WHERE id = ?")
            .bind(desired_json)
            .bind(observed_digest)
            .bind(now_ms())
            .bind(ledger_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a drift check's findings; returns its id.
    pub async fn insert_drift_report(
        &self,
        host_id: i64,
        actor: &str,
        open_count: i64,
        batch_open: &std::collections::BTreeMap<i64, i64>,
        report_json: &str,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO drift_reports (host_id, at_ms, actor, open_count, batch_open, report_json) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(host_id)
        .bind(now_ms())
        .bind(actor)
        .bind(open_count)
        .bind(serde_json::to_string(batch_open).expect("a map of numbers serialises"))
        .bind(report_json)
        .fetch_one(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            actor,
            "host.drift_check",
            &format!("host-id:{host_id}"),
            "ok",
            &format!("{open_count} open finding(s)"),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The newest drift check of a host.
    pub async fn latest_drift_report(
        &self,
        host_id: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, report_json FROM drift_reports WHERE host_id = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(host_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Open findings of each host's newest check: (host id, count).
    pub async fn drift_open_counts(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT d.host_id, d.open_count FROM drift_reports d
             WHERE d.id = (SELECT MAX(id) FROM drift_reports x WHERE x.host_id = d.host_id)",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Open findings per batch in each host's newest check:
    /// host id → (batch id → count). A host never checked is absent.
    pub async fn drift_open_by_batch(
        &self,
    ) -> Result<std::collections::HashMap<i64, std::collections::HashMap<i64, i64>>, StoreError>
    {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT d.host_id, d.batch_open FROM drift_reports d
             WHERE d.id IN (SELECT MAX(id) FROM drift_reports GROUP BY host_id)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(h, j)| {
                let m: std::collections::HashMap<String, i64> = serde_json::from_str(&j)
                    .map_err(|e| StoreError::Corrupt(format!("drift batch counts: {e}")))?;
                Ok((
                    h,
                    m.into_iter()
                        .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
                        .collect(),
                ))
            })
            .collect()
    }

    /// Ignored findings of a host still in force: key → (reason, until, by).
    pub async fn drift_ignores(
        &self,
        host_id: i64,
    ) -> Result<std::collections::HashMap<String, (String, i64, String)>, StoreError> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT finding_key, reason, until_ms, actor FROM drift_ignores WHERE host_id = ? AND until_ms > ?",
        )
        .bind(host_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(k, r, u, a)| (k, (r, u, a)))
            .collect())
    }

    pub async fn put_drift_ignore(
        &self,
        host_id: i64,
        key: &str,
        reason: &str,
        until_ms: i64,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO drift_ignores (host_id, finding_key, reason, until_ms, actor, at_ms) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (host_id, finding_key) DO UPDATE SET reason = excluded.reason, until_ms = excluded.until_ms, actor = excluded.actor, at_ms = excluded.at_ms",
        )
        .bind(host_id)
        .bind(key)
        .bind(reason)
        .bind(until_ms)
        .bind(actor)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            actor,
            "host.drift_ignore",
            &format!("host-id:{host_id}"),
            key,
            reason,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Records ledger entries (or re-activates them) with this batch's use of
/// each, a few hundred per statement, inside a caller's transaction. A key
/// live in another account fails it with a conflict.
async fn record_ledger_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    entries: &[LedgerEntry],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in entries.chunks(LEDGER_ROWS) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO ledger (host_id, kind, remote_id, batch_id, pack_id, provider_key, fingerprint, marker, spec_json, desired_json, observed_digest, status, created_at_ms, updated_at_ms) ",
        );
        q.push_values(chunk, |mut r, e| {
            r.push_bind(e.host_id)
                .push_bind(e.kind.clone())
                .push_bind(e.remote_id.clone())
                .push_bind(e.batch_id)
                .push_bind(e.pack_id.clone())
                .push_bind(e.provider_key.clone())
                .push_bind(e.fingerprint.clone())
                .push_bind(e.marker.clone())
                .push_bind(e.spec_json.clone())
                .push_bind(e.desired_json.clone())
                .push_bind(e.observed_digest.clone())
                .push_bind("active")
                .push_bind(now)
                .push_bind(now);
        });
        q.push(
            " ON CONFLICT (host_id, kind, remote_id) DO UPDATE SET
                status = 'active', desired_json = excluded.desired_json,
                observed_digest = excluded.observed_digest, updated_at_ms = excluded.updated_at_ms
              RETURNING id, kind, remote_id",
        );
        let ids: HashMap<(String, String), i64> = q
            .build_query_as::<(i64, String, String)>()
            .fetch_all(&mut **tx)
            .await
            .map_err(|err| super::conflict(err, "a live account for this key"))?
            .into_iter()
            .map(|(id, kind, remote)| ((kind, remote), id))
            .collect();
        // (A row the insert did not return has no id: the NOT NULL
        // constraint then fails the write.)
        let mut refs = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO ledger_refs (ledger_id, batch_id, role) ",
        );
        refs.push_values(chunk, |mut r, e| {
            r.push_bind(ids.get(&(e.kind.clone(), e.remote_id.clone())).copied())
                .push_bind(e.batch_id)
                .push_bind(e.role.clone());
        });
        refs.push(" ON CONFLICT DO NOTHING");
        refs.build().execute(&mut **tx).await?;
    }
    Ok(())
}
