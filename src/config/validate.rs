//! From the parsed file (`schema.rs`) to a checked [`Config`]: what the values mean, checked
//! before any BPF is loaded (docs/config-format.md#validation-and-limits). Every error names
//! the file, the metric, the label and the key.
use std::collections::HashSet;

use serde::Deserialize;
use serde_yaml::Value;

use super::schema;
use super::{
    valid_label_name, valid_metric_name, CgroupIdMap, Config, DecoderSpec, EventConfig, EventField, EventLatency,
    HistogramSpec, Label, MetricConfig, MetricKind, DECODERS, MAX_HISTOGRAM_BUCKETS, MAX_KEY_SIZE,
};
use crate::error::config_err;
use crate::model::BucketType;

type Res<T> = anyhow::Result<T>;

/// The three metric lists, and the kind each gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Counters,
    Histograms,
    Gauges,
}

impl Section {
    /// Singular, as errors name a metric: `histogram bio_latency_seconds`.
    fn what(self) -> &'static str {
        match self {
            Section::Counters => "counter",
            Section::Histograms => "histogram",
            Section::Gauges => "gauge",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Section::Counters => "counters",
            Section::Histograms => "histograms",
            Section::Gauges => "gauges",
        }
    }
}

struct Checker<'a> {
    origin: &'a str,
}

/// Parses and checks `text`; `origin` names the file in errors.
pub(super) fn parse(name: &str, origin: &str, text: &str) -> Res<Config> {
    let c = Checker { origin };
    if text.trim().is_empty() {
        return Err(c.err("the file is empty (expected a YAML mapping with `metrics:`)"));
    }
    // The shape of the document first: syntax errors, a document that is not a mapping, and
    // the bcc-era format get their own explanations before the typed parse.
    let first = || serde_yaml::Deserializer::from_str(text).next();
    let doc = first().ok_or_else(|| c.err("the file holds no YAML document"))?;
    let root = Value::deserialize(doc).map_err(|e| c.err(format!("YAML syntax error: {e}")))?;
    match &root {
        Value::Mapping(m) => c.reject_bcc_era(m)?,
        Value::Null => return Err(c.err("the file holds no YAML mapping")),
        other => {
            return Err(c.err(format!("expected a mapping with `metrics:` at the top level, found {}", kind_of(other))))
        }
    }
    let doc = first().ok_or_else(|| c.err("the file holds no YAML document"))?;
    // serde_yaml's message holds the key path, line and column.
    let file = schema::File::deserialize(doc).map_err(|e| c.err(e.to_string()))?;
    c.config(name, file)
}

