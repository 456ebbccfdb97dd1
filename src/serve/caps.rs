//! `--capabilities.keep`: once the programs are attached, `serve` needs no privilege to read
//! its maps (the descriptors are open), so every capability not named is dropped from the
//! effective, permitted, inheritable, ambient and bounding sets.
use crate::error::usage_err;

/// Capability names as `capabilities(7)` spells them (lower case), by number.
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// What to keep: a bit set of capability numbers, or everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    All,
    Set(u64),
}

/// Parses `none`, `all` or `cap_a,cap_b` (case-insensitive, `cap_` optional). A usage error
/// names the flag and the unknown name.
pub fn parse(spec: &str) -> anyhow::Result<Keep> {
    let spec = spec.trim();
    match spec.to_ascii_lowercase().as_str() {
        "all" => return Ok(Keep::All),
        "none" | "" => return Ok(Keep::Set(0)),
        _ => {}
    }
    let mut set = 0u64;
    for name in spec.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let lower = name.to_ascii_lowercase();
        let full = if lower.starts_with("cap_") { lower } else { format!("cap_{lower}") };
        let Some(bit) = NAMES.iter().position(|n| *n == full) else {
            return Err(usage_err(format!(
                "--capabilities.keep: unknown capability {name:?} (expected none, all, or names such as cap_syslog,cap_bpf)"
            )));
        };
        set |= 1u64 << bit;
    }
    Ok(Keep::Set(set))
}

/// The names of the capabilities in `set`, comma-separated (`none` when empty).
pub fn names(set: u64) -> String {
    let v: Vec<&str> = NAMES.iter().enumerate().filter(|(i, _)| set & (1u64 << i) != 0).map(|(_, n)| *n).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const VERSION_3: u32 = 0x2008_0522;

fn capget() -> std::io::Result<[Data; 2]> {
    let mut header = Header { version: VERSION_3, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: capget with a v3 header reads into two `Data` structs, which `data` provides.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(data)
}

/// The effective and permitted sets of this process now.
pub fn current() -> std::io::Result<(u64, u64)> {
    let d = capget()?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((join(d[0].effective, d[1].effective), join(d[0].permitted, d[1].permitted)))
}

/// Drops every capability not in `keep` (nothing to do for [`Keep::All`]). Capabilities to
/// keep that the process does not have are simply not there afterwards.
pub fn drop_all_but(keep: Keep) -> anyhow::Result<()> {
    let Keep::Set(keep) = keep else { return Ok(()) };
    let (_, permitted) = current().map_err(|e| anyhow::anyhow!("reading the process capabilities: {e}"))?;
    let keep = keep & permitted;
    // The bounding set first (it needs CAP_SETPCAP, which may be about to go).
    for bit in 0..NAMES.len() as u64 {
        if keep & (1 << bit) == 0 {
            // SAFETY: prctl with integer arguments only. EINVAL for a capability the kernel
            // does not know, EPERM without CAP_SETPCAP: both leave the set as it was.
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, bit as libc::c_ulong, 0, 0, 0) };
        }
    }
    // SAFETY: prctl with integer arguments only; clears the ambient set.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) };
    let lo = (keep & 0xffff_ffff) as u32;
    let hi = (keep >> 32) as u32;
    let mut header = Header { version: VERSION_3, pid: 0 };
    let data =
        [Data { effective: lo, permitted: lo, inheritable: 0 }, Data { effective: hi, permitted: hi, inheritable: 0 }];
    // SAFETY: capset with a v3 header reads two `Data` structs, which `data` provides.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if rc != 0 {
        return Err(anyhow::anyhow!("dropping capabilities: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: prctl with integer arguments only; a process that gave up privileges never gets
    // them back through execve.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_like_ebpf_exporter() {
        assert_eq!(parse("none").ok(), Some(Keep::Set(0)));
        assert_eq!(parse("ALL").ok(), Some(Keep::All));
        assert_eq!(parse("cap_syslog,bpf").ok(), Some(Keep::Set((1 << 34) | (1 << 39))));
        assert_eq!(names((1 << 34) | (1 << 39)), "cap_syslog,cap_bpf");
        let err = parse("cap_syslog,cap_fly").expect_err("unknown");
        assert!(format!("{err}").contains("cap_fly") && crate::error::exit_code(&err) == 2);
    }
}
