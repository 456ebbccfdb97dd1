//! Run-time targets and selections, resolved without libbpf (`flows`: `--port`, `--addr`,
//! `--state` as BPF globals). Attach targets: `--probe BINARY:GLOB` (user functions, read
//! from the binary's ELF symbols) and `--probe kernel:GLOB` (kernel and module functions, from
//! /proc/kallsyms, checked against the kernel's lists of what can take a kprobe). The loader
//! attaches configs whose programs have no target of their own (bare `SEC("uprobe")` /
//! `SEC("uretprobe")`) to these functions.
//!
//! `--probe` may be given several times, mixing kernel and user targets. Every function gets
//! a BPF cookie: its index in the run's function list. The config names a label
//! (`probe_label:`) that carries the cookie; ebpfx writes the index → name table into that
//! label's `static_map` decoder, in the YAML itself, so decoding, `--save-raw` and
//! `ebpfx render` need nothing else.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use serde_yaml::Value;

use crate::catalog::Resolved;
use crate::config::Config;
use crate::error::{config_err, usage_err};

pub mod elf;
pub mod flows;
pub mod glob;
pub mod kernel;
pub mod tasks;

pub use glob::glob_match;

/// A value for a BPF global (`const volatile` in the object), and the command-line flag it
/// comes from (for messages). The loader writes it before load (`loader::globals`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalValue {
    /// `--port`: named in errors.
    pub flag: String,
    /// The variable in the BPF C, e.g. `filter_port`.
    pub name: String,
    /// Native-endian bytes, exactly as large as the variable.
    pub bytes: Vec<u8>,
}

/// At most this many functions per run (each costs one or two probes).
pub const MAX_FUNCTIONS: usize = 1000;

/// One function to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// Offset of the function's first instruction in the file: what the kernel's uprobe takes
    /// (for a kernel function: its address, used only to tell aliases apart).
    pub file_offset: u64,
    /// The kernel module holding a kernel function (`None`: the kernel proper, or user code).
    pub module: Option<String>,
}

impl Function {
    pub fn user(name: &str, file_offset: u64) -> Function {
        Function { name: name.to_string(), file_offset, module: None }
    }
}

/// A resolved `--probe` argument: the binary and the functions matched in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the user wrote, for messages.
    pub spec: String,
    /// The binary, or `kernel` for kernel functions (attached as kprobes).
    pub binary: PathBuf,
    pub kernel: bool,
    pub functions: Vec<Function>,
    /// What the user should know: functions skipped and why.
    pub notes: Vec<String>,
}

/// Every `--probe` of a run, with how its programs attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSet {
    pub targets: Vec<Target>,
    /// User targets only, on Linux 6.6+: one uprobe_multi link per target and program instead
    /// of one uprobe per function (detaching a uprobe costs a grace period, once per link).
    pub uprobe_multi: bool,
    /// Kernel targets only, on Linux 5.18+: one kprobe_multi link per program. Attaching one
    /// kprobe per function costs the kernel a text patch and a grace period each: hundreds of
    /// functions (`__x64_sys_*`) take a minute to attach, or to unwind after a failure.
    pub kprobe_multi: bool,
}

impl ProbeSet {
    /// Builds the set and picks the attach kind the running kernel offers.
    pub fn new(targets: Vec<Target>) -> ProbeSet {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        ProbeSet::for_release(targets, &release)
    }

    /// As `new`, for a kernel release string (`EBPFX_NO_UPROBE_MULTI=1` and
    /// `EBPFX_NO_KPROBE_MULTI=1` force one probe per function).
    pub fn for_release(targets: Vec<Target>, release: &str) -> ProbeSet {
        let off = |v: &str| std::env::var_os(v).is_some_and(|v| v == "1");
        let all_user = targets.iter().all(|t| !t.kernel);
        let all_kernel = targets.iter().all(|t| t.kernel);
        let modules = targets.iter().flat_map(|t| &t.functions).any(|f| f.module.is_some());
        // kprobe_multi takes module functions from 6.5 on.
        let kernel_min = if modules { (6, 5) } else { (5, 18) };
        ProbeSet {
            uprobe_multi: all_user && !off("EBPFX_NO_UPROBE_MULTI") && release_at_least(release, (6, 6)),
            kprobe_multi: all_kernel && !off("EBPFX_NO_KPROBE_MULTI") && release_at_least(release, kernel_min),
            targets,
        }
    }

