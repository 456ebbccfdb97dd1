//! Decoders of event record fields (docs/events.md): signed numbers, results (-errno), argument
//! lists, open and mount flags, signals, wait statuses, durations, TCP states. Each reads the
//! field's raw bytes (host order), so each comes first in its chain.
use super::tables;
use super::text::push_decimal;

/// A signed host-order integer of 1, 2, 4 or 8 bytes.
fn host_int(b: &[u8]) -> Result<i64, String> {
    Ok(match b.len() {
        1 => i64::from(b[0] as i8),
        2 => i64::from(i16::from_ne_bytes([b[0], b[1]])),
        4 => i64::from(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        8 => i64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        n => return Err(format!("needs a field of 1, 2, 4 or 8 bytes, got {n}")),
    })
}

fn host_u64(b: &[u8]) -> Result<u64, String> {
    super::text::host_uint(b).ok_or_else(|| format!("needs a field of 1, 2, 4 or 8 bytes, got {}", b.len()))
}

fn push_int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_decimal(out, v.unsigned_abs());
}

/// `int`: signed decimal.
pub(super) fn int(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    push_int(out, host_int(input)?);
    Ok(())
}

/// `result`: a negative value is -errno (`ENOENT`), anything else the number (a descriptor).
pub(super) fn result(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let v = host_int(input)?;
    if v < 0 {
        match tables::lookup(tables::ERRNO, v.unsigned_abs()) {
            Some(name) => out.extend_from_slice(name.as_bytes()),
            None => push_int(out, v),
        }
    } else {
        push_int(out, v);
    }
    Ok(())
}

/// `nul_list`: NUL-separated strings (an argv) joined by spaces; an argument that is empty or
/// holds a space or quote is single-quoted as a shell would need it.
pub(super) fn nul_list(input: &[u8], out: &mut Vec<u8>) {
    let body = match input.last() {
        Some(0) => &input[..input.len() - 1],
        _ => input,
    };
    if body.is_empty() {
        return;
    }
    for (i, arg) in body.split(|&c| c == 0).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let plain = !arg.is_empty()
            && arg.iter().all(|&c| c.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&c) || c >= 0x80);
        if plain {
            out.extend_from_slice(arg);
        } else {
            out.push(b'\'');
            for &c in arg {
                if c == b'\'' {
                    out.extend_from_slice(b"'\\''");
                } else {
                    out.push(c);
                }
            }
            out.push(b'\'');
        }
    }
}

/// Flag names by bit, for `open_flags` (x86_64 and arm64 share the generic values used here,
/// except O_DIRECTORY/O_NOFOLLOW/O_DIRECT/O_LARGEFILE, which differ on arm64).
#[cfg(not(target_arch = "aarch64"))]
const OPEN_FLAGS: &[(u64, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "FASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4000000, "O_SYNC"),
    (0o10000000, "O_PATH"),
    (0o20000000, "O_TMPFILE"),
];
#[cfg(target_arch = "aarch64")]
const OPEN_FLAGS: &[(u64, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "FASYNC"),
    (0o40000, "O_DIRECTORY"),
    (0o100000, "O_NOFOLLOW"),
    (0o200000, "O_DIRECT"),
    (0o400000, "O_LARGEFILE"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4000000, "O_SYNC"),
    (0o10000000, "O_PATH"),
    (0o20000000, "O_TMPFILE"),
];

/// Names of the set bits of `v` joined by `|`, then what is left in hex.
fn push_bits(out: &mut Vec<u8>, mut v: u64, names: &[(u64, &str)], first: bool) {
    let mut first = first;
    for &(bit, name) in names {
        // O_SYNC includes O_DSYNC's bit; a name is printed only when all its bits are set.
        if bit != 0 && v & bit == bit {
            if !first {
                out.push(b'|');
            }
            out.extend_from_slice(name.as_bytes());
            first = false;
            v &= !bit;
        }
    }
    if v != 0 {
        if !first {
            out.push(b'|');
        }
        out.extend_from_slice(format!("0x{v:x}").as_bytes());
    }
}

/// `open_flags`: `O_RDONLY|O_CLOEXEC`.
pub(super) fn open_flags(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let v = host_u64(input)?;
    let access = match v & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    };
    out.extend_from_slice(access.as_bytes());
    // O_SYNC (0o4010000) is printed for its own bit; its O_DSYNC part is printed too when set.
    push_bits(out, v & !3, OPEN_FLAGS, false);
    Ok(())
}

