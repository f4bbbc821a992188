//! Messages the core writes for people, as a code with its parameters: the
//! pages write them in the reader's language, from the same code; the
//! English text (evidence bundles, logs, the CLI) comes from [`SAID`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Display;

/// A message: a code from [`SAID`] and its parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    ("field.secret_long", "is too long (at most {max} characters)"),
    ("field.no_spaces", "must not contain spaces or line breaks"),
    ("field.email", "is not an email address"),
    ("host.auth_kind", "must be `api_key` (admin API key) or `password` (admin email and password)"),
    ("host.probe_email_needed", "is required when a probe-user password is given"),
    ("host.probe_password_needed", "is required when a probe-user email is given"),
    ("host.unreachable", "could not be reached as a Sub2API host (no answer, refused, timed out, or another kind of server). Check the URL; an administrator finds the detail in the audit log"),
    ("host.outbound_refused", "{why_en}"),
    ("host.requires_2fa", "this admin account signs in with two-factor authentication; use the admin API key instead"),
    ("host.refused", "was refused by the host ({code}{said})"),
    ("host.unexpected", "the admin API did not answer as expected: {error}"),
    ("host.name_taken", "a host named `{name}` already exists"),
    ("host.reenter", "must be entered again: the base URL moves to another origin (scheme, host or port), and stored secrets are never sent to a new origin"),
    ("host.has_batches", "has {n} import batches whose evidence refers to it; it stays"),
    ("accounts.query_long", "is longer than any key mask or fingerprint (100 characters at most)"),
    ("operator.name_taken", "an operator named `{username}` already exists (or existed and was removed: the audit log keeps that name)"),
    ("operator.reset_self", "is you: change your own password on your account page (it asks for the current one)"),
    ("operator.throttled", "was wrong {n} times in the last {minutes} minutes: try again later"),
    ("operator.wrong_current", "is not your current password"),
    ("operator.same_password", "is the same as the current one"),
    ("operator.remove_self", "is you: another admin must remove you"),
    ("operator.last_admin", "is the last enabled admin: make another admin first"),
    ("operator.role", "unknown role `{role}`; expected admin, operator or viewer"),
    ("setup.token_required", "is required: it was printed in the server log at start"),
    ("setup.token_invalid", "is not valid: use the newest token from the server log, or sign in if setup is already done"),
    ("compliance.none", "has no compliance gate (added in v0.1.136): there is nothing to accept"),
    ("compliance.accepted", "is not needed: the compliance text {version} is already accepted for this credential"),
    ("compliance.phrase_required", "is required: type the host's phrase to accept its compliance text"),
    ("compliance.phrase_mismatch", "does not match the host's phrase: type it exactly as shown (English or Chinese)"),
    ("compliance.phrase_refused", "was refused by the host: it does not match its phrase"),
    ("adminkey.exists", "already uses an admin API key; to replace it, regenerate it in the host's panel and edit the host"),
    ("adminkey.confirm", "must be ticked: a new key replaces any admin key the host has, and tools using the old one stop working"),
    ("adminkey.locked", "is locked by its compliance gate (HTTP 423): accept the compliance text first"),
    ("discard.again", "is {status}: only a planned batch that was never applied can be discarded"),
    ("discard.applied", "is {status}: only a planned batch that was never applied can be discarded; roll it back instead to remove what it created"),
    ("batch.discarded", "was discarded: nothing of it runs; plan a new batch instead"),
    ("batch.rolled_back", "was rolled back (or is being rolled back): plan a new batch instead"),
    ("batch.blocked", "cannot be applied on this host: {message_en} {action_en} Nothing was written to the host."),
    ("batch.busy", "has a {kind} run running; wait for it to end"),
    ("batch.leased", "is being {what_en} by another process ({owner}) whose lease runs until {until}; the page shows its progress"),
    ("plan.no_probe_user", "has no probe user: readiness is proven with a real user key, so add the probe user's email and password to the host"),
    ("plan.probe_failed", "failed its last probe ({headline_en}): fix that and probe again"),
    ("plan.probe_user_blocked", "cannot close access: the probe user cannot sign in ({reason}). Fix that on the host and probe again"),
    ("plan.probe_user_refused", "cannot close access: the probe user's sign-in was refused ({code}). Check the probe user's email and password (the user must exist on the host), then probe again"),
    ("plan.no_subscriptions", "subscription needs a host with subscriptions; use self_service"),
    ("plan.host_unreadable", "could not be read while planning: {error}"),
    ("plan.group_taken", "the host already has a group named `{name}` that this product did not create; set group.name in the pack to another name"),
    ("plan.channel_taken", "the host already has a channel named `{name}` that this product did not create"),
    ("plan.provider_missing", "`{provider}` is not in pack {pack} (it has: {has})"),
    ("filter.provider_long", "is longer than any provider key"),
    ("filter.status", "{status} is not a batch status"),
    ("rollback.never_applied", "was never applied: there is nothing on the host to roll back"),
    ("rollback.running", "is running: wait for it to end before rolling it back"),
    (
        "review.own",
        "was planned or applied by you: someone who did neither reviews it",
    ),
    (
        "approval.own",
        "was planned by you: another operator or admin approves its apply",
    ),
    (
        "approval.own_rollback",
        "rollback was approved by you: another operator or admin carries it out",
    ),
    ("filter.review", "{review} is not a review state"),
    (
        "review.not_finished",
        "is {status}: only a finished batch (succeeded, partly or failed) is reviewed",
    ),
    (
        "review.evidence_changed",
        "changed since you opened it (a run or a diagnosis came after): read the evidence again, then decide",
    ),
    (
        "review.decision",
        "must be accepted, rejected or needs_changes",
    ),
    (
        "review.comment_required",
        "is needed when you reject or ask for changes: say what is wrong",
    ),
    ("review.comment_long", "is longer than 2000 characters"),
    (
        "approval.required",
        "needs a second person's approval: host {host} is protected. Someone other than {author} approves the {purpose} on the batch page",
    ),
    (
        "approval.plan_changed",
        "is of another plan: the plan's digest is now {digest}. Read the plan again and approve it",
    ),
    (
        "approval.not_protected",
        "is not needed: the host is not protected",
    ),
    (
        "approval.state",
        "is {status}: there is nothing to approve for {purpose}",
    ),
    ("rollback.done", "is already rolled back"),
    ("rollback.applying", "is being applied: wait for the apply to end before rolling it back"),
    ("failed.status", "is {status}: its failed accounts cannot be changed now"),
    ("failed.none", "has no account whose test failed that is still on the host"),
    ("drift.reason", "say why it is ignored (at least 3 characters)"),
    ("drift.days", "must be between 1 and 365"),
    ("drift.no_check", "no drift check yet: check the host first"),
    ("drift.not_in_check", "`{key}` is not in the newest check; check again"),
    ("drift.not_offered", "`{action}` is not offered for this finding (offered: {offered})"),
    ("drift.no_batch", "has no batch to record the repair in"),
    ("drift.unknown_kind", "unknown kind {kind}"),
    ("drift.gone", "the object is gone from the host; check again"),
    ("drift.not_duplicate", "is the ledger's own object, not a duplicate"),
    ("drift.not_in_ledger", "is not in the ledger"),
    ("drift.unknown_action", "unknown action `{action}`"),
    ("drift.subscription", "a subscription cannot be re-applied in place; forget it and re-plan"),
    ("block.lacks", "The host {version} lacks `{capability}` ({evidence}): {why}."),
    ("why.passthrough", "the provider speaks only chat completions, and before v0.1.127 the host's `openai` platform sends every completion upstream as /v1/responses (it ignores `openai_responses_mode`), which the provider answers 404: every account test and every request would fail"),
    ("act.passthrough", "Upgrade the host to v0.1.127 or later (v0.1.179 or later also has the native deepseek/kimi/zhipu platforms), probe it again, then plan again."),
    ("why.minimax", "the native `{platform}` platform arrived in v0.2.4"),
    ("act.minimax", "Upgrade the host to v0.2.4 or later, or plan on a host that has it."),
    ("why.cn_platforms", "the native `{platform}` platform arrived in v0.1.178"),
    ("act.cn_platforms", "Upgrade the host to v0.1.179 or later, probe it again, then plan again."),
    ("why.admin_key_binding", "an exclusive group refuses a user's own key binding, so the probe user's key is bound by the admin API (PUT /admin/api-keys/:id, v0.1.89), which grants the group"),
    ("act.admin_key_binding", "Upgrade the host to v0.1.89 or later, or set `group.exclusive: false` in the pack."),
    ("why.subscriptions", "subscription access assigns the probe user a subscription to the group"),
    ("act.subscriptions", "Use the self_service mode, or a host with subscriptions."),
    ("discard.started", "has started applying: it can no longer be discarded; roll it back once it ends"),
    ("is.empty", "is empty"),
    ("is.bool", "is `{value}` (yes/no)"),
    ("is.number", "is the number {value}"),
    ("is.text", "is the text \"{value}\""),
    ("is.long_text", "is a long text"),
    ("is.list", "is a list"),
    ("is.table", "is a table of fields"),
    ("is.value", "is {value}"),
    ("pack.bytes", "is {n} bytes"),
    ("pack.not_a_field", "is not a field of {what_en}"),
    ("pack.missing", "is missing"),
    ("pack.bad_id", "`{value}` is not a valid pack id"),
    ("pack.bad_provider_key", "`{value}` is not a valid provider key"),
    ("pack.not_date", "`{value}` is not a date"),
    ("pack.bad_platform", "`{value}` is not a native CN platform"),
    ("pack.bad_family", "`{value}` is not a known API family"),
    ("pack.bad_url", "`{value}` is not an http(s) URL"),
    ("pack.not_a_model", "`{value}` is not one of this provider's models"),
    ("pack.bad_model_id", "is not a valid model id"),
    ("pack.cny_no_rate", "is CNY but the pack has no exchange_rate"),
    ("pack.bad_billing", "`{value}` is not a billing source"),
    ("pack.name_length", "is empty or too long"),
    ("want.text", "a text"),
    ("want.number", "a number, such as 0.3"),
    ("want.count", "a whole number, such as 1"),
    ("want.bool", "true or false"),
    ("want.one_of", "one of: {words}"),
    ("want.one_of_or_none", "one of {words} (or leave it out)"),
    ("want.table", "a table of {what_en}, each under its own name"),
    ("want.record", "{what_en}: a table of fields"),
    ("want.needed", "{what_en} needs it"),
    ("want.bytes", "at most {max} bytes"),
    ("want.pack", "a YAML or TOML pack"),
    ("want.syntax", "a {format} pack with the fields of schema 1 (see the built-in packs)"),
    ("want.exact", "{value}"),
    ("want.slug", "1–64 of a-z, 0-9, - and _"),
    ("want.display_name", "a display name"),
    ("want.rate", "a positive number such as 7.1"),
    ("want.rate_source", "where the rate comes from"),
    ("want.date", "YYYY-MM-DD"),
    ("want.provider", "at least one provider"),
    ("want.url_example", "a URL such as https://api.deepseek.com"),
    ("want.url", "a URL"),
    ("want.model", "at least one model"),
    ("want.model_id", "1–100 characters without spaces"),
    ("want.price", "a price ≥ 0 per million tokens"),
    ("want.exchange_rate", "an exchange_rate (cny_per_usd, source, date) at the top of the pack, since the host stores USD"),
    ("want.price_source", "where the price was read (a URL)"),
    ("want.multiplier", "a number > 0 (the host refuses 0 with an internal error)"),
    ("want.group_name", "1–90 characters"),
    ("want.limit", "a number ≥ 0 (0 means no limit)"),
    ("want.days", "1 to 36500 days"),
    ("want.positive", "a number > 0"),
    ("undo.shared", "also used by batch {batches} (not rolled back): kept until they are rolled back"),
    ("undo.gone", "already gone from the host; only the ledger is updated"),
    ("undo.as_applied", "as applied"),
    ("undo.forced", "changed on the host since apply; removed because the operator forced it"),
    ("undo.changed", "changed on the host since apply: kept unless forced"),
    ("undo.top_up", "The probe user's balance top-up of ${amount} (step {step}) is not reversed: balance may already be spent, and the host keeps its usage log."),
    ("undo.usage", "Usage already billed through these accounts stays in the host's usage records."),
    ("token.scope", "must be read, write or admin"),
    ("token.days", "must be a whole number of days from 1 to {max}"),
    ("token.operator", "is not an operator who can act (unknown, disabled or removed)"),
    ("unhealthy.status", "status `{status}`{said}"),
    ("unhealthy.unschedulable", "not schedulable (schedulable=false)"),
    ("unhealthy.rate_limited", "rate-limited until {until}{said}"),
    ("unhealthy.temporary", "temporarily unschedulable until {until}{said}"),
    ("unhealthy.overloaded", "overloaded until {until}{said}"),
    ("audit.filter_long", "is longer than any value in the log ({max} characters at most)"),
];

