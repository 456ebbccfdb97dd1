//! Why a load or attach failed, in words that name the real cause: the verifier's last words,
//! the map that could not be created, the missing capability, the missing kernel function.
//!
//! libbpf's warnings are captured (never printed unless `-v`): a failed load's verifier log
//! and map errors come from them.
use std::io;
use std::path::Path;
use std::sync::Mutex;

use libbpf_rs::PrintLevel;

use crate::targets::Function;

static LOG: Mutex<String> = Mutex::new(String::new());
static VERBOSE: Mutex<u8> = Mutex::new(0);

/// At most this much of libbpf's log is kept between two `take_log` calls.
const LOG_LIMIT: usize = 1 << 20;

fn libbpf_print(level: PrintLevel, msg: String) {
    let verbose = VERBOSE.lock().map(|v| *v).unwrap_or(0);
    let show = match level {
        PrintLevel::Warn | PrintLevel::Info => verbose >= 1,
        PrintLevel::Debug => verbose >= 2,
    };
    if show {
        let tag = match level {
            PrintLevel::Warn => "warn",
            PrintLevel::Info => "info",
            PrintLevel::Debug => "debug",
        };
        eprint!("libbpf[{tag}]: {msg}");
    }
    if level == PrintLevel::Warn {
        if let Ok(mut log) = LOG.lock() {
            if log.len() + msg.len() <= LOG_LIMIT {
                log.push_str(&msg);
            }
        }
    }
}

/// Sets libbpf's logging once per process: its warnings are always captured for error
/// messages; they (and its info) are printed with `-v`, its debug log with `-vv`.
pub fn init_libbpf_logging(verbose: u8) {
    if let Ok(mut v) = VERBOSE.lock() {
        *v = verbose;
    }
    let level = if verbose >= 2 {
        PrintLevel::Debug
    } else if verbose == 1 {
        PrintLevel::Info
    } else {
        PrintLevel::Warn
    };
    libbpf_rs::set_print(Some((level, libbpf_print)));
}

/// libbpf's warnings since the last call (and forgets them).
pub fn take_log() -> String {
    LOG.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default()
}

/// The verifier's last words for program `prog` in libbpf's log: the last lines of its
/// program load log, without the closing statistics.
pub fn verifier_last_words(log: &str, prog: &str) -> Option<String> {
    let begin = format!("prog '{prog}': -- BEGIN PROG LOAD LOG --");
    let start = log.rfind(&begin)? + begin.len();
    let body = &log[start..];
    let body = &body[..body.find("-- END PROG LOAD LOG --").unwrap_or(body.len())];
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time"))
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(lines[lines.len().saturating_sub(2)..].join(" / "))
}

/// The map libbpf failed to create, with libbpf's reason.
pub fn failed_map(log: &str) -> Option<(String, String)> {
    for line in log.lines() {
        let Some(rest) = line.trim_start_matches("libbpf: ").strip_prefix("map '") else { continue };
        let Some((name, tail)) = rest.split_once("': failed to create") else { continue };
        let reason = tail.trim_start_matches(" inner map").trim_start_matches(':').trim();
        return Some((name.to_string(), reason.to_string()));
    }
    None
}

/// An extern libbpf could not resolve (`extern` function or variable the kernel lacks).
pub fn unresolved_extern(log: &str) -> Option<String> {
    log.lines().map(|l| l.trim_start_matches("libbpf: ").trim()).find_map(|l| {
        let hit = l.starts_with("failed to find BTF for extern")
            || (l.starts_with("extern (") && (l.contains("not found") || l.contains("incompatible")))
            || l.starts_with("unrecognized extern section");
        hit.then(|| l.to_string())
    })
}

/// Capability numbers ebpfx needs.
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYSLOG: u32 = 34;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

/// Effective capabilities of this process (root included: its set is full).
pub fn effective_caps() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

pub fn has_cap(caps: u64, cap: u32) -> bool {
    caps & (1u64 << cap) != 0
}

/// The capabilities of `wanted` this process lacks, by name. CAP_SYS_ADMIN stands in for
/// CAP_BPF and CAP_PERFMON (kernels before 5.8 know only it).
pub fn missing_caps(caps: u64, wanted: &[u32]) -> Vec<&'static str> {
    let sys_admin = has_cap(caps, CAP_SYS_ADMIN);
    wanted
        .iter()
        .filter(|&&c| !(has_cap(caps, c) || sys_admin && matches!(c, CAP_BPF | CAP_PERFMON)))
        .map(|&c| match c {
            CAP_NET_ADMIN => "CAP_NET_ADMIN",
            CAP_SYS_ADMIN => "CAP_SYS_ADMIN",
            CAP_SYSLOG => "CAP_SYSLOG",
            CAP_PERFMON => "CAP_PERFMON",
            CAP_BPF => "CAP_BPF",
            _ => "an unknown capability",
        })
        .collect()
}

