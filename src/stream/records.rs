//! Record layouts of the event tools, twins of the C structs in bpf/events.bpf.h and
//! bpf/events/*.bpf.c (the live test `event_records_match_object_btf` compares both through the
//! objects' BTF), and their decoding with `plain`.
//!
//! Every record starts with [`EventHeader`]; its `kind` names the record and `size` its length.
//! Fixed parts are `#[repr(C)]` structs without implicit padding; string tails (exec arguments,
//! paths, mount strings) are read as byte ranges after the fixed part, bounded by the length
//! fields the BPF side writes, never beyond (the rest of a ring slot is not zeroed).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use plain::Plain;

pub const COMM_LEN: usize = 16;
/// `EXEC_ARGS_MAX` × `EXEC_ARG_LEN` in execsnoop.bpf.c.
pub const EXEC_ARGS_MAX: usize = 20;
pub const EXEC_ARG_LEN: usize = 256;
pub const EXEC_ARGS_SIZE: usize = EXEC_ARGS_MAX * EXEC_ARG_LEN;
pub const OPEN_PATH_LEN: usize = 256;
pub const MOUNT_SOURCE_LEN: usize = 128;
pub const MOUNT_TARGET_LEN: usize = 256;
pub const MOUNT_FSTYPE_LEN: usize = 32;
pub const STAT_PATH_LEN: usize = 256;
pub const HOST_LEN: usize = 256;
/// gethostlatency `ret` when gethostbyname*() returned NULL.
pub const LOOKUP_NULL: i32 = -1000;

/// execsnoop `flags`: more than [`EXEC_ARGS_MAX`] arguments.
pub const EXEC_TRUNC_ARGC: u32 = 1;
/// execsnoop `flags`: an argument filled [`EXEC_ARG_LEN`] bytes and may be cut.
pub const EXEC_TRUNC_ARG: u32 = 2;
/// execsnoop `flags`: an argument could not be read from the caller's memory.
pub const EXEC_TRUNC_FAULT: u32 = 4;

pub const MOUNT_OP_MOUNT: u32 = 1;
pub const MOUNT_OP_UMOUNT: u32 = 2;

/// `enum event_kind` in bpf/events.bpf.h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exec = 1,
    Exit = 2,
    Open = 3,
    Bio = 4,
    TcpConnect = 5,
    TcpLife = 6,
    Kill = 7,
    Mount = 8,
    TcpState = 9,
    Bind = 10,
    Stat = 11,
    TcpAccept = 12,
    HostLookup = 13,
}

impl Kind {
    pub fn from_u32(v: u32) -> Option<Kind> {
        Some(match v {
            1 => Kind::Exec,
            2 => Kind::Exit,
            3 => Kind::Open,
            4 => Kind::Bio,
            5 => Kind::TcpConnect,
            6 => Kind::TcpLife,
            7 => Kind::Kill,
            8 => Kind::Mount,
            9 => Kind::TcpState,
            10 => Kind::Bind,
            11 => Kind::Stat,
            12 => Kind::TcpAccept,
            13 => Kind::HostLookup,
            _ => return None,
        })
    }

    /// The tool that writes this record.
    pub fn tool(self) -> &'static str {
        match self {
            Kind::Exec => "execsnoop",
            Kind::Exit => "exitsnoop",
            Kind::Open => "opensnoop",
            Kind::Bio => "biosnoop",
            Kind::TcpConnect => "tcpconnect",
            Kind::TcpLife => "tcplife",
            Kind::Kill => "killsnoop",
            Kind::Mount => "mountsnoop",
            Kind::TcpState => "tcpstates",
            Kind::Bind => "bindsnoop",
            Kind::Stat => "statsnoop",
            Kind::TcpAccept => "tcpaccept",
            Kind::HostLookup => "gethostlatency",
        }
    }
}

