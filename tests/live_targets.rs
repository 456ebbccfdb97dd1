//! Targets filtered in the kernel (-p, --comm, --cgroup, -- COMMAND) and kernel-side --by labels.
//! Each live test makes its own getppid calls beside the same calls from a process it also
//! makes (noise), and counts exactly its own.
mod common;
use common::*;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};

const PYTHON: &str = "/usr/bin/python3";
const K: usize = 3000;

/// A python process that makes `K` getppid calls once released (startup happens before).
struct Worker(Child);

impl Worker {
    fn start(program: &str) -> Worker {
        let script = format!("import os,sys\nsys.stdin.read(1)\nfor _ in range({K}): os.getppid()\n");
        let child = Command::new(program)
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        Worker(child)
    }
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
    fn release(&mut self) {
        let mut stdin = self.0.stdin.take().expect("stdin");
        stdin.write_all(b"x").expect("release worker");
    }
    fn wait(mut self) {
        let st = self.0.wait().expect("wait worker");
        assert!(st.success(), "worker failed: {st:?}");
    }
}

/// Runs syscalls with `flags` while `workers` make their calls; returns the prom text.
fn syscalls_with(flags: &[&str], mut workers: Vec<Worker>) -> String {
    const SIGINT: i32 = 2;
    let mut args = vec!["run", "syscalls", "--for", "120s", "--format", "prom"];
    args.extend_from_slice(flags);
    let run = start_attached(&args, 1);
    for w in &mut workers {
        w.release();
    }
    for w in workers {
        w.wait();
    }
    run.signal(SIGINT);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);
    prom
}

fn getppid_total(prom: &str) -> f64 {
    prom_sum(prom, "ebpfx_syscalls_total", "syscall=\"getppid\"")
}

/// A python3 under a unique name: the kernel's command name is the name it was run as.
fn named_python(dir: &Scratch, comm: &str) -> String {
    let link = dir.path().join(comm);
    std::os::unix::fs::symlink(PYTHON, &link).expect("symlink python3");
    link.display().to_string()
}

#[test]
fn live_syscalls_pid_counts_only_that_process() {
    if !require_root("live_syscalls_pid_counts_only_that_process") {
        return;
    }
    let _l = live_lock();
    let mine = Worker::start(PYTHON);
    let noise = Worker::start(PYTHON);
    let pid = mine.pid();
    let prom = syscalls_with(&["-p", &pid], vec![mine, noise]);
    assert_eq!(getppid_total(&prom), K as f64, "{prom}");
}

#[test]
fn live_syscalls_comm_counts_only_that_name() {
    if !require_root("live_syscalls_comm_counts_only_that_name") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("comm");
    let comm = unique_comm("tgc");
    let mine = Worker::start(&named_python(&dir, &comm));
    let noise = Worker::start(PYTHON);
    let prom = syscalls_with(&["--comm", &comm], vec![mine, noise]);
    assert_eq!(getppid_total(&prom), K as f64, "{prom}");
}

#[test]
fn live_syscalls_cgroup_counts_tasks_in_it_and_below() {
    if !require_root("live_syscalls_cgroup_counts_tasks_in_it_and_below") {
        return;
    }
    let _l = live_lock();
    let cg = OwnCgroup::new("targets");
    let nested = format!("{}/below", cg.0);
    std::fs::create_dir(&nested).expect("create nested cgroup");
    let a = Worker::start(PYTHON);
    let b = Worker::start(PYTHON);
    let noise = Worker::start(PYTHON);
    std::fs::write(format!("{}/cgroup.procs", cg.0), a.pid()).expect("move a into the cgroup");
    std::fs::write(format!("{nested}/cgroup.procs"), b.pid()).expect("move b into the nested cgroup");
    let prom = syscalls_with(&["--cgroup", &cg.0], vec![a, b, noise]);
    let _ = std::fs::remove_dir(&nested);
    assert_eq!(getppid_total(&prom), 2.0 * K as f64, "{prom}");
}

#[test]
fn live_syscalls_command_follows_its_fork_and_ends_with_it() {
    if !require_root("live_syscalls_command_follows_its_fork_and_ends_with_it") {
        return;
    }
    let _l = live_lock();
    // A sibling of the command (another child of the test) makes the same calls all along.
    let mut noise = Command::new(PYTHON)
        .args(["-c", "import os,time\nt=time.time()\nwhile time.time()-t < 20: os.getppid()\n"])
        .spawn()
        .expect("start noise");
    // The command makes no getppid call itself; its forked child makes K, then it exits 7.
    let script = format!(
        "import os\npid = os.fork()\nif pid == 0:\n    for _ in range({K}): os.getppid()\n    os._exit(0)\nos.waitpid(pid, 0)\nraise SystemExit(7)\n"
    );
    // No --for and no Ctrl-C: the window must end when the command exits.
    let out = ebpfx(&["run", "syscalls", "--format", "prom", "--", PYTHON, "-c", &script]);
    let _ = noise.kill();
    let _ = noise.wait();
    let prom = text(&out.stdout);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("exited with status 7"), "the command's status is reported: {err}");
    assert_eq!(getppid_total(&prom), K as f64, "{prom}");
    promtool_check(&prom);
}

