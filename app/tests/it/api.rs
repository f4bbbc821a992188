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

/// Calls the API; every answer of a route in `ROUTES` is checked against
/// the OpenAPI document the server serves: its status is documented for
/// the route, and a JSON body conforms to the documented schema.
pub struct Api<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    doc: Value,
}

impl<'a> Api<'a> {
    pub async fn new(app: &'a TestApp) -> Api<'a> {
        let http = reqwest::Client::new();
        let doc = http
            .get(format!("{}/api/v1/openapi.json", app.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api { app, http, doc }
    }

    pub async fn call(
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
        self.check(method, path, status, &headers, &v);
        (status, headers, v)
    }

    /// The answer is what the document says this route answers.
    fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        v: &Value,
    ) {
        let bare = path.split('?').next().unwrap();
        let Some((_, template, _)) = ROUTES
            .iter()
            .find(|(m, t, _)| *m == method && template_matches(t, bare))
        else {
            return;
        };
        let op = &self.doc["paths"][template][method.to_lowercase()];
        let documented = &op["responses"][status.to_string()];
        assert!(
            !documented.is_null(),
            "{method} {template} answered {status}, which its document does not list: {v}"
        );
        let ctype = headers
            .get("content-type")
            .and_then(|c| c.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        if !ctype.ends_with("json") {
            return;
        }
        let schema = &documented["content"][&ctype]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {template} {status}: {ctype} is not documented: {documented}"
        );
        if let Err(e) = conforms(&self.doc, schema, v, "$") {
            panic!("{method} {template} {status}: the body does not match the document: {e}\n{v}");
        }
    }
}

/// `/api/v1/batches/{id}` matches `/api/v1/batches/3`.
fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| a == b || (a.starts_with('{') && !b.is_empty()))
}

/// Whether `v` is what JSON Schema `s` (as the document writes it)
/// describes: references, one/any/allOf, enums, types, required and
/// typed properties, items and maps.
fn conforms(doc: &Value, s: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: {r} is not in the document"));
        }
        return conforms(doc, target, v, at);
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(list) = s.get(k).and_then(Value::as_array) {
            let errs: Vec<String> = list
                .iter()
                .filter_map(|x| conforms(doc, x, v, at).err())
                .collect();
            if errs.len() == list.len() {
                return Err(format!("{at}: none of {k}: {}", errs.join("; ")));
            }
        }
    }
    if let Some(list) = s.get("allOf").and_then(Value::as_array) {
        for x in list {
            conforms(doc, x, v, at)?;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{at}: {v} is not one of {e:?}"));
        }
    }
    let kinds: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !kinds.is_empty() {
        let is = |k: &str| match k {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "string" => v.is_string(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => true,
        };
        if !kinds.iter().any(|k| is(k)) {
            return Err(format!("{at}: {v} is not {kinds:?}"));
        }
    }
    if let Some(o) = v.as_object() {
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(r) {
                    return Err(format!("{at}: `{r}` is required and missing"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(p) => conforms(doc, p, x, &format!("{at}.{k}"))?,
                None => {
                    if let Some(extra) = s.get("additionalProperties").filter(|e| e.is_object()) {
                        conforms(doc, extra, x, &format!("{at}.{k}"))?;
                    }
                }
            }
        }
    }
    if let (Some(a), Some(items)) = (v.as_array(), s.get("items").filter(|i| i.is_object())) {
        for (i, x) in a.iter().enumerate() {
            conforms(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
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
    let api = Api::new(&app).await;
    for (method, path, _) in ROUTES {
        let path = path.replace("{id}", "1").replace("{seq}", "1");
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
    let api = Api::new(&app).await;
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
            "--json".into(),
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
        "--json".into(),
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

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_served_routes_and_the_reference_page_renders_it_offline(
) {
    let app = TestApp::spawn().await;
    app.admin().await;
    let api = Api::new(&app).await;
    let doc = &api.doc;
    assert_eq!(doc["openapi"], "3.1.0");
    // The document's operations are the route table, no more, no less.
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            documented.insert((m.to_uppercase(), path.clone()));
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{m} {path} says what it does"
            );
            for code in ["401", "403"] {
                assert!(
                    !op["responses"][code].is_null(),
                    "{m} {path} documents {code}"
                );
            }
            let idem = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
            assert_eq!(
                idem,
                m != "get",
                "{m} {path}: Idempotency-Key on mutating routes"
            );
        }
    }
    let table: std::collections::BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, table);
    // Every reference in the document resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    out.push(r.to_string());
                }
                o.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(all.len() > 50, "{}", all.len());
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            !doc["components"]["schemas"][name].is_null(),
            "{r} resolves"
        );
    }
    // The router serves no method the document leaves out on its paths
    // (and each listed one exists: see the 401 test).
    let t = token(&app, "root", Role::Admin, "admin").await;
    for (_, path) in &documented {
        for m in ["GET", "POST", "PATCH", "DELETE"] {
            if table.contains(&(m.to_string(), path.clone())) {
                continue;
            }
            let concrete = path.replace("{id}", "1").replace("{seq}", "1");
            let r = api
                .http
                .request(
                    reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                    format!("{}{concrete}", app.url),
                )
                .bearer_auth(&t)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{m} {path} is not served");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "method_not_allowed", "{m} {path}");
        }
    }
    // The reference page: open without a token, every route on it, and
    // nothing fetched from elsewhere.
    let r = reqwest::get(format!("{}/api/v1/reference", app.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    for (m, p, _) in ROUTES {
        assert!(
            html.contains(&format!("id=\"{}-{p}\"", m.to_lowercase())),
            "{m} {p} on the page"
        );
    }
    assert!(html.contains("id=\"schema-BatchDoc\""));
    for outside in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(
            !html.contains(outside),
            "the page uses nothing from outside ({outside})"
        );
    }
}

