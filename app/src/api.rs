//! Server functions that feed the pages. They only read: every change goes
//! through a form POST (see `server::forms`), so pages work without
//! JavaScript. Each checks the session's role before calling the core.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use provisioning_core::model::{AuditPage, HostView, OperatorView, ProbeRecord, ProbeSummary};
use serde::{Deserialize, Serialize};

/// What kind of failure a server function had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not signed in (or the session expired).
    Unauthorized,
    /// Signed in, but the role does not allow it.
    Forbidden,
    NotFound,
    Invalid,
    /// Something failed on the server; details are in its log only.
    Internal,
}

/// The one error type that crosses the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AppError {
            kind,
            message: message.into(),
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::new(ErrorKind::Internal, value.to_string())
    }
}

/// The overview page's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    pub hosts: Vec<HostView>,
    pub recent: Vec<provisioning_core::model::AuditEntry>,
    /// Open drift findings of each host's newest check: (host id, count).
    pub drift: Vec<(i64, i64)>,
    /// Batches that need someone (running, failed, not ready), newest first.
    pub attention: provisioning_core::model::BatchList,
    /// The newest batches.
    pub newest: provisioning_core::model::BatchList,
}

/// The host detail page's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostDetailData {
    pub host: HostView,
    pub latest: Option<ProbeRecord>,
    pub history: Vec<ProbeSummary>,
}

#[server]
pub async fn overview() -> Result<OverviewData, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let hosts = state
        .core
        .list_hosts()
        .await
        .map_err(crate::server::op_error)?;
    let (recent, _) = state
        .core
        .store
        .audit_page(1, 8)
        .await
        .map_err(|e| crate::server::op_error(e.into()))?;
    let drift = state
        .core
        .drift_open_counts()
        .await
        .map_err(crate::server::op_error)?;
    let attention = state
        .core
        .list_batches_where(
            &provisioning_core::model::BatchFilter {
                attention: true,
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .map_err(crate::server::op_error)?;
    let newest = state
        .core
        .list_batches(None, 5)
        .await
        .map_err(crate::server::op_error)?;
    Ok(OverviewData {
        hosts,
        recent,
        drift,
        attention,
        newest,
    })
}

#[server]
pub async fn list_hosts() -> Result<Vec<HostView>, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .list_hosts()
        .await
        .map_err(crate::server::op_error)
}

#[server]
pub async fn host_detail(id: i64) -> Result<HostDetailData, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let core = &state.core;
    let host = core.host_view(id).await.map_err(crate::server::op_error)?;
    let latest = core
        .latest_probe(id)
        .await
        .map_err(crate::server::op_error)?;
    let history = core
        .probe_history(id)
        .await
        .map_err(crate::server::op_error)?;
    Ok(HostDetailData {
        host,
        latest,
        history,
    })
}

/// One page of a host's accounts (`before` is the cursor, `q` a key mask or
/// fingerprint to find).
#[server]
pub async fn host_accounts(
    id: i64,
    q: String,
    before: Option<i64>,
) -> Result<provisioning_core::model::HostAccounts, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .host_accounts(id, &q, before)
        .await
        .map_err(crate::server::op_error)
}

#[server]
pub async fn list_operators() -> Result<Vec<OperatorView>, AppError> {
    let (state, _) =
        crate::server::auth::require(provisioning_core::ops::Operation::OperatorList).await?;
    state
        .core
        .list_operators()
        .await
        .map_err(crate::server::op_error)
}

/// The tokens page's data: every token, and the operators one can be made for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensData {
    pub tokens: Vec<provisioning_core::model::ApiToken>,
    pub operators: Vec<OperatorView>,
    pub now_ms: i64,
}

