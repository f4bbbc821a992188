//! Hosts: validation, sealed credentials, a pre-flight check before anything
//! is written, and the client built from a stored host.

use super::{Core, OpError};
use crate::host::{AdminCredential, HostClient, HostErrorKind};
use crate::model::{self, AdminAuthKind, FieldError, HostInput, HostView, MAX_SECRET};
use crate::secrets::{mask, random_hex, Secret};
use crate::store::{HostRow, NewHost};

/// The probe user's credentials, opened for one use.
#[derive(Debug, Clone)]
pub struct HostSecrets {
    pub probe_user: Option<(String, Secret)>,
}

use super::aad::{host_admin as aad_admin, host_probe as aad_probe};

/// `scheme://host:port` of a base URL (the port made explicit).
pub(crate) fn origin(base_url: &str) -> String {
    match url::Url::parse(base_url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => base_url.to_ascii_lowercase(),
    }
}

/// A typed secret field: trimmed for keys, length-checked, no inner spaces
/// for keys.
fn secret_field(field: &str, value: &str, is_key: bool) -> Result<Option<Secret>, FieldError> {
    let v = if is_key { value.trim() } else { value };
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > MAX_SECRET {
        return Err(FieldError::coded(
            field,
            "field.secret_long",
            &[("max", &MAX_SECRET)],
        ));
    }
    if is_key && v.chars().any(char::is_whitespace) {
        return Err(FieldError::coded(field, "field.no_spaces", &[]));
    }
    Ok(Some(Secret::new(v)))
}

/// What the form asked for, validated, with secrets still in memory.
struct Validated {
    name: String,
    base_url: String,
    kind: AdminAuthKind,
    admin_email: Option<String>,
    admin_secret: Option<Secret>,
    probe_email: Option<String>,
    probe_password: Option<Secret>,
}

fn validate(input: &HostInput) -> Result<Validated, FieldError> {
    let name = model::required("name", &input.name, 100)?;
    let base_url = model::host_base_url(&input.base_url)?;
    let kind = AdminAuthKind::parse(input.auth_kind.trim())
        .ok_or_else(|| FieldError::coded("auth_kind", "host.auth_kind", &[]))?;
    let (admin_email, admin_secret) = match kind {
        AdminAuthKind::ApiKey => (
            None,
            secret_field("admin_api_key", &input.admin_api_key, true)?,
        ),
        AdminAuthKind::Password => (
            Some(model::email("admin_email", &input.admin_email)?),
            secret_field("admin_password", &input.admin_password, false)?,
        ),
    };
    let probe_email = if input.probe_user_email.trim().is_empty() {
        None
    } else {
        Some(model::email("probe_user_email", &input.probe_user_email)?)
    };
    let probe_password = secret_field("probe_user_password", &input.probe_user_password, false)?;
    if probe_email.is_none() && probe_password.is_some() {
        return Err(FieldError::coded(
            "probe_user_email",
            "host.probe_email_needed",
            &[],
        ));
    }
    Ok(Validated {
        name,
        base_url,
        kind,
        admin_email,
        admin_secret,
        probe_email,
        probe_password,
    })
}

fn missing_secret(kind: AdminAuthKind) -> FieldError {
    match kind {
        AdminAuthKind::ApiKey => FieldError::coded("admin_api_key", "field.required", &[]),
        AdminAuthKind::Password => FieldError::coded("admin_password", "field.required", &[]),
    }
}

fn credential(kind: AdminAuthKind, email: Option<&str>, secret: &Secret) -> AdminCredential {
    match kind {
        AdminAuthKind::ApiKey => AdminCredential::ApiKey(secret.clone()),
        AdminAuthKind::Password => AdminCredential::Password {
            email: email.unwrap_or_default().to_string(),
            password: secret.clone(),
        },
    }
}

/// Checks, before anything is written, that the host answers and accepts the
/// admin credential. A 423 (compliance) proves the credential was accepted:
/// the host checks auth before the gate.
/// Why a pre-flight check refused: what the form shows, and what only the
/// audit log keeps.
struct Refusal {
    field: FieldError,
    detail: Option<String>,
}

impl From<FieldError> for Refusal {
    fn from(field: FieldError) -> Self {
        Refusal {
            field,
            detail: None,
        }
    }
}

