//! The audit log: every operator action, newest first.

use super::widgets::*;
use crate::api::audit_log;
use crate::page::page_ctx;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AuditPage() -> impl IntoView {
    let l = page_ctx().lang;
    let query = use_query_map();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(1)
    };
    let data = Resource::new(page, audit_log);
    view! {
        <Layout>
            <h1>{l.t("Audit log", "审计日志")}</h1>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(p) if p.entries.is_empty() => view! { <p class="empty">{l.t("No entries yet.", "暂无记录。")}</p> }.into_any(),
                        Ok(p) => view! {
                            <details class="panel" data-testid="signing-key">
                                <summary>{l.t("Evidence signing key (Ed25519)", "证据签名公钥（Ed25519）")}</summary>
                                <p class="muted small">{l.t("Every evidence bundle is signed with this installation's key. A reviewer compares this key with the one the bundle names (the README's one-line check prints it).", "每个证据包都用本安装的密钥签名。审阅者将此公钥与证据包中注明的公钥比对（README 中的一行命令会打印它）。")}</p>
                                <pre class="evidence">{p.signing_key.clone()}</pre>
                            </details>
                            <p class="muted">{format!("{} {}", p.total, l.t("entries", "条记录"))}</p>
                            <table class="grid" data-testid="audit">
                                <thead><tr>
                                    <th>{l.t("When", "时间")}</th>
                                    <th>{l.t("Who", "操作员")}</th>
                                    <th>{l.t("Action", "操作")}</th>
                                    <th>{l.t("Target", "对象")}</th>
                                    <th>{l.t("Outcome", "结果")}</th>
                                    <th>{l.t("Detail", "详情")}</th>
                                </tr></thead>
                                <tbody>
                                    {p.entries.into_iter().map(|e| view! {
                                        <tr>
                                            <td class="nowrap">{when(e.at_ms)}</td>
                                            <td>{e.actor}</td>
                                            <td><code>{e.action}</code></td>
                                            <td>{e.target}</td>
                                            <td><span class=format!("outcome {}", e.outcome)>{e.outcome.clone()}</span></td>
                                            <td class="muted">{e.detail}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <nav class="pager">
                                {(p.page > 1).then(|| view! { <a href=format!("/audit?page={}", p.page - 1)>{l.t("← Newer", "← 较新")}</a> })}
                                <span>{format!("{} / {}", p.page, p.pages)}</span>
                                {(p.page < p.pages).then(|| view! { <a href=format!("/audit?page={}", p.page + 1)>{l.t("Older →", "较旧 →")}</a> })}
                            </nav>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}
