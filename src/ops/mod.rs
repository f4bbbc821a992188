//! Operations: what the pages, the JSON API and the CLI call. Each takes the
//! acting operator's name for the audit log and returns a typed error.

mod apply;
mod bundle;
mod diagnose;
mod hosts;
pub mod import;
pub mod lease;
mod operators;
mod probe;
pub mod resource;
mod rollback;

pub use apply::{redact, ApplyError, ApplyOptions, CrashPoint};
pub use bundle::{digest_of, verify_bundle, Bundle, BUNDLE_SCHEMA};
pub use diagnose::next_action;
pub use hosts::HostSecrets;
pub use import::BatchRequest;
pub use operators::{SignInError, THROTTLE_ADDRESS_LIMIT, THROTTLE_USER_LIMIT, THROTTLE_WINDOW_MS};
pub use probe::probe_host;

use crate::model::FieldError;
use crate::secrets::{Cipher, SecretError};
use crate::store::{Store, StoreError};

/// The core handle shared by every request: storage and the cipher.
#[derive(Clone, Debug)]
pub struct Core {
    pub store: Store,
    pub cipher: Cipher,
}

/// Errors of operations, sorted by what the caller should answer.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Something a person typed is wrong (→ 400/422).
    #[error("{0}")]
    Invalid(FieldError),
    /// The thing already exists (→ 409).
    #[error("{0}")]
    Conflict(FieldError),
    /// No such thing (→ 404).
    #[error("{0} not found")]
    NotFound(String),
    /// Storage failed (→ 500, details logged only).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host could not be reached or answered badly (→ 502).
    #[error("the host: {0}")]
    Host(String),
    /// A stored secret could not be opened (→ 500, details logged only).
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl OpError {
    /// Whether the caller's input caused it (a 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            OpError::Invalid(_) | OpError::Conflict(_) | OpError::NotFound(_)
        )
    }
}

impl From<FieldError> for OpError {
    fn from(e: FieldError) -> Self {
        OpError::Invalid(e)
    }
}
