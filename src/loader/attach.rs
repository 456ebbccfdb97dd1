//! Every attach kind ebpfx handles itself, and the choice of kind at load time.
//!
//! Choice of kind: an object may carry one hook in several kinds (`tp_btf/sched_switch` beside
//! `raw_tp/sched_switch` and `tracepoint/sched/sched_switch`, or `fentry/vfs_read` beside
//! `kprobe/vfs_read`); ebpfx loads only the best one the kernel offers (tp_btf → raw_tp →
//! tracepoint, fentry → kprobe) and falls back to the next when it cannot load. A `tp_btf`
//! program without an alternative is loaded as `raw_tp` where the kernel's own BTF is missing
//! (tp_btf needs it, even when `--btf` gives CO-RE a copy): both read the tracepoint's
//! arguments from the same u64 array.
//!
//! Run-time targets: programs in bare `uprobe`/`uretprobe` sections attach to the functions
//! of `--probe` (kernel functions as kprobes), with one multi link where the kernel has them.

use anyhow::anyhow;
use libbpf_rs::{
    KprobeMultiOpts, KprobeOpts, Link, OpenObject, ProgramAttachType, ProgramMut, ProgramType, UprobeMultiOpts,
    UprobeOpts,
};

use super::explain;
use crate::error::usage_err;
use crate::targets::{slot_of, ProbeSet};

/// The kind of a program's section, in order of preference within a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    TpBtf,
    RawTp,
    Tracepoint,
    Fentry,
    Kprobe,
}

/// What a program hooks: (family, event, at return) with its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub kind: Kind,
    /// Tracepoint name (without category) or kernel function.
    pub event: String,
    pub ret: bool,
}

impl Hook {
    /// The hook of a section, for the kinds that have alternatives.
    pub fn of(section: &str) -> Option<Hook> {
        let (prefix, rest) = section.split_once('/')?;
        let hook = |kind, event: &str, ret| Some(Hook { kind, event: event.to_string(), ret });
        match prefix {
            "tp_btf" => hook(Kind::TpBtf, rest, false),
            "raw_tp" | "raw_tracepoint" => hook(Kind::RawTp, rest, false),
            "tracepoint" | "tp" => hook(Kind::Tracepoint, rest.split_once('/')?.1, false),
            "fentry" => hook(Kind::Fentry, rest, false),
            "fexit" => hook(Kind::Fentry, rest, true),
            "kprobe" => hook(Kind::Kprobe, rest.split('+').next()?, false),
            "kretprobe" => hook(Kind::Kprobe, rest.split('+').next()?, true),
            _ => None,
        }
    }

    fn family(&self) -> u8 {
        match self.kind {
            Kind::TpBtf | Kind::RawTp | Kind::Tracepoint => 0,
            Kind::Fentry | Kind::Kprobe => 1,
        }
    }
}

/// Whether the kernel's own BTF is readable where libbpf looks for it (tp_btf, fentry and
/// CO-RE without `--btf` need it).
pub fn kernel_btf_available() -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open("/sys/kernel/btf/vmlinux").and_then(|mut f| f.read_exact(&mut magic)).is_ok()
        && u16::from_le_bytes(magic) == 0xeb9f
}

/// One program of the object and what the plan does with it.
#[derive(Debug, Clone)]
pub struct PlannedProgram {
    pub name: String,
    pub section: String,
    hook: Option<Hook>,
    /// Loaded (autoload) in the current plan.
    pub enabled: bool,
    /// A tp_btf program loaded as raw_tp.
    pub as_raw_tp: bool,
    /// Other kinds of the same hook, best first, not tried yet.
    pending: Vec<usize>,
}

/// Which programs of an object load, and as what.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub programs: Vec<PlannedProgram>,
}

