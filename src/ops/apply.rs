//! Applying a batch through the journal. Every remote write is
//! intent (`pending`, committed at plan time) → `sent` (committed before the
//! call) → result (`done`/`failed`, committed with the remote id and the
//! redacted evidence). A re-run resumes: a `sent` step is first looked up on
//! the host by its marker (found: adopted), else resent when the host makes
//! the call idempotent, else marked `unknown` for the operator — never
//! blindly repeated.

use super::import::{MANAGED_BY, MARKER_KEY};
use super::resource::Resource;
use super::{Core, OpError};
use crate::host::{HostClient, HostError};
use crate::model::{
    AccessMode, AccessStatus, Action, BatchStatus, KeyOutcomes, Pack, Plan, StepErrorKind,
    StepKind, StepState, Support,
};
use crate::secrets::{mask, Secret};
use crate::store::{AccessWrite, BatchRow, LedgerEntry, LedgerWrite, StepRow, StepUpdate};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
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
        if page >= super::drift::MAX_PAGES {
            return Err(super::drift::too_many_pages("/api/v1/admin/accounts"));
        }
        page += 1;
    }
}

/// A batch create that was sent and answered, waiting to be settled.
struct SentChunk {
    steps: Vec<StepRow>,
    bodies: Vec<Value>,
    answer: Result<Value, HostError>,
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
    /// How long the readiness gate keeps polling `/v1/models` while the
    /// smoke model is missing: the host's cache lifetime (15 s by default).
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

pub(super) fn ev(v: &Value) -> String {
    serde_json::to_string(&redact(v)).unwrap_or_default()
}

/// Everything a step needs.
pub(super) struct Ctx {
    pub(super) batch: BatchRow,
    pub(super) plan: Plan,
    pub(super) pack: Pack,
    pub(super) client: HostClient,
    pub(super) probe_user: (String, Secret),
    pub(super) idempotent_host: bool,
    pub(super) batch_create: bool,
    pub(super) keys: HashMap<String, Secret>,
    pub(super) opts: ApplyOptions,
    /// The run being executed.
    pub(super) run_id: i64,
    /// Steps this run marked `sent`: their outcome is settled by a later
    /// run (lookup first), never by a second send in this one.
    pub(super) sent_now: Mutex<HashSet<i64>>,
    /// The batch's account ids by key fingerprint: each as its account is
    /// done, then the rest read once before the remaining tests (each test
    /// would otherwise look its own up).
    pub(super) account_ids: Mutex<HashMap<String, String>>,
    /// Account tests waiting for their account, by key fingerprint: each
    /// runs as soon as the host says its account exists, while other
    /// accounts are still being created and settled (`account_ready`).
    pub(super) waiting_tests: Mutex<HashMap<String, StepRow>>,
    /// Where `account_ready` sends the key fingerprint while the
    /// tests run alongside the accounts.
    pub(super) ready: Mutex<Option<tokio::sync::mpsc::UnboundedSender<String>>>,
    /// The run's share of host calls (`opts.concurrency`).
    pub(super) permits: tokio::sync::Semaphore,
    /// Taken while a batch create's steps are marked `sent`.
    pub(super) marking: tokio::sync::Mutex<()>,
    /// How many account tests may queue for a share at once (see `permit_for`).
    pub(super) tests_queue: tokio::sync::Semaphore,
    /// The batch's group on the host, once its step is done.
    pub(super) group_id: std::sync::OnceLock<i64>,
    /// Told the group's id as soon as the host answers its create (before
    /// the read-back), for the channel to start.
    pub(super) group_written: Mutex<Option<tokio::sync::oneshot::Sender<i64>>>,
}

impl Ctx {
    fn sent_now(&self, seqs: &[i64]) {
        self.sent_now
            .lock()
            .expect("lock")
            .extend(seqs.iter().copied());
    }
    fn was_sent_now(&self, seq: i64) -> bool {
        self.sent_now.lock().expect("lock").contains(&seq)
    }
    /// A share of the run's host calls, held across one host call (never
    /// across a journal write, so calls wait for the host, not the disk).
    async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.permits
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }
    /// A share for a step of `kind`. At most one account test per share
    /// waits for one at a time (the others wait before that queue): a batch
    /// create or a user-access step then waits behind a few tests, not
    /// behind every test of the batch.
    async fn permit_for(&self, kind: StepKind) -> tokio::sync::SemaphorePermit<'_> {
        if kind != StepKind::AccountTest {
            return self.permit().await;
        }
        let _turn = self
            .tests_queue
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.permit().await
    }
    /// The host has the account of key `fp` as `id`: its test may start.
    fn account_ready(&self, fp: &str, id: &str) {
        self.account_ids
            .lock()
            .expect("lock")
            .insert(fp.to_string(), id.to_string());
        if let Some(tx) = &*self.ready.lock().expect("lock") {
            // The receiver outlives every sender in `accounts_then_tests`.
            let _ = tx.send(fp.to_string());
        }
    }
}

/// A step's outcome: the remote id and the (redacted) evidence.
#[derive(Default)]
pub(super) struct Outcome {
    pub remote_id: String,
    pub request: String,
    pub response: String,
    /// The body we wanted the object to have (secrets are dropped when it
    /// is normalized for the ledger).
    pub desired: Option<Value>,
    /// The object as the host showed it.
    pub observed: Option<Value>,
    /// The probe-user key to store with the result.
    pub access: Option<AccessWrite>,
    /// How the batch came to use it (`created`, `adopted`, `reused`).
    pub role: &'static str,
}

/// Why a step did not succeed, typed (see [`StepErrorKind`]).
#[derive(Debug)]
pub(super) struct StepFail {
    pub kind: StepErrorKind,
    pub message: String,
    /// Set when the object exists on the host despite the failure.
    pub remote_id: Option<String>,
    pub desired: Option<Value>,
    pub observed: Option<Value>,
}

impl StepFail {
    pub(crate) fn new(kind: StepErrorKind, message: impl Into<String>) -> StepFail {
        StepFail {
            kind,
            message: message.into(),
            remote_id: None,
            desired: None,
            observed: None,
        }
    }

    /// A host error: one after which the request may have reached the host
    /// (network, 5xx, 429, an idempotent request still in progress) is
    /// `maybe_sent`; any other answer is a definite refusal.
    pub(crate) fn host(e: HostError) -> StepFail {
        let in_progress = matches!(
            e.code.as_str(),
            "IDEMPOTENCY_IN_PROGRESS"
                | "IDEMPOTENCY_RETRY_BACKOFF"
                | "IDEMPOTENCY_STORE_UNAVAILABLE"
        );
        let kind = if e.is_transient() || in_progress {
            StepErrorKind::MaybeSent
        } else {
            StepErrorKind::Rejected
        };
        StepFail::new(kind, e.to_string())
    }

    /// The object `id` exists but did not read back as wanted.
    pub(super) fn read_back(
        id: i64,
        message: String,
        desired: &Value,
        observed: Option<&Value>,
    ) -> StepFail {
        StepFail {
            kind: StepErrorKind::ReadBack,
            message,
            remote_id: Some(id.to_string()),
            desired: Some(desired.clone()),
            observed: observed.cloned(),
        }
    }
}

impl From<&str> for StepFail {
    fn from(m: &str) -> StepFail {
        StepFail::new(StepErrorKind::Local, m)
    }
}

impl From<String> for StepFail {
    fn from(m: String) -> StepFail {
        StepFail::new(StepErrorKind::Local, m)
    }
}