/// `struct event_header`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    pub kind: u32,
    /// Bytes of the record, header included.
    pub size: u32,
    pub pid: u32,
    pub tid: u32,
    pub comm: [u8; COMM_LEN],
}

/// `struct exec_record` without its `args` tail.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecRecord {
    pub h: EventHeader,
    pub ppid: u32,
    pub uid: u32,
    /// 0 or -errno.
    pub ret: i32,
    pub argc: u32,
    pub args_size: u32,
    /// `EXEC_TRUNC_*` bits.
    pub flags: u32,
}

/// `struct exit_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitRecord {
    pub h: EventHeader,
    pub ppid: u32,
    /// As wait(2) reports it.
    pub exit_code: i32,
    pub age_ns: u64,
}

/// `struct open_record` without its `path` tail.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenRecord {
    pub h: EventHeader,
    pub flags: u64,
    /// File descriptor, or -errno.
    pub ret: i32,
    pub mode: u32,
    pub syscall: u32,
    /// Bytes of the path with its NUL; [`OPEN_PATH_LEN`] means it may be cut.
    pub path_len: u32,
}

/// `struct bio_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BioRecord {
    pub h: EventHeader,
    /// new_encode_dev(major, minor).
    pub dev: u32,
    /// REQ_OP_*: 0 read, 1 write, 2 flush, 3 discard, ...
    pub op: u32,
    pub cmd_flags: u32,
    pub error: i32,
    pub sector: u64,
    pub bytes: u64,
    pub queue_ns: u64,
    pub latency_ns: u64,
    pub disk: [u8; 32],
}

/// `struct tcp_ends`: both ends of a TCP socket.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpEnds {
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// Local port, host order.
    pub sport: u16,
    /// Remote port, host order.
    pub dport: u16,
    /// tcplife: the state the socket left for CLOSE; tcpconnect: 0.
    pub state: u16,
    /// Local address as IPv6 (IPv4 as ::ffff:a.b.c.d).
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

/// `struct tcp_connect_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpConnectRecord {
    pub h: EventHeader,
    pub ends: TcpEnds,
    pub cookie: u64,
}

/// `struct tcp_life_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpLifeRecord {
    pub h: EventHeader,
    pub ends: TcpEnds,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub duration_ns: u64,
}

/// `struct kill_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KillRecord {
    pub h: EventHeader,
    pub target: i32,
    pub target_tgid: i32,
    pub sig: u32,
    pub ret: i32,
    pub syscall: u32,
    pub _pad: u32,
}

/// `struct mount_record` without its string tails.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountRecord {
    pub h: EventHeader,
    pub op: u32,
    pub ret: i32,
    pub flags: u64,
    pub mnt_ns: u32,
    pub source_len: u16,
    pub target_len: u16,
    pub fstype_len: u16,
    pub _pad: [u16; 3],
}

/// `struct tcp_state_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStateRecord {
    pub h: EventHeader,
    /// `ends.state` is 0: the states follow.
    pub ends: TcpEnds,
    pub oldstate: u16,
    pub newstate: u16,
    pub _pad: u32,
    /// Time in the old state; 0 when the socket's earlier change was not seen.
    pub old_ns: u64,
    /// The socket's kernel address, big-endian.
    pub skaddr: u64,
}

/// `struct bind_call`: what bind() was asked, and the socket.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindCall {
    pub fd: i32,
    /// AF_INET or AF_INET6.
    pub family: u16,
    /// Host order; 0: the kernel picks.
    pub port: u16,
    /// IPPROTO_*; 0 when the descriptor is no socket.
    pub protocol: u16,
    /// SOCK_STREAM, SOCK_DGRAM, ...; 0 when the descriptor is no socket.
    pub sock_type: u16,
    /// IPv4 as ::ffff:a.b.c.d.
    pub addr: [u8; 16],
}

/// `struct bind_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindRecord {
    pub h: EventHeader,
    pub c: BindCall,
    /// 0 or -errno.
    pub ret: i32,
}

