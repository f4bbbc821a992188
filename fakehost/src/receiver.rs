//! A webhook receiver: records every POST (headers and body) and answers
//! with the status it is told, so tests can check what an alert delivery
//! carried and make deliveries fail.

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request the receiver took.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    got: Mutex<Vec<Received>>,
    status: Mutex<u16>,
    body: Mutex<String>,
}

/// A running receiver on 127.0.0.1 (port 0).
pub struct WebhookReceiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner {
            status: Mutex::new(200),
            body: Mutex::new(r#"{"ok":true}"#.into()),
            ..Default::default()
        });
        let app = Router::new().fallback(post(take)).with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookReceiver { addr, inner, task }
    }

    /// The URL to give a webhook (any path is taken).
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answer every request with `status` and `body` from now on.
    pub fn answer(&self, status: u16, body: &str) {
        *self.inner.status.lock().unwrap() = status;
        *self.inner.body.lock().unwrap() = body.into();
    }

    /// Everything taken so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.got.lock().unwrap().clone()
    }
}

async fn take(
    AxState(inner): AxState<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.got.lock().unwrap().push(Received {
        target: uri.to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let status = *inner.status.lock().unwrap();
    let body = inner.body.lock().unwrap().clone();
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}
