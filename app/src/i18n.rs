//! Simplified Chinese and English. Page text is written in both languages
//! where it is used (`lang.t("Hosts", "主机")`); the messages the server
//! writes in answer to a form are keys with named parameters ([`Msg`]),
//! each declared with both templates, rendered in the operator's language
//! (`lang.msg(Msg::HostSaved, &[("name", &name)])`). Either way a string
//! cannot lack a translation. The language comes from the `lang` cookie,
//! else from the browser's `Accept-Language`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// Picks the string for this language.
    pub fn t(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// The `lang` attribute / cookie value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("zh") {
            Some(Lang::Zh)
        } else if s.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The first supported language in an `Accept-Language` header, by
    /// order of preference (q-values respected).
    pub fn from_accept_language(header: &str) -> Lang {
        let mut prefs: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let tag = it.next()?.trim();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                Lang::parse(tag).map(|l| (q, l))
            })
            .collect();
        prefs.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        prefs.first().map(|p| p.1).unwrap_or_default()
    }
}

/// Declares the server's messages: each key with its English and Chinese
/// template; `{name}` marks a parameter.
macro_rules! messages {
    ($($key:ident => $en:literal, $zh:literal;)*) => {
        /// A message the server writes (flashes and form errors).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg { $($key),* }

        impl Msg {
            /// Every message, for the translation tests.
            pub const ALL: &'static [Msg] = &[$(Msg::$key),*];

            /// (English, Chinese) templates.
            pub fn templates(self) -> (&'static str, &'static str) {
                match self { $(Msg::$key => ($en, $zh)),* }
            }
        }
    };
}

