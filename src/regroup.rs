//! `--by LABEL[,LABEL...]`: the output's labels are exactly the listed ones. This is the
//! user-space half: labels a config already has are kept, the others summed away (counters
//! summed, histograms merged bucket by bucket); `--by none` merges every label set into one
//! series. It works on a live run and on a saved snapshot alike (no kernel needed).
//!
//! Gauges are levels (a last value seen, a queue length), and a sum of levels measured on
//! different things is no meaningful number: a gauge whose labels `--by` would merge is refused.
//!
//! Kernel-side labels (`pid`, `comm`, `cgroup`, `cpu`): a config that can add one in its key
//! declares it (`kernel_labels:`), [`kernel_side_labels`] returns it, and [`check`] accepts it;
//! targets/tasks.rs switches it on in the BPF program before load.
use std::collections::HashMap;

use crate::config::{Config, MetricConfig, MetricKind};
use crate::error::usage_err;
use crate::model::{Bucket, Histogram, HistogramSeries, Metric, MetricValues, Samples, Snapshot};

/// What `--by` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    /// `--by none`: one series per metric, no labels.
    Nothing,
    /// These labels, in this order.
    Labels(Vec<String>),
}

impl By {
    /// Parses the comma-split `--by` words: `none` alone, or distinct label names.
    pub fn parse(words: &[String]) -> anyhow::Result<By> {
        let words: Vec<&str> = words.iter().map(|w| w.trim()).collect();
        if words.iter().any(|w| w.is_empty()) {
            return Err(usage_err("--by: an empty label name (write --by LABEL[,LABEL...] or --by none)"));
        }
        if words.contains(&"none") {
            return if words.len() == 1 {
                Ok(By::Nothing)
            } else {
                Err(usage_err("--by none merges every label away: it cannot be listed with labels"))
            };
        }
        let mut seen: Vec<String> = Vec::with_capacity(words.len());
        for w in words {
            if seen.iter().any(|s| s == w) {
                return Err(usage_err(format!("--by: label {w:?} is listed twice")));
            }
            seen.push(w.to_string());
        }
        Ok(By::Labels(seen))
    }

    /// The labels kept.
    pub fn labels(&self) -> &[String] {
        match self {
            By::Nothing => &[],
            By::Labels(l) => l,
        }
    }
}

/// Labels the config's BPF programs can add to their keys on request: its `kernel_labels:`
/// (targets/tasks.rs switches the ones `--by` names on before load).
pub fn kernel_side_labels(config: &Config) -> Vec<String> {
    config.kernel_labels.clone()
}

/// Every label name `--by` can keep in these configs, sorted, each once (for completions).
pub fn label_names(configs: impl IntoIterator<Item = Config>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in configs {
        out.extend(c.metrics.iter().flat_map(|m| output_labels(m).into_iter().map(str::to_string)));
        out.extend(kernel_side_labels(&c));
    }
    out.sort();
    out.dedup();
    out
}

/// The label names a metric's output carries (a histogram's bucket label is not one).
fn output_labels(m: &MetricConfig) -> Vec<&str> {
    let n = match m.kind {
        MetricKind::Histogram(_) => m.labels.len().saturating_sub(1),
        _ => m.labels.len(),
    };
    m.labels[..n].iter().map(|l| l.name.as_str()).collect()
}

