//! API tokens: created by an admin for an operator, shown once, stored as a
//! hash, revocable; a request with one acts as that operator within the
//! token's scope.

use super::authz::{Operation, Principal, Scope};
use super::{Core, OpError};
use crate::model::{ApiToken, FieldError, MAX_SHORT};
use crate::secrets::{random_hex, sha256_hex, Secret};
use crate::store::now_ms;

/// What every token starts with (secret scanners and people recognise it).
pub const TOKEN_PREFIX: &str = "rmt_";
/// How long a token may live at most.
pub const MAX_TOKEN_DAYS: i64 = 366;

/// A new token's parameters, as typed.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub operator_id: i64,
    pub name: String,
    pub scope: String,
    pub days: String,
}

impl Core {
    /// Creates a token; the returned secret is shown once and never stored.
    pub async fn create_token(
        &self,
        p: &Principal,
        req: &TokenRequest,
    ) -> Result<(ApiToken, Secret), OpError> {
        let actor = self
            .authorize(p, Operation::TokenManage, "token:new")
            .await?;
        let name = req.name.trim();
        if name.is_empty() {
            return Err(FieldError::coded("name", "field.required", &[]).into());
        }
        if name.chars().count() > MAX_SHORT {
            return Err(FieldError::coded(
                "name",
                "field.too_long",
                &[("n", &name.chars().count()), ("max", &MAX_SHORT)],
            )
            .into());
        }
        let scope = Scope::parse(&req.scope)
            .ok_or_else(|| FieldError::coded("scope", "token.scope", &[]))?;
        let days: i64 = req
            .days
            .trim()
            .parse()
            .ok()
            .filter(|d| (1..=MAX_TOKEN_DAYS).contains(d))
            .ok_or_else(|| FieldError::coded("days", "token.days", &[("max", &MAX_TOKEN_DAYS)]))?;
        let operator = self
            .store
            .operator_by_id(req.operator_id)
            .await?
            .filter(|o| o.active())
            .ok_or_else(|| FieldError::coded("operator_id", "token.operator", &[]))?;
        let secret = Secret::new(format!("{TOKEN_PREFIX}{}", random_hex(24)));
        let prefix: String = secret
            .expose()
            .chars()
            .take(TOKEN_PREFIX.len() + 8)
            .collect();
        let token = self
            .store
            .insert_token(
                &actor,
                operator.id,
                name,
                &prefix,
                &sha256_hex(secret.expose()),
                scope.as_str(),
                now_ms() + days * 86_400_000,
            )
            .await?;
        tracing::info!(token_id = token.id, operator = %operator.username, scope = %scope, "API token created");
        Ok((token, secret))
    }

    pub async fn list_tokens(&self, p: &Principal) -> Result<Vec<ApiToken>, OpError> {
        self.authorize(p, Operation::TokenManage, "token").await?;
        Ok(self.store.list_tokens().await?)
    }

    pub async fn revoke_token(&self, p: &Principal, id: i64) -> Result<(), OpError> {
        let actor = self
            .authorize(p, Operation::TokenManage, &format!("token:{id}"))
            .await?;
        if self.store.revoke_token(&actor, id).await? {
            Ok(())
        } else {
            Err(OpError::NotFound(format!("live token {id}")))
        }
    }

    /// The principal a bearer token stands for: refused (401) when it is
    /// unknown, revoked, expired, or its operator can no longer act. The
    /// token's role is its operator's as it is now.
    pub async fn authenticate_token(&self, bearer: &str) -> Result<Principal, OpError> {
        let bearer = bearer.trim();
        let refused =
            || OpError::Unauthorized("the token is not valid (unknown, revoked or expired)".into());
        if !bearer.starts_with(TOKEN_PREFIX) || bearer.len() > 200 {
            return Err(refused());
        }
        let grant = self
            .store
            .token_by_hash(&sha256_hex(bearer))
            .await?
            .ok_or_else(refused)?;
        if !grant.token.live(now_ms()) || !grant.operator_active {
            return Err(refused());
        }
        let scope = Scope::parse(&grant.token.scope).ok_or_else(|| {
            OpError::Store(crate::store::StoreError::Corrupt("token scope".into()))
        })?;
        Ok(Principal {
            operator_id: grant.token.operator_id,
            username: grant.token.username.clone(),
            role: grant.operator_role,
            token: Some((grant.token.id, scope)),
        })
    }
}
