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
use provisioning_core::model::{
    batch_target, host_target, AccessMode, AccessStatus, AdminAuthKind, ApiToken, AuditEntry,
    AuditFilter, BatchFilter, BatchStatus, BatchSummary, BatchView, Capability, DriftReport,
    HostInput, HostView, KeyOutcomes, KindCount, OperatorView, PackDetail, PackIssue,
    PackVersionView, Plan, ProbeRecord, ProbeSummary, Role, RollbackPreview, Said, StateCounts,
    StepState, StepView,
};
use provisioning_core::ops::{BatchRequest, OpError, Operation, Principal, Scope, TokenRequest};
use provisioning_core::secrets::{sha256_hex, Secret};
use provisioning_core::store::Replay;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// The routes, to be nested under `/api/v1`. The OpenAPI document
/// ([`ApiDoc`]) and the reference page are the only ones open without a
/// token: they hold no data.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/reference", get(reference))
        .route("/me", get(me))
        .route("/hosts", get(hosts).post(create_host))
        .route("/hosts/{id}", get(host).patch(update_host))
        .route("/hosts/{id}/probe", post(probe))
        .route("/hosts/{id}/probes", get(probes))
        .route("/hosts/{id}/drift", get(drift).post(drift_check))
        .route("/hosts/{id}/drift/repair", post(drift_repair))
        .route("/hosts/{id}/drift/ignore", post(drift_ignore))
        .route("/packs", get(packs).post(upload_pack))
        .route("/packs/validate", post(validate_pack))
        .route("/packs/{id}", get(pack))
        .route("/batches", get(batches).post(plan))
        .route("/batches/{id}", get(batch))
        .route("/batches/{id}/apply", post(apply))
        .route("/batches/{id}/progress", get(progress))
        .route("/batches/{id}/steps", get(steps))
        .route("/batches/{id}/steps/{seq}", get(step))
        .route(
            "/batches/{id}/rollback",
            get(rollback_preview).post(rollback),
        )
        .route("/batches/{id}/evidence", get(evidence))
        .route("/batches/{id}/checks", get(checks).post(recheck))
        .route("/batches/{id}/balances", get(balances).post(read_balances))
        .route("/hosts/{id}/schedule", get(schedule).put(set_schedule))
        .route("/incidents", get(incidents))
        .route("/audit", get(audit))
        .route("/operators", get(operators).post(create_operator))
        .route(
            "/operators/{id}",
            axum::routing::patch(update_operator).delete(remove_operator),
        )
        .route("/tokens", get(tokens).post(create_token))
        .route("/tokens/{id}", axum::routing::delete(revoke_token))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Every route that needs a token, as (method, path, the operation the
/// core is asked for). The OpenAPI document must list exactly these (a
/// test compares them), and the authorization matrix tests are generated
/// from it.
pub const ROUTES: &[(&str, &str, Operation)] = &[
    ("GET", "/api/v1/me", Operation::Read),
    ("GET", "/api/v1/hosts", Operation::Read),
    ("POST", "/api/v1/hosts", Operation::HostCreate),
    ("GET", "/api/v1/hosts/{id}", Operation::Read),
    ("PATCH", "/api/v1/hosts/{id}", Operation::HostUpdate),
    ("POST", "/api/v1/hosts/{id}/probe", Operation::HostProbe),
    ("GET", "/api/v1/hosts/{id}/probes", Operation::Read),
    ("GET", "/api/v1/hosts/{id}/drift", Operation::Read),
    (
        "POST",
        "/api/v1/hosts/{id}/drift",
        Operation::HostDriftCheck,
    ),
    (
        "POST",
        "/api/v1/hosts/{id}/drift/repair",
        Operation::HostDriftRepair,
    ),
    (
        "POST",
        "/api/v1/hosts/{id}/drift/ignore",
        Operation::HostDriftIgnore,
    ),
    ("GET", "/api/v1/packs", Operation::Read),
    ("POST", "/api/v1/packs", Operation::PackUpload),
    ("POST", "/api/v1/packs/validate", Operation::Read),
    ("GET", "/api/v1/packs/{id}", Operation::Read),
    ("GET", "/api/v1/batches", Operation::Read),
    ("POST", "/api/v1/batches", Operation::BatchPlan),
    ("GET", "/api/v1/batches/{id}", Operation::Read),
    ("POST", "/api/v1/batches/{id}/apply", Operation::BatchApply),
    ("GET", "/api/v1/batches/{id}/progress", Operation::Read),
    ("GET", "/api/v1/batches/{id}/steps", Operation::Read),
    ("GET", "/api/v1/batches/{id}/steps/{seq}", Operation::Read),
    ("GET", "/api/v1/batches/{id}/rollback", Operation::Read),
    (
        "POST",
        "/api/v1/batches/{id}/rollback",
        Operation::BatchRollback,
    ),
    ("GET", "/api/v1/batches/{id}/evidence", Operation::Read),
    ("GET", "/api/v1/batches/{id}/checks", Operation::Read),
    (
        "POST",
        "/api/v1/batches/{id}/checks",
        Operation::BatchRecheck,
    ),
    ("GET", "/api/v1/batches/{id}/balances", Operation::Read),
    (
        "POST",
        "/api/v1/batches/{id}/balances",
        Operation::BatchBalances,
    ),
    ("GET", "/api/v1/hosts/{id}/schedule", Operation::Read),
    (
        "PUT",
        "/api/v1/hosts/{id}/schedule",
        Operation::HostSchedule,
    ),
    ("GET", "/api/v1/incidents", Operation::Read),
    ("GET", "/api/v1/audit", Operation::Read),
    ("GET", "/api/v1/operators", Operation::OperatorList),
    ("POST", "/api/v1/operators", Operation::OperatorCreate),
    ("PATCH", "/api/v1/operators/{id}", Operation::OperatorUpdate),
    (
        "DELETE",
        "/api/v1/operators/{id}",
        Operation::OperatorRemove,
    ),
    ("GET", "/api/v1/tokens", Operation::TokenManage),
    ("POST", "/api/v1/tokens", Operation::TokenManage),
    ("DELETE", "/api/v1/tokens/{id}", Operation::TokenManage),
];

/// Operations of the core's table the API does not offer, and why (a
/// test fails when an operation is in neither list).
pub const NOT_IN_API: &[(Operation, &str)] = &[
    (
        Operation::WebhookManage,
        "webhook URLs carry bot tokens and secrets are shown once: set up on the webhooks page by an admin",
    ),
    (
        Operation::HostDelete,
        "removing a host and its history is a decision for a person on the host's page",
    ),
    (
        Operation::HostComplianceAccept,
        "accepting the host's compliance text is a person's legal act, read on the page",
    ),
    (
        Operation::HostAdminKeyObtain,
        "it signs in to the host with the admin password typed on the page",
    ),
    (
        Operation::BatchRetryFailed,
        "a page action on one batch's failed keys; `apply` resumes a batch",
    ),
    (
        Operation::BatchDiscard,
        "a page action; a planned batch left alone changes nothing",
    ),
    (
        Operation::BatchRemoveFailed,
        "acts on failed accounts a person has looked at",
    ),
    (
        Operation::BatchPauseFailed,
        "acts on failed accounts a person has looked at",
    ),
    (
        Operation::BatchResumeFailed,
        "acts on failed accounts a person has looked at",
    ),
    (
        Operation::BatchDiagnose,
        "a page action; the diagnosis is in the batch and its evidence",
    ),
    (
        Operation::BatchReplaceKey,
        "the new key would travel in a script; the page takes it once",
    ),
    (
        Operation::HostProtect,
        "turning four eyes on or off is an admin's decision on the host's page",
    ),
    (
        Operation::BatchReview,
        "a reviewer's decision on evidence they read, signed as theirs: made on the review page",
    ),
    (
        Operation::BatchApprove,
        "the second pair of eyes is a person reading the plan on the batch page, not a script",
    ),
    (
        Operation::OperatorResetPassword,
        "a password set by a script would sit in its history; the page takes it once",
    ),
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
    extra: Option<Vec<PackIssue>>,
}

/// A refusal as the API sends it (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody {
    /// `urn:relay-manager:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable for scripts: `unauthorized`, `forbidden`, `not_found`,
    /// `invalid`, `invalid_pack`, `bad_body`, `conflict`, `throttled`,
    /// `idempotency_mismatch`, `idempotency_in_progress`,
    /// `method_not_allowed`, `host_unavailable` (502), `host_timeout`
    /// (504), `internal`.
    pub code: String,
    pub detail: String,
    /// The field (or header) the caller sent wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A pack's problems, each located.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<PackIssue>>,
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

    fn at(self, field: &str) -> Problem {
        Problem {
            field: Some(field.to_string()),
            ..self
        }
    }

    fn body(&self) -> Value {
        to_json(&ProblemBody {
            kind: format!("urn:relay-manager:problem:{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("error")
                .to_string(),
            status: self.status.as_u16(),
            code: self.code.to_string(),
            detail: self.detail.clone(),
            field: self.field.clone(),
            errors: self.extra.clone(),
        })
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
            // The host did not answer in time (the client's timeout).
            OpError::Host(why) if why.contains("timed out") || why.contains("timeout") => {
                Problem::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "host_timeout",
                    format!("the host did not answer in time: {why}"),
                )
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

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A typed answer: the body is the type the OpenAPI document names.
fn ok<T: Serialize>(status: StatusCode, v: &T) -> Answer {
    Ok((status, to_json(v)))
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

/// What a mutating request brings to [`once`].
struct Call<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    method: &'a Method,
    uri: &'a Uri,
    bytes: &'a Bytes,
}

/// Authenticates, then runs a mutating request once per `Idempotency-Key`:
/// a retry with the same body gets the first answer again, a different
/// body under the key is refused (409). `run` gets the caller
/// (authenticated once). `keep` says what of the answer may be stored for
/// a replay (a token's secret is not).
async fn once<F, Fut>(c: Call<'_>, keep: fn(Value) -> Value, run: F) -> Response
where
    F: FnOnce(Principal) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let Call {
        state,
        headers,
        method,
        uri,
        bytes,
    } = c;
    // The key belongs to the token: authenticate before looking it up.
    let p = match caller(state, headers).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return respond(run(p).await);
    };
    if key.is_empty() || key.len() > 200 {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Idempotency-Key must be 1 to 200 characters",
        )
        .at("Idempotency-Key")
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
        Ok(Replay::Mismatch) => Problem::new(
            StatusCode::CONFLICT,
            "idempotency_mismatch",
            "this Idempotency-Key was used with another request; use a new key",
        )
        .at("Idempotency-Key")
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
                Ok((s, v)) => (*s, keep(v.clone())),
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

/// Keeps the whole answer for a replay.
fn all(v: Value) -> Value {
    v
}

async fn not_found() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API route (see /api/v1/reference)",
    )
    .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not served on {} (see /api/v1/reference)",
            uri.path()
        ),
    )
    .into_response()
}

