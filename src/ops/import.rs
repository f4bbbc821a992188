//! Key intake and planning: a pack provider, a host and a batch of keys
//! become a reviewed plan (stored as a `planned` batch with its journal).

use super::{Core, OpError};
use crate::host::HostClient;
use crate::model::{
    AccessMode, Action, FieldError, Pack, PackProvider, Plan, PlannedStep, ProbeReport, Said,
    SkippedKey, StepKind, StepState, StepWindow, Support,
};
use crate::secrets::{mask, random_hex, Secret};
use crate::store::{NewBatch, StepRow};
use serde_json::Value;
use std::collections::HashMap;

/// Most keys one batch takes.
pub const MAX_KEYS: usize = 5000;
/// The `extra` key stamped on accounts the product creates.
pub const MARKER_KEY: &str = "relay_manager_marker";
/// Text marking groups and channels as ours (in their description).
pub const MANAGED_BY: &str = "Managed by Sub2API CN Relay Manager";

/// A key read from the upload, before dedupe against ledger and host.
#[derive(Debug, Clone)]
pub struct IntakeKey {
    pub line: usize,
    pub secret: Secret,
}

/// Reads keys from pasted text or a file: one per line, CSV (the `key` or
/// `api_key` column, else the first), or JSON (strings or objects with
/// `key`/`api_key`). Returns the keys and the lines refused, with why.
pub fn read_keys(text: &str) -> Result<(Vec<IntakeKey>, Vec<SkippedKey>), FieldError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(FieldError::coded("keys", "keys.empty", &[]));
    }
    let mut raw: Vec<(usize, String)> = Vec::new();
    if t.starts_with('[') {
        let v: Value = serde_json::from_str(t)
            .map_err(|e| FieldError::coded("keys", "keys.json", &[("error", &e)]))?;
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            let k = match item {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o
                    .get("key")
                    .or_else(|| o.get("api_key"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            };
            match k {
                Some(k) => raw.push((i + 1, k)),
                None => {
                    return Err(FieldError::coded(
                        "keys",
                        "keys.json_item",
                        &[("n", &(i + 1))],
                    ))
                }
            }
        }
    } else {
        let lines: Vec<&str> = t.lines().collect();
        let header: Vec<String> = lines[0]
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
            .collect();
        let csv = lines[0].contains(',');
        let (col, skip_header) = if csv {
            match header.iter().position(|h| h == "key" || h == "api_key") {
                Some(i) => (i, true),
                None => (0, false),
            }
        } else {
            (0, false)
        };
        for (i, line) in lines.iter().enumerate() {
            if (skip_header && i == 0)
                || line.trim().is_empty()
                || line.trim_start().starts_with('#')
            {
                continue;
            }
            let cell = if csv {
                line.split(',').nth(col).unwrap_or("")
            } else {
                line
            };
            raw.push((i + 1, cell.trim().trim_matches('"').to_string()));
        }
    }
    if raw.len() > MAX_KEYS {
        return Err(FieldError::coded(
            "keys",
            "keys.too_many",
            &[("n", &raw.len()), ("max", &MAX_KEYS)],
        ));
    }
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (line, k) in raw {
        let k = k.trim().to_string();
        let problem = if k.len() < 8 {
            Some("skip.short")
        } else if k.len() > 512 {
            Some("skip.long")
        } else if !k.chars().all(|c| c.is_ascii_graphic()) {
            Some("skip.chars")
        } else {
            None
        };
        match problem {
            Some(p) => skipped.push(SkippedKey::new(mask(&k), line, Said::new(p, &[]))),
            None => keys.push(IntakeKey {
                line,
                secret: Secret::new(k),
            }),
        }
    }
    if keys.is_empty() {
        let why = skipped
            .first()
            .map(|s| s.reason.clone())
            .unwrap_or_default();
        return Err(FieldError::coded(
            "keys",
            "keys.none_usable",
            &[("n", &skipped.len()), ("why", &why)],
        ));
    }
    Ok((keys, skipped))
}

/// The host platform for a provider, and why.
pub fn platform_for(provider: &PackProvider, probe: Option<&ProbeReport>) -> (String, Said) {
    if let Some(native) = &provider.native_platform {
        let cap = if native == "minimax" {
            "minimax_platform"
        } else {
            "cn_platforms"
        };
        let said = |code| Said::new(code, &[("platform", native)]);
        return match probe.map(|p| p.capability(cap)) {
            Some(Support::Yes) => (native.clone(), said("strategy.native")),
            Some(Support::No) => ("openai".into(), said("strategy.no_native")),
            _ => ("openai".into(), said("strategy.unknown")),
        };
    }
    ("openai".into(), Said::new("strategy.openai", &[]))
}

/// A capability a strategy needs from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub capability: &'static str,
    /// What fails without it (`why.*` in [`crate::model::SAID`]).
    pub why: Said,
    /// What the operator can do (`act.*`).
    pub action: Said,
}

