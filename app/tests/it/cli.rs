//! The command line as cron and CI run it: validate a pack file (located
//! problems, exit 1), then apply a planned batch and watch it to ready,
//! every answer one JSON line.

use fakehost::{FakeHost, FakeHostConfig, FakeUpstream, ProviderStyle, UpstreamBehaviour};
use provisioning_core::ops::BatchRequest;
use provisioning_core::secrets::MasterKey;
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

const KEY: &str = "sk-cli-provider-key-000000000000000001";

fn pack(upstream: &str) -> String {
    format!(
        "schema: 1
id: cli-pack
name: CLI
providers:
  ds:
    display_name: DeepSeek (fake)
    native_platform: deepseek
    base_url: {upstream}
    smoke_model: deepseek-flash
    models:
      deepseek-flash:
        price: {{ currency: USD, input: 0.3, output: 1.2, source: test, verified: 2026-11-01 }}
"
    )
}

fn dashboard(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dashboard"))
        .args(args)
        .env("DASHBOARD_DATA_DIR", dir)
        .env("DASHBOARD_MODELS_CACHE_WAIT_SECS", "0")
        .env("RUST_LOG", "warn")
        .env_remove("DASHBOARD_MASTER_KEY")
        .output()
        .unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

// Multi-threaded: the fake host answers the CLI's calls while this thread
// waits for the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_is_validated_then_a_batch_applied_and_watched_to_ready_from_the_command_line() {
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    upstream.add_key(KEY, UpstreamBehaviour::Ok);
    let host = FakeHost::start(FakeHostConfig {
        models_cache_ttl: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A broken pack: exit 1, each problem at its line, as compilers say it.
    let bad = d.join("bad.yaml");
    std::fs::write(
        &bad,
        pack("not-a-url").replace("currency: USD", "currency: EUR"),
    )
    .unwrap();
    let out = dashboard(d, &["pack", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let name = bad.display();
    assert!(
        text.contains(&format!(
            "{name}:8: providers.ds.base_url: `not-a-url` is not an http(s) URL"
        )),
        "{text}"
    );
    assert!(
        text.contains("price.currency: is the text \"EUR\" (expected one of: USD, CNY)"),
        "{text}"
    );
    assert!(text.ends_with("2 problem(s); not a valid pack\n"), "{text}");
    let out = dashboard(d, &["pack", "validate", "--json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v = &json_lines(&out)[0];
    assert_eq!(v["valid"], false);
    assert_eq!(v["issues"].as_array().unwrap().len(), 2);
    assert_eq!(v["issues"][0]["line"], 8);
    // A missing file: exit 2.
    let out = dashboard(
        d,
        &["pack", "validate", d.join("nope.yaml").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    // The good one.
    let good = d.join("good.yaml");
    std::fs::write(&good, pack(&upstream.url())).unwrap();
    let out = dashboard(d, &["pack", "validate", "--json", good.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = &json_lines(&out)[0];
    assert_eq!(
        (v["valid"].as_bool(), v["id"].as_str()),
        (Some(true), Some("cli-pack"))
    );

    // A planned batch (the database the CLI opens, its master key).
    std::fs::write(d.join("master.key"), MasterKey::generate().to_hex()).unwrap();
    let id = {
        let core = crate::open_data_dir(d).await;
        let h = core
            .create_host("t", &crate::host_input(&host, "h"))
            .await
            .unwrap();
        let (pv, _) = core.upload_pack("t", &pack(&upstream.url())).await.unwrap();
        core.plan_batch(
            "t",
            &BatchRequest {
                host_id: h.id,
                pack_version_id: pv,
                provider_key: "ds".into(),
                mode: None,
                keys_text: KEY.into(),
            },
        )
        .await
        .unwrap()
    };
    let sid = id.to_string();
    // Not applied yet: status says so and exits 3.
    let out = dashboard(d, &["batch", "status", &sid]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json_lines(&out)[0]["status"], "planned");
    // Apply, then watch: the last line is the end, and it is ready.
    let out = dashboard(d, &["batch", "apply", &sid]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out)[0]["status"], "succeeded");
    let out = dashboard(d, &["batch", "status", "--watch", &sid]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["access_status"], "self_service_ready");
    assert_eq!(last["running"], false);
    assert!(last["steps"]["done"].as_i64().unwrap() >= 5, "{last}");
    assert_eq!(last["steps"]["failed"], 0);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains(KEY), "no key in the output");
}
