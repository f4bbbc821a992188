//! Opt-in acceptance against a real Sub2API host. Skipped (and says so)
//! unless RELAY_REAL_HOST_URL and RELAY_REAL_HOST_ADMIN_KEY are set. It only
//! reads: the probe makes GETs and, with RELAY_REAL_HOST_PROBE_EMAIL and
//! RELAY_REAL_HOST_PROBE_PASSWORD, one probe-user sign-in.

use crate::core;
use provisioning_core::model::{HostInput, ProbeStatus};
use std::io::Write;

#[tokio::test]
async fn a_real_host_registers_and_probes() {
    let (Ok(url), Ok(key)) = (
        std::env::var("RELAY_REAL_HOST_URL"),
        std::env::var("RELAY_REAL_HOST_ADMIN_KEY"),
    ) else {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: set RELAY_REAL_HOST_URL and RELAY_REAL_HOST_ADMIN_KEY to run against a real host"
        );
        return;
    };
    let ctx = core().await;
    let input = HostInput {
        name: "real".into(),
        base_url: url,
        auth_kind: "api_key".into(),
        admin_api_key: key,
        probe_user_email: std::env::var("RELAY_REAL_HOST_PROBE_EMAIL").unwrap_or_default(),
        probe_user_password: std::env::var("RELAY_REAL_HOST_PROBE_PASSWORD").unwrap_or_default(),
        ..Default::default()
    };
    let host = ctx
        .core
        .create_host("acceptance", &input)
        .await
        .expect("registration");
    let rec = ctx
        .core
        .probe_host("acceptance", host.id)
        .await
        .expect("probe");
    let _ = writeln!(
        std::io::stderr(),
        "{}",
        serde_json::to_string_pretty(&rec.report).unwrap()
    );
    assert!(rec.report.reachable);
    assert!(
        rec.report.version.is_some(),
        "a real host reports its version"
    );
    assert_ne!(
        rec.report.status,
        ProbeStatus::Failing,
        "{:?}",
        rec.report.findings
    );
}
