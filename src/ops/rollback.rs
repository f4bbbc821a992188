//! Rollback: the reverse of a batch, planned from the ledger and executed
//! through the same journal as the apply (a `rollback` run). And the
//! narrower pause: take the accounts whose keys failed out of scheduling.
//!
//! What is removed and in which order comes from [`Resource`]; what is kept
//! and why is decided here: objects another live batch still uses, objects
//! changed on the host since apply (unless forced), and never anything that
//! is not in the ledger.

use super::resource::{diff, Fields, Resource};
use super::{Core, OpError};
use crate::host::{HostClient, HostError, LoginOutcome};
use crate::model::{
    Action, BatchStatus, FieldError, RollbackItem, RollbackPreview, Said, StepErrorKind, StepKind,
    StepState,
};
use crate::secrets::Secret;
use crate::store::{AccessWrite, LedgerRow, LedgerWrite, StepRow, StepUpdate};
use serde_json::{json, Value};

/// Objects removed at once within one kind.
const REMOVE_CONCURRENCY: usize = 8;

/// Everything a rollback or pause step needs.
pub(super) struct RunCtx {
    batch_id: i64,
    host_id: i64,
    group_name: String,
    client: HostClient,
    user_jwt: Option<Secret>,
}

impl Core {
    /// What a rollback of the batch would do now, observed on the host. It
    /// writes nothing.
    pub async fn rollback_preview(
        &self,
        batch_id: i64,
        force: bool,
    ) -> Result<RollbackPreview, OpError> {
        let batch = self.batch_view(batch_id).await?;
        match batch.status {
            BatchStatus::Planned | BatchStatus::Discarded => {
                return Err(FieldError::coded("batch", "rollback.never_applied", &[]).into())
            }
            BatchStatus::Running | BatchStatus::RollingBack => {
                return Err(OpError::Conflict(FieldError::coded(
                    "batch",
                    "rollback.running",
                    &[],
                )))
            }
            BatchStatus::RolledBack => {
                return Err(OpError::Conflict(FieldError::coded(
                    "batch",
                    "rollback.done",
                    &[],
                )))
            }
            _ => {}
        }
        let host = self.host_row(batch.host_id).await?;
        let (client, secrets) = self.host_client(&host)?;
        let masked: std::collections::HashMap<String, String> = self
            .store
            .batch_keys(batch_id)
            .await?
            .into_iter()
            .map(|(fp, _, m)| (fp, m))
            .collect();
        let mut rows: Vec<LedgerRow> = self
            .store
            .ledger_for_batch(batch_id)
            .await?
            .into_iter()
            .filter(|r| r.status == "active")
            .collect();
        rows.sort_by_key(|r| {
            (
                Resource::parse(&r.kind).map_or(9, Resource::removal_rank),
                r.id,
            )
        });
        // What the host shows, from its listings (not one read per object).
        let probe_email = secrets.probe_user.as_ref().map(|(e, _)| e.as_str());
        let view = super::drift::observe_host(&client, probe_email, &rows)
            .await
            .map_err(host_err)?;
        let shown = view.index();
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let Some(res) = Resource::parse(&r.kind) else {
                continue;
            };
            let target = match (&r.fingerprint, res) {
                (Some(fp), Resource::Account) => format!(
                    "account {} (#{})",
                    masked.get(fp).cloned().unwrap_or_else(|| "key".into()),
                    r.remote_id
                ),
                (_, Resource::UserKey) => {
                    format!(
                        "probe user key rm-{} (#{})",
                        batch.plan.group_name, r.remote_id
                    )
                }
                (_, Resource::Subscription) => {
                    format!("probe user subscription (#{})", r.remote_id)
                }
                _ => format!(
                    "{} {} (#{})",
                    res.as_str(),
                    batch.plan.group_name,
                    r.remote_id
                ),
            };
            let mut item = RollbackItem {
                ledger_id: r.id,
                kind: r.kind.clone(),
                remote_id: r.remote_id.clone(),
                target,
                decision: "remove".into(),
                reason: String::new(),
                said: None,
                changed: Vec::new(),
            };
            if !r.other_live_batches.is_empty() {
                item.decision = "keep".into();
                let batches = r
                    .other_live_batches
                    .iter()
                    .map(|(id, _)| format!("#{id}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                item.say(Said::new("undo.shared", &[("batches", &batches)]));
                items.push(item);
                continue;
            }
            match shown.get(&(res, r.remote_id.clone())).copied() {
                None => {
                    item.decision = "gone".into();
                    item.say(Said::new("undo.gone", &[]));
                }
                Some(seen) => {
                    let desired: Fields = serde_json::from_str(&r.desired_json).unwrap_or_default();
                    let changed = if desired.is_empty() {
                        Vec::new()
                    } else {
                        diff(&desired, &res.fields(seen))
                    };
                    if changed.is_empty() {
                        item.say(Said::new("undo.as_applied", &[]));
                    } else if force {
                        item.say(Said::new("undo.forced", &[]));
                    } else {
                        item.decision = "keep".into();
                        item.say(Said::new("undo.changed", &[]));
                    }
                    item.changed = changed;
                }
            }
            items.push(item);
        }
        let mut irreversible = Vec::new();
        for s in batch.steps.iter().filter(|s| {
            s.kind == StepKind::Balance && s.state == StepState::Done && !s.request.is_empty()
        }) {
            let amount = serde_json::from_str::<Value>(&s.request)
                .ok()
                .and_then(|v| v.get("balance").and_then(Value::as_f64))
                .unwrap_or(0.0);
            irreversible.push(Said::new(
                "undo.top_up",
                &[("amount", &format!("{amount:.2}")), ("step", &s.seq)],
            ));
        }
        irreversible.push(Said::new("undo.usage", &[]));
        Ok(RollbackPreview {
            batch_id,
            items,
            irreversible: irreversible.iter().map(Said::english).collect(),
            irreversible_said: irreversible,
            observed_at_ms: crate::store::now_ms(),
        })
    }

    /// Rolls the batch back here and now (or resumes an interrupted
    /// rollback) and returns its final status.
    pub async fn rollback_batch(
        &self,
        actor: &str,
        batch_id: i64,
        force: bool,
    ) -> Result<BatchStatus, OpError> {
        let run_id = self.claim_rollback(actor, batch_id, force).await?;
        self.rollback_claimed(actor, batch_id, run_id).await
    }

    /// Claims the rollback and runs it in the background.
    pub async fn start_rollback(
        &self,
        actor: &str,
        batch_id: i64,
        force: bool,
    ) -> Result<tokio::task::JoinHandle<()>, OpError> {
        let run_id = self.claim_rollback(actor, batch_id, force).await?;
        let (core, actor) = (self.clone(), actor.to_string());
        Ok(tokio::spawn(async move {
            if let Err(e) = core.rollback_claimed(&actor, batch_id, run_id).await {
                tracing::error!(batch_id, error = %e, "rollback stopped");
            }
        }))
    }

    /// Reuses an unfinished rollback run (resume), else plans a new one from
    /// the preview; takes its lease and marks the batch rolling back.
    async fn claim_rollback(
        &self,
        actor: &str,
        batch_id: i64,
        force: bool,
    ) -> Result<i64, OpError> {
        let runs = self.store.runs(batch_id).await?;
        if runs
            .iter()
            .any(|r| r.kind == "apply" && r.status == "running" && r.lease_owner.is_some())
        {
            return Err(OpError::Conflict(FieldError::coded(
                "batch",
                "rollback.applying",
                &[],
            )));
        }
        let unfinished = runs
            .iter()
            .rev()
            .find(|r| r.kind == "rollback" && r.status != "done")
            .map(|r| r.id);
        // Four eyes on a protected host, for a new rollback (resuming an
        // interrupted one was approved when it started).
        if unfinished.is_none() {
            self.require_four_eyes(actor, batch_id, "rollback").await?;
        }
        let run_id = match unfinished {
            Some(id) => id,
            None => {
                let preview = self.rollback_preview(batch_id, force).await?;
                let steps: Vec<StepRow> = preview
                    .items
                    .iter()
                    .map(|i| {
                        let keep = i.decision == "keep";
                        let mut s = StepRow::pending(
                            StepKind::Remove,
                            if keep { Action::Keep } else { Action::Delete },
                            i.target.clone(),
                            format!("ledger:{}:{}", i.ledger_id, i.kind),
                            Some(i.remote_id.clone()),
                        );
                        if keep {
                            s.state = StepState::Skipped;
                            s.error = i.reason.clone();
                        }
                        s
                    })
                    .collect();
                self.store
                    .insert_run(
                        batch_id,
                        "rollback",
                        actor,
                        &json!({"force": force}).to_string(),
                        &steps,
                    )
                    .await?
            }
        };
        self.claim(run_id, "rolled back").await?;
        self.store
            .set_batch_status(batch_id, BatchStatus::RollingBack.as_str(), None)
            .await?;
        Ok(run_id)
    }

    async fn rollback_claimed(
        &self,
        actor: &str,
        batch_id: i64,
        run_id: i64,
    ) -> Result<BatchStatus, OpError> {
        let out = self
            .with_lease(run_id, self.run_removals(batch_id, run_id), |r| {
                Some(match r {
                    Ok(BatchStatus::RolledBack) => "done",
                    _ => "failed",
                })
            })
            .await?;
        let status = match &out {
            Ok(s) => *s,
            Err(_) => BatchStatus::RollbackFailed,
        };
        self.store
            .set_batch_status(
                batch_id,
                status.as_str(),
                Some(match status {
                    BatchStatus::RolledBack => "none",
                    _ => "broken",
                }),
            )
            .await?;
        self.store
            .audit(
                actor,
                "batch.rollback",
                &crate::model::batch_target(batch_id),
                status.as_str(),
                &format!("run {run_id}"),
            )
            .await?;
        out
    }

    pub(super) async fn run_ctx(&self, batch_id: i64) -> Result<RunCtx, OpError> {
        let batch = self.batch_view(batch_id).await?;
        let host = self.host_row(batch.host_id).await?;
        let (client, secrets) = self.host_client(&host)?;
        let user_jwt = match &secrets.probe_user {
            Some((email, password)) => match client.login(email, password).await {
                Ok(LoginOutcome::Token(t)) => Some(t),
                _ => None,
            },
            None => None,
        };
        Ok(RunCtx {
            batch_id,
            host_id: batch.host_id,
            group_name: batch.plan.group_name,
            client,
            user_jwt,
        })
    }

    /// Executes a rollback run's steps kind by kind, in order.
    async fn run_removals(&self, batch_id: i64, run_id: i64) -> Result<BatchStatus, OpError> {
        let ctx = self.run_ctx(batch_id).await?;
        let steps = self.store.run_steps(run_id).await?;
        let mut ok = true;
        let mut rank_of = |s: &StepRow| {
            s.marker
                .rsplit(':')
                .next()
                .and_then(Resource::parse)
                .map_or(9, Resource::removal_rank)
        };
        let mut ranks: Vec<u8> = steps.iter().map(&mut rank_of).collect();
        ranks.sort_unstable();
        ranks.dedup();
        let permits = tokio::sync::Semaphore::new(REMOVE_CONCURRENCY);
        for rank in ranks {
            let mut pending = Vec::new();
            for s in steps.iter().filter(|s| rank_of(s) == rank) {
                pending.push(self.removal_limited(&permits, &ctx, s));
            }
            for r in futures_util::future::join_all(pending).await {
                ok &= r?;
            }
            // Never delete a group while something still points at it.
            if !ok {
                break;
            }
        }
        Ok(if ok {
            BatchStatus::RolledBack
        } else {
            BatchStatus::RollbackFailed
        })
    }

    async fn removal_limited(
        &self,
        permits: &tokio::sync::Semaphore,
        ctx: &RunCtx,
        s: &StepRow,
    ) -> Result<bool, OpError> {
        let _p = permits.acquire().await.expect("never closed");
        self.removal(ctx, s).await
    }

    /// One removal through the journal: `sent` is resolved by observing
    /// the object (gone means done), and removing is idempotent.
    pub(super) async fn removal(&self, ctx: &RunCtx, s: &StepRow) -> Result<bool, OpError> {
        let cur = self
            .store
            .step(ctx.batch_id, s.seq)
            .await?
            .unwrap_or_else(|| s.clone());
        if matches!(cur.state, StepState::Done | StepState::Skipped) {
            return Ok(true);
        }
        let Some((ledger_id, res)) = parse_marker(&cur.marker) else {
            return Err(OpError::Store(crate::store::StoreError::Corrupt(format!(
                "rollback step {} has no ledger reference",
                cur.seq
            ))));
        };
        let remote_id = cur.remote_id.clone().unwrap_or_default();
        self.store.mark_sent(ctx.batch_id, &[cur.seq], None).await?;
        let result = res
            .remove(&ctx.client, &remote_id, ctx.user_jwt.as_ref())
            .await;
        match result {
            Ok(what) => {
                let gone = what.contains("already gone");
                let access = (res == Resource::UserKey).then(|| AccessWrite::Delete {
                    host_id: ctx.host_id,
                    group: ctx.group_name.clone(),
                });
                self.store
                    .finish_step(
                        ctx.batch_id,
                        cur.seq,
                        StepUpdate {
                            state: Some(StepState::Done),
                            response_json: Some(what),
                            error: Some(String::new()),
                            error_kind: Some(String::new()),
                            ..Default::default()
                        },
                        Some(LedgerWrite::Status {
                            ledger_id,
                            status: if gone { "gone" } else { "rolled_back" }.into(),
                        }),
                        access,
                    )
                    .await?;
                Ok(true)
            }
            Err(e) => {
                let f = super::apply::StepFail::host(e);
                let maybe = f.kind == StepErrorKind::MaybeSent;
                self.store
                    .update_step(
                        ctx.batch_id,
                        cur.seq,
                        StepUpdate {
                            state: (!maybe).then_some(StepState::Failed),
                            error: Some(if maybe {
                                format!("{}; it stays sent and is checked on the host when the rollback is run again", f.message)
                            } else {
                                f.message
                            }),
                            error_kind: Some(f.kind.as_str().into()),
                            ..Default::default()
                        },
                    )
                    .await?;
                Ok(false)
            }
        }
    }

    /// Takes the accounts whose account test failed out of scheduling
    /// (`schedulable=false`), or puts them back, through a `pause` run. A
    /// quota-exhausted account otherwise stays schedulable on a real host
    /// and keeps taking traffic (reference §12.3). Returns how many.
    pub async fn set_failed_accounts_schedulable(
        &self,
        actor: &str,
        batch_id: i64,
        schedulable: bool,
    ) -> Result<usize, OpError> {
        let (batch, live) = self.failed_live_accounts(batch_id).await?;
        let what = if schedulable { "resume" } else { "pause" };
        let steps = account_steps(&live, StepKind::Pause, Action::Update, what);
        let run_id = self
            .store
            .insert_run(
                batch_id,
                "pause",
                actor,
                &json!({"schedulable": schedulable}).to_string(),
                &steps,
            )
            .await?;
        self.claim(run_id, "paused").await?;
        let ctx = self.run_ctx(batch_id).await?;
        let n = self
            .with_lease(
                run_id,
                async {
                    let mut n = 0;
                    for s in self.store.run_steps(run_id).await? {
                        let id = s.remote_id.clone().unwrap_or_default();
                        self.store.mark_sent(batch_id, &[s.seq], None).await?;
                        let body = json!({"schedulable": schedulable});
                        let r = ctx
                            .client
                            .admin(
                                "POST",
                                &format!("/api/v1/admin/accounts/{id}/schedulable"),
                                Some(&body),
                                None,
                            )
                            .await;
                        let u = match r {
                            Ok(v) => {
                                n += 1;
                                StepUpdate {
                                    state: Some(StepState::Done),
                                    request_json: Some(body.to_string()),
                                    response_json: Some(format!(
                                        "schedulable={}",
                                        v.get("schedulable").unwrap_or(&json!(schedulable))
                                    )),
                                    ..Default::default()
                                }
                            }
                            Err(e) => StepUpdate {
                                state: Some(StepState::Failed),
                                error: Some(e.to_string()),
                                error_kind: Some(
                                    super::apply::StepFail::host(e).kind.as_str().into(),
                                ),
                                ..Default::default()
                            },
                        };
                        self.store.update_step(batch_id, s.seq, u).await?;
                    }
                    Ok::<usize, OpError>(n)
                },
                |r| Some(if r.is_ok() { "done" } else { "failed" }),
            )
            .await??;
        self.store
            .audit(
                actor,
                if schedulable {
                    "batch.resume_failed"
                } else {
                    "batch.pause_failed"
                },
                &crate::model::batch_target(batch.id),
                "ok",
                &format!("{n} of {} accounts", live.len()),
            )
            .await?;
        Ok(n)
    }
}

impl Core {
    /// The batch and its live accounts whose account test failed.
    async fn failed_live_accounts(
        &self,
        batch_id: i64,
    ) -> Result<(crate::model::BatchView, Vec<LedgerRow>), OpError> {
        let batch = self.batch_view(batch_id).await?;
        if matches!(
            batch.status,
            BatchStatus::Planned
                | BatchStatus::Discarded
                | BatchStatus::Running
                | BatchStatus::RollingBack
                | BatchStatus::RolledBack
        ) {
            return Err(OpError::Conflict(FieldError::coded(
                "batch",
                "failed.status",
                &[("status", &batch.status.as_str())],
            )));
        }
        // Keys whose account test failed, by fingerprint.
        let failed: std::collections::HashSet<String> = self
            .store
            .steps(batch_id)
            .await?
            .into_iter()
            .filter(|s| s.kind == StepKind::AccountTest && s.state == StepState::Failed)
            .filter_map(|s| s.fingerprint)
            .collect();
        let live: Vec<LedgerRow> = self
            .store
            .ledger_for_batch(batch_id)
            .await?
            .into_iter()
            .filter(|r| {
                r.kind == "account"
                    && r.status == "active"
                    && r.fingerprint.as_ref().is_some_and(|fp| failed.contains(fp))
            })
            .collect();
        if live.is_empty() {
            return Err(FieldError::coded("batch", "failed.none", &[]).into());
        }
        Ok((batch, live))
    }

