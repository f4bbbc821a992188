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
