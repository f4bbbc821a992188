//! Sign-in and first-admin setup.

use super::widgets::*;
use crate::page::page_ctx;
use leptos::prelude::*;

#[component]
pub fn SignInPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    view! {
        <div class="centered">
            <h1>{l.t("Sign in", "登录")}</h1>
            <p class="muted">{l.t("Sub2API CN Relay Manager", "Sub2API 国产模型中转管家")}</p>
            <FlashBanner/>
            <form method="post" action="/login" class="card form">
                <Csrf/>
                <label class="field">
                    <span>{l.t("Username", "用户名")}</span>
                    <input type="text" name="username" required=true maxlength="64" autocomplete="username" value=ctx.value("username")/>
                </label>
                <label class="field">
                    <span>{l.t("Password", "密码")}</span>
                    <input type="password" name="password" required=true maxlength="256" autocomplete="current-password"/>
                </label>
                <button type="submit" class="primary">{l.t("Sign in", "登录")}</button>
            </form>
            <p class="muted small">
                <a class="lang" rel="external" href=format!("/lang?to={}", if l == crate::i18n::Lang::En { "zh" } else { "en" })>
                    {l.t("中文", "English")}
                </a>
            </p>
        </div>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let l = page_ctx().lang;
    view! {
        <div class="centered">
            <h1>{l.t("Create the first admin", "创建首个管理员")}</h1>
            <p class="muted">
                {l.t(
                    "No operator exists yet. Enter the one-time setup token printed in the server log at start, then choose the admin's username and password. (Or, on the server, run `bash scripts/run.sh user create --username NAME --role admin` from the clone, or `dashboard user create …` where the binary is installed, as in the container image.)",
                    "尚无操作员。请输入服务启动时日志中打印的一次性设置令牌，然后设置管理员的用户名和密码。（也可在服务器的代码目录中运行 `bash scripts/run.sh user create --username NAME --role admin`，或在已安装二进制的环境（如容器镜像）中运行 `dashboard user create …`。）",
                )}
            </p>
            <FlashBanner/>
            <form method="post" action="/setup" class="card form">
                <Csrf/>
                <Field name="token" label=l.t("Setup token", "设置令牌") required=true maxlength=128/>
                <Field name="username" label=l.t("Admin username", "管理员用户名") required=true maxlength=64
                    hint=l.t("3–64 letters, digits, . _ - @", "3–64 个字母、数字或 . _ - @")/>
                <Field name="password" kind="password" label=l.t("Password", "密码") required=true maxlength=256
                    hint=l.t("At least 12 characters", "至少 12 个字符")/>
                <button type="submit" class="primary">{l.t("Create admin", "创建管理员")}</button>
            </form>
        </div>
    }
}
