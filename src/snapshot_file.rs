//! `--save-raw FILE` and `ebpfx render FILE`: the raw map contents of a run plus each config's
//! YAML, as JSON, so a run can be rendered later in any format without root or BPF. Decoding
//! happens at render time, through the same code as a live run.
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::usage_err;
use crate::model::{Metric, MetricValues, Samples, Window};
use crate::raw::RawMap;

const KIND: &str = "ebpfx-raw-snapshot";
const VERSION: u32 = 1;

/// Largest snapshot file `render` reads. A run's maps are far smaller; a file (or device, or
/// pipe) beyond this is refused rather than read into memory without end.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

#[derive(Debug, Serialize, Deserialize)]
struct File {
    kind: String,
    version: u32,
    window: SavedWindow,
    configs: Vec<SavedConfig>,
    /// ebpfx's own metrics of the run (programs, probe cost), already final.
    #[serde(default)]
    self_metrics: Vec<SavedMetric>,
    /// Sampling frequency of the run's perf_event programs (for pprof's cpu time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sample_frequency_hz: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedMetric {
    name: String,
    help: String,
    /// "counter" or "gauge".
    kind: String,
    label_names: Vec<String>,
    samples: Vec<(Vec<String>, f64)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedWindow {
    start_unix_ns: u128,
    end_unix_ns: u128,
    length_ns: u128,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedConfig {
    name: String,
    origin: String,
    yaml: String,
    maps: Vec<SavedMap>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedMap {
    name: String,
    key_size: usize,
    slots: usize,
    per_cpu: bool,
    max_entries: u32,
    is_array: bool,
    /// All keys, concatenated, as lowercase hex.
    keys_hex: String,
    values: Vec<u64>,
    /// The stack-trace map whose stacks the map's stack-id labels name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stack_traces: Option<SavedStacks>,
}

/// A stack-trace map: `ids[i]`'s frames are `frames[i * depth..(i + 1) * depth]`.
#[derive(Debug, Serialize, Deserialize)]
struct SavedStacks {
    name: String,
    depth: usize,
    ids: Vec<u32>,
    frames: Vec<u64>,
}

/// Most frames per stack a snapshot may hold: far more than any kernel walks.
const MAX_STACK_DEPTH: usize = 1 << 16;

/// One config of a loaded snapshot file.
pub struct SavedRun {
    pub window: Window,
    pub configs: Vec<(Config, Vec<RawMap>)>,
    pub self_metrics: Vec<Metric>,
    /// Sampling frequency of the run's perf_event programs, when it had some.
    pub sample_frequency_hz: Option<u64>,
}

fn unix_ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn from_unix_ns(ns: u128) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns.min(u64::MAX as u128) as u64)
}

/// Serialises a run: window, each config's YAML (name, origin) and its raw maps.
pub fn to_json(
    window: &Window,
    configs: &[(&str, &str, &str, &[RawMap])],
    self_metrics: &[Metric],
) -> anyhow::Result<String> {
    to_json_sampled(window, configs, self_metrics, None)
}

/// [`to_json`] plus the sampling frequency of the run's perf_event programs.
pub fn to_json_sampled(
    window: &Window,
    configs: &[(&str, &str, &str, &[RawMap])],
    self_metrics: &[Metric],
    sample_frequency_hz: Option<u64>,
) -> anyhow::Result<String> {
    let file = File {
        sample_frequency_hz,
        kind: KIND.to_string(),
        version: VERSION,
        window: SavedWindow {
            start_unix_ns: unix_ns(window.start),
            end_unix_ns: unix_ns(window.end),
            length_ns: window.length.as_nanos(),
        },
        configs: configs
            .iter()
            .map(|(name, origin, yaml, maps)| SavedConfig {
                name: name.to_string(),
                origin: origin.to_string(),
                yaml: yaml.to_string(),
                maps: maps
                    .iter()
                    .map(|m| SavedMap {
                        name: m.name.clone(),
                        key_size: m.key_size,
                        slots: m.slots,
                        per_cpu: m.per_cpu,
                        max_entries: m.max_entries,
                        is_array: m.is_array,
                        keys_hex: hex(&m.keys),
                        values: m.values.clone(),
                        stack_traces: m.stack_traces.as_deref().map(|t| SavedStacks {
                            name: t.name.clone(),
                            depth: t.depth,
                            ids: t.ids.clone(),
                            frames: t.frames.clone(),
                        }),
                    })
                    .collect(),
            })
            .collect(),
        self_metrics: self_metrics
            .iter()
            .filter_map(|m| {
                let (kind, samples) = match &m.values {
                    MetricValues::Counter(s) => ("counter", s),
                    MetricValues::Gauge(s) => ("gauge", s),
                    MetricValues::Histogram(_) => return None,
                };
                Some(SavedMetric {
                    name: m.name.clone(),
                    help: m.help.clone(),
                    kind: kind.to_string(),
                    label_names: m.label_names.clone(),
                    samples: samples.iter().map(|s| (s.labels.to_vec(), s.value)).collect(),
                })
            })
            .collect(),
    };
    let mut text = serde_json::to_string(&file).context("serialising the snapshot")?;
    text.push('\n');
    Ok(text)
}

/// The bytes of `path`, at most [`MAX_FILE_BYTES`]; a file that does not start like JSON (after
/// whitespace) is refused at its first bytes, so `/dev/zero` or a binary is not read on.
fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let cannot = |e: std::io::Error| usage_err(format!("cannot read snapshot {}: {e}", path.display()));
    let not_snapshot = || {
        usage_err(format!(
            "{} is not an ebpfx raw snapshot (written by `ebpfx run --save-raw`): it does not start with a JSON object",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut reader = file.take(MAX_FILE_BYTES + 1);
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut started = false;
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(cannot(e)),
        };
        let got = chunk.get(..n).unwrap_or(&[]);
        if !started {
            if let Some(&first) = got.iter().find(|b| !b.is_ascii_whitespace()) {
                if first != b'{' {
                    return Err(not_snapshot());
                }
                started = true;
            }
        }
        bytes.extend_from_slice(got);
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(usage_err(format!(
                "{} is larger than {} MiB, more than any snapshot ebpfx writes; refusing to read it",
                path.display(),
                MAX_FILE_BYTES >> 20
            )));
        }
    }
    Ok(bytes)
}

