//! Who may do what: one table of operations, and one function that decides
//! for any principal (a signed-in operator, or an API token acting for one).
//! The pages, the server functions, the JSON API and the CLI all ask here.

use super::{Core, OpError};
use crate::model::Role;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What an API token may do. Ordered: `write` includes `read`, `admin`
/// includes both. A token never does more than its operator's role allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asks: an operator, directly (a session, the local CLI) or through
/// one of their API tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub operator_id: i64,
    pub username: String,
    pub role: Role,
    /// The token the request came with: (token id, its scope).
    pub token: Option<(i64, Scope)>,
}

impl Principal {
    /// An operator acting directly (a session, or the CLI on the database).
    pub fn operator(operator_id: i64, username: &str, role: Role) -> Principal {
        Principal {
            operator_id,
            username: username.to_string(),
            role,
            token: None,
        }
    }

    /// The name the audit log and the journal record: the operator, and
    /// the token when one was used.
    pub fn actor(&self) -> String {
        match self.token {
            Some((id, _)) => format!("{} (token #{id})", self.username),
            None => self.username.clone(),
        }
    }
}

/// Every operation, named as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read any page or record (hosts, packs, batches, evidence, audit).
    Read,
    HostCreate,
    HostUpdate,
    HostProbe,
    HostDelete,
    HostComplianceAccept,
    HostAdminKeyObtain,
    HostDriftCheck,
    HostDriftRepair,
    HostDriftIgnore,
    /// Mark a host protected (four eyes) or not.
    HostProtect,
    PackUpload,
    BatchPlan,
    BatchApply,
    BatchRetryFailed,
    BatchDiscard,
    BatchRemoveFailed,
    BatchPauseFailed,
    BatchResumeFailed,
    BatchDiagnose,
    BatchRollback,
    BatchReplaceKey,
    /// Record a handover decision on a finished batch's evidence: a
    /// reviewer's (viewer's) one change.
    BatchReview,
    /// Approve an apply or a rollback on a protected host (four eyes).
    BatchApprove,
    /// Re-check a ready batch's readiness now (one 1-token completion).
    BatchRecheck,
    /// Read a batch's key balances at the provider now (nothing spent).
    BatchBalances,
    /// Set how often a host's jobs run, or switch them off.
    HostSchedule,
    /// Add, remove and test alert webhooks.
    WebhookManage,
    OperatorList,
    OperatorCreate,
    OperatorUpdate,
    OperatorRemove,
    OperatorResetPassword,
    TokenManage,
}

/// One row of the table: the operation, its audit name, the least role
/// and the least token scope it needs.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub op: Operation,
    pub action: &'static str,
    pub role: Role,
    pub scope: Scope,
}

const fn rule(op: Operation, action: &'static str, role: Role, scope: Scope) -> Rule {
    Rule {
        op,
        action,
        role,
        scope,
    }
}

use Operation as O;
use Role::{Admin, Operator, Viewer};

/// Who may do what. Every mutating operation needs a `write` token and,
/// but for a reviewer's decision, at least the operator role; operators and
/// tokens need an admin.
pub const RULES: &[Rule] = &[
    rule(O::Read, "read", Viewer, Scope::Read),
    rule(O::HostCreate, "host.create", Operator, Scope::Write),
    rule(O::HostUpdate, "host.update", Operator, Scope::Write),
    rule(O::HostProbe, "host.probe", Operator, Scope::Write),
    rule(O::HostDelete, "host.delete", Admin, Scope::Admin),
    rule(
        O::HostComplianceAccept,
        "host.compliance.accept",
        Admin,
        Scope::Admin,
    ),
    rule(
        O::HostAdminKeyObtain,
        "host.admin_key.obtain",
        Admin,
        Scope::Admin,
    ),
    rule(
        O::HostDriftCheck,
        "host.drift_check",
        Operator,
        Scope::Write,
    ),
    rule(
        O::HostDriftRepair,
        "host.drift_repair",
        Operator,
        Scope::Write,
    ),
    rule(
        O::HostDriftIgnore,
        "host.drift_ignore",
        Operator,
        Scope::Write,
    ),
    rule(O::HostProtect, "host.protect", Admin, Scope::Admin),
    rule(O::PackUpload, "pack.upload", Operator, Scope::Write),
    rule(O::BatchPlan, "batch.plan", Operator, Scope::Write),
    rule(O::BatchApply, "batch.apply", Operator, Scope::Write),
    rule(
        O::BatchRetryFailed,
        "batch.retry_failed",
        Operator,
        Scope::Write,
    ),
    rule(O::BatchDiscard, "batch.discard", Operator, Scope::Write),
    rule(
        O::BatchRemoveFailed,
        "batch.remove_failed",
        Operator,
        Scope::Write,
    ),
    rule(
        O::BatchPauseFailed,
        "batch.pause_failed",
        Operator,
        Scope::Write,
    ),
    rule(
        O::BatchResumeFailed,
        "batch.resume_failed",
        Operator,
        Scope::Write,
    ),
    rule(O::BatchDiagnose, "batch.diagnose", Operator, Scope::Write),
    rule(O::BatchRollback, "batch.rollback", Operator, Scope::Write),
    rule(
        O::BatchReplaceKey,
        "batch.replace_key",
        Operator,
        Scope::Write,
    ),
    rule(O::BatchReview, "batch.review", Viewer, Scope::Write),
    rule(O::BatchApprove, "batch.approve", Operator, Scope::Write),
    rule(
        O::BatchRecheck,
        "batch.readiness_check",
        Operator,
        Scope::Write,
    ),
    rule(
        O::BatchBalances,
        "batch.read_balances",
        Operator,
        Scope::Write,
    ),
    rule(O::HostSchedule, "host.schedule", Operator, Scope::Write),
    rule(O::WebhookManage, "webhook.manage", Admin, Scope::Admin),
    rule(O::OperatorList, "operator.list", Admin, Scope::Admin),
    rule(O::OperatorCreate, "operator.create", Admin, Scope::Admin),
    rule(O::OperatorUpdate, "operator.update", Admin, Scope::Admin),
    rule(O::OperatorRemove, "operator.remove", Admin, Scope::Admin),
    rule(
        O::OperatorResetPassword,
        "operator.password_reset",
        Admin,
        Scope::Admin,
    ),
    rule(O::TokenManage, "token.manage", Admin, Scope::Admin),
];

