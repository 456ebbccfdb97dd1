//! Open, load and attach a config's BPF object with libbpf-rs, keeping the links alive until the
//! run ends. Errors say why and what to do; this module never formats results.
use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use libbpf_rs::{Link, MapType, Object, ObjectBuilder, OpenObject, PrintLevel};

use crate::catalog::{ObjectSource, Resolved};
use crate::config::{Config, MetricKind};
use crate::error::config_err;

pub mod cgroup_map;
pub mod globals;
mod kaddrs;
pub mod map_memory;
pub mod sections;

/// How a program fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramStatus {
    pub name: String,
    /// Kernel program id (0 when not loaded): `bpftool prog show id N`.
    pub id: u32,
    pub section: String,
    pub attached: bool,
    /// Why it was left out (load or attach failure), when it was.
    pub problem: Option<String>,
}

/// A loaded, attached config.
pub struct Loaded {
    pub config: Config,
    pub object: Object,
    links: Vec<Link>,
    /// Links of `iter/*` programs: they run when [`Loaded::run_iterators`] reads them, before
    /// every read of the maps, and stay after [`Loaded::detach`].
    iters: Vec<Link>,
    pub programs: Vec<ProgramStatus>,
    /// Time spent opening, loading and attaching.
    pub setup_time: Duration,
}

impl Loaded {
    /// Detaches every program (drops the links). Maps stay readable.
    pub fn detach(&mut self) {
        self.links.clear();
    }

    /// Runs every `iter/*` program once (reads its iterator to the end, output discarded), so
    /// that it can fill its maps from kernel objects (e.g. every TCP socket) before they are read.
    pub fn run_iterators(&self) -> anyhow::Result<()> {
        use std::io::Read as _;
        for link in &self.iters {
            let mut it = libbpf_rs::Iter::new(link)
                .with_context(|| format!("config {}: creating a BPF iterator", self.config.name))?;
            let mut sink = [0u8; 4096];
            while it.read(&mut sink).with_context(|| format!("config {}: running a BPF iterator", self.config.name))?
                > 0
            {}
        }
        Ok(())
    }

    /// Number of attached programs (a program may hold several links).
    pub fn attached(&self) -> usize {
        self.programs.iter().filter(|p| p.attached).count()
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Fail instead of leaving out programs that cannot load or attach.
    pub strict: bool,
    /// 0: libbpf silent; 1: its warnings and info; 2: also its debug log.
    pub verbose: u8,
    /// Custom BTF for CO-RE on kernels without /sys/kernel/btf/vmlinux.
    pub btf: Option<std::path::PathBuf>,
    /// Samples per second of `perf_event/` programs, replacing their section's `frequency=`.
    pub frequency: Option<u64>,
    /// Globals written into every object before load (tool flags such as `--port`).
    pub globals: Vec<globals::GlobalValue>,
    /// The functions of `--probe`, for programs in bare `uprobe`/`uretprobe` sections.
    pub probe: Option<std::sync::Arc<crate::probe::Target>>,
    /// `-- COMMAND`: load the program that follows forks (bpf/target.bpf.h).
    pub follow_forks: bool,
}

fn libbpf_log(level: PrintLevel, msg: String) {
    let tag = match level {
        PrintLevel::Warn => "warn",
        PrintLevel::Info => "info",
        PrintLevel::Debug => "debug",
    };
    eprint!("libbpf[{tag}]: {msg}");
}

/// Sets libbpf's logging once per process: silent unless verbose.
pub fn init_libbpf_logging(verbose: u8) {
    match verbose {
        0 => libbpf_rs::set_print(None),
        1 => libbpf_rs::set_print(Some((PrintLevel::Info, libbpf_log))),
        _ => libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_log))),
    };
}

/// Fails early, with the fix, when this process cannot load BPF programs.
pub fn check_privileges() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return Ok(());
    }
    let caps = effective_caps().unwrap_or(0);
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let has = |c: u32| caps & (1u64 << c) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    Err(anyhow!(
        "loading BPF programs needs root, or the capabilities CAP_BPF and CAP_PERFMON (uid {euid} has neither): \
         run `sudo ebpfx ...` or grant them with `setcap cap_bpf,cap_perfmon+ep $(command -v ebpfx)`"
    ))
}

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