impl Said {
    /// A message stored as JSON text (a step's note), or `None` when the
    /// text is not one.
    pub fn parse(text: &str) -> Option<Said> {
        serde_json::from_str::<Said>(text)
            .ok()
            .filter(|s| template(&s.code).is_some())
    }

    /// A stored note in English: its message when it is coded, else the
    /// text as it is.
    pub fn english_of(text: &str) -> String {
        Said::parse(text)
            .map(|s| s.english())
            .unwrap_or_else(|| text.to_string())
    }

    /// `code` must be in [`SAID`] or [`super::WATCH_SAID`] (a test reads every
    /// call's code back).
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
        let template = template(&self.code).unwrap_or(self.code.as_str());
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

/// The English template of a code, wherever it is declared.
pub fn template(code: &str) -> Option<&'static str> {
    SAID.iter()
        .find(|(c, _)| *c == code)
        .map(|(_, t)| *t)
        .or_else(|| super::watch_en(code))
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
            include_str!("../ops/hosts.rs"),
            include_str!("../ops/operators.rs"),
            include_str!("../ops/compliance.rs"),
            include_str!("../ops/rollback.rs"),
            include_str!("../ops/drift.rs"),
            include_str!("../ops/tokens.rs"),
            include_str!("../ops/watch.rs"),
            include_str!("validate.rs"),
            include_str!("operator.rs"),
            include_str!("../pack/mod.rs"),
            include_str!("../pack/shape.rs"),
        ];
        let mut seen = 0;
        for src in sources {
            for (i, _) in src.match_indices("Said::new(") {
                let rest = src[i + 10..].trim_start();
                // A literal code, or a closure's parameter (its callers
                // pass literals, matched below as "strategy.…").
                if let Some(lit) = rest.strip_prefix('"') {
                    let code = &lit[..lit.find('"').unwrap()];
                    assert!(template(code).is_some(), "{code} has no template");
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
                    assert!(template(code).is_some(), "{code} has no template");
                    seen += 1;
                }
            }
            let calls = src
                .match_indices("said(\"")
                .map(|(i, _)| i + 6)
                .chain(src.match_indices("about(\"").map(|(i, _)| i + 7));
            for start in calls {
                let lit = &src[start..];
                let code = &lit[..lit.find('"').unwrap()];
                assert!(template(code).is_some(), "{code} has no template");
                seen += 1;
            }
        }
        assert!(seen >= 10, "the scan found the calls ({seen})");
        // Every refusal a person reads is coded, so the pages can write it
        // in Chinese (the built-in pack's self-check is for developers).
        for src in sources {
            let plain = src.matches("FieldError::new(").count();
            let allowed =
                src.matches("\"builtin pack\"").count() + src.matches("pub fn new(field").count();
            assert!(
                plain <= allowed,
                "an uncoded FieldError::new in {}",
                &src[..80]
            );
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<_> = SAID
            .iter()
            .map(|(c, _)| *c)
            .chain(super::super::WATCH_SAID.iter().map(|(c, _, _)| *c))
            .collect();
        let all = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all);
    }
}
