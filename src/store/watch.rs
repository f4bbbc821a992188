//! Keep watching: schedules and their leases, job runs, readiness checks,
//! key balances, webhooks, incidents, the delivery outbox and retention.

use super::{audit_in, conflict, Store, StoreError};
use sqlx::FromRow;

/// A scheduled job as stored.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct ScheduleRow {
    pub job_key: String,
    pub host_id: Option<i64>,
    pub job: String,
    pub interval_s: i64,
    pub enabled: bool,
    pub next_due_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
    pub last_started_ms: Option<i64>,
    pub last_finished_ms: Option<i64>,
    pub last_outcome: Option<String>,
    pub last_detail: String,
}

const SCHEDULE_COLS: &str =
    "job_key, host_id, job, interval_s, enabled, next_due_ms, lease_owner, lease_until_ms,
     last_started_ms, last_finished_ms, last_outcome, last_detail";

/// One run of a job.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct JobRunRow {
    pub id: i64,
    pub job_key: String,
    pub host_id: Option<i64>,
    pub job: String,
    pub owner: String,
    pub due_ms: i64,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub outcome: Option<String>,
    pub detail: String,
}

/// A readiness check as stored.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct CheckRow {
    pub id: i64,
    pub batch_id: i64,
    pub host_id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub outcome: String,
    pub access_before: String,
    pub access_after: String,
    pub detail: String,
    pub duration_ms: i64,
    pub evidence_json: String,
}

/// A batch a re-check applies to, with what the check needs of its plan.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct WatchTarget {
    pub id: i64,
    pub pack_version_id: i64,
    pub provider_key: String,
    pub access_status: String,
    pub ready_access: Option<String>,
    pub group_name: Option<String>,
    pub smoke_model: Option<String>,
    pub allowlist_host: bool,
    /// The host platform its accounts use (`deepseek`, `kimi`, `openai`, …).
    pub platform: Option<String>,
}

/// What a re-check needs of a batch and its plan, read in SQL.
const WATCH_COLS: &str = "id, pack_version_id, provider_key, access_status, ready_access,
     json_extract(plan_head, '$.group_name') AS group_name,
     json_extract(plan_head, '$.smoke_model') AS smoke_model,
     COALESCE(json_extract(plan_head, '$.shape.allowlist_field'), '') = 'model_allowlist' AS allowlist_host,
     json_extract(plan_head, '$.platform') AS platform";

/// A key's latest balance reading.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct BalanceRow {
    pub batch_id: i64,
    pub fingerprint: String,
    pub state: String,
    pub amount: Option<f64>,
    pub currency: Option<String>,
    pub detail: String,
    pub at_ms: i64,
    /// The key as shown (read back only; not written).
    pub masked: String,
}

/// A webhook as stored (its secret sealed).
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct WebhookRow {
    pub id: i64,
    pub name: String,
    pub url_sealed: String,
    pub url_masked: String,
    pub format: String,
    pub kinds: String,
    pub secret_sealed: String,
    pub secret_given: bool,
    pub enabled: bool,
    pub created_at_ms: i64,
    pub actor: String,
}

/// An incident.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct IncidentRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub host_id: Option<i64>,
    pub batch_id: Option<i64>,
    pub title: String,
    pub detail: String,
    pub opened_at_ms: i64,
    pub updated_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
}

const INCIDENT_COLS: &str =
    "id, kind, subject, host_id, batch_id, title, detail, opened_at_ms, updated_at_ms, resolved_at_ms";

/// A delivery in the outbox.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct DeliveryRow {
    pub id: i64,
    pub webhook_id: i64,
    pub incident_id: Option<i64>,
    pub event: String,
    pub payload_json: String,
    pub state: String,
    pub attempts: i64,
    pub next_at_ms: i64,
    pub last_status: Option<i64>,
    pub last_error: String,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

const DELIVERY_COLS: &str =
    "id, webhook_id, incident_id, event, payload_json, state, attempts, next_at_ms,
     last_status, last_error, created_at_ms, finished_at_ms";