    /// The same set attached one probe per function (where a multi link failed).
    pub fn without_multi(&self) -> ProbeSet {
        ProbeSet { targets: self.targets.clone(), uprobe_multi: false, kprobe_multi: false }
    }

    /// (cookie, target, function) for every function, in cookie order.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &Target, &Function)> {
        self.targets
            .iter()
            .flat_map(|t| t.functions.iter().map(move |f| (t, f)))
            .enumerate()
            .map(|(i, (t, f))| (i as u64, t, f))
    }

    /// First cookie of each target (its functions' cookies follow in order).
    pub fn first_cookie(&self, target: usize) -> u64 {
        self.targets[..target].iter().map(|t| t.functions.len() as u64).sum()
    }

    /// Label text of each function in cookie order: its name, made unique where two functions
    /// share one (`BINARY:name` across targets, `name@0xOFFSET` within a binary).
    pub fn labels(&self) -> Vec<String> {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for (_, _, f) in self.entries() {
            *count.entry(f.name.as_str()).or_default() += 1;
        }
        let mut per_target: HashMap<(&std::path::Path, &str), usize> = HashMap::new();
        for (_, t, f) in self.entries() {
            *per_target.entry((t.binary.as_path(), f.name.as_str())).or_default() += 1;
        }
        self.entries()
            .map(|(_, t, f)| {
                if count[f.name.as_str()] == 1 {
                    return f.name.clone();
                }
                let short = t.binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if per_target[&(t.binary.as_path(), f.name.as_str())] == 1 {
                    format!("{short}:{}", f.name)
                } else {
                    format!("{short}:{}@{:#x}", f.name, f.file_offset)
                }
            })
            .collect()
    }

    /// Cookie (index) → label, as a `static_map`.
    pub fn static_map(&self) -> BTreeMap<String, String> {
        self.labels().into_iter().enumerate().map(|(i, l)| (i.to_string(), l)).collect()
    }

    /// The target and function of a cookie (index across all targets).
    pub fn function_at(&self, index: usize) -> Option<(&Target, &Function)> {
        self.entries().nth(index).map(|(_, t, f)| (t, f))
    }

    pub fn function_count(&self) -> usize {
        self.targets.iter().map(|t| t.functions.len()).sum()
    }
}

/// The function index of a per-function copy of a `--probe` program (`NAME__slotNNN`, see
/// bpf/slots.bpf.h), for kernels without BPF cookies; `None` for any other program.
pub fn slot_of(program: &str) -> Option<usize> {
    let (_, digits) = program.rsplit_once("__slot")?;
    if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `BINARY:GLOB` → (binary, glob).
pub fn parse_spec(spec: &str) -> anyhow::Result<(&str, &str)> {
    let (binary, pattern) = spec.split_once(':').ok_or_else(|| {
        usage_err(format!(
            "--probe {spec:?}: expected BINARY:FUNCTION, e.g. /usr/bin/python3:PyEval_EvalCode, libc.so.6:'malloc*' or kernel:'vfs_*'"
        ))
    })?;
    if binary.is_empty() || pattern.is_empty() {
        return Err(usage_err(format!("--probe {spec:?}: both BINARY and FUNCTION are needed (BINARY:FUNCTION)")));
    }
    Ok((binary, pattern))
}

/// The functions of `all` matching `pattern`, one per file offset (the plainest alias named:
/// fewest leading underscores, then shortest, then first alphabetically), sorted by name.
pub fn select(all: &[Function], pattern: &str) -> Vec<Function> {
    let mut by_offset: BTreeMap<u64, &Function> = BTreeMap::new();
    let rank = |n: &str| (n.len() - n.trim_start_matches('_').len(), n.len(), n.to_string());
    for f in all.iter().filter(|f| glob_match(pattern, &f.name)) {
        let e = by_offset.entry(f.file_offset).or_insert(f);
        if rank(&f.name) < rank(&e.name) {
            *e = f;
        }
    }
    let mut out: Vec<Function> = by_offset.into_values().cloned().collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.file_offset.cmp(&b.file_offset)));
    out
}