/// Mounts tracefs at /sys/kernel/tracing when a program needs it and it is missing.
fn ensure_tracefs() -> anyhow::Result<()> {
    let events = Path::new("/sys/kernel/tracing/events");
    if events.exists() {
        return Ok(());
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; data is null.
    let rc = unsafe { libc::mount(c"nodev".as_ptr(), target.as_ptr(), c"tracefs".as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(anyhow!(
            "tracepoint programs need tracefs, which is not mounted and could not be mounted at /sys/kernel/tracing ({err}): \
             run `mount -t tracefs nodev /sys/kernel/tracing` as root"
        ));
    }
    Ok(())
}

/// The errno inside a libbpf-rs error, if any.
pub fn errno_of(err: &libbpf_rs::Error) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
        }
        cur = e.source();
    }
    let text = format!("{err:#}");
    let start = text.rfind("(os error ")? + "(os error ".len();
    text[start..].split(')').next()?.parse().ok()
}

fn section_kind(section: &str) -> &str {
    section.split('/').next().unwrap_or(section)
}

/// Explains a program that failed to load.
fn explain_load(section: &str, errno: Option<i32>) -> String {
    let kind = section_kind(section);
    let target = section.split_once('/').map(|(_, t)| t).unwrap_or("");
    match (kind, errno) {
        ("fentry" | "fexit" | "fmod_ret" | "lsm", Some(libc::EPERM) | Some(524)) => format!(
            "{kind} programs are not supported by this kernel (BPF trampolines unavailable); a tracepoint or kprobe program is needed instead"
        ),
        ("tp_btf", Some(libc::ESRCH) | Some(libc::ENOENT)) => {
            format!("tracepoint {target} does not exist on this kernel")
        }
        ("fentry" | "fexit", Some(libc::ESRCH) | Some(libc::ENOENT)) => {
            format!("kernel function {target} does not exist on this kernel (or is not traceable)")
        }
        (_, Some(libc::EPERM)) | (_, Some(libc::EACCES)) => {
            "the kernel refused the program (EPERM): it needs root or CAP_BPF+CAP_PERFMON, or the verifier rejected it (run with -v for libbpf's log)".to_string()
        }
        (_, Some(libc::EINVAL)) => "the verifier rejected it (run with -v to see libbpf's log)".to_string(),
        (_, Some(code)) => format!("load failed: {}", io::Error::from_raw_os_error(code)),
        (_, None) => "load failed (run with -v to see libbpf's log)".to_string(),
    }
}

/// Explains a program that failed to attach.
fn explain_attach(section: &str, err: &libbpf_rs::Error) -> String {
    let errno = errno_of(err);
    let kind = section_kind(section);
    let target = section.split_once('/').map(|(_, t)| t).unwrap_or("");
    match (kind, errno) {
        ("kprobe" | "kretprobe" | "ksyscall" | "kretsyscall", Some(libc::ENOENT)) => format!(
            "cannot create {kind} on {target}: this kernel has no kprobe support (CONFIG_KPROBES) or the function is not traceable"
        ),
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
        (_, Some(libc::EOPNOTSUPP)) | (_, Some(libc::ESRCH)) if section == kind => {
            format!("section {section:?} cannot be attached automatically")
        }
        _ => format!("{err:#}"),
    }
}

/// Opens the object with libbpf (nothing is loaded into the kernel yet).
fn open(resolved: &Resolved, opts: &LoadOptions) -> anyhow::Result<OpenObject> {
    sections::register_handlers();
    let name = &resolved.config.name;
    let mut builder = ObjectBuilder::default();
    builder.name(name).with_context(|| format!("config {name}: invalid object name"))?;
    if let Some(btf) = &opts.btf {
        if !btf.is_file() {
            return Err(crate::error::usage_err(format!("--btf {}: no such file", btf.display())));
        }
        builder.btf_custom_path(btf).with_context(|| format!("--btf {}", btf.display()))?;
    }
    let opened = match &resolved.object {
        ObjectSource::Embedded(bytes) => builder.open_memory(bytes),
        ObjectSource::File(path) => builder.open_file(path),
    };
    opened.map_err(|e| {
        config_err(format!(
            "config {name}: cannot open BPF object {}: {e:#} (is it a BPF ELF object compiled with clang -target bpf?)",
            resolved.object.describe(name)
        ))
    })
}

