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

/// Whose error bodies the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderStyle {
    /// DeepSeek (`api.deepseek.com`): 401 `authentication_error`, 402
    /// "Insufficient Balance", 400 "Model Not Exist", `/user/balance`.
    DeepSeek,
    /// Any other OpenAI-compatible provider: OpenAI's error shapes.
    OpenAi,
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
            .route("/user/balance", get(balance))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
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

fn error(style: ProviderStyle, status: u16, message: &str, kind: &str) -> Response {
    let body = match style {
        ProviderStyle::DeepSeek => {
            json!({"error": {"message": message, "type": kind, "param": null, "code": "invalid_request_error"}})
        }
        ProviderStyle::OpenAi => {
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
    };
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
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
        None | Some(UpstreamBehaviour::InvalidKey) => Err(error(
            inner.style,
            401,
            &format!("Authentication Fails, Your api key: ****{tail} is invalid"),
            "authentication_error",
        )),
        Some(UpstreamBehaviour::QuotaExhausted) => Err(match inner.style {
            ProviderStyle::DeepSeek => {
                error(inner.style, 402, "Insufficient Balance", "unknown_error")
            }
            ProviderStyle::OpenAi => error(
                inner.style,
                429,
                "You exceeded your current quota",
                "insufficient_quota",
            ),
        }),
        Some(UpstreamBehaviour::RateLimited) => Err(error(
            inner.style,
            429,
            "Rate limit reached for requests",
            "rate_limit_error",
        )),
        _ => Ok(()),
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
        return error(
            inner.style,
            400,
            "invalid JSON body",
            "invalid_request_error",
        );
    };
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !inner.models.contains(&model) {
        return match inner.style {
            ProviderStyle::DeepSeek => {
                error(inner.style, 400, "Model Not Exist", "invalid_request_error")
            }
            ProviderStyle::OpenAi => error(
                inner.style,
                404,
                &format!("The model `{model}` does not exist"),
                "invalid_request_error",
            ),
        };
    }
    let behaviour = inner
        .st
        .lock()
        .unwrap()
        .keys
        .get(&key_of(&headers))
        .copied();
    if behaviour == Some(UpstreamBehaviour::Moderation) {
        return error(
            inner.style,
            400,
            "Content Exists Risk",
            "invalid_request_error",
        );
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

async fn balance(AxState(inner): AxState<Arc<Inner>>, headers: HeaderMap) -> Response {
    if inner.style != ProviderStyle::DeepSeek {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    }
    let behaviour = {
        let mut st = inner.st.lock().unwrap();
        *st.calls.entry("/user/balance".into()).or_insert(0) += 1;
        st.keys.get(&key_of(&headers)).copied()
    };
    match behaviour {
        None | Some(UpstreamBehaviour::InvalidKey) => error(
            inner.style,
            401,
            "Authentication Fails",
            "authentication_error",
        ),
        Some(b) => {
            let empty = b == UpstreamBehaviour::QuotaExhausted;
            axum::Json(json!({
                "is_available": !empty,
                "balance_infos": [{"currency": "CNY", "total_balance": if empty { "0.00" } else { "110.00" }, "granted_balance": "10.00", "topped_up_balance": "100.00"}]
            }))
            .into_response()
        }
    }
}
