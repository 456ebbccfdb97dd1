//! Live test of key creation across CPUs: every count created in bpf/ must survive two CPUs
//! creating the same map key at the same moment (the insert of one of them then fails).
//!
//! The workload is the test's own: system call numbers no kernel defines (the tracepoints fire
//! for them too, and nothing else on the machine makes them), a fresh number per round, made by
//! one thread pinned to each CPU, released together by a spin barrier.
mod common;
use common::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Numbers far above any real system call; round r uses BASE + r.
const BASE: i64 = 7_340_000;
const ROUNDS: usize = 400;
/// Calls per thread per round.
const CALLS: usize = 3;

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only touch
    // the set we own, for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn online_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// One thread per CPU; in each round every thread makes CALLS calls of a number nobody has made
/// yet, all starting within nanoseconds of each other. Returns the number of threads.
fn racing_syscalls() -> usize {
    let threads = online_cpus().max(2);
    let arrived = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let arrived = Arc::clone(&arrived);
            std::thread::spawn(move || {
                pin_to(t % online_cpus());
                for r in 0..ROUNDS {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    while arrived.load(Ordering::SeqCst) < threads * (r + 1) {
                        std::hint::spin_loop();
                    }
                    for _ in 0..CALLS {
                        // SAFETY: an undefined system call number only returns ENOSYS.
                        unsafe {
                            libc::syscall(BASE + r as i64);
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("racing thread");
    }
    threads
}

#[test]
fn live_fresh_keys_created_on_all_cpus_at_once_lose_no_count() {
    if !require_root("live_fresh_keys_created_on_all_cpus_at_once_lose_no_count") {
        return;
    }
    let _l = live_lock();
    if online_cpus() < 2 {
        eprintln!("only one CPU: the race cannot happen here; checking the counts anyway");
    }
    // syscalls: a per-CPU hash counter (ebpfx_count_percpu); syslatency: a per-CPU hash
    // histogram through EBPFX_HIST_OBSERVE (ebpfx_count).
    let run = start_attached(&["run", "syscalls", "syslatency", "--for", "3s", "--format", "prom"], 2);
    let threads = racing_syscalls();
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("full"), "a map filled up: {err}");
    let want = (threads * CALLS) as f64;
    // Parsed once: label text -> value.
    let by_label =
        |metric: &str| -> std::collections::HashMap<String, f64> { prom_samples(&prom, metric).into_iter().collect() };
    let counts = by_label("ebpfx_syscalls_total");
    let hists = by_label("ebpfx_syscall_latency_seconds_count");
    let mut lost = Vec::new();
    for r in 0..ROUNDS {
        let labels = format!("syscall=\"unknown_syscall:{}\"", BASE + r as i64);
        let count = counts.get(&labels).copied().unwrap_or(0.0);
        let hist = hists.get(&labels).copied().unwrap_or(0.0);
        if count != want || hist != want {
            lost.push(format!("round {r}: syscalls_total {count}, syscall_latency_seconds_count {hist}"));
        }
    }
    assert!(
        lost.is_empty(),
        "expected {want} per round, {} of {ROUNDS} rounds differ:\n{}",
        lost.len(),
        lost.join("\n")
    );
    promtool_check(&prom);
}
