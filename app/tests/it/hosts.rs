use crate::{pairs, TestApp};
use fakehost::FakeHostConfig;

fn with(form: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = form.iter().filter(|(k, _)| k != key).cloned().collect();
    f.push((key.into(), value.into()));
    f
}

#[tokio::test]
async fn adding_a_host_probes_it_and_shows_the_capability_matrix() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let p = app
        .submit(&app.client, "/hosts/new", &pairs(&app.host_form("prod-cn")))
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let loc = p.location.unwrap();
    assert!(loc.starts_with("/hosts/"));
    let p = app.get(&loc).await;
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("Host prod-cn added. Probe finished"),
        "{}",
        p.body
    );
    assert!(p.body.contains("data-testid=\"capabilities\""));
    assert!(p.body.contains("data-capability=\"channels\""));
    assert!(p.body.contains("0.1.179"));
    // Probe again: history grows.
    let p = app.submit(&app.client, &loc, &[("action", "probe")]).await;
    assert_eq!(p.status, 303);
    let id: i64 = loc.trim_start_matches("/hosts/").parse().unwrap();
    assert_eq!(app.core.probe_history(id).await.unwrap().len(), 2);
    // The list and the overview show it.
    assert!(app.get("/hosts").await.body.contains("prod-cn"));
    assert!(app.get("/").await.body.contains("prod-cn"));
}

#[tokio::test]
async fn bad_host_input_gets_a_4xx_naming_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let ok = app.host_form("h");
    let cases = vec![
        (with(&ok, "name", ""), "name: is required", 400),
        (
            with(&ok, "base_url", "gateway.example.com"),
            "base_url: must start with http://",
            400,
        ),
        (
            with(&ok, "base_url", "http://127.0.0.1:9"),
            "base_url: could not be reached",
            400,
        ),
        (
            with(&ok, "admin_api_key", &format!("admin-{}", "b".repeat(64))),
            "INVALID_ADMIN_KEY",
            400,
        ),
        (
            with(&ok, "admin_api_key", ""),
            "admin_api_key: is required",
            400,
        ),
        (
            with(&ok, "name", &"n".repeat(300)),
            "name: is too long",
            400,
        ),
        (with(&ok, "auth_kind", "token"), "auth_kind: must be", 400),
    ];
    for (form, want, status) in cases {
        let p = app.submit(&app.client, "/hosts/new", &pairs(&form)).await;
        assert_eq!(p.status, status, "{want}: {}", p.body);
        assert!(p.body.contains(want), "{want}: {}", p.body);
        assert!(
            !p.body.contains(&app.host.admin_api_key()),
            "the key is never echoed"
        );
    }
    // An oversized body is refused before any handler runs.
    let big = "x".repeat(2 * 1024 * 1024);
    let p = app
        .submit(&app.client, "/hosts/new", &[("name", big.as_str())])
        .await;
    assert_eq!(p.status, 413);
    assert!(app.core.list_hosts().await.unwrap().is_empty());
    // Names are unique.
    assert_eq!(
        app.submit(&app.client, "/hosts/new", &pairs(&ok))
            .await
            .status,
        303
    );
    let p = app.submit(&app.client, "/hosts/new", &pairs(&ok)).await;
    assert_eq!(p.status, 409);
    assert!(p.body.contains("already exists"));
}

