//! Configuration: one typed struct from `DASHBOARD_*` environment variables,
//! checked at start with a clear message.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Whether cookies get the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureCookies {
    /// Secure unless the server listens on loopback without an https public URL.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database: PathBuf,
    pub master_key_file: PathBuf,
    /// The key itself, when given in the environment (never logged).
    pub master_key_env: Option<String>,
    /// Earlier master keys, still accepted for opening (a rotation).
    pub previous_master_keys: Vec<provisioning_core::secrets::Secret>,
    /// Where the built front end (`pkg/`) and public assets are.
    pub site_root: String,
    pub public_url: Option<String>,
    pub secure_cookies: SecureCookies,
    pub trust_proxy: bool,
    pub session_idle_minutes: i64,
    pub log_json: bool,
    /// Longest the readiness gate polls the host's `/v1/models`.
    pub models_cache_wait_secs: u64,
    /// What the server may connect to (hosts, providers).
    pub outbound: provisioning_core::host::outbound::OutboundPolicy,
    /// Demo mode only: the fake upstream's keys, offered on the new-batch
    /// page (they open nothing real).
    pub demo_keys: Vec<(String, String)>,
    /// The bearer token `/metrics` wants (`None`: metrics are off).
    pub metrics_token: Option<provisioning_core::secrets::Secret>,
    /// Seconds between scheduler ticks in this process (`None`: this
    /// process runs no scheduled jobs and sends no alerts).
    pub scheduler_tick_secs: Option<u64>,
    /// Days of probe, check and job history kept before it is folded into
    /// daily counts.
    pub history_days: i64,
}

