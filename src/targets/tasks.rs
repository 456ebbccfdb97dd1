//! Task targets (`-p`, `--tid`, `--comm`, `--cgroup`, `-- COMMAND`) and kernel-side `--by` labels:
//! the flags turned into the globals and map entries of bpf/target.bpf.h, the one mechanism
//! every task-context built-in shares. A config says what its object implements (`targets:`,
//! `kernel_labels:` in its YAML); a flag it lacks is refused before anything loads.
use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context};

use crate::catalog::Resolved;
use crate::config::{Config, HIDDEN_LABEL};
use crate::error::usage_err;
use crate::model::{Metric, MetricValues, Samples};
use crate::targets::GlobalValue;

const TARGET_PID: u32 = 1;
const TARGET_TID: u32 = 2;
const TARGET_COMM: u32 = 4;
const TARGET_CGROUP: u32 = 8;

/// `bpf/target.bpf.h`'s `EBPFX_BY_*` bits, by label name.
const BY_BITS: &[(&str, u32)] = &[("pid", 1), ("comm", 2), ("cgroup", 4), ("cpu", 8)];

/// The program that follows forks for `-- COMMAND` (autoload off unless a command runs).
pub const FOLLOW_PROGRAM: &str = "ebpfx_follow_fork";

/// Entries a metric's map gets at least when `--by` switches a kernel-side label on (a series per
/// task, CPU or cgroup): the object's own size fits the labels it always has.
pub const BY_MAX_ENTRIES: u32 = 16384;

/// The kernel's command-name length, NUL included.
const COMM_LEN: usize = 16;

/// The mount point of the cgroup v2 hierarchy that `--cgroup` paths are relative to.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The selection of one run, parsed from the flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub pids: Vec<u32>,
    pub tids: Vec<u32>,
    pub comms: Vec<[u8; COMM_LEN]>,
    /// cgroup v2 id (the directory's inode), its depth below the root, and the path given.
    pub cgroup: Option<(u64, u32, PathBuf)>,
    /// `-- COMMAND`: its pid is in `pids` once spawned, and forks are followed.
    pub command: bool,
    /// The flags used, for messages: (`--comm`, the `targets:` kind it needs).
    flags: Vec<(&'static str, &'static str)>,
}

/// `1,2 3` → [1, 2, 3]; names the flag on a bad number.
fn parse_ids(flag: &str, values: &[String]) -> anyhow::Result<Vec<u32>> {
    let mut out = Vec::new();
    for v in values {
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let id: u32 = part.parse().ok().filter(|&n| n > 0 && n <= i32::MAX as u32).ok_or_else(|| {
                usage_err(format!("{flag} {part:?}: expected a process or thread id (a positive number)"))
            })?;
            // A typo would otherwise trace nothing, silently (/proc lists threads too).
            if !Path::new(&format!("/proc/{id}")).exists() {
                return Err(usage_err(format!("{flag} {id}: no such process or thread")));
            }
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    if out.is_empty() && !values.is_empty() {
        return Err(usage_err(format!("{flag}: no id given")));
    }
    Ok(out)
}

/// `--comm NAME` as the kernel stores it: at most 15 bytes, zero-padded to 16.
pub fn parse_comm(name: &str) -> anyhow::Result<[u8; COMM_LEN]> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err(usage_err("--comm: the name is empty"));
    }
    if bytes.len() >= COMM_LEN {
        let cut = String::from_utf8_lossy(&bytes[..COMM_LEN - 1]).into_owned();
        return Err(usage_err(format!(
            "--comm {name:?}: the kernel keeps at most 15 bytes of a command name (this one appears as {cut:?})"
        )));
    }
    if bytes.contains(&0) {
        return Err(usage_err(format!("--comm {name:?}: a command name holds no NUL byte")));
    }
    let mut out = [0u8; COMM_LEN];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// Mount points of the cgroup v2 file system (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a
