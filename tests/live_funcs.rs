//! Live tests of the run-time-targeted tools: funclatency and funccount on the functions of
//! `examples/functarget.rs`, tcpflows on TCP transfers over loopback with `--port` selection.
mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// target/<profile>/examples/functarget, built by `cargo test` beside this test binary.
fn functarget() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/live_funcs-HASH → target/<profile>/examples/functarget
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let p = profile_dir.join("examples").join("functarget");
    assert!(p.is_file(), "{} missing: cargo test builds the examples", p.display());
    p
}

fn run_functarget(args: &[&str]) {
    let st = Command::new(functarget()).args(args).status().expect("run functarget");
    assert!(st.success(), "functarget failed");
}

#[test]
fn live_funclatency_times_sleepy_calls() {
    if !require_root("live_funclatency_times_sleepy_calls") {
        return;
    }
    let _l = live_lock();
    const CALLS: usize = 6;
    let probe = format!("{}:ebpfx_sleepy", functarget().display());
    let run = start_attached(&["run", "funclatency", "--probe", &probe, "--for", "3s", "--format", "prom"], 1);
    run_functarget(&[&CALLS.to_string(), "20", "0", "0"]);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);
    let f = "function=\"ebpfx_sleepy\"";
    let count = prom_value(&prom, &format!("ebpfx_function_latency_seconds_count{{{f}}}")).unwrap_or(0.0);
    assert_eq!(count, CALLS as f64, "{prom}");
    // 20 ms lies in the exp2 bucket (2^24 ns, 2^25 ns] = (0.016777216 s, 0.033554432 s].
    let below = prom_value(&prom, &format!("ebpfx_function_latency_seconds_bucket{{{f},le=\"0.016777216\"}}"));
    let within = prom_value(&prom, &format!("ebpfx_function_latency_seconds_bucket{{{f},le=\"0.033554432\"}}"));
    assert_eq!((below, within), (Some(0.0), Some(CALLS as f64)), "{prom}");
    let sum = prom_value(&prom, &format!("ebpfx_function_latency_seconds_sum{{{f}}}")).unwrap_or(0.0);
    let expected = CALLS as f64 * 0.020;
    assert!(sum >= expected && sum < expected * 1.5, "sum {sum} s, expected about {expected} s\n{prom}");
}

/// funccount on `ebpfx_count_*` (13 and 29 calls), with `env` for ebpfx; also saves the raw
/// maps and renders them again, which must keep the function names.
fn funccount_glob(env: &[(&str, &str)]) {
    funccount_glob_programs(env, 1);
}