/// Checks `by` against each config before anything loads: every listed label must be one
/// every metric of the config has, and no gauge may lose a label.
pub fn check(by: &By, configs: &[&Config]) -> anyhow::Result<()> {
    for config in configs {
        let kernel = kernel_side_labels(config);
        for m in &config.metrics {
            let have = output_labels(m);
            for want in by.labels() {
                if !have.contains(&want.as_str()) && !kernel.contains(want) {
                    let has = if have.is_empty() { "no labels".to_string() } else { have.join(", ") };
                    let merged = if config.metrics.len() > 1 { format!(" (metric {})", m.name) } else { String::new() };
                    return Err(usage_err(format!(
                        "--by {want}: config {}{merged} has no label {want:?}; it has: {has}{}",
                        config.name,
                        if has == "no labels" { "" } else { " (or --by none to merge them all)" }
                    )));
                }
            }
            if matches!(m.kind, MetricKind::Gauge) {
                if let Some(lost) = have.iter().find(|l| !by.labels().iter().any(|b| b == *l)) {
                    return Err(usage_err(format!(
                        "--by: gauge {} of config {} would lose its label {lost:?}: a gauge is a level (e.g. a \
                         last value seen), and a sum of levels is no meaningful number; list all its labels ({}) \
                         or run the config without --by",
                        m.name,
                        config.name,
                        have.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `--by` parsed and checked against the configs, before anything loads.
pub fn parse_and_check(words: Option<&[String]>, configs: &[&Config]) -> anyhow::Result<Option<By>> {
    let Some(words) = words else {
        return Ok(None);
    };
    let by = By::parse(words)?;
    check(&by, configs)?;
    Ok(Some(by))
}

/// `--top` cuts tables and hist's lists: refused with a format that has none (prom, json, stacks), and
/// with the Prometheus text chosen for a pipe or file when no `--format` was given.
pub fn check_top(top: Option<u64>, format: Option<crate::render::Format>) -> anyhow::Result<()> {
    use crate::render::Format;
    match (top, format) {
        (Some(n), Some(f)) if !matches!(f, Format::Table | Format::Hist) => Err(usage_err(format!(
            "--top {n} cuts tables and histogram lists, and the output is {}: add --format table or hist{}",
            format!("{f:?}").to_lowercase(),
            if f == Format::Prom {
                " (prom is the default when stdout is not a terminal or with --output)"
            } else {
                ""
            }
        ))),
        _ => Ok(()),
    }
}

/// `--format folded`/`flamegraph` draw stacks: a `--by` that sums the stack labels away
/// would leave them nothing to draw.
pub fn check_stacks(by: Option<&By>, format: Option<crate::render::Format>) -> anyhow::Result<()> {
    match (by, format) {
        (Some(by), Some(f)) if f.needs_stacks() && !crate::render::has_stack_labels(by.labels()) => {
            Err(usage_err(format!(
                "--format {} draws stacks, and --by {} sums the stack labels away: keep kstack and/or ustack                  in --by (e.g. --by comm,kstack,ustack)",
                format!("{f:?}").to_lowercase(),
                if by.labels().is_empty() { "none".to_string() } else { by.labels().join(",") }
            )))
        }
        _ => Ok(()),
    }
}

/// The snapshot with every metric regrouped by `by` (ebpfx's own metrics untouched).
/// Metrics that lack a listed label are left as they are ([`check`] refuses that earlier).
pub fn regroup(snapshot: &mut Snapshot, by: &By) {
    for metric in &mut snapshot.metrics {
        regroup_metric(metric, by.labels());
    }
}

fn regroup_metric(metric: &mut Metric, keep: &[String]) {
    let Some(index): Option<Vec<usize>> = keep.iter().map(|k| metric.label_names.iter().position(|n| n == k)).collect()
    else {
        return;
    };
    if metric.label_names == keep {
        return;
    }
    match &mut metric.values {
        MetricValues::Counter(s) | MetricValues::Gauge(s) => *s = regroup_samples(s, &index),
        MetricValues::Histogram(h) => regroup_histogram(h, &index),
    }
    metric.label_names = keep.to_vec();
}

/// Sums the samples that agree on the kept labels; the result is sorted by label values
/// (byte-wise, in the kept order) and unique.
fn regroup_samples(samples: &Samples, index: &[usize]) -> Samples {
    let mut sums: HashMap<Vec<&str>, f64> = HashMap::new();
    for s in samples.iter() {
        let key: Vec<&str> = index.iter().map(|&i| s.labels.get(i).unwrap_or("")).collect();
        *sums.entry(key).or_insert(0.0) += s.value;
    }
    let mut rows: Vec<(Vec<&str>, f64)> = sums.into_iter().collect();
    rows.sort_by(|a, b| a.0.iter().map(|v| v.as_bytes()).cmp(b.0.iter().map(|v| v.as_bytes())));
    let mut out = Samples::new(index.len());
    for (labels, value) in rows {
        out.push(labels, value);
    }
    out
}

/// Merges the series that agree on the kept labels, bucket by bucket (cumulative counts add
/// up bucket-wise as the own counts do), counts and sums added.
fn regroup_histogram(h: &mut Histogram, index: &[usize]) {
    let mut merged: Vec<HistogramSeries> = Vec::new();
    let mut at: HashMap<Vec<String>, usize> = HashMap::new();
    for s in std::mem::take(&mut h.series) {
        let key: Vec<String> = index.iter().map(|&i| s.labels.get(i).cloned().unwrap_or_default()).collect();
        match at.get(&key) {
            Some(&i) => merge_into(&mut merged[i], &s),
            None => {
                at.insert(key.clone(), merged.len());
                merged.push(HistogramSeries { labels: key, ..s });
            }
        }
    }
    merged.sort_by(|a, b| a.labels.iter().map(|v| v.as_bytes()).cmp(b.labels.iter().map(|v| v.as_bytes())));
    h.series = merged;
}

fn merge_into(into: &mut HistogramSeries, from: &HistogramSeries) {
    let same_layout =
        into.buckets.len() == from.buckets.len() && into.buckets.iter().zip(&from.buckets).all(|(a, b)| a.le == b.le);
    if same_layout {
        for (a, b) in into.buckets.iter_mut().zip(&from.buckets) {
            a.cumulative += b.cumulative;
        }
    } else {
        // Series of one metric share their buckets; should they not, add each bound's own
        // count to the union of bounds.
        let mut bounds: Vec<f64> = into.buckets.iter().chain(&from.buckets).map(|b| b.le).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let at = |series: &HistogramSeries, le: f64| -> u64 {
            // cumulative count at or below `le`
            series.buckets.iter().filter(|b| b.le <= le).map(|b| b.cumulative).max().unwrap_or(0)
        };
        into.buckets = bounds.iter().map(|&le| Bucket { le, cumulative: at(into, le) + at(from, le) }).collect();
    }
    into.count += from.count;
    into.sum = match (into.sum, from.sum) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BucketType, Sample};

    fn words(s: &str) -> Vec<String> {
        s.split(',').map(String::from).collect()
    }

    fn counter(names: &[&str], rows: &[(&[&str], f64)]) -> Metric {
        Metric {
            config: "c".into(),
            name: "n_total".into(),
            help: "h".into(),
            label_names: names.iter().map(|s| s.to_string()).collect(),
            values: MetricValues::Counter(
                rows.iter()
                    .map(|(l, v)| Sample { labels: l.iter().map(|s| s.to_string()).collect(), value: *v })
                    .collect(),
            ),
        }
    }

    fn series(labels: &[&str], own: &[u64], sum: Option<f64>) -> HistogramSeries {
        let mut cumulative = 0;
        let buckets = own
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cumulative += c;
                Bucket { le: 2f64.powi(i as i32) * 1e-6, cumulative }
            })
            .collect();
        HistogramSeries { labels: labels.iter().map(|s| s.to_string()).collect(), buckets, count: cumulative, sum }
    }

    fn bio() -> Metric {
        Metric {
            config: "biolatency".into(),
            name: "bio_latency_seconds".into(),
            help: "h".into(),
            label_names: vec!["device".into(), "operation".into()],
            values: MetricValues::Histogram(Histogram {
                bucket_type: BucketType::Exp2,
                multiplier: 1e-6,
                series: vec![
                    series(&["vda", "write"], &[1, 2, 0], Some(5e-6)),
                    series(&["vdb", "read"], &[0, 1, 4], Some(20e-6)),
                    series(&["vda", "read"], &[3, 0, 1], Some(7e-6)),
                ],
            }),
        }
    }

    #[test]
    fn stacks_need_their_labels() {
        use crate::render::Format;
        let by = By::parse(&words("comm")).unwrap();
        assert!(check_stacks(Some(&by), Some(Format::Folded)).is_err());
        assert!(check_stacks(Some(&By::Nothing), Some(Format::Flamegraph)).is_err());
        assert!(check_stacks(Some(&by), Some(Format::Table)).is_ok());
        let keep = By::parse(&words("comm,kstack,ustack")).unwrap();
        assert!(check_stacks(Some(&keep), Some(Format::Folded)).is_ok());
        assert!(check_stacks(None, Some(Format::Folded)).is_ok());
    }

    #[test]
    fn parse_by() {
        assert_eq!(By::parse(&words("none")).unwrap(), By::Nothing);
        assert_eq!(By::parse(&words("device")).unwrap(), By::Labels(vec!["device".into()]));
        assert!(By::parse(&words("none,device")).is_err());
        assert!(By::parse(&words("device,device")).is_err());
        assert!(By::parse(&words("device,")).is_err());
    }

    #[test]
    fn counters_summed_sorted_unique() {
        let mut m = counter(
            &["syscall", "comm"],
            &[(&["read", "b"], 2.0), (&["write", "a"], 1.0), (&["read", "a"], 3.0), (&["open", "b"], 4.0)],
        );
        regroup_metric(&mut m, &["comm".to_string()]);
        assert_eq!(m.label_names, ["comm"]);
        let MetricValues::Counter(s) = &m.values else { panic!("kind changed") };
        let rows: Vec<(Vec<String>, f64)> = s.iter().map(|s| (s.labels.to_vec(), s.value)).collect();
        assert_eq!(rows, vec![(vec!["a".to_string()], 4.0), (vec!["b".to_string()], 6.0)]);

        regroup_metric(&mut m, &[]);
        let MetricValues::Counter(s) = &m.values else { panic!("kind changed") };
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(0).map(|s| s.value), Some(10.0));
        assert!(m.label_names.is_empty());
    }

    #[test]
    fn listed_order_is_the_output_order() {
        let mut m = counter(&["a", "b"], &[(&["1", "x"], 1.0), (&["2", "x"], 1.0)]);
        regroup_metric(&mut m, &["b".to_string(), "a".to_string()]);
        assert_eq!(m.label_names, ["b", "a"]);
        let MetricValues::Counter(s) = &m.values else { panic!("kind changed") };
        assert_eq!(s.get(0).map(|s| s.labels.to_vec()), Some(vec!["x".to_string(), "1".to_string()]));
    }

    #[test]
    fn histograms_merge_bucket_wise() {
        let mut m = bio();
        regroup_metric(&mut m, &["device".to_string()]);
        let MetricValues::Histogram(h) = &m.values else { panic!("kind changed") };
        assert_eq!(h.series.len(), 2);
        assert_eq!(h.series[0].labels, ["vda"]);
        assert_eq!(h.series[0].counts(), [4, 2, 1]);
        assert_eq!(h.series[0].count, 7);
        assert!((h.series[0].sum.unwrap_or(0.0) - 12e-6).abs() < 1e-15);
        assert_eq!(h.series[1].labels, ["vdb"]);
        assert_eq!(h.series[1].counts(), [0, 1, 4]);

        let mut m = bio();
        regroup(&mut Snapshot::of(vec![]), &By::Nothing);
        regroup_metric(&mut m, &[]);
        let MetricValues::Histogram(h) = &m.values else { panic!("kind changed") };
        assert_eq!(h.series.len(), 1);
        assert_eq!(h.series[0].counts(), [4, 3, 5]);
        assert_eq!(h.series[0].count, 12);
    }

    #[test]
    fn mismatched_buckets_still_add_up() {
        let mut a = series(&["x"], &[1, 1], None);
        let b = series(&["x"], &[2, 0, 3], Some(1.0));
        merge_into(&mut a, &b);
        assert_eq!(a.counts(), [3, 1, 3]);
        assert_eq!(a.count, 7);
        assert_eq!(a.sum, None);
    }

    #[test]
    fn check_names_config_and_its_labels() {
        let yaml = crate::catalog::Catalog::builtin_yaml("biolatency").unwrap_or_default();
        let config = Config::parse("biolatency", "configs/biolatency.yaml", yaml).expect("built-in parses");
        assert!(check(&By::parse(&words("device")).unwrap(), &[&config]).is_ok());
        assert!(check(&By::Nothing, &[&config]).is_ok());
        let err = check(&By::parse(&words("disk")).unwrap(), &[&config]).unwrap_err().to_string();
        assert!(err.contains("config biolatency has no label \"disk\"; it has: device, operation"), "{err}");
        assert_eq!(crate::error::exit_code(&check(&By::parse(&words("pid")).unwrap(), &[&config]).unwrap_err()), 2);
    }

    #[test]
    fn gauges_are_not_summed() {
        let yaml = crate::catalog::Catalog::builtin_yaml("tcpflows").unwrap_or_default();
        let config = Config::parse("tcpflows", "configs/tcpflows.yaml", yaml).expect("built-in parses");
        let err = check(&By::Nothing, &[&config]).unwrap_err().to_string();
        assert!(err.contains("gauge tcp_flow_smoothed_rtt of config tcpflows"), "{err}");
    }
}
