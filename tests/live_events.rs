//! Event tools through the CLI (issue 12, docs/events.md): each test runs `ebpfx run TOOL`, makes
//! a workload of its own that nothing else on the machine makes (a unique argument, path, port,
//! command name or magic system call), ends the run with an interrupt and checks the output
//! against exactly what it did.
mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

#[test]
fn live_execsnoop_prints_each_of_300_runs_with_its_argument() {
    if !require_root("live_execsnoop_prints_each_of_300_runs_with_its_argument") {
        return;
    }
    let _l = live_lock();
    let arg = unique_tag("execsnoop-arg");
    execsnoop_sees_300_runs(&["run", "execsnoop", "-f", "json"], &arg);
}

#[test]
fn live_opensnoop_sees_a_missing_path_with_enoent() {
    if !require_root("live_opensnoop_sees_a_missing_path_with_enoent") {
        return;
    }
    let _l = live_lock();
    let path = format!("/tmp/{}", unique_tag("opensnoop-missing"));
    let (code, out, err) = run_events(&["run", "opensnoop", "-f", "json"], || {
        for _ in 0..5 {
            let e = std::fs::File::open(&path).expect_err("the path is missing");
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        }
    });
    assert_eq!(code, Some(0), "{err}");
    let mine: Vec<serde_json::Value> =
        json_lines(&out).into_iter().filter(|v| v["path"].as_str() == Some(path.as_str())).collect();
    assert_eq!(mine.len(), 5, "{out}");
    for v in &mine {
        assert_eq!(v["ret"], "ENOENT", "{v}");
        assert_eq!(v["pid"].as_u64(), Some(u64::from(std::process::id())), "{v}");
        assert!(v["flags"].as_str().is_some_and(|f| f.starts_with("O_RDONLY")), "{v}");
    }
}

#[test]
fn live_opensnoop_with_pid_sees_only_that_process() {
    if !require_root("live_opensnoop_with_pid_sees_only_that_process") {
        return;
    }
    let _l = live_lock();
    let path = format!("/tmp/{}", unique_tag("opensnoop-pid"));
    // A process that opens the missing path 3 times when told to (a line on its stdin).
    let script = format!(
        "import sys\nsys.stdin.readline()\nfor _ in range(3):\n    try: open({path:?})\n    except OSError: pass\n"
    );
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("start python3");
    let child_pid = child.id();
    let pid_arg = child_pid.to_string();
    let (code, out, err) = run_events(&["run", "opensnoop", "-p", &pid_arg, "-f", "json"], || {
        // The test opens the same path itself: not the traced process.
        for _ in 0..4 {
            assert!(std::fs::File::open(&path).is_err());
        }
        child.stdin.take().expect("stdin").write_all(b"go\n").expect("release python3");
        assert!(child.wait().expect("wait python3").success());
    });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    assert!(lines.iter().all(|v| v["pid"].as_u64() == Some(u64::from(child_pid))), "another process in:\n{out}");
    let mine = lines.iter().filter(|v| v["path"].as_str() == Some(path.as_str())).count();
    assert_eq!(mine, 3, "exactly the traced process's opens of the path:\n{out}");
    // Two -p values are refused before anything loads, as are task flags the tool lacks.
    let me = std::process::id().to_string();
    let two = ebpfx(&["run", "opensnoop", "-p", &me, "-p", "1", "--for", "1s"]);
    assert_eq!(two.status.code(), Some(2), "{}", text(&two.stderr));
    assert!(text(&two.stderr).contains("one process"), "{}", text(&two.stderr));
    let comm = ebpfx(&["run", "opensnoop", "--comm", "cat", "--for", "1s"]);
    assert_eq!(comm.status.code(), Some(2), "{}", text(&comm.stderr));
    assert!(text(&comm.stderr).contains("opensnoop"), "{}", text(&comm.stderr));
}

/// A loopback connection: the client sends `up` bytes, the server answers with `down`, both
/// close. Returns the server's port.
fn loopback_exchange(listener: &TcpListener, up: usize, down: usize) {
    let port = listener.local_addr().expect("addr").port();
    std::thread::scope(|s| {
        s.spawn(|| {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut got = vec![0u8; up];
            conn.read_exact(&mut got).expect("read");
            conn.write_all(&vec![7u8; down]).expect("write");
            conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).expect("read end");
        });
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.write_all(&vec![1u8; up]).expect("write");
        let mut got = Vec::new();
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        c.read_to_end(&mut got).expect("read");
        assert_eq!(got.len(), down);
    });
}

