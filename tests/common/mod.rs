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

/// Directory with the compiled built-in objects (NAME.bpf.o).
pub fn object_dir() -> PathBuf {
    PathBuf::from(env!("EBPFX_OBJECT_DIR"))
}

/// The test-only object compiled from `tests/bpf/NAME.bpf.c`. build.rs does not build these
/// (users' builds never need them): the tests compile each one on first use, with the compiler,
/// flags and libbpf headers build.rs uses for the built-ins, into
/// `$CARGO_TARGET_TMPDIR/bpf-objects/`, again only when a source or header is newer than the
/// object. The object appears by rename, so test binaries running side by side never read a
/// half-written one.
pub fn test_object(name: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = manifest.join("tests").join("bpf").join(format!("{name}.bpf.c"));
    assert!(src.is_file(), "no test BPF source {}", src.display());
    let bpf_dir = manifest.join("bpf");
    let vmlinux_dir = bpf_dir.join("vmlinux");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bpf-objects");
    std::fs::create_dir_all(&out_dir).expect("create bpf-objects dir");
    let obj = out_dir.join(format!("{name}.bpf.o"));

    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut inputs = vec![src.clone()];
    for dir in [&bpf_dir, &vmlinux_dir] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            inputs.extend(
                rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "h")),
            );
        }
    }
    let newest_input = inputs.iter().filter_map(|p| mtime(p)).max();
    if let (Some(built), Some(newest)) = (mtime(&obj), newest_input) {
        if built >= newest {
            return obj;
        }
    }

    let tmp = out_dir.join(format!(".{name}.{}.tmp.o", std::process::id()));
    let out = Command::new(env!("EBPFX_BPF_CLANG"))
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-D__TARGET_ARCH_{}", env!("EBPFX_BPF_ARCH")))
        .arg("-I")
        .arg(&vmlinux_dir)
        .arg("-I")
        .arg(env!("EBPFX_BPF_INCLUDE"))
        .arg("-I")
        .arg(&bpf_dir)
        .arg("-idirafter")
        .arg(env!("EBPFX_BPF_MULTIARCH_INCLUDE"))
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&tmp)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} for {}: {e}", env!("EBPFX_BPF_CLANG"), src.display()));
    assert!(out.status.success(), "compiling {} failed:\n{}", src.display(), text(&out.stderr));
    let strip = env!("EBPFX_BPF_STRIP");
    if !strip.is_empty() {
        // Drops DWARF, keeps BTF and CO-RE relocations, as build.rs does for the built-ins.
        let st = Command::new(strip).arg("-g").arg(&tmp).status().expect("run llvm-strip");
        assert!(st.success(), "{strip} -g {} failed", tmp.display());
    }
    std::fs::rename(&tmp, &obj).unwrap_or_else(|e| panic!("rename {} -> {}: {e}", tmp.display(), obj.display()));
    obj
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
    if ci() {
        panic!("{test}: live BPF test needs root, and CI=true does not allow skipping it");
    }
    eprintln!("SKIPPED {test}: needs root (live BPF test)");
    false
}

/// A command name no other process on the machine has: `tag` plus this test process' id and a
/// counter, cut to the kernel's 15 bytes. Live tests count their own workload under it.
pub fn unique_comm(tag: &str) -> String {
    let mut name = format!("{tag}{}x{}", std::process::id(), unique());
    name.truncate(15);
    name
}

/// Runs `f` on a thread whose command name (comm) is `name`, and waits for it.
pub fn on_named_thread<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn named thread")
        .join()
        .expect("named thread panicked")
}

/// The cgroup v2 hierarchy: /sys/fs/cgroup/unified on a hybrid host, else /sys/fs/cgroup.
pub fn cgroup_v2_root() -> &'static str {
    if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    }
}

/// A cgroup (v2) of the test's own, removed on drop (after its processes have exited).
pub struct OwnCgroup(pub String);

