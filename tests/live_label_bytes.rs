//! Live tests (root): a process whose command name is not UTF-8 keeps its row, with the bad
//! bytes escaped as `\xNN`, and every other row stays (issue 9 item 1). Each test counts only
//! processes it starts, under names unique to this test process.
mod common;
use common::*;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A command name of `prefix` then this test process's pid, at most 15 bytes (the kernel's
/// task name length), as bytes and as ebpfx prints it.
fn names(prefix: &[u8], printed_prefix: &str) -> (Vec<u8>, String) {
    let pid = (std::process::id() % 100_000).to_string();
    let mut raw = prefix.to_vec();
    raw.extend_from_slice(pid.as_bytes());
    assert!(raw.len() <= 15, "{raw:?}");
    (raw, format!("{printed_prefix}{pid}"))
}

#[test]
fn live_exec_of_a_program_named_with_invalid_utf8_is_counted_under_an_escaped_name() {
    if !require_root("live_exec_of_a_program_named_with_invalid_utf8_is_counted_under_an_escaped_name") {
        return;
    }
    let _lock = live_lock();
    let dir = Scratch::new("label-bytes");
    // A task's name after exec is the file name it was started by: two links to `true`, one
    // named with bytes that are not UTF-8.
    let (bad, bad_printed) = names(b"\xff\xfeLb", "\\xff\\xfeLb");
    let (good, good_printed) = names(b"ebpfxLb", "ebpfxLb");
    let link = |name: &[u8]| {
        let p = dir.path().join(OsStr::from_bytes(name));
        std::os::unix::fs::symlink("/bin/true", &p).expect("symlink");
        p
    };
    let (bad_path, good_path) = (link(&bad), link(&good));
    let prom = run_builtin("exec", || {
        for _ in 0..3 {
            for p in [&bad_path, &good_path] {
                assert!(Command::new(p).status().expect("exec").success());
            }
        }
    });
    // Prometheus text escapes the backslash of `\xff` once more.
    let series = |printed: &str| format!("ebpfx_exec_total{{comm=\"{}\"}}", printed.replace('\\', "\\\\"));
    assert_eq!(prom_value(&prom, &series(&bad_printed)), Some(3.0), "{prom}");
    assert_eq!(prom_value(&prom, &series(&good_printed)), Some(3.0), "{prom}");
    assert_eq!(prom_value(&prom, "ebpfx_decoder_errors_total{config=\"exec\"}"), Some(0.0), "{prom}");
}

/// The CPU burner of tests/burner.c, compiled and started under a file name that is not UTF-8.
struct Burner(Child);

impl Burner {
    fn start(dir: &Scratch, name: &[u8]) -> Burner {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/burner.c");
        let exe = dir.path().join(OsStr::from_bytes(name));
        let st = Command::new("cc")
            .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
            .arg(&exe)
            .arg(&src)
            .status()
            .expect("run cc (build-essential) to compile tests/burner.c");
        assert!(st.success(), "cc failed");
        let mut child = Command::new(&exe).arg("60").stdout(Stdio::piped()).spawn().expect("start the burner");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("burner stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read burner output");
        assert!(line.starts_with("burning"), "burner said {line:?}");
        Burner(child)
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn live_profile_stacks_of_a_task_named_with_invalid_utf8_fold_and_draw() {
    if !require_root("live_profile_stacks_of_a_task_named_with_invalid_utf8_fold_and_draw") {
        return;
    }
    let _lock = live_lock();
    let dir = Scratch::new("label-bytes-profile");
    let (bad, printed) = names(b"\xc3burn", "\\xc3burn");
    let _burner = Burner::start(&dir, &bad);
    for format in ["folded", "flamegraph", "prom"] {
        let run = start_attached(&["run", "profile", "--for", "2s", "--format", format], 1);
        let (code, out, err) = run.finish();
        assert_eq!(code, Some(0), "{format}: {err}");
        assert!(!err.contains("not valid UTF-8") && !err.contains("dropped"), "{format}: {err}");
        match format {
            "folded" => {
                let mine: Vec<&str> = out.lines().filter(|l| l.starts_with(&format!("{printed};"))).collect();
                assert!(
                    mine.iter().any(|l| l.contains("ebpfx_burn_outer;ebpfx_burn_inner")),
                    "no folded stack rooted at {printed}:\n{out}"
                );
            }
            "flamegraph" => {
                assert!(out.contains("<svg"), "{out}");
                assert!(out.contains(&printed), "no frame {printed} in the flame graph");
            }
            _ => {
                promtool_check(&out);
                let comm = format!("comm=\"{}\"", printed.replace('\\', "\\\\"));
                assert!(prom_sum(&out, "ebpfx_cpu_samples_total", &comm) > 10.0, "{out}");
            }
        }
    }
}
