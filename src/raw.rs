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
}

impl RawMap {
    pub fn len(&self) -> usize {
        if self.key_size == 0 {
            0
        } else {
            self.keys.len() / self.key_size
        }
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

    /// A hash map holding `max_entries` entries has likely dropped updates.
    pub fn is_full(&self) -> bool {
        !self.is_array && self.max_entries > 0 && self.len() >= self.max_entries as usize
    }
}
