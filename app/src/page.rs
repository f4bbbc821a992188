//! What every page knows about the request: who is signed in, the language,
//! the CSRF token for forms, and a one-shot message (flash) from the last
//! form submission. The server computes it once per request; pages are
//! rendered on the server only (islands get what they need as props).

use crate::i18n::Lang;
use provisioning_core::model::{OperatorView, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A message from the last form submission, and the (non-secret) values the
/// person typed, to fill the form again after an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flash {
    pub ok: bool,
    pub message: String,
    /// The field the error is about, when it is about one.
    pub field: Option<String>,
    /// Itemised problems (e.g. every issue found in a pack).
    #[serde(default)]
    pub details: Vec<String>,
    pub values: BTreeMap<String, String>,
    /// A secret shown this once (a new admin key): only ever rendered into
    /// the response that made it, never stored in the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_once: Option<String>,
}

/// Per-request context of a page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageCtx {
    pub operator: Option<OperatorView>,
    pub lang: Lang,
    pub csrf: String,
    pub flash: Option<Flash>,
    /// The path the flash belongs to: after a client-side navigation to
    /// another page the flash no longer applies.
    pub path: String,
    pub product_version: String,
}

impl PageCtx {
    /// Whether the signed-in operator has at least `role`.
    pub fn can(&self, role: Role) -> bool {
        self.operator
            .as_ref()
            .is_some_and(|o| !o.disabled && o.role.allows(role))
    }

    /// A value to refill a form field with after an error.
    pub fn value(&self, name: &str) -> String {
        self.flash
            .as_ref()
            .and_then(|f| f.values.get(name).cloned())
            .unwrap_or_default()
    }

    /// The error message about `field`, if the last submission had one.
    pub fn field_error(&self, field: &str) -> Option<String> {
        self.flash
            .as_ref()
            .filter(|f| !f.ok && f.field.as_deref() == Some(field))
            .map(|f| f.message.clone())
    }
}

/// The page context in a component inside the router (server: provided by
/// the shell; browser: by the hydrate entry). The flash is dropped once the
/// browser has navigated away from the page it was meant for.
pub fn page_ctx() -> PageCtx {
    use leptos::prelude::GetUntracked;
    let mut ctx = leptos::prelude::use_context::<PageCtx>().unwrap_or_default();
    let here = leptos_router::hooks::use_location()
        .pathname
        .get_untracked();
    if ctx.path != here {
        ctx.flash = None;
    }
    ctx
}
