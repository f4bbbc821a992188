//! Form handlers: every change an operator makes arrives here as a plain
//! form POST to the page's own URL. Each handler checks the CSRF token and
//! the role, calls one core operation, and answers a success with a 303 to
//! the next page (its message in the session) and a failure by rendering the
//! same page with the message, the typed values (never secrets) and a 4xx.

use super::auth::{self, OPERATOR_ID};
use super::router::shell;
use super::state::AppState;
use crate::i18n::{Lang, Msg};
use crate::page::{Flash, PageCtx};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, request::Parts, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use leptos::prelude::provide_context;
use provisioning_core::model::{FieldError, HostInput, ProbeStatus, Role};
use provisioning_core::ops::{OpError, Operation, Principal, SignInError};
use provisioning_core::secrets::{random_hex, Secret};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use tower_sessions::Session;

type FormMap = HashMap<String, String>;

/// Fields never echoed back into a page.
const SECRET_FIELDS: &[&str] = &[
    "_csrf",
    "keys",
    "keys_file",
    "password",
    "current_password",
    "new_password",
    "confirm_password",
    "token",
    "admin_api_key",
    "admin_password",
    "probe_user_password",
    "new_key",
    // A webhook's URL carries a bot's token; its signing secret.
    "url",
    "secret",
];

fn get<'a>(f: &'a FormMap, k: &str) -> &'a str {
    f.get(k).map(String::as_str).unwrap_or("")
}

fn page_ctx(parts: &Parts) -> PageCtx {
    parts
        .extensions
        .get::<PageCtx>()
        .cloned()
        .unwrap_or_default()
}

/// What a successful submission answers: a redirect with a message, or the
/// page itself (for what must not pass through the session).
enum Answer {
    Done(String, bool),
    Page(Box<Flash>),
}

/// A failed submission: what to show and with which status.
struct Failure {
    status: StatusCode,
    message: String,
    field: Option<String>,
    details: Vec<String>,
    /// The core's coded message, written in the reader's language.
    said: Option<provisioning_core::model::Said>,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            field: None,
            details: Vec::new(),
            said: None,
        }
    }

    fn field(status: StatusCode, f: FieldError) -> Self {
        Failure {
            status,
            message: f.to_string(),
            field: Some(f.field),
            details: Vec::new(),
            said: f.said,
        }
    }
}

impl From<OpError> for Failure {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Invalid(f) => Failure::field(StatusCode::BAD_REQUEST, f),
            OpError::Conflict(f) => Failure::field(StatusCode::CONFLICT, f),
            OpError::Throttled(f) => Failure::field(StatusCode::TOO_MANY_REQUESTS, f),
            OpError::Forbidden(provisioning_core::ops::Denied::Own { field, code }) => {
                Failure::field(StatusCode::FORBIDDEN, FieldError::coded(field, code, &[]))
            }
            OpError::Forbidden(why) => Failure::new(StatusCode::FORBIDDEN, why.sentence()),
            OpError::Unauthorized(why) => Failure::new(StatusCode::UNAUTHORIZED, why),
            OpError::NotFound(what) => {
                Failure::new(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            OpError::Host(why) => Failure::new(
                StatusCode::BAD_GATEWAY,
                format!("The host could not be read: {why}. Nothing was changed."),
            ),
            other => {
                tracing::error!(error = %other, "internal error in a form handler");
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something failed on the server; its log has the details. Nothing was changed.",
                )
            }
        }
    }
}

/// Renders the page at `path` with the failure shown and the form refilled.
/// The audit name of the form a refusal answers: (action, target), as the
/// form's handler names them when it succeeds. Sign-in and setup audit
/// their own failures.
fn form_audit_name(path: &str, form: &FormMap) -> Option<(String, String)> {
    let act = get(form, "action");
    let act = if !act.is_empty()
        && act.len() <= 32
        && act.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        act
    } else {
        "unknown"
    };
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (action, target) = match seg.as_slice() {
        ["hosts", "new"] => ("host.create".to_string(), "host:new".to_string()),
        ["hosts", id] => (format!("host.{act}"), format!("host:{id}")),
        ["hosts", id, "edit"] => ("host.update".into(), format!("host:{id}")),
        ["hosts", id, "delete"] => ("host.delete".into(), format!("host:{id}")),
        ["hosts", id, "drift"] => (format!("host.drift_{act}"), format!("host:{id}")),
        ["operators"] => (format!("operator.{act}"), "operator".into()),
        ["account"] => ("operator.password_change".into(), "operator".into()),
        ["tokens"] => (format!("token.{act}"), "token".into()),
        ["webhooks"] => (format!("webhook.{act}"), "webhook".into()),
        ["packs"] => ("pack.upload".into(), "pack:new".into()),
        ["batches", "new"] => ("batch.plan".into(), "batch:new".into()),
        ["batches", id] => (format!("batch.{act}"), format!("batch:{id}")),
        ["batches", id, "rollback"] => ("batch.rollback".into(), format!("batch:{id}")),
        ["batches", id, "review"] => ("batch.review".into(), format!("batch:{id}")),
        ["batches", id, "replace"] => ("batch.replace_key".into(), format!("batch:{id}")),
        _ => return None,
    };
    Some((action, target))
}

