//! ebpf_exporter's YAML config format (spec §2–3): parsing and validation.
//!
//! Parsing goes through `serde_yaml::Value` by hand rather than derive, for two reasons: the
//! format is YAML 1.1-flavoured (`yes`/`on` booleans, scalar keys taken as their source text),
//! and every error must name the file, the metric and the key. Everything is validated here,
//! before any BPF is loaded.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

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
    /// from `--probe` (the config's programs attach to them; see `probe.rs`).
    pub probe_label: Option<String>,
    /// ebpfx extension (`targets:`): the task selections the object implements through
    /// bpf/target.bpf.h: `pid`, `tid`, `comm`, `cgroup`, `command` (see `targets.rs`).
    pub targets: Vec<String>,
    /// ebpfx extension (`kernel_labels:`): labels the kernel fills only when `--by` asks for
    /// them (`pid`, `cpu`, `comm`, `cgroup`); unasked, their bytes are zero and read as padding.
    pub kernel_labels: Vec<String>,
    /// Which of `kernel_labels` the run asked for (`kernel_labels_on:`, written by ebpfx into the
    /// YAML of a run and of its saved snapshot); the others are folded into padding at parse time.
    pub kernel_labels_on: Vec<String>,
}

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
    /// `None` when the key is absent (then `static_map` outputs `empty mapping`, spec Q11).
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

/// Decoder names ebpfx knows (spec §7).
pub const DECODERS: &[&str] = &[
    "cgroup",
    "dname",
    "errno",
    "hex",
    "ifname",
    "inet_ip",
    "kstack",
    "ksym",
    "majorminor",
    "pci_class",
    "pci_device",
    "pci_subclass",
    "pci_vendor",
    "regexp",
    "static_map",
    "string",
    "syscall",
    "uint",
    "ustack",
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
        let p = Parser { origin };
        p.config(name, text)
    }

    /// Sum of label sizes and paddings: the key size the map must have.
    pub fn key_size(metric: &MetricConfig) -> usize {
        metric.labels.iter().map(|l| l.size + l.padding).sum()
    }

    /// One line for `ebpfx list`: the description, else the first metric's help.
    pub fn summary(&self) -> String {
        if let Some(d) = &self.description {
            return d.lines().next().unwrap_or_default().trim().to_string();
        }
        self.metrics.first().map(|m| m.help.lines().next().unwrap_or_default().trim().to_string()).unwrap_or_default()
    }
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

struct Parser<'a> {
    origin: &'a str,
}

type Res<T> = anyhow::Result<T>;

