//! Live tests of `--remote-write` and `--push-label` (root) against the real receivers: a
//! Prometheus server with the remote-write receiver and a Pushgateway, both started by the test
//! on loopback, plus a tiny HTTP responder of the test's own for the 4xx/5xx paths.
mod common;
use common::*;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A server process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin ARGS` and waits until `ready_url` answers 200. None (a skip) when the binary is
/// missing outside CI.
fn start_server(bin: &str, args: &[String], ready_url: &str) -> Option<Server> {
    let child = match Command::new(bin).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{bin} not available under CI: {e}");
            }
            eprintln!("SKIPPED: {bin} not installed ({e})");
            return None;
        }
    };
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ureq::get(ready_url).call().is_ok() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{bin} did not become ready at {ready_url}");
}

/// `GET /api/v1/query?query=Q&time=T` of Prometheus: `(labels, value)` of each result.
fn query(base: &str, q: &str, time: &str) -> Vec<(BTreeMap<String, String>, String)> {
    let body = ureq::get(&format!("{base}/api/v1/query"))
        .query("query", q)
        .query("time", time)
        .call()
        .unwrap_or_else(|e| panic!("query {q}: {e}"))
        .into_body()
        .read_to_string()
        .expect("body");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(doc["status"], "success", "{body}");
    doc["data"]["result"]
        .as_array()
        .expect("result")
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .expect("metric")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
            (labels, r["value"][1].as_str().expect("value").to_string())
        })
        .collect()
}

/// The window end of a `--save-raw` file, in whole milliseconds (the remote-write timestamp)
/// as Prometheus API time text.
fn window_end_ms(raw: &std::path::Path) -> i64 {
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(raw).expect("raw")).expect("JSON");
    (doc["window"]["end_unix_ns"].as_f64().expect("end") / 1e6).floor() as i64
}

fn api_time(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// One `run syscalls --for 2s` remote-writing to `url` as `instance`, with K getppid calls of
/// this thread in the window; returns the Prometheus text of the same run (its `--save-raw`
/// file rendered) and the window end in ms.
fn remote_write_run(dir: &Scratch, url: &str, job: &str, instance: &str) -> (String, i64) {
    let raw = dir.path().join(format!("{instance}.json"));
    let raw_s = raw.to_string_lossy().into_owned();
    let args = [
        "run",
        "syscalls",
        "--for",
        "2s",
        "--remote-write",
        url,
        "--job",
        job,
        "--push-label",
        &format!("instance={instance}"),
        "--push-label",
        "zone=test zone",
        "--save-raw",
        &raw_s,
    ];
    let run = start_attached(&args, 1);
    for _ in 0..20_000 {
        // SAFETY: getppid has no arguments and no side effects.
        unsafe {
            libc::syscall(libc::SYS_getppid);
        }
    }
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.is_empty(), "--remote-write alone prints nothing: {out}");
    let prom = ebpfx(&["render", &raw_s, "--format", "prom"]);
    assert!(prom.status.success(), "{}", text(&prom.stderr));
    (text(&prom.stdout), window_end_ms(&raw))
}

#[test]
fn live_remote_write_to_prometheus_exact_values_at_the_window_end() {
    if !require_root("live_remote_write_to_prometheus_exact_values_at_the_window_end") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("rw-prom");
    let port = free_port();
    let config = dir.write("prometheus.yml", "global:\n  scrape_interval: 1h\n");
    let base = format!("http://127.0.0.1:{port}");
    let Some(_prom) = start_server(
        "prometheus",
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-remote-write-receiver".into(),
        ],
        &format!("{base}/-/ready"),
    ) else {
        return;
    };
    let url = format!("{base}/api/v1/write");
    let job = format!("ebpfx_rw_{}", std::process::id());

    let (prom_a, end_a) = remote_write_run(&dir, &url, &job, "host-a");
    let want: BTreeMap<String, f64> = prom_samples(&prom_a, "ebpfx_syscalls_total")
        .into_iter()
        .map(|(labels, v)| (labels.trim_start_matches("syscall=\"").trim_end_matches('"').to_string(), v))
        .collect();
    assert!(want.get("getppid").is_some_and(|&v| v >= 20_000.0), "getppid count: {want:?}");

    // Every series at the window end, with the external labels, exactly as the run counted.
    let selector = format!("{{job=\"{job}\",instance=\"host-a\",zone=\"test zone\"}}");
    let got: BTreeMap<String, f64> = query(&base, &format!("ebpfx_syscalls_total{selector}"), &api_time(end_a))
        .into_iter()
        .map(|(l, v)| (l["syscall"].clone(), v.parse().expect("number")))
        .collect();
    assert_eq!(got, want, "remote-written series vs the run's prom text");
    // ... timestamped at the window end (not at arrival)
    let stamps = query(&base, &format!("timestamp(ebpfx_syscalls_total{selector})"), &api_time(end_a));
    assert!(!stamps.is_empty());
    for (_, t) in &stamps {
        assert_eq!(t, &format!("{}", end_a as f64 / 1000.0), "sample timestamp");
    }
    // ... and nothing before it.
    assert!(query(&base, &format!("ebpfx_syscalls_total{selector}"), &api_time(end_a - 2500)).is_empty());
    let duration = query(&base, &format!("ebpfx_window_duration_seconds{selector}"), &api_time(end_a));
    assert_eq!(
        duration.first().map(|(_, v)| v.parse::<f64>().expect("number")),
        prom_value(&prom_a, "ebpfx_window_duration_seconds{config=\"syscalls\"}"),
        "window length"
    );

    // A second host adds its series; the first host's stay as they were.
    let (prom_b, end_b) = remote_write_run(&dir, &url, &job, "host-b");
    let getppid = |prom: &str| prom_value(prom, "ebpfx_syscalls_total{syscall=\"getppid\"}").expect("getppid");
    let now = api_time(end_b);
    let by_instance: BTreeMap<String, f64> =
        query(&base, &format!("ebpfx_syscalls_total{{job=\"{job}\",syscall=\"getppid\"}}"), &now)
            .into_iter()
            .map(|(l, v)| (l["instance"].clone(), v.parse().expect("number")))
            .collect();
    let want = BTreeMap::from([("host-a".to_string(), getppid(&prom_a)), ("host-b".to_string(), getppid(&prom_b))]);
    assert_eq!(by_instance, want);
}

/// What the responder saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A loopback HTTP/1.1 responder: answers the statuses in `script` in turn (the last one
/// forever), one connection per request. Returns its URL and what it saw.
fn responder(script: Vec<u16>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/api/v1/write", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((n, v)) = line.trim_end().split_once(':') {
                    headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let len =
                headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap_or_else(|p| p.into_inner()).push(Seen { request_line, headers, body });
            let status = script.get(i).or(script.last()).copied().unwrap_or(500);
            let answer = format!(
                "HTTP/1.1 {status} Test\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nsaid {status}"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, seen)
}

#[test]
fn live_remote_write_retries_5xx_never_4xx_and_sends_auth() {
    if !require_root("live_remote_write_retries_5xx_never_4xx_and_sends_auth") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("rw-http");
    let token = dir.write("token", "t0ken\n");
    let token = token.to_string_lossy().into_owned();
    let run = |url: &str| {
        ebpfx(&[
            "run",
            "syscalls",
            "--for",
            "200ms",
            "--remote-write",
            url,
            "--remote-write-bearer-token-file",
            &token,
            "--remote-write-header",
            "X-Scope-OrgID=tenant-1",
        ])
    };

    // 503, 503, then 204: retried, then success.
    let (url, seen) = responder(vec![503, 503, 204]);
    let out = run(&url);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let req = &seen[2];
    assert!(req.request_line.starts_with("POST /api/v1/write "), "{req:?}");
    let header = |n: &str| req.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(header("content-encoding"), Some("snappy"));
    assert_eq!(header("content-type"), Some("application/x-protobuf"));
    assert_eq!(header("x-prometheus-remote-write-version"), Some("0.1.0"));
    assert_eq!(header("authorization"), Some("Bearer t0ken"));
    assert_eq!(header("x-scope-orgid"), Some("tenant-1"));
    assert!(!req.body.is_empty() && seen[0].body == req.body, "the same body each attempt");

    // 400: an error at once, naming the URL and the status, never retried.
    let (url, seen) = responder(vec![400]);
    let out = run(&url);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&url) && err.contains("400"), "{err}");
    assert_eq!(seen.lock().expect("log").len(), 1, "a 4xx must not be retried");
    // ... and the window's local output is written before the send, so it is not lost.
    let kept = dir.path().join("kept.prom");
    let out =
        ebpfx(&["run", "syscalls", "--for", "200ms", "--remote-write", &url, "--output", &kept.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let kept = std::fs::read_to_string(&kept).expect("--output written despite the failed send");
    assert!(kept.contains("ebpfx_window_duration_seconds{config=\"syscalls\"} "), "{kept}");

    // 500 forever: a few attempts with backoff, then an error naming the URL and the status.
    let (url, seen) = responder(vec![500]);
    let out = run(&url);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&url) && err.contains("500") && err.contains("gave up after 5 attempts"), "{err}");
    assert_eq!(seen.lock().expect("log").len(), 5);

    // Bad options are refused before anything loads (exit 2), naming the flag.
    let out = ebpfx(&["run", "syscalls", "--remote-write", "127.0.0.1:9090/api/v1/write"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--remote-write"), "{}", text(&out.stderr));
    let out = ebpfx(&["run", "syscalls", "--remote-write", &url, "--remote-write-bearer-token-file", "/nonexistent/t"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--remote-write-bearer-token-file /nonexistent/t"), "{}", text(&out.stderr));
    let out = ebpfx(&["run", "syscalls", "--push-label", "zone=a"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = ebpfx(&["run", "syscalls", "--remote-write", &url, "--push-label", "job=x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn live_pushgateway_push_labels_keep_hosts_apart() {
    if !require_root("live_pushgateway_push_labels_keep_hosts_apart") {
        return;
    }
    let _l = live_lock();
    let data = Scratch::new("rw-pgw");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let Some(_pg) = start_server(
        "prometheus-pushgateway",
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--persistence.file={}/p.data", data.path().display()),
        ],
        &format!("{base}/-/ready"),
    ) else {
        return;
    };
    for instance in ["web-1", "web-2"] {
        let out = ebpfx(&[
            "run",
            "syscalls",
            "--for",
            "300ms",
            "--push",
            &base,
            "--job",
            "ebpfx_labels",
            "--push-label",
            &format!("instance={instance}"),
            "--push-label",
            "path=/var/lib/x",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let metrics =
        ureq::get(&format!("{base}/metrics")).call().expect("GET").into_body().read_to_string().expect("body");
    for instance in ["web-1", "web-2"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("ebpfx_window_duration_seconds{") && l.contains(&format!("instance=\"{instance}\""))
            })
            .unwrap_or_else(|| panic!("no series of {instance}:\n{metrics}"));
        assert!(line.contains("job=\"ebpfx_labels\"") && line.contains("path=\"/var/lib/x\""), "{line}");
    }
}
