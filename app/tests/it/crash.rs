//! The real crash test: the `dashboard batch apply` binary is SIGKILLed at
//! seeded random moments while it applies a batch against a fake host that
//! lives in this test process (so it survives every kill), restarted, and
//! killed again until the batch ends. Three host profiles (one that honours
//! `Idempotency-Key`, one that ignores it while claiming a version that
//! should, and a fork-numbered one), both access modes, at least 50 kills
//! each. After every batch: no account was created twice, the ledger and
//! the host agree object for object, readiness was reached, and every step
//! the journal could not decide is `unknown`, its key not on the host.

use fakehost::{FakeHost, FakeHostConfig, FakeUpstream, ProviderStyle, UpstreamBehaviour};
use provisioning_core::model::{AccessMode, BatchStatus, StepKind, StepState};
use provisioning_core::ops::{BatchRequest, Core};
use provisioning_core::secrets::{Cipher, MasterKey};
use provisioning_core::store::Store;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

const KEYS: usize = 12;
const KILLS_PER_CASE: u32 = 50;
/// At most this many kills per batch; then it is let to finish.
const KILLS_PER_BATCH: u32 = 12;

const PACK: &str = "schema: 1
id: crash-pack
name: Crash
providers:
  ds:
    display_name: DeepSeek (fake)
    native_platform: deepseek
    base_url: UPSTREAM
    smoke_model: deepseek-flash
    models:
      deepseek-flash:
        price: { currency: USD, input: 0.3, output: 1.2, source: test, verified: 2026-11-01 }
    access:
      mode: self_service
";

/// A small seeded generator (xorshift64*): the kill moments are
/// reproducible from the seed printed with the figures.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Case {
    name: &'static str,
    honour_idempotency: bool,
    version: Option<&'static str>,
}

#[derive(Default, Debug)]
struct Figures {
    kills: u32,
    batches: u32,
    unknown_steps: u32,
    adopted_steps: u32,
    /// Batches that ended `failed` because every account, or the probe
    /// user's key, was left `unknown` (hosts that cannot de-duplicate).
    undecided_batches: u32,
}

struct World {
    core: Core,
    host: FakeHost,
    _upstream: FakeUpstream,
    dir: tempfile::TempDir,
    master_hex: String,
    batch_id: i64,
    host_id: i64,
}