#[server]
pub async fn list_tokens() -> Result<TokensData, AppError> {
    let (state, me) =
        crate::server::auth::require(provisioning_core::ops::Operation::TokenManage).await?;
    let p = provisioning_core::ops::Principal::operator(me.id, &me.username, me.role);
    let tokens = state
        .core
        .list_tokens(&p)
        .await
        .map_err(crate::server::op_error)?;
    let operators = state
        .core
        .list_operators()
        .await
        .map_err(crate::server::op_error)?
        .into_iter()
        .filter(|o| !o.disabled)
        .collect();
    Ok(TokensData {
        tokens,
        operators,
        now_ms: provisioning_core::store::now_ms(),
    })
}

#[server]
pub async fn audit_log(
    filter: provisioning_core::model::AuditFilter,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    use provisioning_core::store::AuditColumn;
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let slice = state
        .core
        .audit_entries(&filter, before, 50)
        .await
        .map_err(crate::server::op_error)?;
    let store = &state.core.store;
    let db = |e: provisioning_core::store::StoreError| crate::server::op_error(e.into());
    let actors = store.audit_values(AuditColumn::Actor).await.map_err(db)?;
    let actions = store.audit_values(AuditColumn::Action).await.map_err(db)?;
    let outcomes = store.audit_values(AuditColumn::Outcome).await.map_err(db)?;
    let signing_key = state
        .core
        .signing_public_key()
        .await
        .map_err(crate::server::op_error)?;
    Ok(AuditPage {
        entries: slice.entries,
        filter,
        next_before: slice.next_before,
        total: slice.total,
        actors,
        actions,
        outcomes,
        signing_key,
    })
}

/// A pack version with its providers and, optionally, the diff to another.
pub type PackDetailData = provisioning_core::model::PackDetail;

/// What the new-batch form offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchFormData {
    pub hosts: Vec<HostView>,
    /// (pack version id, pack id, provider key, display name, default mode,
    /// the version's number within its pack)
    pub providers: Vec<(i64, String, String, String, String, u32)>,
    /// Demo mode: the fake upstream's keys and what each does.
    #[serde(default)]
    pub demo_keys: Vec<(String, String)>,
}

#[server]
pub async fn list_packs() -> Result<Vec<provisioning_core::model::PackVersionView>, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .pack_versions()
        .await
        .map_err(crate::server::op_error)
}

#[server]
pub async fn pack_detail(id: i64, diff: Option<i64>) -> Result<PackDetailData, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .pack_detail(id, diff)
        .await
        .map_err(crate::server::op_error)
}

#[server]
pub async fn new_batch_options() -> Result<BatchFormData, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let core = &state.core;
    let hosts = core.list_hosts().await.map_err(crate::server::op_error)?;
    let mut providers = Vec::new();
    for v in core
        .pack_versions()
        .await
        .map_err(crate::server::op_error)?
    {
        let (_, pack) = core.pack(v.id).await.map_err(crate::server::op_error)?;
        for (k, p) in &pack.providers {
            providers.push((
                v.id,
                pack.id.clone(),
                k.clone(),
                p.display_name.clone(),
                p.access.mode.as_str().to_string(),
                v.number,
            ));
        }
    }
    Ok(BatchFormData {
        hosts,
        providers,
        demo_keys: state.config.demo_keys.clone(),
    })
}

/// The batch list with what it can be filtered by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchListData {
    pub list: provisioning_core::model::BatchList,
    /// (id, name) of every host.
    pub hosts: Vec<(i64, String)>,
    /// Every provider key some batch was planned for.
    pub providers: Vec<String>,
}

/// One page of the batch list (newest first; `before` is the cursor),
/// filtered.
#[server]
pub async fn list_batches(
    filter: provisioning_core::model::BatchFilter,
    before: Option<i64>,
) -> Result<BatchListData, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let core = &state.core;
    let list = core
        .list_batches_where(&filter, before, 50)
        .await
        .map_err(crate::server::op_error)?;
    let hosts = core
        .list_hosts()
        .await
        .map_err(crate::server::op_error)?
        .into_iter()
        .map(|h| (h.id, h.name))
        .collect();
    let providers = core
        .store
        .batch_providers()
        .await
        .map_err(|e| crate::server::op_error(e.into()))?;
    Ok(BatchListData {
        list,
        hosts,
        providers,
    })
}

