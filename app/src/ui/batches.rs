//! Import batches: the list, the new-batch form, and a batch's page with its
//! plan, progress and timeline of evidence.

use super::widgets::*;
use crate::api::{batch_detail, list_batches, new_batch_options};
use crate::i18n::Lang;
use crate::page::page_ctx;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use provisioning_core::model::{AccessStatus, Action, BatchStatus, BatchView, Role, StepState};

pub fn batch_badge(l: Lang, s: BatchStatus) -> impl IntoView {
    let class = match s {
        BatchStatus::Succeeded | BatchStatus::RolledBack => "badge ok",
        BatchStatus::PartiallySucceeded | BatchStatus::Running | BatchStatus::RollingBack => {
            "badge warn"
        }
        BatchStatus::Planned => "badge muted",
        BatchStatus::Failed | BatchStatus::RollbackFailed => "badge bad",
    };
    let _ = l;
    view! { <span class=class data-status=s.as_str()>{s.as_str()}</span> }
}

fn access_badge(s: AccessStatus) -> impl IntoView {
    let class = match s {
        AccessStatus::SelfServiceReady
        | AccessStatus::SubscriptionReady
        | AccessStatus::FullyReady => "badge ok",
        AccessStatus::Degraded => "badge warn",
        AccessStatus::Broken => "badge bad",
        AccessStatus::None => "badge muted",
    };
    view! { <span class=class data-access=s.as_str()>{s.as_str()}</span> }
}

fn step_badge(s: StepState) -> impl IntoView {
    let class = match s {
        StepState::Done | StepState::Skipped => "badge ok",
        StepState::Sent | StepState::Pending => "badge muted",
        StepState::Unknown => "badge warn",
        StepState::Failed => "badge bad",
    };
    view! { <span class=class data-state=s.as_str()>{s.as_str()}</span> }
}