// ---- the document -------------------------------------------------------

/// The OpenAPI 3.1 document, generated from the handlers' annotations and
/// the model types' schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sub2API CN Relay Manager API",
        version = "1",
        description = "The operations of the dashboard's pages for scripts: hosts, packs, import batches, drift, the audit log, operators and tokens. Authenticate with `Authorization: Bearer rmt_…` (an API token made on the API tokens page). Every refusal is an RFC 9457 problem with a stable `code` and, when the caller sent something wrong, the `field`. A mutating request with an `Idempotency-Key` header is answered once: a retry gets the first answer (with `Idempotent-Replay: true`), another body under the same key is 409."
    ),
    paths(
        me, hosts, create_host, host, update_host, probe, probes, drift, drift_check,
        drift_repair, drift_ignore, packs, upload_pack, validate_pack, pack, batches, plan,
        batch, apply, progress, steps, step, rollback_preview, rollback, evidence, checks,
        recheck, balances, read_balances, schedule, set_schedule, incidents, audit,
        operators, create_operator, update_operator, remove_operator, tokens, create_token,
        revoke_token
    ),
    components(schemas(ProblemBody)),
    modifiers(&Common),
    security(("bearer" = [])),
    tags(
        (name = "hosts", description = "Sub2API hosts: registration, probes, drift"),
        (name = "packs", description = "Provider packs"),
        (name = "batches", description = "Import batches: plan, apply, progress, rollback, evidence, readiness re-checks, balances"),
        (name = "watch", description = "Scheduled jobs and the incidents they open"),
        (name = "admin", description = "The audit log, operators and API tokens"),
    )
)]
pub struct ApiDoc;

/// What every operation shares: the bearer scheme, the refusals any of
/// them can answer, and the `Idempotency-Key` header on mutating ones.
struct Common;

