//! Diagnosis: every provider signature × failure scenario through the fake
//! host and fake upstream, asserting the class and the next action.

use crate::{core, fake, input_for};
use fakehost::{FakeHostConfig, FakeUpstream, Profile, ProviderStyle, UpstreamBehaviour};
use provisioning_core::model::{AccessMode, BatchStatus, FailureClass};
use provisioning_core::ops::{ApplyOptions, BatchRequest};
use std::time::Duration;

fn family(style: ProviderStyle) -> &'static str {
    match style {
        ProviderStyle::DeepSeek => "deepseek",
        ProviderStyle::Kimi => "kimi",
        ProviderStyle::Glm => "glm",
        ProviderStyle::MiniMax => "minimax",
        ProviderStyle::DashScope => "dashscope",
        ProviderStyle::Ark => "ark",
        ProviderStyle::SiliconFlow => "siliconflow",
        ProviderStyle::OpenAi => "openai",
    }
}

fn pack(base: &str, smoke: &str, family: &str) -> String {
    format!(
        "schema: 1
id: diag
name: Diag
providers:
  p:
    display_name: P
    api_family: {family}
    base_url: {base}
    smoke_model: {smoke}
    models:
      {smoke}:
        price: {{ currency: USD, input: 0.3, output: 1.2, source: test, verified: 2026-11-01 }}
"
    )
}

