//! Drift against the fake host: a check right after an apply is clean
//! (the host's own `extra` keys are not drift), each out-of-band edit gives
//! exactly its finding, and its action brings the host back (or adopts),
//! after which a new check has nothing open.

use crate::import::{fast, keys, world, World};
use fakehost::Profile;
use provisioning_core::model::{AccessMode, BatchStatus, DriftClass, DriftReport};
use serde_json::json;

async fn applied(mode: AccessMode) -> (World, i64) {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(3), mode).await;
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    (w, id)
}

async fn check(w: &World) -> DriftReport {
    w.ctx.core.drift_check("alice", w.host_id).await.unwrap()
}

fn open(r: &DriftReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.ignored.is_none())
        .map(|f| {
            format!(
                "{} {} {:?}",
                f.class.as_str(),
                f.kind,
                f.changed.iter().map(|c| &c.0).collect::<Vec<_>>()
            )
        })
        .collect()
}

fn first_account(w: &World) -> i64 {
    w.host
        .with_state(|s| s.accounts.iter().find(|a| !a.deleted).unwrap().id)
}

#[tokio::test]
async fn a_check_right_after_apply_is_clean_in_both_modes() {
    for mode in [AccessMode::SelfService, AccessMode::Subscription] {
        let (w, id) = applied(mode).await;
        let listed = |w: &World| {
            let core = w.ctx.core.clone();
            async move { core.list_batches(None, 10).await.unwrap().items[0].drift_open }
        };
        assert_eq!(listed(&w).await, None, "never checked");
        // The fake host wrote its own keys into the accounts' `extra`.
        assert!(w.host.with_state(|s| s
            .accounts
            .iter()
            .all(|a| a.extra.contains_key("deepseek_balance"))));
        let r = check(&w).await;
        assert_eq!(open(&r), Vec::<String>::new(), "{mode:?}");
        assert_eq!(listed(&w).await, Some(0), "batch {id}: none open");
        let expected = 3 + 3 + usize::from(mode == AccessMode::Subscription);
        assert_eq!(r.compared as usize, expected, "{mode:?}");
        assert_eq!(r.unmanaged.accounts, 0);
        assert_eq!(
            w.ctx
                .core
                .latest_drift(w.host_id)
                .await
                .unwrap()
                .unwrap()
                .id,
            r.id
        );
    }
}

