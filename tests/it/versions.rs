//! Every host version the product plans for works, or is refused before any
//! write (reference §12): the fake host's profiles 0.1.106, 0.1.177, 0.1.179
//! and 0.2.4, both access modes, and the price the host actually bills.

use crate::import::{fast, keys, world, world_cfg, World};
use fakehost::{FakeHostConfig, Fault, FaultKind, Profile};
use provisioning_core::model::{AccessMode, AccessStatus, BatchStatus, StepKind};
use provisioning_core::ops::{ApplyError, ApplyOptions, OpError};
use serde_json::Value;
use std::time::Duration;

/// The pack's USD-per-token prices of `model`, as the plan sent them.
async fn pack_price(w: &World, id: i64, model: &str) -> (f64, f64) {
    let v = w.view(id).await;
    let p = v.plan.prices.iter().find(|p| p.0 == model).unwrap();
    (p.1, p.2)
}

/// The batch's readiness gate step (its evidence is the response).
async fn readiness_step(w: &World, id: i64) -> provisioning_core::model::StepView {
    w.view(id)
        .await
        .steps
        .into_iter()
        .find(|s| s.kind == StepKind::Readiness)
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-15 + b.abs() * 1e-9
}

#[tokio::test]
async fn a_host_before_0_1_127_refuses_a_chat_only_provider_before_any_write() {
    let w = world(Profile::V0_1_106).await;
    let id = w.plan(&keys(3), AccessMode::SelfService).await;
    let v = w.view(id).await;
    assert_eq!(v.plan.platform, "openai");
    let b = v
        .plan
        .blockers
        .iter()
        .find(|b| b.capability == "chat_completions_passthrough")
        .expect("the missing capability is a blocker");
    assert!(b.message.contains("/v1/responses"), "{}", b.message);
    assert!(b.action.contains("v0.1.127"), "says what version is needed");
    let e = w
        .ctx
        .core
        .apply_batch("alice", id, fast())
        .await
        .unwrap_err();
    match e {
        ApplyError::Op(OpError::Conflict(f)) => {
            assert!(f.message.contains("Nothing was written"), "{}", f.message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(w.host.write_calls(), 0, "nothing was written to the host");
    let (groups, accounts, user_keys) = w
        .host
        .with_state(|s| (s.groups.len(), s.accounts.len(), s.keys.len()));
    assert_eq!((groups, accounts, user_keys), (0, 0, 0));
}

#[tokio::test]
async fn every_supported_version_reaches_ready_in_both_modes_at_the_pack_price() {
    for profile in [Profile::V0_1_177, Profile::V0_1_179, Profile::V0_2_4] {
        for mode in [AccessMode::SelfService, AccessMode::Subscription] {
            let w = world(profile).await;
            let id = w.plan(&keys(2), mode).await;
            let v = w.view(id).await;
            assert!(
                v.plan.blockers.is_empty(),
                "{profile:?}: {:?}",
                v.plan.blockers
            );
            let want_platform = if profile == Profile::V0_1_177 {
                "openai"
            } else {
                "deepseek"
            };
            assert_eq!(v.plan.platform, want_platform, "{profile:?}");
            let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
            let v = w.view(id).await;
            assert_eq!(
                status,
                BatchStatus::Succeeded,
                "{profile:?} {mode:?}: {:#?}",
                v.steps
            );
            assert_eq!(
                v.access_status,
                match mode {
                    AccessMode::SelfService => AccessStatus::SelfServiceReady,
                    AccessMode::Subscription => AccessStatus::SubscriptionReady,
                }
            );
            // The readiness completion was billed at the pack's price.
            let usage = w.host.usage();
            let last = usage.last().expect("the readiness completion is billed");
            let (input, output) = pack_price(&w, id, "deepseek-flash").await;
            assert_eq!(last.price_source, "channel", "{profile:?}: {last:?}");
            assert!(
                close(last.input_price, input) && close(last.output_price, output),
                "{profile:?} {mode:?}: billed {last:?}, pack {input} / {output}"
            );
            if profile == Profile::V0_1_177 {
                let extra = w.host.with_state(|s| s.accounts[0].extra.clone());
                assert_eq!(extra["openai_responses_mode"], "force_chat_completions");
            }
        }
    }
}

#[tokio::test]
async fn on_v0_2_the_allowlist_is_written_and_enforced_and_upstream_names_are_priced() {
    let w = world(Profile::V0_2_4).await;
    // `ds-chat` is sent upstream as `deepseek-flash` (account mapping).
    let id = w
        .plan_provider("dsmap", &keys(1), AccessMode::SelfService)
        .await;
    let plan = w.view(id).await.plan;
    assert_eq!(
        plan.shape.allowlist_field.as_deref(),
        Some("model_allowlist")
    );
    assert!(plan.shape.price_upstream_names && plan.shape.group_pricing && plan.shape.is_exclusive);
    let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    assert_eq!(
        status,
        BatchStatus::Succeeded,
        "{:#?}",
        w.view(id).await.steps
    );
    let (group, key) = w
        .host
        .with_state(|s| (s.groups[0].clone(), s.keys[0].key.clone()));
    assert!(group.is_exclusive, "the pack's exclusive group");
    assert_eq!(group.allowlist(), Some(vec!["ds-chat".to_string()]));
    assert!(
        group.model_pricing.is_empty(),
        "no group card outranks the channel"
    );
    let last = w.host.usage().last().cloned().unwrap();
    let (input, output) = pack_price(&w, id, "ds-chat").await;
    assert_eq!(
        (last.upstream_model.as_str(), last.price_source.as_str()),
        ("deepseek-flash", "channel")
    );
    assert!(
        close(last.input_price, input) && close(last.output_price, output),
        "{last:?}"
    );
    // A model outside the allowlist is refused by the host itself.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", w.host.url()))
        .bearer_auth(&key)
        .json(&serde_json::json!({"model": "deepseek-v4-pro", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "model_not_allowed", "{body}");
}

#[tokio::test]
async fn a_group_price_card_added_on_the_host_is_drift() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(1), AccessMode::SelfService).await;
    w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    w.host.with_state(|s| {
        s.groups[0].model_pricing = vec![serde_json::json!({"platform": "deepseek", "models": ["deepseek-flash"], "input_price": 1e-5, "output_price": 1e-5})];
    });
    let report = w.ctx.core.drift_check("alice", w.host_id).await.unwrap();
    let f = report
        .findings
        .iter()
        .find(|f| f.kind == "group")
        .expect("the group drifted");
    assert!(
        f.changed
            .iter()
            .any(|d| d.0.contains("group price deepseek/deepseek-flash")),
        "{:?}",
        f.changed
    );
}

#[tokio::test]
async fn readiness_lists_once_when_the_group_is_new_instead_of_waiting_out_the_cache() {
    // The real cache lifetime: a fixed wait would take 16 s here.
    let w = world_cfg(FakeHostConfig {
        profile: Profile::V0_1_179,
        models_cache_ttl: Duration::from_secs(15),
        ..Default::default()
    })
    .await;
    let id = w.plan(&keys(3), AccessMode::SelfService).await;
    let before = w.host.calls("GET /v1/models");
    let status = w
        .ctx
        .core
        .apply_batch("alice", id, ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(status, BatchStatus::Succeeded);
    assert_eq!(
        w.host.calls("GET /v1/models") - before,
        1,
        "a new group is listed fresh"
    );
    let gate = readiness_step(&w, id).await;
    let evidence: Value = serde_json::from_str(&gate.response).unwrap();
    assert_eq!(evidence["listings"], 1);
    assert_eq!(evidence["smoke_model_listed"], true);
}

#[tokio::test]
async fn readiness_polls_while_a_stale_listing_lacks_the_smoke_model() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(1), AccessMode::SelfService).await;
    // A listing cached before the accounts existed: the CN defaults.
    w.host.add_fault(Fault {
        method: reqwest::Method::GET,
        path_prefix: "/v1/models".into(),
        kind: FaultKind::Status(
            200,
            serde_json::json!({"object": "list", "data": [{"id": "claude-sonnet-4-5", "type": "model"}]}),
        ),
        times: 2,
    });
    let opts = ApplyOptions {
        models_cache_wait: Duration::from_secs(5),
        ..Default::default()
    };
    let status = w.ctx.core.apply_batch("alice", id, opts).await.unwrap();
    assert_eq!(
        status,
        BatchStatus::Succeeded,
        "{:#?}",
        w.view(id).await.steps
    );
    let gate = readiness_step(&w, id).await;
    let evidence: Value = serde_json::from_str(&gate.response).unwrap();
    assert_eq!(evidence["listings"], 3, "{evidence}");
    assert_eq!(evidence["smoke_model_listed"], true);
}

#[tokio::test]
async fn readiness_gives_up_after_the_cache_lifetime_and_says_how_long_it_looked() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(1), AccessMode::SelfService).await;
    w.host.add_fault(Fault {
        method: reqwest::Method::GET,
        path_prefix: "/v1/models".into(),
        kind: FaultKind::Status(200, serde_json::json!({"object": "list", "data": []})),
        times: 100,
    });
    let opts = ApplyOptions {
        models_cache_wait: Duration::from_millis(800),
        ..Default::default()
    };
    let status = w.ctx.core.apply_batch("alice", id, opts).await.unwrap();
    assert_eq!(status, BatchStatus::Failed);
    let gate = readiness_step(&w, id).await;
    assert!(gate.error.contains("listing(s) over"), "{}", gate.error);
    assert_eq!(
        w.host.calls("POST /v1/chat/completions"),
        0,
        "no completion is spent when the model is not listed"
    );
}

