//! Live test of `--format pprof` (root): `profile` on a CPU burner of the test's own, read
//! back by the real `go tool pprof` (Debian golang-go), and checked against the Prometheus text
//! of the same `--save-raw` snapshot.
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// tests/burner.c compiled with frame pointers (BPF walks user stacks by them).
fn build_burner(dir: &Path) -> PathBuf {
    let out = dir.join("ebpfx_burner");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/burner.c");
    let st = Command::new("cc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run cc (build-essential) to compile tests/burner.c");
    assert!(st.success(), "cc failed to compile {}", src.display());
    out
}

/// A running burner, killed on drop.
struct Burner(Child);

impl Burner {
    fn start(path: &Path) -> Burner {
        let mut child = Command::new(path).arg("60").stdout(Stdio::piped()).spawn().expect("start the burner");
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

/// `go tool pprof ARGS FILE`: stdout. Under CI=true go must exist; elsewhere None without it.
fn go_pprof(args: &[&str], file: &Path) -> Option<String> {
    let out = match Command::new("go").args(["tool", "pprof"]).args(args).arg(file).output() {
        Ok(o) => o,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("go (Debian golang-go) not available under CI: {e}");
            }
            eprintln!("go not found ({e}): skipping the go tool pprof checks");
            return None;
        }
    };
    assert!(out.status.success(), "go tool pprof {args:?} failed: {}{}", text(&out.stdout), text(&out.stderr));
    Some(text(&out.stdout))
}

/// N of `... of N total` in `go tool pprof -top` output.
fn pprof_total(top: &str) -> f64 {
    let line = top.lines().find(|l| l.starts_with("Showing nodes accounting for")).expect("a Showing line");
    let n = line.rsplit_once(" of ").and_then(|(_, t)| t.strip_suffix(" total")).expect("`of N total`");
    n.trim_end_matches('s').parse().unwrap_or_else(|_| panic!("total in {line:?}"))
}

/// The function names of the first `n` rows of `-top`, by flat value.
fn top_functions(top: &str, n: usize) -> Vec<String> {
    top.lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .take(n)
        .filter_map(|l| l.split_whitespace().nth(5).map(str::to_string))
        .collect()
}

