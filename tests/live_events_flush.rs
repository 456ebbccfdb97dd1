//! Event lines reach a reader while the run goes on (issue 12: "JSON Lines, one object per
//! event, flushed per line (pipe-friendly)"): with ebpfx's stdout a pipe, the test makes one
//! event, waits until its line arrives, and only then makes the next one. Output held back for
//! more events, for a full buffer or for the end of the run would never deliver the first line.
mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Lines of the child's stdout, as they arrive.
fn stdout_lines(running: &mut Running) -> Receiver<String> {
    let stdout = running.child.stdout.take().expect("stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the line that `wanted` accepts (skipping the machine's other events) while ebpfx
/// keeps running; no line of the test's later events can be there yet, they are not made.
/// The 60 s bound only keeps a broken build from hanging the suite.
fn next_line_of(running: &mut Running, lines: &Receiver<String>, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(running.child.try_wait().expect("try_wait").is_none(), "ebpfx ended before the line of {what}");
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if wanted(&line) => return line,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                assert!(Instant::now() < give_up, "the line of {what} never reached the reader while ebpfx ran")
            }
            Err(RecvTimeoutError::Disconnected) => panic!("ebpfx closed its stdout before the line of {what}"),
        }
    }
}

/// A python3 process that opens (and fails to open) `{prefix}-{line}` for each line on its stdin.
struct Opener(std::process::Child);

impl Opener {
    fn start(prefix: &str) -> Opener {
        let script = format!(
            "import sys\nfor l in sys.stdin:\n    try: open({prefix:?} + '-' + l.strip())\n    except OSError: pass\n"
        );
        let child = Command::new("/usr/bin/python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .spawn()
            .expect("start python3");
        Opener(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }

    /// Makes the open of `{prefix}-{i}` (at once: nothing waits for the result).
    fn open(&mut self, i: usize) {
        let stdin = self.0.stdin.as_mut().expect("stdin");
        stdin.write_all(format!("{i}\n").as_bytes()).and_then(|_| stdin.flush()).expect("tell python3");
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// `-p` keeps the machine's other events out: only the test's own opens could fill a buffer.
#[test]
fn live_json_lines_reach_a_pipe_reader_one_event_at_a_time() {
    if !require_root("live_json_lines_reach_a_pipe_reader_one_event_at_a_time") {
        return;
    }
    let _l = live_lock();
    let prefix = format!("/tmp/flush-{}-{}", std::process::id(), unique_comm("j"));
    let mut opener = Opener::start(&prefix);
    let mut running = start_attached(&["run", "opensnoop", "-f", "json", "-p", &opener.pid()], 1);
    let lines = stdout_lines(&mut running);
    for i in 0..5 {
        opener.open(i);
        let path = format!("{prefix}-{i}");
        let line = next_line_of(&mut running, &lines, &path, |l| l.contains(&prefix));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["path"].as_str(), Some(path.as_str()), "the event just made, not another: {line}");
        assert_eq!(v["ret"], "ENOENT", "{line}");
    }
    running.signal(libc::SIGINT);
    let (code, _, err) = running.finish();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn live_table_lines_reach_a_pipe_reader_one_event_at_a_time() {
    if !require_root("live_table_lines_reach_a_pipe_reader_one_event_at_a_time") {
        return;
    }
    let _l = live_lock();
    let prefix = format!("/tmp/flush-{}-{}", std::process::id(), unique_comm("t"));
    let mut opener = Opener::start(&prefix);
    // The default format with stdout a pipe: the table, header first.
    let mut running = start_attached(&["run", "opensnoop", "-p", &opener.pid()], 1);
    let lines = stdout_lines(&mut running);
    let header = next_line_of(&mut running, &lines, "the header", |_| true);
    assert!(header.starts_with("PID"), "{header}");
    for i in 0..5 {
        opener.open(i);
        let path = format!("{prefix}-{i}");
        let line = next_line_of(&mut running, &lines, &path, |l| l.contains(&prefix));
        assert!(line.ends_with(&path) && line.contains("ENOENT"), "the open just made, not another: {line}");
    }
    running.signal(libc::SIGINT);
    let (code, _, err) = running.finish();
    assert_eq!(code, Some(0), "{err}");
}
