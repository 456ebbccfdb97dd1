//! What a config file may hold, as serde types: ebpf_exporter's schema and ebpfx's keys
//! (docs/config-format.md). Only the shape is checked here, with the YAML 1.1 leniencies of
//! ebpf_exporter's reader (docs/config-format.md#yaml-dialect): unknown keys are ignored, null
//! leaves a field at its default, booleans take `yes`/`on`/..., text fields take any scalar as
//! written, whole numbers take floats (cut toward zero). A type error names the key path, line
//! and column (serde_yaml's error). What the values mean is checked in `validate.rs`.
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

/// A whole config file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct File {
    pub metrics: Option<Metrics>,
    #[serde(deserialize_with = "list")]
    pub kaddrs: Vec<Text>,
    pub cgroup_id_map: Option<CgroupIdMap>,
    pub tracing: Option<Tracing>,
    /// ebpfx: one line for `ebpfx list`.
    pub description: Option<Text>,
    /// ebpfx: the label whose `static_map` `--probe` fills.
    pub probe_label: Option<Text>,
    /// ebpfx: the targets (-p, --tid, --comm, --cgroup, -- COMMAND) the object implements.
    #[serde(deserialize_with = "list")]
    pub targets: Vec<Text>,
    /// ebpfx: labels the kernel fills only when `--by` names them.
    #[serde(deserialize_with = "list")]
    pub kernel_labels: Vec<Text>,
    /// ebpfx: which of `kernel_labels` are on (written by ebpfx for a run and its snapshot).
    #[serde(deserialize_with = "list")]
    pub kernel_labels_on: Vec<Text>,
    /// ebpfx: record streams read from ring buffers (docs/events.md).
    pub events: Option<Vec<Event>>,
}

/// ebpfx: one entry of `events:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Event {
    pub name: Option<Text>,
    pub help: Option<Text>,
    pub ring_buffer: Option<Text>,
    pub lost_counter: Option<Text>,
    #[serde(deserialize_with = "unsigned")]
    pub ring_size: usize,
    pub record: Option<Text>,
    #[serde(deserialize_with = "list")]
    pub fields: Vec<EventField>,
    #[serde(deserialize_with = "list")]
    pub labels: Vec<Text>,
    pub latency: Option<Latency>,
}

/// ebpfx: one field of an event record: a label's keys plus how to show it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct EventField {
    pub name: Option<Text>,
    #[serde(deserialize_with = "unsigned")]
    pub size: usize,
    #[serde(deserialize_with = "unsigned")]
    pub padding: usize,
    #[serde(deserialize_with = "list")]
    pub decoders: Vec<Decoder>,
    /// An earlier field holding how many bytes of this one are used.
    pub length: Option<Text>,
    #[serde(deserialize_with = "yaml11_bool")]
    pub hidden: bool,
    /// `timestamp`: CLOCK_MONOTONIC nanoseconds of the event.
    pub role: Option<Text>,
    /// Table column width (default: from the name and size).
    #[serde(deserialize_with = "unsigned")]
    pub width: usize,
}

/// ebpfx: `latency:` of an event: the field `hist` shows as a histogram.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Latency {
    pub field: Option<Text>,
    pub unit: Option<Text>,
}

/// `metrics:`. A section that is present (even empty) counts as defined; a null one does not.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Metrics {
    pub counters: Option<Vec<Metric>>,
    pub histograms: Option<Vec<Metric>>,
    /// ebpfx: counters printed as gauges.
    pub gauges: Option<Vec<Metric>>,
}

