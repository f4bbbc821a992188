//! `dashboard`: wiring only. Configuration → logging → store and cipher →
//! router → serve; or one of the CLI commands.

use anyhow::{anyhow, Context};
use app::server::cli::{BatchCommand, Cli, Command, KeyCommand, PackCommand, UserCommand};
use app::server::config::Config;
use app::server::state::AppState;
use clap::Parser;
use provisioning_core::model::Role;
use provisioning_core::ops::Core;
use provisioning_core::secrets::{
    load_or_create_master_key, Cipher, MasterKey, MasterKeySource, Secret,
};
use provisioning_core::store::Store;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::SqliteStore;

fn init_tracing(config: &Config) {
    use tracing_subscriber::{fmt, prelude::*, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,sqlx=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    if config.log_json {
        registry.with(fmt::layer().json()).init();
    } else {
        registry.with(fmt::layer()).init();
    }
}

async fn open_core(config: &Config) -> anyhow::Result<Core> {
    // Every outbound call of this process goes through one policy.
    provisioning_core::host::outbound::install(config.outbound.clone());
    let (key, source) =
        load_or_create_master_key(config.master_key_env.as_deref(), &config.master_key_file)
            .with_context(|| format!("master key ({})", config.master_key_file.display()))?;
    match &source {
        MasterKeySource::Env => {
            tracing::info!(key_id = key.id(), "master key from DASHBOARD_MASTER_KEY")
        }
        MasterKeySource::File(p) => {
            tracing::info!(key_id = key.id(), file = %p.display(), "master key loaded")
        }
        MasterKeySource::Generated(p) => tracing::warn!(
            key_id = key.id(),
            file = %p.display(),
            "generated a new master key (mode 0600); back it up: without it stored secrets cannot be read"
        ),
    }
    let store = Store::open(&config.database)
        .await
        .with_context(|| format!("database {}", config.database.display()))?;
    let previous = config
        .previous_master_keys
        .iter()
        .map(|k| MasterKey::parse(k.expose()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("DASHBOARD_MASTER_KEY_PREVIOUS: {e}"))?;
    // A rotation that stopped between writing the new key and replacing the
    // old file: both open, the new one seals.
    let next_file = next_key_file(&config.master_key_file);
    let cipher = match (&source, std::fs::read_to_string(&next_file)) {
        (MasterKeySource::File(_), Ok(text)) => {
            let next =
                MasterKey::parse(&text).map_err(|e| anyhow!("{}: {e}", next_file.display()))?;
            tracing::warn!(file = %next_file.display(), "an interrupted master-key rotation: run `dashboard key rotate` again to finish it");
            let mut all = vec![key];
            all.extend(previous);
            Cipher::new(&next, &all)
        }
        _ => Cipher::new(&key, &previous),
    };
    Core { store, cipher }
    .with_keyring()
    .await
    .map_err(|e| anyhow!("keyring: {e} (is DASHBOARD_MASTER_KEY_PREVIOUS missing the key this database was created with?)"))
}

async fn serve(mut config: Config, demo: bool) -> anyhow::Result<()> {
    let core = open_core(&config).await?;
    // Runs whose holder is gone (this machine's earlier process, or an
    // expired lease) end `failed`; another live process's runs are left alone.
    let interrupted = core
        .store
        .mark_interrupted_runs(provisioning_core::ops::lease::is_dead)
        .await?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "runs were interrupted by the last stop; re-run them to resume"
        );
    }
    core.install_builtin_packs()
        .await
        .map_err(|e| anyhow!("built-in packs: {e}"))?;
    let sessions = SqliteStore::new(core.store.pool().clone());
    sessions.migrate().await.context("session table")?;
    let sweeper = tokio::task::spawn(
        sessions
            .clone()
            .continuously_delete_expired(tokio::time::Duration::from_secs(300)),
    );
    let _demo = if demo {
        config.demo_keys = app::server::demo::KEYS
            .iter()
            .map(|(k, what)| (k.to_string(), what.to_string()))
            .collect();
        Some(app::server::demo::start(&core).await?)
    } else {
        None
    };
    if let Some(token) = core.issue_setup_token_if_needed().await? {
        tracing::warn!(
            "no operator exists yet: open http://{}/setup and enter the one-time setup token {token} \
             (or, from the clone, `bash scripts/run.sh user create --username NAME --role admin`)",
            config.addr
        );
    }
    let addr = config.addr;
    let state = AppState::new(core, config);
    let router = app::server::router::build_router(state, sessions);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("dashboard listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    sweeper.abort();
    Ok(())
}

fn read_password() -> anyhow::Result<Secret> {
    if let Ok(p) = std::env::var("DASHBOARD_NEW_PASSWORD") {
        if !p.is_empty() {
            return Ok(Secret::new(p));
        }
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        return Err(anyhow!(
            "no password: pipe it on standard input or set DASHBOARD_NEW_PASSWORD"
        ));
    }
    Ok(Secret::new(p))
}

async fn fake_host(
    profile: &str,
    compliance_required: bool,
    port: u16,
    ttl: u64,
) -> anyhow::Result<()> {
    use fakehost::{
        FakeHost, FakeHostConfig, FakeUpstream, Profile, ProviderStyle, UpstreamBehaviour,
    };
    let profile = Profile::parse(profile).ok_or_else(|| {
        anyhow!(
            "unknown profile {profile}: expected one of {}",
            Profile::ALL.map(Profile::version).join(", ")
        )
    })?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let host = FakeHost::serve(
        listener,
        FakeHostConfig {
            profile,
            compliance_accepted: !compliance_required,
            models_cache_ttl: std::time::Duration::from_secs(ttl),
            ..Default::default()
        },
    );
    let upstream = FakeUpstream::start(
        ProviderStyle::DeepSeek,
        &["deepseek-flash", "deepseek-v4-pro"],
    )
    .await;
    let good: Vec<String> = (1..=6)
        .map(|i| format!("sk-e2e-healthy-key-{i:04}"))
        .collect();
    for k in &good {
        upstream.add_key(k, UpstreamBehaviour::Ok);
    }
    for k in ["sk-e2e-exhausted-key-0001", "sk-e2e-recharge-key-0001"] {
        upstream.add_key(k, UpstreamBehaviour::QuotaExhausted);
    }
    let line = serde_json::json!({
        "url": host.url(),
        "admin_api_key": host.admin_api_key(),
        "admin_email": host.config().admin_email,
        "admin_password": host.config().admin_password,
        "upstream_url": upstream.url(),
        "keys": good,
        "exhausted_key": "sk-e2e-exhausted-key-0001",
        // Exhausted until `POST {upstream_url}/_fake/recharge {"key": …}`.
        "recharge_key": "sk-e2e-recharge-key-0001",
    });
    writeln!(std::io::stdout(), "{line}")?;
    std::io::stdout().flush()?;
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::from_env().map_err(|e| anyhow!("configuration: {e}"))?;
    init_tracing(&config);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, false).await,
        Command::Demo => serve(config, true).await,
        Command::Migrate => {
            open_core(&config).await?;
            tracing::info!(database = %config.database.display(), "database is up to date");
            Ok(())
        }
        Command::User {
            command: UserCommand::Create { username, role },
        } => {
            let role = Role::parse(&role).map_err(|e| anyhow!("{e}"))?;
            let password = read_password()?;
            let core = open_core(&config).await?;
            let op = core
                .create_operator("cli", &username, password, role)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            tracing::info!(username = %op.username, role = %op.role, "operator created");
            Ok(())
        }
        Command::Batch { command } => batch(&config, command).await,
        Command::Pack {
            command: PackCommand::Validate { file, json },
        } => validate_pack(&file, json),
        Command::Key {
            command: KeyCommand::Rotate,
        } => rotate_key(&config).await,
        Command::FakeHost {
            profile,
            compliance_required,
            port,
            models_cache_ttl_secs,
        } => fake_host(&profile, compliance_required, port, models_cache_ttl_secs).await,
    }
}

