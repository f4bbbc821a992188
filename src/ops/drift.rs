//! Drift: the host's listings against the ledger, with the same field
//! comparison as rollback ([`Resource::fields`]), and one action per
//! finding, each a `repair` run through the journal.
//!
//! The check reads listings only (our accounts by name prefix, groups,
//! channels, the probe user's keys and subscriptions, and one count of all
//! accounts), their pages a few at a time, and stores findings, never the
//! listings.

use super::apply::redact;
use super::resource::{diff, Fields, Resource};
use super::{Core, OpError};
use crate::host::{HostClient, HostError};
use crate::model::{
    Action, DriftClass, DriftFinding, DriftReport, FieldError, Said, StepKind, StepState, Unmanaged,
};
use crate::store::{LedgerRow, StepRow, StepUpdate};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};

/// Listing pages fetched at once.
pub const DRIFT_CONCURRENCY: usize = 6;
/// A host never has more pages than this for one listing (a guard against
/// a host that keeps saying there is more).
/// The most pages of 1,000 any listing follows (a million objects): past
/// that the host is answering nonsense, and the read stops with an error.
pub(crate) const MAX_PAGES: i64 = 1000;

pub(crate) fn too_many_pages(path: &str) -> HostError {
    HostError::local(
        crate::host::HostErrorKind::Protocol,
        "TOO_MANY_PAGES",
        format!("the listing has more than {MAX_PAGES} pages of 1,000; the product stops there"),
        "GET",
        path,
    )
}

