//! The JSON API under `/api/v1`: the same core operations as the pages,
//! for scripts. Only bearer tokens authenticate here (sessions never do, so
//! no cross-site request can use a browser's cookie); every refusal is a
//! problem-details body with a machine code, the field and a message; a
//! POST with an `Idempotency-Key` is answered once, its answer replayed.

use super::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use provisioning_core::model::{AccessMode, AuditFilter, BatchFilter};
use provisioning_core::ops::{BatchRequest, OpError, Operation, Principal};
use provisioning_core::secrets::sha256_hex;
use provisioning_core::store::Replay;
use serde::Deserialize;
use serde_json::{json, Value};

/// The routes, to be nested under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/hosts", get(hosts))
        .route("/hosts/{id}", get(host))
        .route("/hosts/{id}/probe", post(probe))
        .route("/hosts/{id}/probes", get(probes))
        .route("/packs", get(packs).post(upload_pack))
        .route("/packs/validate", post(validate_pack))
        .route("/batches", get(batches).post(plan))
        .route("/batches/{id}", get(batch))
        .route("/batches/{id}/apply", post(apply))
        .route("/batches/{id}/progress", get(progress))
        .route("/batches/{id}/evidence", get(evidence))
        .route("/audit", get(audit))
        .fallback(not_found)
}

/// The routes the API serves, as (method, path): the README and a test
/// read it so that neither drifts from [`router`].
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/hosts"),
    ("GET", "/api/v1/hosts/{id}"),
    ("POST", "/api/v1/hosts/{id}/probe"),
    ("GET", "/api/v1/hosts/{id}/probes"),
    ("GET", "/api/v1/packs"),
    ("POST", "/api/v1/packs"),
    ("POST", "/api/v1/packs/validate"),
    ("GET", "/api/v1/batches"),
    ("POST", "/api/v1/batches"),
    ("GET", "/api/v1/batches/{id}"),
    ("POST", "/api/v1/batches/{id}/apply"),
    ("GET", "/api/v1/batches/{id}/progress"),
    ("GET", "/api/v1/batches/{id}/evidence"),
    ("GET", "/api/v1/audit"),
];

/// An answer: a JSON body and its status, or a problem.
type Answer = Result<(StatusCode, Value), Problem>;

/// An RFC 9457 problem: `code` is stable for scripts, `field` names what
/// the caller sent wrong, `detail` says it for people.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    detail: String,
    extra: Option<Value>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            field: None,
            detail: detail.into(),
            extra: None,
        }
    }

    fn body(&self) -> Value {
        let mut v = json!({
            "type": format!("urn:relay-manager:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let Some(f) = &self.field {
            v["field"] = json!(f);
        }
        if let Some(x) = &self.extra {
            v["errors"] = x.clone();
        }
        v
    }
}

impl From<OpError> for Problem {
    fn from(e: OpError) -> Problem {
        let field = |status, code, f: provisioning_core::model::FieldError| Problem {
            field: Some(f.field.clone()),
            ..Problem::new(status, code, f.to_string())
        };
        match e {
            OpError::Invalid(f) => field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", f),
            OpError::Conflict(f) => field(StatusCode::CONFLICT, "conflict", f),
            OpError::Throttled(f) => field(StatusCode::TOO_MANY_REQUESTS, "throttled", f),
            OpError::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            OpError::Forbidden(why) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", why.sentence())
            }
            OpError::Unauthorized(why) => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", why)
            }
            OpError::Host(why) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "host_unavailable",
                format!("the host could not be read: {why}"),
            ),
            other => {
                tracing::error!(error = %other, "internal error in the API");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has the details",
                )
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

fn respond(a: Answer) -> Response {
    match a {
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(p) => p.into_response(),
    }
}

/// The principal of the request's bearer token (sessions do not count).
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Principal, Problem> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send an API token as `Authorization: Bearer rmt_…` (admins make them on the API tokens page)",
            )
        })?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
    Ok(state.core.authenticate_token(token).await?)
}

