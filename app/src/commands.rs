//! The host, batch, reconcile and token commands: each asks the core on the
//! local database or, with `--server`, the same operation through the API,
//! and prints one result the same way for both (lines for people, or one
//! JSON object per line with `--json`). Exit codes: see `cli::EXIT_CODES`.

use anyhow::anyhow;
use app::server::cli::On;
use app::server::rest::{BatchDoc, TokenCreated};
use provisioning_core::model::{
    AccessMode, BatchStatus, DriftReport, HostView, PackVersionView, ProbeRecord, ProbeStatus,
    Role, Said, Severity, StateCounts, StepKind,
};
use provisioning_core::ops::{BatchRequest, Core, Principal, TokenRequest};
use serde_json::{json, Value};
use std::io::Write as _;

/// Ends the command with this exit code after saying why on stderr.
#[derive(Debug)]
pub struct Exit(pub i32, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}

fn refused(msg: impl Into<String>) -> anyhow::Error {
    Exit(1, msg.into()).into()
}

/// Where a command acts: this machine's database, or a server's API.
pub enum Target<'a> {
    Local { core: &'a Core, actor: String },
    Remote(Remote),
}

/// A running server's API, with the token from RELAY_TOKEN.
pub struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Remote {
    pub fn new(server: &str) -> anyhow::Result<Remote> {
        let token = std::env::var("RELAY_TOKEN").map_err(|_| {
            refused("--server needs an API token in RELAY_TOKEN (made on the API tokens page)")
        })?;
        Ok(Remote {
            base: server.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        })
    }

    /// A call; a refusal is exit 1 with the problem's code and detail, a
    /// server that cannot be reached exit 2.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut r = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r
            .send()
            .await
            .map_err(|e| anyhow::Error::from(Exit(2, format!("{url}: {e}"))))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // The detail names the field when there is one.
            return Err(Exit(
                if status.is_server_error() { 2 } else { 1 },
                format!(
                    "{url}: {status}: {}: {}",
                    body["code"].as_str().unwrap_or("?"),
                    body["detail"].as_str().unwrap_or("")
                ),
            )
            .into());
        }
        Ok(body)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.typed(reqwest::Method::GET, path, None).await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<T> {
        self.typed(reqwest::Method::POST, path, body).await
    }

    async fn typed<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<T> {
        let v = self.call(method, path, body).await?;
        serde_json::from_value(v).map_err(|e| anyhow!("{path}: unexpected answer: {e}"))
    }
}

