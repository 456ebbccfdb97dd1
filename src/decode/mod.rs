//! Raw map contents → labelled samples (spec §5–9).
//!
//! [`Decoders::metric`] turns one [`RawMap`] into one [`Metric`]: rows (§5), key splitting and
//! decoder chains (§6, §7), aggregation (§5.5), counters/gauges (§8) and histograms (§9).
//!
//! Speed: decoded label values are cached per label by field bytes and interned per label, so
//! a row costs a few hash lookups on small integer keys; aggregation hashes tuples of interned
//! ids; sorting compares precomputed per-label ranks. Nothing is allocated per map entry except
//! the output samples themselves.
mod block;
mod cgroup;
mod chain;
mod fasthash;
mod histogram;
mod ksym;
mod net;
mod pci;
mod tables;
mod text;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::config::{Label, MetricConfig, MetricKind};
use crate::model::{Histogram, HistogramSeries, Metric, MetricValues, Sample};
use crate::raw::RawMap;
use fasthash::{hash_bytes, FastMap, HashIndex};

pub use histogram::go_uint_parse;

/// Where the system-dependent decoders look things up. Tests point these at fixtures.
#[derive(Debug, Clone, PartialEq)]
pub struct Env {
    /// `/proc/kallsyms` (`ksym`, `kstack`).
    pub kallsyms: PathBuf,
    /// `/proc/partitions` (`majorminor`).
    pub partitions: PathBuf,
    /// `/sys/fs/cgroup` (`cgroup`).
    pub cgroup_root: PathBuf,
    /// Candidate `pci.ids` files in order of preference; the first that exists is used.
    pub pci_ids: Vec<PathBuf>,
    /// `/sys/class/net` (`ifname`).
    pub net_class: PathBuf,
    /// Which syscall table `syscall` uses.
    pub arch: Arch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture this binary was built for (x86_64 unless aarch64).
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }
}

impl Env {
    /// The real system paths, and the architecture of this build.
    pub fn system() -> Env {
        let mut pci_ids = Vec::new();
        if let Some(home) = std::env::var_os("HOME") {
            pci_ids.push(PathBuf::from(home).join(".cache/pci.ids"));
        }
        pci_ids.push(PathBuf::from("/usr/share/hwdata/pci.ids"));
        pci_ids.push(PathBuf::from("/usr/share/misc/pci.ids"));
        Env {
            kallsyms: PathBuf::from("/proc/kallsyms"),
            partitions: PathBuf::from("/proc/partitions"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            pci_ids,
            net_class: PathBuf::from("/sys/class/net"),
            arch: Arch::host(),
        }
    }
}

/// Why a metric could not be decoded. The whole metric is dropped for this read (Q1).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub config: String,
    pub metric: String,
    pub kind: DecodeErrorKind,
    /// The spec §3.3 detail, e.g. `error decoding labels: total size of key ...`.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// A key failed to split or decode (counted in `decoder_errors`).
    Key,
    /// The raw map is inconsistent (keys/values lengths); counted like a failed map read.
    RawMap,
    /// A histogram bucket label is not an unsigned integer: logged, not counted (§3.3).
    HistogramBucket,
    /// The histogram's bucket configuration cannot be rebuilt: logged, not counted (§3.3).
    HistogramConfig,
}

impl DecodeError {
    /// Whether the caller should add this to the config's decoder error count (spec §3.3).
    pub fn counts_as_decoder_error(&self) -> bool {
        matches!(self.kind, DecodeErrorKind::Key | DecodeErrorKind::RawMap)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "config {}: metric {}: {}",
            self.config, self.metric, self.detail
        )
    }
}

impl std::error::Error for DecodeError {}

/// A single label failed to decode (see [`Decoders::decode_label`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelError(pub String);

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LabelError {}

