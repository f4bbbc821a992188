//! The server side (feature `ssr`): configuration, state, sessions and
//! roles, form handlers, the router, the CLI and demo mode.

pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod downloads;
pub mod forms;
pub mod router;
pub mod state;

use crate::api::{AppError, ErrorKind};
use provisioning_core::ops::OpError;

/// Maps a core error to the wire error; internal details go to the log only.
pub fn op_error(e: OpError) -> AppError {
    match e {
        OpError::Invalid(f) => AppError::new(ErrorKind::Invalid, f.to_string()),
        OpError::Conflict(f) => AppError::new(ErrorKind::Invalid, f.to_string()),
        OpError::NotFound(what) => AppError::new(ErrorKind::NotFound, format!("{what} not found")),
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