impl<'a> Target<'a> {
    pub fn new(core: Option<&'a Core>, on: &On) -> anyhow::Result<Target<'a>> {
        Ok(match (&on.server, core) {
            (Some(url), _) => Target::Remote(Remote::new(url)?),
            (None, Some(core)) => Target::Local {
                core,
                actor: on.actor.clone(),
            },
            (None, None) => unreachable!("the caller opens the database without --server"),
        })
    }

    async fn hosts(&self) -> anyhow::Result<Vec<HostView>> {
        match self {
            Target::Local { core, .. } => Ok(core.list_hosts().await?),
            Target::Remote(r) => {
                let v: Value = r.get("/hosts").await?;
                Ok(serde_json::from_value(v["items"].clone())?)
            }
        }
    }

    /// The host called `name`.
    async fn host(&self, name: &str) -> anyhow::Result<HostView> {
        let hosts = self.hosts().await?;
        hosts
            .iter()
            .find(|h| h.name == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<_> = hosts.iter().map(|h| h.name.as_str()).collect();
                refused(format!(
                    "host: no host is named `{name}` (there are: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            })
    }
}

fn print_line(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Prints `v` as one JSON line, or `human` for people.
fn print(json: bool, v: &Value, human: &[String]) -> anyhow::Result<()> {
    if json {
        print_line(&v.to_string())
    } else {
        human.iter().try_for_each(|l| print_line(l))
    }
}

fn finish(code: i32) -> anyhow::Result<()> {
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// `host probe NAME`.
pub async fn host_probe(t: &Target<'_>, name: &str, json: bool) -> anyhow::Result<()> {
    let host = t.host(name).await?;
    let rec: ProbeRecord = match t {
        Target::Local { core, actor } => core.probe_host(actor, host.id).await?,
        Target::Remote(r) => r.post(&format!("/hosts/{}/probe", host.id), None).await?,
    };
    let rep = &rec.report;
    let mut human = vec![format!(
        "host {} ({}): {} — {}",
        host.name,
        rep.version.as_deref().unwrap_or("version unknown"),
        rep.status.as_str(),
        rep.headline()
    )];
    for f in rep.findings.iter().filter(|f| f.severity > Severity::Info) {
        let sev = if f.severity == Severity::Blocker {
            "blocker"
        } else {
            "warning"
        };
        human.push(format!("  {sev}: {} — {}", f.message, f.action));
    }
    print(json, &serde_json::to_value(&rec)?, &human)?;
    finish(if rep.status == ProbeStatus::Failing {
        3
    } else {
        0
    })
}

/// The pack version `spec` names: a version's number, or a pack's id (its
/// newest version).
fn pick_pack(versions: &[PackVersionView], spec: &str) -> anyhow::Result<i64> {
    let spec = spec.trim();
    if let Ok(n) = spec.parse::<i64>() {
        if versions.iter().any(|v| v.id == n) {
            return Ok(n);
        }
    }
    versions
        .iter()
        .filter(|v| v.pack_id == spec)
        .max_by_key(|v| v.number)
        .map(|v| v.id)
        .ok_or_else(|| {
            let mut ids: Vec<_> = versions.iter().map(|v| v.pack_id.as_str()).collect();
            ids.dedup();
            refused(format!(
                "pack: no pack `{spec}` and no version numbered so (packs: {})",
                ids.join(", ")
            ))
        })
}

pub struct PlanArgs<'a> {
    pub host: &'a str,
    pub pack: &'a str,
    pub provider: &'a str,
    pub mode: Option<&'a str>,
    pub keys: &'a std::path::Path,
}

/// `batch plan`.
pub async fn batch_plan(t: &Target<'_>, a: PlanArgs<'_>, json: bool) -> anyhow::Result<()> {
    let keys_text = if a.keys.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(a.keys)
    }
    .map_err(|e| {
        Exit(
            2,
            format!("keys: {}: cannot be read: {e}", a.keys.display()),
        )
    })?;
    let host = t.host(a.host).await?;
    let doc: BatchDoc = match t {
        Target::Local { core, actor } => {
            let pack_version_id = pick_pack(&core.pack_versions().await?, a.pack)?;
            let mode = match a.mode.map(str::trim) {
                None | Some("") => None,
                Some(m) => Some(AccessMode::parse(m).ok_or_else(|| {
                    refused("mode: must be self_service or subscription".to_string())
                })?),
            };
            let id = core
                .plan_batch(
                    actor,
                    &BatchRequest {
                        host_id: host.id,
                        pack_version_id,
                        provider_key: a.provider.to_string(),
                        mode,
                        keys_text,
                    },
                )
                .await
                .map_err(|e| refused(e.to_string()))?;
            BatchDoc::from(core.batch_view(id).await?)
        }
        Target::Remote(r) => {
            let packs: Value = r.get("/packs").await?;
            let versions: Vec<PackVersionView> = serde_json::from_value(packs["items"].clone())?;
            let pack_version_id = pick_pack(&versions, a.pack)?;
            let body = json!({
                "host_id": host.id,
                "pack_version_id": pack_version_id,
                "provider": a.provider,
                "mode": a.mode,
                "keys": keys_text,
            });
            r.post("/batches", Some(body)).await?
        }
    };
    let p = &doc.plan;
    let accounts = p
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Account)
        .count();
    let mut human = vec![format!(
        "batch {} planned on {}: {} ({}), {accounts} key(s) to import, {} skipped, {} step(s)",
        doc.id,
        p.host_name,
        p.provider_key,
        p.mode.as_str(),
        p.skipped.len(),
        p.steps.len(),
    )];
    for s in &p.skipped {
        human.push(format!(
            "  skipped line {} {}: {}",
            s.line, s.masked, s.reason
        ));
    }
    for b in &p.blockers {
        human.push(format!(
            "  blocked by {}: {} — {}",
            b.capability, b.message, b.action
        ));
    }
    if p.blockers.is_empty() {
        human.push(format!("next: dashboard batch apply {}", doc.id));
    }
    print(json, &serde_json::to_value(&doc)?, &human)?;
    finish(if p.blockers.is_empty() { 0 } else { 3 })
}

/// What `batch status` says of a batch, read locally or from a server.
pub struct StatusView {
    pub status: String,
    pub access_status: String,
    pub steps: StateCounts,
    pub running: bool,
    pub waiting: Option<String>,
}

async fn read_status(t: &Target<'_>, id: i64) -> anyhow::Result<StatusView> {
    match t {
        Target::Local { core, .. } => {
            let p = core
                .batch_progress(id, i64::MAX)
                .await
                .map_err(|e| refused(format!("batch {id}: {e}")))?;
            Ok(StatusView {
                status: p.status.as_str().to_string(),
                access_status: p.access_status.as_str().to_string(),
                running: matches!(p.status, BatchStatus::Running | BatchStatus::RollingBack),
                waiting: p.waiting.as_deref().map(Said::english_of),
                steps: p.steps,
            })
        }
        Target::Remote(r) => {
            let p: Value = r.get(&format!("/batches/{id}/progress")).await?;
            let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            Ok(StatusView {
                status: text("status"),
                access_status: text("access_status"),
                steps: serde_json::from_value(p["steps"].clone())
                    .map_err(|e| anyhow!("batch {id}: step counts: {e}"))?,
                running: !p["finished"].as_bool().unwrap_or(true),
                waiting: p["waiting"].as_str().map(String::from),
            })
        }
    }
}

/// What a watched batch should end as for exit 0.
#[derive(Clone, Copy)]
pub enum Want {
    Ready,
    RolledBack,
}

/// Prints the batch's status (a line per change while `watch` and it
/// runs); exits 3 unless it ended as `want`.
pub async fn watch(
    t: &Target<'_>,
    id: i64,
    watch: bool,
    want: Want,
    json: bool,
) -> anyhow::Result<()> {
    let mut last = String::new();
    loop {
        let v = read_status(t, id).await?;
        let s = &v.steps;
        let line = if json {
            json!({
                "batch": id,
                "status": v.status,
                "access_status": v.access_status,
                "steps": {"total": s.total(), "done": s.done, "failed": s.failed, "unknown": s.unknown, "skipped": s.skipped, "pending": s.pending + s.sent},
                "running": v.running,
                "waiting": v.waiting,
            })
            .to_string()
        } else {
            let mut l = format!(
                "batch {id}: {} · {}/{} steps done",
                v.status,
                s.done + s.skipped,
                s.total()
            );
            if s.failed + s.unknown > 0 {
                l.push_str(&format!(
                    ", {} failed or of unknown outcome",
                    s.failed + s.unknown
                ));
            }
            l.push_str(&format!(" · access {}", v.access_status));
            if let Some(w) = &v.waiting {
                l.push_str(&format!(" · waiting: {w}"));
            }
            l
        };
        if line != last {
            print_line(&line)?;
            last = line;
        }
        if !watch || !v.running {
            let good = match want {
                Want::Ready => v.status == "succeeded" && v.access_status.ends_with("_ready"),
                Want::RolledBack => v.status == "rolled_back",
            };
            return finish(if good { 0 } else { 3 });
        }
        // A local run is in this process: look often, it costs a query.
        let pause = match t {
            Target::Local { .. } => std::time::Duration::from_millis(200),
            Target::Remote(_) => std::time::Duration::from_secs(1),
        };
        tokio::time::sleep(pause).await;
    }
}

/// `batch apply ID`: starts it (locally in this process, or on the server)
/// and watches it to the end.
pub async fn batch_apply(
    t: &Target<'_>,
    id: i64,
    opts: provisioning_core::ops::ApplyOptions,
    json: bool,
) -> anyhow::Result<()> {
    let job = match t {
        Target::Local { core, actor } => Some(core.start_apply(actor, id, opts).await),
        Target::Remote(r) => {
            r.call(reqwest::Method::POST, &format!("/batches/{id}/apply"), None)
                .await?;
            None
        }
    };
    watch_job(t, id, job, Want::Ready, json).await
}

/// `batch rollback ID`: as `apply`, the other way.
pub async fn batch_rollback(
    t: &Target<'_>,
    id: i64,
    force: bool,
    json: bool,
) -> anyhow::Result<()> {
    let job = match t {
        Target::Local { core, actor } => Some(core.start_rollback(actor, id, force).await),
        Target::Remote(r) => {
            let body = Some(json!({ "force": force }));
            r.call(
                reqwest::Method::POST,
                &format!("/batches/{id}/rollback"),
                body,
            )
            .await?;
            None
        }
    };
    watch_job(t, id, job, Want::RolledBack, json).await
}

/// Watches a started run to its end; a local one (`job`, running in this
/// process) is waited for too.
async fn watch_job(
    t: &Target<'_>,
    id: i64,
    job: Option<Result<tokio::task::JoinHandle<()>, provisioning_core::ops::OpError>>,
    want: Want,
    json: bool,
) -> anyhow::Result<()> {
    let job = job
        .transpose()
        .map_err(|e| refused(format!("batch {id}: {e}")))?;
    let out = watch(t, id, true, want, json).await;
    if let Some(job) = job {
        let _ = job.await;
    }
    out
}

/// `reconcile HOST`: a drift check now.
pub async fn reconcile(t: &Target<'_>, name: &str, json: bool) -> anyhow::Result<()> {
    let host = t.host(name).await?;
    let report: DriftReport = match t {
        Target::Local { core, actor } => core.drift_check(actor, host.id).await?,
        Target::Remote(r) => r.post(&format!("/hosts/{}/drift", host.id), None).await?,
    };
    let open: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.ignored.is_none())
        .collect();
    let mut human = vec![format!(
        "host {}: {} object(s) compared, {} open finding(s), {} ignored ({} host calls)",
        host.name,
        report.compared,
        open.len(),
        report.findings.len() - open.len(),
        report.host_calls
    )];
    for f in &open {
        human.push(format!(
            "  {} {}: {}{}",
            f.class.as_str(),
            f.target,
            f.message,
            if f.actions.is_empty() {
                String::new()
            } else {
                format!(" (can: {})", f.actions.join(", "))
            }
        ));
    }
    print(json, &serde_json::to_value(&report)?, &human)?;
    finish(if open.is_empty() { 0 } else { 3 })
}

pub struct TokenArgs<'a> {
    pub operator: &'a str,
    pub scope: &'a str,
    pub days: i64,
    pub name: &'a str,
}

/// `token create`: prints the token once.
pub async fn token_create(t: &Target<'_>, a: TokenArgs<'_>, json: bool) -> anyhow::Result<()> {
    let made: TokenCreated = match t {
        Target::Local { core, actor } => {
            let op = core
                .list_operators()
                .await?
                .into_iter()
                .find(|o| o.username == a.operator)
                .ok_or_else(|| refused(format!("operator: no operator named `{}`", a.operator)))?;
            // The machine's administrator, as for every local command.
            let admin = Principal::operator(0, actor, Role::Admin);
            let (token, secret) = core
                .create_token(
                    &admin,
                    &TokenRequest {
                        operator_id: op.id,
                        name: a.name.to_string(),
                        scope: a.scope.to_string(),
                        days: a.days.to_string(),
                    },
                )
                .await
                .map_err(|e| refused(e.to_string()))?;
            TokenCreated {
                token,
                secret: Some(secret.expose().to_string()),
            }
        }
        Target::Remote(r) => r.post("/tokens", Some(json!({"operator": a.operator, "name": a.name, "scope": a.scope, "days": a.days}))).await?,
    };
    let secret = made.secret.clone().unwrap_or_default();
    let human = vec![
        format!(
            "token #{} `{}` for {} ({} scope, {} day(s)); shown once, keep it now:",
            made.token.id, made.token.name, made.token.username, made.token.scope, a.days
        ),
        secret,
    ];
    print(json, &serde_json::to_value(&made)?, &human)
}