/// Decodes raw maps. Owns the environment tables (loaded on first use) and the per-metric
/// caches, so keep one for the whole run.
#[derive(Debug)]
pub struct Decoders {
    tables: chain::Tables,
    metrics: HashMap<(String, String), MetricState>,
    scratch: (Vec<u8>, Vec<u8>),
}

/// Field bytes → interned value id, for one label. Fields up to 16 bytes are packed into an
/// integer key; a label's field size is fixed, so packing cannot confuse two fields.
#[derive(Debug, Default)]
struct FieldCache {
    small: FastMap<u128, u32>,
    large: FastMap<Box<[u8]>, u32>,
}

fn pack(field: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b[..field.len()].copy_from_slice(field);
    u128::from_le_bytes(b)
}

impl FieldCache {
    #[inline]
    fn get(&self, field: &[u8]) -> Option<u32> {
        if field.len() <= 16 {
            self.small.get(&pack(field)).copied()
        } else {
            self.large.get(field).copied()
        }
    }

    fn insert(&mut self, field: &[u8], id: u32) {
        if field.len() <= 16 {
            self.small.insert(pack(field), id);
        } else {
            self.large.insert(field.into(), id);
        }
    }
}

/// The distinct values of one label, each stored once.
#[derive(Debug, Default)]
struct ValueTable {
    strings: Vec<Box<str>>,
    index: HashIndex,
}

impl ValueTable {
    fn intern(&mut self, s: &str) -> u32 {
        let h = hash_bytes(s.as_bytes());
        let strings = &self.strings;
        if let Some(id) = self
            .index
            .find(h, |i| strings.get(i as usize).map(|v| &**v) == Some(s))
        {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.into());
        self.index.insert(h, id);
        id
    }

    fn get(&self, id: u32) -> &str {
        self.strings.get(id as usize).map(|s| &**s).unwrap_or("")
    }

    /// `rank[id]`: the position of each value in byte-string order.
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<(u64, u32)> = self
            .strings
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut p = [0u8; 8];
                let n = s.len().min(8);
                p[..n].copy_from_slice(&s.as_bytes()[..n]);
                (u64::from_be_bytes(p), i as u32)
            })
            .collect();
        // A zero-padded big-endian prefix orders like the strings whenever prefixes differ.
        order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| self.get(a.1).cmp(self.get(b.1))));
        let mut rank = vec![0u32; self.strings.len()];
        for (r, &(_, id)) in order.iter().enumerate() {
            if let Some(slot) = rank.get_mut(id as usize) {
                *slot = r as u32;
            }
        }
        rank
    }
}

/// Everything remembered about one metric across reads (spec §6.5).
#[derive(Debug)]
struct MetricState {
    labels: Vec<Label>,
    chains: Vec<Vec<chain::Compiled>>,
    fields: Vec<FieldCache>,
    values: Vec<ValueTable>,
}

impl MetricState {
    fn new(labels: &[Label]) -> MetricState {
        MetricState {
            labels: labels.to_vec(),
            chains: labels.iter().map(|l| chain::compile(&l.decoders)).collect(),
            fields: labels.iter().map(|_| FieldCache::default()).collect(),
            values: labels.iter().map(|_| ValueTable::default()).collect(),
        }
    }
}

/// Decoded rows, then (after [`Rows::merge`]) one entry per distinct label tuple, in output
/// order. Rows are summed by sorting on per-label ranks rather than hashing: the sort is needed
/// for the output order anyway, and equal tuples end up adjacent.
struct Rows {
    width: usize,
    /// `width` interned value ids per row.
    ids: Vec<u32>,
    values: Vec<u64>,
}

