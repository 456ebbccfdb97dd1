//! Raw map contents → labelled samples (docs/config-format.md#reading-maps to #histograms).
//!
//! [`Decoders::metric`] turns one [`RawMap`] into one [`Metric`]. The way there:
//!
//! - `rows.rs`: THE general path. Every entry becomes rows (one per CPU with a `cpu` label),
//!   each key is split and decoded label by label, rows are sorted in Prometheus order and
//!   summed, then become counter samples or histogram series. Read it first.
//! - `fast.rs`: the same counter and gauge samples with less work, behind one entry point
//!   (`fast::samples`); a property test checks both give identical results.
//! - `chain.rs`: one label's decoder chain; `text.rs`, `ksym.rs`, `cgroup.rs`, `block.rs`,
//!   `net.rs`, `pci.rs`, `ustack.rs`: the decoder families; `histogram.rs`: bucket rebuilding;
//!   `stackids.rs`: stack ids into a stack-trace map (the frames come with the raw map).
//! - `keycache.rs`: serve's label cache: what each raw key decoded to, kept between reads for
//!   metrics whose decoders are pure functions of the key bytes ([`Decoders::keep_decoded_keys`]).
mod block;
pub mod cgroup;
mod chain;
mod fast;
mod fasthash;
mod fields;
mod histogram;
mod keycache;
mod ksym;
mod net;
mod pci;
mod rows;
pub mod stackids;
mod tables;
mod text;
mod ustack;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::config::{Label, MetricConfig, MetricKind};
use crate::model::{Histogram, Metric, MetricValues, Samples};
use crate::raw::RawMap;
use rows::MetricState;

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
    /// The detail printed, e.g. `error decoding labels: total size of key ...`.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// A key failed to split or decode (counted in `decoder_errors`).
    Key,
    /// The raw map is inconsistent (keys/values lengths); counted like a failed map read.
    RawMap,
    /// A histogram bucket label is not an unsigned integer: logged, not counted (docs/config-format.md#label-bytes-and-decode-errors).
    HistogramBucket,
    /// The histogram's bucket configuration cannot be rebuilt: logged, not counted.
    HistogramConfig,
}

impl DecodeError {
    /// Whether the caller should add this to the config's decoder error count (docs/config-format.md#label-bytes-and-decode-errors).
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

/// Most value slots (possible CPUs of a per-CPU map) an entry may have: the `cpu` label is
/// 2 bytes (docs/config-format.md#per-cpu-maps).
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

/// Decodes raw maps. Owns the environment tables (loaded on first use) and the per-metric
/// caches, so keep one for the whole run.
#[derive(Debug)]
pub struct Decoders {
    tables: chain::Tables,
    metrics: HashMap<(String, String), MetricState>,
    scratch: (Vec<u8>, Vec<u8>),
    /// The fast paths' buffers, kept between reads.
    rows: fast::Rows,
    /// Whether counters and gauges take `fast.rs` (tests turn it off to compare with `rows.rs`).
    fast: bool,
    /// Whether the fast path may read keys straight off the fields (see [`chain::DirectKey`]).
    direct_keys: bool,
    /// Whether decoded keys are kept between reads (serve; see `keycache.rs`).
    keep_keys: bool,
    /// Whether a read whose keys are mostly new to the kept ones decodes as a one-shot read
    /// would and is held for [`Decoders::fill_kept_keys`] (serve fills when idle).
    fill_later: bool,
    /// Lost-stack warnings of each metric's latest read, by (config, metric).
    lost_stacks: std::collections::BTreeMap<(String, String), String>,
}

/// With kept keys filled later: a read with more than twice the kept keys and this many more
/// is decoded uncached and its keys kept after it (small maps just take the kept-keys path).
const MOSTLY_NEW_SLACK: usize = 1024;

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

impl Decoders {
    /// Cheap: tables are loaded on first use.
    pub fn new(env: Env) -> Decoders {
        Decoders {
            tables: chain::Tables::new(env),
            metrics: HashMap::new(),
            scratch: (Vec::new(), Vec::new()),
            rows: fast::Rows::default(),
            fast: true,
            direct_keys: true,
            keep_keys: false,
            fill_later: false,
            lost_stacks: std::collections::BTreeMap::new(),
        }
    }