    /// Deletes the accounts whose account test failed (a `repair` run
    /// through the same journal as a rollback); the rest of the batch stays.
    /// Returns how many were removed.
    pub async fn remove_failed_accounts(
        &self,
        actor: &str,
        batch_id: i64,
    ) -> Result<usize, OpError> {
        let (batch, live) = self.failed_live_accounts(batch_id).await?;
        let steps = account_steps(&live, StepKind::Remove, Action::Delete, "remove failed");
        let run_id = self
            .store
            .insert_run(
                batch_id,
                "repair",
                actor,
                "{\"remove\":\"failed accounts\"}",
                &steps,
            )
            .await?;
        self.claim(run_id, "repaired").await?;
        let ctx = self.run_ctx(batch_id).await?;
        let removed = self
            .with_lease(
                run_id,
                async {
                    let mut n = 0;
                    for s in self.store.run_steps(run_id).await? {
                        n += usize::from(self.removal(&ctx, &s).await?);
                    }
                    Ok::<usize, OpError>(n)
                },
                |r| {
                    Some(if matches!(r, Ok(n) if *n == live.len()) {
                        "done"
                    } else {
                        "failed"
                    })
                },
            )
            .await??;
        self.store
            .audit(
                actor,
                "batch.remove_failed",
                &crate::model::batch_target(batch.id),
                "ok",
                &format!("{removed} of {} accounts", live.len()),
            )
            .await?;
        Ok(removed)
    }
}

/// One step per ledger account (`<what> account #id`), recorded by its
/// ledger row.
fn account_steps(live: &[LedgerRow], kind: StepKind, action: Action, what: &str) -> Vec<StepRow> {
    live.iter()
        .map(|r| {
            let mut s = StepRow::pending(
                kind,
                action,
                format!("{what} account #{}", r.remote_id),
                format!("ledger:{}:account", r.id),
                Some(r.remote_id.clone()),
            );
            s.fingerprint = r.fingerprint.clone();
            s
        })
        .collect()
}

fn parse_marker(m: &str) -> Option<(i64, Resource)> {
    let mut p = m.split(':');
    (p.next()? == "ledger").then_some(())?;
    let id = p.next()?.parse().ok()?;
    Some((id, Resource::parse(p.next()?)?))
}

fn host_err(e: HostError) -> OpError {
    OpError::Host(e.to_string())
}

/// The probe user's id on the host.
pub(crate) async fn user_id(c: &HostClient, email: &str) -> Result<i64, HostError> {
    let v = c
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
