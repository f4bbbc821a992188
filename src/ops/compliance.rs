//! The host's compliance gate from the product (reference §12.1): an admin
//! reads the host's text and accepts it by typing the host's own phrase
//! (audited with the text's version and the phrase), then the probe runs
//! again. On a host registered with an admin email and password, the
//! product can then obtain the installation's admin API key, shown once.

use super::{Core, OpError};
use crate::host::HostClient;
use crate::model::{AdminAuthKind, FieldError, ProbeRecord};
use crate::secrets::{mask, Secret};
use serde_json::{json, Value};

/// What the host asks an admin to accept, read from the host now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceAsk {
    pub required: bool,
    pub version: String,
    pub document_url: Option<String>,
    pub phrase_en: Option<String>,
    pub phrase_zh: Option<String>,
}

async fn ask(client: &HostClient) -> Result<ComplianceAsk, OpError> {
    let v = client
        .admin_get("/api/v1/admin/compliance")
        .await
        .map_err(|e| {
            if e.is_route_missing() {
                OpError::Invalid(FieldError::coded("host", "compliance.none", &[]))
            } else {
                OpError::Host(e.to_string())
            }
        })?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(ComplianceAsk {
        required: v.get("required").and_then(Value::as_bool) == Some(true),
        version: s("version").unwrap_or_default(),
        document_url: s("document_url_en").or_else(|| s("document_url_zh")),
        phrase_en: s("ack_phrase_en"),
        phrase_zh: s("ack_phrase_zh"),
    })
}

/// Spaces and case as a person types them do not matter; the words do.
fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Core {
    /// The compliance text the host asks for now.
    pub async fn compliance_ask(&self, host_id: i64) -> Result<ComplianceAsk, OpError> {
        let row = self.host_row(host_id).await?;
        let (client, _) = self.host_client(&row)?;
        ask(&client).await
    }

    /// Accepts the host's compliance text with the phrase the admin typed,
    /// records who accepted which version with which words, and probes again.
    #[tracing::instrument(skip(self, typed), fields(host_id = host_id))]
    pub async fn accept_compliance(
        &self,
        actor: &str,
        host_id: i64,
        typed: &str,
    ) -> Result<ProbeRecord, OpError> {
        let row = self.host_row(host_id).await?;
        let (client, _) = self.host_client(&row)?;
        let asked = ask(&client).await?;
        if !asked.required {
            return Err(OpError::Conflict(FieldError::coded(
                "phrase",
                "compliance.accepted",
                &[("version", &asked.version)],
            )));
        }
        let typed = typed.trim();
        if typed.is_empty() {
            return Err(FieldError::coded("phrase", "compliance.phrase_required", &[]).into());
        }
        let (phrase, language) = match (&asked.phrase_en, &asked.phrase_zh) {
            (Some(en), _) if normalize(en) == normalize(typed) => (en.clone(), "en"),
            (_, Some(zh)) if normalize(zh) == normalize(typed) => (zh.clone(), "zh"),
            (None, None) => (typed.to_string(), "en"),
            _ => return Err(FieldError::coded("phrase", "compliance.phrase_mismatch", &[]).into()),
        };
        client
            .admin(
                "POST",
                "/api/v1/admin/compliance/accept",
                Some(&json!({"phrase": phrase, "language": language})),
                None,
            )
            .await
            .map_err(|e| {
                if e.code == "ADMIN_COMPLIANCE_INVALID_PHRASE" {
                    OpError::Invalid(FieldError::coded(
                        "phrase",
                        "compliance.phrase_refused",
                        &[],
                    ))
                } else {
                    OpError::Host(e.to_string())
                }
            })?;
        self.store
            .audit(
                actor,
                "host.compliance.accept",
                &crate::model::host_target(row.id),
                "accepted",
                &format!(
                    "version {}; document {}; phrase ({language}): {phrase}",
                    asked.version,
                    asked.document_url.as_deref().unwrap_or("—")
                ),
            )
            .await?;
        self.probe_host(actor, host_id).await
    }

    /// Obtains the installation's admin API key for a host registered with
    /// an admin email and password, switches the host to it (sealed), and
    /// returns it once. Regenerating replaces any key the host had, so the
    /// caller must have confirmed that.
    #[tracing::instrument(skip(self), fields(host_id = host_id))]
    pub async fn obtain_admin_key(
        &self,
        actor: &str,
        host_id: i64,
        confirmed: bool,
    ) -> Result<Secret, OpError> {
        let row = self.host_row(host_id).await?;
        if row.auth_kind != AdminAuthKind::Password {
            return Err(OpError::Conflict(FieldError::coded(
                "host",
                "adminkey.exists",
                &[],
            )));
        }
        if !confirmed {
            return Err(FieldError::coded("confirm", "adminkey.confirm", &[]).into());
        }
        let (client, _) = self.host_client(&row)?;
        let existed = client
            .admin_get("/api/v1/admin/settings/admin-api-key")
            .await
            .map_err(|e| {
                if e.is_compliance() {
                    OpError::Conflict(FieldError::coded("host", "adminkey.locked", &[]))
                } else {
                    OpError::Host(e.to_string())
                }
            })?
            .get("exists")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let v = client
            .admin(
                "POST",
                "/api/v1/admin/settings/admin-api-key/regenerate",
                None,
                None,
            )
            .await
            .map_err(|e| OpError::Host(e.to_string()))?;
        let key = v
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| k.starts_with("admin-"))
            .map(Secret::new)
            .ok_or_else(|| OpError::Host("the host returned no admin key".into()))?;
        let input = crate::model::HostInput {
            name: row.name.clone(),
            base_url: row.base_url.clone(),
            auth_kind: "api_key".into(),
            admin_api_key: key.expose().to_string(),
            probe_user_email: row.probe_email.clone().unwrap_or_default(),
            ..Default::default()
        };
        self.update_host(actor, host_id, &input).await?;
        self.store
            .audit(
                actor,
                "host.admin_key.obtain",
                &crate::model::host_target(row.id),
                "regenerated",
                &format!(
                    "key {}; {}",
                    mask(key.expose()),
                    if existed {
                        "replaced the host's previous admin key"
                    } else {
                        "the host had no admin key"
                    }
                ),
            )
            .await?;
        Ok(key)
    }
}
