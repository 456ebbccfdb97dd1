//! The second round of event tools through the CLI (issue 12 item 3: tcpstates, bindsnoop,
//! statsnoop, tcpaccept, gethostlatency): each test runs `ebpfx run TOOL -f json`, makes a
//! workload of its own (its own sockets, ports, paths and host names, told apart by pid, file
//! descriptor, port or a unique string), ends the run with an interrupt and checks the lines
//! against exactly what it did.
mod common;
use common::*;

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

fn me() -> u64 {
    u64::from(std::process::id())
}

/// Each new tool's fields line up with its record in the object's BTF (`ebpfx check`), and
/// `ebpfx list` shows it.
#[test]
fn new_event_tools_check_clean_and_are_listed() {
    let list = ebpfx(&["list"]);
    let listed = text(&list.stdout);
    for tool in ["tcpstates", "bindsnoop", "statsnoop", "tcpaccept", "gethostlatency"] {
        let out = ebpfx(&["check", tool]);
        assert_eq!(out.status.code(), Some(0), "{tool}: {}{}", text(&out.stdout), text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("{tool}: ok")), "{tool}: {}", text(&out.stdout));
        assert!(listed.lines().any(|l| l.starts_with(tool) && l.contains("built-in")), "{tool} not listed:\n{listed}");
    }
}

/// The Rust twins in src/stream/records.rs of the new tools' records have the size and field
/// offsets the objects' BTF gives their C structs (no root needed: the objects are only read).
#[test]
fn new_event_records_match_object_btf() {
    use ebpfx::stream::records::*;
    use libbpf_rs::btf::types::{MemberAttr, Struct};
    use libbpf_rs::btf::{Btf, HasSize};
    use std::mem::{offset_of, size_of};
    type Fields = &'static [(&'static str, usize)];
    // (tool, C struct, Rust size of the fixed part, bytes of tail after it, (member, offset)...)
    let cases: &[(&str, &str, usize, usize, Fields)] = &[
        (
            "tcpstates",
            "tcp_state_record",
            size_of::<TcpStateRecord>(),
            0,
            &[
                ("h", 0),
                ("ends", offset_of!(TcpStateRecord, ends)),
                ("oldstate", offset_of!(TcpStateRecord, oldstate)),
                ("newstate", offset_of!(TcpStateRecord, newstate)),
                ("_pad", offset_of!(TcpStateRecord, _pad)),
                ("old_ns", offset_of!(TcpStateRecord, old_ns)),
                ("skaddr", offset_of!(TcpStateRecord, skaddr)),
            ],
        ),
        (
            "bindsnoop",
            "bind_record",
            size_of::<BindRecord>(),
            0,
            &[("h", 0), ("c", offset_of!(BindRecord, c)), ("ret", offset_of!(BindRecord, ret))],
        ),
        (
            "bindsnoop",
            "bind_call",
            size_of::<BindCall>(),
            0,
            &[
                ("fd", offset_of!(BindCall, fd)),
                ("family", offset_of!(BindCall, family)),
                ("port", offset_of!(BindCall, port)),
                ("protocol", offset_of!(BindCall, protocol)),
                ("type", offset_of!(BindCall, sock_type)),
                ("addr", offset_of!(BindCall, addr)),
            ],
        ),
        (
            "statsnoop",
            "stat_record",
            size_of::<StatRecord>(),
            STAT_PATH_LEN,
            &[
                ("h", 0),
                ("ret", offset_of!(StatRecord, ret)),
                ("syscall", offset_of!(StatRecord, syscall)),
                ("flags", offset_of!(StatRecord, flags)),
                ("path_len", offset_of!(StatRecord, path_len)),
                ("path", size_of::<StatRecord>()),
            ],
        ),
        (
            "tcpaccept",
            "tcp_accept_record",
            size_of::<TcpAcceptRecord>(),
            0,
            &[
                ("h", 0),
                ("ends", offset_of!(TcpAcceptRecord, ends)),
                ("fd", offset_of!(TcpAcceptRecord, fd)),
                ("syscall", offset_of!(TcpAcceptRecord, syscall)),
            ],
        ),
        (
            "gethostlatency",
            "host_lookup_record",
            size_of::<HostLookupRecord>(),
            HOST_LEN,
            &[
                ("h", 0),
                ("latency_ns", offset_of!(HostLookupRecord, latency_ns)),
                ("ret", offset_of!(HostLookupRecord, ret)),
                ("func", offset_of!(HostLookupRecord, func)),
                ("host_len", offset_of!(HostLookupRecord, host_len)),
                ("_pad", offset_of!(HostLookupRecord, _pad)),
                ("host", size_of::<HostLookupRecord>()),
            ],
        ),
    ];
    for (tool, name, fixed, tail, fields) in cases {
        let path = object_dir().join("events").join(format!("{tool}.bpf.o"));
        let btf = Btf::from_path(&path).unwrap_or_else(|e| panic!("{tool}: BTF: {e}"));
        let s: Struct = btf.type_by_name(name).unwrap_or_else(|| panic!("{tool}: struct {name} not in BTF"));
        let got: Vec<(String, usize)> = s
            .iter()
            .map(|m| {
                let off = match m.attr {
                    MemberAttr::Normal { offset } | MemberAttr::BitField { offset, .. } => offset,
                };
                (m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), off as usize / 8)
            })
            .collect();
        let want: Vec<(String, usize)> = fields.iter().map(|(f, o)| (f.to_string(), *o)).collect();
        assert_eq!(s.size(), fixed + tail, "{tool}: size of struct {name}");
        assert_eq!(got, want, "{tool}: members of struct {name}");
    }
    // Each record names its kind: the one enum in bpf/events.bpf.h and records.rs agree.
    for (kind, tool) in
        [(9, "tcpstates"), (10, "bindsnoop"), (11, "statsnoop"), (12, "tcpaccept"), (13, "gethostlatency")]
    {
        assert_eq!(Kind::from_u32(kind).map(Kind::tool), Some(tool));
    }
}

