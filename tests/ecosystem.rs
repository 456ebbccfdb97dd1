//! ebpfx against the real programs on the other side: node_exporter's textfile collector,
//! the Pushgateway, JSON consumers, saved snapshots, intervals. Servers listen on 127.0.0.1 only.
mod common;
use common::*;
use std::time::Duration;

fn http_get(url: &str) -> String {
    ureq::get(url).call().expect("GET").into_body().read_to_string().expect("body")
}

#[test]
fn live_node_exporter_textfile_collector_reads_the_output() {
    if !require_root("live_node_exporter_textfile_collector_reads_the_output") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("textfile");
    let Some((_ne, port)) = start_node_exporter(dir.path(), None) else {
        return;
    };
    let out_file = dir.path().join("biolatency.prom");
    let io = Scratch::new("textfile-io");
    let mut round = 1;
    let (scraped, writes) = loop {
        let run =
            start_attached(&["run", "biolatency", "--for", "2s", "--output", out_file.to_str().expect("utf8")], 1);
        direct_writes(io.path(), 100);
        let (code, _, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        let scraped = http_get(&format!("http://127.0.0.1:{port}/metrics"));
        assert!(scraped.contains("node_textfile_scrape_error 0"), "textfile collector reported an error:\n{scraped}");
        let writes =
            prom_value(&scraped, "ebpfx_bio_latency_seconds_count{device=\"vda\",operation=\"write\"}").unwrap_or(0.0);
        let not_run = completions_not_run(&scraped, "biolatency", "biolatency_issue", "biolatency_complete");
        if !rerun_for_kernel_skips("biolatency textfile", round, 100, writes as u64, not_run) {
            break (scraped, writes);
        }
        round += 1;
    };
    assert!(writes >= 100.0, "node_exporter does not serve our series ({writes}):\n{scraped}");
    assert!(scraped.contains("ebpfx_window_duration_seconds{config=\"biolatency\"} "), "window gauge missing");
}

#[test]
fn atomic_output_is_never_seen_half_written() {
    // 100 rewrites of one file by `ebpfx render --output` while a reader polls it: every read
    // is a whole file (it ends with the last family's final line).
    let dir = Scratch::new("atomic");
    let snap = dir.write("snap.json", &sample_snapshot_json());
    let target = dir.path().join("out.prom");
    let first = ebpfx(&["render", snap.to_str().expect("utf8"), "--output", target.to_str().expect("utf8")]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let whole = std::fs::read_to_string(&target).expect("read");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, target, whole) = (stop.clone(), target.clone(), whole.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(t) = std::fs::read_to_string(&target) {
                    assert_eq!(t, whole, "a reader saw a partial or different file");
                    reads += 1;
                }
            }
            reads
        })
    };
    for _ in 0..100 {
        let out = ebpfx(&["render", snap.to_str().expect("utf8"), "--output", target.to_str().expect("utf8")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().expect("reader");
    assert!(reads > 100, "the reader only managed {reads} reads");
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("ls").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 2, "temp files left behind: {names:?}");
}

/// A small saved snapshot (no kernel needed): one syscalls-like counter.
fn sample_snapshot_json() -> String {
    let yaml = "metrics:\n  counters:\n    - name: syscalls_total\n      help: System calls\n      labels:\n        - name: syscall\n          size: 8\n          decoders: [{name: uint}, {name: syscall}]\n";
    let mut keys = String::new();
    let mut values = Vec::new();
    for (id, v) in [(39u64, 1234u64), (0, 99), (1, 7)] {
        for b in id.to_ne_bytes() {
            keys.push_str(&format!("{b:02x}"));
        }
        values.push(v.to_string());
    }
    format!(
        "{{\"kind\":\"ebpfx-raw-snapshot\",\"version\":1,\"window\":{{\"start_unix_ns\":1700000000000000000,\"end_unix_ns\":1700000001000000000,\"length_ns\":1000000000}},\"configs\":[{{\"name\":\"syscalls\",\"origin\":\"syscalls.yaml\",\"yaml\":{},\"maps\":[{{\"name\":\"syscalls_total\",\"key_size\":8,\"slots\":1,\"per_cpu\":false,\"max_entries\":1024,\"is_array\":false,\"keys_hex\":\"{keys}\",\"values\":[{}]}}]}}]}}",
        serde_json::to_string(yaml).expect("yaml as JSON"),
        values.join(",")
    )
}

#[test]
fn live_pushgateway_receives_the_series() {
    if !require_root("live_pushgateway_receives_the_series") {
        return;
    }
    let _l = live_lock();
    let port = free_port();
    let data = Scratch::new("pgw");
    let Some(_pg) = start_peer(
        "prometheus-pushgateway",
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--persistence.file={}/p.data", data.path().display()),
        ],
        port,
        None,
    ) else {
        return;
    };
    let url = format!("http://127.0.0.1:{port}");
    let run = start_attached(&["run", "syscalls", "--for", "1s", "--push", &url, "--job", "ebpfx_test"], 1);
    getpid_calls(5000);
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.is_empty(), "--push alone prints nothing: {out}");
    let metrics = http_get(&format!("{url}/metrics"));
    let got = prom_sum(&metrics, "ebpfx_syscalls_total", "syscall=\"getpid\"");
    assert!(got >= 5000.0, "pushed getpid count missing ({got}):\n{metrics}");
    let line =
        metrics.lines().find(|l| l.starts_with("ebpfx_syscalls_total{") && l.contains("getpid")).expect("series");
    assert!(line.contains("config=\"syscalls\"") && line.contains("job=\"ebpfx_test\""), "grouping labels: {line}");

    // A non-2xx answer is an error naming the status.
    let out = ebpfx(&["run", "syscalls", "--for", "200ms", "--push", &format!("{url}/nonexistent")]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("answered 404") || err.contains("answered 405"), "{err}");
}

