//! Map memory bound: an object whose maps would take more kernel memory than
//! `--max-map-memory` (1 GiB by default) is refused with exit 2 naming the map, by `check`
//! and by `run` before anything is loaded; `check -v` shows every map's figure.
//! tests/bpf/hugemap.bpf.c declares a per-CPU array of 2^31 entries.
mod common;
use common::*;

fn hugemap_dir() -> Scratch {
    test_config_dir(&["hugemap"])
}

#[test]
fn check_refuses_a_map_above_the_bound_and_names_it() {
    let dir = hugemap_dir();
    let d = dir.path().to_str().expect("utf-8 dir");
    let out = ebpfx(&["--config-dir", d, "check", "hugemap"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("config hugemap: map huge_total (PercpuArray): 2147483648 entries, 4 B key, 8 B value x "),
        "{stdout}"
    );
    assert!(stdout.contains("exceeds the per-map bound of 1.0 GiB") && stdout.contains("--max-map-memory"), "{stdout}");

    // Raised above the figure, the same object passes check (nothing is loaded).
    let out = ebpfx(&["--config-dir", d, "check", "hugemap", "--max-map-memory", "16T"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn check_verbose_shows_each_maps_memory() {
    let out = ebpfx(&["-v", "check", "syscalls"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let cpus = libbpf_rs::num_possible_cpus().expect("possible CPUs");
    // 1024 entries x (8 B key + 8 B value per CPU) = (8 + 8 x CPUs) KiB.
    let want = format!(
        "note: map syscalls_total (PercpuHash): 1024 entries, 8 B key, 8 B value x {cpus} CPUs: {}.0 KiB",
        8 + 8 * cpus
    );
    assert!(stdout.contains(&want), "expected {want:?} in:\n{stdout}");
}

#[test]
fn bad_max_map_memory_is_a_usage_error() {
    let out = ebpfx(&["check", "syscalls", "--max-map-memory", "4X"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--max-map-memory") && stderr.contains("unknown unit"), "{stderr}");
}

#[test]
fn live_run_refuses_a_map_above_the_bound_before_loading() {
    if !require_root("live_run_refuses_a_map_above_the_bound_before_loading") {
        return;
    }
    let _l = live_lock();
    let dir = hugemap_dir();
    let d = dir.path().to_str().expect("utf-8 dir");
    let out = ebpfx(&["--config-dir", d, "run", "hugemap", "--for", "1s"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("map huge_total") && stderr.contains("--max-map-memory"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    // A built-in under a bound lowered below its map's size is refused too; at the default it runs.
    let out = ebpfx(&["run", "syscalls", "--for", "200ms", "--max-map-memory", "1K", "--format", "prom"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("config syscalls: map syscalls_total (PercpuHash)"), "{stderr}");
    let out = ebpfx(&["run", "syscalls", "--for", "200ms", "--format", "prom"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
