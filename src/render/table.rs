//! Tables (comfy-table, `ASCII_MARKDOWN` preset: plain ASCII borders that also paste into an
//! issue as a Markdown table; no colours, no dependence on the terminal width).
//!
//! * Each metric gets a title line `name: help` and one table.
//! * Counters and gauges: one column per label (config order) and `value`; rows sorted by value,
//!   largest first, ties by label values.
//! * Histograms: one row per label set with `count`, `p50`, `p90`, `p99` and, when the map had a
//!   sum, `mean` and `sum`; rows sorted by count, largest first. A quantile is only known to the
//!   bucket that holds it, so it is printed bucket-bounded, in the metric's unit: `≤ 4 KiB`
//!   (the upper bound of that bucket), the value itself when the bucket holds one value only
//!   (an `exp2zero` zero bucket, the exp2 bucket (1, 2] of integers), `> 4 KiB` when it lies
//!   above the highest bucket. Interpolating inside the bucket as Prometheus'
//!   `histogram_quantile` does made all-4096-byte writes look like 3 KiB and 0-byte ones like
//!   0.5 B. A note under the table says so.
//! * Stack metrics (counters with `kstack`/`ustack` labels, see `stacks`): the top
//!   [`TOP_FUNCTIONS`] functions by samples with the function as leaf (`self`), with the
//!   samples that have it anywhere on the stack (`total`), both also as a share of all samples.
//! * A last table lists configs with decoder errors, if any, then a note per full map.
use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::units::{Measure, Quantity};
use super::Options;
use super::{cmp_label_values, display_label, one_line, plain_number, sorted_buckets, stacks};
use crate::model::{
    Bucket, BucketType, Histogram, HistogramSeries, LabelValues, Metric, MetricValues, SampleRef, Samples, Snapshot,
};

pub(crate) fn render(snapshot: &Snapshot, opts: &Options) -> String {
    let mut parts: Vec<String> = snapshot.metrics.iter().map(|m| render_metric_in(m, opts)).collect();
    let errors: Vec<&(String, u64)> = snapshot.decoder_errors.iter().filter(|(_, n)| *n > 0).collect();
    if !errors.is_empty() {
        let mut table = new_table(vec!["config".to_string(), "errors".to_string()], 1);
        for (config, n) in errors {
            table.add_row(vec![config.clone(), n.to_string()]);
        }
        parts.push(format!("decoder errors (metrics dropped):\n{table}\n"));
    }
    for full in snapshot.full_maps() {
        parts.push(format!("note: {}\n", full.note()));
    }
    parts.join("\n")
}

/// A table with the house style; columns from `numeric_from` on are right-aligned.
fn new_table(header: Vec<String>, numeric_from: usize) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .force_no_tty()
        .set_header(header);
    for column in table.column_iter_mut().skip(numeric_from) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    table
}

#[cfg(test)]
fn render_metric(metric: &Metric) -> String {
    render_metric_in(metric, &Options::default())
}

fn render_metric_in(metric: &Metric, opts: &Options) -> String {
    let title = format!("{}: {}\n", metric.name, one_line(&metric.help));
    let table = match &metric.values {
        // Stacks (see `stacks`): the top functions, not one row per stack.
        MetricValues::Counter(_) if stacks::is_stack_metric(metric) => return top_functions(metric, &title),
        MetricValues::Counter(samples) | MetricValues::Gauge(samples) => values_table(metric, samples, opts.top),
        MetricValues::Histogram(h) => {
            return match histogram_table(metric, h, opts) {
                Some((table, cut)) => {
                    format!("{title}{table}\n{}{}\n", left_out(cut, opts.top, "count"), quantile_note(h.bucket_type))
                }
                None => format!("{title}(no data)\n"),
            }
        }
    };
    match table {
        Some((table, cut)) => format!("{title}{table}\n{}", left_out(cut, opts.top, "value")),
        None => format!("{title}(no data)\n"),
    }
}

/// Rows left out by `--top`: how many, and what they add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Cut {
    rows: usize,
    total: f64,
}