messages! {
    FormExpired => "This form has expired (its security token does not match). Reload the page and try again.",
        "表单已过期（安全令牌不匹配）。请刷新页面后重试。";
    SignedOut => "You are signed out; sign in again.", "你已退出登录，请重新登录。";
    RoleDenied => "Your role ({role}) cannot do this: it needs {needed}.", "你的角色（{role}）不能执行此操作：需要 {needed}。";
    SessionFailed => "Could not start the session; try again.", "无法建立会话，请重试。";
    WrongPassword => "Wrong username or password.", "用户名或密码错误。";
    Throttled => "Too many failed sign-ins for this account or address. Try again in {minutes} minutes.",
        "该账号或地址登录失败次数过多。请在 {minutes} 分钟后重试。";
    Welcome => "Welcome, {name}. Next: add a Sub2API host.", "欢迎，{name}。下一步：添加一台 Sub2API 主机。";
    ProbeOk => "Probe finished: {headline}.", "探测完成：{headline}。";
    ProbeWarning => "Probe finished with warnings: {headline}.", "探测完成，有警告：{headline}。";
    ProbeFailing => "Probe found a blocker: {headline}.", "探测发现阻碍：{headline}。";
    HostAdded => "Host {name} added. {probe}", "已添加主机 {name}。{probe}";
    HostSaved => "Host {name} saved.", "已保存主机 {name}。";
    HostRemoved => "Host {name} removed.", "已移除主机 {name}。";
    ComplianceAccepted => "Compliance text accepted. {probe}", "已接受合规条款。{probe}";
    AdminKeyShownOnce => "The host's new admin API key is below, shown this once. The product now signs in with it (stored encrypted); copy it only if another tool needs it.",
        "主机的新管理员 API 密钥如下，仅显示这一次。本产品此后用它登录（加密存储）；仅当其他工具需要时才复制。";
    OperatorAdded => "Operator {name} added as {role}.", "已添加操作员 {name}，角色 {role}。";
    OperatorChanged => "Operator {name} is now {role}.", "操作员 {name} 现在的角色为 {role}。";
    OperatorChangedDisabled => "Operator {name} is now {role}, disabled.", "操作员 {name} 现在的角色为 {role}，已停用。";
    PasswordReset => "Password of {name} reset: their sessions have ended; tell them the new one out of band.",
        "已重置 {name} 的密码：其会话均已结束；请通过其他渠道告知新密码。";
    OperatorRemoved => "Operator {name} removed: signed out everywhere, and the name stays in the audit log.",
        "已移除操作员 {name}：所有会话已注销，该名称保留在审计日志中。";
    AccountChanged => "Your account changed meanwhile; sign in again.", "你的账号刚刚被修改，请重新登录。";
    PasswordChanged => "Password changed: your other sessions have ended.", "密码已修改：你的其他会话已结束。";
    UploadTooLarge => "The upload is too large (at most 1 MiB).", "上传内容过大（最多 1 MiB）。";
    PackOneProblem => "The pack has 1 problem; nothing was stored.", "模板包有 1 个问题；未保存任何内容。";
    PackProblems => "The pack has {n} problems; nothing was stored.", "模板包有 {n} 个问题；未保存任何内容。";
    PackStored => "Pack version stored.", "已保存模板包版本。";
    PackKnown => "This exact pack version was already stored.", "完全相同的模板包版本已保存过。";
    PlanBlocked => "Plan blocked: this host lacks what the provider needs (see below). Nothing was written to the host.",
        "计划受阻：该主机缺少供应商所需的能力（见下文）。未向主机写入任何内容。";
    PlanReady => "Plan ready: review it, then apply.", "计划已就绪：请检查后执行。";
    Applying => "Applying: every step appears below as it completes.", "正在执行：每一步完成后显示在下方。";
    Retrying => "Retrying {n} failed key(s): their accounts are created or tested again; keys that passed are not touched.",
        "正在重试 {n} 个失败的密钥：重新创建或测试其账号；已通过的密钥不受影响。";
    NoFailedKeys => "has no failed keys to retry", "没有可重试的失败密钥";
    ConfirmDiscard => "tick the box to confirm: a discarded plan can never be applied", "请勾选确认：放弃的计划永远不能再执行";
    Discarded => "Discarded: nothing was sent to the host, the plan's keys are deleted, and the plan stays here for the record.",
        "已放弃：未向主机发送任何内容，计划中的密钥已删除，计划保留备查。";
    ConfirmRemoveFailed => "tick the box to confirm: the failed accounts are deleted from the host", "请勾选确认：失败的账号将从主机删除";
    RemovedFailed => "Removed {n} account(s) whose key failed from the host.", "已从主机删除 {n} 个密钥失败的账号。";
    PausedFailed => "Paused {n} account(s) whose key failed: the host no longer schedules them.", "已暂停 {n} 个密钥失败的账号：主机不再调度它们。";
    ResumedFailed => "Resumed {n} account(s): the host schedules them again.", "已恢复 {n} 个账号：主机重新调度它们。";
    ChooseAccount => "choose the account whose key is replaced", "请选择要替换密钥的账号";
    ConfirmReplace => "tick the box to confirm: the old account is deleted from the host once the new key passed", "请勾选确认：新密钥通过后旧账号将从主机删除";
    Replacing => "Replacing the key: the new account is created and tested first; the old one is removed only if it passed.",
        "正在替换密钥：先创建并测试新账号；仅当其通过后才删除旧账号。";
    NothingToDiagnose => "Nothing failed: there is nothing to diagnose.", "没有失败项：无需诊断。";
    Reviewed => "Decision recorded: {decision}. It is signed and goes into the evidence bundle.", "已记录决定：{decision}。该决定已签名并写入证据包。";
    ApprovedApply => "Approved: this plan may now be applied (any change to the plan voids the approval).", "已批准：现在可以执行此计划（计划的任何改动都会使批准失效）。";
    ApprovedRollback => "Approved: another operator or admin may now roll this batch back (any run before then voids the approval).", "已批准：现在可由另一位操作员或管理员回滚此批次（在此之前的任何运行都会使批准失效）。";
    HostProtected => "The host is protected: applies and rollbacks on it now need a second person's approval.", "主机已设为受保护：其上的执行和回滚现在需要第二个人批准。";
    HostUnprotected => "The host is no longer protected.", "主机已取消保护。";
    Diagnosed => "Diagnosed {n} failed check(s); {spent} upstream completion(s) spent.", "已诊断 {n} 项失败检查；消耗 {spent} 次上游调用。";
    DriftChecked => "Checked {n} object(s): {open} open finding(s).", "已检查 {n} 个对象：{open} 项未处理。";
    DriftRepaired => "Done: {what}. Check again to confirm.", "已完成：{what}。请再次检查以确认。";
    DriftIgnored => "Ignored: the finding stays listed under “ignored” until it expires. Check again to refresh the counts.",
        "已忽略：该项在到期前列于“已忽略”下。再次检查以刷新计数。";
    RollingBack => "Rolling back: each removal appears in the timeline as it completes.", "正在回滚：每项删除完成后显示在时间线中。";
    ConfirmRemoveOperator => "tick the box to confirm: a removed operator can never sign in again", "请勾选确认：被移除的操作员永远不能再登录";
    TokenShownOnce => "Token “{name}” for {user}: copy it now, it is shown this once (only its hash is kept). Send it as `Authorization: Bearer …`.",
        "{user} 的令牌“{name}”：请立即复制，仅显示这一次（只保存其哈希）。请以 `Authorization: Bearer …` 发送。";
    TokenRevoked => "Token #{id} revoked: requests with it are refused from now on.", "令牌 #{id} 已吊销：此后使用它的请求都会被拒绝。";
    ConfirmRevokeToken => "tick the box to confirm: scripts using this token stop working", "请勾选确认：使用此令牌的脚本将无法再工作";
    PasswordMismatch => "does not match the new password", "与新密码不一致";
    UnknownAction => "unknown action `{action}`", "未知操作 `{action}`";
    NotANumber => "is not a number", "不是数字";
    ScheduleSaved => "Schedule saved: {job} every {secs} s.", "已保存定时任务：{job} 每 {secs} 秒一次。";
    ScheduleOff => "Schedule saved: {job} is off.", "已保存定时任务：{job} 已关闭。";
    RecheckedReady => "Re-checked: ready ({access}). {detail}", "已复查：就绪（{access}）。{detail}";
    RecheckedNotReady => "Re-checked: not ready, access is now {access}. {detail}", "已复查：未就绪，访问状态现为 {access}。{detail}";
    BalancesRead => "Balances read for {n} key(s): {known} known, {unknown} unknown, {unsupported} unsupported, {low} low.",
        "已读取 {n} 个密钥的余额：{known} 个已知，{unknown} 个未知，{unsupported} 个不支持，{low} 个偏低。";
    WebhookAdded => "Webhook {name} added: it signs with the bot secret you gave.", "已添加 Webhook {name}：使用你提供的机器人密钥签名。";
    WebhookSecretShownOnce => "Webhook {name} added. Its signing secret is below, shown this once (stored encrypted): check each delivery's X-Relay-Signature header with it.",
        "已添加 Webhook {name}。其签名密钥如下，仅显示这一次（加密存储）：用它校验每次投递的 X-Relay-Signature 头。";
    WebhookRemoved => "Webhook #{id} removed: alerts no longer go there.", "Webhook #{id} 已移除：告警不再发往此处。";
    ConfirmRemoveWebhook => "tick the box to confirm: alerts stop going to this webhook", "请勾选确认：告警将不再发往此 Webhook";
    WebhookTestDelivered => "Test delivered to {name} ({answer}).", "测试消息已送达 {name}（{answer}）。";
    WebhookTestFailed => "Test to {name} failed ({answer}): {error}. It is retried; see the delivery log.",
        "发往 {name} 的测试失败（{answer}）：{error}。将会重试；见投递记录。";
}