/// `struct stat_record` without its `path` tail.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatRecord {
    pub h: EventHeader,
    /// 0 or -errno.
    pub ret: i32,
    pub syscall: u32,
    /// AT_* (lstat: AT_SYMLINK_NOFOLLOW).
    pub flags: u32,
    /// Bytes of the path with its NUL; [`STAT_PATH_LEN`] means it may be cut.
    pub path_len: u32,
}

/// `struct tcp_accept_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpAcceptRecord {
    pub h: EventHeader,
    /// `sport`: the local (listening) port.
    pub ends: TcpEnds,
    /// The accepted descriptor.
    pub fd: i32,
    pub syscall: u32,
}

/// `struct host_lookup_record` without its `host` tail.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostLookupRecord {
    pub h: EventHeader,
    pub latency_ns: u64,
    /// getaddrinfo: 0 or EAI_* (negative); gethostbyname*: 0 or [`LOOKUP_NULL`].
    pub ret: i32,
    /// 1 getaddrinfo, 2 gethostbyname, 3 gethostbyname2.
    pub func: u32,
    /// Bytes of the name with its NUL; [`HOST_LEN`] means it may be cut.
    pub host_len: u32,
    pub _pad: u32,
}

// SAFETY (all impls below): each type is #[repr(C)], made only of integers and integer arrays,
// with no implicit padding (checked by `layouts_have_no_padding`), so every byte pattern is a
// valid value, as `plain::Plain` requires.
unsafe impl Plain for EventHeader {}
// SAFETY: see above.
unsafe impl Plain for ExecRecord {}
// SAFETY: see above.
unsafe impl Plain for ExitRecord {}
// SAFETY: see above.
unsafe impl Plain for OpenRecord {}
// SAFETY: see above.
unsafe impl Plain for BioRecord {}
// SAFETY: see above.
unsafe impl Plain for TcpEnds {}
// SAFETY: see above.
unsafe impl Plain for TcpConnectRecord {}
// SAFETY: see above.
unsafe impl Plain for TcpLifeRecord {}
// SAFETY: see above.
unsafe impl Plain for KillRecord {}
// SAFETY: see above.
unsafe impl Plain for MountRecord {}
// SAFETY: see above.
unsafe impl Plain for TcpStateRecord {}
// SAFETY: see above.
unsafe impl Plain for BindCall {}
// SAFETY: see above.
unsafe impl Plain for BindRecord {}
// SAFETY: see above.
unsafe impl Plain for StatRecord {}
// SAFETY: see above.
unsafe impl Plain for TcpAcceptRecord {}
// SAFETY: see above.
unsafe impl Plain for HostLookupRecord {}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Exec { rec: ExecRecord, args: Vec<Vec<u8>> },
    Exit(ExitRecord),
    Open { rec: OpenRecord, path: Vec<u8> },
    Bio(BioRecord),
    TcpConnect(TcpConnectRecord),
    TcpLife(TcpLifeRecord),
    Kill(KillRecord),
    Mount { rec: MountRecord, source: Vec<u8>, target: Vec<u8>, fstype: Vec<u8> },
    TcpState(TcpStateRecord),
    Bind(BindRecord),
    Stat { rec: StatRecord, path: Vec<u8> },
    TcpAccept(TcpAcceptRecord),
    HostLookup { rec: HostLookupRecord, host: Vec<u8> },
}

impl Event {
    pub fn header(&self) -> &EventHeader {
        match self {
            Event::Exec { rec, .. } => &rec.h,
            Event::Exit(r) => &r.h,
            Event::Open { rec, .. } => &rec.h,
            Event::Bio(r) => &r.h,
            Event::TcpConnect(r) => &r.h,
            Event::TcpLife(r) => &r.h,
            Event::Kill(r) => &r.h,
            Event::Mount { rec, .. } => &rec.h,
            Event::TcpState(r) => &r.h,
            Event::Bind(r) => &r.h,
            Event::Stat { rec, .. } => &rec.h,
            Event::TcpAccept(r) => &r.h,
            Event::HostLookup { rec, .. } => &rec.h,
        }
    }
}