/// One entry of `counters`, `histograms` or `gauges`: the union of their keys (which apply is
/// checked by `validate.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Metric {
    pub name: Option<Text>,
    pub help: Option<Text>,
    #[serde(deserialize_with = "list")]
    pub labels: Vec<Label>,
    #[serde(deserialize_with = "yaml11_bool")]
    pub perf_event_array: bool,
    pub bucket_type: Option<Text>,
    #[serde(deserialize_with = "whole")]
    pub bucket_min: i64,
    #[serde(deserialize_with = "whole")]
    pub bucket_max: i64,
    #[serde(deserialize_with = "float_or_zero")]
    pub bucket_multiplier: f64,
    #[serde(deserialize_with = "list")]
    pub bucket_keys: Vec<Float>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Label {
    pub name: Option<Text>,
    #[serde(deserialize_with = "unsigned")]
    pub size: usize,
    #[serde(deserialize_with = "unsigned")]
    pub padding: usize,
    #[serde(deserialize_with = "list")]
    pub decoders: Vec<Decoder>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Decoder {
    pub name: Option<Text>,
    /// Absent: `None` (the decoder then gives `empty mapping`); null: an empty mapping.
    #[serde(deserialize_with = "static_map")]
    pub static_map: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "yaml11_bool")]
    pub allow_unknown: bool,
    pub regexps: Option<Vec<Text>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CgroupIdMap {
    pub name: Option<Text>,
    #[serde(rename = "type")]
    pub map_type: Option<Text>,
    #[serde(deserialize_with = "list")]
    pub regexps: Vec<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Tracing {
    /// Spans: a config without metrics runs them as event streams (docs/events.md).
    pub spans: Option<Vec<Span>>,
}

/// One `tracing.spans[]` entry: a ring buffer of span records and their labels.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Span {
    pub ringbuf: Option<Text>,
    pub name: Option<Text>,
    pub service: Option<Text>,
    #[serde(deserialize_with = "list")]
    pub labels: Vec<Label>,
    /// Anything else ebpf_exporter may add.
    #[serde(flatten)]
    pub _rest: BTreeMap<String, IgnoredAny>,
}

/// A scalar as the text a string field receives: `0` → "0", `yes` → "yes" (null → "").
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string (or another scalar)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(float_text(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A float as YAML writes it (`1.0`, `.inf`), the text a string field receives.
fn float_text(v: f64) -> String {
    if v.is_nan() {
        ".nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { ".inf" } else { "-.inf" }.to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// A float field: numbers, and the YAML spellings of infinity and NaN.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Float(pub f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Float, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Float;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Float, E> {
                match v {
                    ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Ok(Float(f64::INFINITY)),
                    "-.inf" | "-.Inf" | "-.INF" => Ok(Float(f64::NEG_INFINITY)),
                    ".nan" | ".NaN" | ".NAN" => Ok(Float(f64::NAN)),
                    _ => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A list; null is the empty list.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `bucket_multiplier`: a float; null is 0 (which means 1).
fn float_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<Float>::deserialize(d)?.map_or(0.0, |f| f.0))
}

/// A boolean as YAML 1.1 spells it (`y`, `yes`, `on`, ... and their negatives); null is false.
pub(super) fn yaml11_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean (true/false, yes/no, on/off, y/n)")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v {
                "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Ok(true),
                "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Ok(false),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_any(V)
}

/// A whole number (`bucket_min`, `bucket_max`): an integer, or a float cut toward zero; null
/// is 0.
fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &"an integer below 2^63"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.is_finite() {
                // `as` saturates at the i64 range; the validation refuses such spans.
                Ok(v.trunc() as i64)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
            Ok(0)
        }
    }
    d.deserialize_any(V)
}

/// A size (`size`, `padding`): a non-negative integer, or float cut toward zero; null is 0.
/// Values beyond `usize` saturate (and are refused by the validation).
fn unsigned<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<usize, E> {
            Ok(usize::try_from(v).unwrap_or(usize::MAX))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<usize, E> {
            u64::try_from(v)
                .map(|v| usize::try_from(v).unwrap_or(usize::MAX))
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<usize, E> {
            if v.is_finite() && v >= 0.0 {
                Ok(v.trunc() as usize)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<usize, E> {
            Ok(0)
        }
    }
    d.deserialize_any(V)
}

/// `static_map`: scalar keys and values, as text; null is the empty mapping. Only called when
/// the key is present (absent stays `None`).
fn static_map<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let map = Option::<BTreeMap<Text, Text>>::deserialize(d)?.unwrap_or_default();
    Ok(Some(map.into_iter().map(|(k, v)| (k.0, v.0)).collect()))
}

impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}
