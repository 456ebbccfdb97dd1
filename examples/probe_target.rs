//! A uprobe target for the live compatibility tests (tests/live_compat.rs).
//!
//! Each argument is one group `A,B,N[,TEXT]`: call `ebpfx_probe_hit(A, B, TEXT)` N times. A and B
//! are decimal or `0x` hex u64s; TEXT (raw argument bytes, NUL-terminated for the probe) is
//! optional and empty by default. With `PROBE_CPU=K` in the environment the calls run pinned to
//! CPU K. The BPF side (tests/bpf/*.bpf.c) probes `probe_target:ebpfx_probe_hit`.
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// The probed function: never inlined, unmangled, so its symbol is in the binary for libbpf.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ebpfx_probe_hit(a: u64, b: u64, text: *const u8) -> u64 {
    // Reading the arguments keeps them live in their registers when the uprobe fires.
    std::hint::black_box(a) ^ std::hint::black_box(b) ^ std::hint::black_box(text as u64)
}

fn parse_u64(s: &[u8]) -> Result<u64, String> {
    let s = std::str::from_utf8(s).map_err(|_| "number is not UTF-8".to_string())?;
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| format!("bad number {s:?}: {e}"))
}

struct Group {
    a: u64,
    b: u64,
    n: u64,
    text: Vec<u8>,
}

fn parse_group(arg: &OsString) -> Result<Group, String> {
    // TEXT may itself contain commas: split off at most three fields.
    let mut parts = arg.as_bytes().splitn(4, |&c| c == b',');
    let mut next = |what: &str| parts.next().ok_or_else(|| format!("{arg:?}: missing {what} (expected A,B,N[,TEXT])"));
    let a = parse_u64(next("A")?)?;
    let b = parse_u64(next("B")?)?;
    let n = parse_u64(next("N")?)?;
    let mut text = parts.next().map(<[u8]>::to_vec).unwrap_or_default();
    text.push(0);
    Ok(Group { a, b, n, text })
}

fn pin_to_cpu(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity get a
    // pointer to that set and its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("cannot pin to CPU {cpu}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn run() -> Result<u64, String> {
    if let Some(cpu) = std::env::var_os("PROBE_CPU") {
        let cpu = parse_u64(cpu.as_bytes())?;
        pin_to_cpu(usize::try_from(cpu).map_err(|e| e.to_string())?)?;
    }
    let groups = std::env::args_os().skip(1).map(|a| parse_group(&a)).collect::<Result<Vec<_>, _>>()?;
    let mut acc = 0u64;
    for g in &groups {
        for _ in 0..g.n {
            acc ^= ebpfx_probe_hit(std::hint::black_box(g.a), std::hint::black_box(g.b), g.text.as_ptr());
        }
    }
    Ok(acc)
}

fn main() {
    match run() {
        Ok(acc) => {
            std::hint::black_box(acc);
        }
        Err(e) => {
            eprintln!("probe_target: {e}");
            std::process::exit(2);
        }
    }
}
