//! The event tools' BPF side (bpf/events/), proven on this kernel: each object is loaded with
//! libbpf-rs directly, attached, fed a workload of the test's own, and its ring buffer read
//! through `ebpfx::stream`; the records must match the workload exactly. Live tests need root
//! (under CI=true a skip is a failure); `event_records_match_object_btf` does not.
mod common;
use common::*;

use std::cell::RefCell;
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ebpfx::loader::globals::{self, GlobalValue};
use ebpfx::stream::records::*;
use ebpfx::stream::ringbuf::{set_ring_size, EventReader, LOST_MAP, RING_MAP};
use libbpf_rs::btf::types::{MemberAttr, Struct};
use libbpf_rs::btf::{Btf, HasSize};
use libbpf_rs::{Link, Object, ObjectBuilder};

const TOOLS: &[&str] =
    &["execsnoop", "exitsnoop", "opensnoop", "biosnoop", "tcpconnect", "tcplife", "killsnoop", "mountsnoop"];

fn event_object(tool: &str) -> PathBuf {
    object_dir().join("events").join(format!("{tool}.bpf.o"))
}

/// A loaded and attached event tool.
struct Tool {
    obj: Object,
    _links: Vec<Link>,
}

/// Loads bpf/events/TOOL with the given globals (name, native bytes) and ring size, attaches
/// every program.
fn load(tool: &str, globals: &[(&str, Vec<u8>)], ring_size: Option<u64>) -> Tool {
    let path = event_object(tool);
    let mut builder = ObjectBuilder::default();
    builder.name(tool).expect("object name");
    let mut open = builder.open_file(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let values: Vec<GlobalValue> = globals
        .iter()
        .map(|(n, b)| GlobalValue { flag: format!("test global {n}"), name: n.to_string(), bytes: b.clone() })
        .collect();
    globals::set(tool, &mut open, &values).unwrap_or_else(|e| panic!("{tool}: set globals: {e:#}"));
    if let Some(size) = ring_size {
        set_ring_size(&mut open, RING_MAP, size).unwrap_or_else(|e| panic!("{tool}: {e:#}"));
    }
    let obj = open.load().unwrap_or_else(|e| panic!("load {tool}: {e:#}"));
    let mut links = Vec::new();
    for p in obj.progs_mut() {
        let name = p.name().to_string_lossy().into_owned();
        links.push(p.attach().unwrap_or_else(|e| panic!("{tool}: attach {name}: {e:#}")));
    }
    Tool { obj, _links: links }
}

fn tgid_filter(pid: u32) -> (&'static str, Vec<u8>) {
    ("targ_tgid", pid.to_ne_bytes().to_vec())
}

/// Records read, and records that failed to decode (must stay empty).
#[derive(Default)]
struct Seen {
    events: Vec<Event>,
    bad: Vec<String>,
}

/// Runs `workload` on its own thread while this thread reads the ring; after the workload
/// ends, keeps reading until `done` holds for the records kept (those `keep` accepts) or 20 s
/// pass, then drains. Returns the kept records and the loss count.
fn collect(
    tool: &Tool,
    keep: impl Fn(&Event) -> bool + 'static,
    workload: impl FnOnce() + Send + 'static,
    done: impl Fn(&[Event]) -> bool,
) -> (Vec<Event>, u64) {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let sink = seen.clone();
    let reader = EventReader::new(&tool.obj, RING_MAP, LOST_MAP, move |bytes: &[u8]| match parse(bytes) {
        Ok(ev) => {
            if keep(&ev) {
                sink.borrow_mut().events.push(ev);
            }
        }
        Err(e) => sink.borrow_mut().bad.push(e.to_string()),
    })
    .expect("ring buffer reader");
    let worker = std::thread::spawn(workload);
    while !worker.is_finished() {
        reader.poll(Duration::from_millis(50)).expect("poll");
    }
    if let Err(p) = worker.join() {
        std::panic::resume_unwind(p);
    }
    let start = Instant::now();
    loop {
        reader.drain().expect("drain");
        if done(&seen.borrow().events) || start.elapsed() > Duration::from_secs(20) {
            break;
        }
        reader.poll(Duration::from_millis(100)).expect("poll");
    }
    let lost = reader.lost().expect("lost counter");
    drop(reader);
    let seen = Rc::try_unwrap(seen).ok().expect("reader dropped").into_inner();
    assert!(seen.bad.is_empty(), "records that did not decode: {:?}", seen.bad);
    (seen.events, lost)
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("ebpfx-{tag}-{}-{nanos}", std::process::id())
}

fn my_pid() -> u32 {
    std::process::id()
}

// ---------------------------------------------------------------------------------------------

/// The Rust twins in src/stream/records.rs have the size and field offsets of the C structs, as
/// each object's BTF describes them (no root needed: the objects are only read).
#[test]
fn event_records_match_object_btf() {
    use std::mem::{offset_of, size_of};
    // (tool, C struct, Rust size of the fixed part, bytes of tail after it, (field, offset)...)
    type Fields = &'static [(&'static str, usize)];
    let h: Fields = &[
        ("ts_ns", offset_of!(EventHeader, ts_ns)),
        ("kind", offset_of!(EventHeader, kind)),
        ("size", offset_of!(EventHeader, size)),
        ("pid", offset_of!(EventHeader, pid)),
        ("tid", offset_of!(EventHeader, tid)),
        ("comm", offset_of!(EventHeader, comm)),
    ];
    let cases: &[(&str, &str, usize, usize, Fields)] = &[
        (
            "execsnoop",
            "exec_record",
            size_of::<ExecRecord>(),
            EXEC_ARGS_SIZE,
            &[
                ("ppid", offset_of!(ExecRecord, ppid)),
                ("uid", offset_of!(ExecRecord, uid)),
                ("ret", offset_of!(ExecRecord, ret)),
                ("argc", offset_of!(ExecRecord, argc)),
                ("args_size", offset_of!(ExecRecord, args_size)),
                ("flags", offset_of!(ExecRecord, flags)),
                ("args", size_of::<ExecRecord>()),
            ],
        ),
        (
            "exitsnoop",
            "exit_record",
            size_of::<ExitRecord>(),
            0,
            &[
                ("ppid", offset_of!(ExitRecord, ppid)),
                ("exit_code", offset_of!(ExitRecord, exit_code)),
                ("age_ns", offset_of!(ExitRecord, age_ns)),
            ],
        ),
        (
            "opensnoop",
            "open_record",
            size_of::<OpenRecord>(),
            OPEN_PATH_LEN,
            &[
                ("flags", offset_of!(OpenRecord, flags)),
                ("ret", offset_of!(OpenRecord, ret)),
                ("mode", offset_of!(OpenRecord, mode)),
                ("syscall", offset_of!(OpenRecord, syscall)),
                ("path_len", offset_of!(OpenRecord, path_len)),
                ("path", size_of::<OpenRecord>()),
            ],
        ),
        (
            "biosnoop",
            "bio_record",
            size_of::<BioRecord>(),
            0,
            &[
                ("dev", offset_of!(BioRecord, dev)),
                ("op", offset_of!(BioRecord, op)),
                ("cmd_flags", offset_of!(BioRecord, cmd_flags)),
                ("error", offset_of!(BioRecord, error)),
                ("sector", offset_of!(BioRecord, sector)),
                ("bytes", offset_of!(BioRecord, bytes)),
                ("queue_ns", offset_of!(BioRecord, queue_ns)),
                ("latency_ns", offset_of!(BioRecord, latency_ns)),
                ("disk", offset_of!(BioRecord, disk)),
            ],
        ),
        (
            "tcpconnect",
            "tcp_connect_record",
            size_of::<TcpConnectRecord>(),
            0,
            &[("ends", offset_of!(TcpConnectRecord, ends)), ("cookie", offset_of!(TcpConnectRecord, cookie))],
        ),
        (
            "tcplife",
            "tcp_life_record",
            size_of::<TcpLifeRecord>(),
            0,
            &[
                ("ends", offset_of!(TcpLifeRecord, ends)),
                ("tx_bytes", offset_of!(TcpLifeRecord, tx_bytes)),
                ("rx_bytes", offset_of!(TcpLifeRecord, rx_bytes)),
                ("duration_ns", offset_of!(TcpLifeRecord, duration_ns)),
            ],
        ),
        (
            "tcplife",
            "tcp_ends",
            size_of::<TcpEnds>(),
            0,
            &[
                ("family", offset_of!(TcpEnds, family)),
                ("sport", offset_of!(TcpEnds, sport)),
                ("dport", offset_of!(TcpEnds, dport)),
                ("state", offset_of!(TcpEnds, state)),
                ("saddr", offset_of!(TcpEnds, saddr)),
                ("daddr", offset_of!(TcpEnds, daddr)),
            ],
        ),
        (
            "killsnoop",
            "kill_record",
            size_of::<KillRecord>(),
            0,
            &[
                ("target", offset_of!(KillRecord, target)),
                ("target_tgid", offset_of!(KillRecord, target_tgid)),
                ("sig", offset_of!(KillRecord, sig)),
                ("ret", offset_of!(KillRecord, ret)),
                ("syscall", offset_of!(KillRecord, syscall)),
            ],
        ),
        (
            "mountsnoop",
            "mount_record",
            size_of::<MountRecord>(),
            MOUNT_SOURCE_LEN + MOUNT_TARGET_LEN + MOUNT_FSTYPE_LEN,
            &[
                ("op", offset_of!(MountRecord, op)),
                ("ret", offset_of!(MountRecord, ret)),
                ("flags", offset_of!(MountRecord, flags)),
                ("mnt_ns", offset_of!(MountRecord, mnt_ns)),
                ("source_len", offset_of!(MountRecord, source_len)),
                ("target_len", offset_of!(MountRecord, target_len)),
                ("fstype_len", offset_of!(MountRecord, fstype_len)),
                ("source", size_of::<MountRecord>()),
                ("target", size_of::<MountRecord>() + MOUNT_SOURCE_LEN),
                ("fstype", size_of::<MountRecord>() + MOUNT_SOURCE_LEN + MOUNT_TARGET_LEN),
            ],
        ),
    ];
    let offsets = |btf: &Btf, name: &str| -> (usize, Vec<(String, usize)>) {
        let s: Struct = btf.type_by_name(name).unwrap_or_else(|| panic!("struct {name} not in the object's BTF"));
        let members = s
            .iter()
            .map(|m| {
                let off = match m.attr {
                    MemberAttr::Normal { offset } => offset,
                    MemberAttr::BitField { offset, .. } => offset,
                };
                (m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), off as usize / 8)
            })
            .collect();
        (s.size(), members)
    };
    for tool in TOOLS {
        let btf = Btf::from_path(event_object(tool)).unwrap_or_else(|e| panic!("{tool}: BTF: {e}"));
        let (size, members) = offsets(&btf, "event_header");
        assert_eq!(size, size_of::<EventHeader>(), "{tool}: event_header size");
        for (f, off) in h {
            assert!(members.contains(&(f.to_string(), *off)), "{tool}: event_header.{f} not at {off}: {members:?}");
        }
    }
    for (tool, name, fixed, tail, fields) in cases {
        let btf = Btf::from_path(event_object(tool)).unwrap_or_else(|e| panic!("{tool}: BTF: {e}"));
        let (size, members) = offsets(&btf, name);
        assert_eq!(size, fixed + tail, "{tool}: size of struct {name}");
        let mut want: Vec<(String, usize)> = fields.iter().map(|(f, o)| (f.to_string(), *o)).collect();
        if *name != "tcp_ends" {
            want.insert(0, ("h".to_string(), 0));
        }
        let mut got = members.clone();
        got.retain(|(n, _)| !n.starts_with('_'));
        assert_eq!(got, want, "{tool}: members of struct {name}");
    }
}

