//! The fake host's gateway (`/v1/models`, `/v1/chat/completions`) and the
//! admin account test (SSE), both forwarding to the account's upstream.

use crate::host::{mw_err, plain_404, take_fault, Shared};
use crate::state::*;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::time::Instant;

const CLAUDE_DEFAULTS: &[&str] = &[
    "claude-opus-4-1-20250805",
    "claude-sonnet-4-5-20250929",
    "claude-3-5-haiku-20241022",
];
const OPENAI_DEFAULTS: &[&str] = &["gpt-5.4", "gpt-5.4-mini", "gpt-4o"];

fn openai_error(status: u16, kind: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

/// The user key from `Authorization: Bearer`, `x-api-key` or `x-goog-api-key` (§7.1).
fn user_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        if let Some((scheme, token)) = v.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(token.trim().to_string());
            }
        }
    }
    headers
        .get("x-api-key")
        .or_else(|| headers.get("x-goog-api-key"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Key auth and the group checks of §7.1. Returns the key's group.
fn authorize(st: &State, headers: &HeaderMap, check_billing: bool) -> Result<Group, Response> {
    let Some(k) = user_key(headers) else {
        return Err(mw_err(401, "API_KEY_REQUIRED", "API key is required"));
    };
    let Some(key) = st.keys.iter().find(|x| x.key == k) else {
        return Err(mw_err(401, "INVALID_API_KEY", "Invalid API key"));
    };
    if key.status != "active" {
        return Err(mw_err(401, "API_KEY_DISABLED", "API key is disabled"));
    }
    let Some(user) = st.users.iter().find(|u| u.id == key.user_id) else {
        return Err(mw_err(401, "USER_NOT_FOUND", "user not found"));
    };
    if user.status != "active" {
        return Err(mw_err(401, "USER_INACTIVE", "user is inactive"));
    }
    let Some(gid) = key.group_id else {
        return Err((
            StatusCode::FORBIDDEN,
            axum::Json(json!({"type": "error", "error": {"type": "permission_error", "message": "API Key is not assigned to any group"}})),
        )
            .into_response());
    };
    let Some(group) = st.groups.iter().find(|g| g.id == gid) else {
        return Err(mw_err(403, "GROUP_DELETED", "group deleted"));
    };
    if group.deleted {
        return Err(mw_err(403, "GROUP_DELETED", "group deleted"));
    }
    if group.status != "active" {
        return Err(mw_err(403, "GROUP_DISABLED", "group disabled"));
    }
    if group.subscription_type != "subscription"
        && group.is_exclusive
        && !user.allowed_groups.contains(&gid)
    {
        return Err(mw_err(403, "GROUP_NOT_ALLOWED", "group not allowed"));
    }
    if check_billing {
        if group.subscription_type == "subscription" {
            if !st
                .subscriptions
                .iter()
                .any(|s| s.user_id == user.id && s.group_id == gid && s.active())
            {
                return Err(mw_err(
                    403,
                    "SUBSCRIPTION_NOT_FOUND",
                    "no active subscription",
                ));
            }
        } else if user.balance <= 0.0 {
            return Err(mw_err(403, "INSUFFICIENT_BALANCE", "insufficient balance"));
        }
    }
    Ok(group.clone())
}

fn count(inner: &Shared, route: &str) {
    inner
        .state
        .lock()
        .unwrap()
        .calls
        .entry(route.into())
        .and_modify(|c| *c += 1)
        .or_insert(1);
}

/// `GET /v1/models` (§7.2): the union of schedulable same-platform accounts'
/// mapping keys, else the platform's default list; cached per group.
pub async fn models(AxState(inner): AxState<Shared>, headers: HeaderMap) -> Response {
    count(&inner, "GET /v1/models");
    if let (Some(r), _) = take_fault(&inner, &Method::GET, "/v1/models").await {
        return r;
    }
    let ttl = inner.cfg.models_cache_ttl;
    let mut st = inner.state.lock().unwrap();
    let group = match authorize(&st, &headers, false) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if let Some((at, ids)) = st.models_cache.get(&group.id) {
        if at.elapsed() < ttl {
            return list_body(&group, ids.clone());
        }
    }
    let members: Vec<&Account> = st
        .accounts
        .iter()
        .filter(|a| {
            a.group_ids.contains(&group.id) && a.platform == group.platform && a.schedulable_now()
        })
        .collect();
    let mut ids: Vec<String> = members
        .iter()
        .flat_map(|a| a.mapping().keys().cloned().collect::<Vec<_>>())
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        let defaults = if group.platform == "openai" {
            OPENAI_DEFAULTS
        } else {
            CLAUDE_DEFAULTS
        };
        ids = defaults.iter().map(|s| s.to_string()).collect();
    }
    // The group's model list filters what is listed; it cannot add a model
    // the accounts do not expose (§7.2).
    if inner.cfg.profile.has_model_list() {
        if let Some(list) = group.allowlist() {
            ids = list
                .into_iter()
                .filter(|m| ids.iter().any(|src| pattern_match(src, m)))
                .collect();
        }
    }
    st.models_cache
        .insert(group.id, (Instant::now(), ids.clone()));
    list_body(&group, ids)
}

fn list_body(group: &Group, ids: Vec<String>) -> Response {
    let data: Vec<Value> = ids
        .into_iter()
        .map(|id| {
            if group.platform == "openai" {
                json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "system"})
            } else {
                json!({"id": id, "type": "model", "display_name": id, "created_at": "2024-01-01T00:00:00Z"})
            }
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// `{base}` joined like `buildOpenAIEndpointURL`: a base ending in a version
/// segment gets `/chat/completions`, else `/v1/chat/completions`.
pub fn chat_url(base: &str) -> String {
    let b = base.trim_end_matches('/');
    let last = b.rsplit('/').next().unwrap_or("");
    let versioned =
        last.len() >= 2 && last.starts_with('v') && last[1..].chars().all(|c| c.is_ascii_digit());
    if versioned {
        format!("{b}/chat/completions")
    } else {
        format!("{b}/v1/chat/completions")
    }
}

/// `{base}/v1/responses`, joined like [`chat_url`].
fn responses_url(base: &str) -> String {
    chat_url(base).replace("/chat/completions", "/responses")
}

/// Whether an `openai` account's completions go upstream as `/v1/responses`:
/// always before v0.1.127, which never reads `extra` (reference §12.2);
/// after, unless forced to chat completions or marked unsupported.
pub(crate) fn uses_responses(profile: crate::Profile, account: &Account) -> bool {
    if account.platform != "openai" {
        return false;
    }
    if !profile.has_responses_mode() {
        return true;
    }
    account
        .extra
        .get("openai_responses_mode")
        .and_then(Value::as_str)
        != Some("force_chat_completions")
        && account
            .extra
            .get("openai_responses_supported")
            .and_then(Value::as_bool)
            != Some(false)
}

/// The per-token prices the host bills `model` at, and where it found them:
/// the group's card (v0.1.176), then the channel's, looked up by the name
/// `billing_model_source` picks (v0.2.x: always the upstream name after
/// account mapping, issue #6781), then the catalogue.
fn resolve_price(
    st: &State,
    profile: crate::Profile,
    group: &Group,
    account: &Account,
    model: &str,
) -> (f64, f64, &'static str) {
    let prices = |card: &Value| {
        (
            card.get("input_price")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            card.get("output_price")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        )
    };
    if profile.has_group_pricing() {
        if let Some(card) = group.price_card(model) {
            let (i, o) = prices(card);
            return (i, o, "group");
        }
    }
    if let Some(ch) = st
        .channels
        .iter()
        .find(|c| c.status == "active" && c.group_ids.contains(&group.id))
    {
        let name = if profile.enforces_allowlist() {
            account.map_model(&ch.map(&group.platform, model))
        } else {
            match ch.billing_model_source.as_str() {
                "requested" => model.to_string(),
                "upstream" => account.map_model(&ch.map(&group.platform, model)),
                _ => ch.map(&group.platform, model),
            }
        };
        if let Some(card) = crate::state::price_card(&ch.model_pricing, &group.platform, &name) {
            let (i, o) = prices(card);
            return (i, o, "channel");
        }
    }
    (CATALOG_INPUT, CATALOG_OUTPUT, "catalog")
}

/// The catalogue price a model the host cannot price falls back to (USD per
/// token): deliberately unlike any pack's, so a test sees the fallback.
pub const CATALOG_INPUT: f64 = 0.000_009;
pub const CATALOG_OUTPUT: f64 = 0.000_027;

/// Bills a completion: records it and charges a standard group's user.
fn bill(
    inner: &Shared,
    headers: &HeaderMap,
    group: &Group,
    account: &Account,
    model: &str,
    body: &[u8],
) {
    let usage = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("usage").cloned())
        .unwrap_or(Value::Null);
    let tokens = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (input_tokens, output_tokens) = (tokens("prompt_tokens"), tokens("completion_tokens"));
    let mut st = inner.state.lock().unwrap();
    let (input_price, output_price, source) =
        resolve_price(&st, inner.cfg.profile, group, account, model);
    let cost = (input_tokens as f64 * input_price + output_tokens as f64 * output_price)
        * group.rate_multiplier;
    let Some(user_id) =
        user_key(headers).and_then(|k| st.keys.iter().find(|x| x.key == k).map(|x| x.user_id))
    else {
        return;
    };
    if group.subscription_type != "subscription" {
        if let Some(u) = st.users.iter_mut().find(|u| u.id == user_id) {
            u.balance -= cost;
        }
    }
    st.usage.push(crate::state::Usage {
        user_id,
        group_id: group.id,
        model: model.to_string(),
        upstream_model: account.map_model(model),
        input_tokens,
        output_tokens,
        input_price,
        output_price,
        price_source: source.into(),
        cost,
    });
}

/// What one upstream call returned.
struct Upstream {
    status: u16,
    body: Bytes,
    content_type: String,
}

async fn forward(
    inner: &Shared,
    account: &Account,
    mut body: Value,
    model: &str,
) -> Result<Upstream, String> {
    let base = account
        .credentials
        .get("base_url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if base.is_empty() {
        return Err("account has no base_url".into());
    }
    let key = account
        .credentials
        .get("api_key")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    body["model"] = json!(account.map_model(model));
    let url = if uses_responses(inner.cfg.profile, account) {
        responses_url(&base)
    } else {
        chat_url(&base)
    };
    let resp = inner
        .http
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("upstream request failed: {e}"))?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("upstream body: {e}"))?;
    Ok(Upstream {
        status,
        body,
        content_type,
    })
}

