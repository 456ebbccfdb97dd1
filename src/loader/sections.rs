//! Section names plain libbpf does not know: `perf_event/k=v,...` and `xdp/IFNAME`
//! (docs/config-format.md#loading-and-attaching). Registering them lets such objects load; ebpfx
//! attaches them itself.
use std::sync::OnceLock;

use anyhow::{anyhow, bail};
use libbpf_rs::{Link, ProgramMut};

/// Registers the `perf_event/` and `xdp/` section handlers once per process, before any open.
pub fn register_handlers() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let opts = libbpf_sys::libbpf_prog_handler_opts {
            sz: std::mem::size_of::<libbpf_sys::libbpf_prog_handler_opts>() as libbpf_sys::size_t,
            ..Default::default()
        };
        // No attach callback: libbpf's auto-attach then reports "not supported" and ebpfx
        // attaches these programs itself (attach_custom below).
        for (sec, prog_type, attach_type) in [
            (c"perf_event/", libbpf_sys::BPF_PROG_TYPE_PERF_EVENT, libbpf_sys::BPF_PERF_EVENT),
            (c"xdp/", libbpf_sys::BPF_PROG_TYPE_XDP, libbpf_sys::BPF_XDP),
        ] {
            // SAFETY: `sec` is a static NUL-terminated string (libbpf keeps the pointer), `opts`
            // is a valid, sized struct that libbpf copies.
            unsafe {
                libbpf_sys::libbpf_register_prog_handler(sec.as_ptr(), prog_type, attach_type, &opts);
            }
        }
    });
}

/// Whether ebpfx (not libbpf) attaches programs of this section.
pub fn is_custom(section: &str) -> bool {
    section.starts_with("perf_event/") || section.starts_with("xdp/")
}

/// Attaches a `perf_event/` or `xdp/` program. A perf event program gets one link per online
/// CPU; if any CPU fails, the links made so far are dropped (detached) before returning.
/// `frequency` (`run --frequency HZ`) replaces the section's sampling frequency.
pub fn attach_custom(prog: &ProgramMut<'_>, section: &str, frequency: Option<u64>) -> anyhow::Result<Vec<Link>> {
    if let Some(spec) = section.strip_prefix("perf_event/") {
        let mut event = PerfEventSpec::parse(spec)?;
        if frequency.is_some() {
            event.frequency = frequency;
        }
        let mut links = Vec::new();
        for cpu in online_cpus()? {
            let fd = event.open(cpu).map_err(|e| match (e.raw_os_error(), event.frequency, max_sample_rate()) {
                (Some(libc::EINVAL), Some(f), Some(max)) if f > max => anyhow!(
                    "sampling at {f} Hz is above the kernel's limit of {max} Hz (kernel.perf_event_max_sample_rate): lower --frequency"
                ),
                _ => anyhow!("perf_event_open on CPU {cpu}: {e}"),
            })?;
            let link = prog.attach_perf_event(fd).map_err(|e| {
                // SAFETY: fd is ours and not owned by anything else after the failed attach.
                unsafe { libc::close(fd) };
                anyhow!("attaching to the perf event on CPU {cpu}: {e:#}")
            })?;
            links.push(link);
        }
        return Ok(links);
    }
    if let Some(ifname) = section.strip_prefix("xdp/") {
        let c = std::ffi::CString::new(ifname).map_err(|_| anyhow!("bad interface name {ifname:?}"))?;
        // SAFETY: `c` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if ifindex == 0 {
            bail!("no such network interface {ifname:?}");
        }
        let link =
            prog.attach_xdp(ifindex as i32).map_err(|e| anyhow!("{}", super::explain::explain_xdp(ifname, &e)))?;
        return Ok(vec![link]);
    }
    bail!("section {section:?} is not attached by ebpfx")
}

/// perf_event_open flag: close the event fd on exec.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// `perf_event/type=1,config=0,frequency=99` (docs/config-format.md#loading-and-attaching).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfEventSpec {
    pub event_type: u32,
    pub config: u64,
    /// Samples per second; without it the event never samples.
    pub frequency: Option<u64>,
}

impl PerfEventSpec {
    pub fn parse(spec: &str) -> anyhow::Result<PerfEventSpec> {
        let mut out = PerfEventSpec { event_type: 0, config: 0, frequency: None };
        for item in spec.split(',') {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                anyhow!("perf_event section item {item:?} lacks `=` (expected type=N,config=N,frequency=N)")
            })?;
            let n: i64 = v.parse().map_err(|_| anyhow!("perf_event section: {k}={v:?} is not a decimal integer"))?;
            match k {
                "type" => out.event_type = n as u32,
                "config" => out.config = n as u64,
                "frequency" => out.frequency = Some(n as u64),
                other => bail!("perf_event section: unknown key {other:?} (expected type, config, frequency)"),
            }
        }
        Ok(out)
    }

    fn open(&self, cpu: u32) -> std::io::Result<i32> {
        // SAFETY: perf_event_attr is plain data; all-zero is its documented default.
        let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.size = std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32;
        attr.type_ = self.event_type;
        attr.config = self.config;
        if let Some(f) = self.frequency {
            attr.__bindgen_anon_1.sample_freq = f;
            attr.set_freq(1);
        }
        // SAFETY: attr is initialised and outlives the call; pid -1 + cpu = all tasks on `cpu`.
        let fd = unsafe {
            libc::syscall(libc::SYS_perf_event_open, &attr as *const _, -1i32, cpu as i32, -1i32, PERF_FLAG_FD_CLOEXEC)
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(fd as i32)
    }
}

/// `kernel.perf_event_max_sample_rate`, when readable.
fn max_sample_rate() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate").ok()?.trim().parse().ok()
}

/// CPUs listed in /sys/devices/system/cpu/online (`0-3,5`).
pub fn online_cpus() -> anyhow::Result<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|e| anyhow!("reading /sys/devices/system/cpu/online: {e}"))?;
    parse_cpu_list(text.trim())
}

pub fn parse_cpu_list(s: &str) -> anyhow::Result<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let bad = || anyhow!("malformed CPU list {s:?}");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_event_sections() {
        let s = PerfEventSpec::parse("type=1,config=0,frequency=99").expect("parses");
        assert_eq!(s, PerfEventSpec { event_type: 1, config: 0, frequency: Some(99) });
        assert!(PerfEventSpec::parse("type=1,bogus=2").is_err());
        assert!(PerfEventSpec::parse("type").is_err());
        assert!(PerfEventSpec::parse("type=x").is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5").expect("ok"), vec![0, 1, 2, 3, 5]);
        assert_eq!(parse_cpu_list("0").expect("ok"), vec![0]);
        assert!(parse_cpu_list("a-b").is_err());
    }
}