#[test]
fn live_interval_blocks_add_up_to_a_single_window() {
    if !require_root("live_interval_blocks_add_up_to_a_single_window") {
        return;
    }
    let _l = live_lock();
    let k = 30_000;
    // A syscall number no kernel has (it fails with ENOSYS but still enters the tracepoint):
    // only this test makes it, so a busy machine cannot add to the count.
    const PRIVATE_NR: i64 = 3_117;
    let private_calls = |n: usize| {
        for _ in 0..n {
            // SAFETY: an unknown syscall number only returns ENOSYS; no memory is touched.
            unsafe {
                libc::syscall(PRIVATE_NR);
            }
        }
    };
    let count = |run: Running| -> Vec<f64> {
        private_calls(k);
        std::thread::sleep(Duration::from_millis(1200));
        private_calls(k);
        let (code, out, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        serde_json::Deserializer::from_str(&out)
            .into_iter::<serde_json::Value>()
            .map(|doc| {
                let doc = doc.expect("each block is a JSON document");
                doc["metrics"]
                    .as_array()
                    .and_then(|ms| ms.iter().find(|m| m["name"] == "syscalls_total"))
                    .and_then(|m| m["samples"].as_array())
                    .and_then(|ss| {
                        ss.iter().find(|s| s["labels"]["syscall"] == format!("unknown_syscall:{PRIVATE_NR}"))
                    })
                    .and_then(|s| s["value"].as_f64())
                    .unwrap_or(0.0)
            })
            .collect()
    };
    let blocks = count(start_attached(&["run", "syscalls", "-i", "1s", "-c", "3", "-f", "json"], 1));
    assert_eq!(blocks.len(), 3, "three interval blocks: {blocks:?}");
    let single = count(start_attached(&["run", "syscalls", "--for", "3s", "-f", "json"], 1));
    assert_eq!(single.len(), 1);
    let total: f64 = blocks.iter().sum();
    // Exact: nothing else on the machine makes this syscall.
    assert_eq!(total, 2.0 * k as f64, "blocks {blocks:?} (sum {total})");
    assert_eq!(single[0], 2.0 * k as f64, "single window");
    assert!(blocks[0] > 0.0 && blocks[1] > 0.0, "the bursts 1.2 s apart fall in two blocks: {blocks:?}");
}

#[test]
fn live_saved_snapshot_renders_identically() {
    if !require_root("live_saved_snapshot_renders_identically") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("snap");
    let saved = dir.path().join("run.json");
    for format in ["prom", "hist", "table", "json"] {
        let run = start_attached(
            &[
                "run",
                "biolatency",
                "syscalls",
                "--for",
                "1s",
                "-f",
                format,
                "--save-raw",
                saved.to_str().expect("utf8"),
            ],
            2,
        );
        direct_writes(dir.path(), 50);
        let (code, live, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        let rendered = ebpfx(&["render", saved.to_str().expect("utf8"), "-f", format]);
        assert!(rendered.status.success(), "{}", text(&rendered.stderr));
        assert_eq!(text(&rendered.stdout), live, "{format}: render of the saved snapshot differs from the live output");
    }
}

#[test]
fn render_rejects_files_that_are_not_snapshots() {
    let dir = Scratch::new("notsnap");
    let f = dir.write("x.json", "{\"hello\": 1}");
    let out = ebpfx(&["render", f.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not an ebpfx raw snapshot"), "{}", text(&out.stderr));
}
