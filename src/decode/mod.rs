//! Raw map contents → labelled samples (spec §5–9).
//!
//! [`Decoders::metric`] turns one [`RawMap`] into one [`Metric`]: rows (§5), key splitting and
//! decoder chains (§6, §7), aggregation (§5.5), counters/gauges (§8) and histograms (§9).
//!
//! Speed (a 100,000-entry map should cost a few ms): rows are summed by one sort, which also
//! gives the Prometheus order. Counters and gauges of one or two labels take the quickest way
//! that is exact for their values:
//!
//! 1. lone `uint` / `string` labels of at most 16 bytes: sort keys read straight off the key
//!    bytes, no label text made until the merged samples are written (`direct_keys`);
//! 2. any chain whose values fit in 16 bytes without a NUL: rows decoded one at a time into a
//!    scratch row, only their keys kept;
//! 3. otherwise every row is decoded into one byte arena (no allocation per entry); keys are
//!    the 16 bytes past the prefix all values of a label share, exact when they hold the rest
//!    of every value, and only then is the arena left alone while sorting and merging.
//!
//! Key pairs are sorted as one number when their differing bytes fit (`Packing`). Only
//! decoders that read the environment or run regular expressions are cached (per label, by
//! field bytes); the rest are cheaper to redo. Histograms use way 3 with full comparisons.
mod block;
pub mod cgroup;
mod chain;
mod fasthash;
mod histogram;
mod ksym;
mod net;
mod pci;
mod tables;
mod text;
mod ustack;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::config::{Label, MetricConfig, MetricKind};
use crate::model::{Histogram, HistogramSeries, Metric, MetricValues, Samples};
use crate::raw::RawMap;
use fasthash::FastMap;

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

/// Why a metric could not be decoded at all: the whole metric is dropped for this read. (A key
/// that fails on its own drops only its row: see [`RowErrors`].)
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
        write!(f, "config {}: metric {}: {}", self.config, self.metric, self.detail)
    }
}

impl std::error::Error for DecodeError {}

/// One metric decoded from its map, and the rows left out because their keys failed to decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub metric: Metric,
    pub row_errors: RowErrors,
}

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
    rows: Rows,
    /// Whether keys may be read straight off the fields (see [`chain::DirectKey`]); tests turn
    /// it off to check both ways give the same samples.
    direct_keys: bool,
}

/// Field bytes → decoded label value, for one label.
type LabelCache = FastMap<Box<[u8]>, Box<str>>;

/// Everything remembered about one metric across reads (spec §6.5).
#[derive(Debug)]
struct MetricState {
    labels: Vec<Label>,
    /// Sum of sizes and paddings: the length every row key must have.
    key_len: usize,
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
    /// (`None` when its chain does not allow it).
    direct: Vec<(usize, usize, Option<chain::DirectKey>)>,
}

impl MetricState {
    fn new(labels: &[Label]) -> MetricState {
        let mut chains = Vec::new();
        let mut ranges = Vec::new();
        let mut caches = Vec::new();
        let mut direct = Vec::new();
        let mut reads_pid = Vec::new();
        let mut offset = 0usize;
        for l in labels {
            let c = chain::compile(&l.decoders);
            direct.push((offset, l.size, chain::direct_key(&c)));
            reads_pid.push(chain::reads_pid(&c));
            offset = offset.saturating_add(l.size).saturating_add(l.padding);
            caches.push(chain::worth_caching(&c).then(FastMap::default));
            ranges.push(chains.len()..chains.len() + c.len());
            chains.extend(c);
        }
        MetricState {
            labels: labels.to_vec(),
            key_len: labels.iter().map(|l| l.size.saturating_add(l.padding)).sum(),
            chains,
            ranges,
            caches,
            pid_label: labels.iter().position(|l| l.name == "pid"),
            reads_pid,
            direct,
        }
    }
}

/// The metric's state, rebuilt when its labels changed since the last read.
fn state_for<'a>(
    metrics: &'a mut HashMap<(String, String), MetricState>,
    config: &str,
    spec: &MetricConfig,
) -> &'a mut MetricState {
    let key = (config.to_string(), spec.name.clone());
    let state = metrics.entry(key).or_insert_with(|| MetricState::new(&spec.labels));
    if state.labels != spec.labels {
        *state = MetricState::new(&spec.labels);
    }
    state
}

/// Decoded rows: label values appended to one byte arena, `width` spans per row, then (after
/// [`Rows::merge`]) `merged`: one `(row, sum)` per distinct label tuple, in output order; or
/// `exact` key pairs (see [`Form`]).
///
/// Rows are summed by sorting rather than hashing: the sort is needed for the output order
/// anyway, and rows with equal labels end up adjacent. Sort keys of the general way are 8 bytes
/// of each of the first two labels, taken after the prefix all values of that label share
/// (big-endian, zero-padded, which orders like the strings wherever the keys differ); only ties
/// look at the full strings. The buffers are kept between reads.
#[derive(Default)]
struct Rows {
    width: usize,
    /// Label values, each checked to be UTF-8 as it is appended.
    arena: Vec<u8>,
    /// Per label: what its values have in common, to pick sort keys (see [`LabelStats`]).
    stats: Vec<LabelStats>,
    /// Whether `stats` tracks the common prefix (not needed by the exact-prefix attempt).
    track_common: bool,
    spans: Vec<(u32, u32)>,
    values: Vec<u64>,
    keyed: Vec<(u64, u64, u32)>,
    merged: Vec<(u32, u64)>,
    /// Where the merged rows are: `merged`, or `exact` in one of two key forms.
    form: Form,
    /// Merged rows as (key of the first label in `order`, of the second, value), in order.
    exact: Vec<(Key, Key, u64)>,
    /// Label positions in the order rows are sorted by: label-name order (the order Prometheus
    /// prints samples in, so the renderer finds them sorted), the histogram bucket label last.
    order: Vec<usize>,
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rows {{ width: {}, rows: {}, merged: {} }}", self.width, self.len(), self.merged.len())
    }
}

