//! User-space function targets given at run time: `--probe BINARY:GLOB` for configs whose
//! programs have no attach target of their own (bare `SEC("uprobe")` / `SEC("uretprobe")`,
//! which libbpf cannot auto-attach).
//!
//! Design: ebpfx resolves the binary (a path, or a name looked up like libbpf does: `$PATH` for
//! programs, the library path for `*.so*`), reads its ELF symbol tables (`.symtab` and
//! `.dynsym`) with the `object` crate, keeps the functions whose names match the glob (one per
//! address: aliases share a probe), and attaches every such program once per function with the
//! function's index in that list as BPF cookie. The config names a label (`probe_label:`) that
//! carries the cookie; ebpfx writes the index → name table into that label's `static_map`
//! decoder, in the YAML itself, so decoding, `--save-raw` and `ebpfx render` need nothing else.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::anyhow;
use libbpf_rs::{KprobeOpts, Link, ProgramMut, UprobeMultiOpts, UprobeOpts};
use object::{Object, ObjectSection, ObjectSymbol, SymbolFlags, SymbolKind, SymbolSection};
use serde_yaml::Value;

use crate::catalog::Resolved;
use crate::config::Config;
use crate::error::{config_err, usage_err};

/// At most this many functions per `--probe` (each costs one or two uprobes).
pub const MAX_FUNCTIONS: usize = 1000;

/// One function to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// Offset of the function's first instruction in the file: what the kernel's uprobe takes
    /// (for a kernel function: its address, used only to tell aliases apart).
    pub file_offset: u64,
}

/// A resolved `--probe`: the binary and the functions matched in it, in cookie order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the user wrote, for messages.
    pub spec: String,
    /// The binary, or `kernel` for kernel functions (attached as kprobes).
    pub binary: PathBuf,
    pub kernel: bool,
    /// Attach each program with one uprobe_multi link (Linux 6.6+) instead of one uprobe per
    /// function: detaching a uprobe costs the kernel a grace period (~0.1 s), once per link.
    pub multi: bool,
    pub functions: Vec<Function>,
}

impl Target {
    /// Cookie (index) → function name, as a `static_map`.
    pub fn static_map(&self) -> BTreeMap<String, String> {
        self.functions.iter().enumerate().map(|(i, f)| (i.to_string(), f.name.clone())).collect()
    }
}

/// `BINARY:GLOB` → (binary, glob).
pub fn parse_spec(spec: &str) -> anyhow::Result<(&str, &str)> {
    let (binary, pattern) = spec.split_once(':').ok_or_else(|| {
        usage_err(format!(
            "--probe {spec:?}: expected BINARY:FUNCTION, e.g. /usr/bin/python3:PyEval_EvalCode or libc.so.6:'malloc*'"
        ))
    })?;
    if binary.is_empty() || pattern.is_empty() {
        return Err(usage_err(format!("--probe {spec:?}: both BINARY and FUNCTION are needed (BINARY:FUNCTION)")));
    }
    Ok((binary, pattern))
}

/// Shell-style glob: `*` any run of characters, `?` one character, everything else literal.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0usize, 0usize);
    // Position after the last `*` and the name position it was tried at (classic backtracking).
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Where libbpf looks for a library when given a bare name.
fn library_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    let multiarch = match std::env::consts::ARCH {
        "aarch64" => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    for d in ["/usr/lib64", "/usr/lib", "/lib64", "/lib"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from(format!("/lib/{multiarch}")));
    dirs.push(PathBuf::from(format!("/usr/lib/{multiarch}")));
    dirs
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// A path (with `/`) as is; a library name (`*.so`, `*.so.N`) through LD_LIBRARY_PATH and the
/// system library directories; any other name through `$PATH`.
pub fn resolve_binary(name: &str) -> anyhow::Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        if !p.is_file() {
            return Err(usage_err(format!("--probe: binary {name} not found")));
        }
        return Ok(p);
    }
    let is_library = name.ends_with(".so") || name.contains(".so.");
    if is_library {
        let dirs = library_dirs();
        if let Some(p) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            return Ok(p);
        }
        let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(usage_err(format!(
            "--probe: library {name} not found in LD_LIBRARY_PATH or {} (give its full path)",
            list.join(":")
        )));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/bin"));
    dirs.push(PathBuf::from("/usr/sbin"));
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| usage_err(format!("--probe: binary {name:?} not found in $PATH (give its path)")))
}

