//! Import batches against the fake host and a fake DeepSeek upstream: plan,
//! apply through the journal, access closure in both modes, verification,
//! re-runs and crashes at every journal step.

use crate::{core, fake, input_for, Ctx};
use fakehost::{
    FakeHost, FakeHostConfig, FakeUpstream, Profile, ProviderStyle, UpstreamBehaviour, MARKER_KEY,
};
use provisioning_core::model::{AccessMode, AccessStatus, BatchStatus, StepKind, StepState};
use provisioning_core::ops::{ApplyError, ApplyOptions, BatchRequest, CrashPoint};
use std::time::Duration;

const PACK: &str = "schema: 1
id: test-pack
name: Test
providers:
  ds:
    display_name: DeepSeek (fake)
    native_platform: deepseek
    base_url: UPSTREAM
    smoke_model: deepseek-flash
    models:
      deepseek-flash:
        price: { currency: USD, input: 0.3, output: 1.2, source: test, verified: 2026-11-01 }
      deepseek-v4-pro:
        price: { currency: USD, input: 1.32, output: 3.96, source: test, verified: 2026-11-01 }
    access:
      mode: self_service
  mm:
    display_name: MiniMax-like (fake)
    native_platform: minimax
    base_url: UPSTREAM
    smoke_model: deepseek-flash
    models:
      deepseek-flash:
        price: { currency: USD, input: 0.3, output: 1.2, source: test, verified: 2026-11-01 }
    access:
      mode: self_service
  dsmap:
    display_name: DeepSeek under another name (fake)
    native_platform: deepseek
    base_url: UPSTREAM
    smoke_model: ds-chat
    models:
      ds-chat:
        upstream: deepseek-flash
        price: { currency: USD, input: 0.5, output: 2.0, source: test, verified: 2026-11-01 }
    group: { exclusive: true }
    access:
      mode: self_service
";

pub struct World {
    pub ctx: Ctx,
    pub host: FakeHost,
    pub upstream: FakeUpstream,
    pub host_id: i64,
    pub pack_version: i64,
}

pub fn keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("sk-test-key-{i:04}-abcdefghijkl"))
        .collect()
}

pub async fn world(profile: Profile) -> World {
    world_cfg(FakeHostConfig {
        profile,
        models_cache_ttl: Duration::ZERO,
        ..Default::default()
    })
    .await
}

pub async fn world_cfg(cfg: FakeHostConfig) -> World {
    let upstream = FakeUpstream::start(
        ProviderStyle::DeepSeek,
        &["deepseek-flash", "deepseek-v4-pro"],
    )
    .await;
    for k in keys(20) {
        upstream.add_key(&k, UpstreamBehaviour::Ok);
    }
    let host = fake(cfg).await;
    let ctx = core().await;
    let h = ctx
        .core
        .create_host("alice", &input_for(&host, "h"))
        .await
        .unwrap();
    ctx.core.probe_host("alice", h.id).await.unwrap();
    let text = PACK.replace("UPSTREAM", &upstream.url());
    let parsed = provisioning_core::pack::parse(&text, None).unwrap();
    let (pv, _) = ctx
        .core
        .store
        .insert_pack_version(
            "alice",
            "test-pack",
            "Test",
            &parsed.hash,
            "yaml",
            &text,
            &serde_json::to_string(&parsed.pack).unwrap(),
            false,
        )
        .await
        .unwrap();
    World {
        ctx,
        host,
        upstream,
        host_id: h.id,
        pack_version: pv,
    }
}

pub fn fast() -> ApplyOptions {
    ApplyOptions {
        models_cache_wait: Duration::ZERO,
        ..Default::default()
    }
}

impl World {
    pub async fn plan(&self, keys: &[String], mode: AccessMode) -> i64 {
        self.plan_provider("ds", keys, mode).await
    }

    pub async fn plan_provider(&self, provider: &str, keys: &[String], mode: AccessMode) -> i64 {
        self.ctx
            .core
            .plan_batch(
                "alice",
                &BatchRequest {
                    host_id: self.host_id,
                    pack_version_id: self.pack_version,
                    provider_key: provider.into(),
                    mode: Some(mode),
                    keys_text: keys.join("\n"),
                },
            )
            .await
            .unwrap()
    }

