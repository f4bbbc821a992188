//! Keep watching: scheduled jobs, readiness re-checks, key balances,
//! webhooks, incidents and their deliveries.

use super::Said;
use serde::{Deserialize, Serialize};

/// A job the scheduler runs per host (and the product-wide retention).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    Probe,
    Readiness,
    Drift,
    Balance,
    Retention,
}

impl Job {
    /// The jobs each host has.
    pub const HOST: [Job; 4] = [Job::Probe, Job::Readiness, Job::Drift, Job::Balance];

    pub fn as_str(self) -> &'static str {
        match self {
            Job::Probe => "probe",
            Job::Readiness => "readiness",
            Job::Drift => "drift",
            Job::Balance => "balance",
            Job::Retention => "retention",
        }
    }

    pub fn parse(s: &str) -> Option<Job> {
        Some(match s {
            "probe" => Job::Probe,
            "readiness" => Job::Readiness,
            "drift" => Job::Drift,
            "balance" => Job::Balance,
            "retention" => Job::Retention,
            _ => return None,
        })
    }

    /// The default interval, in seconds. A probe is ~10 safe GETs: every
    /// 5 minutes. A readiness re-check spends one 1-token completion per
    /// ready batch: every 30 minutes. A drift check lists the host's
    /// accounts, groups and channels: hourly. A balance reading is one GET
    /// per key at the provider: every 6 hours. Retention: daily.
    pub fn default_interval_s(self) -> i64 {
        match self {
            Job::Probe => 300,
            Job::Readiness => 1800,
            Job::Drift => 3600,
            Job::Balance => 6 * 3600,
            Job::Retention => 86_400,
        }
    }

    /// The schedule row's key.
    pub fn key(self, host_id: Option<i64>) -> String {
        match host_id {
            Some(h) => format!("host:{h}:{}", self.as_str()),
            None => self.as_str().to_string(),
        }
    }
}

/// The least and most interval an operator may set, in seconds.
pub const MIN_INTERVAL_S: i64 = 1;
pub const MAX_INTERVAL_S: i64 = 7 * 86_400;

/// A scheduled job as the pages show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub job: Job,
    pub interval_s: i64,
    pub enabled: bool,
    pub next_due_ms: i64,
    /// Who runs it now (`machine:pid:nonce`), while it runs.
    pub running_on: Option<String>,
    pub last_started_ms: Option<i64>,
    pub last_finished_ms: Option<i64>,
    pub last_outcome: Option<String>,
    pub last_detail: String,
}

/// What a readiness re-check found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// Listed and answered: ready.
    Ready,
    /// Listed, but the completion failed: the route is there and not serving.
    Degraded,
    /// The host no longer lists the smoke model for the probe key (or refuses the key).
    Broken,
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Ready => "ready",
            CheckOutcome::Degraded => "degraded",
            CheckOutcome::Broken => "broken",
        }
    }
    pub fn parse(s: &str) -> CheckOutcome {
        match s {
            "ready" => CheckOutcome::Ready,
            "degraded" => CheckOutcome::Degraded,
            _ => CheckOutcome::Broken,
        }
    }
}

/// A readiness re-check of a batch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckView {
    pub id: i64,
    pub batch_id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub outcome: CheckOutcome,
    pub access_before: super::AccessStatus,
    pub access_after: super::AccessStatus,
    /// What it saw, in English (the host's own words where it failed).
    pub detail: String,
    /// The same as a coded message, where the product wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<Said>,
    pub duration_ms: i64,
}

/// Whether a key's balance is known.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceState {
    /// The provider stated an amount.
    Known,
    /// The endpoint errored or answered nothing readable: never a 0.
    Unknown,
    /// The provider has no balance endpoint for an API key.
    Unsupported,
}

impl BalanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            BalanceState::Known => "known",
            BalanceState::Unknown => "unknown",
            BalanceState::Unsupported => "unsupported",
        }
    }
    pub fn parse(s: &str) -> BalanceState {
        match s {
            "known" => BalanceState::Known,
            "unsupported" => BalanceState::Unsupported,
            _ => BalanceState::Unknown,
        }
    }
}

