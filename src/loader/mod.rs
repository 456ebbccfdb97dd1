//! Open, load and attach a config's BPF object with libbpf-rs, keeping the links alive until the
//! run ends. Errors say why and what to do; this module never formats results.
//!
//! `attach` owns every attach kind ebpfx handles itself and the choice of kind at load time;
//! `explain` turns failures into their real cause. Run-time targets (`--probe`) come resolved
//! from `crate::targets`, which knows nothing of libbpf.
use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use libbpf_rs::{Link, MapType, Object, ObjectBuilder, OpenObject};

use crate::catalog::{ObjectSource, Resolved};
use crate::config::{Config, MetricKind};
use crate::error::{config_err, usage_err};
use crate::targets::ProbeSet;

pub mod attach;
pub mod cgroup_map;
pub mod explain;
pub mod globals;
mod kaddrs;
pub mod map_memory;
pub mod sections;
pub mod stack_maps;
pub mod tasks;

pub use explain::init_libbpf_logging;

/// How a program fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramStatus {
    pub name: String,
    /// Kernel program id (0 when not loaded): `bpftool prog show id N`.
    pub id: u32,
    /// Its section, or what it was attached as where ebpfx chose (`raw_tp/...` for a tp_btf
    /// program loaded as raw_tp, `kprobe` for a bare uprobe program on kernel functions).
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
    pub probe: Option<Arc<ProbeSet>>,
    /// `-- COMMAND`: load the program that follows forks (bpf/target.bpf.h).
    pub follow_forks: bool,
}

/// Fails early, with the fix, when this process cannot load BPF programs: names each missing
/// capability (CAP_BPF, CAP_PERFMON; CAP_SYS_ADMIN stands in for both on old kernels).
pub fn check_privileges() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let missing = explain::missing_caps(explain::effective_caps(), &[explain::CAP_BPF, explain::CAP_PERFMON]);
    if missing.is_empty() {
        return Ok(());
    }
    Err(anyhow!(
        "loading BPF programs needs root, or the capabilities CAP_BPF and CAP_PERFMON (uid {euid} lacks {}): \
         run `sudo ebpfx ...` or grant them with `setcap cap_bpf,cap_perfmon+ep $(command -v ebpfx)`",
        missing.join(" and ")
    ))
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

/// Checks a `--btf` file before anything else: libbpf must be able to parse it as BTF (raw
/// BTF such as /sys/kernel/btf/vmlinux, or an ELF file with a .BTF section).
pub fn check_btf_file(btf: &Path) -> anyhow::Result<()> {
    if !btf.is_file() {
        return Err(usage_err(format!("--btf {}: no such file", btf.display())));
    }
    let c = std::ffi::CString::new(btf.as_os_str().as_encoded_bytes())
        .map_err(|_| usage_err(format!("--btf {}: the path holds a NUL byte", btf.display())))?;
    // SAFETY: `c` is a valid NUL-terminated path; a null ext pointer is allowed. The returned
    // object (or error pointer) is checked, then freed below.
    let parsed = unsafe { libbpf_sys::btf__parse(c.as_ptr(), std::ptr::null_mut()) };
    // SAFETY: libbpf_get_error accepts any pointer btf__parse returned, null included.
    let err = unsafe { libbpf_sys::libbpf_get_error(parsed as *const _) };
    if parsed.is_null() || err != 0 {
        return Err(usage_err(format!(
            "--btf {}: not a BTF file: give raw BTF (a copy of /sys/kernel/btf/vmlinux from the target kernel) or a vmlinux ELF file with a .BTF section",
            btf.display()
        )));
    }
    // SAFETY: `parsed` is a valid btf object from btf__parse, freed once.
    unsafe { libbpf_sys::btf__free(parsed) };
    Ok(())
}

