//! Diagnosis: for every failed check of a batch, compare the host path with
//! the provider called directly (raw key, at most one minimal completion per
//! key) and name one failure class, with its evidence and the next action.

use super::{Core, OpError};
use crate::model::{Diagnosis, DiagnosisReport, FailureClass, Plan, StepKind, StepState};
use crate::secrets::Secret;
use crate::store::now_ms;
use crate::upstream::{self, Family, Signal, UpstreamReport};
use std::collections::HashMap;

/// The next action for a class, in plain words.
pub fn next_action(class: FailureClass, detail: &str) -> String {
    match class {
        FailureClass::UpstreamQuotaExhausted => "Recharge the provider account that owns this key (or replace the key). Then re-run the batch: the host uses the account again once it has balance.".into(),
        FailureClass::UpstreamKeyInvalid => "Replace the key: the provider rejects it (revoked, mistyped, or issued by the provider's other-region platform). Import the new key in a new batch; remove this account with a rollback.".into(),
        FailureClass::UpstreamRateLimited => "Wait for the provider's rate window to pass and re-run. If it keeps happening, lower the batch concurrency or raise the limits with the provider.".into(),
        FailureClass::UpstreamModelUnknown => format!("Fix the model in the pack: the provider does not serve it to this key{detail}. Upload the corrected pack and plan again."),
        FailureClass::UpstreamContentRejected => "The provider's content moderation rejected the smoke request (\"hi\"), which usually means the provider restricts this key or account: check the account's standing with the provider, or replace the key.".into(),
        FailureClass::HostCompatibilityGap => "The provider answers this key directly, but the host fails with it: check the account's platform, base URL and protocol on the host (on the openai platform, chat completions must be forced), and whether this host version supports the provider.".into(),
        FailureClass::HostAuthFailed => "Edit the host and enter a working admin credential, then re-run.".into(),
        FailureClass::HostComplianceRequired => "Accept the deployment compliance text in the host's admin panel (as the admin this credential acts as), then re-run.".into(),
        FailureClass::HostConfigIncomplete => format!("Complete the host configuration: {detail}. Then re-run the batch."),
        FailureClass::NetworkError => format!("Check that this server can reach {detail} (firewall, DNS, TLS, proxy), then re-run."),
    }
}

fn from_signal(s: Signal) -> Option<FailureClass> {
    Some(match s {
        Signal::QuotaExhausted => FailureClass::UpstreamQuotaExhausted,
        Signal::KeyInvalid => FailureClass::UpstreamKeyInvalid,
        Signal::RateLimited => FailureClass::UpstreamRateLimited,
        Signal::ModelUnknown => FailureClass::UpstreamModelUnknown,
        Signal::Unreachable => FailureClass::NetworkError,
        Signal::Moderation => FailureClass::UpstreamContentRejected,
        Signal::Ok | Signal::Other => return None,
    })
}

/// A host-side error message mapped to a class, when the message alone
/// decides it.
fn host_class(err: &str) -> Option<(FailureClass, String)> {
    let e = err.to_ascii_lowercase();
    if e.contains("admin_compliance_ack_required") || e.contains("http 423") {
        return Some((FailureClass::HostComplianceRequired, String::new()));
    }
    if e.contains("invalid_admin_key") || (e.contains("/api/v1/admin/") && e.contains("http 401")) {
        return Some((FailureClass::HostAuthFailed, String::new()));
    }
    if e.contains("connection failed") || e.contains("timed out") {
        return Some((FailureClass::NetworkError, "the host".into()));
    }
    if e.contains("insufficient_balance") {
        return Some((
            FailureClass::HostConfigIncomplete,
            "access: the probe user has no balance on the host".into(),
        ));
    }
    if e.contains("subscription_not_found") || e.contains("subscription_required") {
        return Some((
            FailureClass::HostConfigIncomplete,
            "access: the probe user has no active subscription to the group".into(),
        ));
    }
    if e.contains("does not list") || e.contains("model_not_found") || e.contains("mapping lacks") {
        return Some((
            FailureClass::HostConfigIncomplete,
            "mapping: no schedulable account in the group lists the smoke model".into(),
        ));
    }
    if e.contains("no probe-user key") || e.contains("probe user") {
        return Some((
            FailureClass::HostConfigIncomplete,
            "access: the probe user's key (see the step's error)".into(),
        ));
    }
    None
}