async fn render_failure(
    state: &AppState,
    parts: &Parts,
    path: &str,
    form: &FormMap,
    f: Failure,
) -> Response {
    // A refused form is audited too (refusals by role already were, as
    // `denied`): who tried what, and why it was refused. The message names
    // the field and the problem, never a secret value.
    let outcome = match f.status {
        StatusCode::BAD_REQUEST
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::PAYLOAD_TOO_LARGE => Some("invalid"),
        StatusCode::CONFLICT => Some("conflict"),
        StatusCode::TOO_MANY_REQUESTS => Some("throttled"),
        StatusCode::NOT_FOUND => Some("not_found"),
        _ => None,
    };
    // The core audits its four-eyes refusals itself.
    let core_audited = f
        .said
        .as_ref()
        .is_some_and(|s| provisioning_core::ops::review::AUDITED_CODES.contains(&s.code.as_str()));
    if let (Some(outcome), Some(op), Some((action, target))) = (
        outcome.filter(|_| !core_audited),
        page_ctx(parts).operator,
        form_audit_name(path, form),
    ) {
        let detail: String = match &f.field {
            Some(field) if !f.message.starts_with(field.as_str()) => {
                format!("{field}: {}", f.message)
            }
            _ => f.message.clone(),
        }
        .chars()
        .take(300)
        .collect();
        if let Err(e) = state
            .core
            .store
            .audit(&op.username, &action, &target, outcome, &detail)
            .await
        {
            tracing::warn!(error = %e, "could not audit a refused form");
        }
    }
    let lang = page_ctx(parts).lang;
    let message = match (&f.said, &f.field) {
        (Some(said), Some(field)) if lang == crate::i18n::Lang::Zh => {
            format!(
                "{}：{}",
                crate::i18n::field_name(lang, field),
                crate::i18n::said(lang, Some(said), &f.message)
            )
        }
        _ => f.message,
    };
    let values: BTreeMap<String, String> = form
        .iter()
        .filter(|(k, _)| !SECRET_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.chars().take(1000).collect()))
        .collect();
    let flash = Flash {
        ok: false,
        message,
        field: f.field,
        details: f.details,
        values,
        shown_once: None,
    };
    render_page(state, parts, path, flash, f.status).await
}

/// Renders the page at `path` with `flash` shown, as the answer to a form
/// (never cached; nothing of it is kept in the session).
async fn render_page(
    state: &AppState,
    parts: &Parts,
    path: &str,
    flash: Flash,
    status: StatusCode,
) -> Response {
    let mut ctx = page_ctx(parts);
    ctx.path = path.to_string();
    ctx.flash = Some(flash);
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Body::empty())
        .expect("static request");
    *req.headers_mut() = parts.headers.clone();
    req.headers_mut().remove(header::CONTENT_TYPE);
    req.headers_mut().remove(header::CONTENT_LENGTH);
    *req.extensions_mut() = parts.extensions.clone();
    req.extensions_mut().insert(ctx);
    let st = state.clone();
    let opts = state.leptos_options.clone();
    let render = leptos_axum::render_app_async_with_context(
        move || provide_context(st.clone()),
        move || shell(opts.clone()),
    );
    let mut resp = render(req).await;
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn done(session: &Session, to: &str, message: String, ok: bool) -> Response {
    auth::set_flash(
        session,
        Flash {
            ok,
            message,
            ..Default::default()
        },
    )
    .await;
    Redirect::to(to).into_response()
}

/// A destructive form's confirmation box: refused (400, naming `confirm`)
/// unless ticked.
fn confirmed(form: &FormMap, lang: Lang, why: Msg) -> Result<(), Failure> {
    if get(form, "confirm") == "yes" {
        Ok(())
    } else {
        Err(Failure::field(
            StatusCode::BAD_REQUEST,
            FieldError::new("confirm", lang.msg(why, &[])),
        ))
    }
}

fn csrf_ok(ctx: &PageCtx, form: &FormMap) -> Result<(), Failure> {
    if !ctx.csrf.is_empty() && get(form, "_csrf") == ctx.csrf {
        Ok(())
    } else {
        Err(Failure::new(
            StatusCode::FORBIDDEN,
            ctx.lang.msg(Msg::FormExpired, &[]),
        ))
    }
}

/// The signed-in operator as the core's principal (401 when signed out).
fn signed_in(ctx: &PageCtx) -> Result<Principal, Failure> {
    let me = ctx
        .operator
        .as_ref()
        .ok_or_else(|| Failure::new(StatusCode::UNAUTHORIZED, ctx.lang.msg(Msg::SignedOut, &[])))?;
    Ok(Principal::operator(me.id, &me.username, me.role))
}

/// A core error for a form: a refusal of `op` in the reader's language.
fn refused(ctx: &PageCtx, p: &Principal, op: Operation, e: OpError) -> Failure {
    match e {
        OpError::Forbidden(provisioning_core::ops::Denied::Own { .. }) => e.into(),
        OpError::Forbidden(_) => Failure::new(
            StatusCode::FORBIDDEN,
            ctx.lang.msg(
                Msg::RoleDenied,
                &[("role", &p.role), ("needed", &op.rule().role)],
            ),
        ),
        other => other.into(),
    }
}

/// A form's `action` the handler does not know.
fn unknown_action(ctx: &PageCtx, other: &str) -> Failure {
    Failure::field(
        StatusCode::BAD_REQUEST,
        FieldError::new(
            "action",
            ctx.lang.msg(Msg::UnknownAction, &[("action", &other)]),
        ),
    )
}

/// Asks the core whether the signed-in operator may do `op`; a refusal is
/// audited there.
async fn allowed(
    state: &AppState,
    ctx: &PageCtx,
    op: Operation,
    target: &str,
) -> Result<String, Failure> {
    let p = signed_in(ctx)?;
    state
        .core
        .authorize(&p, op, target)
        .await
        .map_err(|e| refused(ctx, &p, op, e))
}

