//! `--push URL`: the Prometheus text of a run, PUT to a Pushgateway, one group per config
//! (grouping key job + config), so each config's series replace that config's previous push.
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

/// The group URL of one config: `URL/metrics/job/JOB/config/CONFIG`.
pub fn group_url(base: &str, job: &str, config: &str) -> anyhow::Result<String> {
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(usage_err(format!("--push {base}: expected an http:// or https:// URL of a Pushgateway")));
    }
    Ok(format!(
        "{}/metrics/job/{}/config/{}",
        base.trim_end_matches('/'),
        segment("--job", job)?,
        segment("config name", config)?
    ))
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

/// PUTs every config's Prometheus text (no timestamps) to its group.
pub fn push(base: &str, job: &str, snapshot: &Snapshot, opts: &Options) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    for (config, _) in &snapshot.decoder_errors {
        let url = group_url(base, job, config)?;
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
            group_url("http://127.0.0.1:9091/", "ebpfx", "biolatency").expect("ok"),
            "http://127.0.0.1:9091/metrics/job/ebpfx/config/biolatency"
        );
        assert!(group_url("127.0.0.1:9091", "ebpfx", "x").is_err());
        assert!(group_url("http://h", "a/b", "x").is_err());
    }
}
