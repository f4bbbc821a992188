use crate::{core, fake, input_for};
use fakehost::FakeHostConfig;
use provisioning_core::ops::OpError;

type Mutation = Box<dyn Fn(&mut provisioning_core::model::HostInput)>;

const CANARY: &str = "admin-canary0123456789abcdef0123456789abcdef0123456789abcdef01234567";

async fn host_count(ctx: &crate::Ctx) -> usize {
    ctx.core.list_hosts().await.unwrap().len()
}

fn field(e: &OpError) -> String {
    match e {
        OpError::Invalid(f) | OpError::Conflict(f) => f.field.clone(),
        other => panic!("not a field error: {other:?}"),
    }
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let ok = input_for(&host, "h");
    let cases: Vec<(&str, Mutation)> = vec![
        ("name", Box::new(|i| i.name = "  ".into())),
        ("name", Box::new(|i| i.name = "x".repeat(101))),
        ("base_url", Box::new(|i| i.base_url = "not a url".into())),
        (
            "base_url",
            Box::new(|i| i.base_url = "ftp://example.com".into()),
        ),
        ("auth_kind", Box::new(|i| i.auth_kind = "magic".into())),
        ("admin_api_key", Box::new(|i| i.admin_api_key = "".into())),
        (
            "admin_api_key",
            Box::new(|i| i.admin_api_key = "k".repeat(5000)),
        ),
        (
            "admin_api_key",
            Box::new(|i| i.admin_api_key = format!("admin-{}", "9".repeat(64))),
        ),
        (
            "probe_user_email",
            Box::new(|i| i.probe_user_email = "not-an-email".into()),
        ),
        (
            "probe_user_password",
            Box::new(|i| i.probe_user_password = "".into()),
        ),
        // A port nobody listens on: unreachable.
        (
            "base_url",
            Box::new(|i| i.base_url = "http://127.0.0.1:9".into()),
        ),
    ];
    for (want, mutate) in cases {
        let mut input = ok.clone();
        mutate(&mut input);
        let e = ctx.core.create_host("a", &input).await.unwrap_err();
        assert!(e.is_client_error(), "{e:?}");
        assert_eq!(field(&e), want, "{e}");
        assert_eq!(
            host_count(&ctx).await,
            0,
            "nothing written after {want} error"
        );
    }
    let (audit, _) = ctx.core.store.audit_page(1, 10).await.unwrap();
    assert!(
        audit.iter().all(|e| e.action == "host.preflight"),
        "only failed connection checks are recorded: {audit:?}"
    );
}

#[tokio::test]
async fn a_wrong_admin_key_is_refused_with_the_host_code() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let mut input = input_for(&host, "h");
    input.admin_api_key = format!("admin-{}", "a".repeat(64));
    let e = ctx.core.create_host("a", &input).await.unwrap_err();
    assert!(e.to_string().contains("INVALID_ADMIN_KEY"), "{e}");
    assert!(!e.to_string().contains(&input.admin_api_key));
}

#[tokio::test]
async fn host_names_are_unique_regardless_of_case() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    ctx.core
        .create_host("a", &input_for(&host, "Prod"))
        .await
        .unwrap();
    let e = ctx
        .core
        .create_host("a", &input_for(&host, "prod"))
        .await
        .unwrap_err();
    assert!(matches!(e, OpError::Conflict(ref f) if f.field == "name"));
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_masked_in_views() {
    let host = fake(FakeHostConfig {
        admin_api_key: CANARY.into(),
        ..Default::default()
    })
    .await;
    let ctx = core().await;
    let mut input = input_for(&host, "canary");
    input.probe_user_password = "probe-password-1".into();
    let view = ctx.core.create_host("a", &input).await.unwrap();
    assert_eq!(view.admin_credential_hint, "admin-…4567");
    let json = serde_json::to_string(&ctx.core.list_hosts().await.unwrap()).unwrap();
    assert!(!json.contains(CANARY));
    let rec = ctx.core.probe_host("a", view.id).await.unwrap();
    assert!(!serde_json::to_string(&rec).unwrap().contains(CANARY));
    // Checkpoint the WAL, then read every byte the database wrote.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(ctx.core.store.pool())
        .await
        .unwrap();
    for entry in std::fs::read_dir(ctx.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(CANARY),
            "canary admin key found in a database file"
        );
        assert!(
            !text.contains("probe-password-1"),
            "probe password found in a database file"
        );
    }
}

#[tokio::test]
async fn editing_with_empty_secrets_keeps_the_stored_ones() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let mut input = input_for(&host, "h");
    let v = ctx.core.create_host("a", &input).await.unwrap();
    input.name = "renamed".into();
    input.admin_api_key.clear();
    input.probe_user_password.clear();
    let v2 = ctx.core.update_host("a", v.id, &input).await.unwrap();
    assert_eq!(v2.name, "renamed");
    assert_eq!(v2.admin_credential_hint, v.admin_credential_hint);
    let r = ctx.core.probe_host("a", v.id).await.unwrap().report;
    assert_eq!(r.probe_user, provisioning_core::model::ProbeUserState::Ok);
    ctx.core.delete_host("a", v.id).await.unwrap();
    assert!(matches!(
        ctx.core.delete_host("a", v.id).await,
        Err(OpError::NotFound(_))
    ));
}

