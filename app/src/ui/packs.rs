//! Packs: the list with the upload form, and one version with its
//! providers, prices, source text and the diff to another version.

use super::widgets::*;
use crate::api::{list_packs, pack_detail};
use crate::page::page_ctx;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use provisioning_core::model::{Currency, Role};

#[component]
pub fn PacksPage() -> impl IntoView {
    let ctx = page_ctx();
    let l = ctx.lang;
    let can_upload = ctx.can(Role::Operator);
    let packs = Resource::new(|| (), |_| list_packs());
    let source = ctx.value("source");
    view! {
        <Layout>
            <h1>{l.t("Packs", "模板包")}</h1>
            <p class="muted">{l.t(
                "A pack describes providers: how to reach them, their models with prices (currency, source, date), the smoke-test model, channel policy, group template and default access mode. Versions are immutable and identified by the hash of their content.",
                "模板包描述供应商：接入方式、模型与价格（币种、来源、日期）、冒烟测试模型、渠道策略、分组模板和默认开通方式。版本不可变，以内容哈希标识。",
            )}</p>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match packs.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="empty">{l.t("No pack yet.", "还没有模板包。")}</p> }.into_any(),
                        Ok(list) => view! {
                            <table class="grid" data-testid="packs">
                                <thead><tr>
                                    <th>{l.t("Pack", "模板包")}</th>
                                    <th>{l.t("Version · hash", "版本 · 哈希")}</th>
                                    <th>{l.t("Providers", "供应商")}</th>
                                    <th>{l.t("Stored", "保存")}</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|v| view! {
                                        <tr>
                                            <td><a href=format!("/packs/{}", v.id)>{v.name.clone()}</a>" "<code>{v.pack_id.clone()}</code>
                                                {v.builtin.then(|| view! { " " <span class="badge muted">{l.t("built-in", "内置")}</span> })}</td>
                                            <td><code data-testid="pack-version">{v.label()}</code></td>
                                            <td>{v.providers.join(", ")}</td>
                                            <td class="muted">{format!("{} · {}", when(v.created_at_ms), v.created_by)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Suspense>
            {can_upload.then(|| view! {
                <h2>{l.t("Upload a pack", "上传模板包")}</h2>
                <form method="post" action="/packs" enctype="multipart/form-data" class="card form wide" data-testid="pack-form">
                    <Csrf/>
                    <label class="field">
                        <span>{l.t("File (YAML or TOML)", "文件（YAML 或 TOML）")}</span>
                        <input type="file" name="file" accept=".yaml,.yml,.toml,text/plain"/>
                    </label>
                    <label class="field">
                        <span>{l.t("…or paste it", "……或粘贴内容")}</span>
                        <textarea name="source" rows="14" spellcheck="false" class="mono">{source.clone()}</textarea>
                    </label>
                    <button type="submit" class="primary">{l.t("Validate and store", "校验并保存")}</button>
                </form>
            })}
        </Layout>
    }
}

#[component]
pub fn PackPage() -> impl IntoView {
    let l = page_ctx().lang;
    let params = use_params_map();
    let query = use_query_map();
    let key = move || {
        (
            params
                .read()
                .get("id")
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0),
            query.read().get("diff").and_then(|s| s.parse::<i64>().ok()),
        )
    };
    let data = Resource::new(key, |(id, diff)| pack_detail(id, diff));
    view! {
        <Layout>
            <Suspense fallback=move || loading(l)>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e/> }.into_any(),
                        Ok(d) => {
                            let id = d.version.id;
                            view! {
                                <h1>{d.pack.name.clone()}" "<code data-testid="pack-version">{d.version.label()}</code></h1>
                                <p class="muted">{d.pack.description.clone()}</p>
                                {d.diff_against.and_then(|a| d.others.iter().find(|o| o.id == a)).map(|old| view! {
                                    <h2>{format!("{} v{} → v{}", l.t("Changes from", "变更："), old.number, d.version.number)}</h2>
                                    {if d.diff.is_empty() {
                                        view! { <p class="muted" data-testid="diff">{l.t("No differences.", "没有差异。")}</p> }.into_any()
                                    } else {
                                        view! {
                                            <table class="grid" data-testid="diff">
                                                <thead><tr><th>{l.t("Path", "路径")}</th><th>{format!("v{}", old.number)}</th><th>{format!("v{}", d.version.number)}</th></tr></thead>
                                                <tbody>
                                                    {d.diff.iter().map(|c| view! {
                                                        <tr><td><code>{c.path.clone()}</code></td><td>{c.old.clone().unwrap_or_else(|| "—".into())}</td><td>{c.new.clone().unwrap_or_else(|| "—".into())}</td></tr>
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        }.into_any()
                                    }}
                                })}
                                {(!d.others.is_empty()).then(|| view! {
                                    <p class="small">{l.t("Compare with: ", "与其他版本比较：")}
                                        {d.others.iter().map(|o| view! {
                                            <a href=format!("/packs/{id}?diff={}", o.id) class="compare"><code>{o.label()}</code></a>" "<span class="muted">{when(o.created_at_ms)}</span>" "
                                        }).collect_view()}
                                    </p>
                                })}
                                {d.pack.exchange_rate.clone().map(|x| view! {
                                    <p>{l.t("Exchange rate", "汇率")}": 1 USD = "{x.cny_per_usd}" CNY · "{x.source}" · "{x.date}</p>
                                })}
                                {d.pack.providers.iter().map(|(k, p)| view! {
                                    <section class="card">
                                        <h2>{p.display_name.clone()}" "<code>{k.clone()}</code></h2>
                                        <p class="small">
                                            {l.t("Platform: ", "平台：")}{p.native_platform.clone().map(|n| format!("{n} (native) or openai")).unwrap_or_else(|| "openai".into())}
                                            " · "<code>{p.base_url.clone()}</code>
                                            " · "{l.t("smoke model ", "冒烟模型 ")}<code>{p.smoke_model.clone()}</code>
                                            " · "{l.t("default access ", "默认开通 ")}{mode_word(l, p.access.mode)}
                                        </p>
                                        <table class="grid">
                                            <thead><tr>
                                                <th>{l.t("Model", "模型")}</th>
                                                <th>{l.t("Input / 1M", "输入 / 百万")}</th>
                                                <th>{l.t("Output / 1M", "输出 / 百万")}</th>
                                                <th>{l.t("Cache read / 1M", "缓存读 / 百万")}</th>
                                                <th>{l.t("Source", "来源")}</th>
                                            </tr></thead>
                                            <tbody>
                                                {p.models.iter().map(|(m, pm)| {
                                                    let cur = match pm.price.currency { Currency::Usd => "$", Currency::Cny => "¥" };
                                                    view! {
                                                        <tr>
                                                            <td><code>{m.clone()}</code></td>
                                                            <td>{format!("{cur}{}", pm.price.input)}</td>
                                                            <td>{format!("{cur}{}", pm.price.output)}</td>
                                                            <td>{pm.price.cache_read.map(|c| format!("{cur}{c}")).unwrap_or_else(|| "—".into())}</td>
                                                            <td class="muted small">{format!("{} · {}", pm.price.source, pm.price.verified)}</td>
                                                        </tr>
                                                    }
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    </section>
                                }).collect_view()}
                                <details>
                                    <summary>{format!("{} ({})", l.t("Source text", "原文"), d.version.format)}</summary>
                                    <pre class="source">{d.source.clone()}</pre>
                                </details>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </Layout>
    }
}
