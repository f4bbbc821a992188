//! Drift: what the host shows against what the ledger says we made.

use serde::{Deserialize, Serialize};

/// What kind of difference a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DriftClass {
    /// In the ledger, gone from the host.
    Missing,
    /// On the host with fields that differ from what we applied.
    Modified,
    /// An account of ours the host will not (or cannot) schedule.
    Unhealthy,
    /// More than one host object for one of ours (same marker or name).
    Duplicate,
}

impl DriftClass {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftClass::Missing => "missing",
            DriftClass::Modified => "modified",
            DriftClass::Unhealthy => "unhealthy",
            DriftClass::Duplicate => "duplicate",
        }
    }

    pub fn parse(s: &str) -> Option<DriftClass> {
        Some(match s {
            "missing" => DriftClass::Missing,
            "modified" => DriftClass::Modified,
            "unhealthy" => DriftClass::Unhealthy,
            "duplicate" => DriftClass::Duplicate,
            _ => return None,
        })
    }

    pub const ALL: [DriftClass; 4] = [
        DriftClass::Missing,
        DriftClass::Modified,
        DriftClass::Unhealthy,
        DriftClass::Duplicate,
    ];
}

/// One difference, with its evidence and what can be done about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriftFinding {
    /// Stable across checks: `class:kind:remote id` (what an ignore names).
    pub key: String,
    pub class: DriftClass,
    /// `group`, `channel`, `account`, `user_key` or `subscription`.
    pub kind: String,
    pub remote_id: String,
    /// The ledger object it concerns (for a duplicate: the one we keep).
    pub ledger_id: Option<i64>,
    /// The batch that made the ledger object.
    pub batch_id: Option<i64>,
    pub provider_key: String,
    /// For people: `account rm-ds-0123456789 (#42)`.
    pub target: String,
    /// Fields that differ: (field, applied, observed).
    pub changed: Vec<(String, String, String)>,
    /// The host's own message (unhealthy), or why it is a finding.
    pub message: String,
    /// `message` as a coded message (unhealthy accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<super::Said>,
    /// The observed object, redacted.
    pub evidence: String,
    /// What can be done: `reapply`, `adopt`, `remove_duplicate`, `pause`,
    /// `ignore`.
    pub actions: Vec<String>,
    /// Set when an operator ignored it: (reason, until ms, by).
    pub ignored: Option<(String, i64, String)>,
}

/// Objects on the host that are not ours: counted, never drift.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unmanaged {
    pub groups: Vec<String>,
    pub channels: Vec<String>,
    /// All accounts on the host that are not in the ledger.
    pub accounts: i64,
}

/// One drift check of a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriftReport {
    pub id: i64,
    pub host_id: i64,
    pub at_ms: i64,
    pub actor: String,
    /// Live ledger objects compared.
    pub compared: i64,
    pub findings: Vec<DriftFinding>,
    pub unmanaged: Unmanaged,
    /// Host calls the check made (all listings, no per-object reads).
    pub host_calls: u32,
}

impl DriftReport {
    /// Findings of a class that are not ignored.
    pub fn open(&self, class: DriftClass) -> usize {
        self.findings
            .iter()
            .filter(|f| f.class == class && f.ignored.is_none())
            .count()
    }
}
