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
    /// cannot be read, leaves every frame unknown.
    fn symbolize(&mut self, pid: u32, addrs: &[u64]) -> Vec<Option<Box<str>>> {
        // Pid 0 would mean "this process" to blazesym; it is the idle task and has no user stack.
        if pid == 0 {
            return vec![None; addrs.len()];
        }
        let symbolizer = self.symbolizer.get_or_insert_with(|| Symbolizer::builder().enable_demangling(true).build());
        let mut process = Process::new(Pid::from(pid));
        process.debug_syms = false;
        let source = Source::Process(process);
        match symbolizer.symbolize(&source, Input::AbsAddr(addrs)) {
            Ok(results) if results.len() == addrs.len() => results
                .into_iter()
                .map(|r| match r {
                    Symbolized::Sym(sym) => Some(clean(&sym.name).into_boxed_str()),
                    Symbolized::Unknown(_) => None,
                })
                .collect(),
            _ => vec![None; addrs.len()],
        }
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
    fn control_characters_are_replaced() {
        assert_eq!(clean("a\tb\nc"), "a b c");
    }
}
