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
    Counter(Vec<Sample>),
    Gauge(Vec<Sample>),
    Histogram(Histogram),
}

/// One label set and its value. `labels` follow `Metric::label_names`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<String>,
    pub value: f64,
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

/// One label set of a histogram, buckets rebuilt as spec §9.2.
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
