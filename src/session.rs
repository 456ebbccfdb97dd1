//! One run, start to finish: resolve configs, load and attach, wait for the window (deadline or
//! Ctrl-C/SIGTERM), read the maps, decode one snapshot, render it, write it. The other modules
//! are called from here in order; none of them calls back.
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::catalog::{Catalog, Resolved};
use crate::collect;
use crate::decode::{Decoders, Env};
use crate::error::usage_err;
use crate::events::EventCounters;
use crate::loader::{self, LoadOptions, Loaded};
use crate::model::{MetricValues, Snapshot, Window};
use crate::raw::RawMap;
use crate::render::{self, Format, Options};
use crate::selfmetrics::{self, ProgramRow, RunStats};
use std::collections::HashMap;

/// Everything `ebpfx run` needs, independent of clap.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub names: Vec<String>,
    pub duration: Option<Duration>,
    pub format: Option<Format>,
    pub output: Option<PathBuf>,
    pub prefix: String,
    pub strict: bool,
    pub btf: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    pub verbose: u8,
    pub quiet: bool,
    /// Print a block per interval with that interval's values only.
    pub interval: Option<Duration>,
    /// Stop after this many interval blocks.
    pub count: Option<usize>,
    /// Head each block with the time.
    pub timestamp: bool,
    /// Also store the raw map contents and configs here, for `ebpfx render`.
    pub save_raw: Option<PathBuf>,
    /// Pushgateway base URL.
    pub push: Option<String>,
    /// Pushgateway job name.
    pub job: String,
    /// Redraw a live table in place each interval.
    pub watch: bool,
    /// Sampling frequency (Hz) of perf_event programs (`--frequency`).
    pub frequency: Option<u64>,
    /// `--probe BINARY:FUNCTION`: user functions for configs with a `probe_label`.
    pub probe: Vec<String>,
    /// Flow selection written into BPF globals: `--port`, `--addr`, `--state`.
    pub port: Option<u16>,
    pub addr: Option<String>,
    pub state: Option<String>,
}

/// Interrupts seen so far (Ctrl-C, SIGTERM, SIGHUP).
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
static SIGNALS: OnceLock<std::sync::Mutex<Option<Receiver<()>>>> = OnceLock::new();

/// Installs the handler once: the first signal ends the window early (results still print),
/// a second one exits at once with status 130.
fn install_signal_handler() -> anyhow::Result<()> {
    if SIGNALS.get().is_some() {
        return Ok(());
    }
    let (tx, rx) = mpsc::channel::<()>();
    ctrlc::set_handler(move || {
        if INTERRUPTS.fetch_add(1, Ordering::SeqCst) >= 1 {
            // Second interrupt: quit now. The kernel frees our programs and maps on exit.
            crate::watch::restore_terminal();
            let _ = std::io::stderr().write_all(b"\nebpfx: interrupted again, quitting without results\n");
            std::process::exit(130);
        }
        let _ = tx.send(());
    })
    .context("installing the Ctrl-C/SIGTERM handler")?;
    let _ = SIGNALS.set(std::sync::Mutex::new(Some(rx)));
    Ok(())
}

/// Waits until `deadline` (or forever without one) or the first interrupt. Returns true when
/// interrupted.
fn wait_window(duration: Option<Duration>, bar: &ProgressBar, events: &EventCounters) -> bool {
    let started = Instant::now();
    let guard = SIGNALS.get().and_then(|m| m.lock().ok());
    let Some(guard) = guard else {
        if let Some(d) = duration {
            std::thread::sleep(d);
        }
        return false;
    };
    let Some(rx) = guard.as_ref() else {
        return false;
    };
    if INTERRUPTS.load(Ordering::SeqCst) > 0 {
        return true;
    }
    // Wake every 100 ms to move the bar or drain perf buffers; otherwise sleep until the end.
    let slice =
        if bar.is_hidden() && events.is_empty() { Duration::from_secs(3600) } else { Duration::from_millis(100) };
    loop {
        let wait = match duration {
            Some(d) => {
                let left = d.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return false;
                }
                left.min(slice)
            }
            None => slice,
        };
        match rx.recv_timeout(wait) {
            Ok(()) => return true,
            Err(RecvTimeoutError::Timeout) => {
                bar.set_position(started.elapsed().as_millis() as u64);
                events.poll();
            }
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(d) = duration {
                    std::thread::sleep(d.saturating_sub(started.elapsed()));
                }
                return false;
            }
        }
    }
}