/// Applies the account-state effects of an upstream error (§3.7).
fn on_upstream_error(st: &mut State, account_id: i64, status: u16, body: &str) {
    let Some(a) = st.accounts.iter_mut().find(|a| a.id == account_id) else {
        return;
    };
    match status {
        401 if a.kind == "apikey" => {
            a.status = "error".into();
            a.error_message = format!(
                "Authentication failed (401): {}",
                body.chars().take(200).collect::<String>()
            );
        }
        // Seen on 0.1.179 (reference §12.3): a CN provider's 402 changes
        // nothing; the account stays active and schedulable and keeps
        // getting traffic (the gateway fails over past it).
        402 if a.platform != "openai" => {}
        402 => {
            a.status = "error".into();
            a.error_message = format!(
                "Payment required (402): {}",
                body.chars().take(200).collect::<String>()
            );
        }
        _ => {}
    }
    st.models_cache.clear();
}

/// `POST /v1/chat/completions` with failover across the group's accounts (§7.4).
pub async fn chat(AxState(inner): AxState<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    count(&inner, "POST /v1/chat/completions");
    if let (Some(r), _) = take_fault(&inner, &Method::POST, "/v1/chat/completions").await {
        return r;
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return openai_error(400, "invalid_request_error", "malformed JSON");
    };
    let Some(model) = req.get("model").and_then(Value::as_str).map(str::to_string) else {
        return openai_error(400, "invalid_request_error", "model is required");
    };
    let profile = inner.cfg.profile;
    let (group, candidates): (Group, Vec<Account>) = {
        let st = inner.state.lock().unwrap();
        let group = match authorize(&st, &headers, true) {
            Ok(g) => g,
            Err(r) => return r,
        };
        // v0.2.x: the group's allowlist is enforced on every request.
        if profile.enforces_allowlist() {
            if let Some(list) = group.allowlist() {
                if !list.iter().any(|m| pattern_match(m, &model)) {
                    return openai_error(
                        404,
                        "model_not_allowed",
                        &format!("model {model} is not allowed in this group"),
                    );
                }
            }
        }
        let in_group: Vec<&Account> = st
            .accounts
            .iter()
            .filter(|a| {
                !a.deleted && a.group_ids.contains(&group.id) && a.platform == group.platform
            })
            .collect();
        if !in_group.iter().any(|a| a.supports(&model)) {
            return openai_error(
                404,
                "model_not_found",
                &format!(
                    "Model \"{model}\" is not supported by any configured account in this group"
                ),
            );
        }
        // Channel restriction (§5.6): a restricted channel must price the model.
        if let Some(ch) = st
            .channels
            .iter()
            .find(|c| c.status == "active" && c.group_ids.contains(&group.id))
        {
            let mapped = ch.map(&group.platform, &model);
            let checked = if ch.billing_model_source == "requested" {
                model.clone()
            } else {
                mapped
            };
            if ch.restrict_models
                && ch.billing_model_source != "upstream"
                && !ch.prices(&group.platform, &checked)
            {
                return openai_error(503, "api_error", "Service temporarily unavailable");
            }
        }
        let mut c: Vec<Account> = in_group
            .into_iter()
            .filter(|a| a.schedulable_now() && a.supports(&model))
            .cloned()
            .collect();
        c.sort_by_key(|a| (a.priority, a.id));
        (group, c)
    };
    if candidates.is_empty() {
        return openai_error(503, "api_error", "Service temporarily unavailable");
    }
    let mut last: Option<u16> = None;
    for account in candidates.iter().take(10) {
        match forward(&inner, account, req.clone(), &model).await {
            Ok(up) if (200..300).contains(&up.status) => {
                bill(&inner, &headers, &group, account, &model, &up.body);
                return Response::builder()
                    .status(200)
                    .header("content-type", up.content_type)
                    .body(axum::body::Body::from(up.body))
                    .unwrap();
            }
            Ok(up) => {
                let text = String::from_utf8_lossy(&up.body).to_string();
                let failover = matches!(up.status, 401 | 402 | 403 | 405 | 429 | 529)
                    || up.status >= 500
                    || (up.status == 404 && text.contains("model"));
                on_upstream_error(
                    &mut inner.state.lock().unwrap(),
                    account.id,
                    up.status,
                    &text,
                );
                if !failover {
                    return Response::builder()
                        .status(up.status)
                        .header("content-type", up.content_type)
                        .body(axum::body::Body::from(up.body))
                        .unwrap();
                }
                last = Some(up.status);
            }
            Err(_) => last = Some(502),
        }
    }
    match last {
        Some(401) => openai_error(
            502,
            "upstream_error",
            "Upstream authentication failed, please contact administrator",
        ),
        Some(403) => openai_error(
            502,
            "upstream_error",
            "Upstream access forbidden, please contact administrator",
        ),
        Some(429) => openai_error(
            429,
            "rate_limit_error",
            "Upstream rate limit exceeded, please retry later",
        ),
        Some(529) => openai_error(
            503,
            "upstream_error",
            "Upstream service overloaded, please retry later",
        ),
        Some(500..=504) => openai_error(
            502,
            "upstream_error",
            "Upstream service temporarily unavailable",
        ),
        _ => openai_error(502, "upstream_error", "Upstream request failed"),
    }
}

