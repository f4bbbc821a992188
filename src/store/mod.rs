//! SQLite storage: the only place with SQL.
//!
//! Every connection runs in WAL mode with `synchronous=FULL` (a committed
//! journal step must survive a power cut, not only a process crash), a busy
//! timeout, and foreign keys on. Write transactions start with
//! `BEGIN IMMEDIATE` so two writers queue on the lock instead of failing
//! later with `SQLITE_BUSY` on upgrade.

mod group;
mod hosts;
mod imports;
mod metrics;
mod operators;
mod reviews;
mod runs;
mod tokens;
mod watch;

pub use hosts::{HostRow, NewHost};
pub use imports::{
    BatchRow, BatchSummaryRow, LedgerEntry, NewBatch, PackVersionRow, StepRow, StepUpdate,
};
pub use metrics::MetricCounts;
pub use operators::OperatorRow;
pub use reviews::NewReview;
pub(crate) use reviews::{REVIEWABLE_SQL, REVIEW_STATE_SQL};
pub use runs::{AccessWrite, Claim, HostAccountRow, LedgerRow, LedgerWrite, RunRow};
pub use tokens::{Replay, TokenGrant};
pub use watch::{
    BalanceRow, CheckRow, DeliveryOutcome, DeliveryRow, IncidentChange, IncidentRow, JobRunRow,
    NewWebhook, ScheduleRow, WatchTarget, WebhookRow,
};

use crate::model::AuditEntry;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Migrations embedded from `migrations/`, run at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A unique constraint was hit.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
fn conflict(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what.into()),
        _ => StoreError::Db(e),
    }
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The database handle.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// Journal writes, committed in groups (see `group`).
    group: group::GroupCommit,
}