/// [`funccount_glob`] expecting `programs` loaded programs.
fn funccount_glob_programs(env: &[(&str, &str)], programs: usize) {
    let probe = format!("{}:ebpfx_count_*", functarget().display());
    let s = Scratch::new("funccount");
    let raw = s.path().join("raw.json");
    let raw_arg = raw.to_str().expect("utf8 path");
    let args = ["run", "funccount", "--probe", &probe, "--for", "2s", "--format", "prom", "--save-raw", raw_arg];
    let run = start_attached_env(&args, 1, env);
    assert_eq!(run.program_ids().len(), programs);
    run_functarget(&["0", "0", "13", "29"]);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);
    let samples = prom_samples(&prom, "ebpfx_function_calls_total");
    assert_eq!(
        samples,
        vec![("function=\"ebpfx_count_a\"".to_string(), 13.0), ("function=\"ebpfx_count_b\"".to_string(), 29.0)],
        "{env:?}\n{prom}"
    );
    let again = ebpfx(&["render", raw_arg, "--format", "prom"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(prom_samples(&text(&again.stdout), "ebpfx_function_calls_total"), samples);
}

#[test]
fn live_funccount_counts_glob_matches() {
    if !require_root("live_funccount_counts_glob_matches") {
        return;
    }
    let _l = live_lock();
    funccount_glob(&[]); // one uprobe_multi link per program (Linux 6.6+)
}

#[test]
fn live_funccount_one_uprobe_per_function() {
    if !require_root("live_funccount_one_uprobe_per_function") {
        return;
    }
    let _l = live_lock();
    funccount_glob(&[("EBPFX_NO_UPROBE_MULTI", "1")]); // the path of kernels before 6.6
}

#[test]
fn live_funccount_without_attach_cookies() {
    if !require_root("live_funccount_without_attach_cookies") {
        return;
    }
    let _l = live_lock();
    // The path of kernels before 5.15 (no bpf_get_attach_cookie): one program copy per function,
    // its index compiled in; the two functions must still be told apart exactly.
    funccount_glob_programs(&[("EBPFX_NO_ATTACH_COOKIE", "1")], 2);
}

#[test]
fn live_funccount_without_attach_cookies_repeated_probes() {
    if !require_root("live_funccount_without_attach_cookies_repeated_probes") {
        return;
    }
    let _l = live_lock();
    // Two --probe targets: copy i goes to function i counted across both (b is 0, a is 1), as
    // its cookie would; a copy numbered within its own target would count both as b.
    let b = format!("{}:ebpfx_count_b", functarget().display());
    let a = format!("{}:ebpfx_count_a", functarget().display());
    let args = ["run", "funccount", "--probe", &b, "--probe", &a, "--for", "2s", "--format", "prom"];
    let run = start_attached_env(&args, 1, &[("EBPFX_NO_ATTACH_COOKIE", "1")]);
    assert_eq!(run.program_ids().len(), 2);
    run_functarget(&["0", "0", "13", "29"]);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    let samples = prom_samples(&prom, "ebpfx_function_calls_total");
    assert_eq!(
        samples,
        vec![("function=\"ebpfx_count_a\"".to_string(), 13.0), ("function=\"ebpfx_count_b\"".to_string(), 29.0)],
        "{prom}"
    );
}

#[test]
fn live_funclatency_without_attach_cookies() {
    if !require_root("live_funclatency_without_attach_cookies") {
        return;
    }
    let _l = live_lock();
    let probe = format!("{}:ebpfx_*", functarget().display());
    let env = [("EBPFX_NO_ATTACH_COOKIE", "1")];
    let run =
        start_attached_env(&["run", "funclatency", "--probe", &probe, "--for", "3s", "--format", "prom"], 1, &env);
    run_functarget(&["4", "20", "3", "0"]);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);
    let count = |f: &str| prom_value(&prom, &format!("ebpfx_function_latency_seconds_count{{function=\"{f}\"}}"));
    assert_eq!((count("ebpfx_sleepy"), count("ebpfx_count_a")), (Some(4.0), Some(3.0)), "{prom}");
    // Each sleepy call lasts at least 20 ms, so none may fall at or below 2^24 ns (16.8 ms):
    // entry and return of one function met in one slot. (No upper bound: on a loaded machine a
    // 20 ms sleep can overrun the next bucket.)
    let below =
        prom_value(&prom, "ebpfx_function_latency_seconds_bucket{function=\"ebpfx_sleepy\",le=\"0.016777216\"}");
    assert_eq!(below, Some(0.0), "{prom}");
}

#[test]
fn live_funccount_without_attach_cookies_refuses_too_many_functions() {
    // More functions than the object has copies (128): refused before anything loads, exit 2.
    // libc.so.6:s* matches some 270 functions, below the 1000 every kernel takes.
    let out = Command::new(bin())
        .args(["run", "funccount", "--probe", "libc.so.6:s*", "--for", "1s"])
        .env("EBPFX_NO_ATTACH_COOKIE", "1")
        .env_remove("EBPFX_CONFIG_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ebpfx");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no BPF cookies") && err.contains("at most 128 functions"), "{err}");
}

#[test]
fn live_funccount_probe_errors_exit_2() {
    // Resolution happens before anything is loaded: no root needed, but keep it with the others.
    let bin = functarget();
    let out = ebpfx(&["run", "funccount", "--probe", &format!("{}:ebpfx_sleeepy", bin.display()), "--for", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no function in") && err.contains("close names: ebpfx_sleepy"), "{err}");
}

/// A server on an ephemeral loopback port echoing a little for every chunk it reads; the client
/// sends `rounds` chunks of 16 KiB. Returns the server's port.
fn transfer(rounds: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 65536];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = conn.write_all(b"ok");
                }
            }
        }
    });
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let chunk = vec![7u8; 16384];
    let mut reply = [0u8; 64];
    for _ in 0..rounds {
        client.write_all(&chunk).expect("send");
        let _ = client.read(&mut reply);
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(client);
    let _ = server.join();
    port
}

