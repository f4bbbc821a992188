//! The world both benchmarks start from: a fake host with a fixed latency
//! on every call, a fake DeepSeek-like upstream taking `n` keys, a core on
//! a fresh database with the host registered and probed, and a pack.

use fakehost::{FakeHost, FakeHostConfig, FakeUpstream, ProviderStyle, UpstreamBehaviour};
use provisioning_core::model::HostInput;
use provisioning_core::ops::Core;
use provisioning_core::secrets::{Cipher, MasterKey};
use provisioning_core::store::Store;
use std::time::Duration;

pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The benchmarks' master key: fixed, so a second process (the pages
/// benchmark's server) opens what the first one sealed.
pub fn master_key() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

pub struct World {
    pub core: Core,
    pub host: FakeHost,
    pub _upstream: FakeUpstream,
    pub _dir: tempfile::TempDir,
    pub host_id: i64,
    pub pack_version: i64,
    pub keys: Vec<String>,
}

/// A runtime of its own for the fake host and upstream: they stand for
/// other machines, so their work does not queue behind the core's tasks on
/// the measured runtime's threads (the machine's cores are still shared).
fn fakes_runtime() -> tokio::runtime::Handle {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the fakes' runtime");
        tx.send(rt.handle().clone())
            .expect("the bench waits for it");
        rt.block_on(std::future::pending::<()>());
    });
    rx.recv().expect("the fakes' runtime starts")
}

pub async fn world(n: usize, latency: Duration) -> World {
    let keys: Vec<String> = (0..n)
        .map(|i| format!("sk-bench-{i:06}-abcdefghijklmnop"))
        .collect();
    let upstream_keys = keys.clone();
    let (upstream, host) = fakes_runtime()
        .spawn(async move {
            let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
            for k in &upstream_keys {
                upstream.add_key(k, UpstreamBehaviour::Ok);
            }
            let host = FakeHost::start(FakeHostConfig {
                latency,
                models_cache_ttl: Duration::ZERO,
                ..Default::default()
            })
            .await;
            (upstream, host)
        })
        .await
        .expect("the fakes start");
    let dir = tempfile::tempdir().unwrap();
    let core = Core {
        store: Store::open(&dir.path().join("bench.db")).await.unwrap(),
        cipher: Cipher::new(&master_key(), &[]),
    };
    let h = core
        .create_host(
            "bench",
            &HostInput {
                name: "bench".into(),
                base_url: host.url(),
                auth_kind: "api_key".into(),
                admin_api_key: host.admin_api_key(),
                probe_user_email: "probe@example.com".into(),
                probe_user_password: "probe-password-1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    core.probe_host("bench", h.id).await.unwrap();
    let pack = format!(
        "schema: 1\nid: bench\nname: Bench\nproviders:\n  ds:\n    display_name: DS\n    native_platform: deepseek\n    base_url: {}\n    smoke_model: deepseek-flash\n    models:\n      deepseek-flash:\n        price: {{ currency: USD, input: 0.3, output: 1.2, source: bench, verified: 2026-11-01 }}\n",
        upstream.url()
    );
    let (pack_version, _) = core.upload_pack("bench", &pack).await.unwrap();
    World {
        core,
        host,
        _upstream: upstream,
        _dir: dir,
        host_id: h.id,
        pack_version,
        keys,
    }
}
