//! Applying a batch through the journal. Every remote write is
//! intent (`pending`, committed at plan time) → `sent` (committed before the
//! call) → result (`done`/`failed`, committed with the remote id and the
//! redacted evidence). A re-run resumes: a `sent` step is first looked up on
//! the host by its marker (found: adopted), else resent when the host makes
//! the call idempotent, else marked `unknown` for the operator — never
//! blindly repeated.

use super::import::{
    account_marker, account_name, find_account, find_named, MANAGED_BY, MARKER_KEY,
};
use super::{Core, OpError};
use crate::host::{HostClient, HostError, LoginOutcome};
use crate::model::{
    AccessMode, AccessStatus, Action, BatchStatus, Pack, Plan, StepKind, StepState, Support,
};
use crate::secrets::{mask, Secret};
use crate::store::{BatchRow, LedgerEntry, StepRow, StepUpdate};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Duration;

/// Accounts per `POST /accounts/batch` call.
const BATCH_CHUNK: usize = 50;

/// Our accounts whose name starts with `prefix`, by marker, with their
/// (redacted) host representation.
pub(crate) async fn accounts_on_host(
    client: &HostClient,
    prefix: &str,
) -> Result<HashMap<String, Value>, HostError> {
    let mut out = HashMap::new();
    let mut page = 1;
    loop {
        let v = client
            .admin_get(&format!(
                "/api/v1/admin/accounts?search={}&page_size=1000&page={page}",
                super::import::urlencode(prefix)
            ))
            .await?;
        for a in v
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(m) = a
                .pointer(&format!("/extra/{MARKER_KEY}"))
                .and_then(Value::as_str)
            {
                out.insert(m.to_string(), a.clone());
            }
        }
        if page >= v.get("pages").and_then(Value::as_i64).unwrap_or(1) {
            return Ok(out);
        }
        page += 1;
    }
}

/// Where a simulated crash stops the process (tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After `sent` is committed, before the host is called.
    AfterSent,
    /// After the host answered, before the result is committed.
    AfterCall,
}

/// Knobs for an apply run.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Concurrent account writes.
    pub concurrency: usize,
    /// How long to wait before the readiness gate for the host's
    /// `/v1/models` cache (15 s on the host) to expire.
    pub models_cache_wait: Duration,
    /// Stop as if killed at this step and point (tests).
    pub crash_at: Option<(i64, CrashPoint)>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: 4,
            models_cache_wait: Duration::from_secs(16),
            crash_at: None,
        }
    }
}

/// Why an apply run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("simulated crash at step {0}")]
    Crashed(i64),
    #[error(transparent)]
    Op(#[from] OpError),
}