/// Shows progress on stderr only for a person at a terminal.
fn progress_bar(duration: Option<Duration>, quiet: bool) -> ProgressBar {
    let dumb = std::env::var("TERM").map(|t| t == "dumb").unwrap_or(false);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if quiet || dumb || no_color || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match duration {
        Some(d) => {
            let b = ProgressBar::with_draw_target(Some(d.as_millis() as u64), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{spinner} collecting [{bar:30}] {elapsed}/{msg}  (Ctrl-C ends early)")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            b.set_style(style);
            b.set_message(humantime::format_duration(d).to_string());
            b
        }
        None => {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} collecting for {elapsed}  (Ctrl-C stops and prints)")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            b.set_style(style);
            b
        }
    };
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `ebpfx render FILE`: decodes and renders a `--save-raw` snapshot, without root or BPF.
pub fn render_saved(file: &Path, format: Option<Format>, output: Option<&Path>, prefix: &str) -> anyhow::Result<()> {
    let run = crate::snapshot_file::load(file)?;
    if let Some(out) = output {
        check_output_dir(out)?;
    }
    let configs: Vec<&crate::config::Config> = run.configs.iter().map(|(c, _)| c).collect();
    let maps: Vec<Vec<RawMap>> = run.configs.iter().map(|(_, m)| m.clone()).collect();
    let mut snapshot = build_snapshot(&configs, &maps, run.window, &mut Decoders::new(Env::system()));
    snapshot.self_metrics = run.self_metrics;
    for w in &snapshot.warnings {
        eprintln!("ebpfx: warning: {w}");
    }
    let format = match format {
        Some(f) => Some(f),
        None if output.is_some() || !std::io::stdout().is_terminal() => Some(Format::Prom),
        None => None,
    };
    let opts = Options { prefix: prefix.to_string() };
    write_output_with(output, |w| render_for_to(format, &snapshot, &opts, w))
}

/// `ebpfx check`: prints each config's verdict and every problem; a config error (exit 2)
/// when any config has problems.
pub fn check(
    names: &[String],
    config_dir: Option<&Path>,
    attach: bool,
    btf: Option<PathBuf>,
    verbose: u8,
) -> anyhow::Result<()> {
    let catalog = Catalog::new(config_dir)?;
    loader::init_libbpf_logging(verbose);
    if attach {
        loader::check_privileges()?;
    }
    let opts = LoadOptions { strict: false, verbose, btf, ..Default::default() };
    let mut out = String::new();
    let mut failed = Vec::new();
    for name in names {
        let report = match catalog.resolve(name) {
            Ok(r) => crate::check::check(&r, &opts, attach),
            Err(e) => crate::check::Report { problems: vec![format!("{e:#}")], notes: vec![] },
        };
        if report.problems.is_empty() {
            out.push_str(&format!("{name}: ok\n"));
        } else {
            failed.push(name.clone());
            out.push_str(&format!("{name}: {} problem(s)\n", report.problems.len()));
            for p in &report.problems {
                out.push_str(&format!("  - {p}\n"));
            }
        }
        if verbose > 0 {
            for n in &report.notes {
                out.push_str(&format!("  note: {n}\n"));
            }
        }
    }
    write_output(None, &out)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(crate::error::config_err(format!("check failed for {}", failed.join(", "))))
    }
}

/// `ebpfx list`: name, source and description of every config.
pub fn list(config_dir: Option<&Path>) -> anyhow::Result<String> {
    let catalog = Catalog::new(config_dir)?;
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    table.set_header(vec!["NAME", "SOURCE", "DESCRIPTION"]);
    for l in catalog.list() {
        table.add_row(vec![l.name, l.source, l.description]);
    }
    let mut text = table.to_string();
    // comfy-table pads the last column; keep lines clean for grep and diff.
    text = text.lines().map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end()).collect::<Vec<_>>().join("\n");
    text.push('\n');
    Ok(text)
}