impl Rows {
    fn new(width: usize, capacity: usize) -> Rows {
        Rows { width, ids: Vec::with_capacity(capacity * width), values: Vec::with_capacity(capacity) }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn tuple(&self, g: usize) -> &[u32] {
        self.ids.get(g * self.width..(g + 1) * self.width).unwrap_or(&[])
    }

    #[inline]
    fn push(&mut self, ids: &[u32], value: u64) {
        self.ids.extend_from_slice(ids);
        self.values.push(value);
    }

    /// Sorts rows by label values (byte strings, element-wise) and sums rows with equal labels.
    fn merge(self, state: &MetricState) -> Rows {
        let (w, n) = (self.width, self.len());
        if n <= 1 {
            return self;
        }
        if w == 0 {
            let total = self.values.iter().fold(0u64, |a, &v| a.saturating_add(v));
            return Rows { width: 0, ids: Vec::new(), values: vec![total] };
        }
        let ranks: Vec<Vec<u32>> = state.values.iter().take(w).map(ValueTable::ranks).collect();
        let rank = |l: usize, id: u32| ranks.get(l).and_then(|r| r.get(id as usize)).copied().unwrap_or(0);
        let order: Vec<u32> = if w <= 2 {
            let mut keyed: Vec<(u64, u32)> = (0..n)
                .map(|g| {
                    let t = self.tuple(g);
                    let k0 = u64::from(rank(0, t.first().copied().unwrap_or(0)));
                    let k1 = t.get(1).map(|&id| u64::from(rank(1, id))).unwrap_or(0);
                    ((k0 << 32) | k1, g as u32)
                })
                .collect();
            keyed.sort_unstable_by_key(|&(k, _)| k);
            keyed.into_iter().map(|(_, g)| g).collect()
        } else {
            let keys: Vec<u32> = self.ids.chunks_exact(w).flat_map(|t| t.iter().enumerate().map(|(l, &id)| rank(l, id))).collect();
            let key = |g: u32| keys.get(g as usize * w..(g as usize + 1) * w).unwrap_or(&[]);
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_unstable_by(|&x, &y| key(x).cmp(key(y)));
            order
        };
        let mut out = Rows::new(w, n);
        let mut last: Option<&[u32]> = None;
        for g in order {
            let (t, v) = (self.tuple(g as usize), self.values.get(g as usize).copied().unwrap_or(0));
            if last == Some(t) {
                if let Some(sum) = out.values.last_mut() {
                    *sum = sum.saturating_add(v);
                }
            } else {
                out.push(t, v);
                last = Some(t);
            }
        }
        out
    }
}

/// Result of decoding one row's labels.
enum Row {
    Keep,
    Skip,
}

/// The metric's state, rebuilt when its labels changed since the last read.
fn state_for<'a>(
    metrics: &'a mut HashMap<(String, String), MetricState>,
    config: &str,
    spec: &MetricConfig,
) -> &'a mut MetricState {
    let key = (config.to_string(), spec.name.clone());
    let state = metrics
        .entry(key)
        .or_insert_with(|| MetricState::new(&spec.labels));
    if state.labels != spec.labels {
        *state = MetricState::new(&spec.labels);
    }
    state
}

impl Decoders {
    /// Cheap: tables are loaded on first use.
    pub fn new(env: Env) -> Decoders {
        Decoders {
            tables: chain::Tables::new(env),
            metrics: HashMap::new(),
            scratch: (Vec::new(), Vec::new()),
        }
    }

    pub fn env(&self) -> &Env {
        &self.tables.env
    }

