//! Kernel functions for `--probe kernel:GLOB`: the candidates come from /proc/kallsyms (the
//! kernel's and loaded modules' text symbols); the kernel's own lists say which of them can
//! take a kprobe: `available_filter_functions` (tracefs; `__init`, `notrace` and inlined
//! functions are not in it) and the kprobe blacklist (debugfs).
use std::collections::HashSet;
use std::io;
use std::path::Path;

use super::Function;

/// Kernel text symbols from /proc/kallsyms text: `t`/`T` symbols of the kernel and of loaded
/// modules (`name\t[module]`), without what no kprobe can name: compiler-made local variants
/// (`foo.isra.0`, `foo.cold`), the `__pfx_`/`__cfi_` padding symbols before each function, and
/// the pseudo-modules holding BPF programs and ftrace trampolines.
pub fn kallsyms_functions(text: &str) -> Vec<Function> {
    // Hidden addresses (all 0): each function gets its line number as its "offset", so that
    // selection does not take them all for aliases of one function.
    let zeroed = crate::kallsyms::is_zeroed(text);
    crate::kallsyms::symbols(text)
        .enumerate()
        .filter(|(_, s)| matches!(s.kind, "t" | "T") && probeable_name(s.name))
        .filter(|(_, s)| !s.module.is_some_and(|m| m.is_empty() || m == "bpf" || m.starts_with("__builtin")))
        .map(|(i, s)| Function {
            name: s.name.to_string(),
            file_offset: if zeroed { i as u64 } else { s.addr },
            module: s.module.map(str::to_string),
        })
        .collect()
}

fn probeable_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('.') && !name.starts_with("__pfx_") && !name.starts_with("__cfi_")
}

/// What the kernel says can take a kprobe. `None` lists were absent or unreadable.
#[derive(Debug, Default, Clone)]
pub struct Probeable {
    /// Names in `available_filter_functions`.
    pub available: Option<HashSet<String>>,
    /// Names in the kprobe blacklist.
    pub blacklist: Option<HashSet<String>>,
    /// Why a list could not be read, for the user.
    pub notes: Vec<String>,
}

/// Why a function cannot take a kprobe, or `None` when nothing says it cannot.
impl Probeable {
    pub fn refusal(&self, f: &Function) -> Option<&'static str> {
        if self.blacklist.as_ref().is_some_and(|b| b.contains(&f.name)) {
            return Some("on the kernel's kprobe blacklist");
        }
        if self.available.as_ref().is_some_and(|a| !a.contains(&f.name)) {
            return Some("not in available_filter_functions (an __init, notrace or inlined function)");
        }
        None
    }

    /// Reads the lists of the running kernel, mounting tracefs (root) when needed.
    pub fn of_running_kernel() -> Probeable {
        let mut out = Probeable::default();
        let _ = ensure_tracefs();
        let lists =
            ["/sys/kernel/tracing/available_filter_functions", "/sys/kernel/debug/tracing/available_filter_functions"];
        match read_first(&lists) {
            Some(Ok(text)) => out.available = Some(parse_available(&text)),
            Some(Err(e)) => out.notes.push(format!(
                "cannot read available_filter_functions ({e}): functions that cannot take a kprobe are found only when attaching"
            )),
            None => {}
        }
        if let Some(Ok(text)) = read_first(&["/sys/kernel/debug/kprobes/blacklist"]) {
            out.blacklist = Some(parse_blacklist(&text));
        }
        out
    }
}

/// The first of `paths` that exists, read.
fn read_first(paths: &[&str]) -> Option<io::Result<String>> {
    paths.iter().map(Path::new).find(|p| p.exists()).map(std::fs::read_to_string)
}

/// `available_filter_functions`: one `name` or `name [module]` per line.
pub fn parse_available(text: &str) -> HashSet<String> {
    text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

/// The kprobe blacklist: `0xSTART-0xEND\tname` (a `[module]` may follow) per line.
pub fn parse_blacklist(text: &str) -> HashSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().find(|t| !t.starts_with("0x") && !t.starts_with('[')))
        .map(str::to_string)
        .collect()
}

/// Mounts tracefs at /sys/kernel/tracing when it is missing (kprobe lists and classic
/// tracepoints live there).
pub fn ensure_tracefs() -> io::Result<()> {
    if Path::new("/sys/kernel/tracing/events").exists() {
        return Ok(());
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; data is null.
    let rc = unsafe { libc::mount(c"nodev".as_ptr(), target.as_ptr(), c"tracefs".as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "ffffffff81000000 T _stext\n\
ffffffff81001000 t vfs_read\n\
ffffffff81000ff0 t __pfx_vfs_read\n\
ffffffff81002000 D jiffies\n\
ffffffff81003000 t foo.isra.0\n\
ffffffff81004000 T vfs_caches_init\n\
ffffffff81005000 T vfs_write\n\
ffffffff81006000 T kprobe_busy_begin\n\
ffffffffc0001000 t ext4_file_read_iter\t[ext4]\n\
ffffffffc0002000 t bpf_prog_6deef7357e7b4530_sd_fw_egress\t[bpf]\n\
ffffffffc0201000 t ftrace_trampoline\t[__builtin__ftrace]\n";

    #[test]
    fn kallsyms_with_modules() {
        let fs = kallsyms_functions(KALLSYMS);
        let names: Vec<&str> = fs.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["_stext", "vfs_read", "vfs_caches_init", "vfs_write", "kprobe_busy_begin", "ext4_file_read_iter"]
        );
        let ext4 = fs.iter().find(|f| f.name == "ext4_file_read_iter").expect("module function");
        assert_eq!(ext4.module.as_deref(), Some("ext4"));
        assert_eq!(ext4.file_offset, 0xffffffffc0001000);
        // Hidden addresses: still two functions, not aliases of one.
        let zeroed = "0000000000000000 T _stext\n0000000000000000 t vfs_read\n";
        let fs = kallsyms_functions(zeroed);
        assert_eq!(fs.len(), 2);
        assert_ne!(fs[0].file_offset, fs[1].file_offset);
    }

    #[test]
    fn lists_say_what_can_take_a_kprobe() {
        let p = Probeable {
            available: Some(parse_available("vfs_read\nvfs_write\nkprobe_busy_begin\next4_file_read_iter [ext4]\n")),
            blacklist: Some(parse_blacklist("0xffffffff81006000-0xffffffff81006040\tkprobe_busy_begin\n")),
            notes: Vec::new(),
        };
        let fs = kallsyms_functions(KALLSYMS);
        let get = |n: &str| fs.iter().find(|f| f.name == n).cloned().expect("present");
        assert_eq!(p.refusal(&get("vfs_read")), None);
        assert_eq!(p.refusal(&get("ext4_file_read_iter")), None);
        assert!(p.refusal(&get("vfs_caches_init")).is_some_and(|r| r.contains("available_filter_functions")));
        assert!(p.refusal(&get("kprobe_busy_begin")).is_some_and(|r| r.contains("blacklist")));
        // Without lists nothing is refused.
        assert_eq!(Probeable::default().refusal(&get("vfs_caches_init")), None);
    }
}