const MOUNT_FLAGS: &[(u64, &str)] = &[
    (1, "MS_RDONLY"),
    (2, "MS_NOSUID"),
    (4, "MS_NODEV"),
    (8, "MS_NOEXEC"),
    (16, "MS_SYNCHRONOUS"),
    (32, "MS_REMOUNT"),
    (64, "MS_MANDLOCK"),
    (128, "MS_DIRSYNC"),
    (256, "MS_NOSYMFOLLOW"),
    (1024, "MS_NOATIME"),
    (2048, "MS_NODIRATIME"),
    (4096, "MS_BIND"),
    (8192, "MS_MOVE"),
    (16384, "MS_REC"),
    (32768, "MS_SILENT"),
    (1 << 16, "MS_POSIXACL"),
    (1 << 17, "MS_UNBINDABLE"),
    (1 << 18, "MS_PRIVATE"),
    (1 << 19, "MS_SLAVE"),
    (1 << 20, "MS_SHARED"),
    (1 << 21, "MS_RELATIME"),
    (1 << 22, "MS_KERNMOUNT"),
    (1 << 23, "MS_I_VERSION"),
    (1 << 24, "MS_STRICTATIME"),
    (1 << 25, "MS_LAZYTIME"),
];

/// `mount_flags`: `MS_NOSUID|MS_NODEV`, or `0`.
pub(super) fn mount_flags(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut v = host_u64(input)?;
    // MS_MGC_VAL in the top half (old callers) means nothing.
    if v >> 16 == 0xC0ED {
        v &= 0xffff;
    }
    if v == 0 {
        out.push(b'0');
        return Ok(());
    }
    push_bits(out, v, MOUNT_FLAGS, true);
    Ok(())
}

const SIGNALS: &[&str] = &[
    "0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

fn push_signal(out: &mut Vec<u8>, sig: u64) {
    match SIGNALS.get(sig as usize) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None if (34..=64).contains(&sig) => {
            out.extend_from_slice(b"SIGRTMIN+");
            push_decimal(out, sig - 34);
        }
        None => push_decimal(out, sig),
    }
}

/// `signal`: `SIGTERM` (0, the existence check of kill(2), stays `0`).
pub(super) fn signal(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    push_signal(out, host_u64(input)?);
    Ok(())
}

/// `wait_status`: as wait(2) reports an exit: `exit 7`, `SIGKILL`, `SIGSEGV (core)`.
pub(super) fn wait_status(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let v = host_int(input)?;
    let sig = (v & 0x7f) as u64;
    if sig == 0 {
        out.extend_from_slice(b"exit ");
        push_decimal(out, ((v >> 8) & 0xff) as u64);
    } else {
        push_signal(out, sig);
        if v & 0x80 != 0 {
            out.extend_from_slice(b" (core)");
        }
    }
    Ok(())
}

/// `duration`: nanoseconds as `812ns`, `12.345us`, `1.234ms`, `2.500s` (three decimals).
pub(super) fn duration(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let ns = host_u64(input)?;
    let text = if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.3}us", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.3}ms", ns as f64 / 1e6)
    } else {
        format!("{:.3}s", ns as f64 / 1e9)
    };
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// The kernel's TCP states from 1 (include/net/tcp_states.h).
const TCP_STATES: &[&str] = &[
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
];