/// A key's latest balance reading.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceView {
    pub fingerprint: String,
    /// The key as shown (`sk-…abcd`).
    pub masked: String,
    pub state: BalanceState,
    pub amount: Option<f64>,
    pub currency: Option<String>,
    /// Below the provider's low-balance threshold (known amounts only).
    pub low: bool,
    pub detail: String,
    pub at_ms: i64,
}

/// What an alert is about: the rules.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A ready batch stopped being ready.
    NotReady,
    /// A drift check found open findings.
    Drift,
    /// A probe failed, or the host's version changed.
    Probe,
    /// A key's balance is below its provider's threshold.
    BalanceLow,
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [
        AlertKind::NotReady,
        AlertKind::Drift,
        AlertKind::Probe,
        AlertKind::BalanceLow,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::NotReady => "not_ready",
            AlertKind::Drift => "drift",
            AlertKind::Probe => "probe",
            AlertKind::BalanceLow => "balance_low",
        }
    }
    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which message format a webhook takes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The product's own JSON.
    Generic,
    /// WeCom (企业微信) group bot markdown.
    Wecom,
    /// DingTalk (钉钉) bot markdown, signed in the URL when a secret is set.
    Dingtalk,
    /// Feishu (飞书) bot text, signed in the body.
    Feishu,
}

impl WebhookFormat {
    pub const ALL: [WebhookFormat; 4] = [
        WebhookFormat::Generic,
        WebhookFormat::Wecom,
        WebhookFormat::Dingtalk,
        WebhookFormat::Feishu,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Generic => "generic",
            WebhookFormat::Wecom => "wecom",
            WebhookFormat::Dingtalk => "dingtalk",
            WebhookFormat::Feishu => "feishu",
        }
    }
    pub fn parse(s: &str) -> Option<WebhookFormat> {
        WebhookFormat::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A webhook as shown: its URL masked, its secret never.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: i64,
    pub name: String,
    pub url_masked: String,
    pub format: WebhookFormat,
    pub kinds: Vec<AlertKind>,
    pub enabled: bool,
    pub created_at_ms: i64,
    pub created_by: String,
}

/// An incident: one condition, from when it was seen until it cleared.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    pub id: i64,
    pub kind: AlertKind,
    pub subject: String,
    pub host_id: Option<i64>,
    pub batch_id: Option<i64>,
    pub title: Said,
    pub detail: String,
    pub opened_at_ms: i64,
    pub updated_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
}

/// A delivery of an alert to a webhook.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook_id: i64,
    pub webhook: String,
    pub incident_id: Option<i64>,
    /// `firing`, `resolved`, `notice` or `test`.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_at_ms: i64,
    pub last_status: Option<i64>,
    pub last_error: String,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

