//! The Sub2API CN Relay Manager dashboard: Leptos pages (SSR + hydration),
//! the server functions that feed them, and (feature `ssr`) the axum server.
//!
//! Pages are rendered on the server and work without JavaScript; only
//! islands (`#[island]`, e.g. a running batch's live progress) hydrate, so
//! the browser downloads and runs the code of those alone.

#![recursion_limit = "256"]

pub mod api;
pub mod i18n;
pub mod page;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod server;

/// The hydrate entry: makes the page's islands interactive.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
