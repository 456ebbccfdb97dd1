//! THE general path from a raw map to samples, written to be read on its own
//! (docs/config-format.md#reading-maps): every entry becomes one row per
//! [`each_row`], each row's key is split and decoded label by label ([`decode_row`]), rows
//! are sorted by their label values in the order Prometheus prints them and rows with equal
//! labels are summed ([`read`]); then they become counter samples ([`samples`]) or histogram
//! series ([`histogram_series`]).
//!
//! `fast.rs` computes the same samples for counters and gauges with less work; a property test
//! (`tests.rs`) checks that both give identical results.
use std::collections::HashMap;

use super::chain;
use super::fasthash::FastMap;
use super::histogram::{self, go_uint_parse};
use super::text;
use super::{escape_invalid_utf8, DecodeErrorKind, RowErrors, MAX_SLOTS};
use crate::config::{HistogramSpec, Label};
use crate::model::{HistogramSeries, Samples};
use crate::raw::RawMap;

/// Field bytes → decoded label value, for one label.
pub(super) type LabelCache = FastMap<Box<[u8]>, Box<str>>;

/// An error of the whole metric: what kind, and the detail printed.
pub(super) type MetricError = (DecodeErrorKind, String);

/// One metric's labels, compiled once and kept across reads (docs/config-format.md#decoders:
/// what the machine-reading decoders find is kept for the run).
#[derive(Debug)]
pub(super) struct MetricState {
    pub(super) labels: Vec<Label>,
    /// Sum of sizes and paddings: the length every row key must have.
    pub(super) key_len: usize,
    chains: Vec<chain::Compiled>,
    /// Per label: `chains[ranges[l]]`.
    ranges: Vec<std::ops::Range<usize>>,
    /// Per label: field bytes → decoded value, for chains worth caching (`None` otherwise).
    caches: Vec<Option<LabelCache>>,
    /// Index of the label named `pid`, whose value later labels' decoders may read (`ustack`).
    pid_label: Option<usize>,
    /// Per label: whether its chain reads the `pid` label (worth parsing it for).
    reads_pid: Vec<bool>,
    /// Per label: its field offset and size, and how to read its key straight off the field
    /// (`None` when its chain does not allow it); used by `fast.rs`.
    pub(super) direct: Vec<(usize, usize, Option<chain::DirectKey>)>,
    /// Whether every label's chain is [`chain::stable`]: then serve may keep decoded keys.
    pub(super) stable: bool,
    /// serve's decoded keys (`keycache.rs`), made on the first read that keeps them.
    pub(super) key_cache: Option<Box<super::keycache::KeyCache>>,
    /// A read to fill `key_cache` from later (whether its metric is a histogram): see
    /// `Decoders::fill_kept_keys_later`.
    pub(super) pending_fill: Option<(Box<crate::raw::RawMap>, bool)>,
}

impl MetricState {
    pub(super) fn new(labels: &[Label]) -> MetricState {
        let mut chains = Vec::new();
        let mut ranges = Vec::new();
        let mut caches = Vec::new();
        let mut direct = Vec::new();
        let mut reads_pid = Vec::new();
        let mut stable = true;
        let mut offset = 0usize;
        for l in labels {
            let c = chain::compile(&l.decoders);
            direct.push((offset, l.size, chain::direct_key(&c)));
            reads_pid.push(chain::reads_pid(&c));
            offset = offset.saturating_add(l.size).saturating_add(l.padding);
            let cache = chain::worth_caching(&c) && !chain::reads_stack_ids(&c, l.size);
            caches.push(cache.then(FastMap::default));
            stable &= chain::stable(&c);
            ranges.push(chains.len()..chains.len() + c.len());
            chains.extend(c);
        }
        MetricState {
            labels: labels.to_vec(),
            key_len: offset,
            chains,
            ranges,
            caches,
            pid_label: labels.iter().position(|l| l.name == "pid"),
            reads_pid,
            direct,
            stable,
            key_cache: None,
            pending_fill: None,
        }
    }

    fn chain(&self, label: usize) -> &[chain::Compiled] {
        self.ranges.get(label).and_then(|r| self.chains.get(r.clone())).unwrap_or(&[])
    }
}

