//! Evidence bundles: a batch exported as JSON (machine-readable, with a
//! schema version) and as an HTML report a reviewer can read offline, both
//! carrying a SHA-256 digest over the RFC 8785 canonical JSON content and
//! an Ed25519 signature of the same bytes by the installation's key, which a
//! reviewer checks with standard tools (see the README) against the public
//! key the installation shows. Secrets never appear: the journal and
//! the diagnosis store redacted evidence only.

use super::{Core, OpError};
use crate::model::{format_ms, BatchView, StepKind};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Schema version of the JSON bundle.
pub const BUNDLE_SCHEMA: u32 = 1;

/// An exported bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub json: String,
    pub html: String,
    pub digest: String,
}

/// RFC 8785 (JCS) canonical JSON: object members sorted by the UTF-16
/// code units of their names, no whitespace, strings escaped as
/// `JSON.stringify` does, numbers as ECMAScript writes them. Any JCS
/// implementation (or `JSON.stringify` with sorted keys) gives the same
/// bytes.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            out.push_str(&serde_json::to_string(v).expect("a scalar serialises"))
        }
        Value::Number(n) => out.push_str(&ecma_number(n)),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut members: Vec<(&String, &Value)> = o.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, x)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("a string serialises"));
                out.push(':');
                write_canonical(x, out);
            }
            out.push('}');
        }
    }
}