impl Plan {
    /// The first plan: in each hook carried in several kinds, the best kind the kernel offers
    /// (judged by `kernel_btf`); the other kinds wait as fallbacks. `programs`: name,
    /// section and autoload (`SEC("?...")` programs start without it and stay so).
    pub fn new(programs: &[(String, String, bool)], kernel_btf: bool) -> Plan {
        let mut out: Vec<PlannedProgram> = programs
            .iter()
            .map(|(name, section, autoload)| PlannedProgram {
                name: name.clone(),
                section: section.clone(),
                hook: if *autoload { Hook::of(section) } else { None },
                enabled: *autoload,
                as_raw_tp: false,
                pending: Vec::new(),
            })
            .collect();
        let n = out.len();
        for i in 0..n {
            let Some(hi) = out[i].hook.clone() else { continue };
            if !out[i].enabled {
                continue;
            }
            // Every program of the same hook in another kind, i first among its own kind.
            let mut group: Vec<usize> = (0..n)
                .filter(|&j| {
                    out[j]
                        .hook
                        .as_ref()
                        .is_some_and(|h| h.family() == hi.family() && h.event == hi.event && h.ret == hi.ret)
                })
                .collect();
            let kinds: std::collections::BTreeSet<Kind> =
                group.iter().filter_map(|&j| out[j].hook.as_ref().map(|h| h.kind)).collect();
            if kinds.len() < 2 {
                continue;
            }
            let usable = |k: Kind| kernel_btf || !matches!(k, Kind::TpBtf | Kind::Fentry);
            group.sort_by_key(|&j| out[j].hook.as_ref().map(|h| (!usable(h.kind), h.kind)));
            let best = group[0];
            for &j in &group[1..] {
                out[j].enabled = false;
            }
            out[best].pending = group[1..].to_vec();
        }
        if !kernel_btf {
            for p in out.iter_mut().filter(|p| p.enabled) {
                p.as_raw_tp = p.hook.as_ref().is_some_and(|h| h.kind == Kind::TpBtf);
            }
        }
        Plan { programs: out }
    }

    /// Sets autoload and program types of a freshly opened object to this plan; `only`
    /// restricts loading to one program (to find out whether it loads alone).
    pub fn apply(&self, open: &mut OpenObject, only: Option<&str>) {
        for mut prog in open.progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            let Some(p) = self.programs.iter().find(|p| p.name == name) else { continue };
            prog.set_autoload(p.enabled && only.map_or(true, |o| o == name));
            if p.as_raw_tp {
                // A changed type drops libbpf's section handler (its BTF lookup of the target):
                // the program loads as a plain raw tracepoint, attached by name below.
                prog.set_prog_type(ProgramType::RawTracepoint);
                prog.set_attach_type(ProgramAttachType::CgroupInetIngress);
            }
        }
    }

    /// After `name` failed to load: the next thing to try for its hook (an alternative kind,
    /// or, with `retarget`, a tp_btf program as raw_tp), switched on in the plan. `None`:
    /// nothing left.
    pub fn fall_back(&mut self, name: &str, retarget: bool) -> Option<String> {
        let i = self.programs.iter().position(|p| p.name == name)?;
        let is_tp_btf = self.programs[i].hook.as_ref().is_some_and(|h| h.kind == Kind::TpBtf);
        if !self.programs[i].pending.is_empty() {
            let pending = std::mem::take(&mut self.programs[i].pending);
            self.programs[i].enabled = false;
            let next = pending[0];
            self.programs[next].enabled = true;
            self.programs[next].pending = pending[1..].to_vec();
            if is_tp_btf && self.programs[next].hook.as_ref().is_some_and(|h| h.kind == Kind::TpBtf) {
                self.programs[next].as_raw_tp = self.programs[i].as_raw_tp;
            }
            return Some(self.programs[next].name.clone());
        }
        if retarget && is_tp_btf && !self.programs[i].as_raw_tp {
            self.programs[i].as_raw_tp = true;
            return Some(name.to_string());
        }
        None
    }

    pub fn get(&self, name: &str) -> Option<&PlannedProgram> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The programs the plan leaves out in favour of another kind of the same hook (not those
    /// off from the start: `SEC("?...")`, per-function copies not used on this kernel).
    pub fn replaced(&self) -> impl Iterator<Item = &PlannedProgram> {
        self.programs.iter().filter(|p| !p.enabled && p.hook.is_some())
    }
}

/// For a program section: `Some(retprobe)` when ebpfx attaches it to the `--probe` functions.
pub fn probe_section(section: &str) -> Option<bool> {
    match section {
        "uprobe" | "uprobe.s" => Some(false),
        "uretprobe" | "uretprobe.s" => Some(true),
        _ => None,
    }
}

