//! The router: pages (Leptos SSR), their form handlers, server functions,
//! static files, health; with sessions, tracing, compression and security
//! headers. Tests build it with [`build_router`] and serve it on port 0.

use super::auth;
use super::forms;
use super::state::AppState;
use crate::page::PageCtx;
use crate::ui::App;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use leptos_meta::MetaTags;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

/// The HTML document around the app. The page context is embedded as JSON
/// for the hydrate entry to read back.
/// The pages' policy: scripts only with the response's nonce (WebAssembly
/// compiled from our own `/pkg`), everything else from this origin, never
/// framed.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The evidence report's policy: it runs no script and loads nothing, so
/// it still opens offline.
pub const REPORT_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn shell(options: LeptosOptions) -> impl IntoView {
    let ctx = use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<PageCtx>().cloned())
        .unwrap_or_else(|| PageCtx {
            product_version: provisioning_core::PRODUCT_VERSION.to_string(),
            ..Default::default()
        });
    provide_context(ctx.clone());
    // A Content-Security-Policy with this response's nonce, which Leptos
    // puts on its hydration and streaming scripts: no other script runs.
    if let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(v) = HeaderValue::from_str(&page_csp(&nonce)) {
            res.insert_header(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang=ctx.lang.code()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <link rel="stylesheet" href=format!("/{}/{}.css", options.site_pkg_dir, options.output_name)/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.core.store.ping().await {
        Ok(_) => {
            Json(serde_json::json!({"status": "ok", "version": provisioning_core::PRODUCT_VERSION}))
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "error", "database": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// Refuses a state-changing request another site's page sent: a browser
/// says so in `Sec-Fetch-Site`, or in an `Origin` that is not this server.
/// (The CSRF token already binds a form to a session; this stops a page
/// elsewhere from using a token it obtained.) Requests without either
/// header, such as command-line clients, pass to the other checks.
async fn same_origin_guard(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same_origin(&state, req.headers()) {
        tracing::warn!(method = %req.method(), path = %req.uri().path(), "cross-origin request refused");
        return (
            StatusCode::FORBIDDEN,
            "Refused: this request came from another site. Use the dashboard's own pages.",
        )
            .into_response();
    }
    next.run(req).await
}

fn same_origin(state: &AppState, h: &axum::http::HeaderMap) -> bool {
    let get = |k: header::HeaderName| h.get(k).and_then(|v| v.to_str().ok());
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    let Some(origin) = get(header::ORIGIN) else {
        return true;
    };
    let authority = |u: &str| {
        u.split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_ascii_lowercase())
    };
    let Some(from) = authority(origin) else {
        return false; // `null` and other opaque origins
    };
    let ours = state
        .config
        .public_url
        .as_deref()
        .and_then(authority)
        .or_else(|| get(header::HOST).map(str::to_ascii_lowercase));
    ours.is_some_and(|o| o == from)
}

/// The front end's files: content-hashed names, so cached for a year
/// (`immutable`), served from the gzip/brotli files the build wrote.
fn assets(
    state: &AppState,
) -> tower_http::set_header::SetResponseHeader<tower_http::services::ServeDir, HeaderValue> {
    let dir = std::path::Path::new(state.leptos_options.site_root.as_ref())
        .join(state.leptos_options.site_pkg_dir.as_ref());
    tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ))
        .service(
            tower_http::services::ServeDir::new(dir)
                .precompressed_br()
                .precompressed_gzip(),
        )
}

/// Builds the full router. `session_store` must have been migrated.
pub fn build_router(state: AppState, session_store: SqliteStore) -> Router {
    let routes = generate_route_list(App);
    let ctx_state = state.clone();
    let ctx = move || provide_context(ctx_state.clone());
    let shell_opts = state.leptos_options.clone();
    let fallback_state = state.clone();
    let sessions = SessionManagerLayer::new(session_store)
        .with_name("relay_session")
        .with_secure(state.config.cookies_secure())
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            state.config.session_idle_minutes,
        )));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(super::metrics::metrics))
        .route("/lang", get(forms::set_lang))
        .route("/login", post(forms::sign_in))
        .route("/setup", post(forms::setup))
        .route("/logout", post(forms::sign_out))
        .route("/hosts/new", post(forms::create_host))
        .route("/hosts/{id}", post(forms::host_action))
        .route("/hosts/{id}/edit", post(forms::edit_host))
        .route("/hosts/{id}/drift", post(forms::drift_action))
        .route("/hosts/{id}/delete", post(forms::delete_host))
        .route("/operators", post(forms::operators))
        .route("/account", post(forms::change_password))
        .route("/tokens", post(forms::tokens))
        .route("/webhooks", post(forms::webhooks))
        .route("/packs", post(forms::upload_pack))
        .route("/batches/new", post(forms::new_batch))
        .route("/batches/{id}", post(forms::batch_action))
        .route("/batches/{id}/rollback", post(forms::rollback_batch))
        .route("/batches/{id}/review", post(forms::review_batch))
        .route("/batches/{id}/replace", post(forms::replace_key))
        .route(
            "/batches/{id}/evidence.json",
            get(super::downloads::evidence_json),
        )
        .route(
            "/batches/{id}/evidence.html",
            get(super::downloads::evidence_html),
        )
        // The JSON API: bearer tokens only (see `rest`).
        .nest("/api/v1", super::rest::router())
        .leptos_routes_with_context(&state, routes, ctx, move || shell(shell_opts.clone()))
        .nest_service("/pkg", assets(&state))
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(
            move || provide_context(fallback_state.clone()), shell
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::page_ctx_layer,
        ))
        // Outside the page context (scrapes and API calls need none) and
        // after routing, so each request is timed under its route template.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::metrics::track,
        ))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            same_origin_guard,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
