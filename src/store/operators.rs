//! Operators and setup tokens.

use super::{audit_in, conflict, now_ms, Store, StoreError};
use crate::model::{OperatorView, Role};

/// An operator row, including the password hash (never leaves the server).
#[derive(Clone)]
pub struct OperatorRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at_ms: i64,
    pub last_sign_in_ms: Option<i64>,
    /// Moves on when the password changes: sessions of an older epoch end.
    pub session_epoch: i64,
    pub removed_at_ms: Option<i64>,
}

impl OperatorRow {
    /// May sign in and use a session.
    pub fn active(&self) -> bool {
        !self.disabled && self.removed_at_ms.is_none()
    }
}

impl std::fmt::Debug for OperatorRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("role", &self.role)
            .finish()
    }
}

impl OperatorRow {
    pub fn view(&self) -> OperatorView {
        OperatorView {
            id: self.id,
            username: self.username.clone(),
            role: self.role,
            disabled: self.disabled,
            created_at_ms: self.created_at_ms,
            last_sign_in_ms: self.last_sign_in_ms,
        }
    }
}

type Row = (
    i64,
    String,
    String,
    String,
    bool,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
);

fn from_row(r: Row) -> Result<OperatorRow, StoreError> {
    Ok(OperatorRow {
        id: r.0,
        username: r.1,
        password_hash: r.2,
        role: Role::parse(&r.3).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        disabled: r.4,
        created_at_ms: r.5,
        last_sign_in_ms: r.6,
        session_epoch: r.7,
        removed_at_ms: r.8,
    })
}

const COLS: &str = "id, username, password_hash, role, disabled, created_at_ms, last_sign_in_ms, session_epoch, removed_at_ms";

/// Enabled admins that are not removed: there must always be one.
const ADMINS_LEFT: &str =
    "SELECT COUNT(*) FROM operators WHERE role = 'admin' AND disabled = 0 AND removed_at_ms IS NULL";