/// 300 runs of /bin/true with a unique argument: exactly 300 exec records carrying it, each a
/// success by a child of this process; a failed exec is reported with its errno.
#[test]
fn live_execsnoop_sees_300_runs_with_their_argument() {
    if !require_root("live_execsnoop_sees_300_runs_with_their_argument") {
        return;
    }
    let _l = live_lock();
    let tool = load("execsnoop", &[], Some(16 << 20));
    let arg = unique("exec");
    let missing = format!("/nonexistent-{}", unique("exec"));
    let (a, m) = (arg.clone(), missing.clone());
    let keep = move |e: &Event| match e {
        Event::Exec { args, .. } => args.iter().any(|x| x == a.as_bytes() || x == m.as_bytes()),
        _ => false,
    };
    let (a2, m2) = (arg.clone(), missing.clone());
    let (events, lost) = collect(
        &tool,
        keep,
        move || {
            for _ in 0..300 {
                let st = Command::new("/bin/true").arg(&a2).status().expect("run /bin/true");
                assert!(st.success());
            }
            assert!(Command::new(&m2).status().is_err(), "{m2} should not exist");
        },
        |ev| ev.len() >= 301,
    );
    let mut ok = 0;
    let mut failed = Vec::new();
    for e in &events {
        let Event::Exec { rec, args } = e else { unreachable!() };
        if rec.ret == 0 {
            assert_eq!(args, &vec![b"/bin/true".to_vec(), arg.as_bytes().to_vec()], "{rec:?}");
            assert_eq!(rec.argc, 2);
            assert_eq!(rec.flags, 0);
            assert_eq!(rec.h.comm(), "true");
            assert_eq!(rec.ppid, my_pid(), "parent of /bin/true");
            assert_eq!(rec.uid, 0);
            ok += 1;
        } else {
            failed.push((rec.ret, args.clone()));
        }
    }
    assert_eq!(ok, 300, "exec records carrying {arg} (lost {lost})");
    assert_eq!(failed, vec![(-libc::ENOENT, vec![missing.as_bytes().to_vec()])]);
}

