//! Reviews of batches, protected hosts and approvals.

use super::{audit_in, Store, StoreError};
use crate::model::{ApprovalView, ChangeSince, Decision, QueueItem, ReviewState, ReviewView};

/// A batch's review state as SQL over `batches` (NULL: not reviewed): the
/// newest decision, or `stale` when the batch's evidence changed after it
/// (`batches.evidence_rev`, kept by triggers). One expression for the list,
/// its filter and the queue.
pub(crate) const REVIEW_STATE_SQL: &str = "(SELECT CASE
        WHEN batches.evidence_rev > r.evidence_rev THEN 'stale' ELSE r.decision END
     FROM batch_reviews r WHERE r.batch_id = batches.id ORDER BY r.id DESC LIMIT 1)";

/// The statuses of a batch a reviewer decides on: it ran, and it is not
/// running or rolled back.
pub(crate) const REVIEWABLE_SQL: &str =
    "batches.status IN ('succeeded', 'partially_succeeded', 'failed')";

/// A decision to record.
#[derive(Debug, Clone)]
pub struct NewReview<'a> {
    pub batch_id: i64,
    pub decision: Decision,
    pub comment: &'a str,
    pub digest: &'a str,
    pub evidence_rev: i64,
    pub reviewer_id: i64,
    pub reviewer: &'a str,
    pub at_ms: i64,
    pub signature: &'a str,
}

type ReviewRow = (i64, i64, String, String, String, String, i64, String, i64);

type ApprovalRow = (i64, i64, String, String, i64, String, String, i64, i64);

impl Store {
    /// How many times the batch's evidence changed (see the migration):
    /// what a decision or a rollback approval is measured against.
    pub async fn evidence_rev(&self, batch_id: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT evidence_rev FROM batches WHERE id = ?")
                .bind(batch_id)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    /// Records a decision and audits it, in one transaction.
    pub async fn insert_review(&self, r: &NewReview<'_>) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO batch_reviews (batch_id, decision, comment, digest, evidence_rev,
                 reviewer_id, reviewer, created_at_ms, signature)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(r.batch_id)
        .bind(r.decision.as_str())
        .bind(r.comment)
        .bind(r.digest)
        .bind(r.evidence_rev)
        .bind(r.reviewer_id)
        .bind(r.reviewer)
        .bind(r.at_ms)
        .bind(r.signature)
        .fetch_one(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            r.reviewer,
            "batch.review",
            &crate::model::batch_target(r.batch_id),
            "ok",
            &format!(
                "{} (review #{id}, evidence {})",
                r.decision.as_str(),
                &r.digest[..16.min(r.digest.len())]
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A batch's decisions, newest first, each marked superseded and stale.
    pub async fn reviews(&self, batch_id: i64) -> Result<Vec<ReviewView>, StoreError> {
        let rev = self.evidence_rev(batch_id).await?;
        let rows: Vec<ReviewRow> = sqlx::query_as(
            "SELECT id, batch_id, decision, comment, digest, reviewer, created_at_ms, signature,
                    evidence_rev
             FROM batch_reviews WHERE batch_id = ? ORDER BY id DESC",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(ReviewView {
                    id: r.0,
                    batch_id: r.1,
                    decision: Decision::parse(&r.2)
                        .ok_or_else(|| StoreError::Corrupt(format!("decision {}", r.2)))?,
                    comment: r.3,
                    digest: r.4,
                    reviewer: r.5,
                    at_ms: r.6,
                    signature: r.7,
                    evidence_rev: r.8,
                    superseded: i > 0,
                    stale: rev > r.8,
                })
            })
            .collect()
    }

