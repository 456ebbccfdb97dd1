//! Where results go: stdout, or a file replaced atomically (`--output`, `--save-raw`); a
//! Pushgateway (`push`); a Prometheus remote-write receiver (`remote_write`); the live table
//! (`watch`); which rendering (`view`).
//!
//! - stdout: a reader that went away (EPIPE, e.g. `| head -1`) is [`Closed`]: the run ends
//!   quietly with status 0, in every mode.
//! - files: checked and opened before the window (a temp file `.NAME.PID.RANDOM.tmp` is created
//!   in the target's directory at once, so an unwritable place is a usage error before anything
//!   attaches), written at the end, fsynced and renamed over the target. Readers (node_exporter's
//!   textfile collector) see the old file or the new one, never half of one. Temp files left by
//!   a killed ebpfx run are removed when the next run writes to the same directory.
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::anyhow;

use crate::error::usage_err;

pub mod push;
pub mod remote_write;
pub mod view;
pub mod watch;

/// `eprintln!` that never panics: a closed stderr (`2>&1 | head -1`) is ignored, so that a
/// warning cannot turn a closed pipe into a crash.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The reader of stdout went away (EPIPE): stop quietly, status 0.
#[derive(Debug)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}
impl std::error::Error for Closed {}

/// True when `err` means the reader of stdout went away.
pub fn is_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<Closed>())
}

/// Temp files of this process not yet renamed into place: removed by [`abandon`].
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn temps() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    TEMPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Before an immediate exit (second interrupt): restores the terminal and removes our temp files.
pub fn abandon() {
    watch::restore_terminal();
    for t in temps().drain(..) {
        let _ = std::fs::remove_file(t);
    }
}

/// Writes what `write` produces to stdout. A closed pipe is [`Closed`].
pub fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(Closed)),
        Err(e) => Err(anyhow!("writing to stdout: {e}")),
    }
}

/// [`write_stdout`] of a text.
pub fn print(text: &str) -> anyhow::Result<()> {
    write_stdout(|w| w.write_all(text.as_bytes()))
}

/// A file replaced atomically, checked and opened (as a temp file) before it is written.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    /// The flag that named it (`--output`, `--save-raw`), for messages.
    flag: &'static str,
    pending: Option<(PathBuf, File)>,
    /// An existing device, pipe or socket (`/dev/null`, `/dev/stdout`): written in place.
    direct: bool,
}