/// Up to `n` function names that look like what `pattern` asked for: those containing its
/// longest literal piece (case-insensitive), else those sharing its first three characters.
pub fn close_names(all: &[Function], pattern: &str, n: usize) -> Vec<String> {
    let piece = pattern.split(['*', '?']).max_by_key(|s| s.len()).unwrap_or("").to_lowercase();
    let mut names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut hits: Vec<&str> = if piece.is_empty() {
        Vec::new()
    } else {
        names.iter().copied().filter(|s| s.to_lowercase().contains(&piece)).collect()
    };
    if hits.is_empty() {
        let head: String = piece.chars().take(3).collect();
        if !head.is_empty() {
            hits = names.iter().copied().filter(|s| s.to_lowercase().starts_with(&head)).collect();
        }
    }
    hits.sort_by_key(|s| (s.len(), s.to_string()));
    hits.into_iter().take(n).map(str::to_string).collect()
}

fn no_match(spec: &str, what: &str, all: &[Function], pattern: &str) -> anyhow::Error {
    let close = close_names(all, pattern, 8);
    let hint = if close.is_empty() { String::new() } else { format!("; close names: {}", close.join(", ")) };
    usage_err(format!("--probe {spec}: no function in {what} matches {pattern:?}{hint}"))
}

/// Kernel functions of `kallsyms` text matching `pattern`, without those `probeable` says
/// cannot take a kprobe (counted in a note; an exact name that cannot is an error).
pub fn resolve_kernel(
    spec: &str,
    pattern: &str,
    kallsyms: &str,
    probeable: &kernel::Probeable,
) -> anyhow::Result<Target> {
    // Without CAP_SYSLOG (kernel.kptr_restrict) every address reads 0: kprobes go by name, and
    // the reader tells functions apart by their place in the list instead.
    let all = kernel::kallsyms_functions(kallsyms);
    if all.is_empty() {
        return Err(usage_err(format!(
            "--probe {spec}: /proc/kallsyms lists no kernel functions (hidden from this user? kernel.kptr_restrict, or CAP_SYSLOG missing)"
        )));
    }
    // One per name: a kprobe names its function, and static functions of one name in several
    // files cannot be told apart by name.
    let mut seen = HashSet::new();
    let matched: Vec<Function> = select(&all, pattern).into_iter().filter(|f| seen.insert(f.name.clone())).collect();
    if matched.is_empty() {
        return Err(no_match(spec, "the kernel or its loaded modules", &all, pattern));
    }
    let mut functions = Vec::new();
    let mut skipped: Vec<(String, &'static str)> = Vec::new();
    for f in matched {
        match probeable.refusal(&f) {
            Some(why) => skipped.push((f.name, why)),
            None => functions.push(f),
        }
    }
    let mut notes = probeable.notes.clone();
    if functions.is_empty() {
        let detail: Vec<String> = skipped.iter().take(5).map(|(n, why)| format!("{n}: {why}")).collect();
        return Err(usage_err(format!(
            "--probe {spec}: no matching function can take a kprobe ({}{})",
            detail.join("; "),
            if skipped.len() > 5 { format!("; and {} more", skipped.len() - 5) } else { String::new() }
        )));
    }
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().take(5).map(|(n, _)| n.as_str()).collect();
        notes.push(format!(
            "--probe {spec}: skipped {} of {} matching functions that cannot take a kprobe (not in available_filter_functions or blacklisted: {}{})",
            skipped.len(),
            skipped.len() + functions.len(),
            names.join(", "),
            if skipped.len() > 5 { ", ..." } else { "" }
        ));
    }
    Ok(Target { spec: spec.to_string(), binary: PathBuf::from("kernel"), kernel: true, functions, notes })
}