impl Rows {
    fn reset(&mut self, width: usize, capacity: usize) {
        self.width = width;
        self.order = (0..width).collect();
        self.stats.clear();
        self.stats.resize_with(width, LabelStats::default);
        self.track_common = true;
        self.arena.clear();
        self.spans.clear();
        self.values.clear();
        self.keyed.clear();
        self.merged.clear();
        self.exact.clear();
        self.form = Form::Rows;
        self.arena.reserve(capacity * width * 8);
        self.spans.reserve(capacity * width);
        self.values.reserve(capacity);
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    /// Label `l` of row `r` as bytes.
    #[inline]
    fn label(&self, r: usize, l: usize) -> &[u8] {
        self.spans
            .get(r * self.width + l)
            .and_then(|&(s, n)| self.arena.get(s as usize..s as usize + n as usize))
            .unwrap_or(&[])
    }

    /// Label `l` of row `r` as text (checked when it was appended, so never empty by mistake).
    fn text(&self, r: usize, l: usize) -> &str {
        std::str::from_utf8(self.label(r, l)).unwrap_or("")
    }

    fn labels(&self, r: usize, n: usize) -> Vec<String> {
        (0..n).map(|l| self.text(r, l).to_string()).collect()
    }

    /// Drops the labels of an unfinished row (one that was skipped or failed).
    fn truncate_to(&mut self, rows: usize, arena: usize) {
        self.spans.truncate(rows * self.width);
        self.arena.truncate(arena);
    }

    /// Records label `l`'s value, appended to the arena since `start`.
    fn close_label(&mut self, l: usize, start: usize) -> Result<(), String> {
        match (u32::try_from(start), u32::try_from(self.arena.len() - start)) {
            (Ok(s), Ok(n)) if self.arena.len() <= u32::MAX as usize => {
                let value = self.arena.get(start..).unwrap_or(&[]);
                if let Some(stats) = self.stats.get_mut(l) {
                    stats.add(value, self.track_common);
                }
                self.spans.push((s, n));
                Ok(())
            }
            _ => Err("label values exceed 4 GiB".to_string()),
        }
    }

    /// The first 16 bytes of label `l` of row `r`, big-endian, zero-padded.
    fn prefix(&self, r: usize, l: usize) -> Key {
        key_of(self.label(r, l))
    }

    /// Label `l` of row `r` past the prefix all values of label `l` share.
    fn suffix(&self, r: usize, l: usize) -> &[u8] {
        let skip = self.stats.get(l).map_or(0, |s| s.common);
        self.label(r, l).get(skip..).unwrap_or(&[])
    }

    /// The 8 bytes of label `l` of row `r` after the prefix all its values share.
    /// With `exact` (see [`Rows::key_is_exact`]): those bytes (7 at most, zero-padded) and their
    /// number in the low byte, which orders and tells apart even values holding NULs.
    fn key(&self, r: usize, l: usize, exact: bool) -> u64 {
        let rest = self.suffix(r, l);
        if exact {
            (prefix_of(rest) & !0xff) | rest.len().min(7) as u64
        } else {
            prefix_of(rest)
        }
    }

    /// The up to 16 bytes of label `l` of row `r` past the common prefix, zero-padded, and
    /// whether they hold a NUL (then the key cannot tell "a" from "a\0").
    fn padded_key(&self, r: usize, l: usize) -> (Key, bool) {
        let rest = self.suffix(r, l);
        let key = key_of(rest);
        // Set the padding bytes, then look for a zero byte among the value's.
        let padding = Key::MAX.checked_shr(8 * rest.len().min(KEY_BYTES) as u32).unwrap_or(0);
        let x = key | padding;
        const ONES: Key = Key::MAX / 0xff;
        let nul = x.wrapping_sub(ONES) & !x & (ONES << 7) != 0;
        (key, nul)
    }

    /// The up to 15 bytes of label `l` of row `r` past the common prefix, zero-padded, and
    /// their number in the low byte: exact, NULs or not, for labels that fit.
    fn len_key(&self, r: usize, l: usize) -> Key {
        let rest = self.suffix(r, l);
        (key_of(rest) & !0xff) | rest.len().min(KEY_BYTES - 1) as Key
    }

    /// Whether every value of label `l` is at most 7 bytes past the common prefix: then
    /// [`Rows::key`] holds all of it, and equal keys mean equal values.
    fn key_is_exact(&self, l: usize) -> bool {
        self.stats.get(l).is_some_and(|s| s.longest - s.common <= 7)
    }

    /// Sorts by label names (histograms: all but the last label, which stays last).
    fn sort_by_names(&mut self, labels: &[Label], histogram: bool) {
        let n = if histogram { labels.len().saturating_sub(1) } else { labels.len() };
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| labels[a].name.as_bytes().cmp(labels[b].name.as_bytes()));
        order.extend(n..labels.len());
        if order.len() == self.width {
            self.order = order;
        }
    }