impl Lang {
    /// A server message in this language, its `{name}` parameters filled.
    pub fn msg(self, m: Msg, args: &[(&str, &(dyn std::fmt::Display + Sync))]) -> String {
        let (en, zh) = m.templates();
        let mut out = self.t(en, zh).to_string();
        for (name, value) in args {
            out = out.replace(&format!("{{{name}}}"), &value.to_string());
        }
        out
    }
}

/// A probe finding in Chinese, by its code: (message, what to do), with
/// `{detail}` standing for the host's own words. `None`: not translated
/// (the stored English is shown).
pub fn finding_zh(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        "host_unreachable" => ("无法连接主机：{detail}", "检查基础地址、主机是否在运行，以及本服务器能否访问它（防火墙、DNS、TLS）。"),
        "not_sub2api" => ("GET /api/v1/settings/public 的应答不像 Sub2API（{detail}）", "确认基础地址指向 Sub2API 服务本身（而不是其后台页面或代理路径）。"),
        "version_unknown" => ("主机未报告其版本", "能力仅能通过路由探测判断；依赖版本的规则（幂等键、国产账号测试）保持未知。"),
        "admin_auth_rejected" => ("主机拒绝了管理员凭据（{detail}）", "编辑主机并填写可用的管理员 API 密钥（主机后台 → 设置 → 管理员 API 密钥；重新生成会使旧密钥失效），或管理员邮箱和密码。"),
        "admin_auth_2fa" => ("管理员账号使用双因素认证登录，本产品无法完成", "编辑主机，改用管理员 API 密钥，而不是邮箱和密码。"),
        "admin_auth_unknown" => ("管理 API 的应答不符合预期：{detail}", "检查基础地址和主机日志，然后重新探测。"),
        "compliance_required" => ("主机的管理 API 已锁定（HTTP 423），需管理员接受部署合规承诺 {detail}", "由管理员阅读合规条款（本页有链接），在此输入主机的确认短语接受，或以该凭据对应的管理员身份在主机后台接受（管理员 API 密钥对应第一个管理员用户）；之后会重新探测。这是运营者的承诺，本产品绝不会自行接受。"),
        "no_channels" => ("主机早于渠道功能（v0.1.107）：渠道定价、映射和模型限制不可用", "将主机升级到 v0.1.107 或更高版本以使用按渠道定价；导入会跳过渠道步骤。"),
        "no_cn_platforms" => ("主机没有原生国产平台（deepseek、kimi、zhipu 于 v0.1.178 加入）", "供应商将以 `openai` 平台导入，使用基础地址并强制 Chat Completions。"),
        "gateway_unreachable" => ("网关（/v1/models）的应答不像 Sub2API", "就绪检查经由网关：请确认 /v1 已路由到主机（反向代理规则）。"),
        "probe_user_missing" => ("未配置探测用户", "为主机添加一个普通用户的邮箱和密码，以便用真实用户密钥验证就绪。"),
        "probe_user_blocked" => ("探测用户无法登录：{detail}", "无法自动开通自助访问：请在主机上关闭后台模式或验证码，或取消探测用户的双因素认证，然后重新探测。"),
        "probe_user_failed" => ("探测用户登录被拒绝（{detail}）", "检查探测用户的邮箱和密码（若主机上不存在该用户请先创建），然后重新探测。"),
        _ => return None,
    })
}