    /// Keeps each metric's decoded keys from one read to the next, for metrics whose decoders
    /// are all pure functions of the key bytes (`ebpfx serve`, whose label sets are stable; see
    /// README.md, `ebpfx serve`, "Label cache"). Output and error counts are those of the uncached decode;
    /// a metric's kept keys are those of its latest read.
    pub fn keep_decoded_keys(&mut self, on: bool) {
        self.keep_keys = on;
        if !on {
            self.metrics.values_mut().for_each(|m| {
                m.key_cache = None;
                m.pending_fill = None;
            });
        }
    }

    /// With kept keys (see [`Decoders::keep_decoded_keys`]): a read whose keys are mostly new
    /// to the kept ones (a metric's first read, or its first read after the map filled up) is
    /// decoded the way a one-shot read is, at a one-shot read's cost, and its keys are kept
    /// afterwards, by [`Decoders::fill_kept_keys`] on that same read. serve answers the scrape
    /// in between, so that no scrape costs more than a one-shot read of the same maps
    /// (README.md, `ebpfx serve`, "Label cache").
    pub fn fill_kept_keys_later(&mut self, on: bool) {
        self.fill_later = on;
    }

    /// Keeps the decoded keys of the reads that [`Decoders::fill_kept_keys_later`] held back
    /// (nothing to do after that). Output is unaffected: the next read decodes the same with
    /// or without them.
    pub fn fill_kept_keys(&mut self) {
        for state in self.metrics.values_mut() {
            let Some((raw, histogram)) = state.pending_fill.take() else { continue };
            // A raw read that does not fit its labels was refused by the read itself.
            let Ok(shape) = rows::check(state, &raw) else { continue };
            self.tables.new_read();
            self.tables.stacks.set(raw.stack_traces.as_ref());
            let mut cache = state.key_cache.take().unwrap_or_default();
            // Errors were counted by the read that answered; the keys that decoded are kept.
            let _ = cache.read(&mut self.tables, state, &raw, shape, histogram, &mut self.scratch);
            state.key_cache = Some(cache);
        }
    }

    /// Turns reading keys straight off the fields on or off (tests compare both ways).
    #[cfg(test)]
    fn set_direct_keys(&mut self, on: bool) {
        self.direct_keys = on;
    }

    /// Turns the fast paths on or off (tests compare them with the general path).
    #[cfg(test)]
    fn set_fast(&mut self, on: bool) {
        self.fast = on;
    }

    pub fn env(&self) -> &Env {
        &self.tables.env
    }

