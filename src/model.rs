//! The neutral snapshot every renderer reads. Built by `decode` from raw map contents, or by hand
//! in tests: nothing here knows about libbpf or about any output format.
use std::time::{Duration, SystemTime};

/// One collection window's results, for every config that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub window: Window,
    /// Metrics in config order, then metric order within a config.
    pub metrics: Vec<Metric>,
    /// Per config: how many metric collections failed to decode (whole metric dropped).
    pub decoder_errors: Vec<(String, u64)>,
    /// Things the user must know about the numbers (a full map, a dropped metric), one line each.
    pub warnings: Vec<String>,
    /// ebpfx's own metrics (configs, programs, probe cost): in prom and json output only.
    pub self_metrics: Vec<Metric>,
}

/// The self metric (in [`Snapshot::self_metrics`]) that names each map that held `max_entries`
/// keys when it was read: labels `config` and `map`, value 1. Printed as `ebpfx_map_full`.
pub const MAP_FULL: &str = "map_full";

/// A map that held `max_entries` keys when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullMap {
    pub config: String,
    pub map: String,
}

impl FullMap {
    /// The note every format prints about it.
    pub fn note(&self) -> String {
        format!(
            "map {} of config {} reached its max_entries: a full map refuses new keys (an LRU map evicts old \
             ones), so events may be missing and the numbers are lower bounds",
            self.map, self.config
        )
    }
}

impl Snapshot {
    /// Records that a map reached `max_entries`: the [`MAP_FULL`] self metric (prom, json) and
    /// a warning (stderr, json), read back by [`Snapshot::full_maps`] (table, hist).
    pub fn note_full_map(&mut self, config: &str, map: &str, max_entries: u32) {
        let full = FullMap { config: config.to_string(), map: map.to_string() };
        self.warnings.push(format!("{} ({} entries)", full.note(), max_entries));
        let labels = [config, map];
        match self.self_metrics.iter_mut().find(|m| m.name == MAP_FULL) {
            Some(Metric { values: MetricValues::Gauge(samples), .. }) => samples.push(labels, 1.0),
            _ => {
                let mut samples = Samples::new(2);
                samples.push(labels, 1.0);
                self.self_metrics.push(Metric {
                    config: "ebpfx".into(),
                    name: MAP_FULL.into(),
                    help: "1 for each map that held max_entries keys when read: a full map refuses new keys (an LRU map evicts old ones), so its numbers are lower bounds".into(),
                    label_names: vec!["config".into(), "map".into()],
                    values: MetricValues::Gauge(samples),
                });
            }
        }
    }

    /// The maps that reached `max_entries`, from the [`MAP_FULL`] self metric.
    pub fn full_maps(&self) -> Vec<FullMap> {
        let Some(Metric { values: MetricValues::Gauge(samples), .. }) =
            self.self_metrics.iter().find(|m| m.name == MAP_FULL)
        else {
            return Vec::new();
        };
        samples
            .iter()
            .filter_map(|s| Some(FullMap { config: s.labels.get(0)?.to_string(), map: s.labels.get(1)?.to_string() }))
            .collect()
    }

    /// `metrics` over a 3 s window starting at the Unix epoch, nothing else: for tests.
    #[cfg(test)]
    pub(crate) fn of(metrics: Vec<Metric>) -> Snapshot {
        let start = SystemTime::UNIX_EPOCH;
        Snapshot {
            window: Window { start, end: start + Duration::from_secs(3), length: Duration::from_secs(3) },
            metrics,
            decoder_errors: vec![],
            warnings: vec![],
            self_metrics: vec![],
        }
    }
}

/// The measurement window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: SystemTime,
    pub end: SystemTime,
    /// Monotonic length of the window (not `end - start`, which can jump with the wall clock).
    pub length: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Name of the config this metric comes from.
    pub config: String,
    /// Metric name as in the config (no prefix).
    pub name: String,
    pub help: String,
    /// Label names in config order. For histograms the bucket label is not included.
    pub label_names: Vec<String>,
    pub values: MetricValues,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricValues {
    Counter(Samples),
    Gauge(Samples),
    Histogram(Histogram),
}

/// One label set and its value, owned: the convenient form for building samples by hand.
/// `labels` follow `Metric::label_names`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<String>,
    pub value: f64,
}

/// The samples of a counter or gauge, stored by column: every label value of every sample in
/// one string, the end of each value in `ends` (`width` per sample, in sample order) and the
/// values beside them. A map of 100,000 entries becomes three allocations instead of 100,000,
/// and renderers walk memory in order.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    width: usize,
    text: String,
    ends: Vec<usize>,
    values: Vec<f64>,
    /// Set by decode: the samples are in increasing order of their label values taken in
    /// label-name order (bytes), without repeats (the order Prometheus text prints them in).
    in_name_order: bool,
}

/// One sample, borrowed from [`Samples`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRef<'a> {
    pub labels: LabelRow<'a>,
    pub value: f64,
}

