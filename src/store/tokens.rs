//! API tokens (hashes only) and the answers to idempotent API requests.

use super::{audit_in, now_ms, Store, StoreError};
use crate::model::{ApiToken, Role};

/// A token found by its hash, with its operator as they are now.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub token: ApiToken,
    pub operator_role: Role,
    /// The operator may still act (not disabled, not removed).
    pub operator_active: bool,
}

/// A stored answer to an idempotent request: `None` status while the first
/// request is still being answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The key is new: this request is now its first.
    First,
    /// Answered before: (status, body).
    Answer(u16, String),
    /// The first request with this key has not been answered yet.
    InProgress,
    /// The key was used with another request body.
    Mismatch,
}

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

const COLS: &str = "t.id, t.operator_id, o.username, t.name, t.prefix, t.scope, t.created_by, \
     t.created_at_ms, t.expires_at_ms, t.last_used_ms, t.revoked_at_ms";

fn from_row(r: Row) -> ApiToken {
    ApiToken {
        id: r.0,
        operator_id: r.1,
        username: r.2,
        name: r.3,
        prefix: r.4,
        scope: r.5,
        created_by: r.6,
        created_at_ms: r.7,
        expires_at_ms: r.8,
        last_used_ms: r.9,
        revoked_at_ms: r.10,
    }
}

impl Store {
    /// Stores a new token's hash and audits it, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_token(
        &self,
        actor: &str,
        operator_id: i64,
        name: &str,
        prefix: &str,
        token_hash: &str,
        scope: &str,
        expires_at_ms: i64,
    ) -> Result<ApiToken, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (operator_id, name, prefix, token_hash, scope, created_by, created_at_ms, expires_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(operator_id)
        .bind(name)
        .bind(prefix)
        .bind(token_hash)
        .bind(scope)
        .bind(actor)
        .bind(now_ms())
        .bind(expires_at_ms)
        .fetch_one(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            actor,
            "token.create",
            &format!("token:{id}"),
            "ok",
            &format!("for operator {operator_id}, scope {scope}, name {name:?}, prefix {prefix}"),
        )
        .await?;
        tx.commit().await?;
        self.token(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("token vanished after insert".into()))
    }

    pub async fn token(&self, id: i64) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM api_tokens t JOIN operators o ON o.id = t.operator_id WHERE t.id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(from_row))
    }

    /// Every token, newest first (revoked ones too: the list is their record).
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM api_tokens t JOIN operators o ON o.id = t.operator_id ORDER BY t.id DESC LIMIT 500"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Revokes a token (once) and audits it; `false` when there is no such
    /// live token.
    pub async fn revoke_token(&self, actor: &str, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            audit_in(
                &mut tx,
                actor,
                "token.revoke",
                &format!("token:{id}"),
                "ok",
                "",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// The token with this hash, and its operator as they are now; marks
    /// it used.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenGrant>, StoreError> {
        type Grant = (String, bool, Option<i64>);
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM api_tokens t JOIN operators o ON o.id = t.operator_id WHERE t.token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = from_row(row);
        let (role, disabled, removed): Grant =
            sqlx::query_as("SELECT role, disabled, removed_at_ms FROM operators WHERE id = ?")
                .bind(token.operator_id)
                .fetch_one(&self.pool)
                .await?;
        sqlx::query("UPDATE api_tokens SET last_used_ms = ? WHERE id = ?")
            .bind(now_ms())
            .bind(token.id)
            .execute(&self.pool)
            .await?;
        Ok(Some(TokenGrant {
            token,
            operator_role: Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            operator_active: !disabled && removed.is_none(),
        }))
    }

    /// Claims an idempotency key for a request of this body hash, or says
    /// what was answered under it.
    pub async fn idempotency_claim(
        &self,
        token_id: i64,
        key: &str,
        request_hash: &str,
    ) -> Result<Replay, StoreError> {
        let mut tx = self.begin_write().await?;
        let seen: Option<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT request_hash, status, body, created_at_ms FROM api_idempotency WHERE token_id = ? AND key = ?",
        )
        .bind(token_id)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        // A first request that never got its answer recorded (the server
        // stopped) gives its key up after this long.
        const ABANDONED_MS: i64 = 10 * 60 * 1000;
        let out = match seen {
            Some((h, _, _, _)) if h != request_hash => Replay::Mismatch,
            Some((_, 0, _, at)) if now_ms() - at < ABANDONED_MS => Replay::InProgress,
            Some((_, 0, _, _)) => {
                sqlx::query(
                    "UPDATE api_idempotency SET created_at_ms = ? WHERE token_id = ? AND key = ?",
                )
                .bind(now_ms())
                .bind(token_id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
                Replay::First
            }
            Some((_, status, body, _)) => Replay::Answer(status as u16, body),
            None => {
                sqlx::query(
                    "INSERT INTO api_idempotency (token_id, key, request_hash, status, body, created_at_ms)
                     VALUES (?, ?, ?, 0, '', ?)",
                )
                .bind(token_id)
                .bind(key)
                .bind(request_hash)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                Replay::First
            }
        };
        tx.commit().await?;
        Ok(out)
    }

    /// Records the answer to a claimed key. A 5xx answer releases the key
    /// instead, so the retry runs again.
    pub async fn idempotency_answer(
        &self,
        token_id: i64,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        if status >= 500 {
            sqlx::query("DELETE FROM api_idempotency WHERE token_id = ? AND key = ?")
                .bind(token_id)
                .bind(key)
                .execute(&self.pool)
                .await?;
        } else {
            sqlx::query(
                "UPDATE api_idempotency SET status = ?, body = ? WHERE token_id = ? AND key = ?",
            )
            .bind(status as i64)
            .bind(body)
            .bind(token_id)
            .bind(key)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}