    pub async fn view(&self, id: i64) -> provisioning_core::model::BatchView {
        self.ctx.core.batch_view(id).await.unwrap()
    }

    /// Live account rows in the ledger.
    pub async fn ledger_accounts(&self) -> usize {
        self.ctx
            .core
            .store
            .live_ledger(self.host_id)
            .await
            .unwrap()
            .iter()
            .filter(|(k, _)| k == "account")
            .count()
    }

    pub fn accounts_on_host(&self) -> usize {
        self.host
            .with_state(|s| s.accounts.iter().filter(|a| !a.deleted).count())
    }
}

#[tokio::test]
async fn self_service_reaches_ready_on_a_native_platform() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(3), AccessMode::SelfService).await;
    let v = w.view(id).await;
    assert_eq!(v.status, BatchStatus::Planned);
    assert_eq!(v.plan.platform, "deepseek");
    assert_eq!(
        w.accounts_on_host(),
        0,
        "planning writes nothing to the host"
    );
    let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    let v = w.view(id).await;
    assert_eq!(status, BatchStatus::Succeeded, "{:#?}", v.steps);
    assert_eq!(v.access_status, AccessStatus::SelfServiceReady);
    assert!(
        v.steps.iter().all(|s| s.state == StepState::Done),
        "{:#?}",
        v.steps
    );
    assert_eq!(w.accounts_on_host(), 3);
    assert_eq!(
        w.host.calls("POST /api/v1/admin/accounts/batch"),
        1,
        "one batch create for three keys"
    );
    assert_eq!(w.host.calls("POST /api/v1/admin/accounts"), 0);
    // The channel prices are scoped to the group's platform, in USD per token.
    let ch = w.host.with_state(|s| s.channels[0].clone());
    assert!(ch.model_pricing.iter().all(|p| p["platform"] == "deepseek"));
    let flash = ch
        .model_pricing
        .iter()
        .find(|p| p["models"][0] == "deepseek-flash")
        .unwrap();
    assert!((flash["input_price"].as_f64().unwrap() - 3.0e-7).abs() < 1e-12);
    // The readiness evidence holds the request and answer, with the key masked.
    let ready = v
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Readiness)
        .unwrap();
    assert!(ready.response.contains("deepseek-flash"));
    assert!(ready.request.contains("Bearer sk-…"), "{}", ready.request);
    let all = serde_json::to_string(&v).unwrap();
    for k in keys(3) {
        assert!(!all.contains(&k), "a key leaked into the batch view");
    }
}

#[tokio::test]
async fn subscription_mode_reaches_ready() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(2), AccessMode::Subscription).await;
    let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    let v = w.view(id).await;
    assert_eq!(status, BatchStatus::Succeeded, "{:#?}", v.steps);
    assert_eq!(v.access_status, AccessStatus::SubscriptionReady);
    let (group_type, subs) = w
        .host
        .with_state(|s| (s.groups[0].subscription_type.clone(), s.subscriptions.len()));
    assert_eq!(group_type, "subscription");
    assert_eq!(subs, 1);
}

#[tokio::test]
async fn re_running_creates_nothing_new_and_a_new_batch_skips_imported_keys() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(3), AccessMode::SelfService).await;
    w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    let calls = w.host.calls("POST /api/v1/admin/accounts");
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    assert_eq!(
        w.host.calls("POST /api/v1/admin/accounts"),
        calls,
        "no account write on a re-run"
    );
    // The same keys in a new batch: all skipped, group and channel reused.
    let id2 = w.plan(&keys(3), AccessMode::SelfService).await;
    let v = w.view(id2).await;
    assert_eq!(v.plan.skipped.len(), 3);
    assert!(v
        .plan
        .skipped
        .iter()
        .all(|s| s.reason.contains("already imported by batch")));
    let status = w.ctx.core.apply_batch("alice", id2, fast()).await.unwrap();
    assert_eq!(
        status,
        BatchStatus::Succeeded,
        "{:#?}",
        w.view(id2).await.steps
    );
    assert_eq!(w.accounts_on_host(), 3);
    assert_eq!(w.host.with_state(|s| s.groups.len()), 1);
    // Skipped keys are listed in the order of the upload, whatever found
    // them (the ledger finds line 1 after the reader found line 2).
    let mut mixed = keys(1);
    mixed.push("short".into());
    mixed.push(keys(1)[0].clone());
    let id3 = w.plan(&mixed, AccessMode::SelfService).await;
    let lines: Vec<usize> = w
        .view(id3)
        .await
        .plan
        .skipped
        .iter()
        .map(|s| s.line)
        .collect();
    assert_eq!(
        lines,
        vec![1, 2, 3],
        "{:#?}",
        w.view(id3).await.plan.skipped
    );
}