/// An argument list longer than 20 arguments is flagged as cut, and each argument is intact.
#[test]
fn live_execsnoop_flags_long_argument_lists() {
    if !require_root("live_execsnoop_flags_long_argument_lists") {
        return;
    }
    let _l = live_lock();
    let tool = load("execsnoop", &[], Some(16 << 20));
    let arg = unique("execlong");
    let a = arg.clone();
    let keep =
        move |e: &Event| matches!(e, Event::Exec { args, .. } if args.iter().any(|x| x.starts_with(a.as_bytes())));
    let a2 = arg.clone();
    let (events, _) = collect(
        &tool,
        keep,
        move || {
            let many: Vec<String> = (0..25).map(|i| format!("{a2}-{i}")).collect();
            assert!(Command::new("/bin/true").args(&many).status().expect("true").success());
            let long = format!("{a2}-{}", "x".repeat(400));
            assert!(Command::new("/bin/true").arg(&long).status().expect("true").success());
        },
        |ev| ev.len() >= 2,
    );
    assert_eq!(events.len(), 2, "{events:?}");
    let Event::Exec { rec, args } = &events[0] else { unreachable!() };
    assert_eq!(rec.argc as usize, EXEC_ARGS_MAX);
    assert_eq!(rec.flags, EXEC_TRUNC_ARGC);
    assert_eq!(args.len(), EXEC_ARGS_MAX);
    assert_eq!(args[19], format!("{arg}-18").into_bytes());
    let Event::Exec { rec, args } = &events[1] else { unreachable!() };
    assert_eq!(rec.flags, EXEC_TRUNC_ARG);
    assert_eq!(args[1].len(), EXEC_ARG_LEN - 1);
    assert!(args[1].starts_with(arg.as_bytes()));
}

/// execve with a NULL argv (Linux takes it as empty): an exec record with no arguments and no
/// "unreadable" flag.
#[test]
fn live_execsnoop_null_argv_is_an_empty_list() {
    if !require_root("live_execsnoop_null_argv_is_an_empty_list") {
        return;
    }
    let _l = live_lock();
    let tool = load("execsnoop", &[], Some(16 << 20));
    let child = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let c2 = child.clone();
    let (events, _) = collect(
        &tool,
        |e| matches!(e, Event::Exec { rec, .. } if rec.h.comm() == "true"),
        move || {
            // SAFETY: fork in a threaded process; the child only calls execve and _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork");
            if pid == 0 {
                // SAFETY: a valid path; NULL argv and envp are accepted by Linux.
                unsafe {
                    libc::execve(c"/bin/true".as_ptr(), std::ptr::null(), std::ptr::null());
                    libc::_exit(127);
                }
            }
            *c2.lock().expect("pid") = pid as u32;
            let mut status = 0;
            // SAFETY: waits for our own child; valid status pointer.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "status {status}");
        },
        |_| true,
    );
    let pid = *child.lock().expect("pid");
    let mine: Vec<&Event> = events.iter().filter(|e| e.header().pid == pid).collect();
    assert_eq!(mine.len(), 1, "{events:?}");
    let Event::Exec { rec, args } = mine[0] else { unreachable!() };
    assert_eq!((rec.ret, rec.argc, rec.flags), (0, 0, 0), "{rec:?}");
    assert!(args.is_empty());
}

/// A child that exits with 7 and one killed by SIGKILL: one exit record each, with that status
/// or signal, this process as parent.
#[test]
fn live_exitsnoop_reports_status_and_signal() {
    if !require_root("live_exitsnoop_reports_status_and_signal") {
        return;
    }
    let _l = live_lock();
    let tool = load("exitsnoop", &[], None);
    let pids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let p2 = pids.clone();
    let (events, _) = collect(
        &tool,
        |e| matches!(e, Event::Exit(_)),
        move || {
            let mut c = Command::new("sh").args(["-c", "exit 7"]).spawn().expect("sh");
            let id1 = c.id();
            assert_eq!(c.wait().expect("wait").code(), Some(7));
            let mut s = Command::new("sleep").arg("1000").spawn().expect("sleep");
            let id2 = s.id();
            s.kill().expect("kill sleep");
            let _ = s.wait();
            p2.lock().expect("pids").extend([id1, id2]);
        },
        |_| true,
    );
    let pids = pids.lock().expect("pids").clone();
    let of = |pid: u32| -> Vec<ExitRecord> {
        events
            .iter()
            .filter_map(|e| if let Event::Exit(r) = e { (r.h.pid == pid).then_some(*r) } else { None })
            .collect()
    };
    let sh = of(pids[0]);
    assert_eq!(sh.len(), 1, "{sh:?}");
    assert_eq!((sh[0].status(), sh[0].signal()), (Some(7), None));
    assert_eq!(sh[0].ppid, my_pid());
    assert_eq!(sh[0].h.tid, pids[0]);
    assert!(sh[0].age_ns > 0);
    let sl = of(pids[1]);
    assert_eq!(sl.len(), 1, "{sl:?}");
    assert_eq!((sl[0].status(), sl[0].signal()), (None, Some(libc::SIGKILL)));
    assert_eq!(sl[0].h.comm(), "sleep");
}

/// Thread exits: with `trace_threads` one record per thread of this process that ends, with
/// its tid; without it none (the thread group goes on).
#[test]
fn live_exitsnoop_threads_only_when_asked() {
    if !require_root("live_exitsnoop_threads_only_when_asked") {
        return;
    }
    let _l = live_lock();
    for trace_threads in [true, false] {
        let tool = load("exitsnoop", &[tgid_filter(my_pid()), ("trace_threads", vec![trace_threads as u8])], None);
        let tids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let t2 = tids.clone();
        let (events, _) = collect(
            &tool,
            |e| matches!(e, Event::Exit(_)),
            move || {
                for _ in 0..3 {
                    // SAFETY: gettid has no preconditions.
                    let tid = std::thread::spawn(|| unsafe { libc::gettid() }).join().expect("thread");
                    t2.lock().expect("tids").push(tid as u32);
                }
            },
            |_| true,
        );
        let tids = tids.lock().expect("tids").clone();
        let seen: Vec<u32> = events
            .iter()
            .filter_map(|e| if let Event::Exit(r) = e { tids.contains(&r.h.tid).then_some(r.h.tid) } else { None })
            .collect();
        if trace_threads {
            assert_eq!(seen, tids, "trace_threads: every thread's exit");
        } else {
            assert!(seen.is_empty(), "no thread exits without trace_threads: {seen:?}");
        }
    }
}

