//! Drift check of a host with many accounts, few of them ours: 1,000 of
//! ours (imported first) among 10,000, every host call delayed by a fixed
//! latency. Reports the host calls the check makes and its elapsed time as
//! a ratio of the lower bound (calls × latency / concurrency).
//!
//! Run: `cargo bench -p provisioning-core --bench drift`
//! (env: BENCH_OURS, BENCH_FOREIGN, BENCH_LATENCY_MS).

use provisioning_core::model::{AccessMode, BatchStatus};
use provisioning_core::ops::{ApplyOptions, BatchRequest, DRIFT_CONCURRENCY};
use std::io::Write;
use std::time::{Duration, Instant};

mod support;
use support::env;

#[tokio::main]
async fn main() {
    let n = env("BENCH_OURS", 1000) as usize;
    let foreign = env("BENCH_FOREIGN", 9000) as usize;
    let latency = Duration::from_millis(env("BENCH_LATENCY_MS", 10));

    let w = support::world(n, latency).await;
    let (core, host, keys, pv) = (&w.core, &w.host, &w.keys, w.pack_version);
    let h_id = w.host_id;
    let id = core
        .plan_batch(
            "bench",
            &BatchRequest {
                host_id: h_id,
                pack_version_id: pv,
                provider_key: "ds".into(),
                mode: Some(AccessMode::SelfService),
                keys_text: keys.join("\n"),
            },
        )
        .await
        .unwrap();
    let status = core
        .apply_batch(
            "bench",
            id,
            ApplyOptions {
                concurrency: 8,
                models_cache_wait: Duration::ZERO,
                crash_at: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(status, BatchStatus::Succeeded);
    // Another team's accounts on the same host.
    host.with_state(|s| {
        let template = s.accounts[0].clone();
        for i in 0..foreign {
            let mut a = template.clone();
            a.id = s.id();
            a.name = format!("team-b-{i:05}");
            a.extra.clear();
            a.group_ids.clear();
            s.accounts.push(a);
        }
    });
    // The fake's own cost of the biggest listing (our 1,000 accounts).
    let http = reqwest::Client::new();
    let body = http
        .get(format!(
            "{}/api/v1/admin/accounts?search=rm-&page_size=1000&page=1",
            host.url()
        ))
        .header("x-api-key", host.admin_api_key())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let listing = host.call_spans().last().map(|s| s.work).unwrap_or_default();
    let before = host.total_calls();
    let t = Instant::now();
    let report = core.drift_check("bench", h_id).await.unwrap();
    let elapsed = t.elapsed();
    let calls = host.total_calls() - before;
    assert_eq!(report.findings.len(), 0, "a clean host has no findings");
    let bound = latency.as_secs_f64() * calls as f64 / DRIFT_CONCURRENCY as f64;
    let rounds = 2.0 * latency.as_secs_f64();
    let mut out = std::io::stdout();
    writeln!(out, "accounts on the host    {} ({n} ours)", n + foreign).unwrap();
    writeln!(out, "latency per host call   {} ms", latency.as_millis()).unwrap();
    writeln!(out, "concurrency             {DRIFT_CONCURRENCY}").unwrap();
    writeln!(
        out,
        "host calls              {calls} (report: {})",
        report.host_calls
    )
    .unwrap();
    writeln!(out, "objects compared        {}", report.compared).unwrap();
    writeln!(
        out,
        "elapsed                 {:.3} s",
        elapsed.as_secs_f64()
    )
    .unwrap();
    writeln!(
        out,
        "fake host's own time    {:.3} s for our accounts' listing alone ({} KB), latency excluded",
        listing.as_secs_f64(),
        body.len() / 1024
    )
    .unwrap();
    writeln!(
        out,
        "lower bound             {bound:.3} s (calls × latency / concurrency)"
    )
    .unwrap();
    writeln!(
        out,
        "ratio to lower bound    {:.2}",
        elapsed.as_secs_f64() / bound
    )
    .unwrap();
    writeln!(
        out,
        "two dependent rounds    {rounds:.3} s (the probe user's id, then its keys and subscriptions): ratio {:.2}",
        elapsed.as_secs_f64() / rounds
    )
    .unwrap();
}
