//! The `ip` authentication scheme (`IPAuthenticationProvider`).
//!
//! Every connection carries `ip:<remote address>`. An ACL names `addr` or `addr/bits`, IPv4
//! or IPv6; a connection matches when both addresses agree on the first `bits` bits. An `ip`
//! identity is not "authenticated" in ZooKeeper's sense, so the `auth` ACL scheme never
//! expands to it. Parsing follows ZooKeeper's hand-written parser (not `std::net`), because
//! it decides which ACLs are valid: for instance it accepts `010.0.0.1` and `+1.2.3.4`.
//! IPv6 follows ZooKeeper 3.9.4+ (ZOOKEEPER-4240); earlier releases reject IPv6 ACLs as
//! invalid.

/// The scheme name.
pub const SCHEME: &str = "ip";

/// An address as ZooKeeper parses it: 4 bytes or 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Addr {
    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Addr::V4(b) => b,
            Addr::V6(b) => b,
        }
    }
    fn bits(&self) -> i32 {
        match self {
            Addr::V4(_) => 32,
            Addr::V6(_) => 128,
        }
    }
}

/// `Integer.parseInt(s, radix)`: an optional sign, at least one digit, within `i32`.
fn java_parse_int(s: &str, radix: u32) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i32::from_str_radix(s, radix).ok()
}

fn parse_v4(addr: &str) -> Option<Addr> {
    let mut out = [0u8; 4];
    let mut parts = addr.split('.');
    for b in out.iter_mut() {
        let v = java_parse_int(parts.next()?, 10)?;
        *b = u8::try_from(v).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Addr::V4(out))
}

fn parse_v6_segments(segments: &str) -> Option<Vec<u16>> {
    if segments.is_empty() {
        return Some(Vec::new());
    }
    segments
        .split(':')
        .map(|s| {
            if s.is_empty() || s.chars().count() > 4 {
                return None;
            }
            // Java keeps the low 16 bits of whatever parseInt returned (so "-1" is ffff).
            java_parse_int(s, 16).map(|v| v as u16)
        })
        .collect()
}

fn parse_v6(addr: &str) -> Option<Addr> {
    let mut pieces = addr.split("::");
    let head = pieces.next()?;
    let tail = pieces.next();
    if pieces.next().is_some() {
        return None;
    }
    let mut out = [0u8; 16];
    let (first, second) = match tail {
        None => {
            let segs = parse_v6_segments(head)?;
            if segs.len() != 8 {
                return None;
            }
            (segs, Vec::new())
        }
        Some(tail) => {
            let a = parse_v6_segments(head)?;
            let b = parse_v6_segments(tail)?;
            if a.len() + b.len() >= 8 {
                return None;
            }
            (a, b)
        }
    };
    for (i, v) in first.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&v.to_be_bytes());
    }
    let start = 16 - 2 * second.len();
    for (i, v) in second.iter().enumerate() {
        out[start + 2 * i..start + 2 * i + 2].copy_from_slice(&v.to_be_bytes());
    }
    Some(Addr::V6(out))
}

/// `addr2Bytes`: a ':' makes it IPv6, else a '.' makes it IPv4, else it is no address.
fn parse_addr(addr: &str) -> Option<Addr> {
    if addr.contains(':') {
        parse_v6(addr)
    } else if addr.contains('.') {
        parse_v4(addr)
    } else {
        None
    }
}

/// Parses an ACL expression `addr[/bits]`.
fn parse_expr(expr: &str) -> Option<(Addr, i32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let addr = parse_addr(addr)?;
    let bits = match bits {
        None => addr.bits(),
        Some(b) => {
            let b = java_parse_int(b, 10)?;
            if b < 0 || b > addr.bits() {
                return None;
            }
            b
        }
    };
    Some((addr, bits))
}

fn mask(addr: &mut Addr, bits: i32) {
    let bits = bits.max(0) as usize;
    for (i, b) in addr.bytes_mut().iter_mut().enumerate() {
        let keep = bits.saturating_sub(i * 8).min(8);
        *b &= !(0xffu16 >> keep) as u8;
    }
}

/// `isValid`: whether `expr` is a well-formed `addr[/bits]`.
pub(crate) fn is_valid(expr: &str) -> bool {
    parse_expr(expr).is_some()
}

/// `matches`: whether the connection address `id` lies in the network `expr`.
pub(crate) fn matches(id: &str, expr: &str) -> bool {
    let Some((mut net, bits)) = parse_expr(expr) else {
        return false;
    };
    let Some(mut remote) = parse_addr(id) else {
        return false;
    };
    mask(&mut net, bits);
    mask(&mut remote, bits);
    net == remote
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_exact_and_cidr_matching() {
        assert!(matches("10.1.2.3", "10.1.2.3"));
        assert!(!matches("10.1.2.4", "10.1.2.3"));
        assert!(matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!matches("11.1.2.3", "10.0.0.0/8"));
        assert!(matches("192.168.1.77", "192.168.1.64/26"));
        assert!(!matches("192.168.1.128", "192.168.1.64/26"));
        assert!(matches("1.2.3.4", "0.0.0.0/0"));
    }

    #[test]
    fn ipv6_full_compressed_and_cidr_matching() {
        assert!(matches("0:0:0:0:0:0:0:1", "::1"));
        assert!(matches("::1", "0:0:0:0:0:0:0:1"));
        assert!(matches("fe80:0:0:0:1:2:3:4", "fe80::/10"));
        assert!(!matches("fe00:0:0:0:1:2:3:4", "fe80::/10"));
        assert!(matches("2001:db8::5", "2001:db8::/32"));
        assert!(!matches("2001:db9::5", "2001:db8::/32"));
    }

    #[test]
    fn ipv4_and_ipv6_never_match_each_other() {
        assert!(!matches("127.0.0.1", "::1"));
        assert!(!matches("::1", "127.0.0.1"));
        assert!(!matches("127.0.0.1", "0:0:0:0:0:0:0:0/0"));
    }

    #[test]
    fn acl_expressions_valid_and_invalid_as_zookeeper_parses_them() {
        for ok in [
            "1.2.3.4",
            "1.2.3.4/32",
            "1.2.3.4/0",
            "010.0.0.1",
            "+1.2.3.4",
            "::",
            "::1/128",
            "1::",
            "a:b:c:d:e:f:0:1",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "host",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.256",
            "1.2.3.4/33",
            "1.2.3.4/-1",
            "1.2.3.4/",
            "1.2.3.4/8/9",
            ":::",
            "1::2::3",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4::5:6:7:8",
            "12345::",
            "g::",
            "::1/129",
            "1..2.3",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn unparseable_remote_address_matches_nothing() {
        assert!(!matches("localhost", "0.0.0.0/0"));
        assert!(!matches("", "0.0.0.0/0"));
    }
}
