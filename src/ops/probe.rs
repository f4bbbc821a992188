//! The host probe (PRODUCT.md §2): reachability and latency, version, admin
//! auth, the compliance gate, flags that block a probe-user sign-in, a
//! capability matrix from side-effect-free GETs, and gateway reachability.
//! Every finding carries the next action in plain words.

use super::{Core, HostSecrets, OpError};
use crate::host::{HostClient, HostError, HostErrorKind, HostVersion, LoginOutcome};
use crate::model::{
    AdminAuthState, Capability, ComplianceState, Finding, ProbeRecord, ProbeReport, ProbeStatus,
    ProbeUserState, Severity, Support,
};
use serde_json::Value;

fn finding(
    code: &str,
    severity: Severity,
    message: impl Into<String>,
    action: impl Into<String>,
) -> Finding {
    Finding {
        code: code.into(),
        severity,
        message: message.into(),
        action: action.into(),
        detail: String::new(),
    }
}

impl Finding {
    fn detail(mut self, d: impl Into<String>) -> Finding {
        self.detail = d.into();
        self
    }
}

fn cap(key: &str, support: Support, evidence: impl Into<String>) -> Capability {
    Capability {
        key: key.into(),
        support,
        evidence: evidence.into(),
    }
}

/// A capability decided by whether a GET route exists: a JSON answer (even an
/// error) means the route is registered; Gin's plain-text 404 means it is not.
async fn route_capability(client: &HostClient, key: &str, path: &str) -> Capability {
    match client.admin_get(path).await {
        Ok(_) => cap(
            key,
            Support::Yes,
            format!("GET {} → 200", strip_query(path)),
        ),
        Err(e) if e.is_route_missing() => cap(
            key,
            Support::No,
            format!("GET {} → 404 page not found", strip_query(path)),
        ),
        Err(e) if e.kind == HostErrorKind::Network || e.is_auth() || e.is_compliance() => cap(
            key,
            Support::Unknown,
            format!("GET {} → {}", strip_query(path), short(&e)),
        ),
        Err(e) => cap(
            key,
            Support::Yes,
            format!("GET {} → {} (route exists)", strip_query(path), short(&e)),
        ),
    }
}

fn strip_query(p: &str) -> &str {
    p.split('?').next().unwrap_or(p)
}

fn short(e: &HostError) -> String {
    match (e.status, e.code.is_empty()) {
        (Some(s), false) => format!("{s} {}", e.code),
        (Some(s), true) => s.to_string(),
        (None, _) => e.message.clone(),
    }
}

/// A capability decided by the host version (upstream numbering only).
fn version_capability(key: &str, version: Option<HostVersion>, since: HostVersion) -> Capability {
    match version {
        Some(v) if v.is_upstream_numbering() => cap(
            key,
            if v.at_least(since) {
                Support::Yes
            } else {
                Support::No
            },
            format!(
                "version {v} {} {since}",
                if v.at_least(since) { "≥" } else { "<" }
            ),
        ),
        Some(v) => cap(
            key,
            Support::Unknown,
            format!("version {v} uses fork numbering; a version rule cannot tell"),
        ),
        None => cap(key, Support::Unknown, "host version unknown"),
    }
}

/// Runs the probe, stores it with its audit entry, and returns the record.
impl Core {
    #[tracing::instrument(skip(self), fields(host_id = host_id))]
    pub async fn probe_host(&self, actor: &str, host_id: i64) -> Result<ProbeRecord, OpError> {
        let row = self.host_row(host_id).await?;
        let (client, secrets) = self.host_client(&row)?;
        let report = probe_host(&client, &secrets).await;
        let id = self.store.insert_probe(actor, &row, &report).await?;
        self.store
            .probe(host_id, id)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("probe {id}")))
    }

    /// The newest full probe of a host, if any.
    pub async fn latest_probe(&self, host_id: i64) -> Result<Option<ProbeRecord>, OpError> {
        self.host_row(host_id).await?;
        Ok(self.store.latest_probe(host_id).await?)
    }

    /// A host's probe history, newest first.
    pub async fn probe_history(
        &self,
        host_id: i64,
    ) -> Result<Vec<crate::model::ProbeSummary>, OpError> {
        self.host_row(host_id).await?;
        Ok(self.store.probe_history(host_id, 50).await?)
    }
}

