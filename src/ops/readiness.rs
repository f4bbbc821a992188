//! The readiness gate, one implementation for the apply step and the
//! standalone re-check: `/v1/models` through the host lists the smoke model
//! and a 1-token completion through the host succeeds, both with the probe
//! user's key as `Authorization: Bearer`.

use crate::host::{HostClient, HostError};
use crate::secrets::Secret;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What the gate saw when it passed.
#[derive(Debug, Clone)]
pub(super) struct Proof {
    pub models: Vec<String>,
    pub listed: bool,
    pub listings: u32,
    pub waited_ms: u64,
    pub chat_request: Value,
    pub chat: Value,
}

/// Why the gate did not pass, sorted by what it says of the route.
#[derive(Debug, Clone)]
pub(super) enum NotReady {
    /// The host no longer offers the route to the probe key: the listing was
    /// refused or does not name the smoke model. `broken`.
    Route(String),
    /// The host lists the route but the completion through it failed (the
    /// upstream refused, the host could not be reached). `degraded`.
    Serving(String),
}

impl NotReady {
    pub fn message(&self) -> &str {
        match self {
            NotReady::Route(m) | NotReady::Serving(m) => m,
        }
    }
}

/// Runs the gate. While the smoke model is missing from the listing it
/// polls with backoff up to `cache_wait` (the host caches `/v1/models` per
/// group), telling `on_wait` what it waits for; `cache_wait` zero lists
/// once. Spends at most one minimal completion.
pub(super) async fn prove<W, F>(
    c: &HostClient,
    key: &Secret,
    smoke_model: &str,
    allowlist_host: bool,
    cache_wait: Duration,
    mut on_wait: W,
) -> Result<Proof, NotReady>
where
    W: FnMut(crate::model::Said) -> F,
    F: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut listings = 0u32;
    let models = loop {
        listings += 1;
        let models = c.gateway_models(Some(key)).await.map_err(|err| {
            let m = format!("GET /v1/models with the probe user's key: {err}");
            if unreachable(&err) {
                NotReady::Serving(m)
            } else {
                NotReady::Route(m)
            }
        })?;
        let left = cache_wait.saturating_sub(started.elapsed());
        if models.iter().any(|m| m == smoke_model) || left.is_zero() {
            break models;
        }
        let note = crate::model::Said::new(
            "wait.models",
            &[
                ("model", &smoke_model),
                ("cache", &cache_wait.as_secs()),
                ("listings", &listings),
                (
                    "elapsed",
                    &format!("{:.1}", started.elapsed().as_secs_f64()),
                ),
                ("next", &format!("{:.1}", delay.min(left).as_secs_f64())),
            ],
        );
        on_wait(note).await;
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_secs(4));
    };
    let waited_ms = started.elapsed().as_millis() as u64;
    let listed = models.iter().any(|m| m == smoke_model);
    // v0.2.x may leave exact allowlist entries out of the listing (upstream
    // issue #7517): the completion decides.
    if !listed && !allowlist_host {
        return Err(NotReady::Route(format!(
            "GET /v1/models does not list {smoke_model} after {listings} listing(s) over {:.1} s (it lists: {}). Not ready: check the account mapping and that an account is schedulable.",
            waited_ms as f64 / 1000.0,
            models.join(", ")
        )));
    }
    let chat_request = json!({"model": smoke_model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
    let chat = c
        .gateway_chat(key, &chat_request)
        .await
        .map_err(|err| NotReady::Serving(format!("POST /v1/chat/completions: {err}")))?;
    if chat
        .get("choices")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty())
    {
        return Err(NotReady::Serving(format!(
            "POST /v1/chat/completions answered without choices: {}",
            super::apply::ev(&chat)
        )));
    }
    Ok(Proof {
        models,
        listed,
        listings,
        waited_ms,
        chat_request,
        chat,
    })
}

/// The host could not be asked at all (no answer, a gateway timeout).
fn unreachable(e: &HostError) -> bool {
    e.status.is_none() || e.is_transient()
}
