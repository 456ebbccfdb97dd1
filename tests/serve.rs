//! `ebpfx serve` against the real programs on the other side (issue 13): a Prometheus server
//! scraping over TLS with basic auth, node_exporter's textfile collector reading serve's
//! textfile beside one-shot files, and hostile clients. Everything listens on 127.0.0.1.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A process killed on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a peer (prometheus, node_exporter) and waits until it listens; None (skip) when it
/// is not installed, except under CI.
fn start_peer(bin: &str, args: &[String], port: u16, log: &std::path::Path) -> Option<Proc> {
    let err = std::fs::File::create(log).expect("log file");
    let child = match Command::new(bin).args(args).stdout(Stdio::null()).stderr(err).spawn() {
        Ok(c) => c,
        Err(e) => {
            assert!(!ci(), "{bin} not available under CI: {e}");
            eprintln!("SKIPPED: {bin} not installed ({e})");
            return None;
        }
    };
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(p);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{bin} did not listen on 127.0.0.1:{port}: {}", std::fs::read_to_string(log).unwrap_or_default());
}

/// `ebpfx -v serve ARGS`, returned once it says it serves.
struct Serve {
    child: Child,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        Serve::start_env(args, &[])
    }

    fn start_env(args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut child = Command::new(bin())
            .envs(env.iter().copied())
            .arg("-v")
            .arg("serve")
            .args(args)
            .env_remove("EBPFX_CONFIG_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ebpfx serve");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut s = Serve { child, stderr: rx };
        s.wait_line("ebpfx: serving ");
        s
    }

    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.stderr.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => seen.push(l),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(st)) = self.child.try_wait() {
                        panic!("ebpfx serve exited ({st}) before {needle:?}: {seen:?}");
                    }
                }
                Err(_) => panic!("ebpfx serve closed stderr before {needle:?}: {seen:?}"),
            }
        }
        panic!("no {needle:?} from ebpfx serve: {seen:?}");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> Option<i32> {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("ebpfx serve did not stop within 20 s of SIGTERM");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` / `CapEff` / `CapPrm` lines of /proc/PID/status.
fn status_field(pid: u32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).map(|v| v.trim().to_string()).unwrap_or_default()
}

/// curl (the real client) with extra arguments: (HTTP status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let t = text(&out.stdout);
    let (body, code) = t.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A copy of /bin/true under a unique name in `dir`: its exec count is ours alone.
fn unique_binary(dir: &Scratch, tag: &str) -> (std::path::PathBuf, String) {
    let name = format!("{tag}{}", std::process::id() % 100_000);
    let path = dir.path().join(&name);
    std::fs::copy("/bin/true", &path).expect("copy /bin/true");
    (path, name)
}

fn exec_n(path: &std::path::Path, n: usize) {
    for _ in 0..n {
        let st = Command::new(path).status().expect("exec");
        assert!(st.success());
    }
}

/// Every sample line as (series, value).
fn series(prom: &str) -> Vec<(String, f64)> {
    prom.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(s, v)| (s.to_string(), v.parse().unwrap_or(f64::NAN))))
        .collect()
}

fn prom_query(port: u16, query: &str, time: Option<f64>) -> serde_json::Value {
    let mut url = format!("http://127.0.0.1:{port}/api/v1/query?query={}", urlencode(query));
    if let Some(t) = time {
        url.push_str(&format!("&time={t:.3}"));
    }
    let body = ureq::get(&url).call().expect("query").into_body().read_to_string().expect("body");
    serde_json::from_str(&body).expect("json")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn live_serve_scraped_by_prometheus_over_tls_with_basic_auth() {
    if !require_root("live_serve_scraped_by_prometheus_over_tls_with_basic_auth") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("serve-tls");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match st {
        Ok(s) => assert!(s.success(), "openssl req failed"),
        Err(e) => {
            assert!(!ci(), "openssl not available under CI: {e}");
            eprintln!("SKIPPED: openssl not installed");
            return;
        }
    }
    let hash = bcrypt::hash("s3cret", 6).expect("bcrypt");
    let web = dir.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  scraper: '{hash}'\n"
        ),
    );
    let (binary, comm) = unique_binary(&dir, "srvtls");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve = Serve::start(&[
        "exec",
        "--web.listen-address",
        &listen,
        "--web.config.file",
        web.to_str().expect("utf8"),
        "--capabilities.keep",
        "cap_syslog",
    ]);
    // Capabilities after attach: exactly the ones kept.
    let cap_syslog = format!("{:016x}", 1u64 << 34);
    assert_eq!(status_field(serve.pid(), "CapEff"), cap_syslog);
    assert_eq!(status_field(serve.pid(), "CapPrm"), cap_syslog);

    let url = format!("https://127.0.0.1:{port}/metrics");
    let ca = cert.to_str().expect("utf8");
    assert_eq!(curl(&["--cacert", ca, &url]).0, 401, "no credentials");
    assert_eq!(curl(&["--cacert", ca, "-u", "scraper:wrong", &url]).0, 401, "wrong password");
    assert_eq!(curl(&["--cacert", ca, "-u", "nobody:s3cret", &url]).0, 401, "unknown user");
    assert_eq!(curl(&["--cacert", ca, "-u", "scraper:s3cret", &format!("https://127.0.0.1:{port}/healthz")]).0, 200);
    assert_eq!(curl(&[&format!("http://127.0.0.1:{port}/metrics")]).0, 0, "plain HTTP on a TLS port");

    // Two scrapes in a row: every series of the first is in the second, counters not lower.
    exec_n(&binary, 1);
    let (code, first) = curl(&["--cacert", ca, "-u", "scraper:s3cret", &url]);
    assert_eq!(code, 200, "{first}");
    promtool_check(&first);
    exec_n(&binary, 5);
    let (code, second) = curl(&["--cacert", ca, "-u", "scraper:s3cret", &url]);
    assert_eq!(code, 200);
    promtool_check(&second);
    let later: std::collections::HashMap<String, f64> = series(&second).into_iter().collect();
    for (s, v) in series(&first) {
        let Some(w) = later.get(&s) else { panic!("series {s} gone in the second scrape") };
        if s.contains("_total") || s.contains("_bucket") || s.contains("_count") {
            assert!(*w >= v, "{s}: {v} then {w}");
        }
    }
    let ours = format!("ebpfx_exec_total{{comm=\"{comm}\"}}");
    assert_eq!(prom_value(&first, &ours), Some(1.0), "{first}");
    assert_eq!(prom_value(&second, &ours), Some(6.0), "{second}");
    assert!(!second.contains("id=\""), "a program id label:\n{second}");
    assert!(second.contains("ebpfx_start_time_seconds{config=\"exec\"} "));

    // A real Prometheus, scraping every second over TLS with basic auth.
    let pport = free_port();
    let prom_cfg = dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ebpfx\n    scheme: https\n    \
             tls_config:\n      ca_file: {ca}\n      server_name: localhost\n    basic_auth:\n      username: scraper\n      \
             password: s3cret\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    );
    let log = dir.path().join("prometheus.log");
    let Some(_prom) = start_peer(
        "prometheus",
        &[
            format!("--config.file={}", prom_cfg.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{pport}"),
        ],
        pport,
        &log,
    ) else {
        return;
    };
    // Wait until the series (value 6) has been scraped a couple of times.
    let wait_samples = |n: usize| -> Vec<(f64, f64)> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = prom_query(pport, &format!("{ours}[5m]"), None);
            let values: Vec<(f64, f64)> = r["data"]["result"][0]["values"]
                .as_array()
                .map(|a| a.iter().filter_map(|p| Some((p[0].as_f64()?, p[1].as_str()?.parse::<f64>().ok()?))).collect())
                .unwrap_or_default();
            if values.len() >= n {
                return values;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus has {} samples of {ours}: {r}\n{}",
                values.len(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let before = wait_samples(2);
    // The known workload: K execs spread over a few scrape intervals.
    let k = 300usize;
    for _ in 0..6 {
        exec_n(&binary, k / 6);
        std::thread::sleep(Duration::from_millis(500));
    }
    let after = wait_samples(before.len() + 4);
    let (t_last, v_last) = *after.last().expect("samples");
    let settled = after.iter().rev().take_while(|(_, v)| *v == v_last).count();
    let after = if settled < 2 {
        std::thread::sleep(Duration::from_secs(2));
        wait_samples(after.len() + 2)
    } else {
        after
    };
    let (t_last, v_last) = if settled < 2 { *after.last().expect("samples") } else { (t_last, v_last) };
    assert_eq!(v_last, 6.0 + k as f64, "Prometheus's last sample of {ours}");
    // increase() over the whole series, evaluated at its last sample (no extrapolation past it).
    let (t_first, _) = after[0];
    let range = (t_last - t_first).ceil() as u64 + 1;
    let r = prom_query(pport, &format!("increase({ours}[{range}s])"), Some(t_last));
    let increase: f64 = r["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    let truth = k as f64;
    assert!((increase - truth).abs() <= truth * 0.05, "increase() {increase} against the true {truth} ({r})");

    assert_eq!(serve.stop(), Some(0), "SIGTERM ends serve with status 0");
}

#[test]
fn live_textfile_mode_and_one_shot_files_coexist_in_node_exporter() {
    if !require_root("live_textfile_mode_and_one_shot_files_coexist_in_node_exporter") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("serve-textfile");
    let work = Scratch::new("serve-textfile-bin");
    let (binary, comm) = unique_binary(&work, "srvtxt");
    let serve_file = dir.path().join("serve.prom");
    let serve = Serve::start(&["exec", "--output", serve_file.to_str().expect("utf8"), "--interval", "500ms"]);
    exec_n(&binary, 3);
    // Two one-shot runs into the same directory.
    for name in ["syscalls", "softirqs"] {
        let out = dir.path().join(format!("{name}.prom"));
        let o = ebpfx(&["run", name, "--for", "1s", "--output", out.to_str().expect("utf8")]);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
    }
    exec_n(&binary, 4);
    std::thread::sleep(Duration::from_millis(1500));
    let textfile = std::fs::read_to_string(&serve_file).expect("serve's textfile");
    promtool_check(&textfile);
    assert_eq!(prom_value(&textfile, &format!("ebpfx_exec_total{{comm=\"{comm}\"}}")), Some(7.0), "{textfile}");

    let port = free_port();
    let log = dir.path().join("..").join(format!("node_exporter-{port}.log"));
    let Some(_ne) = start_peer(
        "prometheus-node-exporter",
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--collector.disable-defaults".into(),
            "--collector.textfile".into(),
            format!("--collector.textfile.directory={}", dir.path().display()),
        ],
        port,
        &log,
    ) else {
        return;
    };
    let get = || {
        ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
            .call()
            .expect("GET")
            .into_body()
            .read_to_string()
            .expect("body")
    };
    let a = get();
    exec_n(&binary, 2);
    std::thread::sleep(Duration::from_millis(1200));
    let b = get();
    let node_log = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    for scraped in [&a, &b] {
        assert!(scraped.contains("node_textfile_scrape_error 0"), "textfile collector error:\n{scraped}");
        for config in ["exec", "syscalls", "softirqs"] {
            let s = format!("ebpfx_window_duration_seconds{{config=\"{config}\"}}");
            assert!(prom_value(scraped, &s).is_some(), "{s} missing:\n{scraped}");
        }
    }
    assert!(!node_log.contains("collected before"), "node_exporter saw duplicate series:\n{node_log}");
    assert!(!node_log.to_lowercase().contains("level=error"), "node_exporter logged an error:\n{node_log}");
    let series = format!("ebpfx_exec_total{{comm=\"{comm}\"}}");
    assert_eq!(prom_value(&a, &series), Some(7.0), "{a}");
    assert_eq!(prom_value(&b, &series), Some(9.0), "cumulative over intervals:\n{b}");
    assert_eq!(serve.stop(), Some(0));
    assert!(std::fs::read_to_string(&serve_file).is_ok_and(|t| t.contains(&series)), "the last write stays");
    let temps: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
}

#[test]
fn live_serve_by_none_merges_the_labels_away() {
    if !require_root("live_serve_by_none_merges_the_labels_away") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("serve-by");
    let work = Scratch::new("serve-by-bin");
    let (binary, _comm) = unique_binary(&work, "srvby");
    let file = dir.path().join("serve.prom");
    let serve =
        Serve::start(&["exec", "--by", "none", "--output", file.to_str().expect("utf8"), "--interval", "300ms"]);
    exec_n(&binary, 3);
    std::thread::sleep(Duration::from_millis(1000));
    let textfile = std::fs::read_to_string(&file).expect("serve's textfile");
    assert_eq!(serve.stop(), Some(0));
    promtool_check(&textfile);
    assert!(!textfile.contains("ebpfx_exec_total{"), "--by none leaves no labels:\n{textfile}");
    // Other processes exec too: at least our three.
    let total = prom_value(&textfile, "ebpfx_exec_total").unwrap_or(0.0);
    assert!(total >= 3.0, "{textfile}");
}

/// Reads what the server sends until it closes or `limit` passes.
fn read_reply(s: &mut TcpStream, limit: Duration) -> String {
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while buf.len() < 1 << 20 {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn live_serve_survives_hostile_requests_with_bounded_memory() {
    if !require_root("live_serve_survives_hostile_requests_with_bounded_memory") {
        return;
    }
    let _l = live_lock();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve = Serve::start(&["syscalls", "--web.listen-address", &listen]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let (code, body) = curl(&[&url]);
    assert_eq!(code, 200, "{body}");
    let rss = |pid: u32| -> u64 {
        status_field(pid, "VmRSS").split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let rss_before = rss(serve.pid());

    for round in 0..3 {
        // A 1 MiB header, a 1 MiB URL, a header flood.
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let _ = s.write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20)).as_bytes(),
        );
        let r = read_reply(&mut s, Duration::from_secs(5));
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 4"), "round {round}: {}", &r[..r.len().min(200)]);
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let _ = s.write_all(format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "u".repeat(1 << 20)).as_bytes());
        let r = read_reply(&mut s, Duration::from_secs(5));
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 4"), "{}", &r[..r.len().min(200)]);
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let headers: String = (0..1000).map(|i| format!("X-H{i}: v\r\n")).collect();
        let _ = s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes());
        let r = read_reply(&mut s, Duration::from_secs(5));
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 4"), "{}", &r[..r.len().min(200)]);
        // A huge announced body, partly sent: never read into memory.
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let _ = s.write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n");
        for _ in 0..64 {
            if s.write_all(&[b'b'; 65536]).is_err() {
                break;
            }
        }
        let r = read_reply(&mut s, Duration::from_secs(5));
        assert!(r.starts_with("HTTP/1.1 405"), "{}", &r[..r.len().min(200)]);
        // Binary garbage.
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let _ = s.write_all(&(0..=255u8).cycle().take(100_000).collect::<Vec<u8>>());
        let _ = read_reply(&mut s, Duration::from_secs(5));
    }
    // Slowloris: many connections each holding half a request head.
    let mut slow = Vec::new();
    for _ in 0..300 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            slow.push(s);
        }
    }
    for s in &mut slow {
        let _ = s.write_all(b"a");
    }
    // The server closes them: the head timeout, or the connection limit at once.
    let started = Instant::now();
    let mut closed = 0;
    for s in &mut slow {
        let left = Duration::from_secs(25).saturating_sub(started.elapsed()).max(Duration::from_millis(10));
        let r = read_reply(s, left);
        if r.is_empty() || r.starts_with("HTTP/1.1 408") || r.starts_with("HTTP/1.1 4") {
            closed += 1;
        }
    }
    assert_eq!(closed, slow.len(), "half-sent requests kept open");
    drop(slow);
    std::thread::sleep(Duration::from_millis(300));
    let (code, body) = curl(&[&url]);
    assert_eq!(code, 200, "a scrape after the abuse: {body}");
    promtool_check(&body);
    let rss_after = rss(serve.pid());
    assert!(rss_after < rss_before + 64 * 1024, "RSS grew from {rss_before} kB to {rss_after} kB");
    assert_eq!(serve.stop(), Some(0));
}

#[test]
fn bad_serve_flags_are_usage_errors_before_anything_attaches() {
    let dir = Scratch::new("serve-flags");
    let web = dir.write("web.yml", "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n");
    let bad_hash = dir.write("hash.yml", "basic_auth_users:\n  alice: hunter2\n");
    let unknown = dir.write("unknown.yml", "tls_config: {}\n");
    let cases: [(&[&str], &str); 15] = [
        (&["serve", "syscalls", "--web.listen-address", "9435"], "--web.listen-address"),
        (&["serve", "syscalls", "--web.telemetry-path", "metrics"], "--web.telemetry-path"),
        (&["serve", "syscalls", "--capabilities.keep", "cap_fly"], "cap_fly"),
        (&["serve", "syscalls", "--web.config.file", web.to_str().expect("utf8")], "missing.pem"),
        (&["serve", "syscalls", "--web.config.file", bad_hash.to_str().expect("utf8")], "basic_auth_users.alice"),
        (&["serve", "syscalls", "--web.config.file", unknown.to_str().expect("utf8")], "tls_config"),
        (&["serve", "syscalls", "--output", "/nonexistent-dir/x.prom"], "--output"),
        (&["serve", "syscalls", "--output", "/tmp/x.prom", "--web.listen-address", ":1"], "cannot be used with"),
        (&["serve", "syscalls", "--by", "nosuch"], "--by nosuch"),
        (&["serve", "syscalls", "--addr", "notaprefix"], "--addr"),
        // --probe repeats as for run: the second one is checked too.
        (&["serve", "funccount", "--probe", "libc.so.6:malloc", "--probe", "nosuchbinary_xyz:f"], "nosuchbinary_xyz"),
        // Task targets and kernel-side --by: refused as run refuses them.
        (&["serve", "biolatency", "-p", "1"], "config biolatency does not support --pid"),
        (&["serve", "syscalls", "--comm", "a-name-too-long-for-comm"], "--comm"),
        (&["serve", "biolatency", "--by", "pid"], "--by"),
        // serve has no end: `-- COMMAND` is run's, refused instead of read as config names.
        (&["serve", "syscalls", "--", "sleep", "1"], "serve does not start commands (-- sleep)"),
    ];
    for (args, want) in cases {
        let o = ebpfx(args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn live_sigterm_answers_the_scrape_in_flight_then_exits_0() {
    if !require_root("live_sigterm_answers_the_scrape_in_flight_then_exits_0") {
        return;
    }
    let _l = live_lock();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve =
        Serve::start_env(&["syscalls", "--web.listen-address", &listen], &[("EBPFX_TEST_DELAY_SCRAPE_MS", "1500")]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let scrape = std::thread::spawn(move || curl(&[&url]));
    // The scrape is held back 1.5 s in the collector: the SIGTERM lands while it is in flight.
    std::thread::sleep(Duration::from_millis(500));
    let code = serve.stop();
    let (status, body) = scrape.join().expect("scrape thread");
    assert_eq!(status, 200, "the scrape in flight was cut: {body}");
    assert!(body.contains("ebpfx_syscalls_total{"), "{body}");
    promtool_check(&body);
    assert_eq!(code, Some(0));
    // Nothing listens any more.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn live_concurrent_scrapes_all_get_whole_answers() {
    if !require_root("live_concurrent_scrapes_all_get_whole_answers") {
        return;
    }
    let _l = live_lock();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve = Serve::start(&["syscalls", "softirqs", "--web.listen-address", &listen]);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let url = format!("http://127.0.0.1:{port}/metrics");
            std::thread::spawn(move || (0..5).map(|_| curl(&[&url])).collect::<Vec<_>>())
        })
        .collect();
    for t in threads {
        for (code, body) in t.join().expect("thread") {
            assert_eq!(code, 200, "{body}");
            assert!(
                body.ends_with("\n") && body.contains("ebpfx_softirq_seconds") && body.contains("ebpfx_syscalls_total")
            );
        }
    }
    let (_, body) = curl(&[&format!("http://127.0.0.1:{port}/metrics")]);
    promtool_check(&body);
    assert_eq!(serve.stop(), Some(0));
}

/// A python process that makes `n` getppid calls each time it reads a byte on stdin, and says
/// "done" on stdout after each round.
struct Caller {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Caller {
    fn start(n: usize) -> Caller {
        let script = format!(
            "import os,sys\nwhile sys.stdin.read(1):\n    for _ in range({n}): os.getppid()\n    print('done', flush=True)\n"
        );
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Caller { child, out }
    }

    /// One round of calls, waited for.
    fn round(&mut self) {
        self.child.stdin.as_mut().expect("stdin").write_all(b"x").expect("release caller");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("caller's round");
        assert_eq!(line.trim(), "done", "caller failed");
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn live_serve_pid_counts_only_that_process_across_scrapes() {
    if !require_root("live_serve_pid_counts_only_that_process_across_scrapes") {
        return;
    }
    const K: usize = 2000;
    let _l = live_lock();
    let mut mine = Caller::start(K);
    let mut noise = Caller::start(K);
    let pid = mine.child.id().to_string();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // -p filters in the kernel; --by syscall,pid adds the pid to the key in the kernel too.
    let serve = Serve::start(&["syscalls", "-p", &pid, "--by", "syscall,pid", "--web.listen-address", &listen]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    for round in 1..=2 {
        mine.round();
        noise.round();
        let (status, body) = curl(&[&url]);
        assert_eq!(status, 200, "{body}");
        promtool_check(&body);
        let rows = prom_rows(&body, "ebpfx_syscalls_total");
        assert!(!rows.is_empty(), "{body}");
        for (labels, _) in &rows {
            let names: Vec<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["pid", "syscall"], "{body}");
            assert!(labels.contains(&("pid".to_string(), pid.clone())), "another process counted: {labels:?}");
        }
        // Counters are cumulative since attach: exactly K calls per round of ours, none of noise's.
        let got = prom_get(&body, "ebpfx_syscalls_total", &[("pid", &pid), ("syscall", "getppid")]);
        assert_eq!(got, Some((round * K) as f64), "scrape {round}:\n{body}");
    }
    assert_eq!(serve.stop(), Some(0));
}