impl Store {
    /// Opens (creating if missing) the database file and runs migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        }
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        let group = group::GroupCommit::start(pool.clone());
        Ok(Store { pool, group })
    }

    /// Checks that the database answers (health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    /// The pool, for the session store that shares it.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction that holds the write lock from its first statement.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Appends one audit entry (in its own transaction).
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        audit_in(&mut tx, actor, action, target, outcome, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit entries matching `f`, newest first, older than `before` (an id
    /// cursor), at most `limit`; with how many match in all.
    pub async fn audit_entries(
        &self,
        f: &crate::model::AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<AuditEntry>, i64), StoreError> {
        const WHERE: &str = "(?1 = '' OR actor = ?1)
             AND (?2 = '' OR action = ?2 OR (substr(?2, -1) = '.' AND substr(action, 1, length(?2)) = ?2))
             AND (?3 = '' OR outcome = ?3) AND (?4 = '' OR target = ?4)";
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT id, at_ms, actor, action, target, outcome, detail FROM audit_log
             WHERE {WHERE} AND (?5 IS NULL OR id < ?5) ORDER BY id DESC LIMIT ?6"
        ))
        .bind(&f.actor)
        .bind(&f.action)
        .bind(&f.outcome)
        .bind(&f.target)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE {WHERE}"))
                .bind(&f.actor)
                .bind(&f.action)
                .bind(&f.outcome)
                .bind(&f.target)
                .fetch_one(&self.pool)
                .await?;
        let entries = rows.into_iter().map(audit_entry).collect();
        Ok((entries, total))
    }

    /// The distinct values of an audit column (`actor`, `action`, `outcome`),
    /// read from its index.
    pub async fn audit_values(&self, column: AuditColumn) -> Result<Vec<String>, StoreError> {
        let col = match column {
            AuditColumn::Actor => "actor",
            AuditColumn::Action => "action",
            AuditColumn::Outcome => "outcome",
        };
        Ok(sqlx::query_scalar(&format!(
            "SELECT DISTINCT {col} FROM audit_log ORDER BY {col}"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest audit entries first, `per_page` a page.
    pub async fn audit_page(
        &self,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<AuditEntry>, i64), StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at_ms, actor, action, target, outcome, detail FROM audit_log
             ORDER BY id DESC LIMIT ? OFFSET ?",
        )
        .bind(per_page as i64)
        .bind((page.saturating_sub(1) as i64) * per_page as i64)
        .fetch_all(&self.pool)
        .await?;
        let entries = rows.into_iter().map(audit_entry).collect();
        Ok((entries, total))
    }

    /// Records a failed sign-in for each scope (`user:<name>`, `addr:<ip>`).
    pub async fn record_sign_in_failure(&self, scopes: &[String]) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        // Keep the table small: failures older than a day no longer matter.
        sqlx::query("DELETE FROM sign_in_failures WHERE at_ms < ?")
            .bind(now - 86_400_000)
            .execute(&mut *tx)
            .await?;
        for s in scopes {
            sqlx::query("INSERT INTO sign_in_failures (scope, at_ms) VALUES (?, ?)")
                .bind(s)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Failed sign-ins for `scope` since `since_ms`.
    pub async fn sign_in_failures_since(
        &self,
        scope: &str,
        since_ms: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM sign_in_failures WHERE scope = ? AND at_ms >= ?",
        )
        .bind(scope)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Forgets the failures of `scope` (after a successful sign-in).
    pub async fn clear_sign_in_failures(&self, scope: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sign_in_failures WHERE scope = ?")
            .bind(scope)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// An audit row as selected (`AUDIT_COLS`).
pub(crate) type AuditRow = (i64, i64, String, String, String, String, String);

pub(crate) fn audit_entry(
    (id, at_ms, actor, action, target, outcome, detail): AuditRow,
) -> AuditEntry {
    AuditEntry {
        id,
        at_ms,
        actor,
        action,
        target,
        outcome,
        detail,
    }
}

/// An audit column one can filter by.
#[derive(Debug, Clone, Copy)]
pub enum AuditColumn {
    Actor,
    Action,
    Outcome,
}

/// Appends an audit entry inside a caller's transaction, so the action and
/// its record commit together.
pub async fn audit_in(
    tx: &mut Transaction<'static, Sqlite>,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at_ms, actor, action, target, outcome, detail)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(now_ms())
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(outcome)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
pub(crate) async fn test_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db")).await.unwrap();
    (store, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_plan_stored_in_the_batch_row_moves_to_its_own_table_and_is_read_back() {
        // A database as migration 14 left it, with a batch whose plan is in
        // `batches.plan_json`; then the current migrations.
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::from_str("sqlite:")
            .unwrap()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true)
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
        let mut old = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations"
        )))
        .await
        .unwrap();
        old.migrations = old
            .migrations
            .iter()
            .filter(|m| m.version < 15)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        old.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO batches (id, uid, host_id, pack_version_id, provider_key, access_mode, status,
                product_version, plan_json, created_by, created_at_ms, updated_at_ms, plan_head)
             VALUES (7, 'u7', 1, 1, 'ds', 'self_service', 'planned', 'x', '{\"steps\":[1,2]}', 'alice', 0, 0, '{}')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let store = Store::open(&dir.path().join("old.db")).await.unwrap();
        let b = store.batch(7).await.unwrap().unwrap();
        assert_eq!(b.plan_json, r#"{"steps":[1,2]}"#);
        assert_eq!(store.batch_head(7).await.unwrap().unwrap().plan_json, "{}");
        let cols: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('batches')")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(!cols.contains(&"plan_json".to_string()), "{cols:?}");
    }

    #[tokio::test]
    async fn opens_in_wal_mode_with_full_sync_and_foreign_keys() {
        let (store, _d) = test_store().await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[tokio::test]
    async fn audit_pages_newest_first() {
        let (store, _d) = test_store().await;
        for i in 0..5 {
            store
                .audit("alice", "host.create", &format!("host:{i}"), "ok", "")
                .await
                .unwrap();
        }
        let (page, total) = store.audit_page(1, 2).await.unwrap();
        assert_eq!(total, 5);
        assert_eq!(page[0].target, "host:4");
        let (page3, _) = store.audit_page(3, 2).await.unwrap();
        assert_eq!(page3.len(), 1);
        assert_eq!(page3[0].target, "host:0");
    }

    #[tokio::test]
    async fn sign_in_failures_count_per_scope_and_clear() {
        let (store, _d) = test_store().await;
        let scopes = vec!["user:bob".to_string(), "addr:127.0.0.1".to_string()];
        store.record_sign_in_failure(&scopes).await.unwrap();
        store.record_sign_in_failure(&scopes[..1]).await.unwrap();
        assert_eq!(
            store.sign_in_failures_since("user:bob", 0).await.unwrap(),
            2
        );
        assert_eq!(
            store
                .sign_in_failures_since("addr:127.0.0.1", 0)
                .await
                .unwrap(),
            1
        );
        store.clear_sign_in_failures("user:bob").await.unwrap();
        assert_eq!(
            store.sign_in_failures_since("user:bob", 0).await.unwrap(),
            0
        );
    }
}