impl Checker<'_> {
    fn err(&self, msg: impl AsRef<str>) -> anyhow::Error {
        config_err(format!("config {}: {}", self.origin, msg.as_ref()))
    }

    fn config(&self, name: &str, file: schema::File) -> Res<Config> {
        let mut cfg = Config {
            name: name.to_string(),
            origin: self.origin.to_string(),
            description: text(file.description),
            metrics: Vec::new(),
            kaddrs: Vec::new(),
            cgroup_id_map: None,
            tracing_spans: 0,
            probe_label: text(file.probe_label),
            targets: self.names("targets", file.targets, super::TARGET_KINDS)?,
            kernel_labels: self.names("kernel_labels", file.kernel_labels, super::KERNEL_LABELS)?,
            kernel_labels_on: self.names("kernel_labels_on", file.kernel_labels_on, super::KERNEL_LABELS)?,
            events: Vec::new(),
        };
        let mut any_section = false;
        if let Some(metrics) = file.metrics {
            for (section, list) in [
                (Section::Counters, metrics.counters),
                (Section::Histograms, metrics.histograms),
                (Section::Gauges, metrics.gauges),
            ] {
                let Some(list) = list else { continue };
                any_section = true;
                for (i, m) in list.into_iter().enumerate() {
                    cfg.metrics.push(self.metric(m, section, i)?);
                }
            }
        }
        for (i, k) in file.kaddrs.into_iter().enumerate() {
            if k.0.is_empty() {
                return Err(self.err(format!("kaddrs[{i}] is empty")));
            }
            cfg.kaddrs.push(k.0);
        }
        if let Some(map) = file.cgroup_id_map {
            cfg.cgroup_id_map = self.cgroup_id_map(map)?;
        }
        if let Some(spans) = file.tracing.and_then(|t| t.spans) {
            any_section = true;
            cfg.tracing_spans = spans.len();
            // A tracing-only config runs its spans as event streams; beside metrics they stay a
            // note (one run prints either lines or a window's numbers).
            if cfg.metrics.is_empty() && !spans.is_empty() {
                for (i, s) in spans.into_iter().enumerate() {
                    cfg.events.push(self.span(s, i)?);
                }
                cfg.tracing_spans = 0;
            }
        }
        if let Some(events) = file.events {
            any_section = true;
            for (i, e) in events.into_iter().enumerate() {
                cfg.events.push(self.event(e, i)?);
            }
            let mut seen = HashSet::new();
            for e in &cfg.events {
                if !seen.insert(e.name.as_str()) {
                    return Err(self.err(format!("events: {:?} is defined twice", e.name)));
                }
            }
        }
        if !any_section {
            return Err(self.err(
                "neither metrics nor tracing are defined (expected `metrics:` with `counters:`, `histograms:` or `gauges:`, or ebpfx's `events:`)",
            ));
        }
        let mut seen = HashSet::new();
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

    /// Names from `allowed`, each once, in order.
    fn names(&self, key: &str, list: Vec<schema::Text>, allowed: &[&str]) -> Res<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for (i, item) in list.into_iter().enumerate() {
            let s = item.0;
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
            // Off labels at the end of the key are cut off the key itself: the loader sizes the
            // map's key to the labels (loader::tasks::prepare_object), so a run without --by hashes
            // and compares no zero bytes.
            while m.labels.len() > 1 && m.labels.last().is_some_and(|l| off.contains(&l.name)) {
                m.labels.pop();
            }
            let mut kept: Vec<Label> = Vec::with_capacity(m.labels.len());
            for mut l in m.labels.drain(..) {
                match kept.last_mut() {
                    Some(prev) if off.contains(&l.name) => prev.padding += l.size + l.padding,
                    // A first label that is off has nothing before it to pad: it stays, under
                    // a name no config can use, and is dropped after decoding (every key holds
                    // zero there, so no series merge).
                    None if off.contains(&l.name) => {
                        l.name = super::HIDDEN_LABEL.to_string();
                        kept.push(l);
                    }
                    _ => kept.push(l),
                }
            }
            m.labels = kept;
        }
        Ok(())
    }

    /// bcc-era configs (`programs:` with inline `code:`) look nothing like the current format.
    fn reject_bcc_era(&self, root: &serde_yaml::Mapping) -> Res<()> {
        let get = |m: &serde_yaml::Mapping, key: &str| m.get(Value::String(key.to_string())).is_some();
        let has_old = get(root, "programs")
            || matches!(root.get(Value::String("metrics".into())), Some(Value::Mapping(m)) if m.values().any(|v| {
                matches!(v, Value::Sequence(s) if s.iter().any(|i| matches!(i, Value::Mapping(im) if get(im, "table"))))
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

    fn cgroup_id_map(&self, m: schema::CgroupIdMap) -> Res<Option<CgroupIdMap>> {
        let name = text(m.name).unwrap_or_default();
        if name.is_empty() {
            return Ok(None);
        }
        let map_type = text(m.map_type).unwrap_or_else(|| "hash".to_string());
        if map_type != "hash" && map_type != "cgrp_storage" {
            return Err(
                self.err(format!("cgroup_id_map.type: unknown type {map_type:?} (expected `hash` or `cgrp_storage`)"))
            );
        }
        let mut regexps = Vec::new();
        for (i, r) in m.regexps.into_iter().enumerate() {
            if r.0.is_empty() {
                return Err(self.err(format!("cgroup_id_map.regexps[{i}] must not be empty")));
            }
            regex::Regex::new(&r.0)
                .map_err(|e| self.err(format!("cgroup_id_map.regexps[{i}]: invalid regular expression: {e}")))?;
            regexps.push(r.0);
        }
        Ok(Some(CgroupIdMap { name, map_type, regexps }))
    }

    fn metric(&self, m: schema::Metric, section: Section, index: usize) -> Res<MetricConfig> {
        let what = section.what();
        let name = text(m.name).unwrap_or_default();
        if name.is_empty() {
            return Err(self.err(format!("{what} #{} (metrics.{}[{index}]) lacks `name`", index + 1, section.key())));
        }
        let here = format!("{what} {name}");
        if !valid_metric_name(&name) {
            return Err(self.err(format!(
                "{here}: `name` {name:?} is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
            )));
        }
        let help = text(m.help).unwrap_or_default();
        if help.is_empty() {
            return Err(self.err(format!("{here} lacks `help`")));
        }
        let mut labels = Vec::new();
        for (i, l) in m.labels.into_iter().enumerate() {
            labels.push(self.label(l, &here, i)?);
        }
        let mut key_size = 0usize;
        for l in &labels {
            key_size = key_size.saturating_add(l.size).saturating_add(l.padding);
            if key_size > MAX_KEY_SIZE {
                return Err(self.err(format!(
                    "{here}: labels: the sizes and paddings up to label {:?} add up to more than a map key can be ({MAX_KEY_SIZE} bytes)",
                    l.name
                )));
            }
        }
        let kind = match section {
            Section::Counters => MetricKind::Counter { perf_event_array: m.perf_event_array },
            Section::Gauges => MetricKind::Gauge,
            Section::Histograms => {
                let h = HistogramKeys {
                    bucket_type: text(m.bucket_type).unwrap_or_default(),
                    bucket_min: m.bucket_min,
                    bucket_max: m.bucket_max,
                    multiplier: m.bucket_multiplier,
                    bucket_keys: m.bucket_keys.into_iter().map(|k| k.0).collect(),
                };
                MetricKind::Histogram(self.histogram(h, &here, &labels)?)
            }
        };
        // Names that would break the output: empty, `__` prefix, duplicates, `le` on histograms.
        let mut names = HashSet::new();
        let histogram = matches!(kind, MetricKind::Histogram(_));
        let prom_labels: &[Label] = if histogram { &labels[..labels.len().saturating_sub(1)] } else { &labels };
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
            if histogram && l.name == "le" {
                return Err(self.err(format!(
                    "{here}: a histogram label cannot be named `le` (Prometheus uses it for bucket bounds)"
                )));
            }
        }
        Ok(MetricConfig { name, help, labels, kind })
    }

    fn histogram(&self, h: HistogramKeys, here: &str, labels: &[Label]) -> Res<HistogramSpec> {
        if labels.is_empty() {
            return Err(
                self.err(format!("{here}: a histogram needs at least one label (the last label is the bucket index)"))
            );
        }
        let bt = h.bucket_type;
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
        let (bucket_min, bucket_max) = (h.bucket_min, h.bucket_max);
        let multiplier = if h.multiplier == 0.0 { 1.0 } else { h.multiplier };
        match bucket_type {
            BucketType::Fixed => {
                if h.bucket_keys.is_empty() {
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
                // A negative bucket_min is fine (an exp2 bucket -2 has le 0.25, as in ebpf_exporter);
                // the span must stay printable.
                let buckets = bucket_max.checked_sub(bucket_min).and_then(|d| d.checked_add(1));
                if !matches!(buckets, Some(b) if b <= MAX_HISTOGRAM_BUCKETS) {
                    let n = i128::from(bucket_max) - i128::from(bucket_min) + 1;
                    return Err(self.err(format!(
                        "{here}: [bucket_min .. bucket_max] = [{bucket_min} .. {bucket_max}] spans {n} buckets; at most {MAX_HISTOGRAM_BUCKETS} are supported"
                    )));
                }
                if matches!(bucket_type, BucketType::Exp2 | BucketType::Exp2Zero) && bucket_max > 1023 {
                    return Err(self.err(format!("{here}: bucket_max ({bucket_max}) is too large for {bt}")));
                }
            }
        }
        Ok(HistogramSpec { bucket_type, bucket_min, bucket_max, multiplier, bucket_keys: h.bucket_keys })
    }

    fn label(&self, l: schema::Label, here: &str, index: usize) -> Res<Label> {
        let name = text(l.name).unwrap_or_default();
        let lhere = if name.is_empty() { format!("{here}: labels[{index}]") } else { format!("{here}: label {name}") };
        if l.size == 0 {
            return Err(self.err(format!("{lhere}: size is zero or not set (the number of key bytes for this label)")));
        }
        for (key, v) in [("size", l.size), ("padding", l.padding)] {
            if v > MAX_KEY_SIZE {
                return Err(
                    self.err(format!("{lhere}: {key} {v} is larger than a map key can be ({MAX_KEY_SIZE} bytes)"))
                );
            }
        }
        let mut decoders = Vec::new();
        for (i, d) in l.decoders.into_iter().enumerate() {
            decoders.push(self.decoder(d, &lhere, i)?);
        }
        if decoders.is_empty() {
            return Err(self.err(format!("{lhere}: no decoders set (add e.g. `decoders: [{{name: uint}}]`)")));
        }
        Ok(Label { name, size: l.size, padding: l.padding, decoders })
    }

    fn decoder(&self, d: schema::Decoder, lhere: &str, index: usize) -> Res<DecoderSpec> {
        let name = text(d.name).unwrap_or_default();
        if name.is_empty() {
            return Err(self.err(format!("{lhere}: decoders[{index}] lacks `name`")));
        }
        if !DECODERS.contains(&name.as_str()) {
            return Err(self.err(format!("{lhere}: unknown decoder {name:?} (known: {})", DECODERS.join(", "))));
        }
        let dhere = format!("{lhere}: decoder {name}");
        let regexps = match d.regexps {
            None => None,
            Some(list) => {
                let mut out = Vec::new();
                for (i, r) in list.into_iter().enumerate() {
                    if r.0.is_empty() {
                        return Err(self.err(format!("{dhere}: regexps[{i}] must not be empty")));
                    }
                    regex::Regex::new(&r.0).map_err(|e| {
                        self.err(format!("{dhere}: regexps[{i}] is not a valid regular expression: {e}"))
                    })?;
                    out.push(r.0);
                }
                Some(out)
            }
        };
        if name == "regexp" && regexps.is_none() {
            return Err(self.err(format!("{dhere}: needs a `regexps` list")));
        }
        Ok(DecoderSpec { name, static_map: d.static_map, allow_unknown: d.allow_unknown, regexps })
    }
}

impl Checker<'_> {
    /// One `events:` entry (docs/events.md): names, field layout, `length`, `labels`, `latency`.
    fn event(&self, e: schema::Event, index: usize) -> Res<EventConfig> {
        let name = text(e.name).unwrap_or_default();
        if name.is_empty() {
            return Err(self.err(format!("events[{index}] lacks `name`")));
        }
        let here = format!("events[{index}] ({name})");
        if !valid_metric_name(&name) {
            return Err(self.err(format!(
                "{here}: `name` {name:?} must be a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*): counts are printed as {name}_events_total"
            )));
        }
        let help = text(e.help).unwrap_or_else(|| format!("Events of {name}"));
        let ring_buffer = text(e.ring_buffer).ok_or_else(|| {
            self.err(format!(
                "{here}: `ring_buffer` is missing (the BPF_MAP_TYPE_RINGBUF or BPF_MAP_TYPE_PERF_EVENT_ARRAY map)"
            ))
        })?;
        let lost_counter = Some(text(e.lost_counter).unwrap_or_else(|| format!("{ring_buffer}_lost")));
        let ring_size = if e.ring_size == 0 { DEFAULT_RING_SIZE } else { e.ring_size as u64 };
        if !ring_size.is_power_of_two() || !(4096..=(1 << 30)).contains(&ring_size) {
            return Err(self.err(format!(
                "{here}: ring_size {ring_size}: must be a power of two from 4096 to 1073741824 bytes (a whole number of pages)"
            )));
        }
        if e.fields.is_empty() {
            return Err(self.err(format!("{here}: `fields` is empty (the record's fields, in order)")));
        }
        let mut fields: Vec<EventField> = Vec::new();
        let mut offset = 0usize;
        for (i, f) in e.fields.into_iter().enumerate() {
            let fname = text(f.name.clone()).unwrap_or_default();
            let fhere =
                if fname.is_empty() { format!("{here}: fields[{i}]") } else { format!("{here}: field {fname}") };
            if fname.is_empty() {
                return Err(self.err(format!("{fhere} lacks `name`")));
            }
            if !valid_label_name(&fname) {
                return Err(self.err(format!(
                    "{fhere}: name {fname:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
                )));
            }
            if fields.iter().any(|o| o.label.name == fname) {
                return Err(self.err(format!("{fhere}: the name appears twice")));
            }
            let label = self.label(
                schema::Label { name: f.name, size: f.size, padding: f.padding, decoders: f.decoders },
                &here,
                i,
            )?;
            let length = match text(f.length) {
                None => None,
                Some(l) => {
                    let Some(j) = fields.iter().position(|o| o.label.name == l) else {
                        return Err(self.err(format!(
                            "{fhere}: length {l:?} must name an earlier field (the number of bytes used)"
                        )));
                    };
                    if !matches!(fields[j].label.size, 1 | 2 | 4 | 8) {
                        return Err(self.err(format!("{fhere}: length field {l:?} must be 1, 2, 4 or 8 bytes")));
                    }
                    Some(j)
                }
            };
            let timestamp = match text(f.role).as_deref() {
                None => false,
                Some("timestamp") => {
                    if label.size != 8 {
                        return Err(self.err(format!("{fhere}: role timestamp needs an 8-byte field")));
                    }
                    true
                }
                Some(other) => {
                    return Err(self.err(format!("{fhere}: role {other:?} is unknown (the only role is `timestamp`)")))
                }
            };
            let width = if f.width > 0 { f.width.min(256) } else { default_width(&label) };
            let size = label.size.saturating_add(label.padding);
            fields.push(EventField { label, offset, length, hidden: f.hidden, timestamp, width });
            offset = offset.saturating_add(size);
            if offset > MAX_KEY_SIZE {
                return Err(self.err(format!("{here}: the fields add up to more than {MAX_KEY_SIZE} bytes")));
            }
        }
        if fields.iter().filter(|f| f.timestamp).count() > 1 {
            return Err(self.err(format!("{here}: more than one field has role timestamp")));
        }
        let find = |n: &str| fields.iter().position(|f| f.label.name == n);
        let mut labels = Vec::new();
        for l in e.labels {
            let i = find(&l.0)
                .ok_or_else(|| self.err(format!("{here}: labels: {:?} is not a field of the record", l.0)))?;
            if labels.contains(&i) {
                return Err(self.err(format!("{here}: labels: {:?} appears twice", l.0)));
            }
            labels.push(i);
        }
        let latency = match e.latency {
            None => None,
            Some(lat) => {
                let f = text(lat.field).ok_or_else(|| self.err(format!("{here}: latency lacks `field`")))?;
                let i = find(&f)
                    .ok_or_else(|| self.err(format!("{here}: latency.field {f:?} is not a field of the record")))?;
                if !matches!(fields[i].label.size, 1 | 2 | 4 | 8) {
                    return Err(
                        self.err(format!("{here}: latency.field {f:?} must be an integer of 1, 2, 4 or 8 bytes"))
                    );
                }
                let multiplier = match text(lat.unit).as_deref().unwrap_or("ns") {
                    "ns" => 1e-9,
                    "us" => 1e-6,
                    "ms" => 1e-3,
                    "s" => 1.0,
                    other => {
                        return Err(self.err(format!("{here}: latency.unit {other:?} is unknown (ns, us, ms or s)")))
                    }
                };
                Some(EventLatency { field: i, multiplier })
            }
        };
        Ok(EventConfig {
            name,
            help,
            ring_buffer,
            lost_counter,
            span: false,
            ring_size,
            buffer: Default::default(),
            record: text(e.record),
            fields,
            labels,
            latency,
        })
    }
}

impl Checker<'_> {
    /// A `tracing.spans[]` entry as an event stream: its labels are the fields; the special
    /// labels of ebpf_exporter (trace_id, span_id, parent_span_id, span_monotonic_timestamp_ns,
    /// span_duration_ns, span_name) shape the JSON line.
    fn span(&self, s: schema::Span, index: usize) -> Res<EventConfig> {
        let ring_buffer = text(s.ringbuf)
            .ok_or_else(|| self.err(format!("tracing.spans[{index}] lacks `ringbuf` (the ring buffer map)")))?;
        let name = text(s.name).unwrap_or_else(|| ring_buffer.clone());
        let here = format!("tracing.spans[{index}] ({name})");
        let mut fields: Vec<EventField> = Vec::new();
        let mut offset = 0usize;
        for (i, l) in s.labels.into_iter().enumerate() {
            let label = self.label(l, &here, i)?;
            if fields.iter().any(|f| f.label.name == label.name) {
                return Err(self.err(format!("{here}: label {:?} appears twice", label.name)));
            }
            let timestamp = label.name == "span_monotonic_timestamp_ns" && label.size == 8;
            let width = default_width(&label);
            let size = label.size.saturating_add(label.padding);
            fields.push(EventField { label, offset, length: None, hidden: false, timestamp, width });
            offset = offset.saturating_add(size);
            if offset > MAX_KEY_SIZE {
                return Err(self.err(format!("{here}: the labels add up to more than {MAX_KEY_SIZE} bytes")));
            }
        }
        let metric_name: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        Ok(EventConfig {
            name: metric_name,
            help: format!("Spans {name}{}", text(s.service).map(|v| format!(" of service {v}")).unwrap_or_default()),
            ring_buffer,
            lost_counter: None,
            span: true,
            ring_size: DEFAULT_RING_SIZE,
            buffer: Default::default(),
            record: None,
            fields,
            labels: Vec::new(),
            latency: None,
        })
    }
}

/// Ring size when a config sets none: 1 MiB.
const DEFAULT_RING_SIZE: u64 = 1 << 20;

/// A table column wide enough for the field's usual values.
fn default_width(label: &Label) -> usize {
    let first = label.decoders.first().map(|d| d.name.as_str()).unwrap_or_default();
    let by_kind = match (first, label.size) {
        ("string", n) => n.min(16),
        ("inet_ip", _) => 15,
        ("duration", _) => 10,
        ("open_flags" | "mount_flags", _) => 20,
        (_, 1 | 2) => 5,
        (_, 4) => 7,
        _ => 10,
    };
    by_kind.max(label.name.len())
}

/// A histogram's keys as read, before checking.
struct HistogramKeys {
    bucket_type: String,
    bucket_min: i64,
    bucket_max: i64,
    multiplier: f64,
    bucket_keys: Vec<f64>,
}

/// A text field's value; empty and null are both "not set".
fn text(t: Option<schema::Text>) -> Option<String> {
    t.map(|t| t.0).filter(|s| !s.is_empty())
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
