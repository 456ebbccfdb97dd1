//! Live tests: real BPF programs loaded, attached and read on this kernel, as root.
//! They run one at a time (they count events machine-wide). Under CI=true a skip is a failure.
mod common;
use common::*;

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

fn vda_writes(prom: &str) -> f64 {
    prom_value(prom, "ebpfx_bio_latency_seconds_count{device=\"vda\",operation=\"write\"}").unwrap_or(0.0)
}

/// Block completions of a biolatency window the kernel ran no program for (tests/common).
fn biolatency_not_run(prom: &str) -> u64 {
    completions_not_run(prom, "biolatency", "biolatency_issue", "biolatency_complete")
}

#[test]
fn live_biolatency_counts_direct_writes() {
    if !require_root("live_biolatency_counts_direct_writes") {
        return;
    }
    let _l = live_lock();
    let scratch = Scratch::new("bio");
    let n = 300;
    let mut round = 1;
    let (prom, err, writes) = loop {
        let run = start_attached(&["run", "biolatency", "--for", "3s", "--format", "prom"], 1);
        direct_writes(scratch.path(), n);
        let (code, prom, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        let writes = vda_writes(&prom);
        if !rerun_for_kernel_skips("biolatency", round, n as u64, writes as u64, biolatency_not_run(&prom)) {
            break (prom, err, writes);
        }
        round += 1;
    };
    assert!(writes >= n as f64, "expected at least {n} writes on vda, got {writes}\n{prom}\n{err}");
    // The sum is in seconds and positive; +Inf equals _count.
    let sum = prom_value(&prom, "ebpfx_bio_latency_seconds_sum{device=\"vda\",operation=\"write\"}").unwrap_or(0.0);
    assert!(sum > 0.0 && sum < writes * 10.0, "implausible sum {sum}");
    let inf = prom_value(&prom, "ebpfx_bio_latency_seconds_bucket{device=\"vda\",operation=\"write\",le=\"+Inf\"}");
    assert_eq!(inf, Some(writes));
    promtool_check(&prom);
}

#[test]
fn live_syscalls_counts_getpid() {
    if !require_root("live_syscalls_counts_getpid") {
        return;
    }
    let _l = live_lock();
    let run = start_attached(&["run", "syscalls", "--for", "2s", "--format", "prom"], 1);
    let k = 20_000;
    getpid_calls(k);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    let got = prom_value(&prom, "ebpfx_syscalls_total{syscall=\"getpid\"}").unwrap_or(0.0);
    assert!(got >= k as f64, "expected at least {k} getpid calls, got {got}\n{prom}");
    promtool_check(&prom);
}

#[test]
fn live_no_program_remains_after_exit() {
    if !require_root("live_no_program_remains_after_exit") {
        return;
    }
    let _l = live_lock();
    let run = start_attached(&["run", "biolatency", "syscalls", "--for", "500ms", "--format", "prom"], 2);
    let ids = run.program_ids();
    assert_eq!(ids.len(), 3, "biolatency has 2 programs, syscalls 1");
    let loaded = loaded_program_ids();
    assert!(ids.iter().all(|id| loaded.contains(id)), "programs {ids:?} not loaded while running");
    let (code, _, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    // The kernel frees programs asynchronously (RCU) once the last reference is closed: allow
    // it a moment, then they must all be gone.
    let exited = std::time::Instant::now();
    let mut left: Vec<u32> = ids.clone();
    while !left.is_empty() && exited.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let loaded = loaded_program_ids();
        left.retain(|id| loaded.contains(id));
    }
    eprintln!("programs gone {:?} after exit", exited.elapsed());
    assert!(left.is_empty(), "programs still loaded 10 s after ebpfx exited: {left:?}");
}

#[test]
fn live_ctrl_c_ends_window_and_still_prints() {
    if !require_root("live_ctrl_c_ends_window_and_still_prints") {
        return;
    }
    let _l = live_lock();
    for sig in [SIGINT, SIGTERM] {
        let run = start_attached(&["run", "syscalls", "--format", "prom"], 1);
        getpid_calls(1000);
        run.signal(sig);
        let (code, prom, err) = run.finish();
        assert_eq!(code, Some(0), "signal {sig}: {err}");
        assert!(prom.contains("ebpfx_syscalls_total{syscall=\"getpid\"}"), "signal {sig}: no results:\n{prom}\n{err}");
        assert!(err.contains("interrupted"), "{err}");
    }
}

#[test]
fn live_second_ctrl_c_quits_with_130() {
    if !require_root("live_second_ctrl_c_quits_with_130") {
        return;
    }
    let _l = live_lock();
    let mut run = start_attached_env(
        &["run", "syscalls", "biolatency", "--format", "prom"],
        2,
        &[("EBPFX_TEST_DELAY_PRINT_MS", "5000")],
    );
    run.signal(SIGINT);
    run.wait_stderr("interrupted after");
    // A second interrupt within 0.5 s of the first is taken as the same one (README "Signals").
    std::thread::sleep(std::time::Duration::from_millis(700));
    run.signal(SIGINT);
    let (code, _out, err) = run.finish();
    // The first signal may already have printed; the second one must end the process with 130.
    assert_eq!(code, Some(130), "{err}");
}

#[test]
fn live_non_root_user_is_told_what_privilege_is_needed() {
    if !require_root("live_non_root_user_is_told_what_privilege_is_needed") {
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin()])
        .args(["run", "syscalls", "--for", "1s"])
        .output()
        .expect("run setpriv");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs root") && err.contains("CAP_BPF") && err.contains("CAP_PERFMON"), "{err}");
}