    /// Decodes one metric's map. `Err`: the whole metric is dropped for this read (spec §3.3,
    /// Q1); see [`DecodeError::counts_as_decoder_error`] for whether to count it.
    pub fn metric(
        &mut self,
        config: &str,
        spec: &MetricConfig,
        raw: &RawMap,
    ) -> Result<Metric, DecodeError> {
        let err = |(kind, detail): (DecodeErrorKind, String)| DecodeError {
            config: config.to_string(),
            metric: spec.name.clone(),
            kind,
            detail,
        };
        let names = |n: usize| {
            spec.labels
                .iter()
                .take(n)
                .map(|l| l.name.clone())
                .collect::<Vec<_>>()
        };
        let metric = |label_names, values| Metric {
            config: config.to_string(),
            name: spec.name.clone(),
            help: spec.help.clone(),
            label_names,
            values,
        };
        if let MetricKind::Counter {
            perf_event_array: true,
        } = spec.kind
        {
            // Event counters are counted by `collect`, not read from a map.
            return Ok(metric(
                names(spec.labels.len()),
                MetricValues::Counter(Vec::new()),
            ));
        }
        self.tables.new_read();
        let state = state_for(&mut self.metrics, config, spec);
        let groups = rows(&mut self.tables, state, raw, &mut self.scratch).map_err(err)?;
        match &spec.kind {
            MetricKind::Counter { .. } => Ok(metric(
                names(spec.labels.len()),
                MetricValues::Counter(samples(state, &groups)),
            )),
            MetricKind::Gauge => Ok(metric(
                names(spec.labels.len()),
                MetricValues::Gauge(samples(state, &groups)),
            )),
            MetricKind::Histogram(h) => {
                let series = histogram_series(state, &groups, h).map_err(err)?;
                let values = Histogram {
                    bucket_type: h.bucket_type,
                    multiplier: h.multiplier,
                    series,
                };
                Ok(metric(
                    names(spec.labels.len().saturating_sub(1)),
                    MetricValues::Histogram(values),
                ))
            }
        }
    }

    /// Decodes one key (e.g. a `perf_event_array` record already truncated to the key size,
    /// spec §10) into label values in config order, using the metric's caches.
    /// `Ok(None)`: a decoder asked to skip it.
    pub fn decode_key(
        &mut self,
        config: &str,
        spec: &MetricConfig,
        key: &[u8],
    ) -> Result<Option<Vec<String>>, DecodeError> {
        self.tables.new_read();
        let state = state_for(&mut self.metrics, config, spec);
        let mut ids = vec![0u32; state.labels.len()];
        let (a, b) = &mut self.scratch;
        match decode_row(&mut self.tables, state, key, &mut ids, a, b) {
            Ok(Row::Keep) => Ok(Some(
                ids.iter()
                    .zip(&state.values)
                    .map(|(&id, v)| v.get(id).to_string())
                    .collect(),
            )),
            Ok(Row::Skip) => Ok(None),
            Err(detail) => Err(DecodeError {
                config: config.to_string(),
                metric: spec.name.clone(),
                kind: DecodeErrorKind::Key,
                detail,
            }),
        }
    }

    /// Runs one label's decoder chain on `field` (exactly the label's bytes), uncached.
    /// `Ok(None)`: the chain asked to skip the row.
    pub fn decode_label(
        &mut self,
        label: &Label,
        field: &[u8],
    ) -> Result<Option<String>, LabelError> {
        self.tables.new_read();
        let chain = chain::compile(&label.decoders);
        let (a, b) = &mut self.scratch;
        match chain::run(&mut self.tables, &chain, field, a, b) {
            Ok(true) => match std::str::from_utf8(a) {
                Ok(s) => Ok(Some(s.to_string())),
                Err(_) => Err(LabelError(not_utf8(&label.name, a))),
            },
            Ok(false) => Ok(None),
            Err(e) => Err(LabelError(chain_error(&label.name, e))),
        }
    }
}

fn not_utf8(label: &str, value: &[u8]) -> String {
    format!(
        "error decoding label {label:?}: value {:?} is not valid UTF-8",
        String::from_utf8_lossy(value)
    )
}

