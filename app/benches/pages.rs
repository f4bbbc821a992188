//! Server-side rendering at real sizes: a database seeded with 200 batches
//! and 100,000 journal steps (one batch of 5,000 keys, applied for real
//! against the fake host), then the overview, the batch list and the big
//! batch's page fetched by a signed-in client, at a fixed 50 requests/s and
//! at saturation, with the server's resident memory before and after. The
//! server runs in a child process (this binary again) on the seeded
//! database, so its memory is its own.
//!
//! Run: `cargo bench -p app --features ssr --bench pages`
//! (env: BENCH_KEYS (5000), BENCH_BATCHES (200), BENCH_STEPS (100000),
//! BENCH_SECONDS per measurement (5), BENCH_CLIENTS at saturation (8)).

#[path = "../../benches/support/mod.rs"]
mod support;

use app::server::config::Config;
use app::server::state::AppState;
use provisioning_core::model::{AccessMode, BatchStatus, Role};
use provisioning_core::ops::{ApplyOptions, BatchRequest};
use provisioning_core::secrets::Secret;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::env;
use tower_sessions_sqlx_store::SqliteStore;

const PASSWORD: &str = "bench password 1234";

#[tokio::main]
async fn main() {
    if let Ok(db) = std::env::var("BENCH_SERVE_DB") {
        return serve_child(std::path::Path::new(&db)).await;
    }
    let keys = env("BENCH_KEYS", 5000) as usize;
    let batches = env("BENCH_BATCHES", 200) as i64;
    let steps = env("BENCH_STEPS", 100_000) as i64;
    let seconds = env("BENCH_SECONDS", 5);
    let clients = env("BENCH_CLIENTS", 8) as usize;
    let mut out = std::io::stdout();

    let t = Instant::now();
    let w = support::world(keys + 3, Duration::ZERO).await;
    let core = &w.core;
    let plan = |ks: &[String]| BatchRequest {
        host_id: w.host_id,
        pack_version_id: w.pack_version,
        provider_key: "ds".into(),
        mode: Some(AccessMode::SelfService),
        keys_text: ks.join("\n"),
    };
    let opts = || ApplyOptions {
        concurrency: 8,
        models_cache_wait: Duration::ZERO,
        crash_at: None,
    };
    let big = core
        .plan_batch("bench", &plan(&w.keys[..keys]))
        .await
        .unwrap();
    assert_eq!(
        core.apply_batch("bench", big, opts()).await.unwrap(),
        BatchStatus::Succeeded
    );
    let small = core
        .plan_batch("bench", &plan(&w.keys[keys..]))
        .await
        .unwrap();
    core.apply_batch("bench", small, opts()).await.unwrap();
    seed_clones(core, big, small, batches - 2, steps).await;
    let (n_batches, n_steps): (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM batches), (SELECT COUNT(*) FROM steps)")
            .fetch_one(core.store.pool())
            .await
            .unwrap();
    writeln!(
        out,
        "seeded                  {n_batches} batches, {n_steps} steps ({keys} keys in batch #{big}, {} host calls) in {:.1} s",
        w.host.total_calls(),
        t.elapsed().as_secs_f64()
    )
    .unwrap();

    core.create_operator("bench", "bench", Secret::new(PASSWORD), Role::Admin)
        .await
        .unwrap();
    let (mut child, url) = spawn_server(&w._dir.path().join("bench.db"));
    let pid = child.id();
    let client = signed_in(&url).await;
    let pages = [
        ("overview", "/".to_string()),
        ("batch list", "/batches".to_string()),
        ("batch page", format!("/batches/{big}")),
    ];
    writeln!(out, "server rss at start     {:.1} MB", rss_mb(pid)).unwrap();
    for (name, path) in &pages {
        let body = client
            .get(format!("{url}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("</html>"), "{name}: not a page");
        writeln!(
            out,
            "{name:<12} html       {:.1} KB",
            body.len() as f64 / 1024.0
        )
        .unwrap();
    }
    let window = Duration::from_secs(seconds);
    for (name, path) in &pages {
        let target = format!("{url}{path}");
        let fixed = paced(&client, &target, 50.0, window).await;
        let sat = saturate(&client, &target, clients, window).await;
        writeln!(
            out,
            "{name:<12} @50/s      p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests)",
            fixed.p(0.50),
            fixed.p(0.99),
            fixed.n()
        )
        .unwrap();
        writeln!(
            out,
            "{name:<12} saturated  p50 {:>7.2} ms  p99 {:>7.2} ms  {:>7.1} requests/s ({clients} clients)",
            sat.p(0.50),
            sat.p(0.99),
            sat.n() as f64 / window.as_secs_f64()
        )
        .unwrap();
    }
    writeln!(out, "server rss after        {:.1} MB", rss_mb(pid)).unwrap();
    let _ = child.kill();
}

/// Starts this binary as the server on `db`; returns it and its URL.
fn spawn_server(db: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("BENCH_SERVE_DB", db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

/// The child: serves the seeded database until killed.
async fn serve_child(db: &std::path::Path) {
    let core = provisioning_core::ops::Core {
        store: provisioning_core::store::Store::open(db).await.unwrap(),
        cipher: provisioning_core::secrets::Cipher::new(&support::master_key(), &[]),
    };
    let url = serve(core, db.parent().unwrap()).await;
    let mut out = std::io::stdout();
    writeln!(out, "{url}").unwrap();
    out.flush().unwrap();
    std::future::pending::<()>().await;
}

/// Fills the database up to `batches` more batches and `steps` steps in
/// all: copies of the small batch, each with a share of the big batch's
/// steps (their evidence included), so lists and counts have real sizes.
async fn seed_clones(
    core: &provisioning_core::ops::Core,
    big: i64,
    small: i64,
    batches: i64,
    steps: i64,
) {
    let pool = core.store.pool();
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM steps")
        .fetch_one(pool)
        .await
        .unwrap();
    let per = ((steps - have).max(0) / batches.max(1)).max(1);
    for i in 0..batches {
        let mut tx = pool.begin().await.unwrap();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO batches (uid, host_id, pack_version_id, provider_key, access_mode, status, access_status,
                host_version, product_version, created_by, created_at_ms, updated_at_ms, key_count, plan_head)
             SELECT 'bench-copy-' || ?, host_id, pack_version_id, provider_key, access_mode, status, access_status,
                host_version, product_version, created_by, created_at_ms, updated_at_ms, ? / 2, plan_head
             FROM batches WHERE id = ? RETURNING id",
        )
        .bind(i)
        .bind(per)
        .bind(small)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO batch_plans (batch_id, plan_json) SELECT ?, plan_json FROM batch_plans WHERE batch_id = ?",
        )
        .bind(id)
        .bind(small)
        .execute(&mut *tx)
        .await
        .unwrap();
        let run: i64 = sqlx::query_scalar(
            "INSERT INTO runs (batch_id, kind, status, actor, created_at_ms, finished_at_ms)
             VALUES (?, 'apply', 'done', 'bench', 0, 0) RETURNING id",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO steps (batch_id, seq, kind, action, target, fingerprint, idempotency_key, marker, state,
                request_json, response_json, remote_id, error, started_at_ms, finished_at_ms, run_id, error_kind)
             SELECT ?, seq, kind, action, target, fingerprint, idempotency_key, marker, state,
                request_json, response_json, remote_id, error, started_at_ms, finished_at_ms, ?, error_kind
             FROM steps WHERE batch_id = ? ORDER BY seq LIMIT ?",
        )
        .bind(id)
        .bind(run)
        .bind(big)
        .bind(per)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        core.store.refresh_batch_summary(id).await.unwrap();
    }
}

async fn serve(core: provisioning_core::ops::Core, dir: &std::path::Path) -> String {
    let sessions = SqliteStore::new(core.store.pool().clone());
    sessions.migrate().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config {
        database: dir.join("bench.db"),
        ..Config::local(dir, addr)
    };
    let state = AppState::new(core, config);
    let router = app::server::router::build_router(state, sessions);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

async fn signed_in(url: &str) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let body = client
        .get(format!("{url}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let i = body.find("name=\"_csrf\" value=\"").expect("a CSRF field");
    let csrf = &body[i + 20..i + 52];
    let r = client
        .post(format!("{url}/login"))
        .form(&[
            ("_csrf", csrf),
            ("username", "bench"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "sign-in failed");
    client
}

struct Latencies(Vec<f64>);

impl Latencies {
    fn n(&self) -> usize {
        self.0.len()
    }
    fn p(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> f64 {
    let t = Instant::now();
    let r = client.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.bytes().await.unwrap();
    t.elapsed().as_secs_f64() * 1000.0
}

/// Requests started at a fixed rate (each on its own task), for `window`.
async fn paced(client: &reqwest::Client, url: &str, rate: f64, window: Duration) -> Latencies {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let end = Instant::now() + window;
    let mut tasks = Vec::new();
    while Instant::now() < end {
        tick.tick().await;
        let (c, u) = (client.clone(), url.to_string());
        tasks.push(tokio::spawn(async move { fetch(&c, &u).await }));
    }
    let mut v = Vec::new();
    for t in tasks {
        v.push(t.await.unwrap());
    }
    Latencies(v)
}

/// `clients` loops fetching back to back for `window`.
async fn saturate(
    client: &reqwest::Client,
    url: &str,
    clients: usize,
    window: Duration,
) -> Latencies {
    let end = Instant::now() + window;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (c, u) = (client.clone(), url.to_string());
            tokio::spawn(async move {
                let mut v = Vec::new();
                while Instant::now() < end {
                    v.push(fetch(&c, &u).await);
                }
                v
            })
        })
        .collect();
    let mut v = Vec::new();
    for t in tasks {
        v.extend(t.await.unwrap());
    }
    Latencies(v)
}

/// A process's resident memory (Linux), in MB.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
