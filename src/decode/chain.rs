//! One label's decoder chain, compiled once per metric, and the environment tables the
//! system-dependent decoders read (loaded lazily, reloaded at most once per metric read).
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::ksym::{self, Kallsyms};
use super::pci::{PciDb, PciKind};
use super::stackids::{Stack, StackTable, LOST_FRAME};
use super::text::{self, Pattern};
use super::ustack::UserSymbols;
use super::{block, cgroup, net, Env};
use crate::config::DecoderSpec;

#[derive(Debug)]
enum Step {
    Uint,
    Hex,
    Str,
    InetIp,
    Errno,
    Syscall,
    StaticMap {
        map: Option<BTreeMap<String, String>>,
        allow_unknown: bool,
    },
    Regexp(Vec<Pattern>),
    /// `regexp` without a `regexps` key: an error whenever it runs.
    RegexpMissing,
    Dname,
    Ksym,
    Kstack,
    /// Needs the row's pid ([`RowContext`]).
    Ustack,
    Cgroup,
    Ifname,
    MajorMinor,
    Pci(PciKind),
    /// Event field decoders (`fields.rs`).
    Int,
    Result,
    NulList,
    OpenFlags,
    MountFlags,
    Signal,
    WaitStatus,
    Duration,
    TcpState,
    Unknown,
}

#[derive(Debug)]
pub(super) struct Compiled {
    name: String,
    step: Step,
}

pub(super) fn compile(specs: &[DecoderSpec]) -> Vec<Compiled> {
    specs
        .iter()
        .map(|d| {
            let step = match d.name.as_str() {
                "uint" => Step::Uint,
                "hex" => Step::Hex,
                "string" => Step::Str,
                "inet_ip" => Step::InetIp,
                "errno" => Step::Errno,
                "syscall" => Step::Syscall,
                "static_map" => Step::StaticMap { map: d.static_map.clone(), allow_unknown: d.allow_unknown },
                "regexp" => match &d.regexps {
                    Some(r) => Step::Regexp(r.iter().map(|p| Pattern::compile(p)).collect()),
                    None => Step::RegexpMissing,
                },
                "dname" => Step::Dname,
                "ksym" => Step::Ksym,
                "kstack" => Step::Kstack,
                "ustack" => Step::Ustack,
                "cgroup" => Step::Cgroup,
                "ifname" => Step::Ifname,
                "majorminor" => Step::MajorMinor,
                "pci_vendor" => Step::Pci(PciKind::Vendor),
                "pci_device" => Step::Pci(PciKind::Device),
                "pci_class" => Step::Pci(PciKind::Class),
                "pci_subclass" => Step::Pci(PciKind::Subclass),
                "int" => Step::Int,
                "result" => Step::Result,
                "nul_list" => Step::NulList,
                "open_flags" => Step::OpenFlags,
                "mount_flags" => Step::MountFlags,
                "signal" => Step::Signal,
                "wait_status" => Step::WaitStatus,
                "duration" => Step::Duration,
                "tcp_state" => Step::TcpState,
                _ => Step::Unknown,
            };
            Compiled { name: d.name.clone(), step }
        })
        .collect()
}

/// A chain whose exact sort key (see `decode::Rows`) can be read straight off the field: a lone
/// `uint` or `string`, the most common labels (pids, CPUs, ids, task names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DirectKey {
    Uint,
    Str,
}

/// Whether `chain` reads the row's `pid` label ([`RowContext`]): only `ustack` does.
pub(super) fn reads_pid(chain: &[Compiled]) -> bool {
    chain.iter().any(|c| matches!(c.step, Step::Ustack))
}

/// Whether the chain's value is a number in JSON (it ends in `uint` or `int`).
pub(super) fn numeric(chain: &[Compiled]) -> bool {
    matches!(chain.last().map(|c| &c.step), Some(Step::Uint | Step::Int))
}

