//! One JSON document per run (pretty-printed, ends with a newline). Schema:
//!
//! ```text
//! {
//!   "window": {
//!     "start": "2025-11-21T23:00:00.000Z",      RFC 3339, UTC, milliseconds (null if unprintable)
//!     "end": "2025-11-21T23:00:10.000Z",
//!     "start_unix_seconds": 1763766000.0,       float seconds since the Unix epoch
//!     "end_unix_seconds": 1763766010.0,
//!     "duration_seconds": 10.000512             monotonic window length
//!   },
//!   "metrics": [                                config order, then metric order in the config
//!     { "config": "syscalls", "name": "syscalls_total", "help": "...",
//!       "type": "counter" | "gauge",
//!       "labels": ["syscall"],                  label names, config order
//!       "samples": [ { "labels": {"syscall": "read"}, "value": 1234567.0 } ] },
//!     { "config": "biolatency", "name": "bio_latency_seconds", "help": "...",
//!       "type": "histogram", "labels": ["device", "operation"],
//!       "bucket_type": "exp2" | "exp2zero" | "linear" | "fixed",
//!       "bucket_multiplier": 1e-6,
//!       "series": [ { "labels": {"device": "vda", "operation": "write"},
//!                     "count": 501,             total observations (= the +Inf bucket)
//!                     "sum": 0.011249 | null,   in the metric's unit; null without a sum key
//!                     "buckets": [ {"le": 1e-6, "count": 0}, ... ] } ] }
//!   ],
//!   "decoder_errors": { "biolatency": 0, "syscalls": 2 },   config → failed collections
//!   "warnings": [ "..." ]                       notes about the numbers, one string each
//! }
//! ```
//!
//! * Metric names carry no prefix. Label objects list labels in config order.
//! * Samples and series are sorted by label values (byte-wise, config label order).
//! * Buckets are cumulative, sorted by `le` (an unsorted `fixed` config keeps its config-order
//!   cumulative counts, docs/config-format.md#histograms), finite bounds only: the `+Inf`
//!   bucket is `count`.
//! * Values, sums and bounds are JSON numbers; a non-finite float (only a broken gauge could
//!   produce one) is written as `null`. Counts are integers.
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{cmp_label_values, sorted_buckets, type_name, unix_seconds};
use crate::model::{HistogramSeries, LabelRow, LabelValues, Metric, MetricValues, SampleRef, Snapshot};

/// The last instant RFC 3339 (four-digit years) can express.
const MAX_RFC3339_SECONDS: u64 = 253_402_300_799;

/// A float that serializes as `null` when it is not finite.
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            s.serialize_none()
        }
    }
}

/// Label names zipped with values, as a JSON object in config order.
struct Labels<'a, V: LabelValues> {
    names: &'a [String],
    values: V,
}

impl<V: LabelValues> Serialize for Labels<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.names.len().min(self.values.label_values().count())))?;
        for (n, v) in self.names.iter().zip(self.values.label_values()) {
            map.serialize_entry(n, v)?;
        }
        map.end()
    }
}

/// Config name → decoder error count, in snapshot order.
struct DecoderErrors<'a>(&'a [(String, u64)]);

impl Serialize for DecoderErrors<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (config, n) in self.0 {
            map.serialize_entry(config, n)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Document<'a> {
    window: WindowDoc,
    metrics: Vec<MetricDoc<'a>>,
    /// ebpfx's own metrics (configs, programs, probe cost), same shape as `metrics`.
    self_metrics: Vec<MetricDoc<'a>>,
    decoder_errors: DecoderErrors<'a>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct WindowDoc {
    start: Option<String>,
    end: Option<String>,
    start_unix_seconds: Num,
    end_unix_seconds: Num,
    duration_seconds: Num,
}

#[derive(Serialize)]
struct MetricDoc<'a> {
    config: &'a str,
    name: &'a str,
    help: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    labels: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket_multiplier: Option<Num>,
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<Vec<SampleDoc<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    series: Option<Vec<SeriesDoc<'a>>>,
}

#[derive(Serialize)]
struct SampleDoc<'a> {
    labels: Labels<'a, LabelRow<'a>>,
    value: Num,
}

#[derive(Serialize)]
struct SeriesDoc<'a> {
    labels: Labels<'a, &'a [String]>,
    count: u64,
    sum: Option<Num>,
    buckets: Vec<BucketDoc>,
}

#[derive(Serialize)]
struct BucketDoc {
    le: Num,
    count: u64,
}

fn rfc3339(t: SystemTime) -> Option<String> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (secs <= MAX_RFC3339_SECONDS).then(|| humantime::format_rfc3339_millis(t).to_string())
}