impl utoipa::Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rmt_ and 48 hex digits")
                    .build(),
            ),
        );
        let problem = |d: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(d)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        let shared = [
            ("401", "No token, or one unknown, revoked or expired"),
            (
                "403",
                "The token's scope or its operator's role does not allow this",
            ),
            ("500", "An internal error (the server log has the details)"),
        ];
        let mutating = [
            ("400", "The body is not this route's JSON, or a bad Idempotency-Key"),
            ("409", "A conflict (a name taken, a run in progress) or an Idempotency-Key reused with another body"),
            ("422", "A field the caller sent is not valid (`field` names it)"),
        ];
        let key = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Answer this request once: a retry with the same key and body gets the first answer",
            ))
            .schema(Some(utoipa::openapi::schema::Object::with_type(
                utoipa::openapi::schema::Type::String,
            )))
            .build();
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                (&mut item.get, "GET", false),
                (&mut item.post, "POST", true),
                (&mut item.patch, "PATCH", true),
                (&mut item.put, "PUT", true),
                (&mut item.delete, "DELETE", true),
            ];
            for (op, method, mutates) in ops {
                let Some(op) = op.as_mut() else { continue };
                // Who may call it, from the core's table (as enforced).
                if let Some((_, _, needs)) =
                    ROUTES.iter().find(|(m, p, _)| *m == method && p == path)
                {
                    let rule = needs.rule();
                    let who = if *needs == Operation::Read {
                        "Any live token: the `read` scope and the `viewer` role suffice."
                            .to_string()
                    } else {
                        format!(
                            "Needs the `{}` role and a token with the `{}` scope; the audit log records it (and any refusal) as `{}`.",
                            rule.role.as_str(),
                            rule.scope.as_str(),
                            rule.action
                        )
                    };
                    op.description = Some(match op.description.take() {
                        Some(d) if !d.is_empty() => format!("{d}\n\n{who}"),
                        _ => who,
                    });
                }
                for (code, d) in shared {
                    op.responses
                        .responses
                        .entry(code.into())
                        .or_insert_with(|| problem(d));
                }
                let takes = |place: ParameterIn| {
                    op.parameters
                        .iter()
                        .flatten()
                        .any(|p| p.parameter_in == place)
                };
                if op.responses.responses.contains_key("502") {
                    op.responses
                        .responses
                        .entry("504".into())
                        .or_insert_with(|| problem("The host did not answer in time"));
                }
                if takes(ParameterIn::Query) {
                    op.responses
                        .responses
                        .entry("422".into())
                        .or_insert_with(|| {
                            problem("A query parameter is not valid (`field` names it)")
                        });
                }
                if takes(ParameterIn::Path) {
                    op.responses
                        .responses
                        .entry("404".into())
                        .or_insert_with(|| problem("Nothing has this number"));
                }
                if mutates {
                    for (code, d) in mutating {
                        op.responses
                            .responses
                            .entry(code.into())
                            .or_insert_with(|| problem(d));
                    }
                    op.parameters.get_or_insert_with(Vec::new).push(key.clone());
                }
            }
        }
    }
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document().to_pretty_json().unwrap_or_default(),
    )
        .into_response()
}

/// The API reference: the document as one page of HTML with its own
/// styles (no script, no CDN), so it reads offline and in any browser.
async fn reference() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        super::reference::render(document()),
    )
        .into_response()
}

// ---- bodies and answers ---------------------------------------------------

#[derive(Serialize, ToSchema)]
struct Me {
    operator: String,
    role: Role,
    token_id: Option<i64>,
    scope: Option<Scope>,
}

#[derive(Serialize, ToSchema)]
struct HostList {
    items: Vec<HostView>,
}

#[derive(Serialize, ToSchema)]
struct HostDetail {
    host: HostView,
    /// What the newest probe found the host can do; none before a probe.
    capabilities: Option<Vec<Capability>>,
}

/// A host to register, or changes to one. On `PATCH` every field is
/// optional (a missing one keeps its value) and an empty secret keeps the
/// stored one; a secret is never answered back.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
struct HostBody {
    name: Option<String>,
    /// `https://…` (or `http://` on loopback).
    base_url: Option<String>,
    /// `api_key` or `password`.
    auth_kind: Option<String>,
    admin_api_key: Option<String>,
    admin_email: Option<String>,
    admin_password: Option<String>,
    probe_user_email: Option<String>,
    probe_user_password: Option<String>,
}

