//! The README's examples, run as they are written there: the API calls with
//! curl against a test server, the CLI lines with the built binary.

use crate::TestApp;
use fakehost::{FakeUpstream, ProviderStyle, UpstreamBehaviour};
use provisioning_core::model::Role;
use provisioning_core::ops::{Principal, TokenRequest};

/// The shell lines of the README block after `<!-- tested: NAME -->`, with
/// continuation lines joined.
fn block(name: &str) -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let marker = format!("<!-- tested: {name} -->");
    let at = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker} is in the README"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").unwrap() + 6;
    let body = &rest[start..start + rest[start..].find("```").unwrap()];
    let mut lines = Vec::new();
    let mut cur = String::new();
    for l in body.lines() {
        let l = l.trim();
        if let Some(head) = l.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(l);
            if !cur.trim().is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_api_example_runs_as_written() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("curl is needed to run the README's example");
    }
    let app = TestApp::spawn().await;
    app.admin().await;
    // Host 1 and pack version 1, as the example's body names them.
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    upstream.add_key("sk-your-provider-key-0001", UpstreamBehaviour::Ok);
    let p = app
        .submit(
            &app.client,
            "/hosts/new",
            &crate::pairs(&app.host_form("h")),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (pv, _) = app
        .core
        .upload_pack("root", &crate::imports::pack(&upstream.url()))
        .await
        .unwrap();
    assert_eq!(pv, 1, "the example's pack version");
    let root = app
        .core
        .store
        .operator_by_name("root")
        .await
        .unwrap()
        .unwrap();
    let (_, token) = app
        .core
        .create_token(
            &Principal::operator(root.id, "root", Role::Admin),
            &TokenRequest {
                operator_id: root.id,
                name: "readme".into(),
                scope: "write".into(),
                days: "1".into(),
            },
        )
        .await
        .unwrap();
    let lines = block("api-example");
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in lines {
        assert!(line.starts_with("curl "), "{line}");
        let url = app.url.clone();
        let secret = token.expose().to_string();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("bash")
                .args(["-c", &line])
                .env("RELAY", url)
                .env("RELAY_TOKEN", secret)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        assert!(v.is_object(), "{v}");
    }
    // The POST planned the batch, once.
    let list = app.core.list_batches(None, 10).await.unwrap();
    assert_eq!(list.items.len(), 1);
    // The CLI lines against the same server, the binary for the script.
    let lines = block("cli-server-example");
    assert_eq!(lines.len(), 2, "{lines:?}");
    let mut last = String::new();
    for line in lines {
        let line = line
            .strip_prefix("bash scripts/run.sh ")
            .map(|rest| format!("{} {rest}", env!("CARGO_BIN_EXE_dashboard")))
            .unwrap_or_else(|| panic!("{line}"));
        let url = app.url.clone();
        let secret = token.expose().to_string();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("bash")
                .args(["-c", &line])
                .env("RELAY", url)
                .env("RELAY_TOKEN", secret)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "exit {:?}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        last = String::from_utf8_lossy(&out.stdout).to_string();
    }
    assert!(
        last.starts_with("batch 1: succeeded ·") && last.contains("access self_service_ready"),
        "{last}"
    );
}

#[test]
fn the_readme_cli_example_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("packs")).unwrap();
    std::fs::write(
        dir.path().join("packs/deepseek.yaml"),
        crate::imports::pack("https://api.deepseek.com"),
    )
    .unwrap();
    let lines = block("cli-example");
    assert!(!lines.is_empty());
    for line in lines {
        let args = line
            .strip_prefix("bash scripts/run.sh ")
            .unwrap_or_else(|| panic!("{line}"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dashboard"))
            .args(args.split_whitespace())
            .current_dir(dir.path())
            .env("DASHBOARD_DATA_DIR", dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("app-pack"),
            "{line}"
        );
    }
}
