//! `ebpfx run` of event configs (`events:`, docs/events.md): the same run loop
//! ([`crate::window`]) with another [`Blocks`]: at each tick (the rings' epoll descriptor wakes
//! it) the records are read, decoded ([`crate::stream::event`]) and printed as they arrive
//! (`table`, `json`), or counted for the window's end (`prom`, `hist`). Lost records are
//! counted and said, never silent. `--save-raw` keeps the records; `ebpfx render` replays them.
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};

use crate::catalog::Resolved;
use crate::cli::{RenderArgs, RunArgs};
use crate::config::Config;
use crate::config::EventBuffer;
use crate::decode::{Decoders, Env};
use crate::error::usage_err;
use crate::model::Window;
use crate::output::AtomicFile;
use crate::render::events::{self as ev_render, CountedStream, Counts};
use crate::render::{Format, Options};
use crate::selfmetrics::RunStats;
use crate::session::Session;
use crate::stream::event::{clock_offset_ns, EventDecoder};
use crate::stream::perfbuf;
use crate::stream::ringbuf::{self, EventReader, PerfSizing};
use crate::targets::GlobalValue;
use crate::window::{self, Block, Blocks, Plan};

use super::Globals;

/// Whether the run is of event configs (then [`run`] takes it).
pub fn is_event_run(resolved: &[Resolved]) -> bool {
    resolved.iter().any(|r| !r.config.events.is_empty())
}

/// Formats an event run prints; table is the default.
fn event_format(format: Option<Format>) -> anyhow::Result<Format> {
    match format {
        None => Ok(Format::Table),
        Some(f @ (Format::Table | Format::Json | Format::Prom | Format::Hist)) => Ok(f),
        Some(f) => {
            let name = clap::ValueEnum::to_possible_value(&f).map(|v| v.get_name().to_string()).unwrap_or_default();
            Err(usage_err(format!(
                "--format {name}: event tools print table (one line per event), json (JSON Lines), prom or hist (counts at the end of the window)"
            )))
        }
    }
}

/// `--ring-size`: bytes, or a number with K, M or G (powers of 1024).
pub fn parse_ring_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let shift = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => {
            return Err(usage_err(format!(
                "--ring-size {text:?}: expected bytes or a number with K, M or G (e.g. 64K)"
            )))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| usage_err(format!("--ring-size {text:?}: expected a number of bytes (e.g. 65536 or 64K)")))?;
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n).unwrap_or(u64::MAX);
    ringbuf::check_ring_size(bytes).map_err(|e| usage_err(format!("--ring-size {text}: {e}")))?;
    Ok(bytes)
}

/// The transport of `--event-buffer` on this kernel: `auto` turns into `perf` where the kernel
/// has no ring buffers; `ring` there is a usage error.
fn event_buffer(flag: EventBuffer, kernel_has_rings: bool) -> anyhow::Result<EventBuffer> {
    match (flag, kernel_has_rings) {
        (EventBuffer::Auto, false) => Ok(EventBuffer::Perf),
        (EventBuffer::Ring, false) => Err(usage_err(format!(
            "--event-buffer ring: this kernel ({}) has no BPF ring buffers (BPF_MAP_TYPE_RINGBUF, Linux 5.8+): use --event-buffer auto or perf",
            kernel_release()
        ))),
        (flag, _) => Ok(flag),
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into())
}

/// Refuses, before anything loads, what an event run cannot do.
fn check_args(args: &RunArgs, resolved: &[Resolved], format: Format) -> anyhow::Result<()> {
    if let Some(r) = resolved.iter().find(|r| r.config.events.is_empty() || !r.config.metrics.is_empty()) {
        let names: Vec<&str> =
            resolved.iter().filter(|r| !r.config.events.is_empty()).map(|r| r.config.name.as_str()).collect();
        return Err(usage_err(format!(
            "config {} has metrics and {} prints events: run event tools apart from map tools",
            r.config.name,
            names.join(", ")
        )));
    }
    let refused: [(bool, &str); 8] = [
        (args.watch, "--watch"),
        (args.push.is_some(), "--push"),
        (args.fleet.remote_write.is_some(), "--remote-write"),
        (args.series.by.is_some(), "--by"),
        (args.out.top.is_some(), "--top"),
        (!args.attach.probe.is_empty(), "--probe"),
        (args.attach.addr.is_some(), "--addr"),
        (args.attach.state.is_some(), "--state"),
    ];
    if let Some((_, flag)) = refused.iter().find(|(on, _)| *on) {
        return Err(usage_err(format!("{flag} does not apply to event tools ({})", names(resolved))));
    }
    let streams: usize = resolved.iter().map(|r| r.config.events.len()).sum();
    if format == Format::Table && streams > 1 {
        return Err(usage_err(format!(
            "a table shows one event stream and {} have {streams}: use --format json (each line names its config)",
            names(resolved)
        )));
    }
    if args.save_raw.is_some() && args.interval.is_some() {
        return Err(usage_err("--save-raw stores one window: it cannot be combined with --interval"));
    }
    if args.count.is_some() && args.interval.is_none() {
        return Err(usage_err("--count N needs an interval: -i/--interval, or a number after the config names"));
    }
    Ok(())
}