/// Splits `key` (after §5.4) and decodes every label into `ids` (spec §6). The error is the
/// §3.3 detail.
fn decode_row(
    tables: &mut chain::Tables,
    state: &mut MetricState,
    key: &[u8],
    ids: &mut [u32],
    a: &mut Vec<u8>,
    b: &mut Vec<u8>,
) -> Result<Row, String> {
    let total: usize = state
        .labels
        .iter()
        .map(|l| l.size.saturating_add(l.padding))
        .sum();
    if key.len() != total {
        return Err(format!(
            "error decoding labels: total size of key {} is {} bytes, but we have labels to decode {total}",
            text::go_bytes_literal(key),
            key.len()
        ));
    }
    let mut offset = 0usize;
    for (li, label) in state.labels.iter().enumerate() {
        if label.size == 0 {
            return Err(format!(
                "error decoding label {:?}: size is zero or not set",
                label.name
            ));
        }
        let field = key.get(offset..offset + label.size).unwrap_or(&[]);
        offset += label.size + label.padding;
        let (Some(cache), Some(values), Some(chain), Some(slot)) = (
            state.fields.get_mut(li),
            state.values.get_mut(li),
            state.chains.get(li),
            ids.get_mut(li),
        ) else {
            return Err("internal error: label state out of step".to_string());
        };
        if let Some(id) = cache.get(field) {
            *slot = id;
            continue;
        }
        match chain::run(tables, chain, field, a, b) {
            Ok(true) => {}
            Ok(false) => return Ok(Row::Skip),
            Err(e) => return Err(chain_error(&label.name, e)),
        }
        let Ok(value) = std::str::from_utf8(a) else {
            return Err(not_utf8(&label.name, a));
        };
        let id = values.intern(value);
        cache.insert(field, id);
        *slot = id;
    }
    Ok(Row::Keep)
}

fn chain_error(label: &str, e: chain::ChainError) -> String {
    match e {
        chain::ChainError::NoDecoders => format!("error decoding label {label:?}: no decoders set"),
        chain::ChainError::Unknown(name) => format!("unknown decoder {name:?}"),
        chain::ChainError::Failed(detail) => format!("error decoding label {label:?}: {detail}"),
    }
}

/// Rows of `raw` per spec §5, decoded and summed.
fn rows(
    tables: &mut chain::Tables,
    state: &mut MetricState,
    raw: &RawMap,
    scratch: &mut (Vec<u8>, Vec<u8>),
) -> Result<Rows, (DecodeErrorKind, String)> {
    let raw_err = |d: String| (DecodeErrorKind::RawMap, d);
    let n = raw.len();
    if raw.key_size == 0 {
        if raw.keys.is_empty() && raw.values.is_empty() {
            return Ok(Rows::new(state.labels.len(), 0));
        }
        return Err(raw_err(format!(
            "map {:?} has key size 0 but holds data",
            raw.name
        )));
    }
    if raw.keys.len() % raw.key_size != 0 || raw.values.len() != n.saturating_mul(raw.slots) {
        return Err(raw_err(format!(
            "map {:?} is inconsistent: {} key bytes of {} bytes each, {} values for {} slots per entry",
            raw.name,
            raw.keys.len(),
            raw.key_size,
            raw.values.len(),
            raw.slots
        )));
    }
    if n > 0 && raw.slots == 0 {
        return Err(raw_err(format!("map {:?} has no value slots", raw.name)));
    }
    let width = state.labels.len();
    let cpu_rows = raw.per_cpu && state.labels.last().is_some_and(|l| l.name == "cpu");
    let only_cpu = cpu_rows && width == 1;
    let no_labels = width == 0;
    let mut groups = Rows::new(
        width,
        if cpu_rows {
            n.saturating_mul(raw.slots)
        } else {
            n
        },
    );
    let mut ids = vec![0u32; width];
    let mut row = Vec::with_capacity(raw.key_size + 2);
    let (a, b) = scratch;
    for (key, values) in raw
        .keys
        .chunks_exact(raw.key_size)
        .zip(raw.values.chunks_exact(raw.slots.max(1)))
    {
        if cpu_rows {
            row.clear();
            row.extend_from_slice(key);
            row.extend_from_slice(&[0, 0]);
            for (cpu, &value) in values.iter().enumerate() {
                let cpu = u16::try_from(cpu)
                    .map_err(|_| raw_err(format!("map {:?}: more than 65536 CPUs", raw.name)))?;
                let len = row.len();
                row[len - 2..].copy_from_slice(&cpu.to_ne_bytes());
                // §5.4 rule 2: a per-CPU map whose only label is `cpu` drops 4 leading zero bytes.
                let bytes = match row.get(..4) {
                    Some([0, 0, 0, 0]) if only_cpu => &row[4..],
                    _ => &row[..],
                };
                match decode_row(tables, state, bytes, &mut ids, a, b)
                    .map_err(|d| (DecodeErrorKind::Key, d))?
                {
                    Row::Keep => groups.push(&ids, value),
                    Row::Skip => {}
                }
            }
            continue;
        }
        // Non-per-CPU maps have one slot; per-CPU slots with identical labels are summed.
        let value = values.iter().fold(0u64, |acc, &v| acc.saturating_add(v));
        // §5.4 rule 1: no labels and a 4-byte zero key → the empty label list.
        if no_labels && key == [0, 0, 0, 0] {
            groups.push(&[], value);
            continue;
        }
        match decode_row(tables, state, key, &mut ids, a, b)
            .map_err(|d| (DecodeErrorKind::Key, d))?
        {
            Row::Keep => groups.push(&ids, value),
            Row::Skip => {}
        }
    }
    Ok(groups.merge(state))
}

