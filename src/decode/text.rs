//! Decoders that need nothing but their input bytes (docs/config-format.md#decoders): `uint`, `hex`, `string`,
//! `inet_ip`, `dname`, `errno`, `syscall`, `static_map`, `regexp`, and the number parsing the
//! text-consuming decoders share. Each appends its output to `out` (which arrives empty).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use regex::bytes::Regex;

use super::tables;
use super::Arch;

/// `uint`: 1, 2, 4 or 8 bytes in host order → decimal.
pub(super) fn uint(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let v =
        host_uint(input).ok_or_else(|| format!("unsupported size {} (expected 1, 2, 4 or 8 bytes)", input.len()))?;
    push_decimal(out, v);
    Ok(())
}

/// An unsigned integer of exactly 1, 2, 4 or 8 bytes in host order.
pub(super) fn host_uint(b: &[u8]) -> Option<u64> {
    Some(match b.len() {
        1 => u64::from(b[0]),
        2 => u64::from(u16::from_ne_bytes([b[0], b[1]])),
        4 => u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        8 => u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        _ => return None,
    })
}

/// The first 4 bytes as a host-order u32 (`ifname`, `majorminor`); shorter input is an error.
pub(super) fn host_u32_prefix(b: &[u8]) -> Result<u32, String> {
    match b {
        [a, b, c, d, ..] => Ok(u32::from_ne_bytes([*a, *b, *c, *d])),
        _ => Err(format!("need at least 4 bytes, got {}", b.len())),
    }
}

/// The first 8 bytes as a host-order u64 (`ksym`); shorter input is an error.
pub(super) fn host_u64_prefix(b: &[u8]) -> Result<u64, String> {
    match b {
        [a, b, c, d, e, f, g, h, ..] => Ok(u64::from_ne_bytes([*a, *b, *c, *d, *e, *f, *g, *h])),
        _ => Err(format!("need at least 8 bytes, got {}", b.len())),
    }
}

pub(super) fn push_decimal(out: &mut Vec<u8>, v: u64) {
    let (buf, start) = decimal(v);
    out.extend_from_slice(&buf[start..]);
}

/// The decimal digits of `v`, in `buf[start..]`.
#[inline]
pub(super) fn decimal(mut v: u64) -> ([u8; 20], usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    (buf, i)
}

/// `hex`: two lowercase digits per byte.
pub(super) fn hex(input: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(input.len() * 2);
    for &b in input {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
}

/// `string`: the bytes before the first NUL.
pub(super) fn string(input: &[u8], out: &mut Vec<u8>) {
    let end = input.iter().position(|&b| b == 0).unwrap_or(input.len());
    out.extend_from_slice(&input[..end]);
}

/// `inet_ip`: Go's `net.IP.String()`.
pub(super) fn inet_ip(input: &[u8], out: &mut Vec<u8>) {
    match input.len() {
        0 => out.extend_from_slice(b"<nil>"),
        4 => push_ipv4(out, &input[..4]),
        16 if input[..10].iter().all(|&b| b == 0) && input[10] == 0xff && input[11] == 0xff => {
            push_ipv4(out, &input[12..16])
        }
        16 => push_ipv6(out, input),
        _ => {
            out.push(b'?');
            hex(input, out);
        }
    }
}

fn push_ipv4(out: &mut Vec<u8>, b: &[u8]) {
    for (i, &octet) in b.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_decimal(out, u64::from(octet));
    }
}

