//! The fake host's server, its admin API and its fault hooks.

use crate::gateway;
use crate::state::*;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A released host version and what it has (reference §9.1 and §12). Each
/// predicate is the version rule of one feature, so a profile is its
/// version and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Profile {
    /// v0.1.106: before channels, redaction, `openai_responses_mode`, the
    /// compliance gate and CN platforms. The `openai` platform sends every
    /// chat completion upstream as `/v1/responses` (§12.2).
    V0_1_106,
    /// v0.1.177: channels, redaction, forced chat completions, the
    /// compliance gate, group `model_pricing`; no CN platforms yet.
    V0_1_177,
    /// v0.1.179: adds `deepseek`/`kimi`/`zhipu` and CN account tests.
    V0_1_179,
    /// v0.2.4: `minimax`, `model_allowlist` (renamed from
    /// `models_list_config`) enforced on every gateway request, channel
    /// prices looked up by the upstream name after account mapping.
    V0_2_4,
}

impl Profile {
    /// Every profile, oldest first.
    pub const ALL: [Profile; 4] = [
        Profile::V0_1_106,
        Profile::V0_1_177,
        Profile::V0_1_179,
        Profile::V0_2_4,
    ];

    pub fn version(self) -> &'static str {
        match self {
            Profile::V0_1_106 => "0.1.106",
            Profile::V0_1_177 => "0.1.177",
            Profile::V0_1_179 => "0.1.179",
            Profile::V0_2_4 => "0.2.4",
        }
    }

    /// The profile named by its version (`0.1.179`, `v0.2.4`).
    pub fn parse(s: &str) -> Option<Profile> {
        let s = s.trim().trim_start_matches('v');
        Profile::ALL.into_iter().find(|p| p.version() == s)
    }

    fn at_least(self, v: (u32, u32, u32)) -> bool {
        let mut it = self
            .version()
            .split('.')
            .map(|x| x.parse::<u32>().unwrap_or(0));
        let me = (
            it.next().unwrap_or(0),
            it.next().unwrap_or(0),
            it.next().unwrap_or(0),
        );
        me >= v
    }
    /// Channels (v0.1.107).
    pub fn has_channels(self) -> bool {
        self.at_least((0, 1, 107))
    }
    /// Subscription plans (v0.1.111).
    pub fn has_plans(self) -> bool {
        self.at_least((0, 1, 111))
    }
    /// Credential redaction (v0.1.127).
    pub fn redacts(self) -> bool {
        self.at_least((0, 1, 127))
    }
    /// `extra.openai_responses_mode` is read (v0.1.127); before, every
    /// `openai` completion goes upstream as `/v1/responses`.
    pub fn has_responses_mode(self) -> bool {
        self.at_least((0, 1, 127))
    }
    /// Group `models_list_config` (v0.1.132), renamed `model_allowlist`.
    pub fn has_model_list(self) -> bool {
        self.at_least((0, 1, 132))
    }
    /// The admin compliance gate (v0.1.136).
    pub fn has_compliance(self) -> bool {
        self.at_least((0, 1, 136))
    }
    /// Group `model_pricing`, which outranks channel pricing (v0.1.176).
    pub fn has_group_pricing(self) -> bool {
        self.at_least((0, 1, 176))
    }
    /// `deepseek`/`kimi`/`zhipu` and `/admin/cn-providers/*` (v0.1.178).
    pub fn has_cn_platforms(self) -> bool {
        self.at_least((0, 1, 178))
    }
    /// `model_allowlist` enforced on requests; channel prices looked up by
    /// the upstream name (v0.2.x).
    pub fn enforces_allowlist(self) -> bool {
        self.at_least((0, 2, 0))
    }
    pub fn platforms(self) -> Vec<&'static str> {
        let mut p = vec!["anthropic", "openai", "gemini", "antigravity", "grok"];
        if self.has_cn_platforms() {
            p.extend(["kimi", "zhipu", "deepseek", "composite"]);
        }
        if self.at_least((0, 2, 4)) {
            p.push("minimax");
        }
        p
    }
    pub(crate) fn allowlist_field(self) -> Option<&'static str> {
        if self.enforces_allowlist() {
            Some("model_allowlist")
        } else if self.has_model_list() {
            Some("models_list_config")
        } else {
            None
        }
    }
}

/// The compliance text version a fresh host asks for.
pub const COMPLIANCE_VERSION: &str = "v2026.06.10";

/// `n` bytes of lowercase hex, different on every call (a fake needs
/// unique keys, not unpredictable ones).
pub(crate) fn random_hex(n: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(n * 2);
    while out.len() < n * 2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(n * 2);
    out
}

/// How the fake host starts.
#[derive(Debug, Clone)]
pub struct FakeHostConfig {
    pub profile: Profile,
    pub admin_api_key: String,
    pub admin_email: String,
    pub admin_password: String,
    /// Whether the first admin has already accepted the compliance text.
    pub compliance_accepted: bool,
    pub backend_mode: bool,
    pub turnstile: bool,
    /// `/v1/models` cache lifetime (the real host: 15 s).
    pub models_cache_ttl: Duration,
    /// Users besides the admin: (email, password).
    pub users: Vec<(String, String)>,
    /// How long every admin and gateway request takes, the host's own work
    /// included (benchmarks, slow-host tests): see `record_span`.
    pub latency: Duration,
    /// Whether `Idempotency-Key` is honoured. `false` models a host (or a
    /// fork) that ignores the header: a resend creates again.
    pub honour_idempotency: bool,
    /// The version the host reports instead of its profile's (a fork's own
    /// numbering such as `1.8.170`, where no version rule applies).
    pub version_override: Option<String>,
}

impl Default for FakeHostConfig {
    fn default() -> Self {
        FakeHostConfig {
            profile: Profile::V0_1_179,
            admin_api_key: format!("admin-{}", "0123456789abcdef".repeat(4)),
            admin_email: "admin@sub2api.local".into(),
            admin_password: "admin-password-1".into(),
            compliance_accepted: true,
            backend_mode: false,
            turnstile: false,
            models_cache_ttl: Duration::from_secs(15),
            users: vec![("probe@example.com".into(), "probe-password-1".into())],
            latency: Duration::ZERO,
            honour_idempotency: true,
            version_override: None,
        }
    }
}

/// What a fault does to a matching request.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer with this status and JSON body instead of handling the request.
    Status(u16, Value),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Handle the request (its effect is committed), then drop the connection
    /// before the client has the answer.
    DropAfterCommit,
}

/// A fault on requests whose method matches and whose path starts with
/// `path_prefix`, for the next `times` of them.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Method,
    pub path_prefix: String,
    pub kind: FaultKind,
    pub times: u32,
}

pub(crate) struct Inner {
    pub cfg: FakeHostConfig,
    pub state: Mutex<State>,
    pub faults: Mutex<Vec<Fault>>,
    pub http: reqwest::Client,
    pub settings: Mutex<Map<String, Value>>,
    /// Every request's route and when it came in and was answered.
    pub spans: Mutex<Vec<CallSpan>>,
}

/// One request as the host saw it: its route (`METHOD /path`, numeric
/// segments as `:id`), when it came in, when its answer was ready, and how
/// long the host's own work took (the configured latency excluded).
#[derive(Clone, Debug)]
pub struct CallSpan {
    pub route: String,
    pub start: std::time::Instant,
    pub end: std::time::Instant,
    pub work: Duration,
}

pub(crate) type Shared = Arc<Inner>;

/// Sleeps on a blocking thread: tokio's timer counts whole milliseconds
/// and rounds a deadline up (one account test at 10 ms, alone: 11.8 ms with
/// the timer, 11.1 ms with this).
async fn precise_sleep(d: Duration) {
    if !d.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
    }
}

/// Whether the configured latency applies to `path`: the admin API and the
/// gateway's routes (sign-in and the public settings answer at once).
fn has_latency(path: &str) -> bool {
    path.starts_with("/api/v1/admin/")
        || matches!(
            path,
            "/v1/models" | "/models" | "/v1/chat/completions" | "/chat/completions"
        )
}

