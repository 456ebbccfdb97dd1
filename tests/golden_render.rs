//! Golden tests for the renderers: one fixed snapshot rendered in every format and compared
//! byte for byte with `tests/golden/snapshot.{prom,hist,table,json}`.
//!
//! After an intended output change, rewrite the files and review the diff:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test --test golden_render
//! git diff tests/golden
//! ```
//!
//! The Prometheus output is also checked with `promtool check metrics` (skipped when promtool
//! is not installed, except under `CI=true` where a missing promtool fails the test) and for
//! the rules promtool does not check: sorted `le`, `+Inf` equal to `_count`, no duplicate
//! series, no split families, no timestamps.
use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use ebpfx::model::*;
use ebpfx::render::*;

const US: f64 = 0.000001;

/// Buckets as the decoder rebuilds them for exp2 (docs/config-format.md#histograms): le = 2^i × m,
/// cumulative.
fn exp2_series(labels: &[&str], raw: &[(u32, u64)], max: u32, sum_raw: Option<f64>) -> HistogramSeries {
    let mut buckets = Vec::new();
    let mut count = 0;
    for i in 0..=max {
        count += raw.iter().filter(|r| r.0 == i).map(|r| r.1).sum::<u64>();
        buckets.push(Bucket { le: 2f64.powi(i as i32) * US, cumulative: count });
    }
    HistogramSeries { labels: strings(labels), buckets, count, sum: sum_raw.map(|s| s * US) }
}

/// Buckets as the decoder rebuilds them for `fixed` keys (config order, cumulative).
fn fixed_series(labels: &[&str], keys_and_counts: &[(f64, u64)], sum: Option<f64>) -> HistogramSeries {
    let mut buckets = Vec::new();
    let mut count = 0;
    for &(key, c) in keys_and_counts {
        count += c;
        buckets.push(Bucket { le: key, cumulative: count });
    }
    HistogramSeries { labels: strings(labels), buckets, count, sum }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn samples(v: &[(&[&str], f64)]) -> Samples {
    v.iter().map(|(labels, value)| Sample { labels: strings(labels), value: *value }).collect()
}

fn metric(config: &str, name: &str, help: &str, labels: &[&str], values: MetricValues) -> Metric {
    Metric {
        config: config.to_string(),
        name: name.to_string(),
        help: help.to_string(),
        label_names: strings(labels),
        values,
    }
}

/// The fixed snapshot behind every golden file. Series are deliberately not in output order.
fn snapshot() -> Snapshot {
    let start = UNIX_EPOCH + Duration::from_secs(1_763_766_000);
    let bio = Histogram {
        bucket_type: BucketType::Exp2,
        multiplier: US,
        series: vec![
            // biolatency on a virtio disk, the write group (captured from a real run)
            exp2_series(&["vda", "write"], &[(4, 52), (5, 428), (6, 9), (7, 8), (8, 3), (10, 1)], 27, Some(11249.0)),
            exp2_series(&["vda", "read"], &[(5, 492), (6, 37), (7, 12), (9, 2), (13, 1)], 27, Some(20536.0)),
        ],
    };
    let vfs = Histogram {
        bucket_type: BucketType::Fixed,
        multiplier: 1.0,
        series: vec![
            fixed_series(&["postgres"], &[(512.0, 0), (1024.0, 0), (4096.0, 40), (65536.0, 2)], None),
            fixed_series(&["nginx"], &[(512.0, 10), (1024.0, 3), (4096.0, 120), (65536.0, 7)], None),
        ],
    };
    Snapshot {
        window: Window {
            start,
            end: start + Duration::from_micros(10_000_500),
            length: Duration::from_micros(10_000_512),
        },
        metrics: vec![
            metric(
                "biolatency",
                "bio_latency_seconds",
                "Block IO latency histogram",
                &["device", "operation"],
                MetricValues::Histogram(bio),
            ),
            metric(
                "syscalls",
                "syscalls_total",
                "Total number of executed syscalls by name",
                &["syscall"],
                MetricValues::Counter(samples(&[
                    (&["write"], 12.0),
                    (&["read"], 1234567.0),
                    (&["unknown_syscall:1000"], 1.0),
                    (&["getpid"], 100003.0),
                ])),
            ),
            metric(
                "softirq-latency-net-rx",
                "softirq_raised_total",
                "Total number of NET_RX softirqs raised",
                &[],
                MetricValues::Counter(samples(&[(&[], 1234.0)])),
            ),
            metric(
                "stacks",
                "stack_samples_total",
                "Kernel stacks sampled on CPU,\nframes joined by \\n",
                &["kstack"],
                MetricValues::Counter(samples(&[
                    (&["a_func\nb_func\n??"], 3.0),
                    (&["commit_timeout\t[jbd2]"], 7.0),
                    (&["say \"hi\" \\ bye"], 1.0),
                ])),
            ),
            metric(
                "runqueue",
                "run_queue_length",
                "Run queue length per CPU at the end of the window",
                &["cpu"],
                MetricValues::Gauge(samples(&[(&["0"], 1.5), (&["1"], 3.0), (&["10"], 0.25), (&["2"], 0.0)])),
            ),
            metric("vfs", "vfs_read_size_bytes", "Size of VFS reads", &["comm"], MetricValues::Histogram(vfs)),
        ],
        decoder_errors: vec![("biolatency".to_string(), 0), ("syscalls".to_string(), 2)],
        warnings: vec!["syscalls: syscall_errors_total dropped: key is 4 bytes, labels add up to 8".to_string()],
        self_metrics: vec![Metric {
            config: "ebpfx".into(),
            name: "enabled_configs".into(),
            help: "The set of enabled configs".into(),
            label_names: vec!["name".into()],
            values: MetricValues::Gauge(
                vec![
                    Sample { labels: vec!["biolatency".into()], value: 1.0 },
                    Sample { labels: vec!["syscalls".into()], value: 1.0 },
                ]
                .into(),
            ),
        }],
    }
}

fn golden_path(ext: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("snapshot.{ext}"))
}

