//! Keep watching, with a clock moved by hand: a scheduled readiness check
//! turns a batch degraded when its upstream runs out of money, one signed
//! alert reaches a webhook and one resolved message when it recovers; a
//! failing webhook is retried with backoff and shown failed after the last
//! try; balances read known, unknown and unsupported, never a made-up 0.

use crate::import::{fast, keys, world, World};
use fakehost::{Profile, UpstreamBehaviour, WebhookReceiver};
use provisioning_core::model::{
    AccessMode, AccessStatus, BalanceState, BatchStatus, CheckOutcome, DELIVERY_ATTEMPTS,
};
use provisioning_core::ops::{
    sign_body, Clock, ManualClock, WatchSettings, WebhookInput, SIGNATURE_HEADER,
};
use serde_json::Value;
use std::time::Duration;

const PACK: &str = "schema: 1
id: watch-pack
name: Watch
providers:
  deepseek:
    display_name: DeepSeek (fake)
    native_platform: deepseek
    api_family: deepseek
    base_url: UPSTREAM
    smoke_model: deepseek-flash
    low_balance: 200
    models:
      deepseek-flash:
        price: { currency: USD, input: 0.3, output: 1.2, source: test, verified: 2026-11-01 }
    access:
      mode: self_service
  glm:
    display_name: GLM-like (fake)
    api_family: glm
    base_url: UPSTREAM
    smoke_model: deepseek-flash
    models:
      deepseek-flash:
        price: { currency: USD, input: 0.3, output: 1.2, source: test, verified: 2026-11-01 }
    access:
      mode: self_service
";

/// A world with the watch pack, a batch of `n` keys of `provider` applied
/// and ready, and a clock at the real time.
async fn ready(provider: &str, n: usize) -> (World, i64, i64, ManualClock) {
    let w = world(Profile::V0_1_179).await;
    let text = PACK.replace("UPSTREAM", &w.upstream.url());
    let parsed = provisioning_core::pack::parse(&text, None).unwrap();
    let (pv, _) = w
        .ctx
        .core
        .store
        .insert_pack_version(
            "alice",
            "watch-pack",
            "Watch",
            &parsed.hash,
            "yaml",
            &text,
            &serde_json::to_string(&parsed.pack).unwrap(),
            false,
        )
        .await
        .unwrap();
    let id = plan(&w, pv, provider, &keys(n)).await;
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    assert!(w.view(id).await.access_status.is_ready());
    (
        w,
        id,
        pv,
        ManualClock::at(provisioning_core::store::now_ms()),
    )
}

/// Plans a self-service batch of `keys` of the watch pack's `provider`.
async fn plan(w: &World, pv: i64, provider: &str, keys: &[String]) -> i64 {
    w.ctx
        .core
        .plan_batch(
            "alice",
            &provisioning_core::ops::BatchRequest {
                host_id: w.host_id,
                pack_version_id: pv,
                provider_key: provider.into(),
                mode: Some(AccessMode::SelfService),
                keys_text: keys.join("\n"),
            },
        )
        .await
        .unwrap()
}

fn settings() -> WatchSettings {
    WatchSettings::default()
}

/// One tick; what it ran of the host's jobs (retention, product-wide,
/// left out).
async fn tick(w: &World, clock: &ManualClock) -> provisioning_core::ops::TickReport {
    let mut r = w
        .ctx
        .core
        .tick("test-owner", clock, &settings())
        .await
        .unwrap();
    r.ran.retain(|(job, _)| job.starts_with("host:"));
    r
}

/// Every job of the host but `keep` switched off, `keep` every 60 s.
async fn only(w: &World, clock: &ManualClock, keep: &str) {
    for job in ["probe", "readiness", "drift", "balance"] {
        w.ctx
            .core
            .set_host_schedule("alice", w.host_id, job, "60", job == keep, clock.now_ms())
            .await
            .unwrap();
    }
}

async fn hook(w: &World, url: &str, kinds: &[&str]) -> String {
    let (_, secret) = w
        .ctx
        .core
        .create_webhook(
            "alice",
            &WebhookInput {
                name: "ops".into(),
                url: url.into(),
                format: "generic".into(),
                kinds: kinds.iter().map(|k| k.to_string()).collect(),
                secret: String::new(),
            },
        )
        .await
        .unwrap();
    secret.expect("the product made the secret and shows it once")
}