/// Opens the object with libbpf (nothing is loaded into the kernel yet).
fn open(resolved: &Resolved, opts: &LoadOptions) -> anyhow::Result<OpenObject> {
    sections::register_handlers();
    let name = &resolved.config.name;
    let mut builder = ObjectBuilder::default();
    builder.name(name).with_context(|| format!("config {name}: invalid object name"))?;
    if let Some(btf) = &opts.btf {
        check_btf_file(btf)?;
        builder.btf_custom_path(btf).with_context(|| format!("--btf {}", btf.display()))?;
    }
    explain::take_log();
    let opened = match &resolved.object {
        ObjectSource::Embedded(bytes) => builder.open_memory(bytes),
        ObjectSource::File(path) => builder.open_file(path),
    };
    opened.map_err(|e| {
        let log = explain::take_log();
        let what = resolved.object.describe(name);
        if let Some(ext) = explain::unresolved_extern(&log) {
            return config_err(format!("config {name}: BPF object {what} has an extern libbpf cannot resolve: {ext}"));
        }
        let last = log.lines().rev().find(|l| !l.trim().is_empty()).map(|l| format!(" (libbpf: {})", l.trim_start_matches("libbpf: ")));
        config_err(format!(
            "config {name}: cannot open BPF object {what}: {e:#}{} (is it a BPF ELF object compiled with clang -target bpf?)",
            last.unwrap_or_default()
        ))
    })
}

/// A config whose object is opened and checked against the config, nothing loaded yet.
pub struct Prepared {
    pub resolved: Resolved,
    open: OpenObject,
    plan: attach::Plan,
}

/// Opens the object and checks every metric against its map (name, key and value sizes).
/// Needs no privileges: config problems are reported before anything touches the kernel.
pub fn prepare(resolved: &Resolved, opts: &LoadOptions) -> anyhow::Result<Prepared> {
    let (open_obj, plan) = open_planned(resolved, opts)?;
    validate_maps(&resolved.config, &map_descs(&open_obj))?;
    map_memory::enforce(&resolved.config.name, &open_obj)?;
    Ok(Prepared { resolved: resolved.clone(), open: open_obj, plan })
}

/// Opens the object and writes its `kaddrs` and flag globals (nothing is loaded yet), with
/// the attach kinds chosen for this kernel.
pub fn open_object(resolved: &Resolved, opts: &LoadOptions) -> anyhow::Result<OpenObject> {
    open_planned(resolved, opts).map(|(o, _)| o)
}

fn open_planned(resolved: &Resolved, opts: &LoadOptions) -> anyhow::Result<(OpenObject, attach::Plan)> {
    let open_obj = open_raw(resolved, opts)?;
    let programs: Vec<(String, String, bool)> =
        open_obj.progs().map(|p| (os(p.name()), os(p.section()), p.autoload())).collect();
    let plan = attach::Plan::new(&programs, attach::kernel_btf_available());
    let mut open_obj = open_obj;
    plan.apply(&mut open_obj, None);
    Ok((open_obj, plan))
}

