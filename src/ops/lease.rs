//! Who holds a run: a lease row in the database, not a lock in one process.
//! The owner id names the machine and the process, so a restarted server
//! can tell that the holder of a lease it finds is gone and take it over at
//! once, while another live process's run is left alone until its lease
//! expires.

use std::sync::OnceLock;
use std::time::Duration;

/// How long a lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// This process's owner id: `host:pid:nonce`.
pub fn owner_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        format!(
            "{}:{}:{}",
            machine(),
            std::process::id(),
            crate::secrets::random_hex(4)
        )
    })
}

fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or_else(|| "localhost".into())
}

/// Whether the process named by `owner` is known to be gone: it ran on this
/// machine and its pid no longer exists (or is this process under another
/// nonce, i.e. an earlier life of a reused pid). Owners on other machines
/// are never presumed dead; their leases expire instead.
pub fn is_dead(owner: &str) -> bool {
    let mut parts = owner.splitn(3, ':');
    let (Some(host), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return true;
    };
    if host != machine() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return true;
    };
    if pid == std::process::id() {
        return owner != owner_id();
    }
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_of_a_gone_local_process_is_dead_and_a_remote_one_is_not() {
        assert!(!is_dead(owner_id()), "we are alive");
        let gone = format!("{}:{}:abcd", machine(), u32::MAX - 7);
        assert!(is_dead(&gone));
        assert!(!is_dead("another-machine:1:abcd"));
        let earlier_life = format!("{}:{}:zzzz", machine(), std::process::id());
        assert!(is_dead(&earlier_life));
        assert!(is_dead("garbage"));
    }
}
