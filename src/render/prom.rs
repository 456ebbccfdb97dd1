//! Prometheus text format 0.0.4, as Go's `expfmt` prints ebpf_exporter's registry
//! (docs/config-format.md#prometheus-text).
//!
//! * Family name = prefix + metric name; families sorted by name byte-wise, one group each
//!   (metrics of the same name from different configs are merged into one group).
//! * `# HELP` (escapes `\` and newline), `# TYPE`, then samples; labels sorted by name, samples
//!   sorted by their label values byte-wise in label-name order; no braces without labels.
//! * Histograms: `_bucket` lines in increasing `le`, `le="+Inf"` = count, `_sum` (0 without a
//!   sum key), `_count`. A family without samples prints nothing.
//! * Numbers via [`go_float`].
//!
//! What the reference cannot print either is resolved without breaking the format: a metric
//! whose type differs from an earlier family of the same name is dropped, and of two series
//! with the same labels in one family only the first (in config order) is kept.
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::number::{go_float, push_go_float};
use super::{sorted_buckets, unix_seconds};
use crate::model::{Bucket, HistogramSeries, LabelRow, MetricValues, Samples, Snapshot};
use crate::render::Options;

const DECODER_ERRORS_HELP: &str = "How many times decoders encountered errors";
// The same HELP in every mode (one-shot run, serve): node_exporter drops the series of a
// textfile whose HELP differs from another file's.
const WINDOW_DURATION_HELP: &str = "Seconds the config's counters cover: a one-shot run's window, \
     or the time since ebpfx serve attached";
const WINDOW_END_HELP: &str = "Unix time at which the config's maps were read \
     (end of a one-shot run's window, or the scrape)";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Clone)]
enum Body {
    Value(f64),
    Histogram { buckets: Vec<Bucket>, count: u64, sum: f64 },
}

struct Series<'a> {
    labels: Labels<'a>,
    body: Body,
}

/// A series' labels in label-name order, borrowed from the snapshot (no allocation per series).
#[derive(Clone, Copy)]
enum Labels<'a> {
    /// A counter or gauge sample: `row.get(order[k])` is the value of label `names[order[k]]`,
    /// `order` sorting the names.
    Row {
        names: &'a [String],
        order: &'a [usize],
        row: LabelRow<'a>,
    },
    /// A histogram series, the same way.
    Values {
        names: &'a [String],
        order: &'a [usize],
        values: &'a [String],
    },
    One(&'static str, &'a str),
    Empty,
}

impl<'a> Labels<'a> {
    fn len(&self) -> usize {
        match self {
            Labels::Row { order, .. } | Labels::Values { order, .. } => order.len(),
            Labels::One(..) => 1,
            Labels::Empty => 0,
        }
    }

    /// The `k`-th label in name order.
    #[inline]
    fn at(&self, k: usize) -> (&'a str, &'a str) {
        let (names, i, value) = match *self {
            Labels::Row { names, order, row } => {
                let i = order.get(k).copied().unwrap_or(usize::MAX);
                (names, i, row.get(i))
            }
            Labels::Values { names, order, values } => {
                let i = order.get(k).copied().unwrap_or(usize::MAX);
                (names, i, values.get(i).map(String::as_str))
            }
            Labels::One(n, v) if k == 0 => return (n, v),
            _ => return ("", ""),
        };
        (names.get(i).map_or("", String::as_str), value.unwrap_or(""))
    }

    fn iter(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        (0..self.len()).map(move |k| self.at(k))
    }

    fn same(self, other: Labels<'a>) -> bool {
        self.len() == other.len() && (0..self.len()).all(|k| self.at(k) == other.at(k))
    }
}