/// A missing file of a unique name: one open record with ENOENT, flags and path; an existing
/// one: its descriptor.
#[test]
fn live_opensnoop_sees_missing_path_with_enoent() {
    if !require_root("live_opensnoop_sees_missing_path_with_enoent") {
        return;
    }
    let _l = live_lock();
    let scratch = Scratch::new("opensnoop");
    let missing = scratch.path().join(unique("missing"));
    let present = scratch.write(&unique("present"), "x");
    let tool = load("opensnoop", &[tgid_filter(my_pid())], None);
    let (m, p) = (missing.clone(), present.clone());
    let keep = move |e: &Event| matches!(e, Event::Open { path, .. } if path == m.as_os_str().as_encoded_bytes() || path == p.as_os_str().as_encoded_bytes());
    let (m2, p2) = (missing.clone(), present.clone());
    let fd = std::sync::Arc::new(std::sync::Mutex::new(-1));
    let fd2 = fd.clone();
    let (events, lost) = collect(
        &tool,
        keep,
        move || {
            let e = std::fs::File::open(&m2).expect_err("missing file opened");
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
            let f = std::fs::OpenOptions::new().append(true).open(&p2).expect("open present file");
            *fd2.lock().expect("fd") = std::os::fd::AsRawFd::as_raw_fd(&f);
            // openat2 takes its flags in a struct: they must come through as well.
            let c = CString::new(m2.as_os_str().as_encoded_bytes()).expect("c path");
            #[repr(C)]
            struct OpenHow {
                flags: u64,
                mode: u64,
                resolve: u64,
            }
            let how = OpenHow { flags: (libc::O_RDONLY | libc::O_NOFOLLOW) as u64, mode: 0, resolve: 0 };
            // SAFETY: valid NUL-terminated path and open_how of the size passed.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    &how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            assert_eq!(rc, -1);
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::ENOENT));
        },
        |ev| ev.len() >= 3,
    );
    assert_eq!(lost, 0);
    assert_eq!(events.len(), 3, "{events:?}");
    let Event::Open { rec, path } = &events[2] else { unreachable!() };
    assert_eq!(path, missing.as_os_str().as_encoded_bytes());
    assert_eq!((rec.ret, rec.syscall as i64), (-libc::ENOENT, libc::SYS_openat2));
    assert_eq!(rec.flags, (libc::O_RDONLY | libc::O_NOFOLLOW) as u64);
    let Event::Open { rec, path } = &events[0] else { unreachable!() };
    assert_eq!(path, missing.as_os_str().as_encoded_bytes());
    assert_eq!(rec.ret, -libc::ENOENT);
    assert_eq!(rec.flags as i32 & libc::O_ACCMODE, libc::O_RDONLY);
    assert_ne!(rec.flags as i32 & libc::O_CLOEXEC, 0, "Rust opens with O_CLOEXEC");
    assert_eq!(rec.h.pid, my_pid());
    assert_eq!(rec.path_len as usize, path.len() + 1);
    let Event::Open { rec, path } = &events[1] else { unreachable!() };
    assert_eq!(path, present.as_os_str().as_encoded_bytes());
    assert_eq!(rec.ret, *fd.lock().expect("fd"));
    assert_ne!(rec.flags as i32 & libc::O_APPEND, 0);
}

/// Disk sectors (512 bytes, counted from the start of the disk, as block requests carry them)
/// of the 4 KiB blocks `blocks` of `file`, from the file system's extent map (`filefrag`, FIEMAP)
/// plus the partition's start.
fn disk_sectors(file: &std::path::Path, blocks: &[u64]) -> Vec<u64> {
    let out = Command::new("filefrag").args(["-v", "-b512"]).arg(file).output().expect("run filefrag (e2fsprogs)");
    assert!(out.status.success(), "filefrag {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    // Extent lines: "   0:        0..      15:   22265709..  22265724:     16: ..." (512-byte units).
    let mut extents = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> =
            line.split(|c: char| c == ':' || c == '.' || c.is_whitespace()).filter(|x| !x.is_empty()).collect();
        if f.len() >= 5 && f[0].parse::<u64>().is_ok() {
            if let (Ok(l0), Ok(l1), Ok(p0)) = (f[1].parse::<u64>(), f[2].parse::<u64>(), f[3].parse::<u64>()) {
                extents.push((l0, l1, p0));
            }
        }
    }
    let dev = std::fs::metadata(file).map(|m| std::os::linux::fs::MetadataExt::st_dev(&m)).expect("stat");
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let start = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/start"))
        .map(|s| s.trim().parse::<u64>().expect("partition start"))
        .unwrap_or(0); // a whole disk has no start file
    blocks
        .iter()
        .map(|b| {
            let l = b * 8;
            let (l0, _, p0) = extents
                .iter()
                .find(|(l0, l1, _)| (*l0..=*l1).contains(&l))
                .unwrap_or_else(|| panic!("block {b} of {} not in its extent map {extents:?}", file.display()));
            start + p0 + (l - l0)
        })
        .collect()
}

/// One round of `live_biosnoop_sees_each_direct_write`: what became of each dd write.
enum BioRound {
    /// Every write has its record.
    AllSeen,
    /// Writes without a record whose completion the kernel ran no program of the object for:
    /// (dd pid, sector).
    NotRun(Vec<(u32, u64)>),
}

