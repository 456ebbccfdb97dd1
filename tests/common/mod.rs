//! Shared helpers for the integration tests.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ebpfx")
}

/// Directory with the compiled built-in objects (NAME.bpf.o) and test objects (tests/NAME.bpf.o).
pub fn object_dir() -> PathBuf {
    PathBuf::from(env!("EBPFX_OBJECT_DIR"))
}

/// A scratch directory on a real disk (O_DIRECT does not work on tmpfs), removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = base.join(format!("{tag}-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Live tests need root. Outside CI they skip (with a message) when not root; under CI=true a
/// skip is a failure.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{test}: live BPF test needs root, and CI=true does not allow skipping it");
    }
    eprintln!("SKIPPED {test}: needs root (live BPF test)");
    false
}

/// Live tests load programs and count events machine-wide: run them one at a time.
pub fn live_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs ebpfx with `args` to completion.
pub fn ebpfx(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("EBPFX_CONFIG_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run ebpfx")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A running ebpfx whose programs are attached (it has printed its `-v` attach line).
pub struct Running {
    pub child: Child,
    stderr_lines: Vec<String>,
    stderr_rest: Option<std::thread::JoinHandle<String>>,
    later: std::sync::mpsc::Receiver<String>,
}

/// Starts ebpfx with `-v` added and waits until every config reports its programs attached
/// and the window has started.
pub fn start_attached(args: &[&str], configs: usize) -> Running {
    start_attached_env(args, configs, &[])
}

/// [`start_attached`] with extra environment variables.
pub fn start_attached_env(args: &[&str], configs: usize, env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(bin())
        .envs(env.iter().copied())
        .arg("-v")
        .args(args)
        .env_remove("EBPFX_CONFIG_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ebpfx");
    let stderr = child.stderr.take().expect("stderr");
    let mut reader = BufReader::new(stderr);
    let mut lines = Vec::new();
    let mut attached = 0;
    let mut started = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read stderr");
        if n == 0 {
            let out = child.wait_with_output().expect("wait");
            panic!("ebpfx exited before attaching ({:?}): {}\n{}", out.status, lines.join(""), text(&out.stdout));
        }
        if line.contains("programs attached in") {
            attached += 1;
        }
        // The window (and the run statistics) start after every config is attached.
        if line.contains("window started") {
            assert_eq!(attached, configs, "expected {configs} configs to attach: {}", lines.join(""));
            started = true;
        }
        lines.push(line);
        assert!(Instant::now() < deadline, "ebpfx did not attach within 60 s");
    }
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = tx.send(line.clone());
                    s.push_str(&line);
                }
            }
        }
        s
    });
    Running { child, stderr_lines: lines, stderr_rest: Some(rest), later: rx }
}

impl Running {
    /// Kernel ids of the attached programs, from the `-v` attach lines.
    pub fn program_ids(&self) -> Vec<u32> {
        self.stderr_lines
            .iter()
            .filter_map(|l| l.split("(program ids ").nth(1))
            .flat_map(|rest| {
                rest.trim_end().trim_end_matches(')').split(',').filter_map(|id| id.parse().ok()).collect::<Vec<u32>>()
            })
            .collect()
    }
    /// Blocks until a later stderr line contains `needle` (60 s at most).
    pub fn wait_stderr(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.later.recv_timeout(Duration::from_secs(1)) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        panic!("ebpfx never printed {needle:?}");
    }
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill with a pid we own and a valid signal number.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }
    /// Waits for exit: (status code, stdout, stderr).
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        let status = self.child.wait().expect("wait ebpfx");
        let rest = self.stderr_rest.take().and_then(|h| h.join().ok()).unwrap_or_default();
        (status.code(), out, format!("{}{}", self.stderr_lines.join(""), rest))
    }
}

/// `dd` of `blocks` 4 KiB blocks with O_DIRECT into `dir/name`: that many write requests.
pub fn direct_writes(dir: &Path, blocks: usize) {
    let st = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", dir.join("io").display()))
        .args(["bs=4k", &format!("count={blocks}"), "oflag=direct", "status=none"])
        .status()
        .expect("run dd");
    assert!(st.success(), "dd failed");
}

/// Makes `n` getpid system calls from this thread.
pub fn getpid_calls(n: usize) {
    for _ in 0..n {
        // SAFETY: getpid has no arguments and no side effects.
        unsafe {
            libc::syscall(libc::SYS_getpid);
        }
    }
}

/// Value of the first sample line starting with `series` (name plus labels, exactly as printed).
pub fn prom_value(prom: &str, series: &str) -> Option<f64> {
    prom.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Runs `promtool check metrics` on `text`; under CI=true promtool must exist.
pub fn promtool_check(prom: &str) {
    use std::io::Write;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("promtool not available under CI: {e}");
            }
            eprintln!("promtool not found ({e}): skipping the promtool check");
            return;
        }
    };
    child.stdin.take().expect("stdin").write_all(prom.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({:?}):\n{}{}\n--- input ---\n{prom}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Ids of the BPF programs loaded on the machine right now.
pub fn loaded_program_ids() -> Vec<u32> {
    libbpf_rs::query::ProgInfoIter::default().map(|p| p.id).collect()
}

/// Sample lines of metric `name` (exact family + optional suffix such as `_count`), as
/// (labels text, value).
pub fn prom_samples(prom: &str, name: &str) -> Vec<(String, f64)> {
    prom.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name).then(|| (labels.to_string(), value.parse().unwrap_or(f64::NAN)))
        })
        .collect()
}

/// Sum of the values of metric `name` whose labels contain `needle`.
pub fn prom_sum(prom: &str, name: &str, needle: &str) -> f64 {
    prom_samples(prom, name).iter().filter(|(l, _)| l.contains(needle)).map(|(_, v)| v).sum()
}

/// Runs a shell command, panicking with its output when it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("run sh");
    assert!(out.status.success(), "`{cmd}` failed: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// Runs a built-in for `window` while `workload` runs (after attach); returns the prom text.
pub fn run_builtin(name: &str, window: &str, workload: impl FnOnce()) -> String {
    let run = start_attached(&["run", name, "--for", window, "--format", "prom"], 1);
    workload();
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{name}: {err}");
    assert!(!err.contains("warning"), "{name}: unexpected warning: {err}");
    promtool_check(&prom);
    prom
}
