//! Raw contents of one BPF map as read from the kernel: the hand-off from `collect` to `decode`.
//! Kept free of libbpf so that tests (and saved snapshots) can build one without a kernel.

/// Every entry of one map. Keys and values are stored flat for speed on large maps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawMap {
    /// Map name (= metric name).
    pub name: String,
    pub key_size: usize,
    /// Number of u64 value slots per entry: 1, or the number of possible CPUs for per-CPU maps.
    pub slots: usize,
    pub per_cpu: bool,
    /// `entries × key_size` bytes.
    pub keys: Vec<u8>,
    /// `entries × slots` values, host order.
    pub values: Vec<u64>,
    /// The map's `max_entries` (0 when unknown): used to warn when a hash map is full.
    pub max_entries: u32,
    /// True for array maps (always "full", never warned about).
    pub is_array: bool,
    /// The config's stack-trace map (a `BPF_MAP_TYPE_STACK_TRACE` read whole after the counts:
    /// [`StackTraces`]), for metrics whose `kstack`/`ustack` labels are 4-byte stack ids. Shared,
    /// and carried unchanged through [`delta`]: ids are never reused, so a full read of the
    /// stacks serves every interval.
    pub stack_traces: Option<std::sync::Arc<StackTraces>>,
}

/// Every stack of a stack-trace map: `ids[i]`'s frames are `frames[i * depth..(i + 1) * depth]`,
/// host-order addresses, leaf first, zero-filled after the last frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StackTraces {
    /// The map's name.
    pub name: String,
    /// Frames per stack (the map's value size / 8).
    pub depth: usize,
    pub ids: Vec<u32>,
    pub frames: Vec<u64>,
}

impl StackTraces {
    /// The frames of stack `i` (an index into `ids`), up to the first zero.
    pub fn frames_of(&self, i: usize) -> &[u64] {
        let all = self.frames.get(i * self.depth..(i + 1) * self.depth).unwrap_or(&[]);
        let end = all.iter().position(|&a| a == 0).unwrap_or(all.len());
        &all[..end]
    }
}

impl RawMap {
    pub fn len(&self) -> usize {
        self.keys.len().checked_div(self.key_size).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Key bytes of entry `i`.
    pub fn key(&self, i: usize) -> &[u8] {
        &self.keys[i * self.key_size..(i + 1) * self.key_size]
    }

    /// Value slots of entry `i` (one per CPU for per-CPU maps).
    pub fn value(&self, i: usize) -> &[u64] {
        &self.values[i * self.slots..(i + 1) * self.slots]
    }

    /// Appends one entry. `values.len()` must equal `slots`.
    pub fn push(&mut self, key: &[u8], values: &[u64]) {
        debug_assert_eq!(key.len(), self.key_size);
        debug_assert_eq!(values.len(), self.slots);
        self.keys.extend_from_slice(key);
        self.values.extend_from_slice(values);
    }

    /// A hash map holding `max_entries` entries is at capacity. That alone does not mean an
    /// update was dropped (the last key may have fit exactly): only a failed insert says so.
    pub fn at_capacity(&self) -> bool {
        !self.is_array && self.max_entries > 0 && self.len() >= self.max_entries as usize
    }
}

/// What changed since `previous` (an earlier read of the same map): per key and slot, the
/// current value minus the earlier one (keys not seen before count in full). Entries that did
/// not change are left out of hash maps; arrays keep every index, as a full read does.
/// This is how `--interval` reports each interval exactly without clearing kernel maps (and
/// losing the events that land between a read and a clear).
pub fn delta(current: &RawMap, previous: &RawMap) -> RawMap {
    let mut before: std::collections::HashMap<&[u8], &[u64]> = std::collections::HashMap::with_capacity(previous.len());
    if previous.key_size == current.key_size && previous.slots == current.slots {
        for i in 0..previous.len() {
            before.insert(previous.key(i), previous.value(i));
        }
    }
    let mut out = RawMap { keys: Vec::new(), values: Vec::new(), ..current.clone() };
    let mut diff = vec![0u64; current.slots];
    for i in 0..current.len() {
        let key = current.key(i);
        let now = current.value(i);
        match before.get(key) {
            Some(then) => {
                for (d, (n, t)) in diff.iter_mut().zip(now.iter().zip(then.iter())) {
                    // A value that went down was reset (map entry deleted and re-created).
                    *d = if n >= t { n - t } else { *n };
                }
            }
            None => diff.copy_from_slice(now),
        }
        if current.is_array || diff.iter().any(|v| *v != 0) {
            out.push(key, &diff);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(u32, &[u64])], slots: usize) -> RawMap {
        let mut m = RawMap { name: "m".into(), key_size: 4, slots, ..RawMap::default() };
        for (k, v) in entries {
            m.push(&k.to_ne_bytes(), v);
        }
        m
    }

    #[test]
    fn delta_subtracts_per_slot_and_drops_unchanged_hash_entries() {
        let prev = map(&[(1, &[5, 5]), (2, &[1, 0])], 2);
        let cur = map(&[(1, &[7, 5]), (2, &[1, 0]), (3, &[4, 4])], 2);
        let d = delta(&cur, &prev);
        assert_eq!(d.len(), 2);
        assert_eq!(d.key(0), &1u32.to_ne_bytes());
        assert_eq!(d.value(0), &[2, 0]);
        assert_eq!(d.value(1), &[4, 4]);
    }

    #[test]
    fn delta_keeps_the_stack_table() {
        let mut prev = map(&[(1, &[5])], 1);
        let traces = std::sync::Arc::new(StackTraces { name: "s".into(), depth: 1, ids: vec![1], frames: vec![9] });
        prev.stack_traces = Some(traces.clone());
        let mut cur = map(&[(1, &[7])], 1);
        cur.stack_traces = Some(traces.clone());
        assert_eq!(delta(&cur, &prev).stack_traces, Some(traces));
    }

    #[test]
    fn delta_keeps_array_indexes_and_handles_resets() {
        let mut prev = map(&[(0, &[10]), (1, &[3])], 1);
        prev.is_array = true;
        let mut cur = map(&[(0, &[10]), (1, &[2])], 1);
        cur.is_array = true;
        let d = delta(&cur, &prev);
        assert_eq!(d.len(), 2);
        assert_eq!(d.value(0), &[0]);
        assert_eq!(d.value(1), &[2]);
    }
}