fn section_kind(section: &str) -> &str {
    section.split('/').next().unwrap_or(section)
}

/// Explains a program that failed to load. `log` is libbpf's log of that load.
pub fn explain_load(prog: &str, section: &str, errno: Option<i32>, log: &str) -> String {
    let kind = section_kind(section);
    let target = section.split_once('/').map(|(_, t)| t).unwrap_or("");
    if let Some((map, reason)) = failed_map(log) {
        return format!("map {map} could not be created: {reason}");
    }
    if let Some(ext) = unresolved_extern(log) {
        return format!("an extern could not be resolved against this kernel: {ext}");
    }
    let verifier = verifier_last_words(log, prog);
    match (kind, errno) {
        ("fentry" | "fexit" | "fmod_ret" | "lsm", Some(libc::EPERM) | Some(524)) if verifier.is_none() => format!(
            "{kind} programs are not supported by this kernel (BPF trampolines unavailable); a tracepoint or kprobe program is needed instead"
        ),
        ("tp_btf", Some(libc::ESRCH) | Some(libc::ENOENT)) => {
            format!("tracepoint {target} does not exist on this kernel")
        }
        ("fentry" | "fexit", Some(libc::ESRCH) | Some(libc::ENOENT)) => {
            format!("kernel function {target} does not exist on this kernel (or is not traceable)")
        }
        (_, Some(libc::EPERM)) if verifier.is_none() => {
            let missing = missing_caps(effective_caps(), &wanted_caps(section));
            if missing.is_empty() {
                "the kernel refused the program (EPERM) though this process has the capabilities it needs (run with -v for libbpf's log)".to_string()
            } else {
                format!("loading it needs {} (EPERM): run as root or grant {}", missing.join(" and "), missing.join(", "))
            }
        }
        (_, _) if verifier.is_some() => {
            let words = verifier.unwrap_or_default();
            format!("the verifier rejected it: {words}{}", missing_helper_hint(&words))
        }
        (_, Some(libc::EACCES)) | (_, Some(libc::EINVAL)) => {
            "the verifier rejected it (run with -v to see libbpf's log)".to_string()
        }
        (_, Some(code)) => format!("load failed: {}", io::Error::from_raw_os_error(code)),
        (_, None) => "load failed (run with -v to see libbpf's log)".to_string(),
    }
}

/// For verifier words like `invalid func unknown#174`: which helper the kernel lacks.
fn missing_helper_hint(words: &str) -> String {
    let Some(id) = words.split("unknown#").nth(1).and_then(|t| {
        let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    }) else {
        return String::new();
    };
    let known = [
        (libbpf_sys::BPF_FUNC_get_attach_cookie, "bpf_get_attach_cookie (Linux 5.15+)"),
        (libbpf_sys::BPF_FUNC_get_func_ip, "bpf_get_func_ip (Linux 5.15+)"),
        (libbpf_sys::BPF_FUNC_loop, "bpf_loop (Linux 5.17+)"),
        (libbpf_sys::BPF_FUNC_get_current_task_btf, "bpf_get_current_task_btf (Linux 5.11+)"),
        (libbpf_sys::BPF_FUNC_task_storage_get, "bpf_task_storage_get (Linux 5.11+)"),
        (libbpf_sys::BPF_FUNC_ktime_get_coarse_ns, "bpf_ktime_get_coarse_ns (Linux 5.11+)"),
        (libbpf_sys::BPF_FUNC_ktime_get_tai_ns, "bpf_ktime_get_tai_ns (Linux 6.1+)"),
        (libbpf_sys::BPF_FUNC_cgrp_storage_get, "bpf_cgrp_storage_get (Linux 6.2+)"),
    ];
    match known.iter().find(|(n, _)| *n == id) {
        Some((_, name)) => format!(" (helper #{id} is {name}, which this kernel does not have)"),
        None => format!(" (BPF helper #{id} is newer than this kernel)"),
    }
}

