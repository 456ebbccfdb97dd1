//! bcc's command-line habits without a kernel: `[interval] [count]` after the config names,
//! bare seconds, "did you mean", plain unknown-flag errors. Live forms are in tests/live_aim.rs.
mod common;
use common::*;

fn usage_error(args: &[&str]) -> String {
    let out = ebpfx(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "args {args:?}: expected exit 2, got {:?}\n{err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn unknown_flag_is_a_plain_clap_error_not_a_config_name() {
    // (-p and --pid are real flags since targets: `run runqlat -p 1` would trace pid 1 until
    // Ctrl-C; tests/live_targets.rs covers them and their refusals.)
    let err = usage_error(&["run", "runqlat", "-z", "1"]);
    assert!(err.contains("unexpected argument '-z'"), "{err}");
    assert!(!err.contains("-- -z"), "the tip would make -z a config name:\n{err}");
    let err = usage_error(&["run", "runqlat", "--pids", "1"]);
    assert!(err.contains("unexpected argument '--pids'") && !err.contains("-- --pids"), "{err}");
    assert!(err.contains("'--pid'"), "clap's tip names the real flag:\n{err}");
    // A real flag on a config that lacks it is refused by ebpfx, naming both (exit 2).
    let err = usage_error(&["run", "biolatency", "-p", "1"]);
    assert!(err.contains("config biolatency does not support --pid"), "{err}");
}

#[test]
fn mistyped_config_name_gets_did_you_mean() {
    let err = usage_error(&["run", "biolatncy", "--for", "1s"]);
    assert!(err.contains("no config named \"biolatncy\": did you mean \"biolatency\"?"), "{err}");
    let out = ebpfx(&["check", "sycalls"]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stdout);
    assert!(said.contains("did you mean \"syscalls\"?"), "{said}");
}

#[test]
fn numbers_are_never_config_names() {
    let err = usage_error(&["run", "1", "biolatency"]);
    assert!(err.contains("\"1\" is a number, not a config name"), "{err}");
    let err = usage_error(&["run", "biolatency", "1", "runqlat"]);
    assert!(err.contains("config name \"runqlat\" after the numbers 1"), "{err}");
    let err = usage_error(&["run", "biolatency", "1", "2", "3"]);
    assert!(err.contains("too many numbers"), "{err}");
    let err = usage_error(&["run", "biolatency", "1", "0"]);
    assert!(err.contains("count \"0\""), "{err}");
    let err = usage_error(&["run", "biolatency", "1", "-i", "2s"]);
    assert!(err.contains("interval is given twice"), "{err}");
    let err = usage_error(&["run", "biolatency", "-c", "3"]);
    assert!(err.contains("--count N needs an interval"), "{err}");
    let err = usage_error(&["run", "biolatency", "1", "--save-raw", "/tmp/x.json"]);
    assert!(err.contains("--save-raw"), "{err}");
}

#[test]
fn bare_number_durations_are_seconds() {
    // accepted by the parser: the failure (if any) is later, not "expected a duration"
    let err = usage_error(&["run", "no_such_tool", "--for", "5", "-i", "0.5"]);
    assert!(err.contains("no config named"), "{err}");
    let err = usage_error(&["run", "biolatency", "--for", "0"]);
    assert!(err.contains("longer than zero"), "{err}");
}

#[test]
fn by_refuses_a_label_the_config_lacks_naming_config_and_labels() {
    let err = usage_error(&["run", "biolatency", "--by", "disk", "--for", "1s"]);
    assert!(err.contains("config biolatency has no label \"disk\"; it has: device, operation"), "{err}");
    let err = usage_error(&["run", "biolatency", "--by", "none,device"]);
    assert!(err.contains("--by none"), "{err}");
    // a gauge is never summed
    let err = usage_error(&["run", "tcpflows", "--by", "none"]);
    assert!(err.contains("gauge tcp_flow_smoothed_rtt of config tcpflows"), "{err}");
}

#[test]
fn by_keeps_what_stack_formats_need() {
    let err = usage_error(&["run", "profile", "--by", "comm", "--format", "folded"]);
    assert!(err.contains("sums the stack labels away"), "{err}");
}

#[test]
fn top_needs_a_table() {
    let err = usage_error(&["run", "syscalls", "--top", "3", "--format", "prom"]);
    assert!(err.contains("--top 3 cuts tables") && err.contains("--format table or hist"), "{err}");
    let err = usage_error(&["run", "syscalls", "--top", "0"]);
    assert!(err.contains("--top"), "{err}");
    let err = usage_error(&["run", "syscalls", "--unit", "hours"]);
    assert!(err.contains("--unit"), "{err}");
}