/// Loads biosnoop, runs one dd per block in `blocks` (at disk sectors `sectors`) and checks the
/// records: every record of a dd write is exact, no other task's record carries one of the
/// sectors, and a write without a record is only excused when the program's own entry for the
/// dd's bio (`bio_owners`, filled at `block_getrq` in the dd's context, deleted when
/// `block_rq_complete` walks the request) is still there after the dd exited: the write was
/// complete (dd waits for it) but the completion program never ran for it.
fn biosnoop_round(file: &std::path::Path, blocks: &[u64], sectors: &[u64]) -> BioRound {
    let tool = load("biosnoop", &[], Some(4 << 20));
    let btf = Btf::from_path(event_object("biosnoop")).expect("biosnoop BTF");
    let owner: Struct = btf.type_by_name("bio_owner").expect("struct bio_owner in BTF");
    let field = |name: &str| {
        owner
            .iter()
            .find(|m| m.name.is_some_and(|n| n.to_str() == Some(name)))
            .map(|m| match m.attr {
                MemberAttr::Normal { offset } | MemberAttr::BitField { offset, .. } => offset as usize / 8,
            })
            .unwrap_or_else(|| panic!("bio_owner.{name}"))
    };
    let (pid_at, sector_at) = (field("pid"), field("sector"));
    let owners = {
        use libbpf_rs::MapCore;
        tool.obj.maps().find(|m| m.name().to_str() == Some("bio_owners")).expect("map bio_owners")
    };
    let owners = libbpf_rs::MapHandle::try_from(&owners).expect("bio_owners handle");
    // (dd pid, the dd's bio entries left after it exited: their sectors)
    let dds = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u32, Vec<u64>)>::new()));
    let d2 = dds.clone();
    let (path, bl) = (file.to_path_buf(), blocks.to_vec());
    let (events, lost) = collect(
        &tool,
        |e| matches!(e, Event::Bio(_)),
        move || {
            use libbpf_rs::MapCore;
            for b in bl {
                let mut c = Command::new("dd")
                    .arg("if=/dev/zero")
                    .arg(format!("of={}", path.display()))
                    .args(["bs=4k", "count=1", &format!("seek={b}"), "oflag=direct", "conv=notrunc", "status=none"])
                    .spawn()
                    .expect("dd");
                let pid = c.id();
                assert!(c.wait().expect("wait dd").success());
                let left: Vec<u64> = owners
                    .keys()
                    .filter_map(|k| owners.lookup(&k, libbpf_rs::MapFlags::ANY).ok().flatten())
                    .filter(|v| v.len() >= pid_at + 4 && v[pid_at..pid_at + 4] == pid.to_ne_bytes())
                    .map(|v| u64::from_ne_bytes(v[sector_at..sector_at + 8].try_into().expect("8 bytes")))
                    .collect();
                d2.lock().expect("dd list").push((pid, left));
            }
        },
        |_| true,
    );
    let dds = dds.lock().expect("dd list").clone();
    let misses = ebpfx::stream::ringbuf::program_misses(&tool.obj).expect("program statistics");
    let bios: Vec<&BioRecord> =
        events.iter().filter_map(|e| if let Event::Bio(b) = e { Some(b) } else { None }).collect();
    let context = || {
        let near: Vec<String> = bios
            .iter()
            .filter(|b| sectors.iter().any(|s| b.sector <= *s + 8 && *s <= b.sector + b.bytes / 512))
            .map(|b| format!("pid {} comm {} op {} sector {} bytes {}", b.h.pid, b.h.comm(), b.op, b.sector, b.bytes))
            .collect();
        format!("ring lost {lost}, program runs missed {misses}; dd (pid, bio entries left) {dds:?}; expected sectors {sectors:?}; records at those sectors: {near:#?}")
    };
    // No record of another task covers one of our sectors (a write counted under the wrong pid).
    let pids: Vec<u32> = dds.iter().map(|d| d.0).collect();
    let dev = std::fs::metadata(file).map(|m| std::os::linux::fs::MetadataExt::st_dev(&m)).expect("stat");
    let major = libc::major(dev);
    for b in &bios {
        if !pids.contains(&b.h.pid) && sectors.iter().any(|s| b.sector <= *s && *s < b.sector + b.bytes / 512) {
            panic!("a record of pid {} ({}) covers a dd write: {b:?}\n{}", b.h.pid, b.h.comm(), context());
        }
    }
    let mut not_run = Vec::new();
    for (k, (pid, left)) in dds.iter().enumerate() {
        // Writes only: starting dd may read its own pages from disk under its pid.
        let mine: Vec<&&BioRecord> = bios.iter().filter(|b| b.h.pid == *pid && b.op == 1).collect();
        if mine.is_empty() && left.contains(&sectors[k]) {
            not_run.push((*pid, sectors[k]));
            continue;
        }
        assert_eq!(mine.len(), 1, "records of dd {pid} (block {}):\n{}", blocks[k], context());
        let w = mine[0];
        assert_eq!((w.op, w.sector, w.bytes, w.error), (1, sectors[k], 4096, 0), "dd {pid}: {w:?}\n{}", context());
        assert_eq!(w.h.comm(), "dd");
        assert!(w.latency_ns > 0);
        // A partition's minor differs from its disk's: compare the major only.
        assert_eq!(w.major_minor().0, major, "{w:?}");
        assert!(!w.disk_name().is_empty());
    }
    if not_run.is_empty() {
        BioRound::AllSeen
    } else {
        BioRound::NotRun(not_run)
    }
}

/// N runs of `dd oflag=direct` of one 4 KiB block each on the root disk: exactly one write
/// record per dd, by that dd's pid, 4096 bytes, at the block's disk sector (from the file's
/// extent map), with the disk named and a device latency; no record of any other task at those
/// sectors (every record is looked at, whatever its comm).
///
/// The blocks are every other block of a file written and synced beforehand, first and last
/// left alone: no other IO can be adjacent to ours, so the block layer cannot merge someone
/// else's bio into our request (or ours into theirs), which on a shared disk made a request of
/// 8192 bytes or one request too few now and then.
///
/// A round can lose writes that no BPF program was run for: on the test VM (6.18) the kernel
/// now and then runs none of the programs attached to `block_rq_complete` and `block_io_done`
/// (tp_btf, raw_tp and classic tracepoint alike, no recursion miss counted) for a completion
/// that tracefs does record, each time the completion softirq ran on top of a thread of the
/// VM's agent (docs/events.md, "biosnoop and merged bios"). Such a write is told apart by the
/// program's own bio entry, left undeleted, and the round is repeated (at most 3 rounds); any
/// other missing or wrong record fails the test at once.
#[test]
fn live_biosnoop_sees_each_direct_write() {
    if !require_root("live_biosnoop_sees_each_direct_write") {
        return;
    }
    let _l = live_lock();
    let scratch = Scratch::new("biosnoop");
    let n = 32u64;
    let file = scratch.path().join("io");
    // Real data in every block, on disk before attach: the direct writes below are plain
    // overwrites (no unwritten extent to convert, which would make the file system write
    // around our blocks). Written with O_DIRECT too: pages of a buffered fill stay in the page
    // cache, and when ext4 cannot drop one of them (its buffers still held by the journal) a
    // direct write falls back to a buffered one, which writeback sends later, not as dd.
    let fill = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", file.display()))
        .args(["bs=4k", &format!("count={}", 2 * n + 1), "oflag=direct,sync", "status=none"])
        .status()
        .expect("dd fill");
    assert!(fill.success(), "filling the io file");
    let blocks: Vec<u64> = (0..n).map(|k| 2 * k + 1).collect();
    let sectors = disk_sectors(&file, &blocks);
    let mut skipped = Vec::new();
    for round in 1..=3 {
        match biosnoop_round(&file, &blocks, &sectors) {
            BioRound::AllSeen => {
                // Overwrites stay where they were.
                assert_eq!(disk_sectors(&file, &blocks), sectors, "the file's blocks moved");
                if !skipped.is_empty() {
                    eprintln!("biosnoop: writes whose completion ran no BPF program, by round: {skipped:?}");
                }
                return;
            }
            BioRound::NotRun(w) => skipped.push((round, w)),
        }
    }
    panic!(
        "3 rounds each lost writes whose bio the completion program never walked (the kernel did not run it, or it returned before its walk): {skipped:?}"
    );
}