impl OwnCgroup {
    pub fn new(tag: &str) -> OwnCgroup {
        let path = format!("{}/ebpfx-{tag}-{}-{}", cgroup_v2_root(), std::process::id(), unique());
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create cgroup {path}: {e}"));
        OwnCgroup(path)
    }
}

impl Drop for OwnCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
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
    let mut child = ebpfx_command(&[&["-v"], args].concat()).envs(env.iter().copied()).spawn().expect("spawn ebpfx");
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
            if ci() {
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

/// Kernel run counts (`bpf_prog_info.run_cnt`) of the programs with these ids, by program name.
/// They count while BPF statistics are on, which they are while ebpfx runs.
pub fn program_run_counts(ids: &[u32]) -> std::collections::HashMap<String, u64> {
    libbpf_rs::query::ProgInfoIter::default()
        .filter(|p| ids.contains(&p.id))
        .map(|p| (p.name.to_string_lossy().into_owned(), p.run_cnt))
        .collect()
}

/// Block completions the kernel ran no BPF program for, as the kernel's own run counts in a
/// prom text show them: runs of config's `issue` program minus runs of its `complete` program.
/// On the test VM the kernel now and then runs none of the programs attached to a block
/// completion (docs/events.md, "Completions the kernel runs no program for"); a test that counts
/// completions of its own writes tells that apart from a defect of ours with this.
pub fn completions_not_run(prom: &str, config: &str, issue: &str, complete: &str) -> u64 {
    let runs = |program: &str| {
        prom_value(prom, &format!("ebpfx_ebpf_program_run_count_total{{config=\"{config}\",program=\"{program}\"}}"))
            .unwrap_or(0.0) as u64
    };
    runs(issue).saturating_sub(runs(complete))
}

/// Whether a round that saw `seen` of its `expected` completions is to be run again: only when it
/// is short by no more than the completions the kernel ran no program for (`not_run`), and
/// before the third round. Anything else is for the caller's assertions to fail.
pub fn rerun_for_kernel_skips(what: &str, round: u32, expected: u64, seen: u64, not_run: u64) -> bool {
    let short = expected.saturating_sub(seen);
    let again = short > 0 && short <= not_run && round < 3;
    if again {
        eprintln!(
            "{what}: round {round} saw {seen} of {expected}; the kernel ran the completion program {not_run} times fewer than the issue program: running again"
        );
    }
    again
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

/// Runs a built-in while `workload` runs (after attach) and ends its window with Ctrl-C as soon
/// as the workload returns (the results still print): no test waits out a fixed window. Every
/// workload here waits for what it measures (its own syscalls, IO, sleeps, child processes), so
/// its events are in the maps when it returns. Returns the prom text.
pub fn run_builtin(name: &str, workload: impl FnOnce()) -> String {
    const SIGINT: i32 = 2;
    let run = start_attached(&["run", name, "--for", "120s", "--format", "prom"], 1);
    workload();
    run.signal(SIGINT);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{name}: {err}");
    assert!(err.contains("interrupted"), "{name}: the window did not end on Ctrl-C: {err}");
    assert!(!err.contains("warning"), "{name}: unexpected warning: {err}");
    promtool_check(&prom);
    prom
}

/// A config directory in ebpf_exporter's layout holding the test configs `names`:
/// `tests/configs/NAME.yaml` beside the object compiled from `tests/bpf/NAME.bpf.c`.
pub fn test_config_dir(names: &[&str]) -> Scratch {
    let dir = Scratch::new("configs");
    for name in names {
        add_test_config(&dir, name, name, name);
    }
    dir
}

/// Copies `tests/configs/YAML.yaml` and the test object `OBJECT.bpf.o` into `dir` as `AS.yaml`
/// and `AS.bpf.o`.
pub fn add_test_config(dir: &Scratch, as_name: &str, yaml: &str, object: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("configs").join(format!("{yaml}.yaml"));
    std::fs::copy(&src, dir.path().join(format!("{as_name}.yaml")))
        .unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    let obj = test_object(object);
    std::fs::copy(&obj, dir.path().join(format!("{as_name}.bpf.o")))
        .unwrap_or_else(|e| panic!("copy {}: {e}", obj.display()));
}

/// The `examples/probe_target` binary (a uprobe target), see [`example`].
pub fn probe_target() -> PathBuf {
    example("probe_target")
}

/// The `examples/functarget` binary (functions to time and count), see [`example`].
pub fn functarget() -> PathBuf {
    example("functarget")
}

/// The `examples/NAME` binary, built on first use with the profile of the running test binary:
/// `cargo test --test X` does not build examples by itself.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile> directory");
    let path = profile_dir.join("examples").join(name);
    if built.iter().any(|b| b == name) {
        return path;
    }
    if let Ok(cargo) = std::env::var("CARGO") {
        let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let profile = if profile == "debug" { "dev" } else { profile };
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--example", name, "--profile", profile, "--manifest-path"])
            .arg(&manifest)
            .stdin(Stdio::null());
        // The variables cargo sets for a test process (CARGO_MANIFEST_DIR, CARGO_PKG_*,
        // ...) would reach build scripts that watch them and make this build and the
        // next `cargo test` rebuild dependencies: the nested cargo gets the user's
        // environment without them.
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            let set_by_cargo = k == "OUT_DIR"
                || k == "CARGO_MANIFEST_DIR"
                || k == "CARGO_MANIFEST_PATH"
                || k == "CARGO_CRATE_NAME"
                || k == "CARGO_BIN_NAME"
                || k == "CARGO_PRIMARY_PACKAGE"
                || k == "CARGO_TARGET_TMPDIR"
                || k == "CARGO_RUSTC_CURRENT_DIR"
                || k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_BIN_EXE_");
            if set_by_cargo {
                cmd.env_remove(&key);
            }
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("run cargo build --example {name}: {e}"));
        assert!(out.status.success(), "cargo build --example {name} failed: {}", text(&out.stderr));
    }
    assert!(path.is_file(), "{} is missing: run `cargo build --example {name}` (with this profile)", path.display());
    built.push(name.to_string());
    path
}

