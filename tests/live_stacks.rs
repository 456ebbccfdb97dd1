//! Live tests of stacks (root): depth up to perf_event_max_stack (a 60-deep recursion reaches
//! `main`), user frames of a stripped binary named through its separate debug info (found by
//! `.gnu_debuglink` and by build id), and the warning when a process' maps cannot be read.
//!
//! The workload is `tests/deep.c` (main -> ebpfx_deep_recurse x (DEPTH + 1) -> a sleep or a CPU
//! burn), run under a unique command name, compiled with frame pointers.
mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SIGINT: i32 = 2;
const FRAME: &str = "ebpfx_deep_recurse";

/// Compiles tests/deep.c into `out` (`extra`: more cc flags).
fn compile_deep(out: &Path, extra: &[&str]) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/deep.c");
    let st = Command::new("cc")
        .args(["-O0", "-fno-omit-frame-pointer"])
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg(&src)
        .status()
        .expect("run cc (build-essential) to compile tests/deep.c");
    assert!(st.success(), "compiling tests/deep.c failed");
}

/// A running tests/deep.c, held until released; killed on drop.
struct Deep(Child);

impl Deep {
    fn start(program: &Path, args: &[&str]) -> Deep {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        Deep(child)
    }
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
    /// Releases it and waits until it has done its sleep or burn (it stays alive after).
    fn run_once(&mut self) {
        self.0.stdin.as_mut().expect("stdin").write_all(b"x").expect("release deep");
        let mut line = String::new();
        BufReader::new(self.0.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("read deep");
        assert_eq!(line.trim(), "done");
    }
}

impl Drop for Deep {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The folded stacks of `ebpfx run offcputime -p PID` around one run of `deep`.
fn offcputime_of(deep: &mut Deep) -> (String, String) {
    let pid = deep.pid();
    let run = start_attached(&["run", "offcputime", "--for", "120s", "--format", "folded", "-p", &pid], 1);
    deep.run_once();
    run.signal(SIGINT);
    let (code, folded, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    (folded, err)
}

/// The user frames of `line` from `main` on: `main` and the recursion frames right after it.
fn frames_after_main(line: &str) -> Option<usize> {
    let (stack, _) = line.rsplit_once(' ')?;
    let frames: Vec<&str> = stack.split(';').collect();
    let main = frames.iter().position(|f| *f == "main")?;
    Some(frames[main + 1..].iter().take_while(|f| **f == FRAME).count())
}

#[test]
fn live_offcputime_deep_recursion_reaches_main() {
    if !require_root("live_offcputime_deep_recursion_reaches_main") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("deep");
    let comm = unique_comm("deep");
    let program = dir.path().join(&comm);
    compile_deep(&program, &[]);
    let mut deep = Deep::start(&program, &["60", "sleep"]);
    let raw = dir.path().join("raw.json");
    let raw = raw.to_str().expect("utf-8 path");
    let pid = deep.pid();
    let run =
        start_attached(&["run", "offcputime", "--for", "120s", "--format", "folded", "-p", &pid, "--save-raw", raw], 1);
    deep.run_once();
    run.signal(SIGINT);
    let (code, folded, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("[lost stack]"), "{err}");
    // The saved snapshot carries the stacks: rendered later (the process still alive for its
    // user frames), it prints the same folded stacks.
    let rendered = ebpfx(&["render", raw, "--format", "folded"]);
    assert_eq!(rendered.status.code(), Some(0), "{}", text(&rendered.stderr));
    assert_eq!(text(&rendered.stdout), folded, "render of the saved snapshot differs from the live output");
    let line = folded
        .lines()
        .find(|l| l.starts_with(&format!("{comm};")) && l.contains(FRAME) && l.contains("nanosleep"))
        .unwrap_or_else(|| panic!("no folded line of {comm}'s sleep:\n{folded}"));
    // 60 recursive calls below the first: 61 frames, then the kernel frames of the sleep.
    assert_eq!(frames_after_main(line), Some(61), "main and 61 frames of {FRAME} in: {line}");
}

#[test]
fn live_profile_deep_recursion_reaches_main() {
    if !require_root("live_profile_deep_recursion_reaches_main") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("deepburn");
    let comm = unique_comm("deepb");
    let program = dir.path().join(&comm);
    compile_deep(&program, &[]);
    let mut deep = Deep::start(&program, &["60", "burn", "1500"]);
    let run = start_attached(&["run", "profile", "--for", "60s", "--format", "folded"], 1);
    deep.run_once();
    run.signal(SIGINT);
    let (code, folded, err) = run.finish();
    drop(deep);
    assert_eq!(code, Some(0), "{err}");
    let ours: Vec<&str> = folded.lines().filter(|l| l.starts_with(&format!("{comm};"))).collect();
    let deepest: Vec<usize> = ours.iter().filter_map(|l| frames_after_main(l)).collect();
    // Samples of the burn at the bottom: main, then all 61 recursion frames.
    assert!(deepest.contains(&61), "no sample of {comm} from main through 61 frames of {FRAME}:\n{}", ours.join("\n"));
}

/// Runs `objcopy`/`strip` with `args`, which must succeed.
fn tool(program: &str, args: &[&str]) {
    let st = Command::new(program).args(args).status().unwrap_or_else(|e| panic!("run {program} (binutils): {e}"));
    assert!(st.success(), "{program} {args:?} failed");
}

/// `path` built with -g, its debug info moved out to `debug`, and stripped of every symbol
/// (`link`: with a .gnu_debuglink to `debug`'s file name).
fn split_debug(path: &Path, debug: &Path, link: bool) {
    compile_deep(path, &["-g"]);
    let (p, d) = (path.to_str().expect("utf-8 path"), debug.to_str().expect("utf-8 path"));
    tool("objcopy", &["--only-keep-debug", p, d]);
    tool("strip", &["--strip-all", p]);
    if link {
        tool("objcopy", &[&format!("--add-gnu-debuglink={d}"), p]);
    }
    let syms = Command::new("nm").arg(p).output().expect("run nm");
    assert!(!text(&syms.stdout).contains(FRAME), "{p} still names {FRAME} itself");
}

/// The build id of `path` as hex (readelf -n).
fn build_id(path: &Path) -> String {
    let out = Command::new("readelf").arg("-n").arg(path).output().expect("run readelf");
    text(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(|s| s.trim().to_string()))
        .unwrap_or_else(|| panic!("{} has no build id", path.display()))
}

/// Asserts that the offcputime stacks of `program` (a small recursion) name its functions.
fn assert_named(program: &Path) {
    let comm = program.file_name().and_then(|n| n.to_str()).expect("name").to_string();
    let mut deep = Deep::start(program, &["2", "sleep"]);
    let (folded, err) = offcputime_of(&mut deep);
    let line = folded
        .lines()
        .find(|l| l.starts_with(&format!("{comm};")) && l.contains("nanosleep"))
        .unwrap_or_else(|| panic!("no folded line of {comm}'s sleep:\n{folded}\n{err}"));
    assert!(line.contains(&format!("main;{FRAME};{FRAME};{FRAME};")), "functions not named: {line}");
}

#[test]
fn live_stripped_binary_named_through_gnu_debuglink() {
    if !require_root("live_stripped_binary_named_through_gnu_debuglink") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("debuglink");
    let comm = unique_comm("dlink");
    let program = dir.path().join(&comm);
    // The debug file beside the binary, found through its .gnu_debuglink.
    split_debug(&program, &dir.path().join(format!("{comm}.debug")), true);
    assert_named(&program);
}

/// A file under /usr/lib/debug, removed on drop (with the directories it created).
struct DebugFile(Vec<PathBuf>);

impl DebugFile {
    fn place(from: &Path, to: PathBuf) -> DebugFile {
        let mut created = Vec::new();
        let mut missing: Vec<PathBuf> = to.ancestors().skip(1).filter(|a| !a.exists()).map(Path::to_path_buf).collect();
        missing.reverse();
        for d in &missing {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
            created.push(d.clone());
        }
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy to {}: {e}", to.display()));
        created.push(to);
        DebugFile(created)
    }
}

impl Drop for DebugFile {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = if p.is_dir() { std::fs::remove_dir(p) } else { std::fs::remove_file(p) };
        }
    }
}

#[test]
fn live_stripped_binary_named_through_build_id_under_usr_lib_debug() {
    if !require_root("live_stripped_binary_named_through_build_id_under_usr_lib_debug") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("buildid");
    let comm = unique_comm("bid");
    let program = dir.path().join(&comm);
    // As Debian ships them: a .gnu_debuglink whose file is in none of the places its name
    // points to, only under the binary's build id.
    let elsewhere = Scratch::new("buildid-debug");
    let debug = elsewhere.path().join(format!("{comm}.debug"));
    split_debug(&program, &debug, true);
    let id = build_id(&program);
    let placed = DebugFile::place(
        &debug,
        PathBuf::from("/usr/lib/debug/.build-id").join(&id[..2]).join(format!("{}.debug", &id[2..])),
    );
    std::fs::remove_file(&debug).expect("remove the original debug file");
    assert_named(&program);
    drop(placed);
}

#[test]
fn live_stripped_binary_named_through_gnu_debuglink_under_usr_lib_debug() {
    if !require_root("live_stripped_binary_named_through_gnu_debuglink_under_usr_lib_debug") {
        return;
    }
    let _l = live_lock();
    let dir = Scratch::new("dlinkdir");
    let comm = unique_comm("dldir");
    let program = dir.path().join(&comm);
    let elsewhere = Scratch::new("dlinkdir-debug");
    let debug = elsewhere.path().join(format!("{comm}.debug"));
    split_debug(&program, &debug, true);
    // /usr/lib/debug + the binary's own directory, as gdb looks for it.
    let canonical = std::fs::canonicalize(dir.path()).expect("canonical dir");
    let under = PathBuf::from("/usr/lib/debug")
        .join(canonical.strip_prefix("/").expect("absolute"))
        .join(format!("{comm}.debug"));
    let placed = DebugFile::place(&debug, under);
    std::fs::remove_file(&debug).expect("remove the original debug file");
    assert_named(&program);
    drop(placed);
}

/// `ebpfx -v ARGS` as `nobody` with CAP_BPF and CAP_PERFMON only (no CAP_SYS_PTRACE), started
/// and attached (its `-v` says "window started").
fn start_as_nobody(args: &[&str]) -> (Child, BufReader<std::process::ChildStderr>, String) {
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all,+bpf,+perfmon",
            "--ambient-caps=+bpf,+perfmon",
            "--",
            bin(),
            "-v",
        ])
        .args(args)
        .env_remove("EBPFX_CONFIG_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setpriv (util-linux)");
    let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read stderr");
        seen.push_str(&line);
        if n == 0 {
            let _ = child.wait();
            panic!("ebpfx as nobody exited before its window started:\n{seen}");
        }
        if line.contains("window started") {
            break;
        }
        assert!(Instant::now() < deadline, "ebpfx as nobody did not attach within 60 s:\n{seen}");
    }
    (child, reader, seen)
}