/// `tcp_state`: `ESTABLISHED`, ... (the kernel's TCP_* numbering).
pub(super) fn tcp_state(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let v = host_u64(input)?;
    match usize::try_from(v).ok().filter(|&i| i > 0).and_then(|i| TCP_STATES.get(i - 1)) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None => push_decimal(out, v),
    }
    Ok(())
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
    fn numbers_results_and_signals() {
        assert_eq!(run(|o| int(&(-5i32).to_ne_bytes(), o).expect("ok")), "-5");
        assert_eq!(run(|o| int(&i64::MIN.to_ne_bytes(), o).expect("ok")), "-9223372036854775808");
        assert_eq!(run(|o| result(&(-2i32).to_ne_bytes(), o).expect("ok")), "ENOENT");
        assert_eq!(run(|o| result(&3i32.to_ne_bytes(), o).expect("ok")), "3");
        assert_eq!(run(|o| result(&(-4000i32).to_ne_bytes(), o).expect("ok")), "-4000");
        assert!(int(&[1, 2, 3], &mut Vec::new()).is_err());
        assert_eq!(run(|o| signal(&15u32.to_ne_bytes(), o).expect("ok")), "SIGTERM");
        assert_eq!(run(|o| signal(&0u32.to_ne_bytes(), o).expect("ok")), "0");
        assert_eq!(run(|o| signal(&36u32.to_ne_bytes(), o).expect("ok")), "SIGRTMIN+2");
        assert_eq!(run(|o| wait_status(&(7i32 << 8).to_ne_bytes(), o).expect("ok")), "exit 7");
        assert_eq!(run(|o| wait_status(&9i32.to_ne_bytes(), o).expect("ok")), "SIGKILL");
        assert_eq!(run(|o| wait_status(&(11i32 | 0x80).to_ne_bytes(), o).expect("ok")), "SIGSEGV (core)");
        assert_eq!(run(|o| tcp_state(&1u16.to_ne_bytes(), o).expect("ok")), "ESTABLISHED");
    }

    #[test]
    fn durations() {
        assert_eq!(run(|o| duration(&812u64.to_ne_bytes(), o).expect("ok")), "812ns");
        assert_eq!(run(|o| duration(&12_345u64.to_ne_bytes(), o).expect("ok")), "12.345us");
        assert_eq!(run(|o| duration(&1_234_000u64.to_ne_bytes(), o).expect("ok")), "1.234ms");
        assert_eq!(run(|o| duration(&2_500_000_000u64.to_ne_bytes(), o).expect("ok")), "2.500s");
    }

    #[test]
    fn flags() {
        let f = 0o2000000u64 | 0o100 | 1;
        assert_eq!(run(|o| open_flags(&f.to_ne_bytes(), o).expect("ok")), "O_WRONLY|O_CREAT|O_CLOEXEC");
        assert_eq!(run(|o| open_flags(&0u64.to_ne_bytes(), o).expect("ok")), "O_RDONLY");
        assert_eq!(run(|o| open_flags(&(1u64 << 40).to_ne_bytes(), o).expect("ok")), "O_RDONLY|0x10000000000");
        assert_eq!(run(|o| mount_flags(&(2u64 | 4).to_ne_bytes(), o).expect("ok")), "MS_NOSUID|MS_NODEV");
        assert_eq!(run(|o| mount_flags(&0u64.to_ne_bytes(), o).expect("ok")), "0");
    }

    #[test]
    fn argument_lists_quote_what_a_shell_would_need() {
        assert_eq!(run(|o| nul_list(b"/bin/true\0-x\0", o)), "/bin/true -x");
        assert_eq!(run(|o| nul_list(b"sh\0-c\0echo 'hi' there\0\0", o)), "sh -c 'echo '\\''hi'\\'' there' ''");
        assert_eq!(run(|o| nul_list(b"", o)), "");
        assert_eq!(run(|o| nul_list(b"cut", o)), "cut");
    }
}
