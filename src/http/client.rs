//! The client's address: the TCP peer, or — when the peer is a trusted
//! proxy — the right-most `X-Forwarded-For` entry that is not itself a
//! trusted proxy (API.md, Authentication). Generic "real IP" helpers that
//! believe the header from anyone let every client choose its address.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::domain::keys::canonical;

/// Why the forwarded address could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("X-Forwarded-For: \"{0}\" is not an IP address")]
pub struct ForwardedError(pub String);

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
}

/// Applies the trusted-proxy rule.
pub fn client_addr(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Result<IpAddr, ForwardedError> {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return Ok(peer);
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|e| !e.trim().is_empty())
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let ip =
            canonical(parse_entry(entry).ok_or_else(|| ForwardedError(entry.trim().to_string()))?);
        client = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn trusted_proxy_rule() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases: &[(&str, &[&str], &str)] = &[
            // Untrusted peer: the header is ignored.
            ("203.0.113.9", &["1.2.3.4"], "203.0.113.9"),
            // Trusted peer: right-most untrusted entry.
            ("10.0.0.1", &["1.2.3.4"], "1.2.3.4"),
            ("10.0.0.1", &["6.6.6.6, 1.2.3.4, 10.0.0.7"], "1.2.3.4"),
            ("10.0.0.1", &["6.6.6.6", "1.2.3.4:5555"], "1.2.3.4"),
            ("10.0.0.1", &["[2001:db8::1]:80"], "2001:db8::1"),
            // No header: the proxy itself.
            ("10.0.0.1", &[], "10.0.0.1"),
            // All trusted: the left-most.
            ("10.0.0.1", &["10.1.1.1, 10.2.2.2"], "10.1.1.1"),
            ("::ffff:10.0.0.1", &["1.2.3.4"], "1.2.3.4"),
        ];
        for (peer, xff, want) in cases {
            assert_eq!(
                client_addr(ip(peer), &headers(xff), &trusted).unwrap(),
                ip(want),
                "{peer} {xff:?}"
            );
        }
        assert!(client_addr(ip("10.0.0.1"), &headers(&["garbage"]), &trusted).is_err());
    }
}
