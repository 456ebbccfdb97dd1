//! Live tests of run-time targets and attach kinds: `--probe` given several times, and the
//! attach kind chosen at load time (tp_btf where the kernel's BTF is readable, raw_tp where it
//! is hidden and `--btf` gives CO-RE a copy).
mod common;
use common::*;

use std::path::PathBuf;
use std::process::Command;

/// target/<profile>/examples/functarget, built by `cargo test` beside this test binary.
fn functarget() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let p = profile_dir.join("examples").join("functarget");
    assert!(p.is_file(), "{} missing: cargo test builds the examples", p.display());
    p
}

#[test]
fn live_probe_is_repeatable_across_targets() {
    if !require_root("live_probe_is_repeatable_across_targets") {
        return;
    }
    let _l = live_lock();
    let bin = functarget();
    let a = format!("{}:ebpfx_count_a", bin.display());
    let b = format!("{}:ebpfx_count_b", bin.display());
    for env in [&[][..], &[("EBPFX_NO_UPROBE_MULTI", "1")][..]] {
        let run = start_attached_env(
            &["run", "funccount", "--probe", &a, "--probe", &b, "--for", "2s", "--format", "prom"],
            1,
            env,
        );
        let st = Command::new(&bin).args(["0", "0", "13", "29"]).status().expect("run functarget");
        assert!(st.success());
        let (code, prom, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        promtool_check(&prom);
        assert_eq!(
            prom_samples(&prom, "ebpfx_function_calls_total"),
            vec![("function=\"ebpfx_count_a\"".to_string(), 13.0), ("function=\"ebpfx_count_b\"".to_string(), 29.0)],
            "{env:?}\n{prom}"
        );
    }
}

#[test]
fn live_probe_mixes_kernel_and_user_targets() {
    if !require_root("live_probe_mixes_kernel_and_user_targets") {
        return;
    }
    let _l = live_lock();
    let bin = functarget();
    let user = format!("{}:ebpfx_count_a", bin.display());
    let args = ["run", "funccount", "--probe", "kernel:vfs_read", "--probe", &user, "--for", "2s", "--format", "prom"];
    if !std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        // No kprobes here: the run is accepted (both kinds resolve) and fails at the kprobe,
        // labelled as such.
        let out = ebpfx(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("(kprobe+uprobe)") && err.contains("CONFIG_KPROBES"), "{err}");
        return;
    }
    let run = start_attached(&args, 1);
    let st = Command::new(&bin).args(["0", "0", "13", "0"]).status().expect("run functarget");
    assert!(st.success());
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(prom_get(&prom, "ebpfx_function_calls_total", &[("function", "ebpfx_count_a")]), Some(13.0), "{prom}");
    assert!(prom_get(&prom, "ebpfx_function_calls_total", &[("function", "vfs_read")]).unwrap_or(0.0) > 0.0, "{prom}");
}

#[test]
fn live_kernel_glob_reports_skipped_or_resolves() {
    if !require_root("live_kernel_glob_reports_skipped_or_resolves") {
        return;
    }
    let _l = live_lock();
    // Resolution is fast whatever the kernel (no per-function attach attempts before the
    // checks): an unknown glob fails at once with close names, exit 2.
    let out = ebpfx(&["run", "funccount", "--probe", "kernel:ebpfx_no_such_fn_*", "--for", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no function in the kernel or its loaded modules"), "{err}");
}

/// Runs `ebpfx ARGS` in a private mount namespace in which /sys/kernel/btf/vmlinux is an empty
/// file (a kernel without BTF, as far as libbpf can see), with `--btf` given a real copy.
fn without_kernel_btf(scratch: &Scratch, args: &[&str]) -> (Option<i32>, String, String) {
    let copy = scratch.path().join("vmlinux.btf");
    std::fs::copy("/sys/kernel/btf/vmlinux", &copy).expect("copy kernel BTF");
    let empty = scratch.write("empty", "");
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "mount --bind '{}' /sys/kernel/btf/vmlinux && exec '{}' {} --btf '{}'",
        empty.display(),
        bin(),
        quoted.join(" "),
        copy.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env_remove("EBPFX_CONFIG_DIR")
        .env("NO_COLOR", "1")
        .output()
        .expect("run unshare (util-linux)");
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn live_builtin_runs_without_kernel_btf_given_btf() {
    if !require_root("live_builtin_runs_without_kernel_btf_given_btf") {
        return;
    }
    let _l = live_lock();
    let s = Scratch::new("nobtf");
    // syscalls is a tp_btf program: without the kernel's BTF it loads as raw_tp.
    let (code, prom, err) = without_kernel_btf(&s, &["run", "syscalls", "--for", "1s", "--format", "prom"]);
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);
    assert!(prom_sum(&prom, "ebpfx_syscalls_total", "") > 0.0, "{prom}");
    // Every built-in with fixed targets loads and attaches there too (on main all but
    // profile failed: "load failed: Input/output error").
    let list = ebpfx(&["list"]);
    let names: Vec<String> = text(&list.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "funccount" && n != "funclatency")
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let (code, _, err) = without_kernel_btf(&s, &["run", name, "--for", "200ms", "--format", "prom"]);
        assert_eq!(code, Some(0), "{name}: {err}");
    }
}

#[test]
fn live_best_attach_kind_is_loaded() {
    if !require_root("live_best_attach_kind_is_loaded") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["kinds"]);
    let dir_arg = dir.path().to_str().expect("utf8");
    let kinds = |prom: &str| -> Vec<String> {
        prom_rows(prom, "ebpfx_kinds_runs_total")
            .into_iter()
            .filter(|(_, v)| *v > 0.0)
            .flat_map(|(labels, _)| labels.into_iter().map(|(_, v)| v))
            .collect()
    };
    // With kernel BTF: tp_btf only (one program loaded).
    let out = ebpfx(&["--config-dir", dir_arg, "-v", "run", "kinds", "--for", "1s", "--format", "prom"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("1 of 1 programs attached"), "{err}");
    assert_eq!(kinds(&text(&out.stdout)), ["tp_btf"], "{err}");
    // Without it: the raw_tp alternative.
    let s = Scratch::new("kinds");
    let (code, prom, err) =
        without_kernel_btf(&s, &["--config-dir", dir_arg, "-v", "run", "kinds", "--for", "1s", "--format", "prom"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 of 1 programs attached"), "{err}");
    assert_eq!(kinds(&prom), ["raw_tp"], "{err}");
}
