//! Terminal histograms in the layout bcc and libbpf-tools users know (`print_log2_hist`):
//!
//! ```text
//! bio_latency_seconds: Block IO latency histogram
//!
//! device = vda, operation = write
//!      usecs               : count    distribution
//!          9 -> 16         : 52       |****                                    |
//!         17 -> 32         : 428      |****************************************|
//! count 501, sum 11249 usecs, avg 22.5 usecs
//! ```
//!
//! * One block per label set (sorted by label values), headed `name = value, ...` in config
//!   label order; no heading for a histogram without labels.
//! * Ranges are in the raw unit the BPF program counted in (`le / bucket_multiplier`, rounded),
//!   named from the metric name and multiplier (`usecs`, `nsecs`, `bytes`, `value`, ...).
//!   ebpf_exporter's `exp2` bucket k holds (2^(k-1), 2^k], printed `2^(k-1)+1 -> 2^k`, bucket 0
//!   `0 -> 1`; `exp2zero` bucket 0 holds exactly 0 and bucket k ≥ 1 holds (2^(k-2), 2^(k-1)];
//!   `linear` and `fixed` buckets run from the previous bound + 1 (0 for the first) to their own.
//! * Rows run from the first non-empty bucket to the last non-empty one (bcc starts at slot 0;
//!   ebpf_exporter's microsecond histograms would open with a run of empty sub-10µs rows).
//! * The bar is 40 characters, scaled to the largest row, as in bcc.
//! * Counters and gauges print `labels : value` lines, sorted by label values, values as plain
//!   integers when they are integers.
//! * Stack metrics (counters with `kstack`/`ustack` labels, see `stacks`) print their top
//!   [`TOP_STACKS`] stacks by samples: a `N samples (P%), comm C` line, then the frames one per
//!   line, leaf first, kernel frames, a `--` line, user frames. Samples that differ only in
//!   other labels (`pid`) are summed.
//! * Configs with decoder errors are listed on a last line, then a note per full map.
use std::fmt::Write as _;

use super::units::{amount, display_unit};
use super::Options;
use super::{cmp_label_values, display_label, one_line, plain_number, stacks};
use crate::model::{BucketType, Histogram, HistogramSeries, Metric, MetricValues, SampleRef, Samples, Snapshot};

const BAR_WIDTH: u64 = 40;

pub(crate) fn render(snapshot: &Snapshot, opts: &Options) -> String {
    let mut parts: Vec<String> = snapshot.metrics.iter().map(|m| render_metric_in(m, opts)).collect();
    let errors: Vec<String> =
        snapshot.decoder_errors.iter().filter(|(_, n)| *n > 0).map(|(config, n)| format!("{config}={n}")).collect();
    if !errors.is_empty() {
        parts.push(format!("decoder errors (metrics dropped): {}\n", errors.join(", ")));
    }
    for full in snapshot.full_maps() {
        parts.push(format!("note: {}\n", full.note()));
    }
    parts.join("\n")
}

#[cfg(test)]
fn render_metric(metric: &Metric) -> String {
    render_metric_in(metric, &Options::default())
}

fn render_metric_in(metric: &Metric, opts: &Options) -> String {
    let mut out = format!("{}: {}\n", metric.name, one_line(&metric.help));
    match &metric.values {
        MetricValues::Counter(_) if stacks::is_stack_metric(metric) => write_stacks(&mut out, metric),
        MetricValues::Counter(samples) | MetricValues::Gauge(samples) => {
            write_values(&mut out, &metric.label_names, samples, opts.top)
        }
        MetricValues::Histogram(h) => write_histogram(&mut out, metric, h, opts),
    }
    out
}

