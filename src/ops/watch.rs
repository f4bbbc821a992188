//! Keep watching (PRODUCT.md §11): per-host scheduled jobs claimed through
//! lease rows (probe, readiness re-check, drift check, upstream balances)
//! plus product-wide retention; incidents that open once and resolve once;
//! webhook deliveries through an outbox with retries, each signed.
//!
//! Time comes from a [`Clock`], so tests move it by hand.

use super::readiness::{prove, NotReady};
use super::{aad, Core, OpError};
use crate::model::{
    alert_zh, delivery_retry_at, AccessStatus, AlertKind, BalanceState, BalanceView, CheckOutcome,
    CheckView, DeliveryView, FieldError, IncidentView, Job, Said, ScheduleView, WebhookFormat,
    WebhookView, MAX_INTERVAL_S, MIN_INTERVAL_S,
};
use crate::secrets::Secret;
use crate::store::{
    BalanceRow, CheckRow, DeliveryOutcome, DeliveryRow, IncidentChange, IncidentRow, NewWebhook,
    ScheduleRow, WatchTarget, WebhookRow,
};
use crate::upstream::{self, Family};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The actor the audit log and the checks record for scheduled work.
pub const SCHEDULER_ACTOR: &str = "scheduler";

/// The header that carries a delivery's signature: `sha256=` and the hex
/// HMAC-SHA256 of the body under the webhook's secret.
pub const SIGNATURE_HEADER: &str = "x-relay-signature";

/// Where the time comes from.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::store::now_ms()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(ms)))
    }
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the watcher is told by the server's configuration.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// History older than this is folded into daily counts.
    pub history_days: i64,
    /// Most keys whose balance is read at once.
    pub balance_concurrency: usize,
    /// How often a running job renews its lease.
    pub renew_every: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            history_days: 30,
            balance_concurrency: 4,
            renew_every: RENEW_EVERY,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickReport {
    /// `(job key, outcome)` of each job this process ran.
    pub ran: Vec<(String, String)>,
    /// Deliveries attempted: delivered, to retry, failed for good.
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// A job's result: `ok` (nothing wrong), `attention` (it found something),
/// with what it says.
struct JobResult {
    attention: bool,
    said: Said,
}

/// How long a job's lease lasts without renewal: a holder on another
/// machine that stopped is overtaken after this; a holder known dead on
/// this machine at once. A running job renews it every [`RENEW_EVERY`].
const JOB_LEASE_MS: i64 = 3 * 60_000;

/// How often a running job renews its lease (well inside the shortest).
const RENEW_EVERY: Duration = Duration::from_secs(60);

/// Spreads runs: up to a tenth of the interval (at most a minute) later.
fn jitter_ms(interval_s: i64) -> i64 {
    let span = (interval_s * 100).min(60_000);
    if span <= 0 {
        return 0;
    }
    use rand::Rng;
    rand::thread_rng().gen_range(0..=span)
}

/// A webhook URL as shown: scheme and host, the rest masked (a bot's URL
/// carries its token in the path or the query).
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = format!(
                "{}{}",
                u.path(),
                u.query().map(|q| format!("?{q}")).unwrap_or_default()
            );
            let tail: String = rest
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if rest.chars().count() > 8 {
                format!("{}://{host}{port}/…{tail}", u.scheme())
            } else {
                format!("{}://{host}{port}{rest}", u.scheme())
            }
        }
        Err(_) => "…".into(),
    }
}

