//! `--watch` in a real terminal (tmux): the live table is drawn, Ctrl-C quits with status 0 and
//! the terminal comes back as it was (the table lived on the alternate screen).
mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(server: &str, args: &[&str]) -> String {
    let out = Command::new("tmux").arg("-L").arg(server).args(args).output().expect("run tmux");
    text(&out.stdout)
}

fn wait_for(server: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let screen = tmux(server, &["capture-pane", "-p", "-t", "w"]);
        if screen.contains(needle) || Instant::now() > deadline {
            return screen;
        }
        std::thread::sleep(Duration::from_millis(100));
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
    let server = format!("ebpfx-test-{}", std::process::id());
    let cmd = format!("{} run syscalls --watch --interval 500ms; echo EXIT=$?; sleep 60", bin());
    tmux(&server, &["new-session", "-d", "-s", "w", "-x", "120", "-y", "30", &cmd]);
    // (Not "total ": with more syscalls than the 30 rows hold, that line is cut off, and the
    // test used to wait out its whole timeout.)
    let screen = wait_for(&server, "| syscall");
    let ok_table = screen.contains("syscalls_total") && screen.contains("| syscall") && screen.contains("Ctrl-C quits");
    let lines = screen.lines().count();
    tmux(&server, &["send-keys", "-t", "w", "C-c"]);
    let after = wait_for(&server, "EXIT=");
    tmux(&server, &["kill-server"]);
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