#[tokio::test]
async fn a_fresh_gated_host_is_accepted_by_typing_its_phrase_and_its_admin_key_shown_once() {
    let app = TestApp::spawn_with(FakeHostConfig {
        compliance_accepted: false,
        ..Default::default()
    })
    .await;
    app.admin().await;
    let cfg = app.host.config().clone();
    let mut form = app.host_form("gated");
    for (k, v) in form.iter_mut() {
        match k.as_str() {
            "auth_kind" => *v = "password".into(),
            "admin_api_key" => v.clear(),
            _ => {}
        }
    }
    form.push(("admin_email".into(), cfg.admin_email.clone()));
    form.push(("admin_password".into(), cfg.admin_password.clone()));
    let p = app.submit(&app.client, "/hosts/new", &pairs(&form)).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let loc = p.location.unwrap();
    let p = app.get(&loc).await;
    assert!(p.body.contains("data-code=\"compliance_required\""));
    assert!(p.body.contains("HTTP 423"));
    // In Chinese, the finding is written in Chinese around the host's version.
    let zh = app
        .client
        .get(format!("{}{loc}", app.url))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("主机的管理 API 已锁定（HTTP 423）"), "{zh}");
    assert!(
        !zh.contains("until an administrator accepts"),
        "no English finding"
    );
    assert!(p.body.contains("data-testid=\"compliance-box\""));
    assert!(
        p.body.contains(fakehost::COMPLIANCE_PHRASE_EN),
        "the phrase is shown"
    );
    assert!(
        p.body.contains("https://example.invalid/compliance.en"),
        "the text is linked"
    );
    // A wrong phrase: 400, the field named, nothing accepted.
    let p = app
        .submit(
            &app.client,
            &loc,
            &[("action", "accept_compliance"), ("phrase", "ok")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("does not match the host"), "{}", p.body);
    assert_eq!(app.host.calls("POST /api/v1/admin/compliance/accept"), 0);
    let p = app
        .submit(
            &app.client,
            &loc,
            &[
                ("action", "accept_compliance"),
                ("phrase", fakehost::COMPLIANCE_PHRASE_EN),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let p = app.get(&loc).await;
    assert!(!p.body.contains("data-testid=\"compliance-box\""));
    assert!(p.body.contains("Compliance text accepted"));
    // Now the admin key can be obtained; it is shown in that answer only.
    assert!(p.body.contains("data-testid=\"admin-key-box\""));
    let p = app
        .submit(
            &app.client,
            &loc,
            &[("action", "obtain_admin_key"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let key = app.host.admin_api_key();
    assert!(key.starts_with("admin-"));
    assert!(p.body.contains(&key), "shown once");
    let p = app.get(&loc).await;
    assert!(!p.body.contains(&key), "and never again");
    assert!(p.body.contains("(admin API key)"));
}

#[tokio::test]
async fn removing_a_host_needs_its_name_typed() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let p = app
        .submit(&app.client, "/hosts/new", &pairs(&app.host_form("doomed")))
        .await;
    let loc = p.location.unwrap();
    let del = format!("{loc}/delete");
    let p = app.get(&del).await;
    assert!(p.body.contains("Type the host name to confirm"));
    let p = app.submit(&app.client, &del, &[("confirm", "wrong")]).await;
    assert_eq!(p.status, 400);
    assert_eq!(app.core.list_hosts().await.unwrap().len(), 1);
    let p = app
        .submit(&app.client, &del, &[("confirm", "doomed")])
        .await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/hosts")));
    assert!(app.core.list_hosts().await.unwrap().is_empty());
    let (audit, _) = app.core.store.audit_page(1, 20).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "host.delete" && e.actor == "root"));
}

#[tokio::test]
async fn an_edit_with_empty_secrets_keeps_them() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let p = app
        .submit(&app.client, "/hosts/new", &pairs(&app.host_form("h")))
        .await;
    let loc = p.location.unwrap();
    let form = with(
        &with(&app.host_form("h-renamed"), "admin_api_key", ""),
        "probe_user_password",
        "",
    );
    let p = app
        .submit(&app.client, &format!("{loc}/edit"), &pairs(&form))
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let p = app.submit(&app.client, &loc, &[("action", "probe")]).await;
    assert_eq!(p.status, 303);
    let p = app.get(&loc).await;
    assert!(p.body.contains("h-renamed"));
    assert!(
        p.body.contains("signs in"),
        "probe user password kept: {}",
        p.body
    );
}

#[tokio::test]
async fn a_missing_host_batch_pack_or_page_answers_404_with_its_message() {
    let app = TestApp::spawn().await;
    app.admin().await;
    for (path, says) in [
        ("/hosts/999", "host 999 not found"),
        ("/hosts/999/edit", "host 999 not found"),
        ("/hosts/999/drift", "host 999 not found"),
        ("/batches/999", "batch 999 not found"),
        ("/batches/abc", "not found"),
        ("/batches/999/rollback", "batch 999 not found"),
        ("/packs/999", "pack version 999 not found"),
        ("/no/such/page", "Page not found"),
    ] {
        let p = app.get(path).await;
        assert_eq!(p.status, 404, "{path}: {}", p.body);
        assert!(p.body.contains(says), "{path} should say {says:?}");
    }
    // What exists still answers 200.
    assert_eq!(app.get("/hosts").await.status, 200);
    assert_eq!(app.get("/batches").await.status, 200);
    // A viewer on an admin page is refused with 403, not shown a 200.
    app.add_operator("vera", provisioning_core::model::Role::Viewer)
        .await;
    let viewer = app.new_client();
    app.sign_in(&viewer, "vera").await;
    assert_eq!(app.get_with(&viewer, "/operators").await.status, 403);
}
