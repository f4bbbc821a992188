//! Replacing one key of an applied batch: the new key's account is created
//! and tested, and only once it passed is the old key's account removed,
//! then readiness is checked again, all through the journal as one `repair`
//! run (`{"replace": …}` in its options). A run that stops is resumed like
//! an apply: `sent` steps are looked up on the host, never blindly resent.

use super::apply::{ApplyError, ApplyOptions};
use super::import::{account_marker, fp_short, read_keys};
use super::{Core, OpError};
use crate::model::{
    AccessMode, AccessStatus, Action, BatchStatus, FieldError, KeyOutcomes, ReplaceCandidate,
    ReplaceView, Said, StepKind, StepState,
};
use crate::store::{BatchRow, RunRow, StepRow, StepUpdate};
use serde_json::{json, Value};

/// What a key replacement ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub run_id: i64,
    /// The new key's account passed its test and the old account was
    /// removed from the host.
    pub swapped: bool,
    pub status: BatchStatus,
}

/// The run's `{"replace": …}` options, when it is a key replacement.
pub fn replacement_of(run: &RunRow) -> Option<Value> {
    (run.kind == "repair")
        .then(|| serde_json::from_str::<Value>(&run.options_json).ok())
        .flatten()
        .and_then(|v| v.get("replace").cloned())
}

