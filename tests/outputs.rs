//! Where results go: a closed pipe ends every mode quietly with status 0; output files are
//! checked before anything attaches; `render -q`.
mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Waits for `child` to exit; kills it and fails after `limit` (a safety net: a hang is the
/// defect, not slowness).
fn wait_or_kill(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running {limit:?} after its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn live_a_closed_pipe_ends_every_mode_with_status_0() {
    if !require_root("live_a_closed_pipe_ends_every_mode_with_status_0") {
        return;
    }
    let _l = live_lock();
    let cases: &[&[&str]] = &[
        &["run", "syscalls", "-i", "200ms", "-f", "prom"],
        &["run", "syscalls", "-i", "200ms", "-f", "json"],
        &["run", "syscalls", "-i", "200ms", "-f", "table", "-T"],
        &["run", "syscalls", "-i", "200ms", "-c", "100000", "-f", "hist"],
        &["run", "syscalls", "--for", "300ms", "-f", "prom"],
    ];
    for args in cases {
        let what = args.join(" ");
        let mut child = Command::new(bin())
            .args(*args)
            .env_remove("EBPFX_CONFIG_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Like `| head -c 1`: read one byte, then close the pipe.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).expect("a first byte");
        drop(stdout);
        let st = wait_or_kill(&mut child, Duration::from_secs(60), &what);
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert_eq!(st.code(), Some(0), "{what}: {err}");
        assert!(!err.contains("Broken pipe") && !err.contains("error"), "{what}: {err}");
    }
}

#[test]
fn list_into_a_closed_pipe_is_quiet() {
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", &format!("{} list | head -c 1 >/dev/null", bin())])
        .env_remove("EBPFX_CONFIG_DIR")
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// A saved snapshot (`run --save-raw` format) of one syscalls-like counter map holding 3 keys
/// with `max_entries` = `max`.
fn saved_snapshot(max: u32) -> String {
    let yaml = "metrics:\n  counters:\n    - name: syscalls_total\n      help: System calls\n      labels:\n        - name: syscall\n          size: 8\n          decoders: [{name: uint}]\n";
    let mut keys = String::new();
    for id in [39u64, 0, 1] {
        for b in id.to_ne_bytes() {
            keys.push_str(&format!("{b:02x}"));
        }
    }
    format!(
        "{{\"kind\":\"ebpfx-raw-snapshot\",\"version\":1,\"window\":{{\"start_unix_ns\":1700000000000000000,\"end_unix_ns\":1700000001000000000,\"length_ns\":1000000000}},\"configs\":[{{\"name\":\"sc\",\"origin\":\"sc.yaml\",\"yaml\":{},\"maps\":[{{\"name\":\"syscalls_total\",\"key_size\":8,\"slots\":1,\"per_cpu\":false,\"max_entries\":{max},\"is_array\":false,\"keys_hex\":\"{keys}\",\"values\":[5,6,7]}}]}}]}}",
        serde_json::to_string(yaml).expect("yaml as JSON"),
    )
}

/// Runs ebpfx with a safety timeout: a run that got past the checks would collect for an hour.
fn ebpfx_bounded(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(bin())
        .args(args)
        .env_remove("EBPFX_CONFIG_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let st = wait_or_kill(&mut child, Duration::from_secs(60), &args.join(" "));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    child.stdout.take().expect("stdout").read_to_end(&mut out).expect("read");
    child.stderr.take().expect("stderr").read_to_end(&mut err).expect("read");
    std::process::Output { status: st, stdout: out, stderr: err }
}

#[test]
fn unwritable_output_places_are_refused_before_the_window() {
    let dir = Scratch::new("unwritable");
    let missing = dir.path().join("no-such-dir").join("x.prom");
    let slash = format!("{}/", dir.path().join("x.prom").display());
    let cases: Vec<(&str, String, &str)> = vec![
        ("--output", "/proc/ebpfx.prom".into(), "procfs"),
        ("--output", "/proc/sys/kernel/ebpfx.prom".into(), "procfs"),
        ("--output", "/sys/kernel/ebpfx.prom".into(), "sysfs"),
        ("--output", slash.clone(), "expected a file path"),
        ("--output", missing.display().to_string(), "does not exist"),
        ("--output", dir.path().display().to_string(), "is a directory"),
        ("--save-raw", "/proc/raw.json".into(), "procfs"),
        ("--save-raw", missing.display().to_string(), "does not exist"),
        ("--save-raw", slash, "expected a file path"),
    ];
    for (flag, path, want) in cases {
        let out = ebpfx_bounded(&["run", "syscalls", "--for", "1h", flag, &path]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {path}: {err}");
        assert!(err.contains(&format!("{flag} {path}")) && err.contains(want), "{flag} {path}: {err}");
    }
    // render checks its --output the same way.
    let snap = dir.write("snap.json", &saved_snapshot(1024));
    let out = ebpfx_bounded(&["render", snap.to_str().expect("utf8"), "--output", "/proc/x.prom"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("ls").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 1, "files left behind: {names:?}");
}

#[test]
fn a_read_only_file_system_is_refused_before_the_window() {
    if !require_root("a_read_only_file_system_is_refused_before_the_window") {
        return;
    }
    let dir = Scratch::new("rofs");
    let mnt = dir.path().join("ro");
    std::fs::create_dir(&mnt).expect("mkdir");
    sh(&format!("mount -t tmpfs -o ro,size=1m ebpfx-test-ro {}", mnt.display()));
    let target = mnt.join("x.prom");
    let out = ebpfx_bounded(&["run", "syscalls", "--for", "1h", "--output", target.to_str().expect("utf8")]);
    let full = dir.path().join("full");
    std::fs::create_dir(&full).expect("mkdir");
    sh(&format!(
        "mount -t tmpfs -o size=64k ebpfx-test-full {0} && (dd if=/dev/zero of={0}/fill bs=4k status=none || true)",
        full.display()
    ));
    let out_full =
        ebpfx_bounded(&["run", "syscalls", "--for", "1h", "--save-raw", full.join("raw.json").to_str().expect("utf8")]);
    sh(&format!("umount {} {}", mnt.display(), full.display()));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--output") && err.contains("read-only"), "{err}");
    let err = text(&out_full.stderr);
    assert_eq!(out_full.status.code(), Some(2), "{err}");
    assert!(err.contains("--save-raw") && err.contains("full"), "{err}");
}

#[test]
fn a_stale_temp_file_of_a_killed_run_does_not_break_later_runs() {
    let dir = Scratch::new("stale");
    let snap = dir.write("snap.json", &saved_snapshot(1024));
    let target = dir.path().join("out.prom");
    // A killed run with a pid that no longer exists, and an older-style name of the same.
    let dead = 4_194_999u32;
    dir.write(&format!(".out.prom.{dead}.0123456789abcdef.tmp"), "half");
    dir.write(&format!(".out.prom.{dead}.tmp"), "half");
    let out = ebpfx_bounded(&["render", snap.to_str().expect("utf8"), "--output", target.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["out.prom", "snap.json"]);
}

#[test]
fn render_honours_quiet() {
    let dir = Scratch::new("render-q");
    // 3 keys in a map of 3 entries: a warning on stderr without -q, none with it.
    let snap = dir.write("snap.json", &saved_snapshot(3));
    let loud = ebpfx_bounded(&["render", snap.to_str().expect("utf8"), "-f", "prom"]);
    assert!(loud.status.success(), "{}", text(&loud.stderr));
    assert!(text(&loud.stderr).contains("warning"), "{}", text(&loud.stderr));
    let quiet = ebpfx_bounded(&["-q", "render", snap.to_str().expect("utf8"), "-f", "prom"]);
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert!(quiet.stderr.is_empty(), "-q printed: {}", text(&quiet.stderr));
    assert_eq!(quiet.stdout, loud.stdout);
}

#[test]
fn absurd_durations_are_refused_naming_the_flag() {
    for args in [
        &["run", "syscalls", "--for", "500000000000y", "-i", "100ms", "-c", "1"][..],
        &["run", "syscalls", "-i", "500000000000y", "-c", "1"][..],
        &["run", "syscalls", "--for", "3651d"][..],
    ] {
        let out = ebpfx_bounded(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let flag = if args.contains(&"--for") { "--for" } else { "--interval" };
        assert!(err.contains(flag) && err.contains("at most 10 years"), "{args:?}: {err}");
        assert!(!err.contains("panicked") && err.starts_with("ebpfx: "), "{err}");
    }
}

/// A config over tests/bpf/checkme.bpf.c's `by_id_total`: a hash of 16 entries keyed by
/// syscall number, filled by every system call on the machine.
const FULL_YAML: &str = "metrics:\n  counters:\n    - name: by_id_total\n      help: System calls by number, into a map of 16 entries\n      labels:\n        - name: id\n          size: 8\n          decoders:\n            - name: uint\n";

/// 20 system calls with numbers no kernel implements (ENOSYS): 20 new keys, so the 16-entry
/// map is surely full, whatever else runs.
fn unknown_syscalls() {
    for nr in 1000..1020 {
        // SAFETY: an unimplemented system call number only returns ENOSYS.
        unsafe {
            libc::syscall(nr);
        }
    }
}

#[test]
fn live_a_full_map_is_reported_in_every_format_and_block_even_with_q() {
    if !require_root("live_a_full_map_is_reported_in_every_format_and_block_even_with_q") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("fullmap");
    std::fs::write(dir.path().join("full.yaml"), FULL_YAML).expect("yaml");
    std::fs::copy(test_object("checkme"), dir.path().join("full.bpf.o")).expect("object");
    let cd = dir.path().to_str().expect("utf8");
    // Interval blocks: each one says so, although the deltas after the first are small.
    let run = start_attached(&["--config-dir", cd, "run", "full", "-i", "300ms", "-c", "4", "-f", "prom"], 1);
    unknown_syscalls();
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    // (checkme sets each key to 1, so later blocks may have no by_id_total rows at all.)
    let blocks: Vec<&str> = prom.split("# HELP ebpfx_decoder_errors_total").skip(1).collect();
    assert_eq!(blocks.len(), 4, "{prom}");
    for (i, block) in blocks.iter().enumerate() {
        assert!(block.contains("ebpfx_map_full{config=\"full\",map=\"by_id_total\"} 1\n"), "block {i}:\n{block}");
    }
    assert!(err.contains("reached its max_entries"), "stderr without -q says so too: {err}");
    promtool_check(&format!("# HELP ebpfx_decoder_errors_total{}", blocks[3]));
    // One-shot, -q: the data says it in every format; stderr stays empty.
    for (format, want) in [
        ("prom", "ebpfx_map_full{config=\"full\",map=\"by_id_total\"} 1\n"),
        ("json", "map by_id_total of config full reached its max_entries"),
        ("table", "note: map by_id_total of config full reached its max_entries"),
        ("hist", "note: map by_id_total of config full reached its max_entries"),
    ] {
        let child = Command::new(bin())
            .args(["-q", "--config-dir", cd, "run", "full", "--for", "400ms", "-f", format])
            .env_remove("EBPFX_CONFIG_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // With -q there is no "attached" line to wait for: keep making the syscalls until the
        // window ends, so the map fills however long the attach takes.
        let mut child = child;
        while child.try_wait().expect("try_wait").is_none() {
            unknown_syscalls();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("wait");
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{format}: {stderr}");
        assert!(stdout.contains(want), "{format}:\n{stdout}");
        assert!(stderr.is_empty(), "{format}: -q printed {stderr}");
        if format == "prom" {
            promtool_check(&stdout);
        }
    }
}

#[test]
fn output_to_a_device_writes_to_it_and_never_replaces_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = Scratch::new("device");
    let snap = dir.write("snap.json", &saved_snapshot(1024));
    let out = ebpfx_bounded(&["render", snap.to_str().expect("utf8"), "--output", "/dev/null"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let meta = std::fs::metadata("/dev/null").expect("stat /dev/null");
    assert!(meta.file_type().is_char_device(), "/dev/null is no longer a device");
}

#[test]
fn live_a_closed_pipe_on_stdout_and_stderr_is_still_quiet() {
    if !require_root("live_a_closed_pipe_on_stdout_and_stderr_is_still_quiet") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("fullmap-pipe");
    std::fs::write(dir.path().join("full.yaml"), FULL_YAML).expect("yaml");
    std::fs::copy(test_object("checkme"), dir.path().join("full.bpf.o")).expect("object");
    // Every block warns on stderr (the map is full), and stderr is the closed pipe too.
    let mut child = Command::new(bin())
        .args(["--config-dir", dir.path().to_str().expect("utf8"), "run", "full", "-i", "200ms", "-f", "prom"])
        .env_remove("EBPFX_CONFIG_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    unknown_syscalls();
    let mut stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("a first byte");
    drop(stdout);
    drop(stderr);
    let st = wait_or_kill(&mut child, Duration::from_secs(60), "full -i 200ms");
    assert_eq!(st.code(), Some(0), "{st:?}");
}
