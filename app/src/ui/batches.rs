//! Import batches: the list, the new-batch form, and a batch's page with its
//! plan, progress and timeline of evidence.

use super::widgets::*;
use crate::api::{
    batch_detail, batch_reviews, batch_step, list_batches, new_batch_options, replace_view,
    review_form, rollback_preview,
};
use crate::i18n::Lang;
use crate::page::page_ctx;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use provisioning_core::model::{
    AccessStatus, Action, BatchFilter, BatchStatus, BatchView, KeyOutcomes, KindCount, ReplaceView,
    Role, RollbackPreview, StateCounts, StepKind, StepState, StepView,
};

/// The time now (pages render on the server).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn batch_badge(l: Lang, s: BatchStatus) -> impl IntoView {
    let class = match s {
        BatchStatus::Succeeded | BatchStatus::RolledBack => "badge ok",
        BatchStatus::PartiallySucceeded | BatchStatus::Running | BatchStatus::RollingBack => {
            "badge warn"
        }
        BatchStatus::Planned | BatchStatus::Discarded => "badge muted",
        BatchStatus::Failed | BatchStatus::RollbackFailed => "badge bad",
    };
    let (text, what) = match s {
        BatchStatus::Planned => (
            l.t("planned", "已规划"),
            l.t(
                "Batch status: planned, nothing sent to the host yet",
                "批次状态：已规划，尚未向主机发送任何内容",
            ),
        ),
        BatchStatus::Running => (
            l.t("running", "执行中"),
            l.t("Batch status: an apply is running", "批次状态：正在执行"),
        ),
        BatchStatus::Succeeded => (
            l.t("succeeded", "成功"),
            l.t(
                "Batch status: every key of this batch passed",
                "批次状态：本批次所有密钥均通过",
            ),
        ),
        BatchStatus::PartiallySucceeded => (
            l.t("partially_succeeded", "部分成功"),
            l.t(
                "Batch status: some of this batch's keys failed",
                "批次状态：本批次部分密钥失败",
            ),
        ),
        BatchStatus::Failed => (
            l.t("failed", "失败"),
            l.t(
                "Batch status: none of this batch's keys passed, or a shared step failed",
                "批次状态：本批次没有密钥通过，或共享步骤失败",
            ),
        ),
        BatchStatus::RollingBack => (
            l.t("rolling_back", "回滚中"),
            l.t("Batch status: a rollback is running", "批次状态：正在回滚"),
        ),
        BatchStatus::RolledBack => (
            l.t("rolled_back", "已回滚"),
            l.t(
                "Batch status: what it created was removed from the host",
                "批次状态：其创建的内容已从主机删除",
            ),
        ),
        BatchStatus::RollbackFailed => (
            l.t("rollback_failed", "回滚失败"),
            l.t(
                "Batch status: a rollback stopped before the end",
                "批次状态：回滚未完成",
            ),
        ),
        BatchStatus::Discarded => (
            l.t("discarded", "已放弃"),
            l.t(
                "Batch status: the plan was thrown away before it was applied",
                "批次状态：计划在执行前被放弃",
            ),
        ),
    };
    view! { <span class=class data-status=s.as_str() title=what>{text}</span> }
}

pub(super) fn access_badge(l: Lang, s: AccessStatus) -> impl IntoView {
    let class = match s {
        AccessStatus::SelfServiceReady
        | AccessStatus::SubscriptionReady
        | AccessStatus::FullyReady => "badge ok",
        AccessStatus::Degraded => "badge warn",
        AccessStatus::Broken => "badge bad",
        AccessStatus::None => "badge muted",
    };
    let (text, what) = match s {
        AccessStatus::None => (
            l.t("none", "无"),
            l.t("Group access: not proven yet", "分组访问：尚未验证"),
        ),
        AccessStatus::SelfServiceReady => (
            l.t("self_service_ready", "自助就绪"),
            l.t(
                "Group access: a user with balance got a completion through the group",
                "分组访问：有余额的用户经该分组调用成功",
            ),
        ),
        AccessStatus::SubscriptionReady => (
            l.t("subscription_ready", "订阅就绪"),
            l.t(
                "Group access: a subscribed user got a completion through the group",
                "分组访问：已订阅用户经该分组调用成功",
            ),
        ),
        AccessStatus::FullyReady => (
            l.t("fully_ready", "完全就绪"),
            l.t(
                "Group access: proven in both modes",
                "分组访问：两种方式均已验证",
            ),
        ),
        AccessStatus::Degraded => (
            l.t("degraded", "降级"),
            l.t(
                "Group access: a re-check found it only partly working",
                "分组访问：复查发现仅部分可用",
            ),
        ),
        AccessStatus::Broken => (
            l.t("broken", "不可用"),
            l.t(
                "Group access: the check through the host failed",
                "分组访问：经主机的检查失败",
            ),
        ),
    };
    view! { <span class=class data-access=s.as_str() title=what>{text}</span> }
}

/// A step's recorded error: the product's words in the reader's language,
/// the host's (or upstream's) own words kept as they are, as code.
pub(crate) fn step_error(l: Lang, error: &str) -> impl IntoView {
    const OURS: &[(&str, &str)] = &[
        ("account test failed: ", "账号测试失败："),
        (
            "GET /v1/models with the probe user's key: ",
            "用探测用户的密钥请求 GET /v1/models：",
        ),
        ("read-back: ", "回读："),
    ];
    let (prefix, rest) = OURS
        .iter()
        .find_map(|(en, zh)| error.strip_prefix(en).map(|r| (l.t(en, zh), r)))
        .unwrap_or((l.t("", "原文："), error));
    view! { {prefix}<code class="host-words">{rest.to_string()}</code> }
}

/// A journal state in one word, as its badge says it.
fn state_word(l: Lang, s: StepState) -> &'static str {
    match s {
        StepState::Pending => l.t("pending", "待发送"),
        StepState::Sent => l.t("sent", "已发送"),
        StepState::Done => l.t("done", "完成"),
        StepState::Failed => l.t("failed", "失败"),
        StepState::Unknown => l.t("unknown", "未知"),
        StepState::Skipped => l.t("skipped", "跳过"),
    }
}

fn step_badge(l: Lang, s: StepState) -> impl IntoView {
    let class = match s {
        StepState::Done | StepState::Skipped => "badge ok",
        StepState::Sent | StepState::Pending => "badge muted",
        StepState::Unknown => "badge warn",
        StepState::Failed => "badge bad",
    };
    let (text, what) = match s {
        StepState::Pending => (
            state_word(l, s),
            l.t("Journal: not sent yet", "日志：尚未发送"),
        ),
        StepState::Sent => (
            state_word(l, s),
            l.t(
                "Journal: sent, the answer not recorded yet",
                "日志：已发送，尚未记录结果",
            ),
        ),
        StepState::Done => (
            state_word(l, s),
            l.t(
                "Journal: the host did it and it read back as wanted",
                "日志：主机已完成且回读一致",
            ),
        ),
        StepState::Failed => (
            state_word(l, s),
            l.t("Journal: refused or failed", "日志：被拒绝或失败"),
        ),
        StepState::Unknown => (
            state_word(l, s),
            l.t(
                "Journal: sent, and whether the host acted cannot be known",
                "日志：已发送，无法确定主机是否执行",
            ),
        ),
        StepState::Skipped => (
            state_word(l, s),
            l.t(
                "Journal: not needed (already there, or held by another batch)",
                "日志：无需执行（已存在或由其他批次持有）",
            ),
        ),
    };
    view! { <span class=class data-state=s.as_str() title=what>{text}</span> }
}