fn client_addr(state: &AppState, parts: &Parts) -> String {
    if state.config.trust_proxy {
        if let Some(v) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            // The right-most entry is the one the trusted proxy appended;
            // everything left of it is whatever the client sent.
            if let Some(last) = v.rsplit(',').map(str::trim).find(|s| !s.is_empty()) {
                return last.to_string();
            }
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Starts a fresh session for a signed-in operator: new id (no fixation),
/// new CSRF token.
async fn start_session(
    session: &Session,
    op: &provisioning_core::store::OperatorRow,
) -> Result<(), Failure> {
    let fail = |e: tower_sessions::session::Error| {
        tracing::error!(error = %e, "session write failed");
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Lang::En.msg(Msg::SessionFailed, &[]),
        )
    };
    session.cycle_id().await.map_err(fail)?;
    session.insert(OPERATOR_ID, op.id).await.map_err(fail)?;
    session
        .insert(auth::OPERATOR_EPOCH, op.session_epoch)
        .await
        .map_err(fail)?;
    session
        .insert(auth::CSRF, random_hex(16))
        .await
        .map_err(fail)?;
    auth::touch(session).await.map_err(fail)?;
    Ok(())
}

pub async fn sign_in(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let addr = client_addr(&state, &parts);
        let op = state
            .core
            .sign_in(
                get(&form, "username"),
                Secret::new(get(&form, "password")),
                &addr,
            )
            .await
            .map_err(|e| match e {
                SignInError::BadCredentials => Failure::new(
                    StatusCode::UNAUTHORIZED,
                    ctx.lang.msg(Msg::WrongPassword, &[]),
                ),
                SignInError::Throttled { retry_after_s } => Failure::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ctx.lang
                        .msg(Msg::Throttled, &[("minutes", &retry_after_s.div_ceil(60))]),
                ),
                SignInError::Op(e) => e.into(),
            })?;
        start_session(&session, &op).await?;
        Ok::<_, Failure>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/").into_response(),
        Err(f) => render_failure(&state, &parts, "/login", &form, f).await,
    }
}

pub async fn setup(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let op = state
            .core
            .complete_setup(
                get(&form, "token"),
                get(&form, "username"),
                Secret::new(get(&form, "password")),
            )
            .await?;
        start_session(&session, &op).await?;
        Ok::<_, Failure>(op.username)
    }
    .await;
    match result {
        Ok(name) => {
            done(
                &session,
                "/",
                ctx.lang.msg(Msg::Welcome, &[("name", &name)]),
                true,
            )
            .await
        }
        Err(f) => render_failure(&state, &parts, "/setup", &form, f).await,
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    if csrf_ok(&ctx, &form).is_err() {
        return Redirect::to("/").into_response();
    }
    if let Some(op) = &ctx.operator {
        let _ = state
            .core
            .store
            .audit(
                &op.username,
                "session.sign_out",
                &format!("operator:{}", op.username),
                "ok",
                "",
            )
            .await;
    }
    let _ = session.flush().await;
    Redirect::to("/login").into_response()
}

fn host_input(form: &FormMap) -> HostInput {
    HostInput {
        name: get(form, "name").into(),
        base_url: get(form, "base_url").into(),
        auth_kind: get(form, "auth_kind").into(),
        admin_api_key: get(form, "admin_api_key").into(),
        admin_email: get(form, "admin_email").into(),
        admin_password: get(form, "admin_password").into(),
        probe_user_email: get(form, "probe_user_email").into(),
        probe_user_password: get(form, "probe_user_password").into(),
    }
}

fn probe_message(lang: Lang, status: ProbeStatus, headline: &str) -> (String, bool) {
    let (m, ok) = match status {
        ProbeStatus::Ok => (Msg::ProbeOk, true),
        ProbeStatus::Warning => (Msg::ProbeWarning, true),
        ProbeStatus::Failing => (Msg::ProbeFailing, false),
    };
    (lang.msg(m, &[("headline", &headline)]), ok)
}

pub async fn create_host(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let actor = allowed(&state, &ctx, Operation::HostCreate, "host:new").await?;
        let view = state.core.create_host(&actor, &host_input(&form)).await?;
        // A first probe right away, so the capability matrix is there.
        let rec = state.core.probe_host(&actor, view.id).await?;
        Ok::<_, Failure>((view, rec))
    }
    .await;
    match result {
        Ok((view, rec)) => {
            let (msg, ok) = probe_message(ctx.lang, rec.report.status, &rec.report.headline());
            done(
                &session,
                &format!("/hosts/{}", view.id),
                ctx.lang
                    .msg(Msg::HostAdded, &[("name", &view.name), ("probe", &msg)]),
                ok,
            )
            .await
        }
        Err(f) => render_failure(&state, &parts, "/hosts/new", &form, f).await,
    }
}

pub async fn host_action(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let path = format!("/hosts/{id}");
    let result = async {
        csrf_ok(&ctx, &form)?;
        match get(&form, "action") {
            "protect" | "unprotect" => {
                let p = signed_in(&ctx)?;
                let on = get(&form, "action") == "protect";
                state
                    .core
                    .set_host_protected(&p, id, on)
                    .await
                    .map_err(|e| refused(&ctx, &p, Operation::HostProtect, e))?;
                Ok(Answer::Done(
                    ctx.lang.msg(
                        if on {
                            Msg::HostProtected
                        } else {
                            Msg::HostUnprotected
                        },
                        &[],
                    ),
                    true,
                ))
            }
            "schedule" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::HostSchedule,
                    &provisioning_core::model::host_target(id),
                )
                .await?;
                let on = get(&form, "enabled") == "yes";
                state
                    .core
                    .set_host_schedule(
                        &actor,
                        id,
                        get(&form, "job"),
                        get(&form, "interval_s"),
                        on,
                        provisioning_core::store::now_ms(),
                    )
                    .await?;
                Ok(Answer::Done(
                    ctx.lang.msg(
                        if on {
                            Msg::ScheduleSaved
                        } else {
                            Msg::ScheduleOff
                        },
                        &[
                            ("job", &get(&form, "job")),
                            ("secs", &get(&form, "interval_s")),
                        ],
                    ),
                    true,
                ))
            }
            "probe" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::HostProbe,
                    &provisioning_core::model::host_target(id),
                )
                .await?;
                let rec = state.core.probe_host(&actor, id).await?;
                let (msg, ok) = probe_message(ctx.lang, rec.report.status, &rec.report.headline());
                Ok(Answer::Done(msg, ok))
            }
            "accept_compliance" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::HostComplianceAccept,
                    &provisioning_core::model::host_target(id),
                )
                .await?;
                let rec = state
                    .core
                    .accept_compliance(&actor, id, get(&form, "phrase"))
                    .await?;
                let (msg, ok) = probe_message(ctx.lang, rec.report.status, &rec.report.headline());
                Ok(Answer::Done(
                    ctx.lang.msg(Msg::ComplianceAccepted, &[("probe", &msg)]),
                    ok,
                ))
            }
            "obtain_admin_key" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::HostAdminKeyObtain,
                    &provisioning_core::model::host_target(id),
                )
                .await?;
                let key = state
                    .core
                    .obtain_admin_key(&actor, id, get(&form, "confirm") == "yes")
                    .await?;
                // Shown in this answer only: not in the session, not logged.
                let flash = Flash {
                    ok: true,
                    message: ctx.lang.msg(Msg::AdminKeyShownOnce, &[]),
                    shown_once: Some(key.expose().to_string()),
                    ..Default::default()
                };
                Ok(Answer::Page(Box::new(flash)))
            }
            other => Err(unknown_action(&ctx, other)),
        }
    }
    .await;
    match result {
        Ok(Answer::Done(msg, ok)) => done(&session, &path, msg, ok).await,
        Ok(Answer::Page(flash)) => render_page(&state, &parts, &path, *flash, StatusCode::OK).await,
        Err(f) => render_failure(&state, &parts, &path, &form, f).await,
    }
}