/// Records each request's span (benchmarks read them back), and gives
/// the admin and gateway routes the configured latency as a remote host
/// would have it: the request takes half of it to arrive, the host does its
/// work, and the answer is ready no earlier than the whole latency after
/// the request came in (later only when the work itself takes longer). A
/// call that asks the upstream (an account test) thus takes the latency,
/// not the latency plus the fake upstream's own time.
async fn record_span(
    AxState(inner): AxState<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = route_key(req.method(), req.uri().path());
    let start = std::time::Instant::now();
    let latency = match has_latency(req.uri().path()) {
        true => inner.cfg.latency,
        false => Duration::ZERO,
    };
    precise_sleep(latency / 2).await;
    let worked = std::time::Instant::now();
    let resp = next.run(req).await;
    let work = worked.elapsed();
    precise_sleep(latency.saturating_sub(start.elapsed())).await;
    let end = std::time::Instant::now();
    inner.spans.lock().unwrap().push(CallSpan {
        route,
        start,
        end,
        work,
    });
    resp
}

/// The listener with Nagle's algorithm off on every connection, as a real
/// host's (Go's) are: an answer written in two parts is not held back
/// waiting for the first part's acknowledgement.
pub(crate) fn no_delay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// A running fake host.
pub struct FakeHost {
    addr: SocketAddr,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeHost {
    /// Starts on 127.0.0.1 with an OS-assigned port.
    pub async fn start(cfg: FakeHostConfig) -> FakeHost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        Self::serve(listener, cfg)
    }

    /// Serves on an already bound listener.
    pub fn serve(listener: tokio::net::TcpListener, cfg: FakeHostConfig) -> FakeHost {
        let addr = listener.local_addr().expect("local addr");
        // A fresh real host has no admin key until an admin accepts the
        // compliance text: the key endpoints are behind the gate (§12.1).
        let gated = cfg.profile.has_compliance() && !cfg.compliance_accepted;
        let mut st = State {
            admin_api_key: if gated {
                String::new()
            } else {
                cfg.admin_api_key.clone()
            },
            compliance_version: COMPLIANCE_VERSION.into(),
            ..State::default()
        };
        let admin_id = st.id();
        st.users.push(User {
            id: admin_id,
            email: cfg.admin_email.clone(),
            password: cfg.admin_password.clone(),
            username: "admin".into(),
            role: "admin".into(),
            balance: 0.0,
            status: "active".into(),
            allowed_groups: vec![],
            totp: false,
            notes: String::new(),
        });
        if cfg.compliance_accepted {
            st.compliance_accepted.push(admin_id);
        }
        for (email, password) in &cfg.users {
            let id = st.id();
            st.users.push(User {
                id,
                email: email.clone(),
                password: password.clone(),
                username: email.split('@').next().unwrap_or("user").into(),
                role: "user".into(),
                balance: 0.0,
                status: "active".into(),
                allowed_groups: vec![],
                totp: false,
                notes: String::new(),
            });
        }
        let mut settings = Map::new();
        settings.insert("site_name".into(), json!("Sub2API"));
        settings.insert(
            "version".into(),
            json!(cfg
                .version_override
                .clone()
                .unwrap_or_else(|| cfg.profile.version().to_string())),
        );
        settings.insert("backend_mode_enabled".into(), json!(cfg.backend_mode));
        settings.insert("turnstile_enabled".into(), json!(cfg.turnstile));
        settings.insert("totp_enabled".into(), json!(true));
        settings.insert("payment_enabled".into(), json!(false));
        let inner = Arc::new(Inner {
            cfg,
            state: Mutex::new(st),
            faults: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            settings: Mutex::new(settings),
            spans: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route(
                "/health",
                get(|| async { axum::Json(json!({"status": "ok"})) }),
            )
            .route("/api/v1/settings/public", get(public_settings))
            .route("/api/v1/auth/login", post(login))
            .route("/api/v1/admin/{*rest}", any(admin_entry))
            .route("/api/v1/keys", any(user_keys))
            .route("/api/v1/keys/{id}", any(user_key_item))
            .route("/v1/models", get(gateway::models))
            .route("/models", get(gateway::models))
            .route("/v1/chat/completions", post(gateway::chat))
            .route("/chat/completions", post(gateway::chat))
            .fallback(|| async { plain_404() })
            .layer(axum::middleware::from_fn_with_state(
                inner.clone(),
                record_span,
            ))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(no_delay(listener), app).await;
        });
        FakeHost { addr, inner, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin API key in force: the configured one, a regenerated one,
    /// or empty on a fresh host whose compliance text is not yet accepted.
    pub fn admin_api_key(&self) -> String {
        self.inner.state.lock().unwrap().admin_api_key.clone()
    }

    pub fn config(&self) -> &FakeHostConfig {
        &self.inner.cfg
    }

    /// Adds a fault hook.
    pub fn add_fault(&self, fault: Fault) {
        self.inner.faults.lock().unwrap().push(fault);
    }

    /// Accepts the compliance text for the first admin (as the operator
    /// would in the host's panel).
    pub fn accept_compliance(&self) {
        let mut st = self.inner.state.lock().unwrap();
        if let Some(id) = st.first_admin().map(|u| u.id) {
            st.compliance_accepted.push(id);
        }
    }

    /// Publishes a new compliance version: every admin (and so the admin
    /// key, which acts as the first admin) is asked again (§12.1).
    pub fn bump_compliance(&self, version: &str) {
        let mut st = self.inner.state.lock().unwrap();
        st.compliance_version = version.into();
        st.compliance_accepted.clear();
    }

    /// Completions the gateway billed, oldest first.
    pub fn usage(&self) -> Vec<Usage> {
        self.inner.state.lock().unwrap().usage.clone()
    }

    /// Replaces the admin API key, as `POST …/admin-api-key/regenerate` does:
    /// the old key stops working at once.
    pub fn regenerate_admin_key(&self, new_key: &str) {
        self.inner.state.lock().unwrap().admin_api_key = new_key.into();
    }

    /// Sets a public setting (e.g. `backend_mode_enabled`).
    pub fn set_public_setting(&self, key: &str, value: Value) {
        self.inner
            .settings
            .lock()
            .unwrap()
            .insert(key.into(), value);
    }

    /// Account creates seen for a marker.
    pub fn creates_for_marker(&self, marker: &str) -> u32 {
        *self
            .inner
            .state
            .lock()
            .unwrap()
            .creates_per_marker
            .get(marker)
            .unwrap_or(&0)
    }

    /// Calls seen for `METHOD /route` (numeric path segments as `:id`).
    pub fn calls(&self, route: &str) -> u32 {
        *self
            .inner
            .state
            .lock()
            .unwrap()
            .calls
            .get(route)
            .unwrap_or(&0)
    }

    /// Every request seen so far, in the order they were answered.
    pub fn call_spans(&self) -> Vec<CallSpan> {
        self.inner.spans.lock().unwrap().clone()
    }

    /// The most requests the host was handling at once among those that
    /// came in at or after `since` (an answer and a request at the same
    /// instant: the answer first).
    pub fn most_at_once(&self, since: std::time::Instant) -> usize {
        let mut edges: Vec<(std::time::Instant, i32)> = self
            .call_spans()
            .iter()
            .filter(|s| s.start >= since)
            .flat_map(|s| [(s.start, 1), (s.end, -1)])
            .collect();
        edges.sort();
        edges
            .iter()
            .scan(0i32, |n, (_, d)| {
                *n += d;
                Some(*n)
            })
            .max()
            .unwrap_or(0) as usize
    }

    /// Total calls seen on every route.
    pub fn total_calls(&self) -> u32 {
        self.inner.state.lock().unwrap().calls.values().sum()
    }

    /// Total calls under `/api/v1/admin`.
    pub fn admin_calls(&self) -> u32 {
        self.inner
            .state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(k, _)| k.contains("/api/v1/admin/"))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Writes (POST, PUT, PATCH, DELETE) seen on the admin and user routes.
    pub fn write_calls(&self) -> u32 {
        self.inner
            .state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(k, _)| {
                let (m, p) = k.split_once(' ').unwrap_or(("", k));
                m != "GET"
                    && (p.starts_with("/api/v1/admin/") || p.starts_with("/api/v1/keys"))
                    && !p.starts_with("/api/v1/admin/accounts/:id/test")
            })
            .map(|(_, v)| *v)
            .sum()
    }

    /// Runs `f` on the state (for assertions and scenario set-up).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.inner.state.lock().unwrap())
    }
}