/// A loopback TCP connection of this process: tcpconnect sees the connect() to the filtered
/// port and not one to another port; tcplife sees both ends close with the exact data bytes.
#[test]
fn live_tcpconnect_and_tcplife_see_a_loopback_connection() {
    if !require_root("live_tcpconnect_and_tcplife_see_a_loopback_connection") {
        return;
    }
    let _l = live_lock();
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let closed = TcpListener::bind("127.0.0.1:0").expect("second port");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut ports = [0u8; 16];
    ports[..2].copy_from_slice(&port.to_ne_bytes());
    let connect = load(
        "tcpconnect",
        &[tgid_filter(my_pid()), ("filter_ports", ports.to_vec()), ("filter_ports_len", 1u32.to_ne_bytes().to_vec())],
        None,
    );
    let life = load("tcplife", &[tgid_filter(my_pid())], None);
    let (tx, rx) = (123_457usize, 6_789usize);
    let client_port = std::sync::Arc::new(std::sync::Mutex::new(0u16));
    let cp = client_port.clone();
    let workload = move || {
        assert!(TcpStream::connect(("127.0.0.1", closed_port)).is_err(), "port {closed_port} should refuse");
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = vec![0u8; tx];
            s.read_exact(&mut got).expect("server read");
            s.write_all(&vec![7u8; rx]).expect("server write");
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).expect("server eof");
            assert!(rest.is_empty());
        });
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        *cp.lock().expect("port") = c.local_addr().expect("local").port();
        c.write_all(&vec![1u8; tx]).expect("client write");
        let mut got = vec![0u8; rx];
        c.read_exact(&mut got).expect("client read");
        drop(c);
        server.join().expect("server thread");
    };
    // tcplife: both ends, read while the workload runs.
    // Done when both ends of the connection to `port` closed (the refused connect() has its
    // own record, which must not count).
    let both_ends = move |ev: &[Event]| {
        ev.iter().filter(|e| matches!(e, Event::TcpLife(r) if r.ends.sport == port || r.ends.dport == port)).count()
            >= 2
    };
    let (lives, lost) = collect(&life, |e| matches!(e, Event::TcpLife(_)), workload, both_ends);
    assert_eq!(lost, 0);
    let (conns, _) = collect(&connect, |e| matches!(e, Event::TcpConnect(_)), || {}, |_| true);
    let cport = *client_port.lock().expect("port");

    let lo = loopback_v4_mapped();
    let conns: Vec<&TcpConnectRecord> =
        conns.iter().filter_map(|e| if let Event::TcpConnect(r) = e { Some(r) } else { None }).collect();
    assert_eq!(conns.len(), 1, "only the connect() to port {port} passes the filter: {conns:?}");
    assert_eq!(conns[0].ends.dport, port);
    assert_eq!(conns[0].ends.daddr, lo);
    assert_eq!(conns[0].ends.family, 2);
    assert_eq!(conns[0].h.pid, my_pid());

    let find = |sport: u16, dport: u16| -> TcpLifeRecord {
        let v: Vec<TcpLifeRecord> = lives
            .iter()
            .filter_map(|e| if let Event::TcpLife(r) = e { Some(*r) } else { None })
            .filter(|r| r.ends.sport == sport && r.ends.dport == dport)
            .collect();
        assert_eq!(v.len(), 1, "{sport}->{dport}: {lives:?}");
        v[0]
    };
    let client = find(cport, port);
    assert_eq!((client.tx_bytes, client.rx_bytes), (tx as u64, rx as u64), "client {client:?}");
    assert_eq!((client.ends.saddr, client.ends.daddr), (lo, lo));
    assert_eq!(client.h.pid, my_pid());
    assert!(client.duration_ns > 0);
    let server = find(port, cport);
    assert_eq!((server.tx_bytes, server.rx_bytes), (rx as u64, tx as u64), "server {server:?}");
    assert_eq!(server.h.pid, my_pid());
}

/// IPv6: a connection over ::1 comes through tcpconnect and tcplife with 16-byte addresses.
#[test]
fn live_tcp_tools_see_ipv6_loopback() {
    if !require_root("live_tcp_tools_see_ipv6_loopback") {
        return;
    }
    let _l = live_lock();
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
            panic!("no IPv6 loopback under CI");
        }
        eprintln!("SKIPPED live_tcp_tools_see_ipv6_loopback: no IPv6 loopback");
        return;
    };
    let port = listener.local_addr().expect("addr").port();
    let connect = load("tcpconnect", &[tgid_filter(my_pid())], None);
    let life = load("tcplife", &[tgid_filter(my_pid())], None);
    let (tx, rx) = (5_000usize, 321usize);
    let workload = move || {
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = vec![0u8; tx];
            s.read_exact(&mut got).expect("server read");
            s.write_all(&vec![7u8; rx]).expect("server write");
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).expect("server eof");
        });
        let mut c = TcpStream::connect(("::1", port)).expect("connect");
        c.write_all(&vec![1u8; tx]).expect("client write");
        let mut got = vec![0u8; rx];
        c.read_exact(&mut got).expect("client read");
        drop(c);
        server.join().expect("server thread");
    };
    let both_ends = move |ev: &[Event]| {
        ev.iter().filter(|e| matches!(e, Event::TcpLife(r) if r.ends.sport == port || r.ends.dport == port)).count()
            >= 2
    };
    let (lives, _) = collect(&life, |e| matches!(e, Event::TcpLife(_)), workload, both_ends);
    let (conns, _) = collect(&connect, |e| matches!(e, Event::TcpConnect(_)), || {}, |_| true);
    let v6lo = std::net::Ipv6Addr::LOCALHOST.octets();
    let conns: Vec<&TcpConnectRecord> = conns
        .iter()
        .filter_map(|e| if let Event::TcpConnect(r) = e { (r.ends.dport == port).then_some(r) } else { None })
        .collect();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!((conns[0].ends.family, conns[0].ends.daddr, conns[0].ends.saddr), (10, v6lo, v6lo));
    assert_eq!(conns[0].ends.remote().to_string(), "::1");
    let client: Vec<TcpLifeRecord> = lives
        .iter()
        .filter_map(|e| if let Event::TcpLife(r) = e { (r.ends.dport == port).then_some(*r) } else { None })
        .collect();
    assert_eq!(client.len(), 1, "{lives:?}");
    assert_eq!((client[0].ends.family, client[0].ends.saddr, client[0].ends.daddr), (10, v6lo, v6lo));
    assert_eq!((client[0].tx_bytes, client[0].rx_bytes), (tx as u64, rx as u64));
}

