//! Command-line behaviour that needs no kernel: bad input gets exit 2 and a message naming the
//! problem; `list` shows the built-ins.
mod common;
use common::*;

/// A config dir holding NAME.yaml (given text) beside a copy of the built-in biolatency object.
fn config_dir(name: &str, yaml: &str) -> Scratch {
    biolatency_config_dir(&[(name, yaml)])
}

#[test]
fn missing_config_exits_2() {
    assert_usage_error(&["run", "no_such_tool", "--for", "1s"], &["no config named \"no_such_tool\"", "ebpfx list"]);
}

#[test]
fn yaml_syntax_error_names_the_file() {
    let d = config_dir("broken", "metrics:\n  counters: [\n");
    let dir = d.path().to_str().expect("utf8");
    assert_usage_error(&["--config-dir", dir, "run", "broken", "--for", "1s"], &["broken.yaml", "YAML syntax error"]);
}

#[test]
fn unknown_decoder_names_metric_label_and_decoder() {
    let d = config_dir("bad", &BIOLATENCY_HIST.replace("name: majorminor", "name: majorminr"));
    let dir = d.path().to_str().expect("utf8");
    assert_usage_error(
        &["run", "bad", "--for", "1s", "--config-dir", dir],
        &["bad.yaml", "bio_latency_seconds", "label device", "unknown decoder \"majorminr\""],
    );
}

#[test]
fn bucket_max_below_bucket_min() {
    let d = config_dir("bad", &BIOLATENCY_HIST.replace("bucket_min: 0", "bucket_min: 30"));
    let dir = d.path().to_str().expect("utf8");
    assert_usage_error(
        &["--config-dir", dir, "run", "bad"],
        &["bio_latency_seconds", "bucket_max (27) < bucket_min (30)"],
    );
}

#[test]
fn metric_without_map_in_object() {
    let d = config_dir("nomap", &BIOLATENCY_HIST.replace("name: bio_latency_seconds", "name: not_in_object_seconds"));
    let dir = d.path().to_str().expect("utf8");
    assert_usage_error(
        &["--config-dir", dir, "run", "nomap", "--for", "1s"],
        &["nomap", "not_in_object_seconds", "no map named", "bio_latency_seconds"],
    );
}

#[test]
fn key_size_mismatch_is_a_config_error() {
    let d = config_dir("badkey", &BIOLATENCY_HIST.replace("padding: 3", "padding: 1"));
    let dir = d.path().to_str().expect("utf8");
    assert_usage_error(&["--config-dir", dir, "run", "badkey"], &["map key is 16 bytes", "add up to 14"]);
}

#[test]
fn missing_object_beside_yaml() {
    let s = Scratch::new("cli");
    s.write("lonely.yaml", BIOLATENCY_HIST);
    let dir = s.path().to_str().expect("utf8");
    assert_usage_error(&["--config-dir", dir, "run", "lonely"], &["lonely.bpf.o", "missing"]);
}

#[test]
fn unknown_flag_and_bad_duration() {
    assert_usage_error(&["run", "biolatency", "--frobnicate"], &["--frobnicate"]);
    assert_usage_error(&["run", "biolatency", "--for", "soon"], &["--for", "duration"]);
    assert_usage_error(&["run", "biolatency", "--prefix", "1bad"], &["--prefix"]);
    assert_usage_error(&["run", "biolatency", "--format", "xml"], &["--format"]);
}

#[test]
fn output_into_missing_directory() {
    assert_usage_error(
        &["run", "biolatency", "--for", "1s", "--output", "/nonexistent-dir/x.prom"],
        &["/nonexistent-dir"],
    );
}

#[test]
fn list_shows_builtins_with_descriptions() {
    let out = ebpfx(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for name in ["biolatency", "syscalls"] {
        let line = s.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing:\n{s}"));
        assert!(line.contains("built-in"), "{line}");
        assert!(line.split_whitespace().count() > 3, "no description: {line}");
    }
}

#[test]
fn directory_config_wins_over_builtin_and_is_listed() {
    let d = config_dir("biolatency", &format!("description: my own biolatency\n{BIOLATENCY_HIST}"));
    let dir = d.path().to_str().expect("utf8");
    let out = ebpfx(&["list", "--config-dir", dir]);
    let s = text(&out.stdout);
    let line = s.lines().find(|l| l.starts_with("biolatency")).expect("listed");
    assert!(line.contains(dir) && line.contains("my own biolatency"), "{line}");
}

#[test]
fn event_flags_are_refused_for_map_tools() {
    // Before: silently ignored on a run of map configs.
    let err = "read maps, not events";
    assert_usage_error(
        &["run", "syscalls", "--for", "1s", "--ring-size", "1M"],
        &["--ring-size is for event tools", "syscalls", err],
    );
    assert_usage_error(
        &["run", "biolatency", "--for", "1s", "--event-buffer", "perf"],
        &["--event-buffer is for event tools", "biolatency", err],
    );
    assert_usage_error(
        &["run", "syscalls", "runqlat", "--for", "1s", "--per-thread"],
        &["--per-thread is for exitsnoop", "syscalls, runqlat", err],
    );
}

#[test]
fn probe_tools_need_probe() {
    assert_usage_error(&["run", "funclatency", "--for", "1s"], &["funclatency needs --probe BINARY:FUNCTION"]);
    assert_usage_error(&["run", "funccount", "--for", "1s"], &["funccount needs --probe BINARY:FUNCTION"]);
}

#[test]
fn probe_errors_name_the_problem() {
    assert_usage_error(&["run", "funccount", "--probe", "malloc", "--for", "1s"], &["expected BINARY:FUNCTION"]);
    assert_usage_error(
        &["run", "funccount", "--probe", "no-such-binary-ebpfx:main", "--for", "1s"],
        &["binary \"no-such-binary-ebpfx\" not found in $PATH"],
    );
    assert_usage_error(
        &["run", "funccount", "--probe", "/no/such/file:main", "--for", "1s"],
        &["binary /no/such/file not found"],
    );
    assert_usage_error(
        &["run", "funccount", "--probe", "libc.so.6:mallocz*", "--for", "1s"],
        &["no function in", "libc.so.6 matches \"mallocz*\"", "close names: malloc"],
    );
    assert_usage_error(
        &["run", "funccount", "--probe", "libc.so.6:*", "--for", "1s"],
        &["functions in", "more than the 1000", "narrow the pattern"],
    );
    assert_usage_error(
        &["run", "biolatency", "--probe", "libc.so.6:malloc", "--for", "1s"],
        &["--probe is not supported by config biolatency"],
    );
}

#[test]
fn flow_flags_are_scoped_and_checked() {
    assert_usage_error(
        &["run", "biolatency", "--port", "80", "--for", "1s"],
        &["--port is not supported by config biolatency"],
    );
    assert_usage_error(
        &["run", "syscalls", "--state", "LISTEN", "--for", "1s"],
        &["--state is not supported by config syscalls"],
    );
    assert_usage_error(&["run", "tcpflows", "--addr", "10.0.0.0/40", "--for", "1s"], &["--addr", "at most 32 bits"]);
    assert_usage_error(&["run", "tcpflows", "--state", "OPEN", "--for", "1s"], &["unknown TCP state", "ESTABLISHED"]);
    assert_usage_error(&["run", "tcpflows", "--port", "0", "--for", "1s"], &["--port 0"]);
}