#[tokio::test]
async fn a_batch_whose_keys_all_fail_is_failed_even_when_another_batch_keeps_the_group_ready() {
    let w = world(Profile::V0_1_179).await;
    let healthy = w.plan(&keys(2), AccessMode::SelfService).await;
    assert_eq!(
        w.ctx
            .core
            .apply_batch("alice", healthy, fast())
            .await
            .unwrap(),
        BatchStatus::Succeeded
    );
    // Three keys of the same provider (the same group), none with money.
    let broke: Vec<String> = (0..3)
        .map(|i| format!("sk-exhausted-key-00000000000000{i:02}"))
        .collect();
    for k in &broke {
        w.upstream.add_key(k, UpstreamBehaviour::QuotaExhausted);
    }
    let id = w.plan(&broke, AccessMode::SelfService).await;
    let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    let v = w.view(id).await;
    assert_eq!(status, BatchStatus::Failed, "{:#?}", v.steps);
    assert_eq!(v.status, BatchStatus::Failed);
    // The group is still proven ready, by the first batch's accounts.
    assert_eq!(v.access_status, AccessStatus::SelfServiceReady);
    assert_eq!((v.keys.passed, v.keys.failed, v.keys.skipped), (0, 3, 0));
    let list = w.ctx.core.list_batches(None, 50).await.unwrap();
    let row = list.items.iter().find(|b| b.id == id).unwrap();
    assert_eq!(
        (row.status, row.keys.passed, row.keys.failed),
        (BatchStatus::Failed, 0, 3)
    );
    let first = list.items.iter().find(|b| b.id == healthy).unwrap();
    assert_eq!(
        (first.status, first.keys.passed, first.keys.failed),
        (BatchStatus::Succeeded, 2, 0)
    );
}

