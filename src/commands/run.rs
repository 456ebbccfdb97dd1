//! `ebpfx run`: resolve and check the configs and every output before anything loads, load
//! and attach, then let the one run loop ([`crate::window`]) drive the blocks; each block reads
//! the maps, decodes one snapshot and writes it (stdout, `--output`, `--watch`), then sends it
//! (`--push`, `--remote-write`): local output first, so a receiver that is down does not cost
//! the window's file or text.
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::catalog::Resolved;
use crate::cli::{RunArgs, MAX_DURATION};
use crate::config::MetricKind;
use crate::error::usage_err;
use crate::loader::{self, Loaded};
use crate::model::Snapshot;
use crate::output::view::{check_binary_output, choose_format, local_time, render_for_to};
use crate::output::{push, remote_write, watch, AtomicFile};
use crate::raw::RawMap;
use crate::render::{self, Format, Options};
use crate::selfmetrics::RunStats;
use crate::session::{Aim, Read, Session};
use crate::targets::tasks::{Gated, Running};
use crate::window::{self, Block, Blocks, Plan};

use super::Globals;

/// `--watch` redraws every second unless `--interval` says otherwise.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub fn run(args: &RunArgs, globals: &Globals<'_>) -> anyhow::Result<()> {
    let args = &with_positionals(args)?;
    check_duration("--for", args.duration)?;
    check_duration("--interval", args.interval)?;
    // Every config is parsed and validated, and the run-time targets checked, before any BPF
    // is loaded.
    let (resolved, opts, targets) = super::resolve_and_target(
        &args.names,
        &args.attach,
        args.series.by.as_deref(),
        !args.command.is_empty(),
        globals,
    )?;
    if super::events::is_event_run(&resolved) {
        return super::events::run(args, globals, resolved, &targets);
    }
    refuse_event_flags(args, &resolved)?;
    let format = choose_format(args.out.format, args.out.output.is_some());
    let by = crate::regroup::parse_and_check(
        args.series.by.as_deref(),
        &resolved.iter().map(|r| &r.config).collect::<Vec<_>>(),
    )?;
    if !args.watch {
        crate::regroup::check_top(args.out.top, format)?;
    }
    crate::regroup::check_stacks(by.as_ref(), format)?;
    if args.count.is_some() && args.interval.is_none() {
        return Err(usage_err("--count N needs an interval: -i/--interval, or a number after the config names"));
    }
    if let Some(f) = format.filter(|f| f.needs_stacks()) {
        check_has_stacks(f, &resolved)?;
    }
    check_binary_output(format, args.out.output.is_some())?;
    if format == Some(Format::Pprof) && args.interval.is_some() {
        return Err(usage_err("--format pprof writes one profile per run: it cannot be combined with --interval"));
    }
    if args.watch {
        if !std::io::stdout().is_terminal() {
            return Err(usage_err(
                "--watch draws a live table and needs a terminal on stdout (use --interval for a stream)",
            ));
        }
        if args.out.output.is_some()
            || args.push.is_some()
            || args.out.format.is_some()
            || args.fleet.remote_write.is_some()
        {
            return Err(usage_err("--watch cannot be combined with --output, --push, --remote-write or --format"));
        }
    }
    let push_labels = remote_write::external_labels(&args.job, &args.fleet.push_labels);
    if let Some(url) = &args.push {
        for r in &resolved {
            push::group_url(url, &args.job, &r.config.name, &push_labels)?;
        }
    }
    let remote = remote_write_target(args)?;
    if args.save_raw.is_some() && args.interval.is_some() {
        return Err(usage_err("--save-raw stores one window: it cannot be combined with --interval"));
    }
    // Output files are checked and opened (as temp files) before anything attaches: an
    // unwritable place is found now, not after the window.
    let output = args.out.output.as_deref().map(|o| AtomicFile::create(o, "--output")).transpose()?;
    let save_raw = args.save_raw.as_deref().map(|o| AtomicFile::create(o, "--save-raw")).transpose()?;

    let mut session = Session::attach(
        &resolved,
        Aim { opts, targets, command: args.command.clone() },
        crate::session::Notes { quiet: globals.quiet, verbose: globals.verbose },
        "a one-shot run",
    )?;
    let gated = session.gated.take();
    let sample_frequency_hz = sample_frequency(&session.loaded, args.attach.frequency);

    let interval = if args.watch { Some(args.interval.unwrap_or(WATCH_INTERVAL)) } else { args.interval };
    let plan =
        Plan { length: args.duration, interval, count: args.count, quiet: globals.quiet, verbose: globals.verbose > 0 };
    let mut blocks = RunBlocks {
        args,
        quiet: globals.quiet,
        format,
        render_opts: super::render_options(&args.out, &args.series),
        by,
        push_labels,
        remote,
        sample_frequency_hz,
        resolved: &resolved,
        session,
        previous_stats: HashMap::new(),
        previous: None,
        differences: interval.is_some(),
        output,
        save_raw,
        screen: args.watch.then(watch::Screen::enter),
        interval,
        gated,
        running: None,
    };
    let result = window::run(&plan, &mut blocks);
    if let Some(r) = blocks.running.as_mut() {
        if !globals.quiet {
            crate::say!("ebpfx: {}", r.report());
        }
    }
    result
}