/// The hex HMAC-SHA256 of `body` under `secret`.
pub fn sign_body(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn b64_hmac(key: &[u8], msg: &[u8]) -> String {
    use base64::Engine;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(msg);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// One key's balance reading: (fingerprint, state, amount and currency, why).
type Reading = (String, BalanceState, Option<(f64, String)>, String);

/// What a person typed to add a webhook.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct WebhookInput {
    pub name: String,
    pub url: String,
    /// `generic`, `wecom`, `dingtalk` or `feishu`.
    pub format: String,
    /// The rules it receives (empty: all).
    pub kinds: Vec<String>,
    /// The bot's own signing secret (DingTalk, Feishu), or empty: the
    /// product makes one and shows it once.
    pub secret: String,
}

fn bad(field: &str, code: &str, args: &[(&str, &dyn std::fmt::Display)]) -> OpError {
    OpError::Invalid(FieldError::coded(field, code, args))
}

impl WebhookInput {
    fn check(&self) -> Result<(String, String, WebhookFormat, Vec<AlertKind>), OpError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(bad("name", "webhook.name", &[]));
        }
        let url = self.url.trim();
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => return Err(bad("url", "webhook.url", &[])),
        }
        if let Err(why) = crate::host::outbound::policy().check_url(url) {
            return Err(bad("url", "webhook.url_refused", &[("why", &why)]));
        }
        let format = WebhookFormat::parse(self.format.trim()).ok_or_else(|| {
            bad(
                "format",
                "webhook.format",
                &[("words", &"generic, wecom, dingtalk, feishu")],
            )
        })?;
        let mut kinds = Vec::new();
        for k in self
            .kinds
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
        {
            let kind = AlertKind::parse(k).ok_or_else(|| {
                bad(
                    "kinds",
                    "webhook.kind",
                    &[
                        ("kind", &k),
                        ("words", &"not_ready, drift, probe, balance_low"),
                    ],
                )
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.is_empty() {
            kinds = AlertKind::ALL.to_vec();
        }
        if self.secret.chars().count() > 256 {
            return Err(bad("secret", "webhook.secret", &[]));
        }
        Ok((name.to_string(), url.to_string(), format, kinds))
    }
}

fn webhook_view(r: &WebhookRow) -> WebhookView {
    WebhookView {
        id: r.id,
        name: r.name.clone(),
        url_masked: r.url_masked.clone(),
        format: WebhookFormat::parse(&r.format).unwrap_or(WebhookFormat::Generic),
        kinds: r.kinds.split(',').filter_map(AlertKind::parse).collect(),
        enabled: r.enabled,
        created_at_ms: r.created_at_ms,
        created_by: r.actor.clone(),
    }
}

fn delivery_view(d: &DeliveryRow, webhooks: &BTreeMap<i64, String>) -> DeliveryView {
    DeliveryView {
        id: d.id,
        webhook_id: d.webhook_id,
        webhook: webhooks.get(&d.webhook_id).cloned().unwrap_or_default(),
        incident_id: d.incident_id,
        event: d.event.clone(),
        state: d.state.clone(),
        attempts: d.attempts,
        next_at_ms: d.next_at_ms,
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        created_at_ms: d.created_at_ms,
        finished_at_ms: d.finished_at_ms,
    }
}

fn said_json(s: &Said) -> String {
    serde_json::to_string(s).expect("a message serialises")
}

pub(crate) fn incident_view(r: &IncidentRow) -> IncidentView {
    IncidentView {
        id: r.id,
        kind: AlertKind::parse(&r.kind).unwrap_or(AlertKind::Probe),
        subject: r.subject.clone(),
        host_id: r.host_id,
        batch_id: r.batch_id,
        title: Said::parse(&r.title).unwrap_or_else(|| Said {
            code: r.title.clone(),
            args: Default::default(),
        }),
        detail: r.detail.clone(),
        opened_at_ms: r.opened_at_ms,
        updated_at_ms: r.updated_at_ms,
        resolved_at_ms: r.resolved_at_ms,
    }
}

/// The generic JSON of an alert event (what the outbox stores; the chat
/// formats are written from it when sent).
fn event_json(i: &IncidentRow, event: &str) -> String {
    let title = Said::parse(&i.title);
    json!({
        "source": "sub2api-cn-relay-manager",
        "event": event,
        "kind": i.kind,
        "incident_id": i.id,
        "subject": i.subject,
        "host_id": i.host_id,
        "batch_id": i.batch_id,
        "title": title.as_ref().map(Said::english).unwrap_or_else(|| i.title.clone()),
        "title_zh": title.as_ref().map(|t| t.fill(alert_zh(&t.code).unwrap_or(""))),
        "title_code": title,
        "detail": i.detail,
        "opened_at_ms": i.opened_at_ms,
        "resolved_at_ms": i.resolved_at_ms,
    })
    .to_string()
}

fn notice_json(
    kind: AlertKind,
    event: &str,
    title: &Said,
    detail: &str,
    host_id: Option<i64>,
    now_ms: i64,
) -> String {
    json!({
        "source": "sub2api-cn-relay-manager",
        "event": event,
        "kind": kind.as_str(),
        "incident_id": null,
        "subject": host_id.map(|h| format!("host:{h}")),
        "host_id": host_id,
        "batch_id": null,
        "title": title.english(),
        "title_zh": title.fill(alert_zh(&title.code).unwrap_or("")),
        "title_code": title,
        "detail": detail,
        "opened_at_ms": now_ms,
        "resolved_at_ms": null,
    })
    .to_string()
}

/// The body a webhook of `format` is sent, from the generic event, and the
/// query its URL gains (DingTalk's signature).
fn render(
    format: WebhookFormat,
    generic: &str,
    bot_secret: Option<&str>,
    now_ms: i64,
) -> (String, String) {
    if format == WebhookFormat::Generic {
        return (generic.to_string(), String::new());
    }
    let v: Value = serde_json::from_str(generic).unwrap_or(Value::Null);
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (tag_zh, tag_en) = match s("event").as_str() {
        "firing" => ("告警", "ALERT"),
        "resolved" => ("已恢复", "RESOLVED"),
        "test" => ("测试", "TEST"),
        _ => ("通知", "NOTICE"),
    };
    let zh = s("title_zh");
    let en = s("title");
    let detail = s("detail");
    let mut text = format!("【{tag_zh}】{zh}\n[{tag_en}] {en}");
    if !detail.is_empty() {
        text.push_str(&format!("\n{detail}"));
    }
    text.push_str("\n— Sub2API CN Relay Manager");
    match format {
        WebhookFormat::Wecom => (
            json!({"msgtype": "markdown", "markdown": {"content": text}}).to_string(),
            String::new(),
        ),
        WebhookFormat::Dingtalk => {
            let body = json!({"msgtype": "markdown", "markdown": {"title": format!("【{tag_zh}】{zh}"), "text": text.replace('\n', "\n\n")}}).to_string();
            // https://open.dingtalk.com: sign = base64(HMAC-SHA256(secret,
            // "timestamp\nsecret")), both in the query.
            let query = bot_secret
                .map(|sec| {
                    let sign = b64_hmac(sec.as_bytes(), format!("{now_ms}\n{sec}").as_bytes());
                    format!("timestamp={now_ms}&sign={}", crate::model::urlencode(&sign))
                })
                .unwrap_or_default();
            (body, query)
        }
        WebhookFormat::Feishu => {
            let mut body = json!({"msg_type": "text", "content": {"text": text}});
            // Feishu: sign = base64(HMAC-SHA256(key = "timestamp\nsecret",
            // message = empty)), timestamp in seconds, both in the body.
            if let Some(sec) = bot_secret {
                let ts = now_ms / 1000;
                body["timestamp"] = json!(ts.to_string());
                body["sign"] = json!(b64_hmac(format!("{ts}\n{sec}").as_bytes(), b""));
            }
            (body.to_string(), String::new())
        }
        WebhookFormat::Generic => unreachable!(),
    }
}

/// Whether a chat bot's 200 answer says it took the message: WeCom and
/// DingTalk say `errcode: 0`, Feishu `code: 0` (or `StatusCode: 0`).
fn bot_accepted(format: WebhookFormat, body: &str) -> Result<(), String> {
    if format == WebhookFormat::Generic {
        return Ok(());
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = v
        .get("errcode")
        .or_else(|| v.get("code"))
        .or_else(|| v.get("StatusCode"))
        .and_then(Value::as_i64);
    match code {
        Some(0) => Ok(()),
        Some(c) => {
            let msg = v
                .get("errmsg")
                .or_else(|| v.get("msg"))
                .and_then(Value::as_str)
                .unwrap_or("");
            Err(format!("the bot answered code {c}: {msg}"))
        }
        None => Err("the bot's answer has no result code".into()),
    }
}

fn clip(s: &str, n: usize) -> String {
    let t: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        format!("{t}…")
    } else {
        t
    }
}

impl Core {
    // ---- schedules -------------------------------------------------------

    /// Adds the schedule rows that hosts (and the product) lack, each first
    /// due one interval from now.
    pub async fn ensure_schedules(&self, now_ms: i64) -> Result<(), OpError> {
        let mut rows = Vec::new();
        for h in self.store.hosts().await? {
            for job in Job::HOST {
                let i = job.default_interval_s();
                rows.push((
                    job.key(Some(h.id)),
                    Some(h.id),
                    job.as_str(),
                    i,
                    now_ms + i * 1000 + jitter_ms(i),
                ));
            }
        }
        let r = Job::Retention;
        let i = r.default_interval_s();
        rows.push((r.key(None), None, r.as_str(), i, now_ms + 60_000));
        self.store.ensure_schedules(&rows).await?;
        Ok(())
    }

    /// A host's schedule as the host page shows it.
    pub async fn host_schedule(
        &self,
        host_id: i64,
        now_ms: i64,
    ) -> Result<Vec<ScheduleView>, OpError> {
        self.host_row(host_id).await?;
        let stored: Vec<ScheduleView> = self
            .store
            .schedules(Some(host_id))
            .await?
            .iter()
            .filter_map(schedule_view)
            .collect();
        // In the order a person reads them: probe, readiness, drift,
        // balance. A job the scheduler has not stored yet (a host added
        // since its last tick) shows its default, due one interval on;
        // reading writes nothing.
        Ok(Job::HOST
            .iter()
            .map(|job| {
                stored
                    .iter()
                    .find(|r| r.job == *job)
                    .cloned()
                    .unwrap_or_else(|| ScheduleView {
                        job: *job,
                        interval_s: job.default_interval_s(),
                        enabled: true,
                        next_due_ms: now_ms + job.default_interval_s() * 1000,
                        running_on: None,
                        last_started_ms: None,
                        last_finished_ms: None,
                        last_outcome: None,
                        last_detail: String::new(),
                    })
            })
            .collect())
    }

    /// Sets how often a host's job runs, or switches it off. Audited.
    pub async fn set_host_schedule(
        &self,
        actor: &str,
        host_id: i64,
        job: &str,
        interval_s: &str,
        enabled: bool,
        now_ms: i64,
    ) -> Result<(), OpError> {
        self.host_row(host_id).await?;
        let job = Job::parse(job.trim())
            .filter(|j| *j != Job::Retention)
            .ok_or_else(|| {
                bad(
                    "job",
                    "schedule.job",
                    &[("words", &"probe, readiness, drift, balance")],
                )
            })?;
        let interval: i64 = interval_s
            .trim()
            .parse()
            .ok()
            .filter(|i| (MIN_INTERVAL_S..=MAX_INTERVAL_S).contains(i))
            .ok_or_else(|| {
                bad(
                    "interval_s",
                    "schedule.interval",
                    &[("min", &MIN_INTERVAL_S), ("max", &MAX_INTERVAL_S)],
                )
            })?;
        self.ensure_schedules(now_ms).await?;
        let changed = self
            .store
            .set_schedule(
                actor,
                &job.key(Some(host_id)),
                interval,
                enabled,
                now_ms + interval * 1000,
            )
            .await?;
        if !changed {
            return Err(OpError::NotFound(format!(
                "schedule {}",
                job.key(Some(host_id))
            )));
        }
        Ok(())
    }

    /// Runs what is due at the clock's time on this process (`owner`), then
    /// what is due in the outbox. Several processes on one database may
    /// tick at once: each due run is claimed by exactly one of them.
    pub async fn tick(
        &self,
        owner: &str,
        clock: &dyn Clock,
        settings: &WatchSettings,
    ) -> Result<TickReport, OpError> {
        let mut report = TickReport::default();
        self.ensure_schedules(clock.now_ms()).await?;
        let now = clock.now_ms();
        for row in self.store.due_schedules(now, 64).await? {
            if held_by_live(&row, now) {
                continue;
            }
            let Some(job) = Job::parse(&row.job) else {
                continue;
            };
            let Some(run_id) = self
                .store
                .claim_schedule(&row, owner, now, now + JOB_LEASE_MS)
                .await?
            else {
                continue;
            };
            // The lease is renewed while the job runs, so a long run is
            // never taken for a dead one.
            let result = {
                let run = self.run_job(job, row.host_id, clock, settings);
                tokio::pin!(run);
                let mut renew = tokio::time::interval(settings.renew_every);
                renew.tick().await;
                loop {
                    tokio::select! {
                        r = &mut run => break r,
                        _ = renew.tick() => {
                            let until = clock.now_ms() + JOB_LEASE_MS;
                            if let Err(e) = self.store.renew_schedule_lease(&row.job_key, owner, until).await {
                                tracing::warn!(job = %row.job_key, error = %e, "could not renew a job's lease");
                            }
                        }
                    }
                }
            };
            let (outcome, detail) = match &result {
                Ok(r) if r.attention => ("attention", said_json(&r.said)),
                Ok(r) => ("ok", said_json(&r.said)),
                Err(e) => {
                    tracing::warn!(job = %row.job_key, error = %e, "scheduled job failed");
                    (
                        "failed",
                        said_json(&Said::new(
                            "job.failed",
                            &[("error", &clip(&e.to_string(), 300))],
                        )),
                    )
                }
            };
            let next = now + row.interval_s * 1000 + jitter_ms(row.interval_s);
            self.store
                .finish_schedule(
                    &row.job_key,
                    owner,
                    run_id,
                    clock.now_ms(),
                    next,
                    outcome,
                    &detail,
                )
                .await?;
            report.ran.push((row.job_key.clone(), outcome.to_string()));
        }
        let (d, r, f) = self.deliver_due(owner, clock).await?;
        report.delivered = d;
        report.retrying = r;
        report.failed = f;
        Ok(report)
    }

    async fn run_job(
        &self,
        job: Job,
        host_id: Option<i64>,
        clock: &dyn Clock,
        settings: &WatchSettings,
    ) -> Result<JobResult, OpError> {
        match (job, host_id) {
            (Job::Retention, _) => {
                let cutoff = clock.now_ms() - settings.history_days * 86_400_000;
                let rows = self.store.prune_history(cutoff).await?;
                Ok(JobResult {
                    attention: false,
                    said: Said::new(
                        "job.retention",
                        &[("rows", &rows), ("days", &settings.history_days)],
                    ),
                })
            }
            (_, None) => Err(OpError::NotFound("the job's host".into())),
            (Job::Probe, Some(h)) => self.probe_job(h, clock).await,
            (Job::Readiness, Some(h)) => self.readiness_job(h, clock).await,
            (Job::Drift, Some(h)) => self.drift_job(h, clock).await,
            (Job::Balance, Some(h)) => self.balance_job(h, clock, settings).await,
        }
    }

    async fn probe_job(&self, host_id: i64, clock: &dyn Clock) -> Result<JobResult, OpError> {
        let before = self.store.latest_probe(host_id).await?;
        let rec = self.probe_host(SCHEDULER_ACTOR, host_id).await?;
        let host = self.host_row(host_id).await?;
        let now = clock.now_ms();
        let failing = rec.report.status == crate::model::ProbeStatus::Failing;
        let headline = rec.report.headline();
        let title = Said::new("alert.probe_failing", &[("host", &host.name)]);
        self.incident(
            AlertKind::Probe,
            &format!("host:{host_id}"),
            Some(host_id),
            None,
            failing.then(|| (title, headline.clone())),
            now,
        )
        .await?;
        let was = before.and_then(|b| b.report.version);
        let is = rec.report.version.clone();
        let mut changed = false;
        if let (Some(was), Some(is)) = (&was, &is) {
            if was != is {
                changed = true;
                let t = Said::new(
                    "alert.version_changed",
                    &[("host", &host.name), ("from", was), ("to", is)],
                );
                let body = notice_json(AlertKind::Probe, "notice", &t, "", Some(host_id), now);
                self.store
                    .enqueue_notice(AlertKind::Probe.as_str(), &body, now)
                    .await?;
            }
        }
        Ok(JobResult {
            attention: failing || changed,
            said: Said::new(
                "job.probe",
                &[
                    ("status", &rec.report.status.as_str()),
                    ("version", &is.unwrap_or_else(|| "?".into())),
                ],
            ),
        })
    }

    /// Opens, updates or resolves the incident of `kind` on `subject`, and
    /// puts its alert or resolved message in the outbox (one transaction).
    async fn incident(
        &self,
        kind: AlertKind,
        subject: &str,
        host_id: Option<i64>,
        batch_id: Option<i64>,
        bad: Option<(Said, String)>,
        now_ms: i64,
    ) -> Result<IncidentChange, OpError> {
        let title = bad.as_ref().map(|(t, d)| (said_json(t), d.clone()));
        Ok(self
            .store
            .observe_incident(
                kind.as_str(),
                subject,
                host_id,
                batch_id,
                title.as_ref().map(|(t, d)| (t.as_str(), d.as_str())),
                now_ms,
                event_json,
            )
            .await?)
    }

    // ---- readiness -------------------------------------------------------

    /// Re-checks one batch's readiness now (a person's button or the API):
    /// one listing and at most one 1-token completion through the host.
    pub async fn recheck_readiness(
        &self,
        actor: &str,
        batch_id: i64,
        clock: &dyn Clock,
    ) -> Result<CheckView, OpError> {
        let t = self
            .store
            .watch_target(batch_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))?;
        let head = self.batch_head_row(batch_id).await?;
        if t.ready_access.is_none() {
            return Err(bad("batch", "check.never_ready", &[]));
        }
        if !matches!(head.status.as_str(), "succeeded" | "partially_succeeded") {
            return Err(bad(
                "batch",
                "check.not_standing",
                &[("status", &head.status)],
            ));
        }
        let ids = self.check_group(actor, head.host_id, &[t], clock).await?;
        let id = ids
            .first()
            .copied()
            .ok_or_else(|| OpError::NotFound("check".into()))?;
        self.check(id).await
    }

    async fn check(&self, id: i64) -> Result<CheckView, OpError> {
        let r = self
            .store
            .check_row(id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("check {id}")))?;
        Ok(check_view(&r))
    }

    /// A batch's readiness checks, newest first.
    pub async fn readiness_checks(
        &self,
        batch_id: i64,
        limit: i64,
    ) -> Result<Vec<CheckView>, OpError> {
        let rows = self.store.checks(batch_id, limit).await?;
        if rows.is_empty() {
            // None: a batch never checked, or no such batch (404).
            self.batch_head_row(batch_id).await?;
        }
        Ok(rows.iter().map(check_view).collect())
    }

    /// Closes the open incidents of `kind` on batches no longer watched
    /// (rolled back, being re-applied): what they said no longer holds.
    async fn close_unwatched(
        &self,
        kind: AlertKind,
        host_id: i64,
        watched: &[WatchTarget],
        now_ms: i64,
    ) -> Result<(), OpError> {
        for b in self
            .store
            .open_incident_batches(kind.as_str(), host_id)
            .await?
        {
            if !watched.iter().any(|t| t.id == b) {
                self.incident(
                    kind,
                    &format!("batch:{b}"),
                    Some(host_id),
                    Some(b),
                    None,
                    now_ms,
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn readiness_job(&self, host_id: i64, clock: &dyn Clock) -> Result<JobResult, OpError> {
        let targets = self.store.watch_targets(host_id).await?;
        self.close_unwatched(AlertKind::NotReady, host_id, &targets, clock.now_ms())
            .await?;
        // Batches of one group share its access: one gate per group proves
        // (or refutes) them all, so a check spends one completion per group.
        let mut groups: BTreeMap<String, Vec<WatchTarget>> = BTreeMap::new();
        for t in targets {
            groups
                .entry(t.group_name.clone().unwrap_or_default())
                .or_default()
                .push(t);
        }
        let (mut checked, mut ready) = (0usize, 0usize);
        for batch in groups.values() {
            for id in self
                .check_group(SCHEDULER_ACTOR, host_id, batch, clock)
                .await?
            {
                checked += 1;
                if self.check(id).await?.outcome == CheckOutcome::Ready {
                    ready += 1;
                }
            }
        }
        Ok(JobResult {
            attention: ready < checked,
            said: Said::new(
                "job.readiness",
                &[
                    ("checked", &checked),
                    ("groups", &groups.len()),
                    ("ready", &ready),
                    ("not_ready", &(checked - ready)),
                ],
            ),
        })
    }

    /// Runs the gate once for batches of one group and records a check for
    /// each (moving its access status), with the incident it opens or
    /// resolves. Returns the check ids.
    async fn check_group(
        &self,
        actor: &str,
        host_id: i64,
        batches: &[WatchTarget],
        clock: &dyn Clock,
    ) -> Result<Vec<i64>, OpError> {
        let Some(first) = batches.first() else {
            return Ok(Vec::new());
        };
        let host = self.host_row(host_id).await?;
        let group = first.group_name.clone().unwrap_or_default();
        let smoke = first.smoke_model.clone().unwrap_or_default();
        let started = std::time::Instant::now();
        let key = match self.store.access_key(host_id, &group).await? {
            Some((_, sealed, _)) => Some(
                self.cipher
                    .open(&sealed, &aad::access_key(host_id, &group))?,
            ),
            None => None,
        };
        let gate = match &key {
            None => Err(NotReady::Route(format!(
                "no probe-user key is stored for group {group}: re-apply a batch of this group"
            ))),
            Some(key) => {
                let (client, _) = self.host_client(&host)?;
                prove(
                    &client,
                    key,
                    &smoke,
                    first.allowlist_host,
                    Duration::ZERO,
                    |_| async {},
                )
                .await
            }
        };
        let duration_ms = started.elapsed().as_millis() as i64;
        let (outcome, detail, evidence) = match &gate {
            Ok(p) => (
                CheckOutcome::Ready,
                said_json(&Said::new(
                    "check.ready",
                    &[("model", &smoke), ("count", &p.models.len())],
                )),
                json!({
                    "models": "GET /v1/models",
                    "listed": p.models,
                    "smoke_model_listed": p.listed,
                    "chat": p.chat_request,
                    "answer": p.chat,
                    "authorization": key.as_ref().map(|k| format!("Bearer {}", k.expose())),
                }),
            ),
            Err(NotReady::Route(m)) => (
                CheckOutcome::Broken,
                m.clone(),
                json!({"models": "GET /v1/models", "error": m,
                       "authorization": key.as_ref().map(|k| format!("Bearer {}", k.expose()))}),
            ),
            Err(NotReady::Serving(m)) => (
                CheckOutcome::Degraded,
                m.clone(),
                json!({"models": "GET /v1/models", "chat": "POST /v1/chat/completions", "error": m,
                       "authorization": key.as_ref().map(|k| format!("Bearer {}", k.expose()))}),
            ),
        };
        let evidence = super::apply::ev(&evidence);
        let mut ids = Vec::new();
        for b in batches {
            let before = AccessStatus::parse(&b.access_status);
            let after = match outcome {
                CheckOutcome::Ready => {
                    if before.is_ready() {
                        before
                    } else {
                        b.ready_access
                            .as_deref()
                            .map(AccessStatus::parse)
                            .unwrap_or(before)
                    }
                }
                CheckOutcome::Degraded => AccessStatus::Degraded,
                CheckOutcome::Broken => AccessStatus::Broken,
            };
            let now = clock.now_ms();
            let id = self
                .store
                .insert_check(&CheckRow {
                    id: 0,
                    batch_id: b.id,
                    host_id,
                    at_ms: now,
                    actor: actor.to_string(),
                    outcome: outcome.as_str().into(),
                    access_before: before.as_str().into(),
                    access_after: after.as_str().into(),
                    detail: detail.clone(),
                    duration_ms,
                    evidence_json: evidence.clone(),
                })
                .await?;
            let title = Said::new(
                "alert.not_ready",
                &[
                    ("batch", &b.id),
                    ("host", &host.name),
                    ("access", &after.as_str()),
                ],
            );
            self.incident(
                AlertKind::NotReady,
                &format!("batch:{}", b.id),
                Some(host_id),
                Some(b.id),
                (outcome != CheckOutcome::Ready).then(|| (title, clip(&detail, 500))),
                now,
            )
            .await?;
            ids.push(id);
        }
        Ok(ids)
    }

    // ---- drift -----------------------------------------------------------

    async fn drift_job(&self, host_id: i64, clock: &dyn Clock) -> Result<JobResult, OpError> {
        let r = self.drift_check(SCHEDULER_ACTOR, host_id).await?;
        let host = self.host_row(host_id).await?;
        let open = r.findings.iter().filter(|f| f.ignored.is_none()).count();
        let detail = r
            .findings
            .iter()
            .filter(|f| f.ignored.is_none())
            .take(5)
            .map(|f| format!("{} {} {}", f.class.as_str(), f.kind, f.target))
            .collect::<Vec<_>>()
            .join("; ");
        self.incident(
            AlertKind::Drift,
            &format!("host:{host_id}"),
            Some(host_id),
            None,
            (open > 0).then(|| {
                (
                    Said::new("alert.drift", &[("host", &host.name), ("count", &open)]),
                    detail,
                )
            }),
            clock.now_ms(),
        )
        .await?;
        Ok(JobResult {
            attention: open > 0,
            said: Said::new("job.drift", &[("open", &open), ("compared", &r.compared)]),
        })
    }

    // ---- balances --------------------------------------------------------

    async fn balance_job(
        &self,
        host_id: i64,
        clock: &dyn Clock,
        settings: &WatchSettings,
    ) -> Result<JobResult, OpError> {
        let host = self.host_row(host_id).await?;
        let mut tally = [0usize; 4]; // known, unknown, unsupported, low
        let targets = self.store.watch_targets(host_id).await?;
        self.close_unwatched(AlertKind::BalanceLow, host_id, &targets, clock.now_ms())
            .await?;
        for t in targets {
            let views = self.read_balances(t.id, clock, settings).await?;
            let low: Vec<&BalanceView> = views.iter().filter(|v| v.low).collect();
            for v in &views {
                tally[match v.state {
                    BalanceState::Known => 0,
                    BalanceState::Unknown => 1,
                    BalanceState::Unsupported => 2,
                }] += 1;
            }
            tally[3] += low.len();
            let detail = low
                .iter()
                .take(5)
                .map(|v| {
                    format!(
                        "{} {:.2} {}",
                        v.masked,
                        v.amount.unwrap_or(0.0),
                        v.currency.clone().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            self.incident(
                AlertKind::BalanceLow,
                &format!("batch:{}", t.id),
                Some(host_id),
                Some(t.id),
                (!low.is_empty()).then(|| {
                    (
                        Said::new(
                            "alert.balance_low",
                            &[
                                ("batch", &t.id),
                                ("host", &host.name),
                                ("count", &low.len()),
                            ],
                        ),
                        detail,
                    )
                }),
                clock.now_ms(),
            )
            .await?;
        }
        Ok(JobResult {
            attention: tally[3] > 0,
            said: Said::new(
                "job.balance",
                &[
                    ("known", &tally[0]),
                    ("unknown", &tally[1]),
                    ("unsupported", &tally[2]),
                    ("low", &tally[3]),
                ],
            ),
        })
    }

    /// Reads the balance of every key of a batch at its provider (one GET
    /// each, nothing spent) and stores each reading: known, unknown (the
    /// endpoint errored or said nothing readable) or unsupported.
    pub async fn read_balances(
        &self,
        batch_id: i64,
        clock: &dyn Clock,
        settings: &WatchSettings,
    ) -> Result<Vec<BalanceView>, OpError> {
        let batch = self.batch_head_row(batch_id).await?;
        let (_, pack) = self.pack(batch.pack_version_id).await?;
        let provider = pack
            .providers
            .get(&batch.provider_key)
            .ok_or_else(|| OpError::NotFound(format!("provider {}", batch.provider_key)))?;
        let family = provider
            .api_family
            .as_deref()
            .and_then(Family::parse)
            .unwrap_or_else(|| Family::detect(&batch.provider_key, &provider.base_url));
        let mut keys = Vec::new();
        for (fp, sealed, _) in self.store.batch_keys(batch_id).await? {
            let key = self
                .cipher
                .open(&sealed, &aad::batch_key(&batch.uid, &fp))?;
            keys.push((fp, key));
        }
        // A host with CN platforms reads a kimi or deepseek account's
        // balance itself (GET /admin/cn-providers/accounts/:id/balance):
        // asked first, the provider directly when it cannot say.
        let platform = self
            .store
            .watch_target(batch_id)
            .await?
            .and_then(|t| t.platform)
            .unwrap_or_default();
        let mut accounts: BTreeMap<String, String> = BTreeMap::new();
        let host = if matches!(platform.as_str(), "deepseek" | "kimi") {
            for l in self.store.ledger_for_batch(batch_id).await? {
                if let (true, Some(fp)) =
                    (l.kind == "account" && l.status == "active", l.fingerprint)
                {
                    accounts.insert(fp, l.remote_id);
                }
            }
            let row = self.host_row(batch.host_id).await?;
            Some(self.host_client(&row)?.0)
        } else {
            None
        };
        let (host, accounts) = (&host, &accounts);
        let base = provider.base_url.clone();
        let readings: Vec<Reading> = futures_util::stream::iter(keys)
            .map(|(fp, key)| {
                let base = base.clone();
                async move {
                    let mut via_host = String::new();
                    if let (Some(c), Some(account)) = (host, accounts.get(&fp)) {
                        match host_balance(c, account).await {
                            Ok((amount, currency, detail)) => {
                                return (fp, BalanceState::Known, Some((amount, currency)), detail)
                            }
                            Err(why) => via_host = format!("{why}; "),
                        }
                    }
                    match upstream::balance(family, &base, &key).await {
                        None => (
                            fp,
                            BalanceState::Unsupported,
                            None,
                            format!("{via_host}{family:?} has no balance endpoint for an API key"),
                        ),
                        Some(call) => match upstream::read_balance(family, &base, &call) {
                            Ok(v) => (
                                fp,
                                BalanceState::Known,
                                Some(v),
                                format!("{via_host}the provider: {} → 200", call.request),
                            ),
                            Err(why) => (
                                fp,
                                BalanceState::Unknown,
                                None,
                                clip(&format!("{via_host}the provider: {why}"), 400),
                            ),
                        },
                    }
                }
            })
            .buffer_unordered(settings.balance_concurrency.max(1))
            .collect()
            .await;
        let now = clock.now_ms();
        let rows: Vec<BalanceRow> = readings
            .into_iter()
            .map(|(fingerprint, state, value, detail)| BalanceRow {
                batch_id,
                fingerprint,
                state: state.as_str().into(),
                amount: value.as_ref().map(|v| v.0),
                currency: value.map(|v| v.1),
                detail,
                at_ms: now,
                masked: String::new(),
            })
            .collect();
        self.store.put_balances(&rows).await?;
        self.balances_with(batch_id, provider.low_balance).await
    }

    /// A person's (or a script's) reading of a batch's balances now:
    /// [`Core::read_balances`], audited.
    pub async fn read_balances_now(
        &self,
        actor: &str,
        batch_id: i64,
        clock: &dyn Clock,
        settings: &WatchSettings,
    ) -> Result<Vec<BalanceView>, OpError> {
        let b = self.read_balances(batch_id, clock, settings).await?;
        let n = |s: BalanceState| b.iter().filter(|x| x.state == s).count();
        self.store
            .audit(
                actor,
                "batch.read_balances",
                &crate::model::batch_target(batch_id),
                "ok",
                &format!(
                    "{} key(s): {} known, {} unknown, {} unsupported, {} low",
                    b.len(),
                    n(BalanceState::Known),
                    n(BalanceState::Unknown),
                    n(BalanceState::Unsupported),
                    b.iter().filter(|x| x.low).count()
                ),
            )
            .await?;
        Ok(b)
    }

    /// A batch's latest balance readings, in key order.
    pub async fn balances(&self, batch_id: i64) -> Result<Vec<BalanceView>, OpError> {
        let rows = self.store.balances(batch_id).await?;
        let batch = self.batch_head_row(batch_id).await?;
        if rows.is_empty() {
            // Never read: no pack to open (a batch page shows this often).
            return Ok(Vec::new());
        }
        let (_, pack) = self.pack(batch.pack_version_id).await?;
        let low = pack
            .providers
            .get(&batch.provider_key)
            .and_then(|p| p.low_balance);
        Ok(balance_views(rows, low))
    }

    async fn balances_with(
        &self,
        batch_id: i64,
        threshold: Option<f64>,
    ) -> Result<Vec<BalanceView>, OpError> {
        Ok(balance_views(
            self.store.balances(batch_id).await?,
            threshold,
        ))
    }

    // ---- incidents -------------------------------------------------------

    /// Open incidents (oldest first), then the newest resolved ones.
    pub async fn incidents(
        &self,
        resolved_limit: i64,
    ) -> Result<(Vec<IncidentView>, Vec<IncidentView>), OpError> {
        let open = self.store.incidents(true, 200).await?;
        let resolved = self.store.incidents(false, resolved_limit).await?;
        Ok((
            open.iter().map(incident_view).collect(),
            resolved.iter().map(incident_view).collect(),
        ))
    }

    // ---- webhooks and deliveries ----------------------------------------

    /// Adds a webhook. Returns it and, when the product made the signing
    /// secret, the secret (shown once; only its sealed form is kept).
    pub async fn create_webhook(
        &self,
        actor: &str,
        input: &WebhookInput,
    ) -> Result<(WebhookView, Option<String>), OpError> {
        let (name, url, format, kinds) = input.check()?;
        let given = !input.secret.trim().is_empty();
        let secret = if given {
            Secret::new(input.secret.trim().to_string())
        } else {
            Secret::new(format!("whsec_{}", crate::secrets::random_hex(24)))
        };
        let url_sealed = self
            .cipher
            .seal(&Secret::new(url.clone()), &aad::webhook(&name, "url"));
        let secret_sealed = self.cipher.seal(&secret, &aad::webhook(&name, "secret"));
        let kinds = kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let id = self
            .store
            .insert_webhook(
                actor,
                &NewWebhook {
                    name: &name,
                    url_sealed: &url_sealed,
                    url_masked: &mask_url(&url),
                    format: format.as_str(),
                    kinds: &kinds,
                    secret_sealed: &secret_sealed,
                    secret_given: given,
                },
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => OpError::Conflict(FieldError::coded(
                    "name",
                    "webhook.taken",
                    &[("name", &name)],
                )),
                e => e.into(),
            })?;
        let row = self
            .store
            .webhook(id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("webhook {id}")))?;
        Ok((
            webhook_view(&row),
            (!given).then(|| secret.expose().to_string()),
        ))
    }

    pub async fn webhooks(&self) -> Result<Vec<WebhookView>, OpError> {
        Ok(self
            .store
            .webhooks()
            .await?
            .iter()
            .map(webhook_view)
            .collect())
    }

    pub async fn delete_webhook(&self, actor: &str, id: i64) -> Result<(), OpError> {
        if !self.store.delete_webhook(actor, id).await? {
            return Err(OpError::NotFound(format!("webhook {id}")));
        }
        Ok(())
    }

    /// Sends a test message to one webhook now and returns how it went
    /// (a failure is retried like any delivery).
    pub async fn test_webhook(
        &self,
        actor: &str,
        id: i64,
        clock: &dyn Clock,
    ) -> Result<DeliveryView, OpError> {
        let w = self
            .store
            .webhook(id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("webhook {id}")))?;
        let now = clock.now_ms();
        let title = Said::new("alert.test", &[("name", &w.name)]);
        let body = notice_json(AlertKind::Probe, "test", &title, "", None, now);
        let did = self.store.enqueue_test(actor, id, &body, now).await?;
        let row = self
            .store
            .delivery(did)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("delivery {did}")))?;
        self.send(&row, Some(&w), now).await?;
        let row = self
            .store
            .delivery(did)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("delivery {did}")))?;
        Ok(delivery_view(&row, &BTreeMap::from([(w.id, w.name)])))
    }

    /// The delivery log, newest first (`before`: an id cursor).
    pub async fn deliveries(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryView>, OpError> {
        let names: BTreeMap<i64, String> = self
            .store
            .webhooks()
            .await?
            .into_iter()
            .map(|w| (w.id, w.name))
            .collect();
        Ok(self
            .store
            .deliveries(before, limit)
            .await?
            .iter()
            .map(|d| delivery_view(d, &names))
            .collect())
    }

    /// Sends what is due in the outbox: `(delivered, to retry, failed)`.
    pub async fn deliver_due(
        &self,
        owner: &str,
        clock: &dyn Clock,
    ) -> Result<(usize, usize, usize), OpError> {
        let now = clock.now_ms();
        let due = self
            .store
            .claim_deliveries(owner, now, now + 60_000, 32)
            .await?;
        let mut n = (0, 0, 0);
        for d in due {
            match self.send(&d, None, clock.now_ms()).await? {
                DeliveryOutcome::Delivered => n.0 += 1,
                DeliveryOutcome::RetryAt(_) => n.1 += 1,
                DeliveryOutcome::Failed => n.2 += 1,
            }
        }
        Ok(n)
    }

    /// One attempt at one delivery, recorded.
    async fn send(
        &self,
        d: &DeliveryRow,
        w: Option<&WebhookRow>,
        now_ms: i64,
    ) -> Result<DeliveryOutcome, OpError> {
        let w = match w {
            Some(w) => w.clone(),
            None => match self.store.webhook(d.webhook_id).await? {
                Some(w) => w,
                None => return Ok(DeliveryOutcome::Failed),
            },
        };
        let format = WebhookFormat::parse(&w.format).unwrap_or(WebhookFormat::Generic);
        let url = self
            .cipher
            .open(&w.url_sealed, &aad::webhook(&w.name, "url"))?;
        let secret = self
            .cipher
            .open(&w.secret_sealed, &aad::webhook(&w.name, "secret"))?;
        let (body, query) = render(
            format,
            &d.payload_json,
            w.secret_given.then(|| secret.expose()),
            now_ms,
        );
        let mut target = url.expose().to_string();
        if !query.is_empty() {
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(&query);
        }
        let http = crate::host::outbound::guarded_builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("static client configuration");
        let answer = http
            .post(&target)
            .header("content-type", "application/json")
            .header("user-agent", "sub2api-cn-relay-manager")
            .header(
                SIGNATURE_HEADER,
                format!("sha256={}", sign_body(secret.expose(), body.as_bytes())),
            )
            .header("x-relay-delivery", d.id.to_string())
            .header("x-relay-event", d.event.as_str())
            .body(body)
            .send()
            .await;
        let (status, error) = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                if (200..300).contains(&status) {
                    match bot_accepted(format, &text) {
                        Ok(()) => (Some(status), None),
                        Err(e) => (Some(status), Some(e)),
                    }
                } else {
                    (
                        Some(status),
                        Some(format!("HTTP {status}: {}", clip(&text, 200))),
                    )
                }
            }
            // reqwest's message names the URL: keep only what went wrong.
            Err(e) => (None, Some(transport_error(&e))),
        };
        let outcome = match &error {
            None => DeliveryOutcome::Delivered,
            Some(_) => match delivery_retry_at(d.attempts, now_ms) {
                Some(t) => DeliveryOutcome::RetryAt(t),
                None => DeliveryOutcome::Failed,
            },
        };
        self.store
            .finish_delivery(
                d.id,
                status,
                error.as_deref().unwrap_or(""),
                outcome,
                now_ms,
            )
            .await?;
        Ok(outcome)
    }
}