/// The capabilities loading a program of `section` takes: CAP_BPF, plus CAP_PERFMON for
/// tracing kinds, plus CAP_NET_ADMIN for networking kinds (xdp, tc, sockets, cgroup skb).
pub fn wanted_caps(section: &str) -> Vec<u32> {
    let kind = section_kind(section);
    let net = [
        "xdp",
        "tc",
        "tcx",
        "classifier",
        "action",
        "socket",
        "sk_skb",
        "sk_msg",
        "sk_lookup",
        "cgroup_skb",
        "sockops",
        "netfilter",
    ];
    if net.iter().any(|n| kind == *n || kind.starts_with(&format!("{n}."))) {
        vec![CAP_BPF, CAP_NET_ADMIN]
    } else {
        vec![CAP_BPF, CAP_PERFMON]
    }
}

/// Whether the running kernel has kprobes (CONFIG_KPROBES registers a `kprobe` PMU).
pub fn kernel_has_kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// Whether `/proc/kallsyms` lists `name` as a text symbol (of the kernel or a loaded module).
fn in_kallsyms(name: &str) -> Option<bool> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    Some(text.lines().any(|l| {
        let mut p = l.split_whitespace();
        let (_, kind, sym) = (p.next(), p.next(), p.next());
        matches!(kind, Some("t" | "T")) && sym == Some(name)
    }))
}

/// Why a kprobe on a kernel function could not be made (`f`: the function, when one).
pub fn kprobe_failure(kind: &str, f: Option<&Function>, err: &libbpf_rs::Error) -> String {
    let errno = super::errno_of(err);
    let facts = KprobeFacts {
        has_kprobes: kernel_has_kprobes(),
        in_kallsyms: f.and_then(|f| in_kallsyms(&f.name)),
        module_loaded: f.and_then(|f| f.module.as_deref()).map(|m| Path::new("/sys/module").join(m).exists()),
        missing_caps: missing_caps(effective_caps(), &[CAP_PERFMON, CAP_BPF]),
    };
    kprobe_reason(kind, f, errno, &facts, &format!("{err:#}"))
}

/// What the system says about a kprobe that failed.
#[derive(Debug, Clone, Default)]
pub struct KprobeFacts {
    pub has_kprobes: bool,
    /// Whether /proc/kallsyms lists the function (None: unknown).
    pub in_kallsyms: Option<bool>,
    /// Whether the function's module is loaded (None: not a module function).
    pub module_loaded: Option<bool>,
    pub missing_caps: Vec<&'static str>,
}

/// [`kprobe_failure`] from its facts: the one cause that fits, named.
pub fn kprobe_reason(kind: &str, f: Option<&Function>, errno: Option<i32>, facts: &KprobeFacts, err: &str) -> String {
    let name = f.map(|f| f.name.as_str());
    let on = name.map(|n| format!(" on {n}")).unwrap_or_default();
    match errno {
        // Without the kprobe PMU libbpf falls back to tracefs' kprobe_events, which fails with
        // whatever errno (EACCES for a non-root user): the cause is the kernel all the same.
        _ if !facts.has_kprobes => {
            format!("cannot create a {kind}{on}: this kernel has no kprobe support (CONFIG_KPROBES is off)")
        }
        Some(libc::ENOENT) | Some(libc::EINVAL) | Some(libc::ESRCH) => match (name, f.and_then(|f| f.module.as_deref())) {
            (Some(n), Some(m)) if facts.module_loaded == Some(false) => {
                format!("cannot create a {kind} on {n}: its module {m} is not loaded")
            }
            (Some(n), _) if facts.in_kallsyms == Some(false) => format!(
                "cannot create a {kind} on {n}: no such function in the running kernel or its loaded modules (is its module loaded?)"
            ),
            (Some(n), _) => {
                format!("cannot create a {kind} on {n}: the function cannot take a kprobe (notrace, inlined or blacklisted)")
            }
            (None, _) => format!("cannot create a {kind}: {err}"),
        },
        Some(libc::EPERM) | Some(libc::EACCES) if !facts.missing_caps.is_empty() => {
            format!("creating a {kind} needs {}", facts.missing_caps.join(" and "))
        }
        _ => format!("attaching a {kind}{}: {err}", name.map(|n| format!(" to {n}")).unwrap_or_default()),
    }
}