/// (what is edited, the edit, the finding expected, the action, then clean)
#[tokio::test]
async fn each_out_of_band_edit_gives_its_finding_and_its_action_fixes_it() {
    type Edit = fn(&mut fakehost::State);
    let cases: Vec<(&str, AccessMode, Edit, &str, &str)> = vec![
        (
            "price changed",
            AccessMode::SelfService,
            |s| {
                s.channels[0].model_pricing[0]["output_price"] = json!(0.5);
            },
            "modified channel [\"price deepseek/deepseek-flash\"]",
            "reapply",
        ),
        (
            "mapping changed",
            AccessMode::SelfService,
            |s| {
                let a = s.accounts.iter_mut().find(|a| !a.deleted).unwrap();
                a.credentials
                    .insert("model_mapping".into(), json!({"other": "other"}));
            },
            "modified account [\"model_mapping\"]",
            "reapply",
        ),
        (
            "marker stripped",
            AccessMode::SelfService,
            |s| {
                let a = s.accounts.iter_mut().find(|a| !a.deleted).unwrap();
                a.extra.remove(fakehost::MARKER_KEY);
            },
            "modified account [\"marker\"]",
            "reapply",
        ),
        (
            "key unbound",
            AccessMode::SelfService,
            |s| {
                s.keys[0].group_id = None;
            },
            "modified user_key [\"group_id\"]",
            "reapply",
        ),
        (
            "price changed, kept as the new desired one",
            AccessMode::SelfService,
            |s| {
                s.channels[0].model_pricing[0]["input_price"] = json!(0.1);
            },
            "modified channel [\"price deepseek/deepseek-flash\"]",
            "adopt",
        ),
        (
            "account deleted",
            AccessMode::SelfService,
            |s| {
                s.accounts.iter_mut().find(|a| !a.deleted).unwrap().deleted = true;
            },
            "missing account []",
            "forget",
        ),
        (
            "subscription revoked",
            AccessMode::Subscription,
            |s| {
                s.subscriptions[0].revoked = true;
            },
            "missing subscription []",
            "forget",
        ),
        (
            "duplicate made by a second tool",
            AccessMode::SelfService,
            |s| {
                let mut copy = s.accounts.iter().find(|a| !a.deleted).unwrap().clone();
                copy.id = s.id();
                s.accounts.push(copy);
            },
            "duplicate account []",
            "remove_duplicate",
        ),
        (
            "account put into error",
            AccessMode::SelfService,
            |s| {
                let a = s.accounts.iter_mut().find(|a| !a.deleted).unwrap();
                a.status = "error".into();
                a.error_message = "Authentication failed (401): invalid key".into();
            },
            "unhealthy account []",
            "ignore",
        ),
    ];
    for (what, mode, edit, expected, action) in cases {
        let (w, _) = applied(mode).await;
        w.host.with_state(edit);
        let r = check(&w).await;
        assert_eq!(open(&r), vec![expected.to_string()], "{what}");
        assert_eq!(
            w.ctx.core.list_batches(None, 10).await.unwrap().items[0].drift_open,
            Some(1),
            "{what}: the batch row counts it"
        );
        let f = &r.findings[0];
        assert!(
            f.actions.iter().any(|a| a == action),
            "{what}: {:?}",
            f.actions
        );
        assert!(f.ledger_id.is_some() && f.batch_id.is_some(), "{what}");
        if f.class == DriftClass::Unhealthy {
            assert!(
                f.message.contains("Authentication failed (401)"),
                "{what}: {}",
                f.message
            );
        }
        if f.class == DriftClass::Modified {
            assert_eq!(f.changed.len(), 1, "{what}: {:?}", f.changed);
        }
        assert!(
            !f.evidence.contains("sk-test-key"),
            "{what}: the evidence is redacted"
        );
        if action == "ignore" {
            w.ctx
                .core
                .ignore_drift(
                    "alice",
                    w.host_id,
                    &f.key,
                    "known: the key is being replaced",
                    7,
                )
                .await
                .unwrap();
        } else {
            let msg = w
                .ctx
                .core
                .repair_drift("alice", w.host_id, &f.key, action)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(!msg.is_empty());
        }
        let again = check(&w).await;
        assert_eq!(
            open(&again),
            Vec::<String>::new(),
            "{what}: clean after {action}"
        );
        if action == "ignore" {
            assert_eq!(
                again.findings.len(),
                1,
                "{what}: an ignored finding stays visible"
            );
            assert!(again.findings[0].ignored.is_some());
        }
        if action == "reapply" || action == "remove_duplicate" {
            let runs = w
                .ctx
                .core
                .batch_view(f.batch_id.unwrap())
                .await
                .unwrap()
                .runs;
            assert_eq!(
                runs.last().unwrap().kind,
                provisioning_core::model::RunKind::Repair,
                "{what}"
            );
            assert_eq!(runs.last().unwrap().status, "done", "{what}");
        }
    }
}

#[tokio::test]
async fn objects_that_are_not_ours_are_never_drift() {
    let (w, _) = applied(AccessMode::SelfService).await;
    let a = first_account(&w);
    w.host.with_state(|s| {
        let gid = s.id();
        let mut g = s.groups[0].clone();
        g.id = gid;
        g.name = "a-teams-own-group".into();
        g.description = "by hand".into();
        s.groups.push(g);
        let mut other = s.accounts.iter().find(|x| x.id == a).unwrap().clone();
        other.id = s.id();
        other.name = "someone-elses-account".into();
        other.extra.clear();
        other.group_ids = vec![gid];
        s.accounts.push(other);
    });
    let r = check(&w).await;
    assert_eq!(open(&r), Vec::<String>::new());
    assert_eq!(r.unmanaged.groups, vec!["a-teams-own-group".to_string()]);
    assert_eq!(r.unmanaged.accounts, 1);
    // Bad input to the actions names the field.
    let e = w
        .ctx
        .core
        .ignore_drift("alice", w.host_id, "x", "", 7)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("reason"), "{e}");
    let e = w
        .ctx
        .core
        .repair_drift("alice", w.host_id, "nope", "reapply")
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("finding"), "{e}");
}
