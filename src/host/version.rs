//! Host version strings (`0.1.179`, `v0.2.4`, fork numbering like `1.8.170`).

use std::cmp::Ordering;
use std::fmt;

/// A parsed `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostVersion(pub u32, pub u32, pub u32);

impl HostVersion {
    /// Parses `v0.1.179`, `0.1.179`, `0.1.179-beta` (suffix ignored).
    pub fn parse(s: &str) -> Option<HostVersion> {
        let s = s.trim().trim_start_matches(['v', 'V']);
        let core = s.split(['-', '+', ' ']).next()?;
        let mut it = core.split('.');
        let a = it.next()?.parse().ok()?;
        let b = it.next().unwrap_or("0").parse().ok()?;
        let c = it.next().unwrap_or("0").parse().ok()?;
        Some(HostVersion(a, b, c))
    }

    /// Upstream Sub2API numbers its releases 0.x; forks use their own
    /// (1.8.x, …), where a version rule says nothing.
    pub fn is_upstream_numbering(self) -> bool {
        self.0 == 0
    }

    /// Whether this version is at least `other`.
    pub fn at_least(self, other: HostVersion) -> bool {
        self.cmp(&other) != Ordering::Less
    }
}

impl fmt::Display for HostVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::HostVersion;

    #[test]
    fn parses_and_orders() {
        let v = HostVersion::parse("v0.1.179").unwrap();
        assert_eq!(v, HostVersion(0, 1, 179));
        assert!(v.at_least(HostVersion(0, 1, 178)));
        assert!(!v.at_least(HostVersion(0, 2, 4)));
        assert_eq!(HostVersion::parse("0.2.4-rc1"), Some(HostVersion(0, 2, 4)));
        assert!(!HostVersion::parse("1.8.170")
            .unwrap()
            .is_upstream_numbering());
        assert_eq!(HostVersion::parse("dev"), None);
    }
}