fn write_values(out: &mut String, label_names: &[String], samples: &Samples, top: Option<usize>) {
    if samples.is_empty() {
        out.push_str("  (no data)\n");
        return;
    }
    let mut sorted: Vec<SampleRef<'_>> = samples.iter().collect();
    let mut left_out = String::new();
    if let Some(n) = top.filter(|&n| n < sorted.len()) {
        // the N largest values, shown in label order
        sorted.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| cmp_label_values(&a.labels, &b.labels)));
        let rest: f64 = sorted[n..].iter().map(|s| s.value).sum();
        left_out = format!("  {} more left out by --top {n} (value {})\n", sorted.len() - n, plain_number(rest));
        sorted.truncate(n);
    }
    sorted.sort_by(|a, b| cmp_label_values(&a.labels, &b.labels));
    let rows: Vec<(String, String)> =
        sorted.iter().map(|s| (super::display_label_set(label_names, &s.labels), plain_number(s.value))).collect();
    let label_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let value_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (labels, value) in rows {
        if label_names.is_empty() {
            let _ = writeln!(out, "  {value}");
        } else {
            let _ = writeln!(out, "  {labels:<label_width$} : {value:>value_width$}");
        }
    }
    out.push_str(&left_out);
}

/// Stacks shown by the top-stacks view.
pub(crate) const TOP_STACKS: usize = 10;

/// The top stacks of a stack metric, frames one per line, leaf first, kernel frames then user
/// frames after a `--` line.
fn write_stacks(out: &mut String, metric: &Metric) {
    let counts = stacks::stack_counts(metric);
    if counts.samples == 0 {
        out.push_str("  (no data)\n");
        return;
    }
    let shown = counts.stacks.len().min(TOP_STACKS);
    let _ = writeln!(
        out,
        "{} samples in {} stacks; top {shown} by samples, leaf frame first (kernel, --, user)",
        counts.samples,
        counts.stacks.len()
    );
    for (stack, n) in counts.stacks.iter().take(TOP_STACKS) {
        let share = *n as f64 * 100.0 / counts.samples as f64;
        let noun = if *n == 1 { "sample" } else { "samples" };
        let _ = write!(out, "\n  {n} {noun} ({share:.1}%)");
        if !stack.comm.is_empty() {
            let _ = write!(out, ", comm {}", frame_text(&stack.comm));
        }
        out.push('\n');
        for f in &stack.kernel {
            let _ = writeln!(out, "    {}", frame_text(f));
        }
        if !stack.kernel.is_empty() && !stack.user.is_empty() {
            out.push_str("    --\n");
        }
        for f in &stack.user {
            let _ = writeln!(out, "    {}", frame_text(f));
        }
        if stack.kernel.is_empty() && stack.user.is_empty() {
            out.push_str("    (no frames)\n");
        }
    }
    if counts.stacks.len() > shown {
        let rest: u64 = counts.stacks.iter().skip(shown).map(|s| s.1).sum();
        let _ = writeln!(
            out,
            "\n  {} more stacks with {rest} samples: --format folded or flamegraph shows every stack",
            counts.stacks.len() - shown
        );
    }
}

/// A frame on one line: control characters (the TAB before a module name) become spaces.
fn frame_text(frame: &str) -> String {
    frame.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn write_histogram(out: &mut String, metric: &Metric, h: &Histogram, opts: &Options) {
    if h.series.is_empty() {
        out.push_str("  (no data)\n");
        return;
    }
    let unit = display_unit(&metric.name, h.multiplier, opts.unit);
    let mut sorted: Vec<&HistogramSeries> = h.series.iter().collect();
    let mut left_out = String::new();
    if let Some(n) = opts.top.filter(|&n| n < sorted.len()) {
        // the N label sets with the most observations, shown in label order
        sorted.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| cmp_label_values(&a.labels, &b.labels)));
        let rest: u64 = sorted[n..].iter().map(|s| s.count).sum();
        let sets = sorted.len() - n;
        let noun = if sets == 1 { "label set" } else { "label sets" };
        left_out = format!("\n{sets} more {noun} left out by --top {n} (count {rest})\n");
        sorted.truncate(n);
    }
    sorted.sort_by(|a, b| cmp_label_values(&a.labels, &b.labels));
    for series in sorted {
        out.push('\n');
        if !metric.label_names.is_empty() {
            let heading: Vec<String> = metric
                .label_names
                .iter()
                .zip(&series.labels)
                .map(|(n, v)| format!("{n} = {}", display_label(v)))
                .collect();
            out.push_str(&heading.join(", "));
            out.push('\n');
        }
        write_block(out, h, series, unit);
    }
    out.push_str(&left_out);
}

