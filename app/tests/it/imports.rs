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
    let status = applied(&app, id).await;
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

    // A diagnosis of 300 failed checks: grouped by class with counts, a
    // few of each shown, one class paged on its own.
    let items: Vec<serde_json::Value> = (1..=300)
        .map(|seq| {
            serde_json::json!({
                "seq": seq,
                "target": format!("account test sk-…{seq:04}"),
                "class": if seq % 15 == 0 { "network_error" } else { "upstream_quota_exhausted" },
                "evidence": [format!("HTTP 402 Insufficient Balance (check {seq})")],
                "action": "Recharge the provider account",
            })
        })
        .collect();
    let report = serde_json::json!({"at_ms": 1, "items": items, "upstream_completions": 300});
    app.core
        .store
        .insert_diagnosis(big, "test", &report.to_string())
        .await
        .unwrap();
    let page = app.get(&format!("/batches/{big}")).await;
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains("data-class=\"upstream_quota_exhausted\" data-count=\"280\""));
    assert!(page
        .body
        .contains("data-class=\"network_error\" data-count=\"20\""));
    assert_eq!(
        page.body.matches("class=\"diag-item\"").count(),
        6,
        "three checks of each class, not 300"
    );
    let class = app
        .get(&format!("/batches/{big}?diag=upstream_quota_exhausted"))
        .await;
    assert_eq!(class.body.matches("class=\"diag-item\"").count(), 50);
    assert!(!class.body.contains("data-class=\"network_error\""));
    let next = class
        .body
        .split("data-testid=\"diagnosis-next\"")
        .next()
        .and_then(|s| s.rsplit("diag_after=").next())
        .and_then(|s| s.split('#').next())
        .map(str::to_string)
        .expect("a next link");
    let more = app
        .get(&format!(
            "/batches/{big}?diag=upstream_quota_exhausted&diag_after={next}"
        ))
        .await;
    assert_eq!(more.body.matches("class=\"diag-item\"").count(), 50);
    assert!(!more.body.contains(&format!("data-seq=\"{next}\"><b>")));
    let bad = app.get(&format!("/batches/{big}?diag=bogus")).await;
    assert!(bad.body.contains("unknown failure class"), "{}", bad.body);
}

/// Applies a batch here and now (no wait for the host's model cache) and
/// returns its final status.
pub async fn applied(app: &TestApp, id: i64) -> BatchStatus {
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
        .unwrap()
}

