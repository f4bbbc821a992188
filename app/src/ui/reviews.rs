//! Handover review: the review queue, a batch's review page (evidence,
//! digest, decision form), the review section of a batch page, and four
//! eyes on protected hosts.

use super::widgets::*;
use crate::api::{review_form, review_queue, ReviewFormData};
use crate::i18n::Lang;
use crate::page::page_ctx;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use provisioning_core::model::{
    BatchStatus, ChangeSince, Decision, FourEyes, ReviewPanel, ReviewState, ReviewView, Role,
};

pub fn state_word(l: Lang, s: ReviewState) -> &'static str {
    match s {
        ReviewState::NotReviewed => l.t("not reviewed", "未审核"),
        ReviewState::Accepted => l.t("accepted", "已接受"),
        ReviewState::Rejected => l.t("rejected", "已拒绝"),
        ReviewState::NeedsChanges => l.t("needs changes", "需修改"),
        ReviewState::Stale => l.t("stale", "已过期"),
    }
}

fn decision_word(l: Lang, d: Decision) -> &'static str {
    match d {
        Decision::Accepted => l.t("accepted", "接受"),
        Decision::Rejected => l.t("rejected", "拒绝"),
        Decision::NeedsChanges => l.t("needs changes", "需修改"),
    }
}

pub fn state_badge(l: Lang, s: ReviewState) -> impl IntoView {
    let class = match s {
        ReviewState::Accepted => "badge ok",
        ReviewState::NotReviewed => "badge muted",
        ReviewState::NeedsChanges | ReviewState::Stale => "badge warn",
        ReviewState::Rejected => "badge bad",
    };
    let title = match s {
        ReviewState::Stale => l.t(
            "The batch changed after the newest decision (a run or a diagnosis): it needs a new review",
            "最新决定之后批次有变化（运行或诊断）：需要重新审核",
        ),
        ReviewState::NotReviewed => l.t("No reviewer has decided on this batch yet", "尚无审核人对此批次作出决定"),
        _ => l.t("The newest reviewer's decision, on the evidence as it still is", "最新审核人的决定，证据至今未变"),
    };
    view! { <span class=class data-review=s.as_str() title=title>{state_word(l, s)}</span> }
}

fn change_word(l: Lang, kind: &str) -> &'static str {
    match kind {
        "apply" => l.t("a re-run", "重新执行"),
        "rollback" => l.t("a rollback", "回滚"),
        "pause" => l.t("a pause / resume of accounts", "暂停 / 恢复账号"),
        "repair" => l.t("a repair", "修复"),
        "diagnosis" => l.t("a diagnosis", "诊断"),
        _ => l.t("a change", "变更"),
    }
}

fn run_status_word(l: Lang, s: &str) -> &'static str {
    match s {
        "planned" => l.t("planned", "已规划"),
        "running" => l.t("running", "运行中"),
        "done" => l.t("done", "完成"),
        _ => l.t("failed", "失败"),
    }
}

fn purpose_word(l: Lang, p: &str) -> &'static str {
    match p {
        "apply" => l.t("apply", "执行"),
        _ => l.t("rollback", "回滚"),
    }
}

fn short(d: &str) -> String {
    d.chars().take(16).collect()
}

#[component]
fn Changes(changes: Vec<ChangeSince>) -> impl IntoView {
    let l = page_ctx().lang;
    view! {
        <p class="finding warn">{l.t("The batch changed after the newest decision, so it is stale:", "最新决定之后批次有变化，因此该决定已过期：")}</p>
        <ul data-testid="review-changes">
            {changes.into_iter().map(|c| view! {
                <li data-kind=c.kind.clone()>{format!("{} #{} · {} · {} ({})", change_word(l, &c.kind), c.id, c.actor, when(c.at_ms), run_status_word(l, &c.status))}</li>
            }).collect_view()}
        </ul>
    }
}

