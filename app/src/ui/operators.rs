//! Operators (admin only): who may use the dashboard, with which role.

use super::widgets::*;
use crate::api::{list_operators, list_tokens};
use crate::page::page_ctx;
use leptos::prelude::*;
use provisioning_core::model::Role;

#[component]
pub fn OperatorsPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let ops = Resource::new(|| (), |_| list_operators());
    let role_help = l.t(
        "admin: everything; operator: hosts, packs, imports, rollbacks; viewer: read and export only (handover reviewers).",
        "admin：全部权限；operator：主机、模板包、导入与回滚；viewer：只读与导出（交接审核人）。",
    );
    view! {
        <Layout>
            <h1>{l.t("Operators", "操作员")}</h1>
            <p class="muted">{role_help}</p>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match ops.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(list) => view! {
                            <table class="grid" data-testid="operators">
                                <thead><tr>
                                    <th>{l.t("Username", "用户名")}</th>
                                    <th>{l.t("Role", "角色")}</th>
                                    <th>{l.t("Last sign-in", "最近登录")}</th>
                                    <th>{l.t("Change", "修改")}</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|o| {
                                        let me = page_ctx().operator.as_ref().is_some_and(|m| m.id == o.id);
                                        view! {
                                        <tr data-testid="operator-row" data-username=o.username.clone()>
                                            <td>{o.username.clone()}{o.disabled.then(|| view! { " " <span class="badge muted">{l.t("disabled", "已停用")}</span> })}</td>
                                            <td>{o.role.as_str()}</td>
                                            <td class="muted">{o.last_sign_in_ms.map(when).unwrap_or_else(|| "—".into())}</td>
                                            <td>
                                                <form method="post" action="/operators" class="inline">
                                                    <Csrf/>
                                                    <input type="hidden" name="action" value="update"/>
                                                    <input type="hidden" name="id" value=o.id.to_string()/>
                                                    <select name="role" aria-label=l.t("Role", "角色")>
                                                        {Role::ALL.into_iter().map(|r| view! {
                                                            <option value=r.as_str() selected=r == o.role>{r.as_str()}</option>
                                                        }).collect_view()}
                                                    </select>
                                                    <label class="check"><input type="checkbox" name="disabled" value="1" checked=o.disabled/>{l.t("disabled", "停用")}</label>
                                                    <button type="submit">{l.t("Apply", "应用")}</button>
                                                </form>
                                                {if me {
                                                    view! { <p class="small muted"><a href="/account">{l.t("Change your own password on your account page.", "在“我的账号”页修改自己的密码。")}</a></p> }.into_any()
                                                } else {
                                                    view! {
                                                        <form method="post" action="/operators" class="inline">
                                                            <Csrf/>
                                                            <input type="hidden" name="action" value="reset_password"/>
                                                            <input type="hidden" name="id" value=o.id.to_string()/>
                                                            <input type="password" name="password" required minlength="12" maxlength="256" autocomplete="new-password"
                                                                aria-label=l.t("New password", "新密码") placeholder=l.t("new password (12+ characters)", "新密码（至少 12 个字符）")/>
                                                            <button type="submit" data-testid="reset-password">{l.t("Reset password", "重置密码")}</button>
                                                        </form>
                                                        <form method="post" action="/operators" class="inline">
                                                            <Csrf/>
                                                            <input type="hidden" name="action" value="remove"/>
                                                            <input type="hidden" name="id" value=o.id.to_string()/>
                                                            <label class="small"><input type="checkbox" name="confirm" value="yes" required data-testid="remove-confirm"/>{l.t(" sign them out for good", " 永久注销其登录")}</label>
                                                            <button type="submit" class="danger" data-testid="remove-operator">{l.t("Remove", "移除")}</button>
                                                        </form>
                                                    }.into_any()
                                                }}
                                            </td>
                                        </tr>
                                    }}).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Suspense>
            // Only an admin is offered the form (the server refuses anyone else).
            {ctx.can(Role::Admin).then(|| view! {
            <h2>{l.t("Add an operator", "添加操作员")}</h2>
            <form method="post" action="/operators" class="card form" data-testid="operator-form">
                <Csrf/>
                <input type="hidden" name="action" value="create"/>
                <Field name="username" label=l.t("Username", "用户名") required=true maxlength=64/>
                <Field name="password" kind="password" label=l.t("Initial password", "初始密码") required=true maxlength=256
                    hint=l.t("At least 12 characters; tell it to them out of band", "至少 12 个字符，请通过其他渠道告知对方")/>
                <label class="field">
                    <span>{l.t("Role", "角色")}</span>
                    <select name="role">
                        <option value="viewer">"viewer"</option>
                        <option value="operator" selected=true>"operator"</option>
                        <option value="admin">"admin"</option>
                    </select>
                </label>
                <button type="submit" class="primary">{l.t("Add operator", "添加操作员")}</button>
            </form>
            })}
        </Layout>
    }
}