/// Why record bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("event record of {got} bytes is shorter than its {need}-byte {what}")]
    TooShort { what: &'static str, need: usize, got: usize },
    #[error("event record of unknown kind {0}")]
    UnknownKind(u32),
    #[error("{kind:?} record says it has {said} bytes, the ring buffer gave {got}")]
    SizeMismatch { kind: Kind, said: usize, got: usize },
    #[error("{kind:?} record: {field} ({value}) exceeds its {max}-byte field")]
    BadLength { kind: Kind, field: &'static str, value: usize, max: usize },
}

/// Copies the fixed part `T` from the start of `bytes` (ring records need not be aligned for T).
pub fn fixed<T: Plain + Default>(bytes: &[u8], what: &'static str) -> Result<T, RecordError> {
    let mut v = T::default();
    v.copy_from_bytes(bytes).map_err(|_| RecordError::TooShort {
        what,
        need: std::mem::size_of::<T>(),
        got: bytes.len(),
    })?;
    Ok(v)
}

/// The header of a record.
pub fn header(bytes: &[u8]) -> Result<EventHeader, RecordError> {
    fixed::<EventHeader>(bytes, "header")
}

/// `len` bytes at `off` of a string field of `max` bytes, without the trailing NUL.
fn string_at(
    bytes: &[u8],
    kind: Kind,
    field: &'static str,
    off: usize,
    len: usize,
    max: usize,
) -> Result<Vec<u8>, RecordError> {
    if len > max {
        return Err(RecordError::BadLength { kind, field, value: len, max });
    }
    let end = off + len;
    if bytes.len() < end {
        return Err(RecordError::TooShort { what: field, need: end, got: bytes.len() });
    }
    Ok(trim_nul(&bytes[off..end]).to_vec())
}

/// Bytes up to the first NUL (all of them when there is none).
pub fn trim_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// Decodes one ring buffer record.
pub fn parse(bytes: &[u8]) -> Result<Event, RecordError> {
    let h = header(bytes)?;
    let kind = Kind::from_u32(h.kind).ok_or(RecordError::UnknownKind(h.kind))?;
    // The ring hands out exactly the bytes the program wrote (bpf_ringbuf_output of `size`, or a
    // reservation of the record's size): anything else is a layout mismatch.
    if h.size as usize != bytes.len() {
        return Err(RecordError::SizeMismatch { kind, said: h.size as usize, got: bytes.len() });
    }
    Ok(match kind {
        Kind::Exec => {
            let rec: ExecRecord = fixed(bytes, "exec record")?;
            let base = std::mem::size_of::<ExecRecord>();
            let size = rec.args_size as usize;
            if size > EXEC_ARGS_SIZE {
                return Err(RecordError::BadLength { kind, field: "args_size", value: size, max: EXEC_ARGS_SIZE });
            }
            let tail = bytes.get(base..base + size).ok_or(RecordError::TooShort {
                what: "exec arguments",
                need: base + size,
                got: bytes.len(),
            })?;
            // argc NUL-terminated strings, back to back.
            let mut args: Vec<Vec<u8>> = Vec::new();
            if !tail.is_empty() {
                args = tail.split(|&c| c == 0).map(<[u8]>::to_vec).collect();
                if tail.last() == Some(&0) {
                    args.pop();
                }
            }
            Event::Exec { rec, args }
        }
        Kind::Exit => Event::Exit(fixed(bytes, "exit record")?),
        Kind::Open => {
            let rec: OpenRecord = fixed(bytes, "open record")?;
            let off = std::mem::size_of::<OpenRecord>();
            let path = string_at(bytes, kind, "path_len", off, rec.path_len as usize, OPEN_PATH_LEN)?;
            Event::Open { rec, path }
        }
        Kind::Bio => Event::Bio(fixed(bytes, "bio record")?),
        Kind::TcpConnect => Event::TcpConnect(fixed(bytes, "tcp connect record")?),
        Kind::TcpLife => Event::TcpLife(fixed(bytes, "tcp life record")?),
        Kind::Kill => Event::Kill(fixed(bytes, "kill record")?),
        Kind::Mount => {
            let rec: MountRecord = fixed(bytes, "mount record")?;
            let s_off = std::mem::size_of::<MountRecord>();
            let t_off = s_off + MOUNT_SOURCE_LEN;
            let f_off = t_off + MOUNT_TARGET_LEN;
            let source = string_at(bytes, kind, "source_len", s_off, rec.source_len as usize, MOUNT_SOURCE_LEN)?;
            let target = string_at(bytes, kind, "target_len", t_off, rec.target_len as usize, MOUNT_TARGET_LEN)?;
            let fstype = string_at(bytes, kind, "fstype_len", f_off, rec.fstype_len as usize, MOUNT_FSTYPE_LEN)?;
            Event::Mount { rec, source, target, fstype }
        }
        Kind::TcpState => Event::TcpState(fixed(bytes, "tcp state record")?),
        Kind::Bind => Event::Bind(fixed(bytes, "bind record")?),
        Kind::Stat => {
            let rec: StatRecord = fixed(bytes, "stat record")?;
            let off = std::mem::size_of::<StatRecord>();
            let path = string_at(bytes, kind, "path_len", off, rec.path_len as usize, STAT_PATH_LEN)?;
            Event::Stat { rec, path }
        }
        Kind::TcpAccept => Event::TcpAccept(fixed(bytes, "tcp accept record")?),
        Kind::HostLookup => {
            let rec: HostLookupRecord = fixed(bytes, "host lookup record")?;
            let off = std::mem::size_of::<HostLookupRecord>();
            let host = string_at(bytes, kind, "host_len", off, rec.host_len as usize, HOST_LEN)?;
            Event::HostLookup { rec, host }
        }
    })
}

impl EventHeader {
    /// The command name, up to its NUL.
    pub fn comm(&self) -> String {
        String::from_utf8_lossy(trim_nul(&self.comm)).into_owned()
    }
}

impl ExitRecord {
    /// The signal that ended the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        let sig = self.exit_code & 0x7f;
        (sig != 0).then_some(sig)
    }
    /// The exit status, when the process exited by itself.
    pub fn status(&self) -> Option<i32> {
        (self.exit_code & 0x7f == 0).then_some((self.exit_code >> 8) & 0xff)
    }
}

