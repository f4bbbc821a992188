//! Rollback and pause through the journal, and the journal's resend rules on
//! hosts that cannot de-duplicate: against the fake host.

use crate::import::{fast, keys, world, world_cfg, World};
use fakehost::{FakeHostConfig, Fault, FaultKind, Profile, UpstreamBehaviour};
use provisioning_core::model::{AccessMode, BatchStatus, StepKind, StepState};
use serde_json::json;
use std::time::Duration;

/// What an operator could see of the host: live objects, by name and
/// content, ignoring ids, timestamps and balances (a top-up is not undone).
fn snapshot(w: &World) -> Vec<String> {
    w.host.with_state(|s| {
        let mut out = Vec::new();
        for g in s.groups.iter().filter(|g| !g.deleted) {
            out.push(format!(
                "group {} {} {}",
                g.name, g.platform, g.subscription_type
            ));
        }
        for c in &s.channels {
            out.push(format!("channel {} {:?}", c.name, c.model_pricing));
        }
        for a in s.accounts.iter().filter(|a| !a.deleted) {
            out.push(format!("account {} {:?}", a.name, a.group_ids.len()));
        }
        for k in &s.keys {
            out.push(format!("key {} {:?}", k.name, k.group_id.is_some()));
        }
        for sub in s.subscriptions.iter().filter(|x| x.active()) {
            out.push(format!("subscription {}", sub.user_id));
        }
        out.sort();
        out
    })
}

/// An unmanaged group with an account on it, as another operator left them.
fn add_unmanaged(w: &World) {
    add_unmanaged_named(w, "someone-elses");
}

fn add_unmanaged_named(w: &World, name: &str) {
    w.host.with_state(|s| {
        let gid = s.id();
        s.groups.push(fakehost::Group {
            id: gid,
            name: name.into(),
            description: "made by hand".into(),
            platform: "openai".into(),
            rate_multiplier: 1.0,
            is_exclusive: false,
            status: "active".into(),
            subscription_type: "standard".into(),
            limits: [0.0; 3],
            deleted: false,
            model_list: None,
            model_pricing: Vec::new(),
        });
        let aid = s.id();
        s.accounts.push(fakehost::Account {
            id: aid,
            name: format!("rm-ds-{name}"),
            notes: None,
            platform: "openai".into(),
            kind: "apikey".into(),
            credentials: Default::default(),
            extra: Default::default(),
            group_ids: vec![gid],
            status: "active".into(),
            error_message: String::new(),
            schedulable: true,
            priority: 1,
            concurrency: 0,
            rate_limit_reset_at: None,
            deleted: false,
            created_at: String::new(),
        });
    });
}

#[tokio::test]
async fn apply_then_rollback_returns_the_host_to_its_prior_snapshot_in_both_modes() {
    for mode in [AccessMode::SelfService, AccessMode::Subscription] {
        for n in [1, 3, 7] {
            let w = world(Profile::V0_1_179).await;
            add_unmanaged(&w);
            let before = snapshot(&w);
            let id = w.plan(&keys(n), mode).await;
            assert_eq!(
                w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
                BatchStatus::Succeeded
            );
            assert_ne!(snapshot(&w), before);
            let preview = w.ctx.core.rollback_preview(id, false).await.unwrap();
            let sub = usize::from(mode == AccessMode::Subscription);
            assert_eq!(
                preview
                    .items
                    .iter()
                    .filter(|i| i.decision == "remove")
                    .count(),
                n + 3 + sub,
                "{mode:?} {n}: accounts, group, channel and key: {:#?}",
                preview.items
            );
            let order: Vec<&str> = preview.items.iter().map(|i| i.kind.as_str()).collect();
            assert_eq!(order.first(), Some(&"user_key"), "keys go first");
            assert_eq!(order.last(), Some(&"group"), "the group goes last");
            if mode == AccessMode::SelfService {
                assert!(
                    preview.irreversible.iter().any(|t| t.contains("top-up")),
                    "{:?}",
                    preview.irreversible
                );
            }
            assert_eq!(
                w.ctx.core.rollback_batch("alice", id, false).await.unwrap(),
                BatchStatus::RolledBack
            );
            assert_eq!(snapshot(&w), before, "{mode:?} {n}");
            assert!(w
                .ctx
                .core
                .store
                .live_ledger(w.host_id)
                .await
                .unwrap()
                .is_empty());
            assert!(w
                .ctx
                .core
                .store
                .access_key(w.host_id, &w.view(id).await.plan.group_name)
                .await
                .unwrap()
                .is_none());
            let v = w.view(id).await;
            assert_eq!(v.runs.len(), 2, "an apply run and a rollback run");
            // The evidence keeps both runs.
            let bundle = w.ctx.core.export_bundle("alice", id).await.unwrap();
            assert!(bundle.json.contains("\"kind\": \"rollback\""));
            assert!(bundle.html.contains("<td>rollback</td>"));
            // Applying it again is refused; a new plan can import the keys again.
            assert!(w.ctx.core.apply_batch("alice", id, fast()).await.is_err());
            let again = w.plan(&keys(n), mode).await;
            assert_eq!(
                w.view(again)
                    .await
                    .plan
                    .steps
                    .iter()
                    .filter(|s| s.kind == StepKind::Account)
                    .count(),
                n,
                "the rolled-back keys are importable again"
            );
        }
    }
}