impl HostBody {
    /// The host input, with what is missing taken from `old` (an edit) or
    /// left empty (a new host, where the core says what is required).
    fn input(self, old: Option<&HostView>) -> HostInput {
        let keep = |v: Option<String>, f: fn(&HostView) -> String| {
            v.unwrap_or_else(|| old.map(f).unwrap_or_default())
        };
        HostInput {
            name: keep(self.name, |h| h.name.clone()),
            base_url: keep(self.base_url, |h| h.base_url.clone()),
            auth_kind: keep(self.auth_kind, |h| h.auth_kind.as_str().to_string()),
            admin_api_key: self.admin_api_key.unwrap_or_default(),
            // For a password sign-in the hint is the admin's email.
            admin_email: keep(self.admin_email, |h| match h.auth_kind {
                AdminAuthKind::Password => h.admin_credential_hint.clone(),
                AdminAuthKind::ApiKey => String::new(),
            }),
            admin_password: self.admin_password.unwrap_or_default(),
            probe_user_email: keep(self.probe_user_email, |h| {
                h.probe_user_email.clone().unwrap_or_default()
            }),
            probe_user_password: self.probe_user_password.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// At most this many (1 to 100; 20 unless given).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct CheckList {
    /// Newest first.
    items: Vec<provisioning_core::model::CheckView>,
}

#[derive(Serialize, ToSchema)]
struct BalanceList {
    /// In the batch's key order; keys never read are absent.
    items: Vec<provisioning_core::model::BalanceView>,
}

#[derive(Serialize, ToSchema)]
struct ScheduleList {
    items: Vec<provisioning_core::model::ScheduleView>,
}

#[derive(Serialize, ToSchema)]
struct IncidentList {
    /// Open incidents, oldest first.
    open: Vec<provisioning_core::model::IncidentView>,
    /// The newest resolved ones.
    resolved: Vec<provisioning_core::model::IncidentView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    /// `probe`, `readiness`, `drift` or `balance`.
    job: String,
    /// Seconds between runs (1 to 604800).
    interval_s: i64,
    /// `false` switches the job off.
    enabled: bool,
}

#[derive(Serialize, ToSchema)]
struct ProbeList {
    items: Vec<ProbeSummary>,
}

#[derive(Serialize, ToSchema)]
struct DriftLatest {
    /// The newest drift check of the host; none before the first.
    report: Option<DriftReport>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RepairBody {
    /// The finding's key, from the newest check.
    key: String,
    /// One of the finding's offered actions (`restore`, `adopt`, `forget`, …).
    action: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct IgnoreBody {
    key: String,
    /// Why it is all right (at least 3 characters; it stays visible).
    reason: String,
    /// For how long (1 to 365 days).
    days: i64,
}

#[derive(Serialize, ToSchema)]
struct Message {
    message: String,
}

#[derive(Serialize, ToSchema)]
struct PackList {
    items: Vec<PackVersionView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PackBody {
    /// The pack file's text, YAML or TOML.
    source: String,
}

#[derive(Serialize, ToSchema)]
struct PackStored {
    pack_version_id: i64,
    /// False when the same pack was stored before (its version is answered).
    created: bool,
}

#[derive(Serialize, ToSchema)]
struct PackValid {
    valid: bool,
    id: String,
    hash: String,
    providers: Vec<String>,
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct PackQuery {
    /// Another version of the same pack to list the changes from.
    diff: Option<i64>,
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct BatchQuery {
    host_id: Option<i64>,
    /// A provider key of a pack, e.g. `deepseek`.
    #[serde(default)]
    provider: String,
    /// A batch status, e.g. `succeeded`.
    #[serde(default)]
    status: String,
    /// Only those that need attention (running, failed, not ready, …).
    #[serde(default)]
    attention: bool,
    /// A review state: `not_reviewed`, `accepted`, `rejected`,
    /// `needs_changes` or `stale`.
    #[serde(default)]
    review: String,
    /// The `next_before` of the previous page.
    before: Option<i64>,
    /// 1 to 100 (50 unless given).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct BatchList {
    items: Vec<BatchSummary>,
    /// The cursor of the next (older) page, when there is one.
    next_before: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    host_id: i64,
    pack_version_id: i64,
    /// A provider key of the pack.
    provider: String,
    /// `self_service` or `subscription`; the pack's default unless given.
    #[serde(default)]
    mode: Option<String>,
    /// One key per line, CSV or JSON, as the page takes them.
    keys: String,
}

/// A batch as the API gives it: its summary and plan, never key material
/// (keys appear masked, as on the pages).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchDoc {
    pub id: i64,
    pub status: BatchStatus,
    pub access_status: AccessStatus,
    pub keys: KeyOutcomes,
    pub plan: Plan,
    pub host_id: i64,
    pub provider: String,
}

impl From<BatchView> for BatchDoc {
    fn from(v: BatchView) -> BatchDoc {
        BatchDoc {
            id: v.id,
            status: v.status,
            access_status: v.access_status,
            keys: v.keys,
            plan: v.plan,
            host_id: v.host_id,
            provider: v.provider_key,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct Started {
    batch_id: i64,
    started: bool,
    /// Where to watch it.
    progress: String,
}

#[derive(Serialize, ToSchema)]
struct Progress {
    status: BatchStatus,
    access_status: AccessStatus,
    steps: StateCounts,
    /// It stopped running (the status is final until the next run).
    finished: bool,
    /// What a running batch waits for, when it waits.
    waiting: Option<String>,
    at_ms: i64,
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct StepQuery {
    /// The `next_after` of the previous page.
    #[serde(default)]
    after: i64,
    /// Only steps in this state (`pending`, `sent`, `done`, `failed`, `unknown`, `skipped`).
    state: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct StepPage {
    /// Steps in journal order, without their evidence (one step's route has it).
    items: Vec<StepView>,
    counts: Vec<KindCount>,
    next_after: Option<i64>,
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct ForceQuery {
    /// Also remove objects changed on the host since apply.
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
struct RollbackBody {
    /// Also remove objects changed on the host since apply.
    force: bool,
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct EvidenceQuery {
    /// `json` (the signed bundle, the default) or `html` (the report).
    #[serde(default)]
    format: String,
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    /// An action, or a family ending in `.` (`batch.`).
    #[serde(default)]
    action: String,
    /// `ok`, `denied`, `invalid`, `conflict`, `failed`, …
    #[serde(default)]
    outcome: String,
    /// e.g. `batch:3`, `host:1`.
    #[serde(default)]
    target: String,
    before: Option<i64>,
    /// 1 to 200 (50 unless given).
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
struct AuditList {
    items: Vec<AuditEntry>,
    next_before: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct OperatorList {
    items: Vec<OperatorView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OperatorBody {
    username: String,
    /// At least 12 characters; stored as an argon2id hash.
    password: String,
    /// `admin`, `operator` or `viewer`.
    role: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OperatorChange {
    /// `admin`, `operator` or `viewer`.
    role: String,
    #[serde(default)]
    disabled: bool,
}

#[derive(Serialize, ToSchema)]
struct TokenList {
    items: Vec<ApiToken>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    /// The operator it acts for (by number, or `operator` by name).
    #[serde(default)]
    operator_id: Option<i64>,
    #[serde(default)]
    operator: Option<String>,
    name: String,
    /// `read`, `write` or `admin` (never above the operator's role).
    scope: String,
    /// 1 to 366.
    days: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    pub token: ApiToken,
    /// The token itself: shown in this answer only, never again (a replay
    /// of this request answers `null`).
    pub secret: Option<String>,
}

// ---- handlers -------------------------------------------------------------

fn mutating<'a>(
    state: &'a AppState,
    headers: &'a HeaderMap,
    method: &'a Method,
    uri: &'a Uri,
    bytes: &'a Bytes,
) -> Call<'a> {
    Call {
        state,
        headers,
        method,
        uri,
        bytes,
    }
}

/// Who the token acts for.
#[utoipa::path(get, path = "/api/v1/me", tag = "admin",
    responses((status = 200, description = "The token's operator, role and scope", body = Me)))]
async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            let p = caller(&state, &headers).await?;
            state.core.authorize(&p, Operation::Read, "me").await?;
            // The API is opened by tokens only, so there is always one.
            let (token_id, scope) = p.token.unzip();
            ok(
                StatusCode::OK,
                &Me {
                    operator: p.username,
                    role: p.role,
                    token_id,
                    scope,
                },
            )
        }
        .await,
    )
}

/// Every registered host with its newest probe's summary.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts",
    responses((status = 200, description = "The hosts", body = HostList)))]
async fn hosts(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "host").await?;
            ok(
                StatusCode::OK,
                &HostList {
                    items: state.core.list_hosts().await?,
                },
            )
        }
        .await,
    )
}

/// Registers a host: the connection and the credential are checked before
/// anything is stored.
#[utoipa::path(post, path = "/api/v1/hosts", tag = "hosts", request_body = HostBody,
    responses((status = 201, description = "Registered", body = HostView),
        (status = 502, description = "The host could not be reached", body = ProblemBody, content_type = "application/problem+json")))]
async fn create_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::HostCreate, "host:new")
            .await?;
        let b: HostBody = body(bytes)?;
        let view = state.core.create_host(&actor, &b.input(None)).await?;
        ok(StatusCode::CREATED, &view)
    })
    .await
}

