//! The fake host checked against the host reference: each test names the
//! documented behaviour it reproduces.

use fakehost::*;
use reqwest::Method;
use serde_json::{json, Value};

struct Api {
    host: FakeHost,
    http: reqwest::Client,
}

impl Api {
    async fn new(cfg: FakeHostConfig) -> Api {
        Api {
            host: FakeHost::start(cfg).await,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.host.url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let key = self.host.admin_api_key();
        let (s, v, _) = self.call(method, path, body, &[("x-api-key", &key)]).await;
        (s, v)
    }

    async fn data(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.admin(method, path, body).await;
        assert_eq!(s, 200, "{path}: {v}");
        assert_eq!(v["code"], 0);
        v["data"].clone()
    }

    async fn user_jwt(&self, email: &str, password: &str) -> String {
        let (_, v, _) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({"email": email, "password": password})),
                &[],
            )
            .await;
        v["data"]["access_token"].as_str().unwrap().to_string()
    }
}

const DS_MODELS: &[&str] = &["deepseek-flash", "deepseek-v4-pro"];

/// A deepseek group with one account per (key, base) pointed at `upstream`.
async fn deepseek_group(api: &Api, upstream: &FakeUpstream, keys: &[&str]) -> (i64, Vec<i64>) {
    let g = api
        .data(
            Method::POST,
            "/api/v1/admin/groups",
            Some(json!({"name": "ds", "platform": "deepseek", "rate_multiplier": 1.0})),
        )
        .await;
    let gid = g["id"].as_i64().unwrap();
    let mut ids = vec![];
    for k in keys {
        let a = api
            .data(
                Method::POST,
                "/api/v1/admin/accounts",
                Some(json!({
                    "name": format!("acc-{k}"), "platform": "deepseek", "type": "apikey", "group_ids": [gid],
                    "credentials": {"api_key": k, "base_url": upstream.url(), "model_mapping": {"deepseek-flash": "deepseek-flash"}},
                })),
            )
            .await;
        ids.push(a["id"].as_i64().unwrap());
    }
    (gid, ids)
}

/// The probe user with a key bound to `gid` and some balance.
async fn user_key(api: &Api, gid: i64) -> String {
    api.data(
        Method::POST,
        "/api/v1/admin/users/2/balance",
        Some(json!({"balance": 10, "operation": "add"})),
    )
    .await;
    let jwt = api.user_jwt("probe@example.com", "probe-password-1").await;
    let (s, v, _) = api
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"name": "k", "group_id": gid})),
            &[("authorization", &format!("Bearer {jwt}"))],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["data"]["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn success_envelope_and_list_pagination_shape() {
    let api = Api::new(FakeHostConfig::default()).await;
    let d = api
        .data(Method::GET, "/api/v1/admin/groups?page_size=5", None)
        .await;
    for k in ["items", "total", "page", "page_size", "pages"] {
        assert!(d.get(k).is_some(), "{k} missing: {d}");
    }
    assert_eq!(d["pages"], 1, "pages is at least 1");
    let (s, v) = api
        .admin(Method::GET, "/api/v1/admin/groups/all", None)
        .await;
    assert_eq!(s, 200);
    assert!(v["data"].is_array(), "groups/all is a plain array");
}