pub async fn edit_host(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let actor = allowed(
            &state,
            &ctx,
            Operation::HostUpdate,
            &provisioning_core::model::host_target(id),
        )
        .await?;
        Ok::<_, Failure>(
            state
                .core
                .update_host(&actor, id, &host_input(&form))
                .await?,
        )
    }
    .await;
    match result {
        Ok(v) => {
            done(
                &session,
                &format!("/hosts/{id}"),
                ctx.lang.msg(Msg::HostSaved, &[("name", &v.name)]),
                true,
            )
            .await
        }
        Err(f) => render_failure(&state, &parts, &format!("/hosts/{id}/edit"), &form, f).await,
    }
}

pub async fn delete_host(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let actor = allowed(
            &state,
            &ctx,
            Operation::HostDelete,
            &provisioning_core::model::host_target(id),
        )
        .await?;
        let host = state.core.host_view(id).await?;
        if get(&form, "confirm").trim() != host.name {
            return Err(Failure::field(
                StatusCode::BAD_REQUEST,
                FieldError::new(
                    "confirm",
                    format!("must be the host name `{}` exactly", host.name),
                ),
            ));
        }
        state.core.delete_host(&actor, id).await?;
        Ok::<_, Failure>(host.name)
    }
    .await;
    match result {
        Ok(name) => {
            done(
                &session,
                "/hosts",
                ctx.lang.msg(Msg::HostRemoved, &[("name", &name)]),
                true,
            )
            .await
        }
        Err(f) => render_failure(&state, &parts, &format!("/hosts/{id}/delete"), &form, f).await,
    }
}

pub async fn operators(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        match get(&form, "action") {
            "create" => {
                let actor =
                    allowed(&state, &ctx, Operation::OperatorCreate, "operator:new").await?;
                let role = Role::parse(get(&form, "role"))
                    .map_err(|f| Failure::field(StatusCode::BAD_REQUEST, f))?;
                let op = state
                    .core
                    .create_operator(
                        &actor,
                        get(&form, "username"),
                        Secret::new(get(&form, "password")),
                        role,
                    )
                    .await?;
                Ok::<_, Failure>(ctx.lang.msg(
                    Msg::OperatorAdded,
                    &[("name", &op.username), ("role", &role)],
                ))
            }
            "update" => {
                let actor = allowed(&state, &ctx, Operation::OperatorUpdate, "operator").await?;
                let id: i64 = get(&form, "id").parse().map_err(|_| {
                    Failure::field(
                        StatusCode::BAD_REQUEST,
                        FieldError::new("id", ctx.lang.msg(Msg::NotANumber, &[])),
                    )
                })?;
                let role = Role::parse(get(&form, "role"))
                    .map_err(|f| Failure::field(StatusCode::BAD_REQUEST, f))?;
                let disabled = get(&form, "disabled") == "1";
                let op = state
                    .core
                    .update_operator(&actor, id, role, disabled)
                    .await?;
                Ok(format!(
                    "Operator {} is now {role}{}.",
                    op.username,
                    if disabled { ", disabled" } else { "" }
                ))
            }
            "reset_password" | "remove" => {
                let reset = get(&form, "action") == "reset_password";
                let what = if reset {
                    Operation::OperatorResetPassword
                } else {
                    Operation::OperatorRemove
                };
                let actor = allowed(&state, &ctx, what, "operator").await?;
                let me = ctx.operator.as_ref().map(|o| o.id).unwrap_or_default();
                let id: i64 = get(&form, "id").parse().map_err(|_| {
                    Failure::field(
                        StatusCode::BAD_REQUEST,
                        FieldError::new("id", ctx.lang.msg(Msg::NotANumber, &[])),
                    )
                })?;
                if reset {
                    let name = state
                        .core
                        .reset_password(&actor, me, id, Secret::new(get(&form, "password")))
                        .await?;
                    Ok(ctx.lang.msg(Msg::PasswordReset, &[("name", &name)]))
                } else {
                    confirmed(&form, ctx.lang, Msg::ConfirmRemoveOperator)?;
                    let name = state.core.remove_operator(&actor, me, id).await?;
                    Ok(ctx.lang.msg(Msg::OperatorRemoved, &[("name", &name)]))
                }
            }
            other => Err(unknown_action(&ctx, other)),
        }
    }
    .await;
    match result {
        Ok(msg) => done(&session, "/operators", msg, true).await,
        Err(f) => render_failure(&state, &parts, "/operators", &form, f).await,
    }
}