/// A config whose object is opened and checked against the config, nothing loaded yet.
pub struct Prepared {
    pub resolved: Resolved,
    open: OpenObject,
}

/// Opens the object and checks every metric against its map (name, key and value sizes).
/// Needs no privileges: config problems are reported before anything touches the kernel.
pub fn prepare(resolved: &Resolved, opts: &LoadOptions) -> anyhow::Result<Prepared> {
    let open_obj = open_object(resolved, opts)?;
    validate_maps(&resolved.config, &map_descs(&open_obj))?;
    map_memory::enforce(&resolved.config.name, &open_obj)?;
    Ok(Prepared { resolved: resolved.clone(), open: open_obj })
}

/// Opens the object and writes its `kaddrs` and flag globals (nothing is loaded yet).
pub fn open_object(resolved: &Resolved, opts: &LoadOptions) -> anyhow::Result<OpenObject> {
    let mut open_obj = open(resolved, opts)?;
    kaddrs::inject(&resolved.config.name, &mut open_obj, &resolved.config.kaddrs)?;
    globals::set(&resolved.config.name, &mut open_obj, &opts.globals)?;
    crate::probe::prepare_programs(&mut open_obj, opts.probe.as_deref());
    crate::targets::prepare_object(&mut open_obj, &resolved.config, opts.follow_forks)?;
    Ok(open_obj)
}

/// Name, sizes and type of every map of an open object.
pub fn map_descs(open_obj: &OpenObject) -> Vec<MapDesc> {
    open_obj
        .maps()
        .map(|m| MapDesc {
            name: os(m.name()),
            key_size: m.key_size(),
            value_size: m.value_size(),
            map_type: m.map_type(),
        })
        .collect()
}

/// Per-CPU map types: one value slot per possible CPU.
pub fn is_per_cpu(t: MapType) -> bool {
    matches!(t, MapType::PercpuHash | MapType::PercpuArray | MapType::LruPercpuHash)
}

