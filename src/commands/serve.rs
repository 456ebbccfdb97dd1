//! `ebpfx serve`: check everything (configs, web config, listen address, output file), bind,
//! attach once, drop capabilities, then either answer scrapes until SIGTERM/SIGINT (HTTP) or
//! rewrite `--output` every interval through the run loop ([`crate::window`]). Either way each
//! read covers the time since attach ([`crate::serve::Collector`]).
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::catalog::{Catalog, Resolved};
use crate::cli::{ServeArgs, MAX_DURATION};
use crate::error::usage_err;
use crate::loader::LoadOptions;
use crate::output::AtomicFile;
use crate::render::Options;
use crate::serve::http::{self, Scrape};
use crate::serve::webconfig::WebConfig;
use crate::serve::{caps, Collector};
use crate::session::{Aim, Session};
use crate::window::{self, Block, Blocks, Plan};

use super::Globals;

/// `--interval` of textfile mode unless given.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
/// How often perf buffers are drained while no scrape comes.
const POLL: Duration = Duration::from_millis(100);

pub fn run(args: &ServeArgs, globals: &Globals<'_>) -> anyhow::Result<()> {
    if let Some(program) = args.command.first() {
        return Err(usage_err(format!(
            "serve does not start commands (-- {}): it serves until stopped; aim it at running tasks with \
             -p/--pid, --tid, --comm or --cgroup, or use `ebpfx run NAME -- COMMAND`",
            program.to_string_lossy()
        )));
    }
    let catalog = Catalog::new(globals.config_dir)?;
    let mut resolved: Vec<Resolved> = Vec::new();
    for name in &args.names {
        if resolved.iter().any(|r| r.config.name == *name) {
            return Err(usage_err(format!("config {name:?} is named twice")));
        }
        resolved.push(catalog.resolve(name)?);
    }
    crate::config::check_distinct_metrics(resolved.iter().map(|r| &r.config))?;
    // Targets and kernel-side --by labels, refused as `run` refuses them.
    let (targets, by_globals) = super::targets_and_by(&args.targets, false, args.by.as_deref(), &mut resolved)?;
    let probe = crate::targets::apply(&mut resolved, &args.probe)?;
    let flow_globals = crate::targets::flows::globals(args.port, args.addr.as_deref(), args.state.as_deref())?;
    let by =
        crate::regroup::parse_and_check(args.by.as_deref(), &resolved.iter().map(|r| &r.config).collect::<Vec<_>>())?;
    let keep = caps::parse(&args.capabilities_keep)?;
    let path = &args.telemetry_path;
    if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err(usage_err(format!("--web.telemetry-path {path:?}: expected a path such as /metrics")));
    }
    if let Some(i) = args.interval.filter(|i| *i > MAX_DURATION) {
        return Err(usage_err(format!("--interval {}: at most 10 years (3650d)", humantime::format_duration(i))));
    }
    // Everything that can be wrong with the flags is found before anything attaches.
    let output = args.output.as_deref().map(|o| AtomicFile::create(o, "--output")).transpose()?;
    let web = args.web_config_file.as_deref().map(WebConfig::load).transpose()?.unwrap_or_default();
    let listener = if output.is_none() { Some(http::bind(&args.listen_address)?) } else { None };

    let base = LoadOptions {
        strict: args.strict,
        verbose: globals.verbose,
        btf: args.btf.clone(),
        frequency: args.frequency,
        globals: flow_globals,
        probe,
        follow_forks: false,
    };
    let opts = super::load_options(&base, &targets, by_globals);
    let session = Session::attach(
        &resolved,
        Aim { opts, targets, command: Vec::new() },
        crate::session::Notes { quiet: globals.quiet, verbose: globals.verbose },
        "serve",
    )?;
    caps::drop_all_but(keep)?;
    if globals.verbose > 0 {
        let (eff, _) = caps::current().unwrap_or_default();
        crate::say!("ebpfx: attached; capabilities kept: {}", caps::names(eff));
    }
    let render = Options { prefix: args.prefix.clone(), ..Options::default() };
    let mut collector = Collector::new(session, render);
    collector.by = by;

    match (output, listener) {
        (Some(file), _) => {
            let plan = Plan {
                length: None,
                interval: Some(args.interval.unwrap_or(DEFAULT_INTERVAL)),
                count: None,
                quiet: true,
                verbose: globals.verbose > 0,
            };
            if !globals.quiet {
                crate::say!(
                    "ebpfx: serving {} into {} every {}",
                    collector.session.config_names.join(" "),
                    args.output.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                    humantime::format_duration(plan.interval.unwrap_or(DEFAULT_INTERVAL))
                );
            }
            let mut blocks = TextfileBlocks { collector: &mut collector, file, first: true };
            window::run(&plan, &mut blocks)
        }
        (None, Some(listener)) => serve_http(args, globals, collector, listener, web),
        (None, None) => Err(anyhow::anyhow!("nothing to serve to")),
    }
}