#[tokio::test]
async fn a_scheduled_check_degrades_the_batch_alerts_once_and_resolves_once() {
    let (w, id, _, clock) = ready("deepseek", 1).await;
    let receiver = WebhookReceiver::start().await;
    let secret = hook(&w, &receiver.url(), &["not_ready"]).await;
    only(&w, &clock, "readiness").await;
    let ready_access = w.view(id).await.access_status;

    // Nothing is due before the interval has passed.
    let r = tick(&w, &clock).await;
    assert!(r.ran.is_empty(), "{r:?}");

    // The upstream runs out of money: the next scheduled check finds the
    // route listed but not serving.
    w.upstream
        .add_key(&keys(1)[0], UpstreamBehaviour::QuotaExhausted);
    let chats = w.upstream.calls("/v1/chat/completions");
    clock.advance(Duration::from_secs(67));
    let r = tick(&w, &clock).await;
    assert_eq!(
        r.ran,
        vec![(format!("host:{}:readiness", w.host_id), "attention".into())]
    );
    assert_eq!(
        w.upstream.calls("/v1/chat/completions") - chats,
        1,
        "one minimal completion per check"
    );
    assert_eq!(w.view(id).await.access_status, AccessStatus::Degraded);
    let checks = w.ctx.core.readiness_checks(id, 10).await.unwrap();
    assert_eq!(checks[0].outcome, CheckOutcome::Degraded);
    assert_eq!(checks[0].access_before, ready_access);
    assert_eq!(r.delivered, 1, "the alert went out in the same tick");

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let body = &got[0].body;
    assert_eq!(
        got[0].header(SIGNATURE_HEADER),
        Some(format!("sha256={}", sign_body(&secret, body.as_bytes())).as_str()),
        "signed with the webhook's secret"
    );
    assert_ne!(
        got[0].header(SIGNATURE_HEADER),
        Some(format!("sha256={}", sign_body("another", body.as_bytes())).as_str())
    );
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["event"], "firing");
    assert_eq!(v["kind"], "not_ready");
    assert_eq!(v["batch_id"], id);
    assert!(!body.contains(&keys(1)[0]), "no key in an alert: {body}");

    // Still exhausted: the incident goes on, nothing more is sent.
    clock.advance(Duration::from_secs(67));
    let r = tick(&w, &clock).await;
    assert_eq!(r.ran.len(), 1);
    assert_eq!(receiver.received().len(), 1, "one alert per incident");
    let (open, _) = w.ctx.core.incidents(10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].batch_id, Some(id));

    // Topped up: the next check proves it ready again and says so once.
    w.upstream.add_key(&keys(1)[0], UpstreamBehaviour::Ok);
    clock.advance(Duration::from_secs(67));
    let r = tick(&w, &clock).await;
    assert_eq!(
        r.ran,
        vec![(format!("host:{}:readiness", w.host_id), "ok".into())]
    );
    assert_eq!(w.view(id).await.access_status, ready_access);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let v: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(v["event"], "resolved");
    assert_eq!(v["incident_id"], open[0].id);
    let (open, resolved) = w.ctx.core.incidents(10).await.unwrap();
    assert!(open.is_empty());
    assert_eq!(resolved.len(), 1);

    clock.advance(Duration::from_secs(67));
    tick(&w, &clock).await;
    assert_eq!(receiver.received().len(), 2, "quiet while it stays ready");
    // Every check is audited under the scheduler's name.
    let runs = w
        .ctx
        .core
        .store
        .job_runs(Some(&format!("host:{}:readiness", w.host_id)), 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 4);
}