fn names(resolved: &[Resolved]) -> String {
    resolved.iter().map(|r| r.config.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Tool flags that become globals of the objects that have them (`-p`, `--port`, `--per-thread`).
fn tool_globals(args: &RunArgs, targets: &crate::targets::tasks::Targets) -> anyhow::Result<Vec<GlobalValue>> {
    let mut out = Vec::new();
    // -p PID: the event objects filter one thread group (`targ_tgid`, bpf/events.bpf.h); the
    // other task flags were refused already (the configs declare `targets: [pid]` only).
    match targets.pids.as_slice() {
        [] => {}
        [pid] => {
            out.push(GlobalValue { flag: "-p".into(), name: "targ_tgid".into(), bytes: pid.to_ne_bytes().to_vec() })
        }
        more => return Err(usage_err(format!("-p: event tools follow one process, and {} were given", more.len()))),
    }
    if let Some(p) = args.attach.port {
        if p == 0 {
            return Err(usage_err("--port 0: ports start at 1"));
        }
        let mut ports = [0u8; 16];
        ports[..2].copy_from_slice(&p.to_ne_bytes());
        out.push(GlobalValue { flag: "--port".into(), name: "filter_ports".into(), bytes: ports.to_vec() });
        out.push(GlobalValue {
            flag: "--port".into(),
            name: "filter_ports_len".into(),
            bytes: 1u32.to_ne_bytes().to_vec(),
        });
    }
    if args.per_thread {
        out.push(GlobalValue { flag: "--per-thread".into(), name: "trace_threads".into(), bytes: vec![1] });
    }
    Ok(out)
}

/// `ebpfx run` of event configs, after the configs were resolved (commands::run).
pub fn run(
    args: &RunArgs,
    globals: &Globals<'_>,
    mut resolved: Vec<Resolved>,
    targets: &crate::targets::tasks::Targets,
) -> anyhow::Result<()> {
    let format = event_format(args.out.format)?;
    check_args(args, &resolved, format)?;
    if let Some(size) = &args.ring_size {
        let bytes = parse_ring_size(size)?;
        for r in &mut resolved {
            for e in &mut r.config.events {
                e.ring_size = bytes;
            }
        }
    }
    let buffer = event_buffer(args.event_buffer, perfbuf::kernel_has_ring_buffers())?;
    for r in &mut resolved {
        for e in &mut r.config.events {
            e.buffer = buffer;
        }
    }
    let output = args.out.output.as_deref().map(|o| AtomicFile::create(o, "--output")).transpose()?;
    let save_raw = args.save_raw.as_deref().map(|o| AtomicFile::create(o, "--save-raw")).transpose()?;
    let opts = crate::loader::LoadOptions {
        strict: args.attach.strict,
        verbose: globals.verbose,
        btf: args.attach.btf.clone(),
        frequency: args.attach.frequency,
        globals: tool_globals(args, targets)?,
        probe: None,
        follow_forks: false,
    };
    let session = Session::attach(
        &resolved,
        crate::session::Aim { opts: vec![opts; resolved.len()], targets: Default::default(), command: Vec::new() },
        crate::session::Notes { quiet: globals.quiet, verbose: globals.verbose },
        "an event run",
    )?;
    let offset = clock_offset_ns();
    let mut streams = Vec::new();
    for (ci, r) in resolved.iter().enumerate() {
        for (ei, e) in r.config.events.iter().enumerate() {
            streams.push(Stream::new(&r.config.name, ci, ei, e, offset));
        }
    }
    let printer = Rc::new(RefCell::new(Printer::new(
        format,
        args.timestamp,
        streams,
        output.is_some(),
        save_raw.is_some(),
        Options { prefix: args.series.prefix.clone(), unit: args.out.unit, top: None },
    )));
    let mut readers = Vec::new();
    let mut i = 0usize;
    for l in &session.loaded {
        for e in &l.config.events {
            let p = Rc::clone(&printer);
            let index = i;
            if e.lost_counter.is_none() && !globals.quiet {
                crate::say!(
                    "ebpfx: note: config {}: {} has no loss counter: records dropped by a full ring buffer cannot be counted",
                    l.config.name,
                    e.ring_buffer
                );
            }
            let lost = e.lost_counter.as_deref();
            let sizing = PerfSizing { bytes: e.ring_size, record_size: Some(e.record_size()) };
            let reader = EventReader::open(&l.object, &e.ring_buffer, lost, sizing, move |data: &[u8]| {
                if let Ok(mut p) = p.try_borrow_mut() {
                    p.record(index, data);
                }
            })
            .with_context(|| format!("config {}: events {}", l.config.name, e.name))?;
            if globals.verbose > 0 {
                let how = if reader.is_perf() {
                    let pages = perfbuf::perf_pages(e.ring_size, perfbuf::cpus(), ringbuf::page_size());
                    format!("a perf buffer of {pages} page(s) per CPU")
                } else {
                    format!("a ring buffer of {} bytes", e.ring_size)
                };
                crate::say!("ebpfx: config {}: events {}: records through {how}", l.config.name, e.name);
            }
            readers.push(reader);
            i += 1;
        }
    }
    let epoll = Epoll::new(&readers)?;
    let plan = Plan {
        length: args.duration,
        interval: args.interval,
        count: args.count,
        quiet: globals.quiet,
        verbose: globals.verbose > 0,
    };
    let mut blocks = EventBlocks {
        quiet: globals.quiet,
        session,
        readers,
        printer,
        epoll,
        output,
        save_raw,
        resolved: &resolved,
        clock_offset_ns: offset,
        said_lost: Vec::new(),
        last_lost_check: std::time::Instant::now(),
        previous_stats: HashMap::new(),
        block_lost_base: Vec::new(),
        started: SystemTime::now(),
        error: None,
        hold: Duration::ZERO,
        last_records: None,
    };
    window::run(&plan, &mut blocks)
}

/// One event stream: its decoder and what it counted.
struct Stream {
    decoder: EventDecoder,
    config_index: usize,
    event_index: usize,
    counts: Counts,
    received: u64,
    bad: u64,
    first_bad: Option<String>,
    /// Ring bytes of the records received since the last [`EventBlocks::drain`] (pacing).
    batch_bytes: u64,
}

impl Stream {
    fn new(config: &str, ci: usize, ei: usize, e: &crate::config::EventConfig, offset: i128) -> Stream {
        Stream {
            decoder: EventDecoder::new(config, e, offset),
            config_index: ci,
            event_index: ei,
            counts: Counts::default(),
            received: 0,
            bad: 0,
            first_bad: None,
            batch_bytes: 0,
        }
    }
}

/// Turns records into output: lines as they come, or counts for the block's end. Shared by a
/// live run (fed by the ring callbacks) and `render` (fed by a saved file).
struct Printer {
    format: Format,
    timestamp: bool,
    streams: Vec<Stream>,
    decoders: Decoders,
    /// Buffered lines; written after each batch of records (stdout, [`FLUSH_AT`]) or kept for
    /// `--output`.
    pending: String,
    to_file: bool,
    file_text: Vec<u8>,
    keep_raw: bool,
    raw: Vec<(usize, Vec<u8>)>,
    opts: Options,
    header_done: bool,
    /// Reused for every record: its strings keep their capacity.
    row: crate::event_model::EventRow,
    scratch: Vec<u8>,
    /// A failed write in the middle of a batch ([`FLUSH_AT`]), returned by the next
    /// [`Printer::flush`].
    error: Option<anyhow::Error>,
}

/// Lines to stdout are written when a batch of records (all the rings held at one read) is
/// printed, and within a large batch whenever this many bytes are pending, so that the first
/// lines of a burst do not wait for the rest to be decoded. A write per line instead cost about
/// twice the CPU per event and lost events under an open() storm (docs/events.md, "Latency and
/// CPU").
const FLUSH_AT: usize = 64 * 1024;

impl Printer {
    fn new(
        format: Format,
        timestamp: bool,
        streams: Vec<Stream>,
        to_file: bool,
        keep_raw: bool,
        opts: Options,
    ) -> Printer {
        Printer {
            format,
            timestamp,
            streams,
            decoders: Decoders::new(Env::system()),
            pending: String::new(),
            to_file,
            file_text: Vec::new(),
            keep_raw,
            raw: Vec::new(),
            opts,
            header_done: false,
            row: crate::event_model::EventRow { time_ns: None, values: Vec::new(), latency: None },
            scratch: Vec::new(),
            error: None,
        }
    }

    fn lines(&self) -> bool {
        matches!(self.format, Format::Table | Format::Json)
    }

    fn header(&mut self) {
        if self.format == Format::Table && !self.header_done {
            if let Some(s) = self.streams.first() {
                self.pending.push_str(&ev_render::table_header(&s.decoder.schema, self.timestamp));
            }
            self.header_done = true;
        }
    }

    fn record(&mut self, index: usize, data: &[u8]) {
        if self.keep_raw {
            self.raw.push((index, data.to_vec()));
        }
        let lines = self.lines();
        let (format, timestamp) = (self.format, self.timestamp);
        let Some(s) = self.streams.get_mut(index) else { return };
        s.received += 1;
        s.batch_bytes = s.batch_bytes.saturating_add(EventReader::footprint(data.len()));
        let row = &mut self.row;
        match s.decoder.decode_into(&mut self.decoders, data, row, &mut self.scratch) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                s.bad += 1;
                s.first_bad.get_or_insert(e);
                return;
            }
        }
        if !lines {
            let m = s.decoder.config.latency.as_ref().map_or(1.0, |l| l.multiplier);
            s.counts.add(&s.decoder.schema, row, m);
            return;
        }
        match format {
            Format::Json => ev_render::json_line_into(&s.decoder.schema, row, &mut self.pending),
            _ => {
                let time = timestamp.then(|| {
                    let t = row.time_ns.map(|ns| UNIX_EPOCH + Duration::from_nanos(ns)).unwrap_or_else(SystemTime::now);
                    crate::output::view::local_time(t)
                });
                ev_render::table_line_into(&s.decoder.schema, row, time.as_deref(), &mut self.pending);
            }
        }
        if !self.to_file && self.pending.len() >= FLUSH_AT && self.error.is_none() {
            if let Err(e) = self.flush() {
                self.error = Some(e);
            }
        }
    }

    /// Writes the buffered lines to stdout (or keeps them for `--output`).
    fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(e) = self.error.take() {
            self.pending.clear();
            return Err(e);
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.to_file {
            self.file_text.extend_from_slice(self.pending.as_bytes());
            self.pending.clear();
            return Ok(());
        }
        let result = crate::output::write_stdout(|w| w.write_all(self.pending.as_bytes()));
        self.pending.clear();
        result
    }

    /// The counts of the block as prom or hist text; the counts start again.
    fn counts_text(&mut self, window: Window, self_metrics: Vec<crate::model::Metric>) -> anyhow::Result<Vec<u8>> {
        let lat_names: Vec<Option<String>> = self
            .streams
            .iter()
            .map(|s| s.decoder.config.latency.as_ref().map(|l| s.decoder.config.fields[l.field].label.name.clone()))
            .collect();
        let counted: Vec<CountedStream<'_>> = self
            .streams
            .iter()
            .zip(&lat_names)
            .map(|(s, lat)| CountedStream {
                schema: &s.decoder.schema,
                help: &s.decoder.config.help,
                counts: &s.counts,
                latency_multiplier: s.decoder.config.latency.as_ref().map(|l| l.multiplier),
                latency_name: lat.as_deref(),
            })
            .collect();
        let mut snapshot = ev_render::counts_snapshot(window, &counted, self_metrics);
        let mut errors: Vec<(String, u64)> = Vec::new();
        for s in &self.streams {
            match errors.iter_mut().find(|(c, _)| *c == s.decoder.schema.config) {
                Some(e) => e.1 += s.bad,
                None => errors.push((s.decoder.schema.config.clone(), s.bad)),
            }
        }
        snapshot.decoder_errors = errors;
        let mut out = Vec::new();
        crate::render::render_to(self.format, &snapshot, &self.opts, &mut out).context("rendering the counts")?;
        for s in &mut self.streams {
            s.counts = Counts::default();
        }
        Ok(out)
    }

    /// Stderr notes about records that could not be decoded.
    fn decode_notes(&self) -> Vec<String> {
        self.streams
            .iter()
            .filter(|s| s.bad > 0)
            .map(|s| {
                format!(
                    "config {}: events {}: {} of {} records could not be decoded (first: {})",
                    s.decoder.schema.config,
                    s.decoder.schema.stream,
                    s.bad,
                    s.received,
                    s.first_bad.as_deref().unwrap_or("?")
                )
            })
            .collect()
    }
}