// ---------- response helpers (reference §2.5) ----------

pub(crate) fn ok(data: Value) -> Response {
    let mut body = json!({"code": 0, "message": "success"});
    if !data.is_null() {
        body["data"] = data;
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Handler/service error: `code` equals the HTTP status.
pub(crate) fn err(status: u16, reason: &str, message: &str) -> Response {
    let mut body = json!({"code": status, "message": message});
    if !reason.is_empty() {
        body["reason"] = json!(reason);
    }
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// Middleware error: a string `code`.
pub(crate) fn mw_err(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

/// Gin's answer for a route that is not registered.
pub(crate) fn plain_404() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "text/plain")],
        "404 page not found",
    )
        .into_response()
}

fn paginate(items: Vec<Value>, q: &Map<String, Value>) -> Value {
    let total = items.len();
    paginate_with(items.into_iter(), total, q, |v| v)
}

/// Pages `items` (of which there are `total`), building the answer only
/// for the page asked for, as the real host's `LIMIT`/`OFFSET` does.
fn paginate_with<T>(
    items: impl Iterator<Item = T>,
    total: usize,
    q: &Map<String, Value>,
    dto: impl Fn(T) -> Value,
) -> Value {
    let page = q
        .get("page")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let size = q
        .get("page_size")
        .or_else(|| q.get("limit"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|s| (1..=1000).contains(s))
        .unwrap_or(20);
    let pages = total.div_ceil(size).max(1);
    let slice: Vec<Value> = items.skip((page - 1) * size).take(size).map(dto).collect();
    json!({"items": slice, "total": total, "page": page, "page_size": size, "pages": pages})
}

fn query_map(uri: &Uri) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(q) = uri.query() {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(
                k.to_string(),
                json!(v.replace("%40", "@").replace('+', " ")),
            );
        }
    }
    m
}

pub(crate) fn route_key(method: &Method, path: &str) -> String {
    let norm: Vec<String> = path
        .split('/')
        .map(|s| {
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
                ":id".into()
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("{method} {}", norm.join("/"))
}

/// Applies a fault for this request, if one matches. `Some(resp)` ends the
/// request; a `DropAfterCommit` is reported through the returned flag.
pub(crate) async fn take_fault(
    inner: &Shared,
    method: &Method,
    path: &str,
) -> (Option<Response>, bool) {
    let hit = {
        let mut faults = inner.faults.lock().unwrap();
        let pos = faults
            .iter()
            .position(|f| f.times > 0 && f.method == *method && path.starts_with(&f.path_prefix));
        pos.map(|i| {
            faults[i].times -= 1;
            let k = faults[i].kind.clone();
            if faults[i].times == 0 {
                faults.remove(i);
            }
            k
        })
    };
    match hit {
        Some(FaultKind::Status(s, body)) => (
            Some((StatusCode::from_u16(s).unwrap(), axum::Json(body)).into_response()),
            false,
        ),
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            (None, false)
        }
        Some(FaultKind::DropAfterCommit) => (None, true),
        None => (None, false),
    }
}

/// A response whose body fails mid-way: the client sees a broken connection.
pub(crate) fn dropped() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped by fault hook",
        ))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

// ---------- public routes ----------

async fn public_settings(AxState(inner): AxState<Shared>) -> Response {
    inner
        .state
        .lock()
        .unwrap()
        .calls
        .entry("GET /api/v1/settings/public".into())
        .and_modify(|c| *c += 1)
        .or_insert(1);
    if let (Some(r), _) = take_fault(&inner, &Method::GET, "/api/v1/settings/public").await {
        return r;
    }
    ok(Value::Object(inner.settings.lock().unwrap().clone()))
}

async fn login(AxState(inner): AxState<Shared>, body: Bytes) -> Response {
    if let (Some(r), _) = take_fault(&inner, &Method::POST, "/api/v1/auth/login").await {
        return r;
    }
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        return err(400, "", "Invalid request: malformed JSON");
    };
    let email = b.get("email").and_then(Value::as_str).unwrap_or("");
    let password = b.get("password").and_then(Value::as_str).unwrap_or("");
    if email.is_empty() || password.is_empty() {
        return err(400, "", "Invalid request: email and password are required");
    }
    let settings = inner.settings.lock().unwrap().clone();
    let mut st = inner.state.lock().unwrap();
    let Some(user) = st.user_by_email(email).cloned() else {
        return err(401, "INVALID_CREDENTIALS", "invalid email or password");
    };
    if user.password != password {
        return err(401, "INVALID_CREDENTIALS", "invalid email or password");
    }
    if user.role != "admin" && settings.get("backend_mode_enabled") == Some(&json!(true)) {
        return err(
            403,
            "BACKEND_MODE_ADMIN_ONLY",
            "backend mode: only admins may sign in",
        );
    }
    if settings.get("turnstile_enabled") == Some(&json!(true)) && b.get("turnstile_token").is_none()
    {
        return err(
            400,
            "TURNSTILE_VERIFICATION_FAILED",
            "turnstile token is required",
        );
    }
    if user.totp {
        return ok(
            json!({"requires_2fa": true, "temp_token": "tmp", "user_email_masked": "a***@x"}),
        );
    }
    let token = format!("jwt-{}-{}", user.id, st.id());
    st.jwts.insert(token.clone(), user.id);
    ok(json!({
        "access_token": token, "refresh_token": format!("refresh-{}", user.id),
        "expires_in": 86400, "token_type": "Bearer", "user": user.dto(),
    }))
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        })
}

