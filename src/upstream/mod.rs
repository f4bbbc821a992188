//! Direct probes of a provider with the raw key, and each provider's error
//! signatures (the providers reference, §12): classify on the body's code or
//! type first, the HTTP status last — several providers answer "no money"
//! with 429, 400 or even 200.

use crate::secrets::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Whose error conventions an upstream follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    DeepSeek,
    MiniMax,
    Kimi,
    Glm,
    DashScope,
    Ark,
    SiliconFlow,
    Generic,
}

impl Family {
    /// From the provider key and base URL.
    pub fn detect(provider_key: &str, base_url: &str) -> Family {
        let s = format!(
            "{} {}",
            provider_key.to_ascii_lowercase(),
            base_url.to_ascii_lowercase()
        );
        let has = |n: &[&str]| n.iter().any(|x| s.contains(x));
        if has(&["deepseek"]) {
            Family::DeepSeek
        } else if has(&["minimax"]) {
            Family::MiniMax
        } else if has(&["moonshot", "kimi"]) {
            Family::Kimi
        } else if has(&["bigmodel", "z.ai", "zhipu", "glm"]) {
            Family::Glm
        } else if has(&["dashscope", "qwen"]) {
            Family::DashScope
        } else if has(&["volces", "ark", "doubao"]) {
            Family::Ark
        } else if has(&["siliconflow"]) {
            Family::SiliconFlow
        } else {
            Family::Generic
        }
    }

    /// From a pack's `api_family`.
    pub fn parse(s: &str) -> Option<Family> {
        Some(match s {
            "deepseek" => Family::DeepSeek,
            "minimax" => Family::MiniMax,
            "kimi" => Family::Kimi,
            "glm" => Family::Glm,
            "dashscope" => Family::DashScope,
            "ark" => Family::Ark,
            "siliconflow" => Family::SiliconFlow,
            "openai" => Family::Generic,
            _ => return None,
        })
    }

    /// The balance endpoint, relative to the OpenAI base URL, if any.
    pub fn balance_path(self) -> Option<&'static str> {
        match self {
            Family::DeepSeek => Some("/user/balance"),
            Family::Kimi => Some("/users/me/balance"),
            Family::SiliconFlow => Some("/user/info"),
            _ => None,
        }
    }
}