/// The next action for a diagnosis class in Chinese, `{detail}` standing
/// for the specifics (a model, an address, a step's error).
pub fn next_action_zh(class: provisioning_core::model::FailureClass) -> &'static str {
    use provisioning_core::model::FailureClass as F;
    match class {
        F::UpstreamQuotaExhausted => "为该密钥所属的供应商账号充值（或更换密钥），然后重新执行批次：账号有余额后主机会重新使用它。",
        F::UpstreamKeyInvalid => "更换密钥：供应商拒绝了它（已吊销、输错，或由供应商另一区域的平台签发）。在新批次中导入新密钥，并通过回滚删除此账号。",
        F::UpstreamRateLimited => "等待供应商的限流窗口过去后重新执行。若反复出现，请降低批次并发或向供应商申请更高限额。",
        F::UpstreamModelUnknown => "修正模板包中的模型：供应商不向此密钥提供该模型{detail}。上传修正后的模板包并重新规划。",
        F::UpstreamContentRejected => "供应商的内容审核拒绝了冒烟请求（\"hi\"），通常意味着供应商限制了此密钥或账号：请检查账号在供应商处的状态，或更换密钥。",
        F::HostCompatibilityGap => "直接调用供应商时此密钥可用，但经主机失败：请检查主机上账号的平台、基础地址和协议（openai 平台须强制 Chat Completions），以及该主机版本是否支持此供应商。",
        F::HostAuthFailed => "编辑主机并填写可用的管理员凭据，然后重新执行。",
        F::HostComplianceRequired => "在主机后台（以该凭据对应的管理员身份）接受部署合规条款，然后重新执行。",
        F::HostConfigIncomplete => "补全主机配置：{detail}。然后重新执行批次。",
        F::NetworkError => "确认本服务器能访问 {detail}（防火墙、DNS、TLS、代理），然后重新执行。",
    }
}

/// A diagnosis's next action in this language (the specifics stay as the
/// diagnosis found them; its evidence carries them in full).
pub fn next_action(lang: Lang, d: &provisioning_core::model::Diagnosis) -> String {
    match lang {
        Lang::Zh => next_action_zh(d.class).replace("{detail}", &d.detail),
        Lang::En => d.action.clone(),
    }
}

