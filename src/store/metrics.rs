//! What `/metrics` reports from the database: counts by status, read with
//! aggregate queries (their cost grows with the number of distinct labels,
//! not with rows sent to the server).

use super::{Store, StoreError};

/// The database's side of the metrics, read in one go.
#[derive(Debug, Clone, Default)]
pub struct MetricCounts {
    /// (batch status, count).
    pub batches: Vec<(String, i64)>,
    /// (step kind, state, count, seconds spent in finished ones, finished count).
    pub steps: Vec<(String, String, i64, f64, i64)>,
    /// (host name, probe status, count of probes).
    pub probes: Vec<(String, String, i64)>,
    /// (host name, newest probe's status, its latency in ms).
    pub latest_probe: Vec<(String, String, Option<i64>)>,
    /// (host name, provider, access status of the newest applied batch).
    pub readiness: Vec<(String, String, String)>,
    /// (host name, finding class, open findings of the newest drift check).
    pub drift: Vec<(String, String, i64)>,
}

impl Store {
    pub async fn metric_counts(&self) -> Result<MetricCounts, StoreError> {
        let batches =
            sqlx::query_as("SELECT status, COUNT(*) FROM batches GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        let steps = sqlx::query_as(
            "SELECT kind, state, COUNT(*),
                    COALESCE(SUM(CASE WHEN finished_at_ms IS NOT NULL AND started_at_ms IS NOT NULL
                                      THEN finished_at_ms - started_at_ms END), 0) / 1000.0,
                    COUNT(CASE WHEN finished_at_ms IS NOT NULL AND started_at_ms IS NOT NULL THEN 1 END)
             FROM steps GROUP BY kind, state ORDER BY kind, state",
        )
        .fetch_all(&self.pool)
        .await?;
        let probes = sqlx::query_as(
            "SELECT h.name, p.status, COUNT(*) FROM host_probes p JOIN hosts h ON h.id = p.host_id
             GROUP BY h.name, p.status ORDER BY h.name, p.status",
        )
        .fetch_all(&self.pool)
        .await?;
        let latest_probe = sqlx::query_as(
            "SELECT h.name, p.status, p.latency_ms FROM hosts h
             JOIN host_probes p ON p.id = (SELECT MAX(id) FROM host_probes WHERE host_id = h.id)
             ORDER BY h.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let readiness = sqlx::query_as(
            "SELECT h.name, b.provider_key, b.access_status FROM batches b JOIN hosts h ON h.id = b.host_id
             WHERE b.id IN (SELECT MAX(id) FROM batches
                            WHERE status NOT IN ('planned', 'discarded') GROUP BY host_id, provider_key)
             ORDER BY h.name, b.provider_key",
        )
        .fetch_all(&self.pool)
        .await?;
        // Open findings of each host's newest drift check.
        let reports: Vec<(String, String)> = sqlx::query_as(
            "SELECT h.name, d.report_json FROM hosts h
             JOIN drift_reports d ON d.id = (SELECT MAX(id) FROM drift_reports WHERE host_id = h.id)",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut drift = Vec::new();
        for (host, json) in reports {
            let Ok(r) = serde_json::from_str::<crate::model::DriftReport>(&json) else {
                continue;
            };
            let mut by: std::collections::BTreeMap<&str, i64> = Default::default();
            for f in r.findings.iter().filter(|f| f.ignored.is_none()) {
                *by.entry(f.class.as_str()).or_default() += 1;
            }
            drift.extend(
                by.into_iter()
                    .map(|(c, n)| (host.clone(), c.to_string(), n)),
            );
        }
        Ok(MetricCounts {
            batches,
            steps,
            probes,
            latest_probe,
            readiness,
            drift,
        })
    }
}