/// `args` with bcc's trailing `[interval] [count]` moved from the names into `--interval` and
/// `--count`; both ways at once is refused.
fn with_positionals(args: &RunArgs) -> anyhow::Result<RunArgs> {
    let p = crate::grammar::split_positionals(&args.names)?;
    let mut out = args.clone();
    out.names = p.names;
    if let Some(i) = p.interval {
        if args.interval.is_some() {
            return Err(usage_err("the interval is given twice: as --interval and after the config names"));
        }
        out.interval = Some(i);
    }
    if let Some(c) = p.count {
        if args.count.is_some() {
            return Err(usage_err("the count is given twice: as --count and after the config names"));
        }
        out.count = Some(c);
    }
    Ok(out)
}

/// Refuses a duration longer than [`MAX_DURATION`] (no deadline arithmetic can overflow).
fn check_duration(flag: &str, d: Option<Duration>) -> anyhow::Result<()> {
    match d {
        Some(d) if d > MAX_DURATION => {
            Err(usage_err(format!("{flag} {}: at most 10 years (3650d)", humantime::format_duration(d))))
        }
        _ => Ok(()),
    }
}

/// `--remote-write` and its options, checked (secret files read) before anything loads.
fn remote_write_target(args: &RunArgs) -> anyhow::Result<Option<remote_write::Target>> {
    let f = &args.fleet;
    let Some(url) = &f.remote_write else {
        if !f.push_labels.is_empty() && args.push.is_none() {
            return Err(usage_err("--push-label labels what --push or --remote-write sends: give one of them"));
        }
        return Ok(None);
    };
    super::remote_write_target(url, &args.job, f).map(Some)
}

/// The sampling frequency of the run's `perf_event/` programs (`--frequency`, else the
/// section's `frequency=`), for pprof's cpu time; None when there is none or they differ.
fn sample_frequency(loaded: &[Loaded], flag: Option<u64>) -> Option<u64> {
    let mut found: Option<u64> = None;
    for p in loaded.iter().flat_map(|l| &l.programs).filter(|p| p.attached) {
        let Some(spec) = p.section.strip_prefix("perf_event/") else { continue };
        let f = flag.or_else(|| loader::sections::PerfEventSpec::parse(spec).ok().and_then(|s| s.frequency))?;
        if found.is_some_and(|g| g != f) {
            return None;
        }
        found = Some(f);
    }
    found
}