/// User routes: `POST /api/v1/keys` (idempotent) and `GET /api/v1/keys`.
async fn user_keys(
    AxState(inner): AxState<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let settings_backend =
        inner.settings.lock().unwrap().get("backend_mode_enabled") == Some(&json!(true));
    let mut st = inner.state.lock().unwrap();
    let Some(uid) = bearer(&headers).and_then(|t| st.jwts.get(&t).copied()) else {
        return mw_err(401, "UNAUTHORIZED", "authorization required");
    };
    let user = st.users.iter().find(|u| u.id == uid).cloned().unwrap();
    if settings_backend && user.role != "admin" {
        return mw_err(403, "BACKEND_MODE_ADMIN_ONLY", "backend mode");
    }
    if method == Method::GET {
        let items: Vec<Value> = st
            .keys
            .iter()
            .filter(|k| k.user_id == uid)
            .map(ApiKey::dto)
            .collect();
        return ok(paginate(items, &Map::new()));
    }
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        return err(400, "", "Invalid request: malformed JSON");
    };
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|_| inner.cfg.honour_idempotency);
    let fp = format!("user:{uid}:POST /api/v1/keys:{b}");
    if let Some(k) = &idem {
        if let Some(r) = st.idempotency.get(&format!("u{uid}:{k}")) {
            if r.fingerprint != fp {
                return err(
                    409,
                    "IDEMPOTENCY_KEY_CONFLICT",
                    "idempotency key reused with a different payload",
                );
            }
            let mut resp = (
                StatusCode::from_u16(r.status).unwrap(),
                axum::Json(r.body.clone()),
            )
                .into_response();
            resp.headers_mut()
                .insert("x-idempotency-replayed", "true".parse().unwrap());
            return resp;
        }
    }
    let Some(name) = b
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return err(400, "", "Invalid request: name is required");
    };
    let group_id = b.get("group_id").and_then(Value::as_i64).filter(|g| *g > 0);
    if let Some(gid) = group_id {
        let Some(g) = st.group(gid).cloned() else {
            return err(404, "GROUP_NOT_FOUND", "group not found");
        };
        let allowed = if g.subscription_type == "subscription" {
            st.subscriptions
                .iter()
                .any(|s| s.user_id == uid && s.group_id == gid && s.active())
        } else {
            !g.is_exclusive || user.allowed_groups.contains(&gid)
        };
        if !allowed {
            return err(
                403,
                "GROUP_NOT_ALLOWED",
                "you are not allowed to bind this group",
            );
        }
    }
    let id = st.id();
    let key = format!(
        "sk-{:064x}",
        (id as u128) * 0x9e37_79b9_7f4a_7c15 + 0x1234_5678
    );
    let k = ApiKey {
        id,
        user_id: uid,
        key,
        name: name.into(),
        group_id,
        status: "active".into(),
    };
    st.keys.push(k.clone());
    let body = json!({"code": 0, "message": "success", "data": k.dto()});
    if let Some(ik) = idem {
        st.idempotency.insert(
            format!("u{uid}:{ik}"),
            Replay {
                fingerprint: fp,
                status: 200,
                body: body.clone(),
            },
        );
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `GET`/`DELETE /api/v1/keys/:id` with the user's JWT (reference §6.3).
async fn user_key_item(
    AxState(inner): AxState<Shared>,
    method: Method,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut st = inner.state.lock().unwrap();
    let Some(uid) = bearer(&headers).and_then(|t| st.jwts.get(&t).copied()) else {
        return mw_err(401, "UNAUTHORIZED", "authorization required");
    };
    let Some(pos) = id
        .parse::<i64>()
        .ok()
        .and_then(|id| st.keys.iter().position(|k| k.id == id && k.user_id == uid))
    else {
        return err(404, "API_KEY_NOT_FOUND", "api key not found");
    };
    match method {
        Method::GET => ok(st.keys[pos].dto()),
        Method::DELETE => {
            st.keys.remove(pos);
            ok(json!({"message": "API key deleted successfully"}))
        }
        _ => err(405, "", "method not allowed"),
    }
}

// ---------- admin API ----------

/// Auth → compliance guard → route, in the host's middleware order (§2.4).
async fn admin_entry(
    AxState(inner): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    inner
        .state
        .lock()
        .unwrap()
        .calls
        .entry(route_key(&method, &path))
        .and_modify(|c| *c += 1)
        .or_insert(1);
    // Auth: x-api-key alone when present, else a Bearer JWT.
    let actor = {
        let st = inner.state.lock().unwrap();
        if let Some(k) = headers.get("x-api-key") {
            if st.admin_api_key.is_empty() || k.to_str().ok() != Some(st.admin_api_key.as_str()) {
                return mw_err(401, "INVALID_ADMIN_KEY", "Invalid admin API key");
            }
            match st.first_admin() {
                Some(u) => u.id,
                None => return mw_err(500, "INTERNAL_ERROR", "No admin user found"),
            }
        } else if let Some(t) = bearer(&headers) {
            if t.is_empty() {
                return mw_err(401, "UNAUTHORIZED", "Authorization required");
            }
            let Some(uid) = st.jwts.get(&t).copied() else {
                return mw_err(401, "INVALID_TOKEN", "Invalid token");
            };
            let u = st.users.iter().find(|u| u.id == uid).unwrap();
            if u.role != "admin" {
                return mw_err(403, "FORBIDDEN", "Admin access required");
            }
            uid
        } else {
            return mw_err(401, "UNAUTHORIZED", "Authorization required");
        }
    };
    let compliance_route =
        path == "/api/v1/admin/compliance" || path.starts_with("/api/v1/admin/compliance/");
    if inner.cfg.profile.has_compliance() && !compliance_route {
        let (accepted, version) = {
            let st = inner.state.lock().unwrap();
            (
                st.compliance_accepted.contains(&actor),
                st.compliance_version.clone(),
            )
        };
        if !accepted {
            return (
                StatusCode::LOCKED,
                axum::Json(json!({
                    "code": "ADMIN_COMPLIANCE_ACK_REQUIRED",
                    "message": "administrator compliance acknowledgement is required",
                    "metadata": {
                        "version": version,
                        "document_path_zh": "/legal/compliance.zh.md",
                        "document_path_en": "/legal/compliance.en.md",
                        "document_url_zh": "https://example.invalid/compliance.zh",
                        "document_url_en": "https://example.invalid/compliance.en",
                    }
                })),
            )
                .into_response();
        }
    }
    let (fault, drop_after) = take_fault(&inner, &method, &path).await;
    if let Some(r) = fault {
        return r;
    }
    let rest = path.trim_start_matches("/api/v1/admin/").to_string();
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let q = query_map(&uri);
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    if !body.is_empty() && json_body.is_none() {
        return err(400, "", "Invalid request: malformed JSON body");
    }
    // The CN balance route asks the provider with the account's key, as
    // the host does: outside the state lock.
    if method == Method::GET
        && segs.len() == 4
        && segs[..2] == ["cn-providers", "accounts"]
        && segs[3] == "balance"
        && inner.cfg.profile.has_cn_platforms()
    {
        return gateway::cn_balance(&inner, segs[2]).await;
    }
    // The account test streams; it is handled outside the state lock.
    if method == Method::POST && segs.len() == 3 && segs[0] == "accounts" && segs[2] == "test" {
        return gateway::account_test(&inner, segs[1], json_body.unwrap_or(json!({}))).await;
    }
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(k) = &idem {
        if k.is_empty() || k.len() > 128 || !k.bytes().all(|b| (33..=126).contains(&b)) {
            return err(400, "IDEMPOTENCY_KEY_INVALID", "invalid idempotency key");
        }
    }
    let resp = admin_route(
        &inner,
        actor,
        &method,
        &segs,
        &q,
        json_body,
        idem.as_deref(),
    );
    if drop_after {
        return dropped();
    }
    resp
}

fn body_field<'a>(b: &'a Option<Value>, k: &str) -> Option<&'a Value> {
    b.as_ref().and_then(|v| v.get(k))
}

fn ids(v: Option<&Value>) -> Option<Vec<i64>> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
}

/// Routes that honour `Idempotency-Key` (§2.6).
fn idempotent_route(method: &Method, segs: &[&str]) -> bool {
    *method == Method::POST
        && matches!(
            segs,
            ["accounts"] | ["accounts", "batch"] | ["users", _, "balance"]
        )
}

fn admin_route(
    inner: &Shared,
    actor: i64,
    method: &Method,
    segs: &[&str],
    q: &Map<String, Value>,
    b: Option<Value>,
    idem: Option<&str>,
) -> Response {
    let profile = inner.cfg.profile;
    let mut st = inner.state.lock().unwrap();
    // Idempotent replay.
    let idem_slot = idem
        .filter(|_| inner.cfg.honour_idempotency && idempotent_route(method, segs))
        .map(|k| {
            (
                format!("admin:{actor}:{k}"),
                format!(
                    "{method} {}:{}",
                    segs.join("/"),
                    b.clone().unwrap_or(Value::Null)
                ),
            )
        });
    if let Some((slot, fp)) = &idem_slot {
        if let Some(r) = st.idempotency.get(slot) {
            if &r.fingerprint != fp {
                return err(
                    409,
                    "IDEMPOTENCY_KEY_CONFLICT",
                    "idempotency key reused with a different payload",
                );
            }
            let mut resp = (
                StatusCode::from_u16(r.status).unwrap(),
                axum::Json(r.body.clone()),
            )
                .into_response();
            resp.headers_mut()
                .insert("x-idempotency-replayed", "true".parse().unwrap());
            return resp;
        }
    }
    let resp = route_inner(&mut st, profile, actor, method, segs, q, &b);
    if let Some((slot, fp)) = idem_slot {
        if resp.0 < 500 {
            st.idempotency.insert(
                slot,
                Replay {
                    fingerprint: fp,
                    status: resp.0,
                    body: resp.1.clone(),
                },
            );
        }
    }
    match resp.2 {
        true => plain_404(),
        false => (StatusCode::from_u16(resp.0).unwrap(), axum::Json(resp.1)).into_response(),
    }
}

