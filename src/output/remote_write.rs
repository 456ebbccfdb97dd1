//! `--remote-write URL`: a window's series sent to a Prometheus remote-write 1.0 receiver
//! (Prometheus with `--web.enable-remote-write-receiver`, Thanos Receive, Cortex, Mimir,
//! VictoriaMetrics): a snappy-compressed protobuf `WriteRequest`, every sample timestamped at
//! the window's end, so a one-shot window lands in the receiver's history at the time it
//! describes.
//!
//! Series are the ones the Prometheus text shows (same names with the prefix, histograms as
//! `_bucket`/`_sum`/`_count`, `decoder_errors_total` and the window gauges), plus the external
//! labels (`--push-label`, `job` from `--job`, `instance` = the host name unless given). A
//! series' own label wins over an external label of the same name; empty label values are left
//! out (Prometheus treats them as absent); of two series with the same labels the first is kept.
//!
//! A 2xx answer is success; 4xx is an error at once (the receiver refused the data, sending it
//! again cannot help); 5xx and transport errors are retried with doubling backoff for a few
//! seconds, then reported. Errors name the URL and the status.
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::anyhow;
use prost::Message;

use crate::error::usage_err;
use crate::model::{MetricValues, Snapshot};
use crate::render::number::go_float;

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Sorted by name, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Where and how to send, checked before anything is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub url: String,
    /// External labels, sorted by name, `job` and `instance` included.
    pub labels: Vec<(String, String)>,
    /// Extra request headers, `Authorization` included when auth options were given.
    pub headers: Vec<(String, String)>,
    /// Total number of attempts for 5xx and transport errors.
    pub attempts: u32,
    /// Wait before the second attempt; doubles after each failure.
    pub first_backoff: Duration,
}

/// The raw command-line values (see `cli::FleetArgs`).
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    pub url: &'a str,
    pub job: &'a str,
    pub push_labels: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub bearer_token_file: Option<&'a Path>,
    pub username: Option<&'a str>,
    pub password_file: Option<&'a Path>,
}

/// `NAME=VALUE` of `--push-label`: a Prometheus label name (not `__`-reserved, not `le` or
/// `job`, which comes from `--job`).
pub fn parse_push_label(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected NAME=VALUE"))?;
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || name.starts_with("__") {
        return Err(format!("{name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)"));
    }
    match name {
        "job" => Err("the job label comes from --job".to_string()),
        "le" => Err("`le` is the histogram bucket label".to_string()),
        _ => Ok((name.to_string(), value.to_string())),
    }
}

/// `NAME=VALUE` of `--remote-write-header`: an HTTP header (token characters, no CR/LF in the
/// value).
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected NAME=VALUE"))?;
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("{name:?} is not an HTTP header name"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!("header {name}: the value has control characters"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// The host name (`instance` by default), from the kernel.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The external labels: `--push-label`s, `job`, and `instance` (the host name unless given),
/// sorted by name.
pub fn external_labels(job: &str, push_labels: &[(String, String)]) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = Vec::new();
    for (n, v) in push_labels {
        // A label given twice: the last one wins, as flags usually do.
        labels.retain(|(m, _)| m != n);
        labels.push((n.clone(), v.clone()));
    }
    labels.push(("job".to_string(), job.to_string()));
    if !labels.iter().any(|(n, _)| n == "instance") {
        labels.push(("instance".to_string(), host_name()));
    }
    labels.sort();
    labels
}

/// Reads a secret file: its content without the trailing newline.
fn read_secret(flag: &str, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage_err(format!("{flag} {}: cannot read it: {e}", path.display())))?;
    let text = text.trim_end_matches(['\n', '\r']).to_string();
    if text.is_empty() {
        return Err(usage_err(format!("{flag} {}: the file is empty", path.display())));
    }
    Ok(text)
}