fn sse(events: &[Value]) -> String {
    events.iter().map(|e| format!("data: {e}\n\n")).collect()
}

/// `POST /api/v1/admin/accounts/:id/test` (§3.8): SSE events, always HTTP 200
/// after auth; `test_complete` with `success:true` is the only success.
/// `GET /admin/cn-providers/accounts/:id/balance` (reference §3.9): for a
/// kimi or deepseek account the host asks the provider's balance endpoint
/// with the account's key and answers `{provider, success, balance,
/// currency, balances, available, status_code?, fetched_at, persisted,
/// error?}`; a provider failure is `success: false` with its status.
pub async fn cn_balance(inner: &Shared, id: &str) -> Response {
    let envelope = |status: u16, body: Value| {
        (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
    };
    let fail = |status: u16, reason: &str, message: &str| {
        envelope(
            status,
            json!({"code": status, "message": message, "reason": reason}),
        )
    };
    let Ok(id) = id.parse::<i64>() else {
        return fail(400, "CN_BALANCE_INVALID_ID", "invalid account id");
    };
    let account = {
        let st = inner.state.lock().unwrap();
        st.accounts
            .iter()
            .find(|a| a.id == id && !a.deleted)
            .cloned()
    };
    let Some(a) = account else {
        return fail(404, "CN_BALANCE_ACCOUNT_NOT_FOUND", "account not found");
    };
    let path = match a.platform.as_str() {
        "deepseek" => "/user/balance",
        "kimi" => "/users/me/balance",
        _ => {
            return fail(
                400,
                "CN_BALANCE_INVALID_PLATFORM",
                "balance is only available for kimi and deepseek",
            )
        }
    };
    let cred = |k: &str| {
        a.credentials
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let url = format!("{}{path}", cred("base_url").trim_end_matches('/'));
    let answer = inner
        .http
        .get(url)
        .bearer_auth(cred("api_key"))
        .send()
        .await;
    let mut data = json!({"provider": a.platform, "success": false, "fetched_at": now_unix(), "persisted": false});
    match answer {
        Err(e) => data["error"] = json!(format!("request failed: {e}")),
        Ok(r) => {
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            let found = v
                .pointer("/balance_infos/0")
                .map(|b| (b["total_balance"].clone(), b["currency"].clone()))
                .or_else(|| {
                    v.pointer("/data/available_balance")
                        .map(|b| (json!(b.to_string()), json!("CNY")))
                });
            match (status, found) {
                (200, Some((balance, currency))) => {
                    let amount: f64 = balance.as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0);
                    data["success"] = json!(true);
                    data["balance"] = balance.clone();
                    data["currency"] = currency.clone();
                    data["balances"] = json!([{"currency": currency, "balance": balance}]);
                    data["available"] = json!(amount > 0.0);
                }
                _ => {
                    data["status_code"] = json!(status);
                    data["error"] = json!(format!("upstream balance request returned {status}"));
                }
            }
        }
    }
    envelope(200, json!({"code": 0, "message": "success", "data": data}))
}

pub async fn account_test(inner: &Shared, id: &str, body: Value) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return crate::host::err(400, "", "Invalid account id");
    };
    let account = inner
        .state
        .lock()
        .unwrap()
        .accounts
        .iter()
        .find(|a| a.id == id && !a.deleted)
        .cloned();
    let stream = |events: Vec<Value>| {
        Response::builder()
            .status(200)
            .header("content-type", "text/event-stream")
            .body(axum::body::Body::from(sse(&events)))
            .unwrap()
    };
    let Some(account) = account else {
        return stream(vec![json!({"type": "error", "error": "Account not found"})]);
    };
    let cn = ["deepseek", "kimi", "zhipu", "minimax"].contains(&account.platform.as_str());
    let model = body
        .get("model_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            if account.platform == "anthropic" {
                "claude-sonnet-4-5-20250929".into()
            } else {
                "gpt-5.4".into()
            }
        });
    let mut events = vec![json!({"type": "test_start", "model": model})];
    if cn && !inner.cfg.profile.has_cn_platforms() {
        return plain_404();
    }
    if uses_responses(inner.cfg.profile, &account) {
        // The test goes the same way as the gateway: upstream `/v1/responses`.
        let req =
            json!({"model": account.map_model(&model), "input": "hi", "max_output_tokens": 1});
        let base = account
            .credentials
            .get("base_url")
            .and_then(Value::as_str)
            .unwrap_or("");
        let key = account
            .credentials
            .get("api_key")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (status, text) = match inner
            .http
            .post(responses_url(base))
            .bearer_auth(key)
            .json(&req)
            .send()
            .await
        {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (502, e.to_string()),
        };
        if !(200..300).contains(&status) {
            events.push(json!({"type": "error", "error": format!("Responses API (/v1/responses) returned {status}: {text}")}));
            return stream(events);
        }
        events.push(json!({"type": "content", "text": "ok"}));
        events.push(json!({"type": "test_complete", "success": true}));
        return stream(events);
    }
    events.push(json!({"type": "status", "text": "正在连接上游…"}));
    let req = json!({"model": model, "messages": [{"role": "user", "content": body.get("prompt").and_then(Value::as_str).unwrap_or("hi")}], "max_tokens": 1, "stream": false});
    match forward(inner, &account, req, &model).await {
        Ok(up) if (200..300).contains(&up.status) => {
            let v: Value = serde_json::from_slice(&up.body).unwrap_or(Value::Null);
            // Some providers answer 200 with an error inside (§12 of the providers reference).
            if let Some(e) = v
                .get("base_resp")
                .filter(|b| b.get("status_code").and_then(Value::as_i64).unwrap_or(0) != 0)
            {
                events.push(json!({"type": "error", "error": format!("Chat Completions API (/v1/chat/completions) returned 200 with error: {e}")}));
                return stream(events);
            }
            let text = v
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            events.push(json!({"type": "content", "text": text}));
            events.push(json!({"type": "test_complete", "success": true}));
            if let Some(a) = inner
                .state
                .lock()
                .unwrap()
                .accounts
                .iter_mut()
                .find(|a| a.id == id)
            {
                a.status = "active".into();
                a.error_message.clear();
                a.rate_limit_reset_at = None;
            }
        }
        Ok(up) => {
            let text = String::from_utf8_lossy(&up.body).to_string();
            events.push(json!({"type": "error", "error": format!("Chat Completions API (/v1/chat/completions) returned {}: {text}", up.status)}));
            let mut st = inner.state.lock().unwrap();
            if up.status == 401 {
                on_upstream_error(&mut st, id, 401, &text);
            }
        }
        Err(e) => events.push(json!({"type": "error", "error": e})),
    }
    stream(events)
}

#[cfg(test)]
mod tests {
    #[test]
    fn chat_url_follows_the_version_segment_rule() {
        assert_eq!(
            super::chat_url("https://api.deepseek.com"),
            "https://api.deepseek.com/v1/chat/completions"
        );
        assert_eq!(
            super::chat_url("https://api.moonshot.cn/v1"),
            "https://api.moonshot.cn/v1/chat/completions"
        );
        assert_eq!(
            super::chat_url("https://open.bigmodel.cn/api/paas/v4/"),
            "https://open.bigmodel.cn/api/paas/v4/chat/completions"
        );
    }
}
