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
    let prom = run_builtin("biosize", || {
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
    let prom = run_builtin("syslatency", || getpid_calls(20_000));
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
    let prom = run_builtin("runqlat", || spin_threads(4, Duration::from_millis(1200)));
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
    // Four spinning processes (more than CPUs) in a cgroup of the test's own: that cgroup's row
    // must be there, labelled with its path.
    let cg = OwnCgroup::new("runqlat");
    let prom = run_builtin("runqlat_cgroup", || {
        let script = format!("echo $$ > {}/cgroup.procs && exec timeout 1 sh -c 'while :; do :; done'", cg.0);
        let children: Vec<_> =
            (0..4).map(|_| Command::new("sh").args(["-c", &script]).spawn().expect("spawn spinner")).collect();
        for mut c in children {
            let _ = c.wait();
        }
    });
    let samples = prom_samples(&prom, "ebpfx_run_queue_latency_cgroup_seconds_count");
    let own: f64 = samples.iter().filter(|(l, _)| l.contains(&format!("cgroup=\"{}\"", cg.0))).map(|(_, v)| v).sum();
    assert!(own >= 4.0, "run queue waits of the test's cgroup {}: {own}\n{samples:?}", cg.0);
}

#[test]
fn live_offcpu_counts_sleeps() {
    if !require_root("live_offcpu_counts_sleeps") {
        return;
    }
    let _l = live_lock();
    // A thread with a command name of its own sleeps 5 x 200 ms: only its blocking is counted.
    let comm = unique_comm("eoff");
    let prom = run_builtin("offcpu", || {
        on_named_thread(&comm, || {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    });
    let label = format!("comm=\"{comm}\"");
    let n = prom_sum(&prom, "ebpfx_offcpu_seconds_count", &label);
    let sum = prom_sum(&prom, "ebpfx_offcpu_seconds_sum", &label);
    assert!((5.0..=8.0).contains(&n), "{comm} blocked {n} times, expected 5 sleeps\n{prom}");
    assert!((0.99..1.5).contains(&sum), "{comm} blocked {sum} s in total, expected 5 x 0.2 s");
}

#[test]
fn live_softirqs_and_hardirqs_during_io() {
    if !require_root("live_softirqs_and_hardirqs_during_io") {
        return;
    }
    let _l = live_lock();
    let s = Scratch::new("irq");
    let prom = run_builtin("softirqs", || direct_writes(s.path(), 200));
    let timer = prom_sum(&prom, "ebpfx_softirq_seconds_count", "softirq=\"timer\"")
        + prom_sum(&prom, "ebpfx_softirq_seconds_count", "softirq=\"rcu\"")
        + prom_sum(&prom, "ebpfx_softirq_seconds_count", "softirq=\"sched\"");
    assert!(timer > 0.0, "no timer/rcu/sched softirqs in 2 s\n{prom}");
    let prom = run_builtin("hardirqs", || direct_writes(s.path(), 200));
    let virtio = prom_sum(&prom, "ebpfx_hardirq_seconds_count", "virtio");
    assert!(virtio >= 1.0, "no virtio interrupts during 200 direct writes\n{prom}");
}

#[test]
fn live_timers_resolves_callbacks() {
    if !require_root("live_timers_resolves_callbacks") {
        return;
    }
    let _l = live_lock();
    let prom = run_builtin("timers", || {
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
    // A copy of `true` under a name of its own: exactly its 50 executions are counted.
    let s = Scratch::new("exec");
    let comm = unique_comm("etrue");
    let exe = s.path().join(&comm);
    std::fs::copy("/bin/true", &exe).expect("copy /bin/true");
    let prom = run_builtin("exec", || {
        for _ in 0..50 {
            let st = Command::new(&exe).status().expect("run true copy");
            assert!(st.success());
        }
    });
    let n = prom_value(&prom, &format!("ebpfx_exec_total{{comm=\"{comm}\"}}")).unwrap_or(0.0);
    assert_eq!(n, 50.0, "exec of {comm}\n{prom}");
}

#[test]
fn live_pagefaults_counts_touched_pages() {
    if !require_root("live_pagefaults_counts_touched_pages") {
        return;
    }
    let _l = live_lock();
    // A thread with a name of its own touches each page of a fresh 100 MiB anonymous mapping.
    let comm = unique_comm("epf");
    const PAGES: usize = 25_600;
    let prom = run_builtin("pagefaults", || {
        on_named_thread(&comm, || {
            let len = PAGES * 4096;
            // SAFETY: a private anonymous mapping of `len` bytes, written only within its bounds
            // and unmapped before the closure returns.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED, "mmap 100 MiB");
                // One fault per 4 KiB page, also where transparent huge pages are always on.
                libc::madvise(p, len, libc::MADV_NOHUGEPAGE);
                let base = p as *mut u8;
                for i in 0..PAGES {
                    std::ptr::write_volatile(base.add(i * 4096), 1);
                }
                libc::munmap(p, len);
            }
        })
    });
    let n = prom_sum(&prom, "ebpfx_page_faults_total", &format!("comm=\"{comm}\""));
    assert!(
        (PAGES as f64..=PAGES as f64 + 200.0).contains(&n),
        "page faults of {comm} touching {PAGES} pages: {n}\n{prom}"
    );
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
    let prom = run_builtin("oomkill", || {
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
    let obj = test_object("drop30");
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
    let prom = run_builtin("tcpretrans", || {
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