/// A signal this process sends to its child, and one to a pid that does not exist.
#[test]
fn live_killsnoop_sees_the_signals_sent() {
    if !require_root("live_killsnoop_sees_the_signals_sent") {
        return;
    }
    let _l = live_lock();
    let tool = load("killsnoop", &[tgid_filter(my_pid())], None);
    let child = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let c2 = child.clone();
    let (events, _) = collect(
        &tool,
        |e| matches!(e, Event::Kill(_)),
        move || {
            let mut s = Command::new("sleep").arg("1000").spawn().expect("sleep");
            *c2.lock().expect("pid") = s.id();
            // SAFETY: kill has no memory preconditions; the pid is our own child, not yet reaped.
            assert_eq!(unsafe { libc::kill(s.id() as i32, libc::SIGTERM) }, 0);
            let _ = s.wait();
            // SAFETY: as above; i32::MAX is above any pid_max, so no process is signalled.
            assert_eq!(unsafe { libc::kill(i32::MAX, 0) }, -1);
        },
        |ev| ev.len() >= 2,
    );
    let pid = *child.lock().expect("pid");
    let got: Vec<(i32, u32, i32)> = events
        .iter()
        .filter_map(|e| if let Event::Kill(k) = e { Some((k.target, k.sig, k.ret)) } else { None })
        .collect();
    assert_eq!(got, vec![(pid as i32, libc::SIGTERM as u32, 0), (i32::MAX, 0, -libc::ESRCH)]);
    let Event::Kill(k) = &events[0] else { unreachable!() };
    assert_eq!(k.h.pid, my_pid());
    assert_eq!(k.syscall as i64, libc::SYS_kill);
}