    fn cmp_rows(&self, x: usize, y: usize, from: usize) -> std::cmp::Ordering {
        self.order[from.min(self.order.len())..]
            .iter()
            .map(|&l| self.label(x, l).cmp(self.label(y, l)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }

    /// Sorts the rows collected in `exact` by their prefixes and sums those with equal ones.
    fn merge_exact(&mut self) {
        let exact = &mut self.exact;
        // Key pairs whose differing bytes span 16 bytes at most are sorted as one number (a pid
        // and a short name fit in 8: those are sorted in a compact copy), then put back.
        match Packing::of(exact) {
            Some(p) if p.bits() <= 64 => {
                sort_packed(exact, |_, e| p.pack(e.0, e.1) as u64, |packed| p.unpack(Key::from(packed)))
            }
            Some(p) => sort_packed(exact, |_, e| p.pack(e.0, e.1), |packed| p.unpack(packed)),
            None => {
                if !merge_ranked(exact) {
                    exact.sort_unstable_by_key(|k| (k.0, k.1));
                    merge_equal(exact);
                }
            }
        }
        self.form = Form::Prefix;
    }

    /// Sorts rows by label values (byte strings, element-wise) and sums rows with equal labels
    /// into `merged`; or, with `keys_only` and one or two labels whose keys hold their whole
    /// value past the common prefix, into `exact` (form [`Form::Suffix`]): then the labels are
    /// rebuilt from the keys and the arena is not visited again, in sorted (random) order.
    fn merge(&mut self, keys_only: bool) {
        let (w, n) = (self.width, self.len());
        self.merged.clear();
        self.form = Form::Rows;
        if w == 0 {
            if n > 0 {
                let total = self.values.iter().fold(0u64, |a, &v| a.saturating_add(v));
                self.merged.push((0, total));
            }
            return;
        }
        let mut keyed = std::mem::take(&mut self.keyed);
        keyed.clear();
        let (l0, l1) = (self.order[0], self.order.get(1).copied().unwrap_or(0));
        // Keys are the 8 bytes after what all values of a label share: they order the rows
        // wherever they differ. An exact key is the whole label: equal keys, equal labels.
        let exact0 = self.key_is_exact(l0);
        let exact1 = w > 1 && self.key_is_exact(l1);
        let exact = exact0 && (w == 1 || (w == 2 && exact1));
        let fits = |l: usize, n: usize| self.stats.get(l).is_some_and(|s| s.longest - s.common <= n);
        if keys_only && w <= 2 && fits(l0, KEY_BYTES) && (w == 1 || fits(l1, KEY_BYTES)) {
            // Suffixes of at most 16 bytes: zero-padded keys are exact unless a suffix holds a
            // NUL; then keys with a length byte, if suffixes are at most 15 bytes.
            let mut pairs = std::mem::take(&mut self.exact);
            pairs.clear();
            let mut nul = false;
            pairs.extend(self.values.iter().enumerate().map(|(r, &v)| {
                let (k0, z0) = self.padded_key(r, l0);
                let (k1, z1) = if w > 1 { self.padded_key(r, l1) } else { (0, false) };
                nul |= z0 | z1;
                (k0, k1, v)
            }));
            let form = if !nul {
                Some(Form::Suffix { len_byte: false })
            } else if fits(l0, KEY_BYTES - 1) && (w == 1 || fits(l1, KEY_BYTES - 1)) {
                pairs.clear();
                pairs.extend(
                    self.values
                        .iter()
                        .enumerate()
                        .map(|(r, &v)| (self.len_key(r, l0), if w > 1 { self.len_key(r, l1) } else { 0 }, v)),
                );
                Some(Form::Suffix { len_byte: true })
            } else {
                None
            };
            self.exact = pairs;
            if let Some(form) = form {
                self.keyed = keyed;
                self.merge_exact();
                self.form = form;
                return;
            }
            self.exact.clear();
        }
        keyed.extend(
            (0..n).map(|r| (self.key(r, l0, exact0), if w > 1 { self.key(r, l1, exact1) } else { 0 }, r as u32)),
        );
        if exact {
            keyed.sort_unstable_by_key(|k| (k.0, k.1));
        } else {
            keyed.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| {
                        if exact0 {
                            std::cmp::Ordering::Equal
                        } else {
                            self.label(a.2 as usize, l0).cmp(self.label(b.2 as usize, l0))
                        }
                    })
                    .then_with(|| a.1.cmp(&b.1))
                    .then_with(|| self.cmp_rows(a.2 as usize, b.2 as usize, 1))
            });
        }
        let mut last: Option<(u64, u64, usize)> = None;
        for &(p0, p1, r) in &keyed {
            let r = r as usize;
            let v = self.values.get(r).copied().unwrap_or(0);
            if let Some((q0, q1, prev)) = last {
                if (q0, q1) == (p0, p1) && (exact || self.cmp_rows(prev, r, 0).is_eq()) {
                    if let Some((_, sum)) = self.merged.last_mut() {
                        *sum = sum.saturating_add(v);
                    }
                    continue;
                }
            }
            self.merged.push((r as u32, v));
            last = Some((p0, p1, r));
        }
        self.keyed = keyed;
    }
}

/// Where [`Rows::merge`] or [`Rows::merge_exact`] left the merged rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Form {
    /// `merged`: (row, sum), labels in the arena.
    #[default]
    Rows,
    /// `exact`, keys of at most 16 bytes holding no NUL, zero-padded (the value ends where the
    /// trailing zeros begin).
    Prefix,
    /// `exact`, keys of the bytes past the label's common prefix, zero-padded: at most 16 bytes
    /// without a NUL ([`Rows::padded_key`]), or with `len_byte` at most 15 bytes and their
    /// number in the low byte ([`Rows::len_key`]).
    Suffix { len_byte: bool },
}

/// Sorts and sums key pairs by the rank of the first key among its distinct values, packed with
/// the second key's differing bytes into one number: for pairs like a task name beside a pid,
/// where names are few and long. False (and `exact` untouched) when the first keys are not few
/// or the pair does not fit in 64 bits.
fn merge_ranked(exact: &mut Vec<(Key, Key, u64)>) -> bool {
    const SAMPLE: usize = 4096;
    let Some(&(_, f1, _)) = exact.first() else {
        return false;
    };
    let second = Span::of(f1, exact.iter().fold(0, |d, e| d | (e.1 ^ f1)));
    let rank_bits = 64 - second.bits.min(64);
    if rank_bits < 16 {
        return false;
    }
    let mut ids: FastMap<Key, u32> = FastMap::default();
    let mut row_ids = Vec::with_capacity(exact.len());
    for (i, e) in exact.iter().enumerate() {
        let next = ids.len() as u32;
        row_ids.push(*ids.entry(e.0).or_insert(next));
        // Many distinct first keys: ranking them costs more than it saves.
        if (i + 1 == SAMPLE && ids.len() > SAMPLE / 4) || ids.len() >= 1 << rank_bits.min(24) {
            return false;
        }
    }
    let mut distinct: Vec<(Key, u32)> = ids.into_iter().collect();
    distinct.sort_unstable();
    let mut rank = vec![0u64; distinct.len()];
    for (r, &(_, id)) in distinct.iter().enumerate() {
        if let Some(slot) = rank.get_mut(id as usize) {
            *slot = r as u64;
        }
    }
    let low = second.mask() as u64;
    sort_packed(
        exact,
        |i, e| {
            let r = row_ids.get(i).and_then(|&id| rank.get(id as usize)).copied().unwrap_or(0);
            r.checked_shl(second.bits).unwrap_or(0) | second.get(e.1) as u64
        },
        |p| {
            let first = distinct.get(p.checked_shr(second.bits).unwrap_or(0) as usize).map_or(0, |d| d.0);
            (first, second.put(Key::from(p & low)))
        },
    );
    true
}