/// Where a family's series come from: a metric of the snapshot (read lazily, so a family of
/// 100,000 samples is written without first building 100,000 series) or series made here.
enum Source<'a> {
    Samples { names: &'a [String], order: &'a [usize], samples: &'a Samples },
    Histograms { names: &'a [String], order: &'a [usize], series: &'a [HistogramSeries] },
    Made(Vec<Series<'a>>),
}

impl<'a> Source<'a> {
    fn len(&self) -> usize {
        match self {
            Source::Samples { samples, .. } => samples.len(),
            Source::Histograms { series, .. } => series.len(),
            Source::Made(series) => series.len(),
        }
    }

    /// Labels of every series, in order.
    fn labels(&self) -> Box<dyn Iterator<Item = Labels<'a>> + '_> {
        match *self {
            Source::Samples { names, order, samples } => {
                Box::new(samples.iter().map(move |s| Labels::Row { names, order, row: s.labels }))
            }
            Source::Histograms { names, order, series } => {
                Box::new(series.iter().map(move |s| Labels::Values { names, order, values: &s.labels }))
            }
            Source::Made(ref series) => Box::new(series.iter().map(|s| s.labels)),
        }
    }

    /// Every series, in order.
    fn series(&self) -> Box<dyn Iterator<Item = Series<'a>> + '_> {
        match *self {
            Source::Samples { names, order, samples } => Box::new(samples.iter().map(move |s| Series {
                labels: Labels::Row { names, order, row: s.labels },
                body: Body::Value(s.value),
            })),
            Source::Histograms { names, order, series } => Box::new(series.iter().map(move |s| Series {
                labels: Labels::Values { names, order, values: &s.labels },
                body: Body::Histogram { buckets: sorted_buckets(s), count: s.count, sum: s.sum.unwrap_or(0.0) },
            })),
            Source::Made(ref series) => {
                Box::new(series.iter().map(|s| Series { labels: s.labels, body: s.body.clone() }))
            }
        }
    }
}

struct Family<'a> {
    help: &'a str,
    kind: Kind,
    sources: Vec<Source<'a>>,
}

impl Family<'_> {
    /// One source whose series are already in output order, without repeats (what decoding
    /// produces): written as they are.
    fn in_order(&self) -> bool {
        let [source] = self.sources.as_slice() else {
            return false;
        };
        if let Source::Samples { samples, .. } = source {
            if samples.in_name_order() {
                debug_assert!(sorted(source), "decode marked samples out of order");
                return true;
            }
        }
        sorted(source)
    }
}

/// Whether the source's series are in increasing order, without repeats.
fn sorted(source: &Source<'_>) -> bool {
    let mut labels = source.labels();
    let Some(mut prev) = labels.next() else {
        return true;
    };
    labels.all(|next| {
        let lt = cmp_labels(prev, next).is_lt();
        prev = next;
        lt
    })
}

/// As client_golang orders a family: fewer labels first (only differs in merged families),
/// then label values in label-name order; then the names, to keep the order total.
fn cmp_labels(a: Labels<'_>, b: Labels<'_>) -> Ordering {
    let n = a.len();
    let values = || (0..n).map(|k| a.at(k).1.as_bytes().cmp(b.at(k).1.as_bytes())).find(|o| o.is_ne());
    let names = || (0..n).map(|k| a.at(k).0.as_bytes().cmp(b.at(k).0.as_bytes())).find(|o| o.is_ne());
    n.cmp(&b.len()).then_with(|| values().or_else(names).unwrap_or(Ordering::Equal))
}

/// Indexes of `names` sorted by name (computed once per metric, not per sample).
fn name_order(names: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| names[a].as_bytes().cmp(names[b].as_bytes()));
    order
}

struct Families<'a>(BTreeMap<String, Family<'a>>);

impl<'a> Families<'a> {
    /// Adds series to family `name`, creating it; ignored if the family exists with another type.
    fn add(&mut self, name: String, help: &'a str, kind: Kind, source: Source<'a>) {
        let family = self.0.entry(name).or_insert_with(|| Family { help, kind, sources: Vec::new() });
        if family.kind == kind {
            family.sources.push(source);
        }
    }
}

pub(crate) fn render(snapshot: &Snapshot, opts: &Options) -> String {
    let mut out = String::new();
    // Without a sink nothing is written, so nothing can fail.
    let _ = render_into(snapshot, opts, &mut out, Sink::Keep);
    out
}