/// What each block of a run does: read every map, decode, write.
struct RunBlocks<'a> {
    args: &'a RunArgs,
    quiet: bool,
    format: Option<Format>,
    render_opts: Options,
    /// `--by`: the labels of the output.
    by: Option<crate::regroup::By>,
    /// The labels of `--push` groups and remote-written series (job, instance, --push-label).
    push_labels: Vec<(String, String)>,
    /// `--remote-write` and its options.
    remote: Option<remote_write::Target>,
    /// Sampling frequency of the perf_event programs (pprof's cpu time, saved with --save-raw).
    sample_frequency_hz: Option<u64>,
    resolved: &'a [Resolved],
    session: Session,
    previous_stats: HashMap<u32, RunStats>,
    /// The maps at the start of the block, when blocks print differences (`--interval`).
    previous: Option<Vec<Vec<RawMap>>>,
    /// bcc's `[interval]`: each block holds that interval's events only, the difference of two
    /// reads (kernel maps are never cleared, so nothing is lost between a read and a clear).
    differences: bool,
    output: Option<AtomicFile>,
    save_raw: Option<AtomicFile>,
    screen: Option<watch::Screen>,
    interval: Option<Duration>,
    /// `-- COMMAND` before the window starts, then while it runs.
    gated: Option<Gated>,
    running: Option<Running>,
}

impl RunBlocks<'_> {
    /// Prints warnings, writes one snapshot (one block in interval mode) to --output or stdout,
    /// then sends it to --push and --remote-write.
    fn emit(&mut self, snapshot: &Snapshot, index: u64) -> anyhow::Result<()> {
        let args = self.args;
        // The live table owns the terminal: no warnings on stderr under it.
        if let Some(screen) = &self.screen {
            let (rows, cols) = watch::terminal_size().unwrap_or((24, 80));
            let header = format!(
                "ebpfx {} — every {} — {} — Ctrl-C quits",
                self.session.config_names.join(" "),
                humantime::format_duration(self.interval.unwrap_or(WATCH_INTERVAL)),
                local_time(snapshot.window.end)
            );
            screen.draw(&watch::frame(&header, snapshot, rows, cols, &self.render_opts));
            return Ok(());
        }
        if !self.quiet {
            for w in &snapshot.warnings {
                crate::say!("ebpfx: warning: {w}");
            }
        }
        // Local output first: a receiver that is down must not cost the window's file or text.
        let sends = args.push.is_some() || self.remote.is_some();
        if !(sends && args.out.format.is_none() && args.out.output.is_none()) {
            self.write_results(snapshot, index)?;
        }
        if let Some(url) = &args.push {
            push::push(url, &args.job, &self.push_labels, snapshot, &self.render_opts)?;
        }
        if let Some(target) = &self.remote {
            remote_write::send(target, snapshot, &self.render_opts.prefix)?;
        }
        Ok(())
    }

    /// Renders one snapshot (one block in interval mode) to --output or stdout.
    fn write_results(&mut self, snapshot: &Snapshot, index: u64) -> anyhow::Result<()> {
        let args = self.args;
        let format = self.format;
        let mut text = String::new();
        if args.timestamp {
            let stamp = local_time(snapshot.window.end);
            match format {
                Some(Format::Prom) => text.push_str(&format!("# {stamp}\n")),
                // A line of its own would break these documents.
                Some(Format::Json | Format::Folded | Format::Flamegraph | Format::Pprof) => {}
                _ => text.push_str(&format!("{stamp}\n")),
            }
        } else if index > 0
            && !matches!(format, Some(Format::Json | Format::Folded | Format::Flamegraph | Format::Pprof))
            && args.out.output.is_none()
        {
            text.push('\n');
        }
        let opts = &self.render_opts;
        let frequency = self.sample_frequency_hz;
        let write = |w: &mut dyn Write| {
            w.write_all(text.as_bytes())?;
            render_for_to(format, snapshot, opts, frequency, w)
        };
        match self.output.as_mut() {
            Some(file) => file.write_with(write),
            None => crate::output::write_stdout(write),
        }
    }
}