/// The label values of one sample, in `Metric::label_names` order.
#[derive(Debug, Clone, Copy)]
pub struct LabelRow<'a> {
    text: &'a str,
    /// Ends of this row's values; the first value starts at `start`.
    ends: &'a [usize],
    start: usize,
}

impl<'a> LabelRow<'a> {
    /// Number of label values (the metric's width).
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Value of label `i`.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { self.start } else { self.ends.get(i - 1).copied().unwrap_or(self.start) };
        self.text.get(start..end)
    }

    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        let row = *self;
        (0..row.len()).map(move |i| row.get(i).unwrap_or(""))
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl PartialEq for LabelRow<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Anything holding a sample's label values in order: an owned `Vec<String>` or a [`LabelRow`].
pub trait LabelValues {
    fn label_values(&self) -> impl Iterator<Item = &str> + Clone;
}

impl LabelValues for [String] {
    fn label_values(&self) -> impl Iterator<Item = &str> + Clone {
        self.iter().map(String::as_str)
    }
}

impl LabelValues for Vec<String> {
    fn label_values(&self) -> impl Iterator<Item = &str> + Clone {
        self.iter().map(String::as_str)
    }
}

impl<T: LabelValues + ?Sized> LabelValues for &T {
    fn label_values(&self) -> impl Iterator<Item = &str> + Clone {
        (**self).label_values()
    }
}

impl LabelValues for LabelRow<'_> {
    fn label_values(&self) -> impl Iterator<Item = &str> + Clone {
        self.iter()
    }
}

impl Samples {
    /// No samples, each to have `width` label values.
    pub fn new(width: usize) -> Samples {
        Samples { width, ..Samples::default() }
    }

    /// Room for `rows` samples whose label values add up to `text` bytes.
    pub fn with_capacity(width: usize, rows: usize, text: usize) -> Samples {
        Samples {
            width,
            text: String::with_capacity(text),
            ends: Vec::with_capacity(rows.saturating_mul(width)),
            values: Vec::with_capacity(rows),
            in_name_order: false,
        }
    }

    /// Samples from their columns: `text` holds every label value, `ends` the end of each
    /// (`width` per sample), `values` one per sample. `None` unless `text` is UTF-8, there are
    /// `width` ends per value, and the ends rise within `text` on character boundaries.
    pub fn from_columns(width: usize, text: Vec<u8>, ends: Vec<usize>, values: Vec<f64>) -> Option<Samples> {
        let text = String::from_utf8(text).ok()?;
        if ends.len() != values.len().checked_mul(width)? {
            return None;
        }
        let mut prev = 0;
        for &end in &ends {
            if end < prev || !text.is_char_boundary(end) {
                return None;
            }
            prev = end;
        }
        Some(Samples { width, text, ends, values, in_name_order: false })
    }

    /// Label values per sample.
    pub fn width(&self) -> usize {
        self.width
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Appends a sample. Exactly `width` label values are kept: missing ones are empty, extra
    /// ones are dropped.
    pub fn push<'s>(&mut self, labels: impl IntoIterator<Item = &'s str>, value: f64) {
        let mut n = 0;
        for label in labels.into_iter().take(self.width) {
            self.text.push_str(label);
            self.ends.push(self.text.len());
            n += 1;
        }
        for _ in n..self.width {
            self.ends.push(self.text.len());
        }
        self.values.push(value);
        self.in_name_order = false;
    }

    /// Records that the samples are in label-name order without repeats (see the field); the
    /// next [`Samples::push`] forgets it. Only for code that sorted them that way.
    pub(crate) fn mark_in_name_order(&mut self) {
        self.in_name_order = true;
    }

    /// Whether [`Samples::mark_in_name_order`] holds.
    pub(crate) fn in_name_order(&self) -> bool {
        self.in_name_order
    }

    /// Sample `i`.
    pub fn get(&self, i: usize) -> Option<SampleRef<'_>> {
        let value = *self.values.get(i)?;
        let from = i * self.width;
        let ends = self.ends.get(from..from + self.width)?;
        let start = if from == 0 { 0 } else { self.ends.get(from - 1).copied().unwrap_or(0) };
        Some(SampleRef { labels: LabelRow { text: &self.text, ends, start }, value })
    }

    /// The samples in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SampleRef<'_>> + Clone + '_ {
        (0..self.len()).map(move |i| {
            self.get(i).unwrap_or(SampleRef { labels: LabelRow { text: "", ends: &[], start: 0 }, value: 0.0 })
        })
    }

    /// Owned copies of the samples, in order.
    pub fn to_vec(&self) -> Vec<Sample> {
        self.iter().map(|s| Sample { labels: s.labels.to_vec(), value: s.value }).collect()
    }

    /// The samples for which `keep` holds, in order.
    pub fn filtered(&self, mut keep: impl FnMut(&SampleRef<'_>) -> bool) -> Samples {
        let mut out = Samples::new(self.width);
        for s in self.iter().filter(|s| keep(s)) {
            out.push(s.labels.iter(), s.value);
        }
        out
    }
}

