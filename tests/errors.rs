//! Each failure names its real cause (issue 15): the verifier's last words for a rejected
//! program, the map that could not be created, the extern that could not be resolved, the
//! capability that is missing, a `--btf` file that is not BTF, what a kprobe program is.
mod common;
use common::*;

use std::process::{Command, Stdio};

fn run_test_config(name: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = test_config_dir(&[name]);
    let dir_arg = dir.path().to_str().expect("utf8").to_string();
    let mut args = vec!["--config-dir", &dir_arg, "run", name, "--for", "1s"];
    args.extend_from_slice(extra);
    let out = ebpfx(&args);
    (out.status.code(), text(&out.stderr))
}

#[test]
fn verifier_rejection_shows_the_verifiers_words_not_privileges() {
    if !require_root("verifier_rejection_shows_the_verifiers_words_not_privileges") {
        return;
    }
    let _l = live_lock();
    let (code, err) = run_test_config("verifier_reject", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the verifier rejected it"), "{err}");
    assert!(err.contains("map_value_or_null"), "the verifier's own words: {err}");
    assert!(!err.contains("root") && !err.contains("CAP_"), "not a privilege problem: {err}");
}

#[test]
fn unresolved_extern_is_named() {
    if !require_root("unresolved_extern_is_named") {
        return;
    }
    let _l = live_lock();
    let (code, err) = run_test_config("unresolved_extern", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("extern") && err.contains("ebpfx_no_such_kfunc"), "{err}");
    assert!(!err.contains("No such file") && !err.contains("verifier"), "{err}");
}

#[test]
fn failed_map_creation_names_the_map() {
    if !require_root("failed_map_creation_names_the_map") {
        return;
    }
    let _l = live_lock();
    let (code, err) = run_test_config("bad_map", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("map badmap_refused could not be created"), "{err}");
    assert!(!err.contains("verifier"), "{err}");
}

#[test]
fn btf_flag_given_a_file_that_is_not_btf_exits_2_naming_it() {
    let out = ebpfx(&["run", "syscalls", "--btf", "/etc/passwd", "--for", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--btf /etc/passwd: not a BTF file"), "{err}");
    assert!(!err.contains("4001"), "{err}");
    assert!(out.stdout.is_empty(), "refused before the window");
}

/// Runs ebpfx as user nobody with only the capabilities `caps` (setpriv, util-linux).
fn as_nobody_with(caps: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
    if !caps.is_empty() {
        cmd.arg(format!("--inh-caps={caps}")).arg(format!("--ambient-caps={caps}"));
    }
    let out = cmd
        .arg(bin())
        .args(args)
        .env_remove("EBPFX_CONFIG_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv (util-linux)");
    (out.status.code(), text(&out.stderr))
}

#[test]
fn missing_capabilities_are_named_precisely() {
    if !require_root("missing_capabilities_are_named_precisely") {
        return;
    }
    let (code, err) = as_nobody_with("", &["run", "syscalls", "--for", "1s"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("lacks CAP_BPF and CAP_PERFMON"), "{err}");
    let (code, err) = as_nobody_with("+bpf", &["run", "syscalls", "--for", "1s"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("lacks CAP_PERFMON") && !err.contains("lacks CAP_BPF"), "{err}");
}

#[test]
fn xdp_without_cap_net_admin_says_cap_net_admin() {
    if !require_root("xdp_without_cap_net_admin_says_cap_net_admin") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["xdp_lo"]);
    let dir_arg = dir.path().to_str().expect("utf8");
    // The scratch directory must be readable by nobody.
    let _ = Command::new("chmod").args(["-R", "a+rX", dir_arg]).status();
    let (code, err) = as_nobody_with("+bpf,+perfmon", &["--config-dir", dir_arg, "run", "xdp_lo", "--for", "1s"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    assert!(!err.contains("CAP_BPF+CAP_PERFMON") && !err.contains("verifier"), "{err}");
}

#[test]
fn kernel_probe_programs_are_labelled_kprobe() {
    if !require_root("kernel_probe_programs_are_labelled_kprobe") {
        return;
    }
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        eprintln!("this kernel has kprobes: the failure this test reads does not happen here");
        return;
    }
    let _l = live_lock();
    let out = ebpfx(&["run", "funccount", "--probe", "kernel:vfs_read", "--for", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("(kprobe)") && !err.contains("(uprobe)"), "{err}");
    assert!(err.contains("no kprobe support (CONFIG_KPROBES is off)"), "{err}");
    // On 5.18+ the functions go through one kprobe_multi link first; when the kernel refuses
    // it, ebpfx loads again for one kprobe per function, whose error names the function.
    let out = ebpfx(&["-v", "run", "funccount", "--probe", "kernel:vfs_rea?", "--for", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("attaching one probe per function instead"), "{err}");
    assert!(err.contains("cannot create a kprobe on vfs_read"), "{err}");
}

#[test]
fn kernel_probe_as_non_root_with_capabilities_names_the_kernel_not_permissions() {
    if !require_root("kernel_probe_as_non_root_with_capabilities_names_the_kernel_not_permissions") {
        return;
    }
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        eprintln!("this kernel has kprobes: the failure this test reads does not happen here");
        return;
    }
    let _l = live_lock();
    // kallsyms shows this user zero addresses (no CAP_SYSLOG): functions still resolve by name;
    // libbpf's tracefs fallback fails with EACCES, but the cause is the kernel's missing kprobes.
    let (code, err) =
        as_nobody_with("+bpf,+perfmon", &["run", "funccount", "--probe", "kernel:vfs_read", "--for", "1s"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot create a kprobe on vfs_read") && err.contains("CONFIG_KPROBES"), "{err}");
    assert!(!err.contains("Permission denied"), "{err}");
}
