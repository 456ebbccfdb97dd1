//! ebpf_exporter's YAML config format as ebpfx accepts it (docs/config-format.md): the checked
//! [`Config`] the rest of ebpfx uses. `schema.rs` holds the serde types of the file,
//! `validate.rs` turns them into a `Config`, checking everything before any BPF is loaded.
mod schema;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::config_err;
use crate::model::BucketType;

/// One config: `NAME.yaml` (and, beside it, `NAME.bpf.o`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file stem; a `name:` key in the YAML has no effect (as in ebpf_exporter).
    pub name: String,
    /// Where the YAML came from, for error messages (`configs/NAME.yaml` for built-ins).
    pub origin: String,
    /// ebpfx extension: a one-line description shown by `ebpfx list`.
    pub description: Option<String>,
    /// Counters, then histograms, then gauges, each in file order.
    pub metrics: Vec<MetricConfig>,
    pub kaddrs: Vec<String>,
    pub cgroup_id_map: Option<CgroupIdMap>,
    /// Number of `tracing.spans` entries: parsed, unsupported in a one-shot run.
    pub tracing_spans: usize,
    /// ebpfx extension: the label whose `static_map` ebpfx fills with the functions resolved
    /// from `--probe` (the config's programs attach to them; see `targets/mod.rs`).
    pub probe_label: Option<String>,
    /// ebpfx extension (`targets:`): the task selections the object implements through
    /// bpf/target.bpf.h: `pid`, `tid`, `comm`, `cgroup`, `command` (see `targets/tasks.rs`).
    pub targets: Vec<String>,
    /// ebpfx extension (`kernel_labels:`): labels the kernel fills only when `--by` asks for
    /// them (`pid`, `cpu`, `comm`, `cgroup`); unasked, their bytes are zero and read as padding.
    pub kernel_labels: Vec<String>,
    /// Which of `kernel_labels` the run asked for (`kernel_labels_on:`, written by ebpfx into the
    /// YAML of a run and of its saved snapshot); the others are folded into padding at parse time.
    pub kernel_labels_on: Vec<String>,
    /// ebpfx extension: record streams read from ring buffers (docs/events.md).
    pub events: Vec<EventConfig>,
}

/// One `events:` entry: a ring buffer (or perf event array) of records and how to decode and show them.
#[derive(Debug, Clone, PartialEq)]
pub struct EventConfig {
    /// Stream name: prom counts are `<name>_events_total`.
    pub name: String,
    pub help: String,
    /// The `BPF_MAP_TYPE_RINGBUF` map, or a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (one buffer per CPU).
    pub ring_buffer: String,
    /// Per-CPU u64 array (one entry) counting records the ring had no room for; None for
    /// ebpf_exporter spans, whose objects count nothing.
    pub lost_counter: Option<String>,
    /// An ebpf_exporter `tracing.spans[]` entry (JSON Lines with trace and span ids).
    pub span: bool,
    /// Ring size in bytes (power of two, page multiple); `--ring-size` overrides. A perf event
    /// array splits it over the CPUs (`stream::perfbuf::perf_pages`).
    pub ring_size: u64,
    /// The transport asked for (`--event-buffer`; a config cannot set it): `Auto` takes the
    /// map as declared.
    pub buffer: EventBuffer,
    /// The record struct's BTF name (checked by `ebpfx check`); None: the pointee of the
    /// object's `events_record` global.
    pub record: Option<String>,
    pub fields: Vec<EventField>,
    /// Indexes into `fields`: prom counts events by these.
    pub labels: Vec<usize>,
    /// The field `hist` shows, and the unit of its raw value.
    pub latency: Option<EventLatency>,
}

/// `--event-buffer`: which transport event streams use (docs/events.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EventBuffer {
    /// The map as the object declares it; a ring buffer becomes a perf event array where the
    /// kernel has no ring buffers (and the object can switch).
    #[default]
    Auto,
    /// A BPF ring buffer (Linux 5.8+).
    Ring,
    /// A perf event array with one buffer per CPU.
    Perf,
}

