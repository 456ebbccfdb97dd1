//! The run loop: ONE loop for every mode. A one-shot run is the interval loop with one block;
//! `--interval` and `--watch` run blocks until `--count`, `--for` or an interrupt. The loop owns
//! the clock (deadline, block lengths), the signals and the progress bar; what a block reads and
//! where it goes is the caller's [`Blocks`] (commands::run).
//!
//! The signal rule (README, "Signals"): the first interrupt ends the window and the results
//! are still printed. A second interrupt quits at once with status 130, without results, only
//! when it comes more than [`SECOND_INTERRUPT_AFTER`] after the first one was acted on; one that
//! comes sooner is ignored, because GNU `timeout`, a shell's process-group kill and
//! `kill -TERM pid; kill -TERM pid` deliver two signals microseconds apart and mean one.
//! The handler is installed first thing in `main`, so a signal that comes while configs load
//! still ends the window (at once) and the run still prints.
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::Window;

/// A second interrupt sooner than this after the first is taken as part of the first.
pub const SECOND_INTERRUPT_AFTER: Duration = Duration::from_millis(500);

/// Milliseconds since [`EPOCH`] + 1 at which the first interrupt was acted on; 0 = none yet.
static FIRST: AtomicU64 = AtomicU64::new(0);
/// Set by [`end_window`]: the window ends at the next tick, as a deadline would end it.
static ENDED: AtomicBool = AtomicBool::new(false);
/// Set for commands with no window (list, check, render): an interrupt quits at once.
static IMMEDIATE: AtomicBool = AtomicBool::new(false);
static EPOCH: OnceLock<Instant> = OnceLock::new();
static SIGNALS: OnceLock<Mutex<Receiver<()>>> = OnceLock::new();

fn now_ms() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
}

/// Exits with 130 at once: restores the terminal and removes our temp files first.
fn quit(message: &str) -> ! {
    crate::output::abandon();
    let _ = std::io::stderr().write_all(message.as_bytes());
    std::process::exit(130);
}

/// Installs the handler (once). Call it before anything else in `main`.
pub fn install_signal_handler() -> anyhow::Result<()> {
    if SIGNALS.get().is_some() {
        return Ok(());
    }
    now_ms();
    let (tx, rx) = mpsc::channel::<()>();
    // ctrlc runs this on its own thread, not in signal context: locks and allocation are fine.
    ctrlc::set_handler(move || on_interrupt(&tx)).context("installing the Ctrl-C/SIGTERM handler")?;
    let _ = SIGNALS.set(Mutex::new(rx));
    Ok(())
}

fn on_interrupt(tx: &mpsc::Sender<()>) {
    if IMMEDIATE.load(Ordering::SeqCst) {
        quit("");
    }
    let now = now_ms().saturating_add(1);
    match FIRST.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {
            let _ = tx.send(());
        }
        Err(first) => {
            if now.saturating_sub(first) > SECOND_INTERRUPT_AFTER.as_millis() as u64 {
                quit("\nebpfx: interrupted again, quitting without results\n");
            }
            // Sooner: the same interrupt delivered twice (timeout, process group); ignored.
        }
    }
}

/// For commands without a window: from now on an interrupt quits at once (status 130), and one
/// that already came quits now.
pub fn quit_on_interrupt() {
    IMMEDIATE.store(true, Ordering::SeqCst);
    if interrupted() {
        quit("");
    }
}

/// Ends the window (and the run) at the next tick, without counting as an interrupt: e.g. the
/// traced command of `-- COMMAND` exited. Only effective while ticks run ([`Blocks::wants_ticks`]).
pub fn end_window() {
    ENDED.store(true, Ordering::SeqCst);
}

/// True once [`end_window`] was called.
pub fn window_ended() -> bool {
    ENDED.load(Ordering::SeqCst)
}

/// True once the first interrupt came.
pub fn interrupted() -> bool {
    FIRST.load(Ordering::SeqCst) != 0
}