/// `POST /tokens`: an admin creates an API token for an operator (shown in
/// this answer only) or revokes one.
pub async fn tokens(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let principal = signed_in(&ctx)?;
        let denied = |e| refused(&ctx, &principal, Operation::TokenManage, e);
        match get(&form, "action") {
            "create" => {
                let req = provisioning_core::ops::TokenRequest {
                    operator_id: get(&form, "operator_id").parse().unwrap_or(-1),
                    name: get(&form, "name").to_string(),
                    scope: get(&form, "scope").to_string(),
                    days: get(&form, "days").to_string(),
                };
                let (token, secret) = state
                    .core
                    .create_token(&principal, &req)
                    .await
                    .map_err(denied)?;
                // Shown in this answer only: not in the session, not logged.
                let flash = Flash {
                    ok: true,
                    message: ctx.lang.msg(
                        Msg::TokenShownOnce,
                        &[("name", &token.name), ("user", &token.username)],
                    ),
                    shown_once: Some(secret.expose().to_string()),
                    ..Default::default()
                };
                Ok(Answer::Page(Box::new(flash)))
            }
            "revoke" => {
                let id: i64 = get(&form, "id").parse().map_err(|_| {
                    Failure::field(
                        StatusCode::BAD_REQUEST,
                        FieldError::new("id", ctx.lang.msg(Msg::NotANumber, &[])),
                    )
                })?;
                confirmed(&form, ctx.lang, Msg::ConfirmRevokeToken)?;
                state
                    .core
                    .revoke_token(&principal, id)
                    .await
                    .map_err(denied)?;
                Ok(Answer::Done(
                    ctx.lang.msg(Msg::TokenRevoked, &[("id", &id)]),
                    true,
                ))
            }
            other => Err(unknown_action(&ctx, other)),
        }
    }
    .await;
    match result {
        Ok(Answer::Done(msg, ok)) => done(&session, "/tokens", msg, ok).await,
        Ok(Answer::Page(flash)) => {
            render_page(&state, &parts, "/tokens", *flash, StatusCode::OK).await
        }
        Err(f) => render_failure(&state, &parts, "/tokens", &form, f).await,
    }
}

/// `POST /webhooks`: add, remove or test a webhook (admins).
pub async fn webhooks(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let actor = allowed(&state, &ctx, Operation::WebhookManage, "webhook").await?;
        let id = || -> Result<i64, Failure> {
            get(&form, "id").parse().map_err(|_| {
                Failure::field(
                    StatusCode::BAD_REQUEST,
                    FieldError::new("id", ctx.lang.msg(Msg::NotANumber, &[])),
                )
            })
        };
        match get(&form, "action") {
            "create" => {
                let input = provisioning_core::ops::WebhookInput {
                    name: get(&form, "name").to_string(),
                    url: get(&form, "url").to_string(),
                    format: get(&form, "format").to_string(),
                    kinds: provisioning_core::model::AlertKind::ALL
                        .iter()
                        .filter(|k| get(&form, &format!("kind_{}", k.as_str())) == "yes")
                        .map(|k| k.as_str().to_string())
                        .collect(),
                    secret: get(&form, "secret").to_string(),
                };
                let (w, secret) = state.core.create_webhook(&actor, &input).await?;
                Ok(match secret {
                    // Shown in this answer only: not in the session, not logged.
                    Some(secret) => Answer::Page(Box::new(Flash {
                        ok: true,
                        message: ctx
                            .lang
                            .msg(Msg::WebhookSecretShownOnce, &[("name", &w.name)]),
                        shown_once: Some(secret),
                        ..Default::default()
                    })),
                    None => {
                        Answer::Done(ctx.lang.msg(Msg::WebhookAdded, &[("name", &w.name)]), true)
                    }
                })
            }
            "delete" => {
                let id = id()?;
                confirmed(&form, ctx.lang, Msg::ConfirmRemoveWebhook)?;
                state.core.delete_webhook(&actor, id).await?;
                Ok(Answer::Done(
                    ctx.lang.msg(Msg::WebhookRemoved, &[("id", &id)]),
                    true,
                ))
            }
            "test" => {
                let d = state
                    .core
                    .test_webhook(&actor, id()?, &provisioning_core::ops::SystemClock)
                    .await?;
                let answer = d
                    .last_status
                    .map(|s| format!("HTTP {s}"))
                    .unwrap_or_else(|| "—".into());
                Ok(if d.state == "delivered" {
                    Answer::Done(
                        ctx.lang.msg(
                            Msg::WebhookTestDelivered,
                            &[("name", &d.webhook), ("answer", &answer)],
                        ),
                        true,
                    )
                } else {
                    Answer::Done(
                        ctx.lang.msg(
                            Msg::WebhookTestFailed,
                            &[
                                ("name", &d.webhook),
                                ("answer", &answer),
                                ("error", &d.last_error),
                            ],
                        ),
                        false,
                    )
                })
            }
            other => Err(unknown_action(&ctx, other)),
        }
    }
    .await;
    match result {
        Ok(Answer::Done(msg, ok)) => done(&session, "/webhooks", msg, ok).await,
        Ok(Answer::Page(flash)) => {
            render_page(&state, &parts, "/webhooks", *flash, StatusCode::OK).await
        }
        Err(f) => render_failure(&state, &parts, "/webhooks", &form, f).await,
    }
}

/// `POST /account`: the signed-in operator changes their own password with
/// the current one; other sessions end, this one carries on.
pub async fn change_password(
    State(state): State<AppState>,
    session: Session,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let Some(op) = &ctx.operator else {
            return Err(Failure::new(
                StatusCode::UNAUTHORIZED,
                ctx.lang.msg(Msg::SignedOut, &[]),
            ));
        };
        if get(&form, "new_password") != get(&form, "confirm_password") {
            return Err(Failure::field(
                StatusCode::BAD_REQUEST,
                FieldError::new("confirm_password", ctx.lang.msg(Msg::PasswordMismatch, &[])),
            ));
        }
        let epoch = state
            .core
            .change_password(
                op.id,
                Secret::new(get(&form, "current_password")),
                Secret::new(get(&form, "new_password")),
            )
            .await?;
        // This session goes on under a new id and the new epoch.
        let row = state
            .core
            .store
            .operator_by_id(op.id)
            .await
            .map_err(OpError::from)?
            .filter(|r| r.session_epoch == epoch)
            .ok_or_else(|| {
                Failure::new(StatusCode::CONFLICT, ctx.lang.msg(Msg::AccountChanged, &[]))
            })?;
        start_session(&session, &row).await?;
        Ok::<_, Failure>(())
    }
    .await;
    match result {
        Ok(()) => {
            done(
                &session,
                "/account",
                ctx.lang.msg(Msg::PasswordChanged, &[]),
                true,
            )
            .await
        }
        Err(f) => render_failure(&state, &parts, "/account", &form, f).await,
    }
}