impl Need {
    fn new(capability: &'static str, name: &str, platform: &str) -> Need {
        let args: &[(&str, &dyn std::fmt::Display)] = &[("platform", &platform)];
        Need {
            capability,
            why: Said::new(&format!("why.{name}"), args),
            action: Said::new(&format!("act.{name}"), args),
        }
    }
}

/// What the chosen platform strategy and access mode need from the host.
/// Every strategy declares its needs here; the planner turns a need the
/// host's probe says is missing into a blocker (nothing is written).
pub fn strategy_needs(platform: &str, mode: AccessMode, exclusive: bool) -> Vec<Need> {
    let mut needs = Vec::new();
    needs.push(match platform {
        "openai" => Need::new("chat_completions_passthrough", "passthrough", platform),
        "minimax" => Need::new("minimax_platform", "minimax", platform),
        _ => Need::new("cn_platforms", "cn_platforms", platform),
    });
    if exclusive && mode == AccessMode::SelfService {
        needs.push(Need::new(
            "admin_key_binding",
            "admin_key_binding",
            platform,
        ));
    }
    if mode == AccessMode::Subscription {
        needs.push(Need::new("subscriptions", "subscriptions", platform));
    }
    needs
}

/// The needs the probe says are missing (blockers) or cannot tell (warnings).
pub fn check_needs(
    needs: &[Need],
    probe: &ProbeReport,
) -> (Vec<crate::model::PlanBlocker>, Vec<Said>) {
    let mut blockers = Vec::new();
    let mut warnings: Vec<Said> = Vec::new();
    for n in needs {
        let row = probe.capabilities.iter().find(|c| c.key == n.capability);
        let evidence = row
            .map(|c| c.evidence.clone())
            .unwrap_or_else(|| "not probed".into());
        let version = probe
            .version
            .as_deref()
            .map(|v| format!("v{v}"))
            .unwrap_or_default();
        let why = n.why.english();
        match row.map_or(Support::Unknown, |c| c.support) {
            Support::Yes => {}
            Support::No => {
                let said = Said::new(
                    "block.lacks",
                    &[
                        ("version", &version),
                        ("capability", &n.capability),
                        ("evidence", &evidence),
                        ("why", &why),
                    ],
                );
                blockers.push(crate::model::PlanBlocker {
                    capability: n.capability.into(),
                    message: said.english(),
                    action: n.action.english(),
                    said: Some(said),
                    why: Some(n.why.clone()),
                    action_said: Some(n.action.clone()),
                })
            }
            Support::Unknown => warnings.push(Said::new(
                "warn.unknown_need",
                &[
                    ("capability", &n.capability),
                    ("evidence", &evidence),
                    ("why", &why),
                ],
            )),
        }
    }
    (blockers, warnings)
}

/// Field names and pricing rules for this host, from its probe.
pub fn host_shape(provider: &PackProvider, probe: &ProbeReport) -> crate::model::HostShape {
    let yes = |k: &str| probe.capability(k) == Support::Yes;
    let v2 = probe
        .version
        .as_deref()
        .and_then(crate::host::HostVersion::parse)
        .is_some_and(|v| {
            v.is_upstream_numbering() && v.at_least(crate::host::HostVersion(0, 2, 0))
        });
    crate::model::HostShape {
        is_exclusive: provider.group.exclusive,
        allowlist_field: if yes("model_allowlist") {
            Some("model_allowlist".into())
        } else if yes("group_model_list") {
            Some("models_list_config".into())
        } else {
            None
        },
        group_pricing: yes("group_model_pricing"),
        price_upstream_names: yes("model_allowlist") || v2,
    }
}

pub fn group_name(provider_key: &str, provider: &PackProvider, mode: AccessMode) -> String {
    let base = provider
        .group
        .name
        .clone()
        .unwrap_or_else(|| format!("relay-{provider_key}"));
    match mode {
        AccessMode::SelfService => base,
        AccessMode::Subscription => format!("{base}-sub"),
    }
}

/// The short fingerprint used in names and markers.
pub fn fp_short(fp: &str, n: usize) -> String {
    fp.trim_start_matches("fp1:").chars().take(n).collect()
}

pub fn account_name(provider_key: &str, fp: &str) -> String {
    format!("rm-{provider_key}-{}", fp_short(fp, 10))
}

pub fn account_marker(pack_id: &str, provider_key: &str, fp: &str) -> String {
    format!("rm:{pack_id}/{provider_key}:{}", fp_short(fp, 16))
}

/// Looks for a group or channel by exact name: (id, is ours).
pub async fn find_named(
    client: &HostClient,
    list_path: &str,
    name: &str,
) -> Result<Option<(i64, bool)>, crate::host::HostError> {
    let v = client
        .admin_get(&format!(
            "{list_path}?search={}&page_size=100",
            urlencode(name)
        ))
        .await?;
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(items
        .iter()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
        .map(|i| {
            let ours = i
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| d.contains(MANAGED_BY));
            (i.get("id").and_then(Value::as_i64).unwrap_or(0), ours)
        }))
}