/// Waits `length` (forever with None) or until the first interrupt, calling `tick` about every
/// 100 ms when `ticks` is set. Returns true when interrupted.
pub fn wait(length: Option<Duration>, ticks: bool, mut tick: impl FnMut(Duration)) -> bool {
    wait_on(length, ticks, None, |d| {
        tick(d);
        false
    })
}

/// [`wait`], also woken when `fd` becomes readable (a ring buffer's epoll descriptor): then
/// `tick` runs at once, so records are read as they arrive. `tick` returning true ends the wait
/// early (the output was closed). Returns true when interrupted.
pub fn wait_on(
    length: Option<Duration>,
    ticks: bool,
    fd: Option<std::os::fd::RawFd>,
    mut tick: impl FnMut(Duration) -> bool,
) -> bool {
    wait_paced(length, ticks, fd, |d| (tick(d), Duration::ZERO))
}

/// [`wait_on`] where `tick` also returns a hold-off: how long to let records gather before
/// the wait looks at `fd` again (the loop sleeps that long, bounded by the wait's own end, then
/// polls `fd`, which returns at once when records came meanwhile). Zero: poll `fd` at once.
/// Event runs pace their reads this way under a steady flow, one wakeup per batch instead of
/// one per record (commands::events, docs/events.md "Latency and CPU").
pub fn wait_paced(
    length: Option<Duration>,
    ticks: bool,
    fd: Option<std::os::fd::RawFd>,
    mut tick: impl FnMut(Duration) -> (bool, Duration),
) -> bool {
    let started = Instant::now();
    let mut hold = Duration::ZERO;
    if interrupted() {
        return true;
    }
    let slice = if ticks { Duration::from_millis(100) } else { Duration::from_secs(3600) };
    let guard = SIGNALS.get().and_then(|m| m.lock().ok());
    loop {
        let wait = match length {
            Some(d) => {
                let left = d.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return interrupted();
                }
                left.min(slice)
            }
            None => slice,
        };
        match (fd, guard.as_deref()) {
            (Some(fd), rx) => {
                let held = hold.min(wait);
                if !held.is_zero() {
                    std::thread::sleep(held);
                }
                let rest = wait.saturating_sub(held);
                if !rest.is_zero() {
                    poll_readable(fd, rest);
                }
                if rx.is_some_and(|rx| rx.try_recv().is_ok()) {
                    return true;
                }
            }
            (None, Some(rx)) => match rx.recv_timeout(wait) {
                Ok(()) => return true,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            },
            (None, None) => std::thread::sleep(wait),
        }
        if interrupted() {
            return true;
        }
        let (stop, next_hold) = tick(started.elapsed());
        if stop || window_ended() {
            return false;
        }
        hold = next_hold;
    }
}

/// Sleeps until `fd` is readable or `timeout` passed (a signal also ends it early).
fn poll_readable(fd: std::os::fd::RawFd, timeout: Duration) {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ms = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: `p` is one valid pollfd for the duration of the call; an invalid fd only sets
    // POLLNVAL in `revents`, which is not read.
    let rc = unsafe { libc::poll(&mut p, 1, ms) };
    // A signal ends the poll early (EINTR): the caller looks at the interrupt at once.
    let failed = rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR);
    if failed || p.revents & libc::POLLNVAL != 0 {
        // Not pollable after all: wait the slice out instead of spinning.
        std::thread::sleep(timeout);
    }
}

/// How the loop runs: from `--for`, `--interval`, `--count`, `-q`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    /// The whole run (`--for`); None: until interrupted (or `--count` blocks).
    pub length: Option<Duration>,
    /// One block per interval; None: one block for the whole run.
    pub interval: Option<Duration>,
    /// Stop after this many blocks.
    pub count: Option<u64>,
    pub quiet: bool,
    pub verbose: bool,
}

/// One finished block, handed to [`Blocks::block`].
#[derive(Debug, Clone, Copy)]
pub struct Block {
    pub window: Window,
    /// 0 for the first block.
    pub index: u64,
    /// No block follows (deadline, count or interrupt): the caller may detach before emitting.
    pub last: bool,
}