fn metric_doc(metric: &Metric) -> MetricDoc<'_> {
    let names = metric.label_names.as_slice();
    let mut doc = MetricDoc {
        config: &metric.config,
        name: &metric.name,
        help: &metric.help,
        kind: type_name(&metric.values),
        labels: names,
        bucket_type: None,
        bucket_multiplier: None,
        samples: None,
        series: None,
    };
    match &metric.values {
        MetricValues::Counter(samples) | MetricValues::Gauge(samples) => {
            let mut sorted: Vec<SampleRef<'_>> = samples.iter().collect();
            sorted.sort_by(|a, b| cmp_label_values(&a.labels, &b.labels));
            doc.samples = Some(
                sorted
                    .into_iter()
                    .map(|s| SampleDoc { labels: Labels { names, values: s.labels }, value: Num(s.value) })
                    .collect(),
            );
        }
        MetricValues::Histogram(h) => {
            doc.bucket_type = Some(h.bucket_type.as_str());
            doc.bucket_multiplier = Some(Num(h.multiplier));
            let mut sorted: Vec<&HistogramSeries> = h.series.iter().collect();
            sorted.sort_by(|a, b| cmp_label_values(&a.labels, &b.labels));
            doc.series = Some(
                sorted
                    .into_iter()
                    .map(|s| SeriesDoc {
                        labels: Labels { names, values: s.labels.as_slice() },
                        count: s.count,
                        sum: s.sum.map(Num),
                        buckets: sorted_buckets(s)
                            .into_iter()
                            .map(|b| BucketDoc { le: Num(b.le), count: b.cumulative })
                            .collect(),
                    })
                    .collect(),
            );
        }
    }
    doc
}

pub(crate) fn render(snapshot: &Snapshot) -> String {
    let window = &snapshot.window;
    let doc = Document {
        window: WindowDoc {
            start: rfc3339(window.start),
            end: rfc3339(window.end),
            start_unix_seconds: Num(unix_seconds(window.start)),
            end_unix_seconds: Num(unix_seconds(window.end)),
            duration_seconds: Num(window.length.as_secs_f64()),
        },
        metrics: snapshot.metrics.iter().map(metric_doc).collect(),
        self_metrics: snapshot.self_metrics.iter().map(metric_doc).collect(),
        decoder_errors: DecoderErrors(&snapshot.decoder_errors),
        warnings: &snapshot.warnings,
    };
    match serde_json::to_string_pretty(&doc) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        // Serializing these plain structs into a String cannot fail; keep the output valid JSON.
        Err(e) => format!("{{\"error\":{:?}}}\n", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bucket, BucketType, Histogram, Sample, Window};
    use std::time::Duration;

    fn snapshot() -> Snapshot {
        Snapshot {
            window: Window {
                start: UNIX_EPOCH + Duration::from_millis(1_763_766_000_000),
                end: UNIX_EPOCH + Duration::from_millis(1_763_766_010_500),
                length: Duration::from_millis(10_500),
            },
            metrics: vec![
                Metric {
                    config: "g".into(),
                    name: "weird".into(),
                    help: "h".into(),
                    label_names: vec!["b".into(), "a".into()],
                    values: MetricValues::Gauge(
                        vec![
                            Sample { labels: vec!["2".into(), "x".into()], value: f64::NAN },
                            Sample { labels: vec!["1".into(), "y\"\n".into()], value: f64::INFINITY },
                        ]
                        .into(),
                    ),
                },
                Metric {
                    config: "h".into(),
                    name: "h_seconds".into(),
                    help: "h".into(),
                    label_names: vec![],
                    values: MetricValues::Histogram(Histogram {
                        bucket_type: BucketType::Exp2,
                        multiplier: 1.0,
                        series: vec![HistogramSeries {
                            labels: vec![],
                            buckets: vec![Bucket { le: 1.0, cumulative: 3 }],
                            count: 3,
                            sum: None,
                        }],
                    }),
                },
            ],
            decoder_errors: vec![("z".into(), 1), ("a".into(), 0)],
            warnings: vec!["map full".into()],
            self_metrics: vec![],
        }
    }

    #[test]
    fn valid_json_with_non_finite_values() {
        let out = render(&snapshot());
        assert!(out.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["window"]["start"], "2025-11-21T23:00:00.000Z");
        assert_eq!(v["window"]["end"], "2025-11-21T23:00:10.500Z");
        assert_eq!(v["window"]["duration_seconds"], 10.5);
        let samples = &v["metrics"][0]["samples"];
        assert_eq!(samples[0]["labels"]["b"], "1");
        assert_eq!(samples[0]["labels"]["a"], "y\"\n");
        assert!(samples[0]["value"].is_null());
        assert!(samples[1]["value"].is_null());
        assert_eq!(v["metrics"][1]["type"], "histogram");
        assert!(v["metrics"][1]["series"][0]["sum"].is_null());
        assert_eq!(v["metrics"][1]["series"][0]["buckets"][0]["count"], 3);
        assert_eq!(v["decoder_errors"]["z"], 1);
        assert_eq!(v["warnings"][0], "map full");
    }

    #[test]
    fn label_objects_keep_config_order() {
        let out = render(&snapshot());
        let b = out.find("\"b\": \"1\"").unwrap_or(usize::MAX);
        let a = out.find("\"a\": \"y").unwrap_or(0);
        assert!(b < a, "{out}");
        let z = out.find("\"z\": 1").unwrap_or(usize::MAX);
        let a0 = out.find("\"a\": 0").unwrap_or(0);
        assert!(z < a0);
    }

    #[test]
    fn times_out_of_rfc3339_range_are_null() {
        let mut s = snapshot();
        s.window.start = UNIX_EPOCH - Duration::from_secs(10);
        let v: serde_json::Value = serde_json::from_str(&render(&s)).expect("valid JSON");
        assert!(v["window"]["start"].is_null());
        assert_eq!(v["window"]["start_unix_seconds"], -10.0);
    }
}