/// A probe finding's message in this language: in Chinese by its code with
/// the host's words in it, else as stored (English, or a finding stored
/// before its words were kept apart).
/// The Chinese template of a core message (see [`provisioning_core::model::SAID`]).
pub fn said_zh(code: &str) -> Option<&'static str> {
    Some(match code {
        "skip.short" => "太短，不像密钥（少于 8 个字符）",
        "skip.long" => "太长，不像密钥（超过 512 个字符）",
        "skip.chars" => "含有空格或密钥中不会出现的字符",
        "skip.duplicate" => "在本批次中前面已出现过",
        "skip.imported" => "已由批次 #{batch} 导入（账号 {account}）",
        "skip.on_host" => "主机上已有此账号 {account}（带有本产品的标记）",
        "strategy.native" => "主机具备原生 `{platform}` 平台",
        "strategy.no_native" => "主机没有 `{platform}` 平台：使用 openai + 基础地址 + 强制 chat completions",
        "strategy.unknown" => "尚不清楚主机是否支持 `{platform}`（请探测主机）：稳妥起见使用 openai + 基础地址",
        "strategy.openai" => "该供应商没有原生平台：使用 openai + 基础地址 + 强制 chat completions",
        "warn.no_channels" => "主机没有渠道功能（v0.1.107 之前）：不会设置价格和模型限制",
        "warn.all_skipped" => "所有密钥均被跳过：本批次只重新检查访问和就绪",
        "field.required" => "为必填项",
        "field.too_long" => "太长（{n} 个字符；最多 {max} 个）",
        "field.username_short" => "至少需要 3 个字符",
        "field.username_chars" => "只能包含字母、数字和 . _ - @",
        "field.password_short" => "至少需要 12 个字符",
        "field.password_long" => "最多 256 个字符",
        "field.url_scheme" => "必须以 http:// 或 https:// 开头（例如 https://gateway.example.com）",
        "field.url_no_host" => "缺少主机名",
        "field.url_credentials" => "不能包含凭据；请在单独的字段中填写管理员密钥",
        "field.url_query" => "不能包含查询字符串或片段",
        "field.url_spaces" => "不能包含空格",
        "field.url_bad_host" => "主机名无效",
        "field.url_bad_port" => "端口无效",
        "keys.empty" => "为空：每行粘贴一个密钥，或上传 CSV 或 JSON 文件",
        "keys.json" => "不是有效的 JSON：{error}",
        "keys.json_item" => "JSON 第 {n} 项没有 `key` 或 `api_key` 字符串",
        "keys.too_many" => "有 {n} 个密钥；每批最多 {max} 个",
        "keys.none_usable" => "没有可用的密钥（{n} 个被拒绝）",
        "replace.batch_state" => "处于 {status} 状态：只能替换已执行、且未在运行或未回滚的批次中的密钥",
        "replace.busy" => "有一个未结束的 {kind} 运行（#{run}）；请等待其结束或继续执行",
        "replace.not_ours" => "不是本批次创建的账号",
        "replace.gone" => "已不在主机上（台账状态 {status}）",
        "replace.count" => "包含 {n} 个密钥：请只粘贴一个，即取代此账号的密钥",
        "replace.same" => "就是此账号现有的密钥：请粘贴新密钥",
        "replace.held" => "已在此主机上：由批次 #{batch} 导入（账号 {account}）",
        "replace.tried" => "已被带入本批次（之前的一次替换）；请换一个密钥",
        "replace.no_group" => "在主机上还没有分组：替换密钥前请先重新执行该批次",
        "field.secret_long" => "太长（最多 {max} 个字符）",
        "field.no_spaces" => "不能包含空格或换行",
        "field.email" => "不是电子邮件地址",
        "host.auth_kind" => "必须是 `api_key`（管理员 API 密钥）或 `password`（管理员邮箱和密码）",
        "host.probe_email_needed" => "填写了探测用户密码时为必填项",
        "host.probe_password_needed" => "填写了探测用户邮箱时为必填项",
        "host.unreachable" => "无法作为 Sub2API 主机访问（无应答、被拒绝、超时，或是其他类型的服务器）。请检查 URL；管理员可在审计日志中查看详情",
        "host.outbound_refused" => "被出站访问策略拒绝（该地址不允许访问）",
        "host.requires_2fa" => "该管理员账号使用双因素认证登录，请改用管理员 API 密钥",
        "host.refused" => "被主机拒绝（{code}{said}）",
        "host.unexpected" => "管理 API 的应答不符合预期：{error}",
        "host.name_taken" => "名为 `{name}` 的主机已存在",
        "host.reenter" => "必须重新填写：基础 URL 换到了另一个源（协议、主机或端口），已保存的密钥绝不会发往新的源",
        "host.has_batches" => "有 {n} 个导入批次的证据引用它，因此保留",
        "accounts.query_long" => "比任何密钥掩码或指纹都长（最多 100 个字符）",
        "operator.name_taken" => "名为 `{username}` 的操作员已存在（或曾存在后被移除：审计日志保留该名称）",
        "operator.reset_self" => "是你自己：请在“我的账号”页修改自己的密码（需要输入当前密码）",
        "operator.throttled" => "在最近 {minutes} 分钟内错误 {n} 次，请稍后再试",
        "operator.wrong_current" => "不是你当前的密码",
        "operator.same_password" => "与当前密码相同",
        "operator.remove_self" => "是你自己：需由另一位管理员移除你",
        "operator.last_admin" => "是最后一位启用的管理员：请先设立另一位管理员",
        "operator.role" => "未知角色 `{role}`；应为 admin、operator 或 viewer",
        "setup.token_required" => "为必填项：它在服务启动时打印在服务器日志中",
        "setup.token_invalid" => "无效：请使用服务器日志中最新的令牌；如果已完成初始化，请直接登录",
        "compliance.none" => "没有合规门禁（v0.1.136 引入）：无需接受任何内容",
        "compliance.accepted" => "无需填写：该凭据已接受合规文本 {version}",
        "compliance.phrase_required" => "为必填项：输入主机给出的确认语以接受其合规文本",
        "compliance.phrase_mismatch" => "与主机的确认语不一致：请按显示内容原样输入（英文或中文）",
        "compliance.phrase_refused" => "被主机拒绝：与其确认语不一致",
        "adminkey.exists" => "已在使用管理员 API 密钥；如需更换，请在主机管理面板中重新生成，然后编辑该主机",
        "adminkey.confirm" => "必须勾选：新密钥会替换主机现有的管理员密钥，使用旧密钥的工具将无法再工作",
        "adminkey.locked" => "被合规门禁锁定（HTTP 423）：请先接受合规文本",
        "discard.again" => "状态为 {status}：只有从未执行过的已规划批次才能丢弃",
        "discard.applied" => "状态为 {status}：只有从未执行过的已规划批次才能丢弃；如要移除它创建的内容，请回滚",
        "batch.discarded" => "已丢弃：其中任何内容都不会执行；请重新规划批次",
        "batch.rolled_back" => "已回滚（或正在回滚）：请重新规划批次",
        "batch.blocked" => "无法在该主机上执行：主机缺少计划所需的能力（原因和处理办法见批次页的“受阻”一节）。未向主机写入任何内容。",
        "batch.busy" => "有一个 {kind} 运行正在进行，请等待其结束",
        "batch.leased" => "正由另一个进程（{owner}）处理，其租约到 {until} 为止；页面会显示进度",
        "plan.no_probe_user" => "没有探测用户：就绪需用真实用户密钥证明，请为该主机填写探测用户的邮箱和密码",
        "plan.probe_failed" => "上次探测失败：请先修复问题并重新探测（详情见主机页）",
        "plan.probe_user_blocked" => "无法打通访问：探测用户无法登录（{reason}）。请在主机上修复后重新探测",
        "plan.probe_user_refused" => "无法打通访问：探测用户登录被拒绝（{code}）。请检查探测用户的邮箱和密码（该用户必须已存在于主机上），然后重新探测",
        "plan.no_subscriptions" => "订阅模式需要支持订阅的主机；请改用 self_service（自助）模式",
        "plan.host_unreadable" => "规划时无法读取主机：{error}",
        "plan.group_taken" => "主机上已有一个名为 `{name}` 的分组，且不是本产品创建的；请在模板包中把 group.name 改为其他名称",
        "plan.channel_taken" => "主机上已有一个名为 `{name}` 的渠道，且不是本产品创建的",
        "plan.provider_missing" => "模板包 {pack} 中没有 `{provider}`（其中有：{has}）",
        "filter.provider_long" => "比任何供应商标识都长",
        "filter.status" => "{status} 不是批次状态",
        "rollback.never_applied" => "从未执行过：主机上没有可回滚的内容",
        "rollback.running" => "正在运行：请等其结束后再回滚",
        "rollback.done" => "已经回滚",
        "review.own" => "由你规划或执行：需由既未规划也未执行的人审核",
        "approval.own" => "由你规划：需由另一位操作员或管理员批准执行",
        "approval.own_rollback" => "的回滚由你批准：需由另一位操作员或管理员执行",
        "filter.review" => "{review} 不是审核状态",
        "review.not_finished" => "状态为 {status}：只审核已结束的批次（成功、部分成功或失败）",
        "review.evidence_changed" => "在你打开后已改变（之后有运行或诊断）：请重新阅读证据后再决定",
        "review.decision" => "必须是 accepted、rejected 或 needs_changes",
        "review.comment_required" => "在拒绝或要求修改时必填：请说明问题所在",
        "review.comment_long" => "超过 2000 个字符",
        "approval.required" => "需要第二个人批准：主机 {host} 受保护。请由 {author} 以外的人在批次页批准 {purpose}",
        "approval.plan_changed" => "属于另一个计划：计划摘要现在是 {digest}。请重新阅读计划后批准",
        "approval.not_protected" => "无需批准：该主机未受保护",
        "approval.state" => "状态为 {status}：没有可批准的 {purpose}",
        "rollback.applying" => "正在执行：请等执行结束后再回滚",
        "failed.status" => "状态为 {status}：现在不能更改其失败的账号",
        "failed.none" => "没有测试失败且仍在主机上的账号",
        "drift.reason" => "请说明忽略的原因（至少 3 个字符）",
        "drift.days" => "必须在 1 到 365 之间",
        "drift.no_check" => "还没有漂移检查：请先检查该主机",
        "drift.not_in_check" => "`{key}` 不在最新一次检查中；请重新检查",
        "drift.not_offered" => "此发现不提供 `{action}`（可用：{offered}）",
        "drift.no_batch" => "没有可记录此修复的批次",
        "drift.unknown_kind" => "未知类型 {kind}",
        "drift.gone" => "该对象已不在主机上；请重新检查",
        "drift.not_duplicate" => "是台账自己的对象，不是重复项",
        "drift.not_in_ledger" => "不在台账中",
        "drift.unknown_action" => "未知操作 `{action}`",
        "drift.subscription" => "订阅无法原地重新应用；请将其从台账移除后重新规划",
        "block.lacks" => "主机 {version} 缺少 `{capability}`（{evidence}）：{why}。",
        "why.passthrough" => "该供应商只支持 chat completions，而 v0.1.127 之前主机的 `openai` 平台会把每个请求以 /v1/responses 发往上游（忽略 `openai_responses_mode`），供应商对此返回 404：每次账号测试和每个请求都会失败",
        "act.passthrough" => "将主机升级到 v0.1.127 或更高版本（v0.1.179 起还有原生的 deepseek/kimi/zhipu 平台），重新探测，然后重新规划。",
        "why.minimax" => "原生的 `{platform}` 平台在 v0.2.4 引入",
        "act.minimax" => "将主机升级到 v0.2.4 或更高版本，或在具备该平台的主机上规划。",
        "why.cn_platforms" => "原生的 `{platform}` 平台在 v0.1.178 引入",
        "act.cn_platforms" => "将主机升级到 v0.1.179 或更高版本，重新探测，然后重新规划。",
        "why.admin_key_binding" => "专属分组拒绝用户自行绑定密钥，因此探测用户的密钥要通过管理 API 绑定（PUT /admin/api-keys/:id，v0.1.89），它会授予该分组",
        "act.admin_key_binding" => "将主机升级到 v0.1.89 或更高版本，或在模板包中设置 `group.exclusive: false`。",
        "why.subscriptions" => "订阅访问会给探测用户分配该分组的订阅",
        "act.subscriptions" => "改用 self_service（自助）模式，或使用支持订阅的主机。",
        "discard.started" => "已开始执行：不能再丢弃；请在其结束后回滚",
        "is.empty" => "为空",
        "is.bool" => "是 `{value}`（是/否）",
        "is.number" => "是数字 {value}",
        "is.text" => "是文本“{value}”",
        "is.long_text" => "是一段长文本",
        "is.list" => "是一个列表",
        "is.table" => "是一个字段表",
        "is.value" => "是 {value}",
        "pack.bytes" => "有 {n} 字节",
        "pack.not_a_field" => "不是此处可用的字段",
        "pack.missing" => "缺失",
        "pack.bad_id" => "`{value}` 不是有效的模板包 id",
        "pack.bad_provider_key" => "`{value}` 不是有效的供应商标识",
        "pack.not_date" => "`{value}` 不是日期",
        "pack.bad_platform" => "`{value}` 不是原生国内平台",
        "pack.bad_family" => "`{value}` 不是已知的 API 系列",
        "pack.bad_url" => "`{value}` 不是 http(s) URL",
        "pack.not_a_model" => "`{value}` 不是该供应商的模型",
        "pack.bad_model_id" => "不是有效的模型 id",
        "pack.cny_no_rate" => "是 CNY，但模板包没有 exchange_rate",
        "pack.bad_billing" => "`{value}` 不是计费来源",
        "pack.name_length" => "为空或太长",
        "want.text" => "文本",
        "want.number" => "数字，例如 0.3",
        "want.count" => "整数，例如 1",
        "want.bool" => "true 或 false",
        "want.one_of" => "{words} 之一",
        "want.one_of_or_none" => "{words} 之一（或不填）",
        "want.table" => "按名称分项的表，每项以其名称为键",
        "want.record" => "字段表",
        "want.needed" => "此处必须有该字段",
        "want.bytes" => "最多 {max} 字节",
        "want.pack" => "YAML 或 TOML 格式的模板包",
        "want.syntax" => "含 schema 1 字段的 {format} 模板包（参见内置模板包）",
        "want.exact" => "{value}",
        "want.slug" => "1–64 个字符，只用 a-z、0-9、- 和 _",
        "want.display_name" => "显示名称",
        "want.rate" => "正数，例如 7.1",
        "want.rate_source" => "汇率的来源",
        "want.date" => "YYYY-MM-DD",
        "want.provider" => "至少一个供应商",
        "want.url_example" => "URL，例如 https://api.deepseek.com",
        "want.url" => "URL",
        "want.model" => "至少一个模型",
        "want.model_id" => "1–100 个字符，不含空格",
        "want.price" => "每百万 token 的价格，≥ 0",
        "want.exchange_rate" => "在模板包顶部写 exchange_rate（cny_per_usd、source、date），因为主机以美元存储价格",
        "want.price_source" => "价格的出处（URL）",
        "want.multiplier" => "大于 0 的数（主机对 0 会报内部错误）",
        "want.group_name" => "1–90 个字符",
        "want.limit" => "≥ 0 的数（0 表示不限）",
        "want.days" => "1 到 36500 天",
        "want.positive" => "大于 0 的数",
        "undo.shared" => "也被批次 {batches}（尚未回滚）使用：在它们回滚之前保留",
        "undo.gone" => "已不在主机上；只更新台账",
        "undo.as_applied" => "与写入时一致",
        "undo.forced" => "写入后在主机上被改动；因操作员选择强制而删除",
        "undo.changed" => "写入后在主机上被改动：除非强制，否则保留",
        "undo.top_up" => "探测用户 ${amount} 的余额充值（步骤 {step}）不会撤销：余额可能已被使用，主机也保留其用量记录。",
        "undo.usage" => "已通过这些账号计费的用量会保留在主机的用量记录中。",
        "token.scope" => "必须是 read、write 或 admin",
        "token.days" => "必须是 1 到 {max} 之间的整数天数",
        "token.operator" => "不是可操作的操作员（不存在、已停用或已移除）",
        "unhealthy.status" => "状态为 `{status}`{said}",
        "unhealthy.unschedulable" => "不可调度（schedulable=false）",
        "unhealthy.rate_limited" => "限流至 {until}{said}",
        "unhealthy.temporary" => "暂时不可调度，至 {until}{said}",
        "unhealthy.overloaded" => "过载，至 {until}{said}",
        "audit.filter_long" => "比日志中的任何值都长（最多 {max} 个字符）",
        "wait.models" => "等待 GET /v1/models 列出 {model}（主机对每个分组的模型列表最多缓存 {cache} 秒）：第 {listings} 次查询，已用 {elapsed} 秒，{next} 秒后再查",
        "warn.unknown_need" => "无法判断主机是否具备 `{capability}`（{evidence}）；缺少它时此方案无法工作。账号测试会给出结果。",
        _ => return provisioning_core::model::watch_zh(code),
    })
}

