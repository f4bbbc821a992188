//! The server side (feature `ssr`): configuration, state, sessions and
//! roles, form handlers, the router, the CLI and demo mode.

pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod downloads;
pub mod forms;
pub mod metrics;
pub mod reference;
pub mod rest;
pub mod router;
pub mod state;

use crate::api::{AppError, ErrorKind};
use provisioning_core::ops::OpError;

/// Sets the HTTP status of the answer a server function (or the page it
/// renders in) gives, so a refusal is a 401/403 and not a 500.
pub fn answer_status(status: u16) {
    if let Some(r) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(s) = axum::http::StatusCode::from_u16(status) {
            r.set_status(s);
        }
    }
}

/// Maps a core error to the wire error; internal details go to the log only.
pub fn op_error(e: OpError) -> AppError {
    answer_status(match &e {
        OpError::Invalid(_) => 400,
        OpError::Conflict(_) => 409,
        OpError::NotFound(_) => 404,
        OpError::Throttled(_) => 429,
        OpError::Forbidden(_) => 403,
        OpError::Unauthorized(_) => 401,
        OpError::Host(_) => 502,
        _ => 500,
    });
    match e {
        OpError::Invalid(f) => AppError::new(ErrorKind::Invalid, f.to_string()),
        OpError::Conflict(f) | OpError::Throttled(f) => {
            AppError::new(ErrorKind::Invalid, f.to_string())
        }
        OpError::NotFound(what) => AppError::new(ErrorKind::NotFound, format!("{what} not found")),
        OpError::Forbidden(why) => AppError::new(ErrorKind::Forbidden, why.sentence()),
        OpError::Unauthorized(why) => AppError::new(ErrorKind::Unauthorized, why),
        OpError::Host(why) => AppError::new(ErrorKind::Invalid, format!("the host: {why}")),
        other => {
            tracing::error!(error = %other, "internal error");
            AppError::new(
                ErrorKind::Internal,
                "internal error; the server log has the details",
            )
        }
    }
}