/// The line under a table cut by `--top`, or nothing.
fn left_out(cut: Cut, top: Option<usize>, what: &str) -> String {
    match top {
        Some(n) if cut.rows > 0 => {
            let noun = if cut.rows == 1 { "row" } else { "rows" };
            format!("{} more {noun} left out by --top {n} ({what} {})\n", cut.rows, plain_number(cut.total))
        }
        _ => String::new(),
    }
}

/// The line under a histogram table that says what its quantiles are.
fn quantile_note(bucket_type: BucketType) -> &'static str {
    match bucket_type {
        BucketType::Exp2 | BucketType::Exp2Zero => {
            "p50/p90/p99 are bucket-bounded: \"≤ x\" is the top of the power-of-2 bucket holding the quantile"
        }
        BucketType::Linear | BucketType::Fixed => {
            "p50/p90/p99 are bucket-bounded: \"≤ x\" is the top of the bucket holding the quantile"
        }
    }
}

/// Rows of the top-functions view.
pub(crate) const TOP_FUNCTIONS: usize = 20;

fn top_functions(metric: &Metric, title: &str) -> String {
    let counts = stacks::function_counts(metric);
    if counts.samples == 0 {
        return format!("{title}(no data)\n");
    }
    let share = |n: u64| format!("{:.1}%", n as f64 * 100.0 / counts.samples as f64);
    let mut table = new_table(["function", "self", "self %", "total", "total %"].map(String::from).to_vec(), 1);
    for (name, own, total) in counts.functions.iter().take(TOP_FUNCTIONS) {
        table.add_row(vec![shorten(name), own.to_string(), share(*own), total.to_string(), share(*total)]);
    }
    let shown = counts.functions.len().min(TOP_FUNCTIONS);
    format!(
        "{title}{} samples; top {shown} of {} functions by self samples\n{table}\n",
        counts.samples,
        counts.functions.len()
    )
}

/// Longest function name shown whole in the top-functions view (C++ and Rust names get long).
const FUNCTION_WIDTH: usize = 80;

fn shorten(name: &str) -> String {
    if name.chars().count() <= FUNCTION_WIDTH {
        return name.to_string();
    }
    let mut short: String = name.chars().take(FUNCTION_WIDTH - 3).collect();
    short.push_str("...");
    short
}

fn label_cells<V: LabelValues + ?Sized>(labels: &V) -> Vec<String> {
    labels.label_values().map(|v| display_label(v).into_owned()).collect()
}

fn values_table(metric: &Metric, samples: &Samples, top: Option<usize>) -> Option<(Table, Cut)> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted: Vec<SampleRef<'_>> = samples.iter().collect();
    sorted.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| cmp_label_values(&a.labels, &b.labels)));
    let mut header = metric.label_names.clone();
    header.push("value".to_string());
    let mut table = new_table(header, metric.label_names.len());
    let shown = top.unwrap_or(usize::MAX).min(sorted.len());
    let cut = Cut { rows: sorted.len() - shown, total: sorted[shown..].iter().map(|s| s.value).sum() };
    for s in &sorted[..shown] {
        let mut row = label_cells(&s.labels);
        row.push(plain_number(s.value));
        table.add_row(row);
    }
    Some((table, cut))
}

fn histogram_table(metric: &Metric, h: &Histogram, opts: &Options) -> Option<(Table, Cut)> {
    if h.series.is_empty() {
        return None;
    }
    let quantity = Measure { quantity: Quantity::of(&metric.name), time: opts.unit };
    let with_sum = h.series.iter().any(|s| s.sum.is_some());
    let mut sorted: Vec<&HistogramSeries> = h.series.iter().collect();
    sorted.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| cmp_label_values(&a.labels, &b.labels)));

    let mut header = metric.label_names.clone();
    header.extend(["count", "p50", "p90", "p99"].map(String::from));
    if with_sum {
        header.extend(["mean", "sum"].map(String::from));
    }
    let mut table = new_table(header, metric.label_names.len());
    let shown = opts.top.unwrap_or(usize::MAX).min(sorted.len());
    let cut = Cut { rows: sorted.len() - shown, total: sorted[shown..].iter().map(|s| s.count as f64).sum() };
    for s in sorted.into_iter().take(shown) {
        let buckets = sorted_buckets(s);
        let mut row = label_cells(&s.labels);
        row.push(s.count.to_string());
        for q in [0.5, 0.9, 0.99] {
            row.push(quantile(q, &buckets, s.count, h).show(quantity));
        }
        if with_sum {
            match s.sum {
                Some(sum) if s.count > 0 => {
                    row.push(quantity.show(sum / s.count as f64));
                    row.push(quantity.show(sum));
                }
                Some(sum) => {
                    row.push("-".to_string());
                    row.push(quantity.show(sum));
                }
                None => row.extend(["-".to_string(), "-".to_string()]),
            }
        }
        table.add_row(row);
    }
    Some((table, cut))
}

