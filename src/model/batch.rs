//! Import batches: the plan, its steps and their evidence.

use super::AccessMode;
use serde::{Deserialize, Serialize};

/// Batch status (names as in the original board).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Planned,
    Running,
    Succeeded,
    PartiallySucceeded,
    Failed,
    RollingBack,
    RolledBack,
    RollbackFailed,
    /// A plan thrown away before it was applied: nothing was written to the
    /// host and its sealed keys are deleted.
    Discarded,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Planned => "planned",
            BatchStatus::Running => "running",
            BatchStatus::Succeeded => "succeeded",
            BatchStatus::PartiallySucceeded => "partially_succeeded",
            BatchStatus::Failed => "failed",
            BatchStatus::RollingBack => "rolling_back",
            BatchStatus::RolledBack => "rolled_back",
            BatchStatus::RollbackFailed => "rollback_failed",
            BatchStatus::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> BatchStatus {
        match s {
            "planned" => BatchStatus::Planned,
            "running" => BatchStatus::Running,
            "succeeded" => BatchStatus::Succeeded,
            "partially_succeeded" => BatchStatus::PartiallySucceeded,
            "rolling_back" => BatchStatus::RollingBack,
            "rolled_back" => BatchStatus::RolledBack,
            "rollback_failed" => BatchStatus::RollbackFailed,
            "discarded" => BatchStatus::Discarded,
            _ => BatchStatus::Failed,
        }
    }
}

/// What the batch list is filtered by (empty: anything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchFilter {
    pub host_id: Option<i64>,
    /// A provider key (`deepseek`).
    pub provider: String,
    /// A batch status (`failed`).
    pub status: String,
    /// Only batches that need someone: running, failed or partly so, a
    /// rollback that failed, or applied and not ready.
    #[serde(default)]
    pub attention: bool,
    /// A review state (`not_reviewed`, `accepted`, `rejected`,
    /// `needs_changes`, `stale`).
    #[serde(default)]
    pub review: String,
}

impl BatchFilter {
    pub fn is_empty(&self) -> bool {
        *self == BatchFilter::default()
    }
}

/// The audit log's name for a batch: `batch:3`, its number on every page
/// (older entries may name it by its uid or as `batch-id:3`).
pub fn batch_target(id: i64) -> String {
    format!("batch:{id}")
}

/// Percent-encodes a value for a URL path segment or query (RFC 3986
/// unreserved characters stay as they are). Shared by the host client and
/// the pages' links.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The audit log's name for a host: `host:1` (names can be edited; older
/// entries name it `host:NAME`).
pub fn host_target(id: i64) -> String {
    format!("host:{id}")
}

/// Access status of a batch's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccessStatus {
    None,
    SelfServiceReady,
    SubscriptionReady,
    FullyReady,
    Degraded,
    Broken,
}

impl AccessStatus {
    /// Proven usable in some mode.
    pub fn is_ready(self) -> bool {
        matches!(
            self,
            AccessStatus::SelfServiceReady
                | AccessStatus::SubscriptionReady
                | AccessStatus::FullyReady
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessStatus::None => "none",
            AccessStatus::SelfServiceReady => "self_service_ready",
            AccessStatus::SubscriptionReady => "subscription_ready",
            AccessStatus::FullyReady => "fully_ready",
            AccessStatus::Degraded => "degraded",
            AccessStatus::Broken => "broken",
        }
    }

    pub fn parse(s: &str) -> AccessStatus {
        match s {
            "self_service_ready" => AccessStatus::SelfServiceReady,
            "subscription_ready" => AccessStatus::SubscriptionReady,
            "fully_ready" => AccessStatus::FullyReady,
            "degraded" => AccessStatus::Degraded,
            "broken" => AccessStatus::Broken,
            _ => AccessStatus::None,
        }
    }
}

/// What a step does on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Group,
    Channel,
    Account,
    Balance,
    Subscription,
    UserKey,
    AccountTest,
    Readiness,
    /// Rollback: remove our object from the host.
    Remove,
    /// Take an account out of scheduling (`schedulable=false`).
    Pause,
}