#[tokio::test]
async fn admin_auth_errors_use_string_codes() {
    let api = Api::new(FakeHostConfig::default()).await;
    let (s, v, _) = api
        .call(
            Method::GET,
            "/api/v1/admin/groups",
            None,
            &[("x-api-key", "admin-wrong")],
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (401, Some("INVALID_ADMIN_KEY")));
    let (s, v, _) = api
        .call(Method::GET, "/api/v1/admin/groups", None, &[])
        .await;
    assert_eq!((s, v["code"].as_str()), (401, Some("UNAUTHORIZED")));
    // A user's JWT is not an admin's.
    let jwt = api.user_jwt("probe@example.com", "probe-password-1").await;
    let (s, v, _) = api
        .call(
            Method::GET,
            "/api/v1/admin/groups",
            None,
            &[("authorization", &format!("Bearer {jwt}"))],
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (403, Some("FORBIDDEN")));
    // An admin's JWT works.
    let jwt = api
        .user_jwt("admin@sub2api.local", "admin-password-1")
        .await;
    let (s, _, _) = api
        .call(
            Method::GET,
            "/api/v1/admin/groups",
            None,
            &[("authorization", &format!("Bearer {jwt}"))],
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_fresh_gated_host_has_no_admin_key_until_an_admin_accepts() {
    // Reference §12.1: the key endpoints are behind the gate too, so a
    // fresh host cannot have an admin key before the first acceptance.
    let api = Api::new(FakeHostConfig {
        compliance_accepted: false,
        ..Default::default()
    })
    .await;
    assert_eq!(api.host.admin_api_key(), "");
    let cfg_key = api.host.config().admin_api_key.clone();
    let (s, _, _) = api
        .call(
            Method::GET,
            "/api/v1/admin/groups",
            None,
            &[("x-api-key", &cfg_key)],
        )
        .await;
    assert_eq!(s, 401, "no admin key exists yet");
    let cfg = api.host.config().clone();
    let jwt = api.user_jwt(&cfg.admin_email, &cfg.admin_password).await;
    let bearer = format!("Bearer {jwt}");
    let auth = [("authorization", bearer.as_str())];
    let (s, v, _) = api
        .call(Method::GET, "/api/v1/admin/groups", None, &auth)
        .await;
    assert_eq!(s, 423);
    assert_eq!(v["code"], "ADMIN_COMPLIANCE_ACK_REQUIRED");
    assert_eq!(v["metadata"]["version"], "v2026.06.10");
    let (s, _, _) = api
        .call(
            Method::POST,
            "/api/v1/admin/settings/admin-api-key/regenerate",
            None,
            &auth,
        )
        .await;
    assert_eq!(s, 423, "the admin-key endpoints are gated");
    // The compliance routes themselves are exempt.
    let (_, d, _) = api
        .call(Method::GET, "/api/v1/admin/compliance", None, &auth)
        .await;
    assert_eq!(d["data"]["required"], true);
    let (s, v, _) = api
        .call(
            Method::POST,
            "/api/v1/admin/compliance/accept",
            Some(json!({"phrase": "yes", "language": "en"})),
            &auth,
        )
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("ADMIN_COMPLIANCE_INVALID_PHRASE"))
    );
    let (s, _, _) = api
        .call(
            Method::POST,
            "/api/v1/admin/compliance/accept",
            Some(json!({"phrase": COMPLIANCE_PHRASE_EN, "language": "en"})),
            &auth,
        )
        .await;
    assert_eq!(s, 200);
    let (s, v, _) = api
        .call(
            Method::POST,
            "/api/v1/admin/settings/admin-api-key/regenerate",
            None,
            &auth,
        )
        .await;
    assert_eq!(s, 200);
    let key = v["data"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("admin-") && key.len() == 70, "{key}");
    assert_eq!(
        api.admin(Method::GET, "/api/v1/admin/groups", None).await.0,
        200,
        "the new key acts as the admin who accepted"
    );
    // A new compliance version asks again, also through the key.
    api.host.bump_compliance("v2026.12.01");
    let (s, v) = api.admin(Method::GET, "/api/v1/admin/groups", None).await;
    assert_eq!(
        (s, v["metadata"]["version"].as_str()),
        (423, Some("v2026.12.01"))
    );
}

#[tokio::test]
async fn unregistered_routes_answer_gins_plain_404() {
    let api = Api::new(FakeHostConfig {
        profile: Profile::V0_1_106,
        ..Default::default()
    })
    .await;
    let (s, v) = api.admin(Method::GET, "/api/v1/admin/channels", None).await;
    assert_eq!(s, 404);
    assert_eq!(v, Value::String("404 page not found".into()));
    let (s, _) = api
        .admin(Method::GET, "/api/v1/admin/compliance", None)
        .await;
    assert_eq!(s, 404, "no gate before v0.1.136");
}

#[tokio::test]
async fn group_rules_rate_multiplier_uniqueness_and_platform_enum() {
    let api = Api::new(FakeHostConfig::default()).await;
    let (s, v) = api
        .admin(
            Method::POST,
            "/api/v1/admin/groups",
            Some(json!({"name": "g"})),
        )
        .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (500, Some("internal error")),
        "a missing rate multiplier is a plain 500"
    );
    api.data(
        Method::POST,
        "/api/v1/admin/groups",
        Some(json!({"name": "g", "rate_multiplier": 1})),
    )
    .await;
    let (s, v) = api
        .admin(
            Method::POST,
            "/api/v1/admin/groups",
            Some(json!({"name": "g", "rate_multiplier": 1})),
        )
        .await;
    assert_eq!((s, v["reason"].as_str()), (409, Some("GROUP_EXISTS")));
    let d = api
        .data(Method::GET, "/api/v1/admin/groups/all", None)
        .await;
    assert_eq!(
        d[0]["platform"], "anthropic",
        "empty platform means anthropic"
    );

    let old = Api::new(FakeHostConfig {
        profile: Profile::V0_1_106,
        ..Default::default()
    })
    .await;
    let (s, _) = old
        .admin(
            Method::POST,
            "/api/v1/admin/groups",
            Some(json!({"name": "d", "platform": "deepseek", "rate_multiplier": 1})),
        )
        .await;
    assert_eq!(s, 400, "deepseek is not a platform before v0.1.178");
}