/// Writes the text to `sink` as it is made, a buffer of [`FLUSH_AT`] bytes at a time: a map of
/// 100,000 entries never sits in memory as one 5 MB string.
pub(crate) fn render_to(snapshot: &Snapshot, opts: &Options, sink: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut out = String::with_capacity(FLUSH_AT + 4096);
    render_into(snapshot, opts, &mut out, Sink::Write(sink))
}

/// Hands the text to `give` as it is made, in pieces of at least `size` bytes (the last may be
/// shorter) that `give` then owns: nothing is copied on the way (`serve` turns each piece into
/// the body chunk it sends). An error from `give` stops the rendering and is returned.
pub(crate) fn render_pieces(
    snapshot: &Snapshot,
    opts: &Options,
    size: usize,
    give: &mut dyn FnMut(String) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut out = String::with_capacity(size + 4096);
    render_into(snapshot, opts, &mut out, Sink::Pieces { size, give })
}

const FLUSH_AT: usize = 64 * 1024;

/// Where [`render_into`] empties its buffer: nowhere (the caller keeps it whole), a writer
/// ([`FLUSH_AT`] bytes at a time, the buffer reused), or a taker of whole pieces.
enum Sink<'a> {
    Keep,
    Write(&'a mut dyn std::io::Write),
    Pieces { size: usize, give: &'a mut dyn FnMut(String) -> std::io::Result<()> },
}

/// Renders into `out`, emptying it into `sink` whenever it holds enough bytes, and at the end.
fn render_into(snapshot: &Snapshot, opts: &Options, out: &mut String, mut sink: Sink<'_>) -> std::io::Result<()> {
    let streaming = !matches!(sink, Sink::Keep);
    // `last`: at the end, whatever is left goes out.
    let mut flush = |out: &mut String, last: bool| -> std::io::Result<()> {
        match &mut sink {
            Sink::Keep => {}
            Sink::Write(w) => {
                if last || out.len() >= FLUSH_AT {
                    w.write_all(out.as_bytes())?;
                    out.clear();
                }
            }
            Sink::Pieces { size, give } => {
                if (last && !out.is_empty()) || out.len() >= *size {
                    let next = if last { String::new() } else { String::with_capacity(*size + 4096) };
                    give(std::mem::replace(out, next))?;
                }
            }
        }
        Ok(())
    };
    let mut families = Families(BTreeMap::new());

    let metrics: Vec<&crate::model::Metric> = snapshot.metrics.iter().chain(&snapshot.self_metrics).collect();
    let orders: Vec<Vec<usize>> = metrics.iter().map(|m| name_order(&m.label_names)).collect();
    for (metric, order) in metrics.iter().zip(&orders) {
        let name = format!("{}{}", opts.prefix, metric.name);
        let names = metric.label_names.as_slice();
        let (kind, source) = match &metric.values {
            MetricValues::Counter(samples) => (Kind::Counter, Source::Samples { names, order, samples }),
            MetricValues::Gauge(samples) => (Kind::Gauge, Source::Samples { names, order, samples }),
            MetricValues::Histogram(h) => (Kind::Histogram, Source::Histograms { names, order, series: &h.series }),
        };
        families.add(name, &metric.help, kind, source);
    }

    let decoder_errors = snapshot
        .decoder_errors
        .iter()
        .map(|(config, n)| Series { labels: Labels::One("config", config.as_str()), body: Body::Value(*n as f64) })
        .collect();
    families.add(
        format!("{}decoder_errors_total", opts.prefix),
        DECODER_ERRORS_HELP,
        Kind::Counter,
        Source::Made(decoder_errors),
    );

    // One series per config (label `config`), so that the files of several runs (one config
    // each) in one textfile directory never hold the same series twice.
    let window = &snapshot.window;
    let per_config = |value: f64| -> Vec<Series<'_>> {
        if snapshot.decoder_errors.is_empty() {
            return vec![Series { labels: Labels::Empty, body: Body::Value(value) }];
        }
        snapshot
            .decoder_errors
            .iter()
            .map(|(config, _)| Series { labels: Labels::One("config", config.as_str()), body: Body::Value(value) })
            .collect()
    };
    families.add(
        format!("{}window_duration_seconds", opts.prefix),
        WINDOW_DURATION_HELP,
        Kind::Gauge,
        Source::Made(per_config(window.length.as_secs_f64())),
    );
    families.add(
        format!("{}window_end_time_seconds", opts.prefix),
        WINDOW_END_HELP,
        Kind::Gauge,
        Source::Made(per_config(unix_seconds(window.end))),
    );

    if !streaming {
        let series: usize = families.0.values().flat_map(|f| &f.sources).map(Source::len).sum();
        out.reserve(series * 80);
    }
    for (name, family) in &families.0 {
        if family.sources.iter().all(|s| s.len() == 0) {
            continue;
        }
        write_header(out, name, family);
        if family.in_order() {
            for source in &family.sources {
                if let Source::Samples { names, order, samples } = *source {
                    let line = Line::new(name, names, order);
                    for s in samples.iter() {
                        line.write(out, s.labels, s.value);
                        flush(out, false)?;
                    }
                    continue;
                }
                for series in source.series() {
                    write_series(out, name, &series);
                    flush(out, false)?;
                }
            }
            continue;
        }
        // A stable sort: among equal label sets the first in config order stays first and is
        // kept.
        let mut all: Vec<Series<'_>> = family.sources.iter().flat_map(Source::series).collect();
        all.sort_by(|a, b| cmp_labels(a.labels, b.labels));
        all.dedup_by(|later, earlier| earlier.labels.same(later.labels));
        for series in &all {
            write_series(out, name, series);
            flush(out, false)?;
        }
    }
    flush(out, true)
}

