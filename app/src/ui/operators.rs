//! Operators (admin only): who may use the dashboard, with which role.

use super::widgets::*;
use crate::api::list_operators;
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
                                    {list.into_iter().map(|o| view! {
                                        <tr>
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
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Suspense>
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
        </Layout>
    }
}