/// Probes a host without storing anything.
pub async fn probe_host(client: &HostClient, secrets: &HostSecrets) -> ProbeReport {
    let mut findings = Vec::new();
    let mut capabilities = Vec::new();
    let mut report = ProbeReport {
        reachable: false,
        latency_ms: None,
        version: None,
        admin_auth: AdminAuthState::Unknown {
            reason: "not checked".into(),
        },
        compliance: ComplianceState::Unknown,
        backend_mode: None,
        captcha: None,
        totp: None,
        probe_user: ProbeUserState::Unknown,
        gateway_reachable: None,
        capabilities: Vec::new(),
        findings: Vec::new(),
        status: ProbeStatus::Failing,
        product_version: crate::PRODUCT_VERSION.to_string(),
    };

    // 1. Reachability, latency, version and public flags.
    let settings = client.public_settings().await;
    report.latency_ms = Some(settings.elapsed.as_millis() as u64);
    let settings = match settings.result {
        Ok(v) => {
            report.reachable = true;
            v
        }
        Err(e) if e.kind == HostErrorKind::Network => {
            report.latency_ms = None;
            findings.push(finding(
                "host_unreachable",
                Severity::Blocker,
                format!("The host could not be reached: {}", e.message),
                "Check the base URL, that the host is running, and that this server can reach it (firewall, DNS, TLS).",
            ).detail(e.message.clone()));
            return finish(report, findings, capabilities);
        }
        Err(e) => {
            report.reachable = true;
            findings.push(finding(
                "not_sub2api",
                Severity::Blocker,
                format!("GET /api/v1/settings/public did not answer like Sub2API ({})", short(&e)),
                "Check that the base URL points at the Sub2API server itself (not its admin page or a proxy path).",
            ).detail(short(&e)));
            return finish(report, findings, capabilities);
        }
    };
    let flag = |k: &str| settings.get(k).and_then(Value::as_bool);
    report.version = settings
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_string);
    report.backend_mode = flag("backend_mode_enabled");
    report.totp = flag("totp_enabled");
    let captcha_flags = [
        "turnstile_enabled",
        "tencent_captcha_enabled",
        "aliyun_captcha_enabled",
    ];
    report.captcha = if captcha_flags.iter().any(|k| settings.get(*k).is_some()) {
        Some(captcha_flags.iter().any(|k| flag(k) == Some(true)))
    } else {
        None
    };
    let version = report.version.as_deref().and_then(HostVersion::parse);
    if report.version.is_none() {
        findings.push(finding(
            "version_unknown",
            Severity::Warning,
            "The host does not report its version",
            "Capabilities are detected by route probes only; version rules (idempotency keys, CN account tests) stay unknown.",
        ));
    }

    // 2. Admin auth and the compliance gate. `/admin/compliance` is exempt
    // from the gate but not from auth, so a 200 proves the credential.
    let mut admin_usable = false;
    match client.admin_get("/api/v1/admin/compliance").await {
        Ok(v) => {
            report.admin_auth = AdminAuthState::Ok;
            let ver = v
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if v.get("required").and_then(Value::as_bool) == Some(true) {
                report.compliance = ComplianceState::Required {
                    version: ver.clone(),
                    document_url: v
                        .get("document_url_en")
                        .or_else(|| v.get("document_url_zh"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    phrase: v
                        .get("ack_phrase_en")
                        .or_else(|| v.get("ack_phrase_zh"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                };
            } else {
                report.compliance = ComplianceState::Accepted { version: ver };
                admin_usable = true;
            }
            capabilities.push(cap(
                "compliance_gate",
                Support::Yes,
                "GET /api/v1/admin/compliance → 200",
            ));
        }
        Err(e) if e.is_route_missing() => {
            report.compliance = ComplianceState::Absent;
            capabilities.push(cap(
                "compliance_gate",
                Support::No,
                "GET /api/v1/admin/compliance → 404 page not found",
            ));
            match client.admin_get("/api/v1/admin/groups?page_size=1").await {
                Ok(_) => {
                    report.admin_auth = AdminAuthState::Ok;
                    admin_usable = true;
                }
                Err(e) => report.admin_auth = auth_state(&e),
            }
        }
        Err(e) if e.is_compliance() => {
            // A host whose compliance route is itself gated (some forks).
            report.admin_auth = AdminAuthState::Ok;
            report.compliance = ComplianceState::Required {
                version: String::new(),
                document_url: None,
                phrase: None,
            };
            capabilities.push(cap(
                "compliance_gate",
                Support::Yes,
                "GET /api/v1/admin/compliance → 423",
            ));
        }
        Err(e) => report.admin_auth = auth_state(&e),
    }
    match &report.admin_auth {
        AdminAuthState::Ok => {}
        AdminAuthState::Rejected { code } => findings.push(finding(
            "admin_auth_rejected",
            Severity::Blocker,
            format!("The host refused the admin credential ({code})"),
            "Edit the host and enter a working admin API key (host admin panel → Settings → Admin API key; regenerating it invalidates the old one) or admin email and password.",
        ).detail(code.clone())),
        AdminAuthState::Needs2fa => findings.push(finding(
            "admin_auth_2fa",
            Severity::Blocker,
            "The admin account signs in with two-factor authentication, which the product cannot complete",
            "Edit the host and use the admin API key instead of the email and password.",
        )),
        AdminAuthState::Unknown { reason } => findings.push(finding(
            "admin_auth_unknown",
            Severity::Blocker,
            format!("The admin API did not answer as expected: {reason}"),
            "Check the base URL and the host's logs, then probe again.",
        ).detail(reason.clone())),
    }
    if let ComplianceState::Required { version, .. } = &report.compliance {
        findings.push(finding(
            "compliance_required",
            Severity::Blocker,
            format!(
                "The host's admin API is locked (HTTP 423) until an administrator accepts the deployment compliance commitment{}",
                if version.is_empty() { String::new() } else { format!(" {version}") }
            ),
            "An administrator reads the compliance text (linked on this page) and accepts it by typing the host's phrase here, or in the host's admin panel as the admin this credential acts as (for an admin API key: the first admin user); the probe then runs again. It is a commitment by the operator, so the product never accepts it on its own.",
        ).detail(version.clone()));
    }

    // 3. Capabilities. Route probes need a usable admin API; version rules do not.
    // The route probes, the group listing, the gateway and the probe
    // user's sign-in read nothing of each other: they go at once (a probe
    // over a slow link costs one round trip here, not eight).
    let gateway = client.gateway_models(None);
    let sign_in = probe_user_sign_in(client, secrets, report.backend_mode, report.captcha);
    let routes = async {
        if !admin_usable {
            return None;
        }
        Some(
            futures_util::future::join3(
                futures_util::future::join_all([
                    route_capability(client, "channels", "/api/v1/admin/channels?page_size=1"),
                    route_capability(
                        client,
                        "cn_platforms",
                        "/api/v1/admin/cn-providers/accounts/0/balance",
                    ),
                    route_capability(
                        client,
                        "subscriptions",
                        "/api/v1/admin/subscriptions?page_size=1",
                    ),
                    route_capability(client, "plans", "/api/v1/admin/payment/plans"),
                ]),
                redaction_capability(client, version),
                group_capabilities(client, version),
            )
            .await,
        )
    };
    let (routes, gateway, sign_in) = futures_util::future::join3(routes, gateway, sign_in).await;
    if let Some((routes, redaction, groups)) = routes {
        capabilities.extend(routes);
        capabilities.push(passthrough_capability(version, &redaction));
        capabilities.push(redaction);
        capabilities.extend(groups);
    } else {
        for key in ["channels", "cn_platforms", "subscriptions", "plans"] {
            capabilities.push(cap(
                key,
                Support::Unknown,
                "admin API not usable; probe again once it is",
            ));
        }
        let redaction = version_capability("credential_redaction", version, HostVersion(0, 1, 127));
        capabilities.push(passthrough_capability(version, &redaction));
        capabilities.push(redaction);
        for (key, since) in [
            ("group_model_list", HostVersion(0, 1, 132)),
            ("model_allowlist", HostVersion(0, 2, 0)),
            ("group_model_pricing", HostVersion(0, 1, 176)),
        ] {
            capabilities.push(version_capability(key, version, since));
        }
    }
    capabilities.push(version_capability(
        "idempotency_keys",
        version,
        HostVersion(0, 1, 84),
    ));
    // `POST /accounts/batch` has existed since the first releases; forks may
    // lack it (a POST-only route cannot be probed without side effects).
    capabilities.push(version_capability(
        "batch_create",
        version,
        HostVersion(0, 1, 0),
    ));
    capabilities.push(version_capability(
        "admin_key_binding",
        version,
        HostVersion(0, 1, 89),
    ));
    capabilities.push(version_capability(
        "cn_account_test",
        version,
        HostVersion(0, 1, 179),
    ));
    capabilities.push(version_capability(
        "minimax_platform",
        version,
        HostVersion(0, 2, 4),
    ));

    let support = |k: &str| {
        capabilities
            .iter()
            .find(|c| c.key == k)
            .map_or(Support::Unknown, |c| c.support)
    };
    if support("channels") == Support::No {
        findings.push(finding(
            "no_channels",
            Severity::Warning,
            "The host predates channels (v0.1.107): channel pricing, mapping and model restriction are unavailable",
            "Upgrade the host to v0.1.107 or later to get per-channel pricing; imports will skip the channel step.",
        ));
    }
    if support("cn_platforms") == Support::No {
        findings.push(finding(
            "no_cn_platforms",
            Severity::Info,
            "The host has no native CN platforms (deepseek, kimi, zhipu arrived in v0.1.178)",
            "Providers will be imported on the `openai` platform with a base URL and forced chat completions.",
        ));
    }

    // 4. The gateway: an unauthenticated /v1/models should answer 401 JSON.
    report.gateway_reachable = Some(match gateway {
        Ok(_) => true,
        Err(e) => e.kind != HostErrorKind::Network && !e.is_route_missing(),
    });
    if report.gateway_reachable == Some(false) {
        findings.push(finding(
            "gateway_unreachable",
            Severity::Warning,
            "The gateway (/v1/models) did not answer like Sub2API",
            "Readiness checks go through the gateway: check that /v1 is routed to the host (reverse-proxy rules).",
        ));
    }

    // 5. The probe user: flags that block a machine sign-in, then a sign-in.
    report.probe_user = sign_in;
    if report.probe_user == ProbeUserState::NotConfigured {
        findings.push(finding(
            "probe_user_missing",
            Severity::Info,
            "No probe user is configured",
            "Add an ordinary user's email and password to the host so readiness can be proven with a real user key.",
        ));
    }
    match &report.probe_user {
        ProbeUserState::Blocked { reason } => findings.push(finding(
            "probe_user_blocked",
            Severity::Warning,
            format!("The probe user cannot sign in: {reason}"),
            "Self-service access cannot be closed automatically: turn off backend mode or the captcha on the host, or remove two-factor from the probe user, then probe again.",
        ).detail(reason.clone())),
        ProbeUserState::Failed { code, message } => findings.push(finding(
            "probe_user_failed",
            Severity::Warning,
            format!("The probe user's sign-in was refused ({code}{})", if message.is_empty() { String::new() } else { format!(": {message}") }),
            "Check the probe user's email and password (create the user on the host if it does not exist), then probe again.",
        ).detail(if message.is_empty() { code.clone() } else { format!("{code}: {message}") })),
        _ => {}
    }

    finish(report, findings, capabilities)
}

/// The probe user: flags that block a machine sign-in, then a sign-in.
async fn probe_user_sign_in(
    client: &HostClient,
    secrets: &HostSecrets,
    backend_mode: Option<bool>,
    captcha: Option<bool>,
) -> ProbeUserState {
    match &secrets.probe_user {
        None => ProbeUserState::NotConfigured,
        Some(_) if backend_mode == Some(true) => ProbeUserState::Blocked {
            reason: "backend mode is on: the host refuses non-admin sign-in and user routes".into(),
        },
        Some(_) if captcha == Some(true) => ProbeUserState::Blocked {
            reason: "a captcha is required to sign in, which a machine cannot solve".into(),
        },
        Some((email, password)) => match client.login(email, password).await {
            Ok(LoginOutcome::Token(_)) => ProbeUserState::Ok,
            Ok(LoginOutcome::Requires2fa) => ProbeUserState::Blocked {
                reason: "the probe user has two-factor sign-in enabled".into(),
            },
            Err(e) if e.kind == HostErrorKind::Network => ProbeUserState::Unknown,
            Err(e) => ProbeUserState::Failed {
                code: if e.code.is_empty() {
                    format!("HTTP {}", e.status.unwrap_or(0))
                } else {
                    e.code.clone()
                },
                message: e.message.clone(),
            },
        },
    }
}

async fn redaction_capability(client: &HostClient, version: Option<HostVersion>) -> Capability {
    match client.admin_get("/api/v1/admin/accounts?page_size=1").await {
        Ok(v) => match v
            .get("items")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            Some(acc) if acc.get("credentials_status").is_some() => cap(
                "credential_redaction",
                Support::Yes,
                "account responses carry credentials_status",
            ),
            Some(_) => cap(
                "credential_redaction",
                Support::No,
                "account responses have no credentials_status (keys returned in clear)",
            ),
            None => version_capability("credential_redaction", version, HostVersion(0, 1, 127)),
        },
        Err(_) => version_capability("credential_redaction", version, HostVersion(0, 1, 127)),
    }
}

/// The group-shape rows, from one group listing: a field in a group
/// response proves the host has it; an empty host falls back to versions.
async fn group_capabilities(client: &HostClient, version: Option<HostVersion>) -> Vec<Capability> {
    let first = client
        .admin_get("/api/v1/admin/groups?page_size=1")
        .await
        .ok()
        .and_then(|v| {
            v.get("items")
                .and_then(Value::as_array)
                .and_then(|a| a.first().cloned())
        });
    let by_field = |key: &str, field: &str, since: HostVersion| match &first {
        Some(g) if g.get(field).is_some() => {
            cap(key, Support::Yes, format!("group responses carry {field}"))
        }
        Some(_) => cap(key, Support::No, format!("group responses have no {field}")),
        None => version_capability(key, version, since),
    };
    let list = match &first {
        Some(g) if g.get("model_allowlist").is_some() || g.get("models_list_config").is_some() => {
            cap(
                "group_model_list",
                Support::Yes,
                "group responses carry a model list",
            )
        }
        _ => by_field(
            "group_model_list",
            "models_list_config",
            HostVersion(0, 1, 132),
        ),
    };
    let allowlist = match &first {
        Some(g) if g.get("models_list_config").is_some() => cap(
            "model_allowlist",
            Support::No,
            "group responses carry models_list_config (pre-v0.2 name)",
        ),
        _ => by_field("model_allowlist", "model_allowlist", HostVersion(0, 2, 0)),
    };
    vec![
        list,
        allowlist,
        by_field(
            "group_model_pricing",
            "model_pricing",
            HostVersion(0, 1, 176),
        ),
    ]
}

/// Whether the `openai` platform can send chat completions upstream as they
/// are (`extra.openai_responses_mode=force_chat_completions`, v0.1.127).
/// Before that every completion goes as `/v1/responses`, which chat-only
/// providers answer 404 (reference §12.2). Credential redaction shipped in
/// the same release, so its field evidence decides when the version cannot.
fn passthrough_capability(version: Option<HostVersion>, redaction: &Capability) -> Capability {
    let by_version = version_capability(
        "chat_completions_passthrough",
        version,
        HostVersion(0, 1, 127),
    );
    if by_version.support != Support::Unknown || redaction.support == Support::Unknown {
        return by_version;
    }
    cap(
        "chat_completions_passthrough",
        redaction.support,
        format!(
            "{}; credential redaction ({}) shipped in the same release (v0.1.127)",
            by_version.evidence, redaction.evidence
        ),
    )
}

fn auth_state(e: &HostError) -> AdminAuthState {
    if e.code == "REQUIRES_2FA" {
        AdminAuthState::Needs2fa
    } else if e.is_auth() {
        AdminAuthState::Rejected {
            code: if e.code.is_empty() {
                format!("HTTP {}", e.status.unwrap_or(0))
            } else {
                e.code.clone()
            },
        }
    } else {
        AdminAuthState::Unknown {
            reason: e.to_string(),
        }
    }
}

fn finish(
    mut report: ProbeReport,
    findings: Vec<Finding>,
    capabilities: Vec<Capability>,
) -> ProbeReport {
    let worst = findings.iter().map(|f| f.severity).max();
    report.status = match worst {
        Some(Severity::Blocker) => ProbeStatus::Failing,
        Some(Severity::Warning) => ProbeStatus::Warning,
        _ => ProbeStatus::Ok,
    };
    report.findings = findings;
    report.capabilities = capabilities;
    report
}

#[cfg(test)]
mod finding_codes {
    #[test]
    fn every_finding_code_the_probe_reports_is_listed() {
        let src = include_str!("probe.rs");
        let mut found = 0;
        for chunk in src.split("finding(\n").skip(1) {
            let code = chunk
                .trim_start()
                .trim_start_matches('"')
                .split('"')
                .next()
                .unwrap();
            if code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !code.is_empty()
            {
                found += 1;
                assert!(
                    crate::model::FINDING_CODES.contains(&code),
                    "{code} is not in FINDING_CODES"
                );
            }
        }
        assert_eq!(
            found,
            crate::model::FINDING_CODES.len(),
            "every listed code is reported somewhere"
        );
    }
}
