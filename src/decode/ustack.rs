//! `ustack` (ebpfx addition): user-space return addresses → function names, through the ELF
//! files mapped by the process whose id is the row's `pid` label (blazesym reads
//! `/proc/PID/maps` and the binaries through `/proc/PID/map_files`, so it needs the process
//! alive: ebpfx decodes right after reading the maps). Unknown frames print as `??`.
//!
//! The input is laid out like `kstack`'s: host-order u64 addresses, leaf first, up to the first
//! zero. Every frame but the leaf is a return address, which points after the call; it is
//! looked up one byte earlier so that a call ending a function names the caller, not the next
//! function. Names are cached per (pid, address) for the whole run (frozen at first sight, like
//! the other environment lookups, docs/config-format.md#decoders).
//!
//! Addresses the ELF symbol tables do not name (a stripped binary) are looked up again with
//! debug info, which blazesym finds through the binary's `.gnu_debuglink` (beside the binary,
//! or under /usr/lib/debug and /lib/debug, also by build id: `.build-id/xx/rest.debug`).
//!
//! A process whose `/proc/PID/maps` cannot be read (another user's, without CAP_SYS_PTRACE or
//! CAP_PERFMON), or that maps a file ebpfx may not read, leaves every frame `??`: such pids are
//! kept for one warning each per run ([`UserSymbols::take_unreadable`]).
use std::collections::HashMap;
use std::fmt;

use blazesym::symbolize::source::{Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::Pid;

/// Text of a frame that could not be symbolized.
pub(super) const UNKNOWN: &str = "??";

#[derive(Default)]
pub(super) struct UserSymbols {
    /// Created on first use: most runs never symbolize user stacks.
    symbolizer: Option<Symbolizer>,
    names: HashMap<(u32, u64), Option<Box<str>>>,
    /// Processes whose maps could not be read since the last [`UserSymbols::take_unreadable`],
    /// with the reason; `reported` holds every pid already warned about.
    unreadable: std::collections::BTreeMap<u32, String>,
    reported: std::collections::HashSet<u32>,
}

impl fmt::Debug for UserSymbols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserSymbols {{ cached: {} }}", self.names.len())
    }
}

/// The address to look up for frame `i` (see the module documentation).
fn lookup_addr(i: usize, addr: u64) -> u64 {
    if i == 0 {
        addr
    } else {
        addr.saturating_sub(1)
    }
}