impl StepKind {
    /// Kinds whose steps grow with a batch's keys: a page of the timeline
    /// carries their evidence only on request, one step at a time.
    pub const PER_KEY: [StepKind; 4] = [
        StepKind::Account,
        StepKind::AccountTest,
        StepKind::Remove,
        StepKind::Pause,
    ];

    pub fn per_key(self) -> bool {
        Self::PER_KEY.contains(&self)
    }

    /// Checks read the host and write nothing on it (the account test may
    /// clear an account's error, as the host does for any test).
    pub fn is_check(self) -> bool {
        matches!(self, StepKind::AccountTest | StepKind::Readiness)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Group => "group",
            StepKind::Channel => "channel",
            StepKind::Account => "account",
            StepKind::Balance => "balance",
            StepKind::Subscription => "subscription",
            StepKind::UserKey => "user_key",
            StepKind::AccountTest => "account_test",
            StepKind::Readiness => "readiness",
            StepKind::Remove => "remove",
            StepKind::Pause => "pause",
        }
    }

    pub fn parse(s: &str) -> Option<StepKind> {
        Some(match s {
            "group" => StepKind::Group,
            "channel" => StepKind::Channel,
            "account" => StepKind::Account,
            "balance" => StepKind::Balance,
            "subscription" => StepKind::Subscription,
            "user_key" => StepKind::UserKey,
            "account_test" => StepKind::AccountTest,
            "readiness" => StepKind::Readiness,
            "remove" => StepKind::Remove,
            "pause" => StepKind::Pause,
            _ => return None,
        })
    }
}

/// Planned action on one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Reuse,
    Update,
    Skip,
    Check,
    Delete,
    Keep,
}

/// One planned step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedStep {
    pub seq: i64,
    pub kind: StepKind,
    pub action: Action,
    /// What it acts on, for people: `group relay-deepseek`, `account sk-…a1b2`.
    pub target: String,
    /// Why this action (e.g. "already on the host, adopted").
    pub reason: String,
    /// The host object id when reused.
    pub remote_id: Option<i64>,
    /// Key fingerprint for account steps.
    pub fingerprint: Option<String>,
}

/// A key that will not be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkippedKey {
    pub masked: String,
    pub line: usize,
    /// In English (evidence, CLI); pages write [`SkippedKey::said`].
    pub reason: String,
    #[serde(default)]
    pub said: Option<super::Said>,
}

impl SkippedKey {
    pub fn new(masked: String, line: usize, said: super::Said) -> SkippedKey {
        SkippedKey {
            masked,
            line,
            reason: said.english(),
            said: Some(said),
        }
    }
}

/// The whole plan, shown before anything is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    pub host_id: i64,
    pub host_name: String,
    pub host_version: Option<String>,
    pub pack_id: String,
    pub pack_hash: String,
    pub provider_key: String,
    pub mode: AccessMode,
    /// `deepseek` (native) or `openai` (base URL + forced chat completions).
    pub platform: String,
    /// In English; pages write [`Plan::strategy`].
    pub strategy_reason: String,
    #[serde(default)]
    pub strategy: Option<super::Said>,
    pub group_name: String,
    pub channel_name: String,
    pub smoke_model: String,
    pub models: Vec<String>,
    /// Prices as sent to the host: (model, input USD/token, output USD/token).
    pub prices: Vec<(String, f64, f64)>,
    pub exchange_rate: Option<f64>,
    /// Every planned step (absent where only the plan's head was read).
    #[serde(default)]
    pub steps: Vec<PlannedStep>,
    pub skipped: Vec<SkippedKey>,
    /// In English; pages write [`Plan::warning_codes`] (the same, in order).
    pub warnings: Vec<String>,
    #[serde(default)]
    pub warning_codes: Vec<super::Said>,
    /// Capabilities the strategy needs and the host lacks: a plan with any
    /// is never applied (nothing is written to the host).
    #[serde(default)]
    pub blockers: Vec<PlanBlocker>,
    /// How the group and the prices are written on this host's version.
    #[serde(default)]
    pub shape: HostShape,
}