/// Reads a file written by `--save-raw`, re-validating each config's YAML and checking every
/// size and count in it before it is used. Anything wrong in the file is a usage error (exit 2).
pub fn load(path: &Path) -> anyhow::Result<SavedRun> {
    let text = read_bounded(path)?;
    let file: File = serde_json::from_slice(&text).map_err(|e| {
        usage_err(format!("{} is not an ebpfx raw snapshot (written by `ebpfx run --save-raw`): {e}", path.display()))
    })?;
    drop(text);
    if file.kind != KIND {
        return Err(usage_err(format!("{}: not an ebpfx raw snapshot (kind {:?})", path.display(), file.kind)));
    }
    if file.version != VERSION {
        return Err(usage_err(format!(
            "{}: snapshot version {} is not supported (this ebpfx reads version {VERSION})",
            path.display(),
            file.version
        )));
    }
    let window = Window {
        start: from_unix_ns(file.window.start_unix_ns),
        end: from_unix_ns(file.window.end_unix_ns),
        length: Duration::from_nanos(file.window.length_ns.min(u64::MAX as u128) as u64),
    };
    let mut configs = Vec::new();
    for c in file.configs {
        let config = Config::parse(&c.name, &c.origin, &c.yaml)?;
        let mut maps = Vec::new();
        for m in c.maps {
            let bad =
                |what: String| usage_err(format!("{}: config {}: map {}: {what}", path.display(), c.name, m.name));
            if m.key_size > crate::config::MAX_KEY_SIZE {
                return Err(bad(format!(
                    "key_size {} is larger than any map key ebpfx reads ({} bytes)",
                    m.key_size,
                    crate::config::MAX_KEY_SIZE
                )));
            }
            if m.slots == 0 || m.slots > crate::decode::MAX_SLOTS {
                return Err(bad(format!(
                    "slots {} is out of range (1 per entry, or one per possible CPU, at most {})",
                    m.slots,
                    crate::decode::MAX_SLOTS
                )));
            }
            let keys = unhex(&m.keys_hex)
                .ok_or_else(|| bad("keys_hex is not an even number of hexadecimal digits".to_string()))?;
            let entries = keys.len().checked_div(m.key_size).unwrap_or(0);
            let whole = if m.key_size == 0 { keys.is_empty() } else { keys.len() % m.key_size == 0 };
            if !whole || entries.checked_mul(m.slots) != Some(m.values.len()) {
                return Err(bad(format!(
                    "inconsistent: {} key bytes of key_size {}, {} values for {} slots per entry",
                    keys.len(),
                    m.key_size,
                    m.values.len(),
                    m.slots
                )));
            }
            let stack_traces = match m.stack_traces {
                None => None,
                Some(t) => {
                    if t.depth == 0
                        || t.depth > MAX_STACK_DEPTH
                        || t.ids.len().checked_mul(t.depth) != Some(t.frames.len())
                    {
                        return Err(bad(format!(
                            "stack_traces {}: inconsistent: {} ids of depth {} but {} frames",
                            t.name,
                            t.ids.len(),
                            t.depth,
                            t.frames.len()
                        )));
                    }
                    Some(std::sync::Arc::new(crate::raw::StackTraces {
                        name: t.name,
                        depth: t.depth,
                        ids: t.ids,
                        frames: t.frames,
                    }))
                }
            };
            maps.push(RawMap {
                stack_traces,
                name: m.name,
                key_size: m.key_size,
                slots: m.slots,
                per_cpu: m.per_cpu,
                keys,
                values: m.values,
                max_entries: m.max_entries,
                is_array: m.is_array,
            });
        }
        if maps.len() != config.metrics.len() {
            return Err(usage_err(format!(
                "{}: config {} has {} metrics but {} saved maps",
                path.display(),
                config.name,
                config.metrics.len(),
                maps.len()
            )));
        }
        configs.push((config, maps));
    }
    crate::config::check_distinct_metrics(configs.iter().map(|(c, _)| c))?;
    let mut self_metrics = Vec::new();
    for m in file.self_metrics {
        let bad = |what: String| usage_err(format!("{}: self metric {:?}: {what}", path.display(), m.name));
        let mut samples = Samples::new(m.label_names.len());
        for (labels, value) in &m.samples {
            if labels.len() != m.label_names.len() {
                return Err(bad(format!(
                    "a sample has {} label values for {} label names",
                    labels.len(),
                    m.label_names.len()
                )));
            }
            samples.push(labels.iter().map(String::as_str), *value);
        }
        let values = match m.kind.as_str() {
            "counter" => MetricValues::Counter(samples),
            "gauge" => MetricValues::Gauge(samples),
            other => return Err(bad(format!("kind {other:?} is neither \"counter\" nor \"gauge\""))),
        };
        let metric =
            Metric { config: "ebpfx".into(), name: m.name.clone(), help: m.help, label_names: m.label_names, values };
        crate::selfmetrics::validate(&metric).map_err(bad)?;
        if configs.iter().any(|(c, _)| c.metrics.iter().any(|cm| cm.name == metric.name)) {
            return Err(bad("has the name of a config's metric".to_string()));
        }
        self_metrics.push(metric);
    }
    Ok(SavedRun { window, configs, self_metrics, sample_frequency_hz: file.sample_frequency_hz })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let yaml = "metrics:\n  counters:\n    - name: c_total\n      help: h\n      labels:\n        - name: id\n          size: 4\n          decoders: [{name: uint}]\n";
        let mut m = RawMap { name: "c_total".into(), key_size: 4, slots: 2, per_cpu: true, ..RawMap::default() };
        m.push(&7u32.to_ne_bytes(), &[1, 2]);
        m.stack_traces = Some(std::sync::Arc::new(crate::raw::StackTraces {
            name: "stacks".into(),
            depth: 2,
            ids: vec![3, 1 << 30],
            frames: vec![10, 11, 12, 0],
        }));
        let w = Window {
            start: from_unix_ns(1_000_000_123),
            end: from_unix_ns(3_000_000_456),
            length: Duration::from_nanos(2_000_000_333),
        };
        let json = to_json(&w, &[("c", "c.yaml", yaml, std::slice::from_ref(&m))], &[]).expect("json");
        let dir = std::env::temp_dir().join(format!("ebpfx-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("s.json");
        std::fs::write(&p, json).expect("write");
        let run = load(&p).expect("load");
        assert_eq!(run.window, w);
        assert_eq!(run.configs[0].1[0], m);
        assert_eq!(run.configs[0].0.name, "c");
        // Stacks whose frames do not match their ids and depth are refused.
        let text = std::fs::read_to_string(&p).expect("read");
        std::fs::write(&p, text.replace("\"frames\":[10,11,12,0]", "\"frames\":[10,11,12]")).expect("write");
        let e = load(&p).err().expect("inconsistent stacks refused").to_string();
        assert!(e.contains("stack_traces stacks: inconsistent"), "{e}");
        std::fs::write(&p, "{}").expect("write");
        assert!(load(&p).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
