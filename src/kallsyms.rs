//! The one reader of `/proc/kallsyms`: kernel symbol addresses for the `ksym`/`kstack`
//! decoders (address → name), `kaddrs` globals (name → address) and `--probe kernel:GLOB`
//! (function names).
//!
//! A line is `ADDRESS KIND NAME` separated by single spaces, with `\t[MODULE]` after the name
//! of a module's symbol. Lines that do not have that shape (fewer parts, an address that is
//! not hex) are skipped: the file is the kernel's, and one odd line must not hide the rest.
//!
//! **Hidden addresses.** The kernel shows every address as 0 to a reader without CAP_SYSLOG
//! (and to everybody when `kernel.kptr_restrict` is 2; with `kptr_restrict` 0 a
//! `kernel.perf_event_paranoid` ≤ 1 is enough). A non-root user with CAP_BPF + CAP_PERFMON can
//! run ebpfx but sees such a file. [`Kallsyms`] then holds no symbols and says so
//! ([`Kallsyms::zeroed`]): an address never maps to the wrong name, and callers print raw
//! addresses with the warning of [`zeroed_warning`].
use std::collections::HashMap;
use std::path::Path;

/// Where the kernel publishes its symbols.
pub const PATH: &str = "/proc/kallsyms";

/// One line of a kallsyms text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol<'a> {
    pub addr: u64,
    /// The `nm`-style type letter (`T`, `t`, `D`, ...).
    pub kind: &'a str,
    /// The symbol name, without the module.
    pub name: &'a str,
    /// The module name without brackets (`jbd2`), `None` for the kernel proper.
    pub module: Option<&'a str>,
    /// The name as the file writes it, module included (`commit_timeout\t[jbd2]`).
    pub full_name: &'a str,
}

/// Parses one line; `None` when it does not have the kallsyms shape.
pub fn parse_line(line: &str) -> Option<Symbol<'_>> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let mut parts = line.splitn(3, ' ');
    let (addr, kind, full_name) = (parts.next()?, parts.next()?, parts.next()?);
    if addr.is_empty() || kind.is_empty() || full_name.is_empty() || full_name.contains(' ') {
        return None;
    }
    let addr = u64::from_str_radix(addr, 16).ok()?;
    let (name, module) = match full_name.split_once('\t') {
        Some((name, module)) => (name, Some(module.trim_start_matches('[').trim_end_matches(']'))),
        None => (full_name, None),
    };
    Some(Symbol { addr, kind, name, module, full_name })
}

/// Every well-formed line of `text`, in file order.
pub fn symbols(text: &str) -> impl Iterator<Item = Symbol<'_>> {
    text.lines().filter_map(parse_line)
}

/// Whether `text` lists symbols and shows every one at address 0 (addresses hidden from this
/// reader).
pub fn is_zeroed(text: &str) -> bool {
    let mut any = false;
    for s in symbols(text) {
        if s.addr != 0 {
            return false;
        }
        any = true;
    }
    any
}

/// Name → address of the kernel proper's symbols (module symbols are left out: a plain name
/// never means one); a name listed twice keeps its last address.
pub fn addresses(text: &str) -> HashMap<&str, u64> {
    symbols(text).filter(|s| s.module.is_none()).map(|s| (s.name, s.addr)).collect()
}

/// Reads the system's kallsyms text.
pub fn read_system() -> std::io::Result<String> {
    std::fs::read_to_string(PATH)
}

/// Why this process sees zeroed addresses and what fixes it, from the kernel's rules
/// (`kptr_restrict` 2: nobody; 1: CAP_SYSLOG; 0: CAP_SYSLOG or `perf_event_paranoid` ≤ 1).
pub fn zeroed_reason() -> String {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{name}")).ok().and_then(|s| s.trim().parse::<i64>().ok())
    };
    match read("kptr_restrict") {
        Some(2) => "kernel.kptr_restrict is 2, which hides them from every user, root included; \
                    set it to 1 and run as root or with CAP_SYSLOG"
            .to_string(),
        Some(1) => {
            "this process lacks CAP_SYSLOG and kernel.kptr_restrict is 1; run as root or add CAP_SYSLOG".to_string()
        }
        Some(0) => "this process lacks CAP_SYSLOG and kernel.perf_event_paranoid is above 1; \
                    run as root, add CAP_SYSLOG, or set kernel.perf_event_paranoid to 1"
            .to_string(),
        _ => "this process lacks CAP_SYSLOG, or kernel.kptr_restrict hides them; run as root or add CAP_SYSLOG"
            .to_string(),
    }
}

/// The warning printed when kernel addresses had to be shown raw.
pub fn zeroed_warning() -> String {
    format!(
        "{PATH} shows every kernel address as 0: {}. Kernel stack frames and ksym labels are printed as raw \
         addresses (0x...), not symbol names",
        zeroed_reason()
    )
}

/// An address-sorted symbol table: one text buffer plus `(address, name range)`, sorted
/// stably so that aliases keep file order (the last alias in the file wins).
#[derive(Debug, Default)]
pub struct Kallsyms {
    text: String,
    syms: Vec<(u64, u32, u32)>,
    zeroed: bool,
}

