//! The collection window: signals (Ctrl-C, SIGTERM, SIGHUP) and waiting for the deadline.
//!
//! The signal rule (README, "Signals"): the first interrupt ends the window and the results
//! are still printed. A second interrupt quits at once with status 130, without results, only
//! when it comes more than [`SECOND_INTERRUPT_AFTER`] after the first one was acted on; one that
//! comes sooner is ignored, because GNU `timeout`, a shell's process-group kill and
//! `kill -TERM pid; kill -TERM pid` deliver two signals microseconds apart and mean one.
//! The handler is installed first thing in `main`, so a signal that comes while configs load
//! still ends the window (at once) and the run still prints.
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A second interrupt sooner than this after the first is taken as part of the first.
pub const SECOND_INTERRUPT_AFTER: Duration = Duration::from_millis(500);

/// Milliseconds since [`EPOCH`] + 1 at which the first interrupt was acted on; 0 = none yet.
static FIRST: AtomicU64 = AtomicU64::new(0);
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

/// True once the first interrupt came.
pub fn interrupted() -> bool {
    FIRST.load(Ordering::SeqCst) != 0
}

/// Waits `length` (forever with None) or until the first interrupt, calling `tick` about every
/// 100 ms when `ticks` is set. Returns true when interrupted.
pub fn wait(length: Option<Duration>, ticks: bool, mut tick: impl FnMut(Duration)) -> bool {
    let started = Instant::now();
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
        match guard.as_deref() {
            Some(rx) => match rx.recv_timeout(wait) {
                Ok(()) => return true,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            },
            None => std::thread::sleep(wait),
        }
        if interrupted() {
            return true;
        }
        tick(started.elapsed());
    }
}
