//! The fake host's in-memory database.

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The `extra` key the relay manager stamps on objects it owns; the fake
/// counts account creates per value of it.
pub const MARKER_KEY: &str = "relay_manager_marker";

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn now_rfc3339() -> String {
    // Good enough for a fake: seconds precision, UTC.
    let s = now_unix();
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password: String,
    pub username: String,
    pub role: String,
    pub balance: f64,
    pub status: String,
    pub allowed_groups: Vec<i64>,
    pub totp: bool,
    pub notes: String,
}

impl User {
    pub fn dto(&self) -> Value {
        json!({
            "id": self.id, "email": self.email, "username": self.username, "role": self.role,
            "balance": self.balance, "frozen_balance": 0.0, "concurrency": 0, "status": self.status,
            "allowed_groups": self.allowed_groups, "notes": self.notes, "rpm_limit": 0,
            "created_at": now_rfc3339(), "updated_at": now_rfc3339(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub notes: Option<String>,
    pub platform: String,
    pub kind: String,
    pub credentials: Map<String, Value>,
    pub extra: Map<String, Value>,
    pub group_ids: Vec<i64>,
    pub status: String,
    pub error_message: String,
    pub schedulable: bool,
    pub priority: i64,
    pub concurrency: i64,
    pub rate_limit_reset_at: Option<i64>,
    pub deleted: bool,
    pub created_at: String,
}

/// Credential keys the host never returns (reference §3.4).
pub const SENSITIVE: &[&str] = &[
    "api_key",
    "access_token",
    "refresh_token",
    "id_token",
    "session_key",
    "cookie",
    "password",
    "aws_secret_access_key",
    "private_key",
];

impl Account {
    pub fn schedulable_now(&self) -> bool {
        self.status == "active"
            && self.schedulable
            && !self.deleted
            && self.rate_limit_reset_at.is_none_or(|t| t <= now_unix())
    }

    pub fn mapping(&self) -> Map<String, Value> {
        self.credentials
            .get("model_mapping")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the account serves `model` (mapping keys are a whitelist; a
    /// trailing `*` is a wildcard; an empty mapping serves everything).
    pub fn supports(&self, model: &str) -> bool {
        let m = self.mapping();
        m.is_empty() || m.keys().any(|k| pattern_match(k, model))
    }

    /// The upstream model for `model` after the account's mapping (longest
    /// match wins).
    pub fn map_model(&self, model: &str) -> String {
        let m = self.mapping();
        if let Some(v) = m.get(model).and_then(Value::as_str) {
            return v.to_string();
        }
        m.iter()
            .filter(|(k, _)| k.ends_with('*') && pattern_match(k, model))
            .max_by_key(|(k, _)| k.len())
            .and_then(|(_, v)| v.as_str().map(str::to_string))
            .unwrap_or_else(|| model.to_string())
    }

    pub fn dto(&self, redact: bool, groups: &[Group]) -> Value {
        let mut creds = self.credentials.clone();
        if redact {
            for k in SENSITIVE {
                creds.remove(*k);
            }
        }
        let mut v = json!({
            "id": self.id, "name": self.name, "notes": self.notes, "platform": self.platform,
            "type": self.kind, "credentials": creds, "extra": self.extra, "proxy_id": null,
            "concurrency": self.concurrency, "priority": self.priority, "rate_multiplier": 1.0,
            "status": self.status, "error_message": self.error_message, "schedulable": self.schedulable,
            "group_ids": self.group_ids,
            "groups": groups.iter().filter(|g| self.group_ids.contains(&g.id)).map(|g| json!({"id": g.id, "name": g.name})).collect::<Vec<_>>(),
            "rate_limit_reset_at": self.rate_limit_reset_at,
            "created_at": self.created_at, "updated_at": now_rfc3339(), "current_concurrency": 0,
        });
        if redact {
            v["credentials_status"] =
                json!({"has_api_key": self.credentials.contains_key("api_key")});
        }
        v
    }
}

pub fn pattern_match(pattern: &str, model: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let m = model.to_ascii_lowercase();
    match p.strip_suffix('*') {
        Some(prefix) => m.starts_with(prefix),
        None => p == m,
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub platform: String,
    pub rate_multiplier: f64,
    pub is_exclusive: bool,
    pub status: String,
    pub subscription_type: String,
    pub limits: [f64; 3],
    pub deleted: bool,
    /// `models_list_config` / `model_allowlist`: `{enabled, models}`.
    pub model_list: Option<Value>,
    /// Group-level price cards (v0.1.176), which outrank the channel's.
    pub model_pricing: Vec<Value>,
}

impl Group {
    pub fn dto(&self, profile: crate::Profile, accounts: &[Account]) -> Value {
        let members: Vec<&Account> = accounts
            .iter()
            .filter(|a| !a.deleted && a.group_ids.contains(&self.id))
            .collect();
        let mut v = json!({
            "id": self.id, "name": self.name, "description": self.description, "platform": self.platform,
            "rate_multiplier": self.rate_multiplier, "is_exclusive": self.is_exclusive, "status": self.status,
            "subscription_type": self.subscription_type, "daily_limit_usd": self.limits[0],
            "weekly_limit_usd": self.limits[1], "monthly_limit_usd": self.limits[2],
            "account_count": members.len(),
            "active_account_count": members.iter().filter(|a| a.schedulable_now()).count(),
            "created_at": now_rfc3339(), "updated_at": now_rfc3339(),
        });
        if let Some(name) = profile.allowlist_field() {
            v[name] = self
                .model_list
                .clone()
                .unwrap_or(json!({"enabled": false, "models": []}));
        }
        if profile.has_group_pricing() {
            v["model_pricing"] = json!(self.model_pricing);
        }
        v
    }

    /// The enabled model list, if any (`{enabled:true, models:[…]}`).
    pub fn allowlist(&self) -> Option<Vec<String>> {
        let l = self.model_list.as_ref()?;
        if l.get("enabled").and_then(Value::as_bool) != Some(true) {
            return None;
        }
        Some(
            l.get("models")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// The group price card for `model`, if one lists it.
    pub fn price_card(&self, model: &str) -> Option<&Value> {
        price_card(&self.model_pricing, &self.platform, model)
    }
}

/// The entry of `cards` that prices `model` on `platform` (an entry without
/// a platform takes the group's).
pub fn price_card<'a>(cards: &'a [Value], platform: &str, model: &str) -> Option<&'a Value> {
    cards.iter().find(|p| {
        p.get("platform")
            .and_then(Value::as_str)
            .is_none_or(|x| x.is_empty() || x == platform)
            && p.get("models").and_then(Value::as_array).is_some_and(|ms| {
                ms.iter()
                    .filter_map(Value::as_str)
                    .any(|m| pattern_match(m, model))
            })
    })
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub status: String,
    pub group_ids: Vec<i64>,
    pub model_pricing: Vec<Value>,
    pub model_mapping: Map<String, Value>,
    pub billing_model_source: String,
    pub restrict_models: bool,
    pub created_at: String,
}

impl Channel {
    pub fn dto(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "description": self.description, "status": self.status,
            "group_ids": self.group_ids, "model_pricing": self.model_pricing,
            "model_mapping": self.model_mapping, "billing_model_source": self.billing_model_source,
            "restrict_models": self.restrict_models, "created_at": self.created_at, "updated_at": now_rfc3339(),
        })
    }

    /// Whether the channel's pricing lists `model` for `platform`.
    pub fn prices(&self, platform: &str, model: &str) -> bool {
        self.model_pricing.iter().any(|p| {
            p.get("platform").and_then(Value::as_str) == Some(platform)
                && p.get("models").and_then(Value::as_array).is_some_and(|ms| {
                    ms.iter()
                        .filter_map(Value::as_str)
                        .any(|m| pattern_match(m, model))
                })
        })
    }

    /// The channel-mapped model for `platform`.
    pub fn map(&self, platform: &str, model: &str) -> String {
        let Some(m) = self.model_mapping.get(platform).and_then(Value::as_object) else {
            return model.to_string();
        };
        if let Some(v) = m
            .iter()
            .find(|(k, _)| !k.ends_with('*') && pattern_match(k, model))
        {
            return v.1.as_str().unwrap_or(model).to_string();
        }
        m.iter()
            .filter(|(k, _)| k.ends_with('*') && pattern_match(k, model))
            .max_by_key(|(k, _)| k.len())
            .and_then(|(_, v)| v.as_str().map(str::to_string))
            .unwrap_or_else(|| model.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: i64,
    pub user_id: i64,
    pub key: String,
    pub name: String,
    pub group_id: Option<i64>,
    pub status: String,
}

impl ApiKey {
    pub fn dto(&self) -> Value {
        json!({
            "id": self.id, "user_id": self.user_id, "key": self.key, "name": self.name,
            "group_id": self.group_id, "status": self.status, "quota": 0, "quota_used": 0,
            "created_at": now_rfc3339(), "updated_at": now_rfc3339(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: i64,
    pub user_id: i64,
    pub group_id: i64,
    pub status: String,
    pub starts_at: i64,
    pub expires_at: i64,
    pub validity_days: i64,
    pub notes: String,
    pub revoked: bool,
}

impl Subscription {
    pub fn active(&self) -> bool {
        !self.revoked && self.status == "active" && self.expires_at > now_unix()
    }

    pub fn dto(&self) -> Value {
        json!({
            "id": self.id, "user_id": self.user_id, "group_id": self.group_id,
            "status": if self.revoked { "revoked" } else { self.status.as_str() },
            "starts_at": self.starts_at, "expires_at": self.expires_at, "notes": self.notes,
            "daily_usage_usd": 0.0, "weekly_usage_usd": 0.0, "monthly_usage_usd": 0.0,
            "created_at": now_rfc3339(), "updated_at": now_rfc3339(),
        })
    }
}

/// A stored idempotent answer.
#[derive(Debug, Clone)]
pub struct Replay {
    pub fingerprint: String,
    pub status: u16,
    pub body: Value,
}

/// Everything the fake host knows.
/// One billed completion: who, which model, the per-token prices the host
/// resolved and where it found them.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub user_id: i64,
    pub group_id: i64,
    pub model: String,
    pub upstream_model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub input_price: f64,
    pub output_price: f64,
    /// `group`, `channel` or `catalog`.
    pub price_source: String,
    pub cost: f64,
}

#[derive(Debug, Default)]
pub struct State {
    /// The installation-wide admin API key (regenerating replaces it).
    pub admin_api_key: String,
    pub next_id: i64,
    pub users: Vec<User>,
    pub accounts: Vec<Account>,
    pub groups: Vec<Group>,
    pub channels: Vec<Channel>,
    pub keys: Vec<ApiKey>,
    pub subscriptions: Vec<Subscription>,
    pub jwts: HashMap<String, i64>,
    /// Admins who accepted the current compliance version.
    pub compliance_accepted: Vec<i64>,
    /// The compliance text's version; a bump asks every admin again.
    pub compliance_version: String,
    /// Completions the gateway billed, oldest first.
    pub usage: Vec<Usage>,
    pub idempotency: HashMap<String, Replay>,
    /// Account creates per marker (`extra.relay_manager_marker`, else name).
    pub creates_per_marker: HashMap<String, u32>,
    /// Calls per `METHOD /route` (ids replaced by `:id`).
    pub calls: HashMap<String, u32>,
    /// `/v1/models` cache: group id → (computed at, ids).
    pub models_cache: HashMap<i64, (Instant, Vec<String>)>,
}

impl State {
    pub fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    pub fn first_admin(&self) -> Option<&User> {
        self.users
            .iter()
            .filter(|u| u.role == "admin" && u.status == "active")
            .min_by_key(|u| u.id)
    }

    pub fn group(&self, id: i64) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id && !g.deleted)
    }
}