#[component]
fn History(history: Vec<ReviewView>) -> impl IntoView {
    let l = page_ctx().lang;
    view! {
        <table class="grid" data-testid="review-history">
            <thead><tr>
                <th>{l.t("When", "时间")}</th><th>{l.t("Reviewer", "审核人")}</th><th>{l.t("Decision", "决定")}</th>
                <th>{l.t("Comment", "意见")}</th><th>{l.t("Evidence reviewed", "所审核的证据")}</th>
            </tr></thead>
            <tbody>{history.into_iter().map(|r| view! {
                <tr data-decision=r.decision.as_str()>
                    <td>{when(r.at_ms)}</td>
                    <td>{r.reviewer.clone()}</td>
                    <td><b>{decision_word(l, r.decision)}</b>
                        {r.superseded.then(|| view! { " " <span class="muted small">{l.t("(superseded)", "（已被取代）")}</span> })}
                        {(!r.superseded && r.stale).then(|| view! { " " <span class="badge warn">{l.t("stale", "已过期")}</span> })}</td>
                    <td>{r.comment.clone()}</td>
                    <td><code title=r.digest.clone()>{short(&r.digest)}</code>" "<span class="muted small" title=l.t("Ed25519 signature by this installation's key", "本安装密钥的 Ed25519 签名")>{l.t("signed", "已签名")}</span></td>
                </tr>
            }).collect_view()}</tbody>
        </table>
    }
}

/// The review section of a batch's page, with four eyes when its host is
/// protected.
#[component]
pub fn ReviewSection(panel: ReviewPanel, status: BatchStatus) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let me = ctx
        .operator
        .as_ref()
        .map(|o| o.username.clone())
        .unwrap_or_default();
    let own = panel.authors.contains(&me);
    let can_review = panel.reviewable && ctx.can(Role::Viewer) && !own;
    let id = panel.batch_id;
    view! {
        <h2 id="review">{l.t("Handover review", "交接审核")}" "<span data-testid="review-state" data-state=panel.state.as_str()>{state_badge(l, panel.state)}</span></h2>
        {(!panel.changes.is_empty()).then(|| view! { <Changes changes=panel.changes.clone()/> })}
        {if panel.history.is_empty() {
            view! { <p class="muted">{if panel.reviewable {
                l.t("No reviewer has decided on this batch yet.", "尚无审核人对此批次作出决定。")
            } else {
                l.t("A batch is reviewed once it has run (succeeded, partly or failed).", "批次运行结束（成功、部分成功或失败）后才能审核。")
            }}</p> }.into_any()
        } else {
            view! { <History history=panel.history.clone()/> }.into_any()
        }}
        <div class="actions">
            {can_review.then(|| view! {
                <a class="button primary" href=format!("/batches/{id}/review") data-testid="review-link">{if panel.history.is_empty() {
                    l.t("Review this batch…", "审核此批次…")
                } else {
                    l.t("Review again…", "重新审核…")
                }}</a>
            })}
            {(panel.reviewable && own).then(|| view! {
                <p class="muted small" data-testid="review-own">{l.t("You planned or applied this batch: someone who did neither reviews it.", "此批次由你规划或执行：需由既未规划也未执行的人审核。")}</p>
            })}
        </div>
        {panel.four_eyes.protected.then(|| view! { <FourEyesSection fe=panel.four_eyes.clone() batch=id status=status/> })}
    }
}

fn apply_open(s: BatchStatus) -> bool {
    FourEyes::open("apply", s)
}