/// Where a quantile lies, as far as the buckets tell.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Estimate {
    /// No observations.
    Unknown,
    /// In a bucket that holds this one value.
    Exactly(f64),
    /// In the bucket with this upper bound.
    AtMost(f64),
    /// Above the highest finite bucket, whose bound this is.
    Above(f64),
}

impl Estimate {
    fn show(self, measure: impl Into<Measure>) -> String {
        let m: Measure = measure.into();
        match self {
            Estimate::Unknown => "-".to_string(),
            Estimate::Exactly(v) => m.show(v),
            Estimate::AtMost(v) => format!("≤ {}", m.show(v)),
            Estimate::Above(v) => format!("> {}", m.show(v)),
        }
    }
}

/// The bucket holding the `q` quantile of finite buckets sorted by `le` plus an implicit
/// `+Inf` bucket holding `count` (the rank rule of Prometheus' `histogram_quantile`: the first
/// bucket whose cumulative count reaches `q × total`).
fn quantile(q: f64, buckets: &[Bucket], count: u64, h: &Histogram) -> Estimate {
    // Cumulative counts forced monotonic (unsorted `fixed` keys can break that), as Prometheus
    // does.
    let mut running = 0u64;
    let mut cumulative: Vec<u64> = Vec::with_capacity(buckets.len());
    for b in buckets {
        running = running.max(b.cumulative);
        cumulative.push(running);
    }
    let total = running.max(count);
    if total == 0 {
        return Estimate::Unknown;
    }
    let rank = q * total as f64;
    match cumulative.iter().position(|&c| c as f64 >= rank) {
        Some(i) if holds_one_value(h, buckets[i].le) => Estimate::Exactly(buckets[i].le),
        Some(i) => Estimate::AtMost(buckets[i].le),
        None => buckets.last().map_or(Estimate::Unknown, |b| Estimate::Above(b.le)),
    }
}