/// One displayed bucket: its raw range and its own (non-cumulative) count.
struct Row {
    lo: f64,
    hi: f64,
    count: u64,
}

/// Buckets with their own counts, sorted by bound. Counts are taken in the order the buckets
/// were rebuilt (config order for `fixed`), so unsorted `fixed` keys still get their own counts.
fn rows(h: &Histogram, series: &HistogramSeries) -> Vec<Row> {
    let m = if h.multiplier != 0.0 { h.multiplier } else { 1.0 };
    let mut pairs: Vec<(f64, u64)> = series
        .buckets
        .iter()
        .zip(series.counts())
        .filter(|(b, _)| b.le.is_finite())
        .map(|(b, c)| ((b.le / m).round(), c))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rows: Vec<Row> = Vec::with_capacity(pairs.len());
    let mut previous: Option<f64> = None;
    for (hi, count) in pairs {
        let lo = match h.bucket_type {
            BucketType::Exp2 if hi <= 1.0 => 0.0,
            BucketType::Exp2 => (hi / 2.0).floor() + 1.0,
            BucketType::Exp2Zero if hi <= 1.0 => hi,
            BucketType::Exp2Zero => (hi / 2.0).floor() + 1.0,
            BucketType::Linear | BucketType::Fixed => match previous {
                Some(p) => p + 1.0,
                None => hi.min(0.0),
            },
        };
        if previous == Some(hi) {
            // a repeated `fixed` key: the later one wins, as in the Prometheus output
            if let Some(last) = rows.last_mut() {
                last.count = count;
            }
            continue;
        }
        previous = Some(hi);
        rows.push(Row { lo, hi, count });
    }
    rows
}

/// A range bound in the shown unit: the raw integer, or scaled (`0.513`, `1048.576`).
fn bound(raw: f64, factor: f64) -> String {
    if factor == 1.0 {
        format!("{raw:.0}")
    } else {
        let v = super::units::denoise(raw * factor);
        format!("{v}")
    }
}

fn write_block(out: &mut String, h: &Histogram, series: &HistogramSeries, (unit, factor): (&str, f64)) {
    let all = rows(h, series);
    let first = all.iter().position(|r| r.count > 0);
    let last = all.iter().rposition(|r| r.count > 0);
    let (Some(first), Some(last)) = (first, last) else {
        out.push_str("     (no events)\n");
        return;
    };
    let shown = &all[first..=last];
    let lo: Vec<String> = shown.iter().map(|r| bound(r.lo, factor)).collect();
    let hi: Vec<String> = shown.iter().map(|r| bound(r.hi, factor)).collect();
    let width = lo.iter().chain(&hi).map(String::len).max().unwrap_or(0).max(10);
    let max = shown.iter().map(|r| r.count).max().unwrap_or(0).max(1);

    let _ = writeln!(out, "{:pad$}{unit:<field$} : count    distribution", "", pad = width - 5, field = width + 9);
    for ((row, lo), hi) in shown.iter().zip(&lo).zip(&hi) {
        let stars = (u128::from(row.count) * u128::from(BAR_WIDTH) / u128::from(max)) as usize;
        let _ = writeln!(
            out,
            "{lo:>width$} -> {hi:<width$} : {:<8} |{:<bar$}|",
            row.count,
            "*".repeat(stars),
            bar = BAR_WIDTH as usize
        );
    }
    out.push_str(&summary(h, series, unit, factor));
}

