//! A fake OpenAI-compatible CN provider. Each key has a behaviour, so one
//! upstream can hold a healthy key next to an exhausted one.

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Whose error bodies the upstream speaks (the providers reference, §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderStyle {
    /// DeepSeek: 401 "Authentication Fails", 402 "Insufficient Balance",
    /// 400 "Model Not Exist" / "Content Exists Risk", `/user/balance`.
    DeepSeek,
    /// Moonshot Kimi: `{error:{type}}`, 429 for both money and rate.
    Kimi,
    /// Zhipu GLM: `{error:{code:"1113"}}` with 429 for no balance.
    Glm,
    /// MiniMax: business codes, 200 + `base_resp` for no balance.
    MiniMax,
    /// DashScope: 400 `Arrearage` for arrears.
    DashScope,
    /// Volcengine Ark: 403 `AccountOverdueError`.
    Ark,
    /// SiliconFlow: `{code:30001}` (402), `{code:20012}` unknown model.
    SiliconFlow,
    /// Any other OpenAI-compatible provider: OpenAI's error shapes.
    OpenAi,
}

impl ProviderStyle {
    pub const ALL: [ProviderStyle; 8] = [
        ProviderStyle::DeepSeek,
        ProviderStyle::Kimi,
        ProviderStyle::Glm,
        ProviderStyle::MiniMax,
        ProviderStyle::DashScope,
        ProviderStyle::Ark,
        ProviderStyle::SiliconFlow,
        ProviderStyle::OpenAi,
    ];
}

/// What a key does when used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamBehaviour {
    Ok,
    InvalidKey,
    QuotaExhausted,
    RateLimited,
    Moderation,
}

#[derive(Default)]
struct St {
    keys: HashMap<String, UpstreamBehaviour>,
    calls: HashMap<String, u32>,
    /// When set, the balance endpoints answer this status (an outage).
    balance_fault: Option<u16>,
}

struct Inner {
    style: ProviderStyle,
    models: Vec<String>,
    st: Mutex<St>,
}

/// A running fake upstream.
pub struct FakeUpstream {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeUpstream {
    /// Starts on 127.0.0.1 with an OS-assigned port, serving `models`.
    pub async fn start(style: ProviderStyle, models: &[&str]) -> FakeUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner {
            style,
            models: models.iter().map(|s| s.to_string()).collect(),
            st: Mutex::new(St::default()),
        });
        let app = Router::new()
            .route("/v1/models", get(list_models))
            .route("/models", get(list_models))
            .route("/v1/chat/completions", post(chat))
            .route("/chat/completions", post(chat))
            // A chat-only provider has no Responses API (reference §12.2).
            .route("/v1/responses", post(no_responses))
            .route("/responses", post(no_responses))
            .route("/user/balance", get(balance))
            .route("/v1/user/balance", get(balance))
            .route("/v1/users/me/balance", get(balance))
            .route("/users/me/balance", get(balance))
            .route("/v1/user/info", get(balance))
            .route("/user/info", get(balance))
            // The double's own control: end-to-end tests in a browser
            // recharge a key the way an operator tops up a provider account.
            .route("/_fake/recharge", post(recharge))
            // A webhook receiver for browser tests: takes any alert and
            // answers as a chat bot does when it accepted a message.
            .route("/_fake/hook", post(hook))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(crate::host::no_delay(listener), app).await;
        });
        FakeUpstream { addr, inner, task }
    }

    /// The base URL to put in an account's `credentials.base_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Registers a key and what it does.
    pub fn add_key(&self, key: &str, behaviour: UpstreamBehaviour) {
        self.inner
            .st
            .lock()
            .unwrap()
            .keys
            .insert(key.into(), behaviour);
    }

    /// Makes the balance endpoints answer `status` (e.g. 500) until cleared
    /// with `None`, as a provider's billing service does in an outage.
    pub fn fail_balance(&self, status: Option<u16>) {
        self.inner.st.lock().unwrap().balance_fault = status;
    }

    /// Calls seen on `path` (e.g. `/v1/chat/completions`).
    pub fn calls(&self, path: &str) -> u32 {
        *self.inner.st.lock().unwrap().calls.get(path).unwrap_or(&0)
    }
}

fn key_of(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string()
}