/// RFC 5952: lowercase, no leading zeros, the longest run (≥ 2) of zero groups as `::`,
/// the leftmost run on ties.
fn push_ipv6(out: &mut Vec<u8>, b: &[u8]) {
    let groups: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    let (mut best_start, mut best_len) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < groups.len() {
        if groups[i] == 0 {
            let start = i;
            while i < groups.len() && groups[i] == 0 {
                i += 1;
            }
            if i - start >= 2 && i - start > best_len {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let mut i = 0;
    while i < groups.len() {
        if i == best_start {
            out.extend_from_slice(b"::");
            i += best_len;
            continue;
        }
        if i > 0 && i != best_start + best_len {
            out.push(b':');
        }
        let _ = write!(out, "{:x}", groups[i]);
        i += 1;
    }
}

/// `dname`: DNS wire format → dotted text (docs/config-format.md#decoders).
pub(super) fn dname(input: &[u8], out: &mut Vec<u8>) {
    if input.is_empty() {
        out.push(b'.');
        return;
    }
    // `out` may already hold other values: only what is appended here is ours to undo.
    let start = out.len();
    let mut i = 0;
    while i < input.len() {
        let len = usize::from(input[i]);
        let Some(label) = input.get(i + 1..i + 1 + len) else {
            out.truncate(start);
            out.extend_from_slice(input);
            return;
        };
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(label);
        i += 1 + len;
    }
}

/// Go's `strconv.ParseUint(s, 10, 64)`: ASCII digits only, no sign, no overflow.
pub(super) fn parse_decimal_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign, then ASCII digits.
pub(super) fn parse_decimal_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let mag = parse_decimal_u64(digits)?;
    if neg {
        0i64.checked_sub_unsigned(mag)
    } else {
        i64::try_from(mag).ok()
    }
}

/// A decimal id for `syscall`/`cgroup`: signed i64, or (leniently) a u64 above `i64::MAX`,
/// which a preceding `uint` on an 8-byte field can print. Negative numbers wrap to u64.
pub(super) fn parse_decimal_id(s: &[u8]) -> Option<u64> {
    parse_decimal_i64(s).map(|v| v as u64).or_else(|| parse_decimal_u64(s))
}

pub(super) fn not_a_number(input: &[u8], what: &str) -> String {
    format!("cannot parse {:?} as {what}", String::from_utf8_lossy(input))
}

/// `errno`: decimal text → Appendix A name, else `unknown:<n>`.
pub(super) fn errno(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let n = parse_decimal_u64(input).ok_or_else(|| not_a_number(input, "an unsigned decimal integer"))?;
    match tables::lookup(tables::ERRNO, n) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None => {
            out.extend_from_slice(b"unknown:");
            push_decimal(out, n);
        }
    }
    Ok(())
}

/// `syscall`: decimal text → Appendix B name for `arch`, else `unknown_syscall:<n as u64>`.
pub(super) fn syscall(input: &[u8], arch: Arch, out: &mut Vec<u8>) -> Result<(), String> {
    let n = parse_decimal_id(input).ok_or_else(|| not_a_number(input, "a decimal integer"))?;
    let table = match arch {
        Arch::X86_64 => tables::SYSCALLS_X86_64,
        Arch::Aarch64 => tables::SYSCALLS_AARCH64,
    };
    match tables::lookup(table, n) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None => {
            out.extend_from_slice(b"unknown_syscall:");
            push_decimal(out, n);
        }
    }
    Ok(())
}

/// `static_map` (docs/config-format.md#decoders).
pub(super) fn static_map(input: &[u8], map: Option<&BTreeMap<String, String>>, allow_unknown: bool, out: &mut Vec<u8>) {
    let Some(map) = map else {
        out.extend_from_slice(b"empty mapping");
        return;
    };
    match std::str::from_utf8(input).ok().and_then(|k| map.get(k)) {
        Some(v) => out.extend_from_slice(v.as_bytes()),
        None => {
            if !allow_unknown {
                out.extend_from_slice(b"unknown:");
            }
            out.extend_from_slice(input);
        }
    }
}

/// One `regexps` entry, compiled when the decoder chain is built; a compile error surfaces only
/// when a key is decoded (as in ebpf_exporter).
#[derive(Debug, Clone)]
pub(super) enum Pattern {
    Ok { re: Regex, groups: usize },
    Invalid { pattern: String, error: String },
}

impl Pattern {
    pub(super) fn compile(pattern: &str) -> Pattern {
        match Regex::new(pattern) {
            Ok(re) => {
                let groups = re.captures_len().saturating_sub(1);
                Pattern::Ok { re, groups }
            }
            Err(e) => Pattern::Invalid { pattern: pattern.to_string(), error: e.to_string() },
        }
    }
}