#[tokio::test]
async fn account_tests_start_when_the_host_names_the_account_not_after_every_account_settles() {
    // The read-back listing of the created accounts is slow: each key's
    // test runs on the id the batch create answered, while the listing is
    // still on its way, and the account step settles after it.
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(12), AccessMode::SelfService).await;
    w.host.add_fault(fakehost::Fault {
        method: reqwest::Method::GET,
        path_prefix: "/api/v1/admin/accounts".into(),
        kind: fakehost::FaultKind::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    let steps = w.ctx.core.store.steps(id).await.unwrap();
    assert_eq!(status, BatchStatus::Succeeded, "{steps:#?}");
    let of = |k: StepKind| steps.iter().filter(move |s| s.kind == k);
    let first_settled = of(StepKind::Account)
        .filter_map(|s| s.finished_at_ms)
        .min()
        .unwrap();
    assert_eq!(of(StepKind::AccountTest).count(), 12);
    for t in of(StepKind::AccountTest) {
        assert_eq!(t.state, StepState::Done, "{t:#?}");
        assert!(
            t.finished_at_ms.unwrap() < first_settled,
            "test {} finished at {:?}, after the first account settled at {first_settled}",
            t.seq,
            t.finished_at_ms
        );
        // The id it tested is the one the read-back settled on.
        let account = of(StepKind::Account)
            .find(|a| a.fingerprint == t.fingerprint)
            .unwrap();
        assert_eq!(t.remote_id, account.remote_id);
    }
}

#[tokio::test]
async fn an_apply_never_has_more_host_calls_at_once_than_its_concurrency() {
    // Every call takes a while, so calls that could overlap do: the batch
    // creates, the read-back, the user-access steps and the tests all take
    // a share of the run's concurrency.
    let w = world_cfg(FakeHostConfig {
        profile: Profile::V0_1_179,
        models_cache_ttl: Duration::ZERO,
        latency: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let id = w.plan(&keys(20), AccessMode::SelfService).await;
    let from = std::time::Instant::now();
    let status = w
        .ctx
        .core
        .apply_batch(
            "alice",
            id,
            ApplyOptions {
                concurrency: 3,
                ..fast()
            },
        )
        .await
        .unwrap();
    assert_eq!(status, BatchStatus::Succeeded);
    let spans: Vec<_> = w
        .host
        .call_spans()
        .into_iter()
        .filter(|s| s.start >= from)
        .collect();
    let most = w.host.most_at_once(from);
    assert_eq!(most, 3, "calls at once: {spans:#?}");
    // The channel is created while the group is read back (its id came
    // with the create's answer), not after.
    let first = |route: &str| {
        spans
            .iter()
            .find(|s| s.route == route)
            .unwrap_or_else(|| panic!("no {route}"))
            .clone()
    };
    let group_read = first("GET /api/v1/admin/groups/:id");
    let channel_create = first("POST /api/v1/admin/channels");
    assert!(
        channel_create.start < group_read.end,
        "the channel was created after the group's read-back"
    );
}

#[tokio::test]
async fn a_chunk_that_cannot_be_recorded_at_once_is_recorded_key_by_key() {
    // Between the batch create and its read-back, one key goes live in
    // another batch's ledger: the chunk's single write fails on it, and its
    // other accounts are still recorded, each with its ledger row.
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(4), AccessMode::SelfService).await;
    let other = w.plan(&keys(4), AccessMode::SelfService).await;
    w.host.add_fault(fakehost::Fault {
        method: reqwest::Method::GET,
        path_prefix: "/api/v1/admin/accounts".into(),
        kind: fakehost::FaultKind::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    let core = w.ctx.core.clone();
    let apply = tokio::spawn(async move { core.apply_batch("alice", id, fast()).await });
    while w.host.calls("POST /api/v1/admin/accounts/batch") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let store = &w.ctx.core.store;
    let taken = store
        .steps(other)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.kind == StepKind::Account)
        .unwrap();
    let fp = taken.fingerprint.clone().unwrap();
    store
        .finish_steps(
            other,
            vec![(
                taken.seq,
                provisioning_core::store::StepUpdate {
                    state: Some(StepState::Done),
                    remote_id: Some("999999".into()),
                    ..Default::default()
                },
                Some(provisioning_core::store::LedgerEntry {
                    host_id: w.host_id,
                    kind: "account".into(),
                    remote_id: "999999".into(),
                    batch_id: other,
                    pack_id: "test-pack".into(),
                    provider_key: "ds".into(),
                    fingerprint: Some(fp.clone()),
                    marker: taken.marker.clone(),
                    spec_json: String::new(),
                    desired_json: "{}".into(),
                    observed_digest: String::new(),
                    role: "created".into(),
                }),
            )],
        )
        .await
        .unwrap();
    // The run stops on the key that went live elsewhere, as it did when
    // every account was recorded on its own.
    assert!(apply.await.unwrap().is_err());
    let steps = store.steps(id).await.unwrap();
    let accounts: Vec<_> = steps
        .iter()
        .filter(|s| s.kind == StepKind::Account)
        .collect();
    let ledger = store.ledger_for_batch(id).await.unwrap();
    for a in &accounts {
        let row = ledger
            .iter()
            .find(|l| l.kind == "account" && l.fingerprint == a.fingerprint);
        if a.fingerprint.as_deref() == Some(fp.as_str()) {
            assert_ne!(a.state, StepState::Done, "{a:#?}");
            assert!(row.is_none(), "{row:#?}");
        } else {
            assert_eq!(a.state, StepState::Done, "{a:#?}");
            let row = row.unwrap_or_else(|| panic!("no ledger row for {a:#?}"));
            assert_eq!(Some(&row.remote_id), a.remote_id.as_ref());
            assert_eq!(row.status, "active");
            assert_eq!(row.role, "created");
        }
    }
    assert_eq!(accounts.len(), 4);
}

#[tokio::test]
async fn a_key_already_on_the_host_is_detected_by_our_marker() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(2), AccessMode::SelfService).await;
    w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    // A second dashboard (fresh database, same master key) sees the host only.
    let other = crate::Ctx {
        core: provisioning_core::ops::Core {
            store: provisioning_core::store::Store::open(&w.ctx.dir.path().join("other.db"))
                .await
                .unwrap(),
            cipher: w.ctx.core.cipher.clone(),
        },
        dir: tempfile::tempdir().unwrap(),
    };
    let h = other
        .core
        .create_host("bob", &input_for(&w.host, "h"))
        .await
        .unwrap();
    other.core.probe_host("bob", h.id).await.unwrap();
    other.core.install_builtin_packs().await.unwrap();
    let text = PACK.replace("UPSTREAM", &w.upstream.url());
    let parsed = provisioning_core::pack::parse(&text, None).unwrap();
    let (pv, _) = other
        .core
        .store
        .insert_pack_version(
            "bob",
            "test-pack",
            "Test",
            &parsed.hash,
            "yaml",
            &text,
            &serde_json::to_string(&parsed.pack).unwrap(),
            false,
        )
        .await
        .unwrap();
    let err = other
        .core
        .plan_batch(
            "bob",
            &BatchRequest {
                host_id: h.id,
                pack_version_id: pv,
                provider_key: "ds".into(),
                mode: None,
                keys_text: keys(2).join("\n"),
            },
        )
        .await;
    // The group is ours (description), so it is reused; both keys are on the host.
    let id2 = err.unwrap();
    let v = other.core.batch_view(id2).await.unwrap();
    assert_eq!(v.plan.skipped.len(), 2, "{:?}", v.plan.skipped);
    assert!(v
        .plan
        .skipped
        .iter()
        .all(|s| s.reason.contains("already on the host")));
}

#[tokio::test]
async fn a_smoke_model_missing_from_the_mapping_is_not_ready() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(2), AccessMode::SelfService).await;
    let readiness_seq = w
        .view(id)
        .await
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Readiness)
        .unwrap()
        .seq;
    let r = w
        .ctx
        .core
        .apply_batch(
            "alice",
            id,
            ApplyOptions {
                crash_at: Some((readiness_seq, CrashPoint::AfterSent)),
                ..fast()
            },
        )
        .await;
    assert!(matches!(r, Err(ApplyError::Crashed(_))));
    // Someone edits the accounts on the host: the smoke model leaves the mapping.
    w.host.with_state(|s| {
        for a in s.accounts.iter_mut() {
            a.credentials.insert(
                "model_mapping".into(),
                serde_json::json!({"deepseek-v4-pro": "deepseek-v4-pro"}),
            );
        }
    });
    let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    let v = w.view(id).await;
    assert_eq!(status, BatchStatus::Failed);
    assert_eq!(v.access_status, AccessStatus::Broken);
    let ready = v
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Readiness)
        .unwrap();
    assert_eq!(ready.state, StepState::Failed);
    assert!(
        ready.error.contains("does not list deepseek-flash"),
        "{}",
        ready.error
    );
}

