//! Provisioning core of Sub2API CN Relay Manager.
//!
//! The core knows nothing of Leptos, axum or HTML. [`model`] holds the serde
//! types shared with the browser build and compiles everywhere; the rest needs
//! the `runtime` feature (sqlx, reqwest, tokio).

pub mod model;

#[cfg(feature = "runtime")]
pub mod host;
#[cfg(feature = "runtime")]
pub mod ops;
#[cfg(feature = "runtime")]
pub mod pack;
#[cfg(feature = "runtime")]
pub mod secrets;
#[cfg(feature = "runtime")]
pub mod store;
#[cfg(feature = "runtime")]
pub mod upstream;

/// The product version stamped on probes and evidence.
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(all(test, feature = "runtime"))]
mod fuzz;