/// User functions of the ELF file `path` matching `pattern`. IFUNC symbols (`strcmp` in libc)
/// are resolved to the implementation this CPU uses where ebpfx itself has the library
/// loaded; elsewhere they are refused with the reason.
pub fn resolve_user(spec: &str, pattern: &str, path: PathBuf) -> anyhow::Result<Target> {
    let data = std::fs::read(&path).map_err(|e| anyhow!("--probe {spec}: reading {}: {e}", path.display()))?;
    let syms =
        elf::elf_functions(&data).map_err(|e| usage_err(format!("--probe {spec}: {}: {e:#}", path.display())))?;
    if syms.functions.is_empty() && syms.ifuncs.is_empty() {
        return Err(usage_err(format!(
            "--probe {spec}: {} has no function symbols (stripped of .symtab and without .dynsym?)",
            path.display()
        )));
    }
    let mut functions = select(&syms.functions, pattern);
    let mut notes = Vec::new();
    let mut refused = Vec::new();
    let have: HashSet<String> = functions.iter().map(|f| f.name.clone()).collect();
    for ifunc in select(&syms.ifuncs, pattern) {
        if have.contains(&ifunc.name) {
            continue;
        }
        match elf::resolve_ifunc(&path, &ifunc.name) {
            Some(offset) if !functions.iter().any(|f| f.file_offset == offset) => {
                functions.push(Function::user(&ifunc.name, offset))
            }
            Some(_) => {}
            None => refused.push(ifunc.name),
        }
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name).then(a.file_offset.cmp(&b.file_offset)));
    let why = "an IFUNC (STT_GNU_IFUNC) symbol: the dynamic linker picks its implementation per CPU when the library loads, and ebpfx can resolve that only for libraries it has loaded itself (such as libc); probe an implementation by name instead (e.g. __strcmp_avx2)";
    if functions.is_empty() {
        if let Some(name) = refused.first() {
            return Err(usage_err(format!("--probe {spec}: {name} in {} is {why}", path.display())));
        }
        let mut all = syms.functions;
        all.extend(syms.ifuncs);
        return Err(no_match(spec, &path.display().to_string(), &all, pattern));
    }
    if !refused.is_empty() {
        notes.push(format!("--probe {spec}: skipped {} ({}): each is {why}", refused.len(), refused.join(", ")));
    }
    Ok(Target { spec: spec.to_string(), binary: path, kernel: false, functions, notes })
}

/// Resolves one `--probe BINARY:GLOB` (or `kernel:GLOB`) into the functions to attach.
pub fn resolve(spec: &str) -> anyhow::Result<Target> {
    let (binary, pattern) = parse_spec(spec)?;
    if binary == "kernel" {
        let text = crate::kallsyms::read_system()
            .map_err(|e| anyhow!("--probe {spec}: kernel functions come from {}: {e}", crate::kallsyms::PATH))?;
        return resolve_kernel(spec, pattern, &text, &kernel::Probeable::of_running_kernel());
    }
    resolve_user(spec, pattern, elf::resolve_binary(binary)?)
}

/// Resolves every `--probe` of a run: functions given twice (same binary and offset) are kept
/// once, and the total is bounded by [`MAX_FUNCTIONS`].
pub fn resolve_all(specs: &[String]) -> anyhow::Result<ProbeSet> {
    let mut targets: Vec<Target> = Vec::new();
    for spec in specs {
        let mut t = resolve(spec)?;
        let before = t.functions.len();
        t.functions.retain(|f| {
            !targets.iter().any(|o| o.binary == t.binary && o.functions.iter().any(|g| g.file_offset == f.file_offset))
        });
        if t.functions.is_empty() {
            return Err(usage_err(format!(
                "--probe {spec}: its {before} functions are all given by an earlier --probe"
            )));
        }
        targets.push(t);
    }
    let set = ProbeSet::new(targets);
    let n = set.function_count();
    if n > MAX_FUNCTIONS {
        let parts: Vec<String> = set
            .targets
            .iter()
            .map(|t| format!("{} functions in {} ({})", t.functions.len(), t.binary.display(), t.spec))
            .collect();
        return Err(usage_err(format!(
            "--probe matches {}, {n} in all: more than the {MAX_FUNCTIONS} ebpfx attaches at once: narrow the pattern",
            parts.join(", ")
        )));
    }
    Ok(set)
}

