//! Live tests of the `profile` built-in (root): a CPU burner with known function names must show
//! up, symbolized, in every output format.
//!
//! The burner is `tests/burner.c`, compiled here with `cc -O0 -fno-omit-frame-pointer`: BPF walks
//! user stacks by frame pointers, and rustc omits them (at every opt-level) unless the whole
//! build sets `-C force-frame-pointers`. It runs until killed (60 s at most), so it is alive when
//! ebpfx reads and symbolizes the stacks at the end of the window.
mod common;
use common::*;

use std::path::PathBuf;
use std::sync::OnceLock;

/// The compiled burner (built once per test process).
fn burner_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build_burner(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ebpfx_burner")))
}

/// Runs `ebpfx run profile --for WINDOW ARGS...` while the burner burns; returns stdout.
fn profile(window: &str, args: &[&str]) -> String {
    let _burner = Burner::start(burner_path());
    let mut all = vec!["run", "profile", "--for", window];
    all.extend_from_slice(args);
    let run = start_attached(&all, 1);
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(0), "ebpfx failed: {err}");
    // Stacks lost to collisions in the stack maps are warned about (docs/stacks.md): at 999 Hz
    // on a busy shared machine a few are expected. Any other warning is unexpected.
    let unexpected: Vec<&str> = err.lines().filter(|l| l.contains("warning") && !l.contains("[lost stack]")).collect();
    assert!(unexpected.is_empty(), "unexpected warning: {err}");
    out
}

/// Sum of the counts of folded lines that contain `needle`.
fn folded_count(folded: &str, needle: &str) -> u64 {
    folded
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, n)| n.parse::<u64>().ok()))
        .sum()
}

#[test]
fn live_profile_folded_shows_the_burner_stack() {
    if !require_root("live_profile_folded_shows_the_burner_stack") {
        return;
    }
    let _lock = live_lock();
    let folded = profile("3s", &["--format", "folded"]);
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a folded line: {line:?}"));
        assert!(!stack.is_empty() && count.parse::<u64>().is_ok_and(|n| n > 0), "bad folded line {line:?}");
    }
    let burner: Vec<&str> = folded.lines().filter(|l| l.contains("ebpfx_burn_outer;ebpfx_burn_inner")).collect();
    assert!(!burner.is_empty(), "no folded line with ebpfx_burn_outer;ebpfx_burn_inner:\n{folded}");
    assert!(burner.iter().all(|l| l.starts_with("ebpfx_burner;")), "comm is not the root frame: {burner:?}");
    // 99 Hz for 3 s: up to ~300 samples while the burner has a CPU to itself.
    let n = folded_count(&folded, "ebpfx_burn_outer;ebpfx_burn_inner");
    assert!(n > 10, "only {n} samples of the burner:\n{folded}");
}

#[test]
fn live_profile_flamegraph_is_svg_with_the_burner() {
    if !require_root("live_profile_flamegraph_is_svg_with_the_burner") {
        return;
    }
    let _lock = live_lock();
    let svg = profile("2s", &["--format", "flamegraph"]);
    // inferno writes the SVG 1.1 DOCTYPE, which roxmltree refuses unless told otherwise.
    let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(&svg, opts)
        .unwrap_or_else(|e| panic!("flame graph is not XML: {e}\n{svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let titles: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("title")).filter_map(|n| n.text()).collect();
    assert!(titles.iter().any(|t| t.starts_with("ebpfx_burn_inner")), "no ebpfx_burn_inner frame in the SVG");
    assert!(titles.iter().any(|t| t.starts_with("ebpfx_burn_outer")), "no ebpfx_burn_outer frame in the SVG");
}

#[test]
fn live_profile_table_lists_top_functions() {
    if !require_root("live_profile_table_lists_top_functions") {
        return;
    }
    let _lock = live_lock();
    let table = profile("2s", &["--format", "table"]);
    assert!(table.contains("| function "), "no top-functions table:\n{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("| ebpfx_burn_inner "))
        .unwrap_or_else(|| panic!("ebpfx_burn_inner is not among the top functions:\n{table}"));
    let self_samples: u64 = row.split('|').nth(2).and_then(|c| c.trim().parse().ok()).unwrap_or(0);
    assert!(self_samples > 5, "ebpfx_burn_inner has {self_samples} self samples: {row}");
}

#[test]
fn live_profile_frequency_changes_the_sampling_rate() {
    if !require_root("live_profile_frequency_changes_the_sampling_rate") {
        return;
    }
    let _lock = live_lock();
    // At 99 Hz a 2 s window holds at most ~200 samples of one thread; at 999 Hz up to ~2000.
    let folded = profile("2s", &["--format", "folded", "--frequency", "999"]);
    let n = folded_count(&folded, "ebpfx_burn_inner");
    assert!(n > 300, "only {n} burner samples at 999 Hz:\n{folded}");
}

#[test]
fn stack_formats_refuse_configs_without_stacks() {
    for format in ["folded", "flamegraph"] {
        let out = ebpfx(&["run", "syscalls", "--for", "1s", "--format", format]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(&format!("--format {format} prints stacks")) && err.contains("syscalls"), "{err}");
    }
}

#[test]
fn live_profile_hist_prints_top_stacks_frame_per_line() {
    if !require_root("live_profile_hist_prints_top_stacks_frame_per_line") {
        return;
    }
    let _lock = live_lock();
    let hist = profile("2s", &["--format", "hist"]);
    // Before: one `kstack=...\n...` line per stack, hundreds of characters, literal `\n`s.
    // (The title line carries the metric's help, which mentions `\n`.)
    // Frame lines are as long as their function's name; the others are short.
    let readable = |l: &str| !l.contains("\\n") && (l.starts_with("    ") || l.len() < 120);
    assert!(hist.lines().skip(1).all(readable), "unreadable lines:\n{hist}");
    assert!(hist.contains("samples in ") && hist.contains("leaf frame first"), "no top-stacks view:\n{hist}");
    let lines: Vec<&str> = hist.lines().collect();
    let burner = lines
        .iter()
        .position(|l| l.contains(", comm ebpfx_burner"))
        .unwrap_or_else(|| panic!("the burner's stack is not among the top stacks:\n{hist}"));
    let frames: Vec<&str> =
        lines[burner + 1..].iter().take_while(|l| l.starts_with("    ")).map(|l| l.trim()).collect();
    let inner = frames.iter().position(|f| *f == "ebpfx_burn_inner");
    let outer = frames.iter().position(|f| *f == "ebpfx_burn_outer");
    assert!(
        matches!((inner, outer), (Some(i), Some(o)) if o == i + 1),
        "frames not one per line, leaf first: {frames:?}"
    );
}
