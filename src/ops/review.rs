//! Handover review and four eyes.
//!
//! A reviewer decides on a finished batch against the *evidence digest*
//! they saw: the SHA-256 of the canonical JSON of the batch as its evidence
//! bundle carries it (`batch`). A decision is signed by the installation's
//! key, never changed, and goes stale once the batch's evidence changes
//! after it (a re-run, a rollback, a repair, a pause, a readiness check
//! that moved its access, a diagnosis: `batches.evidence_rev`).
//!
//! On a protected host an apply needs an approval of the plan's digest by
//! someone other than its author, and a rollback an approval of the batch
//! as it stands (no change since) by someone other than who rolls it back.

use super::authz::{Denied, Operation, Principal};
use super::bundle::canonical_json;
use super::{Core, OpError};
use crate::model::{
    actor_username, batch_target, ApprovalView, BatchStatus, BatchView, Decision, FieldError,
    FourEyes, QueueItem, ReviewPanel, ReviewState, ReviewView,
};
use sha2::{Digest, Sha256};

/// The codes of refusals the core audits itself (four eyes, evidence that
/// changed under a reviewer): the pages do not audit them a second time.
pub const AUDITED_CODES: &[&str] = &[
    "review.own",
    "review.not_finished",
    "review.evidence_changed",
    "approval.own",
    "approval.own_rollback",
    "approval.required",
    "approval.plan_changed",
    "approval.not_protected",
    "approval.state",
];

/// The longest comment a decision or an approval takes.
pub const COMMENT_MAX: usize = 2000;

/// The digest of a batch's evidence (what a reviewer decides on).
pub fn evidence_digest(b: &BatchView) -> String {
    super::bundle::digest_of(&serde_json::to_value(b).expect("a batch serialises"))
}

/// The digest of a plan as stored at plan time (what an approval names).
pub fn plan_digest(plan_json: &str) -> String {
    hex::encode(Sha256::digest(plan_json.as_bytes()))
}

fn reviewable(s: BatchStatus) -> bool {
    matches!(
        s,
        BatchStatus::Succeeded | BatchStatus::PartiallySucceeded | BatchStatus::Failed
    )
}

fn comment_of(comment: &str, required: bool) -> Result<String, OpError> {
    let c = comment.trim();
    if c.chars().count() > COMMENT_MAX {
        return Err(FieldError::coded("comment", "review.comment_long", &[]).into());
    }
    if required && c.is_empty() {
        return Err(FieldError::coded("comment", "review.comment_required", &[]).into());
    }
    Ok(c.to_string())
}

impl Core {
    /// Audits a refusal of `op` on a batch (a four-eyes rule or stale
    /// evidence) and hands the error back.
    async fn refuse(&self, actor: &str, op: Operation, batch_id: i64, e: OpError) -> OpError {
        let detail = match &e {
            OpError::Forbidden(d) => d.to_string(),
            other => other.to_string(),
        };
        let outcome = if matches!(e, OpError::Forbidden(_)) {
            "denied"
        } else {
            "refused"
        };
        if let Err(err) = self
            .store
            .audit(
                actor,
                op.action(),
                &batch_target(batch_id),
                outcome,
                &detail,
            )
            .await
        {
            tracing::warn!(error = %err, "could not audit a refusal");
        }
        e
    }

