use crate::{pairs, TestApp};
use fakehost::{FakeUpstream, ProviderStyle, UpstreamBehaviour};
use provisioning_core::model::{BatchStatus, Role};

pub const CANARY_PROVIDER_KEY: &str = "sk-canary-provider-key-0123456789abcdef";

pub fn pack(upstream: &str) -> String {
    format!(
        "schema: 1
id: app-pack
name: App test
providers:
  ds:
    display_name: DS
    api_family: deepseek
    native_platform: deepseek
    base_url: {upstream}
    smoke_model: deepseek-flash
    models:
      deepseek-flash:
        price: {{ currency: USD, input: 0.3, output: 1.2, source: test, verified: 2026-11-01 }}
"
    )
}

/// Admin, a host, an uploaded pack and a planned batch of two keys (one of
/// them the canary, whose provider account has no balance).
pub async fn planned(app: &TestApp) -> (FakeUpstream, i64) {
    app.admin().await;
    planned_with_admin_signed_in(app).await
}

/// As [`planned`], for an app whose admin is already signed in; the host is
/// added unless one exists.
pub async fn planned_with_admin_signed_in(app: &TestApp) -> (FakeUpstream, i64) {
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    upstream.add_key(
        "sk-healthy-provider-key-000000000001",
        UpstreamBehaviour::Ok,
    );
    upstream.add_key(CANARY_PROVIDER_KEY, UpstreamBehaviour::QuotaExhausted);
    if app.core.list_hosts().await.unwrap().is_empty() {
        let p = app
            .submit(&app.client, "/hosts/new", &pairs(&app.host_form("h")))
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
    }
    let p = app
        .submit(&app.client, "/packs", &[("source", &pack(&upstream.url()))])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let pv = p
        .location
        .unwrap()
        .trim_start_matches("/packs/")
        .parse::<i64>()
        .unwrap();
    let host_id = app.core.list_hosts().await.unwrap()[0].id.to_string();
    let keys = format!("sk-healthy-provider-key-000000000001\n{CANARY_PROVIDER_KEY}");
    let p = app
        .submit(
            &app.client,
            "/batches/new",
            &[
                ("host_id", &host_id),
                ("provider", &format!("{pv}:ds")),
                ("mode", "default"),
                ("keys", &keys),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let id = p
        .location
        .unwrap()
        .trim_start_matches("/batches/")
        .parse::<i64>()
        .unwrap();
    (upstream, id)
}

#[tokio::test]
async fn a_broken_pack_is_refused_with_every_problem_located() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let bad = pack("not-a-url").replace("smoke_model: deepseek-flash", "smoke_model: nope");
    let p = app.submit(&app.client, "/packs", &[("source", &bad)]).await;
    assert_eq!(p.status, 400);
    assert!(
        p.body
            .contains("The pack has 2 problems; nothing was stored."),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("line 9, providers.ds.base_url"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("line 10, providers.ds.smoke_model"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("smoke_model: nope"),
        "the text is kept for fixing"
    );
    let stored = app.core.pack_versions().await.unwrap();
    assert!(stored.iter().all(|v| v.pack_id != "app-pack"));
}

#[tokio::test]
async fn bad_batch_input_names_the_field_and_plans_nothing() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let p = app
        .submit(&app.client, "/hosts/new", &pairs(&app.host_form("h")))
        .await;
    assert_eq!(p.status, 303);
    let p = app
        .submit(
            &app.client,
            "/packs",
            &[("source", &pack("https://api.deepseek.com"))],
        )
        .await;
    let pv = p
        .location
        .unwrap()
        .trim_start_matches("/packs/")
        .to_string();
    let host = app.core.list_hosts().await.unwrap()[0].id.to_string();
    for (form, want) in [
        (
            vec![
                ("host_id", host.as_str()),
                ("provider", "x"),
                ("keys", "sk-aaaaaaaaaaaa"),
            ],
            "provider: choose a provider",
        ),
        (
            vec![
                ("host_id", host.as_str()),
                ("provider", &format!("{pv}:ds")),
                ("keys", "  "),
            ],
            "keys: is empty",
        ),
        (
            vec![
                ("host_id", "nope"),
                ("provider", &format!("{pv}:ds")),
                ("keys", "sk-aaaaaaaaaaaa"),
            ],
            "host_id: choose a host",
        ),
        (
            vec![
                ("host_id", host.as_str()),
                ("provider", &format!("{pv}:ds")),
                ("mode", "free"),
                ("keys", "sk-aaaaaaaaaaaa"),
            ],
            "mode: must be",
        ),
    ] {
        let p = app.submit(&app.client, "/batches/new", &form).await;
        assert_eq!(p.status, 400, "{want}: {}", p.body);
        assert!(p.body.contains(want), "{want}: {}", p.body);
        assert!(!p.body.contains("sk-aaaaaaaaaaaa"), "keys are never echoed");
    }
    assert!(app
        .core
        .list_batches(None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn a_viewer_reads_and_exports_evidence_but_cannot_import_apply_or_diagnose() {
    let app = TestApp::spawn().await;
    let (_up, id) = planned(&app).await;
    app.add_operator("vera", Role::Viewer).await;
    let viewer = app.new_client();
    app.sign_in(&viewer, "vera").await;
    let p = app.get_with(&viewer, &format!("/batches/{id}")).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("data-testid=\"timeline\""));
    assert!(
        !p.body.contains("data-testid=\"apply\""),
        "no apply button for a viewer"
    );
    let csrf = app.csrf(&viewer, "/batches").await;
    let source = pack("https://api.deepseek.com");
    for (path, form) in [
        ("/packs".to_string(), vec![("source", source.as_str())]),
        (
            "/batches/new".to_string(),
            vec![
                ("host_id", "1"),
                ("provider", "1:deepseek"),
                ("keys", "sk-aaaaaaaaaaaa"),
            ],
        ),
        (format!("/batches/{id}"), vec![("action", "apply")]),
        (format!("/batches/{id}"), vec![("action", "diagnose")]),
    ] {
        let mut f = vec![("_csrf", csrf.as_str())];
        f.extend(form);
        let p = app.post_with(&viewer, &path, &f).await;
        assert_eq!(p.status, 403, "{path}: {}", p.body);
        assert!(
            p.body.contains("Your role (viewer) cannot do this"),
            "{path}"
        );
    }
    assert_eq!(
        app.core.batch_view(id).await.unwrap().status,
        BatchStatus::Planned,
        "nothing applied"
    );
    assert_eq!(
        app.core.list_batches(None, 10).await.unwrap().items.len(),
        1,
        "nothing planned"
    );
    // Evidence downloads are for reviewers too.
    let r = viewer
        .get(format!("{}/batches/{id}/evidence.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert_eq!(provisioning_core::ops::verify_bundle(&body), Ok(true));
    let r = app
        .new_client()
        .get(format!("{}/batches/{id}/evidence.html", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "not without a session");
}

#[tokio::test]
async fn an_exhausted_key_is_diagnosed_on_the_batch_page_with_the_next_action() {
    let app = TestApp::spawn().await;
    let (_up, id) = planned(&app).await;
    let status = app
        .core
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
    assert_eq!(status, BatchStatus::PartiallySucceeded);
    let p = app.get(&format!("/batches/{id}")).await;
    assert!(
        p.body.contains("data-class=\"upstream_quota_exhausted\""),
        "{}",
        p.body
    );
    assert!(p.body.contains("Recharge the provider account"));
    let html = app
        .client
        .get(format!("{}/batches/{id}/evidence.html", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("upstream_quota_exhausted"));
    assert!(html.contains("readiness gate"));
}

/// The batch list's row of a batch of 300 keys is the size of a row of a
/// batch of two (digits aside): lists carry counts, never plans or
/// journals. The batch page shows one page of 100 steps, with a link on.
#[tokio::test]
async fn pages_are_sized_by_what_they_show_not_by_the_keys() {
    let app = TestApp::spawn().await;
    let (_up, small) = planned(&app).await;
    let small_view = app.core.batch_view(small).await.unwrap();
    let pv = sqlx::query_scalar::<_, i64>("SELECT pack_version_id FROM batches WHERE id = ?")
        .bind(small)
        .fetch_one(app.core.store.pool())
        .await
        .unwrap();
    let keys: Vec<String> = (0..300)
        .map(|i| format!("sk-size-test-{i:06}-abcdefghijklmnop"))
        .collect();
    let big = app
        .core
        .plan_batch(
            "test",
            &provisioning_core::ops::BatchRequest {
                host_id: small_view.host_id,
                pack_version_id: pv,
                provider_key: "ds".into(),
                mode: None,
                keys_text: keys.join("\n"),
            },
        )
        .await
        .unwrap();
    let list = app.get("/batches").await;
    assert_eq!(list.status, 200);
    let row = |id: i64| {
        let start = list
            .body
            .find(&format!("<tr data-batch=\"{id}\""))
            .unwrap_or_else(|| panic!("no row for batch {id}"));
        let end = start + list.body[start..].find("</tr>").unwrap();
        list.body[start..end].to_string()
    };
    let (small_row, big_row) = (row(small), row(big));
    assert!(
        big_row.len() <= small_row.len() + 8,
        "a batch's row grew with its keys: {} vs {} bytes\n{big_row}\n{small_row}",
        big_row.len(),
        small_row.len()
    );
    assert!(
        big_row.contains(">300<"),
        "the key count is shown: {big_row}"
    );
    assert!(
        !list.body.contains("sk-size-test"),
        "no key material in the list"
    );
    assert!(
        !list.body.contains("__RESOLVED_RESOURCES["),
        "the list's data is not sent twice (markup, then hydration data)"
    );

    let page = app.get(&format!("/batches/{big}")).await;
    assert_eq!(page.status, 200);
    let rows = page
        .body
        .matches("<tr data-kind=\"account\" data-seq")
        .count();
    assert!(
        (90..=100).contains(&rows),
        "one page of 100 steps, not 300 accounts: {rows}"
    );
    assert!(!page.body.contains("data-seq=\"101\""));
    assert!(page.body.contains("data-testid=\"next-steps\""));
    let next = app.get(&format!("/batches/{big}?after=100")).await;
    assert_eq!(next.status, 200);
    assert!(
        next.body.contains("data-seq=\"101\""),
        "the next page starts after the cursor"
    );
    assert!(!next.body.contains("data-seq=\"100\""));
    let bad = app.get(&format!("/batches/{big}?state=bogus")).await;
    assert!(bad.body.contains("unknown journal state"), "{}", bad.body);
}
