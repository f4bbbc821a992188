//! Layout and small shared pieces.

use crate::api::{AppError, ErrorKind};
use crate::i18n::Lang;
use crate::page::page_ctx;
use leptos::prelude::*;
use provisioning_core::model::{ProbeStatus, Role, Support};

/// The frame of every signed-in page: navigation, who is signed in, the
/// language switch, sign-out, and the message from the last form.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let is_admin = ctx.can(Role::Admin);
    let other = match l {
        Lang::En => ("zh", "中文"),
        Lang::Zh => ("en", "English"),
    };
    let who = ctx.operator.clone();
    view! {
        <header class="top">
            <a class="brand" href="/">{l.t("Sub2API CN Relay Manager", "Sub2API 国产模型中转管家")}</a>
            <nav>
                <a href="/">{l.t("Overview", "总览")}</a>
                <a href="/hosts">{l.t("Hosts", "主机")}</a>
                <a href="/packs">{l.t("Packs", "模板包")}</a>
                <a href="/batches">{l.t("Batches", "批次")}</a>
                <a href="/reviews">{l.t("Reviews", "审核")}</a>
                <a href="/audit">{l.t("Audit log", "审计日志")}</a>
                <a href="/webhooks">{l.t("Webhooks", "Webhook")}</a>
                {is_admin.then(|| view! { <a href="/operators">{l.t("Operators", "操作员")}</a><a href="/tokens">{l.t("API tokens", "API 令牌")}</a> })}
            </nav>
            <div class="who">
                <a class="lang" rel="external" href=format!("/lang?to={}", other.0)>{other.1}</a>
                {who.map(|o| {
                    view! {
                        <a class="user" href="/account" data-testid="who" title=l.t("Your account", "我的账号")>{o.username.clone()}" · "<span class="role">{o.role.as_str()}</span></a>
                        <form method="post" action="/logout" class="inline">
                            <input type="hidden" name="_csrf" value=ctx.csrf.clone()/>
                            <button type="submit" class="link">{l.t("Sign out", "退出")}</button>
                        </form>
                    }
                })}
            </div>
        </header>
        <main>
            <FlashBanner/>
            {children()}
        </main>
        <footer>{format!("v{}", ctx.product_version)}</footer>
    }
}

/// The message from the last form submission, if any.
#[component]
pub fn FlashBanner() -> impl IntoView {
    page_ctx().flash.map(|f| {
        let class = if f.ok { "flash ok" } else { "flash error" };
        let details = f.details.clone();
        let once = f.shown_once.clone();
        view! {
            <div class=class role="alert" data-testid="flash">
                {f.message}
                {once.map(|k| view! { <pre class="evidence" data-testid="shown-once">{k}</pre> })}
                {(!details.is_empty()).then(|| view! {
                    <ul class="issues" data-testid="issues">
                        {details.into_iter().map(|d| view! { <li>{d}</li> }).collect_view()}
                    </ul>
                })}
            </div>
        }
    })
}

/// The hidden CSRF field every form carries.
#[component]
pub fn Csrf() -> impl IntoView {
    view! { <input type="hidden" name="_csrf" value=page_ctx().csrf/> }
}

/// A labelled text input that refills itself after an error and shows the
/// error about its field.
#[component]
pub fn Field(
    name: &'static str,
    label: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional, into)] value: String,
    #[prop(optional)] hint: &'static str,
    #[prop(optional)] required: bool,
    #[prop(default = 200)] maxlength: u32,
) -> impl IntoView {
    let ctx = page_ctx();
    let refill = ctx.value(name);
    let value = if kind == "password" {
        String::new()
    } else if refill.is_empty() {
        value
    } else {
        refill
    };
    let err = ctx.field_error(name);
    let class = if err.is_some() {
        "field invalid"
    } else {
        "field"
    };
    view! {
        <label class=class>
            <span>{label}</span>
            <input
                type=kind
                name=name
                value=value
                required=required
                maxlength=maxlength.to_string()
                autocomplete=if kind == "password" { "new-password" } else { "off" }
            />
            {(!hint.is_empty()).then(|| view! { <small class="hint">{hint}</small> })}
            {err.map(|e| view! { <small class="field-error" data-testid=format!("error-{name}")>{e}</small> })}
        </label>
    }
}