/// Whether the exp2/exp2zero bucket with upper bound `le` can hold one integer raw value only:
/// exp2's (1, 2], exp2zero's 0, (0, 1] and (1, 2]. BPF programs count integers.
fn holds_one_value(h: &Histogram, le: f64) -> bool {
    let m = if h.multiplier != 0.0 { h.multiplier } else { 1.0 };
    let raw = le / m;
    let r = raw.round();
    if (raw - r).abs() > 1e-9 * r.abs().max(1.0) {
        return false;
    }
    match h.bucket_type {
        BucketType::Exp2 => r == 2.0,
        BucketType::Exp2Zero => (0.0..=2.0).contains(&r),
        BucketType::Linear | BucketType::Fixed => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sample;

    fn b(le: f64, cumulative: u64) -> Bucket {
        Bucket { le, cumulative }
    }

    fn hist(bucket_type: BucketType, multiplier: f64) -> Histogram {
        Histogram { bucket_type, multiplier, series: vec![] }
    }

    /// Cumulative exp2 buckets 2^0..=2^max (× m) from (index, count) pairs.
    fn exp2(raw: &[(i32, u64)], max: i32, m: f64) -> Vec<Bucket> {
        let mut cumulative = 0;
        (0..=max)
            .map(|i| {
                cumulative += raw.iter().filter(|r| r.0 == i).map(|r| r.1).sum::<u64>();
                b(2f64.powi(i) * m, cumulative)
            })
            .collect()
    }

    #[test]
    fn quantile_is_the_bucket_holding_the_rank() {
        let fixed = hist(BucketType::Fixed, 1.0);
        // 100 observations: 50 in (0,1], 50 in (1,2]
        let buckets = [b(1.0, 50), b(2.0, 100)];
        assert_eq!(quantile(0.5, &buckets, 100, &fixed), Estimate::AtMost(1.0));
        assert_eq!(quantile(0.9, &buckets, 100, &fixed), Estimate::AtMost(2.0));
        assert_eq!(quantile(0.25, &buckets, 100, &fixed), Estimate::AtMost(1.0));
        // rank in +Inf: above the highest finite bound
        let buckets = [b(1.0, 50), b(2.0, 60)];
        assert_eq!(quantile(0.9, &buckets, 100, &fixed), Estimate::Above(2.0));
        // empty
        assert_eq!(quantile(0.5, &[b(1.0, 0)], 0, &fixed), Estimate::Unknown);
        assert_eq!(quantile(0.5, &[], 5, &fixed), Estimate::Unknown);
        // unsorted `fixed` cumulative counts are forced monotonic
        assert_eq!(quantile(0.6, &[b(1.0, 10), b(2.0, 4), b(4.0, 20)], 20, &fixed), Estimate::AtMost(4.0));
    }

    #[test]
    fn exp2_quantiles_stay_in_the_observed_bucket() {
        // Issue 9 item 10: all-4096-byte writes showed p50 "3 KiB" (interpolated in (2048, 4096]).
        let bytes = hist(BucketType::Exp2, 1.0);
        let all_4k = exp2(&[(12, 1000)], 20, 1.0);
        for q in [0.5, 0.9, 0.99] {
            assert_eq!(quantile(q, &all_4k, 1000, &bytes).show(Quantity::Bytes), "≤ 4 KiB");
        }
        // 0-byte flushes land in exp2 bucket 0, which holds 0 and 1: "≤ 1 B", not "0.5 B".
        let zeros = exp2(&[(0, 30)], 20, 1.0);
        assert_eq!(quantile(0.5, &zeros, 30, &bytes).show(Quantity::Bytes), "≤ 1 B");
        // exp2's (1, 2] holds only 2.
        let twos = exp2(&[(1, 5)], 20, 1.0);
        assert_eq!(quantile(0.5, &twos, 5, &bytes).show(Quantity::Bytes), "2 B");
        // exp2zero bucket 0 holds exactly 0.
        let ez = hist(BucketType::Exp2Zero, 1.0);
        let zero_bucket = [b(0.0, 7), b(1.0, 7), b(2.0, 7), b(4.0, 9)];
        assert_eq!(quantile(0.5, &zero_bucket, 9, &ez).show(Quantity::Bytes), "0 B");
        assert_eq!(quantile(0.99, &zero_bucket, 9, &ez).show(Quantity::Bytes), "≤ 4 B");
        // Beyond the last bucket.
        assert_eq!(quantile(0.99, &all_4k[..5], 1000, &bytes).show(Quantity::Bytes), "> 16 B");
        assert_eq!(Estimate::Unknown.show(Quantity::Bytes), "-");
    }

    #[test]
    fn exp2_latency_quantiles_with_multiplier() {
        // exp2 write group (µs): 52 in (8,16], 428 in (16,32], ...
        let m = 0.000001;
        let us = hist(BucketType::Exp2, m);
        let buckets = exp2(&[(4, 52), (5, 428), (6, 9), (7, 8), (8, 3), (10, 1)], 10, m);
        assert_eq!(quantile(0.5, &buckets, 501, &us).show(Quantity::Seconds), "≤ 32µs");
        assert_eq!(quantile(0.99, &buckets, 501, &us).show(Quantity::Seconds), "≤ 128µs");
        // (1, 2] µs holds only 2 µs, also in seconds.
        let two = exp2(&[(1, 3)], 10, m);
        assert_eq!(quantile(0.5, &two, 3, &us).show(Quantity::Seconds), "2µs");
    }

    #[test]
    fn top_keeps_the_largest_rows_and_says_what_was_left_out() {
        let m = Metric {
            config: "c".into(),
            name: "calls_total".into(),
            help: "Calls".into(),
            label_names: vec!["name".into()],
            values: MetricValues::Counter(
                [("a", 5.0), ("b", 50.0), ("c", 1.0), ("d", 20.0)]
                    .iter()
                    .map(|(l, v)| Sample { labels: vec![l.to_string()], value: *v })
                    .collect(),
            ),
        };
        let out = render_metric_in(&m, &Options { top: Some(2), ..Options::default() });
        let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| ") && !l.contains("value")).collect();
        assert_eq!(rows.len(), 2, "{out}");
        assert!(rows[0].contains("| b ") && rows[1].contains("| d "), "{out}");
        assert!(out.ends_with("2 more rows left out by --top 2 (value 6)\n"), "{out}");
        // a top above the row count cuts nothing and says nothing
        let all = render_metric_in(&m, &Options { top: Some(9), ..Options::default() });
        assert_eq!(all, render_metric(&m));
    }

    #[test]
    fn counter_table_sorted_by_value() {
        let m = Metric {
            config: "c".into(),
            name: "syscalls_total".into(),
            help: "Syscalls".into(),
            label_names: vec!["syscall".into()],
            values: MetricValues::Counter(
                vec![
                    Sample { labels: vec!["b".into()], value: 2.0 },
                    Sample { labels: vec!["a".into()], value: 2.0 },
                    Sample { labels: vec!["c".into()], value: 1234567.0 },
                ]
                .into(),
            ),
        };
        let want = "\
syscalls_total: Syscalls
| syscall |   value |
|---------|---------|
| c       | 1234567 |
| a       |       2 |
| b       |       2 |
";
        assert_eq!(render_metric(&m), want);
    }

    #[test]
    fn stack_metrics_show_top_functions() {
        let want = "\
cpu_samples_total: On-CPU samples
42 samples; top 8 of 8 functions by self samples
| function              | self | self % | total | total % |
|-----------------------|------|--------|-------|---------|
| inner                 |   35 |  83.3% |    35 |   83.3% |
| do_syscall_64         |    4 |   9.5% |     4 |    9.5% |
| commit_timeout [jbd2] |    1 |   2.4% |     1 |    2.4% |
| main                  |    0 |   0.0% |    39 |   92.9% |
| outer                 |    0 |   0.0% |    39 |   92.9% |
| entry_SYSCALL_64      |    0 |   0.0% |     4 |    9.5% |
| write:x               |    0 |   0.0% |     4 |    9.5% |
| worker_thread         |    0 |   0.0% |     1 |    2.4% |
";
        assert_eq!(render_metric(&stacks::profile_metric()), want);
        assert_eq!(shorten(&"x".repeat(100)).len(), FUNCTION_WIDTH);
    }

    #[test]
    fn histogram_without_series_or_sum() {
        let mut m = Metric {
            config: "c".into(),
            name: "h_bytes".into(),
            help: "H".into(),
            label_names: vec![],
            values: MetricValues::Histogram(Histogram {
                bucket_type: BucketType::Fixed,
                multiplier: 1.0,
                series: vec![],
            }),
        };
        assert_eq!(render_metric(&m), "h_bytes: H\n(no data)\n");
        m.values = MetricValues::Histogram(Histogram {
            bucket_type: BucketType::Fixed,
            multiplier: 1.0,
            series: vec![HistogramSeries {
                labels: vec![],
                buckets: vec![b(1024.0, 1), b(4096.0, 2)],
                count: 2,
                sum: None,
            }],
        });
        let out = render_metric(&m);
        let want = "\
h_bytes: H
| count |     p50 |     p90 |     p99 |
|-------|---------|---------|---------|
|     2 | ≤ 1 KiB | ≤ 4 KiB | ≤ 4 KiB |
p50/p90/p99 are bucket-bounded: \"≤ x\" is the top of the bucket holding the quantile
";
        assert_eq!(out, want);
    }
}