#[tokio::test]
async fn a_crash_at_every_journal_step_then_a_re_run_converges_without_duplicates() {
    let n = 5;
    // Count the steps once.
    let probe = world(Profile::V0_1_179).await;
    let total = probe
        .view(probe.plan(&keys(n), AccessMode::SelfService).await)
        .await
        .steps
        .len() as i64;
    drop(probe);
    for seq in 1..=total {
        for point in [CrashPoint::AfterSent, CrashPoint::AfterCall] {
            let w = world(Profile::V0_1_179).await;
            let id = w.plan(&keys(n), AccessMode::SelfService).await;
            let r = w
                .ctx
                .core
                .apply_batch(
                    "alice",
                    id,
                    ApplyOptions {
                        crash_at: Some((seq, point)),
                        ..fast()
                    },
                )
                .await;
            assert!(
                matches!(r, Err(ApplyError::Crashed(s)) if s == seq),
                "seq {seq} {point:?}: {r:?}"
            );
            let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
            let v = w.view(id).await;
            assert_eq!(
                status,
                BatchStatus::Succeeded,
                "seq {seq} {point:?}: {:#?}",
                v.steps
            );
            assert_eq!(w.accounts_on_host(), n, "seq {seq} {point:?}");
            let dup = w.host.with_state(|s| {
                let mut per: std::collections::HashMap<String, u32> = Default::default();
                for a in s.accounts.iter().filter(|a| !a.deleted) {
                    *per.entry(a.extra[MARKER_KEY].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
                per.values().filter(|c| **c > 1).count()
            });
            assert_eq!(dup, 0, "seq {seq} {point:?}: duplicate accounts");
            assert_eq!(
                w.host
                    .with_state(|s| (s.groups.len(), s.channels.len(), s.keys.len())),
                (1, 1, 1),
                "seq {seq} {point:?}"
            );
            // The ledger is complete: every object of ours has its row.
            let mut ledger: Vec<String> = w
                .ctx
                .core
                .store
                .live_ledger(w.host_id)
                .await
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            ledger.sort();
            ledger.dedup();
            assert_eq!(
                (w.ledger_accounts().await, ledger),
                (
                    n,
                    vec![
                        "account".into(),
                        "channel".into(),
                        "group".into(),
                        "user_key".into()
                    ]
                ),
                "seq {seq} {point:?}"
            );
            assert!(
                w.ctx
                    .core
                    .store
                    .access_key(w.host_id, "relay-ds")
                    .await
                    .unwrap()
                    .is_some(),
                "seq {seq} {point:?}: the probe user's key is stored"
            );
        }
    }
}

#[tokio::test]
async fn an_answer_lost_after_the_host_committed_is_replayed_not_duplicated() {
    // A batch create whose answer is lost: the steps stay `sent` and are
    // adopted by their marker, nothing is sent twice.
    let w = world(Profile::V0_1_179).await;
    w.host.add_fault(fakehost::Fault {
        method: reqwest::Method::POST,
        path_prefix: "/api/v1/admin/accounts/batch".into(),
        kind: fakehost::FaultKind::DropAfterCommit,
        times: 1,
    });
    let id = w.plan(&keys(4), AccessMode::SelfService).await;
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    assert_eq!(w.accounts_on_host(), 4);
    assert_eq!(
        w.host.calls("POST /api/v1/admin/accounts"),
        0,
        "no single create after the lost answer"
    );
    let v = w.view(id).await;
    assert!(v
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Account)
        .all(|s| s.response.contains("found on the host by its marker")));
    // A single create whose answer is lost stays `sent` (it may exist); the
    // re-run looks it up first, finds it and adopts it: nothing is resent.
    let w = world(Profile::V0_1_179).await;
    w.host.add_fault(fakehost::Fault {
        method: reqwest::Method::POST,
        path_prefix: "/api/v1/admin/accounts".into(),
        kind: fakehost::FaultKind::DropAfterCommit,
        times: 1,
    });
    let id = w.plan(&keys(1), AccessMode::SelfService).await;
    // (The account exists on the host, so the group is ready; but the
    // batch's only key has no recorded account and failed its test, so the
    // batch failed.)
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Failed
    );
    assert_eq!(
        w.view(id).await.access_status,
        AccessStatus::SelfServiceReady
    );
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    assert_eq!(w.accounts_on_host(), 1);
    assert_eq!(
        w.host.calls("POST /api/v1/admin/accounts"),
        1,
        "the re-run adopted the account instead of sending again"
    );
    assert_eq!(w.ledger_accounts().await, 1);
}

