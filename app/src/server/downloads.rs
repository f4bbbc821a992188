//! Evidence bundle downloads (any signed-in role, reviewers included).

use super::auth::current_operator;
use super::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use provisioning_core::ops::OpError;
use tower_sessions::Session;

async fn bundle(state: &AppState, session: &Session, id: i64, html: bool) -> Response {
    let Some(op) = current_operator(state, session).await else {
        return (StatusCode::UNAUTHORIZED, "Sign in to download evidence.").into_response();
    };
    match state.core.export_bundle(&op.username, id).await {
        Ok(b) => {
            let (body, ctype, ext) = if html {
                (b.html, "text/html; charset=utf-8", "html")
            } else {
                (b.json, "application/json", "json")
            };
            let mut r = body.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"batch-{id}-evidence.{ext}\""
            )) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            if let Ok(v) = HeaderValue::from_str(&b.digest) {
                h.insert("x-evidence-sha256", v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(super::router::REPORT_CSP),
            );
            r
        }
        Err(OpError::NotFound(w)) => {
            (StatusCode::NOT_FOUND, format!("{w} not found")).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "evidence export failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The export failed; the server log has the details.",
            )
                .into_response()
        }
    }
}

pub async fn evidence_json(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
) -> Response {
    bundle(&state, &session, id, false).await
}

pub async fn evidence_html(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
) -> Response {
    bundle(&state, &session, id, true).await
}