fn check_golden(format: Format, ext: &str) {
    let got = render(format, &snapshot(), &Options::default());
    assert!(got.ends_with('\n'), "{ext} output must end with a newline");
    let path = golden_path(ext);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, &got).expect("write golden file");
        return;
    }
    let want =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{} differs from the golden file at line {}:\n got: {:?}\nwant: {:?}\n\
             (UPDATE_GOLDEN=1 rewrites it)\n--- full output ---\n{got}",
            path.display(),
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first),
        );
    }
}

#[test]
fn golden_prom() {
    check_golden(Format::Prom, "prom");
}

#[test]
fn golden_hist() {
    check_golden(Format::Hist, "hist");
}

#[test]
fn golden_table() {
    check_golden(Format::Table, "table");
}

#[test]
fn golden_json() {
    check_golden(Format::Json, "json");
}

#[test]
fn json_is_valid_and_complete() {
    let out = render(Format::Json, &snapshot(), &Options::default());
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["window"]["start"], "2025-11-21T23:00:00.000Z");
    assert_eq!(v["window"]["duration_seconds"], 10.000512);
    assert_eq!(v["metrics"].as_array().map(Vec::len), Some(6));
    let write = &v["metrics"][0]["series"][1];
    assert_eq!(write["labels"]["operation"], "write");
    assert_eq!(write["count"], 501);
    assert_eq!(write["buckets"].as_array().map(Vec::len), Some(28));
    assert_eq!(v["decoder_errors"]["syscalls"], 2);
}

const SPEC_17_1_WRITE_GROUP: &str = r#"ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="1e-06"} 0
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="2e-06"} 0
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="4e-06"} 0
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="8e-06"} 0
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="1.6e-05"} 52
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="3.2e-05"} 480
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="6.4e-05"} 489
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.000128"} 497
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.000256"} 500
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.000512"} 500
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.001024"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.002048"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.004096"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.008192"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.016384"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.032768"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.065536"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.131072"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.262144"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="0.524288"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="1.048576"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="2.097152"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="4.194304"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="8.388608"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="16.777216"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="33.554432"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="67.108864"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="134.217728"} 501
ebpf_exporter_bio_latency_seconds_bucket{device="vda",operation="write",le="+Inf"} 501
ebpf_exporter_bio_latency_seconds_sum{device="vda",operation="write"} 0.011249
ebpf_exporter_bio_latency_seconds_count{device="vda",operation="write"} 501
"#;

#[test]
fn prom_has_spec_17_1_write_group() {
    let opts = Options { prefix: "ebpf_exporter_".to_string(), ..Default::default() };
    let out = render(Format::Prom, &snapshot(), &opts);
    assert!(out.contains(SPEC_17_1_WRITE_GROUP), "{out}");
    // the read group sorts before the write group (label values byte-wise)
    let read = out.find("operation=\"read\"").unwrap_or(usize::MAX);
    let write = out.find("operation=\"write\"").unwrap_or(0);
    assert!(read < write);
    assert!(out.contains("ebpf_exporter_syscalls_total{syscall=\"read\"} 1.234567e+06\n"));
}

/// Which promtool to run, or None to skip (never under CI=true).
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("promtool")).find(|p| p.is_file()));
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "promtool is required under CI=true (Debian package: prometheus)"
        );
        eprintln!("promtool not found: skipping the promtool check");
    }
    found
}