impl Parser<'_> {
    fn err(&self, msg: impl AsRef<str>) -> anyhow::Error {
        config_err(format!("config {}: {}", self.origin, msg.as_ref()))
    }

    fn config(&self, name: &str, text: &str) -> Res<Config> {
        if text.trim().is_empty() {
            return Err(self.err("the file is empty (expected a YAML mapping with `metrics:`)"));
        }
        let doc = serde_yaml::Deserializer::from_str(text)
            .next()
            .ok_or_else(|| self.err("the file holds no YAML document"))?;
        let root: Value =
            serde::Deserialize::deserialize(doc).map_err(|e| self.err(format!("YAML syntax error: {e}")))?;
        let root = match root {
            Value::Mapping(m) => m,
            Value::Null => return Err(self.err("the file holds no YAML mapping")),
            other => {
                return Err(
                    self.err(format!("expected a mapping with `metrics:` at the top level, found {}", kind_of(&other)))
                )
            }
        };
        self.reject_bcc_era(&root)?;

        let mut cfg = Config {
            name: name.to_string(),
            origin: self.origin.to_string(),
            description: None,
            metrics: Vec::new(),
            kaddrs: Vec::new(),
            cgroup_id_map: None,
            tracing_spans: 0,
            probe_label: None,
            targets: Vec::new(),
            kernel_labels: Vec::new(),
            kernel_labels_on: Vec::new(),
        };
        if let Some(v) = get(&root, "description") {
            cfg.description = self.opt_string(v, "description")?;
        }
        if let Some(v) = get(&root, "probe_label") {
            cfg.probe_label = self.opt_string(v, "probe_label")?.filter(|s| !s.is_empty());
        }
        cfg.targets = self.names(&root, "targets", TARGET_KINDS)?;
        cfg.kernel_labels = self.names(&root, "kernel_labels", KERNEL_LABELS)?;
        cfg.kernel_labels_on = self.names(&root, "kernel_labels_on", KERNEL_LABELS)?;
        let mut any_section = false;
        if let Some(metrics) = get(&root, "metrics") {
            let metrics = match metrics {
                Value::Mapping(m) => m.clone(),
                Value::Null => Default::default(),
                other => return Err(self.err(format!("`metrics` must be a mapping, found {}", kind_of(other)))),
            };
            for (section, kind) in [("counters", 0), ("histograms", 1), ("gauges", 2)] {
                let Some(list) = get(&metrics, section) else {
                    continue;
                };
                if !list.is_null() {
                    any_section = true;
                }
                for (i, item) in self.list(list, &format!("metrics.{section}"))?.iter().enumerate() {
                    cfg.metrics.push(self.metric(item, section, i, kind)?);
                }
            }
        }
        if let Some(k) = get(&root, "kaddrs") {
            for (i, v) in self.list(k, "kaddrs")?.iter().enumerate() {
                let s = self.string(v, &format!("kaddrs[{i}]"))?;
                if s.is_empty() {
                    return Err(self.err(format!("kaddrs[{i}] is empty")));
                }
                cfg.kaddrs.push(s);
            }
        }
        if let Some(c) = get(&root, "cgroup_id_map") {
            if let Value::Mapping(m) = c {
                let name = match get(m, "name") {
                    Some(v) => self.opt_string(v, "cgroup_id_map.name")?.unwrap_or_default(),
                    None => String::new(),
                };
                if !name.is_empty() {
                    let map_type = match get(m, "type") {
                        Some(v) => self.opt_string(v, "cgroup_id_map.type")?.unwrap_or_default(),
                        None => String::new(),
                    };
                    let map_type = if map_type.is_empty() { "hash".to_string() } else { map_type };
                    if map_type != "hash" && map_type != "cgrp_storage" {
                        return Err(self.err(format!(
                            "cgroup_id_map.type: unknown type {map_type:?} (expected `hash` or `cgrp_storage`)"
                        )));
                    }
                    let mut regexps = Vec::new();
                    if let Some(r) = get(m, "regexps") {
                        for (i, v) in self.list(r, "cgroup_id_map.regexps")?.iter().enumerate() {
                            let s = self.string(v, &format!("cgroup_id_map.regexps[{i}]"))?;
                            regex::Regex::new(&s).map_err(|e| {
                                self.err(format!("cgroup_id_map.regexps[{i}]: invalid regular expression: {e}"))
                            })?;
                            regexps.push(s);
                        }
                    }
                    cfg.cgroup_id_map = Some(CgroupIdMap { name, map_type, regexps });
                }
            } else if !c.is_null() {
                return Err(self.err("`cgroup_id_map` must be a mapping"));
            }
        }
        if let Some(Value::Mapping(t)) = get(&root, "tracing") {
            if let Some(spans) = get(t, "spans") {
                if !spans.is_null() {
                    any_section = true;
                }
                cfg.tracing_spans = self.list(spans, "tracing.spans")?.len();
            }
        }
        if !any_section {
            return Err(self.err(
                "neither metrics nor tracing are defined (expected `metrics:` with `counters:`, `histograms:` or `gauges:`)",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for m in &cfg.metrics {
            if !seen.insert(m.name.as_str()) {
                return Err(self.err(format!("metric {:?} is defined twice", m.name)));
            }
        }
        if let Some(label) = &cfg.probe_label {
            let holds = |l: &Label| &l.name == label && l.decoders.iter().any(|d| d.name == "static_map");
            if !cfg.metrics.iter().any(|m| m.labels.iter().any(holds)) {
                return Err(self.err(format!(
                    "probe_label {label:?}: no metric has a label {label:?} with a static_map decoder (ebpfx writes the --probe function names there)"
                )));
            }
        }
        self.fold_kernel_labels(&mut cfg)?;
        Ok(cfg)
    }

    /// A list of names from `allowed` under top-level `key` (absent: empty).
    fn names(&self, root: &serde_yaml::Mapping, key: &str, allowed: &[&str]) -> Res<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let Some(v) = get(root, key) else {
            return Ok(out);
        };
        for (i, item) in self.list(v, key)?.iter().enumerate() {
            let s = self.string(item, &format!("{key}[{i}]"))?;
            if !allowed.contains(&s.as_str()) {
                return Err(self.err(format!("{key}[{i}]: unknown name {s:?} (one of {})", allowed.join(", "))));
            }
            if !out.contains(&s) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Kernel-side labels not switched on are zero in every key: their bytes join the padding
    /// of the label before them, so they neither show nor split series.
    fn fold_kernel_labels(&self, cfg: &mut Config) -> Res<()> {
        for on in &cfg.kernel_labels_on {
            if !cfg.kernel_labels.contains(on) {
                return Err(self.err(format!("kernel_labels_on: {on:?} is not listed in kernel_labels")));
            }
        }
        for name in &cfg.kernel_labels {
            if !cfg.metrics.iter().any(|m| m.labels.iter().any(|l| &l.name == name)) {
                return Err(self.err(format!("kernel_labels: no metric has a label {name:?}")));
            }
        }
        let off: Vec<String> =
            cfg.kernel_labels.iter().filter(|l| !cfg.kernel_labels_on.contains(l)).cloned().collect();
        for m in &mut cfg.metrics {
            if m.labels.first().is_some_and(|l| cfg.kernel_labels.contains(&l.name)) {
                return Err(self.err(format!(
                    "metric {}: kernel label {:?} cannot be the first label (its bytes join the padding of the label before it)",
                    m.name, m.labels[0].name
                )));
            }
            let mut kept: Vec<Label> = Vec::with_capacity(m.labels.len());
            for l in m.labels.drain(..) {
                match kept.last_mut() {
                    Some(prev) if off.contains(&l.name) => prev.padding += l.size + l.padding,
                    _ => kept.push(l),
                }
            }
            m.labels = kept;
        }
        Ok(())
    }

    /// bcc-era configs (`programs:` with inline `code:`) look nothing like the current format.
    fn reject_bcc_era(&self, root: &serde_yaml::Mapping) -> Res<()> {
        let has_programs = get(root, "programs").is_some();
        let has_old = has_programs
            || matches!(get(root, "metrics"), Some(Value::Mapping(m)) if m.values().any(|v| {
                matches!(v, Value::Sequence(s) if s.iter().any(|i| matches!(i, Value::Mapping(im) if get(im, "table").is_some())))
            }));
        if has_old {
            return Err(self.err(
                "this is a bcc-era ebpf_exporter config (`programs:` with inline C `code:`, `kprobes:`, \
                 `table:`). ebpfx runs the current format: a compiled CO-RE object NAME.bpf.o beside \
                 NAME.yaml, whose metrics name the BPF maps directly (map name = metric name, no `table:`), \
                 with the C moved into NAME.bpf.c and compiled with clang -target bpf",
            ));
        }
        Ok(())
    }

    fn metric(&self, item: &Value, section: &str, index: usize, kind: u8) -> Res<MetricConfig> {
        let what = &section[..section.len() - 1]; // counter / histogram / gauge
        let m = match item {
            Value::Mapping(m) => m,
            other => {
                return Err(self.err(format!("metrics.{section}[{index}] must be a mapping, found {}", kind_of(other))))
            }
        };
        let name = match get(m, "name") {
            Some(v) => self.opt_string(v, &format!("metrics.{section}[{index}].name"))?.unwrap_or_default(),
            None => String::new(),
        };
        if name.is_empty() {
            return Err(self.err(format!("{what} #{} (metrics.{section}[{index}]) lacks `name`", index + 1)));
        }
        let here = format!("{what} {name}");
        if !valid_metric_name(&name) {
            return Err(self.err(format!(
                "{here}: `name` {name:?} is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
            )));
        }
        let help = match get(m, "help") {
            Some(v) => self.opt_string(v, &format!("{here}: help"))?.unwrap_or_default(),
            None => String::new(),
        };
        if help.is_empty() {
            return Err(self.err(format!("{here} lacks `help`")));
        }
        let mut labels = Vec::new();
        if let Some(l) = get(m, "labels") {
            for (i, lv) in self.list(l, &format!("{here}: labels"))?.iter().enumerate() {
                labels.push(self.label(lv, &here, i)?);
            }
        }
        let kind = match kind {
            0 => MetricKind::Counter {
                perf_event_array: match get(m, "perf_event_array") {
                    Some(v) => self.boolean(v, &format!("{here}: perf_event_array"))?,
                    None => false,
                },
            },
            2 => MetricKind::Gauge,
            _ => MetricKind::Histogram(self.histogram(m, &here, &labels)?),
        };
        // Names that would break the output: empty, `__` prefix, duplicates, `le` on histograms.
        let mut names = std::collections::HashSet::new();
        let prom_labels: &[Label] = match kind {
            MetricKind::Histogram(_) => &labels[..labels.len().saturating_sub(1)],
            _ => &labels,
        };
        for l in prom_labels {
            if l.name.is_empty() {
                return Err(self.err(format!("{here}: a label lacks `name`")));
            }
            if !valid_label_name(&l.name) {
                return Err(self.err(format!(
                    "{here}: label name {:?} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)",
                    l.name
                )));
            }
            if !names.insert(l.name.as_str()) {
                return Err(self.err(format!("{here}: label {:?} appears twice", l.name)));
            }
            if l.decoders.iter().any(|d| d.name == "ustack") && !names.contains("pid") {
                return Err(self.err(format!(
                    "{here}: label {:?}: decoder ustack symbolizes addresses of the process named by a label `pid` (decoded as a number), which must come before it",
                    l.name
                )));
            }
            if matches!(kind, MetricKind::Histogram(_)) && l.name == "le" {
                return Err(self.err(format!(
                    "{here}: a histogram label cannot be named `le` (Prometheus uses it for bucket bounds)"
                )));
            }
        }
        Ok(MetricConfig { name, help, labels, kind })
    }

    fn histogram(&self, m: &serde_yaml::Mapping, here: &str, labels: &[Label]) -> Res<HistogramSpec> {
        if labels.is_empty() {
            return Err(
                self.err(format!("{here}: a histogram needs at least one label (the last label is the bucket index)"))
            );
        }
        let bt = match get(m, "bucket_type") {
            Some(v) => self.opt_string(v, &format!("{here}: bucket_type"))?.unwrap_or_default(),
            None => String::new(),
        };
        let bucket_type = match bt.as_str() {
            "exp2" => BucketType::Exp2,
            "exp2zero" => BucketType::Exp2Zero,
            "linear" => BucketType::Linear,
            "fixed" => BucketType::Fixed,
            "" => return Err(self.err(format!("{here}: bucket_type is missing (exp2, exp2zero, linear or fixed)"))),
            other => {
                return Err(self.err(format!(
                    "{here}: bucket_type {other:?} is unknown (expected exp2, exp2zero, linear or fixed)"
                )))
            }
        };
        let int = |key: &str| -> Res<i64> {
            match get(m, key) {
                None | Some(Value::Null) => Ok(0),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.trunc() as i64))
                    .ok_or_else(|| self.err(format!("{here}: {key} must be an integer"))),
                Some(other) => Err(self.err(format!("{here}: {key} must be an integer, found {}", kind_of(other)))),
            }
        };
        let bucket_min = int("bucket_min")?;
        let bucket_max = int("bucket_max")?;
        let multiplier = match get(m, "bucket_multiplier") {
            None | Some(Value::Null) => 0.0,
            Some(v) => self.float(v, &format!("{here}: bucket_multiplier"))?,
        };
        let multiplier = if multiplier == 0.0 { 1.0 } else { multiplier };
        let mut bucket_keys = Vec::new();
        if let Some(k) = get(m, "bucket_keys") {
            for (i, v) in self.list(k, &format!("{here}: bucket_keys"))?.iter().enumerate() {
                bucket_keys.push(self.float(v, &format!("{here}: bucket_keys[{i}]"))?);
            }
        }
        match bucket_type {
            BucketType::Fixed => {
                if bucket_keys.is_empty() {
                    return Err(self.err(format!("{here}: bucket_type fixed needs a non-empty `bucket_keys` list")));
                }
            }
            _ => {
                if bucket_max < bucket_min {
                    return Err(self.err(format!("{here}: bucket_max ({bucket_max}) < bucket_min ({bucket_min})")));
                }
                if bucket_max == bucket_min {
                    return Err(self.err(format!(
                        "{here}: histogram buckets have zero size: [bucket_min .. bucket_max] = [{bucket_min} .. {bucket_max}] (set bucket_max above bucket_min)"
                    )));
                }
                if bucket_min < 0 {
                    return Err(self.err(format!("{here}: bucket_min ({bucket_min}) must not be negative")));
                }
                if matches!(bucket_type, BucketType::Exp2 | BucketType::Exp2Zero) && bucket_max > 1023 {
                    return Err(self.err(format!("{here}: bucket_max ({bucket_max}) is too large for {bt}")));
                }
            }
        }
        Ok(HistogramSpec { bucket_type, bucket_min, bucket_max, multiplier, bucket_keys })
    }

    fn label(&self, v: &Value, here: &str, index: usize) -> Res<Label> {
        let m = match v {
            Value::Mapping(m) => m,
            other => {
                return Err(self.err(format!("{here}: labels[{index}] must be a mapping, found {}", kind_of(other))))
            }
        };
        let name = match get(m, "name") {
            Some(v) => self.opt_string(v, &format!("{here}: labels[{index}].name"))?.unwrap_or_default(),
            None => String::new(),
        };
        let lhere = if name.is_empty() { format!("{here}: labels[{index}]") } else { format!("{here}: label {name}") };
        let size = self.unsigned(get(m, "size"), &format!("{lhere}: size"))?;
        if size == 0 {
            return Err(self.err(format!("{lhere}: size is zero or not set (the number of key bytes for this label)")));
        }
        let padding = self.unsigned(get(m, "padding"), &format!("{lhere}: padding"))?;
        let mut decoders = Vec::new();
        if let Some(d) = get(m, "decoders") {
            for (i, dv) in self.list(d, &format!("{lhere}: decoders"))?.iter().enumerate() {
                decoders.push(self.decoder(dv, &lhere, i)?);
            }
        }
        if decoders.is_empty() {
            return Err(self.err(format!("{lhere}: no decoders set (add e.g. `decoders: [{{name: uint}}]`)")));
        }
        Ok(Label { name, size, padding, decoders })
    }

    fn decoder(&self, v: &Value, lhere: &str, index: usize) -> Res<DecoderSpec> {
        let m = match v {
            Value::Mapping(m) => m,
            other => {
                return Err(self.err(format!("{lhere}: decoders[{index}] must be a mapping, found {}", kind_of(other))))
            }
        };
        let name = match get(m, "name") {
            Some(v) => self.opt_string(v, &format!("{lhere}: decoders[{index}].name"))?.unwrap_or_default(),
            None => String::new(),
        };
        if name.is_empty() {
            return Err(self.err(format!("{lhere}: decoders[{index}] lacks `name`")));
        }
        if !DECODERS.contains(&name.as_str()) {
            return Err(self.err(format!("{lhere}: unknown decoder {name:?} (known: {})", DECODERS.join(", "))));
        }
        let dhere = format!("{lhere}: decoder {name}");
        let static_map = match get(m, "static_map") {
            None => None,
            Some(Value::Null) => Some(BTreeMap::new()),
            Some(Value::Mapping(sm)) => {
                let mut out = BTreeMap::new();
                for (k, v) in sm {
                    let key =
                        scalar_text(k).ok_or_else(|| self.err(format!("{dhere}: static_map keys must be scalars")))?;
                    let val = scalar_text(v)
                        .ok_or_else(|| self.err(format!("{dhere}: static_map value for {key:?} must be a scalar")))?;
                    out.insert(key, val);
                }
                Some(out)
            }
            Some(other) => {
                return Err(self.err(format!("{dhere}: static_map must be a mapping, found {}", kind_of(other))))
            }
        };
        let allow_unknown = match get(m, "allow_unknown") {
            Some(v) => self.boolean(v, &format!("{dhere}: allow_unknown"))?,
            None => false,
        };
        let regexps = match get(m, "regexps") {
            None | Some(Value::Null) => None,
            Some(r) => {
                let mut out = Vec::new();
                for (i, v) in self.list(r, &format!("{dhere}: regexps"))?.iter().enumerate() {
                    let s = self.string(v, &format!("{dhere}: regexps[{i}]"))?;
                    regex::Regex::new(&s).map_err(|e| {
                        self.err(format!("{dhere}: regexps[{i}] is not a valid regular expression: {e}"))
                    })?;
                    out.push(s);
                }
                Some(out)
            }
        };
        if name == "regexp" && regexps.is_none() {
            return Err(self.err(format!("{dhere}: needs a `regexps` list")));
        }
        Ok(DecoderSpec { name, static_map, allow_unknown, regexps })
    }

    fn list(&self, v: &Value, what: &str) -> Res<Vec<Value>> {
        match v {
            Value::Sequence(s) => Ok(s.clone()),
            Value::Null => Ok(Vec::new()),
            other => Err(self.err(format!("{what} must be a list, found {}", kind_of(other)))),
        }
    }

    fn string(&self, v: &Value, what: &str) -> Res<String> {
        self.opt_string(v, what)?.ok_or_else(|| self.err(format!("{what} must not be empty")))
    }

    fn opt_string(&self, v: &Value, what: &str) -> Res<Option<String>> {
        match v {
            Value::Null => Ok(None),
            Value::Mapping(_) | Value::Sequence(_) => {
                Err(self.err(format!("{what} must be a string, found {}", kind_of(v))))
            }
            other => Ok(scalar_text(other)),
        }
    }

    fn boolean(&self, v: &Value, what: &str) -> Res<bool> {
        match v {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(*b),
            // YAML 1.1 spellings, as go-yaml v2 accepts them.
            Value::String(s) => match s.as_str() {
                "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Ok(true),
                "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Ok(false),
                _ => Err(self.err(format!("{what} must be a boolean, found {s:?}"))),
            },
            other => Err(self.err(format!("{what} must be a boolean, found {}", kind_of(other)))),
        }
    }

    fn unsigned(&self, v: Option<&Value>, what: &str) -> Res<usize> {
        match v {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) => {
                if let Some(u) = n.as_u64() {
                    return Ok(u as usize);
                }
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 => Ok(f.trunc() as usize),
                    _ => Err(self.err(format!("{what} must be a non-negative integer, found {n}"))),
                }
            }
            Some(other) => Err(self.err(format!("{what} must be a non-negative integer, found {}", kind_of(other)))),
        }
    }

    fn float(&self, v: &Value, what: &str) -> Res<f64> {
        match v {
            Value::Number(n) => n.as_f64().ok_or_else(|| self.err(format!("{what} must be a number"))),
            Value::String(s) => match s.as_str() {
                ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Ok(f64::INFINITY),
                "-.inf" | "-.Inf" | "-.INF" => Ok(f64::NEG_INFINITY),
                ".nan" | ".NaN" | ".NAN" => Ok(f64::NAN),
                _ => Err(self.err(format!("{what} must be a number, found the string {s:?}"))),
            },
            other => Err(self.err(format!("{what} must be a number, found {}", kind_of(other)))),
        }
    }
}

fn get<'m>(m: &'m serde_yaml::Mapping, key: &str) -> Option<&'m Value> {
    m.get(Value::String(key.to_string()))
}

/// A scalar as the text a string-typed field receives (spec §2.1: `0:` → "0", `yes` → "yes").
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar_text(&t.value),
        Value::Null | Value::Sequence(_) | Value::Mapping(_) => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

pub fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

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
        assert_eq!(ok.tracing_spans, 1);
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
}
