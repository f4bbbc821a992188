//! The Sub2API CN Relay Manager dashboard: Leptos pages (SSR + hydration),
//! the server functions that feed them, and (feature `ssr`) the axum server.

#![recursion_limit = "256"]

pub mod api;
pub mod i18n;
pub mod page;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod server;

/// The hydrate entry: reads the page context the server embedded in the
/// head, then hydrates the body with it.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let ctx = page::PageCtx::from_document();
    leptos::mount::hydrate_body(move || {
        leptos::prelude::provide_context(ctx.clone());
        ui::App()
    });
}
