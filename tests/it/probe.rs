use crate::{core, fake, input_for};
use fakehost::{FakeHostConfig, Profile};
use provisioning_core::model::HostInput;
use provisioning_core::model::{
    AdminAuthState, ComplianceState, ProbeStatus, ProbeUserState, Support,
};
use provisioning_core::ops::OpError;

fn codes(r: &provisioning_core::model::ProbeReport) -> Vec<String> {
    r.findings.iter().map(|f| f.code.clone()).collect()
}

#[tokio::test]
async fn a_current_host_probes_ok_with_its_capability_matrix() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let h = ctx
        .core
        .create_host("alice", &input_for(&host, "prod"))
        .await
        .unwrap();
    let rec = ctx.core.probe_host("alice", h.id).await.unwrap();
    let r = &rec.report;
    assert_eq!(r.status, ProbeStatus::Ok, "{:?}", r.findings);
    assert!(r.reachable);
    assert!(r.latency_ms.is_some());
    assert_eq!(r.version.as_deref(), Some("0.1.179"));
    assert_eq!(r.admin_auth, AdminAuthState::Ok);
    assert!(matches!(r.compliance, ComplianceState::Accepted { .. }));
    assert_eq!(r.probe_user, ProbeUserState::Ok);
    assert_eq!(r.gateway_reachable, Some(true));
    for (k, s) in [
        ("channels", Support::Yes),
        ("cn_platforms", Support::Yes),
        ("compliance_gate", Support::Yes),
        ("subscriptions", Support::Yes),
        ("plans", Support::Yes),
        ("idempotency_keys", Support::Yes),
        ("cn_account_test", Support::Yes),
        ("minimax_platform", Support::No),
        ("model_allowlist", Support::No),
    ] {
        assert_eq!(r.capability(k), s, "{k}: {:?}", r.capabilities);
    }
    // History keeps it, and the audit log names the actor.
    assert_eq!(ctx.core.probe_history(h.id).await.unwrap().len(), 1);
    let (audit, _) = ctx.core.store.audit_page(1, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "host.probe" && e.actor == "alice"));
}

#[tokio::test]
async fn the_compliance_gate_is_explained_and_blocks() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let h = ctx
        .core
        .create_host("alice", &input_for(&host, "gated"))
        .await
        .unwrap();
    // The host publishes a new compliance text: the admin key (acting as
    // the first admin) meets the gate again (reference §12.1).
    host.bump_compliance("v2026.06.10");
    let r = ctx.core.probe_host("alice", h.id).await.unwrap().report;
    assert_eq!(r.status, ProbeStatus::Failing);
    assert!(
        matches!(r.compliance, ComplianceState::Required { ref version, .. } if version == "v2026.06.10")
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "compliance_required")
        .unwrap();
    assert!(f.message.contains("423"));
    assert!(f.action.contains("accept"), "{}", f.action);
    assert_eq!(r.capability("channels"), Support::Unknown);
    // Once the operator accepts it on the host, the next probe is clean.
    host.accept_compliance();
    let r = ctx.core.probe_host("alice", h.id).await.unwrap().report;
    assert_eq!(r.status, ProbeStatus::Ok, "{:?}", r.findings);
}

#[tokio::test]
async fn a_host_before_channels_and_cn_platforms_is_detected_by_route_probes() {
    let host = fake(FakeHostConfig {
        profile: Profile::V0_1_106,
        ..Default::default()
    })
    .await;
    let ctx = core().await;
    let h = ctx
        .core
        .create_host("a", &input_for(&host, "old"))
        .await
        .unwrap();
    let r = ctx.core.probe_host("a", h.id).await.unwrap().report;
    assert_eq!(r.compliance, ComplianceState::Absent);
    assert_eq!(r.capability("compliance_gate"), Support::No);
    assert_eq!(r.capability("channels"), Support::No);
    assert_eq!(r.capability("cn_platforms"), Support::No);
    assert_eq!(r.capability("plans"), Support::No);
    assert_eq!(r.status, ProbeStatus::Warning);
    assert!(codes(&r).contains(&"no_channels".to_string()));
}

