//! Event tools through a perf event array instead of a ring buffer (issue 12, item 1;
//! docs/events.md#kernels-without-a-ring-buffer): the built-ins with `--event-buffer perf` (their
//! `events` map retyped before load, bpf/events.bpf.h switched to bpf_perf_event_output), and a
//! config whose object declares a BPF_MAP_TYPE_PERF_EVENT_ARRAY itself. Each test makes a
//! workload of its own (a unique argument, path, or magic system call) and checks the output
//! against exactly what it did.
mod common;
use common::*;

/// The `-v` note that says a stream's records came through a perf buffer.
fn through_perf(err: &str, config: &str) -> bool {
    err.lines()
        .any(|l| l.starts_with(&format!("ebpfx: config {config}: ")) && l.contains("records through a perf buffer"))
}

/// The `N events lost in total` figure on stderr.
fn lost_total(err: &str, config: &str) -> u64 {
    err.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("ebpfx: {config}: "))?.split(" events lost in total").next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no lost total on stderr: {err}"))
}

/// getpriority(which, seq) `n` times: with a magic `which` the kernel answers EINVAL, and the
/// test objects send one record each.
fn magic_calls(which: i32, n: u32) {
    for seq in 0..n {
        // SAFETY: getpriority with an invalid `which` only returns EINVAL.
        unsafe { libc::syscall(libc::SYS_getpriority, which, seq) };
    }
}

/// The `seq` values of the JSON lines, checked for duplicates.
fn seqs(out: &str) -> Vec<u64> {
    let mut seqs: Vec<u64> = json_lines(out).iter().filter_map(|v| v["seq"].as_u64()).collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a record came twice");
    seqs
}

#[test]
fn live_execsnoop_through_a_perf_buffer_prints_each_of_300_runs() {
    if !require_root("live_execsnoop_through_a_perf_buffer_prints_each_of_300_runs") {
        return;
    }
    let _l = live_lock();
    let arg = unique_tag("execsnoop-perf-arg");
    let err = execsnoop_sees_300_runs(&["run", "execsnoop", "--event-buffer", "perf", "-f", "json"], &arg);
    assert!(through_perf(&err, "execsnoop"), "not through a perf buffer: {err}");
}

#[test]
fn live_opensnoop_through_a_perf_buffer_sees_a_missing_path_with_enoent() {
    if !require_root("live_opensnoop_through_a_perf_buffer_sees_a_missing_path_with_enoent") {
        return;
    }
    let _l = live_lock();
    let path = format!("/tmp/{}", unique_tag("opensnoop-perf-missing"));
    let scratch = Scratch::new("events-perf-raw");
    let raw = scratch.path().join("open.json");
    let raw_s = raw.to_str().expect("utf-8");
    let args = ["run", "opensnoop", "--event-buffer", "perf", "-f", "json", "--save-raw", raw_s];
    let (code, out, err) = run_events(&args, || {
        for _ in 0..5 {
            let e = std::fs::File::open(&path).expect_err("the path is missing");
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        }
    });
    assert_eq!(code, Some(0), "{err}");
    assert!(through_perf(&err, "opensnoop"), "not through a perf buffer: {err}");
    // Opens happen all the time here: those between attach and the perf buffers' opening are
    // not sent (events_perf_ready), so they do not show up as lost either.
    assert!(!err.contains("events lost"), "{err}");
    let mine: Vec<serde_json::Value> =
        json_lines(&out).into_iter().filter(|v| v["path"].as_str() == Some(path.as_str())).collect();
    assert_eq!(mine.len(), 5, "{out}");
    for v in &mine {
        assert_eq!(v["ret"], "ENOENT", "{v}");
        assert_eq!(v["pid"].as_u64(), Some(u64::from(std::process::id())), "{v}");
        assert!(v["flags"].as_str().is_some_and(|f| f.starts_with("O_RDONLY")), "{v}");
    }
    // The saved records (perf samples cut back to the record) replay as the same lines.
    let replay = ebpfx(&["render", raw_s, "-f", "json"]);
    assert_eq!(replay.status.code(), Some(0), "{}", text(&replay.stderr));
    assert_eq!(text(&replay.stdout), out);
}

/// `auto` on a kernel with ring buffers (this one) keeps the ring: `-v` says which.
#[test]
fn live_auto_keeps_the_ring_buffer_where_the_kernel_has_one() {
    if !require_root("live_auto_keeps_the_ring_buffer_where_the_kernel_has_one") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&[]);
    add_test_config(&dir, "evstorm", "evstorm", "evstorm");
    let d = dir.path().to_str().expect("utf-8");
    for flag in [&[][..], &["--event-buffer", "auto"], &["--event-buffer", "ring"]] {
        let args = [&["--config-dir", d, "run", "evstorm", "-f", "json"], flag].concat();
        let (code, out, err) = run_events(&args, || magic_calls(0x7e57, 50));
        assert_eq!(code, Some(0), "{flag:?}: {err}");
        assert!(
            err.contains("ebpfx: config evstorm: events evstorm: records through a ring buffer of 65536 bytes"),
            "{flag:?}: {err}"
        );
        assert_eq!(seqs(&out), (0..50).collect::<Vec<u64>>(), "{flag:?}: {err}");
    }
}

