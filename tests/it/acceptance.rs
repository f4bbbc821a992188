//! The acceptance suite: probe → import in both access modes → ready →
//! re-run (no new accounts) → rollback → nothing of ours left on the host,
//! with its own evidence written out. It runs here against the fake host
//! (so the suite itself is proven), and against a real staging host when
//! `RELAY_ACCEPT_HOST` and its companions are set (see the README); without
//! them that run is skipped and says so.
//!
//! It writes to the host it is given: use a staging host.

use crate::core;
use provisioning_core::model::{AccessMode, AccessStatus, BatchStatus, HostInput, ProbeStatus};
use provisioning_core::ops::{ApplyOptions, BatchRequest};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// What the suite needs to know about the host and the provider.
struct Target {
    host_url: String,
    admin_api_key: String,
    admin_email: String,
    admin_password: String,
    probe_email: String,
    probe_password: String,
    /// The provider's OpenAI-compatible base URL and the host's native
    /// platform for it (`deepseek`, `kimi`, `zhipu`; `openai` otherwise).
    provider_base_url: String,
    native_platform: Option<String>,
    smoke_model: String,
    /// Upstream keys, one per line; half go to each access mode.
    keys: Vec<String>,
    models_cache_wait: Duration,
    out_dir: PathBuf,
}

fn pack_text(t: &Target) -> String {
    let native = t
        .native_platform
        .as_ref()
        .map(|p| format!("    native_platform: {p}\n"))
        .unwrap_or_default();
    format!(
        "schema: 1
id: acceptance
name: Acceptance
providers:
  accept:
    display_name: Acceptance provider
{native}    base_url: {base}
    smoke_model: {model}
    models:
      {model}:
        price: {{ currency: USD, input: 0.27, output: 1.10, source: acceptance, verified: 2026-12-01 }}
    group: {{ name: rm-acceptance }}
    access:
      mode: self_service
",
        base = t.provider_base_url,
        model = t.smoke_model
    )
}

/// One step of the suite and what it saw, for the evidence file.
fn note(log: &mut Vec<Value>, step: &str, detail: Value) {
    let _ = writeln!(std::io::stderr(), "acceptance: {step}: {detail}");
    log.push(json!({"step": step, "detail": detail}));
}

/// Runs the whole suite; panics with the step that failed.
async fn run(t: &Target) -> Vec<Value> {
    let mut log = Vec::new();
    let ctx = core().await;
    let c = &ctx.core;
    let (auth_kind, key) = if t.admin_api_key.is_empty() {
        ("password", String::new())
    } else {
        ("api_key", t.admin_api_key.clone())
    };
    let host = c
        .create_host(
            "acceptance",
            &HostInput {
                name: "acceptance".into(),
                base_url: t.host_url.clone(),
                auth_kind: auth_kind.into(),
                admin_api_key: key,
                admin_email: t.admin_email.clone(),
                admin_password: t.admin_password.clone(),
                probe_user_email: t.probe_email.clone(),
                probe_user_password: t.probe_password.clone(),
            },
        )
        .await
        .expect("register the host");
    let probe = c
        .probe_host("acceptance", host.id)
        .await
        .expect("probe")
        .report;
    note(
        &mut log,
        "probe",
        json!({"version": probe.version, "status": probe.status.as_str(), "headline": probe.headline(),
               "capabilities": probe.capabilities.iter().map(|x| (x.key.clone(), x.support.as_str())).collect::<Vec<_>>()}),
    );
    assert_ne!(
        probe.status,
        ProbeStatus::Failing,
        "probe: {:?}",
        probe.findings
    );
    let parsed = provisioning_core::pack::parse(&pack_text(t), None).expect("the acceptance pack");
    let (pack_version, _) = c
        .store
        .insert_pack_version(
            "acceptance",
            "acceptance",
            "Acceptance",
            &parsed.hash,
            "yaml",
            &pack_text(t),
            &serde_json::to_string(&parsed.pack).unwrap(),
            false,
        )
        .await
        .unwrap();
    let opts = || ApplyOptions {
        models_cache_wait: t.models_cache_wait,
        ..Default::default()
    };
    let half = t.keys.len().div_ceil(2);
    let mut batches = Vec::new();
    for (mode, keys) in [
        (AccessMode::SelfService, &t.keys[..half]),
        (AccessMode::Subscription, &t.keys[half..]),
    ] {
        if keys.is_empty() {
            continue;
        }
        let id = c
            .plan_batch(
                "acceptance",
                &BatchRequest {
                    host_id: host.id,
                    pack_version_id: pack_version,
                    provider_key: "accept".into(),
                    mode: Some(mode),
                    keys_text: keys.join("\n"),
                },
            )
            .await
            .expect("plan");
        let plan = c.batch_view(id).await.unwrap().plan;
        assert!(
            plan.blockers.is_empty(),
            "{mode:?}: blocked: {:?}",
            plan.blockers
        );
        let status = c
            .apply_batch("acceptance", id, opts())
            .await
            .expect("apply");
        let v = c.batch_view(id).await.unwrap();
        note(
            &mut log,
            &format!("apply {}", mode.as_str()),
            json!({"batch": id, "platform": plan.platform, "status": status.as_str(), "access": v.access_status.as_str()}),
        );
        assert_eq!(status, BatchStatus::Succeeded, "{mode:?}: {:#?}", v.steps);
        assert!(matches!(
            v.access_status,
            AccessStatus::SelfServiceReady | AccessStatus::SubscriptionReady
        ));
        // A re-run converges: no new account, readiness proven again.
        let before = c.store.live_ledger(host.id).await.unwrap().len();
        let again = c
            .apply_batch("acceptance", id, opts())
            .await
            .expect("re-run");
        let after = c.store.live_ledger(host.id).await.unwrap().len();
        note(
            &mut log,
            &format!("re-run {}", mode.as_str()),
            json!({"status": again.as_str(), "ledger_before": before, "ledger_after": after}),
        );
        assert_eq!(
            (again, after),
            (BatchStatus::Succeeded, before),
            "a re-run creates nothing"
        );
        let bundle = c.export_bundle("acceptance", id).await.expect("evidence");
        for k in keys {
            assert!(
                !bundle.json.contains(k.as_str()),
                "a provider key leaked into the evidence"
            );
        }
        std::fs::create_dir_all(&t.out_dir).unwrap();
        std::fs::write(t.out_dir.join(format!("batch-{id}.json")), &bundle.json).unwrap();
        batches.push(id);
    }
    // Roll everything back, newest first, and look at the host.
    for id in batches.iter().rev() {
        let status = c
            .rollback_batch("acceptance", *id, false)
            .await
            .expect("rollback");
        note(
            &mut log,
            "rollback",
            json!({"batch": id, "status": status.as_str()}),
        );
        assert_eq!(
            status,
            BatchStatus::RolledBack,
            "{:#?}",
            c.batch_view(*id).await.unwrap().steps
        );
    }
    let live = c.store.live_ledger(host.id).await.unwrap();
    let report = c
        .drift_check("acceptance", host.id)
        .await
        .expect("drift check");
    note(
        &mut log,
        "host clean",
        json!({"live_ledger": live.len(), "findings": report.findings.len(), "unmanaged": report.unmanaged}),
    );
    assert!(live.is_empty(), "objects of ours left: {live:?}");
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    std::fs::write(
        t.out_dir.join("acceptance.json"),
        serde_json::to_string_pretty(&json!({"host": t.host_url, "steps": log})).unwrap(),
    )
    .unwrap();
    log
}