/// Waits for a batch started from a form to end (the apply runs in the
/// background) and returns its status.
async fn settled(app: &TestApp, id: i64) -> BatchStatus {
    for _ in 0..400 {
        let s = app.core.batch_view(id).await.unwrap().status;
        if s != BatchStatus::Running {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("batch {id} still running after 20 s");
}

#[tokio::test]
async fn a_discarded_plan_writes_nothing_on_the_host_and_can_never_be_applied() {
    let app = TestApp::spawn().await;
    let (_up, id) = planned(&app).await;
    let writes = app.host.write_calls();
    let path = format!("/batches/{id}");
    let page = app.get(&path).await;
    assert!(
        page.body.contains("data-testid=\"discard\""),
        "a planned batch offers discard"
    );
    // Unconfirmed: refused, naming the box, and nothing changes.
    let p = app
        .submit(&app.client, &path, &[("action", "discard")])
        .await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.body.contains("tick the box"));
    assert_eq!(
        app.core.batch_view(id).await.unwrap().status,
        BatchStatus::Planned
    );
    let p = app
        .submit(
            &app.client,
            &path,
            &[("action", "discard"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let b = app.core.batch_view(id).await.unwrap();
    assert_eq!(b.status, BatchStatus::Discarded);
    assert_eq!(
        app.host.write_calls(),
        writes,
        "nothing was written to the host"
    );
    assert!(
        app.core.store.batch_keys(id).await.unwrap().is_empty(),
        "its sealed keys are deleted"
    );
    assert!(
        b.steps
            .iter()
            .all(|s| s.state == provisioning_core::model::StepState::Skipped),
        "every step is marked skipped"
    );
    let page = app.get(&path).await;
    assert!(page
        .body
        .contains("Discarded: nothing was sent to the host"));
    assert!(page.body.contains("data-status=\"discarded\""));
    for button in [
        "data-testid=\"apply\"",
        "data-testid=\"discard\"",
        "data-testid=\"rollback\"",
    ] {
        assert!(
            !page.body.contains(button),
            "a discarded batch offers no {button}"
        );
    }
    // Applying it now, from the form or the core, is refused; so is a
    // second discard.
    let p = app.submit(&app.client, &path, &[("action", "apply")]).await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert!(p.body.contains("was discarded"));
    assert!(app
        .core
        .apply_batch("root", id, Default::default())
        .await
        .is_err());
    let p = app
        .submit(
            &app.client,
            &path,
            &[("action", "discard"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert_eq!(app.host.write_calls(), writes, "still nothing written");
    let audit = app.core.store.audit_page(1, 50).await.unwrap().0;
    assert!(audit
        .iter()
        .any(|e| e.action == "batch.discard" && e.outcome == "ok"));
}

#[tokio::test]
async fn an_applied_batch_cannot_be_discarded() {
    let app = TestApp::spawn().await;
    let (_up, id) = planned(&app).await;
    applied(&app, id).await;
    let p = app
        .submit(
            &app.client,
            &format!("/batches/{id}"),
            &[("action", "discard"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert!(p.body.contains("roll it back instead"), "{}", p.body);
    assert_eq!(
        app.core.batch_view(id).await.unwrap().status,
        BatchStatus::PartiallySucceeded
    );
}

#[tokio::test]
async fn retrying_the_failed_keys_after_a_top_up_brings_the_batch_to_succeeded() {
    let app = TestApp::spawn().await;
    let (up, id) = planned(&app).await;
    let path = format!("/batches/{id}");
    let p = app.submit(&app.client, &path, &[("action", "apply")]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(settled(&app, id).await, BatchStatus::PartiallySucceeded);
    let page = app.get(&path).await;
    assert!(
        page.body.contains("data-action=\"retry_failed\"")
            && page.body.contains("Retry the 1 failed key(s)"),
        "the button says what it retries"
    );
    let accounts = app.host.with_state(|s| s.accounts.len());
    let creates = || {
        app.host.calls("POST /api/v1/admin/accounts")
            + app.host.calls("POST /api/v1/admin/accounts/batch")
    };
    let created = creates();
    // The provider account is recharged; the failed key is retried alone.
    up.add_key(crate::imports::CANARY_PROVIDER_KEY, UpstreamBehaviour::Ok);
    let p = app
        .submit(&app.client, &path, &[("action", "retry_failed")])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(settled(&app, id).await, BatchStatus::Succeeded);
    let b = app.core.batch_view(id).await.unwrap();
    assert_eq!((b.keys.passed, b.keys.failed), (2, 0));
    assert_eq!(
        app.host.with_state(|s| s.accounts.len()),
        accounts,
        "no account added"
    );
    assert_eq!(creates(), created, "no account created again");
    // Nothing failed now: the button no longer offers a retry.
    let page = app.get(&path).await;
    assert!(page.body.contains("Retrying 1 failed key(s)"));
    assert!(!page.body.contains("data-action=\"retry_failed\""));
    let p = app
        .submit(&app.client, &path, &[("action", "retry_failed")])
        .await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert!(p.body.contains("has no failed keys to retry"));
}

#[tokio::test]
async fn the_accounts_page_finds_an_account_by_key_mask_or_fingerprint() {
    let app = TestApp::spawn().await;
    let (_up, id) = planned(&app).await;
    applied(&app, id).await;
    let host = app.core.list_hosts().await.unwrap()[0].id;
    let path = format!("/hosts/{host}/accounts");
    let rows = |body: &str| body.matches("data-testid=\"account-row\"").count();
    let all = app.get(&path).await;
    assert_eq!(all.status, 200);
    assert_eq!(rows(&all.body), 2, "both keys' accounts are listed");
    assert!(all.body.contains("2 account(s)"));
    let keys = app.core.store.batch_keys(id).await.unwrap();
    let (fp, _, masked) = keys
        .iter()
        .find(|(_, _, m)| m.ends_with(&CANARY_PROVIDER_KEY[CANARY_PROVIDER_KEY.len() - 4..]))
        .expect("the canary's mask")
        .clone();
    assert!(
        !all.body.contains(CANARY_PROVIDER_KEY),
        "never the full key"
    );
    // By the whole mask, as the batch page shows it.
    let enc = |s: &str| s.replace('…', "%E2%80%A6");
    let found = app.get(&format!("{path}?q={}", enc(&masked))).await;
    assert_eq!(found.status, 200);
    assert_eq!(rows(&found.body), 1, "{}", found.body);
    assert!(found.body.contains(&masked));
    assert!(found.body.contains("1 / 2 account(s) match"));
    assert!(
        found.body.contains("data-test-state=\"failed\""),
        "its account test failed (no balance)"
    );
    assert!(found.body.contains(&format!("href=\"/batches/{id}\"")));
    // By the start of its fingerprint.
    let found = app.get(&format!("{path}?q={}", &fp[..12])).await;
    assert_eq!(rows(&found.body), 1);
    assert!(found.body.contains(&fp));
    // Nothing matches; a query no mask is that long is refused (400).
    let none = app.get(&format!("{path}?q=no-such-mask")).await;
    assert_eq!(rows(&none.body), 0);
    assert!(none.body.contains("No account matches."));
    let long = app.get(&format!("{path}?q={}", "x".repeat(101))).await;
    assert_eq!(long.status, 400, "{}", long.body);
    assert!(
        long.body.contains("q: is longer than any key mask"),
        "{}",
        long.body
    );
    assert_eq!(app.get("/hosts/999/accounts").await.status, 404);
}

#[tokio::test]
async fn the_audit_log_names_each_batch_one_way_records_refused_forms_and_filters() {
    let app = TestApp::spawn().await;
    let (_up, id) = planned(&app).await;
    let path = format!("/batches/{id}");
    // A refused form (no confirmation) and a successful apply.
    let p = app
        .submit(&app.client, &path, &[("action", "discard")])
        .await;
    assert_eq!(p.status, 400);
    applied(&app, id).await;
    let (all, _) = app.core.store.audit_page(1, 200).await.unwrap();
    let about: Vec<_> = all
        .iter()
        .filter(|e| e.action.starts_with("batch."))
        .collect();
    assert!(about.len() >= 4, "{about:?}");
    let target = format!("batch:{id}");
    for e in &about {
        if e.target != "batch:new" {
            assert_eq!(e.target, target, "one name per batch: {e:?}");
        }
    }
    let refused = about
        .iter()
        .find(|e| e.action == "batch.discard")
        .expect("the refused discard is audited");
    assert_eq!(refused.outcome, "invalid");
    assert!(
        refused.detail.contains("confirm: tick the box"),
        "{}",
        refused.detail
    );
    // The page filters by outcome and by target, and links the batch.
    let p = app.get("/audit?outcome=invalid").await;
    assert_eq!(p.status, 200);
    let rows = p.body.matches("data-testid=\"audit-row\"").count();
    assert_eq!(rows, 1, "{}", p.body);
    assert!(p.body.contains(&format!("href=\"/batches/{id}\"")));
    let p = app
        .get(&format!("/audit?target=batch:{id}&action=batch."))
        .await;
    assert_eq!(
        p.body.matches("data-testid=\"audit-row\"").count(),
        about.iter().filter(|e| e.target == target).count()
    );
    let p = app.get("/audit?actor=nobody").await;
    assert!(p.body.contains("No entry matches."));
    // The evidence bundle still carries the batch's entries.
    let bundle = app.core.export_bundle("root", id).await.unwrap();
    assert!(bundle.json.contains("batch.plan") && bundle.json.contains("batch.apply"));
}

#[tokio::test]
async fn the_batch_list_filters_by_status_and_attention_and_the_overview_shows_what_needs_it() {
    let app = TestApp::spawn().await;
    let (_up, applied) = planned(&app).await;
    crate::imports::applied(&app, applied).await;
    let (_up2, planned_id) = crate::imports::planned_with_admin_signed_in(&app).await;
    let rows = |body: &str| {
        let mut ids: Vec<String> = body
            .match_indices("<tr data-batch=\"")
            .map(|(i, _)| body[i + 16..].split('"').next().unwrap().to_string())
            .collect();
        ids.dedup();
        ids
    };
    assert_eq!(rows(&app.get("/batches").await.body).len(), 2);
    let p = app.get("/batches?status=planned").await;
    assert_eq!(rows(&p.body), vec![planned_id.to_string()]);
    let p = app.get("/batches?attention=1").await;
    assert_eq!(
        rows(&p.body),
        vec![applied.to_string()],
        "partly failed needs attention; a plan does not"
    );
    let host = app.core.list_hosts().await.unwrap()[0].id;
    let p = app
        .get(&format!("/batches?host={host}&provider=ds&status=failed"))
        .await;
    assert!(p.body.contains("No batch matches."));
    let p = app.get("/batches?status=bogus").await;
    assert_eq!(p.status, 400);
    assert!(
        p.body.contains("status: \"bogus\" is not a batch status"),
        "{}",
        p.body
    );
    let o = app.get("/").await;
    let attention = &o.body[o.body.find("data-testid=\"attention\"").unwrap()
        ..o.body.find("data-testid=\"newest-batches\"").unwrap()];
    assert_eq!(rows(attention), vec![applied.to_string()]);
}

#[tokio::test]
async fn a_chinese_operator_gets_the_servers_messages_and_badges_in_chinese() {
    let app = TestApp::spawn().await;
    let (_up, id) = planned(&app).await;
    // A browser that prefers Chinese.
    let zh = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("accept-language", "zh-CN,zh;q=0.9".parse().unwrap());
            h
        })
        .build()
        .unwrap();
    app.sign_in(&zh, "root").await;
    let path = format!("/batches/{id}");
    let refused = app.submit(&zh, &path, &[("action", "discard")]).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .body
            .contains("请勾选确认：放弃的计划永远不能再执行"),
        "{}",
        refused.body
    );
    let p = app
        .submit(&zh, &path, &[("action", "discard"), ("confirm", "yes")])
        .await;
    assert_eq!(p.status, 303);
    let page = app.get_with(&zh, &path).await;
    assert!(
        page.body.contains("已放弃：未向主机发送任何内容"),
        "the flash"
    );
    assert!(page.body.contains(">已放弃</span>"), "the badge");
    assert!(!page.body.contains("Discarded: nothing was sent"));
}

#[tokio::test]
async fn field_errors_skip_reasons_and_the_strategy_read_in_chinese_from_their_codes() {
    let app = TestApp::spawn().await;
    let (_up, id) = planned(&app).await;
    applied(&app, id).await;
    let zh = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("accept-language", "zh-CN".parse().unwrap());
            h
        })
        .build()
        .unwrap();
    app.sign_in(&zh, "root").await;
    // A form refused by the core's validation: the field, in Chinese.
    let form: Vec<(String, String)> = app
        .host_form("h2")
        .into_iter()
        .map(|(k, v)| {
            let v = if k == "base_url" {
                "ftp://gateway.example.com".to_string()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    let p = app.submit(&zh, "/hosts/new", &pairs(&form)).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(
        p.body.contains("基础 URL：必须以 http:// 或 https:// 开头"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("must start with http"));
    // A pack with a type problem and a value problem: both located, in
    // Chinese, the path and the values kept as written.
    let bad = pack("not-a-url").replace("currency: USD", "currency: EUR");
    let p = app.submit(&zh, "/packs", &[("source", &bad)]).await;
    assert_eq!(p.status, 400, "{}", p.body);
    for zh_text in [
        "第 9 行，providers.ds.base_url：`not-a-url` 不是 http(s) URL（应为：URL，例如 https://api.deepseek.com）",
        "providers.ds.models.deepseek-flash.price.currency：是文本“EUR”（应为：USD, CNY 之一）",
    ] {
        assert!(p.body.contains(zh_text), "{zh_text}: {}", p.body);
    }
    for en in ["is not an http(s) URL", "is the text", "expected"] {
        assert!(!p.body.contains(en), "{en} in a zh page");
    }
    // A refusal with a parameter: the name, in a Chinese sentence.
    let taken: Vec<(String, String)> = app.host_form("h");
    let p = app.submit(&zh, "/hosts/new", &pairs(&taken)).await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert!(p.body.contains("名称：名为 `h` 的主机已存在"), "{}", p.body);
    // A plan of keys the first batch imported, and one too short.
    let host = app.core.list_hosts().await.unwrap()[0].id;
    let pv = app
        .core
        .store
        .batch(id)
        .await
        .unwrap()
        .unwrap()
        .pack_version_id;
    let text = "sk-healthy-provider-key-000000000001\nsk-healthy-provider-key-000000000001\nabc"
        .to_string();
    let again = app
        .core
        .plan_batch(
            "root",
            &provisioning_core::ops::BatchRequest {
                host_id: host,
                pack_version_id: pv,
                provider_key: "ds".into(),
                mode: None,
                keys_text: text,
            },
        )
        .await
        .unwrap();
    let page = app.get_with(&zh, &format!("/batches/{again}")).await;
    for zh_text in [
        &format!("已由批次 #{id} 导入（账号"),
        "在本批次中前面已出现过",
        "太短，不像密钥",
        "主机具备原生 `deepseek` 平台",
        "所有密钥均被跳过：本批次只重新检查访问和就绪",
        "分组 relay-ds",
        "就绪检查",
    ] {
        assert!(page.body.contains(zh_text), "{zh_text}");
    }
    for en in [
        "already imported by batch",
        "appears earlier in this batch",
        "too short to be a key",
        "the host has the native",
        "Every key was skipped",
        "readiness gate",
    ] {
        assert!(!page.body.contains(en), "{en} in a zh page");
    }
    // The same plan in English reads as before.
    let en = app.get(&format!("/batches/{again}")).await;
    assert!(en
        .body
        .contains(&format!("already imported by batch #{id}")));
    assert!(en.body.contains("readiness gate"));
}

#[tokio::test]
async fn a_diagnosis_reads_in_chinese_for_a_chinese_operator() {
    let app = TestApp::spawn().await;
    let (_up, id) = planned(&app).await;
    applied(&app, id).await;
    let zh = app
        .client
        .get(format!("{}/batches/{id}", app.url))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("data-class=\"upstream_quota_exhausted\""));
    assert!(
        zh.contains("为该密钥所属的供应商账号充值"),
        "the next action in Chinese"
    );
    assert!(!zh.contains("Recharge the provider account"));
    assert!(zh.contains(">部分成功</span>"));
}

#[tokio::test]
async fn replacing_the_failed_key_from_its_page_removes_the_old_account_and_never_shows_the_key() {
    let app = TestApp::spawn().await;
    let (up, id) = planned(&app).await;
    applied(&app, id).await;
    let fresh = "sk-replacement-provider-key-0000000042";
    up.add_key(fresh, UpstreamBehaviour::Ok);
    let batch_page = app.get(&format!("/batches/{id}")).await;
    assert!(batch_page.body.contains("data-testid=\"replace-key\""));
    let path = format!("/batches/{id}/replace");
    let page = app.get(&path).await;
    assert_eq!(page.status, 200);
    // The failed key's account is offered, marked as failed.
    assert_eq!(page.body.matches("<option").count(), 1, "{}", page.body);
    assert!(page.body.contains("test failed"));
    let ledger: String = {
        let at = page.body.find("<option value=\"").unwrap() + 15;
        page.body[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect()
    };
    // Refusals name the field, keep the page, and never echo the key.
    for (form, field, status) in [
        (
            vec![("account", ledger.as_str()), ("new_key", fresh)],
            "confirm",
            400,
        ),
        (
            vec![("account", "x"), ("new_key", fresh), ("confirm", "yes")],
            "account",
            400,
        ),
        (
            vec![
                ("account", ledger.as_str()),
                ("new_key", CANARY_PROVIDER_KEY),
                ("confirm", "yes"),
            ],
            "key",
            400,
        ),
        (
            vec![
                ("account", ledger.as_str()),
                ("new_key", "sk-healthy-provider-key-000000000001"),
                ("confirm", "yes"),
            ],
            "key",
            409,
        ),
        (
            vec![
                ("account", ledger.as_str()),
                ("new_key", "a\nb-second-key-000"),
                ("confirm", "yes"),
            ],
            "key",
            400,
        ),
    ] {
        let p = app.submit(&app.client, &path, &form).await;
        assert_eq!(p.status, status, "{field}: {}", p.body);
        assert!(
            p.body.contains(&format!("data-testid=\"error-{field}\"")),
            "{field}: {}",
            p.body
        );
        assert!(
            !p.body.contains(fresh)
                && !p.body.contains(CANARY_PROVIDER_KEY)
                && !p.body.contains("sk-healthy-provider-key-000000000001"),
            "a refused key is not sent back"
        );
    }
    let p = app
        .submit(
            &app.client,
            &path,
            &[
                ("account", ledger.as_str()),
                ("new_key", fresh),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        p.location.as_deref(),
        Some(format!("/batches/{id}").as_str())
    );
    assert_eq!(settled(&app, id).await, BatchStatus::Succeeded);
    let b = app.core.batch_view(id).await.unwrap();
    assert_eq!((b.keys.passed, b.keys.failed, b.keys.replaced), (2, 0, 1));
    assert_eq!(
        app.host
            .with_state(|s| s.accounts.iter().filter(|a| !a.deleted).count()),
        2,
        "one account in, one out"
    );
    let page = app.get(&format!("/batches/{id}")).await;
    assert!(page.body.contains("Key replacement"), "the run is named");
    assert!(page.body.contains("1 replaced by another key"));
    assert!(!page.body.contains(fresh), "never the full key");
    // Every refusal and the replacement are in the audit log, without the key.
    let audit = app.core.store.audit_page(1, 100).await.unwrap().0;
    let ours: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "batch.replace_key")
        .collect();
    assert!(ours.iter().any(|e| e.outcome == "invalid"));
    assert!(ours.iter().any(|e| e.outcome == "conflict"));
    assert!(ours.iter().any(|e| e.outcome == "ok"), "{ours:?}");
    assert!(ours.iter().all(|e| !e.detail.contains(fresh)));
    // The accounts page links each live account to its replacement.
    let host = app.core.list_hosts().await.unwrap()[0].id;
    let accounts = app.get(&format!("/hosts/{host}/accounts")).await;
    assert_eq!(
        accounts
            .body
            .matches("data-testid=\"replace-account-link\"")
            .count(),
        2
    );
    assert!(accounts.body.contains("removed by this product"));
}
