//! Event records as text, one line each: the `table` header and lines, and JSON Lines. Pure
//! functions of [`crate::event_model`]; `prom` and `hist` of events go through a snapshot of
//! counts ([`counts_snapshot`]) and the usual renderers.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::event_model::{EventRow, EventSchema};
use crate::model::{Bucket, BucketType, Histogram, HistogramSeries, Metric, MetricValues, Samples, Snapshot, Window};

/// The table header: column names in capitals, `TIME` first with `-T`.
pub fn table_header(schema: &EventSchema, time: bool) -> String {
    let mut line = String::new();
    if time {
        line.push_str("TIME     ");
    }
    for c in &schema.columns {
        let name = c.name.to_uppercase();
        if c.long {
            line.push_str(&name);
            line.push(' ');
        } else {
            let _ = write!(line, "{name:<w$} ", w = c.width);
        }
    }
    finish(line)
}

/// One table line. `time` is the `-T` column text (`HH:MM:SS`).
pub fn table_line(schema: &EventSchema, row: &EventRow, time: Option<&str>) -> String {
    let mut line = String::new();
    table_line_into(schema, row, time, &mut line);
    line
}

/// [`table_line`] appended to `line`.
pub fn table_line_into(schema: &EventSchema, row: &EventRow, time: Option<&str>, line: &mut String) {
    let begin = line.len();
    if let Some(t) = time {
        pad(line, t, 8);
    }
    for c in &schema.columns {
        let v = row.values.get(c.field).map(String::as_str).unwrap_or("");
        let at = line.len();
        // One line per event: a value's own newlines or tabs would break the table.
        if v.contains(['\n', '\t', '\r']) {
            line.push_str(&v.replace(['\n', '\t', '\r'], " "));
        } else {
            line.push_str(v);
        }
        if !c.long {
            let shown = line[at..].chars().count();
            line.extend(std::iter::repeat(' ').take(c.width.saturating_sub(shown)));
        }
        line.push(' ');
    }
    let trimmed = line[begin..].trim_end().len();
    line.truncate(begin + trimmed);
    line.push('\n');
}

fn pad(line: &mut String, v: &str, width: usize) {
    line.push_str(v);
    line.extend(std::iter::repeat(' ').take(width.saturating_sub(v.chars().count())));
    line.push(' ');
}

fn finish(mut line: String) -> String {
    let trimmed = line.trim_end().len();
    line.truncate(trimmed);
    line.push('\n');
    line
}

/// One JSON object (one line): `time` (RFC 3339, UTC) when the record has one, `config`, then
/// every printed column; values of `uint`/`int` chains as numbers.
pub fn json_line(schema: &EventSchema, row: &EventRow) -> String {
    let mut line = String::new();
    json_line_into(schema, row, &mut line);
    line
}

/// [`json_line`] appended to `line`.
pub fn json_line_into(schema: &EventSchema, row: &EventRow, line: &mut String) {
    line.push('{');
    if let Some(ns) = row.time_ns {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
        let _ = write!(line, "\"time\":\"{}\",", humantime::format_rfc3339_micros(t));
    }
    line.push_str("\"config\":");
    json_str(line, &schema.config);
    let value = |name: &str| {
        schema.columns.iter().find(|c| c.name == name).and_then(|c| row.values.get(c.field)).map(String::as_str)
    };
    if schema.span {
        line.push_str(",\"name\":");
        json_str(line, value("span_name").filter(|n| !n.is_empty()).unwrap_or(&schema.stream));
        let duration = value("span_duration_ns").and_then(|d| d.parse::<u64>().ok());
        if let (Some(start), Some(d)) = (row.time_ns, duration) {
            let end = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(start.saturating_add(d));
            let _ = write!(line, ",\"end\":\"{}\"", humantime::format_rfc3339_micros(end));
        }
    }
    for c in &schema.columns {
        let v = row.values.get(c.field).map(String::as_str).unwrap_or("");
        // ebpf_exporter: an all-zero parent span id means the span has no parent.
        if schema.span && c.name == "parent_span_id" && v.bytes().all(|b| b == b'0') {
            continue;
        }
        line.push(',');
        json_str(line, &c.name);
        line.push(':');
        if c.numeric && !v.starts_with('+') && v.parse::<i128>().is_ok() {
            line.push_str(v);
        } else {
            json_str(line, v);
        }
    }
    line.push_str("}\n");
}