/// A kimi or deepseek account's balance as the host reads it:
/// `(amount, currency, what was asked)`, or why the host could not say.
async fn host_balance(
    c: &crate::host::HostClient,
    account: &str,
) -> Result<(f64, String, String), String> {
    let path = format!("/api/v1/admin/cn-providers/accounts/{account}/balance");
    let v = c
        .admin_get(&path)
        .await
        .map_err(|e| format!("the host: GET {path}: {e}"))?;
    let amount = match v.get("balance") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    match (v.get("success").and_then(Value::as_bool), amount) {
        (Some(true), Some(a)) => Ok((
            a,
            v.get("currency")
                .and_then(Value::as_str)
                .unwrap_or("CNY")
                .to_string(),
            format!("the host: GET {path} → 200"),
        )),
        _ => Err(format!(
            "the host: GET {path} said no balance ({})",
            clip(
                v.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no amount in the answer"),
                200
            )
        )),
    }
}

/// A transport failure without the URL (a bot's URL holds its token).
fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        let e = e.without_url_ref();
        clip(&e.to_string(), 200)
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s.replace(u.as_str(), "(webhook URL)");
        }
        s
    }
}

/// Readings as shown: low when known and at or below 0 or under `threshold`.
fn balance_views(rows: Vec<BalanceRow>, threshold: Option<f64>) -> Vec<BalanceView> {
    rows.into_iter()
        .map(|r| {
            let state = BalanceState::parse(&r.state);
            let low = state == BalanceState::Known
                && r.amount
                    .is_some_and(|a| a <= 0.0 || threshold.is_some_and(|t| a < t));
            BalanceView {
                masked: r.masked,
                fingerprint: r.fingerprint,
                state,
                amount: r.amount,
                currency: r.currency,
                low,
                detail: r.detail,
                at_ms: r.at_ms,
            }
        })
        .collect()
}