    async fn head(&self, batch_id: i64) -> Result<crate::store::BatchRow, OpError> {
        self.store
            .batch_head(batch_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))
    }

    /// Records a reviewer's decision on a finished batch, against the
    /// evidence digest they saw (`digest`); returns the review's id.
    pub async fn review_batch(
        &self,
        p: &Principal,
        batch_id: i64,
        decision: &str,
        comment: &str,
        digest: &str,
    ) -> Result<i64, OpError> {
        let op = Operation::BatchReview;
        let actor = self.authorize(p, op, &batch_target(batch_id)).await?;
        let head = self.head(batch_id).await?;
        let status = BatchStatus::parse(&head.status);
        if !reviewable(status) {
            let e = OpError::Conflict(FieldError::coded(
                "batch",
                "review.not_finished",
                &[("status", &status.as_str())],
            ));
            return Err(self.refuse(&actor, op, batch_id, e).await);
        }
        let decision = Decision::parse(decision)
            .ok_or_else(|| OpError::from(FieldError::coded("decision", "review.decision", &[])))?;
        let comment = comment_of(comment, decision != Decision::Accepted)?;
        let authors = self.store.batch_actors(batch_id).await?;
        if authors.iter().any(|a| actor_username(a) == p.username) {
            let e = OpError::Forbidden(Denied::Own {
                field: "batch",
                code: "review.own",
            });
            return Err(self.refuse(&actor, op, batch_id, e).await);
        }
        // The revision first: a change after it changes the digest too.
        let evidence_rev = self.store.evidence_rev(batch_id).await?;
        let b = self.batch_view(batch_id).await?;
        let now = evidence_digest(&b);
        if digest.trim() != now {
            let e = OpError::Conflict(FieldError::coded("digest", "review.evidence_changed", &[]));
            return Err(self.refuse(&actor, op, batch_id, e).await);
        }
        let at_ms = crate::store::now_ms();
        let draft = ReviewView {
            id: 0,
            batch_id,
            decision,
            comment: comment.clone(),
            digest: now.clone(),
            reviewer: actor.clone(),
            at_ms,
            signature: String::new(),
            evidence_rev,
            superseded: false,
            stale: false,
        };
        let signature = self.sign_review(&draft, &head.uid).await?;
        Ok(self
            .store
            .insert_review(&crate::store::NewReview {
                batch_id,
                decision,
                comment: &comment,
                digest: &now,
                evidence_rev,
                reviewer_id: p.operator_id,
                reviewer: &actor,
                at_ms,
                signature: &signature,
            })
            .await?)
    }

    /// The installation's signature of a decision (base64 Ed25519).
    pub(super) async fn sign_review(&self, r: &ReviewView, uid: &str) -> Result<String, OpError> {
        use base64::Engine as _;
        use ed25519_dalek::Signer as _;
        let key = self.signing_key().await?;
        let bytes = canonical_json(&r.signed_content(uid));
        Ok(base64::engine::general_purpose::STANDARD.encode(key.sign(bytes.as_bytes()).to_bytes()))
    }

    /// Whether a decision's signature is the installation's.
    pub async fn review_signature_valid(&self, r: &ReviewView, uid: &str) -> Result<bool, OpError> {
        Ok(self.sign_review(r, uid).await? == r.signature)
    }

    /// What the batch page and the review page say about reviews and four
    /// eyes. Reads no journal: staleness comes from the runs table.
    pub async fn review_panel(&self, batch_id: i64) -> Result<ReviewPanel, OpError> {
        let head = self.head(batch_id).await?;
        let history = self.store.reviews(batch_id).await?;
        let newest = history.first();
        let state = ReviewState::of(newest.map(|r| r.decision), newest.is_some_and(|r| r.stale));
        let changes = match newest {
            Some(r) if r.stale => self.store.changes_since(batch_id, r.at_ms).await?,
            _ => Vec::new(),
        };
        let mut authors: Vec<String> = self
            .store
            .batch_actors(batch_id)
            .await?
            .iter()
            .map(|a| actor_username(a).to_string())
            .collect();
        authors.sort();
        authors.dedup();
        Ok(ReviewPanel {
            batch_id,
            state,
            history,
            changes,
            reviewable: reviewable(BatchStatus::parse(&head.status)),
            authors,
            four_eyes: self.four_eyes(&head).await?,
        })
    }

    /// The evidence digest of a batch now (reads its whole journal).
    pub async fn batch_evidence_digest(&self, batch_id: i64) -> Result<String, OpError> {
        Ok(evidence_digest(&self.batch_view(batch_id).await?))
    }

    async fn four_eyes(&self, head: &crate::store::BatchRow) -> Result<FourEyes, OpError> {
        let host = self
            .store
            .host(head.host_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("host {}", head.host_id)))?;
        // Only a protected host needs the plan's digest: reading and hashing
        // the whole stored plan (megabytes for thousands of keys) on every
        // page view of other batches would make their pages grow with it.
        let plan_digest = if host.protected {
            let plan = self
                .store
                .plan_json(head.id)
                .await?
                .ok_or_else(|| OpError::NotFound(format!("batch {}", head.id)))?;
            plan_digest(&plan)
        } else {
            String::new()
        };
        let rev = self.store.evidence_rev(head.id).await?;
        let approvals = self
            .store
            .approvals(head.id)
            .await?
            .into_iter()
            .map(|(mut a, rev_at, _)| {
                a.valid = host.protected
                    && match a.purpose.as_str() {
                        "apply" => a.digest == plan_digest,
                        _ => rev_at == rev,
                    };
                a
            })
            .collect();
        Ok(FourEyes {
            protected: host.protected,
            plan_digest,
            author: actor_username(&head.created_by).to_string(),
            approvals,
        })
    }

    /// A second person approves the apply (of the plan with `digest`) or
    /// the rollback (of the batch whose evidence digest is `digest`) of a
    /// batch on a protected host.
    pub async fn approve_batch(
        &self,
        p: &Principal,
        batch_id: i64,
        purpose: &str,
        digest: &str,
        comment: &str,
    ) -> Result<i64, OpError> {
        let op = Operation::BatchApprove;
        let actor = self.authorize(p, op, &batch_target(batch_id)).await?;
        let head = self.head(batch_id).await?;
        let fe = self.four_eyes(&head).await?;
        let status = BatchStatus::parse(&head.status);
        let purpose = match purpose {
            "apply" | "rollback" => purpose,
            _ => {
                return Err(FieldError::coded(
                    "purpose",
                    "drift.unknown_action",
                    &[("action", &purpose)],
                )
                .into())
            }
        };
        let refuse = |e: OpError| self.refuse(&actor, op, batch_id, e);
        if !fe.protected {
            let e = OpError::Conflict(FieldError::coded("batch", "approval.not_protected", &[]));
            return Err(refuse(e).await);
        }
        let open = FourEyes::open(purpose, status);
        if !open {
            let e = OpError::Conflict(FieldError::coded(
                "batch",
                "approval.state",
                &[("status", &status.as_str()), ("purpose", &purpose)],
            ));
            return Err(refuse(e).await);
        }
        let comment = comment_of(comment, false)?;
        let rev = self.store.evidence_rev(batch_id).await?;
        let now = if purpose == "apply" {
            if fe.author == p.username {
                let e = OpError::Forbidden(Denied::Own {
                    field: "batch",
                    code: "approval.own",
                });
                return Err(refuse(e).await);
            }
            fe.plan_digest.clone()
        } else {
            self.batch_evidence_digest(batch_id).await?
        };
        if digest.trim() != now {
            let code = if purpose == "apply" {
                "approval.plan_changed"
            } else {
                "review.evidence_changed"
            };
            let short = now[..16].to_string();
            let e = OpError::Conflict(FieldError::coded("digest", code, &[("digest", &short)]));
            return Err(refuse(e).await);
        }
        Ok(self
            .store
            .insert_approval(
                batch_id,
                purpose,
                &now,
                rev,
                p.operator_id,
                &actor,
                &comment,
            )
            .await?)
    }

    /// Refuses an apply or a rollback on a protected host without a valid
    /// approval by someone else (audited); `Ok` on other hosts.
    pub(super) async fn require_four_eyes(
        &self,
        actor: &str,
        batch_id: i64,
        purpose: &str,
    ) -> Result<(), OpError> {
        let head = self.head(batch_id).await?;
        let fe = self.four_eyes(&head).await?;
        if !fe.protected {
            return Ok(());
        }
        let op = if purpose == "apply" {
            Operation::BatchApply
        } else {
            Operation::BatchRollback
        };
        let me = actor_username(actor);
        let valid: Vec<&ApprovalView> = fe
            .approvals
            .iter()
            .filter(|a| a.purpose == purpose && a.valid)
            .collect();
        if valid.is_empty() {
            let host = self
                .store
                .host(head.host_id)
                .await?
                .map(|h| h.name)
                .unwrap_or_default();
            let who = if purpose == "apply" {
                fe.author.clone()
            } else {
                me.to_string()
            };
            let e = OpError::Conflict(FieldError::coded(
                "batch",
                "approval.required",
                &[("host", &host), ("author", &who), ("purpose", &purpose)],
            ));
            return Err(self.refuse(actor, op, batch_id, e).await);
        }
        // Whoever approved a rollback does not carry it out too.
        if purpose == "rollback" && !fe.rollback_cleared_for(me) {
            let e = OpError::Forbidden(Denied::Own {
                field: "batch",
                code: "approval.own_rollback",
            });
            return Err(self.refuse(actor, op, batch_id, e).await);
        }
        Ok(())
    }

    /// Marks a host protected (its batches then need four eyes) or not.
    pub async fn set_host_protected(
        &self,
        p: &Principal,
        host_id: i64,
        protected: bool,
    ) -> Result<(), OpError> {
        let actor = self
            .authorize(p, Operation::HostProtect, &format!("host:{host_id}"))
            .await?;
        self.store
            .host(host_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("host {host_id}")))?;
        Ok(self
            .store
            .set_host_protected(host_id, protected, &actor)
            .await?)
    }

    /// Finished batches waiting for a reviewer (never reviewed, or stale),
    /// the longest waiting first; with how many there are.
    pub async fn review_queue(&self, limit: i64) -> Result<(Vec<QueueItem>, i64), OpError> {
        Ok(self.store.review_queue(limit.clamp(1, 500)).await?)
    }
}
