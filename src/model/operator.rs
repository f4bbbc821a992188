use super::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What an operator may do. Ordered: a higher role includes the lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Handover reviewers: read everything, change nothing.
    Viewer,
    /// Ops staff: hosts, packs, batches.
    Operator,
    /// Everything, including operators and settings.
    Admin,
}

impl Role {
    /// All roles, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or typed role name.
    pub fn parse(s: &str) -> Result<Role, FieldError> {
        match s.trim() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(FieldError::coded(
                "role",
                "operator.role",
                &[("role", &other)],
            )),
        }
    }

    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed-in operator as the UI sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorView {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at_ms: i64,
    pub last_sign_in_ms: Option<i64>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

/// What the audit log is filtered by (empty: anything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditFilter {
    pub actor: String,
    /// An action (`batch.apply`) or a family of them (`batch.`).
    pub action: String,
    pub outcome: String,
    /// What it was done to (`batch:3`, `host:1`).
    pub target: String,
}

/// A page of audit entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub filter: AuditFilter,
    /// The cursor of the next (older) page, when there is one.
    pub next_before: Option<i64>,
    /// Entries matching the filter.
    pub total: i64,
    /// Values to filter by: every actor, action and outcome in the log.
    pub actors: Vec<String>,
    pub actions: Vec<String>,
    pub outcomes: Vec<String>,
    /// The installation's evidence-signing public key (PEM), which a
    /// reviewer compares with the key a bundle names.
    #[serde(default)]
    pub signing_key: String,
}

/// An API token as lists show it: never the token itself (shown once, at
/// creation), only the start that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: i64,
    pub operator_id: i64,
    /// The operator it acts for.
    pub username: String,
    pub name: String,
    /// `rmt_` and the first characters: enough to tell tokens apart.
    pub prefix: String,
    /// `read`, `write` or `admin`.
    pub scope: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub last_used_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

impl ApiToken {
    /// Usable at `now_ms`: not revoked, not expired.
    pub fn live(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && now_ms < self.expires_at_ms
    }
}