    /// Runs of a batch started or finished after `at_ms` (a re-run goes on
    /// in the apply run), and its diagnoses since, oldest first.
    pub async fn changes_since(
        &self,
        batch_id: i64,
        at_ms: i64,
    ) -> Result<Vec<ChangeSince>, StoreError> {
        let rows: Vec<(String, i64, String, String, i64)> = sqlx::query_as(
            "SELECT kind, id, actor, status, MAX(created_at_ms, COALESCE(finished_at_ms, 0)) AS at
             FROM runs WHERE batch_id = ?1 AND (created_at_ms > ?2 OR finished_at_ms > ?2)
             UNION ALL
             SELECT 'diagnosis', id, actor, 'done', at_ms FROM diagnoses WHERE batch_id = ?1 AND at_ms > ?2
             ORDER BY 5, 2",
        )
        .bind(batch_id)
        .bind(at_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ChangeSince {
                kind: r.0,
                id: r.1,
                actor: r.2,
                status: r.3,
                at_ms: r.4,
            })
            .collect())
    }

    /// Who planned or applied a batch (its author and every run's actor).
    pub async fn batch_actors(&self, batch_id: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT created_by FROM batches WHERE id = ?1
             UNION SELECT actor FROM runs WHERE batch_id = ?1",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Finished batches not reviewed yet, or whose newest decision went
    /// stale, oldest first (the longest waiting on top), at most `limit`;
    /// with how many there are in all.
    pub async fn review_queue(&self, limit: i64) -> Result<(Vec<QueueItem>, i64), StoreError> {
        let base = format!(
            "FROM (SELECT batches.id, h.name AS host_name, batches.provider_key, batches.status,
                          batches.created_by, batches.created_at_ms, {REVIEW_STATE_SQL} AS state
                   FROM batches JOIN hosts h ON h.id = batches.host_id
                   WHERE {REVIEWABLE_SQL}) q
             WHERE q.state IS NULL OR q.state = 'stale'"
        );
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {base}"))
            .fetch_one(&self.pool)
            .await?;
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT q.id, q.host_name, q.provider_key, q.status, q.created_by, q.created_at_ms, q.state,
                    (SELECT reviewer FROM batch_reviews WHERE batch_id = q.id ORDER BY id DESC LIMIT 1),
                    (SELECT created_at_ms FROM batch_reviews WHERE batch_id = q.id ORDER BY id DESC LIMIT 1)
             {base} ORDER BY q.id LIMIT ?"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok((
            rows.into_iter()
                .map(|r| QueueItem {
                    batch_id: r.0,
                    host_name: r.1,
                    provider_key: r.2,
                    status: r.3,
                    created_by: r.4,
                    created_at_ms: r.5,
                    state: if r.6.is_some() {
                        ReviewState::Stale
                    } else {
                        ReviewState::NotReviewed
                    },
                    last_reviewer: r.7,
                    last_at_ms: r.8,
                })
                .collect(),
            total,
        ))
    }

    /// Marks a host protected (or not) and audits it.
    pub async fn set_host_protected(
        &self,
        host_id: i64,
        protected: bool,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE hosts SET protected = ?, updated_at_ms = ? WHERE id = ?")
            .bind(protected)
            .bind(super::now_ms())
            .bind(host_id)
            .execute(&mut *tx)
            .await?;
        audit_in(
            &mut tx,
            actor,
            "host.protect",
            &format!("host:{host_id}"),
            "ok",
            if protected {
                "protected: applies and rollbacks need a second person's approval"
            } else {
                "no longer protected"
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an approval and audits it.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_approval(
        &self,
        batch_id: i64,
        purpose: &str,
        digest: &str,
        evidence_rev: i64,
        approver_id: i64,
        approver: &str,
        comment: &str,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO approvals (batch_id, purpose, digest, evidence_rev, approver_id, approver,
                 comment, created_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(batch_id)
        .bind(purpose)
        .bind(digest)
        .bind(evidence_rev)
        .bind(approver_id)
        .bind(approver)
        .bind(comment)
        .bind(super::now_ms())
        .fetch_one(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            approver,
            "batch.approve",
            &crate::model::batch_target(batch_id),
            "ok",
            &format!(
                "{purpose} approved (approval #{id}, digest {})",
                &digest[..16.min(digest.len())]
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A batch's approvals, newest first, with the approver's operator id;
    /// `valid` is left for the caller (it needs the plan's digest).
    pub async fn approvals(
        &self,
        batch_id: i64,
    ) -> Result<Vec<(ApprovalView, i64, i64)>, StoreError> {
        let rows: Vec<ApprovalRow> = sqlx::query_as(
            "SELECT id, batch_id, purpose, digest, evidence_rev, approver, comment, created_at_ms,
                    approver_id
             FROM approvals WHERE batch_id = ? ORDER BY id DESC",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    ApprovalView {
                        id: r.0,
                        batch_id: r.1,
                        purpose: r.2,
                        digest: r.3,
                        approver: r.5,
                        comment: r.6,
                        at_ms: r.7,
                        valid: false,
                    },
                    r.4,
                    r.8,
                )
            })
            .collect())
    }

    /// The stored plan of a batch, as written at plan time.
    pub async fn plan_json(&self, batch_id: i64) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT plan_json FROM batch_plans WHERE batch_id = ?")
                .bind(batch_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