impl Core {
    /// Applies (or resumes) a batch here and now and returns its final
    /// status. Refused while another live process holds the batch's apply.
    #[tracing::instrument(skip(self, opts), fields(batch_id = batch_id))]
    pub async fn apply_batch(
        &self,
        actor: &str,
        batch_id: i64,
        opts: ApplyOptions,
    ) -> Result<BatchStatus, ApplyError> {
        if let Some(run_id) = self.open_replacement(batch_id).await? {
            return self
                .resume_replace(actor, batch_id, run_id, opts)
                .await
                .map(|r| r.status);
        }
        let run_id = self.claim_apply(actor, batch_id).await?;
        self.apply_claimed(actor, batch_id, run_id, opts).await
    }

    /// Claims the batch's apply and runs it in the background: the pages,
    /// the CLI and the API start applies the same way. The claim happens
    /// before this returns, so a second start is refused with a conflict.
    pub async fn start_apply(
        &self,
        actor: &str,
        batch_id: i64,
        opts: ApplyOptions,
    ) -> Result<tokio::task::JoinHandle<()>, OpError> {
        // A key replacement a stopped process left is what "resume" runs.
        if let Some(run_id) = self.open_replacement(batch_id).await? {
            return self.spawn_replace(actor, batch_id, run_id, opts).await;
        }
        let run_id = self.claim_apply(actor, batch_id).await?;
        let (core, actor) = (self.clone(), actor.to_string());
        Ok(tokio::spawn(async move {
            if let Err(e) = core.apply_claimed(&actor, batch_id, run_id, opts).await {
                tracing::error!(batch_id, error = %e, "apply stopped");
            }
        }))
    }