/// Every function defined in the ELF image `data` (from `.symtab` and `.dynsym`), with its file
/// offset; aliases (several names at one address) appear once per name.
pub fn elf_functions(data: &[u8]) -> anyhow::Result<Vec<Function>> {
    let file = object::File::parse(data).map_err(|e| anyhow!("not an ELF file we can read: {e}"))?;
    let mut out = Vec::new();
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        // STT_FUNC only: an STT_GNU_IFUNC symbol is a resolver run once, not the function.
        let is_func = matches!(sym.flags(), SymbolFlags::Elf { st_info, .. } if st_info & 0xf == object::elf::STT_FUNC);
        if sym.kind() != SymbolKind::Text || !is_func || !sym.is_definition() {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        let SymbolSection::Section(index) = sym.section() else { continue };
        let Ok(section) = file.section_by_index(index) else { continue };
        let Some((offset, _)) = section.file_range() else { continue };
        if name.is_empty() || sym.address() < section.address() {
            continue;
        }
        out.push(Function { name: name.to_string(), file_offset: sym.address() - section.address() + offset });
    }
    Ok(out)
}

/// The functions of `all` matching `pattern`, one per file offset (the plainest alias named:
/// fewest leading underscores, then shortest, then first alphabetically), sorted by name.
pub fn select(all: &[Function], pattern: &str) -> Vec<Function> {
    let mut by_offset: BTreeMap<u64, &str> = BTreeMap::new();
    let rank = |n: &str| (n.len() - n.trim_start_matches('_').len(), n.len(), n.to_string());
    for f in all.iter().filter(|f| glob_match(pattern, &f.name)) {
        let e = by_offset.entry(f.file_offset).or_insert(&f.name);
        if rank(&f.name) < rank(e) {
            *e = &f.name;
        }
    }
    let mut out: Vec<Function> =
        by_offset.into_iter().map(|(file_offset, name)| Function { name: name.to_string(), file_offset }).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
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

/// Kernel functions from /proc/kallsyms text: `t`/`T` symbols of the kernel proper (no
/// module), without compiler-made local variants such as `foo.isra.0` that kprobes cannot name.
pub fn kallsyms_functions(text: &str) -> Vec<Function> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (addr, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || !matches!(kind, "t" | "T") || name.contains(['.', '\t']) {
                return None;
            }
            Some(Function { name: name.to_string(), file_offset: u64::from_str_radix(addr, 16).ok()? })
        })
        .collect()
}

/// Resolves `--probe BINARY:GLOB` (or `kernel:GLOB`) into the functions to attach.
pub fn resolve(spec: &str) -> anyhow::Result<Target> {
    let (binary, pattern) = parse_spec(spec)?;
    let kernel = binary == "kernel";
    let (path, all) = if kernel {
        let text = std::fs::read_to_string("/proc/kallsyms")
            .map_err(|e| anyhow!("--probe {spec}: kernel functions come from /proc/kallsyms: {e}"))?;
        (PathBuf::from("kernel"), kallsyms_functions(&text))
    } else {
        let path = resolve_binary(binary)?;
        let data = std::fs::read(&path).map_err(|e| anyhow!("--probe: reading {}: {e}", path.display()))?;
        let all = elf_functions(&data).map_err(|e| usage_err(format!("--probe: {}: {e:#}", path.display())))?;
        (path, all)
    };
    if all.is_empty() {
        return Err(usage_err(format!(
            "--probe: {} has no function symbols (stripped of .symtab and without .dynsym, or kallsyms hidden?)",
            path.display()
        )));
    }
    let functions = select(&all, pattern);
    if functions.is_empty() {
        let close = close_names(&all, pattern, 8);
        let hint = if close.is_empty() { String::new() } else { format!("; close names: {}", close.join(", ")) };
        return Err(usage_err(format!("--probe: no function in {} matches {pattern:?}{hint}", path.display())));
    }
    if functions.len() > MAX_FUNCTIONS {
        return Err(usage_err(format!(
            "--probe: {pattern:?} matches {} functions in {}, more than the {MAX_FUNCTIONS} ebpfx attaches at once: narrow the pattern",
            functions.len(),
            path.display()
        )));
    }
    let multi = !kernel && kernel_has_uprobe_multi();
    Ok(Target { spec: spec.to_string(), binary: path, kernel, multi, functions })
}

