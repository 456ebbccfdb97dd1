//! `ebpfx render` of hand-made raw snapshots: label bytes that are not UTF-8, rows that fail to
//! decode, what counts as a decoder error, and snapshot files that are damaged or hostile
//! (absurd sizes, bad hex, bad self-metric names, endless input). No root needed.
mod common;

use std::process::{Command, Output, Stdio};

use common::{bin, Scratch};

fn ebpfx(args: &[&str]) -> Output {
    Command::new(bin()).args(args).env("NO_COLOR", "1").stdin(Stdio::null()).output().expect("run ebpfx")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One map of a snapshot: key_size, slots, keys (concatenated), values.
struct Map<'a> {
    name: &'a str,
    key_size: u64,
    slots: u64,
    keys_hex: String,
    values: Vec<u64>,
}

fn map<'a>(name: &'a str, key_size: u64, entries: &[(Vec<u8>, u64)]) -> Map<'a> {
    Map {
        name,
        key_size,
        slots: 1,
        keys_hex: hex(&entries.iter().flat_map(|(k, _)| k.clone()).collect::<Vec<u8>>()),
        values: entries.iter().map(|(_, v)| *v).collect(),
    }
}

/// A snapshot file of `configs` (name, YAML, maps) and raw `self_metrics` JSON.
fn snapshot(configs: &[(&str, &str, Vec<Map>)], self_metrics: &str) -> String {
    let configs: Vec<String> = configs
        .iter()
        .map(|(name, yaml, maps)| {
            let maps: Vec<String> = maps
                .iter()
                .map(|m| {
                    format!(
                        r#"{{"name":"{}","key_size":{},"slots":{},"per_cpu":false,"max_entries":0,"is_array":false,"keys_hex":"{}","values":{:?}}}"#,
                        m.name, m.key_size, m.slots, m.keys_hex, m.values
                    )
                })
                .collect();
            format!(
                r#"{{"name":"{name}","origin":"{name}.yaml","yaml":{},"maps":[{}]}}"#,
                serde_json::to_string(yaml).expect("yaml string"),
                maps.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"kind":"ebpfx-raw-snapshot","version":1,"window":{{"start_unix_ns":1000000000,"end_unix_ns":3000000000,"length_ns":2000000000}},"configs":[{}],"self_metrics":{self_metrics}}}"#,
        configs.join(",")
    )
}

const COMM_YAML: &str = "metrics:\n  counters:\n    - name: task_events_total\n      help: Events per task\n      labels:\n        - name: comm\n          size: 16\n          decoders: [{name: string}]\n";

fn comm(name: &[u8]) -> Vec<u8> {
    let mut k = vec![0u8; 16];
    k[..name.len()].copy_from_slice(name);
    k
}

fn render(dir: &Scratch, file: &str, args: &[&str]) -> Output {
    let path = dir.path().join(file);
    let mut all = vec!["render", path.to_str().expect("utf8")];
    all.extend_from_slice(args);
    ebpfx(&all)
}

