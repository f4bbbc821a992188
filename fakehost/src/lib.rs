//! A faithful fake of a Sub2API host and of CN upstream providers.
//!
//! Both are real HTTP servers on 127.0.0.1 (port 0) built from the host
//! reference: the success envelope and its three error shapes, `x-api-key`
//! and JWT admin auth, the 423 compliance gate, version profiles, accounts /
//! groups / channels / users / keys / subscriptions with their documented side
//! effects, `/v1/models` from schedulable accounts' mapping keys,
//! `/v1/chat/completions` forwarded to the upstream with failover, the
//! account-test SSE stream, and fault hooks. Tests read its state (creates per
//! marker, calls per route) to prove what the product did.

mod gateway;
mod host;
mod receiver;
mod state;
mod upstream;

pub use host::{CallSpan, FakeHost, FakeHostConfig, Fault, FaultKind, Profile};
pub use receiver::{Received, WebhookReceiver};
pub use state::{Account, Group, State, MARKER_KEY};
pub use upstream::{FakeUpstream, ProviderStyle, UpstreamBehaviour};

/// The English compliance phrase the host expects.
pub const COMPLIANCE_PHRASE_EN: &str =
    "I have read, understood, and agree to the Sub2API Deployment and Operation Compliance Commitment";
