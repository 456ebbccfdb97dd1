//! `ebpfx serve`: check everything (configs, web config, listen address, output file), bind,
//! attach once, drop capabilities, then either answer scrapes until SIGTERM/SIGINT (HTTP) or
//! rewrite `--output` every interval through the run loop ([`crate::window`]). Either way each
//! read covers the time since attach ([`crate::serve::Collector`]).
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::catalog::Resolved;
use crate::cli::{ServeArgs, MAX_DURATION};
use crate::error::usage_err;
use crate::model::Snapshot;
use crate::output::{push, remote_write, AtomicFile};
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
    // Targets and kernel-side --by labels are refused as `run` refuses them.
    let (resolved, opts, targets) =
        super::resolve_and_target(&args.names, &args.attach, args.series.by.as_deref(), false, globals)?;
    if let Some(r) = resolved.iter().find(|r| !r.config.events.is_empty()) {
        return Err(usage_err(format!(
            "config {} prints events, one line each: serve exports metrics only; use `ebpfx run {} -f json` \
             for its events, or `ebpfx run {} -f prom` for counts of them",
            r.config.name, r.config.name, r.config.name
        )));
    }
    let by = crate::regroup::parse_and_check(
        args.series.by.as_deref(),
        &resolved.iter().map(|r| &r.config).collect::<Vec<_>>(),
    )?;
    let keep = caps::parse(&args.capabilities_keep)?;
    let path = &args.telemetry_path;
    if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err(usage_err(format!("--web.telemetry-path {path:?}: expected a path such as /metrics")));
    }
    if let Some(i) = args.interval.filter(|i| *i > MAX_DURATION) {
        return Err(usage_err(format!("--interval {}: at most 10 years (3650d)", humantime::format_duration(i))));
    }
    // Everything that can be wrong with the flags is found before anything attaches.
    let fleet = Fleet::check(args, &resolved)?;
    if args.interval.is_some() && args.output.is_none() && fleet.is_none() {
        return Err(usage_err(
            "--interval sets how often --output, --remote-write or --push is written: give one of them",
        ));
    }
    let output = args.output.as_deref().map(|o| AtomicFile::create(o, "--output")).transpose()?;
    let web = args.web_config_file.as_deref().map(WebConfig::load).transpose()?.unwrap_or_default();
    let listener = if output.is_none() { Some(http::bind(&args.listen_address)?) } else { None };

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
    let render = Options { prefix: args.series.prefix.clone(), ..Options::default() };
    let mut collector = Collector::new(session, render);
    collector.by = by;
    let interval = args.interval.unwrap_or(DEFAULT_INTERVAL);
    let sender = fleet.map(|f| f.start(collector.render.clone())).transpose()?;

    match (output, listener) {
        (Some(file), _) => {
            let plan =
                Plan { length: None, interval: Some(interval), count: None, quiet: true, verbose: globals.verbose > 0 };
            if !globals.quiet {
                crate::say!(
                    "ebpfx: serving {} into {} every {}",
                    collector.session.config_names.join(" "),
                    args.output.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                    humantime::format_duration(plan.interval.unwrap_or(DEFAULT_INTERVAL))
                );
            }
            let mut blocks = TextfileBlocks { collector: &mut collector, file, first: true, sender: sender.as_ref() };
            window::run(&plan, &mut blocks)
        }
        (None, Some(listener)) => {
            let every = sender.as_ref().map(|s| (s, interval));
            serve_http(args, globals, collector, listener, web, every)
        }
        (None, None) => Err(anyhow::anyhow!("nothing to serve to")),
    }
}

/// Textfile mode: a block per interval, each writing the totals since the start.
struct TextfileBlocks<'a> {
    collector: &'a mut Collector,
    file: AtomicFile,
    first: bool,
    sender: Option<&'a Sender>,
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
        self.file.write_with(|w| crate::render::render_to(crate::render::Format::Prom, &snapshot, render, w))?;
        if let Some(sender) = self.sender {
            sender.send(snapshot);
        }
        if !block.last {
            self.collector.keep_keys_read();
        }
        Ok(())
    }
}

/// `--remote-write` and `--push`, checked before anything attaches.
struct Fleet {
    remote: Option<remote_write::Target>,
    push: Option<String>,
    job: String,
    push_labels: Vec<(String, String)>,
}