/// Sorts `exact` by one number per key pair (`pack`, given the pair's index), sums pairs that
/// pack equal, and puts the pairs back (`unpack`): the sort moves small elements and compares
/// one number. The packing must keep the pairs' order and tell unequal pairs apart.
fn sort_packed<P: Ord + Copy>(
    exact: &mut Vec<(Key, Key, u64)>,
    pack: impl Fn(usize, &(Key, Key, u64)) -> P,
    unpack: impl Fn(P) -> (Key, Key),
) {
    let mut packed: Vec<(P, u64)> = exact.iter().enumerate().map(|(i, e)| (pack(i, e), e.2)).collect();
    packed.sort_unstable_by_key(|p| p.0);
    exact.clear();
    let mut last = None;
    for (p, v) in packed {
        if last == Some(p) {
            if let Some(e) = exact.last_mut() {
                e.2 = e.2.saturating_add(v);
            }
            continue;
        }
        last = Some(p);
        let (k0, k1) = unpack(p);
        exact.push((k0, k1, v));
    }
}

/// Sums neighbours with equal keys (the first two fields) of a sorted slice, in place.
fn merge_equal(exact: &mut Vec<(Key, Key, u64)>) {
    let mut kept = 0usize;
    for i in 0..exact.len() {
        let (p0, p1, v) = exact[i];
        match kept.checked_sub(1).and_then(|last| exact.get_mut(last)) {
            Some(last) if (last.0, last.1) == (p0, p1) => last.2 = last.2.saturating_add(v),
            _ => {
                exact[kept] = (p0, p1, v);
                kept += 1;
            }
        }
    }
    exact.truncate(kept);
}

/// Where the bytes that differ between keys sit, when the span of differing bytes of the
/// first key and that of the second add up to 16 bytes at most (a pid and a task name, say):
/// the pair then orders like one number made of the two spans.
struct Packing {
    first: Span,
    second: Span,
}

/// The bits of a key from its lowest to its highest differing byte.
#[derive(Clone, Copy)]
struct Span {
    /// The key's bits outside the span (the same in every key).
    base: Key,
    /// Bits below the span.
    shift: u32,
    /// Bits in the span (0 to 128).
    bits: u32,
}

impl Span {
    fn of(first: Key, diff: Key) -> Span {
        if diff == 0 {
            return Span { base: first, shift: 0, bits: 0 };
        }
        let shift = diff.trailing_zeros() & !7;
        let bits = Key::BITS - (diff.leading_zeros() & !7) - shift;
        let span = Span { base: 0, shift, bits };
        Span { base: first & !(span.mask() << shift), ..span }
    }

    fn mask(self) -> Key {
        Key::MAX.checked_shr(Key::BITS - self.bits).unwrap_or(0)
    }

    #[inline]
    fn get(self, key: Key) -> Key {
        key.checked_shr(self.shift).unwrap_or(0) & self.mask()
    }

    #[inline]
    fn put(self, field: Key) -> Key {
        self.base | field.checked_shl(self.shift).unwrap_or(0)
    }
}

impl Packing {
    fn of(exact: &[(Key, Key, u64)]) -> Option<Packing> {
        let &(f0, f1, _) = exact.first()?;
        let (mut d0, mut d1) = (0, 0);
        for &(k0, k1, _) in exact {
            d0 |= k0 ^ f0;
            d1 |= k1 ^ f1;
        }
        let (first, second) = (Span::of(f0, d0), Span::of(f1, d1));
        (first.bits + second.bits <= Key::BITS).then_some(Packing { first, second })
    }

    /// Bits of a packed pair.
    fn bits(&self) -> u32 {
        self.first.bits + self.second.bits
    }

    #[inline]
    fn pack(&self, k0: Key, k1: Key) -> Key {
        self.first.get(k0).checked_shl(self.second.bits).unwrap_or(0) | self.second.get(k1)
    }

    #[inline]
    fn unpack(&self, packed: Key) -> (Key, Key) {
        let first = packed.checked_shr(self.second.bits).unwrap_or(0) & self.first.mask();
        (self.first.put(first), self.second.put(packed & self.second.mask()))
    }
}

/// An exact sort key: up to 16 bytes of a label value as a big-endian number.
type Key = u128;
const KEY_BYTES: usize = 16;

/// The first 16 bytes of `b` as a big-endian number, zero-padded.
fn key_of(b: &[u8]) -> Key {
    let mut p = [0u8; KEY_BYTES];
    let n = b.len().min(KEY_BYTES);
    p[..n].copy_from_slice(&b[..n]);
    Key::from_be_bytes(p)
}