impl Core {
    /// Diagnoses every failed or unknown step of a batch and stores the report.
    #[tracing::instrument(skip(self), fields(batch_id = batch_id))]
    pub async fn diagnose_batch(
        &self,
        actor: &str,
        batch_id: i64,
    ) -> Result<DiagnosisReport, OpError> {
        let batch = self
            .store
            .batch(batch_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {batch_id}")))?;
        let plan: Plan = serde_json::from_str(&batch.plan_json)
            .map_err(|e| OpError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
        let (_, pack) = self.pack(batch.pack_version_id).await?;
        let provider = pack.providers.get(&plan.provider_key).ok_or_else(|| {
            OpError::NotFound(format!(
                "provider {} in pack {}",
                plan.provider_key, plan.pack_id
            ))
        })?;
        let family = provider
            .api_family
            .as_deref()
            .and_then(Family::parse)
            .unwrap_or_else(|| Family::detect(&plan.provider_key, &provider.base_url));
        let mut keys: HashMap<String, Secret> = HashMap::new();
        for (fp, sealed, _) in self.store.batch_keys(batch_id).await? {
            keys.insert(
                fp.clone(),
                self.cipher
                    .open(&sealed, &super::aad::batch_key(&batch.uid, &fp))?,
            );
        }
        let steps = self.store.steps(batch_id).await?;
        let mut probes: HashMap<String, UpstreamReport> = HashMap::new();
        let mut completions = 0u32;
        let mut items = Vec::new();
        let account_failed = |fp: &Option<String>| {
            steps.iter().any(|x| {
                x.kind == StepKind::AccountTest
                    && x.fingerprint == *fp
                    && x.state == StepState::Failed
            })
        };
        for s in steps
            .iter()
            .filter(|s| matches!(s.state, StepState::Failed | StepState::Unknown))
        {
            let mut evidence = vec![format!(
                "host: step {} `{}` {}: {}",
                s.seq,
                s.target,
                s.state.as_str(),
                s.error
            )];
            let upstream_key = match s.kind {
                StepKind::AccountTest | StepKind::Account => s.fingerprint.clone(),
                // Readiness through the gateway: ask the provider with the first key.
                StepKind::Readiness => keys.keys().next().cloned(),
                _ => None,
            };
            let host_only = host_class(&s.error);
            let (class, detail) = match (s.kind, host_only) {
                // A readiness failure caused by every account failing upstream is
                // that upstream failure, not a configuration gap.
                (StepKind::Readiness, Some((FailureClass::HostConfigIncomplete, d)))
                    if !steps.iter().any(|x| {
                        x.kind == StepKind::AccountTest && account_failed(&x.fingerprint)
                    }) =>
                {
                    (FailureClass::HostConfigIncomplete, d)
                }
                (_, Some((c, d)))
                    if !matches!(s.kind, StepKind::AccountTest | StepKind::Readiness) =>
                {
                    (c, d)
                }
                _ => {
                    let Some(fp) = upstream_key else {
                        let detail = format!("step `{}` failed: {}", s.target, s.error);
                        items.push(Diagnosis {
                            seq: s.seq,
                            target: s.target.clone(),
                            class: FailureClass::HostConfigIncomplete,
                            evidence,
                            action: next_action(FailureClass::HostConfigIncomplete, &detail),
                            detail,
                        });
                        continue;
                    };
                    if !probes.contains_key(&fp) {
                        if let Some(key) = keys.get(&fp) {
                            let r =
                                upstream::probe(family, &provider.base_url, key, &plan.smoke_model)
                                    .await;
                            completions += 1;
                            probes.insert(fp.clone(), r);
                        }
                    }
                    match probes.get(&fp) {
                        None => (
                            FailureClass::HostConfigIncomplete,
                            "the key of this step is no longer stored".into(),
                        ),
                        Some(r) => {
                            evidence.push(format!(
                                "upstream {}: HTTP {} {}",
                                r.models.request,
                                r.models
                                    .status
                                    .map(|x| x.to_string())
                                    .unwrap_or_else(|| "—".into()),
                                clip(&r.models.body)
                            ));
                            evidence.push(format!(
                                "upstream {}: HTTP {} {}",
                                r.chat.request,
                                r.chat
                                    .status
                                    .map(|x| x.to_string())
                                    .unwrap_or_else(|| "—".into()),
                                clip(&r.chat.body)
                            ));
                            if let Some(b) = &r.balance {
                                evidence.push(format!(
                                    "upstream {}: HTTP {} {}",
                                    b.request,
                                    b.status
                                        .map(|x| x.to_string())
                                        .unwrap_or_else(|| "—".into()),
                                    clip(&b.body)
                                ));
                            }
                            let sig = r.signal();
                            evidence.push(format!(
                                "classified as {:?} by the {:?} signatures",
                                sig, family
                            ));
                            match from_signal(sig) {
                                Some(FailureClass::NetworkError) => {
                                    (FailureClass::NetworkError, provider.base_url.clone())
                                }
                                Some(FailureClass::UpstreamModelUnknown) => (
                                    FailureClass::UpstreamModelUnknown,
                                    format!(" (`{}`)", plan.smoke_model),
                                ),
                                Some(c) => (c, String::new()),
                                None => match host_class(&s.error) {
                                    Some((c, d)) => (c, d),
                                    None => (FailureClass::HostCompatibilityGap, String::new()),
                                },
                            }
                        }
                    }
                }
            };
            items.push(Diagnosis {
                seq: s.seq,
                target: s.target.clone(),
                class,
                evidence,
                action: next_action(class, &detail),
                detail,
            });
        }
        let report = DiagnosisReport {
            at_ms: now_ms(),
            items,
            upstream_completions: completions,
        };
        self.store
            .insert_diagnosis(
                batch_id,
                actor,
                &serde_json::to_string(&report).expect("reports serialise"),
            )
            .await?;
        Ok(report)
    }
}

fn clip(s: &str) -> String {
    let t: String = s.chars().take(300).collect();
    if s.chars().count() > 300 {
        format!("{t}…")
    } else {
        t
    }
}