#[test]
fn live_tcpconnect_and_tcplife_see_a_loopback_connection_with_exact_bytes() {
    if !require_root("live_tcpconnect_and_tcplife_see_a_loopback_connection_with_exact_bytes") {
        return;
    }
    let _l = live_lock();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let running = start_attached(&["run", "tcpconnect", "tcplife", "-f", "json"], 2);
    loopback_exchange(&listener, 123_457, 6_789);
    // tcplife writes its record when the socket reaches CLOSE; give the kernel a moment.
    std::thread::sleep(std::time::Duration::from_millis(300));
    running.signal(libc::SIGINT);
    let (code, out, err) = running.finish();
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let me = u64::from(std::process::id());
    let connects: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["config"] == "tcpconnect" && v["dport"].as_u64() == Some(u64::from(port))).collect();
    assert_eq!(connects.len(), 1, "{out}");
    assert_eq!(connects[0]["pid"].as_u64(), Some(me));
    assert_eq!(connects[0]["daddr"], "127.0.0.1");
    // The client's side: sent 123457 payload bytes, received 6789.
    let client: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["config"] == "tcplife" && v["rport"].as_u64() == Some(u64::from(port))).collect();
    assert_eq!(client.len(), 1, "{out}");
    assert_eq!(client[0]["tx_bytes"].as_u64(), Some(123_457), "{}", client[0]);
    assert_eq!(client[0]["rx_bytes"].as_u64(), Some(6_789), "{}", client[0]);
    assert_eq!(client[0]["pid"].as_u64(), Some(me));
    assert_eq!(client[0]["raddr"], "127.0.0.1");
    // The server's side, the other way round.
    let server: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["config"] == "tcplife" && v["lport"].as_u64() == Some(u64::from(port))).collect();
    assert_eq!(server.len(), 1, "{out}");
    assert_eq!(server[0]["tx_bytes"].as_u64(), Some(6_789), "{}", server[0]);
    assert_eq!(server[0]["rx_bytes"].as_u64(), Some(123_457), "{}", server[0]);
}

#[test]
fn live_tcpconnect_port_shows_only_that_remote_port() {
    if !require_root("live_tcpconnect_port_shows_only_that_remote_port") {
        return;
    }
    let _l = live_lock();
    let wanted = TcpListener::bind("127.0.0.1:0").expect("bind");
    let other = TcpListener::bind("127.0.0.1:0").expect("bind");
    let (p1, p2) = (wanted.local_addr().expect("a").port(), other.local_addr().expect("b").port());
    let port = p1.to_string();
    let (code, out, err) = run_events(&["run", "tcpconnect", "--port", &port, "-f", "json"], || {
        loopback_exchange(&wanted, 10, 10);
        loopback_exchange(&other, 10, 10);
    });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.iter().filter(|v| v["dport"].as_u64() == Some(u64::from(p1))).count(), 1, "{out}");
    assert!(lines.iter().all(|v| v["dport"].as_u64() == Some(u64::from(p1))), "port {p2} or others seen: {out}");
}

#[test]
fn live_killsnoop_sees_the_signal_the_test_sends() {
    if !require_root("live_killsnoop_sees_the_signal_the_test_sends") {
        return;
    }
    let _l = live_lock();
    let mut child = Command::new("sleep").arg("30").spawn().expect("spawn sleep");
    let target = child.id();
    let (code, out, err) = run_events(&["run", "killsnoop", "-f", "json"], || {
        // SAFETY: kill with our own child's pid and a valid signal number.
        let rc = unsafe { libc::kill(target as i32, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let _ = child.wait();
    });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let mine: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| {
            v["pid"].as_u64() == Some(u64::from(std::process::id())) && v["target"].as_u64() == Some(u64::from(target))
        })
        .collect();
    assert_eq!(mine.len(), 1, "{out}");
    assert_eq!(mine[0]["signal"], "SIGTERM");
    assert_eq!(mine[0]["ret"], "0");
}

/// A copy of /bin/true under a name nobody else runs: its exec counts are the test's own.
fn unique_true(dir: &Scratch) -> (std::path::PathBuf, String) {
    let name = unique_comm("evt");
    let path = dir.path().join(&name);
    std::fs::copy("/bin/true", &path).expect("copy /bin/true");
    (path, name)
}

#[test]
fn live_execsnoop_prom_counts_by_comm_and_passes_promtool() {
    if !require_root("live_execsnoop_prom_counts_by_comm_and_passes_promtool") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("events-prom");
    let (prog, name) = unique_true(&dir);
    let (code, out, err) = run_events(&["run", "execsnoop", "-f", "prom"], || {
        for _ in 0..50 {
            assert!(Command::new(&prog).status().expect("run").success());
        }
    });
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&out);
    assert_eq!(prom_get(&out, "ebpfx_execsnoop_events_total", &[("comm", &name)]), Some(50.0), "{out}");
    assert_eq!(prom_get(&out, "ebpfx_events_lost_total", &[("config", "execsnoop")]), Some(0.0), "{out}");
}