/// A tmpfs mount and umount in a mount namespace of the test's own (a forked child that
/// unshares): three records (making / private, mount, umount) with their strings and results.
#[test]
fn live_mountsnoop_sees_mount_and_umount_in_own_namespace() {
    if !require_root("live_mountsnoop_sees_mount_and_umount_in_own_namespace") {
        return;
    }
    let _l = live_lock();
    let scratch = Scratch::new("mountsnoop");
    let target = scratch.path().join("mnt");
    std::fs::create_dir(&target).expect("mkdir");
    let source = unique("tmpfs");
    let tool = load("mountsnoop", &[], None);
    let child = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let c2 = child.clone();
    let (src, tgt) = (source.clone(), target.clone());
    let (events, _) = collect(
        &tool,
        |e| matches!(e, Event::Mount { .. }),
        move || {
            let (src_c, tgt_c) =
                (CString::new(src).expect("c"), CString::new(tgt.as_os_str().as_encoded_bytes()).expect("c"));
            // SAFETY: fork in a threaded process; the child only makes system calls (unshare,
            // mount, umount2, _exit) on memory prepared before the fork, no allocation.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork");
            if pid == 0 {
                // SAFETY: plain system calls on valid NUL-terminated strings, then _exit.
                unsafe {
                    let mut rc = libc::unshare(libc::CLONE_NEWNS);
                    rc |= libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    );
                    rc |= libc::mount(
                        src_c.as_ptr(),
                        tgt_c.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_NOSUID,
                        std::ptr::null(),
                    );
                    rc |= libc::umount2(tgt_c.as_ptr(), 0);
                    libc::_exit(if rc == 0 { 0 } else { 1 });
                }
            }
            *c2.lock().expect("pid") = pid as u32;
            let mut status = 0;
            // SAFETY: waits for our own child; status is a valid out pointer.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child mount/umount failed: {status}");
        },
        |_| true,
    );
    let pid = *child.lock().expect("pid");
    let mine: Vec<(&MountRecord, String, String, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Mount { rec, source, target, fstype } if rec.h.pid == pid => Some((
                rec,
                String::from_utf8_lossy(source).into_owned(),
                String::from_utf8_lossy(target).into_owned(),
                String::from_utf8_lossy(fstype).into_owned(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(mine.len(), 3, "{mine:?}");
    let t = target.to_string_lossy().into_owned();
    assert_eq!((mine[0].0.op, mine[0].2.as_str(), mine[0].0.ret), (MOUNT_OP_MOUNT, "/", 0));
    assert_eq!(mine[0].0.flags, libc::MS_REC | libc::MS_PRIVATE);
    assert_eq!(
        (mine[1].0.op, mine[1].1.as_str(), mine[1].2.as_str(), mine[1].3.as_str(), mine[1].0.ret),
        (MOUNT_OP_MOUNT, source.as_str(), t.as_str(), "tmpfs", 0)
    );
    assert_eq!(mine[1].0.flags, libc::MS_NOSUID);
    assert_eq!((mine[2].0.op, mine[2].2.as_str(), mine[2].0.ret), (MOUNT_OP_UMOUNT, t.as_str(), 0));
    // The child's namespace, not ours.
    let own_ns = std::fs::metadata("/proc/self/ns/mnt").map(|m| std::os::unix::fs::MetadataExt::ino(&m)).expect("ns");
    assert!(mine.iter().all(|m| m.0.mnt_ns == mine[1].0.mnt_ns));
    assert_ne!(mine[1].0.mnt_ns as u64, own_ns);
}

/// Overload: a child opens a missing file `produced` times into a ring of `ring` bytes, read
/// only after it is done or all along; returns (received, lost).
fn overload(ring: u64, produced: usize, read_while_producing: bool) -> (usize, usize) {
    let path = CString::new(format!("/nonexistent-{}", unique("overload"))).expect("c");
    let mut gate = [0i32; 2];
    // SAFETY: gate is a valid array of two ints for pipe to fill.
    assert_eq!(unsafe { libc::pipe(gate.as_mut_ptr()) }, 0);
    // SAFETY: fork in a threaded process; the child only makes system calls (read, open, _exit)
    // on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: plain system calls on valid buffers, then _exit.
        unsafe {
            let mut b = 0u8;
            libc::read(gate[0], (&mut b as *mut u8).cast(), 1);
            for _ in 0..produced {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                if fd >= 0 {
                    libc::close(fd);
                }
            }
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the read end.
    unsafe { libc::close(gate[0]) };
    let tool = load("opensnoop", &[tgid_filter(pid as u32)], Some(ring));
    let received = Rc::new(RefCell::new(0usize));
    let r2 = received.clone();
    let want = path.as_bytes().to_vec();
    let reader = EventReader::new(&tool.obj, RING_MAP, LOST_MAP, move |b: &[u8]| {
        if let Ok(Event::Open { rec, path }) = parse(b) {
            if rec.h.pid == pid as u32 && path == want && rec.ret == -libc::ENOENT {
                *r2.borrow_mut() += 1;
            }
        }
    })
    .expect("reader");
    // Release the child only once attached.
    // SAFETY: one byte from a valid buffer into our pipe; then the write end is closed.
    unsafe {
        assert_eq!(libc::write(gate[1], b"g".as_ptr().cast(), 1), 1);
        libc::close(gate[1]);
    }
    let mut status = 0;
    loop {
        let flags = if read_while_producing { libc::WNOHANG } else { 0 };
        // SAFETY: waits for our own child (WNOHANG when reading meanwhile); valid status pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
        if rc == pid {
            break;
        }
        assert_eq!(rc, 0, "waitpid");
        reader.poll(Duration::from_millis(10)).expect("poll");
    }
    reader.drain().expect("drain");
    let lost = reader.lost().expect("lost") as usize;
    let received = *received.borrow();
    eprintln!("overload (ring {ring} B, reading along: {read_while_producing}): produced {produced}, received {received}, lost {lost}");
    (received, lost)
}

/// A one-page ring nobody reads while 20 000 records are produced, and a 16 KiB ring read all
/// along while 200 000 are: received + lost = produced, exactly, and both are non-zero.
#[test]
fn live_ring_overload_lost_count_is_exact() {
    if !require_root("live_ring_overload_lost_count_is_exact") {
        return;
    }
    let _l = live_lock();
    for (ring, produced, along) in [(4096u64, 20_000usize, false), (16384, 200_000, true)] {
        let (received, lost) = overload(ring, produced, along);
        assert!(received > 0 && lost > 0, "ring {ring}: received {received}, lost {lost}");
        assert_eq!(received + lost, produced, "ring {ring}: received {received} + lost {lost} != produced {produced}");
    }
}

/// Members of a BTF struct, nested structs flattened, as (name, offset, size, padding after):
/// explicit `_pad` members become the padding of the member before them.
fn flat_members(btf: &Btf, s: &Struct, base: usize, out: &mut Vec<(String, usize, usize, usize)>) {
    let offs: Vec<usize> = s
        .iter()
        .map(|m| match m.attr {
            MemberAttr::Normal { offset } | MemberAttr::BitField { offset, .. } => offset as usize / 8,
        })
        .collect();
    for (i, m) in s.iter().enumerate() {
        let end = offs.get(i + 1).copied().unwrap_or(s.size());
        let (off, size) = (base + offs[i], end - offs[i]);
        let name = m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let inner: Option<Struct> = btf
            .type_by_id::<libbpf_rs::btf::BtfType>(m.ty)
            .and_then(|t| Struct::try_from(t.skip_mods_and_typedefs()).ok());
        if let Some(inner) = inner {
            flat_members(btf, &inner, off, out);
        } else if name.starts_with('_') {
            let last = out.last_mut().expect("padding after a member");
            last.3 += size;
        } else {
            out.push((name, off, size, 0));
        }
    }
}

/// The event configs in configs/ describe their records exactly: field by field,
/// size and padding equal the BTF members of the record struct (names are display names).
#[test]
fn draft_event_configs_match_object_btf() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    for tool in TOOLS {
        let path = dir.join(format!("{tool}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ev = &yaml["events"][0];
        let record = ev["record"].as_str().expect("record");
        let btf = Btf::from_path(event_object(tool)).unwrap_or_else(|e| panic!("{tool}: BTF: {e}"));
        let s: Struct = btf.type_by_name(record).unwrap_or_else(|| panic!("{tool}: no struct {record}"));
        let mut members = Vec::new();
        flat_members(&btf, &s, 0, &mut members);
        let fields = ev["fields"].as_sequence().expect("fields");
        assert_eq!(fields.len(), members.len(), "{tool}: fields vs members {members:?}");
        let mut off = 0usize;
        for (f, (mname, moff, msize, mpad)) in fields.iter().zip(&members) {
            let size = f["size"].as_u64().expect("size") as usize;
            let pad = f["padding"].as_u64().unwrap_or(0) as usize;
            let fname = f["name"].as_str().unwrap_or_default();
            assert_eq!((off, size, pad), (*moff, *msize, *mpad), "{tool}: field {fname} vs member {mname}");
            off += size + pad;
        }
        assert_eq!(off, s.size(), "{tool}: record size");
        for l in ev["labels"].as_sequence().expect("labels") {
            let l = l.as_str().expect("label name");
            assert!(fields.iter().any(|f| f["name"].as_str() == Some(l)), "{tool}: label {l} is not a field");
        }
    }
}

/// Wrong map names and sizes are refused with the map named, not a bare EINVAL.
#[test]
fn live_reader_refuses_wrong_maps_by_name() {
    if !require_root("live_reader_refuses_wrong_maps_by_name") {
        return;
    }
    let _l = live_lock();
    let mut builder = ObjectBuilder::default();
    builder.name("opensnoop").expect("name");
    let mut open = builder.open_file(event_object("opensnoop")).expect("open");
    for bad in [0u64, 6000, 12288] {
        let e = set_ring_size(&mut open, RING_MAP, bad).expect_err("bad size accepted");
        assert!(e.to_string().contains("power of two"), "{e:#}");
    }
    let e = set_ring_size(&mut open, "opens", 8192).expect_err("hash map accepted as ring");
    assert!(e.to_string().contains("opens") && e.to_string().contains("not a ring buffer"), "{e:#}");
    let e = set_ring_size(&mut open, "nosuch", 8192).expect_err("missing map accepted");
    assert!(e.to_string().contains("no map named nosuch"), "{e:#}");
    let obj = open.load().expect("load");
    let err = |ring: &str, lost: &str| match EventReader::new(&obj, ring, lost, |_| {}) {
        Ok(_) => panic!("{ring}/{lost} accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err("opens", LOST_MAP).contains("map opens is a"), "not a ring");
    assert!(err("nosuch", LOST_MAP).contains("no map named nosuch"));
    assert!(err(RING_MAP, "opens").contains("map opens: the loss counter must be a per-CPU array"));
    assert!(err(RING_MAP, "nosuch").contains("no map named nosuch"));
    let ok = EventReader::new(&obj, RING_MAP, LOST_MAP, |_| {}).expect("reader");
    assert_eq!(ok.lost().expect("lost"), 0);
    assert!(ok.epoll_fd() >= 0);
}