#[tokio::test]
async fn access_prerequisites_are_checked_before_planning() {
    let w = world(Profile::V0_1_179).await;
    // Backend mode on the host: the probe user can no longer sign in.
    w.host
        .set_public_setting("backend_mode_enabled", serde_json::json!(true));
    w.ctx.core.probe_host("alice", w.host_id).await.unwrap();
    let e = w
        .ctx
        .core
        .plan_batch(
            "alice",
            &BatchRequest {
                host_id: w.host_id,
                pack_version_id: w.pack_version,
                provider_key: "ds".into(),
                mode: None,
                keys_text: keys(1).join("\n"),
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("backend mode"), "{e}");
    assert_eq!(
        w.ctx.core.list_batches(None, 10).await.unwrap().items.len(),
        0,
        "nothing planned"
    );
    // Bad input names the field.
    let e = w
        .ctx
        .core
        .plan_batch(
            "alice",
            &BatchRequest {
                host_id: w.host_id,
                pack_version_id: w.pack_version,
                provider_key: "nope".into(),
                mode: None,
                keys_text: "x".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("provider:"), "{e}");
}

#[tokio::test]
async fn a_batch_left_running_by_a_stopped_server_is_marked_failed_and_resumes() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(2), AccessMode::SelfService).await;
    let r = w
        .ctx
        .core
        .apply_batch(
            "alice",
            id,
            ApplyOptions {
                crash_at: Some((3, CrashPoint::AfterCall)),
                ..fast()
            },
        )
        .await;
    assert!(r.is_err());
    assert_eq!(w.view(id).await.status, BatchStatus::Running);
    // Another process's live run is left alone ...
    assert_eq!(
        w.ctx
            .core
            .store
            .mark_interrupted_runs(|_| false)
            .await
            .unwrap(),
        0
    );
    assert_eq!(w.view(id).await.status, BatchStatus::Running);
    // ... a gone holder's is marked failed.
    assert_eq!(
        w.ctx
            .core
            .store
            .mark_interrupted_runs(|_| true)
            .await
            .unwrap(),
        1
    );
    assert_eq!(w.view(id).await.status, BatchStatus::Failed);
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    assert_eq!(w.accounts_on_host(), 2);
}