#[component]
pub fn BatchesPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let batches = Resource::new(|| (), |_| list_batches());
    view! {
        <Layout>
            <div class="title-row">
                <h1>{l.t("Import batches", "导入批次")}</h1>
                {ctx.can(Role::Operator).then(|| view! { <a class="button primary" href="/batches/new">{l.t("New batch", "新建批次")}</a> })}
            </div>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match batches.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <div class="empty"><p>{l.t("No batch yet. A batch puts upstream keys of one provider onto one host, then proves the route ready.", "还没有批次。批次把某个供应商的上游密钥导入一台主机，并验证线路就绪。")}</p></div>
                        }.into_any(),
                        Ok(list) => view! {
                            <table class="grid" data-testid="batches">
                                <thead><tr>
                                    <th>"#"</th>
                                    <th>{l.t("Host", "主机")}</th>
                                    <th>{l.t("Provider", "供应商")}</th>
                                    <th>{l.t("Mode", "方式")}</th>
                                    <th>{l.t("Keys", "密钥")}</th>
                                    <th>{l.t("Status", "状态")}</th>
                                    <th>{l.t("Access", "访问")}</th>
                                    <th>{l.t("Created", "创建")}</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|b| view! {
                                        <tr>
                                            <td><a href=format!("/batches/{}", b.id)>{format!("#{}", b.id)}</a></td>
                                            <td>{b.host_name.clone()}</td>
                                            <td><code>{format!("{}/{}", b.pack_id, b.provider_key)}</code></td>
                                            <td>{b.mode.as_str()}</td>
                                            <td>{b.key_count}</td>
                                            <td>{batch_badge(l, b.status)}</td>
                                            <td>{access_badge(b.access_status)}</td>
                                            <td class="muted">{format!("{} · {}", when(b.created_at_ms), b.created_by)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
pub fn NewBatchPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let opts = Resource::new(|| (), |_| new_batch_options());
    let (host_sel, prov_sel, mode_sel) = (
        ctx.value("host_id"),
        ctx.value("provider"),
        ctx.value("mode"),
    );
    view! {
        <Layout>
            <h1>{l.t("New import batch", "新建导入批次")}</h1>
            {if !ctx.can(Role::Operator) {
                view! { <p class="flash error">{l.t("Your role cannot import keys (operator or admin needed).", "你的角色不能导入密钥（需要 operator 或 admin）。")}</p> }.into_any()
            } else {
                view! {
                    <Suspense fallback=move || loading(l)>
                        {
                            let (host_sel, prov_sel, mode_sel) = (host_sel.clone(), prov_sel.clone(), mode_sel.clone());
                            move || {
                                let (host_sel, prov_sel, mode_sel) = (host_sel.clone(), prov_sel.clone(), mode_sel.clone());
                                Suspend::new(async move {
                                    match opts.await {
                                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                                        Ok(o) if o.hosts.is_empty() => view! { <div class="empty"><p>{l.t("Register a host first.", "请先登记主机。")}</p><a class="button" href="/hosts/new">{l.t("Add a host", "添加主机")}</a></div> }.into_any(),
                                        Ok(o) => view! {
                                            <form method="post" action="/batches/new" enctype="multipart/form-data" class="card form wide" data-testid="batch-form">
                                                <Csrf/>
                                                <label class="field">
                                                    <span>{l.t("Host", "主机")}</span>
                                                    <select name="host_id">
                                                        {o.hosts.iter().map(|h| {
                                                            let v = h.id.to_string();
                                                            view! { <option value=v.clone() selected=host_sel == v>{format!("{} ({})", h.name, h.base_url)}</option> }
                                                        }).collect_view()}
                                                    </select>
                                                </label>
                                                <label class="field">
                                                    <span>{l.t("Provider (pack / provider)", "供应商（模板包 / 供应商）")}</span>
                                                    <select name="provider">
                                                        {o.providers.iter().map(|(pv, pack, key, name, _)| {
                                                            let v = format!("{pv}:{key}");
                                                            view! { <option value=v.clone() selected=prov_sel == v>{format!("{name} — {pack}/{key} (v{pv})")}</option> }
                                                        }).collect_view()}
                                                    </select>
                                                </label>
                                                <label class="field">
                                                    <span>{l.t("Access mode", "开通方式")}</span>
                                                    <select name="mode">
                                                        <option value="default" selected=mode_sel.is_empty() || mode_sel == "default">{l.t("The pack's default", "模板包默认")}</option>
                                                        <option value="self_service" selected=mode_sel == "self_service">{l.t("self_service: balance, standard group", "self_service：余额，标准分组")}</option>
                                                        <option value="subscription" selected=mode_sel == "subscription">{l.t("subscription: subscription group", "subscription：订阅分组")}</option>
                                                    </select>
                                                </label>
                                                <label class="field">
                                                    <span>{l.t("Upstream keys", "上游密钥")}</span>
                                                    <textarea name="keys" rows="8" spellcheck="false" autocomplete="off" class="mono"
                                                        placeholder=l.t("one key per line, or CSV (key/api_key column), or a JSON array", "每行一个密钥，或 CSV（key/api_key 列），或 JSON 数组")></textarea>
                                                    <small class="hint">{l.t("Keys are encrypted at rest, fingerprinted, and never shown again in full.", "密钥加密存储并计算指纹，之后不再完整显示。")}</small>
                                                    {page_ctx().field_error("keys").map(|e| view! { <small class="field-error" data-testid="error-keys">{e}</small> })}
                                                </label>
                                                <label class="field">
                                                    <span>{l.t("…or a file", "……或上传文件")}</span>
                                                    <input type="file" name="keys_file" accept=".txt,.csv,.json,text/plain"/>
                                                </label>
                                                <button type="submit" class="primary">{l.t("Plan (nothing is written yet)", "生成计划（暂不写入）")}</button>
                                            </form>
                                        }.into_any(),
                                    }
                                })
                            }
                        }
                    </Suspense>
                }.into_any()
            }}
        </Layout>
    }
}

#[component]
pub fn BatchPage() -> impl IntoView {
    let l = page_ctx().lang;
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let data = Resource::new(id, batch_detail);
    view! {
        <Layout>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(b) => view! { <BatchDetail batch=b/> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn BatchDetail(batch: BatchView) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let b = batch;
    let p = b.plan.clone();
    let running = b.status == BatchStatus::Running;
    let can_apply = ctx.can(Role::Operator)
        && matches!(
            b.status,
            BatchStatus::Planned
                | BatchStatus::Failed
                | BatchStatus::PartiallySucceeded
                | BatchStatus::Succeeded
                | BatchStatus::Running
        );
    let done = b
        .steps
        .iter()
        .filter(|s| matches!(s.state, StepState::Done | StepState::Skipped))
        .count();
    let total = b.steps.len();
    view! {
        // A plain element (not leptos_meta): it must hydrate where it stands.
        {running.then(|| view! { <meta http-equiv="refresh" content="2"/> })}
        <div class="title-row">
            <h1>{format!("{} #{}", l.t("Batch", "批次"), b.id)}" "{batch_badge(l, b.status)}" "{access_badge(b.access_status)}</h1>
            {can_apply.then(|| view! {
                <form method="post" action=format!("/batches/{}", b.id) class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value="apply"/>
                    <button type="submit" class="primary" data-testid="apply">{match b.status {
                        BatchStatus::Planned => l.t("Apply", "执行"),
                        _ => l.t("Re-run (converges, no duplicates)", "重新执行（收敛，不重复）"),
                    }}</button>
                </form>
            })}
        </div>
        <p class="progress" data-testid="progress">{format!("{done} / {total} {}", l.t("steps done", "步已完成"))}{running.then(|| l.t(" · applying, this page refreshes", " · 执行中，页面自动刷新"))}</p>
        <dl class="facts">
            <dt>{l.t("Host", "主机")}</dt><dd><a href=format!("/hosts/{}", b.host_id)>{b.host_name.clone()}</a>" "<span class="muted">{b.host_version.clone().map(|v| format!("v{v}")).unwrap_or_default()}</span></dd>
            <dt>{l.t("Provider", "供应商")}</dt><dd><code>{format!("{}/{}", p.pack_id, p.provider_key)}</code>" "<span class="muted">{format!("pack {}", &p.pack_hash[..12])}</span></dd>
            <dt>{l.t("Platform", "平台")}</dt><dd><code>{p.platform.clone()}</code>" — "{p.strategy_reason.clone()}</dd>
            <dt>{l.t("Access mode", "开通方式")}</dt><dd>{p.mode.as_str()}</dd>
            <dt>{l.t("Group / channel", "分组 / 渠道")}</dt><dd><code>{p.group_name.clone()}</code></dd>
            <dt>{l.t("Smoke model", "冒烟模型")}</dt><dd><code>{p.smoke_model.clone()}</code></dd>
            <dt>{l.t("Prices sent (USD / token)", "写入价格（美元 / token）")}</dt>
            <dd>{p.prices.iter().map(|(m, i, o)| format!("{m}: {i:.3e} in, {o:.3e} out")).collect::<Vec<_>>().join(" · ")}
                {p.exchange_rate.map(|x| format!(" (1 USD = {x} CNY)"))}</dd>
            <dt>{l.t("Stamped", "记录")}</dt><dd class="muted">{format!("{} · {} · product v{}", when(b.created_at_ms), b.created_by, b.product_version)}</dd>
        </dl>
        {(!p.warnings.is_empty()).then(|| view! {
            <ul class="findings">{p.warnings.iter().map(|w| view! { <li class="finding warn">{w.clone()}</li> }).collect_view()}</ul>
        })}
        {(!p.skipped.is_empty()).then(|| view! {
            <h2>{l.t("Keys not imported", "未导入的密钥")}</h2>
            <table class="grid" data-testid="skipped">
                <thead><tr><th>{l.t("Key", "密钥")}</th><th>{l.t("Line", "行")}</th><th>{l.t("Why", "原因")}</th></tr></thead>
                <tbody>{p.skipped.iter().map(|s| view! { <tr><td><code>{s.masked.clone()}</code></td><td>{s.line}</td><td>{s.reason.clone()}</td></tr> }).collect_view()}</tbody>
            </table>
        })}
        {b.diagnosis.clone().map(|d| view! {
            <h2>{l.t("What failed, and what to do", "失败原因与处理办法")}</h2>
            <p class="muted small">{format!("{} · {} {}", when(d.at_ms), d.upstream_completions, l.t("upstream completion(s) spent", "次上游最小调用"))}</p>
            <ul class="findings" data-testid="diagnosis">
                {d.items.into_iter().map(|i| view! {
                    <li class="finding bad" data-class=i.class.as_str()>
                        <b>{i.target.clone()}": "<code>{i.class.as_str()}</code></b>
                        <p class="action">{l.t("What to do: ", "处理办法：")}{i.action.clone()}</p>
                        <details>
                            <summary>{l.t("evidence", "证据")}</summary>
                            {i.evidence.into_iter().map(|e| view! { <pre class="evidence">{e}</pre> }).collect_view()}
                        </details>
                    </li>
                }).collect_view()}
            </ul>
        })}
        // A <div>: a <form> inside a <p> is invalid HTML, which the browser
        // repairs, and the repaired DOM no longer matches what hydrates.
        <div class="actions">
            <a class="button" href=format!("/batches/{}/evidence.html", b.id) rel="external" data-testid="export-html">{l.t("Evidence report (HTML)", "证据报告（HTML）")}</a>
            <a class="button" href=format!("/batches/{}/evidence.json", b.id) rel="external" data-testid="export-json">{l.t("Evidence bundle (JSON)", "证据包（JSON）")}</a>
            {(ctx.can(Role::Operator) && b.steps.iter().any(|s| matches!(s.state, StepState::Failed | StepState::Unknown))).then(|| view! {
                <form method="post" action=format!("/batches/{}", b.id) class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value="diagnose"/>
                    <button type="submit" data-testid="diagnose">{l.t("Diagnose again", "重新诊断")}</button>
                </form>
            })}
        </div>
        <h2>{l.t("Timeline", "时间线")}</h2>
        <table class="grid" data-testid="timeline">
            <thead><tr>
                <th>"#"</th><th>{l.t("Step", "步骤")}</th><th>{l.t("Plan", "计划")}</th><th>{l.t("State", "状态")}</th>
                <th>{l.t("Remote id", "远端 ID")}</th><th>{l.t("Duration", "耗时")}</th><th>{l.t("Evidence", "证据")}</th>
            </tr></thead>
            <tbody>
                {b.steps.iter().map(|s| {
                    let action = match s.action { Action::Create => "create", Action::Reuse => "reuse", Action::Update => "update", Action::Skip => "skip", Action::Check => "check" };
                    let took = match (s.started_at_ms, s.finished_at_ms) { (Some(a), Some(z)) => format!("{} ms", z - a), _ => String::new() };
                    let evidence = !(s.request.is_empty() && s.response.is_empty());
                    view! {
                        <tr data-kind=s.kind.as_str() data-seq=s.seq.to_string()>
                            <td>{s.seq}</td>
                            <td>{s.target.clone()}</td>
                            <td>{action}</td>
                            <td>{step_badge(s.state)}</td>
                            <td><code>{s.remote_id.clone().unwrap_or_default()}</code></td>
                            <td class="nowrap">{took}</td>
                            <td>
                                {(!s.error.is_empty()).then(|| view! { <p class="field-error">{s.error.clone()}</p> })}
                                {evidence.then(|| view! {
                                    <details>
                                        <summary>{l.t("request / response", "请求 / 响应")}</summary>
                                        <pre class="evidence">{s.request.clone()}</pre>
                                        <pre class="evidence">{s.response.clone()}</pre>
                                        <p class="muted small">{format!("Idempotency-Key {} · marker {}", s.idempotency_key, s.marker)}</p>
                                    </details>
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
