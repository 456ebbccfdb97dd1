//! ebpfx's own metrics (ebpf_exporter's, adapted to a one-shot run; README.md, Output): which configs ran, which
//! programs were loaded and attached, and what the probes cost during the window (run count
//! and run time, from BPF run-time statistics switched on for the run only).
use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::model::{Metric, MetricValues, Sample};

/// One program of a config, as the loader reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramRow {
    pub config: String,
    pub program: String,
    pub id: u32,
    pub tag: String,
    pub attached: bool,
}

/// Run statistics of one program at a moment (cumulative since load).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    pub run_count: u64,
    pub run_time_ns: u64,
}

/// Keeps BPF run-time statistics on while alive; the kernel switches them back off when the
/// descriptor is closed, including when the process dies, so nothing is left changed.
pub struct StatsGuard(#[allow(dead_code)] OwnedFd);

/// Switches run-time statistics on (BPF_ENABLE_STATS). None (with the reason) when the kernel
/// refuses; run counts are then left out.
pub fn enable_stats() -> Result<StatsGuard, String> {
    // SAFETY: plain libbpf wrapper around the bpf() syscall; returns an fd or a negative errno.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd).to_string());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(StatsGuard(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `prog_tag`, `run_time_ns` and `run_cnt` from the fdinfo text of a program descriptor.
pub fn parse_fdinfo(text: &str) -> (String, RunStats) {
    let mut tag = String::new();
    let mut stats = RunStats::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        match k {
            "prog_tag" => tag = v.to_string(),
            "run_time_ns" => stats.run_time_ns = v.parse().unwrap_or(0),
            "run_cnt" => stats.run_count = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    (tag, stats)
}

/// Reads fdinfo of a program descriptor of this process.
pub fn read_fdinfo(fd: i32) -> (String, RunStats) {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).map(|t| parse_fdinfo(&t)).unwrap_or_default()
}

fn gauge(name: &str, help: &str, labels: &[&str], samples: Vec<Sample>) -> Metric {
    Metric {
        config: "ebpfx".into(),
        name: name.into(),
        help: help.into(),
        label_names: labels.iter().map(|s| s.to_string()).collect(),
        values: MetricValues::Gauge(samples.into()),
    }
}

fn counter(name: &str, help: &str, labels: &[&str], samples: Vec<Sample>) -> Metric {
    Metric {
        config: "ebpfx".into(),
        name: name.into(),
        help: help.into(),
        label_names: labels.iter().map(|s| s.to_string()).collect(),
        values: MetricValues::Counter(samples.into()),
    }
}

/// The self metrics of a window. `window_stats` holds, per program id, the statistics gathered
/// during the window (end minus start); None when statistics were unavailable.
pub fn metrics(
    configs: &[String],
    programs: &[ProgramRow],
    window_stats: Option<&HashMap<u32, RunStats>>,
) -> Vec<Metric> {
    let mut out = vec![gauge(
        "enabled_configs",
        "The set of enabled configs",
        &["name"],
        configs.iter().map(|c| Sample { labels: vec![c.clone()], value: 1.0 }).collect(),
    )];
    // No program `id` label: ids change with every load, and a series must not (a new series
    // per run or restart); config and program name tell the programs apart.
    let labels = |p: &ProgramRow| vec![p.config.clone(), p.program.clone()];
    out.push(gauge(
        "ebpf_program_info",
        "Info about ebpf programs",
        &["config", "program", "tag"],
        programs
            .iter()
            .map(|p| Sample { labels: vec![p.config.clone(), p.program.clone(), p.tag.clone()], value: 1.0 })
            .collect(),
    ));
    out.push(gauge(
        "ebpf_program_attached",
        "Whether a program is attached",
        &["config", "program"],
        programs.iter().map(|p| Sample { labels: labels(p), value: if p.attached { 1.0 } else { 0.0 } }).collect(),
    ));
    if let Some(stats) = window_stats {
        let attached: Vec<&ProgramRow> = programs.iter().filter(|p| p.attached).collect();
        let get = |p: &ProgramRow| stats.get(&p.id).copied().unwrap_or_default();
        out.push(counter(
            "ebpf_program_run_count_total",
            "How many times each program ran during the window",
            &["config", "program"],
            attached.iter().map(|p| Sample { labels: labels(p), value: get(p).run_count as f64 }).collect(),
        ));
        out.push(counter(
            "ebpf_program_run_time_seconds_total",
            "How long each program ran during the window, in seconds",
            &["config", "program"],
            attached.iter().map(|p| Sample { labels: labels(p), value: get(p).run_time_ns as f64 / 1e9 }).collect(),
        ));
    }
    out
}

/// Checks a self metric read from a saved snapshot as a config's metric is checked: a valid
/// Prometheus metric name, valid and distinct label names. Text that would break the output
/// is refused rather than printed.
pub fn validate(metric: &Metric) -> Result<(), String> {
    use crate::config::{valid_label_name, valid_metric_name};
    if !valid_metric_name(&metric.name) {
        return Err(format!("name {:?} is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", metric.name));
    }
    let mut seen = std::collections::HashSet::new();
    for l in &metric.label_names {
        if !valid_label_name(l) {
            return Err(format!(
                "label name {l:?} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
            ));
        }
        if !seen.insert(l.as_str()) {
            return Err(format!("label {l:?} appears twice"));
        }
    }
    Ok(())
}

/// Statistics gathered between two readings.
pub fn window_delta(start: &HashMap<u32, RunStats>, end: &HashMap<u32, RunStats>) -> HashMap<u32, RunStats> {
    end.iter()
        .map(|(id, e)| {
            let s = start.get(id).copied().unwrap_or_default();
            (
                *id,
                RunStats {
                    run_count: e.run_count.saturating_sub(s.run_count),
                    run_time_ns: e.run_time_ns.saturating_sub(s.run_time_ns),
                },
            )
        })
        .collect()
}

/// Per loaded program of a config: its status row (with tag) and current run statistics.
pub fn program_stats(loaded: &crate::loader::Loaded) -> Vec<(ProgramRow, RunStats)> {
    crate::loader::program_fds(loaded)
        .into_iter()
        .map(|(status, fd)| {
            let (tag, stats) = fd.map(read_fdinfo).unwrap_or_default();
            let row = ProgramRow {
                config: loaded.config.name.clone(),
                program: status.name.clone(),
                id: status.id,
                tag,
                attached: status.attached,
            };
            (row, stats)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_fields() {
        let t = "pos:\t0\nflags:\t02000002\nprog_type:\t26\nprog_jited:\t1\nprog_tag:\tc1b3cc4e3d9d5f26\nmemlock:\t4096\nprog_id:\t42\nrun_time_ns:\t1500\nrun_cnt:\t3\n";
        let (tag, s) = parse_fdinfo(t);
        assert_eq!(tag, "c1b3cc4e3d9d5f26");
        assert_eq!(s, RunStats { run_count: 3, run_time_ns: 1500 });
    }

    #[test]
    fn metrics_and_deltas() {
        let progs = vec![
            ProgramRow { config: "c".into(), program: "a".into(), id: 7, tag: "t".into(), attached: true },
            ProgramRow { config: "c".into(), program: "b".into(), id: 0, tag: String::new(), attached: false },
        ];
        let start = HashMap::from([(7, RunStats { run_count: 10, run_time_ns: 1000 })]);
        let end = HashMap::from([(7, RunStats { run_count: 25, run_time_ns: 4000 })]);
        let d = window_delta(&start, &end);
        let m = metrics(&["c".into()], &progs, Some(&d));
        assert_eq!(m.len(), 5);
        let MetricValues::Counter(runs) = &m[3].values else { panic!("counter") };
        assert_eq!(runs.to_vec(), vec![Sample { labels: vec!["c".into(), "a".into()], value: 15.0 }]);
        // Program ids change at every load: never a label (a new series per run).
        assert!(m.iter().all(|x| !x.label_names.iter().any(|l| l == "id")), "{m:?}");
        let MetricValues::Gauge(att) = &m[2].values else { panic!("gauge") };
        assert_eq!(att.get(1).map(|s| s.value), Some(0.0));
        assert_eq!(metrics(&[], &progs, None).len(), 3);
    }
}
