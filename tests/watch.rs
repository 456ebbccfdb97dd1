//! `--watch` in a real terminal (tmux): the live table is drawn, Ctrl-C quits with status 0 and
//! the terminal comes back as it was (the table lived on the alternate screen).
mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(server: &str, args: &[&str]) -> String {
    let out = Command::new("tmux").arg("-L").arg(server).args(args).output().expect("run tmux");
    assert!(out.status.success(), "tmux {args:?} failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The pane's screen once every needle is on it; the last screen after 30 s (then the caller's
/// assertions fail: no passing run waits this long).
fn wait_for(server: &str, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let screen = tmux(server, &["capture-pane", "-p", "-t", "w"]);
        if needles.iter().all(|n| screen.contains(n)) || Instant::now() > deadline {
            return screen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the tmux server (and the pane's processes) however the test ends.
struct Server(String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.0).arg("kill-server").output();
    }
}

#[test]
fn live_watch_draws_a_table_and_restores_the_terminal() {
    if !require_root("live_watch_draws_a_table_and_restores_the_terminal") {
        return;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
            panic!("tmux is needed for the --watch test under CI");
        }
        eprintln!("SKIPPED: tmux not installed");
        return;
    }
    let _l = live_lock();
    let server = Server(format!("ebpfx-test-{}", std::process::id()));
    // The shell stays after ebpfx exits so that its status and the restored screen can be read.
    let cmd = format!("{} run syscalls --watch --interval 300ms; echo EXIT=$?; sleep 60", bin());
    tmux(&server.0, &["new-session", "-d", "-s", "w", "-x", "120", "-y", "30", &cmd]);
    // A frame: header, the metric's title and its table. (With many syscall names the total
    // line is cut off in 30 rows, so it is not waited for.)
    let screen = wait_for(&server.0, &["Ctrl-C quits", "syscalls_total", "| syscall"]);
    let ok_table = screen.contains("syscalls_total") && screen.contains("| syscall") && screen.contains("Ctrl-C quits");
    let lines = screen.lines().count();
    tmux(&server.0, &["send-keys", "-t", "w", "C-c"]);
    let after = wait_for(&server.0, &["EXIT="]);
    drop(server);
    assert!(ok_table, "no live table on screen:\n{screen}");
    assert!(lines <= 30, "the frame must fit the 30-line terminal");
    assert!(after.contains("EXIT=0"), "Ctrl-C must end --watch with status 0:\n{after}");
    assert!(!after.contains("syscalls_total"), "the table must be gone (alternate screen left):\n{after}");
}

#[test]
fn watch_needs_a_terminal() {
    let out = ebpfx(&["run", "syscalls", "--watch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("needs a terminal"), "{}", text(&out.stderr));
}