/// A capability the plan needs that the host's last probe says it lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanBlocker {
    /// The capability row (`chat_completions_passthrough`, …).
    pub capability: String,
    /// What cannot work, in plain words.
    pub message: String,
    /// What the operator can do about it.
    pub action: String,
    /// `message` as a coded message (`block.lacks`; its `why` parameter is
    /// English, [`PlanBlocker::why`] says it in code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<super::Said>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<super::Said>,
    /// `action` as a coded message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_said: Option<super::Said>,
}

/// Field names and pricing rules that differ between host versions, fixed
/// at plan time from the probe so apply, drift and rollback agree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostShape {
    /// The group is exclusive: only users granted it may bind keys to it.
    #[serde(default)]
    pub is_exclusive: bool,
    /// `models_list_config` (v0.1.132) or `model_allowlist` (v0.2.x, also
    /// enforced on requests); `None` on hosts without a group model list.
    #[serde(default)]
    pub allowlist_field: Option<String>,
    /// The host has group `model_pricing` (v0.1.176), which outranks the
    /// channel's: the group is written with none, so the channel's applies.
    #[serde(default)]
    pub group_pricing: bool,
    /// The host looks channel prices up by the upstream name after account
    /// mapping (v0.2.x): upstream names are priced too.
    #[serde(default)]
    pub price_upstream_names: bool,
}

/// Journal state of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Sent,
    Done,
    Failed,
    Unknown,
    Skipped,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Sent => "sent",
            StepState::Done => "done",
            StepState::Failed => "failed",
            StepState::Unknown => "unknown",
            StepState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> StepState {
        match s {
            "pending" => StepState::Pending,
            "sent" => StepState::Sent,
            "done" => StepState::Done,
            "skipped" => StepState::Skipped,
            "unknown" => StepState::Unknown,
            _ => StepState::Failed,
        }
    }
}

/// Why a step failed, typed, so resume can tell "the host refused" from
/// "the request may have reached the host".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepErrorKind {
    /// The host answered a definite refusal: nothing was written, a later
    /// run may send it again.
    Rejected,
    /// Timeout, dropped connection or 5xx after the request left: the host
    /// may have acted. The step stays `sent` and is looked up first.
    MaybeSent,
    /// The object exists on the host (recorded in the ledger) but does not
    /// read back as wanted. Never created again.
    ReadBack,
    /// The product could not build the request (nothing was sent).
    Local,
    /// A check (account test, readiness) did not pass.
    Check,
}

impl StepErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepErrorKind::Rejected => "rejected",
            StepErrorKind::MaybeSent => "maybe_sent",
            StepErrorKind::ReadBack => "read_back",
            StepErrorKind::Local => "local",
            StepErrorKind::Check => "check",
        }
    }

    pub fn parse(s: &str) -> Option<StepErrorKind> {
        Some(match s {
            "rejected" => StepErrorKind::Rejected,
            "maybe_sent" => StepErrorKind::MaybeSent,
            "read_back" => StepErrorKind::ReadBack,
            "local" => StepErrorKind::Local,
            "check" => StepErrorKind::Check,
            _ => return None,
        })
    }
}

/// What a run of a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Apply,
    Rollback,
    /// Pause (or resume) the accounts whose keys failed.
    Pause,
    /// Change objects to fix a batch (remove failed accounts; drift fixes).
    Repair,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Apply => "apply",
            RunKind::Rollback => "rollback",
            RunKind::Pause => "pause",
            RunKind::Repair => "repair",
        }
    }

    pub fn parse(s: &str) -> Option<RunKind> {
        Some(match s {
            "apply" => RunKind::Apply,
            "rollback" => RunKind::Rollback,
            "pause" => RunKind::Pause,
            "repair" => RunKind::Repair,
            _ => return None,
        })
    }
}

/// A run with its place in the batch's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunView {
    pub id: i64,
    pub kind: RunKind,
    /// `planned`, `running`, `done` or `failed`.
    pub status: String,
    pub actor: String,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// Until when a process holds the run (`None`: nobody does). A running
    /// run whose lease has passed was left by a process that stopped.
    #[serde(default)]
    pub lease_until_ms: Option<i64>,
    /// For a key replacement: the masked old and new keys.
    #[serde(default)]
    pub replaces: Option<(String, String)>,
}

