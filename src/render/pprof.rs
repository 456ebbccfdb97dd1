//! `--format pprof`: the stack metrics of a snapshot (counters with a `kstack`/`ustack` label,
//! see [`super::stacks`]) as a gzipped `profile.proto`, the format `go tool pprof`, Pyroscope,
//! Parca, Grafana and speedscope read.
//!
//! * One pprof sample per snapshot sample with a non-zero value; its locations are the kernel
//!   frames then the user frames, leaf first (pprof's order). One location and one function per
//!   distinct frame text (the decoders give names, not addresses); kernel and user frames of the
//!   same name stay apart. A `??` frame is kept as a function named `??`.
//! * The other labels (`comm`, `pid`, ...) become string sample labels of the same name.
//! * Value types: a metric counting samples gives `samples/count`, and `cpu/nanoseconds` (count
//!   × 1e9 / frequency) when the sampling frequency is known; a metric whose name says it counts
//!   time (`..._seconds_total`, `..._nanoseconds_total`, ...) gives `NAME/nanoseconds`.
//!   With several stack metrics, each keeps its own value types (others' values are zero) and a
//!   `metric` label tells them apart.
//! * The window start is `time_nanos`, its monotonic length `duration_nanos`.
//!
//! The messages are written by hand with prost's derive (field numbers from pprof's
//! `profile.proto`), so the build needs no `protoc`.
use std::collections::HashMap;
use std::io::Write;
use std::time::UNIX_EPOCH;

use prost::Message;

use super::stacks;
use crate::model::{Metric, MetricValues, Snapshot};

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ValueType {
    /// Index into the string table.
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Sample {
    /// Leaf first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// `[kernel]` for kernel frames: pprof shows it beside the name in some views.
    #[prost(int64, tag = "4")]
    pub filename: i64,
}

/// What the values of one stack metric mean.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Measure {
    /// Sample counts.
    Samples,
    /// Time in the metric's unit: value × this factor = nanoseconds.
    Time { to_ns: f64 },
}

/// How a stack metric's values are read, from its name (`_total` suffix ignored).
fn measure(name: &str) -> Measure {
    let base = name.strip_suffix("_total").unwrap_or(name);
    for (suffix, to_ns) in
        [("_nanoseconds", 1.0), ("_microseconds", 1e3), ("_milliseconds", 1e6), ("_seconds", 1e9), ("_ns", 1.0)]
    {
        if base.ends_with(suffix) {
            return Measure::Time { to_ns };
        }
    }
    Measure::Samples
}

/// The string table: index 0 is the empty string, as pprof requires.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        Strings { table: vec![String::new()], index: HashMap::from([(String::new(), 0)]) }
    }

    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// A frame's name as pprof shows it: control characters (the TAB before a kernel module