/// Kernel (major, minor) of a release string such as `6.18.0-1-amd64`, compared with `min`.
pub fn release_at_least(release: &str, min: (u32, u32)) -> bool {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(a), Some(b)) => (a, b) >= min,
        _ => false,
    }
}

/// Checks `--probe` against the configs, resolves it, and writes the function names into the
/// `probe_label` static_map of every config that has one (its YAML and parsed config). Notes
/// (functions skipped and why) go to stderr.
pub fn apply(resolved: &mut [Resolved], specs: &[String]) -> anyhow::Result<Option<Arc<ProbeSet>>> {
    let needing: Vec<String> =
        resolved.iter().filter(|r| r.config.probe_label.is_some()).map(|r| r.config.name.clone()).collect();
    if specs.is_empty() {
        if let Some(name) = needing.first() {
            return Err(usage_err(format!(
                "{name} needs --probe BINARY:FUNCTION (e.g. --probe /usr/bin/python3:PyEval_EvalCode, --probe libc.so.6:'malloc*', --probe kernel:vfs_read)"
            )));
        }
        return Ok(None);
    }
    if let Some(r) = resolved.iter().find(|r| r.config.probe_label.is_none()) {
        return Err(usage_err(format!(
            "--probe is not supported by config {} (it attaches to fixed targets)",
            r.config.name
        )));
    }
    let set = resolve_all(specs)?;
    for note in set.targets.iter().flat_map(|t| &t.notes) {
        eprintln!("ebpfx: {note}");
    }
    let map = set.static_map();
    for r in resolved.iter_mut() {
        let Some(label) = r.config.probe_label.clone() else { continue };
        let yaml = fill_static_map(&r.yaml, &label, &map)
            .map_err(|e| config_err(format!("config {}: probe_label {label:?}: {e}", r.config.origin)))?;
        r.config = Config::parse(&r.config.name, &r.config.origin, &yaml)?;
        r.yaml = yaml;
    }
    Ok(Some(Arc::new(set)))
}