/// Whether the running kernel has uprobe_multi links (Linux 6.6+, by its release number).
/// `EBPFX_NO_UPROBE_MULTI=1` forces one uprobe per function (the path of older kernels).
fn kernel_has_uprobe_multi() -> bool {
    if std::env::var_os("EBPFX_NO_UPROBE_MULTI").is_some_and(|v| v == "1") {
        return false;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    release_at_least(&release, (6, 6))
}

/// `6.18.0-1-amd64` → compares (major, minor) with `min`.
pub fn release_at_least(release: &str, min: (u32, u32)) -> bool {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(a), Some(b)) => (a, b) >= min,
        _ => false,
    }
}

/// Before load: picks the programs that attach to the `--probe` functions. Where the kernel has
/// BPF cookies (Linux 5.15+) those are the plain programs, each attached to every function with
/// the function's index as cookie (through uprobe_multi links on 6.6+). Where it has none, the
/// object's per-function copies `NAME__slotNNN` (bpf/slots.bpf.h) are loaded instead, copy i for
/// function i, as many as there are functions; the others are not loaded.
pub fn prepare_programs(open: &mut libbpf_rs::OpenObject, target: Option<&Target>) -> anyhow::Result<()> {
    let cookies = target.is_none() || kernel_has_attach_cookie();
    let wanted = target.map_or(0, |t| t.functions.len());
    let mut slots = 0usize;
    let mut has_slots = false;
    for mut prog in open.progs_mut() {
        if probe_section(&prog.section().to_string_lossy()).is_none() {
            continue;
        }
        match slot_of(&prog.name().to_string_lossy()) {
            Some(i) => {
                has_slots = true;
                slots = slots.max(i + 1);
                prog.set_autoload(!cookies && i < wanted);
            }
            None if !cookies => {} // decided below: only when the object has copies to use
            None => {
                if target.is_some_and(|t| t.multi) {
                    prog.set_attach_type(libbpf_rs::ProgramAttachType::TraceUprobeMulti);
                }
            }
        }
    }
    if cookies || !has_slots {
        return Ok(());
    }
    if wanted > slots {
        let spec = target.map(|t| t.spec.as_str()).unwrap_or_default();
        return Err(usage_err(format!(
            "--probe {spec}: matches {wanted} functions, but this kernel has no BPF cookies (bpf_get_attach_cookie, Linux 5.15+), and without them ebpfx tells at most {slots} functions apart: narrow the pattern"
        )));
    }
    for mut prog in open.progs_mut() {
        if probe_section(&prog.section().to_string_lossy()).is_some()
            && slot_of(&prog.name().to_string_lossy()).is_none()
        {
            prog.set_autoload(false);
        }
    }
    Ok(())
}