/// Every operation of the core's table either has an API route or is
/// listed as left out with a reason, never both.
#[test]
fn every_mutating_operation_is_in_the_api_or_left_out_with_a_reason() {
    use app::server::rest::NOT_IN_API;
    use provisioning_core::ops::authz::RULES;
    for rule in RULES.iter().filter(|r| r.op.mutates()) {
        let routed = ROUTES.iter().any(|(_, _, op)| *op == rule.op);
        let left = NOT_IN_API.iter().any(|(op, _)| *op == rule.op);
        assert!(
            routed != left,
            "{}: routed {routed}, left out {left}",
            rule.action
        );
    }
}

/// The role × operation matrix for the API and the CLI, generated from the
/// route and command tables: each mutating route and command refused (403,
/// exit 1) for a `read` token, for a role below the operation's (with a
/// token of enough scope), audited; every cell is checked and a failure
/// names its cell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutating_route_and_command_is_refused_for_a_read_token_and_a_lesser_role() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let p = app
        .submit(&app.client, "/hosts/new", &pairs(&app.host_form("h")))
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    app.core
        .upload_pack("test", &pack(&upstream.url()))
        .await
        .unwrap();
    let api = Api::new(&app).await;
    let admin_read = token(&app, "root", Role::Admin, "read").await;
    let mut lesser = std::collections::HashMap::new();
    for scope in ["write", "admin"] {
        lesser.insert(
            ("vera", scope),
            token(&app, "vera", Role::Viewer, scope).await,
        );
    }
    lesser.insert(
        ("otto", "admin"),
        token(&app, "otto", Role::Operator, "admin").await,
    );
    let audited = |who: String, action: &'static str| {
        let core = app.core.clone();
        async move {
            let (audit, _) = core.store.audit_page(1, 10).await.unwrap();
            audit.iter().any(|e| {
                e.actor.starts_with(&format!("{who} (token #"))
                    && e.action == action
                    && e.outcome == "denied"
            })
        }
    };
    let mut failed = Vec::new();
    let mut cells = 0;
    for (method, path, op) in ROUTES.iter().filter(|(_, _, op)| op.mutates()) {
        let rule = op.rule();
        let concrete = path.replace("{id}", "1").replace("{seq}", "1");
        let mut who = vec![("root", admin_read.clone(), "scope")];
        let need = rule.scope.as_str();
        who.push(("vera", lesser[&("vera", need)].clone(), "role"));
        if rule.role == Role::Admin {
            who.push(("otto", lesser[&("otto", "admin")].clone(), "role"));
        }
        for (name, t, why) in who {
            cells += 1;
            let cell = format!("API {method} {path} × {name} ({why})");
            let (status, _, body) = api
                .call(method, &concrete, Some(&t), Some(json!({})), None)
                .await;
            let detail = body["detail"].as_str().unwrap_or("");
            if status != 403 || body["code"] != "forbidden" || !detail.contains(why) {
                failed.push(format!("{cell}: {status} {body}"));
            } else if !audited(name.to_string(), rule.action).await {
                failed.push(format!("{cell}: not audited as {}", rule.action));
            }
        }
    }
    // The CLI's mutating commands through this server.
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys.path(), KEY).unwrap();
    let keys_path = keys.path().to_str().unwrap().to_string();
    for (command, op) in app::server::cli::MUTATING {
        let rule = op.rule();
        let mut args: Vec<String> = command.split(' ').map(String::from).collect();
        let rest: Vec<&str> = match *command {
            "host probe" | "reconcile" => vec!["h"],
            "batch plan" => vec![
                "--host",
                "h",
                "--pack",
                "1",
                "--provider",
                "deepseek",
                "--keys",
                &keys_path,
            ],
            "batch apply" | "batch rollback" => vec!["1"],
            "token create" => vec!["--operator", "otto", "--scope", "read"],
            other => panic!("no arguments for `{other}` in this test"),
        };
        args.extend(rest.iter().map(|s| s.to_string()));
        args.extend(["--server".to_string(), app.url.clone()]);
        let need = rule.scope.as_str();
        let mut who = vec![("root", admin_read.clone(), "scope")];
        who.push(("vera", lesser[&("vera", need)].clone(), "role"));
        for (name, t, why) in who {
            cells += 1;
            let cell = format!("CLI {command} × {name} ({why})");
            let a = args.clone();
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_dashboard"))
                    .args(&a)
                    .env("RELAY_TOKEN", t)
                    .env("RUST_LOG", "warn")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(1) || !err.contains("forbidden") || !err.contains(why) {
                failed.push(format!("{cell}: exit {:?}: {err}", out.status.code()));
            } else if !audited(name.to_string(), rule.action).await {
                failed.push(format!("{cell}: not audited as {}", rule.action));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    // 13 mutating routes × 2, 6 admin ones × 1 more, 6 commands × 2.
    assert!(cells >= 50, "the matrix has its cells ({cells})");
    // Nothing was written: one host, no batch, no new operator or token
    // beyond the test's own.
    assert_eq!(app.core.list_hosts().await.unwrap().len(), 1);
    assert_eq!(app.core.store.operator_count().await.unwrap(), 3);
    let root = Principal::operator(1, "root", Role::Admin);
    assert_eq!(app.core.list_tokens(&root).await.unwrap().len(), 4);
}

/// Polls a batch's progress until it stops running.
async fn settled(api: &Api<'_>, t: &str, id: i64) -> Value {
    for _ in 0..400 {
        let (_, _, p) = api
            .call(
                "GET",
                &format!("/api/v1/batches/{id}/progress"),
                Some(t),
                None,
                None,
            )
            .await;
        if p["finished"] == true {
            return p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("batch {id} did not settle");
}

#[tokio::test]
async fn hosts_drift_rollback_operators_and_tokens_through_the_api() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    upstream.add_key(KEY, UpstreamBehaviour::Ok);
    let api = Api::new(&app).await;
    let admin = token(&app, "root", Role::Admin, "admin").await;
    let a = Some(admin.as_str());

    // Register: a missing field is named, the good one is 201 without secrets.
    let mut host = json!({
        "name": "api-host",
        "base_url": app.host.url(),
        "auth_kind": "api_key",
        "admin_api_key": app.host.admin_api_key(),
        "probe_user_email": "probe@example.com",
        "probe_user_password": "probe-password-1",
    });
    let mut no_url = host.clone();
    no_url.as_object_mut().unwrap().remove("base_url");
    let (status, _, body) = api
        .call("POST", "/api/v1/hosts", a, Some(no_url), None)
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("base_url")),
        "{body}"
    );
    let (status, _, body) = api
        .call(
            "POST",
            "/api/v1/hosts",
            a,
            Some(json!({"name": "x", "colour": "red"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_body")),
        "{body}"
    );
    let (status, _, created) = api
        .call("POST", "/api/v1/hosts", a, Some(host.clone()), None)
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(!created.to_string().contains(&app.host.admin_api_key()));
    let hid = created["id"].as_i64().unwrap();
    let (status, _, body) = api
        .call("POST", "/api/v1/hosts", a, Some(host.clone()), None)
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (409, Some("name")),
        "{body}"
    );
    // Edit: a missing field keeps its value, the stored key is kept.
    let (status, _, edited) = api
        .call(
            "PATCH",
            &format!("/api/v1/hosts/{hid}"),
            a,
            Some(json!({"name": "renamed"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["name"].as_str(), edited["base_url"].as_str()),
        (Some("renamed"), Some(app.host.url().as_str()))
    );
    host["base_url"] = json!("http://127.0.0.1:9/");
    host.as_object_mut().unwrap().remove("admin_api_key");
    let (status, _, body) = api
        .call(
            "PATCH",
            &format!("/api/v1/hosts/{hid}"),
            a,
            Some(json!({"base_url": "http://127.0.0.2:9"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("admin_api_key")),
        "moving needs the key again: {body}"
    );
    let (status, _, _) = api
        .call("GET", &format!("/api/v1/hosts/{}", hid + 9), a, None, None)
        .await;
    assert_eq!(status, 404);

    // Drift: none checked yet, then a check of nothing made.
    let (_, _, latest) = api
        .call("GET", &format!("/api/v1/hosts/{hid}/drift"), a, None, None)
        .await;
    assert_eq!(latest["report"], Value::Null);
    let (status, _, body) = api
        .call(
            "POST",
            &format!("/api/v1/hosts/{hid}/drift/ignore"),
            a,
            Some(json!({"key": "k", "reason": "x", "days": 3})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("reason")),
        "{body}"
    );

    // A batch planned with the pack of this test, applied, its journal
    // read a page and a step at a time, then rolled back.
    let (_, _, stored) = api
        .call(
            "POST",
            "/api/v1/packs",
            a,
            Some(json!({"source": pack(&upstream.url())})),
            None,
        )
        .await;
    let pv = stored["pack_version_id"].as_i64().unwrap();
    let (status, _, detail) = api
        .call("GET", &format!("/api/v1/packs/{pv}"), a, None, None)
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["version"]["pack_id"], "app-pack");
    assert!(detail["source"]
        .as_str()
        .unwrap()
        .contains("deepseek-flash"));
    let (_, _, planned) = api
        .call(
            "POST",
            "/api/v1/batches",
            a,
            Some(json!({"host_id": hid, "pack_version_id": pv, "provider": "ds", "keys": KEY})),
            None,
        )
        .await;
    let id = planned["id"].as_i64().unwrap();
    let (status, _, body) = api
        .call(
            "GET",
            &format!("/api/v1/batches/{id}/rollback"),
            a,
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("batch")),
        "never applied: {body}"
    );
    api.call(
        "POST",
        &format!("/api/v1/batches/{id}/apply"),
        a,
        None,
        None,
    )
    .await;
    assert_eq!(settled(&api, &admin, id).await["status"], "succeeded");
    // Keeping watch on it: a re-check, a balance reading, a schedule.
    let (status, _, c) = api
        .call(
            "POST",
            &format!("/api/v1/batches/{id}/checks"),
            a,
            None,
            None,
        )
        .await;
    assert_eq!((status, c["outcome"].as_str()), (200, Some("ready")), "{c}");
    let (status, _, b) = api
        .call(
            "POST",
            &format!("/api/v1/batches/{id}/balances"),
            a,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let (status, _, s) = api
        .call(
            "PUT",
            &format!("/api/v1/hosts/{hid}/schedule"),
            a,
            Some(json!({"job": "probe", "interval_s": 600, "enabled": true})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{s}");
    let (_, _, steps) = api
        .call("GET", &format!("/api/v1/batches/{id}/steps"), a, None, None)
        .await;
    let items = steps["items"].as_array().unwrap();
    assert!(items.len() >= 5, "{steps}");
    let seq = items[0]["seq"].as_i64().unwrap();
    let (status, _, step) = api
        .call(
            "GET",
            &format!("/api/v1/batches/{id}/steps/{seq}"),
            a,
            None,
            None,
        )
        .await;
    assert_eq!((status, step["seq"].as_i64()), (200, Some(seq)));
    let (status, _, body) = api
        .call(
            "GET",
            &format!("/api/v1/batches/{id}/steps?state=nope"),
            a,
            None,
            None,
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("state")));
    let (status, _, report) = api
        .call("POST", &format!("/api/v1/hosts/{hid}/drift"), a, None, None)
        .await;
    assert_eq!(status, 200, "{report}");
    assert!(report["compared"].as_i64().unwrap() >= 1, "{report}");
    assert_eq!(report["findings"].as_array().unwrap().len(), 0, "{report}");
    // A second tool copies an account and another goes into error: two
    // findings; one repaired, one ignored; then the host is clean.
    app.host.with_state(|s| {
        let mut copy = s.accounts.iter().find(|a| !a.deleted).unwrap().clone();
        copy.id = s.id();
        s.accounts.push(copy);
    });
    let (_, _, report) = api
        .call("POST", &format!("/api/v1/hosts/{hid}/drift"), a, None, None)
        .await;
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    let key = findings[0]["key"].as_str().unwrap().to_string();
    let (status, _, body) = api
        .call(
            "POST",
            &format!("/api/v1/hosts/{hid}/drift/repair"),
            a,
            Some(json!({"key": key, "action": "remove_duplicate"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.host.with_state(|s| {
        let acc = s.accounts.iter_mut().find(|a| !a.deleted).unwrap();
        acc.status = "error".into();
        acc.error_message = "Authentication failed (401): invalid key".into();
    });
    let (_, _, report) = api
        .call("POST", &format!("/api/v1/hosts/{hid}/drift"), a, None, None)
        .await;
    let key = report["findings"][0]["key"].as_str().unwrap().to_string();
    let (status, _, body) = api
        .call(
            "POST",
            &format!("/api/v1/hosts/{hid}/drift/ignore"),
            a,
            Some(json!({"key": key, "reason": "the key is being replaced", "days": 7})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, _, latest) = api
        .call("GET", &format!("/api/v1/hosts/{hid}/drift"), a, None, None)
        .await;
    assert_eq!(
        latest["report"]["findings"].as_array().unwrap().len(),
        1,
        "{latest}"
    );
    let (_, _, report) = api
        .call("POST", &format!("/api/v1/hosts/{hid}/drift"), a, None, None)
        .await;
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["ignored"].is_null()),
        "only the ignored one is left: {report}"
    );
    app.host.with_state(|s| {
        let acc = s.accounts.iter_mut().find(|a| !a.deleted).unwrap();
        acc.status = "active".into();
        acc.error_message.clear();
    });
    // Probe now, then its history; the pack list; the token list.
    let (status, _, probed) = api
        .call("POST", &format!("/api/v1/hosts/{hid}/probe"), a, None, None)
        .await;
    assert_eq!(
        (status, probed["host_id"].as_i64()),
        (200, Some(hid)),
        "{probed}"
    );
    let (_, _, history) = api
        .call(
            "GET",
            &format!("/api/v1/hosts/{hid}/probes?limit=1"),
            a,
            None,
            None,
        )
        .await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");
    let (_, _, packs) = api.call("GET", "/api/v1/packs", a, None, None).await;
    assert!(packs["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == pv));
    let (_, _, detail) = api
        .call(
            "GET",
            &format!("/api/v1/packs/{}?diff={pv}", pv + 50),
            a,
            None,
            None,
        )
        .await;
    assert_eq!(detail["code"], "not_found");
    let (status, _, preview) = api
        .call(
            "GET",
            &format!("/api/v1/batches/{id}/rollback"),
            a,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert!(!preview["items"].as_array().unwrap().is_empty());
    let (status, _, started) = api
        .call(
            "POST",
            &format!("/api/v1/batches/{id}/rollback"),
            a,
            Some(json!({"force": false})),
            None,
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(settled(&api, &admin, id).await["status"], "rolled_back");
    let (status, _, body) = api
        .call(
            "POST",
            &format!("/api/v1/batches/{id}/rollback"),
            a,
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );

    // Operators: a bad role and a short password are named; add, change, remove.
    let (status, _, body) = api
        .call(
            "POST",
            "/api/v1/operators",
            a,
            Some(json!({"username": "nina", "password": crate::PASSWORD, "role": "owner"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("role")),
        "{body}"
    );
    let (status, _, body) = api
        .call(
            "POST",
            "/api/v1/operators",
            a,
            Some(json!({"username": "nina", "password": "short", "role": "operator"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("password")),
        "{body}"
    );
    let (status, _, nina) = api
        .call(
            "POST",
            "/api/v1/operators",
            a,
            Some(json!({"username": "nina", "password": crate::PASSWORD, "role": "operator"})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{nina}");
    assert!(!nina.to_string().contains("argon2"), "no hash answered");
    let nid = nina["id"].as_i64().unwrap();
    let (status, _, body) = api
        .call(
            "PATCH",
            &format!("/api/v1/operators/{nid}"),
            a,
            Some(json!({"role": "viewer"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["role"].as_str()),
        (200, Some("viewer")),
        "{body}"
    );
    let (_, _, list) = api.call("GET", "/api/v1/operators", a, None, None).await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["username"] == "nina"));
    let root_id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["username"] == "root")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _, body) = api
        .call(
            "DELETE",
            &format!("/api/v1/operators/{root_id}"),
            a,
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("id")),
        "an admin cannot remove themself: {body}"
    );

    // Tokens: made (the secret once, even when the request is retried), used, revoked.
    let ask = json!({"operator": "nina", "name": "ci", "scope": "read", "days": 7});
    let (status, _, made) = api
        .call(
            "POST",
            "/api/v1/tokens",
            a,
            Some(ask.clone()),
            Some("tok-1"),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("rmt_"));
    let (status, headers, again) = api
        .call("POST", "/api/v1/tokens", a, Some(ask), Some("tok-1"))
        .await;
    assert_eq!(
        (status, headers.contains_key("idempotent-replay")),
        (201, true)
    );
    assert_eq!(
        (again["secret"].clone(), again["token"]["id"].clone()),
        (Value::Null, made["token"]["id"].clone())
    );
    let stored: Vec<String> = sqlx::query_scalar("SELECT body FROM api_idempotency")
        .fetch_all(app.core.store.pool())
        .await
        .unwrap();
    assert!(
        stored.iter().all(|b| !b.contains(&secret)),
        "the secret is not kept for replays"
    );
    let (_, _, me) = api
        .call("GET", "/api/v1/me", Some(&secret), None, None)
        .await;
    assert_eq!(
        (me["operator"].as_str(), me["scope"].as_str()),
        (Some("nina"), Some("read"))
    );
    let (status, _, body) = api
        .call(
            "POST",
            "/api/v1/tokens",
            a,
            Some(json!({"operator": "nobody", "name": "x", "scope": "read", "days": 7})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("operator")),
        "{body}"
    );
    let tid = made["token"]["id"].as_i64().unwrap();
    let (_, _, list) = api.call("GET", "/api/v1/tokens", a, None, None).await;
    let listed = list["items"].as_array().unwrap();
    assert!(listed
        .iter()
        .any(|t| t["id"] == tid && t["username"] == "nina"));
    assert!(
        !list.to_string().contains(&secret),
        "a list never shows a token"
    );
    let (status, _, _) = api
        .call("DELETE", &format!("/api/v1/tokens/{tid}"), a, None, None)
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = api
        .call("GET", "/api/v1/me", Some(&secret), None, None)
        .await;
    assert_eq!(status, 401, "a revoked token opens nothing");
    let (status, _, _) = api
        .call("DELETE", &format!("/api/v1/operators/{nid}"), a, None, None)
        .await;
    assert_eq!(status, 200);
    // Each change made through the API is in the audit log under its
    // operation's name (tokens: `token.*`), as the token's operator.
    let done: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT action, outcome FROM audit_log WHERE actor LIKE 'root (token #%'",
    )
    .fetch_all(app.core.store.pool())
    .await
    .unwrap();
    let seen = format!("{done:?}");
    for (method, _, op) in ROUTES
        .iter()
        .filter(|(m, _, op)| op.mutates() && *m != "GET")
    {
        let name = op.action().split('.').next().unwrap();
        let want = if name == "token" {
            "token."
        } else {
            op.action()
        };
        assert!(
            done.iter().any(|(a, o)| a.starts_with(want)
                && !["denied", "invalid", "conflict", "not_found"].contains(&o.as_str())),
            "{method} {} is audited: {seen}",
            op.action()
        );
    }
}

/// Keeping watch through the API: a re-check moves a batch's access and
/// opens an incident, balances read and stored, a host's schedule set with
/// bad input named, every answer as the document says.
#[tokio::test]
async fn readiness_checks_balances_schedule_and_incidents_through_the_api() {
    use provisioning_core::model::{AccessMode, BatchStatus};
    let app = TestApp::spawn().await;
    app.admin().await;
    let upstream = FakeUpstream::start(ProviderStyle::DeepSeek, &["deepseek-flash"]).await;
    upstream.add_key(KEY, UpstreamBehaviour::Ok);
    let p = app
        .submit(&app.client, "/hosts/new", &pairs(&app.host_form("h")))
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let host_id = app.core.list_hosts().await.unwrap()[0].id;
    let (pv, _) = app
        .core
        .upload_pack("root", &pack(&upstream.url()))
        .await
        .unwrap();
    let id = app
        .core
        .plan_batch(
            "root",
            &provisioning_core::ops::BatchRequest {
                host_id,
                pack_version_id: pv,
                provider_key: "ds".into(),
                mode: Some(AccessMode::SelfService),
                keys_text: KEY.into(),
            },
        )
        .await
        .unwrap();
    let fast = provisioning_core::ops::ApplyOptions {
        models_cache_wait: std::time::Duration::ZERO,
        ..Default::default()
    };
    assert_eq!(
        app.core.apply_batch("root", id, fast).await.unwrap(),
        BatchStatus::Succeeded
    );
    let api = Api::new(&app).await;
    let w = token(&app, "otto", Role::Operator, "write").await;
    let w = Some(w.as_str());
    let checks = format!("/api/v1/batches/{id}/checks");

    let (status, _, body) = api.call("GET", &checks, w, None, None).await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, _, c) = api.call("POST", &checks, w, None, None).await;
    assert_eq!((status, c["outcome"].as_str()), (200, Some("ready")), "{c}");
    // The provider account runs dry: the route is listed, not serving.
    upstream.add_key(KEY, UpstreamBehaviour::QuotaExhausted);
    let (status, _, c) = api.call("POST", &checks, w, None, None).await;
    assert_eq!(
        (status, c["outcome"].as_str(), c["access_after"].as_str()),
        (200, Some("degraded"), Some("degraded")),
        "{c}"
    );
    assert!(!c.to_string().contains(KEY), "no key in a check: {c}");
    let (_, _, body) = api.call("GET", &checks, w, None, None).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2));
    let (status, _, body) = api.call("GET", "/api/v1/incidents", w, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["open"][0]["kind"], "not_ready", "{body}");
    assert_eq!(body["open"][0]["batch_id"], id);
    let (status, _, body) = api
        .call("POST", "/api/v1/batches/999/checks", w, None, None)
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    let balances = format!("/api/v1/batches/{id}/balances");
    let (status, _, body) = api.call("POST", &balances, w, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["state"], "known", "{body}");
    assert_eq!(body["items"][0]["amount"], 0.0);
    assert_eq!(body["items"][0]["low"], true);
    let (_, _, again) = api.call("GET", &balances, w, None, None).await;
    assert_eq!(again, body, "what was read is what is stored");

    let schedule = format!("/api/v1/hosts/{host_id}/schedule");
    for (b, field) in [
        (
            json!({"job": "weather", "interval_s": 60, "enabled": true}),
            "job",
        ),
        (
            json!({"job": "probe", "interval_s": 0, "enabled": true}),
            "interval_s",
        ),
    ] {
        let (status, _, body) = api.call("PUT", &schedule, w, Some(b), None).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
    }
    let (status, _, body) = api
        .call(
            "PUT",
            &schedule,
            w,
            Some(json!({"job": "drift", "interval_s": 7200, "enabled": false})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, _, body) = api.call("GET", &schedule, w, None, None).await;
    let drift = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == "drift")
        .unwrap()
        .clone();
    assert_eq!(
        (drift["interval_s"].as_i64(), drift["enabled"].as_bool()),
        (Some(7200), Some(false))
    );
    let (audit, _) = app.core.store.audit_page(1, 20).await.unwrap();
    for action in [
        "batch.readiness_check",
        "batch.read_balances",
        "host.schedule",
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == action && e.actor.starts_with("otto (token #")),
            "{action} audited: {audit:?}"
        );
    }
}