/// Textfile mode: a block per interval, each writing the totals since the start.
struct TextfileBlocks<'a> {
    collector: &'a mut Collector,
    file: AtomicFile,
    first: bool,
}

impl Blocks for TextfileBlocks<'_> {
    fn start(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn wants_ticks(&self) -> bool {
        !self.collector.session.events.is_empty()
    }

    fn tick(&mut self) {
        self.collector.session.events.poll();
    }

    fn block(&mut self, block: Block) -> anyhow::Result<()> {
        let snapshot = self.collector.snapshot()?;
        if block.last {
            self.collector.session.detach();
        }
        if self.first {
            // Warnings once: the same full map would otherwise be reported every interval.
            for w in &snapshot.warnings {
                crate::say!("ebpfx: warning: {w}");
            }
            self.first = false;
        }
        let render = &self.collector.render;
        self.file.write_with(|w| crate::render::render_to(crate::render::Format::Prom, &snapshot, render, w))
    }
}

fn serve_http(
    args: &ServeArgs,
    globals: &Globals<'_>,
    mut collector: Collector,
    listener: std::net::TcpListener,
    web: WebConfig,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::sync_channel::<Scrape>(http::MAX_WAITING);
    let landing = http::landing_page(&collector.session.config_names, &args.telemetry_path);
    let tls = web.tls.is_some();
    let server = http::start(listener, web, args.telemetry_path.clone(), landing, tx)?;
    if !globals.quiet {
        crate::say!(
            "ebpfx: serving {} on {}://{}{}",
            collector.session.config_names.join(" "),
            if tls { "https" } else { "http" },
            server.local_addr,
            args.telemetry_path
        );
    }
    // The first interrupt (window's signal rule) ends the serving; it is waited for on a
    // thread of its own, so that scrapes are answered at once.
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("ebpfx-signal".into())
        .spawn(move || {
            window::wait(None, false, |_| {});
            let _ = stop_tx.send(());
        })
        .map_err(|e| anyhow::anyhow!("starting the signal thread: {e}"))?;
    let mut warned = false;
    // Tests hold each scrape back this long, so that a SIGTERM lands while one is in flight.
    let delay = std::env::var("EBPFX_TEST_DELAY_SCRAPE_MS").ok().and_then(|v| v.parse::<u64>().ok());
    let mut answer = |collector: &mut Collector, first: Scrape, rx: &Receiver<Scrape>| {
        if let Some(ms) = delay {
            std::thread::sleep(Duration::from_millis(ms));
        }
        // Every scrape waiting now gets this one read.
        let mut waiting = vec![first];
        while let Ok(s) = rx.try_recv() {
            waiting.push(s);
        }
        let result = match collector.snapshot() {
            Ok(snapshot) => {
                if !warned && !globals.quiet {
                    for w in &snapshot.warnings {
                        crate::say!("ebpfx: warning: {w}");
                    }
                    warned = !snapshot.warnings.is_empty();
                }
                let mut out = Vec::new();
                crate::render::render_to(crate::render::Format::Prom, &snapshot, &collector.render, &mut out)
                    .map(|_| bytes::Bytes::from(out))
                    .map_err(|e| e.to_string())
            }
            Err(e) => {
                crate::say!("ebpfx: scrape failed: {e:#}");
                Err(format!("{e:#}"))
            }
        };
        for s in waiting {
            s.answer(result.clone());
        }
    };
    loop {
        match rx.recv_timeout(POLL) {
            Ok(first) => answer(&mut collector, first, &rx),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        collector.session.events.poll();
        if stop_rx.try_recv().is_ok() || server.is_finished() {
            break;
        }
    }
    // Stop: no new connections; the scrapes in flight are answered, then the programs detach.
    server.begin_stop();
    let deadline = Instant::now() + http::STOP_GRACE;
    while !server.is_finished() && Instant::now() < deadline {
        if let Ok(first) = rx.recv_timeout(Duration::from_millis(20)) {
            answer(&mut collector, first, &rx);
        }
    }
    drop(rx);
    collector.session.detach();
    server.join();
    if globals.verbose > 0 {
        crate::say!("ebpfx: stopped");
    }
    Ok(())
}