#[test]
fn live_saved_event_run_renders_the_same_table() {
    if !require_root("live_saved_event_run_renders_the_same_table") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("events-raw");
    let (prog, name) = unique_true(&dir);
    let raw = dir.path().join("exec.json");
    let raw_s = raw.to_str().expect("utf-8");
    for timestamp in [false, true] {
        let mut args = vec!["run", "execsnoop", "--save-raw", raw_s];
        if timestamp {
            args.push("-T");
        }
        let (code, table, err) = run_events(&args, || {
            for i in 0..20 {
                assert!(Command::new(&prog).arg(format!("a{i}")).status().expect("run").success());
            }
        });
        assert_eq!(code, Some(0), "{err}");
        assert!(table.starts_with(if timestamp { "TIME     PID " } else { "PID " }), "{table}");
        assert_eq!(table.lines().filter(|l| l.contains(&name)).count(), 20, "{table}");
        let mut rargs = vec!["render", raw_s];
        if timestamp {
            rargs.push("-T");
        }
        let replay = ebpfx(&rargs);
        assert_eq!(replay.status.code(), Some(0), "{}", text(&replay.stderr));
        assert_eq!(text(&replay.stdout), table);
        // And in another format: the same records as JSON Lines.
        let json = ebpfx(&["render", raw_s, "-f", "json"]);
        let lines = json_lines(&text(&json.stdout));
        assert_eq!(lines.len(), table.lines().count() - 1);
        assert_eq!(lines.iter().filter(|v| v["comm"].as_str() == Some(name.as_str())).count(), 20);
    }
}

/// Many records into a one-page ring from a test object whose only events are the test's own
/// getpriority(0x7e57, seq) calls: the lost count printed is exactly produced − received.
#[test]
fn live_overload_prints_exactly_the_records_lost() {
    if !require_root("live_overload_prints_exactly_the_records_lost") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&[]);
    add_test_config(&dir, "evstorm", "evstorm", "evstorm");
    let d = dir.path().to_str().expect("utf-8");
    const N: u32 = 200_000;
    let (code, out, err) =
        run_events(&["--config-dir", d, "run", "evstorm", "--ring-size", "4K", "-f", "json"], || {
            for seq in 0..N {
                // SAFETY: getpriority with an invalid `which` only returns EINVAL.
                unsafe { libc::syscall(libc::SYS_getpriority, 0x7e57, seq) };
            }
        });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let mut seqs: Vec<u64> = lines.iter().filter_map(|v| v["seq"].as_u64()).collect();
    let received = seqs.len() as u64;
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len() as u64, received, "a record came twice");
    let total = err
        .lines()
        .find_map(|l| l.strip_prefix("ebpfx: evstorm: ")?.split(" events lost in total").next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no lost total on stderr: {err}"));
    assert!(total > 0, "a one-page ring kept up with {N} records: {err}");
    assert_eq!(total, u64::from(N) - received, "{err}");
    assert!(err.contains(&format!("{received} received")), "{err}");
}

