//! Flow selection flags (`--port`, `--addr`, `--state`) turned into the BPF globals that
//! configs such as tcpflows read (`filter_port`, `filter_addr` + `filter_addr_bits`,
//! `filter_state`). The loader writes them before load and rejects a config that lacks them.
use std::net::IpAddr;

use super::GlobalValue;
use crate::error::usage_err;

/// TCP states by the names `ss` and the kernel use (include/net/tcp_states.h).
pub const TCP_STATES: &[(&str, u8)] = &[
    ("ESTABLISHED", 1),
    ("SYN_SENT", 2),
    ("SYN_RECV", 3),
    ("FIN_WAIT1", 4),
    ("FIN_WAIT2", 5),
    ("TIME_WAIT", 6),
    ("CLOSE", 7),
    ("CLOSE_WAIT", 8),
    ("LAST_ACK", 9),
    ("LISTEN", 10),
    ("CLOSING", 11),
    ("NEW_SYN_RECV", 12),
];

/// `10.0.0.0/8`, `::1`, `fe80::/10`, `127.0.0.1` → (IPv6 or IPv4-mapped address, prefix bits).
pub fn parse_prefix(s: &str) -> anyhow::Result<([u8; 16], u32)> {
    let bad = |why: &str| {
        usage_err(format!("--addr {s:?}: {why} (expected an address or CIDR prefix, e.g. 10.0.0.0/8 or fe80::/10)"))
    };
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().map_err(|_| bad("the prefix length is not a number"))?)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
    let (bytes, bits) = match ip {
        IpAddr::V4(v4) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return Err(bad("an IPv4 prefix is at most 32 bits"));
            }
            (v4.to_ipv6_mapped().octets(), 96 + bits)
        }
        IpAddr::V6(v6) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return Err(bad("an IPv6 prefix is at most 128 bits"));
            }
            (v6.octets(), bits)
        }
    };
    Ok((bytes, bits))
}

/// `ESTABLISHED`, `established`, `time-wait` → the kernel's state number.
pub fn parse_state(s: &str) -> anyhow::Result<u8> {
    let want = s.to_ascii_uppercase().replace('-', "_");
    TCP_STATES.iter().find(|(n, _)| *n == want).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = TCP_STATES.iter().map(|(n, _)| *n).collect();
        usage_err(format!("--state {s:?}: unknown TCP state (one of {})", names.join(", ")))
    })
}

/// The globals the given flags set, in the order port, addr, state.
pub fn globals(port: Option<u16>, addr: Option<&str>, state: Option<&str>) -> anyhow::Result<Vec<GlobalValue>> {
    let mut out = Vec::new();
    let value = |flag: &str, name: &str, bytes: Vec<u8>| GlobalValue { flag: flag.into(), name: name.into(), bytes };
    if let Some(p) = port {
        if p == 0 {
            return Err(usage_err("--port 0: ports start at 1"));
        }
        out.push(value("--port", "filter_port", p.to_ne_bytes().to_vec()));
    }
    if let Some(a) = addr {
        let (bytes, bits) = parse_prefix(a)?;
        out.push(value("--addr", "filter_addr", bytes.to_vec()));
        // `::/0` selects everything: written as 0 bits, which the program reads as "any".
        out.push(value("--addr", "filter_addr_bits", bits.to_ne_bytes().to_vec()));
    }
    if let Some(s) = state {
        out.push(value("--state", "filter_state", vec![parse_state(s)?]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let (a, b) = parse_prefix("10.1.0.0/16").expect("ok");
        assert_eq!(&a[10..], &[0xff, 0xff, 10, 1, 0, 0]);
        assert_eq!(b, 112);
        assert_eq!(parse_prefix("127.0.0.1").expect("ok").1, 128);
        assert_eq!(parse_prefix("fe80::/10").expect("ok").1, 10);
        assert!(parse_prefix("10.0.0.0/33").is_err());
        assert!(parse_prefix("nope/8").is_err());
        assert!(parse_prefix("10.0.0.0/x").is_err());
    }

    #[test]
    fn states() {
        assert_eq!(parse_state("established").expect("ok"), 1);
        assert_eq!(parse_state("time-wait").expect("ok"), 6);
        assert!(parse_state("open").is_err());
    }

    #[test]
    fn flag_globals() {
        let g = globals(Some(8080), Some("::/0"), Some("LISTEN")).expect("ok");
        let names: Vec<&str> = g.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["filter_port", "filter_addr", "filter_addr_bits", "filter_state"]);
        assert_eq!(g[0].bytes, 8080u16.to_ne_bytes());
        assert!(globals(Some(0), None, None).is_err());
        assert!(globals(None, None, None).expect("ok").is_empty());
    }
}