/// Authenticates, then asks the core whether `op` is allowed; the actor
/// name to record.
async fn allowed(
    state: &AppState,
    headers: &HeaderMap,
    op: Operation,
    target: &str,
) -> Result<String, Problem> {
    let p = caller(state, headers).await?;
    Ok(state.core.authorize(&p, op, target).await?)
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Reads a JSON body into `T`; a body that is not one is the caller's
/// mistake, said with where it went wrong.
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        let mut p = Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("the body is not the JSON this route takes: {e}"),
        );
        if let Some(f) = e.to_string().split('`').nth(1) {
            p.field = Some(f.to_string());
        }
        p
    })
}

/// Authenticates, then runs a POST once per `Idempotency-Key`: a retry
/// with the same body gets the first answer again, a different body under
/// the key is refused (409). `run` gets the caller (authenticated once).
async fn once<F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    bytes: &Bytes,
    run: F,
) -> Response
where
    F: FnOnce(Principal) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    // The key belongs to the token: authenticate before looking it up.
    let p = match caller(state, headers).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return respond(run(p).await);
    };
    if key.is_empty() || key.len() > 200 {
        return Problem {
            field: Some("Idempotency-Key".into()),
            ..Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Idempotency-Key must be 1 to 200 characters",
            )
        }
        .into_response();
    }
    let token_id = p.token.map(|(id, _)| id).unwrap_or_default();
    let request_hash = sha256_hex(&format!(
        "{method} {}\n{}",
        uri.path(),
        String::from_utf8_lossy(bytes)
    ));
    match state
        .core
        .store
        .idempotency_claim(token_id, key, &request_hash)
        .await
    {
        Err(e) => Problem::from(OpError::from(e)).into_response(),
        Ok(Replay::Mismatch) => Problem {
            field: Some("Idempotency-Key".into()),
            ..Problem::new(
                StatusCode::CONFLICT,
                "idempotency_mismatch",
                "this Idempotency-Key was used with another request; use a new key",
            )
        }
        .into_response(),
        Ok(Replay::InProgress) => Problem::new(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "the first request with this Idempotency-Key is still being answered; retry shortly",
        )
        .into_response(),
        Ok(Replay::Answer(status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut r =
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            r.headers_mut().insert(
                "idempotent-replay",
                header::HeaderValue::from_static("true"),
            );
            r
        }
        Ok(Replay::First) => {
            let answer = run(p).await;
            let (status, value) = match &answer {
                Ok((s, v)) => (*s, v.clone()),
                Err(p) => (p.status, p.body()),
            };
            if let Err(e) = state
                .core
                .store
                .idempotency_answer(token_id, key, status.as_u16(), &value.to_string())
                .await
            {
                tracing::warn!(error = %e, "could not record an idempotent answer");
            }
            respond(answer)
        }
    }
}

async fn not_found() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API route (see the API section of the README)",
    )
    .into_response()
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            let p = caller(&state, &headers).await?;
            state.core.authorize(&p, Operation::Read, "me").await?;
            // The API is opened by tokens only, so there is always one.
            let (id, scope) = p.token.unzip();
            Ok((
                StatusCode::OK,
                json!({ "operator": p.username, "role": p.role, "token_id": id, "scope": scope }),
            ))
        }
        .await,
    )
}

async fn hosts(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "host").await?;
            Ok((
                StatusCode::OK,
                json!({ "items": to_json(&state.core.list_hosts().await?) }),
            ))
        }
        .await,
    )
}

async fn host(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    respond(async {
        allowed(&state, &headers, Operation::Read, "host").await?;
        let view = state.core.host_view(id).await?;
        let probe = state.core.store.latest_probe(id).await.map_err(OpError::from)?;
        Ok((
            StatusCode::OK,
            json!({ "host": to_json(&view), "capabilities": probe.map(|p| to_json(&p.report.capabilities)) }),
        ))
    }
    .await)
}