/// How the rows of one read come out of a raw map (docs/config-format.md#per-cpu-maps).
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    /// One row per entry and CPU, the CPU number appended to the key (last label `cpu`).
    pub(super) cpu_rows: bool,
    /// `cpu` is the only label: 4 leading zero bytes of a key are dropped.
    pub(super) only_cpu: bool,
}

/// Checks that `raw` is consistent and that `state` can decode its keys at all; errors that
/// would fail every row alike are reported once for the metric. Returns how rows come out.
pub(super) fn check(state: &MetricState, raw: &RawMap) -> Result<Shape, MetricError> {
    let raw_err = |d: String| (DecodeErrorKind::RawMap, d);
    let cpu_rows = raw.per_cpu && state.labels.last().is_some_and(|l| l.name == "cpu");
    let shape = Shape { cpu_rows, only_cpu: cpu_rows && state.labels.len() == 1 };
    if raw.key_size == 0 {
        if raw.keys.is_empty() && raw.values.is_empty() {
            return Ok(shape);
        }
        return Err(raw_err(format!("map {:?} has key size 0 but holds data", raw.name)));
    }
    let n = raw.len();
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
    if raw.key_size > crate::config::MAX_KEY_SIZE || raw.slots > MAX_SLOTS {
        return Err(raw_err(format!(
            "map {:?} claims {}-byte keys and {} value slots per entry (at most {} and {MAX_SLOTS})",
            raw.name,
            raw.key_size,
            raw.slots,
            crate::config::MAX_KEY_SIZE
        )));
    }
    if n == 0 {
        return Ok(shape);
    }
    for (li, label) in state.labels.iter().enumerate() {
        if label.size == 0 {
            return Err((
                DecodeErrorKind::Key,
                format!("error decoding label {:?}: size is zero or not set", label.name),
            ));
        }
        chain::check(state.chain(li)).map_err(|e| (DecodeErrorKind::Key, chain_error(&label.name, e)))?;
    }
    if !cpu_rows && !state.labels.is_empty() && raw.key_size != state.key_len {
        return Err((DecodeErrorKind::Key, size_error(raw.keys.get(..raw.key_size).unwrap_or(&[]), state.key_len)));
    }
    Ok(shape)
}

fn size_error(key: &[u8], want: usize) -> String {
    format!(
        "error decoding labels: total size of key {} is {} bytes, but we have labels to decode {want}",
        text::go_bytes_literal(key),
        key.len()
    )
}

pub(super) fn chain_error(label: &str, e: chain::ChainError) -> String {
    match e {
        chain::ChainError::NoDecoders => format!("error decoding label {label:?}: no decoders set"),
        chain::ChainError::Unknown(name) => format!("unknown decoder {name:?}"),
        chain::ChainError::Failed(detail) => format!("error decoding label {label:?}: {detail}"),
    }
}