async fn world(case: &Case, mode: AccessMode, seed: u64) -> World {
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("sk-crash-{seed:08x}-{i:04}-abcdefgh"))
        .collect();
    for k in &keys {
        upstream.add_key(k, UpstreamBehaviour::Ok);
    }
    let host = FakeHost::start(FakeHostConfig {
        models_cache_ttl: Duration::ZERO,
        latency: Duration::from_millis(2),
        honour_idempotency: case.honour_idempotency,
        version_override: case.version.map(str::to_string),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let master_hex: String = (0..32)
        .map(|i| format!("{:02x}", (seed.wrapping_mul(31).wrapping_add(i * 7)) as u8))
        .collect();
    let core = Core {
        store: Store::open(&dir.path().join("dashboard.db")).await.unwrap(),
        cipher: Cipher::new(&MasterKey::parse(&master_hex).unwrap(), &[]),
    }
    .with_keyring()
    .await
    .unwrap();
    let h = core
        .create_host("crash", &crate::host_input(&host, "h"))
        .await
        .unwrap();
    core.probe_host("crash", h.id).await.unwrap();
    let (pv, _) = core
        .upload_pack("crash", &PACK.replace("UPSTREAM", &upstream.url()))
        .await
        .unwrap();
    let batch_id = core
        .plan_batch(
            "crash",
            &BatchRequest {
                host_id: h.id,
                pack_version_id: pv,
                provider_key: "ds".into(),
                mode: Some(mode),
                keys_text: keys.join("\n"),
            },
        )
        .await
        .unwrap();
    World {
        core,
        host,
        _upstream: upstream,
        dir,
        master_hex,
        batch_id,
        host_id: h.id,
    }
}

fn apply_command(w: &World) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dashboard"));
    c.args(["batch", "apply", &w.batch_id.to_string()])
        .env("DASHBOARD_DATA_DIR", w.dir.path())
        .env("DASHBOARD_MASTER_KEY", &w.master_hex)
        .env("DASHBOARD_MODELS_CACHE_WAIT_SECS", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Applies the batch with the binary, killing it at random moments, until
/// a run ends by itself. Returns the kills.
async fn apply_with_kills(w: &World, rng: &mut Rng) -> u32 {
    let mut kills = 0;
    // The window grows with each attempt that ended before its kill, so
    // kills land early (start-up, group, chunk in flight) and late (tests).
    let mut window_ms = 150;
    loop {
        let mut child = apply_command(w).spawn().expect("spawn dashboard");
        let started = Instant::now();
        let at = (kills < KILLS_PER_BATCH).then(|| Duration::from_millis(5 + rng.below(window_ms)));
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.code().is_some(),
                    "the run ended by a signal: {status}"
                );
                return kills;
            }
            if at.is_some_and(|at| started.elapsed() >= at) {
                // std's kill is SIGKILL on Unix.
                child.kill().expect("SIGKILL");
                child.wait().unwrap();
                kills += 1;
                window_ms += 40;
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "a run took more than 2 minutes"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn check(w: &World, case: &Case, mode: AccessMode, figures: &mut Figures) {
    let what = format!("{} {mode:?} batch {}", case.name, figures.batches);
    let v = w.core.batch_view(w.batch_id).await.unwrap();
    // No account created twice.
    let twice: Vec<(String, u32)> = w.host.with_state(|s| {
        s.creates_per_marker
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(m, n)| (m.clone(), *n))
            .collect()
    });
    assert!(
        twice.is_empty(),
        "{what}: created more than once: {twice:?}"
    );
    // Ledger and host agree: our accounts, group, channel, key.
    let ledger: BTreeSet<(String, String)> = w
        .core
        .store
        .live_ledger(w.host_id)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let on_host: BTreeSet<(String, String)> = w.host.with_state(|s| {
        let mut o = BTreeSet::new();
        for a in s.accounts.iter().filter(|a| !a.deleted) {
            o.insert(("account".to_string(), a.id.to_string()));
        }
        for g in s.groups.iter().filter(|g| !g.deleted) {
            o.insert(("group".to_string(), g.id.to_string()));
        }
        for c in &s.channels {
            o.insert(("channel".to_string(), c.id.to_string()));
        }
        for k in &s.keys {
            o.insert(("user_key".to_string(), k.id.to_string()));
        }
        for sub in s.subscriptions.iter().filter(|x| x.active()) {
            o.insert(("subscription".to_string(), sub.id.to_string()));
        }
        o
    });
    assert_eq!(ledger, on_host, "{what}: the ledger and the host disagree");
    // Every account step is decided; an undecided one is `unknown` and its
    // key is not on the host.
    let creates: HashMap<String, u32> = w.host.with_state(|s| s.creates_per_marker.clone());
    let accounts: Vec<_> = v
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Account)
        .collect();
    for s in &accounts {
        match s.state {
            StepState::Done => {
                if s.response.contains("adopted") {
                    figures.adopted_steps += 1;
                }
            }
            StepState::Unknown => {
                figures.unknown_steps += 1;
                assert_eq!(
                    creates.get(&s.marker).copied().unwrap_or(0),
                    0,
                    "{what}: step {} is unknown but its account exists",
                    s.seq
                );
            }
            other => panic!(
                "{what}: account step {} ended {other:?}: {}",
                s.seq, s.error
            ),
        }
    }
    // The probe user's key: an undecided one is `unknown` and not on the host.
    let key_unknown = v
        .steps
        .iter()
        .any(|s| s.kind == StepKind::UserKey && s.state == StepState::Unknown);
    if key_unknown {
        figures.unknown_steps += 1;
        assert_eq!(
            w.host.with_state(|s| s.keys.len()),
            0,
            "{what}: the unknown key exists"
        );
    }
    let all_unknown = accounts.iter().all(|s| s.state == StepState::Unknown);
    if case.honour_idempotency {
        assert_eq!(v.status, BatchStatus::Succeeded, "{what}: {:#?}", v.steps);
    }
    if all_unknown || key_unknown {
        // Readiness cannot be proven without an account or a key: the batch
        // says so instead of guessing.
        figures.undecided_batches += 1;
        assert_eq!(v.status, BatchStatus::Failed, "{what}");
    } else {
        let ready = v
            .steps
            .iter()
            .find(|s| s.kind == StepKind::Readiness)
            .unwrap();
        assert_eq!(ready.state, StepState::Done, "{what}: {}", ready.error);
        assert!(
            matches!(
                v.status,
                BatchStatus::Succeeded | BatchStatus::PartiallySucceeded
            ),
            "{what}: {:?}",
            v.status
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_duplicates_and_the_ledger_stays_complete() {
    let cases = [
        Case {
            name: "idempotent 0.1.179",
            honour_idempotency: true,
            version: None,
        },
        Case {
            name: "non-idempotent (claims 0.1.179)",
            honour_idempotency: false,
            version: None,
        },
        Case {
            name: "fork 1.8.170 (non-idempotent)",
            honour_idempotency: false,
            version: Some("1.8.170"),
        },
    ];
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_1201);
    let started = Instant::now();
    let mut report = String::new();
    for (ci, case) in cases.iter().enumerate() {
        for mode in [AccessMode::SelfService, AccessMode::Subscription] {
            let mut rng = Rng(seed ^ ((ci as u64 + 1) << 32) ^ (mode as u64 + 1));
            let mut figures = Figures::default();
            while figures.kills < KILLS_PER_CASE {
                let w = world(case, mode, rng.next()).await;
                figures.kills += apply_with_kills(&w, &mut rng).await;
                check(&w, case, mode, &mut figures).await;
                figures.batches += 1;
            }
            report.push_str(&format!(
                "crash test: {:<32} {:<12} kills {:>3} over {} batches of {KEYS} keys; adopted after a kill {:>3}; unknown {:>2}; ended undecided {}; 0 duplicates\n",
                case.name,
                mode.as_str(),
                figures.kills,
                figures.batches,
                figures.adopted_steps,
                figures.unknown_steps,
                figures.undecided_batches
            ));
        }
    }
    report.push_str(&format!(
        "crash test: seed {seed:#x}, {:.1} s\n",
        started.elapsed().as_secs_f64()
    ));
    std::io::stderr().write_all(report.as_bytes()).unwrap();
}
