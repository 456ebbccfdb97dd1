//! Pure functions of a [`crate::model::Snapshot`]: every output format is a `String` built from
//! the snapshot alone, so a test can build a snapshot by hand and compare text exactly.
//!
//! * [`Format::Prom`]: Prometheus text format 0.0.4, byte for byte what Go's `expfmt` prints for
//!   ebpf_exporter (docs/config-format.md#prometheus-text), plus `decoder_errors_total` and two
//!   window gauges.
//! * [`Format::Hist`]: bcc/libbpf-tools style terminal histograms and `labels : value` lists.
//! * [`Format::Table`]: comfy-table tables; histograms summarised as count/p50/p90/p99/mean/sum.
//! * [`Format::Json`]: one JSON document, schema in the `json` module's documentation.
//! * [`Format::Folded`]: folded stacks (`comm;frame;frame count`) of stack metrics, the
//!   counters with `kstack`/`ustack` labels (rule in the `stacks` module); nothing without them.
//! * [`Format::Flamegraph`]: an SVG flame graph of the same stacks (inferno).
//! * [`Format::Pprof`]: the same stacks as a gzipped pprof `profile.proto` (binary: only
//!   through [`render_to`] / [`render_pprof_to`]; [`render`] gives an empty string for it).
//!
//! Every non-empty text output ends with a newline; an output with nothing to say is empty.
use std::borrow::Cow;
use std::cmp::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{Bucket, HistogramSeries, LabelValues, MetricValues, Snapshot};

pub mod events;
mod flamegraph;
mod folded;
mod hist;
mod json;
pub mod number;
mod pprof;
mod prom;
mod stacks;
mod table;
mod units;

pub use units::TimeUnit;

/// Output format, as chosen on the command line (`--format prom|hist|table|json|folded|flamegraph`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4 (as ebpf_exporter prints it).
    Prom,
    /// bcc-style ASCII histograms; counters and gauges as aligned lists.
    Hist,
    /// Tables; histograms summarised by count and estimated quantiles.
    Table,
    /// One JSON document.
    Json,
    /// Folded stacks (`comm;user;kernel frames count`, root first) of stack metrics such as
    /// profile's, for flamegraph.pl and similar tools.
    Folded,
    /// An SVG flame graph of the stack metrics.
    Flamegraph,
    /// A gzipped pprof profile (profile.proto) of the stack metrics, for `go tool pprof`,
    /// Pyroscope, Parca, Grafana, speedscope. Binary: to --output FILE or a pipe.
    Pprof,
}

/// Rendering options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Prepended to every metric family name in `prom` output (ebpf_exporter uses
    /// `ebpf_exporter_`). Other formats print the config's metric names unchanged.
    pub prefix: String,
    /// The unit of time-valued histograms in `hist` and `table` (`--unit`).
    pub unit: TimeUnit,
    /// `table`: at most this many rows per metric, largest first (`--top`).
    pub top: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options { prefix: "ebpfx_".to_string(), unit: TimeUnit::default(), top: None }
    }
}

/// Renders `snapshot` in `format`.
pub fn render(format: Format, snapshot: &Snapshot, opts: &Options) -> String {
    match format {
        Format::Prom => prom::render(snapshot, opts),
        Format::Hist => hist::render(snapshot, opts),
        Format::Table => table::render(snapshot, opts),
        Format::Json => json::render(snapshot),
        Format::Folded => folded::render(snapshot),
        Format::Flamegraph => flamegraph::render(snapshot),
        // Binary: see render_to.
        Format::Pprof => String::new(),
    }
}

/// Renders `snapshot` in `format` into `sink`. Prometheus text is written as it is made (a
/// large map never sits in memory as one string); the other formats are written whole.
pub fn render_to(
    format: Format,
    snapshot: &Snapshot,
    opts: &Options,
    sink: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Prom => prom::render_to(snapshot, opts, sink),
        Format::Pprof => pprof::render_to(snapshot, None, sink),
        other => sink.write_all(render(other, snapshot, opts).as_bytes()),
    }
}

/// The Prometheus text of `snapshot`, handed to `give` in owned pieces of at least `size` bytes
/// as it is rendered (`serve`'s body chunks, sent without a copy).
pub fn render_prom_pieces(
    snapshot: &Snapshot,
    opts: &Options,
    size: usize,
    give: &mut dyn FnMut(String) -> std::io::Result<()>,
) -> std::io::Result<()> {
    prom::render_pieces(snapshot, opts, size, give)
}

pub use stacks::has_stack_labels;

/// Writes `snapshot`'s stack metrics as a gzipped pprof profile. `frequency_hz`, the sampling
/// frequency of the programs that counted the samples, adds the `cpu/nanoseconds` value type.
pub fn render_pprof_to(
    snapshot: &Snapshot,
    frequency_hz: Option<u64>,
    sink: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    pprof::render_to(snapshot, frequency_hz, sink)
}