/// Finds an account of ours: by its marker first, then (since another
/// tool's update can wipe `extra`, reference §3.4) by its deterministic
/// name when exactly one live account has it. Returns its representation.
pub async fn find_account(
    client: &HostClient,
    name: &str,
    marker: &str,
) -> Result<Option<Value>, crate::host::HostError> {
    let v = client
        .admin_get(&format!(
            "/api/v1/admin/accounts?search={}&page_size=100",
            urlencode(name)
        ))
        .await?;
    let items: Vec<&Value> = v
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if let Some(a) = items.iter().find(|a| {
        a.pointer(&format!("/extra/{MARKER_KEY}"))
            .and_then(Value::as_str)
            == Some(marker)
    }) {
        return Ok(Some((*a).clone()));
    }
    let named: Vec<&&Value> = items
        .iter()
        .filter(|a| a.get("name").and_then(Value::as_str) == Some(name))
        .collect();
    Ok(match named.as_slice() {
        [one] => Some((**one).clone()),
        _ => None,
    })
}

pub use crate::model::urlencode;

/// What the operator asked for on the new-batch page.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    pub host_id: i64,
    pub pack_version_id: i64,
    pub provider_key: String,
    pub mode: Option<AccessMode>,
    pub keys_text: String,
}

impl Core {
    /// Stores the built-in packs (once per content hash).
    pub async fn install_builtin_packs(&self) -> Result<(), OpError> {
        for (_, text) in crate::pack::builtin() {
            let p = crate::pack::parse(text, None).map_err(|e| {
                OpError::Invalid(FieldError::new(
                    "builtin pack",
                    e.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join("; "),
                ))
            })?;
            let json = serde_json::to_string(&p.pack).expect("packs serialise");
            self.store
                .insert_pack_version(
                    "system",
                    &p.pack.id,
                    &p.pack.name,
                    &p.hash,
                    p.format.as_str(),
                    text,
                    &json,
                    true,
                )
                .await?;
        }
        Ok(())
    }

    /// Loads a stored pack version.
    pub async fn pack(
        &self,
        version_id: i64,
    ) -> Result<(crate::store::PackVersionRow, Pack), OpError> {
        let row = self
            .store
            .pack_version(version_id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("pack version {version_id}")))?;
        let pack: Pack = serde_json::from_str(&row.pack_json)
            .map_err(|e| OpError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
        Ok((row, pack))
    }