/// Explains a program that failed to attach.
pub fn explain_attach(section: &str, err: &libbpf_rs::Error) -> String {
    let errno = super::errno_of(err);
    let kind = section_kind(section);
    let target = section.split_once('/').map(|(_, t)| t).unwrap_or("");
    match (kind, errno) {
        ("kprobe" | "kretprobe", _) => {
            let func = target.split('+').next().unwrap_or(target);
            kprobe_failure(kind, Some(&Function { name: func.to_string(), file_offset: 0, module: None }), err)
        }
        ("ksyscall" | "kretsyscall", _) => kprobe_failure(kind, None, err),
        ("tracepoint" | "tp", Some(libc::ENOENT)) => {
            if Path::new("/sys/kernel/tracing/events").exists() {
                format!("tracepoint {target} does not exist on this kernel")
            } else {
                "tracefs is not mounted at /sys/kernel/tracing: run `mount -t tracefs nodev /sys/kernel/tracing`".to_string()
            }
        }
        ("raw_tp" | "raw_tracepoint", Some(libc::ENOENT)) => format!("raw tracepoint {target} does not exist on this kernel"),
        ("uprobe" | "uretprobe" | "usdt", Some(libc::ENOENT)) => format!(
            "{kind} target {target} not found (binary or symbol missing; names without / are resolved through $PATH or the library path)"
        ),
        ("perf_event", Some(libc::ENOENT)) => "perf event not available on this machine (hardware counters need a PMU)".to_string(),
        (_, Some(libc::EPERM)) | (_, Some(libc::EACCES)) => {
            let missing = missing_caps(effective_caps(), &[CAP_BPF, CAP_PERFMON]);
            if missing.is_empty() {
                format!("{err:#}")
            } else {
                format!("attaching it needs {} ({err:#})", missing.join(" and "))
            }
        }
        (_, Some(libc::EOPNOTSUPP)) | (_, Some(libc::ESRCH)) if section == kind => {
            format!("section {section:?} cannot be attached automatically")
        }
        _ => format!("{err:#}"),
    }
}