#[tokio::test]
async fn a_failing_webhook_is_retried_with_backoff_then_shown_failed() {
    let (w, id, _, clock) = ready("deepseek", 1).await;
    let receiver = WebhookReceiver::start().await;
    receiver.answer(503, "down");
    hook(&w, &receiver.url(), &[]).await;
    // A person's check now, through the same gate.
    w.upstream
        .add_key(&keys(1)[0], UpstreamBehaviour::QuotaExhausted);
    let c = w
        .ctx
        .core
        .recheck_readiness("alice", id, &clock)
        .await
        .unwrap();
    assert_eq!(c.outcome, CheckOutcome::Degraded);
    assert_eq!(c.actor, "alice");

    let mut gaps = Vec::new();
    let mut last_attempt_at = clock.now_ms();
    for attempt in 1..=DELIVERY_ATTEMPTS {
        let (d, retry, failed) = w.ctx.core.deliver_due("test-owner", &clock).await.unwrap();
        assert_eq!((d, retry + failed), (0, 1), "attempt {attempt} was due");
        // Not due again until its backoff has passed.
        assert_eq!(
            w.ctx.core.deliver_due("test-owner", &clock).await.unwrap(),
            (0, 0, 0)
        );
        let log = w.ctx.core.deliveries(None, 10).await.unwrap();
        assert_eq!(log[0].attempts, attempt);
        assert_eq!(log[0].last_status, Some(503));
        if attempt < DELIVERY_ATTEMPTS {
            assert_eq!(log[0].state, "pending");
            let wait = log[0].next_at_ms - clock.now_ms();
            gaps.push(wait);
            clock.advance(Duration::from_millis(wait as u64));
        } else {
            assert_eq!(log[0].state, "failed", "shown failed after the last try");
            assert!(log[0].finished_at_ms.is_some());
        }
        last_attempt_at = clock.now_ms().max(last_attempt_at);
    }
    assert_eq!(gaps, vec![30_000, 60_000, 120_000, 240_000, 480_000]);
    assert_eq!(receiver.received().len() as i64, DELIVERY_ATTEMPTS);
    // A failed delivery is not tried again.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        w.ctx.core.deliver_due("test-owner", &clock).await.unwrap(),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn balances_are_known_unknown_or_unsupported_never_a_made_up_zero() {
    let (w, id, pv, clock) = ready("deepseek", 2).await;
    let s = settings();
    // keys(2)[1] is exhausted at the provider: a known 0.00, and low.
    w.upstream
        .add_key(&keys(2)[1], UpstreamBehaviour::QuotaExhausted);
    let host_route_before = w
        .host
        .calls("GET /api/v1/admin/cn-providers/accounts/:id/balance");
    let b = w.ctx.core.read_balances(id, &clock, &s).await.unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].state, BalanceState::Known);
    assert_eq!(b[0].amount, Some(110.0));
    assert_eq!(b[0].currency.as_deref(), Some("CNY"));
    assert!(b[0].low, "110 is below the pack's threshold of 200");
    assert_eq!(b[1].state, BalanceState::Known);
    assert_eq!(b[1].amount, Some(0.0));
    assert!(b[1].low);
    assert!(b[0].masked.starts_with("sk-") && !b[0].masked.contains("abcdefghijkl"));
    // Native deepseek accounts: the host's own balance route answered.
    assert_eq!(
        w.host
            .calls("GET /api/v1/admin/cn-providers/accounts/:id/balance")
            - host_route_before,
        2
    );
    assert!(b[0].detail.starts_with("the host: GET"), "{}", b[0].detail);

    // The provider's billing service fails: unknown, with why, no amount.
    w.upstream.fail_balance(Some(500));
    let b = w.ctx.core.read_balances(id, &clock, &s).await.unwrap();
    assert!(b
        .iter()
        .all(|x| x.state == BalanceState::Unknown && x.amount.is_none() && !x.low));
    assert!(b[0].detail.contains("HTTP 500"), "{}", b[0].detail);
    w.upstream.fail_balance(None);

    // A provider without a balance endpoint: unsupported, nothing asked.
    let glm = plan(&w, pv, "glm", &keys(4)[3..]).await;
    w.ctx.core.apply_batch("alice", glm, fast()).await.unwrap();
    let before = w.upstream.calls("/user/balance") + w.upstream.calls("/v1/user/balance");
    let b = w.ctx.core.read_balances(glm, &clock, &s).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].state, BalanceState::Unsupported);
    assert_eq!(b[0].amount, None);
    assert_eq!(
        w.upstream.calls("/user/balance") + w.upstream.calls("/v1/user/balance"),
        before
    );
    // What the page reads back is what was stored.
    assert_eq!(w.ctx.core.balances(glm).await.unwrap(), b);
}