/// An account of a batch that a key replacement can take the place of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplaceCandidate {
    /// The ledger row (what the form names).
    pub ledger_id: i64,
    /// The account's id on the host.
    pub remote_id: String,
    pub masked: String,
    /// Its last account test failed.
    pub failed: bool,
}

/// What the key-replacement page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplaceView {
    pub batch_id: i64,
    pub status: BatchStatus,
    pub host_id: i64,
    pub host_name: String,
    pub provider_key: String,
    /// Why no key can be replaced now (`None`: it can).
    pub refused: Option<super::Said>,
    /// The batch's live accounts whose test failed, then the one asked for.
    pub candidates: Vec<ReplaceCandidate>,
    /// The account asked for (`?account=`), when it is a candidate.
    pub selected: Option<i64>,
    /// Live accounts of the batch, all told.
    pub live_accounts: usize,
}

/// A step as recorded in the journal, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepView {
    pub seq: i64,
    /// The run it belongs to.
    pub run_id: i64,
    /// Typed failure kind, when it failed.
    pub error_kind: Option<StepErrorKind>,
    pub kind: StepKind,
    pub action: Action,
    pub target: String,
    pub state: StepState,
    pub idempotency_key: String,
    pub marker: String,
    /// Redacted request and response.
    pub request: String,
    pub response: String,
    pub remote_id: Option<String>,
    pub error: String,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

/// What became of a batch's own keys (each key once, whatever its steps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct KeyOutcomes {
    /// Its account is on the host and passed its account test.
    pub passed: i64,
    /// Its account could not be created, or its test failed.
    pub failed: i64,
    /// Another batch holds the key; this one created nothing for it.
    pub skipped: i64,
    /// Not tested (yet): the batch has not run, or stopped before.
    pub untested: i64,
    /// Replaced by another key (its account was removed once the new key's
    /// passed its test); no longer one of the batch's own keys.
    #[serde(default)]
    pub replaced: i64,
}

impl KeyOutcomes {
    /// Reads the summary column; an unreadable or empty one counts nothing.
    pub fn parse(json: &str) -> KeyOutcomes {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn total(&self) -> i64 {
        self.passed + self.failed + self.skipped + self.untested + self.replaced
    }

    /// A finished apply's status, from its own keys: the group being
    /// ready (which other batches' accounts may have proven) does not make
    /// a batch whose keys all failed a success.
    pub fn apply_status(&self, ready: bool) -> BatchStatus {
        let own = self.passed + self.failed + self.untested;
        if !ready || (own > 0 && self.passed == 0) {
            BatchStatus::Failed
        } else if self.passed == own {
            BatchStatus::Succeeded
        } else {
            BatchStatus::PartiallySucceeded
        }
    }
}

/// Steps counted by journal state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateCounts {
    pub pending: i64,
    pub sent: i64,
    pub done: i64,
    pub failed: i64,
    pub unknown: i64,
    pub skipped: i64,
}

impl StateCounts {
    pub fn add(&mut self, state: StepState, n: i64) {
        *match state {
            StepState::Pending => &mut self.pending,
            StepState::Sent => &mut self.sent,
            StepState::Done => &mut self.done,
            StepState::Failed => &mut self.failed,
            StepState::Unknown => &mut self.unknown,
            StepState::Skipped => &mut self.skipped,
        } += n;
    }

    pub fn merge(&mut self, o: &StateCounts) {
        self.pending += o.pending;
        self.sent += o.sent;
        self.done += o.done;
        self.failed += o.failed;
        self.unknown += o.unknown;
        self.skipped += o.skipped;
    }

    pub fn total(&self) -> i64 {
        self.pending + self.sent + self.done + self.failed + self.unknown + self.skipped
    }

    /// Done or skipped: nothing left to do for these.
    pub fn finished(&self) -> i64 {
        self.done + self.skipped
    }

    /// Failed, or sent without a known outcome.
    pub fn troubled(&self) -> i64 {
        self.failed + self.unknown
    }
}

/// A run's steps of one kind, counted by state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindCount {
    pub run_id: i64,
    pub kind: StepKind,
    pub counts: StateCounts,
}

