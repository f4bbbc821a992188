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
    /// Request counts and latencies for `/metrics`.
    pub http_metrics: Arc<super::metrics::HttpMetrics>,
}

impl AppState {
    /// The state of a server with `config`: the Leptos options point at its
    /// site, whose build named the front end's files after their content
    /// hash (`pkg/output-name`; `dashboard` when the site has none).
    pub fn new(core: Core, config: Config) -> AppState {
        let output_name = std::fs::read_to_string(
            std::path::Path::new(&config.site_root).join("pkg/output-name"),
        )
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "dashboard".to_string());
        let leptos_options = LeptosOptions::builder()
            .output_name(output_name)
            .site_root(config.site_root.clone())
            .site_pkg_dir("pkg")
            .site_addr(config.addr)
            .build();
        AppState {
            leptos_options,
            core,
            config: Arc::new(config),
            http_metrics: Arc::default(),
        }
    }
}
