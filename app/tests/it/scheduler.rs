//! Two `dashboard serve` processes on one database, each ticking every
//! second: each due run of a host's probe job happens once (counted in the
//! job history), whichever process claims it; when one process is killed
//! the other goes on running the job at its interval.

use fakehost::{FakeHost, FakeHostConfig};
use provisioning_core::ops::Core;
use provisioning_core::secrets::{Cipher, MasterKey};
use provisioning_core::store::{JobRunRow, Store};
use std::process::{Child, Stdio};
use std::time::Duration;

const INTERVAL_S: i64 = 2;

fn serve(dir: &std::path::Path, master_hex: &str) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_dashboard"))
        .arg("serve")
        .env("DASHBOARD_DATA_DIR", dir)
        .env("DASHBOARD_MASTER_KEY", master_hex)
        .env("DASHBOARD_ADDR", "127.0.0.1:0")
        .env("DASHBOARD_SCHEDULER", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dashboard")
}

async fn probe_runs(core: &Core, key: &str) -> Vec<JobRunRow> {
    let mut runs = core.store.job_runs(Some(key), 1000).await.unwrap();
    runs.reverse();
    runs
}

#[tokio::test]
async fn two_servers_run_each_due_job_once_and_one_goes_on_when_the_other_is_killed() {
    let host = FakeHost::start(FakeHostConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let core = Core {
        store: Store::open(&dir.path().join("dashboard.db")).await.unwrap(),
        cipher: Cipher::new(&key, &[]),
    }
    .with_keyring()
    .await
    .unwrap();
    let h = core
        .create_host("alice", &crate::host_input(&host, "h"))
        .await
        .unwrap();
    let now = provisioning_core::store::now_ms();
    for job in ["probe", "readiness", "drift", "balance"] {
        core.set_host_schedule(
            "alice",
            h.id,
            job,
            &INTERVAL_S.to_string(),
            job == "probe",
            now,
        )
        .await
        .unwrap();
    }
    let job_key = format!("host:{}:probe", h.id);
    let probes_before = host.calls("GET /api/v1/admin/compliance");

    let mut a = serve(dir.path(), &key.to_hex());
    let mut b = serve(dir.path(), &key.to_hex());
    tokio::time::sleep(Duration::from_secs(12)).await;
    let runs = probe_runs(&core, &job_key).await;
    let owners: std::collections::BTreeSet<&str> = runs
        .iter()
        .map(|r| r.owner.split(':').nth(1).unwrap_or(""))
        .collect();
    assert!(runs.len() >= 3, "the job ran at its interval: {runs:?}");
    // Once per due time, and never two runs closer than the interval.
    let mut dues: Vec<i64> = runs.iter().map(|r| r.due_ms).collect();
    dues.dedup();
    assert_eq!(dues.len(), runs.len(), "a due run ran twice: {runs:?}");
    for w in runs.windows(2) {
        assert!(
            w[1].started_ms - w[0].started_ms >= INTERVAL_S * 1000,
            "two runs within one interval: {w:?}"
        );
    }
    assert!(
        runs.len() as i64 <= 12 / INTERVAL_S + 1,
        "not more than once per interval: {}",
        runs.len()
    );
    let probes = host.calls("GET /api/v1/admin/compliance") - probes_before;
    assert!(probes >= runs.len() as u32, "each run probed the host");

    // One is killed; the other goes on alone.
    a.kill().unwrap();
    a.wait().unwrap();
    let killed_at = provisioning_core::store::now_ms();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after: Vec<JobRunRow> = probe_runs(&core, &job_key)
        .await
        .into_iter()
        .filter(|r| r.started_ms > killed_at + 500)
        .collect();
    b.kill().unwrap();
    b.wait().unwrap();
    assert!(
        after.len() >= 2,
        "the survivor runs the job: {after:?} (owners before: {owners:?})"
    );
    let b_pid = b.id().to_string();
    assert!(
        after
            .iter()
            .all(|r| r.owner.split(':').nth(1) == Some(b_pid.as_str())),
        "only the survivor ran it after the kill: {after:?}"
    );
    assert!(
        after
            .iter()
            .all(|r| r.finished_ms.is_some() || r.outcome.is_none()),
        "{after:?}"
    );
}