/// A host and what its newest probe found it can do.
#[utoipa::path(get, path = "/api/v1/hosts/{id}", tag = "hosts",
    params(("id" = i64, Path, description = "The host's number")),
    responses((status = 200, description = "The host", body = HostDetail),
        (status = 404, description = "No such host", body = ProblemBody, content_type = "application/problem+json")))]
async fn host(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "host").await?;
            let host = state.core.host_view(id).await?;
            let probe = state.core.latest_probe(id).await?;
            ok(
                StatusCode::OK,
                &HostDetail {
                    host,
                    capabilities: probe.map(|p| p.report.capabilities),
                },
            )
        }
        .await,
    )
}

/// Edits a host: a missing field keeps its value, an empty secret keeps
/// the stored one; moving it to another origin needs the secrets again.
#[utoipa::path(patch, path = "/api/v1/hosts/{id}", tag = "hosts", request_body = HostBody,
    params(("id" = i64, Path, description = "The host's number")),
    responses((status = 200, description = "Edited", body = HostView),
        (status = 404, description = "No such host", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "The host could not be reached", body = ProblemBody, content_type = "application/problem+json")))]
async fn update_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::HostUpdate, &host_target(id))
            .await?;
        let b: HostBody = body(bytes)?;
        let old = state.core.host_view(id).await?;
        let view = state
            .core
            .update_host(&actor, id, &b.input(Some(&old)))
            .await?;
        ok(StatusCode::OK, &view)
    })
    .await
}

/// Probes the host now (version, capabilities, admin sign-in, probe user)
/// and records the result.
#[utoipa::path(post, path = "/api/v1/hosts/{id}/probe", tag = "hosts",
    params(("id" = i64, Path, description = "The host's number")),
    responses((status = 200, description = "The probe's record", body = ProbeRecord),
        (status = 404, description = "No such host", body = ProblemBody, content_type = "application/problem+json")))]
async fn probe(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let state = &state;
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::HostProbe, &host_target(id))
            .await?;
        let rec = state.core.probe_host(&actor, id).await?;
        ok(StatusCode::OK, &rec)
    })
    .await
}

/// The host's probes, newest first.
#[utoipa::path(get, path = "/api/v1/hosts/{id}/probes", tag = "hosts",
    params(("id" = i64, Path, description = "The host's number"), Page),
    responses((status = 200, description = "Probe records", body = ProbeList),
        (status = 404, description = "No such host", body = ProblemBody, content_type = "application/problem+json")))]
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
            ok(
                StatusCode::OK,
                &ProbeList {
                    items: rows.into_iter().take(limit as usize).collect(),
                },
            )
        }
        .await,
    )
}

/// The host's newest drift check: what differs from what the product made.
#[utoipa::path(get, path = "/api/v1/hosts/{id}/drift", tag = "hosts",
    params(("id" = i64, Path, description = "The host's number")),
    responses((status = 200, description = "The newest check, if any", body = DriftLatest),
        (status = 404, description = "No such host", body = ProblemBody, content_type = "application/problem+json")))]
async fn drift(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "host").await?;
            state.core.host_view(id).await?;
            ok(
                StatusCode::OK,
                &DriftLatest {
                    report: state.core.latest_drift(id).await?,
                },
            )
        }
        .await,
    )
}

/// Compares every live object the product made on the host with the host
/// now (listings only) and records the findings.
#[utoipa::path(post, path = "/api/v1/hosts/{id}/drift", tag = "hosts",
    params(("id" = i64, Path, description = "The host's number")),
    responses((status = 200, description = "The check", body = DriftReport),
        (status = 404, description = "No such host", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "The host could not be read", body = ProblemBody, content_type = "application/problem+json")))]
async fn drift_check(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let state = &state;
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::HostDriftCheck, &host_target(id))
            .await?;
        ok(StatusCode::OK, &state.core.drift_check(&actor, id).await?)
    })
    .await
}

/// Runs one of a finding's actions (as a `repair` run of its batch).
#[utoipa::path(post, path = "/api/v1/hosts/{id}/drift/repair", tag = "hosts", request_body = RepairBody,
    params(("id" = i64, Path, description = "The host's number")),
    responses((status = 200, description = "What was done", body = Message)))]
async fn drift_repair(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::HostDriftRepair, &host_target(id))
            .await?;
        let b: RepairBody = body(bytes)?;
        let message = state
            .core
            .repair_drift(&actor, id, &b.key, &b.action)
            .await?;
        ok(StatusCode::OK, &Message { message })
    })
    .await
}

/// Ignores a finding for some days, with a reason (it stays visible).
#[utoipa::path(post, path = "/api/v1/hosts/{id}/drift/ignore", tag = "hosts", request_body = IgnoreBody,
    params(("id" = i64, Path, description = "The host's number")),
    responses((status = 200, description = "Ignored", body = Message)))]
async fn drift_ignore(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::HostDriftIgnore, &host_target(id))
            .await?;
        let b: IgnoreBody = body(bytes)?;
        state
            .core
            .ignore_drift(&actor, id, &b.key, &b.reason, b.days)
            .await?;
        ok(
            StatusCode::OK,
            &Message {
                message: format!("finding {} ignored for {} day(s)", b.key, b.days),
            },
        )
    })
    .await
}

/// Every stored pack version (built-in and uploaded), newest first per pack.
#[utoipa::path(get, path = "/api/v1/packs", tag = "packs",
    responses((status = 200, description = "Pack versions", body = PackList)))]
async fn packs(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "pack").await?;
            ok(
                StatusCode::OK,
                &PackList {
                    items: state.core.pack_versions().await?,
                },
            )
        }
        .await,
    )
}