/// A batch as the batch list shows it: counts, never its plan or journal,
/// so a row's size does not grow with the batch's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchSummary {
    pub id: i64,
    pub uid: String,
    pub host_id: i64,
    pub host_name: String,
    pub pack_id: String,
    pub provider_key: String,
    pub mode: AccessMode,
    pub status: BatchStatus,
    pub access_status: AccessStatus,
    pub created_by: String,
    pub created_at_ms: i64,
    pub key_count: i64,
    /// What became of its keys.
    pub keys: KeyOutcomes,
    /// Every step of every run.
    pub steps: StateCounts,
    /// Account creations and account tests, every run.
    pub accounts: StateCounts,
    pub tests: StateCounts,
    /// Open drift findings about the batch in its host's newest check
    /// (`None`: the host was never checked).
    pub drift_open: Option<i64>,
    /// Where its reviewers stand (`None`: not a batch one reviews, such as
    /// a planned or rolled-back one never reviewed).
    #[serde(default)]
    pub review: Option<crate::model::ReviewState>,
}

/// One page of the batch list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchList {
    /// What the list was filtered by.
    #[serde(default)]
    pub filter: BatchFilter,
    pub items: Vec<BatchSummary>,
    /// The cursor of the next (older) page, when there is one.
    pub next_before: Option<i64>,
    /// The cursor this page was read with.
    pub before: Option<i64>,
}

/// The part of a batch's journal a page shows: `limit` steps after seq
/// `after`, of one state when `state` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepWindow {
    pub after: i64,
    pub state: Option<StepState>,
    pub limit: u32,
    /// The cursor of the next page, when there is one.
    pub next_after: Option<i64>,
}

/// What changed in a running batch since a refresh (live progress).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchProgress {
    pub status: BatchStatus,
    pub access_status: AccessStatus,
    pub steps: StateCounts,
    /// Steps whose state changed after `since`, newest first (at most 20),
    /// without their evidence.
    pub changed: Vec<StepView>,
    /// Pass this as `since` next time.
    pub at_ms: i64,
    /// What the readiness check is waiting for, while it waits.
    #[serde(default)]
    pub waiting: Option<String>,
}

/// A batch as lists and its page show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchView {
    pub id: i64,
    pub uid: String,
    pub host_id: i64,
    pub host_name: String,
    pub pack_id: String,
    pub provider_key: String,
    pub mode: AccessMode,
    pub status: BatchStatus,
    pub access_status: AccessStatus,
    pub host_version: Option<String>,
    pub product_version: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub key_count: i64,
    /// What became of its keys.
    #[serde(default)]
    pub keys: KeyOutcomes,
    pub plan: Plan,
    /// Every run, oldest first; the steps say which run they belong to.
    pub runs: Vec<RunView>,
    /// Accounts whose test failed that are still on the host (what pause
    /// and remove act on).
    pub failed_live_accounts: i64,
    /// Of those, how many the newest pause left unschedulable (what resume
    /// acts on).
    #[serde(default)]
    pub failed_paused_accounts: i64,
    /// Open drift findings about this batch's objects in its host's newest
    /// check (`None`: the host was never checked). Lists only.
    pub drift_open: Option<i64>,
    /// Every step, or (on pages, see `window`) one page of them.
    pub steps: Vec<StepView>,
    /// The newest diagnosis, when the batch was diagnosed.
    pub diagnosis: Option<DiagnosisReport>,
    /// Steps counted per run and kind (every step, whatever `window` shows).
    #[serde(default)]
    pub counts: Vec<KindCount>,
    /// Set when `steps` is one page of the journal.
    #[serde(default)]
    pub window: Option<StepWindow>,
    /// How many keys the plan skipped (a page lists only the first ones).
    #[serde(default)]
    pub skipped_total: usize,
    /// On pages: the diagnosis grouped by class (see [`group_diagnosis`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis_groups: Vec<DiagnosisGroup>,
}

impl BatchView {
    /// Every step's counts, all runs and kinds together.
    pub fn step_totals(&self) -> StateCounts {
        let mut t = StateCounts::default();
        for k in &self.counts {
            t.merge(&k.counts);
        }
        t
    }

