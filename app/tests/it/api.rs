//! The JSON API: bearer tokens only, the core's authorization, problem
//! details for every refusal, idempotent POSTs, and a pack → plan → apply
//! → ready flow against the fake host.

use crate::imports::pack;
use crate::{pairs, TestApp, METRICS_TOKEN};
use app::server::rest::ROUTES;
use fakehost::{FakeUpstream, ProviderStyle, UpstreamBehaviour};
use provisioning_core::model::Role;
use provisioning_core::ops::{Principal, TokenRequest};
use serde_json::{json, Value};

const KEY: &str = "sk-api-provider-key-00000000000000000001";
const SECOND: &str = "sk-api-provider-key-00000000000000000002";

/// `/metrics` scraped with the token: each sample line as (name{labels}, value).
async fn scrape(app: &TestApp) -> std::collections::BTreeMap<String, f64> {
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", app.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    assert!(
        ctype.starts_with("text/plain; version=0.0.4"),
        "{ctype}: {}",
        &text[..text.len().min(600)]
    );
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

struct Api<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
}

impl Api<'_> {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut r = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.app.url),
        );
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, v)
    }
}

async fn token(app: &TestApp, for_name: &str, role: Role, scope: &str) -> String {
    let root = app
        .core
        .store
        .operator_by_name("root")
        .await
        .unwrap()
        .unwrap();
    let op = match app.core.store.operator_by_name(for_name).await.unwrap() {
        Some(o) => o,
        None => {
            app.add_operator(for_name, role).await;
            app.core
                .store
                .operator_by_name(for_name)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let (_, secret) = app
        .core
        .create_token(
            &Principal::operator(root.id, "root", Role::Admin),
            &TokenRequest {
                operator_id: op.id,
                name: format!("{for_name} {scope}"),
                scope: scope.into(),
                days: "30".into(),
            },
        )
        .await
        .unwrap();
    secret.expose().to_string()
}

#[tokio::test]
async fn every_route_wants_a_token_and_sessions_do_not_count() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let api = Api {
        app: &app,
        http: reqwest::Client::new(),
    };
    for (method, path) in ROUTES {
        let path = path.replace("{id}", "1");
        let (status, headers, body) = api.call(method, &path, None, None, None).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert_eq!(body["code"], "unauthorized", "{method} {path}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (status, _, body) = api
            .call(method, &path, Some("rmt_not-a-real-token"), None, None)
            .await;
        assert_eq!(status, 401, "{method} {path}: {body}");
    }
    // The signed-in browser session does not open the API.
    let r = app
        .client
        .get(format!("{}/api/v1/hosts", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // An unknown route is a problem too, not the HTML 404 page.
    let t = token(&app, "root", Role::Admin, "read").await;
    let (status, _, body) = api.call("GET", "/api/v1/nope", Some(&t), None, None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn a_token_plans_applies_and_watches_a_batch_to_ready_with_idempotent_posts() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    upstream.add_key(KEY, UpstreamBehaviour::Ok);
    let p = app
        .submit(&app.client, "/hosts/new", &pairs(&app.host_form("h")))
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let host_id = app.core.list_hosts().await.unwrap()[0].id;
    let api = Api {
        app: &app,
        http: reqwest::Client::new(),
    };
    let before = scrape(&app).await;
    let write = token(&app, "otto", Role::Operator, "write").await;
    let read = token(&app, "otto", Role::Operator, "read").await;
    let viewer_write = token(&app, "vera", Role::Viewer, "write").await;

    let (status, _, me) = api
        .call("GET", "/api/v1/me", Some(&write), None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (me["operator"].as_str(), me["scope"].as_str()),
        (Some("otto"), Some("write"))
    );

    // Validate without storing: every problem, located.
    let bad = pack(&upstream.url()).replace("currency: USD", "currency: EUR");
    let (status, headers, body) = api
        .call(
            "POST",
            "/api/v1/packs/validate",
            Some(&read),
            Some(json!({ "source": bad })),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("invalid_pack"), Some("source"))
    );
    assert_eq!(
        body["errors"][0]["path"],
        "providers.ds.models.deepseek-flash.price.currency"
    );
    assert!(app
        .core
        .pack_versions()
        .await
        .unwrap()
        .iter()
        .all(|v| v.pack_id != "app-pack"));

    // A read token and a viewer's token change nothing (403, audited).
    let good = json!({ "source": pack(&upstream.url()) });
    for t in [&read, &viewer_write] {
        let (status, _, body) = api
            .call("POST", "/api/v1/packs", Some(t), Some(good.clone()), None)
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
    }
    let (audit, _) = app.core.store.audit_page(1, 5).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "pack.upload"
        && e.outcome == "denied"
        && e.actor.starts_with("vera (token #")));

    // Upload, retried under the same key: one version, the same answer.
    let (status, _, first) = api
        .call(
            "POST",
            "/api/v1/packs",
            Some(&write),
            Some(good.clone()),
            Some("pack-1"),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let (status, headers, again) = api
        .call(
            "POST",
            "/api/v1/packs",
            Some(&write),
            Some(good.clone()),
            Some("pack-1"),
        )
        .await;
    assert_eq!((status, &again), (201, &first));
    assert_eq!(headers["idempotent-replay"], "true");
    let (status, _, body) = api
        .call(
            "POST",
            "/api/v1/packs",
            Some(&write),
            Some(json!({ "source": "schema: 1" })),
            Some("pack-1"),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("idempotency_mismatch"))
    );
    let pv = first["pack_version_id"].as_i64().unwrap();

    // Bad plans name their field; nothing is planned.
    let plan = |keys: &str| json!({ "host_id": host_id, "pack_version_id": pv, "provider": "ds", "keys": keys });
    let (status, _, body) = api
        .call(
            "POST",
            "/api/v1/batches",
            Some(&write),
            Some(json!({ "host_id": host_id })),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_body")),
        "{body}"
    );
    let (status, _, body) = api
        .call(
            "POST",
            "/api/v1/batches",
            Some(&write),
            Some(plan("  ")),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("keys")),
        "{body}"
    );
    let mut wrong_mode = plan(KEY);
    wrong_mode["mode"] = json!("monthly");
    let (status, _, body) = api
        .call(
            "POST",
            "/api/v1/batches",
            Some(&write),
            Some(wrong_mode),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("mode")),
        "{body}"
    );
    let (_, _, list) = api
        .call("GET", "/api/v1/batches", Some(&read), None, None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    // Plan (retried: one batch), apply, watch to ready.
    let (status, _, planned) = api
        .call(
            "POST",
            "/api/v1/batches",
            Some(&write),
            Some(plan(KEY)),
            Some("plan-1"),
        )
        .await;
    assert_eq!(status, 201, "{planned}");
    let (_, _, replayed) = api
        .call(
            "POST",
            "/api/v1/batches",
            Some(&write),
            Some(plan(KEY)),
            Some("plan-1"),
        )
        .await;
    assert_eq!(replayed["id"], planned["id"]);
    let id = planned["id"].as_i64().unwrap();
    assert_eq!(planned["status"], "planned");
    assert!(
        !planned.to_string().contains(KEY),
        "the key never comes back"
    );
    let (status, _, started) = api
        .call(
            "POST",
            &format!("/api/v1/batches/{id}/apply"),
            Some(&write),
            None,
            Some("apply-1"),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let mut progress = Value::Null;
    for _ in 0..300 {
        let (_, _, p) = api
            .call(
                "GET",
                &format!("/api/v1/batches/{id}/progress"),
                Some(&read),
                None,
                None,
            )
            .await;
        progress = p;
        if progress["finished"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(progress["status"], "succeeded", "{progress}");
    assert_eq!(
        progress["access_status"], "self_service_ready",
        "{progress}"
    );
    // The retried apply is the first answer, not a second run.
    let (status, headers, _) = api
        .call(
            "POST",
            &format!("/api/v1/batches/{id}/apply"),
            Some(&write),
            None,
            Some("apply-1"),
        )
        .await;
    assert_eq!(
        (status, headers.contains_key("idempotent-replay")),
        (202, true)
    );
    let (status, _, body) = api
        .call(
            "POST",
            &format!("/api/v1/batches/{id}/apply"),
            Some(&read),
            None,
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");

    // Reads: the batch, its evidence (the downloaded bytes), the audit log
    // naming the token.
    let (_, _, b) = api
        .call(
            "GET",
            &format!("/api/v1/batches/{id}"),
            Some(&read),
            None,
            None,
        )
        .await;
    assert_eq!(b["keys"]["passed"], 1, "{b}");
    let (status, headers, bundle) = api
        .call(
            "GET",
            &format!("/api/v1/batches/{id}/evidence"),
            Some(&read),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert!(!bundle.to_string().contains(KEY));
    let (_, _, audit) = api
        .call(
            "GET",
            "/api/v1/audit?action=batch.apply&limit=5",
            Some(&read),
            None,
            None,
        )
        .await;
    let items = audit["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|e| e["actor"].as_str().unwrap().starts_with("otto (token #")),
        "{audit}"
    );
    let (status, _, body) = api
        .call(
            "GET",
            &format!("/api/v1/batches/{}", id + 100),
            Some(&read),
            None,
            None,
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    // The scrape moved by what happened: one batch succeeded, one account
    // created and tested, ready on h; the plan route answered 201 twice
    // (once run, once replayed) and 422 twice.
    let after = scrape(&app).await;
    let moved =
        |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
    assert_eq!(
        moved("relay_batches{status=\"succeeded\"}"),
        1.0,
        "{after:?}"
    );
    assert_eq!(moved("relay_steps{kind=\"account\",state=\"done\"}"), 1.0);
    assert_eq!(
        moved("relay_steps{kind=\"account_test\",state=\"done\"}"),
        1.0
    );
    assert_eq!(
        after["relay_ready{host=\"h\",provider=\"ds\",access=\"self_service_ready\"}"],
        1.0
    );
    assert_eq!(after["relay_host_up{host=\"h\"}"], 1.0);
    let plan_201 = "relay_http_request_duration_seconds_count{route=\"/api/v1/batches\",method=\"POST\",status=\"201\"}";
    assert_eq!(moved(plan_201), 2.0, "{after:?}");
    assert_eq!(
        moved("relay_http_request_duration_seconds_count{route=\"/api/v1/batches\",method=\"POST\",status=\"422\"}"),
        2.0
    );
    // Without the token, nothing.
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (_, _, hosts) = api
        .call("GET", "/api/v1/hosts", Some(&read), None, None)
        .await;
    assert_eq!(hosts["items"][0]["name"], "h");
    assert!(
        !hosts.to_string().contains(&app.host.admin_api_key()),
        "no admin key"
    );

    // The CLI against this server: status of the applied batch, then a
    // second batch applied and watched to ready, all through the API.
    let cli = |args: Vec<String>, token: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_dashboard"))
                .args(&args)
                .env("RELAY_TOKEN", token)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        })
    };
    let out = cli(
        vec![
            "batch".into(),
            "status".into(),
            id.to_string(),
            "--server".into(),
            app.url.clone(),
        ],
        read.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["running"].as_bool()),
        (Some("succeeded"), Some(false))
    );
    upstream.add_key(SECOND, UpstreamBehaviour::Ok);
    let (status, _, second) = api
        .call(
            "POST",
            "/api/v1/batches",
            Some(&write),
            Some(plan(SECOND)),
            None,
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let second = second["id"].as_i64().unwrap().to_string();
    let args = vec![
        "batch".into(),
        "apply".into(),
        second.clone(),
        "--server".into(),
        app.url.clone(),
    ];
    // A read token is refused: the problem's code on stderr, exit 1.
    let out = cli(args.clone(), read.clone()).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"));
    let out = cli(args, write.clone()).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let last: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "succeeded", "{last}");
    assert_eq!(last["access_status"], "self_service_ready");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECOND));
}
