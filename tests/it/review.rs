//! Handover review and four eyes, against the fake host.

use crate::import::{fast, keys, world, World};
use fakehost::Profile;
use provisioning_core::model::{AccessMode, BatchFilter, BatchStatus, Decision, ReviewState, Role};
use provisioning_core::ops::{verify_bundle, ApplyError, Denied, OpError, Principal};
use provisioning_core::secrets::Secret;

async fn person(w: &World, name: &str, role: Role) -> Principal {
    let row = w
        .ctx
        .core
        .create_operator("root", name, Secret::new("a-long-password-1"), role)
        .await
        .unwrap();
    Principal::operator(row.id, name, role)
}

fn code(e: &OpError) -> String {
    match e {
        OpError::Conflict(f) | OpError::Invalid(f) => f
            .said
            .as_ref()
            .map(|s| s.code.clone())
            .unwrap_or_else(|| f.field.clone()),
        OpError::Forbidden(Denied::Own { code, .. }) => code.to_string(),
        other => format!("{other:?}"),
    }
}

async fn audited(w: &World, actor: &str, action: &str, outcome: &str) -> bool {
    let (entries, _) = w.ctx.core.store.audit_page(1, 50).await.unwrap();
    entries
        .iter()
        .any(|e| e.actor == actor && e.action == action && e.outcome == outcome)
}

async fn review_state_in_list(w: &World, id: i64) -> Option<ReviewState> {
    let list = w.ctx.core.list_batches(None, 50).await.unwrap();
    list.items.into_iter().find(|b| b.id == id).unwrap().review
}

