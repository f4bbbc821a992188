//! Keeping watch on the pages: what needs attention (overview), a host's
//! schedule, a batch's readiness checks and balances, and the webhooks
//! page with its delivery log.

use super::batches::access_badge;
use super::widgets::*;
use crate::api::{attention, batch_watch, host_schedule, webhooks_page, BALANCE_ROWS};
use crate::i18n::{note, said, Lang};
use crate::page::page_ctx;
use leptos::prelude::*;
use provisioning_core::model::{
    AlertKind, BalanceState, CheckOutcome, IncidentView, Job, Role, ScheduleView,
};

fn job_word(l: Lang, j: Job) -> &'static str {
    match j {
        Job::Probe => l.t("Probe", "探测"),
        Job::Readiness => l.t("Readiness re-check", "就绪复查"),
        Job::Drift => l.t("Drift check", "漂移检查"),
        Job::Balance => l.t("Upstream balances", "上游余额"),
        Job::Retention => l.t("History retention", "历史保留"),
    }
}

fn job_cost(l: Lang, j: Job) -> &'static str {
    match j {
        Job::Probe => l.t("about 10 read-only host calls", "约 10 次只读主机调用"),
        Job::Readiness => l.t(
            "per group of ready batches: one model listing and one 1-token completion",
            "每个就绪分组：一次模型列表和一次 1 token 调用",
        ),
        Job::Drift => l.t(
            "lists the host's accounts, groups, channels and keys",
            "列出主机的账号、分组、渠道和密钥",
        ),
        Job::Balance => l.t(
            "one balance request per key at the provider, nothing spent",
            "每个密钥向供应商查询一次余额，不产生消耗",
        ),
        Job::Retention => "",
    }
}

fn kind_word(l: Lang, k: AlertKind) -> &'static str {
    match k {
        AlertKind::NotReady => l.t("ready batch stopped being ready", "就绪批次不再就绪"),
        AlertKind::Drift => l.t("drift found", "发现漂移"),
        AlertKind::Probe => l.t("probe failed or version changed", "探测失败或版本变化"),
        AlertKind::BalanceLow => l.t("balance below threshold", "余额低于阈值"),
    }
}

fn run_outcome(l: Lang, o: &str) -> AnyView {
    let (class, text) = match o {
        "ok" => ("badge ok", l.t("ok", "正常")),
        "attention" => ("badge warn", l.t("needs attention", "需关注")),
        "failed" => ("badge bad", l.t("could not run", "未能运行")),
        "interrupted" => ("badge muted", l.t("interrupted", "已中断")),
        _ => ("badge muted", l.t("unknown", "未知")),
    };
    view! { <span class=class>{text}</span> }.into_any()
}

fn every(l: Lang, secs: i64) -> String {
    if secs % 3600 == 0 {
        format!("{} {}", secs / 3600, l.t("h", "小时"))
    } else if secs % 60 == 0 {
        format!("{} {}", secs / 60, l.t("min", "分钟"))
    } else {
        format!("{secs} {}", l.t("s", "秒"))
    }
}

fn incident_link(i: &IncidentView) -> String {
    match (i.batch_id, i.host_id) {
        (Some(b), _) => format!("/batches/{b}"),
        (None, Some(h)) if i.kind == AlertKind::Drift => format!("/hosts/{h}/drift"),
        (None, Some(h)) => format!("/hosts/{h}"),
        _ => "/".into(),
    }
}