    /// Throws a planned batch away before anything of it reached the host:
    /// its steps are marked skipped, its sealed keys deleted, and it can
    /// never be applied. Refused (409) once an apply has started.
    pub async fn discard_batch(&self, actor: &str, batch_id: i64) -> Result<(), OpError> {
        let batch = self
            .store
            .batch_head(batch_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))?;
        let status = BatchStatus::parse(&batch.status);
        let target = crate::model::batch_target(batch.id);
        if status != BatchStatus::Planned {
            let code = if status == BatchStatus::Discarded {
                "discard.again"
            } else {
                "discard.applied"
            };
            return Err(OpError::Conflict(crate::model::FieldError::coded(
                "batch",
                code,
                &[("status", &status.as_str())],
            )));
        }
        let reason = format!("discarded by {actor}; nothing was sent to the host");
        if !self
            .store
            .discard_batch(batch_id, actor, &target, &reason)
            .await?
        {
            return Err(OpError::Conflict(crate::model::FieldError::coded(
                "batch",
                "discard.started",
                &[],
            )));
        }
        tracing::info!(batch_id, "batch discarded");
        Ok(())
    }

    /// Takes the lease of the batch's apply run and marks the batch running.
    async fn claim_apply(&self, actor: &str, batch_id: i64) -> Result<i64, OpError> {
        // The plan without its per-key steps: its blockers are what counts.
        let batch = self
            .store
            .batch_head(batch_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))?;
        if BatchStatus::parse(&batch.status) == BatchStatus::Discarded {
            return Err(OpError::Conflict(crate::model::FieldError::coded(
                "batch",
                "batch.discarded",
                &[],
            )));
        }
        if matches!(
            BatchStatus::parse(&batch.status),
            BatchStatus::RolledBack | BatchStatus::RollingBack | BatchStatus::RollbackFailed
        ) {
            return Err(OpError::Conflict(crate::model::FieldError::coded(
                "batch",
                "batch.rolled_back",
                &[],
            )));
        }
        // Four eyes on a protected host: an approval of this plan by
        // someone other than its author (audited when missing).
        self.require_four_eyes(actor, batch_id, "apply").await?;
        if let Ok(plan) = serde_json::from_str::<Plan>(&batch.plan_json) {
            if let Some(b) = plan.blockers.first() {
                return Err(OpError::Conflict(crate::model::FieldError::coded(
                    "batch",
                    "batch.blocked",
                    &[("message_en", &b.message), ("action_en", &b.action)],
                )));
            }
        }
        let runs = self.store.runs(batch_id).await?;
        if let Some(busy) = runs
            .iter()
            .find(|r| r.kind != "apply" && r.status == "running")
        {
            return Err(OpError::Conflict(crate::model::FieldError::coded(
                "batch",
                "batch.busy",
                &[("kind", &busy.kind)],
            )));
        }
        let run = runs
            .iter()
            .rev()
            .find(|r| r.kind == "apply")
            .ok_or_else(|| {
                OpError::Store(crate::store::StoreError::Corrupt(format!(
                    "batch {batch_id} has no apply run"
                )))
            })?;
        self.claim(run.id, "applied").await?;
        self.store
            .set_batch_status(batch_id, BatchStatus::Running.as_str(), None)
            .await?;
        self.store
            .audit(
                actor,
                "batch.apply",
                &crate::model::batch_target(batch.id),
                "started",
                &format!("run {}", run.id),
            )
            .await?;
        Ok(run.id)
    }

    /// Claims a run's lease for this process (a dead holder's is taken over).
    pub(crate) async fn claim(&self, run_id: i64, what: &str) -> Result<(), OpError> {
        match self
            .store
            .claim_run(
                run_id,
                super::lease::owner_id(),
                super::lease::LEASE_TTL.as_millis() as i64,
                super::lease::is_dead,
            )
            .await?
        {
            crate::store::Claim::Held => Ok(()),
            crate::store::Claim::Discarded => Err(OpError::Conflict(
                crate::model::FieldError::coded("batch", "batch.discarded", &[]),
            )),
            crate::store::Claim::Busy { owner, until_ms } => {
                Err(OpError::Conflict(crate::model::FieldError::coded(
                    "batch",
                    "batch.leased",
                    &[
                        ("what_en", &what),
                        (
                            "owner",
                            &owner.split(':').take(2).collect::<Vec<_>>().join(" pid "),
                        ),
                        ("until", &crate::model::format_ms(until_ms)),
                    ],
                )))
            }
        }
    }

    /// Renews a held lease while `work` runs, then releases it with the
    /// run's final status (`None`: left held, as a killed process leaves it).
    pub(crate) async fn with_lease<T>(
        &self,
        run_id: i64,
        work: impl std::future::Future<Output = T>,
        status_of: impl Fn(&T) -> Option<&'static str>,
    ) -> Result<T, OpError> {
        let store = self.store.clone();
        let beat = tokio::spawn(async move {
            let every = super::lease::LEASE_TTL / 3;
            loop {
                tokio::time::sleep(every).await;
                match store
                    .renew_lease(
                        run_id,
                        super::lease::owner_id(),
                        super::lease::LEASE_TTL.as_millis() as i64,
                    )
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(run_id, "the run's lease was taken over");
                        return;
                    }
                    Err(e) => tracing::warn!(run_id, error = %e, "lease renewal failed"),
                }
            }
        });
        let out = work.await;
        beat.abort();
        if let Some(status) = status_of(&out) {
            self.store
                .finish_run(run_id, super::lease::owner_id(), status)
                .await?;
        }
        Ok(out)
    }

    async fn apply_claimed(
        &self,
        actor: &str,
        batch_id: i64,
        run_id: i64,
        opts: ApplyOptions,
    ) -> Result<BatchStatus, ApplyError> {
        let result = self
            .with_lease(
                run_id,
                self.apply_run(actor, batch_id, run_id, opts),
                |r| match r {
                    Err(ApplyError::Crashed(_)) => None,
                    Ok(BatchStatus::Succeeded | BatchStatus::PartiallySucceeded) => Some("done"),
                    _ => Some("failed"),
                },
            )
            .await?;
        // Not ready, or some keys failed: say why without being asked.
        if matches!(&result, Ok(s) if *s != BatchStatus::Succeeded) {
            if let Err(e) = self.diagnose_batch(actor, batch_id).await {
                tracing::warn!(error = %e, "diagnosis after apply failed");
            }
        }
        result
    }

    /// What the steps of `run_id` need: the batch, its plan and pack, a
    /// host client, the probe user and the batch's keys, opened.
    pub(super) async fn step_ctx(
        &self,
        batch_id: i64,
        run_id: i64,
        opts: ApplyOptions,
    ) -> Result<Ctx, OpError> {
        // The plan without its per-key steps (the journal holds those).
        let batch = self
            .store
            .batch_head(batch_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))?;
        let plan: Plan = serde_json::from_str(&batch.plan_json)
            .map_err(|e| OpError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
        let (_, pack) = self.pack(batch.pack_version_id).await?;
        let host = self.host_row(batch.host_id).await?;
        let (client, secrets) = self.host_client(&host)?;
        let probe_user = secrets.probe_user.ok_or_else(|| {
            OpError::Invalid(crate::model::FieldError::coded(
                "host",
                "plan.no_probe_user",
                &[],
            ))
        })?;
        let probe = self.store.latest_probe(host.id).await?;
        let idempotent_host = probe
            .as_ref()
            .is_some_and(|p| p.report.capability("idempotency_keys") == Support::Yes);
        let batch_create = probe
            .as_ref()
            .is_some_and(|p| p.report.capability("batch_create") == Support::Yes);
        let mut keys = HashMap::new();
        for (fp, sealed, _) in self.store.batch_keys(batch_id).await? {
            keys.insert(
                fp.clone(),
                self.cipher
                    .open(&sealed, &super::aad::batch_key(&batch.uid, &fp))?,
            );
        }
        let ctx = Ctx {
            batch,
            plan,
            pack,
            client,
            probe_user,
            idempotent_host,
            batch_create,
            keys,
            run_id,
            sent_now: Mutex::new(HashSet::new()),
            account_ids: Mutex::new(HashMap::new()),
            waiting_tests: Mutex::new(HashMap::new()),
            ready: Mutex::new(None),
            permits: tokio::sync::Semaphore::new(opts.concurrency.max(1)),
            tests_queue: tokio::sync::Semaphore::new(opts.concurrency.max(1)),
            marking: tokio::sync::Mutex::new(()),
            group_id: std::sync::OnceLock::new(),
            group_written: Mutex::new(None),
            opts,
        };
        Ok(ctx)
    }

    async fn apply_run(
        &self,
        actor: &str,
        batch_id: i64,
        run_id: i64,
        opts: ApplyOptions,
    ) -> Result<BatchStatus, ApplyError> {
        let ctx = std::sync::Arc::new(self.step_ctx(batch_id, run_id, opts).await?);
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
                &crate::model::batch_target(ctx.batch.id),
                status.as_str(),
                access.as_str(),
            )
            .await
            .map_err(OpError::from)?;
        result.map(|_| status)
    }

    async fn run(
        &self,
        ctx: &std::sync::Arc<Ctx>,
    ) -> Result<(BatchStatus, AccessStatus), ApplyError> {
        let steps = self
            .store
            .run_steps(ctx.run_id)
            .await
            .map_err(OpError::from)?;
        // A reused group was settled at plan time: record that this batch
        // uses it too, so a rollback of its creator keeps it.
        for s in steps
            .iter()
            .filter(|s| s.kind == StepKind::Group && s.action == Action::Reuse)
        {
            if let Some(id) = &s.remote_id {
                self.store
                    .ledger_add_ref(ctx.batch.host_id, "group", id, ctx.batch.id, "reused")
                    .await
                    .map_err(OpError::from)?;
            }
        }
        let by_kind = |k: StepKind| {
            steps
                .iter()
                .filter(move |s| s.kind == k)
                .cloned()
                .collect::<Vec<_>>()
        };
        // Group first: everything else needs its id. The channel is created
        // as soon as the host has answered the group's create, while the
        // group is read back; the accounts wait for both to be proven.
        let (written_tx, written_rx) = tokio::sync::oneshot::channel();
        *ctx.group_written.lock().expect("lock") = Some(written_tx);
        let group = async {
            let mut group_id: Option<i64> = None;
            for s in by_kind(StepKind::Group) {
                group_id = self
                    .step(ctx, &s, None)
                    .await?
                    .and_then(|id| id.parse().ok());
            }
            // Never created by this run (reused, done before, failed): the
            // channel waits no more.
            ctx.group_written.lock().expect("lock").take();
            Ok::<_, ApplyError>(group_id)
        };
        let channel = async {
            match written_rx.await {
                Ok(id) => self
                    .channels(ctx, &by_kind(StepKind::Channel), id)
                    .await
                    .map(Some),
                Err(_) => Ok(None),
            }
        };
        let (group_id, channel_ok) = futures_util::future::try_join(group, channel).await?;
        let Some(group_id) = group_id else {
            return Ok((BatchStatus::Failed, AccessStatus::Broken));
        };
        let channel_ok = match channel_ok {
            Some(ok) => ok,
            None => {
                self.channels(ctx, &by_kind(StepKind::Channel), group_id)
                    .await?
            }
        };
        if !channel_ok {
            return Ok((BatchStatus::Failed, AccessStatus::Broken));
        }
        let _ = ctx.group_id.set(group_id);
        // Each account's test waits for its account, and starts as soon as
        // the host names that account (while the others are still being
        // created, read back and settled). A replaced key's account is
        // gone: its old test is history.
        let replaced = self
            .store
            .replaced_fingerprints(ctx.batch.id)
            .await
            .map_err(OpError::from)?;
        // (As read at the start: nothing in this run has moved them yet.)
        *ctx.waiting_tests.lock().expect("lock") = by_kind(StepKind::AccountTest)
            .into_iter()
            .filter_map(|t| Some((t.fingerprint.clone()?, t)))
            .filter(|(fp, _)| !replaced.contains(fp))
            .collect();
        // User access needs the group only: it goes alongside the accounts
        // and their tests.
        let access = async {
            let mut ok = true;
            for kind in [StepKind::Balance, StepKind::Subscription, StepKind::UserKey] {
                for s in by_kind(kind) {
                    ok &= self.step(ctx, &s, Some(group_id)).await?.is_some();
                }
            }
            Ok::<bool, ApplyError>(ok)
        };
        let (access_ok, ()) = futures_util::future::try_join(
            access,
            self.accounts_then_tests(ctx, by_kind(StepKind::Account), group_id),
        )
        .await?;
        if !access_ok {
            return Ok((BatchStatus::Failed, AccessStatus::Broken));
        }
        let mut ready = false;
        for s in by_kind(StepKind::Readiness) {
            // Readiness is proven now, by this run: a gate passed by an
            // earlier run is checked again (it writes nothing).
            let current = self
                .store
                .step(ctx.batch.id, s.seq)
                .await
                .map_err(OpError::from)?;
            if current.is_some_and(|c| c.state == StepState::Done) {
                self.store
                    .update_step(
                        ctx.batch.id,
                        s.seq,
                        StepUpdate {
                            state: Some(StepState::Pending),
                            error: Some(String::new()),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(OpError::from)?;
            }
            ready = self.step(ctx, &s, Some(group_id)).await?.is_some();
        }
        // The batch's status comes from its own keys; the access status is
        // the group's (another batch's accounts may have served the check).
        let keys = KeyOutcomes::parse(
            &self
                .store
                .key_outcomes(ctx.batch.id)
                .await
                .map_err(OpError::from)?,
        );
        let access = match (ready, ctx.plan.mode) {
            (false, _) => AccessStatus::Broken,
            (true, AccessMode::SelfService) => AccessStatus::SelfServiceReady,
            (true, AccessMode::Subscription) => AccessStatus::SubscriptionReady,
        };
        Ok((keys.apply_status(ready), access))
    }

    /// The batch's channel steps on group `group_id`: whether each is done.
    async fn channels(
        &self,
        ctx: &Ctx,
        steps: &[StepRow],
        group_id: i64,
    ) -> Result<bool, ApplyError> {
        for s in steps {
            if self.step(ctx, s, Some(group_id)).await?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Creates the accounts (in chunks through the host's batch endpoint
    /// when it has one, then one by one, a few at a time, for whatever is
    /// left), each followed by its test; then the tests whose account was
    /// not done by this run.
    async fn accounts_then_tests(
        &self,
        ctx: &std::sync::Arc<Ctx>,
        accounts: Vec<StepRow>,
        group_id: i64,
    ) -> Result<(), ApplyError> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        *ctx.ready.lock().expect("lock") = Some(tx);
        let create = async {
            let r = self.accounts(ctx, accounts, group_id).await;
            // No account becomes ready after this: the tests drain and end.
            ctx.ready.lock().expect("lock").take();
            r
        };
        // Each test is a task of its own: its answer is taken up on any of
        // the runtime's threads, not after whatever the run's task is doing
        // (reading back and settling accounts). Dropping the set (the run
        // stopped) stops them.
        let tests = async {
            let mut running = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    Some(fp) = rx.recv() => {
                        let (core, ctx) = (self.clone(), std::sync::Arc::clone(ctx));
                        running.spawn(async move { core.test_when_done(&ctx, fp).await });
                    }
                    Some(r) = running.join_next(), if !running.is_empty() => match r {
                        Ok(r) => r?,
                        // A test that panicked panics the run, as before.
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        // Only this set cancels them (when it is dropped).
                        Err(_) => {}
                    },
                    else => return Ok::<(), ApplyError>(()),
                }
            }
        };
        let (accounts, ()) = futures_util::future::try_join(create, tests).await?;
        self.tests_left(ctx, accounts, group_id).await
    }

    /// Creates the accounts: in chunks through the host's batch endpoint
    /// when it has one, then one by one (a few at a time) for whatever is
    /// left. Returns the account steps as they ended.
    async fn accounts(
        &self,
        ctx: &Ctx,
        accounts: Vec<StepRow>,
        group_id: i64,
    ) -> Result<Vec<StepRow>, ApplyError> {
        if ctx.batch_create && accounts.len() >= 2 {
            let mut chunks = Vec::new();
            for chunk in accounts.chunks(BATCH_CHUNK) {
                chunks.push(self.account_chunk(ctx, chunk, group_id));
            }
            let mut sent = Vec::new();
            for r in futures_util::future::join_all(chunks).await {
                sent.extend(r?);
            }
            // One read-back for every chunk sent (a listing per chunk would
            // read the whole batch's accounts each time).
            if !sent.is_empty() {
                let prefix = format!("rm-{}-", ctx.plan.provider_key);
                let permit = ctx.permit().await;
                let back = accounts_on_host(&ctx.client, &prefix).await;
                drop(permit);
                let mut settles = Vec::with_capacity(sent.len());
                for c in &sent {
                    settles.push(self.settle_chunk(ctx, &c.steps, &c.bodies, &c.answer, &back));
                }
                for r in futures_util::future::join_all(settles).await {
                    r?;
                }
            }
        }
        // A later pass for batch creates this run could not settle: the same
        // batch under the same key (idempotent hosts), else a lookup only.
        if ctx.batch_create {
            let mut keys = BTreeSet::new();
            for cur in self
                .store
                .run_steps_of(ctx.run_id, StepKind::Account)
                .await
                .map_err(OpError::from)?
            {
                if let (StepState::Sent, Some(k)) = (cur.state, cur.chunk_key) {
                    keys.insert(k);
                }
            }
            for key in keys {
                self.resume_chunk(ctx, &key, group_id, true).await?;
            }
        }
        // Where the passes above left each account, read once: the lease
        // keeps other runs out, and nothing else in this run moves them.
        let accounts = self
            .store
            .run_steps_of(ctx.run_id, StepKind::Account)
            .await
            .map_err(OpError::from)?;
        // (A loop of calls to one async fn, not a closure: the future must
        // stay `Send` for every lifetime when the server spawns it.)
        let mut pending = Vec::with_capacity(accounts.len());
        for s in &accounts {
            pending.push(self.account_step(ctx, s, group_id));
        }
        for r in futures_util::future::join_all(pending).await {
            r?;
        }
        Ok(accounts)
    }

    /// The tests still waiting once the accounts are done: their account
    /// was not created by this run (skipped with it, failed, or done by an
    /// earlier run whose id the journal holds).
    async fn tests_left(
        &self,
        ctx: &Ctx,
        accounts: Vec<StepRow>,
        group_id: i64,
    ) -> Result<(), ApplyError> {
        let waiting: Vec<StepRow> = std::mem::take(&mut *ctx.waiting_tests.lock().expect("lock"))
            .into_values()
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let ids = self
            .store
            .account_remote_ids(ctx.batch.id)
            .await
            .map_err(OpError::from)?;
        {
            let mut known = ctx.account_ids.lock().expect("lock");
            for (fp, id) in ids {
                known.entry(fp).or_insert(id);
            }
        }
        // A key another batch holds has no account of this batch to test:
        // its test is skipped with the account, not failed.
        let skipped: HashMap<String, String> = accounts
            .into_iter()
            .filter(|a| a.state == StepState::Skipped && a.action != Action::Reuse)
            .filter_map(|a| a.fingerprint.map(|fp| (fp, a.response_json)))
            .collect();
        let mut skips = Vec::new();
        let mut pending = Vec::with_capacity(waiting.len());
        for s in &waiting {
            let why = s.fingerprint.as_ref().and_then(|fp| skipped.get(fp));
            match why {
                Some(why) if matches!(s.state, StepState::Pending | StepState::Failed) => {
                    skips.push(self.store.update_step(
                        ctx.batch.id,
                        s.seq,
                        StepUpdate {
                            state: Some(StepState::Skipped),
                            response_json: Some(format!(
                                "skipped with its account ({})",
                                why.trim_start_matches("skipped: ")
                            )),
                            error: Some(String::new()),
                            error_kind: Some(String::new()),
                            ..Default::default()
                        },
                    ));
                }
                _ => pending.push(self.step_from(ctx, s, Some(group_id))),
            }
        }
        for r in futures_util::future::join_all(skips).await {
            r.map_err(OpError::from)?;
        }
        for r in futures_util::future::join_all(pending).await {
            r?;
        }
        Ok(())
    }

    /// One account step; its test may start once it is done. A step that
    /// has nothing left to send takes no share of the host calls (so a pass
    /// over done accounts does not queue behind the tests).
    async fn account_step(&self, ctx: &Ctx, s: &StepRow, group_id: i64) -> Result<(), ApplyError> {
        let id = self.step_from(ctx, s, Some(group_id)).await?;
        if let (Some(id), Some(fp)) = (id, &s.fingerprint) {
            ctx.account_ready(fp, &id);
        }
        Ok(())
    }

    /// The account of key `fp` exists as `id`: runs its test if one waits
    /// for it (the first word that it exists starts it; later ones find it
    /// gone).
    async fn test_when_done(&self, ctx: &Ctx, fp: String) -> Result<(), ApplyError> {
        let Some(test) = ctx.waiting_tests.lock().expect("lock").remove(&fp) else {
            return Ok(());
        };
        self.step_from(ctx, &test, ctx.group_id.get().copied())
            .await
            .map(|_| ())
    }

    /// Creates a chunk of accounts with one `POST /accounts/batch`, through
    /// the same journal: every step of the chunk is `sent` (stamped with the
    /// call's `Idempotency-Key`) before the call; the caller settles each
    /// step from the answer (`settle_chunk`). Chunks an earlier run left
    /// unsettled are resumed first. Steps it does not settle stay `sent`
    /// and are never re-sent one by one: a later run resumes them as the
    /// same batch under the same key. `chunk` is as the journal holds it
    /// now (the lease keeps other runs out).
    async fn account_chunk(
        &self,
        ctx: &Ctx,
        chunk: &[StepRow],
        gid: i64,
    ) -> Result<Option<SentChunk>, ApplyError> {
        let store = &self.store;
        let mut todo = Vec::new();
        let mut resume = BTreeSet::new();
        for cur in chunk.iter().cloned() {
            match cur.state {
                StepState::Pending => todo.push(cur),
                StepState::Failed if resendable(&cur) => todo.push(cur),
                StepState::Sent if !ctx.was_sent_now(cur.seq) => {
                    if let Some(k) = &cur.chunk_key {
                        resume.insert(k.clone());
                    }
                }
                _ => {}
            }
        }
        for key in resume {
            self.resume_chunk(ctx, &key, gid, false).await?;
        }
        if todo.len() < 2 {
            return Ok(None);
        }
        let mut bodies = Vec::new();
        let mut sendable = Vec::new();
        for s in todo {
            match super::kinds::account_body(ctx, &s, gid) {
                Ok(b) => {
                    bodies.push(b);
                    sendable.push(s);
                }
                Err(f) => {
                    self.fail(ctx, &s, f).await?;
                }
            }
        }
        // A fresh key per run and set: the same set resent later under this
        // key is replayed by the host, never repeated.
        let seqs: Vec<i64> = sendable.iter().map(|s| s.seq).collect();
        let digest = hex::encode(
            &Sha256::digest(
                seqs.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
                    .as_bytes(),
            )[..8],
        );
        let key = format!("rm-{}-r{}-batch-{digest}", ctx.batch.uid, ctx.run_id);
        // One chunk's mark at a time: the first chunk is sent after its own
        // commit, not after one holding every chunk's (a thousand rows).
        let turn = ctx.marking.lock().await;
        let taken = store
            .mark_sent(ctx.batch.id, &seqs, Some(&key))
            .await
            .map_err(OpError::from)?;
        drop(turn);
        ctx.sent_now(&seqs);
        let (mut steps, mut sent_bodies) = (Vec::new(), Vec::new());
        for (s, b) in sendable.into_iter().zip(bodies) {
            if let Some((_, other)) = taken.iter().find(|(seq, _)| *seq == s.seq) {
                self.skip_taken(ctx, &s, *other).await?;
            } else {
                steps.push(s);
                sent_bodies.push(b);
            }
        }
        if steps.is_empty() {
            return Ok(None);
        }
        if let Some(seq) = crash_in(ctx, &steps, CrashPoint::AfterSent) {
            return Err(ApplyError::Crashed(seq));
        }
        let permit = ctx.permit().await;
        let answer = ctx
            .client
            .admin(
                "POST",
                "/api/v1/admin/accounts/batch",
                Some(&json!({"accounts": sent_bodies})),
                Some(&key),
            )
            .await;
        drop(permit);
        if let Some(seq) = crash_in(ctx, &steps, CrashPoint::AfterCall) {
            return Err(ApplyError::Crashed(seq));
        }
        // The host names each account it created, with its id: their tests
        // may start while the chunk is read back and settled.
        if let Ok(v) = &answer {
            let created: HashMap<&str, i64> = v
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| r.get("success").and_then(Value::as_bool) == Some(true))
                .filter_map(|r| Some((r.get("name")?.as_str()?, r.get("id")?.as_i64()?)))
                .collect();
            for (s, b) in steps.iter().zip(&sent_bodies) {
                let id = b["name"].as_str().and_then(|n| created.get(n));
                if let (Some(id), Some(fp)) = (id, &s.fingerprint) {
                    ctx.account_ready(fp, &id.to_string());
                }
            }
        }
        Ok(Some(SentChunk {
            steps,
            bodies: sent_bodies,
            answer,
        }))
    }

    /// Resumes a batch create an earlier run sent: accounts found by their
    /// marker are adopted; for the rest the same batch is sent again under
    /// the same key when the host de-duplicates it (it replays its answer or
    /// says the first call is still running), else they become `unknown`.
    /// In `same_run` (the pass right after the first attempt) nothing is
    /// declared unknown: the host may still be working on the first call.
    async fn resume_chunk(
        &self,
        ctx: &Ctx,
        key: &str,
        gid: i64,
        same_run: bool,
    ) -> Result<(), ApplyError> {
        let members = self
            .store
            .chunk_steps(ctx.batch.id, key)
            .await
            .map_err(OpError::from)?;
        if !members.iter().any(|s| s.state == StepState::Sent) {
            return Ok(());
        }
        let prefix = format!("rm-{}-", ctx.plan.provider_key);
        let permit = ctx.permit().await;
        let on_host = accounts_on_host(&ctx.client, &prefix).await;
        drop(permit);
        let on_host = match on_host {
            Ok(v) => v,
            // Cannot look: leave them `sent` for a later run.
            Err(_) => return Ok(()),
        };
        let mut remaining = Vec::new();
        for s in members.iter().filter(|s| s.state == StepState::Sent) {
            match on_host.get(&s.marker) {
                Some(a) => self.adopt(ctx, s, a, gid).await?,
                None => remaining.push(s.clone()),
            }
        }
        if remaining.is_empty() {
            return Ok(());
        }
        let sent_at = members
            .iter()
            .filter_map(|s| s.started_at_ms)
            .min()
            .unwrap_or(0);
        let within_ttl = crate::store::now_ms() - sent_at < 23 * 3600 * 1000;
        if same_run && !ctx.idempotent_host {
            return Ok(());
        }
        if !ctx.idempotent_host || !within_ttl {
            let why = if ctx.idempotent_host {
                "the batch create that carried this account was sent more than 23 hours ago (past the host's idempotency window) and its answer was lost; the host shows no such account"
            } else {
                "the batch create that carried this account lost its answer; the host shows no such account and cannot de-duplicate a resend"
            };
            for s in &remaining {
                self.mark_unknown(ctx, s, why).await?;
            }
            return Ok(());
        }
        // The original set, in the original order, under the original key.
        let mut bodies = Vec::new();
        for s in &members {
            match super::kinds::account_body(ctx, s, gid) {
                Ok(b) => bodies.push(b),
                Err(f) => {
                    for s in &remaining {
                        self.mark_unknown(
                            ctx,
                            s,
                            &format!(
                                "cannot rebuild the batch create to resend it: {}",
                                f.message
                            ),
                        )
                        .await?;
                    }
                    return Ok(());
                }
            }
        }
        ctx.sent_now(&remaining.iter().map(|s| s.seq).collect::<Vec<_>>());
        let permit = ctx.permit().await;
        let answer = ctx
            .client
            .admin(
                "POST",
                "/api/v1/admin/accounts/batch",
                Some(&json!({"accounts": bodies})),
                Some(key),
            )
            .await;
        drop(permit);
        if let Err(e) = &answer {
            if e.code == "IDEMPOTENCY_KEY_CONFLICT" {
                for s in &remaining {
                    self.mark_unknown(ctx, s, "the host refused the resend of the lost batch create (IDEMPOTENCY_KEY_CONFLICT: the request differs from the first one, e.g. the pack changed); check the host").await?;
                }
                return Ok(());
            }
        }
        let pos: Vec<usize> = remaining
            .iter()
            .filter_map(|r| members.iter().position(|m| m.seq == r.seq))
            .collect();
        let bodies: Vec<Value> = pos.iter().map(|i| bodies[*i].clone()).collect();
        let back = match &answer {
            Ok(_) => {
                let _permit = ctx.permit().await;
                accounts_on_host(&ctx.client, &prefix).await
            }
            Err(e) => Err(e.clone()),
        };
        self.settle_chunk(ctx, &remaining, &bodies, &answer, &back)
            .await
    }

    /// Records the outcome of a batch create for `steps` (sent with
    /// `bodies`) against `back`, our accounts read back after the call.
    /// The steps settle concurrently, so their journal writes share commits.
    async fn settle_chunk(
        &self,
        ctx: &Ctx,
        steps: &[StepRow],
        bodies: &[Value],
        answer: &Result<Value, HostError>,
        back: &Result<HashMap<String, Value>, HostError>,
    ) -> Result<(), ApplyError> {
        let results = match answer {
            Ok(v) => v
                .get("results")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default(),
            Err(e) => {
                let mut pending = Vec::with_capacity(steps.len());
                for s in steps {
                    let mut f = StepFail::host(e.clone());
                    f.message = format!("batch create: {}", f.message);
                    pending.push(self.fail(ctx, s, f));
                }
                for r in futures_util::future::join_all(pending).await {
                    r?;
                }
                return Ok(());
            }
        };
        let mut done = Vec::with_capacity(steps.len());
        let mut failed = Vec::new();
        for (s, body) in steps.iter().zip(bodies) {
            match settled(ctx, s, body, results, back) {
                Ok(o) => done.push((s, o)),
                Err(f) => failed.push(self.fail(ctx, s, f)),
            }
        }
        for r in futures_util::future::join_all(failed).await {
            r?;
        }
        // The created accounts in one write; should that fail (a key that
        // went live elsewhere meanwhile), one by one, each with its outcome.
        let all = done
            .iter()
            .map(|(s, o)| {
                let (u, ledger, _) = self.finish_write(ctx, s, o);
                let ledger = match ledger {
                    Some(LedgerWrite::Record(e)) => Some(*e),
                    _ => None,
                };
                (s.seq, u, ledger)
            })
            .collect();
        if self.store.finish_steps(ctx.batch.id, all).await.is_err() {
            let mut pending = Vec::with_capacity(done.len());
            for (s, o) in &done {
                pending.push(self.finish(ctx, s, o));
            }
            for r in futures_util::future::join_all(pending).await {
                r?;
            }
        }
        for (s, o) in &done {
            if let Some(fp) = &s.fingerprint {
                ctx.account_ready(fp, &o.remote_id);
            }
        }
        Ok(())
    }

    /// Adopts an account found on the host by its marker.
    async fn adopt(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        found: &Value,
        gid: i64,
    ) -> Result<(), ApplyError> {
        let Some(id) = found.get("id").and_then(Value::as_i64) else {
            return self
                .mark_unknown(ctx, s, "found on the host by its marker, but without an id")
                .await;
        };
        let desired = super::kinds::account_body(ctx, s, gid).ok();
        self.finish(
            ctx,
            s,
            &Outcome {
                remote_id: id.to_string(),
                request: String::new(),
                response:
                    "adopted: the last attempt's answer was lost; found on the host by its marker"
                        .into(),
                desired,
                observed: Some(found.clone()),
                role: "created",
                ..Default::default()
            },
        )
        .await?;
        if let Some(fp) = &s.fingerprint {
            ctx.account_ready(fp, &id.to_string());
        }
        Ok(())
    }

    async fn mark_unknown(&self, ctx: &Ctx, s: &StepRow, why: &str) -> Result<(), ApplyError> {
        self.store
            .update_step(
                ctx.batch.id,
                s.seq,
                StepUpdate {
                    state: Some(StepState::Unknown),
                    error: Some(format!("{why}. Check the host for it, then re-plan.")),
                    error_kind: Some(StepErrorKind::MaybeSent.as_str().into()),
                    ..Default::default()
                },
            )
            .await
            .map_err(OpError::from)?;
        Ok(())
    }

    /// Another batch imported (or is importing) this key since the plan.
    async fn skip_taken(&self, ctx: &Ctx, s: &StepRow, other: i64) -> Result<(), ApplyError> {
        self.store
            .update_step(
                ctx.batch.id,
                s.seq,
                StepUpdate {
                    state: Some(StepState::Skipped),
                    response_json: Some(format!(
                        "skipped: batch #{other} imported this key after this batch was planned"
                    )),
                    ..Default::default()
                },
            )
            .await
            .map_err(OpError::from)?;
        Ok(())
    }

    /// Runs one step through the journal. `Ok(Some(remote id))` when done,
    /// `Ok(None)` when it failed, was skipped or its outcome is unknown.
    pub(super) async fn step(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        group_id: Option<i64>,
    ) -> Result<Option<String>, ApplyError> {
        // Re-read: a concurrent or earlier run may have moved it on.
        let current = self
            .store
            .step(ctx.batch.id, s.seq)
            .await
            .map_err(OpError::from)?
            .unwrap_or_else(|| s.clone());
        self.step_from(ctx, &current, group_id).await
    }

    /// Takes one step on from `current`, its row as the journal holds it
    /// now (read by the caller). Each host call takes a share of the run's
    /// host-call concurrency after the journal write that guards it, until
    /// the host has answered (not while the answer is recorded).
    async fn step_from(
        &self,
        ctx: &Ctx,
        current: &StepRow,
        group_id: Option<i64>,
    ) -> Result<Option<String>, ApplyError> {
        let (batch_id, seq) = (ctx.batch.id, current.seq);
        let store = &self.store;
        match current.state {
            StepState::Done => return Ok(current.remote_id.clone().or(Some(String::new()))),
            StepState::Skipped => {
                // A reused object counts as there; a skipped key does not.
                return Ok(if current.action == Action::Reuse {
                    current.remote_id.clone().or(Some(String::new()))
                } else {
                    None
                });
            }
            StepState::Unknown => return Ok(None),
            // Sent by this run: settled by a later run, never resent now.
            StepState::Sent if ctx.was_sent_now(seq) => return Ok(None),
            StepState::Sent => {
                // The last run may have died after the host acted: look first.
                let permit = ctx.permit_for(current.kind).await;
                let found = self.lookup(ctx, current, group_id).await;
                drop(permit);
                match found {
                    Ok(Some(found)) => {
                        let id = found.0.clone();
                        self.finish(ctx, current, &found.1).await?;
                        return Ok(Some(id));
                    }
                    // Sent in a batch create: only the same batch under the
                    // same key may be sent again (the chunk path does that).
                    Ok(None) if current.chunk_key.is_some() => return Ok(None),
                    Ok(None) if self.resend_safe(ctx, current.kind) => {}
                    Ok(None) => {
                        self.mark_unknown(ctx, current, "the previous run sent this write and stopped before recording the answer; the host shows no such object and cannot de-duplicate a resend").await?;
                        return Ok(None);
                    }
                    Err(e) => {
                        // Cannot look now: it stays `sent`.
                        store
                            .update_step(batch_id, seq, StepUpdate {
                                error: Some(format!("looking it up before a resend failed: {e}; it stays sent and is looked up again on the next run")),
                                ..Default::default()
                            })
                            .await
                            .map_err(OpError::from)?;
                        return Ok(None);
                    }
                }
            }
            StepState::Failed if !resendable(current) => return Ok(None),
            StepState::Pending | StepState::Failed => {}
        }
        if current.kind.is_check() {
            // A check writes nothing on the host: its `sent` mark guards no
            // write, so the call does not wait for it to be durable.
            store.mark_check_sent(batch_id, seq);
        } else {
            let taken = store
                .mark_sent(batch_id, &[seq], None)
                .await
                .map_err(OpError::from)?;
            if let Some((_, other)) = taken.first() {
                self.skip_taken(ctx, current, *other).await?;
                return Ok(None);
            }
        }
        ctx.sent_now(&[seq]);
        if ctx.opts.crash_at == Some((seq, CrashPoint::AfterSent)) {
            return Err(ApplyError::Crashed(seq));
        }
        let permit = ctx.permit_for(current.kind).await;
        let outcome = self.execute(ctx, current, group_id).await;
        drop(permit);
        if ctx.opts.crash_at == Some((seq, CrashPoint::AfterCall)) {
            return Err(ApplyError::Crashed(seq));
        }
        match outcome {
            Ok(o) => {
                let id = o.remote_id.clone();
                self.finish(ctx, current, &o).await?;
                Ok(Some(id))
            }
            Err(mut f) => {
                // A check that errs is a failed check: it writes nothing.
                if current.kind.is_check() {
                    f.kind = StepErrorKind::Check;
                }
                self.fail(ctx, current, f).await
            }
        }
    }

    fn resend_safe(&self, ctx: &Ctx, kind: StepKind) -> bool {
        match kind {
            // Unique names on the host: a resend can only conflict, never duplicate.
            StepKind::Group | StepKind::Channel => true,
            // Same-days-same-notes assignment is idempotent on the host.
            StepKind::Subscription => true,
            // Checks write nothing; removal and pausing are idempotent.
            StepKind::AccountTest | StepKind::Readiness | StepKind::Remove | StepKind::Pause => {
                true
            }
            // The top-up re-reads the balance first and adds only what is
            // missing: a resend after a lost answer adds nothing.
            StepKind::Balance => true,
            // Idempotency-Key routes.
            StepKind::Account | StepKind::UserKey => ctx.idempotent_host,
        }
    }

    /// Records a failure. One after which the host may have acted keeps the
    /// step `sent` (looked up before anything is sent again); one whose
    /// object exists records it in the ledger with the failure.
    async fn fail(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        f: StepFail,
    ) -> Result<Option<String>, ApplyError> {
        let state = match f.kind {
            StepErrorKind::MaybeSent => None,
            _ => Some(StepState::Failed),
        };
        let message = match f.kind {
            StepErrorKind::MaybeSent => format!(
                "{}; the outcome is unknown, so it stays sent and the next run looks it up before any resend",
                f.message
            ),
            _ => f.message.clone(),
        };
        let ledger = f.remote_id.as_ref().and_then(|id| {
            self.ledger_write(
                ctx,
                s,
                id,
                "",
                f.desired.as_ref(),
                f.observed.as_ref(),
                "created",
            )
        });
        self.store
            .finish_step(
                ctx.batch.id,
                s.seq,
                StepUpdate {
                    state,
                    error: Some(message),
                    error_kind: Some(f.kind.as_str().into()),
                    remote_id: f.remote_id.clone(),
                    response_json: f.observed.as_ref().map(ev),
                    ..Default::default()
                },
                ledger,
                None,
            )
            .await
            .map_err(OpError::from)?;
        Ok(None)
    }

    /// The ledger record of a step's object, when its kind is ledgered.
    #[allow(clippy::too_many_arguments)]
    fn ledger_write(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        remote_id: &str,
        request: &str,
        desired: Option<&Value>,
        observed: Option<&Value>,
        role: &str,
    ) -> Option<LedgerWrite> {
        let res = match s.kind {
            StepKind::Group => Resource::Group,
            StepKind::Channel => Resource::Channel,
            StepKind::Account => Resource::Account,
            StepKind::Subscription => Resource::Subscription,
            StepKind::UserKey => Resource::UserKey,
            _ => return None,
        };
        if remote_id.is_empty() {
            return None;
        }
        let role = if s.action == Action::Update {
            "reused"
        } else {
            role
        };
        Some(LedgerWrite::Record(Box::new(LedgerEntry {
            host_id: ctx.batch.host_id,
            kind: res.as_str().into(),
            remote_id: remote_id.into(),
            batch_id: ctx.batch.id,
            pack_id: ctx.plan.pack_id.clone(),
            provider_key: ctx.plan.provider_key.clone(),
            fingerprint: s.fingerprint.clone(),
            marker: s.marker.clone(),
            spec_json: request.into(),
            desired_json: desired
                .map(|d| serde_json::to_string(&res.fields(d)).unwrap_or_default())
                .unwrap_or_else(|| "{}".into()),
            observed_digest: observed.map(|o| res.digest(o)).unwrap_or_default(),
            role: role.into(),
        })))
    }

    /// What recording a success writes: the step, its ledger row and the
    /// probe-user key it produced.
    fn finish_write(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        o: &Outcome,
    ) -> (StepUpdate, Option<LedgerWrite>, Option<AccessWrite>) {
        let ledger = self.ledger_write(
            ctx,
            s,
            &o.remote_id,
            &o.request,
            o.desired.as_ref(),
            o.observed.as_ref(),
            if o.role.is_empty() { "created" } else { o.role },
        );
        let u = StepUpdate {
            state: Some(StepState::Done),
            request_json: (!o.request.is_empty()).then(|| o.request.clone()),
            response_json: Some(o.response.clone()),
            remote_id: (!o.remote_id.is_empty()).then(|| o.remote_id.clone()),
            error: Some(String::new()),
            error_kind: Some(String::new()),
        };
        (u, ledger, o.access.clone())
    }

    /// Records a success, in one transaction (see `finish_write`).
    async fn finish(&self, ctx: &Ctx, s: &StepRow, o: &Outcome) -> Result<(), ApplyError> {
        let (u, ledger, access) = self.finish_write(ctx, s, o);
        self.store
            .finish_step(ctx.batch.id, s.seq, u, ledger, access)
            .await
            .map_err(OpError::from)?;
        Ok(())
    }

    /// Finds the object a `sent` step may have created, as the outcome of
    /// adopting it (with the probe-user key to store, for a key step).
    async fn lookup(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        group_id: Option<i64>,
    ) -> Result<Option<(String, Outcome)>, HostError> {
        let Some(k) = super::kinds::managed(s.kind) else {
            return Ok(None);
        };
        let gid = group_id.unwrap_or(0);
        Ok(k.find(self, ctx, s, gid).await?.map(|w| {
            let id = w.id.to_string();
            let o = Outcome {
                remote_id: id.clone(),
                response: "adopted: the last attempt's answer was lost; found on the host".into(),
                desired: k.desired(self, ctx, s, gid).ok(),
                observed: w.observed,
                access: w.access,
                role: "created",
                ..Default::default()
            };
            (id, o)
        }))
    }

    /// Writes a managed object: the body the plan wants, the call, the
    /// read-back and its check, the same for every kind.
    async fn write_managed(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        k: &dyn super::kinds::Managed,
        gid: i64,
    ) -> Result<Outcome, StepFail> {
        let body = k.desired(self, ctx, s, gid)?;
        let w = k.write(self, ctx, s, &body).await?;
        if k.resource() == Resource::Group && !w.unmanaged {
            if let Some(tx) = ctx.group_written.lock().expect("lock").take() {
                let _ = tx.send(w.id);
            }
        }
        if w.unmanaged {
            return Ok(Outcome {
                request: ev(&body),
                response: w.note.unwrap_or_default(),
                ..Default::default()
            });
        }
        let back = match w.observed {
            Some(v) => v,
            None => {
                let owner = match k.resource() {
                    Resource::UserKey | Resource::Subscription => {
                        Some(super::kinds::owner(ctx).await.map_err(|e| {
                            StepFail::read_back(w.id, format!("read-back: {e}"), &body, None)
                        })?)
                    }
                    _ => None,
                };
                k.resource()
                    .observe(&ctx.client, &w.id.to_string(), owner)
                    .await
                    .map_err(|e| StepFail::read_back(w.id, format!("read-back: {e}"), &body, None))?
                    .ok_or_else(|| {
                        StepFail::read_back(
                            w.id,
                            format!(
                                "read-back: {} {} is not on the host",
                                k.resource().as_str(),
                                w.id
                            ),
                            &body,
                            None,
                        )
                    })?
            }
        };
        k.verify(ctx, w.id, &body, &back)?;
        Ok(Outcome {
            remote_id: w.id.to_string(),
            request: ev(&body),
            response: w.note.unwrap_or_else(|| ev(&back)),
            desired: Some(body),
            observed: Some(back),
            access: w.access,
            role: "created",
        })
    }

    /// Makes the call of a step. `Err` says why, typed.
    async fn execute(
        &self,
        ctx: &Ctx,
        s: &StepRow,
        group_id: Option<i64>,
    ) -> Result<Outcome, StepFail> {
        let c = &ctx.client;
        let plan = &ctx.plan;
        let provider = ctx
            .pack
            .providers
            .get(&plan.provider_key)
            .ok_or("the provider left the pack")?;
        let gid = group_id.unwrap_or(0);
        let e = StepFail::host;
        if let Some(k) = super::kinds::managed(s.kind) {
            return self.write_managed(ctx, s, k, gid).await;
        }
        match s.kind {
            StepKind::Balance => {
                let uid = super::kinds::user_id(ctx).await.map_err(e)?;
                let u = c
                    .admin_get(&format!("/api/v1/admin/users/{uid}"))
                    .await
                    .map_err(e)?;
                let have = u.get("balance").and_then(Value::as_f64).unwrap_or(0.0);
                let want = provider.access.balance_usd;
                if have >= want {
                    return Ok(Outcome {
                        response: format!("balance ${have:.2} ≥ ${want:.2}: nothing to add"),
                        ..Default::default()
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
                    request: ev(&body),
                    response: ev(&v),
                    ..Default::default()
                })
            }
            StepKind::AccountTest => {
                let fp = s.fingerprint.clone().unwrap_or_default();
                let known = ctx.account_ids.lock().expect("lock").get(&fp).cloned();
                let account = match known {
                    Some(id) => Some(id),
                    None => self
                        .store
                        .account_remote_id(ctx.batch.id, &fp)
                        .await
                        .map_err(|err| StepFail::from(err.to_string()))?,
                }
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
                        ..Default::default()
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
                        response: format!("advisory: upstream rate limit during the test: {msg}"),
                        ..Default::default()
                    });
                }
                Err(StepFail::new(
                    StepErrorKind::Check,
                    format!("account test failed: {msg}"),
                ))
            }
            StepKind::Remove | StepKind::Pause => {
                Err("not an apply step: rollback and pause runs execute it".into())
            }
            // Written by `write_managed` above.
            StepKind::Group
            | StepKind::Channel
            | StepKind::Account
            | StepKind::UserKey
            | StepKind::Subscription => Err("a managed object without its implementation".into()),
            StepKind::Readiness => {
                let (_, sealed, _) = self
                    .store
                    .access_key(ctx.batch.host_id, &plan.group_name)
                    .await
                    .map_err(|err| StepFail::from(err.to_string()))?
                    .ok_or("no probe-user key for this group")?;
                let key = self
                    .cipher
                    .open(
                        &sealed,
                        &super::aad::access_key(ctx.batch.host_id, &plan.group_name),
                    )
                    .map_err(|err| StepFail::from(err.to_string()))?;
                // v0.2.x may leave exact allowlist entries out of the
                // listing (upstream issue #7517): the completion decides.
                let allowlist_host =
                    plan.shape.allowlist_field.as_deref() == Some("model_allowlist");
                // Say what it waits for while it waits (the page shows it;
                // the answer replaces it when the check settles), as a
                // message with its code: pages write it in the reader's
                // language.
                let store = &self.store;
                let p = super::readiness::prove(
                    c,
                    &key,
                    &plan.smoke_model,
                    allowlist_host,
                    ctx.opts.models_cache_wait,
                    |note| async move {
                        let note = serde_json::to_string(&note).unwrap_or_default();
                        if let Err(e) = store
                            .update_step(
                                ctx.batch.id,
                                s.seq,
                                StepUpdate {
                                    response_json: Some(note),
                                    ..Default::default()
                                },
                            )
                            .await
                        {
                            tracing::warn!(error = %e, "could not record the readiness wait");
                        }
                    },
                )
                .await
                .map_err(|n| StepFail::new(StepErrorKind::Check, n.message().to_string()))?;
                Ok(Outcome {
                    remote_id: String::new(),
                    request: ev(
                        &json!({"models": "GET /v1/models", "chat": p.chat_request, "authorization": format!("Bearer {}", key.expose())}),
                    ),
                    response: ev(
                        &json!({"models": p.models, "smoke_model_listed": p.listed, "listings": p.listings, "waited_ms": p.waited_ms, "chat": p.chat}),
                    ),
                    ..Default::default()
                })
            }
        }
    }
}