fn held_by_live(row: &ScheduleRow, now_ms: i64) -> bool {
    match (&row.lease_owner, row.lease_until_ms) {
        (Some(owner), Some(until)) => until > now_ms && !super::lease::is_dead(owner),
        _ => false,
    }
}

fn schedule_view(r: &ScheduleRow) -> Option<ScheduleView> {
    Some(ScheduleView {
        job: Job::parse(&r.job)?,
        interval_s: r.interval_s,
        enabled: r.enabled,
        next_due_ms: r.next_due_ms,
        running_on: r.lease_owner.clone(),
        last_started_ms: r.last_started_ms,
        last_finished_ms: r.last_finished_ms,
        last_outcome: r.last_outcome.clone(),
        last_detail: r.last_detail.clone(),
    })
}

fn check_view(r: &CheckRow) -> CheckView {
    CheckView {
        id: r.id,
        batch_id: r.batch_id,
        at_ms: r.at_ms,
        actor: r.actor.clone(),
        outcome: CheckOutcome::parse(&r.outcome),
        access_before: AccessStatus::parse(&r.access_before),
        access_after: AccessStatus::parse(&r.access_after),
        detail: Said::english_of(&r.detail),
        said: Said::parse(&r.detail),
        duration_ms: r.duration_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_is_shown_without_its_token() {
        let m = mask_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa");
        assert_eq!(m, "https://qyapi.weixin.qq.com/…5aaa");
        assert!(!m.contains("693a91f6"));
        assert_eq!(mask_url("http://127.0.0.1:9/"), "http://127.0.0.1:9/");
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign_body("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn chat_formats_carry_both_languages_and_their_native_signatures() {
        let i = IncidentRow {
            id: 7,
            kind: "not_ready".into(),
            subject: "batch:3".into(),
            host_id: Some(1),
            batch_id: Some(3),
            title: said_json(&Said::new(
                "alert.not_ready",
                &[("batch", &3), ("host", &"h"), ("access", &"degraded")],
            )),
            detail: "POST /v1/chat/completions: 429".into(),
            opened_at_ms: 1,
            updated_at_ms: 1,
            resolved_at_ms: None,
        };
        let generic = event_json(&i, "firing");
        let (wecom, q) = render(WebhookFormat::Wecom, &generic, None, 0);
        let v: Value = serde_json::from_str(&wecom).unwrap();
        let text = v["markdown"]["content"].as_str().unwrap();
        assert!(
            text.contains("【告警】") && text.contains("[ALERT] Batch #3"),
            "{text}"
        );
        assert!(q.is_empty());
        let (_, q) = render(
            WebhookFormat::Dingtalk,
            &generic,
            Some("SECabc"),
            1_700_000_000_000,
        );
        assert!(q.starts_with("timestamp=1700000000000&sign="), "{q}");
        let (feishu, _) = render(
            WebhookFormat::Feishu,
            &generic,
            Some("abc"),
            1_700_000_000_000,
        );
        let v: Value = serde_json::from_str(&feishu).unwrap();
        assert_eq!(v["timestamp"], "1700000000");
        assert_eq!(v["sign"], b64_hmac(b"1700000000\nabc", b""));
        assert_eq!(
            bot_accepted(WebhookFormat::Wecom, r#"{"errcode":0,"errmsg":"ok"}"#),
            Ok(())
        );
        assert!(bot_accepted(
            WebhookFormat::Dingtalk,
            r#"{"errcode":310000,"errmsg":"sign not match"}"#
        )
        .is_err());
        assert_eq!(
            bot_accepted(WebhookFormat::Feishu, r#"{"code":0,"msg":"success"}"#),
            Ok(())
        );
    }

    #[test]
    fn webhook_input_names_the_field_it_refuses() {
        let ok = WebhookInput {
            name: "ops".into(),
            url: "https://example.com/hook".into(),
            format: "generic".into(),
            ..Default::default()
        };
        let (_, _, _, kinds) = ok.check().unwrap();
        assert_eq!(kinds, AlertKind::ALL.to_vec(), "no kinds: all of them");
        for (input, field) in [
            (
                WebhookInput {
                    name: " ".into(),
                    ..ok.clone()
                },
                "name",
            ),
            (
                WebhookInput {
                    url: "ftp://x/y".into(),
                    ..ok.clone()
                },
                "url",
            ),
            (
                WebhookInput {
                    format: "slack".into(),
                    ..ok.clone()
                },
                "format",
            ),
            (
                WebhookInput {
                    kinds: vec!["weather".into()],
                    ..ok.clone()
                },
                "kinds",
            ),
        ] {
            match input.check() {
                Err(OpError::Invalid(e)) => assert_eq!(e.field, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