async fn preflight(
    base_url: &str,
    cred: AdminCredential,
    kind: AdminAuthKind,
) -> Result<(), Refusal> {
    let client = HostClient::new(base_url, cred);
    let settings = client.public_settings().await;
    // One message whatever went wrong, so the form cannot be used to map
    // which internal addresses and ports answer; the detail goes to the
    // audit log, which only admins read. A refusal by the outbound guard is
    // policy, not a probe result, and is said as it is.
    let unreachable = |detail: String| Refusal {
        field: FieldError::coded("base_url", "host.unreachable", &[]),
        detail: Some(detail),
    };
    match settings.result {
        Ok(v) if v.is_object() => {}
        Ok(_) => {
            return Err(unreachable(
                "GET /api/v1/settings/public answered without public settings".into(),
            ))
        }
        Err(e) if e.code == "OUTBOUND_REFUSED" => {
            return Err(Refusal {
                field: FieldError::coded(
                    "base_url",
                    "host.outbound_refused",
                    &[("why_en", &e.message)],
                ),
                detail: None,
            })
        }
        Err(e) => return Err(unreachable(e.to_string())),
    }
    let secret_field = match kind {
        AdminAuthKind::ApiKey => "admin_api_key",
        AdminAuthKind::Password => "admin_password",
    };
    let check = match client.admin_get("/api/v1/admin/compliance").await {
        Err(e) if e.is_route_missing() => {
            client.admin_get("/api/v1/admin/groups?page_size=1").await
        }
        other => other,
    };
    match check {
        Ok(_) => Ok(()),
        Err(e) if e.is_compliance() => Ok(()),
        Err(e) if e.kind == HostErrorKind::Network => Err(unreachable(e.to_string())),
        Err(e) if e.code == "REQUIRES_2FA" => Err(Refusal::from(FieldError::coded(
            "admin_email",
            "host.requires_2fa",
            &[],
        ))),
        Err(e) if e.is_auth() => Err(Refusal::from(FieldError::coded(
            secret_field,
            "host.refused",
            &[
                (
                    "code",
                    &if e.code.is_empty() {
                        "HTTP 401".to_string()
                    } else {
                        e.code.clone()
                    },
                ),
                (
                    "said",
                    &if e.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", e.message)
                    },
                ),
            ],
        ))),
        Err(e) => Err(Refusal::from(FieldError::coded(
            "base_url",
            "host.unexpected",
            &[("error", &e)],
        ))),
    }
}

impl Core {
    /// A pre-flight outcome: a refusal's detail is audited, its field error
    /// returned.
    async fn checked(
        &self,
        actor: &str,
        name: &str,
        r: Result<(), Refusal>,
    ) -> Result<(), OpError> {
        let Err(refusal) = r else {
            return Ok(());
        };
        if let Some(detail) = &refusal.detail {
            self.store
                .audit(
                    actor,
                    "host.preflight",
                    &format!("host:{name}"),
                    "failed",
                    detail,
                )
                .await?;
        }
        Err(refusal.field.into())
    }

    fn to_view(&self, r: &HostRow, last: Option<crate::model::ProbeSummary>) -> HostView {
        HostView {
            id: r.id,
            name: r.name.clone(),
            base_url: r.base_url.clone(),
            auth_kind: r.auth_kind,
            admin_credential_hint: r.admin_secret_mask.clone(),
            probe_user_email: r.probe_email.clone(),
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
            last_probe: last,
            protected: r.protected,
        }
    }

    /// All hosts with their newest probe.
    pub async fn list_hosts(&self) -> Result<Vec<HostView>, OpError> {
        let rows = self.store.hosts().await?;
        let latest = self.store.latest_probes().await?;
        Ok(rows
            .iter()
            .map(|r| {
                let last = latest
                    .iter()
                    .find(|(h, _)| *h == r.id)
                    .map(|(_, s)| s.clone());
                self.to_view(r, last)
            })
            .collect())
    }

    /// One host with its newest probe.
    pub async fn host_view(&self, id: i64) -> Result<HostView, OpError> {
        let r = self.host_row(id).await?;
        let last = self.store.probe_history(id, 1).await?.into_iter().next();
        Ok(self.to_view(&r, last))
    }