impl Core {
    /// Plans the replacement of the account `ledger_id` of batch `batch_id`
    /// by the key in `key_text`: checks everything a person typed, seals
    /// the new key and writes the run and its steps in one transaction.
    /// Nothing is sent to the host. Returns the run id.
    pub async fn plan_replace(
        &self,
        actor: &str,
        batch_id: i64,
        ledger_id: i64,
        key_text: &str,
    ) -> Result<i64, OpError> {
        let batch = self
            .store
            .batch_head(batch_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))?;
        if let Some(why) = self.replace_refused(&batch).await? {
            return Err(OpError::Conflict(FieldError {
                field: "batch".into(),
                message: why.english(),
                said: Some(why),
            }));
        }
        let old = self
            .store
            .ledger_for_batch(batch_id)
            .await?
            .into_iter()
            .find(|r| r.id == ledger_id && r.kind == "account" && r.batch_id == Some(batch_id))
            .ok_or_else(|| FieldError::coded("account", "replace.not_ours", &[]))?;
        if old.status != "active" {
            return Err(
                FieldError::coded("account", "replace.gone", &[("status", &old.status)]).into(),
            );
        }
        let (keys, refused) = read_keys(key_text).map_err(|e| FieldError {
            field: "key".into(),
            ..e
        })?;
        if keys.len() + refused.len() != 1 {
            return Err(FieldError::coded(
                "key",
                "replace.count",
                &[("n", &(keys.len() + refused.len()))],
            )
            .into());
        }
        let Some(new) = keys.into_iter().next() else {
            let Some(why) = refused.into_iter().next() else {
                return Err(FieldError::coded("key", "keys.empty", &[]).into());
            };
            return Err(FieldError {
                field: "key".into(),
                message: why.reason,
                said: why.said,
            }
            .into());
        };
        let fp = self.cipher.fingerprint(&new.secret);
        if old.fingerprint.as_deref() == Some(fp.as_str()) {
            return Err(FieldError::coded("key", "replace.same", &[]).into());
        }
        if let Some((other, remote)) = self
            .store
            .ledger_account(batch.host_id, &batch.provider_key, &fp)
            .await?
        {
            return Err(OpError::Conflict(FieldError::coded(
                "key",
                "replace.held",
                &[("batch", &other), ("account", &remote)],
            )));
        }
        if self
            .store
            .batch_keys(batch_id)
            .await?
            .iter()
            .any(|(f, _, _)| *f == fp)
        {
            return Err(OpError::Conflict(FieldError::coded(
                "key",
                "replace.tried",
                &[],
            )));
        }
        let head: Value = serde_json::from_str(&batch.plan_json)
            .map_err(|e| OpError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
        let field = |k: &str| {
            head.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (pack_id, group) = (field("pack_id"), field("group_name"));
        let masked = new.secret.masked();
        let old_mask = self
            .store
            .batch_keys(batch_id)
            .await?
            .into_iter()
            .find(|(f, _, _)| Some(f) == old.fingerprint.as_ref())
            .map(|(_, _, m)| m)
            .unwrap_or_else(|| format!("account #{}", old.remote_id));
        let step = |kind,
                    action,
                    target: String,
                    marker: String,
                    fp: Option<String>,
                    remote: Option<String>| {
            let mut s = StepRow::pending(kind, action, target, marker, remote);
            s.fingerprint = fp;
            s
        };
        let mut account = step(
            StepKind::Account,
            Action::Create,
            format!("account {masked}"),
            account_marker(&pack_id, &batch.provider_key, &fp),
            Some(fp.clone()),
            None,
        );
        account.idempotency_key =
            format!("rm-{}-replace-{}-{}", batch.uid, old.id, fp_short(&fp, 12));
        let steps = vec![
            account,
            step(
                StepKind::AccountTest,
                Action::Check,
                format!("account test {masked}"),
                format!("rm:account_test:{group}"),
                Some(fp.clone()),
                None,
            ),
            step(
                StepKind::Remove,
                Action::Delete,
                format!("replace account #{} ({old_mask})", old.remote_id),
                format!("ledger:{}:account", old.id),
                old.fingerprint.clone(),
                Some(old.remote_id.clone()),
            ),
            step(
                StepKind::Readiness,
                Action::Check,
                "readiness gate".into(),
                format!("rm:readiness:{group}"),
                None,
                None,
            ),
        ];
        let sealed = self
            .cipher
            .seal(&new.secret, &super::aad::batch_key(&batch.uid, &fp));
        let options = json!({"replace": {
            "ledger": old.id,
            "account": old.remote_id,
            "old": old_mask,
            "new": masked,
        }});
        let run_id = self
            .store
            .insert_run_with_keys(
                batch_id,
                "repair",
                actor,
                &options.to_string(),
                &steps,
                &[(fp, sealed, masked)],
            )
            .await?;
        Ok(run_id)
    }

    /// Why no key of the batch can be replaced now, if so.
    async fn replace_refused(&self, batch: &BatchRow) -> Result<Option<Said>, OpError> {
        let status = BatchStatus::parse(&batch.status);
        if !matches!(
            status,
            BatchStatus::Succeeded | BatchStatus::PartiallySucceeded | BatchStatus::Failed
        ) {
            return Ok(Some(Said::new(
                "replace.batch_state",
                &[("status", &status.as_str())],
            )));
        }
        Ok(self
            .store
            .runs(batch.id)
            .await?
            .iter()
            .find(|r| matches!(r.status.as_str(), "running" | "planned"))
            .map(|busy| Said::new("replace.busy", &[("kind", &busy.kind), ("run", &busy.id)])))
    }

    /// The key-replacement page: the batch's live accounts whose test
    /// failed (the usual reason to replace a key), and `selected`, any
    /// other live account of the batch the operator came for.
    pub async fn replace_view(
        &self,
        batch_id: i64,
        selected: Option<i64>,
    ) -> Result<ReplaceView, OpError> {
        let batch = self
            .store
            .batch_head(batch_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))?;
        let host = self.host_row(batch.host_id).await?;
        let refused = self.replace_refused(&batch).await?;
        let mut failed = std::collections::HashSet::new();
        for run in self.store.runs(batch_id).await? {
            for t in self
                .store
                .run_steps_of(run.id, StepKind::AccountTest)
                .await?
            {
                if let Some(fp) = t.fingerprint {
                    if matches!(t.state, StepState::Failed | StepState::Unknown) {
                        failed.insert(fp);
                    } else if t.state == StepState::Done {
                        failed.remove(&fp);
                    }
                }
            }
        }
        let masks: std::collections::HashMap<String, String> = self
            .store
            .batch_keys(batch_id)
            .await?
            .into_iter()
            .map(|(fp, _, m)| (fp, m))
            .collect();
        let live: Vec<_> = self
            .store
            .ledger_for_batch(batch_id)
            .await?
            .into_iter()
            .filter(|r| r.kind == "account" && r.status == "active" && r.batch_id == Some(batch_id))
            .collect();
        let candidates: Vec<ReplaceCandidate> = live
            .iter()
            .filter_map(|r| {
                let fp = r.fingerprint.clone().unwrap_or_default();
                let is_failed = failed.contains(&fp);
                (is_failed || Some(r.id) == selected).then(|| ReplaceCandidate {
                    ledger_id: r.id,
                    remote_id: r.remote_id.clone(),
                    masked: masks
                        .get(&fp)
                        .cloned()
                        .unwrap_or_else(|| format!("account #{}", r.remote_id)),
                    failed: is_failed,
                })
            })
            .collect();
        Ok(ReplaceView {
            batch_id,
            status: BatchStatus::parse(&batch.status),
            host_id: host.id,
            host_name: host.name,
            provider_key: batch.provider_key,
            refused,
            selected: selected.filter(|s| candidates.iter().any(|c| c.ledger_id == *s)),
            candidates,
            live_accounts: live.len(),
        })
    }