/// One epoll descriptor over every ring's own: the run loop's wait wakes when any has records.
struct Epoll(std::os::fd::OwnedFd);

impl Epoll {
    fn new(readers: &[EventReader<'_>]) -> anyhow::Result<Epoll> {
        use std::os::fd::FromRawFd;
        // SAFETY: epoll_create1 has no preconditions; a negative result is handled.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(anyhow!("epoll_create1: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        for r in readers {
            let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 0 };
            // SAFETY: both descriptors are open; `ev` is a valid epoll_event for the call.
            let rc = unsafe { libc::epoll_ctl(fd, libc::EPOLL_CTL_ADD, r.epoll_fd(), &mut ev) };
            if rc != 0 {
                return Err(anyhow!("epoll_ctl: {}", std::io::Error::last_os_error()));
            }
        }
        Ok(Epoll(owned))
    }

    fn fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd()
    }
}

struct EventBlocks<'a> {
    quiet: bool,
    session: Session,
    readers: Vec<EventReader<'static>>,
    printer: Rc<RefCell<Printer>>,
    epoll: Epoll,
    output: Option<AtomicFile>,
    save_raw: Option<AtomicFile>,
    resolved: &'a [Resolved],
    clock_offset_ns: i128,
    /// Lost records already said on stderr, per stream.
    said_lost: Vec<u64>,
    last_lost_check: std::time::Instant,
    previous_stats: HashMap<u32, RunStats>,
    /// Lost records at the start of the block, per stream (prom counts per block).
    block_lost_base: Vec<u64>,
    started: SystemTime,
    /// A failure during a tick (a closed stdout, a ring read error), returned by the next block.
    error: Option<anyhow::Error>,
    /// How long the run loop lets records gather before it reads again ([`pace`]).
    hold: Duration,
    /// When a read last found records.
    last_records: Option<Instant>,
}