#[test]
fn a_task_name_that_is_not_utf8_keeps_its_row_escaped_and_the_others() {
    let dir = Scratch::new("snap-utf8");
    let entries = [(comm(b"\xff\xfe\xfdevil"), 5), (comm(b"bash"), 2), (comm("caf\u{e9}".as_bytes()), 1)];
    dir.write("s.json", &snapshot(&[("tasks", COMM_YAML, vec![map("task_events_total", 16, &entries)])], "[]"));
    let out = render(&dir, "s.json", &["-f", "prom"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let prom = text(&out.stdout);
    // The escape's backslash is itself escaped in the Prometheus text.
    assert!(prom.contains("task_events_total{comm=\"\\\\xff\\\\xfe\\\\xfdevil\"} 5\n"), "{prom}");
    assert!(prom.contains("task_events_total{comm=\"bash\"} 2\n"), "{prom}");
    assert!(prom.contains("task_events_total{comm=\"caf\u{e9}\"} 1\n"), "{prom}");
    assert!(prom.contains("ebpfx_decoder_errors_total{config=\"tasks\"} 0\n"), "{prom}");
    let file = dir.write("out.prom", &prom);
    let promtool =
        Command::new("promtool").args(["check", "metrics"]).stdin(std::fs::File::open(&file).expect("open")).output();
    let promtool = promtool.expect("promtool is installed (make deps)");
    assert_eq!(promtool.status.code(), Some(0), "{}{}", text(&promtool.stdout), text(&promtool.stderr));
    let json = render(&dir, "s.json", &["-f", "json"]);
    assert_eq!(json.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert!(text(&json.stdout).contains("\\\\xff\\\\xfe\\\\xfdevil"), "{v}");
}

#[test]
fn a_row_that_fails_to_decode_is_dropped_and_counted_not_the_metric() {
    let dir = Scratch::new("snap-row");
    // errno needs a number: "x" fails for its row only.
    let yaml = "metrics:\n  counters:\n    - name: errors_total\n      help: Errors\n      labels:\n        - name: err\n          size: 4\n          decoders: [{name: string}, {name: errno}]\n";
    let entries = [(b"2\0\0\0".to_vec(), 7), (b"x\0\0\0".to_vec(), 1), (b"13\0\0".to_vec(), 3)];
    dir.write("s.json", &snapshot(&[("errs", yaml, vec![map("errors_total", 4, &entries)])], "[]"));
    let out = render(&dir, "s.json", &["-f", "prom"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let prom = text(&out.stdout);
    assert!(prom.contains("errors_total{err=\"ENOENT\"} 7\n"), "{prom}");
    assert!(prom.contains("errors_total{err=\"EACCES\"} 3\n"), "{prom}");
    assert!(prom.contains("ebpfx_decoder_errors_total{config=\"errs\"} 1\n"), "{prom}");
    let err = text(&out.stderr);
    assert!(
        err.contains("config errs: metric errors_total: 1 map entries dropped: error decoding label \"err\""),
        "{err}"
    );
}

const HIST_YAML: &str = "metrics:\n  histograms:\n    - name: sizes_bytes\n      help: Sizes\n      bucket_type: exp2\n      bucket_min: -2\n      bucket_max: 2\n      labels:\n        - name: bucket\n          size: 2\n          decoders: [{name: string}]\n";

#[test]
fn a_bad_bucket_label_is_not_a_decoder_error_and_negative_bucket_min_works() {
    let dir = Scratch::new("snap-hist");
    // A negative bucket_min: le 2^-2 = 0.25 first, as ebpf_exporter prints it.
    let good = [(b"0\0".to_vec(), 1), (b"2\0".to_vec(), 2), (b"3\0".to_vec(), 9)];
    dir.write("good.json", &snapshot(&[("h", HIST_YAML, vec![map("sizes_bytes", 2, &good)])], "[]"));
    let out = render(&dir, "good.json", &["-f", "prom"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let prom = text(&out.stdout);
    for line in [
        "sizes_bytes_bucket{le=\"0.25\"} 0\n",
        "sizes_bytes_bucket{le=\"0.5\"} 0\n",
        "sizes_bytes_bucket{le=\"1\"} 1\n",
        "sizes_bytes_bucket{le=\"2\"} 1\n",
        "sizes_bytes_bucket{le=\"4\"} 3\n",
        "sizes_bytes_sum 9\n",
        "sizes_bytes_count 3\n",
    ] {
        assert!(prom.contains(line), "{line}: {prom}");
    }
    // "0x" is not a bucket index: the histogram is left out (ebpf_exporter logs it), not counted.
    let bad = [(b"0x".to_vec(), 1), (b"1\0".to_vec(), 2)];
    dir.write("bad.json", &snapshot(&[("h", HIST_YAML, vec![map("sizes_bytes", 2, &bad)])], "[]"));
    let out = render(&dir, "bad.json", &["-f", "prom"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let prom = text(&out.stdout);
    assert!(prom.contains("ebpfx_decoder_errors_total{config=\"h\"} 0\n"), "{prom}");
    assert!(!prom.contains("sizes_bytes_bucket"), "{prom}");
    assert!(text(&out.stderr).contains("not an unsigned integer"), "{}", text(&out.stderr));
}

/// `render` of `file` must refuse it with exit 2 and a message containing every `needle`.
fn refused(dir: &Scratch, file: &str, needles: &[&str]) {
    let out = render(dir, file, &["-f", "prom"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{file}: {err}");
    assert!(out.stdout.is_empty(), "{file}: {}", text(&out.stdout));
    for n in needles {
        assert!(err.contains(n), "{file}: {n:?} not in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn absurd_sizes_and_bad_hex_in_a_snapshot_are_refused_with_exit_2() {
    let dir = Scratch::new("snap-sizes");
    for (file, key_size) in [("k63.json", 1u64 << 63), ("k40.json", 1u64 << 40), ("kmax.json", u64::MAX)] {
        let m = Map { name: "task_events_total", key_size, slots: 1, keys_hex: String::new(), values: vec![] };
        dir.write(file, &snapshot(&[("tasks", COMM_YAML, vec![m])], "[]"));
        refused(&dir, file, &["map task_events_total", &format!("key_size {key_size}")]);
    }
    let m = Map { name: "task_events_total", key_size: 16, slots: 1 << 40, keys_hex: String::new(), values: vec![] };
    dir.write("slots.json", &snapshot(&[("tasks", COMM_YAML, vec![m])], "[]"));
    refused(&dir, "slots.json", &["slots 1099511627776"]);
    let mut m = map("task_events_total", 16, &[(comm(b"sh"), 1)]);
    m.keys_hex.replace_range(0..2, "zz");
    dir.write("hex.json", &snapshot(&[("tasks", COMM_YAML, vec![m])], "[]"));
    refused(&dir, "hex.json", &["keys_hex"]);
    let mut m = map("task_events_total", 16, &[(comm(b"sh"), 1)]);
    m.values.push(4);
    dir.write("count.json", &snapshot(&[("tasks", COMM_YAML, vec![m])], "[]"));
    refused(&dir, "count.json", &["inconsistent"]);
    // A label size whose sum with the others overflows, in the saved YAML.
    let yaml = COMM_YAML.replace("size: 16", "size: 18446744073709551615");
    dir.write("yaml.json", &snapshot(&[("tasks", &yaml, vec![map("task_events_total", 16, &[])])], "[]"));
    refused(&dir, "yaml.json", &["label comm: size"]);
}

#[test]
fn self_metrics_with_bad_names_are_refused() {
    let dir = Scratch::new("snap-self");
    let empty = || vec![map("task_events_total", 16, &[])];
    let metric = |name: &str, labels: &str, kind: &str| {
        format!(r#"[{{"name":"{name}","help":"h","kind":"{kind}","label_names":{labels},"samples":[]}}]"#)
    };
    for (file, self_metrics, needle) in [
        ("name.json", metric("bad name{x=\\\"1\\\"}", "[]", "gauge"), "not a valid Prometheus metric name"),
        ("label.json", metric("ok_metric", r#"["a-b"]"#, "gauge"), "not a valid Prometheus label name"),
        ("dunder.json", metric("ok_metric", r#"["__name__"]"#, "gauge"), "not a valid Prometheus label name"),
        ("twice.json", metric("ok_metric", r#"["a","a"]"#, "gauge"), "appears twice"),
        ("kind.json", metric("ok_metric", "[]", "histogram"), "neither"),
    ] {
        dir.write(file, &snapshot(&[("tasks", COMM_YAML, empty())], &self_metrics));
        refused(&dir, file, &["self metric", needle]);
    }
    let width = r#"[{"name":"ok_metric","help":"h","kind":"gauge","label_names":["a"],"samples":[[["x","y"],1.0]]}]"#;
    dir.write("width.json", &snapshot(&[("tasks", COMM_YAML, empty())], width));
    refused(&dir, "width.json", &["2 label values for 1 label names"]);
    let fine = r#"[{"name":"ok_metric","help":"h","kind":"gauge","label_names":["a"],"samples":[[["x"],1.0]]}]"#;
    dir.write("fine.json", &snapshot(&[("tasks", COMM_YAML, empty())], fine));
    let out = render(&dir, "fine.json", &["-f", "prom"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok_metric{a=\"x\"} 1\n"));
}

#[test]
fn endless_or_binary_input_is_refused_at_once() {
    // /dev/zero never ends: refused at its first byte, not read on. The 60 s limit only keeps
    // a regression from hanging the suite; it is not a timing assertion.
    let mut child = Command::new(bin())
        .args(["render", "/dev/zero"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ebpfx render /dev/zero still reading after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("does not start with a JSON object"), "{}", text(&out.stderr));
    // A file of nothing but whitespace is not a snapshot either.
    let dir = Scratch::new("snap-blank");
    dir.write("blank.json", &" ".repeat(200_000));
    refused(&dir, "blank.json", &["not an ebpfx raw snapshot"]);
}

#[test]
fn two_configs_with_one_metric_name_are_refused_naming_both() {
    let dir = Scratch::new("snap-clash");
    let configs = [
        ("one", COMM_YAML, vec![map("task_events_total", 16, &[])]),
        ("two", COMM_YAML, vec![map("task_events_total", 16, &[])]),
    ];
    dir.write("s.json", &snapshot(&configs, "[]"));
    refused(&dir, "s.json", &["configs one (one.yaml) and two (two.yaml) both define metric \"task_events_total\""]);
}
