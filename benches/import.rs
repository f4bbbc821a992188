//! Imports 1,000 keys into the fake host with a fixed latency on every host
//! call, and reports the elapsed time as a ratio of the lower bound
//! (host calls × latency / concurrency) and the host calls per key; and
//! the same ratio for the time one call takes here when measured alone
//! (the latency plus the fake's own work, which shares these cores).
//!
//! Run: `cargo bench -p provisioning-core --bench import`
//! (env: BENCH_KEYS, BENCH_LATENCY_MS, BENCH_CONCURRENCY).

use provisioning_core::model::{AccessMode, BatchStatus};
use provisioning_core::ops::{ApplyOptions, BatchRequest};
use std::io::Write;
use std::time::{Duration, Instant};

mod support;
use support::env;

#[tokio::main]
async fn main() {
    let n = env("BENCH_KEYS", 1000) as usize;
    let latency = Duration::from_millis(env("BENCH_LATENCY_MS", 10));
    let concurrency = env("BENCH_CONCURRENCY", 8) as usize;
    let w = support::world(n, latency).await;
    let (core, host, keys, pv) = (&w.core, &w.host, &w.keys, w.pack_version);
    let h_id = w.host_id;
    // What one host call takes on this machine, one at a time: the asked
    // latency plus the fake's own work and the loopback round trip.
    let http = reqwest::Client::new();
    let probes = 40;
    let t = Instant::now();
    for _ in 0..probes {
        http.get(format!("{}/api/v1/admin/groups?page_size=1", host.url()))
            .header("x-api-key", host.admin_api_key())
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    let per_call = t.elapsed().as_secs_f64() / probes as f64;
    let before = host.total_calls();
    let t0 = Instant::now();
    let (c, keys_text) = (core.clone(), keys.join("\n"));
    let id = tokio::spawn(async move {
        c.plan_batch(
            "bench",
            &BatchRequest {
                host_id: h_id,
                pack_version_id: pv,
                provider_key: "ds".into(),
                mode: Some(AccessMode::SelfService),
                keys_text,
            },
        )
        .await
    })
    .await
    .unwrap()
    .unwrap();
    let plan_time = t0.elapsed();
    let plan_calls = host.total_calls() - before;
    // On a runtime worker, as the server runs a plan and an apply (in
    // spawned tasks), not on the thread that blocks on `main`.
    let t1 = Instant::now();
    let c = core.clone();
    let status = tokio::spawn(async move {
        c.apply_batch(
            "bench",
            id,
            ApplyOptions {
                concurrency,
                models_cache_wait: Duration::ZERO,
                crash_at: None,
            },
        )
        .await
    })
    .await
    .unwrap()
    .unwrap();
    let apply_time = t1.elapsed();
    let calls = host.total_calls() - before;
    assert_eq!(status, BatchStatus::Succeeded);
    let bound = latency.as_secs_f64() * calls as f64 / concurrency as f64;
    let total = plan_time + apply_time;
    let mut out = std::io::stdout();
    writeln!(out, "keys                    {n}").unwrap();
    writeln!(out, "latency per host call   {} ms", latency.as_millis()).unwrap();
    writeln!(out, "concurrency             {concurrency}").unwrap();
    writeln!(
        out,
        "host calls              {calls} ({:.2} per key; plan {plan_calls})",
        calls as f64 / n as f64
    )
    .unwrap();
    writeln!(
        out,
        "elapsed                 {:.2} s (plan {:.2} s, apply {:.2} s)",
        total.as_secs_f64(),
        plan_time.as_secs_f64(),
        apply_time.as_secs_f64()
    )
    .unwrap();
    writeln!(
        out,
        "lower bound             {bound:.2} s (calls × latency / concurrency)"
    )
    .unwrap();
    writeln!(
        out,
        "ratio to lower bound    {:.2}",
        total.as_secs_f64() / bound
    )
    .unwrap();
    let measured = per_call * calls as f64 / concurrency as f64;
    writeln!(
        out,
        "one host call, measured {:.2} ms (alone); with it the bound is {measured:.2} s, ratio {:.2}",
        per_call * 1e3,
        total.as_secs_f64() / measured
    )
    .unwrap();
    // The most calls the host had at once: the run may not exceed its share.
    let most = host.most_at_once(t0);
    phases(&mut out, &host.call_spans(), t0, concurrency, most);
}

/// Where the time went, from the host's side: how long before the first
/// account test and after the last one, and how full the run's share of
/// host calls was in each phase (calls in flight on average, of
/// `concurrency`), with what one call took as the host saw it, and the
/// most calls it had at once.
fn phases(
    out: &mut impl Write,
    spans: &[fakehost::CallSpan],
    t0: Instant,
    concurrency: usize,
    most: usize,
) {
    let spans: Vec<_> = spans.iter().filter(|s| s.start >= t0).collect();
    let is_test = |s: &&&fakehost::CallSpan| s.route.ends_with("/test");
    let (Some(first), Some(last)) = (
        spans.iter().filter(is_test).map(|s| s.start).min(),
        spans.iter().filter(is_test).map(|s| s.end).max(),
    ) else {
        return;
    };
    let end = spans.iter().map(|s| s.end).max().unwrap_or(last);
    let busy = |a: Instant, b: Instant| {
        let total: f64 = spans
            .iter()
            .map(|s| {
                let (x, y) = (s.start.max(a), s.end.min(b));
                y.saturating_duration_since(x).as_secs_f64()
            })
            .sum();
        total / b.saturating_duration_since(a).as_secs_f64().max(1e-9)
    };
    let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1e3;
    let tests: Vec<f64> = spans
        .iter()
        .filter(is_test)
        .map(|s| ms(s.start, s.end))
        .collect();
    let mean_test = tests.iter().sum::<f64>() / tests.len() as f64;
    if std::env::var("BENCH_SPANS").is_ok() {
        for s in spans.iter().filter(|s| s.start < first) {
            let _ = writeln!(
                out,
                "  {:>7.1} {:>7.1}  {}",
                ms(t0, s.start),
                ms(t0, s.end),
                s.route
            );
        }
    }
    let _ = writeln!(
        out,
        "before the first test   {:.0} ms, {:.1} of {concurrency} calls in flight",
        ms(t0, first),
        busy(t0, first)
    );
    let _ = writeln!(
        out,
        "tests                   {:.0} ms, {:.1} of {concurrency} in flight; a test {mean_test:.1} ms at the host",
        ms(first, last),
        busy(first, last)
    );
    let _ = writeln!(
        out,
        "after the last test     {:.0} ms to the last call",
        ms(last, end)
    );
    let _ = writeln!(
        out,
        "most calls at once       {most} (the share: {concurrency})"
    );
}