    /// Warnings about the environment tables the decoded metrics used (kernel
    /// addresses hidden by kallsyms, so frames were printed raw), and the lost stacks of each
    /// metric's latest read, and (once per pid and run) the processes whose user frames
    /// could not be symbolized because their maps could not be read.
    pub fn warnings(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if self.tables.kallsyms_zeroed() {
            out.push(crate::kallsyms::zeroed_warning());
        }
        out.extend(self.lost_stacks.values().cloned());
        out.extend(self.tables.take_unreadable_processes());
        out
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
        let width = spec.labels.len();
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
            let values = MetricValues::Counter(Samples::new(width));
            return Ok(Decoded { metric: metric(names(width), values), row_errors: RowErrors::default() });
        }
        self.tables.new_read();
        self.tables.stacks.set(raw.stack_traces.as_ref());
        let lost_key = (config.to_string(), spec.name.clone());
        match stackids::lost_note(config, spec, raw) {
            Some(note) => {
                self.lost_stacks.insert(lost_key, note);
            }
            None => {
                self.lost_stacks.remove(&lost_key);
            }
        }
        let state = state_for(&mut self.metrics, config, spec);
        let shape = rows::check(state, raw).map_err(err)?;
        let scratch = &mut self.scratch;
        let histogram = matches!(spec.kind, MetricKind::Histogram(_));
        // Most of the read's keys new to the kept ones (serve's first read of a map, or a map
        // that filled up since): decoded below as a one-shot read, kept by `fill_kept_keys`.
        let mostly_new = state.key_cache.as_ref().map_or(true, |c| raw.len() > 2 * c.keys() + MOSTLY_NEW_SLACK);
        if self.keep_keys && state.stable && self.fill_later && mostly_new {
            state.pending_fill = Some((Box::new(raw.clone()), histogram));
        } else if self.keep_keys && state.stable {
            // A read held back for a fill and not filled yet is older than this one: dropped.
            state.pending_fill = None;
            let mut cache = state.key_cache.take().unwrap_or_default();
            let read = cache.read(&mut self.tables, state, raw, shape, histogram, scratch);
            let done = read.map_err(err).and_then(|row_errors| {
                let values = match &spec.kind {
                    MetricKind::Histogram(h) => {
                        let series = rows::histogram_series(&cache.merged(), h).map_err(err)?;
                        let values = Histogram { bucket_type: h.bucket_type, multiplier: h.multiplier, series };
                        return Ok(Decoded {
                            metric: metric(names(width.saturating_sub(1)), MetricValues::Histogram(values)),
                            row_errors,
                        });
                    }
                    MetricKind::Gauge => MetricValues::Gauge(cache.samples(width)),
                    _ => MetricValues::Counter(cache.samples(width)),
                };
                Ok(Decoded { metric: metric(names(width), values), row_errors })
            });
            state.key_cache = Some(cache);
            return done;
        }
        if let MetricKind::Histogram(h) = &spec.kind {
            let (merged, row_errors) = rows::read(&mut self.tables, state, raw, shape, true, scratch).map_err(err)?;
            let series = rows::histogram_series(&merged, h).map_err(err)?;
            let values = Histogram { bucket_type: h.bucket_type, multiplier: h.multiplier, series };
            return Ok(Decoded {
                metric: metric(names(width.saturating_sub(1)), MetricValues::Histogram(values)),
                row_errors,
            });
        }
        let fast = if self.fast {
            fast::samples(&mut self.tables, state, raw, shape, scratch, &mut self.rows, self.direct_keys)
        } else {
            None
        };
        let (samples, row_errors) = match fast {
            Some(done) => done.map_err(err)?,
            None => {
                let (merged, errors) = rows::read(&mut self.tables, state, raw, shape, false, scratch).map_err(err)?;
                (rows::samples(width, &merged), errors)
            }
        };
        let values =
            if spec.kind == MetricKind::Gauge { MetricValues::Gauge(samples) } else { MetricValues::Counter(samples) };
        Ok(Decoded { metric: metric(names(width), values), row_errors })
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
    /// docs/config-format.md#perf_event_array-counters) into label values in config order, using
    /// the metric's caches. `Ok(None)`: a decoder asked to skip it.
    pub fn decode_key(
        &mut self,
        config: &str,
        spec: &MetricConfig,
        key: &[u8],
    ) -> Result<Option<Vec<String>>, DecodeError> {
        self.tables.new_read();
        let state = state_for(&mut self.metrics, config, spec);
        let (mut arena, mut spans) = (Vec::new(), Vec::new());
        match rows::decode_row(&mut self.tables, state, key, &mut arena, &mut spans, &mut self.scratch) {
            Ok(rows::Row::Keep) => Ok(Some(
                spans
                    .iter()
                    .map(|&(s, n)| {
                        String::from_utf8_lossy(arena.get(s as usize..s as usize + n as usize).unwrap_or(&[]))
                            .into_owned()
                    })
                    .collect(),
            )),
            Ok(rows::Row::Skip) => Ok(None),
            Err(detail) => Err(DecodeError {
                config: config.to_string(),
                metric: spec.name.clone(),
                kind: DecodeErrorKind::Key,
                detail,
            }),
        }
    }

    /// Compiles a label's decoder chain once, for [`Decoders::decode_field`] (event records).
    pub fn compile_field(label: &Label) -> FieldChain {
        let chain = chain::compile(&label.decoders);
        FieldChain { numeric: chain::numeric(&chain), name: label.name.clone(), chain }
    }

    /// Runs a compiled chain on `field`, appending the value to `out` (invalid UTF-8 escaped).
    /// `Ok(false)`: the chain asked to skip the record.
    pub fn decode_field(&mut self, chain: &FieldChain, field: &[u8], out: &mut Vec<u8>) -> Result<bool, LabelError> {
        let start = out.len();
        let (a, b) = &mut self.scratch;
        match chain::run(&mut self.tables, chain::RowContext::default(), &chain.chain, field, a, b, out) {
            Ok(true) => {
                escape_invalid_utf8(out, start);
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => Err(LabelError(rows::chain_error(&chain.name, e))),
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
            Err(e) => Err(LabelError(rows::chain_error(&label.name, e))),
        }
    }
}

/// One event field's decoder chain, compiled once.
#[derive(Debug)]
pub struct FieldChain {
    chain: Vec<chain::Compiled>,
    name: String,
    /// The value is a number (the chain ends in `uint` or `int`): JSON prints it bare.
    pub numeric: bool,
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

#[cfg(test)]
mod tests;
