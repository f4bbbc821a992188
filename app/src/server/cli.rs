//! The command line: `serve` (default), `migrate`, `user create`, `batch
//! apply|status|rollback`, `pack validate`, `demo`,
//! and `fake-host` (a fake Sub2API host for end-to-end tests).

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "dashboard", version, about = "Sub2API CN Relay Manager")]
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
    /// Apply or roll back a planned batch from the command line (cron, CI).
    /// Prints the outcome as JSON on one line; exits 0 when the batch ended
    /// as asked (`succeeded`, `rolled_back`), 3 when it ended otherwise.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
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

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Apply (or resume) a batch through its journal.
    Apply {
        /// The batch number.
        id: i64,
        /// The name recorded in the audit log.
        #[arg(long, default_value = "cli")]
        actor: String,
        /// Ask this running server instead of opening the database, with
        /// the API token in RELAY_TOKEN; waits until the batch stops running.
        #[arg(long)]
        server: Option<String>,
    },
    /// A batch's status, access status and step counts as one JSON line;
    /// with `--watch`, one line per change until it stops running. Exits 0
    /// when it is `succeeded` and ready, 3 otherwise.
    Status {
        id: i64,
        #[arg(long)]
        watch: bool,
        /// Ask this running server (token in RELAY_TOKEN).
        #[arg(long)]
        server: Option<String>,
    },
    /// Roll a batch back (or resume its rollback).
    Rollback {
        id: i64,
        /// Also remove objects changed on the host since apply.
        #[arg(long)]
        force: bool,
        #[arg(long, default_value = "cli")]
        actor: String,
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