impl Format {
    /// Whether the format prints only stack metrics (and so needs a config that has one).
    pub fn needs_stacks(self) -> bool {
        matches!(self, Format::Folded | Format::Flamegraph | Format::Pprof)
    }

    /// Whether the output is binary (refused on a terminal).
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Pprof)
    }
}

/// `counter`, `gauge` or `histogram`.
fn type_name(values: &MetricValues) -> &'static str {
    match values {
        MetricValues::Counter(_) => "counter",
        MetricValues::Gauge(_) => "gauge",
        MetricValues::Histogram(_) => "histogram",
    }
}

/// The buckets of a series as every format prints them: sorted by `le` (stable, so the cumulative
/// values keep their config-order meaning, docs/config-format.md#histograms), one bucket per `le`
/// (when a `fixed` config repeats a key the later one wins, as in the reference's Go map), and no
/// non-finite bounds (the `+Inf` bucket is always the series count, printed separately).
pub(crate) fn sorted_buckets(series: &HistogramSeries) -> Vec<Bucket> {
    let mut buckets: Vec<Bucket> = series.buckets.iter().copied().filter(|b| b.le.is_finite()).collect();
    buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match out.last_mut() {
            Some(last) if last.le == b.le => *last = b,
            _ => out.push(b),
        }
    }
    out
}

/// Compares two label value lists byte-wise, value by value.
fn cmp_label_values<A: LabelValues + ?Sized, B: LabelValues + ?Sized>(a: &A, b: &B) -> Ordering {
    a.label_values().map(str::as_bytes).cmp(b.label_values().map(str::as_bytes))
}

/// A label value made safe for a terminal line: control characters (newlines in `kstack`,
/// the TAB before a `ksym` module name) are shown escaped so rows stay on one line.
fn display_label(value: &str) -> Cow<'_, str> {
    if !value.chars().any(char::is_control) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `k=v, k=v` in config order, for terminal formats.
fn display_label_set<V: LabelValues + ?Sized>(names: &[String], values: &V) -> String {
    names
        .iter()
        .zip(values.label_values())
        .map(|(n, v)| format!("{n}={}", display_label(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value for humans: a plain integer when it is one (and exactly representable), the
/// Go-style shortest form otherwise.
pub(crate) fn plain_number(v: f64) -> String {
    if v == 0.0 {
        // also -0
        "0".to_string()
    } else if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        format!("{v:.0}")
    } else {
        number::go_float(v)
    }
}

/// Seconds since the Unix epoch (negative before it).
fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// A one-line help text for terminal formats.
fn one_line(help: &str) -> Cow<'_, str> {
    if help.contains('\n') {
        Cow::Owned(help.replace('\n', " "))
    } else {
        Cow::Borrowed(help)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HistogramSeries;

    fn series(buckets: &[(f64, u64)]) -> HistogramSeries {
        HistogramSeries {
            labels: vec![],
            buckets: buckets.iter().map(|&(le, cumulative)| Bucket { le, cumulative }).collect(),
            count: buckets.last().map_or(0, |b| b.1),
            sum: None,
        }
    }

    #[test]
    fn sorted_buckets_keeps_config_order_cumulatives() {
        // fixed keys [4, 1, 2] with raw counts 5, 7, 9 (docs/config-format.md#histograms)
        let s = series(&[(4.0, 5), (1.0, 12), (2.0, 21)]);
        let got: Vec<(f64, u64)> = sorted_buckets(&s).iter().map(|b| (b.le, b.cumulative)).collect();
        assert_eq!(got, vec![(1.0, 12), (2.0, 21), (4.0, 5)]);
    }

    #[test]
    fn sorted_buckets_later_duplicate_wins_and_drops_infinite() {
        let s = series(&[(1.0, 1), (1.0, 3), (f64::INFINITY, 3), (f64::NAN, 3)]);
        let got: Vec<(f64, u64)> = sorted_buckets(&s).iter().map(|b| (b.le, b.cumulative)).collect();
        assert_eq!(got, vec![(1.0, 3)]);
    }

    #[test]
    fn label_values_compare_bytewise() {
        let a = vec!["10".to_string()];
        let b = vec!["9".to_string()];
        assert_eq!(cmp_label_values(&a, &b), Ordering::Less);
    }

    #[test]
    fn display_label_escapes_controls() {
        assert_eq!(display_label("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(display_label("plain \\ \""), "plain \\ \"");
    }

    #[test]
    fn plain_number_integers() {
        assert_eq!(plain_number(1234567.0), "1234567");
        assert_eq!(plain_number(1.5), "1.5");
        assert_eq!(plain_number(-3.0), "-3");
        assert_eq!(plain_number(-0.0), "0");
        assert_eq!(plain_number(1e300), "1e+300");
        assert_eq!(plain_number(f64::NAN), "NaN");
    }

    #[test]
    fn options_default_prefix() {
        assert_eq!(Options::default().prefix, "ebpfx_");
    }
}