/// What an upstream answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Ok,
    KeyInvalid,
    QuotaExhausted,
    RateLimited,
    Moderation,
    ModelUnknown,
    /// The provider could not be reached.
    Unreachable,
    /// An error none of the signatures explain.
    Other,
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn code_of(v: &Value) -> String {
    match v.pointer("/error/code").or_else(|| v.get("code")) {
        Some(Value::String(c)) => c.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Classifies an upstream answer by the provider's signatures.
pub fn classify(family: Family, status: u16, body: &str) -> Signal {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    // MiniMax reports errors inside `base_resp`, even with HTTP 200.
    if let Some(code) = v
        .pointer("/base_resp/status_code")
        .and_then(Value::as_i64)
        .filter(|c| *c != 0)
    {
        return match code {
            1004 | 2049 => Signal::KeyInvalid,
            1008 | 2056 => Signal::QuotaExhausted,
            1002 | 1039 | 1041 | 2045 => Signal::RateLimited,
            1026 | 1027 => Signal::Moderation,
            2013 | 2061 => Signal::ModelUnknown,
            _ => Signal::Other,
        };
    }
    if (200..300).contains(&status) {
        return if v.get("error").is_some() {
            Signal::Other
        } else {
            Signal::Ok
        };
    }
    let code = code_of(&v);
    let ty = s(&v, "/error/type");
    let msg = format!("{} {}", s(&v, "/error/message"), s(&v, "/message")).to_ascii_lowercase();
    let by_body = match family {
        Family::DeepSeek => {
            if msg.contains("insufficient balance") {
                Some(Signal::QuotaExhausted)
            } else if msg.contains("authentication fails") {
                Some(Signal::KeyInvalid)
            } else if msg.contains("content exists risk") {
                Some(Signal::Moderation)
            } else if msg.contains("model not exist") {
                Some(Signal::ModelUnknown)
            } else {
                None
            }
        }
        Family::MiniMax => {
            if msg.contains("(1008)") || msg.contains("insufficient balance") {
                Some(Signal::QuotaExhausted)
            } else if msg.contains("(2049)") || msg.contains("(1004)") {
                Some(Signal::KeyInvalid)
            } else {
                None
            }
        }
        Family::Kimi => match ty {
            "exceeded_current_quota_error" => Some(Signal::QuotaExhausted),
            "rate_limit_reached_error" | "engine_overloaded_error" => Some(Signal::RateLimited),
            "invalid_authentication_error" | "incorrect_api_key_error" => Some(Signal::KeyInvalid),
            "content_filter" => Some(Signal::Moderation),
            "resource_not_found_error" => Some(Signal::ModelUnknown),
            _ => None,
        },
        Family::Glm => match code.as_str() {
            "1000" | "1001" | "1002" | "1003" | "1004" => Some(Signal::KeyInvalid),
            "1113" | "1308" | "1309" | "1310" => Some(Signal::QuotaExhausted),
            "1302" | "1303" | "1304" | "1305" | "1312" | "1313" => Some(Signal::RateLimited),
            "1301" => Some(Signal::Moderation),
            "1211" | "1311" => Some(Signal::ModelUnknown),
            _ => None,
        },
        Family::DashScope => match code.as_str() {
            "invalid_api_key" | "InvalidApiKey" => Some(Signal::KeyInvalid),
            "Arrearage"
            | "AllocationQuota.FreeTierOnly"
            | "insufficient_quota"
            | "Throttling.AllocationQuota" => Some(Signal::QuotaExhausted),
            "Throttling.RateQuota" | "limit_requests" => Some(Signal::RateLimited),
            "data_inspection_failed" | "DataInspectionFailed" => Some(Signal::Moderation),
            "model_not_found" | "ModelNotFound" => Some(Signal::ModelUnknown),
            _ => None,
        },
        Family::Ark => match code.as_str() {
            "AuthenticationError" => Some(Signal::KeyInvalid),
            "AccountOverdueError" => Some(Signal::QuotaExhausted),
            c if c.starts_with("RateLimitExceeded") || c == "ServerOverloaded" => {
                Some(Signal::RateLimited)
            }
            c if c.ends_with("RiskDetection") || c == "SensitiveContentDetected" => {
                Some(Signal::Moderation)
            }
            "InvalidEndpointOrModel.NotFound" | "ModelNotOpen" | "UnsupportedModel" => {
                Some(Signal::ModelUnknown)
            }
            _ => None,
        },
        Family::SiliconFlow => match code.as_str() {
            "30001" => Some(Signal::QuotaExhausted),
            "20012" => Some(Signal::ModelUnknown),
            _ => None,
        },
        Family::Generic => match (code.as_str(), ty) {
            ("insufficient_quota", _) | (_, "insufficient_quota") => Some(Signal::QuotaExhausted),
            ("model_not_found", _) => Some(Signal::ModelUnknown),
            _ => None,
        },
    };
    by_body.unwrap_or(match status {
        401 | 403 => Signal::KeyInvalid,
        402 => Signal::QuotaExhausted,
        429 => Signal::RateLimited,
        404 => Signal::ModelUnknown,
        _ => Signal::Other,
    })
}

/// One direct call: what was sent (redacted) and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub request: String,
    pub status: Option<u16>,
    pub body: String,
    pub signal: Signal,
}

/// The direct probe of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamReport {
    pub family: Family,
    pub models: Call,
    pub chat: Call,
    pub balance: Option<Call>,
}

impl UpstreamReport {
    /// The most telling signal: the completion first, then the balance,
    /// then `/models` (which often answers even with an empty wallet).
    pub fn signal(&self) -> Signal {
        if self.chat.signal != Signal::Ok {
            return self.chat.signal;
        }
        if let Some(b) = &self.balance {
            if b.signal == Signal::QuotaExhausted {
                return b.signal;
            }
        }
        Signal::Ok
    }
}