#[tokio::test]
async fn the_balance_job_alerts_on_low_keys_once() {
    let (w, id, _, clock) = ready("deepseek", 1).await;
    let receiver = WebhookReceiver::start().await;
    hook(&w, &receiver.url(), &["balance_low"]).await;
    only(&w, &clock, "balance").await;
    clock.advance(Duration::from_secs(67));
    let r = tick(&w, &clock).await;
    assert_eq!(r.ran[0].1, "attention", "110 CNY < 200: low");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let v: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(v["kind"], "balance_low");
    assert_eq!(v["batch_id"], id);
    clock.advance(Duration::from_secs(67));
    tick(&w, &clock).await;
    assert_eq!(receiver.received().len(), 1, "still low: no second alert");
}

#[tokio::test]
async fn bad_webhook_and_schedule_input_names_its_field_and_writes_nothing() {
    let (w, _, _, clock) = ready("deepseek", 1).await;
    let core = &w.ctx.core;
    for (input, field) in [
        (
            WebhookInput {
                name: "x".into(),
                url: "not a url".into(),
                format: "generic".into(),
                ..Default::default()
            },
            "url",
        ),
        (
            WebhookInput {
                name: "x".into(),
                url: "http://169.254.169.254/latest".into(),
                format: "generic".into(),
                ..Default::default()
            },
            "url",
        ),
        (
            WebhookInput {
                name: "x".into(),
                url: "https://example.com/h".into(),
                format: "teams".into(),
                ..Default::default()
            },
            "format",
        ),
    ] {
        match core.create_webhook("alice", &input).await {
            Err(provisioning_core::ops::OpError::Invalid(e)) => assert_eq!(e.field, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(core.webhooks().await.unwrap().is_empty());
    for (job, interval, field) in [
        ("probe", "0", "interval_s"),
        ("probe", "soon", "interval_s"),
        ("weather", "60", "job"),
    ] {
        match core
            .set_host_schedule("alice", w.host_id, job, interval, true, clock.now_ms())
            .await
        {
            Err(provisioning_core::ops::OpError::Invalid(e)) => assert_eq!(e.field, field),
            other => panic!("{job} {interval}: {other:?}"),
        }
    }
    // The URL is sealed at rest and shown masked.
    let (v, _) = core
        .create_webhook(
            "alice",
            &WebhookInput {
                name: "bot".into(),
                url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=secret-bot-token-123"
                    .into(),
                format: "wecom".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!v.url_masked.contains("secret-bot-token"));
    let raw: Vec<(String, String)> =
        sqlx::query_as("SELECT url_sealed, secret_sealed FROM webhooks")
            .fetch_all(core.store.pool())
            .await
            .unwrap();
    assert!(!raw[0].0.contains("secret-bot-token"));
    let dup = core
        .create_webhook(
            "alice",
            &WebhookInput {
                name: "BOT".into(),
                url: "https://example.com/h".into(),
                format: "generic".into(),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(dup, Err(provisioning_core::ops::OpError::Conflict(_))),
        "{dup:?}"
    );
}

#[tokio::test]
async fn two_processes_on_one_database_run_each_due_job_once_and_a_dead_holder_is_overtaken() {
    let (w, _, _, clock) = ready("deepseek", 1).await;
    // A second core on the same database file, as a second server is.
    let other = provisioning_core::ops::Core {
        store: provisioning_core::store::Store::open(&w.ctx.dir.path().join("core.db"))
            .await
            .unwrap(),
        cipher: w.ctx.core.cipher.clone(),
    };
    for job in ["probe", "readiness", "drift", "balance"] {
        w.ctx
            .core
            .set_host_schedule("alice", w.host_id, job, "60", true, clock.now_ms())
            .await
            .unwrap();
    }
    // Owner ids as lease::owner_id makes them (`machine:pid:nonce`); on
    // other machines, so neither presumes the other dead.
    const A: &str = "machine-a:100:aaaa";
    const B: &str = "machine-b:200:bbbb";
    let s = settings();
    for round in 0..3 {
        clock.advance(Duration::from_secs(67));
        let (a, b) = tokio::join!(w.ctx.core.tick(A, &clock, &s), other.tick(B, &clock, &s));
        let (a, b) = (a.unwrap(), b.unwrap());
        let mut ran: Vec<String> = a.ran.iter().chain(&b.ran).map(|(k, _)| k.clone()).collect();
        ran.retain(|k| k.starts_with("host:"));
        ran.sort();
        let mut want: Vec<String> = ["balance", "drift", "probe", "readiness"]
            .iter()
            .map(|j| format!("host:{}:{j}", w.host_id))
            .collect();
        want.sort();
        assert_eq!(ran, want, "round {round}: each job once, between them");
    }
    // A holder that died mid-run (its process is gone) is overtaken at
    // once; its run is closed as interrupted.
    let key = format!("host:{}:probe", w.host_id);
    let dead = format!(
        "{}:{}:dead",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        u32::MAX - 3
    );
    let row = w
        .ctx
        .core
        .store
        .schedules(Some(w.host_id))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.job_key == key)
        .unwrap();
    clock.advance(Duration::from_secs(67));
    w.ctx
        .core
        .store
        .claim_schedule(&row, &dead, clock.now_ms(), clock.now_ms() + 3_600_000)
        .await
        .unwrap()
        .expect("the dead process had claimed it");
    let r = other.tick(B, &clock, &s).await.unwrap();
    assert!(r.ran.iter().any(|(k, _)| *k == key), "{r:?}");
    let runs = other.store.job_runs(Some(&key), 10).await.unwrap();
    assert_eq!(runs[0].owner, B);
    assert_eq!(runs[1].owner, dead);
    assert_eq!(runs[1].outcome.as_deref(), Some("interrupted"));
}

/// What each job costs, measured on the fake host and upstream with two
/// ready batches (five keys) in one group: the closing figures of the
/// README come from here.
#[tokio::test]
async fn each_job_costs_what_the_readme_says() {
    let (w, first, pv, clock) = ready("deepseek", 3).await;
    let second = plan(&w, pv, "deepseek", &keys(5)[3..]).await;
    assert_eq!(
        w.ctx
            .core
            .apply_batch("alice", second, fast())
            .await
            .unwrap(),
        BatchStatus::Succeeded
    );
    let host_calls = || w.host.with_state(|s| s.calls.values().sum::<u32>());
    let completions =
        || w.upstream.calls("/v1/chat/completions") + w.upstream.calls("/chat/completions");
    let balance_reads = || w.upstream.calls("/user/balance") + w.upstream.calls("/v1/user/balance");
    let mut cost = Vec::new();
    for job in ["probe", "readiness", "drift", "balance"] {
        only(&w, &clock, job).await;
        clock.advance(Duration::from_secs(67));
        let (h, c, b) = (host_calls(), completions(), balance_reads());
        let r = tick(&w, &clock).await;
        assert_eq!(r.ran.len(), 1, "{job}: {r:?}");
        cost.push((
            job,
            host_calls() - h,
            completions() - c,
            balance_reads() - b,
        ));
    }
    let [probe, readiness, drift, balance] = [cost[0], cost[1], cost[2], cost[3]];
    assert_eq!(probe.2, 0, "a probe spends nothing upstream");
    assert!(probe.1 > 0 && probe.1 <= 15, "probe: {probe:?}");
    // One gate for the group: a listing and one 1-token completion through
    // the host, for both batches.
    assert_eq!(readiness.2, 1, "one completion per group: {readiness:?}");
    assert_eq!(readiness.1, 2, "one listing, one completion: {readiness:?}");
    for id in [first, second] {
        assert_eq!(w.ctx.core.readiness_checks(id, 5).await.unwrap().len(), 1);
    }
    let report = w.ctx.core.latest_drift(w.host_id).await.unwrap().unwrap();
    assert_eq!(drift.1, report.host_calls, "drift lists only: {drift:?}");
    assert_eq!(drift.2, 0);
    // Native deepseek accounts on a host with CN platforms: the host's
    // balance route per key, which asks the provider once each.
    assert_eq!(
        (balance.1, balance.2, balance.3),
        (5, 0, 5),
        "one balance read per key, through the host"
    );
}

#[tokio::test]
async fn an_incident_of_a_batch_rolled_back_is_closed_by_the_next_check() {
    let (w, id, _, clock) = ready("deepseek", 1).await;
    let receiver = WebhookReceiver::start().await;
    hook(&w, &receiver.url(), &["not_ready"]).await;
    only(&w, &clock, "readiness").await;
    w.upstream
        .add_key(&keys(1)[0], UpstreamBehaviour::QuotaExhausted);
    clock.advance(Duration::from_secs(67));
    tick(&w, &clock).await;
    assert_eq!(w.ctx.core.incidents(5).await.unwrap().0.len(), 1);
    w.ctx.core.rollback_batch("alice", id, false).await.unwrap();
    clock.advance(Duration::from_secs(67));
    let r = tick(&w, &clock).await;
    assert_eq!(r.ran[0].1, "ok", "nothing left to check: {r:?}");
    let (open, resolved) = w.ctx.core.incidents(5).await.unwrap();
    assert!(open.is_empty(), "{open:?}");
    assert_eq!(resolved[0].batch_id, Some(id));
    let got = receiver.received();
    assert_eq!(got.len(), 2, "the alert, then its close");
    assert!(
        got[1].body.contains("\"event\":\"resolved\""),
        "{}",
        got[1].body
    );
}

#[tokio::test]
async fn retention_folds_old_history_into_daily_counts_and_keeps_the_newest() {
    let (w, id, _, clock) = ready("deepseek", 1).await;
    let days = settings().history_days;
    let old = ManualClock::at(clock.now_ms() - (days + 10) * 86_400_000);
    for _ in 0..3 {
        w.ctx
            .core
            .recheck_readiness("alice", id, &old)
            .await
            .unwrap();
        old.advance(Duration::from_secs(600));
    }
    w.ctx
        .core
        .recheck_readiness("alice", id, &clock)
        .await
        .unwrap();
    assert_eq!(w.ctx.core.readiness_checks(id, 10).await.unwrap().len(), 4);
    tick(&w, &clock).await;
    clock.advance(Duration::from_secs(61));
    let r = w
        .ctx
        .core
        .tick("test-owner", &clock, &settings())
        .await
        .unwrap();
    assert!(
        r.ran.iter().any(|(k, o)| k == "retention" && o == "ok"),
        "{r:?}"
    );
    let left = w.ctx.core.readiness_checks(id, 10).await.unwrap();
    assert_eq!(left.len(), 1, "the recent check stays");
    assert!(left[0].at_ms >= clock.now_ms() - 86_400_000);
    let counts = w.ctx.core.store.history_counts(w.host_id).await.unwrap();
    let readiness: Vec<_> = counts.iter().filter(|c| c.0 == "readiness").collect();
    assert_eq!(readiness.len(), 1, "{counts:?}");
    assert_eq!(
        (readiness[0].2, readiness[0].3),
        (3, 0),
        "three ready checks that day"
    );
}

#[tokio::test]
async fn a_long_run_renews_its_lease_so_no_other_process_starts_it_again() {
    use fakehost::FakeHostConfig;
    // A slow host: every call takes 400 ms, a probe (three rounds of
    // calls) about 1.2 s.
    let w = crate::import::world_cfg(FakeHostConfig {
        profile: Profile::V0_1_179,
        latency: Duration::from_millis(400),
        ..Default::default()
    })
    .await;
    let clock = ManualClock::at(provisioning_core::store::now_ms());
    only(&w, &clock, "probe").await;
    let other = provisioning_core::ops::Core {
        store: provisioning_core::store::Store::open(&w.ctx.dir.path().join("core.db"))
            .await
            .unwrap(),
        cipher: w.ctx.core.cipher.clone(),
    };
    const A: &str = "machine-a:100:aaaa";
    const B: &str = "machine-b:200:bbbb";
    let s = WatchSettings {
        renew_every: Duration::from_millis(100),
        ..settings()
    };
    clock.advance(Duration::from_secs(67));
    let a = w.ctx.core.tick(A, &clock, &s);
    let b = async {
        // While A probes, time passes beyond its first lease (3 min): only
        // its renewals keep B from taking the run over.
        tokio::time::sleep(Duration::from_millis(500)).await;
        clock.advance(Duration::from_secs(240));
        tokio::time::sleep(Duration::from_millis(300)).await;
        other.tick(B, &clock, &s).await
    };
    let (a, b) = tokio::join!(a, b);
    let key = format!("host:{}:probe", w.host_id);
    assert!(a.unwrap().ran.iter().any(|(k, _)| *k == key));
    assert!(
        !b.unwrap().ran.iter().any(|(k, _)| *k == key),
        "B started a run A was still on"
    );
    let runs = w.ctx.core.store.job_runs(Some(&key), 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
}