#[tokio::test]
async fn a_newer_host_reports_minimax_and_the_allowlist() {
    let host = fake(FakeHostConfig {
        profile: Profile::V0_2_4,
        ..Default::default()
    })
    .await;
    let ctx = core().await;
    let h = ctx
        .core
        .create_host("a", &input_for(&host, "new"))
        .await
        .unwrap();
    let r = ctx.core.probe_host("a", h.id).await.unwrap().report;
    assert_eq!(r.capability("minimax_platform"), Support::Yes);
    assert_eq!(r.capability("model_allowlist"), Support::Yes);
}

#[tokio::test]
async fn editing_the_url_never_sends_the_stored_key_and_keeps_the_host_on_refusal() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let mut input = input_for(&host, "h");
    let h = ctx.core.create_host("a", &input).await.unwrap();
    // Simulate a regenerated key on the host: the stored one no longer works.
    drop(host);
    let other = fake(FakeHostConfig {
        admin_api_key: format!("admin-{}", "f".repeat(64)),
        ..Default::default()
    })
    .await;
    input.base_url = other.url();
    input.admin_api_key.clear();
    // Another origin: the stored key is never sent there; it must be typed.
    let e = ctx.core.update_host("a", h.id, &input).await.unwrap_err();
    assert!(e.to_string().contains("entered again"), "{e}");
    assert_eq!(other.total_calls(), 0);
    // Typed (the old, now wrong key), it is checked against the new host.
    input.admin_api_key = format!("admin-{}", "0123456789abcdef".repeat(4));
    input.probe_user_password = "probe-password-1".into();
    let e = ctx.core.update_host("a", h.id, &input).await.unwrap_err();
    assert!(e.to_string().contains("INVALID_ADMIN_KEY"), "{e}");
    // The stored host is untouched, and its probe now says unreachable.
    let r = ctx.core.probe_host("a", h.id).await.unwrap().report;
    assert_eq!(r.status, ProbeStatus::Failing);
    assert!(codes(&r).contains(&"host_unreachable".to_string()));
}

#[tokio::test]
async fn backend_mode_blocks_the_probe_user_and_says_so() {
    let host = fake(FakeHostConfig {
        backend_mode: true,
        ..Default::default()
    })
    .await;
    let ctx = core().await;
    let h = ctx
        .core
        .create_host("a", &input_for(&host, "b"))
        .await
        .unwrap();
    let r = ctx.core.probe_host("a", h.id).await.unwrap().report;
    assert_eq!(r.backend_mode, Some(true));
    assert!(
        matches!(r.probe_user, ProbeUserState::Blocked { ref reason } if reason.contains("backend mode"))
    );
    assert_eq!(r.status, ProbeStatus::Warning);
}

#[tokio::test]
async fn a_wrong_probe_user_password_is_a_warning_with_the_host_code() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let mut input = input_for(&host, "p");
    input.probe_user_password = "wrong-password".into();
    let h = ctx.core.create_host("a", &input).await.unwrap();
    let r = ctx.core.probe_host("a", h.id).await.unwrap().report;
    assert!(
        matches!(r.probe_user, ProbeUserState::Failed { ref code, .. } if code == "INVALID_CREDENTIALS")
    );
}

#[tokio::test]
async fn admin_email_and_password_work_through_a_jwt() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let mut input = input_for(&host, "jwt");
    input.auth_kind = "password".into();
    input.admin_api_key.clear();
    input.admin_email = host.config().admin_email.clone();
    input.admin_password = host.config().admin_password.clone();
    let h = ctx.core.create_host("a", &input).await.unwrap();
    assert_eq!(h.admin_credential_hint, host.config().admin_email);
    let r = ctx.core.probe_host("a", h.id).await.unwrap().report;
    assert_eq!(r.admin_auth, AdminAuthState::Ok);
    assert_eq!(r.status, ProbeStatus::Ok, "{:?}", r.findings);
}

