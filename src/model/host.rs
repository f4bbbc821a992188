use serde::{Deserialize, Serialize};

/// How the product signs in to a host's admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AdminAuthKind {
    /// The installation-wide `x-api-key: admin-…` key.
    ApiKey,
    /// An admin email and password, exchanged for a JWT at each use.
    Password,
}

impl AdminAuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminAuthKind::ApiKey => "api_key",
            AdminAuthKind::Password => "password",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api_key" => Some(AdminAuthKind::ApiKey),
            "password" => Some(AdminAuthKind::Password),
            _ => None,
        }
    }
}

/// A registered host as pages and the API show it: secrets masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostView {
    pub id: i64,
    pub name: String,
    pub base_url: String,
    pub auth_kind: AdminAuthKind,
    /// `admin-…a1b2` for a key, the email for a password login.
    pub admin_credential_hint: String,
    pub probe_user_email: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub last_probe: Option<ProbeSummary>,
    /// Its batches need a second person's approval to apply or roll back.
    #[serde(default)]
    pub protected: bool,
}

/// Overall verdict of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// Everything the product needs works.
    Ok,
    /// Usable, with something the operator should know or fix.
    Warning,
    /// The product cannot work with this host until something is fixed.
    Failing,
}

impl ProbeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeStatus::Ok => "ok",
            ProbeStatus::Warning => "warning",
            ProbeStatus::Failing => "failing",
        }
    }

    pub fn parse(s: &str) -> ProbeStatus {
        match s {
            "ok" => ProbeStatus::Ok,
            "warning" => ProbeStatus::Warning,
            _ => ProbeStatus::Failing,
        }
    }
}

/// The short form of a probe kept in host lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeSummary {
    pub id: i64,
    pub at_ms: i64,
    pub status: ProbeStatus,
    pub version: Option<String>,
    pub latency_ms: Option<u64>,
    pub headline: String,
    /// The code of the finding the headline is (empty: ready, or a probe
    /// stored before codes were kept) and the host's words in it.
    #[serde(default)]
    pub headline_code: String,
    #[serde(default)]
    pub headline_detail: String,
}

/// Whether a host has a capability, and how we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Support {
    Yes,
    No,
    Unknown,
}

impl Support {
    pub fn as_str(self) -> &'static str {
        match self {
            Support::Yes => "yes",
            Support::No => "no",
            Support::Unknown => "unknown",
        }
    }
}

/// One row of the capability matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Capability {
    /// Stable key, e.g. `channels`, `cn_platforms`.
    pub key: String,
    pub support: Support,
    /// What decided it: the request and its answer, or the version rule.
    pub evidence: String,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Blocker,
}

/// Something the probe found that the operator should read: what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    /// Stable code, e.g. `compliance_required`.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    /// The next action in plain words; empty when there is nothing to do.
    pub action: String,
    /// The host's own words or values inside the message (a reason, a
    /// code, a version), so the message can be written in another language
    /// around them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Every finding code a probe can report (a test keeps it complete).
pub const FINDING_CODES: &[&str] = &[
    "host_unreachable",
    "not_sub2api",
    "version_unknown",
    "admin_auth_rejected",
    "admin_auth_2fa",
    "admin_auth_unknown",
    "compliance_required",
    "no_channels",
    "no_cn_platforms",
    "gateway_unreachable",
    "probe_user_missing",
    "probe_user_blocked",
    "probe_user_failed",
];

/// The headline of a probe that found nothing to report.
pub const READY_HEADLINE: &str = "Host ready for provisioning";

/// The result of the admin-credential check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AdminAuthState {
    Ok,
    /// The host refused the credential (the host's code, e.g. `INVALID_ADMIN_KEY`).
    Rejected {
        code: String,
    },
    /// The admin password login needs a second factor the product cannot give.
    Needs2fa,
    /// The check could not be made (host unreachable, unexpected answer).
    Unknown {
        reason: String,
    },
}

/// The compliance gate (HTTP 423 until an admin accepts the text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ComplianceState {
    /// The host has no gate (404 on `/api/v1/admin/compliance`).
    Absent,
    Accepted {
        version: String,
    },
    Required {
        version: String,
        document_url: Option<String>,
        /// The phrase an admin types to accept (the host's own text).
        #[serde(default)]
        phrase: Option<String>,
    },
    Unknown,
}

/// The probe user's ability to sign in (needed to create user keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ProbeUserState {
    NotConfigured,
    Ok,
    Failed {
        code: String,
        message: String,
    },
    /// Backend mode, captcha or TOTP stop a machine sign-in.
    Blocked {
        reason: String,
    },
    Unknown,
}

/// Everything one probe of a host learnt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeReport {
    pub reachable: bool,
    pub latency_ms: Option<u64>,
    pub version: Option<String>,
    pub admin_auth: AdminAuthState,
    pub compliance: ComplianceState,
    pub backend_mode: Option<bool>,
    pub captcha: Option<bool>,
    pub totp: Option<bool>,
    pub probe_user: ProbeUserState,
    /// `GET /v1/models` answered as a gateway (any JSON, even 401).
    pub gateway_reachable: Option<bool>,
    pub capabilities: Vec<Capability>,
    pub findings: Vec<Finding>,
    pub status: ProbeStatus,
    pub product_version: String,
}

impl ProbeReport {
    /// One line for lists: the worst finding, or "ready".
    pub fn headline(&self) -> String {
        self.headline_finding()
            .map(|f| f.message.clone())
            .unwrap_or_else(|| READY_HEADLINE.to_string())
    }

    /// The finding the headline is, if one is worth a headline.
    pub fn headline_finding(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .max_by_key(|f| f.severity)
            .filter(|f| f.severity > Severity::Info)
    }

    /// Looks up a capability by key.
    pub fn capability(&self, key: &str) -> Support {
        self.capabilities
            .iter()
            .find(|c| c.key == key)
            .map_or(Support::Unknown, |c| c.support)
    }
}

/// A stored probe with its full report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeRecord {
    pub id: i64,
    pub host_id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub report: ProbeReport,
}

/// What a person typed into the host form. Secrets travel once, inbound only,
/// and its `Debug` never shows them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostInput {
    pub name: String,
    pub base_url: String,
    /// `api_key` or `password`.
    pub auth_kind: String,
    /// The admin API key; on edit, empty keeps the stored one.
    pub admin_api_key: String,
    pub admin_email: String,
    /// On edit, empty keeps the stored one.
    pub admin_password: String,
    pub probe_user_email: String,
    /// On edit, empty keeps the stored one.
    pub probe_user_password: String,
}

impl std::fmt::Debug for HostInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostInput")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("auth_kind", &self.auth_kind)
            .field("admin_api_key", &"[redacted]")
            .field("admin_email", &self.admin_email)
            .field("admin_password", &"[redacted]")
            .field("probe_user_email", &self.probe_user_email)
            .field("probe_user_password", &"[redacted]")
            .finish()
    }
}