/// One loopback connection of the test's own, from listen() to the listener's close: each of
/// its three sockets goes through exactly the states TCP prescribes, in order, and the time in
/// the old state is known from each socket's second change on.
#[test]
fn live_tcpstates_sees_each_state_of_a_loopback_connection() {
    if !require_root("live_tcpstates_sees_each_state_of_a_loopback_connection") {
        return;
    }
    let _l = live_lock();
    let mut ports = (0u16, 0u16);
    let (code, out, err) = run_events(&["run", "tcpstates", "-f", "json"], || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        let cport = client.local_addr().expect("client addr").port();
        client.write_all(b"0123456789").expect("write");
        let mut got = [0u8; 10];
        server.read_exact(&mut got).expect("read");
        // The client closes first (FIN_WAIT1/2), the server sees the end, then closes.
        drop(client);
        let mut rest = Vec::new();
        assert_eq!(server.read_to_end(&mut rest).expect("read to the end"), 0);
        drop(server);
        drop(listener);
        // The client's last change comes with the server's FIN: give the kernel a moment.
        std::thread::sleep(std::time::Duration::from_millis(300));
        ports = (port, cport);
    });
    assert_eq!(code, Some(0), "{err}");
    let (port, cport) = (u64::from(ports.0), u64::from(ports.1));
    let lines = json_lines(&out);
    let socket_of = |pick: &dyn Fn(&serde_json::Value) -> bool, what: &str| -> &str {
        let found: Vec<&str> = lines.iter().filter(|v| pick(v)).filter_map(|v| v["skaddr"].as_str()).collect();
        assert_eq!(found.len(), 1, "{what}: {found:?}\n{out}");
        found[0]
    };
    let listener = socket_of(
        &|v| state(v) == ("CLOSE", "LISTEN") && v["lport"].as_u64() == Some(port) && v["pid"].as_u64() == Some(me()),
        "listen()",
    );
    let client = socket_of(
        &|v| state(v) == ("CLOSE", "SYN_SENT") && v["rport"].as_u64() == Some(port) && v["pid"].as_u64() == Some(me()),
        "connect()",
    );
    let server = socket_of(
        &|v| {
            state(v) == ("LISTEN", "SYN_RECV")
                && v["lport"].as_u64() == Some(port)
                && v["rport"].as_u64() == Some(cport)
        },
        "the accepted socket's birth",
    );
    // A socket's changes: its address, and the test's port at one end (a kernel address may be
    // reused by another process's socket once one of these is freed).
    let changes = |sk: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|v| {
                v["skaddr"].as_str() == Some(sk)
                    && (v["lport"].as_u64() == Some(port) || v["rport"].as_u64() == Some(port))
            })
            .collect()
    };
    type Sequence = &'static [(&'static str, &'static str)];
    let expect: [(&str, &str, Sequence); 3] = [
        (listener, "listener", &[("CLOSE", "LISTEN"), ("LISTEN", "CLOSE")]),
        (
            client,
            "client",
            &[
                ("CLOSE", "SYN_SENT"),
                ("SYN_SENT", "ESTABLISHED"),
                ("ESTABLISHED", "FIN_WAIT1"),
                ("FIN_WAIT1", "FIN_WAIT2"),
                ("FIN_WAIT2", "CLOSE"),
            ],
        ),
        (
            server,
            "server",
            &[
                ("LISTEN", "SYN_RECV"),
                ("SYN_RECV", "ESTABLISHED"),
                ("ESTABLISHED", "CLOSE_WAIT"),
                ("CLOSE_WAIT", "LAST_ACK"),
                ("LAST_ACK", "CLOSE"),
            ],
        ),
    ];
    for (sk, what, want) in expect {
        let seen = changes(sk);
        let got: Vec<(&str, &str)> = seen.iter().map(|v| state(v)).collect();
        assert_eq!(got, want.to_vec(), "{what} socket:\n{out}");
        for (i, v) in seen.iter().enumerate() {
            // The first change of each socket has no earlier one to measure from.
            assert_eq!(v["old_time"] == "0ns", i == 0, "{what} change {i}: {v}");
            assert_eq!(v["laddr"], "127.0.0.1", "{v}");
            assert_eq!(v["family"], "ipv4", "{v}");
        }
        // Changes the test's own calls make run in its context: listen(), connect(), close().
        for v in &seen {
            if matches!(
                state(v),
                ("CLOSE", "LISTEN")
                    | ("LISTEN", "CLOSE")
                    | ("CLOSE", "SYN_SENT")
                    | ("ESTABLISHED", "FIN_WAIT1")
                    | ("CLOSE_WAIT", "LAST_ACK")
            ) {
                assert_eq!(v["pid"].as_u64(), Some(me()), "{what}: {v}");
            }
        }
    }
    // The connection's ends once the client's port is chosen.
    let established =
        changes(client).into_iter().find(|v| state(v) == ("SYN_SENT", "ESTABLISHED")).expect("established");
    assert_eq!((established["lport"].as_u64(), established["rport"].as_u64()), (Some(cport), Some(port)));
    assert_eq!(established["raddr"], "127.0.0.1");
}