/// "18 / 20 passed · 2 failed · 1 skipped": what became of a batch's own
/// keys; "20 not tested yet" before its tests ran.
pub(super) fn key_outcomes(l: Lang, k: &KeyOutcomes) -> String {
    if k.total() == 0 {
        return "—".to_string();
    }
    let own = k.passed + k.failed + k.untested;
    let mut parts = Vec::new();
    if k.passed + k.failed > 0 || k.untested == 0 {
        parts.push(format!("{} / {own} {}", k.passed, l.t("passed", "通过")));
    }
    if k.failed > 0 {
        parts.push(format!("{} {}", k.failed, l.t("failed", "失败")));
    }
    if k.untested > 0 {
        parts.push(format!(
            "{} {}",
            k.untested,
            l.t("not tested yet", "尚未测试")
        ));
    }
    if k.skipped > 0 {
        parts.push(format!(
            "{} {}",
            k.skipped,
            l.t(
                "skipped (held by another batch)",
                "已跳过（由其他批次持有）"
            )
        ));
    }
    if k.replaced > 0 {
        parts.push(format!(
            "{} {}",
            k.replaced,
            l.t("replaced by another key", "已被新密钥替换")
        ));
    }
    parts.join(" · ")
}

/// A price per million tokens, from USD per token: `$0.27`, `$0.0700`.
fn per_million(usd_per_token: f64, rate: f64, symbol: &str) -> String {
    let v = usd_per_token * 1e6 * rate;
    let s = if v >= 1.0 {
        format!("{v:.2}")
    } else {
        let s = format!("{v:.4}");
        let t = s.trim_end_matches('0');
        // Keep two decimals at least: 0.1 → 0.10.
        match t.split_once('.') {
            Some((_, d)) if d.len() < 2 => format!("{v:.2}"),
            _ => t.to_string(),
        }
    };
    format!("{symbol}{s}")
}

#[component]
pub fn BatchesPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let query = leptos_router::hooks::use_query_map();
    let key = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).unwrap_or_default().trim().to_string();
        (
            BatchFilter {
                host_id: q.get("host").and_then(|s| s.parse::<i64>().ok()),
                provider: get("provider"),
                status: get("status"),
                attention: get("attention") == "1",
                review: get("review"),
            },
            q.get("before").and_then(|s| s.parse::<i64>().ok()),
        )
    };
    let batches = Resource::new(key, |(f, before)| list_batches(f, before));
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
                        Ok(d) if d.list.items.is_empty() && d.list.before.is_none() && d.list.filter.is_empty() => view! {
                            <div class="empty"><p>{l.t("No batch yet. A batch puts upstream keys of one provider onto one host, then proves the route ready.", "还没有批次。批次把某个供应商的上游密钥导入一台主机，并验证线路就绪。")}</p></div>
                        }.into_any(),
                        Ok(d) => {
                            let f = d.list.filter.clone();
                            let statuses = ["planned", "running", "succeeded", "partially_succeeded", "failed", "rolling_back", "rolled_back", "rollback_failed", "discarded"];
                            let page_link = move |before: Option<i64>| batches_query(&f, before);
                            let f = d.list.filter.clone();
                            view! {
                                <form method="get" action="/batches" class="inline search" data-testid="batch-filter">
                                    <label class="field"><span>{l.t("Host", "主机")}</span>
                                        <select name="host">
                                            <option value="" selected=f.host_id.is_none()>{l.t("any", "全部")}</option>
                                            {d.hosts.iter().map(|(id, name)| view! { <option value=id.to_string() selected=f.host_id == Some(*id)>{name.clone()}</option> }).collect_view()}
                                        </select></label>
                                    <label class="field"><span>{l.t("Provider", "供应商")}</span>
                                        <select name="provider">
                                            <option value="" selected=f.provider.is_empty()>{l.t("any", "全部")}</option>
                                            {d.providers.iter().map(|p| view! { <option value=p.clone() selected=*p == f.provider>{p.clone()}</option> }).collect_view()}
                                        </select></label>
                                    <label class="field"><span>{l.t("Batch status", "批次状态")}</span>
                                        <select name="status">
                                            <option value="" selected=f.status.is_empty()>{l.t("any", "全部")}</option>
                                            {statuses.into_iter().map(|s| view! { <option value=s selected=s == f.status>{s}</option> }).collect_view()}
                                        </select></label>
                                    <label class="field"><span>{l.t("Review", "审核")}</span>
                                        <select name="review" data-testid="review-filter">
                                            <option value="" selected=f.review.is_empty()>{l.t("any", "全部")}</option>
                                            {provisioning_core::model::ReviewState::ALL.into_iter().map(|s| view! { <option value=s.as_str() selected=s.as_str() == f.review>{super::reviews::state_word(l, s)}</option> }).collect_view()}
                                        </select></label>
                                    <label class="check"><input type="checkbox" name="attention" value="1" checked=f.attention/>{l.t(" needs attention only", " 仅显示需处理的")}</label>
                                    <button type="submit">{l.t("Filter", "筛选")}</button>
                                    {(!f.is_empty()).then(|| view! { " " <a href="/batches">{l.t("Clear", "清除")}</a> })}
                                </form>
                                {if d.list.items.is_empty() {
                                    view! { <p class="empty" data-testid="no-batch-matches">{l.t("No batch matches.", "没有匹配的批次。")}</p> }.into_any()
                                } else {
                                    view! { <BatchTable items=d.list.items.clone()/> }.into_any()
                                }}
                                <p class="pager">
                                    {d.list.before.is_some().then(|| view! { <a href=page_link(None) data-testid="newest">{l.t("← Newest", "← 最新")}</a> })}
                                    {d.list.next_before.map(|n| view! { " " <a href=page_link(Some(n)) data-testid="older">{l.t("Older →", "更早 →")}</a> })}
                                </p>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </Layout>
    }
}

/// `/batches?…` with a filter and a cursor.
fn batches_query(f: &BatchFilter, before: Option<i64>) -> String {
    let mut parts = Vec::new();
    if let Some(h) = f.host_id {
        parts.push(format!("host={h}"));
    }
    use provisioning_core::model::urlencode;
    if !f.provider.is_empty() {
        parts.push(format!("provider={}", urlencode(&f.provider)));
    }
    if !f.status.is_empty() {
        parts.push(format!("status={}", urlencode(&f.status)));
    }
    if f.attention {
        parts.push("attention=1".into());
    }
    if !f.review.is_empty() {
        parts.push(format!("review={}", urlencode(&f.review)));
    }
    if let Some(b) = before {
        parts.push(format!("before={b}"));
    }
    if parts.is_empty() {
        "/batches".into()
    } else {
        format!("/batches?{}", parts.join("&"))
    }
}