/// name) become spaces.
fn frame_name(frame: &str) -> String {
    frame.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Rounds a metric value to a pprof value (negative, NaN and infinite values give 0).
fn to_i64(v: f64) -> i64 {
    if v.is_finite() && v > 0.0 {
        v.round().min(i64::MAX as f64) as i64
    } else {
        0
    }
}

/// The profile of `snapshot`'s stack metrics. `frequency_hz` is the sampling frequency of the
/// programs that counted samples (for `cpu/nanoseconds`); `None` leaves that value type out.
pub(crate) fn profile(snapshot: &Snapshot, frequency_hz: Option<u64>) -> Profile {
    let metrics: Vec<&Metric> = stacks::stack_metrics(snapshot);
    let mut strings = Strings::new();
    let period_ns = frequency_hz.filter(|&f| f > 0).map(|f| (1e9 / f as f64).round() as i64);
    let several = metrics.len() > 1;

    // Value types: per metric, the columns it fills.
    let mut sample_type: Vec<ValueType> = Vec::new();
    let mut columns: Vec<(usize, Measure)> = Vec::new(); // first column, measure
    for m in &metrics {
        let first = sample_type.len();
        let measure = measure(&m.name);
        let name = |t: &str| if several { format!("{}:{t}", m.name) } else { t.to_string() };
        match measure {
            Measure::Samples => {
                sample_type.push(ValueType { r#type: strings.id(&name("samples")), unit: strings.id("count") });
                if period_ns.is_some() {
                    sample_type.push(ValueType { r#type: strings.id(&name("cpu")), unit: strings.id("nanoseconds") });
                }
            }
            Measure::Time { .. } => {
                let base = m.name.strip_suffix("_total").unwrap_or(&m.name);
                let kind = ["_nanoseconds", "_microseconds", "_milliseconds", "_seconds", "_ns"]
                    .iter()
                    .find_map(|s| base.strip_suffix(s))
                    .unwrap_or(base);
                let kind = if several { format!("{}:{kind}", m.name) } else { kind.to_string() };
                sample_type.push(ValueType { r#type: strings.id(&kind), unit: strings.id("nanoseconds") });
            }
        }
        columns.push((first, measure));
    }

    let mut locations: Vec<Location> = Vec::new();
    let mut functions: Vec<Function> = Vec::new();
    let mut location_of: HashMap<(bool, &str), u64> = HashMap::new();
    let kernel_file = strings.id("[kernel]");
    let mut samples: Vec<Sample> = Vec::new();
    let metric_key = strings.id("metric");

    for (mi, m) in metrics.iter().enumerate() {
        let MetricValues::Counter(rows) = &m.values else { continue };
        let (first, measure) = columns[mi];
        let other_labels: Vec<(usize, i64)> = m
            .label_names
            .iter()
            .enumerate()
            .filter(|(_, n)| *n != "kstack" && *n != "ustack")
            .map(|(i, n)| (i, strings.id(n)))
            .collect();
        let stack_index = |name: &str| m.label_names.iter().position(|n| n == name);
        let (kstack, ustack) = (stack_index("kstack"), stack_index("ustack"));
        let metric_name = strings.id(&m.name);
        for row in rows.iter() {
            let mut value = vec![0i64; sample_type.len()];
            match measure {
                Measure::Samples => {
                    let count = to_i64(row.value);
                    if count == 0 {
                        continue;
                    }
                    value[first] = count;
                    if let Some(p) = period_ns {
                        value[first + 1] = count.saturating_mul(p);
                    }
                }
                Measure::Time { to_ns } => {
                    let ns = to_i64(row.value * to_ns);
                    if ns == 0 {
                        continue;
                    }
                    value[first] = ns;
                }
            }
            let mut location_id = Vec::new();
            for (kernel, index) in [(true, kstack), (false, ustack)] {
                let Some(text) = index.and_then(|i| row.labels.get(i)) else { continue };
                for frame in text.split('\n').filter(|f| !f.is_empty()) {
                    let id = *location_of.entry((kernel, frame)).or_insert_with(|| {
                        let id = locations.len() as u64 + 1;
                        let name = strings.id(&frame_name(frame));
                        functions.push(Function {
                            id,
                            name,
                            system_name: name,
                            filename: if kernel { kernel_file } else { 0 },
                        });
                        locations.push(Location { id, line: vec![Line { function_id: id }] });
                        id
                    });
                    location_id.push(id);
                }
            }
            let mut label: Vec<Label> = other_labels
                .iter()
                .filter_map(|&(i, key)| {
                    let v = row.labels.get(i)?;
                    (!v.is_empty()).then(|| Label { key, str: strings.id(v) })
                })
                .collect();
            if several {
                label.push(Label { key: metric_key, str: metric_name });
            }
            samples.push(Sample { location_id, value, label });
        }
    }

    let comment =
        metrics.iter().map(|m| strings.id(&format!("ebpfx: config {} metric {}", m.config, m.name))).collect();
    let time_nanos = snapshot
        .window
        .start
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0);
    let duration_nanos = snapshot.window.length.as_nanos().min(i64::MAX as u128) as i64;
    let (period_type, period) = match period_ns {
        Some(p) if columns.iter().any(|c| c.1 == Measure::Samples) => {
            (Some(ValueType { r#type: strings.id("cpu"), unit: strings.id("nanoseconds") }), p)
        }
        _ => (None, 0),
    };
    Profile {
        sample_type,
        sample: samples,
        location: locations,
        function: functions,
        string_table: strings.table,
        time_nanos,
        duration_nanos,
        period_type,
        period,
        comment,
    }
}

/// Writes the gzipped profile of `snapshot` to `sink` (see [`profile`]).
pub(crate) fn render_to(snapshot: &Snapshot, frequency_hz: Option<u64>, sink: &mut dyn Write) -> std::io::Result<()> {
    let bytes = profile(snapshot, frequency_hz).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(sink, flate2::Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    fn decode(bytes: &[u8]) -> Profile {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut raw).expect("gzip");
        Profile::decode(raw.as_slice()).expect("profile.proto")
    }

    fn names(p: &Profile, sample: &Sample) -> Vec<String> {
        sample
            .location_id
            .iter()
            .map(|id| {
                let f = &p.function[(*id - 1) as usize];
                p.string_table[f.name as usize].clone()
            })
            .collect()
    }

    fn label(p: &Profile, s: &Sample, key: &str) -> Option<String> {
        s.label.iter().find(|l| p.string_table[l.key as usize] == key).map(|l| p.string_table[l.str as usize].clone())
    }

    #[test]
    fn profile_samples_frames_labels_and_window() {
        let mut snap = Snapshot::of(vec![stacks::profile_metric()]);
        snap.window.start = UNIX_EPOCH + Duration::from_secs(100);
        let mut out = Vec::new();
        render_to(&snap, Some(100), &mut out).expect("render");
        let p = decode(&out);
        assert_eq!(p.string_table[0], "");
        let types: Vec<(String, String)> = p
            .sample_type
            .iter()
            .map(|t| (p.string_table[t.r#type as usize].clone(), p.string_table[t.unit as usize].clone()))
            .collect();
        assert_eq!(types, [("samples".into(), "count".into()), ("cpu".into(), "nanoseconds".into())]);
        assert_eq!((p.time_nanos, p.duration_nanos, p.period), (100_000_000_000, 3_000_000_000, 10_000_000));
        // the zero-valued sample is left out; the others keep their values
        assert_eq!(p.sample.len(), 5);
        let total: i64 = p.sample.iter().map(|s| s.value[0]).sum();
        assert_eq!(total, 42);
        assert_eq!(p.sample[0].value, [30, 300_000_000]);
        assert_eq!(names(&p, &p.sample[0]), ["inner", "outer", "main"]);
        assert_eq!(names(&p, &p.sample[2]), ["do_syscall_64", "entry_SYSCALL_64", "write;x", "outer", "main"]);
        assert_eq!(names(&p, &p.sample[3]), ["commit_timeout [jbd2]", "worker_thread"]);
        assert!(names(&p, &p.sample[4]).is_empty());
        assert_eq!(label(&p, &p.sample[0], "comm").as_deref(), Some("burner"));
        assert_eq!(label(&p, &p.sample[0], "pid").as_deref(), Some("42"));
        assert_eq!(label(&p, &p.sample[0], "kstack"), None);
        // equal frames share one location and function; kernel frames are marked
        assert_eq!(p.sample[0].location_id, p.sample[1].location_id);
        assert_eq!(p.location.len(), p.function.len());
        let k = &p.function[(p.sample[2].location_id[0] - 1) as usize];
        assert_eq!(p.string_table[k.filename as usize], "[kernel]");
    }

    #[test]
    fn without_a_frequency_only_sample_counts() {
        let p = profile(&Snapshot::of(vec![stacks::profile_metric()]), None);
        assert_eq!(p.sample_type.len(), 1);
        assert_eq!((p.period_type.clone(), p.period), (None, 0));
        assert!(p.sample.iter().all(|s| s.value.len() == 1));
    }

    #[test]
    fn time_metrics_in_nanoseconds_and_several_metrics_apart() {
        let mut off = stacks::profile_metric();
        off.name = "offcpu_seconds_total".into();
        off.values = MetricValues::Counter(
            vec![crate::model::Sample {
                labels: vec!["sleeper".into(), "7".into(), "schedule".into(), "nanosleep\nmain".into()],
                value: 0.25,
            }]
            .into(),
        );
        let p = profile(&Snapshot::of(vec![stacks::profile_metric(), off]), Some(99));
        let types: Vec<&str> = p.sample_type.iter().map(|t| p.string_table[t.r#type as usize].as_str()).collect();
        assert_eq!(types, ["cpu_samples_total:samples", "cpu_samples_total:cpu", "offcpu_seconds_total:offcpu"]);
        let last = p.sample.last().expect("offcpu sample");
        assert_eq!(last.value, [0, 0, 250_000_000]);
        assert_eq!(label(&p, last, "metric").as_deref(), Some("offcpu_seconds_total"));
        // `schedule` in the kernel and `main` in user space are distinct locations from the
        // profile metric's frames of other names; `main` (user) is shared with it
        assert_eq!(names(&p, last), ["schedule", "nanosleep", "main"]);
    }

    #[test]
    fn no_stack_metrics_an_empty_profile() {
        let p = profile(&Snapshot::of(vec![]), Some(99));
        assert!(p.sample.is_empty() && p.sample_type.is_empty());
        assert_eq!(p.string_table[0], "");
    }
}