/// hybrid host), longest first.
fn cgroup2_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            left.split_whitespace().nth(4).map(PathBuf::from)
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    out
}

/// `--cgroup PATH` → (id, level, path). PATH is a cgroup v2 directory, absolute or relative to
/// the cgroup v2 mount point (`system.slice/cron.service`).
pub fn parse_cgroup(path: &Path) -> anyhow::Result<(u64, u32, PathBuf)> {
    use std::os::unix::fs::MetadataExt as _;
    let mounts = cgroup2_mounts();
    let root = mounts.last().cloned().unwrap_or_else(|| PathBuf::from(CGROUP_ROOT));
    let full = if path.is_absolute() || path.exists() { path.to_path_buf() } else { root.join(path) };
    let meta = std::fs::metadata(&full).map_err(|e| {
        usage_err(format!(
            "--cgroup {}: {e} (expected a cgroup v2 directory under {}, where this machine mounts cgroup v2)",
            path.display(),
            root.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(usage_err(format!(
            "--cgroup {}: not a directory (expected a cgroup v2 directory)",
            path.display()
        )));
    }
    let canon = full.canonicalize().map_err(|e| usage_err(format!("--cgroup {}: {e}", path.display())))?;
    if !is_cgroup2(&canon) {
        return Err(usage_err(format!(
            "--cgroup {}: not on a cgroup v2 file system (this machine mounts cgroup v2 at {})",
            path.display(),
            root.display()
        )));
    }
    let rel = mounts.iter().find_map(|m| canon.strip_prefix(m).ok()).ok_or_else(|| {
        usage_err(format!("--cgroup {}: not under a mount point of the cgroup v2 hierarchy", path.display()))
    })?;
    let level = u32::try_from(rel.components().count()).unwrap_or(u32::MAX);
    Ok((meta.ino(), level, canon))
}

fn is_cgroup2(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain old data, zero is a valid value for every field.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer, both live for the call.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC
}

impl Targets {
    /// Parses the target flags (before anything loads).
    pub fn parse(
        pids: &[String],
        tids: &[String],
        comms: &[String],
        cgroup: Option<&Path>,
        command: bool,
    ) -> anyhow::Result<Targets> {
        let mut t = Targets {
            pids: parse_ids("--pid", pids)?,
            tids: parse_ids("--tid", tids)?,
            comms: comms.iter().map(|c| parse_comm(c)).collect::<anyhow::Result<_>>()?,
            cgroup: cgroup.map(parse_cgroup).transpose()?,
            command,
            flags: Vec::new(),
        };
        if !t.pids.is_empty() {
            t.flags.push(("--pid", "pid"));
        }
        if !t.tids.is_empty() {
            t.flags.push(("--tid", "tid"));
        }
        if !t.comms.is_empty() {
            t.flags.push(("--comm", "comm"));
        }
        if t.cgroup.is_some() {
            t.flags.push(("--cgroup", "cgroup"));
        }
        if command {
            t.flags.push(("-- COMMAND", "command"));
        }
        Ok(t)
    }

    /// Whether any target is set.
    pub fn any(&self) -> bool {
        !self.flags.is_empty()
    }

    /// Refuses a flag the config does not declare under `targets:`.
    pub fn check(&self, config: &Config) -> anyhow::Result<()> {
        for (flag, kind) in &self.flags {
            if !config.targets.iter().any(|t| t == kind) {
                let has = if config.targets.is_empty() {
                    "it selects no tasks: it measures the whole machine".to_string()
                } else {
                    format!("it supports {}", config.targets.iter().map(|t| flag_of(t)).collect::<Vec<_>>().join(", "))
                };
                return Err(usage_err(format!("config {} does not support {flag} ({has})", config.name)));
            }
        }
        Ok(())
    }

    /// The globals of bpf/target.bpf.h (none without targets: the object keeps its zeros).
    pub fn globals(&self) -> Vec<GlobalValue> {
        let mut mask = 0u32;
        if !self.pids.is_empty() || self.command {
            mask |= TARGET_PID;
        }
        if !self.tids.is_empty() {
            mask |= TARGET_TID;
        }
        if !self.comms.is_empty() {
            mask |= TARGET_COMM;
        }
        let mut out = Vec::new();
        let flag = self.flags.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ");
        let value = |name: &str, bytes: Vec<u8>| GlobalValue { flag: flag.clone(), name: name.into(), bytes };
        if let Some((id, level, _)) = &self.cgroup {
            mask |= TARGET_CGROUP;
            out.push(value("ebpfx_target_cgroup_id", id.to_ne_bytes().to_vec()));
            out.push(value("ebpfx_target_cgroup_level", level.to_ne_bytes().to_vec()));
        }
        // One process and no command (whose set grows with its forks): a compare, no lookup.
        if let ([pid], false) = (self.pids.as_slice(), self.command) {
            out.push(value("ebpfx_target_pid1", pid.to_ne_bytes().to_vec()));
        }
        if mask != 0 {
            out.push(value("ebpfx_target", mask.to_ne_bytes().to_vec()));
        }
        out
    }

    /// The pid, tid and comm sets, as bpf/target.bpf.h's map names and keys (the loader writes
    /// them into each object after load, before the window starts).
    pub fn sets(&self) -> [(&'static str, Vec<Vec<u8>>); 3] {
        [
            ("ebpfx_target_pids", self.pids.iter().map(|p| p.to_ne_bytes().to_vec()).collect()),
            ("ebpfx_target_tids", self.tids.iter().map(|p| p.to_ne_bytes().to_vec()).collect()),
            ("ebpfx_target_comms", self.comms.iter().map(|c| c.to_vec()).collect()),
        ]
    }
}

/// The flag of a `targets:` kind, for messages.
fn flag_of(kind: &str) -> &str {
    match kind {
        "pid" => "-p/--pid",
        "tid" => "--tid",
        "comm" => "--comm",
        "cgroup" => "--cgroup",
        "command" => "-- COMMAND",
        other => other,
    }
}

/// Removes the columns of kernel-side labels that are off and had to stay as labels
/// ([`crate::config::HIDDEN_LABEL`]). Every key holds zeros there, so no two series merge.
pub fn drop_hidden_labels(metric: &mut Metric) {
    let Some(i) = metric.label_names.iter().position(|n| n == HIDDEN_LABEL) else {
        return;
    };
    metric.label_names.remove(i);
    match &mut metric.values {
        MetricValues::Counter(s) | MetricValues::Gauge(s) => {
            let ordered = s.in_name_order();
            let mut out = Samples::with_capacity(s.width().saturating_sub(1), s.len(), 0);
            for row in s.iter() {
                out.push(row.labels.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, v)| v), row.value);
            }
            if ordered {
                out.mark_in_name_order();
            }
            *s = out;
        }
        MetricValues::Histogram(h) => {
            for series in &mut h.series {
                if i < series.labels.len() {
                    series.labels.remove(i);
                }
            }
        }
    }
}

/// `--by a,b c` → [a, b, c], each once, in order.
pub fn parse_by(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if !out.iter().any(|o| o == part) {
                out.push(part.to_string());
            }
        }
    }
    out
}