/// Explains an XDP attach failure: CAP_NET_ADMIN is what it takes beyond loading.
pub fn explain_xdp(ifname: &str, err: &libbpf_rs::Error) -> String {
    match super::errno_of(err) {
        Some(libc::EPERM) | Some(libc::EACCES) if !missing_caps(effective_caps(), &[CAP_NET_ADMIN]).is_empty() => {
            format!("attaching XDP to {ifname} needs CAP_NET_ADMIN, which this process lacks (run as root or grant cap_net_admin)")
        }
        _ => format!("attaching XDP to {ifname}: {err:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER_LOG: &str = "libbpf: prog 'bad': BPF program load failed: Permission denied\n\
libbpf: prog 'bad': -- BEGIN PROG LOAD LOG --\n\
0: R1=ctx() R10=fp0\n\
; int bad(void *ctx) @ reject.bpf.c:10\n\
0: (79) r0 = *(u64 *)(r1 +1024)\n\
invalid bpf_context access off=1024 size=8\n\
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n\
-- END PROG LOAD LOG --\n\
libbpf: prog 'bad': failed to load: -13\n";

    #[test]
    fn verifier_rejection_shows_the_verifiers_last_words() {
        let words = verifier_last_words(VERIFIER_LOG, "bad").expect("found");
        assert!(words.ends_with("invalid bpf_context access off=1024 size=8"), "{words}");
        assert!(!words.contains("processed"));
        assert_eq!(verifier_last_words(VERIFIER_LOG, "other"), None);
        let why = explain_load("bad", "raw_tp/sys_enter", Some(libc::EACCES), VERIFIER_LOG);
        assert!(why.starts_with("the verifier rejected it: ") && why.contains("invalid bpf_context access"), "{why}");
        assert!(!why.contains("root"), "{why}");
        // EPERM as root with a verifier log is the verifier too, not privileges.
        let why = explain_load("bad", "raw_tp/sys_enter", Some(libc::EPERM), VERIFIER_LOG);
        assert!(why.contains("verifier rejected"), "{why}");
    }

    #[test]
    fn unknown_helpers_are_named() {
        let log = "libbpf: prog 'funccount_entry': -- BEGIN PROG LOAD LOG --\n0: (85) call unknown#174\ninvalid func unknown#174\nprocessed 1 insns\n-- END PROG LOAD LOG --\n";
        let why = explain_load("funccount_entry", "uprobe", Some(libc::EINVAL), log);
        assert!(
            why.contains("invalid func unknown#174") && why.contains("bpf_get_attach_cookie (Linux 5.15+)"),
            "{why}"
        );
        assert!(missing_helper_hint("invalid func unknown#999").contains("#999 is newer than this kernel"));
        assert_eq!(missing_helper_hint("R1 invalid mem access"), "");
    }

    #[test]
    fn failed_map_is_named() {
        let log = "libbpf: map 'cgroup_storage': failed to create: Invalid argument(-22)\nlibbpf: failed to load object 'x'\n";
        assert_eq!(failed_map(log), Some(("cgroup_storage".into(), "Invalid argument(-22)".into())));
        let why = explain_load("prog", "tp_btf/sys_enter", Some(libc::EINVAL), log);
        assert_eq!(why, "map cgroup_storage could not be created: Invalid argument(-22)");
    }

    #[test]
    fn unresolved_externs_are_named() {
        let log = "libbpf: extern (func ksym) 'bpf_no_such_kfunc': not found in kernel or module BTFs\n";
        let why = explain_load("p", "tp_btf/x", Some(libc::ESRCH), log);
        assert!(why.contains("extern") && why.contains("bpf_no_such_kfunc"), "{why}");
    }

    #[test]
    fn kprobe_failures_name_their_cause() {
        let f = |name: &str, module: Option<&str>| Function {
            name: name.into(),
            file_offset: 0,
            module: module.map(str::to_string),
        };
        let kprobes = KprobeFacts { has_kprobes: true, ..Default::default() };
        // A function of a module that is not loaded: the module, not CONFIG_KPROBES.
        let facts = KprobeFacts { module_loaded: Some(false), in_kallsyms: Some(false), ..kprobes.clone() };
        let why = kprobe_reason("kprobe", Some(&f("ext4_file_open", Some("ext4"))), Some(libc::ENOENT), &facts, "e");
        assert_eq!(why, "cannot create a kprobe on ext4_file_open: its module ext4 is not loaded");
        // A fixed kprobe section naming a function this kernel does not have.
        let facts = KprobeFacts { in_kallsyms: Some(false), ..kprobes.clone() };
        let why = kprobe_reason("kprobe", Some(&f("xfs_foo", None)), Some(libc::ENOENT), &facts, "e");
        assert!(
            why.contains("no such function") && why.contains("module loaded?") && !why.contains("CONFIG_KPROBES"),
            "{why}"
        );
        // Present but refused.
        let facts = KprobeFacts { in_kallsyms: Some(true), ..kprobes.clone() };
        let why = kprobe_reason("kretprobe", Some(&f("vfs_caches_init", None)), Some(libc::EINVAL), &facts, "e");
        assert!(why.contains("cannot take a kprobe"), "{why}");
        // No kprobes at all.
        let why = kprobe_reason("kprobe", Some(&f("vfs_read", None)), Some(libc::ENOENT), &KprobeFacts::default(), "e");
        assert_eq!(
            why,
            "cannot create a kprobe on vfs_read: this kernel has no kprobe support (CONFIG_KPROBES is off)"
        );
        // Whatever errno the tracefs fallback gives (EACCES for a non-root user).
        let why = kprobe_reason("kprobe", Some(&f("vfs_read", None)), Some(libc::EACCES), &KprobeFacts::default(), "e");
        assert!(why.contains("CONFIG_KPROBES"), "{why}");
        // Missing capability.
        let facts = KprobeFacts { missing_caps: vec!["CAP_PERFMON"], ..kprobes };
        let why = kprobe_reason("kprobe", Some(&f("vfs_read", None)), Some(libc::EPERM), &facts, "e");
        assert_eq!(why, "creating a kprobe needs CAP_PERFMON");
    }

    #[test]
    fn capabilities_by_name() {
        let caps = |list: &[u32]| list.iter().fold(0u64, |a, c| a | 1 << c);
        assert_eq!(missing_caps(caps(&[CAP_BPF]), &[CAP_BPF, CAP_PERFMON]), ["CAP_PERFMON"]);
        assert_eq!(missing_caps(caps(&[]), &[CAP_BPF, CAP_PERFMON]), ["CAP_BPF", "CAP_PERFMON"]);
        assert!(missing_caps(caps(&[CAP_SYS_ADMIN]), &[CAP_BPF, CAP_PERFMON]).is_empty());
        assert_eq!(missing_caps(caps(&[CAP_BPF, CAP_PERFMON]), &[CAP_NET_ADMIN]), ["CAP_NET_ADMIN"]);
        let bpf_perfmon = caps(&[CAP_BPF, CAP_PERFMON]);
        assert_eq!(missing_caps(bpf_perfmon, &wanted_caps("xdp/lo")), ["CAP_NET_ADMIN"]);
        assert!(missing_caps(bpf_perfmon, &wanted_caps("tp_btf/sys_enter")).is_empty());
    }
}
