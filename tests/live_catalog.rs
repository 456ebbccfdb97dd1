//! Live tests of the built-in catalog: each tool runs on this kernel with a workload that
//! exercises it, and its output must hold the expected label values and plausible counts.
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

fn spin_threads(n: usize, dur: Duration) {
    let hs: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                let t = std::time::Instant::now();
                let mut x = 0u64;
                while t.elapsed() < dur {
                    x = x.wrapping_mul(31).wrapping_add(7);
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    for h in hs {
        let _ = h.join();
    }
}

#[test]
fn live_biosize_sees_4k_and_64k_writes() {
    if !require_root("live_biosize_sees_4k_and_64k_writes") {
        return;
    }
    let _l = live_lock();
    let s = Scratch::new("biosize");
    let prom = run_builtin("biosize", "3s", || {
        direct_writes(s.path(), 100);
        sh(&format!("dd if=/dev/zero of={}/big bs=64k count=50 oflag=direct status=none", s.path().display()));
    });
    let w = "device=\"vda\",operation=\"write\"";
    let le4k = prom_value(&prom, &format!("ebpfx_bio_size_bytes_bucket{{{w},le=\"4096\"}}")).unwrap_or(0.0);
    let le64k = prom_value(&prom, &format!("ebpfx_bio_size_bytes_bucket{{{w},le=\"65536\"}}")).unwrap_or(0.0);
    assert!(le4k >= 100.0, "4 KiB writes: {le4k}\n{prom}");
    assert!(le64k - le4k >= 50.0, "64 KiB writes: {}\n{prom}", le64k - le4k);
    let sum = prom_sum(&prom, "ebpfx_bio_size_bytes_sum", w);
    assert!(sum >= (100 * 4096 + 50 * 65536) as f64, "sum of bytes {sum}");
}

#[test]
fn live_syslatency_times_getpid() {
    if !require_root("live_syslatency_times_getpid") {
        return;
    }
    let _l = live_lock();
    let prom = run_builtin("syslatency", "2s", || getpid_calls(20_000));
    let n = prom_sum(&prom, "ebpfx_syscall_latency_seconds_count", "syscall=\"getpid\"");
    assert!(n >= 20_000.0, "getpid latency count {n}");
    let sum = prom_sum(&prom, "ebpfx_syscall_latency_seconds_sum", "syscall=\"getpid\"");
    assert!(sum > 0.0 && sum / n < 0.001, "mean getpid latency {} s is implausible", sum / n);
}

#[test]
fn live_runqlat_with_more_runnable_threads_than_cpus() {
    if !require_root("live_runqlat_with_more_runnable_threads_than_cpus") {
        return;
    }
    let _l = live_lock();
    let prom = run_builtin("runqlat", "2s", || spin_threads(4, Duration::from_millis(1200)));
    let n = prom_sum(&prom, "ebpfx_run_queue_latency_seconds_count", "");
    let sum = prom_sum(&prom, "ebpfx_run_queue_latency_seconds_sum", "");
    assert!(n >= 10.0 && sum > 0.01, "count {n} sum {sum}\n{prom}");
}

#[test]
fn live_runqlat_cgroup_labels_cgroup_paths() {
    if !require_root("live_runqlat_cgroup_labels_cgroup_paths") {
        return;
    }
    let _l = live_lock();
    let prom = run_builtin("runqlat_cgroup", "2s", || spin_threads(4, Duration::from_millis(1000)));
    let samples = prom_samples(&prom, "ebpfx_run_queue_latency_cgroup_seconds_count");
    assert!(!samples.is_empty(), "{prom}");
    assert!(
        samples.iter().any(|(l, v)| l.contains("cgroup=\"/sys/fs/cgroup") && *v > 0.0),
        "no cgroup path label: {samples:?}"
    );
}

#[test]
fn live_offcpu_counts_sleeps() {
    if !require_root("live_offcpu_counts_sleeps") {
        return;
    }
    let _l = live_lock();
    // A copy of sleep under a command name of its own: other `sleep`s on a shared machine that
    // end inside the window would add their whole sleep to comm="sleep".
    let dir = Scratch::new("offcpu");
    let sleeper = dir.path().join("ebpfxoffcpuslp");
    std::fs::copy("/bin/sleep", &sleeper).expect("copy /bin/sleep");
    let prom = run_builtin("offcpu", "3s", || {
        for _ in 0..5 {
            let st = Command::new(&sleeper).arg("0.2").status().expect("sleep");
            assert!(st.success());
        }
    });
    let n = prom_sum(&prom, "ebpfx_offcpu_seconds_count", "comm=\"ebpfxoffcpuslp\"");
    let sum = prom_sum(&prom, "ebpfx_offcpu_seconds_sum", "comm=\"ebpfxoffcpuslp\"");
    assert!(n >= 5.0, "sleep blocked {n} times\n{prom}");
    assert!((0.9..3.0).contains(&sum), "sleep blocked {sum} s in total, expected about 1 s");
}

#[test]
fn live_softirqs_and_hardirqs_during_io() {
    if !require_root("live_softirqs_and_hardirqs_during_io") {
        return;
    }
    let _l = live_lock();
    let s = Scratch::new("irq");
    let prom = run_builtin("softirqs", "2s", || direct_writes(s.path(), 200));
    let timer = prom_sum(&prom, "ebpfx_softirq_seconds_count", "softirq=\"timer\"")
        + prom_sum(&prom, "ebpfx_softirq_seconds_count", "softirq=\"rcu\"")
        + prom_sum(&prom, "ebpfx_softirq_seconds_count", "softirq=\"sched\"");
    assert!(timer > 0.0, "no timer/rcu/sched softirqs in 2 s\n{prom}");
    let prom = run_builtin("hardirqs", "2s", || direct_writes(s.path(), 200));
    let virtio = prom_sum(&prom, "ebpfx_hardirq_seconds_count", "virtio");
    assert!(virtio >= 1.0, "no virtio interrupts during 200 direct writes\n{prom}");
}

#[test]
fn live_timers_resolves_callbacks() {
    if !require_root("live_timers_resolves_callbacks") {
        return;
    }
    let _l = live_lock();
    let prom = run_builtin("timers", "2s", || {
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let wakeups = prom_sum(&prom, "ebpfx_hrtimer_expirations_total", "function=\"hrtimer_wakeup\"");
    assert!(wakeups >= 20.0, "hrtimer_wakeup {wakeups}\n{prom}");
    assert!(!prom.contains("unknown_addr"), "unresolved callback addresses:\n{prom}");
}

#[test]
fn live_exec_counts_commands() {
    if !require_root("live_exec_counts_commands") {
        return;
    }
    let _l = live_lock();
    let prom = run_builtin("exec", "2s", || {
        for _ in 0..50 {
            Command::new("/bin/true").status().expect("true");
        }
    });
    let n = prom_value(&prom, "ebpfx_exec_total{comm=\"true\"}").unwrap_or(0.0);
    assert!(n >= 50.0, "exec of true: {n}\n{prom}");
}

#[test]
fn live_pagefaults_counts_touched_pages() {
    if !require_root("live_pagefaults_counts_touched_pages") {
        return;
    }
    let _l = live_lock();
    let prom = run_builtin("pagefaults", "3s", || {
        sh("/usr/bin/python3 -c 'import mmap\nm = mmap.mmap(-1, 100 << 20)\nfor i in range(0, 100 << 20, 4096): m[i] = 1'");
    });
    let n = prom_sum(&prom, "ebpfx_page_faults_total", "comm=\"python3\"");
    assert!(n >= 25_600.0, "page faults of python3 touching 25600 pages: {n}\n{prom}");
}

#[test]
fn live_oomkill_names_the_victim() {
    if !require_root("live_oomkill_names_the_victim") {
        return;
    }
    let _l = live_lock();
    // A memory cgroup of our own with a 64 MiB limit: v1 (hybrid hosts) or v2.
    let (dir, limit_file) = if std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
        ("/sys/fs/cgroup/memory/ebpfx-oomtest".to_string(), "memory.limit_in_bytes")
    } else {
        ("/sys/fs/cgroup/ebpfx-oomtest".to_string(), "memory.max")
    };
    let _ = std::fs::create_dir(&dir);
    std::fs::write(format!("{dir}/{limit_file}"), "67108864").expect("set memory limit");
    let _ = std::fs::write(format!("{dir}/memory.swap.max"), "0");
    let prom = run_builtin("oomkill", "4s", || {
        // The child joins the cgroup, then allocates 512 MiB: the OOM killer picks it.
        let st = Command::new("sh")
            .args([
                "-c",
                &format!("echo $$ > {dir}/cgroup.procs && exec /usr/bin/python3 -c 'b = bytearray(512 << 20)'"),
            ])
            .status()
            .expect("run oom child");
        assert!(!st.success(), "the allocation should have been killed");
    });
    let _ = std::fs::remove_dir(&dir);
    let n = prom_value(&prom, "ebpfx_oom_kills_total{comm=\"python3\"}").unwrap_or(0.0);
    assert!(n >= 1.0, "no OOM kill of python3 seen\n{prom}");
}

#[test]
fn live_tcpretrans_in_a_lossy_namespace() {
    if !require_root("live_tcpretrans_in_a_lossy_namespace") {
        return;
    }
    let _l = live_lock();
    let ns = format!("ebpfx-rt-{}", std::process::id());
    let obj = object_dir().join("tests").join("drop30.bpf.o");
    sh(&format!("ip netns add {ns} && ip -n {ns} link set lo up"));
    let cleanup = |ns: &str| {
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    };
    let setup = Command::new("sh")
        .args([
            "-c",
            &format!(
                "ip netns exec {ns} tc qdisc add dev lo clsact && ip netns exec {ns} tc filter add dev lo ingress bpf direct-action obj {} sec tc",
                obj.display()
            ),
        ])
        .output()
        .expect("tc");
    if !setup.status.success() {
        cleanup(&ns);
        panic!("setting up packet loss failed: {}", text(&setup.stderr));
    }
    let transfer = "import socket, threading\n\
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
srv.bind(('127.0.0.1', 45678)); srv.listen(1)\n\
def serve():\n    c, _ = srv.accept()\n    while c.recv(65536): pass\n\
t = threading.Thread(target=serve); t.start()\n\
cl = socket.create_connection(('127.0.0.1', 45678))\n\
for _ in range(16): cl.sendall(b'x' * 65536)\n\
cl.close(); t.join()\n";
    let prom = run_builtin("tcpretrans", "20s", || {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "timeout", "15", "/usr/bin/python3", "-c", transfer])
            .output()
            .expect("transfer");
        let _ = out;
    });
    cleanup(&ns);
    let n = prom_sum(&prom, "ebpfx_tcp_retransmits_total", "daddr=\"127.0.0.1\",dport=\"45678\"");
    assert!(n >= 1.0, "no retransmit to 127.0.0.1:45678 seen with 30% loss\n{prom}");
}