/// A field of an event record: the label grammar (name, size, padding, decoders) plus display.
#[derive(Debug, Clone, PartialEq)]
pub struct EventField {
    pub label: Label,
    /// Byte offset in the record.
    pub offset: usize,
    /// Index of an earlier field holding how many bytes of this one are used (a variable tail).
    pub length: Option<usize>,
    /// Decoded (for labels) but not printed.
    pub hidden: bool,
    /// CLOCK_MONOTONIC nanoseconds of the event (`-T`, JSON `time`).
    pub timestamp: bool,
    /// Table column width.
    pub width: usize,
}

impl EventField {
    /// A long field (arguments, paths) goes last in a table and is not padded.
    pub fn long(&self) -> bool {
        self.length.is_some() || self.label.size > 64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventLatency {
    /// Index into `fields`.
    pub field: usize,
    /// Seconds per raw unit (ns: 1e-9).
    pub multiplier: f64,
}

impl EventConfig {
    /// Bytes of the fixed record (fields with their padding).
    pub fn record_size(&self) -> usize {
        self.fields.iter().fold(0usize, |s, f| s.saturating_add(f.label.size).saturating_add(f.label.padding))
    }
}

/// The name a kernel-side label that is off takes when it is its metric's first label (nothing
/// before it to pad): `__` names are reserved in Prometheus and refused in configs, and
/// `targets::tasks::drop_hidden_labels` removes the column after decoding.
pub const HIDDEN_LABEL: &str = "__ebpfx_off";

/// Target kinds a config may declare under `targets:`.
pub const TARGET_KINDS: &[&str] = &["pid", "tid", "comm", "cgroup", "command"];
/// Labels a config may declare under `kernel_labels:`.
pub const KERNEL_LABELS: &[&str] = &["pid", "cpu", "comm", "cgroup"];

#[derive(Debug, Clone, PartialEq)]
pub struct MetricConfig {
    pub name: String,
    pub help: String,
    pub labels: Vec<Label>,
    pub kind: MetricKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricKind {
    Counter { perf_event_array: bool },
    Gauge,
    Histogram(HistogramSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSpec {
    pub bucket_type: BucketType,
    pub bucket_min: i64,
    pub bucket_max: i64,
    /// `bucket_multiplier`, with 0 (unset) already replaced by 1.
    pub multiplier: f64,
    pub bucket_keys: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub name: String,
    pub size: usize,
    pub padding: usize,
    pub decoders: Vec<DecoderSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecoderSpec {
    pub name: String,
    /// `None` when the key is absent (then `static_map` outputs `empty mapping`, docs/config-format.md#decoders).
    pub static_map: Option<BTreeMap<String, String>>,
    pub allow_unknown: bool,
    pub regexps: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CgroupIdMap {
    pub name: String,
    pub map_type: String,
    pub regexps: Vec<String>,
}

/// Most buckets an `exp2`, `exp2zero` or `linear` histogram may span (`bucket_max - bucket_min
/// + 1`): more is a config mistake, not a histogram worth printing.
pub const MAX_HISTOGRAM_BUCKETS: i64 = 1 << 16;

/// Largest map key (sum of label sizes and paddings) a config may describe, in bytes. The
/// kernel's own limits are far lower; a bigger sum is a typo, and one that overflows is refused
/// before it is used.
pub const MAX_KEY_SIZE: usize = 1 << 16;

/// Decoder names ebpfx knows (docs/config-format.md#decoders).
pub const DECODERS: &[&str] = &[
    "cgroup",
    "dname",
    "duration",
    "errno",
    "hex",
    "ifname",
    "inet_ip",
    "int",
    "kstack",
    "ksym",
    "majorminor",
    "mount_flags",
    "nul_list",
    "open_flags",
    "pci_class",
    "pci_device",
    "pci_subclass",
    "pci_vendor",
    "regexp",
    "result",
    "signal",
    "static_map",
    "string",
    "syscall",
    "tcp_state",
    "uint",
    "ustack",
    "wait_status",
];

impl Config {
    /// Reads and validates `path`; the config is named after the file stem.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let name = config_name(path);
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_err(format!("cannot read config {}: {e}", path.display())))?;
        Config::parse(&name, &path.display().to_string(), &text)
    }

    /// Parses and validates YAML text. `origin` names the file in error messages.
    pub fn parse(name: &str, origin: &str, text: &str) -> anyhow::Result<Config> {
        validate::parse(name, origin, text)
    }

    /// Sum of label sizes and paddings: the key size the map must have.
    pub fn key_size(metric: &MetricConfig) -> usize {
        metric.labels.iter().fold(0usize, |sum, l| sum.saturating_add(l.size).saturating_add(l.padding))
    }

    /// One line for `ebpfx list`: the description, else the first metric's help.
    pub fn summary(&self) -> String {
        if let Some(d) = &self.description {
            return d.lines().next().unwrap_or_default().trim().to_string();
        }
        self.metrics.first().map(|m| m.help.lines().next().unwrap_or_default().trim().to_string()).unwrap_or_default()
    }
}

/// Configs that run together must not define the same metric: their series would share one
/// Prometheus family and one config's samples would hide the other's. Refused (a config error,
/// exit 2) naming both configs and the metric. A histogram `h` also owns `h_bucket`, `h_sum`
/// and `h_count`.
pub fn check_distinct_metrics<'a>(configs: impl IntoIterator<Item = &'a Config>) -> anyhow::Result<()> {
    let mut owners: std::collections::HashMap<String, (&'a Config, &'a str)> = std::collections::HashMap::new();
    for c in configs {
        for m in &c.metrics {
            let mut names = vec![m.name.clone()];
            if let MetricKind::Histogram(_) = m.kind {
                names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{}{s}", m.name)));
            }
            for n in names {
                if let Some((other, other_metric)) = owners.get(&n) {
                    if other.name != c.name {
                        return Err(config_err(format!(
                            "configs {} ({}) and {} ({}) both define metric {n:?} (as {other_metric:?} and {:?}): \
                             ebpfx does not run configs whose metric names clash; run them separately or rename one",
                            other.name, other.origin, c.name, c.origin, m.name
                        )));
                    }
                }
                owners.entry(n).or_insert((c, m.name.as_str()));
            }
        }
    }
    Ok(())
}

/// `DIR/NAME.yaml` → `NAME`.
pub fn config_name(path: &Path) -> String {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    file.strip_suffix(".yaml").or_else(|| file.strip_suffix(".yml")).unwrap_or(&file).to_string()
}

/// Path of the object beside a config file: `DIR/NAME.yaml` → `DIR/NAME.bpf.o`.
pub fn object_path(yaml: &Path) -> PathBuf {
    yaml.with_file_name(format!("{}.bpf.o", config_name(yaml)))
}

/// Whether `s` is a Prometheus metric name (legacy charset).
pub fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `s` is a Prometheus label name (legacy charset, not starting with `__`).
pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    !s.starts_with("__")
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIO: &str = r#"
metrics:
  histograms:
    - name: bio_latency_seconds
      help: Block IO latency histogram
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 27
      bucket_multiplier: 0.000001
      labels:
        - name: device
          size: 4
          decoders:
            - name: majorminor
        - name: operation
          size: 1
          padding: 3
          decoders:
            - name: uint
            - name: static_map
              allow_unknown: yes
              static_map:
                0: read
                1: write
        - name: bucket
          size: 8
          decoders:
            - name: uint
"#;

    #[test]
    fn parses_histogram_config() {
        let c = Config::parse("bio", "bio.yaml", BIO).expect("parses");
        assert_eq!(c.metrics.len(), 1);
        let m = &c.metrics[0];
        assert_eq!(Config::key_size(m), 16);
        let MetricKind::Histogram(h) = &m.kind else { panic!("histogram") };
        assert_eq!(h.bucket_type, BucketType::Exp2);
        assert_eq!(h.bucket_max, 27);
        assert_eq!(h.multiplier, 0.000001);
        let d = &m.labels[1].decoders[1];
        assert!(d.allow_unknown);
        assert_eq!(d.static_map.as_ref().and_then(|s| s.get("1")).map(String::as_str), Some("write"));
    }

    fn err_of(text: &str) -> String {
        format!("{:#}", Config::parse("x", "x.yaml", text).expect_err("must fail"))
    }

    #[test]
    fn rejects_bad_buckets_and_names_the_metric() {
        let e = err_of(&BIO.replace("bucket_max: 27", "bucket_max: -3"));
        assert!(
            e.contains("x.yaml") && e.contains("bio_latency_seconds") && e.contains("bucket_max (-3) < bucket_min (0)"),
            "{e}"
        );
    }

    #[test]
    fn rejects_unknown_decoder() {
        let e = err_of(&BIO.replace("name: majorminor", "name: majorminr"));
        assert!(e.contains("unknown decoder \"majorminr\"") && e.contains("label device"), "{e}");
    }

    #[test]
    fn ustack_needs_an_earlier_pid_label() {
        let stack = "      - name: ustack\n        size: 8\n        decoders: [{name: ustack}]\n";
        let pid = "      - name: pid\n        size: 4\n        padding: 4\n        decoders: [{name: uint}]\n";
        let yaml =
            |labels: &str| format!("metrics:\n  counters:\n  - name: s_total\n    help: h\n    labels:\n{labels}");
        assert!(Config::parse("p", "p.yaml", &yaml(&format!("{pid}{stack}"))).is_ok());
        let e = err_of(&yaml(&format!("{stack}{pid}")));
        assert!(e.contains("decoder ustack") && e.contains("`pid`"), "{e}");
        let e = err_of(&yaml(stack));
        assert!(e.contains("decoder ustack"), "{e}");
    }

    #[test]
    fn rejects_bcc_era_config() {
        let e = err_of("programs:\n  - name: x\n    code: int x;\n    kprobes:\n      a: b\n");
        assert!(e.contains("bcc-era"), "{e}");
    }

    #[test]
    fn requires_metrics_or_tracing() {
        assert!(err_of("kaddrs: [a]\n").contains("neither metrics nor tracing"));
        let ok = Config::parse("t", "t.yaml", "tracing:\n  spans:\n    - ringbuf: x\n").expect("tracing only");
        // Tracing-only: the span runs as an event stream (without a loss counter).
        assert_eq!((ok.tracing_spans, ok.events.len()), (0, 1));
        assert!(ok.events[0].span && ok.events[0].lost_counter.is_none());
        assert_eq!(ok.events[0].ring_buffer, "x");
        assert!(Config::parse("c", "c.yaml", "metrics:\n  counters: []\n").is_ok());
    }

    #[test]
    fn unknown_keys_are_ignored_and_bools_are_yaml11() {
        let c = Config::parse(
            "c",
            "c.yaml",
            "foo: 1\nmetrics:\n  counters:\n    - name: a_total\n      help: h\n      perf_event_array: off\n      whatever: 3\n      labels:\n        - name: x\n          size: 8\n          decoders: [{name: uint}]\n",
        )
        .expect("parses");
        assert_eq!(c.metrics[0].kind, MetricKind::Counter { perf_event_array: false });
    }

    #[test]
    fn rejects_invalid_names() {
        assert!(err_of("metrics:\n  counters:\n    - name: a-b\n      help: h\n")
            .contains("not a valid Prometheus metric name"));
        assert!(err_of("metrics:\n  counters:\n    - name: a\n      help: h\n      labels:\n        - name: __x\n          size: 4\n          decoders: [{name: uint}]\n").contains("label name"));
        assert!(err_of("metrics:\n  counters:\n    - name: a\n").contains("lacks `help`"));
        assert!(err_of("metrics: [").contains("YAML syntax error"));
    }

    #[test]
    fn type_errors_name_the_key_path_line_and_column() {
        let e = err_of(&BIO.replace("size: 8", "size: eight"));
        assert!(e.starts_with("config x.yaml: metrics.histograms[0].labels[2].size: "), "{e}");
        assert!(e.contains("expected a non-negative integer") && e.contains("line 26 column 17"), "{e}");
        let e = err_of(&BIO.replace("allow_unknown: yes", "allow_unknown: maybe"));
        assert!(e.contains("metrics.histograms[0].labels[1].decoders[1].allow_unknown"), "{e}");
        assert!(e.contains("a boolean (true/false, yes/no, on/off, y/n)") && e.contains("line 21"), "{e}");
        let e = err_of(&BIO.replace("bucket_max: 27", "bucket_max: [27]"));
        assert!(e.contains("metrics.histograms[0].bucket_max") && e.contains("line 8"), "{e}");
        let e = err_of(&BIO.replace("size: 4", "size: -4"));
        assert!(e.contains("metrics.histograms[0].labels[0].size") && e.contains("-4"), "{e}");
        assert!(err_of("- a\n- b\n").contains("expected a mapping with `metrics:` at the top level, found a list"));
    }

    #[test]
    fn yaml11_spellings_of_booleans_numbers_and_text() {
        let yaml = |b: &str| {
            format!("metrics:\n  counters:\n    - name: a_total\n      help: 7\n      perf_event_array: {b}\n      labels:\n        - name: x\n          size: 8.9\n          decoders: [{{name: static_map, static_map: {{0: zero, 1.5: x, true: y}}}}]\n")
        };
        for (b, want) in [("y", true), ("On", true), ("YES", true), ("n", false), ("off", false), ("~", false)] {
            let c = Config::parse("c", "c.yaml", &yaml(b)).expect(b);
            assert_eq!(c.metrics[0].kind, MetricKind::Counter { perf_event_array: want }, "{b}");
            assert_eq!(c.metrics[0].help, "7");
            assert_eq!(c.metrics[0].labels[0].size, 8);
            let map = c.metrics[0].labels[0].decoders[0].static_map.clone().expect("map");
            assert_eq!(map.keys().map(String::as_str).collect::<Vec<_>>(), ["0", "1.5", "true"]);
        }
        assert!(err_of(&yaml("sometimes")).contains("perf_event_array"));
        // A static_map key that is present but null is an empty mapping; absent is none.
        let c = Config::parse(
            "c",
            "c.yaml",
            &BIO.replace(
                "              static_map:\n                0: read\n                1: write\n",
                "              static_map:\n",
            ),
        )
        .expect("null map");
        assert_eq!(c.metrics[0].labels[1].decoders[1].static_map, Some(BTreeMap::new()));
        assert_eq!(c.metrics[0].labels[0].decoders[0].static_map, None);
    }

    #[test]
    fn negative_bucket_min_is_accepted() {
        let c = Config::parse("b", "b.yaml", &BIO.replace("bucket_min: 0", "bucket_min: -2")).expect("parses");
        let MetricKind::Histogram(h) = &c.metrics[0].kind else { panic!("histogram") };
        assert_eq!(h.bucket_min, -2);
    }

    #[test]
    fn absurd_bucket_spans_and_key_sizes_are_refused_naming_the_key() {
        let linear = BIO.replace("bucket_type: exp2", "bucket_type: linear");
        let e = err_of(&linear.replace("bucket_max: 27", "bucket_max: 100000000"));
        assert!(e.contains("x.yaml") && e.contains("histogram bio_latency_seconds"), "{e}");
        assert!(e.contains("[bucket_min .. bucket_max] = [0 .. 100000000] spans 100000001 buckets"), "{e}");
        let e = err_of(&linear.replace("bucket_min: 0", "bucket_min: -9223372036854775808"));
        assert!(e.contains("spans 9223372036854775836 buckets"), "{e}");
        assert!(Config::parse("x", "x.yaml", &linear.replace("bucket_max: 27", "bucket_max: 65535")).is_ok());
        // Sizes whose sum overflows, and sizes beyond any map key.
        let e = err_of(&BIO.replace("size: 8", "size: 18446744073709551615"));
        assert!(e.contains("label bucket: size 18446744073709551615 is larger than a map key can be"), "{e}");
        let e = err_of(&BIO.replace("size: 8", "size: 65000").replace("size: 4", "size: 1000"));
        assert!(
            e.contains("histogram bio_latency_seconds: labels: the sizes and paddings up to label \"bucket\""),
            "{e}"
        );
        let e = err_of(&BIO.replace("padding: 3", "padding: 1e30"));
        assert!(e.contains("label operation: padding"), "{e}");
    }

    #[test]
    fn a_metric_name_in_two_configs_is_refused_naming_both() {
        let a = Config::parse("a", "dir/a.yaml", BIO).expect("a");
        let b = Config::parse("b", "dir/b.yaml", BIO).expect("b");
        let err = check_distinct_metrics([&a, &b]).expect_err("clash");
        assert!(err.downcast_ref::<crate::error::ConfigError>().is_some(), "exit 2");
        let e = format!("{err:#}");
        assert!(
            e.contains("configs a (dir/a.yaml) and b (dir/b.yaml) both define metric \"bio_latency_seconds\""),
            "{e}"
        );
        let counter = "metrics:\n  counters:\n    - name: bio_latency_seconds_count\n      help: h\n";
        let c = Config::parse("c", "c.yaml", counter).expect("c");
        assert!(check_distinct_metrics([&a, &c]).is_err());
        let other = Config::parse("d", "d.yaml", &BIO.replace("bio_latency_seconds", "other_seconds")).expect("d");
        assert!(check_distinct_metrics([&a, &other]).is_ok());
    }

    const EVENTS: &str = r#"
events:
  - name: opens
    ring_buffer: events
    lost_counter: events_lost
    ring_size: 8192
    fields:
      - {name: time, size: 8, role: timestamp, hidden: true, decoders: [{name: uint}]}
      - {name: comm, size: 16, decoders: [{name: string}]}
      - {name: ret, size: 4, decoders: [{name: result}]}
      - {name: path_len, size: 4, hidden: true, decoders: [{name: uint}]}
      - {name: path, size: 256, length: path_len, decoders: [{name: string}]}
    labels: [comm]
    latency: {field: time, unit: us}
"#;

    #[test]
    fn parses_events() {
        let c = Config::parse("o", "o.yaml", EVENTS).expect("parses");
        assert!(c.metrics.is_empty());
        let e = &c.events[0];
        assert_eq!((e.ring_size, e.record_size(), e.labels.clone()), (8192, 288, vec![1]));
        assert_eq!(e.fields[4].length, Some(3));
        assert_eq!(e.fields[4].offset, 32);
        assert!(e.fields[0].timestamp && e.fields[4].long() && !e.fields[1].long());
        assert_eq!(e.latency.as_ref().map(|l| (l.field, l.multiplier)), Some((0, 1e-6)));
        assert_eq!(e.help, "Events of opens");
    }

    #[test]
    fn event_mistakes_are_refused_naming_the_key() {
        let e = err_of(&EVENTS.replace("length: path_len", "length: nosuch"));
        assert!(e.contains("o.yaml") || e.contains("x.yaml"), "{e}");
        assert!(e.contains("events[0] (opens): field path: length \"nosuch\" must name an earlier field"), "{e}");
        let e = err_of(&EVENTS.replace("labels: [comm]", "labels: [cmd]"));
        assert!(e.contains("labels: \"cmd\" is not a field"), "{e}");
        let e = err_of(&EVENTS.replace("ring_size: 8192", "ring_size: 6000"));
        assert!(e.contains("ring_size 6000: must be a power of two"), "{e}");
        let e = err_of(&EVENTS.replace("name: result", "name: rezult"));
        assert!(e.contains("unknown decoder \"rezult\""), "{e}");
        let e = err_of(&EVENTS.replace("unit: us", "unit: hours"));
        assert!(e.contains("latency.unit \"hours\""), "{e}");
        let e = err_of(&EVENTS.replace("    ring_buffer: events\n", ""));
        assert!(e.contains("`ring_buffer` is missing"), "{e}");
        let e = err_of(&EVENTS.replace("role: timestamp", "role: clock"));
        assert!(e.contains("role \"clock\" is unknown"), "{e}");
    }
}
