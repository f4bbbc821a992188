//! The overview: hosts at a glance and the newest audit entries.

use super::batches::BatchTable;
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
                                                            <td class="muted">{h.last_probe.as_ref().map(|p| format!("{} · {}", when(p.at_ms), crate::i18n::headline(l, p))).unwrap_or_default()}</td>
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
                                <section data-testid="watching">
                                    <super::watch::AttentionSection/>
                                </section>
                                <section data-testid="attention">
                                    <h2>{l.t("Batches that need attention", "需要处理的批次")}</h2>
                                    <p class="muted small">{l.t("Running, failed or partly failed, a rollback that failed, or applied and not ready.", "正在运行、失败或部分失败、回滚失败，或已执行但未就绪。")}</p>
                                    {if o.attention.items.is_empty() {
                                        view! { <p class="empty">{l.t("None: every applied batch is ready.", "没有：所有已执行的批次均已就绪。")}</p> }.into_any()
                                    } else {
                                        let more = o.attention.next_before.is_some();
                                        view! {
                                            <BatchTable items=o.attention.items.clone()/>
                                            {more.then(|| view! { <p><a href="/batches?attention=1">{l.t("All that need attention →", "全部需处理的批次 →")}</a></p> })}
                                        }.into_any()
                                    }}
                                </section>
                                <section data-testid="newest-batches">
                                    <h2>{l.t("Newest batches", "最新批次")}</h2>
                                    {if o.newest.items.is_empty() {
                                        view! { <p class="empty">{l.t("No batch yet.", "还没有批次。")}" "<a href="/batches/new">{l.t("Plan one", "新建批次")}</a></p> }.into_any()
                                    } else {
                                        view! {
                                            <BatchTable items=o.newest.items.clone()/>
                                            <p><a href="/batches">{l.t("All batches →", "全部批次 →")}</a></p>
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
                                                    <li><span class="muted">{when(e.at_ms)}</span>" "<b>{e.actor}</b>" "<code>{e.action}</code>" "<code>{e.target}</code>" → "<span class=format!("outcome {}", e.outcome)>{outcome_word(l, &e.outcome)}</span></li>
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