/// Loads and attaches a prepared config. By default programs that cannot load or attach are
/// left out with a warning (returned in `programs`); `strict` makes that an error.
pub fn load(prepared: Prepared, opts: &LoadOptions) -> anyhow::Result<Loaded> {
    let started = Instant::now();
    let Prepared { resolved, open: mut open_obj } = prepared;
    let resolved = &resolved;
    let name = resolved.config.name.clone();
    // Programs off by default (`SEC("?...")`) and not turned on are not part of this load.
    let sections: Vec<(String, String)> =
        open_obj.progs().filter(|p| p.autoload()).map(|p| (os(p.name()), os(p.section()))).collect();
    if sections.iter().any(|(_, s)| matches!(section_kind(s), "tracepoint" | "tp")) {
        ensure_tracefs()?;
    }

    let mut left_out: Vec<ProgramStatus> = Vec::new();
    let object = match open_obj.load() {
        Ok(o) => o,
        Err(err) => {
            let errno = errno_of(&err);
            if sections.len() <= 1 {
                let (prog, section) = sections.first().cloned().unwrap_or_default();
                let why = if sections.len() == 1 {
                    format!("program {prog} ({section}): {}", explain_load(&section, errno))
                } else {
                    format!("{err:#}: {}", explain_load("", errno))
                };
                return Err(anyhow!("config {name}: loading {} failed: {why}", resolved.object.describe(&name)));
            }
            // Find the programs that cannot load: try each alone, then load without them.
            for (prog, section) in &sections {
                let mut probe = open_object(resolved, opts)?;
                for mut p in probe.progs_mut() {
                    let keep = os(p.name()) == *prog;
                    p.set_autoload(keep);
                }
                if let Err(e) = probe.load() {
                    left_out.push(ProgramStatus {
                        name: prog.clone(),
                        id: 0,
                        section: section.clone(),
                        attached: false,
                        problem: Some(explain_load(section, errno_of(&e))),
                    });
                }
            }
            // Strict: name the programs that cannot load, load nothing.
            if opts.strict || left_out.is_empty() || left_out.len() == sections.len() {
                let detail = left_out
                    .iter()
                    .map(|p| format!("{} ({}): {}", p.name, p.section, p.problem.clone().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("; ");
                let detail = if detail.is_empty() { format!("{err:#}: {}", explain_load("", errno)) } else { detail };
                return Err(anyhow!("config {name}: loading {} failed: {detail}", resolved.object.describe(&name)));
            }
            open_obj = open_object(resolved, opts)?;
            for mut p in open_obj.progs_mut() {
                let pname = os(p.name());
                if left_out.iter().any(|l| l.name == pname) {
                    p.set_autoload(false);
                }
            }
            open_obj.load().map_err(|e| {
                anyhow!(
                    "config {name}: loading {} failed even without the programs that cannot load: {e:#}",
                    resolved.object.describe(&name)
                )
            })?
        }
    };

    let mut links = Vec::new();
    let mut iters = Vec::new();
    let mut programs = Vec::new();
    for prog in object.progs_mut() {
        let pname = os(prog.name());
        let section = os(prog.section());
        let id = libbpf_rs::Program::id_from_fd(prog.as_fd()).unwrap_or(0);
        if let Some(l) = left_out.iter().find(|l| l.name == pname) {
            programs.push(l.clone());
            continue;
        }
        // Programs that are off unless asked for (`SEC("?...")`, e.g. bpf/target.bpf.h's fork
        // follower) were not loaded: nothing to attach or report.
        if !prog.autoload() {
            continue;
        }
        let attached = if sections::is_custom(&section) {
            sections::attach_custom(&prog, &section, opts.frequency).map_err(|e| format!("{e:#}"))
        } else if let Some(retprobe) = crate::probe::probe_section(&section) {
            crate::probe::attach(&prog, retprobe, opts.probe.as_deref()).map_err(|e| format!("{e:#}"))
        } else {
            prog.attach().map(|l| vec![l]).map_err(|e| explain_attach(&section, &e))
        };
        match attached {
            Ok(new_links) if section.starts_with("iter/") || section.starts_with("iter.s/") => {
                iters.extend(new_links);
                programs.push(ProgramStatus { name: pname, id, section, attached: true, problem: None });
            }
            Ok(new_links) => {
                links.extend(new_links);
                programs.push(ProgramStatus { name: pname, id, section, attached: true, problem: None });
            }
            Err(why) => {
                if opts.strict {
                    return Err(anyhow!("config {name}: program {pname} ({section}) failed to attach: {why}"));
                }
                programs.push(ProgramStatus { name: pname, id, section, attached: false, problem: Some(why) });
            }
        }
    }
    if links.is_empty() && iters.is_empty() && !programs.is_empty() {
        let detail = programs
            .iter()
            .map(|p| format!("{} ({}): {}", p.name, p.section, p.problem.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(anyhow!("config {name}: no program could be attached: {detail}"));
    }
    Ok(Loaded { config: resolved.config.clone(), object, links, iters, programs, setup_time: started.elapsed() })
}

fn os(s: &OsStr) -> String {
    s.to_string_lossy().into_owned()
}

/// What validation needs to know about a map of the object.
#[derive(Debug, Clone)]
pub struct MapDesc {
    pub name: String,
    pub key_size: u32,
    pub value_size: u32,
    pub map_type: MapType,
}

/// Every counter/histogram/gauge needs a map of its name with 8-byte values (spec §4.8), and
/// (ebpfx addition) a key as large as its labels say.
pub fn validate_maps(config: &Config, maps: &[MapDesc]) -> anyhow::Result<()> {
    let problems = map_problems(config, maps);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(config_err(problems.join("\n")))
    }
}

/// Every mismatch between the config's metrics and the object's maps, one message each.
pub fn map_problems(config: &Config, maps: &[MapDesc]) -> Vec<String> {
    let name = &config.name;
    let mut problems = Vec::new();
    if let Some(c) = &config.cgroup_id_map {
        let expected_key = if c.map_type == "cgrp_storage" { 4 } else { 8 };
        match maps.iter().find(|m| m.name == c.name) {
            None => {
                problems.push(format!("config {name}: cgroup_id_map: the BPF object has no map named {:?}", c.name))
            }
            Some(m) => {
                if m.key_size != expected_key {
                    problems.push(format!(
                        "config {name}: cgroup_id_map: key size for map {:?} is {} bytes, expected {expected_key} for map type {}",
                        c.name, m.key_size, c.map_type
                    ));
                }
                if m.value_size != 8 {
                    problems.push(format!(
                        "config {name}: cgroup_id_map: value size for map {:?} is {} bytes, expected 8 (u64)",
                        c.name, m.value_size
                    ));
                }
            }
        }
    }
    for metric in &config.metrics {
        if matches!(metric.kind, MetricKind::Counter { perf_event_array: true }) {
            continue;
        }
        let map = maps.iter().find(|m| m.name == metric.name);
        let Some(map) = map else {
            let available: Vec<String> = maps
                .iter()
                .map(|m| m.name.clone())
                .filter(|n| {
                    !n.starts_with('.') && !n.contains(".rodata") && !n.contains(".bss") && !n.contains(".data")
                })
                .collect();
            problems.push(format!(
                "config {name}: metric {}: the BPF object has no map named {:?} (a metric reads the map of the same name; maps in the object: {})",
                metric.name,
                metric.name,
                if available.is_empty() { "none".to_string() } else { available.join(", ") }
            ));
            continue;
        };
        if map.value_size != 8 {
            problems.push(format!(
                "config {name}: metric {}: value size of map {:?} is {} bytes, expected 8 (u64)",
                metric.name, metric.name, map.value_size
            ));
        }
        let labels_size = Config::key_size(metric);
        let key_size = map.key_size as usize;
        let per_cpu = is_per_cpu(map.map_type);
        let cpu_last = metric.labels.last().is_some_and(|l| l.name == "cpu");
        let ok = if metric.labels.is_empty() {
            key_size == 4
        } else if per_cpu && cpu_last {
            key_size + 2 == labels_size || (metric.labels.len() == 1 && key_size == 4)
        } else {
            key_size == labels_size
        };
        if !ok {
            problems.push(format!(
                "config {name}: metric {}: map key is {key_size} bytes but the labels' sizes and paddings add up to {labels_size}{} (declare padding, including trailing struct padding)",
                metric.name,
                if metric.labels.is_empty() { " (a metric without labels needs a 4-byte key, e.g. a one-entry array)" } else { "" }
            ));
        }
    }
    problems
}

/// Called once after every config is attached, before the window starts, so that configs can
/// hook initialisation to `uprobe//proc/self/exe:post_attach_mark` (spec §4.6).
#[no_mangle]
#[inline(never)]
pub extern "C" fn post_attach_mark() {
    // An empty body the optimizer must not remove: the call itself is the event.
    std::hint::black_box(());
}

/// Per loaded program of a config: its status row (with tag) and current run statistics.
pub fn program_stats(loaded: &Loaded) -> Vec<(crate::selfmetrics::ProgramRow, crate::selfmetrics::RunStats)> {
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    for status in &loaded.programs {
        let prog = loaded.object.progs().find(|p| p.name().to_string_lossy() == status.name.as_str());
        let (tag, stats) = match (&prog, status.id) {
            (Some(p), id) if id != 0 => crate::selfmetrics::read_fdinfo(p.as_fd().as_raw_fd()),
            _ => Default::default(),
        };
        out.push((
            crate::selfmetrics::ProgramRow {
                config: loaded.config.name.clone(),
                program: status.name.clone(),
                id: status.id,
                tag,
                attached: status.attached,
            },
            stats,
        ));
    }
    out
}