impl UserSymbols {
    /// Appends the names of `frames` of process `pid`, joined by `\n`.
    pub(super) fn stack(&mut self, pid: u32, frames: &[u64], out: &mut Vec<u8>) {
        let mut missing: Vec<u64> = frames
            .iter()
            .enumerate()
            .map(|(i, &a)| lookup_addr(i, a))
            .filter(|&a| !self.names.contains_key(&(pid, a)))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let found = self.symbolize(pid, &missing);
            for (addr, name) in missing.into_iter().zip(found) {
                self.names.insert((pid, addr), name);
            }
        }
        for (i, &a) in frames.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            let name = self.names.get(&(pid, lookup_addr(i, a))).and_then(Option::as_deref).unwrap_or(UNKNOWN);
            out.extend_from_slice(name.as_bytes());
        }
    }

    /// One name (or `None`) per address, in order. A process that is gone, or whose maps
    /// cannot be read, leaves every frame unknown (the latter is noted for a warning).
    fn symbolize(&mut self, pid: u32, addrs: &[u64]) -> Vec<Option<Box<str>>> {
        // Pid 0 would mean "this process" to blazesym; it is the idle task and has no user stack.
        if pid == 0 {
            return vec![None; addrs.len()];
        }
        let mut names = match self.pass(pid, addrs, false, true) {
            Ok(names) => names,
            // /proc/PID/map_files needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE): the binaries
            // are then opened by their paths instead.
            Err(e) if e.kind() == blazesym::ErrorKind::PermissionDenied => match self.pass(pid, addrs, false, false) {
                Ok(names) => names,
                Err(e) => {
                    self.note_unreadable(pid, &e);
                    return vec![None; addrs.len()];
                }
            },
            Err(e) => {
                self.note_unreadable(pid, &e);
                return vec![None; addrs.len()];
            }
        };
        // Stripped binaries: their names are in separate debug info.
        let missing: Vec<usize> = (0..names.len()).filter(|&i| names[i].is_none()).collect();
        if !missing.is_empty() {
            let again: Vec<u64> = missing.iter().map(|&i| addrs[i]).collect();
            // One file whose debug info cannot be read fails the whole batch: then each
            // address alone, so that the others still get their names.
            let found = match self.pass(pid, &again, true, true).or_else(|_| self.pass(pid, &again, true, false)) {
                Ok(found) => found,
                Err(_) => again
                    .iter()
                    .map(|a| {
                        self.pass(pid, std::slice::from_ref(a), true, true).ok().and_then(|mut v| v.pop()).flatten()
                    })
                    .collect(),
            };
            for (i, name) in missing.into_iter().zip(found) {
                names[i] = name;
            }
        }
        names
    }

    /// One symbolization of `addrs` in process `pid`, with or without debug info (DWARF and
    /// the debug files it links to), through /proc/PID/map_files or the mapped paths.
    fn pass(
        &mut self,
        pid: u32,
        addrs: &[u64],
        debug_syms: bool,
        map_files: bool,
    ) -> blazesym::Result<Vec<Option<Box<str>>>> {
        let symbolizer = self.symbolizer.get_or_insert_with(|| Symbolizer::builder().enable_demangling(true).build());
        let mut process = Process::new(Pid::from(pid));
        process.debug_syms = debug_syms;
        process.map_files = map_files;
        let source = Source::Process(process);
        let results = symbolizer.symbolize(&source, Input::AbsAddr(addrs))?;
        if results.len() != addrs.len() {
            return Ok(vec![None; addrs.len()]);
        }
        Ok(results
            .into_iter()
            .map(|r| match r {
                Symbolized::Sym(sym) => Some(clean(&sym.name).into_boxed_str()),
                Symbolized::Unknown(_) => None,
            })
            .collect())
    }

    /// Keeps `pid` for a warning when its maps, or a file it maps, cannot be read. A process
    /// that has exited since its stacks were taken is no news (its frames are `??` as
    /// documented), nor is any other failure of the symbolizer (frames `??` too).
    fn note_unreadable(&mut self, pid: u32, err: &blazesym::Error) {
        let why = match std::fs::File::open(format!("/proc/{pid}/maps")) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => format!(
                "/proc/{pid}/maps: permission denied: reading another user's process needs root or CAP_SYS_PTRACE"
            ),
            Err(e) => format!("/proc/{pid}/maps: {e}"),
            Ok(_) if err.kind() == blazesym::ErrorKind::PermissionDenied => {
                format!("a file it maps: {err:#}: run ebpfx as root, or make the file readable")
            }
            Ok(_) => return,
        };
        self.note(pid, why);
    }

    fn note(&mut self, pid: u32, why: String) {
        if !self.reported.contains(&pid) {
            self.unreadable.insert(pid, why);
        }
    }

    /// One warning for the processes whose maps could not be read since the last call (each
    /// pid is named in one warning per run), or `None`.
    pub(super) fn take_unreadable(&mut self) -> Option<String> {
        if self.unreadable.is_empty() {
            return None;
        }
        let found = std::mem::take(&mut self.unreadable);
        self.reported.extend(found.keys().copied());
        const SHOWN: usize = 10;
        let mut parts: Vec<String> = found.iter().take(SHOWN).map(|(pid, why)| format!("pid {pid} ({why})")).collect();
        if found.len() > SHOWN {
            parts.push(format!("and {} more", found.len() - SHOWN));
        }
        Some(format!(
            "user stack frames of {} process{} print as ??: their memory maps could not be read: {}",
            found.len(),
            if found.len() == 1 { "" } else { "es" },
            parts.join("; ")
        ))
    }
}