impl Fleet {
    fn check(args: &ServeArgs, resolved: &[Resolved]) -> anyhow::Result<Option<Fleet>> {
        let f = &args.fleet;
        if f.remote_write.is_none() && args.push.is_none() {
            if !f.push_labels.is_empty() {
                return Err(usage_err("--push-label labels what --push or --remote-write sends: give one of them"));
            }
            return Ok(None);
        }
        let push_labels = remote_write::external_labels(&args.job, &f.push_labels);
        if let Some(url) = &args.push {
            for r in resolved {
                push::group_url(url, &args.job, &r.config.name, &push_labels)?;
            }
        }
        let remote = f.remote_write.as_deref().map(|url| super::remote_write_target(url, &args.job, f)).transpose()?;
        Ok(Some(Fleet { remote, push: args.push.clone(), job: args.job.clone(), push_labels }))
    }

    /// Starts the thread that sends: a slow or unreachable receiver never holds back the scrapes
    /// or the textfile (a snapshot that finds it still busy with the previous one is skipped).
    fn start(self, render: Options) -> anyhow::Result<Sender> {
        let (tx, rx) = mpsc::sync_channel::<Snapshot>(1);
        std::thread::Builder::new()
            .name("ebpfx-send".into())
            .spawn(move || {
                for snapshot in rx {
                    if let Some(url) = &self.push {
                        if let Err(e) = push::push(url, &self.job, &self.push_labels, &snapshot, &render) {
                            crate::say!("ebpfx: warning: --push: {e:#}");
                        }
                    }
                    if let Some(target) = &self.remote {
                        if let Err(e) = remote_write::send(target, &snapshot, &render.prefix) {
                            crate::say!("ebpfx: warning: --remote-write: {e:#}");
                        }
                    }
                }
            })
            .map_err(|e| anyhow::anyhow!("starting the sending thread: {e}"))?;
        Ok(Sender(tx))
    }
}

/// Hands snapshots to the sending thread.
struct Sender(mpsc::SyncSender<Snapshot>);

impl Sender {
    fn send(&self, snapshot: Snapshot) {
        if let Err(mpsc::TrySendError::Full(_)) = self.0.try_send(snapshot) {
            crate::say!("ebpfx: warning: still sending an earlier interval's totals: this interval's are skipped");
        }
    }
}

fn serve_http(
    args: &ServeArgs,
    globals: &Globals<'_>,
    mut collector: Collector,
    listener: std::net::TcpListener,
    web: WebConfig,
    every: Option<(&Sender, Duration)>,
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
        let started = Instant::now();
        let scrapes = waiting.len();
        match collector.snapshot() {
            Ok(snapshot) => {
                if !warned && !globals.quiet {
                    for w in &snapshot.warnings {
                        crate::say!("ebpfx: warning: {w}");
                    }
                    warned = !snapshot.warnings.is_empty();
                }
                // The text goes out chunk by chunk as it is rendered, to every scrape waiting.
                let mut chunks = http::Chunks::default();
                for s in waiting {
                    s.start(&mut chunks);
                }
                let rendering = Instant::now();
                chunks.render(&snapshot, &collector.render);
                if globals.verbose > 1 {
                    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                    let (read, decode) = collector.last_times;
                    crate::say!(
                        "ebpfx: scrape ({scrapes} waiting): maps read in {:.1} ms, decoded in {:.1} ms, text rendered and queued in {:.1} ms; {:.1} ms in all",
                        ms(read),
                        ms(decode),
                        ms(rendering.elapsed()),
                        ms(started.elapsed())
                    );
                }
            }
            Err(e) => {
                crate::say!("ebpfx: scrape failed: {e:#}");
                for s in waiting {
                    s.fail(format!("{e:#}"));
                }
            }
        }
    };
    let mut next_send = every.map(|(_, interval)| Instant::now() + interval);
    loop {
        let wait = next_send.map_or(POLL, |t| t.saturating_duration_since(Instant::now()).min(POLL));
        match rx.recv_timeout(wait) {
            Ok(first) => answer(&mut collector, first, &rx),
            // Quiet for a while (the last answer is sent): keep the keys of a read that had
            // mostly new ones, so that no scrape waits for it.
            Err(RecvTimeoutError::Timeout) => collector.keep_keys_read(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let (Some((sender, interval)), Some(due)) = (every, next_send) {
            let now = Instant::now();
            if now >= due {
                // The next one on the interval's grid, never in the past.
                let mut next = due + interval;
                while next <= now {
                    next += interval;
                }
                next_send = Some(next);
                match collector.snapshot() {
                    Ok(snapshot) => sender.send(snapshot),
                    Err(e) => crate::say!("ebpfx: warning: reading the maps to send them: {e:#}"),
                }
            }
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