/// The function index of a per-function copy of a `--probe` program (`NAME__slotNNN`, see
/// bpf/slots.bpf.h); `None` for any other program.
pub fn slot_of(program: &str) -> Option<usize> {
    let (_, digits) = program.rsplit_once("__slot")?;
    if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether programs attached to functions can read a BPF cookie (`bpf_get_attach_cookie`,
/// Linux 5.15+), asked of the kernel itself. `EBPFX_NO_ATTACH_COOKIE=1` answers no (the path of
/// older kernels, for tests).
fn kernel_has_attach_cookie() -> bool {
    if std::env::var_os("EBPFX_NO_ATTACH_COOKIE").is_some_and(|v| v == "1") {
        return false;
    }
    // SAFETY: libbpf_probe_bpf_helper loads a tiny probe program and reads nothing of ours; a
    // null opts pointer is documented as allowed (it must be null).
    let r = unsafe {
        libbpf_sys::libbpf_probe_bpf_helper(
            libbpf_sys::BPF_PROG_TYPE_KPROBE,
            libbpf_sys::BPF_FUNC_get_attach_cookie,
            std::ptr::null(),
        )
    };
    r == 1
}

/// For a program section: `Some(retprobe)` when ebpfx attaches it to the `--probe` functions.
pub fn probe_section(section: &str) -> Option<bool> {
    match section {
        "uprobe" | "uprobe.s" => Some(false),
        "uretprobe" | "uretprobe.s" => Some(true),
        _ => None,
    }
}

/// Attaches `prog` at the entry (or return) of every function of `target`, cookie = index.
/// On failure the links made so far are dropped (detached) before returning.
pub fn attach(prog: &ProgramMut<'_>, retprobe: bool, target: Option<&Target>) -> anyhow::Result<Vec<Link>> {
    let target = target.ok_or_else(|| {
        anyhow!(
            "this program attaches at run time to the functions of --probe (ebpfx run NAME --probe BINARY:FUNCTION)"
        )
    })?;
    let kind = if retprobe { "uretprobe" } else { "uprobe" };
    if let Some(slot) = slot_of(&prog.name().to_string_lossy()) {
        // A per-function copy (kernels without BPF cookies): its one function, no cookie.
        let f = target.functions.get(slot).ok_or_else(|| anyhow!("program slot {slot} has no function"))?;
        let link = if target.kernel {
            prog.attach_kprobe(retprobe, &f.name)
        } else {
            prog.attach_uprobe(retprobe, -1, &target.binary, f.file_offset as usize)
        };
        return link.map(|l| vec![l]).map_err(|e| anyhow!("attaching a {kind} to {}: {e:#}", f.name));
    }
    if target.multi {
        let opts = UprobeMultiOpts {
            offsets: target.functions.iter().map(|f| f.file_offset as usize).collect(),
            cookies: (0..target.functions.len() as u64).collect(),
            retprobe,
            ..Default::default()
        };
        let link = prog.attach_uprobe_multi_with_opts(-1, &target.binary, "", opts).map_err(|e| {
            anyhow!("attaching a {kind} to {} functions of {}: {e:#}", target.functions.len(), target.binary.display())
        })?;
        return Ok(vec![link]);
    }
    let mut links = Vec::with_capacity(target.functions.len());
    if target.kernel {
        // uprobe and kprobe programs share one program type: the same program attaches to either.
        for (i, f) in target.functions.iter().enumerate() {
            let opts = KprobeOpts { cookie: i as u64, ..Default::default() };
            let link = prog.attach_kprobe_with_opts(retprobe, &f.name, opts).map_err(|e| {
                let kind = if retprobe { "kretprobe" } else { "kprobe" };
                match crate::loader::errno_of(&e) {
                    Some(libc::ENOENT) => anyhow!(
                        "cannot create a {kind} on {}: this kernel has no kprobe support (CONFIG_KPROBES) or the function is not traceable",
                        f.name
                    ),
                    _ => anyhow!("attaching a {kind} to {}: {e:#}", f.name),
                }
            })?;
            links.push(link);
        }
        return Ok(links);
    }
    for (i, f) in target.functions.iter().enumerate() {
        let opts = UprobeOpts { cookie: i as u64, retprobe, ..Default::default() };
        let link = prog.attach_uprobe_with_opts(-1, &target.binary, f.file_offset as usize, opts).map_err(|e| {
            anyhow!(
                "attaching a {kind} to {} in {} (file offset {:#x}): {e:#}",
                f.name,
                target.binary.display(),
                f.file_offset
            )
        })?;
        links.push(link);
    }
    Ok(links)
}

/// Checks `--probe` against the configs, resolves it, and writes the function names into the
/// `probe_label` static_map of every config that has one (its YAML and parsed config).
pub fn apply(resolved: &mut [Resolved], spec: Option<&str>) -> anyhow::Result<Option<Arc<Target>>> {
    let needing: Vec<String> =
        resolved.iter().filter(|r| r.config.probe_label.is_some()).map(|r| r.config.name.clone()).collect();
    let Some(spec) = spec else {
        if let Some(name) = needing.first() {
            return Err(usage_err(format!(
                "{name} needs --probe BINARY:FUNCTION (e.g. --probe /usr/bin/python3:PyEval_EvalCode, --probe libc.so.6:'malloc*')"
            )));
        }
        return Ok(None);
    };
    if let Some(r) = resolved.iter().find(|r| r.config.probe_label.is_none()) {
        return Err(usage_err(format!(
            "--probe is not supported by config {} (it attaches to fixed targets)",
            r.config.name
        )));
    }
    let target = resolve(spec)?;
    let map = target.static_map();
    for r in resolved.iter_mut() {
        let Some(label) = r.config.probe_label.clone() else { continue };
        let yaml = fill_static_map(&r.yaml, &label, &map)
            .map_err(|e| config_err(format!("config {}: probe_label {label:?}: {e}", r.config.origin)))?;
        r.config = Config::parse(&r.config.name, &r.config.origin, &yaml)?;
        r.yaml = yaml;
    }
    Ok(Some(Arc::new(target)))
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
        Function { name: name.to_string(), file_offset: off }
    }

    #[test]
    fn globs() {
        assert!(glob_match("malloc", "malloc"));
        assert!(!glob_match("malloc", "malloc_usable_size"));
        assert!(glob_match("malloc*", "malloc_usable_size"));
        assert!(glob_match("*alloc", "calloc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("foo_?", "foo_a"));
        assert!(!glob_match("foo_?", "foo_ab"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("*_*_*", "a_b_c"));
    }

    #[test]
    fn kallsyms_text_functions() {
        let text = "ffffffff81000000 T _stext\nffffffff81001000 t vfs_read\nffffffff81002000 D jiffies\nffffffff81003000 t foo.isra.0\nffffffffc0001000 t mod_fn\t[jbd2]\n";
        let names: Vec<String> = kallsyms_functions(text).into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["_stext", "vfs_read"]);
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
    fn slot_programs() {
        assert_eq!(slot_of("funccount_entry__slot000"), Some(0));
        assert_eq!(slot_of("funclatency_return__slot127"), Some(127));
        assert_eq!(slot_of("funccount_entry"), None);
        assert_eq!(slot_of("x__slot12"), None);
        assert_eq!(slot_of("x__slot1a2"), None);
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

    #[no_mangle]
    #[inline(never)]
    extern "C" fn ebpfx_probe_unit_target(x: u64) -> u64 {
        std::hint::black_box(x + 1)
    }

    #[test]
    fn resolves_functions_of_this_test_binary() {
        assert_eq!(ebpfx_probe_unit_target(std::hint::black_box(1)), 2);
        let exe = std::env::current_exe().expect("current exe");
        let data = std::fs::read(&exe).expect("read exe");
        let all = elf_functions(&data).expect("parse");
        let hits = select(&all, "ebpfx_probe_unit_targe?");
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].name, "ebpfx_probe_unit_target");
        // The file offset must hold the very bytes the function runs.
        let at = hits[0].file_offset as usize;
        let file_bytes = data.get(at..at + 16).expect("offset inside the file");
        let code = ebpfx_probe_unit_target as extern "C" fn(u64) -> u64 as *const u8;
        // SAFETY: 16 bytes from the function's start lie in this process's mapped, readable
        // text segment (past a short function's end they are the next function's code).
        let mem_bytes = unsafe { std::slice::from_raw_parts(code, 16) };
        assert_eq!(file_bytes, mem_bytes);
    }

    #[test]
    fn binaries_and_libraries() {
        assert!(resolve_binary("sh").expect("sh in PATH").is_absolute());
        assert!(resolve_binary("libc.so.6").expect("libc").is_file());
        assert!(resolve_binary("/no/such/binary").is_err());
        assert!(resolve_binary("no-such-binary-ebpfx").is_err());
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