pub(super) fn direct_key(chain: &[Compiled]) -> Option<DirectKey> {
    match chain {
        [c] if matches!(c.step, Step::Uint) => Some(DirectKey::Uint),
        [c] if matches!(c.step, Step::Str) => Some(DirectKey::Str),
        _ => None,
    }
}

impl DirectKey {
    /// The decoded value of `field` as an exact key: its bytes, big-endian and zero-padded, when
    /// the value is at most 16 bytes of UTF-8 without a NUL. `None` for anything else (a longer
    /// value, an unsupported size, bytes that are not UTF-8): the caller decodes the usual way,
    /// which reports the errors.
    #[inline]
    pub(super) fn key(self, field: &[u8]) -> Option<u128> {
        match self {
            DirectKey::Uint => {
                let (buf, start) = super::text::decimal(super::text::host_uint(field)?);
                let digits = buf.get(start..)?;
                if digits.len() > 16 {
                    return None;
                }
                let mut key = [0u8; 16];
                key[..digits.len()].copy_from_slice(digits);
                Some(u128::from_be_bytes(key))
            }
            DirectKey::Str => {
                let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
                let value = field.get(..end)?;
                if end > 16 || (!value.is_ascii() && std::str::from_utf8(value).is_err()) {
                    return None;
                }
                let mut key = [0u8; 16];
                key[..end].copy_from_slice(value);
                Some(u128::from_be_bytes(key))
            }
        }
    }
}

/// What a decoder may know about the row besides its own field: values of earlier labels.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RowContext {
    /// The row's `pid` label, when the metric has one before the decoded label.
    pub(super) pid: Option<u32>,
}

/// Whether results of `chain` are worth caching: it reads the environment (whose answer is
/// then frozen at first sight, docs/config-format.md#decoders) or runs regular expressions. Pure byte and number
/// formatting is cheaper to redo than to look up. A chain whose result depends on other labels
/// (`ustack`) cannot be cached by its field bytes; `ustack` keeps its own cache.
pub(super) fn worth_caching(chain: &[Compiled]) -> bool {
    if chain.iter().any(|c| matches!(c.step, Step::Ustack)) {
        return false;
    }
    chain.iter().any(|c| !formats_only(&c.step))
}

/// Steps that only format the field bytes (no table, no environment, no expression).
fn formats_only(step: &Step) -> bool {
    matches!(
        step,
        Step::Uint
            | Step::Hex
            | Step::Str
            | Step::InetIp
            | Step::Errno
            | Step::Syscall
            | Step::StaticMap { .. }
            | Step::Dname
            | Step::Int
            | Step::Result
            | Step::NulList
            | Step::OpenFlags
            | Step::MountFlags
            | Step::Signal
            | Step::WaitStatus
            | Step::Duration
            | Step::TcpState
    )
}

/// Whether `chain` reads a stack id (a 4-byte `kstack` field, `stackids.rs`): its frames are
/// those the id's slot of the stack-trace map holds at this read, and slots are reused, so its
/// values must not be kept from one read to the next.
pub(super) fn reads_stack_ids(chain: &[Compiled], size: usize) -> bool {
    size == 4 && chain.iter().any(|c| matches!(c.step, Step::Kstack))
}

/// Whether `chain`'s result (value, skip or error) is a pure function of the field bytes for
/// the life of the process, so that serve may keep a key's decoded labels from one scrape to
/// the next (`keycache.rs`; README.md, `ebpfx serve`, "Label cache"). Pure: the text decoders and those whose
/// tables are loaded once and never reloaded (`syscall`, `errno`, `static_map`, `regexp`, the
/// `pci_*` names from the pci.ids file read once). Not pure, so never kept: `ksym` and `kstack`
/// (kallsyms is reloaded on a miss when modules load; a stack id's slot in the stack-trace map
/// is reused), `ustack` (processes exec and exit, pids are reused), `cgroup` (paths are
/// renamed and removed, ids reused after removal), `ifname` (interfaces renamed, hotplugged),
/// `majorminor` (partitions come and go).
pub(super) fn stable(chain: &[Compiled]) -> bool {
    chain.iter().all(|c| {
        formats_only(&c.step)
            || match c.step {
                Step::Regexp(_) | Step::RegexpMissing | Step::Pci(_) | Step::Unknown => true,
                // Ksym, Kstack, Ustack, Cgroup, Ifname, MajorMinor (see above); the formatting
                // steps were answered by `formats_only`; a new step is not kept until placed.
                _ => false,
            }
    })
}