/// Imports one key and returns the batch's diagnosis classes and actions.
async fn run(
    style: ProviderStyle,
    behaviour: Option<UpstreamBehaviour>,
    smoke: &str,
) -> (BatchStatus, Vec<(FailureClass, String, Vec<String>)>, u32) {
    let upstream = FakeUpstream::start(style, &["known-model"]).await;
    let key = "sk-diagnose-key-000000000001";
    if let Some(b) = behaviour {
        upstream.add_key(key, b);
    }
    let host = fake(FakeHostConfig {
        models_cache_ttl: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let ctx = core().await;
    let h = ctx
        .core
        .create_host("a", &input_for(&host, "h"))
        .await
        .unwrap();
    ctx.core.probe_host("a", h.id).await.unwrap();
    // The fake upstream serves its API under /v1.
    let (pv, _) = ctx
        .core
        .upload_pack(
            "a",
            &pack(&format!("{}/v1", upstream.url()), smoke, family(style)),
        )
        .await
        .unwrap();
    let id = ctx
        .core
        .plan_batch(
            "a",
            &BatchRequest {
                host_id: h.id,
                pack_version_id: pv,
                provider_key: "p".into(),
                mode: Some(AccessMode::SelfService),
                keys_text: key.into(),
            },
        )
        .await
        .unwrap();
    let status = ctx
        .core
        .apply_batch(
            "a",
            id,
            ApplyOptions {
                models_cache_wait: Duration::ZERO,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let v = ctx.core.batch_view(id).await.unwrap();
    let d = v.diagnosis.clone();
    let all = serde_json::to_string(&v).unwrap();
    assert!(
        !all.contains(key),
        "the raw key leaked into the batch view or its diagnosis"
    );
    let items = d
        .as_ref()
        .map(|d| {
            d.items
                .iter()
                .map(|i| (i.class, i.action.clone(), i.evidence.clone()))
                .collect()
        })
        .unwrap_or_default();
    (
        status,
        items,
        d.map(|d| d.upstream_completions).unwrap_or(0),
    )
}

#[tokio::test]
async fn every_provider_signature_is_classified_with_its_next_action() {
    use UpstreamBehaviour as B;
    let scenarios: &[(Option<B>, &str, FailureClass, &str)] = &[
        (
            Some(B::QuotaExhausted),
            "known-model",
            FailureClass::UpstreamQuotaExhausted,
            "Recharge",
        ),
        (
            None,
            "known-model",
            FailureClass::UpstreamKeyInvalid,
            "Replace the key",
        ),
        (
            Some(B::Ok),
            "ghost-model",
            FailureClass::UpstreamModelUnknown,
            "Fix the model in the pack",
        ),
    ];
    for style in ProviderStyle::ALL {
        for (behaviour, smoke, want, action) in scenarios {
            let (status, items, spent) = run(style, *behaviour, smoke).await;
            assert_ne!(status, BatchStatus::Succeeded, "{style:?} {behaviour:?}");
            assert!(!items.is_empty(), "{style:?} {behaviour:?}: no diagnosis");
            let account = &items[0];
            assert_eq!(
                account.0, *want,
                "{style:?} {behaviour:?} {smoke}: {:#?}",
                account.2
            );
            assert!(account.1.contains(action), "{style:?}: {}", account.1);
            assert!(
                account.2.iter().any(|e| e.starts_with("upstream POST")),
                "the direct completion is in the evidence"
            );
            assert!(spent <= 1, "{style:?}: {spent} completions for one key");
        }
    }
}

#[tokio::test]
async fn a_rate_limited_key_is_told_apart_from_an_empty_one() {
    // DeepSeek: 429 for rate, 402 for money. Kimi and GLM: 429 for both,
    // told apart by the body only. MiniMax: HTTP 200 with a business code.
    // DashScope: 400 for money. Ark: 403. SiliconFlow: a body code.
    for style in [
        ProviderStyle::DeepSeek,
        ProviderStyle::Kimi,
        ProviderStyle::Glm,
        ProviderStyle::MiniMax,
    ] {
        let (_, items, _) = run(style, Some(UpstreamBehaviour::RateLimited), "known-model").await;
        assert!(
            items
                .iter()
                .any(|i| i.0 == FailureClass::UpstreamRateLimited),
            "{style:?}: {items:#?}"
        );
        let (_, items, _) = run(
            style,
            Some(UpstreamBehaviour::QuotaExhausted),
            "known-model",
        )
        .await;
        assert!(
            items
                .iter()
                .all(|i| i.0 == FailureClass::UpstreamQuotaExhausted),
            "{style:?}: {items:#?}"
        );
    }
}

#[tokio::test]
async fn upstream_fine_but_host_failing_is_a_compatibility_gap() {
    let w = crate::import::world(Profile::V0_1_177).await;
    let id = w
        .plan(&crate::import::keys(1), AccessMode::SelfService)
        .await;
    let test_seq = w
        .view(id)
        .await
        .steps
        .iter()
        .find(|s| s.kind == provisioning_core::model::StepKind::AccountTest)
        .unwrap()
        .seq;
    let _ = w
        .ctx
        .core
        .apply_batch(
            "alice",
            id,
            ApplyOptions {
                crash_at: Some((test_seq, provisioning_core::ops::CrashPoint::AfterSent)),
                ..crate::import::fast()
            },
        )
        .await;
    // Someone drops the forced chat-completions mode: the host now tries the
    // Responses API, which this upstream does not have.
    w.host.with_state(|s| {
        for a in s.accounts.iter_mut() {
            a.extra.remove("openai_responses_mode");
        }
    });
    w.ctx
        .core
        .apply_batch("alice", id, crate::import::fast())
        .await
        .unwrap();
    let d = w.view(id).await.diagnosis.unwrap();
    let test = d.items.iter().find(|i| i.seq == test_seq).unwrap();
    assert_eq!(
        test.class,
        FailureClass::HostCompatibilityGap,
        "{:#?}",
        test.evidence
    );
    assert!(test.action.contains("chat completions must be forced"));
}

#[tokio::test]
async fn host_side_failures_are_classified_without_calling_the_provider() {
    let w = crate::import::world(Profile::V0_1_179).await;
    let id = w
        .plan(&crate::import::keys(1), AccessMode::SelfService)
        .await;
    // The host locks its admin API (a new compliance version) mid-batch.
    w.host.with_state(|s| s.compliance_accepted.clear());
    let status = w
        .ctx
        .core
        .apply_batch("alice", id, crate::import::fast())
        .await
        .unwrap();
    assert_eq!(status, BatchStatus::Failed);
    let d = w.view(id).await.diagnosis.unwrap();
    assert_eq!(
        d.items[0].class,
        FailureClass::HostComplianceRequired,
        "{:#?}",
        d.items
    );
    assert_eq!(d.upstream_completions, 0);
    assert_eq!(w.upstream.calls("/v1/chat/completions"), 0);
}

#[tokio::test]
async fn an_evidence_bundle_is_complete_verifiable_and_free_of_secrets() {
    let w = crate::import::world(Profile::V0_1_179).await;
    let mut ks = crate::import::keys(2);
    ks.push("sk-exhausted-key-0000000000000099".into());
    w.upstream
        .add_key(&ks[2], UpstreamBehaviour::QuotaExhausted);
    let id = w.plan(&ks, AccessMode::SelfService).await;
    let status = w
        .ctx
        .core
        .apply_batch("alice", id, crate::import::fast())
        .await
        .unwrap();
    assert_eq!(status, BatchStatus::PartiallySucceeded);
    let b = w.ctx.core.export_bundle("vera", id).await.unwrap();
    assert_eq!(provisioning_core::ops::verify_bundle(&b.json), Ok(true));
    let v: serde_json::Value = serde_json::from_str(&b.json).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["host"]["version_at_plan"], "0.1.179");
    assert_eq!(
        v["batch"]["diagnosis"]["items"][0]["class"],
        "upstream_quota_exhausted"
    );
    assert!(b.html.contains(&b.digest));
    assert!(b.html.contains("upstream_quota_exhausted"));
    assert!(b.html.contains("class=\"smoke\""));
    assert!(b.html.contains("readiness gate"));
    for k in &ks {
        assert!(
            !b.json.contains(k.as_str()) && !b.html.contains(k.as_str()),
            "a key leaked into the bundle"
        );
    }
    let user_keys = w
        .host
        .with_state(|s| s.keys.iter().map(|k| k.key.clone()).collect::<Vec<_>>());
    for k in user_keys {
        assert!(
            !b.json.contains(&k) && !b.html.contains(&k),
            "the probe user's gateway key leaked"
        );
    }
    assert!(!b.json.contains(&w.host.admin_api_key()));
    let (audit, _) = w.ctx.core.store.audit_page(1, 5).await.unwrap();
    assert_eq!(audit[0].action, "batch.export");
    assert_eq!(audit[0].actor, "vera");
}

/// The README's verification line, run as written against an exported
/// bundle, then against the same bundle with one price edited (and then
/// re-digested).
#[tokio::test]
async fn the_readmes_one_liner_verifies_a_bundle_and_catches_an_edit() {
    let run = crate::readme_node_line(|l| l.ends_with(" evidence.json"));
    let w = crate::import::world(Profile::V0_1_179).await;
    let id = w
        .plan(&crate::import::keys(2), AccessMode::SelfService)
        .await;
    w.ctx
        .core
        .apply_batch("alice", id, crate::import::fast())
        .await
        .unwrap();
    let b = w.ctx.core.export_bundle("vera", id).await.unwrap();
    assert!(
        b.json.contains("e-7") || b.json.contains("e-6"),
        "prices are small floats"
    );
    let ok = run(&b.json);
    assert!(
        ok.status.success(),
        "{} {}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let key = w.ctx.core.signing_public_key().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        format!("ok, signed by {}", key.lines().nth(1).unwrap())
    );
    let mut edited: serde_json::Value = serde_json::from_str(&b.json).unwrap();
    edited["batch"]["plan"]["prices"][0][1] = serde_json::json!(1e-9);
    let bad = run(&serde_json::to_string_pretty(&edited).unwrap());
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).starts_with("MISMATCH"));
    assert_eq!(
        provisioning_core::ops::verify_bundle(&serde_json::to_string(&edited).unwrap()),
        Ok(false)
    );
    // Re-digested after the edit, the signature still gives it away.
    let d = provisioning_core::ops::digest_of(&edited);
    edited["digest"]["value"] = serde_json::json!(d);
    let text = serde_json::to_string(&edited).unwrap();
    assert_eq!(provisioning_core::ops::verify_bundle(&text), Ok(false));
    let out = run(&text);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "MISMATCH (digest true, signature false)"
    );
}
