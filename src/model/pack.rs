//! Provider packs: the declarative description of how to reach providers,
//! their models and prices, and what to create on a host for them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Host platforms a provider can map to natively (reference §3.3).
pub const NATIVE_PLATFORMS: &[&str] = &["deepseek", "kimi", "zhipu", "minimax"];

/// Error conventions the diagnosis knows (the providers reference, §12).
pub const API_FAMILIES: &[&str] = &[
    "deepseek",
    "minimax",
    "kimi",
    "glm",
    "dashscope",
    "ark",
    "siliconflow",
    "openai",
];

/// Channel `billing_model_source` values (reference §5.3).
pub const BILLING_MODEL_SOURCES: &[&str] =
    &["channel_mapped", "requested", "upstream", "response_model"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Currency {
    #[serde(rename = "USD")]
    Usd,
    #[serde(rename = "CNY")]
    Cny,
}

/// How users get access to the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    /// The probe user's key bound to a standard group; the user has balance.
    SelfService,
    /// A subscription group, the user's subscription, the key bound to it.
    Subscription,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::SelfService => "self_service",
            AccessMode::Subscription => "subscription",
        }
    }

    pub fn parse(s: &str) -> Option<AccessMode> {
        match s.trim() {
            "self_service" => Some(AccessMode::SelfService),
            "subscription" => Some(AccessMode::Subscription),
            _ => None,
        }
    }
}

/// A price as the provider publishes it: per million tokens, in its currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub currency: Currency,
    /// Input (cache miss) per million tokens.
    pub input: f64,
    pub output: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<f64>,
    /// Where the price was read (URL or document).
    pub source: String,
    /// When it was last checked, `YYYY-MM-DD`.
    pub verified: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PackModel {
    /// The provider's model id when it differs from the client-facing id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    pub price: Price,
}

fn default_bms() -> String {
    "channel_mapped".into()
}
fn default_true() -> bool {
    true
}
fn default_rate() -> f64 {
    1.0
}
fn default_validity() -> u32 {
    30
}
fn default_balance() -> f64 {
    5.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelPolicy {
    #[serde(default = "default_bms")]
    pub billing_model_source: String,
    #[serde(default = "default_true")]
    pub restrict_models: bool,
}

impl Default for ChannelPolicy {
    fn default() -> Self {
        ChannelPolicy {
            billing_model_source: default_bms(),
            restrict_models: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GroupTemplate {
    /// Group name on the host; `relay-<provider>` when absent. Subscription
    /// groups get `-sub` appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_rate")]
    pub rate_multiplier: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly_limit_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_limit_usd: Option<f64>,
    /// Subscription length for the subscription access mode.
    #[serde(default = "default_validity")]
    pub validity_days: u32,
    /// An exclusive group can be bound only by users granted it (the
    /// product grants its probe user); an open one by every user of the host.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclusive: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for GroupTemplate {
    fn default() -> Self {
        GroupTemplate {
            name: None,
            rate_multiplier: 1.0,
            daily_limit_usd: None,
            weekly_limit_usd: None,
            monthly_limit_usd: None,
            validity_days: 30,
            exclusive: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AccessDefaults {
    pub mode: AccessMode,
    /// Balance (USD) the probe user is topped up to in self-service mode.
    #[serde(default = "default_balance")]
    pub balance_usd: f64,
}

impl Default for AccessDefaults {
    fn default() -> Self {
        AccessDefaults {
            mode: AccessMode::SelfService,
            balance_usd: 5.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PackProvider {
    pub display_name: String,
    /// The host's native CN platform, used when the host has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_platform: Option<String>,
    /// Whose error conventions the API follows, for diagnosis: one of
    /// [`API_FAMILIES`]; detected from the provider key and URL when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_family: Option<String>,
    /// OpenAI-compatible base URL (used on the `openai` platform, and on the
    /// native one unless `native_base_url` is set).
    pub base_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_base_url: Option<String>,
    /// The model the smoke checks use; must be one of `models`.
    pub smoke_model: String,
    pub models: BTreeMap<String, PackModel>,
    #[serde(default)]
    pub channel: ChannelPolicy,
    #[serde(default)]
    pub group: GroupTemplate,
    #[serde(default)]
    pub access: AccessDefaults,
    /// Below this upstream balance (in the currency the provider states)
    /// a key counts as low and the balance alert fires; a balance at or
    /// below zero is low whatever this says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_balance: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExchangeRate {
    pub cny_per_usd: f64,
    pub source: String,
    pub date: String,
}

/// A whole pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Pack {
    pub schema: u32,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<ExchangeRate>,
    pub providers: BTreeMap<String, PackProvider>,
}

impl Pack {
    /// USD per token for a price, using the pack's exchange rate for CNY.
    pub fn usd_per_token(&self, per_million: f64, currency: Currency) -> Option<f64> {
        let usd = match currency {
            Currency::Usd => per_million,
            Currency::Cny => per_million / self.exchange_rate.as_ref()?.cny_per_usd,
        };
        Some(usd / 1_000_000.0)
    }
}

/// One problem found in a pack: where, what is wrong, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackIssue {
    /// Dotted path, e.g. `providers.deepseek.models.deepseek-flash.price.input`.
    pub path: String,
    /// 1-based line in the uploaded text, when it could be found.
    pub line: Option<u32>,
    pub message: String,
    pub expected: String,
    /// `message` as a coded message (`None` for the parser's own words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<super::Said>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_said: Option<super::Said>,
}

impl PackIssue {
    pub fn coded(
        path: &str,
        line: Option<u32>,
        message: super::Said,
        expected: super::Said,
    ) -> PackIssue {
        PackIssue {
            path: path.to_string(),
            line,
            message: message.english(),
            expected: expected.english(),
            said: Some(message),
            expected_said: Some(expected),
        }
    }
}

impl std::fmt::Display for PackIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}, {}: {}", self.path, self.message)?,
            None => write!(f, "{}: {}", self.path, self.message)?,
        }
        if !self.expected.is_empty() {
            write!(f, " (expected {})", self.expected)?;
        }
        Ok(())
    }
}

/// A stored pack version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackVersionView {
    pub id: i64,
    pub pack_id: String,
    pub name: String,
    pub hash: String,
    pub format: String,
    pub builtin: bool,
    pub created_at_ms: i64,
    pub created_by: String,
    pub providers: Vec<String>,
    /// Its number among the versions of *its* pack: 1 for the first stored.
    #[serde(default)]
    pub number: u32,
}

impl PackVersionView {
    /// `v2 · 3f9a1c0b2d4e`: the pack's own version number and the hash.
    pub fn label(&self) -> String {
        format!(
            "v{} · {}",
            self.number,
            &self.hash[..12.min(self.hash.len())]
        )
    }
}

/// A pack version with its source, the other versions of its pack, and
/// optionally the differences from one of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackDetail {
    pub version: PackVersionView,
    pub pack: Pack,
    pub source: String,
    pub others: Vec<PackVersionView>,
    /// The version the diff is against, when one of `others` was asked for.
    pub diff_against: Option<i64>,
    /// What changed from `diff_against` to this version.
    pub diff: Vec<PackChange>,
}

/// One difference between two pack versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackChange {
    pub path: String,
    pub old: Option<String>,
    pub new: Option<String>,
}
