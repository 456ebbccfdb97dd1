//! `ebpfx run`: resolve and check the configs and every output before anything loads, load
//! and attach, then let the one run loop ([`crate::window`]) drive the blocks; each block reads
//! the maps, decodes one snapshot and writes it (stdout, `--output`, `--push`, `--watch`).
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::catalog::{Catalog, Resolved};
use crate::cli::{RunArgs, MAX_DURATION};
use crate::config::MetricKind;
use crate::error::usage_err;
use crate::loader::LoadOptions;
use crate::model::Snapshot;
use crate::output::view::{choose_format, local_time, render_for_to};
use crate::output::{push, watch, AtomicFile};
use crate::raw::RawMap;
use crate::render::{self, Format, Options};
use crate::selfmetrics::RunStats;
use crate::session::{Read, Session};
use crate::window::{self, Block, Blocks, Plan};

use super::Globals;

/// `--watch` redraws every second unless `--interval` says otherwise.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub fn run(args: &RunArgs, globals: &Globals<'_>) -> anyhow::Result<()> {
    check_duration("--for", args.duration)?;
    check_duration("--interval", args.interval)?;
    let catalog = Catalog::new(globals.config_dir)?;
    let mut resolved: Vec<Resolved> = Vec::new();
    for name in &args.names {
        if resolved.iter().any(|r| r.config.name == *name) {
            return Err(usage_err(format!("config {name:?} is named twice")));
        }
        // Every config is parsed and validated before any BPF is loaded.
        resolved.push(catalog.resolve(name)?);
    }
    // Run-time targets and flag globals, checked (like the configs) before anything loads.
    let probe = crate::probe::apply(&mut resolved, args.probe.as_deref())?;
    let flow_globals = crate::flowfilter::globals(args.port, args.addr.as_deref(), args.state.as_deref())?;
    let format = choose_format(args.format, args.output.is_some());
    if let Some(f) = format.filter(|f| f.needs_stacks()) {
        check_has_stacks(f, &resolved)?;
    }
    if args.watch {
        if !std::io::stdout().is_terminal() {
            return Err(usage_err(
                "--watch draws a live table and needs a terminal on stdout (use --interval for a stream)",
            ));
        }
        if args.output.is_some() || args.push.is_some() || args.format.is_some() {
            return Err(usage_err("--watch cannot be combined with --output, --push or --format"));
        }
    }
    if let Some(url) = &args.push {
        for r in &resolved {
            push::group_url(url, &args.job, &r.config.name)?;
        }
    }
    if args.save_raw.is_some() && args.interval.is_some() {
        return Err(usage_err("--save-raw stores one window: it cannot be combined with --interval"));
    }
    // Output files are checked and opened (as temp files) before anything attaches: an
    // unwritable place is found now, not after the window.
    let output = args.output.as_deref().map(|o| AtomicFile::create(o, "--output")).transpose()?;
    let save_raw = args.save_raw.as_deref().map(|o| AtomicFile::create(o, "--save-raw")).transpose()?;

    let opts = LoadOptions {
        strict: args.strict,
        verbose: globals.verbose,
        btf: args.btf.clone(),
        frequency: args.frequency,
        globals: flow_globals,
        probe,
    };
    let session = Session::attach(&resolved, &opts, globals, "a one-shot run")?;

    let interval = if args.watch { Some(args.interval.unwrap_or(WATCH_INTERVAL)) } else { args.interval };
    let plan =
        Plan { length: args.duration, interval, count: args.count, quiet: globals.quiet, verbose: globals.verbose > 0 };
    let mut blocks = RunBlocks {
        args,
        quiet: globals.quiet,
        format,
        render_opts: Options { prefix: args.prefix.clone() },
        resolved: &resolved,
        session,
        previous_stats: HashMap::new(),
        previous: None,
        differences: interval.is_some(),
        output,
        save_raw,
        screen: args.watch.then(watch::Screen::enter),
        interval,
    };
    window::run(&plan, &mut blocks)
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

/// What each block of a run does: read every map, decode, write.
struct RunBlocks<'a> {
    args: &'a RunArgs,
    quiet: bool,
    format: Option<Format>,
    render_opts: Options,
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
}

impl RunBlocks<'_> {
    /// Prints warnings, renders and writes one snapshot (one block in interval mode).
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
            screen.draw(&watch::frame(&header, snapshot, rows, cols));
            return Ok(());
        }
        if !self.quiet {
            for w in &snapshot.warnings {
                crate::say!("ebpfx: warning: {w}");
            }
        }
        if let Some(url) = &args.push {
            push::push(url, &args.job, snapshot, &self.render_opts)?;
            if args.format.is_none() && args.output.is_none() {
                return Ok(());
            }
        }
        let format = self.format;
        let mut text = String::new();
        if args.timestamp {
            let stamp = local_time(snapshot.window.end);
            match format {
                Some(Format::Prom) => text.push_str(&format!("# {stamp}\n")),
                // A line of its own would break these documents.
                Some(Format::Json | Format::Folded | Format::Flamegraph) => {}
                _ => text.push_str(&format!("{stamp}\n")),
            }
        } else if index > 0
            && !matches!(format, Some(Format::Json | Format::Folded | Format::Flamegraph))
            && args.output.is_none()
        {
            text.push('\n');
        }
        let opts = &self.render_opts;
        let write = |w: &mut dyn Write| {
            w.write_all(text.as_bytes())?;
            render_for_to(format, snapshot, opts, w)
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
        Ok(())
    }

    fn wants_ticks(&self) -> bool {
        !self.session.events.is_empty()
    }

    fn tick(&mut self) {
        self.session.events.poll();
    }

    fn block(&mut self, block: Block) -> anyhow::Result<()> {
        // Read everything first, then detach, so the window closes at the same moment for all maps.
        let read = self.session.read()?;
        if block.last {
            self.session.detach();
        }
        let deltas: Option<Vec<Vec<RawMap>>> = self.previous.as_ref().map(|previous| {
            read.maps
                .iter()
                .zip(previous)
                .map(|(c, p)| c.iter().zip(p).map(|(c, p)| crate::raw::delta(c, p)).collect())
                .collect()
        });
        let snapshot = self.session.snapshot(&read, deltas.as_deref(), block.window, &self.previous_stats);
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
            let json = crate::snapshot_file::to_json(&block.window, &saved, &self_metrics)?;
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

/// `--format folded|flamegraph` print stack metrics only: refuse, before loading anything, a
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