#[tokio::test]
async fn a_reviewer_accepts_a_batch_signed_into_its_bundle_and_a_rerun_makes_it_stale() {
    let w = world(Profile::V0_1_179).await;
    let core = &w.ctx.core;
    let alice = person(&w, "alice", Role::Operator).await;
    let rita = person(&w, "rita", Role::Viewer).await;
    let id = w.plan(&keys(2), AccessMode::SelfService).await;

    // A planned batch is not reviewed yet, and is not in the queue.
    let e = core
        .review_batch(&rita, id, "accepted", "", "x")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "review.not_finished");
    assert_eq!(review_state_in_list(&w, id).await, None);
    assert_eq!(
        core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    let panel = core.review_panel(id).await.unwrap();
    assert_eq!(panel.state, ReviewState::NotReviewed);
    assert!(panel.reviewable);
    assert_eq!(panel.authors, ["alice"]);
    let (queue, total) = core.review_queue(50).await.unwrap();
    assert_eq!((queue.len(), total), (1, 1));
    assert_eq!(queue[0].state, ReviewState::NotReviewed);
    assert_eq!(
        review_state_in_list(&w, id).await,
        Some(ReviewState::NotReviewed)
    );

    // The evidence digest is stable while nothing changes.
    let digest = core.batch_evidence_digest(id).await.unwrap();
    assert_eq!(core.batch_evidence_digest(id).await.unwrap(), digest);

    // The author may not review their own batch; refused and audited.
    let e = core
        .review_batch(&alice, id, "accepted", "", &digest)
        .await
        .unwrap_err();
    assert!(matches!(e, OpError::Forbidden(_)), "{e:?}");
    assert_eq!(code(&e), "review.own");
    assert!(audited(&w, "alice", "batch.review", "denied").await);
    // Evidence other than what is there now is refused (and audited).
    let e = core
        .review_batch(&rita, id, "accepted", "", &"0".repeat(64))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "review.evidence_changed");
    assert!(audited(&w, "rita", "batch.review", "refused").await);
    // A rejection says why; a decision is one of three.
    let e = core
        .review_batch(&rita, id, "rejected", "  ", &digest)
        .await
        .unwrap_err();
    assert_eq!(code(&e), "review.comment_required");
    let e = core
        .review_batch(&rita, id, "fine", "", &digest)
        .await
        .unwrap_err();
    assert_eq!(code(&e), "review.decision");
    assert!(core.store.reviews(id).await.unwrap().is_empty());

    core.review_batch(&rita, id, "accepted", "both keys answered", &digest)
        .await
        .unwrap();
    assert!(audited(&w, "rita", "batch.review", "ok").await);
    let panel = core.review_panel(id).await.unwrap();
    assert_eq!(panel.state, ReviewState::Accepted);
    let r = &panel.history[0];
    assert_eq!(
        (r.decision, r.digest.as_str(), r.reviewer.as_str()),
        (Decision::Accepted, digest.as_str(), "rita")
    );
    assert!(core
        .review_signature_valid(r, &core.batch_view(id).await.unwrap().uid)
        .await
        .unwrap());
    assert_eq!(
        review_state_in_list(&w, id).await,
        Some(ReviewState::Accepted)
    );
    assert_eq!(core.review_queue(50).await.unwrap().1, 0);
    let accepted = core
        .list_batches_where(
            &BatchFilter {
                review: "accepted".into(),
                ..Default::default()
            },
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(accepted.items.len(), 1);
    assert!(core
        .list_batches_where(
            &BatchFilter {
                review: "whatever".into(),
                ..Default::default()
            },
            None,
            50
        )
        .await
        .is_err());

    // The bundle carries the signed decision and verifies; a changed
    // comment does not.
    let bundle = core.export_bundle("rita", id).await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&bundle.json).unwrap();
    assert_eq!(doc["evidence_digest"], digest.as_str());
    assert_eq!(doc["reviews"]["state"], "accepted");
    let d = &doc["reviews"]["decisions"][0];
    assert_eq!(d["decision"], "accepted");
    assert_eq!(d["signed"]["evidence_digest"], digest.as_str());
    assert_eq!(verify_bundle(&bundle.json), Ok(true));
    assert_eq!(
        verify_bundle(&bundle.json.replace("both keys answered", "all good")),
        Ok(false)
    );
    assert!(bundle.html.contains("data-review-state=\"accepted\""));
    assert!(bundle.html.contains("Accepted by rita"));
    readme_line_verifies(&bundle.json, "ok, accepted, 1 decision(s) signed");

    // A re-run after the decision makes it stale, says what changed, and
    // puts the batch back in the queue.
    core.apply_batch("alice", id, fast()).await.unwrap();
    let panel = core.review_panel(id).await.unwrap();
    assert_eq!(panel.state, ReviewState::Stale);
    assert_eq!(panel.changes.len(), 1);
    assert_eq!(panel.changes[0].kind, "apply");
    assert_eq!(panel.changes[0].actor, "alice");
    assert_ne!(core.batch_evidence_digest(id).await.unwrap(), digest);
    assert_eq!(review_state_in_list(&w, id).await, Some(ReviewState::Stale));
    let (queue, _) = core.review_queue(50).await.unwrap();
    assert_eq!(queue[0].state, ReviewState::Stale);
    assert_eq!(queue[0].last_reviewer.as_deref(), Some("rita"));
    let bundle = core.export_bundle("rita", id).await.unwrap();
    assert!(bundle.html.contains("data-review-state=\"stale\""));
    assert_eq!(verify_bundle(&bundle.json), Ok(true));

    // A new decision supersedes the old; both stay.
    let now = core.batch_evidence_digest(id).await.unwrap();
    core.review_batch(&rita, id, "needs_changes", "one key is slow", &now)
        .await
        .unwrap();
    let panel = core.review_panel(id).await.unwrap();
    assert_eq!(panel.state, ReviewState::NeedsChanges);
    assert_eq!(panel.history.len(), 2);
    assert!(!panel.history[0].superseded && panel.history[1].superseded);
    assert!(panel.changes.is_empty());
}