impl BioRecord {
    pub fn disk_name(&self) -> String {
        String::from_utf8_lossy(trim_nul(&self.disk)).into_owned()
    }
    /// (major, minor) from the kernel's new_encode_dev form.
    pub fn major_minor(&self) -> (u32, u32) {
        ((self.dev & 0xfff00) >> 8, (self.dev & 0xff) | ((self.dev >> 12) & 0xfff00))
    }
}

/// An address stored as 16 bytes (IPv4-mapped for IPv4).
pub fn ip_of(bytes: &[u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(*bytes);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

impl TcpEnds {
    pub fn local(&self) -> IpAddr {
        ip_of(&self.saddr)
    }
    pub fn remote(&self) -> IpAddr {
        ip_of(&self.daddr)
    }
}

/// 127.0.0.1 as an IPv4-mapped 16-byte address, as the records store it.
pub fn loopback_v4_mapped() -> [u8; 16] {
    Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: Plain>(v: &T) -> Vec<u8> {
        // SAFETY: T is Plain (no padding, any bytes valid); the slice lives no longer than `v`.
        unsafe { plain::as_bytes(v) }.to_vec()
    }

    #[test]
    fn layouts_have_no_padding() {
        // The sum of the field sizes equals the struct size: no implicit padding, so Plain holds
        // and the C twin has the same offsets (also checked against BTF by the live test).
        assert_eq!(std::mem::size_of::<EventHeader>(), 8 + 4 * 4 + COMM_LEN);
        assert_eq!(std::mem::size_of::<ExecRecord>(), 40 + 6 * 4);
        assert_eq!(std::mem::size_of::<ExitRecord>(), 40 + 4 + 4 + 8);
        assert_eq!(std::mem::size_of::<OpenRecord>(), 40 + 8 + 4 * 4);
        assert_eq!(std::mem::size_of::<BioRecord>(), 40 + 4 * 4 + 4 * 8 + 32);
        assert_eq!(std::mem::size_of::<TcpEnds>(), 4 * 2 + 32);
        assert_eq!(std::mem::size_of::<TcpConnectRecord>(), 40 + 40 + 8);
        assert_eq!(std::mem::size_of::<TcpLifeRecord>(), 40 + 40 + 24);
        assert_eq!(std::mem::size_of::<KillRecord>(), 40 + 6 * 4);
        assert_eq!(std::mem::size_of::<MountRecord>(), 40 + 4 + 4 + 8 + 4 + 2 * 3 + 6);
        assert_eq!(std::mem::size_of::<TcpStateRecord>(), 40 + 40 + 2 * 2 + 4 + 8 + 8);
        assert_eq!(std::mem::size_of::<BindCall>(), 4 + 2 * 4 + 16);
        assert_eq!(std::mem::size_of::<BindRecord>(), 40 + 28 + 4);
        assert_eq!(std::mem::size_of::<StatRecord>(), 40 + 4 * 4);
        assert_eq!(std::mem::size_of::<TcpAcceptRecord>(), 40 + 40 + 4 + 4);
        assert_eq!(std::mem::size_of::<HostLookupRecord>(), 40 + 8 + 4 * 4);
    }

    fn exec_bytes(args: &[&[u8]]) -> Vec<u8> {
        let mut tail = Vec::new();
        for a in args {
            tail.extend_from_slice(a);
            tail.push(0);
        }
        let mut rec = ExecRecord { argc: args.len() as u32, args_size: tail.len() as u32, ..Default::default() };
        rec.h.kind = Kind::Exec as u32;
        rec.h.size = (std::mem::size_of::<ExecRecord>() + tail.len()) as u32;
        let mut b = bytes_of(&rec);
        b.extend_from_slice(&tail);
        b
    }

    #[test]
    fn exec_arguments_split_at_nul() {
        let b = exec_bytes(&[b"/bin/true", b"", b"x y"]);
        match parse(&b) {
            Ok(Event::Exec { rec, args }) => {
                assert_eq!(rec.argc, 3);
                assert_eq!(args, vec![b"/bin/true".to_vec(), Vec::new(), b"x y".to_vec()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_arguments_is_an_empty_list() {
        match parse(&exec_bytes(&[])) {
            Ok(Event::Exec { args, .. }) => assert!(args.is_empty(), "{args:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_or_lying_records_are_errors_not_panics() {
        let b = exec_bytes(&[b"a"]);
        for cut in 0..b.len() {
            assert!(parse(&b[..cut]).is_err(), "cut at {cut}");
        }
        // args_size beyond the record.
        let mut rec = ExecRecord { args_size: 100, ..Default::default() };
        rec.h.kind = Kind::Exec as u32;
        rec.h.size = std::mem::size_of::<ExecRecord>() as u32;
        assert!(matches!(parse(&bytes_of(&rec)), Err(RecordError::TooShort { .. })));
        // A path length beyond the path field.
        let mut o = OpenRecord { path_len: 300, ..Default::default() };
        o.h.kind = Kind::Open as u32;
        let mut b = bytes_of(&o);
        b.resize(std::mem::size_of::<OpenRecord>() + OPEN_PATH_LEN, 0);
        let n = b.len() as u32;
        b[12..16].copy_from_slice(&n.to_ne_bytes());
        assert!(matches!(parse(&b), Err(RecordError::BadLength { field: "path_len", .. })));
        // Unknown kind.
        let mut h = EventHeader { kind: 99, ..Default::default() };
        h.size = std::mem::size_of::<EventHeader>() as u32;
        assert_eq!(parse(&bytes_of(&h)), Err(RecordError::UnknownKind(99)));
    }

    #[test]
    fn open_path_stops_at_its_length_not_at_stale_bytes() {
        let mut o = OpenRecord { path_len: 4, ret: -2, ..Default::default() };
        o.h.kind = Kind::Open as u32;
        let mut b = bytes_of(&o);
        let mut path = vec![b'Z'; OPEN_PATH_LEN];
        path[..4].copy_from_slice(b"/ab\0");
        b.extend_from_slice(&path);
        let n = b.len() as u32;
        b[12..16].copy_from_slice(&n.to_ne_bytes());
        match parse(&b) {
            Ok(Event::Open { rec, path }) => {
                assert_eq!(rec.ret, -2);
                assert_eq!(path, b"/ab".to_vec());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stat_and_lookup_names_stop_at_their_length() {
        let mut st = StatRecord { path_len: 3, ret: -2, ..Default::default() };
        st.h.kind = Kind::Stat as u32;
        st.h.size = (std::mem::size_of::<StatRecord>() + STAT_PATH_LEN) as u32;
        let mut b = bytes_of(&st);
        let mut tail = vec![b'Z'; STAT_PATH_LEN];
        tail[..3].copy_from_slice(b"/x\0");
        b.extend_from_slice(&tail);
        match parse(&b) {
            Ok(Event::Stat { rec, path }) => assert_eq!((rec.ret, path), (-2, b"/x".to_vec())),
            other => panic!("{other:?}"),
        }
        let mut hl = HostLookupRecord { host_len: (HOST_LEN + 1) as u32, ..Default::default() };
        hl.h.kind = Kind::HostLookup as u32;
        hl.h.size = (std::mem::size_of::<HostLookupRecord>() + HOST_LEN) as u32;
        let mut b = bytes_of(&hl);
        b.resize(hl.h.size as usize, 0);
        assert!(matches!(parse(&b), Err(RecordError::BadLength { field: "host_len", .. })));
        let mut bind = BindRecord { ret: -98, ..Default::default() };
        bind.h.kind = Kind::Bind as u32;
        bind.h.size = std::mem::size_of::<BindRecord>() as u32;
        assert_eq!(parse(&bytes_of(&bind)), Ok(Event::Bind(bind)));
        for k in 9..=13 {
            assert!(Kind::from_u32(k).is_some_and(|kind| kind as u32 == k), "kind {k}");
        }
    }

    #[test]
    fn exit_code_splits_into_status_and_signal() {
        let e = ExitRecord { exit_code: 7 << 8, ..Default::default() };
        assert_eq!((e.status(), e.signal()), (Some(7), None));
        let k = ExitRecord { exit_code: 9, ..Default::default() };
        assert_eq!((k.status(), k.signal()), (None, Some(9)));
    }

    #[test]
    fn addresses_and_devices_decode() {
        let ends = TcpEnds { saddr: loopback_v4_mapped(), daddr: Ipv6Addr::LOCALHOST.octets(), ..Default::default() };
        assert_eq!(ends.local().to_string(), "127.0.0.1");
        assert_eq!(ends.remote().to_string(), "::1");
        let bio = BioRecord { dev: (254 << 8) | 3, ..Default::default() };
        assert_eq!(bio.major_minor(), (254, 3));
        let big = BioRecord { dev: (259 << 8) | 0x12 | (0x100 << 12), ..Default::default() };
        assert_eq!(big.major_minor(), (259, 0x112));
    }
}