/// Many records into one-page perf buffers from the events.bpf.h test object (its ring buffer
/// retyped): the lost count printed is exactly produced − received, on stderr and in prom.
#[test]
fn live_overload_through_a_perf_buffer_prints_exactly_the_records_lost() {
    if !require_root("live_overload_through_a_perf_buffer_prints_exactly_the_records_lost") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&[]);
    add_test_config(&dir, "evstorm", "evstorm", "evstorm");
    let d = dir.path().to_str().expect("utf-8");
    const N: u32 = 200_000;
    let args = ["--config-dir", d, "run", "evstorm", "--event-buffer", "perf", "--ring-size", "4K", "-f", "json"];
    let (code, out, err) = run_events(&args, || magic_calls(0x7e57, N));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("records through a perf buffer of 1 page(s) per CPU"), "{err}");
    let received = seqs(&out).len() as u64;
    let total = lost_total(&err, "evstorm");
    assert!(total > 0, "one-page perf buffers kept up with {N} records: {err}");
    assert_eq!(total, u64::from(N) - received, "{err}");
    assert!(err.contains(&format!("{received} received")), "{err}");
    assert!(err.contains("(perf buffer full:"), "{err}");

    // The same in prom: the self metric holds the loss, the count what was received.
    let (code, prom, err) = run_events(&[&args[..args.len() - 1], &["prom"]].concat(), || magic_calls(0x7e57, N));
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);
    let lost = prom_get(&prom, "ebpfx_events_lost_total", &[("config", "evstorm")]).expect("lost series");
    let counted = prom_sum(&prom, "ebpfx_evstorm_events_total", "");
    assert!(lost > 0.0, "{prom}");
    assert_eq!(lost + counted, f64::from(N), "{prom}\n{err}");
}

/// A config whose object declares a BPF_MAP_TYPE_PERF_EVENT_ARRAY itself: `check` accepts it,
/// every record arrives (auto keeps the declared type), an overload is counted exactly, and
/// `--event-buffer ring` is refused for it.
#[test]
fn live_config_with_its_own_perf_event_array() {
    if !require_root("live_config_with_its_own_perf_event_array") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&[]);
    add_test_config(&dir, "perfstorm", "perfstorm", "perfstorm");
    let d = dir.path().to_str().expect("utf-8");

    let check = ebpfx(&["--config-dir", d, "check", "perfstorm"]);
    assert_eq!(check.status.code(), Some(0), "{}{}", text(&check.stdout), text(&check.stderr));

    let (code, out, err) =
        run_events(&["--config-dir", d, "run", "perfstorm", "-f", "json"], || magic_calls(0x7e58, 300));
    assert_eq!(code, Some(0), "{err}");
    assert!(through_perf(&err, "perfstorm"), "{err}");
    assert_eq!(seqs(&out), (0..300).collect::<Vec<u64>>(), "{err}");
    for v in json_lines(&out) {
        assert_eq!(v["pid"].as_u64(), Some(u64::from(std::process::id())), "{v}");
        assert!(v["time"].is_string(), "{v}");
    }
    assert!(!err.contains("events lost"), "{err}");

    const N: u32 = 200_000;
    let (code, out, err) =
        run_events(&["--config-dir", d, "run", "perfstorm", "--ring-size", "4K", "-f", "json"], || {
            magic_calls(0x7e58, N)
        });
    assert_eq!(code, Some(0), "{err}");
    let received = seqs(&out).len() as u64;
    let total = lost_total(&err, "perfstorm");
    assert!(total > 0, "one-page perf buffers kept up with {N} records: {err}");
    assert_eq!(total, u64::from(N) - received, "{err}");

    let ring = ebpfx(&["--config-dir", d, "run", "perfstorm", "--event-buffer", "ring", "--for", "1s"]);
    let e = text(&ring.stderr);
    assert_eq!(ring.status.code(), Some(2), "{e}");
    assert!(
        e.contains("config perfstorm: events perfstorm: ring_buffer: map \"perfstorm\" is a perf event array"),
        "{e}"
    );
    assert!(e.contains("--event-buffer ring needs a BPF_MAP_TYPE_RINGBUF map"), "{e}");
}

#[test]
fn check_refuses_an_events_map_of_another_type() {
    let dir = test_config_dir(&[]);
    add_test_config(&dir, "perfstorm", "perfstorm", "perfstorm");
    let yaml = dir.path().join("perfstorm.yaml");
    let bad = std::fs::read_to_string(&yaml)
        .expect("read")
        .replace("ring_buffer: perfstorm\n", "ring_buffer: perfstorm_lost\n");
    std::fs::write(&yaml, bad).expect("write");
    let d = dir.path().to_str().expect("utf-8");
    let out = ebpfx(&["--config-dir", d, "check", "perfstorm"]);
    let o = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{o}");
    assert!(
        o.contains("config perfstorm: events perfstorm: ring_buffer: map \"perfstorm_lost\" is a PercpuArray map"),
        "{o}"
    );
    assert!(o.contains("BPF_MAP_TYPE_RINGBUF or BPF_MAP_TYPE_PERF_EVENT_ARRAY"), "{o}");
}

#[test]
fn event_buffer_usage_errors_exit_2() {
    // A value clap does not know.
    let out = ebpfx(&["run", "opensnoop", "--event-buffer", "pipe"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    assert!(e.contains("--event-buffer") && e.contains("pipe") && e.contains("auto"), "{e}");
    if !require_root("event_buffer_usage_errors_exit_2") {
        return;
    }
    // An object whose ring buffer cannot switch (ebpf_exporter's span objects lack
    // bpf/events.bpf.h's event_use_perf): refused before anything loads.
    let dir = test_config_dir(&[]);
    add_test_config(&dir, "spans", "spans", "spans");
    let d = dir.path().to_str().expect("utf-8");
    let out = ebpfx(&["--config-dir", d, "run", "spans", "--event-buffer", "perf", "--for", "1s"]);
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("config spans: events"), "{e}");
    assert!(e.contains("is a ring buffer and the object has no `event_use_perf` switch"), "{e}");
}
