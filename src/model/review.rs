//! Handover review (a reviewer's decision on a batch's evidence) and four
//! eyes (a second person's approval before a protected host changes).

use serde::{Deserialize, Serialize};

/// What a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Accepted,
    Rejected,
    NeedsChanges,
}

impl Decision {
    pub const ALL: [Decision; 3] = [
        Decision::Accepted,
        Decision::Rejected,
        Decision::NeedsChanges,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
            Decision::NeedsChanges => "needs_changes",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|d| d.as_str() == s.trim())
    }
}

/// Where a batch stands with its reviewers: the newest decision, unless
/// the batch changed after it (then `Stale`), or none yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    NotReviewed,
    Accepted,
    Rejected,
    NeedsChanges,
    Stale,
}

impl ReviewState {
    pub const ALL: [ReviewState; 5] = [
        ReviewState::NotReviewed,
        ReviewState::Accepted,
        ReviewState::Rejected,
        ReviewState::NeedsChanges,
        ReviewState::Stale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::NotReviewed => "not_reviewed",
            ReviewState::Accepted => "accepted",
            ReviewState::Rejected => "rejected",
            ReviewState::NeedsChanges => "needs_changes",
            ReviewState::Stale => "stale",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewState> {
        ReviewState::ALL
            .into_iter()
            .find(|d| d.as_str() == s.trim())
    }

    /// From the newest decision and whether the batch changed after it.
    pub fn of(newest: Option<Decision>, stale: bool) -> ReviewState {
        match (newest, stale) {
            (None, _) => ReviewState::NotReviewed,
            (Some(_), true) => ReviewState::Stale,
            (Some(Decision::Accepted), false) => ReviewState::Accepted,
            (Some(Decision::Rejected), false) => ReviewState::Rejected,
            (Some(Decision::NeedsChanges), false) => ReviewState::NeedsChanges,
        }
    }
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewView {
    pub id: i64,
    pub batch_id: i64,
    pub decision: Decision,
    pub comment: String,
    /// The evidence digest the reviewer saw (the bundle's `evidence_digest`).
    pub digest: String,
    pub reviewer: String,
    pub at_ms: i64,
    /// Ed25519 (base64) by the installation's key over
    /// [`ReviewView::signed_content`]'s canonical JSON.
    pub signature: String,
    /// The batch's evidence revision when decided; a later change (see
    /// `batches.evidence_rev`) makes it stale.
    pub evidence_rev: i64,
    /// A newer decision replaced it.
    pub superseded: bool,
    /// The batch changed after it (a run or a diagnosis).
    pub stale: bool,
}

impl ReviewView {
    /// What the signature covers (canonicalised by the bundle's JCS).
    pub fn signed_content(&self, batch_uid: &str) -> serde_json::Value {
        serde_json::json!({
            "kind": "sub2api-cn-relay-manager/review",
            "batch_id": self.batch_id,
            "batch_uid": batch_uid,
            "decision": self.decision.as_str(),
            "comment": self.comment,
            "evidence_digest": self.digest,
            "reviewer": self.reviewer,
            "at_ms": self.at_ms,
        })
    }
}

/// A run (or a diagnosis) that happened after a decision: what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeSince {
    /// `apply`, `rollback`, `pause`, `repair`, or `diagnosis`.
    pub kind: String,
    pub id: i64,
    pub actor: String,
    pub status: String,
    pub at_ms: i64,
}

/// A second person's approval on a protected host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalView {
    pub id: i64,
    pub batch_id: i64,
    /// `apply` or `rollback`.
    pub purpose: String,
    /// For an apply: the plan's digest; for a rollback: the evidence digest.
    pub digest: String,
    pub approver: String,
    pub comment: String,
    pub at_ms: i64,
    /// It still holds: the host is protected and the plan is the same
    /// (apply) / the batch did not change since (rollback).
    pub valid: bool,
}

/// What four eyes asks of a batch, for its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FourEyes {
    /// The host is protected (else nothing here applies).
    pub protected: bool,
    /// The plan's digest now (empty when the host is not protected: it is
    /// not read then).
    pub plan_digest: String,
    /// Who may not approve an apply: the plan's author.
    pub author: String,
    /// Approvals, newest first.
    pub approvals: Vec<ApprovalView>,
}

impl FourEyes {
    /// Whether a batch in `status` has an apply or a rollback to approve:
    /// an apply while one can run, a rollback once something was applied.
    pub fn open(purpose: &str, status: crate::model::BatchStatus) -> bool {
        use crate::model::BatchStatus as S;
        match purpose {
            "apply" => matches!(
                status,
                S::Planned | S::Failed | S::PartiallySucceeded | S::Succeeded
            ),
            _ => matches!(
                status,
                S::Failed | S::PartiallySucceeded | S::Succeeded | S::RollbackFailed
            ),
        }
    }

    /// Whether `username` may roll back now: the host is not protected, or
    /// someone else gave a rollback approval that still holds.
    pub fn rollback_cleared_for(&self, username: &str) -> bool {
        !self.protected
            || self.approvals.iter().any(|a| {
                a.purpose == "rollback" && a.valid && actor_username(&a.approver) != username
            })
    }

    /// The approval an apply (or rollback) would use now, if any.
    pub fn valid(&self, purpose: &str) -> Option<&ApprovalView> {
        self.approvals
            .iter()
            .find(|a| a.purpose == purpose && a.valid)
    }
}

/// Everything the batch page and the review page say about reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewPanel {
    pub batch_id: i64,
    pub state: ReviewState,
    /// Decisions, newest first.
    pub history: Vec<ReviewView>,
    /// What happened to the batch after the newest decision.
    pub changes: Vec<ChangeSince>,
    /// The batch is finished (only a finished batch is reviewed).
    pub reviewable: bool,
    /// Who planned or applied it (they may not review it).
    pub authors: Vec<String>,
    pub four_eyes: FourEyes,
}

/// A row of the review queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueItem {
    pub batch_id: i64,
    pub host_name: String,
    pub provider_key: String,
    pub status: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub state: ReviewState,
    /// The newest decision's reviewer and time, when stale.
    pub last_reviewer: Option<String>,
    pub last_at_ms: Option<i64>,
}

/// The name of the operator behind an actor string (`alice (token #3)`
/// → `alice`).
pub fn actor_username(actor: &str) -> &str {
    actor.split(" (token #").next().unwrap_or(actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_reads_stale_once_the_batch_changed() {
        assert_eq!(ReviewState::of(None, true), ReviewState::NotReviewed);
        assert_eq!(
            ReviewState::of(Some(Decision::Accepted), false),
            ReviewState::Accepted
        );
        assert_eq!(
            ReviewState::of(Some(Decision::Accepted), true),
            ReviewState::Stale
        );
        for d in Decision::ALL {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
        }
        assert_eq!(Decision::parse("ok"), None);
    }

    #[test]
    fn an_actor_names_its_operator() {
        assert_eq!(actor_username("alice (token #3)"), "alice");
        assert_eq!(actor_username("bob"), "bob");
    }
}
