//! The Sub2API client: admin auth (`x-api-key` or a JWT from an admin
//! sign-in), the envelope and its error shapes, and the gateway calls the
//! probe needs. One `reqwest::Client` per host, built once with timeouts.

mod envelope;
mod error;
pub mod outbound;
mod version;

pub use envelope::parse as parse_envelope;
pub use error::{HostError, HostErrorKind};
pub use version::HostVersion;

use crate::secrets::Secret;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How the client authenticates to the admin API.
#[derive(Debug, Clone)]
pub enum AdminCredential {
    ApiKey(Secret),
    Password { email: String, password: Secret },
}

/// The outcome of `POST /api/v1/auth/login`.
#[derive(Debug)]
pub enum LoginOutcome {
    Token(Secret),
    /// The account has TOTP; a machine cannot finish the sign-in.
    Requires2fa,
}

/// A timed answer: status, parsed data or error, and how long it took.
#[derive(Debug)]
pub struct Timed<T> {
    pub elapsed: Duration,
    pub result: Result<T, HostError>,
}

/// A client for one host.
#[derive(Debug)]
pub struct HostClient {
    http: reqwest::Client,
    base: String,
    admin: AdminCredential,
    jwt: Mutex<Option<Secret>>,
}

/// Why a request timed out is worth a comment: a host behind a slow proxy can
/// take seconds for its first answer, but a probe that hangs for a minute is
/// worse than one that says "timed out after 15 s".
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl HostClient {
    /// Builds a client for `base_url` (already validated and normalised).
    pub fn new(base_url: &str, admin: AdminCredential) -> HostClient {
        HostClient {
            http: shared_http(),
            base: base_url.trim_end_matches('/').to_string(),
            admin,
            jwt: Mutex::new(None),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The outbound guard's check of the base URL (a literal address, the
    /// deny list); names are checked again when they are resolved.
    fn guard(&self, method: &'static str, path: &str) -> Result<(), HostError> {
        outbound::policy().check_url(&self.base).map_err(|why| {
            HostError::local(
                HostErrorKind::Network,
                "OUTBOUND_REFUSED",
                format!("refused by the outbound guard: {why}"),
                method,
                path_only(path),
            )
        })
    }

    async fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, HostError> {
        self.guard(method, path)?;
        let url = format!("{}{}", self.base, path);
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("static method");
        let mut req = self.http.request(m, &url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| HostError::network(method, path_only(path), &e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = read_limited(resp, MAX_BODY, method, path_only(path)).await?;
        envelope::parse(method, path_only(path), status, retry_after, &bytes)
    }

    /// `GET /api/v1/settings/public` (no auth), timed.
    pub async fn public_settings(&self) -> Timed<Value> {
        let t = Instant::now();
        let result = self.send("GET", "/api/v1/settings/public", None, &[]).await;
        Timed {
            elapsed: t.elapsed(),
            result,
        }
    }

    /// `POST /api/v1/auth/login` for any user (admin or probe user).
    pub async fn login(&self, email: &str, password: &Secret) -> Result<LoginOutcome, HostError> {
        let body = serde_json::json!({"email": email, "password": password.expose()});
        let data = self
            .send("POST", "/api/v1/auth/login", Some(&body), &[])
            .await?;
        if data.get("requires_2fa").and_then(Value::as_bool) == Some(true) {
            return Ok(LoginOutcome::Requires2fa);
        }
        match data.get("access_token").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => Ok(LoginOutcome::Token(Secret::new(t))),
            _ => Err(HostError::protocol(
                "POST",
                "/api/v1/auth/login",
                200,
                "the sign-in answer has no access_token",
            )),
        }
    }

    /// The admin auth header, signing in first for a password credential.
    async fn admin_header(&self) -> Result<(&'static str, Secret), HostError> {
        match &self.admin {
            AdminCredential::ApiKey(k) => Ok(("x-api-key", k.clone())),
            AdminCredential::Password { email, password } => {
                let mut jwt = self.jwt.lock().await;
                if jwt.is_none() {
                    match self.login(email, password).await? {
                        LoginOutcome::Token(t) => *jwt = Some(t),
                        LoginOutcome::Requires2fa => {
                            return Err(HostError {
                                kind: HostErrorKind::Auth,
                                status: Some(200),
                                code: "REQUIRES_2FA".into(),
                                message: "the admin account has two-factor sign-in; use the admin API key instead".into(),
                                method: "POST",
                                path: "/api/v1/auth/login".into(),
                                retry_after: None,
                            })
                        }
                    }
                }
                let t = jwt.as_ref().expect("set above").expose().to_string();
                Ok(("authorization", Secret::new(format!("Bearer {t}"))))
            }
        }
    }

    /// An admin call. A password credential whose JWT expired is signed in
    /// again once.
    pub async fn admin(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, HostError> {
        for attempt in 0..2 {
            let (name, value) = self.admin_header().await?;
            let mut headers = vec![(name, value.expose())];
            if let Some(k) = idempotency_key {
                headers.push(("idempotency-key", k));
            }
            match self.send(method, path, body, &headers).await {
                Err(e)
                    if attempt == 0
                        && e.status == Some(401)
                        && matches!(self.admin, AdminCredential::Password { .. })
                        && matches!(
                            e.code.as_str(),
                            "TOKEN_EXPIRED" | "INVALID_TOKEN" | "TOKEN_REVOKED"
                        ) =>
                {
                    *self.jwt.lock().await = None;
                }
                other => return other,
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    /// `GET` on the admin API.
    pub async fn admin_get(&self, path: &str) -> Result<Value, HostError> {
        self.admin("GET", path, None, None).await
    }

    /// `GET /v1/models` with a user key as `Authorization: Bearer`; the ids.
    pub async fn gateway_models(&self, key: Option<&Secret>) -> Result<Vec<String>, HostError> {
        let auth = key.map(|k| format!("Bearer {}", k.expose()));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let v = self.send("GET", "/v1/models", None, &headers).await?;
        let ids = v
            .get("data")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(ids)
    }
}

impl HostClient {
    /// A user-route call with the user's JWT (key creation).
    pub async fn user_call(
        &self,
        jwt: &Secret,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, HostError> {
        let auth = format!("Bearer {}", jwt.expose());
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(k) = idempotency_key {
            headers.push(("idempotency-key", k));
        }
        self.send(method, path, body, &headers).await
    }

    /// `POST /v1/chat/completions` with a user key as `Authorization: Bearer`.
    pub async fn gateway_chat(&self, key: &Secret, body: &Value) -> Result<Value, HostError> {
        let auth = format!("Bearer {}", key.expose());
        self.send(
            "POST",
            "/v1/chat/completions",
            Some(body),
            &[("authorization", &auth)],
        )
        .await
    }

    /// `POST /api/v1/admin/accounts/:id/test`: the SSE events, parsed.
    pub async fn account_test(&self, id: i64, model: &str) -> Result<Vec<Value>, HostError> {
        let path = format!("/api/v1/admin/accounts/{id}/test");
        self.guard("POST", &path)?;
        let (name, value) = self.admin_header().await?;
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(name, value.expose())
            .json(&serde_json::json!({"model_id": model}))
            .send()
            .await
            .map_err(|e| HostError::network("POST", &path, &e))?;
        let status = resp.status().as_u16();
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let bytes = read_limited(resp, MAX_BODY, "POST", &path).await?;
        if !is_sse {
            // Errors before the handler (auth, 423, 400) are JSON; "Account
            // not found" arrives as an SSE error event without the header.
            let text = String::from_utf8_lossy(&bytes);
            if let Some(events) = parse_sse(&text).filter(|e| !e.is_empty()) {
                return Ok(events);
            }
            return envelope::parse("POST", &path, status, None, &bytes).map(|v| vec![v]);
        }
        Ok(parse_sse(&String::from_utf8_lossy(&bytes)).unwrap_or_default())
    }
}

/// The HTTP client every host client uses: its settings are the same for
/// all (the outbound guard's resolver, which pins connections to checked
/// addresses; no redirects; the timeouts), building one costs milliseconds
/// (the TLS roots), and its connections are pooled per host, so a plan and
/// the apply after it reuse them.
fn shared_http() -> reqwest::Client {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    HTTP.get_or_init(|| {
        outbound::guarded_builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!(
                "sub2api-cn-relay-manager/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .expect("static client configuration is valid")
    })
    .clone()
}

/// The largest answer read from a host: a page of 1,000 accounts is about
/// 0.9 MB, so this leaves room and still bounds what a hostile or broken
/// host can make the server hold.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Reads a response body, refusing one over `max` bytes (by its declared
/// length, or while reading).
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    max: usize,
    method: &'static str,
    path: &str,
) -> Result<Vec<u8>, HostError> {
    let too_large = || {
        HostError::local(
            HostErrorKind::Protocol,
            "BODY_TOO_LARGE",
            format!(
                "the answer is larger than {} MiB, more than the product reads from a host",
                max / (1024 * 1024)
            ),
            method,
            path,
        )
    };
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| HostError::network(method, path, &e))?
    {
        if out.len() + chunk.len() > max {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Parses `data: <json>` events separated by blank lines.
pub fn parse_sse(text: &str) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        for line in block.lines() {
            if let Some(d) = line.strip_prefix("data:") {
                let d = d.trim();
                if d.is_empty() || d == "[DONE]" {
                    continue;
                }
                out.push(serde_json::from_str(d).ok()?);
            }
        }
    }
    Some(out)
}

/// The path without its query string, for errors and logs.
fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}