/// A batch's page: one page of its journal (`after` is the cursor, `state`
/// a filter by journal state).
#[server]
pub async fn batch_detail(
    id: i64,
    after: i64,
    state: Option<String>,
    diag: Option<String>,
    diag_after: i64,
) -> Result<provisioning_core::model::BatchView, AppError> {
    use provisioning_core::model::StepState;
    let (app, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let state = match state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            ["pending", "sent", "done", "failed", "unknown", "skipped"]
                .contains(&s)
                .then(|| StepState::parse(s))
                .ok_or_else(|| {
                    AppError::new(
                        ErrorKind::Invalid,
                        format!("state: unknown journal state {s:?}"),
                    )
                })?,
        ),
    };
    let diag = match diag.as_deref() {
        None | Some("") => None,
        Some(c) => Some((
            provisioning_core::model::FailureClass::parse(c).ok_or_else(|| {
                AppError::new(
                    ErrorKind::Invalid,
                    format!("diag: unknown failure class {c:?}"),
                )
            })?,
            diag_after,
        )),
    };
    app.core
        .batch_page_diag(id, after, state, diag)
        .await
        .map_err(crate::server::op_error)
}

/// One journal step with its (redacted) request and response.
#[server]
pub async fn batch_step(id: i64, seq: i64) -> Result<provisioning_core::model::StepView, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .batch_step(id, seq)
        .await
        .map_err(crate::server::op_error)
}

/// What changed in a batch since `since_ms` (live progress of a running batch).
#[server]
pub async fn batch_progress(
    id: i64,
    since_ms: i64,
) -> Result<provisioning_core::model::BatchProgress, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .batch_progress(id, since_ms)
        .await
        .map_err(crate::server::op_error)
}

#[server]
pub async fn rollback_preview(
    id: i64,
    force: bool,
) -> Result<provisioning_core::model::RollbackPreview, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .rollback_preview(id, force)
        .await
        .map_err(crate::server::op_error)
}

#[server]
pub async fn host_drift(
    id: i64,
) -> Result<Option<provisioning_core::model::DriftReport>, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .host_view(id)
        .await
        .map_err(crate::server::op_error)?;
    state
        .core
        .latest_drift(id)
        .await
        .map_err(crate::server::op_error)
}

/// The key-replacement page of a batch (`account`: the ledger id asked for).
#[server]
pub async fn replace_view(
    id: i64,
    account: Option<i64>,
) -> Result<provisioning_core::model::ReplaceView, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .replace_view(id, account)
        .await
        .map_err(crate::server::op_error)
}

/// What the batch page says about reviews and four eyes (no journal read).
#[server]
pub async fn batch_reviews(id: i64) -> Result<provisioning_core::model::ReviewPanel, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .review_panel(id)
        .await
        .map_err(crate::server::op_error)
}

/// The review page's data: the panel, the evidence digest now (what a
/// decision or a rollback approval names) and the batch's headline facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewFormData {
    pub panel: provisioning_core::model::ReviewPanel,
    pub digest: String,
    pub batch: provisioning_core::model::BatchSummary,
    /// Smoke checks (account tests and readiness): passed, failed.
    pub checks: (i64, i64),
}

#[server]
pub async fn review_form(id: i64) -> Result<ReviewFormData, AppError> {
    use provisioning_core::model::{BatchFilter, StepKind, StepState};
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let core = &state.core;
    let panel = core
        .review_panel(id)
        .await
        .map_err(crate::server::op_error)?;
    let view = core.batch_view(id).await.map_err(crate::server::op_error)?;
    let digest = provisioning_core::ops::review::evidence_digest(&view);
    let checks = view
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::AccountTest | StepKind::Readiness))
        .fold((0, 0), |(ok, bad), s| match s.state {
            StepState::Done => (ok + 1, bad),
            StepState::Failed | StepState::Unknown => (ok, bad + 1),
            _ => (ok, bad),
        });
    let batch = core
        .list_batches_where(&BatchFilter::default(), Some(id + 1), 1)
        .await
        .map_err(crate::server::op_error)?
        .items
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(|| AppError::new(ErrorKind::NotFound, format!("batch {id} not found")))?;
    Ok(ReviewFormData {
        panel,
        digest,
        batch,
        checks,
    })
}