/// The overview's "needs attention": open incidents since when, and the
/// newest resolved ones.
#[component]
pub fn AttentionSection() -> impl IntoView {
    let l = page_ctx().lang;
    let data = Resource::new(|| (), |_| attention());
    view! {
        <h2 id="watch">{l.t("Watching", "监控")}</h2>
        <Suspense fallback=move || loading(l)>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                    Ok(d) => view! {
                        {(!d.scheduler_on).then(|| view! {
                            <p class="notice" data-testid="scheduler-off">{l.t(
                                "This server runs no scheduled checks (DASHBOARD_SCHEDULER=off): nothing below is refreshed unless another server on this database runs them.",
                                "本服务器不运行定时检查（DASHBOARD_SCHEDULER=off）：除非同一数据库上的另一台服务器在运行，否则下面的内容不会更新。",
                            )}</p>
                        })}
                        {if d.open.is_empty() {
                            view! { <p class="empty" data-testid="no-incidents">{l.t(
                                "Nothing open: the latest scheduled checks found every watched batch ready, no drift, no failing probe and no low balance.",
                                "没有未解决的问题：最近的定时检查发现所有被监控的批次就绪、无漂移、探测正常、余额充足。",
                            )}</p> }.into_any()
                        } else {
                            view! {
                                <div class="table-wrap"><table class="grid" data-testid="incidents">
                                    <thead><tr><th>{l.t("What", "问题")}</th><th>{l.t("Rule", "规则")}</th><th>{l.t("Since", "开始于")}</th><th>{l.t("Last seen", "最近确认")}</th></tr></thead>
                                    <tbody>{d.open.into_iter().map(|i| view! {
                                        <tr data-testid="incident" data-kind=i.kind.as_str()>
                                            <td><a href=incident_link(&i)>{said(l, Some(&i.title), &i.title.code)}</a>
                                                <p class="muted small">{i.detail.clone()}</p></td>
                                            <td>{kind_word(l, i.kind)}</td>
                                            <td class="nowrap">{when(i.opened_at_ms)}</td>
                                            <td class="nowrap muted">{when(i.updated_at_ms)}</td>
                                        </tr>
                                    }).collect_view()}</tbody>
                                </table></div>
                            }.into_any()
                        }}
                        {(!d.resolved.is_empty()).then(|| view! {
                            <details><summary>{l.t("Recently resolved", "最近已恢复")}</summary>
                                <ul class="plain">{d.resolved.into_iter().map(|i| view! {
                                    <li><a href=incident_link(&i)>{said(l, Some(&i.title), &i.title.code)}</a>
                                        <span class="muted small">{format!(" {} → {}", when(i.opened_at_ms), i.resolved_at_ms.map(when).unwrap_or_default())}</span></li>
                                }).collect_view()}</ul>
                            </details>
                        })}
                        <p class="muted small"><a href="/webhooks">{l.t("Where alerts go: webhooks", "告警发往何处：Webhook")}</a></p>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A host's scheduled jobs: how often, the last run and what it found,
/// and (operators) a form to change the interval or switch a job off.
#[component]
pub fn ScheduleSection(host_id: i64) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let can = ctx.can(Role::Operator);
    let data = Resource::new(move || host_id, host_schedule);
    view! {
        <h2 id="schedule">{l.t("Schedule", "定时任务")}</h2>
        <Suspense fallback=move || loading(l)>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                    Ok(rows) => view! {
                        <div class="table-wrap"><table class="grid" data-testid="schedule">
                            <thead><tr><th>{l.t("Job", "任务")}</th><th>{l.t("Every", "间隔")}</th><th>{l.t("Last run", "上次运行")}</th><th>{l.t("Next", "下次")}</th><th></th></tr></thead>
                            <tbody>{rows.into_iter().map(|s: ScheduleView| {
                                let job = s.job;
                                view! {
                                    <tr data-testid="schedule-row" data-job=job.as_str()>
                                        <td>{job_word(l, job)}<p class="muted small">{job_cost(l, job)}</p></td>
                                        <td class="nowrap">{if s.enabled { every(l, s.interval_s) } else { l.t("off", "已关闭").to_string() }}</td>
                                        <td>{match (s.last_started_ms, s.last_outcome.clone()) {
                                            (Some(at), Some(o)) => view! { {run_outcome(l, &o)}" "<span class="nowrap muted small">{when(at)}</span>
                                                <p class="small">{note(l, &s.last_detail)}</p> }.into_any(),
                                            (Some(at), None) => view! { <span class="badge">{l.t("running", "运行中")}</span>" "<span class="muted small">{when(at)}</span> }.into_any(),
                                            _ => view! { <span class="muted">{l.t("not yet", "尚未运行")}</span> }.into_any(),
                                        }}</td>
                                        <td class="nowrap muted">{if s.enabled { when(s.next_due_ms) } else { "—".into() }}</td>
                                        <td>{can.then(|| view! {
                                            <form method="post" action=format!("/hosts/{host_id}") class="inline">
                                                <Csrf/>
                                                <input type="hidden" name="action" value="schedule"/>
                                                <input type="hidden" name="job" value=job.as_str()/>
                                                <label class="small">{l.t("seconds ", "秒数 ")}
                                                    <input type="number" name="interval_s" value=s.interval_s.to_string() min="60" max="604800" class="narrow" required/></label>
                                                <label class="small"><input type="checkbox" name="enabled" value="yes" checked=s.enabled/>{l.t(" on", " 开启")}</label>
                                                <button type="submit" data-testid="schedule-save">{l.t("Save", "保存")}</button>
                                            </form>
                                        })}</td>
                                    </tr>
                                }
                            }).collect_view()}</tbody>
                        </table></div>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A batch's readiness re-checks and key balances, with the buttons that
/// run them now.
#[component]
pub fn BatchWatchSection(batch_id: i64, standing: bool) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let can = ctx.can(Role::Operator) && standing;
    let data = Resource::new(move || batch_id, batch_watch);
    view! {
        <section id="watch" data-testid="batch-watch">
        <h2>{l.t("Readiness re-checks and balances", "就绪复查与余额")}</h2>
        {can.then(|| view! {
            <div class="actions">
                <form method="post" action=format!("/batches/{batch_id}") class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value="readiness_check"/>
                    <button type="submit" data-testid="recheck">{l.t("Re-check readiness now (one 1-token completion)", "立即复查就绪（一次 1 token 调用）")}</button>
                </form>
                <form method="post" action=format!("/batches/{batch_id}") class="inline">
                    <Csrf/>
                    <input type="hidden" name="action" value="read_balances"/>
                    <button type="submit" data-testid="read-balances">{l.t("Read upstream balances", "读取上游余额")}</button>
                </form>
            </div>
        })}
        <Suspense fallback=move || loading(l)>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                    Ok(d) => {
                        let (known, unknown, unsupported, low) = d.balance_counts;
                        let total = known + unknown + unsupported;
                        view! {
                            {if d.checks.is_empty() {
                                view! { <p class="empty" data-testid="no-checks">{l.t(
                                    "Not re-checked since it was applied: the scheduler re-checks ready batches (see the host's schedule).",
                                    "自执行以来尚未复查：调度器会复查就绪的批次（见主机的定时任务）。",
                                )}</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="grid" data-testid="checks">
                                        <thead><tr><th>{l.t("When", "时间")}</th><th>{l.t("Found", "结果")}</th><th>{l.t("Access", "访问状态")}</th><th>{l.t("By", "执行者")}</th></tr></thead>
                                        <tbody>{d.checks.into_iter().map(|c| {
                                            let badge = match c.outcome {
                                                CheckOutcome::Ready => view! { <span class="badge ok">{l.t("ready", "就绪")}</span> },
                                                CheckOutcome::Degraded => view! { <span class="badge warn">{l.t("degraded", "降级")}</span> },
                                                CheckOutcome::Broken => view! { <span class="badge bad">{l.t("broken", "不可用")}</span> },
                                            };
                                            view! {
                                                <tr data-testid="check" data-outcome=c.outcome.as_str()>
                                                    <td class="nowrap">{when(c.at_ms)}<p class="muted small">{format!("{} ms", c.duration_ms)}</p></td>
                                                    <td>{badge}<p class="small">{said(l, c.said.as_ref(), &c.detail)}</p></td>
                                                    <td>{access_badge(l, c.access_before)}" → "{access_badge(l, c.access_after)}</td>
                                                    <td>{c.actor.clone()}</td>
                                                </tr>
                                            }
                                        }).collect_view()}</tbody>
                                    </table></div>
                                }.into_any()
                            }}
                            <h3>{l.t("Upstream balances", "上游余额")}</h3>
                            {if total == 0 {
                                view! { <p class="empty" data-testid="no-balances">{l.t("Not read yet.", "尚未读取。")}</p> }.into_any()
                            } else {
                                view! {
                                    <p data-testid="balance-counts">{format!(
                                        "{}: {known} · {}: {unknown} · {}: {unsupported} · {}: {low}",
                                        l.t("known", "已知"), l.t("unknown (the endpoint failed)", "未知（接口出错）"),
                                        l.t("unsupported (no balance endpoint)", "不支持（无余额接口）"), l.t("low", "偏低"),
                                    )}</p>
                                    <div class="table-wrap"><table class="grid" data-testid="balances">
                                        <thead><tr><th>{l.t("Key", "密钥")}</th><th>{l.t("Balance", "余额")}</th><th>{l.t("Read", "读取时间")}</th></tr></thead>
                                        <tbody>{d.balances.into_iter().map(|b| {
                                            let value = match b.state {
                                                BalanceState::Known => view! {
                                                    <span class=if b.low { "badge bad" } else { "badge ok" }>
                                                        {format!("{:.2} {}", b.amount.unwrap_or_default(), b.currency.clone().unwrap_or_default())}
                                                        {b.low.then(|| l.t(" (low)", "（偏低）"))}
                                                    </span>
                                                }.into_any(),
                                                BalanceState::Unknown => view! { <span class="badge muted" title=b.detail.clone()>{l.t("unknown", "未知")}</span>" "<span class="muted small">{b.detail.clone()}</span> }.into_any(),
                                                BalanceState::Unsupported => view! { <span class="badge muted">{l.t("unsupported", "不支持")}</span> }.into_any(),
                                            };
                                            view! {
                                                <tr data-testid="balance" data-state=b.state.as_str()>
                                                    <td><code>{b.masked.clone()}</code></td>
                                                    <td>{value}</td>
                                                    <td class="nowrap muted">{when(b.at_ms)}</td>
                                                </tr>
                                            }
                                        }).collect_view()}</tbody>
                                    </table></div>
                                    {(total > BALANCE_ROWS).then(|| view! { <p class="muted small">{format!("{} {BALANCE_ROWS} / {total}", l.t("Shown (low first):", "已显示（偏低优先）："))}</p> })}
                                }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
        </section>
    }
}

/// Webhooks: where alerts go, a test button, the delivery log.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let admin = ctx.can(Role::Admin);
    let query = leptos_router::hooks::use_query_map();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|s| s.parse::<i64>().ok())
    };
    let data = Resource::new(before, webhooks_page);
    view! {
        <Layout>
            <h1>{l.t("Webhooks", "Webhook")}</h1>
            <p class="muted">{l.t(
                "Alerts go to these URLs as JSON, or in the message format of a WeCom (企业微信), DingTalk (钉钉) or Feishu (飞书) group bot. Each delivery carries the header ",
                "告警以 JSON 发往这些地址，或按企业微信、钉钉、飞书群机器人的消息格式发送。每次投递都带有 ",
            )}<code>"X-Relay-Signature: sha256=…"</code>{l.t(
                ", the HMAC-SHA256 of the body under the webhook's secret. One alert per incident, and one message when it is resolved; a failed delivery is retried 5 times (after 30 s, 1, 2, 4 and 8 min), then shown failed.",
                " 头，即用该 Webhook 的密钥对正文计算的 HMAC-SHA256。每个事件告警一次，恢复时再发一条；投递失败会重试 5 次（30 秒、1、2、4、8 分钟后），之后标记为失败。",
            )}</p>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(d) => view! {
                            {if d.webhooks.is_empty() {
                                view! { <p class="empty" data-testid="no-webhooks">{l.t("No webhook yet: alerts are shown on the overview only.", "还没有 Webhook：告警只显示在总览页。")}</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="grid" data-testid="webhooks">
                                        <thead><tr><th>{l.t("Name", "名称")}</th><th>{l.t("URL", "地址")}</th><th>{l.t("Format", "格式")}</th><th>{l.t("Rules", "规则")}</th><th></th></tr></thead>
                                        <tbody>{d.webhooks.into_iter().map(|w| view! {
                                            <tr data-testid="webhook-row">
                                                <td>{w.name.clone()}<p class="muted small">{format!("{} {}", l.t("by", "创建人"), w.created_by)}</p></td>
                                                <td><code>{w.url_masked.clone()}</code></td>
                                                <td><code>{w.format.as_str()}</code></td>
                                                <td class="small">{w.kinds.iter().map(|k| kind_word(l, *k)).collect::<Vec<_>>().join(l.t(", ", "、"))}</td>
                                                <td>{admin.then(|| view! {
                                                    <form method="post" action="/webhooks" class="inline">
                                                        <Csrf/>
                                                        <input type="hidden" name="action" value="test"/>
                                                        <input type="hidden" name="id" value=w.id.to_string()/>
                                                        <button type="submit" data-testid="test-webhook">{l.t("Send a test", "发送测试")}</button>
                                                    </form>
                                                    <form method="post" action="/webhooks" class="inline">
                                                        <Csrf/>
                                                        <input type="hidden" name="action" value="delete"/>
                                                        <input type="hidden" name="id" value=w.id.to_string()/>
                                                        <label class="small"><input type="checkbox" name="confirm" value="yes" required/>{l.t(" alerts stop going here", " 告警将不再发往此处")}</label>
                                                        <button type="submit" class="danger" data-testid="delete-webhook">{l.t("Remove", "移除")}</button>
                                                    </form>
                                                })}</td>
                                            </tr>
                                        }).collect_view()}</tbody>
                                    </table></div>
                                }.into_any()
                            }}
                            {admin.then(|| view! {
                                <h2>{l.t("Add a webhook", "添加 Webhook")}</h2>
                                <form method="post" action="/webhooks" class="card form" data-testid="webhook-form">
                                    <Csrf/>
                                    <input type="hidden" name="action" value="create"/>
                                    <Field name="name" label=l.t("Name", "名称") hint=l.t("e.g. on-call group", "如 值班群") required=true/>
                                    <Field name="url" label=l.t("URL", "地址") hint=l.t("The bot's or receiver's URL; stored encrypted, shown masked", "机器人或接收端的地址；加密存储，脱敏显示") required=true/>
                                    <label class="field"><span>{l.t("Format", "格式")}</span>
                                        <select name="format">
                                            <option value="generic">{l.t("generic JSON", "通用 JSON")}</option>
                                            <option value="wecom">"WeCom / 企业微信"</option>
                                            <option value="dingtalk">"DingTalk / 钉钉"</option>
                                            <option value="feishu">"Feishu / 飞书"</option>
                                        </select></label>
                                    <fieldset><legend>{l.t("Rules", "规则")}</legend>
                                        {AlertKind::ALL.into_iter().map(|k| view! {
                                            <label class="check small"><input type="checkbox" name=format!("kind_{}", k.as_str()) value="yes" checked=true/>{kind_word(l, k)}</label>
                                        }).collect_view()}
                                    </fieldset>
                                    <Field name="secret" label=l.t("Signing secret (optional)", "签名密钥（可选）") hint=l.t("A DingTalk or Feishu bot's own secret (SEC…), to sign as the bot expects; empty: the product makes one and shows it once", "钉钉或飞书机器人自己的加签密钥（SEC…），按机器人要求签名；留空则由本产品生成并只显示一次") required=false/>
                                    <button type="submit" class="primary">{l.t("Add webhook", "添加 Webhook")}</button>
                                </form>
                            })}
                            <h2>{l.t("Delivery log", "投递记录")}</h2>
                            {if d.deliveries.is_empty() {
                                view! { <p class="empty" data-testid="no-deliveries">{l.t("Nothing sent yet.", "尚未发送任何内容。")}</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="grid" data-testid="deliveries">
                                        <thead><tr><th>"#"</th><th>{l.t("Webhook", "Webhook")}</th><th>{l.t("Message", "消息")}</th><th>{l.t("State", "状态")}</th><th>{l.t("Answer", "响应")}</th><th>{l.t("Tries", "次数")}</th><th>{l.t("Created", "创建")}</th></tr></thead>
                                        <tbody>{d.deliveries.into_iter().map(|x| {
                                            let state = match x.state.as_str() {
                                                "delivered" => view! { <span class="badge ok">{l.t("delivered", "已送达")}</span> }.into_any(),
                                                "failed" => view! { <span class="badge bad">{l.t("failed", "失败")}</span> }.into_any(),
                                                _ => view! { <span class="badge warn">{l.t("retrying", "重试中")}</span><p class="muted small">{format!("{} {}", l.t("next", "下次"), when(x.next_at_ms))}</p> }.into_any(),
                                            };
                                            let event = match x.event.as_str() {
                                                "firing" => l.t("alert", "告警"),
                                                "resolved" => l.t("resolved", "已恢复"),
                                                "test" => l.t("test", "测试"),
                                                _ => l.t("notice", "通知"),
                                            };
                                            view! {
                                                <tr data-testid="delivery" data-state=x.state.clone()>
                                                    <td>{x.id}</td>
                                                    <td>{x.webhook.clone()}</td>
                                                    <td>{event}</td>
                                                    <td>{state}</td>
                                                    <td>{x.last_status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "—".into())}
                                                        <p class="muted small">{x.last_error.clone()}</p></td>
                                                    <td>{x.attempts}</td>
                                                    <td class="nowrap muted">{when(x.created_at_ms)}</td>
                                                </tr>
                                            }
                                        }).collect_view()}</tbody>
                                    </table></div>
                                    {d.older.map(|o| view! { <p><a href=format!("/webhooks?before={o}")>{l.t("Older →", "更早 →")}</a></p> })}
                                }.into_any()
                            }}
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}