#[test]
fn prom_passes_promtool_check_metrics() {
    let Some(promtool) = promtool() else {
        return;
    };
    for prefix in ["ebpfx_", "ebpf_exporter_"] {
        let opts = Options { prefix: prefix.to_string(), ..Default::default() };
        let out = render(Format::Prom, &snapshot(), &opts);
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run promtool");
        child.stdin.take().expect("stdin").write_all(out.as_bytes()).expect("write to promtool");
        let result = child.wait_with_output().expect("promtool output");
        assert!(
            result.status.success(),
            "promtool check metrics exited {:?} (1 = parse error, 3 = lint):\n{}{}",
            result.status.code(),
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr),
        );
    }
}

/// One parsed sample line.
struct Line {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses `name{a="x",...} value` exactly (escapes included); fails on anything else,
/// including a trailing timestamp.
fn parse_sample(line: &str) -> Line {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => panic!("no value: {line}"),
    };
    let mut labels = Vec::new();
    let mut rest = rest;
    if let Some(mut s) = rest.strip_prefix('{') {
        loop {
            let eq = s.find("=\"").unwrap_or_else(|| panic!("bad labels: {line}"));
            let label = s[..eq].to_string();
            let mut value = String::new();
            let mut chars = s[eq + 2..].char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        other => panic!("bad escape {other:?}: {line}"),
                    },
                    Some((i, '"')) => break eq + 2 + i + 1,
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated label value: {line}"),
                }
            };
            labels.push((label, value));
            s = &s[end..];
            if let Some(more) = s.strip_prefix(',') {
                s = more;
            } else if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            } else {
                panic!("bad label separator: {line}");
            }
        }
    }
    let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("no space before value: {line}"));
    assert!(!value.contains(' '), "timestamp or junk after value: {line}");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
    };
    Line { name: name.to_string(), labels, value }
}

#[test]
fn prom_structural_rules() {
    let out = render(Format::Prom, &snapshot(), &Options::default());
    assert!(out.ends_with('\n'));

    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut seen_series: HashSet<String> = HashSet::new();
    let mut family_order: Vec<String> = Vec::new();
    // per histogram series: bucket (le, value) list, count
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();

    let mut lines = out.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            let family = help.split(' ').next().unwrap_or_default().to_string();
            assert!(!closed.contains(&family), "family {family} split");
            if let Some(prev) = current.replace(family.clone()) {
                closed.insert(prev);
            }
            family_order.push(family.clone());
            let ty = lines.next().unwrap_or_default();
            let (tname, tkind) = ty
                .strip_prefix("# TYPE ")
                .and_then(|t| t.split_once(' '))
                .unwrap_or_else(|| panic!("TYPE must follow HELP: {ty}"));
            assert_eq!(tname, family);
            types.insert(family, tkind.to_string());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let family = current.clone().expect("sample before HELP");
        let kind = types[&family].as_str();
        let sample = parse_sample(line);
        let suffix =
            sample.name.strip_prefix(&family).unwrap_or_else(|| panic!("{} outside its family {family}", sample.name));
        let mut key_labels = sample.labels.clone();
        let series_id = format!("{}{:?}", sample.name, key_labels);
        assert!(seen_series.insert(series_id), "duplicate series: {line}");
        let names: Vec<&String> = sample.labels.iter().map(|l| &l.0).collect();
        match kind {
            "histogram" => {
                let le = if suffix == "_bucket" {
                    let (n, v) = key_labels.pop().expect("le label");
                    assert_eq!(n, "le", "le must be the last label: {line}");
                    Some(v)
                } else {
                    None
                };
                let mut sorted = names.clone();
                if le.is_some() {
                    sorted.pop();
                }
                let mut check = sorted.clone();
                check.sort();
                assert_eq!(sorted, check, "labels not sorted: {line}");
                let group = format!("{family}{key_labels:?}");
                match (suffix, le) {
                    ("_bucket", Some(le)) => {
                        let le = if le == "+Inf" { f64::INFINITY } else { le.parse().expect("le") };
                        buckets.entry(group).or_default().push((le, sample.value));
                    }
                    ("_sum", None) => {}
                    ("_count", None) => {
                        counts.insert(group, sample.value);
                    }
                    _ => panic!("bad histogram sample: {line}"),
                }
            }
            _ => {
                assert_eq!(suffix, "", "{line}");
                let mut check = names.clone();
                check.sort();
                assert_eq!(names, check, "labels not sorted: {line}");
            }
        }
    }

    let mut sorted_families = family_order.clone();
    sorted_families.sort();
    assert_eq!(family_order, sorted_families, "families not sorted");

    assert!(!buckets.is_empty());
    for (group, list) in &buckets {
        let les: Vec<f64> = list.iter().map(|b| b.0).collect();
        assert!(les.windows(2).all(|w| w[0] < w[1]), "le not increasing: {group}");
        let (last_le, inf_count) = *list.last().expect("buckets");
        assert_eq!(last_le, f64::INFINITY, "+Inf missing: {group}");
        assert_eq!(Some(&inf_count), counts.get(group), "+Inf != _count: {group}");
    }
    assert_eq!(buckets.len(), counts.len());

    for family in ["ebpfx_decoder_errors_total", "ebpfx_window_duration_seconds", "ebpfx_window_end_time_seconds"] {
        assert!(types.contains_key(family), "{family} missing");
    }
}

