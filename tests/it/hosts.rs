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
    let (audit, total) = ctx.core.store.audit_page(1, 10).await.unwrap();
    assert_eq!(total, 0, "{audit:?}");
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
