//! Pack parsing and validation. A pack is YAML or TOML; every problem is
//! reported with its dotted path, its line when it can be found, what is
//! wrong and what was expected — all problems at once, not the first only.

mod locate;
mod shape;

use crate::model::Said;
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

fn issue(source: &str, format: Format, path: &str, message: Said, expected: Said) -> PackIssue {
    PackIssue {
        line: locate::line_of(source, format, path),
        ..PackIssue::coded(path, None, message, expected)
    }
}

fn said(code: &str) -> Said {
    Said::new(code, &[])
}

/// "`value` is not …" and the like: a message about one value.
fn about(code: &str, value: &dyn std::fmt::Display) -> Said {
    Said::new(code, &[("value", value)])
}

/// Parses and validates a pack. `Err` holds every problem found.
pub fn parse(source: &str, format: Option<Format>) -> Result<ParsedPack, Vec<PackIssue>> {
    if source.len() > MAX_PACK_BYTES {
        return Err(vec![PackIssue::coded(
            "(file)",
            None,
            Said::new("pack.bytes", &[("n", &source.len())]),
            Said::new("want.bytes", &[("max", &MAX_PACK_BYTES)]),
        )]);
    }
    if source.trim().is_empty() {
        return Err(vec![PackIssue::coded(
            "(file)",
            None,
            said("is.empty"),
            said("want.pack"),
        )]);
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
        // The parser's own words (English) stay as they are.
        let expected = Said::new(
            "want.syntax",
            &[("format", &format.as_str().to_uppercase())],
        );
        vec![PackIssue {
            path: "(syntax)".into(),
            line,
            message: plain_parser_message(&message),
            expected: expected.english(),
            said: None,
            expected_said: Some(expected),
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
    let mut bad = |path: String, message: Said, expected: Said| {
        out.push(issue(source, format, &path, message, expected));
    };
    if pack.schema != 1 {
        bad(
            "schema".into(),
            about("is.value", &pack.schema),
            about("want.exact", &1),
        );
    }
    if !slug_ok(&pack.id) {
        bad(
            "id".into(),
            about("pack.bad_id", &pack.id),
            said("want.slug"),
        );
    }
    if pack.name.trim().is_empty() {
        bad("name".into(), said("is.empty"), said("want.display_name"));
    }
    if let Some(x) = &pack.exchange_rate {
        if !(x.cny_per_usd.is_finite() && x.cny_per_usd > 0.0) {
            bad(
                "exchange_rate.cny_per_usd".into(),
                about("is.value", &x.cny_per_usd),
                said("want.rate"),
            );
        }
        if x.source.trim().is_empty() {
            bad(
                "exchange_rate.source".into(),
                said("is.empty"),
                said("want.rate_source"),
            );
        }
        if !date_ok(&x.date) {
            bad(
                "exchange_rate.date".into(),
                about("pack.not_date", &x.date),
                said("want.date"),
            );
        }
    }
    if pack.providers.is_empty() {
        bad("providers".into(), said("is.empty"), said("want.provider"));
    }
    for (key, p) in &pack.providers {
        let at = |f: &str| format!("providers.{key}.{f}");
        if !slug_ok(key) {
            bad(
                format!("providers.{key}"),
                about("pack.bad_provider_key", key),
                said("want.slug"),
            );
        }
        if p.display_name.trim().is_empty() {
            bad(
                at("display_name"),
                said("is.empty"),
                said("want.display_name"),
            );
        }
        if let Some(np) = &p.native_platform {
            if !NATIVE_PLATFORMS.contains(&np.as_str()) {
                bad(
                    at("native_platform"),
                    about("pack.bad_platform", np),
                    Said::new(
                        "want.one_of_or_none",
                        &[("words", &NATIVE_PLATFORMS.join(", "))],
                    ),
                );
            }
        }
        if let Some(f) = &p.api_family {
            if !API_FAMILIES.contains(&f.as_str()) {
                bad(
                    at("api_family"),
                    about("pack.bad_family", f),
                    Said::new(
                        "want.one_of_or_none",
                        &[("words", &API_FAMILIES.join(", "))],
                    ),
                );
            }
        }
        if !url_ok(&p.base_url) {
            bad(
                at("base_url"),
                about("pack.bad_url", &p.base_url),
                said("want.url_example"),
            );
        }
        if let Some(u) = &p.native_base_url {
            if !url_ok(u) {
                bad(
                    at("native_base_url"),
                    about("pack.bad_url", u),
                    said("want.url"),
                );
            }
        }
        if p.models.is_empty() {
            bad(at("models"), said("is.empty"), said("want.model"));
        }
        if !p.models.contains_key(&p.smoke_model) {
            bad(
                at("smoke_model"),
                about("pack.not_a_model", &p.smoke_model),
                shape::one_of(&p.models.keys().map(String::as_str).collect::<Vec<_>>()),
            );
        }
        for (m, model) in &p.models {
            let mp = |f: &str| format!("providers.{key}.models.{m}.{f}");
            if m.trim().is_empty() || m.len() > 100 || m.chars().any(char::is_whitespace) {
                bad(
                    format!("providers.{key}.models.{m}"),
                    said("pack.bad_model_id"),
                    said("want.model_id"),
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
                            about("is.value", &v),
                            said("want.price"),
                        );
                    }
                }
            }
            if price.currency == Currency::Cny && pack.exchange_rate.is_none() {
                bad(
                    mp("price.currency"),
                    said("pack.cny_no_rate"),
                    said("want.exchange_rate"),
                );
            }
            if price.source.trim().is_empty() {
                bad(
                    mp("price.source"),
                    said("is.empty"),
                    said("want.price_source"),
                );
            }
            if !date_ok(&price.verified) {
                bad(
                    mp("price.verified"),
                    about("pack.not_date", &price.verified),
                    said("want.date"),
                );
            }
        }
        if !BILLING_MODEL_SOURCES.contains(&p.channel.billing_model_source.as_str()) {
            bad(
                at("channel.billing_model_source"),
                about("pack.bad_billing", &p.channel.billing_model_source),
                shape::one_of(BILLING_MODEL_SOURCES),
            );
        }
        if !(p.group.rate_multiplier.is_finite() && p.group.rate_multiplier > 0.0) {
            bad(
                at("group.rate_multiplier"),
                about("is.value", &p.group.rate_multiplier),
                said("want.multiplier"),
            );
        }
        if let Some(n) = &p.group.name {
            if n.trim().is_empty() || n.chars().count() > 90 {
                bad(
                    at("group.name"),
                    said("pack.name_length"),
                    said("want.group_name"),
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
                        about("is.value", &v),
                        said("want.limit"),
                    );
                }
            }
        }
        if !(1..=36500).contains(&p.group.validity_days) {
            bad(
                at("group.validity_days"),
                about("is.value", &p.group.validity_days),
                said("want.days"),
            );
        }
        if !(p.access.balance_usd.is_finite() && p.access.balance_usd > 0.0) {
            bad(
                at("access.balance_usd"),
                about("is.value", &p.access.balance_usd),
                said("want.positive"),
            );
        }
        if let Some(low) = p.low_balance {
            if !(low.is_finite() && low >= 0.0) {
                bad(
                    at("low_balance"),
                    about("is.value", &low),
                    said("want.limit"),
                );
            }
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