/// What the watcher says, as (code, English, Chinese): job results, alert
/// titles, and refusals of its forms. [`Said::english`] reads the English;
/// the pages and the chat-bot messages the Chinese.
pub const WATCH_SAID: &[(&str, &str, &str)] = &[
    (
        "check.ready",
        "GET /v1/models lists {model} ({count} model(s)) and POST /v1/chat/completions answered",
        "GET /v1/models 列出了 {model}（共 {count} 个模型），POST /v1/chat/completions 已应答",
    ),
    (
        "job.probe",
        "probe: {status}, version {version}",
        "探测：{status}，版本 {version}",
    ),
    (
        "job.readiness",
        "{checked} batch(es) checked in {groups} group(s): {ready} ready, {not_ready} not ready",
        "检查了 {groups} 个分组中的 {checked} 个批次：{ready} 个就绪，{not_ready} 个未就绪",
    ),
    (
        "job.drift",
        "{open} open drift finding(s), {compared} object(s) compared",
        "{open} 项未处理的漂移，比对了 {compared} 个对象",
    ),
    (
        "job.balance",
        "balances: {known} known, {unknown} unknown, {unsupported} unsupported, {low} low",
        "余额：{known} 个已知，{unknown} 个未知，{unsupported} 个不支持，{low} 个偏低",
    ),
    (
        "job.retention",
        "{rows} history row(s) older than {days} days folded into daily counts",
        "{rows} 条超过 {days} 天的历史记录已折叠为每日计数",
    ),
    (
        "job.failed",
        "the job could not run: {error}",
        "任务未能运行：{error}",
    ),
    (
        "alert.not_ready",
        "Batch #{batch} on {host} is no longer ready ({access})",
        "主机 {host} 上的批次 #{batch} 不再就绪（{access}）",
    ),
    (
        "alert.probe_failing",
        "Host {host} fails its probe",
        "主机 {host} 探测失败",
    ),
    (
        "alert.version_changed",
        "Host {host} changed version: {from} → {to}",
        "主机 {host} 的版本已变化：{from} → {to}",
    ),
    (
        "alert.drift",
        "Host {host} has {count} open drift finding(s)",
        "主机 {host} 有 {count} 项未处理的漂移",
    ),
    (
        "alert.balance_low",
        "Batch #{batch} on {host}: {count} key(s) low on upstream balance",
        "主机 {host} 上的批次 #{batch}：{count} 个密钥的上游余额偏低",
    ),
    (
        "alert.test",
        "Test message to webhook {name}",
        "发往 Webhook {name} 的测试消息",
    ),
    (
        "webhook.name",
        "must be 1 to 64 characters",
        "必须是 1 到 64 个字符",
    ),
    (
        "webhook.url",
        "must be an http:// or https:// URL",
        "必须是 http:// 或 https:// 地址",
    ),
    (
        "webhook.url_refused",
        "is refused by the outbound policy: {why}",
        "被出站策略拒绝：{why}",
    ),
    (
        "webhook.format",
        "must be one of {words}",
        "必须是 {words} 之一",
    ),
    (
        "webhook.kind",
        "`{kind}` is not an alert rule; expected {words}",
        "`{kind}` 不是告警规则；应为 {words}",
    ),
    (
        "webhook.secret",
        "must be at most 256 characters",
        "最多 256 个字符",
    ),
    (
        "webhook.taken",
        "a webhook named {name} exists already",
        "已有名为 {name} 的 Webhook",
    ),
    (
        "schedule.job",
        "must be one of {words}",
        "必须是 {words} 之一",
    ),
    (
        "schedule.interval",
        "must be a whole number of seconds from {min} to {max}",
        "必须是 {min} 到 {max} 之间的整数秒",
    ),
    (
        "check.never_ready",
        "this batch was never proven ready: apply it first",
        "此批次从未被证明就绪：请先应用",
    ),
    (
        "check.not_standing",
        "only a succeeded batch is re-checked (this one is {status})",
        "只有成功的批次可以复查（此批次为 {status}）",
    ),
];

/// The English template of a watcher message.
pub fn watch_en(code: &str) -> Option<&'static str> {
    WATCH_SAID.iter().find(|(c, _, _)| *c == code).map(|t| t.1)
}

/// The Chinese template of a watcher message.
pub fn watch_zh(code: &str) -> Option<&'static str> {
    WATCH_SAID.iter().find(|(c, _, _)| *c == code).map(|t| t.2)
}

/// The Chinese template of an alert title (chat-bot messages).
pub fn alert_zh(code: &str) -> Option<&'static str> {
    watch_zh(code)
}

/// Attempts before a delivery is shown failed, and the first retry's
/// delay (doubling each time: 30 s, 1, 2, 4, 8 min).
pub const DELIVERY_ATTEMPTS: i64 = 6;
pub const DELIVERY_FIRST_RETRY_MS: i64 = 30_000;

/// When attempt `attempts + 1` is due after a failure at `now_ms`, or
/// `None` when the last attempt has been made.
pub fn delivery_retry_at(attempts_before: i64, now_ms: i64) -> Option<i64> {
    let made = attempts_before + 1;
    (made < DELIVERY_ATTEMPTS).then(|| now_ms + DELIVERY_FIRST_RETRY_MS * (1 << (made - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_and_stop_after_the_last_attempt() {
        let at: Vec<Option<i64>> = (0..DELIVERY_ATTEMPTS)
            .map(|a| delivery_retry_at(a, 0))
            .collect();
        assert_eq!(
            at,
            vec![
                Some(30_000),
                Some(60_000),
                Some(120_000),
                Some(240_000),
                Some(480_000),
                None
            ]
        );
    }

    #[test]
    fn names_round_trip() {
        for j in Job::HOST {
            assert_eq!(Job::parse(j.as_str()), Some(j));
        }
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::parse(k.as_str()), Some(k));
        }
        for f in WebhookFormat::ALL {
            assert_eq!(WebhookFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(Job::Probe.key(Some(3)), "host:3:probe");
    }
}