fn next_key_file(file: &std::path::Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".next");
    name.into()
}

/// `dashboard key rotate`: see [`KeyCommand::Rotate`].
async fn rotate_key(config: &Config) -> anyhow::Result<()> {
    use std::io::Write as _;
    if config.master_key_env.is_some() {
        return Err(anyhow!("the master key comes from DASHBOARD_MASTER_KEY: this command rotates a key file. Move the key to DASHBOARD_MASTER_KEY_FILE first, or keep the environment key"));
    }
    let core = open_core(config).await?;
    let next_file = next_key_file(&config.master_key_file);
    let next = match std::fs::read_to_string(&next_file) {
        Ok(text) => MasterKey::parse(&text).map_err(|e| anyhow!("{}: {e}", next_file.display()))?,
        Err(_) => {
            let key = MasterKey::generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(&next_file)
                .with_context(|| format!("writing {}", next_file.display()))?;
            f.write_all(key.to_hex().as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            key
        }
    };
    let to = Cipher::new(&next, &[])
        .with_fingerprint_key(&core.cipher.fingerprint_key())
        .map_err(|e| anyhow!("{e}"))?;
    let n = core.reseal_all(&to).await.map_err(|e| {
        anyhow!("re-sealing: {e} (nothing was changed; the old key stays in force)")
    })?;
    std::fs::rename(&next_file, &config.master_key_file)
        .with_context(|| format!("replacing {}", config.master_key_file.display()))?;
    if let Some(dir) = config.master_key_file.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    let line = serde_json::json!({"rotated": n.total(), "hosts": n.host_secrets, "batch_keys": n.batch_keys, "access_keys": n.access_keys, "keyring": n.keyring, "key_id": next.id()});
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}

/// `dashboard pack validate FILE`: see [`PackCommand::Validate`].
fn validate_pack(file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            writeln!(std::io::stderr(), "{}: cannot be read: {e}", file.display())?;
            std::process::exit(2);
        }
    };
    let name = file.display().to_string();
    match provisioning_core::pack::parse(&source, None) {
        Ok(p) => {
            if json {
                let line = serde_json::json!({"valid": true, "file": name, "id": p.pack.id, "hash": p.hash, "providers": p.pack.providers.keys().collect::<Vec<_>>(), "issues": []});
                writeln!(out, "{line}")?;
            } else {
                writeln!(
                    out,
                    "{name}: valid pack `{}` ({} provider(s): {}), hash {}",
                    p.pack.id,
                    p.pack.providers.len(),
                    p.pack
                        .providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    &p.hash[..12]
                )?;
            }
            Ok(())
        }
        Err(issues) => {
            if json {
                let line = serde_json::json!({"valid": false, "file": name, "issues": issues});
                writeln!(out, "{line}")?;
            } else {
                for i in &issues {
                    // `file:line: path: message (expected …)`, as compilers say it.
                    let at = i.line.map(|l| format!("{l}:")).unwrap_or_default();
                    let expected = if i.expected.is_empty() {
                        String::new()
                    } else {
                        format!(" (expected {})", i.expected)
                    };
                    writeln!(out, "{name}:{at} {}: {}{expected}", i.path, i.message)?;
                }
                writeln!(out, "{name}: {} problem(s); not a valid pack", issues.len())?;
            }
            out.flush()?;
            std::process::exit(1);
        }
    }
}