#[tokio::test]
async fn channel_pricing_defaults_to_anthropic_and_a_group_joins_one_channel() {
    let api = Api::new(FakeHostConfig::default()).await;
    let g = api
        .data(
            Method::POST,
            "/api/v1/admin/groups",
            Some(json!({"name": "g", "platform": "deepseek", "rate_multiplier": 1})),
        )
        .await;
    let c = api
        .data(
            Method::POST,
            "/api/v1/admin/channels",
            Some(json!({"name": "c1", "group_ids": [g["id"]], "model_pricing": [{"models": ["deepseek-flash"], "input_price": 1.5e-7}]})),
        )
        .await;
    assert_eq!(c["model_pricing"][0]["platform"], "anthropic");
    assert_eq!(c["billing_model_source"], "channel_mapped");
    let (s, v) = api
        .admin(
            Method::POST,
            "/api/v1/admin/channels",
            Some(json!({"name": "c2", "group_ids": [g["id"]]})),
        )
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (409, Some("GROUP_ALREADY_IN_CHANNEL"))
    );
    let (s, v) = api
        .admin(
            Method::POST,
            "/api/v1/admin/channels",
            Some(json!({"name": "c1"})),
        )
        .await;
    assert_eq!((s, v["reason"].as_str()), (409, Some("CHANNEL_EXISTS")));
}

#[tokio::test]
async fn account_creates_are_idempotent_only_with_a_key_and_counted_per_marker() {
    let api = Api::new(FakeHostConfig::default()).await;
    let body = json!({"name": "a", "platform": "deepseek", "type": "apikey", "credentials": {"api_key": "sk-1"}, "extra": {MARKER_KEY: "m1"}});
    let key = api.host.admin_api_key();
    let h = [
        ("x-api-key", key.as_str()),
        ("idempotency-key", "batch1-step1"),
    ];
    let (s1, v1, _) = api
        .call(
            Method::POST,
            "/api/v1/admin/accounts",
            Some(body.clone()),
            &h,
        )
        .await;
    let (s2, v2, h2) = api
        .call(
            Method::POST,
            "/api/v1/admin/accounts",
            Some(body.clone()),
            &h,
        )
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(v1["data"]["id"], v2["data"]["id"], "replayed");
    assert_eq!(h2.get("x-idempotency-replayed").unwrap(), "true");
    assert_eq!(api.host.creates_for_marker("m1"), 1);
    let mut other = body.clone();
    other["name"] = json!("b");
    let (s, v, _) = api
        .call(Method::POST, "/api/v1/admin/accounts", Some(other), &h)
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (409, Some("IDEMPOTENCY_KEY_CONFLICT"))
    );
    // Without a key, duplicates are allowed.
    api.data(Method::POST, "/api/v1/admin/accounts", Some(body.clone()))
        .await;
    assert_eq!(api.host.creates_for_marker("m1"), 2);
}

#[tokio::test]
async fn an_account_without_groups_joins_the_platform_default_group() {
    let api = Api::new(FakeHostConfig::default()).await;
    let g = api
        .data(
            Method::POST,
            "/api/v1/admin/groups",
            Some(json!({"name": "deepseek-default", "platform": "deepseek", "rate_multiplier": 1})),
        )
        .await;
    let a = api
        .data(
            Method::POST,
            "/api/v1/admin/accounts",
            Some(json!({"name": "a", "platform": "deepseek", "type": "apikey", "credentials": {"api_key": "sk-1"}})),
        )
        .await;
    assert_eq!(a["group_ids"], json!([g["id"]]));
}

