//! The overview: hosts at a glance and the newest audit entries.

use super::widgets::*;
use crate::api::overview;
use crate::page::page_ctx;
use leptos::prelude::*;
use provisioning_core::model::ProbeStatus;

#[component]
pub fn OverviewPage() -> impl IntoView {
    let l = page_ctx().lang;
    let data = Resource::new(|| (), |_| overview());
    view! {
        <Layout>
            <h1>{l.t("Overview", "总览")}</h1>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(o) => {
                            let total = o.hosts.len();
                            let count = |s: ProbeStatus| o.hosts.iter().filter(|h| h.last_probe.as_ref().map(|p| p.status) == Some(s)).count();
                            let (ok, warn, bad) = (count(ProbeStatus::Ok), count(ProbeStatus::Warning), count(ProbeStatus::Failing));
                            let unprobed = o.hosts.iter().filter(|h| h.last_probe.is_none()).count();
                            view! {
                                <section class="tiles">
                                    <div class="tile"><b>{total}</b><span>{l.t("hosts", "台主机")}</span></div>
                                    <div class="tile ok"><b>{ok}</b><span>{l.t("ready", "就绪")}</span></div>
                                    <div class="tile warn"><b>{warn}</b><span>{l.t("with warnings", "有警告")}</span></div>
                                    <div class="tile bad"><b>{bad}</b><span>{l.t("failing", "失败")}</span></div>
                                    <div class="tile"><b>{unprobed}</b><span>{l.t("never probed", "未探测")}</span></div>
                                </section>
                                <section>
                                    <h2>{l.t("Hosts", "主机")}</h2>
                                    {if o.hosts.is_empty() {
                                        view! {
                                            <div class="empty">
                                                <p>{l.t("No host yet. Register a Sub2API host to begin.", "还没有主机。先登记一台 Sub2API 主机。")}</p>
                                                <a class="button primary" href="/hosts/new">{l.t("Add a host", "添加主机")}</a>
                                            </div>
                                        }.into_any()
                                    } else {
                                        view! {
                                            <table class="grid">
                                                <thead><tr>
                                                    <th>{l.t("Host", "主机")}</th>
                                                    <th>{l.t("Status", "状态")}</th>
                                                    <th>{l.t("Version", "版本")}</th>
                                                    <th>{l.t("Last probe", "最近探测")}</th>
                                                    <th>{l.t("Drift", "漂移")}</th>
                                                </tr></thead>
                                                <tbody>
                                                    {o.hosts.into_iter().map(|h| {
                                                        let drift = o.drift.iter().find(|(id, _)| *id == h.id).map(|(_, n)| *n);
                                                        view! {
                                                        <tr>
                                                            <td><a href=format!("/hosts/{}", h.id)>{h.name.clone()}</a></td>
                                                            <td>{match &h.last_probe {
                                                                Some(p) => view! { <StatusBadge status=p.status/> }.into_any(),
                                                                None => view! { <span class="badge muted">{l.t("not probed", "未探测")}</span> }.into_any(),
                                                            }}</td>
                                                            <td>{h.last_probe.as_ref().and_then(|p| p.version.clone()).unwrap_or_default()}</td>
                                                            <td class="muted">{h.last_probe.as_ref().map(|p| format!("{} · {}", when(p.at_ms), p.headline)).unwrap_or_default()}</td>
                                                            <td data-testid="drift-count"><a href=format!("/hosts/{}/drift", h.id)>{match drift {
                                                                Some(0) => l.t("none open at the last check", "上次检查无未处理项").to_string(),
                                                                Some(n) => format!("{n} {}", l.t("open at the last check", "项未处理（上次检查）")),
                                                                None => l.t("not checked", "未检查").to_string(),
                                                            }}</a></td>
                                                        </tr>
                                                    }}).collect_view()}
                                                </tbody>
                                            </table>
                                        }.into_any()
                                    }}
                                </section>
                                <section>
                                    <h2>{l.t("Recent activity", "最近操作")}</h2>
                                    {if o.recent.is_empty() {
                                        view! { <p class="empty">{l.t("Nothing yet.", "暂无。")}</p> }.into_any()
                                    } else {
                                        view! {
                                            <ul class="activity">
                                                {o.recent.into_iter().map(|e| view! {
                                                    <li><span class="muted">{when(e.at_ms)}</span>" "<b>{e.actor}</b>" "{e.action}" "<code>{e.target}</code>" → "{e.outcome}</li>
                                                }).collect_view()}
                                            </ul>
                                            <a href="/audit">{l.t("Full audit log", "完整审计日志")}</a>
                                        }.into_any()
                                    }}
                                </section>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </Layout>
    }
}