/// The first 8 bytes of `b` as a big-endian number, zero-padded: numbers order like the byte
/// strings wherever they differ.
fn prefix_of(b: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = b.len().min(8);
    p[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(p)
}

/// What the values of one label have in common, gathered as rows are decoded.
#[derive(Debug, Default, Clone)]
struct LabelStats {
    /// The first value seen.
    first: Vec<u8>,
    /// Values seen so far.
    seen: usize,
    /// Length of the prefix every value seen shares.
    common: usize,
    /// Length of the longest value.
    longest: usize,
    /// Some value holds a NUL byte (a zero-padded key could not tell "a" from "a\0"); tracked
    /// only by the exact-prefix attempt (`track_common` off), whose keys have no length byte.
    nul: bool,
}

impl LabelStats {
    fn add(&mut self, value: &[u8], track_common: bool) {
        if !track_common {
            self.common = 0;
            self.nul |= value.contains(&0);
        } else if self.seen == 0 {
            self.first.clear();
            self.first.extend_from_slice(value);
            self.common = value.len();
        } else {
            self.common = common_prefix(self.first.get(..self.common).unwrap_or(&[]), value);
        }
        self.seen += 1;
        self.longest = self.longest.max(value.len());
    }
}

/// Length of the prefix `a` and `b` share, compared 8 bytes at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while let (Some(x), Some(y)) = (a.get(i..i + 8), b.get(i..i + 8)) {
        let diff =
            u64::from_le_bytes(x.try_into().unwrap_or([0; 8])) ^ u64::from_le_bytes(y.try_into().unwrap_or([0; 8]));
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a.get(i) == b.get(i) {
        i += 1;
    }
    i
}

/// Samples of the merged rows: each row's values lie side by side in the arena, so a row is one
/// copy; the whole text is checked as UTF-8 once.
fn merged_samples(rows: &Rows) -> Option<Samples> {
    let w = rows.width;
    let mut text = Vec::with_capacity(rows.arena.len());
    let mut ends = Vec::with_capacity(rows.merged.len() * w);
    let mut values = Vec::with_capacity(rows.merged.len());
    for &(r, sum) in &rows.merged {
        let spans = rows.spans.get(r as usize * w..(r as usize + 1) * w)?;
        if let (Some(&(first, _)), Some(&(last, n))) = (spans.first(), spans.last()) {
            let at = text.len();
            text.extend_from_slice(rows.arena.get(first as usize..last as usize + n as usize)?);
            for &(start, n) in spans {
                ends.push(at + (start + n - first) as usize);
            }
        }
        values.push(sum as f64);
    }
    Samples::from_columns(w, text, ends, values)
}

/// Appends the value an exact key of config label `l` stands for (see [`Form`]).
#[inline]
fn push_exact(rows: &Rows, l: usize, key: Key, out: &mut Vec<u8>) {
    let at = out.len();
    // Without a length byte the value ends where the trailing zero bytes begin (it holds no
    // NUL). All 16 bytes are copied (a fixed-size copy), then the padding is cut off.
    let padded_len = KEY_BYTES - (key.trailing_zeros() / 8) as usize;
    match rows.form {
        Form::Suffix { len_byte } => {
            let common = rows.stats.get(l).and_then(|s| s.first.get(..s.common)).unwrap_or(&[]);
            out.extend_from_slice(common);
            let len = if len_byte { (key & 0xff).min(KEY_BYTES as Key - 1) as usize } else { padded_len };
            out.extend_from_slice(&key.to_be_bytes());
            out.truncate(at + common.len() + len);
        }
        Form::Prefix | Form::Rows => {
            out.extend_from_slice(&key.to_be_bytes());
            out.truncate(at + padded_len);
        }
    }
}

/// Samples straight from exact keys: label bytes are copied into one buffer, checked to be
/// UTF-8 once as a whole rather than value by value.
fn exact_samples(rows: &Rows) -> Option<Samples> {
    let n = rows.exact.len();
    let w = rows.width.min(2);
    let first = rows.order.first().copied().unwrap_or(0);
    let mut text = Vec::with_capacity(n * w * KEY_BYTES);
    let mut ends = Vec::with_capacity(n * w);
    let mut values = Vec::with_capacity(n);
    for &(k0, k1, v) in &rows.exact {
        let pair = if first == 0 { [k0, k1] } else { [k1, k0] };
        for (l, key) in pair.into_iter().enumerate().take(w) {
            push_exact(rows, l, key, &mut text);
            ends.push(text.len());
        }
        values.push(v as f64);
    }
    Samples::from_columns(rows.width, text, ends, values)
}

/// Result of decoding one row's labels.
enum Row {
    Keep,
    Skip,
}

impl Decoders {
    /// Cheap: tables are loaded on first use.
    pub fn new(env: Env) -> Decoders {
        Decoders {
            tables: chain::Tables::new(env),
            metrics: HashMap::new(),
            scratch: (Vec::new(), Vec::new()),
            rows: Rows::default(),
            direct_keys: true,
        }
    }

    /// Turns reading keys straight off the fields on or off (tests compare both ways).
    #[cfg(test)]
    fn set_direct_keys(&mut self, on: bool) {
        self.direct_keys = on;
    }

    pub fn env(&self) -> &Env {
        &self.tables.env
    }

    /// Decodes one metric's map. Rows whose keys fail to decode are left out and counted in
    /// [`Decoded::row_errors`]. `Err`: the whole metric is dropped for this read (its layout
    /// cannot decode any row, the raw map is inconsistent, or a histogram cannot be rebuilt);
    /// see [`DecodeError::counts_as_decoder_error`] for whether to count it.
    pub fn metric(&mut self, config: &str, spec: &MetricConfig, raw: &RawMap) -> Result<Decoded, DecodeError> {
        let err = |(kind, detail): (DecodeErrorKind, String)| DecodeError {
            config: config.to_string(),
            metric: spec.name.clone(),
            kind,
            detail,
        };
        let names = |n: usize| spec.labels.iter().take(n).map(|l| l.name.clone()).collect::<Vec<_>>();
        let metric = |label_names, values| Metric {
            config: config.to_string(),
            name: spec.name.clone(),
            help: spec.help.clone(),
            label_names,
            values,
        };
        if let MetricKind::Counter { perf_event_array: true } = spec.kind {
            // Event counters are counted by `collect`, not read from a map.
            let values = MetricValues::Counter(Samples::new(spec.labels.len()));
            return Ok(Decoded { metric: metric(names(spec.labels.len()), values), row_errors: RowErrors::default() });
        }
        self.tables.new_read();
        let state = state_for(&mut self.metrics, config, spec);
        let rows = &mut self.rows;
        let histogram = matches!(spec.kind, MetricKind::Histogram(_));
        let direct = self.direct_keys;
        let row_errors =
            read_rows(&mut self.tables, state, raw, &mut self.scratch, rows, histogram, direct).map_err(err)?;
        let width = spec.labels.len();
        let metric = match &spec.kind {
            MetricKind::Counter { .. } => metric(names(width), MetricValues::Counter(samples(rows))),
            MetricKind::Gauge => metric(names(width), MetricValues::Gauge(samples(rows))),
            MetricKind::Histogram(h) => {
                let series = histogram_series(rows, h).map_err(err)?;
                let values = Histogram { bucket_type: h.bucket_type, multiplier: h.multiplier, series };
                metric(names(width.saturating_sub(1)), MetricValues::Histogram(values))
            }
        };
        Ok(Decoded { metric, row_errors })
    }