/// `count N[, sum S unit, avg A unit]`, the sum and average in the shown unit.
fn summary(h: &Histogram, series: &HistogramSeries, unit: &str, factor: f64) -> String {
    let mut line = format!("count {}", series.count);
    if let Some(sum) = series.sum {
        let m = if h.multiplier != 0.0 { h.multiplier } else { 1.0 };
        let shown = sum / m * factor;
        let amount = |v: f64| if factor == 1.0 || v.abs() >= 1000.0 { compact(v) } else { amount(v) };
        let unit = if unit == "value" { String::new() } else { format!(" {unit}") };
        let _ = write!(line, ", sum {}{unit}", amount(shown));
        if series.count > 0 {
            let _ = write!(line, ", avg {}{unit}", amount(shown / series.count as f64));
        }
    }
    line.push('\n');
    line
}

/// An integer when within rounding noise of one (11249 × 1e-6 / 1e-6), else one decimal.
fn compact(v: f64) -> String {
    if !v.is_finite() {
        return super::number::go_float(v);
    }
    let v = super::units::denoise(v);
    let r = v.round();
    if (v - r).abs() <= 1e-9 * r.abs().max(1.0) {
        format!("{r:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bucket, Sample};

    fn exp2_series(raw: &[(u32, u64)], sum: Option<f64>) -> HistogramSeries {
        // buckets 0..=10 from raw (index, count)
        let mut buckets = vec![];
        let mut cumulative = 0;
        for i in 0..=10u32 {
            cumulative += raw.iter().find(|r| r.0 == i).map_or(0, |r| r.1);
            buckets.push(Bucket { le: 2f64.powi(i as i32) * 0.000001, cumulative });
        }
        HistogramSeries { labels: vec!["vda".into()], buckets, count: cumulative, sum }
    }

    fn hist_metric(bucket_type: BucketType, multiplier: f64, series: HistogramSeries) -> Metric {
        Metric {
            config: "c".into(),
            name: "lat_seconds".into(),
            help: "Latency".into(),
            label_names: vec!["disk".into()],
            values: MetricValues::Histogram(Histogram { bucket_type, multiplier, series: vec![series] }),
        }
    }

    #[test]
    fn exp2_block_like_bcc() {
        let m = hist_metric(
            BucketType::Exp2,
            0.000001,
            exp2_series(&[(4, 52), (5, 428), (10, 1)], Some(11249.0 * 0.000001)),
        );
        let want = "\
lat_seconds: Latency

disk = vda
     usecs               : count    distribution
         9 -> 16         : 52       |****                                    |
        17 -> 32         : 428      |****************************************|
        33 -> 64         : 0        |                                        |
        65 -> 128        : 0        |                                        |
       129 -> 256        : 0        |                                        |
       257 -> 512        : 0        |                                        |
       513 -> 1024       : 1        |                                        |
count 481, sum 11249 usecs, avg 23.4 usecs
";
        assert_eq!(render_metric(&m), want);
    }

    #[test]
    fn nanosecond_histograms_print_in_usecs_like_bcc_and_in_the_chosen_unit() {
        // runqlat-like: the BPF program counts nanoseconds
        let mut s = exp2_series(&[(9, 3), (10, 1)], Some(4000.0 * 1e-9));
        for b in &mut s.buckets {
            b.le *= 1e-3; // µs bounds -> ns bounds
        }
        let m = hist_metric(BucketType::Exp2, 1e-9, s);
        let us = render_metric(&m);
        assert!(us.contains("     usecs               : count    distribution\n"), "{us}");
        assert!(us.contains("     0.257 -> 0.512      : 3 "), "{us}");
        assert!(us.contains("     0.513 -> 1.024      : 1 "), "{us}");
        assert!(us.ends_with("count 4, sum 4 usecs, avg 1 usecs\n"), "{us}");
        let ns = render_metric_in(&m, &Options { unit: crate::render::TimeUnit::Ns, ..Options::default() });
        assert!(ns.contains("     nsecs               : count    distribution\n"), "{ns}");
        assert!(ns.contains("       257 -> 512        : 3 "), "{ns}");
        assert!(ns.ends_with("count 4, sum 4000 nsecs, avg 1000 nsecs\n"), "{ns}");
        let ms = render_metric_in(&m, &Options { unit: crate::render::TimeUnit::Ms, ..Options::default() });
        assert!(ms.contains("msecs"), "{ms}");
        assert!(ms.contains("0.000257 -> 0.000512"), "{ms}");
        assert!(ms.ends_with("count 4, sum 0.004 msecs, avg 0.001 msecs\n"), "{ms}");
        // not a time: the unit flag changes nothing
        let mut bytes = m.clone();
        bytes.name = "size_bytes".into();
        if let MetricValues::Histogram(h) = &mut bytes.values {
            h.multiplier = 1.0;
        }
        assert_eq!(
            render_metric_in(&bytes, &Options { unit: crate::render::TimeUnit::Ms, ..Options::default() }),
            render_metric(&bytes)
        );
    }

    #[test]
    fn top_keeps_the_busiest_label_sets() {
        let mut a = exp2_series(&[(4, 5)], None);
        a.labels = vec!["vda".into()];
        let mut b = exp2_series(&[(4, 50)], None);
        b.labels = vec!["vdb".into()];
        let mut c = exp2_series(&[(4, 7)], None);
        c.labels = vec!["vdc".into()];
        let mut m = hist_metric(BucketType::Exp2, 0.000001, a);
        if let MetricValues::Histogram(h) = &mut m.values {
            h.series.extend([b, c]);
        }
        let out = render_metric_in(&m, &Options { top: Some(2), ..Options::default() });
        assert!(out.contains("disk = vdb") && out.contains("disk = vdc") && !out.contains("disk = vda"), "{out}");
        assert!(out.ends_with("\n1 more label set left out by --top 2 (count 5)\n"), "{out}");
        assert_eq!(render_metric_in(&m, &Options { top: Some(3), ..Options::default() }), render_metric(&m));

        let counter = Metric {
            config: "c".into(),
            name: "calls_total".into(),
            help: "Calls".into(),
            label_names: vec!["name".into()],
            values: MetricValues::Counter(
                [("a", 5.0), ("b", 50.0), ("c", 1.0)]
                    .iter()
                    .map(|(l, v)| Sample { labels: vec![l.to_string()], value: *v })
                    .collect(),
            ),
        };
        let out = render_metric_in(&counter, &Options { top: Some(2), ..Options::default() });
        assert_eq!(out, "calls_total: Calls\n  name=a :  5\n  name=b : 50\n  1 more left out by --top 2 (value 1)\n");
    }

    #[test]
    fn exp2_low_buckets() {
        let m = hist_metric(BucketType::Exp2, 0.000001, exp2_series(&[(0, 1), (1, 2), (2, 4)], None));
        let out = render_metric(&m);
        assert!(out.contains("         0 -> 1          : 1        |**********"));
        assert!(out.contains("         2 -> 2          : 2        |********************"));
        assert!(out.contains("         3 -> 4          : 4        |****************************************|"));
        assert!(out.ends_with("count 7\n"));
    }

    #[test]
    fn exp2zero_ranges() {
        let mut s = exp2_series(&[(0, 1), (1, 1), (2, 1), (3, 1)], None);
        // exp2zero le: 0, then 2^(i-1)
        for (i, b) in s.buckets.iter_mut().enumerate() {
            b.le = if i == 0 { 0.0 } else { 2f64.powi(i as i32 - 1) * 0.000001 };
        }
        let out = render_metric(&hist_metric(BucketType::Exp2Zero, 0.000001, s));
        assert!(out.contains("         0 -> 0          : 1 "));
        assert!(out.contains("         1 -> 1          : 1 "));
        assert!(out.contains("         2 -> 2          : 1 "));
        assert!(out.contains("         3 -> 4          : 1 "));
    }

    #[test]
    fn fixed_unsorted_keys_get_own_counts() {
        let s = HistogramSeries {
            labels: vec!["vda".into()],
            buckets: vec![
                Bucket { le: 4.0, cumulative: 5 },
                Bucket { le: 1.0, cumulative: 12 },
                Bucket { le: 2.0, cumulative: 21 },
            ],
            count: 21,
            sum: None,
        };
        let mut m = hist_metric(BucketType::Fixed, 1.0, s);
        m.name = "size".into();
        let out = render_metric(&m);
        assert!(out.contains("     value               : count    distribution\n"));
        assert!(out.contains("         0 -> 1          : 7 "));
        assert!(out.contains("         2 -> 2          : 9 "));
        assert!(out.contains("         3 -> 4          : 5 "));
    }

    #[test]
    fn empty_series_and_wide_bounds() {
        let out = render_metric(&hist_metric(BucketType::Exp2, 0.000001, exp2_series(&[], Some(0.001231))));
        assert!(out.contains("disk = vda\n     (no events)\n"));

        let s = HistogramSeries {
            labels: vec!["x".into()],
            buckets: vec![Bucket { le: 2f64.powi(40), cumulative: 3 }],
            count: 3,
            sum: None,
        };
        let mut m = hist_metric(BucketType::Exp2, 1.0, s);
        m.name = "big_bytes".into();
        let out = render_metric(&m);
        assert!(out.contains(&format!("        {:<22} : count    distribution\n", "bytes")), "{out}");
        assert!(out.contains(" 549755813889 -> 1099511627776 : 3        |"));
    }

    #[test]
    fn stack_metrics_show_top_stacks_frame_per_line() {
        let want = "\
cpu_samples_total: On-CPU samples
42 samples in 4 stacks; top 4 by samples, leaf frame first (kernel, --, user)

  35 samples (83.3%), comm burner
    inner
    outer
    main

  4 samples (9.5%), comm burner
    do_syscall_64
    entry_SYSCALL_64
    --
    write;x
    outer
    main

  2 samples (4.8%), comm idle
    (no frames)

  1 sample (2.4%), comm kworker/0:1
    commit_timeout [jbd2]
    worker_thread
";
        let out = render_metric(&stacks::profile_metric());
        assert_eq!(out, want);
        assert!(out.lines().all(|l| l.len() < 80 && !l.contains("\\n")), "{out}");
    }

    #[test]
    fn stack_metrics_beyond_the_top_are_summarised() {
        let mut m = stacks::profile_metric();
        m.values = MetricValues::Counter(
            (0..15)
                .map(|i| Sample {
                    labels: vec!["c".into(), "1".into(), format!("f{i:02}"), String::new()],
                    value: f64::from(20 - i),
                })
                .collect::<Vec<_>>()
                .into(),
        );
        let out = render_metric(&m);
        assert!(out.contains("195 samples in 15 stacks; top 10 by samples"), "{out}");
        assert!(out.contains("\n  20 samples (10.3%), comm c\n    f00\n"), "{out}");
        assert!(!out.contains("f10"), "{out}");
        assert!(
            out.ends_with("\n  5 more stacks with 40 samples: --format folded or flamegraph shows every stack\n"),
            "{out}"
        );
    }

    #[test]
    fn counters_aligned() {
        let m = Metric {
            config: "c".into(),
            name: "calls_total".into(),
            help: "Calls\nby name".into(),
            label_names: vec!["name".into(), "cpu".into()],
            values: MetricValues::Counter(
                vec![
                    Sample { labels: vec!["write".into(), "0".into()], value: 12.0 },
                    Sample { labels: vec!["read".into(), "1".into()], value: 1234567.0 },
                ]
                .into(),
            ),
        };
        let want = "\
calls_total: Calls by name
  name=read, cpu=1  : 1234567
  name=write, cpu=0 :      12
";
        assert_eq!(render_metric(&m), want);
    }
}