/// `s` as a JSON string (RFC 8259 escapes).
fn json_str(line: &mut String, s: &str) {
    line.push('"');
    for ch in s.chars() {
        match ch {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// What one stream counted over a window: events by label values, the latency field's values
/// by exp2 bucket, events lost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub by_labels: BTreeMap<Vec<String>, u64>,
    /// exp2 bucket k (microseconds in (2^(k-1), 2^k]; 0 holds 0 and 1) → events.
    pub latency: BTreeMap<u32, u64>,
    pub latency_sum: u128,
    pub lost: u64,
}

impl Counts {
    /// Counts `row`; its latency (raw units, `multiplier` seconds each) goes into exp2 buckets
    /// of microseconds, as bcc's and ebpf_exporter's latency histograms have them.
    pub fn add(&mut self, schema: &EventSchema, row: &EventRow, multiplier: f64) {
        let labels: Vec<String> =
            schema.labels.iter().map(|(i, _)| row.values.get(*i).cloned().unwrap_or_default()).collect();
        *self.by_labels.entry(labels).or_insert(0) += 1;
        if let Some(v) = row.latency {
            let us = (v as f64 * multiplier * 1e6) as u64;
            let k = if us <= 1 { 0 } else { 64 - (us - 1).leading_zeros() };
            *self.latency.entry(k).or_insert(0) += 1;
            self.latency_sum += u128::from(v);
        }
    }
}

/// One stream's counts and how to name them.
pub struct CountedStream<'a> {
    pub schema: &'a EventSchema,
    pub help: &'a str,
    pub counts: &'a Counts,
    /// Seconds per raw latency unit; None: the stream has no latency field.
    pub latency_multiplier: Option<f64>,
    pub latency_name: Option<&'a str>,
}

/// The help of the lost-events self metric.
pub const LOST_HELP: &str = "Events a ring buffer had no room for (or the kernel skipped), by config";

/// A snapshot of the window's counts: `<stream>_events_total{labels}` per stream, the latency
/// histogram `<stream>_<field>_seconds`, and `events_lost_total{config}` among the self metrics.
pub fn counts_snapshot(window: Window, streams: &[CountedStream<'_>], mut self_metrics: Vec<Metric>) -> Snapshot {
    let mut metrics = Vec::new();
    let mut lost: BTreeMap<&str, u64> = BTreeMap::new();
    for s in streams {
        let names: Vec<String> = s.schema.labels.iter().map(|(_, n)| n.clone()).collect();
        let mut samples = Samples::new(names.len());
        for (labels, n) in &s.counts.by_labels {
            samples.push(labels.iter().map(String::as_str), *n as f64);
        }
        metrics.push(Metric {
            config: s.schema.config.clone(),
            name: format!("{}_events_total", s.schema.stream),
            help: s.help.to_string(),
            label_names: names,
            values: MetricValues::Counter(samples),
        });
        if let (Some(m), Some(field)) = (s.latency_multiplier, s.latency_name) {
            let top = s.counts.latency.keys().next_back().copied().unwrap_or(0);
            let mut cumulative = 0u64;
            let buckets = (0..=top)
                .map(|k| {
                    cumulative += s.counts.latency.get(&k).copied().unwrap_or(0);
                    Bucket { le: 2f64.powi(k as i32) * 1e-6, cumulative }
                })
                .collect();
            let series = HistogramSeries {
                labels: Vec::new(),
                buckets,
                count: cumulative,
                sum: Some(s.counts.latency_sum as f64 * m),
            };
            metrics.push(Metric {
                config: s.schema.config.clone(),
                name: format!("{}_{}_seconds", s.schema.stream, field.trim_end_matches("_ns")),
                help: format!("{} of {} events, exp2 histogram in seconds", field, s.schema.stream),
                label_names: Vec::new(),
                values: MetricValues::Histogram(Histogram {
                    bucket_type: BucketType::Exp2,
                    multiplier: 1e-6,
                    series: vec![series],
                }),
            });
        }
        *lost.entry(s.schema.config.as_str()).or_insert(0) += s.counts.lost;
    }
    let mut samples = Samples::new(1);
    for (config, n) in &lost {
        samples.push([*config], *n as f64);
    }
    self_metrics.push(Metric {
        config: "ebpfx".into(),
        name: "events_lost_total".into(),
        help: LOST_HELP.into(),
        label_names: vec!["config".into()],
        values: MetricValues::Counter(samples),
    });
    Snapshot { window, metrics, decoder_errors: Vec::new(), warnings: Vec::new(), self_metrics }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_model::Column;

    fn schema() -> EventSchema {
        let col = |name: &str, field, width, long, numeric| Column { name: name.into(), field, width, long, numeric };
        EventSchema {
            config: "execsnoop".into(),
            stream: "execsnoop".into(),
            columns: vec![
                col("pid", 0, 7, false, true),
                col("comm", 1, 16, false, false),
                col("args", 2, 0, true, false),
            ],
            labels: vec![(1, "comm".into())],
            span: false,
        }
    }

    fn row(pid: &str, comm: &str, args: &str) -> EventRow {
        EventRow {
            time_ns: Some(1_700_000_000_123_456_789),
            values: vec![pid.into(), comm.into(), args.into()],
            latency: Some(3),
        }
    }

    #[test]
    fn table_lines_align_under_the_header_and_long_fields_go_last() {
        let s = schema();
        assert_eq!(table_header(&s, false), "PID     COMM             ARGS\n");
        assert_eq!(table_line(&s, &row("12", "true", "/bin/true x"), None), "12      true             /bin/true x\n");
        assert_eq!(table_header(&s, true), "TIME     PID     COMM             ARGS\n");
        assert_eq!(table_line(&s, &row("1", "a\nb", ""), Some("10:00:00")), "10:00:00 1       a b\n");
    }

    #[test]
    fn json_lines_parse_with_numbers_as_numbers() {
        let line = json_line(&schema(), &row("12", "tr\"ue", "/bin/true 'a b'"));
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["pid"], 12);
        assert_eq!(v["comm"], "tr\"ue");
        assert_eq!(v["args"], "/bin/true 'a b'");
        assert_eq!(v["time"], "2023-11-14T22:13:20.123456Z");
        let ctl = json_line(&schema(), &row("1", "a\u{1}\\b\tc", ""));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&ctl).expect("json")["comm"], "a\u{1}\\b\tc");
        let odd = json_line(&schema(), &row("-", "x", ""));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&odd).expect("json")["pid"], "-");
    }

    #[test]
    fn counts_become_counters_a_histogram_and_the_lost_metric() {
        let s = schema();
        let mut c = Counts::default();
        for (comm, lat) in [("a", 0), ("a", 1), ("b", 2), ("b", 1000)] {
            let mut r = row("1", comm, "");
            r.latency = Some(lat);
            c.add(&s, &r, 1e-6);
        }
        c.lost = 7;
        let start = std::time::UNIX_EPOCH;
        let w = Window { start, end: start, length: std::time::Duration::from_secs(1) };
        let stream = CountedStream {
            schema: &s,
            help: "h",
            counts: &c,
            latency_multiplier: Some(1e-9),
            latency_name: Some("latency_ns"),
        };
        let snap = counts_snapshot(w, &[stream], Vec::new());
        let MetricValues::Counter(samples) = &snap.metrics[0].values else { panic!("counter") };
        assert_eq!(
            samples.iter().map(|s| (s.labels.to_vec(), s.value)).collect::<Vec<_>>(),
            vec![(vec!["a".to_string()], 2.0), (vec!["b".to_string()], 2.0)]
        );
        let MetricValues::Histogram(h) = &snap.metrics[1].values else { panic!("histogram") };
        assert_eq!(snap.metrics[1].name, "execsnoop_latency_seconds");
        let counts = h.series[0].counts();
        assert_eq!((counts[0], counts[1], counts[10], h.series[0].count), (2, 1, 1, 4));
        let text = crate::render::render(crate::render::Format::Prom, &snap, &crate::render::Options::default());
        assert!(text.contains("ebpfx_events_lost_total{config=\"execsnoop\"} 7\n"), "{text}");
        assert!(text.contains("ebpfx_execsnoop_events_total{comm=\"a\"} 2\n"), "{text}");
    }
}