/// Why a chain failed; rendered into the details (docs/config-format.md#label-bytes-and-decode-errors) by the caller, who knows the label.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ChainError {
    NoDecoders,
    Unknown(String),
    /// `error decoding with decoder "<name>": <detail>`.
    Failed(String),
}

/// Whether `chain` can run at all: errors that do not depend on the field (no decoders, an
/// unknown decoder name) fail every row alike, so they are reported once for the metric.
pub(super) fn check(chain: &[Compiled]) -> Result<(), ChainError> {
    if chain.is_empty() {
        return Err(ChainError::NoDecoders);
    }
    match chain.iter().find(|c| matches!(c.step, Step::Unknown)) {
        Some(c) => Err(ChainError::Unknown(c.name.clone())),
        None => Ok(()),
    }
}

/// Runs `chain` on `field`, appending the final value to `out` (`a` and `b` hold the values
/// between decoders). `Ok(false)`: a decoder asked to skip the row; then, as on an error,
/// `out` may hold a partial value that the caller drops.
pub(super) fn run(
    tables: &mut Tables,
    ctx: RowContext,
    chain: &[Compiled],
    field: &[u8],
    a: &mut Vec<u8>,
    b: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<bool, ChainError> {
    let Some((last, steps)) = chain.split_last() else {
        return Err(ChainError::NoDecoders);
    };
    if let Some(c) = chain.iter().find(|c| matches!(c.step, Step::Unknown)) {
        return Err(ChainError::Unknown(c.name.clone()));
    }
    let failed = |c: &Compiled, e: String| ChainError::Failed(format!("error decoding with decoder {:?}: {e}", c.name));
    // The first decoder reads the field itself; later ones the previous output.
    a.clear();
    let mut input_is_field = true;
    for c in steps {
        b.clear();
        let input: &[u8] = if input_is_field { field } else { a };
        match apply(tables, ctx, &c.step, input, b) {
            Ok(true) => std::mem::swap(a, b),
            Ok(false) => return Ok(false),
            Err(e) => return Err(failed(c, e)),
        }
        input_is_field = false;
    }
    let input: &[u8] = if input_is_field { field } else { a };
    apply(tables, ctx, &last.step, input, out).map_err(|e| failed(last, e))
}

fn apply(tables: &mut Tables, ctx: RowContext, step: &Step, input: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
    match step {
        Step::Uint => text::uint(input, out)?,
        Step::Hex => text::hex(input, out),
        Step::Str => text::string(input, out),
        Step::InetIp => text::inet_ip(input, out),
        Step::Errno => text::errno(input, out)?,
        Step::Syscall => text::syscall(input, tables.env.arch, out)?,
        Step::StaticMap { map, allow_unknown } => text::static_map(input, map.as_ref(), *allow_unknown, out),
        Step::Regexp(patterns) => return text::regexp(input, patterns, out),
        Step::RegexpMissing => return Err("no regexps defined".to_string()),
        Step::Dname => text::dname(input, out),
        Step::Ksym => tables.ksym(input, out)?,
        Step::Kstack => tables.kstack(input, out)?,
        Step::Ustack => tables.ustack(ctx, input, out)?,
        Step::Cgroup => tables.cgroup(input, out)?,
        Step::Ifname => tables.ifname(input, out)?,
        Step::MajorMinor => tables.majorminor(input, out)?,
        Step::Pci(kind) => tables.pci(*kind, input, out)?,
        Step::Int => super::fields::int(input, out)?,
        Step::Result => super::fields::result(input, out)?,
        Step::NulList => super::fields::nul_list(input, out),
        Step::OpenFlags => super::fields::open_flags(input, out)?,
        Step::MountFlags => super::fields::mount_flags(input, out)?,
        Step::Signal => super::fields::signal(input, out)?,
        Step::WaitStatus => super::fields::wait_status(input, out)?,
        Step::Duration => super::fields::duration(input, out)?,
        Step::TcpState => super::fields::tcp_state(input, out)?,
        Step::Unknown => return Err("unknown decoder".to_string()),
    }
    Ok(true)
}

/// A lazily loaded table and whether it was (re)loaded during the current metric read: a miss
/// triggers at most one reload per read, so a map full of unknown ids costs one reload.
#[derive(Debug)]
struct Lazy<T> {
    value: Option<T>,
    fresh: bool,
}

impl<T> Default for Lazy<T> {
    fn default() -> Self {
        Lazy { value: None, fresh: false }
    }
}

impl<T> Lazy<T> {
    fn get(&mut self, load: impl FnOnce() -> Result<T, String>) -> Result<&T, String> {
        if self.value.is_none() {
            self.value = Some(load()?);
            self.fresh = true;
        }
        self.value.as_ref().ok_or_else(|| "table not loaded".to_string())
    }

    /// Reloads if not already done during this read; `false` when it was.
    fn reload(&mut self, load: impl FnOnce(Option<T>) -> Result<T, String>) -> Result<bool, String> {
        if self.fresh {
            return Ok(false);
        }
        self.value = Some(load(self.value.take())?);
        self.fresh = true;
        Ok(true)
    }
}

/// Environment-dependent lookup tables.
#[derive(Debug)]
pub(super) struct Tables {
    pub(super) env: Env,
    kallsyms: Lazy<Kallsyms>,
    cgroups: Lazy<HashMap<u64, String>>,
    ifnames: Lazy<HashMap<u32, String>>,
    partitions: Lazy<String>,
    /// `Some(None)`: no pci.ids file exists.
    pci: Option<Option<PciDb>>,
    users: UserSymbols,
    /// The stack-trace map of the metric being decoded (stack-id labels).
    pub(super) stacks: StackTable,
}

impl Tables {
    pub(super) fn new(env: Env) -> Tables {
        Tables {
            env,
            kallsyms: Lazy::default(),
            cgroups: Lazy::default(),
            ifnames: Lazy::default(),
            partitions: Lazy::default(),
            pci: None,
            users: UserSymbols::default(),
            stacks: StackTable::default(),
        }
    }

    /// The warning about processes whose maps could not be read, once per pid.
    pub(super) fn take_unreadable_processes(&mut self) -> Option<String> {
        self.users.take_unreadable()
    }

    /// Whether the kallsyms table was read and its addresses were hidden (all 0).
    pub(super) fn kallsyms_zeroed(&self) -> bool {
        self.kallsyms.value.as_ref().is_some_and(Kallsyms::zeroed)
    }

    /// Called at the start of each metric read: allows one reload per table again.
    pub(super) fn new_read(&mut self) {
        self.kallsyms.fresh = false;
        self.cgroups.fresh = false;
        self.ifnames.fresh = false;
        self.partitions.fresh = false;
    }

    fn ksym(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let addr = text::host_u64_prefix(input)?;
        let path = self.env.kallsyms.clone();
        loop {
            if let Some(name) = self.kallsyms.get(|| Kallsyms::load(&path))?.exact(addr) {
                out.extend_from_slice(name.as_bytes());
                return Ok(());
            }
            if !self.kallsyms.reload(|_| Kallsyms::load(&path))? {
                let _ = write!(out_string(out), "unknown_addr:0x{addr:x}");
                return Ok(());
            }
        }
    }

    /// The frames of a stack field: inline addresses, or a 4-byte stack id looked up in the
    /// stack-trace map (`None`: a lost stack, see `stackids`).
    fn stack_frames(&self, input: &[u8]) -> Result<Option<Vec<u64>>, String> {
        if input.len() == 4 {
            return Ok(match self.stacks.lookup(input)? {
                Stack::Frames(f) => Some(f.to_vec()),
                Stack::Lost => None,
            });
        }
        ksym::frames(input).map(Some)
    }

    fn kstack(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let Some(frames) = self.stack_frames(input)? else {
            out.extend_from_slice(LOST_FRAME.as_bytes());
            return Ok(());
        };
        let path = self.env.kallsyms.clone();
        loop {
            let syms = self.kallsyms.get(|| Kallsyms::load(&path))?;
            let all = frames.iter().all(|&f| syms.containing(f).is_some());
            if all || !self.kallsyms.reload(|_| Kallsyms::load(&path))? {
                break;
            }
        }
        let syms = self.kallsyms.get(|| Kallsyms::load(&path))?;
        for (i, &f) in frames.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            match syms.containing(f) {
                Some(name) => out.extend_from_slice(name.as_bytes()),
                // Hidden addresses: the raw address, never a wrong name (crate::kallsyms).
                None if syms.zeroed() => {
                    let _ = write!(out_string(out), "0x{f:x}");
                }
                None => out.extend_from_slice(b"??"),
            }
        }
        Ok(())
    }

    fn ustack(&mut self, ctx: RowContext, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let pid = ctx.pid.ok_or("needs a label `pid` (a process id decoded as a number) before this one")?;
        let Some(frames) = self.stack_frames(input)? else {
            out.extend_from_slice(LOST_FRAME.as_bytes());
            return Ok(());
        };
        self.users.stack(pid, &frames, out);
        Ok(())
    }

    fn cgroup(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let id = text::parse_decimal_id(input).ok_or_else(|| text::not_a_number(input, "a decimal integer"))?;
        let root = self.env.cgroup_root.clone();
        let walk = |prev: Option<HashMap<u64, String>>| {
            let mut table = prev.unwrap_or_default();
            cgroup::walk(&root, &mut table);
            Ok(table)
        };
        loop {
            if let Some(path) = self.cgroups.get(|| walk(None))?.get(&id) {
                out.extend_from_slice(path.as_bytes());
                return Ok(());
            }
            if !self.cgroups.reload(walk)? {
                out.extend_from_slice(b"unknown_cgroup_id:");
                // The id as the text said it, sign included.
                out.extend_from_slice(input);
                return Ok(());
            }
        }
    }

    fn ifname(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let idx = text::host_u32_prefix(input)?;
        let dir = self.env.net_class.clone();
        loop {
            if let Some(name) = self.ifnames.get(|| Ok(net::scan(&dir)))?.get(&idx) {
                out.extend_from_slice(name.as_bytes());
                return Ok(());
            }
            if !self.ifnames.reload(|_| Ok(net::scan(&dir)))? {
                out.extend_from_slice(b"unknown:");
                text::push_decimal(out, u64::from(idx));
                return Ok(());
            }
        }
    }

    fn majorminor(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let (major, minor) = block::split_dev(text::host_u32_prefix(input)?);
        let path = self.env.partitions.clone();
        loop {
            if let Some(name) = block::lookup(self.partitions.get(|| block::read(&path))?, major, minor) {
                out.extend_from_slice(name.as_bytes());
                return Ok(());
            }
            if !self.partitions.reload(|_| block::read(&path))? {
                let _ = write!(out_string(out), "unknown:{major}:{minor}");
                return Ok(());
            }
        }
    }

    fn pci(&mut self, kind: PciKind, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if self.pci.is_none() {
            let found = self.env.pci_ids.iter().find(|p| p.exists()).cloned();
            self.pci = Some(match found {
                None => None,
                Some(p) => {
                    let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                    Some(PciDb::parse(&text))
                }
            });
        }
        match &self.pci {
            Some(Some(db)) => db.decode(kind, input, out),
            _ => {
                out.extend_from_slice(b"missing pci.ids db");
                Ok(())
            }
        }
    }
}

/// `fmt::Write` over a byte buffer, for `write!` of ASCII text.
fn out_string(out: &mut Vec<u8>) -> impl std::fmt::Write + '_ {
    struct W<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    W(out)
}