    /// A page of the accounts this product created or adopted on a host,
    /// newest first, found by key mask (`sk-d…0001`, or any part of it) or
    /// fingerprint prefix (`fp1:3a9c`).
    pub async fn host_accounts(
        &self,
        id: i64,
        q: &str,
        before: Option<i64>,
    ) -> Result<crate::model::HostAccounts, OpError> {
        const PAGE: i64 = 50;
        let host = self.host_row(id).await?;
        let q = q.trim();
        if q.chars().count() > 100 {
            return Err(crate::model::FieldError::coded("q", "accounts.query_long", &[]).into());
        }
        let (rows, matched, total) = self.store.host_accounts(id, q, before, PAGE + 1).await?;
        let next_before = (rows.len() as i64 > PAGE).then(|| rows[PAGE as usize - 1].id);
        let items = rows
            .into_iter()
            .take(PAGE as usize)
            .map(|r| crate::model::HostAccount {
                ledger_id: r.id,
                remote_id: r.remote_id,
                batch_id: r.batch_id,
                provider_key: r.provider_key,
                fingerprint: r.fingerprint,
                masked: r.masked,
                platform: r.platform,
                status: r.status,
                created_at_ms: r.created_at_ms,
                last_test: r.test_state.map(|s| {
                    (
                        crate::model::StepState::parse(&s),
                        r.test_at_ms,
                        r.test_error.unwrap_or_default(),
                    )
                }),
                schedulable: r
                    .schedulable
                    .map(|s| (s, r.schedulable_at_ms.unwrap_or_default())),
            })
            .collect();
        Ok(crate::model::HostAccounts {
            host_id: id,
            host_name: host.name,
            q: q.to_string(),
            items,
            next_before,
            matched,
            total,
        })
    }

