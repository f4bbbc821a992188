//! `/metrics` in the Prometheus text format: request latency by route and
//! status (counted here), and what the database says of batches, steps,
//! probes, readiness and drift (read when scraped). Served only with the
//! scrape token (`DASHBOARD_METRICS_TOKEN`) as a bearer credential.

use super::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    /// Counts per bucket (not cumulative; summed when written).
    buckets: [u64; BUCKETS.len()],
}

/// Request counts and latencies by (route template, method, status class).
#[derive(Default)]
pub struct HttpMetrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl HttpMetrics {
    pub fn record(&self, route: &str, method: &str, status: u16, secs: f64) {
        let mut m = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = m
            .entry((route.to_string(), method.to_string(), status))
            .or_default();
        s.count += 1;
        s.sum += secs;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i] += 1;
        }
    }

    fn write(&self, out: &mut String) {
        let m = self.series.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP relay_http_request_duration_seconds Time to answer an HTTP request, by route template, method and status.\n");
        out.push_str("# TYPE relay_http_request_duration_seconds histogram\n");
        for ((route, method, status), s) in m.iter() {
            let labels = format!(
                "route=\"{}\",method=\"{}\",status=\"{status}\"",
                esc(route),
                esc(method)
            );
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i];
                let _ = writeln!(
                    out,
                    "relay_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "relay_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "relay_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "relay_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
    }
}

/// A label value as the text format wants it.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: times every request under its route template (never its
/// concrete path, so ids do not multiply the series).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let r = next.run(req).await;
    let route = route.unwrap_or_else(|| {
        if r.status() == StatusCode::NOT_FOUND {
            "(none)".into()
        } else {
            // Pages and assets served by the fallback handlers.
            "(page or asset)".into()
        }
    });
    state.http_metrics.record(
        &route,
        &method,
        r.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    r
}

fn gauge(out: &mut String, name: &str, help: &str, rows: impl IntoIterator<Item = (String, f64)>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, v) in rows {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(want) = state.config.metrics_token.as_ref() else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off: set DASHBOARD_METRICS_TOKEN and scrape with it as a bearer token\n",
        )
            .into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !provisioning_core::secrets::constant_time_eq(given.as_bytes(), want.expose().as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "send the scrape token as `Authorization: Bearer …`\n",
        )
            .into_response();
    }
    let counts = match state.core.store.metric_counts().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "metrics: the database could not be read");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the database could not be read\n",
            )
                .into_response();
        }
    };
    let mut out = String::new();
    state.http_metrics.write(&mut out);
    gauge(
        &mut out,
        "relay_batches",
        "Import batches by status.",
        counts
            .batches
            .iter()
            .map(|(s, n)| (format!("status=\"{}\"", esc(s)), *n as f64)),
    );
    gauge(
        &mut out,
        "relay_steps",
        "Journal steps by kind and state (done, failed, unknown, skipped, pending, sent).",
        counts.steps.iter().map(|(k, s, n, _, _)| {
            (
                format!("kind=\"{}\",state=\"{}\"", esc(k), esc(s)),
                *n as f64,
            )
        }),
    );
    let mut per_kind: BTreeMap<&str, (f64, i64)> = BTreeMap::new();
    for (k, _, _, secs, n) in &counts.steps {
        let e = per_kind.entry(k.as_str()).or_default();
        e.0 += secs;
        e.1 += n;
    }
    gauge(
        &mut out,
        "relay_step_host_seconds_sum",
        "Seconds finished steps spent on their host calls, by kind.",
        per_kind
            .iter()
            .map(|(k, (s, _))| (format!("kind=\"{}\"", esc(k)), *s)),
    );
    gauge(
        &mut out,
        "relay_step_host_seconds_count",
        "Finished steps timed, by kind.",
        per_kind
            .iter()
            .map(|(k, (_, n))| (format!("kind=\"{}\"", esc(k)), *n as f64)),
    );
    gauge(
        &mut out,
        "relay_probes",
        "Probes recorded, by host and result.",
        counts.probes.iter().map(|(h, s, n)| {
            (
                format!("host=\"{}\",result=\"{}\"", esc(h), esc(s)),
                *n as f64,
            )
        }),
    );
    gauge(
        &mut out,
        "relay_host_up",
        "1 when the host's newest probe was ok or a warning, 0 when failing.",
        counts.latest_probe.iter().map(|(h, s, _)| {
            (
                format!("host=\"{}\"", esc(h)),
                if s == "failing" { 0.0 } else { 1.0 },
            )
        }),
    );
    gauge(
        &mut out,
        "relay_host_probe_latency_seconds",
        "Latency of the host's newest probe.",
        counts.latest_probe.iter().filter_map(|(h, _, ms)| {
            ms.map(|ms| (format!("host=\"{}\"", esc(h)), ms as f64 / 1000.0))
        }),
    );
    gauge(
        &mut out,
        "relay_ready",
        "1 when the newest applied batch of a provider on a host proved its group ready through the host, else 0.",
        counts.readiness.iter().map(|(h, p, a)| {
            (
                format!("host=\"{}\",provider=\"{}\",access=\"{}\"", esc(h), esc(p), esc(a)),
                if a.ends_with("_ready") { 1.0 } else { 0.0 },
            )
        }),
    );
    gauge(
        &mut out,
        "relay_drift_findings",
        "Open findings of each host's newest drift check, by class.",
        counts.drift.iter().map(|(h, c, n)| {
            (
                format!("host=\"{}\",class=\"{}\"", esc(h), esc(c)),
                *n as f64,
            )
        }),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
