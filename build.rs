//! Rebuild when a migration changes: `sqlx::migrate!` embeds `migrations/`
//! at compile time, and cargo does not track that directory by itself.

use std::io::Write;

fn main() {
    let mut out = std::io::stdout();
    writeln!(out, "cargo:rerun-if-changed=migrations").expect("stdout");
}
