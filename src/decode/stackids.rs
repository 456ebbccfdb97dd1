//! Stack ids: a `kstack` or `ustack` label of 4 bytes holds the id `bpf_get_stackid` returned
//! (bpf/stacks.bpf.h), and the frames come from the config's stack-trace map, read after the
//! counts and carried with the raw map ([`RawMap::stack_traces`]). The decoders then print the
//! same frames as for a key that holds the addresses inline.
//!
//! A negative id is the error of a failed capture: `-EFAULT` means there was no stack of that
//! kind (a kernel thread's user stack, the kernel stack of a sample taken in user mode) and
//! decodes to no frames, as an all-zero inline stack does; any other error (`-EEXIST`: a hash
//! collision with another stack already in the map; `-ENOMEM`: the stack map is full) is a lost
//! stack, printed as the frame [`LOST_FRAME`] and counted in a warning ([`lost_note`]).
use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Label, MetricConfig};
use crate::raw::{RawMap, StackTraces};

/// The frame text of a stack that could not be captured.
pub const LOST_FRAME: &str = "[lost stack]";

/// Size of a stack-id label.
const ID_SIZE: usize = 4;

/// Whether `label` holds a stack id rather than inline frames.
pub fn is_stack_id_label(label: &Label) -> bool {
    label.size == ID_SIZE && label.decoders.first().is_some_and(|d| d.name == "kstack" || d.name == "ustack")
}

/// Whether any label of `metric` is a stack id: its map is read with the stack-trace map.
pub fn uses_stack_ids(metric: &MetricConfig) -> bool {
    metric.labels.iter().any(is_stack_id_label)
}

/// Where the stack ids of `spec`'s keys are: (byte offset, label name) of each stack-id label;
/// empty when there is none or `raw`'s keys are shorter than the labels.
fn id_fields<'a>(spec: &'a MetricConfig, raw: &RawMap) -> Vec<(usize, &'a str)> {
    let mut offset = 0usize;
    let mut fields = Vec::new();
    for l in &spec.labels {
        if is_stack_id_label(l) {
            fields.push((offset, l.name.as_str()));
        }
        offset = offset.saturating_add(l.size).saturating_add(l.padding);
    }
    if raw.key_size < offset {
        fields.clear();
    }
    fields
}

/// The stack ids the keys of `raw` hold (captures that succeeded, i.e. not negative), each once:
/// the only stacks a read of the stack-trace map needs to fetch.
pub fn referenced_ids(spec: &MetricConfig, raw: &RawMap, into: &mut std::collections::BTreeSet<u32>) {
    let fields = id_fields(spec, raw);
    for i in 0..raw.len() {
        let key = raw.key(i);
        for &(at, _) in &fields {
            if let Some(Ok(id)) = key.get(at..at + ID_SIZE).map(id_of) {
                if id >= 0 {
                    into.insert(id as u32);
                }
            }
        }
    }
}

/// What a stack id stands for.
pub(super) enum Stack<'a> {
    Frames(&'a [u64]),
    /// The capture failed (or the id is not in the map): printed as [`LOST_FRAME`].
    Lost,
}

/// The stack-trace map of the metric being decoded, indexed by id.
#[derive(Debug, Default)]
pub(super) struct StackTable {
    traces: Option<Arc<StackTraces>>,
    index: HashMap<u32, usize>,
}

impl StackTable {
    /// Points the table at `traces` (the raw map's), re-indexing only when it changed.
    pub(super) fn set(&mut self, traces: Option<&Arc<StackTraces>>) {
        let same = match (&self.traces, traces) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        self.traces = traces.cloned();
        self.index = self
            .traces
            .as_ref()
            .map(|t| t.ids.iter().enumerate().map(|(i, &id)| (id, i)).collect())
            .unwrap_or_default();
    }

    /// The stack of a 4-byte id field.
    pub(super) fn lookup(&self, field: &[u8]) -> Result<Stack<'_>, String> {
        let id = id_of(field)?;
        if id == -libc::EFAULT {
            return Ok(Stack::Frames(&[]));
        }
        if id < 0 {
            return Ok(Stack::Lost);
        }
        let Some(traces) = &self.traces else {
            return Err(
                "a 4-byte stack label is a stack id, and the BPF object has no BPF_MAP_TYPE_STACK_TRACE map to read its frames from"
                    .to_string(),
            );
        };
        Ok(match self.index.get(&(id as u32)) {
            Some(&i) => Stack::Frames(traces.frames_of(i)),
            None => Stack::Lost,
        })
    }
}

fn id_of(field: &[u8]) -> Result<i32, String> {
    let b: [u8; ID_SIZE] =
        field.try_into().map_err(|_| format!("a stack id is {ID_SIZE} bytes, got {}", field.len()))?;
    Ok(i32::from_ne_bytes(b))
}

/// Why a stack was lost, in a user's words.
fn reason(id: i32) -> &'static str {
    match -id {
        _ if id >= 0 => "id missing from the stack map",
        libc::EEXIST => "hash collision in the stack map (EEXIST)",
        libc::ENOMEM => "stack map full (ENOMEM)",
        _ => "other capture error",
    }
}

