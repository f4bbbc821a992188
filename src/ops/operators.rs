//! Operator accounts: argon2id hashing on a blocking thread, sign-in with
//! throttling per account and per address, the first-admin setup token.

use super::{Core, OpError};
use crate::model::{self, FieldError, Role};
use crate::secrets::{random_hex, sha256_hex, Secret};
use crate::store::{now_ms, OperatorRow};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

/// Failed sign-ins counted over this window.
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failures per account in the window before sign-in is refused.
pub const THROTTLE_USER_LIMIT: i64 = 5;
/// Failures per client address in the window before sign-in is refused.
pub const THROTTLE_ADDRESS_LIMIT: i64 = 20;

/// Why a sign-in did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown user, wrong password or disabled account: deliberately one
    /// answer, so the form does not reveal which usernames exist.
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed sign-ins; try again in {retry_after_s} s")]
    Throttled { retry_after_s: u64 },
    #[error(transparent)]
    Op(#[from] OpError),
}

/// A hash of a throwaway password, verified against when the username does
/// not exist so both paths cost one argon2 verification.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_blocking("not-a-real-password-only-for-timing"))
}

fn hash_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with default parameters cannot fail")
        .to_string()
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes)
/// on tokio's blocking pool, so a sign-in never stalls the async threads.
pub async fn hash_password(password: Secret) -> String {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| hash_blocking(password.expose())))
        .await
        .expect("hashing task does not panic")
}

