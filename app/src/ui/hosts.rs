//! Hosts: the list, the add and edit forms, the detail page with the probe,
//! its findings and capability matrix, the history, and removal with a
//! confirmation page.

use super::widgets::*;
use crate::api::{host_accounts, host_detail, list_hosts, HostDetailData};
use crate::i18n::Lang;
use crate::page::page_ctx;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use provisioning_core::model::{
    AdminAuthKind, AdminAuthState, ComplianceState, HostView, ProbeRecord, ProbeUserState, Role,
    Severity,
};

fn host_id() -> impl Fn() -> i64 + Clone + Send + Sync + 'static {
    let params = use_params_map();
    move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

#[component]
pub fn HostsPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let can_add = ctx.can(Role::Operator);
    let hosts = Resource::new(|| (), |_| list_hosts());
    view! {
        <Layout>
            <div class="title-row">
                <h1>{l.t("Hosts", "主机")}</h1>
                {can_add.then(|| view! { <a class="button primary" href="/hosts/new">{l.t("Add a host", "添加主机")}</a> })}
            </div>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match hosts.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <div class="empty">
                                <p>{l.t("No host registered yet.", "还没有登记任何主机。")}</p>
                                <p class="muted">{l.t("A host is one Sub2API installation: its base URL and an admin API key (or admin email and password).", "一台主机即一个 Sub2API 实例：基础地址加管理员 API 密钥（或管理员邮箱和密码）。")}</p>
                            </div>
                        }.into_any(),
                        Ok(list) => view! { <HostTable hosts=list/> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn HostTable(hosts: Vec<HostView>) -> impl IntoView {
    let l = page_ctx().lang;
    view! {
        <table class="grid" data-testid="hosts">
            <thead><tr>
                <th>{l.t("Name", "名称")}</th>
                <th>{l.t("Base URL", "基础地址")}</th>
                <th>{l.t("Admin credential", "管理员凭据")}</th>
                <th>{l.t("Status", "状态")}</th>
                <th>{l.t("Version", "版本")}</th>
                <th>{l.t("Latency", "延迟")}</th>
            </tr></thead>
            <tbody>
                {hosts.into_iter().map(|h| {
                    let p = h.last_probe.clone();
                    view! {
                        <tr>
                            <td><a href=format!("/hosts/{}", h.id)>{h.name.clone()}</a></td>
                            <td><code>{h.base_url.clone()}</code></td>
                            <td><code>{h.admin_credential_hint.clone()}</code></td>
                            <td>{match &p {
                                Some(p) => view! { <StatusBadge status=p.status/> }.into_any(),
                                None => view! { <span class="badge muted">{l.t("not probed", "未探测")}</span> }.into_any(),
                            }}</td>
                            <td>{p.as_ref().and_then(|p| p.version.clone()).unwrap_or_default()}</td>
                            <td>{p.as_ref().and_then(|p| p.latency_ms).map(|ms| format!("{ms} ms")).unwrap_or_default()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The add/edit form. On edit, secret fields start empty and keep the
/// stored secret when left empty.
#[component]
fn HostForm(action: String, existing: Option<HostView>) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let editing = existing.is_some();
    let e = existing.clone();
    let get = move |f: fn(&HostView) -> String| e.as_ref().map(f).unwrap_or_default();
    let kind = {
        let typed = ctx.value("auth_kind");
        if !typed.is_empty() {
            typed
        } else {
            existing
                .as_ref()
                .map(|h| h.auth_kind.as_str().to_string())
                .unwrap_or_else(|| "api_key".into())
        }
    };
    let keep = l.t(
        "Leave empty to keep the stored one, unless the base URL moves to another scheme, host or port: stored secrets are never sent to a new origin, so they must be entered again",
        "留空则保留已保存的值；若基础地址换到其他协议、主机或端口，已保存的密钥不会发往新地址，须重新输入",
    );
    view! {
        <form method="post" action=action class="card form wide" data-testid="host-form">
            <Csrf/>
            <Field name="name" label=l.t("Name", "名称") required=true maxlength=100 value=get(|h| h.name.clone())
                hint=l.t("How operators will call this host, e.g. prod-cn", "给这台主机起个名字，如 prod-cn")/>
            <Field name="base_url" label=l.t("Base URL", "基础地址") required=true maxlength=500 value=get(|h| h.base_url.clone())
                hint=l.t("The Sub2API server root, e.g. https://gateway.example.com", "Sub2API 服务根地址，如 https://gateway.example.com")/>
            // Only the chosen method's fields show: a stylesheet rule on the
            // selected option, so it works without JavaScript too.
            <fieldset class="auth">
                <legend>{l.t("Admin sign-in", "管理员认证")}</legend>
                <label class="field">
                    <span>{l.t("Method", "方式")}</span>
                    <select name="auth_kind">
                        <option value="api_key" selected=kind == "api_key">{l.t("Admin API key (x-api-key)", "管理员 API 密钥（x-api-key）")}</option>
                        <option value="password" selected=kind == "password">{l.t("Admin email and password", "管理员邮箱和密码")}</option>
                    </select>
                </label>
                <div class="cred-api_key">
                <Field name="admin_api_key" kind="password" label=l.t("Admin API key", "管理员 API 密钥") maxlength=4096
                    hint=if editing { keep } else { l.t("admin- followed by 64 hex digits; host panel → Settings → Admin API key", "admin- 加 64 位十六进制；主机后台 → 设置 → 管理员 API 密钥") }/>
                </div>
                <div class="cred-password">
                <Field name="admin_email" label=l.t("Admin email", "管理员邮箱") maxlength=200
                    value=existing.as_ref().filter(|h| h.auth_kind == AdminAuthKind::Password).map(|h| h.admin_credential_hint.clone()).unwrap_or_default()/>
                <Field name="admin_password" kind="password" label=l.t("Admin password", "管理员密码") maxlength=4096
                    hint=if editing { keep } else { "" }/>
                </div>
            </fieldset>
            <fieldset>
                <legend>{l.t("Probe user (optional)", "探测用户（可选）")}</legend>
                <p class="muted small">{l.t(
                    "An ordinary user of the host. Readiness is proven with this user's key through the gateway.",
                    "主机上的普通用户。就绪检查会用该用户的密钥经网关验证。",
                )}</p>
                <Field name="probe_user_email" label=l.t("Email", "邮箱") maxlength=200 value=get(|h| h.probe_user_email.clone().unwrap_or_default())/>
                <Field name="probe_user_password" kind="password" label=l.t("Password", "密码") maxlength=4096
                    hint=if editing { keep } else { "" }/>
            </fieldset>
            <p class="muted small">{l.t(
                "Before saving, the dashboard calls the host to check that it answers and accepts the admin credential. Secrets are encrypted at rest and never shown again.",
                "保存前会连接主机，确认其可达且接受管理员凭据。密钥加密存储，之后不再完整显示。",
            )}</p>
            <button type="submit" class="primary">{if editing { l.t("Save", "保存") } else { l.t("Add host", "添加主机") }}</button>
        </form>
    }
}

#[component]
pub fn NewHostPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    view! {
        <Layout>
            <h1>{l.t("Add a host", "添加主机")}</h1>
            {if ctx.can(Role::Operator) {
                view! { <HostForm action="/hosts/new".to_string() existing=None/> }.into_any()
            } else {
                view! { <p class="flash error">{l.t("Your role cannot add hosts (operator or admin needed).", "你的角色不能添加主机（需要 operator 或 admin）。")}</p> }.into_any()
            }}
        </Layout>
    }
}

#[component]
pub fn EditHostPage() -> impl IntoView {
    let l = page_ctx().lang;
    let id = host_id();
    let data = Resource::new(id, host_detail);
    view! {
        <Layout>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(d) => view! {
                            <h1>{format!("{} {}", l.t("Edit", "编辑"), d.host.name)}</h1>
                            <HostForm action=format!("/hosts/{}/edit", d.host.id) existing=Some(d.host.clone())/>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
pub fn DeleteHostPage() -> impl IntoView {
    let l = page_ctx().lang;
    let id = host_id();
    let data = Resource::new(id, host_detail);
    view! {
        <Layout>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(d) => view! {
                            <h1>{format!("{} {}?", l.t("Remove", "移除"), d.host.name)}</h1>
                            <div class="card danger">
                                <p>{l.t(
                                    "This removes the host, its stored credentials and its probe history from the dashboard. Nothing on the host itself is changed.",
                                    "这会从本系统删除该主机、其保存的凭据和探测历史。主机本身不会有任何改动。",
                                )}</p>
                                <form method="post" action=format!("/hosts/{}/delete", d.host.id)>
                                    <Csrf/>
                                    <label class="field">
                                        <span>{l.t("Type the host name to confirm", "输入主机名称以确认")}</span>
                                        <input type="text" name="confirm" required=true maxlength="100" autocomplete="off"/>
                                    </label>
                                    <button type="submit" class="danger">{l.t("Remove host", "移除主机")}</button>
                                    " "
                                    <a href=format!("/hosts/{}", d.host.id)>{l.t("Cancel", "取消")}</a>
                                </form>
                            </div>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
pub fn HostPage() -> impl IntoView {
    let l = page_ctx().lang;
    let id = host_id();
    let data = Resource::new(id, host_detail);
    view! {
        <Layout>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(d) => view! { <HostDetailView detail=d/> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn HostDetailView(detail: HostDetailData) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let h = detail.host.clone();
    let id = h.id;
    view! {
        <div class="title-row">
            <h1>{h.name.clone()}</h1>
            <div class="actions">
                {ctx.can(Role::Operator).then(|| view! {
                    <form method="post" action=format!("/hosts/{id}") class="inline">
                        <Csrf/>
                        <input type="hidden" name="action" value="probe"/>
                        <button type="submit" class="primary" data-testid="probe">{l.t("Probe now", "立即探测")}</button>
                    </form>
                    <a class="button" href=format!("/hosts/{id}/edit")>{l.t("Edit", "编辑")}</a>
                })}
                <a class="button" href=format!("/hosts/{id}/accounts") data-testid="accounts-link">{l.t("Accounts", "账号")}</a>
                <a class="button" href=format!("/hosts/{id}/drift") data-testid="drift">{l.t("Drift", "漂移")}</a>
                {ctx.can(Role::Admin).then(|| view! {
                    <a class="button danger" href=format!("/hosts/{id}/delete")>{l.t("Remove", "移除")}</a>
                })}
            </div>
        </div>
        <dl class="facts">
            <dt>{l.t("Base URL", "基础地址")}</dt><dd><code>{h.base_url.clone()}</code></dd>
            <dt>{l.t("Admin credential", "管理员凭据")}</dt>
            <dd><code>{h.admin_credential_hint.clone()}</code>" "<span class="muted">{match h.auth_kind {
                AdminAuthKind::ApiKey => l.t("(admin API key)", "（管理员 API 密钥）"),
                AdminAuthKind::Password => l.t("(email and password)", "（邮箱和密码）"),
            }}</span></dd>
            <dt>{l.t("Probe user", "探测用户")}</dt><dd>{match h.probe_user_email.clone() {
                Some(e) => view! { <code>{e}</code> }.into_any(),
                None => l.t("none", "无").into_any(),
            }}</dd>
            <dt>{l.t("Registered", "登记时间")}</dt><dd>{when(h.created_at_ms)}</dd>
            <dt>{l.t("Four eyes", "双人复核")}</dt><dd data-testid="host-protected" data-protected=h.protected.to_string()>
                {if h.protected {
                    view! { <span class="badge warn">{l.t("protected", "受保护")}</span>" "<span class="muted small">{l.t("an apply or a rollback needs a second person's approval", "执行或回滚需要第二个人批准")}</span> }.into_any()
                } else {
                    view! { <span class="muted">{l.t("not protected: an operator applies and rolls back alone", "未受保护：操作员可独自执行和回滚")}</span> }.into_any()
                }}
                {ctx.can(Role::Admin).then(|| view! {
                    " "
                    <form method="post" action=format!("/hosts/{id}") class="inline">
                        <Csrf/>
                        <input type="hidden" name="action" value=if h.protected { "unprotect" } else { "protect" }/>
                        <button type="submit" data-testid="protect-toggle">{if h.protected { l.t("Stop protecting", "取消保护") } else { l.t("Protect (four eyes)", "设为受保护（双人复核）") }}</button>
                    </form>
                })}
            </dd>
        </dl>
        {match detail.latest {
            None => view! {
                <div class="empty"><p>{l.t("Never probed. Probe the host to see its version, capabilities and anything that blocks provisioning.", "尚未探测。探测后可看到版本、能力矩阵以及妨碍开通的问题。")}</p></div>
            }.into_any(),
            Some(rec) => {
                let gate = match &rec.report.compliance {
                    ComplianceState::Required { version, document_url, phrase } => Some((version.clone(), document_url.clone(), phrase.clone())),
                    _ => None,
                };
                let key_offer = gate.is_none() && h.auth_kind == AdminAuthKind::Password && rec.report.admin_auth == AdminAuthState::Ok;
                view! {
                    {gate.map(|(version, url, phrase)| view! { <ComplianceBox host_id=id version=version url=url phrase=phrase/> })}
                    {(key_offer && ctx.can(Role::Admin)).then(|| view! { <AdminKeyBox host_id=id/> })}
                    <ProbeView rec=rec/>
                }.into_any()
            }
        }}
        <section>
            <h2>{l.t("Probe history", "探测历史")}</h2>
            {if detail.history.is_empty() {
                view! { <p class="empty">{l.t("No probes yet.", "暂无探测。")}</p> }.into_any()
            } else {
                view! {
                    <table class="grid" data-testid="history">
                        <thead><tr>
                            <th>{l.t("When", "时间")}</th>
                            <th>{l.t("Status", "状态")}</th>
                            <th>{l.t("Version", "版本")}</th>
                            <th>{l.t("Latency", "延迟")}</th>
                            <th>{l.t("Summary", "摘要")}</th>
                        </tr></thead>
                        <tbody>
                            {detail.history.into_iter().map(|p| view! {
                                <tr>
                                    <td class="nowrap">{when(p.at_ms)}</td>
                                    <td><StatusBadge status=p.status/></td>
                                    <td>{p.version.clone().unwrap_or_default()}</td>
                                    <td>{p.latency_ms.map(|ms| format!("{ms} ms")).unwrap_or_default()}</td>
                                    <td>{crate::i18n::headline(l, &p)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <section>
            <super::watch::ScheduleSection host_id=id/>
        </section>
    }
}

/// The host's compliance text and, for an admin, accepting it by typing the
/// host's phrase (the probe then runs again).
#[component]
fn ComplianceBox(
    host_id: i64,
    version: String,
    url: Option<String>,
    phrase: Option<String>,
) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let err = ctx.field_error("phrase");
    view! {
        <section class="panel" data-testid="compliance-box">
            <h2>{l.t("Compliance text to accept", "待确认的合规承诺")}" "<span class="muted small">{version}</span></h2>
            <p>{l.t("The host locks its admin API (HTTP 423) until an administrator accepts its deployment and operation compliance commitment. Read it first:", "在管理员确认其部署与运营合规承诺前，主机会锁定管理 API（HTTP 423）。请先阅读：")}" "
                {match url {
                    Some(u) => { let href = u.clone(); view! { <a href=href rel="external noopener" target="_blank" data-testid="compliance-doc">{u}</a> }.into_any() }
                    None => view! { <span class="muted">{l.t("(the host gives no link; read it in its admin panel)", "（主机未提供链接，请在其管理后台阅读）")}</span> }.into_any(),
                }}
            </p>
            {phrase.clone().map(|p| view! {
                <p>{l.t("To accept, type the host's phrase:", "如确认，请输入主机给出的确认语：")}</p>
                <pre class="evidence" data-testid="compliance-phrase">{p}</pre>
            })}
            {if ctx.can(Role::Admin) {
                view! {
                    <form method="post" action=format!("/hosts/{host_id}") class="stack">
                        <Csrf/>
                        <input type="hidden" name="action" value="accept_compliance"/>
                        <label>{l.t("Phrase", "确认语")}
                            <input type="text" name="phrase" autocomplete="off" required value=ctx.value("phrase") data-testid="compliance-input"/>
                        </label>
                        {err.map(|e| view! { <p class="field-error">{e}</p> })}
                        <p class="muted small">{l.t("This is a commitment by your organisation. It is recorded in the audit log with your name, the text's version and the phrase.", "这是贵组织作出的承诺，将连同你的用户名、文本版本和确认语记入审计日志。")}</p>
                        <button type="submit" class="primary" data-testid="compliance-accept">{l.t("Accept and probe again", "确认并重新探测")}</button>
                    </form>
                }.into_any()
            } else {
                view! { <p class="muted">{l.t("Only an administrator can accept it.", "仅管理员可以确认。")}</p> }.into_any()
            }}
        </section>
    }
}

/// For a host signed in with an admin password: obtain the installation's
/// admin API key (replaces any existing one), shown once.
#[component]
fn AdminKeyBox(host_id: i64) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    view! {
        <section class="panel" data-testid="admin-key-box">
            <h2>{l.t("Admin API key", "管理员 API 密钥")}</h2>
            <p>{l.t("The product signs in to this host with an admin email and password. It can obtain the host's admin API key instead (recommended for server-to-server use). The host has one key per installation: a new one replaces any existing key, and tools using the old one stop working.", "本产品目前用管理员邮箱和密码登录该主机，也可以改为获取主机的管理员 API 密钥（推荐用于服务间调用）。每个主机只有一个密钥：新密钥会替换旧密钥，使用旧密钥的工具将失效。")}</p>
            {ctx.field_error("confirm").map(|e| view! { <p class="field-error">{e}</p> })}
            <form method="post" action=format!("/hosts/{host_id}") class="inline">
                <Csrf/>
                <input type="hidden" name="action" value="obtain_admin_key"/>
                <label class="small"><input type="checkbox" name="confirm" value="yes" required data-testid="admin-key-confirm"/>{l.t(" replace any existing admin key", " 替换现有的管理员密钥")}</label>
                " "<button type="submit" data-testid="admin-key-obtain">{l.t("Obtain the admin API key", "获取管理员 API 密钥")}</button>
            </form>
        </section>
    }
}

fn yes_no(l: Lang, v: Option<bool>) -> &'static str {
    match v {
        Some(true) => l.t("on", "开启"),
        Some(false) => l.t("off", "关闭"),
        None => l.t("unknown", "未知"),
    }
}

#[component]
fn ProbeView(rec: ProbeRecord) -> impl IntoView {
    let l = page_ctx().lang;
    let r = rec.report;
    let admin = match &r.admin_auth {
        AdminAuthState::Ok => l.t("accepted", "已接受").to_string(),
        AdminAuthState::Rejected { code } => format!("{} ({code})", l.t("refused", "被拒绝")),
        AdminAuthState::Needs2fa => l.t("needs two-factor sign-in", "需要两步验证").to_string(),
        AdminAuthState::Unknown { reason } => format!("{}: {reason}", l.t("unknown", "未知")),
    };
    let compliance = match &r.compliance {
        ComplianceState::Absent => l.t("no gate on this host", "该主机无合规门槛").to_string(),
        ComplianceState::Accepted { version } => format!("{} {version}", l.t("accepted", "已确认")),
        ComplianceState::Required { version, .. } => format!(
            "{} {version} (HTTP 423)",
            l.t("acceptance required", "需要确认")
        ),
        ComplianceState::Unknown => l.t("unknown", "未知").to_string(),
    };
    let probe_user = match &r.probe_user {
        ProbeUserState::NotConfigured => l.t("not configured", "未配置").to_string(),
        ProbeUserState::Ok => l.t("signs in", "可登录").to_string(),
        ProbeUserState::Failed { code, .. } => {
            format!("{} ({code})", l.t("sign-in refused", "登录被拒绝"))
        }
        ProbeUserState::Blocked { reason } => format!("{}: {reason}", l.t("blocked", "受阻")),
        ProbeUserState::Unknown => l.t("unknown", "未知").to_string(),
    };
    view! {
        <section class="probe" data-testid="probe-result">
            <h2>
                {l.t("Latest probe", "最近探测")}" "<StatusBadge status=r.status/>
                " "<span class="muted small">{format!("{} · {} {}", when(rec.at_ms), l.t("by", "操作员"), rec.actor)}</span>
            </h2>
            {(!r.findings.is_empty()).then(|| view! {
                <ul class="findings" data-testid="findings">
                    {r.findings.iter().map(|f| {
                        let class = match f.severity {
                            Severity::Blocker => "finding bad",
                            Severity::Warning => "finding warn",
                            Severity::Info => "finding info",
                        };
                        // In Chinese by its code, the host's own words kept; a
                        // finding stored before it had them shows its English.
                        let message = crate::i18n::finding_message(l, &f.code, &f.detail, &f.message);
                        let action = match (l, crate::i18n::finding_zh(&f.code)) {
                            (Lang::Zh, Some((_, a))) => a.to_string(),
                            _ => f.action.clone(),
                        };
                        view! {
                            <li class=class data-code=f.code.clone()>
                                <b>{message}</b>
                                {(!action.is_empty()).then(|| view! { <p class="action">{l.t("What to do: ", "处理办法：")}{action}</p> })}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
            <dl class="facts">
                <dt>{l.t("Reachable", "可达")}</dt><dd>{if r.reachable { l.t("yes", "是") } else { l.t("no", "否") }}</dd>
                <dt>{l.t("Latency", "延迟")}</dt><dd>{r.latency_ms.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "—".into())}</dd>
                <dt>{l.t("Version", "版本")}</dt><dd data-testid="version">{r.version.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>{l.t("Admin credential", "管理员凭据")}</dt><dd>{admin}</dd>
                <dt>{l.t("Compliance gate", "合规确认")}</dt><dd data-testid="compliance">{compliance}</dd>
                <dt>{l.t("Backend mode", "后台模式")}</dt><dd>{yes_no(l, r.backend_mode)}</dd>
                <dt>{l.t("Captcha", "验证码")}</dt><dd>{yes_no(l, r.captcha)}</dd>
                <dt>{l.t("Gateway /v1", "网关 /v1")}</dt><dd>{match r.gateway_reachable {
                    Some(true) => l.t("answers", "可用"),
                    Some(false) => l.t("does not answer", "不可用"),
                    None => l.t("not checked", "未检查"),
                }}</dd>
                <dt>{l.t("Probe user", "探测用户")}</dt><dd>{probe_user}</dd>
            </dl>
            <h3>{l.t("Capability matrix", "能力矩阵")}</h3>
            <table class="grid" data-testid="capabilities">
                <thead><tr>
                    <th>{l.t("Capability", "能力")}</th>
                    <th>{l.t("Supported", "支持")}</th>
                    <th>{l.t("Evidence", "依据")}</th>
                </tr></thead>
                <tbody>
                    {r.capabilities.iter().map(|c| view! {
                        <tr data-capability=c.key.clone()>
                            <td>{capability_label(l, &c.key)}</td>
                            <td><SupportBadge support=c.support/></td>
                            <td class="muted"><code>{c.evidence.clone()}</code></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

fn capability_label(l: Lang, key: &str) -> String {
    match key {
        "channels" => l.t("Channels (pricing, mapping)", "渠道（定价、映射）"),
        "cn_platforms" => l.t(
            "Native CN platforms (deepseek, kimi, zhipu)",
            "原生国产平台（deepseek、kimi、zhipu）",
        ),
        "compliance_gate" => l.t("Compliance gate", "合规门槛"),
        "subscriptions" => l.t("Subscriptions", "订阅"),
        "plans" => l.t("Subscription plans", "订阅套餐"),
        "credential_redaction" => l.t("Credential redaction", "凭据脱敏"),
        "model_allowlist" => l.t(
            "Group model allowlist, enforced (v0.2)",
            "分组模型白名单（强制，v0.2）",
        ),
        "group_model_list" => l.t("Group model list", "分组模型列表"),
        "group_model_pricing" => l.t(
            "Group price cards (outrank channel)",
            "分组定价（优先于渠道）",
        ),
        "chat_completions_passthrough" => l.t(
            "Chat completions on the openai platform",
            "openai 平台直通 Chat Completions",
        ),
        "idempotency_keys" => l.t("Idempotency keys", "幂等键"),
        "batch_create" => l.t("Batch account create", "批量创建账号"),
        "admin_key_binding" => l.t("Admin key re-binding", "管理员改绑密钥"),
        "cn_account_test" => l.t("CN account test", "国产账号测试"),
        "minimax_platform" => l.t("MiniMax platform", "MiniMax 平台"),
        _ => return key.to_string(),
    }
    .to_string()
}

/// Every account the product created or adopted on a host, newest first,
/// found by key mask or fingerprint, 50 to a page.
#[component]
pub fn HostAccountsPage() -> impl IntoView {
    let l = page_ctx().lang;
    let id = host_id();
    let query = use_query_map();
    let key = move || {
        let q = query.read();
        (
            id(),
            q.get("q").unwrap_or_default(),
            q.get("before").and_then(|b| b.parse::<i64>().ok()),
        )
    };
    let data = Resource::new(key, |(id, q, before)| host_accounts(id, q, before));
    view! {
        <Layout>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(a) => view! { <AccountsTable accounts=a/> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn AccountsTable(accounts: provisioning_core::model::HostAccounts) -> impl IntoView {
    use provisioning_core::model::{Role, StepState};
    let ctx = page_ctx();
    let l = ctx.lang;
    let can_replace = ctx.can(Role::Operator);
    let a = accounts;
    let base = format!("/hosts/{}/accounts", a.host_id);
    let next = a.next_before.map(|n| {
        format!(
            "{base}?q={}&before={n}",
            provisioning_core::model::urlencode(&a.q)
        )
    });
    view! {
        <div class="title-row">
            <h1>{l.t("Accounts on ", "账号：")}<a href=format!("/hosts/{}", a.host_id)>{a.host_name.clone()}</a></h1>
        </div>
        <p class="muted">{l.t(
            "Every upstream account this product created or adopted on the host, from its ledger and journal (the drift check compares them with the host).",
            "本产品在该主机上创建或接管的每个上游账号，来自其台账和日志（漂移检查会与主机比对）。",
        )}</p>
        <form method="get" action=base.clone() class="inline search" data-testid="account-search">
            <label class="field">
                <span>{l.t("Key mask or fingerprint", "密钥掩码或指纹")}</span>
                <input type="search" name="q" value=a.q.clone() maxlength="100" placeholder="sk-d…0001 / fp1:3a9c"/>
                <small class="hint">{l.t("Any part of the mask, or the start of the fingerprint. Never paste a full key here: it would end up in the address bar.", "掩码的任意部分，或指纹的开头。请勿在此粘贴完整密钥：它会出现在地址栏中。")}</small>
            </label>
            <button type="submit">{l.t("Find", "查找")}</button>
            {(!a.q.is_empty()).then(|| view! { " " <a href=base.clone()>{l.t("Show all", "显示全部")}</a> })}
        </form>
        <p class="small" data-testid="account-count">{if a.q.is_empty() {
            format!("{} {}", a.total, l.t("account(s)", "个账号"))
        } else {
            format!("{} / {} {}", a.matched, a.total, l.t("account(s) match", "个账号匹配"))
        }}</p>
        {if a.items.is_empty() {
            view! { <p class="empty">{if a.total == 0 {
                l.t("No account yet: import a batch of keys to create some.", "还没有账号：导入一批密钥即可创建。")
            } else {
                l.t("No account matches.", "没有匹配的账号。")
            }}</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                <table class="grid" data-testid="accounts">
                    <thead><tr>
                        <th>{l.t("Key", "密钥")}</th>
                        <th>{l.t("Account on host", "主机上的账号")}</th>
                        <th>{l.t("Batch", "批次")}</th>
                        <th>{l.t("Provider · platform", "供应商 · 平台")}</th>
                        <th>{l.t("In the ledger", "台账状态")}</th>
                        <th>{l.t("Schedulable (as last set here)", "可调度（本产品最后设置）")}</th>
                        <th>{l.t("Last account test", "最近一次账号测试")}</th>
                        {can_replace.then(|| view! { <th>{l.t("Actions", "操作")}</th> })}
                    </tr></thead>
                    <tbody>
                        {a.items.into_iter().map(|r| {
                            let test = match &r.last_test {
                                None => view! { <span class="muted">{l.t("never tested", "从未测试")}</span> }.into_any(),
                                Some((st, at, err)) => {
                                    let (class, text) = match st {
                                        StepState::Done => ("badge ok", l.t("passed", "通过")),
                                        StepState::Failed => ("badge bad", l.t("failed", "失败")),
                                        StepState::Skipped => ("badge muted", l.t("skipped", "跳过")),
                                        StepState::Pending | StepState::Sent => ("badge warn", l.t("not finished", "未完成")),
                                        StepState::Unknown => ("badge warn", l.t("unknown", "未知")),
                                    };
                                    view! {
                                        <span class=class data-test-state=st.as_str()>{text}</span>
                                        <span class="muted small">{at.map(|t| format!(" {}", when(t))).unwrap_or_default()}</span>
                                        {(!err.is_empty()).then(|| view! { <div class="small">{super::batches::step_error(l, err)}</div> })}
                                    }.into_any()
                                }
                            };
                            view! {
                                <tr data-testid="account-row">
                                    <td class="nowrap"><code>{r.masked.clone().unwrap_or_else(|| "—".into())}</code>
                                        {r.fingerprint.clone().map(|f| {
                                            // The start is what a search takes; the whole is in the title.
                                            let short = if f.chars().count() > 20 { format!("{}…", f.chars().take(20).collect::<String>()) } else { f.clone() };
                                            view! { <div class="muted small mono" title=f>{short}</div> }
                                        })}</td>
                                    <td><code>{format!("#{}", r.remote_id)}</code></td>
                                    <td>{r.batch_id.map(|b| view! { <a href=format!("/batches/{b}")>{format!("#{b}")}</a> })}</td>
                                    <td>{format!("{} · {}", r.provider_key, r.platform.clone().unwrap_or_else(|| "—".into()))}</td>
                                    <td><span class=if r.status == "active" { "badge ok" } else { "badge muted" } data-ledger=r.status.clone()>{match r.status.as_str() {
                                        "active" => l.t("on the host", "在主机上"),
                                        "rolled_back" => l.t("removed by this product", "已由本产品删除"),
                                        _ => l.t("gone from the host", "已从主机消失"),
                                    }}</span></td>
                                    <td>{match r.schedulable {
                                        None => l.t("yes (as created)", "是（创建时）").to_string(),
                                        Some((true, at)) => format!("{} {}", l.t("yes, resumed", "是，已恢复"), when(at)),
                                        Some((false, at)) => format!("{} {}", l.t("no, paused", "否，已暂停"), when(at)),
                                    }}</td>
                                    <td>{test}</td>
                                    {can_replace.then(|| view! { <td class="nowrap">{(r.status == "active").then(|| r.batch_id.map(|b| view! {
                                        <a href=format!("/batches/{b}/replace?account={}", r.ledger_id) data-testid="replace-account-link">{l.t("Replace key…", "替换密钥…")}</a>
                                    })).flatten()}</td> })}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                </div>
                {next.map(|n| view! { <p class="pager"><a href=n data-testid="next-accounts">{l.t("Older accounts →", "更早的账号 →")}</a></p> })}
            }.into_any()
        }}
    }
}