#[derive(serde::Deserialize)]
pub struct LangQuery {
    to: String,
}

/// `GET /lang?to=zh`: remembers the language in a cookie and goes back.
pub async fn set_lang(Query(q): Query<LangQuery>, parts: Parts) -> Response {
    let lang = crate::i18n::Lang::parse(&q.to).unwrap_or_default();
    let back = parts
        .headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| {
            // Only go back to a path on this site.
            let after_scheme = r.split_once("://").map(|(_, rest)| rest).unwrap_or(r);
            after_scheme
                .find('/')
                .map(|i| after_scheme[i..].to_string())
        })
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".into());
    let mut resp = Redirect::to(&back).into_response();
    let cookie = format!(
        "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.code()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Reads a form that may be urlencoded or multipart (file uploads). File
/// fields are read as UTF-8 text and stored under their field name.
async fn read_form(state: &AppState, req: Request<Body>) -> Result<(Parts, FormMap), Failure> {
    use axum::extract::{FromRequest, Multipart};
    let (parts, body) = req.into_parts();
    let is_multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let lang = auth::lang_from(&parts.headers);
    let req = Request::from_parts(parts.clone(), body);
    let too_big = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            lang.msg(Msg::UploadTooLarge, &[]),
        )
    };
    let mut form = FormMap::new();
    if is_multipart {
        let mut mp = Multipart::from_request(req, state).await.map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("The upload could not be read: {e}"),
            )
        })?;
        while let Some(field) = mp.next_field().await.map_err(|_| too_big())? {
            let name = field.name().unwrap_or("").to_string();
            let bytes = field.bytes().await.map_err(|_| too_big())?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                Failure::field(
                    StatusCode::BAD_REQUEST,
                    FieldError::new(name.clone(), "is not UTF-8 text"),
                )
            })?;
            form.insert(name, text);
        }
    } else {
        let Form(f) = Form::<FormMap>::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_big()
                } else {
                    Failure::new(
                        StatusCode::BAD_REQUEST,
                        format!("The form could not be read: {e}"),
                    )
                }
            })?;
        form = f;
    }
    Ok((parts, form))
}

pub async fn upload_pack(
    State(state): State<AppState>,
    session: Session,
    req: Request<Body>,
) -> Response {
    let (parts, form) = match read_form(&state, req).await {
        Ok(x) => x,
        Err(f) => return f.into_plain(),
    };
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let actor = allowed(&state, &ctx, Operation::PackUpload, "pack:new").await?;
        let file = get(&form, "file");
        let source = if file.trim().is_empty() {
            get(&form, "source")
        } else {
            file
        };
        match state.core.upload_pack(&actor, source).await {
            Ok((id, created)) => Ok((id, created)),
            Err(Ok(issues)) => Err(Failure {
                status: StatusCode::BAD_REQUEST,
                message: if issues.len() == 1 {
                    ctx.lang.msg(Msg::PackOneProblem, &[])
                } else {
                    ctx.lang.msg(Msg::PackProblems, &[("n", &issues.len())])
                },
                field: Some("source".into()),
                details: issues
                    .iter()
                    .map(|i| crate::i18n::pack_issue(ctx.lang, i))
                    .collect(),
                said: None,
            }),
            Err(Err(e)) => Err(e.into()),
        }
    }
    .await;
    match result {
        Ok((id, created)) => {
            let msg = if created {
                ctx.lang.msg(Msg::PackStored, &[])
            } else {
                ctx.lang.msg(Msg::PackKnown, &[])
            };
            done(&session, &format!("/packs/{id}"), msg, true).await
        }
        Err(f) => {
            let mut form = form;
            form.remove("file");
            render_failure(&state, &parts, "/packs", &form, f).await
        }
    }
}

pub async fn new_batch(
    State(state): State<AppState>,
    session: Session,
    req: Request<Body>,
) -> Response {
    use provisioning_core::model::AccessMode;
    use provisioning_core::ops::BatchRequest;
    let (parts, form) = match read_form(&state, req).await {
        Ok(x) => x,
        Err(f) => return f.into_plain(),
    };
    let ctx = page_ctx(&parts);
    let result = async {
        csrf_ok(&ctx, &form)?;
        let actor = allowed(&state, &ctx, Operation::BatchPlan, "batch:new").await?;
        let bad = |field: &str, msg: &str| {
            Failure::field(StatusCode::BAD_REQUEST, FieldError::new(field, msg))
        };
        let host_id: i64 = get(&form, "host_id")
            .parse()
            .map_err(|_| bad("host_id", "choose a host"))?;
        let (pv, provider) = get(&form, "provider")
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.to_string())))
            .ok_or_else(|| bad("provider", "choose a provider"))?;
        let mode = match get(&form, "mode") {
            "" | "default" => None,
            m => Some(
                AccessMode::parse(m)
                    .ok_or_else(|| bad("mode", "must be self_service or subscription"))?,
            ),
        };
        let file = get(&form, "keys_file");
        let keys_text = if file.trim().is_empty() {
            get(&form, "keys")
        } else {
            file
        };
        let req = BatchRequest {
            host_id,
            pack_version_id: pv,
            provider_key: provider,
            mode,
            keys_text: keys_text.to_string(),
        };
        Ok::<_, Failure>(state.core.plan_batch(&actor, &req).await?)
    }
    .await;
    match result {
        Ok(id) => {
            // A plan the host cannot run is stored (the page says why), but
            // it is not "ready".
            let blocked = state
                .core
                .batch_view(id)
                .await
                .map(|b| !b.plan.blockers.is_empty())
                .unwrap_or(false);
            let (msg, ok) = if blocked {
                (ctx.lang.msg(Msg::PlanBlocked, &[]), false)
            } else {
                (ctx.lang.msg(Msg::PlanReady, &[]), true)
            };
            done(&session, &format!("/batches/{id}"), msg, ok).await
        }
        Err(f) => {
            let mut form = form;
            form.remove("keys");
            form.remove("keys_file");
            render_failure(&state, &parts, "/batches/new", &form, f).await
        }
    }
}