    /// Validates the request, reads the keys, looks at the ledger and the
    /// host, and stores the plan as a `planned` batch. Nothing is written
    /// to the host.
    #[tracing::instrument(skip(self, req), fields(host_id = req.host_id, provider = %req.provider_key))]
    pub async fn plan_batch(&self, actor: &str, req: &BatchRequest) -> Result<i64, OpError> {
        let host = self.host_row(req.host_id).await?;
        let (pv, pack) = self.pack(req.pack_version_id).await?;
        let provider = pack.providers.get(&req.provider_key).ok_or_else(|| {
            FieldError::coded(
                "provider",
                "plan.provider_missing",
                &[
                    ("provider", &req.provider_key),
                    ("pack", &pack.id),
                    (
                        "has",
                        &pack
                            .providers
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                ],
            )
        })?;
        let mode = req.mode.unwrap_or(provider.access.mode);
        let (keys, mut skipped) = read_keys(&req.keys_text)?;
        // Hosts upgrade (and regress) under us: every plan probes again, so
        // the strategy, the field names and the version pinned in the
        // evidence are today's. The group, the channel and our accounts on
        // the host are read while it is probed (the channel only when the
        // last probe found channels; else after this one, if it does).
        let gname = group_name(&req.provider_key, provider, mode);
        let (client, secrets) = self.host_client(&host)?;
        let channels_before = self
            .store
            .latest_probe(host.id)
            .await?
            .is_some_and(|p| p.report.capability("channels") != Support::No);
        let (probe, group, channel, on_host) = futures_util::future::join4(
            self.probe_host(actor, host.id),
            find_named(&client, "/api/v1/admin/groups", &gname),
            async {
                match channels_before {
                    true => Some(find_named(&client, "/api/v1/admin/channels", &gname).await),
                    false => None,
                }
            },
            // Listed once by name prefix (a page per 1,000), not searched per key.
            super::apply::accounts_on_host(&client, &format!("rm-{}-", req.provider_key)),
        )
        .await;
        let probe = probe?.report;
        if probe.status == crate::model::ProbeStatus::Failing {
            return Err(FieldError::coded(
                "host",
                "plan.probe_failed",
                &[("headline_en", &probe.headline())],
            )
            .into());
        }
        if secrets.probe_user.is_none() {
            return Err(FieldError::coded("host", "plan.no_probe_user", &[]).into());
        }
        // The access prerequisites, in plain words, before anything is planned.
        match &probe.probe_user {
            crate::model::ProbeUserState::Blocked { reason } => {
                return Err(FieldError::coded(
                    "host",
                    "plan.probe_user_blocked",
                    &[("reason", reason)],
                )
                .into())
            }
            crate::model::ProbeUserState::Failed { code, .. } => {
                return Err(
                    FieldError::coded("host", "plan.probe_user_refused", &[("code", code)]).into(),
                )
            }
            _ => {}
        }
        if mode == AccessMode::Subscription && probe.capability("subscriptions") == Support::No {
            return Err(FieldError::coded("mode", "plan.no_subscriptions", &[]).into());
        }
        let (platform, strategy) = platform_for(provider, Some(&probe));
        let (blockers, unknown_needs) = check_needs(
            &strategy_needs(&platform, mode, provider.group.exclusive),
            &probe,
        );
        let shape = host_shape(provider, &probe);
        let host_err = |e: crate::host::HostError| {
            FieldError::coded("host", "plan.host_unreadable", &[("error", &e)])
        };
        let mut warnings = unknown_needs;
        let mut steps = Vec::new();
        let mut seq = 0i64;
        let mut push = |kind, action, target: String, reason: String, remote_id, fingerprint| {
            seq += 1;
            steps.push(PlannedStep {
                seq,
                kind,
                action,
                target,
                reason,
                remote_id,
                fingerprint,
            });
        };
        let channel = match (probe.capability("channels") != Support::No, channel) {
            (false, _) => None,
            (true, Some(c)) => Some(c),
            (true, None) => Some(find_named(&client, "/api/v1/admin/channels", &gname).await),
        }
        .transpose();
        // Group.
        match group.map_err(host_err)? {
            Some((id, true)) => push(
                StepKind::Group,
                Action::Reuse,
                format!("group {gname}"),
                "exists and is managed by this product".into(),
                Some(id),
                None,
            ),
            Some((_, false)) => {
                return Err(
                    FieldError::coded("provider", "plan.group_taken", &[("name", &gname)]).into(),
                )
            }
            None => push(
                StepKind::Group,
                Action::Create,
                format!("group {gname}"),
                format!(
                    "{} group on platform {platform}",
                    if mode == AccessMode::Subscription {
                        "subscription"
                    } else {
                        "standard"
                    }
                ),
                None,
                None,
            ),
        }
        // Channel.
        if let Some(channel) = channel.map_err(host_err)? {
            match channel {
                Some((id, true)) => push(
                    StepKind::Channel,
                    Action::Update,
                    format!("channel {gname}"),
                    "exists: pricing and mapping are brought in line with the pack".into(),
                    Some(id),
                    None,
                ),
                Some((_, false)) => {
                    return Err(FieldError::coded(
                        "provider",
                        "plan.channel_taken",
                        &[("name", &gname)],
                    )
                    .into())
                }
                None => push(
                    StepKind::Channel,
                    Action::Create,
                    format!("channel {gname}"),
                    format!("pricing for {} models on {platform}", provider.models.len()),
                    None,
                    None,
                ),
            }
        } else {
            warnings.push(Said::new("warn.no_channels", &[]));
        }
        // Accounts: one per key, deduplicated.
        let on_host: std::collections::HashMap<String, i64> = on_host
            .map_err(host_err)?
            .into_iter()
            .filter_map(|(m, a)| Some((m, a.get("id")?.as_i64()?)))
            .collect();
        let fps: Vec<String> = keys
            .iter()
            .map(|k| self.cipher.fingerprint(&k.secret))
            .collect();
        let in_ledger = self
            .store
            .ledger_accounts(host.id, &req.provider_key, &fps)
            .await?;
        let mut seen = std::collections::HashSet::new();
        let mut batch_keys = Vec::new();
        for (k, fp) in keys.iter().zip(fps) {
            let masked = k.secret.masked();
            if !seen.insert(fp.clone()) {
                skipped.push(SkippedKey::new(
                    masked,
                    k.line,
                    Said::new("skip.duplicate", &[]),
                ));
                continue;
            }
            if let Some((batch_id, remote)) = in_ledger.get(&fp) {
                skipped.push(SkippedKey::new(
                    masked,
                    k.line,
                    Said::new(
                        "skip.imported",
                        &[("batch", &batch_id), ("account", &remote)],
                    ),
                ));
                continue;
            }
            let marker = account_marker(&pack.id, &req.provider_key, &fp);
            if let Some(id) = on_host.get(&marker) {
                skipped.push(SkippedKey::new(
                    masked,
                    k.line,
                    Said::new("skip.on_host", &[("account", id)]),
                ));
                continue;
            }
            push(
                StepKind::Account,
                Action::Create,
                format!("account {masked}"),
                format!("{} on {platform}", account_name(&req.provider_key, &fp)),
                None,
                Some(fp.clone()),
            );
            batch_keys.push((k.line as i64, fp, k.secret.clone(), masked));
        }
        // Access.
        match mode {
            AccessMode::SelfService => push(
                StepKind::Balance,
                Action::Check,
                "probe user balance".into(),
                format!("top up to ${:.2} if lower", provider.access.balance_usd),
                None,
                None,
            ),
            AccessMode::Subscription => push(
                StepKind::Subscription,
                Action::Create,
                "probe user subscription".into(),
                format!("{} days on {gname}", provider.group.validity_days),
                None,
                None,
            ),
        }
        push(
            StepKind::UserKey,
            Action::Create,
            format!("probe user key rm-{gname}"),
            format!("bound to {gname}"),
            None,
            None,
        );
        for (pos, fp, _, masked) in &batch_keys {
            let _ = pos;
            push(
                StepKind::AccountTest,
                Action::Check,
                format!("account test {masked}"),
                format!("{} through the host", provider.smoke_model),
                None,
                Some(fp.clone()),
            );
        }
        push(
            StepKind::Readiness,
            Action::Check,
            "readiness gate".into(),
            format!(
                "/v1/models lists {} and a 1-token completion succeeds",
                provider.smoke_model
            ),
            None,
            None,
        );
        if batch_keys.is_empty() {
            warnings.push(Said::new("warn.all_skipped", &[]));
        }
        let prices: Vec<(String, f64, f64)> = provider
            .models
            .iter()
            .map(|(m, pm)| {
                (
                    m.clone(),
                    pack.usd_per_token(pm.price.input, pm.price.currency)
                        .unwrap_or(0.0),
                    pack.usd_per_token(pm.price.output, pm.price.currency)
                        .unwrap_or(0.0),
                )
            })
            .collect();
        let plan = Plan {
            host_id: host.id,
            host_name: host.name.clone(),
            host_version: probe.version.clone(),
            pack_id: pack.id.clone(),
            pack_hash: pv.hash.clone(),
            provider_key: req.provider_key.clone(),
            mode,
            platform,
            strategy_reason: strategy.english(),
            strategy: Some(strategy),
            group_name: gname.clone(),
            channel_name: gname.clone(),
            smoke_model: provider.smoke_model.clone(),
            models: provider.models.keys().cloned().collect(),
            prices,
            exchange_rate: pack.exchange_rate.as_ref().map(|x| x.cny_per_usd),
            steps: steps.clone(),
            // In the order of the upload, whatever found them.
            skipped: {
                let mut s = skipped;
                s.sort_by_key(|k| k.line);
                s
            },
            warnings: warnings.iter().map(Said::english).collect(),
            warning_codes: warnings,
            blockers,
            shape,
        };
        let uid = random_hex(8);
        let new = NewBatch {
            uid: uid.clone(),
            host_id: host.id,
            pack_version_id: pv.id,
            provider_key: req.provider_key.clone(),
            access_mode: mode.as_str().into(),
            host_version: probe.version.clone(),
            plan_json: serde_json::to_string(&plan).expect("plans serialise"),
            keys: batch_keys
                .iter()
                .map(|(pos, fp, secret, masked)| {
                    (
                        *pos,
                        fp.clone(),
                        self.cipher.seal(secret, &super::aad::batch_key(&uid, fp)),
                        masked.clone(),
                    )
                })
                .collect(),
            steps: steps
                .iter()
                .map(|s| StepRow {
                    seq: s.seq,
                    run_id: 0,
                    kind: s.kind,
                    action: s.action,
                    target: s.target.clone(),
                    fingerprint: s.fingerprint.clone(),
                    idempotency_key: format!("rm-{uid}-{}", s.seq),
                    marker: match (s.kind, &s.fingerprint) {
                        (StepKind::Account, Some(fp)) => {
                            account_marker(&pack.id, &req.provider_key, fp)
                        }
                        _ => format!("rm:{}:{}", s.kind.as_str(), gname),
                    },
                    state: if s.action == Action::Reuse {
                        StepState::Done
                    } else {
                        StepState::Pending
                    },
                    request_json: String::new(),
                    response_json: String::new(),
                    remote_id: s.remote_id.map(|i| i.to_string()),
                    error: String::new(),
                    error_kind: String::new(),
                    chunk_key: None,
                    started_at_ms: None,
                    finished_at_ms: None,
                })
                .collect(),
        };
        Ok(self.store.insert_batch(actor, &new).await?)
    }
}

/// Which steps a batch view carries.
enum Steps {
    /// Every step with its evidence (evidence bundles, rollback, tests).
    All,
    /// One page of the journal for the batch page.
    Window(StepWindow),
}

/// Steps on one page of a batch's timeline.
pub const STEP_PAGE: u32 = 100;

/// Skipped keys a batch page lists (the evidence bundle has all of them).
pub const SKIPPED_SHOWN: usize = 200;
/// Failed checks of each class a batch page shows (the rest a link away).
pub const DIAGNOSIS_SHOWN: usize = 3;
/// Failed checks of one class per page when the page is filtered to it.
pub const DIAGNOSIS_PAGE: usize = 50;

impl Core {
    /// A batch with its plan and its whole journal with evidence, for
    /// evidence bundles and operations. Pages use [`Core::batch_page`].
    pub async fn batch_view(&self, id: i64) -> Result<crate::model::BatchView, OpError> {
        let b = self.batch_row(id).await?;
        let mut v = self.to_batch_view(b, Steps::All).await?;
        v.skipped_total = v.plan.skipped.len();
        Ok(v)
    }