async fn call(
    http: &reqwest::Client,
    family: Family,
    method: &str,
    url: &str,
    key: &Secret,
    body: Option<&Value>,
) -> Call {
    let path = url
        .split("://")
        .nth(1)
        .and_then(|r| r.find('/').map(|i| r[i..].to_string()))
        .unwrap_or_default();
    let mut req = if method == "GET" {
        http.get(url)
    } else {
        http.post(url)
    };
    req = req.bearer_auth(key.expose());
    if let Some(b) = body {
        req = req.json(b);
    }
    let request = format!(
        "{method} {path} (Authorization: Bearer {}){}",
        key.masked(),
        body.map(|b| format!(" {b}")).unwrap_or_default()
    );
    if let Err(why) = crate::host::outbound::policy().check_url(url) {
        return Call {
            request,
            status: None,
            body: format!("refused by the outbound guard: {why}"),
            signal: Signal::Unreachable,
        };
    }
    match req.send().await {
        Err(e) => Call {
            request,
            status: None,
            body: if e.is_timeout() {
                "timed out".into()
            } else {
                "connection failed".into()
            },
            signal: Signal::Unreachable,
        },
        Ok(r) => {
            let status = r.status().as_u16();
            // Bounded: a provider's error or balance answer is small.
            let text = match crate::host::read_limited(r, 1024 * 1024, "GET", &path).await {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => e.message,
            };
            let body: String = text.chars().take(2000).collect();
            let mut signal = classify(family, status, &text);
            // A balance answer of 200 can still say "empty".
            if signal == Signal::Ok && path.ends_with("balance") {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if v.get("is_available") == Some(&Value::Bool(false)) {
                    signal = Signal::QuotaExhausted;
                }
            }
            Call {
                request,
                status: Some(status),
                body,
                signal,
            }
        }
    }
}

/// Calls the provider directly: `/models`, one minimal completion (the
/// only call that spends anything: one token), and the balance endpoint
/// where the provider has one.
pub async fn probe(family: Family, base_url: &str, key: &Secret, model: &str) -> UpstreamReport {
    // The outbound guard (a pack's base URL is typed by an operator), and no
    // redirects: one would carry the provider key wherever it points.
    let http = crate::host::outbound::guarded_builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("static client configuration");
    let base = base_url.trim_end_matches('/');
    let models = call(&http, family, "GET", &format!("{base}/models"), key, None).await;
    let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
    let chat = call(
        &http,
        family,
        "POST",
        &format!("{base}/chat/completions"),
        key,
        Some(&body),
    )
    .await;
    let balance = match family.balance_path() {
        Some(p) => Some(call(&http, family, "GET", &format!("{base}{p}"), key, None).await),
        None => None,
    };
    UpstreamReport {
        family,
        models,
        chat,
        balance,
    }
}

/// Reads a key's balance at the provider: one GET, nothing spent.
pub async fn balance(family: Family, base_url: &str, key: &Secret) -> Option<Call> {
    let path = family.balance_path()?;
    let http = crate::host::outbound::guarded_builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("static client configuration");
    let base = base_url.trim_end_matches('/');
    Some(call(&http, family, "GET", &format!("{base}{path}"), key, None).await)
}

/// What a balance answer states: `Ok((amount, currency))`, or why it
/// states nothing readable (an error, an unknown shape). Never a made-up 0.
pub fn read_balance(family: Family, base_url: &str, c: &Call) -> Result<(f64, String), String> {
    let status = match c.status {
        Some(s) => s,
        None => return Err(format!("no answer: {}", c.body)),
    };
    if status != 200 {
        return Err(format!("HTTP {status}: {}", clip_balance(&c.body)));
    }
    let v: Value = serde_json::from_str(&c.body)
        .map_err(|_| format!("HTTP 200 but not JSON: {}", clip_balance(&c.body)))?;
    let num = |x: Option<&Value>| -> Option<f64> {
        match x? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let found = match family {
        // {"is_available":…,"balance_infos":[{"currency":"CNY","total_balance":"110.00",…}]}
        Family::DeepSeek => v
            .get("balance_infos")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|b| {
                Some((
                    num(b.get("total_balance"))?,
                    b.get("currency")
                        .and_then(Value::as_str)
                        .unwrap_or("CNY")
                        .to_string(),
                ))
            }),
        // {"code":0,"data":{"available_balance":49.58,…}}: CNY on .cn, USD on .ai.
        Family::Kimi => num(v.pointer("/data/available_balance")).map(|a| {
            let usd = base_url.to_ascii_lowercase().contains(".ai");
            (a, if usd { "USD" } else { "CNY" }.to_string())
        }),
        // {"code":20000,"data":{"totalBalance":"88.00",…}}
        Family::SiliconFlow => num(v.pointer("/data/totalBalance")).map(|a| (a, "CNY".into())),
        _ => None,
    };
    found.ok_or_else(|| {
        format!(
            "HTTP 200 without a balance this product can read: {}",
            clip_balance(&c.body)
        )
    })
}

