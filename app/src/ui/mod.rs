//! Components and pages. Every form is a plain `<form method="post">` to the
//! page's own URL, so it works without JavaScript; the server answers a
//! success with a redirect and an error by rendering the same page with the
//! message and the typed values (PRG).

mod audit;
mod auth;
mod batches;
mod drift;
mod hosts;
mod operators;
mod overview;
mod packs;
mod reviews;
mod watch;
mod widgets;

pub use widgets::*;

use crate::page::page_ctx;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let l = use_context::<crate::page::PageCtx>()
        .unwrap_or_default()
        .lang;
    view! {
        <Title text=l.t("Sub2API CN Relay Manager", "Sub2API 国产模型中转管家")/>
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/login") view=auth::SignInPage ssr=SsrMode::Async/>
                <Route path=path!("/setup") view=auth::SetupPage ssr=SsrMode::Async/>
                <Route path=path!("/") view=overview::OverviewPage ssr=SsrMode::Async/>
                <Route path=path!("/hosts") view=hosts::HostsPage ssr=SsrMode::Async/>
                <Route path=path!("/hosts/new") view=hosts::NewHostPage ssr=SsrMode::Async/>
                <Route path=path!("/hosts/:id") view=hosts::HostPage ssr=SsrMode::Async/>
                <Route path=path!("/hosts/:id/edit") view=hosts::EditHostPage ssr=SsrMode::Async/>
                <Route path=path!("/hosts/:id/delete") view=hosts::DeleteHostPage ssr=SsrMode::Async/>
                <Route path=path!("/operators") view=operators::OperatorsPage ssr=SsrMode::Async/>
                <Route path=path!("/tokens") view=operators::TokensPage ssr=SsrMode::Async/>
                <Route path=path!("/account") view=operators::AccountPage ssr=SsrMode::Async/>
                <Route path=path!("/packs") view=packs::PacksPage ssr=SsrMode::Async/>
                <Route path=path!("/packs/:id") view=packs::PackPage ssr=SsrMode::Async/>
                <Route path=path!("/batches") view=batches::BatchesPage ssr=SsrMode::Async/>
                <Route path=path!("/batches/new") view=batches::NewBatchPage ssr=SsrMode::Async/>
                <Route path=path!("/batches/:id") view=batches::BatchPage ssr=SsrMode::Async/>
                <Route path=path!("/hosts/:id/drift") view=drift::DriftPage ssr=SsrMode::Async/>
                <Route path=path!("/hosts/:id/accounts") view=hosts::HostAccountsPage ssr=SsrMode::Async/>
                <Route path=path!("/batches/:id/steps/:seq") view=batches::StepPage ssr=SsrMode::Async/>
                <Route path=path!("/batches/:id/rollback") view=batches::RollbackPage ssr=SsrMode::Async/>
                <Route path=path!("/batches/:id/review") view=reviews::ReviewPage ssr=SsrMode::Async/>
                <Route path=path!("/reviews") view=reviews::ReviewQueuePage ssr=SsrMode::Async/>
                <Route path=path!("/batches/:id/replace") view=batches::ReplacePage ssr=SsrMode::Async/>
                <Route path=path!("/audit") view=audit::AuditPage ssr=SsrMode::Async/>
                <Route path=path!("/webhooks") view=watch::WebhooksPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    let l = page_ctx().lang;
    set_status(404);
    view! {
        <Layout>
            <h1>{l.t("Page not found", "页面不存在")}</h1>
            <p><a href="/">{l.t("Back to the overview", "返回总览")}</a></p>
        </Layout>
    }
}