#[test]
fn every_format_of_an_empty_snapshot() {
    let mut s = snapshot();
    s.metrics.clear();
    s.decoder_errors.clear();
    s.self_metrics.clear();
    let opts = Options::default();
    assert_eq!(render(Format::Hist, &s, &opts), "");
    assert_eq!(render(Format::Table, &s, &opts), "");
    let prom = render(Format::Prom, &s, &opts);
    assert!(prom.starts_with("# HELP ebpfx_window_duration_seconds "));
    assert!(prom.ends_with("ebpfx_window_end_time_seconds 1.7637660100005e+09\n"));
    assert!(render(Format::Json, &s, &opts).ends_with("}\n"));
}

/// The documented JSON schema as Rust types: the output must deserialize into them with no
/// field unknown or missing (a typed round trip of the document, numbers compared exactly).
#[allow(dead_code)] // fields exist to pin the schema: deserializing checks them
mod json_schema {
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Document {
        pub window: Window,
        pub metrics: Vec<Metric>,
        pub self_metrics: Vec<Metric>,
        pub decoder_errors: BTreeMap<String, u64>,
        pub warnings: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Window {
        pub start: Option<String>,
        pub end: Option<String>,
        pub start_unix_seconds: f64,
        pub end_unix_seconds: f64,
        pub duration_seconds: f64,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Metric {
        pub config: String,
        pub name: String,
        pub help: String,
        #[serde(rename = "type")]
        pub kind: String,
        pub labels: Vec<String>,
        #[serde(default)]
        pub samples: Option<Vec<Sample>>,
        #[serde(default)]
        pub bucket_type: Option<String>,
        #[serde(default)]
        pub bucket_multiplier: Option<f64>,
        #[serde(default)]
        pub series: Option<Vec<Series>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Sample {
        pub labels: BTreeMap<String, String>,
        pub value: Option<f64>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Series {
        pub labels: BTreeMap<String, String>,
        pub count: u64,
        pub sum: Option<f64>,
        pub buckets: Vec<Bucket>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Bucket {
        pub le: f64,
        pub count: u64,
    }
}

#[test]
fn json_round_trips_through_the_documented_types() {
    let snap = snapshot();
    let out = render(Format::Json, &snap, &Options::default());
    let doc: json_schema::Document = serde_json::from_str(&out).expect("the JSON matches the documented schema");
    assert_eq!(doc.window.duration_seconds, snap.window.length.as_secs_f64());
    assert_eq!(doc.metrics.len(), snap.metrics.len());
    assert_eq!(doc.self_metrics.len(), snap.self_metrics.len());
    for (m, d) in snap.metrics.iter().zip(&doc.metrics) {
        assert_eq!(
            (m.config.as_str(), m.name.as_str(), m.help.as_str()),
            (d.config.as_str(), d.name.as_str(), d.help.as_str())
        );
        assert_eq!(m.label_names, d.labels);
        match &m.values {
            MetricValues::Counter(s) | MetricValues::Gauge(s) => {
                let samples = d.samples.as_ref().expect("samples");
                assert_eq!(samples.len(), s.len());
                let total: f64 = s.iter().map(|x| x.value).sum();
                assert_eq!(samples.iter().filter_map(|x| x.value).sum::<f64>(), total);
                assert_eq!(d.kind, if matches!(m.values, MetricValues::Counter(_)) { "counter" } else { "gauge" });
            }
            MetricValues::Histogram(h) => {
                assert_eq!(d.kind, "histogram");
                let series = d.series.as_ref().expect("series");
                assert_eq!(series.len(), h.series.len());
                assert_eq!(series.iter().map(|s| s.count).sum::<u64>(), h.series.iter().map(|s| s.count).sum::<u64>());
                assert_eq!(d.bucket_multiplier, Some(h.multiplier));
            }
        }
    }
    assert_eq!(doc.decoder_errors.values().sum::<u64>(), snap.decoder_errors.iter().map(|(_, n)| n).sum::<u64>());
}