fn samples(state: &MetricState, groups: &Rows) -> Vec<Sample> {
    (0..groups.len())
        .map(|g| Sample {
            labels: groups.tuple(g).iter().zip(&state.values).map(|(&id, t)| t.get(id).to_string()).collect(),
            value: groups.values.get(g).copied().unwrap_or(0) as f64,
        })
        .collect()
}

/// Series from merged rows: rows sharing all labels but the bucket label are adjacent (spec §9.1).
fn histogram_series(
    state: &MetricState,
    groups: &Rows,
    spec: &crate::config::HistogramSpec,
) -> Result<Vec<HistogramSeries>, (DecodeErrorKind, String)> {
    let Some(bucket_label) = groups.width.checked_sub(1) else {
        return Err((DecodeErrorKind::HistogramConfig, "a histogram needs at least one label".to_string()));
    };
    let bucket_values = state.values.get(bucket_label);
    let mut parsed: HashMap<u32, u64> = HashMap::new();
    let mut out = Vec::new();
    let mut counts: HashMap<u64, u64> = HashMap::new();
    let mut g = 0;
    while g < groups.len() {
        let prefix = groups.tuple(g).get(..bucket_label).unwrap_or(&[]);
        counts.clear();
        while g < groups.len() && groups.tuple(g).get(..bucket_label) == Some(prefix) {
            let id = groups.tuple(g).get(bucket_label).copied().unwrap_or(0);
            let index = match parsed.get(&id) {
                Some(&i) => i,
                None => {
                    let text = bucket_values.map(|b| b.get(id)).unwrap_or("");
                    let i = go_uint_parse(text).ok_or_else(|| {
                        (
                            DecodeErrorKind::HistogramBucket,
                            format!("bucket label value {text:?} is not an unsigned integer"),
                        )
                    })?;
                    parsed.insert(id, i);
                    i
                }
            };
            let c = counts.entry(index).or_insert(0);
            *c = c.saturating_add(groups.values.get(g).copied().unwrap_or(0));
            g += 1;
        }
        let rebuilt = histogram::rebuild(spec, &counts).map_err(|e| (DecodeErrorKind::HistogramConfig, e))?;
        out.push(HistogramSeries {
            labels: prefix.iter().zip(&state.values).map(|(&id, t)| t.get(id).to_string()).collect(),
            buckets: rebuilt.buckets,
            count: rebuilt.count,
            sum: rebuilt.sum,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
