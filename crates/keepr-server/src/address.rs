//! `HOST:PORT` addresses: their syntax, and resolving a listen address.
//!
//! Every address a member is given (listen addresses, `--advertise-peer`,
//! `--initial-members`, `--join`) may name a host instead of an IP, as Kubernetes pods are
//! reached by DNS name (`NAME-0.NAME-peer.NS.svc.cluster.local:7071`). Addresses are kept as
//! the strings they were given, in the membership and everywhere else, and resolved only when
//! a connection is made: the peer transport (`peer::client`) resolves at every connect, so a
//! pod restarted with a new IP under the same name is found there. Nothing here caches an IP.
//!
//! A name may not resolve yet: a pod's own DNS record appears only once the pod exists, and
//! its peers' records as they start. Dialing such a name fails like any unreachable peer and
//! is retried; binding a listener to one waits for it ([`bind_listener`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;

/// First pause before resolving a listen address again; doubled up to [`RESOLVE_BACKOFF_MAX`].
const RESOLVE_BACKOFF_MIN: Duration = Duration::from_millis(100);
const RESOLVE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why a string is not a `HOST:PORT` address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{0:?} is not HOST:PORT (a host name, an IPv4 address or [IPv6], then a port)")]
    Syntax(String),
}

/// A parsed `HOST:PORT`: the host as given (name, IPv4, or IPv6 without brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort<'a> {
    pub host: &'a str,
    pub port: u16,
}

impl HostPort<'_> {
    /// Whether the host is an IP address that means "every interface" (`0.0.0.0`, `::`):
    /// fine to listen on, meaningless for another member to dial.
    pub fn is_unspecified(&self) -> bool {
        self.host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
    }
}

/// Parses `host:port`, `1.2.3.4:port` or `[::1]:port`. A host name is checked only for
/// characters DNS names and IP addresses use, so a typo fails at start, not at every dial.
pub fn parse(s: &str) -> Result<HostPort<'_>, AddressError> {
    let bad = || AddressError::Syntax(s.to_string());
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = match host.strip_prefix('[') {
        Some(v6) => {
            let v6 = v6.strip_suffix(']').ok_or_else(bad)?;
            v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            v6
        }
        None => host,
    };
    let name_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    // A bare IPv6 address ("::1:7071") is ambiguous; brackets are required.
    if !name_ok || (host.contains(':') && !s.starts_with('[')) {
        return Err(bad());
    }
    Ok(HostPort { host, port })
}

/// Resolves `addr` (already checked by [`parse`]) and binds a listener to it. A name that
/// does not resolve yet is retried with backoff, logged each time, until it does: the
/// member cannot serve without the listener, and a pod's own DNS record may appear only
/// after the pod started. A bind failure (address in use, not this machine's) is returned.
pub async fn bind_listener(
    what: &'static str,
    addr: &str,
) -> Result<(TcpListener, SocketAddr), std::io::Error> {
    let addrs = resolve_until_known(what, addr).await;
    let listener = TcpListener::bind(&addrs[..]).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

async fn resolve_until_known(what: &'static str, addr: &str) -> Vec<SocketAddr> {
    let mut backoff = RESOLVE_BACKOFF_MIN;
    loop {
        match tokio::net::lookup_host(addr).await {
            Ok(found) => {
                let found: Vec<SocketAddr> = found.collect();
                if !found.is_empty() {
                    return found;
                }
                tracing::warn!(
                    listener = what,
                    addr,
                    retry_in = ?backoff,
                    "listen address resolves to nothing yet; retrying"
                );
            }
            Err(e) => tracing::warn!(
                listener = what,
                addr,
                error = %e,
                retry_in = ?backoff,
                "listen address does not resolve yet; retrying"
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RESOLVE_BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ip_addresses_parse() {
        let a = parse("ens-0.ens-peer.default.svc.cluster.local:7071").unwrap();
        assert_eq!(a.host, "ens-0.ens-peer.default.svc.cluster.local");
        assert_eq!(a.port, 7071);
        assert_eq!(parse("localhost:1").unwrap().host, "localhost");
        assert_eq!(parse("10.1.2.3:2181").unwrap().port, 2181);
        assert_eq!(parse("[::1]:7071").unwrap().host, "::1");
        // A fully qualified name with its trailing dot skips the resolver's search list.
        assert!(parse("ens-0.ens-peer.default.svc.cluster.local.:7071").is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "host",
            "host:",
            ":7071",
            "host:port",
            "host:70710",
            "::1:7071",
            "[::1:7071",
            "[nope]:7071",
            "http://host:7071",
            "a b:1",
            "host/x:1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn unspecified_means_every_interface() {
        assert!(parse("0.0.0.0:7071").unwrap().is_unspecified());
        assert!(parse("[::]:7071").unwrap().is_unspecified());
        assert!(!parse("127.0.0.1:7071").unwrap().is_unspecified());
        assert!(!parse("ens-0.ens-peer:7071").unwrap().is_unspecified());
    }

    #[tokio::test]
    async fn binds_to_a_name_and_to_an_ip_address() {
        let (_l, local) = bind_listener("test", "localhost:0").await.unwrap();
        assert!(local.ip().is_loopback());
        let (_l, local) = bind_listener("test", "127.0.0.1:0").await.unwrap();
        assert_eq!(local.ip(), IpAddr::from([127, 0, 0, 1]));
    }
}