#[tokio::test]
async fn account_keys_are_redacted_from_v0_1_127_and_returned_before() {
    for (profile, redacted) in [(Profile::V0_1_179, true), (Profile::V0_1_106, false)] {
        let api = Api::new(FakeHostConfig {
            profile,
            ..Default::default()
        })
        .await;
        let a = api
            .data(
                Method::POST,
                "/api/v1/admin/accounts",
                Some(json!({"name": "a", "platform": "openai", "type": "apikey", "credentials": {"api_key": "sk-secret", "base_url": "http://x"}})),
            )
            .await;
        assert_eq!(
            a["credentials"].get("api_key").is_none(),
            redacted,
            "{profile:?}"
        );
        assert_eq!(
            a.get("credentials_status").is_some(),
            redacted,
            "{profile:?}"
        );
    }
}

#[tokio::test]
async fn models_come_from_schedulable_accounts_mapping_keys_else_the_claude_defaults() {
    let up = FakeUpstream::start(ProviderStyle::DeepSeek, DS_MODELS).await;
    up.add_key("sk-good", UpstreamBehaviour::Ok);
    let api = Api::new(FakeHostConfig {
        models_cache_ttl: std::time::Duration::ZERO,
        ..Default::default()
    })
    .await;
    let (gid, ids) = deepseek_group(&api, &up, &["sk-good"]).await;
    let key = user_key(&api, gid).await;
    let auth = format!("Bearer {key}");
    let (s, v, _) = api
        .call(Method::GET, "/v1/models", None, &[("authorization", &auth)])
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"][0]["id"], "deepseek-flash");
    // The only account in error: the list falls back to the Claude defaults.
    api.data(
        Method::PUT,
        &format!("/api/v1/admin/accounts/{}", ids[0]),
        Some(json!({"status": "error"})),
    )
    .await;
    let (_, v, _) = api
        .call(Method::GET, "/v1/models", None, &[("authorization", &auth)])
        .await;
    assert!(
        v["data"][0]["id"].as_str().unwrap().starts_with("claude"),
        "{v}"
    );
}

#[tokio::test]
async fn chat_fails_over_past_a_401_account_and_puts_it_in_error() {
    let up = FakeUpstream::start(ProviderStyle::DeepSeek, DS_MODELS).await;
    up.add_key("sk-good", UpstreamBehaviour::Ok);
    let api = Api::new(FakeHostConfig::default()).await;
    let (gid, ids) = deepseek_group(&api, &up, &["sk-revoked", "sk-good"]).await;
    let key = user_key(&api, gid).await;
    let (s, v, _) = api
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({"model": "deepseek-flash", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})),
            &[("authorization", &format!("Bearer {key}"))],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    let a = api
        .data(
            Method::GET,
            &format!("/api/v1/admin/accounts/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(a["status"], "error");
    assert!(a["error_message"]
        .as_str()
        .unwrap()
        .starts_with("Authentication failed (401)"));
}

#[tokio::test]
async fn gateway_errors_model_not_found_restriction_and_balance() {
    let up = FakeUpstream::start(ProviderStyle::DeepSeek, DS_MODELS).await;
    up.add_key("sk-good", UpstreamBehaviour::Ok);
    let api = Api::new(FakeHostConfig::default()).await;
    let (gid, _) = deepseek_group(&api, &up, &["sk-good"]).await;
    let jwt = api.user_jwt("probe@example.com", "probe-password-1").await;
    let (_, v, _) = api
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"name": "k", "group_id": gid})),
            &[("authorization", &format!("Bearer {jwt}"))],
        )
        .await;
    let auth = format!("Bearer {}", v["data"]["key"].as_str().unwrap());
    let chat = |m: &str| json!({"model": m, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
    // Balance 0 on a standard group.
    let (s, v, _) = api
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(chat("deepseek-flash")),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (403, Some("INSUFFICIENT_BALANCE")));
    api.data(
        Method::POST,
        "/api/v1/admin/users/2/balance",
        Some(json!({"balance": 5, "operation": "add"})),
    )
    .await;
    let (s, v, _) = api
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(chat("deepseek-v4-pro")),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (404, Some("model_not_found"))
    );
    // A restricted channel that does not price the model: 503, not 404.
    api.data(
        Method::POST,
        "/api/v1/admin/channels",
        Some(json!({"name": "c", "group_ids": [gid], "restrict_models": true, "model_pricing": [{"platform": "deepseek", "models": ["other"]}]})),
    )
    .await;
    let (s, v, _) = api
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(chat("deepseek-flash")),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!((s, v["error"]["type"].as_str()), (503, Some("api_error")));
}