/// What the loop drives: the run command reads maps at [`Blocks::start`] and at each block's end.
pub trait Blocks {
    /// Called once, just before the first block's clock starts.
    fn start(&mut self) -> anyhow::Result<()>;
    /// Whether [`Blocks::tick`] must be called during the wait (perf buffers to drain).
    fn wants_ticks(&self) -> bool;
    /// About every 100 ms while waiting, when ticks are wanted or a progress bar shows.
    fn tick(&mut self);
    /// A block ended: read, decode, write it.
    fn block(&mut self, block: Block) -> anyhow::Result<()>;
    /// A descriptor whose readability wakes the wait for a tick at once (event ring buffers).
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
    /// Whether a progress bar may show (not while lines stream to the terminal).
    fn progress(&self) -> bool {
        true
    }
    /// True when the run must end now (its output was closed during a tick).
    fn stopped(&self) -> bool {
        false
    }
    /// After a tick: how long the wait lets records gather before it looks at
    /// [`Blocks::wait_fd`] again ([`wait_paced`]); zero (the default) looks at once.
    fn hold_off(&self) -> Duration {
        Duration::ZERO
    }
}

/// Runs blocks until the deadline, `count` blocks, or an interrupt. A closed stdout
/// ([`crate::output::Closed`]) ends the loop as a success.
pub fn run(plan: &Plan, blocks: &mut impl Blocks) -> anyhow::Result<()> {
    let bar = if plan.interval.is_none() && blocks.progress() {
        progress_bar(plan.length, plan.quiet)
    } else {
        ProgressBar::hidden()
    };
    let fd = blocks.wait_fd();
    blocks.start()?;
    if plan.verbose {
        crate::say!("ebpfx: window started");
    }
    // No deadline when it is beyond what Instant can hold (the CLI caps --for far below that).
    let deadline = plan.length.and_then(|d| Instant::now().checked_add(d));
    let ticks = !bar.is_hidden() || blocks.wants_ticks();
    let run_start = Instant::now();
    let mut index = 0u64;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let length = match (plan.interval, left) {
            (Some(i), Some(l)) => Some(i.min(l)),
            (Some(i), None) => Some(i),
            (None, l) => l,
        };
        let start_wall = SystemTime::now();
        let start = Instant::now();
        let interrupted = wait_paced(length, ticks, fd, |_| {
            // A hidden bar still computes its estimate on every update: skip it (an event run
            // ticks once per batch of records).
            if !bar.is_hidden() {
                bar.set_position(u64::try_from(run_start.elapsed().as_millis()).unwrap_or(u64::MAX));
            }
            blocks.tick();
            (blocks.stopped(), blocks.hold_off())
        });
        let stopped = blocks.stopped();
        let window = Window { start: start_wall, end: SystemTime::now(), length: start.elapsed() };
        bar.finish_and_clear();
        if interrupted {
            interrupted_note(plan.quiet, window.length);
        }
        let last = interrupted
            || stopped
            || window_ended()
            || plan.interval.is_none()
            || plan.count.is_some_and(|c| index.saturating_add(1) >= c)
            || deadline.is_some_and(|d| Instant::now() >= d);
        match blocks.block(Block { window, index, last }) {
            Ok(()) => {}
            Err(e) if crate::output::is_closed(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        if last || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        index += 1;
    }
}

/// Says that the window was cut short (unless quiet). `EBPFX_TEST_DELAY_PRINT_MS` then holds
/// the output back, so that tests reach "a second interrupt while the output is blocked".
fn interrupted_note(quiet: bool, length: Duration) {
    if !quiet {
        crate::say!("ebpfx: interrupted after {:.1}s: printing what was collected", length.as_secs_f64());
    }
    if let Some(ms) = std::env::var("EBPFX_TEST_DELAY_PRINT_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
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
            let total = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
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
