//! Replacing one key of an applied batch: new account in and tested, old
//! account out only then, through the journal, resumable after a crash.

use crate::import::{fast, keys, world, World};
use fakehost::{Profile, UpstreamBehaviour, MARKER_KEY};
use provisioning_core::model::{AccessMode, AccessStatus, BatchStatus, StepKind, StepState};
use provisioning_core::ops::{ApplyError, ApplyOptions, CrashPoint, OpError};
use provisioning_core::secrets::Secret;

const BROKE: &str = "sk-exhausted-key-0000000000000042";
const FRESH: &str = "sk-test-key-0019-abcdefghijkl";

/// One healthy key and one without money: partly succeeded. Returns the
/// batch and the ledger id of the failed key's account.
async fn half_failed(w: &World) -> (i64, i64) {
    w.upstream.add_key(BROKE, UpstreamBehaviour::QuotaExhausted);
    let id = w
        .plan(
            &[keys(1)[0].clone(), BROKE.to_string()],
            AccessMode::SelfService,
        )
        .await;
    let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    assert_eq!(status, BatchStatus::PartiallySucceeded);
    (id, ledger_of(w, id, BROKE).await)
}

async fn ledger_of(w: &World, batch: i64, key: &str) -> i64 {
    let fp = w.ctx.core.cipher.fingerprint(&Secret::new(key.to_string()));
    w.ctx
        .core
        .store
        .ledger_for_batch(batch)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == "account" && r.fingerprint.as_deref() == Some(fp.as_str()))
        .map(|r| r.id)
        .expect("the key's account is in the ledger")
}

fn live_markers(w: &World) -> Vec<String> {
    w.host.with_state(|s| {
        let mut m: Vec<String> = s
            .accounts
            .iter()
            .filter(|a| !a.deleted)
            .map(|a| a.extra[MARKER_KEY].as_str().unwrap_or_default().to_string())
            .collect();
        m.sort();
        m
    })
}

#[tokio::test]
async fn replacing_a_failed_key_brings_the_batch_to_succeeded_and_removes_the_old_account() {
    let w = world(Profile::V0_1_179).await;
    let (id, old) = half_failed(&w).await;
    let old_remote = w
        .ctx
        .core
        .store
        .ledger_for_batch(id)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == old)
        .unwrap()
        .remote_id;
    let r = w
        .ctx
        .core
        .replace_key("alice", id, old, FRESH, fast())
        .await
        .unwrap();
    assert!(r.swapped, "{r:?}");
    assert_eq!(r.status, BatchStatus::Succeeded);
    let v = w.view(id).await;
    assert_eq!(v.status, BatchStatus::Succeeded);
    assert_eq!(v.access_status, AccessStatus::SelfServiceReady);
    assert_eq!(
        (v.keys.passed, v.keys.failed, v.keys.replaced),
        (2, 0, 1),
        "{:?}",
        v.keys
    );
    // On the host: the old account is deleted, the new one is there once.
    assert_eq!(w.accounts_on_host(), 2);
    assert!(w.host.with_state(|s| s
        .accounts
        .iter()
        .any(|a| a.id.to_string() == old_remote && a.deleted)));
    assert_eq!(w.ledger_accounts().await, 2);
    // The run is one journaled repair: account, test, removal, readiness.
    let run = v.runs.last().unwrap();
    assert_eq!(run.kind.as_str(), "repair");
    let steps: Vec<_> = v.steps.iter().filter(|s| s.run_id == run.id).collect();
    assert_eq!(
        steps.iter().map(|s| (s.kind, s.state)).collect::<Vec<_>>(),
        vec![
            (StepKind::Account, StepState::Done),
            (StepKind::AccountTest, StepState::Done),
            (StepKind::Remove, StepState::Done),
            (StepKind::Readiness, StepState::Done),
        ]
    );
    // A re-run afterwards creates nothing and does not test the old key.
    let creates = w.host.calls("POST /api/v1/admin/accounts");
    let tests = w.host.calls("POST /api/v1/admin/accounts/:id/test");
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    assert_eq!(w.host.calls("POST /api/v1/admin/accounts"), creates);
    assert_eq!(
        w.host.calls("POST /api/v1/admin/accounts/:id/test"),
        tests,
        "no account test of a replaced key"
    );
    // The audit log names the replacement.
    let audit = w.ctx.core.store.audit_for_batch(id, "").await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "batch.replace_key" && a.outcome == "ok"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_replacement_key_that_fails_its_test_leaves_the_old_account_on_the_host() {
    let w = world(Profile::V0_1_179).await;
    let (id, old) = half_failed(&w).await;
    let also_broke = "sk-exhausted-key-0000000000000043";
    w.upstream
        .add_key(also_broke, UpstreamBehaviour::QuotaExhausted);
    let before = live_markers(&w);
    let r = w
        .ctx
        .core
        .replace_key("alice", id, old, also_broke, fast())
        .await
        .unwrap();
    assert!(!r.swapped);
    let v = w.view(id).await;
    assert_eq!(v.status, BatchStatus::PartiallySucceeded);
    assert_eq!((v.keys.passed, v.keys.failed, v.keys.replaced), (1, 2, 0));
    // The old account is still there; the new (failed) one was added.
    let after = live_markers(&w);
    assert!(before.iter().all(|m| after.contains(m)));
    assert_eq!(after.len(), before.len() + 1);
    let removal = v.steps.iter().find(|s| s.kind == StepKind::Remove).unwrap();
    assert_eq!(removal.state, StepState::Skipped);
}

