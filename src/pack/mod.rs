//! Pack parsing and validation. A pack is YAML or TOML; every problem is
//! reported with its dotted path, its line when it can be found, what is
//! wrong and what was expected — all problems at once, not the first only.

mod locate;
mod shape;

use crate::model::{
    Currency, Pack, PackChange, PackIssue, API_FAMILIES, BILLING_MODEL_SOURCES, NATIVE_PLATFORMS,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The text formats a pack can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        }
    }

    /// Guesses from the text: TOML has `key = value` or `[table]` lines at
    /// the top level; YAML has `key: value`.
    pub fn detect(source: &str) -> Format {
        for line in source.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') || t == "---" {
                continue;
            }
            if t.starts_with('[') {
                return Format::Toml;
            }
            let eq = t.find('=');
            let colon = t.find(':');
            return match (eq, colon) {
                (Some(e), Some(c)) if e < c => Format::Toml,
                (Some(_), None) => Format::Toml,
                _ => Format::Yaml,
            };
        }
        Format::Yaml
    }
}

/// The largest pack accepted (a pack is a page of text, not a data set).
pub const MAX_PACK_BYTES: usize = 256 * 1024;

/// A pack that passed validation, with its canonical hash.
#[derive(Debug, Clone)]
pub struct ParsedPack {
    pub pack: Pack,
    pub format: Format,
    /// SHA-256 over the canonical JSON of the pack: the same content in YAML
    /// or TOML, or reformatted, has the same hash.
    pub hash: String,
}

fn issue(
    source: &str,
    format: Format,
    path: &str,
    message: impl Into<String>,
    expected: impl Into<String>,
) -> PackIssue {
    PackIssue {
        path: path.to_string(),
        line: locate::line_of(source, format, path),
        message: message.into(),
        expected: expected.into(),
    }
}

/// Parses and validates a pack. `Err` holds every problem found.
pub fn parse(source: &str, format: Option<Format>) -> Result<ParsedPack, Vec<PackIssue>> {
    if source.len() > MAX_PACK_BYTES {
        return Err(vec![PackIssue {
            path: "(file)".into(),
            line: None,
            message: format!("is {} bytes", source.len()),
            expected: format!("at most {MAX_PACK_BYTES} bytes"),
        }]);
    }
    if source.trim().is_empty() {
        return Err(vec![PackIssue {
            path: "(file)".into(),
            line: None,
            message: "is empty".into(),
            expected: "a YAML or TOML pack".into(),
        }]);
    }
    let format = format.unwrap_or_else(|| Format::detect(source));
    let parsed: Result<Pack, (String, Option<u32>)> = match format {
        Format::Yaml => serde_saphyr::from_str::<Pack>(source).map_err(|e| {
            let line = e.location().map(|l| l.line() as u32);
            (first_line(&e.to_string()), line)
        }),
        Format::Toml => toml::from_str::<Pack>(source).map_err(|e| {
            let line = e
                .span()
                .map(|s| source[..s.start.min(source.len())].matches('\n').count() as u32 + 1);
            (e.message().to_string(), line)
        }),
    };
    let pack = match parsed {
        Ok(p) => p,
        Err((message, line)) => return Err(shape_issues(source, format, message, line)),
    };
    let issues = validate(&pack, source, format);
    if !issues.is_empty() {
        return Err(issues);
    }
    let hash = canonical_hash(&pack);
    Ok(ParsedPack { pack, format, hash })
}

/// Why a pack that does not read as one is wrong: every type problem at its
/// path (wrong type, unknown or missing field, unknown word), and then the
/// value checks on the rest; only a text that is not YAML or TOML at all
/// gets the parser's own message.
fn shape_issues(
    source: &str,
    format: Format,
    message: String,
    line: Option<u32>,
) -> Vec<PackIssue> {
    let syntax = || {
        vec![PackIssue {
            path: "(syntax)".into(),
            line,
            message: plain_parser_message(&message),
            expected: format!(
                "a {} pack with the fields of schema 1 (see the built-in packs)",
                format.as_str().to_uppercase()
            ),
        }]
    };
    let tree = match format {
        Format::Yaml => serde_saphyr::from_str::<Value>(source).ok(),
        Format::Toml => toml::from_str::<toml::Value>(source).ok().map(toml_to_json),
    };
    let Some(mut tree) = tree else {
        return syntax();
    };
    let mut found = Vec::new();
    shape::check(&mut tree, &shape::pack(), "", &mut found);
    if found.is_empty() {
        return syntax();
    }
    let mut issues: Vec<PackIssue> = found
        .into_iter()
        .map(|i| issue(source, format, &i.path, i.message, i.expected))
        .collect();
    if let Ok(pack) = serde_json::from_value::<Pack>(tree) {
        let shaped: Vec<String> = issues.iter().map(|i| i.path.clone()).collect();
        let related = |a: &str, b: &str| {
            a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}."))
        };
        for v in validate(&pack, source, format) {
            // A check of a repaired value says nothing the type problem did not.
            if !shaped.iter().any(|p| related(p, &v.path)) {
                issues.push(v);
            }
        }
    }
    issues.sort_by_key(|i| (i.line.unwrap_or(u32::MAX), i.path.clone()));
    issues
}

