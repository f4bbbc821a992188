//! Sessions and roles. The session holds only the operator id, the CSRF
//! token and a one-shot flash; the operator is read from the store on every
//! request so a disabled or demoted operator loses access at once.

use super::state::AppState;
use crate::api::{AppError, ErrorKind};
use crate::i18n::Lang;
use crate::page::{Flash, PageCtx};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::use_context;
use provisioning_core::model::OperatorView;
use provisioning_core::secrets::random_hex;
use tower_sessions::Session;

pub const OPERATOR_ID: &str = "operator_id";
/// The operator's session epoch when the session began (see
/// `OperatorRow::session_epoch`): a new password ends older sessions.
pub const OPERATOR_EPOCH: &str = "operator_epoch";
pub const CSRF: &str = "csrf";
pub const FLASH: &str = "flash";
/// When the session was last written (unix seconds). A session is saved,
/// and its idle expiry pushed back, only when something in it changes: this
/// changes at most once a minute, so a signed-in operator's page views
/// write nothing (each write is a durable commit) and the session still
/// ends `DASHBOARD_SESSION_IDLE_MINUTES` (less up to a minute) after the
/// last request.
pub const TOUCHED: &str = "touched_s";
const TOUCH_EVERY_S: i64 = 60;

/// The signed-in, enabled operator, if any.
pub async fn current_operator(state: &AppState, session: &Session) -> Option<OperatorView> {
    let id = session.get::<i64>(OPERATOR_ID).await.ok().flatten()?;
    let epoch = session
        .get::<i64>(OPERATOR_EPOCH)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    match state.core.store.operator_by_id(id).await {
        Ok(Some(op)) if op.active() && op.session_epoch == epoch => {
            let touched = session.get::<i64>(TOUCHED).await.ok().flatten();
            if unix_now() - touched.unwrap_or(0) >= TOUCH_EVERY_S {
                let _ = touch(session).await;
            }
            Some(op.view())
        }
        Ok(_) => None,
        Err(e) => {
            tracing::error!(error = %e, "loading the session's operator failed");
            None
        }
    }
}

fn unix_now() -> i64 {
    provisioning_core::store::now_ms() / 1000
}

/// Records the session as written now (see [`TOUCHED`]).
pub async fn touch(session: &Session) -> Result<(), tower_sessions::session::Error> {
    session.insert(TOUCHED, unix_now()).await
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF).await {
        return t;
    }
    let t = random_hex(16);
    let _ = session.insert(CSRF, &t).await;
    t
}

/// Stores a message for the next page the browser loads.
pub async fn set_flash(session: &Session, flash: Flash) {
    if let Err(e) = session.insert(FLASH, flash).await {
        tracing::warn!(error = %e, "storing a flash message failed");
    }
}

/// The language: the `lang` cookie, else `Accept-Language`.
pub fn lang_from(headers: &HeaderMap) -> Lang {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("lang="))
        .and_then(Lang::parse);
    cookie.unwrap_or_else(|| {
        Lang::from_accept_language(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        )
    })
}

/// Server functions call this first: the state, and the operator if the
/// core allows them `op`.
pub async fn require(
    op_kind: provisioning_core::ops::Operation,
) -> Result<(AppState, OperatorView), AppError> {
    let state = use_context::<AppState>()
        .ok_or_else(|| AppError::new(ErrorKind::Internal, "server state is not available"))?;
    let session: Session = leptos_axum::extract()
        .await
        .map_err(|e| AppError::new(ErrorKind::Internal, format!("session: {e}")))?;
    let Some(op) = current_operator(&state, &session).await else {
        super::answer_status(401);
        return Err(AppError::new(
            ErrorKind::Unauthorized,
            "You are signed out.",
        ));
    };
    let me = op;
    let principal = provisioning_core::ops::Principal::operator(me.id, &me.username, me.role);
    if let Err(e) = state.core.authorize(&principal, op_kind, "page").await {
        return Err(super::op_error(e));
    }
    Ok((state, me))
}

/// Paths that are not pages: static files, server functions, health.
fn is_page(path: &str) -> bool {
    !(path.starts_with("/pkg/")
        || path.starts_with("/api/")
        || path == "/healthz"
        || path == "/metrics"
        || path == "/lang"
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.')))
}

/// For every page request: signs-in gate, CSRF token, language, the flash
/// (taken on GET), all put in the request as a [`PageCtx`].
pub async fn page_ctx_layer(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    if !is_page(&path) {
        return next.run(req).await;
    }
    let op = current_operator(&state, &session).await;
    let is_get = req.method() == Method::GET || req.method() == Method::HEAD;
    let public = matches!(path.as_str(), "/login" | "/setup" | "/logout");
    if op.is_none() && !public {
        if !is_get {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                "You are signed out; sign in again.",
            )
                .into_response();
        }
        let none_yet = state
            .core
            .store
            .operator_count()
            .await
            .map(|n| n == 0)
            .unwrap_or(false);
        return Redirect::to(if none_yet { "/setup" } else { "/login" }).into_response();
    }
    if is_get {
        if op.is_some() && (path == "/login" || path == "/setup") {
            return Redirect::to("/").into_response();
        }
        if path == "/setup"
            && state
                .core
                .store
                .operator_count()
                .await
                .map(|n| n > 0)
                .unwrap_or(true)
        {
            return Redirect::to("/login").into_response();
        }
    }
    // Removed only when there is one: a removal marks the session changed,
    // and a changed session is written back.
    let flash = match is_get {
        true => match session.get::<Flash>(FLASH).await.ok().flatten() {
            Some(f) => {
                let _ = session.remove::<Flash>(FLASH).await;
                Some(f)
            }
            None => None,
        },
        false => None,
    };
    let ctx = PageCtx {
        operator: op,
        lang: lang_from(req.headers()),
        csrf: csrf_token(&session).await,
        flash,
        path: path.clone(),
        product_version: provisioning_core::PRODUCT_VERSION.to_string(),
    };
    req.extensions_mut().insert(ctx);
    let mut resp = next.run(req).await;
    // Pages carry a CSRF token and per-operator data: never cache them.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}
