//! `--push URL`: the Prometheus text of a run, PUT to a Pushgateway, one group per config
//! (grouping key job + config + the `--push-label`s, `instance` = the host name unless given),
//! so each config's series replace that config's previous push from the same host only.
use std::time::Duration;

use anyhow::anyhow;

use crate::error::usage_err;
use crate::model::{Metric, MetricValues, SampleRef, Snapshot};
use crate::render::{render, Format, Options};

/// Checks a grouping-key value: the Pushgateway takes it as one URL path segment.
fn segment(what: &str, v: &str) -> anyhow::Result<String> {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        Ok(v.to_string())
    } else {
        Err(usage_err(format!("{what} {v:?}: use letters, digits, '_', '-' or '.' for a Pushgateway grouping key")))
    }
}

/// URL-safe base64 (RFC 4648 §5), as the Pushgateway decodes `NAME@base64/VALUE` segments.
fn base64_url(v: &str) -> String {
    let b = crate::output::remote_write::base64(v.as_bytes()).replace('+', "-").replace('/', "_");
    if b.is_empty() {
        "=".to_string() // an empty value, as the Pushgateway spells it
    } else {
        b
    }
}

/// The group URL of one config: `URL/metrics/job/JOB/config/CONFIG` then `/NAME/VALUE` per
/// label of `labels` other than `job` and `config` (a value that is not a plain path segment
/// is sent as `NAME@base64/...`).
pub fn group_url(base: &str, job: &str, config: &str, labels: &[(String, String)]) -> anyhow::Result<String> {
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(usage_err(format!("--push {base}: expected an http:// or https:// URL of a Pushgateway")));
    }
    let path = base.split_once("://").and_then(|(_, rest)| rest.split_once('/')).map_or("", |(_, p)| p);
    if path.split('/').any(|seg| seg == "metrics") {
        return Err(usage_err(format!(
            "--push {base}: give the Pushgateway's base URL (ebpfx adds /metrics/job/...); grouping labels such as instance go in --push-label NAME=VALUE"
        )));
    }
    let mut url = format!(
        "{}/metrics/job/{}/config/{}",
        base.trim_end_matches('/'),
        segment("--job", job)?,
        segment("config name", config)?
    );
    for (name, value) in labels.iter().filter(|(n, _)| n != "job" && n != "config") {
        match segment(name, value) {
            Ok(v) => url.push_str(&format!("/{name}/{v}")),
            Err(_) => url.push_str(&format!("/{name}@base64/{}", base64_url(value))),
        }
    }
    Ok(url)
}

/// The snapshot restricted to one config: its metrics, its decoder errors, the same window.
pub fn for_config(snapshot: &Snapshot, config: &str) -> Snapshot {
    Snapshot {
        window: snapshot.window,
        metrics: snapshot.metrics.iter().filter(|m| m.config == config).cloned().collect(),
        decoder_errors: snapshot.decoder_errors.iter().filter(|(c, _)| c == config).cloned().collect(),
        warnings: Vec::new(),
        self_metrics: snapshot.self_metrics.iter().filter_map(|m| self_metric_for(m, config)).collect(),
    }
}

/// The rows of a self metric that belong to `config` (label `config`, or `name` for
/// enabled_configs); None when none do.
fn self_metric_for(m: &Metric, config: &str) -> Option<Metric> {
    let idx = m.label_names.iter().position(|l| l == "config" || l == "name")?;
    let keep = |s: &SampleRef<'_>| s.labels.get(idx) == Some(config);
    let values = match &m.values {
        MetricValues::Counter(s) => MetricValues::Counter(s.filtered(keep)),
        MetricValues::Gauge(s) => MetricValues::Gauge(s.filtered(keep)),
        MetricValues::Histogram(_) => return None,
    };
    Some(Metric { values, ..m.clone() })
}

/// PUTs every config's Prometheus text (no timestamps) to its group (see [`group_url`]).
pub fn push(
    base: &str,
    job: &str,
    labels: &[(String, String)],
    snapshot: &Snapshot,
    opts: &Options,
) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    for (config, _) in &snapshot.decoder_errors {
        let url = group_url(base, job, config, labels)?;
        let body = render(Format::Prom, &for_config(snapshot, config), opts);
        let resp = agent
            .put(&url)
            .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            .send(body.as_bytes())
            .map_err(|e| anyhow!("pushing to {url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.into_body().read_to_string().unwrap_or_default();
            return Err(anyhow!("the Pushgateway answered {status} for PUT {url}: {}", text.trim()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_urls() {
        assert_eq!(
            group_url("http://127.0.0.1:9091/", "ebpfx", "biolatency", &[]).expect("ok"),
            "http://127.0.0.1:9091/metrics/job/ebpfx/config/biolatency"
        );
        assert!(group_url("127.0.0.1:9091", "ebpfx", "x", &[]).is_err());
        assert!(group_url("http://h", "a/b", "x", &[]).is_err());
        // a grouping path in the URL (issue 13: "odd number of components") is refused
        let e = group_url("http://h:9091/metrics/job/j/instance/web-1", "ebpfx", "x", &[]).expect_err("path");
        assert!(format!("{e}").contains("--push-label"), "{e}");
        assert_eq!(
            group_url("http://h/pushgateway/", "ebpfx", "x", &[]).expect("a prefix path is fine"),
            "http://h/pushgateway/metrics/job/ebpfx/config/x"
        );
    }

    #[test]
    fn group_urls_with_labels() {
        let labels = crate::output::remote_write::external_labels(
            "ebpfx",
            &[("instance".into(), "web-1".into()), ("path".into(), "/var/lib".into()), ("e".into(), "".into())],
        );
        assert_eq!(
            group_url("http://h:9091", "ebpfx", "syscalls", &labels).expect("ok"),
            "http://h:9091/metrics/job/ebpfx/config/syscalls/e@base64/=/instance/web-1/path@base64/L3Zhci9saWI="
        );
        // without --push-label instance, the host name keeps hosts apart
        let labels = crate::output::remote_write::external_labels("ebpfx", &[]);
        let url = group_url("http://h:9091", "ebpfx", "syscalls", &labels).expect("ok");
        assert!(url.starts_with("http://h:9091/metrics/job/ebpfx/config/syscalls/instance"), "{url}");
    }
}