#[derive(Deserialize, Default)]
struct Page {
    limit: Option<u32>,
}

async fn probes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "host").await?;
            state.core.host_view(id).await?;
            let limit = page.limit.unwrap_or(20).clamp(1, 100);
            let rows = state.core.probe_history(id).await?;
            let items: Vec<_> = rows.into_iter().take(limit as usize).collect();
            Ok((StatusCode::OK, json!({ "items": to_json(&items) })))
        }
        .await,
    )
}

async fn probe(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let (state, bytes) = (&state, &bytes);
    let run = move |p: Principal| async move {
        let target = provisioning_core::model::host_target(id);
        let actor = state
            .core
            .authorize(&p, Operation::HostProbe, &target)
            .await?;
        let rec = state.core.probe_host(&actor, id).await?;
        Ok((StatusCode::OK, to_json(&rec)))
    };
    once(state, &headers, &method, &uri, bytes, run).await
}

async fn packs(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "pack").await?;
            Ok((
                StatusCode::OK,
                json!({ "items": to_json(&state.core.pack_versions().await?) }),
            ))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackBody {
    source: String,
}

fn pack_problem(issues: Vec<provisioning_core::model::PackIssue>) -> Problem {
    Problem {
        field: Some("source".into()),
        extra: Some(to_json(&issues)),
        ..Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pack",
            format!(
                "the pack has {} problem(s); nothing was stored",
                issues.len()
            ),
        )
    }
}

async fn validate_pack(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    respond(async {
        allowed(&state, &headers, Operation::Read, "pack").await?;
        let b: PackBody = body(&bytes)?;
        match provisioning_core::pack::parse(&b.source, None) {
            Ok(p) => Ok((
                StatusCode::OK,
                json!({ "valid": true, "id": p.pack.id, "hash": p.hash, "providers": p.pack.providers.keys().collect::<Vec<_>>() }),
            )),
            Err(issues) => Err(pack_problem(issues)),
        }
    }
    .await)
}

async fn upload_pack(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    bytes: Bytes,
) -> Response {
    let (state, bytes) = (&state, &bytes);
    let run = move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::PackUpload, "pack:new")
            .await?;
        let b: PackBody = body(bytes)?;
        match state.core.upload_pack(&actor, &b.source).await {
            Ok((id, created)) => Ok((
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                json!({ "pack_version_id": id, "created": created }),
            )),
            Err(Ok(issues)) => Err(pack_problem(issues)),
            Err(Err(e)) => Err(e.into()),
        }
    };
    once(state, &headers, &method, &uri, bytes, run).await
}

#[derive(Deserialize, Default)]
struct BatchQuery {
    host_id: Option<i64>,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    attention: bool,
    before: Option<i64>,
    limit: Option<u32>,
}

async fn batches(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<BatchQuery>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "batch").await?;
            let filter = BatchFilter {
                host_id: q.host_id,
                provider: q.provider,
                status: q.status,
                attention: q.attention,
            };
            let list = state
                .core
                .list_batches_where(&filter, q.before, q.limit.unwrap_or(50))
                .await?;
            Ok((
                StatusCode::OK,
                json!({ "items": to_json(&list.items), "next_before": list.next_before }),
            ))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    host_id: i64,
    pack_version_id: i64,
    provider: String,
    #[serde(default)]
    mode: Option<String>,
    /// One key per line, CSV or JSON, as the page takes them.
    keys: String,
}