    /// Plans and runs a key replacement here and now (the CLI, tests).
    pub async fn replace_key(
        &self,
        actor: &str,
        batch_id: i64,
        ledger_id: i64,
        key_text: &str,
        opts: ApplyOptions,
    ) -> Result<Replaced, ApplyError> {
        let run_id = self
            .plan_replace(actor, batch_id, ledger_id, key_text)
            .await?;
        self.claim_replace(actor, batch_id, run_id).await?;
        self.replace_claimed(actor, batch_id, run_id, opts).await
    }

    /// Claims and runs a replacement a stopped process left, here and now.
    pub(super) async fn resume_replace(
        &self,
        actor: &str,
        batch_id: i64,
        run_id: i64,
        opts: ApplyOptions,
    ) -> Result<Replaced, ApplyError> {
        self.claim_replace(actor, batch_id, run_id).await?;
        self.replace_claimed(actor, batch_id, run_id, opts).await
    }

    /// Plans a key replacement, claims it and runs it in the background,
    /// as [`Core::start_apply`] does for an apply.
    pub async fn start_replace(
        &self,
        actor: &str,
        batch_id: i64,
        ledger_id: i64,
        key_text: &str,
        opts: ApplyOptions,
    ) -> Result<i64, OpError> {
        let run_id = self
            .plan_replace(actor, batch_id, ledger_id, key_text)
            .await?;
        self.spawn_replace(actor, batch_id, run_id, opts).await?;
        Ok(run_id)
    }

    /// The batch's key replacement that has not finished (a process that
    /// stopped left it), to be resumed rather than a new run started.
    pub(super) async fn open_replacement(&self, batch_id: i64) -> Result<Option<i64>, OpError> {
        Ok(self
            .store
            .runs(batch_id)
            .await?
            .into_iter()
            .rev()
            .find(|r| {
                matches!(r.status.as_str(), "running" | "planned") && replacement_of(r).is_some()
            })
            .map(|r| r.id))
    }

    /// Claims the run and runs it in the background.
    pub(super) async fn spawn_replace(
        &self,
        actor: &str,
        batch_id: i64,
        run_id: i64,
        opts: ApplyOptions,
    ) -> Result<tokio::task::JoinHandle<()>, OpError> {
        self.claim_replace(actor, batch_id, run_id).await?;
        let (core, actor) = (self.clone(), actor.to_string());
        Ok(tokio::spawn(async move {
            if let Err(e) = core.replace_claimed(&actor, batch_id, run_id, opts).await {
                tracing::error!(batch_id, run_id, error = %e, "key replacement stopped");
            }
        }))
    }

    async fn claim_replace(&self, actor: &str, batch_id: i64, run_id: i64) -> Result<(), OpError> {
        self.claim(run_id, "changed").await?;
        self.store
            .set_batch_status(batch_id, BatchStatus::Running.as_str(), None)
            .await?;
        self.store
            .audit(
                actor,
                "batch.replace_key",
                &crate::model::batch_target(batch_id),
                "started",
                &format!("run {run_id}"),
            )
            .await?;
        Ok(())
    }