/// `$PATH` for an ebpfx whose uprobe names `probe_target` without a directory: the examples
/// directory first, so libbpf resolves the name to our binary at attach time.
pub fn path_with_probe_target() -> String {
    let dir = probe_target().parent().expect("examples dir").display().to_string();
    format!("{dir}:/usr/bin:/bin")
}

/// Runs `probe_target` with `groups` (each `A,B,N[,TEXT]`); `cpu` pins it to that CPU.
pub fn run_probe_target(groups: &[&[u8]], cpu: Option<usize>) {
    use std::os::unix::ffi::OsStrExt;
    let mut cmd = Command::new(probe_target());
    cmd.args(groups.iter().map(|g| std::ffi::OsStr::from_bytes(g)));
    if let Some(cpu) = cpu {
        cmd.env("PROBE_CPU", cpu.to_string());
    }
    let out = cmd.output().expect("run probe_target");
    assert!(out.status.success(), "probe_target failed: {}", text(&out.stderr));
}

/// Unescapes a Prometheus label value (`\\`, `\"`, `\n`).
fn prom_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses the inside of `{...}` into (name, unescaped value) pairs, in printed order.
pub fn prom_parse_labels(labels: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = labels;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        out.push((name.trim_start_matches(',').to_string(), prom_unescape(&after[..end])));
        rest = &after[end + 1..];
    }
    out
}

/// Samples of metric `name` as (sorted label pairs, value), label values unescaped.
pub fn prom_rows(prom: &str, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
    prom_samples(prom, name)
        .into_iter()
        .map(|(labels, v)| {
            let mut l = prom_parse_labels(&labels);
            l.sort();
            (l, v)
        })
        .collect()
}