/// One pack version with its source, the pack's other versions, and the
/// changes from one of them (`?diff=`).
#[utoipa::path(get, path = "/api/v1/packs/{id}", tag = "packs",
    params(("id" = i64, Path, description = "The pack version's number"), PackQuery),
    responses((status = 200, description = "The version", body = PackDetail),
        (status = 404, description = "No such version", body = ProblemBody, content_type = "application/problem+json")))]
async fn pack(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<PackQuery>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "pack").await?;
            ok(StatusCode::OK, &state.core.pack_detail(id, q.diff).await?)
        }
        .await,
    )
}

fn pack_problem(issues: Vec<PackIssue>) -> Problem {
    Problem {
        extra: Some(issues.clone()),
        ..Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pack",
            format!(
                "the pack has {} problem(s); nothing was stored",
                issues.len()
            ),
        )
        .at("source")
    }
}

/// Checks a pack without storing it; every problem located (`errors`).
#[utoipa::path(post, path = "/api/v1/packs/validate", tag = "packs", request_body = PackBody,
    responses((status = 200, description = "A valid pack", body = PackValid),
        (status = 422, description = "Its problems, each with its path and line", body = ProblemBody, content_type = "application/problem+json")))]
async fn validate_pack(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "pack").await?;
            let b: PackBody = body(&bytes)?;
            match provisioning_core::pack::parse(&b.source, None) {
                Ok(p) => ok(
                    StatusCode::OK,
                    &PackValid {
                        valid: true,
                        id: p.pack.id.clone(),
                        hash: p.hash,
                        providers: p.pack.providers.keys().cloned().collect(),
                    },
                ),
                Err(issues) => Err(pack_problem(issues)),
            }
        }
        .await,
    )
}

/// Validates and stores a pack (the same pack twice is one version).
#[utoipa::path(post, path = "/api/v1/packs", tag = "packs", request_body = PackBody,
    responses((status = 201, description = "Stored", body = PackStored),
        (status = 200, description = "Already stored", body = PackStored),
        (status = 422, description = "Its problems; nothing stored", body = ProblemBody, content_type = "application/problem+json")))]
async fn upload_pack(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::PackUpload, "pack:new")
            .await?;
        let b: PackBody = body(bytes)?;
        match state.core.upload_pack(&actor, &b.source).await {
            Ok((id, created)) => ok(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                &PackStored {
                    pack_version_id: id,
                    created,
                },
            ),
            Err(Ok(issues)) => Err(pack_problem(issues)),
            Err(Err(e)) => Err(e.into()),
        }
    })
    .await
}

/// Batches, newest first, filtered; a page at a time (`before` cursor).
#[utoipa::path(get, path = "/api/v1/batches", tag = "batches", params(BatchQuery),
    responses((status = 200, description = "Batch summaries", body = BatchList)))]
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
                review: q.review,
            };
            let list = state
                .core
                .list_batches_where(&filter, q.before, q.limit.unwrap_or(50))
                .await?;
            ok(
                StatusCode::OK,
                &BatchList {
                    items: list.items,
                    next_before: list.next_before,
                },
            )
        }
        .await,
    )
}

/// Plans a batch: reads the keys, looks at the ledger and the host, and
/// stores the plan. Nothing is written to the host.
#[utoipa::path(post, path = "/api/v1/batches", tag = "batches", request_body = PlanBody,
    responses((status = 201, description = "Planned", body = BatchDoc),
        (status = 502, description = "The host could not be read", body = ProblemBody, content_type = "application/problem+json")))]
async fn plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::BatchPlan, "batch:new")
            .await?;
        let b: PlanBody = body(bytes)?;
        let mode = match b.mode.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(m) => Some(AccessMode::parse(m).ok_or_else(|| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "mode must be self_service or subscription",
                )
                .at("mode")
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
        ok(StatusCode::CREATED, &BatchDoc::from(view))
    })
    .await
}

/// A batch: its status, key outcomes and plan (keys masked).
#[utoipa::path(get, path = "/api/v1/batches/{id}", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number")),
    responses((status = 200, description = "The batch", body = BatchDoc),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn batch(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "batch").await?;
            let view = state.core.batch_view(id).await?;
            ok(StatusCode::OK, &BatchDoc::from(view))
        }
        .await,
    )
}

/// A batch's status and step counts, for watching it.
#[utoipa::path(get, path = "/api/v1/batches/{id}/progress", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number")),
    responses((status = 200, description = "Where it is", body = Progress),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "batch").await?;
            let p = state.core.batch_progress(id, 0).await?;
            ok(
                StatusCode::OK,
                &Progress {
                    finished: !matches!(p.status, BatchStatus::Running | BatchStatus::RollingBack),
                    status: p.status,
                    access_status: p.access_status,
                    steps: p.steps,
                    waiting: p.waiting.as_deref().map(Said::english_of),
                    at_ms: p.at_ms,
                },
            )
        }
        .await,
    )
}

/// A page of the batch's journal, with counts by step kind.
#[utoipa::path(get, path = "/api/v1/batches/{id}/steps", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number"), StepQuery),
    responses((status = 200, description = "Steps", body = StepPage),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn steps(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<StepQuery>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "batch").await?;
            let st = match q.state.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(s) if StepState::parse(s).as_str() == s => Some(StepState::parse(s)),
                Some(_) => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        "state must be pending, sent, done, failed, unknown or skipped",
                    )
                    .at("state"))
                }
            };
            let v = state.core.batch_page(id, q.after, st).await?;
            ok(
                StatusCode::OK,
                &StepPage {
                    next_after: v.window.and_then(|w| w.next_after),
                    items: v.steps,
                    counts: v.counts,
                },
            )
        }
        .await,
    )
}

/// One journal step with its (redacted) request and response.
#[utoipa::path(get, path = "/api/v1/batches/{id}/steps/{seq}", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number"),
        ("seq" = i64, Path, description = "The step's number in the journal")),
    responses((status = 200, description = "The step", body = StepView),
        (status = 404, description = "No such step", body = ProblemBody, content_type = "application/problem+json")))]
async fn step(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, seq)): Path<(i64, i64)>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "batch").await?;
            ok(StatusCode::OK, &state.core.batch_step(id, seq).await?)
        }
        .await,
    )
}

/// Starts applying (or resuming) a planned batch through its journal; the
/// batch's lease is claimed before this answers.
#[utoipa::path(post, path = "/api/v1/batches/{id}/apply", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number")),
    responses((status = 202, description = "Started; watch its progress", body = Started),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn apply(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let state = &state;
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::BatchApply, &batch_target(id))
            .await?;
        // The core claims the batch's lease before this returns, as for
        // the page's button: a second start is refused with 409.
        state
            .core
            .start_apply(&actor, id, state.config.apply_options())
            .await?;
        ok(StatusCode::ACCEPTED, &started(id))
    })
    .await
}

