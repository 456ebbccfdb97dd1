//! Configs refused at load, before any BPF (no root needed): histograms with absurd bucket
//! spans, label sizes whose sum overflows, and two configs of one run defining the same metric.
mod common;
use common::*;

const HIST: &str = r#"
metrics:
  histograms:
    - name: bio_latency_seconds
      help: Block IO latency
      bucket_type: linear
      bucket_min: 0
      bucket_max: 27
      labels:
        - name: device
          size: 4
          decoders: [{name: majorminor}]
        - name: operation
          size: 1
          padding: 3
          decoders: [{name: uint}]
        - name: bucket
          size: 8
          decoders: [{name: uint}]
"#;

/// A config dir holding NAME.yaml for each (name, text), each beside a copy of biolatency's object.
fn config_dir(configs: &[(&str, &str)]) -> Scratch {
    let s = Scratch::new("load");
    for (name, yaml) in configs {
        s.write(&format!("{name}.yaml"), yaml);
        std::fs::copy(object_dir().join("biolatency.bpf.o"), s.path().join(format!("{name}.bpf.o")))
            .expect("copy object");
    }
    s
}

fn assert_exit_2(args: &[&str], needles: &[&str]) {
    let out = ebpfx(args);
    // `check` lists problems on stdout; other commands print the error on stderr.
    let err = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "args {args:?}: expected exit 2, got {:?}\n{err}", out.status);
    for n in needles {
        assert!(err.contains(n), "args {args:?}: stderr lacks {n:?}:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_linear_histogram_of_a_hundred_million_buckets_is_refused_by_check_and_run() {
    let d = config_dir(&[("huge", &HIST.replace("bucket_max: 27", "bucket_max: 100000000"))]);
    let dir = d.path().to_str().expect("utf8");
    let needles = ["huge.yaml", "histogram bio_latency_seconds", "[0 .. 100000000] spans 100000001 buckets"];
    assert_exit_2(&["--config-dir", dir, "check", "huge"], &needles);
    assert_exit_2(&["--config-dir", dir, "run", "huge", "--for", "1s"], &needles);
}

#[test]
fn label_sizes_whose_sum_overflows_are_refused_by_check() {
    let yaml = HIST.replace("size: 8", "size: 18446744073709551615");
    let d = config_dir(&[("wide", &yaml)]);
    let dir = d.path().to_str().expect("utf8");
    assert_exit_2(&["--config-dir", dir, "check", "wide"], &["wide.yaml", "label bucket: size 18446744073709551615"]);
    let yaml =
        HIST.replace("padding: 3", "padding: 9223372036854775807").replace("size: 8", "size: 9223372036854775807");
    let d = config_dir(&[("wide2", &yaml)]);
    let dir = d.path().to_str().expect("utf8");
    assert_exit_2(&["--config-dir", dir, "check", "wide2"], &["wide2.yaml", "label operation: padding"]);
}

#[test]
fn a_negative_bucket_min_passes_the_config_checks() {
    let d = config_dir(&[("neg", &HIST.replace("bucket_min: 0", "bucket_min: -2"))]);
    let dir = d.path().to_str().expect("utf8");
    let out = ebpfx(&["--config-dir", dir, "check", "neg"]);
    assert!(
        !text(&out.stderr).contains("negative") && !text(&out.stdout).contains("negative"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn one_metric_name_in_two_configs_of_a_run_is_refused_naming_both() {
    let d = config_dir(&[("first", HIST), ("second", HIST)]);
    let dir = d.path().to_str().expect("utf8");
    assert_exit_2(
        &["--config-dir", dir, "run", "first", "second", "--for", "1s"],
        &["configs first (", "first.yaml) and second (", "second.yaml) both define metric \"bio_latency_seconds\""],
    );
}