/// A number as ECMAScript's `Number.prototype.toString` writes it (the
/// shortest digits that round-trip, in plain or exponent form by its rules).
fn ecma_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let x = n.as_f64().unwrap_or(0.0);
    if x == 0.0 {
        return "0".into();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // `{:e}` gives the shortest round-trip digits: `1.2345e-7`.
    let e = format!("{:e}", x.abs());
    let (mantissa, exp) = e.split_once('e').expect("exponent form");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    let n = exp.parse::<i32>().expect("an exponent") + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let exp = if e >= 0 {
            format!("+{e}")
        } else {
            e.to_string()
        };
        if k == 1 {
            format!("{digits}e{exp}")
        } else {
            format!("{}.{}e{exp}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}

/// What the digest and the signature cover: the JCS canonical form of the
/// document without its `digest` and `signature` members.
pub fn signed_bytes(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(o) = d.as_object_mut() {
        o.remove("digest");
        o.remove("signature");
    }
    canonical_json(&d)
}

/// SHA-256 over [`signed_bytes`].
pub fn digest_of(doc: &Value) -> String {
    hex::encode(Sha256::digest(signed_bytes(doc).as_bytes()))
}

/// An Ed25519 public key as PEM (SubjectPublicKeyInfo), the form OpenSSL
/// and Node read.
pub fn public_key_pem(key: &ed25519_dalek::VerifyingKey) -> String {
    use base64::Engine as _;
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(key.as_bytes());
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

impl Core {
    /// The installation's evidence-signing key, kept sealed in the keyring
    /// (made on first use; re-sealed by a master-key rotation).
    pub async fn signing_key(&self) -> Result<ed25519_dalek::SigningKey, OpError> {
        let seed = self
            .keyring_secret("signing", || {
                crate::secrets::Secret::new(crate::secrets::random_hex(32))
            })
            .await?;
        let raw: [u8; 32] = hex::decode(seed.expose())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                OpError::Store(crate::store::StoreError::Corrupt(
                    "keyring: bad signing key".into(),
                ))
            })?;
        Ok(ed25519_dalek::SigningKey::from_bytes(&raw))
    }

    /// The public half, as PEM, for reviewers to compare with a bundle's.
    pub async fn signing_public_key(&self) -> Result<String, OpError> {
        Ok(public_key_pem(&self.signing_key().await?.verifying_key()))
    }
}

/// Checks a bundle's digest and, when it carries one, its signature:
/// `Ok(true)` when the content is as exported and signed by the key it
/// names (whether that key is the installation's is for the reviewer to
/// compare).
pub fn verify_bundle(text: &str) -> Result<bool, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let claimed = v
        .pointer("/digest/value")
        .and_then(Value::as_str)
        .ok_or("no digest.value")?;
    if digest_of(&v) != claimed {
        return Ok(false);
    }
    let Some(sig) = v.get("signature") else {
        return Ok(true);
    };
    let pem = sig
        .get("public_key_pem")
        .and_then(Value::as_str)
        .ok_or("no signature.public_key_pem")?;
    let key = pem_key(pem)?;
    if !verify_with(&key, &signed_bytes(&v), sig.get("value"))? {
        return Ok(false);
    }
    // The evidence digest a decision names is of the bundle's `batch`.
    if let Some(e) = v.get("evidence_digest").and_then(Value::as_str) {
        if v.get("batch").map(digest_of).as_deref() != Some(e) {
            return Ok(false);
        }
    }
    // Each decision carries its own signature, checkable on its own.
    for d in v
        .pointer("/reviews/decisions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let signed = d.get("signed").ok_or("a decision without `signed`")?;
        if !verify_with(&key, &canonical_json(signed), d.pointer("/signature/value"))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An Ed25519 public key from its PEM (SubjectPublicKeyInfo).
fn pem_key(pem: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .map_err(|e| format!("public key: {e}"))?;
    let raw: [u8; 32] = der
        .get(12..)
        .and_then(|k| k.try_into().ok())
        .ok_or("public key: not an Ed25519 key")?;
    ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|e| format!("public key: {e}"))
}

/// Whether `value` (base64) is the key's signature of `bytes`.
fn verify_with(
    key: &ed25519_dalek::VerifyingKey,
    bytes: &str,
    value: Option<&Value>,
) -> Result<bool, String> {
    use base64::Engine as _;
    let value = base64::engine::general_purpose::STANDARD
        .decode(value.and_then(Value::as_str).ok_or("no signature value")?)
        .map_err(|e| format!("signature: {e}"))?;
    let signature =
        ed25519_dalek::Signature::from_slice(&value).map_err(|e| format!("signature: {e}"))?;
    Ok(key.verify_strict(bytes.as_bytes(), &signature).is_ok())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Core {
    /// Exports a batch's evidence and audits the export.
    pub async fn export_bundle(&self, actor: &str, batch_id: i64) -> Result<Bundle, OpError> {
        let b = self.batch_view(batch_id).await?;
        let host = self.host_view(b.host_id).await?;
        let audit = self.store.audit_for_batch(b.id, &b.uid).await?;
        let panel = self.review_panel(b.id).await?;
        let evidence = super::review::evidence_digest(&b);
        let decisions: Vec<Value> = panel
            .history
            .iter()
            .map(|r| {
                json!({
                    "decision": r.decision,
                    "comment": r.comment,
                    "reviewer": r.reviewer,
                    "at_ms": r.at_ms,
                    "evidence_digest": r.digest,
                    "superseded": r.superseded,
                    "stale": r.stale,
                    "signed": r.signed_content(&b.uid),
                    "signature": {
                        "algorithm": "Ed25519",
                        "over": "the RFC 8785 (JCS) canonical JSON of `signed`",
                        "value": r.signature,
                    },
                })
            })
            .collect();
        let exported_at = crate::store::now_ms();
        let mut doc = json!({
            "kind": "sub2api-cn-relay-manager/evidence-bundle",
            "schema_version": BUNDLE_SCHEMA,
            "product_version": crate::PRODUCT_VERSION,
            "exported_at_ms": exported_at,
            "exported_by": actor,
            "host": {
                "id": host.id,
                "name": host.name,
                "base_url": host.base_url,
                "version_at_plan": b.host_version,
                "latest_probe": host.last_probe,
            },
            "batch": b,
            "evidence_digest": evidence,
            "reviews": {
                "state": panel.state,
                "decisions": decisions,
                "changes_since": panel.changes,
            },
            "audit": audit,
        });
        let digest = digest_of(&doc);
        let key = self.signing_key().await?;
        let signature = {
            use base64::Engine as _;
            use ed25519_dalek::Signer as _;
            base64::engine::general_purpose::STANDARD
                .encode(key.sign(signed_bytes(&doc).as_bytes()).to_bytes())
        };
        doc["digest"] = json!({
            "algorithm": "sha256",
            "over": "the RFC 8785 (JCS) canonical JSON of this document without `digest` and `signature`",
            "value": digest,
        });
        doc["signature"] = json!({
            "algorithm": "Ed25519",
            "over": "the same bytes as the digest",
            "public_key_pem": public_key_pem(&key.verifying_key()),
            "value": signature,
        });
        let json_text = serde_json::to_string_pretty(&doc).expect("values serialise");
        let html = render_html(
            &b,
            &host.name,
            &host.base_url,
            actor,
            exported_at,
            &digest,
            &audit,
            &panel,
            &evidence,
        );
        self.store
            .audit(
                actor,
                "batch.export",
                &crate::model::batch_target(b.id),
                "ok",
                &format!("sha256={}", &digest[..16]),
            )
            .await?;
        Ok(Bundle {
            json: json_text,
            html,
            digest,
        })
    }
}

fn render_html(
    b: &BatchView,
    host_name: &str,
    host_url: &str,
    actor: &str,
    exported_at: i64,
    digest: &str,
    audit: &[crate::model::AuditEntry],
    panel: &crate::model::ReviewPanel,
    evidence: &str,
) -> String {
    let p = &b.plan;
    let mut h = String::new();
    h.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!(
        "<title>Evidence: batch #{} on {}</title>",
        b.id,
        esc(host_name)
    ));
    h.push_str("<style>body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330}h1{font-size:20px}h2{font-size:16px;margin-top:24px}table{border-collapse:collapse;width:100%}th,td{border:1px solid #d0d5dd;padding:5px 8px;text-align:left;vertical-align:top}th{background:#f2f4f7}pre{white-space:pre-wrap;word-break:break-all;background:#f6f7f9;padding:6px;margin:4px 0;font-size:12px}.ok{color:#12805c;font-weight:600}.bad{color:#b42318;font-weight:600}.muted{color:#667085}code{font-size:12px}</style></head><body>");
    h.push_str(&format!(
        "<h1>Evidence bundle — batch #{} ({})</h1><p>Status <b class=\"{}\">{}</b> · access <b>{}</b></p>",
        b.id,
        esc(&b.uid),
        if b.status.as_str() == "succeeded" { "ok" } else { "bad" },
        b.status.as_str(),
        b.access_status.as_str()
    ));
    h.push_str(&review_banner(panel));
    h.push_str(&format!(
        "<p class=\"muted\">Exported {} by {} · product v{} · host {} ({}) at v{} when planned · batch created {} by {} with product v{}</p>",
        format_ms(exported_at),
        esc(actor),
        crate::PRODUCT_VERSION,
        esc(host_name),
        esc(host_url),
        esc(b.host_version.as_deref().unwrap_or("?")),
        format_ms(b.created_at_ms),
        esc(&b.created_by),
        esc(&b.product_version)
    ));
    h.push_str(&format!(
        "<p>SHA-256 of the JSON bundle content: <code id=\"digest\">{digest}</code> · evidence digest (what a reviewer decides on): <code id=\"evidence-digest\">{evidence}</code></p>"
    ));
    // Contents: a long report is read by section.
    let mut toc = vec![("plan", "Plan")];
    if !p.skipped.is_empty() {
        toc.push(("skipped", "Keys not imported"));
    }
    toc.push(("smoke", "Smoke checks"));
    if b.diagnosis.is_some() {
        toc.push(("diagnosis", "Diagnosis"));
    }
    toc.extend([
        ("reviews", "Review"),
        ("runs", "Runs"),
        ("timeline", "Timeline"),
        ("audit", "Who did what"),
    ]);
    h.push_str("<nav class=\"toc\">Contents: ");
    h.push_str(
        &toc.iter()
            .map(|(id, t)| format!("<a href=\"#{id}\">{t}</a>"))
            .collect::<Vec<_>>()
            .join(" · "),
    );
    h.push_str("</nav>");
    h.push_str("<h2 id=\"plan\">Plan</h2><table>");
    for (k, v) in [
        (
            "Provider",
            format!(
                "{}/{} (pack {})",
                p.pack_id,
                p.provider_key,
                &p.pack_hash[..12.min(p.pack_hash.len())]
            ),
        ),
        (
            "Platform",
            format!("{} — {}", p.platform, p.strategy_reason),
        ),
        ("Access mode", p.mode.as_str().to_string()),
        ("Group / channel", p.group_name.clone()),
        ("Smoke model", p.smoke_model.clone()),
        (
            "Prices (USD/token)",
            p.prices
                .iter()
                .map(|(m, i, o)| format!("{m}: {i:.3e} in, {o:.3e} out"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (
            "Keys",
            format!("{} imported, {} not imported", b.key_count, p.skipped.len()),
        ),
    ] {
        h.push_str(&format!("<tr><th>{k}</th><td>{}</td></tr>", esc(&v)));
    }
    h.push_str("</table>");
    if !p.skipped.is_empty() {
        h.push_str(
            "<h2 id=\"skipped\">Keys not imported</h2><table><tr><th>Key</th><th>Why</th></tr>",
        );
        for s in &p.skipped {
            h.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                esc(&s.masked),
                esc(&s.reason)
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("<h2 id=\"smoke\">Smoke checks</h2><table><tr><th>Check</th><th>State</th><th>Request</th><th>Response</th></tr>");
    for s in b
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::AccountTest | StepKind::Readiness))
    {
        h.push_str(&format!(
            "<tr class=\"smoke\"><td>{}</td><td>{}{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
            esc(&s.target),
            s.state.as_str(),
            if s.error.is_empty() { String::new() } else { format!("<br><span class=\"bad\">{}</span>", esc(&s.error)) },
            esc(&s.request),
            esc(&s.response)
        ));
    }
    h.push_str("</table>");
    if let Some(d) = &b.diagnosis {
        h.push_str(&format!("<h2 id=\"diagnosis\">Diagnosis</h2><p class=\"muted\">{} · {} upstream completion(s) spent</p><table><tr><th>Check</th><th>Class</th><th>Evidence</th><th>Next action</th></tr>", format_ms(d.at_ms), d.upstream_completions));
        for i in &d.items {
            h.push_str(&format!(
                "<tr><td>{}</td><td><b>{}</b></td><td>{}</td><td>{}</td></tr>",
                esc(&i.target),
                i.class.as_str(),
                i.evidence
                    .iter()
                    .map(|e| format!("<pre>{}</pre>", esc(e)))
                    .collect::<String>(),
                esc(&i.action)
            ));
        }
        h.push_str("</table>");
    }
    h.push_str(&review_section(panel));
    h.push_str("<h2 id=\"runs\">Runs</h2><table><tr><th>Run</th><th>Kind</th><th>Status</th><th>Who</th><th>Started</th><th>Finished</th></tr>");
    for r in &b.runs {
        h.push_str(&format!(
            "<tr class=\"run\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.id,
            r.kind.as_str(),
            esc(&r.status),
            esc(&r.actor),
            format_ms(r.created_at_ms),
            r.finished_at_ms.map(format_ms).unwrap_or_default()
        ));
    }
    h.push_str("</table>");
    let run_kind = |id: i64| {
        b.runs
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.kind.as_str())
            .unwrap_or("")
    };
    h.push_str("<h2 id=\"timeline\">Timeline</h2><table><tr><th>Run</th><th>#</th><th>Step</th><th>State</th><th>Remote id</th><th>Started</th><th>Finished</th><th>Request / response</th></tr>");
    for s in &b.steps {
        h.push_str(&format!(
            "<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre><pre>{}</pre>{}</td></tr>",
            run_kind(s.run_id),
            s.run_id,
            s.seq,
            esc(&s.target),
            s.state.as_str(),
            esc(s.remote_id.as_deref().unwrap_or("")),
            s.started_at_ms.map(format_ms).unwrap_or_default(),
            s.finished_at_ms.map(format_ms).unwrap_or_default(),
            esc(&s.request),
            esc(&s.response),
            if s.error.is_empty() { String::new() } else { format!("<span class=\"bad\">{}</span>", esc(&s.error)) }
        ));
    }
    h.push_str("</table><h2 id=\"audit\">Who did what</h2><table><tr><th>When</th><th>Who</th><th>Action</th><th>Outcome</th><th>Detail</th></tr>");
    for a in audit {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            format_ms(a.at_ms),
            esc(&a.actor),
            esc(&a.action),
            esc(&a.outcome),
            esc(&a.detail)
        ));
    }
    h.push_str("</table></body></html>");
    h
}

/// The banner under the title: what the reviewers decided, and whether it
/// still holds.
fn review_banner(panel: &crate::model::ReviewPanel) -> String {
    use crate::model::ReviewState as S;
    let newest = panel.history.first();
    let (class, text) = match (panel.state, newest) {
        (S::Accepted, Some(r)) => ("accepted", format!("Accepted by {} on {}", esc(&r.reviewer), format_ms(r.at_ms))),
        (S::Rejected, Some(r)) => ("rejected", format!("Rejected by {} on {}", esc(&r.reviewer), format_ms(r.at_ms))),
        (S::NeedsChanges, Some(r)) => ("needs_changes", format!("Changes asked by {} on {}", esc(&r.reviewer), format_ms(r.at_ms))),
        (S::Stale, Some(r)) => ("stale", format!(
            "Stale: {} by {} on {}, but the batch changed after it ({} change(s) since); it needs a new review",
            r.decision.as_str(),
            esc(&r.reviewer),
            format_ms(r.at_ms),
            panel.changes.len()
        )),
        _ => ("not_reviewed", "Not reviewed: no reviewer has decided on this evidence".to_string()),
    };
    let color = match class {
        "accepted" => "#e7f6ef;border-color:#12805c",
        "not_reviewed" => "#f2f4f7;border-color:#667085",
        _ => "#fdecea;border-color:#b42318",
    };
    format!(
        "<p id=\"review-banner\" data-review-state=\"{}\" style=\"padding:10px 12px;border:2px solid;background:{color};font-weight:600\">{text}</p>",
        panel.state.as_str()
    )
}

/// The decisions, newest first, with what changed after the newest.
fn review_section(panel: &crate::model::ReviewPanel) -> String {
    let mut h = String::from("<h2 id=\"reviews\">Review</h2>");
    if panel.history.is_empty() {
        h.push_str("<p class=\"muted\">No decision recorded.</p>");
        return h;
    }
    h.push_str("<table><tr><th>When</th><th>Reviewer</th><th>Decision</th><th>Comment</th><th>Evidence digest reviewed</th><th>Signature (Ed25519)</th></tr>");
    for r in &panel.history {
        h.push_str(&format!(
            "<tr class=\"review\"><td>{}</td><td>{}</td><td><b>{}</b>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            format_ms(r.at_ms),
            esc(&r.reviewer),
            r.decision.as_str(),
            if r.superseded { " (superseded)" } else if r.stale { " (stale)" } else { "" },
            esc(&r.comment),
            esc(&r.digest),
            esc(&r.signature)
        ));
    }
    h.push_str("</table>");
    if !panel.changes.is_empty() {
        h.push_str("<p>Changed after the newest decision:</p><ul>");
        for c in &panel.changes {
            h.push_str(&format!(
                "<li>{} #{} by {} on {} ({})</li>",
                esc(&c.kind),
                c.id,
                esc(&c.actor),
                format_ms(c.at_ms),
                esc(&c.status)
            ));
        }
        h.push_str("</ul>");
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_bundle_fails_verification() {
        let mut doc = json!({"b": 1, "a": [1, 2], "schema_version": 1});
        let d = digest_of(&doc);
        doc["digest"] = json!({"algorithm": "sha256", "value": d});
        let text = serde_json::to_string_pretty(&doc).unwrap();
        assert_eq!(verify_bundle(&text), Ok(true));
        let edited = text.replace("\"b\": 1", "\"b\": 2");
        assert_eq!(verify_bundle(&edited), Ok(false));
        assert!(verify_bundle("{}").is_err());
    }
}

#[cfg(test)]
mod jcs_tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_ecmascript_writes_them() {
        for (x, want) in [
            (json!(0.3), "0.3"),
            (json!(1e-6), "0.000001"),
            (json!(3e-7), "3e-7"),
            (json!(1.32e-6), "0.00000132"),
            (json!(1.2345e-7), "1.2345e-7"),
            (json!(1e21), "1e+21"),
            (json!(123456789012345680000.0), "123456789012345680000"),
            (json!(-2.5), "-2.5"),
            (json!(5.0), "5"),
            (json!(42), "42"),
            (json!(0.0), "0"),
        ] {
            assert_eq!(canonical_json(&x), want, "{x}");
        }
    }

    #[test]
    fn members_are_sorted_and_nothing_is_spaced() {
        let v = json!({"b": [1, {"z": null, "a": true}], "a": "é\n\"", "A": 1});
        assert_eq!(
            canonical_json(&v),
            r#"{"A":1,"a":"é\n\"","b":[1,{"a":true,"z":null}]}"#
        );
    }
}