#[test]
fn live_tcpflows_gauges_and_port_selection() {
    if !require_root("live_tcpflows_gauges_and_port_selection") {
        return;
    }
    let _l = live_lock();
    // Bind the selected port first so that it is known before ebpfx starts.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let port_arg = port.to_string();
    let args = ["run", "tcpflows", "--port", &port_arg, "--addr", "127.0.0.1/32", "--state", "established"];
    let run = start_attached(&[&args[..], &["--for", "3s", "--format", "prom"]].concat(), 1);
    // The selected flow: a server on `port` (re-bound), and another flow on another port.
    let selected = std::thread::spawn(move || {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("re-bind the selected port");
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 || conn.write_all(b"ok").is_err() {
                    break;
                }
            }
        });
        let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let mut reply = [0u8; 64];
        for _ in 0..200 {
            client.write_all(&[1u8; 16384]).expect("send");
            let _ = client.read(&mut reply);
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(client);
        let _ = server.join();
    });
    let other = transfer(200);
    let _ = selected.join();
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);

    let rtts = prom_samples(&prom, "ebpfx_tcp_flow_smoothed_rtt");
    let p = format!("port=\"{port}\"");
    assert!(!rtts.is_empty(), "no flows seen\n{prom}");
    // Both ends of the selected connection, nothing else.
    assert_eq!(rtts.len(), 2, "{rtts:?}");
    for (labels, v) in &rtts {
        assert!(labels.contains(&format!("s{p}")) || labels.contains(&format!("d{p}")), "{labels}");
        assert!(!labels.contains(&format!("\"{other}\"")), "flow on port {other} not filtered out: {labels}");
        assert!(labels.contains("src=\"127.0.0.1\"") && labels.contains("dst=\"127.0.0.1\""), "{labels}");
        assert!(*v > 0.0 && *v < 1_000_000.0, "smoothed RTT {v} us over loopback");
    }
    for (labels, cwnd) in prom_samples(&prom, "ebpfx_tcp_flow_congestion_window") {
        assert!(cwnd >= 1.0, "cwnd {cwnd} of {labels}");
    }
    let acked = prom_samples(&prom, "ebpfx_tcp_flow_acked_bytes");
    assert!(acked.iter().any(|(_, v)| *v >= 200.0 * 16384.0), "the client's bytes acked: {acked:?}");
    let count = prom_value(&prom, "ebpfx_tcp_flow_rtt_seconds_count").unwrap_or(0.0);
    let inf = prom_value(&prom, "ebpfx_tcp_flow_rtt_seconds_bucket{le=\"+Inf\"}").unwrap_or(-1.0);
    assert!(count >= 200.0 && inf == count, "RTT histogram count {count}, +Inf {inf}\n{prom}");
    // The fixed buckets of the seed (0.1 ms .. 500 ms) are all there.
    for le in ["0.0001", "0.0005", "0.001", "0.005", "0.01", "0.05", "0.1", "0.2", "0.5", "300"] {
        assert!(prom_value(&prom, &format!("ebpfx_tcp_flow_rtt_seconds_bucket{{le=\"{le}\"}}")).is_some(), "le {le}");
    }
}

/// `tcpi_bytes_acked` of a socket, from getsockopt(TCP_INFO) (offset 120 of struct tcp_info:
/// 8 bytes of u8 fields, 24 u32 fields, then pacing_rate and max_pacing_rate).
fn tcp_info_bytes_acked(s: &TcpStream) -> u64 {
    use std::os::fd::AsRawFd;
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which outlives the call.
    let rc = unsafe {
        libc::getsockopt(s.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, info.as_mut_ptr().cast(), &mut len)
    };
    assert_eq!(rc, 0, "getsockopt(TCP_INFO): {}", std::io::Error::last_os_error());
    assert!(len >= 128, "tcp_info of {len} bytes has no tcpi_bytes_acked");
    u64::from_ne_bytes(info[120..128].try_into().expect("8 bytes"))
}

/// Value of `metric` for the flow with local port `sport` and remote port `dport` on loopback.
fn flow_value(prom: &str, metric: &str, sport: u16, dport: u16) -> Option<f64> {
    let (s, d) = (sport.to_string(), dport.to_string());
    prom_get(prom, metric, &[("src", "127.0.0.1"), ("dst", "127.0.0.1"), ("sport", &s), ("dport", &d)])
}