/// Switches on the config's kernel-side labels that `--by` names, and returns the `ebpfx_by`
/// global for them (None when none is asked). The YAML gains `kernel_labels_on:` so that the
/// config, and a snapshot saved from this run, decode those key bytes as labels. Other `--by`
/// words (the config's own labels, `none`, unknown names) are regroup.rs' to keep or refuse.
pub fn apply_by(resolved: &mut Resolved, by: &[String]) -> anyhow::Result<Option<GlobalValue>> {
    let config = &resolved.config;
    let on: Vec<String> = by.iter().filter(|l| config.kernel_labels.contains(l)).cloned().collect();
    if on.is_empty() {
        return Ok(None);
    }
    let mask = on.iter().filter_map(|l| BY_BITS.iter().find(|(n, _)| n == l).map(|(_, b)| *b)).fold(0u32, |a, b| a | b);
    let yaml = format!("{}\nkernel_labels_on: [{}]\n", resolved.yaml.trim_end(), on.join(", "));
    resolved.config = Config::parse(&config.name, &config.origin, &yaml)?;
    resolved.yaml = yaml;
    Ok(Some(GlobalValue { flag: "--by".into(), name: "ebpfx_by".into(), bytes: mask.to_ne_bytes().to_vec() }))
}

/// A command started held before exec: it exists (so its pid can be put in the target set),
/// but runs nothing of its own until [`Gated::release`], so no event of it is missed.
pub struct Gated {
    pub pid: u32,
    go: Option<OwnedFd>,
    spawner: Option<JoinHandle<std::io::Result<Child>>>,
    pub argv: Vec<OsString>,
}