    /// A batch as its page shows it: the plan without its per-key steps,
    /// the counts of every step, and one page of the journal (`STEP_PAGE`
    /// steps after seq `after`, of one state when given) whose per-key
    /// steps come without evidence ([`Core::batch_step`] has it).
    pub async fn batch_page(
        &self,
        id: i64,
        after: i64,
        state: Option<StepState>,
    ) -> Result<crate::model::BatchView, OpError> {
        self.batch_page_diag(id, after, state, None).await
    }

    /// [`Core::batch_page`] with the diagnosis grouped by class: a few of
    /// each class, or one page of the `diag` class after its seq cursor.
    pub async fn batch_page_diag(
        &self,
        id: i64,
        after: i64,
        state: Option<StepState>,
        diag: Option<(crate::model::FailureClass, i64)>,
    ) -> Result<crate::model::BatchView, OpError> {
        let b = self
            .store
            .batch_head(id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {id}")))?;
        let window = StepWindow {
            after: after.max(0),
            state,
            limit: STEP_PAGE,
            next_after: None,
        };
        let mut v = self.to_batch_view(b, Steps::Window(window)).await?;
        v.plan.steps.clear();
        v.skipped_total = v.plan.skipped.len();
        v.plan.skipped.truncate(SKIPPED_SHOWN);
        if let Some(d) = v.diagnosis.as_mut() {
            v.diagnosis_groups = crate::model::group_diagnosis(
                &d.items,
                diag.map(|x| x.0),
                diag.map(|x| x.1).unwrap_or(0),
                DIAGNOSIS_SHOWN,
                DIAGNOSIS_PAGE,
            );
            d.items.truncate(SKIPPED_SHOWN);
        }
        Ok(v)
    }

    /// One step of a batch's journal with its evidence.
    pub async fn batch_step(&self, id: i64, seq: i64) -> Result<crate::model::StepView, OpError> {
        self.store
            .step(id, seq)
            .await?
            .map(step_view)
            .ok_or_else(|| OpError::NotFound(format!("step {seq} of batch {id}")))
    }

    /// What changed in a batch since `since_ms`: its status, its counts and
    /// the steps that moved (a running batch's page polls this).
    pub async fn batch_progress(
        &self,
        id: i64,
        since_ms: i64,
    ) -> Result<crate::model::BatchProgress, OpError> {
        use crate::model::{AccessStatus, BatchStatus, StateCounts};
        let at_ms = crate::store::now_ms();
        let b = self.batch_row(id).await?;
        let mut steps = StateCounts::default();
        for (_, _, state, n) in self.store.step_counts(id).await? {
            steps.add(StepState::parse(&state), n);
        }
        let changed = self
            .store
            .steps_changed(id, since_ms, 20)
            .await?
            .into_iter()
            .map(step_view)
            .collect();
        let waiting = self.store.waiting_note(id).await?;
        Ok(crate::model::BatchProgress {
            status: BatchStatus::parse(&b.status),
            access_status: AccessStatus::parse(&b.access_status),
            steps,
            changed,
            at_ms,
            waiting,
        })
    }

    async fn batch_row(&self, id: i64) -> Result<crate::store::BatchRow, OpError> {
        self.store
            .batch(id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {id}")))
    }

    /// A batch without its plan's per-key steps; 404 when there is none.
    pub(super) async fn batch_head_row(&self, id: i64) -> Result<crate::store::BatchRow, OpError> {
        self.store
            .batch_head(id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("batch {id}")))
    }

    /// A page of the batch list, newest first: summaries only (counts, not
    /// plans or journals), `limit` rows older than `before`.
    pub async fn list_batches(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<crate::model::BatchList, OpError> {
        self.list_batches_where(&Default::default(), before, limit)
            .await
    }

    /// As [`Core::list_batches`], those that match `filter`.
    pub async fn list_batches_where(
        &self,
        filter: &crate::model::BatchFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<crate::model::BatchList, OpError> {
        use crate::model::{AccessStatus, BatchStatus, BatchSummary, StateCounts};
        let limit = limit.clamp(1, 200);
        if filter.provider.len() > 100 {
            return Err(
                crate::model::FieldError::coded("provider", "filter.provider_long", &[]).into(),
            );
        }
        if !filter.status.is_empty() && BatchStatus::parse(&filter.status).as_str() != filter.status
        {
            return Err(crate::model::FieldError::coded(
                "status",
                "filter.status",
                &[("status", &format!("{:?}", filter.status))],
            )
            .into());
        }
        if !filter.review.is_empty() && crate::model::ReviewState::parse(&filter.review).is_none() {
            return Err(crate::model::FieldError::coded(
                "review",
                "filter.review",
                &[("review", &format!("{:?}", filter.review))],
            )
            .into());
        }
        let mut rows = self
            .store
            .batch_summaries(filter, before, limit + 1)
            .await?;
        let next_before = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id).unwrap_or(0)
        });
        let drift = self.store.drift_open_by_batch().await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let counts: std::collections::BTreeMap<
                String,
                std::collections::BTreeMap<String, i64>,
            > = serde_json::from_str(&r.step_counts).map_err(|e| {
                OpError::Store(crate::store::StoreError::Corrupt(format!(
                    "step counts of batch {}: {e}",
                    r.id
                )))
            })?;
            let (mut steps, mut accounts, mut tests) = (
                StateCounts::default(),
                StateCounts::default(),
                StateCounts::default(),
            );
            for (kind, by_state) in &counts {
                let mut c = StateCounts::default();
                for (state, n) in by_state {
                    c.add(StepState::parse(state), *n);
                }
                steps.merge(&c);
                match StepKind::parse(kind) {
                    Some(StepKind::Account) => accounts = c,
                    Some(StepKind::AccountTest) => tests = c,
                    _ => {}
                }
            }
            let review = match r.review_state.as_deref() {
                Some(s) => crate::model::ReviewState::parse(s),
                None => r
                    .reviewable
                    .then_some(crate::model::ReviewState::NotReviewed),
            };
            items.push(BatchSummary {
                review,
                drift_open: drift
                    .get(&r.host_id)
                    .map(|m| m.get(&r.id).copied().unwrap_or(0)),
                id: r.id,
                uid: r.uid,
                host_id: r.host_id,
                host_name: r.host_name,
                pack_id: r.pack_id,
                provider_key: r.provider_key,
                mode: AccessMode::parse(&r.access_mode).unwrap_or(AccessMode::SelfService),
                status: BatchStatus::parse(&r.status),
                access_status: AccessStatus::parse(&r.access_status),
                created_by: r.created_by,
                created_at_ms: r.created_at_ms,
                key_count: r.key_count,
                keys: crate::model::KeyOutcomes::parse(&r.key_outcomes),
                steps,
                accounts,
                tests,
            });
        }
        Ok(crate::model::BatchList {
            filter: filter.clone(),
            items,
            next_before,
            before,
        })
    }