async fn batch(config: &Config, command: BatchCommand) -> anyhow::Result<()> {
    use provisioning_core::model::BatchStatus;
    match &command {
        BatchCommand::Status {
            id,
            watch,
            server: Some(url),
        } => return remote::status(url, *id, *watch).await,
        BatchCommand::Apply {
            id,
            server: Some(url),
            ..
        } => return remote::apply(url, *id).await,
        _ => {}
    }
    let core = open_core(config).await?;
    if let BatchCommand::Status { id, watch, .. } = command {
        return batch_status(&core, id, watch).await;
    }
    let (id, status, wanted) = match command {
        BatchCommand::Status { .. } => unreachable!("answered above"),
        BatchCommand::Apply { id, actor, .. } => {
            let s = core
                .apply_batch(&actor, id, config.apply_options())
                .await
                .map_err(|e| anyhow!("batch {id}: {e}"))?;
            (id, s, BatchStatus::Succeeded)
        }
        BatchCommand::Rollback { id, force, actor } => {
            let s = core
                .rollback_batch(&actor, id, force)
                .await
                .map_err(|e| anyhow!("batch {id}: {e}"))?;
            (id, s, BatchStatus::RolledBack)
        }
    };
    let access = core
        .batch_view(id)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .access_status;
    let line = serde_json::json!({"batch": id, "status": status.as_str(), "access_status": access.as_str()});
    writeln!(std::io::stdout(), "{line}")?;
    std::io::stdout().flush()?;
    if status != wanted {
        std::process::exit(3);
    }
    Ok(())
}

