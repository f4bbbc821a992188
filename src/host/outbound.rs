//! The outbound guard: every URL the server calls (host base URLs, provider
//! base URLs in diagnosis) is checked against one policy.
//!
//! - Link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10,
//!   fd00:ec2::254, 100.100.100.200), multicast, broadcast and unspecified
//!   addresses are always refused.
//! - Loopback and private ranges are allowed by default (a Sub2API host
//!   often sits on the same LAN), and refused when the operator turns them
//!   off, except what the allow list names.
//! - The deny list refuses what it names; the allow list admits private
//!   addresses and names when private ones are off.
//! - Names are resolved once, by the guard, and the connection goes to the
//!   checked addresses (reqwest connects to what the resolver returns), so a
//!   name cannot re-resolve to another address between check and use.
//!   Literal addresses in a URL are checked before the request is made.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

/// An address range or a host name (exact, or `.example.com` for a suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Net(IpAddr, u8),
    Name(String),
}

impl Rule {
    /// `10.0.0.0/8`, `192.168.1.5`, `::1`, `gw.example.com`, `.example.com`.
    pub fn parse(s: &str) -> Result<Rule, String> {
        let s = s.trim();
        if let Some((a, p)) = s.split_once('/') {
            let ip: IpAddr = a
                .parse()
                .map_err(|_| format!("`{s}`: not an address range"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let p: u8 = p
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0–{max}"))?;
            return Ok(Rule::Net(ip, p));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Rule::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        if s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        {
            return Err(format!("`{s}`: not an address, range or host name"));
        }
        Ok(Rule::Name(s.to_ascii_lowercase()))
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Rule::Net(IpAddr::V4(n), p), IpAddr::V4(a)) => {
                let mask = if *p == 0 { 0 } else { u32::MAX << (32 - p) };
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (Rule::Net(IpAddr::V6(n), p), IpAddr::V6(a)) => {
                let mask = if *p == 0 { 0 } else { u128::MAX << (128 - p) };
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    fn matches_name(&self, name: &str) -> bool {
        match self {
            Rule::Name(n) if n.starts_with('.') => name.ends_with(n.as_str()) || name == &n[1..],
            Rule::Name(n) => name == n,
            Rule::Net(..) => false,
        }
    }
}

/// What the server may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundPolicy {
    pub allow_private: bool,
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        OutboundPolicy {
            allow_private: true,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

/// Addresses no configuration admits: they reach the machine's own cloud
/// metadata or no real server.
fn always_refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => {
            if a.is_link_local() {
                Some("a link-local or cloud metadata address")
            } else if a == Ipv4Addr::new(100, 100, 100, 200) {
                Some("a cloud metadata address")
            } else if a.is_multicast() || a.is_broadcast() {
                Some("a multicast or broadcast address")
            } else if a.is_unspecified() {
                Some("the unspecified address")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return always_refused(IpAddr::V4(v4));
            }
            let seg = a.segments();
            if (seg[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if a == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("a cloud metadata address")
            } else if a.is_multicast() {
                Some("a multicast address")
            } else if a.is_unspecified() {
                Some("the unspecified address")
            } else {
                None
            }
        }
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            a.is_loopback()
                || a.is_private()
                || (a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64) // 100.64/10 (CGNAT)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            a.is_loopback() || (a.segments()[0] & 0xfe00) == 0xfc00 // fc00::/7
        }
    }
}

impl OutboundPolicy {
    /// Whether the server may connect to `ip` (reached through `name`, when
    /// it came from a name).
    pub fn check_ip(&self, name: Option<&str>, ip: IpAddr) -> Result<(), String> {
        if let Some(why) = always_refused(ip) {
            return Err(format!("{ip} is {why}, which the server never connects to"));
        }
        let named = |r: &Rule| r.matches_ip(ip) || name.is_some_and(|n| r.matches_name(n));
        if self.deny.iter().any(named) {
            return Err(format!("{ip} is on the outbound deny list"));
        }
        if is_private(ip) && !self.allow_private && !self.allow.iter().any(named) {
            return Err(format!(
                "{ip} is a loopback or private address, and private addresses are turned off (DASHBOARD_OUTBOUND_PRIVATE=false; add it to DASHBOARD_OUTBOUND_ALLOW to admit it)"
            ));
        }
        Ok(())
    }

    /// Checks a URL before a request: a literal address now; a name's
    /// addresses when it is resolved (see [`GuardedResolver`]), and the
    /// deny list's names now.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let u = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        match u.host() {
            Some(url::Host::Ipv4(a)) => self.check_ip(None, IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => self.check_ip(None, IpAddr::V6(a)),
            Some(url::Host::Domain(d)) => {
                let d = d.to_ascii_lowercase();
                if self.deny.iter().any(|r| r.matches_name(&d)) {
                    return Err(format!("{d} is on the outbound deny list"));
                }
                Ok(())
            }
            None => Err("the URL has no host".into()),
        }
    }

    /// Resolves `name` with `lookup` and keeps the addresses the policy
    /// admits; refuses when none is left.
    pub fn filter(&self, name: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
        let mut refused = None;
        let ok: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.check_ip(Some(name), a.ip()) {
                Ok(()) => true,
                Err(e) => {
                    refused.get_or_insert(e);
                    false
                }
            })
            .collect();
        if ok.is_empty() {
            return Err(refused.unwrap_or_else(|| format!("{name} has no address")));
        }
        Ok(ok)
    }
}

static POLICY: OnceLock<Arc<OutboundPolicy>> = OnceLock::new();

/// Sets the process's policy (once, at start-up; later calls are ignored).
pub fn install(policy: OutboundPolicy) {
    let _ = POLICY.set(Arc::new(policy));
}

/// The process's policy (the default until one is installed).
pub fn policy() -> Arc<OutboundPolicy> {
    POLICY
        .get_or_init(|| Arc::new(OutboundPolicy::default()))
        .clone()
}

/// A reqwest resolver that resolves through the system and returns only
/// the addresses the policy admits: the connection is pinned to them.
pub struct GuardedResolver {
    pub policy: Arc<OutboundPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            let ok = policy.filter(&host, found).map_err(
                |e| -> Box<dyn std::error::Error + Send + Sync> {
                    format!("refused by the outbound guard: {e}").into()
                },
            )?;
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A client builder with the guard's resolver and no redirects.
pub fn guarded_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy: policy() }))
        .redirect(reqwest::redirect::Policy::none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn metadata_link_local_multicast_and_unspecified_are_always_refused() {
        let open = OutboundPolicy {
            allow_private: true,
            allow: vec![Rule::parse("0.0.0.0/0").unwrap()],
            deny: vec![],
        };
        for a in [
            "169.254.169.254",
            "169.254.1.1",
            "100.100.100.200",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "0.0.0.0",
            "::",
        ] {
            assert!(open.check_ip(None, ip(a)).is_err(), "{a} must be refused");
        }
        assert!(open
            .check_url("http://169.254.169.254/latest/meta-data")
            .is_err());
        assert!(open.check_url("http://[fd00:ec2::254]/").is_err());
    }

    #[test]
    fn private_ranges_follow_the_switch_and_the_allow_list() {
        let on = OutboundPolicy::default();
        let off = OutboundPolicy {
            allow_private: false,
            allow: vec![
                Rule::parse("10.1.0.0/16").unwrap(),
                Rule::parse(".lan.example").unwrap(),
            ],
            deny: vec![],
        };
        for a in [
            "127.0.0.1",
            "10.0.0.5",
            "192.168.1.9",
            "172.16.0.1",
            "100.64.0.1",
            "::1",
            "fd12::1",
        ] {
            assert!(on.check_ip(None, ip(a)).is_ok(), "{a} allowed by default");
            assert!(
                off.check_ip(None, ip(a)).is_err(),
                "{a} refused when private is off"
            );
        }
        assert!(
            off.check_ip(None, ip("10.1.2.3")).is_ok(),
            "the allow list admits its range"
        );
        assert!(
            off.check_ip(Some("gw.lan.example"), ip("192.168.1.9"))
                .is_ok(),
            "and its names"
        );
        assert!(
            off.check_ip(None, ip("8.8.8.8")).is_ok(),
            "public addresses pass"
        );
    }

    #[test]
    fn the_deny_list_refuses_addresses_and_names() {
        let p = OutboundPolicy {
            allow_private: true,
            allow: vec![],
            deny: vec![
                Rule::parse("203.0.113.0/24").unwrap(),
                Rule::parse("evil.example").unwrap(),
            ],
        };
        assert!(p.check_ip(None, ip("203.0.113.7")).is_err());
        assert!(p.check_url("https://evil.example/v1").is_err());
        assert!(p.check_url("https://good.example/v1").is_ok());
        assert!(Rule::parse("10.0.0.0/33").is_err());
        assert!(Rule::parse("not a host!").is_err());
    }

    #[test]
    fn a_name_that_resolves_to_a_metadata_address_is_refused_and_the_rest_kept() {
        let p = OutboundPolicy::default();
        let meta: SocketAddr = "169.254.169.254:0".parse().unwrap();
        let good: SocketAddr = "198.51.100.4:0".parse().unwrap();
        let e = p.filter("rebind.example", vec![meta]).unwrap_err();
        assert!(e.contains("169.254.169.254"), "{e}");
        assert_eq!(
            p.filter("mixed.example", vec![meta, good]).unwrap(),
            vec![good]
        );
    }

    #[tokio::test]
    async fn the_resolver_pins_connections_to_checked_addresses() {
        // `localhost` resolves to loopback: refused when private is off,
        // through the same resolver reqwest uses.
        use reqwest::dns::Resolve;
        let r = GuardedResolver {
            policy: Arc::new(OutboundPolicy {
                allow_private: false,
                ..Default::default()
            }),
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let e = match r.resolve(name).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("localhost must be refused"),
        };
        assert!(e.contains("outbound guard"), "{e}");
        let open = GuardedResolver {
            policy: Arc::new(OutboundPolicy::default()),
        };
        let addrs: Vec<_> = open
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