#[tokio::test]
async fn a_replacement_is_refused_with_the_field_and_writes_nothing() {
    let w = world(Profile::V0_1_179).await;
    let (id, old) = half_failed(&w).await;
    let other = w.plan(&keys(3)[2..], AccessMode::SelfService).await;
    w.ctx
        .core
        .apply_batch("alice", other, fast())
        .await
        .unwrap();
    let runs = w.ctx.core.store.runs(id).await.unwrap().len();
    let writes = w.host.write_calls();
    let refuse = |e: OpError| match e {
        OpError::Invalid(f) | OpError::Conflict(f) => (f.field, f.message),
        other => panic!("{other:?}"),
    };
    let core = &w.ctx.core;
    let cases: Vec<(i64, i64, String, &str)> = vec![
        (
            id,
            old,
            format!("{FRESH}\nsk-test-key-0018-abcdefghijkl"),
            "key",
        ),
        (id, old, BROKE.into(), "key"),
        (id, old, keys(3)[2].clone(), "key"),
        (id, old, "x1y2".into(), "key"),
        (id, old, "".into(), "key"),
        (id, 999_999, FRESH.into(), "account"),
        (other, old, FRESH.into(), "account"),
    ];
    for (batch, ledger, key, field) in cases {
        let e = core
            .plan_replace("alice", batch, ledger, &key)
            .await
            .unwrap_err();
        let (f, msg) = refuse(e);
        assert_eq!(f, field, "{key:?}: {msg}");
        assert!(
            key.len() < 8 || !msg.contains(&key),
            "the key is never echoed: {msg}"
        );
    }
    // A planned (never applied) batch cannot have a key replaced.
    let planned = w.plan(&keys(5)[4..], AccessMode::SelfService).await;
    let e = core
        .plan_replace("alice", planned, old, FRESH)
        .await
        .unwrap_err();
    assert_eq!(refuse(e).0, "batch");
    assert_eq!(w.ctx.core.store.runs(id).await.unwrap().len(), runs);
    assert_eq!(w.host.write_calls(), writes, "nothing was sent to the host");
}

#[tokio::test]
async fn a_replacement_stopped_at_any_step_resumes_without_a_second_account() {
    for (step, point) in [
        (0, CrashPoint::AfterSent),
        (0, CrashPoint::AfterCall),
        (1, CrashPoint::AfterCall),
        (3, CrashPoint::AfterSent),
    ] {
        let w = world(Profile::V0_1_179).await;
        let (id, old) = half_failed(&w).await;
        let first = w.view(id).await.steps.iter().map(|s| s.seq).max().unwrap() + 1;
        let r = w
            .ctx
            .core
            .replace_key(
                "alice",
                id,
                old,
                FRESH,
                ApplyOptions {
                    crash_at: Some((first + step, point)),
                    ..fast()
                },
            )
            .await;
        assert!(
            matches!(r, Err(ApplyError::Crashed(_))),
            "step {step} {point:?}: {r:?}"
        );
        assert_eq!(w.view(id).await.status, BatchStatus::Running);
        // A new replacement is refused while this one is unfinished.
        assert!(w
            .ctx
            .core
            .plan_replace("alice", id, old, "sk-test-key-0017-abcdefghijkl")
            .await
            .is_err());
        // "Resume" (the apply button) finishes the replacement.
        let status = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
        let v = w.view(id).await;
        assert_eq!(status, BatchStatus::Succeeded, "step {step} {point:?}");
        assert_eq!((v.keys.passed, v.keys.replaced), (2, 1));
        assert_eq!(w.accounts_on_host(), 2, "step {step} {point:?}");
        let markers = live_markers(&w);
        let mut unique = markers.clone();
        unique.dedup();
        assert_eq!(
            markers, unique,
            "step {step} {point:?}: a duplicate account"
        );
    }
}
