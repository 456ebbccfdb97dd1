//! Which rendering a run or a `render` prints: the `--format` asked for, Prometheus text when
//! stdout is not a terminal or with `--output`, otherwise the human view (histograms as `hist`,
//! counters and gauges as a `table`).
use std::io::{IsTerminal, Write};
use std::time::SystemTime;

use crate::error::usage_err;
use crate::model::{MetricValues, Snapshot, MAP_FULL};
use crate::render::{self, Format, Options};

/// `--format`, else prom for a file or a pipe, else None (the human view).
pub fn choose_format(format: Option<Format>, to_file: bool) -> Option<Format> {
    match format {
        Some(f) => Some(f),
        None if to_file || !std::io::stdout().is_terminal() => Some(Format::Prom),
        None => None,
    }
}

/// Binary formats (pprof) go to `--output` or a pipe, never to a terminal: refused (a usage
/// error) before anything runs.
pub fn check_binary_output(format: Option<Format>, to_file: bool) -> anyhow::Result<()> {
    match format {
        Some(f) if f.is_binary() && !to_file && std::io::stdout().is_terminal() => {
            let name = clap::ValueEnum::to_possible_value(&f).map(|v| v.get_name().to_string()).unwrap_or_default();
            Err(usage_err(format!(
                "--format {name} is binary and stdout is a terminal: use --output FILE or redirect stdout"
            )))
        }
        _ => Ok(()),
    }
}

/// Renders in `format`, or the human view (histograms as hist, counters/gauges as a table).
pub fn render_for(format: Option<Format>, snapshot: &Snapshot, opts: &Options) -> String {
    if let Some(f) = format {
        return render::render(f, snapshot, opts);
    }
    let (hists, others): (Vec<_>, Vec<_>) =
        snapshot.metrics.iter().cloned().partition(|m| matches!(m.values, MetricValues::Histogram(_)));
    let mut out = String::new();
    if !hists.is_empty() {
        let mut s = Snapshot { metrics: hists, ..snapshot.clone() };
        if !others.is_empty() {
            // The table below prints the full-map notes.
            s.self_metrics.retain(|m| m.name != MAP_FULL);
        }
        out.push_str(&render::render(Format::Hist, &s, opts));
    }
    if !others.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        let s = Snapshot { metrics: others, ..snapshot.clone() };
        out.push_str(&render::render(Format::Table, &s, opts));
    }
    if out.is_empty() {
        out.push_str("(no data collected in the window)\n");
    }
    out
}

/// [`render_for`] into `sink`; Prometheus text is written as it is made. pprof is written with
/// `sample_frequency_hz`, the sampling frequency of the programs that counted the stacks (it
/// adds the profile's cpu time).
pub fn render_for_to(
    format: Option<Format>,
    snapshot: &Snapshot,
    opts: &Options,
    sample_frequency_hz: Option<u64>,
    sink: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Some(Format::Pprof) => render::render_pprof_to(snapshot, sample_frequency_hz, sink),
        Some(f) => render::render_to(f, snapshot, opts, sink),
        None => sink.write_all(render_for(None, snapshot, opts).as_bytes()),
    }
}

/// `HH:MM:SS` in local time, as bcc's -T prints it.
pub fn local_time(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as libc::time_t;
    // SAFETY: `tm` is plain data filled by localtime_r from a valid time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return format!("{secs}");
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}