/// Rewrites the YAML so that every `static_map` decoder of label `label` holds `map`.
pub fn fill_static_map(yaml: &str, label: &str, map: &BTreeMap<String, String>) -> Result<String, String> {
    let mut root: Value = serde_yaml::from_str(yaml).map_err(|e| format!("YAML syntax error: {e}"))?;
    let table: serde_yaml::Mapping =
        map.iter().map(|(k, v)| (Value::String(k.clone()), Value::String(v.clone()))).collect();
    let mut filled = 0usize;
    let metrics = root.get_mut("metrics").and_then(Value::as_mapping_mut).ok_or("no metrics")?;
    for (_, list) in metrics.iter_mut() {
        let Some(list) = list.as_sequence_mut() else { continue };
        for metric in list {
            let Some(labels) = metric.get_mut("labels").and_then(Value::as_sequence_mut) else { continue };
            for l in labels.iter_mut().filter(|l| l.get("name").and_then(Value::as_str) == Some(label)) {
                let Some(decoders) = l.get_mut("decoders").and_then(Value::as_sequence_mut) else { continue };
                for d in decoders.iter_mut().filter(|d| d.get("name").and_then(Value::as_str) == Some("static_map")) {
                    if let Some(d) = d.as_mapping_mut() {
                        d.insert(Value::String("static_map".into()), Value::Mapping(table.clone()));
                        filled += 1;
                    }
                }
            }
        }
    }
    if filled == 0 {
        return Err(format!("no label {label:?} with a static_map decoder to hold the function names"));
    }
    serde_yaml::to_string(&root).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, off: u64) -> Function {
        Function::user(name, off)
    }

    fn target(binary: &str, kernel: bool, fs: &[(&str, u64)]) -> Target {
        Target {
            spec: format!("{binary}:x"),
            binary: PathBuf::from(binary),
            kernel,
            functions: fs.iter().map(|(n, o)| f(n, *o)).collect(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn kernel_releases() {
        assert!(release_at_least("6.18.0-1-amd64\n", (6, 6)));
        assert!(release_at_least("6.6.1", (6, 6)));
        assert!(!release_at_least("6.5.13-rt", (6, 6)));
        assert!(!release_at_least("5.15.0", (6, 6)));
        assert!(!release_at_least("", (6, 6)));
    }

    #[test]
    fn specs() {
        assert_eq!(parse_spec("libc.so.6:malloc*").expect("ok"), ("libc.so.6", "malloc*"));
        assert!(parse_spec("malloc").is_err());
        assert!(parse_spec(":malloc").is_err());
        assert!(parse_spec("/bin/x:").is_err());
    }

    #[test]
    fn selection_dedups_aliases_and_sorts() {
        let all = [f("__libc_malloc", 0x10), f("malloc", 0x10), f("malloc_trim", 0x30), f("free", 0x40)];
        let s = select(&all, "*malloc*");
        assert_eq!(s, vec![f("malloc", 0x10), f("malloc_trim", 0x30)]);
        assert!(select(&all, "nothing*").is_empty());
        // No name holds "malloc_x": names sharing its first three characters instead.
        assert_eq!(close_names(&all, "Malloc_x*", 3), vec!["malloc".to_string(), "malloc_trim".to_string()]);
        assert_eq!(close_names(&all, "*LIBC_mall?", 3), vec!["__libc_malloc".to_string()]);
    }

    const KALLSYMS: &str = "ffffffff81001000 t vfs_read\nffffffff81000ff0 t __pfx_vfs_read\nffffffff81004000 T vfs_caches_init\nffffffff81005000 T vfs_write\nffffffff81007000 t show_map\nffffffff81008000 t show_map\nffffffff81009000 T __x64_sys_read\nffffffff8100a000 T __x64_sys_write\nffffffffc0001000 t ext4_file_read_iter\t[ext4]\nffffffffc0001100 t ext4_file_write_iter\t[ext4]\n";

    fn lists(available: &str, blacklist: &str) -> kernel::Probeable {
        kernel::Probeable {
            available: Some(kernel::parse_available(available)),
            blacklist: Some(kernel::parse_blacklist(blacklist)),
            notes: Vec::new(),
        }
    }

    fn names(t: &Target) -> Vec<&str> {
        t.functions.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn kernel_glob_skips_what_cannot_take_a_kprobe_and_says_how_many() {
        // vfs_caches_init is __init: in kallsyms, not in available_filter_functions.
        let p = lists("vfs_read\nvfs_write\n", "");
        let t = resolve_kernel("kernel:vfs_*", "vfs_*", KALLSYMS, &p).expect("resolves");
        assert_eq!(names(&t), ["vfs_read", "vfs_write"]);
        assert!(t.kernel);
        assert_eq!(t.notes.len(), 1, "{:?}", t.notes);
        assert!(t.notes[0].contains("skipped 1 of 3") && t.notes[0].contains("vfs_caches_init"), "{}", t.notes[0]);
        // Blacklisted functions are skipped too.
        let p = lists("vfs_read\nvfs_write\nvfs_caches_init\n", "0xffffffff81005000-0xffffffff81005040\tvfs_write\n");
        let t = resolve_kernel("kernel:vfs_*", "vfs_*", KALLSYMS, &p).expect("resolves");
        assert_eq!(names(&t), ["vfs_caches_init", "vfs_read"]);
        // An exact name that cannot be probed is an error naming the reason.
        let p = lists("vfs_read\n", "");
        let err = resolve_kernel("kernel:vfs_caches_init", "vfs_caches_init", KALLSYMS, &p).expect_err("refused");
        assert!(format!("{err:#}").contains("available_filter_functions"), "{err:#}");
        assert_eq!(crate::error::exit_code(&err), 2);
        // Hidden addresses (no CAP_SYSLOG): functions still resolve by name.
        let zeroed = KALLSYMS.lines().map(|l| format!("0000000000000000{}\n", &l[16..])).collect::<String>();
        let t = resolve_kernel("kernel:vfs_*", "vfs_*", &zeroed, &p).expect("resolves");
        assert_eq!(names(&t), ["vfs_read"]);
        // Without the lists (unreadable), nothing is skipped.
        let t = resolve_kernel("kernel:vfs_*", "vfs_*", KALLSYMS, &kernel::Probeable::default()).expect("resolves");
        assert_eq!(names(&t), ["vfs_caches_init", "vfs_read", "vfs_write"]);
    }

    #[test]
    fn kernel_glob_matches_module_functions_and_one_per_name() {
        let p = lists("ext4_file_read_iter [ext4]\next4_file_write_iter [ext4]\nshow_map\n", "");
        let t = resolve_kernel("kernel:ext4_file_*", "ext4_file_*", KALLSYMS, &p).expect("module functions match");
        assert_eq!(names(&t), ["ext4_file_read_iter", "ext4_file_write_iter"]);
        assert!(t.functions.iter().all(|f| f.module.as_deref() == Some("ext4")));
        let t = resolve_kernel("kernel:show_map", "show_map", KALLSYMS, &p).expect("resolves");
        assert_eq!(names(&t), ["show_map"], "two static functions of one name: one kprobe by name");
        let err = resolve_kernel("kernel:nosuch_*", "nosuch_*", KALLSYMS, &p).expect_err("no match");
        assert!(format!("{err:#}").contains("no function in the kernel or its loaded modules"), "{err:#}");
    }

    #[test]
    fn attach_kind_by_kernel_and_targets() {
        let k = target("kernel", true, &[("vfs_read", 1)]);
        let u = target("/bin/x", false, &[("main", 0x10)]);
        let s = ProbeSet::for_release(vec![k.clone()], "6.1.0");
        assert!(s.kprobe_multi && !s.uprobe_multi);
        assert!(!ProbeSet::for_release(vec![k.clone()], "5.10.0").kprobe_multi);
        let s = ProbeSet::for_release(vec![u.clone()], "6.6.0");
        assert!(s.uprobe_multi && !s.kprobe_multi);
        // Mixed: one probe per function (a program loads for one multi-link kind at most).
        let s = ProbeSet::for_release(vec![k.clone(), u.clone()], "6.18.0");
        assert!(!s.uprobe_multi && !s.kprobe_multi);
        // Module functions need kprobe_multi's module support (6.5+).
        let mut km = k.clone();
        km.functions[0].module = Some("ext4".into());
        assert!(!ProbeSet::for_release(vec![km.clone()], "6.1.0").kprobe_multi);
        assert!(ProbeSet::for_release(vec![km], "6.6.0").kprobe_multi);
    }

    #[test]
    fn cookies_and_labels_span_every_target() {
        let k = target("kernel", true, &[("vfs_read", 1), ("main", 2)]);
        let u = target("/bin/x", false, &[("main", 0x10), ("helper", 0x20), ("helper", 0x30)]);
        let s = ProbeSet::for_release(vec![k, u], "6.18.0");
        let cookies: Vec<u64> = s.entries().map(|(c, _, _)| c).collect();
        assert_eq!(cookies, [0, 1, 2, 3, 4]);
        assert_eq!(s.first_cookie(1), 2);
        assert_eq!(s.labels(), ["vfs_read", "kernel:main", "x:main", "x:helper@0x20", "x:helper@0x30"]);
        let map = s.static_map();
        assert_eq!(map.get("2").map(String::as_str), Some("x:main"));
        let single = ProbeSet::for_release(vec![target("/bin/x", false, &[("main", 0x10)])], "6.18.0");
        assert_eq!(single.labels(), ["main"]);
    }

    #[test]
    fn slot_copies_index_functions_across_every_target() {
        assert_eq!(slot_of("funccount_entry__slot000"), Some(0));
        assert_eq!(slot_of("funclatency_return__slot127"), Some(127));
        assert_eq!(slot_of("funccount_entry"), None);
        assert_eq!(slot_of("x__slot12"), None);
        assert_eq!(slot_of("x__slot1a2"), None);
        // Copy i attaches to function i of the whole set: the second target's first function
        // follows the first target's functions, as its cookie would.
        let k = target("kernel", true, &[("vfs_read", 1), ("vfs_write", 2)]);
        let u = target("/bin/x", false, &[("main", 0x10)]);
        let s = ProbeSet::for_release(vec![k, u], "5.10.0");
        let at = |i| s.function_at(i).map(|(t, f)| (t.kernel, f.name.as_str()));
        assert_eq!(
            (at(0), at(1), at(2), at(3)),
            (Some((true, "vfs_read")), Some((true, "vfs_write")), Some((false, "main")), None)
        );
    }

    #[test]
    fn repeated_probes_mix_kernel_and_user_targets() {
        let exe = std::env::current_exe().expect("exe").display().to_string();
        // Kernel and user targets in one run; cookies run on across them.
        let set = resolve_all(&[
            format!("{exe}:ebpfx_probe_unit_target"),
            "libc.so.6:malloc".to_string(),
            "kernel:vfs_read".to_string(),
        ])
        .expect("resolves");
        assert_eq!(set.targets.len(), 3);
        assert!(set.targets[2].kernel && !set.targets[0].kernel);
        assert!(!set.uprobe_multi && !set.kprobe_multi, "mixed: one probe per function");
        // The same function twice is kept once; a --probe adding nothing is refused.
        assert_eq!(set.labels().len(), set.function_count());
        let err = resolve_all(&["libc.so.6:malloc".to_string(), "libc.so.6:mallo?".to_string()]).expect_err("dup");
        assert!(format!("{err:#}").contains("earlier --probe"), "{err:#}");
    }

    #[test]
    fn ifunc_symbols_resolve_to_their_implementation() {
        let t = resolve("libc.so.6:strcmp").expect("strcmp (an IFUNC) resolves in libc");
        assert_eq!(names(&t), ["strcmp"]);
        let libc = elf::resolve_binary("libc.so.6").expect("libc");
        let syms = elf::elf_functions(&std::fs::read(&libc).expect("read")).expect("parse");
        let resolver = syms.ifuncs.iter().find(|f| f.name == "strcmp").expect("ifunc").file_offset;
        assert_ne!(t.functions[0].file_offset, resolver, "the implementation, not the resolver");
        // A copy of libc is not the library this process has loaded: its IFUNCs are refused
        // with the reason, and a glob skips them with a note.
        let dir = std::env::temp_dir().join(format!("ebpfx-ifunc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let copy = dir.join("libc-copy.so.6");
        std::fs::copy(&libc, &copy).expect("copy libc");
        let err = resolve_user("copy:strcmp", "strcmp", copy.clone()).expect_err("refused");
        let msg = format!("{err:#}");
        assert!(msg.contains("IFUNC (STT_GNU_IFUNC)") && msg.contains("__strcmp_avx2"), "{msg}");
        assert_eq!(crate::error::exit_code(&err), 2);
        let t = resolve_user("copy:strc*", "strc*", copy).expect("plain functions resolve");
        assert!(t.notes.iter().any(|n| n.contains("strcmp") && n.contains("IFUNC")), "{:?}", t.notes);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn static_map_filled_in_yaml() {
        let yaml = "probe_label: function\nmetrics:\n  counters:\n    - name: c_total\n      help: h\n      labels:\n        - name: function\n          size: 4\n          decoders:\n            - name: uint\n            - name: static_map\n              static_map: {}\n";
        let map: BTreeMap<String, String> = [("0".to_string(), "foo".to_string())].into();
        let out = fill_static_map(yaml, "function", &map).expect("filled");
        let cfg = Config::parse("t", "t.yaml", &out).expect("parses");
        let d = &cfg.metrics[0].labels[0].decoders[1];
        assert_eq!(d.static_map.as_ref().and_then(|m| m.get("0")).map(String::as_str), Some("foo"));
        assert!(fill_static_map(yaml, "other", &map).is_err());
    }
}