    /// The stored row of a host (its secrets sealed).
    pub async fn host_row(&self, id: i64) -> Result<HostRow, OpError> {
        self.store
            .host(id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("host {id}")))
    }

    /// Registers a host after validating every field and checking that the
    /// host answers and accepts the admin credential. Nothing is written when
    /// any check fails.
    #[tracing::instrument(skip(self, input), fields(host = %input.name))]
    pub async fn create_host(&self, actor: &str, input: &HostInput) -> Result<HostView, OpError> {
        let v = validate(input)?;
        let admin_secret = v
            .admin_secret
            .clone()
            .ok_or_else(|| missing_secret(v.kind))?;
        if v.probe_email.is_some() && v.probe_password.is_none() {
            return Err(FieldError::coded(
                "probe_user_password",
                "host.probe_password_needed",
                &[],
            )
            .into());
        }
        if self
            .store
            .hosts()
            .await?
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(&v.name))
        {
            return Err(OpError::Conflict(FieldError::coded(
                "name",
                "host.name_taken",
                &[("name", &v.name)],
            )));
        }
        self.checked(
            actor,
            &v.name,
            preflight(
                &v.base_url,
                credential(v.kind, v.admin_email.as_deref(), &admin_secret),
                v.kind,
            )
            .await,
        )
        .await?;
        let uid = random_hex(12);
        let new = NewHost {
            admin_secret_sealed: self.cipher.seal(&admin_secret, &aad_admin(&uid)),
            admin_secret_mask: match v.kind {
                AdminAuthKind::ApiKey => mask(admin_secret.expose()),
                AdminAuthKind::Password => v.admin_email.clone().unwrap_or_default(),
            },
            probe_password_sealed: v
                .probe_password
                .as_ref()
                .map(|p| self.cipher.seal(p, &aad_probe(&uid))),
            uid,
            name: v.name,
            base_url: v.base_url,
            auth_kind: v.kind,
            admin_email: v.admin_email,
            probe_email: v.probe_email,
        };
        let row = self.store.insert_host(actor, &new).await.map_err(|e| {
            if e.is_conflict() {
                OpError::Conflict(FieldError::coded(
                    "name",
                    "host.name_taken",
                    &[("name", &new.name)],
                ))
            } else {
                e.into()
            }
        })?;
        Ok(self.to_view(&row, None))
    }

    /// Edits a host. Empty secret fields keep the stored secret (unless the
    /// sign-in kind changes). The connection is checked again when the URL or
    /// the credential changes.
    #[tracing::instrument(skip(self, input), fields(host_id = id))]
    pub async fn update_host(
        &self,
        actor: &str,
        id: i64,
        input: &HostInput,
    ) -> Result<HostView, OpError> {
        let old = self.host_row(id).await?;
        let v = validate(input)?;
        // Stored secrets are bound to the origin they were entered for:
        // moving the host to another scheme, host or port needs them typed
        // again, or anyone allowed to edit could send them anywhere.
        let moved = origin(&old.base_url) != origin(&v.base_url);
        if moved {
            let again = |field| FieldError::coded(field, "host.reenter", &[]);
            if v.admin_secret.is_none() {
                return Err(again(match v.kind {
                    AdminAuthKind::ApiKey => "admin_api_key",
                    AdminAuthKind::Password => "admin_password",
                })
                .into());
            }
            if v.probe_email.is_some() && v.probe_password.is_none() {
                return Err(again("probe_user_password").into());
            }
        }
        let kind_changed = v.kind != old.auth_kind;
        let admin_secret = match (&v.admin_secret, kind_changed) {
            (Some(s), _) => s.clone(),
            (None, false) => self
                .cipher
                .open(&old.admin_secret_sealed, &aad_admin(&old.uid))?,
            (None, true) => return Err(missing_secret(v.kind).into()),
        };
        let probe_password_sealed = match (&v.probe_email, &v.probe_password) {
            (None, _) => None,
            (Some(_), Some(p)) => Some(self.cipher.seal(p, &aad_probe(&old.uid))),
            (Some(_), None) => match &old.probe_password_sealed {
                Some(s) => Some(s.clone()),
                None => {
                    return Err(FieldError::coded(
                        "probe_user_password",
                        "host.probe_password_needed",
                        &[],
                    )
                    .into())
                }
            },
        };
        let credential_changed = v.admin_secret.is_some()
            || kind_changed
            || v.base_url != old.base_url
            || v.admin_email != old.admin_email;
        if credential_changed {
            self.checked(
                actor,
                &v.name,
                preflight(
                    &v.base_url,
                    credential(v.kind, v.admin_email.as_deref(), &admin_secret),
                    v.kind,
                )
                .await,
            )
            .await?;
        }
        let new = NewHost {
            admin_secret_sealed: self.cipher.seal(&admin_secret, &aad_admin(&old.uid)),
            admin_secret_mask: match v.kind {
                AdminAuthKind::ApiKey => mask(admin_secret.expose()),
                AdminAuthKind::Password => v.admin_email.clone().unwrap_or_default(),
            },
            probe_password_sealed,
            uid: old.uid.clone(),
            name: v.name,
            base_url: v.base_url,
            auth_kind: v.kind,
            admin_email: v.admin_email,
            probe_email: v.probe_email,
        };
        let row = self
            .store
            .update_host(actor, id, &new)
            .await
            .map_err(|e| {
                if e.is_conflict() {
                    OpError::Conflict(FieldError::coded(
                        "name",
                        "host.name_taken",
                        &[("name", &new.name)],
                    ))
                } else {
                    e.into()
                }
            })?
            .ok_or_else(|| OpError::NotFound(format!("host {id}")))?;
        if moved {
            self.store
                .audit(
                    actor,
                    "host.move",
                    &crate::model::host_target(row.id),
                    "moved",
                    &format!(
                        "{} → {} (secrets entered again)",
                        origin(&old.base_url),
                        origin(&row.base_url)
                    ),
                )
                .await?;
        }
        self.host_view(row.id).await
    }

    /// Removes a host and its probe history.
    pub async fn delete_host(&self, actor: &str, id: i64) -> Result<(), OpError> {
        match self.store.delete_host(actor, id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(OpError::NotFound(format!("host {id}"))),
            Err(e) if e.is_conflict() => {
                // The store's conflict starts with the number of batches.
                let n: String = e
                    .to_string()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .take(9)
                    .collect();
                Err(OpError::Conflict(FieldError::coded(
                    "host",
                    "host.has_batches",
                    &[("n", &n)],
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A client for a stored host, and its opened probe-user credentials.
    pub fn host_client(&self, row: &HostRow) -> Result<(HostClient, HostSecrets), OpError> {
        let secret = self
            .cipher
            .open(&row.admin_secret_sealed, &aad_admin(&row.uid))?;
        let client = HostClient::new(
            &row.base_url,
            credential(row.auth_kind, row.admin_email.as_deref(), &secret),
        );
        let probe_user = match (&row.probe_email, &row.probe_password_sealed) {
            (Some(e), Some(p)) => Some((e.clone(), self.cipher.open(p, &aad_probe(&row.uid))?)),
            _ => None,
        };
        Ok((client, HostSecrets { probe_user }))
    }
}