#[component]
fn FourEyesSection(fe: FourEyes, batch: i64, status: BatchStatus) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let me = ctx
        .operator
        .as_ref()
        .map(|o| o.username.clone())
        .unwrap_or_default();
    let valid = fe.valid("apply").cloned();
    let may_approve =
        ctx.can(Role::Operator) && me != fe.author && valid.is_none() && apply_open(status);
    view! {
        <h3 id="four-eyes">{l.t("Four eyes: the host is protected", "双人复核：主机受保护")}</h3>
        <p data-testid="apply-approval" data-approved=valid.is_some().to_string()>{match &valid {
            Some(a) => format!("{} {} · {} · {} {}", l.t("Apply approved by", "执行已由"), a.approver, when(a.at_ms), l.t("plan", "计划"), short(&a.digest)),
            None => format!("{} {} {} · {} {}", l.t("Applying needs an approval by an operator or admin other than", "执行需要由"), fe.author, l.t("(its author).", "以外的操作员或管理员批准（作者除外）。"), l.t("plan digest", "计划摘要"), short(&fe.plan_digest)),
        }}</p>
        {(!fe.approvals.is_empty()).then(|| view! {
            <ul class="small" data-testid="approvals">{fe.approvals.iter().map(|a| view! {
                <li data-purpose=a.purpose.clone() data-valid=a.valid.to_string()>{format!("{} · {} · {} · {}{}", purpose_word(l, &a.purpose), a.approver, when(a.at_ms), short(&a.digest),
                    if a.valid { String::new() } else { format!(" · {}", l.t("no longer valid (the plan or the batch changed)", "已失效（计划或批次有变化）")) })}
                    {(!a.comment.is_empty()).then(|| format!(" — {}", a.comment))}</li>
            }).collect_view()}</ul>
        })}
        {may_approve.then(|| view! {
            <form method="post" action=format!("/batches/{batch}") class="card" data-testid="approve-form">
                <Csrf/>
                <input type="hidden" name="action" value="approve"/>
                <input type="hidden" name="purpose" value="apply"/>
                <input type="hidden" name="digest" value=fe.plan_digest.clone()/>
                <p class="small">{l.t("You approve this exact plan (its digest above): the keys, the group, the prices. Any change to it voids the approval.", "你批准的是这份确切的计划（上方摘要）：密钥、分组、价格。计划的任何改动都会使批准失效。")}</p>
                <Field name="comment" label=l.t("Comment (optional)", "意见（可选）") maxlength=2000/>
                <button type="submit" class="primary" data-testid="approve-apply">{l.t("Approve the apply", "批准执行")}</button>
            </form>
        })}
        {(valid.is_none() && me == fe.author && apply_open(status)).then(|| view! {
            <p class="muted small" data-testid="approve-own">{l.t("You planned it: another operator or admin approves it.", "此计划由你规划：需由另一位操作员或管理员批准。")}</p>
        })}
    }
}

/// The approval a rollback on a protected host needs, on the rollback page.
#[component]
pub fn RollbackApproval(data: ReviewFormData) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let me = ctx
        .operator
        .as_ref()
        .map(|o| o.username.clone())
        .unwrap_or_default();
    let fe = data.panel.four_eyes.clone();
    let id = data.panel.batch_id;
    let valid: Vec<_> = fe
        .approvals
        .iter()
        .filter(|a| a.purpose == "rollback" && a.valid)
        .cloned()
        .collect();
    let by_other = !valid.is_empty() && fe.rollback_cleared_for(&me);
    view! {
        <h2 id="four-eyes">{l.t("Four eyes: the host is protected", "双人复核：主机受保护")}</h2>
        <p data-testid="rollback-approval" data-approved=by_other.to_string()>{if let Some(a) = valid.first() {
            format!("{} {} · {}", l.t("Rollback approved by", "回滚已由"), a.approver, when(a.at_ms))
        } else {
            l.t("A rollback needs an approval by an operator or admin; someone else then carries it out.", "回滚需要一位操作员或管理员批准，再由另一人执行。").to_string()
        }}</p>
        {(!valid.is_empty() && !by_other).then(|| view! {
            <p class="muted small">{l.t("You approved it: another operator or admin rolls it back.", "回滚由你批准：需由另一位操作员或管理员执行。")}</p>
        })}
        {(valid.is_empty() && ctx.can(Role::Operator)).then(|| view! {
            <form method="post" action=format!("/batches/{id}") class="card" data-testid="approve-rollback-form">
                <Csrf/>
                <input type="hidden" name="action" value="approve"/>
                <input type="hidden" name="purpose" value="rollback"/>
                <input type="hidden" name="digest" value=data.digest.clone()/>
                <p class="small">{format!("{} {}", l.t("You approve rolling back the batch as it is now (evidence", "你批准按批次当前状态回滚（证据"), short(&data.digest))}{l.t("). Any run before the rollback voids the approval.", "）。回滚前的任何运行都会使批准失效。")}</p>
                <Field name="comment" label=l.t("Comment (optional)", "意见（可选）") maxlength=2000/>
                <button type="submit" data-testid="approve-rollback">{l.t("Approve the rollback", "批准回滚")}</button>
            </form>
        })}
    }
}