#[test]
fn live_output_file_is_written_atomically() {
    if !require_root("live_output_file_is_written_atomically") {
        return;
    }
    let _l = live_lock();
    let scratch = Scratch::new("out");
    let target = scratch.path().join("syscalls.prom");
    let out = ebpfx(&["run", "syscalls", "--for", "300ms", "--output", target.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "with --output nothing goes to stdout");
    let prom = std::fs::read_to_string(&target).expect("output written");
    assert!(prom.contains("# TYPE ebpfx_syscalls_total counter"), "{prom}");
    promtool_check(&prom);
    let names: Vec<_> = std::fs::read_dir(scratch.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names, vec!["syscalls.prom".to_string()], "temp files left behind");
}

#[test]
fn live_self_metrics_show_programs_and_probe_cost() {
    if !require_root("live_self_metrics_show_programs_and_probe_cost") {
        return;
    }
    let _l = live_lock();
    let stats_before = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").unwrap_or_default();
    let run = start_attached(&["run", "syscalls", "--for", "1s", "--format", "prom"], 1);
    let ids = run.program_ids();
    getpid_calls(10_000);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);
    assert_eq!(prom_value(&prom, "ebpfx_enabled_configs{name=\"syscalls\"}"), Some(1.0), "{prom}");
    let id = ids.first().expect("program id");
    // No `id` label (it changes at every load, a new series per run): config and program.
    assert!(!prom.contains(&format!("id=\"{id}\"")), "{prom}");
    let labels = "{config=\"syscalls\",program=\"syscalls_enter\"}";
    assert_eq!(prom_value(&prom, &format!("ebpfx_ebpf_program_attached{labels}")), Some(1.0), "{prom}");
    let runs = prom_value(&prom, &format!("ebpfx_ebpf_program_run_count_total{labels}")).unwrap_or(0.0);
    assert!(runs >= 10_000.0, "run count {runs} below the getpid calls made");
    let secs = prom_value(&prom, &format!("ebpfx_ebpf_program_run_time_seconds_total{labels}")).unwrap_or(0.0);
    assert!(secs > 0.0 && secs < 1.0, "run time {secs}");
    assert!(prom.contains("ebpfx_ebpf_program_info{config=\"syscalls\",program=\"syscalls_enter\",tag=\""));
    let stats_after = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").unwrap_or_default();
    assert_eq!(stats_before, stats_after, "BPF run-time statistics were not restored");
}

#[test]
fn live_hist_and_table_show_the_prom_totals() {
    if !require_root("live_hist_and_table_show_the_prom_totals") {
        return;
    }
    let _l = live_lock();
    // One run, saved raw, rendered three ways: the same window in every format.
    let dir = Scratch::new("formats");
    let saved = dir.path().join("run.json");
    let mut round = 1;
    let (prom, writes) = loop {
        let run = start_attached(
            &["run", "biolatency", "--for", "2s", "-f", "prom", "--save-raw", saved.to_str().expect("utf8")],
            1,
        );
        direct_writes(dir.path(), 200);
        let (code, prom, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        let writes = vda_writes(&prom);
        if !rerun_for_kernel_skips("biolatency", round, 200, writes as u64, biolatency_not_run(&prom)) {
            break (prom, writes);
        }
        round += 1;
    };
    assert!(writes >= 200.0, "{prom}");
    let render = |f: &str| text(&ebpfx(&["render", saved.to_str().expect("utf8"), "-f", f]).stdout);
    let hist = render("hist");
    let block = hist.split("device = vda, operation = write").nth(1).expect("write block in hist");
    let count_line = block.lines().find(|l| l.starts_with("count ")).expect("count line");
    let hist_count: f64 =
        count_line.trim_start_matches("count ").split(',').next().and_then(|n| n.trim().parse().ok()).expect("number");
    assert_eq!(hist_count, writes, "hist total differs from prom:\n{hist}");
    let rows: f64 = block
        .lines()
        .take_while(|l| !l.starts_with("count "))
        .filter_map(|l| l.split(':').nth(1)?.split('|').next()?.trim().parse::<f64>().ok())
        .sum();
    assert_eq!(rows, writes, "hist rows do not add up to the total");
    let table = render("table");
    let row = table.lines().find(|l| l.contains("| vda") && l.contains("| write")).expect("table row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells.get(3).and_then(|c| c.parse::<f64>().ok()), Some(writes), "table count differs: {row}");
}

#[test]
fn live_external_btf_file() {
    if !require_root("live_external_btf_file") {
        return;
    }
    let _l = live_lock();
    // The running kernel's own BTF, given as an external file, works like the default.
    let out = ebpfx(&["run", "syscalls", "--for", "300ms", "--format", "prom", "--btf", "/sys/kernel/btf/vmlinux"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ebpfx_syscalls_total{"));
    let out = ebpfx(&["run", "syscalls", "--for", "300ms", "--btf", "/nonexistent/vmlinux.btf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/vmlinux.btf"), "{}", text(&out.stderr));
}

#[test]
fn live_quiet_prints_only_results() {
    if !require_root("live_quiet_prints_only_results") {
        return;
    }
    let _l = live_lock();
    let out = ebpfx(&["-q", "run", "syscalls", "--for", "300ms", "--format", "prom"]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "-q printed on stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ebpfx_syscalls_total{"));
    // Errors still print under -q.
    let out = ebpfx(&["-q", "run", "no_such_tool"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no config named"));
}