pub async fn batch_action(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let path = format!("/batches/{id}");
    let result = async {
        csrf_ok(&ctx, &form)?;
        match get(&form, "action") {
            "apply" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::BatchApply,
                    &provisioning_core::model::batch_target(id),
                )
                .await?;
                let opts = state.config.apply_options();
                // The core claims the batch's lease before this returns: a
                // second apply (this process or another) is refused with 409.
                state.core.start_apply(&actor, id, opts).await?;
                Ok(ctx.lang.msg(Msg::Applying, &[]))
            }
            "retry_failed" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::BatchRetryFailed,
                    &provisioning_core::model::batch_target(id),
                )
                .await?;
                let failed = state.core.batch_view(id).await?.keys.failed;
                if failed == 0 {
                    return Err(Failure::field(
                        StatusCode::CONFLICT,
                        FieldError::new("batch", ctx.lang.msg(Msg::NoFailedKeys, &[])),
                    ));
                }
                let opts = state.config.apply_options();
                // A re-run of the same journal: steps that succeeded return
                // at once, so only the failed keys' accounts and tests are
                // sent again (then readiness is checked once more).
                state.core.start_apply(&actor, id, opts).await?;
                Ok(ctx.lang.msg(Msg::Retrying, &[("n", &failed)]))
            }
            "discard" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::BatchDiscard,
                    &provisioning_core::model::batch_target(id),
                )
                .await?;
                confirmed(&form, ctx.lang, Msg::ConfirmDiscard)?;
                state.core.discard_batch(&actor, id).await?;
                Ok(ctx.lang.msg(Msg::Discarded, &[]))
            }
            "remove_failed" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::BatchRemoveFailed,
                    &provisioning_core::model::batch_target(id),
                )
                .await?;
                confirmed(&form, ctx.lang, Msg::ConfirmRemoveFailed)?;
                let n = state.core.remove_failed_accounts(&actor, id).await?;
                Ok(ctx.lang.msg(Msg::RemovedFailed, &[("n", &n)]))
            }
            "pause_failed" | "resume_failed" => {
                let pause = get(&form, "action") == "pause_failed";
                let what = if pause {
                    Operation::BatchPauseFailed
                } else {
                    Operation::BatchResumeFailed
                };
                let actor = allowed(
                    &state,
                    &ctx,
                    what,
                    &provisioning_core::model::batch_target(id),
                )
                .await?;
                let n = state
                    .core
                    .set_failed_accounts_schedulable(&actor, id, !pause)
                    .await?;
                Ok(if pause {
                    ctx.lang.msg(Msg::PausedFailed, &[("n", &n)])
                } else {
                    ctx.lang.msg(Msg::ResumedFailed, &[("n", &n)])
                })
            }
            "approve" => {
                let p = signed_in(&ctx)?;
                let purpose = get(&form, "purpose");
                state
                    .core
                    .approve_batch(&p, id, purpose, get(&form, "digest"), get(&form, "comment"))
                    .await
                    .map_err(|e| refused(&ctx, &p, Operation::BatchApprove, e))?;
                Ok(if purpose == "rollback" {
                    ctx.lang.msg(Msg::ApprovedRollback, &[])
                } else {
                    ctx.lang.msg(Msg::ApprovedApply, &[])
                })
            }
            "readiness_check" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::BatchRecheck,
                    &provisioning_core::model::batch_target(id),
                )
                .await?;
                let c = state
                    .core
                    .recheck_readiness(&actor, id, &provisioning_core::ops::SystemClock)
                    .await?;
                Ok(ctx.lang.msg(
                    match c.outcome {
                        provisioning_core::model::CheckOutcome::Ready => Msg::RecheckedReady,
                        _ => Msg::RecheckedNotReady,
                    },
                    &[
                        ("access", &c.access_after.as_str()),
                        (
                            "detail",
                            &crate::i18n::said(ctx.lang, c.said.as_ref(), &c.detail),
                        ),
                    ],
                ))
            }
            "read_balances" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::BatchBalances,
                    &provisioning_core::model::batch_target(id),
                )
                .await?;
                let b = state
                    .core
                    .read_balances_now(
                        &actor,
                        id,
                        &provisioning_core::ops::SystemClock,
                        &state.config.watch_settings(),
                    )
                    .await?;
                let n = |s: provisioning_core::model::BalanceState| {
                    b.iter().filter(|x| x.state == s).count()
                };
                Ok(ctx.lang.msg(
                    Msg::BalancesRead,
                    &[
                        ("n", &b.len()),
                        ("known", &n(provisioning_core::model::BalanceState::Known)),
                        (
                            "unknown",
                            &n(provisioning_core::model::BalanceState::Unknown),
                        ),
                        (
                            "unsupported",
                            &n(provisioning_core::model::BalanceState::Unsupported),
                        ),
                        ("low", &b.iter().filter(|x| x.low).count()),
                    ],
                ))
            }
            "diagnose" => {
                let actor = allowed(
                    &state,
                    &ctx,
                    Operation::BatchDiagnose,
                    &provisioning_core::model::batch_target(id),
                )
                .await?;
                let r = state.core.diagnose_batch(&actor, id).await?;
                Ok(if r.items.is_empty() {
                    ctx.lang.msg(Msg::NothingToDiagnose, &[])
                } else {
                    ctx.lang.msg(
                        Msg::Diagnosed,
                        &[("n", &r.items.len()), ("spent", &r.upstream_completions)],
                    )
                })
            }
            other => Err(unknown_action(&ctx, other)),
        }
    }
    .await;
    // A rollback's approval is given on the rollback page: back there.
    let back = if get(&form, "action") == "approve" && get(&form, "purpose") == "rollback" {
        format!("{path}/rollback")
    } else {
        path
    };
    match result {
        Ok(msg) => done(&session, &back, msg, true).await,
        Err(f) => render_failure(&state, &parts, &back, &form, f).await,
    }
}