#[tokio::test]
async fn a_regenerated_admin_key_is_reported_as_rejected_with_the_next_action() {
    let host = fake(FakeHostConfig::default()).await;
    let ctx = core().await;
    let h = ctx
        .core
        .create_host("a", &input_for(&host, "h"))
        .await
        .unwrap();
    host.regenerate_admin_key(&format!("admin-{}", "e".repeat(64)));
    let r = ctx.core.probe_host("a", h.id).await.unwrap().report;
    assert_eq!(
        r.admin_auth,
        AdminAuthState::Rejected {
            code: "INVALID_ADMIN_KEY".into()
        }
    );
    assert_eq!(r.status, ProbeStatus::Failing);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "admin_auth_rejected")
        .unwrap();
    assert!(f.action.contains("admin API key"), "{}", f.action);
}

#[tokio::test]
async fn a_fresh_gated_host_is_accepted_from_the_product_and_its_admin_key_obtained() {
    // A real fresh host: no admin key until an admin accepts (§12.1), so it
    // is registered with the admin's email and password.
    let host = fake(FakeHostConfig {
        compliance_accepted: false,
        ..Default::default()
    })
    .await;
    let ctx = core().await;
    let cfg = host.config().clone();
    let input = HostInput {
        auth_kind: "password".into(),
        admin_api_key: String::new(),
        admin_email: cfg.admin_email.clone(),
        admin_password: cfg.admin_password.clone(),
        ..input_for(&host, "fresh")
    };
    let h = ctx.core.create_host("root", &input).await.unwrap();
    let r = ctx.core.probe_host("root", h.id).await.unwrap().report;
    let ComplianceState::Required {
        phrase,
        document_url,
        ..
    } = &r.compliance
    else {
        panic!("expected the gate: {:?}", r.compliance);
    };
    assert_eq!(phrase.as_deref(), Some(fakehost::COMPLIANCE_PHRASE_EN));
    assert!(document_url.is_some(), "the document is linked");
    // A wrong phrase names the field and writes nothing.
    let e = ctx
        .core
        .accept_compliance("root", h.id, "yes")
        .await
        .unwrap_err();
    assert!(
        matches!(e, OpError::Invalid(ref f) if f.field == "phrase"),
        "{e:?}"
    );
    assert_eq!(host.calls("POST /api/v1/admin/compliance/accept"), 0);
    // Typed with other spacing and case, it is the host's phrase.
    let typed = fakehost::COMPLIANCE_PHRASE_EN
        .to_uppercase()
        .replace(' ', "  ");
    let rec = ctx
        .core
        .accept_compliance("root", h.id, &typed)
        .await
        .unwrap();
    assert_ne!(
        rec.report.status,
        ProbeStatus::Failing,
        "{:?}",
        rec.report.findings
    );
    assert!(matches!(
        rec.report.compliance,
        ComplianceState::Accepted { .. }
    ));
    let (audit, _) = ctx.core.store.audit_page(1, 20).await.unwrap();
    let entry = audit
        .iter()
        .find(|e| e.action == "host.compliance.accept")
        .expect("the acceptance is audited");
    assert!(entry.detail.contains("v2026.06.10") && entry.detail.contains("I have read"));
    // The admin key: only when confirmed, then the host uses it.
    let e = ctx
        .core
        .obtain_admin_key("root", h.id, false)
        .await
        .unwrap_err();
    assert!(matches!(e, OpError::Invalid(ref f) if f.field == "confirm"));
    let key = ctx.core.obtain_admin_key("root", h.id, true).await.unwrap();
    assert_eq!(key.expose(), host.admin_api_key());
    let view = ctx.core.host_view(h.id).await.unwrap();
    assert_eq!(
        view.auth_kind,
        provisioning_core::model::AdminAuthKind::ApiKey
    );
    let (audit, _) = ctx.core.store.audit_page(1, 20).await.unwrap();
    assert!(
        audit.iter().all(|e| !e.detail.contains(key.expose())),
        "the key is never in the audit log"
    );
    let r = ctx.core.probe_host("root", h.id).await.unwrap().report;
    assert_ne!(r.status, ProbeStatus::Failing, "{:?}", r.findings);
}