/// Value of the sample of metric `name` whose label set is exactly `labels` (any order).
pub fn prom_get(prom: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    want.sort();
    prom_rows(prom, name).into_iter().find(|(l, _)| *l == want).map(|(_, v)| v)
}

/// `tests/burner.c` compiled into `out` with `cc -O0 -fno-omit-frame-pointer`: BPF walks user
/// stacks by frame pointers, and rustc omits them unless the whole build forces them.
pub fn build_burner(out: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/burner.c");
    let st = Command::new("cc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(out)
        .arg(&src)
        .status()
        .expect("run cc (build-essential) to compile tests/burner.c");
    assert!(st.success(), "cc failed to compile {}", src.display());
    out.to_path_buf()
}

/// A running CPU burner ([`build_burner`]), burning when `start` returns, killed on drop. It
/// runs 60 s at most, so it is alive when ebpfx symbolizes its stacks at the window's end.
pub struct Burner(pub Child);

impl Burner {
    pub fn start(path: &Path) -> Burner {
        let mut child = Command::new(path).arg("60").stdout(Stdio::piped()).spawn().expect("start the burner");
        // It prints one line once it is burning.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("burner stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read burner output");
        assert!(line.starts_with("burning"), "burner said {line:?}");
        Burner(child)
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a tool a test needs works: true if `probe` succeeds; otherwise the test is skipped
/// (with a message) or, under CI=true, fails.
pub fn tool_ready(tool: &str, package: &str, probe: &mut Command) -> bool {
    let ok = probe.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let msg = format!("this test needs {tool} (Debian package: {package}); it is not usable here");
    if ci() {
        panic!("{msg} (CI=true: a missing tool is a failure)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Whether the tests run under CI=true (where a skip is a failure).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A real terminal: a private tmux server with one `cols` x `rows` window running `argv` in
/// `cwd`, killed (with what runs in it) on drop. Its socket is a path of its own, not a name
/// under /tmp/tmux-UID, where a stale socket of an earlier run with the same pid can make
/// new-session fail; new-session is tried three times.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Whether tmux is installed (see [`tool_ready`]).
    pub fn ready() -> bool {
        tool_ready("tmux", "tmux", Command::new("tmux").arg("-V"))
    }

    pub fn start(tag: &str, (cols, rows): (u16, u16), cwd: &Path, argv: &[&str]) -> Tmux {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let socket = format!("/tmp/ebpfx-tmux-{}-{tag}-{}-{nanos}", std::process::id(), unique());
        let mut last = String::new();
        for _ in 0..3 {
            let out = Command::new("tmux")
                .args(["-S", &socket, "-f", "/dev/null", "new-session", "-d"])
                .args(["-x", &cols.to_string(), "-y", &rows.to_string(), "-c"])
                .arg(cwd)
                .args(argv)
                .output()
                .expect("start tmux");
            if out.status.success() {
                return Tmux { socket };
            }
            last = format!("{}: {}", out.status, text(&out.stderr));
            let _ = std::fs::remove_file(&socket);
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("tmux new-session failed 3 times: {last}");
    }

    /// `tmux send-keys` to the window.
    pub fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-S", &self.socket, "send-keys", "-t", "0"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys {keys:?} failed");
    }

    /// The window's screen as text.
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-S", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .expect("tmux capture-pane");
        text(&out.stdout)
    }

    /// Polls the screen until `done` holds and returns it; fails after 30 s (a wedged program
    /// must fail the test, not hang it).
    pub fn wait_for(&self, done: impl Fn(&str) -> bool, what: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-S", &self.socket, "kill-server"]).status();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A histogram config in the shape of the built-in biolatency (device, operation, exp2 bucket
/// key) that loads with the built-in biolatency object: tests break one key of it at a time.
pub const BIOLATENCY_HIST: &str = r#"
metrics:
  histograms:
    - name: bio_latency_seconds
      help: Block IO latency
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 27
      bucket_multiplier: 0.000001
      labels:
        - name: device
          size: 4
          decoders: [{name: majorminor}]
        - name: operation
          size: 1
          padding: 3
          decoders: [{name: uint}]
        - name: bucket
          size: 8
          decoders: [{name: uint}]
"#;

/// A config directory holding NAME.yaml for each (name, text), each beside a copy of the
/// built-in biolatency object.
pub fn biolatency_config_dir(configs: &[(&str, &str)]) -> Scratch {
    let s = Scratch::new("configs");
    for (name, yaml) in configs {
        s.write(&format!("{name}.yaml"), yaml);
        std::fs::copy(object_dir().join("biolatency.bpf.o"), s.path().join(format!("{name}.bpf.o")))
            .expect("copy object");
    }
    s
}

/// Runs ebpfx with `args`: exit 2 (a usage or config error), no panic, and every needle in its
/// stderr.
pub fn assert_usage_error(args: &[&str], needles: &[&str]) {
    let out = ebpfx(args);
    assert_exit_2_saying(args, &out, &text(&out.stderr), needles);
}

/// [`assert_usage_error`] with the needles looked for in stdout and stderr (`check` lists
/// problems on stdout; other commands print the error on stderr).
pub fn assert_exit_2(args: &[&str], needles: &[&str]) {
    let out = ebpfx(args);
    assert_exit_2_saying(args, &out, &format!("{}{}", text(&out.stdout), text(&out.stderr)), needles);
}

fn assert_exit_2_saying(args: &[&str], out: &Output, said: &str, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "args {args:?}: expected exit 2, got {:?}\n{said}", out.status);
    for n in needles {
        assert!(said.contains(n), "args {args:?}: output lacks {n:?}:\n{said}");
    }
    assert!(!said.contains("panicked"), "{said}");
}

/// A free TCP port on 127.0.0.1 (the kernel's pick, released for the caller to listen on).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A peer process (node_exporter, Prometheus, Pushgateway), killed on drop.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the peer `bin ARGS` (its stderr into `log`, if given) and waits until it listens on
/// 127.0.0.1:`port`. None (a skip, with a message) when it is not installed, except under CI.
pub fn start_peer(bin: &str, args: &[String], port: u16, log: Option<&Path>) -> Option<Peer> {
    start_peer_when(bin, args, log, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
}

/// node_exporter with only its textfile collector, reading `dir`, listening on a free port of
/// 127.0.0.1 (returned), its stderr into `log` if given; None as for [`start_peer`].
pub fn start_node_exporter(dir: &Path, log: Option<&Path>) -> Option<(Peer, u16)> {
    let port = free_port();
    let args = [
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--collector.disable-defaults".into(),
        "--collector.textfile".into(),
        format!("--collector.textfile.directory={}", dir.display()),
    ];
    start_peer("prometheus-node-exporter", &args, port, log).map(|p| (p, port))
}

/// [`start_peer`], ready when `ready()` holds (30 s at most).
pub fn start_peer_when(bin: &str, args: &[String], log: Option<&Path>, ready: impl Fn() -> bool) -> Option<Peer> {
    let stderr = match log {
        Some(log) => Stdio::from(std::fs::File::create(log).expect("log file")),
        None => Stdio::null(),
    };
    let child = match Command::new(bin).args(args).stdout(Stdio::null()).stderr(stderr).spawn() {
        Ok(c) => c,
        Err(e) => {
            assert!(!ci(), "{bin} not available under CI: {e}");
            eprintln!("SKIPPED: {bin} not installed ({e})");
            return None;
        }
    };
    let peer = Peer(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ready() {
            return Some(peer);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = log.map(|l| std::fs::read_to_string(l).unwrap_or_default()).unwrap_or_default();
    panic!("{bin} did not become ready within 30 s: {log}");
}

/// ebpfx with `args`, no stdin, stdout and stderr piped, no `$EBPFX_CONFIG_DIR`, no colour.
pub fn ebpfx_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("EBPFX_CONFIG_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts ebpfx with `args` ([`ebpfx_command`]; see [`wait_or_kill`]).
pub fn spawn_ebpfx(args: &[&str]) -> Child {
    ebpfx_command(args).spawn().expect("spawn ebpfx")
}

/// Waits for `child` to exit; kills it and fails after `limit` (a safety net: a hang is the
/// defect, not slowness).
pub fn wait_or_kill(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A version-1 raw snapshot (what `run --save-raw` writes) of the built-in config `config` with
/// one map of (key bytes, value) rows, and no self metrics.
pub fn raw_snapshot_json(config: &str, map: &str, key_size: usize, rows: &[(Vec<u8>, u64)]) -> serde_json::Value {
    let yaml_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs").join(format!("{config}.yaml"));
    let yaml = std::fs::read_to_string(&yaml_path).expect("built-in config");
    let keys_hex: String = rows.iter().flat_map(|(k, _)| k.iter()).map(|b| format!("{b:02x}")).collect();
    serde_json::json!({
        "kind": "ebpfx-raw-snapshot",
        "version": 1,
        "window": {"start_unix_ns": 1_700_000_000_000_000_000u64, "end_unix_ns": 1_700_000_002_000_000_000u64, "length_ns": 2_000_000_000u64},
        "configs": [{
            "name": config,
            "origin": format!("configs/{config}.yaml (built-in)"),
            "yaml": yaml,
            "maps": [{
                "name": map, "key_size": key_size, "slots": 1, "per_cpu": false, "max_entries": 4096,
                "is_array": false, "keys_hex": keys_hex,
                "values": rows.iter().map(|r| r.1).collect::<Vec<u64>>(),
            }],
        }],
        "self_metrics": [],
    })
}

/// Event tools: runs ebpfx with `args` (attached, window started), then `workload`, then
/// interrupts it: (status, stdout, stderr).
pub fn run_events(args: &[&str], workload: impl FnOnce()) -> (Option<i32>, String, String) {
    let running = start_attached(args, 1);
    workload();
    running.signal(libc::SIGINT);
    running.finish()
}

/// JSON Lines: every line parses as one object.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"))).collect()
}

/// A tag unique to this test process and call.
pub fn unique_tag(tag: &str) -> String {
    format!("{tag}-{}-{}", std::process::id(), unique_comm("u"))
}

/// execsnoop: runs `/bin/true ARG I` for I in 0..300 under `ebpfx ARGS` (JSON Lines) and checks
/// that each run printed exactly one line (comm, ret, ppid, pid, time and the argument) and that
/// nothing was lost; returns stderr for checks of the caller's own.
pub fn execsnoop_sees_300_runs(args: &[&str], arg: &str) -> String {
    let (code, out, err) = run_events(args, || {
        for i in 0..300 {
            let st = Command::new("/bin/true").arg(arg).arg(i.to_string()).status().expect("run /bin/true");
            assert!(st.success());
        }
    });
    assert_eq!(code, Some(0), "{err}");
    let mine: Vec<serde_json::Value> = json_lines(&out)
        .into_iter()
        .filter(|v| v["args"].as_str().is_some_and(|a| a.starts_with(&format!("/bin/true {arg} "))))
        .collect();
    assert_eq!(mine.len(), 300, "{err}");
    let mut seen: Vec<u64> = mine
        .iter()
        .map(|v| {
            assert_eq!(v["comm"], "true", "{v}");
            assert_eq!(v["ret"], "0", "{v}");
            assert_eq!(v["ppid"].as_u64(), Some(u64::from(std::process::id())), "{v}");
            assert!(v["pid"].is_u64() && v["time"].is_string(), "{v}");
            let n = v["args"].as_str().and_then(|a| a.rsplit(' ').next()).and_then(|n| n.parse().ok());
            n.unwrap_or(u64::MAX)
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..300).collect::<Vec<u64>>());
    assert!(!err.contains("events lost"), "{err}");
    err
}
