//! Live test (root, to hand out capabilities): a non-root user with CAP_BPF + CAP_PERFMON but
//! without CAP_SYSLOG reads /proc/kallsyms with every address 0. ebpfx must say so and print
//! kernel frames as raw addresses, never as the wrong symbol (before the fix every kernel frame
//! became the last symbol in the file).
//!
//! The workload is our own: a copy of `dd` under a unique command name making one-byte
//! read/write syscalls, so its samples have kernel stacks; only its samples are checked.
mod common;
use common::*;

use std::process::{Command, Stdio};

/// Runs `program args` as `nobody` with CAP_BPF and CAP_PERFMON only.
fn as_nobody_with_bpf_caps(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all,+bpf,+perfmon",
        "--ambient-caps=+bpf,+perfmon",
        "--",
        program,
    ])
    .args(args)
    .env_remove("EBPFX_CONFIG_DIR")
    .env("NO_COLOR", "1")
    .stdin(Stdio::null());
    c
}

fn is_frame_address(frame: &str) -> bool {
    frame.strip_prefix("0x").is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
}

#[test]
fn live_nonroot_zeroed_kallsyms_prints_raw_addresses_and_warns() {
    if !require_root("live_nonroot_zeroed_kallsyms_prints_raw_addresses_and_warns") {
        return;
    }
    let _lock = live_lock();
    // What does `nobody` see? With kernel.perf_event_paranoid ≤ 1 and kptr_restrict 0 the
    // kernel shows it real addresses, and there is nothing to test.
    let head =
        as_nobody_with_bpf_caps("head", &["-n", "50", "/proc/kallsyms"]).output().expect("run setpriv (util-linux)");
    assert!(head.status.success(), "setpriv failed: {}", text(&head.stderr));
    if !ebpfx::kallsyms::is_zeroed(&text(&head.stdout)) {
        eprintln!("SKIPPED: this kernel shows kallsyms addresses to an unprivileged reader (perf_event_paranoid <= 1)");
        return;
    }

    let scratch = Scratch::new("kallsyms");
    let comm = format!("ksymdd{}", std::process::id() % 100_000);
    let dd = scratch.path().join(&comm);
    std::fs::copy("/bin/dd", &dd).expect("copy /bin/dd");
    let mut workload = Command::new(&dd)
        .args(["if=/dev/zero", "of=/dev/null", "bs=1", "count=200000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dd");

    let out = as_nobody_with_bpf_caps(bin(), &["run", "profile", "--for", "2s", "-f", "json"])
        .output()
        .expect("run ebpfx through setpriv");
    let _ = workload.kill();
    let _ = workload.wait();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "ebpfx as nobody failed ({:?}): {stderr}", out.status);
    assert!(
        stderr.contains("/proc/kallsyms shows every kernel address as 0") && stderr.contains("CAP_SYSLOG"),
        "no warning naming CAP_SYSLOG: {stderr}"
    );

    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let metric = doc["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "cpu_samples_total"))
        .expect("profile's cpu_samples_total");
    let ours: Vec<&serde_json::Value> = metric["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter(|s| s["labels"]["comm"].as_str() == Some(comm.as_str()))
        .collect();
    assert!(!ours.is_empty(), "no samples of our workload {comm}");
    let mut kernel_frames = 0;
    for s in ours {
        let kstack = s["labels"]["kstack"].as_str().unwrap_or_default();
        for frame in kstack.split('\n').filter(|f| !f.is_empty()) {
            assert!(is_frame_address(frame), "kernel frame {frame:?} is a name, not a raw address: {kstack:?}");
            kernel_frames += 1;
        }
    }
    assert!(kernel_frames > 0, "our workload's samples had no kernel frames");
    assert!(doc["warnings"]
        .as_array()
        .is_some_and(|w| w.iter().any(|w| w.as_str().is_some_and(|w| w.contains("CAP_SYSLOG")))));
}