#[tokio::test]
async fn moving_a_host_to_another_origin_needs_its_secrets_again_and_sends_nothing_before() {
    let real = fake(FakeHostConfig::default()).await;
    // Another server that would receive whatever the product sends it.
    let elsewhere = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let h = ctx
        .core
        .create_host("op", &input_for(&real, "prod"))
        .await
        .unwrap();
    let moved = |admin_key: &str, probe_password: &str| provisioning_core::model::HostInput {
        admin_api_key: admin_key.into(),
        probe_user_password: probe_password.into(),
        base_url: elsewhere.url(),
        ..input_for(&real, "prod")
    };
    let e = ctx
        .core
        .update_host("op", h.id, &moved("", ""))
        .await
        .unwrap_err();
    assert_eq!(field(&e), "admin_api_key");
    assert!(e.to_string().contains("entered again"), "{e}");
    let e = ctx
        .core
        .update_host("op", h.id, &moved(&elsewhere.admin_api_key(), ""))
        .await
        .unwrap_err();
    assert_eq!(field(&e), "probe_user_password");
    assert_eq!(
        elsewhere.total_calls(),
        0,
        "nothing was sent to the new origin"
    );
    // The same origin with another path keeps the stored secrets.
    let same = provisioning_core::model::HostInput {
        admin_api_key: String::new(),
        probe_user_password: String::new(),
        base_url: format!("{}/", real.url()),
        ..input_for(&real, "prod")
    };
    ctx.core.update_host("op", h.id, &same).await.unwrap();
    // Typed again, the move goes through and is audited with both origins.
    ctx.core
        .update_host(
            "op",
            h.id,
            &moved(&elsewhere.admin_api_key(), "probe-password-1"),
        )
        .await
        .unwrap();
    let (audit, _) = ctx.core.store.audit_page(1, 20).await.unwrap();
    let m = audit.iter().find(|e| e.action == "host.move").unwrap();
    assert!(m.detail.contains(&real.addr().port().to_string()));
    assert!(m.detail.contains(&elsewhere.addr().port().to_string()));
}

#[tokio::test]
async fn an_answer_over_the_size_limit_is_refused_with_a_clear_error() {
    let host = fake(FakeHostConfig::default()).await;
    host.add_fault(fakehost::Fault {
        method: reqwest::Method::GET,
        path_prefix: "/api/v1/admin/groups".into(),
        kind: fakehost::FaultKind::Status(
            200,
            serde_json::json!({"code": 0, "data": {"items": [], "pad": "x".repeat(provisioning_core::host::MAX_BODY + 1)}}),
        ),
        times: 1,
    });
    let client = provisioning_core::host::HostClient::new(
        &host.url(),
        provisioning_core::host::AdminCredential::ApiKey(provisioning_core::secrets::Secret::new(
            host.admin_api_key(),
        )),
    );
    let e = client
        .admin_get("/api/v1/admin/groups?page_size=1")
        .await
        .unwrap_err();
    assert_eq!(e.code, "BODY_TOO_LARGE");
    assert!(e.message.contains("larger than 32 MiB"), "{}", e.message);
}

#[tokio::test]
async fn failed_sign_ins_from_one_address_do_not_lock_the_account_elsewhere() {
    use provisioning_core::model::Role;
    use provisioning_core::ops::{SignInError, THROTTLE_USER_LIMIT};
    use provisioning_core::secrets::Secret;
    let ctx = core().await;
    ctx.core
        .create_operator("t", "root", Secret::new("a-long-password-1"), Role::Admin)
        .await
        .unwrap();
    for _ in 0..THROTTLE_USER_LIMIT {
        let _ = ctx
            .core
            .sign_in("root", Secret::new("wrong"), "10.0.0.66")
            .await;
    }
    let e = ctx
        .core
        .sign_in("root", Secret::new("a-long-password-1"), "10.0.0.66")
        .await
        .unwrap_err();
    assert!(
        matches!(e, SignInError::Throttled { .. }),
        "the guessing address is throttled"
    );
    ctx.core
        .sign_in("root", Secret::new("a-long-password-1"), "10.0.0.7")
        .await
        .expect("the admin signs in from an address that has not failed");
}

#[tokio::test]
async fn the_connection_check_says_one_thing_and_audits_the_detail() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    // A closed port and a server that is not Sub2API read the same.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}")
    };
    let not_sub2api = format!("{}/not-here", host.url());
    let mut messages = Vec::new();
    for url in [closed, not_sub2api] {
        let input = provisioning_core::model::HostInput {
            base_url: url,
            ..input_for(&host, "h")
        };
        let e = ctx.core.create_host("op", &input).await.unwrap_err();
        assert_eq!(field(&e), "base_url");
        messages.push(e.to_string());
    }
    assert_eq!(messages[0], messages[1], "no port-scan oracle");
    let (audit, _) = ctx.core.store.audit_page(1, 20).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "host.preflight")
            .count(),
        2,
        "the detail is in the audit log"
    );
}

#[tokio::test]
async fn a_metadata_address_is_refused_by_the_outbound_guard_before_any_request() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let input = provisioning_core::model::HostInput {
        base_url: "http://169.254.169.254".into(),
        ..input_for(&host, "meta")
    };
    let e = ctx.core.create_host("op", &input).await.unwrap_err();
    assert_eq!(field(&e), "base_url");
    assert!(e.to_string().contains("outbound guard"), "{e}");
    assert!(e.to_string().contains("metadata"), "{e}");
}
