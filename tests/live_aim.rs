//! Live tests of bcc's habits (issue 11, user-space half): `run NAME [interval] [count]`,
//! `--unit`, `--by` on a live run and on its saved snapshot, `--top` on tables and `--watch`.
//! Each counts only what it makes itself, or compares one window with itself (a live `--by`
//! run against its own `--save-raw` maps), so other work on the machine cannot move the result.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// The lines that head a metric in hist output: one per block.
fn blocks(hist: &str, metric: &str) -> usize {
    hist.lines().filter(|l| l.starts_with(&format!("{metric}: "))).count()
}

#[test]
fn live_interval_and_count_after_the_names_print_that_many_blocks() {
    if !require_root("live_interval_and_count_after_the_names_print_that_many_blocks") {
        return;
    }
    let _l = live_lock();
    let scratch = Scratch::new("aim-blocks");
    let started = Instant::now();
    let run = start_attached(&["run", "biolatency", "1", "3", "--format", "hist"], 1);
    direct_writes(scratch.path(), 100);
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(blocks(&out, "bio_latency_seconds"), 3, "expected 3 one-second blocks:\n{out}\n{err}");
    assert!(out.contains("usecs"), "{out}");
    // 3 blocks of 1 s: not one block of the default window, not an endless run
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// `count N` of every hist block, in order.
fn hist_counts(hist: &str) -> Vec<u64> {
    hist.lines().filter_map(|l| l.strip_prefix("count ")?.split(',').next()?.trim().parse().ok()).collect()
}

#[test]
fn live_unit_changes_hist_and_table_but_not_prom() {
    if !require_root("live_unit_changes_hist_and_table_but_not_prom") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("aim-unit");
    let saved = dir.path().join("runqlat.json");
    let saved = saved.to_str().expect("utf8");
    // runqlat's program counts nanoseconds; our own sleeps give it wakeups to measure
    let run =
        start_attached(&["run", "runqlat", "--for", "1s", "--format", "hist", "--unit", "ms", "--save-raw", saved], 1);
    for _ in 0..200 {
        std::thread::sleep(Duration::from_micros(500));
    }
    let (code, ms, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(ms.contains("     msecs "), "--unit ms must head the histogram with msecs:\n{ms}");
    assert!(ms.contains(" msecs, avg "), "{ms}");
    let render = |args: &[&str]| {
        let mut all = vec!["render", saved];
        all.extend_from_slice(args);
        let out = ebpfx(&all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let us = render(&["--format", "hist"]);
    assert!(us.contains("     usecs ") && !us.contains("nsecs"), "bcc's default is usecs:\n{us}");
    let ns = render(&["--format", "hist", "--unit", "ns"]);
    assert!(ns.contains("     nsecs "), "{ns}");
    // the same window in every unit: the same counts
    assert!(!hist_counts(&us).is_empty());
    assert_eq!(hist_counts(&us), hist_counts(&ms));
    assert_eq!(hist_counts(&us), hist_counts(&ns));
    let table_ms = render(&["--format", "table", "--unit", "ms"]);
    assert!(table_ms.contains("ms |"), "{table_ms}");
    assert!(!table_ms.contains("µs |"), "{table_ms}");
    // Prometheus output keeps seconds whatever --unit says
    assert_eq!(render(&["--format", "prom", "--unit", "ms"]), render(&["--format", "prom"]));
}

/// `_count` per label text of a histogram family.
fn counts(prom: &str, family: &str) -> BTreeMap<String, f64> {
    prom_samples(prom, &format!("{family}_count")).into_iter().collect()
}

#[test]
fn live_by_regroups_a_run_and_its_saved_snapshot_alike() {
    if !require_root("live_by_regroups_a_run_and_its_saved_snapshot_alike") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("aim-by");
    let saved = dir.path().join("bio.json");
    let saved = saved.to_str().expect("utf8");
    let n = 200;
    let run = start_attached(
        &["run", "biolatency", "--for", "2s", "--by", "device", "--format", "prom", "--save-raw", saved],
        1,
    );
    direct_writes(dir.path(), n);
    let (code, by_device, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&by_device);
    let live = counts(&by_device, "ebpfx_bio_latency_seconds");
    assert!(!live.is_empty(), "{by_device}");
    for labels in live.keys() {
        assert!(labels.starts_with("device=\"") && !labels.contains(','), "only the device label: {labels}");
    }
    // The same window without --by: each device's count is the sum over its operations.
    let render = |args: &[&str]| {
        let mut all = vec!["render", saved, "--format", "prom"];
        all.extend_from_slice(args);
        let out = ebpfx(&all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let full = counts(&render(&[]), "ebpfx_bio_latency_seconds");
    let mut summed: BTreeMap<String, f64> = BTreeMap::new();
    for (labels, v) in &full {
        let device = labels.split(',').find(|l| l.starts_with("device=")).expect("device label").to_string();
        *summed.entry(device).or_default() += v;
    }
    assert_eq!(live, summed, "live --by device differs from the saved maps summed by device");
    // The saved snapshot regrouped by render gives the live run's numbers.
    let rendered = render(&["--by", "device"]);
    assert_eq!(counts(&rendered, "ebpfx_bio_latency_seconds"), live, "render --by device differs from run --by device");
    // --by none: one series holding every write we made
    let none = render(&["--by", "none"]);
    promtool_check(&none);
    let total = counts(&none, "ebpfx_bio_latency_seconds");
    assert_eq!(total.keys().collect::<Vec<_>>(), [""], "one series without labels:\n{none}");
    let total = total[""];
    assert!(total >= n as f64, "at least our {n} writes: {total}");
    assert_eq!(total, full.values().sum::<f64>());
    // listed order is kept for tables; Prometheus sorts label names
    let swapped = render(&["--by", "operation,device"]);
    promtool_check(&swapped);
    assert_eq!(counts(&swapped, "ebpfx_bio_latency_seconds"), full);
}

#[test]
fn live_top_cuts_the_table_and_says_what_was_left_out() {
    if !require_root("live_top_cuts_the_table_and_says_what_was_left_out") {
        return;
    }
    let _l = live_lock();
    let run = start_attached(&["run", "syscalls", "--for", "1s", "--format", "table", "--top", "3"], 1);
    getpid_calls(1000);
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    let rows = out.lines().filter(|l| l.starts_with("| ") && !l.contains("| value")).count();
    assert_eq!(rows, 3, "{out}");
    assert!(out.contains("more rows left out by --top 3"), "{out}");
}

fn tmux(server: &str, args: &[&str]) -> String {
    let out = Command::new("tmux").arg("-L").arg(server).args(args).output().expect("run tmux");
    text(&out.stdout)
}

#[test]
fn live_watch_top_cuts_the_live_table() {
    if !require_root("live_watch_top_cuts_the_live_table") {
        return;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
            panic!("tmux is needed for the --watch test under CI");
        }
        eprintln!("SKIPPED: tmux not installed");
        return;
    }
    let _l = live_lock();
    let server = format!("ebpfx-aim-{}", std::process::id());
    let cmd = format!("{} run syscalls --watch --top 2 -i 500ms; echo EXIT=$?; sleep 60", bin());
    tmux(&server, &["new-session", "-d", "-s", "w", "-x", "150", "-y", "40", &cmd]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut screen = String::new();
    while Instant::now() < deadline {
        screen = tmux(&server, &["capture-pane", "-p", "-t", "w"]);
        if screen.contains("left out by --top 2") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux(&server, &["send-keys", "-t", "w", "C-c"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux(&server, &["kill-server"]);
    assert!(screen.contains("left out by --top 2"), "{screen}");
    let rows = screen.lines().filter(|l| l.starts_with("| ") && !l.contains("| value")).count();
    assert_eq!(rows, 2, "{screen}");
}