/// Issue 9 item 9: a flow's bytes acked include the ACKs processed after its last tcp_probe (the
/// last data's and the FIN's, which tcp_probe never sees), and an established flow with no
/// traffic in the window is reported too.
#[test]
fn live_tcpflows_final_bytes_acked_and_idle_flows() {
    if !require_root("live_tcpflows_final_bytes_acked_and_idle_flows") {
        return;
    }
    let _l = live_lock();
    // An idle connection, established before ebpfx starts and silent during the window.
    let idle_listener = TcpListener::bind("127.0.0.1:0").expect("bind idle");
    let idle_client = TcpStream::connect(idle_listener.local_addr().expect("addr")).expect("connect idle");
    let (idle_server, _) = idle_listener.accept().expect("accept idle");
    let idle_server_port = idle_listener.local_addr().expect("addr").port();
    let idle_client_port = idle_client.local_addr().expect("addr").port();

    let run = start_attached(&["run", "tcpflows", "--for", "4s", "--format", "prom"], 1);
    // 50 MB from client to server; the client half-closes, the server closes after reading it
    // all, and the client reads the kernel's own count once both FINs are through.
    const BYTES: usize = 50_000_000;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server_port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0usize;
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => panic!("server read: {e}"),
            }
        }
        got
    });
    let mut client = TcpStream::connect(("127.0.0.1", server_port)).expect("connect");
    let client_port = client.local_addr().expect("addr").port();
    let chunk = vec![5u8; 1 << 20];
    let mut left = BYTES;
    while left > 0 {
        let n = left.min(chunk.len());
        client.write_all(&chunk[..n]).expect("send");
        left -= n;
    }
    client.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert_eq!(server.join().expect("server"), BYTES);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("read the server's FIN");
    let kernel_acked = tcp_info_bytes_acked(&client);
    drop(client);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);

    // Every byte (and the SYN and FIN, one sequence number each) as the kernel counts it.
    assert!(kernel_acked >= BYTES as u64, "tcp_info says {kernel_acked} bytes acked");
    let acked = flow_value(&prom, "ebpfx_tcp_flow_acked_bytes", client_port, server_port);
    assert_eq!(acked, Some(kernel_acked as f64), "bytes acked of the client's flow\n{prom}");

    // Both ends of the idle connection, with an RTT from the handshake.
    for (sport, dport) in [(idle_client_port, idle_server_port), (idle_server_port, idle_client_port)] {
        let rtt = flow_value(&prom, "ebpfx_tcp_flow_smoothed_rtt", sport, dport);
        assert!(rtt.is_some_and(|v| v > 0.0), "idle flow {sport} -> {dport} not reported\n{prom}");
        let cwnd = flow_value(&prom, "ebpfx_tcp_flow_congestion_window", sport, dport);
        assert!(cwnd.is_some_and(|v| v >= 1.0), "idle flow {sport} -> {dport}: cwnd {cwnd:?}");
    }
    let idle_acked = flow_value(&prom, "ebpfx_tcp_flow_acked_bytes", idle_client_port, idle_server_port);
    assert_eq!(idle_acked, Some(tcp_info_bytes_acked(&idle_client) as f64), "the idle client's bytes acked");
    drop((idle_client, idle_server));
}

/// Interval mode: a gauge is a level, not a count. An idle flow's gauges are in every block
/// (they were differenced like counters: unchanged gauges read 0 and the flow vanished).
#[test]
fn live_tcpflows_interval_blocks_show_gauge_levels() {
    if !require_root("live_tcpflows_interval_blocks_show_gauge_levels") {
        return;
    }
    let _l = live_lock();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind idle");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect idle");
    let (server, _) = listener.accept().expect("accept idle");
    let (cport, sport) = (client.local_addr().expect("addr").port(), listener.local_addr().expect("addr").port());
    let out = ebpfx(&["run", "tcpflows", "-i", "300ms", "-c", "3", "--format", "prom"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let prom = text(&out.stdout);
    let series = format!(
        "ebpfx_tcp_flow_smoothed_rtt{{dport=\"{sport}\",dst=\"127.0.0.1\",sport=\"{cport}\",src=\"127.0.0.1\"}} "
    );
    let blocks = prom.matches("# TYPE ebpfx_tcp_flow_smoothed_rtt gauge").count();
    assert_eq!(blocks, 3, "three blocks\n{prom}");
    assert_eq!(prom.lines().filter(|l| l.starts_with(&series)).count(), 3, "the idle flow in every block\n{prom}");
    drop((client, server));
}

#[test]
fn live_tcpflows_state_and_addr_selection_exclude_loopback_flows() {
    if !require_root("live_tcpflows_state_and_addr_selection_exclude_loopback_flows") {
        return;
    }
    let _l = live_lock();
    for filter in [["--state", "LISTEN"], ["--addr", "10.0.0.0/8"]] {
        let run = start_attached(&["run", "tcpflows", filter[0], filter[1], "--for", "2s", "--format", "prom"], 1);
        transfer(50);
        let (code, prom, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        promtool_check(&prom);
        // Listening sockets carry no data, and loopback is not in 10.0.0.0/8.
        let rtts = prom_samples(&prom, "ebpfx_tcp_flow_smoothed_rtt");
        assert!(rtts.iter().all(|(l, _)| !l.contains("127.0.0.1")), "{filter:?}: {rtts:?}");
    }
}

#[test]
fn live_funccount_kernel_functions_as_kprobes() {
    if !require_root("live_funccount_kernel_functions_as_kprobes") {
        return;
    }
    let _l = live_lock();
    let out = ebpfx(&["run", "funccount", "--probe", "kernel:vfs_rea?", "--for", "1s", "--format", "prom"]);
    let (prom, err) = (text(&out.stdout), text(&out.stderr));
    if out.status.code() == Some(0) {
        // A kernel with kprobes: vfs_read runs all the time (ebpfx itself reads files).
        promtool_check(&prom);
        assert!(prom_sum(&prom, "ebpfx_function_calls_total", "function=\"vfs_read\"") > 0.0, "{prom}");
    } else {
        // This project's test machines have no CONFIG_KPROBES: the error must say so.
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("cannot create a kprobe on vfs_read") && err.contains("CONFIG_KPROBES"), "{err}");
    }
}