/// The signed-in operator's own account: who they are, and a new password
/// (with the current one). Every role has it.
#[component]
pub fn AccountPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let who = ctx.operator.clone();
    view! {
        <Layout>
            <h1>{l.t("Your account", "我的账号")}</h1>
            {who.map(|o| view! {
                <dl class="facts">
                    <dt>{l.t("Username", "用户名")}</dt><dd>{o.username.clone()}</dd>
                    <dt>{l.t("Role", "角色")}</dt><dd>{o.role.as_str()}</dd>
                    <dt>{l.t("Last sign-in", "最近登录")}</dt><dd class="muted">{o.last_sign_in_ms.map(when).unwrap_or_else(|| "—".into())}</dd>
                </dl>
            })}
            <h2>{l.t("Change your password", "修改密码")}</h2>
            <form method="post" action="/account" class="card form" data-testid="password-form">
                <Csrf/>
                <Field name="current_password" kind="password" label=l.t("Current password", "当前密码") required=true maxlength=256/>
                <Field name="new_password" kind="password" label=l.t("New password", "新密码") required=true maxlength=256
                    hint=l.t("At least 12 characters. Your other sessions end; this one stays signed in.", "至少 12 个字符。你的其他会话将结束，当前会话保持登录。")/>
                <Field name="confirm_password" kind="password" label=l.t("New password again", "再次输入新密码") required=true maxlength=256/>
                <button type="submit" class="primary">{l.t("Change password", "修改密码")}</button>
            </form>
        </Layout>
    }
}

/// API tokens (admin only): made for an operator with a scope and an
/// expiry, shown once, revocable.
#[component]
pub fn TokensPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let data = Resource::new(|| (), |_| list_tokens());
    view! {
        <Layout>
            <h1>{l.t("API tokens", "API 令牌")}</h1>
            <p class="muted">{l.t(
                "A token lets a script use the JSON API under /api/v1 as one operator: never above that operator's role, and only within its scope (read: look only; write: also hosts, packs, batches; admin: also operators and tokens). Only its hash is kept; it is shown once.",
                "令牌让脚本以某个操作员的身份使用 /api/v1 下的 JSON API：权限绝不超过该操作员的角色，且只在其范围内（read：只读；write：另可操作主机、模板包、批次；admin：另可管理操作员和令牌）。只保存其哈希，仅显示一次。",
            )}</p>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(d) => {
                            let now = d.now_ms;
                            view! {
                                {if d.tokens.is_empty() {
                                    view! { <p class="empty" data-testid="no-tokens">{l.t("No token yet.", "还没有令牌。")}</p> }.into_any()
                                } else {
                                    view! {
                                        <div class="table-wrap"><table class="grid" data-testid="tokens">
                                            <thead><tr>
                                                <th>"#"</th><th>{l.t("Name", "名称")}</th><th>{l.t("Starts with", "开头")}</th>
                                                <th>{l.t("Acts for", "代表")}</th><th>{l.t("Scope", "范围")}</th>
                                                <th>{l.t("Expires", "到期")}</th><th>{l.t("Last used", "最近使用")}</th><th>{l.t("State", "状态")}</th><th></th>
                                            </tr></thead>
                                            <tbody>{d.tokens.into_iter().map(|t| {
                                                let live = t.live(now);
                                                let state = match (t.revoked_at_ms, live) {
                                                    (Some(at), _) => view! { <span class="badge muted" title=when(at)>{l.t("revoked", "已吊销")}</span> }.into_any(),
                                                    (None, false) => view! { <span class="badge muted">{l.t("expired", "已过期")}</span> }.into_any(),
                                                    (None, true) => view! { <span class="badge ok">{l.t("live", "有效")}</span> }.into_any(),
                                                };
                                                view! {
                                                    <tr data-testid="token-row" data-token=t.id.to_string()>
                                                        <td>{t.id}</td>
                                                        <td>{t.name.clone()}<p class="muted small">{format!("{} {}", l.t("by", "创建人"), t.created_by)}</p></td>
                                                        <td><code>{format!("{}…", t.prefix)}</code></td>
                                                        <td>{t.username.clone()}</td>
                                                        <td><code>{t.scope.clone()}</code></td>
                                                        <td class="nowrap">{when(t.expires_at_ms)}</td>
                                                        <td class="nowrap muted">{t.last_used_ms.map(when).unwrap_or_else(|| l.t("never", "从未").into())}</td>
                                                        <td>{state}</td>
                                                        <td>{(t.revoked_at_ms.is_none()).then(|| view! {
                                                            <form method="post" action="/tokens" class="inline">
                                                                <Csrf/>
                                                                <input type="hidden" name="action" value="revoke"/>
                                                                <input type="hidden" name="id" value=t.id.to_string()/>
                                                                <label class="small"><input type="checkbox" name="confirm" value="yes" required/>{l.t(" scripts using it stop", " 使用它的脚本将停止工作")}</label>
                                                                <button type="submit" class="danger" data-testid="revoke-token">{l.t("Revoke", "吊销")}</button>
                                                            </form>
                                                        })}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}</tbody>
                                        </table></div>
                                    }.into_any()
                                }}
                                <h2>{l.t("Create a token", "创建令牌")}</h2>
                                <form method="post" action="/tokens" class="card form" data-testid="token-form">
                                    <Csrf/>
                                    <input type="hidden" name="action" value="create"/>
                                    <Field name="name" label=l.t("Name", "名称") hint=l.t("What uses it, e.g. staging CI", "用途，如 staging CI") required=true/>
                                    <label class="field"><span>{l.t("Acts for", "代表操作员")}</span>
                                        <select name="operator_id">{d.operators.into_iter().map(|o| view! {
                                            <option value=o.id.to_string()>{format!("{} ({})", o.username, o.role)}</option>
                                        }).collect_view()}</select></label>
                                    <label class="field"><span>{l.t("Scope", "范围")}</span>
                                        <select name="scope">
                                            <option value="read">"read"</option>
                                            <option value="write" selected>"write"</option>
                                            <option value="admin">"admin"</option>
                                        </select></label>
                                    <label class="field"><span>{l.t("Expires after (days)", "有效天数")}</span>
                                        <input type="number" name="days" value="90" min="1" max="366" required/></label>
                                    <button type="submit" class="primary">{l.t("Create token", "创建令牌")}</button>
                                </form>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </Layout>
    }
}