/// `POST /hosts/{id}/drift`: check now, repair a finding, or ignore one.
pub async fn drift_action(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let path = format!("/hosts/{id}/drift");
    let result = async {
        csrf_ok(&ctx, &form)?;
        let target = provisioning_core::model::host_target(id);
        match get(&form, "action") {
            "check" => {
                let actor = allowed(&state, &ctx, Operation::HostDriftCheck, &target).await?;
                let r = state.core.drift_check(&actor, id).await?;
                let open = r.findings.iter().filter(|f| f.ignored.is_none()).count();
                Ok(ctx
                    .lang
                    .msg(Msg::DriftChecked, &[("n", &r.compared), ("open", &open)]))
            }
            "repair" => {
                let actor = allowed(&state, &ctx, Operation::HostDriftRepair, &target).await?;
                let msg = state
                    .core
                    .repair_drift(&actor, id, get(&form, "key"), get(&form, "act"))
                    .await?;
                Ok(ctx.lang.msg(Msg::DriftRepaired, &[("what", &msg)]))
            }
            "ignore" => {
                let actor = allowed(&state, &ctx, Operation::HostDriftIgnore, &target).await?;
                let days = get(&form, "days").trim().parse::<i64>().map_err(|_| {
                    Failure::field(
                        StatusCode::BAD_REQUEST,
                        FieldError::new("days", "must be a whole number of days between 1 and 365"),
                    )
                })?;
                state
                    .core
                    .ignore_drift(&actor, id, get(&form, "key"), get(&form, "reason"), days)
                    .await?;
                Ok(ctx.lang.msg(Msg::DriftIgnored, &[]))
            }
            other => Err(unknown_action(&ctx, other)),
        }
    }
    .await;
    match result {
        Ok(msg) => done(&session, &path, msg, true).await,
        Err(f) => render_failure(&state, &parts, &path, &form, f).await,
    }
}

/// `POST /batches/{id}/rollback`: confirmed by typing the batch number.
pub async fn rollback_batch(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let path = format!("/batches/{id}/rollback");
    let result = async {
        csrf_ok(&ctx, &form)?;
        let actor = allowed(
            &state,
            &ctx,
            Operation::BatchRollback,
            &provisioning_core::model::batch_target(id),
        )
        .await?;
        if get(&form, "confirm").trim() != id.to_string() {
            return Err(Failure::field(
                StatusCode::BAD_REQUEST,
                FieldError::new(
                    "confirm",
                    format!("type the batch number ({id}) to confirm the rollback"),
                ),
            ));
        }
        let force = get(&form, "force") == "1";
        state.core.start_rollback(&actor, id, force).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            done(
                &session,
                &format!("/batches/{id}"),
                ctx.lang.msg(Msg::RollingBack, &[]),
                true,
            )
            .await
        }
        Err(f) => render_failure(&state, &parts, &path, &form, f).await,
    }
}

/// `POST /batches/{id}/replace`: a new key takes the place of an account.
pub async fn replace_key(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let path = format!("/batches/{id}/replace");
    let result = async {
        csrf_ok(&ctx, &form)?;
        let actor = allowed(
            &state,
            &ctx,
            Operation::BatchReplaceKey,
            &provisioning_core::model::batch_target(id),
        )
        .await?;
        let account: i64 = get(&form, "account").trim().parse().map_err(|_| {
            Failure::field(
                StatusCode::BAD_REQUEST,
                FieldError::new("account", ctx.lang.msg(Msg::ChooseAccount, &[])),
            )
        })?;
        confirmed(&form, ctx.lang, Msg::ConfirmReplace)?;
        let opts = state.config.apply_options();
        state
            .core
            .start_replace(&actor, id, account, get(&form, "new_key"), opts)
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            done(
                &session,
                &format!("/batches/{id}"),
                ctx.lang.msg(Msg::Replacing, &[]),
                true,
            )
            .await
        }
        Err(f) => render_failure(&state, &parts, &path, &form, f).await,
    }
}

impl Failure {
    /// For failures before the page context is known (unreadable uploads).
    fn into_plain(self) -> Response {
        (self.status, self.message).into_response()
    }
}

/// `POST /batches/{id}/review`: a reviewer's decision on the evidence they
/// saw (its digest comes with the form).
pub async fn review_batch(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    parts: Parts,
    Form(form): Form<FormMap>,
) -> Response {
    let ctx = page_ctx(&parts);
    let path = format!("/batches/{id}/review");
    let result = async {
        csrf_ok(&ctx, &form)?;
        let p = signed_in(&ctx)?;
        let decision = get(&form, "decision");
        state
            .core
            .review_batch(
                &p,
                id,
                decision,
                get(&form, "comment"),
                get(&form, "digest"),
            )
            .await
            .map_err(|e| refused(&ctx, &p, Operation::BatchReview, e))?;
        Ok(ctx.lang.msg(Msg::Reviewed, &[("decision", &decision)]))
    }
    .await;
    match result {
        Ok(msg) => done(&session, &format!("/batches/{id}#review"), msg, true).await,
        Err(f) => render_failure(&state, &parts, &path, &form, f).await,
    }
}
