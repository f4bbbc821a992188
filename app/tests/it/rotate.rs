//! `dashboard key rotate` as an operator runs it: every secret re-sealed
//! under a new key file, the old key no longer needed, and a re-import
//! after the rotation creating nothing new (fingerprints unchanged).

use fakehost::{FakeHost, FakeHostConfig, FakeUpstream, ProviderStyle, UpstreamBehaviour};
use provisioning_core::model::{AccessMode, BatchStatus, StepKind};
use provisioning_core::ops::{ApplyOptions, BatchRequest, Core};
use provisioning_core::secrets::{Cipher, MasterKey};
use provisioning_core::store::Store;
use std::time::Duration;

const PACK: &str = "schema: 1
id: rot
name: Rotation
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

#[tokio::test]
async fn rotating_the_master_key_reseals_everything_and_a_reimport_creates_nothing() {
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    let keys: Vec<String> = (0..3)
        .map(|i| format!("sk-rotate-{i:04}-abcdefgh"))
        .collect();
    for k in &keys {
        upstream.add_key(k, UpstreamBehaviour::Ok);
    }
    let host = FakeHost::start(FakeHostConfig {
        models_cache_ttl: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let old_key = MasterKey::generate();
    std::fs::write(dir.path().join("master.key"), old_key.to_hex()).unwrap();
    let (host_id, pack_version) = {
        let core = crate::open_data_dir(dir.path()).await;
        let h = core
            .create_host("t", &crate::host_input(&host, "h"))
            .await
            .unwrap();
        let (pv, _) = core
            .upload_pack("t", &PACK.replace("UPSTREAM", &upstream.url()))
            .await
            .unwrap();
        let id = core
            .plan_batch(
                "t",
                &BatchRequest {
                    host_id: h.id,
                    pack_version_id: pv,
                    provider_key: "ds".into(),
                    mode: Some(AccessMode::SelfService),
                    keys_text: keys.join("\n"),
                },
            )
            .await
            .unwrap();
        let opts = ApplyOptions {
            models_cache_wait: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(
            core.apply_batch("t", id, opts).await.unwrap(),
            BatchStatus::Succeeded
        );
        // A webhook: its URL (a bot's token inside) and secret are sealed.
        core.create_webhook(
            "t",
            &provisioning_core::ops::WebhookInput {
                name: "bot".into(),
                url: "http://127.0.0.1:9/hook?key=bot-token-rotate".into(),
                format: "wecom".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        (h.id, pv)
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dashboard"))
        .args(["key", "rotate"])
        .env("DASHBOARD_DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .env_remove("DASHBOARD_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(report["hosts"], 1);
    assert_eq!(report["batch_keys"], 3);
    assert_eq!(report["access_keys"], 1);
    assert_eq!(report["webhooks"], 1);
    assert_eq!(report["keyring"], 1);
    let new_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_ne!(
        new_key.trim(),
        old_key.to_hex(),
        "the key file was replaced"
    );
    // Canary: the command's output names counts and a key id, no secret.
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let admin_key = host.admin_api_key();
    let old_hex = old_key.to_hex();
    let secrets = keys.iter().map(String::as_str).chain([
        "bot-token-rotate",
        admin_key.as_str(),
        "probe-password-1",
        new_key.trim(),
        old_hex.as_str(),
    ]);
    for secret in secrets {
        assert!(!printed.contains(secret), "a secret in the rotate output");
    }
    assert!(!dir.path().join("master.key.next").exists());
    // The new key alone opens everything; the old one opens nothing.
    let core = crate::open_data_dir(dir.path()).await;
    let row = core.host_row(host_id).await.unwrap();
    core.host_client(&row)
        .expect("the host's secrets open with the new key");
    // The webhook still delivers (its URL and secret open with the new
    // key): a test to a closed loopback port fails to connect, not to open.
    let w = core.webhooks().await.unwrap();
    let d = core
        .test_webhook("t", w[0].id, &provisioning_core::ops::SystemClock)
        .await
        .expect("the webhook's URL and secret open with the new key");
    assert_eq!(d.attempts, 1);
    let stale = Core {
        store: Store::open(&dir.path().join("dashboard.db")).await.unwrap(),
        cipher: Cipher::new(&old_key, &[]),
    };
    assert!(
        stale.with_keyring().await.is_err(),
        "the old key is no longer enough"
    );
    // A re-import of the same keys after the rotation creates nothing.
    let again = core
        .plan_batch(
            "t",
            &BatchRequest {
                host_id,
                pack_version_id: pack_version,
                provider_key: "ds".into(),
                mode: Some(AccessMode::SelfService),
                keys_text: keys.join("\n"),
            },
        )
        .await
        .unwrap();
    let v = core.batch_view(again).await.unwrap();
    assert_eq!(v.plan.skipped.len(), 3, "{:?}", v.plan.skipped);
    assert!(!v.steps.iter().any(|s| s.kind == StepKind::Account));
}