#[tokio::test]
async fn re_running_a_finished_batch_checks_readiness_again() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(2), AccessMode::SelfService).await;
    w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    let (models, chats) = (
        w.host.calls("GET /v1/models"),
        w.host.calls("POST /v1/chat/completions"),
    );
    let writes = w.host.write_calls();
    let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    assert_eq!(status, BatchStatus::Succeeded);
    assert_eq!(w.host.calls("GET /v1/models"), models + 1);
    assert_eq!(w.host.calls("POST /v1/chat/completions"), chats + 1);
    // The top-up re-reads the balance and adds nothing: at most that.
    assert!(
        w.host.write_calls() <= writes + 1,
        "a re-run creates nothing"
    );
    assert_eq!(w.accounts_on_host(), 2);
}

#[tokio::test]
async fn minimax_is_native_where_the_host_has_it_and_the_openai_fallback_elsewhere() {
    for (profile, platform) in [(Profile::V0_1_179, "openai"), (Profile::V0_2_4, "minimax")] {
        let w = world(profile).await;
        let id = w
            .plan_provider("mm", &keys(1), AccessMode::SelfService)
            .await;
        assert_eq!(w.view(id).await.plan.platform, platform, "{profile:?}");
        let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
        assert_eq!(
            status,
            BatchStatus::Succeeded,
            "{profile:?}: {:#?}",
            w.view(id).await.steps
        );
        let on_host = w.host.with_state(|s| s.accounts[0].platform.clone());
        assert_eq!(on_host, platform);
    }
}