#[tokio::test]
async fn rolling_back_a_batch_that_shares_its_group_keeps_the_other_batch_ready() {
    let w = world(Profile::V0_1_179).await;
    let before = snapshot(&w);
    let k = keys(4);
    let a = w.plan(&k[..2], AccessMode::SelfService).await;
    assert_eq!(
        w.ctx.core.apply_batch("alice", a, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    let b = w.plan(&k[2..], AccessMode::SelfService).await;
    assert_eq!(
        w.ctx.core.apply_batch("alice", b, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    let preview = w.ctx.core.rollback_preview(a, false).await.unwrap();
    for kind in ["group", "channel", "user_key"] {
        let i = preview.items.iter().find(|i| i.kind == kind).unwrap();
        assert_eq!(i.decision, "keep", "{kind}");
        assert!(i.reason.contains(&format!("batch #{b}")), "{}", i.reason);
    }
    assert_eq!(
        w.ctx.core.rollback_batch("alice", a, false).await.unwrap(),
        BatchStatus::RolledBack
    );
    assert_eq!(w.accounts_on_host(), 2, "only batch a's accounts went");
    // Batch b still passes its checks (its re-run re-proves readiness).
    assert_eq!(
        w.ctx.core.apply_batch("alice", b, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    assert_eq!(
        w.ctx.core.rollback_batch("alice", b, false).await.unwrap(),
        BatchStatus::RolledBack
    );
    assert_eq!(snapshot(&w), before);
}

#[tokio::test]
async fn an_object_changed_on_the_host_is_kept_unless_forced() {
    let w = world(Profile::V0_1_179).await;
    let id = w.plan(&keys(2), AccessMode::SelfService).await;
    w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    w.host.with_state(|s| {
        s.channels[0].model_pricing[0]["output_price"] = json!(0.5);
        // Renamed out of the `rm-` listing: still found (by id), not "gone".
        s.accounts.iter_mut().find(|a| !a.deleted).unwrap().name = "renamed-by-hand".into();
    });
    let p = w.ctx.core.rollback_preview(id, false).await.unwrap();
    let renamed = p
        .items
        .iter()
        .find(|i| i.kind == "account" && i.decision == "keep")
        .expect("the renamed account is kept unless forced");
    assert_eq!(renamed.changed[0].0, "name");
    let ch = p.items.iter().find(|i| i.kind == "channel").unwrap();
    assert_eq!(ch.decision, "keep");
    assert_eq!(ch.changed.len(), 1, "{:?}", ch.changed);
    assert_eq!(ch.changed[0].0, "price deepseek/deepseek-flash");
    let forced = w.ctx.core.rollback_preview(id, true).await.unwrap();
    assert_eq!(
        forced
            .items
            .iter()
            .find(|i| i.kind == "channel")
            .unwrap()
            .decision,
        "remove"
    );
    assert_eq!(
        w.ctx.core.rollback_batch("alice", id, true).await.unwrap(),
        BatchStatus::RolledBack
    );
    assert_eq!(w.host.with_state(|s| s.channels.len()), 0);
    assert_eq!(
        w.accounts_on_host(),
        0,
        "the renamed account was removed too"
    );
}

#[tokio::test]
async fn a_rollback_that_fails_part_way_resumes_to_the_end() {
    let w = world(Profile::V0_1_179).await;
    let before = snapshot(&w);
    let id = w.plan(&keys(3), AccessMode::SelfService).await;
    w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
    w.host.add_fault(Fault {
        method: reqwest::Method::DELETE,
        path_prefix: "/api/v1/admin/accounts/".into(),
        kind: FaultKind::Status(500, json!({"code": 500, "message": "db down"})),
        times: 1,
    });
    assert_eq!(
        w.ctx.core.rollback_batch("alice", id, false).await.unwrap(),
        BatchStatus::RollbackFailed
    );
    assert!(
        w.host.with_state(|s| s.groups.iter().any(|g| !g.deleted)),
        "the group is not deleted while an account still points at it"
    );
    assert_eq!(
        w.ctx.core.rollback_batch("alice", id, false).await.unwrap(),
        BatchStatus::RolledBack
    );
    assert_eq!(snapshot(&w), before);
    let v = w.view(id).await;
    assert_eq!(v.runs.len(), 2, "the same rollback run resumed");
}

/// A batch create whose request fails before the host commits, on a host
/// that ignores `Idempotency-Key`: the accounts are `unknown` on the next
/// run, never sent again, and nothing is duplicated.
#[tokio::test]
async fn on_a_host_that_cannot_de_duplicate_a_lost_write_becomes_unknown_not_a_resend() {
    for version in [None, Some("1.8.170".to_string())] {
        let w = world_cfg(FakeHostConfig {
            honour_idempotency: false,
            version_override: version.clone(),
            models_cache_ttl: Duration::ZERO,
            ..Default::default()
        })
        .await;
        // A fork has no known batch route: its accounts go one by one.
        let (route, times) = match version {
            None => ("/api/v1/admin/accounts/batch", 1),
            Some(_) => ("/api/v1/admin/accounts", 3),
        };
        w.host.add_fault(Fault {
            method: reqwest::Method::POST,
            path_prefix: route.into(),
            kind: FaultKind::Status(502, json!({"code": 502, "message": "bad gateway"})),
            times,
        });
        let id = w.plan(&keys(3), AccessMode::SelfService).await;
        let first = w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
        if version.is_none() {
            // The version says the host de-duplicates (it does not, here):
            // the same batch was resent under the same key once, and as the
            // first call never reached the host, each account exists once.
            assert_eq!(first, BatchStatus::Succeeded);
            assert_eq!(w.host.calls("POST /api/v1/admin/accounts/batch"), 2);
            assert_eq!(w.host.calls("POST /api/v1/admin/accounts"), 0);
            assert!(w
                .host
                .with_state(|s| s.creates_per_marker.values().all(|c| *c == 1)));
            continue;
        }
        assert_ne!(first, BatchStatus::Succeeded, "{version:?}");
        let sent: Vec<_> = w
            .view(id)
            .await
            .steps
            .into_iter()
            .filter(|s| s.kind == StepKind::Account)
            .collect();
        assert!(
            sent.iter().all(|s| s.state == StepState::Sent),
            "{version:?}: {sent:#?}"
        );
        let calls = |w: &World| {
            w.host.calls("POST /api/v1/admin/accounts/batch")
                + w.host.calls("POST /api/v1/admin/accounts")
        };
        let sent_before = calls(&w);
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap();
        assert_eq!(
            calls(&w),
            sent_before,
            "{version:?}: nothing was sent again"
        );
        let after: Vec<_> = w
            .view(id)
            .await
            .steps
            .into_iter()
            .filter(|s| s.kind == StepKind::Account)
            .collect();
        assert!(
            after.iter().all(|s| s.state == StepState::Unknown),
            "{version:?}: {after:#?}"
        );
        assert!(
            after[0].error.contains("cannot de-duplicate"),
            "{}",
            after[0].error
        );
        assert_eq!(w.accounts_on_host(), 0, "{version:?}: nothing was resent");
    }
}

/// A batch create that timed out on an idempotent host: the same steps are
/// never sent one by one in that run; the next run resends the same batch
/// under the same key and every account exists once.
#[tokio::test]
async fn a_failed_batch_create_is_retried_as_the_same_batch_not_split() {
    let w = world(Profile::V0_1_179).await;
    w.host.add_fault(Fault {
        method: reqwest::Method::POST,
        path_prefix: "/api/v1/admin/accounts/batch".into(),
        kind: FaultKind::Status(503, json!({"code": 503, "message": "overloaded"})),
        times: 1,
    });
    let id = w.plan(&keys(4), AccessMode::SelfService).await;
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::Succeeded
    );
    assert_eq!(
        w.host.calls("POST /api/v1/admin/accounts"),
        0,
        "no single creates after a failed batch create"
    );
    assert_eq!(w.host.calls("POST /api/v1/admin/accounts/batch"), 2);
    let keys_sent: Vec<String> = w
        .view(id)
        .await
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Account)
        .map(|s| s.response.clone())
        .collect();
    assert_eq!(keys_sent.len(), 4);
    let dup = w
        .host
        .with_state(|s| s.creates_per_marker.values().filter(|c| **c > 1).count());
    assert_eq!(dup, 0);
    assert_eq!(w.accounts_on_host(), 4);
    assert_eq!(w.ledger_accounts().await, 4);
}

#[tokio::test]
async fn the_accounts_of_failed_keys_can_be_paused_and_resumed() {
    let w = world(Profile::V0_1_179).await;
    let k = keys(3);
    w.upstream.add_key(&k[1], UpstreamBehaviour::QuotaExhausted);
    let id = w.plan(&k, AccessMode::SelfService).await;
    assert_eq!(
        w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
        BatchStatus::PartiallySucceeded
    );
    let failed_id = w.host.with_state(|s| {
        s.accounts
            .iter()
            .find(|a| a.credentials.get("api_key") == Some(&json!(k[1])))
            .unwrap()
            .id
    });
    let schedulable = |w: &World| {
        w.host.with_state(|s| {
            s.accounts
                .iter()
                .filter(|a| !a.deleted)
                .map(|a| (a.id, a.schedulable))
                .collect::<Vec<_>>()
        })
    };
    assert!(
        schedulable(&w).iter().all(|(_, s)| *s),
        "a 402 leaves the account schedulable (reference §12.3)"
    );
    let counts =
        |v: provisioning_core::model::BatchView| (v.failed_live_accounts, v.failed_paused_accounts);
    assert_eq!(
        counts(w.view(id).await),
        (1, 0),
        "one to pause, none to resume"
    );
    assert_eq!(
        w.ctx
            .core
            .set_failed_accounts_schedulable("alice", id, false)
            .await
            .unwrap(),
        1
    );
    for (aid, s) in schedulable(&w) {
        assert_eq!(
            s,
            aid != failed_id,
            "only the failed key's account is paused"
        );
    }
    assert_eq!(counts(w.view(id).await), (1, 1), "paused: one to resume");
    assert_eq!(
        w.ctx
            .core
            .set_failed_accounts_schedulable("alice", id, true)
            .await
            .unwrap(),
        1
    );
    assert!(schedulable(&w).iter().all(|(_, s)| *s));
    assert_eq!(counts(w.view(id).await), (1, 0), "resumed: none to resume");
    assert_eq!(w.view(id).await.runs.len(), 3);
    // Removing them deletes only that account; the batch stays ready.
    assert_eq!(
        w.ctx
            .core
            .remove_failed_accounts("alice", id)
            .await
            .unwrap(),
        1
    );
    let left: Vec<i64> = schedulable(&w).into_iter().map(|(a, _)| a).collect();
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&failed_id));
    assert_eq!(w.ledger_accounts().await, 2);
    assert!(
        w.ctx
            .core
            .remove_failed_accounts("alice", id)
            .await
            .is_err(),
        "nothing left to remove"
    );
    let v = w.view(id).await;
    assert_eq!(v.status, BatchStatus::PartiallySucceeded);
    // A rollback afterwards removes the rest.
    assert_eq!(
        w.ctx.core.rollback_batch("alice", id, false).await.unwrap(),
        BatchStatus::RolledBack
    );
    assert_eq!(w.accounts_on_host(), 0);
}

/// A small seeded generator for the property test below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// For random key sets, modes, unmanaged objects and one or two batches
/// sharing a group, applied and then rolled back in a random order: the
/// host returns to its exact prior snapshot, and while one batch is rolled
/// back the other stays ready.
#[tokio::test]
async fn property_apply_then_rollback_in_any_order_restores_the_host() {
    let mut rng = Rng(0x2026_1201_beef);
    for case in 0..10 {
        let w = world(Profile::V0_1_179).await;
        for i in 0..rng.below(3) {
            add_unmanaged_named(&w, &format!("foreign-{i}"));
        }
        let before = snapshot(&w);
        let mode = if rng.below(2) == 0 {
            AccessMode::SelfService
        } else {
            AccessMode::Subscription
        };
        let all = keys(12);
        let mut batches = Vec::new();
        let mut start = 0;
        for _ in 0..1 + rng.below(2) {
            let n = 1 + rng.below(5) as usize;
            let id = w.plan(&all[start..start + n], mode).await;
            start += n;
            assert_eq!(
                w.ctx.core.apply_batch("alice", id, fast()).await.unwrap(),
                BatchStatus::Succeeded,
                "case {case}"
            );
            batches.push(id);
        }
        if batches.len() == 2 && rng.below(2) == 0 {
            batches.reverse();
        }
        for (i, id) in batches.iter().enumerate() {
            assert_eq!(
                w.ctx
                    .core
                    .rollback_batch("alice", *id, false)
                    .await
                    .unwrap(),
                BatchStatus::RolledBack,
                "case {case}"
            );
            if let Some(other) = batches.get(i + 1) {
                assert_eq!(
                    w.ctx
                        .core
                        .apply_batch("alice", *other, fast())
                        .await
                        .unwrap(),
                    BatchStatus::Succeeded,
                    "case {case}: the other batch stays ready"
                );
            }
        }
        assert_eq!(
            snapshot(&w),
            before,
            "case {case} ({mode:?}, {} batches)",
            batches.len()
        );
    }
}