/// The review queue: finished batches never reviewed, or whose decision
/// went stale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueData {
    pub items: Vec<provisioning_core::model::QueueItem>,
    pub total: i64,
}

#[server]
pub async fn review_queue() -> Result<QueueData, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let (items, total) = state
        .core
        .review_queue(200)
        .await
        .map_err(crate::server::op_error)?;
    Ok(QueueData { items, total })
}

/// What the batch page shows of keeping watch: the newest readiness
/// checks and the key balances (counts, and the rows to show: low ones
/// first, at most [`BALANCE_ROWS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchWatchData {
    pub checks: Vec<provisioning_core::model::CheckView>,
    pub balances: Vec<provisioning_core::model::BalanceView>,
    /// Keys with a reading: (known, unknown, unsupported, low).
    pub balance_counts: (usize, usize, usize, usize),
}

/// Most balance rows a batch page lists.
pub const BALANCE_ROWS: usize = 50;

#[server]
pub async fn batch_watch(id: i64) -> Result<BatchWatchData, AppError> {
    use provisioning_core::model::BalanceState;
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let checks = state
        .core
        .readiness_checks(id, 5)
        .await
        .map_err(crate::server::op_error)?;
    let mut balances = state
        .core
        .balances(id)
        .await
        .map_err(crate::server::op_error)?;
    let count = |s: BalanceState| balances.iter().filter(|b| b.state == s).count();
    let balance_counts = (
        count(BalanceState::Known),
        count(BalanceState::Unknown),
        count(BalanceState::Unsupported),
        balances.iter().filter(|b| b.low).count(),
    );
    balances.sort_by_key(|b| !b.low);
    balances.truncate(BALANCE_ROWS);
    Ok(BatchWatchData {
        checks,
        balances,
        balance_counts,
    })
}

#[server]
pub async fn host_schedule(
    id: i64,
) -> Result<Vec<provisioning_core::model::ScheduleView>, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    state
        .core
        .host_schedule(id, provisioning_core::store::now_ms())
        .await
        .map_err(crate::server::op_error)
}

/// The overview's attention section: open incidents, and the newest
/// resolved ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionData {
    pub open: Vec<provisioning_core::model::IncidentView>,
    pub resolved: Vec<provisioning_core::model::IncidentView>,
    /// Whether this server runs the scheduler (else nothing is watched).
    pub scheduler_on: bool,
}

#[server]
pub async fn attention() -> Result<AttentionData, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let (open, resolved) = state
        .core
        .incidents(5)
        .await
        .map_err(crate::server::op_error)?;
    Ok(AttentionData {
        open,
        resolved,
        scheduler_on: state.config.scheduler_tick_secs.is_some(),
    })
}

/// The webhooks page: where alerts go, and the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhooksData {
    pub webhooks: Vec<provisioning_core::model::WebhookView>,
    pub deliveries: Vec<provisioning_core::model::DeliveryView>,
    /// The cursor of the next (older) page of the log.
    pub older: Option<i64>,
}

#[server]
pub async fn webhooks_page(before: Option<i64>) -> Result<WebhooksData, AppError> {
    let (state, _) = crate::server::auth::require(provisioning_core::ops::Operation::Read).await?;
    let webhooks = state
        .core
        .webhooks()
        .await
        .map_err(crate::server::op_error)?;
    let mut deliveries = state
        .core
        .deliveries(before, 51)
        .await
        .map_err(crate::server::op_error)?;
    let older = (deliveries.len() > 50).then(|| deliveries[49].id);
    deliveries.truncate(50);
    Ok(WebhooksData {
        webhooks,
        deliveries,
        older,
    })
}