#[test]
fn ring_size_and_formats_are_checked_before_anything_loads() {
    for (args, needle) in [
        (
            vec!["run", "opensnoop", "--ring-size", "6000"],
            "--ring-size 6000: ring buffer size 6000 bytes: must be a power of two",
        ),
        (vec!["run", "opensnoop", "--ring-size", "lots"], "--ring-size \"lots\""),
        (vec!["run", "opensnoop", "-f", "folded"], "--format folded: event tools print"),
        (vec!["run", "opensnoop", "syscalls"], "run event tools apart from map tools"),
        (vec!["run", "opensnoop", "execsnoop"], "a table shows one event stream"),
        (vec!["run", "opensnoop", "--by", "comm"], "--by does not apply to event tools"),
    ] {
        let out = ebpfx(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(needle), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn check_compares_event_fields_with_the_record_in_btf() {
    let dir = test_config_dir(&[]);
    add_test_config(&dir, "evstorm", "evstorm", "evstorm");
    let d = dir.path().to_str().expect("utf-8");
    let out = ebpfx(&["--config-dir", d, "check", "evstorm"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let yaml = dir.path().join("evstorm.yaml");
    let bad =
        std::fs::read_to_string(&yaml).expect("read").replace("{name: seq, size: 4, padding: 4", "{name: seq, size: 8");
    std::fs::write(&yaml, bad).expect("write");
    let out = ebpfx(&["--config-dir", d, "check", "evstorm"]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{o}");
    assert!(o.contains("config evstorm: events evstorm: fields do not line up with the record"), "{o}");
    assert!(o.contains("field \"seq\" (bytes 40..48) runs into the next member at byte 44"), "{o}");
    assert!(o.contains("record struct storm_record (48 bytes)"), "{o}");
}

#[test]
fn live_exitsnoop_sees_the_exit_status() {
    if !require_root("live_exitsnoop_sees_the_exit_status") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("events-exit");
    let name = unique_comm("evf");
    let prog = dir.path().join(&name);
    std::fs::copy("/bin/false", &prog).expect("copy /bin/false");
    let (code, out, err) = run_events(&["run", "exitsnoop", "-f", "json"], || {
        for _ in 0..3 {
            assert_eq!(Command::new(&prog).status().expect("run").code(), Some(1));
        }
    });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let mine: Vec<&serde_json::Value> = lines.iter().filter(|v| v["comm"].as_str() == Some(name.as_str())).collect();
    assert_eq!(mine.len(), 3, "{out}");
    for v in mine {
        assert_eq!(v["status"], "exit 1", "{v}");
        assert_eq!(v["ppid"].as_u64(), Some(u64::from(std::process::id())), "{v}");
    }
}

#[test]
fn live_mountsnoop_sees_a_mount_and_its_umount() {
    if !require_root("live_mountsnoop_sees_a_mount_and_its_umount") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("events-mount");
    let target = dir.path().join(unique_comm("mnt"));
    std::fs::create_dir(&target).expect("mkdir");
    let t = target.to_str().expect("utf-8").to_string();
    let (code, out, err) = run_events(&["run", "mountsnoop", "-f", "json"], || {
        assert!(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "nosuid,nodev", "evtest", &t])
            .status()
            .expect("mount")
            .success());
        assert!(Command::new("umount").arg(&t).status().expect("umount").success());
    });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let mine: Vec<&serde_json::Value> = lines.iter().filter(|v| v["target"].as_str() == Some(t.as_str())).collect();
    assert_eq!(mine.len(), 2, "{out}");
    assert_eq!(mine[0]["call"], "mount", "{}", mine[0]);
    assert_eq!(mine[0]["source"], "evtest");
    assert_eq!(mine[0]["fstype"], "tmpfs");
    assert_eq!(mine[0]["ret"], "0");
    assert!(
        mine[0]["flags"].as_str().is_some_and(|f| f.contains("MS_NOSUID") && f.contains("MS_NODEV")),
        "{}",
        mine[0]
    );
    assert_eq!(mine[1]["call"], "umount", "{}", mine[1]);
    assert_eq!(mine[1]["ret"], "0");
}

/// biosnoop counts each O_DIRECT write of a dd of the test's own (a unique command name), under
/// dd's pid, also when a write joins a request of another task (the dd's file is new, so its
/// first blocks may follow blocks that writeback has queued: docs/events.md, "merged bios").
/// A run is repeated (3 runs at most) only when it is short by no more writes than the
/// completions the kernel's own run counts say it ran no program for (tests/common).
#[test]
fn live_biosnoop_counts_each_direct_write() {
    if !require_root("live_biosnoop_counts_each_direct_write") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("events-bio");
    let name = unique_comm("evdd");
    let dd = dir.path().join(&name);
    std::fs::copy("/bin/dd", &dd).expect("copy dd");
    let of = format!("of={}", dir.path().join("io").display());
    let mut round = 1;
    let (out, dd_pid) = loop {
        let running = start_attached(&["run", "biosnoop", "-f", "json"], 1);
        let ids = running.program_ids();
        let before = program_run_counts(&ids);
        let mut child = Command::new(&dd)
            .args(["if=/dev/zero", &of, "bs=4k", "count=32", "oflag=direct", "status=none"])
            .spawn()
            .expect("dd");
        let dd_pid = child.id();
        assert!(child.wait().expect("wait for dd").success());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let after = program_run_counts(&ids);
        running.signal(libc::SIGINT);
        let (code, out, err) = running.finish();
        assert_eq!(code, Some(0), "{err}");
        let seen =
            json_lines(&out).iter().filter(|v| v["comm"].as_str() == Some(name.as_str()) && v["op"] == "write").count()
                as u64;
        // Completions the kernel ran no program for while dd ran (tests/common): issue runs
        // minus completion runs over the same span.
        let runs = |m: &std::collections::HashMap<String, u64>, p: &str| m.get(p).copied().unwrap_or(0);
        let issued = runs(&after, "biosnoop_issue").saturating_sub(runs(&before, "biosnoop_issue"));
        let done = runs(&after, "biosnoop_done").saturating_sub(runs(&before, "biosnoop_done"));
        if !rerun_for_kernel_skips("biosnoop", round, 32, seen, issued.saturating_sub(done)) {
            break (out, dd_pid);
        }
        round += 1;
    };
    let lines = json_lines(&out);
    let mine: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["comm"].as_str() == Some(name.as_str()) && v["op"] == "write").collect();
    assert_eq!(mine.len(), 32, "{out}");
    assert!(mine.iter().all(|v| v["bytes"].as_u64() == Some(4096)), "{out}");
    assert!(mine.iter().all(|v| v["pid"].as_u64() == Some(u64::from(dd_pid))), "{out}");
    let mut sectors: Vec<u64> = mine.iter().filter_map(|v| v["sector"].as_u64()).collect();
    sectors.sort_unstable();
    sectors.dedup();
    assert_eq!(sectors.len(), 32, "each write once: {out}");
}

/// A loop device whose requests can be held: it is backed by a file on an ext4 of a second loop
/// device, and freezing that ext4 stops the first device's worker. With `mq-deadline` and every
/// driver tag taken by held requests, a new request waits in the scheduler, where a bio of
/// another task can join it. Drop thaws, waits for the writers, and takes it all apart.
struct HeldLoop {
    dir: Scratch,
    outer: String,
    inner: String,
    frozen: bool,
    writers: Vec<std::process::Child>,
}

impl HeldLoop {
    fn new() -> HeldLoop {
        let dir = Scratch::new("events-bio-held");
        let img = dir.path().join("outer.img");
        std::fs::File::create(&img).and_then(|f| f.set_len(64 << 20)).expect("outer image");
        let outer = sh(&format!("losetup -f --show {}", img.display())).trim().to_string();
        let mut held = HeldLoop { dir, outer, inner: String::new(), frozen: false, writers: Vec::new() };
        let mnt = held.mnt();
        std::fs::create_dir_all(&mnt).expect("mount point");
        sh(&format!("mkfs.ext4 -q -F {} && mount {} {}", held.outer, held.outer, mnt.display()));
        let inner_img = mnt.join("inner.img");
        std::fs::File::create(&inner_img).and_then(|f| f.set_len(16 << 20)).expect("inner image");
        held.inner = sh(&format!("losetup -f --show {}", inner_img.display())).trim().to_string();
        sh(&format!("echo mq-deadline > /sys/block/{}/queue/scheduler", held.name()));
        // Written once, so the held writes are overwrites that need nothing from the ext4 but
        // the loop worker's write.
        held.write("dd", 0, 16 << 8);
        held
    }
    fn mnt(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }
    fn name(&self) -> &str {
        self.inner.trim_start_matches("/dev/")
    }
    fn freeze(&mut self) {
        sh(&format!("fsfreeze -f {}", self.mnt().display()));
        self.frozen = true;
    }
    /// `blocks` direct 4 KiB writes at block `seek` of the inner device by `prog` (a dd), left
    /// running: its pid.
    fn spawn_write(&mut self, prog: &str, seek: u64) -> u32 {
        let child = Command::new(prog)
            .args(["if=/dev/zero", &format!("of={}", self.inner), "bs=4k", "count=1", "oflag=direct", "status=none"])
            .arg(format!("seek={seek}"))
            .spawn()
            .expect("spawn dd");
        let pid = child.id();
        self.writers.push(child);
        pid
    }
    fn write(&mut self, prog: &str, seek: u64, count: u64) {
        let st = Command::new(prog)
            .args(["if=/dev/zero", &format!("of={}", self.inner), "bs=4k", "oflag=direct", "status=none"])
            .args([format!("seek={seek}"), format!("count={count}")])
            .status()
            .expect("dd");
        assert!(st.success());
    }
    /// Waits until each of `pids` sleeps uninterruptibly (its write submitted, now held).
    fn wait_held(pids: &[u32]) {
        let started = std::time::Instant::now();
        while !pids.iter().all(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('D')))
                .unwrap_or(false)
        }) {
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "writers not held: {pids:?}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    fn thaw(&mut self) {
        if self.frozen {
            sh(&format!("fsfreeze -u {}", self.mnt().display()));
            self.frozen = false;
        }
        for mut w in self.writers.drain(..) {
            let _ = w.wait();
        }
    }
}

impl Drop for HeldLoop {
    fn drop(&mut self) {
        self.thaw();
        let _ = Command::new("losetup").args(["-d", &self.inner]).status();
        let _ = Command::new("umount").arg(self.mnt()).status();
        let _ = Command::new("losetup").args(["-d", &self.outer]).status();
    }
}

/// A direct write whose bio joins a request of another process waiting in the IO scheduler (a
/// back merge) still gets a record of its own, under its own pid, sector and bytes; the other
/// process's record keeps only its own 4 KiB. Made certain with a held loop device: every driver
/// tag held by 130 writers, a "victim" write queued at block 2000, then the test's write at
/// block 2001 right behind it.
#[test]
fn live_biosnoop_reports_a_write_merged_into_another_tasks_request() {
    if !require_root("live_biosnoop_reports_a_write_merged_into_another_tasks_request") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("events-bio-merge");
    let name = unique_comm("evmg");
    let dd = dir.path().join(&name);
    std::fs::copy("/bin/dd", &dd).expect("copy dd");
    let dd = dd.to_str().expect("utf-8").to_string();
    let mut held = HeldLoop::new();
    let disk = held.name().to_string();
    let (mut victim, mut mine) = (0, 0);
    let (code, out, err) = run_events(&["run", "biosnoop", "-f", "json"], || {
        held.freeze();
        // More writers than the loop device's 128 driver tags: one more waits on the dispatch
        // list, the rest in mq-deadline. Every 4th block, so none of them touch.
        let fillers: Vec<u32> = (0..130).map(|i| held.spawn_write("dd", i * 4)).collect();
        HeldLoop::wait_held(&fillers);
        victim = held.spawn_write("dd", 2000);
        HeldLoop::wait_held(&[victim]);
        mine = held.spawn_write(&dd, 2001);
        HeldLoop::wait_held(&[mine]);
        held.thaw();
        std::thread::sleep(std::time::Duration::from_millis(200));
    });
    drop(held);
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let on_disk: Vec<&serde_json::Value> = lines.iter().filter(|v| v["disk"].as_str() == Some(disk.as_str())).collect();
    let of = |pid: u32| -> Vec<&serde_json::Value> {
        on_disk.iter().copied().filter(|v| v["pid"].as_u64() == Some(u64::from(pid))).collect()
    };
    let m = of(mine);
    assert_eq!(m.len(), 1, "the merged write, once: {out}");
    assert_eq!(m[0]["comm"], name.as_str(), "{}", m[0]);
    assert_eq!(m[0]["op"], "write", "{}", m[0]);
    assert_eq!(m[0]["sector"].as_u64(), Some(2001 * 8), "{}", m[0]);
    assert_eq!(m[0]["bytes"].as_u64(), Some(4096), "{}", m[0]);
    let v = of(victim);
    assert_eq!(v.len(), 1, "the victim's write, once: {out}");
    assert_eq!(v[0]["sector"].as_u64(), Some(2000 * 8), "{}", v[0]);
    assert_eq!(v[0]["bytes"].as_u64(), Some(4096), "only the victim's own bytes: {}", v[0]);
    // The same request: one completion time for both.
    assert_eq!(m[0]["time"], v[0]["time"], "{out}");
}

/// `ebpfx run opensnoop -f json | head -1`: the reader goes away, ebpfx ends quietly with 0.
#[test]
fn live_event_lines_into_a_closed_pipe_end_quietly() {
    if !require_root("live_event_lines_into_a_closed_pipe_end_quietly") {
        return;
    }
    let _l = live_lock();
    let mut running = start_attached(&["run", "opensnoop", "-f", "json", "--for", "60s"], 1);
    let path = format!("/tmp/{}", unique_tag("opensnoop-pipe"));
    let _ = std::fs::File::open(&path);
    let mut stdout = running.child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("a first line");
    drop(stdout);
    let started = std::time::Instant::now();
    // Keep events coming until ebpfx notices the closed pipe.
    while running.child.try_wait().expect("wait").is_none() {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "ebpfx kept running after its reader left");
        let _ = std::fs::File::open(&path);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, _, err) = running.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("Broken pipe") && !err.contains("error"), "{err}");
}