impl Store {
    /// Number of operators (zero means the first admin is still to be made).
    pub async fn operator_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM operators")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Creates an operator and audits it in one transaction.
    pub async fn create_operator(
        &self,
        actor: &str,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<OperatorRow, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO operators (username, password_hash, role, created_at_ms)
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &format!("operator `{username}`")))?;
        audit_in(
            &mut tx,
            actor,
            "operator.create",
            &format!("operator:{username}"),
            "ok",
            &format!("role={role}"),
        )
        .await?;
        tx.commit().await?;
        self.operator_by_id(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("operator vanished after insert".into()))
    }

    /// Creates the first admin only if there is no operator yet, consuming
    /// the setup token in the same transaction. Returns `None` when the token
    /// is unknown or used, or an operator already exists.
    pub async fn create_first_admin(
        &self,
        token_hash: &str,
        username: &str,
        password_hash: &str,
    ) -> Result<Option<OperatorRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operators")
            .fetch_one(&mut *tx)
            .await?;
        if existing > 0 {
            return Ok(None);
        }
        let used = sqlx::query(
            "UPDATE setup_tokens SET used_at_ms = ? WHERE token_hash = ? AND used_at_ms IS NULL",
        )
        .bind(now_ms())
        .bind(token_hash)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO operators (username, password_hash, role, created_at_ms)
             VALUES (?, ?, 'admin', ?) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            username,
            "setup.first_admin",
            &format!("operator:{username}"),
            "ok",
            "first admin created with the one-time setup token",
        )
        .await?;
        tx.commit().await?;
        self.operator_by_id(id).await
    }

    /// Stores a new setup token hash, invalidating earlier unused ones.
    pub async fn replace_setup_token(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM setup_tokens WHERE used_at_ms IS NULL")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO setup_tokens (token_hash, created_at_ms) VALUES (?, ?)")
            .bind(token_hash)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn operator_by_id(&self, id: i64) -> Result<Option<OperatorRow>, StoreError> {
        let r: Option<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM operators WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.map(from_row).transpose()
    }

    pub async fn operator_by_name(
        &self,
        username: &str,
    ) -> Result<Option<OperatorRow>, StoreError> {
        let r: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLS} FROM operators WHERE username = ?"))
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        r.map(from_row).transpose()
    }

    pub async fn list_operators(&self) -> Result<Vec<OperatorRow>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM operators WHERE removed_at_ms IS NULL ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    pub async fn touch_sign_in(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE operators SET last_sign_in_ms = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Changes an operator's role or disabled flag, audited. Refuses to leave
    /// the dashboard without an enabled admin.
    pub async fn update_operator(
        &self,
        actor: &str,
        id: i64,
        role: Role,
        disabled: bool,
    ) -> Result<Option<OperatorRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let name: Option<String> = sqlx::query_scalar(
            "SELECT username FROM operators WHERE id = ? AND removed_at_ms IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(name) = name else { return Ok(None) };
        sqlx::query("UPDATE operators SET role = ?, disabled = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(disabled)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let admins: i64 = sqlx::query_scalar(ADMINS_LEFT).fetch_one(&mut *tx).await?;
        if admins == 0 {
            return Err(StoreError::Conflict(
                "the last enabled admin cannot be demoted or disabled; an admin".into(),
            ));
        }
        audit_in(
            &mut tx,
            actor,
            "operator.update",
            &format!("operator:{name}"),
            "ok",
            &format!("role={role} disabled={disabled}"),
        )
        .await?;
        tx.commit().await?;
        self.operator_by_id(id).await
    }
}

impl Store {
    /// Sets an operator's password hash and moves their session epoch on
    /// (ending their other sessions), audited as `action` in the same
    /// transaction. Returns the new epoch, `None` for no such operator.
    pub async fn set_password(
        &self,
        actor: &str,
        id: i64,
        password_hash: &str,
        action: &str,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row: Option<(String, i64)> = sqlx::query_as(
            "UPDATE operators SET password_hash = ?, session_epoch = session_epoch + 1
             WHERE id = ? AND removed_at_ms IS NULL RETURNING username, session_epoch",
        )
        .bind(password_hash)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((name, epoch)) = row else {
            return Ok(None);
        };
        audit_in(
            &mut tx,
            actor,
            action,
            &format!("operator:{name}"),
            "ok",
            "password set; the operator's other sessions ended",
        )
        .await?;
        tx.commit().await?;
        Ok(Some(epoch))
    }

    /// Removes an operator: they can never sign in again and leave the
    /// list, and their name stays taken (the audit log refers to it).
    /// Refused for the last enabled admin. `None`: no such operator.
    pub async fn remove_operator(
        &self,
        actor: &str,
        id: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let name: Option<String> = sqlx::query_scalar(
            "UPDATE operators SET removed_at_ms = ?, session_epoch = session_epoch + 1
             WHERE id = ? AND removed_at_ms IS NULL RETURNING username",
        )
        .bind(now_ms())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(name) = name else { return Ok(None) };
        let admins: i64 = sqlx::query_scalar(ADMINS_LEFT).fetch_one(&mut *tx).await?;
        if admins == 0 {
            return Err(StoreError::Conflict(
                "the last enabled admin cannot be removed".into(),
            ));
        }
        audit_in(
            &mut tx,
            actor,
            "operator.remove",
            &format!("operator:{name}"),
            "ok",
            "",
        )
        .await?;
        tx.commit().await?;
        Ok(Some(name))
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Role;
    use crate::store::test_store;

    #[tokio::test]
    async fn first_admin_needs_an_unused_token_and_an_empty_table() {
        let (store, _d) = test_store().await;
        store.replace_setup_token("h1").await.unwrap();
        assert!(store
            .create_first_admin("wrong", "root", "x")
            .await
            .unwrap()
            .is_none());
        let admin = store
            .create_first_admin("h1", "root", "x")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(admin.role, Role::Admin);
        // The token is spent, and a second first admin is refused even with a new token.
        assert!(store
            .create_first_admin("h1", "again", "x")
            .await
            .unwrap()
            .is_none());
        store.replace_setup_token("h2").await.unwrap();
        assert!(store
            .create_first_admin("h2", "again", "x")
            .await
            .unwrap()
            .is_none());
        assert_eq!(store.operator_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn duplicate_usernames_conflict_case_insensitively() {
        let (store, _d) = test_store().await;
        store
            .create_operator("cli", "Alice", "h", Role::Operator)
            .await
            .unwrap();
        let e = store
            .create_operator("cli", "alice", "h", Role::Viewer)
            .await
            .unwrap_err();
        assert!(e.is_conflict());
    }

    #[tokio::test]
    async fn the_last_admin_cannot_be_demoted() {
        let (store, _d) = test_store().await;
        let a = store
            .create_operator("cli", "root", "h", Role::Admin)
            .await
            .unwrap();
        let e = store
            .update_operator("root", a.id, Role::Viewer, false)
            .await
            .unwrap_err();
        assert!(e.is_conflict());
        assert_eq!(
            store.operator_by_id(a.id).await.unwrap().unwrap().role,
            Role::Admin
        );
        // Nor removed; a second admin can be, and stays out of the list.
        assert!(store
            .remove_operator("root", a.id)
            .await
            .unwrap_err()
            .is_conflict());
        let b = store
            .create_operator("root", "second", "h", Role::Admin)
            .await
            .unwrap();
        assert_eq!(
            store
                .remove_operator("root", b.id)
                .await
                .unwrap()
                .as_deref(),
            Some("second")
        );
        let gone = store.operator_by_id(b.id).await.unwrap().unwrap();
        assert!(!gone.active());
        assert_eq!(store.list_operators().await.unwrap().len(), 1);
        assert!(store.remove_operator("root", b.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_new_password_moves_the_session_epoch_on() {
        let (store, _d) = test_store().await;
        let a = store
            .create_operator("cli", "ann", "h1", Role::Operator)
            .await
            .unwrap();
        assert_eq!(a.session_epoch, 0);
        assert_eq!(
            store
                .set_password("root", a.id, "h2", "operator.password_reset")
                .await
                .unwrap(),
            Some(1)
        );
        let a = store.operator_by_id(a.id).await.unwrap().unwrap();
        assert_eq!((a.password_hash.as_str(), a.session_epoch), ("h2", 1));
        assert!(store
            .set_password("root", 999, "h", "x")
            .await
            .unwrap()
            .is_none());
    }
}