async fn verify_password(password: Secret, hash: String) -> bool {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            PasswordHash::new(&hash)
                .map(|h| {
                    Argon2::default()
                        .verify_password(password.expose().as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
    })
    .await
    .unwrap_or(false)
}

/// A page of the audit log: entries newest first, the cursor of the next
/// (older) page, and how many entries match.
pub struct AuditSlice {
    pub entries: Vec<model::AuditEntry>,
    pub next_before: Option<i64>,
    pub total: i64,
}

impl Core {
    /// The audit log filtered by who, action (or a family, `batch.`),
    /// outcome and target, `limit` entries older than `before`. A filter
    /// longer than any value in the log is refused with its field.
    pub async fn audit_entries(
        &self,
        filter: &model::AuditFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<AuditSlice, OpError> {
        for (field, v) in [
            ("actor", &filter.actor),
            ("action", &filter.action),
            ("outcome", &filter.outcome),
            ("target", &filter.target),
        ] {
            if v.chars().count() > 200 {
                return Err(FieldError::coded(field, "audit.filter_long", &[("max", &200)]).into());
            }
        }
        let limit = limit.clamp(1, 200);
        let (mut entries, total) = self
            .store
            .audit_entries(filter, before, limit as i64 + 1)
            .await?;
        let next_before = (entries.len() > limit).then(|| entries[limit - 1].id);
        entries.truncate(limit);
        Ok(AuditSlice {
            entries,
            next_before,
            total,
        })
    }
}

/// A change to another operator as the store answered it: none found is
/// 404, a refusal that would leave no enabled admin is 409.
fn changed<T>(r: Result<Option<T>, crate::store::StoreError>, id: i64) -> Result<T, OpError> {
    match r {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(OpError::NotFound(format!("operator {id}"))),
        Err(e) if e.is_conflict() => Err(OpError::Conflict(FieldError::coded(
            "id",
            "operator.last_admin",
            &[],
        ))),
        Err(e) => Err(e.into()),
    }
}

impl Core {
    /// Creates an operator (admin page or CLI). Validates the username and
    /// the password length; the password is hashed, never stored.
    #[tracing::instrument(skip(self, password), fields(username = %username))]
    pub async fn create_operator(
        &self,
        actor: &str,
        username: &str,
        password: Secret,
        role: Role,
    ) -> Result<OperatorRow, OpError> {
        let username = model::username(username)?;
        model::new_password(password.expose())?;
        let hash = hash_password(password).await;
        self.store
            .create_operator(actor, &username, &hash, role)
            .await
            .map_err(|e| {
                if e.is_conflict() {
                    OpError::Conflict(FieldError::coded(
                        "username",
                        "operator.name_taken",
                        &[("username", &username)],
                    ))
                } else {
                    e.into()
                }
            })
    }

    /// An admin sets another operator's password (they forgot it, or it
    /// leaked): every session of theirs ends. Their own password an admin
    /// changes like everyone else, with the current one.
    #[tracing::instrument(skip(self, password))]
    pub async fn reset_password(
        &self,
        actor: &str,
        actor_id: i64,
        id: i64,
        password: Secret,
    ) -> Result<String, OpError> {
        if id == actor_id {
            return Err(FieldError::coded("id", "operator.reset_self", &[]).into());
        }
        model::new_password(password.expose())?;
        let hash = hash_password(password).await;
        self.store
            .set_password(actor, id, &hash, "operator.password_reset")
            .await?
            .ok_or_else(|| OpError::NotFound(format!("operator {id}")))?;
        let name = self
            .store
            .operator_by_id(id)
            .await?
            .map(|r| r.username)
            .unwrap_or_default();
        Ok(name)
    }

    /// Changes the signed-in operator's own password after checking the
    /// current one; their other sessions end. Returns the new session
    /// epoch, for the session that made the change to keep.
    #[tracing::instrument(skip(self, current, new))]
    pub async fn change_password(
        &self,
        id: i64,
        current: Secret,
        new: Secret,
    ) -> Result<i64, OpError> {
        let row = self
            .store
            .operator_by_id(id)
            .await?
            .filter(OperatorRow::active)
            .ok_or_else(|| OpError::NotFound(format!("operator {id}")))?;
        if current.is_empty() {
            return Err(FieldError::coded("current_password", "field.required", &[]).into());
        }
        // A session in the wrong hands must not guess the password: the
        // same limit as sign-in, per operator.
        let scope = format!("password_change:{id}");
        let failures = self
            .store
            .sign_in_failures_since(&scope, now_ms() - THROTTLE_WINDOW_MS)
            .await?;
        if failures >= THROTTLE_USER_LIMIT {
            return Err(OpError::Throttled(FieldError::coded(
                "current_password",
                "operator.throttled",
                &[
                    ("n", &failures),
                    ("minutes", &(THROTTLE_WINDOW_MS / 60_000)),
                ],
            )));
        }
        if !verify_password(current.clone(), row.password_hash.clone()).await {
            self.store.record_sign_in_failure(&[scope]).await?;
            return Err(
                FieldError::coded("current_password", "operator.wrong_current", &[]).into(),
            );
        }
        model::new_password(new.expose()).map_err(|e| FieldError {
            field: "new_password".into(),
            ..e
        })?;
        if new.expose() == current.expose() {
            return Err(FieldError::coded("new_password", "operator.same_password", &[]).into());
        }
        let hash = hash_password(new).await;
        let epoch = self
            .store
            .set_password(&row.username, id, &hash, "operator.password_change")
            .await?
            .ok_or_else(|| OpError::NotFound(format!("operator {id}")))?;
        self.store.clear_sign_in_failures(&scope).await?;
        Ok(epoch)
    }

    /// Every operator not removed, by name (never a password hash).
    pub async fn list_operators(&self) -> Result<Vec<model::OperatorView>, OpError> {
        Ok(self
            .store
            .list_operators()
            .await?
            .iter()
            .map(OperatorRow::view)
            .collect())
    }

    /// Sets another operator's role and whether they are disabled (admin);
    /// the last enabled admin stays one.
    pub async fn update_operator(
        &self,
        actor: &str,
        id: i64,
        role: Role,
        disabled: bool,
    ) -> Result<model::OperatorView, OpError> {
        changed(
            self.store.update_operator(actor, id, role, disabled).await,
            id,
        )
        .map(|row| row.view())
    }

    /// Removes another operator (admin): they are signed out at once and
    /// can never sign in again; the last enabled admin stays.
    pub async fn remove_operator(
        &self,
        actor: &str,
        actor_id: i64,
        id: i64,
    ) -> Result<String, OpError> {
        if id == actor_id {
            return Err(FieldError::coded("id", "operator.remove_self", &[]).into());
        }
        changed(self.store.remove_operator(actor, id).await, id)
    }

    /// Checks a sign-in. Throttles after [`THROTTLE_USER_LIMIT`] failures per
    /// account from one address or [`THROTTLE_ADDRESS_LIMIT`] per address in
    /// [`THROTTLE_WINDOW_MS`]; audits every attempt.
    #[tracing::instrument(skip(self, password), fields(username = %username, addr = %addr))]
    pub async fn sign_in(
        &self,
        username: &str,
        password: Secret,
        addr: &str,
    ) -> Result<OperatorRow, SignInError> {
        let username = username.trim();
        if username.is_empty() || password.is_empty() {
            return Err(SignInError::BadCredentials);
        }
        // Per account *and* address: failures from one address cannot lock
        // the account out for everyone else (an attacker who shares no
        // address with the admin cannot lock the admin out).
        let user_scope = format!("user:{}@{addr}", username.to_lowercase());
        let addr_scope = format!("addr:{addr}");
        let since = now_ms() - THROTTLE_WINDOW_MS;
        let store = &self.store;
        let user_failures = store
            .sign_in_failures_since(&user_scope, since)
            .await
            .map_err(OpError::from)?;
        let addr_failures = store
            .sign_in_failures_since(&addr_scope, since)
            .await
            .map_err(OpError::from)?;
        if user_failures >= THROTTLE_USER_LIMIT || addr_failures >= THROTTLE_ADDRESS_LIMIT {
            store
                .audit(
                    username,
                    "session.sign_in",
                    &format!("operator:{username}"),
                    "throttled",
                    addr,
                )
                .await
                .map_err(OpError::from)?;
            return Err(SignInError::Throttled {
                retry_after_s: (THROTTLE_WINDOW_MS / 1000) as u64,
            });
        }
        let row = store
            .operator_by_name(username)
            .await
            .map_err(OpError::from)?;
        let hash = row
            .as_ref()
            .map(|r| r.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_string());
        let ok = verify_password(password, hash).await;
        match row {
            Some(r) if ok && r.active() => {
                store
                    .clear_sign_in_failures(&user_scope)
                    .await
                    .map_err(OpError::from)?;
                store.touch_sign_in(r.id).await.map_err(OpError::from)?;
                store
                    .audit(
                        &r.username,
                        "session.sign_in",
                        &format!("operator:{}", r.username),
                        "ok",
                        addr,
                    )
                    .await
                    .map_err(OpError::from)?;
                Ok(r)
            }
            _ => {
                store
                    .record_sign_in_failure(&[user_scope, addr_scope])
                    .await
                    .map_err(OpError::from)?;
                store
                    .audit(
                        username,
                        "session.sign_in",
                        &format!("operator:{username}"),
                        "denied",
                        addr,
                    )
                    .await
                    .map_err(OpError::from)?;
                Err(SignInError::BadCredentials)
            }
        }
    }

    /// When no operator exists, makes a fresh one-time setup token (only its
    /// hash is stored) and returns it for the start-up log. Each start makes
    /// a new one and voids the previous.
    pub async fn issue_setup_token_if_needed(&self) -> Result<Option<String>, OpError> {
        if self.store.operator_count().await? > 0 {
            return Ok(None);
        }
        let token = random_hex(16);
        self.store.replace_setup_token(&sha256_hex(&token)).await?;
        Ok(Some(token))
    }

    /// Creates the first admin with the one-time setup token.
    pub async fn complete_setup(
        &self,
        token: &str,
        username: &str,
        password: Secret,
    ) -> Result<OperatorRow, OpError> {
        let username = model::username(username)?;
        model::new_password(password.expose())?;
        let token = token.trim();
        if token.is_empty() {
            return Err(FieldError::coded("token", "setup.token_required", &[]).into());
        }
        let hash = hash_password(password).await;
        self.store
            .create_first_admin(&sha256_hex(token), &username, &hash)
            .await?
            .ok_or_else(|| OpError::Invalid(FieldError::coded("token", "setup.token_invalid", &[])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{Cipher, MasterKey};
    use crate::store::test_store;

    async fn core() -> (Core, tempfile::TempDir) {
        let (store, d) = test_store().await;
        (
            Core {
                store,
                cipher: Cipher::new(&MasterKey::generate(), &[]),
            },
            d,
        )
    }

    #[tokio::test]
    async fn sign_in_accepts_the_right_password_only_and_stores_no_plaintext() {
        let (core, _d) = core().await;
        let pw = "correct horse battery";
        let op = core
            .create_operator("cli", "alice", Secret::new(pw), Role::Operator)
            .await
            .unwrap();
        assert!(op.password_hash.starts_with("$argon2id$"));
        assert!(!op.password_hash.contains(pw));
        assert!(core
            .sign_in("alice", Secret::new(pw), "1.2.3.4")
            .await
            .is_ok());
        assert!(matches!(
            core.sign_in("alice", Secret::new("wrong password!!"), "1.2.3.4")
                .await,
            Err(SignInError::BadCredentials)
        ));
        assert!(matches!(
            core.sign_in("nobody", Secret::new(pw), "1.2.3.4").await,
            Err(SignInError::BadCredentials)
        ));
    }

    #[tokio::test]
    async fn five_failures_throttle_the_account_from_that_address_even_with_the_right_password() {
        let (core, _d) = core().await;
        core.create_operator("cli", "bob", Secret::new("right password 1"), Role::Viewer)
            .await
            .unwrap();
        for _ in 0..THROTTLE_USER_LIMIT {
            let _ = core.sign_in("bob", Secret::new("wrong"), "10.0.0.1").await;
        }
        assert!(matches!(
            core.sign_in("bob", Secret::new("right password 1"), "10.0.0.1")
                .await,
            Err(SignInError::Throttled { .. })
        ));
        // Another address is not locked out by the guesses of this one.
        assert!(core
            .sign_in("bob", Secret::new("right password 1"), "10.0.0.2")
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn weak_input_is_refused_with_the_field_named() {
        let (core, _d) = core().await;
        let e = core
            .create_operator("cli", "carol", Secret::new("short"), Role::Viewer)
            .await
            .unwrap_err();
        assert!(matches!(e, OpError::Invalid(ref f) if f.field == "password"));
        core.create_operator("cli", "carol", Secret::new("long enough pw"), Role::Viewer)
            .await
            .unwrap();
        let e = core
            .create_operator("cli", "Carol", Secret::new("long enough pw"), Role::Viewer)
            .await
            .unwrap_err();
        assert!(matches!(e, OpError::Conflict(ref f) if f.field == "username"));
    }

    #[tokio::test]
    async fn setup_token_creates_exactly_one_first_admin() {
        let (core, _d) = core().await;
        let token = core.issue_setup_token_if_needed().await.unwrap().unwrap();
        let e = core
            .complete_setup("bad", "root", Secret::new("a strong password"))
            .await
            .unwrap_err();
        assert!(matches!(e, OpError::Invalid(ref f) if f.field == "token"));
        let admin = core
            .complete_setup(&token, "root", Secret::new("a strong password"))
            .await
            .unwrap();
        assert_eq!(admin.role, Role::Admin);
        assert!(core.issue_setup_token_if_needed().await.unwrap().is_none());
        assert!(core
            .complete_setup(&token, "root2", Secret::new("a strong password"))
            .await
            .is_err());
    }
}