    /// [`Decoders::metric`] without the row errors: for tests whose maps decode cleanly.
    #[cfg(test)]
    pub(crate) fn metric_only(
        &mut self,
        config: &str,
        spec: &MetricConfig,
        raw: &RawMap,
    ) -> Result<Metric, DecodeError> {
        self.metric(config, spec, raw).map(|d| d.metric)
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
        let rows = &mut self.rows;
        rows.reset(state.labels.len(), 1);
        let (a, b) = &mut self.scratch;
        match decode_row(&mut self.tables, state, key, rows, a, b) {
            Ok(Row::Keep) => Ok(Some(rows.labels(0, rows.width))),
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
    pub fn decode_label(&mut self, label: &Label, field: &[u8]) -> Result<Option<String>, LabelError> {
        self.tables.new_read();
        let chain = chain::compile(&label.decoders);
        let (a, b) = &mut self.scratch;
        let mut out = Vec::new();
        match chain::run(&mut self.tables, chain::RowContext::default(), &chain, field, a, b, &mut out) {
            Ok(true) => {
                escape_invalid_utf8(&mut out, 0);
                Ok(Some(String::from_utf8_lossy(&out).into_owned()))
            }
            Ok(false) => Ok(None),
            Err(e) => Err(LabelError(chain_error(&label.name, e))),
        }
    }
}

/// Label text from the kernel is data, not necessarily UTF-8 (a task may name itself with any
/// bytes): every byte of `buf[start..]` that is not part of valid UTF-8 becomes the four
/// characters `\xNN` (lowercase hex); valid text is left alone (docs/config-format.md, "Label
/// bytes").
pub fn escape_invalid_utf8(buf: &mut Vec<u8>, start: usize) {
    let Some(value) = buf.get(start..) else {
        return;
    };
    if value.is_ascii() || std::str::from_utf8(value).is_ok() {
        return;
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut escaped = Vec::with_capacity(value.len() + 16);
    for chunk in value.utf8_chunks() {
        escaped.extend_from_slice(chunk.valid().as_bytes());
        for &b in chunk.invalid() {
            escaped.extend_from_slice(&[b'\\', b'x', DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
        }
    }
    buf.truncate(start);
    buf.extend_from_slice(&escaped);
}

fn chain_error(label: &str, e: chain::ChainError) -> String {
    match e {
        chain::ChainError::NoDecoders => format!("error decoding label {label:?}: no decoders set"),
        chain::ChainError::Unknown(name) => format!("unknown decoder {name:?}"),
        chain::ChainError::Failed(detail) => format!("error decoding label {label:?}: {detail}"),
    }
}

/// Splits `key` (after §5.4), decodes every label (spec §6) and appends the row's labels to
/// `rows` (without a value; the caller pushes it on `Keep`). The error is the §3.3 detail.
fn decode_row(
    tables: &mut chain::Tables,
    state: &mut MetricState,
    key: &[u8],
    rows: &mut Rows,
    a: &mut Vec<u8>,
    b: &mut Vec<u8>,
) -> Result<Row, String> {
    if key.len() != state.key_len {
        return Err(format!(
            "error decoding labels: total size of key {} is {} bytes, but we have labels to decode {}",
            text::go_bytes_literal(key),
            key.len(),
            state.key_len
        ));
    }
    let (row_start, arena_start) = (rows.len(), rows.arena.len());
    let mut offset = 0usize;
    for (li, label) in state.labels.iter().enumerate() {
        if label.size == 0 {
            rows.truncate_to(row_start, arena_start);
            return Err(format!("error decoding label {:?}: size is zero or not set", label.name));
        }
        let end = offset.saturating_add(label.size);
        let field = key.get(offset..end).unwrap_or(&[]);
        offset = end.saturating_add(label.padding);
        let start = rows.arena.len();
        let cache = state.caches.get_mut(li).and_then(Option::as_mut);
        if let Some(hit) = cache.as_ref().and_then(|c| c.get(field)) {
            rows.arena.extend_from_slice(hit.as_bytes());
        } else {
            let chain = state.ranges.get(li).and_then(|r| state.chains.get(r.clone())).unwrap_or(&[]);
            // Earlier labels of this row are already in `rows`: `pid` for `ustack`.
            let pid = state
                .pid_label
                .filter(|&p| p < li && state.reads_pid.get(li).copied().unwrap_or(false))
                .and_then(|p| rows.text(row_start, p).parse().ok());
            let outcome = chain::run(tables, chain::RowContext { pid }, chain, field, a, b, &mut rows.arena);
            match outcome {
                Ok(true) => {}
                Ok(false) => {
                    rows.truncate_to(row_start, arena_start);
                    return Ok(Row::Skip);
                }
                Err(e) => {
                    rows.truncate_to(row_start, arena_start);
                    return Err(chain_error(&label.name, e));
                }
            }
            escape_invalid_utf8(&mut rows.arena, start);
            let value = rows.arena.get(start..).unwrap_or(&[]);
            if let Some(c) = cache {
                c.insert(field.into(), String::from_utf8_lossy(value).into());
            }
        }
        if let Err(e) = rows.close_label(li, start) {
            rows.truncate_to(row_start, arena_start);
            return Err(e);
        }
    }
    Ok(Row::Keep)
}

/// Most value slots (possible CPUs of a per-CPU map) an entry may have: the `cpu` label is
/// 2 bytes (spec §5.3).
pub const MAX_SLOTS: usize = 1 << 16;

/// Rows dropped from one read because their keys failed to decode: each is counted as a
/// decoder error, and the first one's detail is kept for the warning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowErrors {
    pub rows: u64,
    pub first: Option<String>,
}

impl RowErrors {
    fn note(&mut self, detail: String) {
        self.rows = self.rows.saturating_add(1);
        self.first.get_or_insert(detail);
    }
}

/// Errors that would fail every row alike (a zero-sized label, a chain with no or an unknown
/// decoder, keys of the wrong size): reported once for the whole metric.
fn check_layout(state: &MetricState, raw: &RawMap, cpu_rows: bool) -> Result<(), String> {
    for (li, label) in state.labels.iter().enumerate() {
        if label.size == 0 {
            return Err(format!("error decoding label {:?}: size is zero or not set", label.name));
        }
        let chain = state.ranges.get(li).and_then(|r| state.chains.get(r.clone())).unwrap_or(&[]);
        chain::check(chain).map_err(|e| chain_error(&label.name, e))?;
    }
    if !cpu_rows && !state.labels.is_empty() && raw.key_size != state.key_len {
        return Err(format!(
            "error decoding labels: total size of key {} is {} bytes, but we have labels to decode {}",
            text::go_bytes_literal(raw.keys.get(..raw.key_size).unwrap_or(&[])),
            raw.key_size,
            state.key_len
        ));
    }
    Ok(())
}

/// Rows of `raw` per spec §5, decoded, sorted and summed. A row whose key fails to decode is
/// dropped and counted in the returned [`RowErrors`]; the other rows are kept.
fn read_rows(
    tables: &mut chain::Tables,
    state: &mut MetricState,
    raw: &RawMap,
    scratch: &mut (Vec<u8>, Vec<u8>),
    rows: &mut Rows,
    histogram: bool,
    direct: bool,
) -> Result<RowErrors, (DecodeErrorKind, String)> {
    let raw_err = |d: String| (DecodeErrorKind::RawMap, d);
    let width = state.labels.len();
    let n = raw.len();
    let mut errors = RowErrors::default();
    rows.reset(width, 0);
    rows.sort_by_names(&state.labels, histogram);
    if raw.key_size == 0 {
        if raw.keys.is_empty() && raw.values.is_empty() {
            return Ok(errors);
        }
        return Err(raw_err(format!("map {:?} has key size 0 but holds data", raw.name)));
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
    if raw.key_size > crate::config::MAX_KEY_SIZE || raw.slots > MAX_SLOTS {
        return Err(raw_err(format!(
            "map {:?} claims {}-byte keys and {} value slots per entry (at most {} and {MAX_SLOTS})",
            raw.name,
            raw.key_size,
            raw.slots,
            crate::config::MAX_KEY_SIZE
        )));
    }
    let cpu_rows = raw.per_cpu && state.labels.last().is_some_and(|l| l.name == "cpu");
    let only_cpu = cpu_rows && width == 1;
    if n > 0 {
        check_layout(state, raw, cpu_rows).map_err(|d| (DecodeErrorKind::Key, d))?;
    }
    let (a, b) = scratch;
    // Counters and gauges of one or two short labels (pids, CPUs, operations, task names) are
    // first tried without keeping the labels at all: each row becomes its two exact keys and its
    // value. The first longer value ends the attempt and the rows are decoded again below.
    if !histogram && (1..=2).contains(&width) {
        rows.reset(width, 0);
        rows.track_common = false;
        rows.sort_by_names(&state.labels, histogram);
        let (l0, l1) = (rows.order[0], rows.order.get(1).copied().unwrap_or(0));
        // Quicker still when both keys can be read straight off the key bytes.
        if direct && !cpu_rows && raw.key_size == state.key_len && direct_keys(state, raw, l0, l1, &mut rows.exact) {
            rows.merge_exact();
            return Ok(errors);
        }
        let mut exact = std::mem::take(&mut rows.exact);
        exact.reserve(if cpu_rows { n.saturating_mul(raw.slots) } else { n });
        let complete = each_row(raw, cpu_rows, only_cpu, |bytes, value| {
            match decode_row(tables, state, bytes, rows, a, b) {
                Ok(Row::Keep) => {
                    if rows.stats.iter().any(|s| s.nul || s.longest > KEY_BYTES) {
                        return Ok(false);
                    }
                    exact.push((rows.prefix(0, l0), if width > 1 { rows.prefix(0, l1) } else { 0 }, value));
                    rows.truncate_to(0, 0);
                }
                Ok(Row::Skip) => {}
                Err(detail) => errors.note(detail),
            }
            Ok(true)
        });
        rows.exact = exact;
        if complete? {
            rows.merge_exact();
            return Ok(errors);
        }
        // Decoded again below: count those rows' errors once.
        errors = RowErrors::default();
    }
    rows.reset(width, if cpu_rows { n.saturating_mul(raw.slots) } else { n });
    rows.sort_by_names(&state.labels, histogram);
    each_row(raw, cpu_rows, only_cpu, |bytes, value| {
        // §5.4 rule 1: no labels and a 4-byte zero key → the empty label list.
        if width == 0 && bytes == [0, 0, 0, 0] {
            rows.values.push(value);
            return Ok(true);
        }
        match decode_row(tables, state, bytes, rows, a, b) {
            Ok(Row::Keep) => rows.values.push(value),
            Ok(Row::Skip) => {}
            Err(detail) => errors.note(detail),
        }
        Ok(true)
    })?;
    rows.merge(!histogram);
    Ok(errors)
}

/// Exact keys of every entry of `raw` read straight off the fields of labels `l0` and `l1`, into
/// `exact`; false (and `exact` emptied) as soon as one cannot be (see [`chain::DirectKey`]).
fn direct_keys(state: &MetricState, raw: &RawMap, l0: usize, l1: usize, exact: &mut Vec<(Key, Key, u64)>) -> bool {
    let reader = |l: usize| match state.direct.get(l) {
        Some(&(offset, size, Some(kind))) if size > 0 => Some((offset, size, kind)),
        _ => None,
    };
    let width = state.labels.len();
    let (Some(first), second) = (reader(l0), if width > 1 { reader(l1) } else { None }) else {
        return false;
    };
    if width > 1 && second.is_none() {
        return false;
    }
    let key = |bytes: &[u8], (offset, size, kind): (usize, usize, chain::DirectKey)| {
        bytes.get(offset..offset.checked_add(size)?).and_then(|field| kind.key(field))
    };
    exact.clear();
    exact.reserve(raw.len());
    for (bytes, values) in raw.keys.chunks_exact(raw.key_size).zip(raw.values.chunks_exact(raw.slots.max(1))) {
        let value = values.iter().fold(0u64, |acc, &v| acc.saturating_add(v));
        let k1 = match second {
            Some(r) => key(bytes, r),
            None => Some(0),
        };
        match (key(bytes, first), k1) {
            (Some(k0), Some(k1)) => exact.push((k0, k1, value)),
            _ => {
                exact.clear();
                return false;
            }
        }
    }
    true
}

/// Calls `f` with the key bytes and value of every row of `raw` (spec §5): one per entry, the
/// per-CPU slots summed; or, with `cpu_rows`, one per entry and CPU, the CPU number appended to
/// the key (§5.4 rule 2: dropping 4 leading zero bytes when `cpu` is the only label).
/// `f` returns false to stop early; then so does this.
fn each_row(
    raw: &RawMap,
    cpu_rows: bool,
    only_cpu: bool,
    mut f: impl FnMut(&[u8], u64) -> Result<bool, (DecodeErrorKind, String)>,
) -> Result<bool, (DecodeErrorKind, String)> {
    // Grown on first use: a raw map from a file may claim any key size (checked by the caller).
    let mut row = Vec::new();
    for (key, values) in raw.keys.chunks_exact(raw.key_size).zip(raw.values.chunks_exact(raw.slots.max(1))) {
        if !cpu_rows {
            // Non-per-CPU maps have one slot; per-CPU slots with identical labels are summed.
            let value = values.iter().fold(0u64, |acc, &v| acc.saturating_add(v));
            if !f(key, value)? {
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
                Some([0, 0, 0, 0]) if only_cpu => &row[4..],
                _ => &row[..],
            };
            if !f(bytes, value)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn samples(rows: &Rows) -> Samples {
    if rows.form != Form::Rows {
        if let Some(mut out) = exact_samples(rows) {
            out.mark_in_name_order();
            return out;
        }
        // Not reached: the keys hold whole UTF-8 values. Kept as the plain way.
        let mut out = Samples::with_capacity(rows.width, rows.exact.len(), rows.arena.len());
        let first = rows.order.first().copied().unwrap_or(0);
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        for &(k0, k1, v) in &rows.exact {
            let (c0, c1) = if first == 0 { (k0, k1) } else { (k1, k0) };
            b0.clear();
            b1.clear();
            push_exact(rows, 0, c0, &mut b0);
            push_exact(rows, 1, c1, &mut b1);
            out.push([String::from_utf8_lossy(&b0).as_ref(), String::from_utf8_lossy(&b1).as_ref()], v as f64);
        }
        out.mark_in_name_order();
        return out;
    }
    if let Some(mut out) = merged_samples(rows) {
        out.mark_in_name_order();
        return out;
    }
    // Not reached: rows hold whole UTF-8 values, one after the other. Kept as the plain way.
    let mut out = Samples::with_capacity(rows.width, rows.merged.len(), rows.arena.len());
    for &(r, sum) in &rows.merged {
        out.push((0..rows.width).map(|l| rows.text(r as usize, l)), sum as f64);
    }
    out.mark_in_name_order();
    out
}

/// Series from merged rows: rows sharing all labels but the bucket label are adjacent (spec §9.1).
fn histogram_series(
    rows: &Rows,
    spec: &crate::config::HistogramSpec,
) -> Result<Vec<HistogramSeries>, (DecodeErrorKind, String)> {
    let Some(bucket) = rows.width.checked_sub(1) else {
        return Err((DecodeErrorKind::HistogramConfig, "a histogram needs at least one label".to_string()));
    };
    let same_series = |x: usize, y: usize| (0..bucket).all(|l| rows.label(x, l) == rows.label(y, l));
    let mut out = Vec::new();
    let mut counts: HashMap<u64, u64> = HashMap::new();
    let merged = &rows.merged;
    let mut i = 0;
    while let Some(&(first, _)) = merged.get(i) {
        let first = first as usize;
        counts.clear();
        while let Some(&(r, sum)) = merged.get(i).filter(|&&(r, _)| same_series(first, r as usize)) {
            let text = rows.text(r as usize, bucket);
            let index = go_uint_parse(text).ok_or_else(|| {
                (DecodeErrorKind::HistogramBucket, format!("bucket label value {text:?} is not an unsigned integer"))
            })?;
            let c = counts.entry(index).or_insert(0);
            *c = c.saturating_add(sum);
            i += 1;
        }
        let rebuilt = histogram::rebuild(spec, &counts).map_err(|e| (DecodeErrorKind::HistogramConfig, e))?;
        out.push(HistogramSeries {
            labels: rows.labels(first, bucket),
            buckets: rebuilt.buckets,
            count: rebuilt.count,
            sum: rebuilt.sum,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
