//! `--watch` in a real terminal (tmux): the live table is drawn, Ctrl-C quits with status 0 and
//! the terminal comes back as it was (the table lived on the alternate screen).
mod common;
use common::*;

#[test]
fn live_watch_draws_a_table_and_restores_the_terminal() {
    if !require_root("live_watch_draws_a_table_and_restores_the_terminal") {
        return;
    }
    if !Tmux::ready() {
        return;
    }
    let _l = live_lock();
    // The shell stays after ebpfx exits so that its status and the restored screen can be read
    // (bash: on Ctrl-C it waits for ebpfx and goes on when ebpfx exits normally; dash would end).
    let cmd = format!("{} run syscalls --watch --interval 300ms; echo EXIT=$?; sleep 60", bin());
    let cwd = std::env::temp_dir();
    let term = Tmux::start("watch", (120, 30), &cwd, &["bash", "-c", &cmd]);
    // A frame: header, the metric's title and its table. (With many syscall names the total
    // line is cut off in 30 rows, so it is not waited for.)
    let needles = ["Ctrl-C quits", "syscalls_total", "| syscall"];
    let screen = term.wait_for(|s| needles.iter().all(|n| s.contains(n)), "a live table");
    let lines = screen.lines().count();
    term.keys(&["C-c"]);
    let after = term.wait_for(|s| s.contains("EXIT="), "ebpfx to exit");
    drop(term);
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