/// Calls `f` with the key bytes and value of every row of `raw`: one per entry, the per-CPU
/// slots summed; or, with `shape.cpu_rows`, one per entry and CPU, the CPU number appended to
/// the key. `f` returns false to stop early; then so does this.
pub(super) fn each_row(raw: &RawMap, shape: Shape, mut f: impl FnMut(&[u8], u64) -> bool) -> Result<bool, MetricError> {
    if raw.key_size == 0 {
        return Ok(true);
    }
    // Grown on first use: a raw map from a file may claim any key size (checked before).
    let mut row = Vec::new();
    for (key, values) in raw.keys.chunks_exact(raw.key_size).zip(raw.values.chunks_exact(raw.slots.max(1))) {
        if !shape.cpu_rows {
            // Non-per-CPU maps have one slot; per-CPU slots with identical labels are summed.
            let value = values.iter().fold(0u64, |acc, &v| acc.saturating_add(v));
            if !f(key, value) {
                return Ok(false);
            }
            continue;
        }
        row.clear();
        row.extend_from_slice(key);
        row.extend_from_slice(&[0, 0]);
        for (cpu, &value) in values.iter().enumerate() {
            let cpu = u16::try_from(cpu)
                .map_err(|_| (DecodeErrorKind::RawMap, format!("map {:?}: more than 65536 CPUs", raw.name)))?;
            let len = row.len();
            row[len - 2..].copy_from_slice(&cpu.to_ne_bytes());
            let bytes = match row.get(..4) {
                Some([0, 0, 0, 0]) if shape.only_cpu => &row[4..],
                _ => &row[..],
            };
            if !f(bytes, value) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// What became of one row's key.
pub(super) enum Row {
    /// Its label values were appended.
    Keep,
    /// A decoder asked to drop it (`regexp` without a match).
    Skip,
}

/// Splits `key`, runs every label's decoder chain on its field and appends the values to
/// `arena`, one `(start, length)` per label to `spans` (docs/config-format.md#labels). Bytes
/// that are not UTF-8 are escaped (docs/config-format.md#label-bytes-and-decode-errors). On a
/// skip or an error nothing of the row is left in `arena` or `spans`; the error is the detail
/// printed for the dropped row.
pub(super) fn decode_row(
    tables: &mut chain::Tables,
    state: &mut MetricState,
    key: &[u8],
    arena: &mut Vec<u8>,
    spans: &mut Vec<(u32, u32)>,
    scratch: &mut (Vec<u8>, Vec<u8>),
) -> Result<Row, String> {
    // A metric without labels takes a key of 4 zero bytes as the empty label list.
    if state.labels.is_empty() && key == [0, 0, 0, 0] {
        return Ok(Row::Keep);
    }
    if key.len() != state.key_len {
        return Err(size_error(key, state.key_len));
    }
    let (arena_start, spans_start) = (arena.len(), spans.len());
    let undo = |arena: &mut Vec<u8>, spans: &mut Vec<(u32, u32)>| {
        arena.truncate(arena_start);
        spans.truncate(spans_start);
    };
    let (a, b) = scratch;
    let mut offset = 0usize;
    for li in 0..state.labels.len() {
        let (size, padding) = state.labels.get(li).map_or((0, 0), |l| (l.size, l.padding));
        let end = offset.saturating_add(size);
        let field = key.get(offset..end).unwrap_or(&[]);
        offset = end.saturating_add(padding);
        let start = arena.len();
        let cached = state.caches.get(li).and_then(Option::as_ref).and_then(|c| c.get(field));
        if let Some(hit) = cached {
            arena.extend_from_slice(hit.as_bytes());
        } else {
            // Earlier labels of this row are already in `arena`: `pid` for `ustack`.
            let pid = state
                .pid_label
                .filter(|&p| p < li && state.reads_pid.get(li).copied().unwrap_or(false))
                .and_then(|p| spans.get(spans_start + p))
                .and_then(|&(s, n)| arena.get(s as usize..s as usize + n as usize))
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse().ok());
            let ctx = chain::RowContext { pid };
            match chain::run(tables, ctx, state.chain(li), field, a, b, arena) {
                Ok(true) => {}
                Ok(false) => {
                    undo(arena, spans);
                    return Ok(Row::Skip);
                }
                Err(e) => {
                    undo(arena, spans);
                    let name = state.labels.get(li).map_or("", |l| l.name.as_str());
                    return Err(chain_error(name, e));
                }
            }
            escape_invalid_utf8(arena, start);
            if let Some(cache) = state.caches.get_mut(li).and_then(Option::as_mut) {
                let value = arena.get(start..).unwrap_or(&[]);
                cache.insert(field.into(), String::from_utf8_lossy(value).into());
            }
        }
        match (u32::try_from(start), u32::try_from(arena.len() - start)) {
            (Ok(s), Ok(n)) if arena.len() <= u32::MAX as usize => spans.push((s, n)),
            _ => {
                undo(arena, spans);
                return Err("label values exceed 4 GiB".to_string());
            }
        }
    }
    Ok(Row::Keep)
}

/// Label positions in the order rows are sorted by: by label name (the order Prometheus prints
/// samples in); for histograms all but the bucket label, which stays last.
pub(super) fn name_order(labels: &[Label], histogram: bool) -> Vec<usize> {
    let n = if histogram { labels.len().saturating_sub(1) } else { labels.len() };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| labels[a].name.as_bytes().cmp(labels[b].name.as_bytes()));
    order.extend(n..labels.len());
    order
}

/// Decoded, sorted and summed rows: label values in config order, and the summed value.
pub(super) type Merged = Vec<(Vec<String>, u64)>;

/// Every row of `raw` decoded, sorted by label values in [`name_order`] and summed where all
/// labels are equal. A row whose key fails to decode is left out and counted in the errors.
pub(super) fn read(
    tables: &mut chain::Tables,
    state: &mut MetricState,
    raw: &RawMap,
    shape: Shape,
    histogram: bool,
    scratch: &mut (Vec<u8>, Vec<u8>),
) -> Result<(Merged, RowErrors), MetricError> {
    let mut errors = RowErrors::default();
    let mut rows: Vec<(Vec<String>, u64)> = Vec::new();
    let (mut arena, mut spans) = (Vec::new(), Vec::new());
    each_row(raw, shape, |key, value| {
        arena.clear();
        spans.clear();
        match decode_row(tables, state, key, &mut arena, &mut spans, scratch) {
            Ok(Row::Keep) => {
                let text = |&(s, n): &(u32, u32)| {
                    String::from_utf8_lossy(arena.get(s as usize..s as usize + n as usize).unwrap_or(&[])).into_owned()
                };
                rows.push((spans.iter().map(text).collect(), value));
            }
            Ok(Row::Skip) => {}
            Err(detail) => errors.note(detail),
        }
        true
    })?;
    let order = name_order(&state.labels, histogram);
    fn value(labels: &[String], l: usize) -> &[u8] {
        labels.get(l).map_or(&[], |v| v.as_bytes())
    }
    rows.sort_by(|x, y| {
        let mut by_label = order.iter().map(|&l| value(&x.0, l).cmp(value(&y.0, l)));
        by_label.find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut merged: Merged = Vec::with_capacity(rows.len());
    for (labels, value) in rows {
        match merged.last_mut() {
            Some((last, sum)) if *last == labels => *sum = sum.saturating_add(value),
            _ => merged.push((labels, value)),
        }
    }
    Ok((merged, errors))
}

/// Counter or gauge samples of merged rows.
pub(super) fn samples(width: usize, merged: &Merged) -> Samples {
    let text: usize = merged.iter().flat_map(|(l, _)| l.iter().map(String::len)).sum();
    let mut out = Samples::with_capacity(width, merged.len(), text);
    for (labels, value) in merged {
        out.push(labels.iter().map(String::as_str), *value as f64);
    }
    out.mark_in_name_order();
    out
}

/// Histogram series of merged rows (docs/config-format.md#histograms): rows sharing all labels
/// but the bucket label are adjacent; the bucket label is the index.
pub(super) fn histogram_series(merged: &Merged, spec: &HistogramSpec) -> Result<Vec<HistogramSeries>, MetricError> {
    let mut out: Vec<HistogramSeries> = Vec::new();
    let mut counts: HashMap<u64, u64> = HashMap::new();
    let mut i = 0;
    while let Some((first, _)) = merged.get(i) {
        let Some(bucket) = first.len().checked_sub(1) else {
            return Err((DecodeErrorKind::HistogramConfig, "a histogram needs at least one label".to_string()));
        };
        let series_labels = &first[..bucket];
        counts.clear();
        while let Some((labels, sum)) = merged.get(i).filter(|(l, _)| l.get(..bucket) == Some(series_labels)) {
            let text = labels.get(bucket).map_or("", String::as_str);
            let index = go_uint_parse(text).ok_or_else(|| {
                (DecodeErrorKind::HistogramBucket, format!("bucket label value {text:?} is not an unsigned integer"))
            })?;
            let c = counts.entry(index).or_insert(0);
            *c = c.saturating_add(*sum);
            i += 1;
        }
        let rebuilt = histogram::rebuild(spec, &counts).map_err(|e| (DecodeErrorKind::HistogramConfig, e))?;
        out.push(HistogramSeries {
            labels: series_labels.to_vec(),
            buckets: rebuilt.buckets,
            count: rebuilt.count,
            sum: rebuilt.sum,
        });
    }
    Ok(out)
}
