//! Hosts and their probe history.

use super::{audit_in, conflict, now_ms, Store, StoreError};
use crate::model::{AdminAuthKind, ProbeRecord, ProbeReport, ProbeStatus, ProbeSummary};

/// A host row: secrets still sealed.
#[derive(Debug, Clone)]
pub struct HostRow {
    pub id: i64,
    pub uid: String,
    pub name: String,
    pub base_url: String,
    pub auth_kind: AdminAuthKind,
    pub admin_email: Option<String>,
    pub admin_secret_sealed: String,
    pub admin_secret_mask: String,
    pub probe_email: Option<String>,
    pub probe_password_sealed: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Its batches need a second person's approval to apply or roll back.
    pub protected: bool,
}

/// A host ready to be written: secrets already sealed by the caller.
#[derive(Debug, Clone)]
pub struct NewHost {
    pub uid: String,
    pub name: String,
    pub base_url: String,
    pub auth_kind: AdminAuthKind,
    pub admin_email: Option<String>,
    pub admin_secret_sealed: String,
    pub admin_secret_mask: String,
    pub probe_email: Option<String>,
    pub probe_password_sealed: Option<String>,
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    bool,
);

const COLS: &str = "id, uid, name, base_url, auth_kind, admin_email, admin_secret_sealed,
    admin_secret_mask, probe_email, probe_password_sealed, created_at_ms, updated_at_ms, protected";

fn from_row(r: Row) -> Result<HostRow, StoreError> {
    Ok(HostRow {
        id: r.0,
        uid: r.1,
        name: r.2,
        base_url: r.3,
        auth_kind: AdminAuthKind::parse(&r.4)
            .ok_or_else(|| StoreError::Corrupt(format!("auth_kind {}", r.4)))?,
        admin_email: r.5,
        admin_secret_sealed: r.6,
        admin_secret_mask: r.7,
        probe_email: r.8,
        probe_password_sealed: r.9,
        created_at_ms: r.10,
        updated_at_ms: r.11,
        protected: r.12,
    })
}

type SummaryRow = (
    i64,
    i64,
    String,
    Option<String>,
    Option<i64>,
    String,
    String,
    String,
);
type LatestRow = (
    i64,
    i64,
    i64,
    String,
    Option<String>,
    Option<i64>,
    String,
    String,
    String,
);

fn summary(r: SummaryRow) -> ProbeSummary {
    ProbeSummary {
        id: r.0,
        at_ms: r.1,
        status: ProbeStatus::parse(&r.2),
        version: r.3,
        latency_ms: r.4.map(|v| v.max(0) as u64),
        headline: r.5,
        headline_code: r.6,
        headline_detail: r.7,
    }
}

