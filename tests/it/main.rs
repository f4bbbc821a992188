//! Core integration tests: the host client and the probe against the fake
//! Sub2API host, host registration with its pre-flight, secrets at rest.

mod acceptance;
mod diagnose;
mod drift;
mod hosts;
mod import;
mod probe;
mod real_host;
mod replace;
mod review;
mod rollback;
mod tokens;
mod versions;
mod watch;

use fakehost::{FakeHost, FakeHostConfig};
use provisioning_core::model::HostInput;
use provisioning_core::ops::Core;
use provisioning_core::secrets::{Cipher, MasterKey};
use provisioning_core::store::Store;

pub struct Ctx {
    pub core: Core,
    pub dir: tempfile::TempDir,
}

pub async fn core() -> Ctx {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("core.db")).await.unwrap();
    Ctx {
        core: Core {
            store,
            cipher: Cipher::new(&MasterKey::generate(), &[]),
        },
        dir,
    }
}

pub fn input_for(host: &FakeHost, name: &str) -> HostInput {
    HostInput {
        name: name.into(),
        base_url: host.url(),
        auth_kind: "api_key".into(),
        admin_api_key: host.admin_api_key(),
        probe_user_email: "probe@example.com".into(),
        probe_user_password: "probe-password-1".into(),
        ..Default::default()
    }
}

pub async fn fake(cfg: FakeHostConfig) -> FakeHost {
    FakeHost::start(cfg).await
}

/// A `node -e …` line of the README (the first that `pick` accepts) and a
/// runner that writes a bundle to `evidence.json` and runs the line on it,
/// as a reader would.
pub fn readme_node_line(pick: impl Fn(&str) -> bool) -> impl Fn(&str) -> std::process::Output {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("node -e ") && pick(l))
        .expect("the README has the verification line")
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    move |text: &str| {
        std::fs::write(dir.path().join("evidence.json"), text).unwrap();
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .current_dir(dir.path())
            .output()
            .expect("sh and node run")
    }
}