/// Every item of a paginated listing (or a plain array answer). Page 1
/// says how many pages there are; the rest are fetched concurrently.
async fn list_all(
    c: &HostClient,
    path: &str,
    calls: &AtomicU32,
    permits: &tokio::sync::Semaphore,
) -> Result<Vec<Value>, HostError> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let get = |page: i64| async move {
        let _p = permits.acquire().await.expect("never closed");
        calls.fetch_add(1, Ordering::Relaxed);
        c.admin_get(&format!("{path}{sep}page_size=1000&page={page}"))
            .await
    };
    let first = get(1).await?;
    let items = |v: &Value| -> Vec<Value> {
        v.get("items")
            .and_then(Value::as_array)
            .or_else(|| v.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let mut out = items(&first);
    let pages = first.get("pages").and_then(Value::as_i64).unwrap_or(1);
    if pages > MAX_PAGES {
        return Err(too_many_pages(path));
    }
    let mut rest = futures_util::stream::iter(2..=pages)
        .map(get)
        .buffered(DRIFT_CONCURRENCY);
    while let Some(page) = rest.next().await {
        let page = items(&page?);
        if page.is_empty() {
            break;
        }
        out.extend(page);
    }
    Ok(out)
}

fn id_of(v: &Value) -> Option<String> {
    v.get("id").and_then(Value::as_i64).map(|i| i.to_string())
}

fn by_id(items: Vec<Value>) -> HashMap<String, Value> {
    items
        .into_iter()
        .filter_map(|v| Some((id_of(&v)?, v)))
        .collect()
}

fn in_future(v: &Value, field: &str, now_s: i64) -> bool {
    match v.get(field) {
        Some(Value::Number(n)) => n.as_i64().is_some_and(|t| t > now_s),
        Some(Value::String(s)) => !s.is_empty() && s.as_str() > rfc3339_now(now_s).as_str(),
        _ => false,
    }
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, to compare with the host's RFC 3339 times
/// (a time written with another offset compares by its local digits).
fn rfc3339_now(now_s: i64) -> String {
    let f = crate::model::format_ms(now_s * 1000);
    format!("{}T{}", &f[..10], &f[11..19])
}

/// Why the host will not schedule an account, in its own words.
fn unhealthy(a: &Value, now_s: i64) -> Option<Said> {
    let status = a.get("status").and_then(Value::as_str).unwrap_or("");
    let msg = a
        .get("error_message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    if status != "active" {
        return Some(Said::new(
            "unhealthy.status",
            &[
                ("status", &status),
                ("said", &msg.map(|m| format!(": {m}")).unwrap_or_default()),
            ],
        ));
    }
    if a.get("schedulable").and_then(Value::as_bool) == Some(false) {
        return Some(Said::new("unhealthy.unschedulable", &[]));
    }
    for (field, code) in [
        ("rate_limit_reset_at", "unhealthy.rate_limited"),
        ("temp_unschedulable_until", "unhealthy.temporary"),
        ("overload_until", "unhealthy.overloaded"),
    ] {
        if in_future(a, field, now_s) {
            let why = a
                .get("temp_unschedulable_reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty() && field == "temp_unschedulable_until")
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            return Some(Said::new(code, &[("until", &a[field]), ("said", &why)]));
        }
    }
    None
}

/// What the host shows of ours, from its listings.
pub(super) struct HostView {
    /// Our accounts (by name prefix), plus any ledger account renamed since.
    pub accounts: Vec<Value>,
    pub groups: Vec<Value>,
    pub channels: Vec<Value>,
    /// The probe user's keys and live subscriptions.
    pub keys: Vec<Value>,
    pub subs: Vec<Value>,
    /// Every account on the host, ours or not.
    pub total_accounts: i64,
    pub calls: u32,
}

impl HostView {
    /// Every object shown, by (kind, id).
    pub fn index(&self) -> HashMap<(Resource, String), &Value> {
        [
            (Resource::Account, &self.accounts),
            (Resource::Group, &self.groups),
            (Resource::Channel, &self.channels),
            (Resource::UserKey, &self.keys),
            (Resource::Subscription, &self.subs),
        ]
        .into_iter()
        .flat_map(|(k, list)| list.iter().filter_map(move |v| Some(((k, id_of(v)?), v))))
        .collect()
    }
}

/// Reads the host's listings (the probe user's id, then the rest at once,
/// pages a few at a time). A ledger account missing from the name-prefix
/// listing (renamed on the host) is read by id, so it is not taken as gone.
pub(super) async fn observe_host(
    c: &HostClient,
    probe_email: Option<&str>,
    ledger: &[LedgerRow],
) -> Result<HostView, HostError> {
    let calls = AtomicU32::new(0);
    let permits = tokio::sync::Semaphore::new(DRIFT_CONCURRENCY);
    let uid = match probe_email {
        Some(email) => {
            calls.fetch_add(1, Ordering::Relaxed);
            Some(super::rollback::user_id(c, email).await?)
        }
        None => None,
    };
    let total_accounts = async {
        let _p = permits.acquire().await.expect("never closed");
        calls.fetch_add(1, Ordering::Relaxed);
        c.admin_get("/api/v1/admin/accounts?page_size=1&page=1")
            .await
            .map(|v| v.get("total").and_then(Value::as_i64).unwrap_or(0))
    };
    let of_user = |what: &'static str| {
        let (calls, permits) = (&calls, &permits);
        async move {
            match uid {
                Some(u) => {
                    list_all(
                        c,
                        &format!("/api/v1/admin/users/{u}/{what}"),
                        calls,
                        permits,
                    )
                    .await
                }
                None => Ok(Vec::new()),
            }
        }
    };
    let channels = async {
        if ledger.iter().any(|r| r.kind == "channel") {
            list_all(c, "/api/v1/admin/channels", &calls, &permits).await
        } else {
            Ok(Vec::new())
        }
    };
    let (accounts, groups, channels, keys, subs, total) = tokio::join!(
        list_all(c, "/api/v1/admin/accounts?search=rm-", &calls, &permits),
        list_all(c, "/api/v1/admin/groups", &calls, &permits),
        channels,
        of_user("api-keys"),
        of_user("subscriptions"),
        total_accounts,
    );
    let mut accounts = accounts?;
    let listed: HashSet<String> = accounts.iter().filter_map(id_of).collect();
    let renamed: Vec<String> = ledger
        .iter()
        .filter(|r| r.kind == "account" && !listed.contains(&r.remote_id))
        .map(|r| r.remote_id.clone())
        .collect();
    calls.fetch_add(renamed.len() as u32, Ordering::Relaxed);
    let mut by_id = futures_util::stream::iter(renamed)
        .map(|id| async move { Resource::Account.observe(c, &id, None).await })
        .buffer_unordered(DRIFT_CONCURRENCY);
    while let Some(a) = by_id.next().await {
        accounts.extend(a?);
    }
    Ok(HostView {
        accounts,
        groups: groups?,
        channels: channels?,
        keys: keys?,
        subs: subs?
            .into_iter()
            .filter(|s| {
                s.get("status").and_then(Value::as_str) != Some("revoked")
                    && s.get("deleted_at").is_none_or(Value::is_null)
            })
            .collect(),
        total_accounts: total?,
        calls: calls.load(Ordering::Relaxed),
    })
}

impl Core {
    /// Checks a host for drift and stores the findings. Read-only on the host.
    pub async fn drift_check(&self, actor: &str, host_id: i64) -> Result<DriftReport, OpError> {
        let host = self.host_row(host_id).await?;
        let (client, secrets) = self.host_client(&host)?;
        let ledger = self.store.live_ledger_rows(host_id).await?;
        let probe_email = secrets.probe_user.as_ref().map(|(e, _)| e.as_str());
        let seen = observe_host(&client, probe_email, &ledger)
            .await
            .map_err(|e| OpError::Host(e.to_string()))?;
        let HostView {
            accounts,
            groups,
            channels,
            keys,
            subs,
            total_accounts: total,
            calls,
        } = seen;
        let ignores = self.store.drift_ignores(host_id).await?;
        let findings = classify(
            &ledger,
            &accounts,
            &groups,
            &channels,
            &keys,
            &subs,
            crate::store::now_ms() / 1000,
        );
        let ledger_ids: HashSet<(&str, &str)> = ledger
            .iter()
            .map(|r| (r.kind.as_str(), r.remote_id.as_str()))
            .collect();
        let unmanaged = Unmanaged {
            groups: groups
                .iter()
                .filter(|g| {
                    id_of(g).is_some_and(|id| !ledger_ids.contains(&("group", id.as_str())))
                })
                .filter_map(|g| g.get("name").and_then(Value::as_str).map(str::to_string))
                .collect(),
            channels: channels
                .iter()
                .filter(|g| {
                    id_of(g).is_some_and(|id| !ledger_ids.contains(&("channel", id.as_str())))
                })
                .filter_map(|g| g.get("name").and_then(Value::as_str).map(str::to_string))
                .collect(),
            accounts: total - ledger.iter().filter(|r| r.kind == "account").count() as i64
                + findings
                    .iter()
                    .filter(|f| f.class == DriftClass::Missing && f.kind == "account")
                    .count() as i64,
        };
        let mut report = DriftReport {
            id: 0,
            host_id,
            at_ms: crate::store::now_ms(),
            actor: actor.to_string(),
            compared: ledger.len() as i64,
            findings: findings
                .into_iter()
                .map(|mut f| {
                    f.ignored = ignores.get(&f.key).cloned();
                    f
                })
                .collect(),
            unmanaged,
            host_calls: calls,
        };
        let open = report
            .findings
            .iter()
            .filter(|f| f.ignored.is_none())
            .count() as i64;
        let mut by_batch = std::collections::BTreeMap::new();
        for f in report.findings.iter().filter(|f| f.ignored.is_none()) {
            if let Some(b) = f.batch_id {
                *by_batch.entry(b).or_insert(0) += 1;
            }
        }
        report.id = self
            .store
            .insert_drift_report(
                host_id,
                actor,
                open,
                &by_batch,
                &serde_json::to_string(&report).expect("reports serialise"),
            )
            .await?;
        Ok(report)
    }

    /// The newest drift check of a host, if any.
    pub async fn latest_drift(&self, host_id: i64) -> Result<Option<DriftReport>, OpError> {
        Ok(match self.store.latest_drift_report(host_id).await? {
            Some((id, j)) => {
                let mut r: DriftReport = serde_json::from_str(&j).map_err(|e| {
                    OpError::Store(crate::store::StoreError::Corrupt(e.to_string()))
                })?;
                r.id = id;
                Some(r)
            }
            None => None,
        })
    }

    /// Open findings of each host's newest check: (host id, count).
    pub async fn drift_open_counts(&self) -> Result<Vec<(i64, i64)>, OpError> {
        Ok(self.store.drift_open_counts().await?)
    }

    /// Ignores a finding for `days` with a reason (it stays visible).
    pub async fn ignore_drift(
        &self,
        actor: &str,
        host_id: i64,
        key: &str,
        reason: &str,
        days: i64,
    ) -> Result<(), OpError> {
        if reason.trim().len() < 3 {
            return Err(FieldError::coded("reason", "drift.reason", &[]).into());
        }
        if !(1..=365).contains(&days) {
            return Err(FieldError::coded("days", "drift.days", &[]).into());
        }
        self.host_row(host_id).await?;
        self.store
            .put_drift_ignore(
                host_id,
                key,
                reason.trim(),
                crate::store::now_ms() + days * 86_400_000,
                actor,
            )
            .await?;
        Ok(())
    }

    /// Runs one action on a finding of the host's newest check, as a
    /// `repair` run of the batch that made the object. Returns a message.
    pub async fn repair_drift(
        &self,
        actor: &str,
        host_id: i64,
        key: &str,
        action: &str,
    ) -> Result<String, OpError> {
        let report = self
            .latest_drift(host_id)
            .await?
            .ok_or_else(|| FieldError::coded("finding", "drift.no_check", &[]))?;
        let f = report
            .findings
            .iter()
            .find(|f| f.key == key)
            .ok_or_else(|| FieldError::coded("finding", "drift.not_in_check", &[("key", &key)]))?;
        if !f.actions.iter().any(|a| a == action) {
            return Err(FieldError::coded(
                "action",
                "drift.not_offered",
                &[("action", &action), ("offered", &f.actions.join(", "))],
            )
            .into());
        }
        let batch_id = f
            .batch_id
            .ok_or_else(|| FieldError::coded("finding", "drift.no_batch", &[]))?;
        let ledger = match f.ledger_id {
            Some(id) => self
                .store
                .live_ledger_rows(host_id)
                .await?
                .into_iter()
                .find(|r| r.id == id),
            None => None,
        };
        let host = self.host_row(host_id).await?;
        let (client, secrets) = self.host_client(&host)?;
        let owner = match &secrets.probe_user {
            Some((email, _)) => Some(super::resource::Owner {
                user_id: super::rollback::user_id(&client, email)
                    .await
                    .map_err(|e| OpError::Host(e.to_string()))?,
            }),
            None => None,
        };
        let res = Resource::parse(&f.kind).ok_or_else(|| {
            FieldError::coded("finding", "drift.unknown_kind", &[("kind", &f.kind)])
        })?;
        let (kind, step_action) = match action {
            "remove_duplicate" => (StepKind::Remove, Action::Delete),
            "pause" => (StepKind::Pause, Action::Update),
            _ => (kind_of(res), Action::Update),
        };
        let step = StepRow::pending(
            kind,
            step_action,
            format!("{action}: {}", f.target),
            format!("drift:{key}"),
            Some(f.remote_id.clone()),
        );
        let run_id = self
            .store
            .insert_run(
                batch_id,
                "repair",
                actor,
                &json!({"drift": key, "action": action}).to_string(),
                &[step],
            )
            .await?;
        self.claim(run_id, "repaired").await?;
        let seq = self.store.run_steps(run_id).await?[0].seq;
        self.store.mark_sent(batch_id, &[seq], None).await?;
        let out = self
            .with_lease(
                run_id,
                self.drift_action(&client, f, ledger.as_ref(), res, action, owner),
                |r| Some(if r.is_ok() { "done" } else { "failed" }),
            )
            .await?;
        let update = match &out {
            Ok(msg) => StepUpdate {
                state: Some(StepState::Done),
                response_json: Some(msg.clone()),
                ..Default::default()
            },
            Err(e) => StepUpdate {
                state: Some(StepState::Failed),
                error: Some(e.to_string()),
                ..Default::default()
            },
        };
        self.store.update_step(batch_id, seq, update).await?;
        self.store
            .audit(
                actor,
                "host.drift_repair",
                &format!("host-id:{host_id}"),
                if out.is_ok() { "ok" } else { "failed" },
                &format!("{action} {key}"),
            )
            .await?;
        out
    }

    async fn drift_action(
        &self,
        c: &HostClient,
        f: &DriftFinding,
        ledger: Option<&LedgerRow>,
        res: Resource,
        action: &str,
        owner: Option<super::resource::Owner>,
    ) -> Result<String, OpError> {
        let host_err = |e: HostError| OpError::Host(e.to_string());
        let id = &f.remote_id;
        // The object as the host shows it now, which must still be there.
        let present = || async {
            res.observe(c, id, owner)
                .await
                .map_err(host_err)?
                .ok_or_else(|| OpError::from(FieldError::coded("finding", "drift.gone", &[])))
        };
        match action {
            "remove_duplicate" => {
                // Never the object the ledger points at.
                if ledger.is_some_and(|l| &l.remote_id == id) {
                    return Err(FieldError::coded("finding", "drift.not_duplicate", &[]).into());
                }
                res.remove(c, id, None).await.map_err(host_err)
            }
            "pause" => {
                c.admin(
                    "POST",
                    &format!("/api/v1/admin/accounts/{id}/schedulable"),
                    Some(&json!({"schedulable": false})),
                    None,
                )
                .await
                .map_err(host_err)?;
                Ok(format!("account {id} paused (schedulable=false)"))
            }
            "forget" => {
                let l = ledger
                    .ok_or_else(|| FieldError::coded("finding", "drift.not_in_ledger", &[]))?;
                self.store.ledger_set_status(l.id, "gone").await?;
                Ok(format!(
                    "{} {id} marked gone in the ledger: a new plan of its keys creates it again",
                    res.as_str()
                ))
            }
            "adopt" => {
                let l = ledger
                    .ok_or_else(|| FieldError::coded("finding", "drift.not_in_ledger", &[]))?;
                let seen = present().await?;
                self.store
                    .ledger_set_desired(
                        l.id,
                        &serde_json::to_string(&res.fields(&seen)).unwrap_or_default(),
                        &res.digest(&seen),
                    )
                    .await?;
                Ok(format!(
                    "the host's value of {} {id} is now the desired one",
                    res.as_str()
                ))
            }
            "reapply" => {
                let l = ledger
                    .ok_or_else(|| FieldError::coded("finding", "drift.not_in_ledger", &[]))?;
                let seen = present().await?;
                let desired: Fields = serde_json::from_str(&l.desired_json).unwrap_or_default();
                let (method, path, body) = reapply_call(res, id, &desired, &seen)?;
                c.admin(method, &path, Some(&body), None)
                    .await
                    .map_err(host_err)?;
                let back = res
                    .observe(c, id, owner)
                    .await
                    .map_err(host_err)?
                    .unwrap_or_default();
                let left = diff(&desired, &res.fields(&back));
                if !left.is_empty() {
                    return Err(OpError::Host(format!(
                        "re-applied, but the host still shows {}",
                        left.iter()
                            .map(|(k, _, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                Ok(format!(
                    "{} {id} re-applied: {}",
                    res.as_str(),
                    serde_json::to_string(&redact(&body)).unwrap_or_default()
                ))
            }
            other => {
                Err(
                    FieldError::coded("action", "drift.unknown_action", &[("action", &other)])
                        .into(),
                )
            }
        }
    }
}

fn kind_of(res: Resource) -> StepKind {
    match res {
        Resource::Group => StepKind::Group,
        Resource::Channel => StepKind::Channel,
        Resource::Account => StepKind::Account,
        Resource::UserKey => StepKind::UserKey,
        Resource::Subscription => StepKind::Subscription,
    }
}

/// The call that puts the desired fields back. Only the fields we own are
/// sent; an account's `extra` is read, modified and written (a full
/// replacement on the host) so the host's own keys stay.
fn reapply_call(
    res: Resource,
    id: &str,
    desired: &Fields,
    seen: &Value,
) -> Result<(&'static str, String, Value), OpError> {
    let get = |k: &str| desired.get(k).cloned().unwrap_or(Value::Null);
    Ok(match res {
        Resource::Group => {
            let mut body = serde_json::Map::new();
            for (k, v) in desired {
                if k != "platform" && k != "model list" && !k.starts_with("group ") {
                    body.insert(k.clone(), v.clone());
                }
            }
            // Normalized fields back to the host's names, which differ by
            // version: the model list under the name the group carries,
            // group price cards (none is what we write) replaced.
            body.insert(
                "is_exclusive".into(),
                json!(desired.get("is_exclusive") == Some(&json!(true))),
            );
            if let Some(field) = ["model_allowlist", "models_list_config"]
                .into_iter()
                .find(|k| seen.get(*k).is_some())
            {
                body.insert(
                    field.into(),
                    match desired.get("model list") {
                        Some(models) => json!({"enabled": true, "models": models}),
                        None => json!({"enabled": false, "models": []}),
                    },
                );
            }
            if seen.get("model_pricing").is_some() {
                let mut cards = Vec::new();
                for (k, v) in desired {
                    if let Some(pm) = k
                        .strip_prefix("group ")
                        .and_then(|k| k.strip_prefix(super::resource::PRICE_PREFIX))
                    {
                        let (platform, model) = pm.split_once('/').unwrap_or(("", pm));
                        cards.push(json!({"platform": platform, "models": [model], "billing_mode": "token", "input_price": v[0], "output_price": v[1]}));
                    }
                }
                body.insert("model_pricing".into(), json!(cards));
            }
            (
                "PUT",
                format!("/api/v1/admin/groups/{id}"),
                Value::Object(body),
            )
        }
        Resource::Channel => {
            let mut pricing: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for (k, v) in desired {
                let Some(pm) = k.strip_prefix(super::resource::PRICE_PREFIX) else {
                    continue;
                };
                let (platform, model) = pm.split_once('/').unwrap_or(("", pm));
                pricing
                    .entry(platform.to_string())
                    .or_default()
                    .push(json!({
                        "platform": platform, "models": [model], "billing_mode": "token",
                        "input_price": v[0], "output_price": v[1],
                    }));
            }
            let mut body = json!({
                "name": get("name"),
                "group_ids": get("group_ids"),
                "model_pricing": pricing.into_values().flatten().collect::<Vec<_>>(),
                "restrict_models": get("restrict_models"),
            });
            if let Some(b) = desired.get("billing_model_source") {
                body["billing_model_source"] = b.clone();
            }
            ("PUT", format!("/api/v1/admin/channels/{id}"), body)
        }
        Resource::Account => {
            // Non-secret credentials are replaced as sent; the key is kept
            // by the host when omitted (reference §3.4).
            let mut creds = seen
                .get("credentials")
                .cloned()
                .unwrap_or_else(|| json!({}));
            creds["base_url"] = get("base_url");
            creds["model_mapping"] = get("model_mapping");
            if let Some(o) = creds.as_object_mut() {
                o.remove("api_key");
            }
            let mut extra = seen.get("extra").cloned().unwrap_or_else(|| json!({}));
            extra[super::import::MARKER_KEY] = get("marker");
            (
                "PUT",
                format!("/api/v1/admin/accounts/{id}"),
                json!({"name": get("name"), "group_ids": get("group_ids"), "credentials": creds, "extra": extra}),
            )
        }
        Resource::UserKey => (
            "PUT",
            format!("/api/v1/admin/api-keys/{id}"),
            json!({"group_id": get("group_id")}),
        ),
        Resource::Subscription => {
            return Err(FieldError::coded("action", "drift.subscription", &[]).into())
        }
    })
}

/// The findings, from the listings and the ledger.
pub fn classify(
    ledger: &[LedgerRow],
    accounts: &[Value],
    groups: &[Value],
    channels: &[Value],
    keys: &[Value],
    subs: &[Value],
    now_s: i64,
) -> Vec<DriftFinding> {
    let index: HashMap<&str, HashMap<String, Value>> = HashMap::from([
        ("account", by_id(accounts.to_vec())),
        ("group", by_id(groups.to_vec())),
        ("channel", by_id(channels.to_vec())),
        ("user_key", by_id(keys.to_vec())),
        ("subscription", by_id(subs.to_vec())),
    ]);
    let mut out = Vec::new();
    let finding = |class: DriftClass, r: &LedgerRow, remote_id: &str, seen: Option<&Value>| {
        let name = seen
            .and_then(|v| v.get("name").and_then(Value::as_str))
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        DriftFinding {
            key: format!("{}:{}:{}", class.as_str(), r.kind, remote_id),
            class,
            kind: r.kind.clone(),
            remote_id: remote_id.to_string(),
            ledger_id: Some(r.id),
            batch_id: r.batch_id,
            provider_key: r.provider_key.clone(),
            target: format!("{}{name} (#{remote_id})", r.kind),
            changed: Vec::new(),
            message: String::new(),
            said: None,
            evidence: seen
                .map(|v| serde_json::to_string(&redact(v)).unwrap_or_default())
                .unwrap_or_default(),
            actions: Vec::new(),
            ignored: None,
        }
    };
    // Our accounts on the host by marker and by name, for duplicates.
    let mut by_marker: HashMap<&str, Vec<&Value>> = HashMap::new();
    let mut by_name: HashMap<&str, Vec<&Value>> = HashMap::new();
    for a in accounts {
        if let Some(m) = a
            .pointer(&format!("/extra/{}", super::import::MARKER_KEY))
            .and_then(Value::as_str)
        {
            by_marker.entry(m).or_default().push(a);
        }
        if let Some(n) = a.get("name").and_then(Value::as_str) {
            by_name.entry(n).or_default().push(a);
        }
    }
    let ledger_accounts: HashSet<&str> = ledger
        .iter()
        .filter(|r| r.kind == "account")
        .map(|r| r.remote_id.as_str())
        .collect();
    for r in ledger {
        let Some(res) = Resource::parse(&r.kind) else {
            continue;
        };
        let seen = index.get(r.kind.as_str()).and_then(|m| m.get(&r.remote_id));
        let Some(seen) = seen else {
            let mut f = finding(DriftClass::Missing, r, &r.remote_id, None);
            f.message = format!(
                "{} {} is in the ledger but not on the host",
                r.kind, r.remote_id
            );
            f.actions = vec!["forget".into(), "ignore".into()];
            out.push(f);
            continue;
        };
        let desired: Fields = serde_json::from_str(&r.desired_json).unwrap_or_default();
        if !desired.is_empty() {
            let changed = diff(&desired, &res.fields(seen));
            if !changed.is_empty() {
                let mut f = finding(DriftClass::Modified, r, &r.remote_id, Some(seen));
                f.message = format!("{} field(s) differ from what was applied", changed.len());
                f.changed = changed;
                f.actions = if res == Resource::Subscription {
                    vec!["adopt".into(), "ignore".into()]
                } else {
                    vec!["reapply".into(), "adopt".into(), "ignore".into()]
                };
                out.push(f);
            }
        }
        // A subscription that ran out no longer grants the group.
        if res == Resource::Subscription
            && seen.get("expires_at").is_some_and(|v| !v.is_null())
            && !in_future(seen, "expires_at", now_s)
        {
            let mut f = finding(DriftClass::Unhealthy, r, &r.remote_id, Some(seen));
            f.message = format!("the subscription expired at {}", seen["expires_at"]);
            f.actions = vec!["forget".into(), "ignore".into()];
            out.push(f);
        }
        if res == Resource::Account {
            if let Some(why) = unhealthy(seen, now_s) {
                let mut f = finding(DriftClass::Unhealthy, r, &r.remote_id, Some(seen));
                // Pausing helps only an account the host would schedule again
                // (rate-limited, cooling down); one in error is not scheduled.
                let schedulable = seen.get("schedulable").and_then(Value::as_bool) != Some(false)
                    && seen.get("status").and_then(Value::as_str) == Some("active");
                f.message = why.english();
                f.said = Some(why);
                f.actions = if schedulable {
                    vec!["pause".into(), "ignore".into()]
                } else {
                    vec!["ignore".into()]
                };
                out.push(f);
            }
            // Other host accounts carrying this one's marker or name.
            let name = seen.get("name").and_then(Value::as_str);
            let mut others: Vec<&Value> = by_marker
                .get(r.marker.as_str())
                .cloned()
                .unwrap_or_default();
            others.extend(
                name.and_then(|n| by_name.get(n))
                    .cloned()
                    .unwrap_or_default(),
            );
            let mut seen_ids = HashSet::new();
            for o in others {
                let Some(oid) = id_of(o) else { continue };
                if oid == r.remote_id
                    || ledger_accounts.contains(oid.as_str())
                    || !seen_ids.insert(oid.clone())
                {
                    continue;
                }
                let mut f = finding(DriftClass::Duplicate, r, &oid, Some(o));
                f.message = format!(
                    "a second account for the key of ledger account #{} (same {}); the ledger's one is kept",
                    r.remote_id,
                    if o.pointer(&format!("/extra/{}", super::import::MARKER_KEY)).and_then(Value::as_str) == Some(r.marker.as_str()) { "marker" } else { "name" }
                );
                f.actions = vec!["remove_duplicate".into(), "ignore".into()];
                out.push(f);
            }
        }
    }
    let num = |id: &str| id.parse::<i64>().unwrap_or(i64::MAX);
    out.sort_by(|a, b| {
        (a.class, &a.kind, num(&a.remote_id)).cmp(&(b.class, &b.kind, num(&b.remote_id)))
    });
    out
}