#[tokio::test]
async fn account_test_streams_sse_and_a_401_puts_the_account_in_error() {
    let up = FakeUpstream::start(ProviderStyle::DeepSeek, DS_MODELS).await;
    up.add_key("sk-good", UpstreamBehaviour::Ok);
    let api = Api::new(FakeHostConfig::default()).await;
    let (_, ids) = deepseek_group(&api, &up, &["sk-good", "sk-bad"]).await;
    let key = api.host.admin_api_key();
    for (id, ok) in [(ids[0], true), (ids[1], false)] {
        let r = api
            .http
            .post(format!(
                "{}/api/v1/admin/accounts/{id}/test",
                api.host.url()
            ))
            .header("x-api-key", &key)
            .json(&json!({"model_id": "deepseek-flash"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "errors travel inside the stream");
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let text = r.text().await.unwrap();
        let events: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(events[0]["type"], "test_start");
        let last = events.last().unwrap();
        if ok {
            assert_eq!(
                (last["type"].as_str(), last["success"].as_bool()),
                (Some("test_complete"), Some(true))
            );
        } else {
            assert_eq!(last["type"], "error");
            assert!(last["error"].as_str().unwrap().contains("returned 401"));
            let a = api
                .data(Method::GET, &format!("/api/v1/admin/accounts/{id}"), None)
                .await;
            assert_eq!(a["status"], "error");
        }
    }
}

#[tokio::test]
async fn key_binding_needs_a_subscription_and_grants_exclusive_groups() {
    let api = Api::new(FakeHostConfig::default()).await;
    let sub = api
        .data(Method::POST, "/api/v1/admin/groups", Some(json!({"name": "s", "platform": "deepseek", "rate_multiplier": 1, "subscription_type": "subscription"})))
        .await;
    let excl = api
        .data(Method::POST, "/api/v1/admin/groups", Some(json!({"name": "x", "platform": "deepseek", "rate_multiplier": 1, "is_exclusive": true})))
        .await;
    let jwt = api.user_jwt("probe@example.com", "probe-password-1").await;
    let (_, v, _) = api
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"name": "k"})),
            &[("authorization", &format!("Bearer {jwt}"))],
        )
        .await;
    let kid = v["data"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/admin/api-keys/{kid}");
    let (s, v) = api
        .admin(Method::PUT, &path, Some(json!({"group_id": sub["id"]})))
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("SUBSCRIPTION_REQUIRED"))
    );
    api.data(
        Method::POST,
        "/api/v1/admin/subscriptions/assign",
        Some(json!({"user_id": 2, "group_id": sub["id"], "validity_days": 30})),
    )
    .await;
    // The same assignment again is idempotent; a different one conflicts.
    api.data(
        Method::POST,
        "/api/v1/admin/subscriptions/assign",
        Some(json!({"user_id": 2, "group_id": sub["id"], "validity_days": 30})),
    )
    .await;
    let (s, v) = api
        .admin(
            Method::POST,
            "/api/v1/admin/subscriptions/assign",
            Some(json!({"user_id": 2, "group_id": sub["id"], "validity_days": 7})),
        )
        .await;
    assert_eq!(
        (s, v["metadata"]["conflict_reason"].as_str()),
        (409, Some("validity_days_mismatch"))
    );
    let d = api
        .data(Method::PUT, &path, Some(json!({"group_id": sub["id"]})))
        .await;
    assert_eq!(d["api_key"]["group_id"], sub["id"]);
    let d = api
        .data(Method::PUT, &path, Some(json!({"group_id": excl["id"]})))
        .await;
    assert_eq!(d["auto_granted_group_access"], true);
    let u = api.data(Method::GET, "/api/v1/admin/users/2", None).await;
    assert_eq!(u["allowed_groups"], json!([excl["id"]]));
}

#[tokio::test]
async fn fault_hooks_fail_delay_or_drop_after_commit() {
    let api = Api::new(FakeHostConfig::default()).await;
    api.host.add_fault(Fault {
        method: reqwest::Method::POST,
        path_prefix: "/api/v1/admin/groups".into(),
        kind: FaultKind::Status(503, json!({"code": 503, "message": "busy"})),
        times: 1,
    });
    let body = json!({"name": "g", "rate_multiplier": 1});
    assert_eq!(
        api.admin(Method::POST, "/api/v1/admin/groups", Some(body.clone()))
            .await
            .0,
        503
    );
    api.host.add_fault(Fault {
        method: reqwest::Method::POST,
        path_prefix: "/api/v1/admin/groups".into(),
        kind: FaultKind::DropAfterCommit,
        times: 1,
    });
    let key = api.host.admin_api_key();
    let r = api
        .http
        .post(format!("{}/api/v1/admin/groups", api.host.url()))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.text().await.is_err(),
    };
    assert!(failed, "the client never gets the answer");
    let all = api
        .data(Method::GET, "/api/v1/admin/groups/all", None)
        .await;
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "but the write was committed"
    );
}

