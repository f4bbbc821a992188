//! The command line as cron and CI run it: validate a pack file (located
//! problems, exit 1), then apply a planned batch and watch it to ready,
//! every answer one JSON line.

use fakehost::{FakeHost, FakeHostConfig, FakeUpstream, ProviderStyle, UpstreamBehaviour};
use provisioning_core::model::Role;
use provisioning_core::secrets::{MasterKey, Secret};
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

    // A host registered in the database the CLI opens (its master key);
    // the batch planned from the command line, from a keys file.
    std::fs::write(d.join("master.key"), MasterKey::generate().to_hex()).unwrap();
    {
        let core = crate::open_data_dir(d).await;
        core.create_host("t", &crate::host_input(&host, "h"))
            .await
            .unwrap();
        core.upload_pack("t", &pack(&upstream.url())).await.unwrap();
        core.create_operator("t", "otto", Secret::new(crate::PASSWORD), Role::Operator)
            .await
            .unwrap();
    }
    let out = dashboard(d, &["host", "probe", "h"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("host h (0.1.179): "), "{text}");
    let out = dashboard(d, &["host", "probe", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no host is named `nope` (there are: h)"));
    let keys = d.join("keys.txt");
    std::fs::write(&keys, format!("{KEY}\n")).unwrap();
    let plan = |extra: &[&str]| {
        let mut a = vec![
            "batch",
            "plan",
            "--host",
            "h",
            "--pack",
            "cli-pack",
            "--provider",
            "ds",
            "--keys",
        ];
        a.push(keys.to_str().unwrap());
        a.extend_from_slice(extra);
        dashboard(d, &a)
    };
    let out = plan(&["--mode", "monthly"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mode"));
    let out = plan(&["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let planned = &json_lines(&out)[0];
    assert_eq!(planned["status"], "planned");
    assert_eq!(planned["plan"]["provider_key"], "ds");
    assert!(!planned.to_string().contains(KEY), "the key is masked");
    let id = planned["id"].as_i64().unwrap();
    let sid = id.to_string();
    // Not applied yet: status says so and exits 3.
    let out = dashboard(d, &["batch", "status", &sid]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("batch {id}: planned · 0/")),
        "{text}"
    );
    let out = dashboard(d, &["batch", "status", "--json", &sid]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json_lines(&out)[0]["status"], "planned");
    // Apply, then watch: the last line is the end, and it is ready.
    let out = dashboard(d, &["batch", "apply", "--json", &sid]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Progress while it ran, then the end.
    let lines = json_lines(&out);
    assert_eq!(lines.last().unwrap()["status"], "succeeded");
    let out = dashboard(d, &["batch", "status", "--json", "--watch", &sid]);
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

    // Reconcile: what it made is as it made it.
    let out = dashboard(d, &["reconcile", "h", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = &json_lines(&out)[0];
    assert!(r["compared"].as_i64().unwrap() >= 3, "{r}");
    assert_eq!(r["findings"].as_array().unwrap().len(), 0, "{r}");
    // A token for a script, printed once.
    let out = dashboard(
        d,
        &[
            "token",
            "create",
            "--operator",
            "otto",
            "--scope",
            "write",
            "--days",
            "7",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("for otto (write scope, 7 day(s)); shown once"),
        "{text}"
    );
    assert!(text.lines().nth(1).unwrap().starts_with("rmt_"), "{text}");
    let out = dashboard(
        d,
        &["token", "create", "--operator", "otto", "--scope", "root"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("scope"));
    // Roll it back and watch: rolled back, exit 0.
    let out = dashboard(d, &["batch", "rollback", &sid]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with(&format!("batch {id}: rolled_back")),
        "{text}"
    );
    let out = dashboard(d, &["batch", "rollback", &sid]);
    assert_eq!(out.status.code(), Some(1), "a second rollback is refused");
}