/// A core message in the reader's language; without a code (older plans),
/// the English text it was stored with.
pub fn said(lang: Lang, said: Option<&provisioning_core::model::Said>, stored: &str) -> String {
    match (lang, said) {
        (Lang::Zh, Some(s)) => said_zh(&s.code)
            .map(|t| s.fill(t))
            .unwrap_or_else(|| stored.to_string()),
        (_, Some(s)) => s.english(),
        (_, None) => stored.to_string(),
    }
}

/// A form field's name as the pages label it (a field error begins with it).
pub fn field_name(lang: Lang, field: &str) -> String {
    let zh = match field {
        "name" => "名称",
        "base_url" => "基础 URL",
        "auth_kind" => "管理员凭据类型",
        "admin_api_key" => "管理员 API 密钥",
        "admin_email" => "管理员邮箱",
        "admin_password" => "管理员密码",
        "probe_user_email" => "探测用户邮箱",
        "probe_user_password" => "探测用户密码",
        "username" => "用户名",
        "password" => "密码",
        "current_password" => "当前密码",
        "new_password" => "新密码",
        "confirm" => "确认",
        "role" => "角色",
        "token" => "初始化令牌",
        "phrase" => "确认语",
        "host" => "主机",
        "provider" => "供应商",
        "mode" => "访问模式",
        "keys" | "keys_text" => "密钥",
        "key" | "new_key" => "新密钥",
        "batch" => "批次",
        "account" => "账号",
        "q" => "搜索",
        "status" => "状态",
        "reason" => "原因",
        "days" => "天数",
        "scope" => "范围",
        "decision" => "决定",
        "comment" => "意见",
        "digest" => "证据",
        "review" => "审核状态",
        "purpose" => "批准事项",
        "operator_id" => "操作员",
        "finding" => "发现",
        "action" => "操作",
        "id" => "操作员",
        "pack" => "模板包",
        _ => return field.to_string(),
    };
    match lang {
        Lang::Zh => zh.to_string(),
        Lang::En => field.to_string(),
    }
}