fn rules(name: &str) -> Result<Vec<provisioning_core::host::outbound::Rule>, String> {
    var(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| {
                    provisioning_core::host::outbound::Rule::parse(r)
                        .map_err(|e| format!("{name}: {e}"))
                })
                .collect()
        })
        .unwrap_or(Ok(Vec::new()))
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// What the scheduler of this server is told.
    pub fn watch_settings(&self) -> provisioning_core::ops::WatchSettings {
        provisioning_core::ops::WatchSettings {
            history_days: self.history_days,
            ..Default::default()
        }
    }

    /// How applies started by this server run (pages and CLI alike).
    pub fn apply_options(&self) -> provisioning_core::ops::ApplyOptions {
        provisioning_core::ops::ApplyOptions {
            models_cache_wait: std::time::Duration::from_secs(self.models_cache_wait_secs),
            ..Default::default()
        }
    }

    /// A loopback instance keeping everything in `dir` (its database, key
    /// file and site), with plain-HTTP cookies: tests and benchmarks.
    pub fn local(dir: &std::path::Path, addr: std::net::SocketAddr) -> Config {
        Config {
            addr,
            data_dir: dir.into(),
            database: dir.join("app.db"),
            master_key_file: dir.join("master.key"),
            master_key_env: None,
            previous_master_keys: Vec::new(),
            site_root: dir.display().to_string(),
            public_url: None,
            secure_cookies: SecureCookies::Never,
            trust_proxy: false,
            session_idle_minutes: 60,
            log_json: false,
            models_cache_wait_secs: 0,
            demo_keys: Vec::new(),
            outbound: Default::default(),
            metrics_token: None,
            scheduler_tick_secs: None,
            history_days: 30,
        }
    }

    /// Reads the environment. Errors name the variable and what it expects.
    pub fn from_env() -> Result<Config, String> {
        let addr = var("DASHBOARD_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
        let addr: SocketAddr = addr.parse().map_err(|_| {
            format!("DASHBOARD_ADDR=`{addr}` is not an address like 127.0.0.1:3000")
        })?;
        let data_dir = PathBuf::from(var("DASHBOARD_DATA_DIR").unwrap_or_else(|| "data".into()));
        let database = var("DASHBOARD_DATABASE")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("dashboard.db"));
        let master_key_file = var("DASHBOARD_MASTER_KEY_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("master.key"));
        let secure_cookies = match var("DASHBOARD_SECURE_COOKIES").as_deref().unwrap_or("auto") {
            "auto" => SecureCookies::Auto,
            "true" | "1" | "yes" => SecureCookies::Always,
            "false" | "0" | "no" => SecureCookies::Never,
            other => {
                return Err(format!(
                    "DASHBOARD_SECURE_COOKIES=`{other}`: expected auto, true or false"
                ))
            }
        };
        let session_idle_minutes = match var("DASHBOARD_SESSION_IDLE_MINUTES") {
            None => 480,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|m| (5..=43_200).contains(m))
                .ok_or_else(|| format!("DASHBOARD_SESSION_IDLE_MINUTES=`{v}`: expected minutes between 5 and 43200"))?,
        };
        let metrics_token = match var("DASHBOARD_METRICS_TOKEN") {
            None => None,
            Some(t) if t.trim().len() >= 16 && !t.chars().any(char::is_whitespace) => {
                Some(provisioning_core::secrets::Secret::new(t.trim()))
            }
            Some(_) => {
                return Err(
                    "DASHBOARD_METRICS_TOKEN: expected at least 16 characters without spaces"
                        .into(),
                )
            }
        };
        let public_url = var("DASHBOARD_PUBLIC_URL");
        if let Some(u) = &public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "DASHBOARD_PUBLIC_URL=`{u}`: expected an http(s) URL"
                ));
            }
        }
        let models_cache_wait_secs = match var("DASHBOARD_MODELS_CACHE_WAIT_SECS") {
            None => 16,
            Some(v) => v.parse::<u64>().ok().filter(|s| *s <= 600).ok_or_else(|| {
                format!(
                    "DASHBOARD_MODELS_CACHE_WAIT_SECS=`{v}`: expected seconds between 0 and 600"
                )
            })?,
        };
        let scheduler_tick_secs = match var("DASHBOARD_SCHEDULER").as_deref() {
            None | Some("on" | "true" | "yes") => Some(15),
            Some("off" | "false" | "0" | "no") => None,
            Some(v) => Some(v.parse::<u64>().ok().filter(|s| (1..=3600).contains(s)).ok_or_else(|| {
                format!("DASHBOARD_SCHEDULER=`{v}`: expected on, off, or seconds between ticks (1–3600)")
            })?),
        };
        let history_days = match var("DASHBOARD_HISTORY_DAYS") {
            None => 30,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    format!("DASHBOARD_HISTORY_DAYS=`{v}`: expected whole days between 1 and 3650")
                })?,
        };
        let allow_private = match var("DASHBOARD_OUTBOUND_PRIVATE").as_deref() {
            None | Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                return Err(format!(
                    "DASHBOARD_OUTBOUND_PRIVATE=`{other}`: expected true or false"
                ))
            }
        };
        let outbound = provisioning_core::host::outbound::OutboundPolicy {
            allow_private,
            allow: rules("DASHBOARD_OUTBOUND_ALLOW")?,
            deny: rules("DASHBOARD_OUTBOUND_DENY")?,
        };
        Ok(Config {
            outbound,
            models_cache_wait_secs,
            demo_keys: Vec::new(),
            metrics_token,
            scheduler_tick_secs,
            history_days,
            addr,
            data_dir,
            database,
            master_key_file,
            master_key_env: var("DASHBOARD_MASTER_KEY"),
            previous_master_keys: var("DASHBOARD_MASTER_KEY_PREVIOUS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(provisioning_core::secrets::Secret::new)
                        .collect()
                })
                .unwrap_or_default(),
            site_root: var("DASHBOARD_SITE_ROOT")
                .or_else(|| var("LEPTOS_SITE_ROOT"))
                .unwrap_or_else(|| "target/site".into()),
            public_url,
            secure_cookies,
            trust_proxy: matches!(
                var("DASHBOARD_TRUST_PROXY").as_deref(),
                Some("true" | "1" | "yes")
            ),
            session_idle_minutes,
            log_json: matches!(var("DASHBOARD_LOG_FORMAT").as_deref(), Some("json")),
        })
    }

    /// Whether session cookies are marked `Secure`.
    pub fn cookies_secure(&self) -> bool {
        match self.secure_cookies {
            SecureCookies::Always => true,
            SecureCookies::Never => false,
            SecureCookies::Auto => {
                self.public_url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("https://"))
                    || !self.addr.ip().is_loopback()
            }
        }
    }
}