/// `ebpfx run`.
pub fn run(req: &RunRequest) -> anyhow::Result<()> {
    let catalog = Catalog::new(req.config_dir.as_deref())?;
    let mut resolved: Vec<Resolved> = Vec::new();
    for name in &req.names {
        if resolved.iter().any(|r| r.config.name == *name) {
            return Err(usage_err(format!("config {name:?} is named twice")));
        }
        // Every config is parsed and validated before any BPF is loaded.
        resolved.push(catalog.resolve(name)?);
    }
    // Run-time targets and flag globals, checked (like the configs) before anything loads.
    let probe = crate::targets::apply(&mut resolved, &req.probe)?;
    let globals = crate::targets::flows::globals(req.port, req.addr.as_deref(), req.state.as_deref())?;
    let format = choose_format(req);
    if let Some(f) = format.filter(|f| f.needs_stacks()) {
        check_has_stacks(f, &resolved)?;
    }
    if let Some(out) = &req.output {
        check_output_dir(out)?;
    }
    if req.watch {
        if !std::io::stdout().is_terminal() {
            return Err(usage_err(
                "--watch draws a live table and needs a terminal on stdout (use --interval for a stream)",
            ));
        }
        if req.output.is_some() || req.push.is_some() || req.format.is_some() {
            return Err(usage_err("--watch cannot be combined with --output, --push or --format"));
        }
    }
    if let Some(url) = &req.push {
        for r in &resolved {
            crate::push::group_url(url, &req.job, &r.config.name)?;
        }
    }
    if let Some(out) = &req.save_raw {
        check_output_dir(out)?;
        if req.interval.is_some() {
            return Err(usage_err("--save-raw stores one window: it cannot be combined with --interval"));
        }
    }

    loader::init_libbpf_logging(req.verbose);
    let opts = LoadOptions {
        strict: req.strict,
        verbose: req.verbose,
        btf: req.btf.clone(),
        frequency: req.frequency,
        globals,
        probe,
    };
    // Objects are opened and checked against their configs before anything is loaded.
    let prepared = resolved.iter().map(|r| loader::prepare(r, &opts)).collect::<anyhow::Result<Vec<_>>>()?;

    loader::check_privileges()?;
    install_signal_handler()?;

    let mut loaded: Vec<Loaded> = Vec::with_capacity(resolved.len());
    for p in prepared {
        let r = &p.resolved;
        if r.config.tracing_spans > 0 && !req.quiet {
            eprintln!(
                "ebpfx: note: config {} defines {} tracing span(s); a one-shot run does not collect spans",
                r.config.name, r.config.tracing_spans
            );
        }
        let l = loader::load(p, &opts)?;
        if let Some(spec) = &l.config.cgroup_id_map {
            let n = {
                let mut cgroups = HashMap::new();
                crate::decode::cgroup::walk(std::path::Path::new("/sys/fs/cgroup"), &mut cgroups);
                loader::cgroup_map::sync(&l, spec, cgroups)?
            };
            if req.verbose > 0 {
                eprintln!("ebpfx: config {}: cgroup_id_map {}: {n} cgroup(s) selected", l.config.name, spec.name);
            }
        }
        for p in l.programs.iter().filter(|p| !p.attached) {
            if !req.quiet {
                eprintln!(
                    "ebpfx: warning: config {}: program {} ({}) left out: {} (--strict makes this an error)",
                    l.config.name,
                    p.name,
                    p.section,
                    p.problem.as_deref().unwrap_or("unknown reason")
                );
            }
        }
        if req.verbose > 0 {
            let ids: Vec<String> = l.programs.iter().filter(|p| p.attached).map(|p| p.id.to_string()).collect();
            eprintln!(
                "ebpfx: config {}: {} of {} programs attached in {:.1} ms (program ids {})",
                l.config.name,
                l.attached(),
                l.programs.len(),
                l.setup_time.as_secs_f64() * 1000.0,
                ids.join(",")
            );
        }
        loaded.push(l);
    }
    loader::post_attach_mark();
    // Run-time statistics for the window only: the kernel turns them off when the guard's
    // descriptor closes (end of run, error, Ctrl-C, even SIGKILL).
    let stats_guard = match selfmetrics::enable_stats() {
        Ok(g) => Some(g),
        Err(e) => {
            if req.verbose > 0 {
                eprintln!("ebpfx: note: BPF run-time statistics unavailable ({e}): no run counts in the output");
            }
            None
        }
    };
    let config_names: Vec<String> = loaded.iter().map(|l| l.config.name.clone()).collect();
    let events = EventCounters::open(&loaded)?;
    let mut event_warnings: Vec<String> = Vec::new();

    let configs: Vec<crate::config::Config> = loaded.iter().map(|l| l.config.clone()).collect();
    let mut decoders = Decoders::new(Env::system());
    let render_opts = Options { prefix: req.prefix.clone() };
    let mut emitted = 0usize;

    let interval = if req.watch { Some(req.interval.unwrap_or(Duration::from_secs(1))) } else { req.interval };
    if let Some(interval) = interval {
        let screen = req.watch.then(crate::watch::Screen::enter);
        // bcc's [interval] [count]: each block holds that interval's events only, computed as
        // the difference between two reads (kernel maps are never cleared, so nothing is lost).
        let deadline = req.duration.map(|d| Instant::now() + d);
        let mut previous = read_all(&loaded, &events, &mut event_warnings)?;
        let mut previous_stats = gather_stats(&loaded).1;
        if req.verbose > 0 {
            eprintln!("ebpfx: window started");
        }
        loop {
            let wait = match deadline {
                Some(d) => interval.min(d.saturating_duration_since(Instant::now())),
                None => interval,
            };
            let start_wall = SystemTime::now();
            let start = Instant::now();
            let interrupted = wait_window(Some(wait), &ProgressBar::hidden(), &events);
            let window = Window { start: start_wall, end: SystemTime::now(), length: start.elapsed() };
            let (rows, stats) = gather_stats(&loaded);
            let current = read_all(&loaded, &events, &mut event_warnings)?;
            let deltas: Vec<Vec<RawMap>> = current
                .iter()
                .zip(&previous)
                .map(|(c, p)| c.iter().zip(p).map(|(c, p)| crate::raw::delta(c, p)).collect())
                .collect();
            let mut snapshot = build_snapshot(&configs.iter().collect::<Vec<_>>(), &deltas, window, &mut decoders);
            snapshot.warnings.append(&mut event_warnings);
            let run_stats = stats_guard.as_ref().map(|_| selfmetrics::window_delta(&previous_stats, &stats));
            snapshot.self_metrics = selfmetrics::metrics(&config_names, &rows, run_stats.as_ref());
            previous_stats = stats;
            match &screen {
                Some(screen) => {
                    let (rows, cols) = crate::watch::terminal_size().unwrap_or((24, 80));
                    let header = format!(
                        "ebpfx {} — every {} — {} — Ctrl-C quits",
                        config_names.join(" "),
                        humantime::format_duration(interval),
                        local_time(snapshot.window.end)
                    );
                    screen.draw(&crate::watch::frame(&header, &snapshot, rows, cols));
                }
                None => emit(req, format, &snapshot, &render_opts, emitted)?,
            }
            emitted += 1;
            previous = current;
            let done =
                interrupted || req.count.is_some_and(|c| emitted >= c) || deadline.is_some_and(|d| Instant::now() >= d);
            if done {
                break;
            }
        }
        for l in &mut loaded {
            l.detach();
        }
        return Ok(());
    }

    let bar = progress_bar(req.duration, req.quiet);
    let start_stats = gather_stats(&loaded).1;
    if req.verbose > 0 {
        eprintln!("ebpfx: window started");
    }
    let start_wall = SystemTime::now();
    let start = Instant::now();
    let interrupted = wait_window(req.duration, &bar, &events);
    let length = start.elapsed();
    let end_wall = SystemTime::now();
    let (rows, end_stats) = gather_stats(&loaded);
    bar.finish_and_clear();
    if interrupted && !req.quiet {
        eprintln!("ebpfx: interrupted after {:.1}s: printing what was collected", length.as_secs_f64());
    }
    // Lets the tests hit the "second Ctrl-C while printing" path deterministically.
    if let Some(ms) = std::env::var("EBPFX_TEST_DELAY_PRINT_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    // Read everything first, then detach, so the window closes at the same moment for all maps.
    let maps = read_all(&loaded, &events, &mut event_warnings)?;
    for l in &mut loaded {
        l.detach();
    }
    drop(events);
    drop(loaded);
    let window = Window { start: start_wall, end: end_wall, length };
    let run_stats = stats_guard.as_ref().map(|_| selfmetrics::window_delta(&start_stats, &end_stats));
    drop(stats_guard);
    let self_metrics = selfmetrics::metrics(&config_names, &rows, run_stats.as_ref());
    if let Some(path) = &req.save_raw {
        let saved: Vec<(&str, &str, &str, &[RawMap])> = resolved
            .iter()
            .zip(&maps)
            .map(|(r, m)| (r.config.name.as_str(), r.config.origin.as_str(), r.yaml.as_str(), m.as_slice()))
            .collect();
        write_atomic(path, crate::snapshot_file::to_json(&window, &saved, &self_metrics)?.as_bytes())?;
    }
    let mut snapshot = build_snapshot(&configs.iter().collect::<Vec<_>>(), &maps, window, &mut decoders);
    snapshot.warnings.append(&mut event_warnings);
    snapshot.self_metrics = self_metrics;
    emit(req, format, &snapshot, &render_opts, emitted)
}

/// Program rows and run statistics of every loaded config, by program id.
fn gather_stats(loaded: &[Loaded]) -> (Vec<ProgramRow>, HashMap<u32, RunStats>) {
    let mut rows = Vec::new();
    let mut stats = HashMap::new();
    for l in loaded {
        for (row, st) in selfmetrics::program_stats(l) {
            if row.id != 0 {
                stats.insert(row.id, st);
            }
            rows.push(row);
        }
    }
    (rows, stats)
}

/// `--format folded|flamegraph` print stack metrics only: refuse, before loading anything, a
/// run in which no config has one.
fn check_has_stacks(format: Format, resolved: &[Resolved]) -> anyhow::Result<()> {
    let has = resolved.iter().flat_map(|r| &r.config.metrics).any(|m| {
        let names: Vec<String> = m.labels.iter().map(|l| l.name.clone()).collect();
        matches!(m.kind, crate::config::MetricKind::Counter { .. }) && render::has_stack_labels(&names)
    });
    if has {
        return Ok(());
    }
    let names: Vec<&str> = resolved.iter().map(|r| r.config.name.as_str()).collect();
    let format = clap::ValueEnum::to_possible_value(&format).map(|v| v.get_name().to_string()).unwrap_or_default();
    Err(usage_err(format!(
        "--format {format} prints stacks (counters with a kstack or ustack label, such as profile's), and {} has none",
        names.join(", ")
    )))
}

/// Raw maps of every loaded config, in config order.
fn read_all(loaded: &[Loaded], events: &EventCounters, warnings: &mut Vec<String>) -> anyhow::Result<Vec<Vec<RawMap>>> {
    let mut maps = loaded.iter().map(collect::read_config).collect::<anyhow::Result<Vec<_>>>()?;
    *warnings = events.fill(&mut maps);
    Ok(maps)
}

/// Prints warnings, renders and writes one snapshot (one block in interval mode).
fn emit(
    req: &RunRequest,
    format: Option<Format>,
    snapshot: &Snapshot,
    opts: &Options,
    index: usize,
) -> anyhow::Result<()> {
    if !req.quiet {
        for w in &snapshot.warnings {
            eprintln!("ebpfx: warning: {w}");
        }
    }
    if let Some(url) = &req.push {
        crate::push::push(url, &req.job, snapshot, opts)?;
        if req.format.is_none() && req.output.is_none() {
            return Ok(());
        }
    }
    let mut text = String::new();
    if req.timestamp {
        let stamp = local_time(snapshot.window.end);
        match format {
            Some(Format::Prom) => text.push_str(&format!("# {stamp}\n")),
            // A line of its own would break these documents.
            Some(Format::Json | Format::Folded | Format::Flamegraph) => {}
            _ => text.push_str(&format!("{stamp}\n")),
        }
    } else if index > 0
        && !matches!(format, Some(Format::Json | Format::Folded | Format::Flamegraph))
        && req.output.is_none()
    {
        text.push('\n');
    }
    write_output_with(req.output.as_deref(), |w| {
        w.write_all(text.as_bytes())?;
        render_for_to(format, snapshot, opts, w)
    })
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

/// Decodes every config's raw maps into one snapshot. A metric that fails to decode is dropped
/// (spec §3.3) and counted as a decoder error of its config, with a warning saying why.
pub fn build_snapshot(
    configs: &[&crate::config::Config],
    maps: &[Vec<RawMap>],
    window: Window,
    decoders: &mut Decoders,
) -> Snapshot {
    let mut snapshot = Snapshot {
        window,
        metrics: Vec::new(),
        decoder_errors: Vec::new(),
        warnings: Vec::new(),
        self_metrics: Vec::new(),
    };
    for (config, raws) in configs.iter().zip(maps) {
        let mut errors = 0u64;
        for (metric, raw) in config.metrics.iter().zip(raws) {
            if raw.is_full() {
                snapshot.warnings.push(format!(
                    "config {}: map {} is full ({} entries): events after it filled were not counted; the numbers are lower bounds",
                    config.name, raw.name, raw.max_entries
                ));
            }
            // perf_event_array tallies arrive as an ordinary map of record bytes -> counts.
            let plain;
            let metric = if let crate::config::MetricKind::Counter { perf_event_array: true } = metric.kind {
                plain = crate::config::MetricConfig {
                    kind: crate::config::MetricKind::Counter { perf_event_array: false },
                    ..metric.clone()
                };
                &plain
            } else {
                metric
            };
            match decoders.metric(&config.name, metric, raw) {
                Ok(m) => snapshot.metrics.push(m),
                Err(e) => {
                    errors += 1;
                    snapshot.warnings.push(format!("{e} (metric dropped from the output)"));
                }
            }
        }
        snapshot.decoder_errors.push((config.name.clone(), errors));
    }
    snapshot
}

fn choose_format(req: &RunRequest) -> Option<Format> {
    match req.format {
        Some(f) => Some(f),
        None if req.output.is_some() || !std::io::stdout().is_terminal() => Some(Format::Prom),
        None => None, // the human view
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
        let s = Snapshot { metrics: hists, ..snapshot.clone() };
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

/// [`render_for`] into `sink`; Prometheus text is written as it is made.
pub fn render_for_to(
    format: Option<Format>,
    snapshot: &Snapshot,
    opts: &Options,
    sink: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Some(f) => render::render_to(f, snapshot, opts, sink),
        None => sink.write_all(render_for(None, snapshot, opts).as_bytes()),
    }
}

fn check_output_dir(out: &Path) -> anyhow::Result<()> {
    let dir = parent_dir(out);
    if !dir.is_dir() {
        return Err(usage_err(format!("--output {}: directory {} does not exist", out.display(), dir.display())));
    }
    if out.is_dir() {
        return Err(usage_err(format!("--output {}: is a directory, expected a file path", out.display())));
    }
    Ok(())
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes to stdout (a closed pipe ends quietly), or atomically to a file.
pub fn write_output(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    write_output_with(path, |w| w.write_all(text.as_bytes()))
}

/// Writes what `write` produces to stdout (a closed pipe ends quietly), or atomically to a file
/// (see [`write_atomic_with`]).
pub fn write_output_with(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    match path {
        None => {
            let mut out = std::io::stdout().lock();
            match write(&mut out).and_then(|_| out.flush()) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(anyhow!("writing to stdout: {e}")),
            }
        }
        Some(p) => write_atomic_with(p, write),
    }
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Temp file in the same directory, fsync, rename: readers (node_exporter's textfile collector)
/// see the old file or the new one, never half of one. The temp name does not end in `.prom`.
/// If `write` fails, the temp file is removed and `path` is left as it was.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let dir = parent_dir(path);
    let file_name = path
        .file_name()
        .ok_or_else(|| usage_err(format!("--output {}: not a file path", path.display())))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, f);
        write(&mut w)?;
        let f = w.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow!("writing {}: {e}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_full_map_is_reported_not_silently_undercounted() {
        let config = Config::parse(
            "c",
            "c.yaml",
            "metrics:\n  counters:\n    - name: x_total\n      help: h\n      labels:\n        - name: id\n          size: 4\n          decoders: [{name: uint}]\n",
        )
        .expect("config");
        let mut raw = RawMap { name: "x_total".into(), key_size: 4, slots: 1, max_entries: 2, ..RawMap::default() };
        raw.push(&1u32.to_ne_bytes(), &[5]);
        raw.push(&2u32.to_ne_bytes(), &[7]);
        let window =
            Window { start: SystemTime::UNIX_EPOCH, end: SystemTime::UNIX_EPOCH, length: Duration::from_secs(1) };
        let snap = build_snapshot(&[&config], &[vec![raw.clone()]], window, &mut Decoders::new(Env::system()));
        assert!(snap
            .warnings
            .iter()
            .any(|w| w.contains("map x_total is full (2 entries)") && w.contains("lower bounds")));
        assert_eq!(snap.metrics.len(), 1, "the metric is still printed");
        raw.max_entries = 3;
        let snap = build_snapshot(&[&config], &[vec![raw]], window, &mut Decoders::new(Env::system()));
        assert!(snap.warnings.is_empty());
    }

    #[test]
    fn a_write_that_fails_midway_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.prom");
        std::fs::write(&path, "old\n").expect("write");
        let err = write_atomic_with(&path, |w| {
            w.write_all(&[b'x'; 200_000])?;
            Err(std::io::Error::other("disk gone"))
        })
        .expect_err("fails");
        assert!(format!("{err:#}").contains("out.prom") && format!("{err:#}").contains("disk gone"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old\n");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from("out.prom")]);
        write_atomic_with(&path, |w| w.write_all(b"new\n")).expect("writes");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new\n");
    }
}