    async fn replace_claimed(
        &self,
        actor: &str,
        batch_id: i64,
        run_id: i64,
        opts: ApplyOptions,
    ) -> Result<Replaced, ApplyError> {
        let out = self
            .with_lease(
                run_id,
                self.replace_run(batch_id, run_id, opts),
                |r| match r {
                    Err(ApplyError::Crashed(_)) => None,
                    Ok((true, _)) => Some("done"),
                    _ => Some("failed"),
                },
            )
            .await?;
        let mut stopped = None;
        let (swapped, ready) = match out {
            Err(ApplyError::Crashed(seq)) => return Err(ApplyError::Crashed(seq)),
            Err(ApplyError::Op(e)) => {
                stopped = Some(e);
                (false, false)
            }
            Ok(r) => r,
        };
        let batch = self
            .store
            .batch_head(batch_id)
            .await
            .map_err(OpError::from)?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))?;
        let keys = KeyOutcomes::parse(
            &self
                .store
                .key_outcomes(batch_id)
                .await
                .map_err(OpError::from)?,
        );
        let status = keys.apply_status(ready);
        let access = match (ready, AccessMode::parse(&batch.access_mode)) {
            (true, Some(AccessMode::Subscription)) => AccessStatus::SubscriptionReady,
            (true, _) => AccessStatus::SelfServiceReady,
            (false, _) => AccessStatus::Broken,
        };
        self.store
            .set_batch_status(batch_id, status.as_str(), Some(access.as_str()))
            .await
            .map_err(OpError::from)?;
        self.store
            .audit(
                actor,
                "batch.replace_key",
                &crate::model::batch_target(batch_id),
                if swapped { "ok" } else { "failed" },
                &format!(
                    "run {run_id}: {}; batch {}",
                    if swapped {
                        "new key passed, old account removed"
                    } else {
                        "old account kept"
                    },
                    status.as_str()
                ),
            )
            .await
            .map_err(OpError::from)?;
        if let Some(e) = stopped {
            return Err(e.into());
        }
        Ok(Replaced {
            run_id,
            swapped,
            status,
        })
    }

    /// The run's steps in order: the new account, its test, the old
    /// account's removal only once the test passed, readiness. Returns
    /// (swapped, ready).
    async fn replace_run(
        &self,
        batch_id: i64,
        run_id: i64,
        opts: ApplyOptions,
    ) -> Result<(bool, bool), ApplyError> {
        let ctx = self.step_ctx(batch_id, run_id, opts).await?;
        let group_id = self.batch_group_id(batch_id).await?;
        let steps = self.store.run_steps(run_id).await.map_err(OpError::from)?;
        let of = |k: StepKind| steps.iter().filter(move |s| s.kind == k);
        let mut created = true;
        for s in of(StepKind::Account) {
            created &= self.step(&ctx, s, Some(group_id)).await?.is_some();
        }
        let mut passed = created;
        for s in of(StepKind::AccountTest) {
            passed &= created && self.step(&ctx, s, Some(group_id)).await?.is_some();
        }
        let mut swapped = false;
        if passed {
            let rctx = self.run_ctx(batch_id).await?;
            for s in of(StepKind::Remove) {
                swapped = self.removal(&rctx, s).await?;
            }
        } else {
            for s in of(StepKind::Remove) {
                let cur = self
                    .store
                    .step(batch_id, s.seq)
                    .await
                    .map_err(OpError::from)?;
                if cur.is_some_and(|c| c.state == StepState::Pending) {
                    self.store
                        .update_step(
                            batch_id,
                            s.seq,
                            StepUpdate {
                                state: Some(StepState::Skipped),
                                response_json: Some(
                                    "kept: the new key's account did not pass its test, so the old account stays on the host".into(),
                                ),
                                ..Default::default()
                            },
                        )
                        .await
                        .map_err(OpError::from)?;
                }
            }
        }
        let mut ready = false;
        for s in of(StepKind::Readiness) {
            ready = self.step(&ctx, s, Some(group_id)).await?.is_some();
        }
        Ok((swapped, ready))
    }

    /// The host id of the batch's group (its apply run settled it).
    async fn batch_group_id(&self, batch_id: i64) -> Result<i64, OpError> {
        let apply = self
            .store
            .runs(batch_id)
            .await?
            .into_iter()
            .find(|r| r.kind == "apply")
            .map(|r| r.id)
            .unwrap_or_default();
        self.store
            .run_steps_of(apply, StepKind::Group)
            .await?
            .into_iter()
            .find(|s| {
                s.remote_id.is_some() && matches!(s.state, StepState::Done | StepState::Skipped)
            })
            .and_then(|s| s.remote_id?.parse().ok())
            .ok_or_else(|| OpError::Conflict(FieldError::coded("batch", "replace.no_group", &[])))
    }
}