/// What a condition check found, for [`Store::observe_incident`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentChange {
    /// A new incident opened; its alert is in the outbox.
    Opened(i64),
    /// The open incident was brought up to date; nothing was sent.
    Ongoing(i64),
    /// The open incident closed; its resolved message is in the outbox.
    Resolved(i64),
    /// Nothing open, nothing wrong.
    Quiet,
}

/// A new webhook.
pub struct NewWebhook<'a> {
    pub name: &'a str,
    pub url_sealed: &'a str,
    pub url_masked: &'a str,
    pub format: &'a str,
    pub kinds: &'a str,
    pub secret_sealed: &'a str,
    pub secret_given: bool,
}

impl Store {
    /// Adds the schedule rows a host or the product lacks: `(job_key,
    /// host_id, job, interval_s, first_due_ms)`. Existing rows (and what an
    /// operator set in them) are left alone.
    pub async fn ensure_schedules(
        &self,
        rows: &[(String, Option<i64>, &str, i64, i64)],
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for (key, host, job, interval, due) in rows {
            added += sqlx::query(
                "INSERT OR IGNORE INTO schedules (job_key, host_id, job, interval_s, next_due_ms) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(key)
            .bind(host)
            .bind(job)
            .bind(interval)
            .bind(due)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Every schedule row, or a host's.
    pub async fn schedules(&self, host_id: Option<i64>) -> Result<Vec<ScheduleRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SCHEDULE_COLS} FROM schedules WHERE (?1 IS NULL OR host_id = ?1) ORDER BY job_key"
        ))
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Enabled jobs due at `now_ms` (held or not), soonest first.
    pub async fn due_schedules(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<ScheduleRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SCHEDULE_COLS} FROM schedules WHERE enabled = 1 AND next_due_ms <= ? ORDER BY next_due_ms LIMIT ?"
        ))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes the lease of a due job if it is still as `seen` (same holder,
    /// still due): compare-and-set in one UPDATE, so of several processes
    /// exactly one wins. Records the run and returns its id.
    pub async fn claim_schedule(
        &self,
        seen: &ScheduleRow,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let took = sqlx::query(
            "UPDATE schedules SET lease_owner = ?, lease_until_ms = ?, last_started_ms = ?
             WHERE job_key = ? AND enabled = 1 AND next_due_ms = ? AND lease_owner IS ?",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(&seen.job_key)
        .bind(seen.next_due_ms)
        .bind(&seen.lease_owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if took == 0 {
            return Ok(None);
        }
        // A run whose holder died before finishing ends here, said so.
        sqlx::query(
            "UPDATE job_runs SET finished_ms = ?, outcome = 'interrupted', detail = 'its process stopped before it finished'
             WHERE job_key = ? AND finished_ms IS NULL",
        )
        .bind(now_ms)
        .bind(&seen.job_key)
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO job_runs (job_key, host_id, job, owner, due_ms, started_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&seen.job_key)
        .bind(seen.host_id)
        .bind(&seen.job)
        .bind(owner)
        .bind(seen.next_due_ms)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Extends a running job's lease, if it is still `owner`'s.
    pub async fn renew_schedule_lease(
        &self,
        job_key: &str,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE schedules SET lease_until_ms = ? WHERE job_key = ? AND lease_owner = ?",
        )
        .bind(lease_until_ms)
        .bind(job_key)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Ends a run: releases the lease (if still ours), sets the next due
    /// time and records the outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_schedule(
        &self,
        job_key: &str,
        owner: &str,
        run_id: i64,
        now_ms: i64,
        next_due_ms: i64,
        outcome: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE schedules SET lease_owner = NULL, lease_until_ms = NULL, next_due_ms = ?,
                 last_finished_ms = ?, last_outcome = ?, last_detail = ?
             WHERE job_key = ? AND lease_owner = ?",
        )
        .bind(next_due_ms)
        .bind(now_ms)
        .bind(outcome)
        .bind(detail)
        .bind(job_key)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE job_runs SET finished_ms = ?, outcome = ?, detail = ? WHERE id = ?")
            .bind(now_ms)
            .bind(outcome)
            .bind(detail)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a host job's interval and switch, audited. The next run is due
    /// one interval from `now_ms` (or now, when it is switched back on).
    pub async fn set_schedule(
        &self,
        actor: &str,
        job_key: &str,
        interval_s: i64,
        enabled: bool,
        next_due_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE schedules SET interval_s = ?, enabled = ?, next_due_ms = MIN(next_due_ms, ?) WHERE job_key = ?",
        )
        .bind(interval_s)
        .bind(enabled)
        .bind(next_due_ms)
        .bind(job_key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            audit_in(
                &mut tx,
                actor,
                "host.schedule",
                job_key,
                "ok",
                &format!(
                    "every {interval_s} s, {}",
                    if enabled { "on" } else { "off" }
                ),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Runs of a job (or of all), newest first.
    pub async fn job_runs(
        &self,
        job_key: Option<&str>,
        limit: i64,
    ) -> Result<Vec<JobRunRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, job_key, host_id, job, owner, due_ms, started_ms, finished_ms, outcome, detail
             FROM job_runs WHERE (?1 IS NULL OR job_key = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(job_key)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Batches of a host a re-check applies to (once proven ready, still
    /// standing: not rolled back or being rolled back), with what the check
    /// needs of each plan, read in SQL so the plans stay in the database.
    pub async fn watch_targets(&self, host_id: i64) -> Result<Vec<WatchTarget>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {WATCH_COLS} FROM batches WHERE host_id = ? AND ready_access IS NOT NULL
                   AND status IN ('succeeded', 'partially_succeeded') ORDER BY id"
        ))
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One batch as [`Store::watch_targets`] reads it (whatever its status).
    pub async fn watch_target(&self, batch_id: i64) -> Result<Option<WatchTarget>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {WATCH_COLS} FROM batches WHERE id = ?"))
                .bind(batch_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The last ready status a batch earned.
    pub async fn ready_access(&self, batch_id: i64) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT ready_access FROM batches WHERE id = ?")
                .bind(batch_id)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    /// Stores a readiness check and moves the batch's access status to
    /// `access_after` when it is still `access_before` (a concurrent apply
    /// wins), in one transaction with its audit entry.
    pub async fn insert_check(&self, c: &CheckRow) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE batches SET access_status = ?, updated_at_ms = ? WHERE id = ? AND access_status = ?",
        )
        .bind(&c.access_after)
        .bind(c.at_ms)
        .bind(c.batch_id)
        .bind(&c.access_before)
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO readiness_checks (batch_id, host_id, at_ms, actor, outcome, access_before, access_after, detail, duration_ms, evidence_json)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(c.batch_id)
        .bind(c.host_id)
        .bind(c.at_ms)
        .bind(&c.actor)
        .bind(&c.outcome)
        .bind(&c.access_before)
        .bind(&c.access_after)
        .bind(&c.detail)
        .bind(c.duration_ms)
        .bind(&c.evidence_json)
        .fetch_one(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            &c.actor,
            "batch.readiness_check",
            &format!("batch:{}", c.batch_id),
            &c.outcome,
            &format!("{} -> {}", c.access_before, c.access_after),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// One readiness check.
    pub async fn check_row(&self, id: i64) -> Result<Option<CheckRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, batch_id, host_id, at_ms, actor, outcome, access_before, access_after, detail, duration_ms, evidence_json
             FROM readiness_checks WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A batch's readiness checks, newest first.
    pub async fn checks(&self, batch_id: i64, limit: i64) -> Result<Vec<CheckRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, batch_id, host_id, at_ms, actor, outcome, access_before, access_after, detail, duration_ms, evidence_json
             FROM readiness_checks WHERE batch_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(batch_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Replaces the balance readings of keys, in one transaction.
    pub async fn put_balances(&self, rows: &[BalanceRow]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for b in rows {
            sqlx::query(
                "INSERT INTO key_balances (batch_id, fingerprint, state, amount, currency, detail, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (batch_id, fingerprint) DO UPDATE SET state = excluded.state, amount = excluded.amount,
                     currency = excluded.currency, detail = excluded.detail, at_ms = excluded.at_ms",
            )
            .bind(b.batch_id)
            .bind(&b.fingerprint)
            .bind(&b.state)
            .bind(b.amount)
            .bind(&b.currency)
            .bind(&b.detail)
            .bind(b.at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A batch's balance readings, in key order.
    pub async fn balances(&self, batch_id: i64) -> Result<Vec<BalanceRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kb.batch_id, kb.fingerprint, kb.state, kb.amount, kb.currency, kb.detail, kb.at_ms,
                    COALESCE(k.masked, '…') AS masked
             FROM key_balances kb LEFT JOIN batch_keys k ON k.batch_id = kb.batch_id AND k.fingerprint = kb.fingerprint
             WHERE kb.batch_id = ? ORDER BY k.position, kb.fingerprint",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Adds a webhook, audited.
    pub async fn insert_webhook(&self, actor: &str, w: &NewWebhook<'_>) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhooks (name, url_sealed, url_masked, format, kinds, secret_sealed, secret_given, created_at_ms, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(w.name)
        .bind(w.url_sealed)
        .bind(w.url_masked)
        .bind(w.format)
        .bind(w.kinds)
        .bind(w.secret_sealed)
        .bind(w.secret_given)
        .bind(super::now_ms())
        .bind(actor)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &format!("a webhook named {}", w.name)))?;
        audit_in(
            &mut tx,
            actor,
            "webhook.create",
            &format!("webhook:{id}"),
            "ok",
            &format!("name={} format={} kinds={}", w.name, w.format, w.kinds),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Every webhook.
    pub async fn webhooks(&self) -> Result<Vec<WebhookRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name, url_sealed, url_masked, format, kinds, secret_sealed, secret_given, enabled, created_at_ms, actor FROM webhooks ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// One webhook.
    pub async fn webhook(&self, id: i64) -> Result<Option<WebhookRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name, url_sealed, url_masked, format, kinds, secret_sealed, secret_given, enabled, created_at_ms, actor FROM webhooks WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Removes a webhook and its deliveries, audited.
    pub async fn delete_webhook(&self, actor: &str, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let name: Option<String> =
            sqlx::query_scalar("DELETE FROM webhooks WHERE id = ? RETURNING name")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(name) = &name {
            audit_in(
                &mut tx,
                actor,
                "webhook.delete",
                &format!("webhook:{id}"),
                "ok",
                &format!("name={name}"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(name.is_some())
    }

    /// Records what a condition check found and, in the same transaction,
    /// puts the alert (a new incident) or the resolved message (an open one
    /// that cleared) in the outbox of every enabled webhook that takes
    /// `kind`. `bad` is `Some((title, detail))` while the condition holds.
    #[allow(clippy::too_many_arguments)]
    pub async fn observe_incident(
        &self,
        kind: &str,
        subject: &str,
        host_id: Option<i64>,
        batch_id: Option<i64>,
        bad: Option<(&str, &str)>,
        now_ms: i64,
        payload: impl Fn(&IncidentRow, &str) -> String,
    ) -> Result<IncidentChange, StoreError> {
        let mut tx = self.begin_write().await?;
        let open: Option<IncidentRow> = sqlx::query_as(&format!(
            "SELECT {INCIDENT_COLS} FROM incidents WHERE kind = ? AND subject = ? AND resolved_at_ms IS NULL"
        ))
        .bind(kind)
        .bind(subject)
        .fetch_optional(&mut *tx)
        .await?;
        let (incident, event, change) = match (open, bad) {
            (None, None) => return Ok(IncidentChange::Quiet),
            (Some(i), Some((title, detail))) => {
                sqlx::query(
                    "UPDATE incidents SET title = ?, detail = ?, updated_at_ms = ? WHERE id = ?",
                )
                .bind(title)
                .bind(detail)
                .bind(now_ms)
                .bind(i.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(IncidentChange::Ongoing(i.id));
            }
            (None, Some((title, detail))) => {
                let i: IncidentRow = sqlx::query_as(&format!(
                    "INSERT INTO incidents (kind, subject, host_id, batch_id, title, detail, opened_at_ms, updated_at_ms)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {INCIDENT_COLS}"
                ))
                .bind(kind)
                .bind(subject)
                .bind(host_id)
                .bind(batch_id)
                .bind(title)
                .bind(detail)
                .bind(now_ms)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?;
                let id = i.id;
                (i, "firing", IncidentChange::Opened(id))
            }
            (Some(i), None) => {
                let i: IncidentRow = sqlx::query_as(&format!(
                    "UPDATE incidents SET resolved_at_ms = ?, updated_at_ms = ? WHERE id = ? RETURNING {INCIDENT_COLS}"
                ))
                .bind(now_ms)
                .bind(now_ms)
                .bind(i.id)
                .fetch_one(&mut *tx)
                .await?;
                let id = i.id;
                (i, "resolved", IncidentChange::Resolved(id))
            }
        };
        let body = payload(&incident, event);
        enqueue_in(&mut tx, kind, Some(incident.id), event, &body, now_ms).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Puts a one-off message (no incident: a version change) in the
    /// outbox of every enabled webhook that takes `kind`.
    pub async fn enqueue_notice(
        &self,
        kind: &str,
        payload_json: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = enqueue_in(&mut tx, kind, None, "notice", payload_json, now_ms).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Puts a test message in one webhook's outbox, due now.
    pub async fn enqueue_test(
        &self,
        actor: &str,
        webhook_id: i64,
        payload_json: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO deliveries (webhook_id, event, payload_json, next_at_ms, created_at_ms) VALUES (?, 'test', ?, ?, ?) RETURNING id",
        )
        .bind(webhook_id)
        .bind(payload_json)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            actor,
            "webhook.test",
            &format!("webhook:{webhook_id}"),
            "ok",
            &format!("delivery {id}"),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The batches of a host with an open incident of `kind`.
    pub async fn open_incident_batches(
        &self,
        kind: &str,
        host_id: i64,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT batch_id FROM incidents WHERE kind = ? AND host_id = ? AND batch_id IS NOT NULL AND resolved_at_ms IS NULL",
        )
        .bind(kind)
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Open incidents, oldest first; and the newest resolved ones.
    pub async fn incidents(&self, open: bool, limit: i64) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = if open {
            format!("SELECT {INCIDENT_COLS} FROM incidents WHERE resolved_at_ms IS NULL ORDER BY opened_at_ms LIMIT ?")
        } else {
            format!("SELECT {INCIDENT_COLS} FROM incidents WHERE resolved_at_ms IS NOT NULL ORDER BY id DESC LIMIT ?")
        };
        Ok(sqlx::query_as(&sql)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Takes the lease of pending deliveries due at `now_ms` (compare-and-
    /// set per row, as for schedules).
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let due: Vec<(i64, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT id, lease_owner, lease_until_ms FROM deliveries WHERE state = 'pending' AND next_at_ms <= ? ORDER BY next_at_ms LIMIT ?",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for (id, holder, until) in due {
            if let (Some(h), Some(u)) = (&holder, until) {
                if u > now_ms && !crate::ops::lease::is_dead(h) {
                    continue;
                }
            }
            let row: Option<DeliveryRow> = sqlx::query_as(&format!(
                "UPDATE deliveries SET lease_owner = ?, lease_until_ms = ?
                 WHERE id = ? AND state = 'pending' AND lease_owner IS ? RETURNING {DELIVERY_COLS}"
            ))
            .bind(owner)
            .bind(lease_until_ms)
            .bind(id)
            .bind(&holder)
            .fetch_optional(&self.pool)
            .await?;
            claimed.extend(row);
        }
        Ok(claimed)
    }

    /// Records an attempt: delivered, failed for good, or due again at
    /// `retry_at_ms`.
    pub async fn finish_delivery(
        &self,
        id: i64,
        status: Option<u16>,
        error: &str,
        outcome: DeliveryOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (state, next, finished) = match outcome {
            DeliveryOutcome::Delivered => ("delivered", now_ms, Some(now_ms)),
            DeliveryOutcome::Failed => ("failed", now_ms, Some(now_ms)),
            DeliveryOutcome::RetryAt(t) => ("pending", t, None),
        };
        sqlx::query(
            "UPDATE deliveries SET state = ?, attempts = attempts + 1, next_at_ms = ?, last_status = ?, last_error = ?,
                 finished_at_ms = ?, lease_owner = NULL, lease_until_ms = NULL WHERE id = ?",
        )
        .bind(state)
        .bind(next)
        .bind(status.map(i64::from))
        .bind(error)
        .bind(finished)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The delivery log, newest first, older than `before` (an id cursor).
    pub async fn deliveries(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One delivery.
    pub async fn delivery(&self, id: i64) -> Result<Option<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Retention: probes, checks, job runs and finished deliveries older
    /// than `cutoff_ms` are folded into per-day counts and deleted; each
    /// host keeps its newest probe and each batch its newest check
    /// whatever their age. Returns how many rows went.
    pub async fn prune_history(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut gone = 0;
        let folds = [
            (
                "probe",
                "SELECT host_id, at_ms / 86400000 AS day, SUM(status != 'failing'), SUM(status = 'failing')
                 FROM host_probes WHERE at_ms < ?1 AND id NOT IN (SELECT MAX(id) FROM host_probes GROUP BY host_id)
                 GROUP BY host_id, day",
                "DELETE FROM host_probes WHERE at_ms < ?1 AND id NOT IN (SELECT MAX(id) FROM host_probes GROUP BY host_id)",
            ),
            (
                "readiness",
                "SELECT host_id, at_ms / 86400000 AS day, SUM(outcome = 'ready'), SUM(outcome != 'ready')
                 FROM readiness_checks WHERE at_ms < ?1 AND id NOT IN (SELECT MAX(id) FROM readiness_checks GROUP BY batch_id)
                 GROUP BY host_id, day",
                "DELETE FROM readiness_checks WHERE at_ms < ?1 AND id NOT IN (SELECT MAX(id) FROM readiness_checks GROUP BY batch_id)",
            ),
            (
                "job",
                "SELECT COALESCE(host_id, 0), started_ms / 86400000 AS day, SUM(outcome = 'ok'), SUM(COALESCE(outcome, '') != 'ok')
                 FROM job_runs WHERE started_ms < ?1 AND finished_ms IS NOT NULL GROUP BY COALESCE(host_id, 0), day",
                "DELETE FROM job_runs WHERE started_ms < ?1 AND finished_ms IS NOT NULL",
            ),
        ];
        for (kind, fold, delete) in folds {
            let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(fold)
                .bind(cutoff_ms)
                .fetch_all(&mut *tx)
                .await?;
            for (host, day, ok, failed) in rows {
                sqlx::query(
                    "INSERT INTO history_counts (host_id, kind, day, ok, failed) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT (host_id, kind, day) DO UPDATE SET ok = ok + excluded.ok, failed = failed + excluded.failed",
                )
                .bind(host)
                .bind(kind)
                .bind(day)
                .bind(ok)
                .bind(failed)
                .execute(&mut *tx)
                .await?;
            }
            gone += sqlx::query(delete)
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        gone +=
            sqlx::query("DELETE FROM deliveries WHERE state != 'pending' AND created_at_ms < ?")
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(gone)
    }

    /// What retention kept of a host's history: `(kind, day, ok, failed)`.
    pub async fn history_counts(
        &self,
        host_id: i64,
    ) -> Result<Vec<(String, i64, i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kind, day, ok, failed FROM history_counts WHERE host_id = ? ORDER BY kind, day",
        )
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Failed,
    RetryAt(i64),
}

async fn enqueue_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    kind: &str,
    incident_id: Option<i64>,
    event: &str,
    payload_json: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    // `kinds` is comma-separated; match whole names.
    Ok(sqlx::query(
        "INSERT INTO deliveries (webhook_id, incident_id, event, payload_json, next_at_ms, created_at_ms)
         SELECT id, ?, ?, ?, ?, ? FROM webhooks WHERE enabled = 1 AND (',' || kinds || ',') LIKE ('%,' || ? || ',%')",
    )
    .bind(incident_id)
    .bind(event)
    .bind(payload_json)
    .bind(now_ms)
    .bind(now_ms)
    .bind(kind)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