type R = (u16, Value, bool);

fn rok(data: Value) -> R {
    let mut body = json!({"code": 0, "message": "success"});
    if !data.is_null() {
        body["data"] = data;
    }
    (200, body, false)
}

fn rerr(status: u16, reason: &str, message: &str) -> R {
    let mut body = json!({"code": status, "message": message});
    if !reason.is_empty() {
        body["reason"] = json!(reason);
    }
    (status, body, false)
}

const MISSING: R = (404, Value::Null, true);

fn route_inner(
    st: &mut State,
    profile: Profile,
    actor: i64,
    method: &Method,
    segs: &[&str],
    q: &Map<String, Value>,
    b: &Option<Value>,
) -> R {
    let id_at = |i: usize| segs.get(i).and_then(|s| s.parse::<i64>().ok());
    let m = method.as_str();
    match (m, segs) {
        // ----- compliance -----
        ("GET", ["compliance"]) if profile.has_compliance() => {
            let accepted = st.compliance_accepted.contains(&actor);
            let mut d = json!({
                "required": !accepted, "version": st.compliance_version,
                "document_path_zh": "/legal/compliance.zh.md", "document_path_en": "/legal/compliance.en.md",
                "document_url_zh": "https://example.invalid/compliance.zh",
                "document_url_en": "https://example.invalid/compliance.en",
                "ack_phrase_en": crate::COMPLIANCE_PHRASE_EN, "ack_phrase_zh": "我已阅读、理解并同意",
            });
            if accepted {
                d["acknowledgement"] =
                    json!({"version": st.compliance_version, "admin_user_id": actor});
            }
            rok(d)
        }
        ("POST", ["compliance", "accept"]) if profile.has_compliance() => {
            let phrase = body_field(b, "phrase")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            if phrase != crate::COMPLIANCE_PHRASE_EN && phrase != "我已阅读、理解并同意" {
                return rerr(
                    400,
                    "ADMIN_COMPLIANCE_INVALID_PHRASE",
                    "the acknowledgement phrase does not match",
                );
            }
            if !st.compliance_accepted.contains(&actor) {
                st.compliance_accepted.push(actor);
            }
            rok(json!({"required": false, "version": st.compliance_version}))
        }
        // The one installation-wide admin key (§2.3); behind the gate.
        ("GET", ["settings", "admin-api-key"]) => {
            let k = &st.admin_api_key;
            rok(if k.is_empty() {
                json!({"exists": false, "masked_key": ""})
            } else {
                json!({"exists": true, "masked_key": format!("{}...{}", &k[..10.min(k.len())], &k[k.len().saturating_sub(4)..])})
            })
        }
        ("POST", ["settings", "admin-api-key", "regenerate"]) => {
            st.admin_api_key = format!("admin-{}", random_hex(32));
            rok(json!({"key": st.admin_api_key}))
        }
        ("DELETE", ["settings", "admin-api-key"]) => {
            st.admin_api_key.clear();
            rok(json!({"message": "Admin API key deleted"}))
        }

        // ----- accounts -----
        ("GET", ["accounts"]) => {
            let search = q
                .get("search")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase();
            let group = q
                .get("group")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<i64>().ok());
            let platform = q.get("platform").and_then(Value::as_str);
            let items: Vec<&Account> = st
                .accounts
                .iter()
                .filter(|a| !a.deleted)
                .filter(|a| search.is_empty() || a.name.to_lowercase().contains(&search))
                .filter(|a| group.is_none_or(|g| a.group_ids.contains(&g)))
                .filter(|a| platform.is_none_or(|p| a.platform == p))
                .collect();
            let total = items.len();
            rok(paginate_with(items.into_iter(), total, q, |a| {
                a.dto(profile.redacts(), &st.groups)
            }))
        }
        ("GET", ["accounts", _]) => {
            match id_at(1).and_then(|id| st.accounts.iter().find(|a| a.id == id && !a.deleted)) {
                Some(a) => rok(a.dto(profile.redacts(), &st.groups)),
                None => rerr(404, "ACCOUNT_NOT_FOUND", "account not found"),
            }
        }
        ("POST", ["accounts"]) => {
            match create_account(st, profile, b.as_ref().unwrap_or(&Value::Null)) {
                Ok(v) => rok(v),
                Err(e) => e,
            }
        }
        ("POST", ["accounts", "batch"]) => {
            let list = body_field(b, "accounts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if list.is_empty() {
                return rerr(
                    400,
                    "",
                    "Invalid request: accounts must contain at least one item",
                );
            }
            let (mut success, mut failed, mut results) = (0, 0, vec![]);
            for a in &list {
                let name = a.get("name").cloned().unwrap_or(Value::Null);
                match create_account(st, profile, a) {
                    Ok(v) => {
                        success += 1;
                        results.push(json!({"name": name, "id": v["id"], "success": true}));
                    }
                    Err(e) => {
                        failed += 1;
                        results
                            .push(json!({"name": name, "success": false, "error": e.1["message"]}));
                    }
                }
            }
            rok(json!({"success": success, "failed": failed, "results": results}))
        }
        ("PUT", ["accounts", _]) => {
            let Some(id) = id_at(1) else {
                return rerr(400, "", "Invalid account id");
            };
            let group_ids = ids(body_field(b, "group_ids"));
            if let Some(g) = &group_ids {
                if g.iter().any(|gid| st.group(*gid).is_none()) {
                    return rerr(400, "GROUP_NOT_FOUND", "one or more groups do not exist");
                }
            }
            let Some(a) = st.accounts.iter_mut().find(|a| a.id == id && !a.deleted) else {
                return rerr(404, "ACCOUNT_NOT_FOUND", "account not found");
            };
            if let Some(n) = body_field(b, "name")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                a.name = n.into();
            }
            if let Some(n) = body_field(b, "notes") {
                a.notes = n.as_str().map(str::to_string);
            }
            if let Some(c) = body_field(b, "credentials").and_then(Value::as_object) {
                // Replacement that keeps omitted sensitive keys (§3.4).
                let mut merged: Map<String, Value> = c.clone();
                for k in SENSITIVE {
                    if !merged.contains_key(*k) {
                        if let Some(v) = a.credentials.get(*k) {
                            merged.insert((*k).into(), v.clone());
                        }
                    }
                }
                a.credentials = merged;
            }
            if let Some(e) = body_field(b, "extra").and_then(Value::as_object) {
                a.extra = e.clone();
            }
            if let Some(s) = body_field(b, "status").and_then(Value::as_str) {
                if !["active", "inactive", "error"].contains(&s) {
                    return rerr(400, "", "Invalid request: status");
                }
                a.status = s.into();
            }
            if let Some(p) = body_field(b, "priority").and_then(Value::as_i64) {
                a.priority = p;
            }
            if let Some(sch) = body_field(b, "schedulable").and_then(Value::as_bool) {
                a.schedulable = sch;
            }
            if let Some(g) = group_ids {
                a.group_ids = g;
            }
            let v = a.dto(profile.redacts(), &st.groups);
            st.models_cache.clear();
            rok(v)
        }
        ("DELETE", ["accounts", _]) => {
            if let Some(a) = id_at(1).and_then(|id| st.accounts.iter_mut().find(|a| a.id == id)) {
                a.deleted = true;
                a.group_ids.clear();
            }
            st.models_cache.clear();
            rok(json!({"message": "Account deleted successfully"}))
        }
        ("POST", ["accounts", _, "clear-error"]) | ("POST", ["accounts", _, "recover-state"]) => {
            match id_at(1).and_then(|id| st.accounts.iter_mut().find(|a| a.id == id && !a.deleted))
            {
                Some(a) => {
                    a.status = "active".into();
                    a.error_message.clear();
                    a.rate_limit_reset_at = None;
                    let v = a.dto(profile.redacts(), &st.groups);
                    rok(v)
                }
                None => rerr(404, "ACCOUNT_NOT_FOUND", "account not found"),
            }
        }
        ("POST", ["accounts", _, "schedulable"]) => {
            let Some(s) = body_field(b, "schedulable").and_then(Value::as_bool) else {
                return rerr(400, "", "Invalid request: schedulable is required");
            };
            match id_at(1).and_then(|id| st.accounts.iter_mut().find(|a| a.id == id && !a.deleted))
            {
                Some(a) => {
                    a.schedulable = s;
                    let v = a.dto(profile.redacts(), &st.groups);
                    rok(v)
                }
                None => rerr(404, "ACCOUNT_NOT_FOUND", "account not found"),
            }
        }
        ("GET", ["accounts", _, "models"]) => {
            match id_at(1).and_then(|id| st.accounts.iter().find(|a| a.id == id && !a.deleted)) {
                Some(a) => rok(json!(a.mapping().keys().cloned().collect::<Vec<_>>())),
                None => rerr(404, "ACCOUNT_NOT_FOUND", "account not found"),
            }
        }

        // ----- groups -----
        ("GET", ["groups"]) => {
            let items: Vec<Value> = st
                .groups
                .iter()
                .filter(|g| !g.deleted)
                .map(|g| g.dto(profile, &st.accounts))
                .collect();
            rok(paginate(items, q))
        }
        ("GET", ["groups", "all"]) => {
            let items: Vec<Value> = st
                .groups
                .iter()
                .filter(|g| !g.deleted && g.status == "active")
                .map(|g| g.dto(profile, &st.accounts))
                .collect();
            rok(json!(items))
        }
        ("GET", ["groups", _]) => match id_at(1).and_then(|id| st.group(id)) {
            Some(g) => rok(g.dto(profile, &st.accounts)),
            None => rerr(404, "GROUP_NOT_FOUND", "group not found"),
        },
        ("POST", ["groups"]) => {
            let name = body_field(b, "name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string();
            if name.is_empty() || name.chars().count() > 100 {
                return rerr(
                    400,
                    "",
                    "Invalid request: name is required (at most 100 characters)",
                );
            }
            let platform = body_field(b, "platform")
                .and_then(Value::as_str)
                .unwrap_or("");
            let platform = if platform.is_empty() {
                "anthropic"
            } else {
                platform
            };
            if !profile.platforms().contains(&platform) {
                return rerr(400, "", &format!("Invalid request: Key: 'CreateGroupRequest.Platform' Error:Field validation for 'Platform' failed on the 'oneof' tag ({platform})"));
            }
            let rate = body_field(b, "rate_multiplier")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            if rate <= 0.0 {
                return rerr(500, "", "internal error");
            }
            if st.groups.iter().any(|g| !g.deleted && g.name == name) {
                return rerr(409, "GROUP_EXISTS", "group name already exists");
            }
            let lim = |k: &str| {
                body_field(b, k)
                    .and_then(|v| {
                        v.as_f64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    })
                    .unwrap_or(0.0)
            };
            let id = st.id();
            let model_list = profile
                .allowlist_field()
                .and_then(|f| body_field(b, f))
                .cloned();
            let model_pricing = if profile.has_group_pricing() {
                body_field(b, "model_pricing")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            let g = Group {
                id,
                name,
                description: body_field(b, "description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
                platform: platform.into(),
                rate_multiplier: rate,
                is_exclusive: body_field(b, "is_exclusive")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                status: "active".into(),
                subscription_type: body_field(b, "subscription_type")
                    .and_then(Value::as_str)
                    .unwrap_or("standard")
                    .into(),
                limits: [
                    lim("daily_limit_usd"),
                    lim("weekly_limit_usd"),
                    lim("monthly_limit_usd"),
                ],
                deleted: false,
                model_list,
                model_pricing,
            };
            let v = g.dto(profile, &st.accounts);
            st.groups.push(g);
            rok(v)
        }
        ("PUT", ["groups", _]) => {
            let Some(id) = id_at(1) else {
                return rerr(400, "", "Invalid group id");
            };
            let accounts = st.accounts.clone();
            let Some(g) = st.groups.iter_mut().find(|g| g.id == id && !g.deleted) else {
                return rerr(404, "GROUP_NOT_FOUND", "group not found");
            };
            if let Some(n) = body_field(b, "name")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                g.name = n.into();
            }
            if let Some(r) = body_field(b, "rate_multiplier").and_then(Value::as_f64) {
                if r <= 0.0 {
                    return rerr(500, "", "internal error");
                }
                g.rate_multiplier = r;
            }
            if let Some(s) = body_field(b, "status").and_then(Value::as_str) {
                g.status = s.into();
            }
            if let Some(e) = body_field(b, "is_exclusive").and_then(Value::as_bool) {
                g.is_exclusive = e;
            }
            // The limits are always overwritten: omitted means unlimited (§4.3).
            let lim = |k: &str| {
                body_field(b, k)
                    .and_then(|v| {
                        v.as_f64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    })
                    .unwrap_or(0.0)
            };
            g.limits = [
                lim("daily_limit_usd"),
                lim("weekly_limit_usd"),
                lim("monthly_limit_usd"),
            ];
            // Pointer semantics: absent leaves it, present replaces it.
            if let Some(v) = profile.allowlist_field().and_then(|f| body_field(b, f)) {
                g.model_list = Some(v.clone());
            }
            if profile.has_group_pricing() {
                if let Some(p) = body_field(b, "model_pricing").and_then(Value::as_array) {
                    g.model_pricing = p.clone();
                }
            }
            rok(g.dto(profile, &accounts))
        }
        ("DELETE", ["groups", _]) => {
            let Some(id) = id_at(1) else {
                return rerr(400, "", "Invalid group id");
            };
            if st.group(id).is_none() {
                return rerr(404, "GROUP_NOT_FOUND", "group not found");
            }
            // Cascade (§4.4): subscriptions soft-deleted, allowed_groups and
            // account links removed; keys and the channel link stay.
            for s in st.subscriptions.iter_mut().filter(|s| s.group_id == id) {
                s.revoked = true;
            }
            for u in st.users.iter_mut() {
                u.allowed_groups.retain(|g| *g != id);
            }
            for a in st.accounts.iter_mut() {
                a.group_ids.retain(|g| *g != id);
            }
            if let Some(g) = st.groups.iter_mut().find(|g| g.id == id) {
                g.deleted = true;
            }
            rok(json!({"message": "Group deleted successfully"}))
        }

        // ----- channels -----
        (_, ["channels", ..]) if !profile.has_channels() => MISSING,
        ("GET", ["channels"]) => {
            let items: Vec<Value> = st.channels.iter().map(Channel::dto).collect();
            rok(paginate(items, q))
        }
        ("GET", ["channels", _]) => match segs[1].parse::<i64>() {
            Err(_) => rerr(400, "INVALID_CHANNEL_ID", "invalid channel id"),
            Ok(id) => match st.channels.iter().find(|c| c.id == id) {
                Some(c) => rok(c.dto()),
                None => rerr(404, "CHANNEL_NOT_FOUND", "channel not found"),
            },
        },
        ("POST", ["channels"]) | ("PUT", ["channels", _]) => {
            let existing = if m == "PUT" {
                match id_at(1).and_then(|id| st.channels.iter().position(|c| c.id == id)) {
                    Some(i) => Some(i),
                    None => return rerr(404, "CHANNEL_NOT_FOUND", "channel not found"),
                }
            } else {
                None
            };
            let name = body_field(b, "name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string();
            if existing.is_none() && name.is_empty() {
                return rerr(400, "VALIDATION_ERROR", "name is required");
            }
            let self_id = existing.map(|i| st.channels[i].id);
            if !name.is_empty()
                && st
                    .channels
                    .iter()
                    .any(|c| c.name == name && Some(c.id) != self_id)
            {
                return rerr(409, "CHANNEL_EXISTS", "channel name already exists");
            }
            let group_ids = ids(body_field(b, "group_ids"));
            if let Some(gs) = &group_ids {
                for g in gs {
                    if st
                        .channels
                        .iter()
                        .any(|c| Some(c.id) != self_id && c.group_ids.contains(g))
                    {
                        return rerr(
                            409,
                            "GROUP_ALREADY_IN_CHANNEL",
                            "group already belongs to another channel",
                        );
                    }
                }
            }
            let pricing = match body_field(b, "model_pricing").and_then(Value::as_array) {
                Some(list) => {
                    let mut out = vec![];
                    for p in list {
                        let mut p = p.clone();
                        let models = p
                            .get("models")
                            .and_then(Value::as_array)
                            .map(|a| a.len())
                            .unwrap_or(0);
                        if models == 0 || models > 100 {
                            return rerr(
                                400,
                                "VALIDATION_ERROR",
                                "models must have 1 to 100 entries",
                            );
                        }
                        for k in [
                            "input_price",
                            "output_price",
                            "cache_write_price",
                            "cache_read_price",
                        ] {
                            if p.get(k).and_then(Value::as_f64).is_some_and(|v| v < 0.0) {
                                return rerr(400, "NEGATIVE_PRICE", "prices must not be negative");
                            }
                        }
                        if p.get("platform")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .is_empty()
                        {
                            p["platform"] = json!("anthropic");
                        }
                        if p.get("billing_mode").is_none() {
                            p["billing_mode"] = json!("token");
                        }
                        let pid = st.id();
                        p["id"] = json!(pid);
                        out.push(p);
                    }
                    Some(out)
                }
                None => None,
            };
            let bms = body_field(b, "billing_model_source")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !bms.is_empty()
                && !["requested", "upstream", "channel_mapped", "response_model"]
                    .contains(&bms.as_str())
            {
                return rerr(400, "VALIDATION_ERROR", "invalid billing_model_source");
            }
            match existing {
                Some(i) => {
                    let c = &mut st.channels[i];
                    if !name.is_empty() {
                        c.name = name;
                    }
                    if let Some(g) = group_ids {
                        c.group_ids = g;
                    }
                    if let Some(p) = pricing {
                        c.model_pricing = p;
                    }
                    if let Some(mm) = body_field(b, "model_mapping").and_then(Value::as_object) {
                        c.model_mapping = mm.clone();
                    }
                    if !bms.is_empty() {
                        c.billing_model_source = bms;
                    }
                    if let Some(r) = body_field(b, "restrict_models").and_then(Value::as_bool) {
                        c.restrict_models = r;
                    }
                    if let Some(s) = body_field(b, "status")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                    {
                        c.status = s.into();
                    }
                    rok(c.dto())
                }
                None => {
                    let id = st.id();
                    let c = Channel {
                        id,
                        name,
                        description: body_field(b, "description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .into(),
                        status: "active".into(),
                        group_ids: group_ids.unwrap_or_default(),
                        model_pricing: pricing.unwrap_or_default(),
                        model_mapping: body_field(b, "model_mapping")
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default(),
                        billing_model_source: if bms.is_empty() {
                            "channel_mapped".into()
                        } else {
                            bms
                        },
                        restrict_models: body_field(b, "restrict_models")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        created_at: now_rfc3339(),
                    };
                    let v = c.dto();
                    st.channels.push(c);
                    rok(v)
                }
            }
        }
        ("DELETE", ["channels", _]) => {
            match id_at(1).and_then(|id| st.channels.iter().position(|c| c.id == id)) {
                Some(i) => {
                    st.channels.remove(i);
                    rok(json!({"message": "Channel deleted successfully"}))
                }
                None => rerr(404, "CHANNEL_NOT_FOUND", "channel not found"),
            }
        }

        // ----- plans -----
        ("GET", ["payment", "plans"]) if profile.has_plans() => rok(json!([])),

        // ----- users -----
        ("GET", ["users"]) => {
            let search = q
                .get("search")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase();
            let items: Vec<Value> = st
                .users
                .iter()
                .filter(|u| {
                    search.is_empty()
                        || u.email.to_lowercase().contains(&search)
                        || u.username.to_lowercase().contains(&search)
                })
                .map(User::dto)
                .collect();
            rok(paginate(items, q))
        }
        ("GET", ["users", _]) => match id_at(1).and_then(|id| st.users.iter().find(|u| u.id == id))
        {
            Some(u) => rok(u.dto()),
            None => rerr(404, "USER_NOT_FOUND", "user not found"),
        },
        ("POST", ["users"]) => {
            let email = body_field(b, "email")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string();
            let password = body_field(b, "password")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if email.is_empty() || password.len() < 6 {
                return rerr(
                    400,
                    "",
                    "Invalid request: email and a password of at least 6 characters are required",
                );
            }
            if st.user_by_email(&email).is_some() {
                return rerr(409, "EMAIL_EXISTS", "email already exists");
            }
            let id = st.id();
            let u = User {
                id,
                username: body_field(b, "username")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
                email,
                password,
                role: body_field(b, "role")
                    .and_then(Value::as_str)
                    .unwrap_or("user")
                    .into(),
                balance: body_field(b, "balance")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0),
                status: "active".into(),
                allowed_groups: ids(body_field(b, "allowed_groups")).unwrap_or_default(),
                totp: false,
                notes: body_field(b, "notes")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
            };
            let v = u.dto();
            st.users.push(u);
            rok(v)
        }
        ("PUT", ["users", _]) => {
            match id_at(1).and_then(|id| st.users.iter_mut().find(|u| u.id == id)) {
                Some(u) => {
                    if let Some(s) = body_field(b, "status").and_then(Value::as_str) {
                        u.status = s.into();
                    }
                    if let Some(g) = ids(body_field(b, "allowed_groups")) {
                        u.allowed_groups = g;
                    }
                    if let Some(n) = body_field(b, "notes").and_then(Value::as_str) {
                        u.notes = n.into();
                    }
                    rok(u.dto())
                }
                None => rerr(404, "USER_NOT_FOUND", "user not found"),
            }
        }
        ("DELETE", ["users", _]) => {
            let Some(id) = id_at(1) else {
                return rerr(400, "", "invalid id");
            };
            match st.users.iter().find(|u| u.id == id) {
                None => rerr(404, "USER_NOT_FOUND", "user not found"),
                Some(u) if u.role == "admin" => rerr(500, "", "internal error"),
                Some(_) => {
                    st.users.retain(|u| u.id != id);
                    st.keys.retain(|k| k.user_id != id);
                    rok(json!({"message": "User deleted successfully"}))
                }
            }
        }
        ("POST", ["users", _, "balance"]) => {
            let amount = body_field(b, "balance")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            if amount <= 0.0 {
                return rerr(400, "", "Invalid request: balance must be greater than 0");
            }
            let op = body_field(b, "operation")
                .and_then(Value::as_str)
                .unwrap_or("add")
                .to_string();
            match id_at(1).and_then(|id| st.users.iter_mut().find(|u| u.id == id)) {
                Some(u) => {
                    match op.as_str() {
                        "set" => u.balance = amount,
                        "add" => u.balance += amount,
                        "subtract" => u.balance -= amount,
                        _ => {
                            return rerr(
                                400,
                                "",
                                "Invalid request: operation must be set, add or subtract",
                            )
                        }
                    }
                    rok(u.dto())
                }
                None => rerr(404, "USER_NOT_FOUND", "user not found"),
            }
        }
        ("GET", ["users", _, "api-keys"]) => {
            let Some(id) = id_at(1) else {
                return rerr(400, "", "invalid id");
            };
            let items: Vec<Value> = st
                .keys
                .iter()
                .filter(|k| k.user_id == id)
                .map(ApiKey::dto)
                .collect();
            rok(paginate(items, q))
        }
        ("GET", ["users", _, "subscriptions"]) => {
            let Some(id) = id_at(1) else {
                return rerr(400, "", "invalid id");
            };
            rok(json!(st
                .subscriptions
                .iter()
                .filter(|s| s.user_id == id)
                .map(Subscription::dto)
                .collect::<Vec<_>>()))
        }

        // ----- admin key binding (§6.4) -----
        ("PUT", ["api-keys", _]) => {
            let Some(id) = id_at(1) else {
                return rerr(400, "", "invalid id");
            };
            let Some(kpos) = st.keys.iter().position(|k| k.id == id) else {
                return rerr(404, "API_KEY_NOT_FOUND", "api key not found");
            };
            let gid = body_field(b, "group_id").and_then(Value::as_i64);
            let mut granted = false;
            match gid {
                None => {}
                Some(g) if g < 0 => return rerr(400, "INVALID_GROUP_ID", "invalid group id"),
                Some(0) => st.keys[kpos].group_id = None,
                Some(g) => {
                    let Some(group) = st.group(g).cloned() else {
                        return rerr(400, "GROUP_NOT_ACTIVE", "group not found or inactive");
                    };
                    if group.status != "active" {
                        return rerr(400, "GROUP_NOT_ACTIVE", "group is not active");
                    }
                    let uid = st.keys[kpos].user_id;
                    if group.subscription_type == "subscription" {
                        if !st
                            .subscriptions
                            .iter()
                            .any(|s| s.user_id == uid && s.group_id == g && s.active())
                        {
                            return rerr(
                                400,
                                "SUBSCRIPTION_REQUIRED",
                                "the user has no active subscription to this group",
                            );
                        }
                    } else if group.is_exclusive {
                        let u = st.users.iter_mut().find(|u| u.id == uid).unwrap();
                        if !u.allowed_groups.contains(&g) {
                            u.allowed_groups.push(g);
                            granted = true;
                        }
                    }
                    st.keys[kpos].group_id = Some(g);
                }
            }
            let mut d =
                json!({"api_key": st.keys[kpos].dto(), "auto_granted_group_access": granted});
            if granted {
                d["granted_group_id"] = json!(gid);
            }
            rok(d)
        }

        // ----- subscriptions (§6.5) -----
        ("GET", ["subscriptions"]) => {
            let uid = q
                .get("user_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<i64>().ok());
            let gid = q
                .get("group_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<i64>().ok());
            let items: Vec<Value> = st
                .subscriptions
                .iter()
                .filter(|s| {
                    uid.is_none_or(|u| s.user_id == u) && gid.is_none_or(|g| s.group_id == g)
                })
                .map(Subscription::dto)
                .collect();
            rok(paginate(items, q))
        }
        ("POST", ["subscriptions", "assign"]) => {
            let uid = body_field(b, "user_id")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let gid = body_field(b, "group_id")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let days = body_field(b, "validity_days")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            let notes = body_field(b, "notes")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !(1..=36500).contains(&days) {
                return rerr(400, "", "Invalid request: validity_days");
            }
            let Some(g) = st.group(gid).cloned() else {
                return rerr(500, "", "internal error");
            };
            if g.subscription_type != "subscription" {
                return rerr(
                    400,
                    "GROUP_NOT_SUBSCRIPTION_TYPE",
                    "group is not a subscription group",
                );
            }
            if !st.users.iter().any(|u| u.id == uid) {
                return rerr(404, "USER_NOT_FOUND", "user not found");
            }
            if let Some(s) = st
                .subscriptions
                .iter_mut()
                .find(|s| s.user_id == uid && s.group_id == gid && !s.revoked)
            {
                if s.active() {
                    if s.validity_days == days && s.notes == notes {
                        return rok(s.dto());
                    }
                    let reason = if s.validity_days != days {
                        "validity_days_mismatch"
                    } else {
                        "notes_mismatch"
                    };
                    let mut e = rerr(
                        409,
                        "SUBSCRIPTION_ASSIGN_CONFLICT",
                        "an active subscription already exists",
                    );
                    e.1["metadata"] = json!({"conflict_reason": reason});
                    return e;
                }
                s.status = "active".into();
                s.starts_at = now_unix();
                s.expires_at = now_unix() + days * 86_400;
                s.validity_days = days;
                return rok(s.dto());
            }
            let id = st.id();
            let s = Subscription {
                id,
                user_id: uid,
                group_id: gid,
                status: "active".into(),
                starts_at: now_unix(),
                expires_at: now_unix() + days * 86_400,
                validity_days: days,
                notes,
                revoked: false,
            };
            let v = s.dto();
            st.subscriptions.push(s);
            rok(v)
        }
        ("POST", ["subscriptions", _, "revoke"]) | ("DELETE", ["subscriptions", _]) => {
            match id_at(1).and_then(|id| st.subscriptions.iter_mut().find(|s| s.id == id)) {
                Some(s) => {
                    s.revoked = true;
                    rok(json!({"message": "Subscription revoked"}))
                }
                None => rerr(404, "SUBSCRIPTION_NOT_FOUND", "subscription not found"),
            }
        }
        _ => MISSING,
    }
}

fn create_account(st: &mut State, profile: Profile, b: &Value) -> Result<Value, R> {
    let name = b
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(rerr(
            400,
            "",
            "Invalid request: name is required (1-100 characters)",
        ));
    }
    let platform = b
        .get("platform")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = b
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if platform.is_empty() {
        return Err(rerr(400, "", "Invalid request: platform is required"));
    }
    if ![
        "oauth",
        "setup-token",
        "apikey",
        "upstream",
        "bedrock",
        "service_account",
    ]
    .contains(&kind.as_str())
    {
        return Err(rerr(400, "", "Invalid request: type"));
    }
    let Some(creds) = b.get("credentials").and_then(Value::as_object).cloned() else {
        return Err(rerr(400, "", "Invalid request: credentials are required"));
    };
    let mut group_ids = ids(b.get("group_ids")).unwrap_or_default();
    if group_ids.is_empty() {
        // Implicit binding to `<platform>-default` (§3.2).
        if let Some(g) = st
            .groups
            .iter()
            .find(|g| !g.deleted && g.status == "active" && g.name == format!("{platform}-default"))
        {
            group_ids.push(g.id);
        }
    }
    let mut extra = b
        .get("extra")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // Keys the host writes itself (reference §12.4): not ours, never drift.
    if profile.has_responses_mode() {
        extra
            .entry("openai_responses_mode")
            .or_insert_with(|| json!("auto"));
    }
    if platform == "deepseek" {
        extra.insert("deepseek_balance".into(), json!(3.2));
        extra.insert("deepseek_balance_available".into(), json!(true));
        extra.insert("deepseek_balance_currency".into(), json!("CNY"));
        extra.insert("deepseek_balance_low".into(), json!(false));
        extra.insert("deepseek_balance_updated_at".into(), json!(now_rfc3339()));
    }
    let marker = extra
        .get(MARKER_KEY)
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| name.clone());
    *st.creates_per_marker.entry(marker).or_insert(0) += 1;
    let id = st.id();
    let a = Account {
        id,
        name,
        notes: b.get("notes").and_then(Value::as_str).map(str::to_string),
        platform,
        kind,
        credentials: creds,
        extra,
        group_ids,
        status: "active".into(),
        error_message: String::new(),
        schedulable: true,
        priority: b.get("priority").and_then(Value::as_i64).unwrap_or(0),
        concurrency: b.get("concurrency").and_then(Value::as_i64).unwrap_or(0),
        rate_limit_reset_at: None,
        deleted: false,
        created_at: now_rfc3339(),
    };
    let v = a.dto(profile.redacts(), &st.groups);
    st.accounts.push(a);
    st.models_cache.clear();
    Ok(v)
}