/// A released command.
pub struct Running {
    pub child: Child,
    pub argv: Vec<OsString>,
    pub status: Option<ExitStatus>,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Whether `name` can be executed: a path, or a name found in $PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| executable(p))
}

impl Gated {
    /// Forks the command, held before exec.
    pub fn spawn(argv: &[OsString]) -> anyhow::Result<Gated> {
        let Some(program) = argv.first() else {
            return Err(usage_err("-- COMMAND: no command given after `--`"));
        };
        let shown = program.to_string_lossy().into_owned();
        if find_program(&shown).is_none() {
            return Err(usage_err(format!("-- {shown}: command not found or not executable")));
        }
        let (pid_r, pid_w) = pipe().context("-- COMMAND: creating a pipe")?;
        let (go_r, go_w) = pipe().context("-- COMMAND: creating a pipe")?;
        let (pid_w_raw, go_r_raw, go_w_raw, pid_r_raw) =
            (pid_w.as_raw_fd(), go_r.as_raw_fd(), go_w.as_raw_fd(), pid_r.as_raw_fd());
        let mut cmd = std::process::Command::new(program);
        cmd.args(&argv[1..]);
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (close, getpid, write, read) on descriptors that stay
        // open in the child until then; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                libc::close(go_w_raw);
                libc::close(pid_r_raw);
                let pid = libc::getpid().to_ne_bytes();
                if libc::write(pid_w_raw, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(pid_w_raw);
                let mut b = 0u8;
                loop {
                    match libc::read(go_r_raw, (&mut b as *mut u8).cast(), 1) {
                        1 => return Ok(()),
                        // ebpfx went away without releasing it: run nothing.
                        0 => return Err(std::io::Error::from_raw_os_error(libc::ECANCELED)),
                        _ => {
                            let e = std::io::Error::last_os_error();
                            if e.kind() != std::io::ErrorKind::Interrupted {
                                return Err(e);
                            }
                        }
                    }
                }
            });
        }
        // std's spawn returns only once the child has exec'd, so it waits on its own thread; it
        // owns the parent's copy of the pid pipe's write end, so a failed fork ends our read.
        let spawner = std::thread::spawn(move || {
            let r = cmd.spawn();
            drop(pid_w);
            drop(go_r);
            r
        });
        let mut buf = [0u8; 4];
        let mut reader = std::fs::File::from(pid_r);
        if let Err(e) = reader.read_exact(&mut buf) {
            drop(go_w);
            let why = match spawner.join() {
                Ok(Err(spawn_err)) => format!("{spawn_err}"),
                _ => format!("{e}"),
            };
            return Err(anyhow!("-- {shown}: cannot start the command: {why}"));
        }
        Ok(Gated { pid: u32::from_ne_bytes(buf), go: Some(go_w), spawner: Some(spawner), argv: argv.to_vec() })
    }

    /// Lets the command exec and run.
    pub fn release(mut self) -> anyhow::Result<Running> {
        let shown = self.argv.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(go) = self.go.take() {
            let mut f = std::fs::File::from(go);
            f.write_all(&[1]).with_context(|| format!("-- {shown}: releasing the command"))?;
        }
        let spawner = self.spawner.take().ok_or_else(|| anyhow!("-- {shown}: released twice"))?;
        let child = spawner
            .join()
            .map_err(|_| anyhow!("-- {shown}: the thread starting the command panicked"))?
            .with_context(|| format!("-- {shown}: cannot run the command"))?;
        Ok(Running { child, argv: std::mem::take(&mut self.argv), status: None })
    }
}