impl Blocks for RunBlocks<'_> {
    fn start(&mut self) -> anyhow::Result<()> {
        if self.differences {
            self.previous = Some(self.session.read_maps()?);
        }
        self.previous_stats = self.session.gather_stats().1;
        if let Some(g) = self.gated.take() {
            self.running = Some(g.release()?);
        }
        Ok(())
    }

    fn wants_ticks(&self) -> bool {
        !self.session.events.is_empty() || self.gated.is_some() || self.running.is_some()
    }

    fn tick(&mut self) {
        self.session.events.poll();
        if self.running.as_mut().is_some_and(|r| r.exited()) {
            window::end_window();
        }
    }

    fn block(&mut self, block: Block) -> anyhow::Result<()> {
        // Read everything first, then detach, so the window closes at the same moment for all maps.
        let read = self.session.read()?;
        if block.last {
            self.session.detach();
        }
        // Counters and histograms: what happened in the interval. Gauges hold a level (a flow's
        // RTT, bytes acked): each block shows the value at its read, changed or not.
        let deltas: Option<Vec<Vec<RawMap>>> = self.previous.as_ref().map(|previous| {
            read.maps
                .iter()
                .zip(previous)
                .zip(&self.session.configs)
                .map(|((c, p), config)| {
                    c.iter()
                        .zip(p)
                        .zip(&config.metrics)
                        .map(|((c, p), m)| {
                            if matches!(m.kind, crate::config::MetricKind::Gauge) {
                                c.clone()
                            } else {
                                crate::raw::delta(c, p)
                            }
                        })
                        .collect()
                })
                .collect()
        });
        let mut snapshot = self.session.snapshot(&read, deltas.as_deref(), block.window, &self.previous_stats);
        if let Some(by) = &self.by {
            crate::regroup::regroup(&mut snapshot, by);
        }
        if let Some(file) = &mut self.save_raw {
            // The saved self metrics are those of the window, without the full-map notes (the
            // maps themselves are saved: rendering notes them again).
            let self_metrics: Vec<_> =
                snapshot.self_metrics.iter().filter(|m| m.name != crate::model::MAP_FULL).cloned().collect();
            let saved: Vec<(&str, &str, &str, &[RawMap])> = self
                .resolved
                .iter()
                .zip(&read.maps)
                .map(|(r, m)| (r.config.name.as_str(), r.config.origin.as_str(), r.yaml.as_str(), m.as_slice()))
                .collect();
            let json =
                crate::snapshot_file::to_json_sampled(&block.window, &saved, &self_metrics, self.sample_frequency_hz)?;
            file.write_with(|w| w.write_all(json.as_bytes()))?;
        }
        let Read { maps, stats, .. } = read;
        self.previous_stats = stats;
        if self.differences {
            self.previous = Some(maps);
        }
        self.emit(&snapshot, block.index)
    }
}

/// `--format folded|flamegraph|pprof` print stack metrics only: refuse, before loading anything, a
/// run in which no config has one.
fn check_has_stacks(format: Format, resolved: &[Resolved]) -> anyhow::Result<()> {
    let has = resolved.iter().flat_map(|r| &r.config.metrics).any(|m| {
        let names: Vec<String> = m.labels.iter().map(|l| l.name.clone()).collect();
        matches!(m.kind, MetricKind::Counter { .. }) && render::has_stack_labels(&names)
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

/// The event-tool flags mean nothing to a run of map configs: refused (exit 2) rather than
/// ignored, naming the flag and the configs.
fn refuse_event_flags(args: &RunArgs, resolved: &[crate::catalog::Resolved]) -> anyhow::Result<()> {
    let (flag, tools) = if args.ring_size.is_some() {
        ("--ring-size", "event tools (execsnoop, opensnoop, ...)")
    } else if args.event_buffer != crate::config::EventBuffer::Auto {
        ("--event-buffer", "event tools (execsnoop, opensnoop, ...)")
    } else if args.per_thread {
        ("--per-thread", "exitsnoop")
    } else {
        return Ok(());
    };
    let names: Vec<&str> = resolved.iter().map(|r| r.config.name.as_str()).collect();
    Err(usage_err(format!("{flag} is for {tools}: {} read maps, not events", names.join(", "))))
}