/// Before load: picks the programs that attach to the `--probe` functions. Where the kernel has
/// BPF cookies (Linux 5.15+) those are the plain programs, each attached to every function with
/// the function's index across all `--probe` targets as cookie (through multi links where the
/// kernel has them, which must be set before load). Where it has none, the object's
/// per-function copies `NAME__slotNNN` (bpf/slots.bpf.h) are loaded instead, copy i for function
/// i, as many as there are functions; the other programs in probe sections are not loaded.
pub fn prepare_probe_programs(open: &mut OpenObject, probes: Option<&ProbeSet>) -> anyhow::Result<()> {
    let cookies = probes.is_none() || kernel_has_attach_cookie();
    let wanted = probes.map_or(0, |s| s.function_count());
    let multi = probes.filter(|s| s.uprobe_multi || s.kprobe_multi).map(|s| s.uprobe_multi);
    let mut slots = 0usize;
    for mut prog in open.progs_mut() {
        if probe_section(&prog.section().to_string_lossy()).is_none() {
            continue;
        }
        match slot_of(&prog.name().to_string_lossy()) {
            Some(i) => {
                slots = slots.max(i + 1);
                prog.set_autoload(!cookies && i < wanted);
            }
            None if !cookies => {} // decided below: only when the object has copies to use
            None => {
                if let Some(uprobe) = multi {
                    prog.set_attach_type(if uprobe {
                        ProgramAttachType::TraceUprobeMulti
                    } else {
                        ProgramAttachType::KprobeMulti
                    });
                }
            }
        }
    }
    if cookies || slots == 0 {
        return Ok(());
    }
    if wanted > slots {
        let specs: Vec<&str> = probes.map(|s| s.targets.iter().map(|t| t.spec.as_str()).collect()).unwrap_or_default();
        return Err(usage_err(format!(
            "--probe {}: matches {wanted} functions, but this kernel has no BPF cookies (bpf_get_attach_cookie, Linux 5.15+), and without them ebpfx tells at most {slots} functions apart: narrow the pattern",
            specs.join(" --probe ")
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

/// Whether programs attached to functions can read a BPF cookie (`bpf_get_attach_cookie`,
/// Linux 5.15+), asked of the kernel itself (by its release where it cannot be asked).
/// `EBPFX_NO_ATTACH_COOKIE=1` answers no (the path of
/// older kernels, for tests).
pub fn kernel_has_attach_cookie() -> bool {
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
    if r < 0 {
        // The probe itself could not run (no privileges, say): judge by the release.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        return crate::targets::release_at_least(&release, (5, 15));
    }
    r == 1
}

/// Attaches a per-function copy (kernels without BPF cookies) to its one function, no cookie.
fn attach_slot(prog: &ProgramMut<'_>, slot: usize, retprobe: bool, set: &ProbeSet) -> anyhow::Result<Vec<Link>> {
    let (target, f) = set.function_at(slot).ok_or_else(|| anyhow!("program slot {slot} has no --probe function"))?;
    let link = if target.kernel {
        prog.attach_kprobe(retprobe, &f.name).map_err(|e| {
            let why = explain::kprobe_failure(if retprobe { "kretprobe" } else { "kprobe" }, Some(f), &e);
            anyhow!("{why}")
        })?
    } else {
        let opts = UprobeOpts { retprobe, ..Default::default() };
        prog.attach_uprobe_with_opts(-1, &target.binary, f.file_offset as usize, opts).map_err(|e| {
            anyhow!(
                "attaching a {} to {} in {} (file offset {:#x}): {e:#}",
                if retprobe { "uretprobe" } else { "uprobe" },
                f.name,
                target.binary.display(),
                f.file_offset
            )
        })?
    };
    Ok(vec![link])
}

/// The label of a `--probe` program for messages: what it is attached as.
pub fn probe_kind(retprobe: bool, probes: Option<&ProbeSet>) -> String {
    let (k, u) = match probes {
        Some(s) => (s.targets.iter().any(|t| t.kernel), s.targets.iter().any(|t| !t.kernel)),
        None => (false, true),
    };
    let ret = if retprobe { "ret" } else { "" };
    match (k, u) {
        (true, true) => format!("k{ret}probe+u{ret}probe"),
        (true, false) => format!("k{ret}probe"),
        _ => format!("u{ret}probe"),
    }
}

/// Attaches `prog` at the entry (or return) of every `--probe` function, cookie = index.
/// On failure the links made so far are dropped (detached) before returning.
pub fn attach_probes(prog: &ProgramMut<'_>, retprobe: bool, probes: Option<&ProbeSet>) -> anyhow::Result<Vec<Link>> {
    let set = probes.ok_or_else(|| {
        anyhow!(
            "this program attaches at run time to the functions of --probe (ebpfx run NAME --probe BINARY:FUNCTION)"
        )
    })?;
    if let Some(slot) = slot_of(&prog.name().to_string_lossy()) {
        return attach_slot(prog, slot, retprobe, set);
    }
    let (ukind, kkind) = if retprobe { ("uretprobe", "kretprobe") } else { ("uprobe", "kprobe") };
    let mut links = Vec::new();
    for (ti, target) in set.targets.iter().enumerate() {
        let first = set.first_cookie(ti);
        let cookies: Vec<u64> = (first..first + target.functions.len() as u64).collect();
        if target.kernel && set.kprobe_multi {
            let opts = KprobeMultiOpts {
                symbols: target.functions.iter().map(|f| f.name.clone()).collect(),
                cookies,
                retprobe,
                ..Default::default()
            };
            let link = prog.attach_kprobe_multi_with_opts(opts).map_err(|e| {
                let n = target.functions.len();
                // Name the function when there is one; for many, the kernel does not say which.
                let why = explain::kprobe_failure(kkind, if n == 1 { target.functions.first() } else { None }, &e);
                anyhow!(
                    "{why} ({n} kernel function{} of --probe {} through one kprobe_multi link; EBPFX_NO_KPROBE_MULTI=1 attaches one kprobe per function and names the one that fails)",
                    if n == 1 { "" } else { "s" },
                    target.spec
                )
            })?;
            links.push(link);
        } else if target.kernel {
            // A glob skips the functions the kernel refuses a kprobe (where its lists could
            // not be read beforehand) and says so; a plain name, or a kernel that refuses
            // them all, fails with the cause.
            let glob = crate::targets::glob::is_glob(target.spec.split_once(':').map_or("", |(_, p)| p));
            let mut refused: Vec<(String, String)> = Vec::new();
            let before = links.len();
            for (f, cookie) in target.functions.iter().zip(cookies) {
                let opts = KprobeOpts { cookie, ..Default::default() };
                match prog.attach_kprobe_with_opts(retprobe, &f.name, opts) {
                    Ok(link) => links.push(link),
                    Err(e) => {
                        let why = explain::kprobe_failure(kkind, Some(f), &e);
                        let skippable =
                            matches!(super::errno_of(&e), Some(libc::ENOENT | libc::EINVAL | libc::EADDRNOTAVAIL))
                                && explain::kernel_has_kprobes();
                        if !glob || !skippable {
                            return Err(anyhow!("{why}"));
                        }
                        refused.push((f.name.clone(), why));
                    }
                }
            }
            if links.len() == before {
                if let Some((_, why)) = refused.first() {
                    return Err(anyhow!("{why} (and every other function of --probe {})", target.spec));
                }
            }
            if !refused.is_empty() {
                let names: Vec<&str> = refused.iter().take(5).map(|(n, _)| n.as_str()).collect();
                eprintln!(
                    "ebpfx: --probe {}: skipped {} of {} functions the kernel refused a {kkind} ({}{})",
                    target.spec,
                    refused.len(),
                    target.functions.len(),
                    names.join(", "),
                    if refused.len() > 5 { ", ..." } else { "" }
                );
            }
        } else if set.uprobe_multi {
            let opts = UprobeMultiOpts {
                offsets: target.functions.iter().map(|f| f.file_offset as usize).collect(),
                cookies,
                retprobe,
                ..Default::default()
            };
            let link = prog.attach_uprobe_multi_with_opts(-1, &target.binary, "", opts).map_err(|e| {
                anyhow!(
                    "attaching a {ukind} to {} functions of {}: {e:#}",
                    target.functions.len(),
                    target.binary.display()
                )
            })?;
            links.push(link);
        } else {
            for (f, cookie) in target.functions.iter().zip(cookies) {
                let opts = UprobeOpts { cookie, retprobe, ..Default::default() };
                let link =
                    prog.attach_uprobe_with_opts(-1, &target.binary, f.file_offset as usize, opts).map_err(|e| {
                        anyhow!(
                            "attaching a {ukind} to {} in {} (file offset {:#x}): {e:#}",
                            f.name,
                            target.binary.display(),
                            f.file_offset
                        )
                    })?;
                links.push(link);
            }
        }
    }
    Ok(links)
}

/// Attaches a program the plan loaded as raw_tp in place of tp_btf.
pub fn attach_as_raw_tp(prog: &ProgramMut<'_>, section: &str) -> anyhow::Result<Link> {
    let event = section.split_once('/').map(|(_, e)| e).unwrap_or(section);
    prog.attach_raw_tracepoint(event)
        .map_err(|e| anyhow!("attaching raw tracepoint {event} (in place of {section}): {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progs(list: &[(&str, &str)]) -> Vec<(String, String, bool)> {
        list.iter().map(|(n, s)| (n.to_string(), s.to_string(), true)).collect()
    }

    fn enabled(plan: &Plan) -> Vec<&str> {
        plan.programs.iter().filter(|p| p.enabled).map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn hooks_of_sections() {
        assert_eq!(
            Hook::of("tracepoint/sched/sched_switch").map(|h| (h.kind, h.event)),
            Some((Kind::Tracepoint, "sched_switch".into()))
        );
        assert_eq!(Hook::of("kretprobe/vfs_read").map(|h| (h.kind, h.ret)), Some((Kind::Kprobe, true)));
        assert_eq!(Hook::of("fexit/vfs_read").map(|h| (h.kind, h.ret)), Some((Kind::Fentry, true)));
        assert_eq!(Hook::of("uprobe"), None);
        assert_eq!(Hook::of("xdp/lo"), None);
    }

    #[test]
    fn best_kind_first_and_fallbacks_in_order() {
        let list = progs(&[
            ("sw_btf", "tp_btf/sched_switch"),
            ("sw_raw", "raw_tp/sched_switch"),
            ("sw_tp", "tracepoint/sched/sched_switch"),
            ("rd_f", "fentry/vfs_read"),
            ("rd_k", "kprobe/vfs_read"),
            ("rd_kret", "kretprobe/vfs_read"),
            ("other", "tp_btf/sys_enter"),
            ("other2", "tp_btf/sys_enter"),
        ]);
        let mut plan = Plan::new(&list, true);
        assert_eq!(enabled(&plan), ["sw_btf", "rd_f", "rd_kret", "other", "other2"]);
        assert_eq!(plan.fall_back("sw_btf", true).as_deref(), Some("sw_raw"));
        assert_eq!(plan.fall_back("sw_raw", true).as_deref(), Some("sw_tp"));
        assert_eq!(plan.fall_back("sw_tp", true), None);
        assert_eq!(plan.fall_back("rd_f", true).as_deref(), Some("rd_k"));
        assert_eq!(enabled(&plan), ["sw_tp", "rd_k", "rd_kret", "other", "other2"]);
        // Two programs of one kind on one hook are both kept; a lone tp_btf falls back to raw_tp.
        assert_eq!(plan.fall_back("other", true).as_deref(), Some("other"));
        assert!(plan.get("other").is_some_and(|p| p.as_raw_tp && p.enabled));
        assert_eq!(plan.fall_back("other", true), None);
    }

    #[test]
    fn without_kernel_btf_no_tp_btf_or_fentry() {
        let list = progs(&[
            ("sw_btf", "tp_btf/sched_switch"),
            ("sw_tp", "tracepoint/sched/sched_switch"),
            ("rd_f", "fentry/vfs_read"),
            ("rd_k", "kprobe/vfs_read"),
            ("lone", "tp_btf/sys_enter"),
        ]);
        let plan = Plan::new(&list, false);
        assert_eq!(enabled(&plan), ["sw_tp", "rd_k", "lone"]);
        assert!(plan.get("lone").is_some_and(|p| p.as_raw_tp));
        assert_eq!(plan.replaced().count(), 2);
    }

    #[test]
    fn programs_without_autoload_stay_off() {
        let mut list = progs(&[("a", "tp_btf/sched_switch"), ("b", "raw_tp/sched_switch")]);
        list[0].2 = false;
        let plan = Plan::new(&list, true);
        assert_eq!(enabled(&plan), ["b"]);
    }
}
