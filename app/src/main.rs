//! `dashboard`: wiring only. Configuration → logging → store and cipher →
//! router → serve; or one of the CLI commands.

use anyhow::{anyhow, Context};
mod commands;

use app::server::cli::{
    BatchCommand, Cli, Command, HostCommand, KeyCommand, On, PackCommand, TokenCommand, UserCommand,
};
use app::server::config::Config;
use app::server::state::AppState;
use clap::Parser;
use commands::{PlanArgs, Target, TokenArgs, Want};
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
    // Scheduled jobs and alert deliveries: every process ticks, and the
    // lease rows make each due run happen once among them.
    let scheduler = config.scheduler_tick_secs.map(|secs| {
        let core = core.clone();
        let settings = config.watch_settings();
        tracing::info!(every_secs = secs, "scheduler on");
        tokio::task::spawn(async move {
            let owner = provisioning_core::ops::lease::owner_id();
            let clock = provisioning_core::ops::SystemClock;
            let mut every = tokio::time::interval(std::time::Duration::from_secs(secs));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match core.tick(owner, &clock, &settings).await {
                    Ok(r) => {
                        for (job, outcome) in &r.ran {
                            tracing::info!(job = %job, outcome = %outcome, "scheduled job ran");
                        }
                        if r.delivered + r.retrying + r.failed > 0 {
                            tracing::info!(
                                delivered = r.delivered,
                                retrying = r.retrying,
                                failed = r.failed,
                                "alert deliveries"
                            );
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "scheduler tick failed"),
                }
            }
        })
    });
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
    if let Some(s) = scheduler {
        s.abort();
    }
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
    let good: Vec<String> = (1..=8)
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
        Command::Host { command } => commands(&config, Command::Host { command }).await,
        Command::Batch { command } => commands(&config, Command::Batch { command }).await,
        Command::Reconcile { host, on } => commands(&config, Command::Reconcile { host, on }).await,
        Command::Token { command } => commands(&config, Command::Token { command }).await,
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
    let line = serde_json::json!({"rotated": n.total(), "hosts": n.host_secrets, "batch_keys": n.batch_keys, "access_keys": n.access_keys, "webhooks": n.webhooks, "keyring": n.keyring, "key_id": next.id()});
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

/// The host, batch, reconcile and token commands: on the local database,
/// or through a server's API with `--server`. A refusal says why on stderr
/// and exits with its code (see `cli::EXIT_CODES`).
async fn commands(config: &Config, command: Command) -> anyhow::Result<()> {
    let on: On = match &command {
        Command::Host {
            command: HostCommand::Probe { on, .. },
        }
        | Command::Reconcile { on, .. }
        | Command::Token {
            command: TokenCommand::Create { on, .. },
        } => on.clone(),
        Command::Batch { command } => match command {
            BatchCommand::Plan { on, .. }
            | BatchCommand::Apply { on, .. }
            | BatchCommand::Status { on, .. }
            | BatchCommand::Rollback { on, .. } => on.clone(),
        },
        _ => unreachable!("only the commands above come here"),
    };
    let core = match on.server {
        Some(_) => None,
        None => Some(open_core(config).await?),
    };
    let result = async {
        let t = Target::new(core.as_ref(), &on)?;
        let json = on.json;
        match command {
            Command::Host {
                command: HostCommand::Probe { name, .. },
            } => commands::host_probe(&t, &name, json).await,
            Command::Reconcile { host, .. } => commands::reconcile(&t, &host, json).await,
            Command::Token {
                command:
                    TokenCommand::Create {
                        operator,
                        scope,
                        days,
                        name,
                        ..
                    },
            } => {
                let a = TokenArgs {
                    operator: &operator,
                    scope: &scope,
                    days,
                    name: &name,
                };
                commands::token_create(&t, a, json).await
            }
            Command::Batch { command } => match command {
                BatchCommand::Plan {
                    host,
                    pack,
                    provider,
                    mode,
                    keys,
                    ..
                } => {
                    let a = PlanArgs {
                        host: &host,
                        pack: &pack,
                        provider: &provider,
                        mode: mode.as_deref(),
                        keys: &keys,
                    };
                    commands::batch_plan(&t, a, json).await
                }
                BatchCommand::Apply { id, .. } => {
                    commands::batch_apply(&t, id, config.apply_options(), json).await
                }
                BatchCommand::Status { id, watch, .. } => {
                    commands::watch(&t, id, watch, Want::Ready, json).await
                }
                BatchCommand::Rollback { id, force, .. } => {
                    commands::batch_rollback(&t, id, force, json).await
                }
            },
            _ => unreachable!("only the commands above come here"),
        }
    }
    .await;
    match result {
        Err(e) => match e.downcast_ref::<commands::Exit>() {
            Some(commands::Exit(code, why)) => {
                let _ = writeln!(std::io::stderr(), "{why}");
                std::process::exit(*code);
            }
            None => Err(e),
        },
        ok => ok,
    }
}