/// The parser's message without its own position prefix (the issue carries
/// the line): `error: line 10 column 28: unknown variant` → `unknown variant`.
fn plain_parser_message(m: &str) -> String {
    let m = first_line(m);
    let m = m.strip_prefix("error: ").unwrap_or(&m).to_string();
    match m.split_once(": ") {
        Some((pos, rest)) if pos.starts_with("line ") && pos.contains("column") => rest.to_string(),
        _ => m,
    }
}

/// A TOML tree as JSON, dates and times as their text.
fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}

fn slug_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn url_ok(s: &str) -> bool {
    crate::model::host_base_url(s).is_ok()
}

fn date_ok(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s.chars()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Every semantic rule of schema 1.
pub fn validate(pack: &Pack, source: &str, format: Format) -> Vec<PackIssue> {
    let mut out = Vec::new();
    let mut bad = |path: String, message: String, expected: &str| {
        out.push(issue(source, format, &path, message, expected));
    };
    if pack.schema != 1 {
        bad("schema".into(), format!("is {}", pack.schema), "1");
    }
    if !slug_ok(&pack.id) {
        bad(
            "id".into(),
            format!("`{}` is not a valid pack id", pack.id),
            "1–64 of a-z, 0-9, - and _",
        );
    }
    if pack.name.trim().is_empty() {
        bad("name".into(), "is empty".into(), "a display name");
    }
    if let Some(x) = &pack.exchange_rate {
        if !(x.cny_per_usd.is_finite() && x.cny_per_usd > 0.0) {
            bad(
                "exchange_rate.cny_per_usd".into(),
                format!("is {}", x.cny_per_usd),
                "a positive number such as 7.1",
            );
        }
        if x.source.trim().is_empty() {
            bad(
                "exchange_rate.source".into(),
                "is empty".into(),
                "where the rate comes from",
            );
        }
        if !date_ok(&x.date) {
            bad(
                "exchange_rate.date".into(),
                format!("`{}` is not a date", x.date),
                "YYYY-MM-DD",
            );
        }
    }
    if pack.providers.is_empty() {
        bad(
            "providers".into(),
            "is empty".into(),
            "at least one provider",
        );
    }
    for (key, p) in &pack.providers {
        let at = |f: &str| format!("providers.{key}.{f}");
        if !slug_ok(key) {
            bad(
                format!("providers.{key}"),
                format!("`{key}` is not a valid provider key"),
                "1–64 of a-z, 0-9, - and _",
            );
        }
        if p.display_name.trim().is_empty() {
            bad(at("display_name"), "is empty".into(), "a display name");
        }
        if let Some(np) = &p.native_platform {
            if !NATIVE_PLATFORMS.contains(&np.as_str()) {
                bad(
                    at("native_platform"),
                    format!("`{np}` is not a native CN platform"),
                    "one of deepseek, kimi, zhipu, minimax (or leave it out)",
                );
            }
        }
        if let Some(f) = &p.api_family {
            if !API_FAMILIES.contains(&f.as_str()) {
                bad(at("api_family"), format!("`{f}` is not a known API family"), "one of deepseek, minimax, kimi, glm, dashscope, ark, siliconflow, openai (or leave it out)");
            }
        }
        if !url_ok(&p.base_url) {
            bad(
                at("base_url"),
                format!("`{}` is not an http(s) URL", p.base_url),
                "a URL such as https://api.deepseek.com",
            );
        }
        if let Some(u) = &p.native_base_url {
            if !url_ok(u) {
                bad(
                    at("native_base_url"),
                    format!("`{u}` is not an http(s) URL"),
                    "a URL",
                );
            }
        }
        if p.models.is_empty() {
            bad(at("models"), "is empty".into(), "at least one model");
        }
        if !p.models.contains_key(&p.smoke_model) {
            bad(
                at("smoke_model"),
                format!("`{}` is not one of this provider's models", p.smoke_model),
                &format!(
                    "one of: {}",
                    p.models.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        for (m, model) in &p.models {
            let mp = |f: &str| format!("providers.{key}.models.{m}.{f}");
            if m.trim().is_empty() || m.len() > 100 || m.chars().any(char::is_whitespace) {
                bad(
                    format!("providers.{key}.models.{m}"),
                    "is not a valid model id".into(),
                    "1–100 characters without spaces",
                );
            }
            let price = &model.price;
            for (name, v) in [
                ("input", Some(price.input)),
                ("output", Some(price.output)),
                ("cache_read", price.cache_read),
            ] {
                if let Some(v) = v {
                    if !(v.is_finite() && v >= 0.0) {
                        bad(
                            mp(&format!("price.{name}")),
                            format!("is {v}"),
                            "a price ≥ 0 per million tokens",
                        );
                    }
                }
            }
            if price.currency == Currency::Cny && pack.exchange_rate.is_none() {
                bad(mp("price.currency"), "is CNY but the pack has no exchange_rate".into(), "an exchange_rate (cny_per_usd, source, date) at the top of the pack, since the host stores USD");
            }
            if price.source.trim().is_empty() {
                bad(
                    mp("price.source"),
                    "is empty".into(),
                    "where the price was read (a URL)",
                );
            }
            if !date_ok(&price.verified) {
                bad(
                    mp("price.verified"),
                    format!("`{}` is not a date", price.verified),
                    "YYYY-MM-DD",
                );
            }
        }
        if !BILLING_MODEL_SOURCES.contains(&p.channel.billing_model_source.as_str()) {
            bad(
                at("channel.billing_model_source"),
                format!(
                    "`{}` is not a billing source",
                    p.channel.billing_model_source
                ),
                "channel_mapped, requested, upstream or response_model",
            );
        }
        if !(p.group.rate_multiplier.is_finite() && p.group.rate_multiplier > 0.0) {
            bad(
                at("group.rate_multiplier"),
                format!("is {}", p.group.rate_multiplier),
                "a number > 0 (the host refuses 0 with an internal error)",
            );
        }
        if let Some(n) = &p.group.name {
            if n.trim().is_empty() || n.chars().count() > 90 {
                bad(
                    at("group.name"),
                    "is empty or too long".into(),
                    "1–90 characters",
                );
            }
        }
        for (name, v) in [
            ("daily_limit_usd", p.group.daily_limit_usd),
            ("weekly_limit_usd", p.group.weekly_limit_usd),
            ("monthly_limit_usd", p.group.monthly_limit_usd),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    bad(
                        at(&format!("group.{name}")),
                        format!("is {v}"),
                        "a number ≥ 0 (0 means no limit)",
                    );
                }
            }
        }
        if !(1..=36500).contains(&p.group.validity_days) {
            bad(
                at("group.validity_days"),
                format!("is {}", p.group.validity_days),
                "1 to 36500 days",
            );
        }
        if !(p.access.balance_usd.is_finite() && p.access.balance_usd > 0.0) {
            bad(
                at("access.balance_usd"),
                format!("is {}", p.access.balance_usd),
                "a number > 0",
            );
        }
    }
    out
}

/// SHA-256 of the canonical JSON form.
pub fn canonical_hash(pack: &Pack) -> String {
    let json = serde_json::to_vec(pack).expect("packs serialise");
    hex::encode(Sha256::digest(json))
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The differences between two packs, by path.
pub fn diff(old: &Pack, new: &Pack) -> Vec<PackChange> {
    let mut a = Vec::new();
    let mut b = Vec::new();
    flatten("", &serde_json::to_value(old).expect("serialise"), &mut a);
    flatten("", &serde_json::to_value(new).expect("serialise"), &mut b);
    let a: std::collections::BTreeMap<_, _> = a.into_iter().collect();
    let b: std::collections::BTreeMap<_, _> = b.into_iter().collect();
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| PackChange {
            path: k.clone(),
            old: a.get(k).cloned(),
            new: b.get(k).cloned(),
        })
        .collect()
}

/// The packs the product ships: one per provider family, prices with their
/// source and verification date (from the providers reference).
pub fn builtin() -> Vec<(&'static str, &'static str)> {
    vec![("cn-official.yaml", include_str!("builtin/cn-official.yaml"))]
}

#[cfg(test)]
mod tests;