impl Store {
    /// Inserts a host and its audit entry together.
    pub async fn insert_host(&self, actor: &str, h: &NewHost) -> Result<HostRow, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO hosts (uid, name, base_url, auth_kind, admin_email, admin_secret_sealed,
                admin_secret_mask, probe_email, probe_password_sealed, created_at_ms, updated_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&h.uid)
        .bind(&h.name)
        .bind(&h.base_url)
        .bind(h.auth_kind.as_str())
        .bind(&h.admin_email)
        .bind(&h.admin_secret_sealed)
        .bind(&h.admin_secret_mask)
        .bind(&h.probe_email)
        .bind(&h.probe_password_sealed)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &format!("a host named `{}`", h.name)))?;
        audit_in(
            &mut tx,
            actor,
            "host.create",
            &crate::model::host_target(id),
            "ok",
            &format!(
                "name={} base_url={} auth={}",
                h.name,
                h.base_url,
                h.auth_kind.as_str()
            ),
        )
        .await?;
        tx.commit().await?;
        self.host(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("host vanished after insert".into()))
    }

    /// Replaces a host's fields (the caller has merged kept secrets in).
    pub async fn update_host(
        &self,
        actor: &str,
        id: i64,
        h: &NewHost,
    ) -> Result<Option<HostRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE hosts SET name = ?, base_url = ?, auth_kind = ?, admin_email = ?,
                admin_secret_sealed = ?, admin_secret_mask = ?, probe_email = ?,
                probe_password_sealed = ?, updated_at_ms = ?
             WHERE id = ? AND uid = ?",
        )
        .bind(&h.name)
        .bind(&h.base_url)
        .bind(h.auth_kind.as_str())
        .bind(&h.admin_email)
        .bind(&h.admin_secret_sealed)
        .bind(&h.admin_secret_mask)
        .bind(&h.probe_email)
        .bind(&h.probe_password_sealed)
        .bind(now_ms())
        .bind(id)
        .bind(&h.uid)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict(e, &format!("a host named `{}`", h.name)))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        audit_in(
            &mut tx,
            actor,
            "host.update",
            &crate::model::host_target(id),
            "ok",
            &format!("base_url={} auth={}", h.base_url, h.auth_kind.as_str()),
        )
        .await?;
        tx.commit().await?;
        self.host(id).await
    }

    /// Deletes a host and its probe history; returns whether it existed.
    pub async fn delete_host(&self, actor: &str, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let batches: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM batches WHERE host_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if batches > 0 {
            return Err(StoreError::Conflict(format!(
                "{batches} import batches whose evidence refers to it; it stays"
            )));
        }
        // Ledger-free probe data goes with the host.
        sqlx::query("DELETE FROM access_keys WHERE host_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let name: Option<String> =
            sqlx::query_scalar("DELETE FROM hosts WHERE id = ? RETURNING name")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(name) = name else { return Ok(false) };
        audit_in(
            &mut tx,
            actor,
            "host.delete",
            &crate::model::host_target(id),
            "ok",
            &format!("name={name}"),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn host(&self, id: i64) -> Result<Option<HostRow>, StoreError> {
        let r: Option<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM hosts WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.map(from_row).transpose()
    }

    pub async fn hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM hosts ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Stores a probe report and audits it.
    pub async fn insert_probe(
        &self,
        actor: &str,
        host: &HostRow,
        report: &ProbeReport,
    ) -> Result<i64, StoreError> {
        let json = serde_json::to_string(report)
            .map_err(|e| StoreError::Corrupt(format!("probe report: {e}")))?;
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO host_probes (host_id, at_ms, actor, status, version, latency_ms, headline, report_json, headline_code, headline_detail)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(host.id)
        .bind(now_ms())
        .bind(actor)
        .bind(report.status.as_str())
        .bind(&report.version)
        .bind(report.latency_ms.map(|v| v as i64))
        .bind(report.headline())
        .bind(json)
        .bind(report.headline_finding().map(|f| f.code.as_str()).unwrap_or(""))
        .bind(report.headline_finding().map(|f| f.detail.as_str()).unwrap_or(""))
        .fetch_one(&mut *tx)
        .await?;
        audit_in(
            &mut tx,
            actor,
            "host.probe",
            &crate::model::host_target(host.id),
            report.status.as_str(),
            &report.headline(),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The newest probe of each host, keyed by host id.
    pub async fn latest_probes(&self) -> Result<Vec<(i64, ProbeSummary)>, StoreError> {
        let rows: Vec<LatestRow> = sqlx::query_as(
            "SELECT p.host_id, p.id, p.at_ms, p.status, p.version, p.latency_ms, p.headline, p.headline_code, p.headline_detail
             FROM host_probes p
             WHERE p.id = (SELECT MAX(id) FROM host_probes q WHERE q.host_id = p.host_id)",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.0, summary((r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8))))
            .collect())
    }

    /// A host's probes, newest first.
    pub async fn probe_history(
        &self,
        host_id: i64,
        limit: u32,
    ) -> Result<Vec<ProbeSummary>, StoreError> {
        let rows: Vec<SummaryRow> = sqlx::query_as(
            "SELECT id, at_ms, status, version, latency_ms, headline, headline_code, headline_detail FROM host_probes
             WHERE host_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(host_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(summary).collect())
    }

    /// One probe with its full report.
    pub async fn probe(
        &self,
        host_id: i64,
        probe_id: i64,
    ) -> Result<Option<ProbeRecord>, StoreError> {
        let r: Option<(i64, i64, i64, String, String)> = sqlx::query_as(
            "SELECT id, host_id, at_ms, actor, report_json FROM host_probes WHERE host_id = ? AND id = ?",
        )
        .bind(host_id)
        .bind(probe_id)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|(id, host_id, at_ms, actor, json)| {
            Ok(ProbeRecord {
                id,
                host_id,
                at_ms,
                actor,
                report: serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("probe {id}: {e}")))?,
            })
        })
        .transpose()
    }

    /// The newest full probe of a host.
    pub async fn latest_probe(&self, host_id: i64) -> Result<Option<ProbeRecord>, StoreError> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT MAX(id) FROM host_probes WHERE host_id = ?")
                .bind(host_id)
                .fetch_one(&self.pool)
                .await?;
        match id {
            Some(id) => self.probe(host_id, id).await,
            None => Ok(None),
        }
    }
}