/// Longest a record waits in its ring before it is read, under a steady flow (docs/events.md,
/// "Latency and CPU"). The first record after a quiet spell is read at once.
const HOLD_MAX: Duration = Duration::from_millis(10);
/// A shorter hold-off is not worth a sleep.
const HOLD_MIN: Duration = Duration::from_millis(1);

/// How long to let records gather in the rings before the next read, after a read that found
/// `records` records, `since` after the previous read that found any; `rings` holds per ring the
/// bytes that read took from it and the ring's size. Zero (read as soon as records come) unless
/// the records flow steadily: more than one in the read, or one less than [`HOLD_MAX`] after the
/// previous one. Then up to [`HOLD_MAX`], but never longer than the rate just seen would take to
/// fill a quarter of any ring (the rate over at most [`HOLD_MAX`], so a burst after a quiet
/// spell counts as fast), and not at all when a read took an eighth of a ring: the hold-off
/// trades a little latency for far fewer wakeups, never records.
fn pace(records: usize, since: Option<Duration>, rings: &[(u64, u64)]) -> Duration {
    let steady = records >= 2 || (records == 1 && since.is_some_and(|d| d < HOLD_MAX));
    if !steady {
        return Duration::ZERO;
    }
    let window = since.unwrap_or(Duration::ZERO).min(HOLD_MAX);
    let mut hold = HOLD_MAX;
    for &(bytes, size) in rings {
        if bytes == 0 {
            continue;
        }
        if bytes >= size / 8 {
            return Duration::ZERO;
        }
        // window × (a quarter of the ring / bytes seen in it), without overflow.
        let quarter = window.as_nanos().saturating_mul(u128::from(size / 4)) / u128::from(bytes);
        hold = hold.min(Duration::from_nanos(u64::try_from(quarter).unwrap_or(u64::MAX)));
    }
    if hold < HOLD_MIN {
        Duration::ZERO
    } else {
        hold
    }
}

