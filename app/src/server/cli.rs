//! The command line: `serve` (default), `migrate`, `user create`, `host
//! probe`, `batch plan|apply|status|rollback`, `reconcile`, `token create`,
//! `pack validate`, `key rotate`, `demo`, and `fake-host` (a fake Sub2API
//! host for end-to-end tests).
//!
//! Every host, batch, reconcile and token command works on the local
//! database (as this machine's administrator, recorded as `--actor`) or,
//! with `--server URL`, through that server's API with the token in
//! `RELAY_TOKEN` (as the token's operator, within its scope). Output is
//! for people unless `--json` asks for one JSON object per line.

use clap::{Parser, Subcommand};

/// The commands that change something, with the core operation each asks
/// for (the authorization matrix tests run every one against a server).
pub const MUTATING: &[(&str, provisioning_core::ops::Operation)] = {
    use provisioning_core::ops::Operation as O;
    &[
        ("host probe", O::HostProbe),
        ("batch plan", O::BatchPlan),
        ("batch apply", O::BatchApply),
        ("batch rollback", O::BatchRollback),
        ("reconcile", O::HostDriftCheck),
        ("token create", O::TokenManage),
    ]
};

/// What the exit code says, for scripts.
pub const EXIT_CODES: &str = "Exit codes: 0 done as asked (probe not failing, plan not blocked, batch succeeded and ready, rolled back, no open drift); 1 refused or invalid (the message says why; a pack's problems); 2 a file or the server could not be read; 3 finished, but not as asked (probe failing, plan blocked, batch failed or not ready, drift found).";

#[derive(Debug, Parser)]
#[command(name = "dashboard", version, about = "Sub2API CN Relay Manager", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard (the default).
    Serve,
    /// Create or upgrade the database, then exit.
    Migrate,
    /// Manage operators.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Master-key operations.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Probe a host now.
    Host {
        #[command(subcommand)]
        command: HostCommand,
    },
    /// Plan, apply, watch or roll back a batch from the command line (cron,
    /// CI): progress while it runs, then the outcome.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
    },
    /// Check a host for drift now: every object the product made compared
    /// with the host (listings only, nothing changed). Exits 3 when a
    /// finding is open.
    Reconcile {
        /// The host's name.
        host: String,
        #[command(flatten)]
        on: On,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Check a provider pack file without storing it (CI for pack changes).
    /// Prints every problem with its line; exits 0 when the pack is valid,
    /// 1 when it is not, 2 when the file cannot be read.
    Pack {
        #[command(subcommand)]
        command: PackCommand,
    },
    /// Serve the dashboard with a fake Sub2API host and a fake DeepSeek-like
    /// upstream on loopback, already registered, to click through.
    Demo,
    /// Run a fake Sub2API host and a fake DeepSeek-like upstream (for
    /// end-to-end tests). Prints their URLs, the admin key and the upstream
    /// keys as JSON on one line.
    #[command(hide = true)]
    FakeHost {
        /// 0.1.106, 0.1.177, 0.1.179 or 0.2.4.
        #[arg(long, default_value = "0.1.179")]
        profile: String,
        /// Start with the compliance text not yet accepted (HTTP 423).
        #[arg(long)]
        compliance_required: bool,
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Lifetime of the fake host's `/v1/models` cache (the real host: 15 s).
        #[arg(long, default_value_t = 15)]
        models_cache_ttl_secs: u64,
    },
}

/// Where a command acts, and how it answers.
#[derive(Debug, Clone, clap::Args)]
pub struct On {
    /// Ask this running server's API instead of opening the database, with
    /// the API token in RELAY_TOKEN.
    #[arg(long)]
    pub server: Option<String>,
    /// One JSON object per line (a stable contract) instead of lines for
    /// people.
    #[arg(long)]
    pub json: bool,
    /// The name the audit log records for a local run (with `--server` it
    /// is the token's operator).
    #[arg(long, default_value = "cli")]
    pub actor: String,
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Probe the host (version, capabilities, admin sign-in, probe user)
    /// and record it. Exits 3 when the probe is failing.
    Probe {
        /// The host's name.
        name: String,
        #[command(flatten)]
        on: On,
    },
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Plan a batch: read the keys, look at the ledger and the host, store
    /// the plan. Nothing is written to the host. Exits 3 when the plan is
    /// blocked (the lines say by what).
    Plan {
        /// The host's name.
        #[arg(long)]
        host: String,
        /// A pack's id (its newest version) or a pack version's number.
        #[arg(long)]
        pack: String,
        /// A provider key of the pack.
        #[arg(long)]
        provider: String,
        /// `self_service` or `subscription` (the pack's default otherwise).
        #[arg(long)]
        mode: Option<String>,
        /// A file with the keys: one per line, CSV or JSON; `-` reads
        /// standard input.
        #[arg(long)]
        keys: std::path::PathBuf,
        #[command(flatten)]
        on: On,
    },
    /// Apply (or resume) a batch through its journal and watch it to the
    /// end. Exits 0 when it succeeded and is ready, 3 otherwise.
    Apply {
        /// The batch number.
        id: i64,
        #[command(flatten)]
        on: On,
    },
    /// A batch's status, access status and step counts; with `--watch`, a
    /// line per change until it stops running. Exits 0 when it is
    /// `succeeded` and ready, 3 otherwise.
    Status {
        id: i64,
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        on: On,
    },
    /// Roll a batch back (or resume its rollback) and watch it to the end.
    /// Exits 0 when it is rolled back, 3 otherwise.
    Rollback {
        id: i64,
        /// Also remove objects changed on the host since apply.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        on: On,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an API token for an operator; it is printed once.
    Create {
        /// The operator it acts for.
        #[arg(long)]
        operator: String,
        /// `read`, `write` or `admin`.
        #[arg(long)]
        scope: String,
        /// Days it lives (1 to 366).
        #[arg(long, default_value_t = 90)]
        days: i64,
        /// What it is for (shown in the list).
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        on: On,
    },
}

#[derive(Debug, Subcommand)]
pub enum PackCommand {
    /// Validate a YAML or TOML pack file.
    Validate {
        file: std::path::PathBuf,
        /// One JSON object on stdout instead of lines for people:
        /// `{"valid", "file", "id", "hash", "providers", "issues": [{path, line, message, expected}]}`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an operator. The password is read from standard input (one
    /// line) or from DASHBOARD_NEW_PASSWORD, never from the command line.
    Create {
        #[arg(long)]
        username: String,
        /// admin, operator or viewer.
        #[arg(long, default_value = "operator")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a new master key and re-seal every stored secret with it in
    /// one transaction; fingerprints (and so markers and account names on
    /// the hosts) do not change. The new key is written next to the old as
    /// `<file>.next` first and replaces it only after the database commit;
    /// an interrupted rotation is finished by running this again. Stop the
    /// server first.
    Rotate,
}