/// An ebpf_exporter config with only `tracing:` spans runs them as JSON Lines: trace and span
/// ids, name, start and end, the other labels; an all-zero parent is left out.
#[test]
fn live_tracing_spans_print_as_json_lines() {
    if !require_root("live_tracing_spans_print_as_json_lines") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&[]);
    add_test_config(&dir, "spans", "spans", "spans");
    let d = dir.path().to_str().expect("utf-8");
    let (code, out, err) = run_events(&["--config-dir", d, "run", "spans", "-f", "json"], || {
        for seq in 0..4u32 {
            // SAFETY: getpriority with an invalid `which` only returns EINVAL.
            unsafe { libc::syscall(libc::SYS_getpriority, 0x5a4e, seq) };
        }
    });
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("spans has no loss counter"), "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "{out}");
    for (i, v) in lines.iter().enumerate() {
        // The record's u64 halves in host byte order, as the hex decoder prints bytes.
        let hi = 0x0123_4567_89ab_cdefu64.to_ne_bytes();
        let lo = (i as u64).to_ne_bytes();
        let hex: String = hi.iter().chain(&lo).map(|b| format!("{b:02x}")).collect();
        assert_eq!(v["trace_id"], hex.as_str(), "{v}");
        assert_eq!(v["name"], "magic_call");
        assert_eq!(v["seq"].as_u64(), Some(i as u64));
        assert_eq!(v["span_duration_ns"].as_u64(), Some(1_000_000));
        assert_eq!(v.get("parent_span_id").is_some(), i % 2 == 1, "{v}");
        let start = humantime::parse_rfc3339(v["time"].as_str().expect("time")).expect("rfc3339");
        let end = humantime::parse_rfc3339(v["end"].as_str().expect("end")).expect("rfc3339");
        assert_eq!(end.duration_since(start).expect("end after start"), std::time::Duration::from_millis(1));
    }
}

/// The signal rule holds for event runs (the same loop): a second interrupt well after the
/// first quits at once with 130, while the first one's output is held back.
#[test]
fn live_event_run_second_interrupt_quits_with_130() {
    if !require_root("live_event_run_second_interrupt_quits_with_130") {
        return;
    }
    let _l = live_lock();
    let running = start_attached_env(&["run", "killsnoop", "-f", "prom"], 1, &[("EBPFX_TEST_DELAY_PRINT_MS", "5000")]);
    running.signal(libc::SIGINT);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    running.signal(libc::SIGINT);
    let (code, out, err) = running.finish();
    assert_eq!(code, Some(130), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("interrupted again, quitting without results"), "{err}");
}

#[test]
fn render_t_is_refused_for_map_snapshots() {
    let dir = Scratch::new("events-render-t");
    let file = dir.write("snap.json", "{}");
    let out = ebpfx(&["render", file.to_str().expect("utf-8"), "-T"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("-T adds a time column to saved event runs"), "{}", text(&out.stderr));
}
