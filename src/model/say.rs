//! Messages the core writes for people, as a code with its parameters: the
//! pages write them in the reader's language, from the same code; the
//! English text (evidence bundles, logs, the CLI) comes from [`SAID`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Display;

/// A message: a code from [`SAID`] and its parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Said {
    pub code: String,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
}

/// Every code the core says, with its English template (`{name}` is a
/// parameter). A test fails when the pages lack a translation of one.
pub const SAID: &[(&str, &str)] = &[
    ("skip.short", "too short to be a key (fewer than 8 characters)"),
    ("skip.long", "too long to be a key (more than 512 characters)"),
    ("skip.chars", "contains spaces or characters a key cannot have"),
    ("skip.duplicate", "appears earlier in this batch"),
    (
        "skip.imported",
        "already imported by batch #{batch} (account {account})",
    ),
    (
        "skip.on_host",
        "already on the host as account {account} (carries our marker)",
    ),
    (
        "strategy.native",
        "the host has the native `{platform}` platform",
    ),
    (
        "strategy.no_native",
        "the host has no `{platform}` platform: openai + base URL + forced chat completions",
    ),
    (
        "strategy.unknown",
        "`{platform}` support is unknown (probe the host): openai + base URL to be safe",
    ),
    (
        "strategy.openai",
        "no native platform for this provider: openai + base URL + forced chat completions",
    ),
    (
        "warn.no_channels",
        "The host has no channels (before v0.1.107): no pricing or model restriction will be set",
    ),
    (
        "warn.all_skipped",
        "Every key was skipped: the batch only re-checks access and readiness",
    ),
    (
        "warn.unknown_need",
        "Cannot tell whether the host has `{capability}` ({evidence}); without it {why}. The account tests will show it.",
    ),
    ("field.required", "is required"),
    ("field.too_long", "is too long ({n} characters; at most {max})"),
    ("field.username_short", "must be at least 3 characters"),
    ("field.username_chars", "may contain only letters, digits and . _ - @"),
    ("field.password_short", "must be at least 12 characters"),
    ("field.password_long", "must be at most 256 characters"),
    (
        "field.url_scheme",
        "must start with http:// or https:// (for example https://gateway.example.com)",
    ),
    ("field.url_no_host", "has no host name"),
    (
        "field.url_credentials",
        "must not contain credentials; enter the admin key in its own field",
    ),
    ("field.url_query", "must not contain a query string or fragment"),
    ("field.url_spaces", "must not contain spaces"),
    ("field.url_bad_host", "has an invalid host name"),
    ("field.url_bad_port", "has an invalid port"),
    (
        "keys.empty",
        "is empty: paste one key per line, or upload a CSV or JSON file",
    ),
    ("keys.json", "is not valid JSON: {error}"),
    ("keys.json_item", "JSON item {n} has no `key` or `api_key` string"),
    ("keys.too_many", "has {n} keys; at most {max} per batch"),
    ("keys.none_usable", "has no usable key ({n} refused: {why})"),
    (
        "replace.batch_state",
        "is {status}: a key can be replaced only in a batch that was applied and is not running or rolled back",
    ),
    (
        "replace.busy",
        "has a {kind} run (#{run}) not finished; wait for it to end or resume it",
    ),
    ("replace.not_ours", "is not an account this batch created"),
    (
        "replace.gone",
        "is no longer on the host (ledger status {status})",
    ),
    (
        "replace.count",
        "holds {n} keys: paste exactly one, the key that takes this account's place",
    ),
    (
        "replace.same",
        "is the key this account already has: paste the new key",
    ),
    (
        "replace.held",
        "is already on this host: batch #{batch} imported it (account {account})",
    ),
    (
        "replace.tried",
        "was already brought into this batch (an earlier replacement); use another key",
    ),
    (
        "replace.no_group",
        "has no group on the host yet: re-run the batch before replacing a key",
    ),
    (
        "wait.models",
        "waiting for GET /v1/models to list {model} (the host caches each group's model list for up to {cache} s): listing {listings}, {elapsed} s so far, next in {next} s",
    ),
];

impl Said {
    /// A message stored as JSON text (a step's note), or `None` when the
    /// text is not one.
    pub fn parse(text: &str) -> Option<Said> {
        serde_json::from_str::<Said>(text)
            .ok()
            .filter(|s| SAID.iter().any(|(c, _)| *c == s.code))
    }

    /// `code` must be in [`SAID`] (a test reads every call's code back).
    pub fn new(code: &str, args: &[(&str, &dyn Display)]) -> Said {
        Said {
            code: code.into(),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The message in English.
    pub fn english(&self) -> String {
        let template = SAID
            .iter()
            .find(|(c, _)| *c == self.code)
            .map(|(_, t)| *t)
            .unwrap_or(self.code.as_str());
        self.fill(template)
    }

    /// `template` with this message's parameters filled in.
    pub fn fill(&self, template: &str) -> String {
        let mut out = template.to_string();
        for (k, v) in &self.args {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_written_from_its_template_and_parameters() {
        let s = Said::new("skip.imported", &[("batch", &3), ("account", &"41")]);
        assert_eq!(s.english(), "already imported by batch #3 (account 41)");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Said>(&json).unwrap(), s);
    }

    #[test]
    fn every_code_the_core_says_has_its_english_template() {
        let sources = [
            include_str!("../ops/import.rs"),
            include_str!("../ops/apply.rs"),
            include_str!("../ops/replace.rs"),
            include_str!("validate.rs"),
        ];
        let mut seen = 0;
        for src in sources {
            for (i, _) in src.match_indices("Said::new(") {
                let rest = src[i + 10..].trim_start();
                // A literal code, or a closure's parameter (its callers
                // pass literals, matched below as "strategy.…").
                if let Some(lit) = rest.strip_prefix('"') {
                    let code = &lit[..lit.find('"').unwrap()];
                    assert!(
                        SAID.iter().any(|(c, _)| *c == code),
                        "{code} has no template"
                    );
                    seen += 1;
                }
            }
            for (i, _) in src.match_indices("coded(") {
                // coded(field, "code", …): the first literal with a dot in
                // the call (the field is a name or an identifier).
                let call = &src[i + 6..];
                let call = &call[..call.find(';').unwrap_or(call.len())];
                let code = call
                    .split('"')
                    .skip(1)
                    .step_by(2)
                    .find(|l| l.contains('.') && !l.contains(' '));
                if let Some(code) = code {
                    assert!(
                        SAID.iter().any(|(c, _)| *c == code),
                        "{code} has no template"
                    );
                    seen += 1;
                }
            }
            for (i, _) in src.match_indices("said(\"") {
                let lit = &src[i + 6..];
                let code = &lit[..lit.find('"').unwrap()];
                assert!(
                    SAID.iter().any(|(c, _)| *c == code),
                    "{code} has no template"
                );
                seen += 1;
            }
        }
        assert!(seen >= 10, "the scan found the calls ({seen})");
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<_> = SAID.iter().map(|(c, _)| *c).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), SAID.len());
    }
}