/// Whether a failed step may be sent again: only when nothing of it
/// exists on the host (a definite refusal, a local problem, a check).
/// One account of a batch create, as the journal should record it: the
/// host's result for it, then its read-back (`Err`: why it failed).
fn settled(
    ctx: &Ctx,
    s: &StepRow,
    body: &Value,
    results: &[Value],
    back: &Result<HashMap<String, Value>, HostError>,
) -> Result<Outcome, StepFail> {
    let name = body["name"].as_str().unwrap_or_default();
    let result = results
        .iter()
        .find(|r| r.get("name").and_then(Value::as_str) == Some(name));
    let ok = result.is_some_and(|r| r.get("success").and_then(Value::as_bool) == Some(true));
    if !ok {
        let why = result
            .and_then(|r| r.get("error"))
            .map(|e| e.to_string())
            .unwrap_or_else(|| "the host's batch answer does not list this account".into());
        return Err(StepFail::new(
            StepErrorKind::Rejected,
            format!("batch create: {why}"),
        ));
    }
    // The host said it created it: if it cannot be read back yet, it stays
    // `sent` and the next run finds it by its marker.
    let item = match back {
        Ok(b) => b.get(&s.marker),
        Err(_) => None,
    };
    let Some(item) = item else {
        let why = match back {
            Ok(_) => "read-back: created, but not listed on the host yet".to_string(),
            Err(e) => format!("read-back: created, but the listing failed: {e}"),
        };
        return Err(StepFail::new(StepErrorKind::MaybeSent, why));
    };
    let Some(id) = item.get("id").and_then(Value::as_i64) else {
        return Err(StepFail::new(
            StepErrorKind::MaybeSent,
            "read-back: the listing shows the account without an id",
        ));
    };
    super::kinds::check_account(ctx, id, body, item)?;
    Ok(Outcome {
        remote_id: id.to_string(),
        request: ev(body),
        response: ev(item),
        desired: Some(body.clone()),
        observed: Some(item.clone()),
        role: "created",
        ..Default::default()
    })
}

fn resendable(s: &StepRow) -> bool {
    s.remote_id.is_none() && StepErrorKind::parse(&s.error_kind) != Some(StepErrorKind::ReadBack)
}

/// The step of `steps` a simulated crash stops at (tests).
fn crash_in(ctx: &Ctx, steps: &[StepRow], point: CrashPoint) -> Option<i64> {
    steps
        .iter()
        .find(|s| ctx.opts.crash_at == Some((s.seq, point)))
        .map(|s| s.seq)
}