/// Standard base64 (RFC 4648, with padding), for basic auth.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Checks the options and reads the secret files: a usage error (exit 2) naming the flag.
pub fn target(o: &Options<'_>) -> anyhow::Result<Target> {
    if !(o.url.starts_with("http://") || o.url.starts_with("https://")) {
        return Err(usage_err(format!(
            "--remote-write {}: expected an http:// or https:// URL such as http://prometheus:9090/api/v1/write",
            o.url
        )));
    }
    let mut headers: Vec<(String, String)> = o.headers.to_vec();
    let auth = match (o.bearer_token_file, o.username, o.password_file) {
        (Some(_), Some(_), _) => {
            return Err(usage_err(
                "--remote-write-bearer-token-file and --remote-write-username: choose one way to authenticate",
            ))
        }
        (Some(path), None, _) => Some(format!("Bearer {}", read_secret("--remote-write-bearer-token-file", path)?)),
        (None, Some(user), Some(path)) => {
            let password = read_secret("--remote-write-password-file", path)?;
            Some(format!("Basic {}", base64(format!("{user}:{password}").as_bytes())))
        }
        (None, Some(_), None) => return Err(usage_err("--remote-write-username needs --remote-write-password-file")),
        (None, None, Some(_)) => return Err(usage_err("--remote-write-password-file needs --remote-write-username")),
        (None, None, None) => None,
    };
    if let Some(auth) = auth {
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization")) {
            return Err(usage_err(
                "--remote-write-header Authorization=... and an auth option both set Authorization: keep one",
            ));
        }
        headers.push(("Authorization".to_string(), auth));
    }
    Ok(Target {
        url: o.url.to_string(),
        labels: external_labels(o.job, o.push_labels),
        headers,
        attempts: 5,
        first_backoff: Duration::from_millis(500),
    })
}

/// Builds the series of one series' sample (see the module documentation).
struct Builder<'a> {
    external: &'a [(String, String)],
    timestamp: i64,
    seen: HashSet<Vec<Label>>,
    out: Vec<TimeSeries>,
}

impl Builder<'_> {
    fn add<'l>(&mut self, name: &str, labels: impl Iterator<Item = (&'l str, &'l str)>, value: f64) {
        let mut all: Vec<Label> = Vec::with_capacity(self.external.len() + 4);
        all.push(Label { name: "__name__".to_string(), value: name.to_string() });
        for (n, v) in labels.filter(|(_, v)| !v.is_empty()) {
            all.push(Label { name: n.to_string(), value: v.to_string() });
        }
        for (n, v) in self.external {
            if !v.is_empty() && !all.iter().any(|l| l.name == *n) {
                all.push(Label { name: n.clone(), value: v.clone() });
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        if self.seen.insert(all.clone()) {
            self.out.push(TimeSeries { labels: all, samples: vec![Sample { value, timestamp: self.timestamp }] });
        }
    }
}

/// The window's series, every sample at the window end (pure: no I/O).
pub fn write_request(snapshot: &Snapshot, prefix: &str, external: &[(String, String)]) -> WriteRequest {
    let end_ms = snapshot.window.end.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let mut b = Builder { external, timestamp: end_ms, seen: HashSet::new(), out: Vec::new() };
    for metric in snapshot.metrics.iter().chain(&snapshot.self_metrics) {
        let name = format!("{prefix}{}", metric.name);
        let names = &metric.label_names;
        match &metric.values {
            MetricValues::Counter(samples) | MetricValues::Gauge(samples) => {
                for s in samples.iter() {
                    b.add(&name, names.iter().map(String::as_str).zip(s.labels.iter()), s.value);
                }
            }
            MetricValues::Histogram(h) => {
                let (bucket, sum, count) = (format!("{name}_bucket"), format!("{name}_sum"), format!("{name}_count"));
                for series in &h.series {
                    let labels = || names.iter().map(String::as_str).zip(series.labels.iter().map(String::as_str));
                    for bk in crate::render::sorted_buckets(series) {
                        let le = go_float(bk.le);
                        b.add(&bucket, labels().chain([("le", le.as_str())]), bk.cumulative as f64);
                    }
                    b.add(&bucket, labels().chain([("le", "+Inf")]), series.count as f64);
                    b.add(&sum, labels(), series.sum.unwrap_or(0.0));
                    b.add(&count, labels(), series.count as f64);
                }
            }
        }
    }
    for (config, n) in &snapshot.decoder_errors {
        b.add(&format!("{prefix}decoder_errors_total"), [("config", config.as_str())].into_iter(), *n as f64);
    }
    // The window gauges carry the config label, as in the Prometheus text (render::prom).
    let window = &snapshot.window;
    let gauges = [
        (format!("{prefix}window_duration_seconds"), window.length.as_secs_f64()),
        (format!("{prefix}window_end_time_seconds"), end_ms as f64 / 1000.0),
    ];
    for (name, value) in &gauges {
        if snapshot.decoder_errors.is_empty() {
            b.add(name, std::iter::empty(), *value);
        }
        for (config, _) in &snapshot.decoder_errors {
            b.add(name, [("config", config.as_str())].into_iter(), *value);
        }
    }
    WriteRequest { timeseries: b.out }
}

