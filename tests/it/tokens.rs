//! API tokens: made by an admin, shown once, stored as a hash, acting for
//! their operator within their scope, refused once revoked or expired.

use provisioning_core::model::Role;
use provisioning_core::ops::{Core, OpError, Operation, Principal, Scope, TokenRequest};
use provisioning_core::secrets::Secret;

const PW: &str = "a long password 1";

/// An admin `root` (as a principal) and an operator `name` (their row id).
async fn root_and(core: &Core, name: &str) -> (Principal, i64) {
    let admin = core
        .create_operator("cli", "root", Secret::new(PW), Role::Admin)
        .await
        .unwrap();
    let op = core
        .create_operator("cli", name, Secret::new(PW), Role::Operator)
        .await
        .unwrap();
    (Principal::operator(admin.id, "root", Role::Admin), op.id)
}

#[tokio::test]
async fn a_token_acts_for_its_operator_within_its_scope_until_revoked() {
    let ctx = crate::core().await;
    let core = &ctx.core;
    let (root, alice) = root_and(core, "alice").await;
    let req = |scope: &str, days: &str| TokenRequest {
        operator_id: alice,
        name: "ci staging".into(),
        scope: scope.into(),
        days: days.into(),
    };
    let (token, secret) = core.create_token(&root, &req("write", "30")).await.unwrap();
    assert!(secret.expose().starts_with("rmt_"), "prefix-identifiable");
    assert!(secret.expose().starts_with(&token.prefix));
    assert!(
        token.prefix.len() < secret.expose().len() / 2,
        "the list shows only a start"
    );
    assert_eq!(token.username, "alice");

    // Only its hash is stored.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM api_tokens")
        .fetch_all(core.store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].0, secret.expose());
    let dump: Vec<(String,)> = sqlx::query_as("SELECT detail FROM audit_log")
        .fetch_all(core.store.pool())
        .await
        .unwrap();
    assert!(
        dump.iter().all(|(d,)| !d.contains(secret.expose())),
        "never in the audit log"
    );

    // It stands for alice, as an operator, with its scope.
    let p = core.authenticate_token(secret.expose()).await.unwrap();
    assert_eq!((p.username.as_str(), p.role), ("alice", Role::Operator));
    assert_eq!(p.token, Some((token.id, Scope::Write)));
    assert_eq!(p.actor(), format!("alice (token #{})", token.id));
    assert!(core
        .authorize(&p, Operation::BatchPlan, "batch:new")
        .await
        .is_ok());
    // Never above alice's role, whatever its scope.
    let (_, admin_scoped) = core.create_token(&root, &req("admin", "30")).await.unwrap();
    let p2 = core
        .authenticate_token(admin_scoped.expose())
        .await
        .unwrap();
    assert!(matches!(
        core.authorize(&p2, Operation::OperatorCreate, "operator")
            .await,
        Err(OpError::Forbidden(_))
    ));
    // A read token reads and changes nothing.
    let (_, read) = core.create_token(&root, &req("read", "30")).await.unwrap();
    let pr = core.authenticate_token(read.expose()).await.unwrap();
    assert!(core.authorize(&pr, Operation::Read, "host").await.is_ok());
    let denied = core.authorize(&pr, Operation::BatchApply, "batch:1").await;
    assert!(matches!(denied, Err(OpError::Forbidden(_))), "{denied:?}");
    let (audit, _) = core.store.audit_page(1, 5).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "batch.apply"
        && e.outcome == "denied"
        && e.actor.contains("(token #")
        && e.detail.contains("scope read")));

    // Marked used; revoked, it is refused.
    let listed = core.list_tokens(&root).await.unwrap();
    assert!(listed
        .iter()
        .find(|t| t.id == token.id)
        .unwrap()
        .last_used_ms
        .is_some());
    core.revoke_token(&root, token.id).await.unwrap();
    assert!(matches!(
        core.authenticate_token(secret.expose()).await,
        Err(OpError::Unauthorized(_))
    ));
    assert!(matches!(
        core.revoke_token(&root, token.id).await,
        Err(OpError::NotFound(_))
    ));
    // Expired, it is refused.
    sqlx::query("UPDATE api_tokens SET expires_at_ms = 1")
        .execute(core.store.pool())
        .await
        .unwrap();
    assert!(core.authenticate_token(read.expose()).await.is_err());
    // An unknown or malformed one too.
    assert!(core.authenticate_token("rmt_00000000").await.is_err());
    assert!(core.authenticate_token("Bearer x").await.is_err());
}

#[tokio::test]
async fn tokens_are_made_by_admins_only_and_refuse_bad_input_by_field() {
    let ctx = crate::core().await;
    let core = &ctx.core;
    let (root, bob) = root_and(core, "bob").await;
    let as_bob = Principal::operator(bob, "bob", Role::Operator);
    let good = TokenRequest {
        operator_id: bob,
        name: "cron".into(),
        scope: "read".into(),
        days: "7".into(),
    };
    assert!(matches!(
        core.create_token(&as_bob, &good).await,
        Err(OpError::Forbidden(_))
    ));
    for (req, field) in [
        (
            TokenRequest {
                name: " ".into(),
                ..good.clone()
            },
            "name",
        ),
        (
            TokenRequest {
                scope: "root".into(),
                ..good.clone()
            },
            "scope",
        ),
        (
            TokenRequest {
                days: "0".into(),
                ..good.clone()
            },
            "days",
        ),
        (
            TokenRequest {
                days: "9999".into(),
                ..good.clone()
            },
            "days",
        ),
        (
            TokenRequest {
                days: "soon".into(),
                ..good.clone()
            },
            "days",
        ),
        (
            TokenRequest {
                operator_id: 999,
                ..good.clone()
            },
            "operator_id",
        ),
    ] {
        match core.create_token(&root, &req).await {
            Err(OpError::Invalid(f)) => assert_eq!(f.field, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(
        core.list_tokens(&root).await.unwrap().is_empty(),
        "nothing half-written"
    );
    // A removed operator's tokens stop working.
    let (_, secret) = core.create_token(&root, &good).await.unwrap();
    assert!(core.authenticate_token(secret.expose()).await.is_ok());
    core.remove_operator("root", root.operator_id, bob)
        .await
        .unwrap();
    assert!(core.authenticate_token(secret.expose()).await.is_err());
}