/// A coloured badge for a probe status.
#[component]
pub fn StatusBadge(status: ProbeStatus) -> impl IntoView {
    let l = page_ctx().lang;
    let (class, text) = match status {
        ProbeStatus::Ok => ("badge ok", l.t("ready", "就绪")),
        ProbeStatus::Warning => ("badge warn", l.t("warning", "警告")),
        ProbeStatus::Failing => ("badge bad", l.t("failing", "失败")),
    };
    view! { <span class=class data-status=status.as_str()>{text}</span> }
}

/// A badge for a capability.
#[component]
pub fn SupportBadge(support: Support) -> impl IntoView {
    let l = page_ctx().lang;
    let (class, text) = match support {
        Support::Yes => ("badge ok", l.t("yes", "支持")),
        Support::No => ("badge bad", l.t("no", "不支持")),
        Support::Unknown => ("badge muted", l.t("unknown", "未知")),
    };
    view! { <span class=class data-support=support.as_str()>{text}</span> }
}

/// Shows a server-function error with what to do about it.
#[component]
pub fn ErrorBox(err: AppError) -> impl IntoView {
    let l = page_ctx().lang;
    set_status(match err.kind {
        ErrorKind::Unauthorized => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::Invalid => 400,
        ErrorKind::Internal => 500,
    });
    let hint = match err.kind {
        ErrorKind::Unauthorized => Some(view! { <a href="/login">{l.t("Sign in again", "重新登录")}</a> }.into_any()),
        ErrorKind::Forbidden => Some(
            view! { <span>{l.t("Ask an admin for a role that allows this.", "请联系管理员授予相应角色。")}</span> }.into_any(),
        ),
        _ => None,
    };
    // The server function's message is English; a Chinese reader gets the
    // kind in Chinese and the message kept as it is, as code.
    let message = match l {
        Lang::Zh => {
            let kind = match err.kind {
                ErrorKind::Unauthorized => "你已退出登录。",
                ErrorKind::Forbidden => "你的角色无权查看此内容。",
                ErrorKind::NotFound => "未找到：",
                ErrorKind::Invalid => "请求有误：",
                ErrorKind::Internal => "服务器内部错误（详情见服务器日志）：",
            };
            view! { {kind}<code class="host-words">{err.message}</code> }.into_any()
        }
        Lang::En => view! { {err.message} }.into_any(),
    };
    view! {
        <div class="flash error" role="alert" data-testid="error">
            <strong>{message}</strong>
            " "
            {hint}
        </div>
    }
}

/// The HTTP status of the page being rendered on the server: a page whose
/// data is missing answers 404, not 200 with an error box. (Pages render
/// completely before the response starts, so the status still applies.)
pub fn set_status(_code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(res), Ok(code)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        axum::http::StatusCode::from_u16(_code),
    ) {
        res.set_status(code);
    }
}

/// A placeholder while data loads (shown only after hydration; the server
/// renders pages complete).
pub fn loading(l: Lang) -> impl IntoView {
    view! { <p class="muted">{l.t("Loading…", "加载中…")}</p> }
}

/// Formats unix milliseconds for display.
pub fn when(ms: i64) -> String {
    provisioning_core::model::format_ms(ms)
}

/// An access mode in words (`self_service`, `subscription`).
pub fn mode_word(l: Lang, m: provisioning_core::model::AccessMode) -> &'static str {
    match m {
        provisioning_core::model::AccessMode::SelfService => {
            l.t("self-service (balance)", "自助（按余额）")
        }
        provisioning_core::model::AccessMode::Subscription => l.t("subscription", "订阅"),
    }
}

/// An audit outcome in words; one this table does not know stays as the
/// code it is.
pub fn outcome_word(l: Lang, outcome: &str) -> String {
    let zh = match outcome {
        "ok" => "成功",
        "failed" => "失败",
        "started" => "已开始",
        "planned" => "已规划",
        "denied" => "被拒绝（角色）",
        "invalid" => "输入无效",
        "conflict" => "冲突",
        "not_found" => "不存在",
        "throttled" => "已限流",
        "succeeded" => "成功",
        "partially_succeeded" => "部分成功",
        "rolled_back" => "已回滚",
        "rollback_failed" => "回滚失败",
        "discarded" => "已放弃",
        "done" => "完成",
        _ => return outcome.to_string(),
    };
    match l {
        Lang::Zh => zh.to_string(),
        _ => outcome.to_string(),
    }
}