/// A pack problem as one line in the reader's language: line, path, what
/// is wrong and what was expected (the parser's own words stay English).
pub fn pack_issue(lang: Lang, i: &provisioning_core::model::PackIssue) -> String {
    if lang != Lang::Zh {
        return i.to_string();
    }
    let mut out = match i.line {
        Some(l) => format!("第 {l} 行，{}：", i.path),
        None => format!("{}：", i.path),
    };
    out += &said(lang, i.said.as_ref(), &i.message);
    let expected = said(lang, i.expected_said.as_ref(), &i.expected);
    if !expected.is_empty() {
        out += &format!("（应为：{expected}）");
    }
    out
}

/// A plan blocker's message and what to do, in the reader's language (the
/// message's `why` is itself a coded message).
pub fn blocker(lang: Lang, b: &provisioning_core::model::PlanBlocker) -> (String, String) {
    let message = match (lang, &b.said, &b.why) {
        (Lang::Zh, Some(s), Some(why)) => {
            let mut s = s.clone();
            s.args
                .insert("why".into(), said(lang, Some(why), &b.message));
            said(lang, Some(&s), &b.message)
        }
        _ => said(lang, b.said.as_ref(), &b.message),
    };
    (message, said(lang, b.action_said.as_ref(), &b.action))
}