    async fn to_batch_view(
        &self,
        b: crate::store::BatchRow,
        wanted: Steps,
    ) -> Result<crate::model::BatchView, OpError> {
        use crate::model::{AccessStatus, BatchStatus, BatchView, KindCount, StateCounts};
        let plan: Plan = serde_json::from_str(&b.plan_json)
            .map_err(|e| OpError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
        let (steps, window) = match wanted {
            Steps::All => (
                self.store
                    .steps(b.id)
                    .await?
                    .into_iter()
                    .map(step_view)
                    .collect(),
                None,
            ),
            Steps::Window(mut w) => {
                let mut rows = self
                    .store
                    .step_window(b.id, w.after, w.state.map(StepState::as_str), w.limit + 1)
                    .await?;
                if rows.len() > w.limit as usize {
                    rows.truncate(w.limit as usize);
                    w.next_after = rows.last().map(|s| s.seq);
                }
                (rows.into_iter().map(step_view).collect(), Some(w))
            }
        };
        let mut counts: Vec<KindCount> = Vec::new();
        {
            for (run_id, kind, state, n) in self.store.step_counts(b.id).await? {
                let Some(kind) = StepKind::parse(&kind) else {
                    continue;
                };
                let i = match counts
                    .iter()
                    .position(|c| c.run_id == run_id && c.kind == kind)
                {
                    Some(i) => i,
                    None => {
                        counts.push(KindCount {
                            run_id,
                            kind,
                            counts: StateCounts::default(),
                        });
                        counts.len() - 1
                    }
                };
                counts[i].counts.add(StepState::parse(&state), n);
            }
        }
        let runs = self
            .store
            .runs(b.id)
            .await?
            .into_iter()
            .filter_map(|r| {
                let replaces = super::replace::replacement_of(&r).map(|v| {
                    let m = |k: &str| {
                        v.get(k)
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    (m("old"), m("new"))
                });
                Some(crate::model::RunView {
                    id: r.id,
                    kind: crate::model::RunKind::parse(&r.kind)?,
                    status: r.status,
                    actor: r.actor,
                    created_at_ms: r.created_at_ms,
                    finished_at_ms: r.finished_at_ms,
                    replaces,
                    lease_until_ms: r.lease_until_ms,
                })
            })
            .collect();
        let (failed_live_accounts, failed_paused_accounts) =
            self.store.failed_live_accounts(b.id).await?;
        let diagnosis = match self.store.latest_diagnosis(b.id).await? {
            Some(j) => serde_json::from_str(&j).ok(),
            None => None,
        };
        Ok(BatchView {
            id: b.id,
            uid: b.uid,
            host_id: b.host_id,
            host_name: plan.host_name.clone(),
            pack_id: plan.pack_id.clone(),
            provider_key: b.provider_key,
            mode: AccessMode::parse(&b.access_mode).unwrap_or(AccessMode::SelfService),
            status: BatchStatus::parse(&b.status),
            access_status: AccessStatus::parse(&b.access_status),
            host_version: b.host_version,
            product_version: b.product_version,
            created_by: b.created_by,
            created_at_ms: b.created_at_ms,
            updated_at_ms: b.updated_at_ms,
            key_count: b.key_count,
            keys: crate::model::KeyOutcomes::parse(&b.key_outcomes),
            plan,
            runs,
            failed_live_accounts,
            failed_paused_accounts,
            drift_open: None,
            steps,
            diagnosis,
            diagnosis_groups: Vec::new(),
            skipped_total: 0,
            counts,
            window,
        })
    }
}

fn step_view(s: crate::store::StepRow) -> crate::model::StepView {
    crate::model::StepView {
        seq: s.seq,
        run_id: s.run_id,
        error_kind: crate::model::StepErrorKind::parse(&s.error_kind),
        kind: s.kind,
        action: s.action,
        target: s.target,
        state: s.state,
        idempotency_key: s.idempotency_key,
        marker: s.marker,
        request: s.request_json,
        response: s.response_json,
        remote_id: s.remote_id,
        error: s.error,
        started_at_ms: s.started_at_ms,
        finished_at_ms: s.finished_at_ms,
    }
}

impl Core {
    /// Every stored pack version, newest first within each pack.
    pub async fn pack_versions(&self) -> Result<Vec<crate::model::PackVersionView>, OpError> {
        let rows = self.store.pack_versions().await?;
        // Rows come per pack, newest first: a version's number is how many
        // of its pack's versions are as old as it or older.
        let mut per_pack: HashMap<String, u32> = HashMap::new();
        for r in &rows {
            *per_pack.entry(r.pack_id.clone()).or_default() += 1;
        }
        let mut out = Vec::new();
        for r in rows {
            let left = per_pack.get_mut(&r.pack_id).expect("counted above");
            let number = *left;
            *left -= 1;
            let pack: Pack = serde_json::from_str(&r.pack_json)
                .map_err(|e| OpError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
            out.push(crate::model::PackVersionView {
                id: r.id,
                pack_id: r.pack_id,
                name: r.name,
                hash: r.hash,
                format: r.format,
                builtin: r.builtin,
                created_at_ms: r.created_at_ms,
                created_by: r.created_by,
                providers: pack.providers.keys().cloned().collect(),
                number,
            });
        }
        Ok(out)
    }

    /// One pack version as its page shows it, with the changes from
    /// another version of the same pack when `diff` names one (another
    /// pack's version is ignored, not compared).
    pub async fn pack_detail(
        &self,
        id: i64,
        diff: Option<i64>,
    ) -> Result<crate::model::PackDetail, OpError> {
        let all = self.pack_versions().await?;
        let version = all
            .iter()
            .find(|v| v.id == id)
            .cloned()
            .ok_or_else(|| OpError::NotFound(format!("pack version {id}")))?;
        let (row, pack) = self.pack(id).await?;
        let others: Vec<_> = all
            .into_iter()
            .filter(|v| v.pack_id == version.pack_id && v.id != id)
            .collect();
        let diff_against = diff.filter(|d| others.iter().any(|o| o.id == *d));
        let changes = match diff_against {
            Some(d) => crate::pack::diff(&self.pack(d).await?.1, &pack),
            None => Vec::new(),
        };
        Ok(crate::model::PackDetail {
            version,
            pack,
            source: row.source,
            others,
            diff_against,
            diff: changes,
        })
    }

    /// Validates and stores an uploaded pack. `Err` lists every problem.
    pub async fn upload_pack(
        &self,
        actor: &str,
        source: &str,
    ) -> Result<(i64, bool), Result<Vec<crate::model::PackIssue>, OpError>> {
        let parsed = crate::pack::parse(source, None).map_err(Ok)?;
        let json = serde_json::to_string(&parsed.pack).expect("packs serialise");
        self.store
            .insert_pack_version(
                actor,
                &parsed.pack.id,
                &parsed.pack.name,
                &parsed.hash,
                parsed.format.as_str(),
                source,
                &json,
                false,
            )
            .await
            .map_err(|e| Err(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_need_says_why_and_what_to_do_from_a_template() {
        let modes = [AccessMode::SelfService, AccessMode::Subscription];
        for platform in ["openai", "minimax", "deepseek", "kimi"] {
            for mode in modes {
                for exclusive in [false, true] {
                    for n in strategy_needs(platform, mode, exclusive) {
                        for s in [&n.why, &n.action] {
                            let english = s.english();
                            assert_ne!(english, s.code, "{} has no template", s.code);
                            assert!(!english.contains('{'), "{english}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn keys_are_read_from_lines_csv_and_json() {
        let (k, s) =
            read_keys("sk-aaaaaaaaaaaa\n\n# comment\nsk-bbbbbbbbbbbb\nbad key here\nx").unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].line, 5);
        let (k, _) =
            read_keys("name,api_key\nmain,sk-cccccccccccc\nbackup,\"sk-dddddddddddd\"").unwrap();
        assert_eq!(
            k.iter()
                .map(|k| k.secret.expose().to_string())
                .collect::<Vec<_>>(),
            ["sk-cccccccccccc", "sk-dddddddddddd"]
        );
        let (k, _) = read_keys(r#"["sk-eeeeeeeeeeee", {"key": "sk-ffffffffffff"}]"#).unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(read_keys("  ").unwrap_err().field, "keys");
        assert!(read_keys("[1, 2]")
            .unwrap_err()
            .message
            .contains("JSON item 1"));
        assert!(read_keys("short")
            .unwrap_err()
            .message
            .contains("no usable key"));
    }
}
