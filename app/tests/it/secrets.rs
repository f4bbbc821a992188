use crate::{log_buffer, pairs, TestApp};
use fakehost::FakeHostConfig;
use leptos::server_fn::ServerFn;

const CANARY_KEY: &str = "admin-canary00112233445566778899aabbccddeeff00112233445566778899aabb";
const CANARY_PW: &str = "probe-canary-password-77";

#[tokio::test]
async fn no_secret_reaches_a_page_a_server_function_or_the_log() {
    let app = TestApp::spawn_with(FakeHostConfig {
        admin_api_key: CANARY_KEY.into(),
        users: vec![("probe@example.com".into(), CANARY_PW.into())],
        ..Default::default()
    })
    .await;
    app.admin().await;
    let mut form = app.host_form("canary");
    form.retain(|(k, _)| k != "probe_user_password");
    form.push(("probe_user_password".into(), CANARY_PW.into()));
    let p = app.submit(&app.client, "/hosts/new", &pairs(&form)).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let loc = p.location.unwrap();
    app.submit(&app.client, &loc, &[("action", "probe")]).await;
    // A failed edit re-renders the form: the typed secrets must not come back.
    let bad = {
        let mut f = form.clone();
        f.retain(|(k, _)| k != "base_url");
        f.push(("base_url".into(), "nonsense".into()));
        f
    };
    let p = app
        .submit(&app.client, &format!("{loc}/edit"), &pairs(&bad))
        .await;
    assert_eq!(p.status, 400);
    let mut bodies = vec![p.body];
    for path in [
        "/",
        "/hosts",
        &loc,
        &format!("{loc}/edit"),
        &format!("{loc}/delete"),
        "/audit",
        "/operators",
    ] {
        bodies.push(app.get(path).await.body);
    }
    for path in [
        app::api::ListHosts::PATH,
        app::api::Overview::PATH,
        app::api::AuditLog::PATH,
    ] {
        let body = app
            .client
            .post(format!("{}{path}", app.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("page=1")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        bodies.push(body);
    }
    let id = loc.trim_start_matches("/hosts/");
    bodies.push(
        app.client
            .post(format!("{}{}", app.url, app::api::HostDetail::PATH))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("id={id}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        bodies.iter().any(|b| b.contains("admin-…aabb")),
        "the masked form is shown"
    );
    for b in &bodies {
        assert!(!b.contains(CANARY_KEY), "admin key leaked: {b}");
        assert!(!b.contains(CANARY_PW), "probe password leaked");
    }
    // A batch with a canary provider key: its pages, evidence bundles and
    // diagnosis never show it.
    let (_up, id) = crate::imports::planned_with_admin_signed_in(&app).await;
    app.core
        .apply_batch(
            "root",
            id,
            provisioning_core::ops::ApplyOptions {
                models_cache_wait: std::time::Duration::ZERO,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut more = vec![
        app.get(&format!("/batches/{id}")).await.body,
        app.get("/batches").await.body,
    ];
    for f in ["json", "html"] {
        more.push(
            app.client
                .get(format!("{}/batches/{id}/evidence.{f}", app.url))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    assert!(
        more[0].contains("upstream_quota_exhausted"),
        "the diagnosis is on the page"
    );
    for b in &more {
        assert!(
            !b.contains(crate::imports::CANARY_PROVIDER_KEY),
            "provider key leaked"
        );
        assert!(!b.contains(CANARY_KEY), "admin key leaked");
    }
    let log = String::from_utf8_lossy(&log_buffer().lock().unwrap()).to_string();
    assert!(
        !log.contains(crate::imports::CANARY_PROVIDER_KEY),
        "provider key in the log"
    );
    assert!(log.contains("POST"), "the log captured requests");
    assert!(!log.contains(CANARY_KEY), "admin key in the log");
    assert!(!log.contains(CANARY_PW), "probe password in the log");
}