async fn plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    bytes: Bytes,
) -> Response {
    let (state, bytes) = (&state, &bytes);
    let run = move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::BatchPlan, "batch:new")
            .await?;
        let b: PlanBody = body(bytes)?;
        let mode = match b.mode.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(m) => Some(AccessMode::parse(m).ok_or_else(|| Problem {
                field: Some("mode".into()),
                ..Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "mode must be self_service or subscription",
                )
            })?),
        };
        let id = state
            .core
            .plan_batch(
                &actor,
                &BatchRequest {
                    host_id: b.host_id,
                    pack_version_id: b.pack_version_id,
                    provider_key: b.provider,
                    mode,
                    keys_text: b.keys,
                },
            )
            .await?;
        let view = state.core.batch_view(id).await?;
        Ok((StatusCode::CREATED, batch_json(&view)))
    };
    once(state, &headers, &method, &uri, bytes, run).await
}

/// A batch as the API gives it: its summary and plan, never key material
/// (keys appear masked, as on the pages).
fn batch_json(v: &provisioning_core::model::BatchView) -> Value {
    json!({
        "id": v.id,
        "status": v.status,
        "access_status": v.access_status,
        "keys": to_json(&v.keys),
        "plan": to_json(&v.plan),
        "host_id": v.host_id,
        "provider": v.provider_key,
    })
}

async fn batch(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "batch").await?;
            let view = state.core.batch_view(id).await?;
            Ok((StatusCode::OK, batch_json(&view)))
        }
        .await,
    )
}

async fn progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    respond(async {
        allowed(&state, &headers, Operation::Read, "batch").await?;
        let p = state.core.batch_progress(id, 0).await?;
        Ok((
            StatusCode::OK,
            json!({
                "status": p.status,
                "access_status": p.access_status,
                "steps": to_json(&p.steps),
                "finished": !matches!(p.status, provisioning_core::model::BatchStatus::Running | provisioning_core::model::BatchStatus::RollingBack),
                "waiting": p.waiting.as_deref().map(provisioning_core::model::Said::english_of),
                "at_ms": p.at_ms,
            }),
        ))
    }
    .await)
}

async fn apply(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let (state, bytes) = (&state, &bytes);
    let run = move |p: Principal| async move {
        let target = provisioning_core::model::batch_target(id);
        let actor = state
            .core
            .authorize(&p, Operation::BatchApply, &target)
            .await?;
        // The core claims the batch's lease before this returns, as for
        // the page's button: a second start is refused with 409.
        state
            .core
            .start_apply(&actor, id, state.config.apply_options())
            .await?;
        Ok((
            StatusCode::ACCEPTED,
            json!({ "batch_id": id, "started": true, "progress": format!("/api/v1/batches/{id}/progress") }),
        ))
    };
    once(state, &headers, &method, &uri, bytes, run).await
}

#[derive(Deserialize, Default)]
struct EvidenceQuery {
    #[serde(default)]
    format: String,
}

/// The signed evidence bundle as it is downloaded from the batch page: its
/// JSON bytes unchanged (the digest covers them), or the HTML report.
async fn evidence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<EvidenceQuery>,
) -> Response {
    let result = async {
        let target = provisioning_core::model::batch_target(id);
        let actor = allowed(&state, &headers, Operation::Read, &target).await?;
        let html = match q.format.as_str() {
            "" | "json" => false,
            "html" => true,
            _ => {
                return Err(Problem {
                    field: Some("format".into()),
                    ..Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        "format must be json or html",
                    )
                })
            }
        };
        let b = state.core.export_bundle(&actor, id).await?;
        Ok(if html {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], b.html).into_response()
        } else {
            ([(header::CONTENT_TYPE, "application/json")], b.json).into_response()
        })
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    target: String,
    before: Option<i64>,
    limit: Option<usize>,
}

async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "audit").await?;
            let f = AuditFilter {
                actor: q.actor,
                action: q.action,
                outcome: q.outcome,
                target: q.target,
            };
            let slice = state
                .core
                .audit_entries(&f, q.before, q.limit.unwrap_or(50))
                .await?;
            let (items, next_before) = (slice.entries, slice.next_before);
            Ok((
                StatusCode::OK,
                json!({ "items": to_json(&items), "next_before": next_before }),
            ))
        }
        .await,
    )
}
