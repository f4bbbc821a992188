//! Operations: what the pages, the JSON API and the CLI call. Each takes the
//! acting operator's name for the audit log and returns a typed error.

mod aad;
mod apply;
pub mod authz;
mod bundle;
mod compliance;
mod diagnose;
mod drift;
mod hosts;
pub mod import;
mod kinds;
pub mod lease;
mod operators;
mod probe;
mod readiness;
mod rekey;
mod replace;
pub mod resource;
pub mod review;
mod rollback;
mod tokens;
mod watch;

pub use apply::{redact, ApplyError, ApplyOptions, CrashPoint};
pub use authz::{permits, Denied, Operation, Principal, Scope};
pub use bundle::{digest_of, verify_bundle, Bundle, BUNDLE_SCHEMA};
pub use compliance::ComplianceAsk;
pub use diagnose::next_action;
pub use drift::DRIFT_CONCURRENCY;
pub use hosts::HostSecrets;
pub use import::BatchRequest;
pub use operators::{
    AuditSlice, SignInError, THROTTLE_ADDRESS_LIMIT, THROTTLE_USER_LIMIT, THROTTLE_WINDOW_MS,
};
pub use probe::probe_host;
pub use rekey::Resealed;
pub use replace::{replacement_of, Replaced};
pub use tokens::{TokenRequest, MAX_TOKEN_DAYS, TOKEN_PREFIX};
pub use watch::{
    mask_url, sign_body, Clock, ManualClock, SystemClock, TickReport, WatchSettings, WebhookInput,
    SCHEDULER_ACTOR, SIGNATURE_HEADER,
};

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
    /// The principal may not do this (→ 403); audited.
    #[error("not allowed: {0}")]
    Forbidden(authz::Denied),
    /// No valid credential came with the request (→ 401).
    #[error("{0}")]
    Unauthorized(String),
    /// Too many failed attempts lately (→ 429).
    #[error("{0}")]
    Throttled(FieldError),
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

impl Core {
    /// Opens the store's keyring with the cipher: the fingerprint key is
    /// read from it (stored on first start as the one derived from the
    /// master key then, so existing fingerprints stay valid), and re-sealed
    /// under the current master key after a rotation. Call once at start.
    pub async fn with_keyring(self) -> Result<Core, OpError> {
        let key = self
            .keyring_secret("fingerprint", || self.cipher.fingerprint_key())
            .await?;
        Ok(Core {
            cipher: self.cipher.with_fingerprint_key(&key)?,
            store: self.store,
        })
    }

    /// A key the product keeps itself, from the keyring: made by `make` and
    /// stored sealed on first use (the first of two racing processes wins,
    /// both read it back), re-sealed under the current master key when an
    /// earlier one sealed it.
    pub(crate) async fn keyring_secret(
        &self,
        name: &str,
        make: impl FnOnce() -> crate::secrets::Secret,
    ) -> Result<crate::secrets::Secret, OpError> {
        let aad = aad::keyring(name);
        let sealed = match self.store.keyring(name).await? {
            Some(s) => s,
            None => {
                let s = self.cipher.seal(&make(), &aad);
                self.store.put_keyring(name, &s, true).await?;
                self.store.keyring(name).await?.unwrap_or(s)
            }
        };
        let secret = self.cipher.open(&sealed, &aad)?;
        if self.cipher.sealed_with_previous(&sealed) {
            self.store
                .put_keyring(name, &self.cipher.seal(&secret, &aad), false)
                .await?;
        }
        Ok(secret)
    }
}

impl OpError {
    /// Whether the caller's input caused it (a 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            OpError::Invalid(_)
                | OpError::Conflict(_)
                | OpError::NotFound(_)
                | OpError::Throttled(_)
                | OpError::Forbidden(_)
                | OpError::Unauthorized(_)
        )
    }
}

impl From<FieldError> for OpError {
    fn from(e: FieldError) -> Self {
        OpError::Invalid(e)
    }
}
