//! The router state, also provided to server functions as context.

use super::config::Config;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use provisioning_core::ops::Core;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub core: Core,
    pub config: Arc<Config>,
    /// Batches being applied by this process right now.
    pub running: Arc<Mutex<HashSet<i64>>>,
}