/// Batches as rows: the list page and the overview.
#[component]
pub fn BatchTable(items: Vec<provisioning_core::model::BatchSummary>) -> impl IntoView {
    let l = page_ctx().lang;
    view! {
        <div class="table-wrap">
        <table class="grid" data-testid="batches">
            <thead><tr>
                <th>"#"</th>
                <th>{l.t("Host", "主机")}</th>
                <th>{l.t("Provider", "供应商")}</th>
                <th>{l.t("Mode", "方式")}</th>
                <th>{l.t("Keys", "密钥")}</th>
                <th>{l.t("Key outcomes", "密钥结果")}</th>
                <th>{l.t("Batch status", "批次状态")}</th>
                <th>{l.t("Group access", "分组访问")}</th>
                <th>{l.t("Drift", "漂移")}</th>
                <th>{l.t("Review", "审核")}</th>
                <th>{l.t("Created", "创建")}</th>
            </tr></thead>
            <tbody>
                {items.into_iter().map(|b| view! {
                    <tr data-batch=b.id.to_string()>
                        <td><a href=format!("/batches/{}", b.id)>{format!("#{}", b.id)}</a></td>
                        <td>{b.host_name.clone()}</td>
                        <td><code>{format!("{}/{}", b.pack_id, b.provider_key)}</code></td>
                        <td data-mode=b.mode.as_str()>{mode_word(l, b.mode)}</td>
                        <td>{b.key_count}</td>
                        <td data-testid="batch-keys">{key_outcomes(l, &b.keys)}</td>
                        <td>{batch_badge(l, b.status)}</td>
                        <td>{access_badge(l, b.access_status)}</td>
                        <td data-testid="batch-drift"><a href=format!("/hosts/{}/drift?batch={}", b.host_id, b.id)>{match b.drift_open {
                            None => l.t("not checked", "未检查").to_string(),
                            Some(0) => l.t("none open", "无未处理").to_string(),
                            Some(n) => format!("{n} {}", l.t("open", "项未处理")),
                        }}</a></td>
                        <td data-testid="batch-review">{b.review.map(|s| super::reviews::state_badge(l, s))}</td>
                        <td class="muted">{format!("{} · {}", when(b.created_at_ms), b.created_by)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        </div>
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
                                        Ok(o) => {
                                        // Demo mode: its provider chosen and its keys typed in,
                                        // unless the person chose or typed something.
                                        let demo = !o.demo_keys.is_empty();
                                        let prov_sel = if prov_sel.is_empty() && demo {
                                            o.providers.iter().find(|p| p.1 == "demo").map(|p| format!("{}:{}", p.0, p.2)).unwrap_or_default()
                                        } else {
                                            prov_sel
                                        };
                                        let typed = page_ctx().value("keys");
                                        let keys_text = if typed.is_empty() && demo {
                                            o.demo_keys.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>().join("\n")
                                        } else {
                                            typed
                                        };
                                        view! {
                                            {demo.then(|| view! {
                                                <div class="flash ok" data-testid="demo-keys">
                                                    {l.t("Demo mode: the demo provider and the fake upstream's keys are filled in.", "演示模式：已填入演示供应商和模拟上游的密钥。")}
                                                    <ul>{o.demo_keys.iter().map(|(k, what)| view! { <li><code>{k.clone()}</code>" — "{what.clone()}</li> }).collect_view()}</ul>
                                                </div>
                                            })}
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
                                                        {o.providers.iter().map(|(pv, pack, key, name, _, number)| {
                                                            let v = format!("{pv}:{key}");
                                                            view! { <option value=v.clone() selected=prov_sel == v>{format!("{name} — {pack}/{key} (v{number})")}</option> }
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
                                                        placeholder=l.t("one key per line, or CSV (key/api_key column), or a JSON array", "每行一个密钥，或 CSV（key/api_key 列），或 JSON 数组")>{keys_text}</textarea>
                                                    <small class="hint">{l.t("Keys are encrypted at rest, fingerprinted, and never shown again in full.", "密钥加密存储并计算指纹，之后不再完整显示。")}</small>
                                                    {page_ctx().field_error("keys").map(|e| view! { <small class="field-error" data-testid="error-keys">{e}</small> })}
                                                </label>
                                                <label class="field">
                                                    <span>{l.t("…or a file", "……或上传文件")}</span>
                                                    <input type="file" name="keys_file" accept=".txt,.csv,.json,text/plain"/>
                                                </label>
                                                <button type="submit" class="primary">{l.t("Plan (nothing is written yet)", "生成计划（暂不写入）")}</button>
                                            </form>
                                        }.into_any()
                                        }
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
    let query = leptos_router::hooks::use_query_map();
    let after = move || {
        query
            .read()
            .get("after")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let state = move || query.read().get("state").filter(|s| !s.is_empty());
    let diag = move || {
        let q = query.read();
        (
            q.get("diag").filter(|s| !s.is_empty()),
            q.get("diag_after")
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0),
        )
    };
    let data = Resource::new(
        move || (id(), after(), state(), diag()),
        |(id, after, state, (diag, diag_after))| batch_detail(id, after, state, diag, diag_after),
    );
    let reviews = Resource::new(id, batch_reviews);
    view! {
        <Layout>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match (data.await, reviews.await) {
                        (Err(e), _) | (_, Err(e)) => view! { <ErrorBox err=e/> }.into_any(),
                        (Ok(b), Ok(r)) => view! { <BatchDetail batch=b panel=r/> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn BatchDetail(batch: BatchView, panel: provisioning_core::model::ReviewPanel) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let b = batch;
    let p = b.plan.clone();
    let running = matches!(b.status, BatchStatus::Running | BatchStatus::RollingBack);
    let can_roll_back = ctx.can(Role::Operator)
        && matches!(
            b.status,
            BatchStatus::Succeeded
                | BatchStatus::PartiallySucceeded
                | BatchStatus::Failed
                | BatchStatus::RollbackFailed
        );
    let failed_tests = b.failed_live_accounts;
    let paused = b.failed_paused_accounts;
    let can_pause = ctx.can(Role::Operator)
        && failed_tests > 0
        && matches!(
            b.status,
            BatchStatus::Succeeded | BatchStatus::PartiallySucceeded | BatchStatus::Failed
        );
    let blocked = !p.blockers.is_empty();
    // A run marked running whose lease has passed was left by a process
    // that stopped: resuming it is the only thing an apply button can do.
    let now = now_ms();
    let stalled = running
        && !b
            .runs
            .iter()
            .any(|r| r.status == "running" && r.lease_until_ms.is_some_and(|u| u > now));
    // What the apply button does, in words, or no button when it would do
    // nothing (a live run, a rolled-back or discarded batch).
    // On a protected host nothing is applied without a valid approval: the
    // four-eyes section says who must give it.
    let awaiting_approval = panel.four_eyes.protected && panel.four_eyes.valid("apply").is_none();
    let apply = match b.status {
        _ if blocked || !ctx.can(Role::Operator) || awaiting_approval => None,
        BatchStatus::Planned => Some(("apply", l.t("Apply", "执行").to_string())),
        BatchStatus::Running if stalled => Some((
            "apply",
            l.t(
                "Resume (the last run stopped)",
                "继续执行（上次运行已中断）",
            )
            .to_string(),
        )),
        BatchStatus::Failed | BatchStatus::PartiallySucceeded if b.keys.failed > 0 => Some((
            "retry_failed",
            format!(
                "{} {} {}",
                l.t("Retry the", "重试"),
                b.keys.failed,
                l.t("failed key(s)", "个失败的密钥")
            ),
        )),
        BatchStatus::Failed | BatchStatus::PartiallySucceeded => Some((
            "apply",
            l.t(
                "Re-run (converges, no duplicates)",
                "重新执行（收敛，不重复）",
            )
            .to_string(),
        )),
        BatchStatus::Succeeded => Some((
            "apply",
            l.t(
                "Re-check readiness (writes nothing new)",
                "重新检查就绪（不写入新内容）",
            )
            .to_string(),
        )),
        _ => None,
    };
    let can_discard = ctx.can(Role::Operator) && b.status == BatchStatus::Planned;
    let can_replace = ctx.can(Role::Operator)
        && matches!(
            b.status,
            BatchStatus::Succeeded | BatchStatus::PartiallySucceeded | BatchStatus::Failed
        );
    // Prices count as sent only once a channel took them.
    let channel = b.kind_totals(StepKind::Channel);
    let channel_state = (channel.total() > 0).then_some(channel.done > 0);
    let totals = b.step_totals();
    let (done, total) = (totals.finished(), totals.total());
    view! {
        // Without JavaScript a running batch's page reloads itself; with it,
        // the progress island fetches only what changed (no reload).
        {running.then(|| view! { <noscript><meta http-equiv="refresh" content="2"/></noscript> })}
        <div class="title-row">
            <h1>{format!("{} #{}", l.t("Batch", "批次"), b.id)}" "{batch_badge(l, b.status)}</h1>
            <div class="actions">
            {apply.map(|(action, label)| view! {
                <form method="post" action=format!("/batches/{}", b.id) class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value=action/>
                    <button type="submit" class="primary" data-testid="apply" data-action=action>{label}</button>
                </form>
            })}
            {can_discard.then(|| view! {
                <form method="post" action=format!("/batches/{}", b.id) class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value="discard"/>
                    <label class="small"><input type="checkbox" name="confirm" value="yes" required data-testid="discard-confirm"/>{l.t(" throw this plan away", " 放弃此计划")}</label>
                    <button type="submit" class="danger" data-testid="discard" title=l.t("Nothing has been sent to the host: the plan is kept for the record, its keys are deleted, and it can never be applied.", "尚未向主机发送任何内容：计划保留备查，其密钥被删除，且永远不能再执行。")>{l.t("Discard plan", "放弃计划")}</button>
                </form>
            })}
            {can_replace.then(|| view! {
                <a class="button" href=format!("/batches/{}/replace", b.id) data-testid="replace-key" title=l.t("A new key takes the place of one of this batch's accounts: the new account is created and tested first, the old one removed only once it passed.", "用新密钥替换本批次的某个账号：先创建并测试新账号，通过后才删除旧账号。")>{l.t("Replace a key…", "替换密钥…")}</a>
            })}
            {can_roll_back.then(|| view! {
                <a class="button danger" href=format!("/batches/{}/rollback", b.id) data-testid="rollback">{match b.status {
                    BatchStatus::RollbackFailed => l.t("Resume rollback…", "继续回滚…"),
                    _ => l.t("Roll back…", "回滚…"),
                }}</a>
            })}
            </div>
        </div>
        {if running {
            view! { <LiveProgress batch=b.id lang=l since_ms=b.updated_at_ms done=done total=total/> }.into_any()
        } else {
            // Failed and unknown steps are said too: "8 / 9 done" alone
            // reads as still working.
            let troubled = totals.troubled();
            let pending = total - done - troubled;
            view! { <p class="progress" data-testid="progress">{format!("{done} / {total} {}", l.t("steps done", "步已完成"))}
                {(troubled > 0).then(|| format!(" · {troubled} {}", l.t("failed or of unknown outcome", "步失败或结果未知")))}
                {(pending > 0).then(|| format!(" · {pending} {}", l.t("not finished", "步未完成")))}</p> }.into_any()
        }}
        {(awaiting_approval && ctx.can(Role::Operator) && !blocked && matches!(
            b.status,
            BatchStatus::Planned | BatchStatus::Failed | BatchStatus::PartiallySucceeded | BatchStatus::Succeeded
        )).then(|| view! {
            <p class="finding warn" data-testid="apply-needs-approval">{l.t("Applying waits for a second person's approval: the host is protected. ", "执行需等待第二个人批准：主机受保护。")}<a href="#four-eyes">{l.t("Who approves", "由谁批准")}</a></p>
        })}
        <nav class="toc" data-testid="toc">{l.t("On this page: ", "本页：")}
            <a href="#facts">{l.t("Facts", "概况")}</a>
            {blocked.then(|| view! { " · " <a href="#blockers">{l.t("Blocked", "受阻")}</a> })}
            {(!p.skipped.is_empty()).then(|| view! { " · " <a href="#skipped">{l.t("Keys not imported", "未导入的密钥")}</a> })}
            {b.diagnosis.is_some().then(|| view! { " · " <a href="#diagnosis">{l.t("What failed", "失败原因")}</a> })}
            " · " <a href="#review">{l.t("Review", "审核")}</a>
            " · " <a href="#timeline">{l.t("Timeline", "时间线")}</a>
            " · " <a href=format!("/batches/{}/evidence.html", b.id) rel="external">{l.t("Evidence report", "证据报告")}</a>
        </nav>
        <dl class="facts" id="facts">
            <dt>{l.t("Its keys", "本批次密钥")}</dt><dd data-testid="key-outcomes">{key_outcomes(l, &b.keys)}</dd>
            <dt>{l.t("Group access", "分组访问")}</dt><dd data-testid="group-access">{access_badge(l, b.access_status)}
                {(b.access_status.is_ready() && b.keys.total() > b.keys.skipped && b.keys.passed == 0).then(|| view! {
                    " " <span class="muted" data-testid="proven-elsewhere">{format!("{} {}", l.t(
                        "proven by accounts of other batches in group", "由分组中其他批次的账号证明："), p.group_name)}{l.t(
                        ": none of this batch's own keys passed", "；本批次自己的密钥无一通过")}</span>
                })}
                {(b.access_status.is_ready() && b.keys.passed > 0).then(|| view! {
                    " " <span class="muted">{l.t("the group's status: other batches' accounts in the group may have served the check", "这是分组的状态：分组中其他批次的账号也可能参与了检查")}</span>
                })}
            </dd>
            <dt>{l.t("Host", "主机")}</dt><dd><a href=format!("/hosts/{}", b.host_id)>{b.host_name.clone()}</a>" "<span class="muted">{b.host_version.clone().map(|v| format!("v{v}")).unwrap_or_default()}</span></dd>
            <dt>{l.t("Provider", "供应商")}</dt><dd><code>{format!("{}/{}", p.pack_id, p.provider_key)}</code>" "<span class="muted">{format!("{} {}", l.t("pack", "模板包"), &p.pack_hash[..12])}</span></dd>
            <dt>{l.t("Platform", "平台")}</dt><dd><code>{p.platform.clone()}</code>" — "{crate::i18n::said(l, p.strategy.as_ref(), &p.strategy_reason)}</dd>
            <dt>{l.t("Access mode", "开通方式")}</dt><dd data-mode=p.mode.as_str()>{mode_word(l, p.mode)}</dd>
            <dt>{l.t("Group / channel", "分组 / 渠道")}</dt><dd><code>{p.group_name.clone()}</code></dd>
            <dt>{l.t("Smoke model", "冒烟模型")}</dt><dd><code>{p.smoke_model.clone()}</code></dd>
            <dt>{l.t("Group", "分组")}</dt><dd data-testid="group-shape">{format!("{}{}",
                if p.shape.is_exclusive { l.t("exclusive (only users granted it)", "专属（仅限已授权用户）") } else { l.t("open to every user of the host", "对主机所有用户开放") },
                p.shape.allowlist_field.as_ref().map(|f| format!(" · {f}: {}", p.models.join(", "))).unwrap_or_default())}</dd>
            <dt>{match channel_state {
                Some(true) => l.t("Prices sent (per million tokens)", "已写入价格（每百万 token）"),
                Some(false) => l.t("Prices to send (per million tokens)", "待写入价格（每百万 token）"),
                None => l.t("Prices (not sent: the host has no channels)", "价格（未写入：主机没有渠道）"),
            }}</dt>
            <dd data-testid="prices">{p.prices.iter().map(|(m, i, o)| {
                let cny = p.exchange_rate.map(|x| format!(" ({} / {})", per_million(*i, x, "¥"), per_million(*o, x, "¥"))).unwrap_or_default();
                format!("{m}: {} {} / {} {}{cny}", per_million(*i, 1.0, "$"), l.t("in", "输入"), per_million(*o, 1.0, "$"), l.t("out", "输出"))
            }).collect::<Vec<_>>().join(" · ")}
                {p.exchange_rate.map(|x| format!(" · 1 USD = {x} CNY"))}</dd>
            <dt>{l.t("Stamped", "记录")}</dt><dd class="muted">{format!("{} · {} · product v{}", when(b.created_at_ms), b.created_by, b.product_version)}</dd>
        </dl>
        {blocked.then(|| view! {
            <h2 id="blockers">{l.t("Blocked: this plan cannot work on this host", "受阻：此计划无法在该主机上运行")}</h2>
            <ul class="findings" data-testid="blockers">
                {p.blockers.iter().map(|b| {
                    let (message, action) = crate::i18n::blocker(l, b);
                    view! {
                        <li class="finding bad" data-capability=b.capability.clone()>
                            <b>{message}</b>
                            <p class="action">{l.t("What to do: ", "处理办法：")}{action}</p>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <p class="muted">{l.t("Nothing was written to the host. Once the host is upgraded and probed again, plan a new batch.", "未向主机写入任何内容。主机升级并重新探测后，请重新规划批次。")}" "
                <a href="/batches/new">{l.t("Plan a new batch", "重新规划批次")}</a></p>
        })}
        {(!p.warnings.is_empty()).then(|| view! {
            <ul class="findings">{p.warnings.iter().enumerate().map(|(i, w)| view! { <li class="finding warn">{crate::i18n::said(l, p.warning_codes.get(i), w)}</li> }).collect_view()}</ul>
        })}
        {(!p.skipped.is_empty()).then(|| view! {
            <h2 id="skipped">{l.t("Keys not imported", "未导入的密钥")}</h2>
            <table class="grid" data-testid="skipped">
                <thead><tr><th>{l.t("Key", "密钥")}</th><th>{l.t("Line", "行")}</th><th>{l.t("Why", "原因")}</th></tr></thead>
                <tbody>{p.skipped.iter().map(|s| view! { <tr><td><code>{s.masked.clone()}</code></td><td>{s.line}</td><td>{crate::i18n::said(l, s.said.as_ref(), &s.reason)}</td></tr> }).collect_view()}</tbody>
            </table>
            {(b.skipped_total > p.skipped.len()).then(|| view! {
                <p class="muted small">{format!("{} {} {} {}", l.t("Showing the first", "仅显示前"), p.skipped.len(), l.t("of", "条，共"), b.skipped_total)}" · "{l.t("the evidence bundle lists them all.", "证据包中列出全部。")}</p>
            })}
        })}
        {b.diagnosis.clone().map(|d| {
            let total: usize = b.diagnosis_groups.iter().map(|g| g.count).sum();
            let focused = b.diagnosis_groups.iter().any(|g| g.focused);
            let id = b.id;
            view! {
            <h2 id="diagnosis">{l.t("What failed, and what to do", "失败原因与处理办法")}</h2>
            <p class="muted small">{format!("{} · {} {} · {} {} {} · {} {}", when(d.at_ms), total, l.t("failed check(s)", "项失败检查"), l.t("in", "分为"), b.diagnosis_groups.len(), l.t("class(es)", "类"), d.upstream_completions, l.t("upstream completion(s) spent", "次上游最小调用"))}
                {focused.then(|| view! { " · " <a href=format!("/batches/{id}#diagnosis") data-testid="diagnosis-all">{l.t("all classes", "全部类别")}</a> })}</p>
            <ul class="findings" data-testid="diagnosis">
                {b.diagnosis_groups.iter().filter(|g| !focused || g.focused).map(|g| {
                    let first = g.items.first().cloned();
                    let class = g.class.as_str();
                    view! {
                    <li class="finding bad" data-class=class data-count=g.count.to_string()>
                        <b><code>{class}</code>" · "{format!("{} {}", g.count, l.t("check(s)", "项检查"))}</b>
                        {first.map(|i| view! { <p class="action">{l.t("What to do: ", "处理办法：")}{crate::i18n::next_action(l, &i)}</p> })}
                        <details>
                            <summary>{if g.focused {
                                format!("{} ({} {})", l.t("evidence", "证据"), g.items.len(), l.t("on this page", "条在本页"))
                            } else if g.count > g.items.len() {
                                format!("{} ({} {} {})", l.t("evidence", "证据"), l.t("the first", "前"), g.items.len(), l.t("shown", "条"))
                            } else {
                                l.t("evidence", "证据").to_string()
                            }}</summary>
                            {g.items.iter().cloned().map(|i| view! {
                                <div class="diag-item" data-seq=i.seq.to_string()><b>{crate::i18n::step_target(l, &i.target)}</b>
                                {i.evidence.into_iter().map(|e| view! { <pre class="evidence">{e}</pre> }).collect_view()}</div>
                            }).collect_view()}
                        </details>
                        {(!g.focused && g.count > g.items.len()).then(|| view! {
                            <a href=format!("/batches/{id}?diag={class}#diagnosis") data-testid="diagnosis-class">{format!("{} {} →", l.t("All", "查看全部"), g.count)}</a>
                        })}
                        {g.next_after.filter(|_| g.focused).map(|n| view! {
                            <a href=format!("/batches/{id}?diag={class}&diag_after={n}#diagnosis") data-testid="diagnosis-next">{l.t("Next →", "下一页 →")}</a>
                        })}
                    </li>
                }}).collect_view()}
            </ul>
        }})}
        // A <div>: a <form> inside a <p> is invalid HTML, which the browser
        // repairs, and the repaired DOM no longer matches what hydrates.
        <div class="actions">
            <a class="button" href=format!("/batches/{}/evidence.html", b.id) rel="external" data-testid="export-html">{l.t("Evidence report (HTML)", "证据报告（HTML）")}</a>
            <a class="button" href=format!("/batches/{}/evidence.json", b.id) rel="external" data-testid="export-json">{l.t("Evidence bundle (JSON)", "证据包（JSON）")}</a>
            {(ctx.can(Role::Operator) && totals.troubled() > 0).then(|| view! {
                <form method="post" action=format!("/batches/{}", b.id) class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value="diagnose"/>
                    <button type="submit" data-testid="diagnose">{if b.diagnosis.is_some() { l.t("Diagnose again", "重新诊断") } else { l.t("Diagnose", "诊断") }}</button>
                </form>
            })}
            {can_pause.then(|| view! {
                {(failed_tests > paused).then(|| view! {
                <form method="post" action=format!("/batches/{}", b.id) class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value="pause_failed"/>
                    <button type="submit" data-testid="pause-failed" title=l.t("A quota-exhausted account stays schedulable on the host and keeps taking traffic; this sets schedulable=false (reversible).", "额度耗尽的账号在主机上仍可调度并继续接收流量；此操作设置 schedulable=false（可恢复）。")>
                        {format!("{} ({})", l.t("Pause failed accounts", "暂停失败的账号"), failed_tests - paused)}
                    </button>
                </form>
                })}
                {(paused > 0).then(|| view! {
                <form method="post" action=format!("/batches/{}", b.id) class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value="resume_failed"/>
                    <button type="submit" data-testid="resume-failed">{format!("{} ({paused})", l.t("Resume paused accounts", "恢复已暂停的账号"))}</button>
                </form>
                })}
                <form method="post" action=format!("/batches/{}", b.id) class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value="remove_failed"/>
                    <label class="small"><input type="checkbox" name="confirm" value="yes" required data-testid="remove-failed-confirm"/>{l.t(" delete them from the host", " 从主机删除")}</label>
                    <button type="submit" class="danger" data-testid="remove-failed">{l.t("Remove failed accounts", "删除失败的账号")}</button>
                </form>
            })}
        </div>
        <super::reviews::ReviewSection panel=panel status=b.status/>
        {(b.access_status != AccessStatus::None && matches!(b.status, BatchStatus::Succeeded | BatchStatus::PartiallySucceeded)).then(|| view! {
            <super::watch::BatchWatchSection batch_id=b.id standing=matches!(b.status, BatchStatus::Succeeded | BatchStatus::PartiallySucceeded)/>
        })}
        <h2 id="timeline">{l.t("Timeline", "时间线")}</h2>
        <TimelineFilter batch=b.id window=b.window.clone() totals=totals/>
        {b.runs.iter().map(|r| {
            let steps: Vec<_> = b.steps.iter().filter(|s| s.run_id == r.id).cloned().collect();
            let counts: Vec<_> = b.counts.iter().filter(|c| c.run_id == r.id).cloned().collect();
            let kind = match r.kind {
                provisioning_core::model::RunKind::Apply => l.t("Apply", "执行"),
                provisioning_core::model::RunKind::Rollback => l.t("Rollback", "回滚"),
                provisioning_core::model::RunKind::Pause => l.t("Pause / resume", "暂停 / 恢复"),
                provisioning_core::model::RunKind::Repair if r.replaces.is_some() => l.t("Key replacement", "替换密钥"),
                provisioning_core::model::RunKind::Repair => l.t("Repair", "修复"),
            };
            let replaces = r.replaces.clone().map(|(old, new)| format!(" {old} → {new} ·"));
            view! {
                <h3 data-testid="run" data-run-kind=r.kind.as_str() data-run-status=r.status.clone()>
                    {format!("{kind} · {} {} ·{} ", l.t("run", "运行"), r.id, replaces.unwrap_or_default())}<span class="badge muted" data-run-status=r.status.clone() title=l.t("Run status", "运行状态")>{match r.status.as_str() {
                        "planned" => l.t("planned", "已规划"),
                        "running" => l.t("running", "运行中"),
                        "done" => l.t("done", "完成"),
                        _ => l.t("failed", "失败"),
                    }}</span>
                    <span class="muted small">{format!(" {} · {}", r.actor, when(r.created_at_ms))}</span>
                </h3>
                <RunCounts counts=counts/>
                {(!steps.is_empty()).then(|| view! { <Timeline batch=b.id steps=steps/> })}
            }
        }).collect_view()}
        {b.window.as_ref().and_then(|w| w.next_after.map(|n| (n, w.state))).map(|(n, st)| view! {
            <p class="pager"><a data-testid="next-steps" href=format!("/batches/{}?after={n}{}#timeline", b.id, st.map(|s| format!("&state={}", s.as_str())).unwrap_or_default())>
                {l.t("Next steps →", "后续步骤 →")}
            </a></p>
        })}
    }
}

/// A running batch's progress, live: every 2 s it asks what changed since
/// the last answer (counts and the steps that moved, never the journal),
/// and reloads the page once the run has ended. The only code the browser
/// runs on this page.
#[island]
fn LiveProgress(batch: i64, lang: Lang, since_ms: i64, done: i64, total: i64) -> impl IntoView {
    let l = lang;
    let progress = RwSignal::new(None::<provisioning_core::model::BatchProgress>);
    #[cfg(feature = "hydrate")]
    {
        let since = StoredValue::new(since_ms);
        let busy = StoredValue::new(false);
        let poll = move || {
            if busy.get_value() {
                return;
            }
            busy.set_value(true);
            leptos::task::spawn_local(async move {
                if let Ok(p) = crate::api::batch_progress(batch, since.get_value()).await {
                    since.set_value(p.at_ms);
                    if !matches!(p.status, BatchStatus::Running | BatchStatus::RollingBack) {
                        let _ = window().location().reload();
                    }
                    progress.set(Some(p));
                }
                busy.set_value(false);
            });
        };
        if let Ok(handle) = set_interval_with_handle(poll, std::time::Duration::from_secs(2)) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (batch, since_ms);
    view! {
        <div class="progress" data-testid="progress" data-live="true">
            {move || {
                let (done, total, changed, waiting) = match progress.get() {
                    Some(p) => (p.steps.finished(), p.steps.total(), p.changed, p.waiting),
                    None => (done, total, Vec::new(), None),
                };
                view! {
                    <p>{format!("{done} / {total} {}", l.t("steps done", "步已完成"))}{l.t(" · applying, updated live", " · 执行中，实时更新")}</p>
                    {waiting.map(|w| view! { <p class="small" data-testid="waiting">{l.t("Readiness: ", "就绪检查：")}{crate::i18n::note(l, &w)}</p> })}
                    {(!changed.is_empty()).then(|| view! {
                        <ul class="small muted" data-testid="progress-changed">
                            {changed.into_iter().take(5).map(|s| view! {
                                <li>{format!("#{} {} · {}", s.seq, crate::i18n::step_target(l, &s.target), state_word(l, s.state))}</li>
                            }).collect_view()}
                        </ul>
                    })}
                }
            }}
        </div>
    }
}

/// Which steps the timeline shows: all, or one journal state; with counts.
#[component]
fn TimelineFilter(
    batch: i64,
    window: Option<provisioning_core::model::StepWindow>,
    totals: StateCounts,
) -> impl IntoView {
    let l = page_ctx().lang;
    let current = window.as_ref().and_then(|w| w.state);
    let from = window.as_ref().map(|w| w.after).unwrap_or(0);
    let link = move |state: Option<StepState>, label: String, n: i64| {
        let href = match state {
            None => format!("/batches/{batch}#timeline"),
            Some(s) => format!("/batches/{batch}?state={}#timeline", s.as_str()),
        };
        let class = if state == current { "chip on" } else { "chip" };
        view! { <a class=class href=href data-filter=state.map(StepState::as_str).unwrap_or("all")>{format!("{label} ({n})")}</a> }
    };
    view! {
        <p class="filters" id="timeline" data-testid="timeline-filter">
            {link(None, l.t("All", "全部").to_string(), totals.total())}" "
            {(totals.failed > 0).then(|| link(Some(StepState::Failed), l.t("Failed", "失败").to_string(), totals.failed))}" "
            {(totals.unknown > 0).then(|| link(Some(StepState::Unknown), l.t("Unknown", "未知").to_string(), totals.unknown))}" "
            {(totals.sent > 0).then(|| link(Some(StepState::Sent), l.t("Sent", "已发送").to_string(), totals.sent))}" "
            {(totals.pending > 0).then(|| link(Some(StepState::Pending), l.t("Pending", "待执行").to_string(), totals.pending))}
            {(from > 0).then(|| view! { " · " <span class="muted small">{format!("{} #{from}", l.t("after step", "自步骤"))}</span> })}
        </p>
    }
}

/// A run's steps counted by kind and state.
#[component]
fn RunCounts(counts: Vec<KindCount>) -> impl IntoView {
    let l = page_ctx().lang;
    view! {
        <table class="grid compact" data-testid="run-counts">
            <thead><tr>
                <th>{l.t("Step", "步骤")}</th><th>{l.t("done", "完成")}</th><th>{l.t("skipped", "跳过")}</th><th>{l.t("failed", "失败")}</th>
                <th>{l.t("unknown", "未知")}</th><th>{l.t("sent", "已发送")}</th><th>{l.t("pending", "待执行")}</th>
            </tr></thead>
            <tbody>
                {counts.into_iter().map(|c| {
                    let failed_class = if c.counts.failed > 0 { "field-error" } else { "" };
                    view! {
                    <tr data-kind=c.kind.as_str()>
                        <td>{kind_word(l, c.kind)}</td><td>{c.counts.done}</td><td>{c.counts.skipped}</td>
                        <td class=failed_class>{c.counts.failed}</td>
                        <td>{c.counts.unknown}</td><td>{c.counts.sent}</td><td>{c.counts.pending}</td>
                    </tr>
                }}).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn Timeline(batch: i64, steps: Vec<StepView>) -> impl IntoView {
    let l = page_ctx().lang;
    view! {
        <table class="grid" data-testid="timeline">
            <thead><tr>
                <th>"#"</th><th>{l.t("Step", "步骤")}</th><th class="nowrap">{l.t("Plan", "计划")}</th><th>{l.t("State", "状态")}</th>
                <th class="nowrap">{l.t("Remote id", "远端 ID")}</th><th>{l.t("Duration", "耗时")}</th><th>{l.t("Evidence", "证据")}</th>
            </tr></thead>
            <tbody>
                {steps.into_iter().map(|s| {
                    let action = action_word(l, s.action);
                    let took = match (s.started_at_ms, s.finished_at_ms) { (Some(a), Some(z)) => format!("{} ms", z - a), _ => String::new() };
                    let inline = !(s.request.is_empty() && s.response.is_empty());
                    // Per-key steps come without evidence: their page has it
                    // when it was recorded (a failed test may have none).
                    let on_demand = !inline && s.kind.per_key() && s.state != StepState::Pending;
                    let unknown = s.state == StepState::Unknown;
                    view! {
                        <tr data-kind=s.kind.as_str() data-seq=s.seq.to_string() data-state=s.state.as_str()>
                            <td>{s.seq}</td>
                            <td class="target">{crate::i18n::step_target(l, &s.target)}</td>
                            <td class="nowrap">{action}</td>
                            <td>{step_badge(l, s.state)}{(s.state == StepState::Sent).then(|| view! { <span class="muted small">{l.t(" outcome not yet known", " 结果未知")}</span> })}
                                {(s.state == StepState::Sent && s.kind == StepKind::Readiness && !s.response.is_empty()).then(|| view! { <div class="small" data-testid="waiting">{crate::i18n::note(l, &s.response)}</div> })}</td>
                            <td>{s.remote_id.clone().map(|r| view! { <code>{r}</code> })}</td>
                            <td class="nowrap">{took}</td>
                            <td>
                                {(!s.error.is_empty()).then(|| view! { <p class=if unknown || s.state == StepState::Skipped { "muted" } else { "field-error" }>{step_error(l, &s.error)}</p> })}
                                {unknown.then(|| view! { <p class="small">{l.t("Not resent: the host cannot say whether the first attempt created it. Look for it on the host; if it is there, re-plan (the new plan adopts it); if not, re-plan to create it.", "未重发：主机无法判断第一次请求是否已创建。请在主机上查找：若已存在，重新规划即可接管；若不存在，重新规划以创建。")}</p> })}
                                {inline.then(|| view! {
                                    <details>
                                        <summary>{l.t("request / response", "请求 / 响应")}</summary>
                                        <pre class="evidence">{s.request.clone()}</pre>
                                        <pre class="evidence">{s.response.clone()}</pre>
                                        <p class="muted small">{l.t("", "幂等键 ")}<code>"Idempotency-Key"</code>" "<code>{s.idempotency_key.clone()}</code>{l.t(" · marker ", " · 标记 ")}<code>{s.marker.clone()}</code></p>
                                    </details>
                                })}
                                {on_demand.then(|| view! {
                                    <a class="small" href=format!("/batches/{batch}/steps/{}", s.seq) data-testid="step-evidence">{l.t("step details", "步骤详情")}</a>
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn action_word(l: Lang, a: Action) -> &'static str {
    match a {
        Action::Create => l.t("create", "创建"),
        Action::Reuse => l.t("reuse", "复用"),
        Action::Update => l.t("update", "更新"),
        Action::Skip => l.t("skip", "跳过"),
        Action::Check => l.t("check", "检查"),
        Action::Delete => l.t("delete", "删除"),
        Action::Keep => l.t("keep", "保留"),
    }
}

/// A journal step kind, in words.
fn kind_word(l: Lang, k: StepKind) -> &'static str {
    match k {
        StepKind::Group => l.t("group", "分组"),
        StepKind::Channel => l.t("channel", "渠道"),
        StepKind::Account => l.t("account", "账号"),
        StepKind::Balance => l.t("balance", "余额"),
        StepKind::Subscription => l.t("subscription", "订阅"),
        StepKind::UserKey => l.t("user key", "用户密钥"),
        StepKind::AccountTest => l.t("account test", "账号测试"),
        StepKind::Readiness => l.t("readiness", "就绪检查"),
        StepKind::Remove => l.t("remove", "删除"),
        StepKind::Pause => l.t("pause / resume", "暂停 / 恢复"),
    }
}

/// One journal step with its evidence (per-key steps are read here, one at
/// a time, rather than with every page of the timeline).
#[component]
pub fn StepPage() -> impl IntoView {
    let l = page_ctx().lang;
    let params = use_params_map();
    let key = move || {
        let p = params.read();
        let n = |k: &str| p.get(k).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        (n("id"), n("seq"))
    };
    let step = Resource::new(key, |(id, seq)| batch_step(id, seq));
    view! {
        <Layout>
            <p><a href=move || format!("/batches/{}#timeline", key().0)>{l.t("← Back to the batch", "← 返回批次")}</a></p>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match step.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(s) => view! {
                            <h1>{format!("{} #{} · {}", l.t("Step", "步骤"), s.seq, crate::i18n::step_target(l, &s.target))}" "{step_badge(l, s.state)}</h1>
                            <dl class="facts">
                                <dt>{l.t("Kind", "类型")}</dt><dd><code>{s.kind.as_str()}</code>" · "{action_word(l, s.action)}" · "{l.t("run", "运行")}" "{s.run_id}</dd>
                                <dt>{l.t("Remote id", "远端 ID")}</dt><dd><code>{s.remote_id.clone().unwrap_or_else(|| "—".into())}</code></dd>
                                <dt>{l.t("", "幂等键 ")}<code>"Idempotency-Key"</code></dt><dd><code>{s.idempotency_key.clone()}</code></dd>
                                <dt>{l.t("Marker", "标记")}</dt><dd><code>{s.marker.clone()}</code></dd>
                                <dt>{l.t("When", "时间")}</dt><dd class="muted">{s.started_at_ms.map(when).unwrap_or_default()}{match (s.started_at_ms, s.finished_at_ms) { (Some(a), Some(z)) => format!(" · {} ms", z - a), _ => String::new() }}</dd>
                            </dl>
                            {(!s.error.is_empty()).then(|| view! { <p class="field-error" data-testid="step-error">{step_error(l, &s.error)}</p> })}
                            <h2>{l.t("Request (redacted)", "请求（已脱敏）")}</h2>
                            <pre class="evidence" data-testid="step-request">{if s.request.is_empty() { l.t("(none recorded)", "（未记录）").to_string() } else { s.request.clone() }}</pre>
                            <h2>{l.t("Response (redacted)", "响应（已脱敏）")}</h2>
                            <pre class="evidence" data-testid="step-response">{if s.response.is_empty() { l.t("(none recorded)", "（未记录）").to_string() } else { s.response.clone() }}</pre>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

/// The rollback preview: what will be removed, in order, what is kept and
/// why, and a confirmation by typing the batch number.
#[component]
pub fn RollbackPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let params = use_params_map();
    let query = leptos_router::hooks::use_query_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let force = move || query.read().get("force").as_deref() == Some("1");
    let preview = Resource::new(
        move || (id(), force()),
        |(id, force)| rollback_preview(id, force),
    );
    let gate = Resource::new(id, review_form);
    view! {
        <Layout>
            <p><a href=move || format!("/batches/{}", id())>{l.t("← Back to the batch", "← 返回批次")}</a></p>
            <h1>{move || format!("{} #{}", l.t("Roll back batch", "回滚批次"), id())}</h1>
            <Suspense fallback=move || view! { <p>{l.t("Reading the host…", "正在读取主机…")}</p> }>
                {move || Suspend::new(async move {
                    match (preview.await, gate.await) {
                        (Err(e), _) | (_, Err(e)) => view! { <ErrorBox err=e/> }.into_any(),
                        (Ok(p), Ok(g)) => {
                            let me = page_ctx().operator.map(|o| o.username).unwrap_or_default();
                            let fe = &g.panel.four_eyes;
                            // A protected host's rollback needs a valid
                            // approval by someone other than who rolls back.
                            let cleared = fe.rollback_cleared_for(&me);
                            let protected = fe.protected;
                            view! {
                                {protected.then(|| view! { <super::reviews::RollbackApproval data=g.clone()/> })}
                                <RollbackPlan preview=p force=force() cleared=cleared/>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn RollbackPlan(preview: RollbackPreview, force: bool, cleared: bool) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let p = preview;
    let removing = p.items.iter().filter(|i| i.decision == "remove").count();
    let changed = p.items.iter().filter(|i| !i.changed.is_empty()).count();
    let id = p.batch_id;
    view! {
        <p>{format!("{} {removing} · {} {} · {} {}", l.t("To remove:", "将删除："), l.t("kept:", "保留："), p.items.iter().filter(|i| i.decision == "keep").count(), l.t("observed", "观察于"), when(p.observed_at_ms))}</p>
        <p class="muted small">{l.t("Order: unbind keys → revoke subscriptions → delete channel → delete accounts → delete group. Only objects this product recorded are touched.", "顺序：解绑密钥 → 撤销订阅 → 删除渠道 → 删除账号 → 删除分组。只处理本产品记录的对象。")}</p>
        {(p.items.is_empty()).then(|| view! { <p class="finding warn">{l.t("The ledger has nothing live for this batch: rolling back only marks it rolled back.", "此批次在台账中没有存活对象：回滚只会将其标记为已回滚。")}</p> })}
        <table class="grid" data-testid="rollback-preview">
            <thead><tr><th>"#"</th><th>{l.t("Object", "对象")}</th><th>{l.t("Decision", "决定")}</th><th>{l.t("Why", "原因")}</th><th>{l.t("Changed on the host", "主机上的改动")}</th></tr></thead>
            <tbody>
                {p.items.iter().enumerate().map(|(n, i)| view! {
                    <tr data-kind=i.kind.clone() data-decision=i.decision.clone()>
                        <td>{n + 1}</td>
                        <td>{crate::i18n::step_target(l, &i.target)}</td>
                        <td><span class=match i.decision.as_str() { "remove" => "badge bad", "keep" => "badge warn", _ => "badge muted" }>{match i.decision.as_str() {
                            "remove" => l.t("remove", "删除"),
                            "keep" => l.t("keep", "保留"),
                            "gone" => l.t("gone", "已不存在"),
                            other => other,
                        }.to_string()}</span></td>
                        <td>{crate::i18n::said(l, i.said.as_ref(), &i.reason)}</td>
                        <td>{i.changed.iter().map(|(f, want, have)| view! { <div class="small"><code>{f.clone()}</code>": "{want.clone()}" → "{have.clone()}</div> }).collect_view()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {(changed > 0 && !force).then(|| view! {
            <p><a href=format!("/batches/{id}/rollback?force=1") data-testid="force">{l.t("Include the objects changed on the host (force)", "包括主机上已改动的对象（强制）")}</a></p>
        })}
        <h2>{l.t("What a rollback cannot undo", "回滚无法撤销的内容")}</h2>
        <ul>{p.irreversible.iter().enumerate().map(|(i, t)| view! { <li>{crate::i18n::said(l, p.irreversible_said.get(i), t)}</li> }).collect_view()}</ul>
        {(ctx.can(Role::Operator) && cleared).then(|| view! {
            <form method="post" action=format!("/batches/{id}/rollback") class="card">
                <Csrf/>
                <input type="hidden" name="force" value=if force { "1" } else { "0" }/>
                <Field name="confirm" label=l.t("Type the batch number to confirm", "输入批次号以确认") required=true maxlength=20/>
                <button type="submit" class="danger" data-testid="confirm-rollback">{format!("{} ({removing})", l.t("Roll back now", "立即回滚"))}</button>
            </form>
        })}
    }
}

/// `/batches/:id/replace`: a new key takes the place of one account of the
/// batch (`?account=` the ledger id, from the accounts page).
#[component]
pub fn ReplacePage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let params = use_params_map();
    let query = leptos_router::hooks::use_query_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let account = move || {
        query
            .read()
            .get("account")
            .and_then(|s| s.parse::<i64>().ok())
            .or_else(|| page_ctx().value("account").parse().ok())
    };
    let data = Resource::new(move || (id(), account()), |(id, a)| replace_view(id, a));
    view! {
        <Layout>
            <p><a href=move || format!("/batches/{}", id())>{l.t("← Back to the batch", "← 返回批次")}</a></p>
            <h1>{move || format!("{} #{}", l.t("Replace a key of batch", "替换批次密钥 #"), id()).replace("# #", "#")}</h1>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(v) => view! { <ReplaceForm view=v/> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

fn field_class(err: &Option<String>) -> &'static str {
    if err.is_some() {
        "field invalid"
    } else {
        "field"
    }
}

#[component]
fn ReplaceForm(view: ReplaceView) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let v = view;
    let id = v.batch_id;
    let key_err = ctx.field_error("key");
    let account_err = ctx.field_error("account");
    let confirm_err = ctx.field_error("confirm");
    let (account_class, key_class, confirm_class) = (
        field_class(&account_err),
        field_class(&key_err),
        field_class(&confirm_err),
    );
    let facts = view! {
        <dl class="facts">
            <dt>{l.t("Batch", "批次")}</dt><dd><a href=format!("/batches/{id}")>{format!("#{id}")}</a>" "{batch_badge(l, v.status)}</dd>
            <dt>{l.t("Host", "主机")}</dt><dd><a href=format!("/hosts/{}/accounts", v.host_id)>{v.host_name.clone()}</a></dd>
            <dt>{l.t("Provider", "供应商")}</dt><dd><code>{v.provider_key.clone()}</code></dd>
            <dt>{l.t("Its accounts on the host", "本批次在主机上的账号")}</dt><dd>{v.live_accounts}</dd>
        </dl>
    };
    let body = if let Some(why) = v.refused.clone() {
        view! {
            <p class="flash bad" data-testid="replace-refused">{l.t("No key of this batch can be replaced now: the batch ", "现在不能替换此批次的密钥：该批次")}{crate::i18n::said(l, Some(&why), "")}</p>
        }
        .into_any()
    } else if v.candidates.is_empty() {
        view! {
            <p class="empty" data-testid="replace-none">{l.t(
                "No account of this batch failed its test. To replace another key (a leaked one, say), open the host's accounts page, find it by its mask and follow its Replace link.",
                "本批次没有测试失败的账号。要替换其他密钥（例如已泄露的），请在主机的账号页按掩码找到它，再点击其“替换”链接。")}</p>
            <p><a class="button" href=format!("/hosts/{}/accounts", v.host_id)>{l.t("Accounts of this host", "该主机的账号")}</a></p>
        }
        .into_any()
    } else if !ctx.can(Role::Operator) {
        view! { <p class="muted">{l.t("Replacing a key needs the operator role.", "替换密钥需要操作员角色。")}</p> }.into_any()
    } else {
        let selected = v
            .selected
            .or_else(|| v.candidates.first().map(|c| c.ledger_id));
        view! {
            <p>{l.t(
                "The new key's account is created in the batch's group and tested through the host first. Only once it passed is the old account deleted from the host; then readiness is checked again. If the new key fails, the old account stays.",
                "先在该批次的分组中创建新密钥的账号并通过主机测试；测试通过后才从主机删除旧账号，然后重新检查就绪。若新密钥未通过，旧账号保留。")}</p>
            <form method="post" action=format!("/batches/{id}/replace") class="card form wide" data-testid="replace-form">
                <Csrf/>
                <label class=account_class>
                    <span>{l.t("Account to replace", "要替换的账号")}</span>
                    <select name="account" required data-testid="replace-account">
                        {v.candidates.iter().map(|c| view! {
                            <option value=c.ledger_id.to_string() selected=Some(c.ledger_id) == selected>
                                {format!("{} · {} #{}{}", c.masked, l.t("account", "账号"), c.remote_id,
                                    if c.failed { l.t(" · test failed", " · 测试失败") } else { "" })}
                            </option>
                        }).collect_view()}
                    </select>
                    {account_err.map(|e| view! { <small class="field-error" data-testid="error-account">{e}</small> })}
                </label>
                <label class=key_class>
                    <span>{l.t("New key", "新密钥")}</span>
                    <input type="password" name="new_key" required maxlength="512" autocomplete="off" data-testid="replace-key-input"/>
                    <small class="hint">{l.t("One key. It is encrypted at rest, shown masked, and never logged.", "仅一个密钥。加密存储，仅以掩码显示，从不写入日志。")}</small>
                    {key_err.map(|e| view! { <small class="field-error" data-testid="error-key">{e}</small> })}
                </label>
                <div class=confirm_class>
                    <label class="small"><input type="checkbox" name="confirm" value="yes" required data-testid="replace-confirm"/>
                        {l.t(" delete the old account from the host once the new key passed", " 新密钥通过后从主机删除旧账号")}</label>
                    {confirm_err.map(|e| view! { <small class="field-error" data-testid="error-confirm">{e}</small> })}
                </div>
                <button type="submit" class="primary" data-testid="replace-submit">{l.t("Replace the key", "替换密钥")}</button>
            </form>
        }
        .into_any()
    };
    view! { {facts} {body} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_read_per_million_tokens_without_exponents() {
        assert_eq!(per_million(3.0e-7, 1.0, "$"), "$0.30");
        assert_eq!(per_million(1.32e-6, 1.0, "$"), "$1.32");
        assert_eq!(per_million(7.0e-8, 1.0, "$"), "$0.07");
        assert_eq!(per_million(1.234e-8, 1.0, "$"), "$0.0123");
        assert_eq!(per_million(2.8e-7, 7.2, "¥"), "¥2.02");
    }

    #[test]
    fn key_outcomes_name_passed_failed_and_skipped_keys() {
        let l = Lang::En;
        let k = |passed, failed, skipped, untested| KeyOutcomes {
            passed,
            failed,
            skipped,
            untested,
            replaced: 0,
        };
        assert_eq!(key_outcomes(l, &k(0, 0, 0, 0)), "—");
        assert_eq!(
            key_outcomes(l, &k(0, 20, 0, 0)),
            "0 / 20 passed · 20 failed"
        );
        assert_eq!(key_outcomes(l, &k(0, 0, 0, 5)), "5 not tested yet");
        assert_eq!(
            key_outcomes(l, &k(18, 1, 1, 0)),
            "18 / 19 passed · 1 failed · 1 skipped (held by another batch)"
        );
        let swapped = KeyOutcomes {
            replaced: 1,
            ..k(2, 0, 0, 0)
        };
        assert_eq!(
            key_outcomes(l, &swapped),
            "2 / 2 passed · 1 replaced by another key"
        );
    }
}