/// Opens the object with its globals written, before any plan.
fn open_raw(resolved: &Resolved, opts: &LoadOptions) -> anyhow::Result<OpenObject> {
    let mut open_obj = open(resolved, opts)?;
    kaddrs::inject(&resolved.config.name, &mut open_obj, &resolved.config.kaddrs)?;
    globals::set(&resolved.config.name, &mut open_obj, &opts.globals)?;
    // Event maps: ring size, or the switch to a perf event array (and the object's flag).
    let perf_flag = globals::find(&open_obj, &[crate::stream::perfbuf::PERF_FLAG])?.into_iter().next().flatten();
    for ev in &resolved.config.events {
        let name = &resolved.config.name;
        let switched = crate::stream::perfbuf::prepare_map(&mut open_obj, ev, perf_flag.is_some())
            .map_err(|e| crate::error::config_err(format!("config {name}: events {}: {e:#}", ev.name)))?;
        if let (true, Some(place)) = (switched, &perf_flag) {
            globals::write(name, &mut open_obj, crate::stream::perfbuf::PERF_FLAG, place, &[1])?;
        }
    }
    attach::prepare_probe_programs(&mut open_obj, opts.probe.as_deref())?;
    tasks::prepare_object(&mut open_obj, &resolved.config, opts.follow_forks)?;
    stack_maps::prepare_object(&mut open_obj, &resolved.config)?;
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

/// Loads and attaches a prepared config. Each hook loads in the best kind the kernel takes
/// (see `attach`). By default programs that cannot load or attach are left out with a warning
/// (returned in `programs`); `strict` makes that an error.
pub fn load(prepared: Prepared, opts: &LoadOptions) -> anyhow::Result<Loaded> {
    let started = Instant::now();
    let Prepared { resolved, open: open_obj, mut plan } = prepared;
    let resolved = &resolved;
    let name = resolved.config.name.clone();
    let what = resolved.object.describe(&name);
    if plan.programs.iter().any(|p| p.enabled && matches!(section_kind(&p.section), "tracepoint" | "tp")) {
        ensure_tracefs()?;
    }

    let mut left_out: Vec<ProgramStatus> = Vec::new();
    explain::take_log();
    let object = match open_obj.load() {
        Ok(o) => o,
        Err(err) => {
            let errno = errno_of(&err);
            let log = explain::take_log();
            // A map that cannot be created fails the whole object, whatever the programs.
            if let Some((map, reason)) = explain::failed_map(&log) {
                return Err(anyhow!("config {name}: loading {what} failed: map {map} could not be created: {reason}"));
            }
            if let Some(ext) = explain::unresolved_extern(&log) {
                return Err(anyhow!(
                    "config {name}: loading {what} failed: an extern could not be resolved against this kernel: {ext}"
                ));
            }
            // Find the programs that cannot load: try each alone, falling back to the next kind
            // of its hook while there is one; then load without those that still fail.
            let first: Vec<String> = plan.programs.iter().filter(|p| p.enabled).map(|p| p.name.clone()).collect();
            for prog in first {
                let mut current = prog;
                // The first (best) kind's failure, and what each fallback said.
                let mut first_why: Option<(String, String)> = None;
                let mut tried: Vec<String> = Vec::new();
                loop {
                    let mut alone = open_raw(resolved, opts)?;
                    plan.apply(&mut alone, Some(&current));
                    explain::take_log();
                    let Err(e) = alone.load() else { break };
                    let log = explain::take_log();
                    let Some(planned) = plan.get(&current).cloned() else { break };
                    let shown = if planned.as_raw_tp { "as raw_tp".to_string() } else { planned.section.clone() };
                    let why = explain::explain_load(&current, &planned.section, errno_of(&e), &log);
                    match &first_why {
                        None => first_why = Some((planned.section.clone(), why)),
                        Some(_) => tried.push(format!("{current} ({shown}): {why}")),
                    }
                    // A missing target (ESRCH) is missing for raw_tp too: no retarget then.
                    let retarget = errno_of(&e) != Some(libc::ESRCH);
                    if let Some(next) = plan.fall_back(&current, retarget) {
                        current = next;
                        continue;
                    }
                    let (mut section, why) = first_why.take().unwrap_or_default();
                    if let Some(retprobe) = attach::probe_section(&section) {
                        section = attach::probe_kind(retprobe, opts.probe.as_deref());
                    }
                    let also = if tried.is_empty() {
                        String::new()
                    } else {
                        format!(" (fallbacks failed too: {})", tried.join("; "))
                    };
                    left_out.push(ProgramStatus {
                        name: current.clone(),
                        id: 0,
                        section,
                        attached: false,
                        problem: Some(format!("{why}{also}")),
                    });
                    break;
                }
            }
            let enabled = plan.programs.iter().filter(|p| p.enabled).count();
            if opts.strict && !left_out.is_empty() || left_out.len() == enabled {
                let detail = describe(&left_out);
                let detail = if detail.is_empty() {
                    format!("{err:#}: {}", explain::explain_load("", "", errno, &log))
                } else {
                    detail
                };
                return Err(anyhow!("config {name}: loading {what} failed: {detail}"));
            }
            for l in &left_out {
                if let Some(p) = plan.programs.iter_mut().find(|p| p.name == l.name) {
                    p.enabled = false;
                }
            }
            let mut again = open_raw(resolved, opts)?;
            plan.apply(&mut again, None);
            explain::take_log();
            again.load().map_err(|e| {
                let log = explain::take_log();
                let why = explain::failed_map(&log)
                    .map(|(m, r)| format!("map {m} could not be created: {r}"))
                    .unwrap_or_else(|| format!("{e:#}"));
                anyhow!(
                    "config {name}: loading {what} failed{}: {why}",
                    if left_out.is_empty() { "" } else { " even without the programs that cannot load" }
                )
            })?
        }
    };

    // A fallback may have chosen a classic tracepoint: it attaches through tracefs.
    if plan.programs.iter().any(|p| p.enabled && matches!(section_kind(&p.section), "tracepoint" | "tp")) {
        ensure_tracefs()?;
    }
    let mut links = Vec::new();
    let mut iters = Vec::new();
    let mut programs = Vec::new();
    let mut retry_single: Option<ProbeSet> = None;
    for prog in object.progs_mut() {
        let pname = os(prog.name());
        let section = os(prog.section());
        if let Some(l) = left_out.iter().find(|l| l.name == pname) {
            programs.push(l.clone());
            continue;
        }
        let Some(planned) = plan.get(&pname).cloned() else { continue };
        if !planned.enabled {
            continue; // another kind of the same hook was loaded instead
        }
        let id = libbpf_rs::Program::id_from_fd(prog.as_fd()).unwrap_or(0);
        let mut label = section.clone();
        let attached = if planned.as_raw_tp {
            label = format!("raw_tp/{}", section.split_once('/').map(|(_, e)| e).unwrap_or(&section));
            attach::attach_as_raw_tp(&prog, &section).map(|l| vec![l]).map_err(|e| format!("{e:#}"))
        } else if sections::is_custom(&section) {
            sections::attach_custom(&prog, &section, opts.frequency).map_err(|e| format!("{e:#}"))
        } else if let Some(retprobe) = attach::probe_section(&section) {
            label = attach::probe_kind(retprobe, opts.probe.as_deref());
            let result = attach::attach_probes(&prog, retprobe, opts.probe.as_deref()).map_err(|e| format!("{e:#}"));
            if let (Err(why), Some(set)) = (&result, opts.probe.as_deref()) {
                if set.uprobe_multi || set.kprobe_multi {
                    // The kernel refused the multi link: load again for one probe per function
                    // (the programs must be loaded for the link kind they attach with).
                    if opts.verbose > 0 {
                        eprintln!("ebpfx: config {name}: {why}: attaching one probe per function instead");
                    }
                    retry_single = Some(set.without_multi());
                    break;
                }
            }
            result
        } else {
            prog.attach().map(|l| vec![l]).map_err(|e| explain::explain_attach(&section, &e))
        };
        match attached {
            Ok(new_links) if section.starts_with("iter/") || section.starts_with("iter.s/") => {
                iters.extend(new_links);
                programs.push(ProgramStatus { name: pname, id, section, attached: true, problem: None });
            }
            Ok(new_links) => {
                links.extend(new_links);
                programs.push(ProgramStatus { name: pname, id, section: label, attached: true, problem: None });
            }
            Err(why) => {
                if opts.strict {
                    return Err(anyhow!("config {name}: program {pname} ({label}) failed to attach: {why}"));
                }
                programs.push(ProgramStatus { name: pname, id, section: label, attached: false, problem: Some(why) });
            }
        }
    }
    if opts.verbose > 0 {
        for p in plan.programs.iter().filter(|p| p.enabled && p.as_raw_tp) {
            eprintln!("ebpfx: config {name}: program {} ({}) loaded as raw_tp (the kernel's own BTF is missing or refused tp_btf)", p.name, p.section);
        }
        for p in plan.replaced().filter(|p| !left_out.iter().any(|l| l.name == p.name)) {
            eprintln!(
                "ebpfx: config {name}: program {} ({}) not loaded: another kind of the same hook was",
                p.name, p.section
            );
        }
    }
    if let Some(set) = retry_single {
        drop(links);
        drop(iters);
        drop(object);
        let single = LoadOptions { probe: Some(Arc::new(set)), ..opts.clone() };
        return load(prepare(resolved, &single)?, &single);
    }
    if links.is_empty() && iters.is_empty() && !programs.is_empty() {
        return Err(anyhow!("config {name}: no program could be attached: {}", describe(&programs)));
    }
    Ok(Loaded { config: resolved.config.clone(), object, links, iters, programs, setup_time: started.elapsed() })
}

fn describe(programs: &[ProgramStatus]) -> String {
    programs
        .iter()
        .map(|p| format!("{} ({}): {}", p.name, p.section, p.problem.clone().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Mounts tracefs when a program needs it and it is missing.
fn ensure_tracefs() -> anyhow::Result<()> {
    crate::targets::kernel::ensure_tracefs().map_err(|err| {
        anyhow!(
            "tracepoint programs need tracefs, which is not mounted and could not be mounted at /sys/kernel/tracing ({err}): \
             run `mount -t tracefs nodev /sys/kernel/tracing` as root"
        )
    })
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

/// Every counter/histogram/gauge needs a map of its name with 8-byte values
/// (docs/config-format.md#loading-and-attaching), and (ebpfx addition) a key as large as its labels
/// say.
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
    problems.extend(event_map_problems(config, maps));
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

/// Every `events:` entry needs its ring buffer (or perf event array) and its per-CPU u64 loss
/// counter.
fn event_map_problems(config: &Config, maps: &[MapDesc]) -> Vec<String> {
    let name = &config.name;
    let mut problems = Vec::new();
    for ev in &config.events {
        match maps.iter().find(|m| m.name == ev.ring_buffer) {
            None => problems.push(format!(
                "config {name}: events {}: ring_buffer: the BPF object has no map named {:?}",
                ev.name, ev.ring_buffer
            )),
            Some(m) if !matches!(m.map_type, MapType::RingBuf | MapType::PerfEventArray) => problems.push(format!(
                "config {name}: events {}: ring_buffer: map {:?} is a {:?} map: an events entry reads a BPF_MAP_TYPE_RINGBUF or BPF_MAP_TYPE_PERF_EVENT_ARRAY map",
                ev.name, ev.ring_buffer, m.map_type
            )),
            Some(_) => {}
        }
        let Some(lost_counter) = &ev.lost_counter else { continue };
        match maps.iter().find(|m| &m.name == lost_counter) {
            None => problems.push(format!(
                "config {name}: events {}: lost_counter: the BPF object has no map named {:?} (a per-CPU array of one u64 that the programs add to when the ring is full)",
                ev.name, lost_counter
            )),
            Some(m) if m.map_type != MapType::PercpuArray || m.value_size != 8 || m.key_size != 4 => {
                problems.push(format!(
                    "config {name}: events {}: lost_counter: map {:?} must be a per-CPU array of u64 values (it is a {:?} map, key {} bytes, value {} bytes)",
                    ev.name, lost_counter, m.map_type, m.key_size, m.value_size
                ))
            }
            Some(_) => {}
        }
    }
    problems
}

/// Called once after every config is attached, before the window starts, so that configs can hook
/// initialisation to `uprobe//proc/self/exe:post_attach_mark`
/// (docs/config-format.md#loading-and-attaching).
#[no_mangle]
#[inline(never)]
pub extern "C" fn post_attach_mark() {
    // An empty body the optimizer must not remove: the call itself is the event.
    std::hint::black_box(());
}

/// Every loaded program of a config, with its descriptor (for run statistics), in status order.
pub fn program_fds(loaded: &Loaded) -> Vec<(&ProgramStatus, Option<std::os::fd::RawFd>)> {
    use std::os::fd::AsRawFd;
    loaded
        .programs
        .iter()
        .map(|status| {
            let prog = loaded.object.progs().find(|p| p.name().to_string_lossy() == status.name.as_str());
            let fd = match (&prog, status.id) {
                (Some(p), id) if id != 0 => Some(p.as_fd().as_raw_fd()),
                _ => None,
            };
            (status, fd)
        })
        .collect()
}
