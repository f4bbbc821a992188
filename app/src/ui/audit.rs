//! The audit log: every operator action, newest first, filtered by who,
//! what, how it ended and what it was done to, 50 to a page.

use super::widgets::*;
use crate::api::audit_log;
use crate::page::page_ctx;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use provisioning_core::model::{urlencode, AuditFilter};

/// `?q=…` for a link: the filter and a cursor.
fn query_of(f: &AuditFilter, before: Option<i64>) -> String {
    let mut parts: Vec<String> = [
        ("actor", &f.actor),
        ("action", &f.action),
        ("outcome", &f.outcome),
        ("target", &f.target),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={}", urlencode(v)))
    .collect();
    if let Some(b) = before {
        parts.push(format!("before={b}"));
    }
    if parts.is_empty() {
        "/audit".into()
    } else {
        format!("/audit?{}", parts.join("&"))
    }
}

/// A target as a link to its page, when it has one.
fn target_view(t: String) -> AnyView {
    let link = |prefix: &str, path: &str| {
        t.strip_prefix(prefix)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .map(|n| format!("{path}{n}"))
    };
    match link("batch:", "/batches/").or_else(|| link("host:", "/hosts/")) {
        Some(href) => view! { <a href=href>{t}</a> }.into_any(),
        None => view! { <span>{t}</span> }.into_any(),
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let l = page_ctx().lang;
    let query = use_query_map();
    let key = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).unwrap_or_default().trim().to_string();
        (
            AuditFilter {
                actor: get("actor"),
                action: get("action"),
                outcome: get("outcome"),
                target: get("target"),
            },
            q.get("before").and_then(|b| b.parse::<i64>().ok()),
        )
    };
    let data = Resource::new(key, |(f, before)| audit_log(f, before));
    view! {
        <Layout>
            <h1>{l.t("Audit log", "审计日志")}</h1>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(p) => {
                            let f = p.filter.clone();
                            let filtered = f != AuditFilter::default();
                            let select = |name: &'static str, label: &'static str, all: Vec<String>, chosen: String| view! {
                                <label class="field">
                                    <span>{label}</span>
                                    <select name=name>
                                        <option value="" selected=chosen.is_empty()>{l.t("any", "全部")}</option>
                                        {all.into_iter().map(|v| view! { <option value=v.clone() selected=v == chosen>{v.clone()}</option> }).collect_view()}
                                    </select>
                                </label>
                            };
                            // Families of actions (`batch.`), then each action.
                            let mut actions: Vec<String> = p.actions.iter()
                                .filter_map(|a| a.split_once('.').map(|(fam, _)| format!("{fam}.")))
                                .collect();
                            actions.dedup();
                            actions.extend(p.actions.iter().cloned());
                            actions.sort();
                            actions.dedup();
                            view! {
                                <details class="panel" data-testid="signing-key">
                                    <summary>{l.t("Evidence signing key (Ed25519)", "证据签名公钥（Ed25519）")}</summary>
                                    <p class="muted small">{l.t("Every evidence bundle is signed with this installation's key. A reviewer compares this key with the one the bundle names (the README's one-line check prints it).", "每个证据包都用本安装的密钥签名。审阅者将此公钥与证据包中注明的公钥比对（README 中的一行命令会打印它）。")}</p>
                                    <pre class="evidence">{p.signing_key.clone()}</pre>
                                </details>
                                <form method="get" action="/audit" class="inline search" data-testid="audit-filter">
                                    {select("actor", l.t("Who", "操作员"), p.actors.clone(), f.actor.clone())}
                                    {select("action", l.t("Action", "操作"), actions, f.action.clone())}
                                    {select("outcome", l.t("Outcome", "结果"), p.outcomes.clone(), f.outcome.clone())}
                                    <label class="field">
                                        <span>{l.t("Target", "对象")}</span>
                                        <input type="search" name="target" value=f.target.clone() maxlength="200" placeholder="batch:3 / host:1"/>
                                    </label>
                                    <button type="submit">{l.t("Filter", "筛选")}</button>
                                    {filtered.then(|| view! { " " <a href="/audit">{l.t("Clear", "清除")}</a> })}
                                </form>
                                <p class="muted" data-testid="audit-count">{format!("{} {}", p.total, if filtered { l.t("matching entries", "条匹配记录") } else { l.t("entries", "条记录") })}</p>
                                {if p.entries.is_empty() {
                                    view! { <p class="empty">{if filtered { l.t("No entry matches.", "没有匹配的记录。") } else { l.t("No entries yet.", "暂无记录。") }}</p> }.into_any()
                                } else {
                                    view! {
                                        <div class="table-wrap">
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
                                                    <tr data-testid="audit-row">
                                                        <td class="nowrap">{when(e.at_ms)}</td>
                                                        <td>{e.actor}</td>
                                                        <td><code>{e.action}</code></td>
                                                        <td>{target_view(e.target)}</td>
                                                        <td><span class=format!("outcome {}", e.outcome) data-outcome=e.outcome.clone()>{outcome_word(l, &e.outcome)}</span></td>
                                                        <td class="muted">{e.detail}</td>
                                                    </tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                        </div>
                                    }.into_any()
                                }}
                                <nav class="pager">
                                    {p.next_before.map(|n| view! { <a data-testid="older" href=query_of(&f, Some(n))>{l.t("Older →", "较旧 →")}</a> })}
                                </nav>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </Layout>
    }
}