/// An `openai` group with one account forced to chat completions, and the
/// probe user's key on it.
async fn forced_openai(api: &Api, up: &FakeUpstream) -> (i64, String) {
    let g = api
        .data(
            Method::POST,
            "/api/v1/admin/groups",
            Some(json!({"name": "oa", "platform": "openai", "rate_multiplier": 1.0})),
        )
        .await;
    let gid = g["id"].as_i64().unwrap();
    let a = api
        .data(
            Method::POST,
            "/api/v1/admin/accounts",
            Some(json!({
                "name": "acc", "platform": "openai", "type": "apikey", "group_ids": [gid],
                "credentials": {"api_key": "sk-good", "base_url": up.url(), "model_mapping": {"deepseek-flash": "deepseek-flash"}},
                "extra": {"openai_responses_mode": "force_chat_completions"},
            })),
        )
        .await;
    (a["id"].as_i64().unwrap(), user_key(api, gid).await)
}

#[tokio::test]
async fn before_0_1_127_the_openai_platform_sends_completions_as_responses() {
    // Reference §12.2: 0.1.106 stores `extra` but never reads it.
    for (profile, works) in [(Profile::V0_1_106, false), (Profile::V0_1_177, true)] {
        let up = FakeUpstream::start(ProviderStyle::DeepSeek, DS_MODELS).await;
        up.add_key("sk-good", UpstreamBehaviour::Ok);
        let api = Api::new(FakeHostConfig {
            profile,
            ..Default::default()
        })
        .await;
        let (_, key) = forced_openai(&api, &up).await;
        let (s, v, _) = api
            .call(
                Method::POST,
                "/v1/chat/completions",
                Some(json!({"model": "deepseek-flash", "messages": [{"role": "user", "content": "hi"}]})),
                &[("authorization", &format!("Bearer {key}"))],
            )
            .await;
        if works {
            assert_eq!(s, 200, "{profile:?}: {v}");
            assert_eq!(up.calls("/v1/responses"), 0);
        } else {
            assert_eq!(s, 404, "{profile:?}: {v}");
            assert!(v.to_string().contains("not found: /responses"), "{v}");
            assert_eq!(up.calls("/v1/responses"), 1);
        }
    }
}

#[tokio::test]
async fn on_v0_2_the_allowlist_is_enforced_and_group_prices_outrank_the_channel() {
    let up = FakeUpstream::start(ProviderStyle::DeepSeek, DS_MODELS).await;
    up.add_key("sk-good", UpstreamBehaviour::Ok);
    let api = Api::new(FakeHostConfig {
        profile: Profile::V0_2_4,
        ..Default::default()
    })
    .await;
    let (gid, _) = deepseek_group(&api, &up, &["sk-good"]).await;
    api.data(
        Method::PUT,
        &format!("/api/v1/admin/groups/{gid}"),
        Some(json!({"model_allowlist": {"enabled": true, "models": ["deepseek-flash"]},
                    "model_pricing": [{"models": ["deepseek-flash"], "input_price": 2e-6, "output_price": 4e-6}]})),
    )
    .await;
    api.data(
        Method::POST,
        "/api/v1/admin/channels",
        Some(json!({"name": "c", "group_ids": [gid], "restrict_models": false,
                    "model_pricing": [{"platform": "deepseek", "models": ["deepseek-flash"], "input_price": 1e-6, "output_price": 1e-6}]})),
    )
    .await;
    let key = user_key(&api, gid).await;
    let chat = |model: &'static str| {
        let key = key.clone();
        let api = &api;
        async move {
            api.call(
                Method::POST,
                "/v1/chat/completions",
                Some(json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})),
                &[("authorization", &format!("Bearer {key}"))],
            )
            .await
        }
    };
    let (s, v, _) = chat("deepseek-v4-pro").await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (404, Some("model_not_allowed"))
    );
    let (s, _, _) = chat("deepseek-flash").await;
    assert_eq!(s, 200);
    let u = api.host.usage().pop().unwrap();
    assert_eq!((u.price_source.as_str(), u.input_price), ("group", 2e-6));
}