/// A name safe to embed in a `\n`-joined label and a folded line: no control characters.
fn clean(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[no_mangle]
    #[inline(never)]
    pub extern "C" fn ebpfx_ustack_test_marker() -> u64 {
        std::hint::black_box(42)
    }

    #[test]
    fn symbolizes_this_process() {
        let addr = (ebpfx_ustack_test_marker as extern "C" fn() -> u64) as usize as u64;
        let mut syms = UserSymbols::default();
        let mut out = Vec::new();
        // As a leaf (exact address) and as a return address inside the function (+1 looked up −1).
        syms.stack(std::process::id(), &[addr, addr + 1], &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "ebpfx_ustack_test_marker\nebpfx_ustack_test_marker");
    }

    #[test]
    fn unknown_frames_and_missing_processes() {
        let mut syms = UserSymbols::default();
        let mut out = Vec::new();
        syms.stack(std::process::id(), &[8], &mut out);
        assert_eq!(out, b"??");
        out.clear();
        syms.stack(0, &[0x1000, 0x2000], &mut out);
        assert_eq!(out, b"??\n??");
        out.clear();
        // No such process (pid_max is at most 2^22).
        syms.stack(u32::MAX - 1, &[0x401000], &mut out);
        assert_eq!(out, b"??");
    }

    /// Through `Decoders::metric`: the pid comes from the earlier `pid` label of each row.
    #[test]
    fn decodes_rows_with_their_pid() {
        use crate::config::{DecoderSpec, Label, MetricConfig, MetricKind};
        use crate::decode::{Decoders, Env};
        use crate::model::MetricValues;
        use crate::raw::RawMap;

        let dec =
            |name: &str| vec![DecoderSpec { name: name.into(), static_map: None, allow_unknown: false, regexps: None }];
        let spec = MetricConfig {
            name: "samples_total".into(),
            help: "h".into(),
            labels: vec![
                Label { name: "pid".into(), size: 4, padding: 4, decoders: dec("uint") },
                Label { name: "ustack".into(), size: 16, padding: 0, decoders: dec("ustack") },
            ],
            kind: MetricKind::Counter { perf_event_array: false },
        };
        let addr = (ebpfx_ustack_test_marker as extern "C" fn() -> u64) as usize as u64;
        let key = |pid: u32| {
            let mut k = pid.to_ne_bytes().to_vec();
            k.extend_from_slice(&[0; 4]);
            k.extend_from_slice(&addr.to_ne_bytes());
            k.extend_from_slice(&0u64.to_ne_bytes());
            k
        };
        let mut raw = RawMap { name: "samples_total".into(), key_size: 24, slots: 1, ..Default::default() };
        raw.push(&key(std::process::id()), &[3]);
        raw.push(&key(0), &[1]);
        let mut d = Decoders::new(Env::system());
        let m = d.metric_only("c", &spec, &raw).expect("decodes");
        let MetricValues::Counter(samples) = m.values else { panic!("counter") };
        let got: Vec<(Vec<String>, f64)> = samples.iter().map(|s| (s.labels.to_vec(), s.value)).collect();
        assert_eq!(
            got,
            vec![
                (vec!["0".to_string(), "??".to_string()], 1.0),
                (vec![std::process::id().to_string(), "ebpfx_ustack_test_marker".to_string()], 3.0),
            ]
        );
        // Without a pid (a lone label) the decoder says what it needs.
        let e = d.decode_label(&spec.labels[1], &addr.to_ne_bytes()).expect_err("needs pid");
        assert!(e.0.contains("needs a label `pid`"), "{e}");
    }

    #[test]
    fn unreadable_processes_are_warned_about_once_each() {
        let mut syms = UserSymbols::default();
        assert_eq!(syms.take_unreadable(), None);
        syms.note(7, "permission denied".into());
        syms.note(9, "permission denied".into());
        let w = syms.take_unreadable().expect("a warning");
        assert!(w.starts_with("user stack frames of 2 processes print as ??"), "{w}");
        assert!(w.contains("pid 7 (permission denied); pid 9 (permission denied)"), "{w}");
        // Seen again in a later block: already reported, no new warning; a new pid is.
        syms.note(7, "permission denied".into());
        assert_eq!(syms.take_unreadable(), None);
        syms.note(11, "other".into());
        let w = syms.take_unreadable().expect("a warning");
        assert!(w.contains("1 process print") && w.contains("pid 11 (other)") && !w.contains('7'), "{w}");
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(clean("a\tb\nc"), "a b c");
    }
}
