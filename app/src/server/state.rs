//! The router state, also provided to server functions as context.

use super::config::Config;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use provisioning_core::ops::Core;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub core: Core,
    pub config: Arc<Config>,
}
