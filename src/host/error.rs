//! The typed error of every call to a Sub2API host.

use std::fmt;

/// What went wrong, in the terms the product acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostErrorKind {
    /// Connection refused, DNS failure, TLS failure, timeout.
    Network,
    /// 401 / 403 from the admin or gateway auth.
    Auth,
    /// 423 `ADMIN_COMPLIANCE_ACK_REQUIRED`.
    ComplianceRequired,
    /// A route the host does not have (Gin's plain-text 404).
    RouteMissing,
    /// A resource the host says is not there (JSON 404).
    NotFound,
    /// 409 (exists, conflict, idempotency conflicts).
    Conflict,
    /// 429.
    RateLimited,
    /// 400 and other 4xx.
    Rejected,
    /// 5xx.
    Server,
    /// An answer we could not read (not JSON where JSON was due, wrong shape).
    Protocol,
}

/// An error from a host, carrying the HTTP status, the host's code or reason,
/// its message, and the path called (never a query string or credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    pub kind: HostErrorKind,
    pub status: Option<u16>,
    /// `reason` when the host sent one, else the string `code`, else empty.
    pub code: String,
    pub message: String,
    pub method: &'static str,
    pub path: String,
    /// `Retry-After` in seconds, when sent.
    pub retry_after: Option<u64>,
}

impl HostError {
    pub fn is_auth(&self) -> bool {
        self.kind == HostErrorKind::Auth
    }
    pub fn is_compliance(&self) -> bool {
        self.kind == HostErrorKind::ComplianceRequired
    }
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            HostErrorKind::Network | HostErrorKind::RateLimited | HostErrorKind::Server
        )
    }
    pub fn is_conflict(&self) -> bool {
        self.kind == HostErrorKind::Conflict
    }
    pub fn is_route_missing(&self) -> bool {
        self.kind == HostErrorKind::RouteMissing
    }

    /// An error the product raises itself before or while reading an
    /// answer (the outbound guard, a size limit): no HTTP status.
    pub(crate) fn local(
        kind: HostErrorKind,
        code: &str,
        message: String,
        method: &'static str,
        path: &str,
    ) -> HostError {
        HostError {
            kind,
            status: None,
            code: code.into(),
            message,
            method,
            path: path.split('?').next().unwrap_or(path).to_string(),
            retry_after: None,
        }
    }

    pub(crate) fn network(method: &'static str, path: &str, e: &reqwest::Error) -> HostError {
        let what = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            "request failed".to_string()
        };
        // reqwest's Display may include the URL; we only keep our own words
        // plus the innermost cause, which names the OS error.
        let mut cause = String::new();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(s) = src {
            cause = s.to_string();
            src = s.source();
        }
        HostError {
            kind: HostErrorKind::Network,
            status: None,
            code: String::new(),
            message: if cause.is_empty() {
                what
            } else {
                format!("{what}: {cause}")
            },
            method,
            path: path.to_string(),
            retry_after: None,
        }
    }

    pub(crate) fn protocol(method: &'static str, path: &str, status: u16, why: &str) -> HostError {
        HostError {
            kind: HostErrorKind::Protocol,
            status: Some(status),
            code: String::new(),
            message: why.to_string(),
            method,
            path: path.to_string(),
            retry_after: None,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(s) = self.status {
            write!(f, " → HTTP {s}")?;
        }
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for HostError {}