#[tokio::test]
async fn on_a_protected_host_a_second_person_approves_one_plan_and_every_refusal_is_audited() {
    let w = world(Profile::V0_1_179).await;
    let core = &w.ctx.core;
    let root = person(&w, "root", Role::Admin).await;
    let alice = person(&w, "alice", Role::Operator).await;
    let otto = person(&w, "otto", Role::Operator).await;
    let a = w.plan(&keys(2), AccessMode::SelfService).await;

    // Only an admin protects a host.
    let e = core
        .set_host_protected(&alice, w.host_id, true)
        .await
        .unwrap_err();
    assert!(
        matches!(e, OpError::Forbidden(Denied::Role { .. })),
        "{e:?}"
    );
    core.set_host_protected(&root, w.host_id, true)
        .await
        .unwrap();
    assert!(audited(&w, "root", "host.protect", "ok").await);
    assert!(core.host_view(w.host_id).await.unwrap().protected);

    // Not applied without an approval; refused and audited.
    let e = core.apply_batch("alice", a, fast()).await.unwrap_err();
    assert!(e.to_string().contains("second person"), "{e}");
    assert!(audited(&w, "alice", "batch.apply", "refused").await);
    assert_eq!(
        core.batch_view(a).await.unwrap().status,
        BatchStatus::Planned
    );

    // The planner cannot approve their own plan.
    let fe = core.review_panel(a).await.unwrap().four_eyes;
    assert!(fe.protected && fe.valid("apply").is_none());
    assert_eq!(fe.author, "alice");
    let e = core
        .approve_batch(&alice, a, "apply", &fe.plan_digest, "")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "approval.own");
    assert!(audited(&w, "alice", "batch.approve", "denied").await);

    // An approval of plan A does not apply to plan B.
    let b = w.plan(&keys(4)[2..], AccessMode::SelfService).await;
    let fe_b = core.review_panel(b).await.unwrap().four_eyes;
    assert_ne!(fe_b.plan_digest, fe.plan_digest);
    let e = core
        .approve_batch(&otto, b, "apply", &fe.plan_digest, "")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "approval.plan_changed");
    assert!(audited(&w, "otto", "batch.approve", "refused").await);
    core.approve_batch(&otto, a, "apply", &fe.plan_digest, "read the plan")
        .await
        .unwrap();
    assert!(audited(&w, "otto", "batch.approve", "ok").await);
    assert_eq!(
        core.apply_batch("alice", a, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    let Err(ApplyError::Op(e)) = core.apply_batch("alice", b, fast()).await else {
        panic!("plan B applied without its own approval")
    };
    assert_eq!(code(&e), "approval.required");

    // A plan changed after its approval voids it.
    core.approve_batch(&otto, b, "apply", &fe_b.plan_digest, "")
        .await
        .unwrap();
    assert!(core
        .review_panel(b)
        .await
        .unwrap()
        .four_eyes
        .valid("apply")
        .is_some());
    {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}", w.ctx.dir.path().join("core.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE batch_plans SET plan_json = plan_json || ' ' WHERE batch_id = ?")
            .bind(b)
            .execute(&mut c)
            .await
            .unwrap();
    }
    assert!(core
        .review_panel(b)
        .await
        .unwrap()
        .four_eyes
        .valid("apply")
        .is_none());
    let Err(ApplyError::Op(e)) = core.apply_batch("alice", b, fast()).await else {
        panic!("plan B applied without its own approval")
    };
    assert_eq!(code(&e), "approval.required");

    // A rollback needs an approval too, and its approver does not carry it
    // out.
    let e = core.rollback_batch("alice", a, false).await.unwrap_err();
    assert_eq!(code(&e), "approval.required");
    assert!(audited(&w, "alice", "batch.rollback", "refused").await);
    let evidence = core.batch_evidence_digest(a).await.unwrap();
    core.approve_batch(&otto, a, "rollback", &evidence, "customer left")
        .await
        .unwrap();
    let e = core.rollback_batch("otto", a, false).await.unwrap_err();
    assert_eq!(code(&e), "approval.own_rollback");
    assert!(audited(&w, "otto", "batch.rollback", "denied").await);
    assert_eq!(
        core.rollback_batch("alice", a, false).await.unwrap(),
        BatchStatus::RolledBack
    );

    // An unprotected host needs nothing.
    core.set_host_protected(&root, w.host_id, false)
        .await
        .unwrap();
    let e = core
        .approve_batch(&otto, b, "apply", "x", "")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "approval.not_protected");
}

/// Runs the README's decision-verification line on a bundle (Node's
/// standard library only): it must print `want`, and refuse an edited
/// comment.
fn readme_line_verifies(json: &str, want: &str) {
    let run = crate::readme_node_line(|l| l.contains("decision(s) signed"));
    let ok = run(json);
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        want,
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(ok.status.success());
    let mut edited: serde_json::Value = serde_json::from_str(json).unwrap();
    edited["reviews"]["decisions"][0]["signed"]["comment"] = serde_json::json!("edited");
    let bad = run(&edited.to_string());
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).starts_with("MISMATCH"));
}
