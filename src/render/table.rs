//! Tables (comfy-table, `ASCII_MARKDOWN` preset: plain ASCII borders that also paste into an
//! issue as a Markdown table; no colours, no dependence on the terminal width).
//!
//! * Each metric gets a title line `name: help` and one table.
//! * Counters and gauges: one column per label (config order) and `value`; rows sorted by value,
//!   largest first, ties by label values.
//! * Histograms: one row per label set with `count`, `p50`, `p90`, `p99` and, when the map had a
//!   sum, `mean` and `sum`; rows sorted by count, largest first. Quantiles are estimated like
//!   Prometheus' `histogram_quantile` (linear interpolation inside the bucket, the lowest
//!   bucket starting at 0, the top finite bound when the rank falls in `+Inf`) and printed
//!   for people in the metric's unit (`23.5µs`, `4 KiB`).
//! * Stack metrics (counters with `kstack`/`ustack` labels, see `stacks`): the top
//!   [`TOP_FUNCTIONS`] functions by samples with the function as leaf (`self`), with the
//!   samples that have it anywhere on the stack (`total`), both also as a share of all samples.
//! * A last table lists configs with decoder errors, if any, then a note per full map.
use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::units::{human, Quantity};
use super::{cmp_label_values, display_label, one_line, plain_number, sorted_buckets, stacks};
use crate::model::{
    Bucket, Histogram, HistogramSeries, LabelValues, Metric, MetricValues, SampleRef, Samples, Snapshot,
};

pub(crate) fn render(snapshot: &Snapshot) -> String {
    let mut parts: Vec<String> = snapshot.metrics.iter().map(render_metric).collect();
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

fn render_metric(metric: &Metric) -> String {
    let title = format!("{}: {}\n", metric.name, one_line(&metric.help));
    let table = match &metric.values {
        // Stacks (see `stacks`): the top functions, not one row per stack.
        MetricValues::Counter(_) if stacks::is_stack_metric(metric) => return top_functions(metric, &title),
        MetricValues::Counter(samples) | MetricValues::Gauge(samples) => values_table(metric, samples),
        MetricValues::Histogram(h) => histogram_table(metric, h),
    };
    match table {
        Some(table) => format!("{title}{table}\n"),
        None => format!("{title}(no data)\n"),
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

fn values_table(metric: &Metric, samples: &Samples) -> Option<Table> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted: Vec<SampleRef<'_>> = samples.iter().collect();
    sorted.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| cmp_label_values(&a.labels, &b.labels)));
    let mut header = metric.label_names.clone();
    header.push("value".to_string());
    let mut table = new_table(header, metric.label_names.len());
    for s in sorted {
        let mut row = label_cells(&s.labels);
        row.push(plain_number(s.value));
        table.add_row(row);
    }
    Some(table)
}

fn histogram_table(metric: &Metric, h: &Histogram) -> Option<Table> {
    if h.series.is_empty() {
        return None;
    }
    let quantity = Quantity::of(&metric.name);
    let with_sum = h.series.iter().any(|s| s.sum.is_some());
    let mut sorted: Vec<&HistogramSeries> = h.series.iter().collect();
    sorted.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| cmp_label_values(&a.labels, &b.labels)));

    let mut header = metric.label_names.clone();
    header.extend(["count", "p50", "p90", "p99"].map(String::from));
    if with_sum {
        header.extend(["mean", "sum"].map(String::from));
    }
    let mut table = new_table(header, metric.label_names.len());
    for s in sorted {
        let buckets = sorted_buckets(s);
        let mut row = label_cells(&s.labels);
        row.push(s.count.to_string());
        for q in [0.5, 0.9, 0.99] {
            row.push(human(quantity, quantile(q, &buckets, s.count)));
        }
        if with_sum {
            match s.sum {
                Some(sum) if s.count > 0 => {
                    row.push(human(quantity, sum / s.count as f64));
                    row.push(human(quantity, sum));
                }
                Some(sum) => {
                    row.push("-".to_string());
                    row.push(human(quantity, sum));
                }
                None => row.extend(["-".to_string(), "-".to_string()]),
            }
        }
        table.add_row(row);
    }
    Some(table)
}

/// The `q` quantile estimated like Prometheus' `histogram_quantile` from finite buckets sorted
/// by `le` plus an implicit `+Inf` bucket holding `count`. NaN when there are no observations.
fn quantile(q: f64, buckets: &[Bucket], count: u64) -> f64 {
    // Cumulative counts forced monotonic (unsorted `fixed` keys can break that), as Prometheus
    // does, with the `+Inf` bucket last.
    let mut bounds: Vec<(f64, f64)> = Vec::with_capacity(buckets.len() + 1);
    let mut running = 0u64;
    for b in buckets {
        running = running.max(b.cumulative);
        bounds.push((b.le, running as f64));
    }
    let total = running.max(count) as f64;
    bounds.push((f64::INFINITY, total));
    if total == 0.0 || bounds.len() < 2 {
        return f64::NAN;
    }
    let rank = q * total;
    let Some(b) = bounds.iter().position(|&(_, c)| c >= rank) else {
        return f64::NAN;
    };
    if b == bounds.len() - 1 {
        return bounds[b - 1].0;
    }
    let (end, cumulative) = bounds[b];
    if b == 0 && end <= 0.0 {
        return end;
    }
    let (start, below) = if b > 0 { bounds[b - 1] } else { (0.0, 0.0) };
    let in_bucket = cumulative - below;
    if in_bucket <= 0.0 {
        return end;
    }
    start + (end - start) * ((rank - below) / in_bucket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BucketType, Sample};

    fn approx(a: f64, b: f64) -> bool {
        a == b || (a - b).abs() <= 1e-12 * b.abs()
    }

    fn b(le: f64, cumulative: u64) -> Bucket {
        Bucket { le, cumulative }
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        // 100 observations: 50 in (0,1], 50 in (1,2]
        let buckets = [b(1.0, 50), b(2.0, 100)];
        assert!(approx(quantile(0.5, &buckets, 100), 1.0));
        assert!(approx(quantile(0.9, &buckets, 100), 1.8));
        assert!(approx(quantile(0.25, &buckets, 100), 0.5));
        // rank in +Inf: highest finite bound
        let buckets = [b(1.0, 50), b(2.0, 60)];
        assert!(approx(quantile(0.9, &buckets, 100), 2.0));
        // empty
        assert!(quantile(0.5, &[b(1.0, 0)], 0).is_nan());
        assert!(quantile(0.5, &[], 5).is_nan());
        // lowest bucket at 0
        assert!(approx(quantile(0.5, &[b(0.0, 10), b(1.0, 10)], 10), 0.0));
    }

    #[test]
    fn quantile_skips_empty_low_buckets() {
        // exp2 §17.1 write group (µs): 52 in (8,16], 428 in (16,32], ...
        let m = 0.000001;
        let cum = [0, 0, 0, 0, 52, 480, 489, 497, 500, 500, 501];
        let buckets: Vec<Bucket> = cum.iter().enumerate().map(|(i, &c)| b(2f64.powi(i as i32) * m, c)).collect();
        let p50 = quantile(0.5, &buckets, 501);
        // rank 250.5 lies in (16µs, 32µs]: 16 + 16 × (250.5 − 52) / 428
        assert!(approx(p50, (16.0 + 16.0 * (250.5 - 52.0) / 428.0) * m));
        assert_eq!(human(Quantity::Seconds, p50), "23.4µs");
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
        assert!(out.contains("| count |   p50 |     p90 |      p99 |"), "{out}");
        assert!(out.contains("|     2 | 1 KiB |"), "{out}");
    }
}