/// Replaces secret values in a JSON document with their masked form.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let secret = matches!(
                        k.as_str(),
                        "api_key"
                            | "key"
                            | "access_token"
                            | "refresh_token"
                            | "password"
                            | "authorization"
                            | "x-api-key"
                    );
                    let v = match (secret, v) {
                        (true, Value::String(s)) => {
                            Value::String(match s.strip_prefix("Bearer ") {
                                Some(rest) => format!("Bearer {}", mask(rest)),
                                None => mask(s),
                            })
                        }
                        _ => redact(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn ev(v: &Value) -> String {
    serde_json::to_string(&redact(v)).unwrap_or_default()
}

/// Everything a step needs.
struct Ctx {
    batch: BatchRow,
    plan: Plan,
    pack: Pack,
    client: HostClient,
    probe_user: (String, Secret),
    idempotent_host: bool,
    batch_create: bool,
    keys: HashMap<String, Secret>,
    opts: ApplyOptions,
}

/// A step's outcome: the remote id and the (redacted) evidence.
struct Outcome {
    remote_id: String,
    request: String,
    response: String,
}

impl Core {
    /// Applies (or resumes) a batch and returns its final status.
    #[tracing::instrument(skip(self, opts), fields(batch_id = batch_id))]
    pub async fn apply_batch(
        &self,
        actor: &str,
        batch_id: i64,
        opts: ApplyOptions,
    ) -> Result<BatchStatus, ApplyError> {
        let batch = self
            .store
            .batch(batch_id)
            .await
            .map_err(OpError::from)?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))?;
        let plan: Plan = serde_json::from_str(&batch.plan_json)
            .map_err(|e| OpError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
        let (_, pack) = self.pack(batch.pack_version_id).await?;
        let host = self.host_row(batch.host_id).await?;
        let (client, secrets) = self.host_client(&host)?;
        let probe_user = secrets.probe_user.ok_or_else(|| {
            OpError::Invalid(crate::model::FieldError::new("host", "has no probe user"))
        })?;
        let probe = self
            .store
            .latest_probe(host.id)
            .await
            .map_err(OpError::from)?;
        let idempotent_host = probe
            .as_ref()
            .is_some_and(|p| p.report.capability("idempotency_keys") == Support::Yes);
        let batch_create = probe
            .as_ref()
            .is_some_and(|p| p.report.capability("batch_create") == Support::Yes);
        let mut keys = HashMap::new();
        for (fp, sealed, _) in self
            .store
            .batch_keys(batch_id)
            .await
            .map_err(OpError::from)?
        {
            keys.insert(
                fp.clone(),
                self.cipher
                    .open(&sealed, &format!("batch/{}/key/{fp}", batch.uid))
                    .map_err(OpError::from)?,
            );
        }
        self.store
            .set_batch_status(batch_id, BatchStatus::Running.as_str(), None)
            .await
            .map_err(OpError::from)?;
        self.store
            .audit(
                actor,
                "batch.apply",
                &format!("batch:{}", batch.uid),
                "started",
                "",
            )
            .await
            .map_err(OpError::from)?;
        let ctx = Ctx {
            batch,
            plan,
            pack,
            client,
            probe_user,
            idempotent_host,
            batch_create,
            keys,
            opts,
        };
        let result = self.run(&ctx).await;
        let (status, access) = match &result {
            Err(ApplyError::Crashed(_)) => return result.map(|_| BatchStatus::Failed),
            Err(ApplyError::Op(_)) => (BatchStatus::Failed, AccessStatus::Broken),
            Ok(s) => *s,
        };
        self.store
            .set_batch_status(batch_id, status.as_str(), Some(access.as_str()))
            .await
            .map_err(OpError::from)?;
        self.store
            .audit(
                actor,
                "batch.apply",
                &format!("batch:{}", ctx.batch.uid),
                status.as_str(),
                access.as_str(),
            )
            .await
            .map_err(OpError::from)?;
        // Not ready, or some keys failed: say why without being asked.
        if status != BatchStatus::Succeeded {
            if let Err(e) = self.diagnose_batch(actor, batch_id).await {
                tracing::warn!(error = %e, "diagnosis after apply failed");
            }
        }
        result.map(|_| status)
    }

    async fn run(&self, ctx: &Ctx) -> Result<(BatchStatus, AccessStatus), ApplyError> {
        let steps = self
            .store
            .steps(ctx.batch.id)
            .await
            .map_err(OpError::from)?;
        let by_kind = |k: StepKind| {
            steps
                .iter()
                .filter(move |s| s.kind == k)
                .cloned()
                .collect::<Vec<_>>()
        };
        // Group first: everything else needs its id.
        let mut group_id: Option<i64> = None;
        for s in by_kind(StepKind::Group) {
            group_id = self
                .step(ctx, &s, None)
                .await?
                .and_then(|id| id.parse().ok());
        }
        let Some(group_id) = group_id else {
            return Ok((BatchStatus::Failed, AccessStatus::Broken));
        };
        for s in by_kind(StepKind::Channel) {
            if self.step(ctx, &s, Some(group_id)).await?.is_none() {
                return Ok((BatchStatus::Failed, AccessStatus::Broken));
            }
        }
        // Accounts: in chunks through the host's batch endpoint when it has
        // one, then one by one (a few at a time) for whatever is left.
        let accounts = by_kind(StepKind::Account);
        let permits = tokio::sync::Semaphore::new(ctx.opts.concurrency.max(1));
        if ctx.batch_create && accounts.len() >= 2 {
            let mut chunks = Vec::new();
            for chunk in accounts.chunks(BATCH_CHUNK) {
                chunks.push(self.account_chunk_limited(&permits, ctx, chunk, group_id));
            }
            for r in futures_util::future::join_all(chunks).await {
                r?;
            }
        }
        // (A loop of calls to one async fn, not a closure: the future must
        // stay `Send` for every lifetime when the server spawns it.)
        let mut pending = Vec::with_capacity(accounts.len());
        for s in &accounts {
            pending.push(self.step_limited(&permits, ctx, s, group_id));
        }
        let results = futures_util::future::join_all(pending).await;
        let mut failed_accounts = 0;
        for r in results {
            if r?.is_none() {
                failed_accounts += 1;
            }
        }
        // Access, then the checks.
        let mut access_ok = true;
        for kind in [StepKind::Balance, StepKind::Subscription, StepKind::UserKey] {
            for s in by_kind(kind) {
                access_ok &= self.step(ctx, &s, Some(group_id)).await?.is_some();
            }
        }
        if !access_ok {
            return Ok((BatchStatus::Failed, AccessStatus::Broken));
        }
        let tests = by_kind(StepKind::AccountTest);
        let mut pending = Vec::with_capacity(tests.len());
        for s in &tests {
            pending.push(self.step_limited(&permits, ctx, s, group_id));
        }
        for r in futures_util::future::join_all(pending).await {
            if r?.is_none() {
                failed_accounts += 1;
            }
        }
        let mut ready = false;
        for s in by_kind(StepKind::Readiness) {
            ready = self.step(ctx, &s, Some(group_id)).await?.is_some();
        }
        let total = accounts.len();
        Ok(match (ready, ctx.plan.mode) {
            (false, _) => (BatchStatus::Failed, AccessStatus::Broken),
            (true, mode) => (
                if failed_accounts == 0 || total == 0 {
                    BatchStatus::Succeeded
                } else {
                    BatchStatus::PartiallySucceeded
                },
                match mode {
                    AccessMode::SelfService => AccessStatus::SelfServiceReady,
                    AccessMode::Subscription => AccessStatus::SubscriptionReady,
                },
            ),
        })
    }

    async fn step_limited(
        &self,
        permits: &tokio::sync::Semaphore,
        ctx: &Ctx,
        s: &StepRow,
        group_id: i64,
    ) -> Result<Option<String>, ApplyError> {
        let _permit = permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.step(ctx, s, Some(group_id)).await
    }

    /// The create request of an account step (the key in clear: it goes to
    /// the host only; evidence keeps the redacted form).
    fn account_body(&self, ctx: &Ctx, s: &StepRow, gid: i64) -> Result<Value, String> {
        let plan = &ctx.plan;
        let provider = ctx
            .pack
            .providers
            .get(&plan.provider_key)
            .ok_or("the provider left the pack")?;
        let fp = s.fingerprint.clone().ok_or("no key fingerprint")?;
        let key = ctx
            .keys
            .get(&fp)
            .ok_or("the key is missing from the batch")?;
        let native = plan.platform != "openai";
        let base = if native {
            provider
                .native_base_url
                .clone()
                .unwrap_or_else(|| provider.base_url.clone())
        } else {
            provider.base_url.clone()
        };
        let mapping: serde_json::Map<String, Value> = provider
            .models
            .iter()
            .map(|(m, pm)| {
                (
                    m.clone(),
                    Value::String(pm.upstream.clone().unwrap_or_else(|| m.clone())),
                )
            })
            .collect();
        let mut credentials =
            json!({"api_key": key.expose(), "base_url": base, "model_mapping": mapping});
        if native {
            credentials["account_mode"] = json!("payg");
            credentials["api_protocol"] = json!("chat_completions");
        }
        let mut extra = json!({MARKER_KEY: s.marker});
        if !native {
            extra["openai_responses_mode"] = json!("force_chat_completions");
        }
        Ok(json!({
            "name": account_name(&plan.provider_key, &fp),
            "notes": format!("{MANAGED_BY}. pack {}/{}, batch {}", plan.pack_id, plan.provider_key, ctx.batch.uid),
            "platform": plan.platform,
            "type": "apikey",
            "credentials": credentials,
            "extra": extra,
            "group_ids": [gid],
            "concurrency": 0,
        }))
    }

    async fn account_chunk_limited(
        &self,
        permits: &tokio::sync::Semaphore,
        ctx: &Ctx,
        chunk: &[StepRow],
        group_id: i64,
    ) -> Result<(), ApplyError> {
        let _permit = permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.account_chunk(ctx, chunk, group_id).await
    }

    /// Creates a chunk of accounts with one `POST /accounts/batch`, through
    /// the same journal: every step of the chunk is `sent` before the call
    /// and gets its own result after it. Steps it does not settle are left
    /// to the one-by-one path.
    async fn account_chunk(
        &self,
        ctx: &Ctx,
        chunk: &[StepRow],
        gid: i64,
    ) -> Result<(), ApplyError> {
        let store = &self.store;
        let prefix = format!("rm-{}-", ctx.plan.provider_key);
        let mut todo = Vec::new();
        let mut unresolved = Vec::new();
        for s in chunk {
            let cur = store
                .step(ctx.batch.id, s.seq)
                .await
                .map_err(OpError::from)?
                .unwrap_or_else(|| s.clone());
            match cur.state {
                StepState::Pending | StepState::Failed => todo.push(cur),
                StepState::Sent => unresolved.push(cur),
                StepState::Done | StepState::Skipped | StepState::Unknown => {}
            }
        }
        if !unresolved.is_empty() {
            let Ok(on_host) = accounts_on_host(&ctx.client, &prefix).await else {
                return Ok(());
            };
            for cur in unresolved {
                match on_host.get(&cur.marker) {
                    Some(a) => {
                        let id = a.get("id").and_then(Value::as_i64).unwrap_or(0).to_string();
                        self.finish(
                            ctx,
                            &cur,
                            Outcome {
                                remote_id: id,
                                request: String::new(),
                                response: "adopted: the last attempt's answer was lost; found on the host by its marker"
                                    .into(),
                            },
                        )
                        .await?;
                    }
                    None if ctx.idempotent_host => todo.push(cur),
                    None => {}
                }
            }
        }
        if todo.len() < 2 {
            return Ok(());
        }
        let mut bodies = Vec::new();
        let mut sendable = Vec::new();
        for s in todo {
            match self.account_body(ctx, &s, gid) {
                Ok(b) => {
                    bodies.push(b);
                    sendable.push(s);
                }
                Err(msg) => {
                    self.fail(ctx, &s, &msg).await?;
                }
            }
        }
        // One commit for the whole chunk: every step is `sent` before the call.
        let seqs: Vec<i64> = sendable.iter().map(|s| s.seq).collect();
        store
            .mark_sent(ctx.batch.id, &seqs)
            .await
            .map_err(OpError::from)?;
        let crash = |point: CrashPoint| {
            sendable
                .iter()
                .find(|s| ctx.opts.crash_at == Some((s.seq, point)))
                .map(|s| s.seq)
        };
        if let Some(seq) = crash(CrashPoint::AfterSent) {
            return Err(ApplyError::Crashed(seq));
        }
        // The same set of steps always sends the same key, so a resend after a
        // lost answer is replayed by the host, not repeated.
        let seqs: Vec<String> = sendable.iter().map(|s| s.seq.to_string()).collect();
        let digest = hex::encode(&Sha256::digest(seqs.join(",").as_bytes())[..8]);
        let idem = format!("rm-{}-batch-{digest}", ctx.batch.uid);
        let answer = ctx
            .client
            .admin(
                "POST",
                "/api/v1/admin/accounts/batch",
                Some(&json!({"accounts": bodies})),
                Some(&idem),
            )
            .await;
        if let Some(seq) = crash(CrashPoint::AfterCall) {
            return Err(ApplyError::Crashed(seq));
        }
        let answer = match answer {
            Ok(v) => v,
            // The answer was lost or the host failed mid-way: the accounts may
            // exist. The steps stay `sent`, so the next pass looks them up by
            // marker before anything is sent again.
            Err(e) if e.is_transient() => {
                for s in &sendable {
                    store
                        .update_step(ctx.batch.id, s.seq, StepUpdate { error: Some(format!("batch create: {e}; outcome unknown, looked up before any resend")), ..Default::default() })
                        .await
                        .map_err(OpError::from)?;
                }
                return Ok(());
            }
            Err(e) => {
                for s in &sendable {
                    self.fail(ctx, s, &format!("batch create: {e}")).await?;
                }
                return Ok(());
            }
        };
        let results = answer
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let back = accounts_on_host(&ctx.client, &prefix)
            .await
            .unwrap_or_default();
        for (s, body) in sendable.iter().zip(&bodies) {
            let name = body["name"].as_str().unwrap_or_default();
            let result = results
                .iter()
                .find(|r| r.get("name").and_then(Value::as_str) == Some(name));
            let ok =
                result.is_some_and(|r| r.get("success").and_then(Value::as_bool) == Some(true));
            if !ok {
                let why = result
                    .and_then(|r| r.get("error"))
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "the host's batch answer does not list this account".into());
                self.fail(ctx, s, &format!("batch create: {why}")).await?;
                continue;
            }
            let Some(item) = back.get(&s.marker) else {
                self.fail(ctx, s, "read-back: the account is not listed on the host")
                    .await?;
                continue;
            };
            let has_smoke = item
                .pointer("/credentials/model_mapping")
                .and_then(Value::as_object)
                .is_some_and(|m| m.contains_key(&ctx.plan.smoke_model));
            if !has_smoke {
                self.fail(
                    ctx,
                    s,
                    &format!(
                        "read-back: mapping lacks the smoke model {}",
                        ctx.plan.smoke_model
                    ),
                )
                .await?;
                continue;
            }
            let id = item
                .get("id")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string();
            self.finish(
                ctx,
                s,
                Outcome {
                    remote_id: id,
                    request: ev(body),
                    response: ev(item),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Runs one step through the journal. `Ok(Some(remote id))` when done,
    /// `Ok(None)` when it failed or its outcome is unknown.
    async fn step(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        group_id: Option<i64>,
    ) -> Result<Option<String>, ApplyError> {
        let (batch_id, seq) = (ctx.batch.id, s.seq);
        let store = &self.store;
        // Re-read: a concurrent or earlier run may have moved it on.
        let current = store
            .step(batch_id, seq)
            .await
            .map_err(OpError::from)?
            .unwrap_or_else(|| s.clone());
        match current.state {
            StepState::Done | StepState::Skipped => {
                return Ok(current.remote_id.clone().or(Some(String::new())))
            }
            StepState::Unknown => return Ok(None),
            StepState::Sent => {
                // The last run may have died after the host acted: look first.
                match self.lookup(ctx, &current, group_id).await {
                    Ok(Some(id)) => {
                        self.finish(
                            ctx,
                            &current,
                            Outcome {
                                remote_id: id.clone(),
                                request: String::new(),
                                response: "adopted: the last attempt's answer was lost; found on the host by its marker"
                                    .into(),
                            },
                        )
                        .await?;
                        return Ok(Some(id));
                    }
                    Ok(None) if self.resend_safe(ctx, current.kind) => {}
                    Ok(None) => {
                        store
                            .update_step(batch_id, seq, StepUpdate {
                                state: Some(StepState::Unknown),
                                error: Some("the previous run sent this write and stopped before recording the answer; the host shows no such object and cannot de-duplicate a resend. Check the host, then re-plan.".into()),
                                ..Default::default()
                            })
                            .await
                            .map_err(OpError::from)?;
                        return Ok(None);
                    }
                    Err(e) => return self.fail(ctx, &current, &e.to_string()).await,
                }
            }
            StepState::Pending | StepState::Failed => {}
        }
        store
            .update_step(
                batch_id,
                seq,
                StepUpdate {
                    state: Some(StepState::Sent),
                    error: Some(String::new()),
                    ..Default::default()
                },
            )
            .await
            .map_err(OpError::from)?;
        if ctx.opts.crash_at == Some((seq, CrashPoint::AfterSent)) {
            return Err(ApplyError::Crashed(seq));
        }
        let outcome = self.execute(ctx, &current, group_id).await;
        if ctx.opts.crash_at == Some((seq, CrashPoint::AfterCall)) {
            return Err(ApplyError::Crashed(seq));
        }
        match outcome {
            Ok(o) => {
                let id = o.remote_id.clone();
                self.finish(ctx, &current, o).await?;
                Ok(Some(id))
            }
            Err(msg) => self.fail(ctx, &current, &msg).await,
        }
    }

    fn resend_safe(&self, ctx: &Ctx, kind: StepKind) -> bool {
        match kind {
            // Unique names on the host: a resend can only conflict, never duplicate.
            StepKind::Group | StepKind::Channel => true,
            // Same-days-same-notes assignment is idempotent on the host.
            StepKind::Subscription => true,
            // Checks write nothing.
            StepKind::AccountTest | StepKind::Readiness => true,
            // Idempotency-Key routes.
            StepKind::Account | StepKind::Balance | StepKind::UserKey => ctx.idempotent_host,
        }
    }

    async fn fail(&self, ctx: &Ctx, s: &StepRow, msg: &str) -> Result<Option<String>, ApplyError> {
        self.store
            .update_step(
                ctx.batch.id,
                s.seq,
                StepUpdate {
                    state: Some(StepState::Failed),
                    error: Some(msg.to_string()),
                    ..Default::default()
                },
            )
            .await
            .map_err(OpError::from)?;
        Ok(None)
    }

    async fn finish(&self, ctx: &Ctx, s: &StepRow, o: Outcome) -> Result<(), ApplyError> {
        self.store
            .update_step(
                ctx.batch.id,
                s.seq,
                StepUpdate {
                    state: Some(StepState::Done),
                    request_json: (!o.request.is_empty()).then(|| o.request.clone()),
                    response_json: Some(o.response.clone()),
                    remote_id: (!o.remote_id.is_empty()).then(|| o.remote_id.clone()),
                    error: Some(String::new()),
                },
            )
            .await
            .map_err(OpError::from)?;
        let kind = match s.kind {
            StepKind::Group => "group",
            StepKind::Channel => "channel",
            StepKind::Account => "account",
            StepKind::Subscription => "subscription",
            StepKind::UserKey => "user_key",
            _ => return Ok(()),
        };
        if o.remote_id.is_empty() {
            return Ok(());
        }
        self.store
            .ledger_insert(&LedgerEntry {
                host_id: ctx.batch.host_id,
                kind: kind.into(),
                remote_id: o.remote_id,
                batch_id: ctx.batch.id,
                pack_id: ctx.plan.pack_id.clone(),
                provider_key: ctx.plan.provider_key.clone(),
                fingerprint: s.fingerprint.clone(),
                marker: s.marker.clone(),
                spec_json: o.request,
            })
            .await
            .map_err(OpError::from)?;
        Ok(())
    }

    /// Finds the object a `sent` step may have created.
    async fn lookup(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        group_id: Option<i64>,
    ) -> Result<Option<String>, HostError> {
        let c = &ctx.client;
        let g = &ctx.plan.group_name;
        Ok(match s.kind {
            StepKind::Group => find_named(c, "/api/v1/admin/groups", g)
                .await?
                .filter(|x| x.1)
                .map(|x| x.0.to_string()),
            StepKind::Channel => find_named(c, "/api/v1/admin/channels", g)
                .await?
                .filter(|x| x.1)
                .map(|x| x.0.to_string()),
            StepKind::Account => {
                let fp = s.fingerprint.clone().unwrap_or_default();
                find_account(
                    c,
                    &account_name(&ctx.plan.provider_key, &fp),
                    &account_marker(&ctx.plan.pack_id, &ctx.plan.provider_key, &fp),
                )
                .await?
                .map(|i| i.to_string())
            }
            StepKind::UserKey => {
                let uid = self.user_id(ctx).await?;
                user_key_on_host(c, uid, &format!("rm-{g}"), group_id)
                    .await?
                    .map(|(id, _)| id.to_string())
            }
            StepKind::Balance
            | StepKind::Subscription
            | StepKind::AccountTest
            | StepKind::Readiness => None,
        })
    }

    async fn user_id(&self, ctx: &Ctx) -> Result<i64, HostError> {
        let email = &ctx.probe_user.0;
        let v = ctx
            .client
            .admin_get(&format!(
                "/api/v1/admin/users?search={}&page_size=100",
                super::import::urlencode(email)
            ))
            .await?;
        v.get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|u| {
                u.get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .and_then(|u| u.get("id").and_then(Value::as_i64))
            .ok_or_else(|| {
                HostError::protocol(
                    "GET",
                    "/api/v1/admin/users",
                    200,
                    &format!("the probe user {email} does not exist on the host"),
                )
            })
    }

    /// Makes the call of a step. `Err` is the message shown on the timeline.
    async fn execute(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        group_id: Option<i64>,
    ) -> Result<Outcome, String> {
        let c = &ctx.client;
        let plan = &ctx.plan;
        let provider = ctx
            .pack
            .providers
            .get(&plan.provider_key)
            .ok_or("the provider left the pack")?;
        let gid = group_id.unwrap_or(0);
        let e = |e: HostError| e.to_string();
        match s.kind {
            StepKind::Group => {
                let sub = plan.mode == AccessMode::Subscription;
                let t = &provider.group;
                let body = json!({
                    "name": plan.group_name,
                    "description": format!("{MANAGED_BY} ({}/{})", plan.pack_id, plan.provider_key),
                    "platform": plan.platform,
                    "rate_multiplier": t.rate_multiplier,
                    "subscription_type": if sub { "subscription" } else { "standard" },
                    "daily_limit_usd": t.daily_limit_usd.unwrap_or(0.0),
                    "weekly_limit_usd": t.weekly_limit_usd.unwrap_or(0.0),
                    "monthly_limit_usd": t.monthly_limit_usd.unwrap_or(0.0),
                });
                let id = create_unique(
                    c,
                    "/api/v1/admin/groups",
                    &body,
                    "GROUP_EXISTS",
                    &plan.group_name,
                )
                .await?;
                let back = c
                    .admin_get(&format!("/api/v1/admin/groups/{id}"))
                    .await
                    .map_err(e)?;
                if back.get("platform").and_then(Value::as_str) != Some(plan.platform.as_str()) {
                    return Err(format!(
                        "read-back: group {id} has platform {}, expected {}",
                        back["platform"], plan.platform
                    ));
                }
                Ok(Outcome {
                    remote_id: id.to_string(),
                    request: ev(&body),
                    response: ev(&back),
                })
            }
            StepKind::Channel => {
                let pricing: Vec<Value> = plan
                    .prices
                    .iter()
                    .map(|(m, input, output)| {
                        let cache = provider.models.get(m).and_then(|pm| pm.price.cache_read.and_then(|c| ctx.pack.usd_per_token(c, pm.price.currency)));
                        json!({"platform": plan.platform, "models": [m], "billing_mode": "token", "input_price": input, "output_price": output, "cache_read_price": cache})
                    })
                    .collect();
                let body = json!({
                    "name": plan.channel_name,
                    "description": format!("{MANAGED_BY} ({}/{})", plan.pack_id, plan.provider_key),
                    "group_ids": [gid],
                    "model_pricing": pricing,
                    "billing_model_source": provider.channel.billing_model_source,
                    "restrict_models": provider.channel.restrict_models,
                });
                let existing = s.remote_id.clone().filter(|_| s.action == Action::Update);
                let v = match existing {
                    Some(id) => c
                        .admin(
                            "PUT",
                            &format!("/api/v1/admin/channels/{id}"),
                            Some(&body),
                            None,
                        )
                        .await
                        .map_err(e)?,
                    None => {
                        json!({"id": create_unique(c, "/api/v1/admin/channels", &body, "CHANNEL_EXISTS", &plan.channel_name).await?})
                    }
                };
                let id = v
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or("the host returned no channel id")?;
                let back = c
                    .admin_get(&format!("/api/v1/admin/channels/{id}"))
                    .await
                    .map_err(e)?;
                let platforms_ok = back
                    .get("model_pricing")
                    .and_then(Value::as_array)
                    .is_some_and(|ps| {
                        ps.iter().all(|p| {
                            p.get("platform").and_then(Value::as_str)
                                == Some(plan.platform.as_str())
                        })
                    });
                if !platforms_ok {
                    return Err(format!(
                        "read-back: channel {id} pricing is not scoped to {}",
                        plan.platform
                    ));
                }
                Ok(Outcome {
                    remote_id: id.to_string(),
                    request: ev(&body),
                    response: ev(&back),
                })
            }
            StepKind::Account => {
                let body = self.account_body(ctx, s, gid)?;
                let v = c
                    .admin(
                        "POST",
                        "/api/v1/admin/accounts",
                        Some(&body),
                        Some(&s.idempotency_key),
                    )
                    .await
                    .map_err(e)?;
                let id = v
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or("the host returned no account id")?;
                let back = c
                    .admin_get(&format!("/api/v1/admin/accounts/{id}"))
                    .await
                    .map_err(e)?;
                let has_smoke = back
                    .pointer("/credentials/model_mapping")
                    .and_then(Value::as_object)
                    .is_some_and(|m| m.contains_key(&plan.smoke_model));
                if !has_smoke {
                    return Err(format!(
                        "read-back: account {id} mapping lacks the smoke model {}",
                        plan.smoke_model
                    ));
                }
                Ok(Outcome {
                    remote_id: id.to_string(),
                    request: ev(&body),
                    response: ev(&back),
                })
            }
            StepKind::Balance => {
                let uid = self.user_id(ctx).await.map_err(e)?;
                let u = c
                    .admin_get(&format!("/api/v1/admin/users/{uid}"))
                    .await
                    .map_err(e)?;
                let have = u.get("balance").and_then(Value::as_f64).unwrap_or(0.0);
                let want = provider.access.balance_usd;
                if have >= want {
                    return Ok(Outcome {
                        remote_id: String::new(),
                        request: String::new(),
                        response: format!("balance ${have:.2} ≥ ${want:.2}: nothing to add"),
                    });
                }
                let body = json!({"balance": want - have, "operation": "add", "notes": format!("{MANAGED_BY}: batch {}", ctx.batch.uid)});
                let v = c
                    .admin(
                        "POST",
                        &format!("/api/v1/admin/users/{uid}/balance"),
                        Some(&body),
                        Some(&s.idempotency_key),
                    )
                    .await
                    .map_err(e)?;
                Ok(Outcome {
                    remote_id: String::new(),
                    request: ev(&body),
                    response: ev(&v),
                })
            }
            StepKind::Subscription => {
                let uid = self.user_id(ctx).await.map_err(e)?;
                let body = json!({"user_id": uid, "group_id": gid, "validity_days": provider.group.validity_days, "notes": MANAGED_BY});
                match c.admin("POST", "/api/v1/admin/subscriptions/assign", Some(&body), None).await {
                    Ok(v) => Ok(Outcome { remote_id: v.get("id").and_then(Value::as_i64).map(|i| i.to_string()).unwrap_or_default(), request: ev(&body), response: ev(&v) }),
                    Err(err) if err.code == "SUBSCRIPTION_ASSIGN_CONFLICT" => Ok(Outcome {
                        remote_id: String::new(),
                        request: ev(&body),
                        response: format!("the user already has an active subscription to this group ({}); kept as it is", err.message),
                    }),
                    Err(err) => Err(e(err)),
                }
            }
            StepKind::UserKey => {
                let uid = self.user_id(ctx).await.map_err(e)?;
                let name = format!("rm-{}", plan.group_name);
                let existing = user_key_on_host(c, uid, &name, Some(gid))
                    .await
                    .map_err(e)?;
                let (id, key) = match existing {
                    Some(found) => found,
                    None => {
                        let jwt = match c.login(&ctx.probe_user.0, &ctx.probe_user.1).await.map_err(|err| format!("the probe user could not sign in: {err}"))? {
                            LoginOutcome::Token(t) => t,
                            LoginOutcome::Requires2fa => return Err("the probe user has two-factor sign-in; remove it or use another probe user".into()),
                        };
                        let body = json!({"name": name, "group_id": gid});
                        c.user_call(
                            &jwt,
                            "POST",
                            "/api/v1/keys",
                            Some(&body),
                            Some(&s.idempotency_key),
                        )
                        .await
                        .map_err(e)?;
                        user_key_on_host(c, uid, &name, Some(gid))
                            .await
                            .map_err(e)?
                            .ok_or("read-back: the new key is not listed for the user")?
                    }
                };
                let sealed = self.cipher.seal(
                    &key,
                    &format!("access/{}/{}", ctx.batch.host_id, plan.group_name),
                );
                self.store
                    .put_access_key(
                        ctx.batch.host_id,
                        &plan.group_name,
                        &id.to_string(),
                        &sealed,
                        &key.masked(),
                    )
                    .await
                    .map_err(|err| err.to_string())?;
                Ok(Outcome {
                    remote_id: id.to_string(),
                    request: ev(&json!({"name": name, "group_id": gid})),
                    response: format!("key {} bound to group {gid}", key.masked()),
                })
            }
            StepKind::AccountTest => {
                let fp = s.fingerprint.clone().unwrap_or_default();
                let account = self
                    .store
                    .account_remote_id(ctx.batch.id, &fp)
                    .await
                    .map_err(|err| err.to_string())?
                    .and_then(|id| id.parse::<i64>().ok())
                    .ok_or("the account was not created, so it cannot be tested")?;
                let events = c
                    .account_test(account, &plan.smoke_model)
                    .await
                    .map_err(e)?;
                let transcript = serde_json::to_string(&events).unwrap_or_default();
                let ok = events.iter().any(|v| {
                    v.get("type").and_then(Value::as_str) == Some("test_complete")
                        && v.get("success").and_then(Value::as_bool) == Some(true)
                });
                if ok {
                    return Ok(Outcome {
                        remote_id: account.to_string(),
                        request: ev(&json!({"model_id": plan.smoke_model})),
                        response: transcript,
                    });
                }
                let msg = events
                    .iter()
                    .rev()
                    .find_map(|v| v.get("error").and_then(Value::as_str))
                    .unwrap_or("no test_complete event")
                    .to_string();
                if msg.contains(" 429") {
                    // A transient rate limit proves nothing either way.
                    return Ok(Outcome {
                        remote_id: account.to_string(),
                        request: String::new(),
                        response: format!("advisory: upstream rate limit during the test: {msg}"),
                    });
                }
                Err(format!("account test failed: {msg}"))
            }
            StepKind::Readiness => {
                let (_, sealed, _) = self
                    .store
                    .access_key(ctx.batch.host_id, &plan.group_name)
                    .await
                    .map_err(|err| err.to_string())?
                    .ok_or("no probe-user key for this group")?;
                let key = self
                    .cipher
                    .open(
                        &sealed,
                        &format!("access/{}/{}", ctx.batch.host_id, plan.group_name),
                    )
                    .map_err(|err| err.to_string())?;
                // The host caches /v1/models for 15 s per group.
                tokio::time::sleep(ctx.opts.models_cache_wait).await;
                let models = c
                    .gateway_models(Some(&key))
                    .await
                    .map_err(|err| format!("GET /v1/models with the probe user's key: {err}"))?;
                if !models.contains(&plan.smoke_model) {
                    return Err(format!(
                        "GET /v1/models does not list {} (it lists: {}). Not ready: check the account mapping and that an account is schedulable.",
                        plan.smoke_model,
                        models.join(", ")
                    ));
                }
                let body = json!({"model": plan.smoke_model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
                let v = c
                    .gateway_chat(&key, &body)
                    .await
                    .map_err(|err| format!("POST /v1/chat/completions: {err}"))?;
                if v.get("choices")
                    .and_then(Value::as_array)
                    .is_none_or(|a| a.is_empty())
                {
                    return Err(format!(
                        "POST /v1/chat/completions answered without choices: {}",
                        ev(&v)
                    ));
                }
                Ok(Outcome {
                    remote_id: String::new(),
                    request: ev(
                        &json!({"models": "GET /v1/models", "chat": body, "authorization": format!("Bearer {}", key.expose())}),
                    ),
                    response: ev(&json!({"models": models, "chat": v})),
                })
            }
        }
    }
}

/// Creates a uniquely named object (group, channel). A resend after a crash
/// meets the name already taken; the existing object of that name is ours
/// (the plan refused foreign ones), so its id is read back.
async fn create_unique(
    c: &HostClient,
    path: &str,
    body: &Value,
    exists_code: &str,
    name: &str,
) -> Result<i64, String> {
    let v = match c.admin("POST", path, Some(body), None).await {
        Ok(v) => v,
        Err(err) if err.code == exists_code => {
            let (id, _) = find_named(c, path, name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{exists_code} but no object named {name}"))?;
            json!({"id": id})
        }
        Err(err) => return Err(err.to_string()),
    };
    v.get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("POST {path}: the host returned no id"))
}

/// The probe user's key with this name (and group), as (id, full key).
async fn user_key_on_host(
    c: &HostClient,
    uid: i64,
    name: &str,
    group_id: Option<i64>,
) -> Result<Option<(i64, Secret)>, HostError> {
    let v = c
        .admin_get(&format!("/api/v1/admin/users/{uid}/api-keys?page_size=100"))
        .await?;
    Ok(v.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|k| {
            k.get("name").and_then(Value::as_str) == Some(name)
                && (group_id.is_none() || k.get("group_id").and_then(Value::as_i64) == group_id)
        })
        .and_then(|k| Some((k.get("id")?.as_i64()?, Secret::new(k.get("key")?.as_str()?)))))
}