    /// Counts of one kind, all runs together.
    pub fn kind_totals(&self, kind: StepKind) -> StateCounts {
        let mut t = StateCounts::default();
        for k in self.counts.iter().filter(|k| k.kind == kind) {
            t.merge(&k.counts);
        }
        t
    }
}

/// Why a check failed, in the product's words (PRODUCT.md item 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    UpstreamQuotaExhausted,
    UpstreamKeyInvalid,
    UpstreamRateLimited,
    UpstreamModelUnknown,
    /// Not in the original list: the provider's moderation rejected the
    /// smoke request. Without it such an answer would be misread as a host
    /// problem.
    UpstreamContentRejected,
    HostCompatibilityGap,
    HostAuthFailed,
    HostComplianceRequired,
    HostConfigIncomplete,
    NetworkError,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::UpstreamQuotaExhausted => "upstream_quota_exhausted",
            FailureClass::UpstreamKeyInvalid => "upstream_key_invalid",
            FailureClass::UpstreamRateLimited => "upstream_rate_limited",
            FailureClass::UpstreamModelUnknown => "upstream_model_unknown",
            FailureClass::UpstreamContentRejected => "upstream_content_rejected",
            FailureClass::HostCompatibilityGap => "host_compatibility_gap",
            FailureClass::HostAuthFailed => "host_auth_failed",
            FailureClass::HostComplianceRequired => "host_compliance_required",
            FailureClass::HostConfigIncomplete => "host_config_incomplete",
            FailureClass::NetworkError => "network_error",
        }
    }

    pub const ALL: [FailureClass; 10] = [
        FailureClass::UpstreamQuotaExhausted,
        FailureClass::UpstreamKeyInvalid,
        FailureClass::UpstreamRateLimited,
        FailureClass::UpstreamModelUnknown,
        FailureClass::UpstreamContentRejected,
        FailureClass::HostCompatibilityGap,
        FailureClass::HostAuthFailed,
        FailureClass::HostComplianceRequired,
        FailureClass::HostConfigIncomplete,
        FailureClass::NetworkError,
    ];

    pub fn parse(s: &str) -> Option<FailureClass> {
        FailureClass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The failed checks of one class, for a page: how many there are, and a
/// few of them (or, when the page is filtered to the class, one page of
/// them after a cursor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiagnosisGroup {
    pub class: FailureClass,
    pub count: usize,
    /// In journal order.
    pub items: Vec<Diagnosis>,
    /// The seq to page on from, when more of the class follow.
    pub next_after: Option<i64>,
    /// The page shows this class only (`?diag=`), after `after`.
    #[serde(default)]
    pub focused: bool,
    #[serde(default)]
    pub after: i64,
}