impl EventBlocks<'_> {
    /// Hands every record in the rings to the printer, then writes what it printed.
    /// Also sets the hold-off before the next read ([`pace`]).
    fn drain(&mut self) {
        self.hold = Duration::ZERO;
        if self.error.is_some() {
            return;
        }
        let mut records = 0usize;
        for r in &self.readers {
            match r.drain() {
                Ok(n) => records += n,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        let mut p = match self.printer.try_borrow_mut() {
            Ok(p) => p,
            Err(_) => {
                self.error = Some(anyhow!("event printer busy"));
                return;
            }
        };
        if let Err(e) = p.flush() {
            self.error = Some(e);
            return;
        }
        if records > 0 {
            let now = Instant::now();
            let rings: Vec<(u64, u64)> = p
                .streams
                .iter_mut()
                .zip(&self.readers)
                .map(|(s, r)| (std::mem::take(&mut s.batch_bytes), r.size()))
                .collect();
            self.hold = pace(records, self.last_records.map(|t| now.saturating_duration_since(t)), &rings);
            self.last_records = Some(now);
        }
    }

    /// Records lost so far per stream: those the rings had no room for, plus runs of the
    /// streams' programs the kernel skipped (attributed to a config's first stream).
    fn lost(&self) -> anyhow::Result<Vec<u64>> {
        let mut out = Vec::with_capacity(self.readers.len());
        let mut i = 0;
        for l in &self.session.loaded {
            let misses = ringbuf::program_misses(&l.object).unwrap_or(0);
            for (k, _) in l.config.events.iter().enumerate() {
                let ring = self.readers.get(i).map(|r| r.lost()).transpose()?.unwrap_or(0);
                out.push(ring + if k == 0 { misses } else { 0 });
                i += 1;
            }
        }
        Ok(out)
    }

    /// Says on stderr how many records were lost since it last said so.
    fn say_lost(&mut self, total: bool) -> anyhow::Result<Vec<u64>> {
        let lost = self.lost()?;
        self.said_lost.resize(lost.len(), 0);
        let p = self.printer.borrow();
        for (i, &n) in lost.iter().enumerate() {
            let Some(s) = p.streams.get(i) else { continue };
            let name = &s.decoder.schema.config;
            if n > self.said_lost[i] && !self.quiet {
                let what = if self.readers.get(i).is_some_and(|r| r.is_perf()) { "perf" } else { "ring" };
                crate::say!(
                    "ebpfx: {name}: {} events lost ({what} buffer full: a larger --ring-size or fewer events helps)",
                    n - self.said_lost[i]
                );
            }
            if total && n > 0 && !self.quiet {
                crate::say!("ebpfx: {name}: {n} events lost in total, {} received", s.received);
            }
            self.said_lost[i] = n;
        }
        Ok(lost)
    }

    fn save(&mut self, window: &Window) -> anyhow::Result<()> {
        let Some(file) = self.save_raw.as_mut() else { return Ok(()) };
        let lost = self.said_lost.clone();
        let p = self.printer.borrow();
        let saved = SavedEvents {
            ebpfx_events: 1,
            window: SavedWindow {
                start_ns: unix_ns(window.start),
                end_ns: unix_ns(window.end),
                length_ns: u64::try_from(window.length.as_nanos()).unwrap_or(u64::MAX),
            },
            clock_offset_ns: i64::try_from(self.clock_offset_ns).unwrap_or(0),
            configs: self
                .resolved
                .iter()
                .map(|r| SavedConfig {
                    name: r.config.name.clone(),
                    origin: r.config.origin.clone(),
                    yaml: r.yaml.clone(),
                })
                .collect(),
            streams: p
                .streams
                .iter()
                .enumerate()
                .map(|(i, s)| SavedStream {
                    config: s.config_index,
                    event: s.event_index,
                    lost: lost.get(i).copied().unwrap_or(0),
                })
                .collect(),
            records: p.raw.iter().map(|(i, b)| (*i, hex(b))).collect(),
        };
        let json = serde_json::to_string(&saved).context("encoding --save-raw")?;
        drop(p);
        file.write_with(|w| w.write_all(json.as_bytes()).and_then(|_| w.write_all(b"\n")))
    }
}

impl Blocks for EventBlocks<'_> {
    fn start(&mut self) -> anyhow::Result<()> {
        self.previous_stats = self.session.gather_stats().1;
        self.started = SystemTime::now();
        self.block_lost_base = vec![0; self.readers.len()];
        let mut p = self.printer.borrow_mut();
        p.header();
        p.flush()
    }

    fn wants_ticks(&self) -> bool {
        true
    }

    fn tick(&mut self) {
        self.drain();
        if self.error.is_none() && self.last_lost_check.elapsed() >= Duration::from_millis(500) {
            self.last_lost_check = std::time::Instant::now();
            if let Err(e) = self.say_lost(false) {
                self.error = Some(e);
            }
        }
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.epoll.fd())
    }

    fn hold_off(&self) -> Duration {
        self.hold
    }

    fn progress(&self) -> bool {
        !self.printer.borrow().lines()
    }

    fn stopped(&self) -> bool {
        self.error.is_some()
    }

    fn block(&mut self, block: Block) -> anyhow::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if block.last {
            self.session.detach();
        }
        self.drain();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let lost = self.say_lost(block.last)?;
        if block.last && !self.quiet {
            for n in self.printer.borrow().decode_notes() {
                crate::say!("ebpfx: warning: {n}");
            }
        }
        let lines = self.printer.borrow().lines();
        if !lines {
            let (rows, stats) = self.session.gather_stats();
            let run_stats =
                self.session.has_stats().then(|| crate::selfmetrics::window_delta(&self.previous_stats, &stats));
            let self_metrics = crate::selfmetrics::metrics(&self.session.config_names, &rows, run_stats.as_ref());
            self.previous_stats = stats;
            let text = {
                let mut p = self.printer.borrow_mut();
                for (i, s) in p.streams.iter_mut().enumerate() {
                    s.counts.lost = lost
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(self.block_lost_base.get(i).copied().unwrap_or(0));
                }
                p.counts_text(block.window, self_metrics)?
            };
            self.block_lost_base = lost;
            let sep = block.index > 0 && self.output.is_none() && self.printer.borrow().format == Format::Hist;
            let mut p = self.printer.borrow_mut();
            if sep {
                p.pending.push('\n');
            }
            p.pending.push_str(&String::from_utf8_lossy(&text));
            p.flush()?;
        }
        if block.last {
            let window = Window { start: self.started, ..block.window };
            self.save(&window)?;
            if let Some(file) = self.output.as_mut() {
                let text = std::mem::take(&mut self.printer.borrow_mut().file_text);
                file.write_with(|w| w.write_all(&text))?;
            }
        }
        Ok(())
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).unwrap_or(0)
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for byte in b {
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// The `--save-raw` file of an event run.
#[derive(Serialize, Deserialize)]
struct SavedEvents {
    /// Format version; its presence tells the file from a map snapshot.
    ebpfx_events: u32,
    window: SavedWindow,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC of the run: record times become wall times as they did.
    clock_offset_ns: i64,
    configs: Vec<SavedConfig>,
    streams: Vec<SavedStream>,
    /// (stream index, record bytes in hex), in arrival order.
    records: Vec<(usize, String)>,
}

#[derive(Serialize, Deserialize)]
struct SavedWindow {
    start_ns: u64,
    end_ns: u64,
    length_ns: u64,
}

#[derive(Serialize, Deserialize)]
struct SavedConfig {
    name: String,
    origin: String,
    yaml: String,
}

#[derive(Serialize, Deserialize)]
struct SavedStream {
    config: usize,
    event: usize,
    lost: u64,
}

/// Whether `path` is an event run's `--save-raw` file (else a map snapshot).
pub fn is_events_file(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let mut head = [0u8; 32];
    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
    head[..n].starts_with(b"{\"ebpfx_events\":")
}

/// `ebpfx render FILE` of a saved event run: the records through the same decoders and renderers.
pub fn render(args: &RenderArgs, globals: &Globals<'_>) -> anyhow::Result<()> {
    let shown = args.file.display();
    let text = std::fs::read_to_string(&args.file).map_err(|e| usage_err(format!("cannot read {shown}: {e}")))?;
    let saved: SavedEvents =
        serde_json::from_str(&text).map_err(|e| usage_err(format!("{shown}: not a saved event run: {e}")))?;
    let format = event_format(args.out.format)?;
    if args.series.by.is_some() || args.out.top.is_some() {
        return Err(usage_err("--by and --top do not apply to saved event runs"));
    }
    let configs = saved
        .configs
        .iter()
        .map(|c| Config::parse(&c.name, &c.origin, &c.yaml))
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("{shown}: a saved config"))?;
    let offset = i128::from(saved.clock_offset_ns);
    let mut streams = Vec::new();
    for s in &saved.streams {
        let e = configs
            .get(s.config)
            .and_then(|c| c.events.get(s.event).map(|e| (c, e)))
            .ok_or_else(|| usage_err(format!("{shown}: a stream names a config or event that is not saved")))?;
        streams.push(Stream::new(&e.0.name, s.config, s.event, e.1, offset));
    }
    if format == Format::Table && streams.len() > 1 {
        return Err(usage_err("a table shows one event stream: use --format json"));
    }
    let mut out = args.out.output.as_deref().map(|o| AtomicFile::create(o, "--output")).transpose()?;
    let opts = Options { prefix: args.series.prefix.clone(), unit: args.out.unit, top: None };
    let mut p = Printer::new(format, args.timestamp, streams, true, false, opts);
    p.header();
    for (i, h) in &saved.records {
        let bytes = unhex(h).ok_or_else(|| usage_err(format!("{shown}: a record is not hex")))?;
        p.record(*i, &bytes);
    }
    let window = Window {
        start: UNIX_EPOCH + Duration::from_nanos(saved.window.start_ns),
        end: UNIX_EPOCH + Duration::from_nanos(saved.window.end_ns),
        length: Duration::from_nanos(saved.window.length_ns),
    };
    if !p.lines() {
        for (s, saved) in p.streams.iter_mut().zip(&saved.streams) {
            s.counts.lost = saved.lost;
        }
        let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
        let self_metrics = crate::selfmetrics::metrics(&names, &[], None);
        let text = p.counts_text(window, self_metrics)?;
        p.pending.push_str(&String::from_utf8_lossy(&text));
    }
    p.flush()?;
    if !globals.quiet {
        for n in p.decode_notes() {
            crate::say!("ebpfx: warning: {n}");
        }
        for (s, saved) in p.streams.iter().zip(&saved.streams) {
            if saved.lost > 0 {
                crate::say!(
                    "ebpfx: {}: {} events lost in total, {} received",
                    s.decoder.schema.config,
                    saved.lost,
                    s.received
                );
            }
        }
    }
    let text = std::mem::take(&mut p.file_text);
    match out.as_mut() {
        Some(file) => file.write_with(|w| w.write_all(&text)),
        None => crate::output::write_stdout(|w| w.write_all(&text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_record_after_a_quiet_spell_is_read_at_once() {
        // One record, the previous one long ago (or none yet): the next read waits for nothing.
        assert_eq!(pace(1, None, &[(200, MIB)]), Duration::ZERO);
        assert_eq!(pace(1, Some(Duration::from_secs(2)), &[(200, MIB)]), Duration::ZERO);
        assert_eq!(pace(0, Some(Duration::from_millis(1)), &[(0, MIB)]), Duration::ZERO);
    }

    #[test]
    fn a_steady_flow_is_read_in_batches_of_at_most_the_hold_off() {
        // 1,000 execs/s: one record 1 ms after the previous one, or ten in 10 ms.
        assert_eq!(pace(1, Some(Duration::from_millis(1)), &[(200, MIB)]), HOLD_MAX);
        assert_eq!(pace(10, Some(HOLD_MAX), &[(2_000, MIB)]), HOLD_MAX);
        // A burst after a quiet spell: the rate is taken over HOLD_MAX at most.
        assert_eq!(pace(10, Some(Duration::from_secs(5)), &[(2_000, MIB)]), HOLD_MAX);
    }

    #[test]
    fn the_hold_off_never_lets_the_seen_rate_fill_a_quarter_of_a_ring() {
        // 64 KiB in 10 ms into a 1 MiB ring: a quarter (256 KiB) takes 40 ms: the full hold-off.
        assert_eq!(pace(500, Some(HOLD_MAX), &[(64 << 10, MIB)]), HOLD_MAX);
        // 100 KiB in 2 ms into a 1 MiB ring: a quarter in 5.12 ms.
        let h = pace(500, Some(Duration::from_millis(2)), &[(100 << 10, MIB)]);
        assert_eq!(h, Duration::from_nanos(5_120_000));
        // The tightest ring decides.
        // 30 KiB in 4 ms into a 256 KiB ring: a quarter (64 KiB) in 8.53 ms.
        let h = pace(500, Some(Duration::from_millis(4)), &[(1_000, 16 * MIB), (30 << 10, 256 << 10)]);
        assert_eq!(h.as_micros(), 8_533, "{h:?}");
        // An eighth of a ring in one read: no hold-off at all.
        assert_eq!(pace(500, Some(HOLD_MAX), &[(128 << 10, MIB)]), Duration::ZERO);
        // A hold-off shorter than HOLD_MIN is not taken.
        assert_eq!(pace(500, Some(Duration::from_micros(100)), &[(100 << 10, MIB)]), Duration::ZERO);
    }

    #[test]
    fn event_buffer_auto_falls_back_to_perf_and_ring_needs_the_kernel() {
        assert_eq!(event_buffer(EventBuffer::Auto, true).ok(), Some(EventBuffer::Auto));
        assert_eq!(event_buffer(EventBuffer::Auto, false).ok(), Some(EventBuffer::Perf));
        assert_eq!(event_buffer(EventBuffer::Perf, true).ok(), Some(EventBuffer::Perf));
        assert_eq!(event_buffer(EventBuffer::Ring, true).ok(), Some(EventBuffer::Ring));
        let e = event_buffer(EventBuffer::Ring, false).err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(e.contains("--event-buffer ring: this kernel") && e.contains("no BPF ring buffers"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
}