/// `regexp` (docs/config-format.md#decoders): `Ok(false)` means skip the row.
pub(super) fn regexp(input: &[u8], patterns: &[Pattern], out: &mut Vec<u8>) -> Result<bool, String> {
    for p in patterns {
        match p {
            Pattern::Invalid { pattern, error } => {
                return Err(format!("invalid regular expression {pattern:?}: {error}"))
            }
            Pattern::Ok { re, groups: 0 } => {
                if let Some(m) = re.find(input) {
                    out.extend_from_slice(m.as_bytes());
                    return Ok(true);
                }
            }
            Pattern::Ok { re, groups: 1 } => {
                if let Some(caps) = re.captures(input) {
                    if let Some(g) = caps.get(1) {
                        out.extend_from_slice(g.as_bytes());
                    }
                    return Ok(true);
                }
            }
            // Two or more groups never produce output.
            Pattern::Ok { .. } => {}
        }
    }
    Ok(false)
}

/// Go's `%#v` of a byte slice, as the reference prints keys in size errors.
pub(super) fn go_bytes_literal(b: &[u8]) -> String {
    let mut s = String::from("[]byte{");
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "0x{x:x}");
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn uint_sizes() {
        assert_eq!(run(|o| uint(&[7], o).expect("1")), "7");
        assert_eq!(run(|o| uint(&0x0800u16.to_ne_bytes(), o).expect("2")), "2048");
        assert_eq!(run(|o| uint(&u32::MAX.to_ne_bytes(), o).expect("4")), "4294967295");
        assert_eq!(run(|o| uint(&u64::MAX.to_ne_bytes(), o).expect("8")), "18446744073709551615");
        assert_eq!(run(|o| uint(&[0; 8], o).expect("0")), "0");
        for n in [0usize, 3, 5, 16] {
            assert!(uint(&vec![1; n], &mut Vec::new()).is_err(), "size {n}");
        }
    }

    #[test]
    fn hex_and_string() {
        assert_eq!(run(|o| hex(&[0x00, 0xab, 0x1f], o)), "00ab1f");
        assert_eq!(run(|o| hex(&[], o)), "");
        assert_eq!(run(|o| string(b"sh\0junk", o)), "sh");
        assert_eq!(run(|o| string(b"abc", o)), "abc");
        assert_eq!(run(|o| string(b"\0abc", o)), "");
    }

    #[test]
    fn inet_ip_forms() {
        assert_eq!(run(|o| inet_ip(&[], o)), "<nil>");
        assert_eq!(run(|o| inet_ip(&[127, 0, 0, 1], o)), "127.0.0.1");
        let mut v6 = [0u8; 16];
        v6[10] = 0xff;
        v6[11] = 0xff;
        v6[12..].copy_from_slice(&[10, 1, 2, 3]);
        assert_eq!(run(|o| inet_ip(&v6, o)), "10.1.2.3");
        let mut lo = [0u8; 16];
        lo[15] = 1;
        assert_eq!(run(|o| inet_ip(&lo, o)), "::1");
        assert_eq!(run(|o| inet_ip(&[0; 16], o)), "::");
        let doc: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        assert_eq!(run(|o| inet_ip(&doc, o)), "2001:db8::1:0:0:1");
        let single: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
        assert_eq!(run(|o| inet_ip(&single, o)), "2001:db8:0:1:1:1:1:1");
        let tail: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(run(|o| inet_ip(&tail, o)), "fe80::");
        assert_eq!(run(|o| inet_ip(&[1, 2, 0xab], o)), "?0102ab");
    }

    #[test]
    fn dname_examples() {
        assert_eq!(run(|o| dname(b"\x03com", o)), "com");
        assert_eq!(run(|o| dname(b"\x07example\x03com", o)), "example.com");
        assert_eq!(run(|o| dname(b"\x07example\x03com\x00", o)), "example.com.");
        assert_eq!(run(|o| dname(b"\x05com", o)), "\x05com");
        assert_eq!(run(|o| dname(b"", o)), ".");
    }

    #[test]
    fn numbers_parse_like_go() {
        assert_eq!(parse_decimal_u64(b"42"), Some(42));
        assert_eq!(parse_decimal_u64(b"+42"), None);
        assert_eq!(parse_decimal_u64(b""), None);
        assert_eq!(parse_decimal_u64(b"18446744073709551616"), None);
        assert_eq!(parse_decimal_i64(b"-1"), Some(-1));
        assert_eq!(parse_decimal_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_decimal_i64(b"x1"), None);
        assert_eq!(parse_decimal_id(b"-1"), Some(u64::MAX));
        assert_eq!(parse_decimal_id(b"18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn errno_and_syscall() {
        assert_eq!(run(|o| errno(b"2", o).expect("ok")), "ENOENT");
        assert_eq!(run(|o| errno(b"95", o).expect("ok")), "ENOTSUP");
        assert_eq!(run(|o| errno(b"0", o).expect("ok")), "unknown:0");
        assert_eq!(run(|o| errno(b"134", o).expect("ok")), "unknown:134");
        assert!(errno(b"-1", &mut Vec::new()).is_err());
        assert!(errno(b"abc", &mut Vec::new()).is_err());
        assert_eq!(run(|o| syscall(b"39", Arch::X86_64, o).expect("ok")), "getpid");
        assert_eq!(run(|o| syscall(b"39", Arch::Aarch64, o).expect("ok")), "umount2");
        assert_eq!(run(|o| syscall(b"1000", Arch::X86_64, o).expect("ok")), "unknown_syscall:1000");
        assert_eq!(run(|o| syscall(b"-1", Arch::X86_64, o).expect("ok")), "unknown_syscall:18446744073709551615");
        assert!(syscall(b"", Arch::X86_64, &mut Vec::new()).is_err());
        assert!(syscall(b"3.0", Arch::X86_64, &mut Vec::new()).is_err());
    }

    #[test]
    fn static_map_cases() {
        let mut m = BTreeMap::new();
        m.insert("1".to_string(), "write".to_string());
        assert_eq!(run(|o| static_map(b"1", Some(&m), false, o)), "write");
        assert_eq!(run(|o| static_map(b"7", Some(&m), false, o)), "unknown:7");
        assert_eq!(run(|o| static_map(b"7", Some(&m), true, o)), "7");
        assert_eq!(run(|o| static_map(b"1", None, false, o)), "empty mapping");
        assert_eq!(run(|o| static_map(b"1", Some(&BTreeMap::new()), false, o)), "unknown:1");
    }

    #[test]
    fn regexp_semantics() {
        let pats: Vec<Pattern> =
            ["^(kswapd).*$", "^(systemd.*)$", "^.*$"].iter().map(|p| Pattern::compile(p)).collect();
        let run_re = |input: &[u8], pats: &[Pattern]| {
            let mut o = Vec::new();
            regexp(input, pats, &mut o).map(|keep| keep.then(|| String::from_utf8(o).expect("utf8")))
        };
        assert_eq!(run_re(b"kswapd0", &pats), Ok(Some("kswapd".into())));
        assert_eq!(run_re(b"systemd-journal", &pats), Ok(Some("systemd-journal".into())));
        assert_eq!(run_re(b"sh", &pats), Ok(Some("sh".into())));
        assert_eq!(run_re(b"sh", &pats[..1]), Ok(None));
        // Zero groups: the matching part only.
        assert_eq!(run_re(b"systemd", &[Pattern::compile("sys")]), Ok(Some("sys".into())));
        // Leftmost-first alternation.
        assert_eq!(run_re(b"abc", &[Pattern::compile("a|ab")]), Ok(Some("a".into())));
        // A non-participating single group yields the empty string.
        assert_eq!(run_re(b"b", &[Pattern::compile("(a)?b")]), Ok(Some(String::new())));
        // Named groups count; non-capturing groups do not.
        assert_eq!(run_re(b"xy", &[Pattern::compile("(?P<n>x)y")]), Ok(Some("x".into())));
        assert_eq!(run_re(b"xy", &[Pattern::compile("(?:x)y")]), Ok(Some("xy".into())));
        // Two groups never match.
        assert_eq!(run_re(b"xy", &[Pattern::compile("(x)(y)")]), Ok(None));
        assert!(run_re(b"xy", &[Pattern::compile("(")]).is_err());
    }
}