impl Operation {
    pub fn rule(self) -> Rule {
        *RULES
            .iter()
            .find(|r| r.op == self)
            .expect("every operation has a rule")
    }

    /// The audit log's name for it.
    pub fn action(self) -> &'static str {
        self.rule().action
    }

    /// Whether it changes anything (everything but reading).
    pub fn mutates(self) -> bool {
        self != Operation::Read
    }
}

/// Why a principal may not do an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Role {
        have: Role,
        need: Role,
    },
    Scope {
        have: Scope,
        need: Scope,
    },
    /// Four eyes: the principal's own work (a code of [`crate::model::SAID`]
    /// about `field`).
    Own {
        field: &'static str,
        code: &'static str,
    },
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Role { have, need } => write!(f, "role {have} lacks {need}"),
            Denied::Scope { have, need } => write!(f, "token scope {have} lacks {need}"),
            Denied::Own { code, .. } => write!(f, "four eyes: {code}"),
        }
    }
}

impl Denied {
    /// For the person or script refused.
    pub fn sentence(&self) -> String {
        match self {
            Denied::Role { have, need } => format!("This needs the {need} role; you are {have}."),
            Denied::Scope { have, need } => {
                format!("This needs a token with the {need} scope; this one has {have}.")
            }
            Denied::Own { field, code } => {
                crate::model::FieldError::coded(*field, code, &[]).to_string()
            }
        }
    }
}

/// The decision, without side effects: the role first, then the token's
/// scope (a token never lifts its operator above their role).
pub fn permits(p: &Principal, op: Operation) -> Result<(), Denied> {
    let r = op.rule();
    if !p.role.allows(r.role) {
        return Err(Denied::Role {
            have: p.role,
            need: r.role,
        });
    }
    if let Some((_, scope)) = p.token {
        if scope < r.scope {
            return Err(Denied::Scope {
                have: scope,
                need: r.scope,
            });
        }
    }
    Ok(())
}

impl Core {
    /// Decides whether `p` may do `op` on `target`; a refusal is audited
    /// (under the operation's name, outcome `denied`) and answered 403.
    /// Returns the actor name to record.
    pub async fn authorize(
        &self,
        p: &Principal,
        op: Operation,
        target: &str,
    ) -> Result<String, OpError> {
        match permits(p, op) {
            Ok(()) => Ok(p.actor()),
            Err(why) => {
                if let Err(e) = self
                    .store
                    .audit(&p.actor(), op.action(), target, "denied", &why.to_string())
                    .await
                {
                    tracing::warn!(error = %e, "could not audit a refusal");
                }
                Err(OpError::Forbidden(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_exactly_one_rule_and_a_unique_name() {
        let mut names: Vec<_> = RULES.iter().map(|r| r.action).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
        for r in RULES {
            assert_eq!(RULES.iter().filter(|x| x.op == r.op).count(), 1);
        }
    }

    #[test]
    fn the_role_and_operation_matrix_follows_the_table() {
        for r in RULES {
            for role in Role::ALL {
                let direct = Principal::operator(1, "u", role);
                assert_eq!(
                    permits(&direct, r.op).is_ok(),
                    role >= r.role,
                    "{role} × {}",
                    r.action
                );
                for scope in Scope::ALL {
                    let token = Principal {
                        token: Some((7, scope)),
                        ..direct.clone()
                    };
                    assert_eq!(
                        permits(&token, r.op).is_ok(),
                        role >= r.role && scope >= r.scope,
                        "{role} with a {scope} token × {}",
                        r.action
                    );
                }
            }
            if r.op.mutates() && r.op != Operation::BatchReview {
                let viewer = Principal::operator(1, "v", Role::Viewer);
                assert!(permits(&viewer, r.op).is_err(), "viewer × {}", r.action);
                let read = Principal {
                    token: Some((1, Scope::Read)),
                    ..Principal::operator(1, "a", Role::Admin)
                };
                assert!(permits(&read, r.op).is_err(), "read token × {}", r.action);
            }
        }
    }

    #[test]
    fn a_reviewer_may_record_a_decision_and_nothing_else() {
        let viewer = Principal::operator(1, "v", Role::Viewer);
        let allowed: Vec<_> = RULES
            .iter()
            .filter(|r| r.op.mutates() && permits(&viewer, r.op).is_ok())
            .map(|r| r.action)
            .collect();
        assert_eq!(allowed, ["batch.review"]);
        let read = Principal {
            token: Some((1, Scope::Read)),
            ..viewer
        };
        assert!(permits(&read, Operation::BatchReview).is_err());
    }

    #[test]
    fn a_token_is_named_in_the_actor() {
        let p = Principal {
            token: Some((3, Scope::Write)),
            ..Principal::operator(1, "alice", Role::Operator)
        };
        assert_eq!(p.actor(), "alice (token #3)");
    }
}