impl Drop for Gated {
    /// Never released (an error before the window): the command ends without running.
    fn drop(&mut self) {
        self.go.take();
        if let Some(s) = self.spawner.take() {
            let _ = s.join();
        }
    }
}

impl Running {
    /// Whether the command has exited (its status is kept).
    pub fn exited(&mut self) -> bool {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
            }
        }
        self.status.is_some()
    }

    /// One line for stderr after the results: how the command ended, or that it still runs.
    pub fn report(&mut self) -> String {
        let shown = self.argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
        self.exited();
        match self.status {
            Some(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(code), _) => format!("command `{shown}` exited with status {code}"),
                (None, Some(sig)) => format!("command `{shown}` was killed by signal {sig}"),
                _ => format!("command `{shown}` ended ({s})"),
            },
            None => format!("command `{shown}` (pid {}) is still running: left running", self.child.id()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_lists() {
        let me = std::process::id();
        let (a, b) = (me.to_string(), format!("1,{me}"));
        assert_eq!(parse_ids("--pid", &[b, a.clone(), a]).expect("ok"), vec![1, me]);
        let err = parse_ids("--pid", &[(i32::MAX as u32).to_string()]).expect_err("no such pid");
        assert!(format!("{err:#}").contains("no such process"), "{err:#}");
        assert!(parse_ids("--pid", &["x".into()]).is_err());
        assert!(parse_ids("--pid", &["0".into()]).is_err());
        assert!(parse_ids("--pid", &[",".into()]).is_err());
    }

    #[test]
    fn missing_cgroup_names_the_real_mount_point() {
        // Hybrid hosts mount cgroup v2 at /sys/fs/cgroup/unified: a relative path is looked up
        // there, and the message says so.
        let root = cgroup2_mounts().last().cloned().unwrap_or_else(|| PathBuf::from(CGROUP_ROOT));
        let err = parse_cgroup(Path::new("ebpfx-no-such-cgroup-xyz")).expect_err("missing");
        let msg = format!("{err:#}");
        assert!(msg.contains(&format!("under {}", root.display())), "{msg}");
    }

    #[test]
    fn comm_names() {
        assert_eq!(&parse_comm("bash").expect("ok")[..5], b"bash\0");
        assert!(parse_comm("").is_err());
        assert!(parse_comm("systemd-journald").is_err()); // 16 bytes: the kernel keeps 15
        assert!(parse_comm("systemd-journal").is_ok());
    }

    #[test]
    fn by_lists() {
        assert_eq!(parse_by(&["pid,comm".into(), "pid".into()]), vec!["pid", "comm"]);
    }

    fn resolved(yaml: &str) -> Resolved {
        let config = Config::parse("t", "t.yaml", yaml).expect("config");
        Resolved {
            config,
            object: crate::catalog::ObjectSource::Embedded(&[]),
            origin: crate::catalog::Origin::BuiltIn,
            yaml: yaml.to_string(),
        }
    }

    const YAML: &str = "targets: [pid]\nkernel_labels: [pid, comm]\nmetrics:\n  counters:\n    - name: c_total\n      help: h\n      labels:\n        - name: x\n          size: 8\n          decoders: [{name: uint}]\n        - name: pid\n          size: 4\n          padding: 4\n          decoders: [{name: uint}]\n        - name: comm\n          size: 16\n          decoders: [{name: string}]\n";

    #[test]
    fn kernel_labels_fold_into_padding_unless_asked() {
        // Off at the end of the key: cut off (the loader shrinks the map's key to 8 bytes).
        let r = resolved(YAML);
        let m = &r.config.metrics[0];
        assert_eq!(m.labels.len(), 1);
        assert_eq!((m.labels[0].size, m.labels[0].padding), (8, 0));
        // pid (off) between x and comm (on): padding of x.
        let mut r = resolved(YAML);
        let g = apply_by(&mut r, &["comm".into()]).expect("ok").expect("a global");
        assert_eq!(g.bytes, 2u32.to_ne_bytes());
        let names: Vec<&str> = r.config.metrics[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["x", "comm"]);
        assert_eq!(r.config.metrics[0].labels[0].padding, 8);
        assert_eq!(Config::key_size(&r.config.metrics[0]), 32);
        // Unknown names and `none` are regroup.rs' to refuse or apply: nothing is switched on.
        assert!(apply_by(&mut resolved(YAML), &["cgroup".into()]).expect("ok").is_none());
        assert!(apply_by(&mut resolved(YAML), &["none".into()]).expect("ok").is_none());
        // A label the config has is not a kernel one: nothing to switch on.
        assert!(apply_by(&mut resolved(YAML), &["x".into()]).expect("ok").is_none());
    }

    #[test]
    fn a_first_kernel_label_that_is_off_is_hidden_then_dropped() {
        let yaml = "kernel_labels: [pid]\nmetrics:\n  histograms:\n    - name: h_seconds\n      help: h\n      bucket_type: exp2\n      bucket_min: 0\n      bucket_max: 3\n      labels:\n        - name: pid\n          size: 4\n          padding: 4\n          decoders: [{name: uint}]\n        - name: bucket\n          size: 8\n          decoders: [{name: uint}]\n";
        let r = resolved(yaml);
        let names: Vec<&str> = r.config.metrics[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, [HIDDEN_LABEL, "bucket"]);
        let mut m = Metric {
            config: "t".into(),
            name: "c_total".into(),
            help: "h".into(),
            label_names: vec![HIDDEN_LABEL.into(), "x".into()],
            values: MetricValues::Counter(Samples::from(vec![
                crate::model::Sample { labels: vec!["0".into(), "a".into()], value: 1.0 },
                crate::model::Sample { labels: vec!["0".into(), "b".into()], value: 2.0 },
            ])),
        };
        drop_hidden_labels(&mut m);
        assert_eq!(m.label_names, ["x"]);
        let MetricValues::Counter(s) = &m.values else { panic!("a counter") };
        let rows: Vec<(Vec<String>, f64)> = s.iter().map(|r| (r.labels.to_vec(), r.value)).collect();
        assert_eq!(rows, [(vec!["a".to_string()], 1.0), (vec!["b".to_string()], 2.0)]);
        // Asked for, it is a label like any other.
        let mut r = resolved(yaml);
        apply_by(&mut r, &["pid".into()]).expect("ok");
        assert_eq!(r.config.metrics[0].labels[0].name, "pid");
    }

    #[test]
    fn unsupported_flag_names_config_and_flag() {
        let r = resolved(YAML);
        let t = Targets::parse(&[], &[], &["sh".into()], None, false).expect("ok");
        let err = t.check(&r.config).expect_err("refused");
        assert_eq!(format!("{err:#}"), "config t does not support --comm (it supports -p/--pid)");
        let t = Targets::parse(&["1".into()], &[], &[], None, false).expect("ok");
        assert!(t.check(&r.config).is_ok());
        let names: Vec<String> = t.globals().into_iter().map(|g| g.name).collect();
        assert_eq!(names, ["ebpfx_target_pid1", "ebpfx_target"]);
        let two = Targets::parse(&[format!("1,{}", std::process::id())], &[], &[], None, false).expect("ok");
        assert_eq!(two.globals().len(), 1, "two pids: the set, no single compare");
        assert!(Targets::default().globals().is_empty());
    }
}