fn resp(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn openai_err(status: u16, message: &str, kind: &str, code: Value) -> Response {
    resp(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

/// The provider's answer to a failing key or request.
fn failure(style: ProviderStyle, b: UpstreamBehaviour, tail: &str) -> Response {
    use ProviderStyle as P;
    use UpstreamBehaviour as B;
    match (style, b) {
        (P::DeepSeek, B::InvalidKey) => openai_err(
            401,
            &format!("Authentication Fails, Your api key: ****{tail} is invalid"),
            "authentication_error",
            json!("invalid_request_error"),
        ),
        (P::DeepSeek, B::QuotaExhausted) => openai_err(
            402,
            "Insufficient Balance",
            "unknown_error",
            json!("invalid_request_error"),
        ),
        (P::DeepSeek, B::RateLimited) => openai_err(
            429,
            "Too many concurrent requests",
            "rate_limit_error",
            json!("rate_limit_exceeded"),
        ),
        (P::DeepSeek, B::Moderation) => openai_err(
            400,
            "Content Exists Risk",
            "invalid_request_error",
            json!("invalid_request_error"),
        ),
        (P::Kimi, B::InvalidKey) => resp(
            401,
            json!({"error": {"type": "invalid_authentication_error", "message": "Invalid Authentication"}}),
        ),
        (P::Kimi, B::QuotaExhausted) => resp(
            429,
            json!({"error": {"type": "exceeded_current_quota_error", "message": "Your account is suspended due to insufficient balance"}}),
        ),
        (P::Kimi, B::RateLimited) => resp(
            429,
            json!({"error": {"type": "rate_limit_reached_error", "message": "max organization rpm reached"}}),
        ),
        (P::Kimi, B::Moderation) => resp(
            400,
            json!({"error": {"type": "content_filter", "message": "The request was rejected because it was considered high risk"}}),
        ),
        (P::Glm, B::InvalidKey) => resp(
            401,
            json!({"error": {"code": "1002", "message": "Authorization Token非法"}}),
        ),
        (P::Glm, B::QuotaExhausted) => resp(
            429,
            json!({"error": {"code": "1113", "message": "余额不足或无可用资源包,请充值。"}}),
        ),
        (P::Glm, B::RateLimited) => resp(
            429,
            json!({"error": {"code": "1302", "message": "您当前使用该API的并发数过高"}}),
        ),
        (P::Glm, B::Moderation) => resp(
            400,
            json!({"error": {"code": "1301", "message": "系统检测到输入或生成内容可能包含不安全或敏感内容"}}),
        ),
        (P::MiniMax, B::InvalidKey) => resp(
            401,
            json!({"error": {"type": "authentication_error", "message": "invalid api key (2049)"}}),
        ),
        // No balance: HTTP 200 with the error inside (§2.5).
        (P::MiniMax, B::QuotaExhausted) => resp(
            200,
            json!({"id": "", "choices": null, "base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}}),
        ),
        (P::MiniMax, B::RateLimited) => resp(
            200,
            json!({"choices": null, "base_resp": {"status_code": 1002, "status_msg": "rate limit"}}),
        ),
        (P::MiniMax, B::Moderation) => resp(
            200,
            json!({"choices": null, "base_resp": {"status_code": 1026, "status_msg": "input new_sensitive"}}),
        ),
        (P::DashScope, B::InvalidKey) => openai_err(
            401,
            "Incorrect API key provided.",
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        (P::DashScope, B::QuotaExhausted) => openai_err(
            400,
            "Access denied, please make sure your account is in good standing.",
            "Arrearage",
            json!("Arrearage"),
        ),
        (P::DashScope, B::RateLimited) => openai_err(
            429,
            "Requests rate limit exceeded",
            "limit_requests",
            json!("Throttling.RateQuota"),
        ),
        (P::DashScope, B::Moderation) => openai_err(
            400,
            "Input data may contain inappropriate content.",
            "data_inspection_failed",
            json!("data_inspection_failed"),
        ),
        (P::Ark, B::InvalidKey) => openai_err(
            401,
            "The API key in the request is missing or invalid. Request ID: x",
            "Unauthorized",
            json!("AuthenticationError"),
        ),
        (P::Ark, B::QuotaExhausted) => openai_err(
            403,
            "Your account has an overdue balance. Request ID: x",
            "Forbidden",
            json!("AccountOverdueError"),
        ),
        (P::Ark, B::RateLimited) => openai_err(
            429,
            "RPM exceeded. Request ID: x",
            "TooManyRequests",
            json!("RateLimitExceeded.EndpointRPMExceeded"),
        ),
        (P::Ark, B::Moderation) => openai_err(
            400,
            "risk detected. Request ID: x",
            "BadRequest",
            json!("InputTextRiskDetection"),
        ),
        (P::SiliconFlow, B::InvalidKey) => resp(401, json!("Invalid token")),
        (P::SiliconFlow, B::QuotaExhausted) => resp(
            402,
            json!({"code": 30001, "message": "Sorry, your account balance is insufficient", "data": null}),
        ),
        (P::SiliconFlow, B::RateLimited) => resp(
            429,
            json!({"code": 50603, "message": "Request was rejected due to rate limiting (RPM)", "data": null}),
        ),
        (P::SiliconFlow, B::Moderation) => resp(
            400,
            json!({"code": 20015, "message": "content is not allowed", "data": null}),
        ),
        (P::OpenAi, B::InvalidKey) => openai_err(
            401,
            "Incorrect API key provided",
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        (P::OpenAi, B::QuotaExhausted) => openai_err(
            429,
            "You exceeded your current quota",
            "insufficient_quota",
            json!("insufficient_quota"),
        ),
        (P::OpenAi, B::RateLimited) => openai_err(
            429,
            "Rate limit reached for requests",
            "requests",
            json!("rate_limit_exceeded"),
        ),
        (P::OpenAi, B::Moderation) => openai_err(
            400,
            "content policy violation",
            "invalid_request_error",
            json!("content_filter"),
        ),
        (_, B::Ok) => resp(200, json!({})),
    }
}

fn unknown_model(style: ProviderStyle, model: &str) -> Response {
    match style {
        ProviderStyle::DeepSeek => openai_err(
            400,
            "Model Not Exist",
            "invalid_request_error",
            json!("invalid_request_error"),
        ),
        ProviderStyle::Kimi => resp(
            404,
            json!({"error": {"type": "resource_not_found_error", "message": format!("Not found the model {model} or Permission denied")}}),
        ),
        ProviderStyle::Glm => resp(
            400,
            json!({"error": {"code": "1211", "message": "模型不存在，请检查模型代码。"}}),
        ),
        ProviderStyle::MiniMax => resp(
            200,
            json!({"choices": null, "base_resp": {"status_code": 2013, "status_msg": format!("invalid params, unknown model {model}")}}),
        ),
        ProviderStyle::DashScope => openai_err(
            404,
            "The model does not exist or you do not have access to it.",
            "invalid_request_error",
            json!("model_not_found"),
        ),
        ProviderStyle::Ark => openai_err(
            404,
            "The model or endpoint does not exist. Request ID: x",
            "NotFound",
            json!("InvalidEndpointOrModel.NotFound"),
        ),
        ProviderStyle::SiliconFlow => resp(
            400,
            json!({"code": 20012, "message": "Model does not exist. Please check it carefully.", "data": null}),
        ),
        ProviderStyle::OpenAi => openai_err(
            404,
            &format!("The model `{model}` does not exist"),
            "invalid_request_error",
            json!("model_not_found"),
        ),
    }
}

fn check(inner: &Inner, headers: &HeaderMap, path: &str) -> Result<(), Response> {
    let mut st = inner.st.lock().unwrap();
    *st.calls.entry(path.into()).or_insert(0) += 1;
    let key = key_of(headers);
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    match st.keys.get(&key).copied() {
        None => Err(failure(inner.style, UpstreamBehaviour::InvalidKey, &tail)),
        // `/models` answers with an empty wallet too (§0.5); completions do not.
        Some(UpstreamBehaviour::QuotaExhausted | UpstreamBehaviour::Moderation)
            if path.ends_with("models") =>
        {
            Ok(())
        }
        Some(UpstreamBehaviour::Ok | UpstreamBehaviour::Moderation) => Ok(()),
        Some(b) => Err(failure(inner.style, b, &tail)),
    }
}

async fn list_models(AxState(inner): AxState<Arc<Inner>>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&inner, &headers, "/v1/models") {
        return r;
    }
    let data: Vec<Value> = inner
        .models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "owned_by": "fake"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn chat(AxState(inner): AxState<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = check(&inner, &headers, "/v1/chat/completions") {
        return r;
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return openai_err(
            400,
            "invalid JSON body",
            "invalid_request_error",
            Value::Null,
        );
    };
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !inner.models.contains(&model) {
        return unknown_model(inner.style, &model);
    }
    let behaviour = inner
        .st
        .lock()
        .unwrap()
        .keys
        .get(&key_of(&headers))
        .copied();
    if behaviour == Some(UpstreamBehaviour::Moderation) {
        return failure(inner.style, UpstreamBehaviour::Moderation, "");
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        let chunk = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": null}]});
        let done = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]});
        let text = format!("data: {chunk}\n\ndata: {done}\n\ndata: [DONE]\n\n");
        return ([("content-type", "text/event-stream")], text).into_response();
    }
    axum::Json(json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
    .into_response()
}

async fn no_responses(AxState(inner): AxState<Arc<Inner>>, uri: axum::http::Uri) -> Response {
    *inner
        .st
        .lock()
        .unwrap()
        .calls
        .entry(uri.path().to_string())
        .or_insert(0) += 1;
    resp(
        404,
        json!({"error": {"message": "not found: /responses", "type": "invalid_request_error"}}),
    )
}

/// `POST /_fake/recharge` `{"key": …}`: a registered key works from now on.
async fn recharge(AxState(inner): AxState<Arc<Inner>>, body: Bytes) -> Response {
    let key = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("key").and_then(Value::as_str).map(str::to_string));
    let mut st = inner.st.lock().unwrap();
    match key.and_then(|k| st.keys.get_mut(&k)) {
        Some(b) => {
            *b = UpstreamBehaviour::Ok;
            StatusCode::NO_CONTENT.into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such key").into_response(),
    }
}

async fn hook(AxState(inner): AxState<Arc<Inner>>) -> Response {
    *inner
        .st
        .lock()
        .unwrap()
        .calls
        .entry("/_fake/hook".into())
        .or_insert(0) += 1;
    axum::Json(json!({"errcode": 0, "errmsg": "ok"})).into_response()
}

/// DeepSeek's `/user/balance`, Kimi's `/users/me/balance`, SiliconFlow's `/user/info`.
async fn balance(
    AxState(inner): AxState<Arc<Inner>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let (behaviour, fault) = {
        let mut st = inner.st.lock().unwrap();
        *st.calls.entry(uri.path().to_string()).or_insert(0) += 1;
        (st.keys.get(&key_of(&headers)).copied(), st.balance_fault)
    };
    if let Some(status) = fault {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "billing service unavailable",
        )
            .into_response();
    }
    let path = uri.path();
    let empty = behaviour == Some(UpstreamBehaviour::QuotaExhausted);
    match (inner.style, behaviour) {
        (_, None | Some(UpstreamBehaviour::InvalidKey)) => failure(inner.style, UpstreamBehaviour::InvalidKey, ""),
        (ProviderStyle::DeepSeek, _) if path.ends_with("/user/balance") => axum::Json(json!({
            "is_available": !empty,
            "balance_infos": [{"currency": "CNY", "total_balance": if empty { "0.00" } else { "110.00" }, "granted_balance": "10.00", "topped_up_balance": "100.00"}]
        }))
        .into_response(),
        (ProviderStyle::Kimi, _) if path.ends_with("/users/me/balance") => axum::Json(json!({
            "code": 0, "status": true,
            "data": {"available_balance": if empty { -1.5 } else { 49.5 }, "voucher_balance": 0, "cash_balance": if empty { -1.5 } else { 49.5 }}
        }))
        .into_response(),
        (ProviderStyle::SiliconFlow, _) if path.ends_with("/user/info") => axum::Json(json!({
            "code": 20000, "message": "OK", "status": true,
            "data": {"balance": "0.00", "chargeBalance": if empty { "0.00" } else { "88.00" }, "totalBalance": if empty { "0.00" } else { "88.00" }, "status": "normal"}
        }))
        .into_response(),
        _ => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
    }
}