impl Kallsyms {
    /// Reads and parses a kallsyms file; the error names the file.
    pub fn load(path: &Path) -> Result<Kallsyms, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Kallsyms::parse(text))
    }

    /// Names keep the module part (`commit_timeout\t[jbd2]`). A zeroed text gives an empty
    /// table with [`Kallsyms::zeroed`] set.
    pub fn parse(text: String) -> Kallsyms {
        let mut syms = Vec::new();
        let mut zeroed = true;
        let base = text.as_ptr() as usize;
        for s in symbols(&text) {
            zeroed &= s.addr == 0;
            // `full_name` is a sub-slice of `text`: its offset inside it.
            let start = s.full_name.as_ptr() as usize - base;
            if let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(s.full_name.len())) {
                syms.push((s.addr, start, len));
            }
        }
        let zeroed = zeroed && !syms.is_empty();
        if zeroed {
            syms.clear();
        }
        syms.sort_by_key(|&(a, _, _)| a);
        Kallsyms { text, syms, zeroed }
    }

    /// Whether the file listed symbols but hid their addresses (all 0).
    pub fn zeroed(&self) -> bool {
        self.zeroed
    }

    fn name(&self, i: usize) -> Option<&str> {
        let &(_, s, l) = self.syms.get(i)?;
        self.text.get(s as usize..(s as usize + l as usize))
    }

    /// The symbol at exactly `addr` (the last alias in the file).
    pub fn exact(&self, addr: u64) -> Option<&str> {
        let end = self.syms.partition_point(|&(a, _, _)| a <= addr);
        match end.checked_sub(1) {
            Some(i) if self.syms.get(i).map(|s| s.0) == Some(addr) => self.name(i),
            _ => None,
        }
    }

    /// The symbol with the greatest address ≤ `addr`.
    pub fn containing(&self, addr: u64) -> Option<&str> {
        let end = self.syms.partition_point(|&(a, _, _)| a <= addr);
        self.name(end.checked_sub(1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "ffffffff81000000 T _stext\n\
ffffffff81000000 T startup_64\n\
ffffffff814203c0 t process_timeout\n\
ffffffff81420400 T schedule\n\
garbage line\n\
zz T notanaddress\n\
ffffffffc0000000 t commit_timeout\t[jbd2]\n";

    /// What a reader without CAP_SYSLOG gets.
    const ZEROED: &str = "0000000000000000 T _stext\n\
0000000000000000 t process_timeout\n\
0000000000000000 T schedule\n\
0000000000000000 t bpf_prog_6deef7357e7b4530_syscalls_enter\t[bpf]\n";

    #[test]
    fn lines() {
        let s = parse_line("ffffffffc0000000 t commit_timeout\t[jbd2]").expect("module line");
        assert_eq!((s.addr, s.kind, s.name, s.module), (0xffffffffc0000000, "t", "commit_timeout", Some("jbd2")));
        assert_eq!(s.full_name, "commit_timeout\t[jbd2]");
        assert_eq!(parse_line("ffffffff81000000 T _stext\n").map(|s| s.name), Some("_stext"));
        for bad in ["garbage line", "zz T x", "", "ffff T", "ffff T a b", "ffff  x"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
        assert_eq!(symbols(SAMPLE).count(), 5);
    }

    #[test]
    fn exact_and_containing() {
        let k = Kallsyms::parse(SAMPLE.to_string());
        assert!(!k.zeroed());
        assert_eq!(k.exact(0xffffffff814203c0), Some("process_timeout"));
        assert_eq!(k.exact(0xffffffff814203c4), None);
        assert_eq!(k.containing(0xffffffff814203c4), Some("process_timeout"));
        assert_eq!(k.exact(0xffffffff81000000), Some("startup_64"));
        assert_eq!(k.containing(0xffffffff81000010), Some("startup_64"));
        assert_eq!(k.containing(0x10), None);
        assert_eq!(k.exact(0xffffffffc0000000), Some("commit_timeout\t[jbd2]"));
        assert_eq!(k.containing(u64::MAX), Some("commit_timeout\t[jbd2]"));
    }

    #[test]
    fn zeroed_text_names_nothing() {
        assert!(is_zeroed(ZEROED));
        assert!(!is_zeroed(SAMPLE));
        assert!(!is_zeroed(""));
        let k = Kallsyms::parse(ZEROED.to_string());
        assert!(k.zeroed());
        // Not the last symbol of the file for every kernel frame (the defect), but nothing.
        assert_eq!(k.containing(0xffffffff814203c4), None);
        assert_eq!(k.exact(0), None);
        assert!(!Kallsyms::parse(String::new()).zeroed());
        // One real address among zeros (a symbol that really is at 0): not zeroed.
        let mixed = format!("{ZEROED}ffffffff81420400 T schedule\n");
        assert!(!is_zeroed(&mixed));
        assert!(!Kallsyms::parse(mixed).zeroed());
        assert!(zeroed_warning().contains("CAP_SYSLOG"));
    }

    #[test]
    fn addresses_by_name() {
        let t = "ffffffff81000000 T _stext\nffffffff81001000 t foo\nffffffffc0001000 t commit_timeout\t[jbd2]\nffffffff81002000 T foo\nzz T bad\n";
        let m = addresses(t);
        assert_eq!(m.get("_stext"), Some(&0xffffffff81000000));
        assert_eq!(m.get("foo"), Some(&0xffffffff81002000));
        assert!(!m.contains_key("commit_timeout"));
        assert!(!m.contains_key("bad"));
    }
}