/// (old state, new state) of a tcpstates line.
fn state(v: &serde_json::Value) -> (&str, &str) {
    (v["oldstate"].as_str().unwrap_or("?"), v["newstate"].as_str().unwrap_or("?"))
}

/// A socket of the test's own from libc (its descriptor is known): `socket(family, type)`.
struct Fd(i32);

impl Fd {
    fn socket(family: i32, kind: i32) -> Fd {
        // SAFETY: socket(2) with constant arguments; the descriptor is owned by the Fd.
        let fd = unsafe { libc::socket(family, kind | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        Fd(fd)
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

/// bind() of an IPv4 address: Ok(()) or the errno.
fn bind_v4(fd: &Fd, port: u16) -> Result<(), i32> {
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([127, 0, 0, 1]) },
        sin_zero: [0; 8],
    };
    // SAFETY: a valid sockaddr_in and its size.
    let rc = unsafe {
        libc::bind(
            fd.0,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// bind() of [::1]:port.
fn bind_v6_loopback(fd: &Fd, port: u16) -> Result<(), i32> {
    // SAFETY: sockaddr_in6 is plain data; all zero is a valid value.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_port = port.to_be();
    sa.sin6_addr.s6_addr[15] = 1;
    // SAFETY: a valid sockaddr_in6 and its size.
    let rc = unsafe {
        libc::bind(
            fd.0,
            (&sa as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

fn local_port(fd: &Fd) -> u16 {
    // SAFETY: sockaddr_in is plain data; getsockname writes at most `len` bytes into it.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a valid buffer and its length.
    let rc = unsafe { libc::getsockname(fd.0, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len) };
    assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
    u16::from_be(sa.sin_port)
}

/// The test binds a TCP socket to a port the kernel picks (port 0 asked), then a second one to
/// that port while the first listens (EADDRINUSE), and a UDP socket to [::1]: exactly those
/// three binds, with their descriptors, protocols, addresses and results.
#[test]
fn live_bindsnoop_sees_own_binds_and_eaddrinuse() {
    if !require_root("live_bindsnoop_sees_own_binds_and_eaddrinuse") {
        return;
    }
    let _l = live_lock();
    let mut seen = (0, 0, 0, 0u16);
    let (code, out, err) = run_events(&["run", "bindsnoop", "-f", "json"], || {
        let first = Fd::socket(libc::AF_INET, libc::SOCK_STREAM);
        bind_v4(&first, 0).expect("bind 127.0.0.1:0");
        let port = local_port(&first);
        // SAFETY: listen on our own bound socket.
        assert_eq!(unsafe { libc::listen(first.0, 4) }, 0);
        let second = Fd::socket(libc::AF_INET, libc::SOCK_STREAM);
        assert_eq!(bind_v4(&second, port), Err(libc::EADDRINUSE));
        let udp = Fd::socket(libc::AF_INET6, libc::SOCK_DGRAM);
        bind_v6_loopback(&udp, 0).expect("bind [::1]:0");
        seen = (first.0, second.0, udp.0, port);
    });
    assert_eq!(code, Some(0), "{err}");
    let (first, second, udp, port) = seen;
    let lines = json_lines(&out);
    let mine = |fd: i32| -> Vec<&serde_json::Value> {
        lines.iter().filter(|v| v["pid"].as_u64() == Some(me()) && v["fd"].as_i64() == Some(i64::from(fd))).collect()
    };
    let one = |fd: i32, what: &str| -> &serde_json::Value {
        let m = mine(fd);
        assert_eq!(m.len(), 1, "{what} (fd {fd}):\n{out}");
        m[0]
    };
    let a = one(first, "bind to port 0");
    assert_eq!(
        (&a["family"], &a["protocol"], &a["type"], &a["addr"], a["port"].as_u64(), &a["ret"]),
        (&"ipv4".into(), &"tcp".into(), &"stream".into(), &"127.0.0.1".into(), Some(0), &"0".into()),
        "{a}"
    );
    let b = one(second, "bind to the port in use");
    assert_eq!(b["port"].as_u64(), Some(u64::from(port)), "{b}");
    assert_eq!(b["ret"], "EADDRINUSE", "{b}");
    assert_eq!(b["protocol"], "tcp", "{b}");
    let c = one(udp, "UDP bind to [::1]");
    assert_eq!(
        (&c["family"], &c["protocol"], &c["type"], &c["addr"], &c["ret"]),
        (&"ipv6".into(), &"udp".into(), &"dgram".into(), &"::1".into(), &"0".into()),
        "{c}"
    );
    assert!(!err.contains("events lost"), "{err}");
}

/// A unique missing path, asked about through statx (Rust's metadata), stat and lstat
/// (newfstatat in glibc) and statfs: exactly those calls, each ENOENT, with the syscall named.
#[test]
fn live_statsnoop_sees_a_missing_path_with_enoent() {
    if !require_root("live_statsnoop_sees_a_missing_path_with_enoent") {
        return;
    }
    let _l = live_lock();
    let path = format!("/tmp/statsnoop-missing-{}-{}", std::process::id(), unique_comm("s"));
    let c_path = CString::new(path.clone()).expect("no NUL");
    let (code, out, err) = run_events(&["run", "statsnoop", "-f", "json"], || {
        for _ in 0..5 {
            let e = std::fs::metadata(&path).expect_err("the path is missing");
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        }
        for _ in 0..3 {
            // SAFETY: a NUL-terminated path and a buffer of the right type for each call.
            unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                assert_eq!(libc::stat(c_path.as_ptr(), &mut st), -1);
                assert_eq!(libc::lstat(c_path.as_ptr(), &mut st), -1);
                let mut fs: libc::statfs = std::mem::zeroed();
                assert_eq!(libc::statfs(c_path.as_ptr(), &mut fs), -1);
            }
        }
    });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let mine: Vec<&serde_json::Value> = lines.iter().filter(|v| v["path"].as_str() == Some(path.as_str())).collect();
    let count = |call: &str| mine.iter().filter(|v| v["syscall"] == call).count();
    assert_eq!((mine.len(), count("statx"), count("newfstatat"), count("statfs")), (14, 5, 6, 3), "{out}");
    for v in &mine {
        assert_eq!(v["ret"], "ENOENT", "{v}");
        assert_eq!(v["pid"].as_u64(), Some(me()), "{v}");
    }
}

/// The test's own listener accepts 5 loopback connections: exactly 5 lines on its port, each
/// with the client's port, the accepted descriptor and the test's pid.
#[test]
fn live_tcpaccept_sees_each_accepted_connection() {
    if !require_root("live_tcpaccept_sees_each_accepted_connection") {
        return;
    }
    let _l = live_lock();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut accepted: Vec<(u16, i32)> = Vec::new();
    let (code, out, err) = run_events(&["run", "tcpaccept", "-f", "json"], || {
        let mut keep = Vec::new();
        for _ in 0..5 {
            let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            let (server, peer) = listener.accept().expect("accept");
            assert_eq!(peer.port(), client.local_addr().expect("client addr").port());
            accepted.push((peer.port(), server.as_raw_fd()));
            keep.push((client, server)); // distinct descriptors for each accept
        }
    });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let mine: Vec<&serde_json::Value> = lines.iter().filter(|v| v["lport"].as_u64() == Some(u64::from(port))).collect();
    let mut got: Vec<(u16, i32)> = mine
        .iter()
        .map(|v| {
            assert_eq!(v["pid"].as_u64(), Some(me()), "{v}");
            assert_eq!(
                (&v["laddr"], &v["raddr"], &v["family"]),
                (&"127.0.0.1".into(), &"127.0.0.1".into(), &"ipv4".into()),
                "{v}"
            );
            (v["rport"].as_u64().unwrap_or(0) as u16, v["fd"].as_i64().unwrap_or(-1) as i32)
        })
        .collect();
    got.sort_unstable();
    accepted.sort_unstable();
    assert_eq!(got, accepted, "{out}");
}

extern "C" {
    /// glibc's gethostbyname(3) (not in the libc crate's list).
    fn gethostbyname(name: *const libc::c_char) -> *mut libc::c_void;
}

/// getaddrinfo(node) with `flags` in the hints: its return value (0 or EAI_*).
fn getaddrinfo(node: &CString, flags: i32) -> i32 {
    // SAFETY: addrinfo is plain data; all zero is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = flags;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: a NUL-terminated node, valid hints, a result pointer freed below when set.
    let rc = unsafe { libc::getaddrinfo(node.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if !res.is_null() {
        // SAFETY: res came from getaddrinfo and is freed once.
        unsafe { libc::freeaddrinfo(res) };
    }
    rc
}

/// Lookups of the test's own: a numeric name unique to this pid (5 getaddrinfo, answered without
/// any resolver, and 1 gethostbyname), and a unique non-numeric name with AI_NUMERICHOST, which
/// fails at once with EAI_NONAME (2 calls): exactly those lines, with their results.
#[test]
fn live_gethostlatency_sees_own_lookups() {
    if !require_root("live_gethostlatency_sees_own_lookups") {
        return;
    }
    let _l = live_lock();
    let pid = std::process::id();
    let numeric = format!("127.{}.{}.{}", (pid >> 16) & 0xff, (pid >> 8) & 0xff, pid & 0xff);
    let name = format!("{}.invalid", unique_comm("ghl"));
    let (c_numeric, c_name) =
        (CString::new(numeric.clone()).expect("no NUL"), CString::new(name.clone()).expect("no NUL"));
    let (code, out, err) = run_events(&["run", "gethostlatency", "-f", "json"], || {
        for _ in 0..5 {
            assert_eq!(getaddrinfo(&c_numeric, 0), 0);
        }
        // SAFETY: a NUL-terminated name; the result points into libc's static storage.
        assert!(!unsafe { gethostbyname(c_numeric.as_ptr()) }.is_null());
        for _ in 0..2 {
            assert_eq!(getaddrinfo(&c_name, libc::AI_NUMERICHOST), libc::EAI_NONAME);
        }
    });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let of =
        |host: &str| -> Vec<&serde_json::Value> { lines.iter().filter(|v| v["host"].as_str() == Some(host)).collect() };
    let ok = of(&numeric);
    let calls = |vs: &[&serde_json::Value], f: &str| vs.iter().filter(|v| v["func"] == f).count();
    assert_eq!((ok.len(), calls(&ok, "getaddrinfo"), calls(&ok, "gethostbyname")), (6, 5, 1), "{out}");
    let failed = of(&name);
    assert_eq!((failed.len(), calls(&failed, "getaddrinfo")), (2, 2), "{out}");
    for v in ok.iter().chain(&failed) {
        assert_eq!(v["pid"].as_u64(), Some(me()), "{v}");
        assert!(v["latency"].as_str().is_some_and(|l| l.ends_with('s')), "{v}");
    }
    assert!(ok.iter().all(|v| v["ret"] == "0"), "{out}");
    assert!(failed.iter().all(|v| v["ret"] == "EAI_NONAME"), "{out}");
}

/// `-p PID`: a process's sockets from their first change made in its context, all their later
/// changes included (those made on receipt too), and nothing of sockets it never touched (the
/// test's own listener).
#[test]
fn live_tcpstates_with_pid_follows_that_process_sockets() {
    if !require_root("live_tcpstates_with_pid_follows_that_process_sockets") {
        return;
    }
    let _l = live_lock();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // A client that connects, sends a byte and closes when told to (a line on its stdin).
    let script = format!(
        "import socket, sys\nsys.stdin.readline()\nc = socket.create_connection(('127.0.0.1', {port}))\nc.sendall(b'x')\nc.close()\n"
    );
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("start python3");
    let child_pid = child.id();
    let pid_arg = child_pid.to_string();
    let (code, out, err) = run_events(&["run", "tcpstates", "-p", &pid_arg, "-f", "json"], || {
        // The test's own connection, not the traced process's.
        let mine = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (own_server, _) = listener.accept().expect("accept");
        drop((mine, own_server));
        child.stdin.take().expect("stdin").write_all(b"go\n").expect("release python3");
        let (mut server, _) = listener.accept().expect("accept");
        let mut got = Vec::new();
        server.read_to_end(&mut got).expect("read to the end");
        assert_eq!(got, b"x");
        drop(server);
        assert!(child.wait().expect("wait python3").success());
        std::thread::sleep(std::time::Duration::from_millis(300));
    });
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&out);
    let births: Vec<&str> = lines
        .iter()
        .filter(|v| state(v) == ("CLOSE", "SYN_SENT") && v["rport"].as_u64() == Some(u64::from(port)))
        .map(|v| {
            assert_eq!(v["pid"].as_u64(), Some(u64::from(child_pid)), "the test's own connect() in:\n{out}");
            v["skaddr"].as_str().unwrap_or("")
        })
        .collect();
    assert_eq!(births.len(), 1, "{out}");
    let got: Vec<(&str, &str)> = lines
        .iter()
        .filter(|v| v["skaddr"].as_str() == Some(births[0]) && v["rport"].as_u64() == Some(u64::from(port)))
        .map(state)
        .collect();
    assert_eq!(
        got,
        [
            ("CLOSE", "SYN_SENT"),
            ("SYN_SENT", "ESTABLISHED"),
            ("ESTABLISHED", "FIN_WAIT1"),
            ("FIN_WAIT1", "FIN_WAIT2"),
            ("FIN_WAIT2", "CLOSE")
        ],
        "{out}"
    );
    // The listener's changes (listen() before the run, close() after) and the test's own
    // client were never the traced process's.
    assert!(!lines.iter().any(|v| v["pid"].as_u64() == Some(me()) && state(v) == ("CLOSE", "SYN_SENT")), "{out}");
}