#[test]
fn live_pprof_profile_is_read_by_go_pprof_and_matches_prom() {
    if !require_root("live_pprof_profile_is_read_by_go_pprof_and_matches_prom") {
        return;
    }
    let _lock = live_lock();
    let dir = Scratch::new("pprof");
    let burner_path = build_burner(dir.path());
    let profile = dir.path().join("p.pb.gz");
    let raw = dir.path().join("raw.json");
    let _burner = Burner::start(&burner_path);
    let (p, r) = (profile.to_string_lossy().into_owned(), raw.to_string_lossy().into_owned());
    let run =
        start_attached(&["run", "profile", "--for", "3s", "--format", "pprof", "--output", &p, "--save-raw", &r], 1);
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(0), "ebpfx failed: {err}");
    assert!(out.is_empty(), "pprof went to --output, yet stdout has {out:?}");
    let bytes = std::fs::read(&profile).expect("the profile file");
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "not gzip");

    // The same snapshot rendered as Prometheus text: its sample count is the profile's total.
    let prom = ebpfx(&["render", &r, "--format", "prom"]);
    assert!(prom.status.success(), "render prom: {}", text(&prom.stderr));
    let prom = text(&prom.stdout);
    let prom_total: f64 = prom_samples(&prom, "ebpfx_cpu_samples_total").iter().map(|(_, v)| v).sum();
    assert!(prom_total > 10.0, "only {prom_total} samples:\n{prom}");

    // And as pprof again, from the saved file (the burner is still alive to symbolize).
    let again = dir.path().join("again.pb.gz");
    let rendered = ebpfx(&["render", &r, "--format", "pprof", "--output", &again.to_string_lossy()]);
    assert!(rendered.status.success(), "render pprof: {}", text(&rendered.stderr));

    let Some(top) = go_pprof(&["-top", "-sample_index=samples"], &profile) else { return };
    assert_eq!(pprof_total(&top), prom_total, "pprof total vs prom sample count:\n{top}");
    let names = top_functions(&top, 5);
    assert!(names.iter().any(|n| n == "ebpfx_burn_inner"), "ebpfx_burn_inner not in the top 5 {names:?}:\n{top}");
    // The default sample type is cpu time: samples × the 99 Hz period.
    let cpu = go_pprof(&["-top", "-sample_index=cpu", "-unit=ns"], &profile).expect("go");
    let period = (1e9_f64 / 99.0).round();
    assert_eq!(pprof_total(&cpu.replace("ns total", " total")), prom_total * period, "{cpu}");
    // Labels: the burner's samples carry its comm and pid.
    let tags = go_pprof(&["-tags"], &profile).expect("go");
    assert!(tags.contains("ebpfx_burner"), "comm label missing:\n{tags}");
    let raw_out = go_pprof(&["-raw"], &profile).expect("go");
    assert!(raw_out.contains("Duration: 3"), "window length missing:\n{raw_out}");
    let top_again = go_pprof(&["-top", "-sample_index=samples"], &again).expect("go");
    assert_eq!(pprof_total(&top_again), prom_total, "render --format pprof of the saved run:\n{top_again}");
    assert!(top_functions(&top_again, 5).iter().any(|n| n == "ebpfx_burn_inner"), "{top_again}");
    // The saved file keeps the sampling frequency: cpu time again.
    let cpu_again = go_pprof(&["-top", "-sample_index=cpu", "-unit=ns"], &again).expect("go");
    assert_eq!(pprof_total(&cpu_again.replace("ns total", " total")), prom_total * period, "{cpu_again}");
}

#[test]
fn live_pprof_cpu_time_follows_the_frequency_flag() {
    if !require_root("live_pprof_cpu_time_follows_the_frequency_flag") {
        return;
    }
    let _lock = live_lock();
    let dir = Scratch::new("pprof-freq");
    let profile = dir.path().join("p.pb.gz");
    let p = profile.to_string_lossy().into_owned();
    let run = start_attached(&["run", "profile", "--for", "1s", "--frequency", "49", "--format", "pprof", "-o", &p], 1);
    let (code, _, err) = run.finish();
    assert_eq!(code, Some(0), "ebpfx failed: {err}");
    let Some(raw) = go_pprof(&["-raw"], &profile) else { return };
    let period = (1e9_f64 / 49.0).round();
    assert!(raw.contains(&format!("Period: {period}\n")), "period of 49 Hz missing:\n{raw}");
}

#[test]
fn pprof_is_refused_on_a_terminal_and_for_configs_without_stacks() {
    // `script` (util-linux) gives ebpfx a terminal on stdout; no root needed for `render`.
    let dir = Scratch::new("pprof-tty");
    let raw = dir.write(
        "raw.json",
        r#"{"kind":"ebpfx-raw-snapshot","version":1,"window":{"start_unix_ns":0,"end_unix_ns":1000000000,"length_ns":1000000000},"configs":[]}"#,
    );
    let cmd = format!("{} render {} --format pprof", bin(), raw.display());
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().expect("run script (util-linux)");
    assert_eq!(out.status.code(), Some(2), "{}{}", text(&out.stdout), text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("--format pprof is binary") && all.contains("--output"), "{all}");
    // Piped, the same command writes a gzip stream.
    let piped = ebpfx(&["render", &raw.to_string_lossy(), "--format", "pprof"]);
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    assert_eq!(&piped.stdout[..2], [0x1f, 0x8b]);
    // A config without stack labels is refused before anything loads.
    let out = ebpfx(&["run", "syscalls", "--for", "1s", "--format", "pprof", "--output", "/tmp/x.pb.gz"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--format pprof prints stacks"), "{}", text(&out.stderr));
}