#[tokio::test]
async fn the_acceptance_suite_passes_against_the_fake_host() {
    use fakehost::{FakeHost, FakeHostConfig, FakeUpstream, ProviderStyle, UpstreamBehaviour};
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    let keys: Vec<String> = (0..4)
        .map(|i| format!("sk-accept-{i:04}-abcdefgh"))
        .collect();
    for k in &keys {
        upstream.add_key(k, UpstreamBehaviour::Ok);
    }
    let host = FakeHost::start(FakeHostConfig {
        models_cache_ttl: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    let t = Target {
        host_url: host.url(),
        admin_api_key: host.admin_api_key(),
        admin_email: String::new(),
        admin_password: String::new(),
        probe_email: "probe@example.com".into(),
        probe_password: "probe-password-1".into(),
        provider_base_url: upstream.url(),
        native_platform: Some("deepseek".into()),
        smoke_model: "deepseek-flash".into(),
        keys,
        models_cache_wait: Duration::ZERO,
        out_dir: out.path().to_path_buf(),
    };
    let log = run(&t).await;
    assert_eq!(log.len(), 1 + 2 * 2 + 2 + 1, "{log:#?}");
    assert!(out.path().join("acceptance.json").exists());
    let left = host.with_state(|s| {
        (
            s.accounts.iter().filter(|a| !a.deleted).count(),
            s.groups.iter().filter(|g| !g.deleted).count(),
            s.keys.len(),
        )
    });
    assert_eq!(left, (0, 0, 0), "the host is as it was");
}

#[tokio::test]
async fn a_real_host_accepts_the_whole_flow() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let needed = [
        "RELAY_ACCEPT_HOST",
        "RELAY_ACCEPT_PROBE_EMAIL",
        "RELAY_ACCEPT_PROBE_PASSWORD",
        "RELAY_ACCEPT_PROVIDER_BASE_URL",
        "RELAY_ACCEPT_PROVIDER_KEYS",
    ];
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|k| var(k).is_empty())
        .collect();
    let has_admin = !var("RELAY_ACCEPT_ADMIN_KEY").is_empty()
        || (!var("RELAY_ACCEPT_ADMIN_EMAIL").is_empty()
            && !var("RELAY_ACCEPT_ADMIN_PASSWORD").is_empty());
    if !missing.is_empty() || !has_admin {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the real-host acceptance suite needs {} and RELAY_ACCEPT_ADMIN_KEY (or RELAY_ACCEPT_ADMIN_EMAIL + RELAY_ACCEPT_ADMIN_PASSWORD); see the README",
            needed.join(", ")
        );
        return;
    }
    let platform = var("RELAY_ACCEPT_PLATFORM");
    let t = Target {
        host_url: var("RELAY_ACCEPT_HOST"),
        admin_api_key: var("RELAY_ACCEPT_ADMIN_KEY"),
        admin_email: var("RELAY_ACCEPT_ADMIN_EMAIL"),
        admin_password: var("RELAY_ACCEPT_ADMIN_PASSWORD"),
        probe_email: var("RELAY_ACCEPT_PROBE_EMAIL"),
        probe_password: var("RELAY_ACCEPT_PROBE_PASSWORD"),
        provider_base_url: var("RELAY_ACCEPT_PROVIDER_BASE_URL"),
        native_platform: match platform.as_str() {
            "" => Some("deepseek".into()),
            "openai" => None,
            p => Some(p.into()),
        },
        smoke_model: Some(var("RELAY_ACCEPT_MODEL"))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "deepseek-chat".into()),
        keys: var("RELAY_ACCEPT_PROVIDER_KEYS")
            .split([',', '\n', ' '])
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        models_cache_wait: Duration::from_secs(16),
        out_dir: Some(var("RELAY_ACCEPT_OUT"))
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/acceptance")),
    };
    run(&t).await;
}