fn started(id: i64) -> Started {
    Started {
        batch_id: id,
        started: true,
        progress: format!("/api/v1/batches/{id}/progress"),
    }
}

/// What a rollback would do now, observed on the host; writes nothing.
#[utoipa::path(get, path = "/api/v1/batches/{id}/rollback", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number"), ForceQuery),
    responses((status = 200, description = "Each object and what would happen to it", body = RollbackPreview),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Running, or already rolled back", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Never applied", body = ProblemBody, content_type = "application/problem+json")))]
async fn rollback_preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<ForceQuery>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, &batch_target(id)).await?;
            ok(
                StatusCode::OK,
                &state.core.rollback_preview(id, q.force).await?,
            )
        }
        .await,
    )
}

/// Starts rolling the batch back (or resumes an interrupted rollback):
/// what it made is removed, what it adopted is left as it was found.
#[utoipa::path(post, path = "/api/v1/batches/{id}/rollback", tag = "batches", request_body = RollbackBody,
    params(("id" = i64, Path, description = "The batch's number")),
    responses((status = 202, description = "Started; watch its progress", body = Started),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::BatchRollback, &batch_target(id))
            .await?;
        let b: RollbackBody = if bytes.is_empty() {
            RollbackBody::default()
        } else {
            body(bytes)?
        };
        state.core.start_rollback(&actor, id, b.force).await?;
        ok(StatusCode::ACCEPTED, &started(id))
    })
    .await
}

/// The signed evidence bundle, its bytes as downloaded from the batch page
/// (the digest covers them), or the HTML report (`?format=html`).
#[utoipa::path(get, path = "/api/v1/batches/{id}/evidence", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number"), EvidenceQuery),
    responses((status = 200, description = "The bundle (JSON) or the report (HTML)",
        content((Value = "application/json"), (String = "text/html"))),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn evidence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<EvidenceQuery>,
) -> Response {
    let result = async {
        let actor = allowed(&state, &headers, Operation::Read, &batch_target(id)).await?;
        let html = match q.format.as_str() {
            "" | "json" => false,
            "html" => true,
            _ => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "format must be json or html",
                )
                .at("format"))
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

/// The audit log, newest first, filtered; a page at a time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "Entries", body = AuditList)))]
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
            ok(
                StatusCode::OK,
                &AuditList {
                    items: slice.entries,
                    next_before: slice.next_before,
                },
            )
        }
        .await,
    )
}

/// Every operator (admin).
#[utoipa::path(get, path = "/api/v1/operators", tag = "admin",
    responses((status = 200, description = "Operators", body = OperatorList)))]
async fn operators(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::OperatorList, "operator").await?;
            ok(
                StatusCode::OK,
                &OperatorList {
                    items: state.core.list_operators().await?,
                },
            )
        }
        .await,
    )
}

/// Adds an operator (admin).
#[utoipa::path(post, path = "/api/v1/operators", tag = "admin", request_body = OperatorBody,
    responses((status = 201, description = "Added", body = OperatorView)))]
async fn create_operator(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::OperatorCreate, "operator:new")
            .await?;
        let b: OperatorBody = body(bytes)?;
        let role = Role::parse(&b.role).map_err(OpError::Invalid)?;
        let row = state
            .core
            .create_operator(&actor, &b.username, Secret::new(b.password), role)
            .await?;
        ok(StatusCode::CREATED, &row.view())
    })
    .await
}

/// Sets an operator's role and whether they are disabled (admin).
#[utoipa::path(patch, path = "/api/v1/operators/{id}", tag = "admin", request_body = OperatorChange,
    params(("id" = i64, Path, description = "The operator's number")),
    responses((status = 200, description = "Changed", body = OperatorView),
        (status = 404, description = "No such operator", body = ProblemBody, content_type = "application/problem+json")))]
async fn update_operator(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::OperatorUpdate, &format!("operator:{id}"))
            .await?;
        let b: OperatorChange = body(bytes)?;
        let role = Role::parse(&b.role).map_err(OpError::Invalid)?;
        let view = state
            .core
            .update_operator(&actor, id, role, b.disabled)
            .await?;
        ok(StatusCode::OK, &view)
    })
    .await
}

/// Removes an operator (admin): signed out at once, never again.
#[utoipa::path(delete, path = "/api/v1/operators/{id}", tag = "admin",
    params(("id" = i64, Path, description = "The operator's number")),
    responses((status = 200, description = "Removed", body = Message),
        (status = 404, description = "No such operator", body = ProblemBody, content_type = "application/problem+json")))]
async fn remove_operator(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let state = &state;
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::OperatorRemove, &format!("operator:{id}"))
            .await?;
        let name = state
            .core
            .remove_operator(&actor, p.operator_id, id)
            .await?;
        ok(
            StatusCode::OK,
            &Message {
                message: format!("operator {name} removed"),
            },
        )
    })
    .await
}

/// Every API token (admin): never a token itself, only its prefix.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin",
    responses((status = 200, description = "Tokens", body = TokenList)))]
async fn tokens(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            let p = caller(&state, &headers).await?;
            ok(
                StatusCode::OK,
                &TokenList {
                    items: state.core.list_tokens(&p).await?,
                },
            )
        }
        .await,
    )
}

/// Makes a token for an operator (admin); the secret is in this answer
/// only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin", request_body = TokenBody,
    responses((status = 201, description = "Made; keep the secret now", body = TokenCreated)))]
async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    // A replay must not hand out the secret again (nor may it be stored).
    let keep = |mut v: Value| {
        v["secret"] = Value::Null;
        v
    };
    let (state, bytes) = (&state, &bytes);
    once(c, keep, move |p: Principal| async move {
        // Refused before the body is read, like every other route.
        state
            .core
            .authorize(&p, Operation::TokenManage, "token:new")
            .await?;
        let b: TokenBody = body(bytes)?;
        let operator_id = match (b.operator_id, b.operator.as_deref()) {
            (Some(id), _) => id,
            (None, Some(name)) => state
                .core
                .list_operators()
                .await?
                .into_iter()
                .find(|o| o.username == name.trim())
                .map(|o| o.id)
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        format!("no operator named `{}`", name.trim()),
                    )
                    .at("operator")
                })?,
            (None, None) => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "name the operator the token acts for (`operator_id` or `operator`)",
                )
                .at("operator_id"))
            }
        };
        let (token, secret) = state
            .core
            .create_token(
                &p,
                &TokenRequest {
                    operator_id,
                    name: b.name,
                    scope: b.scope,
                    days: b.days.to_string(),
                },
            )
            .await?;
        ok(
            StatusCode::CREATED,
            &TokenCreated {
                token,
                secret: Some(secret.expose().to_string()),
            },
        )
    })
    .await
}