#[tokio::test]
async fn after_a_master_key_rotation_imported_keys_are_still_recognised() {
    use provisioning_core::secrets::{Cipher, MasterKey};
    let w = world(Profile::V0_1_179).await;
    let old = MasterKey::generate();
    let store = w.ctx.core.store.clone();
    // The installation as it started: its keyring is created from `old`.
    let before = provisioning_core::ops::Core {
        store: store.clone(),
        cipher: Cipher::new(&old, &[]),
    }
    .with_keyring()
    .await
    .unwrap();
    // (The host's secrets were sealed by the test's own cipher: re-register
    // it under this installation.)
    let h = before
        .create_host("alice", &crate::input_for(&w.host, "rotated"))
        .await
        .unwrap();
    before.probe_host("alice", h.id).await.unwrap();
    let req = |host_id| BatchRequest {
        host_id,
        pack_version_id: w.pack_version,
        provider_key: "ds".into(),
        mode: Some(AccessMode::SelfService),
        keys_text: keys(3).join("\n"),
    };
    let id = before.plan_batch("alice", &req(h.id)).await.unwrap();
    assert_eq!(
        before.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    // Rotate: a new master key, the old one kept for opening.
    let new = MasterKey::generate();
    let after = provisioning_core::ops::Core {
        store: store.clone(),
        cipher: Cipher::new(&new, &[old]),
    }
    .with_keyring()
    .await
    .unwrap();
    let again = after.plan_batch("alice", &req(h.id)).await.unwrap();
    let plan = after.batch_view(again).await.unwrap().plan;
    assert_eq!(
        plan.steps
            .iter()
            .filter(|s| s.kind == StepKind::Account)
            .count(),
        0,
        "every key is recognised as imported"
    );
    assert!(plan.skipped.iter().all(|s| s
        .reason
        .contains(&format!("already imported by batch #{id}"))));
    // The keyring was re-sealed under the new key: the old one is no longer needed.
    let only_new = provisioning_core::ops::Core {
        store,
        cipher: Cipher::new(&new, &[]),
    }
    .with_keyring()
    .await
    .unwrap();
    let probe = provisioning_core::secrets::Secret::new(keys(1)[0].clone());
    assert_eq!(
        only_new.cipher.fingerprint(&probe),
        before.cipher.fingerprint(&probe)
    );
}

#[tokio::test]
async fn pack_versions_are_numbered_within_their_own_pack() {
    let ctx = core().await;
    let c = &ctx.core;
    let (first, _) = c
        .upload_pack("t", &PACK.replace("UPSTREAM", "https://a.example"))
        .await
        .unwrap();
    let (second, _) = c
        .upload_pack("t", &PACK.replace("UPSTREAM", "https://b.example"))
        .await
        .unwrap();
    let other = PACK
        .replace("UPSTREAM", "https://a.example")
        .replace("id: test-pack", "id: other-pack");
    let (other, _) = c.upload_pack("t", &other).await.unwrap();
    let versions = c.pack_versions().await.unwrap();
    let number = |id: i64| versions.iter().find(|v| v.id == id).unwrap().number;
    assert_eq!((number(first), number(second), number(other)), (1, 2, 1));
    let v2 = versions.iter().find(|v| v.id == second).unwrap();
    assert!(v2.label().starts_with("v2 · "), "{}", v2.label());
}