#[tokio::test]
async fn every_plan_probes_the_host_again_and_pins_its_version() {
    let w = world(Profile::V0_1_179).await;
    let probes = w.ctx.core.probe_history(w.host_id).await.unwrap().len();
    let id = w.plan(&keys(1), AccessMode::SelfService).await;
    assert_eq!(
        w.ctx.core.probe_history(w.host_id).await.unwrap().len(),
        probes + 1
    );
    assert_eq!(
        w.view(id).await.plan.host_version.as_deref(),
        Some("0.1.179")
    );
}

#[tokio::test]
async fn a_waiting_readiness_check_says_what_it_waits_for_until_it_settles() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(1), AccessMode::SelfService).await;
    w.host.add_fault(Fault {
        method: reqwest::Method::GET,
        path_prefix: "/v1/models".into(),
        kind: FaultKind::Status(
            200,
            serde_json::json!({"object": "list", "data": [{"id": "claude-sonnet-4-5", "type": "model"}]}),
        ),
        times: 3,
    });
    let opts = ApplyOptions {
        models_cache_wait: Duration::from_secs(8),
        ..Default::default()
    };
    let run = w.ctx.core.start_apply("alice", id, opts).await.unwrap();
    let mut seen = None;
    for _ in 0..200 {
        let p = w.ctx.core.batch_progress(id, 0).await.unwrap();
        if let Some(note) = p.waiting {
            seen = Some(note);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let note = seen.expect("the progress said what readiness waits for");
    // Stored as a coded message (the pages write it in either language).
    let said = provisioning_core::model::Said::parse(&note).expect("a coded note");
    assert_eq!(said.code, "wait.models");
    let note = said.english();
    assert!(
        note.starts_with("waiting for GET /v1/models to list deepseek-flash"),
        "{note}"
    );
    assert!(note.contains("up to 8 s"), "{note}");
    run.await.unwrap();
    let p = w.ctx.core.batch_progress(id, 0).await.unwrap();
    assert_eq!(p.status, BatchStatus::Succeeded);
    assert_eq!(p.waiting, None, "the answer replaced the note");
    let gate = readiness_step(&w, id).await;
    let evidence: Value = serde_json::from_str(&gate.response).unwrap();
    assert_eq!(evidence["listings"], 4, "{evidence}");
}