fn clip_balance(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_read_from_the_body_before_the_status() {
        use Signal::*;
        let cases: &[(Family, u16, &str, Signal)] = &[
            (
                Family::DeepSeek,
                402,
                r#"{"error":{"message":"Insufficient Balance","type":"unknown_error"}}"#,
                QuotaExhausted,
            ),
            (
                Family::DeepSeek,
                401,
                r#"{"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid"}}"#,
                KeyInvalid,
            ),
            (
                Family::DeepSeek,
                400,
                r#"{"error":{"message":"Model Not Exist"}}"#,
                ModelUnknown,
            ),
            (
                Family::DeepSeek,
                400,
                r#"{"error":{"message":"Content Exists Risk"}}"#,
                Moderation,
            ),
            (
                Family::Kimi,
                429,
                r#"{"error":{"type":"exceeded_current_quota_error","message":"You exceeded your current quota"}}"#,
                QuotaExhausted,
            ),
            (
                Family::Kimi,
                429,
                r#"{"error":{"type":"rate_limit_reached_error","message":"max organization rpm"}}"#,
                RateLimited,
            ),
            (
                Family::Glm,
                429,
                r#"{"error":{"code":"1113","message":"余额不足或无可用资源包,请充值。"}}"#,
                QuotaExhausted,
            ),
            (
                Family::Glm,
                429,
                r#"{"error":{"code":"1302","message":"并发数过高"}}"#,
                RateLimited,
            ),
            (
                Family::DashScope,
                400,
                r#"{"error":{"code":"Arrearage","message":"Access denied"}}"#,
                QuotaExhausted,
            ),
            (
                Family::Ark,
                403,
                r#"{"error":{"code":"AccountOverdueError","message":"overdue"}}"#,
                QuotaExhausted,
            ),
            (
                Family::SiliconFlow,
                403,
                r#"{"code":30001,"message":"Sorry, your account balance is insufficient","data":null}"#,
                QuotaExhausted,
            ),
            (
                Family::SiliconFlow,
                400,
                r#"{"code":20012,"message":"Model does not exist."}"#,
                ModelUnknown,
            ),
            (
                Family::MiniMax,
                200,
                r#"{"choices":null,"base_resp":{"status_code":1008,"status_msg":"insufficient balance"}}"#,
                QuotaExhausted,
            ),
            (
                Family::MiniMax,
                500,
                r#"{"type":"error","error":{"type":"api_error","message":"insufficient balance (1008)"}}"#,
                QuotaExhausted,
            ),
            (
                Family::Generic,
                200,
                r#"{"choices":[{"message":{"content":"ok"}}]}"#,
                Ok,
            ),
        ];
        for (family, status, body, want) in cases {
            assert_eq!(
                classify(*family, *status, body),
                *want,
                "{family:?} {status} {body}"
            );
        }
    }

    #[test]
    fn families_are_detected_from_key_or_url() {
        assert_eq!(
            Family::detect("ds", "https://api.deepseek.com"),
            Family::DeepSeek
        );
        assert_eq!(
            Family::detect("qwen", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
            Family::DashScope
        );
        assert_eq!(
            Family::detect("x", "http://127.0.0.1:1234"),
            Family::Generic
        );
    }
}