/// The fixed text of a counter or gauge line around its label values, made once per metric:
/// `name{a="` before the first value, `",b="` between values, `"} ` after the last
/// (`name ` and nothing else without labels). The same text as [`write_sample`] prints.
struct Line<'a> {
    order: &'a [usize],
    head: String,
    between: Vec<String>,
    tail: &'static str,
}

impl<'a> Line<'a> {
    fn new(name: &str, names: &[String], order: &'a [usize]) -> Line<'a> {
        let mut sorted = order.iter().map(|&i| names.get(i).map_or("", String::as_str));
        let Some(first) = sorted.next() else {
            return Line { order, head: format!("{name} "), between: Vec::new(), tail: "" };
        };
        Line {
            order,
            head: format!("{name}{{{first}=\""),
            between: sorted.map(|n| format!("\",{n}=\"")).collect(),
            tail: "\"} ",
        }
    }

    #[inline]
    fn write(&self, out: &mut String, row: LabelRow<'_>, value: f64) {
        out.push_str(&self.head);
        for (k, &i) in self.order.iter().enumerate() {
            if let Some(between) = k.checked_sub(1).and_then(|k| self.between.get(k)) {
                out.push_str(between);
            }
            escape_into(out, row.get(i).unwrap_or(""), true);
        }
        out.push_str(self.tail);
        push_go_float(out, value);
        out.push('\n');
    }
}

fn write_header(out: &mut String, name: &str, family: &Family<'_>) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_into(out, family.help, false);
    out.push('\n');
    let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
}

fn write_series(out: &mut String, name: &str, series: &Series<'_>) {
    match &series.body {
        Body::Value(v) => write_sample(out, name, "", series.labels, None, *v),
        Body::Histogram { buckets, count, sum } => {
            for b in buckets {
                let le = go_float(b.le);
                write_sample(out, name, "_bucket", series.labels, Some(&le), b.cumulative as f64);
            }
            write_sample(out, name, "_bucket", series.labels, Some("+Inf"), *count as f64);
            write_sample(out, name, "_sum", series.labels, None, *sum);
            write_sample(out, name, "_count", series.labels, None, *count as f64);
        }
    }
}

fn write_sample(out: &mut String, name: &str, suffix: &str, labels: Labels<'_>, le: Option<&str>, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    if labels.len() > 0 || le.is_some() {
        let mut separator = '{';
        for (n, v) in labels.iter() {
            out.push(separator);
            out.push_str(n);
            out.push_str("=\"");
            escape_into(out, v, true);
            out.push('"');
            separator = ',';
        }
        if let Some(le) = le {
            out.push(separator);
            out.push_str("le=\"");
            out.push_str(le);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_go_float(out, value);
    out.push('\n');
}

/// `\` → `\\`, newline → `\n`, and in label values `"` → `\"`; nothing else.
fn escape_into(out: &mut String, s: &str, quotes: bool) {
    // Quick test: no byte at or below `"` (which covers newline) and no backslash.
    if s.bytes().all(|b| b > b'"' && b != b'\\') {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BucketType, Histogram, HistogramSeries, Metric, Sample, Window};
    use std::time::{Duration, UNIX_EPOCH};

    fn snapshot(metrics: Vec<Metric>) -> Snapshot {
        Snapshot {
            window: Window {
                start: UNIX_EPOCH + Duration::from_secs(100),
                end: UNIX_EPOCH + Duration::from_secs(103),
                length: Duration::from_secs(3),
            },
            metrics,
            decoder_errors: vec![],
            warnings: vec![],
            self_metrics: vec![],
        }
    }

    fn counter(config: &str, name: &str, labels: &[&str], samples: &[(&[&str], f64)]) -> Metric {
        Metric {
            config: config.into(),
            name: name.into(),
            help: format!("{name} help"),
            label_names: labels.iter().map(|s| s.to_string()).collect(),
            values: MetricValues::Counter(
                samples
                    .iter()
                    .map(|(l, v)| Sample { labels: l.iter().map(|s| s.to_string()).collect(), value: *v })
                    .collect(),
            ),
        }
    }

    fn opts() -> Options {
        Options { prefix: "ebpf_exporter_".into(), ..Default::default() }
    }

    /// The lines of the output belonging to family `name` (prefixed).
    fn family_lines(out: &str, name: &str) -> Vec<String> {
        out.lines()
            .filter(|l| {
                l.starts_with(&format!("# HELP {name} "))
                    || l.starts_with(&format!("# TYPE {name} "))
                    || l.starts_with(&format!("{name}{{"))
                    || l.starts_with(&format!("{name} "))
                    || l.starts_with(&format!("{name}_"))
            })
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn softirqs_spec_17_5_ordering() {
        let names = [
            "HI_SOFTIRQ",
            "TIMER_SOFTIRQ",
            "NET_TX_SOFTIRQ",
            "NET_RX_SOFTIRQ",
            "BLOCK_SOFTIRQ",
            "IRQ_POLL_SOFTIRQ",
            "TASKLET_SOFTIRQ",
            "SCHED_SOFTIRQ",
            "HRTIMER_SOFTIRQ",
            "RCU_SOFTIRQ",
        ];
        let per_cpu = [[0, 0], [22, 13], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [54, 64], [0, 0], [16, 18]];
        let mut samples = vec![];
        for (vec, counts) in names.iter().zip(per_cpu) {
            for (cpu, c) in counts.iter().enumerate() {
                samples.push(Sample { labels: vec![vec.to_string(), cpu.to_string()], value: *c as f64 });
            }
        }
        let m = Metric {
            config: "percpu-softirq".into(),
            name: "softirqs_total".into(),
            help: "Total number of softirq calls per cpu".into(),
            label_names: vec!["vec".into(), "cpu".into()],
            values: MetricValues::Counter(samples.into()),
        };
        let out = render(&snapshot(vec![m]), &opts());
        let lines = family_lines(&out, "ebpf_exporter_softirqs_total");
        assert_eq!(lines.len(), 22);
        assert_eq!(
            lines[..6],
            [
                "# HELP ebpf_exporter_softirqs_total Total number of softirq calls per cpu",
                "# TYPE ebpf_exporter_softirqs_total counter",
                "ebpf_exporter_softirqs_total{cpu=\"0\",vec=\"BLOCK_SOFTIRQ\"} 0",
                "ebpf_exporter_softirqs_total{cpu=\"0\",vec=\"HI_SOFTIRQ\"} 0",
                "ebpf_exporter_softirqs_total{cpu=\"0\",vec=\"HRTIMER_SOFTIRQ\"} 0",
                "ebpf_exporter_softirqs_total{cpu=\"0\",vec=\"IRQ_POLL_SOFTIRQ\"} 0",
            ]
        );
        assert_eq!(
            lines[8..12],
            [
                "ebpf_exporter_softirqs_total{cpu=\"0\",vec=\"RCU_SOFTIRQ\"} 16",
                "ebpf_exporter_softirqs_total{cpu=\"0\",vec=\"SCHED_SOFTIRQ\"} 54",
                "ebpf_exporter_softirqs_total{cpu=\"0\",vec=\"TASKLET_SOFTIRQ\"} 0",
                "ebpf_exporter_softirqs_total{cpu=\"0\",vec=\"TIMER_SOFTIRQ\"} 22",
            ]
        );
        assert_eq!(lines[21], "ebpf_exporter_softirqs_total{cpu=\"1\",vec=\"TIMER_SOFTIRQ\"} 13");
    }

    #[test]
    fn syscalls_spec_17_8() {
        let m = counter(
            "syscalls",
            "syscalls_total",
            &["syscall"],
            &[(&["write"], 12.0), (&["read"], 1234567.0), (&["unknown_syscall:1000"], 1.0), (&["getpid"], 100003.0)],
        );
        let mut m = m;
        m.help = "Total number of executed syscalls by name".into();
        let out = render(&snapshot(vec![m]), &opts());
        let want = "\
# HELP ebpf_exporter_syscalls_total Total number of executed syscalls by name
# TYPE ebpf_exporter_syscalls_total counter
ebpf_exporter_syscalls_total{syscall=\"getpid\"} 100003
ebpf_exporter_syscalls_total{syscall=\"read\"} 1.234567e+06
ebpf_exporter_syscalls_total{syscall=\"unknown_syscall:1000\"} 1
ebpf_exporter_syscalls_total{syscall=\"write\"} 12
";
        assert!(out.contains(want), "{out}");
    }

    #[test]
    fn escaping_spec_17_13() {
        let mut m = counter(
            "stacks",
            "stacks_total",
            &["kstack"],
            &[(&["a_func\nb_func\n??"], 3.0), (&["commit_timeout\t[jbd2] \"q\" \\"], 1.0)],
        );
        m.help = "line1\nline2 \\ back".into();
        let out = render(&snapshot(vec![m]), &opts());
        assert!(out.contains("# HELP ebpf_exporter_stacks_total line1\\nline2 \\\\ back\n"));
        assert!(out.contains("ebpf_exporter_stacks_total{kstack=\"a_func\\nb_func\\n??\"} 3\n"));
        assert!(out.contains("ebpf_exporter_stacks_total{kstack=\"commit_timeout\t[jbd2] \\\"q\\\" \\\\\"} 1\n"));
    }

    #[test]
    fn no_labels_no_braces_and_empty_family_absent() {
        let a = counter("a", "softirq_raised_total", &[], &[(&[], 1234.0)]);
        let b = counter("a", "empty_total", &["x"], &[]);
        let out = render(&snapshot(vec![a, b]), &opts());
        assert!(out.contains("\nebpf_exporter_softirq_raised_total 1234\n"));
        assert!(!out.contains("empty_total"));
        assert!(!out.contains("decoder_errors_total"));
    }

    #[test]
    fn families_merged_across_configs_and_sorted() {
        let a = counter("one", "zz_total", &["k"], &[(&["b"], 1.0)]);
        let b = counter("one", "aa_total", &["k"], &[(&["x"], 1.0)]);
        let c = counter("two", "zz_total", &["k"], &[(&["a"], 2.0), (&["b"], 9.0)]);
        let out = render(&snapshot(vec![a, b, c]), &opts());
        let zz = family_lines(&out, "ebpf_exporter_zz_total");
        assert_eq!(
            zz,
            [
                "# HELP ebpf_exporter_zz_total zz_total help",
                "# TYPE ebpf_exporter_zz_total counter",
                "ebpf_exporter_zz_total{k=\"a\"} 2",
                // duplicate series: the first in config order is kept
                "ebpf_exporter_zz_total{k=\"b\"} 1",
            ]
        );
        let aa = out.find("# HELP ebpf_exporter_aa_total").unwrap_or(usize::MAX);
        let zz = out.find("# HELP ebpf_exporter_zz_total").unwrap_or(0);
        assert!(aa < zz);
        assert_eq!(out.matches("# TYPE ebpf_exporter_zz_total").count(), 1);
    }

    #[test]
    fn one_unsorted_metric_is_sorted_and_deduplicated() {
        // A snapshot built by hand need not be in order: the renderer sorts it (label-name
        // order: `a` before `b`) and keeps the first of two equal label sets.
        let m = counter(
            "one",
            "m_total",
            &["b", "a"],
            &[(&["1", "y"], 1.0), (&["2", "x"], 2.0), (&["1", "x"], 3.0), (&["2", "x"], 4.0)],
        );
        let out = render(&snapshot(vec![m]), &opts());
        assert_eq!(
            family_lines(&out, "ebpf_exporter_m_total")[2..],
            [
                "ebpf_exporter_m_total{a=\"x\",b=\"1\"} 3",
                "ebpf_exporter_m_total{a=\"x\",b=\"2\"} 2",
                "ebpf_exporter_m_total{a=\"y\",b=\"1\"} 1",
            ]
        );
    }

    #[test]
    fn merged_families_order_fewer_labels_first() {
        let a = counter("one", "m_total", &["b"], &[(&["1"], 1.0)]);
        let b = counter("two", "m_total", &["a", "c"], &[(&["0", "0"], 2.0)]);
        let c = counter("three", "m_total", &[], &[(&[], 3.0)]);
        let out = render(&snapshot(vec![a, b, c]), &opts());
        assert_eq!(
            family_lines(&out, "ebpf_exporter_m_total")[2..],
            ["ebpf_exporter_m_total 3", "ebpf_exporter_m_total{b=\"1\"} 1", "ebpf_exporter_m_total{a=\"0\",c=\"0\"} 2",]
        );
    }

    #[test]
    fn conflicting_type_is_dropped() {
        let a = counter("one", "x", &[], &[(&[], 1.0)]);
        let mut b = counter("two", "x", &[], &[(&[], 2.0)]);
        b.values = MetricValues::Gauge(vec![Sample { labels: vec![], value: 2.0 }].into());
        let out = render(&snapshot(vec![a, b]), &opts());
        assert_eq!(family_lines(&out, "ebpf_exporter_x").len(), 3);
        assert!(out.contains("# TYPE ebpf_exporter_x counter\nebpf_exporter_x 1\n"));
    }

    #[test]
    fn fixed_unsorted_keys_q7() {
        // bucket_keys [4, 1, 2], raw counts 5, 7, 9, no sum key
        let h = Histogram {
            bucket_type: BucketType::Fixed,
            multiplier: 1.0,
            series: vec![HistogramSeries {
                labels: vec![],
                buckets: vec![
                    Bucket { le: 4.0, cumulative: 5 },
                    Bucket { le: 1.0, cumulative: 12 },
                    Bucket { le: 2.0, cumulative: 21 },
                ],
                count: 21,
                sum: None,
            }],
        };
        let m = Metric {
            config: "c".into(),
            name: "h".into(),
            help: "h help".into(),
            label_names: vec![],
            values: MetricValues::Histogram(h),
        };
        let out = render(&snapshot(vec![m]), &opts());
        let want = "\
# HELP ebpf_exporter_h h help
# TYPE ebpf_exporter_h histogram
ebpf_exporter_h_bucket{le=\"1\"} 12
ebpf_exporter_h_bucket{le=\"2\"} 21
ebpf_exporter_h_bucket{le=\"4\"} 5
ebpf_exporter_h_bucket{le=\"+Inf\"} 21
ebpf_exporter_h_sum 0
ebpf_exporter_h_count 21
";
        assert!(out.contains(want), "{out}");
    }

    /// Far more than one flush worth of samples, plus a merged family (the sorting path).
    fn big_snapshot() -> Snapshot {
        let values: Vec<String> = (0..20_000).map(|i| format!("v{i:05}")).collect();
        let rows: Vec<[&str; 1]> = values.iter().map(|v| [v.as_str()]).collect();
        let samples: Vec<(&[&str], f64)> = rows.iter().enumerate().map(|(i, r)| (&r[..], i as f64)).collect();
        let big = counter("one", "big_total", &["k"], &samples);
        let other = counter("two", "big_total", &["k"], &[(&["a"], 1.0)]);
        snapshot(vec![big, other, counter("one", "small_total", &[], &[(&[], 2.0)])])
    }

    #[test]
    fn streamed_text_is_the_same_text() {
        let snap = big_snapshot();
        let mut streamed = Vec::new();
        render_to(&snap, &opts(), &mut streamed).expect("writes");
        let whole = render(&snap, &opts());
        assert!(whole.len() > 10 * FLUSH_AT);
        assert_eq!(String::from_utf8(streamed).expect("utf-8"), whole);
    }

    #[test]
    fn pieces_are_the_same_text_handed_over_whole() {
        let snap = big_snapshot();
        let whole = render(&snap, &opts());
        for size in [1, 1000, 64 * 1024, whole.len() + 1] {
            let mut pieces: Vec<String> = Vec::new();
            render_pieces(&snap, &opts(), size, &mut |p| {
                pieces.push(p);
                Ok(())
            })
            .expect("renders");
            assert_eq!(pieces.concat(), whole, "size {size}");
            let (last, rest) = pieces.split_last().expect("one piece at least");
            assert!(!last.is_empty() && rest.iter().all(|p| p.len() >= size), "size {size}");
            assert!(rest.iter().all(|p| p.ends_with('\n')), "a piece ends mid-line (size {size})");
        }
        // An error from the taker stops the rendering.
        let mut n = 0;
        let err = render_pieces(&snap, &opts(), 1000, &mut |_| {
            n += 1;
            if n == 3 {
                return Err(std::io::Error::other("gone"));
            }
            Ok(())
        })
        .expect_err("fails");
        assert_eq!((err.to_string(), n), ("gone".to_string(), 3));
    }

    #[test]
    fn a_failing_sink_stops_the_render_with_its_error() {
        struct Full;
        impl std::io::Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let snap = snapshot(vec![counter("one", "x_total", &[], &[(&[], 1.0)])]);
        let err = render_to(&snap, &opts(), &mut Full).expect_err("fails");
        assert_eq!(err.to_string(), "full");
    }

    #[test]
    fn window_and_decoder_errors() {
        let mut s = snapshot(vec![]);
        s.decoder_errors = vec![("b".into(), 0), ("a".into(), 2)];
        let out = render(&s, &Options::default());
        let want = "\
# HELP ebpfx_decoder_errors_total How many times decoders encountered errors
# TYPE ebpfx_decoder_errors_total counter
ebpfx_decoder_errors_total{config=\"a\"} 2
ebpfx_decoder_errors_total{config=\"b\"} 0
";
        assert!(out.starts_with(want), "{out}");
        // One series per config: the files of several one-shot runs in one textfile directory
        // never hold the same window series twice.
        assert!(
            out.contains(
                "\nebpfx_window_duration_seconds{config=\"a\"} 3\nebpfx_window_duration_seconds{config=\"b\"} 3\n"
            ),
            "{out}"
        );
        assert!(out.contains("\nebpfx_window_end_time_seconds{config=\"a\"} 103\n"), "{out}");
        assert!(out.ends_with('\n'));
    }
}