/// `/batches/:id/review`: what the reviewer decides on, and the decision.
#[component]
pub fn ReviewPage() -> impl IntoView {
    let l = page_ctx().lang;
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let data = Resource::new(id, review_form);
    view! {
        <Layout>
            <p><a href=move || format!("/batches/{}", id())>{l.t("← Back to the batch", "← 返回批次")}</a></p>
            <h1>{move || format!("{} #{}", l.t("Review batch", "审核批次"), id())}</h1>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(d) => view! { <ReviewForm data=d/> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn ReviewForm(data: ReviewFormData) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let me = ctx
        .operator
        .as_ref()
        .map(|o| o.username.clone())
        .unwrap_or_default();
    let b = data.batch.clone();
    let p = data.panel.clone();
    let own = p.authors.contains(&me);
    let id = b.id;
    let chosen = ctx.value("decision");
    view! {
        <dl class="facts" data-testid="review-facts">
            <dt>{l.t("Batch status", "批次状态")}</dt><dd>{super::batches::batch_badge(l, b.status)}</dd>
            <dt>{l.t("Its keys", "本批次密钥")}</dt><dd>{super::batches::key_outcomes(l, &b.keys)}</dd>
            <dt>{l.t("Group access", "分组访问")}</dt><dd>{super::batches::access_badge(l, b.access_status)}</dd>
            <dt>{l.t("Smoke checks", "冒烟检查")}</dt><dd data-testid="review-checks">{format!("{} {} · {} {}", data.checks.0, l.t("passed", "通过"), data.checks.1, l.t("failed", "失败"))}</dd>
            <dt>{l.t("Host / provider", "主机 / 供应商")}</dt><dd>{format!("{} · {}/{}", b.host_name, b.pack_id, b.provider_key)}</dd>
            <dt>{l.t("Planned / applied by", "规划 / 执行人")}</dt><dd>{p.authors.join(", ")}</dd>
            <dt>{l.t("Evidence digest", "证据摘要")}</dt><dd><code data-testid="evidence-digest">{data.digest.clone()}</code></dd>
        </dl>
        <p>{l.t("Read the evidence before deciding: ", "作决定前请阅读证据：")}
            <a href=format!("/batches/{id}/evidence.html") rel="external" data-testid="review-evidence-html">{l.t("the evidence report (HTML)", "证据报告（HTML）")}</a>" · "
            <a href=format!("/batches/{id}/evidence.json") rel="external">{l.t("the bundle (JSON)", "证据包（JSON）")}</a>" · "
            <a href=format!("/batches/{id}")>{l.t("the batch page", "批次页")}</a></p>
        {(!p.changes.is_empty()).then(|| view! { <Changes changes=p.changes.clone()/> })}
        {(!p.history.is_empty()).then(|| view! { <h2>{l.t("Earlier decisions", "此前的决定")}</h2><History history=p.history.clone()/> })}
        {if !p.reviewable {
            view! { <p class="finding warn">{l.t("Only a finished batch (succeeded, partly or failed) is reviewed.", "只审核已结束的批次（成功、部分成功或失败）。")}</p> }.into_any()
        } else if own {
            view! { <p class="finding warn" data-testid="review-own">{l.t("You planned or applied this batch: someone who did neither reviews it.", "此批次由你规划或执行：需由既未规划也未执行的人审核。")}</p> }.into_any()
        } else if !ctx.can(Role::Viewer) {
            ().into_any()
        } else {
            let err = ctx.field_error("decision");
            let class = if err.is_some() { "decision invalid" } else { "decision" };
            view! {
                <form method="post" action=format!("/batches/{id}/review") class="card" data-testid="review-form">
                    <Csrf/>
                    <input type="hidden" name="digest" value=data.digest.clone()/>
                    <fieldset class=class>
                        <legend>{l.t("Your decision on this evidence", "你对此证据的决定")}</legend>
                        <div>{Decision::ALL.into_iter().map(|d| view! {
                            <label class="check"><input type="radio" name="decision" value=d.as_str() required checked=chosen == d.as_str() data-testid=format!("decision-{}", d.as_str())/>" "{decision_word(l, d)}</label>
                        }).collect_view()}</div>
                        {err.map(|e| view! { <span class="error">{e}</span> })}
                    </fieldset>
                    <label class=if ctx.field_error("comment").is_some() { "field invalid" } else { "field" }>
                        <span>{l.t("Comment (needed to reject or ask for changes)", "意见（拒绝或要求修改时必填）")}</span>
                        <textarea name="comment" maxlength="2000" rows="4" data-testid="review-comment">{ctx.value("comment")}</textarea>
                        {ctx.field_error("comment").map(|e| view! { <span class="error">{e}</span> })}
                    </label>
                    <p class="muted small">{l.t("The decision is signed with this installation's key, goes into the evidence bundle, and cannot be changed: a new decision supersedes it.", "决定将以本安装的密钥签名并写入证据包，且不可更改：新的决定会取代它。")}</p>
                    <button type="submit" class="primary" data-testid="record-decision">{l.t("Record decision", "记录决定")}</button>
                </form>
            }.into_any()
        }}
    }
}

/// `/reviews`: finished batches waiting for a reviewer.
#[component]
pub fn ReviewQueuePage() -> impl IntoView {
    let l = page_ctx().lang;
    let data = Resource::new(|| (), |_| review_queue());
    view! {
        <Layout>
            <h1>{l.t("Review queue", "审核队列")}</h1>
            <p class="muted">{l.t("Finished batches no reviewer has decided on, and those whose decision went stale because the batch changed after it. The longest waiting first.", "尚无审核决定的已结束批次，以及因批次之后有变化而决定过期的批次。等待最久的在前。")}</p>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(q) if q.items.is_empty() => view! {
                            <div class="empty" data-testid="queue-empty"><p>{l.t("Nothing waits for a review: every finished batch has a current decision.", "没有待审核的内容：每个已结束的批次都有有效的决定。")}</p>
                            <p><a href="/batches?review=accepted">{l.t("Accepted batches", "已接受的批次")}</a></p></div>
                        }.into_any(),
                        Ok(q) => view! {
                            <p data-testid="queue-count">{format!("{} {}", q.total, l.t("batch(es) waiting", "个批次待审核"))}
                                {(q.total > q.items.len() as i64).then(|| format!(" · {} {}", l.t("showing the first", "显示前"), q.items.len()))}</p>
                            <div class="table-wrap"><table class="grid" data-testid="review-queue">
                                <thead><tr><th>"#"</th><th>{l.t("Host", "主机")}</th><th>{l.t("Provider", "供应商")}</th><th>{l.t("Batch status", "批次状态")}</th>
                                    <th>{l.t("Review", "审核")}</th><th>{l.t("Created", "创建")}</th><th></th></tr></thead>
                                <tbody>{q.items.into_iter().map(|i| view! {
                                    <tr data-batch=i.batch_id.to_string()>
                                        <td><a href=format!("/batches/{}", i.batch_id)>{format!("#{}", i.batch_id)}</a></td>
                                        <td>{i.host_name.clone()}</td>
                                        <td><code>{i.provider_key.clone()}</code></td>
                                        <td>{super::batches::batch_badge(l, BatchStatus::parse(&i.status))}</td>
                                        <td>{state_badge(l, i.state)}{i.last_reviewer.clone().map(|r| view! { " " <span class="muted small">{format!("{} {r} · {}", l.t("was decided by", "原决定人"), i.last_at_ms.map(when).unwrap_or_default())}</span> })}</td>
                                        <td class="muted">{format!("{} · {}", when(i.created_at_ms), i.created_by)}</td>
                                        <td><a class="button" href=format!("/batches/{}/review", i.batch_id) data-testid="queue-review">{l.t("Review…", "审核…")}</a></td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}