/// The HTTP body: the protobuf, snappy block-compressed (not framed), as remote write wants.
pub fn encode(request: &WriteRequest) -> anyhow::Result<Vec<u8>> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .map_err(|e| anyhow!("compressing the remote-write request: {e}"))
}

/// Sends the window's series to `target`, retrying 5xx and transport errors with backoff.
pub fn send(target: &Target, snapshot: &Snapshot, prefix: &str) -> anyhow::Result<()> {
    let body = encode(&write_request(snapshot, prefix, &target.labels))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .user_agent(concat!("ebpfx/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let url = &target.url;
    let mut backoff = target.first_backoff;
    let mut attempt = 1;
    loop {
        let mut req = agent
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        for (n, v) in &target.headers {
            req = req.header(n.as_str(), v.as_str());
        }
        let failure = match req.send(&body[..]) {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    return Ok(());
                }
                let text = resp.into_body().read_to_string().unwrap_or_default();
                let text: String = text.trim().chars().take(300).collect();
                let failure = format!("the remote-write receiver answered {status} for POST {url}: {text}");
                if !status.is_server_error() {
                    return Err(anyhow!("{failure} (not retried: the receiver refused the data)"));
                }
                failure
            }
            Err(e) => format!("remote write to {url}: {e}"),
        };
        if attempt >= target.attempts {
            return Err(anyhow!("{failure} (gave up after {attempt} attempts)"));
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(10));
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bucket, BucketType, Histogram, HistogramSeries, Metric, Sample as ModelSample};

    fn labels(ts: &TimeSeries) -> Vec<(String, String)> {
        ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn series_labels_sorted_with_external_labels_and_window_end_timestamps() {
        let counter = Metric {
            config: "syscalls".into(),
            name: "syscalls_total".into(),
            help: "h".into(),
            label_names: vec!["syscall".into(), "instance".into(), "empty".into()],
            values: MetricValues::Counter(
                vec![
                    ModelSample { labels: vec!["read".into(), "".into(), "".into()], value: 7.0 },
                    ModelSample { labels: vec!["write".into(), "mine".into(), "".into()], value: 2.0 },
                    ModelSample { labels: vec!["read".into(), "".into(), "".into()], value: 9.0 },
                ]
                .into(),
            ),
        };
        let snap = Snapshot::of(vec![counter]);
        let ext = owned(&[("instance", "host1"), ("job", "j"), ("zone", "z")]);
        let req = write_request(&snap, "ebpfx_", &ext);
        let first = &req.timeseries[0];
        assert_eq!(
            labels(first),
            owned(&[
                ("__name__", "ebpfx_syscalls_total"),
                ("instance", "host1"),
                ("job", "j"),
                ("syscall", "read"),
                ("zone", "z")
            ])
        );
        assert_eq!(first.samples, [Sample { value: 7.0, timestamp: 3000 }]);
        // the series' own instance label wins; the duplicate `read` series is dropped
        assert_eq!(labels(&req.timeseries[1])[1], ("instance".to_string(), "mine".to_string()));
        let names: Vec<&str> = req.timeseries.iter().map(|t| t.labels[0].value.as_str()).collect();
        assert_eq!(
            names,
            [
                "ebpfx_syscalls_total",
                "ebpfx_syscalls_total",
                "ebpfx_window_duration_seconds",
                "ebpfx_window_end_time_seconds"
            ]
        );
        assert_eq!(req.timeseries[3].samples[0].value, 3.0);
        // round trip through snappy and protobuf
        let raw = snap::raw::Decoder::new().decompress_vec(&encode(&req).expect("encode")).expect("snappy");
        assert_eq!(WriteRequest::decode(raw.as_slice()).expect("protobuf"), req);
    }

    #[test]
    fn histograms_as_bucket_sum_and_count() {
        let h = Metric {
            config: "biolatency".into(),
            name: "bio_latency_seconds".into(),
            help: "h".into(),
            label_names: vec!["disk".into()],
            values: MetricValues::Histogram(Histogram {
                bucket_type: BucketType::Exp2,
                multiplier: 1e-6,
                series: vec![HistogramSeries {
                    labels: vec!["vda".into()],
                    buckets: vec![Bucket { le: 1e-6, cumulative: 2 }, Bucket { le: 2e-6, cumulative: 5 }],
                    count: 6,
                    sum: Some(0.5),
                }],
            }),
        };
        let mut snap = Snapshot::of(vec![h]);
        snap.decoder_errors.push(("biolatency".into(), 0));
        let req = write_request(&snap, "p_", &owned(&[("job", "j")]));
        let got: Vec<String> = req
            .timeseries
            .iter()
            .map(|t| {
                let l: Vec<String> = t.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect();
                format!("{} {}", l.join(","), t.samples[0].value)
            })
            .collect();
        assert_eq!(
            got,
            [
                "__name__=p_bio_latency_seconds_bucket,disk=vda,job=j,le=1e-06 2",
                "__name__=p_bio_latency_seconds_bucket,disk=vda,job=j,le=2e-06 5",
                "__name__=p_bio_latency_seconds_bucket,disk=vda,job=j,le=+Inf 6",
                "__name__=p_bio_latency_seconds_sum,disk=vda,job=j 0.5",
                "__name__=p_bio_latency_seconds_count,disk=vda,job=j 6",
                "__name__=p_decoder_errors_total,config=biolatency,job=j 0",
                "__name__=p_window_duration_seconds,config=biolatency,job=j 3",
                "__name__=p_window_end_time_seconds,config=biolatency,job=j 3",
            ]
        );
    }

    #[test]
    fn flags_are_checked() {
        assert_eq!(parse_push_label("zone=eu-1"), Ok(("zone".into(), "eu-1".into())));
        assert_eq!(parse_push_label("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_push_label("zone").is_err());
        assert!(parse_push_label("1x=a").is_err());
        assert!(parse_push_label("__name__=a").is_err());
        assert!(parse_push_label("job=a").is_err());
        assert_eq!(parse_header("X-Scope-OrgID=tenant 1"), Ok(("X-Scope-OrgID".into(), "tenant 1".into())));
        assert!(parse_header("Bad Name=x").is_err());
        assert!(parse_header("X=a\nb").is_err());
        let ext = external_labels("ebpfx", &owned(&[("zone", "a"), ("zone", "b")]));
        assert_eq!(ext, owned(&[("instance", &host_name()), ("job", "ebpfx"), ("zone", "b")]));
        let ext = external_labels("j", &owned(&[("instance", "web-1")]));
        assert_eq!(ext, owned(&[("instance", "web-1"), ("job", "j")]));
        assert_eq!(base64(b"user:pa55"), "dXNlcjpwYTU1");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn auth_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").expect("write");
        let o =
            Options { url: "http://r/api/v1/write", job: "j", bearer_token_file: Some(&token), ..Default::default() };
        let t = target(&o).expect("target");
        assert_eq!(t.headers, owned(&[("Authorization", "Bearer s3cret")]));
        let o = Options { username: Some("u"), password_file: Some(&token), bearer_token_file: None, ..o };
        assert_eq!(target(&o).expect("basic").headers, owned(&[("Authorization", "Basic dTpzM2NyZXQ=")]));
        let missing = dir.path().join("missing");
        let o2 = Options { password_file: Some(&missing), ..o.clone() };
        let e = target(&o2).expect_err("missing file");
        assert!(format!("{e}").contains("--remote-write-password-file"), "{e}");
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(target(&Options { url: "r:9090", ..o.clone() }).is_err());
        assert!(target(&Options { password_file: None, ..o }).is_err());
    }
}