#[test]
fn live_unreadable_process_maps_are_warned_about() {
    if !require_root("live_unreadable_process_maps_are_warned_about") {
        return;
    }
    let _l = live_lock();
    use std::os::unix::fs::PermissionsExt as _;
    let dir = Scratch::new("unreadable");
    let comm = unique_comm("unrd");
    let program = dir.path().join(&comm);
    compile_deep(&program, &[]);
    // Root's process, run from a directory only root may enter. ebpfx runs as nobody with
    // CAP_BPF and CAP_PERFMON: it may read the process' /proc/PID/maps (CAP_PERFMON allows that,
    // as CAP_SYS_PTRACE does) but neither /proc/PID/map_files (CAP_SYS_ADMIN) nor the binary.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod 700");
    let mut deep = Deep::start(&program, &["2", "sleep"]);
    let pid = deep.pid();
    let (mut ebpfx, mut stderr, mut err) =
        start_as_nobody(&["run", "offcputime", "--for", "120s", "--format", "folded", "-p", &pid]);
    deep.run_once();
    // SAFETY: kill with the pid of our child and a valid signal number.
    unsafe { libc::kill(ebpfx.id() as i32, SIGINT) };
    let mut folded = String::new();
    ebpfx.stdout.take().expect("stdout").read_to_string(&mut folded).expect("read stdout");
    stderr.read_to_string(&mut err).expect("read stderr");
    let status = ebpfx.wait().expect("wait ebpfx");
    drop(deep);
    assert_eq!(status.code(), Some(0), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("their memory maps could not be read")).collect();
    assert_eq!(warnings.len(), 1, "one warning about unreadable maps:\n{err}");
    assert!(
        warnings[0].contains(&format!("pid {pid} (a file it maps: "))
            && warnings[0].contains(&comm)
            && warnings[0].contains("Permission denied"),
        "the warning names the pid, the file and why: {}",
        warnings[0]
    );
    // The frames themselves stay unknown, as the warning says.
    let line = folded
        .lines()
        .find(|l| l.starts_with(&format!("{comm};")))
        .unwrap_or_else(|| panic!("no folded line of {comm}:\n{folded}"));
    assert!(line.contains(";??;") && !line.contains(FRAME), "user frames are ?? without the maps: {line}");
}

/// The stack maps are sized before load from the kernel's perf_event_max_stack (no root
/// needed: `check` opens the objects without loading them).
#[test]
fn stack_maps_take_the_kernel_depth() {
    let depth: u64 = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_stack")
        .expect("read perf_event_max_stack")
        .trim()
        .parse()
        .expect("a number");
    for (config, map) in [("profile", "cpu_stacks"), ("offcputime", "offcpu_stacks")] {
        let out = ebpfx(&["check", "-v", config]);
        let err = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(
            err.contains(&format!("map {map} (StackTrace): 16384 entries, 4 B key, {} B value", depth * 8)),
            "{map}: {depth} frames of 8 bytes, one stack per count entry:\n{err}"
        );
        assert!(
            err.contains(&format!("map {map}_spill (StackTrace): 4096 entries, 4 B key, {} B value", depth * 8)),
            "{err}"
        );
    }
}