/// Groups failed checks by class, in order of first appearance: `shown`
/// items of each, or, for the `focus` class, `page` items after seq
/// `after`.
pub fn group_diagnosis(
    items: &[Diagnosis],
    focus: Option<FailureClass>,
    after: i64,
    shown: usize,
    page: usize,
) -> Vec<DiagnosisGroup> {
    let mut groups: Vec<DiagnosisGroup> = Vec::new();
    for item in items {
        let i = match groups.iter().position(|g| g.class == item.class) {
            Some(i) => i,
            None => {
                let focused = focus == Some(item.class);
                groups.push(DiagnosisGroup {
                    class: item.class,
                    count: 0,
                    items: Vec::new(),
                    next_after: None,
                    focused,
                    after: if focused { after } else { 0 },
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.count += 1;
        let (limit, from) = if g.focused { (page, after) } else { (shown, 0) };
        if item.seq <= from && g.focused {
            continue;
        }
        if g.items.len() < limit {
            g.items.push(item.clone());
        } else if g.next_after.is_none() {
            g.next_after = g.items.last().map(|x| x.seq);
        }
    }
    groups
}

/// One failed check, its class, what decided it, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diagnosis {
    pub seq: i64,
    pub target: String,
    pub class: FailureClass,
    /// The facts that decided the class (redacted).
    pub evidence: Vec<String>,
    pub action: String,
    /// The specifics inside the action (a model, an address, a step's
    /// error), so it can be written in another language around them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// A diagnosis run over a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiagnosisReport {
    pub at_ms: i64,
    pub items: Vec<Diagnosis>,
    /// Minimal completions spent on the upstream (at most one per key).
    pub upstream_completions: u32,
}

/// One object in a rollback preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RollbackItem {
    pub ledger_id: i64,
    /// `user_key`, `subscription`, `channel`, `account` or `group`.
    pub kind: String,
    pub remote_id: String,
    /// For people: `account sk-…a1b2`, `group relay-deepseek`.
    pub target: String,
    /// `remove`, `keep` (shared, or changed and not forced) or `gone`.
    pub decision: String,
    pub reason: String,
    /// `reason` as a coded message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<super::Said>,
    /// Fields changed on the host since apply: (field, applied, now).
    pub changed: Vec<(String, String, String)>,
}

impl RollbackItem {
    /// Sets the reason, in English and as its code.
    pub fn say(&mut self, said: super::Said) {
        self.reason = said.english();
        self.said = Some(said);
    }
}

/// What a rollback would do, in the order it would do it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RollbackPreview {
    pub batch_id: i64,
    pub items: Vec<RollbackItem>,
    /// What no rollback can undo (spent balance, top-ups).
    pub irreversible: Vec<String>,
    /// `irreversible` as coded messages, in the same order.
    #[serde(default)]
    pub irreversible_said: Vec<super::Said>,
    /// Observed at (ms).
    pub observed_at_ms: i64,
}

/// An account the product created or adopted on a host, as its ledger and
/// journal know it (never read from the host: the drift check does that).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostAccount {
    pub ledger_id: i64,
    /// The account's id on the host.
    pub remote_id: String,
    pub batch_id: Option<i64>,
    pub provider_key: String,
    pub fingerprint: Option<String>,
    /// The key, masked (`sk-d…0001`).
    pub masked: Option<String>,
    pub platform: Option<String>,
    /// `active`, `rolled_back` or `gone`.
    pub status: String,
    pub created_at_ms: i64,
    /// The newest account test of its batch for this key: (state, when,
    /// error).
    pub last_test: Option<(StepState, Option<i64>, String)>,
    /// As this product last set it (`None`: never changed since created).
    pub schedulable: Option<(bool, i64)>,
}

/// One page of a host's accounts, newest first; `q` filters by key mask
/// or fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostAccounts {
    pub host_id: i64,
    pub host_name: String,
    pub q: String,
    pub items: Vec<HostAccount>,
    /// The cursor of the next page, when there is one.
    pub next_before: Option<i64>,
    /// Accounts matching `q` on this host (every page).
    pub matched: i64,
    /// Accounts on this host in the ledger.
    pub total: i64,
}

#[cfg(test)]
mod diagnosis_tests {
    use super::*;

    fn item(seq: i64, class: FailureClass) -> Diagnosis {
        Diagnosis {
            seq,
            target: format!("account test {seq}"),
            class,
            evidence: Vec::new(),
            action: String::new(),
            detail: String::new(),
        }
    }

    #[test]
    fn a_diagnosis_groups_by_class_with_counts_and_pages_the_focused_class() {
        use FailureClass::{NetworkError as N, UpstreamQuotaExhausted as Q};
        let items: Vec<_> = (1..=10)
            .map(|s| item(s, if s % 5 == 0 { N } else { Q }))
            .collect();
        let g = group_diagnosis(&items, None, 0, 3, 4);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].class, g[0].count, g[0].items.len()), (Q, 8, 3));
        assert_eq!(g[0].next_after, Some(3));
        assert_eq!((g[1].class, g[1].count, g[1].items.len()), (N, 2, 2));
        assert_eq!(g[1].next_after, None);
        // Focused: a page of 4 after seq 3, the others unchanged.
        let g = group_diagnosis(&items, Some(Q), 3, 3, 4);
        let seqs: Vec<i64> = g[0].items.iter().map(|i| i.seq).collect();
        assert_eq!(seqs, [4, 6, 7, 8]);
        assert_eq!((g[0].count, g[0].next_after), (8, Some(8)));
        let g = group_diagnosis(&items, Some(Q), 8, 3, 4);
        let seqs: Vec<i64> = g[0].items.iter().map(|i| i.seq).collect();
        assert_eq!((seqs, g[0].next_after), (vec![9], None));
    }
}
