//! A host's drift: counts by class, the findings with their field diff and
//! evidence, one action per finding, ignored ones under a filter, and the
//! objects that are not ours, collapsed.

use super::widgets::*;
use crate::api::host_drift;
use crate::page::page_ctx;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use provisioning_core::model::{DriftClass, DriftFinding, DriftReport, Role};

#[component]
pub fn DriftPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let data = Resource::new(id, host_drift);
    view! {
        <Layout>
            <p><a href=move || format!("/hosts/{}", id())>{l.t("← Back to the host", "← 返回主机")}</a></p>
            <div class="title-row">
                <h1>{l.t("Drift", "漂移")}</h1>
                {ctx.can(Role::Operator).then(|| view! {
                    <form method="post" action=move || format!("/hosts/{}/drift", id()) class="inline">
                        <Csrf/>
                        <input type="hidden" name="action" value="check"/>
                        <button type="submit" class="primary" data-testid="drift-check">{l.t("Check now", "立即检查")}</button>
                    </form>
                })}
            </div>
            <Suspense fallback=move || view! { <p>{l.t("Loading…", "加载中…")}</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(None) => view! {
                            <p class="muted" data-testid="drift-empty">{l.t("Not checked yet. A check reads the host's listings (nothing is written) and compares every object this product made with what it applied.", "尚未检查。检查只读取主机列表（不写入），并将本产品创建的每个对象与当时写入的值比较。")}</p>
                        }.into_any(),
                        Ok(Some(r)) => view! { <DriftView report=r/> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn DriftView(report: DriftReport) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let query = use_query_map();
    let class = query.read_untracked().get("class");
    let show_ignored = query.read_untracked().get("ignored").as_deref() == Some("1");
    let batch = query
        .read_untracked()
        .get("batch")
        .and_then(|b| b.parse::<i64>().ok());
    let provider = query
        .read_untracked()
        .get("provider")
        .filter(|p| !p.is_empty());
    let r = report;
    let host = r.host_id;
    let counts: Vec<(DriftClass, usize)> =
        DriftClass::ALL.iter().map(|c| (*c, r.open(*c))).collect();
    let ignored = r.findings.iter().filter(|f| f.ignored.is_some()).count();
    let shown: Vec<DriftFinding> = r
        .findings
        .iter()
        .filter(|f| class.as_deref().is_none_or(|c| f.class.as_str() == c))
        .filter(|f| show_ignored || f.ignored.is_none())
        .filter(|f| batch.is_none_or(|b| f.batch_id == Some(b)))
        .filter(|f| provider.as_deref().is_none_or(|p| f.provider_key == p))
        .cloned()
        .collect();
    let filtered = class.is_some() || show_ignored || batch.is_some() || provider.is_some();
    let mut batches: Vec<i64> = r.findings.iter().filter_map(|f| f.batch_id).collect();
    batches.sort_unstable();
    batches.dedup();
    let mut providers: Vec<String> = r.findings.iter().map(|f| f.provider_key.clone()).collect();
    providers.sort();
    providers.dedup();
    view! {
        <p class="muted small" data-testid="drift-meta">{format!("{} {} · {} · {} {} · {} {}", l.t("Checked", "检查于"), when(r.at_ms), r.actor, r.compared, l.t("objects compared", "个对象已比较"), r.host_calls, l.t("host calls", "次主机调用"))}</p>
        <ul class="counts" data-testid="drift-counts">
            <li><a href=format!("/hosts/{host}/drift")>{format!("{} {}", l.t("all open", "全部未处理"), counts.iter().map(|c| c.1).sum::<usize>())}</a></li>
            {counts.into_iter().map(|(c, n)| view! {
                <li data-class=c.as_str()><a href=format!("/hosts/{host}/drift?class={}", c.as_str())>{format!("{} {n}", class_label(l, c))}</a></li>
            }).collect_view()}
            <li><a href=format!("/hosts/{host}/drift?ignored=1")>{format!("{} {ignored}", l.t("ignored", "已忽略"))}</a></li>
        </ul>
        <form method="get" action=format!("/hosts/{host}/drift") class="filters" data-testid="drift-filters">
            {class.clone().map(|c| view! { <input type="hidden" name="class" value=c/> })}
            <label>{l.t("Batch", "批次")}" "
                <select name="batch">
                    <option value="">{l.t("all", "全部")}</option>
                    {batches.into_iter().map(|b| view! { <option value=b.to_string() selected=batch == Some(b)>{format!("#{b}")}</option> }).collect_view()}
                </select>
            </label>
            <label>{l.t("Provider", "供应商")}" "
                <select name="provider">
                    <option value="">{l.t("all", "全部")}</option>
                    {providers.into_iter().map(|p| view! { <option value=p.clone() selected=provider.as_deref() == Some(p.as_str())>{p.clone()}</option> }).collect_view()}
                </select>
            </label>
            <button type="submit">{l.t("Filter", "筛选")}</button>
        </form>
        {match (shown.is_empty(), filtered) {
            (true, false) => Some(view! { <p class="finding ok" data-testid="drift-clean">{l.t("Nothing open: every object this product made is as applied.", "没有未处理项：本产品创建的每个对象都与写入时一致。")}</p> }.into_any()),
            (true, true) => Some(view! { <p class="muted">{l.t("No finding matches the filter.", "没有符合筛选条件的项。")}</p> }.into_any()),
            _ => None,
        }}
        <table class="grid" data-testid="drift-findings">
            <thead><tr><th>{l.t("Class", "类别")}</th><th>{l.t("Object", "对象")}</th><th>{l.t("Batch", "批次")}</th><th>{l.t("What differs", "差异")}</th><th>{l.t("Action", "操作")}</th></tr></thead>
            <tbody>
                {shown.into_iter().map(|f| view! { <FindingRow host=host f=f/> }).collect_view()}
            </tbody>
        </table>
        <details data-testid="drift-unmanaged">
            <summary>{format!("{}: {} {}, {} {}, {} {}", l.t("Not ours (never drift)", "非本产品对象（不算漂移）"), r.unmanaged.groups.len(), l.t("groups", "个分组"), r.unmanaged.channels.len(), l.t("channels", "个渠道"), r.unmanaged.accounts, l.t("accounts", "个账号"))}</summary>
            <p class="small">{r.unmanaged.groups.join(", ")}</p>
            <p class="small">{r.unmanaged.channels.join(", ")}</p>
        </details>
    }
}

/// A class's name for people.
fn class_label(l: crate::i18n::Lang, c: DriftClass) -> &'static str {
    match c {
        DriftClass::Missing => l.t("missing", "已丢失"),
        DriftClass::Modified => l.t("modified", "已改动"),
        DriftClass::Unhealthy => l.t("unhealthy", "不健康"),
        DriftClass::Duplicate => l.t("duplicate", "重复"),
    }
}

/// What the finding says, in the page's language (an unhealthy account's
/// message is the host's own words and stays as the host wrote it).
fn finding_text(l: crate::i18n::Lang, f: &DriftFinding) -> String {
    match f.class {
        DriftClass::Missing => l
            .t("In the ledger, but no longer on the host.", "台账中有记录，但主机上已不存在。")
            .to_string(),
        DriftClass::Modified => format!(
            "{} {}",
            f.changed.len(),
            l.t("field(s) differ from what was applied:", "个字段与写入值不同：")
        ),
        DriftClass::Unhealthy => format!(
            "{} {}",
            l.t("The host says:", "主机报告："),
            crate::i18n::said(l, f.said.as_ref(), &f.message)
        ),
        DriftClass::Duplicate => l
            .t("A second account for the same key (same marker or name); the ledger's own account is kept.", "同一密钥的第二个账号（标记或名称相同）；保留台账中的账号。")
            .to_string(),
    }
}

#[component]
fn FindingRow(host: i64, f: DriftFinding) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let can = ctx.can(Role::Operator);
    let badge = match f.class {
        DriftClass::Missing | DriftClass::Duplicate => "badge bad",
        DriftClass::Modified | DriftClass::Unhealthy => "badge warn",
    };
    let key = f.key.clone();
    view! {
        <tr data-class=f.class.as_str() data-kind=f.kind.clone() data-key=f.key.clone()>
            <td><span class=badge>{class_label(l, f.class)}</span>{f.ignored.clone().map(|(why, until, by)| view! { <p class="muted small">{format!("{} {by}: {why} ({} {})", l.t("ignored by", "忽略人"), l.t("until", "至"), when(until))}</p> })}</td>
            <td>{f.target.clone()}<p class="muted small">{f.provider_key.clone()}</p></td>
            <td>{f.batch_id.map(|b| view! { <a href=format!("/batches/{b}")>{format!("#{b}")}</a> })}</td>
            <td>
                <p>{finding_text(l, &f)}</p>
                {(!f.changed.is_empty()).then(|| view! {
                    <table class="diff" data-testid="drift-diff">
                        <thead><tr><th>{l.t("Field", "字段")}</th><th>{l.t("Applied", "写入值")}</th><th>{l.t("On the host now", "主机当前值")}</th></tr></thead>
                        <tbody>{f.changed.iter().map(|(k, a, b)| view! { <tr><td><code>{k.clone()}</code></td><td><pre class="evidence">{a.clone()}</pre></td><td><pre class="evidence">{b.clone()}</pre></td></tr> }).collect_view()}</tbody>
                    </table>
                })}
                {(!f.evidence.is_empty()).then(|| view! { <details><summary>{l.t("observed", "观察到的对象")}</summary><pre class="evidence">{f.evidence.clone()}</pre></details> })}
            </td>
            <td>
                {(can && f.ignored.is_none()).then(|| {
                    let key = key.clone();
                    view! {
                        {f.actions.iter().filter(|a| *a != "ignore").map(|a| {
                            let label = match a.as_str() {
                                "reapply" => l.t("Re-apply what was applied", "恢复为写入值"),
                                "adopt" => l.t("Keep the host's value", "采用主机当前值"),
                                "forget" => l.t("Forget it (re-plan to re-create)", "从台账移除（重新规划可重建）"),
                                "remove_duplicate" => l.t("Delete this duplicate", "删除此重复项"),
                                "pause" => l.t("Pause the account", "暂停该账号"),
                                _ => "?",
                            };
                            view! {
                                <form method="post" action=format!("/hosts/{host}/drift") class="inline">
                                    <Csrf/>
                                    <input type="hidden" name="action" value="repair"/>
                                    <input type="hidden" name="key" value=key.clone()/>
                                    <input type="hidden" name="act" value=a.clone()/>
                                    <button type="submit" data-testid=format!("drift-{a}")>{label}</button>
                                </form>
                            }
                        }).collect_view()}
                        <form method="post" action=format!("/hosts/{host}/drift") class="stack small">
                            <Csrf/>
                            <input type="hidden" name="action" value="ignore"/>
                            <input type="hidden" name="key" value=key.clone()/>
                            <input name="reason" placeholder=l.t("why it is fine", "为何可以忽略") required minlength="3" maxlength="200" data-testid="drift-reason"/>
                            <input name="days" type="number" min="1" max="365" value="7" aria-label=l.t("days", "天数")/>
                            <button type="submit" data-testid="drift-ignore">{l.t("Ignore", "忽略")}</button>
                        </form>
                    }
                })}
            </td>
        </tr>
    }
}