/// What `batch status` says of a batch, read locally or from a server.
struct StatusView {
    status: String,
    access_status: String,
    steps: provisioning_core::model::StateCounts,
    running: bool,
    waiting: Option<String>,
}

/// `dashboard batch status ID [--watch]`: see [`BatchCommand::Status`].
/// One JSON line per change; exits 3 unless it ended succeeded and ready.
async fn watch_status<F, Fut>(id: i64, watch: bool, mut read: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<StatusView>>,
{
    let mut last = String::new();
    loop {
        let v = read().await?;
        let s = &v.steps;
        let line = serde_json::json!({
            "batch": id,
            "status": v.status,
            "access_status": v.access_status,
            "steps": {"total": s.total(), "done": s.done, "failed": s.failed, "unknown": s.unknown, "skipped": s.skipped, "pending": s.pending + s.sent},
            "running": v.running,
            "waiting": v.waiting,
        })
        .to_string();
        if line != last {
            writeln!(std::io::stdout(), "{line}")?;
            std::io::stdout().flush()?;
            last = line;
        }
        if !watch || !v.running {
            if !(v.status == "succeeded" && v.access_status.ends_with("_ready")) {
                std::process::exit(3);
            }
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The batch's status from the local database.
async fn batch_status(
    core: &provisioning_core::ops::Core,
    id: i64,
    watch: bool,
) -> anyhow::Result<()> {
    use provisioning_core::model::{BatchStatus, Said};
    watch_status(id, watch, || async {
        let p = core
            .batch_progress(id, i64::MAX)
            .await
            .map_err(|e| anyhow!("batch {id}: {e}"))?;
        Ok(StatusView {
            status: p.status.as_str().to_string(),
            access_status: p.access_status.as_str().to_string(),
            running: matches!(p.status, BatchStatus::Running | BatchStatus::RollingBack),
            waiting: p.waiting.as_deref().map(Said::english_of),
            steps: p.steps,
        })
    })
    .await
}

/// The batch commands against a running server's JSON API (`--server`),
/// printing the same JSON lines and exit codes as on the local database.
mod remote {
    use super::{watch_status, StatusView};
    use anyhow::anyhow;
    use serde_json::Value;
    use std::io::Write as _;

    fn token() -> anyhow::Result<String> {
        std::env::var("RELAY_TOKEN").map_err(|_| {
            anyhow!("--server needs an API token in RELAY_TOKEN (made on the API tokens page)")
        })
    }

    /// A call; a refusal prints the problem's code and detail and exits 1.
    async fn call(method: reqwest::Method, url: &str, token: &str) -> anyhow::Result<Value> {
        let r = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| anyhow!("{url}: {e}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            writeln!(
                std::io::stderr(),
                "{url}: {status}: {} {}",
                body["code"].as_str().unwrap_or("?"),
                body["detail"].as_str().unwrap_or("")
            )?;
            std::process::exit(1);
        }
        Ok(body)
    }

    pub async fn status(server: &str, id: i64, watch: bool) -> anyhow::Result<()> {
        let token = token()?;
        let url = format!(
            "{}/api/v1/batches/{id}/progress",
            server.trim_end_matches('/')
        );
        watch_status(id, watch, || async {
            let p = call(reqwest::Method::GET, &url, &token).await?;
            let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            Ok(StatusView {
                status: text("status"),
                access_status: text("access_status"),
                steps: serde_json::from_value(p["steps"].clone())
                    .map_err(|e| anyhow!("{url}: step counts: {e}"))?,
                running: !p["finished"].as_bool().unwrap_or(true),
                waiting: p["waiting"].as_str().map(String::from),
            })
        })
        .await
    }

    pub async fn apply(server: &str, id: i64) -> anyhow::Result<()> {
        let token = token()?;
        let base = server.trim_end_matches('/');
        call(
            reqwest::Method::POST,
            &format!("{base}/api/v1/batches/{id}/apply"),
            &token,
        )
        .await?;
        status(server, id, true).await
    }
}