/// Revokes a token (admin): it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "admin",
    params(("id" = i64, Path, description = "The token's number")),
    responses((status = 200, description = "Revoked", body = Message),
        (status = 404, description = "No such live token", body = ProblemBody, content_type = "application/problem+json")))]
async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let state = &state;
    once(c, all, move |p: Principal| async move {
        state.core.revoke_token(&p, id).await?;
        ok(
            StatusCode::OK,
            &Message {
                message: format!("token #{id} revoked"),
            },
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_outage_is_a_gateway_error_and_a_slow_host_a_gateway_timeout() {
        let p = Problem::from(OpError::Host("connection refused".into()));
        assert_eq!(
            (p.status, p.code),
            (StatusCode::BAD_GATEWAY, "host_unavailable")
        );
        let p = Problem::from(OpError::Host(
            "GET /api/v1/admin/groups: operation timed out".into(),
        ));
        assert_eq!(
            (p.status, p.code),
            (StatusCode::GATEWAY_TIMEOUT, "host_timeout")
        );
    }
}

/// A batch's readiness re-checks, newest first.
#[utoipa::path(get, path = "/api/v1/batches/{id}/checks", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number"), Page),
    responses((status = 200, description = "Readiness checks", body = CheckList),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn checks(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "batch").await?;
            let limit = page.limit.unwrap_or(20).clamp(1, 100);
            ok(
                StatusCode::OK,
                &CheckList {
                    items: state.core.readiness_checks(id, limit as i64).await?,
                },
            )
        }
        .await,
    )
}

/// Re-checks a ready batch now: `/v1/models` through the host must list
/// the smoke model and a 1-token completion must answer, both with the
/// probe user's key. Moves its access status (`degraded`, `broken`, or
/// back to ready) and is stored with its evidence.
#[utoipa::path(post, path = "/api/v1/batches/{id}/checks", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number")),
    responses((status = 200, description = "The check", body = provisioning_core::model::CheckView),
        (status = 422, description = "The batch was never proven ready, or is not standing", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn recheck(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let state = &state;
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::BatchRecheck, &batch_target(id))
            .await?;
        let check = state
            .core
            .recheck_readiness(&actor, id, &provisioning_core::ops::SystemClock)
            .await?;
        ok(StatusCode::OK, &check)
    })
    .await
}

/// A batch's latest balance readings: `known` (the provider stated an
/// amount), `unknown` (its endpoint failed: never a made-up 0) or
/// `unsupported` (no balance endpoint for an API key).
#[utoipa::path(get, path = "/api/v1/batches/{id}/balances", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number")),
    responses((status = 200, description = "Balance readings", body = BalanceList),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn balances(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "batch").await?;
            ok(
                StatusCode::OK,
                &BalanceList {
                    items: state.core.balances(id).await?,
                },
            )
        }
        .await,
    )
}

/// Reads every key's balance at its provider now (one GET per key,
/// nothing spent) and stores the readings.
#[utoipa::path(post, path = "/api/v1/batches/{id}/balances", tag = "batches",
    params(("id" = i64, Path, description = "The batch's number")),
    responses((status = 200, description = "Balance readings", body = BalanceList),
        (status = 404, description = "No such batch", body = ProblemBody, content_type = "application/problem+json")))]
async fn read_balances(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let state = &state;
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::BatchBalances, &batch_target(id))
            .await?;
        let items = state
            .core
            .read_balances_now(
                &actor,
                id,
                &provisioning_core::ops::SystemClock,
                &state.config.watch_settings(),
            )
            .await?;
        ok(StatusCode::OK, &BalanceList { items })
    })
    .await
}

/// A host's scheduled jobs: interval, switch, last run and what it found.
#[utoipa::path(get, path = "/api/v1/hosts/{id}/schedule", tag = "watch",
    params(("id" = i64, Path, description = "The host's number")),
    responses((status = 200, description = "The host's jobs", body = ScheduleList),
        (status = 404, description = "No such host", body = ProblemBody, content_type = "application/problem+json")))]
async fn schedule(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "host").await?;
            ok(
                StatusCode::OK,
                &ScheduleList {
                    items: state
                        .core
                        .host_schedule(id, provisioning_core::store::now_ms())
                        .await?,
                },
            )
        }
        .await,
    )
}

/// Sets how often one of a host's jobs runs, or switches it off.
#[utoipa::path(put, path = "/api/v1/hosts/{id}/schedule", tag = "watch", request_body = ScheduleBody,
    params(("id" = i64, Path, description = "The host's number")),
    responses((status = 200, description = "The host's jobs now", body = ScheduleList),
        (status = 422, description = "An unknown job or an interval out of range", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such host", body = ProblemBody, content_type = "application/problem+json")))]
async fn set_schedule(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Response {
    let c = mutating(&state, &headers, &method, &uri, &bytes);
    let (state, bytes) = (&state, &bytes);
    once(c, all, move |p: Principal| async move {
        let actor = state
            .core
            .authorize(&p, Operation::HostSchedule, &host_target(id))
            .await?;
        let b: ScheduleBody = body(bytes)?;
        let now = provisioning_core::store::now_ms();
        state
            .core
            .set_host_schedule(
                &actor,
                id,
                &b.job,
                &b.interval_s.to_string(),
                b.enabled,
                now,
            )
            .await?;
        ok(
            StatusCode::OK,
            &ScheduleList {
                items: state.core.host_schedule(id, now).await?,
            },
        )
    })
    .await
}

/// Open incidents (a ready batch not ready, drift, a failing probe, a low
/// balance), oldest first, and the newest resolved ones.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "watch",
    params(Page),
    responses((status = 200, description = "Incidents", body = IncidentList)))]
async fn incidents(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Response {
    respond(
        async {
            allowed(&state, &headers, Operation::Read, "incident").await?;
            let limit = page.limit.unwrap_or(20).clamp(1, 100);
            let (open, resolved) = state.core.incidents(limit as i64).await?;
            ok(StatusCode::OK, &IncidentList { open, resolved })
        }
        .await,
    )
}