impl AtomicFile {
    /// Checks that `path` can be written and creates its temp file now. Every problem is a
    /// usage error (exit 2) naming `flag`.
    pub fn create(path: &Path, flag: &'static str) -> anyhow::Result<AtomicFile> {
        let shown = path.display();
        let name = path.file_name().filter(|_| !path.as_os_str().to_string_lossy().ends_with('/'));
        let Some(name) = name else {
            return Err(usage_err(format!("{flag} {shown}: expected a file path, not a directory")));
        };
        if path.is_dir() {
            return Err(usage_err(format!("{flag} {shown}: is a directory, expected a file path")));
        }
        let dir = parent_dir(path);
        if !dir.is_dir() {
            return Err(usage_err(format!("{flag} {shown}: directory {} does not exist", dir.display())));
        }
        // Renaming over a device, a pipe or /dev/stdout would replace that node (as root, even
        // /dev/null) instead of writing to it: those are written directly, never renamed over.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
                .map_err(|e| usage_err(format!("{flag} {shown}: cannot write to it: {e}")))?;
            return Ok(AtomicFile { path: path.to_path_buf(), flag, pending: None, direct: true });
        }
        if let Some(why) = unwritable_fs(&dir) {
            return Err(usage_err(format!("{flag} {shown}: cannot write in {}: {why}", dir.display())));
        }
        remove_stale_temps(&dir, &name.to_string_lossy());
        let temp = new_temp(&dir, &name.to_string_lossy())
            .map_err(|e| usage_err(format!("{flag} {shown}: cannot create a file in {}: {e}", dir.display())))?;
        Ok(AtomicFile { path: path.to_path_buf(), flag, pending: Some(temp), direct: false })
    }

    /// The target path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes what `write` produces into the temp file, fsyncs it and renames it over the
    /// target. Can be called again (interval blocks): each call makes a new temp file. On
    /// failure the temp file is removed and the target is left as it was.
    pub fn write_with(&mut self, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
        if self.direct {
            let result = std::fs::OpenOptions::new().write(true).open(&self.path).and_then(|f| {
                let mut w = std::io::BufWriter::with_capacity(64 * 1024, f);
                write(&mut w)?;
                w.flush()
            });
            return result.map_err(|e| anyhow!("writing {}: {e}", self.path.display()));
        }
        let (tmp, file) = match self.pending.take() {
            Some(t) => t,
            None => {
                let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                new_temp(&parent_dir(&self.path), &name)
                    .map_err(|e| anyhow!("{} {}: creating a temp file: {e}", self.flag, self.path.display()))?
            }
        };
        let result = (|| -> std::io::Result<()> {
            let mut w = std::io::BufWriter::with_capacity(64 * 1024, file);
            write(&mut w)?;
            let f = w.into_inner().map_err(std::io::IntoInnerError::into_error)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        forget_temp(&tmp);
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(anyhow!("writing {}: {e}", self.path.display()));
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some((tmp, _)) = self.pending.take() {
            forget_temp(&tmp);
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn forget_temp(tmp: &Path) {
    temps().retain(|t| t != tmp);
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A random 64-bit number without a crate: std seeds every `RandomState` from the OS.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// Creates `.NAME.PID.RANDOM.tmp` in `dir` with O_EXCL and registers it for [`abandon`].
fn new_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..8 {
        let tmp = dir.join(format!(".{name}.{}.{:016x}.tmp", std::process::id(), random_u64()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => {
                temps().push(tmp.clone());
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temp file name")))
}

/// Why nothing can be written in `dir` (read-only or full file system, /proc, /sys), if so.
fn unwritable_fs(dir: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs is plain data, filled by the call.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a pointer to a statfs for the duration of the call.
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return None;
    }
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    match fs.f_type as i64 {
        PROC_SUPER_MAGIC => return Some("it is in /proc (procfs), which holds no regular files".into()),
        SYSFS_MAGIC => return Some("it is in /sys (sysfs), which holds no regular files".into()),
        _ => {}
    }
    // SAFETY: statvfs is plain data, filled by the call.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above, with a pointer to a statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut vfs) } != 0 {
        return None;
    }
    if vfs.f_flag & libc::ST_RDONLY != 0 {
        return Some("the file system is mounted read-only".into());
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let free = if root { vfs.f_bfree } else { vfs.f_bavail };
    if free == 0 && vfs.f_blocks > 0 {
        return Some("the file system is full".into());
    }
    None
}

/// Removes temp files of `name` in `dir` left by ebpfx runs that are gone (killed): both
/// today's `.NAME.PID.RANDOM.tmp` and the older `.NAME.PID.tmp`. A temp file of a live
/// ebpfx process is left alone; one of a pid now used by another program, or by this process
/// (pid 1 in a container) but not made by it, is stale.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    let own: Vec<PathBuf> = temps().clone();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some(rest) = file.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else { continue };
        let pid = match rest.split_once('.') {
            Some((pid, random)) if random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit()) => pid,
            Some(_) => continue,
            None => rest,
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let path = entry.path();
        if own.contains(&path) {
            continue;
        }
        let ours = pid == std::process::id();
        if ours || !is_live_ebpfx(pid) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn is_live_ebpfx(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "ebpfx")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_that_fails_midway_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.prom");
        std::fs::write(&path, "old\n").expect("write");
        let mut f = AtomicFile::create(&path, "--output").expect("create");
        let err = f
            .write_with(|w| {
                w.write_all(&[b'x'; 200_000])?;
                Err(std::io::Error::other("disk gone"))
            })
            .expect_err("fails");
        assert!(format!("{err:#}").contains("out.prom") && format!("{err:#}").contains("disk gone"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old\n");
        assert_eq!(names(dir.path()), ["out.prom"]);
        f.write_with(|w| w.write_all(b"new\n")).expect("writes");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new\n");
        assert_eq!(names(dir.path()), ["out.prom"]);
    }

    #[test]
    fn the_temp_file_exists_from_the_start_with_a_unique_name_and_goes_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.prom");
        let a = AtomicFile::create(&path, "--output").expect("a");
        let b = AtomicFile::create(&path, "--output").expect("b");
        let n = names(dir.path());
        assert_eq!(n.len(), 2, "{n:?}");
        let pid = std::process::id();
        for t in &n {
            let rest = t.strip_prefix(&format!(".out.prom.{pid}.")).and_then(|r| r.strip_suffix(".tmp"));
            assert!(rest.is_some_and(|r| r.len() == 16), "{t}");
        }
        drop(a);
        drop(b);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn stale_temp_files_of_dead_or_own_pids_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let own = std::process::id();
        // pid_max is at most 2^22: this pid cannot exist.
        let dead = 4_194_999u32;
        for n in [
            format!(".out.prom.{own}.tmp"),
            format!(".out.prom.{dead}.0123456789abcdef.tmp"),
            format!(".out.prom.{dead}.tmp"),
            ".out.prom.1.fedcba9876543210.tmp".to_string(),
            ".other.prom.12.tmp".to_string(),
            "keep.prom".to_string(),
        ] {
            std::fs::write(dir.path().join(n), "x").expect("write");
        }
        let path = dir.path().join("out.prom");
        let f = AtomicFile::create(&path, "--output").expect("create");
        let left = names(dir.path());
        // pid 1 is init (not ebpfx here): its file is stale too.
        assert!(!left.iter().any(|n| n.contains(&format!(".{dead}.")) || n == &format!(".out.prom.{own}.tmp")));
        assert!(!left.iter().any(|n| n.starts_with(".out.prom.1.")), "{left:?}");
        assert!(left.contains(&".other.prom.12.tmp".to_string()) && left.contains(&"keep.prom".to_string()));
        drop(f);
    }

    #[test]
    fn devices_are_written_in_place_never_renamed_over() {
        let mut f = AtomicFile::create(Path::new("/dev/null"), "--output").expect("/dev/null");
        f.write_with(|w| w.write_all(b"x\n")).expect("written");
        let meta = std::fs::metadata("/dev/null").expect("stat");
        assert!(!meta.is_file(), "/dev/null was replaced by a regular file");
    }

    #[test]
    fn unwritable_targets_are_usage_errors_naming_the_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            (dir.path().join("missing").join("x.prom"), "does not exist"),
            (PathBuf::from(format!("{}/", dir.path().join("sub").display())), "not a directory"),
            (dir.path().to_path_buf(), "is a directory"),
            (PathBuf::from("/proc/ebpfx.prom"), "procfs"),
            (PathBuf::from("/sys/ebpfx.prom"), "sysfs"),
        ];
        for (path, want) in cases {
            let err = AtomicFile::create(&path, "--save-raw").expect_err("refused");
            let msg = format!("{err:#}");
            assert!(msg.starts_with("--save-raw ") && msg.contains(want), "{}: {msg}", path.display());
            assert_eq!(crate::error::exit_code(&err), 2, "{msg}");
        }
    }
}