#[test]
fn live_syscalls_by_pid_comm_in_the_kernel() {
    if !require_root("live_syscalls_by_pid_comm_in_the_kernel") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("bypid");
    let comm = unique_comm("tgb");
    let mine = Worker::start(&named_python(&dir, &comm));
    let noise = Worker::start(PYTHON);
    let pid = mine.pid();
    let saved = dir.path().join("run.json");
    let saved_arg = saved.to_str().expect("utf-8 path");
    let prom = syscalls_with(&["--by", "syscall,pid,comm", "--save-raw", saved_arg], vec![mine, noise]);
    let labels = [("syscall", "getppid"), ("pid", pid.as_str()), ("comm", comm.as_str())];
    let got = prom_get(&prom, "ebpfx_syscalls_total", &labels);
    assert_eq!(got, Some(K as f64), "{prom}");
    // The saved snapshot decodes the same kernel-side labels, without the kernel.
    let out = ebpfx(&["render", saved_arg, "--format", "prom"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rendered = text(&out.stdout);
    assert_eq!(prom_get(&rendered, "ebpfx_syscalls_total", &labels), Some(K as f64), "{rendered}");
    // Without --by, the kernel leaves the fields zero and the labels are not there.
    let plain = prom_samples(&prom, "ebpfx_syscalls_total");
    assert!(plain.iter().all(|(l, _)| l.contains("pid=\"")), "every series carries pid: {prom}");
}

#[test]
fn live_syscalls_without_by_keeps_its_labels() {
    if !require_root("live_syscalls_without_by_keeps_its_labels") {
        return;
    }
    let _l = live_lock();
    let mine = Worker::start(PYTHON);
    let pid = mine.pid();
    let prom = syscalls_with(&["-p", &pid], vec![mine]);
    let rows = prom_rows(&prom, "ebpfx_syscalls_total");
    assert!(!rows.is_empty());
    for (labels, _) in rows {
        let names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["syscall"], "{prom}");
    }
}

#[test]
fn unsupported_target_is_refused_naming_config_and_flag() {
    // Checked before anything loads: no root needed.
    let out = ebpfx(&["run", "biolatency", "--for", "1s", "-p", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("config biolatency does not support --pid"), "{err}");
    let out = ebpfx(&["run", "syscalls", "--for", "1s", "--by", "disk"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("disk"), "{}", text(&out.stderr));
    let out = ebpfx(&["run", "syscalls", "--for", "1s", "--comm", "a-name-too-long-for-comm"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ebpfx(&["run", "syscalls", "--for", "1s", "--", "/nonexistent/command"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("command not found"), "{}", text(&out.stderr));
}

/// tests/sleeper.c, compiled once per test process with frame pointers.
fn sleeper_path() -> &'static std::path::PathBuf {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sleeper.c");
        let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ebpfx_sleeper");
        let st = Command::new("cc")
            .args(["-O0", "-fno-omit-frame-pointer", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("run cc (build-essential) to compile tests/sleeper.c");
        assert!(st.success(), "compiling tests/sleeper.c failed");
        out
    })
}

/// A sleeper (run as `program`), holding until released.
fn start_sleeper(program: &std::path::Path, ms: &str) -> Child {
    Command::new(program)
        .arg(ms)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()))
}

/// Releases a sleeper and waits for it to say that it slept (it stays alive after).
fn sleep_once(child: &mut Child) {
    use std::io::BufRead as _;
    child.stdin.as_mut().expect("stdin").write_all(b"x").expect("release sleeper");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("read sleeper");
    assert_eq!(line.trim(), "slept");
}

fn end_sleeper(mut child: Child) {
    drop(child.stdin.take());
    let st = child.wait().expect("wait sleeper");
    assert!(st.success(), "sleeper failed: {st:?}");
}

#[test]
fn live_offcputime_attributes_a_sleep_to_its_stack() {
    if !require_root("live_offcputime_attributes_a_sleep_to_its_stack") {
        return;
    }
    const SIGINT: i32 = 2;
    let _l = live_lock();
    let dir = Scratch::new("offcpu");
    let noisy = dir.path().join("ebpfx_noisy");
    std::os::unix::fs::symlink(sleeper_path(), &noisy).expect("symlink the sleeper");
    let mut mine = start_sleeper(sleeper_path(), "500");
    let mut noise = start_sleeper(&noisy, "300");
    let pid = mine.id().to_string();
    let run = start_attached(&["run", "offcputime", "--for", "120s", "--format", "folded", "-p", &pid], 1);
    sleep_once(&mut mine);
    sleep_once(&mut noise);
    run.signal(SIGINT);
    // User stacks are symbolized through the live processes: they end after ebpfx.
    let (code, folded, err) = run.finish();
    end_sleeper(mine);
    end_sleeper(noise);
    assert_eq!(code, Some(0), "{err}");
    let slept: Vec<(&str, u64)> = folded
        .lines()
        .filter_map(|l| l.rsplit_once(' ').map(|(s, n)| (s, n.parse::<u64>().unwrap_or(0))))
        .filter(|(s, _)| s.contains("main;ebpfx_sleep_outer;ebpfx_sleep_inner;") && s.contains("nanosleep"))
        .collect();
    assert_eq!(slept.len(), 1, "one stack for the sleep:\n{folded}");
    let (stack, us) = slept[0];
    assert!(stack.starts_with("ebpfx_sleeper;"), "comm is the root frame: {stack}");
    assert!(us >= 500_000, "a 500 ms sleep is at least 500000 us off CPU, got {us}: {stack}");
    assert!(!folded.lines().any(|l| l.starts_with("ebpfx_noisy;")), "the other sleeper is not traced:\n{folded}");
}

#[test]
fn live_runqlat_by_pid_comm_for_one_process() {
    if !require_root("live_runqlat_by_pid_comm_for_one_process") {
        return;
    }
    const SIGINT: i32 = 2;
    let _l = live_lock();
    let comm = unique_comm("tgq");
    let pid = std::process::id().to_string();
    let run =
        start_attached(&["run", "runqlat", "--for", "120s", "--format", "prom", "--by", "pid,comm", "-p", &pid], 1);
    // More runnable threads than CPUs, named `comm`: they wait on the run queue.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::Builder::new()
                .name(comm.clone())
                .spawn(|| {
                    let t = std::time::Instant::now();
                    let mut x = 0u64;
                    while t.elapsed() < std::time::Duration::from_millis(800) {
                        x = x.wrapping_mul(31).wrapping_add(7);
                        std::hint::black_box(x);
                        if x % 4096 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
                .expect("spawn spinner")
        })
        .collect();
    for t in threads {
        t.join().expect("spinner");
    }
    run.signal(SIGINT);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    promtool_check(&prom);
    let counts = prom_rows(&prom, "ebpfx_run_queue_latency_seconds_count");
    assert!(!counts.is_empty(), "{prom}");
    // -p: every series is this process; --by pid,comm: split by the waiting task's name.
    for (labels, _) in &counts {
        let names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["comm", "pid"], "{prom}");
        assert!(labels.contains(&("pid".to_string(), pid.clone())), "another process counted: {labels:?}");
    }
    let mine = prom_get(&prom, "ebpfx_run_queue_latency_seconds_count", &[("pid", &pid), ("comm", &comm)]);
    assert!(mine.is_some_and(|n| n > 0.0), "no series for the spinners ({comm}):\n{prom}");
}

#[test]
fn live_syscalls_tid_counts_only_that_thread() {
    if !require_root("live_syscalls_tid_counts_only_that_thread") {
        return;
    }
    const SIGINT: i32 = 2;
    let _l = live_lock();
    // Two threads of this process, each making K getppid calls once released: one is traced.
    let spawn = || {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel::<i64>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            // SAFETY: gettid has no arguments and cannot fail.
            let tid = unsafe { libc::syscall(libc::SYS_gettid) };
            tid_tx.send(tid).expect("send tid");
            go_rx.recv().expect("release");
            for _ in 0..K {
                // SAFETY: getppid has no arguments and no side effects.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
        });
        (tid_rx.recv().expect("tid"), go_tx, h)
    };
    let (tid, go_mine, mine) = spawn();
    let (_, go_noise, noise) = spawn();
    let tid = tid.to_string();
    let run = start_attached(&["run", "syscalls", "--for", "120s", "--format", "prom", "--tid", &tid], 1);
    go_mine.send(()).expect("release mine");
    go_noise.send(()).expect("release noise");
    mine.join().expect("mine");
    noise.join().expect("noise");
    run.signal(SIGINT);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(getppid_total(&prom), K as f64, "{prom}");
}

#[test]
fn live_syscalls_by_pid_comm_is_syscount_per_process() {
    if !require_root("live_syscalls_by_pid_comm_is_syscount_per_process") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("bypp");
    let comm = unique_comm("tgp");
    let mine = Worker::start(&named_python(&dir, &comm));
    let pid = mine.pid();
    // bcc's syscount -P: per process, the syscall label summed away in user space (regroup).
    let prom = syscalls_with(&["--by", "pid,comm", "-p", &pid], vec![mine]);
    let rows = prom_rows(&prom, "ebpfx_syscalls_total");
    assert_eq!(rows.len(), 1, "one process, one series: {prom}");
    let (labels, total) = &rows[0];
    assert_eq!(labels, &[("comm".to_string(), comm.clone()), ("pid".to_string(), pid.clone())], "{prom}");
    assert!(*total >= K as f64, "all its calls, getppid included: {total}");
}
