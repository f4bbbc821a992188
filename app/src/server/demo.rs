//! Demo mode: a fake Sub2API host (v0.1.179) and a fake DeepSeek-like
//! upstream on loopback, the host registered and probed, so a newcomer can
//! click through without a real Sub2API.

use fakehost::{FakeHost, FakeHostConfig, FakeUpstream, ProviderStyle, UpstreamBehaviour};
use provisioning_core::model::HostInput;
use provisioning_core::ops::Core;

/// The fake upstream's keys and what each does.
pub const KEYS: [(&str, &str); 2] = [
    ("sk-demo-healthy-0000000000000001", "works"),
    (
        "sk-demo-exhausted-00000000000002",
        "no balance: its account test fails",
    ),
];

/// The running fakes; dropping them stops them.
pub struct Demo {
    pub host: FakeHost,
    pub upstream: FakeUpstream,
}

/// Starts the fakes and registers the host (once per database).
pub async fn start(core: &Core) -> anyhow::Result<Demo> {
    let upstream = FakeUpstream::start(
        ProviderStyle::DeepSeek,
        &["deepseek-flash", "deepseek-v4-pro"],
    )
    .await;
    upstream.add_key(KEYS[0].0, UpstreamBehaviour::Ok);
    upstream.add_key(KEYS[1].0, UpstreamBehaviour::QuotaExhausted);
    let host = FakeHost::start(FakeHostConfig::default()).await;
    let hosts = core.list_hosts().await?;
    // The fake's port changes at every start: point the demo host at it.
    let input = HostInput {
        name: "demo-host".into(),
        base_url: host.url(),
        auth_kind: "api_key".into(),
        admin_api_key: host.admin_api_key(),
        probe_user_email: "probe@example.com".into(),
        probe_user_password: "probe-password-1".into(),
        ..Default::default()
    };
    let id = match hosts.iter().find(|h| h.name == "demo-host") {
        Some(h) => core.update_host("demo", h.id, &input).await?.id,
        None => core.create_host("demo", &input).await?.id,
    };
    core.probe_host("demo", id).await?;
    // A pack whose DeepSeek-like provider points at the fake upstream, so the
    // demo keys above can be imported end to end.
    let pack = DEMO_PACK.replace("UPSTREAM", &upstream.url());
    core.upload_pack("demo", &pack)
        .await
        .map_err(|e| anyhow::anyhow!("demo pack: {e:?}"))?;
    tracing::info!(host = %host.url(), upstream = %upstream.url(), "demo: fake Sub2API host and DeepSeek-like upstream are running");
    Ok(Demo { host, upstream })
}

const DEMO_PACK: &str = "schema: 1
id: demo
name: Demo (fake DeepSeek upstream)
description: Points at the fake upstream of demo mode. Keys sk-demo-healthy-0000000000000001 (works) and sk-demo-exhausted-00000000000002 (no balance).
providers:
  deepseek:
    display_name: DeepSeek (demo upstream)
    native_platform: deepseek
    base_url: UPSTREAM
    smoke_model: deepseek-flash
    models:
      deepseek-flash:
        price: { currency: USD, input: 0.30, output: 1.20, cache_read: 0.006, source: https://api-docs.deepseek.com/quick_start/pricing, verified: 2026-11-01 }
      deepseek-v4-pro:
        price: { currency: USD, input: 1.32, output: 3.96, cache_read: 0.044, source: https://api-docs.deepseek.com/quick_start/pricing, verified: 2026-11-01 }
    access:
      mode: self_service
";