/// A warning when rows of `raw` show lost stacks: how many entries, their share of the
/// metric's total value, and why, per stack kind. `None` when nothing was lost.
pub fn lost_note(config: &str, spec: &MetricConfig, raw: &RawMap) -> Option<String> {
    let fields = id_fields(spec, raw);
    if fields.is_empty() {
        return None;
    }
    let known: Option<std::collections::HashSet<u32>> =
        raw.stack_traces.as_ref().map(|t| t.ids.iter().copied().collect());
    let (mut total, mut lost_value, mut lost_rows) = (0u64, 0u64, 0u64);
    // (label, reason) -> entries
    let mut why: std::collections::BTreeMap<(&str, &'static str), u64> = std::collections::BTreeMap::new();
    for i in 0..raw.len() {
        let key = raw.key(i);
        let value: u64 = raw.value(i).iter().fold(0u64, |a, v| a.saturating_add(*v));
        total = total.saturating_add(value);
        let mut lost = false;
        for &(at, name) in &fields {
            let Some(Ok(id)) = key.get(at..at + ID_SIZE).map(id_of) else { continue };
            let in_map = id >= 0 && known.as_ref().is_some_and(|k| k.contains(&(id as u32)));
            if id == -libc::EFAULT || in_map || (id >= 0 && known.is_none()) {
                continue;
            }
            lost = true;
            *why.entry((name, reason(id))).or_default() += 1;
        }
        if lost {
            lost_rows += 1;
            lost_value = lost_value.saturating_add(value);
        }
    }
    if lost_rows == 0 {
        return None;
    }
    let reasons: Vec<String> = why.iter().map(|((label, r), n)| format!("{label}: {n} by {r}")).collect();
    Some(format!(
        "config {config}: metric {}: {lost_rows} map entries (value {lost_value} of {total}) have a stack that could not be captured, shown as the frame {LOST_FRAME} ({}); see docs/stacks.md",
        spec.name,
        reasons.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DecoderSpec;

    fn label(name: &str, size: usize, padding: usize, decoder: &str) -> Label {
        Label {
            name: name.into(),
            size,
            padding,
            decoders: vec![DecoderSpec { name: decoder.into(), static_map: None, allow_unknown: false, regexps: None }],
        }
    }

    fn spec() -> MetricConfig {
        MetricConfig {
            name: "samples_total".into(),
            help: "h".into(),
            labels: vec![label("pid", 4, 0, "uint"), label("kstack", 4, 0, "kstack"), label("ustack", 4, 4, "ustack")],
            kind: crate::config::MetricKind::Counter { perf_event_array: false },
        }
    }

    fn key(pid: u32, k: i32, u: i32) -> Vec<u8> {
        let mut v = pid.to_ne_bytes().to_vec();
        v.extend_from_slice(&k.to_ne_bytes());
        v.extend_from_slice(&u.to_ne_bytes());
        v.extend_from_slice(&[0; 4]);
        v
    }

    fn traces() -> Arc<StackTraces> {
        Arc::new(StackTraces { name: "stacks".into(), depth: 3, ids: vec![7, 9], frames: vec![1, 2, 0, 5, 6, 7] })
    }

    #[test]
    fn ids_resolve_to_frames_and_errors_to_empty_or_lost() {
        let mut t = StackTable::default();
        t.set(Some(&traces()));
        let frames = |f: &[u8]| match t.lookup(f) {
            Ok(Stack::Frames(fr)) => Some(fr.to_vec()),
            Ok(Stack::Lost) => None,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(frames(&7i32.to_ne_bytes()), Some(vec![1, 2]));
        assert_eq!(frames(&9i32.to_ne_bytes()), Some(vec![5, 6, 7]));
        assert_eq!(frames(&(-libc::EFAULT).to_ne_bytes()), Some(vec![]));
        assert_eq!(frames(&(-libc::EEXIST).to_ne_bytes()), None);
        assert_eq!(frames(&(-libc::ENOMEM).to_ne_bytes()), None);
        assert_eq!(frames(&8i32.to_ne_bytes()), None);
        let none = StackTable::default();
        assert!(none.lookup(&7i32.to_ne_bytes()).is_err());
        assert!(none.lookup(&(-libc::EEXIST).to_ne_bytes()).is_ok());
    }

    #[test]
    fn lost_stacks_are_counted_by_kind_and_reason() {
        let mut raw = RawMap { name: "samples_total".into(), key_size: 16, slots: 1, ..RawMap::default() };
        raw.stack_traces = Some(traces());
        raw.push(&key(1, 7, 9), &[10]);
        raw.push(&key(2, -libc::EFAULT, 9), &[5]);
        assert_eq!(lost_note("c", &spec(), &raw), None);
        raw.push(&key(3, -libc::EEXIST, 9), &[3]);
        raw.push(&key(4, 7, -libc::ENOMEM), &[2]);
        raw.push(&key(5, -libc::EEXIST, -libc::EEXIST), &[1]);
        let note = lost_note("c", &spec(), &raw).expect("lost stacks");
        assert!(note.starts_with("config c: metric samples_total: 3 map entries (value 6 of 21)"), "{note}");
        assert!(note.contains("kstack: 2 by hash collision in the stack map (EEXIST)"), "{note}");
        assert!(note.contains("ustack: 1 by hash collision in the stack map (EEXIST)"), "{note}");
        assert!(note.contains("ustack: 1 by stack map full (ENOMEM)"), "{note}");
        assert!(note.contains(LOST_FRAME), "{note}");
    }

    #[test]
    fn only_four_byte_stack_labels_are_ids() {
        assert!(uses_stack_ids(&spec()));
        assert!(!is_stack_id_label(&label("kstack", 256, 0, "kstack")));
        assert!(!is_stack_id_label(&label("pid", 4, 0, "uint")));
    }
}