impl PartialEq for Samples {
    /// Same samples in the same order (two empty sets are equal whatever their width).
    fn eq(&self, other: &Samples) -> bool {
        self.values == other.values
            && (self.is_empty() || (self.width == other.width && self.text == other.text && self.ends == other.ends))
    }
}

impl From<Vec<Sample>> for Samples {
    /// The width is the first sample's number of labels.
    fn from(samples: Vec<Sample>) -> Samples {
        samples.into_iter().collect()
    }
}

impl FromIterator<Sample> for Samples {
    fn from_iter<I: IntoIterator<Item = Sample>>(iter: I) -> Samples {
        let mut iter = iter.into_iter().peekable();
        let mut out = Samples::new(iter.peek().map_or(0, |s| s.labels.len()));
        for s in iter {
            out.push(s.labels.iter().map(String::as_str), s.value);
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketType {
    Exp2,
    Exp2Zero,
    Linear,
    Fixed,
}

impl BucketType {
    pub fn as_str(self) -> &'static str {
        match self {
            BucketType::Exp2 => "exp2",
            BucketType::Exp2Zero => "exp2zero",
            BucketType::Linear => "linear",
            BucketType::Fixed => "fixed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bucket_type: BucketType,
    /// The config's `bucket_multiplier` (1 when unset): raw value × multiplier = metric unit.
    pub multiplier: f64,
    pub series: Vec<HistogramSeries>,
}

/// One label set of a histogram, buckets rebuilt as docs/config-format.md#histograms says.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    pub labels: Vec<String>,
    /// Cumulative buckets in the order rebuilt (increasing `le` unless `fixed` keys are unsorted).
    pub buckets: Vec<Bucket>,
    /// Total observations (= the `+Inf` bucket).
    pub count: u64,
    /// Sum of observed values in the metric's unit; `None` when the map had no sum key.
    pub sum: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Upper bound in the metric's unit.
    pub le: f64,
    /// Observations at or below `le`.
    pub cumulative: u64,
}

impl HistogramSeries {
    /// Per-bucket (non-cumulative) counts, in bucket order.
    pub fn counts(&self) -> Vec<u64> {
        let mut prev = 0u64;
        self.buckets
            .iter()
            .map(|b| {
                let c = b.cumulative.saturating_sub(prev);
                prev = b.cumulative;
                c
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(labels: &[&str], value: f64) -> Sample {
        Sample { labels: labels.iter().map(|s| s.to_string()).collect(), value }
    }

    #[test]
    fn samples_keep_labels_and_values_in_order() {
        let s: Samples = vec![owned(&["a", "ünï"], 1.0), owned(&["", "x"], 2.5), owned(&["bb", ""], 3.0)].into();
        assert_eq!((s.width(), s.len()), (2, 3));
        let row = s.get(1).expect("row 1").labels;
        assert_eq!((row.get(0), row.get(1), row.get(2)), (Some(""), Some("x"), None));
        assert_eq!(s.get(0).map(|r| r.labels.to_vec()), Some(vec!["a".to_string(), "ünï".to_string()]));
        assert_eq!(s.get(3), None);
        assert_eq!(s.to_vec(), vec![owned(&["a", "ünï"], 1.0), owned(&["", "x"], 2.5), owned(&["bb", ""], 3.0)]);
        let kept = s.filtered(|r| r.value > 2.0);
        assert_eq!(kept.to_vec(), vec![owned(&["", "x"], 2.5), owned(&["bb", ""], 3.0)]);
    }

    #[test]
    fn samples_from_columns_are_checked() {
        let s = Samples::from_columns(2, b"abcd".to_vec(), vec![1, 4, 4, 4], vec![1.0, 2.0]).expect("valid");
        assert_eq!(s.to_vec(), vec![owned(&["a", "bcd"], 1.0), owned(&["", ""], 2.0)]);
        assert!(Samples::from_columns(1, vec![0xff], vec![1], vec![1.0]).is_none(), "not UTF-8");
        assert!(Samples::from_columns(1, "é".into(), vec![1], vec![1.0]).is_none(), "inside a character");
        assert!(Samples::from_columns(1, b"ab".to_vec(), vec![2, 1], vec![1.0, 2.0]).is_none(), "falling");
        assert!(Samples::from_columns(1, b"ab".to_vec(), vec![3], vec![1.0]).is_none(), "past the end");
        assert!(Samples::from_columns(2, b"ab".to_vec(), vec![2], vec![1.0]).is_none(), "too few ends");
    }

    #[test]
    fn samples_hold_exactly_width_labels() {
        let mut s = Samples::new(2);
        s.push(["only"], 1.0);
        s.push(["a", "b", "dropped"], 2.0);
        assert_eq!(s.to_vec(), vec![owned(&["only", ""], 1.0), owned(&["a", "b"], 2.0)]);
        let mut none = Samples::new(0);
        none.push([], 4.0);
        assert_eq!(none.get(0).map(|r| (r.labels.len(), r.value)), Some((0, 4.0)));
        assert_eq!(Samples::new(3), Samples::new(1));
        assert_ne!(none, Samples::new(0));
    }
}