/// A note a step carries (stored as a coded message, or plain text).
pub fn note(lang: Lang, text: &str) -> String {
    match provisioning_core::model::Said::parse(text) {
        Some(s) => said(lang, Some(&s), text),
        None => text.to_string(),
    }
}

/// A journal step's target in the reader's language: the target is the
/// step kind's noun and a name (`group relay-ds`, `account sk-…0001`).
pub fn step_target(lang: Lang, target: &str) -> String {
    const NOUNS: &[(&str, &str)] = &[
        ("account test ", "账号测试 "),
        ("account ", "账号 "),
        ("group ", "分组 "),
        ("channel ", "渠道 "),
        ("probe user balance", "探测用户余额"),
        ("probe user subscription", "探测用户订阅"),
        ("probe user key ", "探测用户密钥 "),
        ("readiness gate", "就绪检查"),
        ("pause account ", "暂停账号 "),
        ("resume account ", "恢复账号 "),
        ("remove failed account ", "删除失败的账号 "),
        ("replace account ", "替换账号 "),
        ("user_key ", "用户密钥 "),
        ("subscription ", "订阅 "),
    ];
    if lang == Lang::Zh {
        for (en, zh) in NOUNS {
            if let Some(rest) = target.strip_prefix(en) {
                return format!("{zh}{rest}");
            }
        }
    }
    target.to_string()
}

pub fn finding_message(lang: Lang, code: &str, detail: &str, stored: &str) -> String {
    match (lang, finding_zh(code)) {
        (Lang::Zh, Some((m, _))) if !m.contains("{detail}") || !detail.is_empty() => {
            m.replace("{detail}", detail)
        }
        _ => stored.to_string(),
    }
}

/// A probe's headline in this language.
pub fn headline(lang: Lang, p: &provisioning_core::model::ProbeSummary) -> String {
    if lang == Lang::Zh && p.headline == provisioning_core::model::READY_HEADLINE {
        return "主机已可用于开通".into();
    }
    finding_message(lang, &p.headline_code, &p.headline_detail, &p.headline)
}

/// The `{name}` parameters of a template, sorted.
#[cfg(test)]
fn params(t: &str) -> Vec<String> {
    let mut out: Vec<String> = t
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::{params, Lang, Msg};

    #[test]
    fn every_message_has_a_chinese_template_with_the_same_parameters() {
        assert!(Msg::ALL.len() > 40);
        for m in Msg::ALL {
            let (en, zh) = m.templates();
            assert!(!en.trim().is_empty(), "{m:?} has no English");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{m:?} has no Chinese: {zh:?}"
            );
            assert_ne!(en, zh, "{m:?} is not translated");
            assert_eq!(params(en), params(zh), "{m:?}: the parameters differ");
        }
    }

    #[test]
    fn every_probe_finding_code_has_a_chinese_message_and_action() {
        for (code, en) in provisioning_core::model::SAID {
            let zh = super::said_zh(code).unwrap_or_else(|| panic!("{code} is not translated"));
            // The same parameters in both languages (bar `why` and `…_en`,
            // English prose the Chinese sentence says in its own words).
            let named = |t: &str| {
                let mut p = super::params(t);
                p.retain(|n| n != "why" && !n.ends_with("_en"));
                p
            };
            assert_eq!(named(en), named(zh), "{code}");
        }
        for code in provisioning_core::model::FINDING_CODES {
            let (m, a) =
                super::finding_zh(code).unwrap_or_else(|| panic!("{code} is not translated"));
            assert!(!m.is_empty() && !a.is_empty(), "{code}");
        }
    }

    #[test]
    fn a_message_is_rendered_in_the_language_with_its_parameters() {
        let args: &[(&str, &(dyn std::fmt::Display + Sync))] = &[("n", &3)];
        assert_eq!(
            Lang::En.msg(Msg::RemovedFailed, args),
            "Removed 3 account(s) whose key failed from the host."
        );
        assert_eq!(
            Lang::Zh.msg(Msg::RemovedFailed, args),
            "已从主机删除 3 个密钥失败的账号。"
        );
    }

    #[test]
    fn accept_language_respects_preference_order() {
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Lang::Zh
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,zh;q=0.5"),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language("fr-FR, zh-TW;q=0.7"), Lang::Zh);
        assert_eq!(Lang::from_accept_language("de"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }
}
